/* Normalisations that compute their statistics from the input itself.
 *
 *   LRN      s = bias + alpha/size * sum_{j in win(c)} x_j^2,  y_c = x_c s_c^-beta, over
 *            channels (dim 1), win(c) = [c - floor((size-1)/2), c + ceil((size-1)/2)];
 *            dx_k += dy_k s_k^-beta - 2 beta alpha/size x_k sum_{c: k in win(c)} dy_c y_c / s_c
 *   InstanceNormalization  per (n, c) over the spatial dims:
 *   LayerNormalization     per row of X[:axis] over X[axis:] (Scale and B of that
 *                          many elements, or broadcasting to X[axis:]):
 *            xh = (x - mean) r,  r = 1/sqrt(var + eps),  y = xh scale + B
 *            dB += sum dy,  dscale += sum dy xh,  g = dy scale,
 *            dx += r (g - mean(g) - xh mean(g xh))
 *            (LayerNormalization's Mean and InvStdDev outputs add dmean/M and
 *            -dr r^2 xh / M to dx)
 *   MeanVarianceNormalization  over `axes` (default [0,2,3]), as its ONNX function:
 *            y = u / d,  u = x - mean,  d = sqrt(var) + 1e-9
 *            dx += (dy - mean(dy)) / d - u mean(dy u) / (d^2 sqrt(var))
 *
 * Variances are population variances computed from deviations (two passes)
 * with double accumulators; backward recomputes the statistics from X rather
 * than keeping them. Float only.
 */
#include <math.h>
#include <stdlib.h>

#include "ops/light_util.h"
#include "ops/reduce_walk.h"

enum norm_kind { NK_LRN, NK_INSTANCE, NK_LAYER, NK_MVN };

/* ONNX MeanVarianceNormalization's fixed epsilon, added to the std dev. */
#define MVN_EPS 1e-9f

typedef struct norm_params {
    int kind;
    float alpha, beta, bias; /* LRN */
    int64_t size;            /* LRN window */
    float eps;               /* Instance/Layer */
    int64_t axis;            /* Layer */
    int n_axes;              /* MVN */
    int64_t axes[GRAFT_MAX_RANK];
} norm_params;

static int n_threads_for(const graft_op_call *c, int64_t work_elems, int64_t tasks)
{
    int nt = lu_threads(c, work_elems);
    return tasks < nt ? (int)(tasks > 0 ? tasks : 1) : nt;
}

static graft_status need_float(graft_op_call *c, int i, const char *what)
{
    const graft_tensor *t = c->in[i];
    if (t->dtype != GRAFT_FLOAT)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "%s is %s; only floating types are supported",
                              what, graft_dtype_name(t->dtype));
    return GRAFT_OK;
}

/* ---- parse --------------------------------------------------------------- */

static graft_status check_io(graft_error *err, const graft_node *n, int lo, int hi, int max_out)
{
    if (n->n_outputs > max_out)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "%s has at most %d output%s, got %d",
                            n->op_type, max_out, max_out == 1 ? "" : "s", n->n_outputs);
    return lu_check_inputs(err, n, lo, hi);
}

static graft_status lrn_parse(const graft_graph *g, const graft_node *n, void *params,
                              graft_error *err)
{
    (void)g;
    norm_params *p = params;
    p->kind = NK_LRN;
    p->alpha = graft_node_attr_float(n, "alpha", 1e-4f);
    p->beta = graft_node_attr_float(n, "beta", 0.75f);
    p->bias = graft_node_attr_float(n, "bias", 1.0f);
    if (!graft_node_attr(n, "size"))
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "the size attribute is required");
    p->size = graft_node_attr_int(n, "size", 0);
    if (p->size < 1)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "size must be positive, got %lld",
                            (long long)p->size);
    return check_io(err, n, 1, 1, 1);
}

static graft_status instance_parse(const graft_graph *g, const graft_node *n, void *params,
                                   graft_error *err)
{
    (void)g;
    norm_params *p = params;
    p->kind = NK_INSTANCE;
    p->eps = graft_node_attr_float(n, "epsilon", 1e-5f);
    return check_io(err, n, 3, 3, 1);
}

static graft_status layer_parse(const graft_graph *g, const graft_node *n, void *params,
                                graft_error *err)
{
    (void)g;
    norm_params *p = params;
    p->kind = NK_LAYER;
    p->eps = graft_node_attr_float(n, "epsilon", 1e-5f);
    p->axis = graft_node_attr_int(n, "axis", -1);
    /* The statistics are always computed in float32 (or wider), which is what
     * any floating stash type asks for once the importer has widened X. */
    int64_t st = graft_node_attr_int(n, "stash_type", 1);
    if (lu_compute_dtype((graft_dtype)st) != GRAFT_FLOAT)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID,
                            "stash_type %lld is not a floating element type", (long long)st);
    return check_io(err, n, 2, 3, 3);
}

