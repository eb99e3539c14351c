/* ops/reduce_walk.h - x viewed for a reduction over some of its axes: its
 * dims merged into runs that alternate between reduced and kept ones (size-1
 * dims dropped), each run with its element stride in the reduced output y
 * (0 on reduced runs). Shared by the Reduce* ops and
 * MeanVarianceNormalization, which walk x once per pass with it. */
#ifndef GRAFT_OPS_REDUCE_WALK_H
#define GRAFT_OPS_REDUCE_WALK_H

#include <stdbool.h>
#include <stdint.h>

#include "graft/tensor.h"

typedef struct graft__rwalk {
    int rank; /* merged dims, >= 1 */
    int64_t dims[GRAFT_MAX_RANK];
    int64_t ys[GRAFT_MAX_RANK]; /* element stride in y; 0 on reduced dims */
    int64_t n_x, n_y, count;    /* elements of x, of y, of x per y */
} graft__rwalk;

/* red[i]: axis i of x is reduced. */
static inline void graft__rwalk_make(const graft_tensor *x, const bool *red, graft__rwalk *w)
{
    int64_t s[GRAFT_MAX_RANK], stride = 1;
    for (int i = x->rank - 1; i >= 0; i--) {
        s[i] = red[i] ? 0 : stride;
        stride *= red[i] ? 1 : x->dims[i];
    }
    w->rank = 0;
    w->n_x = graft_tensor_nelem(x);
    w->n_y = stride;
    w->count = w->n_y ? w->n_x / w->n_y : 0;
    for (int i = 0; i < x->rank; i++) {
        if (x->dims[i] == 1)
            continue;
        int k = w->rank;
        /* kept dims stay contiguous in y, so neighbours of one kind merge */
        if (k > 0 && (w->ys[k - 1] == 0) == (s[i] == 0)) {
            w->dims[k - 1] *= x->dims[i];
            w->ys[k - 1] = s[i];
            continue;
        }
        w->dims[k] = x->dims[i];
        w->ys[k] = s[i];
        w->rank++;
    }
    if (w->rank == 0) {
        w->rank = 1;
        w->dims[0] = 1;
        w->ys[0] = 0;
    }
}

/* Calls ROW(xoff, yoff, ystride, len) for each inner row of the walk; ystride
 * is 0 (the row folds into one y) or 1 (the last kept dim is contiguous). */
#define GRAFT__RWALK(w, ROW)                                                                  \
    do {                                                                                      \
        int64_t idx_[GRAFT_MAX_RANK] = {0}, yo_ = 0;                                          \
        int r_ = (w)->rank;                                                                   \
        int64_t len_ = (w)->dims[r_ - 1], yst_ = (w)->ys[r_ - 1];                             \
        int64_t rows_ = len_ ? (w)->n_x / len_ : 0;                                           \
        for (int64_t row_ = 0; row_ < rows_; row_++) {                                        \
            ROW(row_ * len_, yo_, yst_, len_);                                                \
            for (int d_ = r_ - 2; d_ >= 0; d_--) {                                            \
                yo_ += (w)->ys[d_];                                                           \
                if (++idx_[d_] < (w)->dims[d_])                                               \
                    break;                                                                    \
                yo_ -= (w)->ys[d_] * (w)->dims[d_];                                           \
                idx_[d_] = 0;                                                                 \
            }                                                                                 \
        }                                                                                     \
    } while (0)

#endif
