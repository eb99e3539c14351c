/* Elementwise arithmetic with numpy broadcasting, and unary maths.
 *
 *   Add  y = a + b      da += sum_bcast(dy)          db += sum_bcast(dy)
 *   Sub  y = a - b      da += sum_bcast(dy)          db -= sum_bcast(dy)
 *   Mul  y = a * b      da += sum_bcast(dy * b)      db += sum_bcast(dy * a)
 *   Div  y = a / b      da += sum_bcast(dy / b)      db -= sum_bcast(dy * a / b^2)
 *   Sum  y = sum_k x_k   dx_k += sum_bcast(dy)      (variadic, folds left to right)
 *   Mean y = Sum / K     dx_k += sum_bcast(dy) / K
 *   Pow          da += dy b a^(b-1), db += dy a^b ln a (a > 0; 0 elsewhere,
 *                where ln a is undefined or the limit is 0)
 *   Max, Min (variadic): forward only.
 *   Sqrt dx += dy / (2y)   Exp dx += dy * y   Log dx += dy / x   Neg dx -= dy
 *   Abs  dx += dy * sign(x)   Reciprocal dx -= dy * y^2   Erf dx += dy * 2/sqrt(pi) e^(-x^2)
 *   Sin  dx += dy cos x    Cos dx -= dy sin x    Tan dx += dy (1 + y^2)
 *   Asin dx += dy / sqrt(1 - x^2)   Acos dx -= dy / sqrt(1 - x^2)   Atan dx += dy / (1 + x^2)
 *   Sinh dx += dy cosh x   Cosh dx += dy sinh x
 *   Asinh dx += dy / sqrt(x^2 + 1)  Acosh dx += dy / sqrt(x^2 - 1)  Atanh dx += dy / (1 - x^2)
 *   Floor, Ceil, Round (half to even), Sign: piecewise constant, no gradient.
 *
 * Before opset 7 Add/Sub/Mul/Div/Pow broadcast only with broadcast=1, and an
 * `axis` attribute places B's dims on A's starting there (B [3] on A [2,3,4]
 * at axis 1 is B [3,1] numpy-style); without it B aligns to A's suffix, which
 * is numpy broadcasting. parse records the axis, infer/forward/backward see B
 * through a view padded with trailing 1s (same data, same layout).
 *
 * Integer (int64) arithmetic wraps like two's complement; integer division by
 * zero gives 0 rather than trapping, since a model file must not crash us.
 *
 * Broadcasting is planned once per call: the output shape is reduced by
 * merging adjacent dims that stay contiguous for both operands, so that the
 * common cases (same shape, scalar, per-channel bias [C,1,1] against NCHW,
 * SE-block scales [N,C,1,1]) become a few long inner rows that vectorise. */
#include <math.h>
#include <stdlib.h>

#include "ops/light_util.h"

/* ---- broadcast plan ---------------------------------------------------- */

typedef struct bcast {
    int rank; /* >= 1 after merging */
    int64_t dims[GRAFT_MAX_RANK];
    int64_t sa[GRAFT_MAX_RANK], sb[GRAFT_MAX_RANK]; /* element strides, 0 = broadcast */
    int64_t n;
} bcast;

static void operand_strides(int r, const int64_t *out, int ra, const int64_t *a, int64_t *s)
{
    int64_t st = 1;
    for (int i = r - 1; i >= 0; i--) {
        int ai = i - (r - ra);
        int64_t d = ai >= 0 ? a[ai] : 1;
        s[i] = (d == 1 && out[i] != 1) || ai < 0 ? 0 : st;
        st *= d;
    }
}

static void bcast_plan(bcast *p, int r, const int64_t *out, const graft_tensor *a,
                       const graft_tensor *b)
{
    int64_t sa[GRAFT_MAX_RANK], sb[GRAFT_MAX_RANK];
    operand_strides(r, out, a->rank, a->dims, sa);
    operand_strides(r, out, b->rank, b->dims, sb);
    p->rank = 0;
    p->n = 1;
    for (int i = 0; i < r; i++) {
        p->n *= out[i];
        if (out[i] == 1)
            continue;
        int k = p->rank;
        if (k > 0 && p->sa[k - 1] == sa[i] * out[i] && p->sb[k - 1] == sb[i] * out[i]) {
            p->dims[k - 1] *= out[i];
            p->sa[k - 1] = sa[i];
            p->sb[k - 1] = sb[i];
            continue;
        }
        p->dims[k] = out[i];
        p->sa[k] = sa[i];
        p->sb[k] = sb[i];
        p->rank++;
    }
    if (p->rank == 0) {
        p->rank = 1;
        p->dims[0] = 1;
        p->sa[0] = p->sb[0] = 0;
    }
}

