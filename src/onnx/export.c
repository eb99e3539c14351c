/* graft graph -> ONNX ModelProto. A fresh protobuf is built from the IR; every
 * part of it is malloc'd separately so that one protobuf_c_message_free_unpacked
 * releases the whole tree, on success and on every failure path alike.
 * Frozen initializers and parsed-from-file attributes are unpacked from their
 * source_pb and so re-emitted unchanged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graft/graft.h"
#include "graft/onnx.h"
#include "onnx/onnx_private.h"

/* ---- a small string set (node names) ---- */

typedef struct str_set {
    const char **slots;
    size_t cap, n;
} str_set;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool set_has(const str_set *s, const char *k)
{
    if (!s->cap)
        return false;
    for (size_t h = hash_str(k) & (s->cap - 1); s->slots[h]; h = (h + 1) & (s->cap - 1))
        if (strcmp(s->slots[h], k) == 0)
            return true;
    return false;
}

/* k must outlive the set. false on OOM. */
static bool set_add(str_set *s, const char *k)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        const char **slots = calloc(cap, sizeof *slots);
        if (!slots)
            return false;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slots[i])
                continue;
            size_t h = hash_str(s->slots[i]) & (cap - 1);
            while (slots[h])
                h = (h + 1) & (cap - 1);
            slots[h] = s->slots[i];
        }
        free(s->slots);
        s->slots = slots;
        s->cap = cap;
    }
    size_t h = hash_str(k) & (s->cap - 1);
    while (s->slots[h]) {
        if (strcmp(s->slots[h], k) == 0)
            return true;
        h = (h + 1) & (s->cap - 1);
    }
    s->slots[h] = k;
    s->n++;
    return true;
}

/* ---- the exporter ---- */

typedef struct exporter {
    const graft_graph *g;
    const char *file; /* messages */
    graft_error *err;
    bool oom;
    bool dynamic_batch;
    bool float32; /* every floating type written as float32 (opt->float32) */
    const char *batch_symbol; /* for a dimension 0 made symbolic */
    bool *referenced; /* per value: read by a live node or a graph output */
} exporter;

static char *xs(exporter *ex, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    if (!p) {
        ex->oom = true;
        return NULL;
    }
    memcpy(p, s, n + 1);
    return p;
}

static void *xcalloc(exporter *ex, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        ex->oom = true;
    return p;
}

static int64_t ir_for_opset(int64_t opset)
{
    if (opset <= 8) return 3;
    if (opset == 9) return 4;
    if (opset == 10) return 5;
    if (opset == 11) return 6;
    if (opset <= 14) return 7;
    if (opset <= 18) return 8;
    if (opset <= 20) return 9;
    return 10;
}

static bool is_default_domain(const char *d)
{
    return !d || !*d || strcmp(d, "ai.onnx") == 0;
}

/* The element type written for a value stored as dt. */
static graft_dtype written_dtype(const exporter *ex, graft_dtype dt)
{
    if (ex->float32 && graft_dtype_is_float(dt))
        return GRAFT_FLOAT;
    return dt;
}

/* Names a subgraph reads, so the outer initializers they need are written. */
static void mark_subgraph(exporter *ex, const Onnx__GraphProto *sg, int depth)
{
    if (!sg || depth > 64)
        return;
    for (size_t i = 0; i < sg->n_node; i++) {
        const Onnx__NodeProto *np = sg->node[i];
        for (size_t k = 0; k < np->n_input; k++) {
            int32_t v = graft_graph_find_value(ex->g, np->input[k]);
            if (v >= 0)
                ex->referenced[v] = true;
        }
        for (size_t a = 0; a < np->n_attribute; a++) {
            mark_subgraph(ex, np->attribute[a]->g, depth + 1);
            for (size_t j = 0; j < np->attribute[a]->n_graphs; j++)
                mark_subgraph(ex, np->attribute[a]->graphs[j], depth + 1);
        }
    }
}

