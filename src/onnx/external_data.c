/* External tensor data, read side. The location in the file is untrusted:
 * it must name a regular file inside the model's folder. We refuse absolute
 * paths, any ".." component, backslashes, embedded NULs and empty names, walk
 * the path one component at a time with O_NOFOLLOW (so no symlink, file or
 * directory, is ever followed), refuse files with more than one hard link
 * (a hard link can alias a file outside the folder), and check offset and
 * length against the file size without overflow before reading. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx/onnx_private.h"

/* Strict non-negative decimal: digits only, fits int64. */
static bool parse_u63(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > (uint64_t)INT64_MAX)
            return false;
    }
    *out = (int64_t)v;
    return true;
}

static graft_status check_location(const char *loc, const char *what, graft_error *err)
{
    if (!loc || !*loc)
        return graft_error_set(err, GRAFT_ERR_INVALID, "%s: external data has no location", what);
    if (loc[0] == '/')
        return graft_error_set(err, GRAFT_ERR_INVALID,
                               "%s: external data location '%s' is an absolute path; only files "
                               "inside the model folder are allowed",
                               what, loc);
    if (strchr(loc, '\\'))
        return graft_error_set(err, GRAFT_ERR_INVALID,
                               "%s: external data location '%s' contains a backslash; locations "
                               "are POSIX paths inside the model folder",
                               what, loc);
    for (const char *p = loc; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return graft_error_set(err, GRAFT_ERR_INVALID,
                                   "%s: external data location '%s' contains '..'; only files "
                                   "inside the model folder are allowed",
                                   what, loc);
        p += n;
        while (*p == '/')
            p++;
    }
    return GRAFT_OK;
}

/* Opens loc below base_dir without following any symlink. Returns an fd or
 * -1 with err set. */
static int open_inside(const char *base_dir, const char *loc, const char *what, graft_error *err)
{
    int dfd = open(base_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        graft_error_set(err, GRAFT_ERR_IO, "%s: cannot open model folder '%s': %s", what,
                        base_dir, strerror(errno));
        return -1;
    }
    char comp[4096];
    const char *p = loc;
    for (;;) {
        while (*p == '/')
            p++;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n >= sizeof comp) {
            graft_error_set(err, GRAFT_ERR_INVALID, "%s: external data location too long", what);
            goto fail;
        }
        memcpy(comp, p, n);
        comp[n] = 0;
        const char *rest = p + n;
        while (*rest == '/')
            rest++;
        bool last = *rest == 0;
        if (n == 0 || (n == 1 && comp[0] == '.')) {
            if (last) {
                graft_error_set(err, GRAFT_ERR_INVALID,
                                "%s: external data location '%s' names a directory", what, loc);
                goto fail;
            }
            p = rest;
            continue;
        }
        struct stat st;
        if (fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            graft_error_set(err, GRAFT_ERR_IO, "%s: external data file '%s': %s", what, loc,
                            strerror(errno));
            goto fail;
        }
        if (S_ISLNK(st.st_mode)) {
            graft_error_set(err, GRAFT_ERR_INVALID,
                            "%s: external data location '%s' goes through a symbolic link "
                            "('%s'); refusing, it may leave the model folder",
                            what, loc, comp);
            goto fail;
        }
        if (!last) {
            if (!S_ISDIR(st.st_mode)) {
                graft_error_set(err, GRAFT_ERR_IO, "%s: external data location '%s': '%s' is "
                                "not a directory", what, loc, comp);
                goto fail;
            }
            int nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (nfd < 0) {
                graft_error_set(err, GRAFT_ERR_IO, "%s: external data location '%s': %s", what,
                                loc, strerror(errno));
                goto fail;
            }
            close(dfd);
            dfd = nfd;
            p = rest;
            continue;
        }
        if (!S_ISREG(st.st_mode)) {
            graft_error_set(err, GRAFT_ERR_INVALID,
                            "%s: external data location '%s' is not a regular file", what, loc);
            goto fail;
        }
        if (st.st_nlink > 1) {
            graft_error_set(err, GRAFT_ERR_INVALID,
                            "%s: external data file '%s' has %lu hard links; refusing, it may "
                            "alias a file outside the model folder",
                            what, loc, (unsigned long)st.st_nlink);
            goto fail;
        }
        int fd = openat(dfd, comp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            graft_error_set(err, GRAFT_ERR_IO, "%s: external data file '%s': %s", what, loc,
                            strerror(errno));
            goto fail;
        }
        struct stat st2;
        if (fstat(fd, &st2) != 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino ||
            st2.st_nlink > 1 || !S_ISREG(st2.st_mode)) {
            close(fd);
            graft_error_set(err, GRAFT_ERR_INVALID,
                            "%s: external data file '%s' changed while being opened", what, loc);
            goto fail;
        }
        close(dfd);
        return fd;
    }
