/* kernels/col2im.h - transposed convolution (ConvTranspose) over float32
 * NC[D]HW, up to 3 spatial axes, as the adjoint of im2col + GEMM.
 *
 * Geometry: X is n × c × in[], Y is n × m × out[], W is c × (m/group) × k[].
 * Input position i and kernel tap t meet at output position
 * i·stride - pad + t·dil on every axis (pad is the begin padding of Y and may
 * be negative, as output_shape can ask for more than the natural extent).
 * 1-D and 2-D problems have leading axes of size 1 (kernel 1, stride 1,
 * dilation 1, pad 0).
 *
 * Per image and group, with Kc = (m/group)·kvol and P = the X plane:
 *   forward   col (Kc×P) = W_gᵀ · X_g;  Y_g = bias + col2im(col)
 *   backward  dcol = im2col(dY_g);  dX_g += W_g · dcol;  dW_g += X_g · dcolᵀ;
 *             dB[m] += Σ dY[:, m]
 * The P axis is processed in column tiles so the column buffer stays small.
 */
#ifndef GRAFT_KERNELS_COL2IM_H
#define GRAFT_KERNELS_COL2IM_H

#include <stdint.h>

#include "graft/status.h"
#include "kernels/conv.h"
#include "ops/op.h"

/* The convolution's geometry read the other way: in and out are the extents
 * of X and Y, pad the begin padding of Y (any sign). */
typedef graft__conv_geom graft__convt_geom;

/* y = convtranspose(x, w) + bias (bias may be NULL); y is overwritten.
 * GRAFT_ERR_NOMEM when the scratch buffer cannot be had. */
graft_status graft__convt_forward(const graft__convt_geom *g, const float *x, const float *w,
                                  const float *bias, float *y, graft_exec_ctx *ctx);

/* Accumulates (+=) into each non-NULL dx, dw, db given dy. */
graft_status graft__convt_backward(const graft__convt_geom *g, const float *x, const float *w,
                                   const float *dy, float *dx, float *dw, float *db,
                                   graft_exec_ctx *ctx);

#endif
