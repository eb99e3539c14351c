/* exec/plan_internal.h - queries on a built plan for tests and tools; not public API. */
#ifndef GRAFT_EXEC_PLAN_INTERNAL_H
#define GRAFT_EXEC_PLAN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graft/exec.h"

/* Activation buffers the memory planner allocated (feeds included). */
int graft__plan_n_buffers(const graft_plan *p);
/* Their total size in bytes. */
size_t graft__plan_buffer_bytes(const graft_plan *p);
/* Nodes in the plan, and how many of them were folded at build time. */
int graft__plan_n_nodes(const graft_plan *p);
int graft__plan_n_folded(const graft_plan *p);
/* True when value is a build-time constant (initializer or folded). */
bool graft__plan_value_known(const graft_plan *p, int32_t value);
/* The tensor currently holding value (activation buffer or constant); NULL if
 * the value is not in the plan. Borrowed, contents valid after a run. */
const graft_tensor *graft__plan_value_tensor(const graft_plan *p, int32_t value);

/* Per-node forward timing (off by default; costs two clock reads per node). */
graft_status graft__plan_set_profiling(graft_plan *p, bool on, graft_error *err);
/* Node i in execution order: op type, name, whether it runs at all (not
 * folded, not an aliased reshape), and its accumulated forward seconds. */
bool graft__plan_node_profile(const graft_plan *p, int i, const char **op_type, const char **name,
                              bool *runs, double *seconds);

#endif
