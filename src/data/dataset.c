/* data/dataset.c - data set lifetime, class names, class selection and the
 * stratified validation split. Both selection and split keep the images in
 * their original order, so the result depends only on the seed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"
#include "graft/data.h"

void graft_dataset_destroy(graft_dataset *ds)
{
    if (!ds)
        return;
    if (ds->class_names)
        for (int i = 0; i < ds->n_classes; i++)
            free(ds->class_names[i]);
    free(ds->class_names);
    free(ds->pixels);
    free(ds->labels);
    free(ds);
}

graft_status graft__dataset_alloc(int64_t n, int h, int w, int c, int n_classes,
                                  graft_dataset **out, graft_error *err)
{
    *out = NULL;
    if (n < 0 || h <= 0 || w <= 0 || (c != 1 && c != 3) || n_classes <= 0 ||
        n_classes > GRAFT_MAX_CLASSES)
        return graft_error_set(err, GRAFT_ERR_ARG,
                               "bad data set shape: %lld images of %dx%dx%d, %d classes",
                               (long long)n, h, w, c, n_classes);
    size_t img = (size_t)h * (size_t)w * (size_t)c;
    graft_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        goto fail;
    ds->n = n;
    ds->height = h;
    ds->width = w;
    ds->channels = c;
    ds->n_classes = n_classes;
    ds->pixels = calloc((size_t)(n ? n : 1), img);
    ds->labels = calloc((size_t)(n ? n : 1), sizeof *ds->labels);
    ds->class_names = calloc((size_t)n_classes, sizeof *ds->class_names);
    if (!ds->pixels || !ds->labels || !ds->class_names)
        goto fail;
    for (int i = 0; i < n_classes; i++) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", i);
        if (!(ds->class_names[i] = strdup(buf)))
            goto fail;
    }
    *out = ds;
    return GRAFT_OK;
fail:
    graft_dataset_destroy(ds);
    return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory for a data set of %lld images",
                           (long long)n);
}

graft_status graft_data_set_class_names(graft_dataset *ds, int n, const char *const *names,
                                        graft_error *err)
{
    if (!ds || !names || n != ds->n_classes)
        return graft_error_set(err, GRAFT_ERR_ARG, "%d class names given for %d classes", n,
                               ds ? ds->n_classes : 0);
    char **copy = calloc((size_t)n, sizeof *copy);
    if (!copy)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory for class names");
    for (int i = 0; i < n; i++) {
        if (!names[i] || !(copy[i] = strdup(names[i]))) {
            for (int j = 0; j < i; j++)
                free(copy[j]);
            free(copy);
            return graft_error_set(err, names[i] ? GRAFT_ERR_NOMEM : GRAFT_ERR_ARG,
                                   "class name %d is missing", i);
        }
    }
    for (int i = 0; i < ds->n_classes; i++)
        free(ds->class_names[i]);
    free(ds->class_names);
    ds->class_names = copy;
    return GRAFT_OK;
}

/* Copies the images marked in keep (new label in keep[i], -1 = drop) into a
 * new data set with the given class names. */
static graft_status gather(const graft_dataset *src, const int32_t *keep, int64_t n_keep,
                           int n_classes, char *const *names, graft_dataset **out,
                           graft_error *err)
{
    graft_dataset *ds = NULL;
    graft_status st = graft__dataset_alloc(n_keep, src->height, src->width, src->channels,
                                           n_classes, &ds, err);
    if (st)
        return st;
    size_t img = (size_t)src->height * (size_t)src->width * (size_t)src->channels;
    int64_t j = 0;
    for (int64_t i = 0; i < src->n; i++) {
        if (keep[i] < 0)
            continue;
        memcpy(ds->pixels + (size_t)j * img, src->pixels + (size_t)i * img, img);
        ds->labels[j++] = keep[i];
    }
    if (names) {
        st = graft_data_set_class_names(ds, n_classes, (const char *const *)names, err);
        if (st) {
            graft_dataset_destroy(ds);
            return st;
        }
    }
    *out = ds;
    return GRAFT_OK;
}

/* Indices of the images of class label, in order; *count set. */
static int64_t *class_indices(const graft_dataset *src, int label, int64_t *count)
{
    int64_t n = 0;
    for (int64_t i = 0; i < src->n; i++)
        n += src->labels[i] == label;
    int64_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v)
        return NULL;
    n = 0;
    for (int64_t i = 0; i < src->n; i++)
        if (src->labels[i] == label)
            v[n++] = i;
    *count = n;
    return v;
}

