/* Surgery tests: the automatic cut on hand-built classifier shapes (ResNet,
 * CNTK MatMul+Add, SqueezeNet conv classifier), the refusals, --cut names,
 * and the attached head (structure, opset forms, init, and a run checked
 * against a head computed by hand from the fetched features). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes_util.h"

#define IN(...) ((const char *const[]){__VA_ARGS__, NULL})

static const int64_t pads1[4] = {1, 1, 1, 1};

/* X[N,3,8,8] -> Conv -> Relu -> GAP -> Flatten -> Gemm -> Softmax -> prob */
static graft_graph *resnet_like(int64_t opset)
{
    graft_graph *g = pu_graph(opset);
    graft_error err = {0};
    pu_input(g, "X", 4, (int64_t[]){-1, 3, 8, 8});
    pu_init(g, "W1", 4, (int64_t[]){4, 3, 3, 3}, 0.5f, 0, NULL);
    pu_init(g, "b1", 1, (int64_t[]){4}, 0.1f, 0, NULL);
    int32_t c = pu_node(g, "Conv", "conv1", IN("X", "W1", "b1"), "c1");
    assert_int_equal(graft_node_set_ints(g, c, "pads", 4, pads1, &err), GRAFT_OK);
    pu_node(g, "Relu", "relu1", IN("c1"), "r1");
    pu_node(g, "GlobalAveragePool", "gap", IN("r1"), "gap");
    int32_t f = pu_node(g, "Flatten", "flatten", IN("gap"), "flat");
    assert_int_equal(graft_node_set_int(g, f, "axis", 1, &err), GRAFT_OK);
    pu_init(g, "Wfc", 2, (int64_t[]){10, 4}, 0.5f, 0, NULL);
    pu_init(g, "bfc", 1, (int64_t[]){10}, 0.1f, 0, NULL);
    int32_t m = pu_node(g, "Gemm", "fc", IN("flat", "Wfc", "bfc"), "logits_old");
    assert_int_equal(graft_node_set_int(g, m, "transB", 1, &err), GRAFT_OK);
    pu_node(g, "Softmax", "softmax", IN("logits_old"), "prob");
    pu_output(g, "prob");
    return g;
}

static void test_find_resnet_like(void **state)
{
    (void)state;
    graft_graph *g = resnet_like(13);
    graft_feature_info fi;
    graft_error err = {0};
    assert_int_equal(graft_surgery_find_features(g, &fi, &err), GRAFT_OK);
    assert_int_equal(fi.value, pu_val(g, "flat"));
    assert_int_equal(fi.classifier_node, graft_graph_find_node(g, "fc"));
    assert_non_null(strstr(fi.reason, "flat"));
    graft_graph_destroy(g);
}

/* CNTK mnist style: ... MaxPool -> Reshape(const) -> MatMul -> Add(bias) */
static graft_graph *mnist_like(void)
{
    graft_graph *g = pu_graph(8);
    graft_error err = {0};
    pu_input(g, "Input3", 4, (int64_t[]){1, 1, 8, 8});
    pu_init(g, "P1", 4, (int64_t[]){4, 1, 3, 3}, 0.5f, 0, NULL);
    int32_t c = pu_node(g, "Conv", "Convolution28", IN("Input3", "P1"), "conv_out");
    assert_int_equal(graft_node_set_string(g, c, "auto_pad", "SAME_UPPER", &err), GRAFT_OK);
    pu_init(g, "P2", 3, (int64_t[]){4, 1, 1}, 0.1f, 0, NULL);
    pu_node(g, "Add", "Plus30", IN("conv_out", "P2"), "plus_out");
    pu_node(g, "Relu", "ReLU32", IN("plus_out"), "relu_out");
    int32_t p = pu_node(g, "MaxPool", "Pooling66", IN("relu_out"), "pool_out");
    assert_int_equal(graft_node_set_ints(g, p, "kernel_shape", 2, (int64_t[]){2, 2}, &err), 0);
    assert_int_equal(graft_node_set_ints(g, p, "strides", 2, (int64_t[]){2, 2}, &err), 0);
    pu_init_i64(g, "shape", 1, (int64_t[]){2}, (int64_t[]){1, 64});
    pu_node(g, "Reshape", "Times212_reshape0", IN("pool_out", "shape"), "pool_reshaped");
    pu_init(g, "P193", 2, (int64_t[]){64, 10}, 0.3f, 0, NULL);
    pu_node(g, "MatMul", "Times212", IN("pool_reshaped", "P193"), "times_out");
    pu_init(g, "P194", 2, (int64_t[]){1, 10}, 0.1f, 0, NULL);
    pu_node(g, "Add", "Plus214", IN("times_out", "P194"), "Plus214_Output_0");
    pu_output(g, "Plus214_Output_0");
    return g;
}

static void test_find_matmul_add(void **state)
{
    (void)state;
    graft_graph *g = mnist_like();
    graft_feature_info fi;
    graft_error err = {0};
    assert_int_equal(graft_surgery_find_features(g, &fi, &err), GRAFT_OK);
    assert_int_equal(fi.value, pu_val(g, "pool_reshaped"));
    assert_int_equal(fi.classifier_node, graft_graph_find_node(g, "Times212"));
    graft_graph_destroy(g);
}

