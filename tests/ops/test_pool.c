/* tests/ops/test_pool.c - MaxPool, AveragePool, GlobalAveragePool and
 * GlobalMaxPool: infer on good and bad shapes, forward against a naive
 * reference (strides, dilations, explicit/auto pads, ceil_mode,
 * count_include_pad, 1-3 spatial axes), backward against central
 * differences, and the ONNX node test data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_util.h"
#include "testutil.h"

typedef struct ref_pool {
    int nsp, auto_pad; /* 0 NOTSET 1 SAME_UPPER 2 SAME_LOWER 3 VALID */
    bool max, ceil, include_pad;
    int64_t n, c, in[3], k[3], s[3], d[3], pb[3], pe[3], out[3];
} ref_pool;

static const char *auto_pad_names[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};

static void random_pool(uint64_t *rng, ref_pool *r, int nsp, bool max)
{
    memset(r, 0, sizeof *r);
    r->nsp = nsp;
    r->max = max;
    r->n = kt_randint(rng, 1, 2);
    r->c = kt_randint(rng, 1, 3);
    r->auto_pad = kt_randint(rng, 0, 3);
    r->ceil = r->auto_pad == 0 && kt_randint(rng, 0, 1);
    r->include_pad = kt_randint(rng, 0, 1);
    for (int i = 0; i < nsp; i++) {
        r->in[i] = kt_randint(rng, 1, nsp == 3 ? 6 : 10);
        r->k[i] = kt_randint(rng, 1, 3);
        r->s[i] = kt_randint(rng, 1, 3);
        r->d[i] = kt_randint(rng, 1, 2);
        int64_t ek = (r->k[i] - 1) * r->d[i] + 1;
        if (r->auto_pad == 0) {
            /* pads smaller than the kernel so every window touches the input */
            r->pb[i] = kt_randint(rng, 0, (int)r->k[i] - 1);
            r->pe[i] = kt_randint(rng, 0, (int)r->k[i] - 1);
            if (r->in[i] < ek)
                r->in[i] = ek;
            int64_t span = r->in[i] + r->pb[i] + r->pe[i] - ek;
            if (r->ceil) {
                r->out[i] = (span + r->s[i] - 1) / r->s[i] + 1;
                if ((r->out[i] - 1) * r->s[i] >= r->in[i] + r->pb[i])
                    r->out[i]--;
            } else {
                r->out[i] = span / r->s[i] + 1;
            }
        } else if (r->auto_pad == 3) {
            if (r->in[i] < ek)
                r->in[i] = ek;
            r->out[i] = (r->in[i] - ek) / r->s[i] + 1;
        } else {
            /* keep the total pad below the kernel extent */
            if (r->in[i] < ek)
                r->in[i] = ek;
            r->out[i] = (r->in[i] + r->s[i] - 1) / r->s[i];
            int64_t total = (r->out[i] - 1) * r->s[i] + ek - r->in[i];
            if (total < 0)
                total = 0;
            r->pb[i] = r->auto_pad == 1 ? total / 2 : total - total / 2;
            r->pe[i] = total - r->pb[i];
        }
    }
}

static void ref_pool_forward(const ref_pool *r, const float *x, float *y)
{
    int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1};
    int64_t pb[3] = {0}, pe[3] = {0}, out[3] = {1, 1, 1};
    for (int i = 0; i < r->nsp; i++) {
        int j = 3 - r->nsp + i;
        in[j] = r->in[i], k[j] = r->k[i], s[j] = r->s[i], d[j] = r->d[i];
        pb[j] = r->pb[i], pe[j] = r->pe[i], out[j] = r->out[i];
    }
    int64_t yi = 0, plane = in[0] * in[1] * in[2];
    for (int64_t p = 0; p < r->n * r->c; p++)
        for (int64_t oz = 0; oz < out[0]; oz++)
            for (int64_t oy = 0; oy < out[1]; oy++)
                for (int64_t ox = 0; ox < out[2]; ox++) {
                    double acc = r->max ? -INFINITY : 0.0;
                    int64_t cnt = 0, cnt_pad = 0;
                    for (int64_t kz = 0; kz < k[0]; kz++)
                        for (int64_t ky = 0; ky < k[1]; ky++)
                            for (int64_t kx = 0; kx < k[2]; kx++) {
                                int64_t iz = oz * s[0] - pb[0] + kz * d[0];
                                int64_t iy = oy * s[1] - pb[1] + ky * d[1];
                                int64_t ix = ox * s[2] - pb[2] + kx * d[2];
                                bool inpad = iz < in[0] + pe[0] && iy < in[1] + pe[1] &&
                                             ix < in[2] + pe[2];
                                cnt_pad += inpad;
                                if (iz < 0 || iz >= in[0] || iy < 0 || iy >= in[1] || ix < 0 ||
                                    ix >= in[2])
                                    continue;
                                double v = x[p * plane + (iz * in[1] + iy) * in[2] + ix];
                                cnt++;
                                if (r->max)
                                    acc = v > acc ? v : acc;
                                else
                                    acc += v;
                            }
                    if (!r->max)
                        acc /= (double)(r->include_pad ? cnt_pad : cnt);
                    y[yi++] = (float)acc;
                }
}

