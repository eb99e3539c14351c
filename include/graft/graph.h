/* graft/graph.h - graft's own graph IR: values (edges) and nodes, kept apart,
 * referring to each other by index.
 *
 *   graft_graph *g = NULL;
 *   graft_graph_create(&g, &err);
 *   int32_t x = graft_graph_add_value(g, "X", &err);          // a value is an edge
 *   g->values[x].kind = GRAFT_VALUE_INPUT;
 *   int32_t y = graft_graph_add_value(g, "Y", &err);
 *   int32_t n = graft_graph_add_node(g, "Relu", "", "relu0", 1, &x, 1, &y, &err);
 *   ...
 *   graft_graph_destroy(g);
 *
 * The graph owns every node, value, name, attribute and initializer tensor.
 * Pointers into values[] and nodes[] stay valid only until the next add call
 * (the arrays grow); hold indices across calls.
 */
#ifndef GRAFT_GRAPH_H
#define GRAFT_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graft/status.h"
#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum graft_value_kind {
    GRAFT_VALUE_ACTIVATION = 0, /* produced by a node */
    GRAFT_VALUE_INPUT,          /* a real graph input, fed by the caller */
    GRAFT_VALUE_INITIALIZER,    /* constant data in the file (may also be listed as input) */
} graft_value_kind;

typedef struct graft_value {
    char *name;
    graft_value_kind kind;
    /* Declared element type and shape; dims[i] == -1 is unknown or symbolic,
     * in which case dim_params[i] holds the symbol name (or NULL). rank == -1:
     * rank unknown. */
    graft_dtype dtype;
    int rank;
    int64_t dims[GRAFT_MAX_RANK];
    char *dim_params[GRAFT_MAX_RANK];
    char *doc_string;
    int32_t producer;     /* node index, -1 for inputs and initializers */
    bool is_graph_output; /* listed in graph.output */
    bool listed_as_input; /* initializer also listed in graph.input (IR < 4 style) */
    /* Initializer that no node of the source file read (PyTorch's
     * num_batches_tracked): the export keeps it, so round trips lose nothing,
     * while one whose readers surgery removed or rewired is dropped. */
    bool unread_in_source;
    bool has_value_info;  /* declared in graph.input/output/value_info */
    /* Freeze pass: trainable parameters, and values whose gradient is needed
     * because a trainable parameter flows into them. */
    bool trainable;
    bool needs_grad;
    /* Initializer (or folded Constant) data in compute form: float32 for
     * every floating type, int64 for every integer type, uint8 for bool. */
    graft_tensor *data;
    /* The initializer exactly as the source file stored it: a serialized
     * onnx.TensorProto, re-emitted verbatim on export while the parameter is
     * frozen so that backbone weights stay byte-identical. NULL for new or
     * trained parameters. */
    uint8_t *source_pb;
    size_t source_pb_len;
    graft_dtype source_dtype; /* element type in the file (FLOAT16 for fp16 weights) */
} graft_value;

typedef enum graft_attr_type {
    GRAFT_ATTR_UNDEFINED = 0,
    GRAFT_ATTR_FLOAT = 1,
    GRAFT_ATTR_INT = 2,
    GRAFT_ATTR_STRING = 3,
    GRAFT_ATTR_TENSOR = 4,
    GRAFT_ATTR_GRAPH = 5,
    GRAFT_ATTR_FLOATS = 6,
    GRAFT_ATTR_INTS = 7,
    GRAFT_ATTR_STRINGS = 8,
    GRAFT_ATTR_TENSORS = 9,
    GRAFT_ATTR_GRAPHS = 10,
    GRAFT_ATTR_SPARSE_TENSOR = 11,
    GRAFT_ATTR_SPARSE_TENSORS = 12,
    GRAFT_ATTR_TYPE_PROTOS = 13,
    GRAFT_ATTR_TYPE_PROTO = 14,
} graft_attr_type; /* ONNX AttributeProto.AttributeType numbers */

typedef struct graft_attr {
    char *name;
    graft_attr_type type;
    float f;
    int64_t i;
    char *s; /* STRING: bytes, s_len long, NUL-terminated for convenience */
    size_t s_len;
    int n;   /* element count for FLOATS / INTS / STRINGS */
    float *floats;
    int64_t *ints;
    char **strings;
    graft_tensor *t; /* TENSOR, in compute form */
    /* The attribute exactly as the source file stored it (serialized
     * onnx.AttributeProto), re-emitted verbatim on export; NULL for
     * attributes graft created. GRAPH and other types graft does not
     * interpret are only available this way. */
    uint8_t *source_pb;
    size_t source_pb_len;
} graft_attr;

typedef struct graft_node {
    char *name; /* may be "" in the source; the exporter writes unique names */
    char *op_type;
    char *domain; /* "" for the default ONNX domain */
    char *doc_string;
    int opset;    /* opset version of the node's domain, from opset_import */
    int op;       /* index into the op table, -1 if graft cannot run it */
    int n_inputs;
    int32_t *inputs; /* value indices; -1 for an omitted optional input ("") */
    int n_outputs;
    int32_t *outputs; /* value indices; -1 for an omitted optional output */
    int n_attrs;
    graft_attr *attrs;
    bool removed; /* deleted by a pass; skipped everywhere, dropped on compaction */
} graft_node;

