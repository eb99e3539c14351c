/* tests/common/onnx_util.h - helpers for the ONNX import/export tests:
 * temporary folders, running Debian's python3 (onnx, numpy), copying shared
 * cases. Paths returned are malloc'd; the caller frees them. */
#ifndef GRAFT_ONNX_UTIL_H
#define GRAFT_ONNX_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "graft/graft.h"

/* A fresh folder under $TMPDIR or /tmp. */
char *ou_tmpdir(void);
void ou_rmtree(const char *dir);
/* Runs a shell command built printf-style; returns its exit status (-1 on failure). */
int ou_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* $GRAFT_PYTHON (or /usr/bin/python3) when it can import onnx and numpy, else NULL. */
const char *ou_python(void);
/* $GRAFT_SHARED_DIR when it holds cases/ and models/, else NULL. */
const char *ou_shared(void);
/* $GRAFT_SOURCE_DIR (or the folder this was built from). */
const char *ou_source(void);
/* Folder with the models of tests/onnx/make_models.py, made once per process;
 * NULL when python is missing. Removed at exit. */
const char *ou_models(void);
/* Copies <shared>/cases/<name> to <dst>/<name> (and the files beside the cases
 * that some cases point at); returns the new path or NULL. */
char *ou_copy_case(const char *name, const char *dst);
/* "dir/name" */
char *ou_join(const char *dir, const char *name);
bool ou_exists(const char *path);
/* Reads a whole file; NULL on failure. */
unsigned char *ou_read(const char *path, size_t *len);

#endif
