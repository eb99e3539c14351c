/* ops/resize.c - Resize (opsets 10-19) and Upsample (7, 9).
 *
 * Every mode is separable: along each resized axis, output index j reads
 * input taps idx[j,t] with weights w[j,t], from a source coordinate
 * x(j) given by coordinate_transformation_mode (s = scale, L = s * in, the
 * resized length as a real number, as the ONNX reference uses it):
 *   half_pixel          x = (j + 0.5) / s - 0.5
 *   pytorch_half_pixel  x = L > 1 ? (j + 0.5) / s - 0.5 : 0
 *   half_pixel_symmetric x = in/2 (1 - out/L) + (j + 0.5) / s - 0.5
 *   align_corners       x = L == 1 ? 0 : j (in - 1) / (L - 1)
 *   asymmetric          x = j / s
 *   tf_half_pixel_for_nn x = (j + 0.5) / s
 *   tf_crop_and_resize  x = r0 (in - 1) + j (r1 - r0)(in - 1) / (L - 1)
 *                       (L == 1: (r0 + r1)(in - 1) / 2); x outside
 *                       [0, in - 1] gives extrapolation_value.
 * nearest: one tap, x rounded by nearest_mode; linear: taps floor(x) and
 * floor(x)+1 with weights 1 - r, r (r = x - floor(x)); cubic: four taps
 * floor(x)-1 .. floor(x)+2 with Keys' kernel (cubic_coeff_a), optionally
 * renormalised over the taps inside the input (exclude_outside). Taps
 * outside the input are clamped to the edge.
 *
 *   Y = A_k ... A_1 X,  one 1-D resampling A_i per resized axis;
 *   dX += A_1^T ... A_k^T dY: the same taps and weights, scattered.
 *
 * Resize-10 and Upsample use asymmetric coordinates and nearest floor
 * (ceil where an axis shrinks), and output = floor(in * scale).
 * Scales, sizes (and roi for tf_crop_and_resize with scales) decide the
 * output shape, so infer needs their data. */
#include <stdlib.h>

#include "ops/light_util.h"

enum { RS_NEAREST, RS_LINEAR, RS_CUBIC };
enum {
    RS_HALF_PIXEL,
    RS_PYTORCH_HALF_PIXEL,
    RS_HALF_PIXEL_SYMMETRIC,
    RS_ALIGN_CORNERS,
    RS_ASYMMETRIC,
    RS_TF_HALF_PIXEL_FOR_NN,
    RS_TF_CROP_AND_RESIZE,
};
/* RS_NM_SIMPLE: Resize-10 and Upsample, floor when enlarging, ceil when shrinking. */
enum { RS_NM_ROUND_PREFER_FLOOR, RS_NM_ROUND_PREFER_CEIL, RS_NM_FLOOR, RS_NM_CEIL, RS_NM_SIMPLE };
enum { RS_STRETCH, RS_NOT_LARGER, RS_NOT_SMALLER };

typedef struct resize_params {
    int mode, coord, nearest, keep_aspect;
    float cubic_a, extrapolation;
    bool exclude_outside, antialias;
    int n_axes; /* -1: all axes */
    int64_t axes[GRAFT_MAX_RANK];
    int roi_in, scales_in, sizes_in; /* input index, -1 when the opset has none */
    int n_scales_attr;               /* Upsample-7: scales attribute; else -1 */
    float scales_attr[GRAFT_MAX_RANK];
} resize_params;

typedef struct name_code {
    const char *name;
    int code;
} name_code;

static const name_code mode_names[] = {
    {"nearest", RS_NEAREST}, {"linear", RS_LINEAR}, {"cubic", RS_CUBIC}, {NULL, 0}};
static const name_code coord_names[] = {
    {"half_pixel", RS_HALF_PIXEL},
    {"pytorch_half_pixel", RS_PYTORCH_HALF_PIXEL},
    {"half_pixel_symmetric", RS_HALF_PIXEL_SYMMETRIC},
    {"align_corners", RS_ALIGN_CORNERS},
    {"asymmetric", RS_ASYMMETRIC},
    {"tf_half_pixel_for_nn", RS_TF_HALF_PIXEL_FOR_NN},
    {"tf_crop_and_resize", RS_TF_CROP_AND_RESIZE},
    {NULL, 0}};