static graft_status mvn_parse(const graft_graph *g, const graft_node *n, void *params,
                              graft_error *err)
{
    (void)g;
    norm_params *p = params;
    p->kind = NK_MVN;
    const int64_t *ax = NULL;
    int cnt = graft_node_attr_ints(n, "axes", &ax);
    if (cnt < 0) {
        static const int64_t dflt[3] = {0, 2, 3};
        ax = dflt;
        cnt = 3;
    }
    if (cnt > GRAFT_MAX_RANK)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "%d axes for at most rank %d", cnt,
                            GRAFT_MAX_RANK);
    p->n_axes = cnt;
    for (int i = 0; i < cnt; i++)
        p->axes[i] = ax[i];
    return check_io(err, n, 1, 1, 1);
}

/* ---- shared row statistics ------------------------------------------------ */

/* Mean and 1/sqrt(var + eps) of one contiguous row; deviations in the second
 * pass keep the digits that E[x^2] - E[x]^2 loses. */
static void row_stats(const float *x, int64_t m, float eps, float *mean, float *inv)
{
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < m; i++)
        s += x[i];
    float mu = (float)(s / (double)m);
    double v = 0.0;
#pragma omp simd reduction(+ : v)
    for (int64_t i = 0; i < m; i++) {
        float d = x[i] - mu;
        v += (double)d * d;
    }
    *mean = mu;
    *inv = (float)(1.0 / sqrt(v / (double)m + eps));
}

/* sum g and sum g xh over one row, xh = (x - mu) r. */
static void row_grad_sums(const float *x, const float *g, int64_t m, float mu, float r,
                          double *sg, double *sgx)
{
    double a = 0.0, b = 0.0;
#pragma omp simd reduction(+ : a, b)
    for (int64_t i = 0; i < m; i++) {
        a += g[i];
        b += (double)g[i] * ((x[i] - mu) * r);
    }
    *sg = a;
    *sgx = b;
}

/* ---- LRN ----------------------------------------------------------------- */

static graft_status lrn_infer(graft_op_call *c)
{
    const graft_tensor *x = c->in[0];
    graft_status st = need_float(c, 0, "X");
    if (st)
        return st;
    if (x->rank < 3)
        return graft__op_fail(c, GRAFT_ERR_INVALID,
                              "X must be N x C x D1 x ... (rank >= 3), got rank %d", x->rank);
    lu_copy_shape(c->out[0], x);
    return GRAFT_OK;
}

/* The channel window of c in [0, nc): lo..hi inclusive. */
static void lrn_window(const norm_params *p, int64_t ch, int64_t nc, int64_t *lo, int64_t *hi)
{
    int64_t before = (p->size - 1) / 2, after = p->size - 1 - before;
    *lo = ch - before < 0 ? 0 : ch - before;
    *hi = after > nc - 1 - ch ? nc - 1 : ch + after;
}

/* y = x s^-beta over one plane of m; s comes in y. */
static void lrn_scale(const float *x, float *y, int64_t m, float a, float bias, float beta)
{
    if (beta == 0.75f) {
        /* s^-3/4 = r sqrt(r), r = 1/sqrt(s): vectorises where powf does not */
        for (int64_t i = 0; i < m; i++) {
            float r = 1.0f / sqrtf(bias + a * y[i]);
            y[i] = x[i] * r * sqrtf(r);
        }
    } else if (beta == 0.5f) {
        for (int64_t i = 0; i < m; i++)
            y[i] = x[i] / sqrtf(bias + a * y[i]);
    } else {
        for (int64_t i = 0; i < m; i++)
            y[i] = x[i] * powf(bias + a * y[i], -beta);
    }
}

/* acc = sum of squares of x over the window of channel ch (planes of m). */
static void lrn_sumsq(const norm_params *p, const float *xn, int64_t nc, int64_t m, int64_t ch,
                      float *acc)
{
    int64_t lo, hi;
    lrn_window(p, ch, nc, &lo, &hi);
    for (int64_t i = 0; i < m; i++)
        acc[i] = 0.0f;
    for (int64_t j = lo; j <= hi; j++) {
        const float *xj = xn + j * m;
        for (int64_t i = 0; i < m; i++)
            acc[i] += xj[i] * xj[i];
    }
}

