/* tests/ops/test_pad.c - Pad: hand-derived values for every mode (constant,
 * reflect, edge, wrap) in the attribute form (Pad-2..10) and the input form
 * (11+, axes from 18), negative pads (cropping), int64 data; infer on good
 * and bad inputs (a status naming the node, never a crash); random cases
 * against a naive per-element reference (folded fast path, threads);
 * backward against central differences for every mode; and every ONNX
 * backend node test named test_*pad* whose node is a Pad. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_util.h"
#include "lightops_util.h"
#include "testutil.h"


static graft_tensor *i64(int n, const int64_t *v)
{
    int64_t d = n;
    return lt_tensor_i64(1, &d, v);
}

/* Pad at opset with data x and inputs (pads, constant_value, axes) where
 * given; NULL entries past the first are omitted (""). n_in counts x. */
static kt_node *make(int opset, int n_in, graft_tensor *x, graft_tensor *const *rest)
{
    kt_node *k = kt_node_new("Pad", "", opset, n_in, 1);
    assert_non_null(k);
    kt_set_input_tensor(k, 0, x);
    for (int i = 1; i < n_in; i++) {
        if (rest[i - 1])
            kt_set_input_tensor(k, i, rest[i - 1]);
        else
            k->g->nodes[k->node].inputs[i] = -1;
    }
    return k;
}

static void run_expect(kt_node *k, int rank, const int64_t *yd, const double *want)
{
    graft_status st = kt_parse(k);
    if (st)
        printf("%s\n", k->err.msg);
    assert_int_equal(st, GRAFT_OK);
    st = kt_infer(k);
    if (st)
        printf("%s\n", k->err.msg);
    assert_int_equal(st, GRAFT_OK);
    assert_int_equal(k->out[0]->rank, rank);
    for (int i = 0; i < rank; i++)
        assert_int_equal(k->out[0]->dims[i], yd[i]);
    assert_int_equal(kt_forward(k), GRAFT_OK);
    int64_t n = graft_tensor_nelem(k->out[0]);
    for (int64_t i = 0; i < n; i++) {
        double y = k->out[0]->dtype == GRAFT_INT64 ? (double)graft_tensor_i64(k->out[0])[i]
                                                   : (double)graft_tensor_f32(k->out[0])[i];
        if (y != want[i])
            printf("element %lld: %g, expected %g\n", (long long)i, y, want[i]);
        assert_true(y == want[i]);
    }
}

/* X = [[1, 2, 3], [4, 5, 6]] as [1, 1, 2, 3] */
static const int64_t xd[] = {1, 1, 2, 3};
static const float xv[] = {1, 2, 3, 4, 5, 6};

static graft_tensor *x23(void)
{
    return lt_tensor_f32(4, xd, xv);
}

static void test_pad_constant(void **state)
{
    (void)state;
    /* H (1, 0), W (1, 2), value 9 */
    static const int64_t pads[] = {0, 0, 1, 1, 0, 0, 0, 2}, yd[] = {1, 1, 3, 6};
    static const double want[] = {9, 9, 9, 9, 9, 9, 9, 1, 2, 3, 9, 9, 9, 4, 5, 6, 9, 9};
    /* Pad-2 form at opset 6 and 10: attributes */
    for (int opset = 6; opset <= 10; opset += 4) {
        kt_node *k = make(opset, 1, x23(), NULL);
        kt_set_ints(k, "pads", 8, pads);
        kt_set_float(k, "value", 9.0f);
        run_expect(k, 4, yd, want);
        kt_node_free(k);
    }
    /* 11, 13, 18, 19, 21: inputs, constant_value a scalar */
    static const int opsets[] = {11, 13, 18, 19, 21};
    for (int i = 0; i < 5; i++) {
        float nine = 9.0f;
        kt_node *k = make(opsets[i], 3, x23(),
                          (graft_tensor *[]){i64(8, pads), lt_tensor_f32(0, NULL, &nine)});
        run_expect(k, 4, yd, want);
        kt_node_free(k);
    }
    /* constant_value omitted: 0 (and mode defaults to constant) */
    static const double want0[] = {0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 4, 5, 6, 0, 0};
    kt_node *k = make(13, 3, x23(), (graft_tensor *[]){i64(8, pads), NULL});
    run_expect(k, 4, yd, want0);
    kt_node_free(k);
    k = make(13, 2, x23(), (graft_tensor *[]){i64(8, pads)});
    kt_set_string(k, "mode", "constant");
    run_expect(k, 4, yd, want0);
    kt_node_free(k);
}