static const name_code nearest_names[] = {{"round_prefer_floor", RS_NM_ROUND_PREFER_FLOOR},
                                          {"round_prefer_ceil", RS_NM_ROUND_PREFER_CEIL},
                                          {"floor", RS_NM_FLOOR},
                                          {"ceil", RS_NM_CEIL},
                                          {NULL, 0}};
static const name_code aspect_names[] = {{"stretch", RS_STRETCH},
                                         {"not_larger", RS_NOT_LARGER},
                                         {"not_smaller", RS_NOT_SMALLER},
                                         {NULL, 0}};

static graft_status parse_choice(const graft_node *n, graft_error *err, const char *attr,
                                 const char *dflt, const name_code *table, int *out)
{
    const char *v = graft_node_attr_string(n, attr, dflt);
    for (int i = 0; table[i].name; i++) {
        if (!strcmp(v, table[i].name)) {
            *out = table[i].code;
            return GRAFT_OK;
        }
    }
    return lu_node_fail(err, n, GRAFT_ERR_INVALID, "%s '%s' is not one ONNX defines", attr, v);
}

static graft_status resize_parse(const graft_graph *g, const graft_node *n, void *params,
                                 graft_error *err)
{
    (void)g;
    resize_params *p = params;
    memset(p, 0, sizeof *p);
    p->n_axes = -1;
    p->n_scales_attr = -1;
    p->roi_in = p->scales_in = p->sizes_in = -1;
    p->nearest = RS_NM_SIMPLE;
    p->coord = RS_ASYMMETRIC;
    p->cubic_a = -0.75f;
    bool upsample = !strcmp(n->op_type, "Upsample");
    bool legacy = upsample || n->opset < 11; /* Upsample-*, Resize-10 */
    graft_status st = parse_choice(n, err, "mode", "nearest", mode_names, &p->mode);
    if (st)
        return st;
    if (legacy && p->mode == RS_CUBIC)
        return lu_node_fail(err, n, GRAFT_ERR_INVALID, "%s-%d has no cubic mode", n->op_type,
                            n->opset);
    if (upsample && n->opset < 9) {
        const graft_attr *a = graft_node_attr(n, "scales");
        if (!a || a->n < 1 || !a->floats)
            return lu_node_fail(err, n, GRAFT_ERR_INVALID, "Upsample-%d needs a scales attribute",
                                n->opset);
        if (a->n > GRAFT_MAX_RANK)
            return lu_node_fail(err, n, GRAFT_ERR_UNSUPPORTED, "%d scales exceed rank %d", a->n,
                                GRAFT_MAX_RANK);
        p->n_scales_attr = a->n;
        memcpy(p->scales_attr, a->floats, (size_t)a->n * sizeof(float));
        return lu_check_inputs(err, n, 1, 1);
    }
    if (legacy) {
        p->scales_in = 1;
        return lu_check_inputs(err, n, 2, 2);
    }
    p->roi_in = 1;
    p->scales_in = 2;
    p->sizes_in = 3;
    st = lu_check_inputs(err, n, 1, 4);
    if (st)
        return st;
    if ((st = parse_choice(n, err, "coordinate_transformation_mode", "half_pixel", coord_names,
                           &p->coord)) ||
        (st = parse_choice(n, err, "nearest_mode", "round_prefer_floor", nearest_names,
                           &p->nearest)) ||
        (st = parse_choice(n, err, "keep_aspect_ratio_policy", "stretch", aspect_names,
                           &p->keep_aspect)))
        return st;
    p->cubic_a = graft_node_attr_float(n, "cubic_coeff_a", -0.75f);
    p->exclude_outside = graft_node_attr_int(n, "exclude_outside", 0) != 0;
    p->extrapolation = graft_node_attr_float(n, "extrapolation_value", 0.0f);
    p->antialias = graft_node_attr_int(n, "antialias", 0) != 0;
    const int64_t *axes = NULL;
    int k = graft_node_attr_ints(n, "axes", &axes);
    if (k > GRAFT_MAX_RANK)
        return lu_node_fail(err, n, GRAFT_ERR_UNSUPPORTED, "%d axes exceed rank %d", k,
                            GRAFT_MAX_RANK);
    if (k >= 0) {
        p->n_axes = k;
        memcpy(p->axes, axes, (size_t)k * sizeof *axes);
    }
    return GRAFT_OK;
}

