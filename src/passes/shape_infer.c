/* Static shape inference for the graph passes. The surgery needs the width
 * of the feature tensor before any plan exists, and the fusion pass needs to
 * know that a residual Add does not broadcast; neither may depend on the
 * executor. Unknown dims stay unknown instead of failing, so the width of a
 * pooled tensor is found even when the image size is dynamic. */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

static bool op_is(const graft_node *n, const char *t)
{
    return strcmp(n->op_type, t) == 0 && (!*n->domain || strcmp(n->domain, "ai.onnx") == 0);
}

static void si_unknown(graft__si *s)
{
    s->rank = -1;
    s->n_const = -1;
}

static const graft__si *in_si(const graft__si *si, const graft_node *n, int k)
{
    static const graft__si none = {.rank = -1, .n_const = -1};
    if (k >= n->n_inputs || n->inputs[k] < 0)
        return &none;
    return &si[n->inputs[k]];
}

static int64_t prod_range(const graft__si *s, int a, int b)
{
    int64_t p = 1;
    for (int i = a; i < b; i++) {
        if (s->dims[i] < 0)
            return -1;
        p *= s->dims[i];
    }
    return p;
}

static int norm_axis(int64_t axis, int rank)
{
    if (axis < 0)
        axis += rank;
    return axis < 0 || axis >= rank ? -1 : (int)axis;
}

/* Constant int list from an attribute (older opsets) or an input (newer). */
static int int_list(const graft__si *si, const graft_node *n, const char *attr, int input,
                    int64_t *out)
{
    const int64_t *v = NULL;
    int cnt = graft_node_attr_ints(n, attr, &v);
    if (cnt >= 0) {
        if (cnt > GRAFT__SI_MAX_CONST)
            return -2;
        memcpy(out, v, (size_t)cnt * sizeof *v);
        return cnt;
    }
    if (input >= 0) {
        const graft__si *s = in_si(si, n, input);
        if (input < n->n_inputs && n->inputs[input] >= 0) {
            if (s->n_const < 0)
                return -2; /* present but unknown */
            memcpy(out, s->c, (size_t)s->n_const * sizeof *out);
            return s->n_const;
        }
    }
    return -1; /* absent */
}

static void infer_broadcast(const graft__si *si, const graft_node *n, graft__si *o)
{
    int r = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        const graft__si *s = in_si(si, n, k);
        if (n->inputs[k] < 0)
            continue;
        if (s->rank < 0)
            return;
        if (s->rank > r)
            r = s->rank;
    }
    o->rank = r;
    for (int i = 0; i < r; i++) {
        int64_t d = 1;
        bool unknown = false;
        for (int k = 0; k < n->n_inputs; k++) {
            const graft__si *s = in_si(si, n, k);
            if (n->inputs[k] < 0)
                continue;
            int j = i - (r - s->rank);
            int64_t e = j < 0 ? 1 : s->dims[j];
            if (e < 0)
                unknown = true;
            else if (e != 1 && d == 1)
                d = e;
        }
        if (d == 1 && unknown)
            d = -1;
        o->dims[i] = d;
    }
    /* Shape arithmetic on small int vectors. */
    const graft__si *a = in_si(si, n, 0), *b = in_si(si, n, 1);
    if (n->n_inputs == 2 && a->n_const >= 0 && b->n_const >= 0 && r <= 1) {
        int cnt = a->n_const > b->n_const ? a->n_const : b->n_const;
        if ((a->n_const == cnt || a->n_const == 1) && (b->n_const == cnt || b->n_const == 1)) {
            for (int i = 0; i < cnt; i++) {
                int64_t x = a->c[a->n_const == 1 ? 0 : i], y = b->c[b->n_const == 1 ? 0 : i];
                if (op_is(n, "Add"))
                    o->c[i] = x + y;
                else if (op_is(n, "Sub"))
                    o->c[i] = x - y;
                else if (op_is(n, "Mul"))
                    o->c[i] = x * y;
                else if (op_is(n, "Div") && y != 0)
                    o->c[i] = x / y;
                else
                    return;
            }
            o->n_const = cnt;
        }
    }
}

