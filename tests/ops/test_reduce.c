/* Reduce*: axes as attribute (ReduceSum < 13, the others < 18) and as input,
 * keepdims, noop_with_empty_axes, negative and non-adjacent axes; values
 * worked out by hand, a naive reference over every axis subset, finite
 * differences, the ONNX node test data and the shared B34a case. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lightops_util.h"
#include "testutil.h"

/* opset where each op takes axes as an input */
static int input_opset(const char *op)
{
    return strcmp(op, "ReduceSum") ? 18 : 13;
}

/* One node: attribute form when axes != NULL and the opset is below
 * input_opset, input form (an int64 initializer-like tensor) otherwise;
 * n_axes < 0: no axes at all. keepdims < 0: attribute absent. */
typedef struct rcase {
    const char *op;
    int opset;
    int n_axes;
    const int64_t *axes;
    int keepdims, noop;
} rcase;

/* Builds the node; *ax: the axes tensor of the input form (NULL otherwise). */
static int32_t make_node(const rcase *rc, graft_graph **gp, graft_tensor **ax)
{
    graft_graph *g = lt_graph(rc->opset);
    bool as_input = rc->opset >= input_opset(rc->op);
    int n_in = as_input && rc->n_axes >= 0 ? 2 : 1;
    int32_t n = lt_node(g, rc->op, n_in, 0, 1);
    if (rc->keepdims >= 0)
        graft_node_set_int(g, n, "keepdims", rc->keepdims, NULL);
    if (rc->noop)
        graft_node_set_int(g, n, "noop_with_empty_axes", 1, NULL);
    if (!as_input && rc->n_axes >= 0)
        graft_node_set_ints(g, n, "axes", rc->n_axes, rc->axes, NULL);
    *ax = NULL;
    if (n_in == 2) {
        int64_t d = rc->n_axes;
        *ax = lt_tensor_i64(1, &d, rc->n_axes > 0 ? rc->axes : NULL);
    }
    *gp = g;
    return n;
}

static graft_status run_case(const rcase *rc, graft_tensor *x, lt_call *c, graft_graph **gp)
{
    graft_tensor *ax = NULL;
    int32_t n = make_node(rc, gp, &ax);
    graft_tensor *in[2] = {x, ax};
    graft_status st = lt_run(c, *gp, n, ax ? 2 : 1, in);
    /* the axes tensor is only read during the call */
    graft_tensor_destroy(ax);
    c->in[1] = NULL;
    return st;
}

static void expect_f32(const rcase *rc, graft_tensor *x, int rank, const int64_t *dims,
                       const float *want)
{
    lt_call c;
    graft_graph *g = NULL;
    graft_status st = run_case(rc, x, &c, &g);
    if (st)
        fail_msg("%s-%d: %s", rc->op, rc->opset, c.err.msg);
    graft_tensor *w = lt_tensor_f32(rank, dims, want);
    char msg[256];
    if (!lt_close(c.out[0], w, 1e-6, 1e-6, msg, sizeof msg))
        fail_msg("%s-%d: %s", rc->op, rc->opset, msg);
    graft_tensor_destroy(w);
    lt_call_fini(&c);
    graft_graph_destroy(g);
}

