/* tests/ops/test_resize.c - Resize and Upsample: hand-derived values for the
 * coordinate modes (the shared cases E04a/E04c among them), infer on good
 * and bad inputs (a status naming the node, never a crash), backward
 * against central differences for every mode on 3-D to 5-D inputs, and
 * every ONNX backend node test named test_resize_* / test_upsample_*. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_util.h"
#include "lightops_util.h"
#include "testutil.h"

#define NODE_DIR "/usr/share/libonnx-testdata/data/node"

/* X -> Resize/Upsample with inputs (X, roi, scales, sizes), omitted where NULL. */
static kt_node *make(const char *op, int opset, int n_in, int rank, const int64_t *xd,
                     const float *xv, graft_tensor *const *rest)
{
    kt_node *k = kt_node_new(op, "", opset, n_in, 1);
    assert_non_null(k);
    graft_tensor *x = kt_set_input(k, 0, rank, xd, NULL);
    if (xv)
        memcpy(x->data, xv, x->nbytes);
    for (int i = 1; i < n_in; i++) {
        if (rest[i - 1])
            kt_set_input_tensor(k, i, rest[i - 1]);
        else
            k->g->nodes[k->node].inputs[i] = -1; /* "" in the model */
    }
    return k;
}

static graft_tensor *f32(int n, const float *v)
{
    int64_t d = n;
    return lt_tensor_f32(1, &d, v);
}

static graft_tensor *i64(int n, const int64_t *v)
{
    int64_t d = n;
    return lt_tensor_i64(1, &d, v);
}

/* A float or int64 1-D input whose data infer does not see. */
static graft_tensor *shape_only(graft_dtype dt, int64_t n)
{
    graft_tensor *t = calloc(1, sizeof *t);
    t->dtype = dt;
    t->rank = 1;
    t->dims[0] = n;
    return t;
}

static void run_expect(kt_node *k, int rank, const int64_t *yd, const float *want)
{
    assert_int_equal(kt_parse(k), GRAFT_OK);
    graft_status st = kt_infer(k);
    if (st)
        printf("%s\n", k->err.msg);
    assert_int_equal(st, GRAFT_OK);
    assert_int_equal(k->out[0]->rank, rank);
    for (int i = 0; i < rank; i++)
        assert_int_equal(k->out[0]->dims[i], yd[i]);
    assert_int_equal(kt_forward(k), GRAFT_OK);
    int64_t n = graft_tensor_nelem(k->out[0]);
    const float *y = graft_tensor_f32(k->out[0]);
    for (int64_t i = 0; i < n; i++) {
        if (fabsf(y[i] - want[i]) > 1e-5f)
            printf("element %lld: %.7g, expected %.7g\n", (long long)i, y[i], want[i]);
        assert_true(fabsf(y[i] - want[i]) <= 1e-5f);
    }
}

static const int64_t x23[] = {1, 1, 2, 3}, y46[] = {1, 1, 4, 6};
static const float xv23[] = {1, 2, 4, 3, 7, 5};
static const float s22[] = {1, 1, 2, 2};
static const float rep22[] = {1, 1, 2, 2, 4, 4, 1, 1, 2, 2, 4, 4,
                              3, 3, 7, 7, 5, 5, 3, 3, 7, 7, 5, 5};

/* E04a: Upsample-9 keeps asymmetric coordinates (x_in = x_out / 2), clamped. */
static void test_upsample9_e04a(void **state)
{
    (void)state;
    kt_node *k = make("Upsample", 9, 2, 4, x23, xv23, (graft_tensor *[]){f32(4, s22)});
    kt_set_string(k, "mode", "nearest");
    run_expect(k, 4, y46, rep22);
    kt_node_free(k);
    static const float lin[] = {1, 1.5f, 2, 3,     4,    4,    2, 3.25f, 4.5f, 4.5f, 4.5f, 4.5f,
                                3, 5,    7, 6,     5,    5,    3, 5,     7,    6,    5,    5};
    k = make("Upsample", 9, 2, 4, x23, xv23, (graft_tensor *[]){f32(4, s22)});
    kt_set_string(k, "mode", "linear");
    run_expect(k, 4, y46, lin);
    kt_node_free(k);
    /* Upsample-7: the same through the scales attribute */
    k = make("Upsample", 7, 1, 4, x23, xv23, NULL);
    kt_set_string(k, "mode", "linear");
    kt_set_floats(k, "scales", 4, s22);
    run_expect(k, 4, y46, lin);
    kt_node_free(k);
    /* Resize-10 is Upsample under another name */
    k = make("Resize", 10, 2, 4, x23, xv23, (graft_tensor *[]){f32(4, s22)});
    kt_set_string(k, "mode", "linear");
    run_expect(k, 4, y46, lin);
    kt_node_free(k);
}