static void infer_conv_pool(const graft__si *si, const graft_node *n, graft__si *o, bool conv)
{
    const graft__si *x = in_si(si, n, 0);
    if (x->rank < 3)
        return;
    int ns = x->rank - 2;
    int64_t k[GRAFT_MAX_RANK], s[GRAFT_MAX_RANK], d[GRAFT_MAX_RANK], p[2 * GRAFT_MAX_RANK];
    const int64_t *v = NULL;
    int cnt = graft_node_attr_ints(n, "kernel_shape", &v);
    const graft__si *w = conv ? in_si(si, n, 1) : NULL;
    if (cnt == ns) {
        memcpy(k, v, (size_t)ns * sizeof *k);
    } else if (conv && w->rank == x->rank) {
        memcpy(k, w->dims + 2, (size_t)ns * sizeof *k);
    } else {
        return;
    }
    for (int i = 0; i < ns; i++) {
        s[i] = 1;
        d[i] = 1;
        p[i] = p[i + ns] = 0;
    }
    if ((cnt = graft_node_attr_ints(n, "strides", &v)) == ns)
        memcpy(s, v, (size_t)ns * sizeof *s);
    if ((cnt = graft_node_attr_ints(n, "dilations", &v)) == ns)
        memcpy(d, v, (size_t)ns * sizeof *d);
    if ((cnt = graft_node_attr_ints(n, "pads", &v)) == 2 * ns)
        memcpy(p, v, (size_t)(2 * ns) * sizeof *p);
    const char *ap = graft_node_attr_string(n, "auto_pad", "NOTSET");
    bool same = strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0;
    bool valid = strcmp(ap, "VALID") == 0;
    bool ceil_mode = !conv && graft_node_attr_int(n, "ceil_mode", 0) != 0;
    o->rank = x->rank;
    o->dims[0] = x->dims[0];
    if (conv)
        o->dims[1] = w->rank >= 1 ? w->dims[0] : -1;
    else
        o->dims[1] = x->dims[1];
    for (int i = 0; i < ns; i++) {
        int64_t in = x->dims[2 + i];
        if (in < 0 || k[i] < 0 || s[i] <= 0) {
            o->dims[2 + i] = -1;
            continue;
        }
        int64_t ek = (k[i] - 1) * d[i] + 1;
        if (same) {
            o->dims[2 + i] = (in + s[i] - 1) / s[i];
        } else {
            int64_t span = in + (valid ? 0 : p[i] + p[i + ns]) - ek;
            if (span < 0) {
                o->dims[2 + i] = -1;
                continue;
            }
            int64_t q = ceil_mode ? (span + s[i] - 1) / s[i] : span / s[i];
            /* ceil_mode: the last window must start inside the padded input */
            if (ceil_mode && q * s[i] >= in + p[i])
                q--;
            o->dims[2 + i] = q + 1;
        }
    }
}

static void infer_reshape(const graft__si *si, const graft_node *n, graft__si *o)
{
    const graft__si *x = in_si(si, n, 0);
    int64_t t[GRAFT__SI_MAX_CONST];
    int cnt = int_list(si, n, "shape", 1, t);
    if (cnt < 0 || cnt > GRAFT_MAX_RANK)
        return;
    bool allowzero = graft_node_attr_int(n, "allowzero", 0) != 0;
    int minus = -1;
    int64_t known = 1;
    o->rank = cnt;
    for (int i = 0; i < cnt; i++) {
        int64_t e = t[i];
        if (e == 0 && !allowzero)
            e = i < x->rank ? x->dims[i] : -1;
        if (t[i] == -1) {
            minus = i;
            e = -1;
        } else if (e < 0) {
            known = -1;
        } else if (known >= 0) {
            known *= e;
        }
        o->dims[i] = e;
    }
    if (minus >= 0) {
        int64_t total = x->rank >= 0 ? prod_range(x, 0, x->rank) : -1;
        o->dims[minus] = total >= 0 && known > 0 ? total / known : -1;
    }
    if (x->n_const >= 0 && cnt == 1)
        o->n_const = x->n_const, memcpy(o->c, x->c, sizeof o->c);
}