/* Offsets of a and b at the start of inner row `row`. */
static inline void bcast_row(const bcast *p, int64_t row, int64_t *oa, int64_t *ob)
{
    int64_t a = 0, b = 0;
    for (int i = p->rank - 2; i >= 0 && row; i--) {
        int64_t q = row / p->dims[i], k = row - q * p->dims[i];
        a += k * p->sa[i];
        b += k * p->sb[i];
        row = q;
    }
    *oa = a;
    *ob = b;
}

/* ---- kernels ------------------------------------------------------------- */

typedef void (*bin_fn)(const void *a, int64_t sa, const void *b, int64_t sb, void *y, int64_t n);

/* Four loop shapes per op so that each is a plain vectorisable loop. No
 * restrict: the variadic fold runs in place (y == a). */
#define BIN_KERNEL(name, T, EXPR)                                                             \
    static void name(const void *va, int64_t sa, const void *vb, int64_t sb, void *vy,      \
                     int64_t n)                                                               \
    {                                                                                         \
        const T *a = va, *b = vb;                                                             \
        T *y = vy;                                                                            \
        if (sa == 1 && sb == 1) {                                                             \
            for (int64_t i = 0; i < n; i++) {                                                 \
                T x = a[i], z = b[i];                                                         \
                y[i] = (EXPR);                                                                \
            }                                                                                 \
        } else if (sa == 1) {                                                                 \
            T z = b[0];                                                                       \
            for (int64_t i = 0; i < n; i++) {                                                 \
                T x = a[i];                                                                   \
                y[i] = (EXPR);                                                                \
            }                                                                                 \
        } else if (sb == 1) {                                                                 \
            T x = a[0];                                                                       \
            for (int64_t i = 0; i < n; i++) {                                                 \
                T z = b[i];                                                                   \
                y[i] = (EXPR);                                                                \
            }                                                                                 \
        } else {                                                                              \
            T x = a[0], z = b[0];                                                             \
            T v = (EXPR);                                                                     \
            for (int64_t i = 0; i < n; i++)                                                   \
                y[i] = v;                                                                     \
        }                                                                                     \
    }

static inline int64_t i64_div(int64_t x, int64_t z)
{
    if (z == 0)
        return 0;
    if (z == -1)
        return (int64_t)(0 - (uint64_t)x);
    return x / z;
}

static inline int64_t i64_pow(int64_t x, int64_t e)
{
    if (e < 0)
        return x == 1 ? 1 : x == -1 ? (e & 1 ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)x;
    while (e) {
        if (e & 1)
            r *= b;
        b *= b;
        e >>= 1;
    }
    return (int64_t)r;
}

static inline float f32_pow(float x, float z)
{
    if (z == 2.0f)
        return x * x;
    return powf(x, z);
}

#define WRAP(op) ((int64_t)((uint64_t)x op(uint64_t) z))
BIN_KERNEL(add_f32, float, x + z)
BIN_KERNEL(sub_f32, float, x - z)
BIN_KERNEL(mul_f32, float, x *z)
BIN_KERNEL(div_f32, float, x / z)
BIN_KERNEL(pow_f32, float, f32_pow(x, z))
BIN_KERNEL(max_f32, float, (x > z || x != x) ? x : z)
BIN_KERNEL(min_f32, float, (x < z || x != x) ? x : z)
BIN_KERNEL(add_i64, int64_t, WRAP(+))
BIN_KERNEL(sub_i64, int64_t, WRAP(-))
BIN_KERNEL(mul_i64, int64_t, WRAP(*))
BIN_KERNEL(div_i64, int64_t, i64_div(x, z))
BIN_KERNEL(pow_i64, int64_t, i64_pow(x, z))
BIN_KERNEL(max_i64, int64_t, x > z ? x : z)
BIN_KERNEL(min_i64, int64_t, x < z ? x : z)
#undef WRAP

enum bin_kind { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_POW, BIN_MAX, BIN_MIN };

static const bin_fn bin_f32[] = {add_f32, sub_f32, mul_f32, div_f32, pow_f32, max_f32, min_f32};
static const bin_fn bin_i64[] = {add_i64, sub_i64, mul_i64, div_i64, pow_i64, max_i64, min_i64};

