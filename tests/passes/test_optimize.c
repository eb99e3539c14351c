/* optimize_for_inference tests: BN folding and FusedConv fusion keep the
 * outputs (the plan run before and after on the same random input), count
 * their rewrites, respect trainable weights, never touch shared weights, and
 * leave alone what they must not fuse. */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes_util.h"

#define IN(...) ((const char *const[]){__VA_ARGS__, NULL})

static const int64_t pads1[4] = {1, 1, 1, 1};

static void conv(graft_graph *g, const char *x, const char *w, const char *b, const char *y,
                 int group)
{
    graft_error err = {0};
    int32_t n = b ? pu_node(g, "Conv", y, IN(x, w, b), y) : pu_node(g, "Conv", y, IN(x, w), y);
    assert_int_equal(graft_node_set_ints(g, n, "pads", 4, pads1, &err), GRAFT_OK);
    assert_int_equal(graft_node_set_ints(g, n, "kernel_shape", 2, (int64_t[]){3, 3}, &err), 0);
    if (group > 1)
        assert_int_equal(graft_node_set_int(g, n, "group", group, &err), GRAFT_OK);
}

static void bn(graft_graph *g, const char *x, const char *tag, const char *y)
{
    char s[32], b[32], m[32], v[32];
    snprintf(s, sizeof s, "%s_s", tag);
    snprintf(b, sizeof b, "%s_b", tag);
    snprintf(m, sizeof m, "%s_m", tag);
    snprintf(v, sizeof v, "%s_v", tag);
    pu_init(g, s, 1, (int64_t[]){4}, 0.3f, 1.0f, NULL);
    pu_init(g, b, 1, (int64_t[]){4}, 0.3f, 0.0f, NULL);
    pu_init(g, m, 1, (int64_t[]){4}, 0.3f, 0.0f, NULL);
    pu_init(g, v, 1, (int64_t[]){4}, 0.4f, 0.6f, NULL);
    graft_error err = {0};
    int32_t n = pu_node(g, "BatchNormalization", y, IN(x, s, b, m, v), y);
    assert_int_equal(graft_node_set_float(g, n, "epsilon", 1e-3f, &err), GRAFT_OK);
}

/* Conv+BN+Relu, Conv+BN+Add+Relu (residual), depthwise Conv+BN+Clip(0,6),
 * and Conv+BN reusing the first conv's weights, into Y. */
static graft_graph *backbone(int64_t opset)
{
    graft_graph *g = pu_graph(opset);
    graft_error err = {0};
    pu_input(g, "X", 4, (int64_t[]){-1, 4, 8, 8});
    pu_init(g, "Wa", 4, (int64_t[]){4, 4, 3, 3}, 0.3f, 0, NULL);
    pu_init(g, "ba", 1, (int64_t[]){4}, 0.2f, 0, NULL);
    pu_init(g, "Wb", 4, (int64_t[]){4, 4, 3, 3}, 0.3f, 0, NULL);
    pu_init(g, "Wd", 4, (int64_t[]){4, 1, 3, 3}, 0.5f, 0, NULL);
    pu_init(g, "bd", 1, (int64_t[]){4}, 0.2f, 0, NULL);
    conv(g, "X", "Wa", "ba", "c1", 1);
    bn(g, "c1", "bn1", "b1");
    pu_node(g, "Relu", "r1", IN("b1"), "r1");
    conv(g, "r1", "Wb", NULL, "c2", 1);
    bn(g, "c2", "bn2", "b2");
    pu_node(g, "Add", "a2", IN("b2", "r1"), "a2");
    pu_node(g, "Relu", "r2", IN("a2"), "r2");
    conv(g, "r2", "Wd", "bd", "c3", 4);
    bn(g, "c3", "bn3", "b3");
    if (opset >= 11) {
        pu_init(g, "lo", 0, NULL, 0, 0.0f, (float[]){0.0f});
        pu_init(g, "hi", 0, NULL, 0, 0.0f, (float[]){6.0f});
        pu_node(g, "Clip", "clip3", IN("b3", "lo", "hi"), "r3");
    } else {
        int32_t n = pu_node(g, "Clip", "clip3", IN("b3"), "r3");
        assert_int_equal(graft_node_set_float(g, n, "min", 0.0f, &err), GRAFT_OK);
        assert_int_equal(graft_node_set_float(g, n, "max", 0.5f, &err), GRAFT_OK);
    }
    conv(g, "r3", "Wa", "ba", "c4", 1);
    bn(g, "c4", "bn4", "Y");
    pu_output(g, "Y");
    return g;
}

