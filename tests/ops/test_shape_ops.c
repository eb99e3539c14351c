/* Shape ops (shape_ops.c and slicing.c): Reshape (B10a, B11), Flatten,
 * Squeeze/Unsqueeze in both forms (B14a/b), Concat, Shape, Gather, Slice,
 * Cast, Identity, Dropout (B28a/b/c, training masks), Constant, Transpose.
 * Naive references, bad shapes, finite differences, ONNX node test data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lightops_util.h"
#include "testutil.h"

static void expect_shape(const graft_tensor *t, int rank, const int64_t *dims)
{
    char a[128], b[128];
    if (t->rank != rank || (rank && memcmp(t->dims, dims, (size_t)rank * sizeof *dims)))
        fail_msg("shape %s, want %s", graft_shape_format(t->rank, t->dims, a, sizeof a),
                 graft_shape_format(rank, dims, b, sizeof b));
}

static void expect_same_data(const graft_tensor *y, const graft_tensor *x)
{
    assert_int_equal(graft_tensor_nelem(y), graft_tensor_nelem(x));
    assert_memory_equal(y->data, x->data, (size_t)graft_tensor_nelem(x) * graft_dtype_size(x->dtype));
}

/* ---- Reshape ------------------------------------------------------------------------- */

static graft_status reshape(int opset, const graft_tensor *x, int k, const int64_t *shape,
                            bool allowzero, lt_call *c, graft_graph **gp)
{
    graft_graph *g = lt_graph(opset);
    int32_t n = lt_node(g, "Reshape", 2, 0, 1);
    if (allowzero)
        graft_node_set_int(g, n, "allowzero", 1, NULL);
    int64_t len = k;
    graft_tensor *s = lt_tensor_i64(1, &len, shape);
    graft_tensor *in[2] = {(graft_tensor *)x, s};
    graft_status st = lt_run(c, g, n, 2, in);
    graft_tensor_destroy(s);
    *gp = g;
    return st;
}