static graft_status lrn_forward(graft_op_call *c)
{
    const norm_params *p = c->params;
    const graft_tensor *xt = c->in[0];
    const float *x = xt->data;
    float *y = c->out[0]->data;
    int64_t nb = xt->dims[0], nc = xt->dims[1];
    int64_t m = graft_shape_nelem(xt->rank - 2, xt->dims + 2);
    float a = p->alpha / (float)p->size;
    int64_t planes = nb * nc;
    int nt = n_threads_for(c, planes * m * 4, planes);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t pl = 0; pl < planes; pl++) {
        int64_t n = pl / nc, ch = pl % nc;
        float *yp = y + pl * m;
        lrn_sumsq(p, x + n * nc * m, nc, m, ch, yp);
        lrn_scale(x + pl * m, yp, m, a, p->bias, p->beta);
    }
    return GRAFT_OK;
}

static graft_status lrn_backward(graft_op_call *c)
{
    const norm_params *p = c->params;
    if (!c->d_in[0] || !c->d_out[0])
        return GRAFT_OK;
    const graft_tensor *xt = c->in[0];
    const float *x = xt->data, *y = c->out[0]->data, *dy = c->d_out[0]->data;
    float *dx = c->d_in[0]->data;
    int64_t nb = xt->dims[0], nc = xt->dims[1];
    int64_t m = graft_shape_nelem(xt->rank - 2, xt->dims + 2);
    float a = p->alpha / (float)p->size, k2 = -2.0f * p->beta * a;
    /* per image: s and t = dy y / s for every channel plane */
    bool owned;
    float *buf = lu_work(c, (size_t)(2 * nc * m) * sizeof(float), &owned);
    if (!buf)
        return graft__op_fail(c, GRAFT_ERR_NOMEM, "out of memory");
    float *s = buf, *t = buf + nc * m;
    int nt = n_threads_for(c, nc * m * 4, nc);
    for (int64_t n = 0; n < nb; n++) {
        const float *xn = x + n * nc * m, *yn = y + n * nc * m, *gn = dy + n * nc * m;
        float *dxn = dx + n * nc * m;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
        for (int64_t ch = 0; ch < nc; ch++) {
            float *sp = s + ch * m, *tp = t + ch * m;
            lrn_sumsq(p, xn, nc, m, ch, sp);
            const float *yp = yn + ch * m, *gp = gn + ch * m;
            for (int64_t i = 0; i < m; i++) {
                sp[i] = p->bias + a * sp[i];
                tp[i] = gp[i] * yp[i] / sp[i];
            }
        }
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
        for (int64_t k = 0; k < nc; k++) {
            /* channels c whose window holds k: c - before <= k <= c + after */
            int64_t before = (p->size - 1) / 2, after = p->size - 1 - before;
            int64_t lo = k - after < 0 ? 0 : k - after;
            int64_t hi = before > nc - 1 - k ? nc - 1 : k + before;
            const float *xp = xn + k * m, *sp = s + k * m, *gp = gn + k * m;
            float *dp = dxn + k * m;
            /* dy s^-beta = dy y / x would divide by zero; y/x is s^-beta */
            if (p->beta == 0.75f) {
                for (int64_t i = 0; i < m; i++) {
                    float r = 1.0f / sqrtf(sp[i]);
                    dp[i] += gp[i] * r * sqrtf(r);
                }
            } else {
                for (int64_t i = 0; i < m; i++)
                    dp[i] += gp[i] * powf(sp[i], -p->beta);
            }
            for (int64_t j = lo; j <= hi; j++) {
                const float *tj = t + j * m;
                for (int64_t i = 0; i < m; i++)
                    dp[i] += k2 * xp[i] * tj[i];
            }
        }
    }
    lu_work_free(buf, owned);
    return GRAFT_OK;
}

/* ---- InstanceNormalization ------------------------------------------------ */

static graft_status instance_infer(graft_op_call *c)
{
    const graft_tensor *x = c->in[0];
    static const char *const names[3] = {"input", "scale", "B"};
    for (int i = 0; i < 3; i++) {
        graft_status st = need_float(c, i, names[i]);
        if (st)
            return st;
    }
    if (x->rank < 3)
        return graft__op_fail(c, GRAFT_ERR_INVALID,
                              "input must be N x C x D1 x ... (rank >= 3), got rank %d", x->rank);
    for (int i = 1; i < 3; i++) {
        const graft_tensor *t = c->in[i];
        if (t->rank != 1 || t->dims[0] != x->dims[1]) {
            char b1[96], b2[96];
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "%s %s must be [C] for input %s", names[i],
                                  graft_shape_format(t->rank, t->dims, b1, sizeof b1),
                                  graft_shape_format(x->rank, x->dims, b2, sizeof b2));
        }
    }
    lu_copy_shape(c->out[0], x);
    return GRAFT_OK;
}

