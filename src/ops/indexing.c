/* Ops that pick, repeat, scatter or reorder elements by index.
 *
 *   Split         y_k = x[.., off_k : off_k + n_k, ..]      dx[block k] += dy_k
 *   Tile          y[i] = x[i mod dims]                      dx[i mod dims] += dy[i]
 *   Expand        y = broadcast(x, shape)                   dx += dy summed over broadcast dims
 *   DepthToSpace, SpaceToDepth  y = permute(reshape(x))     dx = the inverse permutation of dy
 *   GatherElements y[i] = x[i with i_axis = idx[i]]         dx[i with i_axis = idx[i]] += dy[i]
 *   ScatterElements, ScatterND  y = x, then y[idx] (op)= updates   (forward only)
 *   GatherND      y[b, j] = x[b, idx[b, j, :], ...]         (forward only)
 *   ArgMax, ArgMin  int64 position of the extreme on axis   (no gradient)
 *   CumSum        y_i = sum_{j <= i} x_j (or j < i, or from the end)
 *                                                           dx = the opposite-direction CumSum of dy
 *   Trilu         y = x where j - i >= k (upper) / <= k     dx += mask .* dy
 *   TopK          values and indices of the k extremes      dx[idx] += dvalues
 *   Einsum        y[out] = sum over contracted labels of prod x_k[labels_k]
 *                 dx_k[labels_k] += dy[out] * prod_{j != k} x_j
 *
 * The data-moving ops (Split, Tile, Expand, the depth/space permutations,
 * the gathers and scatters, Trilu) copy by element size, so float, int64 and
 * bool all work; arithmetic ones (CumSum, TopK, ArgMax, reductions of the
 * scatters) take float and int64. Sizes that decide an output shape (Split's
 * split, Tile's repeats, Expand's shape, TopK's k) must be known when the
 * plan is built; indices are checked on every call, since they are data. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "kernels/gemm.h"
#include "ops/light_util.h"

/* Views over strided boxes reach twice the tensor rank (Tile's [r0, d0, r1, d1, ..]). */
#define BOX_MAX (2 * GRAFT_MAX_RANK + 2)

static const char *shape_str(int rank, const int64_t *dims, char *buf, size_t size)
{
    return graft_shape_format(rank, dims, buf, size);
}

static bool is_num(graft_dtype dt)
{
    return dt == GRAFT_FLOAT || dt == GRAFT_INT64;
}

static graft_status check_dtype(graft_op_call *c, const graft_tensor *t, bool allow_bool,
                                const char *what)
{
    if (is_num(t->dtype) || (allow_bool && lu_is_bool(t->dtype)))
        return GRAFT_OK;
    return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "%s of element type %s is not supported",
                          what, graft_dtype_name(t->dtype));
}

/* A 1-D (or scalar) int64 input whose data decides the output shape. */
static graft_status needs_ints(graft_op_call *c, int i, const char *what)
{
    const graft_tensor *t = c->in[i];
    if (!t->data)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED,
                              "%s (input %d) is not known when the plan is built: shape depends "
                              "on runtime data",
                              what, i);
    if (t->dtype != GRAFT_INT64)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "%s (input %d) must be integers, not %s",
                              what, i, graft_dtype_name(t->dtype));
    if (t->rank > 1)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "%s (input %d) must be 1-D, not rank %d",
                              what, i, t->rank);
    return GRAFT_OK;
}

/* A scalar (or 1-element) int64 input read at run time (CumSum's axis, Trilu's k). */
static graft_status scalar_int(graft_op_call *c, int i, const char *what, int64_t *v)
{
    const graft_tensor *t = c->in[i];
    if (t->dtype != GRAFT_INT64 || graft_tensor_nelem(t) != 1 || t->rank > 1)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "%s must be one integer, got %s %s", what,
                              graft_dtype_name(t->dtype),
                              shape_str(t->rank, t->dims, (char[64]){0}, 64));
    *v = graft_tensor_i64(t)[0];
    return GRAFT_OK;
}

/* Output o's dims against what the runtime data now asks for: a shape
 * input changed after the plan was built would otherwise write past the
 * buffers sized from it. */
static graft_status same_dims(graft_op_call *c, const graft_tensor *t, int rank,
                              const int64_t *dims, const char *what)
{
    bool ok = t->rank == rank;
    for (int i = 0; ok && i < rank; i++)
        ok = t->dims[i] == dims[i];
    if (ok)
        return GRAFT_OK;
    char s1[128], s2[128];
    return graft__op_fail(c, GRAFT_ERR_SHAPE, "%s now gives %s, the plan was built for %s", what,
                          shape_str(rank, dims, s1, sizeof s1),
                          shape_str(t->rank, t->dims, s2, sizeof s2));
}

/* ---- strided boxes ------------------------------------------------------------ */

/* Drops size-1 dims and merges neighbours whose strides line up, in place
 * (the box is contiguous on the y side, so any such pair merges). */
static int box_simplify(int r, int64_t *dims, int64_t *xs)
{
    int k = 0;
    for (int i = 0; i < r; i++) {
        if (dims[i] == 1)
            continue;
        if (k > 0 && xs[k - 1] == xs[i] * dims[i]) {
            dims[k - 1] *= dims[i];
            xs[k - 1] = xs[i];
            continue;
        }
        dims[k] = dims[i];
        xs[k] = xs[i];
        k++;
    }
    return k;
}

static int64_t row_offset(int r, const int64_t *dims, const int64_t *xs, int64_t row)
{
    int64_t off = 0, q = row;
    for (int i = r - 2; i >= 0 && q; i--) {
        int64_t d = q / dims[i];
        off += (q - d * dims[i]) * xs[i];
        q = d;
    }
    return off;
}

/* y (contiguous, dims) = x at per-dim element strides xs (0: repeat). */
static void box_copy(const graft_op_call *c, size_t es, int r, const int64_t *dims_in,
                     const char *x, const int64_t *xs_in, char *y)
{
    int64_t dims[BOX_MAX], xs[BOX_MAX];
    if (graft_shape_nelem(r, dims_in) == 0)
        return;
    memcpy(dims, dims_in, (size_t)r * sizeof *dims);
    memcpy(xs, xs_in, (size_t)r * sizeof *xs);
    r = box_simplify(r, dims, xs);
    if (r == 0) {
        memcpy(y, x, es);
        return;
    }
    int64_t inner = dims[r - 1], rows = graft_shape_nelem(r - 1, dims), s = xs[r - 1];
    int nt = lu_threads(c, rows * inner);
    if (nt > rows)
        nt = (int)rows;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t row = 0; row < rows; row++) {
        const char *src = x + (size_t)row_offset(r, dims, xs, row) * es;
        char *dst = y + (size_t)(row * inner) * es;
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

/* dx[sum i_k xs_k] += dy[i] over the box. disjoint: no two box elements
 * share a dx element (a permutation), so rows may run in parallel. */
static void box_add(const graft_op_call *c, int r, const int64_t *dims_in, float *dx,
                    const int64_t *xs_in, const float *dy, bool disjoint)
{
    int64_t dims[BOX_MAX], xs[BOX_MAX];
    if (graft_shape_nelem(r, dims_in) == 0)
        return;
    memcpy(dims, dims_in, (size_t)r * sizeof *dims);
    memcpy(xs, xs_in, (size_t)r * sizeof *xs);
    r = box_simplify(r, dims, xs);
    if (r == 0) {
        dx[0] += dy[0];
        return;
    }
    int64_t inner = dims[r - 1], rows = graft_shape_nelem(r - 1, dims), s = xs[r - 1];
    int nt = disjoint ? lu_threads(c, rows * inner) : 1;
    if (nt > rows)
        nt = (int)rows;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t row = 0; row < rows; row++) {
        float *d = dx + row_offset(r, dims, xs, row);
        const float *g = dy + row * inner;
        if (s == 0) {
            float acc = 0.0f;
            for (int64_t j = 0; j < inner; j++)
                acc += g[j];
            d[0] += acc;
        } else if (s == 1) {
            for (int64_t j = 0; j < inner; j++)
                d[j] += g[j];
        } else {
            for (int64_t j = 0; j < inner; j++)
                d[j * s] += g[j];
        }
    }
}

/* ---- Split ------------------------------------------------------------------- */

#define SPLIT_MAX_OUT 1024

typedef struct split_params {
    int64_t axis;
    int from;     /* SPLIT_EQUAL, SPLIT_ATTR or SPLIT_INPUT */
    int64_t num_outputs; /* 18+: ceil-sized chunks, the last one shorter; 0 absent */
} split_params;

enum { SPLIT_EQUAL, SPLIT_ATTR, SPLIT_INPUT };

static graft_status split_parse(const graft_graph *g, const graft_node *n, void *params,
                                graft_error *err)
{
    (void)g;
    split_params *p = params;
    p->axis = graft_node_attr_int(n, "axis", 0);
    const int64_t *v = NULL;
    bool has_attr = graft_node_attr_ints(n, "split", &v) >= 0;
    /* Split-1 took split as an attribute or a second input; 2..12 only the
     * attribute; 13+ only the input */
    int max_in = n->opset == 1 || n->opset >= 13 ? 2 : 1;
    graft_status st = lu_check_inputs(err, n, 1, max_in);
    if (st)
        return st;
    if (n->n_outputs > SPLIT_MAX_OUT)
        return lu_node_fail(err, n, GRAFT_ERR_UNSUPPORTED, "%d outputs exceed %d", n->n_outputs,
                            SPLIT_MAX_OUT);
    bool has_in = lu_n_present(n) >= 2;
    if (has_attr && n->opset >= 13)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID,
                            "Split-%d takes split as an input, not an attribute", n->opset);
    p->from = has_in ? SPLIT_INPUT : has_attr ? SPLIT_ATTR : SPLIT_EQUAL;
    p->num_outputs = 0;
    const graft_attr *a = graft_node_attr(n, "num_outputs");
    if (a && n->opset >= 18) {
        if (has_in)
            return lu_node_fail(err, n, GRAFT_ERR_INVALID,
                                "split and num_outputs are both given");
        if (a->i != n->n_outputs || a->i < 1)
            return lu_node_fail(err, n, GRAFT_ERR_INVALID,
                                "num_outputs is %lld but the node has %d outputs",
                                (long long)a->i, n->n_outputs);
        p->num_outputs = a->i;
    }
    return GRAFT_OK;
}

/* Length of every output along the axis; *ax the normalised axis. */
static graft_status split_sizes(graft_op_call *c, int *ax, int64_t *len)
{
    const split_params *p = c->params;
    const graft_tensor *x = c->in[0];
    int n_out = c->n_out;
    char s1[128];
    if (x->rank == 0 || !lu_axis(p->axis, x->rank, ax))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is out of range for rank %d",
                              (long long)p->axis, x->rank);
    int64_t d = x->dims[*ax];
    if (p->from != SPLIT_EQUAL) {
        const int64_t *v = NULL;
        int64_t k = 0;
        if (p->from == SPLIT_ATTR) {
            k = graft_node_attr_ints(c->node, "split", &v);
        } else {
            graft_status st = needs_ints(c, 1, "split");
            if (st)
                return st;
            k = graft_tensor_nelem(c->in[1]);
            v = graft_tensor_i64(c->in[1]);
        }
        if (k != n_out)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "split has %lld entries for %d outputs",
                                  (long long)k, n_out);
        int64_t sum = 0;
        for (int i = 0; i < n_out; i++) {
            if (v[i] < 0 || v[i] > INT64_MAX - sum)
                return graft__op_fail(c, GRAFT_ERR_INVALID, "split entry %d is %lld", i,
                                      (long long)v[i]);
            len[i] = v[i];
            sum += v[i];
        }
        if (d >= 0 && sum != d)
            return graft__op_fail(c, GRAFT_ERR_SHAPE,
                                  "split sums to %lld but axis %d of %s has %lld", (long long)sum,
                                  *ax, shape_str(x->rank, x->dims, s1, sizeof s1), (long long)d);
        return GRAFT_OK;
    }
    if (d < 0) {
        for (int i = 0; i < n_out; i++)
            len[i] = -1;
        return GRAFT_OK;
    }
    if (p->num_outputs > 0) {
        int64_t chunk = (d + n_out - 1) / n_out;
        for (int i = 0; i < n_out; i++) {
            int64_t left = d - chunk * i;
            len[i] = left < 0 ? 0 : left < chunk ? left : chunk;
        }
        return GRAFT_OK;
    }
    if (d % n_out != 0)
        return graft__op_fail(c, GRAFT_ERR_SHAPE,
                              "axis %d of %s (size %lld) does not split into %d equal parts", *ax,
                              shape_str(x->rank, x->dims, s1, sizeof s1), (long long)d, n_out);
    for (int i = 0; i < n_out; i++)
        len[i] = d / n_out;
    return GRAFT_OK;
}

