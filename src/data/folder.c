/* data/folder.c - a labelled image folder: DIR/<class>/<image>.{png,jpg,jpeg}.
 * Classes and files are taken in sorted (strcmp) order so that the data set
 * is the same on every machine. Images are decoded to RGB or grey, converted
 * to the requested channel count and resized (bilinear) at load. */
#include <ctype.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "data/data_internal.h"
#include "graft/data.h"

typedef struct image {
    int h, w, c; /* c = 1 or 3 */
    uint8_t *px;
} image;

typedef struct name_list {
    char **v;
    int n, cap;
} name_list;

static void names_free(name_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int names_push(name_list *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s)))
        return -1;
    l->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    if (n <= e || name[n - e - 1] != '.')
        return false;
    for (size_t i = 0; i < e; i++)
        if (tolower((unsigned char)name[n - e + i]) != ext[i])
            return false;
    return true;
}

static bool is_image_name(const char *name)
{
    return has_ext(name, "png") || has_ext(name, "jpg") || has_ext(name, "jpeg");
}

/* Sorted entries of dir: subdirectories (dirs = true) or image files. */
static graft_status list_dir(const char *dir, bool dirs, name_list *out, graft_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return graft_error_set(err, GRAFT_ERR_IO, "%s: cannot open the folder", dir);
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(path, &sb) != 0)
            continue;
        bool want = dirs ? S_ISDIR(sb.st_mode) : (S_ISREG(sb.st_mode) && is_image_name(e->d_name));
        if (want && names_push(out, e->d_name)) {
            closedir(d);
            return graft_error_set(err, GRAFT_ERR_NOMEM, "%s: out of memory listing", dir);
        }
    }
    closedir(d);
    if (out->n > 1)
        qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return GRAFT_OK;
}

static graft_status load_png(const char *path, image *im, graft_error *err)
{
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&pi, path))
        return graft_error_set(err, GRAFT_ERR_PARSE, "%s: not a readable PNG (%s)", path,
                               pi.message);
    bool grey = !(pi.format & PNG_FORMAT_FLAG_COLOR);
    /* Transparent pixels are composed over black, as PIL's convert("RGB") does. */
    pi.format = grey ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    im->h = (int)pi.height;
    im->w = (int)pi.width;
    im->c = grey ? 1 : 3;
    size_t nbytes = PNG_IMAGE_SIZE(pi);
    im->px = malloc(nbytes ? nbytes : 1);
    if (!im->px) {
        png_image_free(&pi);
        return graft_error_set(err, GRAFT_ERR_NOMEM, "%s: out of memory", path);
    }
    if (!png_image_finish_read(&pi, NULL, im->px, 0, NULL)) {
        free(im->px);
        im->px = NULL;
        return graft_error_set(err, GRAFT_ERR_PARSE, "%s: broken PNG (%s)", path, pi.message);
    }
    return GRAFT_OK;
}

typedef struct jpeg_fail {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_fail;

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_fail *jf = (jpeg_fail *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, jf->msg);
    longjmp(jf->jump, 1);
}

static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    /* Warnings are silent (the library never prints), except a premature end
     * of the file: libjpeg would pad the image with grey, PIL refuses it. */
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_fail *jf = (jpeg_fail *)cinfo->err;
        snprintf(jf->msg, sizeof jf->msg, "truncated");
        longjmp(jf->jump, 1);
    }
}

