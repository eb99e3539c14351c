/* Execution-only rewrites for the frozen forward pass: BatchNormalization
 * folded into the Conv before it, and Conv + activation (+ residual Add)
 * fused into com.microsoft FusedConv, as ONNX Runtime does. They run on a
 * clone, never on the graph that is exported: the folded weights are new
 * initializers and the originals are left untouched (other nodes may share
 * them, and export must keep them byte-identical). */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/surgery.h"
#include "passes/passes.h"

/* snprintf that truncates quietly: names in messages may be long. */
static void textf(char *dst, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void textf(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, size, fmt, ap);
    va_end(ap);
}

static bool is_op(const graft_node *n, const char *t)
{
    return strcmp(n->op_type, t) == 0 && (!*n->domain || strcmp(n->domain, "ai.onnx") == 0);
}

/* The data behind v when it is a frozen float constant: an initializer
 * (not trainable), a Constant node, or either seen through Identity nodes
 * (torch.onnx.export shares deduplicated weights that way). */
static const graft_tensor *frozen_const(const graft_graph *g, int32_t v, int64_t nelem)
{
    const graft_tensor *t = NULL;
    for (int depth = 0; v >= 0 && depth < 8 && !t; depth++) {
        const graft_value *val = &g->values[v];
        if (val->kind == GRAFT_VALUE_INITIALIZER) {
            if (!val->data || val->trainable)
                return NULL;
            t = val->data;
            break;
        }
        if (val->kind != GRAFT_VALUE_ACTIVATION || val->producer < 0)
            return NULL;
        const graft_node *p = &g->nodes[val->producer];
        if (p->removed)
            return NULL;
        if (is_op(p, "Identity") && p->n_inputs == 1) {
            v = p->inputs[0];
        } else if (is_op(p, "Constant")) {
            const graft_attr *a = graft_node_attr(p, "value");
            if (!a || !a->t)
                return NULL;
            t = a->t;
        } else {
            return NULL;
        }
    }
    if (!t || t->dtype != GRAFT_FLOAT || !t->data)
        return NULL;
    if (nelem >= 0 && graft_tensor_nelem(t) != nelem)
        return NULL;
    return t;
}

/* Running statistics: constant whatever their trainable flag says. */
static const graft_tensor *stat_const(const graft_graph *g, int32_t v, int64_t nelem)
{
    if (v >= 0 && g->values[v].kind == GRAFT_VALUE_INITIALIZER) {
        const graft_tensor *t = g->values[v].data;
        return t && t->dtype == GRAFT_FLOAT && graft_tensor_nelem(t) == nelem ? t : NULL;
    }
    return frozen_const(g, v, nelem);
}

static int32_t new_weight(graft_graph *g, const char *base, const char *suffix, graft_tensor *t,
                          graft_error *err)
{
    char name[512];
    size_t bl = strlen(base);
    if (bl > 400)
        bl = 400;
    memcpy(name, base, bl);
    strcpy(name + bl, suffix);
    int32_t v = graft_graph_add_unique_value(g, name, err);
    if (v < 0) {
        graft_tensor_destroy(t);
        return -1;
    }
    graft_value *val = &g->values[v];
    val->kind = GRAFT_VALUE_INITIALIZER;
    val->dtype = GRAFT_FLOAT;
    val->source_dtype = GRAFT_FLOAT;
    val->rank = t->rank;
    memcpy(val->dims, t->dims, sizeof val->dims);
    graft_value_set_data(g, v, t);
    return v;
}

/* Folds BN node `bi` into the Conv before it; 1 if done, 0 if not
 * applicable, <0 on error. consumers[] (sized before any new value) is only
 * read for activations, which the folds never create. */
