/* kernels/conv.h - N-d convolution (up to 3 spatial axes) over float32 NC[D]HW.
 *
 * Every convolution is described as 3-D: a 1-D or 2-D one has leading
 * spatial axes of size 1, kernel 1, stride 1, no padding. Forward picks one
 * of three paths:
 *   pointwise  1x1, stride 1, no padding: one GEMM per image and group
 *              straight on the input;
 *   depthwise  group == C with one input channel per group (any channel
 *              multiplier), at most 2-D: a direct kernel, no GEMM;
 *   general    im2col into the scratch buffer, then GEMM; for small 2-D
 *              planes (P below a few hundred) at batch > 1 one GEMM covers
 *              a block of images, their im2col side by side.
 * Bias, the residual Z and the activation are applied in the write-back
 * while the output block is still in cache.
 */
#ifndef GRAFT_KERNELS_CONV_H
#define GRAFT_KERNELS_CONV_H

#include <stdint.h>

#include "graft/status.h"
#include "kernels/act.h"
#include "ops/op.h"

typedef struct graft__conv_geom {
    int64_t n, c, m, group;
    int64_t in[3], out[3];               /* spatial extents of X and Y */
    int64_t k[3], stride[3], dil[3], pad[3]; /* pad: padding before each axis */
} graft__conv_geom;

/* Sets g for nsp (1-3) spatial axes given in order; the leading unused axes
 * get extent 1, stride 1, no padding. */
static inline void graft__conv_geom_set(graft__conv_geom *g, int nsp, int64_t n, int64_t c,
                                        int64_t m, int64_t group, const int64_t *in,
                                        const int64_t *out, const int64_t *k,
                                        const int64_t *stride, const int64_t *dil,
                                        const int64_t *pad)
{
    g->n = n;
    g->c = c;
    g->m = m;
    g->group = group;
    for (int i = 0; i < 3; i++) {
        int j = i - (3 - nsp);
        g->in[i] = j >= 0 ? in[j] : 1;
        g->out[i] = j >= 0 ? out[j] : 1;
        g->k[i] = j >= 0 ? k[j] : 1;
        g->stride[i] = j >= 0 ? stride[j] : 1;
        g->dil[i] = j >= 0 ? dil[j] : 1;
        g->pad[i] = j >= 0 ? pad[j] : 0;
    }
}

/* y = act(conv(x, w) + bias + z); bias and z may be NULL. GRAFT_ERR_NOMEM
 * when the scratch buffer cannot be had. */
graft_status graft__conv_forward(const graft__conv_geom *g, const float *x, const float *w,
                                 const float *bias, const float *z, const graft__act *act,
                                 float *y, graft_exec_ctx *ctx);

/* Accumulates (+=) the gradients of a plain convolution into each non-NULL
 * dx, dw, db given dy. */
graft_status graft__conv_backward(const graft__conv_geom *g, const float *x, const float *w,
                                  const float *dy, float *dx, float *dw, float *db,
                                  graft_exec_ctx *ctx);
/* The same on a caller's workspace of graft__conv_backward_work_floats(g,
 * n_threads) floats. */
int64_t graft__conv_backward_work_floats(const graft__conv_geom *g, int n_threads);
void graft__conv_backward_ws(const graft__conv_geom *g, const float *x, const float *w,
                             const float *dy, float *dx, float *dw, float *db, float *work,
                             int n_threads);

/* Output indices o in [*lo, *hi) for which o*stride + off lies in [0, n). */
static inline void graft__valid_range(int64_t off, int64_t stride, int64_t n, int64_t n_out,
                                      int64_t *lo, int64_t *hi)
{
    int64_t l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t h = n - 1 - off < 0 ? 0 : (n - 1 - off) / stride + 1;
    if (h > n_out)
        h = n_out;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

static inline int graft__threads(const graft_exec_ctx *ctx)
{
    return ctx && ctx->n_threads > 0 ? ctx->n_threads : 2;
}

#endif
