/* The executor: a plan is one graph compiled for one set of feed shapes.
 *
 * Build: select the nodes the fetches need (stopping at feeds and constants),
 * check they are all runnable, sort them, parse params, infer shapes once and
 * fold whatever is known at build time (Constant, shape arithmetic, weight
 * Casts), then plan activation memory by liveness and allocate it once.
 * Run: convert feeds into their buffers and call forward node by node with
 * prebuilt call records (no lookups, no allocations in the steady state).
 * Backward: walk the gradient path in reverse, accumulating into per-value
 * gradient buffers allocated at build time.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec/plan_internal.h"
#include "kernels/gemm.h"
#include "graft/exec.h"
#include "ops/op.h"

enum {
    VF_IN_PLAN = 1u << 0, /* reachable from the fetches */
    VF_FEED = 1u << 1,
    VF_FETCH = 1u << 2,
    VF_KNOWN = 1u << 3,   /* data known at build time */
    VF_TRAIN = 1u << 4,   /* depends on a trainable initializer: never folded */
    VF_GRAD = 1u << 5,    /* needs a gradient */
    VF_SHAPED = 1u << 6,  /* shape inferred */
    VF_TOUCHED = 1u << 7, /* backward: some gradient flowed in during this call */
};

typedef struct plan_node {
    int32_t node; /* index in g->nodes */
    const graft_op_def *def;
    void *params;
    graft_tensor **in, **out;     /* n_inputs / n_outputs; NULL for omitted */
    graft_tensor **d_in, **d_out; /* training plans only */
    graft_tensor *state;
    graft_op_call call;
    bool folded;    /* ran at build time; its outputs are constants */
    bool skip;      /* output 0 aliases input 0: nothing to compute */
    bool grad_path; /* some input needs a gradient */
} plan_node;

struct graft_plan {
    const graft_graph *g;
    bool training;
    int32_t *feeds;
    int n_feeds;
    int32_t *fetches;
    int n_fetches;
    uint8_t *vflags;      /* n_values */
    graft_tensor *vals;   /* n_values: plan-side tensors of feeds and activations */
    graft_tensor **tp;    /* n_values: the tensor holding each value (vals, initializer or folded) */
    graft_tensor **grads; /* n_values, training plans: gradient tensors (owned) */
    plan_node *nodes;     /* in execution order */
    int n_nodes, n_folded;
    graft_tensor **consts; /* folded outputs, owned */
    int n_consts;
    void **buffers;
    size_t *buf_sizes;
    int n_buffers;
    graft_exec_ctx ctx;
    void *scratch;
    size_t scratch_size;
    double *node_seconds; /* profiling: forward time per node, NULL when off */
};

graft_plan_options graft_plan_options_default(void)
{
    graft_plan_options o;
    memset(&o, 0, sizeof o);
    o.n_threads = 2;
    return o;
}

/* ---- small helpers ---- */

static const char *file_of(const graft_graph *g)
{
    return g->source_path && *g->source_path ? g->source_path : NULL;
}