/* ---- geometry: output shape and per-axis scale from the inputs ---------------- */

typedef struct rs_geom {
    int rank;
    int64_t in[GRAFT_MAX_RANK], out[GRAFT_MAX_RANK];
    double scale[GRAFT_MAX_RANK], len[GRAFT_MAX_RANK]; /* len: s * in, see the top */
    double roi0[GRAFT_MAX_RANK], roi1[GRAFT_MAX_RANK];
    bool known; /* every output dim known (no symbolic input dims) */
} rs_geom;

/* Input i when present with data or not; NULL when omitted or empty (Resize-11
 * passes an empty scales tensor when sizes are used). */
static const graft_tensor *opt_input(const graft_op_call *c, int i)
{
    if (i < 0 || i >= c->n_in || !c->in[i])
        return NULL;
    const graft_tensor *t = c->in[i];
    if (t->rank >= 0 && graft_tensor_nelem(t) == 0)
        return NULL;
    return t;
}

static graft_status need_data(graft_op_call *c, const graft_tensor *t, int i, const char *what,
                              int64_t n_want)
{
    if (!t->data)
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED,
                              "%s (input %d) is not known when the plan is built; graft needs "
                              "constant %s to size the output",
                              what, i, what);
    if (t->rank != 1 || t->dims[0] != n_want)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "%s (input %d) has %lld entries, expected %lld",
                              what, i, (long long)graft_tensor_nelem(t), (long long)n_want);
    return GRAFT_OK;
}

