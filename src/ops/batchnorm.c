/* ops/batchnorm.c - BatchNormalization, inference form (opsets 1-15).
 *
 * Forward:  Y = (X - mean) / sqrt(var + eps) · scale + B, per channel (or per
 *           activation with the old spatial=0 and C×D1×… parameters).
 * Backward: dX += dY · scale / sqrt(var + eps);
 *           dscale += Σ dY · (X - mean) / sqrt(var + eps);  dB += Σ dY;
 *           mean and var get no gradient.
 * training_mode=1 (opset 14+) is run in inference form: a frozen backbone
 * must keep its stored statistics, never batch statistics. Extra outputs
 * (running or saved statistics) receive the stored ones.
 * Only when the plan asks for the stored semantics (stored_training_form, a
 * conformance run) does training_mode=1 normalise with the batch's own
 * statistics, as ONNX defines it:
 *   m_b = mean over N and spatial axes, v_b = the same population variance,
 *   Y = (X - m_b) / sqrt(v_b + eps) · scale + B,
 *   running_mean = mean · momentum + m_b · (1 - momentum), likewise var.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernels/conv.h"
#include "ops/op.h"

typedef struct bn_params {
    float epsilon;
    float momentum;
    bool training_mode;
} bn_params;

static graft_status bn_parse(const graft_graph *g, const graft_node *n, void *params,
                             graft_error *err)
{
    (void)g, (void)err;
    bn_params *p = params;
    p->epsilon = graft_node_attr_float(n, "epsilon", 1e-5f);
    p->momentum = graft_node_attr_float(n, "momentum", 0.9f);
    p->training_mode = n->opset >= 14 && graft_node_attr_int(n, "training_mode", 0) != 0;
    return GRAFT_OK;
}

/* Parameter length: C, or C·D1·… (per activation, spatial=0). */
static graft_status bn_shapes(graft_op_call *c, int64_t *planes, int64_t *nparam, int64_t *hw,
                              int64_t *len)
{
    char b1[96], b2[96];
    static const char *const names[] = {"X", "scale", "B", "mean", "var"};
    if (c->n_in < 5)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "needs 5 inputs (X, scale, B, mean, var), got %d",
                              c->n_in);
    for (int i = 0; i < 5; i++)
        if (!c->in[i])
            return graft__op_fail(c, GRAFT_ERR_INVALID, "input %s is missing", names[i]);
    const graft_tensor *x = c->in[0];
    if (x->dtype != GRAFT_DTYPE_UNDEFINED && !graft_dtype_is_float(x->dtype))
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "X is %s; only floating types are supported",
                              graft_dtype_name(x->dtype));
    if (x->rank < 2)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "X must have rank >= 2, got %s",
                              graft_shape_format(x->rank, x->dims, b1, sizeof b1));
    int64_t ch = x->dims[1], inner = 1;
    for (int i = 2; i < x->rank; i++)
        inner = inner < 0 || x->dims[i] < 0 ? -1 : inner * x->dims[i];
    int64_t l = graft_shape_nelem(c->in[1]->rank, c->in[1]->dims);
    for (int i = 1; i < 5; i++) {
        const graft_tensor *t = c->in[i];
        int64_t n = graft_shape_nelem(t->rank, t->dims);
        bool ok = n == l && (ch < 0 || n < 0 || n == ch || (inner >= 0 && n == ch * inner));
        if (!ok)
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "%s %s does not match X %s (%lld channels)",
                                  names[i], graft_shape_format(t->rank, t->dims, b1, sizeof b1),
                                  graft_shape_format(x->rank, x->dims, b2, sizeof b2),
                                  (long long)ch);
    }
    *planes = x->dims[0] < 0 || ch < 0 ? -1 : x->dims[0] * ch;
    *nparam = l;
    *hw = inner;
    *len = ch;
    return GRAFT_OK;
}

static graft_status bn_infer(graft_op_call *c)
{
    int64_t planes, np, hw, ch;
    if (c->n_in >= 1 && c->in[0] && c->in[0]->rank < 0) {
        for (int i = 0; i < c->n_out; i++)
            if (c->out[i])
                c->out[i]->rank = -1;
        return GRAFT_OK;
    }
    graft_status st = bn_shapes(c, &planes, &np, &hw, &ch);
    if (st != GRAFT_OK)
        return st;
    for (int i = 0; i < c->n_out; i++) {
        graft_tensor *o = c->out[i];
        if (!o)
            continue;
        const graft_tensor *src = i == 0 ? c->in[0] : c->in[3];
        o->dtype = GRAFT_FLOAT;
        o->rank = src->rank;
        memcpy(o->dims, src->dims, (size_t)src->rank * sizeof src->dims[0]);
    }
    return GRAFT_OK;
}