/* "<file>: <Op> node 'name': message" (file omitted when unknown). */
static graft_status node_fail(const graft_graph *g, const graft_node *n, graft_error *err,
                              graft_status st, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static graft_status node_fail(const graft_graph *g, const graft_node *n, graft_error *err,
                              graft_status st, const char *fmt, ...)
{
    char label[256], msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    graft__node_label(n, label, sizeof label);
    if (file_of(g))
        return graft_error_set(err, st, "%s: %s: %s", file_of(g), label, msg);
    return graft_error_set(err, st, "%s: %s", label, msg);
}

/* An op's own message should name the node; make sure it does, and add the file. */
static graft_status name_failure(const graft_graph *g, const graft_node *n, graft_error *err,
                                 graft_status st, bool with_file)
{
    if (!err)
        return st ? st : GRAFT_ERR_INTERNAL;
    if (st == GRAFT_OK)
        st = GRAFT_ERR_INTERNAL;
    if (err->status == GRAFT_OK || !err->msg[0])
        return node_fail(g, n, err, st, "failed (%s)", graft_status_describe(st));
    err->status = st;
    char label[256];
    graft__node_label(n, label, sizeof label);
    if (!strstr(err->msg, label))
        graft_error_prefix(err, "%s", label);
    if (with_file && file_of(g) && strncmp(err->msg, file_of(g), strlen(file_of(g))) != 0)
        graft_error_prefix(err, "%s", file_of(g));
    return st;
}

static graft_dtype compute_dtype(graft_dtype dt)
{
    switch (dt) {
    case GRAFT_DTYPE_UNDEFINED:
    case GRAFT_FLOAT:
    case GRAFT_FLOAT16:
    case GRAFT_BFLOAT16:
    case GRAFT_DOUBLE: return GRAFT_FLOAT;
    case GRAFT_BOOL: return GRAFT_BOOL;
    case GRAFT_STRING: return GRAFT_DTYPE_UNDEFINED;
    default: return graft_dtype_size(dt) ? GRAFT_INT64 : GRAFT_DTYPE_UNDEFINED;
    }
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void *aligned_buffer(size_t nbytes)
{
    size_t n = ((nbytes + 63) & ~(size_t)63) + GRAFT_BLAS_SLACK;
    void *p = aligned_alloc(64, n);
    return p;
}

static void *plan_scratch(graft_exec_ctx *ctx, size_t nbytes)
{
    graft_plan *p = ctx->scratch_owner;
    if (nbytes > p->scratch_size || !p->scratch) {
        /* Grow geometrically so a run with slowly growing needs settles fast. */
        size_t want = p->scratch_size * 3 / 2;
        if (want < nbytes)
            want = nbytes;
        void *q = aligned_buffer(want);
        if (!q)
            return NULL;
        free(p->scratch);
        p->scratch = q;
        p->scratch_size = want;
    }
    return p->scratch;
}

/* ---- node selection ---- */

static bool is_initializer(const graft_value *v)
{
    return v->kind == GRAFT_VALUE_INITIALIZER;
}

/* Marks in need[] every live node the fetches depend on, stopping at values
 * flagged VF_FEED in vflags (may be NULL) and at initializers. Values not fed
 * and not produced are reported through *missing (first one) unless NULL. */
static graft_status select_nodes(const graft_graph *g, const int32_t *fetches, int n_fetches,
                                 uint8_t *vflags, bool *need, int32_t *missing, graft_error *err)
{
    int32_t *stack = malloc((size_t)(g->n_values ? g->n_values : 1) * sizeof *stack);
    uint8_t *seen = calloc((size_t)(g->n_values ? g->n_values : 1), 1);
    if (!stack || !seen) {
        free(stack);
        free(seen);
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory building a plan");
    }
    int32_t top = 0;
    if (missing)
        *missing = -1;
    for (int i = 0; i < n_fetches; i++) {
        int32_t v = fetches[i];
        if (v >= 0 && v < g->n_values && !seen[v]) {
            seen[v] = 1;
            stack[top++] = v;
        }
    }
    while (top > 0) {
        int32_t v = stack[--top];
        const graft_value *val = &g->values[v];
        if (vflags)
            vflags[v] |= VF_IN_PLAN;
        if ((vflags && (vflags[v] & VF_FEED)) || is_initializer(val))
            continue;
        int32_t p = val->producer;
        if (val->kind == GRAFT_VALUE_INPUT || p < 0 || p >= g->n_nodes || g->nodes[p].removed) {
            if (missing && *missing < 0)
                *missing = v;
            continue;
        }
        if (need[p])
            continue;
        need[p] = true;
        const graft_node *n = &g->nodes[p];
        for (int k = 0; k < n->n_inputs; k++) {
            int32_t u = n->inputs[k];
            if (u >= 0 && u < g->n_values && !seen[u]) {
                seen[u] = 1;
                stack[top++] = u;
            }
        }
    }
    free(stack);
    free(seen);
    return GRAFT_OK;
}

/* Dropout-12+'s ratio may be 0: not omitted (0.5), and a known scalar 0 or
 * a value known only at run time (the op checks it then). */
static bool dropout_ratio_may_be_zero(const graft_graph *g, const graft_node *n)
{
    if (n->n_inputs < 2 || n->inputs[1] < 0)
        return false;
    const graft_value *r = &g->values[n->inputs[1]];
    if (!r->data)
        return r->kind != GRAFT_VALUE_INITIALIZER;
    return graft_tensor_nelem(r->data) == 1 &&
           (r->data->dtype == GRAFT_FLOAT ? graft_tensor_f32(r->data)[0] == 0.0f
                                          : r->data->dtype == GRAFT_INT64 &&
                                                graft_tensor_i64(r->data)[0] == 0);
}

static bool node_runnable(const graft_node *n)
{
    if (n->op < 0 || n->op >= GRAFT_OP_COUNT)
        return false;
    const graft_op_def *d = graft__op_table[n->op];
    return d->forward && d->infer && (n->opset <= 0 || n->opset >= d->min_opset);
}

/* Unique "Op (domain)" list of the unrunnable nodes among need[]. */
static int list_unsupported(const graft_graph *g, const bool *need, char *buf, size_t size)
{
    int count = 0;
    size_t used = 0;
    if (size)
        buf[0] = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const graft_node *n = &g->nodes[i];
        if (!need[i] || node_runnable(n))
            continue;
        bool dup = false;
        for (int32_t j = 0; j < i && !dup; j++) {
            const graft_node *m = &g->nodes[j];
            dup = need[j] && !node_runnable(m) && strcmp(m->op_type, n->op_type) == 0 &&
                  strcmp(m->domain ? m->domain : "", n->domain ? n->domain : "") == 0;
        }
        if (dup)
            continue;
        if (size && used < size) {
            int w;
            const graft_op_def *d =
                n->op >= 0 && n->op < GRAFT_OP_COUNT ? graft__op_table[n->op] : NULL;
            if (d && d->forward && n->opset > 0 && n->opset < d->min_opset)
                /* the op is there, its old form is not */
                w = snprintf(buf + used, size - used, "%s%s-%d (graft runs it from opset %d)",
                             count ? ", " : "", n->op_type, n->opset, d->min_opset);
            else if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx") != 0)
                w = snprintf(buf + used, size - used, "%s%s (%s)", count ? ", " : "", n->op_type,
                             n->domain);
            else
                w = snprintf(buf + used, size - used, "%s%s", count ? ", " : "", n->op_type);
            used += w > 0 ? (size_t)w : 0;
            if (used >= size)
                used = size;
        }
        count++;
    }
    return count;
}

int graft_graph_unsupported_ops(const graft_graph *g, const int32_t *fetches, int n_fetches,
                                char *buf, size_t size)
{
    if (size)
        buf[0] = 0;
    if (!fetches) {
        fetches = g->outputs;
        n_fetches = g->n_outputs;
    }
    bool *need = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *need);
    if (!need)
        return 0;
    int count = 0;
    if (select_nodes(g, fetches, n_fetches, NULL, need, NULL, NULL) == GRAFT_OK)
        count = list_unsupported(g, need, buf, size);
    free(need);
    return count;
}

/* ---- destroy ---- */

void graft_plan_destroy(graft_plan *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_nodes; i++) {
        plan_node *pn = &p->nodes[i];
        free(pn->params);
        free(pn->in);
        free(pn->out);
        free(pn->d_in);
        free(pn->d_out);
        graft_tensor_destroy(pn->state);
    }
    free(p->nodes);
    for (int i = 0; i < p->n_consts; i++)
        graft_tensor_destroy(p->consts[i]);
    free(p->consts);
    for (int i = 0; i < p->n_buffers; i++)
        free(p->buffers[i]);
    free(p->buffers);
    free(p->buf_sizes);
    if (p->grads) {
        for (int32_t v = 0; v < p->g->n_values; v++)
            graft_tensor_destroy(p->grads[v]);
        free(p->grads);
    }
    free(p->vflags);
    free(p->vals);
    free(p->tp);
    free(p->feeds);
    free(p->fetches);
    free(p->scratch);
    free(p->node_seconds);
    free(p);
}

/* ---- build steps ---- */

static graft_status check_feed_shape(const graft_graph *g, int32_t v, const graft_shape *s,
                                     graft_error *err)
{
    const graft_value *val = &g->values[v];
    const char *file = file_of(g) ? file_of(g) : "model";
    char got[160], want[160];
    if (s->rank < 0 || s->rank > GRAFT_MAX_RANK)
        return graft_error_set(err, GRAFT_ERR_SHAPE, "%s: input '%s': rank %d is not supported",
                               file, val->name, s->rank);
    for (int d = 0; d < s->rank; d++)
        if (s->dims[d] < 0)
            return graft_error_set(err, GRAFT_ERR_SHAPE,
                                   "%s: input '%s': shape %s has an unknown dimension", file,
                                   val->name, graft_shape_format(s->rank, s->dims, got, sizeof got));
    if (val->rank < 0)
        return GRAFT_OK;
    bool ok = val->rank == s->rank;
    /* dim 0 is the batch: a model saved with batch 1 still runs with any batch */
    for (int d = 1; ok && d < s->rank; d++)
        if (val->dims[d] >= 0 && val->dims[d] != s->dims[d])
            ok = false;
    if (!ok)
        return graft_error_set(err, GRAFT_ERR_SHAPE, "%s: input '%s': expected shape %s, got %s",
                               file, val->name,
                               graft_shape_format(val->rank, val->dims, want, sizeof want),
                               graft_shape_format(s->rank, s->dims, got, sizeof got));
    return GRAFT_OK;
}