typedef struct bin_params {
    int kind;      /* enum bin_kind */
    bool variadic; /* Max/Min/Sum/Mean: 1..N inputs */
    bool mean;     /* Mean: Sum, then / N */
    bool legacy_axis; /* opset < 7, broadcast=1 with axis */
    int64_t axis;
} bin_params;

static int kind_of(const graft_node *n)
{
    static const char *const names[] = {"Add", "Sub", "Mul", "Div", "Pow",
                                        "Max", "Min", "Sum", "Mean"};
    for (int i = 0; i < 9; i++)
        if (strcmp(n->op_type, names[i]) == 0)
            return i >= 7 ? BIN_ADD : i;
    return -1;
}

/* B as legacy broadcasting sees it: rank of A, B's dims from `axis` on, 1s
 * after. False when B does not fit inside A there. */
static bool legacy_view(const bin_params *p, const graft_tensor *a, const graft_tensor *b,
                        graft_tensor *view)
{
    *view = *b;
    view->owned = false;
    if (!p->legacy_axis)
        return true;
    int ra = a->rank, rb = b->rank, ax;
    if (rb == 0)
        return true;
    if (!lu_axis(p->axis, ra, &ax) || rb > ra - ax)
        return false;
    for (int i = 0; i < rb; i++)
        if (b->dims[i] != a->dims[ax + i] && b->dims[i] != 1)
            return false;
    view->rank = ra;
    for (int i = 0; i < ra; i++)
        view->dims[i] = i < ax || i >= ax + rb ? 1 : b->dims[i - ax];
    return true;
}

static graft_status bin_parse(const graft_graph *g, const graft_node *n, void *params,
                              graft_error *err)
{
    (void)g;
    bin_params *p = params;
    p->kind = kind_of(n);
    p->mean = !strcmp(n->op_type, "Mean");
    p->variadic = !strcmp(n->op_type, "Max") || !strcmp(n->op_type, "Min") ||
                  !strcmp(n->op_type, "Sum") || p->mean;
    p->legacy_axis = false;
    p->axis = 0;
    if (p->kind < 0)
        return lu_node_fail(err, n, GRAFT_ERR_INTERNAL, "not an elementwise op");
    if (p->variadic) {
        graft_status st = lu_check_inputs(err, n, 1, n->n_inputs < 1 ? 1 : n->n_inputs);
        if (st)
            return st;
        for (int i = 0; i < n->n_inputs; i++)
            if (n->inputs[i] < 0)
                return lu_node_fail(err, n, GRAFT_ERR_INVALID, "input %d is empty", i);
        return GRAFT_OK;
    }
    if (n->opset > 0 && n->opset < 7 && graft_node_attr_int(n, "broadcast", 0) &&
        graft_node_attr(n, "axis")) {
        p->legacy_axis = true;
        p->axis = graft_node_attr_int(n, "axis", 0);
    }
    return lu_check_inputs(err, n, 2, 2);
}

static graft_status bin_infer(graft_op_call *c)
{
    const bin_params *p = c->params;
    int r = 0;
    int64_t dims[GRAFT_MAX_RANK];
    const graft_tensor *a = c->in[0];
    graft_dtype dt = a->dtype;
    if ((dt != GRAFT_FLOAT && dt != GRAFT_INT64) || (p->mean && dt != GRAFT_FLOAT))
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "element type %s is not supported",
                              graft_dtype_name(dt));
    r = a->rank;
    memcpy(dims, a->dims, sizeof dims);
    for (int i = 1; i < c->n_in; i++) {
        graft_tensor bv;
        const graft_tensor *b = &bv;
        if (!c->in[i])
            return graft__op_fail(c, GRAFT_ERR_INVALID, "input %d is empty", i);
        if (!legacy_view(p, a, c->in[i], &bv)) {
            char s1[128], s2[128];
            return graft__op_fail(c, GRAFT_ERR_SHAPE,
                                  "legacy broadcast: B %s does not fit A %s at axis %lld",
                                  graft_shape_format(c->in[i]->rank, c->in[i]->dims, s1, sizeof s1),
                                  graft_shape_format(a->rank, a->dims, s2, sizeof s2),
                                  (long long)p->axis);
        }
        if (b->dtype != dt && !(p->kind == BIN_POW && (b->dtype == GRAFT_FLOAT ||
                                                       b->dtype == GRAFT_INT64)))
            return graft__op_fail(c, GRAFT_ERR_INVALID, "input types differ: %s and %s",
                                  graft_dtype_name(dt), graft_dtype_name(b->dtype));
        int64_t tmp[GRAFT_MAX_RANK];
        int rt = 0;
        if (graft__broadcast_shape(r, dims, b->rank, b->dims, &rt, tmp)) {
            char s1[128], s2[128];
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "shapes %s and %s do not broadcast",
                                  graft_shape_format(r, dims, s1, sizeof s1),
                                  graft_shape_format(b->rank, b->dims, s2, sizeof s2));
        }
        r = rt;
        memcpy(dims, tmp, sizeof dims);
    }
    lu_set_shape(c->out[0], dt, r, dims);
    return GRAFT_OK;
}