static graft_status tensor_msg(exporter *ex, const graft_value *v, Onnx__TensorProto **out)
{
    *out = NULL;
    Onnx__TensorProto *tp = NULL;
    graft_dtype dt = v->source_dtype ? v->source_dtype : v->data ? v->data->dtype : 0;
    /* byte-identical re-emission unless the element type is being widened */
    if (v->source_pb && !v->trainable && written_dtype(ex, dt) == dt) {
        tp = onnx__tensor_proto__unpack(NULL, v->source_pb_len, v->source_pb);
        if (!tp)
            return graft_error_set(ex->err, GRAFT_ERR_INTERNAL,
                                   "%s: stored copy of initializer '%s' is corrupt", ex->file,
                                   v->name);
        if (!tp->name || strcmp(tp->name, v->name) != 0) {
            char *nm = xs(ex, v->name);
            if (!nm) {
                protobuf_c_message_free_unpacked(&tp->base, NULL);
                return graft_error_set(ex->err, GRAFT_ERR_NOMEM, "%s: out of memory", ex->file);
            }
            free(tp->name);
            tp->name = nm;
        }
        *out = tp;
        return GRAFT_OK;
    }
    if (!v->data)
        return graft_error_set(ex->err, GRAFT_ERR_INVALID, "%s: initializer '%s' has no data",
                               ex->file, v->name);
    tp = xcalloc(ex, 1, sizeof *tp);
    if (!tp)
        return graft_error_set(ex->err, GRAFT_ERR_NOMEM, "%s: out of memory", ex->file);
    onnx__tensor_proto__init(tp);
    char what[512];
    snprintf(what, sizeof what, "%s: initializer '%s'", ex->file, v->name);
    graft_status st = graft__tensor_to_pb(v->data, written_dtype(ex, dt), tp, what, ex->err);
    if (st) {
        protobuf_c_message_free_unpacked(&tp->base, NULL);
        return st;
    }
    tp->name = xs(ex, v->name);
    if (v->doc_string)
        tp->doc_string = xs(ex, v->doc_string);
    *out = tp;
    return GRAFT_OK;
}

static Onnx__TensorShapeProto__Dimension *dim_msg(exporter *ex, int64_t d, const char *param)
{
    Onnx__TensorShapeProto__Dimension *dm = xcalloc(ex, 1, sizeof *dm);
    if (!dm)
        return NULL;
    onnx__tensor_shape_proto__dimension__init(dm);
    if (d >= 0) {
        dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        dm->dim_value = d;
    } else if (param) {
        dm->dim_param = xs(ex, param);
        if (dm->dim_param)
            dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    }
    return dm;
}

/* ValueInfoProto for a graph input or output. */
static Onnx__ValueInfoProto *value_info_msg(exporter *ex, const graft_value *v, bool batch_dim)
{
    Onnx__ValueInfoProto *vi = xcalloc(ex, 1, sizeof *vi);
    if (!vi)
        return NULL;
    onnx__value_info_proto__init(vi);
    vi->name = xs(ex, v->name);
    vi->doc_string = xs(ex, v->doc_string);
    Onnx__TypeProto *t = xcalloc(ex, 1, sizeof *t);
    if (!t)
        return vi;
    onnx__type_proto__init(t);
    vi->type = t;
    Onnx__TypeProto__Tensor *tt = xcalloc(ex, 1, sizeof *tt);
    if (!tt)
        return vi;
    onnx__type_proto__tensor__init(tt);
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    graft_dtype dt = v->dtype;
    int rank = v->rank;
    const int64_t *dims = v->dims;
    if (v->kind == GRAFT_VALUE_INITIALIZER && v->data) {
        dt = v->source_dtype ? v->source_dtype : v->data->dtype;
        rank = v->data->rank;
        dims = v->data->dims;
    }
    tt->has_elem_type = 1;
    /* A graph output must be typed; float is what every graft head produces. */
    tt->elem_type = dt ? (int32_t)written_dtype(ex, dt) : GRAFT_FLOAT;
    if (rank < 0)
        return vi;
    Onnx__TensorShapeProto *sh = xcalloc(ex, 1, sizeof *sh);
    if (!sh)
        return vi;
    onnx__tensor_shape_proto__init(sh);
    tt->shape = sh;
    sh->dim = xcalloc(ex, (size_t)rank, sizeof *sh->dim);
    if (!sh->dim)
        return vi;
    for (int d = 0; d < rank; d++) {
        const char *param = v->kind == GRAFT_VALUE_INITIALIZER ? NULL : v->dim_params[d];
        int64_t dv = dims[d];
        if (d == 0 && batch_dim) {
            dv = -1;
            if (!param)
                param = ex->batch_symbol;
        }
        sh->dim[d] = dim_msg(ex, dv, param);
        if (!sh->dim[d])
            return vi;
        sh->n_dim = (size_t)d + 1;
    }
    return vi;
}

/* An attribute naming an element type: Cast's "to", the generators' "dtype". */
static bool is_dtype_attr(const graft_node *n, const char *name, int64_t attr_type)
{
    return is_default_domain(n->domain) && (!strcmp(name, "to") || !strcmp(name, "dtype")) &&
           attr_type == GRAFT_ATTR_INT;
}

