/* train/trainer.c - one training step of the trainable part of a graph:
 * forward through a training plan from `feed` to `logits`, softmax
 * cross-entropy, backward, gradients of the trainable parameters plus the
 * penalties, and the optimizer update. Plans are built per batch size and
 * kept, since the last batch of an epoch is usually smaller. Also the
 * forward-only runner used for the frozen backbone and for evaluation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/train_internal.h"

/* ---- model input vs preprocessing ---- */

graft_status graft__input_shape(const graft_graph *g, int32_t input, const graft_preprocess *pp,
                                int64_t n, graft_shape *out, graft_error *err)
{
    const graft_value *v = &g->values[input];
    int64_t C = pp->channels, H = pp->height, W = pp->width;
    int64_t want[4] = {n, C, H, W};
    if (pp->nhwc) {
        want[1] = H;
        want[2] = W;
        want[3] = C;
    }
    char have_s[96], want_s[96];
    /* float16/bfloat16/double inputs take the float32 images too: graft
     * computes every floating type in float32; a uint8 input (TensorFlow's
     * image models) takes them rounded to whole 0..255 values */
    if (v->dtype != GRAFT_DTYPE_UNDEFINED && !graft_dtype_is_float(v->dtype) &&
        v->dtype != GRAFT_UINT8)
        return graft_error_set(err, GRAFT_ERR_UNSUPPORTED,
                               "model input '%s' is %s, not a floating type or uint8: it cannot "
                               "take images", v->name, graft_dtype_name(v->dtype));
    if (v->rank == 4 || v->rank < 0) {
        for (int i = 1; i < 4 && v->rank == 4; i++) {
            if (v->dims[i] > 0 && v->dims[i] != want[i]) {
                graft_shape_format(4, v->dims, have_s, sizeof have_s);
                graft_shape_format(4, want, want_s, sizeof want_s);
                return graft_error_set(
                    err, GRAFT_ERR_SHAPE,
                    "%s: model input '%s' is %s (%s) but the preprocessed images are %s: give "
                    "the model's size and channels (--size HxW, --channels 1|3, --nhwc or "
                    "--nchw)",
                    g->source_path ? g->source_path : "model", v->name, have_s,
                    pp->nhwc ? "NHWC" : "NCHW", want_s);
            }
        }
        out->rank = 4;
        memcpy(out->dims, want, sizeof want);
        return GRAFT_OK;
    }
    if (v->rank == 2 && (v->dims[1] < 0 || v->dims[1] == C * H * W)) {
        out->rank = 2;
        out->dims[0] = n;
        out->dims[1] = C * H * W;
        return GRAFT_OK;
    }
    graft_shape_format(v->rank, v->dims, have_s, sizeof have_s);
    graft_shape_format(4, want, want_s, sizeof want_s);
    return graft_error_set(err, GRAFT_ERR_SHAPE,
                           "%s: model input '%s' is %s, which preprocessed images %s cannot feed "
                           "(--size HxW, --channels 1|3, --nhwc or --nchw)",
                           g->source_path ? g->source_path : "model", v->name, have_s, want_s);
}

/* ---- forward-only runner ---- */

static void runner_drop_plans(graft__runner *r)
{
    for (int i = 0; i < r->n_plans; i++)
        graft_plan_destroy(r->plans[i].plan);
    r->n_plans = 0;
}

graft_status graft__runner_init(graft__runner *r, const graft_graph *g, int32_t input,
                                int32_t fetch, bool optimize, int n_threads, graft_error *err)
{
    memset(r, 0, sizeof *r);
    r->g = g;
    r->input = input;
    r->fetch = fetch;
    r->n_threads = n_threads;
    if (input == fetch || !optimize)
        return GRAFT_OK;
    /* The optimized clone is only a speed-up: any failure leaves r on g. */
    graft_error ignored = {0};
    graft_graph *c = NULL;
    if (graft_graph_clone(g, &c, &ignored) != GRAFT_OK)
        return GRAFT_OK;
    int n_rewrites = 0;
    if (graft_passes_optimize_for_inference(c, &n_rewrites, &ignored) != GRAFT_OK) {
        graft_graph_destroy(c);
        return GRAFT_OK;
    }
    r->clone = c;
    (void)err;
    return GRAFT_OK;
}