static int fold_bn(graft_graph *g, int32_t bi, int32_t *consumers, graft_error *err)
{
    const graft_node *bn = &g->nodes[bi];
    if (bn->n_inputs < 5 || bn->n_outputs < 1 || bn->outputs[0] < 0 ||
        graft_node_attr_int(bn, "training_mode", 0) != 0)
        return 0;
    for (int k = 1; k < bn->n_outputs; k++) {
        int32_t o = bn->outputs[k];
        if (o >= 0 && (consumers[o] > 0 || g->values[o].is_graph_output))
            return 0;
    }
    int32_t x = bn->inputs[0];
    if (x < 0 || consumers[x] != 1 || g->values[x].is_graph_output)
        return 0;
    int32_t ci = g->values[x].producer;
    if (ci < 0 || g->nodes[ci].removed || !is_op(&g->nodes[ci], "Conv") ||
        g->nodes[ci].n_outputs != 1)
        return 0;
    const graft_node *conv = &g->nodes[ci];
    const graft_tensor *w = conv->n_inputs > 1 ? frozen_const(g, conv->inputs[1], -1) : NULL;
    if (!w || w->rank < 3 || w->dims[0] <= 0)
        return 0;
    int64_t m = w->dims[0];
    int32_t bv = conv->n_inputs > 2 ? conv->inputs[2] : -1;
    const graft_tensor *b = bv >= 0 ? frozen_const(g, bv, m) : NULL;
    if (bv >= 0 && !b)
        return 0;
    const graft_tensor *sc = frozen_const(g, bn->inputs[1], m);
    const graft_tensor *bb = frozen_const(g, bn->inputs[2], m);
    const graft_tensor *mt = stat_const(g, bn->inputs[3], m);
    const graft_tensor *vt = stat_const(g, bn->inputs[4], m);
    if (!sc || !bb || !mt || !vt)
        return 0;
    float eps = graft_node_attr_float(bn, "epsilon", 1e-5f);
    graft_tensor *nw = NULL, *nb = NULL;
    int64_t bd[1] = {m};
    if (graft_tensor_clone(w, &nw, err) || graft_tensor_create(GRAFT_FLOAT, 1, bd, &nb, err)) {
        graft_tensor_destroy(nw);
        return -1;
    }
    int64_t per = graft_tensor_nelem(w) / m;
    const float *s = graft_tensor_f32(sc), *beta = graft_tensor_f32(bb);
    const float *mean = graft_tensor_f32(mt), *var = graft_tensor_f32(vt);
    const float *b0 = b ? graft_tensor_f32(b) : NULL;
    float *wp = graft_tensor_f32(nw), *bp = graft_tensor_f32(nb);
    for (int64_t o = 0; o < m; o++) {
        double f = (double)s[o] / sqrt((double)var[o] + (double)eps);
        for (int64_t j = 0; j < per; j++)
            wp[o * per + j] = (float)((double)wp[o * per + j] * f);
        bp[o] = (float)(((b0 ? (double)b0[o] : 0.0) - (double)mean[o]) * f + (double)beta[o]);
    }
    char wname[256], bname[256];
    textf(wname, sizeof wname, "%s", g->values[conv->inputs[1]].name);
    textf(bname, sizeof bname, "%s", bv >= 0 ? g->values[bv].name : wname);
    int32_t wn = new_weight(g, wname, "_bnfold", nw, err);
    if (wn < 0) {
        graft_tensor_destroy(nb);
        return -1;
    }
    int32_t bn_ = new_weight(g, bname, bv >= 0 ? "_bnfold" : "_bnfold_bias", nb, err);
    if (bn_ < 0)
        return -1;
    graft_node *cn = &g->nodes[ci];
    if (cn->n_inputs < 3) {
        int32_t *in = realloc(cn->inputs, 3 * sizeof *in);
        if (!in)
            return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory folding BN"), -1;
        cn->inputs = in;
        cn->n_inputs = 3;
    }
    cn->inputs[1] = wn;
    cn->inputs[2] = bn_;
    graft_node *bnn = &g->nodes[bi];
    int32_t y = bnn->outputs[0];
    consumers[x] = 0;
    g->values[x].producer = -1;
    cn->outputs[0] = y;
    g->values[y].producer = ci;
    bnn->removed = true;
    return 1;
}

/* Folds Add(Conv(x), per-channel constant) into the Conv's bias (CNTK and
 * TensorFlow exports write the bias that way); 1 done, 0 not applicable. */
