/* Elementwise ops: broadcasting against a naive reference, int64 shape
 * arithmetic, bad shapes, finite-difference gradients, ONNX node test data. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lightops_util.h"
#include "testutil.h"

/* Naive numpy broadcast index: offset in a tensor of shape (ra, a) for
 * output multi-index idx of rank r. */
static int64_t bidx(int r, const int64_t *idx, int ra, const int64_t *a)
{
    int64_t off = 0;
    for (int i = 0; i < ra; i++) {
        int64_t k = idx[r - ra + i];
        off = off * a[i] + (a[i] == 1 ? 0 : k);
    }
    return off;
}

static float ref_op(const char *op, float x, float z)
{
    if (!strcmp(op, "Add") || !strcmp(op, "Sum")) return x + z;
    if (!strcmp(op, "Sub")) return x - z;
    if (!strcmp(op, "Mul")) return x * z;
    if (!strcmp(op, "Div")) return x / z;
    if (!strcmp(op, "Pow")) return powf(x, z);
    if (!strcmp(op, "Max")) return x > z ? x : z;
    return x < z ? x : z;
}

static void check_bcast(const char *op, int ra, const int64_t *da, int rb, const int64_t *db)
{
    graft_graph *g = lt_graph(17);
    int32_t n = lt_node(g, op, 2, 0, 1);
    graft_tensor *a = lt_tensor_rand(ra, da, 1, 0.5f, 2.0f);
    graft_tensor *b = lt_tensor_rand(rb, db, 2, 0.5f, 2.0f);
    graft_tensor *in[2] = {a, b};
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 2, in), GRAFT_OK);
    const graft_tensor *y = c.out[0];
    int r = y->rank;
    int64_t idx[GRAFT_MAX_RANK] = {0}, total = graft_tensor_nelem(y);
    for (int64_t i = 0; i < total; i++) {
        int64_t rem = i;
        for (int d = r - 1; d >= 0; d--) {
            idx[d] = rem % y->dims[d];
            rem /= y->dims[d];
        }
        float want = ref_op(op, graft_tensor_f32(a)[bidx(r, idx, ra, da)],
                            graft_tensor_f32(b)[bidx(r, idx, rb, db)]);
        float got = graft_tensor_f32(y)[i];
        if (fabsf(got - want) > 1e-5f * (1 + fabsf(want)))
            fail_msg("%s elem %lld: %g vs %g", op, (long long)i, got, want);
    }
    lt_call_fini(&c);
    graft_tensor_destroy(a);
    graft_tensor_destroy(b);
    graft_graph_destroy(g);
}

static void test_broadcast_forward(void **state)
{
    (void)state;
    static const char *ops[] = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum"};
    int64_t nchw[4] = {2, 3, 4, 5}, c11[3] = {3, 1, 1}, nc11[4] = {2, 3, 1, 1}, w[1] = {5};
    int64_t s0[1] = {0}, col[2] = {4, 1}, row[2] = {1, 5}, big[2] = {300, 257}, bigc[1] = {257};
    (void)s0;
    for (int i = 0; i < 8; i++) {
        check_bcast(ops[i], 4, nchw, 4, nchw);
        check_bcast(ops[i], 4, nchw, 3, c11);
        check_bcast(ops[i], 4, nchw, 4, nc11);
        check_bcast(ops[i], 4, nchw, 1, w);
        check_bcast(ops[i], 4, nchw, 0, NULL);
        check_bcast(ops[i], 0, NULL, 4, nchw);
        check_bcast(ops[i], 2, col, 2, row);
        check_bcast(ops[i], 3, c11, 4, nchw);
        check_bcast(ops[i], 2, big, 2, big);  /* parallel long row */
        check_bcast(ops[i], 2, big, 1, bigc); /* parallel rows */
    }
}

