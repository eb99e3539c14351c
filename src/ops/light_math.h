/* ops/light_math.h - vectorised transcendental loops for the light ops. */
#ifndef GRAFT_OPS_LIGHT_MATH_H
#define GRAFT_OPS_LIGHT_MATH_H

#include <stdint.h>

void graft__vexp(const float *x, float *y, int64_t n);
/* y[i] = e^(x[i] - shift) (y may be NULL); returns the sum. */
float graft__vexp_shift_sum(const float *x, float shift, float *y, int64_t n);
/* Largest element (-inf for n == 0); NaN is not propagated, callers get
 * NaN downstream from the NaN itself. */
float graft__vmax(const float *x, int64_t n);
void graft__vsigmoid(const float *x, float *y, int64_t n);
void graft__vtanh(const float *x, float *y, int64_t n);

#endif
