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
 *   6. VGG16 and AlexNet: 4-5 again at the pooled conv features, cut by name
 *      (--cut), the 4-D map pooled to its channels by the head.
 *   (4 and 5 are cu_finetune_export, tests/cases/cu.c, shared with tests/tfstyle.)
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

typedef struct {
    const char *name;
    int size;          /* input height = width (tools/export_families.py SIZES) */
    const char *cut;   /* the automatic cut: torch's name of the classifier's input */
    int64_t width;     /* its width (channels of a 4-D map, pooled by the head) */
    const char *cut13; /* the cut at opset 13 where it differs (NULL: cut) */
    /* VGG16, AlexNet: the pooled conv features instead of fc7, by name (the
     * CLI's --cut); NULL: none */
    const char *conv_cut;
    int64_t conv_width;
} family;

static const family families[] = {
    {"vgg16", 224, "/classifier/classifier.4/Relu_output_0", 4096, NULL,
     "/features/features.30/MaxPool_output_0", 512},
    {"resnet18", 64, "/Flatten_output_0", 512, NULL, NULL, 0},
    {"resnet50", 64, "/Flatten_output_0", 2048, NULL, NULL, 0},
    {"inception_v3", 75, "/Flatten_output_0", 2048, NULL, NULL, 0},
    {"googlenet", 64, "/Flatten_output_0", 1024, NULL, NULL, 0},
    {"densenet121", 64, "/Flatten_output_0", 1024, NULL, NULL, 0},
    {"mobilenet_v2", 64, "/Flatten_output_0", 1280, NULL, NULL, 0},
    /* HardSwish is an op from opset 14: at 13 the exporter writes x * HardSigmoid(x) */
    {"mobilenet_v3_small", 64, "/classifier/classifier.1/HardSwish_output_0", 1024,
     "/classifier/classifier.1/Mul_output_0", NULL, 0},
    {"squeezenet1_1", 64, "/features/features.12/Concat_output_0", 512, NULL, NULL, 0},
    {"shufflenet_v2_x1_0", 64, "/ReduceMean_output_0", 1024, NULL, NULL, 0},
    {"efficientnet_b0", 64, "/Flatten_output_0", 1280, NULL, NULL, 0},
    {"alexnet", 224, "/classifier/classifier.5/Relu_output_0", 4096, NULL,
     "/features/features.12/MaxPool_output_0", 256},
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
        if (ref && cu_max_diff(graft_plan_output(p, 0), ref, &d, &mref)) {
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

    /* 4-5. a new 3-class head, 4 SGD steps, export, checks, ONNX Runtime */
    int64_t *lab = malloc(sizeof(int64_t) * (size_t)x->dims[0]);
    for (int64_t i = 0; lab && i < x->dims[0]; i++)
        lab[i] = i % 2 * 2; /* {0, 2} on the batch of 2 */
    if (lab)
        cu_finetune_export(g, src, NULL, x, lab, 3, 4, f->width, &tol, lap);

    /* 6. the conv features by name, pooled by the head (512 for VGG16) */
    if (lab && f->conv_cut) {
        printf("-- named cut at the conv features '%s'\n", f->conv_cut);
        graft_graph *h = cu_import(src, &err);
        CU_CHECK(h != NULL, "re-import: %s", err.msg);
        if (h)
            cu_finetune_export(h, src, f->conv_cut, x, lab, 3, 4, f->conv_width, &tol, lap);
        graft_graph_destroy(h);
    }
    free(lab);
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
