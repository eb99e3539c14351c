#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "graft/exec.h"
#include "graft/onnx.h"
#include "ops/op.h"

const graft_op_def *const graft__op_table[GRAFT_OP_COUNT] = {
#define GRAFT_OP(ident, type, domain) &graft__op_##ident,
#include "ops/ops.def"
#undef GRAFT_OP
};

static const char *const op_types[GRAFT_OP_COUNT] = {
#define GRAFT_OP(ident, type, domain) type,
#include "ops/ops.def"
#undef GRAFT_OP
};

static const char *const op_domains[GRAFT_OP_COUNT] = {
#define GRAFT_OP(ident, type, domain) domain,
#include "ops/ops.def"
#undef GRAFT_OP
};

static bool is_default_domain(const char *d)
{
    return !d || !*d || strcmp(d, "ai.onnx") == 0;
}

int graft__op_lookup(const char *op_type, const char *domain)
{
    for (int i = 0; i < GRAFT_OP_COUNT; i++) {
        if (strcmp(op_types[i], op_type) != 0)
            continue;
        if (is_default_domain(op_domains[i]) ? is_default_domain(domain)
                                              : (domain && strcmp(op_domains[i], domain) == 0))
            return i;
    }
    return -1;
}

const char *graft__node_label(const graft_node *n, char *buf, size_t size)
{
    if (n->name && *n->name)
        snprintf(buf, size, "%s node '%s'", n->op_type, n->name);
    else
        snprintf(buf, size, "%s node (unnamed)", n->op_type);
    return buf;
}

graft_status graft__op_fail(graft_op_call *c, graft_status st, const char *fmt, ...)
{
    char label[256], msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return graft_error_set(c->err, st, "%s: %s", graft__node_label(c->node, label, sizeof label),
                           msg);
}

graft_status graft__broadcast_shape(int ra, const int64_t *a, int rb, const int64_t *b, int *rout,
                                    int64_t *out)
{
    int r = ra > rb ? ra : rb;
    for (int i = 0; i < r; i++) {
        int64_t da = i < r - ra ? 1 : a[i - (r - ra)];
        int64_t db = i < r - rb ? 1 : b[i - (r - rb)];
        if (da == db || db == 1)
            out[i] = da;
        else if (da == 1)
            out[i] = db;
        else
            return GRAFT_ERR_SHAPE;
    }
    *rout = r;
    return GRAFT_OK;
}

bool graft_supported_op(int i, graft_op_support *out)
{
    if (i < 0 || i >= GRAFT_OP_COUNT)
        return false;
    const graft_op_def *d = graft__op_table[i];
    out->op_type = op_types[i];
    out->domain = op_domains[i];
    out->min_opset = d->min_opset > 0 ? d->min_opset : 1;
    /* other domains (com.microsoft) are versioned on their own: graft
     * knows the one version it was written against */
    out->max_opset = is_default_domain(op_domains[i]) ? GRAFT_ONNX_OPSET_MAX : out->min_opset;
    if (is_default_domain(op_domains[i]) && out->min_opset < GRAFT_ONNX_OPSET_MIN)
        out->min_opset = GRAFT_ONNX_OPSET_MIN;
    out->backward = d->backward != NULL;
    return true;
}