static int fold_bias_add(graft_graph *g, int32_t ai, int32_t *consumers, graft_error *err)
{
    const graft_node *a = &g->nodes[ai];
    if (a->n_inputs != 2 || a->n_outputs != 1 || a->outputs[0] < 0)
        return 0;
    for (int k = 0; k < 2; k++) {
        int32_t x = a->inputs[k], c = a->inputs[1 - k];
        if (x < 0 || c < 0 || consumers[x] != 1 || g->values[x].is_graph_output)
            continue;
        int32_t ci = g->values[x].producer;
        if (ci < 0 || g->nodes[ci].removed || !is_op(&g->nodes[ci], "Conv") ||
            g->nodes[ci].n_outputs != 1)
            continue;
        const graft_node *conv = &g->nodes[ci];
        const graft_tensor *w = conv->n_inputs > 1 ? frozen_const(g, conv->inputs[1], -1) : NULL;
        if (!w || w->rank < 3)
            continue;
        int64_t m = w->dims[0];
        const graft_tensor *ct = frozen_const(g, c, m);
        /* broadcast along the channel axis only: [M,1,1] or [1,M,1,1] */
        int ch = ct ? ct->rank - (w->rank - 1) : -1;
        bool per_channel = ct && ch >= 0 && ct->rank <= w->rank && ct->dims[ch] == m;
        for (int i = 0; per_channel && i < ct->rank; i++)
            per_channel = i == ch || ct->dims[i] == 1;
        int32_t bv = conv->n_inputs > 2 ? conv->inputs[2] : -1;
        const graft_tensor *b = bv >= 0 ? frozen_const(g, bv, m) : NULL;
        if (!per_channel || (bv >= 0 && !b))
            continue;
        graft_tensor *nb = NULL;
        int64_t bd[1] = {m};
        if (graft_tensor_create(GRAFT_FLOAT, 1, bd, &nb, err))
            return -1;
        for (int64_t o = 0; o < m; o++)
            graft_tensor_f32(nb)[o] =
                (b ? graft_tensor_f32(b)[o] : 0.0f) + graft_tensor_f32(ct)[o];
        char bname[256];
        textf(bname, sizeof bname, "%s", g->values[conv->inputs[1]].name);
        int32_t nbv = new_weight(g, bname, "_addfold_bias", nb, err);
        if (nbv < 0)
            return -1;
        graft_node *cn = &g->nodes[ci];
        if (cn->n_inputs < 3) {
            int32_t *in = realloc(cn->inputs, 3 * sizeof *in);
            if (!in)
                return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory folding a bias"), -1;
            cn->inputs = in;
            cn->n_inputs = 3;
        }
        cn->inputs[2] = nbv;
        graft_node *an = &g->nodes[ai];
        int32_t y = an->outputs[0];
        consumers[x] = 0;
        g->values[x].producer = -1;
        cn->outputs[0] = y;
        g->values[y].producer = ci;
        an->removed = true;
        return 1;
    }
    return 0;
}

/* Node reading v, when exactly one live node does. */
static int32_t only_consumer(const graft_graph *g, int32_t v)
{
    int32_t found = -1;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const graft_node *n = &g->nodes[i];
        if (n->removed)
            continue;
        for (int k = 0; k < n->n_inputs; k++) {
            if (n->inputs[k] != v)
                continue;
            if (found >= 0 && found != i)
                return -1;
            found = i;
        }
    }
    return found;
}

typedef struct activation {
    const char *name; /* FusedConv's activation attribute */
    int n_params;
    float params[2]; /* activation_params */
} activation;

/* The activations ONNX Runtime's FusedConv takes: Relu, Sigmoid, Tanh,
 * LeakyRelu, HardSigmoid, and Clip with constant bounds. */
static bool as_activation(const graft_graph *g, const graft_node *n, activation *a)
{
    a->n_params = 0;
    if (n->n_outputs < 1 || n->outputs[0] < 0)
        return false;
    if (is_op(n, "Relu") || is_op(n, "Sigmoid") || is_op(n, "Tanh")) {
        a->name = n->op_type;
        return n->n_inputs == 1;
    }
    if (is_op(n, "LeakyRelu")) {
        a->name = "LeakyRelu";
        a->n_params = 1;
        a->params[0] = graft_node_attr_float(n, "alpha", 0.01f);
        return n->n_inputs == 1;
    }
    if (is_op(n, "HardSigmoid")) {
        a->name = "HardSigmoid";
        a->n_params = 2;
        a->params[0] = graft_node_attr_float(n, "alpha", 0.2f);
        a->params[1] = graft_node_attr_float(n, "beta", 0.5f);
        return n->n_inputs == 1;
    }
    if (!is_op(n, "Clip"))
        return false;
    a->name = "Clip";
    a->n_params = 2;
    a->params[0] = -FLT_MAX;
    a->params[1] = FLT_MAX;
    if (n->opset > 0 && n->opset < 11) {
        a->params[0] = graft_node_attr_float(n, "min", -FLT_MAX);
        a->params[1] = graft_node_attr_float(n, "max", FLT_MAX);
        return n->n_inputs == 1;
    }
    for (int k = 1; k < n->n_inputs && k < 3; k++) {
        int32_t v = n->inputs[k];
        if (v < 0)
            continue;
        const graft_tensor *t = stat_const(g, v, 1);
        if (!t)
            return false;
        a->params[k - 1] = graft_tensor_f32(t)[0];
    }
    return n->n_inputs <= 3;
}