void graft__runner_fini(graft__runner *r)
{
    runner_drop_plans(r);
    graft_tensor_destroy(r->pixels);
    graft_graph_destroy(r->clone);
    memset(r, 0, sizeof *r);
}

static graft_status runner_plan(graft__runner *r, const graft_tensor *x, graft_plan **out,
                                graft_error *err)
{
    int64_t batch = x->dims[0];
    for (int i = 0; i < r->n_plans; i++)
        if (r->plans[i].batch == batch) {
            *out = r->plans[i].plan;
            return GRAFT_OK;
        }
    if (r->n_plans == (int)(sizeof r->plans / sizeof r->plans[0])) {
        graft_plan_destroy(r->plans[0].plan);
        memmove(r->plans, r->plans + 1, (size_t)(r->n_plans - 1) * sizeof r->plans[0]);
        r->n_plans--;
    }
    graft_plan_options o = graft_plan_options_default();
    o.n_threads = r->n_threads;
    o.feeds = &r->input;
    o.n_feeds = 1;
    o.fetches = &r->fetch;
    o.n_fetches = 1;
    graft_shape s;
    s.rank = x->rank;
    memcpy(s.dims, x->dims, sizeof s.dims);
    graft_plan *p = NULL;
    graft_status st = GRAFT_ERR_INTERNAL;
    if (r->clone) {
        st = graft_plan_create(r->clone, &o, 1, &s, &p, err);
        if (st) {
            /* The rewritten graph is a shortcut, not a requirement. */
            runner_drop_plans(r);
            graft_graph_destroy(r->clone);
            r->clone = NULL;
        }
    }
    if (st)
        st = graft_plan_create(r->g, &o, 1, &s, &p, err);
    if (st)
        return st;
    r->plans[r->n_plans].batch = batch;
    r->plans[r->n_plans].plan = p;
    r->n_plans++;
    *out = p;
    return GRAFT_OK;
}

graft_status graft__runner_run(graft__runner *r, const graft_tensor *x, const graft_tensor **y,
                               graft_error *err)
{
    if (r->input == r->fetch) {
        *y = x;
        return GRAFT_OK;
    }
    graft_plan *p = NULL;
    graft_status st = runner_plan(r, x, &p, err);
    if (st)
        return st;
    if (r->g->values[r->input].dtype == GRAFT_UINT8 && x->dtype == GRAFT_FLOAT) {
        /* nearest whole pixel value, clamped: what a uint8 image holds */
        if (!r->pixels && (st = graft_tensor_create(GRAFT_INT64, x->rank, x->dims, &r->pixels, err)))
            return st;
        if ((st = graft_tensor_reshape(r->pixels, GRAFT_INT64, x->rank, x->dims, err)))
            return st;
        const float *src = graft_tensor_f32(x);
        int64_t *dst = graft_tensor_i64(r->pixels), n = graft_tensor_nelem(x);
        for (int64_t i = 0; i < n; i++) {
            float v = src[i] != src[i] ? 0.0f : src[i] < 0 ? 0.0f : src[i] > 255 ? 255.0f : src[i];
            dst[i] = (int64_t)lrintf(v);
        }
        x = r->pixels;
    }
    if ((st = graft_plan_run(p, &x, err)))
        return st;
    *y = graft_plan_output(p, 0);
    return GRAFT_OK;
}

/* ---- trainer ---- */