static void test_hand_values(void **state)
{
    (void)state;
    int64_t d23[2] = {2, 3};
    float v[6] = {1, 2, 3, 4, 5, 6}, s[6] = {-1, 2, -3, 4, -5, 6};
    graft_tensor *x = lt_tensor_f32(2, d23, v), *xs = lt_tensor_f32(2, d23, s);
    int64_t a0[1] = {0}, a1[1] = {1}, am1[1] = {-1};
    int64_t d21[2] = {2, 1}, d13[2] = {1, 3}, d11[2] = {1, 1}, d2 = 2, d3 = 3;

    /* attribute form, keepdims by default */
    expect_f32(&(rcase){"ReduceSum", 11, 1, a1, -1, 0}, x, 2, d21, (float[]){6, 15});
    expect_f32(&(rcase){"ReduceMax", 13, 1, a0, -1, 0}, x, 2, d13, (float[]){4, 5, 6});
    expect_f32(&(rcase){"ReduceMin", 13, 1, a1, 0, 0}, x, 1, &d2, (float[]){1, 4});
    expect_f32(&(rcase){"ReduceSumSquare", 13, 1, a0, 0, 0}, x, 1, &d3, (float[]){17, 29, 45});
    expect_f32(&(rcase){"ReduceL2", 13, 1, a1, 0, 0}, x, 1, &d2,
               (float[]){sqrtf(14.0f), sqrtf(77.0f)});
    expect_f32(&(rcase){"ReduceLogSum", 13, 1, a1, 0, 0}, x, 1, &d2,
               (float[]){logf(6.0f), logf(15.0f)});
    /* log(e + e^2 + e^3) = 3 + log(1 + e^-1 + e^-2) */
    expect_f32(&(rcase){"ReduceLogSumExp", 13, 1, a1, 0, 0}, x, 1, &d2,
               (float[]){3.40760596f, 6.40760596f});
    /* no axes: every axis */
    expect_f32(&(rcase){"ReduceMean", 11, -1, NULL, 1, 0}, x, 2, d11, (float[]){3.5f});
    expect_f32(&(rcase){"ReduceProd", 13, -1, NULL, 0, 0}, x, 0, NULL, (float[]){720});
    expect_f32(&(rcase){"ReduceL1", 13, -1, NULL, 0, 0}, xs, 0, NULL, (float[]){21});
    expect_f32(&(rcase){"ReduceSum", 11, 0, a0, 0, 0}, xs, 0, NULL, (float[]){3});
    /* input form: ReduceSum from 13, the others from 18 */
    expect_f32(&(rcase){"ReduceSum", 13, 1, a0, 0, 0}, x, 1, &d3, (float[]){5, 7, 9});
    expect_f32(&(rcase){"ReduceMean", 18, 1, am1, 0, 0}, x, 1, &d2, (float[]){2, 5});
    expect_f32(&(rcase){"ReduceMax", 18, 1, am1, 1, 0}, xs, 2, d21, (float[]){2, 6});
    /* absent or empty axes: all, or x itself with noop_with_empty_axes */
    expect_f32(&(rcase){"ReduceSum", 13, -1, NULL, 0, 0}, x, 0, NULL, (float[]){21});
    expect_f32(&(rcase){"ReduceSum", 13, 0, a0, 1, 0}, x, 2, d11, (float[]){21});
    expect_f32(&(rcase){"ReduceSum", 13, 0, a0, 1, 1}, x, 2, d23, v);
    expect_f32(&(rcase){"ReduceMin", 18, -1, NULL, 1, 1}, xs, 2, d23, s);
    /* the attribute form has no noop_with_empty_axes: empty reduces all */
    expect_f32(&(rcase){"ReduceMean", 13, 0, a0, 0, 1}, x, 0, NULL, (float[]){3.5f});
    graft_tensor_destroy(x);
    graft_tensor_destroy(xs);

    /* LogSumExp of large values does not overflow; -inf rows stay -inf */
    float big[4] = {1000, 1000, -INFINITY, -INFINITY};
    int64_t d22[2] = {2, 2};
    x = lt_tensor_f32(2, d22, big);
    expect_f32(&(rcase){"ReduceLogSumExp", 13, 1, a1, 0, 0}, x, 1, &d2,
               (float[]){1000.0f + logf(2.0f), -INFINITY});
    graft_tensor_destroy(x);

    /* an empty reduced axis: the identity of each reduction */
    int64_t d20[2] = {2, 0};
    x = lt_tensor_f32(2, d20, NULL);
    expect_f32(&(rcase){"ReduceSum", 13, 1, a1, 0, 0}, x, 1, &d2, (float[]){0, 0});
    expect_f32(&(rcase){"ReduceProd", 13, 1, a1, 0, 0}, x, 1, &d2, (float[]){1, 1});
    expect_f32(&(rcase){"ReduceMax", 13, 1, a1, 0, 0}, x, 1, &d2, (float[]){-INFINITY, -INFINITY});
    expect_f32(&(rcase){"ReduceMean", 13, 1, a1, 0, 0}, x, 1, &d2, (float[]){NAN, NAN});
    graft_tensor_destroy(x);

    /* NaN propagates through Max/Min, as numpy's */
    float nv[3] = {1, NAN, 5};
    x = lt_tensor_f32(1, &d3, nv);
    expect_f32(&(rcase){"ReduceMax", 13, -1, NULL, 0, 0}, x, 0, NULL, (float[]){NAN});
    expect_f32(&(rcase){"ReduceMin", 13, -1, NULL, 0, 0}, x, 0, NULL, (float[]){NAN});
    graft_tensor_destroy(x);
}