/* SqueezeNet 1.0 style: ... Relu -> Dropout -> Conv1x1 -> Relu -> GAP -> Softmax (4-D) */
static graft_graph *squeezenet_like(bool flatten, bool softmax)
{
    graft_graph *g = pu_graph(7);
    graft_error err = {0};
    pu_input(g, "data", 4, (int64_t[]){1, 3, 9, 9});
    pu_init(g, "conv1_w", 4, (int64_t[]){8, 3, 3, 3}, 0.5f, 0, NULL);
    pu_node(g, "Conv", "", IN("data", "conv1_w"), "conv1");
    pu_node(g, "Relu", "", IN("conv1"), "fire9/concat_1");
    int32_t d = pu_node(g, "Dropout", "", IN("fire9/concat_1"), "fire9/concat_2");
    assert_int_equal(graft_node_set_float(g, d, "ratio", 0.5f, &err), GRAFT_OK);
    pu_init(g, "conv10_w", 4, (int64_t[]){6, 8, 1, 1}, 0.5f, 0, NULL);
    pu_init(g, "conv10_b", 1, (int64_t[]){6}, 0.1f, 0, NULL);
    pu_node(g, "Conv", "", IN("fire9/concat_2", "conv10_w", "conv10_b"), "conv10_1");
    pu_node(g, "Relu", "", IN("conv10_1"), "conv10_2");
    pu_node(g, "GlobalAveragePool", "", IN("conv10_2"), "pool10_1");
    const char *last = "pool10_1";
    if (flatten) {
        pu_node(g, "Flatten", "", IN(last), "flat");
        last = "flat";
    }
    if (softmax) {
        pu_node(g, "Softmax", "", IN(last), "softmaxout_1");
        last = "softmaxout_1";
    }
    pu_output(g, last);
    return g;
}

static void test_find_squeezenet_like(void **state)
{
    (void)state;
    for (int variant = 0; variant < 3; variant++) {
        graft_graph *g = squeezenet_like(variant != 0, variant != 2);
        graft_feature_info fi;
        graft_error err = {0};
        assert_int_equal(graft_surgery_find_features(g, &fi, &err), GRAFT_OK);
        /* the old head's Dropout is stepped over */
        assert_int_equal(fi.value, pu_val(g, "fire9/concat_1"));
        assert_string_equal(g->nodes[fi.classifier_node].op_type, "Conv");
        graft_graph_destroy(g);
    }
}

/* MobileNetV3 style: GAP -> Conv1x1 -> HardSwish -> Dropout -> Conv1x1 -> Flatten */
static void test_find_conv_after_pool(void **state)
{
    (void)state;
    graft_graph *g = pu_graph(13);
    pu_input(g, "X", 4, (int64_t[]){-1, 3, 8, 8});
    pu_init(g, "W1", 4, (int64_t[]){6, 3, 3, 3}, 0.5f, 0, NULL);
    pu_node(g, "Conv", "", IN("X", "W1"), "c1");
    pu_node(g, "GlobalAveragePool", "", IN("c1"), "gap");
    pu_init(g, "W2", 4, (int64_t[]){12, 6, 1, 1}, 0.5f, 0, NULL);
    pu_node(g, "Conv", "pre", IN("gap", "W2"), "c2");
    pu_node(g, "HardSwish", "", IN("c2"), "h");
    pu_node(g, "Dropout", "", IN("h"), "d");
    pu_init(g, "W3", 4, (int64_t[]){10, 12, 1, 1}, 0.5f, 0, NULL);
    pu_node(g, "Conv", "cls", IN("d", "W3"), "c3");
    pu_node(g, "Flatten", "", IN("c3"), "logits");
    pu_output(g, "logits");
    graft_feature_info fi;
    graft_error err = {0};
    assert_int_equal(graft_surgery_find_features(g, &fi, &err), GRAFT_OK);
    assert_int_equal(fi.value, pu_val(g, "h"));
    assert_int_equal(fi.classifier_node, graft_graph_find_node(g, "cls"));
    graft_head_spec hs = graft_head_spec_default();
    graft_head_info hi;
    assert_int_equal(graft_surgery_cut_and_attach(g, fi.value, &hs, &hi, &err), GRAFT_OK);
    assert_int_equal(hi.n_features, 12);
    graft_graph_destroy(g);
}

static void expect_refusal(graft_graph *g)
{
    graft_feature_info fi;
    graft_error err = {0};
    assert_int_equal(graft_surgery_find_features(g, &fi, &err), GRAFT_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "--cut"));
    assert_true(strlen(fi.reason) > 10);
    assert_int_equal(fi.value, -1);
    assert_null(strchr(err.msg, '\n'));
}

