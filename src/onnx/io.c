/* Whole-file reads and crash-safe writes (temporary file in the target folder,
 * fsync, rename) for the ONNX module. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx/onnx_private.h"

graft_status graft__file_read_all(const char *path, uint8_t **data, size_t *size, graft_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return graft_error_set(err, GRAFT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    uint8_t *buf = NULL;
    if (fstat(fd, &st) != 0) {
        graft_error_set(err, GRAFT_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        graft_error_set(err, GRAFT_ERR_IO, "%s: not a regular file", path);
        goto fail;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX / 2) {
        graft_error_set(err, GRAFT_ERR_IO, "%s: file too large", path);
        goto fail;
    }
    size_t n = (size_t)st.st_size;
    buf = malloc(n ? n : 1);
    if (!buf) {
        graft_error_set(err, GRAFT_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
        goto fail;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got > (1u << 30) ? (1u << 30) : n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            graft_error_set(err, GRAFT_ERR_IO, "%s: read error: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0) {
            graft_error_set(err, GRAFT_ERR_IO, "%s: file shrank while being read", path);
            goto fail;
        }
        got += (size_t)r;
    }
    close(fd);
    *data = buf;
    *size = n;
    return GRAFT_OK;
fail:
    free(buf);
    close(fd);
    return err ? err->status : GRAFT_ERR_IO;
}

graft_status graft__atomic_open(graft_atomic_file *f, const char *path, graft_error *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    size_t n = strlen(path);
    f->final_path = malloc(n + 1);
    f->tmp_path = malloc(n + 16);
    if (!f->final_path || !f->tmp_path) {
        graft__atomic_abort(f);
        return graft_error_set(err, GRAFT_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(f->final_path, path, n + 1);
    /* The temporary name sits in the same folder so that rename is atomic. */
    snprintf(f->tmp_path, n + 16, "%s.tmpXXXXXX", path);
    f->fd = mkstemp(f->tmp_path);
    if (f->fd < 0) {
        int e = errno;
        free(f->tmp_path);
        f->tmp_path = NULL;
        graft__atomic_abort(f);
        return graft_error_set(err, GRAFT_ERR_IO, "%s: cannot create file: %s", path, strerror(e));
    }
    /* mkstemp makes 0600 files; a model is an ordinary document. */
    mode_t mask = umask(0);
    umask(mask);
    (void)fchmod(f->fd, 0666 & ~mask);
    return GRAFT_OK;
}

graft_status graft__atomic_write(graft_atomic_file *f, const void *data, size_t n, graft_error *err)
{
    const uint8_t *p = data;
    while (n > 0 && !f->failed) {
        ssize_t w = write(f->fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            f->failed = true;
            f->errno_saved = w < 0 ? errno : EIO;
            break;
        }
        p += w;
        n -= (size_t)w;
        f->written += (uint64_t)w;
    }
    if (f->failed)
        return graft_error_set(err, GRAFT_ERR_IO, "%s: write error: %s", f->final_path,
                               strerror(f->errno_saved));
    return GRAFT_OK;
}

graft_status graft__atomic_finish(graft_atomic_file *f, graft_error *err)
{
    if (f->failed)
        return graft_error_set(err, GRAFT_ERR_IO, "%s: write error: %s", f->final_path,
                               strerror(f->errno_saved));
    if (fsync(f->fd) != 0)
        return graft_error_set(err, GRAFT_ERR_IO, "%s: fsync failed: %s", f->final_path,
                               strerror(errno));
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0)
        return graft_error_set(err, GRAFT_ERR_IO, "%s: close failed: %s", f->final_path,
                               strerror(errno));
    return GRAFT_OK;
}

graft_status graft__atomic_commit(graft_atomic_file *f, graft_error *err)
{
    if (rename(f->tmp_path, f->final_path) != 0)
        return graft_error_set(err, GRAFT_ERR_IO, "%s: cannot rename into place: %s",
                               f->final_path, strerror(errno));
    free(f->tmp_path);
    f->tmp_path = NULL;
    return GRAFT_OK;
}

void graft__atomic_abort(graft_atomic_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    if (f->tmp_path)
        unlink(f->tmp_path);
    free(f->tmp_path);
    free(f->final_path);
    f->tmp_path = NULL;
    f->final_path = NULL;
}

/* A ProtobufCBuffer that stages output in 1 MiB chunks and writes them out. */
typedef struct file_sink {
    ProtobufCBuffer base;
    graft_atomic_file *f;
    uint8_t *buf;
    size_t used, cap;
} file_sink;

static void sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    file_sink *s = (file_sink *)b;
    if (s->f->failed || len == 0)
        return;
    if (s->used + len > s->cap) {
        if (s->used && graft__atomic_write(s->f, s->buf, s->used, NULL))
            return;
        s->used = 0;
        if (len >= s->cap) {
            graft__atomic_write(s->f, data, len, NULL);
            return;
        }
    }
    memcpy(s->buf + s->used, data, len);
    s->used += len;
}

graft_status graft__atomic_pack(graft_atomic_file *f, const ProtobufCMessage *msg, graft_error *err)
{
    file_sink s = {.base = {.append = sink_append}, .f = f, .cap = 1u << 20};
    s.buf = malloc(s.cap);
    if (!s.buf)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "%s: out of memory", f->final_path);
    protobuf_c_message_pack_to_buffer(msg, &s.base);
    if (s.used && !f->failed)
        graft__atomic_write(f, s.buf, s.used, NULL);
    free(s.buf);
    if (f->failed)
        return graft_error_set(err, GRAFT_ERR_IO, "%s: write error: %s", f->final_path,
                               strerror(f->errno_saved));
    return GRAFT_OK;
}
