/* Comparisons, boolean logic, Where, IsNaN/IsInf, Mod and BitShift: hand-derived
 * values, broadcasting against a naive reference (also on the threaded
 * paths), Where's gradient by finite differences, bad inputs, ONNX node data. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lightops_util.h"
#include "testutil.h"

static graft_tensor *tensor_u8(int rank, const int64_t *dims, const uint8_t *v)
{
    graft_tensor *t = NULL;
    if (graft_tensor_create(GRAFT_UINT8, rank, dims, &t, NULL))
        return NULL;
    if (v)
        memcpy(t->data, v, t->nbytes);
    return t;
}

/* Runs op on the inputs (opset 13 unless given) and returns the call; the
 * caller checks and finalises it. */
static graft_status run_op(lt_call *c, graft_graph **g, int opset, const char *op, int n_in,
                           graft_tensor **in)
{
    *g = lt_graph(opset);
    int32_t n = lt_node(*g, op, n_in, 0, 1);
    return lt_run(c, *g, n, n_in, in);
}

static void expect_u8(const graft_tensor *y, const uint8_t *want, int64_t n, const char *what)
{
    assert_int_equal(y->dtype, GRAFT_UINT8);
    assert_int_equal(graft_tensor_nelem(y), n);
    for (int64_t i = 0; i < n; i++)
        if (((const uint8_t *)y->data)[i] != want[i])
            fail_msg("%s[%lld] = %d, want %d", what, (long long)i, ((const uint8_t *)y->data)[i],
                     want[i]);
}

static void expect_i64(const graft_tensor *y, const int64_t *want, int64_t n, const char *what)
{
    assert_int_equal(y->dtype, GRAFT_INT64);
    assert_int_equal(graft_tensor_nelem(y), n);
    for (int64_t i = 0; i < n; i++)
        if (graft_tensor_i64(y)[i] != want[i])
            fail_msg("%s[%lld] = %lld, want %lld", what, (long long)i,
                     (long long)graft_tensor_i64(y)[i], (long long)want[i]);
}

/* a = [[1, 2, 3], [4, NaN, 6]] against b = [2, 2, 6] (broadcast over rows):
 *   Equal    [[0,1,0],[0,0,1]]   (NaN equals nothing)
 *   Greater  [[0,0,0],[1,0,0]]
 *   Less     [[1,0,1],[0,0,0]]
 *   GE       [[0,1,0],[1,0,1]]
 *   LE       [[1,1,1],[0,0,1]] */
