/* kernels/conv.c - convolution forward and backward on top of graft__sgemm.
 *
 * Forward, per image and group g:  Y_g (Mg×P) = W_g (Mg×K) · col_g (K×P)
 * with K = Cg·kd·kh·kw and P = od·oh·ow, col = im2col(X_g).
 * Backward: dW_g += dY_g · col_gᵀ;  dcol = W_gᵀ · dY_g, dX_g += col2im(dcol);
 * dB[m] += Σ dY[:, m]. */
#include "kernels/conv.h"

#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/gemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CONV_AVX512 1
#endif

/* Work (in floats touched) below which an OpenMP region costs more than it saves. */
#define CONV_PAR_MIN 32768

/* This thread's index inside a parallel region (0 outside one): the slice
 * of the scratch buffer it owns. */
static inline int thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static inline int thread_count(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

typedef struct conv_dims {
    int64_t cg, mg, kvol, kdim, p, ip;
} conv_dims;

static conv_dims dims_of(const graft__conv_geom *g)
{
    conv_dims d;
    d.cg = g->c / g->group;
    d.mg = g->m / g->group;
    d.kvol = g->k[0] * g->k[1] * g->k[2];
    d.kdim = d.cg * d.kvol;
    d.p = g->out[0] * g->out[1] * g->out[2];
    d.ip = g->in[0] * g->in[1] * g->in[2];
    return d;
}

static int is_pointwise(const graft__conv_geom *g)
{
    for (int i = 0; i < 3; i++)
        if (g->k[i] != 1 || g->stride[i] != 1 || g->pad[i] != 0 || g->out[i] != g->in[i])
            return 0;
    return 1;
}

static int is_depthwise(const graft__conv_geom *g)
{
    return g->group == g->c && g->group > 1 && g->m % g->c == 0 && g->in[0] == 1 &&
           g->k[0] == 1 && g->out[0] == 1;
}

/* One row of col (kernel offset r) for a Cg-channel block x. When xw is set
 * the row is instead added back into xw (col2im). */
static void im2col_row(const graft__conv_geom *g, const conv_dims *d, const float *x, float *xw,
                       float *row, int64_t r)
{
    int64_t c = r / d->kvol, kr = r % d->kvol;
    int64_t kz = kr / (g->k[1] * g->k[2]), ky = (kr / g->k[2]) % g->k[1], kx = kr % g->k[2];
    const int64_t od = g->out[0], oh = g->out[1], ow = g->out[2];
    const int64_t ih = g->in[1], iw = g->in[2];
    int64_t offx = kx * g->dil[2] - g->pad[2];
    int64_t lo, hi;
    graft__valid_range(offx, g->stride[2], iw, ow, &lo, &hi);
    const int64_t sx = g->stride[2];
    for (int64_t oz = 0; oz < od; oz++) {
        int64_t iz = oz * g->stride[0] - g->pad[0] + kz * g->dil[0];
        float *dz = row + oz * oh * ow;
        if (iz < 0 || iz >= g->in[0]) {
            if (!xw)
                memset(dz, 0, (size_t)(oh * ow) * sizeof *dz);
            continue;
        }
        for (int64_t oy = 0; oy < oh; oy++) {
            int64_t iy = oy * g->stride[1] - g->pad[1] + ky * g->dil[1];
            float *dst = dz + oy * ow;
            if (iy < 0 || iy >= ih) {
                if (!xw)
                    memset(dst, 0, (size_t)ow * sizeof *dst);
                continue;
            }
            int64_t base = c * d->ip + (iz * ih + iy) * iw + offx;
            if (xw) {
                for (int64_t o = lo; o < hi; o++)
                    xw[base + o * sx] += dst[o];
                continue;
            }
            for (int64_t o = 0; o < lo; o++)
                dst[o] = 0.0f;
            if (sx == 1 && hi > lo)
                memcpy(dst + lo, x + base + lo, (size_t)(hi - lo) * sizeof *dst);
            else
                for (int64_t o = lo; o < hi; o++)
                    dst[o] = x[base + o * sx];
            for (int64_t o = hi; o < ow; o++)
                dst[o] = 0.0f;
        }
    }
}

/* Columns [p0, p0 + pw) of row r of col (output positions in raster order). */
static void im2col_row_tile(const graft__conv_geom *g, const conv_dims *d, const float *x,
                            float *dst, int64_t r, int64_t p0, int64_t pw)
{
    int64_t c = r / d->kvol, kr = r % d->kvol;
    int64_t kz = kr / (g->k[1] * g->k[2]), ky = (kr / g->k[2]) % g->k[1], kx = kr % g->k[2];
    const int64_t oh = g->out[1], ow = g->out[2], ih = g->in[1], iw = g->in[2];
    const int64_t sx = g->stride[2];
    const int64_t offx = kx * g->dil[2] - g->pad[2];
    int64_t lo, hi;
    graft__valid_range(offx, sx, iw, ow, &lo, &hi);
    int64_t p = p0, end = p0 + pw;
    while (p < end) {
        int64_t oz = p / (oh * ow), oy = p / ow % oh, ox = p % ow;
        int64_t n = ow - ox < end - p ? ow - ox : end - p; /* rest of this output row */
        int64_t iz = oz * g->stride[0] - g->pad[0] + kz * g->dil[0];
        int64_t iy = oy * g->stride[1] - g->pad[1] + ky * g->dil[1];
        float *o = dst + (p - p0);
        if (iz < 0 || iz >= g->in[0] || iy < 0 || iy >= ih) {
            memset(o, 0, (size_t)n * sizeof *o);
        } else {
            int64_t base = c * d->ip + (iz * ih + iy) * iw + offx;
            int64_t a = lo > ox ? lo : ox, b = hi < ox + n ? hi : ox + n;
            if (b < a)
                b = a;
            for (int64_t q = ox; q < a; q++)
                o[q - ox] = 0.0f;
            if (sx == 1)
                memcpy(o + (a - ox), x + base + a, (size_t)(b - a) * sizeof *o);
            else
                for (int64_t q = a; q < b; q++)
                    o[q - ox] = x[base + q * sx];
            for (int64_t q = b; q < ox + n; q++)
                o[q - ox] = 0.0f;
        }
        p += n;
    }
}

static bool is_2d(const graft__conv_geom *g)
{
    return g->in[0] == 1 && g->k[0] == 1 && g->out[0] == 1;
}

/* One row of a 2-D im2col when the output is as wide as the input and the
 * stride is 1 ("same" padding): output index t then reads input index
 * t + shift, so the whole span [s0, s1) from the first to the last valid
 * output is one contiguous copy; the few columns inside it that fall in the
 * horizontal padding ([0, xlo) and [xhi, ow) of each row) picked up a
 * neighbouring row's value and are zeroed after. Columns [p0, p0 + pw). */
static void im2col_flat_row(const float *xc, float *restrict o, int64_t p0, int64_t pw, int64_t ow,
                            int64_t s0, int64_t s1, int64_t shift, int64_t ylo, int64_t yhi,
                            int64_t xlo, int64_t xhi, bool any)
{
    const int64_t end = p0 + pw;
    int64_t a = any && s0 > p0 ? s0 : p0, b = any && s1 < end ? s1 : end;
    if (!any || b < a)
        a = b = end;
    for (int64_t t = p0; t < a; t++)
        o[t - p0] = 0.0f;
    if (b > a) {
        const float *restrict src = xc + (a + shift);
        float *restrict q = o + (a - p0);
        for (int64_t i = 0; i < b - a; i++)
            q[i] = src[i];
    }
    for (int64_t t = b; t < end; t++)
        o[t - p0] = 0.0f;
    if (b <= a || (xlo == 0 && xhi == ow))
        return;
    for (int64_t oy = ylo; oy < yhi; oy++) { /* [ylo, yhi): the rows the tile touches */
        for (int64_t t = oy * ow; t < oy * ow + xlo; t++)
            if (t >= a && t < b)
                o[t - p0] = 0.0f;
        for (int64_t t = oy * ow + xhi; t < (oy + 1) * ow; t++)
            if (t >= a && t < b)
                o[t - p0] = 0.0f;
    }
}

/* 2-D im2col of columns [p0, p0 + pw) into dst (row r at dst + r·ld). The
 * clipping is worked out once per kernel offset (valid rows and columns),
 * not per output row, and the copies are inline loops: for the small
 * planes where this matters a row is a handful of floats, too short for a
 * memcpy call to pay. */
static void im2col_2d(const graft__conv_geom *g, const conv_dims *d, const float *x,
                      float *restrict dst, int64_t ld, int64_t p0, int64_t pw)
{
    const int64_t oh = g->out[1], ow = g->out[2], ih = g->in[1], iw = g->in[2];
    const int64_t kh = g->k[1], kw = g->k[2], sy = g->stride[1], sx = g->stride[2];
    const int64_t y0 = p0 / ow, y1 = (p0 + pw + ow - 1) / ow; /* output rows touched */
    const bool flat = sx == 1 && sy == 1 && iw == ow;
    /* Kernel offset outer, channel inner: the clipping (a few 64-bit
     * divisions, which at K = 576 rows of 49 columns cost as much as the
     * copies) is worked out once per offset instead of once per row. */
    for (int64_t ky = 0; ky < kh; ky++)
        for (int64_t kx = 0; kx < kw; kx++) {
            const int64_t offy = ky * g->dil[1] - g->pad[1], offx = kx * g->dil[2] - g->pad[2];
            int64_t ylo, yhi, xlo, xhi;
            graft__valid_range(offy, sy, ih, oh, &ylo, &yhi);
            graft__valid_range(offx, sx, iw, ow, &xlo, &xhi);
            for (int64_t c = 0; c < d->cg; c++) {
                const float *xc = x + c * d->ip;
                float *rowp = dst + ((c * kh + ky) * kw + kx) * ld;
                if (flat) {
                    im2col_flat_row(xc, rowp, p0, pw, ow, ylo * ow + xlo, (yhi - 1) * ow + xhi,
                                    offy * iw + offx, ylo > y0 ? ylo : y0, yhi < y1 ? yhi : y1,
                                    xlo, xhi, ylo < yhi && xlo < xhi);
                    continue;
                }
                for (int64_t oy = y0; oy < y1; oy++) {
                    /* this output row's columns [a, b) fall in the tile, at o[0..) */
                    int64_t a = oy * ow < p0 ? p0 - oy * ow : 0;
                    int64_t b = (oy + 1) * ow > p0 + pw ? p0 + pw - oy * ow : ow;
                    float *restrict o = rowp + (oy * ow + a - p0);
                    if (oy < ylo || oy >= yhi) {
                        for (int64_t ox = a; ox < b; ox++)
                            o[ox - a] = 0.0f;
                        continue;
                    }
                    int64_t lo = xlo > a ? xlo : a, hi = xhi < b ? xhi : b;
                    if (hi < lo)
                        hi = lo;
                    for (int64_t ox = a; ox < lo; ox++)
                        o[ox - a] = 0.0f;
                    if (hi > lo) {
                        const float *restrict src = xc + (oy * sy + offy) * iw + lo * sx + offx;
                        float *restrict q = o + (lo - a);
                        if (sx == 1)
                            for (int64_t i = 0; i < hi - lo; i++)
                                q[i] = src[i];
                        else
                            for (int64_t i = 0; i < hi - lo; i++)
                                q[i] = src[i * sx];
                    }
                    for (int64_t ox = hi; ox < b; ox++)
                        o[ox - a] = 0.0f;
                }
            }
        }
}

static void im2col(const graft__conv_geom *g, const conv_dims *d, const float *x, float *col,
                   int nt)
{
    int64_t rows = d->kdim;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && rows * d->p >= CONV_PAR_MIN)
    for (int64_t r = 0; r < rows; r++)
        im2col_row(g, d, x, NULL, col + r * d->p, r);
}

