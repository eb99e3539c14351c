#include "graft/tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/gemm.h"

size_t graft_dtype_size(graft_dtype dt)
{
    switch (dt) {
    case GRAFT_FLOAT: case GRAFT_INT32: case GRAFT_UINT32: return 4;
    case GRAFT_UINT8: case GRAFT_INT8: case GRAFT_BOOL: return 1;
    case GRAFT_UINT16: case GRAFT_INT16: case GRAFT_FLOAT16: case GRAFT_BFLOAT16: return 2;
    case GRAFT_INT64: case GRAFT_DOUBLE: case GRAFT_UINT64: return 8;
    default: return 0;
    }
}

const char *graft_dtype_name(graft_dtype dt)
{
    switch (dt) {
    case GRAFT_FLOAT: return "float32";
    case GRAFT_UINT8: return "uint8";
    case GRAFT_INT8: return "int8";
    case GRAFT_UINT16: return "uint16";
    case GRAFT_INT16: return "int16";
    case GRAFT_INT32: return "int32";
    case GRAFT_INT64: return "int64";
    case GRAFT_STRING: return "string";
    case GRAFT_BOOL: return "bool";
    case GRAFT_FLOAT16: return "float16";
    case GRAFT_DOUBLE: return "float64";
    case GRAFT_UINT32: return "uint32";
    case GRAFT_UINT64: return "uint64";
    case GRAFT_BFLOAT16: return "bfloat16";
    default: return "unknown";
    }
}

bool graft_dtype_is_float(graft_dtype dt)
{
    return dt == GRAFT_FLOAT || dt == GRAFT_FLOAT16 || dt == GRAFT_BFLOAT16 || dt == GRAFT_DOUBLE;
}

float graft_fp16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400u)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ffu;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t graft_f32_to_fp16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (absx < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        float a;
        memcpy(&a, &absx, 4);
        /* scale so that the half subnormal unit (2^-24) becomes 1, round to even */
        float r = nearbyintf(a * 16777216.0f);
        return (uint16_t)(sign | (uint32_t)r);
    }
    uint32_t mant_odd = (absx >> 13) & 1u;
    absx += 0xc8000fffu + mant_odd; /* rebias exponent (-112 << 23) and round to even */
    return (uint16_t)(sign | (absx >> 13));
}

float graft_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t graft_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

int64_t graft_shape_nelem(int rank, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return -1;
        if (dims[i] != 0 && n > INT64_MAX / dims[i])
            return -1;
        n *= dims[i];
    }
    return n;
}

int64_t graft_tensor_nelem(const graft_tensor *t)
{
    return graft_shape_nelem(t->rank, t->dims);
}

static graft_status check_shape(graft_dtype dt, int rank, const int64_t *dims, size_t *nbytes,
                                graft_error *err)
{
    if (rank < 0 || rank > GRAFT_MAX_RANK)
        return graft_error_set(err, GRAFT_ERR_UNSUPPORTED, "tensor rank %d exceeds %d", rank,
                               GRAFT_MAX_RANK);
    size_t es = graft_dtype_size(dt);
    if (es == 0)
        return graft_error_set(err, GRAFT_ERR_UNSUPPORTED, "element type %s (%d) not supported",
                               graft_dtype_name(dt), (int)dt);
    int64_t n = graft_shape_nelem(rank, dims);
    if (n < 0 || (uint64_t)n > SIZE_MAX / es)
        return graft_error_set(err, GRAFT_ERR_SHAPE, "tensor shape is negative or too large");
    *nbytes = (size_t)n * es;
    return GRAFT_OK;
}

graft_status graft_tensor_create(graft_dtype dt, int rank, const int64_t *dims, graft_tensor **out,
                                 graft_error *err)
{
    size_t nbytes = 0;
    graft_status st = check_shape(dt, rank, dims, &nbytes, err);
    if (st)
        return st;
    graft_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory allocating a tensor");
    t->data = calloc(nbytes + GRAFT_BLAS_SLACK, 1);
    if (!t->data) {
        free(t);
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory allocating %zu bytes", nbytes);
    }
    t->dtype = dt;
    t->rank = rank;
    if (rank)
        memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->nbytes = nbytes;
    t->owned = true;
    *out = t;
    return GRAFT_OK;
}

graft_status graft_tensor_attach(graft_dtype dt, int rank, const int64_t *dims, void *data,
                                 graft_tensor **out, graft_error *err)
{
    size_t nbytes = 0;
    graft_status st = check_shape(dt, rank, dims, &nbytes, err);
    if (st)
        return st;
    graft_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory allocating a tensor");
    t->dtype = dt;
    t->rank = rank;
    if (rank)
        memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->data = data;
    t->nbytes = nbytes;
    t->owned = false;
    *out = t;
    return GRAFT_OK;
}

