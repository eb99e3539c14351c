/* tests/families/families.c - the classic torchvision families as
 * torch.onnx.export writes them (tools/export_families.py: random weights
 * from a fixed seed, eval mode, dynamic batch, input "input", output
 * "logits"), one CTest test per family and opset: families/<family>-op<N>.
 *
 *   1. import; every op must be one graft runs: otherwise the test FAILS with
 *      graft's own "cannot run" message listing the ops (never a skip);
 *   2. parity with PyTorch on test_data_set_0 (a fixed N(0,1) input, batch 2,
 *      at the family's input size, see docs/FAMILIES.md), float32, criterion
 *        max|graft - torch| <= 1e-4 * max|torch|   over the whole [2,1000] output
 *      (the models suite's rule: relative to the largest logit, so that it
 *      neither tightens on near-zero logits nor loosens on large ones); the
 *      same through `graft run`;
 *   3. the automatic feature cut picks the documented tensor: the input of
 *      the final classifier, by name and width (docs/FAMILIES.md);
 *   4. a new 3-class head at that cut, 4 SGD steps on the data set's input
 *      (step size 1/(1 + max|features|^2), stable at any feature scale): the
 *      loss must go down; only the head gets gradients;
 *   5. export: onnx.checker full_check, backbone initializers bit-identical
 *      to the source, no dead initializers; re-imported it runs like the
 *      in-memory model (1e-6); ONNX Runtime (when onnxruntime-node is under
 *      $GRAFT_ORT_DIR) runs it like graft within 1e-4 * max|graft|.
 *
 * The exports are made by the families/<family>-export fixture (both opsets)
 * into $GRAFT_FAMILIES_DIR and kept across runs; a folder still missing is
 * exported here.
 *
 *   graft_families FAMILY OPSET   exit 0 pass, 1 fail, 77 skip (no torch, or
 *                                 a family the installed torchvision lacks) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cu.h"
#include "lightops_util.h"

#define PY(...) CU_CHECK(cu_py(__VA_ARGS__) == 0, "python check failed: " __VA_ARGS__)

typedef struct {
    const char *name;
    int size;          /* input height = width (tools/export_families.py SIZES) */
    const char *cut;   /* the automatic cut: torch's name of the classifier's input */
    int64_t width;     /* its width (channels of a 4-D map, pooled by the head) */
    const char *cut13; /* the cut at opset 13 where it differs (NULL: cut) */
} family;