static graft_status split_infer(graft_op_call *c)
{
    int ax = 0;
    int64_t len[SPLIT_MAX_OUT];
    graft_status st = split_sizes(c, &ax, len);
    if (st)
        return st;
    const graft_tensor *x = c->in[0];
    for (int i = 0; i < c->n_out; i++) {
        if (!c->out[i])
            continue;
        lu_copy_shape(c->out[i], x);
        c->out[i]->dims[ax] = len[i];
    }
    return GRAFT_OK;
}

static graft_status split_forward(graft_op_call *c)
{
    int ax = 0;
    int64_t len[SPLIT_MAX_OUT];
    graft_status st = split_sizes(c, &ax, len);
    if (st)
        return st;
    const graft_tensor *x = c->in[0];
    for (int i = 0; i < c->n_out; i++)
        if (c->out[i] && c->out[i]->dims[ax] != len[i])
            return graft__op_fail(c, GRAFT_ERR_SHAPE,
                                  "split now gives output %d %lld elements, the plan has %lld", i,
                                  (long long)len[i], (long long)c->out[i]->dims[ax]);
    size_t es = graft_dtype_size(x->dtype);
    int64_t outer = graft_shape_nelem(ax, x->dims);
    int64_t inner = graft_shape_nelem(x->rank - ax - 1, x->dims + ax + 1);
    int64_t xrow = x->dims[ax] * inner, off = 0;
    for (int i = 0; i < c->n_out; i++) {
        int64_t row = len[i] * inner;
        if (c->out[i] && row > 0) {
            /* [outer, row] box at stride [xrow, 1] */
            int64_t dims[2] = {outer, row}, xs[2] = {xrow, 1};
            box_copy(c, es, 2, dims, (const char *)x->data + (size_t)off * es, xs,
                     c->out[i]->data);
        }
        off += row;
    }
    return GRAFT_OK;
}

static graft_status split_backward(graft_op_call *c)
{
    if (!c->d_in[0])
        return GRAFT_OK;
    int ax = 0;
    int64_t len[SPLIT_MAX_OUT];
    graft_status st = split_sizes(c, &ax, len);
    if (st)
        return st;
    const graft_tensor *x = c->in[0];
    int64_t outer = graft_shape_nelem(ax, x->dims);
    int64_t inner = graft_shape_nelem(x->rank - ax - 1, x->dims + ax + 1);
    int64_t xrow = x->dims[ax] * inner, off = 0;
    float *dx = c->d_in[0]->data;
    for (int i = 0; i < c->n_out; i++)
        if (c->d_out[i] && c->d_out[i]->dims[ax] != len[i])
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "split changed since the plan was built");
    for (int i = 0; i < c->n_out; i++) {
        int64_t row = len[i] * inner;
        if (c->d_out[i] && row > 0) {
            int64_t dims[2] = {outer, row}, xs[2] = {xrow, 1};
            box_add(c, 2, dims, dx + off, xs, c->d_out[i]->data, true);
        }
        off += row;
    }
    return GRAFT_OK;
}

const graft_op_def graft__op_split = {
    .op_type = "Split", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(split_params), .parse = split_parse, .infer = split_infer,
    .forward = split_forward, .backward = split_backward};

/* ---- Tile -------------------------------------------------------------------- */

static graft_status tile_parse(const graft_graph *g, const graft_node *n, void *params,
                               graft_error *err)
{
    (void)g;
    (void)params;
    return lu_check_inputs(err, n, 2, 2);
}

/* The output as [r0, d0, r1, d1, ..] (row-major, the same memory as
 * [r0*d0, r1*d1, ..]) with x's strides: 0 over the repeats. */
static int tile_view(const graft_tensor *x, const int64_t *rep, int64_t *dims, int64_t *xs)
{
    int64_t st[GRAFT_MAX_RANK];
    lu_strides(x->rank, x->dims, st);
    for (int i = 0; i < x->rank; i++) {
        dims[2 * i] = rep[i];
        xs[2 * i] = 0;
        dims[2 * i + 1] = x->dims[i];
        xs[2 * i + 1] = st[i];
    }
    return 2 * x->rank;
}

static graft_status tile_shape(graft_op_call *c, int64_t *dims)
{
    const graft_tensor *x = c->in[0];
    graft_status st = needs_ints(c, 1, "repeats");
    if (st)
        return st;
    const graft_tensor *r = c->in[1];
    if (graft_tensor_nelem(r) != x->rank)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "repeats has %lld entries for rank %d",
                              (long long)graft_tensor_nelem(r), x->rank);
    const int64_t *rep = graft_tensor_i64(r);
    for (int i = 0; i < x->rank; i++) {
        if (rep[i] < 0)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "repeats[%d] is %lld", i,
                                  (long long)rep[i]);
        if (x->dims[i] < 0) {
            dims[i] = -1;
            continue;
        }
        if (x->dims[i] > 0 && rep[i] > INT64_MAX / x->dims[i])
            return graft__op_fail(c, GRAFT_ERR_INVALID, "repeats[%d] = %lld overflows the size",
                                  i, (long long)rep[i]);
        dims[i] = x->dims[i] * rep[i];
    }
    if (graft_shape_nelem(x->rank, dims) < 0 && graft_shape_nelem(x->rank, x->dims) >= 0)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "the tiled size overflows");
    return GRAFT_OK;
}

static graft_status tile_infer(graft_op_call *c)
{
    int64_t dims[GRAFT_MAX_RANK];
    graft_status st = tile_shape(c, dims);
    if (st)
        return st;
    lu_set_shape(c->out[0], c->in[0]->dtype, c->in[0]->rank, dims);
    return GRAFT_OK;
}

/* The repeats again at run time, checked against the planned output y. */
static graft_status tile_check(graft_op_call *c, const graft_tensor *y)
{
    int64_t dims[GRAFT_MAX_RANK];
    graft_status st = tile_shape(c, dims);
    if (st)
        return st;
    return same_dims(c, y, c->in[0]->rank, dims, "repeats");
}

static graft_status tile_forward(graft_op_call *c)
{
    const graft_tensor *x = c->in[0];
    graft_status st = tile_check(c, c->out[0]);
    if (st)
        return st;
    int64_t dims[BOX_MAX], xs[BOX_MAX];
    int r = tile_view(x, graft_tensor_i64(c->in[1]), dims, xs);
    box_copy(c, graft_dtype_size(x->dtype), r, dims, x->data, xs, c->out[0]->data);
    return GRAFT_OK;
}

static graft_status tile_backward(graft_op_call *c)
{
    if (!c->d_in[0] || !c->d_out[0])
        return GRAFT_OK;
    graft_status st = tile_check(c, c->d_out[0]);
    if (st)
        return st;
    int64_t dims[BOX_MAX], xs[BOX_MAX];
    int r = tile_view(c->in[0], graft_tensor_i64(c->in[1]), dims, xs);
    box_add(c, r, dims, c->d_in[0]->data, xs, c->d_out[0]->data, false);
    return GRAFT_OK;
}

const graft_op_def graft__op_tile = {
    .op_type = "Tile", .domain = "", .min_opset = 6, .flags = 0, .params_size = 0,
    .parse = tile_parse, .infer = tile_infer, .forward = tile_forward, .backward = tile_backward};

/* ---- Expand ------------------------------------------------------------------ */

static graft_status expand_parse(const graft_graph *g, const graft_node *n, void *params,
                                 graft_error *err)
{
    (void)g;
    (void)params;
    return lu_check_inputs(err, n, 2, 2);
}

static graft_status expand_shape(graft_op_call *c, int *rank, int64_t *dims)
{
    const graft_tensor *x = c->in[0];
    graft_status st = needs_ints(c, 1, "the target shape");
    if (st)
        return st;
    int64_t k = graft_tensor_nelem(c->in[1]);
    if (k > GRAFT_MAX_RANK)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "target rank %lld exceeds %d",
                              (long long)k, GRAFT_MAX_RANK);
    const int64_t *shape = graft_tensor_i64(c->in[1]);
    char s1[160], s2[160];
    for (int i = 0; i < k; i++)
        if (shape[i] < 0)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "target shape entry %d is %lld", i,
                                  (long long)shape[i]);
    if (graft__broadcast_shape(x->rank, x->dims, (int)k, shape, rank, dims))
        return graft__op_fail(c, GRAFT_ERR_SHAPE, "cannot broadcast %s to %s",
                              shape_str(x->rank, x->dims, s1, sizeof s1),
                              shape_str((int)k, shape, s2, sizeof s2));
    return GRAFT_OK;
}

static graft_status expand_infer(graft_op_call *c)
{
    int r = 0;
    int64_t dims[GRAFT_MAX_RANK];
    graft_status st = expand_shape(c, &r, dims);
    if (st)
        return st;
    if (graft_shape_nelem(r, dims) < 0)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "the expanded size overflows");
    lu_set_shape(c->out[0], c->in[0]->dtype, r, dims);
    return GRAFT_OK;
}

static graft_status expand_check(graft_op_call *c, const graft_tensor *y)
{
    int r = 0;
    int64_t dims[GRAFT_MAX_RANK];
    graft_status st = expand_shape(c, &r, dims);
    if (st)
        return st;
    return same_dims(c, y, r, dims, "the target shape");
}

/* x's strides over the output's dims (0 where x broadcasts). */
static void expand_strides(const graft_tensor *x, const graft_tensor *y, int64_t *xs)
{
    int64_t st[GRAFT_MAX_RANK];
    lu_strides(x->rank, x->dims, st);
    int lead = y->rank - x->rank;
    for (int i = 0; i < y->rank; i++) {
        int j = i - lead;
        xs[i] = j < 0 || x->dims[j] == 1 ? 0 : st[j];
    }
}

static graft_status expand_forward(graft_op_call *c)
{
    const graft_tensor *x = c->in[0], *y = c->out[0];
    graft_status st = expand_check(c, y);
    if (st)
        return st;
    int64_t xs[GRAFT_MAX_RANK];
    expand_strides(x, y, xs);
    box_copy(c, graft_dtype_size(x->dtype), y->rank, y->dims, x->data, xs, y->data);
    return GRAFT_OK;
}

static graft_status expand_backward(graft_op_call *c)
{
    if (!c->d_in[0] || !c->d_out[0])
        return GRAFT_OK;
    const graft_tensor *x = c->in[0], *dy = c->d_out[0];
    graft_status st = expand_check(c, dy);
    if (st)
        return st;
    int64_t xs[GRAFT_MAX_RANK];
    expand_strides(x, dy, xs);
    box_add(c, dy->rank, dy->dims, c->d_in[0]->data, xs, dy->data, false);
    return GRAFT_OK;
}

