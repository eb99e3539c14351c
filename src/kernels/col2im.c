/* kernels/col2im.c - ConvTranspose forward and backward on graft__sgemm.
 *
 * The column matrix has one row per (output channel co, kernel tap t) of a
 * group, Kc = (m/group)·kvol rows, and one column per X position of the
 * current tile. Forward fills it with one GEMM (W_gᵀ · X_g) and scatters it
 * into Y (col2im: the adjoint of Conv's im2col); backward gathers dY into it
 * (im2col) and runs two GEMMs against it. Threads take whole (image, group)
 * items, whose Y planes (forward) and dX planes (backward) are disjoint;
 * dW gets one partial sum per thread. With fewer items than threads, one
 * item at a time uses every thread (BLIS inside, channels split outside). */
#include "kernels/col2im.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/conv.h"
#include "kernels/gemm.h"

/* Column tile in floats: 1 MB, so the tile and the Y rows it scatters into
 * stay in L2 between the GEMM and col2im. */
#define CONVT_TILE_FLOATS (256 * 1024)
#define CONVT_TILE_ALIGN 16
/* Multiply-adds below which a parallel region costs more than it saves. */
#define CONVT_PAR_MIN_FLOPS (1 << 20)
/* Floats touched below which splitting im2col/col2im over channels does not pay. */
#define CONVT_PAR_MIN 32768

typedef struct tdims {
    int64_t cg, mg, kvol, kc, p, q; /* X/Y channels per group, taps, Kc, X plane, Y plane */
} tdims;

static tdims dims_of(const graft__convt_geom *g)
{
    tdims d;
    d.cg = g->c / g->group;
    d.mg = g->m / g->group;
    d.kvol = g->k[0] * g->k[1] * g->k[2];
    d.kc = d.mg * d.kvol;
    d.p = g->in[0] * g->in[1] * g->in[2];
    d.q = g->out[0] * g->out[1] * g->out[2];
    return d;
}

static int thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* A 1×1 kernel at stride 1 without padding maps X positions one to one onto
 * Y: the column matrix is Y itself and the GEMM goes straight into it. */
static bool is_pointwise(const graft__convt_geom *g)
{
    for (int i = 0; i < 3; i++)
        if (g->k[i] != 1 || g->stride[i] != 1 || g->pad[i] != 0 || g->in[i] != g->out[i])
            return false;
    return true;
}

typedef struct tap {
    int64_t offz, offy, offx, xlo, xhi;
} tap;

/* Kernel tap t: Y offsets per axis and the X columns [xlo, xhi) whose output
 * column ix·s + offx falls inside Y. */
static tap tap_of(const graft__convt_geom *g, int64_t t)
{
    tap r;
    int64_t kz = t / (g->k[1] * g->k[2]), ky = t / g->k[2] % g->k[1], kx = t % g->k[2];
    r.offz = kz * g->dil[0] - g->pad[0];
    r.offy = ky * g->dil[1] - g->pad[1];
    r.offx = kx * g->dil[2] - g->pad[2];
    graft__valid_range(r.offx, g->stride[2], g->out[2], g->in[2], &r.xlo, &r.xhi);
    return r;
}

/* yg[co] += col2im of rows co·kvol.. of col, for output channels [co0, co1)
 * and X positions [p0, p0 + pw) (col row stride pw). */
static void col2im_tile(const graft__convt_geom *g, const tdims *d, const float *col, int64_t p0,
                        int64_t pw, float *yg, int64_t co0, int64_t co1)
{
    const int64_t ih = g->in[1], iw = g->in[2], od = g->out[0], oh = g->out[1], ow = g->out[2];
    const int64_t sz = g->stride[0], sy = g->stride[1], sx = g->stride[2];
    for (int64_t co = co0; co < co1; co++) {
        float *yc = yg + co * d->q;
        for (int64_t t = 0; t < d->kvol; t++) {
            const tap k = tap_of(g, t);
            const float *row = col + (co * d->kvol + t) * pw;
            int64_t p = p0, end = p0 + pw;
            int64_t iz = p / (ih * iw), iy = p / iw % ih, ix = p % iw;
            while (p < end) {
                const int64_t nseg = iw - ix < end - p ? iw - ix : end - p;
                const int64_t oz = iz * sz + k.offz, oy = iy * sy + k.offy;
                if (oz >= 0 && oz < od && oy >= 0 && oy < oh) {
                    int64_t a = k.xlo > ix ? k.xlo : ix, b = k.xhi < ix + nseg ? k.xhi : ix + nseg;
                    if (b > a) {
                        const float *restrict src = row + (p - p0) + (a - ix);
                        float *restrict dst = yc + (oz * oh + oy) * ow + a * sx + k.offx;
                        if (sx == 1)
                            for (int64_t j = 0; j < b - a; j++)
                                dst[j] += src[j];
                        else
                            for (int64_t j = 0; j < b - a; j++)
                                dst[j * sx] += src[j];
                    }
                }
                p += nseg;
                ix = 0;
                if (++iy == ih) {
                    iy = 0;
                    iz++;
                }
            }
        }
    }
}