static graft_status load_jpeg(const char *path, image *im, graft_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return graft_error_set(err, GRAFT_ERR_IO, "%s: cannot open", path);
    struct jpeg_decompress_struct cinfo;
    jpeg_fail jf;
    /* Written after setjmp and read after longjmp, so volatile. */
    uint8_t *volatile px = NULL;
    memset(&jf, 0, sizeof jf);
    cinfo.err = jpeg_std_error(&jf.mgr);
    jf.mgr.error_exit = jpeg_on_error;
    jf.mgr.emit_message = jpeg_on_message;
    if (setjmp(jf.jump)) {
        jpeg_destroy_decompress(&cinfo);
        fclose(f);
        free(px);
        return graft_error_set(err, GRAFT_ERR_PARSE, "%s: broken JPEG (%s)", path, jf.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = cinfo.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int h = (int)cinfo.output_height, w = (int)cinfo.output_width, c = cinfo.output_components;
    px = malloc((size_t)h * (size_t)w * (size_t)c + 1);
    if (!px) {
        jpeg_destroy_decompress(&cinfo);
        fclose(f);
        return graft_error_set(err, GRAFT_ERR_NOMEM, "%s: out of memory", path);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = px + (size_t)cinfo.output_scanline * (size_t)w * (size_t)c;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    fclose(f);
    im->h = h;
    im->w = w;
    im->c = c;
    im->px = px;
    return GRAFT_OK;
}

static graft_status load_image(const char *path, image *im, graft_error *err)
{
    memset(im, 0, sizeof *im);
    FILE *f = fopen(path, "rb");
    if (!f)
        return graft_error_set(err, GRAFT_ERR_IO, "%s: cannot open", path);
    uint8_t sig[8] = {0};
    size_t got = fread(sig, 1, sizeof sig, f);
    fclose(f);
    /* Decide by content, not by extension: misnamed files are common. */
    if (got == 8 && !png_sig_cmp(sig, 0, 8))
        return load_png(path, im, err);
    if (got >= 3 && sig[0] == 0xff && sig[1] == 0xd8 && sig[2] == 0xff)
        return load_jpeg(path, im, err);
    return graft_error_set(err, GRAFT_ERR_PARSE, "%s: neither a PNG nor a JPEG image", path);
}

/* Converts im to c channels in place (grey <-> RGB; luma as PIL's "L"). */
static graft_status convert_channels(image *im, int c, const char *path, graft_error *err)
{
    if (im->c == c)
        return GRAFT_OK;
    size_t npx = (size_t)im->h * (size_t)im->w;
    uint8_t *px = malloc(npx * (size_t)c + 1);
    if (!px)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < npx; i++) {
        if (c == 3) {
            px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = im->px[i];
        } else {
            const uint8_t *p = im->px + 3 * i;
            px[i] = (uint8_t)((p[0] * 299u + p[1] * 587u + p[2] * 114u + 500u) / 1000u);
        }
    }
    free(im->px);
    im->px = px;
    im->c = c;
    return GRAFT_OK;
}

graft_status graft_data_load_folder(const char *dir, int height, int width, int channels,
                                    graft_dataset **out, graft_error *err)
{
    *out = NULL;
    name_list classes = {0}, files = {0};
    int32_t *labels = NULL;
    char **paths = NULL;
    int64_t n = 0, cap = 0;
    graft_dataset *ds = NULL;
    image im = {0};
    graft_status st;
    if (!dir || height < 0 || width < 0 || (channels != 0 && channels != 1 && channels != 3))
        return graft_error_set(err, GRAFT_ERR_ARG, "%s: bad image size %dx%dx%d requested",
                               dir ? dir : "(null)", height, width, channels);
    if ((st = list_dir(dir, true, &classes, err)))
        goto fail;
    if (classes.n == 0) {
        st = graft_error_set(err, GRAFT_ERR_NOT_FOUND, "%s: no class subfolders", dir);
        goto fail;
    }
    if (classes.n > GRAFT_MAX_CLASSES) {
        st = graft_error_set(err, GRAFT_ERR_ARG, "%s: %d class subfolders is too many", dir,
                             classes.n);
        goto fail;
    }
    char path[4096];
    for (int k = 0; k < classes.n; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, classes.v[k]);
        names_free(&files);
        if ((st = list_dir(path, false, &files, err)))
            goto fail;
        for (int i = 0; i < files.n; i++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                char **p2 = realloc(paths, (size_t)cap * sizeof *p2);
                int32_t *l2 = p2 ? realloc(labels, (size_t)cap * sizeof *l2) : NULL;
                if (p2)
                    paths = p2;
                if (l2)
                    labels = l2;
                if (!p2 || !l2) {
                    st = graft_error_set(err, GRAFT_ERR_NOMEM, "%s: out of memory", dir);
                    goto fail;
                }
            }
            size_t len = strlen(path) + strlen(files.v[i]) + 2;
            if (!(paths[n] = malloc(len))) {
                st = graft_error_set(err, GRAFT_ERR_NOMEM, "%s: out of memory", dir);
                goto fail;
            }
            snprintf(paths[n], len, "%s/%s", path, files.v[i]);
            labels[n++] = k;
        }
    }
    if (n == 0) {
        st = graft_error_set(err, GRAFT_ERR_NOT_FOUND, "%s: no PNG or JPEG images in the class "
                             "subfolders", dir);
        goto fail;
    }
    for (int64_t i = 0; i < n; i++) {
        if ((st = load_image(paths[i], &im, err)))
            goto fail;
        if (!ds) {
            int h = height ? height : im.h, w = width ? width : im.w;
            int c = channels ? channels : im.c;
            if ((st = graft__dataset_alloc(n, h, w, c, classes.n, &ds, err)))
                goto fail;
            if ((st = graft_data_set_class_names(ds, classes.n, (const char *const *)classes.v,
                                                 err)))
                goto fail;
        }
        if ((st = convert_channels(&im, ds->channels, paths[i], err)))
            goto fail;
        size_t img = (size_t)ds->height * (size_t)ds->width * (size_t)ds->channels;
        uint8_t *dst = ds->pixels + (size_t)i * img;
        if (im.h == ds->height && im.w == ds->width)
            memcpy(dst, im.px, img);
        else
            graft__resize_u8(im.px, im.h, im.w, im.c, dst, ds->height, ds->width);
        ds->labels[i] = labels[i];
        free(im.px);
        im.px = NULL;
    }
    *out = ds;
    ds = NULL;
    st = GRAFT_OK;
fail:
    free(im.px);
    graft_dataset_destroy(ds);
    for (int64_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    free(labels);
    names_free(&classes);
    names_free(&files);
    return st;
}