static void test_pad_reflect_edge_wrap(void **state)
{
    (void)state;
    struct {
        const char *mode;
        int opset;
        int64_t pads[8], yd[4];
        double want[32];
    } cases[] = {
        /* reflect H (1, 1), W (2, 2): rows r1 r0 r1 r0, each [c b a b c b a] */
        {"reflect", 13, {0, 0, 1, 2, 0, 0, 1, 2}, {1, 1, 4, 7},
         {6, 5, 4, 5, 6, 5, 4, 3, 2, 1, 2, 3, 2, 1, 6, 5, 4, 5, 6, 5, 4, 3, 2, 1, 2, 3, 2, 1}},
        /* reflect beyond the length folds again: W (0, 5) on [1 2 3] -> 1 2 3 2 1 2 3 2 */
        {"reflect", 18, {0, 0, 0, 0, 0, 0, 0, 5}, {1, 1, 2, 8},
         {1, 2, 3, 2, 1, 2, 3, 2, 4, 5, 6, 5, 4, 5, 6, 5}},
        /* edge H (1, 0), W (0, 2) */
        {"edge", 11, {0, 0, 1, 0, 0, 0, 0, 2}, {1, 1, 3, 5},
         {1, 2, 3, 3, 3, 1, 2, 3, 3, 3, 4, 5, 6, 6, 6}},
        /* edge on the channel axis: C (1, 1) copies the whole 2x3 plane */
        {"edge", 13, {0, 1, 0, 0, 0, 1, 0, 0}, {1, 3, 2, 3},
         {1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}},
        /* wrap H (0, 1), W (2, 1): [b c a b c a] */
        {"wrap", 19, {0, 0, 0, 2, 0, 0, 1, 1}, {1, 1, 3, 6},
         {2, 3, 1, 2, 3, 1, 5, 6, 4, 5, 6, 4, 2, 3, 1, 2, 3, 1}},
        /* wrap more than once: W (4, 0) -> c a b c | a b c */
        {"wrap", 21, {0, 0, 0, 4, 0, 0, 0, 0}, {1, 1, 2, 7},
         {3, 1, 2, 3, 1, 2, 3, 6, 4, 5, 6, 4, 5, 6}},
        /* negative pads crop first: constant W (-1, 1) -> [b c 0] */
        {"constant", 13, {0, 0, 0, -1, 0, 0, 0, 1}, {1, 1, 2, 3}, {2, 3, 0, 5, 6, 0}},
        /* reflect about the kept [b c]: W (-1, 2) -> b c b c */
        {"reflect", 13, {0, 0, 0, -1, 0, 0, 0, 2}, {1, 1, 2, 4}, {2, 3, 2, 3, 5, 6, 5, 6}},
        /* edge H (-1, 0), W (1, -2): the kept [4] -> [4 4] */
        {"edge", 13, {0, 0, -1, 1, 0, 0, 0, -2}, {1, 1, 1, 2}, {4, 4}},
        /* wrap W (1, -1): kept [a b] -> [b a b] */
        {"wrap", 19, {0, 0, 0, 1, 0, 0, 0, -1}, {1, 1, 2, 3}, {2, 1, 2, 5, 4, 5}},
        /* constant after cropping a whole axis: W (-3, 1) -> the value */
        {"constant", 13, {0, 0, 0, -3, 0, 0, 0, 1}, {1, 1, 2, 1}, {0, 0}},
        /* crop only: H (0, -1), W (-1, -1) -> [2] */
        {"reflect", 13, {0, 0, 0, -1, 0, 0, -1, -1}, {1, 1, 1, 1}, {2}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        printf("case %zu: %s\n", i, cases[i].mode);
        kt_node *k = make(cases[i].opset, 2, x23(), (graft_tensor *[]){i64(8, cases[i].pads)});
        kt_set_string(k, "mode", cases[i].mode);
        run_expect(k, 4, cases[i].yd, cases[i].want);
        kt_node_free(k);
    }
    /* the attribute form too: reflect at opset 7 */
    kt_node *k = make(7, 1, x23(), NULL);
    kt_set_string(k, "mode", "reflect");
    kt_set_ints(k, "pads", 8, cases[0].pads);
    run_expect(k, 4, cases[0].yd, cases[0].want);
    kt_node_free(k);
}

static void test_pad_axes(void **state)
{
    (void)state;
    /* axes [-1]: W (1, 1) */
    kt_node *k = make(18, 4, x23(),
                      (graft_tensor *[]){i64(2, (int64_t[]){1, 1}), NULL, i64(1, (int64_t[]){-1})});
    run_expect(k, 4, (const int64_t[]){1, 1, 2, 5}, (const double[]){0, 1, 2, 3, 0, 0, 4, 5, 6, 0});
    kt_node_free(k);
    /* axes [3, 2]: pads are W begin, H begin, W end, H end = 1, 0, 0, 1 */
    float seven = 7;
    k = make(18, 4, x23(),
             (graft_tensor *[]){i64(4, (int64_t[]){1, 0, 0, 1}), lt_tensor_f32(0, NULL, &seven),
                                i64(2, (int64_t[]){3, 2})});
    run_expect(k, 4, (const int64_t[]){1, 1, 3, 4},
               (const double[]){7, 1, 2, 3, 7, 4, 5, 6, 7, 7, 7, 7});
    kt_node_free(k);
    /* axes [2] with edge and a negative end: H (1, -1) -> r0 r0 */
    k = make(19, 4, x23(),
             (graft_tensor *[]){i64(2, (int64_t[]){1, -1}), NULL, i64(1, (int64_t[]){2})});
    kt_set_string(k, "mode", "edge");
    run_expect(k, 4, (const int64_t[]){1, 1, 2, 3}, (const double[]){1, 2, 3, 1, 2, 3});
    kt_node_free(k);
    /* an empty axes list pads nothing */
    graft_tensor *none = NULL;
    assert_int_equal(graft_tensor_create(GRAFT_INT64, 1, (const int64_t[]){0}, &none, NULL),
                     GRAFT_OK);
    graft_tensor *nopads = NULL;
    assert_int_equal(graft_tensor_create(GRAFT_INT64, 1, (const int64_t[]){0}, &nopads, NULL),
                     GRAFT_OK);
    k = make(18, 4, x23(), (graft_tensor *[]){nopads, NULL, none});
    run_expect(k, 4, xd, (const double[]){1, 2, 3, 4, 5, 6});
    kt_node_free(k);
}

static void test_pad_int64(void **state)
{
    (void)state;
    static const int64_t v[] = {10, 20, 30};
    int64_t d = 3;
    /* edge (2, 1) */
    kt_node *k = make(13, 2, lt_tensor_i64(1, &d, v), (graft_tensor *[]){i64(2, (int64_t[]){2, 1})});
    kt_set_string(k, "mode", "edge");
    run_expect(k, 1, (const int64_t[]){6}, (const double[]){10, 10, 10, 20, 30, 30});
    kt_node_free(k);
    /* constant with an int64 constant_value, cropping one at the start */
    int64_t seven = -7;
    k = make(13, 3, lt_tensor_i64(1, &d, v),
             (graft_tensor *[]){i64(2, (int64_t[]){-1, 2}), lt_tensor_i64(0, NULL, &seven)});
    run_expect(k, 1, (const int64_t[]){4}, (const double[]){20, 30, -7, -7});
    kt_node_free(k);
    /* reflect and wrap on a 2x3 int64 matrix */
    int64_t d2[] = {2, 3}, m[] = {1, 2, 3, 4, 5, 6};
    k = make(13, 2, lt_tensor_i64(2, d2, m), (graft_tensor *[]){i64(4, (int64_t[]){1, 1, 0, 0})});
    kt_set_string(k, "mode", "reflect");
    run_expect(k, 2, (const int64_t[]){3, 4}, (const double[]){5, 4, 5, 6, 2, 1, 2, 3, 5, 4, 5, 6});
    kt_node_free(k);
    k = make(19, 2, lt_tensor_i64(2, d2, m), (graft_tensor *[]){i64(4, (int64_t[]){0, 0, 1, 1})});
    kt_set_string(k, "mode", "wrap");
    run_expect(k, 2, (const int64_t[]){3, 4}, (const double[]){1, 2, 3, 1, 4, 5, 6, 4, 1, 2, 3, 1});
    kt_node_free(k);
    /* empty data: every element is the value */
    int64_t d0 = 0, four = 4;
    k = make(13, 3, lt_tensor_i64(1, &d0, NULL),
             (graft_tensor *[]){i64(2, (int64_t[]){1, 2}), lt_tensor_i64(0, NULL, &four)});
    run_expect(k, 1, (const int64_t[]){3}, (const double[]){4, 4, 4});
    kt_node_free(k);
    /* the attribute form: the float value converts */
    k = make(9, 1, lt_tensor_i64(1, &d, v), NULL);
    kt_set_ints(k, "pads", 2, (const int64_t[]){1, 0});
    kt_set_float(k, "value", 5.0f);
    run_expect(k, 1, (const int64_t[]){4}, (const double[]){5, 10, 20, 30});
    kt_node_free(k);
}

/* A 1-D int64 input whose data infer does not see. */
static graft_tensor *shape_only(int64_t n)
{
    graft_tensor *t = calloc(1, sizeof *t);
    t->dtype = GRAFT_INT64;
    t->rank = 1;
    t->dims[0] = n;
    return t;
}

static void test_pad_infer_errors(void **state)
{
    (void)state;
    static const int64_t p8[] = {0, 0, 1, 1, 0, 0, 1, 1};
    /* pads not known when the plan is built: unsupported, naming the node */
    kt_node *k = make(13, 2, x23(), (graft_tensor *[]){shape_only(8)});
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_ERR_UNSUPPORTED);
    assert_non_null(strstr(k->err.msg, "Pad node 'test_node'"));
    assert_non_null(strstr(k->err.msg, "pads"));
    kt_node_free(k);
    /* the same for axes */
    k = make(18, 4, x23(), (graft_tensor *[]){i64(2, (int64_t[]){1, 1}), NULL, shape_only(1)});
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_ERR_UNSUPPORTED);
    assert_non_null(strstr(k->err.msg, "Pad node 'test_node'"));
    assert_non_null(strstr(k->err.msg, "axes"));
    kt_node_free(k);
    struct {
        int opset;
        const char *mode;
        int n_pads;
        int64_t pads[8];
        int n_axes;
        int64_t axes[4];
        graft_status parse, infer;
    } cases[] = {
        {13, "constant", 6, {0, 0, 1, 0, 0, 1}, -1, {0}, GRAFT_OK, GRAFT_ERR_INVALID},
        {13, "circular", 8, {0}, -1, {0}, GRAFT_ERR_INVALID, GRAFT_OK},
        {13, "wrap", 8, {0}, -1, {0}, GRAFT_ERR_INVALID, GRAFT_OK}, /* wrap is 19+ */
        {13, "constant", 8, {0, 0, -3, 0, 0, 0, 0, 0}, -1, {0}, GRAFT_OK, GRAFT_ERR_INVALID},
        {13, "edge", 8, {0, 0, 0, -2, 0, 0, 0, -1}, -1, {0}, GRAFT_OK, GRAFT_OK}, /* crop all */
        {13, "edge", 8, {0, 0, 0, -3, 0, 0, 0, 1}, -1, {0}, GRAFT_OK, GRAFT_ERR_INVALID},
        {13, "constant", 8, {0, 0, 0, -3, 0, 0, 0, 1}, -1, {0}, GRAFT_OK, GRAFT_OK},
        {18, "constant", 2, {1, 1}, 1, {4}, GRAFT_OK, GRAFT_ERR_INVALID},
        {18, "constant", 4, {1, 1, 1, 1}, 2, {2, -2}, GRAFT_OK, GRAFT_ERR_INVALID},
        {18, "constant", 4, {1, 1, 1, 1}, 1, {2}, GRAFT_OK, GRAFT_ERR_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int n_in = cases[i].n_axes >= 0 ? 4 : 2;
        k = make(cases[i].opset, n_in, x23(),
                 (graft_tensor *[]){i64(cases[i].n_pads, cases[i].pads), NULL,
                                    cases[i].n_axes >= 0 ? i64(cases[i].n_axes, cases[i].axes)
                                                         : NULL});
        kt_set_string(k, "mode", cases[i].mode);
        graft_status st = kt_parse(k);
        printf("case %zu: %s\n", i, st ? k->err.msg : "parsed");
        assert_int_equal(st, cases[i].parse);
        if (st == GRAFT_OK) {
            st = kt_infer(k);
            printf("case %zu: %s\n", i, st ? k->err.msg : "ok");
            assert_int_equal(st, cases[i].infer);
        }
        if (st)
            assert_non_null(strstr(k->err.msg, "test_node"));
        kt_node_free(k);
    }
    /* Pad-2 form without pads; too many inputs for Pad-13 */
    k = make(9, 1, x23(), NULL);
    assert_int_equal(kt_parse(k), GRAFT_ERR_INVALID);
    kt_node_free(k);
    k = make(13, 4, x23(), (graft_tensor *[]){i64(8, p8), NULL, i64(1, (int64_t[]){0})});
    assert_int_equal(kt_parse(k), GRAFT_ERR_INVALID);
    kt_node_free(k);
    /* a symbolic batch passes through; uint8 data is refused cleanly */
    k = make(13, 2, x23(), (graft_tensor *[]){i64(8, p8)});
    kt_set_input_shape(k, 0, GRAFT_FLOAT, 4, (const int64_t[]){-1, 3, 5, 5});
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_OK);
    assert_int_equal(k->out[0]->dims[0], -1);
    assert_int_equal(k->out[0]->dims[2], 7);
    assert_int_equal(k->out[0]->dims[3], 7);
    kt_set_input_shape(k, 0, GRAFT_UINT8, 4, (const int64_t[]){1, 3, 5, 5});
    assert_int_equal(kt_infer(k), GRAFT_ERR_UNSUPPORTED);
    kt_node_free(k);
}

