/* tools/graft/cli_util.c - option scanning, value parsing and model
 * settings shared by the subcommands. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "cli.h"

#include <errno.h>
#include <json.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int cli_fail(int code, const char *fmt, ...)
{
    va_list ap;
    fputs("graft: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int cli_fail_err(const graft_error *err)
{
    /* A message with a newline would break the one-line contract; print
     * only its first line. */
    const char *msg = err->msg[0] ? err->msg : graft_status_describe(err->status);
    size_t len = strcspn(msg, "\n");
    fprintf(stderr, "graft: %.*s\n", (int)len, msg);
    return CLI_FAIL;
}

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv)
{
    memset(a, 0, sizeof(*a));
    a->cmd = cmd;
    a->argc = argc;
    a->argv = argv;
    a->i = 1;
}

int cli_args_next(cli_args *a)
{
    static char name[128];
    a->name = NULL;
    a->value = NULL;
    a->positional = NULL;
    if (a->i >= a->argc)
        return -1;
    const char *w = a->argv[a->i++];
    if (w[0] == '-' && w[1] == '-' && w[2] != '\0') {
        const char *eq = strchr(w, '=');
        size_t len = eq ? (size_t)(eq - w) : strlen(w);
        if (len >= sizeof(name))
            len = sizeof(name) - 1;
        memcpy(name, w, len);
        name[len] = '\0';
        a->name = name;
        a->value = eq ? eq + 1 : NULL;
        return 1;
    }
    if (w[0] == '-' && w[1] != '\0' && !(w[1] == '-' && w[2] == '\0')) {
        /* Short options: only -h. */
        a->name = w;
        return 1;
    }
    a->positional = w;
    return 0;
}

const char *cli_args_value(cli_args *a)
{
    if (a->value)
        return a->value;
    /* "--model --out x.onnx": the next option is not a value */
    const char *next = a->i < a->argc ? a->argv[a->i] : NULL;
    if (!next || (next[0] == '-' && next[1] == '-' && next[2] != '\0')) {
        cli_fail(CLI_USAGE, "%s: %s needs a value", a->cmd, a->name);
        return NULL;
    }
    return a->argv[a->i++];
}

bool cli_args_flag(cli_args *a)
{
    if (a->value) {
        cli_fail(CLI_USAGE, "%s: option '%s' takes no value", a->cmd, a->name);
        return false;
    }
    return true;
}

int cli_args_unknown(cli_args *a)
{
    return cli_fail(CLI_USAGE, "%s: unknown option '%s' (see graft %s --help)", a->cmd, a->name,
                    a->cmd);
}