/* dx += col2im(col); channels are independent, so threads split them. */
static void col2im_add(const graft__conv_geom *g, const conv_dims *d, const float *col, float *dx,
                       int nt)
{
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && d->kdim * d->p >= CONV_PAR_MIN)
    for (int64_t c = 0; c < d->cg; c++)
        for (int64_t r = c * d->kvol; r < (c + 1) * d->kvol; r++)
            im2col_row(g, d, NULL, dx, (float *)(col + r * d->p), r);
}

/* Copy of one input plane with its padding made explicit: exactly the rows
 * and columns the output windows reach, zeros outside X, so the depthwise
 * loops below carry no bounds tests. */
static void pad_plane(const graft__conv_geom *g, const float *xp, float *pp, int64_t ph,
                      int64_t pw)
{
    const int64_t ih = g->in[1], iw = g->in[2], pt = g->pad[1], pl = g->pad[2];
    int64_t lo = pl < pw ? pl : pw, hi = pl + iw < pw ? pl + iw : pw;
    for (int64_t py = 0; py < ph; py++) {
        int64_t iy = py - pt;
        float *row = pp + py * pw;
        if (iy < 0 || iy >= ih) {
            memset(row, 0, (size_t)pw * sizeof *row);
            continue;
        }
        for (int64_t px = 0; px < lo; px++)
            row[px] = 0.0f;
        if (hi > lo)
            memcpy(row + lo, xp + iy * iw + (lo - pl), (size_t)(hi - lo) * sizeof *row);
        for (int64_t px = hi > lo ? hi : lo; px < pw; px++)
            row[px] = 0.0f;
    }
}

