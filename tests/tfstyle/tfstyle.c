/* tests/tfstyle/tfstyle.c - TensorFlow-exported (tf2onnx-style) classifiers,
 * one CTest test per model: tfstyle/<arch>-op<N>. The models are written by
 * tests/tfstyle/make_tfstyle.py (the tfstyle/generate fixture, into
 * $GRAFT_TFSTYLE_DIR): NHWC input with "unk__" symbolic dims, Transpose into
 * NCHW, Pad nodes before zero-pad Convs, Clip as Relu6, depthwise Conv,
 * BatchNormalization, MaxPool, Keras Flatten as Reshape (constant or computed
 * shape), Dense as MatMul + Add, Softmax; references from a numpy evaluator
 * that ONNX Runtime agreed with (see the script).
 *
 *   1. import; every op must be one graft runs (else FAIL with graft's
 *      "cannot run" message);
 *   2. every test_data_set_K: the softmax output, the feature tensor and the
 *      logits within 1e-4 * max|ref| (float32), and the output through
 *      `graft run`;
 *   3. the automatic feature cut picks the tensor feeding the final dense
 *      layer, by name (tf2onnx's) and width;
 *   4-5. cu_finetune_export (shared with tests/families): a new 3-class head,
 *      4 SGD steps (the loss must go down), export, onnx.checker, backbone
 *      bit-identical, ONNX Runtime within 1e-4 of graft; the export keeps the
 *      input's symbolic dims (batch, and height/width where they were);
 *   6. the backbone trains too: with every weight trainable the gradient of
 *      the logits reaches each one through the TF-style ops and matches
 *      central differences (check_backbone_gradient).
 *
 *   graft_tfstyle MODEL   exit 0 pass, 1 fail, 77 skip (no python3-onnx) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu.h"

typedef struct {
    const char *name;
    const char *cut;  /* the automatic cut: the final dense layer's input */
    int64_t width;    /* its width */
} tf_model;

#define CNN_CUT "model/flatten/Reshape:0"
#define MOBILENET_CUT "StatefulPartitionedCall/mobilenet/re_lu/Relu:0"
#define DYNHW_CUT "model/flatten/Reshape:0"

static const tf_model models[] = {
    {"cnn-op10", CNN_CUT, 256},
    {"cnn-op11", CNN_CUT, 256},
    {"cnn-op13", CNN_CUT, 256},
    {"cnn-op17", CNN_CUT, 256},
    {"mobilenet-op11", MOBILENET_CUT, 32},
    {"mobilenet-op13", MOBILENET_CUT, 32},
    {"mobilenet-op17", MOBILENET_CUT, 32},
    {"dynhw-op11", DYNHW_CUT, 24},
    {"dynhw-op13", DYNHW_CUT, 24},
    {"dynhw-op17", DYNHW_CUT, 24},
    {"unfolded-op11", "sequential/flatten/Reshape:0", 288},
    {"unfolded-op13", "sequential/flatten/Reshape:0", 288},
    {"uint8-op13", "model/flatten/Reshape:0", 512},
    {"effnet-op13", "StatefulPartitionedCall/model/avg_pool/Mean:0", 24},
    {"effnet-op17", "StatefulPartitionedCall/model/avg_pool/Mean:0", 24},
};

/* the model's folder, generated here when the fixture did not; NULL: skip */
static const char *model_dir(const tf_model *m, bool *skip)
{
    const char *base = getenv("GRAFT_TFSTYLE_DIR");
    if (!base || !*base)
        base = cu_fmt("%s/tfstyle", cu_work());
    const char *dir = cu_keep(cu_fmt("%s/%s", base, m->name));
    if (cu_exists(cu_fmt("%s/info.json", dir)))
        return dir;
    const char *py = getenv("GRAFT_PYTHON"), *src = getenv("GRAFT_SOURCE_DIR");
    const char *log = cu_keep(cu_fmt("%s/generate.txt", cu_work()));
    printf("-- generating %s (nothing in %s)\n", m->name, base);
    int rc = cu_run_capture(cu_fmt("'%s' '%s/tests/tfstyle/make_tfstyle.py' '%s' %s",
                                   py && *py ? py : "/usr/bin/python3", src && *src ? src : ".",
                                   base, m->name),
                            log);
    cu_sh("tail -3 '%s'", log);
    if (rc == 77) {
        *skip = true;
        return NULL;
    }
    CU_CHECK(rc == 0 && cu_exists(cu_fmt("%s/info.json", dir)),
             "make_tfstyle.py exit status %d (log above)", rc);
    return rc == 0 ? dir : NULL;
}

