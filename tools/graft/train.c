/* tools/graft/train.c - `graft train`: cut a backbone's classifier off,
 * attach and train a new head, evaluate, export. */
#include <errno.h>
#include <json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_data.h"

static const char help[] =
    "usage: graft train --out OUT.onnx [options]\n"
    "\n"
    "Imports a pretrained ONNX backbone, cuts its classifier off at the feature\n"
    "tensor, attaches a new head (global average pooling for 4-D features,\n"
    "flatten, optional hidden layer, dense, softmax), freezes the backbone, trains\n"
    "the head on labelled images, evaluates it on a test set and exports the whole\n"
    "model as standard ONNX (backbone weights byte-identical, class names in the\n"
    "metadata key graft.labels, preprocessing in graft.preprocess).\n"
    "\n"
    "model\n"
    "  --model M.onnx        backbone (default: models/fmnist_cnn.onnx; settings from\n"
    "                        M.json next to it when present)\n"
    "  --cut NAME            node or tensor to cut at (default: found automatically)\n"
    "  --out OUT.onnx        where the fine-tuned model goes (required)\n"
    "  --keep-batch          export the input's batch size as the backbone declares\n"
    "                        it (default: a symbolic batch dimension)\n"
    "  --float32             export the whole model in float32 (default: float16 and\n"
    "                        bfloat16 backbone weights are written as stored, with a\n"
    "                        Cast to float32 before the new head)\n"
    "data\n"
    "  --data DIR            one subfolder of PNG/JPEG images per class, or\n"
    "  --idx-images F --idx-labels F   IDX files, gzipped or not\n"
    "                        (default: Fashion-MNIST train from " CLI_FMNIST_DIR ")\n"
    "  --classes 5,6,7       class numbers to keep, relabelled 0.. in that order\n"
    "                        (default: all)\n"
    "  --per-class N         labelled images per class, chosen with the seed\n"
    "                        (default and 0: all; a note says when a class has fewer)\n"
    "  --eval-images F --eval-labels F | --eval-data DIR   test set (default with\n"
    "                        the default data: Fashion-MNIST t10k, same classes)\n"
    "  --val-split F         fraction held out for validation (default 0.1)\n"
    "preprocessing (default: the backbone's manifest, else its input shape)\n"
    "  --size HxW  --channels 1|3  --scale X  --mean a,b,c  --std a,b,c\n"
    "  --bgr | --rgb  --nhwc | --nchw\n"
    "head\n"
    "  --hidden N            hidden dense layer with ReLU (default: none)\n"
    "  --dropout R           dropout rate before the last dense layer (default 0)\n"
    "training\n"
    "  --epochs N  --batch N  --optimizer sgd|adam  --lr X  --momentum X\n"
    "                        (defaults: 20, 32, adam, 0.001, 0.9)\n"
    "  --l1 X  --l2 X        penalties on the head weights\n"
    "  --patience N          early stopping on validation loss, restoring the best\n"
    "                        epoch's weights (default 5; 0: off)\n"
    "  --augment LIST        flip[=P],rotate=F,zoom=F,crop=F (Keras-style; recomputes\n"
    "                        the backbone per batch)\n"
    "  --seed N              data selection, shuffling, init, dropout (default 42)\n"
    "  --threads N           worker threads (default 2)\n"
    "report\n"
    "  --baseline            also train the same head on raw pixels and print\n"
    "                        fine-tuned vs raw-pixel accuracy\n"
    "  --json FILE|-         settings, per-epoch history and metrics as JSON ('-':\n"
    "                        stdout, and the report goes to stderr)\n"
    "  --quiet               no per-epoch lines\n"
    "\n"
    "--out and --json are checked before any work: not empty, not a folder, in a\n"
    "writable folder, and never the same file as --model or as each other. On a\n"
    "failure nothing is left behind.\n";

typedef struct train_opts {
    const char *model, *cut, *out, *json;
    char model_buf[4096];
    cli_data_src data, eval;
    bool default_data, quiet, baseline, keep_batch, float32;
    int classes[GRAFT_MAX_CLASSES];
    int n_classes;
    int64_t per_class;
    cli_pp_flags ppf;
    graft_head_spec head;
    graft_train_config tc;
    bool set_seed, set_patience;
} train_opts;

/* The epochs of one training run: printed (unless quiet) and kept for the
 * JSON report. */
typedef struct epoch_log {
    const char *tag;
    FILE *out;
    bool quiet;
    graft_epoch_report *v;
    int n, cap;
    bool nomem;
} epoch_log;