/* E04c: Resize-13 defaults to half_pixel (x_in = x_out / 2 - 0.25) with roi "". */
static void test_resize13_e04c(void **state)
{
    (void)state;
    /* rows: r0 = [1,2,4], r1 = [3,7,5] resampled along x; then y weights
     * (1,0) (.75,.25) (.25,.75) (0,1) */
    static const float lin[] = {1,    1.25f,   1.75f,   2.5f, 3.5f, 4,
                                1.5f, 1.9375f, 2.8125f, 3.5f, 4,    4.25f,
                                2.5f, 3.3125f, 4.9375f, 5.5f, 5,    4.75f,
                                3,    4,       6,       6.5f, 5.5f, 5};
    const char *modes[][3] = {{"linear", NULL, NULL},
                              {"nearest", NULL, NULL},
                              {"nearest", "asymmetric", "floor"}};
    for (int m = 0; m < 3; m++) {
        kt_node *k = make("Resize", 13, 3, 4, x23, xv23, (graft_tensor *[]){NULL, f32(4, s22)});
        kt_set_string(k, "mode", modes[m][0]);
        if (modes[m][1])
            kt_set_string(k, "coordinate_transformation_mode", modes[m][1]);
        if (modes[m][2])
            kt_set_string(k, "nearest_mode", modes[m][2]);
        run_expect(k, 4, y46, m == 0 ? lin : rep22);
        kt_node_free(k);
    }
}

/* 1-D cases worked by hand, on X = [1, 2, 3, 4] as [1, 1, 4]. */
static void test_resize_coordinate_modes(void **state)
{
    (void)state;
    static const int64_t xd[] = {1, 1, 4};
    static const float xv[] = {1, 2, 3, 4};
    struct {
        const char *mode, *coord, *nearest;
        int64_t size;
        float want[8];
    } cases[] = {
        /* align_corners, 4 -> 7: x = j/2 */
        {"linear", "align_corners", NULL, 7, {1, 1.5f, 2, 2.5f, 3, 3.5f, 4}},
        /* asymmetric, 4 -> 2: x = 2j */
        {"linear", "asymmetric", NULL, 2, {1, 3}},
        /* half_pixel, 4 -> 2: x = 2j + 0.5 */
        {"linear", "half_pixel", NULL, 2, {1.5f, 3.5f}},
        /* pytorch_half_pixel, 4 -> 1: x = 0 */
        {"linear", "pytorch_half_pixel", NULL, 1, {1}},
        /* half_pixel 4 -> 1 samples the middle, x = 1.5 */
        {"linear", "half_pixel", NULL, 1, {2.5f}},
        /* asymmetric, 4 -> 8: x = j/2; round_prefer_ceil takes 0.5 up */
        {"nearest", "asymmetric", "round_prefer_ceil", 8, {1, 2, 2, 3, 3, 4, 4, 4}},
        {"nearest", "asymmetric", "round_prefer_floor", 8, {1, 1, 2, 2, 3, 3, 4, 4}},
        {"nearest", "asymmetric", "ceil", 8, {1, 2, 2, 3, 3, 4, 4, 4}},
        /* tf_half_pixel_for_nn, 4 -> 2: x = 2j + 1 */
        {"nearest", "tf_half_pixel_for_nn", NULL, 2, {2, 4}},
        /* half_pixel_symmetric, 4 -> 8 with sizes: the same as half_pixel */
        {"linear", "half_pixel_symmetric", NULL, 8,
         {1, 1.25f, 1.75f, 2.25f, 2.75f, 3.25f, 3.75f, 4}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t sz[] = {1, 1, cases[i].size};
        kt_node *k = make("Resize", 19, 4, 3, xd, xv, (graft_tensor *[]){NULL, NULL, i64(3, sz)});
        kt_set_string(k, "mode", cases[i].mode);
        kt_set_string(k, "coordinate_transformation_mode", cases[i].coord);
        if (cases[i].nearest)
            kt_set_string(k, "nearest_mode", cases[i].nearest);
        printf("case %zu: %s %s\n", i, cases[i].mode, cases[i].coord);
        run_expect(k, 3, sz, cases[i].want);
        kt_node_free(k);
    }
    /* cubic, a = -0.75, half_pixel 4 -> 8: x = j/2 - 0.25; at j = 3 (x = 1.25,
     * r = .25) the taps 0..3 weigh W(1.25) W(.25) W(.75) W(1.75) =
     * -0.10546875, 0.87890625, 0.26171875, -0.03515625 -> 2.296875 (a = -0.75
     * does not reproduce a ramp exactly; -0.5 would give 2.25); at j = 4 the
     * same weights reversed -> 2.703125 */
    int64_t sz[] = {1, 1, 8};
    kt_node *k = make("Resize", 13, 4, 3, xd, xv, (graft_tensor *[]){NULL, NULL, i64(3, sz)});
    kt_set_string(k, "mode", "cubic");
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_OK);
    assert_int_equal(kt_forward(k), GRAFT_OK);
    assert_true(fabsf(graft_tensor_f32(k->out[0])[3] - 2.296875f) < 1e-6f);
    assert_true(fabsf(graft_tensor_f32(k->out[0])[4] - 2.703125f) < 1e-6f);
    kt_node_free(k);
}

