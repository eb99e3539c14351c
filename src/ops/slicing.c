/* Ops that move elements around: Transpose, Concat, Gather, Slice (the rest
 * of the shape ops live in shape_ops.c). Each backward scatters dy back to
 * where forward took the element from, accumulating:
 *
 *   Transpose  y[i] = x[perm(i)]            dx[perm(i)] += dy[i]
 *   Concat     y = [x0 | x1 | ...] on axis   dxk += dy[block k]
 *   Gather     y[o,j,i] = x[o,idx[j],i]      dx[o,idx[j],i] += dy[o,j,i]  (repeats add)
 *   Slice      y[i] = x[start + i*step]      dx[start + i*step] += dy[i]
 *
 * Data may be float, int64 or bool (shape arithmetic runs through Concat,
 * Gather and Slice on int64); the copies are by element size. */
#include <stdlib.h>

#include "ops/light_util.h"

/* Strided gather of a rank-r box: y (contiguous, dims) from x at offset
 * base with per-dim element strides xs. The last dim is copied as a run when
 * its stride is 1. Runs rows in parallel when large. */
static void strided_copy(const graft_op_call *c, size_t es, int r, const int64_t *dims,
                         const char *x, int64_t base, const int64_t *xs, char *y)
{
    if (r == 0) {
        memcpy(y, x + (size_t)base * es, es);
        return;
    }
    int64_t inner = dims[r - 1], rows = graft_shape_nelem(r - 1, dims);
    int64_t s = xs[r - 1];
    if (inner == 0 || rows == 0)
        return;
    int nt = lu_threads(c, rows * inner);
    if (nt > rows)
        nt = (int)rows;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t row = 0; row < rows; row++) {
        int64_t off = base, q = row;
        for (int i = r - 2; i >= 0 && q; i--) {
            int64_t d = q / dims[i];
            off += (q - d * dims[i]) * xs[i];
            q = d;
        }
        char *dst = y + (size_t)(row * inner) * es;
        const char *src = x + (size_t)off * es;
        if (s == 1) {
            memcpy(dst, src, (size_t)inner * es);
        } else if (es == 4) {
            for (int64_t j = 0; j < inner; j++)
                ((uint32_t *)dst)[j] = *(const uint32_t *)(src + (size_t)(j * s) * 4);
        } else if (es == 8) {
            for (int64_t j = 0; j < inner; j++)
                ((uint64_t *)dst)[j] = *(const uint64_t *)(src + (size_t)(j * s) * 8);
        } else {
            for (int64_t j = 0; j < inner; j++)
                memcpy(dst + (size_t)j * es, src + (size_t)(j * s) * es, es);
        }
    }
}

/* dx[base + sum i_k xs_k] += dy[i] over the box (float; serial since boxes
 * may overlap, as in Gather with repeated indices). */
static void strided_add(int r, const int64_t *dims, float *dx, int64_t base, const int64_t *xs,
                        const float *dy)
{
    int64_t inner = r ? dims[r - 1] : 1, rows = r ? graft_shape_nelem(r - 1, dims) : 1;
    int64_t s = r ? xs[r - 1] : 0;
    for (int64_t row = 0; row < rows; row++) {
        int64_t off = base, q = row;
        for (int i = r - 2; i >= 0 && q; i--) {
            int64_t d = q / dims[i];
            off += (q - d * dims[i]) * xs[i];
            q = d;
        }
        const float *g = dy + row * inner;
        for (int64_t j = 0; j < inner; j++)
            dx[off + j * s] += g[j];
    }
}

/* ---- Transpose --------------------------------------------------------------- */

typedef struct transpose_params {
    int n_perm; /* -1: reverse */
    int64_t perm[GRAFT_MAX_RANK];
} transpose_params;

static graft_status transpose_parse(const graft_graph *g, const graft_node *n, void *params,
                                    graft_error *err)
{
    (void)g;
    transpose_params *p = params;
    const int64_t *v = NULL;
    int k = graft_node_attr_ints(n, "perm", &v);
    if (k > GRAFT_MAX_RANK)
        return lu_node_fail(err, n, GRAFT_ERR_UNSUPPORTED, "perm of length %d exceeds rank %d", k,
                            GRAFT_MAX_RANK);
    p->n_perm = k;
    if (k > 0)
        memcpy(p->perm, v, (size_t)k * sizeof *v);
    return lu_check_inputs(err, n, 1, 1);
}

