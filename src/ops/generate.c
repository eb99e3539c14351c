/* ops/generate.c - ops that make a tensor rather than transform one:
 * ConstantOfShape, Range, Size, EyeLike, OneHot. None has a gradient.
 *
 *   ConstantOfShape  y[shape] = value (a one-element tensor attribute;
 *                    default float 0); an empty shape gives a scalar
 *   Range            y[i] = start + i delta, i < max(ceil((limit - start) / delta), 0)
 *   Size             y = nelem(x), int64 scalar
 *   EyeLike          y[i, j] = (j - i == k), shaped like the 2-D x
 *   OneHot           y[..., d, ...] = d == idx ? on : off at `axis`, with a
 *                    negative idx counting from depth; values = [off, on]
 *
 * ConstantOfShape's shape, Range's scalars and OneHot's depth size the
 * output, so infer needs their data when the plan is built; exporters compute
 * them as int64 chains (Shape -> Gather -> ... -> ConstantOfShape) that the
 * plan folds first, and it folds these ops in turn when their inputs are
 * known. Size and EyeLike read only shapes and fold always. */
#include <math.h>
#include <stdlib.h>

#include "ops/light_util.h"

/* A made-up tensor larger than this is a hostile or broken model. */
#define GEN_MAX_NELEM ((int64_t)1 << 32)

static graft_status needs_data(graft_op_call *c, int i, const char *what)
{
    if (!c->in[i]->data)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED,
                              "%s (input %d) is not known when the plan is built: the output "
                              "shape depends on runtime data",
                              what, i);
    return GRAFT_OK;
}

static graft_status check_nelem(graft_op_call *c, int r, const int64_t *dims)
{
    int64_t n = graft_shape_nelem(r, dims);
    if (n < 0 || n > GEN_MAX_NELEM) {
        char s[160];
        return graft__op_fail(c, GRAFT_ERR_INVALID,
                              "output shape %s is too large (over %lld elements)",
                              graft_shape_format(r, dims, s, sizeof s), (long long)GEN_MAX_NELEM);
    }
    return GRAFT_OK;
}

/* Writes n copies of the element at v (es bytes). */
static void fill(void *dst, const void *v, size_t es, int64_t n)
{
    if (es == 1) {
        memset(dst, *(const uint8_t *)v, (size_t)n);
    } else if (es == 4) {
        uint32_t x, *y = dst;
        memcpy(&x, v, 4);
        for (int64_t i = 0; i < n; i++)
            y[i] = x;
    } else {
        uint64_t x, *y = dst;
        memcpy(&x, v, 8);
        for (int64_t i = 0; i < n; i++)
            y[i] = x;
    }
}

/* ---- ConstantOfShape ------------------------------------------------------------- */

typedef struct cos_params {
    graft_dtype dtype; /* compute form */
    uint8_t value[8];
} cos_params;

static graft_status cos_parse(const graft_graph *g, const graft_node *n, void *params,
                              graft_error *err)
{
    (void)g;
    cos_params *p = params;
    memset(p, 0, sizeof *p);
    p->dtype = GRAFT_FLOAT;
    const graft_attr *a = graft_node_attr(n, "value");
    if (a) {
        if (a->type != GRAFT_ATTR_TENSOR)
            return lu_node_fail(err, n, GRAFT_ERR_INVALID, "value must be a tensor attribute");
        if (!a->t || !lu_is_compute_dtype(a->t->dtype))
            return lu_node_fail(err, n, GRAFT_ERR_UNSUPPORTED,
                                "value of element type %s is not supported",
                                a->t ? graft_dtype_name(a->t->dtype) : "unknown");
        if (graft_tensor_nelem(a->t) != 1)
            return lu_node_fail(err, n, GRAFT_ERR_INVALID,
                                "value must hold one element, not %lld",
                                (long long)graft_tensor_nelem(a->t));
        p->dtype = a->t->dtype;
        memcpy(p->value, a->t->data, graft_dtype_size(a->t->dtype));
    }
    return lu_check_inputs(err, n, 1, 1);
}