bool cli_parse_int(const char *flag, const char *s, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0') {
        cli_fail(CLI_USAGE, "%s: '%s' is not an integer", flag, s);
        return false;
    }
    if (v < min || v > max) {
        cli_fail(CLI_USAGE, "%s: %ld is out of range [%ld, %ld]", flag, v, min, max);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_u64(const char *flag, const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    if (s[0] == '-') {
        cli_fail(CLI_USAGE, "%s: '%s' is not a non-negative integer", flag, s);
        return false;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0') {
        cli_fail(CLI_USAGE, "%s: '%s' is not a non-negative integer", flag, s);
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

bool cli_parse_float(const char *flag, const char *s, double min, double max, float *out)
{
    double v;
    if (!parse_double(s, &v)) {
        cli_fail(CLI_USAGE, "%s: '%s' is not a number", flag, s);
        return false;
    }
    if (v < min || v > max) {
        cli_fail(CLI_USAGE, "%s: %g is out of range [%g, %g]", flag, v, min, max);
        return false;
    }
    *out = (float)v;
    return true;
}

int cli_parse_floats(const char *flag, const char *s, float *out, int max, bool fill3)
{
    int n = 0;
    const char *p = s;
    char tok[64];
    for (;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof(tok) || n >= max) {
            cli_fail(CLI_USAGE, "%s: expected up to %d comma-separated numbers, got '%s'", flag,
                     max, s);
            return -1;
        }
        memcpy(tok, p, len);
        tok[len] = '\0';
        double v;
        if (!parse_double(tok, &v)) {
            cli_fail(CLI_USAGE, "%s: '%s' is not a number", flag, tok);
            return -1;
        }
        out[n++] = (float)v;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    if (fill3 && n == 1)
        for (int i = 1; i < 3 && i < max; i++)
            out[i] = out[0];
    if (fill3 && n == 2) {
        cli_fail(CLI_USAGE, "%s: give 1 or 3 values, got '%s'", flag, s);
        return -1;
    }
    return fill3 ? 3 : n;
}

int cli_parse_ints(const char *flag, const char *s, int *out, int max, int min_value,
                   int max_value)
{
    int n = 0;
    const char *p = s;
    char tok[32];
    for (;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof(tok)) {
            cli_fail(CLI_USAGE, "%s: expected comma-separated integers, got '%s'", flag, s);
            return -1;
        }
        if (n >= max) {
            cli_fail(CLI_USAGE, "%s: more than %d values", flag, max);
            return -1;
        }
        memcpy(tok, p, len);
        tok[len] = '\0';
        long v;
        if (!cli_parse_int(flag, tok, min_value, max_value, &v))
            return -1;
        for (int j = 0; j < n; j++)
            if (out[j] == (int)v) {
                cli_fail(CLI_USAGE, "%s: %ld is listed twice", flag, v);
                return -1;
            }
        out[n++] = (int)v;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    return n;
}

bool cli_parse_size(const char *flag, const char *s, int *h, int *w)
{
    long a, b;
    const char *x = strpbrk(s, "xX");
    char tok[32];
    if (!x) {
        if (!cli_parse_int(flag, s, 1, 16384, &a))
            return false;
        *h = *w = (int)a;
        return true;
    }
    size_t len = (size_t)(x - s);
    if (len == 0 || len >= sizeof(tok)) {
        cli_fail(CLI_USAGE, "%s: expected HxW, got '%s'", flag, s);
        return false;
    }
    memcpy(tok, s, len);
    tok[len] = '\0';
    if (!cli_parse_int(flag, tok, 1, 16384, &a) || !cli_parse_int(flag, x + 1, 1, 16384, &b))
        return false;
    *h = (int)a;
    *w = (int)b;
    return true;
}

bool cli_parse_augment(const char *flag, const char *s, graft_augment *aug)
{
    memset(aug, 0, sizeof(*aug));
    if (strcmp(s, "none") == 0 || s[0] == '\0')
        return true;
    const char *p = s;
    char tok[64];
    for (;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof(tok)) {
            cli_fail(CLI_USAGE, "%s: bad list '%s'", flag, s);
            return false;
        }
        memcpy(tok, p, len);
        tok[len] = '\0';
        char *eq = strchr(tok, '=');
        if (eq)
            *eq++ = '\0';
        float *dst = NULL;
        double max = 1.0;
        if (strcmp(tok, "flip") == 0)
            dst = &aug->flip_prob;
        else if (strcmp(tok, "rotate") == 0 || strcmp(tok, "rotation") == 0)
            dst = &aug->rotation, max = 0.5;
        else if (strcmp(tok, "zoom") == 0)
            dst = &aug->zoom, max = 0.9;
        else if (strcmp(tok, "crop") == 0)
            dst = &aug->crop, max = 0.9;
        if (!dst) {
            cli_fail(CLI_USAGE, "%s: unknown augmentation '%s' (flip, rotate=F, zoom=F, crop=F)",
                     flag, tok);
            return false;
        }
        if (eq) {
            if (!cli_parse_float(flag, eq, 0.0, max, dst))
                return false;
        } else if (dst == &aug->flip_prob) {
            *dst = 0.5f;
        } else {
            cli_fail(CLI_USAGE, "%s: '%s' needs a value, e.g. %s=0.1", flag, tok, tok);
            return false;
        }
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    return true;
}

int cli_pp_flag(cli_args *a, cli_pp_flags *f)
{
    const char *n = a->name;
    const char *v;
    if (strcmp(n, "--size") == 0) {
        if (!(v = cli_args_value(a)) || !cli_parse_size(n, v, &f->pp.height, &f->pp.width))
            return -1;
        f->set_size = true;
    } else if (strcmp(n, "--channels") == 0) {
        long c = 0;
        if (!(v = cli_args_value(a)))
            return -1;
        if (!cli_parse_int(n, v, 1, 3, &c) || c == 2) {
            if (c == 2)
                cli_fail(CLI_USAGE, "%s: must be 1 or 3", n);
            return -1;
        }
        f->pp.channels = (int)c;
        f->set_channels = true;
    } else if (strcmp(n, "--scale") == 0) {
        if (!(v = cli_args_value(a)) || !cli_parse_float(n, v, -1e6, 1e6, &f->pp.scale))
            return -1;
        f->set_scale = true;
    } else if (strcmp(n, "--mean") == 0) {
        if (!(v = cli_args_value(a)) || cli_parse_floats(n, v, f->pp.mean, 3, true) < 0)
            return -1;
        f->set_mean = true;
    } else if (strcmp(n, "--std") == 0) {
        if (!(v = cli_args_value(a)) || cli_parse_floats(n, v, f->pp.std, 3, true) < 0)
            return -1;
        for (int c = 0; c < 3; c++)
            if (!(f->pp.std[c] > 0.0f)) {
                cli_fail(CLI_USAGE, "%s: a standard deviation must be above 0 (got %g)", n,
                         (double)f->pp.std[c]);
                return -1;
            }
        f->set_std = true;
    } else if (strcmp(n, "--bgr") == 0 || strcmp(n, "--rgb") == 0) {
        if (!cli_args_flag(a))
            return -1;
        f->pp.bgr = strcmp(n, "--bgr") == 0;
        f->set_order = true;
    } else if (strcmp(n, "--nhwc") == 0 || strcmp(n, "--nchw") == 0) {
        if (!cli_args_flag(a))
            return -1;
        f->pp.nhwc = strcmp(n, "--nhwc") == 0;
        f->set_layout = true;
    } else {
        return 0;
    }
    return 1;
}

void cli_pp_apply(const cli_pp_flags *f, graft_preprocess *base)
{
    if (f->set_size) {
        base->height = f->pp.height;
        base->width = f->pp.width;
    }
    if (f->set_channels)
        base->channels = f->pp.channels;
    if (f->set_scale)
        base->scale = f->pp.scale;
    if (f->set_mean)
        memcpy(base->mean, f->pp.mean, sizeof(base->mean));
    if (f->set_std)
        memcpy(base->std, f->pp.std, sizeof(base->std));
    if (f->set_order)
        base->bgr = f->pp.bgr;
    if (f->set_layout)
        base->nhwc = f->pp.nhwc;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void free_strings(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void cli_model_info_fini(cli_model_info *mi)
{
    free(mi->cut);
    free(mi->manifest);
    free_strings(mi->names, mi->n_names);
    free_strings(mi->labels, mi->n_labels);
    memset(mi, 0, sizeof(*mi));
}

static bool json_get_floats3(json_object *o, const char *key, float *out, const char *what,
                             graft_error *err)
{
    json_object *a;
    if (!json_object_object_get_ex(o, key, &a))
        return true;
    if (json_object_is_type(a, json_type_double) || json_object_is_type(a, json_type_int)) {
        out[0] = out[1] = out[2] = (float)json_object_get_double(a);
        return true;
    }
    if (!json_object_is_type(a, json_type_array) ||
        (json_object_array_length(a) != 1 && json_object_array_length(a) != 3)) {
        graft_error_set(err, GRAFT_ERR_PARSE, "%s: \"%s\" must be a number or 3 numbers", what,
                        key);
        return false;
    }
    size_t n = json_object_array_length(a);
    for (size_t i = 0; i < 3; i++)
        out[i] = (float)json_object_get_double(json_object_array_get_idx(a, n == 1 ? 0 : i));
    return true;
}

static bool pp_from_object(json_object *o, graft_preprocess *pp, const char *what,
                           graft_error *err)
{
    json_object *v;
    if (!json_object_is_type(o, json_type_object)) {
        graft_error_set(err, GRAFT_ERR_PARSE, "%s: preprocessing is not a JSON object", what);
        return false;
    }
    if (json_object_object_get_ex(o, "height", &v))
        pp->height = json_object_get_int(v);
    if (json_object_object_get_ex(o, "width", &v))
        pp->width = json_object_get_int(v);
    if (json_object_object_get_ex(o, "channels", &v))
        pp->channels = json_object_get_int(v);
    if (json_object_object_get_ex(o, "scale", &v))
        pp->scale = (float)json_object_get_double(v);
    if (!json_get_floats3(o, "mean", pp->mean, what, err) ||
        !json_get_floats3(o, "std", pp->std, what, err))
        return false;
    if (json_object_object_get_ex(o, "layout", &v))
        pp->nhwc = strcmp(json_object_get_string(v), "NHWC") == 0;
    if (json_object_object_get_ex(o, "order", &v))
        pp->bgr = strcmp(json_object_get_string(v), "BGR") == 0;
    if (pp->height < 1 || pp->width < 1 || (pp->channels != 1 && pp->channels != 3)) {
        graft_error_set(err, GRAFT_ERR_PARSE, "%s: bad preprocessing size %dx%dx%d", what,
                        pp->height, pp->width, pp->channels);
        return false;
    }
    for (int c = 0; c < 3; c++)
        if (!(pp->std[c] > 0.0f)) {
            graft_error_set(err, GRAFT_ERR_PARSE, "%s: preprocessing std must be above 0", what);
            return false;
        }
    return true;
}

bool cli_pp_from_json(const char *json, graft_preprocess *pp, graft_error *err)
{
    json_object *o = json_tokener_parse(json);
    if (!o) {
        graft_error_set(err, GRAFT_ERR_PARSE, "graft.preprocess metadata is not valid JSON");
        return false;
    }
    bool ok = pp_from_object(o, pp, "graft.preprocess metadata", err);
    json_object_put(o);
    return ok;
}

char *cli_pp_to_json(const graft_preprocess *pp)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"height\": %d, \"width\": %d, \"channels\": %d, \"scale\": %.9g, "
             "\"mean\": [%.9g, %.9g, %.9g], \"std\": [%.9g, %.9g, %.9g], "
             "\"layout\": \"%s\", \"order\": \"%s\"}",
             pp->height, pp->width, pp->channels, (double)pp->scale, (double)pp->mean[0],
             (double)pp->mean[1], (double)pp->mean[2], (double)pp->std[0], (double)pp->std[1],
             (double)pp->std[2], pp->nhwc ? "NHWC" : "NCHW", pp->bgr ? "BGR" : "RGB");
    return xstrdup(buf);
}

/* "a,b,c" into a malloc'd string array. */
static int split_names(const char *s, char ***out)
{
    int n = 1;
    for (const char *p = s; *p; p++)
        n += *p == ',';
    char **v = calloc((size_t)n, sizeof(*v));
    if (!v)
        return -1;
    const char *p = s;
    for (int i = 0; i < n; i++) {
        size_t len = strcspn(p, ",");
        v[i] = malloc(len + 1);
        if (!v[i]) {
            free_strings(v, i);
            return -1;
        }
        memcpy(v[i], p, len);
        v[i][len] = '\0';
        p += len + (p[len] == ',');
    }
    *out = v;
    return n;
}

bool cli_manifest_load(const char *model_path, cli_model_info *mi, graft_error *err)
{
    char path[4096];
    size_t len = strlen(model_path);
    if (len >= sizeof(path) - 8)
        return true;
    memcpy(path, model_path, len + 1);
    if (len > 5 && strcmp(path + len - 5, ".onnx") == 0)
        path[len - 5] = '\0';
    strcat(path, ".json");
    if (access(path, F_OK) != 0)
        return true;
    json_object *o = json_object_from_file(path);
    if (!o || !json_object_is_type(o, json_type_object)) {
        if (o)
            json_object_put(o);
        graft_error_set(err, GRAFT_ERR_PARSE, "%s: not a valid JSON manifest", path);
        return false;
    }
    bool ok = false;
    json_object *v;
    if (!(mi->manifest = xstrdup(path)))
        goto nomem;
    if (json_object_object_get_ex(o, "preprocess", &v)) {
        mi->pp = graft_preprocess_default();
        if (!pp_from_object(v, &mi->pp, path, err))
            goto done;
        mi->has_pp = true;
    }
    if (json_object_object_get_ex(o, "cut", &v) && json_object_is_type(v, json_type_string) &&
        strcmp(json_object_get_string(v), "auto") != 0 && json_object_get_string(v)[0]) {
        mi->cut = xstrdup(json_object_get_string(v));
        if (!mi->cut)
            goto nomem;
    }
    if (json_object_object_get_ex(o, "class_names", &v) &&
        json_object_is_type(v, json_type_array)) {
        int n = (int)json_object_array_length(v);
        if (n > GRAFT_MAX_CLASSES) {
            graft_error_set(err, GRAFT_ERR_PARSE, "%s: too many class_names", path);
            goto done;
        }
        mi->names = calloc((size_t)n + 1, sizeof(char *));
        if (!mi->names)
            goto nomem;
        for (int i = 0; i < n; i++) {
            mi->names[i] = xstrdup(json_object_get_string(json_object_array_get_idx(v, (size_t)i)));
            if (!mi->names[i])
                goto nomem;
            mi->n_names = i + 1;
        }
    }
    ok = true;
    goto done;
nomem:
    graft_error_set(err, GRAFT_ERR_NOMEM, "%s: out of memory", path);
done:
    json_object_put(o);
    return ok;
}

bool cli_meta_load(const graft_graph *g, cli_model_info *mi, graft_error *err)
{
    const char *pp = graft_graph_meta_get(g, "graft.preprocess");
    const char *labels = graft_graph_meta_get(g, "graft.labels");
    const char *classes = graft_graph_meta_get(g, "graft.classes");
    const char *src = g->source_path ? g->source_path : "model";
    if (pp) {
        mi->pp = graft_preprocess_default();
        if (!cli_pp_from_json(pp, &mi->pp, err)) {
            graft_error_prefix(err, "%s", src);
            return false;
        }
        mi->has_pp = true;
    }
    if (labels && labels[0]) {
        int n = split_names(labels, &mi->labels);
        if (n < 0)
            return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory"), false;
        mi->n_labels = n;
    }
    if (classes && classes[0]) {
        const char *p = classes;
        int n = 0;
        while (*p && n < GRAFT_MAX_CLASSES) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p || v < 0 || v > INT_MAX) {
                graft_error_set(err, GRAFT_ERR_PARSE, "%s: bad graft.classes metadata '%s'", src,
                                classes);
                return false;
            }
            mi->classes_src[n++] = (int)v;
            p = end + (*end == ',');
        }
        mi->n_classes_src = n;
    }
    return true;
}

graft_preprocess cli_pp_guess(const graft_graph *g)
{
    graft_preprocess pp = graft_preprocess_default();
    if (g->n_inputs < 1)
        return pp;
    const graft_value *v = &g->values[g->inputs[0]];
    if (v->dtype == GRAFT_UINT8)
        pp.scale = 1.0f; /* uint8 images: the model rescales 0..255 itself */
    if (v->rank != 4)
        return pp;
    if (v->dims[1] == 1 || v->dims[1] == 3) {
        pp.channels = (int)v->dims[1];
        pp.nhwc = false;
        if (v->dims[2] > 0 && v->dims[3] > 0) {
            pp.height = (int)v->dims[2];
            pp.width = (int)v->dims[3];
        }
    } else if (v->dims[3] == 1 || v->dims[3] == 3) {
        pp.channels = (int)v->dims[3];
        pp.nhwc = true;
        if (v->dims[1] > 0 && v->dims[2] > 0) {
            pp.height = (int)v->dims[1];
            pp.width = (int)v->dims[2];
        }
    }
    return pp;
}

const char *cli_default_model(char *buf, size_t size)
{
    static const char *rel = "models/fmnist_cnn.onnx";
    if (access(rel, R_OK) == 0) {
        snprintf(buf, size, "%s", rel);
        return buf;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        /* <src>/<build>/graft, <src>/<build>/tools/graft/graft, ... */
        for (int up = 0; up < 4; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash)
                break;
            *slash = '\0';
            if ((size_t)snprintf(buf, size, "%s/%s", exe, rel) < size && access(buf, R_OK) == 0)
                return buf;
        }
    }
    snprintf(buf, size, "%s", rel);
    return buf;
}