static void test_reshape(void **state)
{
    (void)state;
    /* B10a */
    int64_t d23[2] = {2, 3}, d4[4] = {2, 2, 3, 2}, dz[2] = {0, 2};
    graft_tensor *x = lt_tensor_rand(2, d23, 1, 0, 1), *x4 = lt_tensor_rand(4, d4, 2, 0, 1);
    graft_tensor *xz = lt_tensor_f32(2, dz, NULL);
    struct { graft_tensor *x; int k; int64_t s[4]; bool az; int r; int64_t want[4]; } cases[] = {
        {x, 2, {0, 3}, false, 2, {2, 3}},      {x4, 3, {-1, 0, 0}, false, 3, {4, 2, 3}},
        {xz, 2, {0, 2}, true, 2, {0, 2}},      {x, 2, {3, -1}, false, 2, {3, 2}},
        {x4, 3, {2, 0, -1}, false, 3, {2, 2, 6}}, {x4, 1, {-1}, false, 1, {24}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        lt_call c;
        graft_graph *g;
        graft_status st = reshape(14, cases[i].x, cases[i].k, cases[i].s, cases[i].az, &c, &g);
        if (st)
            fail_msg("case %zu: %s", i, c.err.msg);
        expect_shape(c.out[0], cases[i].r, cases[i].want);
        expect_same_data(c.out[0], cases[i].x);
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    /* bad: two -1, count mismatch, negative */
    int64_t bad[3][2] = {{-1, -1}, {4, 2}, {-2, 3}};
    for (int i = 0; i < 3; i++) {
        lt_call c;
        graft_graph *g;
        graft_status st = reshape(14, x, 2, bad[i], false, &c, &g);
        assert_true(st == GRAFT_ERR_INVALID || st == GRAFT_ERR_SHAPE);
        assert_non_null(strstr(c.err.msg, "Reshape node 'n0'"));
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    /* B11: a batch baked into the shape names the node and the reason */
    int64_t d2[4] = {2, 16, 4, 4}, s11[2] = {1, 256};
    graft_tensor *xb = lt_tensor_f32(4, d2, NULL);
    lt_call c;
    graft_graph *g;
    assert_int_equal(reshape(13, xb, 2, s11, false, &c, &g), GRAFT_ERR_SHAPE);
    assert_non_null(strstr(c.err.msg, "'n0'"));
    assert_non_null(strstr(c.err.msg, "batch"));
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(xb);
    /* the shape unknown at build time is unsupported, not a crash */
    g = lt_graph(13);
    int32_t n = lt_node(g, "Reshape", 2, 0, 1);
    int64_t two = 2, sh[2] = {3, 2};
    graft_tensor *s = lt_tensor_i64(1, &two, sh);
    graft_tensor *in[2] = {x, s};
    assert_int_equal(lt_prepare(&c, g, n, 2, in, 2u), GRAFT_ERR_UNSUPPORTED);
    assert_non_null(strstr(c.err.msg, "runtime data"));
    lt_call_fini(&c);
    /* gradient */
    double e = lt_gradcheck(g, n, 2, in, 1, 1e-3, 1e-3, false);
    assert_true(e <= 1e-3);
    graft_graph_destroy(g);
    graft_tensor_destroy(s);
    /* Reshape-1: shape attribute */
    g = lt_graph(1);
    n = lt_node(g, "Reshape", 1, 0, 1);
    graft_node_set_ints(g, n, "shape", 2, sh, NULL);
    assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
    expect_shape(c.out[0], 2, sh);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);
    graft_tensor_destroy(x4);
    graft_tensor_destroy(xz);
}

/* ---- Flatten ----------------------------------------------------------------------------- */

static void test_flatten(void **state)
{
    (void)state;
    int64_t d[4] = {2, 3, 4, 5};
    graft_tensor *x = lt_tensor_rand(4, d, 3, -1, 1);
    struct { int64_t axis; int64_t want[2]; } cases[] = {
        {0, {1, 120}}, {1, {2, 60}}, {3, {24, 5}}, {4, {120, 1}}, {-1, {24, 5}}, {-4, {1, 120}}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        graft_graph *g = lt_graph(13);
        int32_t n = lt_node(g, "Flatten", 1, 0, 1);
        graft_node_set_int(g, n, "axis", cases[i].axis, NULL);
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
        expect_shape(c.out[0], 2, cases[i].want);
        expect_same_data(c.out[0], x);
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Flatten", 1, 0, 1);
    graft_node_set_int(g, n, "axis", 5, NULL);
    lt_call c;
    assert_int_equal(lt_prepare(&c, g, n, 1, &x, 0), GRAFT_ERR_INVALID);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    g = lt_graph(13);
    n = lt_node(g, "Flatten", 1, 0, 1);
    assert_true(lt_gradcheck(g, n, 1, &x, 1, 1e-3, 1e-3, false) <= 1e-3);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);
}

/* ---- Squeeze / Unsqueeze (B14a/b) ---------------------------------------------------------- */

static void squeeze_case(const char *op, int opset, const graft_tensor *x, int k,
                         const int64_t *axes, int r, const int64_t *want, graft_status want_st)
{
    graft_graph *g = lt_graph(opset);
    bool as_input = opset >= 13 && k >= 0;
    int32_t n = lt_node(g, op, as_input ? 2 : 1, 0, 1);
    graft_tensor *ta = NULL;
    if (as_input) {
        int64_t len = k;
        ta = lt_tensor_i64(1, &len, axes);
    } else if (k >= 0) {
        graft_node_set_ints(g, n, "axes", k, axes, NULL);
    }
    graft_tensor *in[2] = {(graft_tensor *)x, ta};
    lt_call c;
    graft_status st = lt_run(&c, g, n, as_input ? 2 : 1, in);
    if (st != want_st)
        fail_msg("%s-%d: status %d (%s), want %d", op, opset, st, c.err.msg, want_st);
    if (!st) {
        expect_shape(c.out[0], r, want);
        expect_same_data(c.out[0], x);
    }
    lt_call_fini(&c);
    if (!st && x->dtype == GRAFT_FLOAT)
        assert_true(lt_gradcheck(g, n, as_input ? 2 : 1, in, 1, 1e-3, 1e-3, false) <= 1e-3);
    graft_tensor_destroy(ta);
    graft_graph_destroy(g);
}

static void test_squeeze_unsqueeze(void **state)
{
    (void)state;
    int64_t d[4] = {1, 1000, 1, 1}, y2[2] = {1, 1000}, y1[1] = {1000};
    graft_tensor *x = lt_tensor_rand(4, d, 4, -1, 1), *y = lt_tensor_rand(2, y2, 5, -1, 1);
    int64_t a23[2] = {2, 3}, an[2] = {-1, -2}, u[2] = {3, -2}, a1[1] = {1};
    /* B14a: attributes */
    squeeze_case("Squeeze", 11, x, 2, a23, 2, y2, GRAFT_OK);
    squeeze_case("Squeeze", 11, x, -1, NULL, 1, y1, GRAFT_OK);
    squeeze_case("Unsqueeze", 11, y, 2, a23, 4, d, GRAFT_OK);
    /* B14b: inputs, negative and unsorted */
    squeeze_case("Squeeze", 13, x, 2, an, 2, y2, GRAFT_OK);
    squeeze_case("Squeeze", 13, x, -1, NULL, 1, y1, GRAFT_OK);
    squeeze_case("Unsqueeze", 13, y, 2, u, 4, d, GRAFT_OK);
    /* bad: squeezing a non-1 dim, repeated axes, out of range */
    squeeze_case("Squeeze", 13, x, 1, a1, 0, NULL, GRAFT_ERR_SHAPE);
    int64_t rep[2] = {2, -2}, far[1] = {7};
    squeeze_case("Squeeze", 13, x, 2, rep, 0, NULL, GRAFT_ERR_INVALID);
    squeeze_case("Unsqueeze", 13, y, 1, far, 0, NULL, GRAFT_ERR_INVALID);
    squeeze_case("Unsqueeze", 11, y, 2, rep, 0, NULL, GRAFT_ERR_INVALID);
    /* Unsqueeze of a scalar (shape arithmetic) */
    int64_t five = 5, zero = 0, one[1] = {1};
    graft_tensor *s = lt_tensor_i64(0, NULL, &five);
    squeeze_case("Unsqueeze", 13, s, 1, &zero, 1, one, GRAFT_OK);
    graft_tensor_destroy(s);
    graft_tensor_destroy(x);
    graft_tensor_destroy(y);
}

/* ---- Transpose ------------------------------------------------------------------------------- */

static void transpose_case(int r, const int64_t *dims, const int64_t *perm, bool grad)
{
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Transpose", 1, 0, 1);
    if (perm)
        graft_node_set_ints(g, n, "perm", r, perm, NULL);
    graft_tensor *x = lt_tensor_rand(r, dims, 9, -1, 1);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
    int64_t p[GRAFT_MAX_RANK], xs[GRAFT_MAX_RANK], s = 1;
    for (int i = r - 1; i >= 0; i--) {
        xs[i] = s;
        s *= dims[i];
    }
    for (int i = 0; i < r; i++)
        p[i] = perm ? perm[i] : r - 1 - i;
    const graft_tensor *y = c.out[0];
    for (int i = 0; i < r; i++)
        assert_int_equal(y->dims[i], dims[p[i]]);
    int64_t total = graft_tensor_nelem(x);
    for (int64_t i = 0; i < total; i++) {
        int64_t rem = i, off = 0;
        for (int d = r - 1; d >= 0; d--) {
            off += (rem % y->dims[d]) * xs[p[d]];
            rem /= y->dims[d];
        }
        if (graft_tensor_f32(y)[i] != graft_tensor_f32(x)[off])
            fail_msg("transpose elem %lld", (long long)i);
    }
    lt_call_fini(&c);
    if (grad)
        assert_true(lt_gradcheck(g, n, 1, &x, 1, 1e-3, 1e-3, false) <= 1e-3);
    graft_tensor_destroy(x);
    graft_graph_destroy(g);
}

static void test_transpose(void **state)
{
    (void)state;
    int64_t d3[3] = {2, 3, 4}, d4[4] = {2, 3, 4, 5}, big[4] = {2, 64, 33, 35}, d2[2] = {70, 90};
    int64_t p3[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    for (int i = 0; i < 6; i++)
        transpose_case(3, d3, p3[i], true);
    transpose_case(3, d3, NULL, true);
    int64_t nhwc[4] = {0, 2, 3, 1}, nchw[4] = {0, 3, 1, 2}, odd[4] = {3, 1, 0, 2};
    transpose_case(4, d4, nhwc, true);
    transpose_case(4, d4, nchw, false);
    transpose_case(4, d4, odd, false);
    transpose_case(4, big, nhwc, false);
    transpose_case(4, big, nchw, false);
    transpose_case(2, d2, NULL, false);
    /* bad perm */
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Transpose", 1, 0, 1);
    int64_t bp[3] = {0, 0, 1};
    graft_node_set_ints(g, n, "perm", 3, bp, NULL);
    graft_tensor *x = lt_tensor_rand(3, d3, 1, 0, 1);
    lt_call c;
    assert_int_equal(lt_prepare(&c, g, n, 1, &x, 0), GRAFT_ERR_INVALID);
    lt_call_fini(&c);
    graft_node_set_ints(g, n, "perm", 2, bp, NULL);
    assert_int_equal(lt_prepare(&c, g, n, 1, &x, 0), GRAFT_ERR_SHAPE);
    lt_call_fini(&c);
    graft_tensor_destroy(x);
    graft_graph_destroy(g);
}

/* ---- Concat ------------------------------------------------------------------------------------ */

static void test_concat(void **state)
{
    (void)state;
    int64_t da[3] = {2, 3, 4}, db[3] = {2, 1, 4}, dc[3] = {2, 2, 4};
    graft_tensor *a = lt_tensor_rand(3, da, 1, -1, 1), *b = lt_tensor_rand(3, db, 2, -1, 1),
                 *cc = lt_tensor_rand(3, dc, 3, -1, 1);
    graft_tensor *in[3] = {a, b, cc};
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Concat", 3, 0, 1);
    graft_node_set_int(g, n, "axis", -2, NULL);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 3, in), GRAFT_OK);
    int64_t want[3] = {2, 6, 4};
    expect_shape(c.out[0], 3, want);
    for (int o = 0; o < 2; o++)
        for (int j = 0; j < 6; j++)
            for (int k = 0; k < 4; k++) {
                float v = j < 3 ? graft_tensor_f32(a)[(o * 3 + j) * 4 + k]
                        : j < 4 ? graft_tensor_f32(b)[(o * 1 + j - 3) * 4 + k]
                                : graft_tensor_f32(cc)[(o * 2 + j - 4) * 4 + k];
                assert_float_equal(graft_tensor_f32(c.out[0])[(o * 6 + j) * 4 + k], v, 0);
            }
    lt_call_fini(&c);
    assert_true(lt_gradcheck(g, n, 3, in, 7, 1e-3, 1e-3, false) <= 1e-3);
    graft_graph_destroy(g);
    /* mismatch outside the axis */
    g = lt_graph(13);
    n = lt_node(g, "Concat", 2, 0, 1);
    graft_node_set_int(g, n, "axis", 0, NULL);
    assert_int_equal(lt_prepare(&c, g, n, 2, in, 0), GRAFT_ERR_SHAPE);
    assert_non_null(strstr(c.err.msg, "Concat node 'n0'"));
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* int64 shape arithmetic: Concat([-1], [256]) */
    int64_t one = 1, m1 = -1, v256 = 256;
    graft_tensor *i1 = lt_tensor_i64(1, &one, &m1), *i2 = lt_tensor_i64(1, &one, &v256);
    graft_tensor *ii[2] = {i1, i2};
    g = lt_graph(13);
    n = lt_node(g, "Concat", 2, 0, 1);
    graft_node_set_int(g, n, "axis", 0, NULL);
    assert_int_equal(lt_run(&c, g, n, 2, ii), GRAFT_OK);
    assert_int_equal(c.out[0]->dtype, GRAFT_INT64);
    assert_int_equal(graft_tensor_i64(c.out[0])[0], -1);
    assert_int_equal(graft_tensor_i64(c.out[0])[1], 256);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(i1);
    graft_tensor_destroy(i2);
    graft_tensor_destroy(a);
    graft_tensor_destroy(b);
    graft_tensor_destroy(cc);
}

/* ---- Shape / Gather / Slice / Cast ----------------------------------------------------------------- */

static void test_shape_gather(void **state)
{
    (void)state;
    int64_t d[4] = {8, 3, 32, 32};
    graft_tensor x = {.dtype = GRAFT_FLOAT, .rank = 4, .dims = {8, 3, 32, 32}};
    graft_tensor *xp = &x; /* Shape never reads data */
    struct { bool s, e; int64_t start, end; int len; int64_t first; } cases[] = {
        {false, false, 0, 0, 4, 8}, {true, false, 1, 0, 3, 3}, {false, true, 0, -1, 3, 8},
        {true, true, -3, 3, 2, 3},  {true, true, 10, 20, 0, 0}, {true, false, -10, 0, 4, 8}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        graft_graph *g = lt_graph(15);
        int32_t n = lt_node(g, "Shape", 1, 0, 1);
        if (cases[i].s)
            graft_node_set_int(g, n, "start", cases[i].start, NULL);
        if (cases[i].e)
            graft_node_set_int(g, n, "end", cases[i].end, NULL);
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 1, &xp), GRAFT_OK);
        assert_int_equal(c.out[0]->dtype, GRAFT_INT64);
        assert_int_equal(c.out[0]->dims[0], cases[i].len);
        if (cases[i].len)
            assert_int_equal(graft_tensor_i64(c.out[0])[0], cases[i].first);
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    assert_true(graft__op_shape.flags & GRAFT_OP_SHAPE_ONLY);
    /* Gather(Shape, 0) with a negative index on int64 data */
    graft_tensor *sh = lt_tensor_i64(1, (int64_t[]){4}, d);
    int64_t idx = -4;
    graft_tensor *ti = lt_tensor_i64(0, NULL, &idx);
    graft_tensor *in[2] = {sh, ti};
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Gather", 2, 0, 1);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 2, in), GRAFT_OK);
    assert_int_equal(c.out[0]->rank, 0);
    assert_int_equal(graft_tensor_i64(c.out[0])[0], 8);
    lt_call_fini(&c);
    /* out of range index: error naming the node */
    graft_tensor_i64(ti)[0] = 4;
    assert_int_equal(lt_prepare(&c, g, n, 2, in, 0), GRAFT_ERR_INVALID);
    assert_non_null(strstr(c.err.msg, "Gather node 'n0'"));
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* float Gather on axis 1 with 2-D indices, repeated: reference + gradient */
    int64_t dx[3] = {2, 5, 3}, di[2] = {2, 2}, iv[4] = {0, -1, 4, 0};
    graft_tensor *xf = lt_tensor_rand(3, dx, 8, -1, 1), *ix = lt_tensor_i64(2, di, iv);
    graft_tensor *gin[2] = {xf, ix};
    g = lt_graph(13);
    n = lt_node(g, "Gather", 2, 0, 1);
    graft_node_set_int(g, n, "axis", 1, NULL);
    assert_int_equal(lt_run(&c, g, n, 2, gin), GRAFT_OK);
    int64_t want[4] = {2, 2, 2, 3};
    expect_shape(c.out[0], 4, want);
    for (int o = 0; o < 2; o++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 3; k++) {
                int64_t src = iv[j] < 0 ? iv[j] + 5 : iv[j];
                assert_float_equal(graft_tensor_f32(c.out[0])[(o * 4 + j) * 3 + k],
                                   graft_tensor_f32(xf)[(o * 5 + src) * 3 + k], 0);
            }
    lt_call_fini(&c);
    assert_true(lt_gradcheck(g, n, 2, gin, 1, 1e-3, 1e-3, false) <= 1e-3);
    graft_graph_destroy(g);
    graft_tensor_destroy(xf);
    graft_tensor_destroy(ix);
    graft_tensor_destroy(sh);
    graft_tensor_destroy(ti);
}