static graft_status load_feed(graft_tensor *dst, const graft_tensor *src, int idx,
                              const graft_value *val, graft_error *err);

static graft_status setup_feeds(graft_plan *p, const graft_plan_options *opt, int n_in,
                                const graft_shape *in_shapes, graft_error *err)
{
    const graft_graph *g = p->g;
    const int32_t *feeds = opt->feeds ? opt->feeds : g->inputs;
    int n_feeds = opt->feeds ? opt->n_feeds : g->n_inputs;
    if (n_in != n_feeds)
        return graft_error_set(err, GRAFT_ERR_ARG, "%s: %d input shapes given for %d inputs",
                               file_of(g) ? file_of(g) : "plan", n_in, n_feeds);
    p->feeds = malloc((size_t)(n_feeds ? n_feeds : 1) * sizeof *p->feeds);
    if (!p->feeds)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory building a plan");
    p->n_feeds = n_feeds;
    for (int i = 0; i < n_feeds; i++) {
        int32_t v = feeds[i];
        if (v < 0 || v >= g->n_values)
            return graft_error_set(err, GRAFT_ERR_ARG, "feed %d is not a value of the graph", i);
        if (p->vflags[v] & VF_FEED)
            return graft_error_set(err, GRAFT_ERR_ARG, "value '%s' is fed twice",
                                   g->values[v].name);
        p->feeds[i] = v;
        p->vflags[v] |= VF_FEED | VF_SHAPED;
        const graft_value *val = &g->values[v];
        graft_shape s;
        if (in_shapes) {
            s = in_shapes[i];
        } else {
            /* No shapes given: the declared one, when fully known. */
            s.rank = val->rank;
            for (int d = 0; d < val->rank && d < GRAFT_MAX_RANK; d++)
                s.dims[d] = val->dims[d];
        }
        graft_status st = check_feed_shape(g, v, &s, err);
        if (st)
            return st;
        graft_dtype dt = compute_dtype(val->dtype);
        if (dt == GRAFT_DTYPE_UNDEFINED)
            return graft_error_set(err, GRAFT_ERR_UNSUPPORTED, "%s: input '%s' has element type %s",
                                   file_of(g) ? file_of(g) : "model", val->name,
                                   graft_dtype_name(val->dtype));
        graft_tensor *t = &p->vals[v];
        t->dtype = dt;
        t->rank = s.rank;
        memcpy(t->dims, s.dims, sizeof t->dims);
        t->data = NULL;
        t->owned = false;
        t->nbytes = (size_t)graft_shape_nelem(s.rank, s.dims) * graft_dtype_size(dt);
        p->tp[v] = t;
        if (opt->feed_values && opt->feed_values[i]) {
            graft_tensor *c = NULL;
            graft_tensor **grown =
                realloc(p->consts, (size_t)(p->n_consts + 1) * sizeof *p->consts);
            if (!grown)
                return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory building a plan");
            p->consts = grown;
            st = graft_tensor_create(dt, s.rank, s.dims, &c, err);
            if (st)
                return st;
            p->consts[p->n_consts++] = c;
            st = load_feed(c, opt->feed_values[i], i, val, err);
            if (st)
                return st;
            p->tp[v] = c;
            p->vflags[v] |= VF_KNOWN;
        }
    }
    return GRAFT_OK;
}

static graft_status setup_fetches(graft_plan *p, const graft_plan_options *opt, graft_error *err)
{
    const graft_graph *g = p->g;
    const int32_t *fetches = opt->fetches ? opt->fetches : g->outputs;
    int n_fetches = opt->fetches ? opt->n_fetches : g->n_outputs;
    if (n_fetches <= 0)
        return graft_error_set(err, GRAFT_ERR_ARG, "%s: nothing to compute (no outputs)",
                               file_of(g) ? file_of(g) : "plan");
    p->fetches = malloc((size_t)n_fetches * sizeof *p->fetches);
    if (!p->fetches)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory building a plan");
    p->n_fetches = n_fetches;
    for (int i = 0; i < n_fetches; i++) {
        int32_t v = fetches[i];
        if (v < 0 || v >= g->n_values)
            return graft_error_set(err, GRAFT_ERR_ARG, "fetch %d is not a value of the graph", i);
        p->fetches[i] = v;
        p->vflags[v] |= VF_FETCH;
    }
    return GRAFT_OK;
}

/* The tensor whose bytes are exactly output 0 of a foldable node, when the
 * node only relabels them: a Constant's tensor attribute, or input 0 of a
 * reshape-like op. NULL otherwise. */
static const graft_tensor *shared_constant(const graft_plan *p, const plan_node *pn)
{
    const graft_node *n = &p->g->nodes[pn->node];
    if (n->n_outputs < 1 || !pn->out[0])
        return NULL;
    for (int k = 1; k < n->n_outputs; k++)
        if (pn->out[k])
            return NULL;
    const graft_tensor *o = pn->out[0], *src = NULL;
    if (n->op == GRAFT_OP_constant) {
        const graft_attr *a = graft_node_attr(n, "value");
        src = a && a->type == GRAFT_ATTR_TENSOR ? a->t : NULL;
    } else if ((pn->def->flags & GRAFT_OP_ALIAS_INPUT0) && n->n_inputs > 0 && pn->in[0]) {
        src = pn->in[0];
    }
    if (!src || !src->data || src->dtype != o->dtype ||
        graft_tensor_nelem(src) != graft_tensor_nelem(o))
        return NULL;
    return src;
}

/* Runs node pn at build time into fresh plan-owned constants. */
static graft_status fold_node(graft_plan *p, plan_node *pn, graft_error *err)
{
    const graft_node *n = &p->g->nodes[pn->node];
    graft_tensor **made = calloc((size_t)(n->n_outputs ? n->n_outputs : 1), sizeof *made);
    graft_tensor **grown = realloc(p->consts, (size_t)(p->n_consts + n->n_outputs + 1) *
                                                  sizeof *p->consts);
    if (!made || !grown) {
        free(made);
        if (grown)
            p->consts = grown;
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory folding constants");
    }
    p->consts = grown;
    graft_status st = GRAFT_OK;
    /* Weights held in Constant nodes, or passed through Identity/Reshape,
     * are shared rather than copied: big models keep them that way. */
    const graft_tensor *share = shared_constant(p, pn);
    if (share) {
        const graft_tensor *o = pn->out[0];
        st = graft_tensor_attach(o->dtype, o->rank, o->dims, share->data, &made[0], err);
        if (st)
            goto fail;
        pn->out[0] = made[0];
    } else {
        for (int k = 0; k < n->n_outputs; k++) {
            if (!pn->out[k])
                continue;
            const graft_tensor *o = pn->out[k];
            st = graft_tensor_create(o->dtype, o->rank, o->dims, &made[k], err);
            if (st)
                goto fail;
            pn->out[k] = made[k];
        }
        pn->call.out = pn->out;
        pn->call.err = err;
        st = pn->def->forward(&pn->call);
        if (st) {
            st = name_failure(p->g, n, err, st, true);
            goto fail;
        }
    }
    for (int k = 0; k < n->n_outputs; k++) {
        if (!made[k])
            continue;
        int32_t v = n->outputs[k];
        p->consts[p->n_consts++] = made[k];
        p->tp[v] = made[k];
        p->vflags[v] |= VF_KNOWN;
    }
    free(made);
    pn->folded = true;
    p->n_folded++;
    return GRAFT_OK;
fail:
    for (int k = 0; k < n->n_outputs; k++) {
        if (made[k]) {
            graft_tensor_destroy(made[k]);
            pn->out[k] = &p->vals[n->outputs[k]];
        }
    }
    free(made);
    return st;
}

