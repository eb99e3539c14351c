/* tests/train/test_fit.c - the training loop on a small synthetic problem:
 * a fixed convolutional "backbone" (input [N,1,8,8] -> Conv 3x3 -> Relu)
 * with a head attached by graft_surgery_cut_and_attach and frozen by
 * graft_surgery_freeze. Checks that training learns, that the same seed
 * gives the same weights bit for bit, that early stopping restores the
 * weights of the best epoch, that frozen data and its source bytes are
 * never touched, the augmentation path, the data/model mismatch errors, and
 * graft_evaluate against a direct forward pass. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

enum { SIDE = 8, FILTERS = 4, CLASSES = 3 };

typedef struct model {
    graft_graph *g;
    graft_head_info head;
    int32_t conv_w;
} model;

static void build_model(model *m, int hidden, float dropout, uint64_t head_seed)
{
    graft_error err = {0};
    graft_graph *g = NULL;
    assert_int_equal(graft_graph_create(&g, &err), GRAFT_OK);
    g->ir_version = 8;
    g->n_opsets = 1;
    g->opsets = malloc(sizeof *g->opsets);
    g->opsets[0].domain = graft_graph_strdup(g, "");
    g->opsets[0].version = 13;
    int32_t x = graft_graph_add_value(g, "image", &err);
    graft_value *xv = &g->values[x];
    xv->kind = GRAFT_VALUE_INPUT;
    xv->dtype = GRAFT_FLOAT;
    xv->rank = 4;
    xv->dims[0] = -1;
    xv->dims[1] = 1;
    xv->dims[2] = SIDE;
    xv->dims[3] = SIDE;
    xv->has_value_info = true;
    g->n_inputs = 1;
    g->inputs = malloc(sizeof *g->inputs);
    g->inputs[0] = x;
    int32_t w = graft_graph_add_value(g, "conv.weight", &err);
    int32_t b = graft_graph_add_value(g, "conv.bias", &err);
    int64_t wd[4] = {FILTERS, 1, 3, 3}, bd[1] = {FILTERS};
    graft_tensor *wt = NULL, *bt = NULL;
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 4, wd, &wt, &err), GRAFT_OK);
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 1, bd, &bt, &err), GRAFT_OK);
    for (int i = 0; i < FILTERS * 9; i++)
        graft_tensor_f32(wt)[i] = (float)(0.5 * sin(1.7 * i + 0.4));
    for (int i = 0; i < FILTERS; i++)
        graft_tensor_f32(bt)[i] = 0.05f * (float)i;
    int32_t vals[2] = {w, b};
    graft_tensor *ts[2] = {wt, bt};
    for (int k = 0; k < 2; k++) {
        graft_value *v = &g->values[vals[k]];
        v->kind = GRAFT_VALUE_INITIALIZER;
        v->dtype = GRAFT_FLOAT;
        v->rank = ts[k]->rank;
        memcpy(v->dims, ts[k]->dims, sizeof v->dims);
        graft_value_set_data(g, vals[k], ts[k]);
    }
    int32_t c = graft_graph_add_value(g, "conv.out", &err);
    int32_t r = graft_graph_add_value(g, "features", &err);
    g->values[c].dtype = g->values[r].dtype = GRAFT_FLOAT;
    g->values[c].rank = g->values[r].rank = -1;
    int32_t in[3] = {x, w, b};
    int32_t n = graft_graph_add_node(g, "Conv", "", "conv", 3, in, 1, &c, &err);
    assert_true(n >= 0);
    int64_t pads[4] = {1, 1, 1, 1}, ks[2] = {3, 3};
    assert_int_equal(graft_node_set_ints(g, n, "pads", 4, pads, &err), GRAFT_OK);
    assert_int_equal(graft_node_set_ints(g, n, "kernel_shape", 2, ks, &err), GRAFT_OK);
    assert_true(graft_graph_add_node(g, "Relu", "", "relu", 1, &c, 1, &r, &err) >= 0);
    g->values[r].is_graph_output = true;
    g->n_outputs = 1;
    g->outputs = malloc(sizeof *g->outputs);
    g->outputs[0] = r;

    graft_head_spec hs = graft_head_spec_default();
    hs.n_classes = CLASSES;
    hs.hidden = hidden;
    hs.dropout = dropout;
    hs.no_pool = true; /* keep where the pattern is: flatten [4,8,8] */
    hs.seed = head_seed;
    if (graft_surgery_cut_and_attach(g, r, &hs, &m->head, &err))
        fail_msg("cut_and_attach: %s", err.msg);
    if (graft_surgery_freeze(g, &m->head, &err))
        fail_msg("freeze: %s", err.msg);
    m->g = g;
    m->conv_w = w;
    assert_false(g->values[w].trainable);
}

