/* Every real model in $GRAFT_SHARED_DIR/models: import, run each
 * test_data_set_K and compare with ONNX Runtime's output_N.pb within the
 * tolerance of models/README.md (1e-4 relative to max|ref| for float32,
 * 1e-3 for float16 outputs). Skipped (77) when the folder is absent. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "testutil.h"

#include "exec/plan_internal.h"

#define MAX_IO 16

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted subdirectory names of dir starting with prefix (NULL: any). */
static int list_dirs(const char *dir, const char *prefix, char ***out)
{
    DIR *d = opendir(dir);
    *out = NULL;
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (prefix && strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (!is_dir(path))
            continue;
        *out = realloc(*out, (size_t)(n + 1) * sizeof **out);
        (*out)[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(*out, (size_t)n, sizeof **out, cmp_str);
    return n;
}

static void free_list(char **l, int n)
{
    for (int i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

/* GRAFT_PROFILE=N: N more timed runs, time per op type. */
static void profile(graft_plan *p, graft_tensor **in, int reps)
{
    graft_error err = {0};
    if (graft__plan_set_profiling(p, true, &err) != GRAFT_OK)
        return;
    double t0 = now();
    for (int r = 0; r < reps; r++)
        if (graft_plan_run(p, (const graft_tensor *const *)in, &err) != GRAFT_OK)
            return;
    double wall = (now() - t0) / reps;
    enum { MAXT = 64 };
    const char *types[MAXT];
    double secs[MAXT];
    int counts[MAXT], nt = 0, n_run = 0;
    const char *op, *name;
    bool runs;
    double sec;
    for (int i = 0; graft__plan_node_profile(p, i, &op, &name, &runs, &sec); i++) {
        if (!runs)
            continue;
        n_run++;
        int k = 0;
        while (k < nt && strcmp(types[k], op) != 0)
            k++;
        if (k == nt && nt < MAXT) {
            types[nt] = op;
            secs[nt] = 0;
            counts[nt++] = 0;
        }
        if (k < nt) {
            secs[k] += sec / reps;
            counts[k]++;
        }
    }
    printf("     %.2f ms per run, %d of %d nodes run, %d buffers (%.1f MB):", 1e3 * wall, n_run,
           graft__plan_n_nodes(p), graft__plan_n_buffers(p),
           (double)graft__plan_buffer_bytes(p) / 1e6);
    for (int k = 0; k < nt; k++)
        printf(" %s x%d %.2fms;", types[k], counts[k], 1e3 * secs[k]);
    printf("\n");
    graft__plan_set_profiling(p, false, &err);
}

static bool same_shapes(const graft_shape *a, const graft_shape *b, int n)
{
    for (int i = 0; i < n; i++) {
        if (a[i].rank != b[i].rank)
            return false;
        for (int d = 0; d < a[i].rank; d++)
            if (a[i].dims[d] != b[i].dims[d])
                return false;
    }
    return true;
}

/* Compares the plan's outputs with output_N.pb; the plan's batch may be
 * reps times the reference's (inputs tiled along dim 0): every copy must
 * match. *batchable: every reference output has dim 0 == 1. */
static bool compare_outputs(const graft_graph *g, const graft_plan *p, const char *dir,
                            const char *set, int reps, double *worst_ratio, bool *batchable,
                            char *why, size_t why_size)
{
    char path[4200];
    graft_error err = {0};
    *batchable = true;
    for (int o = 0; o < g->n_outputs; o++) {
        snprintf(path, sizeof path, "%s/%s/output_%d.pb", dir, set, o);
        graft_tensor *ref = NULL;
        graft_dtype src_dt = GRAFT_FLOAT;
        if (graft_onnx_read_tensor_file(path, &ref, &src_dt, NULL, 0, &err) != GRAFT_OK) {
            snprintf(why, why_size, "reading output %d: %s", o, err.msg);
            return false;
        }
        if (ref->rank < 1 || ref->dims[0] != 1)
            *batchable = false;
        const graft_tensor *y = graft_plan_output(p, o);
        int64_t n = graft_tensor_nelem(ref);
        if (!y || graft_tensor_nelem(y) != reps * n || y->dtype != ref->dtype) {
            char a[128], b[128];
            snprintf(why, why_size, "output %d: got %s %s, want %s %s (x%d)", o,
                     y ? graft_dtype_name(y->dtype) : "nothing",
                     y ? graft_shape_format(y->rank, y->dims, a, sizeof a) : "",
                     graft_dtype_name(ref->dtype),
                     graft_shape_format(ref->rank, ref->dims, b, sizeof b), reps);
            graft_tensor_destroy(ref);
            return false;
        }
        double tol = src_dt == GRAFT_FLOAT16 || src_dt == GRAFT_BFLOAT16 ? 1e-3 : 1e-4;
        double max_ref = 0, max_diff = 0;
        int64_t at = 0;
        for (int64_t k = 0; k < reps * n; k++) {
            double r, v;
            int64_t kr = k % n;
            if (ref->dtype == GRAFT_FLOAT) {
                r = graft_tensor_f32(ref)[kr];
                v = graft_tensor_f32(y)[k];
            } else if (ref->dtype == GRAFT_INT64) {
                r = (double)graft_tensor_i64(ref)[kr];
                v = (double)graft_tensor_i64(y)[k];
            } else {
                r = ((const uint8_t *)ref->data)[kr];
                v = ((const uint8_t *)y->data)[k];
            }
            if (isnan(r) && isnan(v)) /* both NaN (sqrt of a negative): agree */
                continue;
            if (fabs(r) > max_ref)
                max_ref = fabs(r);
            double d = fabs(r - v);
            if (!(d <= max_diff)) { /* NaN counts as worst */
                max_diff = isnan(d) ? INFINITY : d;
                at = k;
            }
        }
        double limit = tol * (max_ref > 0 ? max_ref : 1);
        double ratio = max_diff / limit;
        if (ratio > *worst_ratio)
            *worst_ratio = ratio;
        graft_tensor_destroy(ref);
        if (!(max_diff <= limit)) {
            snprintf(why, why_size,
                     "output %d ('%s'): max|diff| %.3g at %lld > %.3g (max|ref| %.3g)", o,
                     g->values[g->outputs[o]].name, max_diff, (long long)at, limit, max_ref);
            return false;
        }
    }
    return true;
}

/* Returns the number of failed data sets (or 1 for a model that cannot run). */
static int check_model(const char *models_dir, const char *name)
{
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/%s", models_dir, name);
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (!is_file(path))
        return 0;
    graft_error err = {0};
    graft_graph *g = NULL;
    double t0 = now();
    if (graft_onnx_import_file(path, NULL, &g, &err) != GRAFT_OK) {
        printf("FAIL %-24s import: %s\n", name, err.msg);
        return 1;
    }
    double t_import = now() - t0;
    char **sets = NULL;
    int n_sets = list_dirs(dir, "test_data_set_", &sets);
    int failed = 0;
    graft_plan *p = NULL;
    graft_shape shapes[MAX_IO];
    int n_in = g->n_inputs;
    for (int si = 0; si < n_sets; si++) {
        graft_tensor *in[MAX_IO] = {0};
        graft_shape cur[MAX_IO];
        bool ok = true;
        char why[1200] = "";
        if (n_in > MAX_IO) {
            snprintf(why, sizeof why, "too many inputs (%d)", n_in);
            ok = false;
        }
        for (int i = 0; ok && i < n_in; i++) {
            snprintf(path, sizeof path, "%s/%s/input_%d.pb", dir, sets[si], i);
            if (graft_onnx_read_tensor_file(path, &in[i], NULL, NULL, 0, &err) != GRAFT_OK) {
                snprintf(why, sizeof why, "reading input %d: %s", i, err.msg);
                ok = false;
                break;
            }
            cur[i].rank = in[i]->rank;
            memcpy(cur[i].dims, in[i]->dims, sizeof cur[i].dims);
        }
        double t_plan = 0, t_run = 0;
        /* Integer inputs are usually shapes, axes or indices: give their
         * values to the plan so that what depends on them folds. */
        const graft_tensor *known[MAX_IO] = {0};
        bool any_known = false;
        for (int i = 0; ok && i < n_in; i++)
            if (in[i]->dtype == GRAFT_INT64) {
                known[i] = in[i];
                any_known = true;
            }
        graft_plan_options po = graft_plan_options_default();
        po.feed_values = any_known ? known : NULL;
        if (ok && (!p || any_known || !same_shapes(cur, shapes, n_in))) {
            graft_plan_destroy(p);
            p = NULL;
            double t1 = now();
            if (graft_plan_create(g, &po, n_in, cur, &p, &err) != GRAFT_OK) {
                snprintf(why, sizeof why, "plan: %s", err.msg);
                ok = false;
            } else {
                memcpy(shapes, cur, sizeof cur);
            }
            t_plan = now() - t1;
        }
        if (ok) {
            double t1 = now();
            if (graft_plan_run(p, (const graft_tensor *const *)in, &err) != GRAFT_OK) {
                snprintf(why, sizeof why, "run: %s", err.msg);
                ok = false;
            }
            t_run = now() - t1;
        }
        double worst_ratio = 0;
        bool batchable = false;
        if (ok)
            ok = compare_outputs(g, p, dir, sets[si], 1, &worst_ratio, &batchable, why,
                                 sizeof why);
        /* A model saved with batch 1 must run with any batch: tile the inputs
         * three times and every copy of the outputs must match. */
        bool batch_ok = true;
        for (int i = 0; ok && batchable && si == 0 && i < n_in; i++)
            batchable = in[i]->dtype == GRAFT_FLOAT && in[i]->rank >= 2 && in[i]->dims[0] == 1;
        if (ok && batchable && si == 0) {
            graft_tensor *in3[MAX_IO] = {0};
            graft_shape s3[MAX_IO];
            for (int i = 0; i < n_in; i++) {
                s3[i] = cur[i];
                s3[i].dims[0] = 3;
                graft_tensor_create(GRAFT_FLOAT, s3[i].rank, s3[i].dims, &in3[i], &err);
                for (int r = 0; r < 3; r++)
                    memcpy((char *)in3[i]->data + (size_t)r * in[i]->nbytes, in[i]->data,
                           in[i]->nbytes);
            }
            graft_plan *p3 = NULL;
            double ratio3 = 0;
            bool b3 = false;
            char why3[1200] = "";
            if (graft_plan_create(g, NULL, n_in, s3, &p3, &err) != GRAFT_OK)
                snprintf(why3, sizeof why3, "plan: %s", err.msg);
            else if (graft_plan_run(p3, (const graft_tensor *const *)in3, &err) != GRAFT_OK)
                snprintf(why3, sizeof why3, "run: %s", err.msg);
            else if (compare_outputs(g, p3, dir, sets[si], 3, &ratio3, &b3, why3, sizeof why3))
                snprintf(why3, sizeof why3, "worst diff %.2f of tolerance", ratio3);
            else
                batch_ok = false;
            if (!why3[0] || strncmp(why3, "worst", 5) != 0)
                batch_ok = false;
            /* A Reshape with the batch baked in (B11 kind) may be refused,
             * naming the node; wrong numbers never pass. */
            bool refused = strncmp(why3, "plan: ", 6) == 0 && strstr(why3, "baked");
            printf("%s %-24s %s at batch 3: %s\n",
                   batch_ok ? "ok  " : refused ? "ok  (refused)" : "FAIL", name, sets[si], why3);
            batch_ok = batch_ok || refused;
            graft_plan_destroy(p3);
            for (int i = 0; i < n_in; i++)
                graft_tensor_destroy(in3[i]);
        }
        failed += !batch_ok;
        const char *prof = getenv("GRAFT_PROFILE");
        if (ok && prof && atoi(prof) > 0)
            profile(p, in, atoi(prof));
        if (ok)
            printf("ok   %-24s %s: worst diff %.2f of tolerance; import %.3fs plan %.3fs run "
                   "%.3fs\n",
                   name, sets[si], worst_ratio, t_import, t_plan, t_run);
        else
            printf("FAIL %-24s %s: %s\n", name, sets[si], why);
        fflush(stdout);
        failed += !ok;
        for (int i = 0; i < n_in && i < MAX_IO; i++)
            graft_tensor_destroy(in[i]);
    }
    graft_plan_destroy(p);
    free_list(sets, n_sets);
    graft_graph_destroy(g);
    return failed;
}

static const char *models_dir(void)
{
    static char dir[4096];
    const char *shared = getenv("GRAFT_SHARED_DIR");
    if (!shared || !*shared)
        return NULL;
    snprintf(dir, sizeof dir, "%s/models", shared);
    return is_dir(dir) ? dir : NULL;
}

static void test_shared_models(void **state)
{
    (void)state;
    const char *dir = models_dir();
    char **names = NULL;
    int n = list_dirs(dir, NULL, &names);
    int failed = 0, models = 0;
    const char *only = getenv("GRAFT_MODEL");
    for (int i = 0; i < n; i++) {
        if (only && *only && strcmp(only, names[i]) != 0)
            continue;
        models++;
        failed += check_model(dir, names[i]);
    }
    printf("%d model(s), %d failing data set(s)\n", models, failed);
    free_list(names, n);
    assert_int_equal(failed, 0);
}

/* Backward through a whole real model: the first convolution's weights are
 * made trainable, the loss is sum(r .* outputs) for a fixed r, and the
 * largest analytic gradients are checked by central differences of the
 * plan's own forward. */
static double weighted_loss(graft_plan *p, graft_tensor **in, graft_tensor **r, int n_out)
{
    graft_error err = {0};
    assert_int_equal(graft_plan_run(p, (const graft_tensor *const *)in, &err), GRAFT_OK);
    double l = 0;
    for (int o = 0; o < n_out; o++) {
        const graft_tensor *y = graft_plan_output(p, o);
        if (!r[o])
            continue;
        for (int64_t k = 0; k < graft_tensor_nelem(y); k++)
            l += (double)graft_tensor_f32(r[o])[k] * graft_tensor_f32(y)[k];
    }
    return l;
}

static int check_model_gradient(const char *models_dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/model.onnx", models_dir, name);
    graft_error err = {0};
    graft_graph *g = NULL;
    if (graft_onnx_import_file(path, NULL, &g, &err) != GRAFT_OK)
        return 0; /* reported by the forward test */
    int32_t w = -1;
    for (int32_t i = 0; i < g->n_nodes && w < 0; i++)
        if (!g->nodes[i].removed && strcmp(g->nodes[i].op_type, "Conv") == 0 &&
            g->nodes[i].n_inputs > 1) {
            int32_t v = g->nodes[i].inputs[1];
            if (g->values[v].kind == GRAFT_VALUE_INITIALIZER && g->values[v].data &&
                g->values[v].data->dtype == GRAFT_FLOAT)
                w = v;
        }
    int n_in = g->n_inputs, n_out = g->n_outputs, failed = 0;
    graft_tensor *in[MAX_IO] = {0}, *r[MAX_IO] = {0};
    graft_shape shapes[MAX_IO];
    graft_plan *p = NULL;
    if (w < 0 || n_in > MAX_IO || n_out > MAX_IO)
        goto done;
    g->values[w].trainable = true;
    for (int i = 0; i < n_in; i++) {
        snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_%d.pb", models_dir, name, i);
        if (graft_onnx_read_tensor_file(path, &in[i], NULL, NULL, 0, &err) != GRAFT_OK)
            goto done;
        shapes[i].rank = in[i]->rank;
        memcpy(shapes[i].dims, in[i]->dims, sizeof shapes[i].dims);
    }
    graft_plan_options o = graft_plan_options_default();
    o.training = true;
    if (graft_plan_create(g, &o, n_in, shapes, &p, &err) != GRAFT_OK) {
        printf("FAIL %-24s gradient plan: %s\n", name, err.msg);
        failed = 1;
        goto done;
    }
    assert_int_equal(graft_plan_run(p, (const graft_tensor *const *)in, &err), GRAFT_OK);
    uint64_t seed = 99;
    for (int k = 0; k < n_out; k++) {
        const graft_tensor *y = graft_plan_output(p, k);
        if (y->dtype != GRAFT_FLOAT)
            continue;
        assert_int_equal(graft_tensor_create(GRAFT_FLOAT, y->rank, y->dims, &r[k], &err),
                         GRAFT_OK);
        for (int64_t i = 0; i < graft_tensor_nelem(y); i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            graft_tensor_f32(r[k])[i] = (float)((seed >> 40) & 0xffff) / 65536.0f - 0.5f;
        }
    }
    graft_status st = graft_plan_backward(p, (const graft_tensor *const *)r, &err);
    if (st == GRAFT_ERR_UNSUPPORTED && strstr(err.msg, "has no gradient")) {
        /* an op without backward on the path: refused by name, not wrong */
        printf("skip %-24s %s\n", name, err.msg);
        goto done;
    }
    if (st != GRAFT_OK) {
        printf("FAIL %-24s backward: %s\n", name, err.msg);
        failed = 1;
        goto done;
    }
    const graft_tensor *gw = graft_plan_grad(p, w);
    assert_non_null(gw);
    int64_t n = graft_tensor_nelem(gw);
    float *an = malloc((size_t)n * sizeof *an);
    memcpy(an, gw->data, (size_t)n * sizeof *an);
    float gmax = 0;
    for (int64_t i = 0; i < n; i++)
        gmax = fabsf(an[i]) > gmax ? fabsf(an[i]) : gmax;
    /* the six largest gradients: well above the finite-difference noise */
    enum { PICK = 6 };
    int64_t pick[PICK];
    int n_pick = 0;
    for (int k = 0; k < PICK && k < n; k++) {
        int64_t best = -1;
        for (int64_t i = 0; i < n; i++) {
            bool used = false;
            for (int j = 0; j < n_pick; j++)
                used |= pick[j] == i;
            if (!used && (best < 0 || fabsf(an[i]) > fabsf(an[best])))
                best = i;
        }
        pick[n_pick++] = best;
    }
    float *wd = graft_tensor_f32(g->values[w].data);
    int bad = 0;
    double worst = 0;
    for (int k = 0; k < n_pick; k++) {
        int64_t i = pick[k];
        float keep = wd[i];
        /* Relu and MaxPool kinks bias larger steps; float32 noise smaller ones */
        const char *es = getenv("GRAFT_FD_EPS");
        float eps = (es ? (float)atof(es) : 1e-3f) * (fabsf(keep) > 0.05f ? fabsf(keep) : 0.05f);
        wd[i] = keep + eps;
        double lp = weighted_loss(p, in, r, n_out);
        wd[i] = keep - eps;
        double lm = weighted_loss(p, in, r, n_out);
        wd[i] = keep;
        double fd = (lp - lm) / (2.0 * (double)eps);
        double e = fabs(fd - an[i]) / (double)gmax;
        worst = e > worst ? e : worst;
        bad += e > 5e-2;
    }
    printf("%s %-24s d/d '%s' (%lld weights): worst |fd - backward| = %.2g of max|grad| %.3g\n",
           bad ? "FAIL" : "ok  ", name, g->values[w].name, (long long)n, worst, (double)gmax);
    failed = bad > 0;
    free(an);
done:
    graft_plan_destroy(p);
    for (int i = 0; i < MAX_IO; i++) {
        graft_tensor_destroy(in[i]);
        graft_tensor_destroy(r[i]);
    }
    graft_graph_destroy(g);
    return failed;
}

static void test_shared_models_gradient(void **state)
{
    (void)state;
    const char *dir = models_dir();
    char **names = NULL;
    int n = list_dirs(dir, NULL, &names);
    int failed = 0;
    const char *only = getenv("GRAFT_MODEL");
    for (int i = 0; i < n; i++)
        if (!only || !*only || strcmp(only, names[i]) == 0)
            failed += check_model_gradient(dir, names[i]);
    free_list(names, n);
    assert_int_equal(failed, 0);
}

int main(void)
{
    if (!models_dir()) {
        printf("GRAFT_SHARED_DIR/models not found: skipping the real-model suite\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_models),
        cmocka_unit_test(test_shared_models_gradient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
