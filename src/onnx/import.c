/* ONNX ModelProto -> graft graph. The protobuf is unpacked once, everything
 * graft needs is copied into the graph's arena and tensors, and the protobuf
 * is freed before returning. Initializers and attributes also keep their
 * serialized protobuf (source_pb) so that export can write them back
 * unchanged. Every message starts with the file name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/onnx.h"
#include "onnx/onnx_private.h"

#define IR_MIN 3
#define IR_MAX 10
#define OPSET_MIN GRAFT_ONNX_OPSET_MIN
#define OPSET_MAX GRAFT_ONNX_OPSET_MAX
#define MAX_NESTING 100

typedef struct importer {
    const char *file;     /* name in messages */
    const char *base_dir; /* external data folder, or NULL */
    graft_graph *g;
    graft_error *err;
} importer;

static bool is_default_domain(const char *d)
{
    return !d || !*d || strcmp(d, "ai.onnx") == 0;
}

static graft_status nomem(importer *im)
{
    return graft_error_set(im->err, GRAFT_ERR_NOMEM, "%s: out of memory", im->file);
}

/* A graph call failed with its own message: put the file name in front. */
static graft_status prefixed(importer *im, graft_status fallback)
{
    if (!im->err)
        return fallback;
    graft_error_prefix(im->err, "%s", im->file);
    return im->err->status ? im->err->status : fallback;
}

static char *dup_opt(graft_graph *g, const char *s)
{
    return s ? graft_graph_strdup(g, s) : NULL;
}

/* Packs any message into a malloc'd buffer (the verbatim copy for export). */
static graft_status pack_copy(importer *im, const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        return nomem(im);
    size_t w = protobuf_c_message_pack(m, b);
    if (w != n) {
        free(b);
        return graft_error_set(im->err, GRAFT_ERR_INTERNAL, "%s: protobuf re-serialisation failed",
                               im->file);
    }
    *out = b;
    *len = n;
    return GRAFT_OK;
}

static graft_status check_versions(importer *im, const Onnx__ModelProto *m)
{
    if (!m->has_ir_version || m->ir_version == 0)
        return graft_error_set(im->err, GRAFT_ERR_UNSUPPORTED,
                               "%s: ir_version missing (or 0); an ONNX model must state it",
                               im->file);
    if (m->ir_version < IR_MIN || m->ir_version > IR_MAX)
        return graft_error_set(im->err, GRAFT_ERR_UNSUPPORTED,
                               "%s: ir_version %lld not supported (supported %d..%d)", im->file,
                               (long long)m->ir_version, IR_MIN, IR_MAX);
    int found = 0;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        for (size_t j = 0; j < i; j++) {
            const char *a = o->domain, *b = m->opset_import[j]->domain;
            bool same = is_default_domain(a) ? is_default_domain(b)
                                             : (b && strcmp(a, b) == 0);
            if (same)
                return graft_error_set(im->err, GRAFT_ERR_INVALID,
                                       "%s: opset_import lists domain '%s' twice", im->file,
                                       a ? a : "");
        }
        if (!is_default_domain(o->domain))
            continue;
        found = 1;
        int64_t v = o->has_version ? o->version : 0;
        if (v < OPSET_MIN || v > OPSET_MAX)
            return graft_error_set(im->err, GRAFT_ERR_UNSUPPORTED,
                                   "%s: default-domain opset %lld not supported (supported "
                                   "%d..%d)",
                                   im->file, (long long)v, OPSET_MIN, OPSET_MAX);
    }
    if (!found)
        return graft_error_set(im->err, GRAFT_ERR_UNSUPPORTED,
                               "%s: no opset_import for the default ONNX domain", im->file);
    return GRAFT_OK;
}

