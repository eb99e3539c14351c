/* graft/onnx.h - ONNX files in and out. The only module that sees protobuf.
 *
 *   graft_graph *g = NULL;
 *   if (graft_onnx_import_file("resnet18.onnx", NULL, &g, &err)) { ...err.msg... }
 *   graft_onnx_export_options eo = graft_onnx_export_options_default();
 *   graft_onnx_export_file(g, "out.onnx", &eo, &err);   // temp file + rename
 *   graft_graph_destroy(g);
 *
 * Import accepts IR versions 3-10 and default-domain opsets 7-21 (other
 * versions are refused with a message), initializers in raw_data, typed
 * fields and external data files (locations confined to the model's folder),
 * initializers also listed as inputs, Constant nodes, unsorted node lists,
 * and ops graft cannot run (kept verbatim for export). Every message names
 * the file.
 */
#ifndef GRAFT_ONNX_H
#define GRAFT_ONNX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graft/graph.h"
#include "graft/status.h"
#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The default-domain opset versions the importer accepts. Each op states the
 * oldest version whose form it handles (graft inspect --ops); a node older
 * than that is reported as unsupported when a plan is built. */
#define GRAFT_ONNX_OPSET_MIN 1
#define GRAFT_ONNX_OPSET_MAX 21

typedef struct graft_onnx_import_options {
    /* Accept a model whose structure is broken in ways graft can repair
     * (none yet); reserved. */
    bool lenient;
} graft_onnx_import_options;

/* opt may be NULL (defaults). On failure *out is untouched. */
graft_status graft_onnx_import_file(const char *path, const graft_onnx_import_options *opt,
                                    graft_graph **out, graft_error *err);
/* From memory; base_dir resolves external data (NULL: external data refused);
 * name is used in messages. */
graft_status graft_onnx_import_buffer(const void *data, size_t size, const char *name,
                                      const char *base_dir, const graft_onnx_import_options *opt,
                                      graft_graph **out, graft_error *err);

typedef struct graft_onnx_export_options {
    const char *producer_name;    /* NULL: "graft" */
    const char *producer_version; /* NULL: the library version */
    /* Initializers larger than this many bytes go to one external data file
     * "<output file name>.data" beside the model; 0: everything embedded. */
    size_t external_threshold;
    /* Write dimension 0 of the graph inputs and outputs as the symbol "batch"
     * (or the source's own symbol) even where the source fixed it, e.g. a
     * trace at batch 1. Off: the declared shapes are kept as they are. */
    bool dynamic_batch;
    /* Write the whole model in float32: float16, bfloat16 and double
     * initializers, tensor attributes, graph input/output types and Cast/
     * generator target types become float32 (the values graft computed with).
     * Off: frozen weights keep their stored type and bytes. Refused for
     * graphs with subgraphs (If/Loop/Scan bodies are not converted). */
    bool float32;
} graft_onnx_export_options;

graft_onnx_export_options graft_onnx_export_options_default(void);

/* Writes the live graph as a standard ONNX model: frozen initializers that
 * came from a file are written byte-identical, ir_version is kept (raised
 * only if an opset needs it), metadata and doc strings kept, nodes get unique
 * non-empty names. The model is an inference graph: BatchNormalization with
 * training_mode=1 is written in inference form (its running-statistics
 * outputs dropped; refused if something reads them) and Dropout without its
 * training_mode input, as graft runs them. Initializers that no node read in
 * the source are kept; those whose readers were removed are dropped. Writes
 * to a temporary file in the same folder and renames it into place; on
 * failure nothing is left behind. */
graft_status graft_onnx_export_file(const graft_graph *g, const char *path,
                                    const graft_onnx_export_options *opt, graft_error *err);
/* Serialises to a malloc'd buffer (caller frees with free()). External data not allowed. */
graft_status graft_onnx_export_buffer(const graft_graph *g, const graft_onnx_export_options *opt,
                                      uint8_t **data, size_t *size, graft_error *err);

/* A serialized onnx.TensorProto file (ONNX test-data input_N.pb/output_N.pb).
 * read: the tensor in compute form (float32 for floating types, int64 for
 * integers, uint8 for bool) with *source_dtype (may be NULL) the stored type;
 * the name (may be NULL) is copied into name_buf when given. */
graft_status graft_onnx_read_tensor_file(const char *path, graft_tensor **out,
                                         graft_dtype *source_dtype, char *name_buf,
                                         size_t name_size, graft_error *err);
/* write: stores t as dtype (converting float32 to FLOAT16 etc. when asked;
 * GRAFT_DTYPE_UNDEFINED: t's own dtype) under name; temp file + rename. */
graft_status graft_onnx_write_tensor_file(const char *path, const graft_tensor *t,
                                          graft_dtype dtype, const char *name, graft_error *err);

#ifdef __cplusplus
}
#endif
#endif
