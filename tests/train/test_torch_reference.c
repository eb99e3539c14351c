/* tests/train/test_torch_reference.c - acceptance: the head's loss, the
 * gradient of every parameter, and two SGD-momentum and two Adam steps
 * (with L1/L2 penalties) agree with PyTorch on a fixed batch. The reference
 * is tests/train/torch_reference.txt, written by make_torch_reference.py.
 *
 * The head runs through graft's real path: a graft graph (built by hand, and
 * again by graft_surgery_cut_and_attach on an input-only graph), a training
 * plan, softmax cross-entropy, graft_plan_backward, the penalty gradients
 * and the optimizer of src/train (graft__trainer, as graft_train_fit uses). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/train_internal.h"

#define MAX_ENTRIES 64

typedef struct entry {
    char name[64];
    int n;
    float *v;
} entry;

static entry ref[MAX_ENTRIES];
static int n_ref;

static int load_reference(void **state)
{
    (void)state;
    const char *src = getenv("GRAFT_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/train/torch_reference.txt", src ? src : ".");
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    char name[64];
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (c == '#') {
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
            continue;
        }
        if (c == '\n' || c == ' ')
            continue;
        ungetc(c, f);
        entry *e = &ref[n_ref];
        if (n_ref == MAX_ENTRIES || fscanf(f, "%63s %d", name, &e->n) != 2)
            break;
        snprintf(e->name, sizeof e->name, "%s", name);
        e->v = malloc(sizeof(float) * (size_t)e->n);
        for (int i = 0; i < e->n; i++)
            if (fscanf(f, "%f", &e->v[i]) != 1)
                return -1;
        n_ref++;
    }
    fclose(f);
    return n_ref > 10 ? 0 : -1;
}

static int free_reference(void **state)
{
    (void)state;
    for (int i = 0; i < n_ref; i++)
        free(ref[i].v);
    return 0;
}

static const entry *get(const char *name)
{
    for (int i = 0; i < n_ref; i++)
        if (!strcmp(ref[i].name, name))
            return &ref[i];
    fail_msg("reference has no '%s'", name);
    return NULL;
}

/* |a - b| <= 1e-5 * max(|b|, rms(ref)): relative, with the tensor's own
 * scale as the floor for entries that are near zero by cancellation. */
static void expect_close(const char *what, const float *got, const entry *want)
{
    double rms = 0;
    for (int i = 0; i < want->n; i++)
        rms += (double)want->v[i] * want->v[i];
    rms = sqrt(rms / want->n);
    for (int i = 0; i < want->n; i++) {
        double b = want->v[i], tol = 1e-5 * fmax(fabs(b), rms);
        if (!(fabs(got[i] - b) <= tol))
            fail_msg("%s[%d]: graft %.9g, torch %.9g (tolerance %.3g)", what, i, (double)got[i],
                     b, tol);
    }
}

typedef struct head {
    graft_graph *g;
    int32_t feed, logits;
    int32_t p[4]; /* W1, b1, W2, b2 */
    bool transposed[2]; /* W stored as [in,out] (transB = 0) */
} head;

static const char *pnames[4] = {"W1", "b1", "W2", "b2"};

static void set_param(head *h, int k, const float *torch_layout)
{
    graft_tensor *t = h->g->values[h->p[k]].data;
    float *w = graft_tensor_f32(t);
    if (k % 2 == 0 && h->transposed[k / 2]) {
        int64_t in = t->dims[0], out = t->dims[1];
        for (int64_t o = 0; o < out; o++)
            for (int64_t i = 0; i < in; i++)
                w[i * out + o] = torch_layout[o * in + i];
    } else {
        memcpy(w, torch_layout, sizeof(float) * (size_t)graft_tensor_nelem(t));
    }
}

/* The parameter (or its gradient in trainer layout) back in torch's layout. */
static void torch_layout(const head *h, int k, const float *src, float *dst)
{
    const graft_tensor *t = h->g->values[h->p[k]].data;
    if (k % 2 == 0 && h->transposed[k / 2]) {
        int64_t in = t->dims[0], out = t->dims[1];
        for (int64_t o = 0; o < out; o++)
            for (int64_t i = 0; i < in; i++)
                dst[o * in + i] = src[i * out + o];
    } else {
        memcpy(dst, src, sizeof(float) * (size_t)graft_tensor_nelem(t));
    }
}