/* Declared type and shape from a ValueInfoProto. */
/* strict: a graph input or output (an intermediate's hint may be dropped). */
static graft_status apply_type(importer *im, int32_t vi, const Onnx__ValueInfoProto *info,
                               bool strict)
{
    graft_graph *g = im->g;
    graft_value *v = &g->values[vi];
    v->has_value_info = true;
    if (info->doc_string) {
        v->doc_string = graft_graph_strdup(g, info->doc_string);
        if (!v->doc_string)
            return nomem(im);
    }
    if (v->kind == GRAFT_VALUE_INITIALIZER)
        return GRAFT_OK; /* the data is authoritative */
    const Onnx__TypeProto *t = info->type;
    if (t && strict && t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
        t->value_case != ONNX__TYPE_PROTO__VALUE__NOT_SET) {
        /* graft feeds and writes dense tensors only; treating a sequence or
         * optional as one would misread its data and mis-declare it on export */
        const char *kind = t->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE ? "a sequence"
                           : t->value_case == ONNX__TYPE_PROTO__VALUE_MAP_TYPE    ? "a map"
                           : t->value_case == ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE
                               ? "an optional"
                               : "a sparse tensor";
        return graft_error_set(im->err, GRAFT_ERR_UNSUPPORTED,
                               "%s: graph %s '%s' is %s, not a dense tensor; graft handles "
                               "tensor inputs and outputs only",
                               im->file, v->is_graph_output ? "output" : "input", v->name, kind);
    }
    if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type)
        return GRAFT_OK;
    const Onnx__TypeProto__Tensor *tt = t->tensor_type;
    if (tt->has_elem_type)
        v->dtype = (graft_dtype)tt->elem_type;
    if (!tt->shape)
        return GRAFT_OK;
    if (tt->shape->n_dim > GRAFT_MAX_RANK && !strict)
        return GRAFT_OK;
    if (tt->shape->n_dim > GRAFT_MAX_RANK)
        return graft_error_set(im->err, GRAFT_ERR_UNSUPPORTED,
                               "%s: value '%s' has rank %zu (max %d)",
                               im->file, v->name, tt->shape->n_dim, GRAFT_MAX_RANK);
    v->rank = (int)tt->shape->n_dim;
    for (int d = 0; d < v->rank; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
        v->dims[d] = -1;
        v->dim_params[d] = NULL;
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            dim->dim_value >= 0) {
            v->dims[d] = dim->dim_value;
        } else if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                   dim->dim_param && *dim->dim_param) {
            v->dim_params[d] = graft_graph_strdup(g, dim->dim_param);
            if (!v->dim_params[d])
                return nomem(im);
        }
    }
    return GRAFT_OK;
}

static graft_status import_initializer(importer *im, Onnx__TensorProto *tp)
{
    graft_graph *g = im->g;
    const char *name = tp->name ? tp->name : "";
    if (!*name)
        return graft_error_set(im->err, GRAFT_ERR_INVALID, "%s: initializer without a name",
                               im->file);
    if (graft_graph_find_value(g, name) >= 0)
        return graft_error_set(im->err, GRAFT_ERR_INVALID,
                               "%s: initializer '%s' defined twice", im->file, name);
    char what[512];
    snprintf(what, sizeof what, "%s: initializer '%s'", im->file, name);
    bool external = tp->has_data_location &&
                    tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    uint8_t *ext = NULL;
    size_t ext_len = 0;
    graft_tensor *t = NULL;
    graft_dtype sdt = GRAFT_DTYPE_UNDEFINED;
    uint8_t *pb = NULL;
    size_t pb_len = 0;
    graft_status st;
    if (external) {
        st = graft__external_read(tp, im->base_dir, im->file, &ext, &ext_len, im->err);
        if (st)
            return st;
    }
    /* The verbatim copy first: the conversion may take the raw buffer over. */
    if (external) {
        /* Keep the embedded form: the export decides where data goes. */
        Onnx__TensorProto copy = *tp;
        copy.has_data_location = 0;
        copy.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
        copy.n_external_data = 0;
        copy.external_data = NULL;
        copy.has_raw_data = 1;
        copy.raw_data.data = ext;
        copy.raw_data.len = ext_len;
        st = pack_copy(im, &copy.base, &pb, &pb_len);
    } else {
        st = pack_copy(im, &tp->base, &pb, &pb_len);
    }
    if (st)
        goto fail;
    st = graft__tensor_from_pb(tp, ext, ext_len, external ? &ext : &tp->raw_data.data, what, &t,
                               &sdt, im->err);
    if (!external && !tp->raw_data.data)
        tp->raw_data.len = 0, tp->has_raw_data = 0;
    if (st)
        goto fail;
    free(ext);
    ext = NULL;
    int32_t vi = graft_graph_add_value(g, name, im->err);
    if (vi < 0) {
        st = prefixed(im, GRAFT_ERR_NOMEM);
        goto fail;
    }
    graft_value *v = &g->values[vi];
    v->kind = GRAFT_VALUE_INITIALIZER;
    v->dtype = sdt;
    v->source_dtype = sdt;
    v->rank = t->rank;
    memcpy(v->dims, t->dims, sizeof v->dims);
    v->data = t;
    v->source_pb = pb;
    v->source_pb_len = pb_len;
    if (tp->doc_string && !(v->doc_string = graft_graph_strdup(g, tp->doc_string)))
        return nomem(im);
    return GRAFT_OK;
fail:
    free(ext);
    free(pb);
    graft_tensor_destroy(t);
    return st;
}

