/* train/losses.c - softmax cross-entropy.
 *
 *   loss_i = logsumexp(z_i) - z_i[y_i],  L = mean_i loss_i
 *   dL/dz_i = (softmax(z_i) - onehot(y_i)) / n
 * The maximum is subtracted before exponentiating so that large logits do
 * not overflow; sums run in double. */
#include <math.h>

#include "train/train_internal.h"

int graft__argmax(const float *v, int k)
{
    int best = 0;
    for (int j = 1; j < k; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

void graft__softmax_xent(const float *logits, const int32_t *labels, int64_t n, int k,
                         float *d_logits, double *loss_sum, int64_t *n_correct)
{
    double total = 0;
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * k;
        int y = labels[i];
        int am = graft__argmax(z, k);
        float mx = z[am];
        double s = 0;
        for (int j = 0; j < k; j++)
            s += exp((double)z[j] - (double)mx);
        double lse = (double)mx + log(s);
        total += lse - (double)z[y];
        correct += am == y;
        if (d_logits) {
            float *d = d_logits + i * k;
            for (int j = 0; j < k; j++) {
                double p = exp((double)z[j] - lse);
                d[j] = (float)((p - (j == y ? 1.0 : 0.0)) / (double)n);
            }
        }
    }
    if (loss_sum)
        *loss_sum = total;
    if (n_correct)
        *n_correct = correct;
}

void graft__prob_xent(const float *probs, const int32_t *labels, int64_t n, int k,
                      double *loss_sum, int64_t *n_correct)
{
    double total = 0;
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *p = probs + i * k;
        double py = p[labels[i]];
        total += -log(py > 1e-12 ? py : 1e-12);
        correct += graft__argmax(p, k) == labels[i];
    }
    if (loss_sum)
        *loss_sum = total;
    if (n_correct)
        *n_correct = correct;
}