static void infer_squeeze(const graft__si *si, const graft_node *n, graft__si *o, bool un)
{
    const graft__si *x = in_si(si, n, 0);
    int64_t ax[GRAFT__SI_MAX_CONST];
    int cnt = int_list(si, n, "axes", 1, ax);
    if (cnt == -2 || x->rank < 0)
        return;
    if (un) {
        if (cnt < 0)
            return;
        int r = x->rank + cnt;
        if (r > GRAFT_MAX_RANK)
            return;
        bool ins[GRAFT_MAX_RANK] = {0};
        for (int i = 0; i < cnt; i++) {
            int a = norm_axis(ax[i], r);
            if (a < 0)
                return;
            ins[a] = true;
        }
        o->rank = r;
        for (int i = 0, j = 0; i < r; i++)
            o->dims[i] = ins[i] ? 1 : x->dims[j++];
        if (x->n_const >= 0 && x->rank == 0)
            o->n_const = x->n_const, memcpy(o->c, x->c, sizeof o->c);
        return;
    }
    bool del[GRAFT_MAX_RANK] = {0};
    if (cnt < 0) {
        for (int i = 0; i < x->rank; i++) {
            if (x->dims[i] < 0)
                return; /* cannot tell which dims are 1 */
            del[i] = x->dims[i] == 1;
        }
    } else {
        for (int i = 0; i < cnt; i++) {
            int a = norm_axis(ax[i], x->rank);
            if (a < 0)
                return;
            del[a] = true;
        }
    }
    o->rank = 0;
    for (int i = 0; i < x->rank; i++)
        if (!del[i])
            o->dims[o->rank++] = x->dims[i];
    if (x->n_const == 1 && o->rank == 0)
        o->n_const = 1, o->c[0] = x->c[0];
}

static void infer_gemm(const graft__si *si, const graft_node *n, graft__si *o)
{
    const graft__si *a = in_si(si, n, 0), *b = in_si(si, n, 1);
    if (a->rank != 2 || b->rank != 2)
        return;
    bool ta = graft_node_attr_int(n, "transA", 0) != 0;
    bool tb = graft_node_attr_int(n, "transB", 0) != 0;
    o->rank = 2;
    o->dims[0] = a->dims[ta ? 1 : 0];
    o->dims[1] = b->dims[tb ? 0 : 1];
}

static void infer_matmul(const graft__si *si, const graft_node *n, graft__si *o)
{
    const graft__si *a = in_si(si, n, 0), *b = in_si(si, n, 1);
    if (a->rank < 1 || b->rank < 1)
        return;
    graft__si aa = *a, bb = *b;
    bool va = a->rank == 1, vb = b->rank == 1;
    if (va) {
        aa.rank = 2;
        aa.dims[0] = 1;
        aa.dims[1] = a->dims[0];
    }
    if (vb) {
        bb.rank = 2;
        bb.dims[1] = 1;
        bb.dims[0] = b->dims[0];
    }
    int rb = aa.rank > bb.rank ? aa.rank : bb.rank;
    o->rank = 0;
    for (int i = 0; i < rb - 2; i++) {
        int ja = i - (rb - aa.rank), jb = i - (rb - bb.rank);
        int64_t da = ja < 0 ? 1 : aa.dims[ja], db = jb < 0 ? 1 : bb.dims[jb];
        o->dims[o->rank++] = da == 1 ? db : da;
    }
    if (!va)
        o->dims[o->rank++] = aa.dims[aa.rank - 2];
    if (!vb)
        o->dims[o->rank++] = bb.dims[bb.rank - 1];
}