static void test_variadic(void **state)
{
    (void)state;
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Max", 3, 0, 1);
    int64_t d3[1] = {3}, d23[2] = {2, 3}, d1[1] = {1};
    float a[3] = {1, 5, -2}, b[6] = {0, 6, -3, 4, 1, -1}, z[1] = {2};
    graft_tensor *ta = lt_tensor_f32(1, d3, a), *tb = lt_tensor_f32(2, d23, b),
                 *tz = lt_tensor_f32(1, d1, z);
    graft_tensor *in[3] = {ta, tz, tb};
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 3, in), GRAFT_OK);
    float want[6] = {2, 6, 2, 4, 5, 2};
    assert_int_equal(c.out[0]->rank, 2);
    for (int i = 0; i < 6; i++)
        assert_float_equal(graft_tensor_f32(c.out[0])[i], want[i], 0);
    lt_call_fini(&c);
    graft_graph_destroy(g);

    g = lt_graph(13);
    n = lt_node(g, "Sum", 1, 0, 1);
    assert_int_equal(lt_run(&c, g, n, 1, in), GRAFT_OK);
    for (int i = 0; i < 3; i++)
        assert_float_equal(graft_tensor_f32(c.out[0])[i], a[i], 0);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(ta);
    graft_tensor_destroy(tb);
    graft_tensor_destroy(tz);
}

static void test_int64_shape_arith(void **state)
{
    (void)state;
    static const char *ops[] = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"};
    int64_t a[4] = {7, -7, 100, 3}, b[4] = {2, 2, 0, 3}, d4[1] = {4};
    int64_t want[7][4] = {{9, -5, 100, 6}, {5, -9, 100, 0}, {14, -14, 0, 9}, {3, -3, 0, 1},
                          {7, 2, 100, 3},  {2, -7, 0, 3},   {49, 49, 1, 27}};
    graft_tensor *ta = lt_tensor_i64(1, d4, a), *tb = lt_tensor_i64(1, d4, b);
    graft_tensor *in[2] = {ta, tb};
    for (int k = 0; k < 7; k++) {
        graft_graph *g = lt_graph(13);
        int32_t n = lt_node(g, ops[k], 2, 0, 1);
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 2, in), GRAFT_OK);
        assert_int_equal(c.out[0]->dtype, GRAFT_INT64);
        for (int i = 0; i < 4; i++)
            if (graft_tensor_i64(c.out[0])[i] != want[k][i])
                fail_msg("%s[%d] = %lld, want %lld", ops[k], i,
                         (long long)graft_tensor_i64(c.out[0])[i], (long long)want[k][i]);
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    /* unary int64 */
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Neg", 1, 0, 1);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 1, in), GRAFT_OK);
    assert_int_equal(graft_tensor_i64(c.out[0])[1], 7);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    g = lt_graph(13);
    n = lt_node(g, "Abs", 1, 0, 1);
    assert_int_equal(lt_run(&c, g, n, 1, in), GRAFT_OK);
    assert_int_equal(graft_tensor_i64(c.out[0])[1], 7);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(ta);
    graft_tensor_destroy(tb);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    int64_t d23[2] = {2, 3}, d4[1] = {4}, d2[1] = {2};
    graft_tensor *a = lt_tensor_rand(2, d23, 1, 0, 1), *b = lt_tensor_rand(1, d4, 2, 0, 1);
    graft_tensor *bi = lt_tensor_i64(1, d2, NULL);
    graft_tensor *in[2] = {a, b};
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Add", 2, 0, 1);
    lt_call c;
    assert_int_equal(lt_prepare(&c, g, n, 2, in, 0), GRAFT_ERR_SHAPE);
    assert_non_null(strstr(c.err.msg, "n0"));
    lt_call_fini(&c);
    in[1] = bi; /* float + int64 */
    assert_int_equal(lt_prepare(&c, g, n, 2, in, 0), GRAFT_ERR_INVALID);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* wrong input count */
    g = lt_graph(13);
    n = lt_node(g, "Mul", 1, 0, 1);
    assert_int_equal(lt_prepare(&c, g, n, 1, in, 0), GRAFT_ERR_INVALID);
    assert_non_null(strstr(c.err.msg, "Mul"));
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* Sqrt of int64 is unsupported, not a crash */
    g = lt_graph(13);
    n = lt_node(g, "Sqrt", 1, 0, 1);
    in[0] = bi;
    assert_int_equal(lt_prepare(&c, g, n, 1, in, 0), GRAFT_ERR_UNSUPPORTED);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(a);
    graft_tensor_destroy(b);
    graft_tensor_destroy(bi);
}