static void slice_ref_check(const graft_tensor *x, const graft_tensor *y, const int64_t *start,
                            const int64_t *step)
{
    int r = x->rank;
    int64_t xs[GRAFT_MAX_RANK], s = 1;
    for (int i = r - 1; i >= 0; i--) {
        xs[i] = s;
        s *= x->dims[i];
    }
    int64_t total = graft_tensor_nelem(y);
    for (int64_t i = 0; i < total; i++) {
        int64_t rem = i, off = 0;
        for (int d = r - 1; d >= 0; d--) {
            off += (start[d] + (rem % y->dims[d]) * step[d]) * xs[d];
            rem /= y->dims[d];
        }
        if (graft_tensor_f32(y)[i] != graft_tensor_f32(x)[off])
            fail_msg("slice elem %lld", (long long)i);
    }
}

static void test_slice(void **state)
{
    (void)state;
    int64_t d[3] = {5, 6, 7};
    graft_tensor *x = lt_tensor_rand(3, d, 12, -1, 1);
    int64_t three = 3;
    struct {
        int64_t starts[3], ends[3], axes[3], steps[3];
        int64_t want[3], first[3], stride[3];
    } cases[] = {
        /* plain, negative, clamped to the end with INT64_MAX */
        {{1, 0, 2}, {3, 6, INT64_MAX}, {0, 1, 2}, {1, 1, 1}, {2, 6, 5}, {1, 0, 2}, {1, 1, 1}},
        {{-2, -100, 0}, {-1, 3, 7}, {0, 1, 2}, {1, 1, 2}, {1, 3, 4}, {3, 0, 0}, {1, 1, 2}},
        /* negative steps, axes unsorted and negative */
        {{-1, 5, 0}, {INT64_MIN, 0, 7}, {2, -2, 0}, {-2, -2, 3}, {2, 3, 4}, {0, 5, 6},
         {3, -2, -2}},
        /* empty result when start is past the end */
        {{10, 0, 0}, {20, 6, 7}, {0, 1, 2}, {1, 1, 1}, {0, 6, 7}, {0, 0, 0}, {1, 1, 1}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        graft_graph *g = lt_graph(13);
        int32_t n = lt_node(g, "Slice", 5, 0, 1);
        graft_tensor *ts = lt_tensor_i64(1, &three, cases[i].starts),
                     *te = lt_tensor_i64(1, &three, cases[i].ends),
                     *ta = lt_tensor_i64(1, &three, cases[i].axes),
                     *tp = lt_tensor_i64(1, &three, cases[i].steps);
        graft_tensor *in[5] = {x, ts, te, ta, tp};
        lt_call c;
        graft_status st = lt_run(&c, g, n, 5, in);
        if (st)
            fail_msg("case %zu: %s", i, c.err.msg);
        expect_shape(c.out[0], 3, cases[i].want);
        slice_ref_check(x, c.out[0], cases[i].first, cases[i].stride);
        lt_call_fini(&c);
        if (graft_shape_nelem(3, cases[i].want) > 0)
            assert_true(lt_gradcheck(g, n, 5, in, 1, 1e-3, 1e-3, false) <= 1e-3);
        /* unknown starts at build time */
        assert_int_equal(lt_prepare(&c, g, n, 5, in, 2u), GRAFT_ERR_UNSUPPORTED);
        lt_call_fini(&c);
        graft_tensor_destroy(ts);
        graft_tensor_destroy(te);
        graft_tensor_destroy(ta);
        graft_tensor_destroy(tp);
        graft_graph_destroy(g);
    }
    /* Slice-1: attributes, axes default to 0..n-1 */
    graft_graph *g = lt_graph(9);
    int32_t n = lt_node(g, "Slice", 1, 0, 1);
    int64_t s[2] = {1, -3}, e[2] = {4, 100};
    graft_node_set_ints(g, n, "starts", 2, s, NULL);
    graft_node_set_ints(g, n, "ends", 2, e, NULL);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
    int64_t want[3] = {3, 3, 7}, first[3] = {1, 3, 0}, step[3] = {1, 1, 1};
    expect_shape(c.out[0], 3, want);
    slice_ref_check(x, c.out[0], first, step);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* step 0 is invalid */
    g = lt_graph(13);
    n = lt_node(g, "Slice", 5, 0, 1);
    int64_t one = 1, z = 0, a0 = 0, big = 3;
    graft_tensor *ts = lt_tensor_i64(1, &one, &z), *te = lt_tensor_i64(1, &one, &big),
                 *ta = lt_tensor_i64(1, &one, &a0), *tp = lt_tensor_i64(1, &one, &z);
    graft_tensor *in[5] = {x, ts, te, ta, tp};
    assert_int_equal(lt_prepare(&c, g, n, 5, in, 0), GRAFT_ERR_INVALID);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(ts);
    graft_tensor_destroy(te);
    graft_tensor_destroy(ta);
    graft_tensor_destroy(tp);
    graft_tensor_destroy(x);
}

static void test_cast(void **state)
{
    (void)state;
    int64_t d[1] = {6};
    float fv[6] = {-2.7f, -0.5f, 0, 1.5f, 300.9f, 65519.f};
    graft_tensor *x = lt_tensor_f32(1, d, fv);
    struct { int to; graft_dtype dt; double want[6]; } cases[] = {
        {GRAFT_INT64, GRAFT_INT64, {-2, 0, 0, 1, 300, 65519}},
        {GRAFT_INT32, GRAFT_INT64, {-2, 0, 0, 1, 300, 65519}},
        {GRAFT_UINT8, GRAFT_INT64, {254, 0, 0, 1, 44, 239}},
        {GRAFT_BOOL, GRAFT_UINT8, {1, 1, 0, 1, 1, 1}},
        {GRAFT_FLOAT16, GRAFT_FLOAT, {-2.69921875, -0.5, 0, 1.5, 301, 65504}},
        {GRAFT_DOUBLE, GRAFT_FLOAT, {-2.7f, -0.5, 0, 1.5, 300.9f, 65519}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        graft_graph *g = lt_graph(13);
        int32_t n = lt_node(g, "Cast", 1, 0, 1);
        graft_node_set_int(g, n, "to", cases[i].to, NULL);
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
        assert_int_equal(c.out[0]->dtype, cases[i].dt);
        for (int k = 0; k < 6; k++) {
            double got = c.out[0]->dtype == GRAFT_FLOAT   ? graft_tensor_f32(c.out[0])[k]
                         : c.out[0]->dtype == GRAFT_INT64 ? (double)graft_tensor_i64(c.out[0])[k]
                                                          : ((uint8_t *)c.out[0]->data)[k];
            if (fabs(got - cases[i].want[k]) > 1e-6 * fabs(cases[i].want[k]))
                fail_msg("cast to %d elem %d: %g want %g", cases[i].to, k, got, cases[i].want[k]);
        }
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    /* int64 -> float, bool -> float */
    int64_t iv[3] = {-3, 0, 1 << 20}, three = 3;
    graft_tensor *xi = lt_tensor_i64(1, &three, iv);
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Cast", 1, 0, 1);
    graft_node_set_int(g, n, "to", GRAFT_FLOAT, NULL);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 1, &xi), GRAFT_OK);
    assert_float_equal(graft_tensor_f32(c.out[0])[0], -3, 0);
    assert_float_equal(graft_tensor_f32(c.out[0])[2], (1 << 20), 0);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* to string: unsupported, with the node named */
    g = lt_graph(13);
    n = lt_node(g, "Cast", 1, 0, 1);
    graft_node_set_int(g, n, "to", GRAFT_STRING, NULL);
    assert_int_equal(lt_prepare(&c, g, n, 1, &xi, 0), GRAFT_ERR_UNSUPPORTED);
    assert_non_null(strstr(c.err.msg, "Cast node 'n0'"));
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(xi);
    graft_tensor_destroy(x);
}

/* CastLike takes the target from `like`'s declared type. x = {-2.7, 0.1,
 * 65519, 3}: like float16 rounds to the nearest half, ties to even
 * (spacing 2^-9 on [2, 4): -2.7 -> -1382 * 2^-9 = -2.69921875; spacing 2^-14 on
 * [1/16, 1/8): 0.1 -> 1638 * 2^-14 = 0.0999755859375; 65519 < 65520 -> 65504);
 * like int32 truncates; like uint8 wraps (-2 -> 254, 65519 -> 239); like bool
 * is x != 0. With no declared type the compute type of like's data decides. */
/* Cast-1 names the type: "INT32" truncates toward zero as every Cast does
 * (-2.7 -> -2, 1.5 -> 1), "FLOAT16" rounds to half precision (300.9 -> 301);
 * a name that is no TensorProto type is refused naming it. */
static void test_cast_opset1_names(void **state)
{
    (void)state;
    int64_t d[1] = {3};
    float fv[3] = {-2.7f, 1.5f, 300.9f};
    graft_tensor *x = lt_tensor_f32(1, d, fv);
    graft_graph *g = lt_graph(1);
    int32_t n = lt_node(g, "Cast", 1, 0, 1);
    assert_int_equal(graft_node_set_string(g, n, "to", "INT32", NULL), GRAFT_OK);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
    assert_int_equal(c.out[0]->dtype, GRAFT_INT64);
    assert_int_equal(graft_tensor_i64(c.out[0])[0], -2);
    assert_int_equal(graft_tensor_i64(c.out[0])[1], 1);
    assert_int_equal(graft_tensor_i64(c.out[0])[2], 300);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    g = lt_graph(1);
    n = lt_node(g, "Cast", 1, 0, 1);
    assert_int_equal(graft_node_set_string(g, n, "to", "FLOAT16", NULL), GRAFT_OK);
    assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
    assert_float_equal(graft_tensor_f32(c.out[0])[2], 301.0f, 0);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    g = lt_graph(1);
    n = lt_node(g, "Cast", 1, 0, 1);
    assert_int_equal(graft_node_set_string(g, n, "to", "BOGUS", NULL), GRAFT_OK);
    assert_int_equal(lt_prepare(&c, g, n, 1, &x, 0), GRAFT_ERR_INVALID);
    assert_non_null(strstr(c.err.msg, "BOGUS"));
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);
}