__attribute__((noinline)) static void depthwise_plane(const graft__conv_geom *g, const float *pp, int64_t pw,
                            const float *wp, float bias, const float *zp, const graft__act *act,
                            float *yp)
{
    const int64_t oh = g->out[1], ow = g->out[2], kh = g->k[1], kw = g->k[2];
    const int64_t sy = g->stride[1], sx = g->stride[2], dy = g->dil[1], dx = g->dil[2];
    for (int64_t oy = 0; oy < oh; oy++) {
        float *restrict yrow = yp + oy * ow;
        for (int64_t o = 0; o < ow; o++)
            yrow[o] = 0.0f;
        for (int64_t ky = 0; ky < kh; ky++) {
            const float *restrict prow = pp + (oy * sy + ky * dy) * pw;
            const float *wr = wp + ky * kw;
            if (kw == 3 && sx == 1) {
                const float w0 = wr[0], w1 = wr[1], w2 = wr[2];
                for (int64_t o = 0; o < ow; o++)
                    yrow[o] += w0 * prow[o] + w1 * prow[o + dx] + w2 * prow[o + 2 * dx];
            } else if (kw == 3 && sx == 2) {
                const float w0 = wr[0], w1 = wr[1], w2 = wr[2];
                for (int64_t o = 0; o < ow; o++)
                    yrow[o] += w0 * prow[2 * o] + w1 * prow[2 * o + dx] + w2 * prow[2 * o + 2 * dx];
            } else if (sx == 1) {
                for (int64_t kx = 0; kx < kw; kx++) {
                    const float wv = wr[kx];
                    const float *q = prow + kx * dx;
                    for (int64_t o = 0; o < ow; o++)
                        yrow[o] += wv * q[o];
                }
            } else {
                for (int64_t kx = 0; kx < kw; kx++) {
                    const float wv = wr[kx];
                    const float *q = prow + kx * dx;
                    for (int64_t o = 0; o < ow; o++)
                        yrow[o] += wv * q[o * sx];
                }
            }
        }
        graft__act_row(yrow, ow, bias, zp ? zp + oy * ow : NULL, act);
    }
}

/* Stride 1, flat: the output is computed as if it were pw wide (the padded
 * width), so each kernel tap is one long contiguous multiply-add over the
 * whole plane however narrow its rows; the pw - ow extra columns per row are
 * dropped when copying out. pp must have (kw-1)·dx readable floats past
 * ph·pw (zeros). */
__attribute__((noinline)) static void depthwise_plane_flat(const graft__conv_geom *g, const float *pp, int64_t pw,
                                 const float *wp, float bias, const float *zp,
                                 const graft__act *act, float *acc, float *yp)
{
    const int64_t oh = g->out[1], ow = g->out[2], kh = g->k[1], kw = g->k[2];
    const int64_t dy = g->dil[1], dx = g->dil[2], n = oh * pw;
    if (kh == 3 && kw == 3) { /* the common case: all nine taps in one pass */
        const float *restrict r0 = pp, *restrict r1 = pp + dy * pw, *restrict r2 = pp + 2 * dy * pw;
        const float w00 = wp[0], w01 = wp[1], w02 = wp[2], w10 = wp[3], w11 = wp[4];
        const float w12 = wp[5], w20 = wp[6], w21 = wp[7], w22 = wp[8];
        const int64_t d1 = dx, d2 = 2 * dx;
        float *restrict a = acc;
        if (dx == 1) { /* constant tap offsets: three base registers suffice */
            for (int64_t t = 0; t < n; t++)
                a[t] = fmaf(w22, r2[t + 2], fmaf(w21, r2[t + 1], fmaf(w20, r2[t],
                       fmaf(w12, r1[t + 2], fmaf(w11, r1[t + 1], fmaf(w10, r1[t],
                       fmaf(w02, r0[t + 2], fmaf(w01, r0[t + 1], w00 * r0[t]))))))));
            goto out;
        }
        for (int64_t t = 0; t < n; t++)
            a[t] = fmaf(w22, r2[t + d2], fmaf(w21, r2[t + d1], fmaf(w20, r2[t],
                   fmaf(w12, r1[t + d2], fmaf(w11, r1[t + d1], fmaf(w10, r1[t],
                   fmaf(w02, r0[t + d2], fmaf(w01, r0[t + d1], w00 * r0[t]))))))));
        goto out;
    }
    for (int64_t t = 0; t < n; t++)
        acc[t] = 0.0f;
    for (int64_t ky = 0; ky < kh; ky++) {
        const float *wr = wp + ky * kw;
        const float *rowp = pp + ky * dy * pw;
        if (kw == 3) {
            const float w0 = wr[0], w1 = wr[1], w2 = wr[2];
            const float *restrict q0 = rowp, *restrict q1 = rowp + dx, *restrict q2 = rowp + 2 * dx;
            float *restrict a = acc;
            for (int64_t t = 0; t < n; t++)
                a[t] = fmaf(w2, q2[t], fmaf(w1, q1[t], fmaf(w0, q0[t], a[t])));
            continue;
        }
        for (int64_t kx = 0; kx < kw; kx++) {
            const float wv = wr[kx];
            const float *restrict q = rowp + kx * dx;
            float *restrict a = acc;
            for (int64_t t = 0; t < n; t++)
                a[t] = fmaf(wv, q[t], a[t]);
        }
    }
out:
    for (int64_t oy = 0; oy < oh; oy++) {
        float *yrow = yp + oy * ow;
        memcpy(yrow, acc + oy * pw, (size_t)ow * sizeof *yrow);
        graft__act_row(yrow, ow, bias, zp ? zp + oy * ow : NULL, act);
    }
}

/* Stride 2, 3 taps, no column dilation: the padded rows are split into even
 * and odd columns so every tap reads contiguously:
 * y[o] += w0·even[o] + w1·odd[o] + w2·even[o+1]. */
__attribute__((noinline)) static void depthwise_plane_s2(const graft__conv_geom *g, const float *pp, int64_t pw,
                               const float *wp, float bias, const float *zp,
                               const graft__act *act, float *eo, float *yp)
{
    const int64_t oh = g->out[1], ow = g->out[2], kh = g->k[1], sy = g->stride[1];
    const int64_t dy = g->dil[1], ph = (oh - 1) * sy + (kh - 1) * dy + 1;
    const int64_t half = ow + 1; /* even columns needed: ow + 1, odd: ow */
    /* eo: ph rows of [even (half) | odd (half)] */
    for (int64_t r = 0; r < ph; r++) {
        const float *src = pp + r * pw;
        float *ev = eo + r * 2 * half, *od = ev + half;
        for (int64_t o = 0; o < half; o++) /* 2·ow < pw for three taps */
            ev[o] = src[2 * o];
        for (int64_t o = 0; o < ow; o++)
            od[o] = src[2 * o + 1];
        od[ow] = 0.0f;
    }
    for (int64_t oy = 0; oy < oh; oy++) {
        float *restrict yrow = yp + oy * ow;
        if (kh == 3) {
            const float *restrict e0 = eo + (oy * sy) * 2 * half, *restrict o0 = e0 + half;
            const float *restrict e1 = eo + (oy * sy + dy) * 2 * half, *restrict o1 = e1 + half;
            const float *restrict e2 = eo + (oy * sy + 2 * dy) * 2 * half, *restrict o2 = e2 + half;
            const float w00 = wp[0], w01 = wp[1], w02 = wp[2], w10 = wp[3], w11 = wp[4];
            const float w12 = wp[5], w20 = wp[6], w21 = wp[7], w22 = wp[8];
            for (int64_t o = 0; o < ow; o++)
                yrow[o] = fmaf(w22, e2[o + 1], fmaf(w21, o2[o], fmaf(w20, e2[o],
                          fmaf(w12, e1[o + 1], fmaf(w11, o1[o], fmaf(w10, e1[o],
                          fmaf(w02, e0[o + 1], fmaf(w01, o0[o], w00 * e0[o]))))))));
            graft__act_row(yrow, ow, bias, zp ? zp + oy * ow : NULL, act);
            continue;
        }
        for (int64_t o = 0; o < ow; o++)
            yrow[o] = 0.0f;
        for (int64_t ky = 0; ky < kh; ky++) {
            const float *restrict ev = eo + (oy * sy + ky * dy) * 2 * half;
            const float *restrict od = ev + half;
            const float w0 = wp[ky * 3], w1 = wp[ky * 3 + 1], w2 = wp[ky * 3 + 2];
            for (int64_t o = 0; o < ow; o++)
                yrow[o] = fmaf(w2, ev[o + 1], fmaf(w1, od[o], fmaf(w0, ev[o], yrow[o])));
        }
        graft__act_row(yrow, ow, bias, zp ? zp + oy * ow : NULL, act);
    }
}

