/* data/preprocess.c - turning stored uint8 images into the float batch a
 * model expects, with optional Keras-style augmentation.
 *
 * Geometry: output pixel x has its centre at x + 0.5; source coordinates
 * follow the half-pixel convention of torch.nn.functional.interpolate
 * (align_corners=False) and PIL: sx = (x + 0.5) * sw / W - 0.5, clamped at
 * the border. Augmentation composes crop, flip, rotation and zoom into one
 * inverse affine map about the image centre and samples bilinearly once;
 * points that land outside the source image read 0 (constant fill). With
 * every random draw at its identity value the augmented path reproduces the
 * plain resize exactly.
 *
 * Values: v in 0..255 -> (v * scale - mean[c]) / std[c], where c is the
 * channel of the output tensor (after the RGB/BGR reordering). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"
#include "graft/data.h"

graft_preprocess graft_preprocess_default(void)
{
    graft_preprocess pp;
    memset(&pp, 0, sizeof pp);
    pp.height = 28;
    pp.width = 28;
    pp.channels = 1;
    pp.scale = 1.0f / 255.0f;
    for (int c = 0; c < 3; c++)
        pp.std[c] = 1.0f;
    return pp;
}

/* Source coordinate of output index x for a plain resize (half-pixel centres). */
static inline float src_coord(int x, float scale) { return ((float)x + 0.5f) * scale - 0.5f; }

/* Bilinear sample of channel-interleaved float-able uint8 image at (sx, sy),
 * which must already lie in [0, sw-1] x [0, sh-1]. Writes c values. */
static inline void sample(const uint8_t *src, int sh, int sw, int c, float sx, float sy, float *v)
{
    int x0 = (int)sx, y0 = (int)sy;
    int x1 = x0 + 1 < sw ? x0 + 1 : sw - 1;
    int y1 = y0 + 1 < sh ? y0 + 1 : sh - 1;
    float lx = sx - (float)x0, ly = sy - (float)y0;
    float hx = 1.0f - lx, hy = 1.0f - ly;
    const uint8_t *r0 = src + (size_t)y0 * (size_t)sw * (size_t)c;
    const uint8_t *r1 = src + (size_t)y1 * (size_t)sw * (size_t)c;
    for (int k = 0; k < c; k++)
        v[k] = hy * (hx * (float)r0[x0 * c + k] + lx * (float)r0[x1 * c + k]) +
               ly * (hx * (float)r1[x0 * c + k] + lx * (float)r1[x1 * c + k]);
}

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

void graft__resize_u8(const uint8_t *src, int sh, int sw, int c, uint8_t *dst, int dh, int dw)
{
    float scale_x = (float)sw / (float)dw, scale_y = (float)sh / (float)dh;
    float v[4];
    for (int y = 0; y < dh; y++) {
        float sy = clampf(src_coord(y, scale_y), 0.0f, (float)(sh - 1));
        for (int x = 0; x < dw; x++) {
            float sx = clampf(src_coord(x, scale_x), 0.0f, (float)(sw - 1));
            sample(src, sh, sw, c, sx, sy, v);
            for (int k = 0; k < c; k++)
                dst[((size_t)y * (size_t)dw + (size_t)x) * (size_t)c + (size_t)k] =
                    (uint8_t)clampf(v[k] + 0.5f, 0.0f, 255.0f);
        }
    }
}

/* The random draws for one image. */
typedef struct affine {
    bool flip;
    float cos_t, sin_t, zoom;
    float crop_l, crop_r, crop_t, crop_b; /* fractions of the side */
} affine;

static affine draw_affine(const graft_augment *a, graft_rng *rng)
{
    affine t = {false, 1.0f, 0.0f, 1.0f, 0, 0, 0, 0};
    if (a->flip_prob > 0)
        t.flip = graft_rng_uniform(rng) < (double)a->flip_prob;
    if (a->rotation > 0) {
        double theta = (2.0 * graft_rng_uniform(rng) - 1.0) * (double)a->rotation *
                       6.283185307179586;
        t.cos_t = (float)cos(theta);
        t.sin_t = (float)sin(theta);
    }
    if (a->zoom > 0)
        t.zoom = (float)(1.0 + (2.0 * graft_rng_uniform(rng) - 1.0) * (double)a->zoom);
    if (a->crop > 0) {
        t.crop_l = (float)(graft_rng_uniform(rng) * (double)a->crop);
        t.crop_r = (float)(graft_rng_uniform(rng) * (double)a->crop);
        t.crop_t = (float)(graft_rng_uniform(rng) * (double)a->crop);
        t.crop_b = (float)(graft_rng_uniform(rng) * (double)a->crop);
    }
    return t;
}

/* Geometric stage: tmp[H*W*sc] gets the raw (0..255) values of the image
 * resized to H x W, through the affine map t when given. */