static graft_status instance_forward(graft_op_call *c)
{
    const norm_params *p = c->params;
    const graft_tensor *xt = c->in[0];
    const float *x = xt->data, *scale = c->in[1]->data, *b = c->in[2]->data;
    float *y = c->out[0]->data;
    int64_t nc = xt->dims[1], planes = xt->dims[0] * nc;
    int64_t m = graft_shape_nelem(xt->rank - 2, xt->dims + 2);
    int nt = n_threads_for(c, planes * m * 2, planes);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t pl = 0; pl < planes; pl++) {
        float mu, r;
        const float *xp = x + pl * m;
        float *yp = y + pl * m;
        row_stats(xp, m, p->eps, &mu, &r);
        float ga = r * scale[pl % nc], be = b[pl % nc] - mu * ga;
        for (int64_t i = 0; i < m; i++)
            yp[i] = xp[i] * ga + be;
    }
    return GRAFT_OK;
}

static graft_status instance_backward(graft_op_call *c)
{
    const norm_params *p = c->params;
    if (!c->d_out[0])
        return GRAFT_OK;
    const graft_tensor *xt = c->in[0];
    const float *x = xt->data, *scale = c->in[1]->data, *dy = c->d_out[0]->data;
    float *dx = c->d_in[0] ? c->d_in[0]->data : NULL;
    float *dscale = c->d_in[1] ? c->d_in[1]->data : NULL;
    float *db = c->d_in[2] ? c->d_in[2]->data : NULL;
    int64_t nc = xt->dims[1], planes = xt->dims[0] * nc;
    int64_t m = graft_shape_nelem(xt->rank - 2, xt->dims + 2);
    bool owned;
    /* per-plane sums, folded per channel afterwards: no races between threads */
    double *sums = lu_work(c, (size_t)(2 * planes) * sizeof(double), &owned);
    if (!sums)
        return graft__op_fail(c, GRAFT_ERR_NOMEM, "out of memory");
    int nt = n_threads_for(c, planes * m * 3, planes);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t pl = 0; pl < planes; pl++) {
        float mu, r;
        const float *xp = x + pl * m, *gp = dy + pl * m;
        row_stats(xp, m, p->eps, &mu, &r);
        double sg, sgx;
        row_grad_sums(xp, gp, m, mu, r, &sg, &sgx);
        sums[2 * pl] = sg;
        sums[2 * pl + 1] = sgx;
        if (dx) {
            float ga = r * scale[pl % nc], mg = (float)(sg / (double)m),
                  mgx = (float)(sgx / (double)m);
            float *dp = dx + pl * m;
            for (int64_t i = 0; i < m; i++)
                dp[i] += ga * (gp[i] - mg - (xp[i] - mu) * r * mgx);
        }
    }
    for (int64_t pl = 0; pl < planes; pl++) {
        if (db)
            db[pl % nc] += (float)sums[2 * pl];
        if (dscale)
            dscale[pl % nc] += (float)sums[2 * pl + 1];
    }
    lu_work_free(sums, owned);
    return GRAFT_OK;
}

/* ---- LayerNormalization --------------------------------------------------- */

/* Scale/B against X[axis:] (rank rt, m elements): flat when it has exactly m
 * elements (the ONNX function flattens it), else it must broadcast to
 * X[axis:] numpy-style; map[j] is then its element for position j. */
static bool layer_param_shape(const graft_tensor *w, int rt, const int64_t *tail, int64_t m,
                              bool *flat)
{
    int64_t n = graft_tensor_nelem(w);
    *flat = n == m;
    if (*flat)
        return true;
    int lead = 0;
    while (lead < w->rank && w->dims[lead] == 1)
        lead++;
    if (w->rank - lead > rt)
        return false;
    for (int k = 0; k < w->rank - lead; k++) {
        int64_t wd = w->dims[w->rank - 1 - k], xd = tail[rt - 1 - k];
        if (wd != 1 && wd != xd)
            return false;
    }
    return true;
}