static int32_t add_init(graft_graph *g, const char *name, int rank, const int64_t *dims)
{
    graft_error err = {0};
    int32_t v = graft_graph_add_value(g, name, &err);
    assert_true(v >= 0);
    graft_tensor *t = NULL;
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, rank, dims, &t, &err), GRAFT_OK);
    graft_value *val = &g->values[v];
    val->kind = GRAFT_VALUE_INITIALIZER;
    val->dtype = GRAFT_FLOAT;
    val->rank = rank;
    memcpy(val->dims, dims, sizeof(int64_t) * (size_t)rank);
    val->trainable = val->needs_grad = true;
    graft_value_set_data(g, v, t);
    return v;
}

static int32_t add_act(graft_graph *g, const char *name)
{
    graft_error err = {0};
    int32_t v = graft_graph_add_value(g, name, &err);
    assert_true(v >= 0);
    g->values[v].dtype = GRAFT_FLOAT;
    g->values[v].rank = -1;
    return v;
}

static graft_graph *input_only_graph(int64_t F, int32_t *x)
{
    graft_graph *g = NULL;
    graft_error err = {0};
    assert_int_equal(graft_graph_create(&g, &err), GRAFT_OK);
    *x = graft_graph_add_value(g, "features", &err);
    graft_value *xv = &g->values[*x];
    xv->kind = GRAFT_VALUE_INPUT;
    xv->dtype = GRAFT_FLOAT;
    xv->rank = 2;
    xv->dims[0] = -1;
    xv->dims[1] = F;
    xv->has_value_info = true;
    g->n_inputs = 1;
    g->inputs = malloc(sizeof *g->inputs);
    g->inputs[0] = *x;
    return g;
}

/* Gemm(transB=1) -> Relu -> Gemm(transB=1) -> Softmax, weights as torch stores them. */
static void build_by_hand(head *h, int64_t F, int64_t H, int64_t K)
{
    graft_error err = {0};
    memset(h, 0, sizeof *h);
    h->g = input_only_graph(F, &h->feed);
    graft_graph *g = h->g;
    g->ir_version = 8;
    g->n_opsets = 1;
    g->opsets = malloc(sizeof *g->opsets);
    g->opsets[0].domain = graft_graph_strdup(g, "");
    g->opsets[0].version = 13;
    int64_t w1d[2] = {H, F}, b1d[1] = {H}, w2d[2] = {K, H}, b2d[1] = {K};
    h->p[0] = add_init(g, "W1", 2, w1d);
    h->p[1] = add_init(g, "b1", 1, b1d);
    h->p[2] = add_init(g, "W2", 2, w2d);
    h->p[3] = add_init(g, "b2", 1, b2d);
    int32_t h1 = add_act(g, "h1"), h2 = add_act(g, "h2");
    h->logits = add_act(g, "logits");
    int32_t probs = add_act(g, "probs");
    int32_t in1[3] = {h->feed, h->p[0], h->p[1]};
    int32_t n1 = graft_graph_add_node(g, "Gemm", "", "fc1", 3, in1, 1, &h1, &err);
    assert_true(n1 >= 0);
    assert_int_equal(graft_node_set_int(g, n1, "transB", 1, &err), GRAFT_OK);
    assert_true(graft_graph_add_node(g, "Relu", "", "relu", 1, &h1, 1, &h2, &err) >= 0);
    int32_t in2[3] = {h2, h->p[2], h->p[3]};
    int32_t n2 = graft_graph_add_node(g, "Gemm", "", "fc2", 3, in2, 1, &h->logits, &err);
    assert_true(n2 >= 0);
    assert_int_equal(graft_node_set_int(g, n2, "transB", 1, &err), GRAFT_OK);
    assert_true(graft_graph_add_node(g, "Softmax", "", "softmax", 1, &h->logits, 1, &probs,
                                     &err) >= 0);
    g->values[probs].is_graph_output = true;
    g->n_outputs = 1;
    g->outputs = malloc(sizeof *g->outputs);
    g->outputs[0] = probs;
}