static bool same_known_shape(const graft__si *a, const graft__si *b)
{
    if (a->rank < 0 || a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] < 0 || a->dims[i] != b->dims[i])
            return false;
    return true;
}

static bool attrs_copyable(const graft_node *n)
{
    for (int a = 0; a < n->n_attrs; a++) {
        graft_attr_type t = n->attrs[a].type;
        if (t != GRAFT_ATTR_INT && t != GRAFT_ATTR_INTS && t != GRAFT_ATTR_FLOAT &&
            t != GRAFT_ATTR_STRING)
            return false;
    }
    return true;
}

static graft_status set_floats(graft_graph *g, int32_t node, const char *name, int n,
                               const float *v, graft_error *err)
{
    /* graph.h has no FLOATS setter: create the attribute as INTS, then
     * retype it; both live in the graph's arena. */
    int64_t dummy[1] = {0};
    graft_status st = graft_node_set_ints(g, node, name, 1, dummy, err);
    if (st)
        return st;
    graft_node *nd = &g->nodes[node];
    graft_attr *a = NULL;
    for (int i = 0; i < nd->n_attrs; i++)
        if (strcmp(nd->attrs[i].name, name) == 0)
            a = &nd->attrs[i];
    float *f = graft_graph_alloc(g, (size_t)(n ? n : 1) * sizeof *f);
    if (!a || !f)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory");
    memcpy(f, v, (size_t)n * sizeof *f);
    a->type = GRAFT_ATTR_FLOATS;
    a->ints = NULL;
    a->floats = f;
    a->n = n;
    return GRAFT_OK;
}

static graft_status ensure_ms_opset(graft_graph *g, graft_error *err)
{
    if (graft_graph_opset(g, "com.microsoft") > 0)
        return GRAFT_OK;
    graft_opset *p = realloc(g->opsets, (size_t)(g->n_opsets + 1) * sizeof *p);
    if (!p)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory");
    g->opsets = p;
    p[g->n_opsets].domain = graft_graph_strdup(g, "com.microsoft");
    p[g->n_opsets].version = 1;
    if (!p[g->n_opsets].domain)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory");
    g->n_opsets++;
    return GRAFT_OK;
}