static void layer_param_map(const graft_tensor *w, int rt, const int64_t *tail, int64_t m,
                            int64_t *map)
{
    int64_t ws[GRAFT_MAX_RANK], idx[GRAFT_MAX_RANK] = {0}, s = 1;
    for (int k = rt - 1; k >= 0; k--) {
        int wk = w->rank - (rt - k); /* aligned W dim, < 0 when absent */
        int64_t wd = wk >= 0 ? w->dims[wk] : 1;
        ws[k] = wd == 1 ? 0 : s;
        s *= wd;
    }
    int64_t off = 0;
    for (int64_t j = 0; j < m; j++) {
        map[j] = off;
        for (int k = rt - 1; k >= 0; k--) {
            off += ws[k];
            if (++idx[k] < tail[k])
                break;
            off -= ws[k] * tail[k];
            idx[k] = 0;
        }
    }
}

typedef struct layer_view {
    int axis;
    int64_t rows, m;
    bool w_flat, b_flat;
} layer_view;

static graft_status layer_view_of(graft_op_call *c, layer_view *v)
{
    const norm_params *p = c->params;
    const graft_tensor *x = c->in[0];
    if (!lu_axis(p->axis, x->rank, &v->axis))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is out of range for rank %d",
                              (long long)p->axis, x->rank);
    v->rows = graft_shape_nelem(v->axis, x->dims);
    v->m = graft_shape_nelem(x->rank - v->axis, x->dims + v->axis);
    v->w_flat = v->b_flat = true;
    for (int i = 1; i < 3 && i < c->n_in; i++) {
        const graft_tensor *t = c->in[i];
        if (!t)
            continue;
        bool flat = true;
        if (!layer_param_shape(t, x->rank - v->axis, x->dims + v->axis, v->m, &flat)) {
            char b1[96], b2[96];
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "%s %s does not broadcast to X %s from axis %d",
                                  i == 1 ? "Scale" : "B",
                                  graft_shape_format(t->rank, t->dims, b1, sizeof b1),
                                  graft_shape_format(x->rank, x->dims, b2, sizeof b2), v->axis);
        }
        if (i == 1)
            v->w_flat = flat;
        else
            v->b_flat = flat;
    }
    return GRAFT_OK;
}

static graft_status layer_infer(graft_op_call *c)
{
    const graft_tensor *x = c->in[0];
    static const char *const names[3] = {"X", "Scale", "B"};
    for (int i = 0; i < 3 && i < c->n_in; i++) {
        if (!c->in[i])
            continue;
        graft_status st = need_float(c, i, names[i]);
        if (st)
            return st;
    }
    layer_view v;
    graft_status st = layer_view_of(c, &v);
    if (st)
        return st;
    lu_copy_shape(c->out[0], x);
    int64_t dims[GRAFT_MAX_RANK];
    for (int k = 0; k < x->rank; k++)
        dims[k] = k < v.axis ? x->dims[k] : 1;
    for (int i = 1; i < 3 && i < c->n_out; i++)
        if (c->out[i])
            lu_set_shape(c->out[i], GRAFT_FLOAT, x->rank, dims);
    return GRAFT_OK;
}

/* Scale and B as m-long rows (expanded into ws when broadcast); *map gets
 * the broadcast index of each position when either needs one. */
static void layer_params_rows(graft_op_call *c, const layer_view *v, float *ws, int64_t *map,
                              const float **w, const float **b)
{
    const graft_tensor *x = c->in[0], *wt = c->in[1];
    const graft_tensor *bt = c->n_in > 2 ? c->in[2] : NULL;
    int rt = x->rank - v->axis;
    *w = wt->data;
    *b = bt ? bt->data : NULL;
    if (!v->w_flat) {
        layer_param_map(wt, rt, x->dims + v->axis, v->m, map);
        for (int64_t j = 0; j < v->m; j++)
            ws[j] = graft_tensor_f32(wt)[map[j]];
        *w = ws;
    }
    if (bt && !v->b_flat) {
        layer_param_map(bt, rt, x->dims + v->axis, v->m, map + v->m);
        for (int64_t j = 0; j < v->m; j++)
            ws[v->m + j] = graft_tensor_f32(bt)[map[v->m + j]];
        *b = ws + v->m;
    }
}