const graft_op_def graft__op_expand = {
    .op_type = "Expand", .domain = "", .min_opset = 8, .flags = 0, .params_size = 0,
    .parse = expand_parse, .infer = expand_infer, .forward = expand_forward,
    .backward = expand_backward};

/* ---- DepthToSpace / SpaceToDepth ---------------------------------------------- */

typedef struct d2s_params {
    int64_t block;
    bool crd;       /* DepthToSpace CRD mode (11+) */
    bool to_depth;  /* SpaceToDepth */
} d2s_params;

static graft_status d2s_parse(const graft_graph *g, const graft_node *n, void *params,
                              graft_error *err)
{
    (void)g;
    d2s_params *p = params;
    p->to_depth = !strcmp(n->op_type, "SpaceToDepth");
    const graft_attr *a = graft_node_attr(n, "blocksize");
    if (!a)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "the blocksize attribute is missing");
    if (a->i < 1 || a->i > (1 << 20))
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "blocksize %lld is out of range",
                            (long long)a->i);
    p->block = a->i;
    const char *mode = graft_node_attr_string(n, "mode", "DCR");
    if (p->to_depth || !strcmp(mode, "DCR"))
        p->crd = false;
    else if (!strcmp(mode, "CRD") && n->opset >= 11)
        p->crd = true;
    else
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "mode '%s' is not DCR or CRD", mode);
    return lu_check_inputs(err, n, 1, 1);
}

static graft_status d2s_infer(graft_op_call *c)
{
    const d2s_params *p = c->params;
    const graft_tensor *x = c->in[0];
    int64_t b = p->block;
    char s1[128];
    if (x->rank != 4)
        return graft__op_fail(c, GRAFT_ERR_SHAPE, "input %s is not 4-D NCHW",
                              shape_str(x->rank, x->dims, s1, sizeof s1));
    int64_t d[4];
    memcpy(d, x->dims, sizeof d);
    if (!p->to_depth) {
        if (d[1] >= 0 && d[1] % (b * b) != 0)
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "%lld channels do not divide by %lld^2",
                                  (long long)d[1], (long long)b);
        if (d[2] > INT64_MAX / b || d[3] > INT64_MAX / b)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "the spatial size overflows");
        d[1] = d[1] < 0 ? -1 : d[1] / (b * b);
        d[2] = d[2] < 0 ? -1 : d[2] * b;
        d[3] = d[3] < 0 ? -1 : d[3] * b;
    } else {
        if ((d[2] >= 0 && d[2] % b) || (d[3] >= 0 && d[3] % b))
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "spatial size %s does not divide by %lld",
                                  shape_str(2, d + 2, s1, sizeof s1), (long long)b);
        if (d[1] > INT64_MAX / (b * b))
            return graft__op_fail(c, GRAFT_ERR_INVALID, "the channel count overflows");
        d[1] = d[1] < 0 ? -1 : d[1] * b * b;
        d[2] = d[2] < 0 ? -1 : d[2] / b;
        d[3] = d[3] < 0 ? -1 : d[3] / b;
    }
    if (graft_shape_nelem(4, d) < 0 && graft_shape_nelem(4, x->dims) >= 0)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "the output size overflows");
    lu_set_shape(c->out[0], x->dtype, 4, d);
    return GRAFT_OK;
}

/* The output as a 6-D contiguous box and x's strides over it.
 *   DCR: y[n, c, h, i, w, j] = x[n, (i*b + j)*C' + c, h, w]
 *   CRD: y[n, c, h, i, w, j] = x[n, c*b*b + i*b + j, h, w]
 *   SpaceToDepth: y[n, (i*b + j)*C + c, h, w] = x[n, c, h*b + i, w*b + j],
 *                 as the box [n, i, j, c, h, w]. */
static void d2s_view(const d2s_params *p, const graft_tensor *x, int64_t *dims, int64_t *xs)
{
    int64_t b = p->block, N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    int64_t sn = C * H * W, sc = H * W, sh = W;
    if (p->to_depth) {
        int64_t h = H / b, w = W / b;
        int64_t d[6] = {N, b, b, C, h, w}, s[6] = {sn, sh, 1, sc, b * sh, b};
        memcpy(dims, d, sizeof d);
        memcpy(xs, s, sizeof s);
        return;
    }
    int64_t cc = C / (b * b);
    int64_t d[6] = {N, cc, H, b, W, b};
    memcpy(dims, d, sizeof d);
    int64_t s_c = p->crd ? b * b * sc : sc;
    int64_t s_i = p->crd ? b * sc : b * cc * sc;
    int64_t s_j = p->crd ? sc : cc * sc;
    int64_t s[6] = {sn, s_c, sh, s_i, 1, s_j};
    memcpy(xs, s, sizeof s);
}

static graft_status d2s_forward(graft_op_call *c)
{
    int64_t dims[6], xs[6];
    d2s_view(c->params, c->in[0], dims, xs);
    box_copy(c, graft_dtype_size(c->in[0]->dtype), 6, dims, c->in[0]->data, xs,
             c->out[0]->data);
    return GRAFT_OK;
}

static graft_status d2s_backward(graft_op_call *c)
{
    if (!c->d_in[0] || !c->d_out[0])
        return GRAFT_OK;
    int64_t dims[6], xs[6];
    d2s_view(c->params, c->in[0], dims, xs);
    box_add(c, 6, dims, c->d_in[0]->data, xs, c->d_out[0]->data, true);
    return GRAFT_OK;
}

const graft_op_def graft__op_depth_to_space = {
    .op_type = "DepthToSpace", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(d2s_params), .parse = d2s_parse, .infer = d2s_infer,
    .forward = d2s_forward, .backward = d2s_backward};

const graft_op_def graft__op_space_to_depth = {
    .op_type = "SpaceToDepth", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(d2s_params), .parse = d2s_parse, .infer = d2s_infer,
    .forward = d2s_forward, .backward = d2s_backward};

/* ---- GatherElements / ScatterElements ------------------------------------------- */

enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

typedef struct elems_params {
    int64_t axis;
    int reduction;
} elems_params;

static graft_status parse_reduction(const graft_node *n, int *out, graft_error *err)
{
    const char *r = graft_node_attr_string(n, "reduction", "none");
    static const char *const names[] = {"none", "add", "mul", "max", "min"};
    static const int since[] = {0, 16, 16, 18, 18};
    for (int i = 0; i < 5; i++)
        if (!strcmp(r, names[i])) {
            if (n->opset > 0 && n->opset < since[i])
                return lu_node_fail(err, n, GRAFT_ERR_INVALID,
                                    "reduction '%s' needs opset %d, the model has %d", r,
                                    since[i], n->opset);
            *out = i;
            return GRAFT_OK;
        }
    return lu_node_fail(err, n, GRAFT_ERR_INVALID, "unknown reduction '%s'", r);
}

static graft_status elems_parse(const graft_graph *g, const graft_node *n, void *params,
                                graft_error *err)
{
    (void)g;
    elems_params *p = params;
    p->axis = graft_node_attr_int(n, "axis", 0);
    p->reduction = RED_NONE;
    bool scatter = !strcmp(n->op_type, "ScatterElements") || !strcmp(n->op_type, "Scatter");
    if (scatter) {
        graft_status st = parse_reduction(n, &p->reduction, err);
        if (st)
            return st;
    }
    return lu_check_inputs(err, n, scatter ? 3 : 2, scatter ? 3 : 2);
}

/* Checks ranks and sizes: indices (and updates) have data's rank and fit
 * inside it off the axis. */
static graft_status elems_check(graft_op_call *c, int *ax)
{
    const elems_params *p = c->params;
    const graft_tensor *x = c->in[0], *ind = c->in[1];
    char s1[128], s2[128];
    if (!lu_axis(p->axis, x->rank, ax))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is out of range for rank %d",
                              (long long)p->axis, x->rank);
    if (ind->dtype != GRAFT_INT64)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "indices must be integers, not %s",
                              graft_dtype_name(ind->dtype));
    bool ok = ind->rank == x->rank;
    for (int d = 0; ok && d < x->rank; d++)
        ok = d == *ax || x->dims[d] < 0 || ind->dims[d] <= x->dims[d];
    if (!ok)
        return graft__op_fail(c, GRAFT_ERR_SHAPE, "indices %s do not fit data %s off axis %d",
                              shape_str(ind->rank, ind->dims, s1, sizeof s1),
                              shape_str(x->rank, x->dims, s2, sizeof s2), *ax);
    if (c->n_in > 2) {
        const graft_tensor *u = c->in[2];
        if (u->dtype != x->dtype)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "updates are %s, data %s",
                                  graft_dtype_name(u->dtype), graft_dtype_name(x->dtype));
        ok = u->rank == ind->rank;
        for (int d = 0; ok && d < u->rank; d++)
            ok = u->dims[d] == ind->dims[d];
        if (!ok)
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "updates %s do not match indices %s",
                                  shape_str(u->rank, u->dims, s1, sizeof s1),
                                  shape_str(ind->rank, ind->dims, s2, sizeof s2));
    }
    return GRAFT_OK;
}

/* Every index within [-size, size); false names the first bad one. */
static bool index_check(const graft_tensor *ind, int64_t size, int64_t *bad)
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

static graft_status bad_index(graft_op_call *c, int64_t bad, int ax, int64_t size)
{
    return graft__op_fail(c, GRAFT_ERR_INVALID,
                          "index %lld is out of range for axis %d of size %lld", (long long)bad,
                          ax, (long long)size);
}

static graft_status elems_infer(graft_op_call *c)
{
    const elems_params *p = c->params;
    int ax = 0;
    graft_status st = elems_check(c, &ax);
    if (st)
        return st;
    const graft_tensor *x = c->in[0], *ind = c->in[1];
    if (p->reduction != RED_NONE && (st = check_dtype(c, x, false, "data")))
        return st;
    int64_t bad = 0;
    if (ind->data && x->dims[ax] >= 0 && !index_check(ind, x->dims[ax], &bad))
        return bad_index(c, bad, ax, x->dims[ax]);
    if (c->n_in > 2)
        lu_copy_shape(c->out[0], x);
    else
        lu_set_shape(c->out[0], x->dtype, ind->rank, ind->dims);
    return GRAFT_OK;
}

/* Walks the indices tensor: for element i (row-major over ind's dims), the
 * data offset with the axis coordinate replaced by idx[i]. */
#define ELEMS_WALK(BODY)                                                                      \
    do {                                                                                      \
        int64_t xst_[GRAFT_MAX_RANK], pos_[GRAFT_MAX_RANK] = {0}, base_ = 0;                  \
        lu_strides(x->rank, x->dims, xst_);                                                   \
        int64_t n_ = graft_tensor_nelem(ind), size_ = x->dims[ax];                            \
        const int64_t *idx_ = ind->data;                                                      \
        for (int64_t i = 0; i < n_; i++) {                                                    \
            int64_t k_ = idx_[i] < 0 ? idx_[i] + size_ : idx_[i];                             \
            int64_t xo = base_ + k_ * xst_[ax];                                               \
            BODY;                                                                             \
            for (int d_ = ind->rank - 1; d_ >= 0; d_--) {                                     \
                if (d_ != ax)                                                                 \
                    base_ += xst_[d_];                                                        \
                if (++pos_[d_] < ind->dims[d_])                                               \
                    break;                                                                    \
                if (d_ != ax)                                                                 \
                    base_ -= xst_[d_] * ind->dims[d_];                                        \
                pos_[d_] = 0;                                                                 \
            }                                                                                 \
        }                                                                                     \
    } while (0)