/* y = a op b over the broadcast plan. */
static void bin_run(const graft_op_call *c, bin_fn fn, const graft_tensor *ta,
                    const graft_tensor *tb, graft_tensor *ty)
{
    bcast p;
    bcast_plan(&p, ty->rank, ty->dims, ta, tb);
    size_t es = graft_dtype_size(ty->dtype);
    const char *a = ta->data, *b = tb->data;
    char *y = ty->data;
    int64_t inner = p.dims[p.rank - 1], rows = p.n / (inner ? inner : 1);
    if (p.n == 0)
        return;
    int64_t sa = p.sa[p.rank - 1], sb = p.sb[p.rank - 1];
    int nt = lu_threads(c, fn == pow_f32 || fn == pow_i64 ? p.n * 16 : p.n);
    if (rows == 1) {
        /* one long row: split it so both threads get work */
        int64_t chunk = (inner + nt - 1) / nt;
        chunk = (chunk + 15) & ~(int64_t)15;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
        for (int64_t s = 0; s < inner; s += chunk) {
            int64_t len = inner - s < chunk ? inner - s : chunk;
            fn(a + (size_t)(s * sa) * es, sa, b + (size_t)(s * sb) * es, sb, y + (size_t)s * es,
               len);
        }
        return;
    }
    if (nt > rows)
        nt = (int)rows;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t row = 0; row < rows; row++) {
        int64_t oa, ob;
        bcast_row(&p, row, &oa, &ob);
        fn(a + (size_t)oa * es, sa, b + (size_t)ob * es, sb, y + (size_t)(row * inner) * es,
           inner);
    }
}

/* Pow with mixed base/exponent types: slow generic path through double. */
static void pow_mixed(const graft_tensor *ta, const graft_tensor *tb, graft_tensor *ty)
{
    bcast p;
    bcast_plan(&p, ty->rank, ty->dims, ta, tb);
    int64_t inner = p.dims[p.rank - 1], rows = inner ? p.n / inner : 0;
    for (int64_t row = 0; row < rows; row++) {
        int64_t oa, ob;
        bcast_row(&p, row, &oa, &ob);
        for (int64_t i = 0; i < inner; i++) {
            double v = pow(lu_get_f64(ta, oa + i * p.sa[p.rank - 1]),
                           lu_get_f64(tb, ob + i * p.sb[p.rank - 1]));
            int64_t k = row * inner + i;
            if (ty->dtype == GRAFT_FLOAT)
                graft_tensor_f32(ty)[k] = (float)v;
            else
                graft_tensor_i64(ty)[k] = isfinite(v) && fabs(v) < 9.2e18 ? (int64_t)v : 0;
        }
    }
}

static graft_status bin_forward(graft_op_call *c)
{
    const bin_params *p = c->params;
    graft_tensor *y = c->out[0];
    const bin_fn *tab = y->dtype == GRAFT_FLOAT ? bin_f32 : bin_i64;
    if (c->n_in == 1) {
        graft__light_copy(c, y->data, c->in[0]->data,
                          (size_t)graft_tensor_nelem(y) * graft_dtype_size(y->dtype));
        return GRAFT_OK;
    }
    graft_tensor bv;
    legacy_view(p, c->in[0], c->in[1], &bv);
    if (p->kind == BIN_POW && c->in[1]->dtype != c->in[0]->dtype) {
        pow_mixed(c->in[0], &bv, y);
        return GRAFT_OK;
    }
    bin_run(c, tab[p->kind], c->in[0], &bv, y);
    for (int i = 2; i < c->n_in; i++)
        bin_run(c, tab[p->kind], y, c->in[i], y);
    if (p->mean) {
        float *v = y->data, s = 1.0f / (float)c->n_in;
        int64_t n = graft_tensor_nelem(y);
        for (int64_t i = 0; i < n; i++)
            v[i] *= s;
    }
    return GRAFT_OK;
}

