/* ops/logic.c - comparisons, boolean logic, Where, IsNaN/IsInf, Mod, BitShift.
 *
 *   Equal, Greater, Less, GreaterOrEqual, LessOrEqual   y = a op b   (bool)
 *   And, Or, Xor (bool), Not (bool)
 *   Where  y = c ? x : z   dx += sum_bcast(c dy)   dz += sum_bcast(!c dy)
 *   IsNaN, IsInf (detect_negative / detect_positive)   float -> bool
 *   Mod    fmod=1: y = x - z trunc(x / z) (C fmod / %), float or integer;
 *          fmod=0: integers only, y takes the sign of the divisor (Python %);
 *          float: dx += sum_bcast(dy)   dz -= sum_bcast(trunc(x / z) dy)
 *   BitShift  y = x << z or x >> z on unsigned integers
 * All binary forms broadcast numpy-style (Where three ways). Where (exported
 * attention masks put it on trainable paths) and float Mod have gradients;
 * the others give bools or integers, which carry none.
 *
 * Integers compute as int64. An ONNX uint64 above INT64_MAX arrives as its
 * two's-complement bit pattern, and the graph value keeps the declared type,
 * so BitShift works on the bits (exact for every unsigned width: a left
 * shift is truncated to the declared width) and Mod on a uint64 input
 * divides unsigned. Integer division by zero gives 0 instead of trapping.
 * Bool is uint8 0/1 (lu_is_bool). */
#include <math.h>
#include <stdlib.h>

#include "ops/light_util.h"

/* ---- broadcast plan for two or three operands ------------------------------- */

typedef struct bplan {
    int rank, nop; /* rank >= 1 after merging */
    int64_t dims[GRAFT_MAX_RANK];
    int64_t st[3][GRAFT_MAX_RANK]; /* element strides, 0 = broadcast */
    int64_t n;
} bplan;

static void operand_strides(int r, const int64_t *out, const graft_tensor *t, int64_t *s)
{
    int64_t st = 1;
    for (int i = r - 1; i >= 0; i--) {
        int ti = i - (r - t->rank);
        int64_t d = ti >= 0 ? t->dims[ti] : 1;
        s[i] = ti < 0 || (d == 1 && out[i] != 1) ? 0 : st;
        st *= d;
    }
}

/* Size-1 output dims dropped, and adjacent dims merged while every operand
 * stays contiguous across them: same-shape and scalar cases become one row. */
static void bplan_make(bplan *p, const graft_tensor *y, int nop, const graft_tensor *const *ops)
{
    int64_t s[3][GRAFT_MAX_RANK];
    int r = y->rank;
    for (int k = 0; k < nop; k++)
        operand_strides(r, y->dims, ops[k], s[k]);
    p->nop = nop;
    p->rank = 0;
    p->n = 1;
    for (int i = 0; i < r; i++) {
        p->n *= y->dims[i];
        if (y->dims[i] == 1)
            continue;
        int j = p->rank;
        bool merge = j > 0;
        for (int k = 0; merge && k < nop; k++)
            merge = p->st[k][j - 1] == s[k][i] * y->dims[i];
        if (merge) {
            p->dims[j - 1] *= y->dims[i];
            for (int k = 0; k < nop; k++)
                p->st[k][j - 1] = s[k][i];
            continue;
        }
        p->dims[j] = y->dims[i];
        for (int k = 0; k < nop; k++)
            p->st[k][j] = s[k][i];
        p->rank++;
    }
    if (p->rank == 0) {
        p->rank = 1;
        p->dims[0] = 1;
        for (int k = 0; k < nop; k++)
            p->st[k][0] = 0;
    }
}

/* Operand offsets at the start of inner row `row`. */
static inline void bplan_row(const bplan *p, int64_t row, int64_t *off)
{
    for (int k = 0; k < p->nop; k++)
        off[k] = 0;
    for (int i = p->rank - 2; i >= 0 && row; i--) {
        int64_t q = row / p->dims[i], d = row - q * p->dims[i];
        for (int k = 0; k < p->nop; k++)
            off[k] += d * p->st[k][i];
        row = q;
    }
}