static void test_cast_like(void **state)
{
    (void)state;
    int64_t d[1] = {4}, one = 1;
    float fv[4] = {-2.7f, 0.1f, 65519.f, 3};
    graft_tensor *x = lt_tensor_f32(1, d, fv), *lf = lt_tensor_f32(1, &one, fv);
    int64_t zero = 0;
    graft_tensor *li = lt_tensor_i64(1, &one, &zero);
    struct { graft_dtype declared; graft_tensor *like; graft_dtype dt; double want[4]; } cases[] = {
        {GRAFT_FLOAT16, lf, GRAFT_FLOAT, {-2.69921875, 0.0999755859375, 65504, 3}},
        {GRAFT_DOUBLE, lf, GRAFT_FLOAT, {-2.7f, 0.1f, 65519, 3}},
        {GRAFT_INT32, li, GRAFT_INT64, {-2, 0, 65519, 3}},
        {GRAFT_UINT8, li, GRAFT_INT64, {254, 0, 239, 3}},
        {GRAFT_BOOL, li, GRAFT_UINT8, {1, 1, 1, 1}},
        {GRAFT_DTYPE_UNDEFINED, li, GRAFT_INT64, {-2, 0, 65519, 3}},
        {GRAFT_DTYPE_UNDEFINED, lf, GRAFT_FLOAT, {-2.7f, 0.1f, 65519, 3}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        graft_graph *g = lt_graph(15);
        int32_t n = lt_node(g, "CastLike", 2, 0, 1);
        g->values[g->nodes[n].inputs[1]].dtype = cases[i].declared;
        graft_tensor *in[2] = {x, cases[i].like};
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 2, in), GRAFT_OK);
        assert_int_equal(c.out[0]->dtype, cases[i].dt);
        assert_int_equal(c.out[0]->rank, 1);
        assert_int_equal(c.out[0]->dims[0], 4);
        assert_null(c.def->backward);
        for (int k = 0; k < 4; k++) {
            double got = c.out[0]->dtype == GRAFT_FLOAT   ? graft_tensor_f32(c.out[0])[k]
                         : c.out[0]->dtype == GRAFT_INT64 ? (double)graft_tensor_i64(c.out[0])[k]
                                                          : ((uint8_t *)c.out[0]->data)[k];
            if (fabs(got - cases[i].want[k]) > 1e-9 * fabs(cases[i].want[k]))
                fail_msg("CastLike case %zu elem %d: %.10g want %.10g", i, k, got,
                         cases[i].want[k]);
        }
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    /* like a string: unsupported, the node named; one input: invalid */
    graft_graph *g = lt_graph(15);
    int32_t n = lt_node(g, "CastLike", 2, 0, 1);
    g->values[g->nodes[n].inputs[1]].dtype = GRAFT_STRING;
    graft_tensor *in[2] = {x, lf};
    lt_call c;
    assert_int_equal(lt_prepare(&c, g, n, 2, in, 0), GRAFT_ERR_UNSUPPORTED);
    assert_non_null(strstr(c.err.msg, "CastLike node 'n0'"));
    assert_non_null(strstr(c.err.msg, "string"));
    lt_call_fini(&c);
    graft_graph_destroy(g);
    g = lt_graph(15);
    n = lt_node(g, "CastLike", 1, 0, 1);
    assert_int_equal(lt_prepare(&c, g, n, 1, in, 0), GRAFT_ERR_INVALID);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);
    graft_tensor_destroy(lf);
    graft_tensor_destroy(li);
}

