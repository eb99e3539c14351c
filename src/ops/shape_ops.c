/* Ops that only rename, relabel or copy data: Reshape, Flatten, Squeeze,
 * Unsqueeze, Identity, Dropout, Shape, Constant, Cast, CastLike.
 *
 *   Reshape/Flatten/Squeeze/Unsqueeze/Identity: y = x (new shape), dx += dy.
 *   Dropout: inference y = x, mask = all true. Training (ctx->training, on
 *     the trained part of the graph, never in a frozen backbone) draws
 *     m ~ Bernoulli(1 - ratio) and gives y = x m / (1 - ratio), dx += dy m / (1 - ratio).
 *   Shape, Constant, Cast, CastLike: no gradient. CastLike(x, like) is Cast to
 *     like's declared element type (from the graph; its compute type when the
 *     graph does not say), so a float16 `like` rounds as Cast to=FLOAT16 does.
 *
 * Where an output shape depends on input data (Reshape's shape, Squeeze and
 * Unsqueeze axes as inputs) infer reads it; the executor provides it at build
 * time when it is constant. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "ops/light_util.h"

static graft_status needs_data(graft_op_call *c, int i, const char *what)
{
    if (!c->in[i]->data)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED,
                              "%s (input %d) is not known when the plan is built: shape depends "
                              "on runtime data",
                              what, i);
    if (c->in[i]->dtype != GRAFT_INT64)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "%s (input %d) must be int64, not %s", what, i,
                              graft_dtype_name(c->in[i]->dtype));
    if (c->in[i]->rank > 1)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "%s (input %d) must be 1-D, not rank %d", what,
                              i, c->in[i]->rank);
    return GRAFT_OK;
}

static void copy_forward(graft_op_call *c)
{
    const graft_tensor *x = c->in[0];
    graft__light_copy(c, c->out[0]->data, x->data,
                      (size_t)graft_tensor_nelem(x) * graft_dtype_size(x->dtype));
}

static graft_status copy_forward_op(graft_op_call *c)
{
    copy_forward(c);
    return GRAFT_OK;
}

/* dx += dy for every op whose output is its input in another shape. */
static graft_status flat_backward(graft_op_call *c)
{
    if (!c->d_in[0] || !c->d_out[0])
        return GRAFT_OK;
    float *dx = c->d_in[0]->data;
    const float *dy = c->d_out[0]->data;
    int64_t n = graft_tensor_nelem(c->d_in[0]);
    for (int64_t i = 0; i < n; i++)
        dx[i] += dy[i];
    return GRAFT_OK;
}

static graft_status one_input_parse(const graft_graph *g, const graft_node *n, void *params,
                                    graft_error *err)
{
    (void)g;
    (void)params;
    return lu_check_inputs(err, n, 1, 1);
}

/* ---- Reshape --------------------------------------------------------------- */

typedef struct reshape_params {
    bool allowzero;
    bool shape_attr; /* Reshape-1: shape is an attribute */
    int n_shape;
    int64_t shape[GRAFT_MAX_RANK];
} reshape_params;

static graft_status reshape_parse(const graft_graph *g, const graft_node *n, void *params,
                                  graft_error *err)
{
    (void)g;
    reshape_params *p = params;
    p->allowzero = graft_node_attr_int(n, "allowzero", 0) != 0;
    if (n->opset > 0 && n->opset < 5) {
        const int64_t *v = NULL;
        int k = graft_node_attr_ints(n, "shape", &v);
        if (k < 0)
            return lu_node_fail(err, n, GRAFT_ERR_INVALID, "Reshape-%d needs a shape attribute",
                                n->opset);
        if (k > GRAFT_MAX_RANK)
            return lu_node_fail(err, n, GRAFT_ERR_UNSUPPORTED, "rank %d exceeds %d", k,
                                GRAFT_MAX_RANK);
        p->shape_attr = true;
        p->n_shape = k;
        memcpy(p->shape, v, (size_t)k * sizeof *v);
        return lu_check_inputs(err, n, 1, 1);
    }
    return lu_check_inputs(err, n, 2, 2);
}