bool cli_write_tmp(const char *path, const char *text, char *tmp, size_t size, graft_error *err)
{
    tmp[0] = '\0';
    if ((size_t)snprintf(tmp, size, "%s.tmp.%ld", path, (long)getpid()) >= size) {
        tmp[0] = '\0';
        return graft_error_set(err, GRAFT_ERR_ARG, "%s: path too long", path), false;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        tmp[0] = '\0';
        return graft_error_set(err, GRAFT_ERR_IO, "%s: cannot write: %s", path, strerror(errno)),
               false;
    }
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, f) == len;
    int e = errno;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        e = errno ? errno : e;
        remove(tmp);
        tmp[0] = '\0';
        graft_error_set(err, GRAFT_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    return ok;
}

bool cli_write_file(const char *path, const char *text, graft_error *err)
{
    char tmp[4200];
    if (!cli_write_tmp(path, text, tmp, sizeof(tmp), err))
        return false;
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        graft_error_set(err, GRAFT_ERR_IO, "%s: cannot write: %s", path, strerror(e));
        return false;
    }
    return true;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_note_training_form(const graft_graph *g, FILE *out)
{
    int count = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const graft_node *n = &g->nodes[i];
        if (!graft_node_training_form(g, n))
            continue;
        const char *what = n->op_type[0] == 'B'
                               ? "training_mode=1: normalised with its stored statistics"
                               : "a training_mode input: identity";
        fprintf(out, "note: %s '%s' has %s (graft runs it in inference form, and exports it "
                "that way)\n",
                n->op_type, n->name, what);
        count++;
    }
    return count;
}

