/* tools/graft/run.c - `graft run MODEL --in input_0.pb [--in ...] --out-dir DIR`. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char help[] =
    "usage: graft run MODEL --in input_0.pb [--in input_1.pb ...] --out-dir DIR\n"
    "\n"
    "Runs MODEL on inputs stored as ONNX TensorProto files, given in the order of\n"
    "the graph's real inputs, and writes DIR/output_N.pb for the N-th graph output\n"
    "(named after the output, stored in the output's declared element type), the\n"
    "ONNX test-data layout.\n"
    "\n"
    "  --in FILE        a TensorProto input (repeat once per graph input)\n"
    "  --out-dir DIR    where output_N.pb go (created if missing)\n"
    "  --threads N      worker threads (default 2)\n"
    "  --no-optimize    run the graph as stored (no BatchNormalization folding or\n"
    "                   Conv fusion)\n";

#define MAX_INPUTS 64

/* graft runs what it can (a float32 model fed float16, a batch-1 trace fed a
 * batch), where another runtime would refuse: say so rather than silently. */
static void note_input_mismatch(const graft_value *v, const char *file, graft_dtype stored,
                                const graft_tensor *t)
{
    if (v->dtype != GRAFT_DTYPE_UNDEFINED && stored != GRAFT_DTYPE_UNDEFINED && stored != v->dtype)
        printf("note: %s holds %s; input '%s' is declared %s, converted\n", file,
               graft_dtype_name(stored), v->name, graft_dtype_name(v->dtype));
    bool differs = v->rank >= 0 && v->rank == t->rank;
    bool any = false;
    for (int d = 0; differs && d < v->rank; d++)
        any = any || (v->dims[d] >= 0 && v->dims[d] != t->dims[d]);
    if (differs && any) {
        char want[128], have[128];
        graft_shape_format(v->rank, v->dims, want, sizeof want);
        graft_shape_format(t->rank, t->dims, have, sizeof have);
        printf("note: input '%s' is declared %s; running it as %s from %s\n", v->name, want, have,
               file);
    }
}

/* The ONNX test data of onnx 1.12 stores a bfloat16 input as uint16 bits:
 * read them as bfloat16 (a note says so). */
static bool bf16_bits(graft_tensor **t, const char *file, graft_error *err)
{
    graft_tensor *f = NULL;
    if (graft_tensor_create(GRAFT_FLOAT, (*t)->rank, (*t)->dims, &f, err) != GRAFT_OK)
        return false;
    const int64_t *bits = graft_tensor_i64(*t);
    for (int64_t i = 0; i < graft_tensor_nelem(f); i++)
        graft_tensor_f32(f)[i] = graft_bf16_to_f32((uint16_t)bits[i]);
    graft_tensor_destroy(*t);
    *t = f;
    printf("note: %s holds uint16; the input is bfloat16, so they are read as its bits\n", file);
    return true;
}

/* mkdir -p */
static bool make_folders(const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) {
        errno = ENAMETOOLONG;
        return false;
    }
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return false;
        *s = '/';
    }
    return mkdir(p, 0777) == 0 || errno == EEXIST;
}

