/* The graph IR: values and nodes in growable arrays, names and attributes in
 * the graph's arena, initializer tensors owned through graft_value.data. A
 * name -> value index hash keeps lookups O(1) for importers of big models. */
#include "graft/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "ops/op.h"

/* The name index lives beside the graph (not in the public struct). */
typedef struct name_index {
    int32_t *slots; /* value index + 1; 0 = empty */
    size_t cap;     /* power of two */
} name_index;

typedef struct graph_private {
    graft_graph pub;
    name_index names;
} graph_private;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static name_index *index_of(const graft_graph *g)
{
    return &((graph_private *)g)->names;
}

static int index_insert(graft_graph *g, int32_t v)
{
    name_index *ix = index_of(g);
    if ((size_t)(g->n_values + 1) * 2 > ix->cap) {
        size_t cap = ix->cap ? ix->cap * 2 : 256;
        while (cap < (size_t)(g->n_values + 1) * 2)
            cap *= 2;
        int32_t *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return -1;
        free(ix->slots);
        ix->slots = slots;
        ix->cap = cap;
        for (int32_t i = 0; i < g->n_values; i++) {
            if (i == v)
                continue;
            size_t h = hash_str(g->values[i].name) & (cap - 1);
            while (slots[h])
                h = (h + 1) & (cap - 1);
            slots[h] = i + 1;
        }
    }
    size_t h = hash_str(g->values[v].name) & (ix->cap - 1);
    while (ix->slots[h])
        h = (h + 1) & (ix->cap - 1);
    ix->slots[h] = v + 1;
    return 0;
}

int32_t graft_graph_find_value(const graft_graph *g, const char *name)
{
    const name_index *ix = index_of(g);
    if (!name || !ix->cap)
        return -1;
    size_t h = hash_str(name) & (ix->cap - 1);
    while (ix->slots[h]) {
        int32_t v = ix->slots[h] - 1;
        if (strcmp(g->values[v].name, name) == 0)
            return v;
        h = (h + 1) & (ix->cap - 1);
    }
    return -1;
}

graft_status graft_graph_create(graft_graph **out, graft_error *err)
{
    graph_private *gp = calloc(1, sizeof *gp);
    if (!gp)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory creating a graph");
    gp->pub.arena = graft_arena_create();
    if (!gp->pub.arena) {
        free(gp);
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory creating a graph");
    }
    gp->pub.ir_version = 0;
    *out = &gp->pub;
    return GRAFT_OK;
}

void graft_graph_destroy(graft_graph *g)
{
    if (!g)
        return;
    for (int32_t i = 0; i < g->n_values; i++) {
        graft_tensor_destroy(g->values[i].data);
        free(g->values[i].source_pb);
    }
    for (int32_t i = 0; i < g->n_nodes; i++) {
        graft_node *n = &g->nodes[i];
        for (int a = 0; a < n->n_attrs; a++) {
            graft_tensor_destroy(n->attrs[a].t);
            free(n->attrs[a].source_pb);
        }
        free(n->attrs);
        free(n->inputs);
        free(n->outputs);
    }
    free(g->values);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->opsets);
    free(g->meta);
    free(index_of(g)->slots);
    graft_arena_destroy(g->arena);
    free((graph_private *)g);
}

void *graft_graph_alloc(graft_graph *g, size_t nbytes)
{
    return graft_arena_alloc(g->arena, nbytes);
}

