/* onnx.TensorProto <-> graft_tensor, and the test-data .pb files.
 *
 * Import converts every stored layout (raw_data little-endian, or the typed
 * field the ONNX spec assigns to the element type: fp16/bf16/bool/8- and
 * 16-bit integers in the low bits of int32_data) into compute form: float32
 * for floating types, int64 for integers, uint8 0/1 for bool. Sizes are
 * checked before anything is allocated, with overflow-safe arithmetic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/onnx.h"
#include "onnx/onnx_private.h"

bool graft__dtype_supported(int32_t t)
{
    switch (t) {
    case GRAFT_FLOAT: case GRAFT_UINT8: case GRAFT_INT8: case GRAFT_UINT16: case GRAFT_INT16:
    case GRAFT_INT32: case GRAFT_INT64: case GRAFT_BOOL: case GRAFT_FLOAT16: case GRAFT_DOUBLE:
    case GRAFT_UINT32: case GRAFT_UINT64: case GRAFT_BFLOAT16:
        return true;
    default:
        return false;
    }
}

static graft_dtype compute_dtype(graft_dtype dt)
{
    if (graft_dtype_is_float(dt))
        return GRAFT_FLOAT;
    if (dt == GRAFT_BOOL)
        return GRAFT_UINT8;
    return GRAFT_INT64;
}

graft_status graft__tensor_pb_size(const Onnx__TensorProto *tp, const char *what, int64_t *nelem,
                                   size_t *nbytes, graft_error *err)
{
    int32_t dt = tp->has_data_type ? tp->data_type : 0;
    if (!graft__dtype_supported(dt))
        return graft_error_set(err, GRAFT_ERR_UNSUPPORTED, "%s: element type %s (%d) not supported",
                               what, graft_dtype_name((graft_dtype)dt), (int)dt);
    if (tp->n_dims > GRAFT_MAX_RANK)
        return graft_error_set(err, GRAFT_ERR_UNSUPPORTED, "%s: rank %zu exceeds %d", what,
                               tp->n_dims, GRAFT_MAX_RANK);
    uint64_t n = 1;
    bool overflow = false;
    for (size_t i = 0; i < tp->n_dims; i++) {
        int64_t d = tp->dims[i];
        if (d < 0)
            return graft_error_set(err, GRAFT_ERR_INVALID, "%s: negative dimension %lld", what,
                                   (long long)d);
        if (d != 0 && n > (uint64_t)INT64_MAX / (uint64_t)d)
            overflow = true;
        else
            n *= (uint64_t)d;
    }
    size_t es = graft_dtype_size((graft_dtype)dt);
    /* A zero dim makes the product 0 even after an overflowing prefix. */
    for (size_t i = 0; i < tp->n_dims; i++)
        if (tp->dims[i] == 0)
            overflow = false, n = 0;
    if (overflow || n > (uint64_t)(SIZE_MAX / 4) / es)
        return graft_error_set(err, GRAFT_ERR_INVALID,
                               "%s: dimensions overflow (element count or byte size too large)",
                               what);
    *nelem = (int64_t)n;
    *nbytes = (size_t)n * es;
    return GRAFT_OK;
}

/* Reads element i of little-endian raw bytes of type dt as double / int64. */
static double raw_as_double(graft_dtype dt, const uint8_t *p, int64_t i)
{
    switch (dt) {
    case GRAFT_FLOAT: { float v; memcpy(&v, p + 4 * i, 4); return v; }
    case GRAFT_DOUBLE: { double v; memcpy(&v, p + 8 * i, 8); return v; }
    case GRAFT_FLOAT16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return graft_fp16_to_f32(v); }
    case GRAFT_BFLOAT16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return graft_bf16_to_f32(v); }
    default: return 0;
    }
}