/* One work item per (image, input channel): pad the plane once, then every
 * output channel of the multiplier reads it. */
static graft_status depthwise_forward(const graft__conv_geom *g, const float *x, const float *w,
                                      const float *bias, const float *z, const graft__act *act,
                                      float *y, graft_exec_ctx *ctx, int nt)
{
    const int64_t mult = g->m / g->c, ip = g->in[1] * g->in[2], p = g->out[1] * g->out[2];
    const int64_t kv = g->k[1] * g->k[2], items = g->n * g->c;
    const int64_t ph = (g->out[1] - 1) * g->stride[1] + (g->k[1] - 1) * g->dil[1] + 1;
    const int64_t pw = (g->out[2] - 1) * g->stride[2] + (g->k[2] - 1) * g->dil[2] + 1;
    const bool flat = g->stride[2] == 1 && g->stride[1] == 1;
    const bool s2 = !flat && g->stride[2] == 2 && g->k[2] == 3 && g->dil[2] == 1;
    /* per thread: the padded plane (+ overrun slack) and a work buffer */
    const int64_t pad_n = ph * pw + (g->k[2] - 1) * g->dil[2] + 16;
    const int64_t work_n = flat ? g->out[1] * pw : (s2 ? ph * 2 * (g->out[2] + 1) : 0);
    const int64_t per = pad_n + work_n;
    int threads = nt > 1 && items * mult * p * kv >= CONV_PAR_MIN ? nt : 1;
    float *buf = ctx->scratch(ctx, (size_t)(threads * per) * sizeof(float));
    if (!buf)
        return GRAFT_ERR_NOMEM;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        const int tid = thread_num();
        float *pp = buf + (int64_t)tid * per, *work = pp + pad_n;
        for (int64_t t = ph * pw; t < pad_n; t++)
            pp[t] = 0.0f;
#pragma omp for schedule(static)
        for (int64_t it = 0; it < items; it++) {
            int64_t ni = it / g->c, ci = it % g->c;
            pad_plane(g, x + it * ip, pp, ph, pw);
            for (int64_t j = 0; j < mult; j++) {
                int64_t mi = ci * mult + j, pl = ni * g->m + mi;
                const float *wp = w + mi * kv, *zp = z ? z + pl * p : NULL;
                float bv = bias ? bias[mi] : 0.0f;
                if (flat)
                    depthwise_plane_flat(g, pp, pw, wp, bv, zp, act, work, y + pl * p);
                else if (s2)
                    depthwise_plane_s2(g, pp, pw, wp, bv, zp, act, work, y + pl * p);
                else
                    depthwise_plane(g, pp, pw, wp, bv, zp, act, y + pl * p);
            }
        }
    }
    return GRAFT_OK;
}

/* The forward GEMMs, C (m×n) = A (m×k) · B (k×n), all row-major with unit
 * column stride: A the weights (read in place), B an im2col tile or an input
 * plane, packed 256 k-steps × 32 columns at a time when enough rows of A
 * reuse it (gemm_avx512). On AVX-512 a register-blocked kernel (12 rows × 32
 * columns: 24 accumulators, the two B vectors of each k shared by 12
 * broadcasts of A; 8 and 4 rows for the rest) runs these shapes 25-50%
 * faster than the BLIS build Debian ships, which on this class of machine
 * (FMA unit count unknown to BLIS's detection, e.g. under a hypervisor)
 * falls back to its 256-bit Haswell kernels; it also skips BLIS's packing,
 * the whole cost for a 49-column product. Columns past n are masked, rows past the last
 * multiple of 4 go one at a time. Same products and sums as any GEMM, in
 * k order. Elsewhere: BLIS. */
/* What the forward GEMM's write-back adds, fused: C = act(A·B + bias[row]
 * + Z) for the activations a vector max/min/blend computes (the others
 * run as a pass over the tile after it). bias and z start at C's row 0. */
typedef struct gemm_epi {
    const float *bias;
    const float *z; /* C's layout (its ldc) */
    graft__act act;
} gemm_epi;

static bool epi_fusable(const graft__act *act)
{
    return act->kind == GRAFT__ACT_NONE || act->kind == GRAFT__ACT_RELU ||
           act->kind == GRAFT__ACT_CLIP || act->kind == GRAFT__ACT_LEAKY_RELU;
}

#ifdef CONV_AVX512
__attribute__((target("avx512f"), always_inline)) static inline __m512
epi_apply(const gemm_epi *e, __m512 x, float bias, const float *z, __mmask16 kv)
{
    x = _mm512_add_ps(x, _mm512_set1_ps(bias));
    if (z)
        x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(kv, z));
    switch (e->act.kind) {
    case GRAFT__ACT_RELU: return _mm512_max_ps(x, _mm512_setzero_ps());
    case GRAFT__ACT_CLIP:
        return _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(e->act.a)), _mm512_set1_ps(e->act.b));
    case GRAFT__ACT_LEAKY_RELU: {
        const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
        return _mm512_mask_mul_ps(x, neg, x, _mm512_set1_ps(e->act.a));
    }
    default: return x;
    }
}

/* One block of rows × (16·nv) columns of C; B is either in place (ldb its
 * row stride) or, packed, a panel of ldb = 32 floats a row. packed also
 * accumulates into C from the second k block on (add). Always inlined with
 * constant rows, nv and packed, so the loops unroll and acc lives in
 * registers. */
__attribute__((target("avx512f"), always_inline)) static inline void
gemm_block(int rows, int nv, bool packed, int64_t k, const float *a, int64_t lda, const float *b,
           int64_t ldb, float *c, int64_t ldc, __mmask16 k0, __mmask16 k1, bool add,
           const gemm_epi *e, const float *bias, const float *z)
{
    __m512 acc[12][2];
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nv; v++)
            acc[r][v] = _mm512_setzero_ps();
    for (int64_t q = 0; q < k; q++) {
        /* a packed panel is aligned and zero-padded: plain loads */
        const __m512 b0 =
            packed ? _mm512_load_ps(b + q * ldb) : _mm512_maskz_loadu_ps(k0, b + q * ldb);
        const __m512 b1 = nv < 2   ? b0
                          : packed ? _mm512_load_ps(b + q * ldb + 16)
                                   : _mm512_maskz_loadu_ps(k1, b + q * ldb + 16);
        for (int r = 0; r < rows; r++) {
            const __m512 t = _mm512_set1_ps(a[r * lda + q]);
            acc[r][0] = _mm512_fmadd_ps(t, b0, acc[r][0]);
            if (nv > 1)
                acc[r][1] = _mm512_fmadd_ps(t, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < rows; r++) {
        for (int v = 0; v < nv; v++) {
            const __mmask16 kv = v ? k1 : k0;
            __m512 x = acc[r][v];
            if (add)
                x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(kv, c + r * ldc + 16 * v));
            if (e) /* the last k block: the write-back */
                x = epi_apply(e, x, bias ? bias[r] : 0.0f, z ? z + r * ldc + 16 * v : NULL, kv);
            _mm512_mask_storeu_ps(c + r * ldc + 16 * v, kv, x);
        }
    }
}