static void test_int64(void **state)
{
    (void)state;
    int64_t d23[2] = {2, 3}, d2 = 2, a1[1] = {1};
    int64_t v[6] = {1, 2, 3, 4, -5, 6};
    graft_tensor *x = lt_tensor_i64(2, d23, v);
    static const struct { const char *op; int64_t want[2]; } cases[] = {
        {"ReduceSum", {6, 5}},  {"ReduceMean", {2, 1}},      {"ReduceMax", {3, 6}},
        {"ReduceMin", {1, -5}}, {"ReduceProd", {6, -120}},   {"ReduceL1", {6, 15}},
        {"ReduceSumSquare", {14, 77}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        lt_call c;
        graft_graph *g = NULL;
        rcase rc = {cases[k].op, 13, 1, a1, 0, 0};
        if (run_case(&rc, x, &c, &g))
            fail_msg("%s int64: %s", cases[k].op, c.err.msg);
        assert_int_equal(c.out[0]->dtype, GRAFT_INT64);
        graft_tensor *w = lt_tensor_i64(1, &d2, cases[k].want);
        char msg[256];
        if (!lt_close(c.out[0], w, 0, 0, msg, sizeof msg))
            fail_msg("%s int64: %s", cases[k].op, msg);
        graft_tensor_destroy(w);
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    /* no integer form of L2 / LogSum / LogSumExp: a clean refusal */
    lt_call c;
    graft_graph *g = NULL;
    assert_int_equal(run_case(&(rcase){"ReduceL2", 13, 1, a1, 0, 0}, x, &c, &g),
                     GRAFT_ERR_UNSUPPORTED);
    assert_non_null(strstr(c.err.msg, "int64"));
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);
}

/* Naive reference: for each x element, its y index from the reduced mask. */
static void ref_reduce(const char *op, const graft_tensor *x, const bool *red, double *y,
                       int64_t n_y)
{
    int r = x->rank;
    int64_t n = graft_tensor_nelem(x), *cnt = calloc((size_t)n_y, sizeof *cnt);
    double *mx = malloc((size_t)n_y * sizeof *mx);
    bool is_max = !strcmp(op, "ReduceMax"), is_min = !strcmp(op, "ReduceMin");
    bool is_prod = !strcmp(op, "ReduceProd"), is_lse = !strcmp(op, "ReduceLogSumExp");
    for (int64_t o = 0; o < n_y; o++) {
        y[o] = is_max ? -INFINITY : is_min ? INFINITY : is_prod ? 1 : 0;
        mx[o] = -INFINITY;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int64_t i = 0; i < n; i++) {
            int64_t q = i, o = 0, s = 1;
            for (int d = r - 1; d >= 0; d--) {
                int64_t k = q % x->dims[d];
                q /= x->dims[d];
                if (!red[d]) {
                    o += k * s;
                    s *= x->dims[d];
                }
            }
            double v = graft_tensor_f32(x)[i];
            if (pass == 0) {
                mx[o] = fmax(mx[o], v);
                cnt[o]++;
                continue;
            }
            if (is_max)
                y[o] = fmax(y[o], v);
            else if (is_min)
                y[o] = fmin(y[o], v);
            else if (is_prod)
                y[o] *= v;
            else if (!strcmp(op, "ReduceL1"))
                y[o] += fabs(v);
            else if (!strcmp(op, "ReduceL2") || !strcmp(op, "ReduceSumSquare"))
                y[o] += v * v;
            else if (is_lse)
                y[o] += exp(v - mx[o]);
            else
                y[o] += v;
        }
    for (int64_t o = 0; o < n_y; o++) {
        if (!strcmp(op, "ReduceMean"))
            y[o] /= (double)cnt[o];
        else if (!strcmp(op, "ReduceL2"))
            y[o] = sqrt(y[o]);
        else if (!strcmp(op, "ReduceLogSum"))
            y[o] = log(y[o]);
        else if (is_lse)
            y[o] = mx[o] + log(y[o]);
    }
    free(cnt);
    free(mx);
}

static const char *const all_ops[] = {"ReduceSum",  "ReduceMean",      "ReduceMax",
                                      "ReduceMin",  "ReduceProd",      "ReduceL1",
                                      "ReduceL2",   "ReduceSumSquare", "ReduceLogSum",
                                      "ReduceLogSumExp", NULL};

/* Every non-empty subset of the axes of a rank-4 tensor (size-1 dim
 * included, so the merging of dims is exercised), both forms, keepdims 0/1. */
static void test_reference_all_subsets(void **state)
{
    (void)state;
    int64_t d[4] = {3, 1, 4, 5};
    graft_tensor *x = lt_tensor_rand(4, d, 7, 0.5f, 1.5f);
    for (int k = 0; all_ops[k]; k++)
        for (unsigned m = 1; m < 16; m++)
            for (int form = 0; form < 4; form++) {
                int64_t axes[4];
                int na = 0;
                bool red[4];
                for (int i = 0; i < 4; i++) {
                    red[i] = m >> i & 1;
                    /* odd forms name the axes from the end */
                    if (red[i])
                        axes[na++] = form & 1 ? i - 4 : i;
                }
                int opset = form & 2 ? input_opset(all_ops[k]) : 11;
                rcase rc = {all_ops[k], opset, na, axes, (int)(m & 1), 0};
                lt_call c;
                graft_graph *g = NULL;
                if (run_case(&rc, x, &c, &g))
                    fail_msg("%s mask %u: %s", all_ops[k], m, c.err.msg);
                int64_t n_y = graft_tensor_nelem(c.out[0]);
                double *want = malloc((size_t)n_y * sizeof *want);
                ref_reduce(all_ops[k], x, red, want, n_y);
                int rk = 0;
                for (int i = 0; i < 4; i++)
                    rk += !red[i] || rc.keepdims;
                assert_int_equal(c.out[0]->rank, rk);
                for (int64_t o = 0; o < n_y; o++)
                    if (fabs(graft_tensor_f32(c.out[0])[o] - want[o]) > 1e-5 * (1 + fabs(want[o])))
                        fail_msg("%s mask %u form %d elem %lld: %g vs %g", all_ops[k], m, form,
                                 (long long)o, graft_tensor_f32(c.out[0])[o], want[o]);
                free(want);
                lt_call_fini(&c);
                graft_graph_destroy(g);
            }
    graft_tensor_destroy(x);
}

static void expect_fail(const rcase *rc, graft_tensor *x, unsigned hide, graft_status want,
                        const char *needle)
{
    graft_graph *g = NULL;
    graft_tensor *ax = NULL;
    int32_t n = make_node(rc, &g, &ax);
    graft_tensor *in[2] = {x, ax};
    lt_call c;
    graft_status st = lt_prepare(&c, g, n, ax ? 2 : 1, in, hide);
    if (st != want)
        fail_msg("%s-%d: status %d, want %d (%s)", rc->op, rc->opset, st, want, c.err.msg);
    if (needle && !strstr(c.err.msg, needle))
        fail_msg("%s-%d: message '%s' lacks '%s'", rc->op, rc->opset, c.err.msg, needle);
    lt_call_fini(&c);
    graft_tensor_destroy(ax);
    graft_graph_destroy(g);
}

static void test_infer_errors(void **state)
{
    (void)state;
    int64_t d[3] = {2, 3, 4};
    graft_tensor *x = lt_tensor_rand(3, d, 3, -1, 1);
    int64_t a3[1] = {3}, am4[1] = {-4}, dup[2] = {1, -2}, a1[1] = {1};
    /* axes computed at run time: refused when the plan is built, naming the
     * node and the axes value */
    expect_fail(&(rcase){"ReduceSum", 13, 1, a1, 1, 0}, x, 2, GRAFT_ERR_UNSUPPORTED,
                "ReduceSum node 'n0'");
    expect_fail(&(rcase){"ReduceMean", 18, 1, a1, 1, 0}, x, 2, GRAFT_ERR_UNSUPPORTED,
                "axes input 'in1' is computed at run time");
    /* an empty axes input is known from its shape alone */
    expect_fail(&(rcase){"ReduceSum", 13, 0, a1, 1, 0}, x, 2, GRAFT_OK, NULL);
    expect_fail(&(rcase){"ReduceSum", 11, 1, a3, 1, 0}, x, 0, GRAFT_ERR_INVALID, "out of range");
    expect_fail(&(rcase){"ReduceMax", 18, 1, am4, 1, 0}, x, 0, GRAFT_ERR_INVALID,
                "out of range");
    expect_fail(&(rcase){"ReduceMean", 13, 2, dup, 1, 0}, x, 0, GRAFT_ERR_INVALID, "twice");

    /* the wrong form for the opset */
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "ReduceSum", 1, 0, 1);
    graft_node_set_ints(g, n, "axes", 1, a1, NULL);
    lt_call c;
    assert_int_equal(lt_prepare(&c, g, n, 1, &x, 0), GRAFT_ERR_INVALID);
    assert_non_null(strstr(c.err.msg, "not as an attribute"));
    lt_call_fini(&c);
    graft_graph_destroy(g);
    g = lt_graph(13);
    n = lt_node(g, "ReduceMean", 2, 0, 1);
    graft_tensor *ax = lt_tensor_i64(1, (int64_t[]){1}, a1), *in[2] = {x, ax};
    assert_int_equal(lt_prepare(&c, g, n, 2, in, 0), GRAFT_ERR_INVALID);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(ax);
    /* float axes */
    g = lt_graph(13);
    n = lt_node(g, "ReduceSum", 2, 0, 1);
    ax = lt_tensor_f32(1, (int64_t[]){1}, (float[]){1});
    in[1] = ax;
    assert_int_equal(lt_prepare(&c, g, n, 2, in, 0), GRAFT_ERR_INVALID);
    assert_non_null(strstr(c.err.msg, "int64"));
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(ax);
    graft_tensor_destroy(x);
}