static void on_epoch(void *user, const graft_epoch_report *r)
{
    epoch_log *log = user;
    if (log->n == log->cap) {
        int cap = log->cap ? 2 * log->cap : 32;
        graft_epoch_report *v = realloc(log->v, (size_t)cap * sizeof(*v));
        if (v) {
            log->v = v;
            log->cap = cap;
        } else {
            log->nomem = true;
        }
    }
    if (log->n < log->cap)
        log->v[log->n++] = *r;
    if (log->quiet)
        return;
    char val[96] = "";
    if (!isnan(r->val_loss))
        snprintf(val, sizeof(val), "  val_loss %.4f  val_acc %.4f", r->val_loss, r->val_accuracy);
    fprintf(log->out, "%sepoch %3d/%-3d  loss %.4f  acc %.4f%s  %6.2fs%s\n", log->tag, r->epoch,
            r->epochs, r->loss, r->accuracy, val, r->seconds, r->best ? "  *" : "");
    fflush(log->out);
}

static int parse(int argc, char **argv, train_opts *o)
{
    cli_args a;
    int r;
    cli_args_init(&a, "train", argc, argv);
    while ((r = cli_args_next(&a)) >= 0) {
        const char *n = a.name, *v;
        long l;
        if (r == 0)
            return cli_fail(CLI_USAGE, "train: unexpected argument '%s' (see graft train --help)",
                            a.positional);
        if (strcmp(n, "--help") == 0 || strcmp(n, "-h") == 0) {
            fputs(help, stdout);
            return -1;
        }
        int pr = cli_pp_flag(&a, &o->ppf);
        if (pr < 0)
            return CLI_USAGE;
        if (pr > 0)
            continue;
        bool *flag = !strcmp(n, "--baseline")     ? &o->baseline
                     : !strcmp(n, "--quiet")      ? &o->quiet
                     : !strcmp(n, "--keep-batch") ? &o->keep_batch
                     : !strcmp(n, "--float32")    ? &o->float32
                                                  : NULL;
        if (flag) {
            if (!cli_args_flag(&a))
                return CLI_USAGE;
            *flag = true;
            continue;
        }
        if (!(v = cli_args_value(&a)))
            return CLI_USAGE;
        if (strcmp(n, "--model") == 0)
            o->model = v;
        else if (strcmp(n, "--cut") == 0)
            o->cut = v;
        else if (strcmp(n, "--out") == 0)
            o->out = v;
        else if (strcmp(n, "--json") == 0)
            o->json = v;
        else if (strcmp(n, "--data") == 0)
            o->data.dir = v;
        else if (strcmp(n, "--idx-images") == 0)
            o->data.images = v;
        else if (strcmp(n, "--idx-labels") == 0)
            o->data.labels = v;
        else if (strcmp(n, "--eval-data") == 0)
            o->eval.dir = v;
        else if (strcmp(n, "--eval-images") == 0)
            o->eval.images = v;
        else if (strcmp(n, "--eval-labels") == 0)
            o->eval.labels = v;
        else if (strcmp(n, "--classes") == 0) {
            if ((o->n_classes = cli_parse_ints(n, v, o->classes, GRAFT_MAX_CLASSES, 0,
                                               GRAFT_MAX_CLASSES - 1)) < 0)
                return CLI_USAGE;
            if (o->n_classes < 2)
                return cli_fail(CLI_USAGE, "%s: need at least 2 classes", n);
        } else if (strcmp(n, "--per-class") == 0) {
            if (!cli_parse_int(n, v, 0, 100000000, &l))
                return CLI_USAGE;
            o->per_class = l;
        } else if (strcmp(n, "--hidden") == 0) {
            if (!cli_parse_int(n, v, 0, 65536, &l))
                return CLI_USAGE;
            o->head.hidden = (int)l;
        } else if (strcmp(n, "--dropout") == 0) {
            if (!cli_parse_float(n, v, 0.0, 0.95, &o->head.dropout))
                return CLI_USAGE;
        } else if (strcmp(n, "--epochs") == 0) {
            if (!cli_parse_int(n, v, 1, 100000, &l))
                return CLI_USAGE;
            o->tc.epochs = (int)l;
        } else if (strcmp(n, "--batch") == 0) {
            if (!cli_parse_int(n, v, 1, 65536, &l))
                return CLI_USAGE;
            o->tc.batch_size = (int)l;
        } else if (strcmp(n, "--optimizer") == 0) {
            if (strcmp(v, "sgd") == 0)
                o->tc.optimizer = GRAFT_OPT_SGD;
            else if (strcmp(v, "adam") == 0)
                o->tc.optimizer = GRAFT_OPT_ADAM;
            else
                return cli_fail(CLI_USAGE, "%s: '%s' is not sgd or adam", n, v);
        } else if (strcmp(n, "--lr") == 0) {
            if (!cli_parse_float(n, v, 1e-12, 100.0, &o->tc.lr))
                return CLI_USAGE;
        } else if (strcmp(n, "--momentum") == 0) {
            if (!cli_parse_float(n, v, 0.0, 0.9999, &o->tc.momentum))
                return CLI_USAGE;
        } else if (strcmp(n, "--l1") == 0) {
            if (!cli_parse_float(n, v, 0.0, 100.0, &o->tc.l1))
                return CLI_USAGE;
        } else if (strcmp(n, "--l2") == 0) {
            if (!cli_parse_float(n, v, 0.0, 100.0, &o->tc.l2))
                return CLI_USAGE;
        } else if (strcmp(n, "--val-split") == 0) {
            if (!cli_parse_float(n, v, 0.0, 0.9, &o->tc.val_split))
                return CLI_USAGE;
        } else if (strcmp(n, "--patience") == 0) {
            if (!cli_parse_int(n, v, 0, 100000, &l))
                return CLI_USAGE;
            o->tc.patience = (int)l;
            o->set_patience = true;
        } else if (strcmp(n, "--seed") == 0) {
            if (!cli_parse_u64(n, v, &o->tc.seed))
                return CLI_USAGE;
            o->set_seed = true;
        } else if (strcmp(n, "--augment") == 0) {
            if (!cli_parse_augment(n, v, &o->tc.augment))
                return CLI_USAGE;
        } else if (strcmp(n, "--threads") == 0) {
            if (!cli_parse_int(n, v, 1, 256, &l))
                return CLI_USAGE;
            o->tc.n_threads = (int)l;
        } else {
            return cli_args_unknown(&a);
        }
    }
    if (!o->out)
        return cli_fail(CLI_USAGE, "train: missing --out OUT.onnx");
    if (!o->model)
        o->model = cli_default_model(o->model_buf, sizeof(o->model_buf));
    if (!o->model[0])
        return cli_fail(CLI_USAGE, "--model: empty path");
    /* Outputs: usable, and never the model or each other, before any work. */
    int rc = cli_check_output("--out", o->out);
    if (rc != CLI_OK)
        return rc;
    bool json_file = o->json && strcmp(o->json, "-") != 0;
    if (json_file && (rc = cli_check_output("--json", o->json)) != CLI_OK)
        return rc;
    if (cli_same_file(o->out, o->model))
        return cli_fail(CLI_USAGE, "--out and --model name the same file '%s': the model would "
                        "be overwritten", o->out);
    if (json_file && cli_same_file(o->json, o->model))
        return cli_fail(CLI_USAGE, "--json and --model name the same file '%s': the model would "
                        "be overwritten", o->json);
    if (json_file && cli_same_file(o->json, o->out))
        return cli_fail(CLI_USAGE, "--json and --out name the same file '%s'", o->json);
    if (o->data.dir && (o->data.images || o->data.labels))
        return cli_fail(CLI_USAGE, "train: give --data or --idx-images/--idx-labels, not both");
    if (!o->data.dir && (!o->data.images != !o->data.labels))
        return cli_fail(CLI_USAGE, "train: --idx-images and --idx-labels go together");
    if (o->eval.dir && (o->eval.images || o->eval.labels))
        return cli_fail(CLI_USAGE,
                        "train: give --eval-data or --eval-images/--eval-labels, not both");
    if (!o->eval.dir && (!o->eval.images != !o->eval.labels))
        return cli_fail(CLI_USAGE, "train: --eval-images and --eval-labels go together");
    if (o->set_patience && o->tc.patience > 0 && o->tc.val_split <= 0)
        return cli_fail(CLI_USAGE, "--patience: needs --val-split above 0");
    if (o->tc.val_split <= 0)
        o->tc.patience = 0; /* nothing to stop on */
    if (!o->data.dir && !o->data.images) {
        o->default_data = true;
        o->data.images = CLI_FMNIST_DIR "/train-images-idx3-ubyte.gz";
        o->data.labels = CLI_FMNIST_DIR "/train-labels-idx1-ubyte.gz";
    }
    if (!o->eval.dir && !o->eval.images && o->default_data) {
        o->eval.images = CLI_FMNIST_DIR "/t10k-images-idx3-ubyte.gz";
        o->eval.labels = CLI_FMNIST_DIR "/t10k-labels-idx1-ubyte.gz";
    }
    return CLI_OK;
}