static void test_refusals(void **state)
{
    (void)state;
    graft_error err = {0};
    /* detection tensor: Conv -> Conv1x1 -> Reshape -> Transpose -> Y[1,100,85] */
    graft_graph *g = pu_graph(13);
    pu_input(g, "X", 4, (int64_t[]){1, 3, 10, 10});
    pu_init(g, "W1", 4, (int64_t[]){8, 3, 1, 1}, 0.5f, 0, NULL);
    pu_node(g, "Conv", "", IN("X", "W1"), "c1");
    pu_node(g, "Relu", "", IN("c1"), "r1");
    pu_init(g, "W2", 4, (int64_t[]){85, 8, 1, 1}, 0.5f, 0, NULL);
    pu_node(g, "Conv", "", IN("r1", "W2"), "c2");
    pu_init_i64(g, "S", 1, (int64_t[]){3}, (int64_t[]){1, 85, 100});
    pu_node(g, "Reshape", "", IN("c2", "S"), "rs");
    int32_t t = pu_node(g, "Transpose", "", IN("rs"), "Y");
    assert_int_equal(graft_node_set_ints(g, t, "perm", 3, (int64_t[]){0, 2, 1}, &err), 0);
    pu_output(g, "Y");
    g->values[pu_val(g, "Y")].rank = 3;
    memcpy(g->values[pu_val(g, "Y")].dims, (int64_t[]){1, 100, 85}, 3 * sizeof(int64_t));
    expect_refusal(g);
    /* undeclared rank: the walk stops at the Transpose */
    g->values[pu_val(g, "Y")].rank = -1;
    expect_refusal(g);
    graft_graph_destroy(g);

    /* embedding: Conv1x1(3->32) -> GAP -> Flatten -> emb */
    g = pu_graph(13);
    pu_input(g, "X", 4, (int64_t[]){1, 3, 8, 8});
    pu_init(g, "We", 4, (int64_t[]){32, 3, 1, 1}, 0.5f, 0, NULL);
    pu_node(g, "Conv", "", IN("X", "We"), "c");
    pu_node(g, "GlobalAveragePool", "", IN("c"), "gp");
    pu_node(g, "Flatten", "", IN("gp"), "emb");
    pu_output(g, "emb");
    expect_refusal(g);
    graft_graph_destroy(g);

    /* a SqueezeNet-like tail without softmax and without the classifier
     * ReLU looks like an embedding too */
    g = squeezenet_like(true, false);
    int32_t act = g->values[pu_val(g, "conv10_2")].producer;
    g->nodes[act].op_type = graft_graph_strdup(g, "Sigmoid");
    expect_refusal(g);
    graft_graph_destroy(g);

    /* two outputs */
    g = resnet_like(13);
    pu_output(g, "gap");
    expect_refusal(g);
    graft_graph_destroy(g);

    /* no classifier at all */
    g = pu_graph(13);
    pu_input(g, "X", 2, (int64_t[]){-1, 4});
    pu_node(g, "Relu", "", IN("X"), "Y");
    pu_output(g, "Y");
    expect_refusal(g);
    graft_graph_destroy(g);
}

static void test_resolve_cut(void **state)
{
    (void)state;
    graft_graph *g = resnet_like(13);
    graft_error err = {0};
    int32_t v = -1;
    assert_int_equal(graft_surgery_resolve_cut(g, "r1", &v, &err), GRAFT_OK);
    assert_int_equal(v, pu_val(g, "r1"));
    assert_int_equal(graft_surgery_resolve_cut(g, "relu1", &v, &err), GRAFT_OK); /* node */
    assert_int_equal(v, pu_val(g, "r1"));
    assert_int_equal(graft_surgery_resolve_cut(g, "X", &v, &err), GRAFT_OK);
    assert_int_equal(graft_surgery_resolve_cut(g, "nope", &v, &err), GRAFT_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "'nope'"));
    assert_int_equal(v, -1);
    assert_int_equal(graft_surgery_resolve_cut(g, "fla", &v, &err), GRAFT_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "'flat'")); /* suggestion */
    assert_int_equal(graft_surgery_resolve_cut(g, "W1", &v, &err), GRAFT_ERR_ARG);
    graft_graph_destroy(g);
}

static const graft_node *producer(const graft_graph *g, int32_t v)
{
    int32_t p = g->values[v].producer;
    assert_true(p >= 0);
    assert_false(g->nodes[p].removed);
    return &g->nodes[p];
}

/* The head's op chain from head_input's consumer to the output. */
static void chain(const graft_graph *g, int32_t out, char *buf, size_t size)
{
    const char *ops[16];
    int n = 0;
    int32_t v = out;
    while (g->values[v].producer >= 0 && n < 16) {
        const graft_node *nd = producer(g, v);
        if (strncmp(nd->name, "head/", 5) != 0)
            break;
        ops[n++] = nd->op_type;
        v = nd->inputs[0];
    }
    buf[0] = 0;
    for (int i = n - 1; i >= 0; i--) {
        strncat(buf, ops[i], size - strlen(buf) - 1);
        if (i)
            strncat(buf, ",", size - strlen(buf) - 1);
    }
}

static void test_attach_dense_features(void **state)
{
    (void)state;
    graft_graph *g = resnet_like(13);
    graft_error err = {0};
    graft_feature_info fi;
    assert_int_equal(graft_surgery_find_features(g, &fi, &err), GRAFT_OK);
    graft_head_spec hs = graft_head_spec_default();
    hs.n_classes = 5;
    graft_head_info hi;
    assert_int_equal(graft_surgery_cut_and_attach(g, fi.value, &hs, &hi, &err), GRAFT_OK);
    assert_int_equal(graft_graph_verify(g, &err), GRAFT_OK);
    assert_int_equal(hi.n_features, 4);
    assert_int_equal(hi.features, pu_val(g, "flat"));
    assert_int_equal(hi.head_input, hi.features);
    assert_int_equal(g->n_outputs, 1);
    assert_int_equal(g->outputs[0], hi.probabilities);
    const graft_value *pv = &g->values[hi.probabilities];
    assert_string_equal(pv->name, "probabilities");
    assert_int_equal(pv->rank, 2);
    assert_int_equal(pv->dims[0], -1);
    assert_int_equal(pv->dims[1], 5);
    /* the input's own batch symbol (pu_input names it N) */
    assert_string_equal(pv->dim_params[0], g->values[g->inputs[0]].dim_params[0]);
    assert_true(pv->is_graph_output);
    assert_false(g->values[pu_val(g, "prob")].is_graph_output);
    assert_true(g->nodes[g->values[pu_val(g, "logits_old")].producer].removed);
    assert_int_equal(graft_graph_find_node(g, "fc"), -1); /* removed */
    assert_true(graft_graph_find_node(g, "conv1") >= 0);
    char buf[256];
    chain(g, hi.probabilities, buf, sizeof buf);
    assert_string_equal(buf, "Gemm,Softmax");
    const graft_node *gemm = producer(g, hi.logits);
    assert_int_equal(graft_node_attr_int(gemm, "transB", 0), 1);
    const graft_tensor *w = g->values[gemm->inputs[1]].data;
    assert_int_equal(w->dims[0], 5);
    assert_int_equal(w->dims[1], 4);
    assert_string_equal(g->values[gemm->inputs[1]].name, "head.fc.weight");
    assert_string_equal(g->values[gemm->inputs[2]].name, "head.fc.bias");
    /* Xavier uniform for the output layer, zero bias */
    double lim = sqrt(6.0 / 9.0);
    for (int i = 0; i < 20; i++)
        assert_true(fabs(graft_tensor_f32(w)[i]) <= lim);
    for (int i = 0; i < 5; i++)
        assert_true(graft_tensor_f32(g->values[gemm->inputs[2]].data)[i] == 0.0f);
    assert_true(hi.first_head_node >= 0);
    assert_int_equal(graft_graph_compact(g, &err), GRAFT_OK);
    graft_graph_destroy(g);
}

