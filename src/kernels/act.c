/* kernels/act.c - bias + residual + activation over one row, one loop per
 * activation kind so each loop vectorises. */
#include "kernels/act.h"

#include <math.h>

/* One pass: v = y + bias (+ z), then the activation. */
#define ACT_LOOP(expr)                                                                             \
    do {                                                                                           \
        if (z) {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                float v = y[i] + bias + z[i];                                                      \
                y[i] = (expr);                                                                     \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                float v = y[i] + bias;                                                             \
                y[i] = (expr);                                                                     \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static inline float clampf(float v, float lo, float hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

void graft__act_row(float *restrict y, int64_t n, float bias, const float *restrict z,
                    const graft__act *act)
{
    const float a = act->a, b = act->b;
    switch (act->kind) {
    case GRAFT__ACT_NONE:
        if (z || bias != 0.0f)
            ACT_LOOP(v);
        break;
    case GRAFT__ACT_RELU:
        ACT_LOOP(v > 0.0f ? v : 0.0f);
        break;
    case GRAFT__ACT_CLIP:
        ACT_LOOP(clampf(v, a, b));
        break;
    case GRAFT__ACT_LEAKY_RELU:
        ACT_LOOP(v >= 0.0f ? v : a * v);
        break;
    case GRAFT__ACT_SIGMOID:
        ACT_LOOP(1.0f / (1.0f + expf(-v)));
        break;
    case GRAFT__ACT_TANH:
        ACT_LOOP(tanhf(v));
        break;
    case GRAFT__ACT_HARD_SIGMOID:
        ACT_LOOP(clampf(fmaf(a, v, b), 0.0f, 1.0f));
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
