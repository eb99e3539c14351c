/* onnx/onnx_private.h - helpers shared by the ONNX importer and exporter.
 * The only header outside the generated code that names protobuf-c types;
 * it is never included from outside src/onnx/. */
#ifndef GRAFT_ONNX_PRIVATE_H
#define GRAFT_ONNX_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <onnx/onnx.pb-c.h>

#include "graft/graph.h"
#include "graft/status.h"
#include "graft/tensor.h"

/* ---- files (io.c) ---- */

/* Reads a whole regular file into a malloc'd buffer (one read pass). */
graft_status graft__file_read_all(const char *path, uint8_t **data, size_t *size,
                                  graft_error *err);

/* A file written under a temporary name in its target folder and renamed
 * into place by graft__atomic_commit. */
typedef struct graft_atomic_file {
    int fd;
    char *tmp_path;   /* malloc'd */
    char *final_path; /* malloc'd */
    bool failed;      /* a write failed; errno_saved holds the reason */
    int errno_saved;
    uint64_t written;
} graft_atomic_file;

graft_status graft__atomic_open(graft_atomic_file *f, const char *path, graft_error *err);
graft_status graft__atomic_write(graft_atomic_file *f, const void *data, size_t n,
                                 graft_error *err);
/* fsync + close; the file stays under its temporary name. */
graft_status graft__atomic_finish(graft_atomic_file *f, graft_error *err);
/* rename into place (replacing a symlink entry, never following it). */
graft_status graft__atomic_commit(graft_atomic_file *f, graft_error *err);
/* Closes and unlinks the temporary file; safe after any step, idempotent. */
void graft__atomic_abort(graft_atomic_file *f);

/* Packs a protobuf message straight into an atomic file, without building
 * the whole serialisation in memory. */
graft_status graft__atomic_pack(graft_atomic_file *f, const ProtobufCMessage *msg,
                                graft_error *err);

/* ---- tensors (tensor_pb.c) ---- */

/* Element count and stored byte size of a TensorProto, overflow-checked;
 * what names the tensor in messages ("model.onnx: initializer 'W'"). */
graft_status graft__tensor_pb_size(const Onnx__TensorProto *tp, const char *what, int64_t *nelem,
                                   size_t *nbytes, graft_error *err);

/* Converts a TensorProto to compute form (float32 / int64 / uint8 for bool).
 * ext (may be NULL) holds the bytes of an external tensor, already read and
 * checked to be exactly the stored byte size. adopt (may be NULL) points at
 * the malloc'd buffer holding the raw bytes (&tp->raw_data.data or &ext):
 * float32 data is then taken over without a copy and *adopt set to NULL. */
graft_status graft__tensor_from_pb(const Onnx__TensorProto *tp, const uint8_t *ext, size_t ext_len,
                                   uint8_t **adopt, const char *what, graft_tensor **out,
                                   graft_dtype *source_dtype, graft_error *err);

/* Fills tp (already initialised) with t converted to dtype in raw_data
 * (malloc'd into tp->raw_data.data; free with graft__tensor_pb_free_data).
 * dtype UNDEFINED: t's own dtype. */
graft_status graft__tensor_to_pb(const graft_tensor *t, graft_dtype dtype, Onnx__TensorProto *tp,
                                 const char *what, graft_error *err);
void graft__tensor_pb_free_data(Onnx__TensorProto *tp);

/* Rewrites a typed-field TensorProto into raw_data form in place (the data
 * stays bit-identical). Memory comes from malloc and belongs to the message
 * (freed by protobuf_c_message_free_unpacked with the default allocator). */
graft_status graft__tensor_pb_make_raw(Onnx__TensorProto *tp, const char *what, graft_error *err);

bool graft__dtype_supported(int32_t onnx_type);

/* ---- external data (external_data.c) ---- */

/* Reads the external bytes of tp from a file inside base_dir, refusing every
 * location that could leave the folder. *data is malloc'd, *len the stored
 * byte size. file names the model in messages. */
graft_status graft__external_read(const Onnx__TensorProto *tp, const char *base_dir,
                                  const char *file, uint8_t **data, size_t *len, graft_error *err);

/* Scans a serialized ModelProto for external_data keys or values of graph
 * initializers that contain a NUL byte (protobuf-c would silently cut them).
 * Returns the 0-based initializer ordinal, or -1 when none. */
int64_t graft__wire_find_nul_external(const uint8_t *buf, size_t len);

/* True when graphs or types nest deeper than max_depth (checked on the wire,
 * before protobuf-c's unbounded recursive unpack runs). */
bool graft__wire_too_deep(const uint8_t *buf, size_t len, int max_depth);

#endif
