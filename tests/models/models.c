/* tests/models/models.c - the real third-party models of ../shared/models,
 * one CTest test each (models/<name>):
 *   1. import, run every test_data_set_K within the README tolerances
 *      (1e-4 relative to max|ref| for float32, 1e-3 for float16);
 *   2. round trip import -> export -> import: the same graph (checked in C on
 *      graft's IR and with the onnx package against the source file) with
 *      bit-identical tensors, and the data sets still match;
 *   3. a new head: automatic cut where the model is a classifier, a named cut
 *      (--cut) where it is not, trained a few SGD steps on a small random data
 *      set of the right input shape, exported, the export passing
 *      onnx.checker full_check with every kept backbone initializer
 *      bit-identical; for the float16 model also the float32 export
 *      (--float32), which ONNX Runtime must run to graft's outputs.
 *
 *   graft_models <name>   exit 0 pass, 1 fail, 77 skip (no shared folder) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cu.h"

#define PY(...) CU_CHECK(cu_py(__VA_ARGS__) == 0, "python check failed: " __VA_ARGS__)

typedef struct {
    const char *name;
    const char *cut;       /* NULL: automatic */
    int64_t train_dims[4]; /* synthetic input for head training (batch first) */
    int batch;
} model_case;

static const model_case models[] = {
    {"mnist-cntk", NULL, {2, 1, 28, 28}, 1},
    {"squeezenet1.0-fp16", NULL, {2, 3, 224, 224}, 1},
    {"bodypix-mnv1-050-s16", "MobilenetV1/Conv2d_13_pointwise/Relu6:0", {2, 65, 65, 3}, 1},
    {"ultraface-rfb-320", "360", {2, 3, 240, 320}, 1},
};

static bool same_tensor(const graft_tensor *a, const graft_tensor *b)
{
    if (!a || !b)
        return a == b;
    return a->dtype == b->dtype && a->rank == b->rank &&
           !memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->rank) &&
           !memcmp(a->data, b->data, (size_t)graft_tensor_nelem(a) * graft_dtype_size(a->dtype));
}

/* graft's IR of the re-imported export equals the original's */
static void compare_graphs(const graft_graph *a, const graft_graph *b)
{
    int na = 0, nb = 0;
    for (int32_t i = 0; i < a->n_nodes; i++)
        na += !a->nodes[i].removed;
    for (int32_t i = 0; i < b->n_nodes; i++)
        nb += !b->nodes[i].removed;
    CU_CHECK(na == nb, "round trip: %d nodes, originally %d", nb, na);
    CU_CHECK(a->n_inputs == b->n_inputs && a->n_outputs == b->n_outputs,
             "round trip: inputs/outputs %d/%d, originally %d/%d", b->n_inputs, b->n_outputs,
             a->n_inputs, a->n_outputs);
    for (int32_t i = 0, j = 0; i < a->n_nodes && j < b->n_nodes; i++, j++) {
        while (i < a->n_nodes && a->nodes[i].removed)
            i++;
        while (j < b->n_nodes && b->nodes[j].removed)
            j++;
        if (i >= a->n_nodes || j >= b->n_nodes)
            break;
        const graft_node *x = &a->nodes[i], *y = &b->nodes[j];
        bool ok = !strcmp(x->op_type, y->op_type) && !strcmp(x->domain, y->domain) &&
                  x->n_inputs == y->n_inputs && x->n_outputs == y->n_outputs &&
                  x->n_attrs == y->n_attrs;
        for (int k = 0; ok && k < x->n_inputs; k++)
            ok = (x->inputs[k] < 0) == (y->inputs[k] < 0) &&
                 (x->inputs[k] < 0 ||
                  !strcmp(a->values[x->inputs[k]].name, b->values[y->inputs[k]].name));
        for (int k = 0; ok && k < x->n_outputs; k++)
            ok = (x->outputs[k] < 0) == (y->outputs[k] < 0) &&
                 (x->outputs[k] < 0 ||
                  !strcmp(a->values[x->outputs[k]].name, b->values[y->outputs[k]].name));
        CU_CHECK(ok, "round trip: node %d (%s '%s') differs", i, x->op_type, x->name);
        if (!ok)
            break;
    }
    int n_init = 0;
    for (int32_t v = 0; v < a->n_values; v++) {
        const graft_value *x = &a->values[v];
        if (x->kind != GRAFT_VALUE_INITIALIZER)
            continue;
        n_init++;
        int32_t w = graft_graph_find_value(b, x->name);
        CU_CHECK(w >= 0 && b->values[w].kind == GRAFT_VALUE_INITIALIZER,
                 "round trip: initializer %s lost", x->name);
        if (w < 0)
            continue;
        const graft_value *y = &b->values[w];
        CU_CHECK(same_tensor(x->data, y->data), "round trip: initializer %s not bit-identical",
                 x->name);
        CU_CHECK(x->source_dtype == y->source_dtype, "round trip: %s stored as %s, originally %s",
                 x->name, graft_dtype_name(y->source_dtype), graft_dtype_name(x->source_dtype));
    }
    printf("  round trip: %d nodes, %d initializers compared\n", na, n_init);
}

