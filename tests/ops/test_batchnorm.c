/* tests/ops/test_batchnorm.c - BatchNormalization in inference form:
 * infer on good and bad shapes, forward against the formula in double,
 * training_mode=1 still using the stored statistics (B26/B27a), the old
 * spatial=0 form, backward w.r.t. X, scale and B against central differences
 * (mean/var untouched), and the ONNX node test data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_util.h"
#include "testutil.h"

static kt_node *make_bn(int rank, const int64_t *xd, int opset, float eps, bool training,
                        uint64_t *rng)
{
    kt_node *k = kt_node_new("BatchNormalization", "", opset, 5, training ? 3 : 1);
    if (eps > 0)
        kt_set_float(k, "epsilon", eps);
    if (training)
        kt_set_int(k, "training_mode", 1);
    int64_t c = xd[1];
    kt_set_input(k, 0, rank, xd, rng);
    for (int i = 1; i < 5; i++)
        kt_set_input(k, i, 1, &c, rng);
    float *var = graft_tensor_f32(k->in[4]);
    for (int64_t i = 0; i < c; i++)
        var[i] = 0.2f + fabsf(var[i]) * 2.0f;
    return k;
}

static void check_bn(kt_node *k, float eps)
{
    const graft_tensor *x = k->in[0];
    int64_t c = x->dims[1], hw = 1;
    for (int i = 2; i < x->rank; i++)
        hw *= x->dims[i];
    const float *xv = graft_tensor_f32(x), *s = graft_tensor_f32(k->in[1]);
    const float *b = graft_tensor_f32(k->in[2]), *mu = graft_tensor_f32(k->in[3]);
    const float *var = graft_tensor_f32(k->in[4]), *y = graft_tensor_f32(k->out[0]);
    int64_t n = graft_tensor_nelem(x);
    for (int64_t i = 0; i < n; i++) {
        int64_t ch = i / hw % c;
        double want = ((double)xv[i] - mu[ch]) / sqrt((double)var[ch] + eps) * s[ch] + b[ch];
        assert_true(fabs(want - y[i]) <= 1e-5 + 1e-5 * fabs(want));
    }
}

static void test_bn_forward_backward(void **state)
{
    (void)state;
    uint64_t rng = 77;
    int64_t shapes[][5] = {{2, 3}, {2, 4, 5}, {3, 5, 4, 3}, {1, 2, 3, 2, 2}, {2, 64, 7, 9}};
    int ranks[] = {2, 3, 4, 5, 4};
    int opsets[] = {7, 9, 14, 15, 15};
    for (int i = 0; i < 5; i++) {
        float eps = i % 2 ? 1e-3f : 0.0f;
        kt_node *k = make_bn(ranks[i], shapes[i], opsets[i], eps, false, &rng);
        assert_int_equal(kt_parse(k), GRAFT_OK);
        assert_int_equal(kt_infer(k), GRAFT_OK);
        assert_int_equal(kt_forward(k), GRAFT_OK);
        check_bn(k, eps > 0 ? eps : 1e-5f);
        for (int wrt = 0; wrt < 3; wrt++)
            assert_int_equal(kt_grad_check(k, wrt, 1e-2, 1e-3, 1e-3, 100, &rng), 0);
        /* mean and var get no gradient */
        graft_tensor *dmu = NULL, *dvar = NULL, *dy = NULL;
        graft_tensor_create(GRAFT_FLOAT, 1, &shapes[i][1], &dmu, NULL);
        graft_tensor_create(GRAFT_FLOAT, 1, &shapes[i][1], &dvar, NULL);
        graft_tensor_create(GRAFT_FLOAT, ranks[i], shapes[i], &dy, NULL);
        kt_fill(graft_tensor_f32(dy), graft_tensor_nelem(dy), &rng);
        graft_tensor *d_out[KT_MAX_IO] = {dy}, *d_in[KT_MAX_IO] = {NULL, NULL, NULL, dmu, dvar};
        assert_int_equal(kt_backward(k, d_out, d_in), GRAFT_OK);
        for (int64_t j = 0; j < shapes[i][1]; j++) {
            assert_true(graft_tensor_f32(dmu)[j] == 0.0f);
            assert_true(graft_tensor_f32(dvar)[j] == 0.0f);
        }
        graft_tensor_destroy(dmu);
        graft_tensor_destroy(dvar);
        graft_tensor_destroy(dy);
        kt_node_free(k);
    }
}

/* training_mode=1 in the file: the stored statistics are still used (never
 * batch statistics), and the running-stat outputs are the stored ones. */
