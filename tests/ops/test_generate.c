/* ConstantOfShape, Range, Size, EyeLike, OneHot: hand-derived values, data
 * that must be known when the plan is built, hostile sizes, the plan folding
 * an exporter's shape chain through them, ONNX node data. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lightops_util.h"
#include "testutil.h"

#include "exec/plan_internal.h"

/* Gives node n a tensor attribute (the graph frees it). */
static void set_tensor_attr(graft_graph *g, int32_t n, const char *name, graft_tensor *t)
{
    assert_int_equal(graft_node_set_int(g, n, name, 0, NULL), GRAFT_OK);
    graft_attr *a = (graft_attr *)graft_node_attr(&g->nodes[n], name);
    a->type = GRAFT_ATTR_TENSOR;
    a->t = t;
}

static graft_tensor *scalar_i64(int64_t v)
{
    return lt_tensor_i64(0, NULL, &v);
}

static graft_tensor *scalar_f32(float v)
{
    return lt_tensor_f32(0, NULL, &v);
}

/* ---- ConstantOfShape ---- */

static void test_constant_of_shape(void **state)
{
    (void)state;
    lt_call c;
    /* no value: float zeros of shape [2, 3] */
    int64_t d1[1] = {2}, sh23[2] = {2, 3};
    graft_tensor *s23 = lt_tensor_i64(1, d1, sh23);
    graft_graph *g = lt_graph(9);
    int32_t n = lt_node(g, "ConstantOfShape", 1, 0, 1);
    assert_int_equal(lt_run(&c, g, n, 1, &s23), GRAFT_OK);
    assert_int_equal(c.out[0]->dtype, GRAFT_FLOAT);
    assert_int_equal(c.out[0]->rank, 2);
    assert_int_equal(c.out[0]->dims[1], 3);
    for (int i = 0; i < 6; i++)
        assert_float_equal(graft_tensor_f32(c.out[0])[i], 0, 0);
    lt_call_fini(&c);
    /* hidden shape data: the output shape is unknowable */
    assert_int_equal(lt_prepare(&c, g, n, 1, &s23, 1), GRAFT_ERR_UNSUPPORTED);
    assert_non_null(strstr(c.err.msg, "not known when the plan is built"));
    lt_call_fini(&c);
    graft_graph_destroy(g);

    /* int64 value 7 on [3]; bool value true on [2, 3]; float -2.5 on [] (a scalar) */
    int64_t three = 3, d0[1] = {0};
    graft_tensor *s3 = lt_tensor_i64(1, (int64_t[]){1}, &three);
    graft_tensor *s_empty = lt_tensor_i64(1, d0, NULL);
    graft_tensor *v[3] = {lt_tensor_i64(1, (int64_t[]){1}, (int64_t[]){7}), NULL,
                          lt_tensor_f32(1, (int64_t[]){1}, (float[]){-2.5f})};
    graft_tensor_create(GRAFT_UINT8, 1, (int64_t[]){1}, &v[1], NULL);
    ((uint8_t *)v[1]->data)[0] = 1;
    graft_tensor *shapes[3] = {s3, s23, s_empty};
    for (int k = 0; k < 3; k++) {
        g = lt_graph(20);
        n = lt_node(g, "ConstantOfShape", 1, 0, 1);
        set_tensor_attr(g, n, "value", v[k]);
        assert_int_equal(lt_run(&c, g, n, 1, &shapes[k]), GRAFT_OK);
        const graft_tensor *y = c.out[0];
        if (k == 0) {
            assert_int_equal(y->dtype, GRAFT_INT64);
            assert_int_equal(y->rank, 1);
            for (int i = 0; i < 3; i++)
                assert_int_equal(graft_tensor_i64(y)[i], 7);
        } else if (k == 1) {
            assert_true(y->dtype == GRAFT_UINT8 || y->dtype == GRAFT_BOOL);
            for (int i = 0; i < 6; i++)
                assert_int_equal(((uint8_t *)y->data)[i], 1);
        } else {
            assert_int_equal(y->dtype, GRAFT_FLOAT);
            assert_int_equal(y->rank, 0);
            assert_float_equal(graft_tensor_f32(y)[0], -2.5f, 0);
        }
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }

    /* a zero dim gives an empty tensor */
    int64_t zero = 0;
    graft_tensor *s0 = lt_tensor_i64(1, (int64_t[]){1}, &zero);
    g = lt_graph(9);
    n = lt_node(g, "ConstantOfShape", 1, 0, 1);
    assert_int_equal(lt_run(&c, g, n, 1, &s0), GRAFT_OK);
    assert_int_equal(c.out[0]->rank, 1);
    assert_int_equal(graft_tensor_nelem(c.out[0]), 0);
    lt_call_fini(&c);

    /* hostile shapes: negative, too many elements, rank 9, not int64 */
    int64_t neg[2] = {2, -3}, huge[2] = {(int64_t)1 << 31, (int64_t)1 << 31},
            over[2] = {(int64_t)1 << 62, 8};
    int64_t r9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    graft_tensor *bad[5] = {lt_tensor_i64(1, d1, neg), lt_tensor_i64(1, d1, huge),
                            lt_tensor_i64(1, d1, over), lt_tensor_i64(1, (int64_t[]){9}, r9),
                            lt_tensor_f32(1, d1, (float[]){2, 3})};
    graft_status want[5] = {GRAFT_ERR_INVALID, GRAFT_ERR_INVALID, GRAFT_ERR_INVALID,
                            GRAFT_ERR_UNSUPPORTED, GRAFT_ERR_INVALID};
    for (int k = 0; k < 5; k++) {
        assert_int_equal(lt_run(&c, g, n, 1, &bad[k]), want[k]);
        assert_non_null(strstr(c.err.msg, "ConstantOfShape node"));
        lt_call_fini(&c);
        graft_tensor_destroy(bad[k]);
    }
    graft_graph_destroy(g);

    /* value attributes: two elements, not a tensor */
    g = lt_graph(9);
    n = lt_node(g, "ConstantOfShape", 1, 0, 1);
    set_tensor_attr(g, n, "value", lt_tensor_f32(1, d1, (float[]){1, 2}));
    assert_int_equal(lt_run(&c, g, n, 1, &s23), GRAFT_ERR_INVALID);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    g = lt_graph(9);
    n = lt_node(g, "ConstantOfShape", 1, 0, 1);
    graft_node_set_int(g, n, "value", 1, NULL);
    assert_int_equal(lt_run(&c, g, n, 1, &s23), GRAFT_ERR_INVALID);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(s23);
    graft_tensor_destroy(s3);
    graft_tensor_destroy(s_empty);
    graft_tensor_destroy(s0);
}