static void grad_binary(const char *op, int ra, const int64_t *da, int rb, const int64_t *db)
{
    graft_graph *g = lt_graph(17);
    int32_t n = lt_node(g, op, 2, 0, 1);
    graft_tensor *a = lt_tensor_rand(ra, da, 3, 0.5f, 2.0f);
    graft_tensor *b = lt_tensor_rand(rb, db, 4, 0.5f, 2.0f);
    graft_tensor *in[2] = {a, b};
    double e = lt_gradcheck(g, n, 2, in, 3, 1e-2, 2e-3, false);
    if (!(e <= 2e-3))
        fail_msg("%s gradient error %g", op, e);
    graft_tensor_destroy(a);
    graft_tensor_destroy(b);
    graft_graph_destroy(g);
}

static void test_binary_gradients(void **state)
{
    (void)state;
    static const char *ops[] = {"Add", "Sub", "Mul", "Div", "Pow"};
    int64_t nchw[4] = {2, 3, 2, 2}, c11[3] = {3, 1, 1}, nc11[4] = {2, 3, 1, 1}, w[1] = {2};
    for (int i = 0; i < 5; i++) {
        grad_binary(ops[i], 4, nchw, 4, nchw);
        grad_binary(ops[i], 4, nchw, 3, c11);
        grad_binary(ops[i], 4, nc11, 4, nchw);
        grad_binary(ops[i], 4, nchw, 1, w);
        grad_binary(ops[i], 0, NULL, 4, nchw);
    }
}

/* Pow by hand: a = 2, b = 3: y = 8, dy/da = b a^(b-1) = 12, dy/db = a^b ln a
 * = 8 ln 2; with dy = 0.5 the accumulated gradients are half that, on top of
 * what d_in held (1). A base of 0 gives the exponent no gradient (ln 0). */
static void test_pow_gradient_by_hand(void **state)
{
    (void)state;
    const float av[2] = {2.0f, 0.0f}, bv[2] = {3.0f, 2.0f};
    int64_t d[1] = {2};
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Pow", 2, 0, 1);
    graft_tensor *a = lt_tensor_f32(1, d, av), *b = lt_tensor_f32(1, d, bv);
    graft_tensor *in[2] = {a, b};
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 2, in), GRAFT_OK);
    assert_float_equal(graft_tensor_f32(c.out[0])[0], 8.0f, 1e-6);
    const float ones[2] = {1, 1}, half[2] = {0.5f, 0.5f};
    graft_tensor *dy = lt_tensor_f32(1, d, half);
    graft_tensor *ga = lt_tensor_f32(1, d, ones), *gb = lt_tensor_f32(1, d, ones);
    graft_tensor *d_out[1] = {dy}, *d_in[2] = {ga, gb};
    assert_int_equal(lt_backward(&c, d_out, d_in), GRAFT_OK);
    assert_float_equal(graft_tensor_f32(ga)[0], 1.0f + 6.0f, 1e-5);
    assert_float_equal(graft_tensor_f32(gb)[0], 1.0f + 4.0f * logf(2.0f), 1e-5);
    assert_float_equal(graft_tensor_f32(ga)[1], 1.0f, 1e-6); /* 0.5 * 2 * 0^1 */
    assert_float_equal(graft_tensor_f32(gb)[1], 1.0f, 1e-6);
    lt_call_fini(&c);
    graft_tensor_destroy(dy);
    graft_tensor_destroy(ga);
    graft_tensor_destroy(gb);
    graft_tensor_destroy(a);
    graft_tensor_destroy(b);
    graft_graph_destroy(g);
}