static graft_status gather_elems_forward(graft_op_call *c)
{
    int ax = 0;
    graft_status st = elems_check(c, &ax);
    if (st)
        return st;
    const graft_tensor *x = c->in[0], *ind = c->in[1];
    int64_t bad = 0;
    if (!index_check(ind, x->dims[ax], &bad))
        return bad_index(c, bad, ax, x->dims[ax]);
    size_t es = graft_dtype_size(x->dtype);
    const char *src = x->data;
    char *dst = c->out[0]->data;
    if (es == 4)
        ELEMS_WALK(((uint32_t *)dst)[i] = ((const uint32_t *)src)[xo]);
    else if (es == 8)
        ELEMS_WALK(((uint64_t *)dst)[i] = ((const uint64_t *)src)[xo]);
    else
        ELEMS_WALK(memcpy(dst + (size_t)i * es, src + (size_t)xo * es, es));
    return GRAFT_OK;
}

static graft_status gather_elems_backward(graft_op_call *c)
{
    if (!c->d_in[0] || !c->d_out[0])
        return GRAFT_OK;
    int ax = 0;
    graft_status st = elems_check(c, &ax);
    if (st)
        return st;
    const graft_tensor *x = c->in[0], *ind = c->in[1];
    int64_t bad = 0;
    if (!index_check(ind, x->dims[ax], &bad))
        return bad_index(c, bad, ax, x->dims[ax]);
    float *dx = c->d_in[0]->data;
    const float *dy = c->d_out[0]->data;
    ELEMS_WALK(dx[xo] += dy[i]);
    return GRAFT_OK;
}

const graft_op_def graft__op_gather_elements = {
    .op_type = "GatherElements", .domain = "", .min_opset = 11, .flags = 0,
    .params_size = sizeof(elems_params), .parse = elems_parse, .infer = elems_infer,
    .forward = gather_elems_forward, .backward = gather_elems_backward};

/* y[o] (op)= u, by reduction, for the float and int64 forms. */
#define RED_APPLY(T, red, y, u)                                                               \
    do {                                                                                      \
        T u_ = (u);                                                                           \
        switch (red) {                                                                        \
        case RED_ADD: (y) += u_; break;                                                       \
        case RED_MUL: (y) *= u_; break;                                                       \
        case RED_MAX: (y) = u_ > (y) ? u_ : (y); break;                                       \
        case RED_MIN: (y) = u_ < (y) ? u_ : (y); break;                                       \
        default: (y) = u_; break;                                                             \
        }                                                                                     \
    } while (0)

static graft_status scatter_elems_forward(graft_op_call *c)
{
    const elems_params *p = c->params;
    int ax = 0;
    graft_status st = elems_check(c, &ax);
    if (st)
        return st;
    const graft_tensor *x = c->in[0], *ind = c->in[1], *u = c->in[2];
    int64_t bad = 0;
    if (!index_check(ind, x->dims[ax], &bad))
        return bad_index(c, bad, ax, x->dims[ax]);
    size_t es = graft_dtype_size(x->dtype);
    graft__light_copy(c, c->out[0]->data, x->data, (size_t)graft_tensor_nelem(x) * es);
    int red = p->reduction;
    if (red == RED_NONE) {
        const char *src = u->data;
        char *dst = c->out[0]->data;
        ELEMS_WALK(memcpy(dst + (size_t)xo * es, src + (size_t)i * es, es));
    } else if (x->dtype == GRAFT_FLOAT) {
        float *y = c->out[0]->data;
        const float *uv = u->data;
        ELEMS_WALK(RED_APPLY(float, red, y[xo], uv[i]));
    } else {
        int64_t *y = c->out[0]->data;
        const int64_t *uv = u->data;
        ELEMS_WALK(RED_APPLY(int64_t, red, y[xo], uv[i]));
    }
    return GRAFT_OK;
}

const graft_op_def graft__op_scatter_elements = {
    .op_type = "ScatterElements", .domain = "", .min_opset = 11, .flags = 0,
    .params_size = sizeof(elems_params), .parse = elems_parse, .infer = elems_infer,
    .forward = scatter_elems_forward, .backward = NULL};

/* Scatter-9/10: ScatterElements under its old name (deprecated by 11) */
const graft_op_def graft__op_scatter = {
    .op_type = "Scatter", .domain = "", .min_opset = 9, .flags = 0,
    .params_size = sizeof(elems_params), .parse = elems_parse, .infer = elems_infer,
    .forward = scatter_elems_forward, .backward = NULL};

/* ---- GatherND / ScatterND ----------------------------------------------------- */

typedef struct nd_params {
    int64_t batch_dims;
    int reduction;
} nd_params;

static graft_status nd_parse(const graft_graph *g, const graft_node *n, void *params,
                             graft_error *err)
{
    (void)g;
    nd_params *p = params;
    bool scatter = !strcmp(n->op_type, "ScatterND");
    p->batch_dims = scatter ? 0 : graft_node_attr_int(n, "batch_dims", 0);
    p->reduction = RED_NONE;
    if (scatter) {
        graft_status st = parse_reduction(n, &p->reduction, err);
        if (st)
            return st;
    }
    return lu_check_inputs(err, n, scatter ? 3 : 2, scatter ? 3 : 2);
}

/* The shared geometry: b batch dims, k indexed dims, n_tuples index tuples
 * per batch, slice = elements copied per tuple. */
typedef struct nd_geom {
    int b, k;
    int64_t n_batch, n_tuples, slice, x_batch;
    int64_t xst[GRAFT_MAX_RANK];
} nd_geom;

static graft_status nd_check(graft_op_call *c, nd_geom *gm)
{
    const nd_params *p = c->params;
    const graft_tensor *x = c->in[0], *ind = c->in[1];
    char s1[128], s2[128];
    if (ind->dtype != GRAFT_INT64)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "indices must be integers, not %s",
                              graft_dtype_name(ind->dtype));
    int r = x->rank, q = ind->rank;
    if (q < 1 || r < 1)
        return graft__op_fail(c, GRAFT_ERR_SHAPE, "data and indices need rank >= 1");
    int64_t b = p->batch_dims, k = ind->dims[q - 1];
    if (b < 0 || b >= q || b >= r)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "batch_dims %lld for ranks %d and %d",
                              (long long)b, r, q);
    if (k < 0 || k > r - b)
        return graft__op_fail(c, GRAFT_ERR_SHAPE,
                              "index tuples of %lld entries for data %s with %lld batch dims",
                              (long long)k, shape_str(r, x->dims, s1, sizeof s1), (long long)b);
    for (int d = 0; d < b; d++)
        if (x->dims[d] != ind->dims[d])
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "batch dims of data %s and indices %s differ",
                                  shape_str(r, x->dims, s1, sizeof s1),
                                  shape_str(q, ind->dims, s2, sizeof s2));
    gm->b = (int)b;
    gm->k = (int)k;
    gm->n_batch = graft_shape_nelem((int)b, x->dims);
    gm->n_tuples = graft_shape_nelem(q - 1 - (int)b, ind->dims + b);
    gm->slice = graft_shape_nelem(r - (int)(b + k), x->dims + b + k);
    gm->x_batch = graft_shape_nelem(r - (int)b, x->dims + b);
    lu_strides(r, x->dims, gm->xst);
    return GRAFT_OK;
}

/* Offset of tuple t (global, over batches) in x; false if out of range. */
static bool nd_offset(const graft_tensor *x, const nd_geom *gm, const int64_t *idx, int64_t t,
                      int64_t *off, int64_t *bad, int *bad_dim)
{
    int64_t o = (t / gm->n_tuples) * gm->x_batch;
    if (gm->k == 0) {
        *off = o;
        return true;
    }
    const int64_t *tu = idx + t * gm->k;
    for (int j = 0; j < gm->k; j++) {
        int64_t size = x->dims[gm->b + j], v = tu[j];
        if (v < -size || v >= size) {
            *bad = v;
            *bad_dim = gm->b + j;
            return false;
        }
        o += (v < 0 ? v + size : v) * gm->xst[gm->b + j];
    }
    *off = o;
    return true;
}

static graft_status gather_nd_infer(graft_op_call *c)
{
    nd_geom gm;
    graft_status st = nd_check(c, &gm);
    if (st)
        return st;
    const graft_tensor *x = c->in[0], *ind = c->in[1];
    int r = ind->rank - 1 + x->rank - gm.b - gm.k;
    if (r > GRAFT_MAX_RANK)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "output rank %d exceeds %d", r,
                              GRAFT_MAX_RANK);
    int64_t dims[GRAFT_MAX_RANK];
    int n = 0;
    for (int d = 0; d < ind->rank - 1; d++)
        dims[n++] = ind->dims[d];
    for (int d = gm.b + gm.k; d < x->rank; d++)
        dims[n++] = x->dims[d];
    if (graft_shape_nelem(r, dims) < 0)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "the output size overflows");
    lu_set_shape(c->out[0], x->dtype, r, dims);
    return GRAFT_OK;
}

static graft_status gather_nd_forward(graft_op_call *c)
{
    nd_geom gm;
    graft_status st = nd_check(c, &gm);
    if (st)
        return st;
    const graft_tensor *x = c->in[0], *ind = c->in[1];
    size_t es = graft_dtype_size(x->dtype), blk = (size_t)gm.slice * es;
    int64_t total = gm.n_batch * gm.n_tuples, bad = 0, off = 0;
    int bad_dim = 0;
    const char *src = x->data;
    char *dst = c->out[0]->data;
    for (int64_t t = 0; t < total; t++) {
        if (!nd_offset(x, &gm, ind->data, t, &off, &bad, &bad_dim))
            return bad_index(c, bad, bad_dim, x->dims[bad_dim]);
        memcpy(dst + (size_t)t * blk, src + (size_t)off * es, blk);
    }
    return GRAFT_OK;
}

const graft_op_def graft__op_gather_nd = {
    .op_type = "GatherND", .domain = "", .min_opset = 11, .flags = 0,
    .params_size = sizeof(nd_params), .parse = nd_parse, .infer = gather_nd_infer,
    .forward = gather_nd_forward, .backward = NULL};

static graft_status scatter_nd_infer(graft_op_call *c)
{
    const nd_params *p = c->params;
    nd_geom gm;
    graft_status st = nd_check(c, &gm);
    if (st)
        return st;
    const graft_tensor *x = c->in[0], *ind = c->in[1], *u = c->in[2];
    if (p->reduction != RED_NONE && (st = check_dtype(c, x, false, "data")))
        return st;
    /* updates = indices.shape[:-1] + data.shape[k:] */
    int r = ind->rank - 1 + x->rank - gm.k;
    if (u->dtype != x->dtype)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "updates are %s, data %s",
                              graft_dtype_name(u->dtype), graft_dtype_name(x->dtype));
    bool ok = u->rank == r;
    for (int d = 0; ok && d < ind->rank - 1; d++)
        ok = u->dims[d] == ind->dims[d];
    for (int d = gm.k; ok && d < x->rank; d++)
        ok = u->dims[ind->rank - 1 + d - gm.k] == x->dims[d];
    char s1[128], s2[128], s3[128];
    if (!ok)
        return graft__op_fail(c, GRAFT_ERR_SHAPE, "updates %s do not fit data %s and indices %s",
                              shape_str(u->rank, u->dims, s1, sizeof s1),
                              shape_str(x->rank, x->dims, s2, sizeof s2),
                              shape_str(ind->rank, ind->dims, s3, sizeof s3));
    lu_copy_shape(c->out[0], x);
    return GRAFT_OK;
}

