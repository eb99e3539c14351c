/* Softmax / LogSoftmax / Hardmax: opset < 13 coerces to 2-D at axis (default
 * 1), opset >= 13 works on one axis (default -1) - B13a/B13b; naive reference,
 * finite differences, ONNX node test data and the shared B13 cases. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lightops_util.h"
#include "testutil.h"

/* Reference over [outer, n, inner] in double. */
static void ref_softmax(const float *x, double *y, int64_t outer, int64_t n, int64_t inner,
                        bool lg)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            double mx = -INFINITY, s = 0;
            for (int64_t i = 0; i < n; i++)
                mx = fmax(mx, x[(o * n + i) * inner + j]);
            for (int64_t i = 0; i < n; i++)
                s += exp(x[(o * n + i) * inner + j] - mx);
            for (int64_t i = 0; i < n; i++) {
                double v = x[(o * n + i) * inner + j] - mx;
                y[(o * n + i) * inner + j] = lg ? v - log(s) : exp(v) / s;
            }
        }
}

static void check(const char *op, int opset, int axis, bool has_axis, int rank,
                  const int64_t *dims, int64_t outer, int64_t n, int64_t inner)
{
    graft_graph *g = lt_graph(opset);
    int32_t node = lt_node(g, op, 1, 0, 1);
    if (has_axis)
        graft_node_set_int(g, node, "axis", axis, NULL);
    graft_tensor *x = lt_tensor_rand(rank, dims, 31, -5, 5);
    lt_call c;
    assert_int_equal(lt_run(&c, g, node, 1, &x), GRAFT_OK);
    int64_t total = graft_tensor_nelem(x);
    double *want = malloc((size_t)total * sizeof *want);
    ref_softmax(graft_tensor_f32(x), want, outer, n, inner, !strcmp(op, "LogSoftmax"));
    for (int64_t i = 0; i < total; i++)
        if (fabs(graft_tensor_f32(c.out[0])[i] - want[i]) > 1e-5 * (1 + fabs(want[i])))
            fail_msg("%s-%d axis %d elem %lld: %g vs %g", op, opset, axis, (long long)i,
                     graft_tensor_f32(c.out[0])[i], want[i]);
    free(want);
    lt_call_fini(&c);
    graft_tensor_destroy(x);
    graft_graph_destroy(g);
}

static void test_axis_semantics(void **state)
{
    (void)state;
    int64_t d[3] = {2, 3, 4};
    static const char *ops[] = {"Softmax", "LogSoftmax"};
    for (int k = 0; k < 2; k++) {
        /* opset 11 default: rows of 12 (B13a) */
        check(ops[k], 11, 0, false, 3, d, 2, 12, 1);
        check(ops[k], 11, 2, true, 3, d, 6, 4, 1);
        check(ops[k], 11, 0, true, 3, d, 1, 24, 1);
        check(ops[k], 11, -1, true, 3, d, 6, 4, 1);
        /* opset 13 default: last axis (B13b); other axes strided */
        check(ops[k], 13, 0, false, 3, d, 6, 4, 1);
        check(ops[k], 13, 1, true, 3, d, 2, 3, 4);
        check(ops[k], 13, 0, true, 3, d, 1, 2, 12);
        check(ops[k], 13, -2, true, 3, d, 2, 3, 4);
    }
    /* the classifier case [1,10,1,1]: opset 11 normalises the 10 channels,
     * opset 13 gives all ones */
    int64_t dc[4] = {1, 10, 1, 1};
    check("Softmax", 11, 0, false, 4, dc, 1, 10, 1);
    check("Softmax", 13, 0, false, 4, dc, 10, 1, 1);
    /* large: parallel rows and the strided path with threads */
    int64_t db[2] = {512, 1000}, ds[3] = {64, 50, 33};
    check("Softmax", 13, 0, false, 2, db, 512, 1000, 1);
    check("LogSoftmax", 13, 1, true, 3, ds, 64, 50, 33);
}

