/* tests/common/kernels_util.c - see kernels_util.h. */
#include "kernels_util.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *kt_scratch(graft_exec_ctx *ctx, size_t nbytes)
{
    kt_node *k = ctx->scratch_owner;
    if (nbytes > k->scratch_size || !k->scratch) {
        free(k->scratch);
        size_t sz = (nbytes + 63) / 64 * 64;
        k->scratch = aligned_alloc(64, sz ? sz : 64);
        k->scratch_size = k->scratch ? sz : 0;
    }
    return k->scratch;
}

kt_node *kt_node_new(const char *op_type, const char *domain, int opset, int n_in, int n_out)
{
    kt_node *k = calloc(1, sizeof *k);
    if (!k || graft_graph_create(&k->g, &k->err) != GRAFT_OK)
        return NULL;
    int32_t ins[KT_MAX_IO], outs[KT_MAX_IO];
    char name[32];
    for (int i = 0; i < n_in; i++) {
        snprintf(name, sizeof name, "in%d", i);
        ins[i] = graft_graph_add_value(k->g, name, &k->err);
        k->g->values[ins[i]].kind = GRAFT_VALUE_INPUT;
    }
    for (int i = 0; i < n_out; i++) {
        snprintf(name, sizeof name, "out%d", i);
        outs[i] = graft_graph_add_value(k->g, name, &k->err);
    }
    k->node = graft_graph_add_node(k->g, op_type, domain, "test_node", n_in, ins, n_out, outs,
                                   &k->err);
    if (k->node < 0) {
        kt_node_free(k);
        return NULL;
    }
    k->g->nodes[k->node].opset = opset;
    int op = k->g->nodes[k->node].op;
    k->def = op >= 0 ? graft__op_table[op] : NULL;
    k->n_in = n_in;
    k->n_out = n_out;
    k->ctx.n_threads = 2;
    k->ctx.scratch = kt_scratch;
    k->ctx.scratch_owner = k;
    k->ctx.rng[0] = 1;
    k->ctx.rng[1] = 2;
    return k;
}

void kt_node_free(kt_node *k)
{
    if (!k)
        return;
    for (int i = 0; i < KT_MAX_IO; i++) {
        graft_tensor_destroy(k->in[i]);
        graft_tensor_destroy(k->out[i]);
    }
    free(k->params);
    free(k->scratch);
    graft_graph_destroy(k->g);
    free(k);
}

void kt_set_int(kt_node *k, const char *name, int64_t v)
{
    graft_node_set_int(k->g, k->node, name, v, &k->err);
}

void kt_set_float(kt_node *k, const char *name, float v)
{
    graft_node_set_float(k->g, k->node, name, v, &k->err);
}

void kt_set_ints(kt_node *k, const char *name, int n, const int64_t *v)
{
    graft_node_set_ints(k->g, k->node, name, n, v, &k->err);
}

void kt_set_string(kt_node *k, const char *name, const char *v)
{
    graft_node_set_string(k->g, k->node, name, v, &k->err);
}

/* The graph API has no FLOATS setter: make an INTS attribute and retype it. */
void kt_set_floats(kt_node *k, const char *name, int n, const float *v)
{
    int64_t dummy[16] = {0};
    graft_node_set_ints(k->g, k->node, name, n < 16 ? n : 16, dummy, &k->err);
    graft_attr *a = (graft_attr *)graft_node_attr(&k->g->nodes[k->node], name);
    a->type = GRAFT_ATTR_FLOATS;
    a->ints = NULL;
    a->floats = graft_graph_alloc(k->g, (size_t)(n ? n : 1) * sizeof *v);
    memcpy(a->floats, v, (size_t)n * sizeof *v);
    a->n = n;
}

