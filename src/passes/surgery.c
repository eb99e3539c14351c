/* Head surgery: find where the old classifier starts, cut it off, attach a
 * new dense head made only of standard ONNX ops at the graph's own opset,
 * and decide which parameters train. */
#include "graft/surgery.h"

#include "graft/exec.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

#define MAX_WALK 256
#define PI 3.14159265358979323846

static const char *model_name(const graft_graph *g)
{
    return g->source_path && *g->source_path ? g->source_path : "model";
}

/* snprintf that truncates quietly: names in messages may be long. */
static void textf(char *dst, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void textf(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, size, fmt, ap);
    va_end(ap);
}

static bool is_op(const graft_node *n, const char *t)
{
    return strcmp(n->op_type, t) == 0 && (!*n->domain || strcmp(n->domain, "ai.onnx") == 0);
}

static const char *label(const graft_node *n, char *buf, size_t size)
{
    if (n->name && *n->name)
        textf(buf, size, "%s node '%s'", n->op_type, n->name);
    else
        textf(buf, size, "unnamed %s node", n->op_type);
    return buf;
}

static const graft_node *producer_of(const graft_graph *g, int32_t v)
{
    if (v < 0 || v >= g->n_values)
        return NULL;
    int32_t p = g->values[v].producer;
    if (p < 0 || g->nodes[p].removed)
        return NULL;
    return &g->nodes[p];
}

/* Initializer or Constant output (maybe behind Identity): a fixed bias. */
static bool is_constant(const graft_graph *g, int32_t v)
{
    for (int depth = 0; v >= 0 && depth < 8; depth++) {
        if (g->values[v].kind == GRAFT_VALUE_INITIALIZER)
            return true;
        const graft_node *p = producer_of(g, v);
        if (!p || !(is_op(p, "Constant") || is_op(p, "Identity")))
            return false;
        if (is_op(p, "Constant"))
            return true;
        v = p->n_inputs > 0 ? p->inputs[0] : -1;
    }
    return false;
}

static bool conv_is_1x1(const graft_graph *g, const graft_node *n)
{
    if (graft_node_attr_int(n, "group", 1) != 1)
        return false;
    const int64_t *k = NULL;
    int cnt = graft_node_attr_ints(n, "kernel_shape", &k);
    if (cnt < 0 && n->n_inputs > 1 && n->inputs[1] >= 0) {
        const graft_value *w = &g->values[n->inputs[1]];
        if (w->data && w->data->rank >= 3) {
            k = w->data->dims + 2;
            cnt = w->data->rank - 2;
        } else if (w->rank >= 3) {
            k = w->dims + 2;
            cnt = w->rank - 2;
        }
    }
    if (cnt <= 0)
        return false;
    for (int i = 0; i < cnt; i++)
        if (k[i] != 1)
            return false;
    return true;
}

static bool is_global_pool(const graft_graph *g, const graft_node *n)
{
    if (is_op(n, "GlobalAveragePool") || is_op(n, "GlobalMaxPool"))
        return true;
    if (is_op(n, "ReduceMean")) {
        const int64_t *ax = NULL;
        int cnt = graft_node_attr_ints(n, "axes", &ax);
        if (cnt < 0 && n->n_inputs > 1 && n->inputs[1] >= 0) {
            /* ReduceMean-18: axes became an input */
            const graft_tensor *t = g->values[n->inputs[1]].data;
            if (t && t->dtype == GRAFT_INT64 && t->data) {
                ax = graft_tensor_i64(t);
                cnt = (int)graft_tensor_nelem(t);
            }
        }
        return cnt == 2 && ((ax[0] == 2 && ax[1] == 3) || (ax[0] == -2 && ax[1] == -1));
    }
    return false;
}

/* v is [N, C, 1, 1...]: already pooled (e.g. GAP, Conv1x1, HardSwish,
 * Dropout, Conv1x1 in MobileNetV3-style exports). */
static bool spatially_1x1(const graft_graph *g, int32_t v)
{
    graft__si *si = NULL;
    graft_error ignored = {0};
    if (graft__infer_static_shapes(g, 1, &si, &ignored) != GRAFT_OK)
        return false;
    bool ok = si[v].rank >= 3;
    for (int i = 2; i < si[v].rank; i++)
        ok = ok && si[v].dims[i] == 1;
    free(si);
    return ok;
}

static void append(char *buf, size_t size, const char *s)
{
    size_t len = strlen(buf);
    if (len + 1 < size)
        textf(buf + len, size - len, "%s", s);
}

static graft_status refuse(const graft_graph *g, graft_feature_info *out, graft_error *err,
                           const char *why)
{
    textf(out->reason, sizeof out->reason, "%s", why);
    return graft_error_set(err, GRAFT_ERR_NOT_FOUND,
                           "%s: %s; name the feature tensor with --cut NAME (a node or tensor "
                           "name, see `graft inspect --nodes`)",
                           model_name(g), why);
}