static void transpose_perm(const transpose_params *p, int r, int *perm)
{
    for (int i = 0; i < r; i++)
        perm[i] = p->n_perm < 0 ? r - 1 - i : (int)p->perm[i];
}

static graft_status transpose_infer(graft_op_call *c)
{
    const transpose_params *p = c->params;
    const graft_tensor *x = c->in[0];
    int r = x->rank;
    if (p->n_perm >= 0) {
        if (p->n_perm != r)
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "perm has %d entries for rank %d",
                                  p->n_perm, r);
        bool seen[GRAFT_MAX_RANK] = {false};
        for (int i = 0; i < r; i++) {
            int64_t v = p->perm[i];
            if (v < 0 || v >= r || seen[v])
                return graft__op_fail(c, GRAFT_ERR_INVALID, "perm is not a permutation of 0..%d",
                                      r - 1);
            seen[v] = true;
        }
    }
    int perm[GRAFT_MAX_RANK];
    int64_t dims[GRAFT_MAX_RANK];
    transpose_perm(p, r, perm);
    for (int i = 0; i < r; i++)
        dims[i] = x->dims[perm[i]];
    lu_set_shape(c->out[0], x->dtype, r, dims);
    return GRAFT_OK;
}

/* Output dims and the input strides that walk them, with size-1 dims dropped
 * and output-adjacent dims that stay adjacent in the input merged. */
static int transpose_view(const transpose_params *p, const graft_tensor *x, int64_t *dims,
                          int64_t *xs)
{
    int r = x->rank, perm[GRAFT_MAX_RANK], k = 0;
    int64_t st[GRAFT_MAX_RANK];
    lu_strides(r, x->dims, st);
    transpose_perm(p, r, perm);
    for (int i = 0; i < r; i++) {
        int64_t d = x->dims[perm[i]], s = st[perm[i]];
        if (d == 1)
            continue;
        if (k > 0 && xs[k - 1] == s * d) {
            dims[k - 1] *= d;
            xs[k - 1] = s;
            continue;
        }
        dims[k] = d;
        xs[k] = s;
        k++;
    }
    return k;
}

/* 2-D [rows, cols] -> [cols, rows] float transpose in cache tiles: the
 * NCHW <-> NHWC case the generic row walk handles with strided loads. */
static void transpose_2d_f32(const graft_op_call *c, int64_t batch, int64_t rows, int64_t cols,
                             const float *x, float *y)
{
    const int64_t T = 32;
    int64_t tiles_r = (rows + T - 1) / T;
    int nt = lu_threads(c, batch * rows * cols);
#pragma omp parallel for num_threads(nt) schedule(static) collapse(2) if (nt > 1)
    for (int64_t b = 0; b < batch; b++)
        for (int64_t tr = 0; tr < tiles_r; tr++) {
            const float *xb = x + b * rows * cols;
            float *yb = y + b * rows * cols;
            int64_t r0 = tr * T, r1 = r0 + T < rows ? r0 + T : rows;
            for (int64_t c0 = 0; c0 < cols; c0 += T) {
                int64_t c1 = c0 + T < cols ? c0 + T : cols;
                for (int64_t i = r0; i < r1; i++)
                    for (int64_t j = c0; j < c1; j++)
                        yb[j * rows + i] = xb[i * cols + j];
            }
        }
}

static graft_status transpose_forward(graft_op_call *c)
{
    const graft_tensor *x = c->in[0];
    int64_t dims[GRAFT_MAX_RANK], xs[GRAFT_MAX_RANK];
    int k = transpose_view(c->params, x, dims, xs);
    size_t es = graft_dtype_size(x->dtype);
    if (es == 4 && k >= 2 && k <= 3 && xs[k - 1] == dims[k - 2] && xs[k - 2] == 1 &&
        (k == 2 || xs[0] == dims[1] * dims[2])) {
        /* [b, cols, rows] view of y over x as [b, rows, cols] */
        int64_t rows = dims[k - 1], cols = dims[k - 2];
        transpose_2d_f32(c, k == 3 ? dims[0] : 1, rows, cols, x->data, c->out[0]->data);
        return GRAFT_OK;
    }
    strided_copy(c, es, k, dims, x->data, 0, xs, c->out[0]->data);
    return GRAFT_OK;
}