/* Cut at the 4-D Relu output: GAP + Flatten + hidden + dropout. */
static void check_pool_head(int64_t opset)
{
    graft_graph *g = resnet_like(opset);
    graft_error err = {0};
    int32_t cut = -1;
    assert_int_equal(graft_surgery_resolve_cut(g, "relu1", &cut, &err), GRAFT_OK);
    graft_head_spec hs = graft_head_spec_default();
    hs.n_classes = 3;
    hs.hidden = 6;
    hs.dropout = 0.25f;
    hs.output_name = "scores";
    graft_head_info hi;
    assert_int_equal(graft_surgery_cut_and_attach(g, cut, &hs, &hi, &err), GRAFT_OK);
    assert_int_equal(graft_graph_verify(g, &err), GRAFT_OK);
    assert_int_equal(hi.n_features, 4);
    char buf[256];
    chain(g, hi.probabilities, buf, sizeof buf);
    assert_string_equal(buf, "GlobalAveragePool,Flatten,Gemm,Relu,Dropout,Gemm,Softmax");
    assert_string_equal(g->values[hi.probabilities].name, "scores");
    assert_int_equal(graft_graph_find_node(g, "gap"), -1);
    const graft_node *drop = producer(g, producer(g, hi.logits)->inputs[0]);
    assert_string_equal(drop->op_type, "Dropout");
    if (opset >= 12) {
        assert_int_equal(drop->n_inputs, 2);
        const graft_tensor *r = g->values[drop->inputs[1]].data;
        assert_non_null(r);
        assert_int_equal(r->rank, 0);
        assert_true(graft_tensor_f32(r)[0] == 0.25f);
        assert_null(graft_node_attr(drop, "ratio"));
    } else {
        assert_int_equal(drop->n_inputs, 1);
        assert_true(graft_node_attr_float(drop, "ratio", 0) == 0.25f);
    }
    const graft_node *fc1 = producer(g, producer(g, drop->inputs[0])->inputs[0]);
    assert_string_equal(fc1->op_type, "Gemm");
    assert_string_equal(g->values[fc1->inputs[1]].name, "head.fc1.weight");
    const graft_node *sm = producer(g, hi.probabilities);
    assert_int_equal(graft_node_attr_int(sm, "axis", -99), 1);
    /* unique node names */
    for (int32_t i = 0; i < g->n_nodes; i++)
        for (int32_t j = i + 1; j < g->n_nodes; j++)
            if (!g->nodes[i].removed && !g->nodes[j].removed && *g->nodes[i].name)
                assert_string_not_equal(g->nodes[i].name, g->nodes[j].name);

    /* run: batch 3; the head recomputed here from the fetched features */
    graft_shape in = {4, {3, 3, 8, 8}};
    graft_tensor *feat = pu_run(g, &in, 11, cut);
    graft_tensor *prob = pu_run(g, &in, 11, -1);
    if (!feat || !prob) {
        graft_tensor_destroy(feat);
        graft_tensor_destroy(prob);
        graft_graph_destroy(g);
        fail_msg("executor could not run the attached head");
    }
    const float *w1 = graft_tensor_f32(g->values[fc1->inputs[1]].data);
    const float *b1 = graft_tensor_f32(g->values[fc1->inputs[2]].data);
    const graft_node *fc2 = producer(g, hi.logits);
    const float *w2 = graft_tensor_f32(g->values[fc2->inputs[1]].data);
    const float *b2 = graft_tensor_f32(g->values[fc2->inputs[2]].data);
    const float *f = graft_tensor_f32(feat);
    const float *p = graft_tensor_f32(prob);
    assert_int_equal(prob->dims[0], 3);
    assert_int_equal(prob->dims[1], 3);
    for (int n = 0; n < 3; n++) {
        double pooled[4], h[6], z[3], zmax = -1e30, sum = 0;
        for (int c = 0; c < 4; c++) {
            pooled[c] = 0;
            for (int i = 0; i < 64; i++)
                pooled[c] += f[(n * 4 + c) * 64 + i] / 64.0;
        }
        for (int j = 0; j < 6; j++) {
            h[j] = b1[j];
            for (int c = 0; c < 4; c++)
                h[j] += w1[j * 4 + c] * pooled[c];
            h[j] = h[j] > 0 ? h[j] : 0;
        }
        for (int k = 0; k < 3; k++) {
            z[k] = b2[k];
            for (int j = 0; j < 6; j++)
                z[k] += w2[k * 6 + j] * h[j];
            zmax = z[k] > zmax ? z[k] : zmax;
        }
        for (int k = 0; k < 3; k++)
            sum += exp(z[k] - zmax);
        for (int k = 0; k < 3; k++)
            assert_float_equal(p[n * 3 + k], exp(z[k] - zmax) / sum, 1e-5);
    }
    graft_tensor_destroy(feat);
    graft_tensor_destroy(prob);
    graft_graph_destroy(g);
}

