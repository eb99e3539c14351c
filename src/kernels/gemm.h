/* kernels/gemm.h - single-precision matrix multiply on BLIS.
 *
 *   C = alpha * A·B + beta * C, with A m×k, B k×n, C m×n, each given by a row
 *   stride and a column stride (element units), so a transposed operand is
 *   the same pointer with its strides swapped. n_threads is per call (<= 0: 2).
 *   beta == 0 never reads C (NaN in C is overwritten).
 */
#ifndef GRAFT_KERNELS_GEMM_H
#define GRAFT_KERNELS_GEMM_H

#include <stdbool.h>
#include <stdint.h>

/* Bytes of slack after every buffer a GEMM may read: BLIS 0.9 (Debian 12)
 * reads one element past the end of some operands, which valgrind reports
 * even for a plain bli_sgemm on exact-size mallocs. */
#define GRAFT_BLAS_SLACK 64

void graft__sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t rsa,
                  int64_t csa, const float *b, int64_t rsb, int64_t csb, float beta, float *c,
                  int64_t rsc, int64_t csc, int n_threads);

/* Row-major convenience: op(A) is m×k, op(B) is k×n; lda/ldb/ldc are the row
 * lengths of the matrices as stored. */
static inline void graft__sgemm_rm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                                   float alpha, const float *a, int64_t lda, const float *b,
                                   int64_t ldb, float beta, float *c, int64_t ldc, int n_threads)
{
    graft__sgemm(m, n, k, alpha, a, trans_a ? 1 : lda, trans_a ? lda : 1, b, trans_b ? 1 : ldb,
                 trans_b ? ldb : 1, beta, c, ldc, 1, n_threads);
}

#endif