static graft_status resize_geometry(graft_op_call *c, rs_geom *geo)
{
    const resize_params *p = c->params;
    const graft_tensor *x = c->in[0];
    char b1[160];
    memset(geo, 0, sizeof *geo);
    if (x->dtype != GRAFT_DTYPE_UNDEFINED && !graft_dtype_is_float(x->dtype))
        return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED, "X is %s; only floating types are supported",
                              graft_dtype_name(x->dtype));
    if (x->rank < 1)
        return graft__op_fail(c, GRAFT_ERR_INVALID, "X must have rank >= 1, got %d", x->rank);
    int r = geo->rank = x->rank;
    int axis_of[GRAFT_MAX_RANK], n_ax = p->n_axes < 0 ? r : p->n_axes;
    bool seen[GRAFT_MAX_RANK] = {false};
    for (int k = 0; k < n_ax; k++) {
        if (p->n_axes < 0) {
            axis_of[k] = k;
        } else if (!lu_axis(p->axes[k], r, &axis_of[k]) || seen[axis_of[k]]) {
            return graft__op_fail(c, GRAFT_ERR_INVALID, "axes entry %lld is %s for rank %d",
                                  (long long)p->axes[k],
                                  lu_axis(p->axes[k], r, &axis_of[k]) ? "repeated" : "out of range",
                                  r);
        }
        seen[axis_of[k]] = true;
    }
    geo->known = true;
    for (int a = 0; a < r; a++) {
        geo->in[a] = geo->out[a] = x->dims[a];
        geo->scale[a] = 1.0;
        geo->len[a] = (double)x->dims[a];
        geo->roi0[a] = 0.0;
        geo->roi1[a] = 1.0;
        geo->known &= x->dims[a] >= 0;
    }
    const graft_tensor *scales = opt_input(c, p->scales_in), *sizes = opt_input(c, p->sizes_in);
    const graft_tensor *roi = opt_input(c, p->roi_in);
    graft_status st;
    if (p->n_scales_attr >= 0) {
        if (p->n_scales_attr != r)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "%d scales for X of rank %d",
                                  p->n_scales_attr, r);
    } else if (!scales == !sizes) {
        return graft__op_fail(c, GRAFT_ERR_INVALID, "needs exactly one of scales and sizes (%s)",
                              scales ? "both are given" : "neither is given");
    }
    bool crop = p->coord == RS_TF_CROP_AND_RESIZE;
    /* roi shapes the output only with scales; with sizes infer can go without it */
    if (crop && roi && (roi->data || !sizes)) {
        if ((st = need_data(c, roi, p->roi_in, "roi", 2 * n_ax)))
            return st;
        for (int k = 0; k < n_ax; k++) {
            geo->roi0[axis_of[k]] = lu_get_f64(roi, k);
            geo->roi1[axis_of[k]] = lu_get_f64(roi, n_ax + k);
        }
    }
    if (!sizes) {
        if (scales && (st = need_data(c, scales, p->scales_in, "scales", n_ax)))
            return st;
        for (int k = 0; k < n_ax; k++) {
            int a = axis_of[k];
            double s = scales ? (double)(float)lu_get_f64(scales, k) : (double)p->scales_attr[k];
            if (!(s > 0))
                return graft__op_fail(c, GRAFT_ERR_INVALID, "scale %g for axis %d is not positive",
                                      s, a);
            geo->scale[a] = s;
            geo->len[a] = s * (double)geo->in[a];
            double span = crop ? geo->roi1[a] - geo->roi0[a] : 1.0;
            geo->out[a] = geo->in[a] < 0 ? -1 : (int64_t)floor((double)geo->in[a] * span * s);
        }
    } else {
        if ((st = need_data(c, sizes, p->sizes_in, "sizes", n_ax)))
            return st;
        if (sizes->dtype != GRAFT_INT64)
            return graft__op_fail(c, GRAFT_ERR_INVALID, "sizes must be int64, not %s",
                                  graft_dtype_name(sizes->dtype));
        double common = p->keep_aspect == RS_NOT_LARGER ? INFINITY : 0.0;
        for (int k = 0; k < n_ax; k++) {
            int a = axis_of[k];
            int64_t v = lu_get_i64(sizes, k);
            if (v < 0)
                return graft__op_fail(c, GRAFT_ERR_INVALID, "size %lld for axis %d is negative",
                                      (long long)v, a);
            if (geo->in[a] < 0) {
                geo->out[a] = p->keep_aspect == RS_STRETCH ? v : -1;
                continue;
            }
            if (geo->in[a] == 0) {
                if (v != 0)
                    return graft__op_fail(c, GRAFT_ERR_INVALID,
                                          "axis %d is empty and cannot be resized to %lld", a,
                                          (long long)v);
                continue;
            }
            double s = (double)v / (double)geo->in[a];
            geo->scale[a] = s;
            geo->len[a] = (double)v;
            geo->out[a] = v;
            common = p->keep_aspect == RS_NOT_LARGER ? fmin(common, s) : fmax(common, s);
        }
        if (p->keep_aspect != RS_STRETCH) {
            /* one scale for every listed axis, the output rounded half up */
            for (int k = 0; k < n_ax; k++) {
                int a = axis_of[k];
                if (geo->in[a] <= 0)
                    continue;
                geo->scale[a] = common;
                geo->len[a] = common * (double)geo->in[a];
                geo->out[a] = (int64_t)floor(geo->len[a] + 0.5);
            }
        }
    }
    for (int a = 0; a < r; a++) {
        geo->known &= geo->out[a] >= 0;
        if (geo->out[a] > ((int64_t)1 << 40))
            return graft__op_fail(c, GRAFT_ERR_INVALID, "output dim %d would be %lld (X %s)", a,
                                  (long long)geo->out[a],
                                  graft_shape_format(r, x->dims, b1, sizeof b1));
    }
    if (p->antialias && p->mode != RS_NEAREST)
        for (int a = 0; a < r; a++)
            if (geo->scale[a] < 1.0)
                return graft__op_fail(c, GRAFT_ERR_UNSUPPORTED,
                                      "antialias=1 when shrinking axis %d (scale %g) is not "
                                      "supported",
                                      a, geo->scale[a]);
    return GRAFT_OK;
}