/* Parses params, infers output shapes, and folds the node when it can. */
static graft_status prepare_node(graft_plan *p, plan_node *pn, graft_error *err)
{
    const graft_graph *g = p->g;
    const graft_node *n = &g->nodes[pn->node];
    pn->def = graft__op_table[n->op];
    if (pn->def->params_size) {
        pn->params = calloc(1, pn->def->params_size);
        if (!pn->params)
            return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory building a plan");
    }
    if (pn->def->parse) {
        graft_status st = pn->def->parse(g, n, pn->params, err);
        if (st)
            return name_failure(g, n, err, st, true);
    }
    pn->in = calloc((size_t)(n->n_inputs ? n->n_inputs : 1), sizeof *pn->in);
    pn->out = calloc((size_t)(n->n_outputs ? n->n_outputs : 1), sizeof *pn->out);
    if (!pn->in || !pn->out)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory building a plan");
    bool all_known = true, train_dep = false;
    for (int k = 0; k < n->n_inputs; k++) {
        int32_t v = n->inputs[k];
        if (v < 0)
            continue;
        if (!p->tp[v] || !(p->vflags[v] & (VF_SHAPED | VF_KNOWN)))
            return node_fail(g, n, err, GRAFT_ERR_INTERNAL, "input '%s' has no shape",
                             g->values[v].name);
        pn->in[k] = p->tp[v];
        if (!(p->vflags[v] & VF_KNOWN))
            all_known = false;
        if (p->vflags[v] & VF_TRAIN)
            train_dep = true;
    }
    for (int k = 0; k < n->n_outputs; k++) {
        int32_t v = n->outputs[k];
        if (v < 0)
            continue;
        if (p->vflags[v] & VF_FEED)
            return node_fail(g, n, err, GRAFT_ERR_ARG,
                             "computes '%s', which is also fed; feed or fetch its other outputs "
                             "instead", g->values[v].name);
        graft_tensor *t = &p->vals[v];
        memset(t, 0, sizeof *t);
        t->rank = -1;
        pn->out[k] = t;
        p->tp[v] = t;
    }
    graft_op_call *c = &pn->call;
    c->graph = g;
    c->node = n;
    c->params = pn->params;
    c->n_in = n->n_inputs;
    c->n_out = n->n_outputs;
    c->in = pn->in;
    c->out = pn->out;
    c->state = &pn->state;
    c->ctx = &p->ctx;
    c->err = err;
    graft_status st = pn->def->infer(c);
    if (st)
        return name_failure(g, n, err, st, true);
    bool shape_only = (pn->def->flags & GRAFT_OP_SHAPE_ONLY) != 0;
    for (int k = 0; k < n->n_outputs; k++) {
        graft_tensor *t = pn->out[k];
        if (!t)
            continue;
        int32_t v = n->outputs[k];
        if (t->dtype == GRAFT_DTYPE_UNDEFINED)
            t->dtype = n->n_inputs > 0 && pn->in[0] ? pn->in[0]->dtype : GRAFT_FLOAT;
        if (t->rank < 0 || t->rank > GRAFT_MAX_RANK || graft_shape_nelem(t->rank, t->dims) < 0 ||
            graft_dtype_size(t->dtype) == 0)
            return node_fail(g, n, err, GRAFT_ERR_SHAPE,
                             "could not infer the shape or type of output '%s'",
                             g->values[v].name);
        t->data = NULL;
        t->owned = false;
        t->nbytes = (size_t)graft_shape_nelem(t->rank, t->dims) * graft_dtype_size(t->dtype);
        p->vflags[v] |= VF_SHAPED | (train_dep && !shape_only ? VF_TRAIN : 0);
    }
    bool stochastic = p->training && n->op == GRAFT_OP_dropout;
    /* Values that depend on trainable weights change between runs; their
     * shapes do not. */
    bool foldable = shape_only || (all_known && !train_dep && !stochastic);
    if (foldable)
        return fold_node(p, pn, err);
    return GRAFT_OK;
}

/* ---- memory planning ---- */

typedef struct mem_group {
    int32_t first, last; /* steps: defined before first's node runs... last use */
    size_t nbytes;
    int buffer;
} mem_group;