/* Three classes of 8x8 grey images: a bright horizontal bar, a vertical
 * bar, or a diagonal, at random positions, with noise. */
static graft_dataset *make_data(int64_t n, uint64_t seed, bool random_labels)
{
    graft_dataset *ds = NULL;
    graft_error err = {0};
    assert_int_equal(graft__dataset_alloc(n, SIDE, SIDE, 1, CLASSES, &ds, &err), GRAFT_OK);
    graft_rng rng;
    graft_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++) {
        int cls = (int)(i % CLASSES);
        int pos = 1 + (int)(graft_rng_uniform(&rng) * (SIDE - 2));
        uint8_t *p = ds->pixels + i * SIDE * SIDE;
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++) {
                bool on = cls == 0 ? y == pos : cls == 1 ? x == pos : x == y;
                double v = (on ? 200.0 : 30.0) + 40.0 * graft_rng_uniform(&rng);
                p[y * SIDE + x] = (uint8_t)v;
            }
        ds->labels[i] = random_labels ? (int32_t)(graft_rng_uniform(&rng) * CLASSES) : cls;
    }
    return ds;
}

static graft_preprocess prep(void)
{
    graft_preprocess pp = graft_preprocess_default();
    pp.height = pp.width = SIDE;
    return pp;
}

typedef struct epochs_seen {
    int n;
    graft_epoch_report r[64];
    float *snap[64]; /* trainable parameters after each epoch */
    const model *m;
} epochs_seen;

static int64_t trainable_floats(const graft_graph *g)
{
    int64_t n = 0;
    for (int32_t v = 0; v < g->n_values; v++)
        if (g->values[v].trainable)
            n += graft_tensor_nelem(g->values[v].data);
    return n;
}

static void snapshot(const graft_graph *g, float *dst)
{
    for (int32_t v = 0; v < g->n_values; v++)
        if (g->values[v].trainable) {
            int64_t k = graft_tensor_nelem(g->values[v].data);
            memcpy(dst, g->values[v].data->data, (size_t)k * sizeof(float));
            dst += k;
        }
}

static void on_epoch(void *user, const graft_epoch_report *r)
{
    epochs_seen *s = user;
    assert_true(s->n < 64);
    s->r[s->n] = *r;
    s->snap[s->n] = malloc((size_t)trainable_floats(s->m->g) * sizeof(float));
    snapshot(s->m->g, s->snap[s->n]);
    s->n++;
}

static void free_seen(epochs_seen *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->snap[i]);
    s->n = 0;
}