static graft_attr_type infer_attr_type(const Onnx__AttributeProto *a)
{
    if (a->has_type)
        return (graft_attr_type)a->type;
    /* IR 1 files may omit the type: deduce it from the field that is set. */
    if (a->has_f) return GRAFT_ATTR_FLOAT;
    if (a->has_i) return GRAFT_ATTR_INT;
    if (a->has_s) return GRAFT_ATTR_STRING;
    if (a->t) return GRAFT_ATTR_TENSOR;
    if (a->g) return GRAFT_ATTR_GRAPH;
    if (a->n_floats) return GRAFT_ATTR_FLOATS;
    if (a->n_ints) return GRAFT_ATTR_INTS;
    if (a->n_strings) return GRAFT_ATTR_STRINGS;
    if (a->n_tensors) return GRAFT_ATTR_TENSORS;
    if (a->n_graphs) return GRAFT_ATTR_GRAPHS;
    return GRAFT_ATTR_UNDEFINED;
}

static graft_status import_attr(importer *im, const Onnx__NodeProto *np, const char *label,
                                const Onnx__AttributeProto *a, graft_attr *out)
{
    graft_graph *g = im->g;
    memset(out, 0, sizeof *out);
    out->name = graft_graph_strdup(g, a->name);
    if (!out->name)
        return nomem(im);
    if (!*out->name)
        return graft_error_set(im->err, GRAFT_ERR_INVALID, "%s: %s has an attribute without a name",
                               im->file, label);
    out->type = infer_attr_type(a);
    graft_status st = pack_copy(im, &a->base, &out->source_pb, &out->source_pb_len);
    if (st)
        return st;
    (void)np;
    switch (out->type) {
    case GRAFT_ATTR_FLOAT:
        out->f = a->f;
        break;
    case GRAFT_ATTR_INT:
        out->i = a->i;
        break;
    case GRAFT_ATTR_STRING:
        out->s = graft_graph_strndup(g, (const char *)a->s.data, a->s.len);
        out->s_len = a->s.len;
        if (!out->s)
            return nomem(im);
        break;
    case GRAFT_ATTR_TENSOR: {
        if (!a->t)
            return graft_error_set(im->err, GRAFT_ERR_INVALID,
                                   "%s: %s attribute '%s' has no tensor", im->file, label,
                                   out->name);
        char what[1200];
        snprintf(what, sizeof what, "%s: %s attribute '%s'", im->file, label, out->name);
        if (a->t->has_data_location &&
            a->t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
            return graft_error_set(im->err, GRAFT_ERR_UNSUPPORTED,
                                   "%s: external data in attributes not supported", what);
        graft_dtype sdt;
        st = graft__tensor_from_pb(a->t, NULL, 0, NULL, what, &out->t, &sdt, im->err);
        if (st)
            return st;
        break;
    }
    case GRAFT_ATTR_FLOATS:
        if (a->n_floats > INT32_MAX)
            return graft_error_set(im->err, GRAFT_ERR_INVALID, "%s: attribute too long", im->file);
        out->n = (int)a->n_floats;
        out->floats = graft_graph_alloc(g, a->n_floats * sizeof(float) + 1);
        if (!out->floats)
            return nomem(im);
        if (a->n_floats)
            memcpy(out->floats, a->floats, a->n_floats * sizeof(float));
        break;
    case GRAFT_ATTR_INTS:
        if (a->n_ints > INT32_MAX)
            return graft_error_set(im->err, GRAFT_ERR_INVALID, "%s: attribute too long", im->file);
        out->n = (int)a->n_ints;
        out->ints = graft_graph_alloc(g, a->n_ints * sizeof(int64_t) + 1);
        if (!out->ints)
            return nomem(im);
        if (a->n_ints)
            memcpy(out->ints, a->ints, a->n_ints * sizeof(int64_t));
        break;
    case GRAFT_ATTR_STRINGS:
        if (a->n_strings > INT32_MAX)
            return graft_error_set(im->err, GRAFT_ERR_INVALID, "%s: attribute too long", im->file);
        out->n = (int)a->n_strings;
        out->strings = graft_graph_alloc(g, a->n_strings * sizeof(char *) + 1);
        if (!out->strings)
            return nomem(im);
        for (size_t k = 0; k < a->n_strings; k++) {
            out->strings[k] = graft_graph_strndup(g, (const char *)a->strings[k].data,
                                                  a->strings[k].len);
            if (!out->strings[k])
                return nomem(im);
        }
        break;
    default:
        break; /* GRAPH and the rest: only source_pb */
    }
    return GRAFT_OK;
}

static void node_label(const graft_graph *g, int32_t ni, char *buf, size_t size)
{
    const graft_node *n = &g->nodes[ni];
    if (n->name && *n->name)
        snprintf(buf, size, "%s node '%s'", n->op_type, n->name);
    else
        snprintf(buf, size, "%s node #%d (unnamed)", n->op_type, (int)ni);
}

static graft_status import_node(importer *im, const Onnx__NodeProto *np, size_t index)
{
    graft_graph *g = im->g;
    const char *op_type = np->op_type ? np->op_type : "";
    char label[512];
    if (np->name && *np->name)
        snprintf(label, sizeof label, "%s node '%s'", op_type, np->name);
    else
        snprintf(label, sizeof label, "%s node #%zu (unnamed)", op_type, index);
    if (!*op_type)
        return graft_error_set(im->err, GRAFT_ERR_INVALID, "%s: node #%zu has no op_type",
                               im->file, index);
    if (np->n_input > INT32_MAX / 2 || np->n_output > INT32_MAX / 2)
        return graft_error_set(im->err, GRAFT_ERR_INVALID, "%s: %s has too many inputs/outputs",
                               im->file, label);
    int32_t *ins = malloc((np->n_input + 1) * sizeof *ins);
    int32_t *outs = malloc((np->n_output + 1) * sizeof *outs);
    graft_status st = GRAFT_OK;
    if (!ins || !outs) {
        st = nomem(im);
        goto done;
    }
    for (size_t k = 0; k < np->n_input; k++) {
        const char *nm = np->input[k];
        if (!nm || !*nm) {
            ins[k] = -1;
            continue;
        }
        int32_t v = graft_graph_find_value(g, nm);
        if (v < 0)
            v = graft_graph_add_value(g, nm, im->err); /* defined later, or never */
        if (v < 0) {
            st = nomem(im);
            goto done;
        }
        ins[k] = v;
    }
    for (size_t k = 0; k < np->n_output; k++) {
        const char *nm = np->output[k];
        if (!nm || !*nm) {
            outs[k] = -1;
            continue;
        }
        int32_t v = graft_graph_find_value(g, nm);
        if (v >= 0) {
            const graft_value *val = &g->values[v];
            if (val->kind == GRAFT_VALUE_INPUT || val->kind == GRAFT_VALUE_INITIALIZER) {
                st = graft_error_set(im->err, GRAFT_ERR_INVALID,
                                     "%s: %s output '%s' redefines a graph %s of the same name "
                                     "(every value must be defined once)",
                                     im->file, label, nm,
                                     val->kind == GRAFT_VALUE_INPUT ? "input" : "initializer");
                goto done;
            }
            if (val->producer >= 0) {
                char other[512];
                node_label(g, val->producer, other, sizeof other);
                st = graft_error_set(im->err, GRAFT_ERR_INVALID,
                                     "%s: value '%s' is produced twice, by %s and by %s", im->file,
                                     nm, other, label);
                goto done;
            }
            for (size_t j = 0; j < k; j++) {
                if (outs[j] == v) {
                    st = graft_error_set(im->err, GRAFT_ERR_INVALID,
                                         "%s: %s lists output '%s' twice", im->file, label, nm);
                    goto done;
                }
            }
        } else {
            v = graft_graph_add_value(g, nm, im->err);
            if (v < 0) {
                st = nomem(im);
                goto done;
            }
        }
        outs[k] = v;
    }
    int32_t ni = graft_graph_add_node(g, op_type, np->domain ? np->domain : "",
                                      np->name ? np->name : "", (int)np->n_input, ins,
                                      (int)np->n_output, outs, im->err);
    if (ni < 0) {
        st = prefixed(im, GRAFT_ERR_INVALID);
        goto done;
    }
    graft_node *n = &g->nodes[ni];
    if (np->doc_string && !(n->doc_string = graft_graph_strdup(g, np->doc_string))) {
        st = nomem(im);
        goto done;
    }
    if (np->n_attribute) {
        if (np->n_attribute > INT32_MAX / 2) {
            st = graft_error_set(im->err, GRAFT_ERR_INVALID, "%s: %s has too many attributes",
                                 im->file, label);
            goto done;
        }
        n->attrs = calloc(np->n_attribute, sizeof *n->attrs);
        if (!n->attrs) {
            st = nomem(im);
            goto done;
        }
        for (size_t a = 0; a < np->n_attribute; a++) {
            /* counted before parsing so that destroy frees what was built */
            n->n_attrs = (int)a + 1;
            st = import_attr(im, np, label, np->attribute[a], &n->attrs[a]);
            if (st)
                goto done;
            for (size_t b = 0; b < a; b++)
                if (strcmp(n->attrs[b].name, n->attrs[a].name) == 0) {
                    st = graft_error_set(im->err, GRAFT_ERR_INVALID,
                                         "%s: %s has attribute '%s' twice", im->file, label,
                                         n->attrs[a].name);
                    goto done;
                }
        }
    }
done:
    free(ins);
    free(outs);
    return st;
}

static bool nodes_sorted(const graft_graph *g)
{
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const graft_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            int32_t v = n->inputs[k];
            if (v >= 0 && g->values[v].producer >= i)
                return false;
        }
    }
    return true;
}