static void test_compare_values(void **state)
{
    (void)state;
    static const char *ops[5] = {"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"};
    static const uint8_t want[5][6] = {{0, 1, 0, 0, 0, 1}, {0, 0, 0, 1, 0, 0},
                                       {1, 0, 1, 0, 0, 0}, {0, 1, 0, 1, 0, 1},
                                       {1, 1, 1, 0, 0, 1}};
    int64_t d23[2] = {2, 3}, d3[1] = {3};
    float af[6] = {1, 2, 3, 4, NAN, 6}, bf[3] = {2, 2, 6};
    /* the same without the NaN in int64: 5 > 2, 5 >= 2 differ from the float row */
    int64_t ai[6] = {1, 2, 3, 4, 5, 6}, bi[3] = {2, 2, 6};
    static const uint8_t want_i[5][6] = {{0, 1, 0, 0, 0, 1}, {0, 0, 0, 1, 1, 0},
                                         {1, 0, 1, 0, 0, 0}, {0, 1, 0, 1, 1, 1},
                                         {1, 1, 1, 0, 0, 1}};
    graft_tensor *ta = lt_tensor_f32(2, d23, af), *tb = lt_tensor_f32(1, d3, bf);
    graft_tensor *tai = lt_tensor_i64(2, d23, ai), *tbi = lt_tensor_i64(1, d3, bi);
    for (int k = 0; k < 5; k++) {
        graft_graph *g;
        lt_call c;
        graft_tensor *in[2] = {ta, tb};
        assert_int_equal(run_op(&c, &g, 16, ops[k], 2, in), GRAFT_OK);
        assert_int_equal(c.out[0]->rank, 2);
        expect_u8(c.out[0], want[k], 6, ops[k]);
        lt_call_fini(&c);
        graft_graph_destroy(g);
        in[0] = tai;
        in[1] = tbi;
        assert_int_equal(run_op(&c, &g, 16, ops[k], 2, in), GRAFT_OK);
        expect_u8(c.out[0], want_i[k], 6, ops[k]);
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    /* bool Equal: [1,0,1,0] == [1,1,0,0] -> [1,0,0,1] */
    int64_t d4[1] = {4};
    uint8_t x[4] = {1, 0, 1, 0}, z[4] = {1, 1, 0, 0}, we[4] = {1, 0, 0, 1};
    graft_tensor *bx = tensor_u8(1, d4, x), *bz = tensor_u8(1, d4, z);
    graft_tensor *in[2] = {bx, bz};
    graft_graph *g;
    lt_call c;
    assert_int_equal(run_op(&c, &g, 13, "Equal", 2, in), GRAFT_OK);
    expect_u8(c.out[0], we, 4, "bool Equal");
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(bx);
    graft_tensor_destroy(bz);
    graft_tensor_destroy(ta);
    graft_tensor_destroy(tb);
    graft_tensor_destroy(tai);
    graft_tensor_destroy(tbi);
}

/* Naive numpy broadcast offset of output multi-index idx (rank r) in shape (ra, a). */
static int64_t bidx(int r, const int64_t *idx, int ra, const int64_t *a)
{
    int64_t off = 0;
    for (int i = 0; i < ra; i++)
        off = off * a[i] + (a[i] == 1 ? 0 : idx[r - ra + i]);
    return off;
}

static void unravel(int r, const int64_t *dims, int64_t i, int64_t *idx)
{
    for (int d = r - 1; d >= 0; d--) {
        idx[d] = i % dims[d];
        i /= dims[d];
    }
}

static void check_compare_bcast(int ra, const int64_t *da, int rb, const int64_t *db)
{
    static const char *ops[5] = {"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"};
    graft_tensor *a = lt_tensor_rand(ra, da, 11, 0, 4), *b = lt_tensor_rand(rb, db, 12, 0, 4);
    /* small integers in float make Equal hit often */
    for (int64_t i = 0; i < graft_tensor_nelem(a); i++)
        graft_tensor_f32(a)[i] = floorf(graft_tensor_f32(a)[i]);
    for (int64_t i = 0; i < graft_tensor_nelem(b); i++)
        graft_tensor_f32(b)[i] = floorf(graft_tensor_f32(b)[i]);
    for (int k = 0; k < 5; k++) {
        graft_graph *g;
        lt_call c;
        graft_tensor *in[2] = {a, b};
        assert_int_equal(run_op(&c, &g, 16, ops[k], 2, in), GRAFT_OK);
        const graft_tensor *y = c.out[0];
        int64_t idx[GRAFT_MAX_RANK];
        for (int64_t i = 0; i < graft_tensor_nelem(y); i++) {
            unravel(y->rank, y->dims, i, idx);
            float x = graft_tensor_f32(a)[bidx(y->rank, idx, ra, da)];
            float z = graft_tensor_f32(b)[bidx(y->rank, idx, rb, db)];
            int w = k == 0 ? x == z : k == 1 ? x > z : k == 2 ? x < z : k == 3 ? x >= z : x <= z;
            if (((uint8_t *)y->data)[i] != w)
                fail_msg("%s elem %lld: %d, want %d", ops[k], (long long)i,
                         ((uint8_t *)y->data)[i], w);
        }
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    graft_tensor_destroy(a);
    graft_tensor_destroy(b);
}

static void test_compare_broadcast(void **state)
{
    (void)state;
    int64_t nchw[4] = {2, 3, 4, 5}, c11[3] = {3, 1, 1}, w[1] = {5}, col[2] = {4, 1},
            row[2] = {1, 5}, big[2] = {600, 513}, bigc[1] = {513}, bigr[2] = {600, 1};
    check_compare_bcast(4, nchw, 4, nchw);
    check_compare_bcast(4, nchw, 3, c11);
    check_compare_bcast(4, nchw, 1, w);
    check_compare_bcast(0, NULL, 4, nchw);
    check_compare_bcast(2, col, 2, row);
    check_compare_bcast(2, big, 2, big);  /* one long row, split across threads */
    check_compare_bcast(2, big, 1, bigc); /* rows across threads */
    check_compare_bcast(2, bigr, 2, big); /* broadcast a column */
}

/* And/Or/Xor truth tables: x = [[0,0],[1,1]] against z = [0,1] on each row;
 * Not flips [0,1,1,0]. */
static void test_bool_logic(void **state)
{
    (void)state;
    int64_t d22[2] = {2, 2}, d2[1] = {2}, d4[1] = {4};
    uint8_t x[4] = {0, 0, 1, 1}, z[2] = {0, 1};
    static const char *ops[3] = {"And", "Or", "Xor"};
    static const uint8_t want[3][4] = {{0, 0, 0, 1}, {0, 1, 1, 1}, {0, 1, 1, 0}};
    graft_tensor *tx = tensor_u8(2, d22, x), *tz = tensor_u8(1, d2, z);
    for (int k = 0; k < 3; k++) {
        graft_graph *g;
        lt_call c;
        graft_tensor *in[2] = {tx, tz};
        assert_int_equal(run_op(&c, &g, 7, ops[k], 2, in), GRAFT_OK);
        expect_u8(c.out[0], want[k], 4, ops[k]);
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    uint8_t nx[4] = {0, 1, 1, 0}, nw[4] = {1, 0, 0, 1};
    graft_tensor *tn = tensor_u8(1, d4, nx);
    graft_graph *g;
    lt_call c;
    assert_int_equal(run_op(&c, &g, 1, "Not", 1, &tn), GRAFT_OK);
    expect_u8(c.out[0], nw, 4, "Not");
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(tx);
    graft_tensor_destroy(tz);
    graft_tensor_destroy(tn);
}

/* cond [[1],[0]] (2x1), X [10, 20, 30] (3), Y scalar -1:
 *   row 0 takes X: [10, 20, 30]; row 1 takes Y: [-1, -1, -1]. */
static void test_where_values(void **state)
{
    (void)state;
    int64_t d21[2] = {2, 1}, d3[1] = {3};
    uint8_t cd[2] = {1, 0};
    float xd[3] = {10, 20, 30}, yd = -1;
    graft_tensor *tc = tensor_u8(2, d21, cd), *tx = lt_tensor_f32(1, d3, xd),
                 *ty = lt_tensor_f32(0, NULL, &yd);
    graft_tensor *in[3] = {tc, tx, ty};
    graft_graph *g;
    lt_call c;
    assert_int_equal(run_op(&c, &g, 16, "Where", 3, in), GRAFT_OK);
    assert_int_equal(c.out[0]->rank, 2);
    assert_int_equal(c.out[0]->dims[0], 2);
    assert_int_equal(c.out[0]->dims[1], 3);
    float want[6] = {10, 20, 30, -1, -1, -1};
    for (int i = 0; i < 6; i++)
        assert_float_equal(graft_tensor_f32(c.out[0])[i], want[i], 0);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* int64 shape arithmetic: where(shape == 0, 1, shape) for shape [0, 3] -> [1, 3] */
    int64_t d2[1] = {2}, sh[2] = {0, 3}, one = 1;
    uint8_t eq[2] = {1, 0};
    graft_tensor *te = tensor_u8(1, d2, eq), *t1 = lt_tensor_i64(0, NULL, &one),
                 *ts = lt_tensor_i64(1, d2, sh);
    graft_tensor *in2[3] = {te, t1, ts};
    assert_int_equal(run_op(&c, &g, 9, "Where", 3, in2), GRAFT_OK);
    int64_t wi[2] = {1, 3};
    expect_i64(c.out[0], wi, 2, "int64 Where");
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* bool X/Y: where([1,0], [0,0], [1,1]) = [0, 1] */
    uint8_t bx[2] = {0, 0}, by[2] = {1, 1}, bw[2] = {0, 1};
    graft_tensor *tbx = tensor_u8(1, d2, bx), *tby = tensor_u8(1, d2, by);
    graft_tensor *in3[3] = {te, tbx, tby};
    assert_int_equal(run_op(&c, &g, 16, "Where", 3, in3), GRAFT_OK);
    expect_u8(c.out[0], bw, 2, "bool Where");
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor *tbs[7] = {tc, tx, ty, te, t1, ts, tbx};
    for (int i = 0; i < 7; i++)
        graft_tensor_destroy(tbs[i]);
    graft_tensor_destroy(tby);
}

static void check_where_bcast(int rc, const int64_t *dc, int rx, const int64_t *dx, int ry,
                              const int64_t *dy)
{
    graft_tensor *cf = lt_tensor_rand(rc, dc, 21, 0, 1);
    graft_tensor *tc = tensor_u8(rc, dc, NULL);
    for (int64_t i = 0; i < graft_tensor_nelem(cf); i++)
        ((uint8_t *)tc->data)[i] = graft_tensor_f32(cf)[i] < 0.5f;
    graft_tensor *tx = lt_tensor_rand(rx, dx, 22, -1, 1), *ty = lt_tensor_rand(ry, dy, 23, -1, 1);
    graft_tensor *in[3] = {tc, tx, ty};
    graft_graph *g;
    lt_call c;
    assert_int_equal(run_op(&c, &g, 16, "Where", 3, in), GRAFT_OK);
    const graft_tensor *y = c.out[0];
    int64_t idx[GRAFT_MAX_RANK];
    for (int64_t i = 0; i < graft_tensor_nelem(y); i++) {
        unravel(y->rank, y->dims, i, idx);
        bool k = ((uint8_t *)tc->data)[bidx(y->rank, idx, rc, dc)];
        float w = k ? graft_tensor_f32(tx)[bidx(y->rank, idx, rx, dx)]
                    : graft_tensor_f32(ty)[bidx(y->rank, idx, ry, dy)];
        if (graft_tensor_f32(y)[i] != w)
            fail_msg("Where elem %lld: %g, want %g", (long long)i, graft_tensor_f32(y)[i], w);
    }
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(cf);
    graft_tensor_destroy(tc);
    graft_tensor_destroy(tx);
    graft_tensor_destroy(ty);
}

static void test_where_broadcast(void **state)
{
    (void)state;
    int64_t a[3] = {2, 3, 4}, c1[3] = {1, 3, 1}, r4[1] = {4}, m[2] = {3, 1}, big[2] = {700, 513},
            bigc[2] = {1, 513}, bigr[2] = {700, 1};
    check_where_bcast(3, a, 3, a, 3, a);
    check_where_bcast(3, c1, 1, r4, 0, NULL);
    check_where_bcast(1, r4, 3, a, 2, m);
    check_where_bcast(0, NULL, 3, a, 3, a);
    check_where_bcast(2, big, 2, big, 2, big);  /* one long row on threads */
    check_where_bcast(2, bigc, 2, bigr, 2, big); /* rows on threads */
}

/* dL/dX = sum over the repeated dims of cond * dY; dL/dY likewise with !cond. */
static void grad_where(int rc, const int64_t *dc, int rx, const int64_t *dx, int ry,
                       const int64_t *dy)
{
    graft_tensor *cf = lt_tensor_rand(rc, dc, 31, 0, 1);
    graft_tensor *tc = tensor_u8(rc, dc, NULL);
    for (int64_t i = 0; i < graft_tensor_nelem(cf); i++)
        ((uint8_t *)tc->data)[i] = graft_tensor_f32(cf)[i] < 0.5f;
    graft_tensor *tx = lt_tensor_rand(rx, dx, 32, -1, 1), *ty = lt_tensor_rand(ry, dy, 33, -1, 1);
    graft_tensor *in[3] = {tc, tx, ty};
    graft_graph *g = lt_graph(16);
    int32_t n = lt_node(g, "Where", 3, 0, 1);
    double e = lt_gradcheck(g, n, 3, in, 6, 1e-2, 1e-3, false);
    if (!(e <= 1e-3))
        fail_msg("Where gradient error %g", e);
    graft_graph_destroy(g);
    graft_tensor_destroy(cf);
    graft_tensor_destroy(tc);
    graft_tensor_destroy(tx);
    graft_tensor_destroy(ty);
}

static void test_where_gradient(void **state)
{
    (void)state;
    int64_t a[3] = {2, 3, 4}, c1[3] = {1, 3, 1}, r4[1] = {4}, m[2] = {3, 1};
    grad_where(3, a, 3, a, 3, a);
    grad_where(3, c1, 3, a, 1, r4);
    grad_where(3, a, 2, m, 0, NULL);
    grad_where(1, r4, 3, c1, 3, a);
    /* hand check: cond [1, 0], X scalar, Y [2]: dX = dy0, dY = [0, dy1] */
    int64_t d2[1] = {2};
    uint8_t cd[2] = {1, 0};
    float x = 5, yv[2] = {7, 8}, gy[2] = {0.25f, -2};
    graft_tensor *tc = tensor_u8(1, d2, cd), *tx = lt_tensor_f32(0, NULL, &x),
                 *ty = lt_tensor_f32(1, d2, yv);
    graft_tensor *in[3] = {tc, tx, ty};
    graft_graph *g = lt_graph(16);
    int32_t n = lt_node(g, "Where", 3, 0, 1);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 3, in), GRAFT_OK);
    graft_tensor *dyt = lt_tensor_f32(1, d2, gy), *dxt = lt_tensor_f32(0, NULL, NULL),
                 *dzt = lt_tensor_f32(1, d2, NULL);
    graft_tensor_f32(dxt)[0] = 1; /* accumulates onto what is there */
    memset(dzt->data, 0, dzt->nbytes);
    graft_tensor *d_out[1] = {dyt}, *d_in[3] = {NULL, dxt, dzt};
    graft_op_call oc;
    memset(&oc, 0, sizeof oc);
    oc.graph = g;
    oc.node = &g->nodes[n];
    oc.n_in = 3;
    oc.n_out = 1;
    oc.in = c.in;
    oc.out = c.out;
    oc.d_out = d_out;
    oc.d_in = d_in;
    oc.ctx = &c.ctx;
    oc.err = &c.err;
    assert_int_equal(c.def->backward(&oc), GRAFT_OK);
    assert_float_equal(graft_tensor_f32(dxt)[0], 1.25f, 0);
    assert_float_equal(graft_tensor_f32(dzt)[0], 0, 0);
    assert_float_equal(graft_tensor_f32(dzt)[1], -2, 0);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor *all[6] = {tc, tx, ty, dyt, dxt, dzt};
    for (int i = 0; i < 6; i++)
        graft_tensor_destroy(all[i]);
}

/* x = [-1.5, NaN, +inf, -inf, 0]: IsNaN [0,1,0,0,0]; IsInf [0,0,1,1,0];
 * detect_negative=0 -> [0,0,1,0,0]; detect_positive=0 -> [0,0,0,1,0]. */
static void test_isnan_isinf(void **state)
{
    (void)state;
    int64_t d5[1] = {5};
    float xv[5] = {-1.5f, NAN, INFINITY, -INFINITY, 0};
    graft_tensor *x = lt_tensor_f32(1, d5, xv);
    static const uint8_t w_nan[5] = {0, 1, 0, 0, 0}, w_inf[5] = {0, 0, 1, 1, 0},
                         w_pos[5] = {0, 0, 1, 0, 0}, w_neg[5] = {0, 0, 0, 1, 0};
    graft_graph *g;
    lt_call c;
    assert_int_equal(run_op(&c, &g, 13, "IsNaN", 1, &x), GRAFT_OK);
    expect_u8(c.out[0], w_nan, 5, "IsNaN");
    lt_call_fini(&c);
    graft_graph_destroy(g);
    const uint8_t *wants[3] = {w_inf, w_pos, w_neg};
    for (int k = 0; k < 3; k++) {
        g = lt_graph(10);
        int32_t n = lt_node(g, "IsInf", 1, 0, 1);
        if (k == 1)
            graft_node_set_int(g, n, "detect_negative", 0, NULL);
        if (k == 2)
            graft_node_set_int(g, n, "detect_positive", 0, NULL);
        assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
        expect_u8(c.out[0], wants[k], 5, "IsInf");
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    /* a large input takes the threaded path: every 7th element NaN */
    int64_t dl[1] = {300001};
    graft_tensor *xl = lt_tensor_rand(1, dl, 5, -1, 1);
    for (int64_t i = 0; i < dl[0]; i += 7)
        graft_tensor_f32(xl)[i] = NAN;
    assert_int_equal(run_op(&c, &g, 13, "IsNaN", 1, &xl), GRAFT_OK);
    for (int64_t i = 0; i < dl[0]; i++)
        if (((uint8_t *)c.out[0]->data)[i] != (i % 7 == 0))
            fail_msg("IsNaN[%lld] wrong", (long long)i);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(xl);
    graft_tensor_destroy(x);
}

/* Integer Mod on x = [-7, 7, -7, 7, 5, INT64_MIN, 9] by z = [3, 3, -3, -3, 0, -1, 4]:
 *   fmod=0 (sign of divisor): -7 = 3*-3 + 2 -> 2; 7 -> 1; -7 = -3*2 - 1 -> -1;
 *     7 = -3*-3 - 2 -> -2; by 0 -> 0; INT64_MIN by -1 -> 0; 9 -> 1
 *   fmod=1 (sign of dividend): -1, 1, -1, 1, 0, 0, 1 */
static void test_mod_values(void **state)
{
    (void)state;
    int64_t d7[1] = {7};
    int64_t x[7] = {-7, 7, -7, 7, 5, INT64_MIN, 9}, z[7] = {3, 3, -3, -3, 0, -1, 4};
    int64_t w0[7] = {2, 1, -1, -2, 0, 0, 1}, w1[7] = {-1, 1, -1, 1, 0, 0, 1};
    graft_tensor *tx = lt_tensor_i64(1, d7, x), *tz = lt_tensor_i64(1, d7, z);
    for (int f = 0; f < 2; f++) {
        graft_graph *g = lt_graph(13);
        int32_t n = lt_node(g, "Mod", 2, 0, 1);
        graft_node_set_int(g, n, "fmod", f, NULL);
        graft_tensor *in[2] = {tx, tz};
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 2, in), GRAFT_OK);
        expect_i64(c.out[0], f ? w1 : w0, 7, f ? "fmod=1" : "fmod=0");
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    /* float fmod: fmod(5.5, 2) = 1.5, fmod(-5.5, 2) = -1.5, fmod(5.5, -2) = 1.5 */
    int64_t d3[1] = {3};
    float fx[3] = {5.5f, -5.5f, 5.5f}, fz[3] = {2, 2, -2}, fw[3] = {1.5f, -1.5f, 1.5f};
    graft_tensor *tfx = lt_tensor_f32(1, d3, fx), *tfz = lt_tensor_f32(1, d3, fz);
    graft_tensor *in[2] = {tfx, tfz};
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Mod", 2, 0, 1);
    graft_node_set_int(g, n, "fmod", 1, NULL);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 2, in), GRAFT_OK);
    for (int i = 0; i < 3; i++)
        assert_float_equal(graft_tensor_f32(c.out[0])[i], fw[i], 0);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* float without fmod=1 is refused */
    g = lt_graph(13);
    n = lt_node(g, "Mod", 2, 0, 1);
    assert_int_equal(lt_run(&c, g, n, 2, in), GRAFT_ERR_INVALID);
    assert_non_null(strstr(c.err.msg, "fmod"));
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* a declared uint64 divides unsigned: 2^64 - 1 = 10 * 1844674407370955161 + 5 */
    int64_t d1[1] = {1}, big = -1, ten = 10, five = 5;
    graft_tensor *tb = lt_tensor_i64(1, d1, &big), *tt = lt_tensor_i64(1, d1, &ten);
    graft_tensor *inu[2] = {tb, tt};
    g = lt_graph(13);
    n = lt_node(g, "Mod", 2, 0, 1);
    g->values[g->nodes[n].inputs[0]].dtype = GRAFT_UINT64;
    g->values[g->nodes[n].inputs[1]].dtype = GRAFT_UINT64;
    assert_int_equal(lt_run(&c, g, n, 2, inu), GRAFT_OK);
    expect_i64(c.out[0], &five, 1, "uint64 Mod");
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor *all[6] = {tx, tz, tfx, tfz, tb, tt};
    for (int i = 0; i < 6; i++)
        graft_tensor_destroy(all[i]);
}