/* Float32 export: the stored attribute as it must be written, or NULL with
 * *rebuild set when it has to be rebuilt from compute form (a half or double
 * tensor). Subgraphs are not converted, so they are refused. */
static Onnx__AttributeProto *widen_attr(exporter *ex, const graft_node *n, const graft_attr *a,
                                        Onnx__AttributeProto *ap, bool *rebuild)
{
    if (ap->g || ap->n_graphs) {
        graft_error_set(ex->err, GRAFT_ERR_UNSUPPORTED,
                        "%s: %s node '%s' has a subgraph; the float32 export converts only the "
                        "main graph", ex->file, n->op_type, n->name);
        protobuf_c_message_free_unpacked(&ap->base, NULL);
        return NULL;
    }
    if (ap->t && ap->t->has_data_type && ap->t->data_type != GRAFT_FLOAT &&
        graft_dtype_is_float((graft_dtype)ap->t->data_type) && a->t) {
        protobuf_c_message_free_unpacked(&ap->base, NULL);
        *rebuild = true;
        return NULL;
    }
    if (ap->has_i && is_dtype_attr(n, a->name, (int64_t)ap->type) &&
        graft_dtype_is_float((graft_dtype)ap->i))
        ap->i = GRAFT_FLOAT;
    return ap;
}

static Onnx__AttributeProto *attr_msg(exporter *ex, const graft_node *n, const graft_attr *a)
{
    if (a->source_pb) {
        Onnx__AttributeProto *ap = onnx__attribute_proto__unpack(NULL, a->source_pb_len,
                                                                 a->source_pb);
        if (!ap) {
            graft_error_set(ex->err, GRAFT_ERR_INTERNAL,
                            "%s: stored copy of attribute '%s' of %s node '%s' is corrupt",
                            ex->file, a->name, n->op_type, n->name);
            return NULL;
        }
        bool rebuild = false;
        if (ex->float32 && !(ap = widen_attr(ex, n, a, ap, &rebuild)) && !rebuild)
            return NULL;
        if (ap) {
            mark_subgraph(ex, ap->g, 0);
            for (size_t j = 0; j < ap->n_graphs; j++)
                mark_subgraph(ex, ap->graphs[j], 0);
            return ap;
        }
    }
    Onnx__AttributeProto *ap = xcalloc(ex, 1, sizeof *ap);
    if (!ap) {
        graft_error_set(ex->err, GRAFT_ERR_NOMEM, "%s: out of memory", ex->file);
        return NULL;
    }
    onnx__attribute_proto__init(ap);
    ap->name = xs(ex, a->name);
    ap->has_type = 1;
    ap->type = (Onnx__AttributeProto__AttributeType)a->type;
    switch (a->type) {
    case GRAFT_ATTR_FLOAT:
        ap->has_f = 1;
        ap->f = a->f;
        break;
    case GRAFT_ATTR_INT:
        ap->has_i = 1;
        ap->i = a->i;
        if (ex->float32 && is_dtype_attr(n, a->name, (int64_t)a->type) &&
            graft_dtype_is_float((graft_dtype)a->i))
            ap->i = GRAFT_FLOAT;
        break;
    case GRAFT_ATTR_STRING:
        ap->has_s = 1;
        ap->s.len = a->s ? a->s_len : 0;
        ap->s.data = xcalloc(ex, ap->s.len + 1, 1);
        if (ap->s.data && ap->s.len)
            memcpy(ap->s.data, a->s, ap->s.len);
        break;
    case GRAFT_ATTR_FLOATS:
        ap->floats = xcalloc(ex, (size_t)a->n, sizeof(float));
        if (ap->floats) {
            if (a->n)
                memcpy(ap->floats, a->floats, (size_t)a->n * sizeof(float));
            ap->n_floats = (size_t)a->n;
        }
        break;
    case GRAFT_ATTR_INTS:
        ap->ints = xcalloc(ex, (size_t)a->n, sizeof(int64_t));
        if (ap->ints) {
            if (a->n)
                memcpy(ap->ints, a->ints, (size_t)a->n * sizeof(int64_t));
            ap->n_ints = (size_t)a->n;
        }
        break;
    case GRAFT_ATTR_STRINGS:
        ap->strings = xcalloc(ex, (size_t)a->n, sizeof *ap->strings);
        for (int k = 0; ap->strings && k < a->n; k++) {
            size_t len = a->strings[k] ? strlen(a->strings[k]) : 0;
            ap->strings[k].data = xcalloc(ex, len + 1, 1);
            if (!ap->strings[k].data)
                break;
            memcpy(ap->strings[k].data, a->strings[k] ? a->strings[k] : "", len);
            ap->strings[k].len = len;
            ap->n_strings = (size_t)k + 1;
        }
        break;
    case GRAFT_ATTR_TENSOR: {
        if (!a->t) {
            graft_error_set(ex->err, GRAFT_ERR_INVALID, "%s: attribute '%s' of %s node '%s' has "
                            "no tensor", ex->file, a->name, n->op_type, n->name);
            protobuf_c_message_free_unpacked(&ap->base, NULL);
            return NULL;
        }
        Onnx__TensorProto *tp = xcalloc(ex, 1, sizeof *tp);
        if (!tp)
            break;
        onnx__tensor_proto__init(tp);
        ap->t = tp;
        char what[512];
        snprintf(what, sizeof what, "%s: attribute '%s' of %s node '%s'", ex->file, a->name,
                 n->op_type, n->name);
        if (graft__tensor_to_pb(a->t, GRAFT_DTYPE_UNDEFINED, tp, what, ex->err)) {
            protobuf_c_message_free_unpacked(&ap->base, NULL);
            return NULL;
        }
        break;
    }
    default:
        graft_error_set(ex->err, GRAFT_ERR_UNSUPPORTED,
                        "%s: attribute '%s' of %s node '%s' has type %d and no stored copy",
                        ex->file, a->name, n->op_type, n->name, (int)a->type);
        protobuf_c_message_free_unpacked(&ap->base, NULL);
        return NULL;
    }
    return ap;
}

