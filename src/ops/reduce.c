/* Reductions over a set of axes: y[o] = R over the x[i] that map to o.
 *
 *   ReduceSum        y = sum x            dx += dy
 *   ReduceMean       y = sum x / count    dx += dy / count
 *   ReduceSumSquare  y = sum x^2          dx += 2 x dy
 *   ReduceL1         y = sum |x|          dx += sign(x) dy
 *   ReduceL2         y = sqrt(sum x^2)    dx += x / y dy            (0 where y == 0)
 *   ReduceLogSum     y = log sum x        dx += dy / e^y
 *   ReduceLogSumExp  y = log sum e^x      dx += e^(x - y) dy        (shifted by the max)
 *   ReduceMax / Min  y = max / min x      dx += dy at the first extreme in row-major order
 *   ReduceProd       y = prod x           no gradient
 *
 * Axes are an attribute up to opset 12 for ReduceSum and up to 17 for the
 * others, an optional int64 input from then on; absent or empty axes reduce
 * every axis, unless noop_with_empty_axes (input form only) passes x through.
 * The input form needs the axes when the plan is built: the output shape
 * depends on them.
 *
 * The kernel walks x once in memory order with an odometer over the dims
 * (adjacent reduced or kept dims merged, size-1 dims dropped), so the inner
 * loop either folds a contiguous run into one y or combines a run of x into a
 * run of y; no index division per element. Float and int64 (shape
 * arithmetic); int64 wraps like two's complement. */
#include <math.h>
#include <stdlib.h>

#include "ops/light_util.h"
#include "ops/reduce_walk.h"

enum red_kind {
    RED_SUM, RED_MEAN, RED_MAX, RED_MIN, RED_PROD, RED_L1, RED_L2, RED_SUMSQ, RED_LOGSUM,
    RED_LSE, RED_COUNT
};

static const char *const red_names[RED_COUNT] = {
    "ReduceSum", "ReduceMean", "ReduceMax",       "ReduceMin",    "ReduceProd",
    "ReduceL1",  "ReduceL2",   "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"};

typedef struct reduce_params {
    int kind; /* enum red_kind */
    bool keepdims, noop_empty;
    bool axes_input; /* axes come from input 1 (ReduceSum >= 13, the others >= 18) */
    int n_axes;      /* attribute form: count, -1 when absent */
    int64_t axes[GRAFT_MAX_RANK];
} reduce_params;

static graft_status reduce_parse(const graft_graph *g, const graft_node *n, void *params,
                                 graft_error *err)
{
    (void)g;
    reduce_params *p = params;
    p->kind = -1;
    for (int i = 0; i < RED_COUNT; i++)
        if (!strcmp(n->op_type, red_names[i]))
            p->kind = i;
    if (p->kind < 0)
        return lu_node_fail(err, n, GRAFT_ERR_INTERNAL, "not a reduction");
    /* opset 0 (unknown) reads as the newest form, as elsewhere */
    int since = p->kind == RED_SUM ? 13 : 18;
    p->axes_input = n->opset <= 0 || n->opset >= since;
    p->keepdims = graft_node_attr_int(n, "keepdims", 1) != 0;
    p->noop_empty = p->axes_input && graft_node_attr_int(n, "noop_with_empty_axes", 0) != 0;
    p->n_axes = -1;
    const int64_t *ax = NULL;
    int cnt = graft_node_attr_ints(n, "axes", &ax);
    if (p->axes_input) {
        if (cnt >= 0)
            return lu_node_fail(err, n, GRAFT_ERR_INVALID,
                                "%s-%d takes axes as input 1, not as an attribute", n->op_type,
                                n->opset);
        return lu_check_inputs(err, n, 1, 2);
    }
    if (cnt > GRAFT_MAX_RANK)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "%d axes for at most rank %d", cnt,
                            GRAFT_MAX_RANK);
    p->n_axes = cnt;
    for (int i = 0; i < cnt; i++)
        p->axes[i] = ax[i];
    return lu_check_inputs(err, n, 1, 1);
}

/* Marks the reduced dims of x in red; *noop: x passes through unchanged.
 * Fails when the axes input has no data (infer: not known at build time). */