static void test_attach_pool_hidden_opset13(void **state)
{
    (void)state;
    check_pool_head(13);
}

static void test_attach_pool_hidden_opset11(void **state)
{
    (void)state;
    check_pool_head(11);
}

/* The raw-pixel baseline: a graph that is only an input. */
static void test_attach_raw_input(void **state)
{
    (void)state;
    graft_graph *g = pu_graph(0);
    int32_t x = pu_input(g, "X", 4, (int64_t[]){-1, 1, 28, 28});
    graft_error err = {0};
    graft_head_spec hs = graft_head_spec_default();
    hs.n_classes = 5;
    hs.no_pool = true;
    hs.seed = 7;
    graft_head_info hi;
    assert_int_equal(graft_surgery_cut_and_attach(g, x, &hs, &hi, &err), GRAFT_OK);
    assert_int_equal(hi.n_features, 784);
    assert_int_equal(graft_graph_opset(g, ""), 13); /* added */
    char buf[256];
    chain(g, hi.probabilities, buf, sizeof buf);
    assert_string_equal(buf, "Flatten,Gemm,Softmax");
    assert_int_equal(graft_graph_verify(g, &err), GRAFT_OK);
    graft_shape in = {4, {2, 1, 28, 28}};
    graft_tensor *p = pu_run(g, &in, 3, -1);
    assert_non_null(p);
    assert_int_equal(p->dims[0], 2);
    assert_int_equal(p->dims[1], 5);
    for (int n = 0; n < 2; n++) {
        double s = 0;
        for (int k = 0; k < 5; k++)
            s += graft_tensor_f32(p)[n * 5 + k];
        assert_float_equal(s, 1.0, 1e-5);
    }
    graft_tensor_destroy(p);
    graft_graph_destroy(g);
}

static void head_weights(uint64_t seed, int hidden, float *out, int n)
{
    graft_graph *g = resnet_like(13);
    graft_error err = {0};
    graft_head_spec hs = graft_head_spec_default();
    hs.n_classes = 4;
    hs.hidden = hidden;
    hs.seed = seed;
    graft_head_info hi;
    assert_int_equal(graft_surgery_cut_and_attach(g, pu_val(g, "flat"), &hs, &hi, &err), 0);
    const graft_tensor *w = g->values[pu_val(g, hidden ? "head.fc1.weight" : "head.fc.weight")].data;
    assert_true(graft_tensor_nelem(w) >= n);
    memcpy(out, w->data, (size_t)n * sizeof *out);
    graft_graph_destroy(g);
}

/* B11 at the cut: Reshape to [1, K] before the classifier must not tie the
 * head to batch 1; the file's shape tensor itself stays untouched. */
static void test_baked_batch_reshape(void **state)
{
    (void)state;
    graft_graph *g = mnist_like();
    graft_error err = {0};
    graft_head_spec hs = graft_head_spec_default();
    hs.n_classes = 3;
    graft_head_info hi;
    assert_int_equal(graft_surgery_cut_and_attach(g, pu_val(g, "pool_reshaped"), &hs, &hi, &err),
                     GRAFT_OK);
    assert_int_equal(hi.n_features, 64);
    const graft_tensor *orig = g->values[pu_val(g, "shape")].data;
    assert_int_equal(graft_tensor_i64(orig)[0], 1);
    assert_int_equal(graft_graph_verify(g, &err), GRAFT_OK);
    graft_shape in = {4, {3, 1, 8, 8}};
    graft_tensor *p = pu_run(g, &in, 4, -1);
    assert_non_null(p);
    assert_int_equal(p->dims[0], 3);
    assert_int_equal(p->dims[1], 3);
    graft_tensor_destroy(p);
    graft_graph_destroy(g);
}

static void test_init_deterministic(void **state)
{
    (void)state;
    float a[16], b[16], c[16];
    head_weights(1, 0, a, 16);
    head_weights(1, 0, b, 16);
    head_weights(2, 0, c, 16);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
}

/* He normal on the hidden layer: check the spread on a wide layer. */
static void test_init_he_statistics(void **state)
{
    (void)state;
    graft_graph *g = pu_graph(13);
    int32_t x = pu_input(g, "X", 2, (int64_t[]){-1, 1000});
    graft_error err = {0};
    graft_head_spec hs = graft_head_spec_default();
    hs.n_classes = 10;
    hs.hidden = 200;
    graft_head_info hi;
    assert_int_equal(graft_surgery_cut_and_attach(g, x, &hs, &hi, &err), GRAFT_OK);
    const graft_tensor *w = g->values[pu_val(g, "head.fc1.weight")].data;
    int64_t n = graft_tensor_nelem(w);
    assert_int_equal(n, 200000);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        s += graft_tensor_f32(w)[i];
        s2 += (double)graft_tensor_f32(w)[i] * graft_tensor_f32(w)[i];
    }
    double mean = s / (double)n, sd = sqrt(s2 / (double)n - mean * mean);
    assert_true(fabs(mean) < 0.002);
    assert_true(fabs(sd - sqrt(2.0 / 1000.0)) < 0.002);
    /* Xavier uniform on the output layer: bound sqrt(6/(200+10)) */
    const graft_tensor *w2 = g->values[pu_val(g, "head.fc2.weight")].data;
    double mx = 0;
    for (int64_t i = 0; i < graft_tensor_nelem(w2); i++)
        mx = fmax(mx, fabs(graft_tensor_f32(w2)[i]));
    assert_true(mx <= sqrt(6.0 / 210.0));
    assert_true(mx > 0.9 * sqrt(6.0 / 210.0));
    graft_graph_destroy(g);
}