/* ---- inference form ----
 * graft runs a frozen backbone in inference form whatever the file says
 * (src/ops/batchnorm.c, the Dropout op), so the export says so too: an ONNX
 * runtime would otherwise normalise with batch statistics or drop at random. */

static bool bn_in_training_form(const graft_graph *g, const graft_node *n)
{
    return strcmp(n->op_type, "BatchNormalization") == 0 && graft_node_training_form(g, n);
}

/* Inputs written for n: Dropout-12+ loses its training_mode input (and a
 * ratio that is then trailing and omitted). */
static int inputs_written(const graft_node *n)
{
    int k = n->n_inputs;
    if (!is_default_domain(n->domain) || strcmp(n->op_type, "Dropout") != 0 || k <= 2)
        return k;
    k = 2;
    while (k > 1 && n->inputs[k - 1] < 0)
        k--;
    return k;
}

/* Outputs written for n: an inference-form BatchNormalization has one. */
static int outputs_written(const graft_graph *g, const graft_node *n)
{
    return bn_in_training_form(g, n) ? 1 : n->n_outputs;
}

static bool attr_written(const graft_graph *g, const graft_node *n, const graft_attr *a)
{
    return !(strcmp(a->name, "training_mode") == 0 && bn_in_training_form(g, n));
}

static graft_status node_msg(exporter *ex, const graft_node *n, const char *name,
                             Onnx__NodeProto **out)
{
    const graft_graph *g = ex->g;
    Onnx__NodeProto *np = xcalloc(ex, 1, sizeof *np);
    if (!np)
        return graft_error_set(ex->err, GRAFT_ERR_NOMEM, "%s: out of memory", ex->file);
    onnx__node_proto__init(np);
    *out = np;
    np->name = xs(ex, name);
    np->op_type = xs(ex, n->op_type);
    if (n->domain && *n->domain)
        np->domain = xs(ex, n->domain);
    np->doc_string = xs(ex, n->doc_string);
    int n_in = inputs_written(n), n_out = outputs_written(g, n);
    np->input = xcalloc(ex, (size_t)n_in, sizeof(char *));
    for (int k = 0; np->input && k < n_in; k++) {
        np->input[k] = xs(ex, n->inputs[k] >= 0 ? g->values[n->inputs[k]].name : "");
        np->n_input = (size_t)k + 1;
    }
    np->output = xcalloc(ex, (size_t)n_out, sizeof(char *));
    for (int k = 0; np->output && k < n_out; k++) {
        np->output[k] = xs(ex, n->outputs[k] >= 0 ? g->values[n->outputs[k]].name : "");
        np->n_output = (size_t)k + 1;
    }
    if (n->n_attrs) {
        np->attribute = xcalloc(ex, (size_t)n->n_attrs, sizeof *np->attribute);
        for (int a = 0; np->attribute && a < n->n_attrs; a++) {
            if (!attr_written(g, n, &n->attrs[a]))
                continue;
            Onnx__AttributeProto *ap = attr_msg(ex, n, &n->attrs[a]);
            if (!ap)
                return ex->err && ex->err->status ? ex->err->status : GRAFT_ERR_NOMEM;
            np->attribute[np->n_attribute++] = ap;
        }
    }
    return GRAFT_OK;
}