/* Rows co·kvol.. of col for output channels [co0, co1) gathered from dyg:
 * the transpose of col2im_tile (zeros where a tap falls outside Y). */
static void im2col_tile(const graft__convt_geom *g, const tdims *d, const float *dyg, float *col,
                        int64_t p0, int64_t pw, int64_t co0, int64_t co1)
{
    const int64_t ih = g->in[1], iw = g->in[2], od = g->out[0], oh = g->out[1], ow = g->out[2];
    const int64_t sz = g->stride[0], sy = g->stride[1], sx = g->stride[2];
    for (int64_t co = co0; co < co1; co++) {
        const float *yc = dyg + co * d->q;
        for (int64_t t = 0; t < d->kvol; t++) {
            const tap k = tap_of(g, t);
            float *row = col + (co * d->kvol + t) * pw;
            int64_t p = p0, end = p0 + pw;
            int64_t iz = p / (ih * iw), iy = p / iw % ih, ix = p % iw;
            while (p < end) {
                const int64_t nseg = iw - ix < end - p ? iw - ix : end - p;
                const int64_t oz = iz * sz + k.offz, oy = iy * sy + k.offy;
                float *restrict o = row + (p - p0); /* o[j - ix] is X column j */
                int64_t a = ix, b = ix;
                if (oz >= 0 && oz < od && oy >= 0 && oy < oh) {
                    a = k.xlo > ix ? k.xlo : ix;
                    b = k.xhi < ix + nseg ? k.xhi : ix + nseg;
                    if (b < a)
                        b = a;
                }
                for (int64_t j = ix; j < a; j++)
                    o[j - ix] = 0.0f;
                if (b > a) {
                    const float *restrict src = yc + (oz * oh + oy) * ow + a * sx + k.offx;
                    float *restrict q = o + (a - ix);
                    if (sx == 1)
                        for (int64_t j = 0; j < b - a; j++)
                            q[j] = src[j];
                    else
                        for (int64_t j = 0; j < b - a; j++)
                            q[j] = src[j * sx];
                }
                for (int64_t j = b; j < ix + nseg; j++)
                    o[j - ix] = 0.0f;
                p += nseg;
                ix = 0;
                if (++iy == ih) {
                    iy = 0;
                    iz++;
                }
            }
        }
    }
}

/* Columns per tile: the whole plane when it fits CONVT_TILE_FLOATS. */
static int64_t tile_width(const tdims *d)
{
    int64_t w = CONVT_TILE_FLOATS / (d->kc > 0 ? d->kc : 1);
    w = w < 64 ? 64 : w / CONVT_TILE_ALIGN * CONVT_TILE_ALIGN;
    return w < d->p ? w : d->p;
}

/* Threads over (image, group) items, or 1 when there is too little work to
 * split or too few items (then the work inside an item is split instead). */
static int item_threads(const graft__convt_geom *g, const tdims *d, int nt)
{
    const int64_t items = g->n * g->group;
    const double flops = (double)items * (double)d->kc * (double)d->p * (double)d->cg;
    if (nt <= 1 || items < 2 || flops < CONVT_PAR_MIN_FLOPS)
        return 1;
    return items < nt ? (int)items : nt;
}

static int64_t round16(int64_t v)
{
    return (v + 15) / 16 * 16;
}

/* The plan's scratch buffer, or (a context without one, as when an op is
 * driven by hand) a heap block returned in *heap for the caller to free. */
static float *workspace(graft_exec_ctx *ctx, int64_t n_floats, void **heap)
{
    size_t nbytes = (size_t)n_floats * sizeof(float) + GRAFT_BLAS_SLACK;
    *heap = NULL;
    if (ctx && ctx->scratch)
        return ctx->scratch(ctx, nbytes);
    *heap = aligned_alloc(64, (nbytes + 63) / 64 * 64);
    return *heap;
}

typedef struct job {
    const graft__convt_geom *g;
    tdims d;
    bool pointwise;
    int64_t width;
    int inner, split; /* threads for the GEMMs and for im2col/col2im inside one item */
} job;