static graft_status import_graph(importer *im, const Onnx__ModelProto *m)
{
    graft_graph *g = im->g;
    const Onnx__GraphProto *gp = m->graph;
    graft_status st;
    if (!gp)
        return graft_error_set(im->err, GRAFT_ERR_INVALID, "%s: model has no graph", im->file);
    if (gp->n_sparse_initializer)
        return graft_error_set(im->err, GRAFT_ERR_UNSUPPORTED,
                               "%s: sparse initializers not supported", im->file);
    g->graph_name = dup_opt(g, gp->name);
    g->graph_doc_string = dup_opt(g, gp->doc_string);
    if ((gp->name && !g->graph_name) || (gp->doc_string && !g->graph_doc_string))
        return nomem(im);

    for (size_t i = 0; i < gp->n_initializer; i++)
        if ((st = import_initializer(im, gp->initializer[i])))
            return st;

    g->inputs = malloc((gp->n_input + 1) * sizeof *g->inputs);
    g->outputs = malloc((gp->n_output + 1) * sizeof *g->outputs);
    if (!g->inputs || !g->outputs)
        return nomem(im);
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        const char *nm = vi->name ? vi->name : "";
        if (!*nm)
            return graft_error_set(im->err, GRAFT_ERR_INVALID, "%s: graph input #%zu has no name",
                                   im->file, i);
        int32_t v = graft_graph_find_value(g, nm);
        if (v >= 0 && g->values[v].kind == GRAFT_VALUE_INITIALIZER &&
            !g->values[v].listed_as_input) {
            g->values[v].listed_as_input = true;
        } else if (v >= 0) {
            return graft_error_set(im->err, GRAFT_ERR_INVALID, "%s: graph input '%s' listed twice",
                                   im->file, nm);
        } else {
            v = graft_graph_add_value(g, nm, im->err);
            if (v < 0)
                return nomem(im);
            g->values[v].kind = GRAFT_VALUE_INPUT;
            g->inputs[g->n_inputs++] = v;
        }
        if ((st = apply_type(im, v, vi, true)))
            return st;
    }
    for (size_t i = 0; i < gp->n_node; i++)
        if ((st = import_node(im, gp->node[i], i)))
            return st;
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        const char *nm = vi->name ? vi->name : "";
        if (!*nm)
            return graft_error_set(im->err, GRAFT_ERR_INVALID, "%s: graph output #%zu has no name",
                                   im->file, i);
        int32_t v = graft_graph_find_value(g, nm);
        if (v < 0 && (v = graft_graph_add_value(g, nm, im->err)) < 0)
            return nomem(im);
        if (g->values[v].is_graph_output)
            return graft_error_set(im->err, GRAFT_ERR_INVALID, "%s: graph output '%s' listed twice",
                                   im->file, nm);
        g->values[v].is_graph_output = true;
        g->outputs[g->n_outputs++] = v;
        if ((st = apply_type(im, v, vi, true)))
            return st;
    }
    for (size_t i = 0; i < gp->n_value_info; i++) {
        const Onnx__ValueInfoProto *vi = gp->value_info[i];
        int32_t v = graft_graph_find_value(g, vi->name);
        /* stale entries for values no node uses are dropped */
        if (v >= 0 && !g->values[v].has_value_info && (st = apply_type(im, v, vi, false)))
            return st;
    }
    bool *read = calloc((size_t)g->n_values + 1, sizeof *read);
    if (!read)
        return nomem(im);
    for (int32_t i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] >= 0)
                read[g->nodes[i].inputs[k]] = true;
    for (int32_t v = 0; v < g->n_values; v++)
        g->values[v].unread_in_source =
            g->values[v].kind == GRAFT_VALUE_INITIALIZER && !read[v] && !g->values[v].is_graph_output;
    free(read);
    if (!nodes_sorted(g) && graft_graph_compact(g, im->err) != GRAFT_OK)
        return prefixed(im, GRAFT_ERR_INVALID);
    return GRAFT_OK;
}