/* The same head from the surgery pass: hidden layer 12, no dropout. */
static void build_by_surgery(head *h, int64_t F, int64_t H, int64_t K)
{
    graft_error err = {0};
    memset(h, 0, sizeof *h);
    h->g = input_only_graph(F, &h->feed);
    graft_head_spec hs = graft_head_spec_default();
    hs.n_classes = (int)K;
    hs.hidden = (int)H;
    hs.dropout = 0;
    graft_head_info hi;
    graft_status st = graft_surgery_cut_and_attach(h->g, h->feed, &hs, &hi, &err);
    if (st)
        fail_msg("cut_and_attach: %s", err.msg);
    assert_int_equal(graft_surgery_freeze(h->g, &hi, &err), GRAFT_OK);
    h->feed = hi.features;
    h->logits = hi.logits;
    /* The Gemms in graph order: the first is the hidden layer. */
    int found = 0;
    for (int32_t n = 0; n < h->g->n_nodes && found < 2; n++) {
        const graft_node *nd = &h->g->nodes[n];
        if (nd->removed || strcmp(nd->op_type, "Gemm"))
            continue;
        assert_int_equal(graft_node_attr_int(nd, "transA", 0), 0);
        h->transposed[found] = graft_node_attr_int(nd, "transB", 0) == 0;
        h->p[2 * found] = nd->inputs[1];
        h->p[2 * found + 1] = nd->inputs[2];
        found++;
    }
    assert_int_equal(found, 2);
    int n_trainable = 0;
    for (int32_t v = 0; v < h->g->n_values; v++)
        n_trainable += h->g->values[v].trainable;
    assert_int_equal(n_trainable, 4);
}

static graft__param *param_of(graft__trainer *tr, int32_t value)
{
    for (int i = 0; i < tr->n_params; i++)
        if (tr->params[i].value == value)
            return &tr->params[i];
    fail_msg("value %d is not a trainable parameter", value);
    return NULL;
}

static void check_against_torch(head *h)
{
    const entry *cfg = get("config");
    int64_t N = (int64_t)cfg->v[0], F = (int64_t)cfg->v[1];
    const entry *X = get("X"), *Y = get("Y");
    int32_t labels[64];
    for (int64_t i = 0; i < N; i++)
        labels[i] = (int32_t)Y->v[i];
    graft_error err = {0};
    graft_tensor *x = NULL;
    int64_t xd[2] = {N, F};
    assert_int_equal(graft_tensor_attach(GRAFT_FLOAT, 2, xd, X->v, &x, &err), GRAFT_OK);
    float buf[4096];

    for (int opt = 0; opt < 2; opt++) {
        for (int k = 0; k < 4; k++)
            set_param(h, k, get(pnames[k])->v);
        graft_train_config tc = graft_train_config_default();
        tc.l1 = cfg->v[4];
        tc.l2 = cfg->v[5];
        tc.seed = 1;
        if (opt == 0) {
            tc.optimizer = GRAFT_OPT_SGD;
            tc.lr = cfg->v[6];
            tc.momentum = cfg->v[7];
        } else {
            tc.optimizer = GRAFT_OPT_ADAM;
            tc.lr = cfg->v[8];
            tc.beta1 = cfg->v[9];
            tc.beta2 = cfg->v[10];
            tc.eps = cfg->v[11];
        }
        graft__trainer tr;
        graft_shape fs = {2, {N, F}};
        if (graft__trainer_init(&tr, h->g, h->feed, h->logits, &fs, &tc, &err))
            fail_msg("trainer: %s", err.msg);
        assert_int_equal(tr.n_params, 4);
        for (int step = 1; step <= 2; step++) {
            double loss = 0;
            int64_t correct = 0;
            if (graft__trainer_grad(&tr, x, labels, N, &loss, &correct, &err))
                fail_msg("step: %s", err.msg);
            if (step == 1) {
                /* loss and gradients at the initial weights */
                float ce = (float)(loss / (double)N);
                entry ce_ref = *get("ce");
                expect_close("cross-entropy", &ce, &ce_ref);
                for (int k = 0; k < 4; k++) {
                    char name[32];
                    snprintf(name, sizeof name, "grad_%s", pnames[k]);
                    torch_layout(h, k, param_of(&tr, h->p[k])->grad, buf);
                    expect_close(name, buf, get(name));
                }
            }
            graft__trainer_update(&tr);
            for (int k = 0; k < 4; k++) {
                char name[32];
                snprintf(name, sizeof name, "%s%d_%s", opt == 0 ? "sgd" : "adam", step,
                         pnames[k]);
                torch_layout(h, k, graft_tensor_f32(h->g->values[h->p[k]].data), buf);
                expect_close(name, buf, get(name));
            }
        }
        graft__trainer_fini(&tr);
    }
    graft_tensor_destroy(x);
}