char *graft_graph_strndup(graft_graph *g, const char *s, size_t n)
{
    char *p = graft_arena_alloc(g->arena, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *graft_graph_strdup(graft_graph *g, const char *s)
{
    if (!s)
        s = "";
    return graft_graph_strndup(g, s, strlen(s));
}

int32_t graft_graph_add_value(graft_graph *g, const char *name, graft_error *err)
{
    if (!name || !*name) {
        graft_error_set(err, GRAFT_ERR_INVALID, "value with an empty name");
        return -1;
    }
    if (graft_graph_find_value(g, name) >= 0) {
        graft_error_set(err, GRAFT_ERR_INVALID, "value name '%s' defined twice", name);
        return -1;
    }
    if (g->n_values == g->cap_values) {
        int32_t cap = g->cap_values ? g->cap_values * 2 : 64;
        graft_value *p = realloc(g->values, (size_t)cap * sizeof *p);
        if (!p) {
            graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory adding value '%s'", name);
            return -1;
        }
        g->values = p;
        g->cap_values = cap;
    }
    graft_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = graft_graph_strdup(g, name);
    if (!v->name) {
        graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory adding value '%s'", name);
        return -1;
    }
    v->producer = -1;
    v->rank = -1;
    v->kind = GRAFT_VALUE_ACTIVATION;
    if (index_insert(g, g->n_values) != 0) {
        graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory adding value '%s'", name);
        return -1;
    }
    return g->n_values++;
}

int32_t graft_graph_add_unique_value(graft_graph *g, const char *prefix, graft_error *err)
{
    char name[512];
    snprintf(name, sizeof name, "%s", prefix);
    for (int i = 1; graft_graph_find_value(g, name) >= 0; i++)
        snprintf(name, sizeof name, "%s_%d", prefix, i);
    return graft_graph_add_value(g, name, err);
}

int32_t graft_graph_find_node(const graft_graph *g, const char *name)
{
    if (!name || !*name)
        return -1;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i].removed && strcmp(g->nodes[i].name, name) == 0)
            return i;
    return -1;
}

int32_t graft_graph_add_node(graft_graph *g, const char *op_type, const char *domain,
                             const char *name, int n_inputs, const int32_t *inputs, int n_outputs,
                             const int32_t *outputs, graft_error *err)
{
    for (int i = 0; i < n_outputs; i++) {
        int32_t o = outputs[i];
        if (o < 0)
            continue;
        if (o >= g->n_values) {
            graft_error_set(err, GRAFT_ERR_INTERNAL, "node output index out of range");
            return -1;
        }
        if (g->values[o].producer >= 0 || g->values[o].kind != GRAFT_VALUE_ACTIVATION) {
            graft_error_set(err, GRAFT_ERR_INVALID,
                            "%s node '%s': output '%s' is already produced by another node or is "
                            "a graph input or initializer",
                            op_type, name ? name : "", g->values[o].name);
            return -1;
        }
    }
    if (g->n_nodes == g->cap_nodes) {
        int32_t cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        graft_node *p = realloc(g->nodes, (size_t)cap * sizeof *p);
        if (!p) {
            graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory adding a node");
            return -1;
        }
        g->nodes = p;
        g->cap_nodes = cap;
    }
    graft_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op_type = graft_graph_strdup(g, op_type);
    n->domain = graft_graph_strdup(g, domain);
    n->name = graft_graph_strdup(g, name);
    n->doc_string = NULL;
    n->inputs = malloc((size_t)(n_inputs ? n_inputs : 1) * sizeof *n->inputs);
    n->outputs = malloc((size_t)(n_outputs ? n_outputs : 1) * sizeof *n->outputs);
    if (!n->op_type || !n->domain || !n->name || !n->inputs || !n->outputs) {
        free(n->inputs);
        free(n->outputs);
        graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory adding a node");
        return -1;
    }
    n->n_inputs = n_inputs;
    n->n_outputs = n_outputs;
    if (n_inputs)
        memcpy(n->inputs, inputs, (size_t)n_inputs * sizeof *inputs);
    if (n_outputs)
        memcpy(n->outputs, outputs, (size_t)n_outputs * sizeof *outputs);
    n->op = graft__op_lookup(op_type, domain);
    n->opset = (int)graft_graph_opset(g, domain);
    for (int i = 0; i < n_outputs; i++)
        if (outputs[i] >= 0)
            g->values[outputs[i]].producer = g->n_nodes;
    return g->n_nodes++;
}

