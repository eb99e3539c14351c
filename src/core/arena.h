/* core/arena.h - bump allocator: many small allocations freed at once. */
#ifndef GRAFT_CORE_ARENA_H
#define GRAFT_CORE_ARENA_H

#include <stddef.h>

typedef struct graft_arena graft_arena;

graft_arena *graft_arena_create(void);
void graft_arena_destroy(graft_arena *a);
/* Zeroed, 16-byte aligned; NULL on OOM or overflow. */
void *graft_arena_alloc(graft_arena *a, size_t nbytes);

#endif