static void test_output_name_clash(void **state)
{
    (void)state;
    /* the old output already named "probabilities" is taken over */
    graft_graph *g = resnet_like(13);
    graft_error err = {0};
    graft_head_spec hs = graft_head_spec_default();
    hs.output_name = "prob";
    graft_head_info hi;
    assert_int_equal(graft_surgery_cut_and_attach(g, pu_val(g, "flat"), &hs, &hi, &err), 0);
    assert_int_equal(hi.probabilities, pu_val(g, "prob"));
    assert_int_equal(graft_graph_verify(g, &err), GRAFT_OK);
    assert_int_equal(graft_graph_compact(g, &err), GRAFT_OK);
    assert_string_equal(g->nodes[g->values[hi.probabilities].producer].name, "head/softmax");
    graft_graph_destroy(g);
    /* a name the backbone still uses is refused before anything changes */
    g = resnet_like(13);
    hs.output_name = "r1";
    int32_t live = g->n_nodes;
    assert_int_equal(graft_surgery_cut_and_attach(g, pu_val(g, "flat"), &hs, &hi, &err),
                     GRAFT_ERR_ARG);
    assert_non_null(strstr(err.msg, "'r1'"));
    for (int32_t i = 0; i < live; i++)
        assert_false(g->nodes[i].removed);
    graft_graph_destroy(g);
}

static void test_unknown_spatial_dims(void **state)
{
    (void)state;
    graft_graph *g = resnet_like(13);
    graft_value *x = &g->values[pu_val(g, "X")];
    x->dims[2] = x->dims[3] = -1;
    graft_error err = {0};
    graft_head_spec hs = graft_head_spec_default();
    hs.no_pool = true;
    graft_head_info hi;
    /* flattening a map of unknown size: width unknown */
    assert_int_equal(graft_surgery_cut_and_attach(g, pu_val(g, "r1"), &hs, &hi, &err),
                     GRAFT_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "input 'X'"));
    /* pooled: the channel count is enough */
    hs.no_pool = false;
    assert_int_equal(graft_surgery_cut_and_attach(g, pu_val(g, "r1"), &hs, &hi, &err), 0);
    assert_int_equal(hi.n_features, 4);
    graft_graph_destroy(g);
}

static void test_fp16_features_get_cast(void **state)
{
    (void)state;
    graft_graph *g = resnet_like(13);
    g->values[pu_val(g, "flat")].dtype = GRAFT_FLOAT16;
    graft_error err = {0};
    graft_head_spec hs = graft_head_spec_default();
    graft_head_info hi;
    assert_int_equal(graft_surgery_cut_and_attach(g, pu_val(g, "flat"), &hs, &hi, &err), 0);
    char buf[256];
    chain(g, hi.probabilities, buf, sizeof buf);
    assert_string_equal(buf, "Cast,Gemm,Softmax");
    graft_graph_destroy(g);
    /* no value_info: the type comes from the fp16 input */
    g = resnet_like(13);
    g->values[pu_val(g, "X")].dtype = GRAFT_FLOAT16;
    assert_int_equal(graft_surgery_cut_and_attach(g, pu_val(g, "r1"), &hs, &hi, &err), 0);
    chain(g, hi.probabilities, buf, sizeof buf);
    assert_string_equal(buf, "Cast,GlobalAveragePool,Flatten,Gemm,Softmax");
    graft_graph_destroy(g);
}

static void test_bad_args(void **state)
{
    (void)state;
    graft_graph *g = resnet_like(13);
    graft_error err = {0};
    graft_head_spec hs = graft_head_spec_default();
    graft_head_info hi;
    hs.n_classes = 1;
    assert_int_equal(graft_surgery_cut_and_attach(g, pu_val(g, "flat"), &hs, &hi, &err),
                     GRAFT_ERR_ARG);
    hs.n_classes = 3;
    hs.dropout = 1.5f;
    assert_int_equal(graft_surgery_cut_and_attach(g, pu_val(g, "flat"), &hs, &hi, &err),
                     GRAFT_ERR_ARG);
    hs.dropout = 0;
    assert_int_equal(graft_surgery_cut_and_attach(g, pu_val(g, "W1"), &hs, &hi, &err),
                     GRAFT_ERR_ARG);
    assert_int_equal(graft_surgery_cut_and_attach(g, 9999, &hs, &hi, &err), GRAFT_ERR_ARG);
    graft_graph_destroy(g);
}

/* The re-headed graph exports as a model onnx.checker(full_check) accepts, at
 * the source opset: the head uses only ops valid there. */
static int checker(const graft_graph *g, const char *tag)
{
    const char *py = getenv("GRAFT_PYTHON");
    const char *bd = getenv("GRAFT_BUILD_DIR");
    if (!py || !bd)
        return 77;
    char path[1024], cmd[4096];
    snprintf(path, sizeof path, "%s/tests/passes_surgery_%s.onnx", bd, tag);
    graft_error err = {0};
    graft_onnx_export_options eo = graft_onnx_export_options_default();
    if (graft_onnx_export_file(g, path, &eo, &err) != GRAFT_OK)
        fail_msg("export: %s", err.msg);
    snprintf(cmd, sizeof cmd,
             "%s -c 'import onnx,sys; m=onnx.load(sys.argv[1]); "
             "onnx.checker.check_model(m, full_check=True); "
             "o=m.graph.output; assert len(o)==1 and o[0].name==\"probabilities\"' %s",
             py, path);
    int rc = system(cmd);
    remove(path);
    return rc;
}