static graft_status plan_memory(graft_plan *p, graft_error *err)
{
    const graft_graph *g = p->g;
    int32_t nv = g->n_values;
    const int32_t forever = p->n_nodes + 1;
    int32_t *last = malloc((size_t)(nv ? nv : 1) * sizeof *last);
    int32_t *group = malloc((size_t)(nv ? nv : 1) * sizeof *group);
    mem_group *groups = malloc((size_t)(nv ? nv : 1) * sizeof *groups);
    int32_t *by_first = NULL;
    int *free_list = NULL;
    int n_groups = 0, n_free = 0;
    graft_status st = GRAFT_OK;
    if (!last || !group || !groups) {
        st = graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory planning buffers");
        goto done;
    }
    for (int32_t v = 0; v < nv; v++) {
        last[v] = -1;
        group[v] = -1;
    }
    /* Last use of each runtime value; folded nodes only read shapes or constants. */
    for (int s = 0; s < p->n_nodes; s++) {
        const plan_node *pn = &p->nodes[s];
        if (pn->folded)
            continue;
        const graft_node *n = &g->nodes[pn->node];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0)
                last[n->inputs[k]] = s;
    }
    for (int i = 0; i < p->n_fetches; i++)
        last[p->fetches[i]] = forever;
    /* Training: what a node on the gradient path reads or writes may be read
     * again by its backward, so it lives to the end; the rest is reused. */
    for (int s = 0; p->training && s < p->n_nodes; s++) {
        const plan_node *pn = &p->nodes[s];
        if (!pn->grad_path)
            continue;
        const graft_node *n = &g->nodes[pn->node];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0)
                last[n->inputs[k]] = forever;
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0)
                last[n->outputs[k]] = forever;
    }
    /* Feeds are written before the first node. */
    for (int i = 0; i < p->n_feeds; i++) {
        int32_t v = p->feeds[i];
        if (p->vflags[v] & VF_KNOWN)
            continue;
        mem_group *gr = &groups[n_groups];
        gr->first = -1;
        gr->last = last[v] < 0 ? -1 : last[v];
        gr->nbytes = p->vals[v].nbytes;
        gr->buffer = -1;
        group[v] = n_groups++;
    }
    for (int s = 0; s < p->n_nodes; s++) {
        plan_node *pn = &p->nodes[s];
        if (pn->folded)
            continue;
        const graft_node *n = &g->nodes[pn->node];
        bool alias = false;
        /* Training Dropout draws a mask: not a relabelling then. */
        bool relabels = (pn->def->flags & GRAFT_OP_ALIAS_INPUT0) &&
                        !(p->training && n->op == GRAFT_OP_dropout);
        if (relabels && n->n_inputs > 0 &&
            n->n_outputs > 0 && n->inputs[0] >= 0 && n->outputs[0] >= 0) {
            int32_t vi = n->inputs[0], vo = n->outputs[0];
            alias = group[vi] >= 0 && last[vi] == s &&
                    !(p->vflags[vi] & (VF_FETCH | VF_FEED | VF_KNOWN)) &&
                    !g->values[vi].is_graph_output && p->vals[vi].nbytes == p->vals[vo].nbytes;
            for (int k = 1; alias && k < n->n_inputs; k++)
                alias = n->inputs[k] != vi;
            for (int k = 1; alias && k < n->n_outputs; k++)
                alias = n->outputs[k] < 0;
            if (alias) {
                int gi = group[vi];
                group[vo] = gi;
                int32_t lo = last[vo] < 0 ? s : last[vo];
                if (lo > groups[gi].last)
                    groups[gi].last = lo;
                pn->skip = true;
            }
        }
        for (int k = alias ? 1 : 0; k < n->n_outputs; k++) {
            int32_t v = n->outputs[k];
            if (v < 0)
                continue;
            mem_group *gr = &groups[n_groups];
            gr->first = s;
            gr->last = last[v] < s ? s : last[v];
            gr->nbytes = p->vals[v].nbytes;
            gr->buffer = -1;
            group[v] = n_groups++;
        }
    }
    /* Greedy best fit in definition order: a group takes the smallest free
     * buffer that fits, else grows the largest free one, else a new one. */
    p->buf_sizes = calloc((size_t)(n_groups ? n_groups : 1), sizeof *p->buf_sizes);
    free_list = malloc((size_t)(n_groups ? n_groups : 1) * sizeof *free_list);
    by_first = malloc((size_t)(n_groups ? n_groups : 1) * sizeof *by_first);
    if (!p->buf_sizes || !free_list || !by_first) {
        st = graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory planning buffers");
        goto done;
    }
    /* Groups are already in order of first step; release by last step. */
    int n_buf = 0;
    int32_t *active = by_first; /* groups holding a buffer */
    int n_active = 0;
    for (int gi = 0; gi < n_groups; gi++) {
        mem_group *gr = &groups[gi];
        /* Release groups whose last reader ran before this group's producer. */
        for (int a = 0; a < n_active;) {
            mem_group *ga = &groups[active[a]];
            if (ga->last < gr->first) {
                free_list[n_free++] = ga->buffer;
                active[a] = active[--n_active];
            } else {
                a++;
            }
        }
        int best = -1;
        for (int f = 0; f < n_free; f++) {
            size_t sz = p->buf_sizes[free_list[f]];
            if (sz >= gr->nbytes) {
                if (best < 0 || sz < p->buf_sizes[free_list[best]])
                    best = f;
            }
        }
        if (best < 0 && n_free > 0) {
            best = 0;
            for (int f = 1; f < n_free; f++)
                if (p->buf_sizes[free_list[f]] > p->buf_sizes[free_list[best]])
                    best = f;
        }
        if (best >= 0) {
            gr->buffer = free_list[best];
            free_list[best] = free_list[--n_free];
            if (p->buf_sizes[gr->buffer] < gr->nbytes)
                p->buf_sizes[gr->buffer] = gr->nbytes;
        } else {
            gr->buffer = n_buf++;
            p->buf_sizes[gr->buffer] = gr->nbytes;
        }
        active[n_active++] = gi;
    }
    p->buffers = calloc((size_t)(n_buf ? n_buf : 1), sizeof *p->buffers);
    if (!p->buffers) {
        st = graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory planning buffers");
        goto done;
    }
    p->n_buffers = n_buf;
    for (int b = 0; b < n_buf; b++) {
        p->buffers[b] = aligned_buffer(p->buf_sizes[b]);
        if (!p->buffers[b]) {
            st = graft_error_set(err, GRAFT_ERR_NOMEM,
                                 "out of memory allocating %zu bytes of activations",
                                 p->buf_sizes[b]);
            goto done;
        }
    }
    for (int32_t v = 0; v < nv; v++)
        if (group[v] >= 0)
            p->vals[v].data = p->buffers[groups[group[v]].buffer];
done:
    free(last);
    free(group);
    free(groups);
    free(by_first);
    free(free_list);
    return st;
}

/* ---- gradients ---- */

static graft_status plan_gradients(graft_plan *p, graft_error *err)
{
    const graft_graph *g = p->g;
    p->grads = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *p->grads);
    if (!p->grads)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory building a plan");
    for (int32_t v = 0; v < g->n_values; v++) {
        const graft_value *val = &g->values[v];
        if ((p->vflags[v] & VF_IN_PLAN) && is_initializer(val) && val->trainable && val->data &&
            val->data->dtype == GRAFT_FLOAT && !(p->vflags[v] & VF_FEED))
            p->vflags[v] |= VF_GRAD;
    }
    for (int s = 0; s < p->n_nodes; s++) {
        plan_node *pn = &p->nodes[s];
        if (pn->folded)
            continue;
        const graft_node *n = &g->nodes[pn->node];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && (p->vflags[n->inputs[k]] & VF_GRAD))
                pn->grad_path = true;
        pn->call.grad_path = pn->grad_path;
        if (!pn->grad_path)
            continue;
        pn->d_in = calloc((size_t)(n->n_inputs ? n->n_inputs : 1), sizeof *pn->d_in);
        pn->d_out = calloc((size_t)(n->n_outputs ? n->n_outputs : 1), sizeof *pn->d_out);
        if (!pn->d_in || !pn->d_out)
            return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory building a plan");
        for (int k = 0; k < n->n_outputs; k++) {
            int32_t v = n->outputs[k];
            if (v >= 0 && pn->out[k] && pn->out[k]->dtype == GRAFT_FLOAT)
                p->vflags[v] |= VF_GRAD;
        }
    }
    for (int32_t v = 0; v < g->n_values; v++) {
        if (!(p->vflags[v] & VF_GRAD))
            continue;
        const graft_tensor *t = p->tp[v];
        graft_status st = graft_tensor_create(GRAFT_FLOAT, t->rank, t->dims, &p->grads[v], err);
        if (st)
            return st;
    }
    return GRAFT_OK;
}