static void test_unary_gradients(void **state)
{
    (void)state;
    static const char *ops[] = {"Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Erf"};
    int64_t d[2] = {3, 5};
    for (int i = 0; i < 7; i++) {
        graft_graph *g = lt_graph(13);
        int32_t n = lt_node(g, ops[i], 1, 0, 1);
        /* positive inputs away from 0 keep Sqrt/Log/Abs/Reciprocal smooth */
        graft_tensor *x = lt_tensor_rand(2, d, 7 + (uint64_t)i, 0.3f, 1.5f);
        if (!strcmp(ops[i], "Abs") || !strcmp(ops[i], "Neg") || !strcmp(ops[i], "Erf"))
            for (int k = 0; k < 15; k += 2)
                graft_tensor_f32(x)[k] = -graft_tensor_f32(x)[k];
        double e = lt_gradcheck(g, n, 1, &x, 1, 1e-3, 2e-3, false);
        if (!(e <= 2e-3))
            fail_msg("%s gradient error %g", ops[i], e);
        graft_tensor_destroy(x);
        graft_graph_destroy(g);
    }
}

static void test_unary_forward(void **state)
{
    (void)state;
    int64_t d[1] = {70000}; /* parallel path */
    graft_tensor *x = lt_tensor_rand(1, d, 5, 0.1f, 3.0f);
    static const char *ops[] = {"Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Erf"};
    for (int k = 0; k < 7; k++) {
        graft_graph *g = lt_graph(13);
        int32_t n = lt_node(g, ops[k], 1, 0, 1);
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
        for (int64_t i = 0; i < d[0]; i += 97) {
            double v = graft_tensor_f32(x)[i], w;
            switch (k) {
            case 0: w = sqrt(v); break;
            case 1: w = exp(v); break;
            case 2: w = log(v); break;
            case 3: w = -v; break;
            case 4: w = fabs(v); break;
            case 5: w = 1 / v; break;
            default: w = erf(v); break;
            }
            assert_true(fabs(graft_tensor_f32(c.out[0])[i] - w) <= 1e-6 * (1 + fabs(w)));
        }
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    graft_tensor_destroy(x);
}

/* Trig and hyperbolic values at points where they are exact by hand:
 * sin(pi/6) = cos(pi/3) = 1/2, tan(pi/4) = 1 and the inverses back; with
 * x = ln 2: sinh = (2 - 1/2)/2 = 0.75, cosh = (2 + 1/2)/2 = 1.25, so
 * asinh(0.75) = ln(0.75 + sqrt(0.5625 + 1)) = ln 2,
 * acosh(1.25) = ln(1.25 + sqrt(1.5625 - 1)) = ln 2 and
 * atanh(0.6) = ln((1 + 0.6)/(1 - 0.6))/2 = ln(4)/2 = ln 2. */
static void test_trig_values(void **state)
{
    (void)state;
    const float pi = 3.14159265358979f, ln2 = 0.69314718056f;
    struct { const char *op; float x, want; } cases[] = {
        {"Sin", pi / 6, 0.5f},     {"Cos", pi / 3, 0.5f},   {"Tan", pi / 4, 1.0f},
        {"Asin", 0.5f, pi / 6},    {"Acos", 0.5f, pi / 3},  {"Atan", 1.0f, pi / 4},
        {"Sinh", ln2, 0.75f},      {"Cosh", ln2, 1.25f},    {"Asinh", 0.75f, ln2},
        {"Acosh", 1.25f, ln2},     {"Atanh", 0.6f, ln2},
    };
    int64_t one = 1;
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        graft_tensor *x = lt_tensor_f32(1, &one, &cases[k].x);
        graft_graph *g = lt_graph(13);
        int32_t n = lt_node(g, cases[k].op, 1, 0, 1);
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
        float got = graft_tensor_f32(c.out[0])[0];
        if (fabsf(got - cases[k].want) > 1e-6f)
            fail_msg("%s(%g) = %.9g, want %.9g", cases[k].op, cases[k].x, got, cases[k].want);
        lt_call_fini(&c);
        graft_graph_destroy(g);
        graft_tensor_destroy(x);
    }
    /* out of the domain: NaN, not a failure */
    float two = 2;
    graft_tensor *x = lt_tensor_f32(1, &one, &two);
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Asin", 1, 0, 1);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
    assert_true(isnan(graft_tensor_f32(c.out[0])[0]));
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);
}