/* k rows of B per packed panel: 32 KB, resident in L1/L2 while every row
 * block of A streams past it. */
#define GEMM_KC 256

/* The epilogue's pointers for the block at row i, column j of C (ef NULL
 * while more k blocks follow). */
#define EPI_ARGS(ef, i, j)                                                                         \
    ef, (ef) && (ef)->bias ? (ef)->bias + (i) : NULL,                                              \
        (ef) && (ef)->z ? (ef)->z + (i)*ldc + (j) : NULL

__attribute__((target("avx512f"))) static void gemm_avx512(int64_t m, int64_t n, int64_t k,
                                                           const float *a, int64_t lda,
                                                           const float *b, int64_t ldb, float *c,
                                                           int64_t ldc, const gemm_epi *e)
{
    /* Packing B pays once its panel is read by a few row blocks: unpacked,
     * B's rows lie ldb apart (a 56x56 plane is 12.5 KB), so every k step
     * crosses a page, which the hardware prefetchers do not follow.
     * Measured on ResNet layer shapes: 8-20% faster for 3x3, up to 1.8x for
     * 1x1 256->64 at 56x56. */
    const bool pack = m >= 24 && k >= 16;
    float bp[GEMM_KC * 32] __attribute__((aligned(64)));
    for (int64_t j = 0; j < n; j += 32) {
        const int64_t w = n - j < 32 ? n - j : 32;
        const __mmask16 k0 = w >= 16 ? 0xffff : (__mmask16)((1u << w) - 1);
        const __mmask16 k1 = w >= 32 ? 0xffff : (w <= 16 ? 0 : (__mmask16)((1u << (w - 16)) - 1));
        const float *bj = b + j;
        float *cj = c + j;
        if (pack) {
            const int nv = w > 16 ? 2 : 1;
            for (int64_t kb = 0; kb < k; kb += GEMM_KC) {
                const int64_t kc = k - kb < GEMM_KC ? k - kb : GEMM_KC;
                for (int64_t q = 0; q < kc; q++) {
                    const float *src = bj + (kb + q) * ldb;
                    _mm512_store_ps(bp + q * 32, _mm512_maskz_loadu_ps(k0, src));
                    _mm512_store_ps(bp + q * 32 + 16, _mm512_maskz_loadu_ps(k1, src + 16));
                }
                const float *ak = a + kb;
                const bool add = kb > 0;
                const gemm_epi *ef = kb + kc >= k ? e : NULL;
                int64_t i = 0;
                if (nv == 1) {
                    for (; i + 12 <= m; i += 12)
                        gemm_block(12, 1, true, kc, ak + i * lda, lda, bp, 32, cj + i * ldc, ldc,
                                   k0, k1, add, EPI_ARGS(ef, i, j));
                } else {
                    for (; i + 12 <= m; i += 12)
                        gemm_block(12, 2, true, kc, ak + i * lda, lda, bp, 32, cj + i * ldc, ldc,
                                   k0, k1, add, EPI_ARGS(ef, i, j));
                }
                for (; i + 8 <= m; i += 8)
                    gemm_block(8, 2, true, kc, ak + i * lda, lda, bp, 32, cj + i * ldc, ldc, k0, k1,
                               add, EPI_ARGS(ef, i, j));
                for (; i + 4 <= m; i += 4)
                    gemm_block(4, 2, true, kc, ak + i * lda, lda, bp, 32, cj + i * ldc, ldc, k0, k1,
                               add, EPI_ARGS(ef, i, j));
                for (; i < m; i++)
                    gemm_block(1, 2, true, kc, ak + i * lda, lda, bp, 32, cj + i * ldc, ldc, k0, k1,
                               add, EPI_ARGS(ef, i, j));
            }
            continue;
        }
        int64_t i = 0;
        if (w <= 16) /* the last 16 columns or fewer: one vector per row */
            for (; i + 8 <= m; i += 8)
                gemm_block(8, 1, false, k, a + i * lda, lda, bj, ldb, cj + i * ldc, ldc, k0, k1,
                           false, EPI_ARGS(e, i, j));
        for (; k >= 32 && i + 12 <= m; i += 12) /* tiny k: 8 rows measured faster */
            gemm_block(12, 2, false, k, a + i * lda, lda, bj, ldb, cj + i * ldc, ldc, k0, k1, false,
                       EPI_ARGS(e, i, j));
        for (; i + 8 <= m; i += 8)
            gemm_block(8, 2, false, k, a + i * lda, lda, bj, ldb, cj + i * ldc, ldc, k0, k1, false,
                       EPI_ARGS(e, i, j));
        for (; i + 4 <= m; i += 4)
            gemm_block(4, 2, false, k, a + i * lda, lda, bj, ldb, cj + i * ldc, ldc, k0, k1, false,
                       EPI_ARGS(e, i, j));
        for (; i < m; i++)
            gemm_block(1, 2, false, k, a + i * lda, lda, bj, ldb, cj + i * ldc, ldc, k0, k1, false,
                       EPI_ARGS(e, i, j));
    }
}
#endif

static bool have_avx512(void)
{
#ifdef CONV_AVX512
    return __builtin_cpu_supports("avx512f");
#else
    return false;
#endif
}

/* Single-threaded C = A·B for the forward paths (see above). */
static void tile_gemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                      int64_t ldb, float *c, int64_t ldc)
{
#ifdef CONV_AVX512
    if (have_avx512() && m > 0 && n > 0) {
        gemm_avx512(m, n, k, a, lda, b, ldb, c, ldc, NULL);
        return;
    }
#endif
    graft__sgemm(m, n, k, 1.0f, a, lda, 1, b, ldb, 1, 0.0f, c, ldc, 1, 1);
}

/* The same with the write-back C = act(A·B + bias[row] + Z): fused into the
 * kernel's stores where it can be, else a pass over the rows while the tile
 * is hot. bias (length m) and z (C's layout) may be NULL. */
static void tile_gemm_act(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float *c, int64_t ldc, const float *bias,
                          const float *z, const graft__act *act)
{
    const bool any = bias || z || act->kind != GRAFT__ACT_NONE;
#ifdef CONV_AVX512
    if (have_avx512() && m > 0 && n > 0 && epi_fusable(act)) {
        const gemm_epi e = {bias, z, *act};
        gemm_avx512(m, n, k, a, lda, b, ldb, c, ldc, any ? &e : NULL);
        return;
    }
#endif
    tile_gemm(m, n, k, a, lda, b, ldb, c, ldc);
    for (int64_t r = 0; any && r < m; r++)
        graft__act_row(c + r * ldc, n, bias ? bias[r] : 0.0f, z ? z + r * ldc : NULL, act);
}