static void test_bad_axis(void **state)
{
    (void)state;
    int64_t d[2] = {2, 3};
    graft_tensor *x = lt_tensor_rand(2, d, 1, 0, 1);
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Softmax", 1, 0, 1);
    graft_node_set_int(g, n, "axis", 2, NULL);
    lt_call c;
    assert_int_equal(lt_prepare(&c, g, n, 1, &x, 0), GRAFT_ERR_INVALID);
    assert_non_null(strstr(c.err.msg, "Softmax node 'n0'"));
    lt_call_fini(&c);
    graft_graph_destroy(g);
    g = lt_graph(13);
    n = lt_node(g, "Softmax", 2, 0, 1);
    graft_tensor *in[2] = {x, x};
    assert_int_equal(lt_prepare(&c, g, n, 2, in, 0), GRAFT_ERR_INVALID);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);
}

static void test_gradients(void **state)
{
    (void)state;
    int64_t d[3] = {2, 3, 4};
    static const char *ops[] = {"Softmax", "LogSoftmax"};
    struct { int opset, axis; bool has; } forms[] = {{11, 0, false}, {13, 0, false}, {13, 1, true},
                                                    {11, 2, true}};
    for (int k = 0; k < 2; k++)
        for (int f = 0; f < 4; f++) {
            graft_graph *g = lt_graph(forms[f].opset);
            int32_t n = lt_node(g, ops[k], 1, 0, 1);
            if (forms[f].has)
                graft_node_set_int(g, n, "axis", forms[f].axis, NULL);
            graft_tensor *x = lt_tensor_rand(3, d, 5, -2, 2);
            double e = lt_gradcheck(g, n, 1, &x, 1, 1e-3, 2e-3, false);
            if (!(e <= 2e-3))
                fail_msg("%s form %d gradient error %g", ops[k], f, e);
            graft_tensor_destroy(x);
            graft_graph_destroy(g);
        }
}

/* Hardmax: the same views as Softmax, first maximum per group. */
static void check_hardmax(int opset, int axis, bool has_axis, int rank, const int64_t *dims,
                          int64_t outer, int64_t n, int64_t inner)
{
    graft_graph *g = lt_graph(opset);
    int32_t node = lt_node(g, "Hardmax", 1, 0, 1);
    if (has_axis)
        graft_node_set_int(g, node, "axis", axis, NULL);
    graft_tensor *x = lt_tensor_rand(rank, dims, 17, -3, 3);
    /* plant ties: the first copy of each maximum must win */
    float *xv = graft_tensor_f32(x);
    for (int64_t i = 0; i + 2 < graft_tensor_nelem(x); i += 5)
        xv[i + 2] = xv[i];
    lt_call c;
    assert_int_equal(lt_run(&c, g, node, 1, &x), GRAFT_OK);
    const float *y = graft_tensor_f32(c.out[0]);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            int64_t best = 0;
            for (int64_t i = 1; i < n; i++)
                if (xv[(o * n + i) * inner + j] > xv[(o * n + best) * inner + j])
                    best = i;
            for (int64_t i = 0; i < n; i++) {
                float v = y[(o * n + i) * inner + j];
                if (v != (i == best ? 1.0f : 0.0f))
                    fail_msg("Hardmax-%d axis %d group (%lld,%lld) elem %lld: %g, argmax %lld",
                             opset, axis, (long long)o, (long long)j, (long long)i, v,
                             (long long)best);
            }
        }
    lt_call_fini(&c);
    graft_tensor_destroy(x);
    graft_graph_destroy(g);
}