static graft_status transpose_backward(graft_op_call *c)
{
    if (!c->d_in[0] || !c->d_out[0])
        return GRAFT_OK;
    int64_t dims[GRAFT_MAX_RANK], xs[GRAFT_MAX_RANK];
    int k = transpose_view(c->params, c->in[0], dims, xs);
    strided_add(k, dims, c->d_in[0]->data, 0, xs, c->d_out[0]->data);
    return GRAFT_OK;
}

const graft_op_def graft__op_transpose = {
    .op_type = "Transpose", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(transpose_params), .parse = transpose_parse, .infer = transpose_infer,
    .forward = transpose_forward, .backward = transpose_backward};

/* ---- Concat ---------------------------------------------------------------------- */

typedef struct concat_params {
    int64_t axis;
} concat_params;

static graft_status concat_parse(const graft_graph *g, const graft_node *n, void *params,
                                 graft_error *err)
{
    (void)g;
    concat_params *p = params;
    const graft_attr *a = graft_node_attr(n, "axis");
    if (!a && n->opset >= 4)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "the axis attribute is missing");
    p->axis = a ? a->i : 1; /* Concat-1 defaulted to 1 */
    if (n->n_inputs < 1)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "Concat needs at least one input");
    for (int i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] < 0)
            return lu_node_fail(err, n, GRAFT_ERR_INVALID, "input %d is empty", i);
    return lu_check_inputs(err, n, n->n_inputs, n->n_inputs);
}

static graft_status concat_infer(graft_op_call *c)
{
    const concat_params *p = c->params;
    const graft_tensor *x0 = c->in[0];
    int r = x0->rank, ax = 0;
    if (r == 0)
        return graft__op_fail(c, GRAFT_ERR_SHAPE, "cannot concatenate scalars");
    if (!lu_axis(p->axis, r, &ax))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is out of range for rank %d",
                              (long long)p->axis, r);
    int64_t dims[GRAFT_MAX_RANK];
    memcpy(dims, x0->dims, sizeof dims);
    dims[ax] = 0;
    for (int i = 0; i < c->n_in; i++) {
        const graft_tensor *x = c->in[i];
        char s1[128], s2[128];
        if (x->dtype != x0->dtype)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "input %d is %s, input 0 is %s", i,
                                  graft_dtype_name(x->dtype), graft_dtype_name(x0->dtype));
        bool ok = x->rank == r;
        for (int d = 0; ok && d < r; d++)
            ok = d == ax || x->dims[d] == x0->dims[d];
        if (!ok)
            return graft__op_fail(c, GRAFT_ERR_SHAPE,
                                  "input %d %s does not match input 0 %s outside axis %d", i,
                                  graft_shape_format(x->rank, x->dims, s1, sizeof s1),
                                  graft_shape_format(r, x0->dims, s2, sizeof s2), ax);
        dims[ax] += x->dims[ax];
    }
    lu_set_shape(c->out[0], x0->dtype, r, dims);
    return GRAFT_OK;
}

static graft_status concat_forward(graft_op_call *c)
{
    const concat_params *p = c->params;
    const graft_tensor *y = c->out[0];
    int ax = 0;
    lu_axis(p->axis, y->rank, &ax);
    size_t es = graft_dtype_size(y->dtype);
    int64_t outer = graft_shape_nelem(ax, y->dims);
    int64_t inner = graft_shape_nelem(y->rank - ax - 1, y->dims + ax + 1);
    size_t yrow = (size_t)(y->dims[ax] * inner) * es;
    size_t off = 0;
    for (int i = 0; i < c->n_in; i++) {
        const graft_tensor *x = c->in[i];
        size_t row = (size_t)(x->dims[ax] * inner) * es;
        const char *src = x->data;
        char *dst = (char *)y->data + off;
        int nt = lu_threads(c, outer * (int64_t)row / 4);
        if (outer < nt) {
            /* batch 1, channel concat: a few long blocks, split inside */
            for (int64_t o = 0; o < outer; o++)
                graft__light_copy(c, dst + (size_t)o * yrow, src + (size_t)o * row, row);
        } else {
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
            for (int64_t o = 0; o < outer; o++)
                memcpy(dst + (size_t)o * yrow, src + (size_t)o * row, row);
        }
        off += row;
    }
    return GRAFT_OK;
}