static graft_status scatter_nd_forward(graft_op_call *c)
{
    const nd_params *p = c->params;
    nd_geom gm;
    graft_status st = nd_check(c, &gm);
    if (st)
        return st;
    const graft_tensor *x = c->in[0], *ind = c->in[1], *u = c->in[2];
    size_t es = graft_dtype_size(x->dtype);
    graft__light_copy(c, c->out[0]->data, x->data, (size_t)graft_tensor_nelem(x) * es);
    int64_t total = gm.n_tuples, bad = 0, off = 0, S = gm.slice;
    int bad_dim = 0;
    for (int64_t t = 0; t < total; t++) {
        if (!nd_offset(x, &gm, ind->data, t, &off, &bad, &bad_dim))
            return bad_index(c, bad, bad_dim, x->dims[bad_dim]);
        if (p->reduction == RED_NONE) {
            memcpy((char *)c->out[0]->data + (size_t)off * es,
                   (const char *)u->data + (size_t)(t * S) * es, (size_t)S * es);
        } else if (x->dtype == GRAFT_FLOAT) {
            float *y = (float *)c->out[0]->data + off;
            const float *uv = (const float *)u->data + t * S;
            for (int64_t j = 0; j < S; j++)
                RED_APPLY(float, p->reduction, y[j], uv[j]);
        } else {
            int64_t *y = (int64_t *)c->out[0]->data + off;
            const int64_t *uv = (const int64_t *)u->data + t * S;
            for (int64_t j = 0; j < S; j++)
                RED_APPLY(int64_t, p->reduction, y[j], uv[j]);
        }
    }
    return GRAFT_OK;
}

const graft_op_def graft__op_scatter_nd = {
    .op_type = "ScatterND", .domain = "", .min_opset = 11, .flags = 0,
    .params_size = sizeof(nd_params), .parse = nd_parse, .infer = scatter_nd_infer,
    .forward = scatter_nd_forward, .backward = NULL};

/* ---- ArgMax / ArgMin ------------------------------------------------------------ */

typedef struct arg_params {
    int64_t axis;
    bool keepdims, last, min;
} arg_params;

static graft_status arg_parse(const graft_graph *g, const graft_node *n, void *params,
                              graft_error *err)
{
    (void)g;
    arg_params *p = params;
    p->min = !strcmp(n->op_type, "ArgMin");
    p->axis = graft_node_attr_int(n, "axis", 0);
    p->keepdims = graft_node_attr_int(n, "keepdims", 1) != 0;
    p->last = graft_node_attr_int(n, "select_last_index", 0) != 0;
    return lu_check_inputs(err, n, 1, 1);
}

static graft_status arg_infer(graft_op_call *c)
{
    const arg_params *p = c->params;
    const graft_tensor *x = c->in[0];
    int ax = 0;
    graft_status st = check_dtype(c, x, false, "input");
    if (st)
        return st;
    if (x->rank == 0 || !lu_axis(p->axis, x->rank, &ax))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is out of range for rank %d",
                              (long long)p->axis, x->rank);
    if (x->dims[ax] == 0)
        return graft__op_fail(c, GRAFT_ERR_SHAPE, "axis %d is empty: no extreme", ax);
    int64_t dims[GRAFT_MAX_RANK];
    int r = 0;
    for (int d = 0; d < x->rank; d++) {
        if (d == ax && !p->keepdims)
            continue;
        dims[r++] = d == ax ? 1 : x->dims[d];
    }
    lu_set_shape(c->out[0], GRAFT_INT64, r, dims);
    return GRAFT_OK;
}

#define ARG_LOOP(T)                                                                           \
    do {                                                                                      \
        const T *xv = x->data;                                                                \
        for (int64_t o = 0; o < outer; o++)                                                   \
            for (int64_t j = 0; j < inner; j++) {                                             \
                const T *v = xv + o * n * inner + j;                                          \
                T best = v[0];                                                                \
                int64_t bi = 0;                                                               \
                for (int64_t i = 1; i < n; i++) {                                             \
                    T e = v[i * inner];                                                       \
                    bool better = p->min ? (p->last ? e <= best : e < best)                   \
                                         : (p->last ? e >= best : e > best);                  \
                    if (better) {                                                             \
                        best = e;                                                             \
                        bi = i;                                                               \
                    }                                                                         \
                }                                                                             \
                y[o * inner + j] = bi;                                                        \
            }                                                                                 \
    } while (0)

static graft_status arg_forward(graft_op_call *c)
{
    const arg_params *p = c->params;
    const graft_tensor *x = c->in[0];
    int ax = 0;
    lu_axis(p->axis, x->rank, &ax);
    int64_t outer = graft_shape_nelem(ax, x->dims), n = x->dims[ax];
    int64_t inner = graft_shape_nelem(x->rank - ax - 1, x->dims + ax + 1);
    int64_t *y = c->out[0]->data;
    if (x->dtype == GRAFT_FLOAT)
        ARG_LOOP(float);
    else
        ARG_LOOP(int64_t);
    return GRAFT_OK;
}

const graft_op_def graft__op_arg_max = {
    .op_type = "ArgMax", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(arg_params), .parse = arg_parse, .infer = arg_infer,
    .forward = arg_forward, .backward = NULL};

const graft_op_def graft__op_arg_min = {
    .op_type = "ArgMin", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(arg_params), .parse = arg_parse, .infer = arg_infer,
    .forward = arg_forward, .backward = NULL};

/* ---- CumSum -------------------------------------------------------------------- */

typedef struct cumsum_params {
    bool exclusive, reverse;
} cumsum_params;

static graft_status cumsum_parse(const graft_graph *g, const graft_node *n, void *params,
                                 graft_error *err)
{
    (void)g;
    cumsum_params *p = params;
    p->exclusive = graft_node_attr_int(n, "exclusive", 0) != 0;
    p->reverse = graft_node_attr_int(n, "reverse", 0) != 0;
    return lu_check_inputs(err, n, 2, 2);
}

static graft_status cumsum_axis(graft_op_call *c, int *ax)
{
    int64_t a = 0;
    graft_status st = scalar_int(c, 1, "axis", &a);
    if (st)
        return st;
    if (c->in[0]->rank == 0 || !lu_axis(a, c->in[0]->rank, ax))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is out of range for rank %d",
                              (long long)a, c->in[0]->rank);
    return GRAFT_OK;
}

static graft_status cumsum_infer(graft_op_call *c)
{
    graft_status st = check_dtype(c, c->in[0], false, "input");
    if (st)
        return st;
    int ax = 0;
    if (c->in[1]->data && (st = cumsum_axis(c, &ax)))
        return st;
    if (c->in[1]->dtype != GRAFT_INT64 || graft_shape_nelem(c->in[1]->rank, c->in[1]->dims) != 1)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "axis must be one integer");
    lu_copy_shape(c->out[0], c->in[0]);
    return GRAFT_OK;
}

/* y = running sum of x along the middle dim of [outer, n, inner]; rows of
 * inner stay contiguous so the adds vectorise. */
#define CUMSUM_LOOP(T, xp, yp)                                                                \
    do {                                                                                      \
        const T *xv_ = (xp);                                                                  \
        T *yv_ = (yp);                                                                        \
        for (int64_t o = 0; o < outer; o++) {                                                 \
            const T *xb = xv_ + o * n * inner;                                                \
            T *yb = yv_ + o * n * inner;                                                      \
            for (int64_t s = 0; s < n; s++) {                                                 \
                int64_t i = rev ? n - 1 - s : s, prev = rev ? i + 1 : i - 1;                  \
                T *yr = yb + i * inner;                                                       \
                if (s == 0) {                                                                 \
                    for (int64_t j = 0; j < inner; j++)                                       \
                        yr[j] = excl ? (T)0 : xb[i * inner + j];                              \
                    continue;                                                                 \
                }                                                                             \
                const T *yp_ = yb + prev * inner;                                             \
                const T *xr = xb + (excl ? prev : i) * inner;                                 \
                for (int64_t j = 0; j < inner; j++)                                           \
                    yr[j] = yp_[j] + xr[j];                                                   \
            }                                                                                 \
        }                                                                                     \
    } while (0)

static graft_status cumsum_forward(graft_op_call *c)
{
    const cumsum_params *p = c->params;
    int ax = 0;
    graft_status st = cumsum_axis(c, &ax);
    if (st)
        return st;
    const graft_tensor *x = c->in[0];
    int64_t outer = graft_shape_nelem(ax, x->dims), n = x->dims[ax];
    int64_t inner = graft_shape_nelem(x->rank - ax - 1, x->dims + ax + 1);
    bool rev = p->reverse, excl = p->exclusive;
    if (x->dtype == GRAFT_FLOAT)
        CUMSUM_LOOP(float, x->data, c->out[0]->data);
    else
        CUMSUM_LOOP(int64_t, x->data, c->out[0]->data);
    return GRAFT_OK;
}

/* dx_j = sum of dy_i over the i whose sum includes x_j: the CumSum of dy in
 * the other direction, with the same exclusivity. */
static graft_status cumsum_backward(graft_op_call *c)
{
    const cumsum_params *p = c->params;
    if (!c->d_in[0] || !c->d_out[0])
        return GRAFT_OK;
    int ax = 0;
    graft_status st = cumsum_axis(c, &ax);
    if (st)
        return st;
    const graft_tensor *x = c->in[0];
    int64_t outer = graft_shape_nelem(ax, x->dims), n = x->dims[ax];
    int64_t inner = graft_shape_nelem(x->rank - ax - 1, x->dims + ax + 1);
    bool rev = !p->reverse, excl = p->exclusive, owned = false;
    int64_t total = graft_tensor_nelem(x);
    float *tmp = lu_work(c, (size_t)total * sizeof(float), &owned);
    if (!tmp)
        return graft__op_fail(c, GRAFT_ERR_NOMEM, "out of memory");
    CUMSUM_LOOP(float, c->d_out[0]->data, tmp);
    float *dx = c->d_in[0]->data;
    for (int64_t i = 0; i < total; i++)
        dx[i] += tmp[i];
    lu_work_free(tmp, owned);
    return GRAFT_OK;
}

const graft_op_def graft__op_cum_sum = {
    .op_type = "CumSum", .domain = "", .min_opset = 11, .flags = 0,
    .params_size = sizeof(cumsum_params), .parse = cumsum_parse, .infer = cumsum_infer,
    .forward = cumsum_forward, .backward = cumsum_backward};

/* ---- Trilu --------------------------------------------------------------------- */

typedef struct trilu_params {
    bool upper;
} trilu_params;

static graft_status trilu_parse(const graft_graph *g, const graft_node *n, void *params,
                                graft_error *err)
{
    (void)g;
    trilu_params *p = params;
    p->upper = graft_node_attr_int(n, "upper", 1) != 0;
    return lu_check_inputs(err, n, 1, 2);
}

static graft_status trilu_k(graft_op_call *c, int64_t *k)
{
    *k = 0;
    if (c->n_in < 2 || !c->in[1])
        return GRAFT_OK;
    return scalar_int(c, 1, "k", k);
}

static graft_status trilu_infer(graft_op_call *c)
{
    const graft_tensor *x = c->in[0];
    char s1[128];
    if (x->rank < 2)
        return graft__op_fail(c, GRAFT_ERR_SHAPE, "input %s has rank below 2",
                              shape_str(x->rank, x->dims, s1, sizeof s1));
    graft_status st = check_dtype(c, x, true, "input");
    if (st)
        return st;
    if (c->n_in > 1 && c->in[1] &&
        (c->in[1]->dtype != GRAFT_INT64 || graft_shape_nelem(c->in[1]->rank, c->in[1]->dims) != 1))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "k must be one integer");
    lu_copy_shape(c->out[0], x);
    return GRAFT_OK;
}