typedef struct graft_opset {
    char *domain;
    int64_t version;
} graft_opset;

typedef struct graft_meta {
    char *key;
    char *value;
} graft_meta;

typedef struct graft_graph {
    int32_t n_values, cap_values;
    graft_value *values;
    int32_t n_nodes, cap_nodes;
    graft_node *nodes;
    /* graph.input order (real inputs only, initializers excluded) and graph.output order */
    int32_t n_inputs;
    int32_t *inputs;
    int32_t n_outputs;
    int32_t *outputs;
    /* model-level fields, kept for export */
    int64_t ir_version;
    int n_opsets;
    graft_opset *opsets;
    char *producer_name, *producer_version, *domain, *doc_string;
    int64_t model_version;
    char *graph_name, *graph_doc_string;
    int n_meta;
    graft_meta *meta;
    char *source_path; /* file the graph came from, or NULL; used in messages */
    char *source_dir;  /* its directory, for external data; or NULL */
    struct graft_arena *arena;
} graft_graph;

graft_status graft_graph_create(graft_graph **out, graft_error *err);
void graft_graph_destroy(graft_graph *g);
/* Deep copy: same value and node indices. */
graft_status graft_graph_clone(const graft_graph *g, graft_graph **out, graft_error *err);

/* Memory owned by the graph, freed with it. */
void *graft_graph_alloc(graft_graph *g, size_t nbytes);          /* zeroed; NULL on OOM */
char *graft_graph_strdup(graft_graph *g, const char *s);        /* NULL in -> "" */
char *graft_graph_strndup(graft_graph *g, const char *s, size_t n);

/* Adds a value named name (must be new); returns its index or -1 (err set). */
int32_t graft_graph_add_value(graft_graph *g, const char *name, graft_error *err);
/* A fresh value whose name starts with prefix and is unused in the graph. */
int32_t graft_graph_add_unique_value(graft_graph *g, const char *prefix, graft_error *err);
/* Index of the value named name, or -1. */
int32_t graft_graph_find_value(const graft_graph *g, const char *name);
/* Index of the (non-removed) node named name, or -1. */
int32_t graft_graph_find_node(const graft_graph *g, const char *name);

/* Adds a node; sets producer of each output (which must not have one).
 * Resolves node->op from the op table. Returns the node index or -1. */
int32_t graft_graph_add_node(graft_graph *g, const char *op_type, const char *domain,
                             const char *name, int n_inputs, const int32_t *inputs, int n_outputs,
                             const int32_t *outputs, graft_error *err);
/* Attributes for new nodes (copied into the graph). */
graft_status graft_node_set_int(graft_graph *g, int32_t node, const char *name, int64_t v,
                                graft_error *err);
graft_status graft_node_set_float(graft_graph *g, int32_t node, const char *name, float v,
                                  graft_error *err);
graft_status graft_node_set_ints(graft_graph *g, int32_t node, const char *name, int n,
                                 const int64_t *v, graft_error *err);
graft_status graft_node_set_string(graft_graph *g, int32_t node, const char *name, const char *v,
                                   graft_error *err);

/* Attribute lookup; NULL when absent. */
const graft_attr *graft_node_attr(const graft_node *n, const char *name);
int64_t graft_node_attr_int(const graft_node *n, const char *name, int64_t dflt);
float graft_node_attr_float(const graft_node *n, const char *name, float dflt);
const char *graft_node_attr_string(const graft_node *n, const char *name, const char *dflt);
/* INTS attribute: returns the count (or -1 if absent) and sets *v (borrowed). */
int graft_node_attr_ints(const graft_node *n, const char *name, const int64_t **v);

/* Opset version imported for domain ("" and "ai.onnx" are the same), or 0. */
int64_t graft_graph_opset(const graft_graph *g, const char *domain);

/* Sets the initializer data of value v (takes ownership of t). */
void graft_value_set_data(graft_graph *g, int32_t v, graft_tensor *t);

/* Topological order of the live nodes: writes n_live indices into order
 * (caller-allocated, n_nodes long) and returns the count, or -1 with err set
 * on a cycle or a value with two producers. */
int32_t graft_graph_topo_order(const graft_graph *g, int32_t *order, graft_error *err);

/* Re-sorts nodes[] topologically and drops removed nodes (renumbering node
 * indices and producers; value indices are unchanged). */
graft_status graft_graph_compact(graft_graph *g, graft_error *err);

/* Checks structure: every input of a live node is produced, an input, or an
 * initializer; one producer per value; graph outputs produced. */
graft_status graft_graph_verify(const graft_graph *g, graft_error *err);

/* Metadata: get (NULL if absent) and set (replaces). */
const char *graft_graph_meta_get(const graft_graph *g, const char *key);
graft_status graft_graph_meta_set(graft_graph *g, const char *key, const char *value,
                                  graft_error *err);

/* n is stored in training form: BatchNormalization with training_mode=1, or
 * Dropout with a training_mode input that is not a constant false. */
bool graft_node_training_form(const graft_graph *g, const graft_node *n);

/* Number of float parameters: initializers and Constant-node tensors (all),
 * or only the trainable initializers. */
int64_t graft_graph_param_count(const graft_graph *g, bool trainable_only);

#ifdef __cplusplus
}
#endif
#endif