/* Live nodes in an order where producers come first; the stored order when
 * it already is one. */
static int32_t live_order(exporter *ex, int32_t *order)
{
    const graft_graph *g = ex->g;
    bool sorted = true;
    int32_t count = 0;
    for (int32_t i = 0; i < g->n_nodes && sorted; i++) {
        const graft_node *n = &g->nodes[i];
        if (n->removed)
            continue;
        for (int k = 0; k < n->n_inputs; k++) {
            int32_t v = n->inputs[k];
            if (v >= 0 && g->values[v].producer >= i && !g->nodes[g->values[v].producer].removed)
                sorted = false;
        }
        order[count++] = i;
    }
    if (sorted)
        return count;
    count = graft_graph_topo_order(g, order, ex->err);
    if (count < 0)
        graft_error_prefix(ex->err, "%s", ex->file);
    return count;
}

static graft_status build_model(exporter *ex, const graft_onnx_export_options *opt,
                                Onnx__ModelProto **out)
{
    const graft_graph *g = ex->g;
    graft_status st = GRAFT_OK;
    int32_t *order = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *order);
    str_set orig = {0}, used = {0};
    char **gen_names = NULL;
    Onnx__ModelProto *m = xcalloc(ex, 1, sizeof *m);
    Onnx__GraphProto *gp = xcalloc(ex, 1, sizeof *gp);
    ex->referenced = calloc((size_t)g->n_values + 1, sizeof *ex->referenced);
    ex->dynamic_batch = opt && opt->dynamic_batch;
    ex->float32 = opt && opt->float32;
    /* one symbol for every batch dimension made symbolic: the first input's own */
    const graft_value *in0 = g->n_inputs > 0 ? &g->values[g->inputs[0]] : NULL;
    ex->batch_symbol = in0 && in0->rank > 0 && in0->dim_params[0] ? in0->dim_params[0] : "batch";
    if (!order || !m || !gp || !ex->referenced) {
        free(gp);
        free(m);
        m = NULL;
        st = graft_error_set(ex->err, GRAFT_ERR_NOMEM, "%s: out of memory", ex->file);
        goto done;
    }
    onnx__model_proto__init(m);
    onnx__graph_proto__init(gp);
    m->graph = gp;

    /* never write a model whose structure is broken (unproduced outputs,
     * two producers): the checker or a runtime would refuse it later */
    if (graft_graph_verify(g, ex->err) != GRAFT_OK) {
        graft_error_prefix(ex->err, "%s", ex->file);
        st = ex->err && ex->err->status ? ex->err->status : GRAFT_ERR_INVALID;
        goto done;
    }
    int32_t n_live = live_order(ex, order);
    if (n_live < 0) {
        st = ex->err && ex->err->status ? ex->err->status : GRAFT_ERR_INVALID;
        goto done;
    }

    /* model fields */
    int64_t opset = graft_graph_opset(g, "");
    m->has_ir_version = 1;
    m->ir_version = g->ir_version;
    if (opset && ir_for_opset(opset) > m->ir_version)
        m->ir_version = ir_for_opset(opset);
    if (!opset && m->ir_version < 7)
        m->ir_version = 7; /* a graph built from scratch gets opset 13 below */
    m->producer_name = xs(ex, opt && opt->producer_name ? opt->producer_name : "graft");
    m->producer_version =
        xs(ex, opt && opt->producer_version ? opt->producer_version : GRAFT_VERSION_STRING);
    m->domain = xs(ex, g->domain);
    if (g->model_version) {
        m->has_model_version = 1;
        m->model_version = g->model_version;
    }
    m->doc_string = xs(ex, g->doc_string);
    /* opset imports: the source's, plus any domain a node uses that is missing */
    m->opset_import = xcalloc(ex, (size_t)g->n_opsets + (size_t)n_live + 1,
                              sizeof *m->opset_import);
    if (!m->opset_import)
        goto oom;
    for (int i = 0; i <= g->n_opsets; i++) {
        if (i == g->n_opsets && opset)
            break;
        Onnx__OperatorSetIdProto *o = xcalloc(ex, 1, sizeof *o);
        if (!o)
            goto oom;
        onnx__operator_set_id_proto__init(o);
        o->has_version = 1;
        if (i < g->n_opsets) {
            o->domain = xs(ex, g->opsets[i].domain ? g->opsets[i].domain : "");
            o->version = g->opsets[i].version;
        } else {
            o->domain = xs(ex, "");
            o->version = 13;
        }
        m->opset_import[m->n_opset_import++] = o;
    }
    for (int32_t i = 0; i < n_live; i++) {
        const char *d = g->nodes[order[i]].domain;
        if (is_default_domain(d))
            continue;
        bool have = false;
        for (size_t k = 0; k < m->n_opset_import && !have; k++)
            have = m->opset_import[k]->domain && strcmp(m->opset_import[k]->domain, d) == 0;
        if (have)
            continue;
        Onnx__OperatorSetIdProto *o = xcalloc(ex, 1, sizeof *o);
        if (!o)
            goto oom;
        onnx__operator_set_id_proto__init(o);
        o->domain = xs(ex, d);
        o->has_version = 1;
        o->version = 1;
        m->opset_import[m->n_opset_import++] = o;
    }
    if (g->n_meta) {
        m->metadata_props = xcalloc(ex, (size_t)g->n_meta, sizeof *m->metadata_props);
        if (!m->metadata_props)
            goto oom;
        for (int i = 0; i < g->n_meta; i++) {
            Onnx__StringStringEntryProto *e = xcalloc(ex, 1, sizeof *e);
            if (!e)
                goto oom;
            onnx__string_string_entry_proto__init(e);
            e->key = xs(ex, g->meta[i].key);
            e->value = xs(ex, g->meta[i].value);
            m->metadata_props[m->n_metadata_props++] = e;
        }
    }
    gp->name = xs(ex, g->graph_name && *g->graph_name ? g->graph_name : "graft");
    gp->doc_string = xs(ex, g->graph_doc_string);

    /* nodes, with unique non-empty names */
    gen_names = xcalloc(ex, (size_t)n_live, sizeof *gen_names);
    if (!gen_names)
        goto oom;
    for (int32_t i = 0; i < n_live; i++) {
        const char *nm = g->nodes[order[i]].name;
        if (nm && *nm && !set_add(&orig, nm))
            goto oom;
    }
    /* what the written graph reads, before any node is written: the
     * inference-form rewrite must know whether anything reads what it drops */
    for (int32_t i = 0; i < n_live; i++) {
        const graft_node *n = &g->nodes[order[i]];
        for (int k = 0; k < inputs_written(n); k++)
            if (n->inputs[k] >= 0)
                ex->referenced[n->inputs[k]] = true;
    }
    for (int32_t k = 0; k < g->n_outputs; k++)
        ex->referenced[g->outputs[k]] = true;
    for (int32_t i = 0; i < n_live; i++) {
        const graft_node *n = &g->nodes[order[i]];
        for (int k = outputs_written(g, n); k < n->n_outputs; k++) {
            if (n->outputs[k] >= 0 && ex->referenced[n->outputs[k]]) {
                st = graft_error_set(ex->err, GRAFT_ERR_UNSUPPORTED,
                                     "%s: BatchNormalization '%s' has training_mode=1 and "
                                     "'%s' reads its running statistics; graft exports "
                                     "inference graphs only",
                                     ex->file, n->name, g->values[n->outputs[k]].name);
                goto done;
            }
        }
    }

    gp->node = xcalloc(ex, (size_t)n_live, sizeof *gp->node);
    if (!gp->node)
        goto oom;
    for (int32_t i = 0; i < n_live; i++) {
        const graft_node *n = &g->nodes[order[i]];
        const char *nm = n->name;
        if (!nm || !*nm || set_has(&used, nm)) {
            char buf[600];
            snprintf(buf, sizeof buf, "%s_%d", n->op_type, (int)i);
            for (int s = 1; set_has(&orig, buf) || set_has(&used, buf); s++)
                snprintf(buf, sizeof buf, "%s_%d_%d", n->op_type, (int)i, s);
            gen_names[i] = xs(ex, buf);
            if (!gen_names[i])
                goto oom;
            nm = gen_names[i];
        }
        if (!set_add(&used, nm))
            goto oom;
        st = node_msg(ex, n, nm, &gp->node[i]);
        gp->n_node = (size_t)i + 1;
        if (st)
            goto done;
    }
    for (int32_t v = 0; v < g->n_values; v++)
        if (g->values[v].kind == GRAFT_VALUE_INITIALIZER && g->values[v].unread_in_source)
            ex->referenced[v] = true;

    /* initializers still in use, in their original order */
    int32_t n_init = 0;
    for (int32_t v = 0; v < g->n_values; v++)
        if (g->values[v].kind == GRAFT_VALUE_INITIALIZER && ex->referenced[v])
            n_init++;
    gp->initializer = xcalloc(ex, (size_t)n_init, sizeof *gp->initializer);
    if (!gp->initializer)
        goto oom;
    for (int32_t v = 0; v < g->n_values; v++) {
        if (g->values[v].kind != GRAFT_VALUE_INITIALIZER || !ex->referenced[v])
            continue;
        st = tensor_msg(ex, &g->values[v], &gp->initializer[gp->n_initializer]);
        if (st)
            goto done;
        gp->n_initializer++;
    }

    /* inputs: the real ones; IR < 4 also lists every initializer */
    bool list_inits = m->ir_version < 4;
    gp->input = xcalloc(ex, (size_t)g->n_inputs + (list_inits ? (size_t)n_init : 0),
                        sizeof *gp->input);
    if (!gp->input)
        goto oom;
    for (int32_t k = 0; k < g->n_inputs; k++) {
        Onnx__ValueInfoProto *vi =
            value_info_msg(ex, &g->values[g->inputs[k]], ex->dynamic_batch);
        if (!vi)
            goto oom;
        gp->input[gp->n_input++] = vi;
    }
    if (list_inits) {
        for (int32_t v = 0; v < g->n_values; v++) {
            if (g->values[v].kind != GRAFT_VALUE_INITIALIZER || !ex->referenced[v])
                continue;
            Onnx__ValueInfoProto *vi = value_info_msg(ex, &g->values[v], false);
            if (!vi)
                goto oom;
            gp->input[gp->n_input++] = vi;
        }
    }
    gp->output = xcalloc(ex, (size_t)g->n_outputs, sizeof *gp->output);
    if (!gp->output)
        goto oom;
    for (int32_t k = 0; k < g->n_outputs; k++) {
        const graft_value *v = &g->values[g->outputs[k]];
        Onnx__ValueInfoProto *vi =
            value_info_msg(ex, v, ex->dynamic_batch && v->kind != GRAFT_VALUE_INITIALIZER);
        if (!vi)
            goto oom;
        gp->output[gp->n_output++] = vi;
    }
    if (ex->oom)
        goto oom;
    goto done;
