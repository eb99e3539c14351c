/* tests/ops/test_gemm.c - Gemm and MatMul: infer on good and bad shapes,
 * forward against a naive double reference (transposes, alpha/beta, every C
 * broadcast form; numpy matmul with 1-D operands and broadcast batches),
 * backward against central differences, and the ONNX node test data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_util.h"
#include "testutil.h"

/* C forms: 0 none, 1 rank 0, 2 [1], 3 [N], 4 [1,N], 5 [M,1], 6 [M,N] */
static int c_shape(int form, int64_t m, int64_t n, int64_t *dims)
{
    switch (form) {
    case 1: return 0;
    case 2: dims[0] = 1; return 1;
    case 3: dims[0] = n; return 1;
    case 4: dims[0] = 1, dims[1] = n; return 2;
    case 5: dims[0] = m, dims[1] = 1; return 2;
    default: dims[0] = m, dims[1] = n; return 2;
    }
}

static kt_node *make_gemm(int64_t m, int64_t n, int64_t k, int ta, int tb, float alpha,
                          float beta, int cform, uint64_t *rng)
{
    kt_node *kn = kt_node_new("Gemm", "", 13, cform ? 3 : 2, 1);
    kt_set_int(kn, "transA", ta);
    kt_set_int(kn, "transB", tb);
    kt_set_float(kn, "alpha", alpha);
    kt_set_float(kn, "beta", beta);
    int64_t ad[2] = {ta ? k : m, ta ? m : k}, bd[2] = {tb ? n : k, tb ? k : n}, cd[2];
    kt_set_input(kn, 0, 2, ad, rng);
    kt_set_input(kn, 1, 2, bd, rng);
    if (cform) {
        int r = c_shape(cform, m, n, cd);
        kt_set_input(kn, 2, r, cd, rng);
    }
    return kn;
}

static void test_gemm_forward(void **state)
{
    (void)state;
    uint64_t rng = 99;
    for (int it = 0; it < 400; it++) {
        int64_t m = kt_randint(&rng, 1, it % 10 == 0 ? 130 : 20);
        int64_t n = kt_randint(&rng, 1, it % 10 == 0 ? 140 : 20);
        int64_t k = kt_randint(&rng, 1, it % 10 == 0 ? 150 : 20);
        int ta = it & 1, tb = (it >> 1) & 1, cform = it % 7;
        float alpha = (float)(kt_uniform(&rng) * 2 - 0.5), beta = (float)(kt_uniform(&rng) * 2 - 1);
        if (it % 5 == 0)
            beta = 0.0f;
        kt_node *kn = make_gemm(m, n, k, ta, tb, alpha, beta, cform, &rng);
        assert_int_equal(kt_parse(kn), GRAFT_OK);
        assert_int_equal(kt_infer(kn), GRAFT_OK);
        assert_int_equal(kn->out[0]->rank, 2);
        assert_int_equal(kn->out[0]->dims[0], m);
        assert_int_equal(kn->out[0]->dims[1], n);
        /* NaN in the output buffer must not leak through beta = 0 */
        float *y = graft_tensor_f32(kn->out[0]);
        for (int64_t i = 0; i < m * n; i++)
            y[i] = NAN;
        assert_int_equal(kt_forward(kn), GRAFT_OK);
        const float *a = graft_tensor_f32(kn->in[0]), *b = graft_tensor_f32(kn->in[1]);
        const graft_tensor *tc = cform ? kn->in[2] : NULL;
        float *ref = malloc((size_t)(m * n) * sizeof *ref);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t p = 0; p < k; p++)
                    s += (double)a[ta ? p * m + i : i * k + p] * b[tb ? j * k + p : p * n + j];
                double cv = 0;
                if (tc) {
                    const float *cd = graft_tensor_f32(tc);
                    int64_t r0 = tc->rank == 2 ? tc->dims[0] : 1;
                    int64_t r1 = tc->rank >= 1 ? tc->dims[tc->rank - 1] : 1;
                    cv = cd[(r0 == 1 ? 0 : i) * r1 + (r1 == 1 ? 0 : j)];
                }
                ref[i * n + j] = (float)(alpha * s + beta * cv);
            }
        assert_true(kt_close(y, ref, m * n, 1e-5, 1e-4) <= 1.0);
        free(ref);
        kt_node_free(kn);
    }
}