static graft_graph *clone(const graft_graph *g)
{
    graft_graph *c = NULL;
    graft_error err = {0};
    assert_int_equal(graft_graph_clone(g, &c, &err), GRAFT_OK);
    return c;
}

static void check_same_outputs(const graft_graph *a, const graft_graph *b)
{
    graft_shape in = {4, {2, 4, 8, 8}};
    graft_tensor *ya = pu_run(a, &in, 99, -1);
    graft_tensor *yb = pu_run(b, &in, 99, -1);
    assert_non_null(ya);
    assert_non_null(yb);
    double d = pu_rel_diff(yb, ya);
    if (!(d < 1e-4))
        fail_msg("optimized output differs: rel %g", d);
    graft_tensor_destroy(ya);
    graft_tensor_destroy(yb);
}

static void check_full(int64_t opset)
{
    graft_graph *g = backbone(opset);
    graft_graph *o = clone(g);
    graft_error err = {0};
    graft_tensor *wa = NULL;
    assert_int_equal(graft_tensor_clone(g->values[pu_val(g, "Wa")].data, &wa, &err), 0);
    int n = -1;
    assert_int_equal(graft_passes_optimize_for_inference(o, &n, &err), GRAFT_OK);
    assert_int_equal(n, 4 + 3); /* four folds, three fusions */
    assert_int_equal(pu_count_op(o, "BatchNormalization"), 0);
    assert_int_equal(pu_count_op(o, "FusedConv"), 3);
    assert_int_equal(pu_count_op(o, "Conv"), 1);
    assert_int_equal(pu_count_op(o, "Relu") + pu_count_op(o, "Clip") + pu_count_op(o, "Add"), 0);
    assert_int_equal(graft_graph_opset(o, "com.microsoft"), 1);
    assert_int_equal(graft_graph_verify(o, &err), GRAFT_OK);
    /* the residual FusedConv has Z; the Clip one its bounds */
    int with_z = 0, clip = 0;
    for (int32_t i = 0; i < o->n_nodes; i++) {
        const graft_node *nd = &o->nodes[i];
        if (strcmp(nd->op_type, "FusedConv") != 0)
            continue;
        assert_string_equal(nd->domain, "com.microsoft");
        assert_true(nd->op >= 0);
        with_z += nd->n_inputs == 4;
        const char *act = graft_node_attr_string(nd, "activation", "");
        if (strcmp(act, "Clip") == 0) {
            clip++;
            const graft_attr *a = graft_node_attr(nd, "activation_params");
            assert_non_null(a);
            assert_int_equal(a->type, GRAFT_ATTR_FLOATS);
            assert_int_equal(a->n, 2);
            assert_true(a->floats[0] == 0.0f);
            assert_true(a->floats[1] == (opset >= 11 ? 6.0f : 0.5f));
            assert_int_equal(graft_node_attr_int(nd, "group", 1), 4);
        } else {
            assert_string_equal(act, "Relu");
        }
        const int64_t *p = NULL;
        assert_int_equal(graft_node_attr_ints(nd, "pads", &p), 4);
    }
    assert_int_equal(with_z, 1);
    assert_int_equal(clip, 1);
    /* shared weights: untouched in both graphs; the folded copies differ */
    assert_memory_equal(g->values[pu_val(g, "Wa")].data->data, wa->data, wa->nbytes);
    assert_memory_equal(o->values[pu_val(o, "Wa")].data->data, wa->data, wa->nbytes);
    assert_int_equal(pu_count_op(g, "BatchNormalization"), 4);
    check_same_outputs(g, o);
    graft_tensor_destroy(wa);
    graft_graph_destroy(o);
    graft_graph_destroy(g);
}

