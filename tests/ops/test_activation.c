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

/* The newer activations by hand, at points where the value is exact or a
 * short closed form:
 *   Softplus(0) = ln 2, Softplus(ln 3) = ln 4, Softplus(-ln 3) = ln(4/3)
 *   Softsign(1) = 1/2, Softsign(-3) = -3/4
 *   Mish(0) = 0, Mish(ln 3) = ln 3 tanh(ln 4) = ln 3 (16 - 1)/(16 + 1)
 *   ThresholdedRelu alpha 1: 1 -> 0 (not above), 1.5 -> 1.5
 *   Celu alpha 2: x = -2 ln 2 -> 2 (e^(-ln 2) - 1) = -1
 *   Shrink lambd 1.5 bias 1: 2 -> 1, -2 -> -1, 1 -> 0
 *   Gelu(0) = 0, Gelu(x) - Gelu(-x) = x (Phi(x) + Phi(-x) = 1); with
 *   erf(1/sqrt 2) = 0.682689492 (the one-sigma mass), Gelu(1) = 0.841344746. */
static void test_new_activations(void **state)
{
    (void)state;
    const float ln2 = 0.69314718056f, ln3 = 1.09861228867f;
    struct { const char *op; const char *attr; float av; const char *attr2; float av2;
             float x, want; } cases[] = {
        {"Softplus", NULL, 0, NULL, 0, 0, ln2},
        {"Softplus", NULL, 0, NULL, 0, ln3, 2 * ln2},
        {"Softplus", NULL, 0, NULL, 0, -ln3, 2 * ln2 - ln3},
        {"Softplus", NULL, 0, NULL, 0, 100, 100},
        {"Softsign", NULL, 0, NULL, 0, 1, 0.5f},
        {"Softsign", NULL, 0, NULL, 0, -3, -0.75f},
        {"Mish", NULL, 0, NULL, 0, 0, 0},
        {"Mish", NULL, 0, NULL, 0, ln3, ln3 * 15.0f / 17.0f},
        {"ThresholdedRelu", NULL, 0, NULL, 0, 1, 0},
        {"ThresholdedRelu", NULL, 0, NULL, 0, 1.5f, 1.5f},
        {"ThresholdedRelu", "alpha", 2, NULL, 0, 1.5f, 0},
        {"Celu", "alpha", 2, NULL, 0, -2 * ln2, -1},
        {"Celu", NULL, 0, NULL, 0, 3, 3},
        {"Shrink", "lambd", 1.5f, "bias", 1, 2, 1},
        {"Shrink", "lambd", 1.5f, "bias", 1, -2, -1},
        {"Shrink", "lambd", 1.5f, "bias", 1, 1, 0},
        {"Shrink", NULL, 0, NULL, 0, 0.7f, 0.7f},
        {"Gelu", NULL, 0, NULL, 0, 0, 0},
        {"Gelu", NULL, 0, NULL, 0, 1, 0.841344746f},
        {"Gelu", NULL, 0, NULL, 0, -1, 0.841344746f - 1},
    };
    int64_t one = 1;
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        graft_tensor *x = lt_tensor_f32(1, &one, &cases[k].x);
        graft_graph *g = lt_graph(20);
        int32_t n = lt_node(g, cases[k].op, 1, 0, 1);
        if (cases[k].attr)
            graft_node_set_float(g, n, cases[k].attr, cases[k].av, NULL);
        if (cases[k].attr2)
            graft_node_set_float(g, n, cases[k].attr2, cases[k].av2, NULL);
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
        float got = graft_tensor_f32(c.out[0])[0];
        if (fabsf(got - cases[k].want) > 1e-6f * (1 + fabsf(cases[k].want)))
            fail_msg("%s(%g) = %.9g, want %.9g", cases[k].op, cases[k].x, got, cases[k].want);
        lt_call_fini(&c);
        graft_graph_destroy(g);
        graft_tensor_destroy(x);
    }
    /* Gelu tanh form at x = 1: u = sqrt(2/pi) (1 + 0.044715) = 0.833561...,
     * tanh u = 0.682384..., y = (1 + tanh u) / 2 = 0.841192 (vs 0.841345 exact) */
    float xv = 1;
    graft_tensor *x = lt_tensor_f32(1, &one, &xv);
    graft_graph *g = lt_graph(20);
    int32_t n = lt_node(g, "Gelu", 1, 0, 1);
    graft_node_set_string(g, n, "approximate", "tanh", NULL);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
    double u = sqrt(2 / 3.14159265358979) * 1.044715;
    assert_float_equal(graft_tensor_f32(c.out[0])[0], 0.5 * (1 + tanh(u)), 1e-6);
    assert_float_equal(graft_tensor_f32(c.out[0])[0], 0.841192, 1e-5);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* bad attributes: a clean status naming the node */
    g = lt_graph(20);
    n = lt_node(g, "Gelu", 1, 0, 1);
    graft_node_set_string(g, n, "approximate", "fast", NULL);
    assert_int_equal(lt_prepare(&c, g, n, 1, &x, 0), GRAFT_ERR_INVALID);
    assert_non_null(strstr(c.err.msg, "'n0'"));
    lt_call_fini(&c);
    graft_graph_destroy(g);
    g = lt_graph(12);
    n = lt_node(g, "Celu", 1, 0, 1);
    graft_node_set_float(g, n, "alpha", 0, NULL);
    assert_int_equal(lt_prepare(&c, g, n, 1, &x, 0), GRAFT_ERR_INVALID);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);
    /* integer Shrink: lambd 1.5 bias 1 on {-3, -1, 0, 2, 5} -> {-2, 0, 0, 1, 4} */
    int64_t iv[5] = {-3, -1, 0, 2, 5}, wi[5] = {-2, 0, 0, 1, 4}, five = 5;
    graft_tensor *xi = lt_tensor_i64(1, &five, iv);
    g = lt_graph(13);
    n = lt_node(g, "Shrink", 1, 0, 1);
    graft_node_set_float(g, n, "lambd", 1.5f, NULL);
    graft_node_set_float(g, n, "bias", 1, NULL);
    assert_int_equal(lt_run(&c, g, n, 1, &xi), GRAFT_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(graft_tensor_i64(c.out[0])[i], wi[i]);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* integer Softplus is refused */
    g = lt_graph(13);
    n = lt_node(g, "Softplus", 1, 0, 1);
    assert_int_equal(lt_prepare(&c, g, n, 1, &xi, 0), GRAFT_ERR_UNSUPPORTED);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(xi);
}