/* tf_crop_and_resize: roi [0.25, 1.25] of X = [0, 10, 20, 30, 40] (in - 1 = 4):
 * x = 1 + 2j for 3 outputs -> 10, 30, then 5 > 4 is outside -> extrapolation. */
static void test_resize_crop(void **state)
{
    (void)state;
    static const int64_t xd[] = {1, 5}, sz[] = {1, 3};
    static const float xv[] = {0, 10, 20, 30, 40}, roi[] = {0, 0.25f, 1, 1.25f};
    kt_node *k = make("Resize", 13, 4, 2, xd, xv,
                      (graft_tensor *[]){f32(4, roi), NULL, i64(2, sz)});
    kt_set_string(k, "mode", "linear");
    kt_set_string(k, "coordinate_transformation_mode", "tf_crop_and_resize");
    kt_set_float(k, "extrapolation_value", -7.0f);
    run_expect(k, 2, sz, (const float[]){10, 30, -7});
    uint64_t rng = 5;
    assert_int_equal(kt_grad_check(k, 0, 1e-2, 1e-3, 1e-3, 100, &rng), 0);
    kt_node_free(k);
    /* with scales the roi sizes the output: floor(5 * 1.0 * 0.6) = 3 */
    k = make("Resize", 13, 3, 2, xd, xv, (graft_tensor *[]){f32(4, roi), f32(2, (float[]){1, .6f})});
    kt_set_string(k, "mode", "linear");
    kt_set_string(k, "coordinate_transformation_mode", "tf_crop_and_resize");
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_OK);
    assert_int_equal(k->out[0]->dims[1], 3);
    kt_node_free(k);
}

/* Resize-18 axes and keep_aspect_ratio_policy on X [1, 1, 4, 6]. */
static void test_resize_axes_aspect(void **state)
{
    (void)state;
    static const int64_t xd[] = {1, 1, 4, 6};
    struct {
        const char *policy;
        int64_t sizes[2], h, w;
    } cases[] = {
        {"stretch", {2, 2}, 2, 2},
        {"not_larger", {2, 2}, 1, 2},   /* scale min(.5, .333) -> round(1.33), round(2) */
        {"not_smaller", {2, 2}, 2, 3},  /* scale .5 -> 2, 3 */
        {"not_larger", {8, 100}, 8, 12},
    };
    uint64_t rng = 77;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kt_node *k = make("Resize", 18, 4, 4, xd, NULL,
                          (graft_tensor *[]){NULL, NULL, i64(2, cases[i].sizes)});
        kt_fill(graft_tensor_f32(k->in[0]), 24, &rng);
        kt_set_ints(k, "axes", 2, (const int64_t[]){-2, 3});
        kt_set_string(k, "mode", "linear");
        kt_set_string(k, "keep_aspect_ratio_policy", cases[i].policy);
        assert_int_equal(kt_parse(k), GRAFT_OK);
        assert_int_equal(kt_infer(k), GRAFT_OK);
        assert_int_equal(k->out[0]->dims[0], 1);
        assert_int_equal(k->out[0]->dims[1], 1);
        assert_int_equal(k->out[0]->dims[2], cases[i].h);
        assert_int_equal(k->out[0]->dims[3], cases[i].w);
        assert_int_equal(kt_grad_check(k, 0, 1e-2, 1e-3, 1e-3, 24, &rng), 0);
        kt_node_free(k);
    }
    /* scales over axes [2, 3] equal scales over all four */
    kt_node *a = make("Resize", 18, 3, 4, x23, xv23,
                      (graft_tensor *[]){NULL, f32(2, (float[]){2, 2})});
    kt_set_ints(a, "axes", 2, (const int64_t[]){2, 3});
    kt_set_string(a, "mode", "linear");
    kt_set_string(a, "coordinate_transformation_mode", "asymmetric");
    run_expect(a, 4, y46,
               (const float[]){1, 1.5f, 2, 3, 4, 4, 2, 3.25f, 4.5f, 4.5f, 4.5f, 4.5f,
                               3, 5,    7, 6, 5, 5, 3, 5,     7,    6,    5,    5});
    kt_node_free(a);
}

