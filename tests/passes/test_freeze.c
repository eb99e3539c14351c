/* Freeze tests: after cut_and_attach exactly the head's float parameters
 * train; backbone weights, BatchNormalization statistics, the Dropout ratio
 * and tied weights stay frozen; needs_grad flows forward from the head. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes_util.h"

#define IN(...) ((const char *const[]){__VA_ARGS__, NULL})

/* B25 by hand: Conv -> BN -> Relu -> GAP -> Flatten(feat) -> Gemm head -> Y */
static graft_graph *b25_like(void)
{
    graft_graph *g = pu_graph(13);
    pu_input(g, "X", 4, (int64_t[]){-1, 3, 8, 8});
    pu_init(g, "W1", 4, (int64_t[]){4, 3, 3, 3}, 0.5f, 0, NULL);
    pu_init(g, "b1", 1, (int64_t[]){4}, 0.1f, 0, NULL);
    pu_node(g, "Conv", "conv1", IN("X", "W1", "b1"), "c1");
    pu_init(g, "bn_scale", 1, (int64_t[]){4}, 0.2f, 1, NULL);
    pu_init(g, "bn_B", 1, (int64_t[]){4}, 0.2f, 0, NULL);
    pu_init(g, "bn_mean", 1, (int64_t[]){4}, 0.2f, 0, NULL);
    pu_init(g, "bn_var", 1, (int64_t[]){4}, 0.2f, 1, NULL);
    pu_node(g, "BatchNormalization", "bn1",
            IN("c1", "bn_scale", "bn_B", "bn_mean", "bn_var"), "bn1");
    pu_node(g, "Relu", "relu1", IN("bn1"), "r1");
    pu_node(g, "GlobalAveragePool", "gap", IN("r1"), "gap");
    pu_node(g, "Flatten", "flatten", IN("gap"), "feat");
    pu_init(g, "Wh", 2, (int64_t[]){2, 4}, 0.5f, 0, NULL);
    pu_init(g, "bh", 1, (int64_t[]){2}, 0.1f, 0, NULL);
    int32_t n = pu_node(g, "Gemm", "head", IN("feat", "Wh", "bh"), "Y");
    graft_error err = {0};
    assert_int_equal(graft_node_set_int(g, n, "transB", 1, &err), GRAFT_OK);
    pu_output(g, "Y");
    return g;
}

static void test_freeze_head_only(void **state)
{
    (void)state;
    graft_graph *g = b25_like();
    graft_error err = {0};
    graft_feature_info fi;
    assert_int_equal(graft_surgery_find_features(g, &fi, &err), GRAFT_OK);
    assert_int_equal(fi.value, pu_val(g, "feat"));
    graft_head_spec hs = graft_head_spec_default();
    hs.n_classes = 2;
    hs.hidden = 5;
    hs.dropout = 0.3f;
    graft_head_info hi;
    assert_int_equal(graft_surgery_cut_and_attach(g, fi.value, &hs, &hi, &err), GRAFT_OK);
    /* pretend someone marked backbone values trainable before */
    g->values[pu_val(g, "W1")].trainable = true;
    g->values[pu_val(g, "bn_mean")].trainable = true;
    assert_int_equal(graft_surgery_freeze(g, &hi, &err), GRAFT_OK);
    const char *trainable[] = {"head.fc1.weight", "head.fc1.bias", "head.fc2.weight",
                               "head.fc2.bias"};
    int n_trainable = 0;
    for (int32_t v = 0; v < g->n_values; v++) {
        const graft_value *val = &g->values[v];
        bool want = false;
        for (int i = 0; i < 4; i++)
            want |= strcmp(val->name, trainable[i]) == 0;
        if (val->trainable != want)
            fail_msg("'%s' trainable=%d, want %d", val->name, val->trainable, want);
        n_trainable += val->trainable;
    }
    assert_int_equal(n_trainable, 4);
    assert_int_equal(graft_graph_param_count(g, true), 5 * 4 + 5 + 2 * 5 + 2);
    /* needs_grad: on from the head params forward, off in the backbone */
    assert_false(g->values[pu_val(g, "feat")].needs_grad);
    assert_false(g->values[pu_val(g, "r1")].needs_grad);
    assert_false(g->values[pu_val(g, "X")].needs_grad);
    assert_false(g->values[pu_val(g, "head.dropout.ratio")].needs_grad);
    assert_true(g->values[hi.logits].needs_grad);
    assert_true(g->values[hi.probabilities].needs_grad);
    assert_true(g->values[pu_val(g, "head.fc1.weight")].needs_grad);
    graft_graph_destroy(g);
}

/* freeze judges by position, not by name: a head that contains a BN (from
 * a hand-made head_info) trains scale/B but never mean/var, and a weight
 * tied to the backbone stays frozen. */
