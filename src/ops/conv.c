/* ops/conv.c - Conv and com.microsoft FusedConv.
 *
 * Forward:  Y[n,m,o] = B[m] + Σ_{c in group(m), k} W[m,c',k] · X[n,c,o·s - pb + k·d]
 *           (zero outside X); FusedConv: Y = act(conv(X,W,B) + Z).
 * Backward: dB[m] += Σ dY[n,m,·];  dW = dY ⋆ X;  dX = Wᵀ ⋆ dY (the
 *           transposed convolution), both per group, via im2col/col2im.
 *           FusedConv first takes dY through the activation (its derivative
 *           is read off the kept output Y); dZ += that gradient.
 */
#include <stdio.h>
#include <string.h>

#include "kernels/act.h"
#include "kernels/conv.h"
#include "kernels/window.h"
#include "ops/op.h"

typedef struct conv_params {
    graft__window win;
    int64_t group;
    graft__act act;
} conv_params;

static graft_status parse_common(const graft_node *n, conv_params *p, graft_error *err)
{
    char label[256];
    graft_status st = graft__window_parse(n, &p->win, err);
    if (st != GRAFT_OK)
        return st;
    p->group = graft_node_attr_int(n, "group", 1);
    if (p->group < 1)
        return graft_error_set(err, GRAFT_ERR_INVALID, "%s: group = %lld must be positive",
                               graft__node_label(n, label, sizeof label), (long long)p->group);
    p->act.kind = GRAFT__ACT_NONE;
    return GRAFT_OK;
}

static graft_status conv_parse(const graft_graph *g, const graft_node *n, void *params,
                               graft_error *err)
{
    (void)g;
    return parse_common(n, params, err);
}

static graft_status fused_conv_parse(const graft_graph *g, const graft_node *n, void *params,
                                     graft_error *err)
{
    (void)g;
    conv_params *p = params;
    char label[256];
    graft_status st = parse_common(n, p, err);
    if (st != GRAFT_OK)
        return st;
    const char *a = graft_node_attr_string(n, "activation", "");
    const graft_attr *ap = graft_node_attr(n, "activation_params");
    int np = ap && ap->type == GRAFT_ATTR_FLOATS ? ap->n : 0;
    const float *pv = np ? ap->floats : NULL;
    int need = 0;
    if (!*a) {
        p->act.kind = GRAFT__ACT_NONE;
    } else if (strcmp(a, "Relu") == 0) {
        p->act.kind = GRAFT__ACT_RELU;
    } else if (strcmp(a, "Sigmoid") == 0) {
        p->act.kind = GRAFT__ACT_SIGMOID;
    } else if (strcmp(a, "Tanh") == 0) {
        p->act.kind = GRAFT__ACT_TANH;
    } else if (strcmp(a, "LeakyRelu") == 0) {
        p->act.kind = GRAFT__ACT_LEAKY_RELU;
        p->act.a = np >= 1 ? pv[0] : 0.01f;
    } else if (strcmp(a, "HardSigmoid") == 0) {
        p->act.kind = GRAFT__ACT_HARD_SIGMOID;
        p->act.a = np >= 1 ? pv[0] : 0.2f;
        p->act.b = np >= 2 ? pv[1] : 0.5f;
    } else if (strcmp(a, "Clip") == 0) {
        p->act.kind = GRAFT__ACT_CLIP;
        need = 2;
        if (np >= 2) {
            p->act.a = pv[0];
            p->act.b = pv[1];
        }
    } else {
        return graft_error_set(err, GRAFT_ERR_UNSUPPORTED, "%s: unsupported activation '%s'",
                               graft__node_label(n, label, sizeof label), a);
    }
    if (np < need)
        return graft_error_set(err, GRAFT_ERR_INVALID,
                               "%s: activation %s needs %d activation_params, got %d",
                               graft__node_label(n, label, sizeof label), a, need, np);
    return GRAFT_OK;
}

static char *fmt_shape(const graft_tensor *t, char *buf, size_t size)
{
    return graft_shape_format(t->rank, t->dims, buf, size);
}

/* Checks the inputs against each other and fills the 3-D geometry (and the
 * output shape, which may hold -1 for unknown dims). */