/* ---- random cases against a naive reference ----------------------------------- */

static const char *const modes[] = {"constant", "reflect", "edge", "wrap"};

/* Kept index along one axis, folded by repeated reflection / wrapping;
 * -1 for the constant. */
static int64_t naive_src(int mode, int64_t j, int64_t in, int64_t b, int64_t e)
{
    int64_t lo = b < 0 ? -b : 0, L = in - lo - (e < 0 ? -e : 0), k = j - (b > 0 ? b : 0);
    if (k < 0 || k >= L) {
        if (mode == 0)
            return -1;
        if (mode == 2)
            k = k < 0 ? 0 : L - 1;
        while (mode == 1 && (k < 0 || k >= L)) {
            if (L == 1)
                k = 0;
            else if (k < 0)
                k = -k;
            else
                k = 2 * (L - 1) - k;
        }
        while (mode == 3 && k < 0)
            k += L;
        while (mode == 3 && k >= L)
            k -= L;
    }
    return lo + k;
}

static void random_case(uint64_t *rng, int rank, int64_t *dims, int64_t *b, int64_t *e,
                        bool last_two)
{
    for (int a = 0; a < rank; a++) {
        dims[a] = kt_randint(rng, 1, 5);
        b[a] = e[a] = 0;
        if (last_two && a < rank - 2)
            continue;
        if (kt_randint(rng, 0, 2) == 0 && !last_two)
            continue;
        /* negative pads keep at least one element */
        b[a] = kt_randint(rng, -(int)(dims[a] - 1) / 2, 4);
        e[a] = kt_randint(rng, -(int)(dims[a] - 1) / 2, 4);
    }
}