static void test_new_gradients(void **state)
{
    (void)state;
    struct { const char *op; const char *attr; float av; bool str; } cases[] = {
        {"Softplus", NULL, 0, false}, {"Softsign", NULL, 0, false}, {"Mish", NULL, 0, false},
        {"ThresholdedRelu", "alpha", 0.5f, false}, {"Celu", "alpha", 1.5f, false},
        {"Celu", "alpha", -1.5f, false}, {"Shrink", "lambd", 0.7f, false},
        {"Gelu", NULL, 0, false}, {"Gelu", "approximate", 0, true},
    };
    int64_t d[2] = {4, 6};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        graft_graph *g = lt_graph(20);
        int32_t n = lt_node(g, cases[k].op, 1, 0, 1);
        if (cases[k].str)
            graft_node_set_string(g, n, cases[k].attr, "tanh", NULL);
        else if (cases[k].attr)
            graft_node_set_float(g, n, cases[k].attr, cases[k].av, NULL);
        graft_tensor *x = lt_tensor_rand(2, d, 61 + (uint64_t)k, -4, 4);
        /* clear of the kinks at 0, +-0.5 and +-0.7 */
        for (int i = 0; i < 24; i++) {
            float *v = &graft_tensor_f32(x)[i];
            static const float kinks[] = {0, 0.5f, -0.5f, 0.7f, -0.7f};
            for (int j = 0; j < 5; j++)
                if (fabsf(*v - kinks[j]) < 0.05f)
                    *v += 0.13f;
        }
        double e = lt_gradcheck(g, n, 1, &x, 1, 1e-3, 3e-3, false);
        if (!(e <= 3e-3))
            fail_msg("%s gradient error %g", cases[k].op, e);
        graft_tensor_destroy(x);
        graft_graph_destroy(g);
    }
}

/* PRelu on X [2,3,2] = +-1..: y = x for x >= 0, slope x below.
 * Opset 16, slope [2] (last dim): x = -2 at [.,.,0] -> -2 * 0.1, at [.,.,1] -> -2 * 0.5.
 * Opset 6, slope [3] (dim 1, per channel): x = -2 at channel c -> -2 * slope[c]. */