static void test_export_checker(void **state)
{
    (void)state;
    if (!getenv("GRAFT_PYTHON") || !getenv("GRAFT_BUILD_DIR"))
        skip();
    const int64_t opsets[] = {7, 11, 13};
    for (int i = 0; i < 3; i++) {
        graft_graph *g = resnet_like(opsets[i]);
        graft_error err = {0};
        graft_head_spec hs = graft_head_spec_default();
        hs.n_classes = 3;
        hs.hidden = 4;
        hs.dropout = 0.5f;
        graft_head_info hi;
        assert_int_equal(graft_surgery_cut_and_attach(g, pu_val(g, "r1"), &hs, &hi, &err), 0);
        assert_int_equal(graft_surgery_freeze(g, &hi, &err), GRAFT_OK);
        char tag[16];
        snprintf(tag, sizeof tag, "op%d", (int)opsets[i]);
        assert_int_equal(checker(g, tag), 0);
        graft_graph_destroy(g);
    }
    /* raw pixels, no opset in the graph at all */
    graft_graph *g = pu_graph(0);
    int32_t x = pu_input(g, "X", 4, (int64_t[]){-1, 1, 28, 28});
    graft_error err = {0};
    graft_head_spec hs = graft_head_spec_default();
    hs.no_pool = true;
    graft_head_info hi;
    assert_int_equal(graft_surgery_cut_and_attach(g, x, &hs, &hi, &err), GRAFT_OK);
    assert_int_equal(checker(g, "raw"), 0);
    graft_graph_destroy(g);
}

/* A model graft re-headed can be re-headed again: the cut finds the same
 * features (before the old head's Dropout), names stay unique. */
static void test_reheading_twice(void **state)
{
    (void)state;
    graft_graph *g = resnet_like(13);
    graft_error err = {0};
    graft_head_spec hs = graft_head_spec_default();
    hs.hidden = 3;
    hs.dropout = 0.5f;
    graft_head_info hi;
    assert_int_equal(graft_surgery_cut_and_attach(g, pu_val(g, "r1"), &hs, &hi, &err), 0);
    assert_int_equal(graft_graph_compact(g, &err), GRAFT_OK);
    graft_feature_info fi;
    assert_int_equal(graft_surgery_find_features(g, &fi, &err), GRAFT_OK);
    assert_int_equal(fi.value, g->values[pu_val(g, "head.relu1")].producer >= 0
                                   ? pu_val(g, "head.relu1")
                                   : -2);
    hs.hidden = 0;
    hs.n_classes = 4;
    assert_int_equal(graft_surgery_cut_and_attach(g, fi.value, &hs, &hi, &err), GRAFT_OK);
    assert_int_equal(graft_graph_verify(g, &err), GRAFT_OK);
    assert_string_equal(g->values[hi.probabilities].name, "probabilities");
    assert_int_equal(hi.n_features, 3);
    assert_true(graft_graph_find_node(g, "head/fc1") >= 0);
    assert_true(graft_graph_find_node(g, "head/fc") >= 0);
    int32_t sm = graft_graph_find_node(g, "head/softmax");
    assert_true(sm >= 0);
    assert_int_equal(g->nodes[sm].outputs[0], hi.probabilities);
    graft_graph_destroy(g);
}

/* An op graft cannot run before the cut: the width cannot be inferred and
 * the message names the op; the graph is left as it was. */
static void test_unsupported_op_before_cut(void **state)
{
    (void)state;
    graft_graph *g = pu_graph(13);
    pu_input(g, "X", 2, (int64_t[]){-1, 4});
    graft_error err = {0};
    int32_t x = pu_val(g, "X"), f = graft_graph_add_value(g, "f", &err);
    assert_true(graft_graph_add_node(g, "FancyActivation", "com.example", "fancy", 1, &x, 1, &f,
                                     &err) >= 0);
    graft_head_spec hs = graft_head_spec_default();
    graft_head_info hi;
    assert_int_not_equal(graft_surgery_cut_and_attach(g, f, &hs, &hi, &err), GRAFT_OK);
    assert_non_null(strstr(err.msg, "FancyActivation"));
    assert_non_null(strstr(err.msg, "'f'"));
    assert_false(g->nodes[0].removed);
    assert_int_equal(g->n_nodes, 1);
    graft_graph_destroy(g);
}

/* ---- files from ../shared (skipped where absent) ---- */

static graft_graph *import_shared(const char *rel)
{
    const char *path = pu_shared(rel);
    if (!path)
        return NULL;
    graft_graph *g = NULL;
    graft_error err = {0};
    if (graft_onnx_import_file(path, NULL, &g, &err) != GRAFT_OK) {
        fprintf(stderr, "import %s: %s\n", path, err.msg);
        fail();
    }
    return g;
}