static int64_t raw_as_int(graft_dtype dt, const uint8_t *p, int64_t i)
{
    switch (dt) {
    case GRAFT_UINT8: case GRAFT_BOOL: return p[i];
    case GRAFT_INT8: return (int8_t)p[i];
    case GRAFT_UINT16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case GRAFT_INT16: { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case GRAFT_INT32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case GRAFT_UINT32: { uint32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case GRAFT_INT64: { int64_t v; memcpy(&v, p + 8 * i, 8); return v; }
    case GRAFT_UINT64: { uint64_t v; memcpy(&v, p + 8 * i, 8); return (int64_t)v; }
    default: return 0;
    }
}

/* Converts the low bits of an int32_data entry of type dt. */
static double i32_as_double(graft_dtype dt, int32_t v)
{
    uint16_t h = (uint16_t)((uint32_t)v & 0xffffu);
    return dt == GRAFT_FLOAT16 ? graft_fp16_to_f32(h) : graft_bf16_to_f32(h);
}

static int64_t i32_as_int(graft_dtype dt, int32_t v)
{
    switch (dt) {
    case GRAFT_UINT8: return (uint8_t)v;
    case GRAFT_INT8: return (int8_t)v;
    case GRAFT_UINT16: return (uint16_t)v;
    case GRAFT_INT16: return (int16_t)v;
    case GRAFT_BOOL: return v != 0;
    default: return v;
    }
}

/* Which typed field the spec assigns to each element type. */
enum { F_NONE, F_FLOAT, F_INT32, F_INT64, F_DOUBLE, F_UINT64 };

static int typed_field(graft_dtype dt)
{
    switch (dt) {
    case GRAFT_FLOAT: return F_FLOAT;
    case GRAFT_INT64: return F_INT64;
    case GRAFT_DOUBLE: return F_DOUBLE;
    case GRAFT_UINT32: case GRAFT_UINT64: return F_UINT64;
    default: return F_INT32;
    }
}

graft_status graft__tensor_from_pb(const Onnx__TensorProto *tp, const uint8_t *ext, size_t ext_len,
                                   uint8_t **adopt, const char *what, graft_tensor **out,
                                   graft_dtype *source_dtype, graft_error *err)
{
    int64_t nelem = 0;
    size_t nbytes = 0;
    graft_status st = graft__tensor_pb_size(tp, what, &nelem, &nbytes, err);
    if (st)
        return st;
    graft_dtype dt = (graft_dtype)tp->data_type;
    bool external = tp->has_data_location &&
                    tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    int n_fields = (tp->has_raw_data ? 1 : 0) + (tp->n_float_data > 0) + (tp->n_int32_data > 0) +
                   (tp->n_int64_data > 0) + (tp->n_double_data > 0) + (tp->n_uint64_data > 0) +
                   (tp->n_string_data > 0) + (external ? 1 : 0);
    if (n_fields > 1)
        return graft_error_set(err, GRAFT_ERR_INVALID,
                               "%s: data stored in more than one field (raw_data, typed data or "
                               "external data); exactly one is allowed",
                               what);
    if (tp->segment)
        return graft_error_set(err, GRAFT_ERR_UNSUPPORTED, "%s: segmented tensors not supported",
                               what);
    const uint8_t *raw = NULL;
    if (external) {
        if (!ext || ext_len != nbytes)
            return graft_error_set(err, GRAFT_ERR_INTERNAL, "%s: external data not loaded", what);
        raw = ext;
    } else if (tp->has_raw_data) {
        if (tp->raw_data.len != nbytes)
            return graft_error_set(err, GRAFT_ERR_INVALID,
                                   "%s: raw_data holds %zu bytes but dims need %zu (%lld x %s)",
                                   what, tp->raw_data.len, nbytes, (long long)nelem,
                                   graft_dtype_name(dt));
        raw = tp->raw_data.data;
    } else if (n_fields == 1) {
        int want = typed_field(dt);
        size_t have = 0;
        const char *fname = "";
        int got = F_NONE;
        if (tp->n_float_data) got = F_FLOAT, have = tp->n_float_data, fname = "float_data";
        if (tp->n_int32_data) got = F_INT32, have = tp->n_int32_data, fname = "int32_data";
        if (tp->n_int64_data) got = F_INT64, have = tp->n_int64_data, fname = "int64_data";
        if (tp->n_double_data) got = F_DOUBLE, have = tp->n_double_data, fname = "double_data";
        if (tp->n_uint64_data) got = F_UINT64, have = tp->n_uint64_data, fname = "uint64_data";
        if (tp->n_string_data) fname = "string_data";
        if (got != want)
            return graft_error_set(err, GRAFT_ERR_INVALID, "%s: %s tensor stored in %s", what,
                                   graft_dtype_name(dt), fname);
        if ((uint64_t)have != (uint64_t)nelem)
            return graft_error_set(err, GRAFT_ERR_INVALID,
                                   "%s: %s holds %zu values but dims need %lld", what, fname,
                                   have, (long long)nelem);
    } else if (nelem != 0) {
        return graft_error_set(err, GRAFT_ERR_INVALID, "%s: no data for %lld elements", what,
                               (long long)nelem);
    }

    graft_dtype cdt = compute_dtype(dt);
    int64_t dims[GRAFT_MAX_RANK];
    for (size_t i = 0; i < tp->n_dims; i++)
        dims[i] = tp->dims[i];
    graft_tensor *t = NULL;
    if (raw && dt == GRAFT_FLOAT && nelem > 0 && adopt && *adopt == raw) {
        /* big float32 weights: take the buffer over instead of copying it */
        st = graft_tensor_attach(cdt, (int)tp->n_dims, dims, *adopt, &t, err);
        if (st)
            return graft_error_prefix(err, "%s", what), st;
        t->owned = true;
        *adopt = NULL;
        *out = t;
        if (source_dtype)
            *source_dtype = dt;
        return GRAFT_OK;
    }
    st = graft_tensor_create(cdt, (int)tp->n_dims, dims, &t, err);
    if (st)
        return graft_error_prefix(err, "%s", what), st;
    if (nelem > 0) {
        if (cdt == GRAFT_FLOAT) {
            float *y = t->data;
            if (raw && dt == GRAFT_FLOAT)
                memcpy(y, raw, nbytes);
            else if (raw)
                for (int64_t i = 0; i < nelem; i++)
                    y[i] = (float)raw_as_double(dt, raw, i);
            else if (dt == GRAFT_FLOAT)
                memcpy(y, tp->float_data, nbytes);
            else if (dt == GRAFT_DOUBLE)
                for (int64_t i = 0; i < nelem; i++)
                    y[i] = (float)tp->double_data[i];
            else
                for (int64_t i = 0; i < nelem; i++)
                    y[i] = (float)i32_as_double(dt, tp->int32_data[i]);
        } else {
            /* int64 compute form, or uint8 0/1 for bool */
            for (int64_t i = 0; i < nelem; i++) {
                int64_t v;
                if (raw)
                    v = raw_as_int(dt, raw, i);
                else if (dt == GRAFT_INT64)
                    v = tp->int64_data[i];
                else if (dt == GRAFT_UINT32 || dt == GRAFT_UINT64)
                    v = (int64_t)tp->uint64_data[i];
                else
                    v = i32_as_int(dt, tp->int32_data[i]);
                if (cdt == GRAFT_UINT8)
                    ((uint8_t *)t->data)[i] = v != 0;
                else
                    ((int64_t *)t->data)[i] = v;
            }
        }
    }
    *out = t;
    if (source_dtype)
        *source_dtype = dt;
    return GRAFT_OK;
}

static double elem_as_double(const graft_tensor *t, int64_t i)
{
    const void *x = t->data;
    switch (t->dtype) {
    case GRAFT_FLOAT: return ((const float *)x)[i];
    case GRAFT_DOUBLE: return ((const double *)x)[i];
    case GRAFT_FLOAT16: return graft_fp16_to_f32(((const uint16_t *)x)[i]);
    case GRAFT_BFLOAT16: return graft_bf16_to_f32(((const uint16_t *)x)[i]);
    default: return (double)raw_as_int(t->dtype, x, i);
    }
}

static int64_t elem_as_int(const graft_tensor *t, int64_t i)
{
    if (graft_dtype_is_float(t->dtype)) {
        double v = elem_as_double(t, i);
        /* saturate instead of undefined behaviour on out-of-range casts */
        if (!(v == v))
            return 0;
        if (v >= 9.2233720368547758e18)
            return INT64_MAX;
        if (v <= -9.2233720368547758e18)
            return INT64_MIN;
        return (int64_t)v;
    }
    return raw_as_int(t->dtype, t->data, i);
}

graft_status graft__tensor_to_pb(const graft_tensor *t, graft_dtype dtype, Onnx__TensorProto *tp,
                                 const char *what, graft_error *err)
{
    if (dtype == GRAFT_DTYPE_UNDEFINED)
        dtype = t->dtype;
    if (!graft__dtype_supported(dtype))
        return graft_error_set(err, GRAFT_ERR_UNSUPPORTED, "%s: cannot store element type %s",
                               what, graft_dtype_name(dtype));
    int64_t nelem = graft_tensor_nelem(t);
    size_t es = graft_dtype_size(dtype);
    if (nelem < 0 || (uint64_t)nelem > SIZE_MAX / 8 || (nelem > 0 && !t->data))
        return graft_error_set(err, GRAFT_ERR_INVALID, "%s: tensor has no data or a bad shape",
                               what);
    size_t nbytes = (size_t)nelem * es;
    uint8_t *buf = malloc(nbytes ? nbytes : 1);
    int64_t *dims = malloc(sizeof(int64_t) * (size_t)(t->rank ? t->rank : 1));
    if (!buf || !dims) {
        free(buf);
        free(dims);
        return graft_error_set(err, GRAFT_ERR_NOMEM, "%s: out of memory", what);
    }
    if (dtype == t->dtype) {
        if (nbytes)
            memcpy(buf, t->data, nbytes);
    } else {
        for (int64_t i = 0; i < nelem; i++) {
            uint8_t *p = buf + (size_t)i * es;
            switch (dtype) {
            case GRAFT_FLOAT: { float v = (float)elem_as_double(t, i); memcpy(p, &v, 4); break; }
            case GRAFT_DOUBLE: { double v = elem_as_double(t, i); memcpy(p, &v, 8); break; }
            case GRAFT_FLOAT16: {
                uint16_t v = graft_f32_to_fp16((float)elem_as_double(t, i));
                memcpy(p, &v, 2);
                break;
            }
            case GRAFT_BFLOAT16: {
                uint16_t v = graft_f32_to_bf16((float)elem_as_double(t, i));
                memcpy(p, &v, 2);
                break;
            }
            case GRAFT_BOOL: *p = elem_as_int(t, i) != 0; break;
            default: {
                /* integers: two's complement truncation, little-endian */
                uint64_t v = (uint64_t)elem_as_int(t, i);
                for (size_t b = 0; b < es; b++)
                    p[b] = (uint8_t)(v >> (8 * b));
                break;
            }
            }
        }
    }
    for (int d = 0; d < t->rank; d++)
        dims[d] = t->dims[d];
    tp->n_dims = (size_t)t->rank;
    tp->dims = dims;
    tp->has_data_type = 1;
    tp->data_type = (int32_t)dtype;
    tp->has_raw_data = 1;
    tp->raw_data.data = buf;
    tp->raw_data.len = nbytes;
    return GRAFT_OK;
}

void graft__tensor_pb_free_data(Onnx__TensorProto *tp)
{
    free(tp->raw_data.data);
    free(tp->dims);
    tp->raw_data.data = NULL;
    tp->dims = NULL;
}

graft_status graft__tensor_pb_make_raw(Onnx__TensorProto *tp, const char *what, graft_error *err)
{
    int64_t nelem = 0;
    size_t nbytes = 0;
    graft_status st = graft__tensor_pb_size(tp, what, &nelem, &nbytes, err);
    if (st)
        return st;
    if (tp->has_raw_data)
        return GRAFT_OK;
    graft_dtype dt = (graft_dtype)tp->data_type;
    uint8_t *buf = malloc(nbytes ? nbytes : 1);
    if (!buf)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "%s: out of memory", what);
    size_t es = graft_dtype_size(dt);
    int f = typed_field(dt);
    size_t have = f == F_FLOAT ? tp->n_float_data : f == F_INT32 ? tp->n_int32_data
                  : f == F_INT64 ? tp->n_int64_data : f == F_DOUBLE ? tp->n_double_data
                  : tp->n_uint64_data;
    if ((uint64_t)have != (uint64_t)nelem) {
        free(buf);
        return graft_error_set(err, GRAFT_ERR_INVALID,
                               "%s: typed data holds %zu values, dims need %lld",
                               what, have, (long long)nelem);
    }
    for (int64_t i = 0; i < nelem; i++) {
        uint8_t *p = buf + (size_t)i * es;
        uint64_t bits = 0;
        switch (f) {
        case F_FLOAT: memcpy(p, &tp->float_data[i], 4); continue;
        case F_DOUBLE: memcpy(p, &tp->double_data[i], 8); continue;
        case F_INT64: bits = (uint64_t)tp->int64_data[i]; break;
        case F_UINT64: bits = tp->uint64_data[i]; break;
        default: bits = (uint32_t)tp->int32_data[i]; break;
        }
        for (size_t b = 0; b < es; b++)
            p[b] = (uint8_t)(bits >> (8 * b));
    }
    free(tp->float_data), tp->float_data = NULL, tp->n_float_data = 0;
    free(tp->int32_data), tp->int32_data = NULL, tp->n_int32_data = 0;
    free(tp->int64_data), tp->int64_data = NULL, tp->n_int64_data = 0;
    free(tp->double_data), tp->double_data = NULL, tp->n_double_data = 0;
    free(tp->uint64_data), tp->uint64_data = NULL, tp->n_uint64_data = 0;
    tp->has_raw_data = 1;
    tp->raw_data.data = buf;
    tp->raw_data.len = nbytes;
    return GRAFT_OK;
}

/* ---- test-data files ---- */

graft_status graft_onnx_read_tensor_file(const char *path, graft_tensor **out,
                                         graft_dtype *source_dtype, char *name_buf,
                                         size_t name_size, graft_error *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    graft_status st = graft__file_read_all(path, &buf, &len, err);
    if (st)
        return st;
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (!tp)
        return graft_error_set(err, GRAFT_ERR_PARSE,
                               "%s: not a valid ONNX TensorProto (truncated or corrupt protobuf)",
                               path);
    char what[512];
    snprintf(what, sizeof what, "%s: tensor '%s'", path, tp->name ? tp->name : "");
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        st = graft_error_set(err, GRAFT_ERR_UNSUPPORTED, "%s: external data not supported here",
                             what);
    } else {
        st = graft__tensor_from_pb(tp, NULL, 0, &tp->raw_data.data, what, out, source_dtype, err);
        if (!tp->raw_data.data)
            tp->raw_data.len = 0, tp->has_raw_data = 0;
    }
    if (!st && name_buf && name_size)
        snprintf(name_buf, name_size, "%s", tp->name ? tp->name : "");
    protobuf_c_message_free_unpacked(&tp->base, NULL);
    return st;
}

