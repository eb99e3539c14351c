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
 *   Softplus     log(1 + e^x)                     f' = sigmoid(x)
 *   Softsign     x / (1 + |x|)                    f' = 1 / (1 + |x|)^2
 *   Mish         x tanh(sp), sp = softplus(x)     f' = t + x sigmoid(x) (1 - t^2), t = tanh(sp)
 *   ThresholdedRelu  x > alpha ? x : 0 (1)        f' = [x > alpha]
 *   Celu         max(0, x) + min(0, alpha (e^(x/alpha) - 1)) (1)   f' = x > 0 ? 1 : e^(x/alpha)
 *   Shrink       x < -l ? x + bias : x > l ? x - bias : 0 (l 0.5, bias 0)   f' = [|x| > l]
 *   Gelu         x Phi(x) = x/2 (1 + erf(x / sqrt 2))   f' = Phi(x) + x phi(x)
 *                approximate="tanh": x/2 (1 + tanh u), u = sqrt(2/pi) (x + 0.044715 x^3)
 *                                 f' = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 0.044715 x^2)
 *   PRelu        x < 0 ? slope x : x              dx += x < 0 ? slope dy : dy
 *                                                 dslope += sum_bcast(x < 0 ? x dy : 0)
 *
 * Clip's bounds are attributes up to opset 10 and optional inputs from
 * opset 11 ("" or absent = unbounded); parse records which form applies.
 * PRelu's slope broadcasts unidirectionally to X from opset 7; before, a
 * 1-D slope of X's dim 1 is per channel (PyTorch 0.3 exports [C] against
 * NCHW), one value is shared, and same shape is elementwise. */
#include <float.h>
#include <math.h>

#include "ops/light_math.h"
#include "ops/light_util.h"

enum act_kind {
    ACT_RELU, ACT_LEAKY, ACT_CLIP, ACT_SIGMOID, ACT_HSIGMOID, ACT_HSWISH, ACT_TANH, ACT_ELU,
    ACT_SELU, ACT_SOFTPLUS, ACT_SOFTSIGN, ACT_MISH, ACT_THRELU, ACT_CELU, ACT_SHRINK, ACT_GELU,
    ACT_COUNT
};

static const char *const act_names[ACT_COUNT] = {
    "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu",
    "Softplus", "Softsign", "Mish", "ThresholdedRelu", "Celu", "Shrink", "Gelu"};

typedef struct act_params {
    int kind;
    float alpha, beta, gamma; /* Shrink: alpha = lambd, beta = bias */
    float lo, hi;        /* Clip: attribute bounds */
    bool clip_inputs;    /* Clip >= 11: bounds come from inputs 1 and 2 */
    bool gelu_tanh;      /* Gelu approximate="tanh" */
} act_params;

#define SQRT_2_OVER_PI 0.7978845608028654f
#define GELU_C 0.044715f