graft_status graft_data_select(const graft_dataset *src, const int *classes, int n_classes,
                               int64_t per_class, uint64_t seed, graft_dataset **out,
                               graft_error *err)
{
    *out = NULL;
    if (!src || !classes || n_classes <= 0 || per_class < 0)
        return graft_error_set(err, GRAFT_ERR_ARG, "select: no classes given");
    char *names[GRAFT_MAX_CLASSES];
    if (n_classes > GRAFT_MAX_CLASSES)
        return graft_error_set(err, GRAFT_ERR_ARG, "select: %d classes is too many", n_classes);
    for (int k = 0; k < n_classes; k++) {
        if (classes[k] < 0 || classes[k] >= src->n_classes)
            return graft_error_set(err, GRAFT_ERR_ARG,
                                   "select: class %d does not exist (the data has classes 0..%d)",
                                   classes[k], src->n_classes - 1);
        for (int j = 0; j < k; j++)
            if (classes[j] == classes[k])
                return graft_error_set(err, GRAFT_ERR_ARG, "select: class %d listed twice",
                                       classes[k]);
        names[k] = src->class_names[classes[k]];
    }
    int32_t *keep = malloc((size_t)(src->n ? src->n : 1) * sizeof *keep);
    if (!keep)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "select: out of memory");
    for (int64_t i = 0; i < src->n; i++)
        keep[i] = -1;
    graft_rng rng;
    graft_rng_seed(&rng, seed);
    int64_t total = 0;
    graft_status st = GRAFT_OK;
    for (int k = 0; k < n_classes; k++) {
        int64_t count = 0;
        int64_t *idx = class_indices(src, classes[k], &count);
        if (!idx) {
            st = graft_error_set(err, GRAFT_ERR_NOMEM, "select: out of memory");
            goto done;
        }
        if (count == 0) {
            free(idx);
            st = graft_error_set(err, GRAFT_ERR_ARG, "select: class %d (%s) has no images",
                                 classes[k], src->class_names[classes[k]]);
            goto done;
        }
        int64_t take = count;
        if (per_class > 0 && per_class < count) {
            /* A partial Fisher-Yates: the first `take` slots are a uniform sample. */
            take = per_class;
            for (int64_t i = 0; i < take; i++) {
                int64_t j = i + (int64_t)graft__rng_below(&rng, (uint64_t)(count - i));
                int64_t t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
            }
        }
        for (int64_t i = 0; i < take; i++)
            keep[idx[i]] = k;
        total += take;
        free(idx);
    }
    st = gather(src, keep, total, n_classes, names, out, err);
done:
    free(keep);
    return st;
}

graft_status graft_data_split(const graft_dataset *src, double val_fraction, uint64_t seed,
                              graft_dataset **train, graft_dataset **val, graft_error *err)
{
    *train = NULL;
    *val = NULL;
    if (!src || !(val_fraction >= 0.0 && val_fraction < 1.0))
        return graft_error_set(err, GRAFT_ERR_ARG,
                               "validation fraction %g is not in [0, 1)", val_fraction);
    int32_t *to_val = calloc((size_t)(src->n ? src->n : 1), sizeof *to_val);
    int32_t *keep = malloc((size_t)(src->n ? src->n : 1) * sizeof *keep);
    graft_status st = GRAFT_OK;
    if (!to_val || !keep) {
        st = graft_error_set(err, GRAFT_ERR_NOMEM, "split: out of memory");
        goto done;
    }
    graft_rng rng;
    graft_rng_seed(&rng, seed);
    int64_t n_val = 0;
    for (int c = 0; c < src->n_classes; c++) {
        int64_t count = 0;
        int64_t *idx = class_indices(src, c, &count);
        if (!idx) {
            st = graft_error_set(err, GRAFT_ERR_NOMEM, "split: out of memory");
            goto done;
        }
        int64_t take = (int64_t)(val_fraction * (double)count + 0.5);
        /* Each class with two or more images keeps at least one on each side
         * when a split was asked for. */
        if (val_fraction > 0 && count >= 2 && take == 0)
            take = 1;
        if (take >= count && count > 0)
            take = count >= 2 ? count - 1 : 0;
        graft_rng_shuffle(&rng, idx, count);
        for (int64_t i = 0; i < take; i++)
            to_val[idx[i]] = 1;
        n_val += take;
        free(idx);
    }
    for (int64_t i = 0; i < src->n; i++)
        keep[i] = to_val[i] ? -1 : src->labels[i];
    st = gather(src, keep, src->n - n_val, src->n_classes, src->class_names, train, err);
    if (st)
        goto done;
    for (int64_t i = 0; i < src->n; i++)
        keep[i] = to_val[i] ? src->labels[i] : -1;
    st = gather(src, keep, n_val, src->n_classes, src->class_names, val, err);
    if (st) {
        graft_dataset_destroy(*train);
        *train = NULL;
    }
done:
    free(to_val);
    free(keep);
    return st;
}