static graft_status resize_infer(graft_op_call *c)
{
    if (!c->in[0] || c->in[0]->rank < 0) {
        c->out[0]->rank = -1;
        return GRAFT_OK;
    }
    rs_geom geo;
    graft_status st = resize_geometry(c, &geo);
    if (st)
        return st;
    graft_dtype dt = lu_compute_dtype(c->in[0]->dtype);
    lu_set_shape(c->out[0], dt == GRAFT_DTYPE_UNDEFINED ? GRAFT_FLOAT : dt, geo.rank, geo.out);
    return GRAFT_OK;
}

/* ---- per-axis tap tables ---------------------------------------------------- */

typedef struct rs_tab {
    int axis, taps;
    int64_t n_in, n_out;
    int64_t *idx; /* n_out * taps */
    float *w;     /* n_out * taps */
    uint8_t *outside; /* n_out: tf_crop_and_resize sample outside the input */
    bool any_outside;
} rs_tab;

static double src_coord(const resize_params *p, const rs_geom *geo, int a, int64_t j,
                        bool *outside)
{
    double s = geo->scale[a], len = geo->len[a], in = (double)geo->in[a], x, jd = (double)j;
    *outside = false;
    switch (p->coord) {
    case RS_HALF_PIXEL:
        return (jd + 0.5) / s - 0.5;
    case RS_PYTORCH_HALF_PIXEL:
        return len > 1.0 ? (jd + 0.5) / s - 0.5 : 0.0;
    case RS_HALF_PIXEL_SYMMETRIC: {
        double adj = (double)geo->out[a] / len;
        return in / 2.0 * (1.0 - adj) + (jd + 0.5) / s - 0.5;
    }
    case RS_ALIGN_CORNERS:
        return len == 1.0 ? 0.0 : jd * (in - 1.0) / (len - 1.0);
    case RS_TF_HALF_PIXEL_FOR_NN:
        return (jd + 0.5) / s;
    case RS_TF_CROP_AND_RESIZE: {
        double r0 = geo->roi0[a], r1 = geo->roi1[a];
        x = len == 1.0 ? (r1 - r0) * (in - 1.0) / 2.0 : jd * (r1 - r0) * (in - 1.0) / (len - 1.0);
        x += r0 * (in - 1.0);
        *outside = x < 0.0 || x > in - 1.0;
        return x;
    }
    default:
        return jd / s;
    }
}

static int64_t round_nearest(int mode, double x, double s)
{
    double f = floor(x);
    if (f == x)
        return (int64_t)f;
    switch (mode) {
    case RS_NM_ROUND_PREFER_FLOOR:
        return (int64_t)(x - f <= 0.5 ? f : f + 1);
    case RS_NM_ROUND_PREFER_CEIL:
        return (int64_t)(x - f < 0.5 ? f : f + 1);
    case RS_NM_FLOOR:
        return (int64_t)f;
    case RS_NM_CEIL:
        return (int64_t)f + 1;
    default:
        return (int64_t)(s < 1.0 ? f + 1 : f);
    }
}

static int64_t clamp_idx(int64_t i, int64_t n)
{
    return i < 0 ? 0 : i >= n ? n - 1 : i;
}

/* Keys' cubic convolution kernel at distance t. */
static double cubic_w(double t, double a)
{
    t = fabs(t);
    if (t <= 1.0)
        return ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
    if (t < 2.0)
        return ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a;
    return 0.0;
}

static int mode_taps(int mode)
{
    return mode == RS_NEAREST ? 1 : mode == RS_LINEAR ? 2 : 4;
}

/* An axis whose every output reads exactly the same input index. */
static bool axis_is_identity(const resize_params *p, const rs_geom *geo, int a)
{
    if (geo->out[a] != geo->in[a])
        return false;
    for (int64_t j = 0; j < geo->out[a]; j++) {
        bool out;
        double x = src_coord(p, geo, a, j, &out);
        if (out)
            return false;
        if (p->mode == RS_NEAREST ? round_nearest(p->nearest, x, geo->scale[a]) != j
                                  : x != (double)j)
            return false;
    }
    return true;
}

