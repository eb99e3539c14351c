/* Softmax, LogSoftmax and Hardmax over one axis (opset >= 13, default axis -1)
 * or over the input coerced to 2-D at `axis` (opset < 13, default axis 1). Both
 * forms reduce to [outer, n, inner]: coerced = [prod(d<axis), prod(d>=axis), 1].
 *
 *   Softmax     y = e^(x - max) / sum e^(x - max)    dx += y (dy - sum(dy y))
 *   LogSoftmax  y = x - max - log sum e^(x - max)    dx += dy - e^y sum(dy)
 *   Hardmax     y = one_hot(argmax x)                no gradient (zero almost
 *               everywhere: training through it would silently learn nothing)
 */
#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "ops/light_math.h"
#include "ops/light_util.h"

typedef struct softmax_params {
    int64_t axis;
    bool coerce_2d;
    bool log;
} softmax_params;

static graft_status softmax_parse(const graft_graph *g, const graft_node *n, void *params,
                                  graft_error *err)
{
    (void)g;
    softmax_params *p = params;
    p->log = !strcmp(n->op_type, "LogSoftmax");
    p->coerce_2d = n->opset > 0 && n->opset < 13;
    p->axis = graft_node_attr_int(n, "axis", p->coerce_2d ? 1 : -1);
    return lu_check_inputs(err, n, 1, 1);
}

/* [outer, n, inner] view of x; false if the axis is out of range. */
static bool softmax_view(const softmax_params *p, const graft_tensor *x, int64_t *outer,
                         int64_t *n, int64_t *inner)
{
    int r = x->rank, ax = 0;
    if (r == 0) {
        /* a scalar: one group of one */
        if (p->axis != 0 && p->axis != -1)
            return false;
        *outer = *n = *inner = 1;
        return true;
    }
    if (p->coerce_2d) {
        /* axis == rank is allowed here: everything is one row of the outer dim */
        if (p->axis < -r || p->axis > r)
            return false;
        ax = (int)(p->axis < 0 ? p->axis + r : p->axis);
        *outer = graft_shape_nelem(ax, x->dims);
        *n = graft_shape_nelem(r - ax, x->dims + ax);
        *inner = 1;
        return true;
    }
    if (!lu_axis(p->axis, r, &ax))
        return false;
    *outer = graft_shape_nelem(ax, x->dims);
    *n = x->dims[ax];
    *inner = graft_shape_nelem(r - ax - 1, x->dims + ax + 1);
    return true;
}

static graft_status softmax_infer(graft_op_call *c)
{
    const softmax_params *p = c->params;
    const graft_tensor *x = c->in[0];
    int64_t o = 0, n = 0, in = 0;
    if (x->dtype != GRAFT_FLOAT)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "element type %s is not supported",
                              graft_dtype_name(x->dtype));
    if (!softmax_view(p, x, &o, &n, &in))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is out of range for rank %d",
                              (long long)p->axis, x->rank);
    lu_copy_shape(c->out[0], x);
    return GRAFT_OK;
}

/* One contiguous row of n (inner == 1, the classifier case). */
static void softmax_row(const float *x, float *y, int64_t n, bool lg)
{
    float mx = graft__vmax(x, n);
    if (mx == -INFINITY)
        mx = 0.0f;
    float s = 0.0f;
    if (lg) {
        s = graft__vexp_shift_sum(x, mx, NULL, n);
        /* (x - max) - log s: folding max into one constant loses digits */
        float l = logf(s);
        for (int64_t i = 0; i < n; i++)
            y[i] = (x[i] - mx) - l;
    } else {
        s = graft__vexp_shift_sum(x, mx, y, n);
        float r = 1.0f / s;
        for (int64_t i = 0; i < n; i++)
            y[i] *= r;
    }
}

/* One [n, inner] block, reducing over n with inner contiguous. acc holds
 * 3*inner floats. */
static void softmax_block(const float *x, float *y, int64_t n, int64_t inner, bool lg, float *acc)
{
    float *mx = acc, *s = acc + inner;
    for (int64_t j = 0; j < inner; j++) {
        mx[j] = -INFINITY;
        s[j] = 0.0f;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < inner; j++)
            mx[j] = x[i * inner + j] > mx[j] ? x[i * inner + j] : mx[j];
    for (int64_t j = 0; j < inner; j++)
        mx[j] = mx[j] == -INFINITY ? 0.0f : mx[j];
    for (int64_t i = 0; i < n; i++) {
        /* exponentials of one row of inner values at a time, vectorised */
        float *e = lg ? acc + 2 * inner : y + i * inner;
        for (int64_t j = 0; j < inner; j++)
            e[j] = x[i * inner + j] - mx[j];
        graft__vexp(e, e, inner);
        for (int64_t j = 0; j < inner; j++)
            s[j] += e[j];
    }
    if (lg) {
        for (int64_t j = 0; j < inner; j++)
            s[j] = logf(s[j]);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < inner; j++)
                y[i * inner + j] = (x[i * inner + j] - mx[j]) - s[j];
    } else {
        for (int64_t j = 0; j < inner; j++)
            s[j] = 1.0f / s[j];
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < inner; j++)
                y[i * inner + j] *= s[j];
    }
}