static graft_status broadcast_fail(graft_op_call *c, int r, const int64_t *a, const graft_tensor *b)
{
    char s1[128], s2[128];
    return graft__op_fail(c, GRAFT_ERR_SHAPE, "shapes %s and %s do not broadcast",
                          graft_shape_format(r, a, s1, sizeof s1),
                          graft_shape_format(b->rank, b->dims, s2, sizeof s2));
}

/* Broadcast shape of inputs [0, n) into *r / dims. */
static graft_status broadcast_all(graft_op_call *c, int n, int *r, int64_t *dims)
{
    *r = c->in[0]->rank;
    memcpy(dims, c->in[0]->dims, sizeof c->in[0]->dims);
    for (int i = 1; i < n; i++) {
        int64_t tmp[GRAFT_MAX_RANK];
        int rt = 0;
        if (graft__broadcast_shape(*r, dims, c->in[i]->rank, c->in[i]->dims, &rt, tmp))
            return broadcast_fail(c, *r, dims, c->in[i]);
        *r = rt;
        memcpy(dims, tmp, sizeof tmp);
    }
    return GRAFT_OK;
}

/* float, int64 or bool: the three compute classes. */
static int dtype_class(graft_dtype dt)
{
    return dt == GRAFT_FLOAT ? 0 : dt == GRAFT_INT64 ? 1 : lu_is_bool(dt) ? 2 : -1;
}

/* The declared ONNX element type of a node input or output, when the model
 * states it (GRAFT_DTYPE_UNDEFINED otherwise). */
static graft_dtype declared(const graft_graph *g, int32_t v)
{
    return v >= 0 && v < g->n_values ? g->values[v].dtype : GRAFT_DTYPE_UNDEFINED;
}

/* ---- binary kernels ------------------------------------------------------------ */

typedef void (*bin_fn)(const void *a, int64_t sa, const void *b, int64_t sb, void *y, int64_t n);

/* Inner strides are 0 or 1: four plain loops, each one vectorisable. */
#define BIN_KERNEL(name, T, U, EXPR)                                                          \
    static void name(const void *va, int64_t sa, const void *vb, int64_t sb, void *vy,      \
                     int64_t n)                                                               \
    {                                                                                         \
        const T *a = va, *b = vb;                                                             \
        U *y = vy;                                                                            \
        if (sa && sb) {                                                                       \
            for (int64_t i = 0; i < n; i++) {                                                 \
                T x = a[i], z = b[i];                                                         \
                y[i] = (U)(EXPR);                                                             \
            }                                                                                 \
        } else if (sa) {                                                                      \
            T z = b[0];                                                                       \
            for (int64_t i = 0; i < n; i++) {                                                 \
                T x = a[i];                                                                   \
                y[i] = (U)(EXPR);                                                             \
            }                                                                                 \
        } else if (sb) {                                                                      \
            T x = a[0];                                                                       \
            for (int64_t i = 0; i < n; i++) {                                                 \
                T z = b[i];                                                                   \
                y[i] = (U)(EXPR);                                                             \
            }                                                                                 \
        } else {                                                                              \
            T x = a[0], z = b[0];                                                             \
            U v = (U)(EXPR);                                                                  \
            for (int64_t i = 0; i < n; i++)                                                   \
                y[i] = v;                                                                     \
        }                                                                                     \
    }