/* CastLike's node tests through the importer: lt_onnx_suite's one-node graph
 * does not carry the declared type of `like`, which is the target type
 * (float16 rounding). Returns 1 pass, 0 fail, -1 skip (string data, or test
 * data that contradicts the model's declared shapes: the BFLOAT16 cases feed
 * `like` as [1] where the model says [3,4]). */
static int castlike_case(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "/usr/share/libonnx-testdata/data/node/%s/model.onnx", name);
    graft_graph *g = NULL;
    graft_plan *p = NULL;
    graft_tensor *in[2] = {NULL, NULL}, *want = NULL;
    graft_error err = {0};
    int result = 0;
    if (graft_onnx_import_file(path, NULL, &g, &err))
        return -1;
    graft_shape shapes[2];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path,
                 "/usr/share/libonnx-testdata/data/node/%s/test_data_set_0/input_%d.pb", name, i);
        if (graft_onnx_read_tensor_file(path, &in[i], NULL, NULL, 0, &err)) {
            result = -1; /* string tensors */
            goto done;
        }
        shapes[i].rank = in[i]->rank;
        memcpy(shapes[i].dims, in[i]->dims, sizeof shapes[i].dims);
    }
    graft_plan_options o = graft_plan_options_default();
    graft_status st = graft_plan_create(g, &o, 2, shapes, &p, &err);
    if (st) {
        if (st != GRAFT_ERR_SHAPE)
            fprintf(stderr, "%s: %s\n", name, err.msg);
        result = st == GRAFT_ERR_SHAPE ? -1 : 0;
        goto done;
    }
    const graft_tensor *const feeds[2] = {in[0], in[1]};
    if (graft_plan_run(p, feeds, &err)) {
        fprintf(stderr, "%s: %s\n", name, err.msg);
        goto done;
    }
    snprintf(path, sizeof path,
             "/usr/share/libonnx-testdata/data/node/%s/test_data_set_0/output_0.pb", name);
    if (graft_onnx_read_tensor_file(path, &want, NULL, NULL, 0, &err))
        goto done;
    char why[256];
    if (!lt_close(graft_plan_output(p, 0), want, 1e-7, 1e-6, why, sizeof why)) {
        fprintf(stderr, "%s: %s\n", name, why);
        goto done;
    }
    result = 1;