static void test_bn_training_mode_uses_stored_stats(void **state)
{
    (void)state;
    uint64_t rng = 5;
    int64_t xd[] = {2, 4, 3, 3};
    kt_node *k = make_bn(4, xd, 15, 0.0f, true, &rng);
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_OK);
    assert_int_equal(k->out[1]->rank, 1);
    assert_int_equal(kt_forward(k), GRAFT_OK);
    check_bn(k, 1e-5f);
    assert_memory_equal(k->out[1]->data, k->in[3]->data, 4 * sizeof(float));
    assert_memory_equal(k->out[2]->data, k->in[4]->data, 4 * sizeof(float));
    /* batch 1 row equals the batch-2 row 0 result */
    kt_node *k1 = kt_node_new("BatchNormalization", "", 15, 5, 1);
    int64_t x1[] = {1, 4, 3, 3};
    kt_set_input(k1, 0, 4, x1, NULL);
    memcpy(k1->in[0]->data, k->in[0]->data, 36 * sizeof(float));
    for (int i = 1; i < 5; i++) {
        graft_tensor *t = NULL;
        graft_tensor_clone(k->in[i], &t, NULL);
        kt_set_input_tensor(k1, i, t);
    }
    assert_int_equal(kt_parse(k1), GRAFT_OK);
    assert_int_equal(kt_infer(k1), GRAFT_OK);
    assert_int_equal(kt_forward(k1), GRAFT_OK);
    assert_memory_equal(k1->out[0]->data, k->out[0]->data, 36 * sizeof(float));
    kt_node_free(k1);
    kt_node_free(k);
}

/* opset < 9 spatial=0: statistics per activation, shape C×H×W. */
static void test_bn_per_activation(void **state)
{
    (void)state;
    uint64_t rng = 6;
    kt_node *k = kt_node_new("BatchNormalization", "", 7, 5, 1);
    kt_set_int(k, "spatial", 0);
    int64_t xd[] = {2, 3, 2, 2}, pd[] = {3, 2, 2};
    kt_set_input(k, 0, 4, xd, &rng);
    for (int i = 1; i < 5; i++)
        kt_set_input(k, i, 3, pd, &rng);
    float *var = graft_tensor_f32(k->in[4]);
    for (int i = 0; i < 12; i++)
        var[i] = 0.5f + fabsf(var[i]);
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_OK);
    assert_int_equal(kt_forward(k), GRAFT_OK);
    const float *x = graft_tensor_f32(k->in[0]), *y = graft_tensor_f32(k->out[0]);
    const float *s = graft_tensor_f32(k->in[1]), *b = graft_tensor_f32(k->in[2]);
    const float *mu = graft_tensor_f32(k->in[3]);
    for (int i = 0; i < 24; i++) {
        int j = i % 12;
        double want = (x[i] - mu[j]) / sqrt(var[j] + 1e-5) * s[j] + b[j];
        assert_true(fabs(want - y[i]) < 1e-5);
    }
    for (int wrt = 0; wrt < 3; wrt++)
        assert_int_equal(kt_grad_check(k, wrt, 1e-2, 1e-3, 1e-3, 100, &rng), 0);
    kt_node_free(k);
}

static void test_bn_infer(void **state)
{
    (void)state;
    int64_t xd[] = {-1, 4, 5, 5}, c4[] = {4}, c3[] = {3};
    kt_node *k = kt_node_new("BatchNormalization", "", 15, 5, 1);
    kt_set_input_shape(k, 0, GRAFT_FLOAT, 4, xd);
    for (int i = 1; i < 5; i++)
        kt_set_input_shape(k, i, GRAFT_FLOAT, 1, c4);
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_OK);
    assert_int_equal(k->out[0]->dims[0], -1);
    assert_int_equal(k->out[0]->dims[1], 4);
    kt_set_input_shape(k, 3, GRAFT_FLOAT, 1, c3);
    assert_int_equal(kt_infer(k), GRAFT_ERR_SHAPE);
    assert_non_null(strstr(k->err.msg, "mean"));
    kt_node_free(k);
    k = kt_node_new("BatchNormalization", "", 15, 3, 1);
    kt_set_input_shape(k, 0, GRAFT_FLOAT, 4, xd);
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_ERR_INVALID);
    kt_node_free(k);
    k = kt_node_new("BatchNormalization", "", 15, 5, 1);
    kt_set_input_shape(k, 0, GRAFT_FLOAT, 1, c4);
    for (int i = 1; i < 5; i++)
        kt_set_input_shape(k, i, GRAFT_FLOAT, 1, c4);
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_ERR_INVALID);
    kt_node_free(k);
}

static void test_bn_onnx_node_data(void **state)
{
    (void)state;
    static const char *const prefixes[] = {"test_batchnorm_"};
    /* the *_training_mode cases expect batch statistics, which graft
     * deliberately never uses (frozen backbones) */
    int n = kt_run_onnx_tests(prefixes, 1, "training_mode");
    printf("ran %d ONNX batchnorm node tests\n", n);
    if (n == 0)
        skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bn_infer),
        cmocka_unit_test(test_bn_forward_backward),
        cmocka_unit_test(test_bn_training_mode_uses_stored_stats),
        cmocka_unit_test(test_bn_per_activation),
        cmocka_unit_test(test_bn_onnx_node_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