/* Float Mod: dx = dy, dz = -trunc(x / z) dy. Inputs are built as
 * x = z (q + f) with the fraction f in [0.2, 0.8], so that no finite-difference
 * step crosses a jump of fmod. */
static void grad_mod(int rx, const int64_t *dx, int rz, const int64_t *dz)
{
    graft_tensor *tz = lt_tensor_rand(rz, dz, 41, 0.7f, 1.3f);
    graft_tensor *tf = lt_tensor_rand(rx, dx, 42, 0.2f, 0.8f);
    graft_tensor *tx = lt_tensor_f32(rx, dx, NULL);
    for (int64_t i = 0; i < graft_tensor_nelem(tz); i += 2)
        graft_tensor_f32(tz)[i] = -graft_tensor_f32(tz)[i];
    /* the output shape is x's in every case below */
    int64_t idx[GRAFT_MAX_RANK];
    for (int64_t i = 0; i < graft_tensor_nelem(tx); i++) {
        unravel(rx, dx, i, idx);
        float z = graft_tensor_f32(tz)[bidx(rx, idx, rz, dz)];
        float q = (float)(i % 5) - 2.0f, f = graft_tensor_f32(tf)[i];
        graft_tensor_f32(tx)[i] = z * (q + (q < 0 ? -f : f));
    }
    graft_tensor *in[2] = {tx, tz};
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Mod", 2, 0, 1);
    graft_node_set_int(g, n, "fmod", 1, NULL);
    double e = lt_gradcheck(g, n, 2, in, 3, 1e-3, 2e-3, false);
    if (!(e <= 2e-3))
        fail_msg("Mod gradient error %g", e);
    graft_graph_destroy(g);
    graft_tensor_destroy(tx);
    graft_tensor_destroy(tz);
    graft_tensor_destroy(tf);
}

