/* ops/gemm.c - Gemm and MatMul.
 *
 * Gemm:   Y = α·op(A)·op(B) + β·C, C unidirectionally broadcast to (M,N).
 *         dop(A) += α·dY·op(B)ᵀ;  dop(B) += α·op(A)ᵀ·dY;  dC += β·Σ_broadcast dY.
 * MatMul: numpy matmul (1-D operands promoted, batch dims broadcast).
 *         dA_b += dY_b·B_bᵀ, dB_b += A_bᵀ·dY_b, summed where a batch was broadcast.
 * op(X) is expressed through strides, so transposes are never materialised.
 */
#include <stdio.h>
#include <string.h>

#include "kernels/conv.h"
#include "kernels/gemm.h"
#include "ops/op.h"

typedef struct gemm_params {
    int trans_a, trans_b;
    float alpha, beta;
} gemm_params;

static graft_status gemm_parse(const graft_graph *g, const graft_node *n, void *params,
                               graft_error *err)
{
    (void)g;
    gemm_params *p = params;
    char label[256];
    int64_t ta = graft_node_attr_int(n, "transA", 0), tb = graft_node_attr_int(n, "transB", 0);
    if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1))
        return graft_error_set(err, GRAFT_ERR_INVALID, "%s: transA = %lld, transB = %lld (must be 0 or 1)",
                               graft__node_label(n, label, sizeof label), (long long)ta,
                               (long long)tb);
    p->trans_a = (int)ta;
    p->trans_b = (int)tb;
    p->alpha = graft_node_attr_float(n, "alpha", 1.0f);
    p->beta = graft_node_attr_float(n, "beta", 1.0f);
    return GRAFT_OK;
}

/* A matrix view: element (i, j) at data[i*rs + j*cs]. */
typedef struct mview {
    int64_t rows, cols, rs, cs;
} mview;

static graft_status gemm_shapes(graft_op_call *c, mview *a, mview *b, int64_t *m, int64_t *n,
                                int64_t *k)
{
    const gemm_params *p = c->params;
    char b1[96], b2[96];
    if (c->n_in < 2 || !c->in[0] || !c->in[1])
        return graft__op_fail(c, GRAFT_ERR_INVALID, "needs inputs A and B");
    const graft_tensor *ta = c->in[0], *tb = c->in[1];
    if (ta->dtype != GRAFT_DTYPE_UNDEFINED && !graft_dtype_is_float(ta->dtype))
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "A is %s; only floating types are supported",
                              graft_dtype_name(ta->dtype));
    if (ta->rank != 2)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "A must be 2-D, got rank %d %s", ta->rank,
                              graft_shape_format(ta->rank, ta->dims, b1, sizeof b1));
    if (tb->rank != 2)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "B must be 2-D, got rank %d %s", tb->rank,
                              graft_shape_format(tb->rank, tb->dims, b1, sizeof b1));
    /* op(A) is M×K, op(B) is K×N */
    *m = p->trans_a ? ta->dims[1] : ta->dims[0];
    *k = p->trans_a ? ta->dims[0] : ta->dims[1];
    int64_t kb = p->trans_b ? tb->dims[1] : tb->dims[0];
    *n = p->trans_b ? tb->dims[0] : tb->dims[1];
    if (*k >= 0 && kb >= 0 && *k != kb)
        return graft__op_fail(c, GRAFT_ERR_SHAPE,
                              "inner dimensions differ: op(A) of %s is ?x%lld, op(B) of %s is %lldx?",
                              graft_shape_format(ta->rank, ta->dims, b1, sizeof b1), (long long)*k,
                              graft_shape_format(tb->rank, tb->dims, b2, sizeof b2), (long long)kb);
    a->rows = *m;
    a->cols = *k;
    a->rs = p->trans_a ? 1 : ta->dims[1];
    a->cs = p->trans_a ? ta->dims[1] : 1;
    b->rows = kb;
    b->cols = *n;
    b->rs = p->trans_b ? 1 : tb->dims[1];
    b->cs = p->trans_b ? tb->dims[1] : 1;
    const graft_tensor *tc = c->n_in > 2 ? c->in[2] : NULL;
    if (tc) {
        bool ok = tc->rank <= 2;
        int64_t want[2] = {*m, *n};
        for (int i = 0; ok && i < tc->rank; i++) {
            int64_t d = tc->dims[i], w = want[2 - tc->rank + i];
            ok = d == 1 || d < 0 || w < 0 || d == w;
        }
        if (!ok) {
            snprintf(b2, sizeof b2, "(%lld,%lld)", (long long)*m, (long long)*n);
            return graft__op_fail(c, GRAFT_ERR_SHAPE,
                                  "C %s is not unidirectionally broadcastable to (M,N) = %s",
                                  graft_shape_format(tc->rank, tc->dims, b1, sizeof b1), b2);
        }
    }
    return GRAFT_OK;
}