static void test_learns_and_is_deterministic(void **state)
{
    (void)state;
    graft_dataset *ds = make_data(150, 1, false);
    graft_preprocess pp = prep();
    float *weights[3];
    int64_t nw = 0;
    for (int run = 0; run < 3; run++) {
        model m;
        build_model(&m, 16, 0.3f, 5);
        graft_train_config tc = graft_train_config_default();
        tc.epochs = 8;
        tc.batch_size = 16; /* 135 training images: a partial last batch */
        tc.val_split = 0.1f;
        tc.patience = 0;
        tc.seed = run == 2 ? 8 : 7;
        tc.l2 = 1e-4f;
        epochs_seen seen = {.m = &m};
        tc.on_epoch = on_epoch;
        tc.user = &seen;
        graft_train_result res;
        graft_error err = {0};
        if (graft_train_fit(m.g, &m.head, ds, &pp, &tc, &res, &err))
            fail_msg("fit: %s", err.msg);
        assert_int_equal(res.epochs_run, 8);
        assert_true(res.features_cached);
        assert_int_equal(seen.n, 8);
        assert_true(seen.r[7].loss < seen.r[0].loss);
        assert_true(seen.r[7].accuracy > 0.8);
        assert_true(isfinite(seen.r[7].val_loss));
        assert_int_equal(seen.r[0].epoch, 1);
        assert_int_equal(seen.r[0].epochs, 8);
        nw = trainable_floats(m.g);
        weights[run] = malloc((size_t)nw * sizeof(float));
        snapshot(m.g, weights[run]);
        free_seen(&seen);
        graft_graph_destroy(m.g);
    }
    assert_memory_equal(weights[0], weights[1], (size_t)nw * sizeof(float));
    assert_true(memcmp(weights[0], weights[2], (size_t)nw * sizeof(float)) != 0);
    for (int i = 0; i < 3; i++)
        free(weights[i]);
    graft_dataset_destroy(ds);
}

static void test_early_stopping_restores_best(void **state)
{
    (void)state;
    /* Random labels: the head can only memorise, so the validation loss
     * turns upward and patience ends the run. */
    graft_dataset *ds = make_data(120, 2, true);
    graft_preprocess pp = prep();
    model m;
    build_model(&m, 32, 0.0f, 3);
    graft_train_config tc = graft_train_config_default();
    tc.epochs = 40;
    tc.batch_size = 8;
    tc.optimizer = GRAFT_OPT_ADAM;
    tc.lr = 3e-3f;
    tc.val_split = 0.25f;
    tc.patience = 3;
    tc.seed = 11;
    epochs_seen seen = {.m = &m};
    tc.on_epoch = on_epoch;
    tc.user = &seen;
    graft_train_result res;
    graft_error err = {0};
    if (graft_train_fit(m.g, &m.head, ds, &pp, &tc, &res, &err))
        fail_msg("fit: %s", err.msg);
    assert_int_equal(res.epochs_run, seen.n);
    assert_true(res.epochs_run < 40); /* stopped early */
    assert_int_equal(res.epochs_run, res.best_epoch + tc.patience);
    /* best_epoch is the minimum of the reported validation losses */
    int argmin = 0;
    for (int i = 1; i < seen.n; i++)
        if (seen.r[i].val_loss < seen.r[argmin].val_loss)
            argmin = i;
    assert_int_equal(res.best_epoch, argmin + 1);
    assert_true(seen.r[argmin].best);
    assert_float_equal(res.best_val_loss, seen.r[argmin].val_loss, 0);
    /* the final weights are those of the best epoch, not of the last */
    int64_t nw = trainable_floats(m.g);
    float *now = malloc((size_t)nw * sizeof(float));
    snapshot(m.g, now);
    assert_memory_equal(now, seen.snap[argmin], (size_t)nw * sizeof(float));
    assert_true(memcmp(now, seen.snap[seen.n - 1], (size_t)nw * sizeof(float)) != 0);
    free(now);
    free_seen(&seen);
    graft_graph_destroy(m.g);
    graft_dataset_destroy(ds);
}

