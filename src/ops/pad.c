/* ops/pad.c - Pad (opset 2 attribute form; 11, 13, 18, 19 input form).
 *
 * Per axis a with begin/end pads b, e: negative pads crop first (lo = max(-b, 0),
 * hi = max(-e, 0), L = in - lo - hi kept), then max(b, 0) / max(e, 0) elements
 * are added around the kept range; out = in + b + e. Output index j reads kept
 * index k = j - max(b, 0), mapped into [0, L) by the mode:
 *   constant  k outside [0, L): the value (no source)
 *   edge      clamp(k, 0, L - 1)
 *   reflect   k mod 2(L - 1), folded: m >= L -> 2(L - 1) - m  (L == 1: 0)
 *   wrap      k mod L
 * and X index lo + m. Y[j] = X[src(j)] (or the value), so
 *   dX[src(j)] += dY[j]  for every j with a source,
 * the interior one to one, the reflected/edge/wrapped borders summed back.
 * Pad-2..10: pads and value are attributes; 11+: pads (int64) and an optional
 * scalar constant_value are inputs, 18+ adds axes (pads then list begin and
 * end for those axes only); wrap exists from 19. pads and axes size the
 * output, so infer needs their data.
 * Trailing unpadded axes fold into one element block, so NCHW padding of H
 * and W copies each kept row with one memcpy. */
#include <stdlib.h>

#include "ops/light_util.h"

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

typedef struct pad_params {
    int mode;
    bool attr_form; /* opset < 11: pads and value are attributes */
    int n_pads;     /* attr form */
    int64_t pads[2 * GRAFT_MAX_RANK];
    float value;
} pad_params;

static graft_status pad_parse(const graft_graph *g, const graft_node *n, void *params,
                              graft_error *err)
{
    (void)g;
    pad_params *p = params;
    memset(p, 0, sizeof *p);
    const char *m = graft_node_attr_string(n, "mode", "constant");
    if (!strcmp(m, "constant"))
        p->mode = PAD_CONSTANT;
    else if (!strcmp(m, "reflect"))
        p->mode = PAD_REFLECT;
    else if (!strcmp(m, "edge"))
        p->mode = PAD_EDGE;
    else if (!strcmp(m, "wrap") && n->opset >= 19)
        p->mode = PAD_WRAP;
    else if (!strcmp(m, "wrap"))
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "mode 'wrap' exists from Pad-19, not Pad-%d",
                            n->opset);
    else
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "mode '%s' is not one ONNX defines", m);
    p->attr_form = n->opset > 0 && n->opset < 11;
    if (!p->attr_form)
        return lu_check_inputs(err, n, 2, n->opset >= 18 ? 4 : 3);
    const int64_t *pads = NULL;
    int k = graft_node_attr_ints(n, "pads", &pads);
    if (k < 0)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "Pad-%d needs a pads attribute", n->opset);
    if (k > 2 * GRAFT_MAX_RANK)
        return lu_node_fail(err, n, GRAFT_ERR_UNSUPPORTED, "%d pads exceed rank %d", k,
                            GRAFT_MAX_RANK);
    p->n_pads = k;
    if (k > 0)
        memcpy(p->pads, pads, (size_t)k * sizeof *pads);
    p->value = graft_node_attr_float(n, "value", 0.0f);
    return lu_check_inputs(err, n, 1, 1);
}

/* ---- geometry ------------------------------------------------------------------ */

typedef struct pad_geom {
    int rank;
    int64_t in[GRAFT_MAX_RANK], out[GRAFT_MAX_RANK];
    int64_t b[GRAFT_MAX_RANK], e[GRAFT_MAX_RANK]; /* signed pads per axis */
} pad_geom;

static const graft_tensor *opt_input(const graft_op_call *c, int i)
{
    return i < c->n_in && c->in[i] ? c->in[i] : NULL;
}

static graft_status need_ints(graft_op_call *c, const graft_tensor *t, int i, const char *what)
{
    if (!t->data)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED,
                              "%s (input %d) is not known when the plan is built; graft needs "
                              "constant %s to size the output",
                              what, i, what);
    if (t->dtype != GRAFT_INT64 || t->rank != 1)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "%s (input %d) must be a 1-D int64 tensor",
                              what, i);
    return GRAFT_OK;
}