static void test_gradients(void **state)
{
    (void)state;
    int64_t d[3] = {2, 3, 4};
    int64_t a1[1] = {1}, a02[2] = {0, 2}, am1[1] = {-1};
    /* attribute forms at opset 11, input forms at each op's input opset */
    struct { bool input; int n_axes; const int64_t *axes; int keep, noop; } forms[] = {
        {false, 1, a1, 1, 0}, {false, 2, a02, 0, 0}, {false, -1, NULL, 0, 0},
        {true, 1, am1, 0, 0}, {true, 0, NULL, 1, 1}, {true, -1, NULL, 1, 0},
    };
    for (int k = 0; all_ops[k]; k++) {
        if (!strcmp(all_ops[k], "ReduceProd"))
            continue;
        for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
            rcase rc = {all_ops[k], forms[f].input ? input_opset(all_ops[k]) : 11,
                        forms[f].n_axes, forms[f].axes, forms[f].keep, forms[f].noop};
            graft_graph *g = NULL;
            graft_tensor *ax = NULL;
            int32_t n = make_node(&rc, &g, &ax);
            /* positive inputs keep LogSum defined and L1 away from its kink */
            graft_tensor *x = lt_tensor_rand(3, d, 11 + f, 0.2f, 2.0f);
            graft_tensor *in[2] = {x, ax};
            double e = lt_gradcheck(g, n, ax ? 2 : 1, in, 1, 1e-3, 2e-3, false);
            if (!(e <= 2e-3))
                fail_msg("%s form %zu gradient error %g", all_ops[k], f, e);
            graft_tensor_destroy(ax);
            graft_tensor_destroy(x);
            graft_graph_destroy(g);
        }
    }
}