static void test_trig_gradients(void **state)
{
    (void)state;
    struct { const char *op; float lo, hi; } cases[] = {
        {"Sin", -3, 3},       {"Cos", -3, 3},       {"Tan", -1.2f, 1.2f}, {"Asin", -0.8f, 0.8f},
        {"Acos", -0.8f, 0.8f}, {"Atan", -3, 3},     {"Sinh", -2, 2},      {"Cosh", -2, 2},
        {"Asinh", -3, 3},     {"Acosh", 1.3f, 4},   {"Atanh", -0.8f, 0.8f},
    };
    int64_t d[2] = {3, 5};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        graft_graph *g = lt_graph(13);
        int32_t n = lt_node(g, cases[k].op, 1, 0, 1);
        graft_tensor *x = lt_tensor_rand(2, d, 40 + k, cases[k].lo, cases[k].hi);
        double e = lt_gradcheck(g, n, 1, &x, 1, 1e-3, 2e-3, false);
        if (!(e <= 2e-3))
            fail_msg("%s gradient error %g", cases[k].op, e);
        graft_tensor_destroy(x);
        graft_graph_destroy(g);
    }
}

/* Floor/Ceil/Round/Sign: exact values, ties to even, NaN kept, int64 Sign,
 * and no backward (piecewise constant). */
static void test_rounding_sign(void **state)
{
    (void)state;
    int64_t d[1] = {9};
    float xv[9] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 2.4f, -2.6f, 0.0f, NAN};
    struct { const char *op; float want[8]; } cases[] = {
        {"Floor", {0, 1, 2, -1, -2, 2, -3, 0}},
        {"Ceil", {1, 2, 3, -0.0f, -1, 3, -2, 0}},
        {"Round", {0, 2, 2, -0.0f, -2, 2, -3, 0}},
        {"Sign", {1, 1, 1, -1, -1, 1, -1, 0}},
    };
    graft_tensor *x = lt_tensor_f32(1, d, xv);
    for (int k = 0; k < 4; k++) {
        graft_graph *g = lt_graph(13);
        int32_t n = lt_node(g, cases[k].op, 1, 0, 1);
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
        for (int i = 0; i < 8; i++)
            if (graft_tensor_f32(c.out[0])[i] != cases[k].want[i])
                fail_msg("%s(%g) = %g, want %g", cases[k].op, xv[i],
                         graft_tensor_f32(c.out[0])[i], cases[k].want[i]);
        assert_true(isnan(graft_tensor_f32(c.out[0])[8]));
        assert_null(c.def->backward);
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    graft_tensor_destroy(x);
    int64_t iv[4] = {-7, 0, 3, INT64_MIN}, four = 4, wi[4] = {-1, 0, 1, -1};
    graft_tensor *xi = lt_tensor_i64(1, &four, iv);
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Sign", 1, 0, 1);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 1, &xi), GRAFT_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(graft_tensor_i64(c.out[0])[i], wi[i]);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* Floor of an integer tensor is refused cleanly */
    g = lt_graph(13);
    n = lt_node(g, "Floor", 1, 0, 1);
    assert_int_equal(lt_prepare(&c, g, n, 1, &xi, 0), GRAFT_ERR_UNSUPPORTED);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(xi);
}

/* Mean of A [2,3], B [3], C [1]: y = (a + b + c) / 3, e.g.
 * y[0][0] = (1 + 10 + 4) / 3 = 5, y[1][2] = (6 + 30 + 4) / 3 = 40/3. */