graft_status graft_surgery_find_features(const graft_graph *g, graft_feature_info *out,
                                         graft_error *err)
{
    char why[512], lb[200], shape[128];
    out->value = -1;
    out->classifier_node = -1;
    out->reason[0] = 0;
    if (g->n_outputs != 1) {
        textf(why, sizeof why,
              "the graph has %d outputs, so there is no single classifier output to replace",
              (int)g->n_outputs);
        return refuse(g, out, err, why);
    }
    int32_t y = g->outputs[0];
    const graft_value *yv = &g->values[y];
    if (yv->rank == 3 || yv->rank > 4) {
        textf(why, sizeof why,
              "output '%s' has shape %s (rank %d), which looks like a detection or sequence "
              "tensor, not [N, classes] scores",
              yv->name, graft_shape_format(yv->rank, yv->dims, shape, sizeof shape), yv->rank);
        return refuse(g, out, err, why);
    }
    if (yv->rank == 4 && ((yv->dims[2] > 1) || (yv->dims[3] > 1))) {
        textf(why, sizeof why,
              "output '%s' has shape %s, a spatial map (segmentation-like), not [N, classes] "
              "scores",
              yv->name, graft_shape_format(yv->rank, yv->dims, shape, sizeof shape));
        return refuse(g, out, err, why);
    }
    char path[256] = "";
    bool saw_pool = false, saw_relu = false, saw_softmax = false;
    int32_t v = y, feat = -1, cls = -1;
    for (int step = 0; step < MAX_WALK && feat < 0; step++) {
        const graft_node *n = producer_of(g, v);
        if (!n) {
            textf(why, sizeof why,
                  "no Gemm, MatMul or 1x1 Conv classifier lies between output '%s' and %s "
                  "'%s'",
                  yv->name,
                  g->values[v].kind == GRAFT_VALUE_INPUT ? "the graph input" : "the constant",
                  g->values[v].name);
            return refuse(g, out, err, why);
        }
        int32_t ni = (int32_t)(n - g->nodes);
        bool pass = !saw_pool && (is_op(n, "Softmax") || is_op(n, "LogSoftmax") ||
                                  is_op(n, "Sigmoid") || is_op(n, "Identity") ||
                                  is_op(n, "Dropout") || is_op(n, "Flatten") ||
                                  is_op(n, "Reshape") || is_op(n, "Squeeze") || is_op(n, "Cast"));
        if (pass) {
            saw_softmax |= is_op(n, "Softmax") || is_op(n, "LogSoftmax");
            append(path, sizeof path, *path ? ", " : "");
            append(path, sizeof path, n->op_type);
            v = n->inputs[0];
            continue;
        }
        if (!saw_pool && is_global_pool(g, n)) {
            saw_pool = true;
            append(path, sizeof path, *path ? ", " : "");
            append(path, sizeof path, n->op_type);
            v = n->inputs[0];
            continue;
        }
        if (saw_pool && !saw_relu && is_op(n, "Relu")) {
            saw_relu = true;
            append(path, sizeof path, ", Relu");
            v = n->inputs[0];
            continue;
        }
        if (!saw_pool && (is_op(n, "Gemm") || is_op(n, "MatMul"))) {
            cls = ni;
            feat = n->inputs[0];
        } else if (!saw_pool && is_op(n, "Add") && n->n_inputs == 2) {
            /* MatMul + bias, as CNTK, TensorFlow and old exporters write a dense layer */
            for (int k = 0; k < 2 && feat < 0; k++) {
                const graft_node *m = producer_of(g, n->inputs[k]);
                if (m && (is_op(m, "MatMul") || is_op(m, "Gemm")) &&
                    is_constant(g, n->inputs[1 - k])) {
                    cls = (int32_t)(m - g->nodes);
                    feat = m->inputs[0];
                }
            }
            if (feat < 0) {
                textf(why, sizeof why,
                      "walking back from output '%s' reached %s, which is not a MatMul + "
                      "bias classifier",
                      yv->name, label(n, lb, sizeof lb));
                return refuse(g, out, err, why);
            }
        } else if (is_op(n, "Conv") && conv_is_1x1(g, n)) {
            const graft_node *src = producer_of(g, n->inputs[0]);
            if (saw_pool) {
                /* SqueezeNet-style conv classifier. A 1x1 conv + pooling with
                 * neither the classifier's ReLU nor a softmax is how embedding
                 * models end, so that is not guessed. */
                if (!(saw_relu || saw_softmax) || !src) {
                    textf(why, sizeof why,
                          "output '%s' comes from %s and global pooling with no softmax: it "
                          "looks like an embedding, not a classifier (no Gemm/MatMul tail)",
                          yv->name, label(n, lb, sizeof lb));
                    return refuse(g, out, err, why);
                }
            } else if (!src || !(is_global_pool(g, src) || spatially_1x1(g, n->inputs[0]))) {
                textf(why, sizeof why,
                      "walking back from output '%s' reached %s, which does not read pooled "
                      "features",
                      yv->name, label(n, lb, sizeof lb));
                return refuse(g, out, err, why);
            }
            cls = ni;
            feat = n->inputs[0];
        } else {
            textf(why, sizeof why,
                  "walking back from output '%s' reached %s before any Gemm, MatMul or 1x1 "
                  "Conv classifier",
                  yv->name, label(n, lb, sizeof lb));
            return refuse(g, out, err, why);
        }
    }
    if (feat < 0) {
        textf(why, sizeof why, "output '%s' is too far from any classifier", yv->name);
        return refuse(g, out, err, why);
    }
    /* The old head's Dropout is training-only regularisation: cut before it
     * so that the frozen part never contains a stochastic node. */
    char stepped[128] = "";
    for (int i = 0; i < 4; i++) {
        const graft_node *p = producer_of(g, feat);
        if (!p || !(is_op(p, "Dropout") || is_op(p, "Identity")))
            break;
        textf(stepped, sizeof stepped, " (before its %s)", p->op_type);
        feat = p->inputs[0];
    }
    if (g->values[feat].kind == GRAFT_VALUE_INITIALIZER) {
        textf(why, sizeof why, "the classifier %s reads the constant '%s'",
              label(&g->nodes[cls], lb, sizeof lb), g->values[feat].name);
        return refuse(g, out, err, why);
    }
    out->value = feat;
    out->classifier_node = cls;
    textf(out->reason, sizeof out->reason,
          "'%s' is the input of the final classifier, %s%s (output '%s' via %s)",
          g->values[feat].name, label(&g->nodes[cls], lb, sizeof lb), stepped, yv->name,
          *path ? path : "no other op");
    return GRAFT_OK;
}