done:
    graft_tensor_destroy(want);
    graft_tensor_destroy(in[0]);
    graft_tensor_destroy(in[1]);
    graft_plan_destroy(p);
    graft_graph_destroy(g);
    return result;
}

static void test_cast_like_node_data(void **state)
{
    (void)state;
    static const char *const types[] = {"FLOAT", "FLOAT16", "DOUBLE", "BFLOAT16", "STRING"};
    int pass = 0, fail = 0, skip = 0;
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 5; b++)
            for (int e = 0; e < 2; e++) {
                char name[128];
                snprintf(name, sizeof name, "test_castlike_%s_to_%s%s", types[a], types[b],
                         e ? "_expanded" : "");
                char dir[300];
                snprintf(dir, sizeof dir, "/usr/share/libonnx-testdata/data/node/%s", name);
                FILE *f = fopen(strcat(dir, "/model.onnx"), "rb");
                if (!f)
                    continue;
                fclose(f);
                int r = castlike_case(name);
                pass += r == 1;
                fail += r == 0;
                skip += r < 0;
            }
    if (pass + fail + skip == 0)
        skip();
    fprintf(stderr, "castlike node tests: %d pass, %d fail, %d skipped\n", pass, fail, skip);
    assert_int_equal(fail, 0);
    assert_true(pass >= 12);
}