static void test_shared_b22(void **state)
{
    (void)state;
    graft_graph *g = import_shared("cases/B22a_output_is_detection_tensor/model.onnx");
    if (!g)
        skip();
    expect_refusal(g);
    graft_graph_destroy(g);
    g = import_shared("cases/B22b_output_is_embedding/model.onnx");
    assert_non_null(g);
    expect_refusal(g);
    /* named by the user: nothing is stripped, the head reads emb */
    graft_error err = {0};
    int32_t emb = -1;
    assert_int_equal(graft_surgery_resolve_cut(g, "emb", &emb, &err), GRAFT_OK);
    int32_t before = 0;
    for (int32_t i = 0; i < g->n_nodes; i++)
        before += !g->nodes[i].removed;
    graft_head_spec hs = graft_head_spec_default();
    graft_head_info hi;
    assert_int_equal(graft_surgery_cut_and_attach(g, emb, &hs, &hi, &err), GRAFT_OK);
    assert_int_equal(hi.n_features, 2048);
    for (int32_t i = 0; i < before; i++)
        assert_false(g->nodes[i].removed);
    /* the features the head sees are the stored embedding */
    graft_tensor *x = NULL, *ref = NULL;
    const char *in = pu_shared("cases/B22b_output_is_embedding/test_data_set_0/input_0.pb");
    assert_int_equal(graft_onnx_read_tensor_file(in, &x, NULL, NULL, 0, &err), GRAFT_OK);
    const char *out = pu_shared("cases/B22b_output_is_embedding/test_data_set_0/output_0.pb");
    assert_int_equal(graft_onnx_read_tensor_file(out, &ref, NULL, NULL, 0, &err), GRAFT_OK);
    graft_plan *p = NULL;
    graft_plan_options o = graft_plan_options_default();
    int32_t fetch[2] = {emb, hi.probabilities};
    o.fetches = fetch;
    o.n_fetches = 2;
    graft_shape s = {x->rank, {0}};
    memcpy(s.dims, x->dims, sizeof s.dims);
    assert_int_equal(graft_plan_create(g, &o, 1, &s, &p, &err), GRAFT_OK);
    const graft_tensor *xs[1] = {x};
    assert_int_equal(graft_plan_run(p, xs, &err), GRAFT_OK);
    assert_true(pu_rel_diff(graft_plan_output(p, 0), ref) < 1e-4);
    assert_int_equal(graft_plan_output(p, 1)->dims[1], 2);
    graft_plan_destroy(p);
    graft_tensor_destroy(x);
    graft_tensor_destroy(ref);
    graft_graph_destroy(g);
}

/* Real models: the cut lands where the docs say, and the re-headed model runs. */
static void check_shared_model(const char *rel, const char *want_feat, int64_t want_f)
{
    graft_graph *g = import_shared(rel);
    if (!g)
        skip();
    graft_error err = {0};
    graft_feature_info fi;
    assert_int_equal(graft_surgery_find_features(g, &fi, &err), GRAFT_OK);
    assert_string_equal(g->values[fi.value].name, want_feat);
    graft_head_spec hs = graft_head_spec_default();
    hs.n_classes = 5;
    graft_head_info hi;
    if (graft_surgery_cut_and_attach(g, fi.value, &hs, &hi, &err) != GRAFT_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(hi.n_features, want_f);
    assert_int_equal(graft_graph_verify(g, &err), GRAFT_OK);
    const graft_value *in = &g->values[g->inputs[0]];
    graft_shape s = {in->rank, {0}};
    for (int i = 0; i < in->rank; i++)
        s.dims[i] = in->dims[i] > 0 ? in->dims[i] : 1;
    s.dims[0] = 2; /* saved with batch 1: the head must still take mini-batches */
    graft_tensor *p = pu_run(g, &s, 5, -1);
    assert_non_null(p);
    assert_int_equal(p->dims[0], 2);
    assert_int_equal(p->dims[1], 5);
    for (int n = 0; n < 2; n++) {
        double sum = 0;
        for (int k = 0; k < 5; k++)
            sum += graft_tensor_f32(p)[n * 5 + k];
        assert_float_equal(sum, 1.0, 1e-4);
    }
    graft_tensor_destroy(p);
    graft_graph_destroy(g);
}

static void test_shared_mnist_cntk(void **state)
{
    (void)state;
    check_shared_model("models/mnist-cntk/model.onnx", "Pooling160_Output_0_reshape0", 256);
}

static void test_shared_squeezenet(void **state)
{
    (void)state;
    check_shared_model("models/squeezenet1.0-fp16/model.onnx", "fire9/concat_1", 512);
}

static void test_shared_refused(void **state)
{
    (void)state;
    const char *names[] = {"models/ultraface-rfb-320/model.onnx",
                           "models/bodypix-mnv1-050-s16/model.onnx"};
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        graft_graph *g = import_shared(names[i]);
        if (!g)
            continue;
        seen++;
        expect_refusal(g);
        graft_graph_destroy(g);
    }
    if (!seen)
        skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_resnet_like),
        cmocka_unit_test(test_find_matmul_add),
        cmocka_unit_test(test_find_squeezenet_like),
        cmocka_unit_test(test_find_conv_after_pool),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_resolve_cut),
        cmocka_unit_test(test_attach_dense_features),
        cmocka_unit_test(test_attach_pool_hidden_opset13),
        cmocka_unit_test(test_attach_pool_hidden_opset11),
        cmocka_unit_test(test_attach_raw_input),
        cmocka_unit_test(test_baked_batch_reshape),
        cmocka_unit_test(test_init_deterministic),
        cmocka_unit_test(test_init_he_statistics),
        cmocka_unit_test(test_output_name_clash),
        cmocka_unit_test(test_unknown_spatial_dims),
        cmocka_unit_test(test_fp16_features_get_cast),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_reheading_twice),
        cmocka_unit_test(test_unsupported_op_before_cut),
        cmocka_unit_test(test_export_checker),
        cmocka_unit_test(test_shared_b22),
        cmocka_unit_test(test_shared_mnist_cntk),
        cmocka_unit_test(test_shared_squeezenet),
        cmocka_unit_test(test_shared_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