#define CMP_KERNELS(sfx, T)                                                                   \
    BIN_KERNEL(eq_##sfx, T, uint8_t, x == z)                                                  \
    BIN_KERNEL(gt_##sfx, T, uint8_t, x > z)                                                   \
    BIN_KERNEL(lt_##sfx, T, uint8_t, x < z)                                                   \
    BIN_KERNEL(ge_##sfx, T, uint8_t, x >= z)                                                  \
    BIN_KERNEL(le_##sfx, T, uint8_t, x <= z)
CMP_KERNELS(f32, float)
CMP_KERNELS(i64, int64_t)
CMP_KERNELS(u8, uint8_t)
#undef CMP_KERNELS

BIN_KERNEL(and_u8, uint8_t, uint8_t, (x != 0) & (z != 0))
BIN_KERNEL(or_u8, uint8_t, uint8_t, (x != 0) | (z != 0))
BIN_KERNEL(xor_u8, uint8_t, uint8_t, (x != 0) ^ (z != 0))

/* Python's %: the remainder takes the divisor's sign. z == -1 is special-cased
 * since INT64_MIN % -1 traps. */
static inline int64_t mod_floor(int64_t x, int64_t z)
{
    if (z == 0 || z == -1)
        return 0;
    int64_t r = x % z;
    return r != 0 && ((r < 0) != (z < 0)) ? r + z : r;
}

static inline int64_t mod_trunc(int64_t x, int64_t z)
{
    return z == 0 || z == -1 ? 0 : x % z;
}

static inline int64_t mod_unsigned(int64_t x, int64_t z)
{
    return z == 0 ? 0 : (int64_t)((uint64_t)x % (uint64_t)z);
}

BIN_KERNEL(mod_floor_i64, int64_t, int64_t, mod_floor(x, z))
BIN_KERNEL(mod_trunc_i64, int64_t, int64_t, mod_trunc(x, z))
BIN_KERNEL(mod_u64, int64_t, int64_t, mod_unsigned(x, z))
BIN_KERNEL(mod_f32, float, float, fmodf(x, z))

/* Shifts of the bit pattern as uint64; a shift by the width or more gives 0
 * (C leaves it undefined). Left shifts keep the declared width's bits. */
#define SHL(W) ((uint64_t)z >= (W) ? 0 : (int64_t)(((uint64_t)x << (uint64_t)z) & MASK(W)))
#define MASK(W) ((W) == 64 ? ~(uint64_t)0 : (((uint64_t)1 << ((W) & 63)) - 1))
BIN_KERNEL(shl8, int64_t, int64_t, SHL(8))
BIN_KERNEL(shl16, int64_t, int64_t, SHL(16))
BIN_KERNEL(shl32, int64_t, int64_t, SHL(32))
BIN_KERNEL(shl64, int64_t, int64_t, SHL(64))
BIN_KERNEL(shr, int64_t, int64_t, (uint64_t)z >= 64 ? 0 : (int64_t)((uint64_t)x >> (uint64_t)z))
#undef SHL
#undef MASK

/* y = fn(a, b) over the broadcast plan (input and output element sizes may differ). */
static void bin_run(const graft_op_call *c, bin_fn fn, const graft_tensor *ta,
                    const graft_tensor *tb, graft_tensor *ty)
{
    const graft_tensor *ops[2] = {ta, tb};
    bplan p;
    bplan_make(&p, ty, 2, ops);
    if (p.n == 0)
        return;
    size_t ei = graft_dtype_size(ta->dtype), eo = graft_dtype_size(ty->dtype);
    const char *a = ta->data, *b = tb->data;
    char *y = ty->data;
    int64_t inner = p.dims[p.rank - 1], rows = p.n / inner;
    int64_t sa = p.st[0][p.rank - 1], sb = p.st[1][p.rank - 1];
    int nt = lu_threads(c, p.n);
    if (rows == 1) {
        int64_t chunk = ((inner + nt - 1) / nt + 63) & ~(int64_t)63;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
        for (int64_t s = 0; s < inner; s += chunk) {
            int64_t len = inner - s < chunk ? inner - s : chunk;
            fn(a + (size_t)(s * sa) * ei, sa, b + (size_t)(s * sb) * ei, sb, y + (size_t)s * eo,
               len);
        }
        return;
    }
    if (nt > rows)
        nt = (int)rows;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t row = 0; row < rows; row++) {
        int64_t off[3];
        bplan_row(&p, row, off);
        fn(a + (size_t)off[0] * ei, sa, b + (size_t)off[1] * ei, sb,
           y + (size_t)(row * inner) * eo, inner);
    }
}

/* ---- binary ops ---------------------------------------------------------------- */

enum bin_kind {
    K_EQ, K_GT, K_LT, K_GE, K_LE, /* comparisons: the order of the kernel tables */
    K_AND, K_OR, K_XOR, K_MOD, K_SHIFT,
};

typedef struct bin_params {
    int kind;
    bool fmod;     /* Mod */
    bool unsig;    /* Mod: a declared uint64 input divides unsigned */
    bool left;     /* BitShift */
    int width;     /* BitShift: declared bits (64 when the model does not say) */
} bin_params;

static const bin_fn cmp_tab[3][5] = {
    {eq_f32, gt_f32, lt_f32, ge_f32, le_f32},
    {eq_i64, gt_i64, lt_i64, ge_i64, le_i64},
    {eq_u8, gt_u8, lt_u8, ge_u8, le_u8},
};

static int bin_kind_of(const char *t)
{
    static const char *const names[] = {"Equal", "Greater", "Less", "GreaterOrEqual",
                                        "LessOrEqual", "And", "Or", "Xor", "Mod", "BitShift"};
    for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
        if (!strcmp(t, names[i]))
            return i;
    return -1;
}

static int unsigned_bits(graft_dtype dt)
{
    switch (dt) {
    case GRAFT_UINT8: return 8;
    case GRAFT_UINT16: return 16;
    case GRAFT_UINT32: return 32;
    case GRAFT_UINT64: return 64;
    default: return 0;
    }
}

static graft_status bin_parse(const graft_graph *g, const graft_node *n, void *params,
                              graft_error *err)
{
    bin_params *p = params;
    memset(p, 0, sizeof *p);
    p->kind = bin_kind_of(n->op_type);
    if (p->kind < 0)
        return lu_node_fail(err, n, GRAFT_ERR_INTERNAL, "not a logic op");
    graft_status st = lu_check_inputs(err, n, 2, 2);
    if (st)
        return st;
    /* opset < 7 broadcast=1 with an axis aligns b at that axis: not numpy */
    if (n->opset > 0 && n->opset < 7 && graft_node_attr_int(n, "broadcast", 0) &&
        graft_node_attr(n, "axis"))
        return lu_node_fail(err, n, GRAFT_ERR_UNSUPPORTED,
                            "legacy broadcast with an axis attribute (opset %d) is not supported",
                            n->opset);
    if (p->kind == K_MOD) {
        int64_t f = graft_node_attr_int(n, "fmod", 0);
        if (f != 0 && f != 1)
            return lu_node_fail(err, n, GRAFT_ERR_INVALID, "fmod must be 0 or 1, got %lld",
                                (long long)f);
        p->fmod = f == 1;
        p->unsig = declared(g, n->inputs[0]) == GRAFT_UINT64 ||
                   declared(g, n->inputs[1]) == GRAFT_UINT64;
    }
    if (p->kind == K_SHIFT) {
        const char *d = graft_node_attr_string(n, "direction", NULL);
        if (!d || (strcmp(d, "LEFT") && strcmp(d, "RIGHT")))
            return lu_node_fail(err, n, GRAFT_ERR_INVALID,
                                "direction must be \"LEFT\" or \"RIGHT\", got %s%s%s",
                                d ? "\"" : "", d ? d : "none", d ? "\"" : "");
        p->left = !strcmp(d, "LEFT");
        p->width = 64;
        int32_t vs[3] = {n->inputs[0], n->inputs[1], n->outputs[0]};
        for (int i = 0; i < 3; i++) {
            graft_dtype dt = declared(g, vs[i]);
            if (dt == GRAFT_DTYPE_UNDEFINED)
                continue;
            if (!unsigned_bits(dt))
                return lu_node_fail(err, n, GRAFT_ERR_INVALID,
                                    "BitShift takes unsigned integers, not %s",
                                    graft_dtype_name(dt));
            p->width = unsigned_bits(dt);
            break;
        }
    }
    return GRAFT_OK;
}

static graft_status bin_infer(graft_op_call *c)
{
    const bin_params *p = c->params;
    const graft_tensor *a = c->in[0], *b = c->in[1];
    int ca = dtype_class(a->dtype), cb = dtype_class(b->dtype);
    if (ca < 0 || cb < 0)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "element type %s is not supported",
                              graft_dtype_name(ca < 0 ? a->dtype : b->dtype));
    if (ca != cb)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "input types differ: %s and %s",
                              graft_dtype_name(a->dtype), graft_dtype_name(b->dtype));
    graft_dtype out = GRAFT_UINT8;
    switch (p->kind) {
    case K_AND: case K_OR: case K_XOR:
        if (ca != 2)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "inputs must be bool, not %s",
                                  graft_dtype_name(a->dtype));
        break;
    case K_MOD:
        if (ca == 2)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "Mod takes numbers, not bool");
        if (ca == 0 && !p->fmod)
            return graft__op_fail(c, GRAFT_ERR_INVALID,
                                  "Mod on floating-point inputs requires fmod=1");
        out = a->dtype;
        break;
    case K_SHIFT:
        if (ca != 1)
            return graft__op_fail(c, GRAFT_ERR_INVALID,
                                  "BitShift takes unsigned integers, not %s",
                                  graft_dtype_name(a->dtype));
        out = a->dtype;
        break;
    default: break;
    }
    int r = 0;
    int64_t dims[GRAFT_MAX_RANK];
    graft_status st = broadcast_all(c, 2, &r, dims);
    if (st)
        return st;
    lu_set_shape(c->out[0], out, r, dims);
    return GRAFT_OK;
}