/* ---- Identity / Dropout / Constant -------------------------------------------------------------------- */

static void test_identity_dropout(void **state)
{
    (void)state;
    int64_t d[2] = {1, 4};
    float xv[4] = {1, -2, 3, 4};
    graft_tensor *x = lt_tensor_f32(2, d, xv);
    lt_call c;
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Identity", 1, 0, 1);
    assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
    expect_same_data(c.out[0], x);
    lt_call_fini(&c);
    assert_true(lt_gradcheck(g, n, 1, &x, 1, 1e-3, 1e-3, false) <= 1e-3);
    graft_graph_destroy(g);
    /* B28a: Dropout-13 with training_mode = true: identity, mask all true */
    float half = 0.5f;
    uint8_t yes = 1;
    graft_tensor *ratio = lt_tensor_f32(0, NULL, &half), *tm = NULL;
    graft_tensor_create(GRAFT_UINT8, 0, NULL, &tm, NULL);
    memcpy(tm->data, &yes, 1);
    graft_tensor *in[3] = {x, ratio, tm};
    g = lt_graph(13);
    n = lt_node(g, "Dropout", 3, 0, 2);
    assert_int_equal(lt_run(&c, g, n, 3, in), GRAFT_OK);
    expect_same_data(c.out[0], x);
    assert_int_equal(c.out[1]->dtype, GRAFT_UINT8);
    for (int i = 0; i < 4; i++)
        assert_int_equal(((uint8_t *)c.out[1]->data)[i], 1);
    lt_call_fini(&c);
    /* even when the executor trains: the backbone value carries no gradient */
    assert_int_equal(lt_prepare(&c, g, n, 3, in, 0), GRAFT_OK);
    c.ctx.training = true;
    assert_int_equal(lt_forward(&c), GRAFT_OK);
    expect_same_data(c.out[0], x);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* B28b: Dropout-7 ratio attribute, float mask */
    g = lt_graph(7);
    n = lt_node(g, "Dropout", 1, 0, 2);
    graft_node_set_float(g, n, "ratio", 0.5f, NULL);
    assert_int_equal(lt_run(&c, g, n, 1, in), GRAFT_OK);
    expect_same_data(c.out[0], x);
    assert_int_equal(c.out[1]->dtype, GRAFT_FLOAT);
    for (int i = 0; i < 4; i++)
        assert_float_equal(graft_tensor_f32(c.out[1])[i], 1, 0);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* Dropout-7 given two inputs is invalid */
    g = lt_graph(7);
    n = lt_node(g, "Dropout", 2, 0, 1);
    assert_int_equal(lt_prepare(&c, g, n, 2, in, 0), GRAFT_ERR_INVALID);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* training on a head value: inverted dropout, same mask in backward */
    int64_t db[2] = {64, 128};
    graft_tensor *xb = lt_tensor_rand(2, db, 3, 1, 2);
    float r3 = 0.3f;
    graft_tensor *tr = lt_tensor_f32(0, NULL, &r3);
    graft_tensor *bin[2] = {xb, tr};
    g = lt_graph(13);
    n = lt_node(g, "Dropout", 2, 0, 2);
    g->values[g->nodes[n].inputs[0]].needs_grad = true;
    assert_int_equal(lt_prepare(&c, g, n, 2, bin, 0), GRAFT_OK);
    c.ctx.training = true;
    assert_int_equal(lt_forward(&c), GRAFT_OK);
    int64_t kept = 0, total = graft_tensor_nelem(xb);
    for (int64_t i = 0; i < total; i++) {
        float y = graft_tensor_f32(c.out[0])[i], xv0 = graft_tensor_f32(xb)[i];
        uint8_t m = ((uint8_t *)c.out[1]->data)[i];
        if (m) {
            kept++;
            assert_true(fabsf(y - xv0 / 0.7f) < 1e-5f);
        } else {
            assert_float_equal(y, 0, 0);
        }
    }
    double frac = (double)kept / (double)total;
    assert_true(frac > 0.65 && frac < 0.75);
    lt_call_fini(&c);
    assert_true(lt_gradcheck(g, n, 2, bin, 1, 1e-3, 1e-3, true) <= 1e-3);
    graft_graph_destroy(g);
    /* head without a hidden layer: features (no gradient) -> Dropout -> a
     * dense layer with a trainable weight: still drops */
    g = lt_graph(13);
    n = lt_node(g, "Dropout", 2, 0, 1);
    int32_t w = graft_graph_add_value(g, "W", NULL), out = graft_graph_add_value(g, "logits", NULL);
    g->values[w].trainable = true;
    int32_t mm_in[2] = {g->nodes[n].outputs[0], w};
    graft_graph_add_node(g, "MatMul", "", "fc", 2, mm_in, 1, &out, NULL);
    assert_int_equal(lt_prepare(&c, g, n, 2, bin, 0), GRAFT_OK);
    c.ctx.training = true;
    assert_int_equal(lt_forward(&c), GRAFT_OK);
    int64_t zeros = 0;
    for (int64_t i = 0; i < total; i++)
        zeros += graft_tensor_f32(c.out[0])[i] == 0.0f;
    assert_true(zeros > total / 5);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(xb);
    graft_tensor_destroy(tr);
    graft_tensor_destroy(ratio);
    graft_tensor_destroy(tm);
    graft_tensor_destroy(x);
    assert_true(graft__op_dropout.flags & GRAFT_OP_ALIAS_INPUT0);
    assert_true(graft__op_reshape.flags & GRAFT_OP_ALIAS_INPUT0);
}

static graft_attr *force_attr(graft_graph *g, int32_t n, const char *name, graft_attr_type type)
{
    graft_node_set_int(g, n, name, 0, NULL);
    graft_attr *a = (graft_attr *)graft_node_attr(&g->nodes[n], name);
    a->type = type;
    return a;
}