/* Column range [lo, hi) kept in row i of an R x C matrix. */
static void trilu_range(bool upper, int64_t k, int64_t i, int64_t cols, int64_t *lo, int64_t *hi)
{
    /* upper keeps j >= i + k, lower keeps j <= i + k; clamp before adding so
     * a huge k cannot overflow */
    int64_t kk = k > cols ? cols + 1 : k < -cols - i ? -cols - i - 1 : k;
    int64_t e = i + kk;
    if (upper) {
        *lo = e < 0 ? 0 : e > cols ? cols : e;
        *hi = cols;
    } else {
        *lo = 0;
        *hi = e + 1 < 0 ? 0 : e + 1 > cols ? cols : e + 1;
    }
}

static graft_status trilu_forward(graft_op_call *c)
{
    const trilu_params *p = c->params;
    int64_t k = 0;
    graft_status st = trilu_k(c, &k);
    if (st)
        return st;
    const graft_tensor *x = c->in[0];
    int64_t R = x->dims[x->rank - 2], C = x->dims[x->rank - 1];
    int64_t mats = graft_shape_nelem(x->rank - 2, x->dims);
    size_t es = graft_dtype_size(x->dtype);
    const char *src = x->data;
    char *dst = c->out[0]->data;
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < R; i++) {
            int64_t lo = 0, hi = 0;
            trilu_range(p->upper, k, i, C, &lo, &hi);
            size_t row = (size_t)((m * R + i) * C) * es;
            memset(dst + row, 0, (size_t)C * es);
            if (hi > lo)
                memcpy(dst + row + (size_t)lo * es, src + row + (size_t)lo * es,
                       (size_t)(hi - lo) * es);
        }
    return GRAFT_OK;
}

static graft_status trilu_backward(graft_op_call *c)
{
    const trilu_params *p = c->params;
    if (!c->d_in[0] || !c->d_out[0])
        return GRAFT_OK;
    int64_t k = 0;
    graft_status st = trilu_k(c, &k);
    if (st)
        return st;
    const graft_tensor *x = c->in[0];
    int64_t R = x->dims[x->rank - 2], C = x->dims[x->rank - 1];
    int64_t mats = graft_shape_nelem(x->rank - 2, x->dims);
    const float *dy = c->d_out[0]->data;
    float *dx = c->d_in[0]->data;
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < R; i++) {
            int64_t lo = 0, hi = 0, row = (m * R + i) * C;
            trilu_range(p->upper, k, i, C, &lo, &hi);
            for (int64_t j = lo; j < hi; j++)
                dx[row + j] += dy[row + j];
        }
    return GRAFT_OK;
}

const graft_op_def graft__op_trilu = {
    .op_type = "Trilu", .domain = "", .min_opset = 14, .flags = 0,
    .params_size = sizeof(trilu_params), .parse = trilu_parse, .infer = trilu_infer,
    .forward = trilu_forward, .backward = trilu_backward};

/* ---- TopK ---------------------------------------------------------------------- */

typedef struct topk_params {
    int64_t axis, k_attr; /* k_attr >= 0: TopK-1's attribute */
    bool largest;
} topk_params;

static graft_status topk_parse(const graft_graph *g, const graft_node *n, void *params,
                               graft_error *err)
{
    (void)g;
    topk_params *p = params;
    p->axis = graft_node_attr_int(n, "axis", -1);
    p->largest = graft_node_attr_int(n, "largest", 1) != 0;
    p->k_attr = -1;
    if (n->opset > 0 && n->opset < 10) {
        const graft_attr *a = graft_node_attr(n, "k");
        if (!a || a->i < 0)
            return lu_node_fail(err, n, GRAFT_ERR_INVALID, "TopK-%d needs a k >= 0 attribute",
                                n->opset);
        p->k_attr = a->i;
    }
    /* sorted=0 leaves the order open; graft always sorts */
    if (n->n_outputs < 2)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "TopK has two outputs");
    return lu_check_inputs(err, n, p->k_attr >= 0 ? 1 : 2, p->k_attr >= 0 ? 1 : 2);
}

static graft_status topk_resolve(graft_op_call *c, int *ax, int64_t *k)
{
    const topk_params *p = c->params;
    const graft_tensor *x = c->in[0];
    if (x->rank == 0 || !lu_axis(p->axis, x->rank, ax))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "axis %lld is out of range for rank %d",
                              (long long)p->axis, x->rank);
    if (p->k_attr >= 0) {
        *k = p->k_attr;
    } else {
        graft_status st = needs_ints(c, 1, "k");
        if (st)
            return st;
        if (graft_tensor_nelem(c->in[1]) != 1)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "k must be one integer");
        *k = graft_tensor_i64(c->in[1])[0];
    }
    if (*k < 0 || (x->dims[*ax] >= 0 && *k > x->dims[*ax]))
        return graft__op_fail(c, GRAFT_ERR_INVALID, "k = %lld for axis %d of size %lld",
                              (long long)*k, *ax, (long long)x->dims[*ax]);
    return GRAFT_OK;
}

static graft_status topk_infer(graft_op_call *c)
{
    int ax = 0;
    int64_t k = 0;
    graft_status st = check_dtype(c, c->in[0], false, "input");
    if (st || (st = topk_resolve(c, &ax, &k)))
        return st;
    const graft_tensor *x = c->in[0];
    if (c->out[0]) {
        lu_copy_shape(c->out[0], x);
        c->out[0]->dims[ax] = k;
    }
    if (c->out[1]) {
        lu_set_shape(c->out[1], GRAFT_INT64, x->rank, x->dims);
        c->out[1]->dims[ax] = k;
    }
    return GRAFT_OK;
}

typedef struct topk_item {
    union {
        float f;
        int64_t i;
    } v;
    int64_t idx;
} topk_item;

/* Orders by value (NaN above every number), ties by the lower index, as the
 * ONNX reference (a stable sort) does. */