/* Sum / Mean: every input gets dy (times 1/N) summed over its broadcast dims. */
static graft_status sum_backward(graft_op_call *c)
{
    const bin_params *p = c->params;
    const graft_tensor *ty = c->out[0], *tdy = c->d_out[0];
    if (ty->dtype != GRAFT_FLOAT)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "no gradient for integer input");
    if (!tdy)
        return GRAFT_OK;
    const float *dy = tdy->data, s = p->mean ? 1.0f / (float)c->n_in : 1.0f;
    for (int k = 0; k < c->n_in; k++) {
        if (!c->d_in[k])
            continue;
        float *dx = c->d_in[k]->data;
        bcast bp;
        bcast_plan(&bp, ty->rank, ty->dims, c->in[k], c->in[k]);
        int64_t inner = bp.dims[bp.rank - 1], rows = inner ? bp.n / inner : 0;
        int64_t sa = bp.sa[bp.rank - 1];
        for (int64_t row = 0; row < rows; row++) {
            int64_t oa, ob;
            bcast_row(&bp, row, &oa, &ob);
            const float *g = dy + row * inner;
            if (sa == 1) {
                for (int64_t i = 0; i < inner; i++)
                    dx[oa + i] += s * g[i];
            } else {
                float acc = 0.0f;
                for (int64_t i = 0; i < inner; i++)
                    acc += g[i];
                dx[oa] += s * acc;
            }
        }
    }
    return GRAFT_OK;
}

/* Accumulates one operand's gradient; `other` is the other operand (NULL when
 * unused). which: 0 = a, 1 = b. */
static inline void pow_grad(float a, float b, float g, float *da, float *db)
{
    if (da)
        *da += g * b * (b == 1.0f ? 1.0f : powf(a, b - 1.0f));
    if (db && a > 0.0f)
        *db += g * powf(a, b) * logf(a);
}

static graft_status bin_backward(graft_op_call *c)
{
    const bin_params *p = c->params;
    if (c->n_in != 2)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "no gradient for this form");
    graft_tensor bv;
    legacy_view(p, c->in[0], c->in[1], &bv);
    const graft_tensor *ta = c->in[0], *tb = &bv, *tdy = c->d_out[0];
    graft_tensor *tda = c->d_in[0], *tdb = c->d_in[1];
    if (ta->dtype != GRAFT_FLOAT || tb->dtype != GRAFT_FLOAT)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "no gradient for this form");
    if (p->kind > BIN_POW)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "no gradient");
    if (!tdy || (!tda && !tdb))
        return GRAFT_OK;
    const graft_tensor *ty = c->out[0];
    bcast bp;
    bcast_plan(&bp, ty->rank, ty->dims, ta, tb);
    const float *a = ta->data, *b = tb->data, *dy = tdy->data;
    float *da = tda ? tda->data : NULL, *db = tdb ? tdb->data : NULL;
    int64_t inner = bp.dims[bp.rank - 1], rows = inner ? bp.n / inner : 0;
    int64_t sa = bp.sa[bp.rank - 1], sb = bp.sb[bp.rank - 1];
    int kind = p->kind;
    if (rows == 1 && sa == 1 && sb == 1) {
        int nt = lu_threads(c, inner);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
        for (int64_t i = 0; i < inner; i++) {
            float g = dy[i];
            switch (kind) {
            case BIN_ADD: if (da) da[i] += g; if (db) db[i] += g; break;
            case BIN_SUB: if (da) da[i] += g; if (db) db[i] -= g; break;
            case BIN_MUL: if (da) da[i] += g * b[i]; if (db) db[i] += g * a[i]; break;
            case BIN_POW: pow_grad(a[i], b[i], g, da ? da + i : NULL, db ? db + i : NULL); break;
            default: if (da) da[i] += g / b[i]; if (db) db[i] -= g * a[i] / (b[i] * b[i]); break;
            }
        }
        return GRAFT_OK;
    }
    /* Broadcast reductions write the same gradient cell from many rows:
     * serial, which is fine at head sizes. */
    for (int64_t row = 0; row < rows; row++) {
        int64_t oa, ob;
        bcast_row(&bp, row, &oa, &ob);
        const float *g = dy + row * inner;
        for (int64_t i = 0; i < inner; i++) {
            int64_t ia = oa + i * sa, ib = ob + i * sb;
            switch (kind) {
            case BIN_ADD: if (da) da[ia] += g[i]; if (db) db[ib] += g[i]; break;
            case BIN_SUB: if (da) da[ia] += g[i]; if (db) db[ib] -= g[i]; break;
            case BIN_MUL: if (da) da[ia] += g[i] * b[ib]; if (db) db[ib] += g[i] * a[ia]; break;
            case BIN_POW: pow_grad(a[ia], b[ib], g[i], da ? da + ia : NULL, db ? db + ib : NULL); break;
            default:
                if (da) da[ia] += g[i] / b[ib];
                if (db) db[ib] -= g[i] * a[ia] / (b[ib] * b[ib]);
                break;
            }
        }
    }
    return GRAFT_OK;
}