static graft_status softmax_forward(graft_op_call *c)
{
    const softmax_params *p = c->params;
    int64_t outer = 0, n = 0, inner = 0;
    if (!softmax_view(p, c->in[0], &outer, &n, &inner))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "axis out of range");
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    if (outer * n * inner == 0)
        return GRAFT_OK;
    int nt = lu_threads(c, outer * n * inner * 16);
    if (nt > outer)
        nt = (int)outer;
    if (inner == 1) {
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
        for (int64_t o = 0; o < outer; o++)
            softmax_row(x + o * n, y + o * n, n, p->log);
        return GRAFT_OK;
    }
    float *acc = malloc((size_t)nt * 3 * (size_t)inner * sizeof *acc);
    if (!acc)
        return graft__op_fail(c, GRAFT_ERR_NOMEM, "out of memory");
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t o = 0; o < outer; o++) {
#ifdef _OPENMP
        int t = omp_get_thread_num();
#else
        int t = 0;
#endif
        softmax_block(x + o * n * inner, y + o * n * inner, n, inner, p->log,
                      acc + (size_t)t * 3 * (size_t)inner);
    }
    free(acc);
    return GRAFT_OK;
}

static graft_status softmax_backward(graft_op_call *c)
{
    const softmax_params *p = c->params;
    if (!c->d_in[0] || !c->d_out[0])
        return GRAFT_OK;
    int64_t outer = 0, n = 0, inner = 0;
    if (!softmax_view(p, c->in[0], &outer, &n, &inner))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "axis out of range");
    const float *y = c->out[0]->data, *dy = c->d_out[0]->data;
    float *dx = c->d_in[0]->data;
    for (int64_t o = 0; o < outer; o++) {
        const float *yo = y + o * n * inner, *go = dy + o * n * inner;
        float *dxo = dx + o * n * inner;
        for (int64_t j = 0; j < inner; j++) {
            float s = 0.0f;
            if (p->log) {
                for (int64_t i = 0; i < n; i++)
                    s += go[i * inner + j];
                for (int64_t i = 0; i < n; i++)
                    dxo[i * inner + j] += go[i * inner + j] - expf(yo[i * inner + j]) * s;
            } else {
                for (int64_t i = 0; i < n; i++)
                    s += go[i * inner + j] * yo[i * inner + j];
                for (int64_t i = 0; i < n; i++)
                    dxo[i * inner + j] += yo[i * inner + j] * (go[i * inner + j] - s);
            }
        }
    }
    return GRAFT_OK;
}

/* First maximum wins, as np.argmax: ties go to the lowest index and a NaN
 * counts as the maximum (the first NaN). */
static graft_status hardmax_forward(graft_op_call *c)
{
    const softmax_params *p = c->params;
    int64_t outer = 0, n = 0, inner = 0;
    if (!softmax_view(p, c->in[0], &outer, &n, &inner))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "axis out of range");
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    int64_t total = outer * n * inner;
    for (int64_t i = 0; i < total; i++)
        y[i] = 0.0f;
    if (n == 0)
        return GRAFT_OK;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            const float *xo = x + o * n * inner + j;
            int64_t best = 0;
            float mx = xo[0];
            for (int64_t i = 1; i < n && mx == mx; i++) {
                float v = xo[i * inner];
                if (v > mx || v != v) {
                    mx = v;
                    best = i;
                }
            }
            y[o * n * inner + best * inner + j] = 1.0f;
        }
    return GRAFT_OK;
}

const graft_op_def graft__op_softmax = {
    .op_type = "Softmax", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(softmax_params), .parse = softmax_parse, .infer = softmax_infer,
    .forward = softmax_forward, .backward = softmax_backward};

const graft_op_def graft__op_log_softmax = {
    .op_type = "LogSoftmax", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(softmax_params), .parse = softmax_parse, .infer = softmax_infer,
    .forward = softmax_forward, .backward = softmax_backward};

const graft_op_def graft__op_hardmax = {
    .op_type = "Hardmax", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(softmax_params), .parse = softmax_parse, .infer = softmax_infer,
    .forward = hardmax_forward, .backward = NULL};