/* A graph holding only an input of the preprocessed image shape: the head
 * attached to it trains on raw pixels. */
static graft_status raw_pixel_graph(const graft_preprocess *pp, graft_graph **out,
                                    graft_error *err)
{
    graft_graph *g = NULL;
    graft_status st = graft_graph_create(&g, err);
    if (st != GRAFT_OK)
        return st;
    g->ir_version = 7;
    g->opsets = calloc(1, sizeof(*g->opsets));
    g->inputs = calloc(1, sizeof(*g->inputs));
    if (!g->opsets || !g->inputs) {
        st = graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory");
        goto fail;
    }
    g->opsets[0].domain = graft_graph_strdup(g, "");
    g->opsets[0].version = 13;
    g->n_opsets = 1;
    int32_t x = graft_graph_add_value(g, "input", err);
    if (x < 0) {
        st = err->status;
        goto fail;
    }
    graft_value *v = &g->values[x];
    v->kind = GRAFT_VALUE_INPUT;
    v->dtype = GRAFT_FLOAT;
    v->rank = 4;
    v->has_value_info = true;
    v->dims[0] = -1;
    v->dim_params[0] = graft_graph_strdup(g, "N");
    v->dims[1] = pp->nhwc ? pp->height : pp->channels;
    v->dims[2] = pp->nhwc ? pp->width : pp->height;
    v->dims[3] = pp->nhwc ? pp->channels : pp->width;
    g->inputs[0] = x;
    g->n_inputs = 1;
    *out = g;
    return GRAFT_OK;
fail:
    graft_graph_destroy(g);
    return st;
}