graft_status graft_tensor_clone(const graft_tensor *src, graft_tensor **out, graft_error *err)
{
    graft_status st = graft_tensor_create(src->dtype, src->rank, src->dims, out, err);
    if (st)
        return st;
    if ((*out)->nbytes && src->data)
        memcpy((*out)->data, src->data, (*out)->nbytes);
    return GRAFT_OK;
}

graft_status graft_tensor_to_f32(const graft_tensor *src, graft_tensor **out, graft_error *err)
{
    graft_tensor *t = NULL;
    graft_status st = graft_tensor_create(GRAFT_FLOAT, src->rank, src->dims, &t, err);
    if (st)
        return st;
    int64_t n = graft_tensor_nelem(src);
    float *y = t->data;
    const void *x = src->data;
    for (int64_t i = 0; i < n; i++) {
        switch (src->dtype) {
        case GRAFT_FLOAT: y[i] = ((const float *)x)[i]; break;
        case GRAFT_FLOAT16: y[i] = graft_fp16_to_f32(((const uint16_t *)x)[i]); break;
        case GRAFT_BFLOAT16: y[i] = graft_bf16_to_f32(((const uint16_t *)x)[i]); break;
        case GRAFT_DOUBLE: y[i] = (float)((const double *)x)[i]; break;
        case GRAFT_INT64: y[i] = (float)((const int64_t *)x)[i]; break;
        case GRAFT_INT32: y[i] = (float)((const int32_t *)x)[i]; break;
        case GRAFT_UINT32: y[i] = (float)((const uint32_t *)x)[i]; break;
        case GRAFT_UINT64: y[i] = (float)((const uint64_t *)x)[i]; break;
        case GRAFT_INT16: y[i] = (float)((const int16_t *)x)[i]; break;
        case GRAFT_UINT16: y[i] = (float)((const uint16_t *)x)[i]; break;
        case GRAFT_INT8: y[i] = (float)((const int8_t *)x)[i]; break;
        case GRAFT_UINT8: case GRAFT_BOOL: y[i] = (float)((const uint8_t *)x)[i]; break;
        default:
            graft_tensor_destroy(t);
            return graft_error_set(err, GRAFT_ERR_UNSUPPORTED, "cannot convert %s to float32",
                                   graft_dtype_name(src->dtype));
        }
    }
    *out = t;
    return GRAFT_OK;
}

void graft_tensor_destroy(graft_tensor *t)
{
    if (!t)
        return;
    if (t->owned)
        free(t->data);
    free(t);
}

graft_status graft_tensor_reshape(graft_tensor *t, graft_dtype dt, int rank, const int64_t *dims,
                                  graft_error *err)
{
    size_t nbytes = 0;
    graft_status st = check_shape(dt, rank, dims, &nbytes, err);
    if (st)
        return st;
    if (nbytes > t->nbytes || !t->data) {
        if (!t->owned && t->data)
            return graft_error_set(err, GRAFT_ERR_SHAPE, "attached tensor too small for reshape");
        void *p = realloc(t->owned ? t->data : NULL, nbytes ? nbytes : 1);
        if (!p)
            return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory growing a tensor to %zu bytes",
                                   nbytes);
        t->data = p;
        t->nbytes = nbytes;
        t->owned = true;
    }
    t->dtype = dt;
    t->rank = rank;
    if (rank)
        memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    return GRAFT_OK;
}

char *graft_shape_format(int rank, const int64_t *dims, char *buf, size_t size)
{
    size_t used = 0;
    if (size == 0)
        return buf;
    buf[0] = 0;
    used += (size_t)snprintf(buf + used, size - used, "[");
    for (int i = 0; i < rank && used < size; i++) {
        if (dims[i] < 0)
            used += (size_t)snprintf(buf + used, size - used, "%s?", i ? "," : "");
        else
            used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? "," : "",
                                     (long long)dims[i]);
    }
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

int64_t graft_int_wrap(graft_dtype dt, int64_t v)
{
    switch (dt) {
    case GRAFT_INT8: return (int8_t)(uint8_t)(uint64_t)v;
    case GRAFT_UINT8: return (uint8_t)(uint64_t)v;
    case GRAFT_INT16: return (int16_t)(uint16_t)(uint64_t)v;
    case GRAFT_UINT16: return (uint16_t)(uint64_t)v;
    case GRAFT_INT32: return (int32_t)(uint32_t)(uint64_t)v;
    case GRAFT_UINT32: return (uint32_t)(uint64_t)v;
    default: return v;
    }
}
