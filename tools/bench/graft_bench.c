/* tools/bench/graft_bench.c - how fast graft runs a backbone forward and
 * trains a head. Not a test: it prints figures.
 *
 *   graft_bench [--threads N] [--seconds S] [--no-train] [--profile] [MODEL.onnx ...]
 *
 * For the default backbone (models/fmnist_cnn.onnx) and every MODEL given:
 * forward images/s at batch 32 and batch 1, on the clone that training and
 * `graft run` execute (BatchNormalization folded, Conv+activation fused).
 * Then, on the default backbone: the time of one head-training epoch on
 * Fashion-MNIST classes 5-9, 100 images per class, with cached features and
 * with augmentation (backbone recomputed every batch). --profile: where a
 * batch-32 forward spends its time, by op type and by node (the slowest 8).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h" /* cli_default_model, shared with the graft program */
#include "exec/plan_internal.h" /* per-node forward times */

#define FMNIST "/usr/share/datasets/fashion-mnist"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Concrete input shapes at this batch: symbolic batch -> batch, other
 * unknown dims (dynamic image sizes) -> 224. */
static int input_shapes(const graft_graph *g, int64_t batch, graft_shape *s)
{
    for (int32_t i = 0; i < g->n_inputs; i++) {
        const graft_value *v = &g->values[g->inputs[i]];
        s[i].rank = v->rank < 0 ? 0 : v->rank;
        for (int d = 0; d < s[i].rank; d++)
            s[i].dims[d] = v->dims[d] >= 0 ? v->dims[d] : d == 0 ? batch : 224;
        if (s[i].rank > 0 && v->dims[0] >= 0 && v->dims[0] != batch)
            return -1; /* batch fixed in the file */
    }
    return 0;
}

/* Per-node forward times of p over `iters` runs, by op type and the slowest nodes. */
static void print_profile(const graft_plan *p, int iters)
{
    enum { MAX_TYPES = 64, TOP = 8 };
    const char *types[MAX_TYPES];
    double per_type[MAX_TYPES] = {0}, total = 0;
    int n_types = 0, top[TOP], n_top = 0;
    double top_s[TOP];
    const char *op, *name;
    bool runs;
    double sec;
    for (int i = 0; graft__plan_node_profile(p, i, &op, &name, &runs, &sec); i++) {
        if (!runs)
            continue;
        total += sec;
        int t = 0;
        while (t < n_types && strcmp(types[t], op) != 0)
            t++;
        if (t == n_types && n_types < MAX_TYPES)
            types[n_types++] = op;
        if (t < n_types)
            per_type[t] += sec;
        int k = n_top < TOP ? n_top++ : TOP - 1;
        if (k == TOP - 1 && n_top == TOP && sec <= top_s[k])
            continue;
        while (k > 0 && top_s[k - 1] < sec) {
            top[k] = top[k - 1];
            top_s[k] = top_s[k - 1];
            k--;
        }
        top[k] = i;
        top_s[k] = sec;
    }
    printf("    profile, ms per batch (%.2f in nodes):\n", 1e3 * total / iters);
    for (int t = 0; t < n_types; t++)
        if (per_type[t] >= 0.01 * total)
            printf("      %-22s %8.2f  %5.1f%%\n", types[t], 1e3 * per_type[t] / iters,
                   100 * per_type[t] / total);
    for (int k = 0; k < n_top; k++) {
        graft__plan_node_profile(p, top[k], &op, &name, NULL, NULL);
        printf("      node %-40.40s %-12s %7.2f\n", name && *name ? name : "(unnamed)", op,
               1e3 * top_s[k] / iters);
    }
}