graft_status graft_onnx_write_tensor_file(const char *path, const graft_tensor *t,
                                          graft_dtype dtype, const char *name, graft_error *err)
{
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    char what[512];
    snprintf(what, sizeof what, "%s: tensor '%s'", path, name ? name : "");
    /* protobuf messages end at 2 GB: refuse before writing, not after */
    int64_t n = graft_tensor_nelem(t);
    size_t es = graft_dtype_size(dtype ? dtype : t->dtype);
    if (n < 0 || (es && (uint64_t)n > ((uint64_t)INT32_MAX - 4096) / es))
        return graft_error_set(err, GRAFT_ERR_UNSUPPORTED,
                               "%s: %lld elements do not fit a TensorProto file (2 GB at most)",
                               what, (long long)n);
    graft_status st = graft__tensor_to_pb(t, dtype, &tp, what, err);
    if (st)
        return st;
    tp.name = (char *)(name ? name : "");
    graft_atomic_file f;
    st = graft__atomic_open(&f, path, err);
    if (!st)
        st = graft__atomic_pack(&f, &tp.base, err);
    if (!st)
        st = graft__atomic_finish(&f, err);
    if (!st)
        st = graft__atomic_commit(&f, err);
    graft__atomic_abort(&f);
    graft__tensor_pb_free_data(&tp);
    return st;
}
