/* graft/tensor.h - dense tensors and element types.
 *
 *   graft_tensor *t = NULL;
 *   int64_t dims[] = {2, 3};
 *   if (graft_tensor_create(GRAFT_FLOAT, 2, dims, &t, &err) == GRAFT_OK) {
 *       float *x = graft_tensor_f32(t);   // row-major, nelem = 6
 *       ...
 *       graft_tensor_destroy(t);
 *   }
 *
 * Data is row-major and contiguous. A tensor either owns its data (freed by
 * graft_tensor_destroy) or is attached to caller memory (never freed).
 * Computation happens in float32 (float16, bfloat16 and double weights are
 * widened on import) and int64 (shape arithmetic); the other element types
 * are carried for import and export.
 */
#ifndef GRAFT_TENSOR_H
#define GRAFT_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graft/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GRAFT_MAX_RANK 8

/* Values are ONNX TensorProto.DataType numbers, so they cross the format
 * boundary unchanged. */
typedef enum graft_dtype {
    GRAFT_DTYPE_UNDEFINED = 0,
    GRAFT_FLOAT = 1,
    GRAFT_UINT8 = 2,
    GRAFT_INT8 = 3,
    GRAFT_UINT16 = 4,
    GRAFT_INT16 = 5,
    GRAFT_INT32 = 6,
    GRAFT_INT64 = 7,
    GRAFT_STRING = 8,
    GRAFT_BOOL = 9,
    GRAFT_FLOAT16 = 10,
    GRAFT_DOUBLE = 11,
    GRAFT_UINT32 = 12,
    GRAFT_UINT64 = 13,
    GRAFT_BFLOAT16 = 16,
} graft_dtype;

/* Bytes per element; 0 for UNDEFINED, STRING and unknown numbers. */
size_t graft_dtype_size(graft_dtype dt);
/* "float32", "int64", ...; "unknown" for numbers graft does not know. */
const char *graft_dtype_name(graft_dtype dt);
bool graft_dtype_is_float(graft_dtype dt); /* FLOAT, FLOAT16, BFLOAT16, DOUBLE */

/* v as an integer of type dt holds it (wrapped, two's complement) for the
 * 8- to 32-bit integer types; v itself for the others. */
int64_t graft_int_wrap(graft_dtype dt, int64_t v);

float graft_fp16_to_f32(uint16_t h);
uint16_t graft_f32_to_fp16(float f); /* round to nearest even */
float graft_bf16_to_f32(uint16_t h);
uint16_t graft_f32_to_bf16(float f); /* round to nearest even */

typedef struct graft_shape {
    int rank;
    int64_t dims[GRAFT_MAX_RANK];
} graft_shape;

typedef struct graft_tensor {
    graft_dtype dtype;
    int rank;
    int64_t dims[GRAFT_MAX_RANK];
    void *data;    /* nelem * dtype_size bytes, or NULL for a shape-only tensor */
    size_t nbytes; /* capacity of data in bytes */
    bool owned;    /* data freed by graft_tensor_destroy */
} graft_tensor;

/* Product of dims (1 for rank 0). Returns -1 on overflow or a negative dim. */
int64_t graft_shape_nelem(int rank, const int64_t *dims);
int64_t graft_tensor_nelem(const graft_tensor *t);

/* Allocates a zero-filled owned tensor. */
graft_status graft_tensor_create(graft_dtype dt, int rank, const int64_t *dims,
                                 graft_tensor **out, graft_error *err);
/* A tensor over caller memory; the caller keeps ownership of data. */
graft_status graft_tensor_attach(graft_dtype dt, int rank, const int64_t *dims, void *data,
                                 graft_tensor **out, graft_error *err);
/* Deep copy (always owned). */
graft_status graft_tensor_clone(const graft_tensor *src, graft_tensor **out, graft_error *err);
/* A float32 copy of a FLOAT/FLOAT16/BFLOAT16/DOUBLE/integer tensor. */
graft_status graft_tensor_to_f32(const graft_tensor *src, graft_tensor **out, graft_error *err);
void graft_tensor_destroy(graft_tensor *t);

/* Changes shape (and dtype) in place, growing owned storage when needed;
 * contents are unspecified afterwards. Fails on attached tensors that are too small. */
graft_status graft_tensor_reshape(graft_tensor *t, graft_dtype dt, int rank, const int64_t *dims,
                                  graft_error *err);

static inline float *graft_tensor_f32(const graft_tensor *t) { return (float *)t->data; }
static inline int64_t *graft_tensor_i64(const graft_tensor *t) { return (int64_t *)t->data; }

/* "[2,3,224,224]" into buf; returns buf. */
char *graft_shape_format(int rank, const int64_t *dims, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