static kt_node *make_pool(const ref_pool *r, uint64_t *rng)
{
    kt_node *k = kt_node_new(r->max ? "MaxPool" : "AveragePool", "", 12, 1, 1);
    int64_t ks[3], ss[3], ds[3], ps[6], xd[5] = {r->n, r->c};
    for (int i = 0; i < r->nsp; i++) {
        ks[i] = r->k[i], ss[i] = r->s[i], ds[i] = r->d[i];
        ps[i] = r->pb[i], ps[i + r->nsp] = r->pe[i];
        xd[2 + i] = r->in[i];
    }
    kt_set_ints(k, "kernel_shape", r->nsp, ks);
    kt_set_ints(k, "strides", r->nsp, ss);
    kt_set_ints(k, "dilations", r->nsp, ds);
    if (r->auto_pad == 0)
        kt_set_ints(k, "pads", 2 * r->nsp, ps);
    else
        kt_set_string(k, "auto_pad", auto_pad_names[r->auto_pad]);
    kt_set_int(k, "ceil_mode", r->ceil);
    if (!r->max)
        kt_set_int(k, "count_include_pad", r->include_pad);
    graft_tensor *x = kt_set_input(k, 0, r->nsp + 2, xd, rng);
    /* distinct values (a shuffled ramp) so max-pool gradients have no ties */
    float *xv = graft_tensor_f32(x);
    int64_t n = graft_tensor_nelem(x);
    for (int64_t i = 0; i < n; i++)
        xv[i] = (float)i * 0.05f - (float)n * 0.025f;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(kt_rand(rng) % (uint64_t)(i + 1));
        float t = xv[i];
        xv[i] = xv[j];
        xv[j] = t;
    }
    return k;
}

static void test_pool_forward_backward(void **state)
{
    (void)state;
    uint64_t rng = 31337;
    for (int it = 0; it < 800; it++) {
        ref_pool r;
        random_pool(&rng, &r, 1 + it % 3, (it / 3) % 2 == 0);
        kt_node *k = make_pool(&r, &rng);
        assert_int_equal(kt_parse(k), GRAFT_OK);
        graft_status st = kt_infer(k);
        if (st != GRAFT_OK)
            printf("%s\n", k->err.msg);
        assert_int_equal(st, GRAFT_OK);
        for (int i = 0; i < r.nsp; i++)
            assert_int_equal(k->out[0]->dims[2 + i], r.out[i]);
        assert_int_equal(kt_forward(k), GRAFT_OK);
        int64_t n = graft_tensor_nelem(k->out[0]);
        float *ref = malloc((size_t)n * sizeof *ref);
        ref_pool_forward(&r, graft_tensor_f32(k->in[0]), ref);
        double e = kt_close(graft_tensor_f32(k->out[0]), ref, n, 1e-5, 1e-5);
        if (e > 1)
            printf("pool mismatch it %d max %d nsp %d ceil %d incl %d auto %d\n", it, r.max, r.nsp,
                   r.ceil, r.include_pad, r.auto_pad);
        assert_true(e <= 1.0);
        free(ref);
        if (it % 4 == 0)
            assert_int_equal(kt_grad_check(k, 0, 1e-2, 1e-3, 1e-3, 80, &rng), 0);
        kt_node_free(k);
    }
}