#define BIN_DEF(ident, name, bwd)                                                            \
    const graft_op_def graft__op_##ident = {                                                  \
        .op_type = name, .domain = "", .min_opset = 1, .flags = 0,                           \
        .params_size = sizeof(bin_params), .parse = bin_parse, .infer = bin_infer,           \
        .forward = bin_forward, .backward = bwd};

BIN_DEF(add, "Add", bin_backward)
BIN_DEF(sub, "Sub", bin_backward)
BIN_DEF(mul, "Mul", bin_backward)
BIN_DEF(div, "Div", bin_backward)
BIN_DEF(pow, "Pow", bin_backward)
BIN_DEF(max, "Max", NULL)
BIN_DEF(min, "Min", NULL)
BIN_DEF(sum, "Sum", sum_backward)
BIN_DEF(mean, "Mean", sum_backward)

/* ---- unary --------------------------------------------------------------- */

enum un_kind {
    UN_SQRT, UN_EXP, UN_LOG, UN_NEG, UN_ABS, UN_RECIPROCAL, UN_ERF, UN_SIN, UN_COS, UN_TAN,
    UN_ASIN, UN_ACOS, UN_ATAN, UN_SINH, UN_COSH, UN_ASINH, UN_ACOSH, UN_ATANH, UN_FLOOR,
    UN_CEIL, UN_ROUND, UN_SIGN, UN_COUNT
};

static const char *const un_names[UN_COUNT] = {
    "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Erf", "Sin", "Cos", "Tan", "Asin",
    "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Floor", "Ceil", "Round", "Sign"};

/* memory-bound kinds: no parallel region below LU_PAR_MIN elements */
static bool un_cheap(int kind)
{
    return kind == UN_NEG || kind == UN_ABS || kind == UN_FLOOR || kind == UN_CEIL ||
           kind == UN_ROUND || kind == UN_SIGN;
}

typedef struct un_params {
    int kind;
} un_params;

static graft_status un_parse(const graft_graph *g, const graft_node *n, void *params,
                             graft_error *err)
{
    (void)g;
    un_params *p = params;
    p->kind = -1;
    for (int i = 0; i < UN_COUNT; i++)
        if (!strcmp(n->op_type, un_names[i]))
            p->kind = i;
    if (p->kind < 0)
        return lu_node_fail(err, n, GRAFT_ERR_INTERNAL, "not a unary op");
    return lu_check_inputs(err, n, 1, 1);
}

static graft_status un_infer(graft_op_call *c)
{
    const un_params *p = c->params;
    const graft_tensor *x = c->in[0];
    bool int_ok = p->kind == UN_NEG || p->kind == UN_ABS || p->kind == UN_SIGN;
    if (x->dtype != GRAFT_FLOAT && !(int_ok && x->dtype == GRAFT_INT64))
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "element type %s is not supported",
                              graft_dtype_name(x->dtype));
    lu_copy_shape(c->out[0], x);
    return GRAFT_OK;
}

