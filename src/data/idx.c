/* data/idx.c - LeCun's IDX format (MNIST, Fashion-MNIST): a big-endian
 * header (0x00 0x00 type ndim, then ndim uint32 sizes) and raw data. gzread
 * reads gzip and plain files alike. Only unsigned bytes (type 0x08) occur in
 * the image data sets, so only they are accepted. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/data_internal.h"
#include "graft/data.h"

typedef struct idx_file {
    gzFile f;
    const char *path;
    int ndim;
    uint32_t dims[4];
} idx_file;

/* Reads exactly n bytes; a short read means the file is truncated. */
static graft_status read_exact(idx_file *x, void *buf, size_t n, const char *what,
                               graft_error *err)
{
    uint8_t *p = buf;
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(x->f, p, chunk);
        if (got < 0) {
            int zerr = 0;
            const char *msg = gzerror(x->f, &zerr);
            return graft_error_set(err, GRAFT_ERR_PARSE, "%s: corrupt while reading %s (%s)",
                                   x->path, what, msg ? msg : "zlib error");
        }
        if (got == 0)
            return graft_error_set(err, GRAFT_ERR_PARSE, "%s: truncated in %s", x->path, what);
        p += got;
        n -= (size_t)got;
    }
    return GRAFT_OK;
}

static graft_status open_idx(idx_file *x, const char *path, int want_min_dims, int want_max_dims,
                             graft_error *err)
{
    memset(x, 0, sizeof *x);
    x->path = path;
    x->f = gzopen(path, "rb");
    if (!x->f)
        return graft_error_set(err, GRAFT_ERR_IO, "%s: cannot open", path);
    uint8_t head[4];
    graft_status st = read_exact(x, head, 4, "the header", err);
    if (st)
        return st;
    if (head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] < want_min_dims ||
        head[3] > want_max_dims)
        return graft_error_set(err, GRAFT_ERR_PARSE,
                               "%s: not an IDX file of unsigned bytes with %d..%d dimensions "
                               "(magic %02x%02x%02x%02x)",
                               path, want_min_dims, want_max_dims, head[0], head[1], head[2],
                               head[3]);
    x->ndim = head[3];
    for (int i = 0; i < x->ndim; i++) {
        uint8_t b[4];
        st = read_exact(x, b, 4, "the header", err);
        if (st)
            return st;
        x->dims[i] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    }
    return GRAFT_OK;
}

/* After the data the file must end: extra bytes mean the header lies. */
static graft_status expect_end(idx_file *x, graft_error *err)
{
    uint8_t b;
    int got = gzread(x->f, &b, 1);
    if (got < 0)
        return graft_error_set(err, GRAFT_ERR_PARSE, "%s: corrupt at the end of the data",
                               x->path);
    if (got > 0)
        return graft_error_set(err, GRAFT_ERR_PARSE,
                               "%s: more data than the header's dimensions say", x->path);
    return GRAFT_OK;
}

graft_status graft_data_load_idx(const char *images_path, const char *labels_path,
                                 graft_dataset **out, graft_error *err)
{
    *out = NULL;
    idx_file im = {0}, lb = {0};
    graft_dataset *ds = NULL;
    uint8_t *raw_labels = NULL;
    graft_status st;
    if (!images_path || !labels_path)
        return graft_error_set(err, GRAFT_ERR_ARG, "IDX: image and label files are both needed");
    /* Images: [n, h, w] grey, or [n, h, w, c] with c = 1 or 3. */
    if ((st = open_idx(&im, images_path, 3, 4, err)))
        goto fail;
    if ((st = open_idx(&lb, labels_path, 1, 1, err)))
        goto fail;
    uint32_t n = im.dims[0], h = im.dims[1], w = im.dims[2];
    uint32_t c = im.ndim == 4 ? im.dims[3] : 1;
    if (h == 0 || w == 0 || h > 65536 || w > 65536 || (c != 1 && c != 3)) {
        st = graft_error_set(err, GRAFT_ERR_PARSE, "%s: bad image size %ux%ux%u", images_path, h,
                             w, c);
        goto fail;
    }
    if (lb.dims[0] != n) {
        st = graft_error_set(err, GRAFT_ERR_PARSE, "%s: %u labels for %u images in %s",
                             labels_path, lb.dims[0], n, images_path);
        goto fail;
    }
    raw_labels = malloc(n ? n : 1);
    if (!raw_labels) {
        st = graft_error_set(err, GRAFT_ERR_NOMEM, "%s: out of memory", labels_path);
        goto fail;
    }
    if ((st = read_exact(&lb, raw_labels, n, "the labels", err)) || (st = expect_end(&lb, err)))
        goto fail;
    int max_label = 0;
    for (uint32_t i = 0; i < n; i++)
        if (raw_labels[i] > max_label)
            max_label = raw_labels[i];
    if ((st = graft__dataset_alloc(n, (int)h, (int)w, (int)c, max_label + 1, &ds, err)))
        goto fail;
    for (uint32_t i = 0; i < n; i++)
        ds->labels[i] = raw_labels[i];
    if ((st = read_exact(&im, ds->pixels, (size_t)n * h * w * c, "the pixels", err)) ||
        (st = expect_end(&im, err)))
        goto fail;
    gzclose(im.f);
    gzclose(lb.f);
    free(raw_labels);
    *out = ds;
    return GRAFT_OK;
fail:
    if (im.f)
        gzclose(im.f);
    if (lb.f)
        gzclose(lb.f);
    free(raw_labels);
    graft_dataset_destroy(ds);
    return st;
}