/* ---- Range ---- */

static void expect_range_i64(int64_t s, int64_t l, int64_t d, int n, const int64_t *want)
{
    graft_tensor *in[3] = {scalar_i64(s), scalar_i64(l), scalar_i64(d)};
    graft_graph *g = lt_graph(11);
    int32_t node = lt_node(g, "Range", 3, 0, 1);
    lt_call c;
    assert_int_equal(lt_run(&c, g, node, 3, in), GRAFT_OK);
    assert_int_equal(c.out[0]->dtype, GRAFT_INT64);
    assert_int_equal(c.out[0]->rank, 1);
    assert_int_equal(c.out[0]->dims[0], n);
    for (int i = 0; i < n; i++)
        assert_int_equal(graft_tensor_i64(c.out[0])[i], want[i]);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    for (int i = 0; i < 3; i++)
        graft_tensor_destroy(in[i]);
}

static void expect_range_f32(float s, float l, float d, int n, const float *want)
{
    graft_tensor *in[3] = {scalar_f32(s), scalar_f32(l), scalar_f32(d)};
    graft_graph *g = lt_graph(11);
    int32_t node = lt_node(g, "Range", 3, 0, 1);
    lt_call c;
    assert_int_equal(lt_run(&c, g, node, 3, in), GRAFT_OK);
    assert_int_equal(c.out[0]->dtype, GRAFT_FLOAT);
    assert_int_equal(c.out[0]->dims[0], n);
    for (int i = 0; i < n; i++)
        assert_float_equal(graft_tensor_f32(c.out[0])[i], want[i], 1e-6);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    for (int i = 0; i < 3; i++)
        graft_tensor_destroy(in[i]);
}

