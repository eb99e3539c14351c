/* tools/graft/eval.c - `graft eval MODEL`: classification metrics on a
 * labelled data set. */
#include <json.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_data.h"

static const char help[] =
    "usage: graft eval MODEL (--idx-images F --idx-labels F | --data DIR) [options]\n"
    "\n"
    "Runs a classifier over a labelled data set and prints accuracy, per-class\n"
    "precision, recall and F1, their macro averages and the confusion matrix.\n"
    "Class names, the data-set classes they came from and the preprocessing are\n"
    "read from the model's graft.labels / graft.classes / graft.preprocess\n"
    "metadata (written by graft train) when present.\n"
    "\n"
    "  --idx-images F --idx-labels F   IDX files, gzipped or not\n"
    "  --data DIR            one subfolder of images per class (matched to the\n"
    "                        model's labels by name)\n"
    "  --classes 5,6,7       data-set class numbers of the model's outputs 0,1,2..\n"
    "                        (default: graft.classes metadata, else all)\n"
    "  --per-class N         evaluate at most N images per class (default and 0: all)\n"
    "  --size HxW  --channels 1|3  --scale X  --mean a,b,c  --std a,b,c\n"
    "  --bgr | --rgb  --nhwc | --nchw   override the preprocessing\n"
    "  --threads N           worker threads (default 2)\n"
    "  --json [-]            metrics as JSON on stdout (notes go to stderr)\n"
    "\n"
    "A model scoring more classes than the data has: predictions of the extra\n"
    "classes count as errors, in an \"other\" column of the confusion matrix.\n"
    "The model runs at the batch size its input declares when that is fixed.\n";