static graft_status cos_infer(graft_op_call *c)
{
    const cos_params *p = c->params;
    const graft_tensor *s = c->in[0];
    if (s->dtype != GRAFT_INT64 || s->rank != 1)
        return graft__op_fail(c, GRAFT_ERR_INVALID,
                              "the shape must be a 1-D int64 tensor, not %s of rank %d",
                              graft_dtype_name(s->dtype), s->rank);
    graft_status st = needs_data(c, 0, "the shape");
    if (st)
        return st;
    int64_t r = s->dims[0];
    if (r > GRAFT_MAX_RANK)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "output rank %lld exceeds %d",
                              (long long)r, GRAFT_MAX_RANK);
    const int64_t *dims = s->data;
    for (int i = 0; i < r; i++)
        if (dims[i] < 0)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "shape dim %d is negative (%lld)", i,
                                  (long long)dims[i]);
    if ((st = check_nelem(c, (int)r, dims)))
        return st;
    lu_set_shape(c->out[0], p->dtype, (int)r, dims);
    return GRAFT_OK;
}

static graft_status cos_forward(graft_op_call *c)
{
    const cos_params *p = c->params;
    graft_tensor *y = c->out[0];
    fill(y->data, p->value, graft_dtype_size(y->dtype), graft_tensor_nelem(y));
    return GRAFT_OK;
}

const graft_op_def graft__op_constant_of_shape = {
    .op_type = "ConstantOfShape", .domain = "", .min_opset = 9, .flags = 0,
    .params_size = sizeof(cos_params), .parse = cos_parse, .infer = cos_infer,
    .forward = cos_forward, .backward = NULL};

/* ---- Range --------------------------------------------------------------------------- */

static graft_status range_parse(const graft_graph *g, const graft_node *n, void *params,
                                graft_error *err)
{
    (void)g;
    (void)params;
    return lu_check_inputs(err, n, 3, 3);
}

/* Element count from the three known scalars; refuses delta 0, values that
 * are not finite and absurd counts. */
static graft_status range_length(graft_op_call *c, int64_t *out)
{
    const graft_tensor *ts = c->in[0], *tl = c->in[1], *td = c->in[2];
    int64_t n;
    *out = 0;
    if (ts->dtype == GRAFT_INT64) {
        int64_t s = lu_get_i64(ts, 0), l = lu_get_i64(tl, 0), d = lu_get_i64(td, 0);
        if (d == 0)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "delta is 0");
        /* the distance as uint64 is exact even where limit - start overflows */
        uint64_t dist, step;
        if (d > 0 ? l <= s : l >= s)
            return GRAFT_OK;
        dist = d > 0 ? (uint64_t)l - (uint64_t)s : (uint64_t)s - (uint64_t)l;
        step = d > 0 ? (uint64_t)d : 0 - (uint64_t)d;
        uint64_t u = (dist - 1) / step + 1;
        n = u > (uint64_t)GEN_MAX_NELEM ? GEN_MAX_NELEM + 1 : (int64_t)u;
    } else {
        double s = lu_get_f64(ts, 0), l = lu_get_f64(tl, 0), d = lu_get_f64(td, 0);
        if (!isfinite(s) || !isfinite(l) || !isfinite(d) || d == 0.0)
            return graft__op_fail(c, GRAFT_ERR_INVALID,
                                  "start %g, limit %g, delta %g give no range", s, l, d);
        double len = ceil((l - s) / d);
        if (!(len > 0))
            return GRAFT_OK;
        n = len > (double)GEN_MAX_NELEM ? GEN_MAX_NELEM + 1 : (int64_t)len;
    }
    if (n > GEN_MAX_NELEM)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "the range has over %lld elements",
                              (long long)GEN_MAX_NELEM);
    *out = n;
    return GRAFT_OK;
}

static graft_status range_infer(graft_op_call *c)
{
    static const char *const what[3] = {"start", "limit", "delta"};
    graft_dtype dt = c->in[0]->dtype;
    if (dt != GRAFT_FLOAT && dt != GRAFT_INT64)
        return graft__op_fail(c,
                              lu_is_compute_dtype(dt) ? GRAFT_ERR_INVALID : GRAFT_ERR_UNSUPPORTED,
                              "element type %s is not supported", graft_dtype_name(dt));
    for (int i = 0; i < 3; i++) {
        const graft_tensor *t = c->in[i];
        if (t->dtype != dt)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "%s is %s but start is %s", what[i],
                                  graft_dtype_name(t->dtype), graft_dtype_name(dt));
        if (t->rank > 1 || graft_tensor_nelem(t) != 1)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "%s must be a scalar", what[i]);
    }
    for (int i = 0; i < 3; i++) {
        graft_status st = needs_data(c, i, what[i]);
        if (st)
            return st;
    }
    int64_t n = 0;
    graft_status st = range_length(c, &n);
    if (st)
        return st;
    lu_set_shape(c->out[0], dt, 1, &n);
    return GRAFT_OK;
}