static void test_maxpool_indices(void **state)
{
    (void)state;
    uint64_t rng = 8;
    kt_node *k = kt_node_new("MaxPool", "", 12, 1, 2);
    kt_set_ints(k, "kernel_shape", 2, (int64_t[]){2, 2});
    kt_set_ints(k, "strides", 2, (int64_t[]){2, 2});
    int64_t xd[] = {2, 3, 4, 4};
    kt_set_input(k, 0, 4, xd, &rng);
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_OK);
    assert_int_equal(k->out[1]->dtype, GRAFT_INT64);
    assert_int_equal(kt_forward(k), GRAFT_OK);
    const float *x = graft_tensor_f32(k->in[0]), *y = graft_tensor_f32(k->out[0]);
    const int64_t *idx = graft_tensor_i64(k->out[1]);
    for (int64_t i = 0; i < graft_tensor_nelem(k->out[0]); i++)
        assert_true(x[idx[i]] == y[i]);
    kt_node_free(k);
}

/* Integer MaxPool (ONNX's int8/uint8, computed as int64), by hand: X =
 * [[1,9,2],[7,3,8],[4,6,B]] with B = 2^40 (a float path would round it), a
 * 2x2 window, stride 1, pads 1 at the end: windows {1,9,7,3}=9 at 1,
 * {9,2,3,8}=9 at 1, {2,8}=8 at 5, {7,3,4,6}=7 at 3, {3,8,6,B}=B at 8,
 * {8,B}=B, {4,6}=6 at 7, {6,B}=B, {B}=B. */
static void test_maxpool_int(void **state)
{
    (void)state;
    kt_node *k = kt_node_new("MaxPool", "", 12, 1, 2);
    kt_set_ints(k, "kernel_shape", 2, (int64_t[]){2, 2});
    kt_set_ints(k, "pads", 4, (int64_t[]){0, 0, 1, 1});
    int64_t xd[] = {1, 1, 3, 3};
    graft_tensor *x = NULL;
    graft_error err = {0};
    assert_int_equal(graft_tensor_create(GRAFT_INT64, 4, xd, &x, &err), GRAFT_OK);
    const int64_t xv[9] = {1, 9, 2, 7, 3, 8, 4, 6, (int64_t)1 << 40};
    memcpy(x->data, xv, sizeof xv);
    kt_set_input_tensor(k, 0, x);
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_OK);
    assert_int_equal(k->out[0]->dtype, GRAFT_INT64);
    assert_int_equal(kt_forward(k), GRAFT_OK);
    const int64_t big = (int64_t)1 << 40;
    const int64_t want[9] = {9, 9, 8, 7, big, big, 6, big, big};
    const int64_t want_idx[9] = {1, 1, 5, 3, 8, 8, 7, 8, 8};
    assert_memory_equal(k->out[0]->data, want, sizeof want);
    assert_memory_equal(k->out[1]->data, want_idx, sizeof want_idx);
    kt_node_free(k);

    /* AveragePool of integers is not ONNX: refused cleanly */
    k = kt_node_new("AveragePool", "", 19, 1, 1);
    kt_set_ints(k, "kernel_shape", 2, (int64_t[]){2, 2});
    assert_int_equal(graft_tensor_create(GRAFT_INT64, 4, xd, &x, &err), GRAFT_OK);
    kt_set_input_tensor(k, 0, x);
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_ERR_UNSUPPORTED);
    kt_node_free(k);
}