graft_status graft_surgery_resolve_cut(const graft_graph *g, const char *name, int32_t *value,
                                       graft_error *err)
{
    *value = -1;
    if (!name || !*name)
        return graft_error_set(err, GRAFT_ERR_ARG, "%s: empty --cut name", model_name(g));
    int32_t v = graft_graph_find_value(g, name);
    if (v < 0) {
        int32_t n = graft_graph_find_node(g, name);
        if (n >= 0) {
            const graft_node *nd = &g->nodes[n];
            for (int k = 0; k < nd->n_outputs && v < 0; k++)
                v = nd->outputs[k];
            if (v < 0)
                return graft_error_set(err, GRAFT_ERR_NOT_FOUND,
                                       "%s: --cut '%s': the node has no output",
                                       model_name(g), name);
        }
    }
    if (v < 0) {
        char hints[400] = "";
        int n_hint = 0;
        for (int32_t i = 0; i < g->n_values && n_hint < 5; i++) {
            const graft_value *val = &g->values[i];
            if (val->kind == GRAFT_VALUE_INITIALIZER || !strstr(val->name, name))
                continue;
            append(hints, sizeof hints, n_hint ? ", '" : " (similar tensors: '");
            append(hints, sizeof hints, val->name);
            append(hints, sizeof hints, "'");
            n_hint++;
        }
        if (n_hint)
            append(hints, sizeof hints, ")");
        return graft_error_set(err, GRAFT_ERR_NOT_FOUND,
                               "%s: --cut '%s': no node or tensor has that name%s", model_name(g),
                               name, hints);
    }
    const graft_value *val = &g->values[v];
    if (val->kind == GRAFT_VALUE_INITIALIZER)
        return graft_error_set(err, GRAFT_ERR_ARG,
                               "%s: --cut '%s' is a weight (initializer), not an activation",
                               model_name(g), name);
    if (val->kind == GRAFT_VALUE_ACTIVATION && !producer_of(g, v))
        return graft_error_set(err, GRAFT_ERR_ARG,
                               "%s: --cut '%s': no node produces that tensor", model_name(g),
                               name);
    *value = v;
    return GRAFT_OK;
}

graft_head_spec graft_head_spec_default(void)
{
    graft_head_spec s;
    memset(&s, 0, sizeof s);
    s.n_classes = 2;
    s.hidden = 0;
    s.dropout = 0.0f;
    s.no_pool = false;
    s.init = GRAFT_INIT_HE;
    s.seed = 42;
    s.output_name = NULL;
    return s;
}

/* ---- cut and attach ---- */

