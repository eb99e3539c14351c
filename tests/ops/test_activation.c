/* Activations: defaults (E08), Clip in both opset forms (B15a/b/c), naive
 * references, finite-difference gradients, ONNX node test data. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lightops_util.h"
#include "testutil.h"

static const float xs[10] = {-4, -2.5f, -1, -0.1f, 0, 0.3f, 1, 2.5f, 3.5f, 6};

static void run_act(graft_graph *g, int32_t n, int n_in, graft_tensor **in, const float *want)
{
    lt_call c;
    graft_status st = lt_run(&c, g, n, n_in, in);
    if (st)
        fail_msg("%s", c.err.msg);
    for (int i = 0; i < 10; i++)
        if (fabsf(graft_tensor_f32(c.out[0])[i] - want[i]) > 1e-5f * (1 + fabsf(want[i])))
            fail_msg("%s[%d] = %g, want %g", g->nodes[n].op_type, i,
                     graft_tensor_f32(c.out[0])[i], want[i]);
    lt_call_fini(&c);
}

static double ref(const char *op, double x, double alpha, double beta)
{
    if (!strcmp(op, "Relu")) return x > 0 ? x : 0;
    if (!strcmp(op, "LeakyRelu")) return x >= 0 ? x : alpha * x;
    if (!strcmp(op, "Sigmoid")) return 1 / (1 + exp(-x));
    if (!strcmp(op, "HardSigmoid")) return fmax(0, fmin(1, alpha * x + beta));
    if (!strcmp(op, "HardSwish")) return x * fmax(0, fmin(1, x / 6 + 0.5));
    if (!strcmp(op, "Tanh")) return tanh(x);
    if (!strcmp(op, "Elu")) return x > 0 ? x : alpha * (exp(x) - 1);
    /* Selu */
    return beta * (x > 0 ? x : alpha * (exp(x) - 1));
}

/* E08: attribute defaults straight from the ONNX spec. */
static void test_defaults(void **state)
{
    (void)state;
    int64_t d[2] = {1, 10};
    graft_tensor *x = lt_tensor_f32(2, d, xs);
    struct { const char *op; double a, b; } cases[] = {
        {"Relu", 0, 0}, {"LeakyRelu", 0.01, 0}, {"Sigmoid", 0, 0}, {"HardSigmoid", 0.2, 0.5},
        {"HardSwish", 0, 0}, {"Tanh", 0, 0}, {"Elu", 1.0, 0},
        {"Selu", 1.6732632423543772, 1.0507009873554805}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        graft_graph *g = lt_graph(14);
        int32_t n = lt_node(g, cases[k].op, 1, 0, 1);
        float want[10];
        for (int i = 0; i < 10; i++)
            want[i] = (float)ref(cases[k].op, xs[i], cases[k].a, cases[k].b);
        run_act(g, n, 1, &x, want);
        graft_graph_destroy(g);
    }
    /* PyTorch's Hardsigmoid export: alpha 1/6 read from the attribute */
    graft_graph *g = lt_graph(14);
    int32_t n = lt_node(g, "HardSigmoid", 1, 0, 1);
    graft_node_set_float(g, n, "alpha", 1.0f / 6, NULL);
    float want[10] = {0, 0.0833333f, 0.3333333f, 0.4833333f, 0.5f, 0.55f, 0.6666667f,
                      0.9166667f, 1, 1};
    run_act(g, n, 1, &x, want);
    graft_graph_destroy(g);
    /* explicit alphas */
    g = lt_graph(14);
    n = lt_node(g, "LeakyRelu", 1, 0, 1);
    graft_node_set_float(g, n, "alpha", 0.2f, NULL);
    for (int i = 0; i < 10; i++)
        want[i] = (float)ref("LeakyRelu", xs[i], 0.2, 0);
    run_act(g, n, 1, &x, want);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);
}

