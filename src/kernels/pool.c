/* kernels/pool.c - pooling: for each output position the window is clipped
 * to the input once per axis (graft__valid_range), so the inner loops carry
 * no bounds tests. Planes are independent and split across threads. */
#include "kernels/pool.h"

#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/conv.h"

#define POOL_PAR_MIN 16384

typedef struct win {
    int64_t lo[3], hi[3], start[3];
} win;

static void window_at(const graft__pool_geom *g, int64_t oz, int64_t oy, int64_t ox, win *w)
{
    int64_t o[3] = {oz, oy, ox};
    for (int a = 0; a < 3; a++) {
        w->start[a] = o[a] * g->stride[a] - g->pad[a];
        graft__valid_range(w->start[a], g->dil[a], g->in[a], g->k[a], &w->lo[a], &w->hi[a]);
    }
}

static int64_t avg_divisor(const graft__pool_geom *g, const win *w)
{
    int64_t n = 1;
    for (int a = 0; a < 3; a++) {
        int64_t lo, hi;
        if (g->count_include_pad)
            graft__valid_range(w->start[a] + g->pad[a], g->dil[a],
                               g->in[a] + g->pad[a] + g->pad_end[a], g->k[a], &lo, &hi);
        else
            lo = w->lo[a], hi = w->hi[a];
        n *= hi - lo;
    }
    return n;
}

#define FOR_OUTPUTS(g)                                                                             \
    for (int64_t oz = 0; oz < (g)->out[0]; oz++)                                                   \
        for (int64_t oy = 0; oy < (g)->out[1]; oy++)                                               \
            for (int64_t ox = 0; ox < (g)->out[2]; ox++)

#define FOR_WINDOW(g, w)                                                                           \
    for (int64_t kz = (w).lo[0]; kz < (w).hi[0]; kz++)                                             \
        for (int64_t ky = (w).lo[1]; ky < (w).hi[1]; ky++)                                         \
            for (int64_t kx = (w).lo[2]; kx < (w).hi[2]; kx++)

#define WIN_INDEX(g, w)                                                                            \
    ((((w).start[0] + kz * (g)->dil[0]) * (g)->in[1] + (w).start[1] + ky * (g)->dil[1]) *          \
         (g)->in[2] +                                                                              \
     (w).start[2] + kx * (g)->dil[2])

static int64_t plane_in(const graft__pool_geom *g)
{
    return g->in[0] * g->in[1] * g->in[2];
}

static int64_t plane_out(const graft__pool_geom *g)
{
    return g->out[0] * g->out[1] * g->out[2];
}


/* 2-D fast path: each plane is copied once into a buffer holding exactly the
 * window extent, padded with fill (-inf for max, 0 for average), so the
 * window loops carry no bounds tests. The average divisor is separable:
 * count(oy, ox) = rows(oy) · cols(ox). Returns false when not applicable. */
static bool is_2d(const graft__pool_geom *g)
{
    return g->in[0] == 1 && g->k[0] == 1 && g->out[0] == 1 && g->pad[0] == 0;
}

static void fill_padded(const graft__pool_geom *g, const float *xp, float *pp, int64_t ph,
                        int64_t pw, float fill)
{
    const int64_t ih = g->in[1], iw = g->in[2], pt = g->pad[1], pl = g->pad[2];
    int64_t lo = pl < pw ? pl : pw, hi = pl + iw < pw ? pl + iw : pw;
    for (int64_t py = 0; py < ph; py++) {
        int64_t iy = py - pt;
        float *row = pp + py * pw;
        if (iy < 0 || iy >= ih) {
            for (int64_t px = 0; px < pw; px++)
                row[px] = fill;
            continue;
        }
        for (int64_t px = 0; px < lo; px++)
            row[px] = fill;
        if (hi > lo)
            memcpy(row + lo, xp + iy * iw + (lo - pl), (size_t)(hi - lo) * sizeof *row);
        for (int64_t px = hi > lo ? hi : lo; px < pw; px++)
            row[px] = fill;
    }
}

/* Elements of axis a covered by window o: in the input, or with
 * count_include_pad in the padded input. */
static int64_t axis_count(const graft__pool_geom *g, int a, int64_t o)
{
    int64_t start = o * g->stride[a] - g->pad[a], lo, hi;
    if (g->count_include_pad)
        graft__valid_range(start + g->pad[a], g->dil[a], g->in[a] + g->pad[a] + g->pad_end[a],
                           g->k[a], &lo, &hi);
    else
        graft__valid_range(start, g->dil[a], g->in[a], g->k[a], &lo, &hi);
    return hi - lo;
}