static void test_frozen_untouched_source_pb(void **state)
{
    (void)state;
    graft_dataset *ds = make_data(60, 3, false);
    graft_preprocess pp = prep();
    model m;
    build_model(&m, 0, 0.0f, 1);
    graft_graph *g = m.g;
    /* stand-ins for the bytes an import keeps */
    int32_t head_w = -1;
    for (int32_t v = 0; v < g->n_values; v++)
        if (g->values[v].trainable && g->values[v].data->rank == 2)
            head_w = v;
    assert_true(head_w >= 0);
    g->values[m.conv_w].source_pb = malloc(4);
    g->values[m.conv_w].source_pb_len = 4;
    memcpy(g->values[m.conv_w].source_pb, "ABCD", 4);
    g->values[head_w].source_pb = malloc(4);
    g->values[head_w].source_pb_len = 4;
    int64_t nconv = graft_tensor_nelem(g->values[m.conv_w].data);
    float *conv_before = malloc((size_t)nconv * sizeof(float));
    memcpy(conv_before, g->values[m.conv_w].data->data, (size_t)nconv * sizeof(float));
    graft_train_config tc = graft_train_config_default();
    tc.epochs = 2;
    tc.val_split = 0;
    tc.optimizer = GRAFT_OPT_SGD;
    tc.lr = 0.05f;
    graft_train_result res;
    graft_error err = {0};
    if (graft_train_fit(g, &m.head, ds, &pp, &tc, &res, &err))
        fail_msg("fit: %s", err.msg);
    assert_true(isnan(res.best_val_loss));
    assert_int_equal(res.best_epoch, 0);
    assert_null(g->values[head_w].source_pb);
    assert_int_equal(g->values[head_w].source_pb_len, 0);
    assert_non_null(g->values[m.conv_w].source_pb);
    assert_memory_equal(g->values[m.conv_w].source_pb, "ABCD", 4);
    assert_memory_equal(g->values[m.conv_w].data->data, conv_before, (size_t)nconv * sizeof(float));
    free(conv_before);
    graft_graph_destroy(g);
    graft_dataset_destroy(ds);
}

static void test_augmented_training(void **state)
{
    (void)state;
    graft_dataset *ds = make_data(60, 4, false);
    graft_preprocess pp = prep();
    float *w[2];
    int64_t nw = 0;
    for (int run = 0; run < 2; run++) {
        model m;
        build_model(&m, 0, 0.0f, 2);
        int64_t nconv = graft_tensor_nelem(m.g->values[m.conv_w].data);
        float *conv_before = malloc((size_t)nconv * sizeof(float));
        memcpy(conv_before, m.g->values[m.conv_w].data->data, (size_t)nconv * sizeof(float));
        graft_train_config tc = graft_train_config_default();
        tc.epochs = 3;
        tc.batch_size = 16;
        tc.val_split = 0.2f;
        tc.augment.flip_prob = 0.5f;
        tc.augment.rotation = 0.1f;
        tc.augment.zoom = 0.1f;
        graft_train_result res;
        graft_error err = {0};
        if (graft_train_fit(m.g, &m.head, ds, &pp, &tc, &res, &err))
            fail_msg("fit: %s", err.msg);
        assert_false(res.features_cached);
        assert_int_equal(res.epochs_run, 3);
        assert_memory_equal(m.g->values[m.conv_w].data->data, conv_before,
                            (size_t)nconv * sizeof(float));
        free(conv_before);
        nw = trainable_floats(m.g);
        w[run] = malloc((size_t)nw * sizeof(float));
        snapshot(m.g, w[run]);
        graft_graph_destroy(m.g);
    }
    assert_memory_equal(w[0], w[1], (size_t)nw * sizeof(float));
    free(w[0]);
    free(w[1]);
    graft_dataset_destroy(ds);
}

static void test_mismatch_errors(void **state)
{
    (void)state;
    graft_dataset *ds = make_data(30, 5, false);
    model m;
    build_model(&m, 0, 0.0f, 1);
    graft_train_config tc = graft_train_config_default();
    tc.epochs = 1;
    graft_train_result res;
    graft_error err = {0};
    /* the model wants 1x8x8; preprocessing says 3 channels */
    graft_preprocess pp = prep();
    pp.channels = 3;
    assert_int_equal(graft_train_fit(m.g, &m.head, ds, &pp, &tc, &res, &err), GRAFT_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "image"));
    assert_null(strchr(err.msg, '\n'));
    /* wrong size */
    pp = prep();
    pp.height = 28;
    assert_int_equal(graft_train_fit(m.g, &m.head, ds, &pp, &tc, &res, &err), GRAFT_ERR_SHAPE);
    /* more classes in the data than the head has */
    graft_dataset *five = NULL;
    assert_int_equal(graft__dataset_alloc(30, SIDE, SIDE, 1, 5, &five, &err), GRAFT_OK);
    for (int i = 0; i < 30; i++)
        five->labels[i] = i % 5;
    pp = prep();
    assert_int_not_equal(graft_train_fit(m.g, &m.head, five, &pp, &tc, &res, &err), GRAFT_OK);
    assert_non_null(strstr(err.msg, "classes"));
    graft_metrics met;
    assert_int_not_equal(graft_evaluate(m.g, m.head.probabilities, five, &pp, 1, &met, &err),
                         GRAFT_OK);
    /* bad configuration */
    tc.lr = -1;
    assert_int_equal(graft_train_fit(m.g, &m.head, ds, &pp, &tc, &res, &err), GRAFT_ERR_ARG);
    graft_dataset_destroy(five);
    graft_graph_destroy(m.g);
    graft_dataset_destroy(ds);
}