static graft_status layer_forward(graft_op_call *c)
{
    const norm_params *p = c->params;
    layer_view v;
    graft_status st = layer_view_of(c, &v);
    if (st)
        return st;
    bool bcast = !v.w_flat || !v.b_flat, owned = false;
    void *buf = NULL;
    if (bcast) {
        buf = lu_work(c, (size_t)(2 * v.m) * (sizeof(float) + sizeof(int64_t)), &owned);
        if (!buf)
            return graft__op_fail(c, GRAFT_ERR_NOMEM, "out of memory");
    }
    const float *w, *b;
    layer_params_rows(c, &v, buf, bcast ? (int64_t *)((float *)buf + 2 * v.m) : NULL, &w, &b);
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    float *mean = c->n_out > 1 && c->out[1] ? c->out[1]->data : NULL;
    float *inv = c->n_out > 2 && c->out[2] ? c->out[2]->data : NULL;
    int64_t m = v.m;
    int nt = n_threads_for(c, v.rows * m * 2, v.rows);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t r = 0; r < v.rows; r++) {
        float mu, ri;
        const float *xp = x + r * m;
        float *yp = y + r * m;
        row_stats(xp, m, p->eps, &mu, &ri);
        if (mean)
            mean[r] = mu;
        if (inv)
            inv[r] = ri;
        if (b)
            for (int64_t j = 0; j < m; j++)
                yp[j] = (xp[j] - mu) * ri * w[j] + b[j];
        else
            for (int64_t j = 0; j < m; j++)
                yp[j] = (xp[j] - mu) * ri * w[j];
    }
    lu_work_free(buf, owned);
    return GRAFT_OK;
}

static graft_status layer_backward(graft_op_call *c)
{
    const norm_params *p = c->params;
    const float *dy = c->d_out[0] ? c->d_out[0]->data : NULL;
    const float *dmean = c->n_out > 1 && c->d_out[1] ? c->d_out[1]->data : NULL;
    const float *dinv = c->n_out > 2 && c->d_out[2] ? c->d_out[2]->data : NULL;
    if (!dy && !dmean && !dinv)
        return GRAFT_OK;
    layer_view v;
    graft_status st = layer_view_of(c, &v);
    if (st)
        return st;
    int64_t m = v.m, rows = v.rows;
    float *dx = c->d_in[0] ? c->d_in[0]->data : NULL;
    float *dw = c->d_in[1] ? c->d_in[1]->data : NULL;
    float *db = c->n_in > 2 && c->d_in[2] ? c->d_in[2]->data : NULL;
    /* scratch: expanded W/B (2m), row stats (2 rows), column sums for
     * broadcast dW/dB (2m floats), broadcast maps (2m int64) */
    size_t nf = (size_t)(2 * m + 2 * rows + 2 * m);
    bool owned;
    float *buf = lu_work(c, nf * sizeof(float) + (size_t)(2 * m) * sizeof(int64_t) + 8, &owned);
    if (!buf)
        return graft__op_fail(c, GRAFT_ERR_NOMEM, "out of memory");
    float *mu = buf + 2 * m, *ri = mu + rows, *cw = ri + rows, *cb = cw + m;
    int64_t *map = (int64_t *)(void *)(buf + ((nf + 1) & ~(size_t)1));
    const float *w, *b;
    layer_params_rows(c, &v, buf, map, &w, &b);
    const float *x = c->in[0]->data;
    int nt = n_threads_for(c, rows * m * 3, rows);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t r = 0; r < rows; r++) {
        const float *xp = x + r * m;
        row_stats(xp, m, p->eps, &mu[r], &ri[r]);
        if (!dx)
            continue;
        float u = mu[r], s = ri[r], *dp = dx + r * m;
        if (dy) {
            const float *gp = dy + r * m;
            double sg = 0.0, sgx = 0.0;
#pragma omp simd reduction(+ : sg, sgx)
            for (int64_t j = 0; j < m; j++) {
                float g = gp[j] * w[j];
                sg += g;
                sgx += (double)g * ((xp[j] - u) * s);
            }
            float mg = (float)(sg / (double)m), mgx = (float)(sgx / (double)m);
            for (int64_t j = 0; j < m; j++)
                dp[j] += s * (gp[j] * w[j] - mg - (xp[j] - u) * s * mgx);
        }
        /* through the Mean and InvStdDev outputs: dmean/dx = 1/M,
         * dr/dx = -r^3 (x - mean) / M */
        float km = dmean ? dmean[r] / (float)m : 0.0f;
        float kr = dinv ? -dinv[r] * s * s * s / (float)m : 0.0f;
        if (dmean || dinv)
            for (int64_t j = 0; j < m; j++)
                dp[j] += km + kr * (xp[j] - u);
    }
    if (dy && (dw || db)) {
        /* column sums over rows: accumulate straight into flat gradients,
         * into cw/cb first when they fold into a broadcast parameter */
        float *aw = dw && v.w_flat ? dw : cw, *ab = db && v.b_flat ? db : cb;
        if (aw == cw)
            for (int64_t j = 0; j < m; j++)
                cw[j] = 0.0f;
        if (ab == cb)
            for (int64_t j = 0; j < m; j++)
                cb[j] = 0.0f;
        for (int64_t r = 0; r < rows; r++) {
            const float *xp = x + r * m, *gp = dy + r * m;
            float u = mu[r], s = ri[r];
            for (int64_t j = 0; j < m; j++) {
                aw[j] += gp[j] * (xp[j] - u) * s;
                ab[j] += gp[j];
            }
        }
        if (dw && !v.w_flat)
            for (int64_t j = 0; j < m; j++)
                dw[map[j]] += cw[j];
        if (db && !v.b_flat)
            for (int64_t j = 0; j < m; j++)
                db[map[m + j]] += cb[j];
    }
    lu_work_free(buf, owned);
    return GRAFT_OK;
}