fail:
    close(dfd);
    return -1;
}

graft_status graft__external_read(const Onnx__TensorProto *tp, const char *base_dir,
                                  const char *file, uint8_t **data, size_t *len, graft_error *err)
{
    char what[512];
    snprintf(what, sizeof what, "%s: initializer '%s'", file, tp->name ? tp->name : "");
    int64_t nelem = 0;
    size_t nbytes = 0;
    graft_status st = graft__tensor_pb_size(tp, what, &nelem, &nbytes, err);
    if (st)
        return st;
    if (tp->has_raw_data || tp->n_float_data || tp->n_int32_data || tp->n_int64_data ||
        tp->n_double_data || tp->n_uint64_data || tp->n_string_data)
        return graft_error_set(err, GRAFT_ERR_INVALID,
                               "%s: external tensor also holds data in the file", what);
    const char *loc = NULL;
    const char *s_off = NULL, *s_len = NULL;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        const char *k = e->key ? e->key : "";
        const char **slot = strcmp(k, "location") == 0 ? &loc
                            : strcmp(k, "offset") == 0 ? &s_off
                            : strcmp(k, "length") == 0 ? &s_len : NULL;
        if (!slot)
            continue; /* "checksum" and future keys carry no location */
        if (*slot)
            return graft_error_set(err, GRAFT_ERR_INVALID, "%s: external_data key '%s' given twice",
                                   what, k);
        *slot = e->value ? e->value : "";
    }
    st = check_location(loc, what, err);
    if (st)
        return st;
    if (!base_dir)
        return graft_error_set(err, GRAFT_ERR_INVALID,
                               "%s: external data '%s' but no model folder to read it from", what,
                               loc);
    int64_t off = 0, length = -1;
    if (s_off && !parse_u63(s_off, &off))
        return graft_error_set(err, GRAFT_ERR_INVALID,
                               "%s: external data offset '%s' is not an integer in 0..2^63-1", what,
                               s_off);
    if (s_len && !parse_u63(s_len, &length))
        return graft_error_set(err, GRAFT_ERR_INVALID,
                               "%s: external data length '%s' is not an integer in 0..2^63-1", what,
                               s_len);
    if (s_len && (uint64_t)length != (uint64_t)nbytes)
        return graft_error_set(err, GRAFT_ERR_INVALID,
                               "%s: external data length %lld disagrees with dims (%zu bytes)",
                               what, (long long)length, nbytes);
    int fd = open_inside(base_dir, loc, what, err);
    if (fd < 0)
        return err ? err->status : GRAFT_ERR_IO;
    struct stat sb;
    uint8_t *buf = NULL;
    if (fstat(fd, &sb) != 0) {
        st = graft_error_set(err, GRAFT_ERR_IO, "%s: cannot stat '%s': %s", what, loc,
                             strerror(errno));
        goto fail;
    }
    uint64_t fsize = (uint64_t)sb.st_size;
    if ((uint64_t)off > fsize || (uint64_t)nbytes > fsize - (uint64_t)off) {
        st = graft_error_set(err, GRAFT_ERR_INVALID,
                             "%s: external data range offset %lld + %zu bytes exceeds file '%s' "
                             "(%llu bytes)",
                             what, (long long)off, nbytes, loc, (unsigned long long)fsize);
        goto fail;
    }
    buf = malloc(nbytes ? nbytes : 1);
    if (!buf) {
        st = graft_error_set(err, GRAFT_ERR_NOMEM, "%s: out of memory reading %zu bytes", what,
                             nbytes);
        goto fail;
    }
    size_t got = 0;
    while (got < nbytes) {
        size_t chunk = nbytes - got > (1u << 30) ? (1u << 30) : nbytes - got;
        ssize_t r = pread(fd, buf + got, chunk, (off_t)((uint64_t)off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            st = graft_error_set(err, GRAFT_ERR_IO, "%s: reading '%s': %s", what, loc,
                                 r < 0 ? strerror(errno) : "unexpected end of file");
            goto fail;
        }
        got += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = nbytes;
    return GRAFT_OK;
fail:
    free(buf);
    close(fd);
    return st;
}

/* ---- a minimal protobuf wire walker ---- */

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

/* Calls fn for each length-delimited field numbered field; false on bad wire data. */
typedef bool (*field_fn)(const uint8_t *p, size_t len, void *ctx);

static bool walk(const uint8_t *p, size_t len, uint32_t field, field_fn fn, void *ctx)
{
    const uint8_t *end = p + len;
    while (p < end) {
        uint64_t key, v;
        if (!read_varint(&p, end, &key))
            return false;
        switch (key & 7) {
        case 0:
            if (!read_varint(&p, end, &v))
                return false;
            break;
        case 1:
            if (end - p < 8)
                return false;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return false;
            p += 4;
            break;
        case 2:
            if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return false;
            if ((key >> 3) == field && !fn(p, (size_t)v, ctx))
                return false;
            p += v;
            break;
        default:
            return false; /* groups are not used by onnx.proto */
        }
    }
    return true;
}

typedef struct nul_scan {
    int64_t ordinal; /* current initializer */
    int64_t found;
} nul_scan;

static bool entry_field(const uint8_t *p, size_t len, void *ctx)
{
    nul_scan *s = ctx;
    if (memchr(p, 0, len) && s->found < 0)
        s->found = s->ordinal;
    return true;
}

static bool entry(const uint8_t *p, size_t len, void *ctx)
{
    return walk(p, len, 1, entry_field, ctx) && walk(p, len, 2, entry_field, ctx);
}

static bool initializer(const uint8_t *p, size_t len, void *ctx)
{
    nul_scan *s = ctx;
    bool ok = walk(p, len, 13, entry, ctx);
    s->ordinal++;
    return ok;
}

static bool graph(const uint8_t *p, size_t len, void *ctx)
{
    return walk(p, len, 5, initializer, ctx);
}

int64_t graft__wire_find_nul_external(const uint8_t *buf, size_t len)
{
    nul_scan s = {0, -1};
    walk(buf, len, 7, graph, &s);
    return s.found;
}

/* ---- nesting depth ----
 * protobuf-c unpacks recursively without a depth limit, so a small file of
 * graphs nested in attributes (or types nested in types) thousands deep
 * would overflow the stack. We measure the nesting on the wire first. */

typedef struct depth_scan {
    int depth, max;
    bool too_deep;
} depth_scan;

static bool d_graph(const uint8_t *p, size_t len, void *ctx);
static bool d_type(const uint8_t *p, size_t len, void *ctx);

static bool d_enter(depth_scan *s)
{
    if (++s->depth > s->max)
        s->too_deep = true;
    return !s->too_deep;
}

static bool d_nested_type(const uint8_t *p, size_t len, void *ctx, uint32_t field)
{
    depth_scan *s = ctx;
    if (!d_enter(s))
        return false;
    bool ok = walk(p, len, field, d_type, ctx);
    s->depth--;
    return ok;
}

static bool d_seq(const uint8_t *p, size_t len, void *ctx) { return d_nested_type(p, len, ctx, 1); }
static bool d_map(const uint8_t *p, size_t len, void *ctx) { return d_nested_type(p, len, ctx, 2); }

static bool d_type(const uint8_t *p, size_t len, void *ctx)
{
    /* TypeProto: sequence_type 4, map_type 5, optional_type 9 */
    return walk(p, len, 4, d_seq, ctx) && walk(p, len, 5, d_map, ctx) &&
           walk(p, len, 9, d_seq, ctx);
}

static bool d_value_info(const uint8_t *p, size_t len, void *ctx)
{
    return walk(p, len, 2, d_type, ctx);
}

static bool d_attr(const uint8_t *p, size_t len, void *ctx)
{
    /* AttributeProto: g 6, graphs 11, tp 14, type_protos 15 */
    return walk(p, len, 6, d_graph, ctx) && walk(p, len, 11, d_graph, ctx) &&
           walk(p, len, 14, d_type, ctx) && walk(p, len, 15, d_type, ctx);
}

static bool d_node(const uint8_t *p, size_t len, void *ctx)
{
    return walk(p, len, 5, d_attr, ctx);
}

static bool d_graph(const uint8_t *p, size_t len, void *ctx)
{
    depth_scan *s = ctx;
    if (!d_enter(s))
        return false;
    /* GraphProto: node 1, input 11, output 12, value_info 13 */
    bool ok = walk(p, len, 1, d_node, ctx) && walk(p, len, 11, d_value_info, ctx) &&
              walk(p, len, 12, d_value_info, ctx) && walk(p, len, 13, d_value_info, ctx);
    s->depth--;
    return ok;
}

static bool d_function(const uint8_t *p, size_t len, void *ctx)
{
    return walk(p, len, 7, d_node, ctx); /* FunctionProto.node */
}

bool graft__wire_too_deep(const uint8_t *buf, size_t len, int max_depth)
{
    depth_scan s = {0, max_depth, false};
    /* ModelProto: graph 7, functions 25 */
    if (walk(buf, len, 7, d_graph, &s))
        walk(buf, len, 25, d_function, &s);
    return s.too_deep;
}