/* Runs the plan for about `seconds`; returns images/s or a negative value. */
static double bench_forward(const graft_graph *g, int64_t batch, int threads, double seconds,
                            bool profile, graft_error *err)
{
    graft_shape shapes[16];
    graft_tensor *in[16] = {0};
    graft_plan *p = NULL;
    double ips = -1;
    if (g->n_inputs < 1 || g->n_inputs > 16 || input_shapes(g, batch, shapes) != 0)
        return -2;
    graft_plan_options po = graft_plan_options_default();
    po.n_threads = threads;
    if (graft_plan_create(g, &po, g->n_inputs, shapes, &p, err) != GRAFT_OK)
        goto done;
    for (int32_t i = 0; i < g->n_inputs; i++) {
        if (graft_tensor_create(GRAFT_FLOAT, shapes[i].rank, shapes[i].dims, &in[i], err) !=
            GRAFT_OK)
            goto done;
        float *x = graft_tensor_f32(in[i]);
        int64_t n = graft_tensor_nelem(in[i]);
        uint32_t s = 12345;
        for (int64_t k = 0; k < n; k++) {
            s = s * 1664525u + 1013904223u;
            x[k] = (float)(s >> 8) / 16777216.0f;
        }
    }
    for (int w = 0; w < 2; w++)
        if (graft_plan_run(p, (const graft_tensor *const *)in, err) != GRAFT_OK)
            goto done;
    if (profile && graft__plan_set_profiling(p, true, err) != GRAFT_OK)
        goto done;
    int iters = 0;
    double t0 = now(), t;
    do {
        if (graft_plan_run(p, (const graft_tensor *const *)in, err) != GRAFT_OK)
            goto done;
        iters++;
        t = now() - t0;
    } while (t < seconds || iters < 3);
    ips = (double)batch * iters / t;
    if (profile)
        print_profile(p, iters);
done:
    for (int i = 0; i < 16; i++)
        graft_tensor_destroy(in[i]);
    graft_plan_destroy(p);
    return ips;
}

static int bench_model(const char *path, int threads, double seconds, bool profile)
{
    graft_error err = {0};
    graft_graph *g = NULL;
    int n_rewrites = 0;
    double t0 = now();
    if (graft_onnx_import_file(path, NULL, &g, &err) != GRAFT_OK) {
        fprintf(stderr, "graft_bench: %s\n", err.msg);
        return 1;
    }
    double t_import = now() - t0;
    int64_t n_params = graft_graph_param_count(g, false);
    if (graft_passes_optimize_for_inference(g, &n_rewrites, &err) != GRAFT_OK) {
        fprintf(stderr, "graft_bench: %s\n", err.msg);
        graft_graph_destroy(g);
        return 1;
    }
    printf("%s\n", path);
    printf("  import %.1f ms, %lld parameters, %d rewrites (BN folding, Conv fusion)\n",
           1e3 * t_import, (long long)n_params, n_rewrites);
    int rc = 0;
    const int64_t batches[] = {32, 1};
    for (int b = 0; b < 2; b++) {
        double ips = bench_forward(g, batches[b], threads, seconds, profile && b == 0, &err);
        if (ips == -2)
            printf("  forward batch %-3lld  (batch fixed in the file: skipped)\n",
                   (long long)batches[b]);
        else if (ips < 0) {
            printf("  forward batch %-3lld  failed: %s\n", (long long)batches[b], err.msg);
            rc = 1;
        } else
            printf("  forward batch %-3lld  %10.1f images/s  (%.3f ms per batch)\n",
                   (long long)batches[b], ips, 1e3 * (double)batches[b] / ips);
    }
    graft_graph_destroy(g);
    return rc;
}

typedef struct epoch_times {
    double sum;
    int n;
} epoch_times;

static void on_epoch(void *user, const graft_epoch_report *r)
{
    epoch_times *et = user;
    et->sum += r->seconds;
    et->n++;
}

