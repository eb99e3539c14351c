/* kernels/gemm.c - the only file that sees BLIS. The thread count travels with
 * each call in a runtime object (BLIS expert API), so no global BLIS state is
 * touched and concurrent plans with different thread counts do not interfere. */
#include "kernels/gemm.h"

#include <blis.h>

/* Below this many multiply-adds BLIS's thread start-up and barriers cost
 * more than the second core brings; vector-shaped products (m or n of 1)
 * are memory-bound and stay on one thread too. */
#define SGEMM_PARALLEL_MIN_FLOPS (1 << 20)

static void sgemm_naive(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t rsa,
                        int64_t csa, const float *b, int64_t rsb, int64_t csb, float beta, float *c,
                        int64_t rsc, int64_t csc)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float s = 0.0f;
            for (int64_t p = 0; p < k; p++)
                s += a[i * rsa + p * csa] * b[p * rsb + j * csb];
            float *cij = &c[i * rsc + j * csc];
            *cij = alpha * s + (beta == 0.0f ? 0.0f : beta * *cij);
        }
}

void graft__sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t rsa,
                  int64_t csa, const float *b, int64_t rsb, int64_t csb, float beta, float *c,
                  int64_t rsc, int64_t csc, int n_threads)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                float *cij = &c[i * rsc + j * csc];
                *cij = beta == 0.0f ? 0.0f : beta * *cij;
            }
        return;
    }
    /* A 1-wide operand has an arbitrary stride along its unit dimension; BLIS
     * insists on a proper one, so normalise. */
    if (m == 1) {
        rsa = k * csa;
        rsc = n * csc;
    }
    if (k == 1) {
        csa = m * rsa;
        rsb = n * csb;
    }
    if (n == 1) {
        csb = k * rsb;
        csc = m * rsc;
    }
    if (m * n * k < 512) {
        sgemm_naive(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
        return;
    }
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    int nt = n_threads > 0 ? n_threads : 2;
    if ((double)m * (double)n * (double)k < SGEMM_PARALLEL_MIN_FLOPS || m == 1 || n == 1)
        nt = 1;
    bli_rntm_set_num_threads(nt, &rntm);
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, (dim_t)m, (dim_t)n, (dim_t)k, &alpha,
                 (float *)a, (inc_t)rsa, (inc_t)csa, (float *)b, (inc_t)rsb, (inc_t)csb, &beta, c,
                 (inc_t)rsc, (inc_t)csc, NULL, &rntm);
}