static void infer_gather(const graft__si *si, const graft_node *n, graft__si *o)
{
    const graft__si *x = in_si(si, n, 0), *ix = in_si(si, n, 1);
    if (x->rank < 1 || ix->rank < 0)
        return;
    int axis = norm_axis(graft_node_attr_int(n, "axis", 0), x->rank);
    if (axis < 0 || x->rank - 1 + ix->rank > GRAFT_MAX_RANK)
        return;
    o->rank = 0;
    for (int i = 0; i < axis; i++)
        o->dims[o->rank++] = x->dims[i];
    for (int i = 0; i < ix->rank; i++)
        o->dims[o->rank++] = ix->dims[i];
    for (int i = axis + 1; i < x->rank; i++)
        o->dims[o->rank++] = x->dims[i];
    if (x->rank == 1 && x->n_const >= 0 && ix->n_const >= 0) {
        for (int i = 0; i < ix->n_const; i++) {
            int64_t j = ix->c[i] < 0 ? ix->c[i] + x->n_const : ix->c[i];
            if (j < 0 || j >= x->n_const)
                return;
            o->c[i] = x->c[j];
        }
        o->n_const = ix->n_const;
    }
}

static void infer_concat(const graft__si *si, const graft_node *n, graft__si *o)
{
    const graft__si *x0 = in_si(si, n, 0);
    if (x0->rank < 0)
        return;
    int axis = norm_axis(graft_node_attr_int(n, "axis", 0), x0->rank);
    if (axis < 0)
        return;
    *o = *x0;
    o->n_const = -1;
    int nc = 0;
    bool all_const = true;
    int64_t sum = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        const graft__si *s = in_si(si, n, k);
        if (s->rank != x0->rank) {
            si_unknown(o);
            return;
        }
        sum = sum < 0 || s->dims[axis] < 0 ? -1 : sum + s->dims[axis];
        if (s->n_const < 0 || nc + s->n_const > GRAFT__SI_MAX_CONST) {
            all_const = false;
        } else {
            memcpy(o->c + nc, s->c, (size_t)s->n_const * sizeof *o->c);
            nc += s->n_const;
        }
    }
    o->dims[axis] = sum;
    if (all_const && x0->rank == 1)
        o->n_const = nc;
}

static void infer_slice(const graft__si *si, const graft_node *n, graft__si *o)
{
    const graft__si *x = in_si(si, n, 0);
    if (x->rank < 0)
        return;
    int64_t st[GRAFT__SI_MAX_CONST], en[GRAFT__SI_MAX_CONST], ax[GRAFT__SI_MAX_CONST],
        sp[GRAFT__SI_MAX_CONST];
    bool attr_form = n->opset > 0 && n->opset < 10;
    int ns = int_list(si, n, "starts", attr_form ? -1 : 1, st);
    int ne = int_list(si, n, "ends", attr_form ? -1 : 2, en);
    int na = int_list(si, n, "axes", attr_form ? -1 : 3, ax);
    int nsp = attr_form ? -1 : int_list(si, n, "steps", 4, sp);
    if (ns < 0 || ne != ns || na == -2 || nsp == -2 || (na >= 0 && na != ns) ||
        (nsp >= 0 && nsp != ns))
        return;
    *o = *x;
    o->n_const = -1;
    int64_t vals[GRAFT__SI_MAX_CONST];
    int nv = -1;
    for (int i = 0; i < ns; i++) {
        int a = norm_axis(na >= 0 ? ax[i] : i, x->rank);
        int64_t step = nsp >= 0 ? sp[i] : 1;
        if (a < 0 || step == 0)
            return;
        int64_t dim = x->dims[a];
        if (dim < 0) {
            o->dims[a] = -1;
            continue;
        }
        int64_t b = st[i], e = en[i];
        if (b < 0)
            b += dim;
        if (e < 0)
            e += dim;
        if (step > 0) {
            b = b < 0 ? 0 : b > dim ? dim : b;
            e = e < 0 ? 0 : e > dim ? dim : e;
            o->dims[a] = e > b ? (e - b + step - 1) / step : 0;
        } else {
            b = b < 0 ? -1 : b > dim - 1 ? dim - 1 : b;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            o->dims[a] = b > e ? (b - e - step - 1) / -step : 0;
        }
        if (x->rank == 1 && x->n_const >= 0 && a == 0) {
            nv = 0;
            for (int64_t j = b; (step > 0 ? j < e : j > e) && nv < GRAFT__SI_MAX_CONST; j += step)
                vals[nv++] = x->c[j];
        }
    }
    if (nv >= 0) {
        memcpy(o->c, vals, (size_t)nv * sizeof *vals);
        o->n_const = nv;
    }
}