static void tab_fill(const resize_params *p, const rs_geom *geo, rs_tab *t)
{
    int a = t->axis, T = t->taps;
    int64_t n = t->n_in;
    t->any_outside = false;
    for (int64_t j = 0; j < t->n_out; j++) {
        bool out;
        double x = src_coord(p, geo, a, j, &out);
        int64_t *idx = t->idx + j * T;
        float *w = t->w + j * T;
        t->outside[j] = out;
        t->any_outside |= out;
        if (p->mode == RS_NEAREST) {
            idx[0] = clamp_idx(round_nearest(p->nearest, x, geo->scale[a]), n);
            w[0] = 1.0f;
            continue;
        }
        double f = floor(x), r = x - f;
        int64_t i0 = (int64_t)f;
        if (p->mode == RS_LINEAR) {
            idx[0] = clamp_idx(i0, n);
            idx[1] = clamp_idx(i0 + 1, n);
            w[0] = (float)(1.0 - r);
            w[1] = (float)r;
            continue;
        }
        double cw[4] = {cubic_w(1.0 + r, p->cubic_a), cubic_w(r, p->cubic_a),
                        cubic_w(1.0 - r, p->cubic_a), cubic_w(2.0 - r, p->cubic_a)};
        double sum = 0.0;
        for (int k = 0; k < 4; k++) {
            int64_t i = i0 - 1 + k;
            if (p->exclude_outside && (i < 0 || i >= n))
                cw[k] = 0.0;
            sum += cw[k];
        }
        for (int k = 0; k < 4; k++) {
            idx[k] = clamp_idx(i0 - 1 + k, n);
            w[k] = (float)(p->exclude_outside && sum != 0.0 ? cw[k] / sum : cw[k]);
        }
    }
}

/* ---- the plan of one call: passes, tables, buffers ------------------------------ */

typedef struct rs_run {
    rs_geom geo;
    int n_pass;
    rs_tab tab[GRAFT_MAX_RANK];             /* in pass order */
    int64_t shape[GRAFT_MAX_RANK + 1][GRAFT_MAX_RANK]; /* shape[k]: input of pass k */
    bool any_outside;
    float *buf[3]; /* two ping-pong intermediates and the masked dY */
    void *heap;    /* malloc'd workspace when the context has no scratch */
} rs_run;

static size_t align64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

static graft_status run_prepare(graft_op_call *c, rs_run *run, bool backward)
{
    const resize_params *p = c->params;
    memset(run, 0, sizeof *run);
    graft_status st = resize_geometry(c, &run->geo);
    if (st)
        return st;
    rs_geom *geo = &run->geo;
    if (!geo->known)
        return graft__op_fail(c, GRAFT_ERR_SHAPE, "X has a symbolic dim at run time");
    /* Shrinking axes first keeps the intermediates small. */
    int order[GRAFT_MAX_RANK], n = 0;
    for (int a = 0; a < geo->rank; a++)
        if (!axis_is_identity(p, geo, a))
            order[n++] = a;
    for (int i = 1; i < n; i++)
        for (int k = i; k > 0; k--) {
            int u = order[k - 1], v = order[k];
            double ru = (double)geo->out[u] / (double)(geo->in[u] ? geo->in[u] : 1);
            double rv = (double)geo->out[v] / (double)(geo->in[v] ? geo->in[v] : 1);
            if (rv >= ru)
                break;
            order[k - 1] = v;
            order[k] = u;
        }
    run->n_pass = n;
    memcpy(run->shape[0], geo->in, sizeof geo->in);
    int64_t inter = 0;
    size_t nbytes = 0;
    for (int k = 0; k < n; k++) {
        rs_tab *t = &run->tab[k];
        t->axis = order[k];
        t->taps = mode_taps(p->mode);
        t->n_in = geo->in[t->axis];
        t->n_out = geo->out[t->axis];
        memcpy(run->shape[k + 1], run->shape[k], sizeof run->shape[k]);
        run->shape[k + 1][t->axis] = t->n_out;
        if (k + 1 < n) {
            int64_t m = graft_shape_nelem(geo->rank, run->shape[k + 1]);
            inter = m > inter ? m : inter;
        }
        size_t cells = (size_t)(t->n_out * t->taps);
        nbytes += align64(cells * sizeof(int64_t)) + align64(cells * sizeof(float)) +
                  align64((size_t)t->n_out);
    }
    int64_t n_y = graft_shape_nelem(geo->rank, geo->out);
    bool crop = p->coord == RS_TF_CROP_AND_RESIZE;
    size_t buf_bytes = align64((size_t)inter * sizeof(float));
    nbytes += 2 * buf_bytes + (backward && crop ? align64((size_t)n_y * sizeof(float)) : 0);
    char *ws = NULL;
    if (nbytes > 0) {
        if (c->ctx && c->ctx->scratch)
            ws = c->ctx->scratch(c->ctx, nbytes);
        else
            ws = run->heap = aligned_alloc(64, nbytes);
        if (!ws)
            return graft__op_fail(c, GRAFT_ERR_NOMEM, "no memory for a %zu-byte workspace", nbytes);
    }
    for (int k = 0; k < n; k++) {
        rs_tab *t = &run->tab[k];
        size_t cells = (size_t)(t->n_out * t->taps);
        t->idx = (int64_t *)ws;
        ws += align64(cells * sizeof(int64_t));
        t->w = (float *)ws;
        ws += align64(cells * sizeof(float));
        t->outside = (uint8_t *)ws;
        ws += align64((size_t)t->n_out);
        tab_fill(p, geo, t);
        run->any_outside |= t->any_outside;
    }
    run->buf[0] = (float *)ws;
    run->buf[1] = (float *)(ws + buf_bytes);
    run->buf[2] = backward && crop ? (float *)(ws + 2 * buf_bytes) : NULL;
    return GRAFT_OK;
}

