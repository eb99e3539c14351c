/* train/optimizer.c - SGD with momentum and Adam, as PyTorch defines them
 * (torch.optim.SGD with dampening 0 and no Nesterov; torch.optim.Adam
 * without amsgrad), plus L1/L2 penalties on weights in Keras' form. Each
 * parameter is one flat float array, so a step is one loop. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "train/train_internal.h"

double graft__penalty_grad(const graft__optim *o, graft__param *p, int n_params)
{
    double penalty = 0;
    if (o->l1 == 0 && o->l2 == 0)
        return 0;
    for (int i = 0; i < n_params; i++) {
        if (!p[i].penalize)
            continue;
        const float *w = p[i].w;
        float *g = p[i].grad;
        double s1 = 0, s2 = 0;
        for (int64_t j = 0; j < p[i].nelem; j++) {
            float wj = w[j];
            s1 += fabs((double)wj);
            s2 += (double)wj * (double)wj;
            float sign = (float)((wj > 0) - (wj < 0));
            g[j] += o->l1 * sign + 2.0f * o->l2 * wj;
        }
        penalty += (double)o->l1 * s1 + (double)o->l2 * s2;
    }
    return penalty;
}

/* The decimal a float was most likely written as (0.999f -> 0.999). */
static double decimal(float f)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)f);
    return strtod(buf, NULL);
}

void graft__optim_step(graft__optim *o, graft__param *p, int n_params)
{
    o->t++;
    if (o->kind == GRAFT_OPT_SGD) {
        float lr = o->lr, mom = o->momentum;
        for (int i = 0; i < n_params; i++) {
            float *w = p[i].w, *g = p[i].grad, *v = p[i].m;
            if (mom != 0.0f) {
                for (int64_t j = 0; j < p[i].nelem; j++) {
                    v[j] = mom * v[j] + g[j];
                    w[j] -= lr * v[j];
                }
            } else {
                for (int64_t j = 0; j < p[i].nelem; j++)
                    w[j] -= lr * g[j];
            }
        }
        return;
    }
    /* PyTorch holds hyper-parameters as Python doubles and rounds each
     * scalar (beta, 1 - beta, ...) to float once; computing 1 - beta from the
     * float 0.999f instead would be off by 1e-5 relative. */
    double b1 = decimal(o->beta1), b2 = decimal(o->beta2);
    double bc1 = 1.0 - pow(b1, (double)o->t);
    double bc2 = 1.0 - pow(b2, (double)o->t);
    float b1f = (float)b1, b2f = (float)b2, omb1 = (float)(1.0 - b1), omb2 = (float)(1.0 - b2);
    float step = (float)(decimal(o->lr) / bc1);
    float sqrt_bc2 = (float)sqrt(bc2);
    float eps = (float)decimal(o->eps);
    for (int i = 0; i < n_params; i++) {
        float *w = p[i].w, *g = p[i].grad, *m = p[i].m, *v = p[i].v;
        for (int64_t j = 0; j < p[i].nelem; j++) {
            m[j] = b1f * m[j] + omb1 * g[j];
            v[j] = b2f * v[j] + omb2 * g[j] * g[j];
            float denom = sqrtf(v[j]) / sqrt_bc2 + eps;
            w[j] -= step * (m[j] / denom);
        }
    }
}