/* log(1 + e^x) without overflow for large x or loss for very negative x */
static inline float softplusf(float x)
{
    return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

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
    p->gelu_tanh = false;
    switch (p->kind) {
    case ACT_THRELU: p->alpha = graft_node_attr_float(n, "alpha", 1.0f); break;
    case ACT_CELU:
        p->alpha = graft_node_attr_float(n, "alpha", 1.0f);
        if (!(p->alpha != 0.0f) || !isfinite(p->alpha))
            return lu_node_fail(err, n, GRAFT_ERR_INVALID, "alpha must be finite and non-zero");
        break;
    case ACT_SHRINK:
        p->alpha = graft_node_attr_float(n, "lambd", 0.5f);
        p->beta = graft_node_attr_float(n, "bias", 0.0f);
        break;
    case ACT_GELU: {
        const graft_attr *a = graft_node_attr(n, "approximate");
        if (a && a->type == GRAFT_ATTR_STRING && a->s && !strcmp(a->s, "tanh"))
            p->gelu_tanh = true;
        else if (a && !(a->type == GRAFT_ATTR_STRING && a->s && !strcmp(a->s, "none")))
            return lu_node_fail(err, n, GRAFT_ERR_INVALID,
                                "approximate must be \"none\" or \"tanh\"");
        break;
    }
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
    bool int_ok = p->kind == ACT_RELU || p->kind == ACT_CLIP || p->kind == ACT_SHRINK;
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
    case ACT_SELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = gm * (x[i] > 0.0f ? x[i] : a * expm1f(x[i]));
        break;
    case ACT_SOFTPLUS:
        for (int64_t i = 0; i < n; i++)
            y[i] = softplusf(x[i]);
        break;
    case ACT_SOFTSIGN:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] / (1.0f + fabsf(x[i]));
        break;
    case ACT_MISH:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * tanhf(softplusf(x[i]));
        break;
    case ACT_THRELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > a ? x[i] : 0.0f;
        break;
    case ACT_CELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > 0.0f ? x[i] : a * expm1f(x[i] / a);
        break;
    case ACT_SHRINK:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] < -a ? x[i] + b : x[i] > a ? x[i] - b : 0.0f;
        break;
    default: /* GELU */
        if (p->gelu_tanh) {
            for (int64_t i = 0; i < n; i++) {
                float u = SQRT_2_OVER_PI * (x[i] + GELU_C * x[i] * x[i] * x[i]);
                y[i] = 0.5f * x[i] * (1.0f + tanhf(u));
            }
        } else {
            for (int64_t i = 0; i < n; i++)
                y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
        }
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
        if (p->kind == ACT_SHRINK) {
            /* through double as the reference does, then back to the integer */
            for (int64_t i = 0; i < n; i++) {
                double v = (double)x[i], l = p->alpha, bias = p->beta;
                double r = v < -l ? v + bias : v > l ? v - bias : 0.0;
                y[i] = r != r ? 0 : r >= 9.2e18 ? INT64_MAX : r <= -9.2e18 ? INT64_MIN : (int64_t)r;
            }
            return GRAFT_OK;
        }
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
    bool cheap = p->kind == ACT_RELU || p->kind == ACT_LEAKY || p->kind == ACT_CLIP ||
                 p->kind == ACT_HSIGMOID || p->kind == ACT_HSWISH || p->kind == ACT_SOFTSIGN ||
                 p->kind == ACT_THRELU || p->kind == ACT_SHRINK;
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
    case ACT_SELU:
        for (int64_t i = 0; i < n; i++)
            dx[i] += x[i] > 0.0f ? gm * dy[i] : dy[i] * gm * a * expf(x[i]);
        break;
    case ACT_SOFTPLUS:
        for (int64_t i = 0; i < n; i++)
            dx[i] += dy[i] / (1.0f + expf(-x[i]));
        break;
    case ACT_SOFTSIGN:
        for (int64_t i = 0; i < n; i++) {
            float d = 1.0f + fabsf(x[i]);
            dx[i] += dy[i] / (d * d);
        }
        break;
    case ACT_MISH:
        for (int64_t i = 0; i < n; i++) {
            float t = tanhf(softplusf(x[i])), sg = 1.0f / (1.0f + expf(-x[i]));
            dx[i] += dy[i] * (t + x[i] * sg * (1.0f - t * t));
        }
        break;
    case ACT_THRELU:
        for (int64_t i = 0; i < n; i++)
            dx[i] += x[i] > a ? dy[i] : 0.0f;
        break;
    case ACT_CELU:
        for (int64_t i = 0; i < n; i++)
            dx[i] += x[i] > 0.0f ? dy[i] : dy[i] * expf(x[i] / a);
        break;
    case ACT_SHRINK:
        for (int64_t i = 0; i < n; i++)
            dx[i] += x[i] < -a || x[i] > a ? dy[i] : 0.0f;
        break;
    default: /* GELU */
        if (p->gelu_tanh) {
            for (int64_t i = 0; i < n; i++) {
                float x2 = x[i] * x[i];
                float t = tanhf(SQRT_2_OVER_PI * (x[i] + GELU_C * x2 * x[i]));
                float du = SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_C * x2);
                dx[i] += dy[i] * (0.5f * (1.0f + t) + 0.5f * x[i] * (1.0f - t * t) * du);
            }
        } else {
            const float inv_sqrt_2pi = 0.3989422804014327f;
            for (int64_t i = 0; i < n; i++) {
                float cdf = 0.5f * (1.0f + erff(x[i] * 0.70710678118654752f));
                dx[i] += dy[i] * (cdf + x[i] * inv_sqrt_2pi * expf(-0.5f * x[i] * x[i]));
            }
        }
        break;
    }
    return GRAFT_OK;
}