static void test_global_pools(void **state)
{
    (void)state;
    uint64_t rng = 2024;
    for (int rank = 3; rank <= 5; rank++)
        for (int mx = 0; mx < 2; mx++) {
            kt_node *k = kt_node_new(mx ? "GlobalMaxPool" : "GlobalAveragePool", "", 13, 1, 1);
            int64_t xd[5] = {2, 3, 4, 5, 3};
            kt_set_input(k, 0, rank, xd, &rng);
            assert_int_equal(kt_parse(k), GRAFT_OK);
            assert_int_equal(kt_infer(k), GRAFT_OK);
            assert_int_equal(k->out[0]->rank, rank);
            for (int i = 2; i < rank; i++)
                assert_int_equal(k->out[0]->dims[i], 1);
            assert_int_equal(kt_forward(k), GRAFT_OK);
            int64_t hw = 1;
            for (int i = 2; i < rank; i++)
                hw *= xd[i];
            const float *x = graft_tensor_f32(k->in[0]), *y = graft_tensor_f32(k->out[0]);
            for (int64_t p = 0; p < 6; p++) {
                double acc = mx ? -INFINITY : 0;
                for (int64_t i = 0; i < hw; i++)
                    acc = mx ? fmax(acc, x[p * hw + i]) : acc + x[p * hw + i];
                if (!mx)
                    acc /= (double)hw;
                assert_true(fabs(acc - y[p]) < 1e-5);
            }
            assert_int_equal(kt_grad_check(k, 0, 1e-3, 1e-3, 1e-3, 100, &rng), 0);
            kt_node_free(k);
        }
}

static void test_pool_infer(void **state)
{
    (void)state;
    int64_t x4[] = {1, 2, 5, 5}, xs[] = {-1, 2, 5, 5}, x2[] = {3, 4};
    /* kernel_shape missing: parse error */
    kt_node *k = kt_node_new("MaxPool", "", 12, 1, 1);
    assert_int_equal(kt_parse(k), GRAFT_ERR_INVALID);
    kt_node_free(k);
    /* kernel_shape length wrong, pads length wrong, kernel too large, rank 2 */
    struct { int nk, np; int64_t kv; const int64_t *x; int xr; graft_status want; } cases[] = {
        {1, -1, 2, x4, 4, GRAFT_ERR_INVALID}, {2, 2, 2, x4, 4, GRAFT_ERR_INVALID},
        {2, -1, 7, x4, 4, GRAFT_ERR_SHAPE},   {2, -1, 2, x2, 2, GRAFT_ERR_INVALID},
        {2, 4, 2, xs, 4, GRAFT_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        k = kt_node_new(i % 2 ? "AveragePool" : "MaxPool", "", 12, 1, 1);
        int64_t kv[2] = {cases[i].kv, cases[i].kv};
        kt_set_ints(k, "kernel_shape", cases[i].nk, kv);
        if (cases[i].np >= 0)
            kt_set_ints(k, "pads", cases[i].np, (int64_t[4]){1, 1, 1, 1});
        kt_set_input_shape(k, 0, GRAFT_FLOAT, cases[i].xr, cases[i].x);
        assert_int_equal(kt_parse(k), GRAFT_OK);
        assert_int_equal(kt_infer(k), cases[i].want);
        if (cases[i].want == GRAFT_OK) {
            assert_int_equal(k->out[0]->dims[0], -1);
            assert_int_equal(k->out[0]->dims[2], 6);
        } else {
            assert_non_null(strstr(k->err.msg, "test_node"));
        }
        kt_node_free(k);
    }
    /* uint8 input: unsupported, cleanly */
    k = kt_node_new("MaxPool", "", 12, 1, 1);
    kt_set_ints(k, "kernel_shape", 2, (int64_t[]){2, 2});
    kt_set_input_shape(k, 0, GRAFT_UINT8, 4, x4);
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_ERR_UNSUPPORTED);
    kt_node_free(k);
    k = kt_node_new("GlobalAveragePool", "", 12, 1, 1);
    kt_set_input_shape(k, 0, GRAFT_FLOAT, 2, x2);
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_ERR_INVALID);
    kt_node_free(k);
}

static void test_pool_onnx_node_data(void **state)
{
    (void)state;
    static const char *const prefixes[] = {"test_maxpool_", "test_averagepool_", "test_globalaveragepool",
                                           "test_globalmaxpool"};
    int n = kt_run_onnx_tests(prefixes, 4, NULL);
    printf("ran %d ONNX pooling node tests\n", n);
    if (n == 0)
        skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_infer),
        cmocka_unit_test(test_pool_forward_backward),
        cmocka_unit_test(test_maxpool_indices),
        cmocka_unit_test(test_maxpool_int),
        cmocka_unit_test(test_global_pools),
        cmocka_unit_test(test_pool_onnx_node_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
