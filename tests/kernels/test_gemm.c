/* tests/kernels/test_gemm.c - graft__sgemm checked without a reference BLAS:
 * for a random vector t, C·t must equal α·A·(B·t) + β·C₀·t (all in double),
 * over random sizes, every transpose (strides), general strides, 1 and 2
 * threads, and β = 0 never reading C. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/gemm.h"
#include "kernels_util.h"
#include "testutil.h"

static void check_one(uint64_t *rng, int64_t m, int64_t n, int64_t k, int ta, int tb, int tc,
                      float alpha, float beta, int nt)
{
    float *a = malloc((size_t)(m * k) * sizeof *a), *b = malloc((size_t)(k * n) * sizeof *b);
    float *c = malloc((size_t)(m * n) * sizeof *c), *c0 = malloc((size_t)(m * n) * sizeof *c0);
    kt_fill(a, m * k, rng);
    kt_fill(b, k * n, rng);
    kt_fill(c0, m * n, rng);
    for (int64_t i = 0; i < m * n; i++)
        c[i] = beta == 0.0f ? NAN : c0[i];
    /* A stored m×k row-major or k×m (transposed); likewise B and C */
    int64_t rsa = ta ? 1 : k, csa = ta ? m : 1, rsb = tb ? 1 : n, csb = tb ? k : 1;
    int64_t rsc = tc ? 1 : n, csc = tc ? m : 1;
    if (tc && beta != 0.0f) /* c0 is given row-major: store it transposed */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                c[i * rsc + j * csc] = c0[i * n + j];
    graft__sgemm(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, nt);
    double *t = malloc((size_t)n * sizeof *t), *bt = malloc((size_t)k * sizeof *bt);
    for (int64_t j = 0; j < n; j++)
        t[j] = 2.0 * kt_uniform(rng) - 1.0;
    for (int64_t p = 0; p < k; p++) {
        double s = 0;
        for (int64_t j = 0; j < n; j++)
            s += (double)b[p * rsb + j * csb] * t[j];
        bt[p] = s;
    }
    for (int64_t i = 0; i < m; i++) {
        double lhs = 0, rhs = 0, mag = 0;
        for (int64_t j = 0; j < n; j++) {
            lhs += (double)c[i * rsc + j * csc] * t[j];
            rhs += beta * (double)c0[i * n + j] * t[j];
            mag += fabs(beta * (double)c0[i * n + j] * t[j]);
        }
        for (int64_t p = 0; p < k; p++) {
            rhs += alpha * (double)a[i * rsa + p * csa] * bt[p];
            mag += fabs(alpha * (double)a[i * rsa + p * csa] * bt[p]);
        }
        if (!(fabs(lhs - rhs) <= 1e-5 * (mag + 1.0) * sqrt((double)k + 1.0))) {
            printf("sgemm m %lld n %lld k %lld ta %d tb %d tc %d beta %g nt %d: row %lld %g vs %g\n",
                   (long long)m, (long long)n, (long long)k, ta, tb, tc, beta, nt, (long long)i,
                   lhs, rhs);
            fail();
        }
    }
    free(a), free(b), free(c), free(c0), free(t), free(bt);
}

static void test_sgemm_random(void **state)
{
    (void)state;
    uint64_t rng = 42;
    for (int it = 0; it < 600; it++) {
        bool big = it % 25 == 0;
        int64_t m = kt_randint(&rng, 1, big ? 300 : 40), n = kt_randint(&rng, 1, big ? 300 : 40);
        int64_t k = kt_randint(&rng, 1, big ? 300 : 40);
        if (it % 50 == 1)
            k = 0; /* C = β·C */
        float alpha = (float)(kt_uniform(&rng) * 3 - 1), beta = it % 3 == 0 ? 0.0f : 0.7f;
        check_one(&rng, m, n, k, it & 1, (it >> 1) & 1, (it >> 2) & 1, alpha, beta,
                  1 + (it >> 3) % 2);
    }
}

static void test_sgemm_vectors(void **state)
{
    (void)state;
    uint64_t rng = 7;
    /* 1-wide operands, whose unit-dimension strides BLIS must not see raw */
    int64_t dims[][3] = {{1, 1, 1}, {1, 50, 70}, {60, 1, 80}, {70, 90, 1}, {1, 1, 300}, {300, 1, 1}};
    for (int i = 0; i < 6; i++)
        for (int tr = 0; tr < 8; tr++)
            check_one(&rng, dims[i][0], dims[i][1], dims[i][2], tr & 1, (tr >> 1) & 1,
                      (tr >> 2) & 1, 1.0f, tr % 2 ? 1.0f : 0.0f, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm_random),
        cmocka_unit_test(test_sgemm_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