static graft_status concat_backward(graft_op_call *c)
{
    const concat_params *p = c->params;
    const graft_tensor *y = c->out[0];
    if (!c->d_out[0])
        return GRAFT_OK;
    int ax = 0;
    lu_axis(p->axis, y->rank, &ax);
    int64_t outer = graft_shape_nelem(ax, y->dims);
    int64_t inner = graft_shape_nelem(y->rank - ax - 1, y->dims + ax + 1);
    int64_t yrow = y->dims[ax] * inner, off = 0;
    const float *dy = c->d_out[0]->data;
    for (int i = 0; i < c->n_in; i++) {
        int64_t row = c->in[i]->dims[ax] * inner;
        if (c->d_in[i]) {
            float *dx = c->d_in[i]->data;
            for (int64_t o = 0; o < outer; o++)
                for (int64_t j = 0; j < row; j++)
                    dx[o * row + j] += dy[o * yrow + off + j];
        }
        off += row;
    }
    return GRAFT_OK;
}

const graft_op_def graft__op_concat = {
    .op_type = "Concat", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(concat_params), .parse = concat_parse, .infer = concat_infer,
    .forward = concat_forward, .backward = concat_backward};

/* ---- Gather ----------------------------------------------------------------------- */

typedef struct gather_params {
    int64_t axis;
} gather_params;

static graft_status gather_parse(const graft_graph *g, const graft_node *n, void *params,
                                 graft_error *err)
{
    (void)g;
    gather_params *p = params;
    p->axis = graft_node_attr_int(n, "axis", 0);
    return lu_check_inputs(err, n, 2, 2);
}

/* Checks every index against the axis size; false names the first bad one. */
static bool gather_check(const graft_tensor *ind, int64_t size, int64_t *bad)
{
    int64_t n = graft_tensor_nelem(ind);
    const int64_t *v = ind->data;
    for (int64_t i = 0; i < n; i++)
        if (v[i] < -size || v[i] >= size) {
            *bad = v[i];
            return false;
        }
    return true;
}

static graft_status gather_infer(graft_op_call *c)
{
    const gather_params *p = c->params;
    const graft_tensor *x = c->in[0], *ind = c->in[1];
    int ax = 0;
    if (!lu_axis(p->axis, x->rank, &ax))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is out of range for rank %d",
                              (long long)p->axis, x->rank);
    if (ind->dtype != GRAFT_INT64)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "indices must be integers, not %s",
                              graft_dtype_name(ind->dtype));
    int r = x->rank + ind->rank - 1;
    if (r > GRAFT_MAX_RANK)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "output rank %d exceeds %d", r,
                              GRAFT_MAX_RANK);
    int64_t bad = 0;
    if (ind->data && !gather_check(ind, x->dims[ax], &bad))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "index %lld is out of range for axis %d of size %lld",
                              (long long)bad, ax, (long long)x->dims[ax]);
    int64_t dims[GRAFT_MAX_RANK];
    int k = 0;
    for (int i = 0; i < ax; i++)
        dims[k++] = x->dims[i];
    for (int i = 0; i < ind->rank; i++)
        dims[k++] = ind->dims[i];
    for (int i = ax + 1; i < x->rank; i++)
        dims[k++] = x->dims[i];
    lu_set_shape(c->out[0], x->dtype, r, dims);
    return GRAFT_OK;
}

static graft_status gather_forward(graft_op_call *c)
{
    const gather_params *p = c->params;
    const graft_tensor *x = c->in[0], *ind = c->in[1];
    int ax = 0;
    lu_axis(p->axis, x->rank, &ax);
    int64_t size = x->dims[ax], bad = 0;
    if (!gather_check(ind, size, &bad))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "index %lld is out of range for axis %d of size %lld",
                              (long long)bad, ax, (long long)size);
    size_t es = graft_dtype_size(x->dtype);
    int64_t outer = graft_shape_nelem(ax, x->dims);
    int64_t inner = graft_shape_nelem(x->rank - ax - 1, x->dims + ax + 1);
    int64_t n = graft_tensor_nelem(ind);
    const int64_t *idx = ind->data;
    const char *src = x->data;
    char *dst = c->out[0]->data;
    size_t blk = (size_t)inner * es;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < n; j++) {
            int64_t k = idx[j] < 0 ? idx[j] + size : idx[j];
            memcpy(dst + (size_t)(o * n + j) * blk, src + (size_t)(o * size + k) * blk, blk);
        }
    return GRAFT_OK;
}