static void test_clip_forms(void **state)
{
    (void)state;
    int64_t d[2] = {1, 6}, d0[1] = {0};
    (void)d0;
    float xv[6] = {-10, -1, 0, 3, 6.5f, 10};
    graft_tensor *x = lt_tensor_f32(2, d, xv);
    float six = 6, zero = 0;
    graft_tensor *m6 = lt_tensor_f32(0, NULL, &six), *z0 = lt_tensor_f32(0, NULL, &zero);
    float w1[6] = {-10, -1, 0, 3, 6, 6}, w3[6] = {0, 0, 0, 3, 6.5f, 10};
    /* B15a: Clip-11 (X, "", max) */
    graft_graph *g = lt_graph(11);
    int32_t n = lt_node(g, "Clip", 3, 1u << 1, 1);
    graft_tensor *in[3] = {x, NULL, m6};
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 3, in), GRAFT_OK);
    for (int i = 0; i < 6; i++)
        assert_float_equal(graft_tensor_f32(c.out[0])[i], w1[i], 0);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* Clip(X) is the identity; Clip(X, 0) is Relu */
    g = lt_graph(11);
    n = lt_node(g, "Clip", 1, 0, 1);
    assert_int_equal(lt_run(&c, g, n, 1, in), GRAFT_OK);
    for (int i = 0; i < 6; i++)
        assert_float_equal(graft_tensor_f32(c.out[0])[i], xv[i], 0);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    g = lt_graph(13);
    n = lt_node(g, "Clip", 2, 0, 1);
    in[1] = z0;
    assert_int_equal(lt_run(&c, g, n, 2, in), GRAFT_OK);
    for (int i = 0; i < 6; i++)
        assert_float_equal(graft_tensor_f32(c.out[0])[i], w3[i], 0);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* B15b: Clip-6 attributes; absent min = lowest float */
    g = lt_graph(6);
    n = lt_node(g, "Clip", 1, 0, 1);
    graft_node_set_float(g, n, "max", 1, NULL);
    float w2[6] = {-10, -1, 0, 1, 1, 1};
    assert_int_equal(lt_run(&c, g, n, 1, in), GRAFT_OK);
    for (int i = 0; i < 6; i++)
        assert_float_equal(graft_tensor_f32(c.out[0])[i], w2[i], 0);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    g = lt_graph(6);
    n = lt_node(g, "Clip", 1, 0, 1);
    graft_node_set_float(g, n, "min", 0, NULL);
    graft_node_set_float(g, n, "max", 6, NULL);
    float w4[6] = {0, 0, 0, 3, 6, 6};
    assert_int_equal(lt_run(&c, g, n, 1, in), GRAFT_OK);
    for (int i = 0; i < 6; i++)
        assert_float_equal(graft_tensor_f32(c.out[0])[i], w4[i], 0);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* B15c: Clip-6 with three inputs is rejected naming the node */
    g = lt_graph(6);
    n = lt_node(g, "Clip", 3, 0, 1);
    in[1] = z0;
    assert_int_equal(lt_prepare(&c, g, n, 3, in, 0), GRAFT_ERR_INVALID);
    assert_non_null(strstr(c.err.msg, "'n0'"));
    assert_non_null(strstr(c.err.msg, "Clip-6 takes 1 input, got 3"));
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* a non-scalar bound is a shape error, not a crash */
    g = lt_graph(13);
    n = lt_node(g, "Clip", 2, 0, 1);
    in[1] = x;
    assert_int_equal(lt_prepare(&c, g, n, 2, in, 0), GRAFT_ERR_SHAPE);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* int64 Clip (shape arithmetic) */
    int64_t iv[4] = {-5, 0, 5, 50}, lo = 0, hi = 10, d4[1] = {4};
    graft_tensor *xi = lt_tensor_i64(1, d4, iv), *tlo = lt_tensor_i64(0, NULL, &lo),
                 *thi = lt_tensor_i64(0, NULL, &hi);
    graft_tensor *ii[3] = {xi, tlo, thi};
    g = lt_graph(13);
    n = lt_node(g, "Clip", 3, 0, 1);
    assert_int_equal(lt_run(&c, g, n, 3, ii), GRAFT_OK);
    int64_t wi[4] = {0, 0, 5, 10};
    for (int i = 0; i < 4; i++)
        assert_int_equal(graft_tensor_i64(c.out[0])[i], wi[i]);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(xi);
    graft_tensor_destroy(tlo);
    graft_tensor_destroy(thi);
    graft_tensor_destroy(x);
    graft_tensor_destroy(m6);
    graft_tensor_destroy(z0);
}