static void test_gemm_backward(void **state)
{
    (void)state;
    uint64_t rng = 5;
    for (int it = 0; it < 56; it++) {
        int64_t m = kt_randint(&rng, 1, 9), n = kt_randint(&rng, 1, 9), k = kt_randint(&rng, 1, 9);
        int cform = 1 + it % 6;
        kt_node *kn = make_gemm(m, n, k, it & 1, (it >> 1) & 1, 0.7f, 1.3f, cform, &rng);
        assert_int_equal(kt_parse(kn), GRAFT_OK);
        assert_int_equal(kt_infer(kn), GRAFT_OK);
        for (int wrt = 0; wrt < 3; wrt++)
            assert_int_equal(kt_grad_check(kn, wrt, 1e-2, 1e-3, 1e-3, 100, &rng), 0);
        kt_node_free(kn);
    }
    /* larger, through BLIS with two threads */
    kt_node *kn = make_gemm(70, 90, 110, 1, 0, 1.0f, 1.0f, 3, &rng);
    assert_int_equal(kt_parse(kn), GRAFT_OK);
    assert_int_equal(kt_infer(kn), GRAFT_OK);
    for (int wrt = 0; wrt < 3; wrt++)
        assert_int_equal(kt_grad_check(kn, wrt, 1e-2, 2e-3, 2e-3, 50, &rng), 0);
    kt_node_free(kn);
}

static graft_status gemm_infer_shapes(int ra, const int64_t *ad, int rb, const int64_t *bd, int rc,
                                      const int64_t *cd, int tb, char *msg)
{
    kt_node *kn = kt_node_new("Gemm", "", 13, cd ? 3 : 2, 1);
    kt_set_int(kn, "transB", tb);
    kt_set_input_shape(kn, 0, GRAFT_FLOAT, ra, ad);
    kt_set_input_shape(kn, 1, GRAFT_FLOAT, rb, bd);
    if (cd)
        kt_set_input_shape(kn, 2, GRAFT_FLOAT, rc, cd);
    graft_status st = kt_parse(kn);
    if (st == GRAFT_OK)
        st = kt_infer(kn);
    snprintf(msg, 512, "%.500s", kn->err.msg);
    kt_node_free(kn);
    return st;
}

static void test_gemm_infer(void **state)
{
    (void)state;
    char msg[512];
    /* B12a: A[N,3] x B[3,1] = (N,1), C[1,4]: not unidirectionally broadcastable */
    int64_t a[] = {-1, 3}, b[] = {3, 1}, c14[] = {1, 4};
    assert_int_equal(gemm_infer_shapes(2, a, 2, b, 2, c14, 0, msg), GRAFT_ERR_SHAPE);
    assert_non_null(strstr(msg, "test_node"));
    /* B12b: 4-D A */
    int64_t a4[] = {1, 4, 3, 3}, b836[] = {8, 36}, c8[] = {8};
    assert_int_equal(gemm_infer_shapes(4, a4, 2, b836, 1, c8, 1, msg), GRAFT_ERR_INVALID);
    assert_non_null(strstr(msg, "A must be 2-D"));
    /* B05: rank-0 B, and transB out of range */
    assert_int_equal(gemm_infer_shapes(2, a, 0, b, 0, NULL, 0, msg), GRAFT_ERR_INVALID);
    assert_int_equal(gemm_infer_shapes(2, a, 2, b, 0, NULL, 823, msg), GRAFT_ERR_INVALID);
    /* inner dimension mismatch */
    int64_t b41[] = {4, 1};
    assert_int_equal(gemm_infer_shapes(2, a, 2, b41, 0, NULL, 0, msg), GRAFT_ERR_SHAPE);
    /* good: symbolic batch, C (1,N) */
    kt_node *kn = kt_node_new("Gemm", "", 13, 3, 1);
    kt_set_int(kn, "transB", 1);
    int64_t ad[] = {-1, 6}, bd[] = {5, 6}, cd[] = {1, 5};
    kt_set_input_shape(kn, 0, GRAFT_FLOAT, 2, ad);
    kt_set_input_shape(kn, 1, GRAFT_FLOAT, 2, bd);
    kt_set_input_shape(kn, 2, GRAFT_FLOAT, 2, cd);
    assert_int_equal(kt_parse(kn), GRAFT_OK);
    assert_int_equal(kt_infer(kn), GRAFT_OK);
    assert_int_equal(kn->out[0]->dims[0], -1);
    assert_int_equal(kn->out[0]->dims[1], 5);
    kt_node_free(kn);
    /* integer inputs are refused cleanly */
    kn = kt_node_new("Gemm", "", 13, 2, 1);
    kt_set_input_shape(kn, 0, GRAFT_INT64, 2, bd);
    kt_set_input_shape(kn, 1, GRAFT_FLOAT, 2, bd);
    assert_int_equal(kt_parse(kn), GRAFT_OK);
    assert_int_equal(kt_infer(kn), GRAFT_ERR_UNSUPPORTED);
    kt_node_free(kn);
}

