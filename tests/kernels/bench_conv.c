/* tests/kernels/bench_conv.c - GFLOP/s of the convolution and GEMM kernels on
 * ResNet/MobileNet layer shapes. Not a test (not registered); build by hand:
 *   cc -O2 -fopenmp -I include -I src tests/kernels/bench_conv.c \
 *      build-kernels/libgraft.a -L/usr/lib/x86_64-linux-gnu/blis-openmp -lblis -lm
 * Usage: bench_conv [batch] [threads] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/conv.h"
#include "kernels/gemm.h"
#include "kernels/pool.h"

static void *scratch_buf;
static size_t scratch_size;

static void *bench_scratch(graft_exec_ctx *ctx, size_t nbytes)
{
    (void)ctx;
    if (nbytes > scratch_size) {
        free(scratch_buf);
        scratch_size = (nbytes + 63) / 64 * 64;
        scratch_buf = aligned_alloc(64, scratch_size);
    }
    return scratch_buf;
}

/* GRAFT_BENCH_CPU=1: process CPU time instead of wall time, a steadier
 * figure on a machine shared with other jobs (1 thread only). */
static double now(void)
{
    struct timespec t;
    static int cpu = -1;
    if (cpu < 0)
        cpu = getenv("GRAFT_BENCH_CPU") != NULL;
    clock_gettime(cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct layer {
    const char *name;
    int64_t c, m, group, hw, k, s, p;
    int act;
} layer;

int main(int argc, char **argv)
{
    int64_t batch = argc > 1 ? atoi(argv[1]) : 1;
    int nt = argc > 2 ? atoi(argv[2]) : 2;
    graft_exec_ctx ctx = {.n_threads = nt, .scratch = bench_scratch};
    static const layer layers[] = {
        {"resnet conv1 7x7/2 3->64 224", 3, 64, 1, 224, 7, 2, 3, 1},
        {"3x3 64->64 56", 64, 64, 1, 56, 3, 1, 1, 1},
        {"3x3/2 64->128 56", 64, 128, 1, 56, 3, 2, 1, 1},
        {"3x3 128->128 28", 128, 128, 1, 28, 3, 1, 1, 1},
        {"3x3 256->256 14", 256, 256, 1, 14, 3, 1, 1, 1},
        {"3x3 512->512 7", 512, 512, 1, 7, 3, 1, 1, 1},
        {"1x1/2 64->128 56", 64, 128, 1, 56, 1, 2, 0, 0},
        {"1x1 64->256 56", 64, 256, 1, 56, 1, 1, 0, 1},
        {"1x1 256->64 56", 256, 64, 1, 56, 1, 1, 0, 1},
        {"1x1 512->2048 7", 512, 2048, 1, 7, 1, 1, 0, 1},
        {"dw 3x3 32 112", 32, 32, 32, 112, 3, 1, 1, 2},
        {"dw 3x3/2 144 56", 144, 144, 144, 56, 3, 2, 1, 2},
        {"dw 3x3 960 7", 960, 960, 960, 7, 3, 1, 1, 2},
    };
    printf("batch %lld, %d threads\n", (long long)batch, nt);
    for (size_t li = 0; li < sizeof layers / sizeof layers[0]; li++) {
        const layer *L = &layers[li];
        graft__conv_geom g = {.n = batch, .c = L->c, .m = L->m, .group = L->group};
        int64_t o = (L->hw + 2 * L->p - L->k) / L->s + 1;
        for (int i = 0; i < 3; i++) {
            int sp = i > 0;
            g.in[i] = sp ? L->hw : 1;
            g.out[i] = sp ? o : 1;
            g.k[i] = sp ? L->k : 1;
            g.stride[i] = sp ? L->s : 1;
            g.dil[i] = 1;
            g.pad[i] = sp ? L->p : 0;
        }
        size_t nx = (size_t)(batch * L->c * L->hw * L->hw), ny = (size_t)(batch * L->m * o * o);
        size_t nw = (size_t)(L->m * (L->c / L->group) * L->k * L->k);
        float *x = malloc(nx * 4), *w = malloc(nw * 4), *y = malloc(ny * 4), *b = malloc((size_t)L->m * 4);
        for (size_t i = 0; i < nx; i++)
            x[i] = (float)(i % 13) * 0.1f - 0.6f;
        for (size_t i = 0; i < nw; i++)
            w[i] = (float)(i % 7) * 0.01f - 0.03f;
        for (int64_t i = 0; i < L->m; i++)
            b[i] = 0.1f;
        graft__act act = {L->act == 2 ? GRAFT__ACT_CLIP : (L->act ? GRAFT__ACT_RELU : GRAFT__ACT_NONE), 0.0f, 6.0f};
        double flops = 2.0 * (double)ny * (double)(L->c / L->group) * (double)(L->k * L->k);
        graft__conv_forward(&g, x, w, b, NULL, &act, y, &ctx);
        double best = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now();
            int it = 0;
            do {
                graft__conv_forward(&g, x, w, b, NULL, &act, y, &ctx);
                it++;
            } while (now() - t0 < 0.15);
            double t = (now() - t0) / it;
            best = t < best ? t : best;
        }
        printf("%-30s %8.3f ms %7.1f GFLOP/s\n", L->name, best * 1e3, flops / best * 1e-9);
        free(x), free(w), free(y), free(b);
    }
    /* the classifier GEMM: (batch × 512) · (512 × 1000)ᵀ */
    {
        int64_t m = batch, k = 512, n = 1000;
        float *a = calloc((size_t)(m * k), 4), *bw = calloc((size_t)(k * n), 4), *c = calloc((size_t)(m * n), 4);
        double best = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now();
            int it = 0;
            do {
                graft__sgemm_rm(false, true, m, n, k, 1.0f, a, k, bw, k, 0.0f, c, n, nt);
                it++;
            } while (now() - t0 < 0.1);
            double t = (now() - t0) / it;
            best = t < best ? t : best;
        }
        printf("%-30s %8.3f ms %7.1f GFLOP/s\n", "gemm fc 512->1000", best * 1e3, 2.0 * m * n * k / best * 1e-9);
        free(a), free(bw), free(c);
    }
    /* ResNet stem max pool 3x3/2 pad 1, 64×112×112 */
    {
        graft__pool_geom pg = {.planes = batch * 64, .in = {1, 112, 112}, .out = {1, 56, 56},
                               .k = {1, 3, 3}, .stride = {1, 2, 2}, .dil = {1, 1, 1},
                               .pad = {0, 1, 1}, .pad_end = {0, 1, 1}};
        size_t nx = (size_t)(batch * 64 * 112 * 112);
        float *x = calloc(nx, 4), *y = calloc(nx / 4, 4);
        float *work = malloc((size_t)graft__pool_work_floats(&pg, nt) * 4);
        double best = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now();
            int it = 0;
            do {
                graft__maxpool_forward(&pg, x, y, NULL, work, nt);
                it++;
            } while (now() - t0 < 0.1);
            double t = (now() - t0) / it;
            best = t < best ? t : best;
        }
        printf("%-30s %8.3f ms %7.2f GB/s read\n", "maxpool 3x3/2 64x112", best * 1e3,
               (double)nx * 4 / best * 1e-9);
        free(x), free(y), free(work);
    }
    /* backward of the last ResNet18 block conv (dX and dW) */
    {
        graft__conv_geom g = {.n = batch, .c = 512, .m = 512, .group = 1, .in = {1, 7, 7},
                              .out = {1, 7, 7}, .k = {1, 3, 3}, .stride = {1, 1, 1},
                              .dil = {1, 1, 1}, .pad = {0, 1, 1}};
        size_t nx = (size_t)(batch * 512 * 49), nw = 512 * 512 * 9;
        float *x = calloc(nx, 4), *dy = calloc(nx, 4), *dx = calloc(nx, 4), *w = calloc(nw, 4),
              *dw = calloc(nw, 4), *db = calloc(512, 4);
        double best = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = now();
            int it = 0;
            do {
                graft__conv_backward(&g, x, w, dy, dx, dw, db, &ctx);
                it++;
            } while (now() - t0 < 0.2);
            double t = (now() - t0) / it;
            best = t < best ? t : best;
        }
        double flops = 2 * 2.0 * (double)nx * 512 * 9;
        printf("%-30s %8.3f ms %7.1f GFLOP/s\n", "conv bwd 3x3 512 7 (dX+dW)", best * 1e3,
               flops / best * 1e-9);
        free(x), free(dy), free(dx), free(w), free(dw), free(db);
    }
    free(scratch_buf);
    return 0;
}