graft_tensor *kt_set_input(kt_node *k, int i, int rank, const int64_t *dims, uint64_t *rng)
{
    graft_tensor *t = NULL;
    if (graft_tensor_create(GRAFT_FLOAT, rank, dims, &t, &k->err) != GRAFT_OK)
        return NULL;
    if (rng)
        kt_fill(graft_tensor_f32(t), graft_tensor_nelem(t), rng);
    kt_set_input_tensor(k, i, t);
    return t;
}

graft_tensor *kt_set_input_shape(kt_node *k, int i, graft_dtype dt, int rank, const int64_t *dims)
{
    graft_tensor *t = calloc(1, sizeof *t);
    t->dtype = dt;
    t->rank = rank;
    for (int d = 0; d < rank && d < GRAFT_MAX_RANK; d++)
        t->dims[d] = dims[d];
    kt_set_input_tensor(k, i, t);
    return t;
}

void kt_set_input_tensor(kt_node *k, int i, graft_tensor *t)
{
    graft_tensor_destroy(k->in[i]);
    k->in[i] = t;
}

graft_status kt_parse(kt_node *k)
{
    if (!k->def)
        return graft_error_set(&k->err, GRAFT_ERR_UNSUPPORTED, "op not in the table");
    free(k->params);
    k->params = calloc(1, k->def->params_size ? k->def->params_size : 1);
    if (!k->def->parse)
        return GRAFT_OK;
    return k->def->parse(k->g, &k->g->nodes[k->node], k->params, &k->err);
}

static void make_call(kt_node *k, graft_op_call *c)
{
    memset(c, 0, sizeof *c);
    c->graph = k->g;
    c->node = &k->g->nodes[k->node];
    c->params = k->params;
    c->n_in = k->n_in;
    c->n_out = k->n_out;
    c->in = k->in;
    c->out = k->out;
    c->ctx = &k->ctx;
    c->err = &k->err;
}

graft_status kt_infer(kt_node *k)
{
    graft_op_call c;
    for (int i = 0; i < k->n_out; i++) {
        graft_tensor_destroy(k->out[i]);
        k->out[i] = calloc(1, sizeof(graft_tensor));
    }
    make_call(k, &c);
    graft_status st = k->def->infer(&c);
    if (st != GRAFT_OK)
        return st;
    for (int i = 0; i < k->n_out; i++) {
        graft_tensor *s = k->out[i], *t = NULL;
        if (s->rank < 0)
            continue;
        for (int d = 0; d < s->rank; d++)
            if (s->dims[d] < 0)
                return GRAFT_OK; /* symbolic: shape-only */
        if (graft_tensor_create(s->dtype, s->rank, s->dims, &t, &k->err) != GRAFT_OK)
            return GRAFT_ERR_NOMEM;
        free(s);
        k->out[i] = t;
    }
    return GRAFT_OK;
}

graft_status kt_forward(kt_node *k)
{
    graft_op_call c;
    make_call(k, &c);
    return k->def->forward(&c);
}

graft_status kt_backward(kt_node *k, graft_tensor *const *d_out, graft_tensor *const *d_in)
{
    graft_op_call c;
    graft_tensor *state = NULL;
    make_call(k, &c);
    c.d_out = d_out;
    c.d_in = d_in;
    c.state = &state;
    return k->def->backward(&c);
}

uint64_t kt_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

double kt_uniform(uint64_t *s)
{
    return (double)(kt_rand(s) >> 11) / 9007199254740992.0;
}

int kt_randint(uint64_t *s, int lo, int hi)
{
    return lo + (int)(kt_rand(s) % (uint64_t)(hi - lo + 1));
}

void kt_fill(float *x, int64_t n, uint64_t *rng)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(2.0 * kt_uniform(rng) - 1.0);
}