static graft_status reduce_mask(graft_op_call *c, const graft_tensor *x, bool *red, bool *noop)
{
    const reduce_params *p = c->params;
    int64_t buf[GRAFT_MAX_RANK];
    const int64_t *ax = p->axes;
    int64_t cnt = p->n_axes;
    const graft_tensor *t = p->axes_input && c->n_in > 1 ? c->in[1] : NULL;
    if (t) {
        const char *name = c->graph->values[c->node->inputs[1]].name;
        if (t->dtype != GRAFT_INT64 || t->rank > 1)
            return graft__op_fail(c, GRAFT_ERR_INVALID,
                                  "axes input '%s' must be a 1-D int64 tensor, got %s of rank %d",
                                  name, graft_dtype_name(t->dtype), t->rank);
        cnt = graft_tensor_nelem(t);
        if (cnt > 0 && !t->data)
            return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED,
                                  "axes input '%s' is computed at run time; graft needs it when "
                                  "the plan is built (an initializer or a Constant)",
                                  name);
        if (cnt > GRAFT_MAX_RANK)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "%lld axes for a rank-%d input",
                                  (long long)cnt, x->rank);
        for (int64_t i = 0; i < cnt; i++)
            buf[i] = graft_tensor_i64(t)[i];
        ax = buf;
    }
    *noop = false;
    if (cnt <= 0) {
        *noop = p->noop_empty;
        for (int i = 0; i < x->rank; i++)
            red[i] = !*noop;
        return GRAFT_OK;
    }
    for (int i = 0; i < x->rank; i++)
        red[i] = false;
    for (int64_t i = 0; i < cnt; i++) {
        int a = 0;
        if (!lu_axis(ax[i], x->rank, &a))
            return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is out of range for rank %d",
                                  (long long)ax[i], x->rank);
        if (red[a])
            return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is given twice",
                                  (long long)ax[i]);
        red[a] = true;
    }
    return GRAFT_OK;
}

static bool float_only(int kind)
{
    return kind == RED_L2 || kind == RED_LOGSUM || kind == RED_LSE;
}

static graft_status reduce_infer(graft_op_call *c)
{
    const reduce_params *p = c->params;
    const graft_tensor *x = c->in[0];
    if (x->dtype != GRAFT_FLOAT && !(x->dtype == GRAFT_INT64 && !float_only(p->kind)))
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "element type %s is not supported",
                              graft_dtype_name(x->dtype));
    bool red[GRAFT_MAX_RANK], noop = false;
    graft_status st = reduce_mask(c, x, red, &noop);
    if (st)
        return st;
    int r = 0;
    int64_t dims[GRAFT_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        if (!red[i])
            dims[r++] = x->dims[i];
        else if (p->keepdims)
            dims[r++] = 1;
    lu_set_shape(c->out[0], x->dtype, r, dims);
    return GRAFT_OK;
}

/* ---- the walk ------------------------------------------------------------ */

/* The walk (ops/reduce_walk.h) and whether x passes through unchanged. */
typedef struct rplan {
    graft__rwalk w;
    bool noop;
} rplan;

static graft_status rplan_make(graft_op_call *c, rplan *rp)
{
    bool red[GRAFT_MAX_RANK];
    graft_status st = reduce_mask(c, c->in[0], red, &rp->noop);
    if (st)
        return st;
    graft__rwalk_make(c->in[0], red, &rp->w);
    return GRAFT_OK;
}

/* ---- forward ------------------------------------------------------------- */

static inline float f_max(float a, float v) { return (v > a || v != v) ? v : a; }
static inline float f_min(float a, float v) { return (v < a || v != v) ? v : a; }

/* Folds x[0..n) into y (ys == 0: y[0]; ys != 0: y[i]); e holds the max
 * subtracted before e^ (LogSumExp), indexed like y. */
static void fold_f32(int kind, const float *x, float *y, int64_t ys, int64_t n, const float *e)
{
#define FOLD(EXPR)                                                                            \
    do {                                                                                      \
        if (ys == 0) {                                                                        \
            float a = y[0];                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                 \
                float v = x[i], m = e ? e[0] : 0.0f;                                          \
                (void)m;                                                                      \
                a = (EXPR);                                                                   \
            }                                                                                 \
            y[0] = a;                                                                         \
        } else {                                                                              \
            for (int64_t i = 0; i < n; i++) {                                                 \
                float a = y[i], v = x[i], m = e ? e[i] : 0.0f;                                \
                (void)m;                                                                      \
                y[i] = (EXPR);                                                                \
            }                                                                                 \
        }                                                                                     \
    } while (0)
    switch (kind) {
    case RED_MAX: FOLD(f_max(a, v)); break;
    case RED_MIN: FOLD(f_min(a, v)); break;
    case RED_PROD: FOLD(a * v); break;
    case RED_L1: FOLD(a + fabsf(v)); break;
    case RED_L2: case RED_SUMSQ: FOLD(a + v * v); break;
    case RED_LSE: FOLD(a + expf(v - m)); break;
    default: FOLD(a + v); break;
    }