static graft_status pad_geometry(graft_op_call *c, pad_geom *geo)
{
    const pad_params *p = c->params;
    const graft_tensor *x = c->in[0];
    char b1[160];
    memset(geo, 0, sizeof *geo);
    if (x->dtype != GRAFT_DTYPE_UNDEFINED && x->dtype != GRAFT_FLOAT && x->dtype != GRAFT_INT64)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED,
                              "data is %s; float32 and int64 are supported",
                              graft_dtype_name(x->dtype));
    int r = geo->rank = x->rank;
    const int64_t *pads = p->pads;
    int n_pads = p->n_pads, n_ax = r, axis_of[GRAFT_MAX_RANK];
    for (int a = 0; a < r; a++)
        axis_of[a] = a;
    graft_status st;
    if (!p->attr_form) {
        const graft_tensor *tp = c->in[1], *ta = opt_input(c, 3);
        if ((st = need_ints(c, tp, 1, "pads")))
            return st;
        pads = graft_tensor_i64(tp);
        n_pads = (int)tp->dims[0];
        if (ta) {
            if ((st = need_ints(c, ta, 3, "axes")))
                return st;
            n_ax = (int)ta->dims[0];
            if (n_ax > r)
                return graft__op_fail(c, GRAFT_ERR_INVALID, "%d axes for data of rank %d", n_ax,
                                      r);
            bool seen[GRAFT_MAX_RANK] = {false};
            for (int k = 0; k < n_ax; k++) {
                int64_t v = graft_tensor_i64(ta)[k];
                bool ok = lu_axis(v, r, &axis_of[k]);
                if (!ok || seen[axis_of[k]])
                    return graft__op_fail(c, GRAFT_ERR_INVALID, "axes entry %lld is %s for rank %d",
                                          (long long)v, ok ? "repeated" : "out of range", r);
                seen[axis_of[k]] = true;
            }
        }
    }
    if (n_pads != 2 * n_ax)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "%d pads for %d axes (data %s): expected %d",
                              n_pads, n_ax, graft_shape_format(r, x->dims, b1, sizeof b1),
                              2 * n_ax);
    for (int a = 0; a < r; a++)
        geo->in[a] = x->dims[a];
    for (int k = 0; k < n_ax; k++) {
        geo->b[axis_of[k]] = pads[k];
        geo->e[axis_of[k]] = pads[n_ax + k];
    }
    for (int a = 0; a < r; a++) {
        int64_t in = geo->in[a], b = geo->b[a], e = geo->e[a];
        if (b < -((int64_t)1 << 40) || b > ((int64_t)1 << 40) || e < -((int64_t)1 << 40) ||
            e > ((int64_t)1 << 40))
            return graft__op_fail(c, GRAFT_ERR_INVALID, "pads %lld, %lld on axis %d are too large",
                                  (long long)b, (long long)e, a);
        if (in < 0) {
            geo->out[a] = -1;
            continue;
        }
        int64_t out = in + b + e;
        int64_t kept = in - (b < 0 ? -b : 0) - (e < 0 ? -e : 0);
        if (out < 0 || kept < 0)
            return graft__op_fail(c, GRAFT_ERR_INVALID,
                                  "pads %lld, %lld crop more than axis %d holds (data %s)",
                                  (long long)b, (long long)e, a,
                                  graft_shape_format(r, x->dims, b1, sizeof b1));
        if (kept == 0 && p->mode != PAD_CONSTANT && (b > 0 || e > 0))
            return graft__op_fail(c, GRAFT_ERR_INVALID,
                                  "axis %d keeps no element to pad from in %s mode (data %s)", a,
                                  p->mode == PAD_EDGE ? "edge" : p->mode == PAD_WRAP ? "wrap"
                                                                                      : "reflect",
                                  graft_shape_format(r, x->dims, b1, sizeof b1));
        geo->out[a] = out;
    }
    return GRAFT_OK;
}

static graft_status pad_infer(graft_op_call *c)
{
    if (!c->in[0] || c->in[0]->rank < 0) {
        c->out[0]->rank = -1;
        return GRAFT_OK;
    }
    pad_geom geo;
    graft_status st = pad_geometry(c, &geo);
    if (st)
        return st;
    const graft_tensor *v = opt_input(c, 2);
    if (v && v->rank > 1 && graft_tensor_nelem(v) != 1)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "constant_value must be a scalar");
    graft_dtype dt = c->in[0]->dtype == GRAFT_DTYPE_UNDEFINED ? GRAFT_FLOAT : c->in[0]->dtype;
    lu_set_shape(c->out[0], dt, geo.rank, geo.out);
    return GRAFT_OK;
}

/* ---- the run: axes folded, per-axis maps ------------------------------------------- */