int cli_cmd_eval(int argc, char **argv)
{
    cli_args a;
    const char *model = NULL;
    cli_data_src src = {0};
    cli_pp_flags ppf;
    memset(&ppf, 0, sizeof(ppf));
    int classes[GRAFT_MAX_CLASSES];
    int n_classes = 0;
    long per_class = 0, threads = 0;
    bool as_json = false;
    int r;
    cli_args_init(&a, "eval", argc, argv);
    while ((r = cli_args_next(&a)) >= 0) {
        const char *n = a.name, *v;
        if (r == 0) {
            if (model)
                return cli_fail(CLI_USAGE, "eval: one MODEL only ('%s' is extra)", a.positional);
            model = a.positional;
            continue;
        }
        if (strcmp(n, "--help") == 0 || strcmp(n, "-h") == 0) {
            fputs(help, stdout);
            return CLI_OK;
        }
        int pr = cli_pp_flag(&a, &ppf);
        if (pr < 0)
            return CLI_USAGE;
        if (pr > 0)
            continue;
        if (strcmp(n, "--json") == 0) {
            /* "--json", "--json -" and "--json=-": stdout */
            if (a.value && strcmp(a.value, "-") != 0)
                return cli_fail(CLI_USAGE, "eval: --json writes to stdout ('-'), not '%s'",
                                a.value);
            if (!a.value && a.i < a.argc && strcmp(a.argv[a.i], "-") == 0)
                a.i++;
            as_json = true;
            continue;
        }
        if (!(v = cli_args_value(&a)))
            return CLI_USAGE;
        if (strcmp(n, "--idx-images") == 0)
            src.images = v;
        else if (strcmp(n, "--idx-labels") == 0)
            src.labels = v;
        else if (strcmp(n, "--data") == 0)
            src.dir = v;
        else if (strcmp(n, "--classes") == 0) {
            if ((n_classes = cli_parse_ints(n, v, classes, GRAFT_MAX_CLASSES, 0,
                                            GRAFT_MAX_CLASSES - 1)) < 0)
                return CLI_USAGE;
        } else if (strcmp(n, "--per-class") == 0) {
            if (!cli_parse_int(n, v, 0, 100000000, &per_class))
                return CLI_USAGE;
        } else if (strcmp(n, "--threads") == 0) {
            if (!cli_parse_int(n, v, 1, 256, &threads))
                return CLI_USAGE;
        } else {
            return cli_args_unknown(&a);
        }
    }
    if (!model)
        return cli_fail(CLI_USAGE, "eval: missing MODEL (see graft eval --help)");
    if (src.dir && (src.images || src.labels))
        return cli_fail(CLI_USAGE, "eval: give --data or --idx-images/--idx-labels, not both");
    if (!src.dir && (!src.images || !src.labels))
        return cli_fail(CLI_USAGE, "eval: needs --idx-images F --idx-labels F, or --data DIR");

    int rc = CLI_FAIL;
    graft_error err = {0};
    graft_graph *g = NULL;
    graft_dataset *all = NULL, *ds = NULL;
    cli_model_info mi, manifest;
    memset(&mi, 0, sizeof(mi));
    memset(&manifest, 0, sizeof(manifest));
    graft_metrics m;
    bool have_m = false;
    char **names = NULL;

    FILE *notes = as_json ? stderr : stdout; /* stdout holds only the JSON */
    if (!cli_model_nonempty(model, &err) || graft_onnx_import_file(model, NULL, &g, &err) != GRAFT_OK ||
        !cli_meta_load(g, &mi, &err) || !cli_manifest_load(model, &manifest, &err))
        goto lib_fail;
    if (g->n_inputs != 1 || g->n_outputs < 1) {
        rc = cli_fail(CLI_FAIL, "%s: a classifier needs one input and an output (has %d and %d)",
                      model, g->n_inputs, g->n_outputs);
        goto done;
    }
    graft_preprocess pp = mi.has_pp ? mi.pp : manifest.has_pp ? manifest.pp : cli_pp_guess(g);
    cli_pp_apply(&ppf, &pp);

    if (cli_data_load(&src, &pp, &manifest, NULL, 0, 0, 42, &all, &err) != GRAFT_OK)
        goto lib_fail;
    /* Which data-set classes are the model's outputs 0..k-1. */
    if (n_classes == 0 && src.dir && mi.n_labels > 0) {
        int miss = cli_data_classes_by_name(all, mi.n_labels, mi.labels, classes);
        if (miss >= 0) {
            rc = cli_fail(CLI_FAIL, "%s: no class folder '%s' (a label of %s)", src.dir,
                          mi.labels[miss], model);
            goto done;
        }
        n_classes = mi.n_labels;
    } else if (n_classes == 0 && mi.n_classes_src > 0) {
        n_classes = mi.n_classes_src;
        memcpy(classes, mi.classes_src, sizeof(int) * (size_t)n_classes);
    } else if (n_classes == 0) {
        n_classes = all->n_classes;
        for (int i = 0; i < n_classes; i++)
            classes[i] = i;
        if (src.dir)
            fprintf(notes,
                    "note: %s has no graft.labels metadata: the %d class folders of %s, in "
                    "alphabetical order, are taken as its outputs 0..%d (--classes picks "
                    "others)\n",
                    model, n_classes, src.dir, n_classes - 1);
    }
    if (graft_data_select(all, classes, n_classes, per_class, 42, &ds, &err) != GRAFT_OK) {
        graft_error_prefix(&err, "%s", src.dir ? src.dir : src.labels);
        goto lib_fail;
    }
    if (mi.n_labels > 0 && mi.n_labels != ds->n_classes) {
        rc = cli_fail(CLI_FAIL, "%s: the model has %d labels, evaluating %d classes (use --classes)",
                      model, mi.n_labels, ds->n_classes);
        goto done;
    }
    names = mi.n_labels > 0 ? mi.labels : ds->class_names;
    cli_note_per_class(ds, per_class, "--per-class", notes);

    if (graft_evaluate(g, g->outputs[0], ds, &pp, (int)threads, &m, &err) != GRAFT_OK) {
        if (strstr(err.msg, "classes but the data has"))
            rc = cli_fail(CLI_FAIL, "%s (data %s; --classes names the data-set classes of the "
                          "model's outputs)", err.msg, src.dir ? src.dir : src.labels);
        else
            rc = cli_fail_err(&err);
        goto done;
    }
    have_m = true;
    if (as_json) {
        char *s = graft_metrics_to_json(&m, (const char *const *)names);
        if (!s) {
            rc = cli_fail(CLI_FAIL, "out of memory");
            goto done;
        }
        puts(s);
        free(s);
    } else {
        printf("model  %s\ndata   %s (%lld images, %d classes)\n", model,
               src.dir ? src.dir : src.images, (long long)ds->n, ds->n_classes);
        if (m.other)
            printf("note: the model scores more classes than the data has: predictions of "
                   "the others count as errors (column 'other')\n");
        printf("\n");
        graft_metrics_print(&m, (const char *const *)names, stdout);
    }
    rc = CLI_OK;
    goto done;
lib_fail:
    rc = cli_fail_err(&err);
done:
    if (have_m)
        graft_metrics_fini(&m);
    graft_dataset_destroy(ds);
    graft_dataset_destroy(all);
    graft_graph_destroy(g);
    cli_model_info_fini(&mi);
    cli_model_info_fini(&manifest);
    return rc;
}