static graft_status import_model(importer *im, const Onnx__ModelProto *m)
{
    graft_graph *g = im->g;
    graft_status st = check_versions(im, m);
    if (st)
        return st;
    for (size_t f = 0; f < m->n_functions; f++) {
        const Onnx__FunctionProto *fn = m->functions[f];
        for (size_t i = 0; m->graph && i < m->graph->n_node; i++) {
            const Onnx__NodeProto *np = m->graph->node[i];
            if (fn->name && np->op_type && strcmp(fn->name, np->op_type) == 0 &&
                strcmp(fn->domain ? fn->domain : "", np->domain ? np->domain : "") == 0)
                return graft_error_set(im->err, GRAFT_ERR_UNSUPPORTED,
                                       "%s: node uses model-local function %s:%s, not supported",
                                       im->file, fn->domain ? fn->domain : "", fn->name);
        }
    }
    g->ir_version = m->ir_version;
    g->model_version = m->has_model_version ? m->model_version : 0;
    g->producer_name = dup_opt(g, m->producer_name);
    g->producer_version = dup_opt(g, m->producer_version);
    g->domain = dup_opt(g, m->domain);
    g->doc_string = dup_opt(g, m->doc_string);
    g->opsets = calloc(m->n_opset_import + 1, sizeof *g->opsets);
    if (!g->opsets)
        return nomem(im);
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        g->opsets[i].domain = graft_graph_strdup(g, o->domain ? o->domain : "");
        g->opsets[i].version = o->has_version ? o->version : 1;
        if (!g->opsets[i].domain)
            return nomem(im);
        g->n_opsets++;
    }
    for (size_t i = 0; i < m->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *e = m->metadata_props[i];
        if ((st = graft_graph_meta_set(g, e->key ? e->key : "", e->value ? e->value : "", im->err)))
            return st;
    }
    return import_graph(im, m);
}

