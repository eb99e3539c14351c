/* Vector exp / sigmoid / tanh for the light ops. libm's expf is scalar and
 * GCC will not if-convert the clamps of a branch-free expf under the default
 * -ftrapping-math, so the 8-wide body is written with AVX2/FMA intrinsics
 * (the library is built for x86-64-v3); the tail and non-AVX2 builds use the
 * scalar lu_expf / lu_tanhf, which compute the same polynomials. */
#include "ops/light_math.h"

#include "ops/light_util.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

static inline __m256 exp8(__m256 x)
{
    /* constant first: max/min return the second operand for NaN, so NaN
     * stays NaN */
    x = _mm256_max_ps(_mm256_set1_ps(-87.33654f), x);
    x = _mm256_min_ps(_mm256_set1_ps(88.37626f), x);
    __m256 fl = _mm256_floor_ps(
        _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_fnmadd_ps(fl, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(fl, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i k = _mm256_cvtps_epi32(fl);
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
}

static inline __m256 tanh8(__m256 x)
{
    const __m256 c = _mm256_set1_ps(7.99881172180175781f);
    __m256 xc = _mm256_min_ps(c, _mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), c), x));
    __m256 x2 = _mm256_mul_ps(xc, xc);
    __m256 p = _mm256_set1_ps(-2.76076847742355e-16f);
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.00018790482477e-13f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-8.60467152213735e-11f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(5.12229709037114e-08f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(1.48572235717979e-05f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(6.37261928875436e-04f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(4.89352455891786e-03f));
    p = _mm256_mul_ps(p, xc);
    __m256 q = _mm256_set1_ps(1.19825839466702e-06f);
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(1.18534705686654e-04f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(2.26843463243900e-03f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(4.89352518554385e-03f));
    __m256 t = _mm256_div_ps(p, q);
    __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    __m256 tiny = _mm256_cmp_ps(ax, _mm256_set1_ps(0.0004f), _CMP_LT_OQ);
    return _mm256_blendv_ps(t, x, tiny);
}
#define LM_VEC 8
#else
#define LM_VEC 0
#endif

void graft__vexp(const float *x, float *y, int64_t n)
{
    int64_t i = 0;
#if LM_VEC
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++)
        y[i] = lu_expf(x[i]);
}

float graft__vexp_shift_sum(const float *x, float shift, float *y, int64_t n)
{
    int64_t i = 0;
    float s = 0.0f;
#if LM_VEC
    __m256 acc = _mm256_setzero_ps(), sh = _mm256_set1_ps(shift);
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh));
        if (y)
            _mm256_storeu_ps(y + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, acc);
    for (int k = 0; k < 8; k++)
        s += lanes[k];
#endif
    for (; i < n; i++) {
        float e = lu_expf(x[i] - shift);
        if (y)
            y[i] = e;
        s += e;
    }
    return s;
}

void graft__vsigmoid(const float *x, float *y, int64_t n)
{
    int64_t i = 0;
#if LM_VEC
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(zero, _mm256_loadu_ps(x + i)));
        _mm256_storeu_ps(y + i, _mm256_div_ps(one, _mm256_add_ps(one, e)));
    }
#endif
    for (; i < n; i++)
        y[i] = 1.0f / (1.0f + lu_expf(-x[i]));
}

void graft__vtanh(const float *x, float *y, int64_t n)
{
    int64_t i = 0;
#if LM_VEC
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, tanh8(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++)
        y[i] = lu_tanhf(x[i]);
}

float graft__vmax(const float *x, int64_t n)
{
    int64_t i = 0;
    float m = -INFINITY;
#if LM_VEC
    if (n >= 8) {
        __m256 acc = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8)
            acc = _mm256_max_ps(acc, _mm256_loadu_ps(x + i));
        float lanes[8];
        _mm256_storeu_ps(lanes, acc);
        for (int k = 0; k < 8; k++)
            m = lanes[k] > m ? lanes[k] : m;
    }
#endif
    for (; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}