static void test_hardmax(void **state)
{
    (void)state;
    int64_t d[3] = {2, 3, 4};
    check_hardmax(11, 0, false, 3, d, 2, 12, 1);
    check_hardmax(11, 2, true, 3, d, 6, 4, 1);
    check_hardmax(1, -2, true, 3, d, 2, 12, 1);
    check_hardmax(13, 0, false, 3, d, 6, 4, 1);
    check_hardmax(13, 1, true, 3, d, 2, 3, 4);
    check_hardmax(13, 0, true, 3, d, 1, 2, 12);

    /* by hand: ties to the first, NaN counts as the maximum (np.argmax) */
    int64_t d24[2] = {2, 4};
    float v[8] = {1, 3, 3, 2, 0, NAN, 7, NAN};
    static const float want[8] = {0, 1, 0, 0, 0, 1, 0, 0};
    graft_tensor *x = lt_tensor_f32(2, d24, v);
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Hardmax", 1, 0, 1);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
    for (int i = 0; i < 8; i++)
        if (graft_tensor_f32(c.out[0])[i] != want[i])
            fail_msg("Hardmax elem %d: %g, want %g", i, graft_tensor_f32(c.out[0])[i], want[i]);
    /* zero gradient almost everywhere: no backward, so a training plan says
     * so instead of silently learning nothing */
    assert_null(c.def->backward);
    lt_call_fini(&c);
    graft_graph_destroy(g);

    /* opset 11 default axis 1 on [2,4]: the same rows */
    g = lt_graph(11);
    n = lt_node(g, "Hardmax", 1, 0, 1);
    assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
    assert_memory_equal(graft_tensor_f32(c.out[0]), want, sizeof want);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);

    /* bad axis and int64 input: a status, not a crash */
    int64_t d23[2] = {2, 3};
    x = lt_tensor_rand(2, d23, 1, 0, 1);
    g = lt_graph(13);
    n = lt_node(g, "Hardmax", 1, 0, 1);
    graft_node_set_int(g, n, "axis", -3, NULL);
    assert_int_equal(lt_prepare(&c, g, n, 1, &x, 0), GRAFT_ERR_INVALID);
    assert_non_null(strstr(c.err.msg, "Hardmax node 'n0'"));
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);
    x = lt_tensor_i64(2, d23, (int64_t[]){1, 2, 3, 4, 5, 6});
    g = lt_graph(13);
    n = lt_node(g, "Hardmax", 1, 0, 1);
    assert_int_equal(lt_prepare(&c, g, n, 1, &x, 0), GRAFT_ERR_UNSUPPORTED);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);
}

static void test_onnx_node_data(void **state)
{
    (void)state;
    static const char *const ops[] = {"Softmax", "LogSoftmax", "Hardmax", NULL};
    int pass, fail, skip;
    if (lt_onnx_suite(ops, &pass, &fail, &skip) < 0)
        skip();
    assert_int_equal(fail, 0);
    /* 14 Softmax/LogSoftmax and 7 Hardmax tests */
    assert_true(pass >= 21);
}

/* B13a/B13b from ../shared/cases: the node tests' inputs and outputs. */
static void shared_case(const char *dir, int opset)
{
    const char *shared = getenv("GRAFT_SHARED_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/cases/%s/test_data_set_0/input_0.pb", shared ? shared : "",
             dir);
    graft_tensor *x = lt_read_pb(path);
    snprintf(path, sizeof path, "%s/cases/%s/test_data_set_0/input_1.pb", shared ? shared : "",
             dir);
    graft_tensor *xc = lt_read_pb(path);
    if (!x || !xc) {
        graft_tensor_destroy(x);
        graft_tensor_destroy(xc);
        return;
    }
    /* outputs: Softmax(X), LogSoftmax(X), Hardmax(X), Softmax(Xc) */
    static const int outs[4] = {0, 1, 2, 3};
    static const char *const ops[4] = {"Softmax", "LogSoftmax", "Hardmax", "Softmax"};
    graft_tensor *ins[4] = {x, x, x, xc};
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof path, "%s/cases/%s/test_data_set_0/output_%d.pb", shared, dir,
                 outs[k]);
        graft_tensor *want = lt_read_pb(path);
        if (!want)
            continue;
        graft_graph *g = lt_graph(opset);
        int32_t n = lt_node(g, ops[k], 1, 0, 1);
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 1, &ins[k]), GRAFT_OK);
        char msg[256];
        if (!lt_close(c.out[0], want, 1e-6, 1e-5, msg, sizeof msg))
            fail_msg("%s output %d: %s", dir, outs[k], msg);
        lt_call_fini(&c);
        graft_graph_destroy(g);
        graft_tensor_destroy(want);
    }
    graft_tensor_destroy(x);
    graft_tensor_destroy(xc);
}

static void test_shared_cases(void **state)
{
    (void)state;
    shared_case("B13a_softmax_default_axis_opset11", 11);
    shared_case("B13b_softmax_default_axis_opset13", 13);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_axis_semantics), cmocka_unit_test(test_bad_axis),
        cmocka_unit_test(test_gradients),      cmocka_unit_test(test_hardmax),
        cmocka_unit_test(test_onnx_node_data),
        cmocka_unit_test(test_shared_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