static void un_f32(int kind, const float *x, float *y, int64_t n)
{
    switch (kind) {
    case UN_SQRT: for (int64_t i = 0; i < n; i++) y[i] = sqrtf(x[i]); break;
    case UN_EXP: for (int64_t i = 0; i < n; i++) y[i] = expf(x[i]); break;
    case UN_LOG: for (int64_t i = 0; i < n; i++) y[i] = logf(x[i]); break;
    case UN_NEG: for (int64_t i = 0; i < n; i++) y[i] = -x[i]; break;
    case UN_ABS: for (int64_t i = 0; i < n; i++) y[i] = fabsf(x[i]); break;
    case UN_RECIPROCAL: for (int64_t i = 0; i < n; i++) y[i] = 1.0f / x[i]; break;
    case UN_ERF: for (int64_t i = 0; i < n; i++) y[i] = erff(x[i]); break;
    case UN_SIN: for (int64_t i = 0; i < n; i++) y[i] = sinf(x[i]); break;
    case UN_COS: for (int64_t i = 0; i < n; i++) y[i] = cosf(x[i]); break;
    case UN_TAN: for (int64_t i = 0; i < n; i++) y[i] = tanf(x[i]); break;
    case UN_ASIN: for (int64_t i = 0; i < n; i++) y[i] = asinf(x[i]); break;
    case UN_ACOS: for (int64_t i = 0; i < n; i++) y[i] = acosf(x[i]); break;
    case UN_ATAN: for (int64_t i = 0; i < n; i++) y[i] = atanf(x[i]); break;
    case UN_SINH: for (int64_t i = 0; i < n; i++) y[i] = sinhf(x[i]); break;
    case UN_COSH: for (int64_t i = 0; i < n; i++) y[i] = coshf(x[i]); break;
    case UN_ASINH: for (int64_t i = 0; i < n; i++) y[i] = asinhf(x[i]); break;
    case UN_ACOSH: for (int64_t i = 0; i < n; i++) y[i] = acoshf(x[i]); break;
    case UN_ATANH: for (int64_t i = 0; i < n; i++) y[i] = atanhf(x[i]); break;
    case UN_FLOOR: for (int64_t i = 0; i < n; i++) y[i] = floorf(x[i]); break;
    case UN_CEIL: for (int64_t i = 0; i < n; i++) y[i] = ceilf(x[i]); break;
    /* rintf under the default round-to-nearest mode: ties go to even */
    case UN_ROUND: for (int64_t i = 0; i < n; i++) y[i] = rintf(x[i]); break;
    default: /* SIGN; NaN stays NaN */
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > 0.0f ? 1.0f : x[i] < 0.0f ? -1.0f : x[i] == 0.0f ? 0.0f : x[i];
        break;
    }
}

static graft_status un_forward(graft_op_call *c)
{
    const un_params *p = c->params;
    const graft_tensor *tx = c->in[0];
    graft_tensor *ty = c->out[0];
    int64_t n = graft_tensor_nelem(tx);
    if (tx->dtype == GRAFT_INT64) {
        const int64_t *x = tx->data;
        int64_t *y = ty->data;
        if (p->kind == UN_SIGN) {
            for (int64_t i = 0; i < n; i++)
                y[i] = (x[i] > 0) - (x[i] < 0);
            return GRAFT_OK;
        }
        for (int64_t i = 0; i < n; i++) {
            uint64_t v = (uint64_t)x[i];
            y[i] = (int64_t)(p->kind == UN_NEG || x[i] < 0 ? 0 - v : v);
        }
        return GRAFT_OK;
    }
    const float *x = tx->data;
    float *y = ty->data;
    int nt = lu_threads(c, un_cheap(p->kind) ? n : n * 16);
    if (nt == 1) {
        un_f32(p->kind, x, y, n);
        return GRAFT_OK;
    }
    int64_t chunk = ((n + nt - 1) / nt + 15) & ~(int64_t)15;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t s = 0; s < n; s += chunk)
        un_f32(p->kind, x + s, y + s, n - s < chunk ? n - s : chunk);
    return GRAFT_OK;
}