static void run_fini(rs_run *run)
{
    free(run->heap);
    run->heap = NULL;
}

/* Splits shape around axis: [outer, len, inner]. */
static void split(const int64_t *shape, int rank, int axis, int64_t *outer, int64_t *inner)
{
    *outer = graft_shape_nelem(axis, shape);
    *inner = graft_shape_nelem(rank - axis - 1, shape + axis + 1);
}

static void pass_forward(const graft_op_call *c, const rs_tab *t, int64_t outer, int64_t inner,
                         const float *x, float *y)
{
    const int T = t->taps;
    const int64_t n_in = t->n_in, n_out = t->n_out, rows = outer * n_out;
    int nt = lu_threads(c, rows * inner * T);
    /* rows (o, j) write disjoint outputs, so they split across threads */
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t row = 0; row < rows; row++) {
        int64_t o = row / n_out, j = row - o * n_out;
        const float *xo = x + o * n_in * inner;
        const int64_t *idx = t->idx + j * T;
        const float *w = t->w + j * T;
        float *yr = y + row * inner;
        if (inner == 1) {
            float s = 0.0f;
            for (int k = 0; k < T; k++)
                s += w[k] * xo[idx[k]];
            *yr = s;
            continue;
        }
        const float *x0 = xo + idx[0] * inner;
        for (int64_t i = 0; i < inner; i++)
            yr[i] = w[0] * x0[i];
        for (int k = 1; k < T; k++) {
            const float *xk = xo + idx[k] * inner;
            const float wk = w[k];
            for (int64_t i = 0; i < inner; i++)
                yr[i] += wk * xk[i];
        }
    }
}

/* dx[o, idx[j,t], :] += w[j,t] dy[o, j, :]. Different j may hit the same
 * input row, so only o splits across threads. */
static void pass_backward(const graft_op_call *c, const rs_tab *t, int64_t outer, int64_t inner,
                          const float *dy, float *dx)
{
    const int T = t->taps;
    const int64_t n_in = t->n_in, n_out = t->n_out;
    int nt = lu_threads(c, outer * n_out * inner * T);
    if (nt > outer)
        nt = (int)outer;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t o = 0; o < outer; o++) {
        float *dxo = dx + o * n_in * inner;
        const float *dyo = dy + o * n_out * inner;
        for (int64_t j = 0; j < n_out; j++) {
            const int64_t *idx = t->idx + j * T;
            const float *w = t->w + j * T;
            const float *g = dyo + j * inner;
            for (int k = 0; k < T; k++) {
                float *d = dxo + idx[k] * inner;
                const float wk = w[k];
                for (int64_t i = 0; i < inner; i++)
                    d[i] += wk * g[i];
            }
        }
    }
}

