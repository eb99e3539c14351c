/* kernels/act.h - the activations a fused kernel applies in its write-back. */
#ifndef GRAFT_KERNELS_ACT_H
#define GRAFT_KERNELS_ACT_H

#include <stdint.h>

typedef enum graft__act_kind {
    GRAFT__ACT_NONE = 0,
    GRAFT__ACT_RELU,
    GRAFT__ACT_CLIP,         /* a = min, b = max */
    GRAFT__ACT_LEAKY_RELU,   /* a = alpha */
    GRAFT__ACT_SIGMOID,
    GRAFT__ACT_TANH,
    GRAFT__ACT_HARD_SIGMOID, /* a = alpha, b = beta */
} graft__act_kind;

typedef struct graft__act {
    graft__act_kind kind;
    float a, b;
} graft__act;

/* y[i] = act(y[i] + bias + (z ? z[i] : 0)) for i < n. */
void graft__act_row(float *restrict y, int64_t n, float bias, const float *restrict z,
                    const graft__act *act);

/* g[i] *= act'(pre-activation) for i < n, from the activation's output y
 * (every supported activation's derivative is a function of its output). */
void graft__act_grad_from_output(float *g, const float *y, int64_t n, const graft__act *act);

#endif