static graft_attr *new_attr(graft_graph *g, int32_t node, const char *name, graft_attr_type type,
                            graft_error *err)
{
    graft_node *n = &g->nodes[node];
    for (int a = 0; a < n->n_attrs; a++) {
        if (strcmp(n->attrs[a].name, name) == 0) {
            graft_attr *at = &n->attrs[a];
            graft_tensor_destroy(at->t);
            free(at->source_pb);
            memset(at, 0, sizeof *at);
            at->name = graft_graph_strdup(g, name);
            at->type = type;
            return at;
        }
    }
    graft_attr *p = realloc(n->attrs, (size_t)(n->n_attrs + 1) * sizeof *p);
    if (!p) {
        graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory adding attribute '%s'", name);
        return NULL;
    }
    n->attrs = p;
    graft_attr *at = &n->attrs[n->n_attrs++];
    memset(at, 0, sizeof *at);
    at->name = graft_graph_strdup(g, name);
    at->type = type;
    return at;
}

graft_status graft_node_set_int(graft_graph *g, int32_t node, const char *name, int64_t v,
                                graft_error *err)
{
    graft_attr *a = new_attr(g, node, name, GRAFT_ATTR_INT, err);
    if (!a)
        return GRAFT_ERR_NOMEM;
    a->i = v;
    return GRAFT_OK;
}

graft_status graft_node_set_float(graft_graph *g, int32_t node, const char *name, float v,
                                  graft_error *err)
{
    graft_attr *a = new_attr(g, node, name, GRAFT_ATTR_FLOAT, err);
    if (!a)
        return GRAFT_ERR_NOMEM;
    a->f = v;
    return GRAFT_OK;
}

graft_status graft_node_set_ints(graft_graph *g, int32_t node, const char *name, int n,
                                 const int64_t *v, graft_error *err)
{
    graft_attr *a = new_attr(g, node, name, GRAFT_ATTR_INTS, err);
    if (!a)
        return GRAFT_ERR_NOMEM;
    a->ints = graft_graph_alloc(g, (size_t)(n ? n : 1) * sizeof *v);
    if (!a->ints)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory");
    if (n)
        memcpy(a->ints, v, (size_t)n * sizeof *v);
    a->n = n;
    return GRAFT_OK;
}

graft_status graft_node_set_string(graft_graph *g, int32_t node, const char *name, const char *v,
                                   graft_error *err)
{
    graft_attr *a = new_attr(g, node, name, GRAFT_ATTR_STRING, err);
    if (!a)
        return GRAFT_ERR_NOMEM;
    a->s = graft_graph_strdup(g, v);
    a->s_len = strlen(a->s);
    return GRAFT_OK;
}

const graft_attr *graft_node_attr(const graft_node *n, const char *name)
{
    for (int a = 0; a < n->n_attrs; a++)
        if (strcmp(n->attrs[a].name, name) == 0)
            return &n->attrs[a];
    return NULL;
}

int64_t graft_node_attr_int(const graft_node *n, const char *name, int64_t dflt)
{
    const graft_attr *a = graft_node_attr(n, name);
    return a && a->type == GRAFT_ATTR_INT ? a->i : dflt;
}

float graft_node_attr_float(const graft_node *n, const char *name, float dflt)
{
    const graft_attr *a = graft_node_attr(n, name);
    if (a && a->type == GRAFT_ATTR_FLOAT)
        return a->f;
    if (a && a->type == GRAFT_ATTR_INT)
        return (float)a->i;
    return dflt;
}

const char *graft_node_attr_string(const graft_node *n, const char *name, const char *dflt)
{
    const graft_attr *a = graft_node_attr(n, name);
    return a && a->type == GRAFT_ATTR_STRING ? a->s : dflt;
}

int graft_node_attr_ints(const graft_node *n, const char *name, const int64_t **v)
{
    const graft_attr *a = graft_node_attr(n, name);
    if (!a || a->type != GRAFT_ATTR_INTS)
        return -1;
    *v = a->ints;
    return a->n;
}

int64_t graft_graph_opset(const graft_graph *g, const char *domain)
{
    bool dflt = !domain || !*domain || strcmp(domain, "ai.onnx") == 0;
    for (int i = 0; i < g->n_opsets; i++) {
        const char *d = g->opsets[i].domain;
        bool d_dflt = !d || !*d || strcmp(d, "ai.onnx") == 0;
        if (dflt ? d_dflt : (d && strcmp(d, domain) == 0))
            return g->opsets[i].version;
    }
    return 0;
}