static graft_status reshape_infer(graft_op_call *c)
{
    const reshape_params *p = c->params;
    const graft_tensor *x = c->in[0];
    const int64_t *shape = p->shape;
    int k = p->n_shape;
    char s1[160], s2[160];
    if (!p->shape_attr) {
        graft_status st = needs_data(c, 1, "the target shape");
        if (st)
            return st;
        int64_t len = graft_tensor_nelem(c->in[1]);
        if (len > GRAFT_MAX_RANK)
            return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "target rank %lld exceeds %d",
                                  (long long)len, GRAFT_MAX_RANK);
        k = (int)len;
        shape = c->in[1]->data;
    }
    int64_t dims[GRAFT_MAX_RANK];
    int minus = -1;
    bool has_zero = false;
    int64_t known = 1;
    for (int i = 0; i < k; i++) {
        int64_t v = shape[i];
        if (v == -1) {
            if (minus >= 0)
                return graft__op_fail(c, GRAFT_ERR_INVALID, "shape %s has more than one -1",
                                      graft_shape_format(k, shape, s1, sizeof s1));
            minus = i;
            dims[i] = 1;
            continue;
        }
        if (v < -1)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "shape %s has a negative size",
                                  graft_shape_format(k, shape, s1, sizeof s1));
        if (v == 0 && !p->allowzero) {
            if (i >= x->rank)
                return graft__op_fail(c, GRAFT_ERR_SHAPE,
                                      "shape %s copies dim %d but the input %s has rank %d",
                                      graft_shape_format(k, shape, s1, sizeof s1), i,
                                      graft_shape_format(x->rank, x->dims, s2, sizeof s2),
                                      x->rank);
            v = x->dims[i];
        }
        if (v == 0)
            has_zero = true;
        dims[i] = v;
        known *= v;
    }
    if (minus >= 0 && p->allowzero && has_zero)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "shape %s has both -1 and 0 with allowzero=1",
                              graft_shape_format(k, shape, s1, sizeof s1));
    int64_t total = graft_tensor_nelem(x);
    if (minus >= 0) {
        if (known == 0 || total % known != 0)
            goto mismatch;
        dims[minus] = total / known;
    } else if (known != total) {
        goto mismatch;
    }
    lu_set_shape(c->out[0], x->dtype, k, dims);
    return GRAFT_OK;
mismatch:
    if (k > 0 && x->rank > 0 && shape[0] > 0 && shape[0] != x->dims[0] && total > 0 &&
        x->dims[0] > 0 && (minus < 0 ? known / shape[0] * x->dims[0] == total
                                     : shape[0] != x->dims[0]))
        return graft__op_fail(c, GRAFT_ERR_SHAPE,
                              "shape %s does not fit the input %s (%lld elements): dim 0 of the "
                              "shape is a literal %lld while the input batch is %lld; the batch "
                              "size was probably baked in at export (use -1 or 0 for dim 0, or "
                              "run with batch %lld)",
                              graft_shape_format(k, shape, s1, sizeof s1),
                              graft_shape_format(x->rank, x->dims, s2, sizeof s2),
                              (long long)total, (long long)shape[0], (long long)x->dims[0],
                              (long long)shape[0]);
    return graft__op_fail(c, GRAFT_ERR_SHAPE, "shape %s does not fit the input %s (%lld elements)",
                          graft_shape_format(k, shape, s1, sizeof s1),
                          graft_shape_format(x->rank, x->dims, s2, sizeof s2), (long long)total);
}

const graft_op_def graft__op_reshape = {
    .op_type = "Reshape", .domain = "", .min_opset = 1, .flags = GRAFT_OP_ALIAS_INPUT0,
    .params_size = sizeof(reshape_params), .parse = reshape_parse, .infer = reshape_infer,
    .forward = copy_forward_op, .backward = flat_backward};

/* ---- Flatten --------------------------------------------------------------- */

typedef struct axis_params {
    int64_t axis;
} axis_params;

static graft_status flatten_parse(const graft_graph *g, const graft_node *n, void *params,
                                  graft_error *err)
{
    (void)g;
    axis_params *p = params;
    p->axis = graft_node_attr_int(n, "axis", 1);
    return lu_check_inputs(err, n, 1, 1);
}

static graft_status flatten_infer(graft_op_call *c)
{
    const axis_params *p = c->params;
    const graft_tensor *x = c->in[0];
    int r = x->rank;
    if (p->axis < -r || p->axis > r)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is out of range for rank %d",
                              (long long)p->axis, r);
    int ax = (int)(p->axis < 0 ? p->axis + r : p->axis);
    int64_t dims[2] = {graft_shape_nelem(ax, x->dims), graft_shape_nelem(r - ax, x->dims + ax)};
    lu_set_shape(c->out[0], x->dtype, 2, dims);
    return GRAFT_OK;
}

