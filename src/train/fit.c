/* train/fit.c - the training loop.
 *
 * The backbone (input -> head->features) is frozen, so it runs forward
 * only, on an optimized clone of the graph, never in training mode (its
 * Dropout stays off, as with Keras' base_model(x, training=False)). Without
 * augmentation every image's features are computed once and cached; with
 * augmentation each augmented batch goes through the backbone again. The
 * head (features -> logits) trains in a training plan on g itself, so the
 * optimizer updates g's initializers in place.
 *
 * Every random choice comes from cfg->seed through separate streams
 * (split, shuffling, augmentation, dropout), so the same seed gives the
 * same weights bit for bit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "train/train_internal.h"

enum { FEATURE_BATCH = 64 };

/* Stream separators for the seed (arbitrary odd constants). */
#define SEED_SPLIT 0x5851f42d4c957f2dull
#define SEED_SHUFFLE 0x14057b7ef767814full
#define SEED_AUGMENT 0x2545f4914f6cdd1dull

graft_train_config graft_train_config_default(void)
{
    graft_train_config c;
    memset(&c, 0, sizeof c);
    c.epochs = 20;
    c.batch_size = 32;
    c.optimizer = GRAFT_OPT_ADAM;
    c.lr = 1e-3f;
    c.momentum = 0.9f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    c.val_split = 0.1f;
    c.patience = 5;
    c.seed = 42;
    return c;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Everything the loop needs about one data set (train or validation). */
typedef struct source {
    const graft_dataset *ds;
    float *cache;       /* n x fsz features, or NULL when computed per batch */
    int64_t fsz;
} source;

typedef struct fit_state {
    const graft_preprocess *pp;
    graft_shape in_shape; /* model input shape (batch dim replaced per batch) */
    graft__runner bb;     /* input -> features */
    graft_shape f_shape;  /* shape of one feature batch, dims[0] replaced per batch */
    bool f_known;
    graft_tensor *x, *f;  /* image batch; feature batch gathered from a cache */
    double feature_seconds;
} fit_state;

/* Preprocesses images idx[0..n) of ds (augmented when aug is given) and runs
 * the backbone; *out is borrowed until the next call. */
static graft_status backbone_batch(fit_state *fs, const graft_dataset *ds, const int64_t *idx,
                                   int64_t n, const graft_augment *aug, graft_rng *rng,
                                   const graft_tensor **out, graft_error *err)
{
    graft_status st = graft_data_make_batch(ds, idx, n, fs->pp, aug, rng, fs->x, err);
    if (st)
        return st;
    if (fs->in_shape.rank == 2) {
        fs->x->rank = 2;
        fs->x->dims[1] = fs->in_shape.dims[1];
    }
    double t0 = now();
    st = graft__runner_run(&fs->bb, fs->x, out, err);
    fs->feature_seconds += now() - t0;
    if (st)
        return st;
    const graft_tensor *y = *out;
    if (y->dtype != GRAFT_FLOAT || y->rank < 1 || y->dims[0] != n)
        return graft_error_set(err, GRAFT_ERR_SHAPE, "features '%s' are not a float batch",
                               fs->bb.g->values[fs->bb.fetch].name);
    if (!fs->f_known) {
        fs->f_shape.rank = y->rank;
        memcpy(fs->f_shape.dims, y->dims, sizeof fs->f_shape.dims);
        fs->f_known = true;
    }
    return GRAFT_OK;
}

static graft_status cache_features(fit_state *fs, source *src, graft_error *err)
{
    const graft_dataset *ds = src->ds;
    int64_t idx[FEATURE_BATCH];
    for (int64_t s = 0; s < ds->n; s += FEATURE_BATCH) {
        int64_t nb = ds->n - s < FEATURE_BATCH ? ds->n - s : FEATURE_BATCH;
        for (int64_t i = 0; i < nb; i++)
            idx[i] = s + i;
        const graft_tensor *y = NULL;
        graft_status st = backbone_batch(fs, ds, idx, nb, NULL, NULL, &y, err);
        if (st)
            return st;
        int64_t fsz = graft_tensor_nelem(y) / nb;
        if (!src->cache) {
            src->fsz = fsz;
            src->cache = malloc((size_t)ds->n * (size_t)fsz * sizeof(float));
            if (!src->cache)
                return graft_error_set(err, GRAFT_ERR_NOMEM,
                                       "out of memory caching %lld features of %lld floats",
                                       (long long)ds->n, (long long)fsz);
        }
        memcpy(src->cache + (size_t)s * (size_t)fsz, y->data, (size_t)(nb * fsz) * sizeof(float));
    }
    return GRAFT_OK;
}

/* The head's input for images idx[0..n) of src: gathered from the cache or
 * computed now. */
static graft_status feature_batch(fit_state *fs, source *src, const int64_t *idx, int64_t n,
                                  const graft_augment *aug, graft_rng *rng,
                                  const graft_tensor **out, graft_error *err)
{
    if (!src->cache)
        return backbone_batch(fs, src->ds, idx, n, aug, rng, out, err);
    graft_shape s = fs->f_shape;
    s.dims[0] = n;
    graft_status st = graft_tensor_reshape(fs->f, GRAFT_FLOAT, s.rank, s.dims, err);
    if (st)
        return st;
    float *dst = graft_tensor_f32(fs->f);
    for (int64_t i = 0; i < n; i++)
        memcpy(dst + (size_t)i * (size_t)src->fsz, src->cache + (size_t)idx[i] * (size_t)src->fsz,
               (size_t)src->fsz * sizeof(float));
    *out = fs->f;
    return GRAFT_OK;
}

static graft_status check_config(const graft_graph *g, const graft_head_info *head,
                                 const graft_dataset *ds, const graft_preprocess *pp,
                                 const graft_train_config *cfg, graft_error *err)
{
    if (!g || !head || !ds || !pp || !cfg)
        return graft_error_set(err, GRAFT_ERR_ARG, "train: missing argument");
    if (g->n_inputs < 1)
        return graft_error_set(err, GRAFT_ERR_INVALID, "train: the model has no input");
    if (head->features < 0 || head->features >= g->n_values || head->logits < 0 ||
        head->logits >= g->n_values)
        return graft_error_set(err, GRAFT_ERR_ARG, "train: the head is not attached to this graph");
    if (ds->n <= 0)
        return graft_error_set(err, GRAFT_ERR_ARG, "train: the data set is empty");
    if (cfg->epochs < 1 || cfg->batch_size < 1)
        return graft_error_set(err, GRAFT_ERR_ARG, "train: epochs (%d) and batch size (%d) must be "
                               "positive", cfg->epochs, cfg->batch_size);
    if (!(cfg->lr > 0) || !isfinite(cfg->lr))
        return graft_error_set(err, GRAFT_ERR_ARG, "train: learning rate %g must be positive",
                               (double)cfg->lr);
    if (!(cfg->val_split >= 0 && cfg->val_split < 1))
        return graft_error_set(err, GRAFT_ERR_ARG, "train: validation split %g is not in [0, 1)",
                               (double)cfg->val_split);
    if (!(cfg->l1 >= 0) || !(cfg->l2 >= 0) || cfg->patience < 0)
        return graft_error_set(err, GRAFT_ERR_ARG, "train: penalties and patience must not be "
                               "negative");
    if (cfg->optimizer == GRAFT_OPT_SGD) {
        if (!(cfg->momentum >= 0 && cfg->momentum < 1))
            return graft_error_set(err, GRAFT_ERR_ARG, "train: momentum %g is not in [0, 1)",
                                   (double)cfg->momentum);
    } else if (cfg->optimizer == GRAFT_OPT_ADAM) {
        if (!(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1) ||
            !(cfg->eps > 0))
            return graft_error_set(err, GRAFT_ERR_ARG, "train: Adam needs betas in [0, 1) and "
                                   "eps > 0");
    } else {
        return graft_error_set(err, GRAFT_ERR_ARG, "train: unknown optimizer %d", cfg->optimizer);
    }
    const graft_value *lv = &g->values[head->logits];
    if (lv->rank == 2 && lv->dims[1] > 0 && lv->dims[1] < ds->n_classes)
        return graft_error_set(err, GRAFT_ERR_SHAPE,
                               "train: the head has %lld classes but the data set has %d",
                               (long long)lv->dims[1], ds->n_classes);
    return GRAFT_OK;
}

graft_status graft_train_fit(graft_graph *g, const graft_head_info *head, const graft_dataset *ds,
                             const graft_preprocess *pp, const graft_train_config *cfg,
                             graft_train_result *res, graft_error *err)
{
    double t_start = now();
    graft_train_result r;
    memset(&r, 0, sizeof r);
    r.best_val_loss = NAN;
    r.final_loss = r.final_accuracy = NAN;
    if (res)
        *res = r;
    graft_status st = check_config(g, head, ds, pp, cfg, err);
    if (st)
        return st;

    fit_state fs;
    memset(&fs, 0, sizeof fs);
    fs.pp = pp;
    graft__trainer tr;
    memset(&tr, 0, sizeof tr);
    graft_dataset *tr_owned = NULL, *va_owned = NULL;
    source train = {ds, NULL, 0}, val = {NULL, NULL, 0};
    int64_t *perm = NULL;
    int32_t *labels = NULL;
    float *best = NULL;
    bool have_runner = false;
    int64_t d0[1] = {1};

    int32_t input = g->inputs[0];
    if ((st = graft__input_shape(g, input, pp, 1, &fs.in_shape, err)))
        goto done;
    if (cfg->val_split > 0) {
        if ((st = graft_data_split(ds, cfg->val_split, cfg->seed ^ SEED_SPLIT, &tr_owned,
                                   &va_owned, err)))
            goto done;
        if (tr_owned->n == 0) {
            st = graft_error_set(err, GRAFT_ERR_ARG,
                                 "train: no training images left after the validation split");
            goto done;
        }
        train.ds = tr_owned;
        if (va_owned->n > 0)
            val.ds = va_owned;
    }
    if ((st = graft_tensor_create(GRAFT_FLOAT, 1, d0, &fs.x, err)) ||
        (st = graft_tensor_create(GRAFT_FLOAT, 1, d0, &fs.f, err)))
        goto done;
    if ((st = graft__runner_init(&fs.bb, g, input, head->features, true, cfg->n_threads, err)))
        goto done;
    have_runner = true;

    bool augment = graft_augment_active(&cfg->augment);
    double t_feat = now();
    if (!augment) {
        if ((st = cache_features(&fs, &train, err)) || (val.ds && (st = cache_features(&fs, &val, err))))
            goto done;
        /* The backbone is done: its plans and clone are no longer needed. */
        graft__runner_fini(&fs.bb);
        have_runner = false;
        r.features_cached = true;
    }
    r.feature_seconds = now() - t_feat;
    fs.feature_seconds = 0;

    graft_shape fshape = {0, {0}};
    if ((st = graft__trainer_init(&tr, g, head->features, head->logits, &fshape, cfg, err)))
        goto done;

    int64_t n = train.ds->n, bs = cfg->batch_size;
    int64_t max_n = val.ds && val.ds->n > bs ? val.ds->n : bs;
    perm = malloc((size_t)n * sizeof *perm);
    labels = malloc((size_t)(max_n > n ? max_n : n) * sizeof *labels);
    int64_t n_weights = 0;
    for (int i = 0; i < tr.n_params; i++)
        n_weights += tr.params[i].nelem;
    best = malloc((size_t)(n_weights ? n_weights : 1) * sizeof *best);
    if (!perm || !labels || !best) {
        st = graft_error_set(err, GRAFT_ERR_NOMEM, "train: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    graft_rng shuffle_rng, aug_rng;
    graft_rng_seed(&shuffle_rng, cfg->seed ^ SEED_SHUFFLE);
    graft_rng_seed(&aug_rng, cfg->seed ^ SEED_AUGMENT);

    int waited = 0;
    for (int epoch = 1; epoch <= cfg->epochs; epoch++) {
        double t0 = now();
        graft_rng_shuffle(&shuffle_rng, perm, n);
        double loss_sum = 0;
        int64_t correct = 0;
        for (int64_t s = 0; s < n; s += bs) {
            int64_t nb = n - s < bs ? n - s : bs;
            for (int64_t i = 0; i < nb; i++)
                labels[i] = train.ds->labels[perm[s + i]];
            const graft_tensor *xb = NULL;
            if ((st = feature_batch(&fs, &train, perm + s, nb, augment ? &cfg->augment : NULL,
                                    &aug_rng, &xb, err)))
                goto done;
            double ls = 0;
            int64_t nc = 0;
            if ((st = graft__trainer_grad(&tr, xb, labels, nb, &ls, &nc, err)))
                goto done;
            graft__trainer_update(&tr);
            loss_sum += ls;
            correct += nc;
        }
        graft_epoch_report rep;
        memset(&rep, 0, sizeof rep);
        rep.epoch = epoch;
        rep.epochs = cfg->epochs;
        rep.loss = loss_sum / (double)n;
        rep.accuracy = (double)correct / (double)n;
        rep.val_loss = rep.val_accuracy = NAN;
        if (!isfinite(rep.loss)) {
            st = graft_error_set(err, GRAFT_ERR_ARG,
                                 "train: the loss diverged (%g) in epoch %d; lower the learning "
                                 "rate", rep.loss, epoch);
            goto done;
        }
        if (val.ds) {
            int64_t vidx[256];
            double vl = 0;
            int64_t vc = 0;
            int64_t vb = bs < 256 ? bs : 256;
            for (int64_t s = 0; s < val.ds->n; s += vb) {
                int64_t nb = val.ds->n - s < vb ? val.ds->n - s : vb;
                for (int64_t i = 0; i < nb; i++) {
                    vidx[i] = s + i;
                    labels[i] = val.ds->labels[s + i];
                }
                const graft_tensor *xb = NULL;
                double ls = 0;
                int64_t nc = 0;
                if ((st = feature_batch(&fs, &val, vidx, nb, NULL, NULL, &xb, err)) ||
                    (st = graft__trainer_eval(&tr, xb, labels, nb, &ls, &nc, err)))
                    goto done;
                vl += ls;
                vc += nc;
            }
            rep.val_loss = vl / (double)val.ds->n;
            rep.val_accuracy = (double)vc / (double)val.ds->n;
            if (r.best_epoch == 0 || rep.val_loss < r.best_val_loss) {
                r.best_val_loss = rep.val_loss;
                r.best_epoch = epoch;
                rep.best = true;
                waited = 0;
                float *b = best;
                for (int i = 0; i < tr.n_params; i++) {
                    memcpy(b, tr.params[i].w, (size_t)tr.params[i].nelem * sizeof(float));
                    b += tr.params[i].nelem;
                }
            } else {
                waited++;
            }
        }
        rep.seconds = now() - t0;
        r.epochs_run = epoch;
        r.final_loss = rep.loss;
        r.final_accuracy = rep.accuracy;
        if (cfg->on_epoch)
            cfg->on_epoch(cfg->user, &rep);
        if (val.ds && cfg->patience > 0 && waited >= cfg->patience)
            break;
    }
    /* Early stopping keeps the weights of the epoch with the best validation loss. */
    if (val.ds && cfg->patience > 0 && r.best_epoch > 0 && r.best_epoch != r.epochs_run) {
        const float *b = best;
        for (int i = 0; i < tr.n_params; i++) {
            memcpy(tr.params[i].w, b, (size_t)tr.params[i].nelem * sizeof(float));
            b += tr.params[i].nelem;
        }
    }
    r.feature_seconds += fs.feature_seconds;
    /* the head's share: the backbone's time (cached or per batch) is not in it */
    r.train_seconds = now() - t_start - r.feature_seconds;
    if (r.train_seconds < 0)
        r.train_seconds = 0;
    if (res)
        *res = r;
    st = GRAFT_OK;
done:
    graft__trainer_fini(&tr);
    if (have_runner)
        graft__runner_fini(&fs.bb);
    graft_tensor_destroy(fs.x);
    graft_tensor_destroy(fs.f);
    free(train.cache);
    free(val.cache);
    graft_dataset_destroy(tr_owned);
    graft_dataset_destroy(va_owned);
    free(perm);
    free(labels);
    free(best);
    return st;
}