static job job_of(const graft__convt_geom *g, int threads, int nt)
{
    job j;
    j.g = g;
    j.d = dims_of(g);
    j.pointwise = is_pointwise(g);
    j.width = j.d.p > 0 ? tile_width(&j.d) : 0;
    j.inner = threads > 1 ? 1 : nt;
    j.split = j.inner > 1 && j.d.kc * j.width >= CONVT_PAR_MIN ? j.inner : 1;
    return j;
}

/* Forward of item it = (image, group) with this thread's column buffer. */
static void forward_item(const job *j, int64_t it, const float *x, const float *w,
                         const float *bias, float *y, float *col)
{
    const graft__convt_geom *g = j->g;
    const tdims *d = &j->d;
    const int64_t ni = it / g->group, gi = it % g->group;
    const float *xg = x + (ni * g->c + gi * d->cg) * d->p;
    const float *wg = w + gi * d->cg * d->kc;
    float *yg = y + (ni * g->m + gi * d->mg) * d->q;
    for (int64_t co = 0; co < d->mg; co++) {
        const float b = bias ? bias[gi * d->mg + co] : 0.0f;
        float *restrict yr = yg + co * d->q;
        for (int64_t i = 0; i < d->q; i++)
            yr[i] = b;
    }
    if (j->pointwise) { /* Y_g (Mg×P) += W_gᵀ (Mg×Cg) · X_g (Cg×P) */
        graft__sgemm_rm(true, false, d->mg, d->p, d->cg, 1.0f, wg, d->kc, xg, d->p, 1.0f, yg,
                        d->q, j->inner);
        return;
    }
    for (int64_t p0 = 0; p0 < d->p; p0 += j->width) {
        const int64_t pw = d->p - p0 < j->width ? d->p - p0 : j->width;
        /* col (Kc×pw) = W_gᵀ (Kc×Cg) · X_g[:, p0..] (Cg×pw) */
        graft__sgemm_rm(true, false, d->kc, pw, d->cg, 1.0f, wg, d->kc, xg + p0, d->p, 0.0f, col,
                        pw, j->inner);
        if (j->split > 1) {
#pragma omp parallel for num_threads(j->split) schedule(static)
            for (int64_t co = 0; co < d->mg; co++)
                col2im_tile(g, d, col, p0, pw, yg, co, co + 1);
        } else {
            col2im_tile(g, d, col, p0, pw, yg, 0, d->mg);
        }
    }
}

graft_status graft__convt_forward(const graft__convt_geom *g, const float *x, const float *w,
                                  const float *bias, float *y, graft_exec_ctx *ctx)
{
    const tdims d = dims_of(g);
    if (g->n == 0 || d.q == 0 || g->m == 0)
        return GRAFT_OK;
    const int nt = graft__threads(ctx);
    const int threads = item_threads(g, &d, nt);
    const job j = job_of(g, threads, nt);
    const int64_t per = j.pointwise ? 0 : round16(d.kc * j.width);
    float *buf = NULL;
    void *heap = NULL;
    if (per > 0 && !(buf = workspace(ctx, threads * per, &heap)))
        return GRAFT_ERR_NOMEM;
    const int64_t items = g->n * g->group;
    /* One thread stays outside any parallel region, so that BLIS and the
     * channel split can use every thread inside an item. */
    if (threads == 1) {
        for (int64_t it = 0; it < items; it++)
            forward_item(&j, it, x, w, bias, y, buf);
    } else {
#pragma omp parallel num_threads(threads)
        {
            float *col = buf ? buf + (int64_t)thread_num() * per : NULL;
#pragma omp for schedule(dynamic, 1)
            for (int64_t it = 0; it < items; it++)
                forward_item(&j, it, x, w, bias, y, col);
        }
    }
    free(heap);
    return GRAFT_OK;
}

static void bias_grad(const graft__convt_geom *g, const tdims *d, const float *dy, float *db)
{
    for (int64_t mi = 0; mi < g->m; mi++) {
        double s = 0.0;
        for (int64_t ni = 0; ni < g->n; ni++) {
            const float *r = dy + (ni * g->m + mi) * d->q;
            float part = 0.0f; /* float lanes per row vectorise; rows sum in double */
            for (int64_t i = 0; i < d->q; i++)
                part += r[i];
            s += part;
        }
        db[mi] += (float)s;
    }
}