/* ---- MeanVarianceNormalization -------------------------------------------- */

/* x viewed for the statistics over the axes (ops/reduce_walk.h): a "group"
 * is one element of the reduced output, n_y of them. */
static graft_status mvn_view_of(graft_op_call *c, graft__rwalk *v)
{
    const norm_params *p = c->params;
    const graft_tensor *x = c->in[0];
    bool red[GRAFT_MAX_RANK] = {false};
    for (int i = 0; i < p->n_axes; i++) {
        int a = 0;
        if (!lu_axis(p->axes[i], x->rank, &a))
            return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is out of range for rank %d",
                                  (long long)p->axes[i], x->rank);
        if (red[a])
            return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is given twice",
                                  (long long)p->axes[i]);
        red[a] = true;
    }
    graft__rwalk_make(x, red, v);
    return GRAFT_OK;
}

/* Accumulates sum f(i) into acc[group] over one run. */
#define RUN_SUM(acc, off, go, gst, len, EXPR)                                                 \
    do {                                                                                      \
        if ((gst) == 0) {                                                                     \
            double a_ = 0.0;                                                                  \
            _Pragma("omp simd reduction(+ : a_)") for (int64_t i = 0; i < (len); i++)         \
            {                                                                                 \
                int64_t e = (off) + i, gi = (go);                                             \
                (void)gi;                                                                     \
                a_ += (EXPR);                                                                 \
            }                                                                                 \
            (acc)[go] += a_;                                                                  \
        } else {                                                                              \
            for (int64_t i = 0; i < (len); i++) {                                             \
                int64_t e = (off) + i, gi = (go) + i;                                         \
                (acc)[gi] += (EXPR);                                                          \
            }                                                                                 \
        }                                                                                     \
    } while (0)

/* mean[g] and the std dev sd[g] of every group; acc holds n_y doubles. */
static void mvn_stats(const graft__rwalk *v, const float *x, float *mean, float *sd, double *acc)
{
    int64_t ng = v->n_y;
    for (int64_t g = 0; g < ng; g++)
        acc[g] = 0.0;
#define SUM_X(off, go, gst, len) RUN_SUM(acc, off, go, gst, len, (double)x[e])
    GRAFT__RWALK(v, SUM_X);
#undef SUM_X
    for (int64_t g = 0; g < ng; g++) {
        mean[g] = (float)(acc[g] / (double)v->count);
        acc[g] = 0.0;
    }
#define SUM_D2(off, go, gst, len)                                                             \
    RUN_SUM(acc, off, go, gst, len, (double)(x[e] - mean[gi]) * (x[e] - mean[gi]))
    GRAFT__RWALK(v, SUM_D2);
#undef SUM_D2
    for (int64_t g = 0; g < ng; g++)
        sd[g] = (float)sqrt(acc[g] / (double)v->count);
}

static graft_status mvn_infer(graft_op_call *c)
{
    graft_status st = need_float(c, 0, "X");
    if (st)
        return st;
    graft__rwalk v;
    st = mvn_view_of(c, &v);
    if (st)
        return st;
    lu_copy_shape(c->out[0], c->in[0]);
    return GRAFT_OK;
}