static void test_prelu(void **state)
{
    (void)state;
    int64_t dx[3] = {2, 3, 2}, d2[1] = {2}, d3[1] = {3}, d31[2] = {3, 1};
    float xv[12] = {-2, -2, 1, -2, -2, 3, 4, -2, -2, -2, -2, 0};
    float s2[2] = {0.1f, 0.5f}, s3[3] = {0.1f, 0.2f, 0.3f};
    graft_tensor *x = lt_tensor_f32(3, dx, xv);
    graft_tensor *t2 = lt_tensor_f32(1, d2, s2), *t3 = lt_tensor_f32(1, d3, s3),
                 *t31 = lt_tensor_f32(2, d31, s3);
    struct { int opset; graft_tensor *s; float want[12]; } cases[] = {
        {16, t2, {-0.2f, -1, 1, -1, -0.2f, 3, 4, -1, -0.2f, -1, -0.2f, 0}},
        {6, t3, {-0.2f, -0.2f, 1, -0.4f, -0.6f, 3, 4, -0.2f, -0.4f, -0.4f, -0.6f, 0}},
        {9, t31, {-0.2f, -0.2f, 1, -0.4f, -0.6f, 3, 4, -0.2f, -0.4f, -0.4f, -0.6f, 0}},
        /* opset 6 with a slope that matches the last dim only: plain broadcast */
        {6, t2, {-0.2f, -1, 1, -1, -0.2f, 3, 4, -1, -0.2f, -1, -0.2f, 0}},
    };
    for (int k = 0; k < 4; k++) {
        graft_graph *g = lt_graph(cases[k].opset);
        int32_t n = lt_node(g, "PRelu", 2, 0, 1);
        graft_tensor *in[2] = {x, cases[k].s};
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 2, in), GRAFT_OK);
        for (int i = 0; i < 12; i++)
            if (fabsf(graft_tensor_f32(c.out[0])[i] - cases[k].want[i]) > 1e-6f)
                fail_msg("PRelu case %d elem %d: %g want %g", k, i,
                         graft_tensor_f32(c.out[0])[i], cases[k].want[i]);
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    /* hand gradient, opset 6 per-channel, dy = 1: dslope[c] = sum of the
     * negative x in channel c = -2 * 3 for c = 0 (x[0], x[1], x[7]), -2 * 3 for
     * c = 1 (x[3], x[8], x[9]) and -2 * 2 for c = 2 (x[4], x[10]) */
    {
        graft_graph *g = lt_graph(6);
        int32_t n = lt_node(g, "PRelu", 2, 0, 1);
        graft_tensor *in[2] = {x, t3};
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 2, in), GRAFT_OK);
        graft_tensor *dy = lt_tensor_f32(3, dx, NULL), *dxt = lt_tensor_f32(3, dx, NULL),
                     *ds = lt_tensor_f32(1, d3, NULL);
        for (int i = 0; i < 12; i++)
            graft_tensor_f32(dy)[i] = 1, graft_tensor_f32(dxt)[i] = 0;
        for (int i = 0; i < 3; i++)
            graft_tensor_f32(ds)[i] = 0;
        graft_tensor *dout[1] = {dy}, *din[2] = {dxt, ds};
        graft_op_call oc = {.graph = g, .node = &g->nodes[n], .params = c.params, .n_in = 2,
                            .n_out = 1, .in = in, .out = c.out, .d_out = dout, .d_in = din,
                            .state = &c.state, .ctx = &c.ctx, .err = &c.err};
        assert_int_equal(c.def->backward(&oc), GRAFT_OK);
        float wds[3] = {-6, -6, -4};
        for (int i = 0; i < 3; i++)
            assert_float_equal(graft_tensor_f32(ds)[i], wds[i], 1e-6);
        /* dx = 1 where x >= 0, slope[c] below: x[0] -> 0.1, x[2] -> 1, x[4] -> 0.3 */
        assert_float_equal(graft_tensor_f32(dxt)[0], 0.1, 1e-6);
        assert_float_equal(graft_tensor_f32(dxt)[2], 1, 0);
        assert_float_equal(graft_tensor_f32(dxt)[4], 0.3, 1e-6);
        graft_tensor_destroy(dy);
        graft_tensor_destroy(dxt);
        graft_tensor_destroy(ds);
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    /* finite differences for X and slope, every broadcast form */
    int64_t d4[4] = {2, 3, 4, 5}, c11[3] = {3, 1, 1}, w5[1] = {5}, one[1] = {1};
    struct { int opset; int rank; const int64_t *dims; } gc[] = {
        {16, 3, c11}, {16, 1, w5}, {16, 4, d4}, {16, 1, one}, {16, 0, NULL}, {6, 1, d3}};
    for (int k = 0; k < 6; k++) {
        graft_graph *g = lt_graph(gc[k].opset);
        int32_t n = lt_node(g, "PRelu", 2, 0, 1);
        graft_tensor *xr = lt_tensor_rand(4, d4, 70 + (uint64_t)k, -2, 2);
        for (int64_t i = 0; i < 120; i++)
            if (fabsf(graft_tensor_f32(xr)[i]) < 0.05f)
                graft_tensor_f32(xr)[i] += 0.1f;
        graft_tensor *sr = lt_tensor_rand(gc[k].rank, gc[k].dims, 80 + (uint64_t)k, 0.05f, 0.5f);
        graft_tensor *in[2] = {xr, sr};
        double e = lt_gradcheck(g, n, 2, in, 3, 1e-3, 2e-3, false);
        if (!(e <= 2e-3))
            fail_msg("PRelu case %d gradient error %g", k, e);
        graft_tensor_destroy(xr);
        graft_tensor_destroy(sr);
        graft_graph_destroy(g);
    }
    /* slope that does not broadcast, or of another type: clean errors */
    int64_t d4b[1] = {4};
    graft_tensor *bad = lt_tensor_f32(1, d4b, NULL);
    int64_t iv[2] = {1, 2};
    graft_tensor *si = lt_tensor_i64(1, d2, iv);
    graft_tensor *bads[2] = {bad, si};
    graft_status want_st[2] = {GRAFT_ERR_SHAPE, GRAFT_ERR_INVALID};
    for (int k = 0; k < 2; k++) {
        graft_graph *g = lt_graph(16);
        int32_t n = lt_node(g, "PRelu", 2, 0, 1);
        graft_tensor *in[2] = {x, bads[k]};
        lt_call c;
        assert_int_equal(lt_prepare(&c, g, n, 2, in, 0), want_st[k]);
        assert_non_null(strstr(c.err.msg, "PRelu node 'n0'"));
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    /* int64 PRelu (opset 9+) */
    int64_t xi[4] = {-3, 2, -1, 0}, wi[4] = {-6, 2, -2, 0}, four[1] = {4}, two = 2;
    graft_tensor *txi = lt_tensor_i64(1, four, xi), *tsi = lt_tensor_i64(0, NULL, &two);
    graft_tensor *ii[2] = {txi, tsi};
    graft_graph *g = lt_graph(16);
    int32_t n = lt_node(g, "PRelu", 2, 0, 1);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 2, ii), GRAFT_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(graft_tensor_i64(c.out[0])[i], wi[i]);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* a large tensor takes the parallel path and agrees with the reference */
    int64_t big[2] = {64, 4099};
    graft_tensor *xb = lt_tensor_rand(2, big, 91, -3, 3);
    graft_tensor *sb = lt_tensor_rand(1, big + 1, 92, 0, 1);
    graft_tensor *ib[2] = {xb, sb};
    g = lt_graph(16);
    n = lt_node(g, "PRelu", 2, 0, 1);
    assert_int_equal(lt_run(&c, g, n, 2, ib), GRAFT_OK);
    for (int64_t i = 0; i < big[0] * big[1]; i += 7) {
        float v = graft_tensor_f32(xb)[i], s = graft_tensor_f32(sb)[i % big[1]];
        assert_float_equal(graft_tensor_f32(c.out[0])[i], v < 0 ? s * v : v, 0);
    }
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(xb);
    graft_tensor_destroy(sb);
    graft_tensor_destroy(txi);
    graft_tensor_destroy(tsi);
    graft_tensor_destroy(bad);
    graft_tensor_destroy(si);
    graft_tensor_destroy(x);
    graft_tensor_destroy(t2);
    graft_tensor_destroy(t3);
    graft_tensor_destroy(t31);
}

static void test_onnx_node_data(void **state)
{
    (void)state;
    static const char *const ops[] = {"Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid",
                                      "HardSwish", "Tanh", "Elu", "Selu", "Softplus", "Softsign",
                                      "Mish", "ThresholdedRelu", "Celu", "Shrink", "Gelu",
                                      "PRelu", NULL};
    int pass, fail, skip;
    if (lt_onnx_suite(ops, &pass, &fail, &skip) < 0)
        skip();
    assert_int_equal(fail, 0);
    assert_true(pass >= 41);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),      cmocka_unit_test(test_clip_forms),
        cmocka_unit_test(test_large_parallel), cmocka_unit_test(test_transcendental_accuracy),
        cmocka_unit_test(test_gradients),      cmocka_unit_test(test_new_activations),
        cmocka_unit_test(test_new_gradients),  cmocka_unit_test(test_prelu),
        cmocka_unit_test(test_onnx_node_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
