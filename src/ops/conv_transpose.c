/* ops/conv_transpose.c - ConvTranspose (opset 1+), 1-D to 3-D, float32.
 *
 * X is N×C×in[], W is C×(M/group)×k[], Y is N×M×out[]:
 *   Y[n,m,o] = B[m] + Σ_{c in group(m), i, t : o = i·s - pb + t·d} X[n,c,i] · W[c,m',t]
 * i.e. the adjoint of Conv (each input element spreads a weighted kernel
 * over the output). Output extent per axis, with ek = (k-1)·d + 1:
 *   NOTSET   s·(in-1) + output_padding + ek - pb - pe
 *   VALID    the same with no pads
 *   SAME_*   in·s, and output_shape when given (it overrides pads): the
 *            total padding s·(in-1) + output_padding + ek - out is split
 *            floor(total/2) at the start for SAME_UPPER, at the end otherwise
 *            (the ONNX spec and its reference, floor division included: a
 *            negative total - output_shape beyond the natural extent - gives
 *            negative pads, the extra positions hold just the bias).
 * Backward: dB[m] += Σ dY[n,m,·];  dX = conv(dY, W) (im2col of dY, GEMM);
 *           dW = X ⋆ im2col(dY), per group (kernels/col2im.c).
 */
#include <stdio.h>
#include <string.h>

#include "kernels/col2im.h"
#include "kernels/window.h"
#include "ops/light_util.h"
#include "ops/op.h"

/* Bound on every attribute value: beyond it no real model goes and the
 * extent arithmetic could overflow. */
#define CONVT_ATTR_MAX ((int64_t)INT32_MAX)

typedef struct convt_params {
    graft__window win;
    int64_t group;
    int n_out_pad, n_out_shape; /* -1: attribute absent */
    int64_t out_pad[GRAFT__WINDOW_MAX];
    int64_t out_shape[GRAFT__WINDOW_MAX + 2];
} convt_params;

static graft_status check_range(graft_error *err, const graft_node *n, const char *name,
                                const int64_t *v, int cnt, int64_t lo)
{
    for (int i = 0; i < cnt; i++)
        if (v[i] < lo || v[i] > CONVT_ATTR_MAX)
            return lu_node_fail(err, n, GRAFT_ERR_INVALID,
                                "%s[%d] = %lld is out of range [%lld, %lld]", name, i,
                                (long long)v[i], (long long)lo, (long long)CONVT_ATTR_MAX);
    return GRAFT_OK;
}

static graft_status convt_parse(const graft_graph *g, const graft_node *n, void *params,
                                graft_error *err)
{
    (void)g;
    convt_params *p = params;
    memset(p, 0, sizeof *p);
    graft_status st = lu_check_inputs(err, n, 2, 3);
    if (st != GRAFT_OK)
        return st;
    st = graft__window_parse(n, &p->win, err);
    if (st != GRAFT_OK)
        return st;
    const graft__window *w = &p->win;
    const int cap = GRAFT__WINDOW_MAX; /* entries kept; longer lists fail on their length */
    if ((st = check_range(err, n, "kernel_shape", w->kernel, w->n_kernel < cap ? w->n_kernel : cap,
                          1)) ||
        (st = check_range(err, n, "strides", w->strides, w->n_strides < cap ? w->n_strides : cap,
                          1)) ||
        (st = check_range(err, n, "dilations", w->dil, w->n_dil < cap ? w->n_dil : cap, 1)) ||
        (st = check_range(err, n, "pads", w->pads, w->n_pads < 2 * cap ? w->n_pads : 2 * cap, 0)))
        return st;
    p->group = graft_node_attr_int(n, "group", 1);
    if (p->group < 1 || p->group > CONVT_ATTR_MAX)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "group = %lld must be in [1, %lld]",
                            (long long)p->group, (long long)CONVT_ATTR_MAX);
    const int64_t *v = NULL;
    p->n_out_pad = graft_node_attr_ints(n, "output_padding", &v);
    if (p->n_out_pad > GRAFT__WINDOW_MAX)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "output_padding has %d entries",
                            p->n_out_pad);
    if (p->n_out_pad > 0) {
        memcpy(p->out_pad, v, (size_t)p->n_out_pad * sizeof *v);
        if ((st = check_range(err, n, "output_padding", p->out_pad, p->n_out_pad, 0)))
            return st;
    }
    p->n_out_shape = graft_node_attr_ints(n, "output_shape", &v);
    if (p->n_out_shape > GRAFT__WINDOW_MAX + 2)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "output_shape has %d entries",
                            p->n_out_shape);
    if (p->n_out_shape > 0) {
        memcpy(p->out_shape, v, (size_t)p->n_out_shape * sizeof *v);
        if ((st = check_range(err, n, "output_shape", p->out_shape, p->n_out_shape, 0)))
            return st;
    }
    return GRAFT_OK;
}