static void test_resize_infer_errors(void **state)
{
    (void)state;
    /* scales not known at build time: unsupported, naming the node */
    kt_node *k = make("Resize", 13, 3, 4, x23, xv23,
                      (graft_tensor *[]){NULL, shape_only(GRAFT_FLOAT, 4)});
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_ERR_UNSUPPORTED);
    assert_non_null(strstr(k->err.msg, "test_node"));
    assert_non_null(strstr(k->err.msg, "scales"));
    kt_node_free(k);
    /* the same for Upsample-9 */
    k = make("Upsample", 9, 2, 4, x23, xv23, (graft_tensor *[]){shape_only(GRAFT_FLOAT, 4)});
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_ERR_UNSUPPORTED);
    assert_non_null(strstr(k->err.msg, "Upsample node 'test_node'"));
    kt_node_free(k);
    struct {
        graft_tensor *scales, *sizes;
        const char *attr, *value;
        graft_status parse, infer;
    } cases[] = {
        {f32(4, s22), i64(4, (int64_t[]){1, 1, 4, 6}), NULL, NULL, GRAFT_OK, GRAFT_ERR_INVALID},
        {NULL, NULL, NULL, NULL, GRAFT_OK, GRAFT_ERR_INVALID},
        {f32(3, s22), NULL, NULL, NULL, GRAFT_OK, GRAFT_ERR_INVALID},
        {f32(4, (float[]){1, 1, 0, 2}), NULL, NULL, NULL, GRAFT_OK, GRAFT_ERR_INVALID},
        {NULL, i64(4, (int64_t[]){1, 1, -4, 6}), NULL, NULL, GRAFT_OK, GRAFT_ERR_INVALID},
        {f32(4, s22), NULL, "mode", "bicubic", GRAFT_ERR_INVALID, GRAFT_OK},
        {f32(4, s22), NULL, "coordinate_transformation_mode", "corners", GRAFT_ERR_INVALID,
         GRAFT_OK},
        {f32(4, (float[]){1, 1, .5f, .5f}), NULL, "antialias", "1", GRAFT_OK,
         GRAFT_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        k = make("Resize", 18, 4, 4, x23, xv23,
                 (graft_tensor *[]){NULL, cases[i].scales, cases[i].sizes});
        if (cases[i].attr && !strcmp(cases[i].attr, "antialias")) {
            kt_set_int(k, "antialias", 1);
            kt_set_string(k, "mode", "linear");
        } else if (cases[i].attr) {
            kt_set_string(k, cases[i].attr, cases[i].value);
        }
        graft_status st = kt_parse(k);
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
    /* a symbolic batch passes through; uint8 X is refused cleanly */
    k = make("Resize", 13, 3, 4, x23, NULL, (graft_tensor *[]){NULL, f32(4, s22)});
    kt_set_input_shape(k, 0, GRAFT_FLOAT, 4, (const int64_t[]){-1, 3, 5, 5});
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_OK);
    assert_int_equal(k->out[0]->dims[0], -1);
    assert_int_equal(k->out[0]->dims[3], 10);
    kt_set_input_shape(k, 0, GRAFT_UINT8, 4, (const int64_t[]){1, 3, 5, 5});
    assert_int_equal(kt_infer(k), GRAFT_ERR_UNSUPPORTED);
    kt_node_free(k);
}

