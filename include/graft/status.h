/* graft/status.h - status codes and the error message buffer.
 *
 *   graft_error err = {0};
 *   graft_graph *g = NULL;
 *   if (graft_onnx_import_file("model.onnx", NULL, &g, &err) != GRAFT_OK)
 *       fprintf(stderr, "graft: %s\n", err.msg);   // one line, names file and problem
 *
 * Every library function that can fail returns a graft_status and, on failure,
 * writes a one-line message into the caller's graft_error. The library never
 * prints and never exits.
 */
#ifndef GRAFT_STATUS_H
#define GRAFT_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, description) */
#define GRAFT_STATUS_LIST(X)                                                        \
    X(OK, 0, "ok")                                                                  \
    X(ERR_NOMEM, -1, "out of memory")                                               \
    X(ERR_IO, -2, "input/output error")                                             \
    X(ERR_PARSE, -3, "file is truncated or corrupt")                                \
    X(ERR_INVALID, -4, "invalid model")                                             \
    X(ERR_UNSUPPORTED, -5, "unsupported")                                           \
    X(ERR_SHAPE, -6, "shape mismatch")                                              \
    X(ERR_ARG, -7, "invalid argument")                                              \
    X(ERR_NOT_FOUND, -8, "not found")                                               \
    X(ERR_INTERNAL, -9, "internal error")

typedef enum graft_status {
#define GRAFT_STATUS_ENUM(name, value, desc) GRAFT_##name = value,
    GRAFT_STATUS_LIST(GRAFT_STATUS_ENUM)
#undef GRAFT_STATUS_ENUM
} graft_status;

#define GRAFT_ERROR_MSG_MAX 1024

typedef struct graft_error {
    graft_status status;
    char msg[GRAFT_ERROR_MSG_MAX];
} graft_error;

/* "ERR_PARSE" etc.; never NULL. */
const char *graft_status_name(graft_status st);
/* "file is truncated or corrupt" etc.; never NULL. */
const char *graft_status_describe(graft_status st);

/* Formats msg into err (err may be NULL) and returns st, so that a failing
 * path reads:  return graft_error_set(err, GRAFT_ERR_PARSE, "%s: ...", path);
 * A message already in err is replaced. */
graft_status graft_error_set(graft_error *err, graft_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with "prefix: " (e.g. the file name). */
graft_status graft_error_prefix(graft_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