/* Columns of one output tile: the im2col tile (K × width) should stay in
 * the core's L2 next to BLIS's packed copy of it; multiples of 16 (the
 * micro-kernel's NR) waste no lanes. */
#define CONV_TILE_FLOATS (64 * 1024)
#define CONV_TILE_ALIGN 16

static int64_t round_up(int64_t v, int64_t to)
{
    return (v + to - 1) / to * to;
}

/* Below this many output columns per thread, splitting the columns starves
 * the micro-kernel; BLIS then splits the rows instead. */
#define CONV_MIN_SPLIT 64

/* Multiply-adds below which one image's GEMM stays on one thread (as in
 * kernels/gemm.c). */
#define CONV_GEMM_PAR_MIN (1 << 20)

/* The same on AVX-512 (2-D or pointwise): each thread owns a block of
 * output channels (a multiple of 8 rows) for every image and builds its
 * own copy of the im2col (a few microseconds, done in parallel), so one
 * parallel region covers the layer: no serial im2col while the other
 * threads spin, no barrier per image. */
static graft_status rows_split_forward(const graft__conv_geom *g, const conv_dims *d,
                                       const float *x, const float *w, const float *bias,
                                       const float *z, const graft__act *act, float *y,
                                       graft_exec_ctx *ctx, int64_t chunk, int64_t n_chunks)
{
    const int pointwise = is_pointwise(g);
    const int threads = (int)n_chunks;
    float *col = NULL;
    if (!pointwise) {
        col = ctx->scratch(ctx, (size_t)(threads * d->kdim * d->p) * sizeof(float));
        if (!col)
            return GRAFT_ERR_NOMEM;
    }
#pragma omp parallel num_threads(threads)
    {
        const int tid = thread_num();
        float *mycol = col ? col + (int64_t)tid * d->kdim * d->p : NULL;
        /* one chunk per thread; round robin should the region get fewer */
        for (int64_t ci = tid; ci < n_chunks; ci += thread_count()) {
            const int64_t r0 = ci * chunk, rows = d->mg - r0 < chunk ? d->mg - r0 : chunk;
            for (int64_t ni = 0; ni < g->n; ni++)
                for (int64_t gi = 0; gi < g->group; gi++) {
                    const float *xg = x + ni * g->c * d->ip + gi * d->cg * d->ip;
                    const int64_t off = ni * g->m * d->p + (gi * d->mg + r0) * d->p;
                    const float *b = xg;
                    if (!pointwise) {
                        im2col_2d(g, d, xg, mycol, d->p, 0, d->p);
                        b = mycol;
                    }
                    tile_gemm_act(rows, d->p, d->kdim, w + (gi * d->mg + r0) * d->kdim, d->kdim, b,
                                  d->p, y + off, d->p, bias ? bias + gi * d->mg + r0 : NULL,
                                  z ? z + off : NULL, act);
                }
        }
    }
    return GRAFT_OK;
}

/* Few, small images (deep layers at batch 1): im2col once per image and
 * group, then one GEMM that BLIS spreads over the threads. */
static graft_status blas_threaded_forward(const graft__conv_geom *g, const conv_dims *d,
                                          const float *x, const float *w, const float *bias,
                                          const float *z, const graft__act *act, float *y,
                                          graft_exec_ctx *ctx, int nt)
{
    const int pointwise = is_pointwise(g);
    /* threads split the rows in multiples of 8 (the kernel's block) */
    const int64_t chunk = round_up((d->mg + nt - 1) / nt, 8);
    const int64_t n_chunks = (d->mg + chunk - 1) / chunk;
    const bool split =
        have_avx512() && n_chunks > 1 && d->mg * d->p * d->kdim >= CONV_GEMM_PAR_MIN;
    if (split && (pointwise || is_2d(g)))
        return rows_split_forward(g, d, x, w, bias, z, act, y, ctx, chunk, n_chunks);
    float *col = NULL;
    if (!pointwise) {
        col = ctx->scratch(ctx, (size_t)(d->kdim * d->p) * sizeof(float));
        if (!col)
            return GRAFT_ERR_NOMEM;
    }
    const bool fuse = bias || z || act->kind != GRAFT__ACT_NONE;
    for (int64_t ni = 0; ni < g->n; ni++)
        for (int64_t gi = 0; gi < g->group; gi++) {
            const float *xg = x + ni * g->c * d->ip + gi * d->cg * d->ip;
            float *yg = y + ni * g->m * d->p + gi * d->mg * d->p;
            const float *b = xg;
            if (!pointwise) {
                if (is_2d(g))
                    im2col_2d(g, d, xg, col, d->p, 0, d->p);
                else
                    im2col(g, d, xg, col, nt);
                b = col;
            }
            const float *wg = w + gi * d->mg * d->kdim;
            const float *zg = z ? z + ni * g->m * d->p + gi * d->mg * d->p : NULL;
            const float *bg = bias ? bias + gi * d->mg : NULL;
            if (split) {
#pragma omp parallel for num_threads(nt) schedule(static)
                for (int64_t ci = 0; ci < n_chunks; ci++) {
                    const int64_t r0 = ci * chunk, rows = d->mg - r0 < chunk ? d->mg - r0 : chunk;
                    tile_gemm_act(rows, d->p, d->kdim, wg + r0 * d->kdim, d->kdim, b, d->p,
                                  yg + r0 * d->p, d->p, bg ? bg + r0 : NULL,
                                  zg ? zg + r0 * d->p : NULL, act);
                }
                continue;
            }
            graft__sgemm(d->mg, d->p, d->kdim, 1.0f, wg, d->kdim, 1, b, d->p, 1, 0.0f, yg, d->p, 1,
                         nt);
            if (!fuse)
                continue;
            int64_t rows = d->mg, p = d->p;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && rows * p >= CONV_PAR_MIN)
            for (int64_t m = 0; m < rows; m++)
                graft__act_row(yg + m * p, p, bg ? bg[m] : 0.0f, zg ? zg + m * p : NULL, act);
        }
    return GRAFT_OK;
}

/* Small planes (the deep layers of a small CNN: 7x7, 14x14): one image's
 * GEMM is too narrow (BLIS spends its time packing the whole weight matrix
 * for a few dozen columns; the AVX-512 kernel below wastes the masked
 * lanes of a 49-column tail). A work item instead takes a block of nb
 * images of one group: their im2col side by side (K × nb·P), one GEMM into
 * a Mg × nb·P buffer, then the write-back scatters each image's P columns
 * into its NCHW plane. The images per block: enough for CONV_BATCH_COLS
 * columns, within CONV_BATCH_FLOATS of tile and output buffer (both the
 * best of a sweep on the fmnist 7x7 and 14x14 layers: 256 to 1536 columns,
 * 96K to 1M floats; larger loses to L2 misses, and a 28x28 plane is better
 * off alone), and never so many that a thread goes without a block. */
#define CONV_BATCH_COLS 768
#define CONV_BATCH_FLOATS (512 * 1024)