int cli_cmd_run(int argc, char **argv)
{
    cli_args a;
    const char *model = NULL, *out_dir = NULL;
    const char *ins[MAX_INPUTS];
    int n_in = 0;
    long threads = 0;
    bool optimize = true;
    int r;
    cli_args_init(&a, "run", argc, argv);
    while ((r = cli_args_next(&a)) >= 0) {
        const char *v;
        if (r == 0) {
            if (model)
                return cli_fail(CLI_USAGE, "run: one MODEL only ('%s' is extra)", a.positional);
            model = a.positional;
        } else if (strcmp(a.name, "--help") == 0 || strcmp(a.name, "-h") == 0) {
            fputs(help, stdout);
            return CLI_OK;
        } else if (strcmp(a.name, "--in") == 0) {
            if (!(v = cli_args_value(&a)))
                return CLI_USAGE;
            if (n_in == MAX_INPUTS)
                return cli_fail(CLI_USAGE, "run: more than %d --in files", MAX_INPUTS);
            ins[n_in++] = v;
        } else if (strcmp(a.name, "--out-dir") == 0) {
            if (!(out_dir = cli_args_value(&a)))
                return CLI_USAGE;
        } else if (strcmp(a.name, "--threads") == 0) {
            if (!(v = cli_args_value(&a)) || !cli_parse_int(a.name, v, 1, 256, &threads))
                return CLI_USAGE;
        } else if (strcmp(a.name, "--no-optimize") == 0) {
            if (!cli_args_flag(&a))
                return CLI_USAGE;
            optimize = false;
        } else {
            return cli_args_unknown(&a);
        }
    }
    if (!model)
        return cli_fail(CLI_USAGE, "run: missing MODEL (see graft run --help)");
    if (!out_dir || !*out_dir)
        return cli_fail(CLI_USAGE, "run: missing --out-dir DIR%s", out_dir ? " (empty)" : "");

    int rc = CLI_FAIL;
    graft_error err = {0};
    graft_graph *g = NULL, *opt = NULL;
    graft_plan *plan = NULL;
    graft_tensor *t[MAX_INPUTS] = {0};
    graft_shape shapes[MAX_INPUTS];
    graft_dtype stored_dt[MAX_INPUTS] = {0};

    if (graft_onnx_import_file(model, NULL, &g, &err) != GRAFT_OK)
        goto lib_fail;
    cli_note_training_form(g, stdout);
    if (n_in != g->n_inputs) {
        rc = cli_fail(CLI_USAGE, "run: %s has %d input%s, %d --in given", model, g->n_inputs,
                      g->n_inputs == 1 ? "" : "s", n_in);
        goto done;
    }
    for (int i = 0; i < n_in; i++) {
        graft_dtype stored = GRAFT_DTYPE_UNDEFINED;
        if (graft_onnx_read_tensor_file(ins[i], &t[i], &stored, NULL, 0, &err) != GRAFT_OK)
            goto lib_fail;
        if (stored == GRAFT_UINT16 && g->values[g->inputs[i]].dtype == GRAFT_BFLOAT16 &&
            !bf16_bits(&t[i], ins[i], &err))
            goto lib_fail;
        if (t[i]->dtype == GRAFT_FLOAT && g->values[g->inputs[i]].dtype == GRAFT_BFLOAT16)
            stored = GRAFT_BFLOAT16;
        shapes[i].rank = t[i]->rank;
        memcpy(shapes[i].dims, t[i]->dims, sizeof(shapes[i].dims));
        stored_dt[i] = stored;
    }
    const graft_graph *exec_g = g;
    if (optimize) {
        int n_rewrites = 0;
        if (graft_graph_clone(g, &opt, &err) != GRAFT_OK ||
            graft_passes_optimize_for_inference(opt, &n_rewrites, &err) != GRAFT_OK)
            goto lib_fail;
        exec_g = opt;
    }
    graft_plan_options po = graft_plan_options_default();
    po.n_threads = (int)threads;
    /* Integer and bool inputs are given to the plan when it is built: shape
     * inputs (Reshape, Expand, Tile, Slice, ...) that a model takes as graph
     * inputs; every run checks they still hold these values. */
    const graft_tensor *known[MAX_INPUTS] = {0};
    for (int i = 0; i < n_in; i++)
        if (!graft_dtype_is_float(g->values[g->inputs[i]].dtype))
            known[i] = t[i];
    po.feed_values = known;
    if (graft_plan_create(exec_g, &po, n_in, shapes, &plan, &err) != GRAFT_OK) {
        /* e.g. Resize's scales as a float graph input: needed when the plan
         * is built, so give it every input; the first message stands */
        graft_error err2 = {0};
        for (int i = 0; i < n_in; i++)
            known[i] = t[i];
        if (err.status != GRAFT_ERR_UNSUPPORTED ||
            graft_plan_create(exec_g, &po, n_in, shapes, &plan, &err2) != GRAFT_OK)
            goto lib_fail;
    }
    /* only once graft has accepted them: a refusal says it all */
    for (int i = 0; i < n_in; i++)
        note_input_mismatch(&g->values[g->inputs[i]], ins[i], stored_dt[i], t[i]);
    if (graft_plan_run(plan, (const graft_tensor *const *)t, &err) != GRAFT_OK)
        goto lib_fail;
    if (!make_folders(out_dir)) {
        rc = cli_fail(CLI_FAIL, "%s: cannot create folder: %s", out_dir, strerror(errno));
        goto done;
    }
    for (int i = 0; i < graft_plan_n_outputs(plan); i++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof(path), "%s/output_%d.pb", out_dir, i) >= sizeof(path)) {
            rc = cli_fail(CLI_USAGE, "run: --out-dir path too long");
            goto done;
        }
        const graft_value *ov = &g->values[g->outputs[i]];
        graft_dtype dt = ov->dtype != GRAFT_DTYPE_UNDEFINED ? ov->dtype : GRAFT_DTYPE_UNDEFINED;
        if (graft_onnx_write_tensor_file(path, graft_plan_output(plan, i), dt, ov->name, &err) !=
            GRAFT_OK)
            goto lib_fail;
    }
    rc = CLI_OK;
    goto done;
lib_fail:
    rc = cli_fail_err(&err);
done:
    graft_plan_destroy(plan);
    for (int i = 0; i < n_in; i++)
        graft_tensor_destroy(t[i]);
    graft_graph_destroy(opt);
    graft_graph_destroy(g);
    return rc;
}