/* ---- create ---- */

graft_status graft_plan_create(const graft_graph *g, const graft_plan_options *opt, int n_in,
                               const graft_shape *in_shapes, graft_plan **out, graft_error *err)
{
    graft_plan_options dflt = graft_plan_options_default();
    if (!opt)
        opt = &dflt;
    *out = NULL;
    graft_status st = GRAFT_OK;
    bool *need = NULL;
    int32_t *order = NULL;
    graft_plan *p = calloc(1, sizeof *p);
    if (!p)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory building a plan");
    p->g = g;
    p->training = opt->training;
    size_t nv = (size_t)(g->n_values ? g->n_values : 1);
    p->vflags = calloc(nv, sizeof *p->vflags);
    p->vals = calloc(nv, sizeof *p->vals);
    p->tp = calloc(nv, sizeof *p->tp);
    need = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *need);
    order = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *order);
    if (!p->vflags || !p->vals || !p->tp || !need || !order) {
        st = graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory building a plan");
        goto fail;
    }
    p->ctx.n_threads = opt->n_threads > 0 ? opt->n_threads : 2;
    p->ctx.training = opt->training;
    p->ctx.stored_training_form = opt->stored_training_form;
    if (opt->training && opt->stored_training_form) {
        st = graft_error_set(err, GRAFT_ERR_ARG, "stored_training_form runs forward only; it "
                             "cannot be combined with a training plan");
        goto fail;
    }
    uint64_t seed = opt->seed;
    p->ctx.rng[0] = splitmix64(&seed);
    p->ctx.rng[1] = splitmix64(&seed);
    if (!p->ctx.rng[0] && !p->ctx.rng[1])
        p->ctx.rng[1] = 1;
    p->ctx.scratch = plan_scratch;
    p->ctx.scratch_owner = p;

    st = setup_feeds(p, opt, n_in, in_shapes, err);
    if (st)
        goto fail;
    st = setup_fetches(p, opt, err);
    if (st)
        goto fail;

    int32_t missing = -1;
    st = select_nodes(g, p->fetches, p->n_fetches, p->vflags, need, &missing, err);
    if (st)
        goto fail;
    char ops[512];
    int n_bad = list_unsupported(g, need, ops, sizeof ops);
    if (n_bad > 0) {
        st = graft_error_set(err, GRAFT_ERR_UNSUPPORTED, "%s: graft cannot run %s %s: %s",
                             file_of(g) ? file_of(g) : "model", n_bad == 1 ? "this" : "these",
                             n_bad == 1 ? "op" : "ops", ops);
        goto fail;
    }
    for (int32_t i = 0; opt && opt->stored_training_form && i < g->n_nodes; i++) {
        const graft_node *n = &g->nodes[i];
        if (need[i] && graft_node_training_form(g, n) && n->op_type[0] == 'D' &&
            !dropout_ratio_may_be_zero(g, n)) {
            st = graft_error_set(err, GRAFT_ERR_UNSUPPORTED,
                                 "%s: Dropout '%s' is stored in training form with a ratio "
                                 "other than a constant 0: its output is random; graft runs "
                                 "such a Dropout only in inference form",
                                 file_of(g) ? file_of(g) : "model", n->name);
            goto fail;
        }
    }
    for (int32_t i = 0; opt && opt->refuse_training_form && !opt->stored_training_form &&
                        i < g->n_nodes; i++) {
        const graft_node *n = &g->nodes[i];
        if (need[i] && graft_node_training_form(g, n)) {
            st = graft_error_set(err, GRAFT_ERR_UNSUPPORTED,
                                 "%s: %s '%s' is stored in training form (%s); graft runs it "
                                 "only in inference form",
                                 file_of(g) ? file_of(g) : "model", n->op_type, n->name,
                                 n->op_type[0] == 'B' ? "training_mode=1, batch statistics"
                                                      : "training_mode input, random drops");
            goto fail;
        }
    }
    if (missing >= 0) {
        const graft_value *mv = &g->values[missing];
        st = graft_error_set(err, GRAFT_ERR_ARG, "%s: value '%s' is needed but %s",
                             file_of(g) ? file_of(g) : "model", mv->name,
                             mv->kind == GRAFT_VALUE_INPUT ? "not fed" : "produced by no node");
        goto fail;
    }

    /* Constants the plan reads. */
    for (int32_t v = 0; v < g->n_values; v++) {
        const graft_value *val = &g->values[v];
        if (!(p->vflags[v] & VF_IN_PLAN) || (p->vflags[v] & VF_FEED) || !is_initializer(val))
            continue;
        if (!val->data) {
            st = graft_error_set(err, GRAFT_ERR_INVALID, "%s: initializer '%s' has no data",
                                 file_of(g) ? file_of(g) : "model", val->name);
            goto fail;
        }
        p->tp[v] = val->data;
        p->vflags[v] |= VF_SHAPED | (val->trainable ? VF_TRAIN : VF_KNOWN);
        if (val->trainable) {
            /* Not a constant: infer sees its shape only, never data that
             * the optimizer will change. */
            p->vals[v] = *val->data;
            p->vals[v].data = NULL;
            p->vals[v].owned = false;
            p->tp[v] = &p->vals[v];
        }
    }

    int32_t n_order = graft_graph_topo_order(g, order, err);
    if (n_order < 0) {
        st = err && err->status ? err->status : GRAFT_ERR_INVALID;
        if (file_of(g))
            graft_error_prefix(err, "%s", file_of(g));
        goto fail;
    }
    int n_plan = 0;
    for (int32_t i = 0; i < n_order; i++)
        if (need[order[i]])
            n_plan++;
    p->nodes = calloc((size_t)(n_plan ? n_plan : 1), sizeof *p->nodes);
    if (!p->nodes) {
        st = graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory building a plan");
        goto fail;
    }
    for (int32_t i = 0; i < n_order; i++) {
        if (!need[order[i]])
            continue;
        plan_node *pn = &p->nodes[p->n_nodes++];
        pn->node = order[i];
        st = prepare_node(p, pn, err);
        if (st)
            goto fail;
    }
    for (int i = 0; i < p->n_fetches; i++) {
        int32_t v = p->fetches[i];
        if (!p->tp[v]) {
            st = graft_error_set(err, GRAFT_ERR_INTERNAL, "fetch '%s' is not computed",
                                 g->values[v].name);
            goto fail;
        }
    }
    /* From here on trainable parameters are read where the optimizer writes. */
    for (int32_t v = 0; v < g->n_values; v++)
        if ((p->vflags[v] & VF_TRAIN) && !(p->vflags[v] & VF_FEED) &&
            is_initializer(&g->values[v]) && p->tp[v] == &p->vals[v])
            p->tp[v] = g->values[v].data;
    for (int i = 0; i < p->n_nodes; i++) {
        const graft_node *n = &g->nodes[p->nodes[i].node];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && p->nodes[i].in[k])
                p->nodes[i].in[k] = p->tp[n->inputs[k]];
    }
    if (p->training) {
        st = plan_gradients(p, err);
        if (st)
            goto fail;
    }
    st = plan_memory(p, err);
    if (st)
        goto fail;
    free(need);
    free(order);
    *out = p;
    return GRAFT_OK;