const graft_op_def graft__op_flatten = {
    .op_type = "Flatten", .domain = "", .min_opset = 1, .flags = GRAFT_OP_ALIAS_INPUT0,
    .params_size = sizeof(axis_params), .parse = flatten_parse, .infer = flatten_infer,
    .forward = copy_forward_op, .backward = flat_backward};

/* ---- Squeeze / Unsqueeze ------------------------------------------------------ */

typedef struct squeeze_params {
    bool axes_input; /* opset >= 13: axes come from input 1 */
    int n_axes;      /* attribute form; -1: absent */
    int64_t axes[GRAFT_MAX_RANK];
} squeeze_params;

static graft_status squeeze_parse(const graft_graph *g, const graft_node *n, void *params,
                                  graft_error *err)
{
    (void)g;
    squeeze_params *p = params;
    bool unsq = !strcmp(n->op_type, "Unsqueeze");
    p->axes_input = n->opset >= 13 || n->opset <= 0;
    p->n_axes = -1;
    if (p->axes_input)
        return lu_check_inputs(err, n, unsq ? 2 : 1, 2);
    const int64_t *v = NULL;
    int k = graft_node_attr_ints(n, "axes", &v);
    if (k > GRAFT_MAX_RANK)
        return lu_node_fail(err, n, GRAFT_ERR_UNSUPPORTED, "%d axes exceed rank %d", k,
                            GRAFT_MAX_RANK);
    if (k < 0 && unsq)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "Unsqueeze-%d needs an axes attribute",
                            n->opset);
    p->n_axes = k;
    if (k > 0)
        memcpy(p->axes, v, (size_t)k * sizeof *v);
    return lu_check_inputs(err, n, 1, 1);
}

/* The axes list (attribute or input 1); *n = -1 when absent. */
static graft_status squeeze_axes(graft_op_call *c, int *n, const int64_t **axes)
{
    const squeeze_params *p = c->params;
    if (!p->axes_input) {
        *n = p->n_axes;
        *axes = p->axes;
        return GRAFT_OK;
    }
    if (c->n_in < 2 || !c->in[1]) {
        *n = -1;
        return GRAFT_OK;
    }
    graft_status st = needs_data(c, 1, "axes");
    if (st)
        return st;
    int64_t k = graft_tensor_nelem(c->in[1]);
    if (k > GRAFT_MAX_RANK)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "%lld axes are too many", (long long)k);
    *n = (int)k;
    *axes = c->in[1]->data;
    return GRAFT_OK;
}

static graft_status squeeze_infer(graft_op_call *c)
{
    const graft_tensor *x = c->in[0];
    int k = -1;
    const int64_t *axes = NULL;
    graft_status st = squeeze_axes(c, &k, &axes);
    if (st)
        return st;
    bool drop[GRAFT_MAX_RANK] = {false};
    if (k < 0) {
        for (int i = 0; i < x->rank; i++)
            drop[i] = x->dims[i] == 1;
    } else {
        for (int i = 0; i < k; i++) {
            int ax = 0;
            if (!lu_axis(axes[i], x->rank, &ax))
                return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is out of range for rank %d",
                                      (long long)axes[i], x->rank);
            if (drop[ax])
                return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is repeated",
                                      (long long)axes[i]);
            if (x->dims[ax] != 1)
                return graft__op_fail(c, GRAFT_ERR_SHAPE,
                                      "cannot squeeze axis %lld of size %lld (must be 1)",
                                      (long long)axes[i], (long long)x->dims[ax]);
            drop[ax] = true;
        }
    }
    int64_t dims[GRAFT_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++)
        if (!drop[i])
            dims[r++] = x->dims[i];
    lu_set_shape(c->out[0], x->dtype, r, dims);
    return GRAFT_OK;
}