#define ACT_DEF(ident, name) ACT_DEF_V(ident, name, 1)
#define ACT_DEF_V(ident, name, minv)                                                         \
    const graft_op_def graft__op_##ident = {                                                  \
        .op_type = name, .domain = "", .min_opset = minv, .flags = 0,                        \
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
ACT_DEF(softplus, "Softplus")
ACT_DEF(softsign, "Softsign")
ACT_DEF_V(mish, "Mish", 18)
ACT_DEF(thresholded_relu, "ThresholdedRelu")
ACT_DEF_V(celu, "Celu", 12)
ACT_DEF_V(shrink, "Shrink", 9)
ACT_DEF_V(gelu, "Gelu", 20)

/* ---- PRelu ---------------------------------------------------------------------- */

typedef struct prelu_params {
    bool legacy; /* opset < 7: per-channel 1-D slope, no general broadcasting */
} prelu_params;

static graft_status prelu_parse(const graft_graph *g, const graft_node *n, void *params,
                                graft_error *err)
{
    (void)g;
    prelu_params *p = params;
    p->legacy = n->opset > 0 && n->opset < 7;
    return lu_check_inputs(err, n, 2, 2);
}

/* Slope's element stride along each of X's dims (0 where it broadcasts);
 * false when slope does not broadcast to X. */
static bool prelu_strides(const prelu_params *p, const graft_tensor *x, const graft_tensor *s,
                          int64_t *st)
{
    int r = x->rank;
    int64_t sd[GRAFT_MAX_RANK];
    if (s->rank > r)
        return false;
    for (int i = 0; i < r; i++)
        sd[i] = 1;
    if (p->legacy && s->rank == 1 && r >= 2 && s->dims[0] == x->dims[1] && s->dims[0] != 1)
        sd[1] = s->dims[0];
    else
        for (int i = 0; i < s->rank; i++)
            sd[r - s->rank + i] = s->dims[i];
    int64_t acc = 1;
    for (int i = r - 1; i >= 0; i--) {
        if (sd[i] != 1 && sd[i] != x->dims[i])
            return false;
        st[i] = sd[i] == 1 ? 0 : acc;
        acc *= sd[i];
    }
    return true;
}

static graft_status prelu_infer(graft_op_call *c)
{
    const graft_tensor *x = c->in[0], *s = c->in[1];
    int64_t st[GRAFT_MAX_RANK];
    if (x->dtype != GRAFT_FLOAT && x->dtype != GRAFT_INT64)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "element type %s is not supported",
                              graft_dtype_name(x->dtype));
    if (s->dtype != x->dtype)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "slope type %s differs from X %s",
                              graft_dtype_name(s->dtype), graft_dtype_name(x->dtype));
    if (!prelu_strides(c->params, x, s, st)) {
        char s1[128], s2[128];
        return graft__op_fail(c, GRAFT_ERR_SHAPE, "slope %s does not broadcast to X %s",
                              graft_shape_format(s->rank, s->dims, s1, sizeof s1),
                              graft_shape_format(x->rank, x->dims, s2, sizeof s2));
    }
    lu_copy_shape(c->out[0], x);
    return GRAFT_OK;
}

/* Rows along X's last dim; the slope offset of a row from its index. */
typedef struct prelu_walk {
    int64_t inner, rows, sinner; /* last dim, rows, slope stride along it */
    int r;
    int64_t dims[GRAFT_MAX_RANK], st[GRAFT_MAX_RANK];
} prelu_walk;