fail:
    free(need);
    free(order);
    graft_plan_destroy(p);
    /* every refusal names the model (out of memory included) */
    if (err && err->msg[0] && file_of(g) && !strstr(err->msg, file_of(g)))
        graft_error_prefix(err, "%s", file_of(g));
    return st ? st : GRAFT_ERR_INTERNAL;
}

/* ---- run ---- */

/* A narrow integer input holds only what its declared type can: a feed of
 * other values (300 for uint8, a float file) wraps as Cast would. */
static void wrap_to_declared(graft_tensor *dst, graft_dtype declared)
{
    bool narrow = declared == GRAFT_INT8 || declared == GRAFT_UINT8 || declared == GRAFT_INT16 ||
                  declared == GRAFT_UINT16 || declared == GRAFT_INT32 || declared == GRAFT_UINT32;
    if (dst->dtype != GRAFT_INT64 || !narrow)
        return;
    int64_t *d = graft_tensor_i64(dst), n = graft_tensor_nelem(dst);
    for (int64_t i = 0; i < n; i++)
        d[i] = graft_int_wrap(declared, d[i]);
}

static graft_status load_feed_as(graft_tensor *dst, const graft_tensor *src, int idx,
                                 const char *name, graft_error *err);

static graft_status load_feed(graft_tensor *dst, const graft_tensor *src, int idx,
                              const graft_value *val, graft_error *err)
{
    graft_status st = load_feed_as(dst, src, idx, val->name, err);
    if (st == GRAFT_OK)
        wrap_to_declared(dst, val->dtype);
    return st;
}

static graft_status load_feed_as(graft_tensor *dst, const graft_tensor *src, int idx,
                                 const char *name, graft_error *err)
{
    if (!src || (!src->data && graft_tensor_nelem(dst) > 0))
        return graft_error_set(err, GRAFT_ERR_ARG, "input %d ('%s') is missing", idx, name);
    bool same = src->rank == dst->rank;
    for (int d = 0; same && d < dst->rank; d++)
        same = src->dims[d] == dst->dims[d];
    if (!same) {
        char a[160], b[160];
        return graft_error_set(err, GRAFT_ERR_SHAPE,
                               "input %d ('%s') has shape %s but the plan was built for %s", idx,
                               name, graft_shape_format(src->rank, src->dims, a, sizeof a),
                               graft_shape_format(dst->rank, dst->dims, b, sizeof b));
    }
    int64_t n = graft_tensor_nelem(dst);
    if (src->dtype == dst->dtype) {
        if (dst->nbytes)
            memcpy(dst->data, src->data, dst->nbytes);
        return GRAFT_OK;
    }
    const void *x = src->data;
    if (dst->dtype == GRAFT_FLOAT) {
        float *y = dst->data;
        switch (src->dtype) {
        case GRAFT_FLOAT16:
            for (int64_t i = 0; i < n; i++)
                y[i] = graft_fp16_to_f32(((const uint16_t *)x)[i]);
            return GRAFT_OK;
        case GRAFT_BFLOAT16:
            for (int64_t i = 0; i < n; i++)
                y[i] = graft_bf16_to_f32(((const uint16_t *)x)[i]);
            return GRAFT_OK;
        case GRAFT_DOUBLE:
            for (int64_t i = 0; i < n; i++)
                y[i] = (float)((const double *)x)[i];
            return GRAFT_OK;
        default: break;
        }
    }
    /* Integer and bool feeds: through int64 (or to float). */
    for (int64_t i = 0; i < n; i++) {
        int64_t iv = 0;
        double fv = 0;
        bool is_f = false;
        switch (src->dtype) {
        case GRAFT_FLOAT: fv = ((const float *)x)[i]; is_f = true; break;
        case GRAFT_DOUBLE: fv = ((const double *)x)[i]; is_f = true; break;
        case GRAFT_FLOAT16: fv = graft_fp16_to_f32(((const uint16_t *)x)[i]); is_f = true; break;
        case GRAFT_BFLOAT16: fv = graft_bf16_to_f32(((const uint16_t *)x)[i]); is_f = true; break;
        case GRAFT_INT64: iv = ((const int64_t *)x)[i]; break;
        case GRAFT_INT32: iv = ((const int32_t *)x)[i]; break;
        case GRAFT_UINT32: iv = ((const uint32_t *)x)[i]; break;
        case GRAFT_UINT64: iv = (int64_t)((const uint64_t *)x)[i]; break;
        case GRAFT_INT16: iv = ((const int16_t *)x)[i]; break;
        case GRAFT_UINT16: iv = ((const uint16_t *)x)[i]; break;
        case GRAFT_INT8: iv = ((const int8_t *)x)[i]; break;
        case GRAFT_UINT8:
        case GRAFT_BOOL: iv = ((const uint8_t *)x)[i]; break;
        default:
            return graft_error_set(err, GRAFT_ERR_UNSUPPORTED,
                                   "input %d ('%s'): element type %s is not supported", idx, name,
                                   graft_dtype_name(src->dtype));
        }
        switch (dst->dtype) {
        case GRAFT_FLOAT: ((float *)dst->data)[i] = is_f ? (float)fv : (float)iv; break;
        case GRAFT_INT64: ((int64_t *)dst->data)[i] = is_f ? (int64_t)fv : iv; break;
        case GRAFT_BOOL: ((uint8_t *)dst->data)[i] = (uint8_t)(is_f ? fv != 0 : iv != 0); break;
        default:
            return graft_error_set(err, GRAFT_ERR_INTERNAL, "input %d ('%s'): bad plan type", idx,
                                   name);
        }
    }
    return GRAFT_OK;
}