static const family families[] = {
    {"vgg16", 224, "/classifier/classifier.4/Relu_output_0", 4096, NULL},
    {"resnet18", 64, "/Flatten_output_0", 512, NULL},
    {"resnet50", 64, "/Flatten_output_0", 2048, NULL},
    {"inception_v3", 75, "/Flatten_output_0", 2048, NULL},
    {"googlenet", 64, "/Flatten_output_0", 1024, NULL},
    {"densenet121", 64, "/Flatten_output_0", 1024, NULL},
    {"mobilenet_v2", 64, "/Flatten_output_0", 1280, NULL},
    /* HardSwish is an op from opset 14: at 13 the exporter writes x * HardSigmoid(x) */
    {"mobilenet_v3_small", 64, "/classifier/classifier.1/HardSwish_output_0", 1024,
     "/classifier/classifier.1/Mul_output_0"},
    {"squeezenet1_1", 64, "/features/features.12/Concat_output_0", 512, NULL},
    {"shufflenet_v2_x1_0", 64, "/ReduceMean_output_0", 1024, NULL},
    {"efficientnet_b0", 64, "/Flatten_output_0", 1280, NULL},
    {"alexnet", 224, "/classifier/classifier.5/Relu_output_0", 4096, NULL},
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double t_start, t_last;

static void lap(const char *what)
{
    double t = now();
    printf("  [%.1f s] %s\n", t - t_last, what);
    t_last = t;
}

/* max|a-b| and max|ref| over two float tensors of one shape; false on a shape
 * mismatch or NaN */
static bool max_diff(const graft_tensor *a, const graft_tensor *ref, double *d, double *mref)
{
    *d = 0;
    *mref = 0;
    if (a->rank != ref->rank || memcmp(a->dims, ref->dims, sizeof(int64_t) * (size_t)a->rank))
        return false;
    const float *x = graft_tensor_f32(a), *r = graft_tensor_f32(ref);
    for (int64_t i = 0; i < graft_tensor_nelem(ref); i++) {
        if (isnan(x[i]) || isnan(r[i]))
            return false;
        *d = fmax(*d, fabs((double)x[i] - r[i]));
        *mref = fmax(*mref, fabs(r[i]));
    }
    return true;
}

/* the export folder, made here when the fixture did not; NULL: skip (77) */
static const char *export_dir(const family *f, int opset, bool *skip)
{
    const char *base = getenv("GRAFT_FAMILIES_DIR");
    if (!base || !*base)
        base = cu_fmt("%s/families", cu_work());
    const char *dir = cu_keep(cu_fmt("%s/%s-op%d", base, f->name, opset));
    if (cu_exists(cu_fmt("%s/test_data_set_0/output_0.pb", dir)))
        return dir;
    const char *py = getenv("GRAFT_PYTHON"), *src = getenv("GRAFT_SOURCE_DIR");
    const char *log = cu_keep(cu_fmt("%s/export.txt", cu_work()));
    printf("-- exporting %s at opset %d (no cached export in %s)\n", f->name, opset, base);
    int rc = cu_run_capture(cu_fmt("'%s' '%s/tools/export_families.py' --keep '%s' %s --opset %d",
                                   py && *py ? py : "/usr/bin/python3", src && *src ? src : ".",
                                   base, f->name, opset),
                            log);
    cu_sh("grep -v -i warn '%s' | tail -5", log);
    if (rc == 77 || (rc == 0 && !cu_exists(cu_fmt("%s/model.onnx", dir)))) {
        *skip = true;
        return NULL;
    }
    CU_CHECK(rc == 0, "tools/export_families.py exit status %d (log above)", rc);
    return rc == 0 ? dir : NULL;
}

static void run_family(const family *f, int opset, const char *dir)
{
    cu_tol tol = cu_tol_models(); /* 1e-4 * max|ref| for float32 */
    const char *src = cu_keep(cu_fmt("%s/model.onnx", dir));
    const char *set = cu_keep(cu_fmt("%s/test_data_set_0", dir));
    graft_error err = {0};
    graft_graph *g = cu_import(src, &err);
    CU_CHECK(g != NULL, "import: %s", err.msg);
    if (!g)
        return;
    lap("import");

    graft_tensor *x = NULL;
    if (cu_read_inputs(set, &x, 1) != 1) {
        CU_CHECK(0, "%s: no input_0.pb", set);
        graft_graph_destroy(g);
        return;
    }
    CU_CHECK(x->rank == 4 && x->dims[0] == 2 && x->dims[2] == f->size && x->dims[3] == f->size,
             "test input is not [2,3,%d,%d]: the export and this table disagree", f->size, f->size);

    /* 1-2. the ops, then parity with PyTorch */
    char ops[512];
    int n_bad = graft_graph_unsupported_ops(g, NULL, 0, ops, sizeof ops);
    graft_shape sh = {x->rank, {0}};
    memcpy(sh.dims, x->dims, sizeof sh.dims);
    graft_plan_options o = graft_plan_options_default();
    graft_plan *p = NULL;
    if (graft_plan_create(g, &o, 1, &sh, &p, &err) != GRAFT_OK) {
        printf("graft: %s\n", err.msg);
        CU_CHECK(0, "%s-op%d does not run in graft%s%s: %s", f->name, opset,
                 n_bad ? ", missing ops: " : "", n_bad ? ops : "", err.msg);
        if (n_bad)
            CU_CHECK(strstr(err.msg, "cannot run") && strstr(err.msg, ops),
                     "the refusal does not list the missing ops (%s): %s", ops, err.msg);
        graft_tensor_destroy(x);
        graft_graph_destroy(g);
        return;
    }
    CU_CHECK(n_bad == 0, "planned although graft_graph_unsupported_ops lists %s", ops);
    const graft_tensor *ins[1] = {x};
    if (graft_plan_run(p, ins, &err) != GRAFT_OK) {
        CU_CHECK(0, "run: %s", err.msg);
    } else {
        graft_tensor *ref = lt_read_pb(cu_fmt("%s/output_0.pb", set));
        CU_CHECK(ref != NULL, "cannot read %s/output_0.pb", set);
        double d = 0, mref = 0;
        if (ref && max_diff(graft_plan_output(p, 0), ref, &d, &mref)) {
            printf("  parity with PyTorch: max|diff| %.3g, max|ref| %.4g, ratio %.3g (limit 1e-4)\n",
                   d, mref, d / fmax(mref, 1e-30));
            CU_CHECK(d <= 1e-4 * mref, "graft differs from PyTorch: max|diff| %.3g > 1e-4 * %.4g",
                     d, mref);
        } else if (ref) {
            CU_CHECK(0, "output shape or NaNs differ from PyTorch's");
        }
        graft_tensor_destroy(ref);
    }
    graft_plan_destroy(p);
    lap("run + parity");
    cu_cli_run_set(src, set, &tol);
    lap("graft run (CLI)");

    /* 3. the automatic cut */
    graft_feature_info fi;
    memset(&err, 0, sizeof err);
    if (graft_surgery_find_features(g, &fi, &err) != GRAFT_OK) {
        CU_CHECK(0, "automatic cut failed on a classifier: %s", err.msg);
        graft_tensor_destroy(x);
        graft_graph_destroy(g);
        return;
    }
    const char *cut = g->values[fi.value].name;
    printf("  automatic cut at '%s': %s\n", cut, fi.reason);
    const char *want = opset < 14 && f->cut13 ? f->cut13 : f->cut;
    CU_CHECK(!strcmp(cut, want), "automatic cut at '%s', documented '%s'", cut, want);

    /* 4. new head, a few SGD steps */
    graft_head_info hi;
    if (cu_reheat(g, NULL, 3, 1, &hi, &err) != GRAFT_OK) {
        CU_CHECK(0, "re-heading: %s", err.msg);
        graft_tensor_destroy(x);
        graft_graph_destroy(g);
        return;
    }
    printf("  head on %lld features\n", (long long)hi.n_features);
    CU_CHECK(hi.n_features == f->width, "cut is %lld wide, documented %lld",
             (long long)hi.n_features, (long long)f->width);
    /* random weights give features of any scale: a step size of 1/max|f|^2
     * keeps plain SGD on the dense head stable whatever the scale */
    graft_tensor *feat = cu_forward(g, 1, &x, hi.head_input, false, &err);
    CU_CHECK(feat != NULL, "the head's input: %s", err.msg);
    double f2 = 0;
    for (int64_t b = 0; feat && b < feat->dims[0]; b++) {
        double s = 0;
        int64_t w = graft_tensor_nelem(feat) / feat->dims[0];
        for (int64_t i = 0; i < w; i++)
            s += (double)graft_tensor_f32(feat)[b * w + i] * graft_tensor_f32(feat)[b * w + i];
        f2 = fmax(f2, s);
    }
    graft_tensor_destroy(feat);
    float lr = (float)(1.0 / (1.0 + f2));
    int64_t lab[2] = {0, 2};
    double loss0 = cu_train(g, &hi, x, lab, 2, 2, 1, 0.0f, &err); /* lr 0: the starting loss */
    double loss = isnan(loss0) ? NAN : cu_train(g, &hi, x, lab, 2, 2, 4, lr, &err);
    CU_CHECK(!isnan(loss), "training: %s", err.msg);
    if (!isnan(loss)) {
        printf("  4 SGD steps, lr %.3g (1/(1+max|f|^2)): loss %.4f -> %.4f\n", lr, loss0, loss);
        CU_CHECK(loss < loss0, "the loss did not go down (%.6f -> %.6f)", loss0, loss);
    }
    lap("re-head + train");

    /* 5. export, checks, ONNX Runtime */
    const char *out = cu_keep(cu_fmt("%s/ft.onnx", cu_work()));
    graft_onnx_export_options eo = graft_onnx_export_options_default();
    if (!isnan(loss) && graft_onnx_export_file(g, out, &eo, &err) != GRAFT_OK) {
        CU_CHECK(0, "export after training: %s", err.msg);
    } else if (!isnan(loss)) {
        lap("export");
        PY("checker '%s'", out);
        PY("backbone_same '%s' '%s' 4", out, src);
        PY("no_dead_inits '%s' '%s'", out, src);
        lap("python checks of the export");
        graft_graph *h = cu_import(out, &err);
        CU_CHECK(h != NULL, "re-import of the export: %s", err.msg);
        if (h) {
            graft_tensor *a = cu_forward(g, 1, &x, -1, false, &err);
            graft_tensor *b = cu_forward(h, 1, &x, -1, false, &err);
            double d = 0, m = 0;
            CU_CHECK(a && b, "running the fine-tuned model: %s", err.msg);
            if (a && b) {
                CU_CHECK(max_diff(b, a, &d, &m) && d <= 1e-6,
                         "the export runs %.3g away from the in-memory model", d);
            }
            graft_tensor_destroy(a);
            graft_tensor_destroy(b);
            graft_graph_destroy(h);
        }
        lap("re-import + run");
        cu_ort_check(out, g, x, &tol);
        lap("ONNX Runtime");
    }
    graft_tensor_destroy(x);
    graft_graph_destroy(g);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc != 3) {
        fprintf(stderr, "usage: graft_families FAMILY OPSET\n");
        return 2;
    }
    int opset = atoi(argv[2]);
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        const family *f = &families[i];
        if (strcmp(f->name, argv[1]) != 0)
            continue;
        t_start = t_last = now();
        bool skip = false;
        const char *dir = export_dir(f, opset, &skip);
        if (skip) {
            printf("SKIP: %s-op%d cannot be exported here (see the line above)\n", f->name, opset);
            return 77;
        }
        if (dir) {
            printf("family %s, opset %d, input %dx%d, batch 2: %s\n", f->name, opset, f->size,
                   f->size, dir);
            run_family(f, opset, dir);
        }
        printf("  total %.1f s\n", now() - t_start);
        return cu_finish(cu_fmt("%s-op%d", f->name, opset));
    }
    fprintf(stderr, "unknown family %s\n", argv[1]);
    return 2;
}
