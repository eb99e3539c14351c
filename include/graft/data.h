/* graft/data.h - labelled image data sets, preprocessing and augmentation.
 *
 *   graft_dataset *all = NULL, *ds = NULL;
 *   graft_data_load_idx("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz",
 *                       "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz", &all, &err);
 *   int classes[] = {5, 6, 7, 8, 9};
 *   graft_data_select(all, classes, 5, 100, 42, &ds, &err);   // 100 per class, labels 0..4
 *   graft_preprocess pp = graft_preprocess_default();  pp.height = pp.width = 32; ...
 *   graft_data_make_batch(ds, idx, n, &pp, NULL, NULL, batch_tensor, &err);
 */
#ifndef GRAFT_DATA_H
#define GRAFT_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "graft/status.h"
#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GRAFT_MAX_CLASSES 1024

/* Small deterministic RNG shared by data and training (splitmix64 seeding,
 * xoshiro256** stream): same seed, same sequence on every machine. */
typedef struct graft_rng {
    uint64_t s[4];
} graft_rng;
void graft_rng_seed(graft_rng *r, uint64_t seed);
uint64_t graft_rng_next(graft_rng *r);
double graft_rng_uniform(graft_rng *r); /* [0,1) */
float graft_rng_normal(graft_rng *r);   /* N(0,1) */
void graft_rng_shuffle(graft_rng *r, int64_t *v, int64_t n);

/* Images as stored: uint8, [n, height, width, channels] (channels 1 or 3, RGB). */
typedef struct graft_dataset {
    int64_t n;
    int height, width, channels;
    uint8_t *pixels;  /* n*height*width*channels */
    int32_t *labels;  /* 0..n_classes-1 */
    int n_classes;
    char **class_names; /* n_classes strings */
} graft_dataset;

void graft_dataset_destroy(graft_dataset *ds);

/* IDX (LeCun) image + label files, gzip-compressed or not. Labels keep
 * their numbers: class i is named "i" unless names are given later. */
graft_status graft_data_load_idx(const char *images_path, const char *labels_path,
                                 graft_dataset **out, graft_error *err);
/* A folder with one subfolder per class holding PNG or JPEG files (class
 * names = subfolder names, sorted); images resized to height x width
 * (bilinear) at load, 0 keeps the first image's size. */
graft_status graft_data_load_folder(const char *dir, int height, int width, int channels,
                                    graft_dataset **out, graft_error *err);
/* Replaces the class names (n must equal ds->n_classes). */
graft_status graft_data_set_class_names(graft_dataset *ds, int n, const char *const *names,
                                        graft_error *err);

/* Keeps the classes listed (in that order, relabelled 0..n-1, names kept)
 * and at most per_class images of each (0: all), chosen with seed (the same
 * seed picks the same images). */
graft_status graft_data_select(const graft_dataset *src, const int *classes, int n_classes,
                               int64_t per_class, uint64_t seed, graft_dataset **out,
                               graft_error *err);
/* Splits off a stratified fraction (0..1) for validation, from seed. */
graft_status graft_data_split(const graft_dataset *src, double val_fraction, uint64_t seed,
                              graft_dataset **train, graft_dataset **val, graft_error *err);

typedef struct graft_preprocess {
    int height, width; /* model input size; images are resized (bilinear) to it */
    int channels;      /* 1 or 3; grey images are repeated to 3 channels */
    float scale;       /* pixel * scale (e.g. 1/255) ... */
    float mean[3];     /* ... then (x - mean[c]) / std[c] */
    float std[3];
    bool bgr;          /* channel order BGR instead of RGB */
    bool nhwc;         /* tensor layout NHWC instead of NCHW */
} graft_preprocess;

graft_preprocess graft_preprocess_default(void); /* 28x28x1, scale 1/255, mean 0, std 1, NCHW */

typedef struct graft_augment {
    float flip_prob;    /* random horizontal flip, probability per image (0.5 in the Keras example) */
    float rotation;     /* max rotation as a fraction of a full turn (Keras RandomRotation(0.1)) */
    float zoom;         /* max zoom in or out as a fraction (Keras RandomZoom(0.1)) */
    float crop;         /* random crop of up to this fraction of each side, resized back */
} graft_augment;

static inline bool graft_augment_active(const graft_augment *a)
{
    return a && (a->flip_prob > 0 || a->rotation > 0 || a->zoom > 0 || a->crop > 0);
}

/* Writes images idx[0..n) of ds, preprocessed (and augmented when aug is
 * active, drawing from *rng), into out, which is reshaped to [n,C,H,W] (or
 * [n,H,W,C]) float32. */
graft_status graft_data_make_batch(const graft_dataset *ds, const int64_t *idx, int64_t n,
                                   const graft_preprocess *pp, const graft_augment *aug,
                                   graft_rng *rng, graft_tensor *out, graft_error *err);


#ifdef __cplusplus
}
#endif
#endif