typedef struct pad_run {
    int rank;       /* folded: axes after the last padded one are one element block */
    size_t esz;     /* bytes of one block: element size * inner */
    int64_t inner;  /* elements per block */
    int64_t out[GRAFT_MAX_RANK], xs[GRAFT_MAX_RANK]; /* folded output dims, X strides (blocks) */
    int64_t pb[GRAFT_MAX_RANK], lo[GRAFT_MAX_RANK], len[GRAFT_MAX_RANK]; /* pad, crop, kept */
    int mode;
    bool any_pad;
} pad_run;

static void run_prepare(const pad_geom *geo, int mode, size_t es, pad_run *run)
{
    memset(run, 0, sizeof *run);
    run->mode = mode;
    int last = -1;
    for (int a = 0; a < geo->rank; a++)
        if (geo->b[a] || geo->e[a])
            last = a;
    run->any_pad = last >= 0;
    run->rank = last + 1;
    run->inner = graft_shape_nelem(geo->rank - last - 1, geo->in + last + 1);
    run->esz = es * (size_t)run->inner;
    int64_t s = 1;
    for (int a = last; a >= 0; a--) {
        int64_t b = geo->b[a], e = geo->e[a];
        run->out[a] = geo->out[a];
        run->xs[a] = s;
        s *= geo->in[a];
        run->pb[a] = b > 0 ? b : 0;
        run->lo[a] = b < 0 ? -b : 0;
        run->len[a] = geo->in[a] - run->lo[a] - (e < 0 ? -e : 0);
    }
}

/* X index (along axis a) that output index j reads, or -1 (the constant). */
static inline int64_t src_index(const pad_run *run, int a, int64_t j)
{
    int64_t k = j - run->pb[a], L = run->len[a];
    if (k >= 0 && k < L)
        return run->lo[a] + k;
    switch (run->mode) {
    case PAD_EDGE:
        return run->lo[a] + (k < 0 ? 0 : L - 1);
    case PAD_REFLECT: {
        if (L == 1)
            return run->lo[a];
        int64_t P = 2 * (L - 1), m = k % P;
        m = m < 0 ? m + P : m;
        return run->lo[a] + (m >= L ? P - m : m);
    }
    case PAD_WRAP: {
        int64_t m = k % L;
        return run->lo[a] + (m < 0 ? m + L : m);
    }
    default:
        return -1;
    }
}

/* X block offset of output row `row` (all folded axes but the last), or -1. */
static int64_t row_source(const pad_run *run, int64_t row)
{
    int64_t off = 0;
    for (int a = run->rank - 2; a >= 0; a--) {
        int64_t j = row % run->out[a];
        row /= run->out[a];
        int64_t s = src_index(run, a, j);
        if (s < 0)
            return -1;
        off += s * run->xs[a];
    }
    return off;
}

static void fill(void *dst, int64_t n, size_t es, const void *value, bool zero)
{
    if (n <= 0)
        return;
    if (zero) {
        memset(dst, 0, (size_t)n * es);
    } else if (es == 4) {
        float v;
        memcpy(&v, value, 4);
        float *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = v;
    } else {
        int64_t v;
        memcpy(&v, value, 8);
        int64_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = v;
    }
}

static inline void copy_block(char *dst, const char *src, size_t esz)
{
    if (esz == 4)
        memcpy(dst, src, 4);
    else if (esz == 8)
        memcpy(dst, src, 8);
    else
        memcpy(dst, src, esz);
}

/* The value in X's element type (es bytes) and whether it is all-zero bits. */
static bool pad_value(const graft_op_call *c, const graft_tensor *x, unsigned char *buf)
{
    const pad_params *p = c->params;
    const graft_tensor *v = opt_input(c, 2);
    bool have = !p->attr_form && v && v->data && graft_tensor_nelem(v) >= 1;
    if (x->dtype == GRAFT_INT64) {
        int64_t iv = have ? lu_get_i64(v, 0) : (int64_t)p->value;
        memcpy(buf, &iv, 8);
        return iv == 0;
    }
    float fv = have ? (float)lu_get_f64(v, 0) : p->value;
    memcpy(buf, &fv, 4);
    uint32_t bits;
    memcpy(&bits, &fv, 4);
    return bits == 0;
}