/* Backward of item it into dx and dwt (this thread's dW or its partial sum). */
static void backward_item(const job *j, int64_t it, const float *x, const float *w,
                          const float *dy, float *dx, float *dwt, float *col)
{
    const graft__convt_geom *g = j->g;
    const tdims *d = &j->d;
    const int64_t ni = it / g->group, gi = it % g->group;
    const float *xg = x + (ni * g->c + gi * d->cg) * d->p;
    const float *wg = w + gi * d->cg * d->kc;
    const float *dyg = dy + (ni * g->m + gi * d->mg) * d->q;
    float *dxg = dx ? dx + (ni * g->c + gi * d->cg) * d->p : NULL;
    float *dwg = dwt ? dwt + gi * d->cg * d->kc : NULL;
    if (j->pointwise) {
        /* dX_g (Cg×P) += W_g (Cg×Mg) · dY_g (Mg×P);  dW_g += X_g · dY_gᵀ */
        if (dxg)
            graft__sgemm_rm(false, false, d->cg, d->p, d->mg, 1.0f, wg, d->kc, dyg, d->q, 1.0f,
                            dxg, d->p, j->inner);
        if (dwg)
            graft__sgemm_rm(false, true, d->cg, d->mg, d->p, 1.0f, xg, d->p, dyg, d->q, 1.0f, dwg,
                            d->kc, j->inner);
        return;
    }
    for (int64_t p0 = 0; p0 < d->p; p0 += j->width) {
        const int64_t pw = d->p - p0 < j->width ? d->p - p0 : j->width;
        if (j->split > 1) {
#pragma omp parallel for num_threads(j->split) schedule(static)
            for (int64_t co = 0; co < d->mg; co++)
                im2col_tile(g, d, dyg, col, p0, pw, co, co + 1);
        } else {
            im2col_tile(g, d, dyg, col, p0, pw, 0, d->mg);
        }
        /* dX_g[:, p0..] (Cg×pw) += W_g (Cg×Kc) · col (Kc×pw) */
        if (dxg)
            graft__sgemm_rm(false, false, d->cg, pw, d->kc, 1.0f, wg, d->kc, col, pw, 1.0f,
                            dxg + p0, d->p, j->inner);
        /* dW_g (Cg×Kc) += X_g[:, p0..] (Cg×pw) · colᵀ (pw×Kc) */
        if (dwg)
            graft__sgemm_rm(false, true, d->cg, d->kc, pw, 1.0f, xg + p0, d->p, col, pw, 1.0f,
                            dwg, d->kc, j->inner);
    }
}

graft_status graft__convt_backward(const graft__convt_geom *g, const float *x, const float *w,
                                   const float *dy, float *dx, float *dw, float *db,
                                   graft_exec_ctx *ctx)
{
    const tdims d = dims_of(g);
    if (db && d.q > 0)
        bias_grad(g, &d, dy, db);
    if ((!dx && !dw) || g->n == 0 || d.p == 0 || d.q == 0 || g->m == 0 || g->c == 0)
        return GRAFT_OK;
    const int nt = graft__threads(ctx);
    const int threads = item_threads(g, &d, nt);
    const job j = job_of(g, threads, nt);
    const int64_t wn = g->c * d.kc; /* W's element count */
    const int64_t col_n = j.pointwise ? 0 : round16(d.kc * j.width);
    const int64_t part_n = dw && threads > 1 ? round16(wn) : 0;
    const int64_t per = col_n + part_n;
    float *buf = NULL;
    void *heap = NULL;
    if (per > 0 && !(buf = workspace(ctx, threads * per, &heap)))
        return GRAFT_ERR_NOMEM;
    const int64_t items = g->n * g->group;
    if (threads == 1) {
        for (int64_t it = 0; it < items; it++)
            backward_item(&j, it, x, w, dy, dx, dw, buf);
        free(heap);
        return GRAFT_OK;
    }
#pragma omp parallel num_threads(threads)
    {
        float *col = buf + (int64_t)thread_num() * per;
        float *dwt = dw ? col + col_n : NULL;
        if (dwt)
            memset(dwt, 0, (size_t)wn * sizeof *dwt);
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++)
            backward_item(&j, it, x, w, dy, dx, dwt, col);
    }
    if (dw) {
        /* one writer per element of dW: threads split the elements */
#pragma omp parallel for num_threads(threads) schedule(static) if (wn >= CONVT_PAR_MIN)
        for (int64_t i = 0; i < wn; i++) {
            float s = 0.0f;
            for (int t = 0; t < threads; t++)
                s += buf[(int64_t)t * per + col_n + i];
            dw[i] += s;
        }
    }
    free(heap);
    return GRAFT_OK;
}