graft_status graft_plan_run(graft_plan *p, const graft_tensor *const *inputs, graft_error *err)
{
    const graft_graph *g = p->g;
    for (int i = 0; i < p->n_feeds; i++) {
        int32_t v = p->feeds[i];
        const graft_tensor *src = inputs ? inputs[i] : NULL;
        if (p->vflags[v] & VF_KNOWN) {
            /* Built with this feed's data: it must not have changed. */
            graft_tensor tmp = *p->tp[v];
            tmp.data = plan_scratch(&p->ctx, tmp.nbytes);
            if (!tmp.data)
                return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory");
            graft_status st = load_feed(&tmp, src, i, &g->values[v], err);
            if (st)
                return st;
            if (tmp.nbytes && memcmp(tmp.data, p->tp[v]->data, tmp.nbytes) != 0)
                return graft_error_set(err, GRAFT_ERR_ARG,
                                       "input %d ('%s') differs from the value the plan was "
                                       "built with; build a new plan",
                                       i, g->values[v].name);
            continue;
        }
        graft_status st = load_feed(&p->vals[v], src, i, &g->values[v], err);
        if (st)
            return st;
    }
    for (int s = 0; s < p->n_nodes; s++) {
        plan_node *pn = &p->nodes[s];
        if (pn->folded || pn->skip)
            continue;
        pn->call.err = err;
        struct timespec t0, t1;
        if (p->node_seconds)
            clock_gettime(CLOCK_MONOTONIC, &t0);
        graft_status st = pn->def->forward(&pn->call);
        if (st)
            return name_failure(g, &g->nodes[pn->node], err, st, true);
        if (p->node_seconds) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            p->node_seconds[s] +=
                (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        }
    }
    return GRAFT_OK;
}

int graft_plan_n_outputs(const graft_plan *p)
{
    return p->n_fetches;
}

const graft_tensor *graft_plan_output(const graft_plan *p, int i)
{
    if (i < 0 || i >= p->n_fetches)
        return NULL;
    return p->tp[p->fetches[i]];
}

bool graft_plan_value_shape(const graft_plan *p, int32_t value, graft_shape *out)
{
    if (value < 0 || value >= p->g->n_values || !p->tp[value] ||
        !(p->vflags[value] & (VF_SHAPED | VF_KNOWN)))
        return false;
    const graft_tensor *t = p->tp[value];
    if (t->rank < 0)
        return false;
    out->rank = t->rank;
    memcpy(out->dims, t->dims, sizeof out->dims);
    return true;
}

/* ---- backward ---- */

graft_status graft_plan_backward(graft_plan *p, const graft_tensor *const *d_fetches,
                                 graft_error *err)
{
    const graft_graph *g = p->g;
    if (!p->training || !p->grads)
        return graft_error_set(err, GRAFT_ERR_ARG,
                               "backward needs a plan built with options.training");
    for (int32_t v = 0; v < g->n_values; v++) {
        p->vflags[v] &= (uint8_t)~VF_TOUCHED;
        if (p->grads[v])
            memset(p->grads[v]->data, 0, p->grads[v]->nbytes);
    }
    for (int i = 0; d_fetches && i < p->n_fetches; i++) {
        int32_t v = p->fetches[i];
        const graft_tensor *d = d_fetches[i];
        graft_tensor *gt = p->grads[v];
        if (!d || !gt)
            continue;
        if (d->dtype != GRAFT_FLOAT || graft_tensor_nelem(d) != graft_tensor_nelem(gt))
            return graft_error_set(err, GRAFT_ERR_SHAPE,
                                   "gradient %d for '%s' does not match its shape or type", i,
                                   g->values[v].name);
        float *y = gt->data;
        const float *x = d->data;
        int64_t n = graft_tensor_nelem(gt);
        for (int64_t k = 0; k < n; k++)
            y[k] += x[k];
        p->vflags[v] |= VF_TOUCHED;
    }
    for (int s = p->n_nodes - 1; s >= 0; s--) {
        plan_node *pn = &p->nodes[s];
        if (!pn->grad_path)
            continue;
        const graft_node *n = &g->nodes[pn->node];
        bool any = false;
        for (int k = 0; k < n->n_outputs; k++) {
            int32_t v = n->outputs[k];
            bool t = v >= 0 && p->grads[v] && (p->vflags[v] & VF_TOUCHED);
            pn->d_out[k] = t ? p->grads[v] : NULL;
            any |= t;
        }
        if (!any)
            continue;
        if (!pn->def->backward)
            return node_fail(g, n, err, GRAFT_ERR_UNSUPPORTED,
                             "has no gradient, but a trainable parameter flows through it");
        for (int k = 0; k < n->n_inputs; k++) {
            int32_t v = n->inputs[k];
            bool want = v >= 0 && p->grads[v];
            pn->d_in[k] = want ? p->grads[v] : NULL;
            if (want)
                p->vflags[v] |= VF_TOUCHED;
        }
        pn->call.d_out = pn->d_out;
        pn->call.d_in = pn->d_in;
        pn->call.err = err;
        graft_status st = pn->def->backward(&pn->call);
        pn->call.d_out = NULL;
        pn->call.d_in = NULL;
        if (st)
            return name_failure(g, n, err, st, false);
    }
    return GRAFT_OK;
}

const graft_tensor *graft_plan_grad(const graft_plan *p, int32_t value)
{
    if (!p->grads || value < 0 || value >= p->g->n_values)
        return NULL;
    return p->grads[value];
}

/* ---- internal queries ---- */

int graft__plan_n_buffers(const graft_plan *p)
{
    return p->n_buffers;
}

size_t graft__plan_buffer_bytes(const graft_plan *p)
{
    size_t n = 0;
    for (int b = 0; b < p->n_buffers; b++)
        n += p->buf_sizes[b];
    return n;
}

int graft__plan_n_nodes(const graft_plan *p)
{
    return p->n_nodes;
}

int graft__plan_n_folded(const graft_plan *p)
{
    return p->n_folded;
}

bool graft__plan_value_known(const graft_plan *p, int32_t value)
{
    return value >= 0 && value < p->g->n_values && (p->vflags[value] & VF_KNOWN);
}

const graft_tensor *graft__plan_value_tensor(const graft_plan *p, int32_t value)
{
    if (value < 0 || value >= p->g->n_values)
        return NULL;
    return p->tp[value];
}

graft_status graft__plan_set_profiling(graft_plan *p, bool on, graft_error *err)
{
    free(p->node_seconds);
    p->node_seconds = NULL;
    if (!on)
        return GRAFT_OK;
    p->node_seconds = calloc((size_t)(p->n_nodes ? p->n_nodes : 1), sizeof *p->node_seconds);
    if (!p->node_seconds)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory");
    return GRAFT_OK;
}

bool graft__plan_node_profile(const graft_plan *p, int i, const char **op_type, const char **name,
                              bool *runs, double *seconds)
{
    if (i < 0 || i >= p->n_nodes)
        return false;
    const plan_node *pn = &p->nodes[i];
    const graft_node *n = &p->g->nodes[pn->node];
    if (op_type)
        *op_type = n->op_type;
    if (name)
        *name = n->name;
    if (runs)
        *runs = !pn->folded && !pn->skip;
    if (seconds)
        *seconds = p->node_seconds ? p->node_seconds[i] : 0.0;
    return true;
}