static bin_fn bin_kernel(const bin_params *p, const graft_tensor *a)
{
    switch (p->kind) {
    case K_AND: return and_u8;
    case K_OR: return or_u8;
    case K_XOR: return xor_u8;
    case K_MOD:
        if (a->dtype == GRAFT_FLOAT)
            return mod_f32;
        return p->unsig ? mod_u64 : p->fmod ? mod_trunc_i64 : mod_floor_i64;
    case K_SHIFT:
        if (!p->left)
            return shr;
        return p->width == 8 ? shl8 : p->width == 16 ? shl16 : p->width == 32 ? shl32 : shl64;
    default: return cmp_tab[dtype_class(a->dtype)][p->kind];
    }
}

static graft_status bin_forward(graft_op_call *c)
{
    bin_run(c, bin_kernel(c->params, c->in[0]), c->in[0], c->in[1], c->out[0]);
    return GRAFT_OK;
}

/* Float Mod: y = x - z q with q = trunc(x / z) constant almost everywhere, so
 * dx += dy and dz -= q dy, summed over broadcast dims. q is recovered from y
 * as round((x - y) / z), exact where x / z itself would round across an
 * integer. z == 0 (y NaN) passes no gradient to z. */
static graft_status mod_backward(graft_op_call *c)
{
    const graft_tensor *tdy = c->d_out[0];
    graft_tensor *tdx = c->d_in[0], *tdz = c->d_in[1];
    if (!tdy || (!tdx && !tdz))
        return GRAFT_OK;
    if (c->out[0]->dtype != GRAFT_FLOAT)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "no gradient for integer Mod");
    const graft_tensor *ops[2] = {c->in[0], c->in[1]};
    bplan p;
    bplan_make(&p, c->out[0], 2, ops);
    if (p.n == 0)
        return GRAFT_OK;
    const float *x = ops[0]->data, *z = ops[1]->data, *y = c->out[0]->data, *dy = tdy->data;
    float *dx = tdx ? tdx->data : NULL, *dz = tdz ? tdz->data : NULL;
    int64_t inner = p.dims[p.rank - 1], rows = p.n / inner;
    int64_t sx = p.st[0][p.rank - 1], sz = p.st[1][p.rank - 1];
    bool disjoint = graft_tensor_nelem(ops[0]) == p.n && graft_tensor_nelem(ops[1]) == p.n;
    int nt = disjoint ? lu_threads(c, p.n) : 1;
    if (nt > rows)
        nt = (int)rows;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t row = 0; row < rows; row++) {
        int64_t off[3];
        bplan_row(&p, row, off);
        const float *g = dy + row * inner, *yr = y + row * inner;
        for (int64_t i = 0; i < inner; i++) {
            if (dx)
                dx[off[0] + i * sx] += g[i];
            float zi = z[off[1] + i * sz];
            if (dz && zi != 0.0f)
                dz[off[1] + i * sz] -= roundf((x[off[0] + i * sx] - yr[i]) / zi) * g[i];
        }
    }
    return GRAFT_OK;
}