static graft_status un_backward(graft_op_call *c)
{
    const un_params *p = c->params;
    if (!c->d_in[0] || !c->d_out[0])
        return GRAFT_OK;
    if (c->in[0]->dtype != GRAFT_FLOAT)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "no gradient for integer input");
    const float *x = c->in[0]->data, *y = c->out[0]->data, *dy = c->d_out[0]->data;
    float *dx = c->d_in[0]->data;
    int64_t n = graft_tensor_nelem(c->in[0]);
    const float two_over_sqrt_pi = 1.1283791670955126f;
    switch (p->kind) {
    case UN_SQRT: for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * 0.5f / y[i]; break;
    case UN_EXP: for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * y[i]; break;
    case UN_LOG: for (int64_t i = 0; i < n; i++) dx[i] += dy[i] / x[i]; break;
    case UN_NEG: for (int64_t i = 0; i < n; i++) dx[i] -= dy[i]; break;
    case UN_ABS:
        for (int64_t i = 0; i < n; i++)
            dx[i] += x[i] > 0 ? dy[i] : x[i] < 0 ? -dy[i] : 0.0f;
        break;
    case UN_RECIPROCAL: for (int64_t i = 0; i < n; i++) dx[i] -= dy[i] * y[i] * y[i]; break;
    case UN_ERF:
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * two_over_sqrt_pi * expf(-x[i] * x[i]);
        break;
    case UN_SIN: for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * cosf(x[i]); break;
    case UN_COS: for (int64_t i = 0; i < n; i++) dx[i] -= dy[i] * sinf(x[i]); break;
    case UN_TAN: for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * (1.0f + y[i] * y[i]); break;
    case UN_ASIN:
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i] / sqrtf(1.0f - x[i] * x[i]);
        break;
    case UN_ACOS:
        for (int64_t i = 0; i < n; i++) dx[i] -= dy[i] / sqrtf(1.0f - x[i] * x[i]);
        break;
    case UN_ATAN: for (int64_t i = 0; i < n; i++) dx[i] += dy[i] / (1.0f + x[i] * x[i]); break;
    case UN_SINH: for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * coshf(x[i]); break;
    case UN_COSH: for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * sinhf(x[i]); break;
    case UN_ASINH:
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i] / sqrtf(x[i] * x[i] + 1.0f);
        break;
    case UN_ACOSH:
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i] / sqrtf(x[i] * x[i] - 1.0f);
        break;
    case UN_ATANH: for (int64_t i = 0; i < n; i++) dx[i] += dy[i] / (1.0f - x[i] * x[i]); break;
    default:
        return graft__op_fail(c, GRAFT_ERR_INTERNAL, "no gradient");
    }
    return GRAFT_OK;
}

#define UN_DEF(ident, name, minv, bwd)                                                       \
    const graft_op_def graft__op_##ident = {                                                  \
        .op_type = name, .domain = "", .min_opset = minv, .flags = 0,                        \
        .params_size = sizeof(un_params), .parse = un_parse, .infer = un_infer,              \
        .forward = un_forward, .backward = bwd};

UN_DEF(sqrt, "Sqrt", 1, un_backward)
UN_DEF(exp, "Exp", 1, un_backward)
UN_DEF(log, "Log", 1, un_backward)
UN_DEF(neg, "Neg", 1, un_backward)
UN_DEF(abs, "Abs", 1, un_backward)
UN_DEF(reciprocal, "Reciprocal", 1, un_backward)
UN_DEF(erf, "Erf", 1, un_backward)
UN_DEF(sin, "Sin", 7, un_backward)
UN_DEF(cos, "Cos", 7, un_backward)
UN_DEF(tan, "Tan", 7, un_backward)
UN_DEF(asin, "Asin", 7, un_backward)
UN_DEF(acos, "Acos", 7, un_backward)
UN_DEF(atan, "Atan", 7, un_backward)
UN_DEF(sinh, "Sinh", 9, un_backward)
UN_DEF(cosh, "Cosh", 9, un_backward)
UN_DEF(asinh, "Asinh", 9, un_backward)
UN_DEF(acosh, "Acosh", 9, un_backward)
UN_DEF(atanh, "Atanh", 9, un_backward)
UN_DEF(floor, "Floor", 1, NULL)
UN_DEF(ceil, "Ceil", 1, NULL)
UN_DEF(round, "Round", 11, NULL)
UN_DEF(sign, "Sign", 9, NULL)

/* ---- shared helpers -------------------------------------------------------- */

void graft__light_copy(const graft_op_call *c, void *dst, const void *src, size_t nbytes)
{
    if (dst == src || nbytes == 0)
        return;
    int nt = lu_threads(c, (int64_t)(nbytes / 4));
    if (nt == 1) {
        memcpy(dst, src, nbytes);
        return;
    }
    size_t chunk = ((nbytes + (size_t)nt - 1) / (size_t)nt + 63) & ~(size_t)63;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t s = 0; s < nbytes; s += chunk)
        memcpy((char *)dst + s, (const char *)src + s, nbytes - s < chunk ? nbytes - s : chunk);
}