void graft_value_set_data(graft_graph *g, int32_t v, graft_tensor *t)
{
    graft_tensor_destroy(g->values[v].data);
    g->values[v].data = t;
}

int32_t graft_graph_topo_order(const graft_graph *g, int32_t *order, graft_error *err)
{
    /* Kahn's algorithm over live nodes; in-degree counts producing nodes. */
    int32_t n = g->n_nodes;
    int32_t *indeg = calloc((size_t)(n ? n : 1), sizeof *indeg);
    int32_t *consumers_start = calloc((size_t)g->n_values + 1, sizeof *consumers_start);
    int32_t *queue = malloc((size_t)(n ? n : 1) * sizeof *queue);
    int32_t *edges = NULL;
    int32_t count = -1;
    if (!indeg || !consumers_start || !queue) {
        graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory sorting the graph");
        goto done;
    }
    int64_t n_edges = 0;
    for (int32_t i = 0; i < n; i++) {
        const graft_node *nd = &g->nodes[i];
        if (nd->removed)
            continue;
        for (int k = 0; k < nd->n_inputs; k++) {
            int32_t v = nd->inputs[k];
            if (v >= 0 && g->values[v].producer >= 0 && !g->nodes[g->values[v].producer].removed) {
                indeg[i]++;
                consumers_start[v + 1]++;
                n_edges++;
            }
        }
    }
    for (int32_t v = 0; v < g->n_values; v++)
        consumers_start[v + 1] += consumers_start[v];
    edges = malloc((size_t)(n_edges ? n_edges : 1) * sizeof *edges);
    int32_t *fill = calloc((size_t)g->n_values + 1, sizeof *fill);
    if (!edges || !fill) {
        free(fill);
        graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory sorting the graph");
        goto done;
    }
    for (int32_t i = 0; i < n; i++) {
        const graft_node *nd = &g->nodes[i];
        if (nd->removed)
            continue;
        for (int k = 0; k < nd->n_inputs; k++) {
            int32_t v = nd->inputs[k];
            if (v >= 0 && g->values[v].producer >= 0 && !g->nodes[g->values[v].producer].removed)
                edges[consumers_start[v] + fill[v]++] = i;
        }
    }
    free(fill);
    /* Seed in file order so a sorted file keeps its order. */
    int32_t head = 0, tail = 0, live = 0;
    for (int32_t i = 0; i < n; i++) {
        if (g->nodes[i].removed)
            continue;
        live++;
        if (indeg[i] == 0)
            queue[tail++] = i;
    }
    count = 0;
    while (head < tail) {
        int32_t i = queue[head++];
        order[count++] = i;
        const graft_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->n_outputs; k++) {
            int32_t v = nd->outputs[k];
            if (v < 0)
                continue;
            for (int32_t e = consumers_start[v]; e < consumers_start[v + 1]; e++)
                if (--indeg[edges[e]] == 0)
                    queue[tail++] = edges[e];
        }
    }
    if (count != live) {
        const graft_node *stuck = NULL;
        for (int32_t i = 0; i < n && !stuck; i++)
            if (!g->nodes[i].removed && indeg[i] > 0)
                stuck = &g->nodes[i];
        graft_error_set(err, GRAFT_ERR_INVALID, "graph has a cycle (through %s node '%s')",
                        stuck ? stuck->op_type : "?", stuck ? stuck->name : "?");
        count = -1;
    }
done:
    free(indeg);
    free(consumers_start);
    free(queue);
    free(edges);
    return count;
}

