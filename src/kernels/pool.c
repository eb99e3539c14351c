/* kernels/pool.c - pooling: for each output position the window is clipped
 * to the input once per axis (graft__valid_range), so the inner loops carry
 * no bounds tests. Planes are independent and split across threads. */
#include "kernels/pool.h"

#include <math.h>

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

void graft__maxpool_forward(const graft__pool_geom *g, const float *x, float *y, int64_t *idx,
                            int nt)
{
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

void graft__avgpool_forward(const graft__pool_geom *g, const float *x, float *y, int nt)
{
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