#define BIN_DEF(ident, name, minv, bwd)                                                      \
    const graft_op_def graft__op_##ident = {                                                  \
        .op_type = name, .domain = "", .min_opset = minv, .flags = 0,                        \
        .params_size = sizeof(bin_params), .parse = bin_parse, .infer = bin_infer,           \
        .forward = bin_forward, .backward = bwd};

BIN_DEF(equal, "Equal", 1, NULL)
BIN_DEF(greater, "Greater", 1, NULL)
BIN_DEF(less, "Less", 1, NULL)
BIN_DEF(greater_or_equal, "GreaterOrEqual", 12, NULL)
BIN_DEF(less_or_equal, "LessOrEqual", 12, NULL)
BIN_DEF(logical_and, "And", 1, NULL)
BIN_DEF(logical_or, "Or", 1, NULL)
BIN_DEF(logical_xor, "Xor", 1, NULL)
BIN_DEF(mod, "Mod", 10, mod_backward)
BIN_DEF(bit_shift, "BitShift", 11, NULL)

/* ---- Where --------------------------------------------------------------------- */

#define WHERE_KERNEL(name, T)                                                                 \
    static void name(const uint8_t *cnd, int64_t sc, const void *vx, int64_t sx,             \
                     const void *vz, int64_t sz, void *vy, int64_t n)                         \
    {                                                                                         \
        const T *x = vx, *z = vz;                                                             \
        T *y = vy;                                                                            \
        if (sc && sx && sz) {                                                                 \
            for (int64_t i = 0; i < n; i++)                                                   \
                y[i] = cnd[i] ? x[i] : z[i];                                                  \
        } else {                                                                              \
            for (int64_t i = 0; i < n; i++)                                                   \
                y[i] = cnd[i * sc] ? x[i * sx] : z[i * sz];                                   \
        }                                                                                     \
    }