static void test_mean(void **state)
{
    (void)state;
    int64_t d23[2] = {2, 3}, d3[1] = {3}, d1[1] = {1};
    float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {10, 20, 30}, z[1] = {4};
    graft_tensor *ta = lt_tensor_f32(2, d23, a), *tb = lt_tensor_f32(1, d3, b),
                 *tz = lt_tensor_f32(1, d1, z);
    graft_tensor *in[3] = {ta, tb, tz};
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Mean", 3, 0, 1);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 3, in), GRAFT_OK);
    float want[6] = {5, 26.0f / 3, 37.0f / 3, 6, 29.0f / 3, 40.0f / 3};
    assert_int_equal(c.out[0]->rank, 2);
    for (int i = 0; i < 6; i++)
        assert_float_equal(graft_tensor_f32(c.out[0])[i], want[i], 1e-5);
    lt_call_fini(&c);
    /* gradients: each input gets dy / 3 summed over its broadcast dims */
    double e = lt_gradcheck(g, n, 3, in, 7, 1e-3, 2e-3, false);
    assert_true(e <= 2e-3);
    graft_graph_destroy(g);
    g = lt_graph(13);
    n = lt_node(g, "Sum", 3, 0, 1);
    e = lt_gradcheck(g, n, 3, in, 7, 1e-3, 2e-3, false);
    assert_true(e <= 2e-3);
    graft_graph_destroy(g);
    /* one input: itself */
    g = lt_graph(13);
    n = lt_node(g, "Mean", 1, 0, 1);
    assert_int_equal(lt_run(&c, g, n, 1, in), GRAFT_OK);
    for (int i = 0; i < 6; i++)
        assert_float_equal(graft_tensor_f32(c.out[0])[i], a[i], 0);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* integer Mean is not an ONNX type: clean refusal */
    int64_t iv[3] = {1, 2, 3};
    graft_tensor *ti = lt_tensor_i64(1, d3, iv);
    graft_tensor *ii[2] = {ti, ti};
    g = lt_graph(13);
    n = lt_node(g, "Mean", 2, 0, 1);
    assert_int_equal(lt_prepare(&c, g, n, 2, ii, 0), GRAFT_ERR_UNSUPPORTED);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* shapes that do not broadcast */
    graft_tensor *bad[2] = {ta, lt_tensor_f32(1, (int64_t[]){2}, NULL)};
    g = lt_graph(13);
    n = lt_node(g, "Mean", 2, 0, 1);
    assert_int_equal(lt_prepare(&c, g, n, 2, bad, 0), GRAFT_ERR_SHAPE);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(bad[1]);
    graft_tensor_destroy(ti);
    graft_tensor_destroy(ta);
    graft_tensor_destroy(tb);
    graft_tensor_destroy(tz);
}

/* Opset-6 broadcast=1 axis=k: B's dims sit on A's from k. A [2,3] =
 * [[1,2,3],[4,5,6]]: B [2] = [10,20] at axis 0 adds per row ->
 * [[11,12,13],[24,25,26]]; B [3] = [10,20,30] at axis 1 adds per column ->
 * [[11,22,33],[14,25,36]]; B [2,1] at axis 0 is the same as B [2]. */
