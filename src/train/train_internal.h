/* train/train_internal.h - the pieces of training shared inside src/train
 * and by its tests: loss, optimizers, the trainer that runs one step. */
#ifndef GRAFT_TRAIN_INTERNAL_H
#define GRAFT_TRAIN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "graft/data.h"
#include "graft/exec.h"
#include "graft/graph.h"
#include "graft/train.h"

/* Softmax cross-entropy over n rows of k logits, averaged over the rows.
 * Returns the summed (not averaged) loss in *loss_sum and the number of
 * rows whose argmax equals the label in *n_correct (either may be NULL).
 * d_logits (may be NULL) receives d(mean loss)/d(logits) = (softmax - onehot)/n.
 * Labels must lie in [0, k). */
void graft__softmax_xent(const float *logits, const int32_t *labels, int64_t n, int k,
                         float *d_logits, double *loss_sum, int64_t *n_correct);
/* Cross-entropy of probabilities (a Softmax output), clamped away from 0. */
void graft__prob_xent(const float *probs, const int32_t *labels, int64_t n, int k,
                      double *loss_sum, int64_t *n_correct);
/* Index of the largest of v[0..k) (the first on ties). */
int graft__argmax(const float *v, int k);

/* One parameter as the optimizer sees it: the data updated in place, its
 * gradient, and the optimizer state. */
typedef struct graft__param {
    int32_t value;    /* value index in the graph */
    float *w;         /* the initializer's data (float32) */
    int64_t nelem;
    bool penalize;    /* a weight (rank >= 2) rather than a bias: L1/L2 apply */
    float *m, *v;     /* momentum / Adam moments (nelem each) */
    float *grad;      /* gradient incl. penalties, filled before a step */
} graft__param;

typedef struct graft__optim {
    graft_optimizer_kind kind;
    float lr, momentum, beta1, beta2, eps, l1, l2;
    int64_t t; /* steps taken (Adam bias correction) */
} graft__optim;

/* Adds the penalty gradients (L1: l1*sign(w), L2: 2*l2*w, i.e. Keras'
 * l1*sum|w| + l2*sum w^2) to p->grad of weights; returns the penalty value. */
double graft__penalty_grad(const graft__optim *o, graft__param *p, int n_params);
/* One update of every parameter from p->grad, PyTorch semantics:
 * SGD: v = momentum*v + g; w -= lr*v. Adam: bias-corrected moments,
 * w -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). */
void graft__optim_step(graft__optim *o, graft__param *p, int n_params);

/* Runs the part of a graph that maps `feed` to `logits` for training:
 * plans are built per batch size (training and inference kinds) and cached. */
typedef struct graft__trainer {
    graft_graph *g;
    int32_t feed, logits;
    int n_classes;
    int n_params;
    graft__param *params;
    graft__optim opt;
    int n_threads;
    uint64_t seed;
    struct {
        int64_t batch;
        bool training;
        graft_plan *plan;
    } plans[8];
    int n_plans;
    /* [B, ...] shape of one feed batch with the batch dimension left at 0 */
    graft_shape feed_shape;
    graft_tensor *d_logits;
} graft__trainer;

/* Collects the trainable float initializers of g and prepares the optimizer.
 * feed_shape: the shape of the fed value (the batch dimension is replaced). */
graft_status graft__trainer_init(graft__trainer *tr, graft_graph *g, int32_t feed, int32_t logits,
                                 const graft_shape *feed_shape, const graft_train_config *cfg,
                                 graft_error *err);
void graft__trainer_fini(graft__trainer *tr);
/* Forward, loss, backward and gradients (with penalties) on one batch; the
 * update itself is graft__trainer_update, so that tests can look at the
 * gradients in between. x is [n, feed...]. */
graft_status graft__trainer_grad(graft__trainer *tr, const graft_tensor *x, const int32_t *labels,
                                 int64_t n, double *loss_sum, int64_t *n_correct,
                                 graft_error *err);
void graft__trainer_update(graft__trainer *tr);
/* Inference-mode forward and loss (no dropout, no gradients). */
graft_status graft__trainer_eval(graft__trainer *tr, const graft_tensor *x, const int32_t *labels,
                                 int64_t n, double *loss_sum, int64_t *n_correct,
                                 graft_error *err);

/* Checks that the preprocessed batch matches the model input value `input`
 * of g and returns the shape to feed for a batch of n ([n,C,H,W]/[n,H,W,C],
 * or [n, C*H*W] for a flat rank-2 input). */
graft_status graft__input_shape(const graft_graph *g, int32_t input, const graft_preprocess *pp,
                                int64_t n, graft_shape *out, graft_error *err);

/* Forward-only runner from one input value to one fetched value, with plans
 * cached per batch size. With optimize, it runs an optimized clone of g
 * (BN folding, Conv fusion) and falls back to g itself when the clone
 * cannot be optimized or planned. fetch == input is the identity. */
typedef struct graft__runner {
    const graft_graph *g;
    graft_graph *clone;
    int32_t input, fetch;
    int n_threads;
    struct {
        int64_t batch;
        graft_plan *plan;
    } plans[4];
    int n_plans;
    graft_tensor *pixels; /* a uint8 input's images as whole 0..255 values (owned) */
} graft__runner;

graft_status graft__runner_init(graft__runner *r, const graft_graph *g, int32_t input,
                                int32_t fetch, bool optimize, int n_threads, graft_error *err);
/* Runs x ([n, ...]); *y is borrowed until the next run (x itself for the identity). */
graft_status graft__runner_run(graft__runner *r, const graft_tensor *x, const graft_tensor **y,
                               graft_error *err);
void graft__runner_fini(graft__runner *r);

#endif
