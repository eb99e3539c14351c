#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
} arena_chunk;

struct graft_arena {
    arena_chunk *head;
};

enum { CHUNK_DEFAULT = 64 * 1024 };

graft_arena *graft_arena_create(void)
{
    return calloc(1, sizeof(graft_arena));
}

void graft_arena_destroy(graft_arena *a)
{
    if (!a)
        return;
    for (arena_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

void *graft_arena_alloc(graft_arena *a, size_t nbytes)
{
    if (nbytes > SIZE_MAX - 15 - sizeof(arena_chunk))
        return NULL;
    size_t need = (nbytes + 15) & ~(size_t)15;
    arena_chunk *c = a->head;
    if (!c || c->size - c->used < need) {
        size_t size = need > CHUNK_DEFAULT / 2 ? need : CHUNK_DEFAULT;
        arena_chunk *fresh = malloc(sizeof *fresh + size);
        if (!fresh)
            return NULL;
        fresh->used = 0;
        fresh->size = size;
        if (need > CHUNK_DEFAULT / 2 && c) {
            /* A big block goes behind the current chunk so the chunk keeps filling. */
            fresh->next = c->next;
            c->next = fresh;
        } else {
            fresh->next = c;
            a->head = fresh;
        }
        c = fresh;
    }
    void *p = c->data + c->used;
    c->used += need;
    memset(p, 0, need);
    return p;
}