static void test_full_opset13(void **state)
{
    (void)state;
    check_full(13);
}

static void test_full_opset10_clip_attributes(void **state)
{
    (void)state;
    check_full(10);
}

static void test_trainable_blocks(void **state)
{
    (void)state;
    graft_graph *g = backbone(13);
    graft_graph *o = clone(g);
    graft_error err = {0};
    o->values[pu_val(o, "Wb")].trainable = true; /* c2: no fold, no fusion */
    o->values[pu_val(o, "bn1_s")].trainable = true; /* bn1: no fold, so c1 is not fused */
    int n = -1;
    assert_int_equal(graft_passes_optimize_for_inference(o, &n, &err), GRAFT_OK);
    assert_int_equal(pu_count_op(o, "BatchNormalization"), 2);
    /* c3 (+clip) and c4 only */
    assert_int_equal(pu_count_op(o, "FusedConv"), 1);
    assert_int_equal(n, 2 + 1);
    check_same_outputs(g, o);
    graft_graph_destroy(o);
    graft_graph_destroy(g);
}

/* Not fused: a Conv output read twice, and an Add that broadcasts an
 * activation (not a residual). */
static void test_leaves_alone(void **state)
{
    (void)state;
    graft_graph *g = pu_graph(13);
    graft_error err = {0};
    pu_input(g, "X", 4, (int64_t[]){-1, 4, 8, 8});
    pu_init(g, "W", 4, (int64_t[]){4, 4, 3, 3}, 0.3f, 0, NULL);
    conv(g, "X", "W", NULL, "c1", 1);
    bn(g, "c1", "bn1", "b1");
    pu_node(g, "Relu", "r1", IN("c1"), "r1"); /* c1 read by BN and Relu */
    pu_node(g, "Add", "s", IN("b1", "r1"), "s");
    conv(g, "s", "W", NULL, "c2", 1);
    pu_node(g, "GlobalAveragePool", "gap", IN("s"), "gs");
    pu_node(g, "Add", "a2", IN("c2", "gs"), "a2"); /* [N,4,8,8] + [N,4,1,1] */
    pu_node(g, "Relu", "r2", IN("a2"), "Y");
    pu_output(g, "Y");
    graft_graph *o = clone(g);
    int n = -1;
    assert_int_equal(graft_passes_optimize_for_inference(o, &n, &err), GRAFT_OK);
    assert_int_equal(n, 0);
    assert_int_equal(pu_count_op(o, "FusedConv"), 0);
    assert_int_equal(pu_count_op(o, "BatchNormalization"), 1);
    check_same_outputs(g, o);
    graft_graph_destroy(o);
    graft_graph_destroy(g);
}

/* CNTK style bias: Conv (no B) -> Add([C,1,1] constant) -> Relu becomes one
 * FusedConv with a new bias; a [C,H,W]-shaped constant is not a bias. */