static graft_status gemm_infer(graft_op_call *c)
{
    mview a, b;
    int64_t m = 0, n = 0, k = 0;
    graft_status st = gemm_shapes(c, &a, &b, &m, &n, &k);
    if (st != GRAFT_OK)
        return st;
    if (c->out[0]) {
        c->out[0]->dtype = GRAFT_FLOAT;
        c->out[0]->rank = 2;
        c->out[0]->dims[0] = m;
        c->out[0]->dims[1] = n;
    }
    return GRAFT_OK;
}

/* Strides (0 along broadcast axes) of a rank<=2 C viewed as (M,N). */
static void bias_strides(const graft_tensor *tc, int64_t *rs, int64_t *cs)
{
    int64_t d0 = tc->rank == 2 ? tc->dims[0] : 1;
    int64_t d1 = tc->rank >= 1 ? tc->dims[tc->rank - 1] : 1;
    *cs = d1 == 1 ? 0 : 1;
    *rs = d0 == 1 ? 0 : d1;
}

static graft_status gemm_forward(graft_op_call *c)
{
    const gemm_params *p = c->params;
    mview a, b;
    int64_t m = 0, n = 0, k = 0;
    graft_status st = gemm_shapes(c, &a, &b, &m, &n, &k);
    if (st != GRAFT_OK || !c->out[0])
        return st;
    float *y = graft_tensor_f32(c->out[0]);
    const graft_tensor *tc = c->n_in > 2 ? c->in[2] : NULL;
    float beta = 0.0f;
    if (tc && p->beta != 0.0f) {
        const float *cv = graft_tensor_f32(tc);
        int64_t rs, cs;
        bias_strides(tc, &rs, &cs);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                y[i * n + j] = p->beta * cv[i * rs + j * cs];
        beta = 1.0f;
    }
    graft__sgemm(m, n, k, p->alpha, graft_tensor_f32(c->in[0]), a.rs, a.cs,
                 graft_tensor_f32(c->in[1]), b.rs, b.cs, beta, y, n, 1, graft__threads(c->ctx));
    return GRAFT_OK;
}

static graft_status gemm_backward(graft_op_call *c)
{
    const gemm_params *p = c->params;
    mview a, b;
    int64_t m = 0, n = 0, k = 0;
    if (!c->d_out[0])
        return GRAFT_OK;
    graft_status st = gemm_shapes(c, &a, &b, &m, &n, &k);
    if (st != GRAFT_OK)
        return st;
    const float *dy = graft_tensor_f32(c->d_out[0]);
    const int nt = graft__threads(c->ctx);
    if (c->d_in[0]) /* d op(A) (M×K) = α · dY (M×N) · op(B)ᵀ (N×K), stored with op(A)'s strides */
        graft__sgemm(m, k, n, p->alpha, dy, n, 1, graft_tensor_f32(c->in[1]), b.cs, b.rs, 1.0f,
                     graft_tensor_f32(c->d_in[0]), a.rs, a.cs, nt);
    if (c->d_in[1]) /* d op(B) (K×N) = α · op(A)ᵀ (K×M) · dY (M×N) */
        graft__sgemm(k, n, m, p->alpha, graft_tensor_f32(c->in[0]), a.cs, a.rs, dy, n, 1, 1.0f,
                     graft_tensor_f32(c->d_in[1]), b.rs, b.cs, nt);
    if (c->n_in > 2 && c->in[2] && c->d_in[2]) {
        int64_t rs, cs;
        bias_strides(c->in[2], &rs, &cs);
        float *dc = graft_tensor_f32(c->d_in[2]);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                dc[i * rs + j * cs] += p->beta * dy[i * n + j];
    }
    return GRAFT_OK;
}

/* ---- MatMul ---- */

typedef struct mm_shape {
    int64_t m, n, k;
    int nb;                       /* batch rank of the output */
    int64_t bdims[GRAFT_MAX_RANK]; /* output batch dims */
    int64_t astr[GRAFT_MAX_RANK], bstr[GRAFT_MAX_RANK]; /* per-batch-axis matrix strides, 0: broadcast */
    int64_t n_batch;
    int rank;
    int64_t dims[GRAFT_MAX_RANK];
} mm_shape;