static graft_status unsqueeze_infer(graft_op_call *c)
{
    const graft_tensor *x = c->in[0];
    int k = -1;
    const int64_t *axes = NULL;
    graft_status st = squeeze_axes(c, &k, &axes);
    if (st)
        return st;
    if (k < 0)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "axes are missing");
    int r = x->rank + k;
    if (r > GRAFT_MAX_RANK)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "output rank %d exceeds %d", r,
                              GRAFT_MAX_RANK);
    bool ins[GRAFT_MAX_RANK] = {false};
    for (int i = 0; i < k; i++) {
        int ax = 0;
        if (!lu_axis(axes[i], r, &ax))
            return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is out of range for rank %d",
                                  (long long)axes[i], r);
        if (ins[ax])
            return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is repeated", (long long)axes[i]);
        ins[ax] = true;
    }
    int64_t dims[GRAFT_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++)
        dims[i] = ins[i] ? 1 : x->dims[j++];
    lu_set_shape(c->out[0], x->dtype, r, dims);
    return GRAFT_OK;
}

const graft_op_def graft__op_squeeze = {
    .op_type = "Squeeze", .domain = "", .min_opset = 1, .flags = GRAFT_OP_ALIAS_INPUT0,
    .params_size = sizeof(squeeze_params), .parse = squeeze_parse, .infer = squeeze_infer,
    .forward = copy_forward_op, .backward = flat_backward};

const graft_op_def graft__op_unsqueeze = {
    .op_type = "Unsqueeze", .domain = "", .min_opset = 1, .flags = GRAFT_OP_ALIAS_INPUT0,
    .params_size = sizeof(squeeze_params), .parse = squeeze_parse, .infer = unsqueeze_infer,
    .forward = copy_forward_op, .backward = flat_backward};

/* ---- Identity ----------------------------------------------------------------- */

static graft_status identity_infer(graft_op_call *c)
{
    lu_copy_shape(c->out[0], c->in[0]);
    return GRAFT_OK;
}

const graft_op_def graft__op_identity = {
    .op_type = "Identity", .domain = "", .min_opset = 1, .flags = GRAFT_OP_ALIAS_INPUT0,
    .params_size = 0, .parse = one_input_parse, .infer = identity_infer,
    .forward = copy_forward_op, .backward = flat_backward};

/* ---- Dropout ------------------------------------------------------------------ */

typedef struct dropout_params {
    float ratio;       /* attribute form (opset < 12) or default */
    bool ratio_input;  /* opset >= 12: ratio is input 1 when present */
    graft_dtype mask_dtype;
    bool trained;      /* on the trained part of the graph: drops in training */
} dropout_params;

/* A Dropout regularises what is being trained: its input carries a gradient
 * (after a trained layer) or its output feeds a node with a trainable
 * parameter (the new head's dense layer right after the features). A frozen
 * backbone's Dropout is neither, and stays identity even in training, even
 * with training_mode=true in the file. */
static bool dropout_trained(const graft_graph *g, const graft_node *n)
{
    if (n->inputs[0] >= 0 && g->values[n->inputs[0]].needs_grad)
        return true;
    int32_t y = n->outputs[0];
    for (int32_t i = 0; y >= 0 && i < g->n_nodes; i++) {
        const graft_node *m = &g->nodes[i];
        bool consumes = false;
        for (int k = 0; !m->removed && k < m->n_inputs; k++)
            consumes |= m->inputs[k] == y;
        for (int k = 0; consumes && k < m->n_inputs; k++)
            if (m->inputs[k] >= 0 && g->values[m->inputs[k]].trainable)
                return true;
    }
    return false;
}

static graft_status dropout_parse(const graft_graph *g, const graft_node *n, void *params,
                                  graft_error *err)
{
    dropout_params *p = params;
    bool modern = n->opset >= 12 || n->opset <= 0;
    p->ratio = graft_node_attr_float(n, "ratio", 0.5f);
    p->ratio_input = modern;
    /* the mask is of the data type T up to opset 9, bool from opset 10 */
    p->mask_dtype = n->opset > 0 && n->opset < 10 ? GRAFT_FLOAT : GRAFT_UINT8;
    if (n->n_outputs > 2)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "Dropout has at most 2 outputs, got %d",
                            n->n_outputs);
    graft_status st = lu_check_inputs(err, n, 1, modern ? 3 : 1);
    if (st)
        return st;
    p->trained = dropout_trained(g, n);
    return GRAFT_OK;
}