typedef struct run_result {
    graft_train_result tr;
    graft_metrics m;
    bool have_metrics;
    double seconds;
    epoch_log log;
} run_result;

static graft_status train_head(graft_graph *g, int32_t features, const train_opts *o,
                               const graft_dataset *train, const graft_dataset *test,
                               const graft_preprocess *pp, const char *tag, FILE *out,
                               graft_head_info *hi, run_result *rr, graft_error *err)
{
    graft_status st;
    double t0 = cli_now();
    if ((st = graft_surgery_cut_and_attach(g, features, &o->head, hi, err)) != GRAFT_OK ||
        (st = graft_surgery_freeze(g, hi, err)) != GRAFT_OK)
        return st;
    graft_train_config tc = o->tc;
    rr->log.tag = tag;
    rr->log.out = out;
    rr->log.quiet = o->quiet;
    tc.on_epoch = on_epoch;
    tc.user = &rr->log;
    if ((st = graft_train_fit(g, hi, train, pp, &tc, &rr->tr, err)) != GRAFT_OK)
        return st;
    if (rr->log.nomem)
        return graft_error_set(err, GRAFT_ERR_NOMEM, "out of memory");
    if (test) {
        if ((st = graft_evaluate(g, hi->probabilities, test, pp, tc.n_threads, &rr->m, err)) !=
            GRAFT_OK)
            return st;
        rr->have_metrics = true;
    }
    rr->seconds = cli_now() - t0;
    return GRAFT_OK;
}

/* JSON has no NaN: undefined numbers are null. */
static json_object *num(double v) { return isfinite(v) ? json_object_new_double(v) : NULL; }

/* Which epoch's weights the model has. */
static const char *kept_text(const run_result *rr, const train_opts *o, char *buf, size_t size)
{
    if (rr->tr.best_epoch <= 0)
        snprintf(buf, size, "no validation split: last epoch kept");
    else if (o->tc.patience > 0)
        snprintf(buf, size, "best %d, its weights kept", rr->tr.best_epoch);
    else
        snprintf(buf, size, "best %d by validation loss, last epoch kept (--patience 0)",
                 rr->tr.best_epoch);
    return buf;
}

static json_object *result_json(const run_result *rr, const graft_dataset *ds,
                                const train_opts *opts)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "epochs_run", json_object_new_int(rr->tr.epochs_run));
    /* null without validation: no epoch was picked */
    json_object_object_add(o, "best_epoch", rr->tr.best_epoch > 0
                                                ? json_object_new_int(rr->tr.best_epoch)
                                                : NULL);
    bool best_kept = rr->tr.best_epoch > 0 && opts->tc.patience > 0;
    json_object_object_add(o, "kept_epoch",
                           json_object_new_int(best_kept ? rr->tr.best_epoch : rr->tr.epochs_run));
    json_object_object_add(o, "best_val_loss", num(rr->tr.best_val_loss));
    json_object_object_add(o, "final_loss", json_object_new_double(rr->tr.final_loss));
    json_object_object_add(o, "final_accuracy", json_object_new_double(rr->tr.final_accuracy));
    json_object_object_add(o, "feature_seconds", json_object_new_double(rr->tr.feature_seconds));
    json_object_object_add(o, "train_seconds", json_object_new_double(rr->tr.train_seconds));
    json_object_object_add(o, "features_cached", json_object_new_boolean(rr->tr.features_cached));
    json_object_object_add(o, "seconds", json_object_new_double(rr->seconds));
    json_object *hist = json_object_new_array();
    for (int i = 0; i < rr->log.n; i++) {
        const graft_epoch_report *r = &rr->log.v[i];
        json_object *e = json_object_new_object();
        json_object_object_add(e, "epoch", json_object_new_int(r->epoch));
        json_object_object_add(e, "loss", num(r->loss));
        json_object_object_add(e, "accuracy", num(r->accuracy));
        json_object_object_add(e, "val_loss", num(r->val_loss));
        json_object_object_add(e, "val_accuracy", num(r->val_accuracy));
        json_object_object_add(e, "seconds", json_object_new_double(r->seconds));
        json_object_object_add(e, "best", json_object_new_boolean(r->best));
        json_object_array_add(hist, e);
    }
    json_object_object_add(o, "history", hist);
    if (rr->have_metrics) {
        char *s = graft_metrics_to_json(&rr->m, (const char *const *)ds->class_names);
        json_object *m = s ? json_tokener_parse(s) : NULL;
        free(s);
        json_object_object_add(o, "test", m);
    }
    return o;
}