static void test_evaluate(void **state)
{
    (void)state;
    graft_dataset *ds = make_data(90, 6, false);
    graft_dataset *test = make_data(70, 60, false);
    graft_preprocess pp = prep();
    model m;
    build_model(&m, 0, 0.0f, 4);
    graft_train_config tc = graft_train_config_default();
    tc.epochs = 15;
    tc.lr = 3e-3f;
    tc.val_split = 0;
    graft_train_result res;
    graft_error err = {0};
    if (graft_train_fit(m.g, &m.head, ds, &pp, &tc, &res, &err))
        fail_msg("fit: %s", err.msg);
    graft_metrics met, met_logits;
    if (graft_evaluate(m.g, m.head.probabilities, test, &pp, 2, &met, &err))
        fail_msg("evaluate: %s", err.msg);
    assert_int_equal(graft_evaluate(m.g, m.head.logits, test, &pp, 2, &met_logits, &err), GRAFT_OK);
    /* reference: one plan over the whole set on the unoptimised graph */
    graft_tensor *x = NULL;
    int64_t d0[1] = {1};
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 1, d0, &x, &err), GRAFT_OK);
    int64_t idx[70];
    for (int i = 0; i < 70; i++)
        idx[i] = i;
    assert_int_equal(graft_data_make_batch(test, idx, 70, &pp, NULL, NULL, x, &err), GRAFT_OK);
    graft_plan_options o = graft_plan_options_default();
    graft_shape s = {4, {70, 1, SIDE, SIDE}};
    graft_plan *p = NULL;
    assert_int_equal(graft_plan_create(m.g, &o, 1, &s, &p, &err), GRAFT_OK);
    const graft_tensor *xin = x;
    assert_int_equal(graft_plan_run(p, &xin, &err), GRAFT_OK);
    const float *pr = graft_tensor_f32(graft_plan_output(p, 0));
    int64_t conf[CLASSES * CLASSES] = {0};
    double loss = 0;
    for (int i = 0; i < 70; i++) {
        int am = 0;
        for (int j = 1; j < CLASSES; j++)
            if (pr[i * CLASSES + j] > pr[i * CLASSES + am])
                am = j;
        conf[test->labels[i] * CLASSES + am]++;
        loss -= log(pr[i * CLASSES + test->labels[i]]);
    }
    loss /= 70;
    assert_memory_equal(met.confusion, conf, sizeof conf);
    assert_memory_equal(met_logits.confusion, conf, sizeof conf);
    assert_int_equal(met.n, 70);
    assert_float_equal(met.loss, loss, 1e-4);
    assert_float_equal(met_logits.loss, loss, 1e-4);
    if (!(met.accuracy > 0.8))
        print_message("accuracy %g, train %g\n", met.accuracy, res.final_accuracy);
    assert_true(met.accuracy > 0.8);
    graft_plan_destroy(p);
    graft_tensor_destroy(x);
    graft_metrics_fini(&met);
    graft_metrics_fini(&met_logits);
    graft_graph_destroy(m.g);
    graft_dataset_destroy(ds);
    graft_dataset_destroy(test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learns_and_is_deterministic),
        cmocka_unit_test(test_early_stopping_restores_best),
        cmocka_unit_test(test_frozen_untouched_source_pb),
        cmocka_unit_test(test_augmented_training),
        cmocka_unit_test(test_mismatch_errors),
        cmocka_unit_test(test_evaluate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