static graft_status bn_forward(graft_op_call *c)
{
    const bn_params *p = c->params;
    int64_t planes, np, hw, ch;
    graft_status st = bn_shapes(c, &planes, &np, &hw, &ch);
    if (st != GRAFT_OK)
        return st;
    const float *x = graft_tensor_f32(c->in[0]), *scale = graft_tensor_f32(c->in[1]);
    const float *bias = graft_tensor_f32(c->in[2]), *mean = graft_tensor_f32(c->in[3]);
    const float *var = graft_tensor_f32(c->in[4]);
    const bool batch_stats = p->training_mode && c->ctx->stored_training_form;
    if (batch_stats && np != ch)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED,
                              "training_mode=1 with per-activation parameters");
    float *ab = c->ctx->scratch(c->ctx, (size_t)(4 * np) * sizeof(float));
    if (!ab)
        return graft__op_fail(c, GRAFT_ERR_NOMEM, "out of memory");
    float *a = ab, *b = ab + np;
    if (batch_stats) {
        /* two passes in double: the batch statistics replace mean and var */
        float *bm = ab + 2 * np, *bv = ab + 3 * np;
        int64_t count = planes / (ch > 0 ? ch : 1) * hw;
        for (int64_t ci = 0; ci < ch; ci++) {
            double sum = 0, sq = 0;
            for (int64_t pl = ci; pl < planes; pl += ch)
                for (int64_t i = 0; i < hw; i++)
                    sum += x[pl * hw + i];
            double m = count ? sum / (double)count : 0;
            for (int64_t pl = ci; pl < planes; pl += ch)
                for (int64_t i = 0; i < hw; i++) {
                    double d = x[pl * hw + i] - m;
                    sq += d * d;
                }
            bm[ci] = (float)m;
            bv[ci] = (float)(count ? sq / (double)count : 0);
        }
        mean = bm;
        var = bv;
    }
    for (int64_t i = 0; i < np; i++) {
        a[i] = scale[i] / sqrtf(var[i] + p->epsilon);
        b[i] = bias[i] - mean[i] * a[i];
    }
    const bool per_act = np != ch;
    if (c->out[0]) {
        float *y = graft_tensor_f32(c->out[0]);
        int nt = graft__threads(c->ctx);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && planes * hw >= 65536)
        for (int64_t pl = 0; pl < planes; pl++) {
            int64_t ci = pl % ch;
            const float *xp = x + pl * hw;
            float *yp = y + pl * hw;
            if (per_act) {
                const float *ap = a + ci * hw, *bp = b + ci * hw;
                for (int64_t i = 0; i < hw; i++)
                    yp[i] = xp[i] * ap[i] + bp[i];
            } else {
                const float av = a[ci], bv = b[ci];
                for (int64_t i = 0; i < hw; i++)
                    yp[i] = xp[i] * av + bv;
            }
        }
    }
    if (batch_stats) {
        const float *m0 = graft_tensor_f32(c->in[3]), *v0 = graft_tensor_f32(c->in[4]);
        for (int i = 1; i < c->n_out && i < 3; i++) {
            if (!c->out[i])
                continue;
            float *d = graft_tensor_f32(c->out[i]);
            const float *old = i == 1 ? m0 : v0, *cur = i == 1 ? mean : var;
            for (int64_t j = 0; j < np; j++)
                d[j] = old[j] * p->momentum + cur[j] * (1.0f - p->momentum);
        }
        return GRAFT_OK;
    }
    /* Old opsets' mean/var/saved_mean/saved_var and opset 14+'s running
     * statistics: the stored statistics, unchanged. */
    for (int i = 1; i < c->n_out; i++) {
        graft_tensor *o = c->out[i];
        if (!o)
            continue;
        float *d = graft_tensor_f32(o);
        for (int64_t j = 0; j < np; j++)
            d[j] = i == 4 ? 1.0f / sqrtf(var[j] + p->epsilon) : (i == 2 ? var[j] : mean[j]);
    }
    return GRAFT_OK;
}

static graft_status bn_backward(graft_op_call *c)
{
    const bn_params *p = c->params;
    int64_t planes, np, hw, ch;
    if (!c->d_out[0])
        return GRAFT_OK;
    graft_status st = bn_shapes(c, &planes, &np, &hw, &ch);
    if (st != GRAFT_OK)
        return st;
    const float *x = graft_tensor_f32(c->in[0]), *scale = graft_tensor_f32(c->in[1]);
    const float *mean = graft_tensor_f32(c->in[3]), *var = graft_tensor_f32(c->in[4]);
    const float *dy = graft_tensor_f32(c->d_out[0]);
    float *dx = c->d_in[0] ? graft_tensor_f32(c->d_in[0]) : NULL;
    float *dscale = c->d_in[1] ? graft_tensor_f32(c->d_in[1]) : NULL;
    float *dbias = c->d_in[2] ? graft_tensor_f32(c->d_in[2]) : NULL;
    float *inv = c->ctx->scratch(c->ctx, (size_t)np * sizeof(float));
    if (!inv)
        return graft__op_fail(c, GRAFT_ERR_NOMEM, "out of memory");
    for (int64_t j = 0; j < np; j++)
        inv[j] = 1.0f / sqrtf(var[j] + p->epsilon);
    const int64_t step = np != ch ? 1 : 0; /* per-activation parameters advance per element */
    for (int64_t pl = 0; pl < planes; pl++) {
        int64_t j0 = step ? pl % ch * hw : pl % ch;
        const float *xp = x + pl * hw, *dyp = dy + pl * hw;
        double ds = 0.0, db = 0.0;
        for (int64_t i = 0; i < hw; i++) {
            int64_t j = j0 + i * step;
            if (dx)
                dx[pl * hw + i] += dyp[i] * scale[j] * inv[j];
            if (step) {
                if (dscale)
                    dscale[j] += dyp[i] * (xp[i] - mean[j]) * inv[j];
                if (dbias)
                    dbias[j] += dyp[i];
            } else {
                ds += (double)dyp[i] * (xp[i] - mean[j]);
                db += dyp[i];
            }
        }
        if (!step) {
            if (dscale)
                dscale[j0] += (float)(ds * inv[j0]);
            if (dbias)
                dbias[j0] += (float)db;
        }
    }
    return GRAFT_OK;
}

const graft_op_def graft__op_batch_normalization = {
    .op_type = "BatchNormalization",
    .domain = "",
    .min_opset = 1,
    .params_size = sizeof(bn_params),
    .parse = bn_parse,
    .infer = bn_infer,
    .forward = bn_forward,
    .backward = bn_backward,
};