static void test_constant(void **state)
{
    (void)state;
    lt_call c;
    /* value tensor */
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Constant", 0, 0, 1);
    int64_t d[2] = {2, 2};
    float v[4] = {1, 2, 3, 4};
    force_attr(g, n, "value", GRAFT_ATTR_TENSOR)->t = lt_tensor_f32(2, d, v);
    assert_int_equal(lt_run(&c, g, n, 0, NULL), GRAFT_OK);
    expect_shape(c.out[0], 2, d);
    assert_memory_equal(c.out[0]->data, v, sizeof v);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* value_float / value_int: scalars */
    g = lt_graph(13);
    n = lt_node(g, "Constant", 0, 0, 1);
    graft_node_set_float(g, n, "value_float", 2.5f, NULL);
    assert_int_equal(lt_run(&c, g, n, 0, NULL), GRAFT_OK);
    assert_int_equal(c.out[0]->rank, 0);
    assert_float_equal(graft_tensor_f32(c.out[0])[0], 2.5f, 0);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    g = lt_graph(13);
    n = lt_node(g, "Constant", 0, 0, 1);
    graft_node_set_int(g, n, "value_int", -7, NULL);
    assert_int_equal(lt_run(&c, g, n, 0, NULL), GRAFT_OK);
    assert_int_equal(c.out[0]->dtype, GRAFT_INT64);
    assert_int_equal(graft_tensor_i64(c.out[0])[0], -7);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* value_ints / value_floats: 1-D */
    g = lt_graph(13);
    n = lt_node(g, "Constant", 0, 0, 1);
    int64_t iv[3] = {1, -1, 256};
    graft_node_set_ints(g, n, "value_ints", 3, iv, NULL);
    assert_int_equal(lt_run(&c, g, n, 0, NULL), GRAFT_OK);
    assert_int_equal(c.out[0]->dims[0], 3);
    assert_memory_equal(c.out[0]->data, iv, sizeof iv);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    g = lt_graph(13);
    n = lt_node(g, "Constant", 0, 0, 1);
    graft_attr *a = force_attr(g, n, "value_floats", GRAFT_ATTR_FLOATS);
    a->n = 4;
    a->floats = graft_graph_alloc(g, sizeof v);
    memcpy(a->floats, v, sizeof v);
    assert_int_equal(lt_run(&c, g, n, 0, NULL), GRAFT_OK);
    assert_int_equal(c.out[0]->dims[0], 4);
    assert_memory_equal(c.out[0]->data, v, sizeof v);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* none, or a string: a clean error */
    g = lt_graph(13);
    n = lt_node(g, "Constant", 0, 0, 1);
    assert_int_equal(lt_prepare(&c, g, n, 0, NULL, 0), GRAFT_ERR_INVALID);
    lt_call_fini(&c);
    graft_node_set_string(g, n, "value_string", "x", NULL);
    assert_int_equal(lt_prepare(&c, g, n, 0, NULL, 0), GRAFT_ERR_UNSUPPORTED);
    lt_call_fini(&c);
    graft_graph_destroy(g);
}

/* Ops flagged GRAFT_OP_ALIAS_INPUT0 must run with output 0 in input 0's
 * buffer (the executor shares it when input 0 dies there). */
static void test_alias_in_place(void **state)
{
    (void)state;
    static const char *ops[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity",
                                "Dropout"};
    int64_t d[3] = {2, 1, 6}, shape[2] = {3, 4}, two = 2, one = 1, ax = 1;
    for (int k = 0; k < 6; k++) {
        graft_graph *g = lt_graph(13);
        const graft_op_def *def = graft__op_table[graft__op_lookup(ops[k], "")];
        assert_true(def->flags & GRAFT_OP_ALIAS_INPUT0);
        int n_in = !strcmp(ops[k], "Reshape") || !strcmp(ops[k], "Squeeze") ||
                   !strcmp(ops[k], "Unsqueeze") ? 2 : 1;
        int32_t n = lt_node(g, ops[k], n_in, 0, 1);
        graft_tensor *x = lt_tensor_rand(3, d, 40 + (uint64_t)k, -1, 1), *want = NULL;
        graft_tensor_clone(x, &want, NULL);
        graft_tensor *a = !strcmp(ops[k], "Reshape") ? lt_tensor_i64(1, &two, shape)
                                                     : lt_tensor_i64(1, &one, &ax);
        graft_tensor *in[2] = {x, a};
        lt_call c;
        assert_int_equal(lt_prepare(&c, g, n, n_in, in, 0), GRAFT_OK);
        free(c.out[0]->data);
        c.out[0]->data = x->data;
        c.out[0]->owned = false;
        assert_int_equal(lt_forward(&c), GRAFT_OK);
        assert_memory_equal(x->data, want->data, want->nbytes);
        lt_call_fini(&c);
        graft_tensor_destroy(x);
        graft_tensor_destroy(want);
        graft_tensor_destroy(a);
        graft_graph_destroy(g);
    }
}

static void test_onnx_node_data(void **state)
{
    (void)state;
    static const char *const ops[] = {"Reshape", "Flatten", "Transpose", "Squeeze",
                                      "Unsqueeze", "Concat", "Shape", "Gather", "Slice",
                                      "Cast", "Identity", "Dropout", "Constant", NULL};
    int pass, fail, skip;
    if (lt_onnx_suite(ops, &pass, &fail, &skip) < 0)
        skip();
    assert_int_equal(fail, 0);
    assert_true(pass >= 85);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reshape),      cmocka_unit_test(test_flatten),
        cmocka_unit_test(test_squeeze_unsqueeze), cmocka_unit_test(test_transpose),
        cmocka_unit_test(test_concat),       cmocka_unit_test(test_shape_gather),
        cmocka_unit_test(test_slice),        cmocka_unit_test(test_cast),
        cmocka_unit_test(test_cast_opset1_names),
        cmocka_unit_test(test_cast_like),    cmocka_unit_test(test_cast_like_node_data),
        cmocka_unit_test(test_identity_dropout), cmocka_unit_test(test_constant),
        cmocka_unit_test(test_alias_in_place),
        cmocka_unit_test(test_onnx_node_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
