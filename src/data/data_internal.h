/* data/data_internal.h - helpers shared by the files of src/data (not public). */
#ifndef GRAFT_DATA_INTERNAL_H
#define GRAFT_DATA_INTERNAL_H

#include <stdint.h>

#include "graft/data.h"

/* A dataset with n images of h x w x c pixels and n_classes names "0".."k-1";
 * pixels and labels allocated (pixels zeroed). */
graft_status graft__dataset_alloc(int64_t n, int h, int w, int c, int n_classes,
                                  graft_dataset **out, graft_error *err);

/* Bilinear resize of one uint8 HWC image with half-pixel centres (as
 * torch.nn.functional.interpolate(align_corners=False) and PIL for
 * upsampling), rounding to nearest. */
void graft__resize_u8(const uint8_t *src, int sh, int sw, int c, uint8_t *dst, int dh, int dw);

/* Uniform integer in [0, bound) without modulo bias; bound > 0. */
uint64_t graft__rng_below(graft_rng *r, uint64_t bound);

#endif