WHERE_KERNEL(where_1, uint8_t)
WHERE_KERNEL(where_4, uint32_t)
WHERE_KERNEL(where_8, uint64_t)
#undef WHERE_KERNEL

static graft_status where_parse(const graft_graph *g, const graft_node *n, void *params,
                                graft_error *err)
{
    (void)g;
    (void)params;
    return lu_check_inputs(err, n, 3, 3);
}

static graft_status where_infer(graft_op_call *c)
{
    const graft_tensor *cnd = c->in[0], *x = c->in[1], *z = c->in[2];
    if (!lu_is_bool(cnd->dtype))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "the condition must be bool, not %s",
                              graft_dtype_name(cnd->dtype));
    int cx = dtype_class(x->dtype), cz = dtype_class(z->dtype);
    if (cx < 0 || cz < 0)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "element type %s is not supported",
                              graft_dtype_name(cx < 0 ? x->dtype : z->dtype));
    if (cx != cz)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "X and Y types differ: %s and %s",
                              graft_dtype_name(x->dtype), graft_dtype_name(z->dtype));
    int r = 0;
    int64_t dims[GRAFT_MAX_RANK];
    graft_status st = broadcast_all(c, 3, &r, dims);
    if (st)
        return st;
    lu_set_shape(c->out[0], x->dtype, r, dims);
    return GRAFT_OK;
}