static void infer_reduce(const graft__si *si, const graft_node *n, graft__si *o)
{
    const graft__si *x = in_si(si, n, 0);
    if (x->rank < 0)
        return;
    int64_t ax[GRAFT__SI_MAX_CONST];
    int cnt = int_list(si, n, "axes", 1, ax);
    if (cnt == -2)
        return;
    bool keep = graft_node_attr_int(n, "keepdims", 1) != 0;
    bool red[GRAFT_MAX_RANK] = {0};
    if (cnt <= 0) {
        /* no axes: every axis, or none at all when noop_with_empty_axes */
        bool noop = graft_node_attr_int(n, "noop_with_empty_axes", 0) != 0;
        for (int i = 0; i < x->rank; i++)
            red[i] = !noop;
        cnt = 0;
    }
    for (int i = 0; i < cnt; i++) {
        int a = norm_axis(ax[i], x->rank);
        if (a < 0)
            return;
        red[a] = true;
    }
    o->rank = 0;
    for (int i = 0; i < x->rank; i++) {
        if (!red[i])
            o->dims[o->rank++] = x->dims[i];
        else if (keep)
            o->dims[o->rank++] = 1;
    }
}

static void infer_node(const graft_graph *g, const graft_node *n, graft__si *si)
{
    static const char *const same_shape[] = {
        "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu",
        "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Erf", "Identity", "Dropout",
        "BatchNormalization", "Clip", "Softmax", "LogSoftmax", "Hardmax", "Cast", "LRN",
        "InstanceNormalization", "LayerNormalization", "PRelu", "Mish", "Softplus", "Softsign",
        "Floor", "Ceil", "Round", "Sign", "Not", "ThresholdedRelu", "Celu", "Gelu", "Sin",
        "Cos", "IsNaN"};
    static const char *const bcast[] = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum",
                                        "Mean", "Equal", "Greater", "Less", "Where", "And",
                                        "Or", "Xor", "GreaterOrEqual", "LessOrEqual", "Mod"};
    for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] >= 0)
            si_unknown(&si[n->outputs[k]]);
    if (n->n_outputs < 1 || n->outputs[0] < 0)
        return;
    graft__si *o = &si[n->outputs[0]];
    const graft__si *x = in_si(si, n, 0);
    bool ms = strcmp(n->domain, "com.microsoft") == 0;
    if (ms && strcmp(n->op_type, "FusedConv") == 0) {
        infer_conv_pool(si, n, o, true);
        return;
    }
    if (*n->domain && strcmp(n->domain, "ai.onnx") != 0)
        return;
    for (size_t i = 0; i < sizeof same_shape / sizeof *same_shape; i++) {
        if (strcmp(n->op_type, same_shape[i]) == 0) {
            *o = *x;
            if (!op_is(n, "Identity") && !op_is(n, "Cast"))
                o->n_const = -1;
            /* Dropout's mask has the data's shape. */
            if (op_is(n, "Dropout") && n->n_outputs > 1 && n->outputs[1] >= 0) {
                si[n->outputs[1]] = *x;
                si[n->outputs[1]].n_const = -1;
            }
            return;
        }
    }
    for (size_t i = 0; i < sizeof bcast / sizeof *bcast; i++)
        if (strcmp(n->op_type, bcast[i]) == 0) {
            infer_broadcast(si, n, o);
            return;
        }
    if (op_is(n, "Conv")) {
        infer_conv_pool(si, n, o, true);
    } else if (op_is(n, "MaxPool") || op_is(n, "AveragePool") || op_is(n, "LpPool")) {
        infer_conv_pool(si, n, o, false);
        if (n->n_outputs > 1 && n->outputs[1] >= 0)
            si[n->outputs[1]] = *o;
    } else if (op_is(n, "GlobalAveragePool") || op_is(n, "GlobalMaxPool") ||
               op_is(n, "GlobalLpPool")) {
        if (x->rank >= 3) {
            *o = *x;
            o->n_const = -1;
            for (int i = 2; i < x->rank; i++)
                o->dims[i] = 1;
        }
    } else if (op_is(n, "Flatten")) {
        int64_t axis = graft_node_attr_int(n, "axis", 1);
        if (x->rank >= 0) {
            if (axis < 0)
                axis += x->rank;
            if (axis >= 0 && axis <= x->rank) {
                o->rank = 2;
                o->dims[0] = prod_range(x, 0, (int)axis);
                o->dims[1] = prod_range(x, (int)axis, x->rank);
            }
        }
    } else if (op_is(n, "Reshape")) {
        infer_reshape(si, n, o);
    } else if (op_is(n, "Transpose")) {
        if (x->rank >= 0) {
            const int64_t *perm = NULL;
            int cnt = graft_node_attr_ints(n, "perm", &perm);
            o->rank = x->rank;
            for (int i = 0; i < x->rank; i++) {
                int64_t p = cnt == x->rank ? perm[i] : x->rank - 1 - i;
                o->dims[i] = p >= 0 && p < x->rank ? x->dims[p] : -1;
            }
        }
    } else if (op_is(n, "Squeeze")) {
        infer_squeeze(si, n, o, false);
    } else if (op_is(n, "Unsqueeze")) {
        infer_squeeze(si, n, o, true);
    } else if (op_is(n, "Concat")) {
        infer_concat(si, n, o);
    } else if (op_is(n, "Shape")) {
        if (x->rank >= 0) {
            int64_t st = graft_node_attr_int(n, "start", 0), en = graft_node_attr_int(n, "end",
                                                                                    x->rank);
            if (st < 0)
                st += x->rank;
            if (en < 0)
                en += x->rank;
            st = st < 0 ? 0 : st > x->rank ? x->rank : st;
            en = en < st ? st : en > x->rank ? x->rank : en;
            o->rank = 1;
            o->dims[0] = en - st;
            bool known = true;
            for (int64_t i = st; i < en; i++) {
                known = known && x->dims[i] >= 0;
                o->c[i - st] = x->dims[i];
            }
            if (known)
                o->n_const = (int)(en - st);
        }
    } else if (op_is(n, "Gather")) {
        infer_gather(si, n, o);
    } else if (op_is(n, "Slice")) {
        infer_slice(si, n, o);
    } else if (op_is(n, "Gemm")) {
        infer_gemm(si, n, o);
    } else if (op_is(n, "MatMul")) {
        infer_matmul(si, n, o);
    } else if (op_is(n, "ReduceMean") || op_is(n, "ReduceSum") || op_is(n, "ReduceMax") ||
               op_is(n, "ReduceMin") || op_is(n, "ReduceProd") || op_is(n, "ReduceL2") ||
               op_is(n, "ReduceL1") || op_is(n, "ReduceSumSquare") || op_is(n, "ReduceLogSum") ||
               op_is(n, "ReduceLogSumExp")) {
        infer_reduce(si, n, o);
    } else if (op_is(n, "Constant")) {
        const graft_attr *a = graft_node_attr(n, "value");
        if (a && a->t) {
            o->rank = a->t->rank;
            memcpy(o->dims, a->t->dims, sizeof o->dims);
            int64_t ne = graft_tensor_nelem(a->t);
            if (a->t->dtype == GRAFT_INT64 && ne >= 0 && ne <= GRAFT__SI_MAX_CONST &&
                a->t->data) {
                memcpy(o->c, a->t->data, (size_t)ne * sizeof(int64_t));
                o->n_const = (int)ne;
            }
        } else if ((a = graft_node_attr(n, "value_ints")) && a->n <= GRAFT__SI_MAX_CONST) {
            o->rank = 1;
            o->dims[0] = a->n;
            memcpy(o->c, a->ints, (size_t)a->n * sizeof(int64_t));
            o->n_const = a->n;
        } else if ((a = graft_node_attr(n, "value_int"))) {
            o->rank = 0;
            o->c[0] = a->i;
            o->n_const = 1;
        }
    } else if (op_is(n, "ConstantOfShape")) {
        if (x->n_const >= 0 && x->n_const <= GRAFT_MAX_RANK) {
            o->rank = x->n_const;
            memcpy(o->dims, x->c, (size_t)x->n_const * sizeof *o->dims);
        }
    } else if (op_is(n, "Pad")) {
        /* pads (attribute before opset 11, else input 1); Pad-18's axes
         * (input 3) name the axes the pads are for */
        int64_t p[GRAFT__SI_MAX_CONST], ax[GRAFT__SI_MAX_CONST];
        int cnt = int_list(si, n, "pads", n->opset >= 11 ? 1 : -1, p);
        int n_ax = n->opset >= 18 ? int_list(si, n, "axes", 3, ax) : -1;
        if (n_ax == -1 && x->rank >= 0) {
            n_ax = x->rank;
            for (int i = 0; i < n_ax; i++)
                ax[i] = i;
        }
        bool ok = x->rank >= 0 && n_ax >= 0 && n_ax <= x->rank && cnt == 2 * n_ax;
        for (int k = 0; ok && k < n_ax; k++) {
            ax[k] += ax[k] < 0 ? x->rank : 0;
            ok = ax[k] >= 0 && ax[k] < x->rank;
        }
        if (ok) {
            *o = *x;
            o->n_const = -1;
            for (int k = 0; k < n_ax; k++) {
                int i = (int)ax[k];
                o->dims[i] = x->dims[i] < 0 ? -1 : x->dims[i] + p[k] + p[k + n_ax];
            }
        }
    }
    (void)g;
}