static graft_status dropout_infer(graft_op_call *c)
{
    const dropout_params *p = c->params;
    const graft_tensor *x = c->in[0];
    if (x->dtype != GRAFT_FLOAT)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "element type %s is not supported",
                              graft_dtype_name(x->dtype));
    if (p->ratio_input && c->n_in > 1 && c->in[1] && graft_tensor_nelem(c->in[1]) != 1)
        return graft__op_fail(c, GRAFT_ERR_SHAPE, "ratio must be a scalar");
    lu_copy_shape(c->out[0], x);
    if (c->n_out > 1 && c->out[1])
        lu_set_shape(c->out[1], p->mask_dtype, x->rank, x->dims);
    return GRAFT_OK;
}

static inline uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoroshiro128+ step on the executor's stream. */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t s0 = s[0], s1 = s[1], r = s0 + s1;
    s1 ^= s0;
    s[0] = rotl64(s0, 24) ^ s1 ^ (s1 << 16);
    s[1] = rotl64(s1, 37);
    return r;
}

static bool dropout_active(const graft_op_call *c)
{
    const dropout_params *p = c->params;
    return c->ctx && c->ctx->training && c->state && p->trained;
}

static graft_status dropout_forward(graft_op_call *c)
{
    const dropout_params *p = c->params;
    const graft_tensor *tx = c->in[0];
    int64_t n = graft_tensor_nelem(tx);
    graft_tensor *mask_out = c->n_out > 1 ? c->out[1] : NULL;
    float ratio = p->ratio;
    if (p->ratio_input && c->n_in > 1 && c->in[1] && c->in[1]->data)
        ratio = (float)lu_get_f64(c->in[1], 0);
    if (!(ratio >= 0.0f && ratio < 1.0f) && !(ratio == 1.0f))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "ratio %g is outside [0, 1]", (double)ratio);
    /* ONNX's semantics asked for (stored_training_form): with training_mode
     * true at run time the output is random unless the ratio is 0, and no
     * reference could be met; the plan already refused the cases it could
     * see when it was built */
    if (c->ctx && c->ctx->stored_training_form && ratio != 0.0f && c->n_in > 2 && c->in[2] &&
        c->in[2]->data && lu_get_f64(c->in[2], 0) != 0)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED,
                              "training_mode is true with ratio %g: the output is random; graft "
                              "runs such a Dropout only in inference form",
                              (double)ratio);
    if (!dropout_active(c) || ratio == 0.0f) {
        if (c->state && *c->state) {
            graft_tensor_destroy(*c->state);
            *c->state = NULL;
        }
        copy_forward(c);
        if (mask_out) {
            if (mask_out->dtype == GRAFT_FLOAT)
                for (int64_t i = 0; i < n; i++)
                    graft_tensor_f32(mask_out)[i] = 1.0f;
            else
                memset(mask_out->data, 1, (size_t)n);
        }
        return GRAFT_OK;
    }
    /* state holds m / (1 - ratio) per element: what backward multiplies by */
    graft_tensor *s = *c->state;
    if (!s) {
        graft_status st = graft_tensor_create(GRAFT_FLOAT, tx->rank, tx->dims, &s, c->err);
        if (st)
            return st;
        *c->state = s;
    } else {
        graft_status st = graft_tensor_reshape(s, GRAFT_FLOAT, tx->rank, tx->dims, c->err);
        if (st)
            return st;
    }
    float scale = ratio < 1.0f ? 1.0f / (1.0f - ratio) : 0.0f;
    float *m = s->data;
    const float *x = tx->data;
    float *y = c->out[0]->data;
    /* 24-bit uniforms compared against the ratio, drawn serially so that a
     * seed gives the same masks whatever the thread count */
    uint32_t thresh = (uint32_t)((double)ratio * 16777216.0);
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)(rng_next(c->ctx->rng) >> 40);
        m[i] = u >= thresh ? scale : 0.0f;
    }
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * m[i];
    if (mask_out) {
        for (int64_t i = 0; i < n; i++) {
            if (mask_out->dtype == GRAFT_FLOAT)
                graft_tensor_f32(mask_out)[i] = m[i] != 0.0f ? 1.0f : 0.0f;
            else
                ((uint8_t *)mask_out->data)[i] = m[i] != 0.0f;
        }
    }
    return GRAFT_OK;
}

static graft_status dropout_backward(graft_op_call *c)
{
    if (!c->d_in[0] || !c->d_out[0])
        return GRAFT_OK;
    const graft_tensor *s = c->state ? *c->state : NULL;
    if (!s)
        return flat_backward(c);
    float *dx = c->d_in[0]->data;
    const float *dy = c->d_out[0]->data, *m = s->data;
    int64_t n = graft_tensor_nelem(c->d_in[0]);
    for (int64_t i = 0; i < n; i++)
        dx[i] += dy[i] * m[i];
    return GRAFT_OK;
}