/* Random float data of the given shape. */
static graft_tensor *random_x(int rank, const int64_t *dims, uint64_t *rng)
{
    graft_tensor *x = NULL;
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, rank, dims, &x, NULL), GRAFT_OK);
    kt_fill(graft_tensor_f32(x), graft_tensor_nelem(x), rng);
    return x;
}

/* Sets the mode, parses and infers (case `it` named on failure). */
static void prepare(kt_node *k, const char *mode, int it)
{
    kt_set_string(k, "mode", mode);
    assert_int_equal(kt_parse(k), GRAFT_OK);
    graft_status st = kt_infer(k);
    if (st)
        printf("it %d: %s\n", it, k->err.msg);
    assert_int_equal(st, GRAFT_OK);
}

static void test_pad_random_reference(void **state)
{
    (void)state;
    uint64_t rng = 99;
    for (int it = 0; it < 200; it++) {
        int mode = it % 4, rank = 1 + it % 5;
        int64_t dims[5], b[5], e[5], pads[10];
        random_case(&rng, rank, dims, b, e, it % 3 == 0);
        for (int a = 0; a < rank; a++) {
            pads[a] = b[a];
            pads[rank + a] = e[a];
        }
        graft_tensor *x = random_x(rank, dims, &rng);
        float val = 0.5f;
        kt_node *k = make(19, 3, x, (graft_tensor *[]){i64(2 * rank, pads),
                                                      lt_tensor_f32(0, NULL, &val)});
        prepare(k, modes[mode], it);
        assert_int_equal(kt_forward(k), GRAFT_OK);
        const graft_tensor *y = k->out[0];
        int64_t pos[5] = {0}, xs[5], n = graft_tensor_nelem(y);
        for (int a = rank - 1, s = 1; a >= 0; s *= (int)dims[a], a--)
            xs[a] = s;
        for (int a = 0; a < rank; a++)
            assert_int_equal(y->dims[a], dims[a] + b[a] + e[a]);
        for (int64_t i = 0; i < n; i++) {
            int64_t off = 0;
            bool outside = false;
            for (int a = 0; a < rank; a++) {
                int64_t s = naive_src(mode, pos[a], dims[a], b[a], e[a]);
                outside |= s < 0;
                off += s * xs[a];
            }
            float want = outside ? val : graft_tensor_f32(x)[off];
            if (graft_tensor_f32(y)[i] != want)
                printf("it %d %s rank %d: element %lld is %g, expected %g\n", it, modes[mode],
                       rank, (long long)i, graft_tensor_f32(y)[i], want);
            assert_true(graft_tensor_f32(y)[i] == want);
            for (int a = rank - 1; a >= 0; a--) {
                if (++pos[a] < y->dims[a])
                    break;
                pos[a] = 0;
            }
        }
        kt_node_free(k);
    }
}