/* the value named `name` on the set's inputs against <set>/<file> */
static void check_value(const graft_graph *g, const char *set, const char *name, const char *file,
                        const cu_tol *tol)
{
    int32_t v = graft_graph_find_value(g, name);
    CU_CHECK(v >= 0, "no value '%s' in the imported graph (TF names must survive import)", name);
    if (v < 0)
        return;
    graft_tensor *in[1] = {NULL};
    if (cu_read_inputs(set, in, 1) != 1)
        return;
    graft_error err = {0};
    graft_tensor *y = cu_forward(g, 1, in, v, false, &err);
    CU_CHECK(y != NULL, "%s: fetching '%s': %s", set, name, err.msg);
    if (y) {
        const char *base = strrchr(set, '/');
        if (cu_compare(cu_fmt("%s/%s ('%s')", base ? base + 1 : set, file, name), y,
                       cu_fmt("%s/%s", set, file), tol))
            printf("  %s/%s matches\n", base ? base + 1 : set, file);
    }
    graft_tensor_destroy(y);
    graft_tensor_destroy(in[0]);
}

/* the fine-tuned export keeps the input's symbolic dims (surgery leaves g's input alone) */
static void check_symbolic_input(const graft_graph *g, const char *exported)
{
    graft_error err = {0};
    graft_graph *h = cu_import(exported, &err);
    if (!h)
        return; /* cu_finetune_export reported it */
    const graft_value *a = &g->values[g->inputs[0]], *b = &h->values[h->inputs[0]];
    CU_CHECK(a->rank == b->rank && !strcmp(a->name, b->name),
             "the export's input is '%s' of rank %d, the source's '%s' of rank %d", b->name,
             b->rank, a->name, a->rank);
    for (int d = 0; a->rank == b->rank && d < a->rank; d++)
        CU_CHECK((a->dims[d] < 0) == (b->dims[d] < 0) && (a->dims[d] < 0 || a->dims[d] == b->dims[d]),
                 "the export's input dim %d is %lld, the source's %lld (-1: symbolic)", d,
                 (long long)b->dims[d], (long long)a->dims[d]);
    graft_graph_destroy(h);
}

/* sum_j u_j * logits_j on x, through a training plan p (u NULL: just run) */
static double probe_loss(graft_plan *p, const graft_tensor *x, const graft_tensor *u,
                         graft_error *err)
{
    const graft_tensor *ins[1] = {x};
    if (graft_plan_run(p, ins, err) != GRAFT_OK)
        return NAN;
    const graft_tensor *y = graft_plan_output(p, 0);
    double l = 0;
    for (int64_t i = 0; u && i < graft_tensor_nelem(u) && i < graft_tensor_nelem(y); i++)
        l += (double)graft_tensor_f32(u)[i] * graft_tensor_f32(y)[i];
    return l;
}

/* Training the backbone too: every float weight of the source model made
 * trainable (BatchNormalization's statistics excepted), the gradient of
 * L = <u, logits> reaches every one of them through the TF-style ops
 * (Transpose, Pad, Conv incl. depthwise, BN, Clip, MaxPool, Reshape with a
 * computed shape, MatMul, Add, Mul, Identity), and its directional
 * derivative along a random direction v matches central differences:
 *   |<grad, v> - (L(w + e v) - L(w - e v)) / 2e| <= 2e-2 * sum_w |<grad_w, v_w>|
 * (relative to the sum of the per-weight terms: they may cancel). */
