/* tests/kernels/bench_model.c - forward images/s of a whole model through the
 * public API (import, plan, repeated runs). Not a test; build by hand:
 *   cc -O2 -fopenmp -I include tests/kernels/bench_model.c build-kernels/libgraft.a \
 *      build-kernels/proto/libgraft_onnx_proto.a -lprotobuf-c -ljson-c -lpng -ljpeg -lz \
 *      -L/usr/lib/x86_64-linux-gnu/blis-openmp -lblis -lm
 * Usage: bench_model MODEL.onnx BATCH C H W [threads] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "graft/graft.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: bench_model MODEL BATCH C H W [threads]\n");
        return 2;
    }
    graft_error err = {0};
    graft_graph *g = NULL;
    if (graft_onnx_import_file(argv[1], NULL, &g, &err) != GRAFT_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    graft_shape s = {4, {atoll(argv[2]), atoll(argv[3]), atoll(argv[4]), atoll(argv[5])}};
    graft_plan_options o = graft_plan_options_default();
    o.n_threads = argc > 6 ? atoi(argv[6]) : 2;
    graft_plan *p = NULL;
    if (graft_plan_create(g, &o, 1, &s, &p, &err) != GRAFT_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    graft_tensor *x = NULL;
    graft_tensor_create(GRAFT_FLOAT, 4, s.dims, &x, &err);
    for (int64_t i = 0; i < graft_tensor_nelem(x); i++)
        graft_tensor_f32(x)[i] = (float)(i % 255) / 255.0f;
    const graft_tensor *in[1] = {x};
    graft_plan_run(p, in, &err);
    double best = 1e30;
    for (int rep = 0; rep < 10; rep++) {
        double t0 = now();
        if (graft_plan_run(p, in, &err) != GRAFT_OK) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double t = now() - t0;
        best = t < best ? t : best;
    }
    printf("%s batch %lld, %d threads: %.2f ms/run, %.1f images/s\n", argv[1], (long long)s.dims[0],
           o.n_threads, best * 1e3, (double)s.dims[0] / best);
    graft_tensor_destroy(x);
    graft_plan_destroy(p);
    graft_graph_destroy(g);
    return 0;
}