/* Numpy broadcast where -1 (unknown) matches anything. */
static graft_status batch_broadcast(int ra, const int64_t *a, int rb, const int64_t *b, int *rout,
                                    int64_t *out)
{
    int r = ra > rb ? ra : rb;
    for (int i = 0; i < r; i++) {
        int64_t da = i < r - ra ? 1 : a[i - (r - ra)];
        int64_t db = i < r - rb ? 1 : b[i - (r - rb)];
        if (da == db || db == 1)
            out[i] = da;
        else if (da == 1)
            out[i] = db;
        else if (da < 0 || db < 0)
            out[i] = da < 0 ? db : da;
        else
            return GRAFT_ERR_SHAPE;
    }
    *rout = r;
    return GRAFT_OK;
}

static graft_status matmul_parse(const graft_graph *g, const graft_node *n, void *params,
                                 graft_error *err)
{
    (void)g, (void)n, (void)params, (void)err;
    return GRAFT_OK;
}

static graft_status matmul_shapes(graft_op_call *c, mm_shape *s)
{
    char b1[96], b2[96];
    if (c->n_in < 2 || !c->in[0] || !c->in[1])
        return graft__op_fail(c, GRAFT_ERR_INVALID, "needs inputs A and B");
    const graft_tensor *ta = c->in[0], *tb = c->in[1];
    if (ta->dtype != GRAFT_DTYPE_UNDEFINED && !graft_dtype_is_float(ta->dtype))
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "A is %s; only floating types are supported",
                              graft_dtype_name(ta->dtype));
    if (ta->rank < 1 || tb->rank < 1)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "operands must have rank >= 1, got %s and %s",
                              graft_shape_format(ta->rank, ta->dims, b1, sizeof b1),
                              graft_shape_format(tb->rank, tb->dims, b2, sizeof b2));
    int ra = ta->rank, rb = tb->rank;
    s->m = ra == 1 ? 1 : ta->dims[ra - 2];
    s->k = ta->dims[ra - 1];
    int64_t kb = rb == 1 ? tb->dims[0] : tb->dims[rb - 2];
    s->n = rb == 1 ? 1 : tb->dims[rb - 1];
    if (s->k >= 0 && kb >= 0 && s->k != kb)
        return graft__op_fail(c, GRAFT_ERR_SHAPE, "inner dimensions differ: %s x %s",
                              graft_shape_format(ta->rank, ta->dims, b1, sizeof b1),
                              graft_shape_format(tb->rank, tb->dims, b2, sizeof b2));
    int na = ra > 2 ? ra - 2 : 0, nbb = rb > 2 ? rb - 2 : 0;
    if (na > 0 || nbb > 0) {
        if (batch_broadcast(na, ta->dims, nbb, tb->dims, &s->nb, s->bdims) != GRAFT_OK)
            return graft__op_fail(c, GRAFT_ERR_SHAPE, "batch dimensions do not broadcast: %s x %s",
                                  graft_shape_format(ta->rank, ta->dims, b1, sizeof b1),
                                  graft_shape_format(tb->rank, tb->dims, b2, sizeof b2));
    } else {
        s->nb = 0;
    }
    /* strides per output batch axis, in units of whole matrices */
    int64_t sa = 1, sb = 1;
    s->n_batch = 1;
    for (int i = s->nb - 1; i >= 0; i--) {
        int ia = i - (s->nb - na), ib = i - (s->nb - nbb);
        int64_t da = ia >= 0 ? ta->dims[ia] : 1, db = ib >= 0 ? tb->dims[ib] : 1;
        s->astr[i] = da == 1 ? 0 : sa;
        s->bstr[i] = db == 1 ? 0 : sb;
        sa *= da < 0 ? 1 : da;
        sb *= db < 0 ? 1 : db;
        s->n_batch *= s->bdims[i] < 0 ? 1 : s->bdims[i];
    }
    s->rank = 0;
    for (int i = 0; i < s->nb; i++)
        s->dims[s->rank++] = s->bdims[i];
    if (ra > 1)
        s->dims[s->rank++] = s->m;
    if (rb > 1)
        s->dims[s->rank++] = s->n;
    return GRAFT_OK;
}

static graft_status matmul_infer(graft_op_call *c)
{
    mm_shape s;
    graft_status st = matmul_shapes(c, &s);
    if (st != GRAFT_OK)
        return st;
    if (c->out[0]) {
        c->out[0]->dtype = GRAFT_FLOAT;
        c->out[0]->rank = s.rank;
        memcpy(c->out[0]->dims, s.dims, (size_t)s.rank * sizeof s.dims[0]);
    }
    return GRAFT_OK;
}