/* Backward against central differences: every mode, 3-D to 5-D, up and down,
 * through the plan's scratch (kt) and through malloc (lt). */
static void test_resize_backward(void **state)
{
    (void)state;
    static const char *modes[] = {"nearest", "linear", "cubic"};
    static const char *coords[] = {"half_pixel", "align_corners", "asymmetric",
                                   "pytorch_half_pixel", "half_pixel_symmetric"};
    uint64_t rng = 4242;
    for (int it = 0; it < 60; it++) {
        int rank = 3 + it % 3;
        int64_t xd[5], sizes[5];
        for (int a = 0; a < rank; a++) {
            xd[a] = a < 2 ? kt_randint(&rng, 1, 2) : kt_randint(&rng, 1, 5);
            sizes[a] = a < 2 ? xd[a] : kt_randint(&rng, 1, 8);
        }
        kt_node *k = make("Resize", 19, 4, rank, xd, NULL,
                          (graft_tensor *[]){NULL, NULL, i64(rank, sizes)});
        kt_fill(graft_tensor_f32(k->in[0]), graft_tensor_nelem(k->in[0]), &rng);
        kt_set_string(k, "mode", modes[it % 3]);
        kt_set_string(k, "coordinate_transformation_mode", coords[(it / 3) % 5]);
        if (it % 7 == 0)
            kt_set_int(k, "exclude_outside", 1);
        assert_int_equal(kt_parse(k), GRAFT_OK);
        assert_int_equal(kt_infer(k), GRAFT_OK);
        int bad = kt_grad_check(k, 0, 1e-2, 1e-3, 1e-3, 60, &rng);
        if (bad)
            printf("it %d: %s %s rank %d\n", it, modes[it % 3], coords[(it / 3) % 5], rank);
        assert_int_equal(bad, 0);
        kt_node_free(k);
    }
    /* Upsample-9 linear through lt (no scratch: the malloc path) */
    graft_graph *g = lt_graph(9);
    int32_t node = lt_node(g, "Upsample", 2, 0, 1);
    assert_int_equal(graft_node_set_string(g, node, "mode", "linear", NULL), GRAFT_OK);
    graft_tensor *in[2] = {lt_tensor_rand(4, (const int64_t[]){2, 2, 3, 4}, 3, -1, 1),
                           f32(4, (float[]){1, 1, 2, 1.5f})};
    assert_true(lt_gradcheck(g, node, 2, in, 1, 1e-2, 1e-3, false) < 1e-3);
    graft_tensor_destroy(in[0]);
    graft_tensor_destroy(in[1]);
    graft_graph_destroy(g);
}

static void test_resize_onnx_node_data(void **state)
{
    (void)state;
    DIR *d = opendir(NODE_DIR);
    if (!d)
        skip();
    static const char *const ops[] = {"Resize", "Upsample", NULL};
    int n_pass = 0, n_fail = 0, n_unsup = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        if (strncmp(nm, "test_resize_", 12) && strncmp(nm, "test_upsample_", 14))
            continue;
        char msg[1400];
        int r = lt_onnx_node_test(nm, ops, msg, sizeof msg);
        if (r == -2) { /* the first node is not ours: a multi-node model */
            char dir[1200];
            snprintf(dir, sizeof dir, "%s/%s", NODE_DIR, nm);
            r = lt_onnx_model_dir(dir);
        }
        else if (r == 0)
            printf("FAIL %s\n", msg);
        else if (r == -1)
            printf("unsupported %s\n", msg);
        n_pass += r == 1;
        n_fail += r == 0;
        n_unsup += r == -1;
    }
    closedir(d);
    printf("ONNX Resize/Upsample node tests: %d pass, %d fail, %d unsupported\n", n_pass, n_fail,
           n_unsup);
    assert_int_equal(n_fail, 0);
    if (n_pass + n_unsup == 0)
        skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upsample9_e04a),
        cmocka_unit_test(test_resize13_e04c),
        cmocka_unit_test(test_resize_coordinate_modes),
        cmocka_unit_test(test_resize_crop),
        cmocka_unit_test(test_resize_axes_aspect),
        cmocka_unit_test(test_resize_infer_errors),
        cmocka_unit_test(test_resize_backward),
        cmocka_unit_test(test_resize_onnx_node_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