static graft_status pad_forward(graft_op_call *c)
{
    const pad_params *p = c->params;
    const graft_tensor *x = c->in[0];
    pad_geom geo;
    graft_status st = pad_geometry(c, &geo);
    if (st)
        return st;
    size_t es = graft_dtype_size(x->dtype);
    int64_t n_y = graft_tensor_nelem(c->out[0]), n_x = graft_tensor_nelem(x);
    if (n_y == 0)
        return GRAFT_OK;
    unsigned char value[8];
    bool zero = pad_value(c, x, value);
    if (n_x == 0) { /* every output element is padding (constant mode) */
        fill(c->out[0]->data, n_y, es, value, zero);
        return GRAFT_OK;
    }
    pad_run run;
    run_prepare(&geo, p->mode, es, &run);
    if (!run.any_pad) {
        graft__light_copy(c, c->out[0]->data, x->data, (size_t)n_x * es);
        return GRAFT_OK;
    }
    const int R = run.rank;
    const int64_t W = run.out[R - 1], pb = run.pb[R - 1], L = run.len[R - 1], lo = run.lo[R - 1];
    const int64_t rows = graft_shape_nelem(R - 1, run.out);
    const size_t esz = run.esz;
    const char *xd = x->data;
    char *yd = c->out[0]->data;
    int nt = lu_threads(c, n_y);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t row = 0; row < rows; row++) {
        char *y = yd + (size_t)(row * W) * esz;
        int64_t off = row_source(&run, row);
        if (off < 0) {
            fill(y, W * run.inner, es, value, zero);
            continue;
        }
        const char *xr = xd + (size_t)off * esz;
        if (L > 0)
            memcpy(y + (size_t)pb * esz, xr + (size_t)lo * esz, (size_t)L * esz);
        for (int64_t j = 0; j < W; j++) {
            if (j == pb && L > 0) {
                j = pb + L - 1;
                continue;
            }
            int64_t s = src_index(&run, R - 1, j);
            if (s < 0)
                fill(y + (size_t)j * esz, run.inner, es, value, zero);
            else
                copy_block(y + (size_t)j * esz, xr + (size_t)s * esz, esz);
        }
    }
    return GRAFT_OK;
}

static inline void add_block(float *dst, const float *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] += src[i];
}

static graft_status pad_backward(graft_op_call *c)
{
    if (!c->d_out[0] || !c->d_in[0])
        return GRAFT_OK;
    const pad_params *p = c->params;
    const graft_tensor *x = c->in[0];
    if (x->dtype != GRAFT_FLOAT)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "no gradient for %s data",
                              graft_dtype_name(x->dtype));
    pad_geom geo;
    graft_status st = pad_geometry(c, &geo);
    if (st)
        return st;
    int64_t n_x = graft_tensor_nelem(x), n_y = graft_tensor_nelem(c->d_out[0]);
    if (n_x == 0 || n_y == 0)
        return GRAFT_OK;
    float *dx = graft_tensor_f32(c->d_in[0]);
    const float *dy = graft_tensor_f32(c->d_out[0]);
    pad_run run;
    run_prepare(&geo, p->mode, sizeof(float), &run);
    if (!run.any_pad) {
        add_block(dx, dy, n_x);
        return GRAFT_OK;
    }
    const int R = run.rank;
    const int64_t W = run.out[R - 1], pb = run.pb[R - 1], L = run.len[R - 1], lo = run.lo[R - 1];
    const int64_t inner = run.inner, rows = graft_shape_nelem(R - 1, run.out);
    /* Rows read disjoint X rows along axes whose map is one to one: constant
     * mode, or no pads. Groups of rows under such leading axes split across
     * threads; within a group several rows may add into one X row. */
    int lead = 0;
    while (lead < R - 1 && (p->mode == PAD_CONSTANT || (run.pb[lead] == 0 &&
                                                        run.out[lead] == run.len[lead])))
        lead++;
    const int64_t groups = graft_shape_nelem(lead, run.out), per = rows / (groups ? groups : 1);
    int nt = lu_threads(c, n_y);
    if (nt > groups)
        nt = (int)groups;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t gi = 0; gi < groups; gi++) {
        for (int64_t row = gi * per; row < (gi + 1) * per; row++) {
            int64_t off = row_source(&run, row);
            if (off < 0)
                continue;
            const float *g = dy + row * W * inner;
            float *d = dx + off * inner;
            if (L > 0)
                add_block(d + lo * inner, g + pb * inner, L * inner);
            for (int64_t j = 0; j < W; j++) {
                if (j == pb && L > 0) {
                    j = pb + L - 1;
                    continue;
                }
                int64_t s = src_index(&run, R - 1, j);
                if (s >= 0)
                    add_block(d + s * inner, g + j * inner, inner);
            }
        }
    }
    return GRAFT_OK;
}

const graft_op_def graft__op_pad = {
    .op_type = "Pad",
    .domain = "",
    .min_opset = 2,
    .params_size = sizeof(pad_params),
    .parse = pad_parse,
    .infer = pad_infer,
    .forward = pad_forward,
    .backward = pad_backward,
};
