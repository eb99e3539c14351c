/* graft/train.h - training the new head, and evaluating.
 *
 *   graft_train_config tc = graft_train_config_default();
 *   tc.epochs = 30; tc.optimizer = GRAFT_OPT_ADAM; tc.lr = 1e-3f;
 *   graft_train_result tr;
 *   graft_train_fit(g, &head, train_ds, &pp, &tc, &tr, &err);   // updates head weights in g
 *   graft_metrics m;
 *   graft_evaluate(g, &head, test_ds, &pp, 2, &m, &err);
 *   graft_metrics_print(&m, class_names, stdout);
 *   graft_metrics_fini(&m);
 *
 * Training runs the frozen backbone forward once per image and caches the
 * features when no augmentation touches the input; with augmentation the
 * backbone is recomputed for every batch. Only the head's parameters change.
 */
#ifndef GRAFT_TRAIN_H
#define GRAFT_TRAIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "graft/data.h"
#include "graft/graph.h"
#include "graft/status.h"
#include "graft/surgery.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum graft_optimizer_kind { GRAFT_OPT_SGD = 0, GRAFT_OPT_ADAM } graft_optimizer_kind;

typedef struct graft_epoch_report {
    int epoch; /* 1-based */
    int epochs;
    double loss, accuracy;         /* training, averaged over the epoch */
    double val_loss, val_accuracy; /* NAN without a validation split */
    double seconds;
    bool best; /* best validation loss so far (weights saved) */
} graft_epoch_report;

typedef struct graft_train_config {
    int epochs;
    int batch_size;
    graft_optimizer_kind optimizer;
    float lr;
    float momentum;        /* SGD */
    float beta1, beta2, eps; /* Adam */
    float l1, l2;          /* penalties on head weights (not biases) */
    float val_split;       /* fraction held out for validation (0: none) */
    int patience;          /* early stopping on validation loss; 0: off */
    uint64_t seed;         /* shuffling, dropout, augmentation, init */
    graft_augment augment;
    int n_threads;         /* 0: 2 */
    void (*on_epoch)(void *user, const graft_epoch_report *r);
    void *user;
} graft_train_config;

graft_train_config graft_train_config_default(void);

typedef struct graft_train_result {
    int epochs_run;
    int best_epoch;
    double best_val_loss;
    double final_loss, final_accuracy;
    double feature_seconds; /* time spent in the backbone */
    double train_seconds;   /* everything else: the head's epochs (backbone excluded) */
    bool features_cached;
} graft_train_result;

/* Trains the trainable parameters of g (as marked by graft_surgery_freeze)
 * on ds with softmax cross-entropy on head->logits. With a validation split
 * and patience, stops early and restores the weights of the best epoch. */
graft_status graft_train_fit(graft_graph *g, const graft_head_info *head, const graft_dataset *ds,
                             const graft_preprocess *pp, const graft_train_config *cfg,
                             graft_train_result *res, graft_error *err);

typedef struct graft_metrics {
    int n_classes;
    int64_t n;
    int64_t *confusion; /* n_classes x n_classes, row = true class, column = predicted */
    int64_t *other;     /* per true class: predictions of a class outside 0..n_classes-1
                         * (a model scoring more classes than the data has); counted as
                         * errors. NULL when there is no such column. */
    double accuracy;
    double *precision, *recall, *f1; /* per class */
    double macro_precision, macro_recall, macro_f1;
    double loss; /* mean cross-entropy */
} graft_metrics;

/* From a confusion matrix (copied); the metrics own their arrays. */
graft_status graft_metrics_from_confusion(int n_classes, const int64_t *confusion,
                                          graft_metrics *m, graft_error *err);
/* The same plus other[n_classes] (copied; NULL: none): per true class, the
 * predictions outside the classes. They count in the support and as errors
 * (lower recall and accuracy), and get an "other" column in the table. */
graft_status graft_metrics_from_counts(int n_classes, const int64_t *confusion,
                                       const int64_t *other, graft_metrics *m, graft_error *err);
void graft_metrics_fini(graft_metrics *m);
/* Runs g (input g->inputs[0], output `output` value: probabilities or
 * logits, argmax either way) over every image of ds, at the batch size the
 * input declares when it is fixed. The metrics have ds->n_classes classes;
 * when the model scores more, predictions beyond them go to m->other. */
graft_status graft_evaluate(const graft_graph *g, int32_t output, const graft_dataset *ds,
                            const graft_preprocess *pp, int n_threads, graft_metrics *m,
                            graft_error *err);
/* class_names: NULL (numbers) or m->n_classes strings, no fewer. */
void graft_metrics_print(const graft_metrics *m, const char *const *class_names, FILE *f);
/* JSON object as a malloc'd string (caller frees); class_names as above. */
char *graft_metrics_to_json(const graft_metrics *m, const char *const *class_names);

#ifdef __cplusplus
}
#endif
#endif