static void batch_offsets(const mm_shape *s, int64_t bi, int64_t *ao, int64_t *bo)
{
    int64_t a = 0, b = 0;
    for (int i = s->nb - 1; i >= 0; i--) {
        int64_t idx = bi % s->bdims[i];
        bi /= s->bdims[i];
        a += idx * s->astr[i];
        b += idx * s->bstr[i];
    }
    *ao = a * s->m * s->k;
    *bo = b * s->k * s->n;
}

/* True when B is one shared matrix and A's batches are contiguous: the whole
 * batch is then one (batch·M)×K by K×N product. */
static bool foldable(const mm_shape *s)
{
    for (int i = 0; i < s->nb; i++)
        if (s->bstr[i] != 0)
            return false;
    int64_t expect = 1;
    for (int i = s->nb - 1; i >= 0; i--) {
        if (s->bdims[i] != 1 && s->astr[i] != expect)
            return false;
        expect *= s->bdims[i];
    }
    return true;
}

static graft_status matmul_forward(graft_op_call *c)
{
    mm_shape s;
    graft_status st = matmul_shapes(c, &s);
    if (st != GRAFT_OK || !c->out[0])
        return st;
    const float *a = graft_tensor_f32(c->in[0]), *b = graft_tensor_f32(c->in[1]);
    float *y = graft_tensor_f32(c->out[0]);
    const int nt = graft__threads(c->ctx);
    if (foldable(&s)) {
        graft__sgemm(s.n_batch * s.m, s.n, s.k, 1.0f, a, s.k, 1, b, s.n, 1, 0.0f, y, s.n, 1, nt);
        return GRAFT_OK;
    }
    for (int64_t bi = 0; bi < s.n_batch; bi++) {
        int64_t ao, bo;
        batch_offsets(&s, bi, &ao, &bo);
        graft__sgemm(s.m, s.n, s.k, 1.0f, a + ao, s.k, 1, b + bo, s.n, 1, 0.0f,
                     y + bi * s.m * s.n, s.n, 1, nt);
    }
    return GRAFT_OK;
}

static graft_status matmul_backward(graft_op_call *c)
{
    mm_shape s;
    if (!c->d_out[0])
        return GRAFT_OK;
    graft_status st = matmul_shapes(c, &s);
    if (st != GRAFT_OK)
        return st;
    const float *a = graft_tensor_f32(c->in[0]), *b = graft_tensor_f32(c->in[1]);
    const float *dy = graft_tensor_f32(c->d_out[0]);
    float *da = c->d_in[0] ? graft_tensor_f32(c->d_in[0]) : NULL;
    float *db = c->d_in[1] ? graft_tensor_f32(c->d_in[1]) : NULL;
    const int nt = graft__threads(c->ctx);
    if (foldable(&s)) {
        int64_t mm = s.n_batch * s.m;
        if (da) /* dA (bM×K) += dY (bM×N) · Bᵀ */
            graft__sgemm(mm, s.k, s.n, 1.0f, dy, s.n, 1, b, 1, s.n, 1.0f, da, s.k, 1, nt);
        if (db) /* dB (K×N) += Aᵀ (K×bM) · dY */
            graft__sgemm(s.k, s.n, mm, 1.0f, a, 1, s.k, dy, s.n, 1, 1.0f, db, s.n, 1, nt);
        return GRAFT_OK;
    }
    for (int64_t bi = 0; bi < s.n_batch; bi++) {
        int64_t ao, bo;
        batch_offsets(&s, bi, &ao, &bo);
        const float *dyb = dy + bi * s.m * s.n;
        if (da)
            graft__sgemm(s.m, s.k, s.n, 1.0f, dyb, s.n, 1, b + bo, 1, s.n, 1.0f, da + ao, s.k, 1,
                         nt);
        if (db)
            graft__sgemm(s.k, s.n, s.m, 1.0f, a + ao, 1, s.k, dyb, s.n, 1, 1.0f, db + bo, s.n, 1,
                         nt);
    }
    return GRAFT_OK;
}

const graft_op_def graft__op_gemm = {
    .op_type = "Gemm",
    .domain = "",
    .min_opset = 1,
    .params_size = sizeof(gemm_params),
    .parse = gemm_parse,
    .infer = gemm_infer,
    .forward = gemm_forward,
    .backward = gemm_backward,
};

const graft_op_def graft__op_matmul = {
    .op_type = "MatMul",
    .domain = "",
    .min_opset = 1,
    .params_size = 0,
    .parse = matmul_parse,
    .infer = matmul_infer,
    .forward = matmul_forward,
    .backward = matmul_backward,
};