/* A float flag as typed ("0.001", not 0.0010000000474974513). */
static json_object *fnum(float v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%.7g", (double)v);
    return json_object_new_double_s(strtod(buf, NULL), buf);
}

static json_object *settings_json(const train_opts *o, const char *cut_asked,
                                   const graft_preprocess *pp)
{
    json_object *j = json_object_new_object();
    json_object_object_add(j, "model", json_object_new_string(o->model));
    json_object_object_add(j, "cut", json_object_new_string(cut_asked ? cut_asked : "auto"));
    json_object *d = json_object_new_object();
    if (o->data.dir) {
        json_object_object_add(d, "dir", json_object_new_string(o->data.dir));
    } else {
        json_object_object_add(d, "idx_images", json_object_new_string(o->data.images));
        json_object_object_add(d, "idx_labels", json_object_new_string(o->data.labels));
    }
    json_object_object_add(j, "data", d);
    json_object *e = NULL;
    if (o->eval.dir || o->eval.images) {
        e = json_object_new_object();
        if (o->eval.dir) {
            json_object_object_add(e, "dir", json_object_new_string(o->eval.dir));
        } else {
            json_object_object_add(e, "idx_images", json_object_new_string(o->eval.images));
            json_object_object_add(e, "idx_labels", json_object_new_string(o->eval.labels));
        }
    }
    json_object_object_add(j, "eval_data", e);
    json_object *cl = NULL; /* null: every class of the data */
    if (o->n_classes > 0) {
        cl = json_object_new_array();
        for (int i = 0; i < o->n_classes; i++)
            json_object_array_add(cl, json_object_new_int(o->classes[i]));
    }
    json_object_object_add(j, "classes", cl);
    json_object_object_add(j, "per_class",
                           o->per_class > 0 ? json_object_new_int64(o->per_class) : NULL);
    char *ppj = cli_pp_to_json(pp);
    json_object_object_add(j, "preprocess", ppj ? json_tokener_parse(ppj) : NULL);
    free(ppj);
    json_object *h = json_object_new_object();
    json_object_object_add(h, "hidden", json_object_new_int(o->head.hidden));
    json_object_object_add(h, "dropout", fnum(o->head.dropout));
    json_object_object_add(j, "head", h);
    json_object_object_add(j, "epochs", json_object_new_int(o->tc.epochs));
    json_object_object_add(j, "batch", json_object_new_int(o->tc.batch_size));
    json_object_object_add(j, "optimizer", json_object_new_string(
                                               o->tc.optimizer == GRAFT_OPT_ADAM ? "adam" : "sgd"));
    json_object_object_add(j, "lr", fnum(o->tc.lr));
    json_object_object_add(j, "momentum", fnum(o->tc.momentum));
    json_object_object_add(j, "l1", fnum(o->tc.l1));
    json_object_object_add(j, "l2", fnum(o->tc.l2));
    json_object_object_add(j, "patience", json_object_new_int(o->tc.patience));
    json_object *a = json_object_new_object();
    json_object_object_add(a, "flip", fnum(o->tc.augment.flip_prob));
    json_object_object_add(a, "rotate", fnum(o->tc.augment.rotation));
    json_object_object_add(a, "zoom", fnum(o->tc.augment.zoom));
    json_object_object_add(a, "crop", fnum(o->tc.augment.crop));
    json_object_object_add(j, "augment", a);
    json_object_object_add(j, "seed", json_object_new_uint64(o->tc.seed));
    json_object_object_add(j, "threads", json_object_new_int(o->tc.n_threads > 0 ? o->tc.n_threads
                                                                                  : 2));
    json_object_object_add(j, "val_split", fnum(o->tc.val_split));
    json_object_object_add(j, "baseline", json_object_new_boolean(o->baseline));
    json_object_object_add(j, "keep_batch", json_object_new_boolean(o->keep_batch));
    json_object_object_add(j, "float32", json_object_new_boolean(o->float32));
    return j;
}