const graft_op_def graft__op_dropout = {
    .op_type = "Dropout", .domain = "", .min_opset = 1, .flags = GRAFT_OP_ALIAS_INPUT0,
    .params_size = sizeof(dropout_params), .parse = dropout_parse, .infer = dropout_infer,
    .forward = dropout_forward, .backward = dropout_backward};

/* ---- Shape ------------------------------------------------------------------- */

typedef struct shape_params {
    int64_t start, end;
    bool has_end;
} shape_params;

static graft_status shape_parse(const graft_graph *g, const graft_node *n, void *params,
                                graft_error *err)
{
    (void)g;
    shape_params *p = params;
    p->start = graft_node_attr_int(n, "start", 0);
    p->has_end = graft_node_attr(n, "end") != NULL;
    p->end = graft_node_attr_int(n, "end", 0);
    return lu_check_inputs(err, n, 1, 1);
}

static void shape_range(const shape_params *p, int r, int64_t *start, int64_t *end)
{
    int64_t s = p->start, e = p->has_end ? p->end : r;
    s = s < 0 ? s + r : s;
    e = e < 0 ? e + r : e;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    *start = s;
    *end = e < s ? s : e;
}

static graft_status shape_infer(graft_op_call *c)
{
    int64_t s, e;
    shape_range(c->params, c->in[0]->rank, &s, &e);
    int64_t len = e - s;
    lu_set_shape(c->out[0], GRAFT_INT64, 1, &len);
    return GRAFT_OK;
}

static graft_status shape_forward(graft_op_call *c)
{
    int64_t s, e;
    shape_range(c->params, c->in[0]->rank, &s, &e);
    int64_t *y = c->out[0]->data;
    for (int64_t i = s; i < e; i++)
        y[i - s] = c->in[0]->dims[i];
    return GRAFT_OK;
}

const graft_op_def graft__op_shape = {
    .op_type = "Shape", .domain = "", .min_opset = 1, .flags = GRAFT_OP_SHAPE_ONLY,
    .params_size = sizeof(shape_params), .parse = shape_parse, .infer = shape_infer,
    .forward = shape_forward, .backward = NULL};

/* ---- Constant ------------------------------------------------------------------ */

typedef struct constant_params {
    const graft_attr *attr; /* owned by the graph, which outlives the plan */
} constant_params;

static graft_status constant_parse(const graft_graph *g, const graft_node *n, void *params,
                                   graft_error *err)
{
    (void)g;
    constant_params *p = params;
    static const char *const names[] = {"value", "value_float", "value_floats", "value_int",
                                        "value_ints"};
    p->attr = NULL;
    for (int i = 0; i < 5; i++) {
        const graft_attr *a = graft_node_attr(n, names[i]);
        if (!a)
            continue;
        if (p->attr)
            return lu_node_fail(err, n, GRAFT_ERR_INVALID, "has more than one value attribute");
        p->attr = a;
    }
    if (!p->attr) {
        if (graft_node_attr(n, "sparse_value") || graft_node_attr(n, "value_string") ||
            graft_node_attr(n, "value_strings"))
            return lu_node_fail(err, n, GRAFT_ERR_UNSUPPORTED,
                                "sparse and string constants are not supported");
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "has no value attribute");
    }
    if (p->attr->type == GRAFT_ATTR_TENSOR && !p->attr->t)
        return lu_node_fail(err, n, GRAFT_ERR_UNSUPPORTED, "tensor value has no data");
    if (n->n_outputs < 1 || n->outputs[0] < 0)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "output 0 is missing");
    return GRAFT_OK;
}

static graft_status constant_infer(graft_op_call *c)
{
    const constant_params *p = c->params;
    const graft_attr *a = p->attr;
    int64_t len = a->n;
    switch (a->type) {
    case GRAFT_ATTR_TENSOR:
        if (!lu_is_compute_dtype(a->t->dtype))
            return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "value of type %s",
                                  graft_dtype_name(a->t->dtype));
        lu_copy_shape(c->out[0], a->t);
        break;
    case GRAFT_ATTR_FLOAT: lu_set_shape(c->out[0], GRAFT_FLOAT, 0, NULL); break;
    case GRAFT_ATTR_INT: lu_set_shape(c->out[0], GRAFT_INT64, 0, NULL); break;
    case GRAFT_ATTR_FLOATS: lu_set_shape(c->out[0], GRAFT_FLOAT, 1, &len); break;
    case GRAFT_ATTR_INTS: lu_set_shape(c->out[0], GRAFT_INT64, 1, &len); break;
    default:
        return graft__op_fail(c, GRAFT_ERR_INVALID, "attribute '%s' has the wrong type", a->name);
    }
    return GRAFT_OK;
}