static void warp(const uint8_t *src, int sh, int sw, int sc, int H, int W, const affine *t,
                 float *tmp)
{
    float scale_x = (float)sw / (float)W, scale_y = (float)sh / (float)H;
    if (!t) {
        for (int y = 0; y < H; y++) {
            float sy = clampf(src_coord(y, scale_y), 0.0f, (float)(sh - 1));
            for (int x = 0; x < W; x++) {
                float sx = clampf(src_coord(x, scale_x), 0.0f, (float)(sw - 1));
                sample(src, sh, sw, sc, sx, sy, tmp + ((size_t)y * (size_t)W + (size_t)x) * (size_t)sc);
            }
        }
        return;
    }
    float cx = 0.5f * (float)W, cy = 0.5f * (float)H;
    float kx = 1.0f - t->crop_l - t->crop_r, ky = 1.0f - t->crop_t - t->crop_b;
    float ox = t->crop_l * (float)W, oy = t->crop_t * (float)H;
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            float *v = tmp + ((size_t)y * (size_t)W + (size_t)x) * (size_t)sc;
            /* crop: the output spans [ox, ox + kx*W) of the augmented frame */
            float qx = ox + ((float)x + 0.5f) * kx, qy = oy + ((float)y + 0.5f) * ky;
            float dx = qx - cx, dy = qy - cy;
            if (t->flip)
                dx = -dx;
            float rx = t->zoom * (t->cos_t * dx + t->sin_t * dy);
            float ry = t->zoom * (-t->sin_t * dx + t->cos_t * dy);
            float sx = (cx + rx) * scale_x - 0.5f, sy = (cy + ry) * scale_y - 0.5f;
            if (!(sx >= -0.5f && sx <= (float)sw - 0.5f && sy >= -0.5f &&
                  sy <= (float)sh - 0.5f)) {
                for (int k = 0; k < sc; k++)
                    v[k] = 0.0f;
                continue;
            }
            sample(src, sh, sw, sc, clampf(sx, 0.0f, (float)(sw - 1)),
                   clampf(sy, 0.0f, (float)(sh - 1)), v);
        }
    }
}

graft_status graft_data_make_batch(const graft_dataset *ds, const int64_t *idx, int64_t n,
                                   const graft_preprocess *pp, const graft_augment *aug,
                                   graft_rng *rng, graft_tensor *out, graft_error *err)
{
    if (!ds || !pp || !out || (n > 0 && !idx) || n < 0)
        return graft_error_set(err, GRAFT_ERR_ARG, "make_batch: missing argument");
    int H = pp->height, W = pp->width, C = pp->channels;
    if (H <= 0 || W <= 0 || (C != 1 && C != 3))
        return graft_error_set(err, GRAFT_ERR_ARG,
                               "preprocessing: bad model input size %dx%dx%d", H, W, C);
    for (int c = 0; c < C; c++)
        if (!(pp->std[c] != 0.0f) || !isfinite(pp->std[c]) || !isfinite(pp->mean[c]))
            return graft_error_set(err, GRAFT_ERR_ARG,
                                   "preprocessing: std[%d] = %g / mean[%d] = %g is unusable", c,
                                   (double)pp->std[c], c, (double)pp->mean[c]);
    bool augment = graft_augment_active(aug);
    if (augment && (!rng || aug->crop >= 0.5f || aug->zoom >= 1.0f))
        return graft_error_set(err, GRAFT_ERR_ARG,
                               rng ? "augmentation: crop must be < 0.5 and zoom < 1"
                                   : "augmentation needs a random generator");
    int64_t dims[4] = {n, C, H, W};
    if (pp->nhwc) {
        dims[1] = H;
        dims[2] = W;
        dims[3] = C;
    }
    graft_status st = graft_tensor_reshape(out, GRAFT_FLOAT, 4, dims, err);
    if (st)
        return st;
    int sh = ds->height, sw = ds->width, sc = ds->channels;
    size_t img = (size_t)sh * (size_t)sw * (size_t)sc;
    size_t plane = (size_t)H * (size_t)W;
    float *tmp = malloc(plane * (size_t)sc * sizeof *tmp);
    if (!tmp)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "make_batch: out of memory");
    float *o = graft_tensor_f32(out);
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= ds->n) {
            free(tmp);
            return graft_error_set(err, GRAFT_ERR_ARG, "make_batch: image %lld of %lld",
                                   (long long)idx[i], (long long)ds->n);
        }
        const uint8_t *src = ds->pixels + (size_t)idx[i] * img;
        affine t;
        if (augment)
            t = draw_affine(aug, rng);
        warp(src, sh, sw, sc, H, W, augment ? &t : NULL, tmp);
        float *oi = o + (size_t)i * plane * (size_t)C;
        for (int oc = 0; oc < C; oc++) {
            int rc = (pp->bgr && C == 3) ? 2 - oc : oc;
            float mean = pp->mean[oc], sd = pp->std[oc], scale = pp->scale;
            for (size_t p = 0; p < plane; p++) {
                float v;
                if (sc == 1)
                    v = tmp[p];
                else if (C == 3)
                    v = tmp[3 * p + (size_t)rc];
                else /* RGB data, grey model: ITU-R 601 luma as PIL's "L" */
                    v = 0.299f * tmp[3 * p] + 0.587f * tmp[3 * p + 1] + 0.114f * tmp[3 * p + 2];
                float x = (v * scale - mean) / sd;
                if (pp->nhwc)
                    oi[p * (size_t)C + (size_t)oc] = x;
                else
                    oi[(size_t)oc * plane + p] = x;
            }
        }
    }
    free(tmp);
    return GRAFT_OK;
}