static int64_t batch_images(const graft__conv_geom *g, const conv_dims *d, int nt)
{
    if (!is_2d(g) || d->p >= CONV_BATCH_COLS)
        return 1;
    int64_t nb = (CONV_BATCH_COLS + d->p / 2) / d->p;
    int64_t fit = CONV_BATCH_FLOATS / ((d->kdim + d->mg) * d->p);
    nb = nb < fit ? nb : fit;
    nb = nb < g->n ? nb : g->n;
    if (nb < 2)
        return 1;
    /* Images per block: of the sizes from nb down to nb/2, the one that gives
     * the busiest thread the fewest images (the tail block costs a whole
     * one), and at least one block per thread. */
    int64_t best = 1, best_load = -1;
    for (int64_t cand = nb; cand >= 2 && 2 * cand >= nb; cand--) {
        const int64_t blocks = (g->n + cand - 1) / cand, items = blocks * g->group;
        if (items < nt)
            continue;
        const int64_t load = (items + nt - 1) / nt * cand;
        if (best_load < 0 || load < best_load) {
            best = cand;
            best_load = load;
        }
    }
    return best;
}

static graft_status batched_forward(const graft__conv_geom *g, const conv_dims *d, const float *x,
                                    const float *w, const float *bias, const float *z,
                                    const graft__act *act, float *y, graft_exec_ctx *ctx, int nt,
                                    int64_t nb)
{
    const int64_t p = d->p, blocks = (g->n + nb - 1) / nb, items = blocks * g->group;
    const int64_t per = (d->kdim + d->mg) * nb * p;
    int threads = items < nt ? (int)items : nt;
    float *buf = ctx->scratch(ctx, (size_t)(threads * per) * sizeof(float));
    if (!buf)
        return GRAFT_ERR_NOMEM;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        const int tid = thread_num();
        float *col = buf + (int64_t)tid * per, *acc = col + d->kdim * nb * p;
#pragma omp for schedule(static)
        for (int64_t it = 0; it < items; it++) {
            const int64_t gi = it % g->group, n0 = it / g->group * nb;
            const int64_t cnt = g->n - n0 < nb ? g->n - n0 : nb, ld = cnt * p;
            for (int64_t j = 0; j < cnt; j++)
                im2col_2d(g, d, x + (n0 + j) * g->c * d->ip + gi * d->cg * d->ip, col + j * p, ld,
                          0, p);
            /* without Z one bias covers a whole row, every image at once: in the
             * GEMM's write-back */
            if (z)
                tile_gemm(d->mg, ld, d->kdim, w + gi * d->mg * d->kdim, d->kdim, col, ld, acc, ld);
            else
                tile_gemm_act(d->mg, ld, d->kdim, w + gi * d->mg * d->kdim, d->kdim, col, ld, acc,
                              ld, bias ? bias + gi * d->mg : NULL, NULL, act);
            for (int64_t m = 0; m < d->mg; m++) {
                float *arow = acc + m * ld;
                const float bv = bias ? bias[gi * d->mg + m] : 0.0f;
                for (int64_t j = 0; j < cnt; j++) {
                    const int64_t off = ((n0 + j) * g->m + gi * d->mg + m) * p;
                    float *restrict yp = y + off;
                    const float *restrict ap = arow + j * p;
                    if (z)
                        graft__act_row(arow + j * p, p, bv, z + off, act);
                    for (int64_t q = 0; q < p; q++)
                        yp[q] = ap[q];
                }
            }
        }
    }
    return GRAFT_OK;
}

/* Forward for the GEMM paths. Work items are (image, group, column tile);
 * each thread builds its own im2col tile in its slice of the scratch buffer
 * and runs a single-threaded GEMM on it, then applies bias/Z/activation to
 * the tile while it is hot. No thread ever waits on another inside a layer. */
static graft_status gemm_forward(const graft__conv_geom *g, const conv_dims *d, const float *x,
                                 const float *w, const float *bias, const float *z,
                                 const graft__act *act, float *y, graft_exec_ctx *ctx, int nt)
{
    const int pointwise = is_pointwise(g);
    int64_t tile_max = CONV_TILE_FLOATS / (d->kdim > 0 ? d->kdim : 1);
    tile_max = tile_max < 128 ? 128 : tile_max / CONV_TILE_ALIGN * CONV_TILE_ALIGN;
    int64_t n_tiles = (d->p + tile_max - 1) / tile_max;
    const int64_t nb = batch_images(g, d, nt);
    if (nb > 1)
        return batched_forward(g, d, x, w, bias, z, act, y, ctx, nt, nb);
    const bool few = g->n * g->group < 2 * nt;
    if (few && nt > 1 && d->p < nt * CONV_MIN_SPLIT)
        return blas_threaded_forward(g, d, x, w, bias, z, act, y, ctx, nt);
    if (few) /* few images: balance the tiles of each one exactly */
        n_tiles = round_up(n_tiles, nt);
    int64_t width = (d->p + n_tiles - 1) / n_tiles;
    if (!few)
        width = round_up(width, CONV_TILE_ALIGN);
    if (width > d->p)
        width = d->p;
    n_tiles = (d->p + width - 1) / width;
    const int64_t items = g->n * g->group * n_tiles;
    int threads = items < nt ? (int)items : nt;
    float *col = NULL;
    if (!pointwise) {
        col = ctx->scratch(ctx, (size_t)(threads * d->kdim * width) * sizeof(float));
        if (!col)
            return GRAFT_ERR_NOMEM;
    }
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        const int tid = thread_num();
        float *mycol = col ? col + (int64_t)tid * d->kdim * width : NULL;
#pragma omp for schedule(static)
        for (int64_t it = 0; it < items; it++) {
            int64_t tile = it % n_tiles, gi = it / n_tiles % g->group, ni = it / n_tiles / g->group;
            int64_t p0 = tile * width, pw = d->p - p0 < width ? d->p - p0 : width;
            const float *xg = x + ni * g->c * d->ip + gi * d->cg * d->ip;
            float *yg = y + ni * g->m * d->p + gi * d->mg * d->p + p0;
            const float *b = xg + p0;
            int64_t ldb = d->p;
            if (!pointwise) {
                if (is_2d(g))
                    im2col_2d(g, d, xg, mycol, pw, p0, pw);
                else
                    for (int64_t r = 0; r < d->kdim; r++)
                        im2col_row_tile(g, d, xg, mycol + r * pw, r, p0, pw);
                b = mycol;
                ldb = pw;
            }
            tile_gemm_act(d->mg, pw, d->kdim, w + gi * d->mg * d->kdim, d->kdim, b, ldb, yg, d->p,
                          bias ? bias + gi * d->mg : NULL,
                          z ? z + ni * g->m * d->p + gi * d->mg * d->p + p0 : NULL, act);
        }
    }
    return GRAFT_OK;
}

graft_status graft__conv_forward(const graft__conv_geom *g, const float *x, const float *w,
                                 const float *bias, const float *z, const graft__act *act,
                                 float *y, graft_exec_ctx *ctx)
{
    const graft__act none = {GRAFT__ACT_NONE, 0.0f, 0.0f};
    if (!act)
        act = &none;
    const int nt = graft__threads(ctx);
    conv_dims d = dims_of(g);
    if (g->n == 0 || d.p == 0 || g->m == 0)
        return GRAFT_OK;
    if (is_depthwise(g))
        return depthwise_forward(g, x, w, bias, z, act, y, ctx, nt);
    return gemm_forward(g, &d, x, w, bias, z, act, y, ctx, nt);
}

