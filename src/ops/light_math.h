/* ops/light_math.h - vectorised transcendental loops for the light ops. */
#ifndef GRAFT_OPS_LIGHT_MATH_H
#define GRAFT_OPS_LIGHT_MATH_H

#include <stdint.h>

void graft__vexp(const float *x, float *y, int64_t n);
/* y[i] = e^(x[i] - shift) (y may be NULL); returns the sum. */
float graft__vexp_shift_sum(const float *x, float shift, float *y, int64_t n);
void graft__vsigmoid(const float *x, float *y, int64_t n);
void graft__vtanh(const float *x, float *y, int64_t n);

#endif
