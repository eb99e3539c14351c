/* train/evaluate.c - running a whole graph over a data set and scoring it.
 * The loss is the cross-entropy of the probabilities when the fetched value
 * comes out of a Softmax, else of the logits (softmax applied here).
 *
 * The graph runs at the batch size its input declares when that is fixed
 * (a model traced at batch 1 often has it baked into a Reshape); the last
 * batch is then padded with repeats of its last image, whose scores are
 * dropped. The metrics are over the data's classes: a model scoring more
 * classes puts predictions beyond them in an "other" column (errors). */
#include <stdlib.h>
#include <string.h>

#include "train/train_internal.h"

enum { EVAL_BATCH = 64 };

static const char *model_name(const graft_graph *g)
{
    return g->source_path ? g->source_path : "model";
}

graft_status graft_evaluate(const graft_graph *g, int32_t output, const graft_dataset *ds,
                            const graft_preprocess *pp, int n_threads, graft_metrics *m,
                            graft_error *err)
{
    memset(m, 0, sizeof *m);
    if (!g || !ds || !pp || g->n_inputs < 1 || output < 0 || output >= g->n_values)
        return graft_error_set(err, GRAFT_ERR_ARG, "evaluate: no model, output or data");
    if (ds->n <= 0)
        return graft_error_set(err, GRAFT_ERR_ARG, "evaluate: the data set is empty");
    if (ds->n_classes < 1 || ds->n_classes > GRAFT_MAX_CLASSES)
        return graft_error_set(err, GRAFT_ERR_ARG, "evaluate: the data set has %d classes",
                               ds->n_classes);
    for (int64_t i = 0; i < ds->n; i++)
        if (ds->labels[i] < 0 || ds->labels[i] >= ds->n_classes)
            return graft_error_set(err, GRAFT_ERR_ARG,
                                   "evaluate: image %lld has label %d, outside the data's %d "
                                   "classes",
                                   (long long)i, (int)ds->labels[i], ds->n_classes);
    int32_t input = g->inputs[0];
    const graft_value *iv = &g->values[input];
    bool fixed = iv->rank >= 1 && iv->dims[0] > 0 && iv->dims[0] <= 4096;
    int64_t batch = fixed ? iv->dims[0] : EVAL_BATCH;
    graft_shape shape;
    graft_status st = graft__input_shape(g, input, pp, batch, &shape, err);
    if (st)
        return st;
    const graft_value *ov = &g->values[output];
    bool probs = ov->producer >= 0 && !strcmp(g->nodes[ov->producer].op_type, "Softmax") &&
                 !strcmp(g->nodes[ov->producer].domain, "");
    graft__runner r;
    graft_tensor *x = NULL;
    int64_t *conf = NULL, *other = NULL, *idx = NULL;
    int32_t *labels = NULL;
    int k = 0, nc = ds->n_classes;
    double loss_total = 0;
    int64_t d0[1] = {1};
    if ((st = graft__runner_init(&r, g, input, output, true, n_threads, err)))
        return st;
    idx = malloc((size_t)batch * sizeof *idx);
    labels = malloc((size_t)batch * sizeof *labels);
    conf = calloc((size_t)nc * (size_t)nc, sizeof *conf);
    if (!idx || !labels || !conf) {
        st = graft_error_set(err, GRAFT_ERR_NOMEM, "evaluate: out of memory");
        goto done;
    }
    if ((st = graft_tensor_create(GRAFT_FLOAT, 1, d0, &x, err)))
        goto done;
    for (int64_t s = 0; s < ds->n; s += batch) {
        int64_t nb = ds->n - s < batch ? ds->n - s : batch;
        /* a fixed batch is filled up with the last image; its rows are dropped */
        int64_t run = fixed ? batch : nb;
        for (int64_t i = 0; i < run; i++) {
            idx[i] = s + (i < nb ? i : nb - 1);
            labels[i] = ds->labels[idx[i]];
        }
        if ((st = graft_data_make_batch(ds, idx, run, pp, NULL, NULL, x, err)))
            goto done;
        if (shape.rank == 2) {
            x->rank = 2;
            x->dims[1] = (int64_t)pp->channels * pp->height * pp->width;
        }
        const graft_tensor *y = NULL;
        if ((st = graft__runner_run(&r, x, &y, err)))
            goto done;
        if (y->dtype != GRAFT_FLOAT || y->rank != 2 || y->dims[0] != run || y->dims[1] < 1 ||
            y->dims[1] > GRAFT_MAX_CLASSES) {
            char buf[96];
            st = graft_error_set(err, GRAFT_ERR_SHAPE,
                                 "evaluate: %s: output '%s' is %s, not [batch, classes] scores",
                                 model_name(g), ov->name,
                                 graft_shape_format(y->rank, y->dims, buf, sizeof buf));
            goto done;
        }
        if (k == 0) {
            k = (int)y->dims[1];
            if (k < nc) {
                st = graft_error_set(err, GRAFT_ERR_SHAPE,
                                     "evaluate: %s scores %d classes but the data has %d",
                                     model_name(g), k, nc);
                goto done;
            }
            if (k > nc && !(other = calloc((size_t)nc, sizeof *other))) {
                st = graft_error_set(err, GRAFT_ERR_NOMEM, "evaluate: out of memory");
                goto done;
            }
        } else if (y->dims[1] != k) {
            st = graft_error_set(err, GRAFT_ERR_SHAPE,
                                 "evaluate: %s: output '%s' changed from %d to %lld classes",
                                 model_name(g), ov->name, k, (long long)y->dims[1]);
            goto done;
        }
        const float *sc = graft_tensor_f32(y);
        double ls = 0;
        if (probs)
            graft__prob_xent(sc, labels, nb, k, &ls, NULL);
        else
            graft__softmax_xent(sc, labels, nb, k, NULL, &ls, NULL);
        loss_total += ls;
        for (int64_t i = 0; i < nb; i++) {
            int pred = graft__argmax(sc + i * k, k);
            if (pred < nc)
                conf[(size_t)labels[i] * (size_t)nc + (size_t)pred]++;
            else
                other[labels[i]]++;
        }
    }
    if ((st = graft_metrics_from_counts(nc, conf, other, m, err)))
        goto done;
    m->loss = loss_total / (double)ds->n;
done:
    free(conf);
    free(other);
    free(idx);
    free(labels);
    graft_tensor_destroy(x);
    graft__runner_fini(&r);
    return st;
}
