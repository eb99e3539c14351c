/* Helpers for the ONNX tests (see onnx_util.h). */
#include "onnx_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *ou_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

char *ou_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    char *p = ou_join(base, "graft-onnx-XXXXXX");
    if (p && !mkdtemp(p)) {
        free(p);
        return NULL;
    }
    return p;
}

int ou_sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc))
        return -1;
    return WEXITSTATUS(rc);
}

void ou_rmtree(const char *dir)
{
    if (dir && *dir && strcmp(dir, "/") != 0)
        ou_sh("rm -rf '%s'", dir);
}

bool ou_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

const char *ou_python(void)
{
    static int state = 0; /* 0 unknown, 1 ok, 2 missing */
    static const char *py;
    if (state == 0) {
        py = getenv("GRAFT_PYTHON");
        if (!py || !*py)
            py = "/usr/bin/python3";
        state = ou_sh("'%s' -c 'import onnx, numpy' >/dev/null 2>&1", py) == 0 ? 1 : 2;
    }
    return state == 1 ? py : NULL;
}

const char *ou_shared(void)
{
    static char buf[4096];
    const char *s = getenv("GRAFT_SHARED_DIR");
    if (!s || !*s)
        return NULL;
    snprintf(buf, sizeof buf, "%s/cases/INDEX.md", s);
    if (!ou_exists(buf))
        return NULL;
    return s;
}

const char *ou_source(void)
{
    const char *s = getenv("GRAFT_SOURCE_DIR");
    return s && *s ? s : ".";
}

static char *models_dir;

static void models_cleanup(void)
{
    ou_rmtree(models_dir);
    free(models_dir);
    models_dir = NULL;
}

const char *ou_models(void)
{
    if (models_dir)
        return models_dir;
    const char *py = ou_python();
    if (!py)
        return NULL;
    char *dir = ou_tmpdir();
    if (!dir)
        return NULL;
    if (ou_sh("'%s' '%s/tests/onnx/make_models.py' '%s'", py, ou_source(), dir) != 0) {
        ou_rmtree(dir);
        free(dir);
        return NULL;
    }
    models_dir = dir;
    atexit(models_cleanup);
    return models_dir;
}

char *ou_copy_case(const char *name, const char *dst)
{
    const char *sh = ou_shared();
    if (!sh)
        return NULL;
    /* the outside files some cases point at, beside the case folders */
    if (ou_sh("mkdir -p '%s' && cp -R '%s/cases/%s' '%s/' && chmod -R u+w '%s/%s' && "
              "for f in outside_target.bin outside_victim.bin outside_dir; do "
              "[ -e '%s/'$f ] || cp -R '%s/cases/'$f '%s/' 2>/dev/null; done; true",
              dst, sh, name, dst, dst, name, dst, sh, dst) != 0)
        return NULL;
    return ou_join(dst, name);
}

unsigned char *ou_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b)
        *len = (size_t)(n > 0 ? n : 0);
    return b;
}
