/* train/evaluate.c - running a whole graph over a data set and scoring it.
 * The loss is the cross-entropy of the probabilities when the fetched value
 * comes out of a Softmax, else of the logits (softmax applied here). */
#include <stdlib.h>
#include <string.h>

#include "train/train_internal.h"

enum { EVAL_BATCH = 64 };

graft_status graft_evaluate(const graft_graph *g, int32_t output, const graft_dataset *ds,
                            const graft_preprocess *pp, int n_threads, graft_metrics *m,
                            graft_error *err)
{
    memset(m, 0, sizeof *m);
    if (!g || !ds || !pp || g->n_inputs < 1 || output < 0 || output >= g->n_values)
        return graft_error_set(err, GRAFT_ERR_ARG, "evaluate: no model, output or data");
    if (ds->n <= 0)
        return graft_error_set(err, GRAFT_ERR_ARG, "evaluate: the data set is empty");
    int32_t input = g->inputs[0];
    graft_shape shape;
    graft_status st = graft__input_shape(g, input, pp, EVAL_BATCH, &shape, err);
    if (st)
        return st;
    const graft_value *ov = &g->values[output];
    bool probs = ov->producer >= 0 && !strcmp(g->nodes[ov->producer].op_type, "Softmax") &&
                 !strcmp(g->nodes[ov->producer].domain, "");
    graft__runner r;
    graft_tensor *x = NULL;
    int64_t *conf = NULL;
    int k = 0;
    double loss_total = 0;
    int64_t d0[1] = {1};
    if ((st = graft__runner_init(&r, g, input, output, true, n_threads, err)))
        return st;
    if ((st = graft_tensor_create(GRAFT_FLOAT, 1, d0, &x, err)))
        goto done;
    int64_t idx[EVAL_BATCH];
    for (int64_t s = 0; s < ds->n; s += EVAL_BATCH) {
        int64_t nb = ds->n - s < EVAL_BATCH ? ds->n - s : EVAL_BATCH;
        for (int64_t i = 0; i < nb; i++)
            idx[i] = s + i;
        if ((st = graft_data_make_batch(ds, idx, nb, pp, NULL, NULL, x, err)))
            goto done;
        if (shape.rank == 2) {
            x->rank = 2;
            x->dims[1] = (int64_t)pp->channels * pp->height * pp->width;
        }
        const graft_tensor *y = NULL;
        if ((st = graft__runner_run(&r, x, &y, err)))
            goto done;
        if (y->dtype != GRAFT_FLOAT || y->rank != 2 || y->dims[0] != nb || y->dims[1] < 1 ||
            y->dims[1] > GRAFT_MAX_CLASSES) {
            char buf[96];
            st = graft_error_set(err, GRAFT_ERR_SHAPE,
                                 "evaluate: output '%s' is %s, not [batch, classes] scores",
                                 ov->name, graft_shape_format(y->rank, y->dims, buf, sizeof buf));
            goto done;
        }
        if (!conf) {
            k = (int)y->dims[1];
            if (k < ds->n_classes) {
                st = graft_error_set(err, GRAFT_ERR_SHAPE,
                                     "evaluate: the model scores %d classes but the data has %d",
                                     k, ds->n_classes);
                goto done;
            }
            conf = calloc((size_t)k * (size_t)k, sizeof *conf);
            if (!conf) {
                st = graft_error_set(err, GRAFT_ERR_NOMEM, "evaluate: out of memory");
                goto done;
            }
        }
        const float *sc = graft_tensor_f32(y);
        const int32_t *labels = ds->labels + s;
        double ls = 0;
        if (probs)
            graft__prob_xent(sc, labels, nb, k, &ls, NULL);
        else
            graft__softmax_xent(sc, labels, nb, k, NULL, &ls, NULL);
        loss_total += ls;
        for (int64_t i = 0; i < nb; i++) {
            int pred = graft__argmax(sc + i * k, k);
            conf[(size_t)labels[i] * (size_t)k + (size_t)pred]++;
        }
    }
    if ((st = graft_metrics_from_confusion(k, conf, m, err)))
        goto done;
    m->loss = loss_total / (double)ds->n;
done:
    free(conf);
    graft_tensor_destroy(x);
    graft__runner_fini(&r);
    return st;
}