/* NCHW padding of H and W on a tensor large enough for two threads, forward
 * and backward, against the one-thread result. */
static void test_pad_threads(void **state)
{
    (void)state;
    static const int64_t dims[] = {2, 16, 96, 96}, pads[] = {0, 0, 1, 2, 0, 0, 2, 1};
    uint64_t rng = 5;
    for (int mode = 0; mode < 4; mode++) {
        graft_tensor *y1 = NULL, *g1 = NULL;
        for (int nt = 1; nt <= 2; nt++) {
            graft_tensor *x = NULL;
            assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 4, dims, &x, NULL), GRAFT_OK);
            uint64_t r2 = rng;
            kt_fill(graft_tensor_f32(x), graft_tensor_nelem(x), &r2);
            kt_node *k = make(19, 2, x, (graft_tensor *[]){i64(8, pads)});
            k->ctx.n_threads = nt;
            kt_set_string(k, "mode", modes[mode]);
            assert_int_equal(kt_parse(k), GRAFT_OK);
            assert_int_equal(kt_infer(k), GRAFT_OK);
            assert_int_equal(kt_forward(k), GRAFT_OK);
            graft_tensor *dy = NULL, *dx = NULL;
            assert_int_equal(graft_tensor_clone(k->out[0], &dy, NULL), GRAFT_OK);
            assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 4, dims, &dx, NULL), GRAFT_OK);
            assert_int_equal(kt_backward(k, (graft_tensor *[]){dy}, (graft_tensor *[]){dx}),
                             GRAFT_OK);
            if (nt == 1) {
                y1 = dy;
                g1 = dx;
                dy = dx = NULL;
            } else {
                assert_int_equal(graft_tensor_nelem(dy), graft_tensor_nelem(y1));
                assert_memory_equal(dy->data, y1->data, dy->nbytes);
                assert_memory_equal(dx->data, g1->data, dx->nbytes);
            }
            graft_tensor_destroy(dy);
            graft_tensor_destroy(dx);
            kt_node_free(k);
        }
        graft_tensor_destroy(y1);
        graft_tensor_destroy(g1);
    }
}