static graft_status range_forward(graft_op_call *c)
{
    graft_tensor *y = c->out[0];
    int64_t n = graft_tensor_nelem(y);
    if (y->dtype == GRAFT_INT64) {
        uint64_t s = (uint64_t)lu_get_i64(c->in[0], 0), d = (uint64_t)lu_get_i64(c->in[2], 0);
        int64_t *o = y->data;
        for (int64_t i = 0; i < n; i++)
            o[i] = (int64_t)(s + (uint64_t)i * d);
    } else {
        /* start + i delta each (in double, as numpy's arange), not a running sum
         * that drifts */
        double s = lu_get_f64(c->in[0], 0), d = lu_get_f64(c->in[2], 0);
        float *o = y->data;
        for (int64_t i = 0; i < n; i++)
            o[i] = (float)(s + (double)i * d);
    }
    return GRAFT_OK;
}

const graft_op_def graft__op_range = {
    .op_type = "Range", .domain = "", .min_opset = 11, .flags = 0, .params_size = 0,
    .parse = range_parse, .infer = range_infer, .forward = range_forward, .backward = NULL};

/* ---- Size ------------------------------------------------------------------------------ */

static graft_status one_input_parse(const graft_graph *g, const graft_node *n, void *params,
                                    graft_error *err)
{
    (void)g;
    (void)params;
    return lu_check_inputs(err, n, 1, 1);
}

static graft_status size_infer(graft_op_call *c)
{
    lu_set_shape(c->out[0], GRAFT_INT64, 0, NULL);
    return GRAFT_OK;
}

static graft_status size_forward(graft_op_call *c)
{
    graft_tensor_i64(c->out[0])[0] = graft_tensor_nelem(c->in[0]);
    return GRAFT_OK;
}

const graft_op_def graft__op_size = {
    .op_type = "Size", .domain = "", .min_opset = 1, .flags = GRAFT_OP_SHAPE_ONLY,
    .params_size = 0, .parse = one_input_parse, .infer = size_infer, .forward = size_forward,
    .backward = NULL};

/* ---- EyeLike ------------------------------------------------------------------------------ */

typedef struct eye_params {
    graft_dtype dtype; /* compute form; UNDEFINED: the input's */
    int64_t k;
} eye_params;

static graft_status eye_parse(const graft_graph *g, const graft_node *n, void *params,
                              graft_error *err)
{
    (void)g;
    eye_params *p = params;
    p->k = graft_node_attr_int(n, "k", 0);
    p->dtype = GRAFT_DTYPE_UNDEFINED;
    if (graft_node_attr(n, "dtype")) {
        graft_dtype dt = (graft_dtype)graft_node_attr_int(n, "dtype", 0);
        p->dtype = lu_compute_dtype(dt);
        if (p->dtype == GRAFT_DTYPE_UNDEFINED)
            return lu_node_fail(err, n, GRAFT_ERR_UNSUPPORTED, "dtype %s is not supported",
                                graft_dtype_name(dt));
    }
    return lu_check_inputs(err, n, 1, 1);
}

static graft_status eye_infer(graft_op_call *c)
{
    const eye_params *p = c->params;
    const graft_tensor *x = c->in[0];
    if (!lu_is_compute_dtype(x->dtype))
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "element type %s is not supported",
                              graft_dtype_name(x->dtype));
    if (x->rank != 2)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "the input must be 2-D, not rank %d", x->rank);
    lu_set_shape(c->out[0], p->dtype ? p->dtype : x->dtype, 2, x->dims);
    return GRAFT_OK;
}

static graft_status eye_forward(graft_op_call *c)
{
    const eye_params *p = c->params;
    graft_tensor *y = c->out[0];
    int64_t rows = y->dims[0], cols = y->dims[1], k = p->k;
    memset(y->data, 0, (size_t)graft_tensor_nelem(y) * graft_dtype_size(y->dtype));
    if (k >= cols || k <= -rows)
        return GRAFT_OK;
    int64_t i0 = k < 0 ? -k : 0, i1 = cols - k < rows ? cols - k : rows;
    for (int64_t i = i0; i < i1; i++) {
        int64_t at = i * cols + i + k;
        switch (y->dtype) {
        case GRAFT_FLOAT: graft_tensor_f32(y)[at] = 1.0f; break;
        case GRAFT_INT64: graft_tensor_i64(y)[at] = 1; break;
        default: ((uint8_t *)y->data)[at] = 1; break;
        }
    }
    return GRAFT_OK;
}