int cli_cmd_train(int argc, char **argv)
{
    train_opts o;
    memset(&o, 0, sizeof(o));
    o.head = graft_head_spec_default();
    o.tc = graft_train_config_default();
    o.tc.seed = 42;
    int prc = parse(argc, argv, &o);
    if (prc < 0)
        return CLI_OK;
    if (prc != CLI_OK)
        return prc;
    o.head.seed = o.tc.seed;
    bool json_stdout = o.json && strcmp(o.json, "-") == 0;
    FILE *out = json_stdout ? stderr : stdout; /* stdout holds only the JSON then */

    int rc = CLI_FAIL;
    graft_error err = {0};
    graft_graph *g = NULL, *raw = NULL;
    graft_dataset *train = NULL, *test = NULL;
    cli_model_info mi;
    memset(&mi, 0, sizeof(mi));
    run_result ft, bl;
    memset(&ft, 0, sizeof(ft));
    memset(&bl, 0, sizeof(bl));
    char *pp_json = NULL, *labels = NULL, *json_text = NULL;
    json_object *report = NULL;
    char json_tmp[4200] = "";
    const char *data_src = o.data.dir ? o.data.dir : o.data.labels;

    if (!cli_model_nonempty(o.model, &err) || !cli_manifest_load(o.model, &mi, &err))
        goto lib_fail;
    if (graft_onnx_import_file(o.model, NULL, &g, &err) != GRAFT_OK)
        goto lib_fail;
    cli_note_training_form(g, out);
    graft_preprocess pp = mi.has_pp ? mi.pp : cli_pp_guess(g);
    if (!mi.has_pp) {
        cli_model_info meta;
        memset(&meta, 0, sizeof(meta));
        if (!cli_meta_load(g, &meta, &err)) {
            cli_model_info_fini(&meta);
            goto lib_fail;
        }
        if (meta.has_pp)
            pp = meta.pp;
        cli_model_info_fini(&meta);
    }
    cli_pp_apply(&o.ppf, &pp);

    if (cli_data_load(&o.data, &pp, &mi, o.classes, o.n_classes, o.per_class, o.tc.seed, &train,
                      &err) != GRAFT_OK)
        goto lib_fail;
    if (train->n_classes < 2) {
        rc = cli_fail(CLI_FAIL, "%s: a head needs at least 2 classes, the data has %d%s", data_src,
                      train->n_classes,
                      o.data.dir ? " (one subfolder per class)" : " (--classes picks them)");
        goto done;
    }
    cli_note_per_class(train, o.per_class, "--per-class", out);
    if (o.eval.dir || o.eval.images) {
        int ev[GRAFT_MAX_CLASSES];
        int n_ev = o.n_classes;
        memcpy(ev, o.classes, sizeof(int) * (size_t)n_ev);
        if (o.eval.dir) {
            /* Folders: the test classes are the training classes' names. */
            graft_dataset *all = NULL;
            if (cli_data_load(&o.eval, &pp, &mi, NULL, 0, 0, o.tc.seed, &all, &err) != GRAFT_OK)
                goto lib_fail;
            int miss = cli_data_classes_by_name(all, train->n_classes, train->class_names, ev);
            if (miss >= 0) {
                graft_dataset_destroy(all);
                rc = cli_fail(CLI_FAIL, "%s: no class folder '%s'", o.eval.dir,
                              train->class_names[miss]);
                goto done;
            }
            n_ev = train->n_classes;
            graft_status st = graft_data_select(all, ev, n_ev, 0, o.tc.seed, &test, &err);
            graft_dataset_destroy(all);
            if (st != GRAFT_OK)
                goto lib_fail;
        } else if (cli_data_load(&o.eval, &pp, &mi, ev, n_ev, 0, o.tc.seed, &test, &err) !=
                   GRAFT_OK) {
            goto lib_fail;
        }
        if (test->n_classes != train->n_classes) {
            rc = cli_fail(CLI_FAIL, "%s: %d classes, the training data has %d",
                          o.eval.dir ? o.eval.dir : o.eval.labels, test->n_classes,
                          train->n_classes);
            goto done;
        }
    }

    /* The cut: --cut, else the manifest's, else found in the graph. */
    int32_t features = -1;
    const char *cut = o.cut ? o.cut : mi.cut;
    char why[300];
    if (cut) {
        if (graft_surgery_resolve_cut(g, cut, &features, &err) != GRAFT_OK) {
            if (o.cut)
                goto lib_fail;
            /* The name came from the manifest, not from a --cut flag. */
            char msg[sizeof(err.msg)];
            const char *at = strstr(err.msg, "--cut '");
            if (at)
                snprintf(msg, sizeof(msg), "%.*s%s", (int)(at - err.msg), err.msg, at + 2);
            else
                snprintf(msg, sizeof(msg), "%s", err.msg);
            rc = cli_fail(CLI_FAIL, "%s: its \"cut\" does not fit the model: %s (--cut overrides it)",
                          mi.manifest ? mi.manifest : "the model's manifest", msg);
            goto done;
        }
        snprintf(why, sizeof(why), "%s", o.cut ? "--cut" : "the model's manifest");
    } else {
        graft_feature_info fi;
        if (graft_surgery_find_features(g, &fi, &err) != GRAFT_OK)
            goto lib_fail;
        features = fi.value;
        snprintf(why, sizeof(why), "%s", fi.reason);
    }
    o.head.n_classes = train->n_classes;

    fprintf(out, "backbone   %s (%lld parameters)\n", o.model,
            (long long)graft_graph_param_count(g, false));
    fprintf(out, "cut at     %s (%s)\n", g->values[features].name, why);
    fprintf(out, "data       %lld images, %d classes:", (long long)train->n, train->n_classes);
    for (int i = 0; i < train->n_classes; i++)
        fprintf(out, "%s%s", i ? ", " : " ", train->class_names[i]);
    fprintf(out, "\n");
    if (test)
        fprintf(out, "test set   %lld images\n", (long long)test->n);
    fprintf(out, "input      %dx%dx%d %s, scale %g, mean %g,%g,%g, std %g,%g,%g%s\n", pp.height,
            pp.width, pp.channels, pp.nhwc ? "NHWC" : "NCHW", (double)pp.scale,
            (double)pp.mean[0], (double)pp.mean[1], (double)pp.mean[2], (double)pp.std[0],
            (double)pp.std[1], (double)pp.std[2], pp.bgr ? ", BGR" : "");
    fprintf(out, "training   %d epochs, batch %d, %s lr %g, seed %llu%s\n", o.tc.epochs,
            o.tc.batch_size, o.tc.optimizer == GRAFT_OPT_ADAM ? "adam" : "sgd", (double)o.tc.lr,
            (unsigned long long)o.tc.seed,
            graft_augment_active(&o.tc.augment) ? ", augmented" : "");
    fflush(out);

    graft_head_info hi;
    char kept[128];
    if (train_head(g, features, &o, train, test, &pp, "", out, &hi, &ft, &err) != GRAFT_OK)
        goto lib_fail;
    fprintf(out,
            "head       %lld features -> %d classes, %lld trainable parameters; "
            "%d epochs (%s), backbone %.2fs, head %.2fs%s\n",
            (long long)hi.n_features, train->n_classes,
            (long long)graft_graph_param_count(g, true), ft.tr.epochs_run,
            kept_text(&ft, &o, kept, sizeof(kept)), ft.tr.feature_seconds, ft.tr.train_seconds,
            ft.tr.features_cached ? " (features cached)" : "");

    /* Labels and preprocessing travel with the model. */
    size_t len = 1;
    for (int i = 0; i < train->n_classes; i++)
        len += strlen(train->class_names[i]) + 1;
    labels = malloc(len);
    pp_json = cli_pp_to_json(&pp);
    if (!labels || !pp_json) {
        rc = cli_fail(CLI_FAIL, "out of memory");
        goto done;
    }
    labels[0] = '\0';
    for (int i = 0; i < train->n_classes; i++) {
        if (i)
            strcat(labels, ",");
        strcat(labels, train->class_names[i]);
    }
    if (graft_graph_meta_set(g, "graft.labels", labels, &err) != GRAFT_OK ||
        graft_graph_meta_set(g, "graft.preprocess", pp_json, &err) != GRAFT_OK)
        goto lib_fail;
    if (!o.data.dir) {
        char classes[GRAFT_MAX_CLASSES * 6] = "";
        for (int i = 0; i < train->n_classes; i++) {
            int c = o.n_classes ? o.classes[i] : i;
            snprintf(classes + strlen(classes), sizeof(classes) - strlen(classes), "%s%d",
                     i ? "," : "", c);
        }
        if (graft_graph_meta_set(g, "graft.classes", classes, &err) != GRAFT_OK)
            goto lib_fail;
    }

    if (ft.have_metrics) {
        fprintf(out, "\ntest metrics (%lld images)\n", (long long)test->n);
        graft_metrics_print(&ft.m, (const char *const *)train->class_names, out);
    }

    if (o.baseline) {
        fprintf(out, "\nbaseline: the same head on raw pixels\n");
        fflush(out);
        if (raw_pixel_graph(&pp, &raw, &err) != GRAFT_OK)
            goto lib_fail;
        train_opts ob = o;
        ob.head.no_pool = true;
        graft_head_info bhi;
        if (train_head(raw, raw->inputs[0], &ob, train, test, &pp, "raw ", out, &bhi, &bl,
                       &err) != GRAFT_OK)
            goto lib_fail;
        fprintf(out, "\n%-22s %12s %12s\n", "", "fine-tuned", "raw-pixel");
        if (ft.have_metrics && bl.have_metrics) {
            fprintf(out, "%-22s %12.4f %12.4f\n", "test accuracy", ft.m.accuracy, bl.m.accuracy);
            fprintf(out, "%-22s %12.4f %12.4f\n", "test macro F1", ft.m.macro_f1, bl.m.macro_f1);
        }
        fprintf(out, "%-22s %12.4f %12.4f\n", "train accuracy", ft.tr.final_accuracy,
                bl.tr.final_accuracy);
        fprintf(out, "%-22s %12lld %12lld\n", "head parameters",
                (long long)graft_graph_param_count(g, true),
                (long long)graft_graph_param_count(raw, true));
        fprintf(out, "%-22s %12.2f %12.2f\n", "seconds", ft.seconds, bl.seconds);
    }

    if (o.json) {
        report = json_object_new_object();
        json_object_object_add(report, "model", json_object_new_string(o.model));
        json_object_object_add(report, "output", json_object_new_string(o.out));
        json_object_object_add(report, "cut", json_object_new_string(g->values[features].name));
        json_object_object_add(report, "settings", settings_json(&o, cut, &pp));
        json_object *names = json_object_new_array();
        for (int i = 0; i < train->n_classes; i++)
            json_object_array_add(names, json_object_new_string(train->class_names[i]));
        json_object_object_add(report, "classes", names);
        json_object_object_add(report, "train_images", json_object_new_int64(train->n));
        json_object_object_add(report, "test_images", json_object_new_int64(test ? test->n : 0));
        json_object_object_add(report, "preprocess", json_tokener_parse(pp_json));
        json_object_object_add(report, "fine_tuned", result_json(&ft, train, &o));
        if (o.baseline)
            json_object_object_add(report, "raw_pixel", result_json(&bl, train, &o));
        const char *text = json_object_to_json_string_ext(
            report, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        json_text = malloc(strlen(text) + 2);
        if (!json_text) {
            rc = cli_fail(CLI_FAIL, "out of memory");
            goto done;
        }
        strcpy(json_text, text);
        strcat(json_text, "\n");
        /* Written aside first: renamed once the model is out. */
        if (!json_stdout && !cli_write_tmp(o.json, json_text, json_tmp, sizeof(json_tmp), &err))
            goto lib_fail;
    }

    /* The model goes out last, after everything that could fail. */
    graft_onnx_export_options eo = graft_onnx_export_options_default();
    eo.dynamic_batch = !o.keep_batch;
    eo.float32 = o.float32;
    for (int32_t k = 0; eo.dynamic_batch && k < g->n_inputs; k++) {
        const graft_value *in = &g->values[g->inputs[k]];
        if (in->rank > 0 && in->dims[0] > 0)
            fprintf(out, "note: input '%s' is declared with batch size %lld; the export makes it "
                    "symbolic ('batch'; --keep-batch keeps it)\n",
                    in->name, (long long)in->dims[0]);
    }
    if (graft_onnx_export_file(g, o.out, &eo, &err) != GRAFT_OK)
        goto lib_fail;
    if (json_tmp[0]) {
        if (rename(json_tmp, o.json) != 0) {
            int e = errno;
            remove(o.out); /* this command's model: no half-finished result */
            rc = cli_fail(CLI_FAIL, "%s: cannot write: %s", o.json, strerror(e));
            goto done;
        }
        json_tmp[0] = '\0';
    }
    fprintf(out, "\nexported   %s\n", o.out);
    if (ft.have_metrics)
        fprintf(out, "fine-tuned test accuracy %.4f", ft.m.accuracy);
    if (bl.have_metrics)
        fprintf(out, "   raw-pixel test accuracy %.4f", bl.m.accuracy);
    if (ft.have_metrics)
        fprintf(out, "\n");
    if (json_stdout) {
        fflush(out);
        fputs(json_text, stdout);
    }
    rc = CLI_OK;
    goto done;
lib_fail:
    rc = cli_fail_err(&err);
done:
    if (json_tmp[0])
        remove(json_tmp);
    if (report)
        json_object_put(report);
    free(json_text);
    free(labels);
    free(pp_json);
    free(ft.log.v);
    free(bl.log.v);
    if (ft.have_metrics)
        graft_metrics_fini(&ft.m);
    if (bl.have_metrics)
        graft_metrics_fini(&bl.m);
    graft_dataset_destroy(train);
    graft_dataset_destroy(test);
    graft_graph_destroy(raw);
    graft_graph_destroy(g);
    cli_model_info_fini(&mi);
    return rc;
}