/* owned (may be NULL) is the malloc'd buffer holding data: freed as soon as
 * the protobuf is unpacked, so big models are not held twice. */
static graft_status import_mem(const void *data, size_t size, uint8_t *owned, const char *name,
                               const char *base_dir, graft_graph **out, graft_error *err)
{
    const char *file = name && *name ? name : "<memory>";
    if (size == 0) {
        free(owned);
        return graft_error_set(err, GRAFT_ERR_INVALID, "%s: the file is empty, not an ONNX model",
                               file);
    }
    if (graft__wire_too_deep(data, size, MAX_NESTING)) {
        free(owned);
        return graft_error_set(err, GRAFT_ERR_UNSUPPORTED,
                               "%s: subgraphs or types nested more than %d deep", file,
                               MAX_NESTING);
    }
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
    if (!m) {
        free(owned);
        return graft_error_set(err, GRAFT_ERR_PARSE,
                               "%s: not a valid ONNX model (truncated or corrupt protobuf)", file);
    }
    /* protobuf-c cuts strings at a NUL; a location cut that way could name
     * another file than the one the writer meant, so such models are refused. */
    int64_t bad = graft__wire_find_nul_external(data, size);
    free(owned);
    graft_graph *g = NULL;
    graft_status st = graft_graph_create(&g, err);
    if (st)
        goto done;
    importer im = {.file = file, .base_dir = base_dir, .g = g, .err = err};
    g->source_path = graft_graph_strdup(g, file);
    g->source_dir = base_dir ? graft_graph_strdup(g, base_dir) : NULL;
    if (!g->source_path || (base_dir && !g->source_dir)) {
        st = nomem(&im);
        goto done;
    }
    if (bad >= 0) {
        const char *tn = m->graph && (size_t)bad < m->graph->n_initializer &&
                                 m->graph->initializer[bad]->name
                             ? m->graph->initializer[bad]->name
                             : "?";
        st = graft_error_set(err, GRAFT_ERR_INVALID,
                             "%s: initializer '%s': external data location contains a NUL byte",
                             file, tn);
        goto done;
    }
    st = import_model(&im, m);
done:
    protobuf_c_message_free_unpacked(&m->base, NULL);
    if (st) {
        graft_graph_destroy(g);
        return st;
    }
    *out = g;
    return GRAFT_OK;
}

graft_status graft_onnx_import_buffer(const void *data, size_t size, const char *name,
                                      const char *base_dir, const graft_onnx_import_options *opt,
                                      graft_graph **out, graft_error *err)
{
    (void)opt;
    return import_mem(data, size, NULL, name, base_dir, out, err);
}

graft_status graft_onnx_import_file(const char *path, const graft_onnx_import_options *opt,
                                    graft_graph **out, graft_error *err)
{
    if (!path)
        return graft_error_set(err, GRAFT_ERR_ARG, "no model path given");
    uint8_t *buf = NULL;
    size_t len = 0;
    graft_status st = graft__file_read_all(path, &buf, &len, err);
    if (st)
        return st;
    char *dir = NULL;
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = 0;
        }
    } else {
        dir = malloc(2);
        if (dir)
            strcpy(dir, ".");
    }
    if (!dir) {
        free(buf);
        return graft_error_set(err, GRAFT_ERR_NOMEM, "%s: out of memory", path);
    }
    (void)opt;
    st = import_mem(buf, len, buf, path, dir, out, err);
    free(dir);
    return st;
}
