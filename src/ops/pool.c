/* ops/pool.c - MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.
 *
 * MaxPool:     Y[o] = max over the window (pads never win); dX[argmax] += dY[o].
 * AveragePool: Y[o] = Σ window / count, count = in-bounds elements, or with
 *              count_include_pad the elements inside the padded input;
 *              dX[i] += dY[o] / count for each i in the window.
 * Global*:     the window is the whole spatial extent.
 * MaxPool's optional Indices are flat indices into X, row-major, or with
 * storage_order=1 column-major within each spatial plane.
 * MaxPool also takes integers (ONNX allows int8/uint8, which graft computes
 * as int64): an exact plain loop, since integer pooling never sits on a hot
 * path worth a kernel of its own.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernels/conv.h"
#include "kernels/pool.h"
#include "kernels/window.h"
#include "ops/op.h"

typedef struct pool_params {
    graft__window win;
    bool count_include_pad;
    bool col_major_indices;
} pool_params;

static graft_status pool_parse(const graft_graph *g, const graft_node *n, void *params,
                               graft_error *err)
{
    (void)g;
    pool_params *p = params;
    char label[256];
    graft_status st = graft__window_parse(n, &p->win, err);
    if (st != GRAFT_OK)
        return st;
    if (p->win.n_kernel < 0)
        return graft_error_set(err, GRAFT_ERR_INVALID, "%s: kernel_shape is required",
                               graft__node_label(n, label, sizeof label));
    p->count_include_pad = graft_node_attr_int(n, "count_include_pad", 0) != 0;
    p->col_major_indices = graft_node_attr_int(n, "storage_order", 0) == 1;
    return GRAFT_OK;
}

static bool is_max_pool(const graft_op_call *c)
{
    return !strcmp(c->node->op_type, "MaxPool");
}

static graft_status check_x(graft_op_call *c, int *nsp)
{
    char b1[96];
    if (c->n_in < 1 || !c->in[0])
        return graft__op_fail(c, GRAFT_ERR_INVALID, "needs input X");
    const graft_tensor *x = c->in[0];
    bool int_ok = x->dtype == GRAFT_INT64 && is_max_pool(c);
    if (x->dtype != GRAFT_DTYPE_UNDEFINED && !graft_dtype_is_float(x->dtype) && !int_ok)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "X is %s; only floating types are supported",
                              graft_dtype_name(x->dtype));
    if (x->rank < 3)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "X must have rank >= 3, got %s",
                              graft_shape_format(x->rank, x->dims, b1, sizeof b1));
    *nsp = x->rank - 2;
    return GRAFT_OK;
}

static graft_status pool_geometry(graft_op_call *c, graft__pool_geom *geo, int64_t *out_dims)
{
    const pool_params *p = c->params;
    char b1[96], msg[256];
    int nsp = 0;
    graft_status st = check_x(c, &nsp);
    if (st != GRAFT_OK)
        return st;
    const graft_tensor *x = c->in[0];
    if (nsp > 3)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "%d spatial axes (at most 3 supported)",
                              nsp);
    if (p->win.n_kernel != nsp)
        return graft__op_fail(c, GRAFT_ERR_INVALID,
                              "kernel_shape has %d entries, expected %d (spatial rank of X)",
                              p->win.n_kernel, nsp);
    int64_t st_[3], dl[3], pb[3], pe[3], od[3];
    st = graft__window_resolve(&p->win, nsp, x->dims + 2, p->win.kernel, st_, dl, pb, pe, od, msg,
                               sizeof msg);
    if (st != GRAFT_OK)
        return graft__op_fail(c, st, "%s (X %s)", msg,
                              graft_shape_format(x->rank, x->dims, b1, sizeof b1));
    out_dims[0] = x->dims[0];
    out_dims[1] = x->dims[1];
    for (int i = 0; i < nsp; i++)
        out_dims[2 + i] = od[i];
    memset(geo, 0, sizeof *geo);
    geo->planes = x->dims[0] * x->dims[1];
    geo->count_include_pad = p->count_include_pad;
    for (int i = 0; i < 3; i++) {
        int j = i - (3 - nsp);
        geo->in[i] = j >= 0 ? x->dims[2 + j] : 1;
        geo->out[i] = j >= 0 ? od[j] : 1;
        geo->k[i] = j >= 0 ? p->win.kernel[j] : 1;
        geo->stride[i] = j >= 0 ? st_[j] : 1;
        geo->dil[i] = j >= 0 ? dl[j] : 1;
        geo->pad[i] = j >= 0 ? pb[j] : 0;
        geo->pad_end[i] = j >= 0 ? pe[j] : 0;
    }
    return GRAFT_OK;
}

static graft_status pool_infer(graft_op_call *c)
{
    graft__pool_geom geo;
    int64_t dims[GRAFT_MAX_RANK];
    if (c->n_in >= 1 && c->in[0] && c->in[0]->rank < 0) {
        for (int i = 0; i < c->n_out; i++)
            if (c->out[i])
                c->out[i]->rank = -1;
        return GRAFT_OK;
    }
    graft_status st = pool_geometry(c, &geo, dims);
    if (st != GRAFT_OK)
        return st;
    for (int i = 0; i < c->n_out && i < 2; i++) {
        if (!c->out[i])
            continue;
        c->out[i]->dtype = i == 0 && c->in[0]->dtype != GRAFT_INT64 ? GRAFT_FLOAT : GRAFT_INT64;
        c->out[i]->rank = c->in[0]->rank;
        memcpy(c->out[i]->dims, dims, (size_t)c->in[0]->rank * sizeof dims[0]);
    }
    return GRAFT_OK;
}

/* The plan's scratch buffer for the 2-D fast path; NULL (generic path) when
 * not applicable or not available. */
