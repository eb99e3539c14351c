/* Pointwise activations: y = f(x), dx += dy * f'(x).
 *
 *   Relu         max(x, 0)                       f' = [x > 0]
 *   LeakyRelu    x >= 0 ? x : alpha x (0.01)      f' = x >= 0 ? 1 : alpha
 *   Clip         min(max(x, lo), hi)              f' = [lo <= x <= hi]
 *   Sigmoid      1 / (1 + e^-x)                   f' = y (1 - y)
 *   HardSigmoid  clamp(alpha x + beta, 0, 1)      f' = alpha on the open ramp
 *                (alpha 0.2, beta 0.5)
 *   HardSwish    x * clamp(x/6 + 1/2, 0, 1)       f' = x/3 + 1/2 on (-3, 3), 1 above
 *   Tanh         tanh x                           f' = 1 - y^2
 *   Elu          x > 0 ? x : alpha (e^x - 1) (1)  f' = x > 0 ? 1 : y + alpha
 *   Selu         gamma (x > 0 ? x : alpha (e^x - 1))   f' = gamma (x > 0 ? 1 : alpha e^x)
 *
 * Clip's bounds are attributes up to opset 10 and optional inputs from
 * opset 11 ("" or absent = unbounded); parse records which form applies. */
#include <float.h>
#include <math.h>

#include "ops/light_math.h"
#include "ops/light_util.h"

enum act_kind {
    ACT_RELU, ACT_LEAKY, ACT_CLIP, ACT_SIGMOID, ACT_HSIGMOID, ACT_HSWISH, ACT_TANH, ACT_ELU,
    ACT_SELU, ACT_COUNT
};

static const char *const act_names[ACT_COUNT] = {"Relu", "LeakyRelu", "Clip", "Sigmoid",
                                                  "HardSigmoid", "HardSwish", "Tanh", "Elu",
                                                  "Selu"};

typedef struct act_params {
    int kind;
    float alpha, beta, gamma;
    float lo, hi;        /* Clip: attribute bounds */
    bool clip_inputs;    /* Clip >= 11: bounds come from inputs 1 and 2 */
} act_params;

static graft_status act_parse(const graft_graph *g, const graft_node *n, void *params,
                              graft_error *err)
{
    (void)g;
    act_params *p = params;
    p->kind = -1;
    for (int i = 0; i < ACT_COUNT; i++)
        if (!strcmp(n->op_type, act_names[i]))
            p->kind = i;
    p->alpha = p->beta = p->gamma = 0;
    switch (p->kind) {
    case ACT_LEAKY: p->alpha = graft_node_attr_float(n, "alpha", 0.01f); break;
    case ACT_HSIGMOID:
        p->alpha = graft_node_attr_float(n, "alpha", 0.2f);
        p->beta = graft_node_attr_float(n, "beta", 0.5f);
        break;
    case ACT_HSWISH:
        p->alpha = 1.0f / 6.0f;
        p->beta = 0.5f;
        break;
    case ACT_ELU: p->alpha = graft_node_attr_float(n, "alpha", 1.0f); break;
    case ACT_SELU:
        p->alpha = graft_node_attr_float(n, "alpha", 1.67326319217681884765625f);
        p->gamma = graft_node_attr_float(n, "gamma", 1.05070102214813232421875f);
        break;
    case ACT_CLIP:
        p->clip_inputs = n->opset >= 11 || n->opset <= 0;
        if (!p->clip_inputs) {
            p->lo = graft_node_attr_float(n, "min", -FLT_MAX);
            p->hi = graft_node_attr_float(n, "max", FLT_MAX);
            return lu_check_inputs(err, n, 1, 1);
        }
        return lu_check_inputs(err, n, 1, 3);
    case -1: return lu_node_fail(err, n, GRAFT_ERR_INTERNAL, "not an activation");
    default: break;
    }
    return lu_check_inputs(err, n, 1, 1);
}