static void prelu_walk_init(prelu_walk *w, const prelu_params *p, const graft_tensor *x,
                            const graft_tensor *s)
{
    w->r = x->rank;
    memset(w->st, 0, sizeof w->st);
    prelu_strides(p, x, s, w->st);
    for (int i = 0; i < w->r; i++)
        w->dims[i] = x->dims[i];
    w->inner = w->r ? x->dims[w->r - 1] : 1;
    w->sinner = w->r ? w->st[w->r - 1] : 0;
    int64_t n = graft_tensor_nelem(x);
    w->rows = w->inner ? n / w->inner : 0;
}

static inline int64_t prelu_row_offset(const prelu_walk *w, int64_t row)
{
    int64_t off = 0;
    for (int i = w->r - 2; i >= 0 && row; i--) {
        int64_t q = row / w->dims[i];
        off += (row - q * w->dims[i]) * w->st[i];
        row = q;
    }
    return off;
}

static graft_status prelu_forward(graft_op_call *c)
{
    prelu_walk w;
    prelu_walk_init(&w, c->params, c->in[0], c->in[1]);
    int64_t inner = w.inner, ss = w.sinner;
    if (c->in[0]->dtype == GRAFT_INT64) {
        const int64_t *x = c->in[0]->data, *s = c->in[1]->data;
        int64_t *y = c->out[0]->data;
        for (int64_t row = 0; row < w.rows; row++) {
            const int64_t *sr = s + prelu_row_offset(&w, row);
            for (int64_t i = 0; i < inner; i++) {
                int64_t v = x[row * inner + i];
                y[row * inner + i] =
                    v < 0 ? (int64_t)((uint64_t)v * (uint64_t)sr[i * ss]) : v;
            }
        }
        return GRAFT_OK;
    }
    const float *x = c->in[0]->data, *s = c->in[1]->data;
    float *y = c->out[0]->data;
    int nt = lu_threads(c, w.rows * inner);
    if (nt > w.rows)
        nt = (int)(w.rows ? w.rows : 1);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t row = 0; row < w.rows; row++) {
        const float *sr = s + prelu_row_offset(&w, row), *xr = x + row * inner;
        float *yr = y + row * inner;
        if (ss == 0) {
            float a = sr[0];
            for (int64_t i = 0; i < inner; i++)
                yr[i] = xr[i] < 0.0f ? a * xr[i] : xr[i];
        } else {
            for (int64_t i = 0; i < inner; i++)
                yr[i] = xr[i] < 0.0f ? sr[i] * xr[i] : xr[i];
        }
    }
    return GRAFT_OK;
}

static graft_status prelu_backward(graft_op_call *c)
{
    if (!c->d_out[0] || (!c->d_in[0] && !c->d_in[1]))
        return GRAFT_OK;
    if (c->in[0]->dtype != GRAFT_FLOAT)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "no gradient for integer input");
    prelu_walk w;
    prelu_walk_init(&w, c->params, c->in[0], c->in[1]);
    int64_t inner = w.inner, ss = w.sinner;
    const float *x = c->in[0]->data, *s = c->in[1]->data, *dy = c->d_out[0]->data;
    float *dx = c->d_in[0] ? c->d_in[0]->data : NULL;
    float *ds = c->d_in[1] ? c->d_in[1]->data : NULL;
    /* serial: slope cells are shared between rows */
    for (int64_t row = 0; row < w.rows; row++) {
        int64_t so = prelu_row_offset(&w, row);
        const float *xr = x + row * inner, *g = dy + row * inner;
        if (dx) {
            float *dr = dx + row * inner;
            for (int64_t i = 0; i < inner; i++)
                dr[i] += xr[i] < 0.0f ? s[so + i * ss] * g[i] : g[i];
        }
        if (ds && ss == 0) {
            float acc = 0.0f;
            for (int64_t i = 0; i < inner; i++)
                acc += xr[i] < 0.0f ? xr[i] * g[i] : 0.0f;
            ds[so] += acc;
        } else if (ds) {
            for (int64_t i = 0; i < inner; i++)
                ds[so + i] += xr[i] < 0.0f ? xr[i] * g[i] : 0.0f;
        }
    }
    return GRAFT_OK;
}

const graft_op_def graft__op_prelu = {
    .op_type = "PRelu", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(prelu_params), .parse = prelu_parse, .infer = prelu_infer,
    .forward = prelu_forward, .backward = prelu_backward};