static void test_large_parallel(void **state)
{
    (void)state;
    static const char *ops[] = {"Relu", "Sigmoid", "HardSwish", "Tanh", "Elu"};
    int64_t d[1] = {100003};
    graft_tensor *x = lt_tensor_rand(1, d, 11, -6, 6);
    for (int k = 0; k < 5; k++) {
        graft_graph *g = lt_graph(14);
        int32_t n = lt_node(g, ops[k], 1, 0, 1);
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
        for (int64_t i = 0; i < d[0]; i++) {
            double w = ref(ops[k], graft_tensor_f32(x)[i], 1.0, 0);
            if (fabs(graft_tensor_f32(c.out[0])[i] - w) > 1e-5 * (1 + fabs(w)))
                fail_msg("%s[%lld]", ops[k], (long long)i);
        }
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    graft_tensor_destroy(x);
}

/* The vectorised Sigmoid/Tanh against double libm over a wide range, near
 * zero, at saturation, and with NaN. */
static void test_transcendental_accuracy(void **state)
{
    (void)state;
    int64_t d[1] = {20011};
    graft_tensor *x = lt_tensor_f32(1, d, NULL);
    float *v = graft_tensor_f32(x);
    for (int64_t i = 0; i < d[0]; i++) {
        double t = (double)i / (double)(d[0] - 1);
        v[i] = i % 3 == 0 ? (float)(-40 + 80 * t) : i % 3 == 1 ? (float)(-1e-3 + 2e-3 * t)
                                                             : (float)(-9 + 18 * t);
    }
    v[5] = NAN;
    static const char *ops[] = {"Sigmoid", "Tanh"};
    for (int k = 0; k < 2; k++) {
        graft_graph *g = lt_graph(13);
        int32_t n = lt_node(g, ops[k], 1, 0, 1);
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
        double worst = 0;
        for (int64_t i = 0; i < d[0]; i++) {
            float got = graft_tensor_f32(c.out[0])[i];
            if (isnan(v[i])) {
                assert_true(isnan(got));
                continue;
            }
            double w = k == 0 ? 1 / (1 + exp(-(double)v[i])) : tanh((double)v[i]);
            double e = fabs(got - w) / (1e-30 + fabs(w));
            if (fabs(got - w) > 1e-7 && e > worst)
                worst = e;
        }
        if (worst > 2e-6)
            fail_msg("%s relative error %g", ops[k], worst);
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    graft_tensor_destroy(x);
}

static void test_gradients(void **state)
{
    (void)state;
    static const char *ops[] = {"Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid",
                                "HardSwish", "Tanh", "Elu", "Selu"};
    int64_t d[2] = {4, 6};
    for (int k = 0; k < 9; k++) {
        graft_graph *g = lt_graph(13);
        bool clip = !strcmp(ops[k], "Clip");
        int32_t n = lt_node(g, ops[k], clip ? 3 : 1, 0, 1);
        graft_tensor *x = lt_tensor_rand(2, d, 21 + (uint64_t)k, -4, 4);
        /* keep clear of the kinks at 0, +-1, +-2.5 and +-3 by at least 0.05 */
        for (int i = 0; i < 24; i++) {
            float *v = &graft_tensor_f32(x)[i];
            static const float kinks[] = {0, 1, -1, 2.5f, -2.5f, 3, -3};
            for (int j = 0; j < 7; j++)
                if (fabsf(*v - kinks[j]) < 0.05f)
                    *v += 0.1f;
        }
        float lo = -1, hi = 1;
        graft_tensor *tlo = lt_tensor_f32(0, NULL, &lo), *thi = lt_tensor_f32(0, NULL, &hi);
        graft_tensor *in[3] = {x, tlo, thi};
        double e = lt_gradcheck(g, n, clip ? 3 : 1, in, 1, 1e-3, 3e-3, false);
        if (!(e <= 3e-3))
            fail_msg("%s gradient error %g", ops[k], e);
        graft_tensor_destroy(x);
        graft_tensor_destroy(tlo);
        graft_tensor_destroy(thi);
        graft_graph_destroy(g);
    }
    /* Clip-6 attribute form */
    graft_graph *g = lt_graph(6);
    int32_t n = lt_node(g, "Clip", 1, 0, 1);
    graft_node_set_float(g, n, "min", 0, NULL);
    graft_node_set_float(g, n, "max", 6, NULL);
    graft_tensor *x = lt_tensor_f32(2, (int64_t[]){1, 10}, xs);
    graft_tensor_f32(x)[4] = 0.2f;
    graft_tensor_f32(x)[9] = 6.5f;
    double e = lt_gradcheck(g, n, 1, &x, 1, 1e-3, 3e-3, false);
    assert_true(e <= 3e-3);
    graft_tensor_destroy(x);
    graft_graph_destroy(g);
}

static void test_onnx_node_data(void **state)
{
    (void)state;
    static const char *const ops[] = {"Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid",
                                      "HardSwish", "Tanh", "Elu", "Selu", NULL};
    int pass, fail, skip;
    if (lt_onnx_suite(ops, &pass, &fail, &skip) < 0)
        skip();
    assert_int_equal(fail, 0);
    assert_true(pass >= 25);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),      cmocka_unit_test(test_clip_forms),
        cmocka_unit_test(test_large_parallel), cmocka_unit_test(test_transcendental_accuracy),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_onnx_node_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