static int cmp_f_desc(const void *a, const void *b)
{
    const topk_item *x = a, *y = b;
    float u = x->v.f, w = y->v.f;
    bool nu = u != u, nw = w != w;
    if (nu != nw)
        return nu ? -1 : 1;
    if (!nu && u != w)
        return u > w ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_f_asc(const void *a, const void *b)
{
    const topk_item *x = a, *y = b;
    float u = x->v.f, w = y->v.f;
    bool nu = u != u, nw = w != w;
    if (nu != nw)
        return nu ? 1 : -1;
    if (!nu && u != w)
        return u < w ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_i_desc(const void *a, const void *b)
{
    const topk_item *x = a, *y = b;
    if (x->v.i != y->v.i)
        return x->v.i > y->v.i ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_i_asc(const void *a, const void *b)
{
    const topk_item *x = a, *y = b;
    if (x->v.i != y->v.i)
        return x->v.i < y->v.i ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Runs the selection; calls back per (slice, rank) with the source index.
 * vals / idx: the outputs (either may be NULL); dx/dv: backward. */
static graft_status topk_run(graft_op_call *c, void *vals, int64_t *idx, float *dx,
                             const float *dv)
{
    const topk_params *p = c->params;
    int ax = 0;
    int64_t k = 0;
    graft_status st = topk_resolve(c, &ax, &k);
    if (st)
        return st;
    const graft_tensor *x = c->in[0];
    const graft_tensor *planned = dv ? c->d_out[0] : c->out[0] ? c->out[0] : c->out[1];
    if (planned && planned->dims[ax] != k)
        return graft__op_fail(c, GRAFT_ERR_SHAPE, "k is now %lld, the plan was built for %lld",
                              (long long)k, (long long)planned->dims[ax]);
    int64_t outer = graft_shape_nelem(ax, x->dims), n = x->dims[ax];
    int64_t inner = graft_shape_nelem(x->rank - ax - 1, x->dims + ax + 1);
    if (k == 0 || outer * inner == 0)
        return GRAFT_OK;
    bool owned = false, isf = x->dtype == GRAFT_FLOAT;
    topk_item *it = lu_work(c, (size_t)n * sizeof *it, &owned);
    if (!it)
        return graft__op_fail(c, GRAFT_ERR_NOMEM, "out of memory");
    int (*cmp)(const void *, const void *) = isf ? (p->largest ? cmp_f_desc : cmp_f_asc)
                                                 : (p->largest ? cmp_i_desc : cmp_i_asc);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            int64_t base = o * n * inner + j;
            for (int64_t i = 0; i < n; i++) {
                if (isf)
                    it[i].v.f = ((const float *)x->data)[base + i * inner];
                else
                    it[i].v.i = ((const int64_t *)x->data)[base + i * inner];
                it[i].idx = i;
            }
            qsort(it, (size_t)n, sizeof *it, cmp);
            int64_t ob = o * k * inner + j;
            for (int64_t r = 0; r < k; r++) {
                int64_t yo = ob + r * inner;
                if (vals && isf)
                    ((float *)vals)[yo] = it[r].v.f;
                else if (vals)
                    ((int64_t *)vals)[yo] = it[r].v.i;
                if (idx)
                    idx[yo] = it[r].idx;
                if (dx)
                    dx[base + it[r].idx * inner] += dv[yo];
            }
        }
    lu_work_free(it, owned);
    return GRAFT_OK;
}

static graft_status topk_forward(graft_op_call *c)
{
    return topk_run(c, c->out[0] ? c->out[0]->data : NULL,
                    c->out[1] ? graft_tensor_i64(c->out[1]) : NULL, NULL, NULL);
}

static graft_status topk_backward(graft_op_call *c)
{
    if (!c->d_in[0] || !c->d_out[0] || c->in[0]->dtype != GRAFT_FLOAT)
        return GRAFT_OK;
    return topk_run(c, NULL, NULL, c->d_in[0]->data, c->d_out[0]->data);
}

const graft_op_def graft__op_top_k = {
    .op_type = "TopK", .domain = "", .min_opset = 1, .flags = 0,
    .params_size = sizeof(topk_params), .parse = topk_parse, .infer = topk_infer,
    .forward = topk_forward, .backward = topk_backward};

/* ---- Einsum -------------------------------------------------------------------- */

/* Labels: 'A'..'Z' -> 0..25, 'a'..'z' -> 26..51 (ASCII order, which the
 * implicit output follows); the ellipsis is EIN_ELL in a term and expands to
 * slots EIN_LETTERS.. once the ranks are known. */
#define EIN_MAX_OPS 8
#define EIN_LETTERS 52
#define EIN_SLOTS (EIN_LETTERS + GRAFT_MAX_RANK)
#define EIN_TERM (GRAFT_MAX_RANK + 1)
#define EIN_ELL ((int8_t)-1)

typedef struct einsum_params {
    int n_ops;
    int len[EIN_MAX_OPS + 1]; /* [n_ops]: the output term */
    int8_t term[EIN_MAX_OPS + 1][EIN_TERM];
    bool explicit_out;
} einsum_params;

static graft_status einsum_parse(const graft_graph *g, const graft_node *n, void *params,
                                 graft_error *err)
{
    (void)g;
    einsum_params *p = params;
    const char *eq = graft_node_attr_string(n, "equation", NULL);
    if (!eq)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "the equation attribute is missing");
    memset(p, 0, sizeof *p);
    int t = 0;
    bool ell = false, out = false;
    for (const char *s = eq;; s++) {
        char ch = *s;
        if (ch == ' ')
            continue;
        if (ch == ',' || ch == '\0' || (ch == '-' && s[1] == '>')) {
            if (out && ch != '\0')
                return lu_node_fail(err, n, GRAFT_ERR_INVALID, "equation '%s': bad output term",
                                    eq);
            if (!out) {
                t++;
                if (t > EIN_MAX_OPS)
                    return lu_node_fail(err, n, GRAFT_ERR_UNSUPPORTED,
                                        "equation '%s' has more than %d operands", eq,
                                        EIN_MAX_OPS);
            }
            if (ch == '\0')
                break;
            ell = false;
            if (ch == '-') {
                s++;
                out = true;
                p->explicit_out = true;
            }
            continue;
        }
        int slot = out ? EIN_MAX_OPS : t;
        int8_t code;
        if (ch == '.') {
            if (s[1] != '.' || s[2] != '.' || ell)
                return lu_node_fail(err, n, GRAFT_ERR_INVALID, "equation '%s': bad ellipsis",
                                    eq);
            s += 2;
            ell = true;
            code = EIN_ELL;
        } else if (ch >= 'A' && ch <= 'Z') {
            code = (int8_t)(ch - 'A');
        } else if (ch >= 'a' && ch <= 'z') {
            code = (int8_t)(26 + ch - 'a');
        } else {
            unsigned char u = (unsigned char)ch;
            if (u < 0x20 || u >= 0x7f) /* never half a UTF-8 character in a message */
                return lu_node_fail(err, n, GRAFT_ERR_INVALID,
                                    "equation '%s': bad byte 0x%02x (labels are a-z, A-Z)", eq, u);
            return lu_node_fail(err, n, GRAFT_ERR_INVALID, "equation '%s': bad character '%c'",
                                eq, ch);
        }
        if (p->len[slot] >= EIN_TERM)
            return lu_node_fail(err, n, GRAFT_ERR_UNSUPPORTED,
                                "equation '%s': a term exceeds rank %d", eq, GRAFT_MAX_RANK);
        p->term[slot][p->len[slot]++] = code;
    }
    p->n_ops = t;
    if (p->explicit_out) {
        /* out-term moved to index n_ops for uniform access */
        memmove(p->term[t], p->term[EIN_MAX_OPS], sizeof p->term[t]);
        p->len[t] = p->len[EIN_MAX_OPS];
        for (int i = 0; i < p->len[t]; i++)
            for (int j = 0; j < i; j++)
                if (p->term[t][i] == p->term[t][j])
                    return lu_node_fail(err, n, GRAFT_ERR_INVALID,
                                        "equation '%s' repeats a label in the output", eq);
    }
    if (lu_n_present(n) != t || n->n_inputs != t)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "equation '%s' has %d operands, the node %d",
                            eq, t, n->n_inputs);
    return lu_check_inputs(err, n, t, t);
}

/* The equation over actual shapes: a size per slot, every operand's (and the
 * output's, index n_ops) stride per slot (0: absent or broadcast; repeated
 * labels add up, which walks a diagonal), the output slots in order, and
 * the contracted slots. */
typedef struct ein_plan {
    int n_ops;
    int64_t size[EIN_SLOTS];
    int64_t st[EIN_MAX_OPS + 1][EIN_SLOTS];
    uint8_t count[EIN_MAX_OPS][EIN_SLOTS]; /* occurrences of the slot in the operand */
    int n_out, out_slot[GRAFT_MAX_RANK];
    int64_t out_dims[GRAFT_MAX_RANK];
    int n_con, con_slot[EIN_SLOTS];
} ein_plan;

static graft_status ein_resolve(graft_op_call *c, ein_plan *e)
{
    const einsum_params *p = c->params;
    memset(e, 0, sizeof *e);
    e->n_ops = p->n_ops;
    bool used[EIN_SLOTS] = {false};
    int E = 0; /* broadcast ellipsis rank */
    int ell_rank[EIN_MAX_OPS];
    char s1[128];
    for (int k = 0; k < p->n_ops; k++) {
        const graft_tensor *x = c->in[k];
        if (x->dtype != GRAFT_FLOAT)
            return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "operand %d is %s, only float is supported",
                                  k, graft_dtype_name(x->dtype));
        int letters = 0;
        bool has_ell = false;
        for (int i = 0; i < p->len[k]; i++) {
            if (p->term[k][i] == EIN_ELL)
                has_ell = true;
            else
                letters++;
        }
        ell_rank[k] = x->rank - letters;
        if (ell_rank[k] < 0 || (!has_ell && ell_rank[k] != 0))
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "operand %d %s has rank %d, its term %d labels",
                                  k, shape_str(x->rank, x->dims, s1, sizeof s1), x->rank,
                                  letters);
        if (ell_rank[k] > E)
            E = ell_rank[k];
    }
    for (int s = 0; s < EIN_SLOTS; s++)
        e->size[s] = -2; /* unset */
    for (int k = 0; k < p->n_ops; k++) {
        const graft_tensor *x = c->in[k];
        int64_t xst[GRAFT_MAX_RANK];
        lu_strides(x->rank, x->dims, xst);
        int axis = 0;
        for (int i = 0; i < p->len[k]; i++) {
            int8_t code = p->term[k][i];
            int n_ax = code == EIN_ELL ? ell_rank[k] : 1;
            for (int a = 0; a < n_ax; a++, axis++) {
                int s = code == EIN_ELL ? EIN_LETTERS + E - ell_rank[k] + a : code;
                int64_t d = x->dims[axis];
                if (d < 0)
                    return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "operand %d has an unknown dim", k);
                bool ell_slot = s >= EIN_LETTERS;
                if (e->size[s] == -2 || (ell_slot && e->size[s] == 1)) {
                    e->size[s] = d;
                } else if (d != e->size[s] && !(ell_slot && d == 1)) {
                    return graft__op_fail(c, GRAFT_ERR_SHAPE, "%s%c%s has sizes %lld and %lld",
                                          ell_slot ? "a dim of the ellipsis" : "label '",
                                          ell_slot ? ' ' : s < 26 ? 'A' + s : 'a' + s - 26,
                                          ell_slot ? "" : "'", (long long)e->size[s],
                                          (long long)d);
                }
                if (!(ell_slot && d == 1))
                    e->st[k][s] += xst[axis];
                if (e->count[k][s] < 255)
                    e->count[k][s]++;
                used[s] = true;
            }
        }
    }
    /* a size-1 broadcast ellipsis dim: strides computed before its size grew
     * stay right since size-1 dims contributed none */
    int no = 0;
    bool in_out[EIN_SLOTS] = {false};
    if (p->explicit_out) {
        const int8_t *ot = p->term[p->n_ops];
        for (int i = 0; i < p->len[p->n_ops]; i++) {
            if (ot[i] == EIN_ELL) {
                for (int a = 0; a < E; a++) {
                    if (no >= GRAFT_MAX_RANK)
                        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "output rank exceeds %d",
                                              GRAFT_MAX_RANK);
                    e->out_slot[no++] = EIN_LETTERS + a;
                }
                continue;
            }
            if (!used[ot[i]])
                return graft__op_fail(c, GRAFT_ERR_INVALID,
                                      "output label '%c' is in no operand",
                                      ot[i] < 26 ? 'A' + ot[i] : 'a' + ot[i] - 26);
            if (no >= GRAFT_MAX_RANK)
                return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "output rank exceeds %d",
                                      GRAFT_MAX_RANK);
            e->out_slot[no++] = ot[i];
        }
    } else {
        /* implicit: the ellipsis, then the labels seen once, in order */
        for (int a = 0; a < E; a++)
            e->out_slot[no++] = EIN_LETTERS + a;
        for (int s = 0; s < EIN_LETTERS; s++) {
            int total = 0;
            for (int k = 0; k < p->n_ops; k++)
                total += e->count[k][s];
            if (total == 1) {
                if (no >= GRAFT_MAX_RANK)
                    return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "output rank exceeds %d",
                                          GRAFT_MAX_RANK);
                e->out_slot[no++] = s;
            }
        }
    }
    e->n_out = no;
    for (int i = 0; i < no; i++) {
        in_out[e->out_slot[i]] = true;
        e->out_dims[i] = e->size[e->out_slot[i]];
    }
    int64_t yst[GRAFT_MAX_RANK];
    lu_strides(no, e->out_dims, yst);
    for (int i = 0; i < no; i++)
        e->st[p->n_ops][e->out_slot[i]] = yst[i];
    /* the loops walk every slot combination: its count must fit */
    int64_t all = 1;
    for (int s = 0; s < EIN_SLOTS; s++) {
        if (used[s] && !in_out[s])
            e->con_slot[e->n_con++] = s;
        if (used[s] && e->size[s] > 0 && all > INT64_MAX / e->size[s])
            return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "the contraction is too large");
        if (used[s])
            all *= e->size[s];
    }
    return GRAFT_OK;
}

static graft_status einsum_infer(graft_op_call *c)
{
    ein_plan e;
    graft_status st = ein_resolve(c, &e);
    if (st)
        return st;
    lu_set_shape(c->out[0], GRAFT_FLOAT, e.n_out, e.out_dims);
    return GRAFT_OK;
}

/* The general loop: every output element sums the products over the
 * contracted slots (wrt < 0), or every operand element wrt gets dy times the
 * other operands' product. Offsets step by strides, so diagonals, traces,
 * broadcasts and transposes all come out of the same walk. */
static void ein_generic(const graft_op_call *c, const ein_plan *e, const float *dy, int wrt,
                        float *dx)
{
    int K = e->n_ops, nc = e->n_con;
    int64_t n_y = graft_shape_nelem(e->n_out, e->out_dims);
    int64_t csz[EIN_SLOTS], cst[EIN_SLOTS][EIN_MAX_OPS];
    for (int d = 0; d < nc; d++) {
        csz[d] = e->size[e->con_slot[d]];
        for (int k = 0; k < K; k++)
            cst[d][k] = e->st[k][e->con_slot[d]];
    }
    int64_t n_c = graft_shape_nelem(nc, csz);
    const float *x[EIN_MAX_OPS];
    for (int k = 0; k < K; k++)
        x[k] = c->in[k]->data;
    float *y = c->out[0] ? c->out[0]->data : NULL;
    for (int64_t o = 0; o < n_y; o++) {
        int64_t off[EIN_MAX_OPS] = {0}, q = o;
        for (int i = e->n_out - 1; i >= 0; i--) {
            int64_t d = e->out_dims[i], v = q % d;
            q /= d;
            for (int k = 0; k < K; k++)
                off[k] += v * e->st[k][e->out_slot[i]];
        }
        int64_t idx[EIN_SLOTS] = {0};
        double acc = 0;
        float g = wrt >= 0 ? dy[o] : 0.0f;
        for (int64_t t = 0; t < n_c; t++) {
            if (wrt < 0) {
                double prod = 1;
                for (int k = 0; k < K; k++)
                    prod *= x[k][off[k]];
                acc += prod;
            } else {
                float prod = g;
                for (int k = 0; k < K; k++)
                    if (k != wrt)
                        prod *= x[k][off[k]];
                dx[off[wrt]] += prod;
            }
            for (int d = nc - 1; d >= 0; d--) {
                for (int k = 0; k < K; k++)
                    off[k] += cst[d][k];
                if (++idx[d] < csz[d])
                    break;
                for (int k = 0; k < K; k++)
                    off[k] -= cst[d][k] * csz[d];
                idx[d] = 0;
            }
        }
        if (wrt < 0)
            y[o] = (float)acc;
    }
}

/* Two operands whose labels each fall in one class - batch (A, B, out),
 * m (A, out), n (B, out), k (A, B) - and appear once per operand: one GEMM
 * per batch element. Each operand, seen as [batch, rows, cols] in slot
 * groups, is used in place when every group folds to one stride, else
 * copied to a contiguous block first. */
enum { G_BATCH, G_M, G_N, G_K, G_COUNT };

typedef struct ein_gemm {
    int n_slot[G_COUNT];
    int slot[G_COUNT][EIN_SLOTS];
    int64_t size[G_COUNT]; /* product per group */
} ein_gemm;