double kt_close(const float *a, const float *b, int64_t n, double atol, double rtol)
{
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / (atol + rtol * fabs((double)b[i]));
        if (!(d <= worst)) /* NaN counts as worst */
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

static double weighted_loss(kt_node *k, const float *r)
{
    double s = 0.0;
    const graft_tensor *y = k->out[0];
    int64_t n = graft_tensor_nelem(y);
    const float *yv = graft_tensor_f32(y);
    for (int64_t i = 0; i < n; i++)
        s += (double)r[i] * (double)yv[i];
    return s;
}

int kt_grad_check(kt_node *k, int wrt, double eps, double atol, double rtol, int max_points,
                  uint64_t *rng)
{
    if (kt_forward(k) != GRAFT_OK) {
        printf("grad_check: forward failed: %s\n", k->err.msg);
        return 1;
    }
    graft_tensor *r = NULL, *g = NULL;
    graft_tensor_create(GRAFT_FLOAT, k->out[0]->rank, k->out[0]->dims, &r, NULL);
    kt_fill(graft_tensor_f32(r), graft_tensor_nelem(r), rng);
    graft_tensor_create(GRAFT_FLOAT, k->in[wrt]->rank, k->in[wrt]->dims, &g, NULL);
    /* a non-zero start proves accumulation (+=) */
    float *gv = graft_tensor_f32(g);
    int64_t n = graft_tensor_nelem(g);
    for (int64_t i = 0; i < n; i++)
        gv[i] = 0.25f;
    graft_tensor *d_out[KT_MAX_IO] = {r};
    graft_tensor *d_in[KT_MAX_IO] = {0};
    d_in[wrt] = g;
    int bad = 0;
    if (kt_backward(k, d_out, d_in) != GRAFT_OK) {
        printf("grad_check: backward failed: %s\n", k->err.msg);
        bad = 1;
        goto done;
    }
    float *x = graft_tensor_f32(k->in[wrt]);
    const float *rv = graft_tensor_f32(r);
    int points = n < max_points ? (int)n : max_points;
    for (int p = 0; p < points; p++) {
        int64_t i = n <= max_points ? p : (int64_t)(kt_rand(rng) % (uint64_t)n);
        float x0 = x[i];
        x[i] = (float)(x0 + eps);
        double hi_eps = (double)x[i] - x0;
        kt_forward(k);
        double lp = weighted_loss(k, rv);
        x[i] = (float)(x0 - eps);
        double lo_eps = x0 - (double)x[i];
        kt_forward(k);
        double lm = weighted_loss(k, rv);
        x[i] = x0;
        double num = (lp - lm) / (hi_eps + lo_eps);
        double ana = (double)gv[i] - 0.25;
        if (fabs(num - ana) > atol + rtol * fabs(num)) {
            if (bad < 5)
                printf("grad_check input %d elem %lld: numeric %.6g analytic %.6g\n", wrt,
                       (long long)i, num, ana);
            bad++;
        }
    }
    kt_forward(k);
done:
    graft_tensor_destroy(r);
    graft_tensor_destroy(g);
    return bad;
}

/* ---- a minimal protobuf reader for the ONNX node test data ---- */

typedef struct pb {
    const uint8_t *p, *end;
} pb;

static int pb_varint(pb *b, uint64_t *v)
{
    uint64_t r = 0;
    for (int s = 0; s < 64 && b->p < b->end; s += 7) {
        uint8_t c = *b->p++;
        r |= (uint64_t)(c & 0x7f) << s;
        if (!(c & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Next field: number, wire type, and for wire type 2 the sub-buffer; for 0
 * the value; for 1/5 the raw bytes in sub. */
static int pb_next(pb *b, int *field, int *wt, uint64_t *v, pb *sub)
{
    uint64_t key;
    if (b->p >= b->end || pb_varint(b, &key))
        return -1;
    *field = (int)(key >> 3);
    *wt = (int)(key & 7);
    switch (*wt) {
    case 0:
        return pb_varint(b, v);
    case 1:
    case 5: {
        size_t n = *wt == 1 ? 8 : 4;
        if ((size_t)(b->end - b->p) < n)
            return -1;
        sub->p = b->p;
        sub->end = b->p + n;
        b->p += n;
        return 0;
    }
    case 2: {
        uint64_t n;
        if (pb_varint(b, &n) || n > (uint64_t)(b->end - b->p))
            return -1;
        sub->p = b->p;
        sub->end = b->p + n;
        b->p += n;
        return 0;
    }
    default:
        return -1;
    }
}

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static graft_tensor *parse_tensor(pb b)
{
    int64_t dims[GRAFT_MAX_RANK];
    int rank = 0, dtype = 0, field, wt;
    uint64_t v = 0;
    pb sub, raw = {0}, fdata = {0}, idata = {0}, ddata = {0}, i32data = {0};
    int n_fdata = 0, n_idata = 0;
    float fbuf1 = 0;
    int64_t ibuf1 = 0;
    while (pb_next(&b, &field, &wt, &v, &sub) == 0) {
        if (field == 1) {
            if (wt == 0) {
                dims[rank++] = (int64_t)v;
            } else {
                while (sub.p < sub.end && pb_varint(&sub, &v) == 0)
                    dims[rank++] = (int64_t)v;
            }
        } else if (field == 2) {
            dtype = (int)v;
        } else if (field == 9) {
            raw = sub;
        } else if (field == 4) {
            if (wt == 5) {
                memcpy(&fbuf1, sub.p, 4);
                n_fdata = 1;
            } else {
                fdata = sub;
            }
        } else if (field == 7) {
            if (wt == 0) {
                ibuf1 = (int64_t)v;
                n_idata = 1;
            } else {
                idata = sub;
            }
        } else if (field == 10) {
            ddata = sub;
        } else if (field == 5) {
            i32data = sub;
        }
    }
    bool is_int = dtype == GRAFT_INT64 || dtype == GRAFT_INT32 || dtype == GRAFT_UINT8 ||
                  dtype == GRAFT_INT8 || dtype == GRAFT_BOOL;
    graft_tensor *t = NULL;
    if (graft_tensor_create(is_int ? GRAFT_INT64 : GRAFT_FLOAT, rank, dims, &t, NULL) != GRAFT_OK)
        return NULL;
    int64_t n = graft_tensor_nelem(t);
    for (int64_t i = 0; i < n; i++) {
        double x = 0;
        if (raw.p) {
            const uint8_t *q = raw.p;
            switch (dtype) {
            case GRAFT_FLOAT: { float f; memcpy(&f, q + 4 * i, 4); x = f; break; }
            case GRAFT_DOUBLE: { double d; memcpy(&d, q + 8 * i, 8); x = d; break; }
            case GRAFT_INT64: { int64_t d; memcpy(&d, q + 8 * i, 8); x = (double)d; break; }
            case GRAFT_INT32: { int32_t d; memcpy(&d, q + 4 * i, 4); x = d; break; }
            case GRAFT_UINT8: case GRAFT_BOOL: x = q[i]; break;
            case GRAFT_INT8: x = (int8_t)q[i]; break;
            case GRAFT_FLOAT16: { uint16_t h; memcpy(&h, q + 2 * i, 2); x = graft_fp16_to_f32(h); break; }
            default: break;
            }
        } else if (fdata.p) {
            float f;
            memcpy(&f, fdata.p + 4 * i, 4);
            x = f;
        } else if (n_fdata) {
            x = fbuf1;
        } else if (ddata.p) {
            double d;
            memcpy(&d, ddata.p + 8 * i, 8);
            x = d;
        } else if (idata.p || n_idata) {
            if (n_idata) {
                x = (double)ibuf1;
            } else {
                uint64_t u = 0;
                pb_varint(&idata, &u);
                x = (double)(int64_t)u;
            }
        } else if (i32data.p) {
            uint64_t u = 0;
            pb_varint(&i32data, &u);
            x = (double)(int32_t)u;
        }
        if (is_int)
            graft_tensor_i64(t)[i] = (int64_t)x;
        else
            graft_tensor_f32(t)[i] = (float)x;
    }
    return t;
}

graft_tensor *kt_read_tensor_pb(const char *path)
{
    size_t size;
    uint8_t *buf = read_file(path, &size);
    if (!buf)
        return NULL;
    pb b = {buf, buf + size};
    graft_tensor *t = parse_tensor(b);
    free(buf);
    return t;
}

static char *pb_str(pb s, char *buf, size_t size)
{
    size_t n = (size_t)(s.end - s.p);
    if (n >= size)
        n = size - 1;
    memcpy(buf, s.p, n);
    buf[n] = 0;
    return buf;
}

static void apply_attr(kt_node *k, pb b)
{
    char name[128] = "", sval[128] = "";
    int field, wt, type = 0, n_ints = 0, n_floats = 0;
    uint64_t v = 0;
    pb sub;
    int64_t ival = 0, ints[64];
    float fval = 0, floats[64];
    bool has_s = false;
    while (pb_next(&b, &field, &wt, &v, &sub) == 0) {
        switch (field) {
        case 1: pb_str(sub, name, sizeof name); break;
        case 2: memcpy(&fval, sub.p, 4); break;
        case 3: ival = (int64_t)v; break;
        case 4: pb_str(sub, sval, sizeof sval); has_s = true; break;
        case 7:
            if (wt == 5) {
                memcpy(&floats[n_floats++], sub.p, 4);
            } else {
                for (; sub.p + 4 <= sub.end && n_floats < 64; sub.p += 4)
                    memcpy(&floats[n_floats++], sub.p, 4);
            }
            break;
        case 8:
            if (wt == 0) {
                ints[n_ints++] = (int64_t)v;
            } else {
                while (sub.p < sub.end && n_ints < 64 && pb_varint(&sub, &v) == 0)
                    ints[n_ints++] = (int64_t)v;
            }
            break;
        case 20: type = (int)v; break;
        default: break;
        }
    }
    (void)has_s;
    switch (type) {
    case GRAFT_ATTR_FLOAT: kt_set_float(k, name, fval); break;
    case GRAFT_ATTR_INT: kt_set_int(k, name, ival); break;
    case GRAFT_ATTR_STRING: kt_set_string(k, name, sval); break;
    case GRAFT_ATTR_FLOATS: kt_set_floats(k, name, n_floats, floats); break;
    case GRAFT_ATTR_INTS: kt_set_ints(k, name, n_ints, ints); break;
    default: break;
    }
}

kt_node *kt_onnx_case(const char *dir, graft_tensor **expected, int *n_expected)
{
    char path[1024], op_type[64] = "", domain[64] = "", s[256];
    size_t size;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    uint8_t *buf = read_file(path, &size);
    if (!buf)
        return NULL;
    pb m = {buf, buf + size}, sub, graph = {0}, node = {0};
    int field, wt, opset = 0;
    uint64_t v = 0;
    char graph_inputs[KT_MAX_IO][64];
    int n_graph_inputs = 0;
    while (pb_next(&m, &field, &wt, &v, &sub) == 0) {
        if (field == 7) {
            graph = sub;
        } else if (field == 8) { /* opset_import */
            char dom[64] = "";
            int64_t ver = 0;
            pb o = sub, f;
            while (pb_next(&o, &field, &wt, &v, &f) == 0) {
                if (field == 1)
                    pb_str(f, dom, sizeof dom);
                else if (field == 2)
                    ver = (int64_t)v;
            }
            if (!*dom || strcmp(dom, "ai.onnx") == 0)
                opset = (int)ver;
        }
    }
    pb gb = graph;
    while (pb_next(&gb, &field, &wt, &v, &sub) == 0) {
        if (field == 1 && !node.p) {
            node = sub;
        } else if (field == 11 && n_graph_inputs < KT_MAX_IO) {
            pb vi = sub, f;
            while (pb_next(&vi, &field, &wt, &v, &f) == 0)
                if (field == 1)
                    pb_str(f, graph_inputs[n_graph_inputs++], 64);
        }
    }
    char node_in[KT_MAX_IO][64];
    int n_node_in = 0, n_node_out = 0;
    pb nb = node;
    while (pb_next(&nb, &field, &wt, &v, &sub) == 0) {
        if (field == 1 && n_node_in < KT_MAX_IO)
            pb_str(sub, node_in[n_node_in++], 64);
        else if (field == 2)
            n_node_out++;
        else if (field == 4)
            pb_str(sub, op_type, sizeof op_type);
        else if (field == 7)
            pb_str(sub, domain, sizeof domain);
    }
    kt_node *k = kt_node_new(op_type, domain, opset, n_node_in, n_node_out);
    if (!k) {
        free(buf);
        return NULL;
    }
    nb = node;
    while (pb_next(&nb, &field, &wt, &v, &sub) == 0)
        if (field == 5)
            apply_attr(k, sub);
    free(buf);
    for (int i = 0; i < n_node_in; i++) {
        if (!node_in[i][0])
            continue;
        for (int j = 0; j < n_graph_inputs; j++) {
            if (strcmp(node_in[i], graph_inputs[j]) != 0)
                continue;
            snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dir, j);
            graft_tensor *t = kt_read_tensor_pb(path);
            if (!t) {
                kt_node_free(k);
                return NULL;
            }
            kt_set_input_tensor(k, i, t);
        }
    }
    *n_expected = n_node_out;
    for (int i = 0; i < n_node_out; i++) {
        snprintf(path, sizeof path, "%s/test_data_set_0/output_%d.pb", dir, i);
        expected[i] = kt_read_tensor_pb(path);
    }
    (void)s;
    return k;
}

static void run_onnx_dir(const char *dir)
{
    graft_tensor *exp[KT_MAX_IO] = {0};
    int n_exp = 0;
    kt_node *k = kt_onnx_case(dir, exp, &n_exp);
    assert_non_null(k);
    assert_int_equal(kt_parse(k), GRAFT_OK);
    graft_status st = kt_infer(k);
    if (st != GRAFT_OK)
        printf("%s: %s\n", dir, k->err.msg);
    assert_int_equal(st, GRAFT_OK);
    assert_int_equal(kt_forward(k), GRAFT_OK);
    for (int i = 0; i < n_exp; i++) {
        if (!exp[i] || !k->out[i])
            continue;
        assert_int_equal(k->out[i]->rank, exp[i]->rank);
        for (int d = 0; d < exp[i]->rank; d++)
            assert_int_equal(k->out[i]->dims[d], exp[i]->dims[d]);
        int64_t n = graft_tensor_nelem(exp[i]);
        if (exp[i]->dtype == GRAFT_INT64) {
            assert_memory_equal(k->out[i]->data, exp[i]->data, (size_t)n * 8);
        } else {
            double e = kt_close(graft_tensor_f32(k->out[i]), graft_tensor_f32(exp[i]), n, 1e-5, 1e-4);
            if (e > 1.0)
                printf("%s: output %d off by %g tolerances\n", dir, i, e);
            assert_true(e <= 1.0);
        }
        graft_tensor_destroy(exp[i]);
    }
    kt_node_free(k);
}

/* Runs every ONNX node test whose directory starts with one of prefixes
 * (skipping names containing skip) and returns how many ran. */
int kt_run_onnx_tests(const char *const *prefixes, int n_prefixes, const char *skip)
{
    const char *root = "/usr/share/libonnx-testdata/data/node";
    DIR *d = opendir(root);
    if (!d)
        return 0;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        bool match = false;
        for (int i = 0; i < n_prefixes; i++)
            match |= strncmp(e->d_name, prefixes[i], strlen(prefixes[i])) == 0;
        if (!match || (skip && strstr(e->d_name, skip)))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", root, e->d_name);
        run_onnx_dir(path);
        count++;
    }
    closedir(d);
    return count;
}

