/* graft/surgery.h - cutting the old classifier off, attaching a new head,
 * freezing, and the execution-only rewrites (BN folding, Conv fusion).
 *
 *   graft_feature_info fi;
 *   graft_surgery_find_features(g, &fi, &err);          // or graft_surgery_resolve_cut(g, "name", ...)
 *   graft_head_spec hs = graft_head_spec_default(); hs.n_classes = 5;
 *   graft_head_info hi;
 *   graft_surgery_cut_and_attach(g, fi.value, &hs, &hi, &err);
 *   graft_surgery_freeze(g, &err);                       // backbone frozen, head trainable
 */
#ifndef GRAFT_SURGERY_H
#define GRAFT_SURGERY_H

#include <stdbool.h>
#include <stdint.h>

#include "graft/graph.h"
#include "graft/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct graft_feature_info {
    int32_t value;            /* the feature tensor (input of the old classifier) */
    int32_t classifier_node;  /* the old classifier node (Gemm/MatMul/1x1 Conv), or -1 */
    char reason[256];         /* how it was found, for `graft inspect` */
} graft_feature_info;

/* Finds the input of the final classifier: the last Gemm/MatMul(+Add) or
 * 1x1 Conv before the output (or its Softmax), after global pooling/flatten.
 * Refuses (GRAFT_ERR_NOT_FOUND, message says to use --cut) when the graph
 * does not end in a classifier: several outputs, detection tensors, no
 * dense layer, ... */
graft_status graft_surgery_find_features(const graft_graph *g, graft_feature_info *out,
                                         graft_error *err);
/* --cut NAME: a node name (its first output) or a value name. */
graft_status graft_surgery_resolve_cut(const graft_graph *g, const char *name, int32_t *value,
                                       graft_error *err);

typedef enum graft_init_kind { GRAFT_INIT_HE = 0, GRAFT_INIT_XAVIER } graft_init_kind;

typedef struct graft_head_spec {
    int n_classes;
    int hidden;           /* 0: no hidden layer; else units of Dense+ReLU(+Dropout) */
    float dropout;        /* dropout rate before the last dense layer (and after hidden); 0: none */
    bool no_pool;         /* 4-D features are flattened as they are (no global average pooling) */
    graft_init_kind init; /* He for layers followed by ReLU, Xavier otherwise, by default */
    uint64_t seed;
    /* Names of the new graph output: the softmax probabilities. */
    const char *output_name; /* NULL: "probabilities" */
} graft_head_spec;

graft_head_spec graft_head_spec_default(void);

typedef struct graft_head_info {
    int32_t features;      /* the cut value: input of the head */
    int32_t head_input;    /* flattened [N,F] value the dense layers read */
    int32_t logits;        /* [N,n_classes] before softmax */
    int32_t probabilities; /* softmax output: the graph output */
    int64_t n_features;    /* F */
    int32_t first_head_node;
} graft_head_info;

/* Removes every node that only served the old outputs past the feature
 * value, attaches GlobalAveragePool (4-D features) + Flatten + [Gemm+Relu
 * (+Dropout)] + [Dropout] + Gemm + Softmax, and makes the softmax output the
 * only graph output. Feature width is inferred from the graph (needs the
 * graph inputs' shapes; symbolic batch is fine). */
graft_status graft_surgery_cut_and_attach(graft_graph *g, int32_t features,
                                          const graft_head_spec *spec, graft_head_info *out,
                                          graft_error *err);

/* Marks every initializer that only feeds the backbone (everything before
 * the head) frozen and the head's float parameters trainable, then
 * propagates needs_grad forward. BatchNormalization mean/var are never
 * trainable. Call after cut_and_attach. */
graft_status graft_surgery_freeze(graft_graph *g, const graft_head_info *head, graft_error *err);

/* Execution-only rewrites on a clone used for inference of frozen parts:
 * fold BatchNormalization into the preceding frozen Conv and fuse
 * Conv+Relu/Clip(+Add residual) into com.microsoft FusedConv. Never call it
 * on the graph you export. Returns the number of rewrites in *n_rewrites. */
graft_status graft_passes_optimize_for_inference(graft_graph *g, int *n_rewrites,
                                                 graft_error *err);

#ifdef __cplusplus
}
#endif
#endif