oom:
    st = graft_error_set(ex->err, GRAFT_ERR_NOMEM, "%s: out of memory building the model",
                         ex->file);
done:
    if (gen_names)
        for (int32_t i = 0; i < n_live; i++)
            free(gen_names[i]);
    free(gen_names);
    free(orig.slots);
    free(used.slots);
    free(order);
    free(ex->referenced);
    ex->referenced = NULL;
    if (st) {
        if (m)
            protobuf_c_message_free_unpacked(&m->base, NULL);
        return st;
    }
    *out = m;
    return GRAFT_OK;
}

graft_onnx_export_options graft_onnx_export_options_default(void)
{
    graft_onnx_export_options o = {.producer_name = NULL, .producer_version = NULL,
                                   .external_threshold = 0, .dynamic_batch = false,
                                   .float32 = false};
    return o;
}

#define PROTOBUF_LIMIT ((size_t)INT32_MAX)

graft_status graft_onnx_export_buffer(const graft_graph *g, const graft_onnx_export_options *opt,
                                      uint8_t **data, size_t *size, graft_error *err)
{
    exporter ex = {.g = g, .file = "<memory>", .err = err};
    Onnx__ModelProto *m = NULL;
    graft_status st = build_model(&ex, opt, &m);
    if (st)
        return st;
    size_t n = protobuf_c_message_get_packed_size(&m->base);
    if (n > PROTOBUF_LIMIT) {
        protobuf_c_message_free_unpacked(&m->base, NULL);
        return graft_error_set(err, GRAFT_ERR_UNSUPPORTED,
                               "model serialises to %zu bytes, over the 2 GiB protobuf limit; "
                               "export to a file with external data",
                               n);
    }
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        protobuf_c_message_free_unpacked(&m->base, NULL);
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory serialising %zu bytes", n);
    }
    protobuf_c_message_pack(&m->base, buf);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    *data = buf;
    *size = n;
    return GRAFT_OK;
}