/* numpy matmul reference in double */
static void ref_matmul(const graft_tensor *ta, const graft_tensor *tb, const graft_tensor *ty,
                       float *ref)
{
    int ra = ta->rank, rb = tb->rank;
    int64_t m = ra == 1 ? 1 : ta->dims[ra - 2], k = ta->dims[ra - 1];
    int64_t n = rb == 1 ? 1 : tb->dims[rb - 1];
    int na = ra > 2 ? ra - 2 : 0, nb = rb > 2 ? rb - 2 : 0;
    int nbo = na > nb ? na : nb;
    int64_t bdims[8], nbatch = 1;
    for (int i = 0; i < nbo; i++) {
        int ia = i - (nbo - na), ib = i - (nbo - nb);
        int64_t da = ia >= 0 ? ta->dims[ia] : 1, db = ib >= 0 ? tb->dims[ib] : 1;
        bdims[i] = da > db ? da : db;
        nbatch *= bdims[i];
    }
    (void)ty;
    const float *a = graft_tensor_f32(ta), *b = graft_tensor_f32(tb);
    for (int64_t bi = 0; bi < nbatch; bi++) {
        int64_t rem = bi, aoff = 0, boff = 0, astride = 1, bstride = 1;
        for (int i = nbo - 1; i >= 0; i--) {
            int64_t idx = rem % bdims[i];
            rem /= bdims[i];
            int ia = i - (nbo - na), ib = i - (nbo - nb);
            int64_t da = ia >= 0 ? ta->dims[ia] : 1, db = ib >= 0 ? tb->dims[ib] : 1;
            aoff += (da == 1 ? 0 : idx) * astride;
            boff += (db == 1 ? 0 : idx) * bstride;
            astride *= da;
            bstride *= db;
        }
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t p = 0; p < k; p++)
                    s += (double)a[aoff * m * k + i * k + p] * b[boff * k * n + p * n + j];
                ref[(bi * m + i) * n + j] = (float)s;
            }
    }
}

static kt_node *random_matmul(uint64_t *rng, int it)
{
    int64_t m = kt_randint(rng, 1, 7), n = kt_randint(rng, 1, 7), k = kt_randint(rng, 1, 7);
    int ra = kt_randint(rng, 1, 4), rb = kt_randint(rng, 1, 4);
    if (it % 9 == 0)
        rb = 2; /* shared weight: the folded path */
    int64_t ad[4], bd[4];
    int nbo = (ra > rb ? ra : rb) - 2;
    int64_t batch[4];
    for (int i = 0; i < 4; i++)
        batch[i] = kt_randint(rng, 1, 3);
    for (int i = 0; i < ra - 2; i++) {
        int oi = i + (nbo - (ra - 2));
        ad[i] = kt_uniform(rng) < 0.3 ? 1 : batch[oi];
    }
    for (int i = 0; i < rb - 2; i++) {
        int oi = i + (nbo - (rb - 2));
        bd[i] = kt_uniform(rng) < 0.3 ? 1 : batch[oi];
    }
    if (ra == 1)
        ad[0] = k;
    else
        ad[ra - 2] = m, ad[ra - 1] = k;
    if (rb == 1)
        bd[0] = k;
    else
        bd[rb - 2] = k, bd[rb - 1] = n;
    kt_node *kn = kt_node_new("MatMul", "", 13, 2, 1);
    kt_set_input(kn, 0, ra, ad, rng);
    kt_set_input(kn, 1, rb, bd, rng);
    return kn;
}

