/* kernels/pool.h - max and average pooling over float32 planes, described
 * as 3-D like the convolutions (leading axes of extent 1 for 1-D/2-D). */
#ifndef GRAFT_KERNELS_POOL_H
#define GRAFT_KERNELS_POOL_H

#include <stdbool.h>
#include <stdint.h>

typedef struct graft__pool_geom {
    int64_t planes; /* N·C */
    int64_t in[3], out[3], k[3], stride[3], dil[3], pad[3], pad_end[3];
    bool count_include_pad;
} graft__pool_geom;

/* Floats of workspace the forward kernels can use (the plan's scratch, so
 * that steady-state runs allocate nothing); work may be NULL (slower path). */
int64_t graft__pool_work_floats(const graft__pool_geom *g, int nt);

/* idx (may be NULL): flat row-major index of each maximum in the whole X. */
void graft__maxpool_forward(const graft__pool_geom *g, const float *x, float *y, int64_t *idx,
                            float *work, int nt);
void graft__maxpool_backward(const graft__pool_geom *g, const float *x, const float *dy,
                             float *dx, int nt);
void graft__avgpool_forward(const graft__pool_geom *g, const float *x, float *y, float *work,
                            int nt);
void graft__avgpool_backward(const graft__pool_geom *g, const float *dy, float *dx, int nt);

#endif