/* Sets v[i] = value at every output element with some axis sampled outside
 * the crop (tf_crop_and_resize). */
static void for_each_outside(const rs_run *run, float *v, float value)
{
    const rs_geom *geo = &run->geo;
    const uint8_t *flag[GRAFT_MAX_RANK] = {NULL};
    for (int k = 0; k < run->n_pass; k++)
        flag[run->tab[k].axis] = run->tab[k].outside;
    int64_t n = graft_shape_nelem(geo->rank, geo->out), pos[GRAFT_MAX_RANK] = {0};
    for (int64_t i = 0; i < n; i++) {
        bool out = false;
        for (int a = 0; a < geo->rank && !out; a++)
            out = flag[a] && flag[a][pos[a]];
        if (out)
            v[i] = value;
        for (int a = geo->rank - 1; a >= 0; a--) {
            if (++pos[a] < geo->out[a])
                break;
            pos[a] = 0;
        }
    }
}

static graft_status resize_forward(graft_op_call *c)
{
    const resize_params *p = c->params;
    rs_run run;
    graft_status st = run_prepare(c, &run, false);
    if (st)
        return st;
    const float *x = graft_tensor_f32(c->in[0]);
    float *y = graft_tensor_f32(c->out[0]);
    int r = run.geo.rank;
    if (run.n_pass == 0)
        graft__light_copy(c, y, x, (size_t)graft_tensor_nelem(c->in[0]) * sizeof(float));
    const float *src = x;
    for (int k = 0; k < run.n_pass; k++) {
        float *dst = k + 1 == run.n_pass ? y : run.buf[k % 2];
        int64_t outer, inner;
        split(run.shape[k], r, run.tab[k].axis, &outer, &inner);
        pass_forward(c, &run.tab[k], outer, inner, src, dst);
        src = dst;
    }
    if (run.any_outside)
        for_each_outside(&run, y, p->extrapolation);
    run_fini(&run);
    return GRAFT_OK;
}

static graft_status resize_backward(graft_op_call *c)
{
    if (!c->d_out[0] || !c->d_in[0])
        return GRAFT_OK;
    rs_run run;
    graft_status st = run_prepare(c, &run, true);
    if (st)
        return st;
    const float *dy = graft_tensor_f32(c->d_out[0]);
    float *dx = graft_tensor_f32(c->d_in[0]);
    int r = run.geo.rank;
    if (run.any_outside) {
        /* extrapolated outputs are constants: no gradient flows from them */
        int64_t n_y = graft_shape_nelem(r, run.geo.out);
        memcpy(run.buf[2], dy, (size_t)n_y * sizeof(float));
        for_each_outside(&run, run.buf[2], 0.0f);
        dy = run.buf[2];
    }
    if (run.n_pass == 0) {
        int64_t n = graft_tensor_nelem(c->d_in[0]);
        for (int64_t i = 0; i < n; i++)
            dx[i] += dy[i];
    }
    const float *g = dy;
    for (int k = run.n_pass - 1; k >= 0; k--) {
        float *dst = k == 0 ? dx : run.buf[(k - 1) % 2];
        if (k > 0)
            memset(dst, 0, (size_t)graft_shape_nelem(r, run.shape[k]) * sizeof(float));
        int64_t outer, inner;
        split(run.shape[k], r, run.tab[k].axis, &outer, &inner);
        pass_backward(c, &run.tab[k], outer, inner, g, dst);
        g = dst;
    }
    run_fini(&run);
    return GRAFT_OK;
}

const graft_op_def graft__op_resize = {
    .op_type = "Resize",
    .domain = "",
    .min_opset = 10,
    .params_size = sizeof(resize_params),
    .parse = resize_parse,
    .infer = resize_infer,
    .forward = resize_forward,
    .backward = resize_backward,
};

const graft_op_def graft__op_upsample = {
    .op_type = "Upsample",
    .domain = "",
    .min_opset = 7,
    .params_size = sizeof(resize_params),
    .parse = resize_parse,
    .infer = resize_infer,
    .forward = resize_forward,
    .backward = resize_backward,
};