static void test_matmul_forward(void **state)
{
    (void)state;
    uint64_t rng = 1234;
    for (int it = 0; it < 500; it++) {
        kt_node *kn = random_matmul(&rng, it);
        assert_int_equal(kt_parse(kn), GRAFT_OK);
        graft_status st = kt_infer(kn);
        if (st != GRAFT_OK)
            printf("%s\n", kn->err.msg);
        assert_int_equal(st, GRAFT_OK);
        int ra = kn->in[0]->rank, rb = kn->in[1]->rank;
        int expect_rank = (ra > rb ? ra : rb) - (ra == 1) - (rb == 1);
        if (ra == 1 && rb == 1)
            expect_rank = 0;
        else if (ra == 1 || rb == 1)
            expect_rank = (ra > rb ? ra : rb) - 1;
        else
            expect_rank = ra > rb ? ra : rb;
        assert_int_equal(kn->out[0]->rank, expect_rank);
        assert_int_equal(kt_forward(kn), GRAFT_OK);
        int64_t n = graft_tensor_nelem(kn->out[0]);
        float *ref = malloc((size_t)n * sizeof *ref);
        ref_matmul(kn->in[0], kn->in[1], kn->out[0], ref);
        assert_true(kt_close(graft_tensor_f32(kn->out[0]), ref, n, 1e-5, 1e-4) <= 1.0);
        free(ref);
        kt_node_free(kn);
    }
}

static void test_matmul_backward(void **state)
{
    (void)state;
    uint64_t rng = 4321;
    for (int it = 0; it < 100; it++) {
        kt_node *kn = random_matmul(&rng, it);
        assert_int_equal(kt_parse(kn), GRAFT_OK);
        assert_int_equal(kt_infer(kn), GRAFT_OK);
        for (int wrt = 0; wrt < 2; wrt++)
            assert_int_equal(kt_grad_check(kn, wrt, 1e-2, 1e-3, 1e-3, 100, &rng), 0);
        kt_node_free(kn);
    }
}

static void test_matmul_infer(void **state)
{
    (void)state;
    int64_t a[] = {-1, 3, 4, 5}, b[] = {5, 6}, bad[] = {2, 6, 7}, a3[] = {3, 4, 5};
    kt_node *kn = kt_node_new("MatMul", "", 13, 2, 1);
    kt_set_input_shape(kn, 0, GRAFT_FLOAT, 4, a);
    kt_set_input_shape(kn, 1, GRAFT_FLOAT, 2, b);
    assert_int_equal(kt_parse(kn), GRAFT_OK);
    assert_int_equal(kt_infer(kn), GRAFT_OK);
    assert_int_equal(kn->out[0]->rank, 4);
    assert_int_equal(kn->out[0]->dims[0], -1);
    assert_int_equal(kn->out[0]->dims[3], 6);
    kt_node_free(kn);
    /* K mismatch and non-broadcastable batch */
    kn = kt_node_new("MatMul", "", 13, 2, 1);
    kt_set_input_shape(kn, 0, GRAFT_FLOAT, 3, a3);
    kt_set_input_shape(kn, 1, GRAFT_FLOAT, 3, bad);
    assert_int_equal(kt_parse(kn), GRAFT_OK);
    assert_int_equal(kt_infer(kn), GRAFT_ERR_SHAPE);
    kt_node_free(kn);
    int64_t bb[] = {2, 5, 7};
    kn = kt_node_new("MatMul", "", 13, 2, 1);
    kt_set_input_shape(kn, 0, GRAFT_FLOAT, 3, a3);
    kt_set_input_shape(kn, 1, GRAFT_FLOAT, 3, bb);
    assert_int_equal(kt_parse(kn), GRAFT_OK);
    assert_int_equal(kt_infer(kn), GRAFT_ERR_SHAPE);
    assert_non_null(strstr(kn->err.msg, "MatMul"));
    kt_node_free(kn);
    kn = kt_node_new("MatMul", "", 13, 2, 1);
    kt_set_input_shape(kn, 0, GRAFT_FLOAT, 0, a3);
    kt_set_input_shape(kn, 1, GRAFT_FLOAT, 3, bb);
    assert_int_equal(kt_parse(kn), GRAFT_OK);
    assert_int_equal(kt_infer(kn), GRAFT_ERR_INVALID);
    kt_node_free(kn);
}

static void test_gemm_onnx_node_data(void **state)
{
    (void)state;
    static const char *const prefixes[] = {"test_gemm_", "test_matmul_"};
    int n = kt_run_onnx_tests(prefixes, 2, "integer");
    printf("ran %d ONNX gemm/matmul node tests\n", n);
    if (n == 0)
        skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_infer),
        cmocka_unit_test(test_gemm_forward),
        cmocka_unit_test(test_gemm_backward),
        cmocka_unit_test(test_matmul_infer),
        cmocka_unit_test(test_matmul_forward),
        cmocka_unit_test(test_matmul_backward),
        cmocka_unit_test(test_gemm_onnx_node_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