static void run_model(const model_case *mc, const char *dir)
{
    cu_tol tol = cu_tol_models();
    const char *src = cu_keep(cu_fmt("%s/model.onnx", dir));
    graft_error err = {0};
    graft_graph *g = cu_import(src, &err);
    CU_CHECK(g != NULL, "import: %s", err.msg);
    if (!g)
        return;
    printf("-- reference data sets\n");
    int k = cu_run_all_sets(g, dir, &tol);
    for (int i = 0; i < k; i++)
        cu_cli_run_set(src, cu_fmt("%s/test_data_set_%d", dir, i), &tol);

    printf("-- round trip\n");
    const char *rt = cu_keep(cu_fmt("%s/rt.onnx", cu_work()));
    graft_onnx_export_options eo = graft_onnx_export_options_default();
    if (graft_onnx_export_file(g, rt, &eo, &err) != GRAFT_OK) {
        CU_CHECK(0, "export: %s", err.msg);
    } else {
        PY("same '%s' '%s'", rt, src);
        graft_graph *h = cu_import(rt, &err);
        CU_CHECK(h != NULL, "re-import: %s", err.msg);
        if (h) {
            compare_graphs(g, h);
            CU_CHECK(cu_run_set(h, cu_fmt("%s/test_data_set_0", dir), &tol),
                     "re-imported export does not reproduce test_data_set_0");
        }
        graft_graph_destroy(h);
    }

    printf("-- new head (%s cut)\n", mc->cut ? mc->cut : "automatic");
    graft_feature_info fi;
    memset(&err, 0, sizeof err);
    graft_status fst = graft_surgery_find_features(g, &fi, &err);
    if (mc->cut) {
        printf("  automatic cut: %s\n", fst == GRAFT_OK ? g->values[fi.value].name : err.msg);
    } else {
        CU_CHECK(fst == GRAFT_OK, "automatic cut failed on a classifier: %s", err.msg);
        if (fst == GRAFT_OK)
            printf("  automatic cut at '%s': %s\n", g->values[fi.value].name, fi.reason);
    }
    graft_head_info hi;
    memset(&err, 0, sizeof err);
    if (cu_reheat(g, mc->cut, 3, 1, &hi, &err) != GRAFT_OK) {
        CU_CHECK(0, "re-heading: %s", err.msg);
        graft_graph_destroy(g);
        return;
    }
    graft_tensor *x = cu_rand_tensor(4, mc->train_dims, 3);
    int64_t n = mc->train_dims[0];
    int64_t *lab = malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        lab[i] = i % 3;
    double loss = cu_train(g, &hi, x, lab, n, mc->batch, 4, 0.05f, &err);
    CU_CHECK(!isnan(loss), "training: %s", err.msg);
    if (!isnan(loss)) {
        printf("  4 SGD steps, last loss %.4f\n", loss);
        const char *out = cu_keep(cu_fmt("%s/ft.onnx", cu_work()));
        if (graft_onnx_export_file(g, out, &eo, &err) != GRAFT_OK) {
            CU_CHECK(0, "export after training: %s", err.msg);
        } else {
            PY("checker '%s'", out);
            PY("backbone_same '%s' '%s' 4", out, src);
            PY("no_dead_inits '%s' '%s'", out, src);
            graft_graph *h = cu_import(out, &err);
            CU_CHECK(h != NULL, "re-import of the fine-tuned export: %s", err.msg);
            if (h) {
                int64_t d1[4];
                memcpy(d1, mc->train_dims, sizeof d1);
                d1[0] = 1;
                graft_tensor *one = NULL;
                graft_tensor_attach(GRAFT_FLOAT, 4, d1, x->data, &one, &err);
                cu_ort_check(out, g, one, &tol);
                if (!strcmp(mc->name, "squeezenet1.0-fp16")) {
                    /* the other form: the whole model in float32 */
                    const char *out32 = cu_keep(cu_fmt("%s/ft32.onnx", cu_work()));
                    graft_onnx_export_options eo32 = eo;
                    eo32.float32 = true;
                    if (graft_onnx_export_file(g, out32, &eo32, &err) != GRAFT_OK) {
                        CU_CHECK(0, "float32 export: %s", err.msg);
                    } else {
                        printf("  float32 export\n");
                        PY("float32 '%s' '%s'", out32, src);
                        cu_ort_check(out32, g, one, &tol);
                    }
                }
                graft_tensor *a = cu_forward(g, 1, &one, -1, false, &err);
                graft_tensor *b = cu_forward(h, 1, &one, -1, false, &err);
                CU_CHECK(a && b, "running the fine-tuned model: %s", err.msg);
                if (a && b) {
                    double d = 0;
                    for (int64_t i = 0; i < graft_tensor_nelem(a); i++)
                        d = fmax(d, fabs(graft_tensor_f32(a)[i] - graft_tensor_f32(b)[i]));
                    CU_CHECK(d <= 1e-6, "export runs %.3g away from the in-memory model", d);
                }
                graft_tensor_destroy(a);
                graft_tensor_destroy(b);
                graft_tensor_destroy(one);
            }
            graft_graph_destroy(h);
        }
    }
    free(lab);
    graft_tensor_destroy(x);
    graft_graph_destroy(g);

    const char *cli = getenv("GRAFT_CLI");
    /* a float16 model takes the same float32 images through `graft train`;
     * --float32 writes it all in float32 */
    if (!strcmp(mc->name, "squeezenet1.0-fp16") && cli && *cli &&
        cu_exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
        printf("-- graft train (CLI) on the float16 model\n");
        const char *ft = cu_keep(cu_fmt("%s/cli_ft16.onnx", cu_work()));
        const char *log = cu_keep(cu_fmt("%s/cli_train16.txt", cu_work()));
        int rc = cu_run_capture(cu_fmt("'%s' train --model '%s' --classes 5,6 --per-class 4 "
                                       "--epochs 1 --size 224x224 --channels 3 --quiet --float32 "
                                       "--out '%s'",
                                       cli, src, ft),
                                log);
        CU_CHECK(rc == 0, "graft train on the float16 model: exit status %d (log %s)", rc, log);
        if (rc != 0)
            cu_sh("tail -3 '%s'", log);
        else
            PY("float32 '%s' '%s'", ft, src);
    }

    /* the user's path: `graft train` on real images (Fashion-MNIST fits the
     * 28x28 grey input of the MNIST classifier; the model wants 0..255) */
    if (!strcmp(mc->name, "mnist-cntk") && cli && *cli &&
        cu_exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
        printf("-- graft train (CLI) on Fashion-MNIST classes 0,1,2\n");
        const char *ft = cu_keep(cu_fmt("%s/cli_ft.onnx", cu_work()));
        const char *log = cu_keep(cu_fmt("%s/cli_train.txt", cu_work()));
        int rc = cu_run_capture(cu_fmt("'%s' train --model '%s' --classes 0,1,2 --per-class 20 "
                                       "--epochs 3 --scale 1 --quiet --out '%s'",
                                       cli, src, ft),
                                log);
        CU_CHECK(rc == 0, "graft train exit status %d (log %s)", rc, log);
        if (rc != 0)
            cu_sh("tail -5 '%s'", log);
        else {
            cu_sh("grep -E 'test accuracy' '%s'", log);
            PY("checker '%s'", ft);
            PY("backbone_same '%s' '%s' 4", ft, src);
            PY("no_dead_inits '%s' '%s'", ft, src);
        }
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc != 2) {
        fprintf(stderr, "usage: graft_models NAME\n");
        return 2;
    }
    const char *sh = cu_shared();
    if (!sh) {
        printf("SKIP: GRAFT_SHARED_DIR (%s) does not hold cases/ and models/\n",
               getenv("GRAFT_SHARED_DIR") ? getenv("GRAFT_SHARED_DIR") : "unset");
        return 77;
    }
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        if (strcmp(models[i].name, argv[1]) != 0)
            continue;
        const char *dir = cu_keep(cu_fmt("%s/models/%s", sh, argv[1]));
        printf("model %s\n", dir);
        run_model(&models[i], dir);
        return cu_finish(argv[1]);
    }
    fprintf(stderr, "unknown model %s\n", argv[1]);
    return 2;
}