static graft_status conv_geometry(graft_op_call *c, graft__conv_geom *geo, int *rank_out,
                                  int64_t *out_dims)
{
    const conv_params *p = c->params;
    char b1[96], b2[96], msg[256];
    if (c->n_in < 2 || !c->in[0] || !c->in[1])
        return graft__op_fail(c, GRAFT_ERR_INVALID, "needs inputs X and W");
    const graft_tensor *x = c->in[0], *w = c->in[1];
    const graft_tensor *b = c->n_in > 2 ? c->in[2] : NULL;
    if (x->dtype != GRAFT_DTYPE_UNDEFINED && !graft_dtype_is_float(x->dtype))
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "X is %s; only floating types are supported",
                              graft_dtype_name(x->dtype));
    if (x->rank < 3)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "X must have rank >= 3, got %s",
                              fmt_shape(x, b1, sizeof b1));
    int nsp = x->rank - 2;
    if (nsp > 3)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "%d spatial axes (at most 3 supported)",
                              nsp);
    if (w->rank != x->rank)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "W %s has rank %d but X %s has rank %d",
                              fmt_shape(w, b1, sizeof b1), w->rank, fmt_shape(x, b2, sizeof b2),
                              x->rank);
    int64_t grp = p->group, cin = x->dims[1], m = w->dims[0];
    if (cin >= 0 && w->dims[1] >= 0 && cin != w->dims[1] * grp)
        return graft__op_fail(c, GRAFT_ERR_SHAPE,
                              "X has %lld channels but W.shape[1] * group = %lld * %lld",
                              (long long)cin, (long long)w->dims[1], (long long)grp);
    if (m >= 0 && m % grp != 0)
        return graft__op_fail(c, GRAFT_ERR_INVALID,
                              "%lld output channels are not divisible by group %lld",
                              (long long)m, (long long)grp);
    if (p->win.n_kernel >= 0 && p->win.n_kernel != nsp)
        return graft__op_fail(c, GRAFT_ERR_INVALID,
                              "kernel_shape has %d entries, expected %d (spatial rank of X)",
                              p->win.n_kernel, nsp);
    int64_t k[3];
    for (int i = 0; i < nsp; i++) {
        int64_t wk = w->dims[2 + i];
        if (p->win.n_kernel > 0 && wk >= 0 && p->win.kernel[i] != wk)
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "kernel_shape[%d] = %lld but W is %s", i,
                                  (long long)p->win.kernel[i], fmt_shape(w, b1, sizeof b1));
        k[i] = wk >= 0 ? wk : (p->win.n_kernel > 0 ? p->win.kernel[i] : -1);
        if (k[i] == 0)
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "W %s has an empty kernel axis",
                                  fmt_shape(w, b1, sizeof b1));
        if (k[i] < 0)
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "kernel size unknown (W %s)",
                                  fmt_shape(w, b1, sizeof b1));
    }
    if (b) {
        int64_t bn = b->rank == 1 ? b->dims[0] : -2;
        if (b->rank != 1 || (bn >= 0 && m >= 0 && bn != m))
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "bias %s does not match %lld output channels",
                                  fmt_shape(b, b1, sizeof b1), (long long)m);
    }
    int64_t st[3], dl[3], pb[3], pe[3], od[3];
    graft_status s =
        graft__window_resolve(&p->win, nsp, x->dims + 2, k, st, dl, pb, pe, od, msg, sizeof msg);
    if (s != GRAFT_OK)
        return graft__op_fail(c, s, "%s (X %s, W %s)", msg, fmt_shape(x, b1, sizeof b1),
                              fmt_shape(w, b2, sizeof b2));
    *rank_out = x->rank;
    out_dims[0] = x->dims[0];
    out_dims[1] = m;
    for (int i = 0; i < nsp; i++)
        out_dims[2 + i] = od[i];
    if (c->n_in > 3 && c->in[3]) {
        const graft_tensor *z = c->in[3];
        bool ok = z->rank == x->rank;
        for (int i = 0; ok && i < x->rank; i++)
            ok = z->dims[i] < 0 || out_dims[i] < 0 || z->dims[i] == out_dims[i];
        if (!ok)
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "Z %s does not match the output %s",
                                  fmt_shape(z, b1, sizeof b1),
                                  graft_shape_format(x->rank, out_dims, b2, sizeof b2));
    }
    graft__conv_geom_set(geo, nsp, x->dims[0], cin, m, grp, x->dims + 2, od, k, st, dl, pb);
    return GRAFT_OK;
}

static graft_status conv_infer(graft_op_call *c)
{
    graft__conv_geom geo;
    int rank = 0;
    int64_t dims[GRAFT_MAX_RANK];
    if (c->n_in >= 1 && c->in[0] && c->in[0]->rank < 0) {
        if (c->out[0])
            c->out[0]->rank = -1;
        return GRAFT_OK;
    }
    graft_status st = conv_geometry(c, &geo, &rank, dims);
    if (st != GRAFT_OK)
        return st;
    if (c->out[0]) {
        c->out[0]->dtype = GRAFT_FLOAT;
        c->out[0]->rank = rank;
        memcpy(c->out[0]->dims, dims, (size_t)rank * sizeof dims[0]);
    }
    return GRAFT_OK;
}