static graft_status mvn_forward(graft_op_call *c)
{
    graft__rwalk v;
    graft_status st = mvn_view_of(c, &v);
    if (st)
        return st;
    if (v.n_x == 0)
        return GRAFT_OK;
    int64_t ng = v.n_y;
    bool owned;
    double *acc = lu_work(c, (size_t)ng * (sizeof(double) + 2 * sizeof(float)), &owned);
    if (!acc)
        return graft__op_fail(c, GRAFT_ERR_NOMEM, "out of memory");
    float *mean = (float *)(acc + ng), *sd = mean + ng;
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    mvn_stats(&v, x, mean, sd, acc);
    for (int64_t g = 0; g < ng; g++)
        sd[g] = 1.0f / (sd[g] + MVN_EPS);
#define APPLY(off, go, gst, len)                                                              \
    do {                                                                                      \
        for (int64_t i = 0; i < (len); i++) {                                                 \
            int64_t gi = (go) + i * (gst);                                                    \
            y[(off) + i] = (x[(off) + i] - mean[gi]) * sd[gi];                                \
        }                                                                                     \
    } while (0)
    GRAFT__RWALK(&v, APPLY);
#undef APPLY
    lu_work_free(acc, owned);
    return GRAFT_OK;
}

static graft_status mvn_backward(graft_op_call *c)
{
    if (!c->d_in[0] || !c->d_out[0])
        return GRAFT_OK;
    graft__rwalk v;
    graft_status st = mvn_view_of(c, &v);
    if (st)
        return st;
    if (v.n_x == 0)
        return GRAFT_OK;
    int64_t ng = v.n_y;
    bool owned;
    double *acc = lu_work(c, (size_t)ng * (2 * sizeof(double) + 4 * sizeof(float)), &owned);
    if (!acc)
        return graft__op_fail(c, GRAFT_ERR_NOMEM, "out of memory");
    double *acc2 = acc + ng;
    float *mean = (float *)(acc2 + ng), *sd = mean + ng, *kg = sd + ng, *ku = kg + ng;
    const float *x = c->in[0]->data, *dy = c->d_out[0]->data;
    float *dx = c->d_in[0]->data;
    mvn_stats(&v, x, mean, sd, acc);
    for (int64_t g = 0; g < ng; g++)
        acc[g] = acc2[g] = 0.0;
#define SUM_G(off, go, gst, len) RUN_SUM(acc, off, go, gst, len, (double)dy[e])
#define SUM_GU(off, go, gst, len)                                                             \
    RUN_SUM(acc2, off, go, gst, len, (double)dy[e] * (x[e] - mean[gi]))
    GRAFT__RWALK(&v, SUM_G);
    GRAFT__RWALK(&v, SUM_GU);
#undef SUM_G
#undef SUM_GU
    /* per group: 1/d, mean(dy) and mean(dy u) / (d^2 sd), the last 0 when sd
     * is 0 (every u is 0 then) */
    for (int64_t g = 0; g < ng; g++) {
        double d = (double)sd[g] + MVN_EPS, cnt = (double)v.count;
        kg[g] = (float)(acc[g] / cnt);
        ku[g] = sd[g] > 0.0f ? (float)(acc2[g] / cnt / (d * d * sd[g])) : 0.0f;
        sd[g] = (float)(1.0 / d);
    }
#define APPLY_D(off, go, gst, len)                                                            \
    do {                                                                                      \
        for (int64_t i = 0; i < (len); i++) {                                                 \
            int64_t e = (off) + i, gi = (go) + i * (gst);                                     \
            dx[e] += (dy[e] - kg[gi]) * sd[gi] - ku[gi] * (x[e] - mean[gi]);                  \
        }                                                                                     \
    } while (0)
    GRAFT__RWALK(&v, APPLY_D);
#undef APPLY_D
    lu_work_free(acc, owned);
    return GRAFT_OK;
}

const graft_op_def graft__op_lrn = {
    .op_type = "LRN", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(norm_params), .parse = lrn_parse, .infer = lrn_infer,
    .forward = lrn_forward, .backward = lrn_backward};

const graft_op_def graft__op_instance_normalization = {
    .op_type = "InstanceNormalization", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(norm_params), .parse = instance_parse, .infer = instance_infer,
    .forward = instance_forward, .backward = instance_backward};

const graft_op_def graft__op_layer_normalization = {
    .op_type = "LayerNormalization", .domain = "", .min_opset = 17, .flags = 0,
    .params_size = sizeof(norm_params), .parse = layer_parse, .infer = layer_infer,
    .forward = layer_forward, .backward = layer_backward};

const graft_op_def graft__op_mean_variance_normalization = {
    .op_type = "MeanVarianceNormalization", .domain = "", .min_opset = 9, .flags = 0,
    .params_size = sizeof(norm_params), .parse = mvn_parse, .infer = mvn_infer,
    .forward = mvn_forward, .backward = mvn_backward};