static void test_hand_built_head(void **state)
{
    (void)state;
    const entry *cfg = get("config");
    head h;
    build_by_hand(&h, (int64_t)cfg->v[1], (int64_t)cfg->v[2], (int64_t)cfg->v[3]);
    check_against_torch(&h);
    graft_graph_destroy(h.g);
}

static void test_surgery_head(void **state)
{
    (void)state;
    const entry *cfg = get("config");
    head h;
    build_by_surgery(&h, (int64_t)cfg->v[1], (int64_t)cfg->v[2], (int64_t)cfg->v[3]);
    check_against_torch(&h);
    graft_graph_destroy(h.g);
}

/* Central finite differences of the whole objective (mean cross-entropy
 * through the inference plan + the penalties, summed here in double)
 * against the gradients of graft__trainer_grad, for every parameter entry. */
static double objective(graft__trainer *tr, head *h, const graft_tensor *x, const int32_t *labels,
                        int64_t n)
{
    graft_error err = {0};
    double loss = 0;
    int64_t correct = 0;
    if (graft__trainer_eval(tr, x, labels, n, &loss, &correct, &err))
        fail_msg("eval: %s", err.msg);
    double pen = 0;
    for (int k = 0; k < 4; k += 2) {
        const graft_tensor *t = h->g->values[h->p[k]].data;
        const float *w = graft_tensor_f32(t);
        for (int64_t i = 0; i < graft_tensor_nelem(t); i++)
            pen += tr->opt.l1 * fabs((double)w[i]) + tr->opt.l2 * (double)w[i] * w[i];
    }
    return loss / (double)n + pen;
}

static void test_finite_differences(void **state)
{
    (void)state;
    const entry *cfg = get("config");
    int64_t N = (int64_t)cfg->v[0], F = (int64_t)cfg->v[1];
    head h;
    build_by_hand(&h, F, (int64_t)cfg->v[2], (int64_t)cfg->v[3]);
    for (int k = 0; k < 4; k++)
        set_param(&h, k, get(pnames[k])->v);
    const entry *X = get("X"), *Y = get("Y");
    int32_t labels[64];
    for (int64_t i = 0; i < N; i++)
        labels[i] = (int32_t)Y->v[i];
    graft_error err = {0};
    graft_tensor *x = NULL;
    int64_t xd[2] = {N, F};
    assert_int_equal(graft_tensor_attach(GRAFT_FLOAT, 2, xd, X->v, &x, &err), GRAFT_OK);
    graft_train_config tc = graft_train_config_default();
    tc.l1 = cfg->v[4];
    tc.l2 = cfg->v[5];
    graft__trainer tr;
    graft_shape fs = {2, {N, F}};
    assert_int_equal(graft__trainer_init(&tr, h.g, h.feed, h.logits, &fs, &tc, &err), GRAFT_OK);
    double loss = 0;
    int64_t correct = 0;
    assert_int_equal(graft__trainer_grad(&tr, x, labels, N, &loss, &correct, &err), GRAFT_OK);
    const float hstep = 1e-3f;
    int checked = 0;
    for (int k = 0; k < 4; k++) {
        graft__param *pa = param_of(&tr, h.p[k]);
        for (int64_t i = 0; i < pa->nelem; i++) {
            float save = pa->w[i];
            /* |w| has a kink at 0: a difference across it measures nothing */
            if (pa->penalize && fabsf(save) <= 2 * hstep)
                continue;
            pa->w[i] = save + hstep;
            double up = objective(&tr, &h, x, labels, N);
            pa->w[i] = save - hstep;
            double down = objective(&tr, &h, x, labels, N);
            pa->w[i] = save;
            double fd = (up - down) / (2.0 * (double)hstep);
            double g = pa->grad[i];
            if (!(fabs(fd - g) <= 3e-4 + 1e-2 * fabs(g)))
                fail_msg("%s[%lld]: backward %.6g, finite difference %.6g", pnames[k],
                         (long long)i, g, fd);
            checked++;
        }
    }
    assert_true(checked >= 192 + 12 + 60 + 5 - 8);
    graft__trainer_fini(&tr);
    graft_tensor_destroy(x);
    graft_graph_destroy(h.g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_built_head),
        cmocka_unit_test(test_surgery_head),
        cmocka_unit_test(test_finite_differences),
    };
    return cmocka_run_group_tests(tests, load_reference, free_reference);
}