/* Depthwise backward, per input channel (threads split channels, so each
 * dW row has one writer): the X plane is padded once per image as in the
 * forward, and dX is accumulated on a padded plane whose interior is then
 * added back. */
static int64_t dw_plane_floats(const graft__conv_geom *g)
{
    const int64_t ph = (g->out[1] - 1) * g->stride[1] + (g->k[1] - 1) * g->dil[1] + 1;
    const int64_t pw = (g->out[2] - 1) * g->stride[2] + (g->k[2] - 1) * g->dil[2] + 1;
    return ph * pw;
}

static void depthwise_backward(const graft__conv_geom *g, const float *x, const float *w,
                               const float *dy, float *dx, float *dw, float *work, int nt)
{
    const int64_t mult = g->m / g->c, ip = g->in[1] * g->in[2], p = g->out[1] * g->out[2];
    const int64_t oh = g->out[1], ow = g->out[2], kh = g->k[1], kw = g->k[2];
    const int64_t sy = g->stride[1], sx = g->stride[2], dly = g->dil[1], dlx = g->dil[2];
    const int64_t ph = (oh - 1) * sy + (kh - 1) * dly + 1, pw = (ow - 1) * sx + (kw - 1) * dlx + 1;
    const int64_t ih = g->in[1], iw = g->in[2], pt = g->pad[1], pl = g->pad[2];
    const int64_t plane = ph * pw;
    int threads = nt > 1 && g->c > 1 && g->n * g->m * p * kh * kw >= CONV_PAR_MIN ? nt : 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        const int tid = thread_num();
        float *px = work + (int64_t)tid * 2 * plane, *pd = px + plane;
#pragma omp for schedule(static)
        for (int64_t ci = 0; ci < g->c; ci++) {
            for (int64_t ni = 0; ni < g->n; ni++) {
                if (dw)
                    pad_plane(g, x + (ni * g->c + ci) * ip, px, ph, pw);
                if (dx)
                    memset(pd, 0, (size_t)plane * sizeof *pd);
                for (int64_t j = 0; j < mult; j++) {
                    int64_t mi = ci * mult + j;
                    const float *dyp = dy + (ni * g->m + mi) * p, *wp = w + mi * kh * kw;
                    for (int64_t ky = 0; ky < kh; ky++)
                        for (int64_t kx = 0; kx < kw; kx++) {
                            const float wv = wp[ky * kw + kx];
                            float acc = 0.0f;
                            for (int64_t oy = 0; oy < oh; oy++) {
                                const float *drow = dyp + oy * ow;
                                int64_t base = (oy * sy + ky * dly) * pw + kx * dlx;
                                if (dw)
                                    for (int64_t o = 0; o < ow; o++)
                                        acc = fmaf(drow[o], px[base + o * sx], acc);
                                if (dx)
                                    for (int64_t o = 0; o < ow; o++)
                                        pd[base + o * sx] = fmaf(wv, drow[o], pd[base + o * sx]);
                            }
                            if (dw)
                                dw[mi * kh * kw + ky * kw + kx] += acc;
                        }
                }
                if (!dx)
                    continue;
                float *dxp = dx + (ni * g->c + ci) * ip;
                for (int64_t iy = 0; iy < ih && iy + pt < ph; iy++) {
                    const float *src = pd + (iy + pt) * pw + pl;
                    int64_t n = iw < pw - pl ? iw : pw - pl;
                    for (int64_t ix = 0; ix < n; ix++)
                        dxp[iy * iw + ix] += src[ix];
                }
            }
        }
    }
}

int64_t graft__conv_backward_work_floats(const graft__conv_geom *g, int n_threads)
{
    conv_dims d = dims_of(g);
    if (is_depthwise(g))
        return (n_threads > 0 ? n_threads : 2) * 2 * dw_plane_floats(g);
    return is_pointwise(g) ? 0 : d.kdim * d.p;
}

graft_status graft__conv_backward(const graft__conv_geom *g, const float *x, const float *w,
                                  const float *dy, float *dx, float *dw, float *db,
                                  graft_exec_ctx *ctx)
{
    int64_t n = graft__conv_backward_work_floats(g, graft__threads(ctx));
    float *work = NULL;
    if (n > 0 && (dx || dw)) {
        work = ctx->scratch(ctx, (size_t)n * sizeof(float));
        if (!work)
            return GRAFT_ERR_NOMEM;
    }
    graft__conv_backward_ws(g, x, w, dy, dx, dw, db, work, graft__threads(ctx));
    return GRAFT_OK;
}

void graft__conv_backward_ws(const graft__conv_geom *g, const float *x, const float *w,
                             const float *dy, float *dx, float *dw, float *db, float *col,
                             int n_threads)
{
    const int nt = n_threads > 0 ? n_threads : 2;
    conv_dims d = dims_of(g);
    if (db) {
        for (int64_t ni = 0; ni < g->n; ni++)
            for (int64_t mi = 0; mi < g->m; mi++) {
                const float *r = dy + (ni * g->m + mi) * d.p;
                double s = 0.0;
                for (int64_t i = 0; i < d.p; i++)
                    s += r[i];
                db[mi] += (float)s;
            }
    }
    if (!dx && !dw)
        return;
    if (is_depthwise(g)) {
        depthwise_backward(g, x, w, dy, dx, dw, col, nt);
        return;
    }
    const int pointwise = is_pointwise(g);
    for (int64_t ni = 0; ni < g->n; ni++) {
        for (int64_t gi = 0; gi < g->group; gi++) {
            const float *xg = x + ni * g->c * d.ip + gi * d.cg * d.ip;
            const float *dyg = dy + ni * g->m * d.p + gi * d.mg * d.p;
            const float *wg = w + gi * d.mg * d.kdim;
            if (dw) {
                const float *b = xg;
                if (!pointwise) {
                    im2col(g, &d, xg, col, nt);
                    b = col;
                }
                /* dW_g (Mg×K) += dY_g (Mg×P) · colᵀ (P×K) */
                graft__sgemm(d.mg, d.kdim, d.p, 1.0f, dyg, d.p, 1, b, 1, d.p, 1.0f,
                             dw + gi * d.mg * d.kdim, d.kdim, 1, nt);
            }
            if (dx) {
                float *dxg = dx + ni * g->c * d.ip + gi * d.cg * d.ip;
                /* dcol (K×P) = W_gᵀ (K×Mg) · dY_g (Mg×P) */
                if (pointwise) {
                    graft__sgemm(d.kdim, d.p, d.mg, 1.0f, wg, 1, d.kdim, dyg, d.p, 1, 1.0f, dxg,
                                 d.p, 1, nt);
                } else {
                    graft__sgemm(d.kdim, d.p, d.mg, 1.0f, wg, 1, d.kdim, dyg, d.p, 1, 0.0f, col,
                                 d.p, 1, nt);
                    col2im_add(g, &d, col, dxg, nt);
                }
            }
        }
    }
}