graft_status graft__infer_static_shapes(const graft_graph *g, int64_t batch, graft__si **out,
                                        graft_error *err)
{
    graft__si *si = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *si);
    int32_t *order = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *order);
    if (!si || !order) {
        free(si);
        free(order);
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory inferring shapes");
    }
    for (int32_t v = 0; v < g->n_values; v++) {
        const graft_value *val = &g->values[v];
        graft__si *s = &si[v];
        si_unknown(s);
        if (val->kind == GRAFT_VALUE_INITIALIZER && val->data) {
            const graft_tensor *t = val->data;
            s->rank = t->rank;
            memcpy(s->dims, t->dims, sizeof s->dims);
            int64_t ne = graft_tensor_nelem(t);
            if (t->dtype == GRAFT_INT64 && t->data && ne >= 0 && ne <= GRAFT__SI_MAX_CONST) {
                memcpy(s->c, t->data, (size_t)ne * sizeof(int64_t));
                s->n_const = (int)ne;
            }
        } else if (val->kind == GRAFT_VALUE_INPUT && val->rank >= 0) {
            s->rank = val->rank;
            for (int i = 0; i < val->rank; i++)
                s->dims[i] = val->dims[i] >= 0 ? val->dims[i] : (i == 0 ? batch : -1);
        }
    }
    int32_t cnt = graft_graph_topo_order(g, order, err);
    if (cnt < 0) {
        free(si);
        free(order);
        return err && err->status ? err->status : GRAFT_ERR_INVALID;
    }
    for (int32_t i = 0; i < cnt; i++)
        infer_node(g, &g->nodes[order[i]], si);
    free(order);
    *out = si;
    return GRAFT_OK;
}

int32_t *graft__count_consumers(const graft_graph *g)
{
    int32_t *c = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *c);
    if (!c)
        return NULL;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const graft_node *n = &g->nodes[i];
        if (n->removed)
            continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0)
                c[n->inputs[k]]++;
    }
    return c;
}