static void test_bias_add_fold(void **state)
{
    (void)state;
    graft_graph *g = pu_graph(8);
    graft_error err = {0};
    pu_input(g, "X", 4, (int64_t[]){1, 4, 8, 8});
    pu_init(g, "W", 4, (int64_t[]){4, 4, 3, 3}, 0.3f, 0, NULL);
    pu_init(g, "b", 1, (int64_t[]){4}, 0.3f, 0, NULL);
    conv(g, "X", "W", NULL, "c1", 1);
    pu_init(g, "P", 3, (int64_t[]){4, 1, 1}, 0.3f, 0, NULL);
    pu_node(g, "Add", "plus", IN("c1", "P"), "a1");
    pu_node(g, "Relu", "relu", IN("a1"), "r1");
    conv(g, "r1", "W", "b", "c2", 1);
    pu_init(g, "Q", 4, (int64_t[]){1, 4, 1, 1}, 0.3f, 0, NULL);
    pu_node(g, "Add", "plus2", IN("Q", "c2"), "a2"); /* constant first, conv has a bias */
    pu_init(g, "S", 3, (int64_t[]){4, 8, 8}, 0.3f, 0, NULL);
    pu_node(g, "Add", "plus3", IN("a2", "S"), "Y");
    pu_output(g, "Y");
    graft_graph *o = clone(g);
    int n = -1;
    assert_int_equal(graft_passes_optimize_for_inference(o, &n, &err), GRAFT_OK);
    assert_int_equal(n, 3); /* two bias folds, one fusion */
    assert_int_equal(pu_count_op(o, "FusedConv"), 1);
    assert_int_equal(pu_count_op(o, "Add"), 1);
    assert_int_equal(pu_count_op(o, "Conv"), 1);
    float b0 = graft_tensor_f32(g->values[pu_val(g, "b")].data)[0];
    float p0 = graft_tensor_f32(g->values[pu_val(g, "P")].data)[0];
    assert_true(graft_tensor_f32(o->values[pu_val(o, "b")].data)[0] == b0);
    assert_true(graft_tensor_f32(o->values[pu_val(o, "P")].data)[0] == p0);
    check_same_outputs(g, o);
    graft_graph_destroy(o);
    graft_graph_destroy(g);

    /* Conv -> Add(bias) -> BN -> Relu: both folds, then the fusion */
    g = pu_graph(13);
    pu_input(g, "X", 4, (int64_t[]){-1, 4, 8, 8});
    pu_init(g, "W", 4, (int64_t[]){4, 4, 3, 3}, 0.3f, 0, NULL);
    conv(g, "X", "W", NULL, "c1", 1);
    pu_init(g, "P", 4, (int64_t[]){1, 4, 1, 1}, 0.3f, 0, NULL);
    pu_node(g, "Add", "plus", IN("c1", "P"), "a1");
    bn(g, "a1", "bn1", "b1");
    pu_node(g, "Relu", "relu", IN("b1"), "Y");
    pu_output(g, "Y");
    o = clone(g);
    assert_int_equal(graft_passes_optimize_for_inference(o, &n, &err), GRAFT_OK);
    assert_int_equal(n, 3);
    assert_int_equal(pu_count_op(o, "FusedConv"), 1);
    assert_int_equal(o->n_nodes, 1);
    check_same_outputs(g, o);
    graft_graph_destroy(o);
    graft_graph_destroy(g);
}

/* After a head is attached and frozen, the backbone clone still fuses and
 * the head stays as it is. */
static void test_after_surgery(void **state)
{
    (void)state;
    graft_graph *g = backbone(13);
    graft_error err = {0};
    graft_head_spec hs = graft_head_spec_default();
    hs.n_classes = 3;
    hs.hidden = 4;
    graft_head_info hi;
    assert_int_equal(graft_surgery_cut_and_attach(g, pu_val(g, "Y"), &hs, &hi, &err), 0);
    assert_int_equal(graft_surgery_freeze(g, &hi, &err), GRAFT_OK);
    graft_graph *o = clone(g);
    int n = -1;
    assert_int_equal(graft_passes_optimize_for_inference(o, &n, &err), GRAFT_OK);
    assert_int_equal(n, 7);
    assert_int_equal(pu_count_op(o, "Gemm"), 2);
    check_same_outputs(g, o);
    graft_graph_destroy(o);
    graft_graph_destroy(g);
}

