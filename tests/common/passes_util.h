/* tests/common/passes_util.h - building small graphs by value name, for the
 * passes tests. Every helper asserts (cmocka) on failure. */
#ifndef GRAFT_PASSES_UTIL_H
#define GRAFT_PASSES_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "testutil.h"

/* A graph importing the default-domain opset `opset` (0: none). */
graft_graph *pu_graph(int64_t opset);
/* A real float input; dims -1 become the symbolic dim "N". */
int32_t pu_input(graft_graph *g, const char *name, int rank, const int64_t *dims);
/* A float32 initializer filled from a fixed pseudo-random stream (scale *
 * uniform(-1,1) + offset), or from data when data != NULL. */
int32_t pu_init(graft_graph *g, const char *name, int rank, const int64_t *dims, float scale,
                float offset, const float *data);
int32_t pu_init_i64(graft_graph *g, const char *name, int rank, const int64_t *dims,
                    const int64_t *data);
/* Node reading inputs named in `ins` (NULL-terminated, "" = omitted) and
 * writing the single output `out` (created). Returns the node index. */
int32_t pu_node(graft_graph *g, const char *op, const char *name, const char *const *ins,
                const char *out);
void pu_output(graft_graph *g, const char *name);
int32_t pu_val(const graft_graph *g, const char *name); /* asserts it exists */
/* Live node count of op_type. */
int pu_count_op(const graft_graph *g, const char *op);
/* Uniform(-1,1) floats from a seed. */
void pu_fill(float *x, int64_t n, uint64_t seed);
/* Runs g with one float input of shape in (filled from seed) and returns a
 * copy of output `fetch` (-1: graph output 0); NULL if the plan fails (msg
 * printed). */
graft_tensor *pu_run(const graft_graph *g, const graft_shape *in, uint64_t seed, int32_t fetch);
/* max |a-b| / max(|b|, tiny) */
double pu_rel_diff(const graft_tensor *a, const graft_tensor *b);
/* "$GRAFT_SHARED_DIR/<rel>" if it exists, else NULL (static buffer). */
const char *pu_shared(const char *rel);

#endif