static bool ein_gemm_plan(const ein_plan *e, ein_gemm *gm)
{
    if (e->n_ops != 2)
        return false;
    memset(gm, 0, sizeof *gm);
    /* batch, m and n in output order; k in slot order */
    for (int i = 0; i < e->n_out; i++) {
        int s = e->out_slot[i];
        bool a = e->count[0][s] > 0, b = e->count[1][s] > 0;
        int grp = a && b ? G_BATCH : a ? G_M : G_N;
        gm->slot[grp][gm->n_slot[grp]++] = s;
    }
    for (int d = 0; d < e->n_con; d++) {
        int s = e->con_slot[d];
        if (!e->count[0][s] || !e->count[1][s])
            return false;
        gm->slot[G_K][gm->n_slot[G_K]++] = s;
    }
    for (int s = 0; s < EIN_SLOTS; s++)
        if (e->count[0][s] > 1 || e->count[1][s] > 1)
            return false;
    for (int g = 0; g < G_COUNT; g++) {
        gm->size[g] = 1;
        for (int i = 0; i < gm->n_slot[g]; i++)
            gm->size[g] *= e->size[gm->slot[g][i]];
    }
    return gm->size[G_M] * gm->size[G_N] * gm->size[G_K] * gm->size[G_BATCH] > 0;
}

/* One stride for a slot group of tensor k (k == n_ops: the output), or
 * false when the group does not fold. allow0: a zero stride is acceptable
 * (batch offsets; BLIS takes no zero strides). */
static bool group_stride(const ein_plan *e, const ein_gemm *gm, int k, int g, bool allow0,
                         int64_t *out)
{
    int64_t s = 0;
    bool have = false;
    for (int i = gm->n_slot[g] - 1; i >= 0; i--) {
        int sl = gm->slot[g][i];
        int64_t d = e->size[sl], st = e->st[k][sl];
        if (d == 1)
            continue;
        if (!have) {
            s = st;
            have = true;
            continue;
        }
        /* the outer slot must continue where the inner run ends */
        int64_t run = 1;
        for (int j = i + 1; j < gm->n_slot[g]; j++)
            run *= e->size[gm->slot[g][j]];
        if (st != s * run)
            return false;
    }
    if (!have)
        s = 1;
    if (s == 0 && !allow0)
        return false;
    *out = s;
    return true;
}

/* Box dims and tensor-k strides for the groups g0, g1, g2 in that order. */
static int group_box(const ein_plan *e, const ein_gemm *gm, int k, const int *groups, int n_g,
                     int64_t *dims, int64_t *xs)
{
    int r = 0;
    for (int q = 0; q < n_g; q++)
        for (int i = 0; i < gm->n_slot[groups[q]]; i++) {
            int sl = gm->slot[groups[q]][i];
            dims[r] = e->size[sl];
            xs[r] = e->st[k][sl];
            r++;
        }
    return r;
}

/* A [batch, rows, cols] operand as the GEMM reads it. */
typedef struct mat_view {
    const float *p;
    int64_t sb, rs, cs;
} mat_view;

/* View of tensor k over groups (rows, cols): in place, or copied into buf
 * (contiguous [batch, rows, cols]) when it does not fold. */
static mat_view mat_of(const graft_op_call *c, const ein_plan *e, const ein_gemm *gm, int k,
                       const float *data, int g_rows, int g_cols, float *buf)
{
    mat_view v;
    int64_t sb = 0, rs = 0, cs = 0;
    if (group_stride(e, gm, k, G_BATCH, true, &sb) && group_stride(e, gm, k, g_rows, false, &rs) &&
        group_stride(e, gm, k, g_cols, false, &cs)) {
        v.p = data;
        v.sb = sb;
        v.rs = rs;
        v.cs = cs;
        return v;
    }
    int groups[3] = {G_BATCH, g_rows, g_cols};
    int64_t dims[EIN_SLOTS], xs[EIN_SLOTS];
    int r = group_box(e, gm, k, groups, 3, dims, xs);
    box_copy(c, sizeof(float), r, dims, (const char *)data, xs, (char *)buf);
    v.p = buf;
    v.sb = gm->size[g_rows] * gm->size[g_cols];
    v.rs = gm->size[g_cols];
    v.cs = 1;
    return v;
}

/* C[b] (+)= A[b] · B[b] over the batch (alpha 1). */
static void batched_gemm(int64_t nb, int64_t m, int64_t n, int64_t k, mat_view a, mat_view b,
                         float beta, float *cp, int64_t sbc, int64_t rsc, int64_t csc, int nt)
{
    for (int64_t i = 0; i < nb; i++)
        graft__sgemm(m, n, k, 1.0f, a.p + i * a.sb, a.rs, a.cs, b.p + i * b.sb, b.rs, b.cs, beta,
                     cp + i * sbc, rsc, csc, nt);
}

static graft_status ein_gemm_forward(graft_op_call *c, const ein_plan *e, const ein_gemm *gm)
{
    int64_t NB = gm->size[G_BATCH], M = gm->size[G_M], N = gm->size[G_N], K = gm->size[G_K];
    size_t need = (size_t)(NB * M * K + NB * K * N + NB * M * N) * sizeof(float);
    bool owned = false;
    float *buf = lu_work(c, need, &owned);
    if (!buf)
        return graft__op_fail(c, GRAFT_ERR_NOMEM, "out of memory");
    float *abuf = buf, *bbuf = abuf + NB * M * K, *ybuf = bbuf + NB * K * N;
    mat_view a = mat_of(c, e, gm, 0, c->in[0]->data, G_M, G_K, abuf);
    mat_view b = mat_of(c, e, gm, 1, c->in[1]->data, G_K, G_N, bbuf);
    int nt = c->ctx && c->ctx->n_threads > 0 ? c->ctx->n_threads : 1;
    float *y = c->out[0]->data;
    int64_t sb = 0, rs = 0, cs = 0;
    int yk = e->n_ops;
    if (group_stride(e, gm, yk, G_BATCH, false, &sb) && group_stride(e, gm, yk, G_M, false, &rs) &&
        group_stride(e, gm, yk, G_N, false, &cs)) {
        batched_gemm(NB, M, N, K, a, b, 0.0f, y, sb, rs, cs, nt);
    } else {
        batched_gemm(NB, M, N, K, a, b, 0.0f, ybuf, M * N, N, 1, nt);
        /* scatter the [batch, m, n] block into y's order: y is contiguous,
         * so copy y from ybuf with ybuf's strides over y's dims */
        int64_t xs[GRAFT_MAX_RANK], gst[EIN_SLOTS] = {0};
        int64_t run = 1;
        for (int g = G_N; g >= G_BATCH; g--)
            for (int i = gm->n_slot[g] - 1; i >= 0; i--) {
                gst[gm->slot[g][i]] = run;
                run *= e->size[gm->slot[g][i]];
            }
        for (int i = 0; i < e->n_out; i++)
            xs[i] = gst[e->out_slot[i]];
        box_copy(c, sizeof(float), e->n_out, e->out_dims, (const char *)ybuf, xs, (char *)y);
    }
    lu_work_free(buf, owned);
    return GRAFT_OK;
}

/* d(operand wrt) += dY·Bᵀ (wrt 0) or Aᵀ·dY (wrt 1), written in place when
 * the gradient folds with nonzero strides, else through a block scattered
 * back with box_add (which also sums broadcast dims). */
static graft_status ein_gemm_backward(graft_op_call *c, const ein_plan *e, const ein_gemm *gm,
                                      int wrt)
{
    int64_t NB = gm->size[G_BATCH], M = gm->size[G_M], N = gm->size[G_N], K = gm->size[G_K];
    size_t need = (size_t)(NB * M * K + NB * K * N + NB * M * N + NB * M * K + NB * K * N) *
                  sizeof(float);
    bool owned = false;
    float *buf = lu_work(c, need, &owned);
    if (!buf)
        return graft__op_fail(c, GRAFT_ERR_NOMEM, "out of memory");
    float *obuf = buf, *ybuf = obuf + NB * (M > N ? M : N) * K, *dbuf = ybuf + NB * M * N;
    int yk = e->n_ops, nt = c->ctx && c->ctx->n_threads > 0 ? c->ctx->n_threads : 1;
    /* dY as [batch, m, n] */
    mat_view dy = mat_of(c, e, gm, yk, c->d_out[0]->data, G_M, G_N, ybuf);
    /* the other operand, transposed by swapping its strides */
    mat_view o;
    int64_t rows, cols, inner;
    int g_rows, g_cols;
    mat_view lhs, rhs;
    if (wrt == 0) {
        o = mat_of(c, e, gm, 1, c->in[1]->data, G_K, G_N, obuf);
        int64_t t = o.rs;
        o.rs = o.cs;
        o.cs = t; /* Bᵀ: [n, k] */
        lhs = dy;
        rhs = o;
        rows = M;
        cols = K;
        inner = N;
        g_rows = G_M;
        g_cols = G_K;
    } else {
        o = mat_of(c, e, gm, 0, c->in[0]->data, G_M, G_K, obuf);
        int64_t t = o.rs;
        o.rs = o.cs;
        o.cs = t; /* Aᵀ: [k, m] */
        lhs = o;
        rhs = dy;
        rows = K;
        cols = N;
        inner = M;
        g_rows = G_K;
        g_cols = G_N;
    }
    float *dx = c->d_in[wrt]->data;
    int64_t sb = 0, rs = 0, cs = 0;
    if (group_stride(e, gm, wrt, G_BATCH, true, &sb) &&
        group_stride(e, gm, wrt, g_rows, false, &rs) &&
        group_stride(e, gm, wrt, g_cols, false, &cs)) {
        /* a zero batch stride accumulates every batch into the same block */
        batched_gemm(NB, rows, cols, inner, lhs, rhs, 1.0f, dx, sb, rs, cs, nt);
    } else {
        batched_gemm(NB, rows, cols, inner, lhs, rhs, 0.0f, dbuf, rows * cols, cols, 1, nt);
        int groups[3] = {G_BATCH, g_rows, g_cols};
        int64_t dims[EIN_SLOTS], xs[EIN_SLOTS];
        int r = group_box(e, gm, wrt, groups, 3, dims, xs);
        box_add(c, r, dims, dx, xs, dbuf, false);
    }
    lu_work_free(buf, owned);
    return GRAFT_OK;
}

static graft_status einsum_forward(graft_op_call *c)
{
    ein_plan e;
    ein_gemm gm;
    graft_status st = ein_resolve(c, &e);
    if (st)
        return st;
    if (ein_gemm_plan(&e, &gm))
        return ein_gemm_forward(c, &e, &gm);
    ein_generic(c, &e, NULL, -1, NULL);
    return GRAFT_OK;
}

static graft_status einsum_backward(graft_op_call *c)
{
    if (!c->d_out[0])
        return GRAFT_OK;
    ein_plan e;
    ein_gemm gm;
    graft_status st = ein_resolve(c, &e);
    if (st)
        return st;
    bool fast = ein_gemm_plan(&e, &gm);
    for (int k = 0; k < e.n_ops; k++) {
        if (!c->d_in[k])
            continue;
        if (fast)
            st = ein_gemm_backward(c, &e, &gm, k);
        else
            ein_generic(c, &e, c->d_out[0]->data, k, c->d_in[k]->data);
        if (st)
            return st;
    }
    return GRAFT_OK;
}

const graft_op_def graft__op_einsum = {
    .op_type = "Einsum", .domain = "", .min_opset = 12, .flags = 0,
    .params_size = sizeof(einsum_params), .parse = einsum_parse, .infer = einsum_infer,
    .forward = einsum_forward, .backward = einsum_backward};
