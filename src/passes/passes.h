/* passes/passes.h - internals shared by the graph passes (not public API). */
#ifndef GRAFT_PASSES_PASSES_H
#define GRAFT_PASSES_PASSES_H

#include <stdbool.h>
#include <stdint.h>

#include "graft/graph.h"
#include "graft/status.h"

#define GRAFT__SI_MAX_CONST 16

/* Statically inferred shape of one value: rank -1 unknown, dims[i] -1
 * unknown. Small int64 tensors known at build time (shape arithmetic) are
 * carried in c[] so that Reshape targets computed by Shape/Gather/Concat
 * chains resolve. */
typedef struct graft__si {
    int rank;
    int64_t dims[GRAFT_MAX_RANK];
    int n_const; /* elements in c, -1 when the value is not a known int tensor */
    int64_t c[GRAFT__SI_MAX_CONST];
} graft__si;

/* Infers shapes of every value without running anything. Symbolic or
 * unknown dim 0 of the real inputs becomes `batch`, other unknown dims stay
 * unknown (and propagate as unknown). Ops it does not know give outputs of
 * unknown rank. *out has g->n_values entries; free() it. Fails only on OOM
 * or a cycle. */
graft_status graft__infer_static_shapes(const graft_graph *g, int64_t batch, graft__si **out,
                                        graft_error *err);

/* consumers: number of live node input slots reading each value (n_values). */
int32_t *graft__count_consumers(const graft_graph *g);

#endif