static graft_status where_forward(graft_op_call *c)
{
    graft_tensor *ty = c->out[0];
    const graft_tensor *ops[3] = {c->in[0], c->in[1], c->in[2]};
    bplan p;
    bplan_make(&p, ty, 3, ops);
    if (p.n == 0)
        return GRAFT_OK;
    size_t es = graft_dtype_size(ty->dtype);
    void (*fn)(const uint8_t *, int64_t, const void *, int64_t, const void *, int64_t, void *,
               int64_t) = es == 1 ? where_1 : es == 4 ? where_4 : where_8;
    const uint8_t *cnd = ops[0]->data;
    const char *x = ops[1]->data, *z = ops[2]->data;
    char *y = ty->data;
    int64_t inner = p.dims[p.rank - 1], rows = p.n / inner;
    int64_t sc = p.st[0][p.rank - 1], sx = p.st[1][p.rank - 1], sz = p.st[2][p.rank - 1];
    int nt = lu_threads(c, p.n);
    if (rows == 1) {
        int64_t chunk = ((inner + nt - 1) / nt + 63) & ~(int64_t)63;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
        for (int64_t s = 0; s < inner; s += chunk)
            fn(cnd + s * sc, sc, x + (size_t)(s * sx) * es, sx, z + (size_t)(s * sz) * es, sz,
               y + (size_t)s * es, inner - s < chunk ? inner - s : chunk);
        return GRAFT_OK;
    }
    if (nt > rows)
        nt = (int)rows;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t row = 0; row < rows; row++) {
        int64_t off[3];
        bplan_row(&p, row, off);
        fn(cnd + off[0], sc, x + (size_t)off[1] * es, sx, z + (size_t)off[2] * es, sz,
           y + (size_t)(row * inner) * es, inner);
    }
    return GRAFT_OK;
}

/* dy routed to X where the condition holds and to Y elsewhere; a broadcast
 * operand sums over the dims it was repeated on. */
static graft_status where_backward(graft_op_call *c)
{
    const graft_tensor *tdy = c->d_out[0];
    graft_tensor *tdx = c->d_in[1], *tdz = c->d_in[2];
    if (!tdy || (!tdx && !tdz))
        return GRAFT_OK;
    if (c->out[0]->dtype != GRAFT_FLOAT)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "no gradient for %s data",
                              graft_dtype_name(c->out[0]->dtype));
    const graft_tensor *ops[3] = {c->in[0], c->in[1], c->in[2]};
    bplan p;
    bplan_make(&p, c->out[0], 3, ops);
    if (p.n == 0)
        return GRAFT_OK;
    const uint8_t *cnd = ops[0]->data;
    const float *dy = tdy->data;
    float *dx = tdx ? tdx->data : NULL, *dz = tdz ? tdz->data : NULL;
    int64_t inner = p.dims[p.rank - 1], rows = p.n / inner;
    int64_t sc = p.st[0][p.rank - 1], sx = p.st[1][p.rank - 1], sz = p.st[2][p.rank - 1];
    /* rows write disjoint gradient cells only when X and Y are not broadcast */
    bool disjoint = graft_tensor_nelem(ops[1]) == p.n && graft_tensor_nelem(ops[2]) == p.n;
    int nt = disjoint ? lu_threads(c, p.n) : 1;
    if (nt > rows)
        nt = (int)rows;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t row = 0; row < rows; row++) {
        int64_t off[3];
        bplan_row(&p, row, off);
        const uint8_t *cr = cnd + off[0];
        const float *g = dy + row * inner;
        if (dx) {
            float *d = dx + off[1];
            for (int64_t i = 0; i < inner; i++)
                d[i * sx] += cr[i * sc] ? g[i] : 0.0f;
        }
        if (dz) {
            float *d = dz + off[2];
            for (int64_t i = 0; i < inner; i++)
                d[i * sz] += cr[i * sc] ? 0.0f : g[i];
        }
    }
    return GRAFT_OK;
}