static graft_status gather_backward(graft_op_call *c)
{
    const gather_params *p = c->params;
    if (!c->d_in[0] || !c->d_out[0])
        return GRAFT_OK;
    const graft_tensor *x = c->in[0], *ind = c->in[1];
    int ax = 0;
    lu_axis(p->axis, x->rank, &ax);
    int64_t size = x->dims[ax];
    int64_t outer = graft_shape_nelem(ax, x->dims);
    int64_t inner = graft_shape_nelem(x->rank - ax - 1, x->dims + ax + 1);
    int64_t n = graft_tensor_nelem(ind);
    const int64_t *idx = ind->data;
    const float *dy = c->d_out[0]->data;
    float *dx = c->d_in[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < n; j++) {
            int64_t k = idx[j] < 0 ? idx[j] + size : idx[j];
            if (k < 0 || k >= size)
                continue;
            float *d = dx + (o * size + k) * inner;
            const float *g = dy + (o * n + j) * inner;
            for (int64_t i = 0; i < inner; i++)
                d[i] += g[i];
        }
    return GRAFT_OK;
}

const graft_op_def graft__op_gather = {
    .op_type = "Gather", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(gather_params), .parse = gather_parse, .infer = gather_infer,
    .forward = gather_forward, .backward = gather_backward};

/* ---- Slice --------------------------------------------------------------------------- */

typedef struct slice_params {
    bool attr_form; /* opset < 10: starts/ends/axes attributes */
    int n;
    int64_t starts[GRAFT_MAX_RANK], ends[GRAFT_MAX_RANK], axes[GRAFT_MAX_RANK];
    bool has_axes;
} slice_params;

static graft_status slice_parse(const graft_graph *g, const graft_node *n, void *params,
                                graft_error *err)
{
    (void)g;
    slice_params *p = params;
    p->attr_form = n->opset > 0 && n->opset < 10;
    if (!p->attr_form)
        return lu_check_inputs(err, n, 3, 5);
    const int64_t *s = NULL, *e = NULL, *a = NULL;
    int ns = graft_node_attr_ints(n, "starts", &s), ne = graft_node_attr_ints(n, "ends", &e);
    int na = graft_node_attr_ints(n, "axes", &a);
    if (ns < 0 || ne < 0)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "Slice-%d needs starts and ends attributes",
                            n->opset);
    if (ns != ne || (na >= 0 && na != ns))
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "starts, ends and axes differ in length");
    if (ns > GRAFT_MAX_RANK)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "%d axes exceed rank %d", ns,
                            GRAFT_MAX_RANK);
    p->n = ns;
    memcpy(p->starts, s, (size_t)ns * sizeof *s);
    memcpy(p->ends, e, (size_t)ns * sizeof *e);
    p->has_axes = na >= 0;
    if (na > 0)
        memcpy(p->axes, a, (size_t)na * sizeof *a);
    return lu_check_inputs(err, n, 1, 1);
}