static char *fmt_shape(const graft_tensor *t, char *buf, size_t size)
{
    return graft_shape_format(t->rank, t->dims, buf, size);
}

/* a·b + c with overflow detection (false on overflow). */
static bool mul_add(int64_t a, int64_t b, int64_t c, int64_t *r)
{
    int64_t t;
    return !__builtin_mul_overflow(a, b, &t) && !__builtin_add_overflow(t, c, r);
}

static int64_t floor_half(int64_t v)
{
    return v >= 0 ? v / 2 : -((-v + 1) / 2);
}

/* Checks the inputs against each other and the attributes, and fills the
 * 3-D geometry and the output shape (-1 for dims unknown at build time). */
static graft_status convt_geometry(graft_op_call *c, graft__convt_geom *geo, int *rank_out,
                                   int64_t *out_dims)
{
    const convt_params *p = c->params;
    const graft__window *win = &p->win;
    char b1[96], b2[96];
    if (c->n_in < 2 || !c->in[0] || !c->in[1])
        return graft__op_fail(c, GRAFT_ERR_INVALID, "needs inputs X and W");
    const graft_tensor *x = c->in[0], *w = c->in[1];
    const graft_tensor *b = c->n_in > 2 ? c->in[2] : NULL;
    if (x->dtype != GRAFT_DTYPE_UNDEFINED && !graft_dtype_is_float(x->dtype))
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED,
                              "X is %s; only floating types are supported",
                              graft_dtype_name(x->dtype));
    if (w->dtype != GRAFT_DTYPE_UNDEFINED && !graft_dtype_is_float(w->dtype))
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED,
                              "W is %s; only floating types are supported",
                              graft_dtype_name(w->dtype));
    if (x->rank < 3)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "X must have rank >= 3, got %s",
                              fmt_shape(x, b1, sizeof b1));
    const int nsp = x->rank - 2;
    if (nsp > 3)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "%d spatial axes (at most 3 supported)",
                              nsp);
    if (w->rank != x->rank)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "W %s has rank %d but X %s has rank %d",
                              fmt_shape(w, b1, sizeof b1), w->rank, fmt_shape(x, b2, sizeof b2),
                              x->rank);
    const int64_t grp = p->group, cin = x->dims[1];
    if (cin >= 0 && w->dims[0] >= 0 && cin != w->dims[0])
        return graft__op_fail(c, GRAFT_ERR_SHAPE, "X has %lld channels but W %s expects %lld",
                              (long long)cin, fmt_shape(w, b1, sizeof b1),
                              (long long)w->dims[0]);
    if (cin >= 0 && cin % grp != 0)
        return graft__op_fail(c, GRAFT_ERR_INVALID,
                              "%lld input channels are not divisible by group %lld",
                              (long long)cin, (long long)grp);
    int64_t m = -1;
    if (w->dims[1] >= 0 && __builtin_mul_overflow(w->dims[1], grp, &m))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "W.shape[1] * group overflows");
    if (win->n_kernel >= 0 && win->n_kernel != nsp)
        return graft__op_fail(c, GRAFT_ERR_INVALID,
                              "kernel_shape has %d entries, expected %d (spatial rank of X)",
                              win->n_kernel, nsp);
    if (win->n_strides >= 0 && win->n_strides != nsp)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "strides has %d entries, expected %d",
                              win->n_strides, nsp);
    if (win->n_dil >= 0 && win->n_dil != nsp)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "dilations has %d entries, expected %d",
                              win->n_dil, nsp);
    if (win->auto_pad == GRAFT__PAD_NOTSET && win->n_pads >= 0 && win->n_pads != 2 * nsp)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "pads has %d entries, expected %d",
                              win->n_pads, 2 * nsp);
    if (p->n_out_pad >= 0 && p->n_out_pad != nsp)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "output_padding has %d entries, expected %d",
                              p->n_out_pad, nsp);
    /* output_shape lists the spatial extents; a full N, C, ... shape (as some
     * exporters write) is accepted by its trailing entries */
    const int n_os = p->n_out_shape;
    if (n_os >= 0 && n_os != nsp && n_os != nsp + 2)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "output_shape has %d entries, expected %d",
                              n_os, nsp);
    if (b && b->dtype != GRAFT_DTYPE_UNDEFINED && !graft_dtype_is_float(b->dtype))
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED,
                              "B is %s; only floating types are supported",
                              graft_dtype_name(b->dtype));
    if (b) {
        int64_t bn = b->rank == 1 ? b->dims[0] : -2;
        if (b->rank != 1 || (bn >= 0 && m >= 0 && bn != m))
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "bias %s does not match %lld output channels",
                                  fmt_shape(b, b1, sizeof b1), (long long)m);
    }
    int64_t k[3], st[3], dl[3], pb[3], od[3];
    for (int i = 0; i < nsp; i++) {
        const int64_t wk = w->dims[2 + i];
        if (win->n_kernel > 0 && wk >= 0 && win->kernel[i] != wk)
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "kernel_shape[%d] = %lld but W is %s", i,
                                  (long long)win->kernel[i], fmt_shape(w, b1, sizeof b1));
        k[i] = wk >= 0 ? wk : (win->n_kernel > 0 ? win->kernel[i] : -1);
        if (k[i] <= 0)
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "W %s has an empty or unknown kernel axis",
                                  fmt_shape(w, b1, sizeof b1));
        st[i] = win->n_strides > 0 ? win->strides[i] : 1;
        dl[i] = win->n_dil > 0 ? win->dil[i] : 1;
        const int64_t opad = p->n_out_pad > 0 ? p->out_pad[i] : 0;
        const int64_t in = x->dims[2 + i];
        const int64_t want = n_os > 0 ? p->out_shape[n_os - nsp + i] : -1;
        if (in == 0)
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "X %s has an empty spatial axis",
                                  fmt_shape(x, b1, sizeof b1));
        int64_t ek, natural;
        if (!mul_add(k[i] - 1, dl[i], 1, &ek) || !mul_add(st[i], in - 1, opad, &natural) ||
            __builtin_add_overflow(natural, ek, &natural))
            return graft__op_fail(c, GRAFT_ERR_INVALID, "output extent of axis %d overflows", i);
        if (natural > INT64_MAX / 4) /* keeps every index sum in the kernels in range */
            return graft__op_fail(c, GRAFT_ERR_INVALID, "output extent of axis %d overflows", i);
        pb[i] = 0;
        od[i] = -1;
        if (want >= 0) {
            od[i] = want;
            if (in > 0) {
                int64_t total = natural - want;
                pb[i] = win->auto_pad == GRAFT__PAD_SAME_UPPER ? floor_half(total)
                                                               : total - floor_half(total);
            }
        } else if (win->auto_pad == GRAFT__PAD_SAME_UPPER ||
                   win->auto_pad == GRAFT__PAD_SAME_LOWER) {
            if (in > 0) {
                if (__builtin_mul_overflow(in, st[i], &od[i]))
                    return graft__op_fail(c, GRAFT_ERR_INVALID,
                                          "output extent of axis %d overflows", i);
                int64_t total = natural - od[i];
                pb[i] = win->auto_pad == GRAFT__PAD_SAME_UPPER ? floor_half(total)
                                                               : total - floor_half(total);
            }
        } else {
            int64_t pe = 0;
            if (win->auto_pad == GRAFT__PAD_NOTSET && win->n_pads > 0) {
                pb[i] = win->pads[i];
                pe = win->pads[i + nsp];
            }
            if (in > 0)
                od[i] = natural - pb[i] - pe;
        }
        if (od[i] == 0 || od[i] < -1)
            return graft__op_fail(c, GRAFT_ERR_SHAPE,
                                  "output extent %lld on spatial axis %d (X %s, W %s)",
                                  (long long)od[i], i, fmt_shape(x, b1, sizeof b1),
                                  fmt_shape(w, b2, sizeof b2));
    }
    *rank_out = x->rank;
    out_dims[0] = x->dims[0];
    out_dims[1] = m;
    for (int i = 0; i < nsp; i++)
        out_dims[2 + i] = od[i];
    bool known = true;
    for (int i = 0; i < x->rank; i++)
        known = known && out_dims[i] >= 0;
    if (known) {
        int64_t ne = graft_shape_nelem(x->rank, out_dims);
        if (ne < 0 || ne > INT64_MAX / 16)
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "output %s is too large",
                                  graft_shape_format(x->rank, out_dims, b1, sizeof b1));
    }
    graft__conv_geom_set(geo, nsp, x->dims[0], cin, m, grp, x->dims + 2, od, k, st, dl, pb);
    return GRAFT_OK;
}

