/* kernels/window.c - ONNX window arithmetic.
 * Output extent, NOTSET: floor((in + pb + pe - ek) / s) + 1 (ceil with
 * ceil_mode, dropping a last window that would start in the end padding);
 * VALID: no pads; SAME_*: out = ceil(in / s), total pad (out-1)·s + ek - in
 * with the odd unit at the end (UPPER) or the beginning (LOWER);
 * ek = (k-1)·d + 1 is the dilated kernel extent. */
#include "kernels/window.h"

#include <stdio.h>
#include <string.h>

#include "ops/op.h"

static int read_ints(const graft_node *n, const char *name, int64_t *dst, int cap)
{
    const int64_t *v = NULL;
    int cnt = graft_node_attr_ints(n, name, &v);
    for (int i = 0; i < cnt && i < cap; i++)
        dst[i] = v[i];
    return cnt;
}

graft_status graft__window_parse(const graft_node *n, graft__window *w, graft_error *err)
{
    char label[256];
    memset(w, 0, sizeof *w);
    const char *ap = graft_node_attr_string(n, "auto_pad", "NOTSET");
    if (!*ap || strcmp(ap, "NOTSET") == 0)
        w->auto_pad = GRAFT__PAD_NOTSET;
    else if (strcmp(ap, "SAME_UPPER") == 0)
        w->auto_pad = GRAFT__PAD_SAME_UPPER;
    else if (strcmp(ap, "SAME_LOWER") == 0)
        w->auto_pad = GRAFT__PAD_SAME_LOWER;
    else if (strcmp(ap, "VALID") == 0)
        w->auto_pad = GRAFT__PAD_VALID;
    else
        return graft_error_set(err, GRAFT_ERR_INVALID, "%s: unknown auto_pad '%s'",
                               graft__node_label(n, label, sizeof label), ap);
    w->ceil_mode = graft_node_attr_int(n, "ceil_mode", 0) != 0;
    w->n_kernel = read_ints(n, "kernel_shape", w->kernel, GRAFT__WINDOW_MAX);
    w->n_strides = read_ints(n, "strides", w->strides, GRAFT__WINDOW_MAX);
    w->n_dil = read_ints(n, "dilations", w->dil, GRAFT__WINDOW_MAX);
    w->n_pads = read_ints(n, "pads", w->pads, 2 * GRAFT__WINDOW_MAX);
    for (int i = 0; i < w->n_kernel && i < GRAFT__WINDOW_MAX; i++)
        if (w->kernel[i] <= 0)
            return graft_error_set(err, GRAFT_ERR_INVALID, "%s: kernel_shape[%d] = %lld",
                                   graft__node_label(n, label, sizeof label), i,
                                   (long long)w->kernel[i]);
    for (int i = 0; i < w->n_strides && i < GRAFT__WINDOW_MAX; i++)
        if (w->strides[i] <= 0)
            return graft_error_set(err, GRAFT_ERR_INVALID, "%s: strides[%d] = %lld",
                                   graft__node_label(n, label, sizeof label), i,
                                   (long long)w->strides[i]);
    for (int i = 0; i < w->n_dil && i < GRAFT__WINDOW_MAX; i++)
        if (w->dil[i] <= 0)
            return graft_error_set(err, GRAFT_ERR_INVALID, "%s: dilations[%d] = %lld",
                                   graft__node_label(n, label, sizeof label), i,
                                   (long long)w->dil[i]);
    for (int i = 0; i < w->n_pads && i < 2 * GRAFT__WINDOW_MAX; i++)
        if (w->pads[i] < 0)
            return graft_error_set(err, GRAFT_ERR_INVALID, "%s: pads[%d] = %lld is negative",
                                   graft__node_label(n, label, sizeof label), i,
                                   (long long)w->pads[i]);
    return GRAFT_OK;
}

graft_status graft__window_resolve(const graft__window *w, int nsp, const int64_t *in,
                                   const int64_t *k, int64_t *stride, int64_t *dil,
                                   int64_t *pad_begin, int64_t *pad_end, int64_t *out, char *msg,
                                   size_t msg_size)
{
    if (w->n_strides >= 0 && w->n_strides != nsp) {
        snprintf(msg, msg_size, "strides has %d entries, expected %d (spatial rank of the input)",
                 w->n_strides, nsp);
        return GRAFT_ERR_INVALID;
    }
    if (w->n_dil >= 0 && w->n_dil != nsp) {
        snprintf(msg, msg_size, "dilations has %d entries, expected %d (spatial rank of the input)",
                 w->n_dil, nsp);
        return GRAFT_ERR_INVALID;
    }
    if (w->auto_pad == GRAFT__PAD_NOTSET && w->n_pads >= 0 && w->n_pads != 2 * nsp) {
        snprintf(msg, msg_size, "pads has %d entries, expected %d (begin and end per spatial axis)",
                 w->n_pads, 2 * nsp);
        return GRAFT_ERR_INVALID;
    }
    for (int i = 0; i < nsp; i++) {
        stride[i] = w->n_strides > 0 ? w->strides[i] : 1;
        dil[i] = w->n_dil > 0 ? w->dil[i] : 1;
        int64_t ek = (k[i] - 1) * dil[i] + 1;
        pad_begin[i] = pad_end[i] = 0;
        if (w->auto_pad == GRAFT__PAD_NOTSET && w->n_pads > 0) {
            pad_begin[i] = w->pads[i];
            pad_end[i] = w->pads[i + nsp];
        }
        if (in[i] < 0) {
            out[i] = -1;
            continue;
        }
        switch (w->auto_pad) {
        case GRAFT__PAD_SAME_UPPER:
        case GRAFT__PAD_SAME_LOWER: {
            out[i] = (in[i] + stride[i] - 1) / stride[i];
            int64_t total = (out[i] - 1) * stride[i] + ek - in[i];
            if (total < 0)
                total = 0;
            int64_t small = total / 2;
            pad_begin[i] = w->auto_pad == GRAFT__PAD_SAME_UPPER ? small : total - small;
            pad_end[i] = total - pad_begin[i];
            break;
        }
        default: {
            int64_t span = in[i] + pad_begin[i] + pad_end[i] - ek;
            if (span < 0) {
                snprintf(msg, msg_size,
                         "window of extent %lld does not fit spatial axis %d of size %lld "
                         "(padded %lld)",
                         (long long)ek, i, (long long)in[i],
                         (long long)(in[i] + pad_begin[i] + pad_end[i]));
                return GRAFT_ERR_SHAPE;
            }
            if (w->ceil_mode) {
                out[i] = (span + stride[i] - 1) / stride[i] + 1;
                if ((out[i] - 1) * stride[i] >= in[i] + pad_begin[i])
                    out[i]--;
            } else {
                out[i] = span / stride[i] + 1;
            }
            break;
        }
        }
    }
    return GRAFT_OK;
}