graft_status graft_graph_compact(graft_graph *g, graft_error *err)
{
    int32_t *order = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *order);
    if (!order)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory");
    int32_t count = graft_graph_topo_order(g, order, err);
    if (count < 0) {
        free(order);
        return err ? err->status : GRAFT_ERR_INVALID;
    }
    graft_node *nodes = malloc((size_t)(g->cap_nodes ? g->cap_nodes : 1) * sizeof *nodes);
    if (!nodes) {
        free(order);
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory");
    }
    for (int32_t i = 0; i < count; i++)
        nodes[i] = g->nodes[order[i]];
    for (int32_t i = 0; i < g->n_nodes; i++) {
        graft_node *nd = &g->nodes[i];
        if (!nd->removed)
            continue;
        for (int a = 0; a < nd->n_attrs; a++) {
            graft_tensor_destroy(nd->attrs[a].t);
            free(nd->attrs[a].source_pb);
        }
        free(nd->attrs);
        free(nd->inputs);
        free(nd->outputs);
    }
    free(g->nodes);
    g->nodes = nodes;
    g->n_nodes = count;
    for (int32_t v = 0; v < g->n_values; v++)
        g->values[v].producer = -1;
    for (int32_t i = 0; i < count; i++)
        for (int k = 0; k < nodes[i].n_outputs; k++)
            if (nodes[i].outputs[k] >= 0)
                g->values[nodes[i].outputs[k]].producer = i;
    free(order);
    return GRAFT_OK;
}

graft_status graft_graph_verify(const graft_graph *g, graft_error *err)
{
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const graft_node *nd = &g->nodes[i];
        if (nd->removed)
            continue;
        for (int k = 0; k < nd->n_inputs; k++) {
            int32_t v = nd->inputs[k];
            if (v < 0)
                continue;
            const graft_value *val = &g->values[v];
            bool ok = val->kind != GRAFT_VALUE_ACTIVATION ||
                      (val->producer >= 0 && !g->nodes[val->producer].removed);
            if (!ok)
                return graft_error_set(err, GRAFT_ERR_INVALID,
                                       "%s node '%s': input '%s' is not produced by any node, "
                                       "graph input or initializer",
                                       nd->op_type, nd->name, val->name);
        }
        for (int k = 0; k < nd->n_outputs; k++) {
            int32_t v = nd->outputs[k];
            if (v >= 0 && g->values[v].producer != i)
                return graft_error_set(err, GRAFT_ERR_INVALID,
                                       "value '%s' has more than one producer",
                                       g->values[v].name);
        }
    }
    for (int32_t k = 0; k < g->n_outputs; k++) {
        const graft_value *val = &g->values[g->outputs[k]];
        if (val->kind == GRAFT_VALUE_ACTIVATION &&
            (val->producer < 0 || g->nodes[val->producer].removed))
            return graft_error_set(err, GRAFT_ERR_INVALID,
                                   "graph output '%s' is not produced by any node", val->name);
    }
    return GRAFT_OK;
}

const char *graft_graph_meta_get(const graft_graph *g, const char *key)
{
    for (int i = 0; i < g->n_meta; i++)
        if (strcmp(g->meta[i].key, key) == 0)
            return g->meta[i].value;
    return NULL;
}

graft_status graft_graph_meta_set(graft_graph *g, const char *key, const char *value,
                                  graft_error *err)
{
    char *v = graft_graph_strdup(g, value);
    if (!v)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < g->n_meta; i++) {
        if (strcmp(g->meta[i].key, key) == 0) {
            g->meta[i].value = v;
            return GRAFT_OK;
        }
    }
    graft_meta *p = realloc(g->meta, (size_t)(g->n_meta + 1) * sizeof *p);
    if (!p)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory");
    g->meta = p;
    g->meta[g->n_meta].key = graft_graph_strdup(g, key);
    g->meta[g->n_meta].value = v;
    if (!g->meta[g->n_meta].key)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory");
    g->n_meta++;
    return GRAFT_OK;
}