static graft_status convt_infer(graft_op_call *c)
{
    graft__convt_geom geo;
    int rank = 0;
    int64_t dims[GRAFT_MAX_RANK];
    if (c->n_in >= 1 && c->in[0] && c->in[0]->rank < 0) {
        if (c->out[0])
            c->out[0]->rank = -1;
        return GRAFT_OK;
    }
    graft_status st = convt_geometry(c, &geo, &rank, dims);
    if (st != GRAFT_OK)
        return st;
    if (c->out[0])
        lu_set_shape(c->out[0], GRAFT_FLOAT, rank, dims);
    return GRAFT_OK;
}

static graft_status convt_forward(graft_op_call *c)
{
    graft__convt_geom geo;
    int rank = 0;
    int64_t dims[GRAFT_MAX_RANK];
    graft_status st = convt_geometry(c, &geo, &rank, dims);
    if (st != GRAFT_OK)
        return st;
    if (!c->out[0])
        return GRAFT_OK;
    const float *b = c->n_in > 2 && c->in[2] ? graft_tensor_f32(c->in[2]) : NULL;
    st = graft__convt_forward(&geo, graft_tensor_f32(c->in[0]), graft_tensor_f32(c->in[1]), b,
                              graft_tensor_f32(c->out[0]), c->ctx);
    if (st != GRAFT_OK)
        return graft__op_fail(c, st, "out of memory for the transposed convolution workspace");
    return GRAFT_OK;
}