/* Not fmaxf: its NaN rules keep it from vectorising; NaN inputs are not a
 * concern of max pooling's contract here. */
static inline float max2(float a, float b)
{
    return a > b ? a : b;
}

static int pool_threads(const graft__pool_geom *g, int nt)
{
    return nt > 1 && g->planes * g->out[0] * g->out[1] * g->out[2] >= POOL_PAR_MIN ? nt : 1;
}

int64_t graft__pool_work_floats(const graft__pool_geom *g, int nt)
{
    if (!is_2d(g))
        return 0;
    const int64_t ph = (g->out[1] - 1) * g->stride[1] + (g->k[1] - 1) * g->dil[1] + 1;
    const int64_t pw = (g->out[2] - 1) * g->stride[2] + (g->k[2] - 1) * g->dil[2] + 1;
    return g->out[1] + g->out[2] + pool_threads(g, nt) * ph * pw;
}

static bool pool2d_fast(const graft__pool_geom *g, const float *x, float *y, bool max,
                        float *work, int nt)
{
    if (!is_2d(g) || !work)
        return false;
    const int64_t oh = g->out[1], ow = g->out[2], kh = g->k[1], kw = g->k[2];
    const int64_t sy = g->stride[1], sx = g->stride[2], dy = g->dil[1], dx = g->dil[2];
    const int64_t ph = (oh - 1) * sy + (kh - 1) * dy + 1, pw = (ow - 1) * sx + (kw - 1) * dx + 1;
    const int64_t ip = g->in[1] * g->in[2], op = oh * ow;
    float *rows_cols = work;
    if (!max) {
        for (int64_t o = 0; o < oh; o++)
            rows_cols[o] = (float)axis_count(g, 1, o);
        for (int64_t o = 0; o < ow; o++) {
            float cnt = (float)axis_count(g, 2, o);
            rows_cols[oh + o] = cnt;
        }
    }
    const bool in_place = g->pad[1] == 0 && g->pad[2] == 0 && ph <= g->in[1] && pw <= g->in[2];
    int threads = pool_threads(g, nt);
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *pp = work + oh + ow + (int64_t)tid * ph * pw;
#pragma omp for schedule(static)
        for (int64_t p = 0; p < g->planes; p++) {
            /* Without padding the windows lie inside the plane itself: read
             * it in place (row stride iw) rather than copy it. */
            const float *src = x + p * ip;
            int64_t ld = g->in[2];
            if (!in_place) {
                fill_padded(g, src, pp, ph, pw, max ? -INFINITY : 0.0f);
                src = pp;
                ld = pw;
            }
            float *yp = y + p * op;
            for (int64_t oy = 0; oy < oh; oy++) {
                float *restrict yrow = yp + oy * ow;
                const float *r0 = src + oy * sy * ld;
                if (max && kw == 2 && kh == 2 && sx == 2 && dx == 1) { /* 2x2/2: both rows */
                    const float *r1 = r0 + dy * ld;
                    for (int64_t o = 0; o < ow; o++)
                        yrow[o] = max2(max2(r0[2 * o], r0[2 * o + 1]),
                                       max2(r1[2 * o], r1[2 * o + 1]));
                    continue;
                }
                if (max && kw == 3 && sx == 2 && dx == 1) {
                    for (int64_t o = 0; o < ow; o++)
                        yrow[o] = max2(max2(r0[2 * o], r0[2 * o + 1]), r0[2 * o + 2]);
                } else if (max && kw == 2 && sx == 2 && dx == 1) {
                    for (int64_t o = 0; o < ow; o++)
                        yrow[o] = max2(r0[2 * o], r0[2 * o + 1]);
                } else {
                    for (int64_t o = 0; o < ow; o++) {
                        float m = max ? -INFINITY : 0.0f;
                        for (int64_t kx = 0; kx < kw; kx++) {
                            float v = r0[o * sx + kx * dx];
                            m = max ? (v > m ? v : m) : m + v;
                        }
                        yrow[o] = m;
                    }
                }
                for (int64_t ky = 1; ky < kh; ky++) {
                    const float *r = r0 + ky * dy * ld;
                    if (max && kw == 3 && sx == 2 && dx == 1) {
                        for (int64_t o = 0; o < ow; o++)
                            yrow[o] = max2(yrow[o], max2(max2(r[2 * o], r[2 * o + 1]), r[2 * o + 2]));
                        continue;
                    }
                    for (int64_t o = 0; o < ow; o++) {
                        float m = yrow[o];
                        for (int64_t kx = 0; kx < kw; kx++) {
                            float v = r[o * sx + kx * dx];
                            m = max ? (v > m ? v : m) : m + v;
                        }
                        yrow[o] = m;
                    }
                }
                if (!max) {
                    const float ry = rows_cols[oy];
                    for (int64_t o = 0; o < ow; o++) {
                        float dv = ry * rows_cols[oh + o];
                        yrow[o] = dv > 0.0f ? yrow[o] / dv : 0.0f;
                    }
                }
            }
        }
    }
    return true;
}

