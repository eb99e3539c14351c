#include "graft/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *graft_status_name(graft_status st)
{
    switch (st) {
#define X(name, value, desc) case GRAFT_##name: return #name;
        GRAFT_STATUS_LIST(X)
#undef X
    }
    return "ERR_UNKNOWN";
}

const char *graft_status_describe(graft_status st)
{
    switch (st) {
#define X(name, value, desc) case GRAFT_##name: return desc;
        GRAFT_STATUS_LIST(X)
#undef X
    }
    return "unknown status";
}

graft_status graft_error_set(graft_error *err, graft_status st, const char *fmt, ...)
{
    if (!err)
        return st;
    err->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    /* The message is one line by contract: fold any newline a caller let in. */
    for (char *p = err->msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return st;
}

graft_status graft_error_prefix(graft_error *err, const char *fmt, ...)
{
    if (!err)
        return GRAFT_OK;
    char prefix[GRAFT_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[GRAFT_ERROR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    size_t used = strlen(prefix);
    if (used > sizeof err->msg - 3)
        used = sizeof err->msg - 3;
    memcpy(err->msg, prefix, used);
    memcpy(err->msg + used, ": ", 3);
    size_t rest = sizeof err->msg - used - 3;
    strncat(err->msg, old, rest);
    return err->status;
}