static graft_status convt_backward(graft_op_call *c)
{
    graft__convt_geom geo;
    int rank = 0;
    int64_t dims[GRAFT_MAX_RANK];
    if (!c->d_out[0])
        return GRAFT_OK;
    graft_status st = convt_geometry(c, &geo, &rank, dims);
    if (st != GRAFT_OK)
        return st;
    float *dx = c->d_in[0] ? graft_tensor_f32(c->d_in[0]) : NULL;
    float *dw = c->d_in[1] ? graft_tensor_f32(c->d_in[1]) : NULL;
    float *db = c->n_in > 2 && c->in[2] && c->d_in[2] ? graft_tensor_f32(c->d_in[2]) : NULL;
    st = graft__convt_backward(&geo, graft_tensor_f32(c->in[0]), graft_tensor_f32(c->in[1]),
                               graft_tensor_f32(c->d_out[0]), dx, dw, db, c->ctx);
    if (st != GRAFT_OK)
        return graft__op_fail(c, st, "out of memory for the transposed convolution workspace");
    return GRAFT_OK;
}

const graft_op_def graft__op_conv_transpose = {
    .op_type = "ConvTranspose",
    .domain = "",
    .min_opset = 1,
    .params_size = sizeof(convt_params),
    .parse = convt_parse,
    .infer = convt_infer,
    .forward = convt_forward,
    .backward = convt_backward,
};