/* Max/Min: ties send the whole gradient to the first extreme, not both. */
static void test_extreme_ties(void **state)
{
    (void)state;
    int64_t d[2] = {2, 3}, a1[1] = {1};
    float v[6] = {1, 5, 5, 2, 2, 0};
    graft_tensor *x = lt_tensor_f32(2, d, v);
    static const char *const ops[2] = {"ReduceMax", "ReduceMin"};
    static const float want[2][6] = {{0, 1, 0, 1, 0, 0}, {1, 0, 0, 0, 0, 1}};
    for (int k = 0; k < 2; k++) {
        lt_call c;
        graft_graph *g = NULL;
        rcase rc = {ops[k], 13, 1, a1, 0, 0};
        assert_int_equal(run_case(&rc, x, &c, &g), GRAFT_OK);
        graft_tensor *dy = lt_tensor_f32(1, (int64_t[]){2}, (float[]){1, 1}), *dx = NULL;
        graft_tensor_create(GRAFT_FLOAT, 2, d, &dx, NULL);
        graft_tensor *d_out[1] = {dy}, *d_in[1] = {dx}, *in[1] = {x};
        graft_op_call oc = {.graph = g, .node = &g->nodes[c.node], .params = c.params,
                            .n_in = 1, .n_out = 1, .in = in, .out = c.out, .d_out = d_out,
                            .d_in = d_in, .state = &c.state, .ctx = &c.ctx, .err = &c.err};
        assert_int_equal(c.def->backward(&oc), GRAFT_OK);
        for (int i = 0; i < 6; i++)
            if (graft_tensor_f32(dx)[i] != want[k][i])
                fail_msg("%s dx[%d] = %g, want %g", ops[k], i, graft_tensor_f32(dx)[i],
                         want[k][i]);
        graft_tensor_destroy(dy);
        graft_tensor_destroy(dx);
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    graft_tensor_destroy(x);
}

static void test_onnx_node_data(void **state)
{
    (void)state;
    int pass, fail, skip;
    if (lt_onnx_suite(all_ops, &pass, &fail, &skip) < 0)
        skip();
    print_message("reduce node tests: %d pass, %d fail, %d skipped (unsupported)\n", pass, fail,
                  skip);
    assert_int_equal(fail, 0);
    assert_true(pass >= 79);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_values),    cmocka_unit_test(test_int64),
        cmocka_unit_test(test_reference_all_subsets), cmocka_unit_test(test_infer_errors),
        cmocka_unit_test(test_gradients),      cmocka_unit_test(test_extreme_ties),
        cmocka_unit_test(test_onnx_node_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