/* Per input dim: first index, step and output count (full range where not sliced). */
static graft_status slice_resolve(graft_op_call *c, int64_t *start, int64_t *step, int64_t *count)
{
    const slice_params *p = c->params;
    const graft_tensor *x = c->in[0];
    int r = x->rank;
    const graft_tensor *ts = NULL, *te = NULL, *ta = NULL, *tp = NULL;
    int n = p->n;
    if (!p->attr_form) {
        ts = c->in[1];
        te = c->in[2];
        ta = c->n_in > 3 ? c->in[3] : NULL;
        tp = c->n_in > 4 ? c->in[4] : NULL;
        const graft_tensor *all[4] = {ts, te, ta, tp};
        static const char *const what[4] = {"starts", "ends", "axes", "steps"};
        for (int i = 0; i < 4; i++) {
            if (!all[i])
                continue;
            if (!all[i]->data)
                return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED,
                                      "%s is not known when the plan is built: shape depends on "
                                      "runtime data",
                                      what[i]);
            if (all[i]->dtype != GRAFT_INT64 || all[i]->rank != 1)
                return graft__op_fail(c, GRAFT_ERR_INVALID, "%s must be a 1-D integer tensor",
                                      what[i]);
        }
        n = (int)ts->dims[0];
        if (te->dims[0] != n || (ta && ta->dims[0] != n) || (tp && tp->dims[0] != n))
            return graft__op_fail(c, GRAFT_ERR_INVALID, "starts, ends, axes and steps differ in length");
        if (n > r)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "%d axes for rank %d", n, r);
    }
    bool seen[GRAFT_MAX_RANK] = {false};
    for (int d = 0; d < r; d++) {
        start[d] = 0;
        step[d] = 1;
        count[d] = x->dims[d];
    }
    for (int i = 0; i < n; i++) {
        int64_t a = i, s, e, st = 1;
        if (p->attr_form) {
            a = p->has_axes ? p->axes[i] : i;
            s = p->starts[i];
            e = p->ends[i];
        } else {
            a = ta ? graft_tensor_i64(ta)[i] : i;
            s = graft_tensor_i64(ts)[i];
            e = graft_tensor_i64(te)[i];
            st = tp ? graft_tensor_i64(tp)[i] : 1;
        }
        int ax = 0;
        if (!lu_axis(a, r, &ax))
            return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is out of range for rank %d",
                                  (long long)a, r);
        if (seen[ax])
            return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is repeated", (long long)a);
        seen[ax] = true;
        if (st == 0)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "step is 0 on axis %d", ax);
        int64_t d = x->dims[ax];
        if (s < 0)
            s = s < -d ? 0 : s + d;
        if (e < 0)
            e = e < -d ? -1 : e + d;
        if (st > 0) {
            s = s > d ? d : s;
            e = e < 0 ? 0 : e > d ? d : e;
            count[ax] = e > s ? (e - s + st - 1) / st : 0;
        } else {
            s = s > d - 1 ? d - 1 : s;
            e = e > d - 1 ? d - 1 : e;
            count[ax] = s > e ? (s - e + (-st) - 1) / (-st) : 0;
        }
        start[ax] = s;
        step[ax] = st;
    }
    return GRAFT_OK;
}

static graft_status slice_infer(graft_op_call *c)
{
    int64_t start[GRAFT_MAX_RANK], step[GRAFT_MAX_RANK], count[GRAFT_MAX_RANK];
    graft_status st = slice_resolve(c, start, step, count);
    if (st)
        return st;
    lu_set_shape(c->out[0], c->in[0]->dtype, c->in[0]->rank, count);
    return GRAFT_OK;
}

/* Base offset and strides of the sliced box inside x. */
static void slice_box(const graft_tensor *x, const int64_t *start, const int64_t *step,
                      int64_t *base, int64_t *xs)
{
    int64_t st[GRAFT_MAX_RANK];
    lu_strides(x->rank, x->dims, st);
    *base = 0;
    for (int d = 0; d < x->rank; d++) {
        *base += start[d] * st[d];
        xs[d] = step[d] * st[d];
    }
}

static graft_status slice_forward(graft_op_call *c)
{
    int64_t start[GRAFT_MAX_RANK], step[GRAFT_MAX_RANK], count[GRAFT_MAX_RANK];
    graft_status st = slice_resolve(c, start, step, count);
    if (st)
        return st;
    const graft_tensor *x = c->in[0];
    int64_t base = 0, xs[GRAFT_MAX_RANK];
    slice_box(x, start, step, &base, xs);
    if (graft_shape_nelem(x->rank, count) == 0)
        return GRAFT_OK;
    strided_copy(c, graft_dtype_size(x->dtype), x->rank, count, x->data, base, xs,
                 c->out[0]->data);
    return GRAFT_OK;
}

static graft_status slice_backward(graft_op_call *c)
{
    if (!c->d_in[0] || !c->d_out[0])
        return GRAFT_OK;
    int64_t start[GRAFT_MAX_RANK], step[GRAFT_MAX_RANK], count[GRAFT_MAX_RANK];
    graft_status st = slice_resolve(c, start, step, count);
    if (st)
        return st;
    const graft_tensor *x = c->in[0];
    int64_t base = 0, xs[GRAFT_MAX_RANK];
    slice_box(x, start, step, &base, xs);
    if (graft_shape_nelem(x->rank, count) == 0)
        return GRAFT_OK;
    strided_add(x->rank, count, c->d_in[0]->data, base, xs, c->d_out[0]->data);
    return GRAFT_OK;
}

const graft_op_def graft__op_slice = {
    .op_type = "Slice", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(slice_params), .parse = slice_parse, .infer = slice_infer,
    .forward = slice_forward, .backward = slice_backward};