static graft_status act_infer(graft_op_call *c)
{
    const act_params *p = c->params;
    const graft_tensor *x = c->in[0];
    bool int_ok = p->kind == ACT_RELU || p->kind == ACT_CLIP;
    if (x->dtype != GRAFT_FLOAT && !(int_ok && x->dtype == GRAFT_INT64))
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "element type %s is not supported",
                              graft_dtype_name(x->dtype));
    if (p->kind == ACT_CLIP && p->clip_inputs) {
        for (int i = 1; i < c->n_in; i++) {
            const graft_tensor *b = c->in[i];
            if (!b)
                continue;
            if (graft_tensor_nelem(b) != 1)
                return graft__op_fail(c, GRAFT_ERR_SHAPE, "%s bound must be a scalar",
                                      i == 1 ? "min" : "max");
            if (b->dtype != x->dtype)
                return graft__op_fail(c, GRAFT_ERR_INVALID, "bound type %s differs from input %s",
                                      graft_dtype_name(b->dtype), graft_dtype_name(x->dtype));
        }
    }
    lu_copy_shape(c->out[0], x);
    return GRAFT_OK;
}

static void act_f32(const act_params *p, float lo, float hi, const float *x, float *y, int64_t n)
{
    const float a = p->alpha, b = p->beta, gm = p->gamma;
    switch (p->kind) {
    case ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case ACT_LEAKY:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] >= 0.0f ? x[i] : a * x[i];
        break;
    case ACT_CLIP:
        for (int64_t i = 0; i < n; i++) {
            float v = x[i] < lo ? lo : x[i];
            y[i] = v > hi ? hi : v;
        }
        break;
    case ACT_SIGMOID:
        graft__vsigmoid(x, y, n);
        break;
    case ACT_HSIGMOID:
    case ACT_HSWISH:
        for (int64_t i = 0; i < n; i++) {
            float v = a * x[i] + b;
            v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            y[i] = p->kind == ACT_HSWISH ? x[i] * v : v;
        }
        break;
    case ACT_TANH:
        graft__vtanh(x, y, n);
        break;
    case ACT_ELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > 0.0f ? x[i] : a * expm1f(x[i]);
        break;
    default: /* SELU */
        for (int64_t i = 0; i < n; i++)
            y[i] = gm * (x[i] > 0.0f ? x[i] : a * expm1f(x[i]));
        break;
    }
}

static graft_status act_forward(graft_op_call *c)
{
    const act_params *p = c->params;
    const graft_tensor *tx = c->in[0];
    int64_t n = graft_tensor_nelem(tx);
    if (tx->dtype == GRAFT_INT64) {
        int64_t lo = p->kind == ACT_RELU ? 0 : INT64_MIN, hi = INT64_MAX;
        if (p->kind == ACT_CLIP && p->clip_inputs) {
            if (c->n_in > 1 && c->in[1])
                lo = graft_tensor_i64(c->in[1])[0];
            if (c->n_in > 2 && c->in[2])
                hi = graft_tensor_i64(c->in[2])[0];
        } else if (p->kind == ACT_CLIP) {
            lo = p->lo <= -9.2e18f ? INT64_MIN : (int64_t)p->lo;
            hi = p->hi >= 9.2e18f ? INT64_MAX : (int64_t)p->hi;
        }
        const int64_t *x = tx->data;
        int64_t *y = c->out[0]->data;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = x[i] < lo ? lo : x[i];
            y[i] = v > hi ? hi : v;
        }
        return GRAFT_OK;
    }
    float lo = p->lo, hi = p->hi;
    if (p->kind == ACT_CLIP && p->clip_inputs) {
        lo = c->n_in > 1 && c->in[1] ? graft_tensor_f32(c->in[1])[0] : -INFINITY;
        hi = c->n_in > 2 && c->in[2] ? graft_tensor_f32(c->in[2])[0] : INFINITY;
    }
    const float *x = tx->data;
    float *y = c->out[0]->data;
    bool cheap = p->kind != ACT_SIGMOID && p->kind != ACT_TANH && p->kind != ACT_ELU &&
                 p->kind != ACT_SELU;
    int nt = lu_threads(c, cheap ? n : n * 16);
    if (nt == 1) {
        act_f32(p, lo, hi, x, y, n);
        return GRAFT_OK;
    }
    int64_t chunk = ((n + nt - 1) / nt + 15) & ~(int64_t)15;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t s = 0; s < n; s += chunk)
        act_f32(p, lo, hi, x + s, y + s, n - s < chunk ? n - s : chunk);
    return GRAFT_OK;
}