static float *pool_work(graft_op_call *c, const graft__pool_geom *geo, int nt)
{
    int64_t n = graft__pool_work_floats(geo, nt);
    return n > 0 && c->ctx && c->ctx->scratch ? c->ctx->scratch(c->ctx, (size_t)n * sizeof(float))
                                              : NULL;
}

/* Integer MaxPool, row-major indices; a window entirely in the padding
 * (impossible with valid pads) yields INT64_MIN. */
static void max_pool_int(const graft__pool_geom *g, const int64_t *x, int64_t *y, int64_t *idx)
{
    int64_t plane_in = g->in[0] * g->in[1] * g->in[2];
    int64_t plane_out = g->out[0] * g->out[1] * g->out[2];
    for (int64_t p = 0; p < g->planes; p++) {
        const int64_t *xp = x + p * plane_in;
        for (int64_t o = 0; o < plane_out; o++) {
            int64_t oz = o / (g->out[1] * g->out[2]), oy = o / g->out[2] % g->out[1],
                    ox = o % g->out[2];
            int64_t best = INT64_MIN, at = -1;
            for (int64_t kz = 0; kz < g->k[0]; kz++) {
                int64_t iz = oz * g->stride[0] - g->pad[0] + kz * g->dil[0];
                if (iz < 0 || iz >= g->in[0])
                    continue;
                for (int64_t ky = 0; ky < g->k[1]; ky++) {
                    int64_t iy = oy * g->stride[1] - g->pad[1] + ky * g->dil[1];
                    if (iy < 0 || iy >= g->in[1])
                        continue;
                    for (int64_t kx = 0; kx < g->k[2]; kx++) {
                        int64_t ix = ox * g->stride[2] - g->pad[2] + kx * g->dil[2];
                        if (ix < 0 || ix >= g->in[2])
                            continue;
                        int64_t i = (iz * g->in[1] + iy) * g->in[2] + ix;
                        if (at < 0 || xp[i] > best) {
                            best = xp[i];
                            at = i;
                        }
                    }
                }
            }
            y[p * plane_out + o] = best;
            if (idx)
                idx[p * plane_out + o] = at < 0 ? 0 : p * plane_in + at;
        }
    }
}

