/* kernels/act.c - bias + residual + activation over one row, one loop per
 * activation kind so each loop vectorises. */
#include "kernels/act.h"

#include <math.h>

void graft__act_row(float *y, int64_t n, float bias, const float *z, const graft__act *act)
{
    if (z) {
        for (int64_t i = 0; i < n; i++)
            y[i] += bias + z[i];
    } else if (bias != 0.0f) {
        for (int64_t i = 0; i < n; i++)
            y[i] += bias;
    }
    const float a = act->a, b = act->b;
    switch (act->kind) {
    case GRAFT__ACT_NONE:
        break;
    case GRAFT__ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = y[i] > 0.0f ? y[i] : 0.0f;
        break;
    case GRAFT__ACT_CLIP:
        for (int64_t i = 0; i < n; i++) {
            float v = y[i] < a ? a : y[i];
            y[i] = v > b ? b : v;
        }
        break;
    case GRAFT__ACT_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = y[i] >= 0.0f ? y[i] : a * y[i];
        break;
    case GRAFT__ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            y[i] = 1.0f / (1.0f + expf(-y[i]));
        break;
    case GRAFT__ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            y[i] = tanhf(y[i]);
        break;
    case GRAFT__ACT_HARD_SIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float v = a * y[i] + b;
            v = v < 0.0f ? 0.0f : v;
            y[i] = v > 1.0f ? 1.0f : v;
        }
        break;
    }
}

void graft__act_grad_from_output(float *g, const float *y, int64_t n, const graft__act *act)
{
    const float a = act->a, b = act->b;
    switch (act->kind) {
    case GRAFT__ACT_NONE:
        break;
    case GRAFT__ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            g[i] = y[i] > 0.0f ? g[i] : 0.0f;
        break;
    case GRAFT__ACT_CLIP:
        for (int64_t i = 0; i < n; i++)
            g[i] = y[i] > a && y[i] < b ? g[i] : 0.0f;
        break;
    case GRAFT__ACT_LEAKY_RELU:
        /* the sign of y is the sign of the input for a positive slope */
        for (int64_t i = 0; i < n; i++)
            g[i] = (a >= 0.0f ? y[i] >= 0.0f : y[i] <= 0.0f) ? g[i] : a * g[i];
        break;
    case GRAFT__ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            g[i] *= y[i] * (1.0f - y[i]);
        break;
    case GRAFT__ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            g[i] *= 1.0f - y[i] * y[i];
        break;
    case GRAFT__ACT_HARD_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            g[i] = y[i] > 0.0f && y[i] < 1.0f ? a * g[i] : 0.0f;
        break;
    }
}
