/* ops/op.h - the op interface: one graft_op_def per ONNX op, listed in ops.def.
 *
 * The executor drives every op through four functions:
 *   parse     attributes (and opset differences) -> the op's params struct;
 *             called once per node when a plan is built.
 *   infer     input shapes (and input data where it is known at build time)
 *             -> output dtypes and shapes. Rejects bad shapes with a status.
 *   forward   inputs -> outputs; out[i] is already allocated to the inferred shape.
 *   backward  d_out -> d_in, ACCUMULATING (+=) into every non-NULL d_in[i];
 *             NULL when the op has no gradient.
 * Kernels never see an opset number: parse resolves it.
 */
#ifndef GRAFT_OPS_OP_H
#define GRAFT_OPS_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graft/graph.h"
#include "graft/status.h"
#include "graft/tensor.h"

typedef struct graft_exec_ctx {
    int n_threads;
    bool training;      /* Dropout active; forward keeps what backward needs in *state */
    /* graft_plan_options.stored_training_form: BatchNormalization with
     * training_mode=1 uses batch statistics (forward only) */
    bool stored_training_form;
    uint64_t rng[2];    /* xoroshiro128+ state for stochastic ops; advanced by them */
    /* Workspace for the current call: at least nbytes, 64-byte aligned, valid
     * until the op returns; NULL on OOM. Reused across calls, never free it. */
    void *(*scratch)(struct graft_exec_ctx *ctx, size_t nbytes);
    void *scratch_owner;
} graft_exec_ctx;

typedef struct graft_op_call {
    const graft_graph *graph;
    const graft_node *node;
    const void *params; /* the op's parsed params (params_size bytes) */
    int n_in, n_out;    /* node->n_inputs, node->n_outputs */
    /* in[i] is NULL for an omitted optional input. In infer, in[i]->data is
     * non-NULL only when the value is known at build time (initializers,
     * Constant outputs, folded shape arithmetic). out[i] NULL: output omitted. */
    graft_tensor *const *in;
    graft_tensor *const *out;
    /* backward only: gradient of each output (NULL: zero) and of each input
     * (NULL: not wanted). Accumulate into d_in. */
    graft_tensor *const *d_out;
    graft_tensor *const *d_in;
    /* Per-node slot an op may fill in forward (e.g. the Dropout mask) and
     * read in backward; the plan destroys the tensor. */
    graft_tensor **state;
    graft_exec_ctx *ctx;
    graft_error *err;
    /* Set by the executor in training plans: some input of this node carries
     * a gradient (a trainable parameter flows into it), so backward will run
     * for it. Stochastic ops (Dropout) are active only then. */
    bool grad_path;
} graft_op_call;

enum {
    /* Outputs depend only on input shapes, never on input data (Shape). */
    GRAFT_OP_SHAPE_ONLY = 1u << 0,
    /* Output 0 may share input 0's buffer (pure reshapes). */
    GRAFT_OP_ALIAS_INPUT0 = 1u << 1,
};

typedef struct graft_op_def {
    const char *op_type;
    const char *domain;
    int min_opset; /* oldest opset version handled */
    unsigned flags;
    size_t params_size;
    graft_status (*parse)(const graft_graph *g, const graft_node *n, void *params, graft_error *err);
    graft_status (*infer)(graft_op_call *c);
    graft_status (*forward)(graft_op_call *c);
    graft_status (*backward)(graft_op_call *c);
} graft_op_def;

enum graft_op_id {
#define GRAFT_OP(ident, type, domain) GRAFT_OP_##ident,
#include "ops/ops.def"
#undef GRAFT_OP
    GRAFT_OP_COUNT
};

#define GRAFT_OP(ident, type, domain) extern const graft_op_def graft__op_##ident;
#include "ops/ops.def"
#undef GRAFT_OP

/* Table indexed by enum graft_op_id. */
extern const graft_op_def *const graft__op_table[GRAFT_OP_COUNT];

/* Op index for (op_type, domain) - domain "" and "ai.onnx" are the same - or -1. */
int graft__op_lookup(const char *op_type, const char *domain);

/* Shared helpers for op files. */
/* "Conv 'name'" style label for messages: writes into buf and returns it. */
const char *graft__node_label(const graft_node *n, char *buf, size_t size);
/* Sets err to "<node label>: <message>" and returns st. */
graft_status graft__op_fail(graft_op_call *c, graft_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Numpy-style broadcast of two shapes; GRAFT_ERR_SHAPE when incompatible. */
graft_status graft__broadcast_shape(int ra, const int64_t *a, int rb, const int64_t *b, int *rout,
                                    int64_t *out);

#endif