static void test_mod_gradient(void **state)
{
    (void)state;
    int64_t a[2] = {3, 4}, col[2] = {3, 1}, r4[1] = {4};
    grad_mod(2, a, 2, a);
    grad_mod(2, a, 2, col);
    grad_mod(2, a, 1, r4);
    grad_mod(2, a, 0, NULL);
}

static void shift_case(graft_dtype declared, const char *dir, int64_t x, int64_t z, int64_t want)
{
    int64_t d1[1] = {1};
    graft_tensor *tx = lt_tensor_i64(1, d1, &x), *tz = lt_tensor_i64(1, d1, &z);
    graft_tensor *in[2] = {tx, tz};
    graft_graph *g = lt_graph(11);
    int32_t n = lt_node(g, "BitShift", 2, 0, 1);
    graft_node_set_string(g, n, "direction", dir, NULL);
    for (int i = 0; i < 2; i++)
        g->values[g->nodes[n].inputs[i]].dtype = declared;
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 2, in), GRAFT_OK);
    if (graft_tensor_i64(c.out[0])[0] != want)
        fail_msg("%s %s: %llx, want %llx", graft_dtype_name(declared), dir,
                 (unsigned long long)graft_tensor_i64(c.out[0])[0], (unsigned long long)want);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(tx);
    graft_tensor_destroy(tz);
}

