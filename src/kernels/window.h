/* kernels/window.h - the sliding-window attributes shared by Conv and the
 * pools (kernel_shape, strides, dilations, pads, auto_pad, ceil_mode) and
 * their resolution into concrete pads and output extents. */
#ifndef GRAFT_KERNELS_WINDOW_H
#define GRAFT_KERNELS_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graft/graph.h"
#include "graft/status.h"

#define GRAFT__WINDOW_MAX 8 /* attribute entries kept; more is always an error */

typedef enum graft__auto_pad {
    GRAFT__PAD_NOTSET = 0,
    GRAFT__PAD_SAME_UPPER,
    GRAFT__PAD_SAME_LOWER,
    GRAFT__PAD_VALID,
} graft__auto_pad;

typedef struct graft__window {
    graft__auto_pad auto_pad;
    bool ceil_mode;
    int n_kernel, n_strides, n_dil, n_pads; /* -1: attribute absent */
    int64_t kernel[GRAFT__WINDOW_MAX], strides[GRAFT__WINDOW_MAX], dil[GRAFT__WINDOW_MAX];
    int64_t pads[2 * GRAFT__WINDOW_MAX];
} graft__window;

/* Reads the attributes of n; ERR_INVALID (message naming the node) on bad
 * values: unknown auto_pad, non-positive strides/dilations/kernel, negative pads. */
graft_status graft__window_parse(const graft_node *n, graft__window *w, graft_error *err);

/* Resolves for nsp spatial axes with input extents in[] (-1: unknown) and
 * kernel k[]: stride, dil, pad_begin, pad_end and out (-1 when in is
 * unknown). ERR_INVALID when an attribute length does not match nsp,
 * ERR_SHAPE when the window does not fit; msg gets the reason. */
graft_status graft__window_resolve(const graft__window *w, int nsp, const int64_t *in,
                                   const int64_t *k, int64_t *stride, int64_t *dil,
                                   int64_t *pad_begin, int64_t *pad_end, int64_t *out, char *msg,
                                   size_t msg_size);

#endif