/* Tries to fuse Conv `ci` with what follows; 1 done, 0 not applicable, <0 error. */
static int fuse_conv(graft_graph *g, int32_t ci, const graft__si *s1, const graft__si *s2,
                     graft_error *err)
{
    const graft_node *c = &g->nodes[ci];
    if (c->n_inputs < 2 || c->n_outputs != 1 || c->outputs[0] < 0 || !attrs_copyable(c))
        return 0;
    if (!frozen_const(g, c->inputs[1], -1))
        return 0;
    int32_t bias = c->n_inputs > 2 ? c->inputs[2] : -1;
    if (bias >= 0 && !frozen_const(g, bias, -1))
        return 0;
    int32_t y = c->outputs[0];
    if (g->values[y].is_graph_output)
        return 0;
    int32_t ni = only_consumer(g, y);
    if (ni < 0)
        return 0;
    activation act;
    int32_t z = -1, final = -1, removed[3] = {ci, ni, -1};
    const graft_node *next = &g->nodes[ni];
    if (as_activation(g, next, &act)) {
        final = next->outputs[0];
    } else if (is_op(next, "Add") && next->n_inputs == 2 && next->n_outputs == 1) {
        int32_t other = next->inputs[0] == y ? next->inputs[1] : next->inputs[0];
        if (other == y || other < 0 || !same_known_shape(&s1[other], &s1[y]) ||
            !same_known_shape(&s2[other], &s2[y]))
            return 0;
        int32_t a = next->outputs[0];
        if (a < 0 || g->values[a].is_graph_output)
            return 0;
        int32_t ai = only_consumer(g, a);
        if (ai < 0 || !as_activation(g, &g->nodes[ai], &act))
            return 0;
        z = other;
        final = g->nodes[ai].outputs[0];
        removed[2] = ai;
    } else {
        return 0;
    }
    if (final < 0)
        return 0;
    if (ensure_ms_opset(g, err))
        return -1;
    int32_t in[4] = {c->inputs[0], c->inputs[1], bias, z};
    int n_in = z >= 0 ? 4 : bias >= 0 ? 3 : 2;
    char name[300];
    textf(name, sizeof name, "%s%sfused", c->name, *c->name ? "_" : "conv_");
    for (int i = 0; i < 3; i++)
        if (removed[i] >= 0)
            g->nodes[removed[i]].removed = true;
    g->values[final].producer = -1;
    int32_t fi = graft_graph_add_node(g, "FusedConv", "com.microsoft", name, n_in, in, 1, &final,
                                      err);
    if (fi < 0)
        return -1;
    const graft_node *src = &g->nodes[ci];
    for (int k = 0; k < src->n_attrs; k++) {
        const graft_attr *a = &g->nodes[ci].attrs[k];
        graft_status st = GRAFT_OK;
        switch (a->type) {
        case GRAFT_ATTR_INT: st = graft_node_set_int(g, fi, a->name, a->i, err); break;
        case GRAFT_ATTR_INTS: st = graft_node_set_ints(g, fi, a->name, a->n, a->ints, err); break;
        case GRAFT_ATTR_FLOAT: st = graft_node_set_float(g, fi, a->name, a->f, err); break;
        default: st = graft_node_set_string(g, fi, a->name, a->s, err); break;
        }
        if (st)
            return -1;
        src = &g->nodes[ci];
    }
    if (graft_node_set_string(g, fi, "activation", act.name, err))
        return -1;
    if (act.n_params && set_floats(g, fi, "activation_params", act.n_params, act.params, err))
        return -1;
    return 1;
}

graft_status graft_passes_optimize_for_inference(graft_graph *g, int *n_rewrites,
                                                 graft_error *err)
{
    int count = 0;
    graft_status st = GRAFT_OK;
    graft__si *s1 = NULL, *s2 = NULL;
    int32_t *consumers = graft__count_consumers(g);
    int32_t *order = NULL;
    if (n_rewrites)
        *n_rewrites = 0;
    if (!consumers)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory optimizing the graph");
    /* topological order, so that Conv -> Add(bias) -> BN folds completely */
    order = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *order);
    if (!order) {
        st = graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory optimizing the graph");
        goto done;
    }
    int32_t n_live = graft_graph_topo_order(g, order, err);
    if (n_live < 0) {
        st = err && err->status ? err->status : GRAFT_ERR_INVALID;
        goto done;
    }
    for (int32_t j = 0; j < n_live; j++) {
        int32_t i = order[j];
        int r = 0;
        if (g->nodes[i].removed)
            continue;
        if (is_op(&g->nodes[i], "BatchNormalization"))
            r = fold_bn(g, i, consumers, err);
        else if (is_op(&g->nodes[i], "Add"))
            r = fold_bias_add(g, i, consumers, err);
        if (r < 0) {
            st = err && err->status ? err->status : GRAFT_ERR_NOMEM;
            goto done;
        }
        count += r;
    }
    if ((st = graft__infer_static_shapes(g, 1, &s1, err)) ||
        (st = graft__infer_static_shapes(g, 2, &s2, err)))
        goto done;
    int32_t n0 = g->n_nodes;
    for (int32_t i = 0; i < n0; i++) {
        if (g->nodes[i].removed || !is_op(&g->nodes[i], "Conv"))
            continue;
        int r = fuse_conv(g, i, s1, s2, err);
        if (r < 0) {
            st = err && err->status ? err->status : GRAFT_ERR_NOMEM;
            goto done;
        }
        count += r;
    }
    st = graft_graph_compact(g, err);
done:
    free(consumers);
    free(order);
    free(s1);
    free(s2);
    if (n_rewrites)
        *n_rewrites = count;
    return st;
}