static graft_status max_pool_forward(graft_op_call *c)
{
    graft__pool_geom geo;
    int64_t dims[GRAFT_MAX_RANK];
    graft_status st = pool_geometry(c, &geo, dims);
    if (st != GRAFT_OK || !c->out[0])
        return st;
    int64_t *idx = c->n_out > 1 && c->out[1] ? graft_tensor_i64(c->out[1]) : NULL;
    int nt = graft__threads(c->ctx);
    if (c->in[0]->dtype == GRAFT_INT64)
        max_pool_int(&geo, graft_tensor_i64(c->in[0]), graft_tensor_i64(c->out[0]), idx);
    else
        graft__maxpool_forward(&geo, graft_tensor_f32(c->in[0]), graft_tensor_f32(c->out[0]), idx,
                               pool_work(c, &geo, nt), nt);
    const pool_params *p = c->params;
    if (idx && p->col_major_indices) {
        const int64_t *in = geo.in, plane = in[0] * in[1] * in[2];
        int64_t n = graft_tensor_nelem(c->out[1]);
        for (int64_t i = 0; i < n; i++) {
            int64_t base = idx[i] / plane * plane, r = idx[i] % plane;
            int64_t z = r / (in[1] * in[2]), y = r / in[2] % in[1], x = r % in[2];
            idx[i] = base + (x * in[1] + y) * in[0] + z;
        }
    }
    return GRAFT_OK;
}

static graft_status max_pool_backward(graft_op_call *c)
{
    graft__pool_geom geo;
    int64_t dims[GRAFT_MAX_RANK];
    if (!c->d_out[0] || !c->d_in[0] || c->in[0]->dtype == GRAFT_INT64)
        return GRAFT_OK;
    graft_status st = pool_geometry(c, &geo, dims);
    if (st != GRAFT_OK)
        return st;
    graft__maxpool_backward(&geo, graft_tensor_f32(c->in[0]), graft_tensor_f32(c->d_out[0]),
                            graft_tensor_f32(c->d_in[0]), graft__threads(c->ctx));
    return GRAFT_OK;
}

static graft_status average_pool_forward(graft_op_call *c)
{
    graft__pool_geom geo;
    int64_t dims[GRAFT_MAX_RANK];
    graft_status st = pool_geometry(c, &geo, dims);
    if (st != GRAFT_OK || !c->out[0])
        return st;
    int nt = graft__threads(c->ctx);
    graft__avgpool_forward(&geo, graft_tensor_f32(c->in[0]), graft_tensor_f32(c->out[0]),
                           pool_work(c, &geo, nt), nt);
    return GRAFT_OK;
}

static graft_status average_pool_backward(graft_op_call *c)
{
    graft__pool_geom geo;
    int64_t dims[GRAFT_MAX_RANK];
    if (!c->d_out[0] || !c->d_in[0])
        return GRAFT_OK;
    graft_status st = pool_geometry(c, &geo, dims);
    if (st != GRAFT_OK)
        return st;
    graft__avgpool_backward(&geo, graft_tensor_f32(c->d_out[0]), graft_tensor_f32(c->d_in[0]),
                            graft__threads(c->ctx));
    return GRAFT_OK;
}

/* ---- global pools ---- */

static graft_status global_parse(const graft_graph *g, const graft_node *n, void *params,
                                  graft_error *err)
{
    (void)g, (void)n, (void)params, (void)err;
    return GRAFT_OK;
}

static graft_status global_infer(graft_op_call *c)
{
    int nsp = 0;
    if (c->n_in >= 1 && c->in[0] && c->in[0]->rank < 0) {
        if (c->out[0])
            c->out[0]->rank = -1;
        return GRAFT_OK;
    }
    graft_status st = check_x(c, &nsp);
    if (st != GRAFT_OK)
        return st;
    if (c->out[0]) {
        const graft_tensor *x = c->in[0];
        c->out[0]->dtype = GRAFT_FLOAT;
        c->out[0]->rank = x->rank;
        c->out[0]->dims[0] = x->dims[0];
        c->out[0]->dims[1] = x->dims[1];
        for (int i = 2; i < x->rank; i++)
            c->out[0]->dims[i] = 1;
    }
    return GRAFT_OK;
}

static void global_split(const graft_tensor *x, int64_t *planes, int64_t *hw)
{
    *planes = x->dims[0] * x->dims[1];
    *hw = 1;
    for (int i = 2; i < x->rank; i++)
        *hw *= x->dims[i];
}