static graft_status constant_forward(graft_op_call *c)
{
    const constant_params *p = c->params;
    const graft_attr *a = p->attr;
    graft_tensor *y = c->out[0];
    switch (a->type) {
    case GRAFT_ATTR_TENSOR:
        memcpy(y->data, a->t->data, (size_t)graft_tensor_nelem(a->t) * graft_dtype_size(a->t->dtype));
        break;
    case GRAFT_ATTR_FLOAT: graft_tensor_f32(y)[0] = a->f; break;
    case GRAFT_ATTR_INT: graft_tensor_i64(y)[0] = a->i; break;
    case GRAFT_ATTR_FLOATS:
        if (a->n)
            memcpy(y->data, a->floats, (size_t)a->n * sizeof(float));
        break;
    default:
        if (a->n)
            memcpy(y->data, a->ints, (size_t)a->n * sizeof(int64_t));
        break;
    }
    return GRAFT_OK;
}

const graft_op_def graft__op_constant = {
    .op_type = "Constant", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(constant_params), .parse = constant_parse, .infer = constant_infer,
    .forward = constant_forward, .backward = NULL};

/* ---- Cast ---------------------------------------------------------------------- */

typedef struct cast_params {
    /* the ONNX target type; values are rounded/wrapped to it. CastLike whose
     * `like` has no declared type: UNDEFINED, forward uses the compute type */
    graft_dtype to;
    bool bf16_truncate;
} cast_params;

static graft_status cast_parse(const graft_graph *g, const graft_node *n, void *params,
                               graft_error *err)
{
    cast_params *p = params;
    bool like = !strcmp(n->op_type, "CastLike");
    /* Cast-19 specifies round-to-nearest-even for bfloat16; before it the
     * ONNX reference (and its backend test data) truncated the low bits */
    p->bf16_truncate = n->opset > 0 && n->opset < 19;
    if (like) {
        graft_status st = lu_check_inputs(err, n, 2, 2);
        if (st)
            return st;
        int32_t v = n->inputs[1];
        p->to = g && v < g->n_values ? g->values[v].dtype : GRAFT_DTYPE_UNDEFINED;
        if (p->to != GRAFT_DTYPE_UNDEFINED && lu_compute_dtype(p->to) == GRAFT_DTYPE_UNDEFINED)
            return lu_node_fail(err, n, GRAFT_ERR_UNSUPPORTED, "cast to %s is not supported",
                                graft_dtype_name(p->to));
        return GRAFT_OK;
    }
    const graft_attr *a = graft_node_attr(n, "to");
    if (!a)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "the 'to' attribute is missing");
    if (a->type == GRAFT_ATTR_STRING) {
        /* Cast-1 names the type: TensorProto's enum names */
        static const struct {
            const char *name;
            graft_dtype dt;
        } names[] = {{"FLOAT", GRAFT_FLOAT},     {"UINT8", GRAFT_UINT8},
                     {"INT8", GRAFT_INT8},       {"UINT16", GRAFT_UINT16},
                     {"INT16", GRAFT_INT16},     {"INT32", GRAFT_INT32},
                     {"INT64", GRAFT_INT64},     {"STRING", GRAFT_STRING},
                     {"BOOL", GRAFT_BOOL},       {"FLOAT16", GRAFT_FLOAT16},
                     {"DOUBLE", GRAFT_DOUBLE},   {"UINT32", GRAFT_UINT32},
                     {"UINT64", GRAFT_UINT64},   {"BFLOAT16", GRAFT_BFLOAT16}};
        p->to = GRAFT_DTYPE_UNDEFINED;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (a->s && !strcmp(a->s, names[i].name))
                p->to = names[i].dt;
        if (p->to == GRAFT_DTYPE_UNDEFINED)
            return lu_node_fail(err, n, GRAFT_ERR_INVALID,
                                "Cast-%d: 'to' names no element type graft knows ('%.40s'; "
                                "FLOAT, INT64, ...)",
                                n->opset, a->s ? a->s : "");
    } else {
        p->to = (graft_dtype)a->i;
    }
    if (lu_compute_dtype(p->to) == GRAFT_DTYPE_UNDEFINED)
        return lu_node_fail(err, n, GRAFT_ERR_UNSUPPORTED, "cast to %s is not supported",
                            graft_dtype_name(p->to));
    return lu_check_inputs(err, n, 1, 1);
}