static Onnx__StringStringEntryProto *entry_msg(const char *k, const char *v)
{
    Onnx__StringStringEntryProto *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    onnx__string_string_entry_proto__init(e);
    e->key = strdup(k);
    e->value = strdup(v);
    if (!e->key || !e->value) {
        protobuf_c_message_free_unpacked(&e->base, NULL);
        return NULL;
    }
    return e;
}

/* Moves every initializer larger than threshold into the data file. */
static graft_status move_external(exporter *ex, Onnx__ModelProto *m, size_t threshold,
                                  graft_atomic_file *df, const char *location, bool *opened,
                                  const char *data_path)
{
    Onnx__GraphProto *gp = m->graph;
    graft_status st;
    for (size_t i = 0; i < gp->n_initializer; i++) {
        Onnx__TensorProto *tp = gp->initializer[i];
        char what[512];
        snprintf(what, sizeof what, "%s: initializer '%s'", ex->file, tp->name ? tp->name : "");
        int64_t nelem;
        size_t nbytes;
        if ((st = graft__tensor_pb_size(tp, what, &nelem, &nbytes, ex->err)))
            return st;
        if (nbytes <= threshold)
            continue;
        if ((st = graft__tensor_pb_make_raw(tp, what, ex->err)))
            return st;
        if (!*opened) {
            if ((st = graft__atomic_open(df, data_path, ex->err)))
                return st;
            *opened = true;
        }
        uint64_t off = df->written;
        if ((st = graft__atomic_write(df, tp->raw_data.data, tp->raw_data.len, ex->err)))
            return st;
        char s_off[32], s_len[32];
        snprintf(s_off, sizeof s_off, "%llu", (unsigned long long)off);
        snprintf(s_len, sizeof s_len, "%zu", tp->raw_data.len);
        free(tp->raw_data.data);
        tp->raw_data.data = NULL;
        tp->raw_data.len = 0;
        tp->has_raw_data = 0;
        for (size_t k = 0; k < tp->n_external_data; k++)
            protobuf_c_message_free_unpacked(&tp->external_data[k]->base, NULL);
        free(tp->external_data);
        tp->n_external_data = 0;
        tp->external_data = calloc(3, sizeof *tp->external_data);
        if (!tp->external_data)
            return graft_error_set(ex->err, GRAFT_ERR_NOMEM, "%s: out of memory", ex->file);
        const char *kv[3][2] = {{"location", location}, {"offset", s_off}, {"length", s_len}};
        for (int k = 0; k < 3; k++) {
            tp->external_data[k] = entry_msg(kv[k][0], kv[k][1]);
            if (!tp->external_data[k])
                return graft_error_set(ex->err, GRAFT_ERR_NOMEM, "%s: out of memory", ex->file);
            tp->n_external_data = (size_t)k + 1;
        }
        tp->has_data_location = 1;
        tp->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    }
    return GRAFT_OK;
}