const graft_op_def graft__op_where = {
    .op_type = "Where", .domain = "", .min_opset = 9, .flags = 0, .params_size = 0,
    .parse = where_parse, .infer = where_infer, .forward = where_forward,
    .backward = where_backward};

/* ---- Not, IsNaN, IsInf ---------------------------------------------------------- */

enum un_kind { U_NOT, U_ISNAN, U_ISINF };

typedef struct un_params {
    int kind;
    bool neg, pos; /* IsInf */
} un_params;

static graft_status un_parse(const graft_graph *g, const graft_node *n, void *params,
                             graft_error *err)
{
    (void)g;
    un_params *p = params;
    p->kind = !strcmp(n->op_type, "Not") ? U_NOT : !strcmp(n->op_type, "IsNaN") ? U_ISNAN : U_ISINF;
    p->neg = graft_node_attr_int(n, "detect_negative", 1) != 0;
    p->pos = graft_node_attr_int(n, "detect_positive", 1) != 0;
    return lu_check_inputs(err, n, 1, 1);
}

static graft_status un_infer(graft_op_call *c)
{
    const un_params *p = c->params;
    const graft_tensor *x = c->in[0];
    int cl = dtype_class(x->dtype);
    if (cl < 0)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "element type %s is not supported",
                              graft_dtype_name(x->dtype));
    if (p->kind == U_NOT && cl != 2)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "Not takes bool, not %s",
                              graft_dtype_name(x->dtype));
    if (p->kind != U_NOT && cl != 0)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "%s takes floating-point data, not %s",
                              p->kind == U_ISNAN ? "IsNaN" : "IsInf", graft_dtype_name(x->dtype));
    lu_set_shape(c->out[0], GRAFT_UINT8, x->rank, x->dims);
    return GRAFT_OK;
}

static void un_chunk(const un_params *p, const void *vx, uint8_t *y, int64_t n)
{
    if (p->kind == U_NOT) {
        const uint8_t *x = vx;
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] == 0;
        return;
    }
    const float *x = vx;
    if (p->kind == U_ISNAN) {
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] != x[i];
        return;
    }
    const float pinf = p->pos ? INFINITY : NAN, ninf = p->neg ? -INFINITY : NAN;
    for (int64_t i = 0; i < n; i++)
        y[i] = (x[i] == pinf) | (x[i] == ninf);
}

static graft_status un_forward(graft_op_call *c)
{
    const un_params *p = c->params;
    const graft_tensor *x = c->in[0];
    int64_t n = graft_tensor_nelem(x);
    size_t es = graft_dtype_size(x->dtype);
    uint8_t *y = c->out[0]->data;
    int nt = lu_threads(c, n);
    if (nt == 1) {
        un_chunk(p, x->data, y, n);
        return GRAFT_OK;
    }
    int64_t chunk = ((n + nt - 1) / nt + 63) & ~(int64_t)63;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t s = 0; s < n; s += chunk)
        un_chunk(p, (const char *)x->data + (size_t)s * es, y + s, n - s < chunk ? n - s : chunk);
    return GRAFT_OK;
}

#define UN_DEF(ident, name, minv)                                                            \
    const graft_op_def graft__op_##ident = {                                                  \
        .op_type = name, .domain = "", .min_opset = minv, .flags = 0,                        \
        .params_size = sizeof(un_params), .parse = un_parse, .infer = un_infer,              \
        .forward = un_forward, .backward = NULL};

UN_DEF(logical_not, "Not", 1)
UN_DEF(is_nan, "IsNaN", 9)
UN_DEF(is_inf, "IsInf", 10)