const graft_op_def graft__op_eye_like = {
    .op_type = "EyeLike", .domain = "", .min_opset = 9, .flags = GRAFT_OP_SHAPE_ONLY,
    .params_size = sizeof(eye_params), .parse = eye_parse, .infer = eye_infer,
    .forward = eye_forward, .backward = NULL};

/* ---- OneHot ----------------------------------------------------------------------------- */

typedef struct onehot_params {
    int64_t axis;
} onehot_params;

static graft_status onehot_parse(const graft_graph *g, const graft_node *n, void *params,
                                 graft_error *err)
{
    (void)g;
    onehot_params *p = params;
    p->axis = graft_node_attr_int(n, "axis", -1);
    return lu_check_inputs(err, n, 3, 3);
}

static graft_status onehot_infer(graft_op_call *c)
{
    const onehot_params *p = c->params;
    const graft_tensor *ind = c->in[0], *td = c->in[1], *val = c->in[2];
    if (ind->dtype != GRAFT_FLOAT && ind->dtype != GRAFT_INT64)
        return graft__op_fail(c, lu_is_compute_dtype(ind->dtype) ? GRAFT_ERR_INVALID
                                                                 : GRAFT_ERR_UNSUPPORTED,
                              "indices of type %s are not supported", graft_dtype_name(ind->dtype));
    if (td->dtype != GRAFT_FLOAT && td->dtype != GRAFT_INT64)
        return graft__op_fail(c, lu_is_compute_dtype(td->dtype) ? GRAFT_ERR_INVALID
                                                                : GRAFT_ERR_UNSUPPORTED,
                              "depth of type %s is not supported", graft_dtype_name(td->dtype));
    if (td->rank > 1 || graft_tensor_nelem(td) != 1)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "depth must be a scalar");
    if (!lu_is_compute_dtype(val->dtype))
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "values of type %s are not supported",
                              graft_dtype_name(val->dtype));
    if (val->rank != 1 || val->dims[0] != 2)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "values must be [off, on] (2 elements)");
    int r = ind->rank + 1, ax = 0;
    if (r > GRAFT_MAX_RANK)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "output rank %d exceeds %d", r,
                              GRAFT_MAX_RANK);
    if (!lu_axis(p->axis, r, &ax))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is out of range for rank %d",
                              (long long)p->axis, r);
    graft_status st = needs_data(c, 1, "depth");
    if (st)
        return st;
    double dd = lu_get_f64(td, 0);
    if (!(dd >= 1.0) || dd > (double)GEN_MAX_NELEM)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "depth %g is not a positive size", dd);
    int64_t depth = td->dtype == GRAFT_INT64 ? lu_get_i64(td, 0) : (int64_t)dd;
    int64_t dims[GRAFT_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++)
        dims[i] = i == ax ? depth : ind->dims[j++];
    if ((st = check_nelem(c, r, dims)))
        return st;
    lu_set_shape(c->out[0], val->dtype, r, dims);
    return GRAFT_OK;
}

static graft_status onehot_forward(graft_op_call *c)
{
    const onehot_params *p = c->params;
    const graft_tensor *ind = c->in[0], *val = c->in[2];
    graft_tensor *y = c->out[0];
    int ax = 0;
    lu_axis(p->axis, y->rank, &ax);
    int64_t depth = y->dims[ax];
    int64_t outer = graft_shape_nelem(ax, ind->dims);
    int64_t inner = graft_shape_nelem(ind->rank - ax, ind->dims + ax);
    size_t es = graft_dtype_size(y->dtype);
    const char *off = val->data, *on = off + es;
    char *out = y->data;
    fill(out, off, es, graft_tensor_nelem(y));
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            int64_t k = o * inner + i, d;
            if (ind->dtype == GRAFT_INT64) {
                d = graft_tensor_i64(ind)[k];
            } else {
                float f = graft_tensor_f32(ind)[k];
                /* a float index truncates; NaN or one far off matches no class */
                d = f == f && fabsf(f) < 9.0e18f ? (int64_t)f : INT64_MAX;
            }
            if (d < 0 && d >= -depth)
                d += depth;
            if (d < 0 || d >= depth)
                continue;
            memcpy(out + (size_t)((o * depth + d) * inner + i) * es, on, es);
        }
    }
    return GRAFT_OK;
}

const graft_op_def graft__op_one_hot = {
    .op_type = "OneHot", .domain = "", .min_opset = 9, .flags = 0,
    .params_size = sizeof(onehot_params), .parse = onehot_parse, .infer = onehot_infer,
    .forward = onehot_forward, .backward = NULL};