static void test_freeze_bn_stats_and_tied(void **state)
{
    (void)state;
    graft_graph *g = pu_graph(13);
    graft_error err = {0};
    pu_input(g, "X", 2, (int64_t[]){-1, 4});
    pu_init(g, "E", 2, (int64_t[]){4, 4}, 0.5f, 0, NULL);
    int32_t n = pu_node(g, "Gemm", "backbone", IN("X", "E"), "h");
    assert_int_equal(graft_node_set_int(g, n, "transB", 1, &err), GRAFT_OK);
    pu_node(g, "Unsqueeze_", "u", IN("h"), "h4"); /* unknown op: fine for freeze */
    pu_init(g, "s", 1, (int64_t[]){4}, 0.1f, 1, NULL);
    pu_init(g, "b", 1, (int64_t[]){4}, 0.1f, 0, NULL);
    pu_init(g, "m", 1, (int64_t[]){4}, 0.1f, 0, NULL);
    pu_init(g, "v", 1, (int64_t[]){4}, 0.1f, 1, NULL);
    pu_node(g, "BatchNormalization", "bn", IN("h4", "s", "b", "m", "v"), "z");
    n = pu_node(g, "Gemm", "tied", IN("z", "E"), "y"); /* E shared with the backbone */
    pu_output(g, "y");
    graft_head_info hi = {.features = pu_val(g, "h"), .head_input = pu_val(g, "h"),
                          .logits = pu_val(g, "y"), .probabilities = pu_val(g, "y"),
                          .n_features = 4, .first_head_node = 1};
    assert_int_equal(graft_surgery_freeze(g, &hi, &err), GRAFT_OK);
    assert_true(g->values[pu_val(g, "s")].trainable);
    assert_true(g->values[pu_val(g, "b")].trainable);
    assert_false(g->values[pu_val(g, "m")].trainable);
    assert_false(g->values[pu_val(g, "v")].trainable);
    assert_false(g->values[pu_val(g, "E")].trainable);
    assert_true(g->values[pu_val(g, "z")].needs_grad);
    assert_false(g->values[pu_val(g, "h4")].needs_grad);
    assert_int_equal(graft_surgery_freeze(g, NULL, &err), GRAFT_ERR_ARG);
    graft_graph_destroy(g);
}

/* Frozen initializers keep their source bytes; freeze never touches them. */
static void test_freeze_keeps_source_pb(void **state)
{
    (void)state;
    graft_graph *g = b25_like();
    graft_error err = {0};
    int32_t w = pu_val(g, "W1");
    g->values[w].source_pb = malloc(3);
    memcpy(g->values[w].source_pb, "abc", 3);
    g->values[w].source_pb_len = 3;
    graft_head_spec hs = graft_head_spec_default();
    graft_head_info hi;
    assert_int_equal(graft_surgery_cut_and_attach(g, pu_val(g, "feat"), &hs, &hi, &err), 0);
    assert_int_equal(graft_surgery_freeze(g, &hi, &err), GRAFT_OK);
    assert_non_null(g->values[w].source_pb);
    assert_memory_equal(g->values[w].source_pb, "abc", 3);
    graft_graph_destroy(g);
}

static void test_shared_b25(void **state)
{
    (void)state;
    const char *path = pu_shared("cases/B25_bn_running_stats_not_trainable/model.onnx");
    if (!path)
        skip();
    graft_graph *g = NULL;
    graft_error err = {0};
    assert_int_equal(graft_onnx_import_file(path, NULL, &g, &err), GRAFT_OK);
    graft_feature_info fi;
    assert_int_equal(graft_surgery_find_features(g, &fi, &err), GRAFT_OK);
    assert_string_equal(g->values[fi.value].name, "feat");
    graft_head_spec hs = graft_head_spec_default();
    graft_head_info hi;
    assert_int_equal(graft_surgery_cut_and_attach(g, fi.value, &hs, &hi, &err), GRAFT_OK);
    assert_int_equal(graft_surgery_freeze(g, &hi, &err), GRAFT_OK);
    const char *frozen[] = {"W1", "b1", "bn_scale", "bn_B", "bn_mean", "bn_var"};
    for (int i = 0; i < 6; i++) {
        const graft_value *v = &g->values[pu_val(g, frozen[i])];
        assert_false(v->trainable);
        assert_non_null(v->source_pb);
    }
    assert_int_equal(graft_graph_param_count(g, true), 2 * 4 + 2);
    graft_graph_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_freeze_head_only),
        cmocka_unit_test(test_freeze_bn_stats_and_tied),
        cmocka_unit_test(test_freeze_keeps_source_pb),
        cmocka_unit_test(test_shared_b25),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