graft_status graft__trainer_init(graft__trainer *tr, graft_graph *g, int32_t feed, int32_t logits,
                                 const graft_shape *feed_shape, const graft_train_config *cfg,
                                 graft_error *err)
{
    memset(tr, 0, sizeof *tr);
    tr->g = g;
    tr->feed = feed;
    tr->logits = logits;
    tr->feed_shape = *feed_shape;
    tr->n_threads = cfg->n_threads;
    tr->seed = cfg->seed;
    tr->opt.kind = cfg->optimizer;
    tr->opt.lr = cfg->lr;
    tr->opt.momentum = cfg->momentum;
    tr->opt.beta1 = cfg->beta1;
    tr->opt.beta2 = cfg->beta2;
    tr->opt.eps = cfg->eps;
    tr->opt.l1 = cfg->l1;
    tr->opt.l2 = cfg->l2;
    int n = 0;
    for (int32_t v = 0; v < g->n_values; v++) {
        const graft_value *val = &g->values[v];
        n += val->kind == GRAFT_VALUE_INITIALIZER && val->trainable && val->data &&
             val->data->dtype == GRAFT_FLOAT;
    }
    if (n == 0)
        return graft_error_set(err, GRAFT_ERR_ARG,
                               "%s: nothing to train (no trainable parameters; was the head "
                               "attached and the backbone frozen?)",
                               g->source_path ? g->source_path : "model");
    tr->params = calloc((size_t)n, sizeof *tr->params);
    if (!tr->params)
        goto nomem;
    for (int32_t v = 0; v < g->n_values; v++) {
        const graft_value *val = &g->values[v];
        if (!(val->kind == GRAFT_VALUE_INITIALIZER && val->trainable && val->data &&
              val->data->dtype == GRAFT_FLOAT))
            continue;
        graft__param *p = &tr->params[tr->n_params++];
        p->value = v;
        p->w = graft_tensor_f32(val->data);
        p->nelem = graft_tensor_nelem(val->data);
        p->penalize = val->data->rank >= 2;
        size_t nb = (size_t)(p->nelem ? p->nelem : 1) * sizeof(float);
        p->m = calloc(1, nb);
        p->v = calloc(1, nb);
        p->grad = calloc(1, nb);
        if (!p->m || !p->v || !p->grad)
            goto nomem;
    }
    int64_t d0[1] = {1};
    if (graft_tensor_create(GRAFT_FLOAT, 1, d0, &tr->d_logits, err))
        goto fail;
    return GRAFT_OK;
nomem:
    graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory for the optimizer state");
fail:
    graft__trainer_fini(tr);
    return err ? err->status : GRAFT_ERR_NOMEM;
}

void graft__trainer_fini(graft__trainer *tr)
{
    for (int i = 0; i < tr->n_plans; i++)
        graft_plan_destroy(tr->plans[i].plan);
    for (int i = 0; i < tr->n_params; i++) {
        free(tr->params[i].m);
        free(tr->params[i].v);
        free(tr->params[i].grad);
    }
    free(tr->params);
    graft_tensor_destroy(tr->d_logits);
    memset(tr, 0, sizeof *tr);
}

static graft_status trainer_plan(graft__trainer *tr, const graft_tensor *x, bool training,
                                 graft_plan **out, graft_error *err)
{
    int64_t batch = x->dims[0];
    for (int i = 0; i < tr->n_plans; i++)
        if (tr->plans[i].batch == batch && tr->plans[i].training == training) {
            *out = tr->plans[i].plan;
            return GRAFT_OK;
        }
    if (tr->n_plans == (int)(sizeof tr->plans / sizeof tr->plans[0])) {
        graft_plan_destroy(tr->plans[0].plan);
        memmove(tr->plans, tr->plans + 1, (size_t)(tr->n_plans - 1) * sizeof tr->plans[0]);
        tr->n_plans--;
    }
    graft_plan_options o = graft_plan_options_default();
    o.n_threads = tr->n_threads;
    o.feeds = &tr->feed;
    o.n_feeds = 1;
    o.fetches = &tr->logits;
    o.n_fetches = 1;
    o.training = training;
    /* Each training plan draws its own dropout stream, fixed by the seed. */
    o.seed = tr->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(batch + 1));
    graft_shape s;
    s.rank = x->rank;
    memcpy(s.dims, x->dims, sizeof s.dims);
    graft_plan *p = NULL;
    graft_status st = graft_plan_create(tr->g, &o, 1, &s, &p, err);
    if (st)
        return st;
    tr->plans[tr->n_plans].batch = batch;
    tr->plans[tr->n_plans].training = training;
    tr->plans[tr->n_plans].plan = p;
    tr->n_plans++;
    *out = p;
    return GRAFT_OK;
}

