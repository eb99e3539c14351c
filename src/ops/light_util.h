/* ops/light_util.h - helpers private to the light ops (elementwise, activation,
 * softmax, shape ops): thread counts, axis checks, broadcast iteration. */
#ifndef GRAFT_OPS_LIGHT_UTIL_H
#define GRAFT_OPS_LIGHT_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/gemm.h" /* GRAFT_BLAS_SLACK */
#include "ops/op.h"

/* Below this much work (elements, times ~16 for transcendental ops) a
 * parallel region costs more than it saves: cheap elementwise ops are memory
 * bound and a second thread only pays off on large tensors. */
#define LU_PAR_MIN ((int64_t)1 << 18)

static inline int lu_threads(const graft_op_call *c, int64_t work)
{
    if (work < LU_PAR_MIN || !c->ctx || c->ctx->n_threads <= 1)
        return 1;
    return c->ctx->n_threads;
}

/* parse has no call: errors name the node directly. */
static inline graft_status lu_node_fail(graft_error *err, const graft_node *n, graft_status st,
                                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static inline graft_status lu_node_fail(graft_error *err, const graft_node *n, graft_status st,
                                        const char *fmt, ...)
{
    char label[256], msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return graft_error_set(err, st, "%s: %s", graft__node_label(n, label, sizeof label), msg);
}

/* Inputs actually present (trailing omitted ones do not count). */
static inline int lu_n_present(const graft_node *n)
{
    int k = n->n_inputs;
    while (k > 0 && n->inputs[k - 1] < 0)
        k--;
    return k;
}

static inline graft_status lu_check_inputs(graft_error *err, const graft_node *n, int lo, int hi)
{
    int k = lu_n_present(n);
    if (k < lo || k > hi) {
        if (lo == hi)
            return lu_node_fail(err, n, GRAFT_ERR_INVALID, "%s-%d takes %d input%s, got %d",
                                n->op_type, n->opset, lo, lo == 1 ? "" : "s", k);
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "%s-%d takes %d to %d inputs, got %d",
                            n->op_type, n->opset, lo, hi, k);
    }
    for (int i = 0; i < lo; i++)
        if (n->inputs[i] < 0)
            return lu_node_fail(err, n, GRAFT_ERR_INVALID, "required input %d is empty", i);
    if (n->n_outputs < 1 || n->outputs[0] < 0)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "output 0 is missing");
    return GRAFT_OK;
}

/* Normalises axis into [0, rank) (accepting [-rank, rank)); false if out of range. */
static inline bool lu_axis(int64_t axis, int rank, int *out)
{
    if (axis < -rank || axis >= rank)
        return false;
    *out = (int)(axis < 0 ? axis + rank : axis);
    return true;
}

/* A workspace of nbytes (+ BLAS slack): the plan's scratch when there is
 * one (no malloc in steady-state runs), else malloc'ed and *owned; release
 * with lu_work_free. */
static inline void *lu_work(graft_op_call *c, size_t nbytes, bool *owned)
{
    *owned = !c->ctx || !c->ctx->scratch;
    nbytes += GRAFT_BLAS_SLACK;
    if (*owned)
        return malloc(nbytes);
    return c->ctx->scratch(c->ctx, nbytes);
}

static inline void lu_work_free(void *p, bool owned)
{
    if (owned)
        free(p);
}

/* Bool computes as GRAFT_UINT8 holding 0/1 (what the importer produces);
 * GRAFT_BOOL with the same storage is accepted too. Real uint8 integers
 * compute as int64, so a 1-byte tensor is always a truth value. */
static inline bool lu_is_bool(graft_dtype dt)
{
    return dt == GRAFT_UINT8 || dt == GRAFT_BOOL;
}

static inline bool lu_is_compute_dtype(graft_dtype dt)
{
    return dt == GRAFT_FLOAT || dt == GRAFT_INT64 || lu_is_bool(dt);
}

/* Compute form of an ONNX element type: every float type computes as
 * float32, every integer as int64, bool as bool (uint8 0/1). */
static inline graft_dtype lu_compute_dtype(graft_dtype dt)
{
    switch (dt) {
    case GRAFT_FLOAT: case GRAFT_FLOAT16: case GRAFT_BFLOAT16: case GRAFT_DOUBLE:
        return GRAFT_FLOAT;
    case GRAFT_INT8: case GRAFT_UINT8: case GRAFT_UINT16: case GRAFT_INT16: case GRAFT_INT32:
    case GRAFT_INT64: case GRAFT_UINT32: case GRAFT_UINT64:
        return GRAFT_INT64;
    case GRAFT_BOOL:
        return GRAFT_UINT8;
    default:
        return GRAFT_DTYPE_UNDEFINED;
    }
}

static inline void lu_set_shape(graft_tensor *t, graft_dtype dt, int rank, const int64_t *dims)
{
    t->dtype = dt;
    t->rank = rank;
    if (rank > 0)
        memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
}

static inline void lu_copy_shape(graft_tensor *t, const graft_tensor *src)
{
    lu_set_shape(t, src->dtype, src->rank, src->dims);
}

/* Reads element i of an int64 or float tensor as int64 (attribute-like
 * inputs: axes, starts, shape). */
static inline int64_t lu_get_i64(const graft_tensor *t, int64_t i)
{
    if (t->dtype == GRAFT_FLOAT)
        return (int64_t)((const float *)t->data)[i];
    if (lu_is_bool(t->dtype))
        return ((const uint8_t *)t->data)[i];
    return ((const int64_t *)t->data)[i];
}

static inline double lu_get_f64(const graft_tensor *t, int64_t i)
{
    if (t->dtype == GRAFT_FLOAT)
        return ((const float *)t->data)[i];
    if (lu_is_bool(t->dtype))
        return ((const uint8_t *)t->data)[i];
    return (double)((const int64_t *)t->data)[i];
}

/* Row-major strides of a shape. */
static inline void lu_strides(int rank, const int64_t *dims, int64_t *strides)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

/* e^x for x in about [-87.3, 88.3] (clamped outside), ~1 ulp: Cephes'
 * polynomial, branch-free so that loops over it vectorise (libm's expf
 * does not). */
static inline float lu_expf(float x)
{
    x = x < -87.33654f ? -87.33654f : x;
    x = x > 88.37626f ? 88.37626f : x;
    float fl = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - fl * 0.693359375f + fl * 2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * r * r + r + 1.0f;
    union {
        uint32_t u;
        float f;
    } p2 = {.u = (uint32_t)((int32_t)fl + 127) << 23};
    return y * p2.f;
}

/* tanh as Eigen's rational approximation (a few ulp, vectorisable). */
static inline float lu_tanhf(float x)
{
    const float c = 7.99881172180175781f;
    float xc = x < -c ? -c : x > c ? c : x;
    float x2 = xc * xc;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * xc;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    float t = p / q;
    return (x < 0.0004f && x > -0.0004f) ? x : t;
}

/* Shared by the elementwise and activation files. */
void graft__light_copy(const graft_op_call *c, void *dst, const void *src, size_t nbytes);

#endif