/* Backward against central differences: every mode, rank 1 to 5, negative
 * pads and axes among them. */
static void test_pad_backward(void **state)
{
    (void)state;
    uint64_t rng = 4242;
    for (int it = 0; it < 120; it++) {
        int mode = it % 4, rank = 1 + (it / 4) % 5;
        int64_t dims[5], b[5], e[5], pads[10];
        random_case(&rng, rank, dims, b, e, it % 5 == 0);
        graft_tensor *x = random_x(rank, dims, &rng);
        kt_node *k;
        if (it % 3 == 1) {
            /* axes: the padded ones, in reverse order, negative */
            int64_t axes[5];
            int n_ax = 0;
            for (int a = rank - 1; a >= 0; a--)
                if (b[a] || e[a])
                    axes[n_ax++] = a - rank;
            for (int q = 0; q < n_ax; q++) {
                pads[q] = b[axes[q] + rank];
                pads[n_ax + q] = e[axes[q] + rank];
            }
            k = make(19, 4, x, (graft_tensor *[]){i64(2 * n_ax, pads), NULL, i64(n_ax, axes)});
        } else {
            for (int a = 0; a < rank; a++) {
                pads[a] = b[a];
                pads[rank + a] = e[a];
            }
            k = make(19, 2, x, (graft_tensor *[]){i64(2 * rank, pads)});
        }
        prepare(k, modes[mode], it);
        int bad = kt_grad_check(k, 0, 1e-2, 1e-3, 1e-3, 80, &rng);
        if (bad)
            printf("it %d: %s rank %d\n", it, modes[mode], rank);
        assert_int_equal(bad, 0);
        kt_node_free(k);
    }
    /* the attribute form through lt (reflect, NCHW) */
    graft_graph *g = lt_graph(10);
    int32_t node = lt_node(g, "Pad", 1, 0, 1);
    assert_int_equal(graft_node_set_string(g, node, "mode", "reflect", NULL), GRAFT_OK);
    assert_int_equal(graft_node_set_ints(g, node, "pads", 8,
                                         (const int64_t[]){0, 0, 2, 1, 0, 0, 1, 3}, NULL),
                     GRAFT_OK);
    graft_tensor *in[1] = {lt_tensor_rand(4, (const int64_t[]){2, 2, 3, 4}, 3, -1, 1)};
    assert_true(lt_gradcheck(g, node, 1, in, 1, 1e-2, 1e-3, false) < 1e-3);
    graft_tensor_destroy(in[0]);
    graft_graph_destroy(g);
}

static void test_pad_onnx_node_data(void **state)
{
    (void)state;
    static const char *const ops[] = {"Pad", NULL};
    int pass, fail, skip;
    if (lt_onnx_suite(ops, &pass, &fail, &skip) < 0)
        skip();
    print_message("ONNX Pad node tests: %d pass, %d fail, %d unsupported\n", pass, fail, skip);
    assert_int_equal(fail, 0);
    assert_true(pass >= 3); /* constant, edge, reflect in libonnx-testdata 1.12 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pad_constant),
        cmocka_unit_test(test_pad_reflect_edge_wrap),
        cmocka_unit_test(test_pad_axes),
        cmocka_unit_test(test_pad_int64),
        cmocka_unit_test(test_pad_infer_errors),
        cmocka_unit_test(test_pad_random_reference),
        cmocka_unit_test(test_pad_threads),
        cmocka_unit_test(test_pad_backward),
        cmocka_unit_test(test_pad_onnx_node_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