static void test_range(void **state)
{
    (void)state;
    /* 10, 7 (4 < 6 stops); ceil((6 - 10) / -3) = 2 */
    expect_range_i64(10, 6, -3, 2, (int64_t[]){10, 7});
    /* ceil(5 / 5) = 1: the limit is excluded */
    expect_range_i64(0, 5, 5, 1, (int64_t[]){0});
    /* wrong direction: empty */
    expect_range_i64(5, 1, 1, 0, NULL);
    expect_range_i64(1, 5, -1, 0, NULL);
    /* limit - start overflows int64: counted in uint64, 2^64 - 1 over 2^63 - 1
     * is 2.000..., ceil 3: INT64_MIN, -1, INT64_MAX - 1 */
    expect_range_i64(INT64_MIN, INT64_MAX, INT64_MAX, 3,
                     (int64_t[]){INT64_MIN, -1, INT64_MAX - 1});
    /* 1, 3 (5 excluded) */
    expect_range_f32(1, 5, 2, 2, (float[]){1, 3});
    /* ceil(1 / 0.3) = 4: 0, 0.3, 0.6, 0.9 */
    expect_range_f32(0, 1, 0.3f, 4, (float[]){0, 0.3f, 0.6f, 0.9f});
    expect_range_f32(2, -1, -1.5f, 2, (float[]){2, 0.5f});

    graft_graph *g = lt_graph(11);
    int32_t node = lt_node(g, "Range", 3, 0, 1);
    lt_call c;
    struct {
        graft_tensor *in[3];
        graft_status st;
        unsigned hide;
    } cases[] = {
        {{scalar_i64(0), scalar_i64(5), scalar_i64(0)}, GRAFT_ERR_INVALID, 0},
        {{scalar_f32(0), scalar_f32(5), scalar_f32(0)}, GRAFT_ERR_INVALID, 0},
        {{scalar_f32(0), scalar_f32(INFINITY), scalar_f32(1)}, GRAFT_ERR_INVALID, 0},
        {{scalar_f32(0), scalar_f32(NAN), scalar_f32(1)}, GRAFT_ERR_INVALID, 0},
        {{scalar_i64(0), scalar_i64(INT64_MAX), scalar_i64(1)}, GRAFT_ERR_INVALID, 0},
        {{scalar_f32(0), scalar_f32(1e20f), scalar_f32(1e-3f)}, GRAFT_ERR_INVALID, 0},
        {{scalar_i64(0), scalar_f32(5), scalar_i64(1)}, GRAFT_ERR_INVALID, 0},
        {{scalar_i64(0), lt_tensor_i64(1, (int64_t[]){2}, (int64_t[]){1, 2}), scalar_i64(1)},
         GRAFT_ERR_INVALID, 0},
        {{scalar_i64(0), scalar_i64(5), scalar_i64(1)}, GRAFT_ERR_UNSUPPORTED, 2},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        graft_status st = lt_prepare(&c, g, node, 3, cases[k].in, cases[k].hide);
        if (st != cases[k].st)
            fail_msg("Range case %zu: status %d, want %d (%s)", k, st, cases[k].st, c.err.msg);
        assert_non_null(strstr(c.err.msg, "Range node"));
        lt_call_fini(&c);
        for (int i = 0; i < 3; i++)
            graft_tensor_destroy(cases[k].in[i]);
    }
    graft_graph_destroy(g);
}

/* ---- Size ---- */

static void test_size(void **state)
{
    (void)state;
    assert_true(graft__op_table[GRAFT_OP_size]->flags & GRAFT_OP_SHAPE_ONLY);
    int64_t d[3] = {3, 4, 5};
    graft_tensor *x = lt_tensor_rand(3, d, 1, 0, 1);
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "Size", 1, 0, 1);
    lt_call c;
    /* the data is never needed: 3 * 4 * 5 = 60 */
    assert_int_equal(lt_prepare(&c, g, n, 1, &x, 1), GRAFT_OK);
    assert_int_equal(lt_forward(&c), GRAFT_OK);
    assert_int_equal(c.out[0]->dtype, GRAFT_INT64);
    assert_int_equal(c.out[0]->rank, 0);
    assert_int_equal(graft_tensor_i64(c.out[0])[0], 60);
    lt_call_fini(&c);
    graft_tensor *s = scalar_f32(2);
    assert_int_equal(lt_run(&c, g, n, 1, &s), GRAFT_OK);
    assert_int_equal(graft_tensor_i64(c.out[0])[0], 1);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);
    graft_tensor_destroy(s);
}

/* ---- EyeLike ---- */