bool graft_node_training_form(const graft_graph *g, const graft_node *n)
{
    if (n->removed || (n->domain && *n->domain && strcmp(n->domain, "ai.onnx") != 0))
        return false;
    if (strcmp(n->op_type, "BatchNormalization") == 0)
        return graft_node_attr_int(n, "training_mode", 0) != 0;
    if (strcmp(n->op_type, "Dropout") != 0 || n->n_inputs < 3 || n->inputs[2] < 0)
        return false;
    const graft_value *t = &g->values[n->inputs[2]];
    /* bool computes as uint8; anything else (a graph input, a computed
     * value) may be true at run time */
    bool known_false = t->kind == GRAFT_VALUE_INITIALIZER && t->data &&
                       t->data->dtype == GRAFT_UINT8 && graft_tensor_nelem(t->data) == 1 &&
                       ((const uint8_t *)t->data->data)[0] == 0;
    return !known_false;
}

int64_t graft_graph_param_count(const graft_graph *g, bool trainable_only)
{
    int64_t n = 0;
    for (int32_t v = 0; v < g->n_values; v++) {
        const graft_value *val = &g->values[v];
        if (val->kind != GRAFT_VALUE_INITIALIZER || !val->data)
            continue;
        if (!graft_dtype_is_float(val->source_dtype ? val->source_dtype : val->data->dtype))
            continue;
        if (trainable_only && !val->trainable)
            continue;
        n += graft_tensor_nelem(val->data);
    }
    /* Weights a Constant node delivers are weights all the same (they are
     * never trainable: the freeze pass trains new initializers only). */
    for (int32_t i = 0; i < g->n_nodes && !trainable_only; i++) {
        const graft_node *c = &g->nodes[i];
        if (c->removed || strcmp(c->op_type, "Constant") != 0 || (c->domain && *c->domain))
            continue;
        const graft_attr *a = graft_node_attr(c, "value");
        if (a && a->type == GRAFT_ATTR_TENSOR && a->t && graft_dtype_is_float(a->t->dtype))
            n += graft_tensor_nelem(a->t);
        else if ((a = graft_node_attr(c, "value_floats")) && a->type == GRAFT_ATTR_FLOATS)
            n += a->n;
        else if (graft_node_attr(c, "value_float"))
            n += 1;
    }
    return n;
}

/* ---- clone ---- */

static char *dup_in(graft_graph *g, const char *s)
{
    return s ? graft_graph_strdup(g, s) : NULL;
}

static graft_status dup_bytes(const uint8_t *src, size_t len, uint8_t **out)
{
    *out = NULL;
    if (!src)
        return GRAFT_OK;
    *out = malloc(len ? len : 1);
    if (!*out)
        return GRAFT_ERR_NOMEM;
    if (len)
        memcpy(*out, src, len);
    return GRAFT_OK;
}