#undef FOLD
}

#define WRAP(a, op, v) ((int64_t)((uint64_t)(a)op(uint64_t)(v)))

static void fold_i64(int kind, const int64_t *x, int64_t *y, int64_t ys, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t *a = ys ? y + i : y, v = x[i];
        switch (kind) {
        case RED_MAX: *a = v > *a ? v : *a; break;
        case RED_MIN: *a = v < *a ? v : *a; break;
        case RED_PROD: *a = WRAP(*a, *, v); break;
        case RED_L1: *a = WRAP(*a, +, v < 0 ? 0 - (uint64_t)v : (uint64_t)v); break;
        case RED_SUMSQ: *a = WRAP(*a, +, (uint64_t)v * (uint64_t)v); break;
        default: *a = WRAP(*a, +, v); break;
        }
    }
}
#undef WRAP

/* The value of an empty reduction: -inf for Max (ReduceMax-18), and so on. */
static float init_f32(int kind)
{
    return kind == RED_MAX   ? -INFINITY
           : kind == RED_MIN ? INFINITY
           : kind == RED_PROD ? 1.0f
                              : 0.0f;
}

static int64_t init_i64(int kind)
{
    return kind == RED_MAX ? INT64_MIN : kind == RED_MIN ? INT64_MAX : kind == RED_PROD ? 1 : 0;
}

static graft_status reduce_forward(graft_op_call *c)
{
    const reduce_params *p = c->params;
    const graft_tensor *tx = c->in[0];
    graft_tensor *ty = c->out[0];
    rplan rp;
    graft_status st = rplan_make(c, &rp);
    if (st)
        return st;
    if (rp.noop) {
        graft__light_copy(c, ty->data, tx->data, (size_t)rp.w.n_x * graft_dtype_size(tx->dtype));
        return GRAFT_OK;
    }
    int kind = p->kind;
    if (tx->dtype == GRAFT_INT64) {
        const int64_t *x = tx->data;
        int64_t *y = ty->data;
        for (int64_t i = 0; i < rp.w.n_y; i++)
            y[i] = init_i64(kind);
#define ROW_I64(xo, yo, yst, len) fold_i64(kind, x + (xo), y + (yo), yst, len)
        GRAFT__RWALK(&rp.w, ROW_I64);
#undef ROW_I64
        if (kind == RED_MEAN)
            for (int64_t i = 0; i < rp.w.n_y; i++)
                y[i] = rp.w.count ? y[i] / rp.w.count : 0;
        return GRAFT_OK;
    }
    const float *x = tx->data;
    float *y = ty->data, *e = NULL;
    bool owned = false;
    if (kind == RED_LSE) {
        /* e^(x - max) cannot overflow; an infinite max shifts by 0 so that
         * inf - inf never appears */
        e = lu_work(c, (size_t)rp.w.n_y * sizeof *e, &owned);
        if (!e)
            return graft__op_fail(c, GRAFT_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; i < rp.w.n_y; i++)
            e[i] = -INFINITY;
#define ROW_MAX(xo, yo, yst, len) fold_f32(RED_MAX, x + (xo), e + (yo), yst, len, NULL)
        GRAFT__RWALK(&rp.w, ROW_MAX);
#undef ROW_MAX
        for (int64_t i = 0; i < rp.w.n_y; i++)
            e[i] = isfinite(e[i]) ? e[i] : 0.0f;
    }
    for (int64_t i = 0; i < rp.w.n_y; i++)
        y[i] = init_f32(kind);
#define ROW_F32(xo, yo, yst, len)                                                             \
    fold_f32(kind, x + (xo), y + (yo), yst, len, e ? e + (yo) : NULL)
    GRAFT__RWALK(&rp.w, ROW_F32);
#undef ROW_F32
    for (int64_t i = 0; i < rp.w.n_y; i++) {
        switch (kind) {
        case RED_MEAN: y[i] /= (float)rp.w.count; break;
        case RED_L2: y[i] = sqrtf(y[i]); break;
        case RED_LOGSUM: y[i] = logf(y[i]); break;
        case RED_LSE: y[i] = e[i] + logf(y[i]); break;
        default: break;
        }
    }
    lu_work_free(e, owned);
    return GRAFT_OK;
}