static void test_eyelike(void **state)
{
    (void)state;
    lt_call c;
    /* [3, 4], k = 1: ones at (0,1), (1,2), (2,3) */
    int64_t d34[2] = {3, 4};
    graft_tensor *x = lt_tensor_i64(2, d34, NULL);
    graft_graph *g = lt_graph(9);
    int32_t n = lt_node(g, "EyeLike", 1, 0, 1);
    graft_node_set_int(g, n, "k", 1, NULL);
    assert_int_equal(lt_prepare(&c, g, n, 1, &x, 1), GRAFT_OK);
    assert_int_equal(lt_forward(&c), GRAFT_OK);
    int64_t w1[12] = {0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    assert_int_equal(c.out[0]->dtype, GRAFT_INT64);
    for (int i = 0; i < 12; i++)
        assert_int_equal(graft_tensor_i64(c.out[0])[i], w1[i]);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* k = -2 as float: ones at (2,0) only */
    g = lt_graph(9);
    n = lt_node(g, "EyeLike", 1, 0, 1);
    graft_node_set_int(g, n, "k", -2, NULL);
    graft_node_set_int(g, n, "dtype", GRAFT_FLOAT, NULL);
    assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
    assert_int_equal(c.out[0]->dtype, GRAFT_FLOAT);
    for (int i = 0; i < 12; i++)
        assert_float_equal(graft_tensor_f32(c.out[0])[i], i == 8 ? 1 : 0, 0);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* k far off either side: all zeros, no out-of-bounds write */
    int64_t ks[2] = {INT64_MAX, INT64_MIN};
    for (int k = 0; k < 2; k++) {
        g = lt_graph(9);
        n = lt_node(g, "EyeLike", 1, 0, 1);
        graft_node_set_int(g, n, "k", ks[k], NULL);
        graft_node_set_int(g, n, "dtype", GRAFT_BOOL, NULL);
        assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
        for (int i = 0; i < 12; i++)
            assert_int_equal(((uint8_t *)c.out[0]->data)[i], 0);
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    /* 1-D input; string dtype */
    graft_tensor *x1 = lt_tensor_i64(1, d34, NULL);
    g = lt_graph(9);
    n = lt_node(g, "EyeLike", 1, 0, 1);
    assert_int_equal(lt_run(&c, g, n, 1, &x1), GRAFT_ERR_INVALID);
    lt_call_fini(&c);
    graft_node_set_int(g, n, "dtype", GRAFT_STRING, NULL);
    assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_ERR_UNSUPPORTED);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);
    graft_tensor_destroy(x1);
}

/* ---- OneHot ---- */

static void test_onehot(void **state)
{
    (void)state;
    lt_call c;
    /* indices [1, -1, 5, 3], depth 4, values [0, 9], axis -1:
     * 1 -> [0,9,0,0]; -1 + 4 = 3 -> [0,0,0,9]; 5 is out of range -> all off; 3 -> [0,0,0,9] */
    int64_t d4[1] = {4}, d2[1] = {2};
    graft_tensor *ind = lt_tensor_i64(1, d4, (int64_t[]){1, -1, 5, 3});
    graft_tensor *depth = scalar_i64(4), *vals = lt_tensor_f32(1, d2, (float[]){0, 9});
    graft_tensor *in[3] = {ind, depth, vals};
    graft_graph *g = lt_graph(11);
    int32_t n = lt_node(g, "OneHot", 3, 0, 1);
    assert_int_equal(lt_run(&c, g, n, 3, in), GRAFT_OK);
    float w[16] = {0, 9, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 9};
    assert_int_equal(c.out[0]->rank, 2);
    assert_int_equal(c.out[0]->dims[0], 4);
    assert_int_equal(c.out[0]->dims[1], 4);
    for (int i = 0; i < 16; i++)
        assert_float_equal(graft_tensor_f32(c.out[0])[i], w[i], 0);
    lt_call_fini(&c);
    /* indices hidden is fine (runtime data); depth hidden is not */
    assert_int_equal(lt_prepare(&c, g, n, 3, in, 1), GRAFT_OK);
    lt_call_fini(&c);
    assert_int_equal(lt_prepare(&c, g, n, 3, in, 2), GRAFT_ERR_UNSUPPORTED);
    assert_non_null(strstr(c.err.msg, "depth"));
    lt_call_fini(&c);
    graft_graph_destroy(g);

    /* float indices [[1.7, 0]] truncate to 1 and 0; depth 3.0; int64 values [5, 7];
     * axis 0 puts depth first: y[d, 0, j] = 7 where d == idx[j], giving
     * [[[5, 7]], [[7, 5]], [[5, 5]]] */
    int64_t d12[2] = {1, 2};
    graft_tensor *indf = lt_tensor_f32(2, d12, (float[]){1.7f, 0});
    graft_tensor *depf = scalar_f32(3), *vali = lt_tensor_i64(1, d2, (int64_t[]){5, 7});
    graft_tensor *in2[3] = {indf, depf, vali};
    g = lt_graph(11);
    n = lt_node(g, "OneHot", 3, 0, 1);
    graft_node_set_int(g, n, "axis", 0, NULL);
    assert_int_equal(lt_run(&c, g, n, 3, in2), GRAFT_OK);
    assert_int_equal(c.out[0]->rank, 3);
    assert_int_equal(c.out[0]->dims[0], 3);
    int64_t w2[6] = {5, 7, 7, 5, 5, 5};
    for (int i = 0; i < 6; i++)
        assert_int_equal(graft_tensor_i64(c.out[0])[i], w2[i]);
    lt_call_fini(&c);
    graft_graph_destroy(g);

    /* bad: depth 0, depth huge, NaN depth, 3 values, axis out of range */
    graft_tensor *d0 = scalar_i64(0), *dh = scalar_i64((int64_t)1 << 40), *dn = scalar_f32(NAN);
    graft_tensor *v3 = lt_tensor_f32(1, (int64_t[]){3}, (float[]){0, 1, 2});
    graft_tensor *bad[4][3] = {{ind, d0, vals}, {ind, dh, vals}, {ind, dn, vals}, {ind, depth, v3}};
    g = lt_graph(11);
    n = lt_node(g, "OneHot", 3, 0, 1);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(lt_run(&c, g, n, 3, bad[k]), GRAFT_ERR_INVALID);
        assert_non_null(strstr(c.err.msg, "OneHot node"));
        lt_call_fini(&c);
    }
    graft_graph_destroy(g);
    int64_t axes[2] = {2, -3};
    for (int k = 0; k < 2; k++) {
        g = lt_graph(11);
        n = lt_node(g, "OneHot", 3, 0, 1);
        graft_node_set_int(g, n, "axis", axes[k], NULL);
        assert_int_equal(lt_run(&c, g, n, 3, in), GRAFT_ERR_INVALID);
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    graft_tensor *all[11] = {ind, depth, vals, indf, depf, vali, d0, dh, dn, v3, NULL};
    for (int i = 0; i < 10; i++)
        graft_tensor_destroy(all[i]);
}

