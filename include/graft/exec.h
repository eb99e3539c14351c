/* graft/exec.h - the CPU executor.
 *
 *   graft_plan *p = NULL;
 *   graft_shape in = {4, {8, 3, 224, 224}};
 *   graft_plan_options o = graft_plan_options_default();
 *   if (graft_plan_create(g, &o, 1, &in, &p, &err) == GRAFT_OK) {
 *       const graft_tensor *x = ...;          // shape [8,3,224,224], float32
 *       graft_plan_run(p, &x, &err);
 *       const graft_tensor *y = graft_plan_output(p, 0);   // borrowed until next run
 *       graft_plan_destroy(p);
 *   }
 *
 * A plan is built for one graph and one set of concrete input shapes: shapes
 * are inferred once, what depends only on constants and shapes (Shape, Gather
 * on shapes, Constant, ...) is folded at build time, and activation buffers
 * are shared once their last consumer has run. A different batch size needs a
 * new plan. The graph must outlive the plan and must not change while it
 * exists, except for the contents of trainable initializers (the optimizer
 * updates those in place between runs).
 */
#ifndef GRAFT_EXEC_H
#define GRAFT_EXEC_H

#include <stdbool.h>
#include <stdint.h>

#include "graft/graph.h"
#include "graft/status.h"
#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct graft_plan graft_plan;

typedef struct graft_plan_options {
    int n_threads;   /* 0: 2 threads */
    /* Values fed by the caller, in order; NULL: the graph's real inputs. A
     * value may be an activation (e.g. cached features fed to the head). */
    const int32_t *feeds;
    int n_feeds;
    /* Values to produce, in order; NULL: the graph outputs. Only nodes these
     * depend on run. */
    const int32_t *fetches;
    int n_fetches;
    /* Training: Dropout is active, activations needed by backward are kept,
     * and graft_plan_backward can run. */
    bool training;
    uint64_t seed; /* for Dropout in training */
    /* Optional, one entry per feed (NULL entries allowed): feed data known
     * when the plan is built, e.g. an int64 shape input of Reshape that the
     * model takes as a graph input. The plan folds with it; every run checks
     * that the feed still holds these values. */
    const graft_tensor *const *feed_values;
    /* graft runs a node stored in training form (BatchNormalization with
     * training_mode=1, Dropout with a training_mode input) in inference form,
     * as a frozen backbone needs. Set: refuse such a node instead, with
     * GRAFT_ERR_UNSUPPORTED, for callers that want ONNX's exact semantics or
     * nothing (a conformance run). */
    bool refuse_training_form;
    /* Run nodes stored in training form as ONNX defines them instead:
     * BatchNormalization normalises with the batch's own statistics and
     * outputs the updated running statistics. A Dropout in training form is
     * still refused unless its ratio is a constant 0 (its output is random).
     * For callers comparing against ONNX's semantics (a conformance run);
     * forward only: refused together with `training`. Takes precedence over
     * refuse_training_form. */
    bool stored_training_form;
} graft_plan_options;

graft_plan_options graft_plan_options_default(void);

/* in_shapes[i] is the concrete shape of feed i. Fails with a message naming
 * the node on shape errors or unsupported ops (one message listing every op
 * graft cannot run). */
graft_status graft_plan_create(const graft_graph *g, const graft_plan_options *opt, int n_in,
                               const graft_shape *in_shapes, graft_plan **out, graft_error *err);
void graft_plan_destroy(graft_plan *p);

/* inputs[i] matches in_shapes[i]; float inputs may be FLOAT16/DOUBLE (converted). */
graft_status graft_plan_run(graft_plan *p, const graft_tensor *const *inputs, graft_error *err);
int graft_plan_n_outputs(const graft_plan *p);
/* Borrowed; valid until the next run or destroy. */
const graft_tensor *graft_plan_output(const graft_plan *p, int i);
/* Inferred shape of any value reachable in the plan; false if unknown. */
bool graft_plan_value_shape(const graft_plan *p, int32_t value, graft_shape *out);

/* Backpropagates d_fetches[i] (gradient of the loss w.r.t. fetch i, NULL
 * for none) through the last run. Afterwards graft_plan_grad gives the
 * gradient of every trainable initializer the fetches depend on. Requires
 * options.training. Gradients are overwritten (not accumulated) per call. */
graft_status graft_plan_backward(graft_plan *p, const graft_tensor *const *d_fetches,
                                 graft_error *err);
/* Gradient of value (a trainable initializer or a feed); NULL if none. Borrowed. */
const graft_tensor *graft_plan_grad(const graft_plan *p, int32_t value);

/* One op graft runs: type, domain ("" for ai.onnx), the opset versions of
 * its domain it handles, and whether it has a gradient (can sit on the
 * trained part of a graph). */
typedef struct graft_op_support {
    const char *op_type, *domain;
    int min_opset, max_opset;
    bool backward;
} graft_op_support;
/* The i-th op graft runs (0-based, in the order of src/ops/ops.def); false
 * past the last. */
bool graft_supported_op(int i, graft_op_support *out);

/* Ops graft cannot run that the plan would need (node->op < 0 or no
 * forward), as "Op1, Op2" into buf; returns the count. */
int graft_graph_unsupported_ops(const graft_graph *g, const int32_t *fetches, int n_fetches,
                                char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