static graft_status cast_infer(graft_op_call *c)
{
    const cast_params *p = c->params;
    const graft_tensor *x = c->in[0];
    if (!lu_is_compute_dtype(x->dtype))
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "cast from %s is not supported",
                              graft_dtype_name(x->dtype));
    graft_dtype to = p->to;
    if (to == GRAFT_DTYPE_UNDEFINED) { /* CastLike, like's type known only here */
        if (!lu_is_compute_dtype(c->in[1]->dtype))
            return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "cast to %s is not supported",
                                  graft_dtype_name(c->in[1]->dtype));
        to = c->in[1]->dtype;
    }
    lu_set_shape(c->out[0], lu_compute_dtype(to), x->rank, x->dims);
    return GRAFT_OK;
}

static int64_t f32_to_i64(float f)
{
    if (f != f)
        return 0;
    if (f >= 9.2233720368547758e18f)
        return INT64_MAX;
    if (f <= -9.2233720368547758e18f)
        return INT64_MIN;
    return (int64_t)f;
}

static float round_float(const cast_params *p, float f)
{
    if (p->to == GRAFT_FLOAT16)
        return graft_fp16_to_f32(graft_f32_to_fp16(f));
    if (p->to == GRAFT_BFLOAT16) {
        /* NaN tested on the bits: GCC 12.2 -O2 drops the masking below
         * after a float `f != f` test (miscompile seen here) */
        uint32_t u;
        memcpy(&u, &f, 4);
        if (!p->bf16_truncate || (u & 0x7fffffffu) > 0x7f800000u)
            return graft_bf16_to_f32(graft_f32_to_bf16(f));
        u &= 0xffff0000u;
        float g;
        memcpy(&g, &u, 4);
        return g;
    }
    return f;
}

static graft_status cast_forward(graft_op_call *c)
{
    const graft_tensor *tx = c->in[0];
    graft_tensor *ty = c->out[0];
    cast_params q = *(const cast_params *)c->params;
    const cast_params *p = &q;
    if (q.to == GRAFT_DTYPE_UNDEFINED)
        q.to = ty->dtype;
    int64_t n = graft_tensor_nelem(tx);
    graft_dtype from = tx->dtype, to = ty->dtype;
    if (from == to && (lu_is_bool(to) || p->to == GRAFT_INT64 || p->to == GRAFT_FLOAT ||
                       p->to == GRAFT_DOUBLE || p->to == GRAFT_UINT64)) {
        copy_forward(c);
        return GRAFT_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        double v = 0.0;
        int64_t iv = 0;
        bool is_int = false;
        switch (from) {
        case GRAFT_FLOAT: v = graft_tensor_f32(tx)[i]; break;
        case GRAFT_INT64: iv = graft_tensor_i64(tx)[i]; is_int = true; break;
        default: iv = ((const uint8_t *)tx->data)[i] != 0; is_int = true; break;
        }
        switch (to) {
        case GRAFT_FLOAT:
            graft_tensor_f32(ty)[i] = round_float(p, is_int ? (float)iv : (float)v);
            break;
        case GRAFT_INT64:
            graft_tensor_i64(ty)[i] = graft_int_wrap(p->to, is_int ? iv : f32_to_i64((float)v));
            break;
        default:
            ((uint8_t *)ty->data)[i] = is_int ? iv != 0 : v != 0.0;
            break;
        }
    }
    return GRAFT_OK;
}

const graft_op_def graft__op_cast = {
    .op_type = "Cast", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(cast_params), .parse = cast_parse, .infer = cast_infer,
    .forward = cast_forward, .backward = NULL};

const graft_op_def graft__op_cast_like = {
    .op_type = "CastLike", .domain = "", .min_opset = 15, .flags = 0,
    .params_size = sizeof(cast_params), .parse = cast_parse, .infer = cast_infer,
    .forward = cast_forward, .backward = NULL};
