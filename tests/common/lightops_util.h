/* tests/common/lightops_util.h - drive one op by hand for the light-op tests:
 * a one-node graph, parse/infer/forward/backward called directly, finite
 * difference gradient checks, and an ONNX node-test runner with its own
 * tiny protobuf reader (independent of graft's importer). */
#ifndef GRAFT_LIGHTOPS_UTIL_H
#define GRAFT_LIGHTOPS_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "graft/graft.h"
#include "ops/op.h"

#define LT_MAX_IO 8

/* A graph with default-domain opset `opset` and a single node added by lt_node. */
graft_graph *lt_graph(int opset);

/* Adds node op_type with n_in inputs named in0.. ("" entries of `omit` mask
 * bit i = omitted) and n_out outputs out0..; returns the node index. */
int32_t lt_node(graft_graph *g, const char *op_type, int n_in, unsigned omit, int n_out);

/* Creates a tensor from values (float or int64 data, by dt). */
graft_tensor *lt_tensor_f32(int rank, const int64_t *dims, const float *v);
graft_tensor *lt_tensor_i64(int rank, const int64_t *dims, const int64_t *v);
graft_tensor *lt_tensor_rand(int rank, const int64_t *dims, uint64_t seed, float lo, float hi);

typedef struct lt_call {
    graft_graph *g;
    int32_t node;
    const graft_op_def *def;
    void *params;
    int n_in, n_out;
    graft_tensor *in[LT_MAX_IO];  /* borrowed from the caller */
    graft_tensor *out[LT_MAX_IO]; /* owned; NULL for omitted outputs */
    graft_tensor *state;
    graft_exec_ctx ctx;
    graft_error err;
} lt_call;

/* parse + infer (+ allocate outputs); hide_data: infer sees no input data
 * (mask bit i hides input i). Returns the first failing status. */
graft_status lt_prepare(lt_call *c, graft_graph *g, int32_t node, int n_in, graft_tensor **in,
                        unsigned hide_data);
graft_status lt_forward(lt_call *c);
/* Full parse+infer+forward. */
graft_status lt_run(lt_call *c, graft_graph *g, int32_t node, int n_in, graft_tensor **in);
void lt_call_fini(lt_call *c);
/* The op's backward after lt_run: d_out[i] per output (NULL: zero), d_in[i]
 * accumulated into (NULL: not wanted). */
graft_status lt_backward(lt_call *c, graft_tensor **d_out, graft_tensor **d_in);

/* Central finite differences of L = sum(r .* y0) against backward, for each
 * float input whose bit is set in `which`. Returns the max error scaled by
 * max(1, |grad|) and prints the worst mismatch when above tol. */
double lt_gradcheck(graft_graph *g, int32_t node, int n_in, graft_tensor **in, unsigned which,
                    double eps, double tol, bool training);

/* Compares a against b (same dtype class); floats within atol + rtol|b|. */
bool lt_close(const graft_tensor *a, const graft_tensor *b, double atol, double rtol,
              char *msg, size_t size);

/* ONNX backend node test under /usr/share/libonnx-testdata/data/node/<name>:
 * returns 1 pass, 0 fail (msg says why), -1 not available or unsupported
 * (skip), -2 the op is not in ops (NULL-terminated; NULL = any). */
int lt_onnx_node_test(const char *name, const char *const *ops, char *msg, size_t size);
/* Every single-node test whose op is in ops; prints fails and skips.
 * Returns -1 when the test data is not installed. */
int lt_onnx_suite(const char *const *ops, int *n_pass, int *n_fail, int *n_skip);
/* A whole ONNX model folder (dir/model.onnx + test_data_set_0) through the
 * importer and a plan: integer inputs are known when the plan is built
 * (every input, should that plan be refused as unsupported), and every
 * output_K.pb is compared (1e-5 abs + 1e-4 rel). Returns 1 pass, 0 fail,
 * -1 unsupported, -2 no such folder; prints a line unless it passes. */
int lt_onnx_model_dir(const char *dir);
/* Reads a TensorProto file into compute form (independent reader). */
graft_tensor *lt_read_pb(const char *path);

#endif