static int bench_train(const char *model, int threads)
{
    graft_error err = {0};
    graft_graph *g = NULL;
    graft_dataset *all = NULL, *ds = NULL;
    int rc = 1;
    const int classes[] = {5, 6, 7, 8, 9};
    if (graft_data_load_idx(FMNIST "/train-images-idx3-ubyte.gz",
                            FMNIST "/train-labels-idx1-ubyte.gz", &all, &err) != GRAFT_OK ||
        graft_data_select(all, classes, 5, 100, 42, &ds, &err) != GRAFT_OK)
        goto fail;
    graft_preprocess pp = graft_preprocess_default();
    /* models/fmnist_cnn.json's normalisation. */
    for (int c = 0; c < 3; c++) {
        pp.mean[c] = 0.313887f;
        pp.std[c] = 0.362561f;
    }
    printf("head training on %s: Fashion-MNIST classes 5-9, %lld images\n", model,
           (long long)ds->n);
    for (int aug = 0; aug < 2; aug++) {
        graft_graph_destroy(g);
        g = NULL;
        if (graft_onnx_import_file(model, NULL, &g, &err) != GRAFT_OK)
            goto fail;
        graft_feature_info fi;
        graft_head_spec hs = graft_head_spec_default();
        graft_head_info hi;
        hs.n_classes = 5;
        if (graft_surgery_find_features(g, &fi, &err) != GRAFT_OK ||
            graft_surgery_cut_and_attach(g, fi.value, &hs, &hi, &err) != GRAFT_OK ||
            graft_surgery_freeze(g, &hi, &err) != GRAFT_OK)
            goto fail;
        graft_train_config tc = graft_train_config_default();
        tc.epochs = aug ? 3 : 50;
        tc.val_split = 0;
        tc.patience = 0;
        tc.n_threads = threads;
        if (aug) {
            tc.augment.flip_prob = 0.5f;
            tc.augment.rotation = 0.1f;
            tc.augment.zoom = 0.1f;
        }
        epoch_times et = {0, 0};
        tc.on_epoch = on_epoch;
        tc.user = &et;
        graft_train_result tr;
        double t0 = now();
        if (graft_train_fit(g, &hi, ds, &pp, &tc, &tr, &err) != GRAFT_OK)
            goto fail;
        double total = now() - t0;
        if (!aug) {
            printf("  cached features: backbone once %.3f s (%.0f images/s), then %.2f ms per "
                   "epoch (%d epochs, %.3f s in all)\n",
                   tr.feature_seconds, (double)ds->n / fmax(tr.feature_seconds, 1e-9),
                   1e3 * (total - tr.feature_seconds) / tr.epochs_run, tr.epochs_run, total);
        } else {
            printf("  augmented (backbone every batch): %.3f s per epoch (%d epochs, %.3f s)\n",
                   total / tr.epochs_run, tr.epochs_run, total);
        }
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "graft_bench: %s\n", err.msg);
done:
    graft_graph_destroy(g);
    graft_dataset_destroy(ds);
    graft_dataset_destroy(all);
    return rc;
}

int main(int argc, char **argv)
{
    int threads = 2;
    double seconds = 2.0;
    bool train = true, profile = false;
    const char *models[64];
    int n_models = 0;
    char buf[4096];
    models[n_models++] = cli_default_model(buf, sizeof(buf));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "--no-train") == 0) {
            train = false;
        } else if (strcmp(argv[i], "--profile") == 0) {
            profile = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: graft_bench [--threads N] [--seconds S] [--no-train] [--profile] "
                   "[MODEL.onnx ...]\n"
                   "Forward images/s (batch 32 and 1) of the default backbone and each MODEL,\n"
                   "and head-training epoch time on the default backbone. --profile: time by op\n"
                   "type and the slowest nodes of a batch-32 forward.\n");
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "graft_bench: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (n_models < 64) {
            models[n_models++] = argv[i];
        }
    }
    if (threads < 1 || seconds <= 0) {
        fprintf(stderr, "graft_bench: --threads and --seconds must be positive\n");
        return 2;
    }
    printf("graft %s, %d threads\n", GRAFT_VERSION_STRING, threads);
    int rc = 0;
    for (int i = 0; i < n_models; i++)
        rc |= bench_model(models[i], threads, seconds, profile);
    if (train)
        rc |= bench_train(models[0], threads);
    return rc;
}