graft_status graft_onnx_export_file(const graft_graph *g, const char *path,
                                    const graft_onnx_export_options *opt, graft_error *err)
{
    if (!g || !path || !*path)
        return graft_error_set(err, GRAFT_ERR_ARG, "export: no graph or no output path");
    exporter ex = {.g = g, .file = path, .err = err};
    graft_onnx_export_options dflt = graft_onnx_export_options_default();
    if (!opt)
        opt = &dflt;
    Onnx__ModelProto *m = NULL;
    graft_atomic_file mf = {.fd = -1}, df = {.fd = -1};
    bool data_opened = false;
    char *data_path = NULL;
    graft_status st = build_model(&ex, opt, &m);
    if (st)
        return st;
    if (opt->external_threshold > 0) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (!*base) {
            st = graft_error_set(err, GRAFT_ERR_ARG, "%s: output path names a folder", path);
            goto fail;
        }
        size_t n = strlen(path);
        data_path = malloc(n + 6);
        if (!data_path) {
            st = graft_error_set(err, GRAFT_ERR_NOMEM, "%s: out of memory", path);
            goto fail;
        }
        snprintf(data_path, n + 6, "%s.data", path);
        char location[4096];
        snprintf(location, sizeof location, "%s.data", base);
        st = move_external(&ex, m, opt->external_threshold, &df, location, &data_opened,
                           data_path);
        if (st)
            goto fail;
        if (data_opened && (st = graft__atomic_finish(&df, err)))
            goto fail;
    }
    size_t n = protobuf_c_message_get_packed_size(&m->base);
    if (n > PROTOBUF_LIMIT) {
        st = graft_error_set(err, GRAFT_ERR_UNSUPPORTED,
                             "%s: model serialises to %zu bytes, over the 2 GiB protobuf limit; "
                             "set an external data threshold",
                             path, n);
        goto fail;
    }
    if ((st = graft__atomic_open(&mf, path, err)))
        goto fail;
    if ((st = graft__atomic_pack(&mf, &m->base, err)))
        goto fail;
    if ((st = graft__atomic_finish(&mf, err)))
        goto fail;
    if (data_opened && (st = graft__atomic_commit(&df, err)))
        goto fail;
    if ((st = graft__atomic_commit(&mf, err))) {
        if (data_opened)
            unlink(data_path); /* the model that names it never appeared */
        goto fail;
    }
fail:
    graft__atomic_abort(&mf);
    graft__atomic_abort(&df);
    free(data_path);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    return st;
}