/* splitmix64: small, seedable, and identical on every platform. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *s) /* (0, 1) */
{
    return ((double)(rng_next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static void init_weights(float *w, int64_t fan_out, int64_t fan_in, bool he, uint64_t *rng)
{
    int64_t n = fan_out * fan_in;
    if (he) {
        double sd = sqrt(2.0 / (double)fan_in);
        for (int64_t i = 0; i < n; i += 2) {
            double u1 = rng_uniform(rng), u2 = rng_uniform(rng);
            double r = sqrt(-2.0 * log(u1));
            w[i] = (float)(sd * r * cos(2.0 * PI * u2));
            if (i + 1 < n)
                w[i + 1] = (float)(sd * r * sin(2.0 * PI * u2));
        }
    } else {
        double lim = sqrt(6.0 / (double)(fan_in + fan_out));
        for (int64_t i = 0; i < n; i++)
            w[i] = (float)((2.0 * rng_uniform(rng) - 1.0) * lim);
    }
}

typedef struct builder {
    graft_graph *g;
    graft_error *err;
    int32_t first_node;
} builder;

static int32_t new_act(builder *b, const char *prefix, int rank, const int64_t *dims)
{
    int32_t v = graft_graph_add_unique_value(b->g, prefix, b->err);
    if (v < 0)
        return -1;
    graft_value *val = &b->g->values[v];
    val->dtype = GRAFT_FLOAT;
    val->rank = rank;
    for (int i = 0; i < rank; i++)
        val->dims[i] = dims[i];
    return v;
}

static int32_t new_init(builder *b, const char *name, int rank, const int64_t *dims)
{
    graft_tensor *t = NULL;
    if (graft_tensor_create(GRAFT_FLOAT, rank, dims, &t, b->err))
        return -1;
    int32_t v = graft_graph_add_unique_value(b->g, name, b->err);
    if (v < 0) {
        graft_tensor_destroy(t);
        return -1;
    }
    graft_value *val = &b->g->values[v];
    val->kind = GRAFT_VALUE_INITIALIZER;
    val->dtype = GRAFT_FLOAT;
    val->source_dtype = GRAFT_FLOAT;
    val->rank = rank;
    for (int i = 0; i < rank; i++)
        val->dims[i] = dims[i];
    graft_value_set_data(b->g, v, t);
    return v;
}

static int32_t add_node(builder *b, const char *op, const char *name, int n_in,
                        const int32_t *in, int32_t out)
{
    char nm[256];
    textf(nm, sizeof nm, "%s", name);
    for (int i = 1; graft_graph_find_node(b->g, nm) >= 0; i++)
        textf(nm, sizeof nm, "%s_%d", name, i);
    int32_t n = graft_graph_add_node(b->g, op, "", nm, n_in, in, 1, &out, b->err);
    if (n >= 0 && b->first_node < 0)
        b->first_node = n;
    return n;
}

/* Dense layer: Gemm(x, W[out,in], b[out], transB=1). */
static int32_t add_dense(builder *b, const char *tag, int32_t x, int64_t n_in, int64_t n_out,
                         bool he, uint64_t *rng, const char *out_prefix)
{
    char wname[128], bname[128], nname[128];
    textf(wname, sizeof wname, "head.%s.weight", tag);
    textf(bname, sizeof bname, "head.%s.bias", tag);
    textf(nname, sizeof nname, "head/%s", tag);
    int64_t wd[2] = {n_out, n_in}, bd[1] = {n_out}, yd[2] = {-1, n_out};
    int32_t w = new_init(b, wname, 2, wd);
    int32_t bias = w < 0 ? -1 : new_init(b, bname, 1, bd);
    int32_t y = bias < 0 ? -1 : new_act(b, out_prefix, 2, yd);
    if (y < 0)
        return -1;
    init_weights(graft_tensor_f32(b->g->values[w].data), n_out, n_in, he, rng);
    int32_t in[3] = {x, w, bias};
    int32_t n = add_node(b, "Gemm", nname, 3, in, y);
    if (n < 0 || graft_node_set_int(b->g, n, "transB", 1, b->err))
        return -1;
    return y;
}

static int32_t add_dropout(builder *b, int32_t x, float ratio, int64_t width, int64_t opset,
                           const char *name)
{
    int64_t d[2] = {-1, width};
    int32_t y = new_act(b, "head.dropout", 2, d);
    if (y < 0)
        return -1;
    if (opset >= 12) {
        /* Dropout-12 moved ratio from an attribute to an input */
        int32_t r = new_init(b, "head.dropout.ratio", 0, NULL);
        if (r < 0)
            return -1;
        graft_tensor_f32(b->g->values[r].data)[0] = ratio;
        int32_t in[2] = {x, r};
        return add_node(b, "Dropout", name, 2, in, y) < 0 ? -1 : y;
    }
    int32_t n = add_node(b, "Dropout", name, 1, &x, y);
    if (n < 0 || graft_node_set_float(b->g, n, "ratio", ratio, b->err))
        return -1;
    return y;
}

static graft_status ensure_default_opset(graft_graph *g, int64_t *opset, graft_error *err)
{
    *opset = graft_graph_opset(g, "");
    if (*opset >= 7)
        return GRAFT_OK;
    if (*opset > 0)
        return graft_error_set(err, GRAFT_ERR_UNSUPPORTED,
                               "%s: default-domain opset %lld is older than 7; graft cannot "
                               "attach a head at that opset",
                               model_name(g), (long long)*opset);
    graft_opset *p = realloc(g->opsets, (size_t)(g->n_opsets + 1) * sizeof *p);
    if (!p)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory");
    g->opsets = p;
    p[g->n_opsets].domain = graft_graph_strdup(g, "");
    p[g->n_opsets].version = 13;
    if (!p[g->n_opsets].domain)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory");
    g->n_opsets++;
    *opset = 13;
    if (g->ir_version < 7)
        g->ir_version = g->ir_version ? g->ir_version : 7;
    return GRAFT_OK;
}

/* The executor's shape inference knows every op graft runs: ask it when the
 * static pass could not tell (fixed inputs only; batch 1). */
static void plan_shape(const graft_graph *g, int32_t f, graft__si *shape, graft_error *perr)
{
    graft_shape in[16];
    if (g->n_inputs > 16)
        return;
    for (int32_t i = 0; i < g->n_inputs; i++) {
        const graft_value *v = &g->values[g->inputs[i]];
        if (v->rank < 0)
            return;
        in[i].rank = v->rank;
        for (int d = 0; d < v->rank; d++) {
            if (v->dims[d] < 0 && d > 0)
                return;
            in[i].dims[d] = v->dims[d] < 0 ? 1 : v->dims[d];
        }
    }
    graft_plan_options o = graft_plan_options_default();
    o.fetches = &f;
    o.n_fetches = 1;
    graft_plan *p = NULL;
    graft_shape s;
    if (graft_plan_create(g, &o, (int)g->n_inputs, in, &p, perr) == GRAFT_OK &&
        graft_plan_value_shape(p, f, &s)) {
        shape->rank = s.rank;
        memcpy(shape->dims, s.dims, sizeof shape->dims);
    }
    graft_plan_destroy(p);
}

/* Element type of v when no value_info declared it: float ops keep their
 * first input's type, so walk back to something typed. */
static graft_dtype value_dtype(const graft_graph *g, int32_t v)
{
    for (int step = 0; step < 100000 && v >= 0; step++) {
        const graft_value *val = &g->values[v];
        if (val->dtype != GRAFT_DTYPE_UNDEFINED)
            return val->dtype;
        if (val->kind == GRAFT_VALUE_INITIALIZER)
            return val->source_dtype;
        const graft_node *p = producer_of(g, v);
        if (!p || p->n_inputs < 1)
            return GRAFT_DTYPE_UNDEFINED;
        if (is_op(p, "Cast"))
            return (graft_dtype)graft_node_attr_int(p, "to", 0);
        if (is_op(p, "Shape") || is_op(p, "Size"))
            return GRAFT_INT64;
        if (is_op(p, "Constant")) {
            const graft_attr *a = graft_node_attr(p, "value");
            return a && a->t ? a->t->dtype : GRAFT_DTYPE_UNDEFINED;
        }
        v = p->inputs[0];
    }
    return GRAFT_DTYPE_UNDEFINED;
}

/* Shape of the features: statically inferred, else from a plan, else as
 * declared. */
static graft_status feature_shape(const graft_graph *g, int32_t f, graft__si *shape,
                                  graft_error *perr, graft_error *err)
{
    graft__si *si = NULL;
    graft_status st = graft__infer_static_shapes(g, 1, &si, err);
    if (st)
        return st;
    *shape = si[f];
    free(si);
    bool known = shape->rank >= 2;
    for (int i = 1; i < shape->rank; i++)
        known = known && shape->dims[i] >= 0;
    if (!known)
        plan_shape(g, f, shape, perr);
    const graft_value *val = &g->values[f];
    if (shape->rank < 0 && val->rank >= 0) {
        shape->rank = val->rank;
        for (int i = 0; i < val->rank; i++)
            shape->dims[i] = val->dims[i];
    } else if (shape->rank == val->rank) {
        for (int i = 1; i < val->rank; i++)
            if (shape->dims[i] < 0 && val->dims[i] >= 0)
                shape->dims[i] = val->dims[i];
    }
    return GRAFT_OK;
}

/* A graph input whose non-batch dims are unknown: the usual reason the
 * feature width cannot be inferred. */
static const graft_value *input_with_unknown_dims(const graft_graph *g)
{
    for (int32_t i = 0; i < g->n_inputs; i++) {
        const graft_value *v = &g->values[g->inputs[i]];
        if (v->rank < 0)
            return v;
        for (int d = 1; d < v->rank; d++)
            if (v->dims[d] < 0)
                return v;
    }
    return NULL;
}

/* The flatten feeding the old classifier often has the export batch baked
 * into its target shape (Reshape to [1, K]), which would tie the head to
 * batch 1. Point that Reshape at a new [-1, K] shape; the file's own shape
 * tensor stays as it was. */
static graft_status unbake_batch(graft_graph *g, int32_t features, graft_error *err)
{
    int32_t p = g->values[features].producer;
    if (p < 0 || g->nodes[p].removed || !is_op(&g->nodes[p], "Reshape") ||
        g->nodes[p].n_inputs < 2 || g->nodes[p].inputs[1] < 0)
        return GRAFT_OK;
    int32_t sv = g->nodes[p].inputs[1];
    const graft_tensor *t = g->values[sv].kind == GRAFT_VALUE_INITIALIZER ? g->values[sv].data
                                                                          : NULL;
    const graft_node *c = producer_of(g, sv);
    if (!t && c && is_op(c, "Constant") && graft_node_attr(c, "value"))
        t = graft_node_attr(c, "value")->t;
    if (!t || t->dtype != GRAFT_INT64 || t->rank != 1 || t->dims[0] < 2 || !t->data ||
        graft_tensor_i64(t)[0] != 1)
        return GRAFT_OK;
    graft_tensor *nt = NULL;
    if (graft_tensor_clone(t, &nt, err))
        return err && err->status ? err->status : GRAFT_ERR_NOMEM;
    graft_tensor_i64(nt)[0] = -1;
    char name[300];
    textf(name, sizeof name, "%s_anybatch", g->values[sv].name);
    int32_t v = graft_graph_add_unique_value(g, name, err);
    if (v < 0) {
        graft_tensor_destroy(nt);
        return err && err->status ? err->status : GRAFT_ERR_NOMEM;
    }
    graft_value *val = &g->values[v];
    val->kind = GRAFT_VALUE_INITIALIZER;
    val->dtype = GRAFT_INT64;
    val->source_dtype = GRAFT_INT64;
    val->rank = 1;
    val->dims[0] = nt->dims[0];
    graft_value_set_data(g, v, nt);
    g->nodes[p].inputs[1] = v;
    return GRAFT_OK;
}

/* need[i]: live node i is needed to compute `features`. */
static bool *needed_nodes(const graft_graph *g, int32_t features, graft_error *err)
{
    bool *need = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *need);
    int32_t *stack = malloc((size_t)(g->n_nodes + 1) * sizeof *stack);
    if (!need || !stack) {
        free(need);
        free(stack);
        graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory");
        return NULL;
    }
    int32_t sp = 0;
    int32_t p = g->values[features].producer;
    if (p >= 0 && !g->nodes[p].removed) {
        need[p] = true;
        stack[sp++] = p;
    }
    while (sp > 0) {
        const graft_node *n = &g->nodes[stack[--sp]];
        for (int k = 0; k < n->n_inputs; k++) {
            int32_t v = n->inputs[k];
            if (v < 0)
                continue;
            int32_t q = g->values[v].producer;
            if (q >= 0 && !g->nodes[q].removed && !need[q]) {
                need[q] = true;
                stack[sp++] = q;
            }
        }
    }
    free(stack);
    return need;
}

/* The softmax output gets the requested name even when the old head used it:
 * a value the cut leaves orphaned is taken over. Checked before anything
 * changes, with need[] telling which nodes stay. */
static graft_status check_output_name(const graft_graph *g, const char *name, int32_t features,
                                      const bool *need, graft_error *err)
{
    int32_t v = graft_graph_find_value(g, name);
    if (v < 0)
        return GRAFT_OK;
    const graft_value *val = &g->values[v];
    bool orphan = v != features && val->kind == GRAFT_VALUE_ACTIVATION &&
                  (val->producer < 0 || g->nodes[val->producer].removed || !need[val->producer]);
    for (int32_t i = 0; i < g->n_nodes && orphan; i++) {
        const graft_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs && !n->removed && need[i]; k++)
            if (n->inputs[k] == v)
                orphan = false;
    }
    if (!orphan)
        return graft_error_set(err, GRAFT_ERR_ARG,
                               "%s: output name '%s' is already used by the backbone; choose "
                               "another",
                               model_name(g), name);
    return GRAFT_OK;
}

static int32_t output_value(builder *b, const char *name)
{
    graft_graph *g = b->g;
    int32_t v = graft_graph_find_value(g, name);
    if (v < 0)
        return graft_graph_add_value(g, name, b->err);
    graft_value *val = &g->values[v];
    val->producer = -1;
    val->doc_string = NULL;
    for (int i = 0; i < GRAFT_MAX_RANK; i++)
        val->dim_params[i] = NULL;
    return v;
}

graft_status graft_surgery_cut_and_attach(graft_graph *g, int32_t features,
                                          const graft_head_spec *spec, graft_head_info *out,
                                          graft_error *err)
{
    char shp[128];
    if (!spec || !out)
        return graft_error_set(err, GRAFT_ERR_ARG, "cut_and_attach: NULL argument");
    memset(out, 0, sizeof *out);
    out->features = out->head_input = out->logits = out->probabilities = -1;
    out->first_head_node = -1;
    if (features < 0 || features >= g->n_values)
        return graft_error_set(err, GRAFT_ERR_ARG, "%s: feature tensor index %d out of range",
                               model_name(g), (int)features);
    const graft_value *fv = &g->values[features];
    graft_dtype fdt = value_dtype(g, features);
    if (fv->kind == GRAFT_VALUE_INITIALIZER)
        return graft_error_set(err, GRAFT_ERR_ARG,
                               "%s: feature tensor '%s' is a weight, not an activation",
                               model_name(g), fv->name);
    if (fdt != GRAFT_DTYPE_UNDEFINED && !graft_dtype_is_float(fdt))
        return graft_error_set(err, GRAFT_ERR_ARG,
                               "%s: feature tensor '%s' is %s; a head needs floating-point "
                               "features",
                               model_name(g), fv->name, graft_dtype_name(fdt));
    if (spec->n_classes < 2)
        return graft_error_set(err, GRAFT_ERR_ARG, "a head needs at least 2 classes (got %d)",
                               spec->n_classes);
    if (spec->hidden < 0 || !(spec->dropout >= 0.0f && spec->dropout < 1.0f))
        return graft_error_set(err, GRAFT_ERR_ARG,
                               "bad head spec: hidden %d, dropout %g (need hidden >= 0, "
                               "0 <= dropout < 1)",
                               spec->hidden, (double)spec->dropout);

    graft__si fs;
    graft_error perr = {0};
    graft_status st = feature_shape(g, features, &fs, &perr, err);
    if (st)
        return st;
    fv = &g->values[features];
    if (fs.rank >= 0 && fs.rank < 2)
        return graft_error_set(err, GRAFT_ERR_SHAPE,
                               "%s: feature tensor '%s' has shape %s; a head needs [N, features] "
                               "or [N, C, H, W]",
                               model_name(g), fv->name,
                               graft_shape_format(fs.rank, fs.dims, shp, sizeof shp));
    bool pool = fs.rank == 4 && !spec->no_pool;
    int64_t F = fs.rank < 0 ? -1 : pool ? fs.dims[1] : 1;
    for (int i = 1; i < fs.rank && !pool && F >= 0; i++)
        F = fs.dims[i] < 0 ? -1 : F * fs.dims[i];
    if (fs.rank < 0)
        snprintf(shp, sizeof shp, "unknown");
    else
        graft_shape_format(fs.rank, fs.dims, shp, sizeof shp);
    if (F <= 0 && perr.status != GRAFT_OK)
        return graft_error_set(err, perr.status,
                               "%s (needed to infer the width of feature tensor '%s')", perr.msg,
                               fv->name);
    if (F <= 0) {
        const graft_value *in = input_with_unknown_dims(g);
        char ishp[128];
        if (in)
            return graft_error_set(err, GRAFT_ERR_SHAPE,
                                   "%s: cannot infer the width of feature tensor '%s' (shape %s) "
                                   "because input '%s' has shape %s; give the input size",
                                   model_name(g), fv->name, shp, in->name,
                                   graft_shape_format(in->rank, in->dims, ishp, sizeof ishp));
        return graft_error_set(err, GRAFT_ERR_SHAPE,
                               "%s: cannot infer the width of feature tensor '%s' (shape %s)",
                               model_name(g), fv->name, shp);
    }
    int64_t opset = 0;
    if ((st = ensure_default_opset(g, &opset, err)))
        return st;
    const char *oname = spec->output_name && *spec->output_name ? spec->output_name
                                                               : "probabilities";
    if ((st = unbake_batch(g, features, err)))
        return st;
    bool *need = needed_nodes(g, features, err);
    if (!need)
        return GRAFT_ERR_NOMEM;
    if ((st = check_output_name(g, oname, features, need, err))) {
        free(need);
        return st;
    }
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (!need[i])
            g->nodes[i].removed = true;
    free(need);
    for (int32_t i = 0; i < g->n_outputs; i++)
        g->values[g->outputs[i]].is_graph_output = false;

    builder b = {g, err, -1};
    uint64_t rng = spec->seed ^ 0x6772616674ull; /* "graft" */
    bool xavier_all = spec->init == GRAFT_INIT_XAVIER;
    int32_t x = features;
    int64_t d2[2] = {-1, F};
    if (fdt != GRAFT_FLOAT && fdt != GRAFT_DTYPE_UNDEFINED) {
        /* fp16/bf16/double backbones keep their type; the head is float32 */
        int64_t cd[GRAFT_MAX_RANK];
        for (int i = 0; i < fs.rank; i++)
            cd[i] = i == 0 ? -1 : fs.dims[i];
        int32_t c = new_act(&b, "head.cast", fs.rank, cd);
        int32_t n = c < 0 ? -1 : add_node(&b, "Cast", "head/cast", 1, &x, c);
        if (n < 0 || graft_node_set_int(g, n, "to", GRAFT_FLOAT, err))
            goto fail;
        x = c;
    }
    if (pool) {
        int64_t pd[4] = {-1, F, 1, 1};
        int32_t p = new_act(&b, "head.pool", 4, pd);
        if (p < 0 || add_node(&b, "GlobalAveragePool", "head/pool", 1, &x, p) < 0)
            goto fail;
        x = p;
    }
    if (fs.rank > 2) {
        int32_t f = new_act(&b, "head.flatten", 2, d2);
        int32_t n = f < 0 ? -1 : add_node(&b, "Flatten", "head/flatten", 1, &x, f);
        if (n < 0 || graft_node_set_int(g, n, "axis", 1, err))
            goto fail;
        x = f;
    }
    out->head_input = x;
    int64_t width = F;
    const char *last_tag = "fc";
    if (spec->hidden > 0) {
        x = add_dense(&b, "fc1", x, F, spec->hidden, !xavier_all, &rng, "head.fc1.out");
        int64_t hd[2] = {-1, spec->hidden};
        int32_t r = x < 0 ? -1 : new_act(&b, "head.relu1", 2, hd);
        if (r < 0 || add_node(&b, "Relu", "head/relu1", 1, &x, r) < 0)
            goto fail;
        x = r;
        width = spec->hidden;
        last_tag = "fc2";
    }
    if (spec->dropout > 0.0f) {
        x = add_dropout(&b, x, spec->dropout, width, opset, "head/dropout");
        if (x < 0)
            goto fail;
    }
    int32_t logits = add_dense(&b, last_tag, x, width, spec->n_classes, false, &rng, "logits");
    if (logits < 0)
        goto fail;
    int32_t prob = output_value(&b, oname);
    if (prob < 0)
        goto fail;
    int32_t sm = add_node(&b, "Softmax", "head/softmax", 1, &logits, prob);
    /* axis 1 of a 2-D tensor means the same before and after Softmax-13 */
    if (sm < 0 || graft_node_set_int(g, sm, "axis", 1, err))
        goto fail;
    graft_value *pv = &g->values[prob];
    pv->kind = GRAFT_VALUE_ACTIVATION;
    pv->dtype = GRAFT_FLOAT;
    pv->rank = 2;
    /* the batch dimension as the model's input declares it (fixed or by
     * the same symbol), so that input and output agree */
    const graft_value *in0 = g->n_inputs > 0 ? &g->values[g->inputs[0]] : NULL;
    bool from_input = in0 && in0->rank > 0;
    pv->dims[0] = from_input ? in0->dims[0] : -1;
    pv->dims[1] = spec->n_classes;
    pv->dim_params[0] = NULL;
    if (!from_input || (in0->dims[0] < 0 && in0->dim_params[0]))
        pv->dim_params[0] = graft_graph_strdup(g, from_input ? in0->dim_params[0] : "batch");
    pv->has_value_info = true;
    pv->is_graph_output = true;
    int32_t *outs = realloc(g->outputs, sizeof *outs);
    if (!outs) {
        graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory");
        goto fail;
    }
    g->outputs = outs;
    g->outputs[0] = prob;
    g->n_outputs = 1;
    if ((st = graft_graph_verify(g, err)))
        return st;
    out->features = features;
    out->logits = logits;
    out->probabilities = prob;
    out->n_features = F;
    out->first_head_node = b.first_node;
    return GRAFT_OK;
fail:
    if (err && err->status == GRAFT_OK)
        graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory attaching the head");
    return err ? err->status : GRAFT_ERR_NOMEM;
}

/* ---- freeze ---- */

/* Input slots of a head node that hold learnable parameters. */
static bool is_param_slot(const graft_node *n, int k)
{
    if (is_op(n, "Gemm") || is_op(n, "Conv") || is_op(n, "ConvTranspose"))
        return k == 1 || k == 2;
    if (is_op(n, "MatMul") || is_op(n, "PRelu"))
        return k == 1;
    if (is_op(n, "BatchNormalization") || is_op(n, "LayerNormalization") ||
        is_op(n, "InstanceNormalization"))
        return k == 1 || k == 2; /* BN 3 and 4 are running statistics */
    if (is_op(n, "Add") || is_op(n, "Mul") || is_op(n, "Sub"))
        return true;
    return false;
}

graft_status graft_surgery_freeze(graft_graph *g, const graft_head_info *head, graft_error *err)
{
    if (!head || head->features < 0 || head->features >= g->n_values)
        return graft_error_set(err, GRAFT_ERR_ARG, "freeze: no head (call cut_and_attach first)");
    int32_t nn = g->n_nodes, nv = g->n_values;
    bool *in_head = calloc((size_t)(nn ? nn : 1), sizeof *in_head);
    bool *downstream = calloc((size_t)(nv ? nv : 1), sizeof *downstream);
    /* per value: 1 = read by a head parameter slot, 2 = read elsewhere */
    uint8_t *use = calloc((size_t)(nv ? nv : 1), 1);
    int32_t *order = malloc((size_t)(nn ? nn : 1) * sizeof *order);
    graft_status st = GRAFT_OK;
    if (!in_head || !downstream || !use || !order) {
        st = graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory freezing");
        goto done;
    }
    int32_t cnt = graft_graph_topo_order(g, order, err);
    if (cnt < 0) {
        st = err && err->status ? err->status : GRAFT_ERR_INVALID;
        goto done;
    }
    /* The head is whatever depends on the features. */
    downstream[head->features] = true;
    for (int32_t i = 0; i < cnt; i++) {
        const graft_node *n = &g->nodes[order[i]];
        for (int k = 0; k < n->n_inputs && !in_head[order[i]]; k++)
            if (n->inputs[k] >= 0 && downstream[n->inputs[k]])
                in_head[order[i]] = true;
        if (in_head[order[i]])
            for (int k = 0; k < n->n_outputs; k++)
                if (n->outputs[k] >= 0)
                    downstream[n->outputs[k]] = true;
    }
    for (int32_t i = 0; i < cnt; i++) {
        const graft_node *n = &g->nodes[order[i]];
        for (int k = 0; k < n->n_inputs; k++) {
            int32_t v = n->inputs[k];
            if (v < 0)
                continue;
            bool param = in_head[order[i]] && is_param_slot(n, k);
            use[v] |= param ? 1 : 2;
        }
    }
    for (int32_t v = 0; v < nv; v++) {
        graft_value *val = &g->values[v];
        val->needs_grad = false;
        val->trainable = val->kind == GRAFT_VALUE_INITIALIZER && val->data &&
                         val->data->dtype == GRAFT_FLOAT && use[v] == 1;
        val->needs_grad = val->trainable;
    }
    for (int32_t i = 0; i < cnt; i++) {
        const graft_node *n = &g->nodes[order[i]];
        bool any = false;
        for (int k = 0; k < n->n_inputs && !any; k++)
            any = n->inputs[k] >= 0 && g->values[n->inputs[k]].needs_grad;
        if (!any)
            continue;
        for (int k = 0; k < n->n_outputs; k++) {
            int32_t v = n->outputs[k];
            if (v >= 0 && (g->values[v].dtype == GRAFT_FLOAT ||
                           g->values[v].dtype == GRAFT_DTYPE_UNDEFINED))
                g->values[v].needs_grad = true;
        }
    }
done:
    free(in_head);
    free(downstream);
    free(use);
    free(order);
    return st;
}