static void test_legacy_broadcast(void **state)
{
    (void)state;
    int64_t d23[2] = {2, 3}, d2[1] = {2}, d3[1] = {3}, d21[2] = {2, 1};
    float a[6] = {1, 2, 3, 4, 5, 6}, b2[2] = {10, 20}, b3[3] = {10, 20, 30};
    graft_tensor *ta = lt_tensor_f32(2, d23, a);
    struct {
        int rank;
        const int64_t *dims;
        const float *v;
        int64_t axis;
        float want[6];
    } cases[] = {
        {1, d2, b2, 0, {11, 12, 13, 24, 25, 26}},
        {1, d3, b3, 1, {11, 22, 33, 14, 25, 36}},
        {1, d3, b3, -1, {11, 22, 33, 14, 25, 36}},
        {2, d21, b2, 0, {11, 12, 13, 24, 25, 26}},
    };
    for (int k = 0; k < 4; k++) {
        graft_tensor *tb = lt_tensor_f32(cases[k].rank, cases[k].dims, cases[k].v);
        graft_tensor *in[2] = {ta, tb};
        graft_graph *g = lt_graph(6);
        int32_t n = lt_node(g, "Add", 2, 0, 1);
        graft_node_set_int(g, n, "broadcast", 1, NULL);
        graft_node_set_int(g, n, "axis", cases[k].axis, NULL);
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 2, in), GRAFT_OK);
        assert_int_equal(c.out[0]->rank, 2);
        for (int i = 0; i < 6; i++)
            assert_float_equal(graft_tensor_f32(c.out[0])[i], cases[k].want[i], 0);
        lt_call_fini(&c);
        graft_graph_destroy(g);
        /* gradients of both operands through the aligned view */
        static const char *ops[] = {"Add", "Sub", "Mul", "Div"};
        for (int o = 0; o < 4; o++) {
            g = lt_graph(6);
            n = lt_node(g, ops[o], 2, 0, 1);
            graft_node_set_int(g, n, "broadcast", 1, NULL);
            graft_node_set_int(g, n, "axis", cases[k].axis, NULL);
            double e = lt_gradcheck(g, n, 2, in, 3, 1e-3, 2e-3, false);
            if (!(e <= 2e-3))
                fail_msg("legacy %s case %d gradient error %g", ops[o], k, e);
            graft_graph_destroy(g);
        }
        graft_tensor_destroy(tb);
    }
    /* B [2] cannot sit at axis 1 of [2,3]; axis out of range; B longer than A */
    int64_t bad_axis[3] = {1, 5, 0};
    int64_t d4[1] = {4};
    for (int k = 0; k < 3; k++) {
        graft_tensor *tb = k == 2 ? lt_tensor_f32(1, d4, NULL) : lt_tensor_f32(1, d2, b2);
        graft_tensor *in[2] = {ta, tb};
        graft_graph *g = lt_graph(6);
        int32_t n = lt_node(g, "Mul", 2, 0, 1);
        graft_node_set_int(g, n, "broadcast", 1, NULL);
        graft_node_set_int(g, n, "axis", bad_axis[k], NULL);
        lt_call c;
        assert_int_equal(lt_prepare(&c, g, n, 2, in, 0), GRAFT_ERR_SHAPE);
        assert_non_null(strstr(c.err.msg, "legacy broadcast"));
        lt_call_fini(&c);
        graft_graph_destroy(g);
        graft_tensor_destroy(tb);
    }
    /* from opset 7 the axis attribute means nothing: numpy broadcasting */
    graft_tensor *tb = lt_tensor_f32(1, d3, b3);
    graft_tensor *in[2] = {ta, tb};
    graft_graph *g = lt_graph(7);
    int32_t n = lt_node(g, "Add", 2, 0, 1);
    graft_node_set_int(g, n, "axis", 0, NULL);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 2, in), GRAFT_OK);
    assert_float_equal(graft_tensor_f32(c.out[0])[3], 14, 0);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(tb);
    graft_tensor_destroy(ta);
}

static void test_onnx_node_data(void **state)
{
    (void)state;
    static const char *const ops[] = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum",
                                      "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Erf",
                                      "Mean", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan",
                                      "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Floor", "Ceil",
                                      "Round", "Sign", NULL};
    int pass, fail, skip;
    if (lt_onnx_suite(ops, &pass, &fail, &skip) < 0)
        skip();
    assert_int_equal(fail, 0);
    assert_true(pass >= 103);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcast_forward), cmocka_unit_test(test_variadic),
        cmocka_unit_test(test_int64_shape_arith), cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_binary_gradients),
        cmocka_unit_test(test_pow_gradient_by_hand),  cmocka_unit_test(test_unary_gradients),
        cmocka_unit_test(test_unary_forward),     cmocka_unit_test(test_trig_values),
        cmocka_unit_test(test_trig_gradients),    cmocka_unit_test(test_rounding_sign),
        cmocka_unit_test(test_mean),              cmocka_unit_test(test_legacy_broadcast),
        cmocka_unit_test(test_onnx_node_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