/* torch.onnx.export shares deduplicated weights through Identity nodes. */
static void test_weights_through_identity(void **state)
{
    (void)state;
    graft_graph *g = pu_graph(13);
    graft_error err = {0};
    pu_input(g, "X", 4, (int64_t[]){-1, 4, 8, 8});
    pu_init(g, "W", 4, (int64_t[]){4, 4, 3, 3}, 0.3f, 0, NULL);
    pu_init(g, "b", 1, (int64_t[]){4}, 0.3f, 0, NULL);
    pu_node(g, "Identity", "id_w", IN("W"), "W_shared");
    pu_node(g, "Identity", "id_b", IN("b"), "b_shared");
    conv(g, "X", "W_shared", "b_shared", "c1", 1);
    bn(g, "c1", "bn1", "b1");
    pu_init(g, "six", 0, NULL, 0, 0.0f, (float[]){0.25f});
    pu_node(g, "Identity", "id_six", IN("six"), "six_shared");
    pu_node(g, "Clip", "clip", IN("b1", "", "six_shared"), "r1");
    conv(g, "r1", "W_shared", "b_shared", "c2", 1);
    pu_node(g, "Relu", "relu2", IN("c2"), "Y");
    pu_output(g, "Y");
    graft_graph *o = clone(g);
    int n = -1;
    assert_int_equal(graft_passes_optimize_for_inference(o, &n, &err), GRAFT_OK);
    assert_int_equal(n, 3);
    assert_int_equal(pu_count_op(o, "FusedConv"), 2);
    for (int32_t i = 0; i < o->n_nodes; i++) {
        const graft_attr *a = graft_node_attr(&o->nodes[i], "activation_params");
        if (a) {
            assert_true(a->floats[0] == -FLT_MAX);
            assert_true(a->floats[1] == 0.25f);
        }
    }
    check_same_outputs(g, o);
    graft_graph_destroy(o);
    graft_graph_destroy(g);
}

/* The other activations FusedConv takes, with their parameters. */
static void test_other_activations(void **state)
{
    (void)state;
    graft_graph *g = pu_graph(13);
    graft_error err = {0};
    pu_input(g, "X", 4, (int64_t[]){-1, 4, 8, 8});
    pu_init(g, "W", 4, (int64_t[]){4, 4, 3, 3}, 0.4f, 0, NULL);
    pu_init(g, "b", 1, (int64_t[]){4}, 0.3f, 0, NULL);
    conv(g, "X", "W", "b", "c1", 1);
    int32_t n = pu_node(g, "LeakyRelu", "lrelu", IN("c1"), "a1");
    assert_int_equal(graft_node_set_float(g, n, "alpha", 0.3f, &err), GRAFT_OK);
    conv(g, "a1", "W", "b", "c2", 1);
    n = pu_node(g, "HardSigmoid", "hsig", IN("c2"), "a2");
    assert_int_equal(graft_node_set_float(g, n, "alpha", 0.3f, &err), GRAFT_OK);
    conv(g, "a2", "W", "b", "c3", 1);
    pu_node(g, "Sigmoid", "sig", IN("c3"), "a3");
    conv(g, "a3", "W", "b", "c4", 1);
    pu_node(g, "Tanh", "tanh", IN("c4"), "Y");
    pu_output(g, "Y");
    graft_graph *o = clone(g);
    int r = -1;
    assert_int_equal(graft_passes_optimize_for_inference(o, &r, &err), GRAFT_OK);
    assert_int_equal(r, 4);
    assert_int_equal(pu_count_op(o, "FusedConv"), 4);
    for (int32_t i = 0; i < o->n_nodes; i++) {
        const graft_node *nd = &o->nodes[i];
        const char *act = graft_node_attr_string(nd, "activation", "");
        const graft_attr *a = graft_node_attr(nd, "activation_params");
        if (strcmp(act, "LeakyRelu") == 0) {
            assert_int_equal(a->n, 1);
            assert_true(a->floats[0] == 0.3f);
        } else if (strcmp(act, "HardSigmoid") == 0) {
            assert_int_equal(a->n, 2);
            assert_true(a->floats[0] == 0.3f && a->floats[1] == 0.5f);
        } else {
            assert_null(a);
        }
    }
    check_same_outputs(g, o);
    graft_graph_destroy(o);
    graft_graph_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_opset13),
        cmocka_unit_test(test_full_opset10_clip_attributes),
        cmocka_unit_test(test_trainable_blocks),
        cmocka_unit_test(test_leaves_alone),
        cmocka_unit_test(test_bias_add_fold),
        cmocka_unit_test(test_after_surgery),
        cmocka_unit_test(test_weights_through_identity),
        cmocka_unit_test(test_other_activations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