static graft_status global_average_pool_forward(graft_op_call *c)
{
    int nsp = 0;
    graft_status st = check_x(c, &nsp);
    if (st != GRAFT_OK || !c->out[0])
        return st;
    int64_t planes, hw;
    global_split(c->in[0], &planes, &hw);
    const float *x = graft_tensor_f32(c->in[0]);
    float *y = graft_tensor_f32(c->out[0]);
    int nt = graft__threads(c->ctx);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && planes * hw >= 65536)
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * hw;
        float s = 0.0f;
        for (int64_t i = 0; i < hw; i++)
            s += xp[i];
        y[p] = hw > 0 ? s / (float)hw : 0.0f;
    }
    return GRAFT_OK;
}

static graft_status global_average_pool_backward(graft_op_call *c)
{
    if (!c->d_out[0] || !c->d_in[0])
        return GRAFT_OK;
    int64_t planes, hw;
    global_split(c->in[0], &planes, &hw);
    const float *dy = graft_tensor_f32(c->d_out[0]);
    float *dx = graft_tensor_f32(c->d_in[0]);
    for (int64_t p = 0; p < planes; p++) {
        float v = hw > 0 ? dy[p] / (float)hw : 0.0f;
        float *dxp = dx + p * hw;
        for (int64_t i = 0; i < hw; i++)
            dxp[i] += v;
    }
    return GRAFT_OK;
}

static int64_t argmax(const float *x, int64_t n)
{
    int64_t bi = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[bi])
            bi = i;
    return bi;
}

static graft_status global_max_pool_forward(graft_op_call *c)
{
    int nsp = 0;
    graft_status st = check_x(c, &nsp);
    if (st != GRAFT_OK || !c->out[0])
        return st;
    int64_t planes, hw;
    global_split(c->in[0], &planes, &hw);
    const float *x = graft_tensor_f32(c->in[0]);
    float *y = graft_tensor_f32(c->out[0]);
    for (int64_t p = 0; p < planes; p++)
        y[p] = hw > 0 ? x[p * hw + argmax(x + p * hw, hw)] : -INFINITY;
    return GRAFT_OK;
}

static graft_status global_max_pool_backward(graft_op_call *c)
{
    if (!c->d_out[0] || !c->d_in[0])
        return GRAFT_OK;
    int64_t planes, hw;
    global_split(c->in[0], &planes, &hw);
    if (hw == 0)
        return GRAFT_OK;
    const float *x = graft_tensor_f32(c->in[0]), *dy = graft_tensor_f32(c->d_out[0]);
    float *dx = graft_tensor_f32(c->d_in[0]);
    for (int64_t p = 0; p < planes; p++)
        dx[p * hw + argmax(x + p * hw, hw)] += dy[p];
    return GRAFT_OK;
}

const graft_op_def graft__op_max_pool = {
    .op_type = "MaxPool",
    .domain = "",
    .min_opset = 1,
    .params_size = sizeof(pool_params),
    .parse = pool_parse,
    .infer = pool_infer,
    .forward = max_pool_forward,
    .backward = max_pool_backward,
};

const graft_op_def graft__op_average_pool = {
    .op_type = "AveragePool",
    .domain = "",
    .min_opset = 1,
    .params_size = sizeof(pool_params),
    .parse = pool_parse,
    .infer = pool_infer,
    .forward = average_pool_forward,
    .backward = average_pool_backward,
};

const graft_op_def graft__op_global_average_pool = {
    .op_type = "GlobalAveragePool",
    .domain = "",
    .min_opset = 1,
    .params_size = 0,
    .parse = global_parse,
    .infer = global_infer,
    .forward = global_average_pool_forward,
    .backward = global_average_pool_backward,
};

const graft_op_def graft__op_global_max_pool = {
    .op_type = "GlobalMaxPool",
    .domain = "",
    .min_opset = 1,
    .params_size = 0,
    .parse = global_parse,
    .infer = global_infer,
    .forward = global_max_pool_forward,
    .backward = global_max_pool_backward,
};
