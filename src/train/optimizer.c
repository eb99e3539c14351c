/* train/optimizer.c - SGD with momentum and Adam, as PyTorch defines them
 * (torch.optim.SGD with dampening 0 and no Nesterov; torch.optim.Adam
 * without amsgrad), plus L1/L2 penalties on weights in Keras' form. Each
 * parameter is one flat float array, so a step is one loop. */
#include <math.h>

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
    float b1 = o->beta1, b2 = o->beta2;
    double bc1 = 1.0 - pow((double)b1, (double)o->t);
    double bc2 = 1.0 - pow((double)b2, (double)o->t);
    float step = (float)((double)o->lr / bc1);
    float sqrt_bc2 = (float)sqrt(bc2);
    for (int i = 0; i < n_params; i++) {
        float *w = p[i].w, *g = p[i].grad, *m = p[i].m, *v = p[i].v;
        for (int64_t j = 0; j < p[i].nelem; j++) {
            m[j] = b1 * m[j] + (1.0f - b1) * g[j];
            v[j] = b2 * v[j] + (1.0f - b2) * g[j] * g[j];
            float denom = sqrtf(v[j]) / sqrt_bc2 + o->eps;
            w[j] -= step * m[j] / denom;
        }
    }
}