static graft_status conv_forward(graft_op_call *c)
{
    const conv_params *p = c->params;
    graft__conv_geom geo;
    int rank = 0;
    int64_t dims[GRAFT_MAX_RANK];
    graft_status st = conv_geometry(c, &geo, &rank, dims);
    if (st != GRAFT_OK)
        return st;
    if (!c->out[0])
        return GRAFT_OK;
    const float *b = c->n_in > 2 && c->in[2] ? graft_tensor_f32(c->in[2]) : NULL;
    const float *z = c->n_in > 3 && c->in[3] ? graft_tensor_f32(c->in[3]) : NULL;
    st = graft__conv_forward(&geo, graft_tensor_f32(c->in[0]), graft_tensor_f32(c->in[1]), b, z,
                             &p->act, graft_tensor_f32(c->out[0]), c->ctx);
    if (st != GRAFT_OK)
        return graft__op_fail(c, st, "out of memory for the convolution workspace");
    return GRAFT_OK;
}

static graft_status conv_backward(graft_op_call *c)
{
    graft__conv_geom geo;
    int rank = 0;
    int64_t dims[GRAFT_MAX_RANK];
    if (!c->d_out[0])
        return GRAFT_OK;
    graft_status st = conv_geometry(c, &geo, &rank, dims);
    if (st != GRAFT_OK)
        return st;
    float *dx = c->d_in[0] ? graft_tensor_f32(c->d_in[0]) : NULL;
    float *dw = c->n_in > 1 && c->d_in[1] ? graft_tensor_f32(c->d_in[1]) : NULL;
    float *db = c->n_in > 2 && c->in[2] && c->d_in[2] ? graft_tensor_f32(c->d_in[2]) : NULL;
    st = graft__conv_backward(&geo, graft_tensor_f32(c->in[0]), graft_tensor_f32(c->in[1]),
                              graft_tensor_f32(c->d_out[0]), dx, dw, db, c->ctx);
    if (st != GRAFT_OK)
        return graft__op_fail(c, st, "out of memory for the convolution workspace");
    return GRAFT_OK;
}

static graft_status fused_conv_backward(graft_op_call *c)
{
    const conv_params *p = c->params;
    graft__conv_geom geo;
    int rank = 0;
    int64_t dims[GRAFT_MAX_RANK];
    if (!c->d_out[0])
        return GRAFT_OK;
    graft_status st = conv_geometry(c, &geo, &rank, dims);
    if (st != GRAFT_OK)
        return st;
    int64_t n = graft_shape_nelem(rank, dims), n_pad = (n + 15) / 16 * 16;
    /* one scratch block: the activation gradient, then the convolution's workspace */
    float *g = c->ctx->scratch(
        c->ctx, (size_t)(n_pad + graft__conv_backward_work_floats(&geo, graft__threads(c->ctx))) * sizeof(float));
    if (!g)
        return graft__op_fail(c, GRAFT_ERR_NOMEM, "out of memory for the activation gradient");
    memcpy(g, graft_tensor_f32(c->d_out[0]), (size_t)n * sizeof *g);
    graft__act_grad_from_output(g, graft_tensor_f32(c->out[0]), n, &p->act);
    if (c->n_in > 3 && c->in[3] && c->d_in[3]) {
        float *dz = graft_tensor_f32(c->d_in[3]);
        for (int64_t i = 0; i < n; i++)
            dz[i] += g[i];
    }
    float *dx = c->d_in[0] ? graft_tensor_f32(c->d_in[0]) : NULL;
    float *dw = c->n_in > 1 && c->d_in[1] ? graft_tensor_f32(c->d_in[1]) : NULL;
    float *db = c->n_in > 2 && c->in[2] && c->d_in[2] ? graft_tensor_f32(c->d_in[2]) : NULL;
    graft__conv_backward_ws(&geo, graft_tensor_f32(c->in[0]), graft_tensor_f32(c->in[1]), g, dx,
                            dw, db, g + n_pad, graft__threads(c->ctx));
    return GRAFT_OK;
}

const graft_op_def graft__op_conv = {
    .op_type = "Conv",
    .domain = "",
    .min_opset = 1,
    .params_size = sizeof(conv_params),
    .parse = conv_parse,
    .infer = conv_infer,
    .forward = conv_forward,
    .backward = conv_backward,
};

const graft_op_def graft__op_fused_conv = {
    .op_type = "FusedConv",
    .domain = "com.microsoft",
    .min_opset = 1,
    .params_size = sizeof(conv_params),
    .parse = fused_conv_parse,
    .infer = conv_infer,
    .forward = conv_forward,
    .backward = fused_conv_backward,
};
