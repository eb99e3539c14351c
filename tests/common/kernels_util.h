/* tests/common/kernels_util.h - run one op outside a plan (parse, infer,
 * forward, backward), random data, finite-difference gradient checks, and a
 * test-only reader for the ONNX node test data (model.onnx with one node,
 * test_data_set_N/{input,output}_K.pb), independent of graft's importer. */
#ifndef GRAFT_KERNELS_UTIL_H
#define GRAFT_KERNELS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graft/graft.h"
#include "ops/op.h"

#define KT_MAX_IO 8

typedef struct kt_node {
    graft_graph *g;
    int32_t node;
    const graft_op_def *def;
    int n_in, n_out;
    void *params;
    graft_tensor *in[KT_MAX_IO];  /* owned; NULL = omitted */
    graft_tensor *out[KT_MAX_IO]; /* owned after infer */
    graft_exec_ctx ctx;
    void *scratch;
    size_t scratch_size;
    graft_error err;
} kt_node;

/* A node of op_type/domain at the given opset with n_in inputs and n_out outputs. */
kt_node *kt_node_new(const char *op_type, const char *domain, int opset, int n_in, int n_out);
void kt_node_free(kt_node *k);
void kt_set_int(kt_node *k, const char *name, int64_t v);
void kt_set_float(kt_node *k, const char *name, float v);
void kt_set_ints(kt_node *k, const char *name, int n, const int64_t *v);
void kt_set_floats(kt_node *k, const char *name, int n, const float *v);
void kt_set_string(kt_node *k, const char *name, const char *v);
/* Input i: a float tensor of the given shape (random in [-1,1) when rng is
 * non-NULL, zeros otherwise), or a shape-only tensor (no data) with shape_only. */
graft_tensor *kt_set_input(kt_node *k, int i, int rank, const int64_t *dims, uint64_t *rng);
graft_tensor *kt_set_input_shape(kt_node *k, int i, graft_dtype dt, int rank, const int64_t *dims);
void kt_set_input_tensor(kt_node *k, int i, graft_tensor *t); /* takes ownership */

graft_status kt_parse(kt_node *k);
/* Runs infer and (re)allocates the outputs. */
graft_status kt_infer(kt_node *k);
graft_status kt_forward(kt_node *k);
/* d_out[i] NULL: zero gradient. d_in[i]: accumulated into (NULL: not wanted). */
graft_status kt_backward(kt_node *k, graft_tensor *const *d_out, graft_tensor *const *d_in);

/* Random numbers. */
uint64_t kt_rand(uint64_t *s);
double kt_uniform(uint64_t *s);   /* [0,1) */
int kt_randint(uint64_t *s, int lo, int hi); /* [lo, hi] */
void kt_fill(float *x, int64_t n, uint64_t *rng);

/* Central-difference check of d(Σ r·Y0)/d(input wrt) against backward, on up
 * to max_points random elements. Returns the number of mismatches (prints
 * the first few). */
int kt_grad_check(kt_node *k, int wrt, double eps, double atol, double rtol, int max_points,
                  uint64_t *rng);

/* max |a-b| / (atol + rtol·|b|) over n elements; <= 1 means close. */
double kt_close(const float *a, const float *b, int64_t n, double atol, double rtol);

/* ONNX node test data. Loads dir/model.onnx (one node), builds the node with
 * its attributes and opset, sets the inputs from dir/test_data_set_0 and
 * returns the expected outputs in expected[] (n_out of them, NULL when not
 * stored). NULL when the files cannot be read. */
kt_node *kt_onnx_case(const char *dir, graft_tensor **expected, int *n_expected);
/* TensorProto file -> float32 (or int64 for integer types) tensor; NULL on error. */
graft_tensor *kt_read_tensor_pb(const char *path);

/* Runs every ONNX node test under /usr/share/libonnx-testdata/data/node whose
 * name starts with one of prefixes (skipping names containing skip): parse,
 * infer, forward, compare (1e-5 abs + 1e-4 rel) with cmocka asserts. Returns
 * how many ran (0: data absent). */
int kt_run_onnx_tests(const char *const *prefixes, int n_prefixes, const char *skip);

#endif