static graft_status act_backward(graft_op_call *c)
{
    const act_params *p = c->params;
    if (!c->d_in[0] || !c->d_out[0])
        return GRAFT_OK;
    if (c->in[0]->dtype != GRAFT_FLOAT)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "no gradient for integer input");
    const float *x = c->in[0]->data, *y = c->out[0]->data, *dy = c->d_out[0]->data;
    float *dx = c->d_in[0]->data;
    int64_t n = graft_tensor_nelem(c->in[0]);
    const float a = p->alpha, b = p->beta, gm = p->gamma;
    float lo = p->lo, hi = p->hi;
    if (p->kind == ACT_CLIP && p->clip_inputs) {
        lo = c->n_in > 1 && c->in[1] ? graft_tensor_f32(c->in[1])[0] : -INFINITY;
        hi = c->n_in > 2 && c->in[2] ? graft_tensor_f32(c->in[2])[0] : INFINITY;
    }
    switch (p->kind) {
    case ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case ACT_LEAKY:
        for (int64_t i = 0; i < n; i++)
            dx[i] += x[i] >= 0.0f ? dy[i] : a * dy[i];
        break;
    case ACT_CLIP:
        for (int64_t i = 0; i < n; i++)
            dx[i] += x[i] >= lo && x[i] <= hi ? dy[i] : 0.0f;
        break;
    case ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            dx[i] += dy[i] * y[i] * (1.0f - y[i]);
        break;
    case ACT_HSIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float v = a * x[i] + b;
            dx[i] += v > 0.0f && v < 1.0f ? a * dy[i] : 0.0f;
        }
        break;
    case ACT_HSWISH:
        for (int64_t i = 0; i < n; i++) {
            float v = a * x[i] + b;
            dx[i] += v <= 0.0f ? 0.0f : v >= 1.0f ? dy[i] : dy[i] * (v + a * x[i]);
        }
        break;
    case ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            dx[i] += dy[i] * (1.0f - y[i] * y[i]);
        break;
    case ACT_ELU:
        for (int64_t i = 0; i < n; i++)
            dx[i] += x[i] > 0.0f ? dy[i] : dy[i] * (y[i] + a);
        break;
    default: /* SELU */
        for (int64_t i = 0; i < n; i++)
            dx[i] += x[i] > 0.0f ? gm * dy[i] : dy[i] * gm * a * expf(x[i]);
        break;
    }
    return GRAFT_OK;
}

#define ACT_DEF(ident, name)                                                                 \
    const graft_op_def graft__op_##ident = {                                                  \
        .op_type = name, .domain = "", .min_opset = 1, .flags = 0,                           \
        .params_size = sizeof(act_params), .parse = act_parse, .infer = act_infer,           \
        .forward = act_forward, .backward = act_backward};

ACT_DEF(relu, "Relu")
ACT_DEF(leaky_relu, "LeakyRelu")
ACT_DEF(clip, "Clip")
ACT_DEF(sigmoid, "Sigmoid")
ACT_DEF(hard_sigmoid, "HardSigmoid")
ACT_DEF(hard_swish, "HardSwish")
ACT_DEF(tanh, "Tanh")
ACT_DEF(elu, "Elu")
ACT_DEF(selu, "Selu")