/* "dir/name" -> the folder part ("." for a bare name). */
static void folder_of(const char *path, char *dir, size_t size)
{
    snprintf(dir, size, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, size, ".");
    else
        *(slash == dir ? slash + 1 : slash) = '\0';
}

int cli_check_output(const char *flag, const char *path)
{
    if (!path[0])
        return cli_fail(CLI_USAGE, "%s: empty path", flag);
    size_t len = strlen(path);
    struct stat st;
    if (path[len - 1] == '/' || (stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
        return cli_fail(CLI_USAGE, "%s: '%s' is a folder, not a file", flag, path);
    if (len > 4000)
        return cli_fail(CLI_USAGE, "%s: path too long", flag);
    char dir[4096];
    folder_of(path, dir, sizeof dir);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cli_fail(CLI_USAGE, "%s: folder '%s' does not exist", flag, dir);
    if (access(dir, W_OK) != 0)
        return cli_fail(CLI_USAGE, "%s: folder '%s' is not writable", flag, dir);
    if (access(path, F_OK) == 0 && access(path, W_OK) != 0)
        return cli_fail(CLI_USAGE, "%s: '%s' is not writable", flag, path);
    return CLI_OK;
}

/* The real path of a file, or of its folder plus its name when it does not
 * exist yet; false when neither resolves. */
static bool real_path(const char *path, char *out, size_t size)
{
    char buf[PATH_MAX];
    if (realpath(path, buf)) {
        snprintf(out, size, "%s", buf);
        return true;
    }
    char dir[4096];
    folder_of(path, dir, sizeof dir);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!realpath(dir, buf))
        return false;
    snprintf(out, size, "%s/%s", buf, base);
    return true;
}

bool cli_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char ra[PATH_MAX + 256], rb[PATH_MAX + 256];
    if (real_path(a, ra, sizeof ra) && real_path(b, rb, sizeof rb))
        return strcmp(ra, rb) == 0;
    return strcmp(a, b) == 0;
}

bool cli_model_nonempty(const char *path, graft_error *err)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
        graft_error_set(err, GRAFT_ERR_PARSE, "%s: the file is empty (0 bytes), not an ONNX model",
                        path);
        return false;
    }
    return true;
}

void cli_note_per_class(const graft_dataset *ds, int64_t per_class, const char *flag, FILE *out)
{
    if (per_class <= 0 || ds->n_classes <= 0)
        return;
    int64_t count[GRAFT_MAX_CLASSES] = {0};
    for (int64_t i = 0; i < ds->n; i++)
        if (ds->labels[i] >= 0 && ds->labels[i] < GRAFT_MAX_CLASSES)
            count[ds->labels[i]]++;
    int short_of = 0;
    for (int c = 0; c < ds->n_classes; c++)
        short_of += count[c] < per_class;
    if (!short_of)
        return;
    fprintf(out, "note: %s %lld: fewer images in %d class%s, all taken:", flag,
            (long long)per_class, short_of, short_of == 1 ? "" : "es");
    for (int c = 0, k = 0; c < ds->n_classes; c++)
        if (count[c] < per_class)
            fprintf(out, "%s %s %lld", k++ ? "," : "", ds->class_names[c], (long long)count[c]);
    fputc('\n', out);
}