static void check_backbone_gradient(const char *src, const graft_tensor *x, const char *logits)
{
    graft_error err = {0};
    graft_graph *g = cu_import(src, &err);
    int32_t lv = g ? graft_graph_find_value(g, logits) : -1;
    CU_CHECK(lv >= 0, "backbone gradient: re-import: %s", err.msg);
    if (lv < 0) {
        graft_graph_destroy(g);
        return;
    }
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const graft_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            graft_value *v = n->inputs[k] >= 0 ? &g->values[n->inputs[k]] : NULL;
            if (v && v->kind == GRAFT_VALUE_INITIALIZER && v->data && v->data->dtype == GRAFT_FLOAT)
                v->trainable = !(strcmp(n->op_type, "BatchNormalization") == 0 && k >= 3) &&
                               v->data->rank > 0; /* not the scalar Clip / Rescaling bounds */
        }
    }
    graft_shape sh = {x->rank, {0}};
    memcpy(sh.dims, x->dims, sizeof sh.dims);
    graft_plan_options o = graft_plan_options_default();
    o.training = true;
    o.fetches = &lv;
    o.n_fetches = 1;
    graft_plan *p = NULL;
    graft_tensor *u = NULL, **dir = calloc((size_t)g->n_values, sizeof *dir);
    if (graft_plan_create(g, &o, 1, &sh, &p, &err) != GRAFT_OK) {
        CU_CHECK(0, "backbone gradient: training plan over the whole model: %s", err.msg);
        goto out;
    }
    double l0 = probe_loss(p, x, NULL, &err);
    const graft_tensor *y = graft_plan_output(p, 0);
    CU_CHECK(!isnan(l0) && y, "backbone gradient: forward: %s", err.msg);
    if (isnan(l0) || !y)
        goto out;
    u = cu_rand_tensor(y->rank, y->dims, 11);
    if (graft_plan_backward(p, (const graft_tensor *const *)&u, &err) != GRAFT_OK) {
        CU_CHECK(0, "backbone gradient: backward through the whole model: %s", err.msg);
        goto out;
    }
    /* <grad, v> over every trainable weight, v random, scaled to each weight's size */
    double analytic = 0, scale_sum = 0;
    int n_params = 0;
    for (int32_t i = 0; i < g->n_values; i++) {
        graft_value *val = &g->values[i];
        if (!val->trainable)
            continue;
        const graft_tensor *gr = graft_plan_grad(p, i);
        CU_CHECK(gr != NULL, "backbone gradient: '%s' got no gradient", val->name);
        if (!gr)
            continue;
        dir[i] = cu_rand_tensor(val->data->rank, val->data->dims, 100 + (uint64_t)i);
        double scale = 0;
        for (int64_t j = 0; j < graft_tensor_nelem(val->data); j++)
            scale = fmax(scale, fabs(graft_tensor_f32(val->data)[j]));
        double part = 0;
        for (int64_t j = 0; j < graft_tensor_nelem(dir[i]); j++) {
            graft_tensor_f32(dir[i])[j] *= (float)fmax(scale, 1e-2);
            part += (double)graft_tensor_f32(gr)[j] * graft_tensor_f32(dir[i])[j];
        }
        analytic += part;
        scale_sum += fabs(part);
        n_params++;
    }
    /* small: ReLU, Clip and MaxPool kinks make larger steps disagree (at 1e-3
     * the first conv's derivative is off by 15%); float32 noise stays ~1e-4 */
    const double e = 1e-4;
    double l[2];
    for (int side = 0; side < 2; side++) {
        for (int32_t i = 0; i < g->n_values; i++)
            for (int64_t j = 0; dir[i] && j < graft_tensor_nelem(dir[i]); j++)
                graft_tensor_f32(g->values[i].data)[j] +=
                    (float)((side ? -2 : 1) * e) * graft_tensor_f32(dir[i])[j];
        l[side] = probe_loss(p, x, u, &err);
    }
    double numeric = (l[0] - l[1]) / (2 * e);
    printf("  backbone gradient over %d weights: <grad, v> %.6g, central difference %.6g "
           "(sum of |terms| %.4g)\n", n_params, analytic, numeric, scale_sum);
    CU_CHECK(fabs(analytic - numeric) <= 2e-2 * fmax(scale_sum, 1e-3),
             "backbone gradient: <grad, v> %.6g but the central difference is %.6g", analytic,
             numeric);
out:
    for (int32_t i = 0; dir && i < g->n_values; i++)
        graft_tensor_destroy(dir[i]);
    free(dir);
    graft_tensor_destroy(u);
    graft_plan_destroy(p);
    graft_graph_destroy(g);
}