/* ---- the plan folds an exported shape chain ---- */

static int32_t add_value(graft_graph *g, const char *name)
{
    int32_t v = graft_graph_add_value(g, name, NULL);
    assert_true(v >= 0);
    return v;
}

static int32_t add_input(graft_graph *g, const char *name, graft_dtype dt, int rank,
                         const int64_t *dims)
{
    int32_t v = add_value(g, name);
    graft_value *val = &g->values[v];
    val->kind = GRAFT_VALUE_INPUT;
    val->dtype = dt;
    val->rank = rank;
    memcpy(val->dims, dims, (size_t)rank * sizeof *dims);
    val->has_value_info = true;
    g->inputs = realloc(g->inputs, (size_t)(g->n_inputs + 1) * sizeof *g->inputs);
    g->inputs[g->n_inputs++] = v;
    return v;
}

static void mark_output(graft_graph *g, int32_t v)
{
    g->values[v].is_graph_output = true;
    g->outputs = realloc(g->outputs, (size_t)(g->n_outputs + 1) * sizeof *g->outputs);
    g->outputs[g->n_outputs++] = v;
}

static int32_t add_init_i64(graft_graph *g, const char *name, int64_t v)
{
    int32_t id = add_value(g, name);
    graft_tensor *t = scalar_i64(v);
    g->values[id].kind = GRAFT_VALUE_INITIALIZER;
    g->values[id].dtype = GRAFT_INT64;
    g->values[id].rank = 0;
    graft_value_set_data(g, id, t);
    return id;
}

static int32_t op(graft_graph *g, const char *type, const char *name, int n_in,
                  const int32_t *in)
{
    int32_t y = add_value(g, name);
    int32_t n = graft_graph_add_node(g, type, "", name, n_in, in, 1, &y, NULL);
    assert_true(n >= 0);
    return y;
}

/* x [N, 3, 2]; s = Shape(x); t = Where(Equal(s, 3), -1, s) = [N, -1, 2];
 * ones = ConstantOfShape(s, 1.0); y = Reshape(x + ones, t);
 * r = Range(0, Size(x), 5). Everything but Add and Reshape folds, and
 * Reshape is planned from the folded t. */