/* ---- backward ------------------------------------------------------------ */

/* dx[0..n) += d(y)/d(x) dy for one inner row; ys as in fold_f32. */
static void grad_row(int kind, const float *x, const float *y, const float *dy, int64_t ys,
                     int64_t n, float scale, float *dx)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t o = ys ? i : 0;
        float g = dy[o], v = x[i];
        switch (kind) {
        case RED_MEAN: dx[i] += g * scale; break;
        case RED_SUMSQ: dx[i] += 2.0f * v * g; break;
        case RED_L1: dx[i] += v > 0 ? g : v < 0 ? -g : 0.0f; break;
        case RED_L2: dx[i] += y[o] > 0 ? g * v / y[o] : 0.0f; break;
        case RED_LOGSUM: dx[i] += g / expf(y[o]); break;
        case RED_LSE: dx[i] += g * expf(v - y[o]); break;
        default: dx[i] += g; break;
        }
    }
}

/* Max/Min: the whole gradient goes to the first x equal to y; done marks
 * the outputs already served. */
static void grad_row_extreme(const float *x, const float *y, const float *dy, int64_t ys,
                             int64_t n, unsigned char *done, float *dx)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t o = ys ? i : 0;
        bool hit = x[i] == y[o] || (x[i] != x[i] && y[o] != y[o]);
        if (!done[o] && hit) {
            dx[i] += dy[o];
            done[o] = 1;
        }
    }
}

static graft_status reduce_backward(graft_op_call *c)
{
    const reduce_params *p = c->params;
    if (!c->d_in[0] || !c->d_out[0])
        return GRAFT_OK;
    if (c->in[0]->dtype != GRAFT_FLOAT)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "no gradient for integer input");
    rplan rp;
    graft_status st = rplan_make(c, &rp);
    if (st)
        return st;
    const float *x = c->in[0]->data, *y = c->out[0]->data, *dy = c->d_out[0]->data;
    float *dx = c->d_in[0]->data;
    int kind = p->kind;
    if (rp.noop) {
        for (int64_t i = 0; i < rp.w.n_x; i++)
            dx[i] += dy[i];
        return GRAFT_OK;
    }
    if (kind == RED_MAX || kind == RED_MIN) {
        bool owned = false;
        unsigned char *done = lu_work(c, (size_t)rp.w.n_y, &owned);
        if (!done)
            return graft__op_fail(c, GRAFT_ERR_NOMEM, "out of memory");
        memset(done, 0, (size_t)rp.w.n_y);
#define ROW_EXT(xo, yo, yst, len)                                                             \
    grad_row_extreme(x + (xo), y + (yo), dy + (yo), yst, len, done + (yo), dx + (xo))
        GRAFT__RWALK(&rp.w, ROW_EXT);
#undef ROW_EXT
        lu_work_free(done, owned);
        return GRAFT_OK;
    }
    float scale = rp.w.count ? 1.0f / (float)rp.w.count : 0.0f;
#define ROW_GRAD(xo, yo, yst, len)                                                            \
    grad_row(kind, x + (xo), y + (yo), dy + (yo), yst, len, scale, dx + (xo))
    GRAFT__RWALK(&rp.w, ROW_GRAD);
#undef ROW_GRAD
    return GRAFT_OK;
}

#define REDUCE_DEF(ident, name, bwd)                                                         \
    const graft_op_def graft__op_##ident = {                                                  \
        .op_type = name, .domain = "", .min_opset = 1, .flags = 0,                           \
        .params_size = sizeof(reduce_params), .parse = reduce_parse, .infer = reduce_infer,  \
        .forward = reduce_forward, .backward = bwd};

REDUCE_DEF(reduce_sum, "ReduceSum", reduce_backward)
REDUCE_DEF(reduce_mean, "ReduceMean", reduce_backward)
REDUCE_DEF(reduce_max, "ReduceMax", reduce_backward)
REDUCE_DEF(reduce_min, "ReduceMin", reduce_backward)
REDUCE_DEF(reduce_prod, "ReduceProd", NULL)
REDUCE_DEF(reduce_l1, "ReduceL1", reduce_backward)
REDUCE_DEF(reduce_l2, "ReduceL2", reduce_backward)
REDUCE_DEF(reduce_sum_square, "ReduceSumSquare", reduce_backward)
REDUCE_DEF(reduce_log_sum, "ReduceLogSum", reduce_backward)
REDUCE_DEF(reduce_log_sum_exp, "ReduceLogSumExp", reduce_backward)