void graft__maxpool_forward(const graft__pool_geom *g, const float *x, float *y, int64_t *idx,
                            float *work, int nt)
{
    if (!idx && pool2d_fast(g, x, y, true, work, nt))
        return;
    const int64_t ip = plane_in(g), op = plane_out(g);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && g->planes * op >= POOL_PAR_MIN)
    for (int64_t p = 0; p < g->planes; p++) {
        const float *xp = x + p * ip;
        int64_t o = p * op;
        FOR_OUTPUTS(g)
        {
            win w;
            window_at(g, oz, oy, ox, &w);
            float best = -INFINITY;
            int64_t bi = -1;
            FOR_WINDOW(g, w)
            {
                int64_t i = WIN_INDEX(g, w);
                if (xp[i] > best || bi < 0) {
                    best = xp[i];
                    bi = i;
                }
            }
            y[o] = best;
            if (idx)
                idx[o] = bi < 0 ? -1 : p * ip + bi;
            o++;
        }
    }
}

void graft__maxpool_backward(const graft__pool_geom *g, const float *x, const float *dy,
                             float *dx, int nt)
{
    const int64_t ip = plane_in(g), op = plane_out(g);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && g->planes * op >= POOL_PAR_MIN)
    for (int64_t p = 0; p < g->planes; p++) {
        const float *xp = x + p * ip;
        float *dxp = dx + p * ip;
        int64_t o = p * op;
        FOR_OUTPUTS(g)
        {
            win w;
            window_at(g, oz, oy, ox, &w);
            float best = -INFINITY;
            int64_t bi = -1;
            FOR_WINDOW(g, w)
            {
                int64_t i = WIN_INDEX(g, w);
                if (xp[i] > best || bi < 0) {
                    best = xp[i];
                    bi = i;
                }
            }
            if (bi >= 0)
                dxp[bi] += dy[o];
            o++;
        }
    }
}

void graft__avgpool_forward(const graft__pool_geom *g, const float *x, float *y, float *work,
                            int nt)
{
    if (pool2d_fast(g, x, y, false, work, nt))
        return;
    const int64_t ip = plane_in(g), op = plane_out(g);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && g->planes * op >= POOL_PAR_MIN)
    for (int64_t p = 0; p < g->planes; p++) {
        const float *xp = x + p * ip;
        int64_t o = p * op;
        FOR_OUTPUTS(g)
        {
            win w;
            window_at(g, oz, oy, ox, &w);
            float s = 0.0f;
            FOR_WINDOW(g, w)
            s += xp[WIN_INDEX(g, w)];
            int64_t dv = avg_divisor(g, &w);
            y[o++] = dv > 0 ? s / (float)dv : 0.0f;
        }
    }
}

void graft__avgpool_backward(const graft__pool_geom *g, const float *dy, float *dx, int nt)
{
    const int64_t ip = plane_in(g), op = plane_out(g);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && g->planes * op >= POOL_PAR_MIN)
    for (int64_t p = 0; p < g->planes; p++) {
        float *dxp = dx + p * ip;
        int64_t o = p * op;
        FOR_OUTPUTS(g)
        {
            win w;
            window_at(g, oz, oy, ox, &w);
            int64_t dv = avg_divisor(g, &w);
            float v = dv > 0 ? dy[o] / (float)dv : 0.0f;
            FOR_WINDOW(g, w)
            dxp[WIN_INDEX(g, w)] += v;
            o++;
        }
    }
}