static void run_model(const tf_model *m, const char *dir)
{
    cu_tol tol = cu_tol_models(); /* 1e-4 * max|ref| for float32 */
    const char *src = cu_keep(cu_fmt("%s/model.onnx", dir));
    graft_error err = {0};
    graft_graph *g = cu_import(src, &err);
    CU_CHECK(g != NULL, "import: %s", err.msg);
    if (!g)
        return;

    /* 1-2. the ops, then every data set */
    char ops[512];
    if (graft_graph_unsupported_ops(g, NULL, 0, ops, sizeof ops) > 0) {
        CU_CHECK(0, "%s has ops graft cannot run: %s", m->name, ops);
        graft_graph_destroy(g);
        return;
    }
    /* the logits: the Softmax's input, behind a SavedModel's output Identity */
    const graft_node *last = NULL;
    for (int32_t v = g->outputs[0], hop = 0; hop < 2 && v >= 0; hop++) {
        int32_t p = g->values[v].producer;
        last = p >= 0 ? &g->nodes[p] : NULL;
        v = last && !strcmp(last->op_type, "Identity") ? last->inputs[0] : -1;
    }
    CU_CHECK(last && !strcmp(last->op_type, "Softmax") && last->n_inputs == 1,
             "the graph output does not come from the Softmax");
    const char *logits = last ? cu_keep(g->values[last->inputs[0]].name) : NULL;
    int n_sets = cu_run_all_sets(g, dir, &tol);
    for (int k = 0; k < n_sets; k++) {
        const char *set = cu_keep(cu_fmt("%s/test_data_set_%d", dir, k));
        check_value(g, set, m->cut, "features.pb", &tol);
        if (logits)
            check_value(g, set, logits, "logits.pb", &tol);
        cu_cli_run_set(src, set, &tol);
    }

    /* 3. the automatic cut */
    graft_feature_info fi;
    if (graft_surgery_find_features(g, &fi, &err) != GRAFT_OK) {
        CU_CHECK(0, "automatic cut failed on a classifier: %s", err.msg);
        graft_graph_destroy(g);
        return;
    }
    printf("  automatic cut at '%s': %s\n", g->values[fi.value].name, fi.reason);
    CU_CHECK(!strcmp(g->values[fi.value].name, m->cut), "automatic cut at '%s', want '%s'",
             g->values[fi.value].name, m->cut);

    /* 4-6. new head, training, export, ONNX Runtime; the backbone's gradient */
    graft_tensor *x = NULL;
    if (cu_read_inputs(cu_fmt("%s/test_data_set_0", dir), &x, 1) == 1) {
        if (logits)
            check_backbone_gradient(src, x, logits);
        int64_t *lab = malloc(sizeof(int64_t) * (size_t)x->dims[0]);
        for (int64_t i = 0; lab && i < x->dims[0]; i++)
            lab[i] = i % 3;
        if (lab && cu_finetune_export(g, src, NULL, x, lab, 3, 4, m->width, &tol, NULL)) {
            const char *out = cu_keep(cu_fmt("%s/ft.onnx", cu_work()));
            check_symbolic_input(g, out);
            CU_CHECK(cu_py("symbolic_batch '%s'", out) == 0,
                     "python check failed: symbolic_batch '%s'", out);
        }
        free(lab);
        graft_tensor_destroy(x);
    }
    graft_graph_destroy(g);

    /* 7. the user's path on a uint8-input model: `graft train` feeds the
     * images as whole 0..255 values (the model rescales them itself), and
     * the export keeps the uint8 input */
    const char *cli = getenv("GRAFT_CLI");
    if (!strncmp(m->name, "uint8", 5) && cli && *cli &&
        cu_exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
        printf("-- graft train (CLI) on the uint8-input model\n");
        const char *ft = cu_keep(cu_fmt("%s/cli_ft.onnx", cu_work()));
        const char *log = cu_keep(cu_fmt("%s/cli_train.txt", cu_work()));
        int rc = cu_run_capture(cu_fmt("'%s' train --model '%s' --classes 0,1,2 --per-class 10 "
                                       "--epochs 2 --quiet --out '%s'",
                                       cli, src, ft),
                                log);
        CU_CHECK(rc == 0, "graft train on the uint8 model: exit status %d (log %s)", rc, log);
        if (rc != 0) {
            cu_sh("tail -3 '%s'", log);
        } else {
            cu_sh("grep -E 'test accuracy' '%s'", log);
            CU_CHECK(cu_py("checker '%s'", ft) == 0, "python check failed: checker '%s'", ft);
            CU_CHECK(cu_py("backbone_same '%s' '%s' 4", ft, src) == 0,
                     "python check failed: backbone_same '%s' '%s' 4", ft, src);
            graft_graph *h = cu_import(ft, &err);
            CU_CHECK(h && h->values[h->inputs[0]].dtype == GRAFT_UINT8,
                     "the export's input is not uint8");
            graft_graph_destroy(h);
        }
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc != 2) {
        fprintf(stderr, "usage: graft_tfstyle MODEL\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        const tf_model *m = &models[i];
        if (strcmp(m->name, argv[1]) != 0)
            continue;
        bool skip = false;
        const char *dir = model_dir(m, &skip);
        if (skip) {
            printf("SKIP: %s cannot be generated here (see the line above)\n", m->name);
            return 77;
        }
        if (dir) {
            printf("model %s: %s\n", m->name, dir);
            run_model(m, dir);
        }
        return cu_finish(m->name);
    }
    fprintf(stderr, "unknown model %s\n", argv[1]);
    return 2;
}