static void test_bitshift_values(void **state)
{
    (void)state;
    /* uint8 200 << 1 = 400 -> low 8 bits 144; 200 >> 3 = 25 */
    shift_case(GRAFT_UINT8, "LEFT", 200, 1, 144);
    shift_case(GRAFT_UINT8, "RIGHT", 200, 3, 25);
    /* uint16 0x8001 << 1 = 0x10002 -> 0x0002; shifting by the width gives 0 */
    shift_case(GRAFT_UINT16, "LEFT", 0x8001, 1, 2);
    shift_case(GRAFT_UINT16, "LEFT", 1, 16, 0);
    /* uint32 0xffffffff << 4 = 0xfffffff0 (kept in 32 bits) */
    shift_case(GRAFT_UINT32, "LEFT", 0xffffffffLL, 4, 0xfffffff0LL);
    /* uint64 above INT64_MAX, as its bit pattern: 0x8000000000000001 >> 1 is
     * 0x4000000000000000 (logical, not arithmetic), << 1 is 2 */
    shift_case(GRAFT_UINT64, "RIGHT", INT64_MIN + 1, 1, 0x4000000000000000LL);
    shift_case(GRAFT_UINT64, "LEFT", INT64_MIN + 1, 1, 2);
    shift_case(GRAFT_UINT64, "RIGHT", 12345, 64, 0);
    /* undeclared types shift all 64 bits */
    shift_case(GRAFT_DTYPE_UNDEFINED, "LEFT", 3, 62, (int64_t)0xc000000000000000ULL);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    int64_t d3[1] = {3}, d4[1] = {4}, d23[2] = {2, 3};
    graft_tensor *f3 = lt_tensor_rand(1, d3, 1, 0, 1), *f4 = lt_tensor_rand(1, d4, 2, 0, 1);
    graft_tensor *i3 = lt_tensor_i64(1, d3, (int64_t[]){1, 2, 3});
    graft_tensor *b3 = tensor_u8(1, d3, (uint8_t[]){1, 0, 1});
    graft_tensor *f23 = lt_tensor_rand(2, d23, 3, 0, 1);
    graft_graph *g;
    lt_call c;
    struct {
        const char *op;
        int n;
        graft_tensor *in[3];
        graft_status st;
    } cases[] = {
        {"Equal", 2, {f3, f4}, GRAFT_ERR_SHAPE},
        {"Less", 2, {f3, i3}, GRAFT_ERR_INVALID},
        {"And", 2, {f3, f3}, GRAFT_ERR_INVALID},
        {"Not", 1, {f3}, GRAFT_ERR_INVALID},
        {"IsNaN", 1, {i3}, GRAFT_ERR_INVALID},
        {"Where", 3, {f3, f3, f3}, GRAFT_ERR_INVALID},
        {"Where", 3, {b3, f3, i3}, GRAFT_ERR_INVALID},
        {"Where", 3, {b3, f23, f4}, GRAFT_ERR_SHAPE},
        {"Mod", 2, {b3, b3}, GRAFT_ERR_INVALID},
        {"Equal", 1, {f3}, GRAFT_ERR_INVALID},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        graft_status st = run_op(&c, &g, 13, cases[k].op, cases[k].n, cases[k].in);
        if (st != cases[k].st)
            fail_msg("case %zu (%s): status %d, want %d (%s)", k, cases[k].op, st, cases[k].st,
                     c.err.msg);
        assert_non_null(strstr(c.err.msg, "node"));
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    /* BitShift: no or a bad direction, a signed declared type, float data */
    graft_tensor *in[2] = {i3, i3};
    const char *dirs[2] = {NULL, "UP"};
    for (int k = 0; k < 2; k++) {
        g = lt_graph(11);
        int32_t n = lt_node(g, "BitShift", 2, 0, 1);
        if (dirs[k])
            graft_node_set_string(g, n, "direction", dirs[k], NULL);
        assert_int_equal(lt_run(&c, g, n, 2, in), GRAFT_ERR_INVALID);
        assert_non_null(strstr(c.err.msg, "direction"));
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    g = lt_graph(11);
    int32_t n = lt_node(g, "BitShift", 2, 0, 1);
    graft_node_set_string(g, n, "direction", "LEFT", NULL);
    g->values[g->nodes[n].inputs[0]].dtype = GRAFT_INT32;
    assert_int_equal(lt_run(&c, g, n, 2, in), GRAFT_ERR_INVALID);
    lt_call_fini(&c);
    g->values[g->nodes[n].inputs[0]].dtype = GRAFT_DTYPE_UNDEFINED;
    graft_tensor *inf[2] = {f3, f3};
    assert_int_equal(lt_run(&c, g, n, 2, inf), GRAFT_ERR_INVALID);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* Mod with fmod out of {0, 1} */
    g = lt_graph(13);
    n = lt_node(g, "Mod", 2, 0, 1);
    graft_node_set_int(g, n, "fmod", 2, NULL);
    graft_tensor *ii[2] = {i3, i3};
    assert_int_equal(lt_run(&c, g, n, 2, ii), GRAFT_ERR_INVALID);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* opset-1 broadcast with an axis is not numpy broadcasting */
    g = lt_graph(1);
    n = lt_node(g, "Equal", 2, 0, 1);
    graft_node_set_int(g, n, "broadcast", 1, NULL);
    graft_node_set_int(g, n, "axis", 0, NULL);
    assert_int_equal(lt_run(&c, g, n, 2, ii), GRAFT_ERR_UNSUPPORTED);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor *all[5] = {f3, f4, i3, b3, f23};
    for (int i = 0; i < 5; i++)
        graft_tensor_destroy(all[i]);
}

static void test_onnx_node_data(void **state)
{
    (void)state;
    static const char *const ops[] = {"Equal", "Greater", "Less", "GreaterOrEqual",
                                      "LessOrEqual", "And", "Or", "Xor", "Not", "Where",
                                      "IsNaN", "IsInf", "Mod", "BitShift", NULL};
    int pass, fail, skip;
    if (lt_onnx_suite(ops, &pass, &fail, &skip) < 0)
        skip();
    assert_int_equal(fail, 0);
    assert_true(pass >= 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compare_values),  cmocka_unit_test(test_compare_broadcast),
        cmocka_unit_test(test_bool_logic),      cmocka_unit_test(test_where_values),
        cmocka_unit_test(test_where_broadcast), cmocka_unit_test(test_where_gradient),
        cmocka_unit_test(test_isnan_isinf),     cmocka_unit_test(test_mod_values),
        cmocka_unit_test(test_mod_gradient),
        cmocka_unit_test(test_bitshift_values), cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_onnx_node_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