graft_status graft_graph_clone(const graft_graph *g, graft_graph **out, graft_error *err)
{
    graft_graph *c = NULL;
    graft_status st = graft_graph_create(&c, err);
    if (st)
        return st;
    st = GRAFT_ERR_NOMEM;
    c->ir_version = g->ir_version;
    c->model_version = g->model_version;
    c->producer_name = dup_in(c, g->producer_name);
    c->producer_version = dup_in(c, g->producer_version);
    c->domain = dup_in(c, g->domain);
    c->doc_string = dup_in(c, g->doc_string);
    c->graph_name = dup_in(c, g->graph_name);
    c->graph_doc_string = dup_in(c, g->graph_doc_string);
    c->source_path = dup_in(c, g->source_path);
    c->source_dir = dup_in(c, g->source_dir);
    if (g->n_opsets) {
        c->opsets = calloc((size_t)g->n_opsets, sizeof *c->opsets);
        if (!c->opsets)
            goto fail;
        for (int i = 0; i < g->n_opsets; i++) {
            c->opsets[i].domain = dup_in(c, g->opsets[i].domain);
            c->opsets[i].version = g->opsets[i].version;
        }
        c->n_opsets = g->n_opsets;
    }
    for (int i = 0; i < g->n_meta; i++)
        if (graft_graph_meta_set(c, g->meta[i].key, g->meta[i].value, err))
            goto fail;
    for (int32_t v = 0; v < g->n_values; v++) {
        const graft_value *src = &g->values[v];
        if (graft_graph_add_value(c, src->name, err) != v)
            goto fail;
        graft_value *dst = &c->values[v];
        char *name = dst->name;
        *dst = *src;
        dst->name = name;
        dst->doc_string = dup_in(c, src->doc_string);
        for (int d = 0; d < GRAFT_MAX_RANK; d++)
            dst->dim_params[d] = dup_in(c, src->dim_params[d]);
        dst->data = NULL;
        dst->source_pb = NULL;
        if (src->data && graft_tensor_clone(src->data, &dst->data, err))
            goto fail;
        if (dup_bytes(src->source_pb, src->source_pb_len, &dst->source_pb))
            goto fail;
    }
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const graft_node *src = &g->nodes[i];
        /* Producers are re-set by add_node; clear them first so removed
         * nodes' outputs do not trip the one-producer check. */
        for (int k = 0; k < src->n_outputs; k++)
            if (src->outputs[k] >= 0)
                c->values[src->outputs[k]].producer = -1;
        int32_t ni = graft_graph_add_node(c, src->op_type, src->domain, src->name, src->n_inputs,
                                          src->inputs, src->n_outputs, src->outputs, err);
        if (ni != i)
            goto fail;
        graft_node *dst = &c->nodes[i];
        dst->doc_string = dup_in(c, src->doc_string);
        dst->opset = src->opset;
        dst->op = src->op;
        dst->removed = src->removed;
        if (src->n_attrs) {
            dst->attrs = calloc((size_t)src->n_attrs, sizeof *dst->attrs);
            if (!dst->attrs)
                goto fail;
            dst->n_attrs = src->n_attrs;
            for (int a = 0; a < src->n_attrs; a++) {
                const graft_attr *sa = &src->attrs[a];
                graft_attr *da = &dst->attrs[a];
                *da = *sa;
                da->name = dup_in(c, sa->name);
                da->s = sa->s ? graft_graph_strndup(c, sa->s, sa->s_len) : NULL;
                da->floats = NULL;
                da->ints = NULL;
                da->strings = NULL;
                da->t = NULL;
                da->source_pb = NULL;
                if (sa->floats) {
                    da->floats = graft_graph_alloc(c, (size_t)sa->n * sizeof(float) + 1);
                    if (!da->floats)
                        goto fail;
                    memcpy(da->floats, sa->floats, (size_t)sa->n * sizeof(float));
                }
                if (sa->ints) {
                    da->ints = graft_graph_alloc(c, (size_t)sa->n * sizeof(int64_t) + 1);
                    if (!da->ints)
                        goto fail;
                    memcpy(da->ints, sa->ints, (size_t)sa->n * sizeof(int64_t));
                }
                if (sa->strings) {
                    da->strings = graft_graph_alloc(c, (size_t)sa->n * sizeof(char *) + 1);
                    if (!da->strings)
                        goto fail;
                    for (int s = 0; s < sa->n; s++)
                        da->strings[s] = dup_in(c, sa->strings[s]);
                }
                if (sa->t && graft_tensor_clone(sa->t, &da->t, err))
                    goto fail;
                if (dup_bytes(sa->source_pb, sa->source_pb_len, &da->source_pb))
                    goto fail;
            }
        }
    }
    /* Restore producers exactly (removed nodes included). */
    for (int32_t v = 0; v < g->n_values; v++)
        c->values[v].producer = g->values[v].producer;
    if (g->n_inputs) {
        c->inputs = malloc((size_t)g->n_inputs * sizeof *c->inputs);
        if (!c->inputs)
            goto fail;
        memcpy(c->inputs, g->inputs, (size_t)g->n_inputs * sizeof *c->inputs);
        c->n_inputs = g->n_inputs;
    }
    if (g->n_outputs) {
        c->outputs = malloc((size_t)g->n_outputs * sizeof *c->outputs);
        if (!c->outputs)
            goto fail;
        memcpy(c->outputs, g->outputs, (size_t)g->n_outputs * sizeof *c->outputs);
        c->n_outputs = g->n_outputs;
    }
    *out = c;
    return GRAFT_OK;
fail:
    graft_graph_destroy(c);
    if (err && err->status == GRAFT_OK)
        graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory cloning the graph");
    return err && err->status ? err->status : st;
}