/* Logits of the last run, checked to be [n, k] with every label below k. */
static graft_status checked_logits(graft__trainer *tr, graft_plan *p, const int32_t *labels,
                                   int64_t n, const graft_tensor **out, graft_error *err)
{
    const graft_tensor *y = graft_plan_output(p, 0);
    const char *name = tr->g->values[tr->logits].name;
    if (!y || y->dtype != GRAFT_FLOAT || y->rank != 2 || y->dims[0] != n || y->dims[1] < 1)
        return graft_error_set(err, GRAFT_ERR_SHAPE,
                               "logits '%s' are not a float [batch, classes] tensor", name);
    int k = (int)y->dims[1];
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= k)
            return graft_error_set(err, GRAFT_ERR_ARG,
                                   "label %d does not fit the %d classes of logits '%s'",
                                   labels[i], k, name);
    tr->n_classes = k;
    *out = y;
    return GRAFT_OK;
}

graft_status graft__trainer_grad(graft__trainer *tr, const graft_tensor *x, const int32_t *labels,
                                 int64_t n, double *loss_sum, int64_t *n_correct,
                                 graft_error *err)
{
    graft_plan *p = NULL;
    const graft_tensor *y = NULL;
    graft_status st;
    if ((st = trainer_plan(tr, x, true, &p, err)) || (st = graft_plan_run(p, &x, err)) ||
        (st = checked_logits(tr, p, labels, n, &y, err)))
        return st;
    if ((st = graft_tensor_reshape(tr->d_logits, GRAFT_FLOAT, 2, y->dims, err)))
        return st;
    graft__softmax_xent(graft_tensor_f32(y), labels, n, (int)y->dims[1],
                        graft_tensor_f32(tr->d_logits), loss_sum, n_correct);
    const graft_tensor *d = tr->d_logits;
    if ((st = graft_plan_backward(p, &d, err)))
        return st;
    for (int i = 0; i < tr->n_params; i++) {
        graft__param *pa = &tr->params[i];
        const graft_tensor *gr = graft_plan_grad(p, pa->value);
        if (gr && graft_tensor_nelem(gr) == pa->nelem)
            memcpy(pa->grad, gr->data, (size_t)pa->nelem * sizeof(float));
        else /* a trainable parameter the logits do not depend on */
            memset(pa->grad, 0, (size_t)pa->nelem * sizeof(float));
    }
    graft__penalty_grad(&tr->opt, tr->params, tr->n_params);
    return GRAFT_OK;
}

void graft__trainer_update(graft__trainer *tr)
{
    graft__optim_step(&tr->opt, tr->params, tr->n_params);
    /* The trained data no longer matches the source file's bytes, so export
     * must write it anew. Frozen parameters keep theirs. */
    for (int i = 0; i < tr->n_params; i++) {
        graft_value *val = &tr->g->values[tr->params[i].value];
        if (val->source_pb) {
            free(val->source_pb);
            val->source_pb = NULL;
            val->source_pb_len = 0;
        }
    }
}

graft_status graft__trainer_eval(graft__trainer *tr, const graft_tensor *x, const int32_t *labels,
                                 int64_t n, double *loss_sum, int64_t *n_correct,
                                 graft_error *err)
{
    graft_plan *p = NULL;
    const graft_tensor *y = NULL;
    graft_status st;
    if ((st = trainer_plan(tr, x, false, &p, err)) || (st = graft_plan_run(p, &x, err)) ||
        (st = checked_logits(tr, p, labels, n, &y, err)))
        return st;
    graft__softmax_xent(graft_tensor_f32(y), labels, n, (int)y->dims[1], NULL, loss_sum,
                        n_correct);
    return GRAFT_OK;
}