static void test_plan_folds_shape_chain(void **state)
{
    (void)state;
    graft_graph *g = lt_graph(13);
    int32_t x = add_input(g, "x", GRAFT_FLOAT, 3, (int64_t[]){-1, 3, 2});
    int32_t three = add_init_i64(g, "three", 3), m1 = add_init_i64(g, "m1", -1),
            zero = add_init_i64(g, "zero", 0), five = add_init_i64(g, "five", 5);
    int32_t s = op(g, "Shape", "shape", 1, &x);
    int32_t e = op(g, "Equal", "eq", 2, (int32_t[]){s, three});
    int32_t t = op(g, "Where", "where", 3, (int32_t[]){e, m1, s});
    int32_t ones = op(g, "ConstantOfShape", "cos", 1, &s);
    set_tensor_attr(g, g->values[ones].producer, "value",
                    lt_tensor_f32(1, (int64_t[]){1}, (float[]){1}));
    int32_t a = op(g, "Add", "add", 2, (int32_t[]){x, ones});
    int32_t y = op(g, "Reshape", "reshape", 2, (int32_t[]){a, t});
    int32_t sz = op(g, "Size", "size", 1, &x);
    int32_t r = op(g, "Range", "range", 3, (int32_t[]){zero, sz, five});
    mark_output(g, y);
    mark_output(g, r);
    graft_plan *p = NULL;
    graft_error err = {0};
    graft_shape shp = {3, {4, 3, 2}};
    assert_int_equal(graft_plan_create(g, NULL, 1, &shp, &p, &err), GRAFT_OK);
    /* Shape, Equal, Where, ConstantOfShape, Size, Range */
    assert_int_equal(graft__plan_n_folded(p), 6);
    assert_true(graft__plan_value_known(p, t));
    const graft_tensor *tt = graft__plan_value_tensor(p, t);
    assert_int_equal(graft_tensor_nelem(tt), 3);
    assert_int_equal(graft_tensor_i64(tt)[0], 4);
    assert_int_equal(graft_tensor_i64(tt)[1], -1);
    assert_int_equal(graft_tensor_i64(tt)[2], 2);
    graft_tensor *xt = lt_tensor_rand(3, shp.dims, 3, -1, 1);
    assert_int_equal(graft_plan_run(p, (const graft_tensor *const *)&xt, &err), GRAFT_OK);
    const graft_tensor *yo = graft_plan_output(p, 0), *ro = graft_plan_output(p, 1);
    assert_int_equal(yo->rank, 3);
    for (int i = 0; i < 24; i++)
        assert_float_equal(graft_tensor_f32(yo)[i], graft_tensor_f32(xt)[i] + 1.0f, 1e-6);
    /* ceil(24 / 5) = 5: 0, 5, 10, 15, 20 */
    assert_int_equal(graft_tensor_nelem(ro), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(graft_tensor_i64(ro)[i], 5 * i);
    graft_plan_destroy(p);
    p = NULL;
    /* another batch: the chain refolds to it */
    graft_shape shp2 = {3, {1, 3, 2}};
    assert_int_equal(graft_plan_create(g, NULL, 1, &shp2, &p, &err), GRAFT_OK);
    assert_int_equal(graft_tensor_i64(graft__plan_value_tensor(p, t))[0], 1);
    graft_plan_destroy(p);
    graft_tensor_destroy(xt);
    graft_graph_destroy(g);

    /* a shape fed at run time cannot size ConstantOfShape: refused, naming the node */
    g = lt_graph(13);
    int32_t sh = add_input(g, "shape", GRAFT_INT64, 1, (int64_t[]){2});
    int32_t z = op(g, "ConstantOfShape", "zeros", 1, &sh);
    mark_output(g, z);
    graft_shape s2 = {1, {2}};
    p = NULL;
    assert_int_equal(graft_plan_create(g, NULL, 1, &s2, &p, &err), GRAFT_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "zeros"));
    assert_null(p);
    graft_graph_destroy(g);
}

static void test_onnx_node_data(void **state)
{
    (void)state;
    static const char *const ops[] = {"ConstantOfShape", "Range", "Size", "EyeLike", "OneHot",
                                      NULL};
    int pass, fail, skip;
    if (lt_onnx_suite(ops, &pass, &fail, &skip) < 0)
        skip();
    assert_int_equal(fail, 0);
    assert_true(pass >= 14);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constant_of_shape), cmocka_unit_test(test_range),
        cmocka_unit_test(test_size),              cmocka_unit_test(test_eyelike),
        cmocka_unit_test(test_onehot),            cmocka_unit_test(test_plan_folds_shape_chain),
        cmocka_unit_test(test_onnx_node_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
