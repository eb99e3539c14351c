/* tools/graft/inspect.c - `graft inspect MODEL [--json]`. */
#include <json.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] =
    "usage: graft inspect MODEL [--json] [--nodes]\n"
    "       graft inspect --ops\n"
    "\n"
    "Prints the model's IR version, opsets, producer, inputs and outputs with their\n"
    "shapes, a histogram of its ops (marking the ones graft cannot run), the number\n"
    "of parameters, and the feature tensor `graft train` would cut at (and why), or\n"
    "why it would not pick one.\n"
    "\n"
    "  --json    the same as one JSON object on stdout\n"
    "  --nodes   also every node: op, name (what --cut takes), the activations it\n"
    "            reads, the values it writes with their shapes (or why not)\n"
    "  --ops     (no MODEL) the ops graft runs, with the opset versions and\n"
    "            whether each has a gradient, as a Markdown table (docs/OPS.md)\n";

/* "[N,3,224,224]" with symbolic dims by name, "?" when unknown. */
static void format_shape(const graft_value *v, char *buf, size_t size)
{
    if (v->rank < 0) {
        snprintf(buf, size, "unknown");
        return;
    }
    size_t off = 0;
    off += (size_t)snprintf(buf + off, size - off, "[");
    for (int i = 0; i < v->rank && off < size; i++) {
        const char *sep = i ? "," : "";
        if (v->dims[i] >= 0)
            off += (size_t)snprintf(buf + off, size - off, "%s%lld", sep, (long long)v->dims[i]);
        else if (v->dim_params[i] && v->dim_params[i][0])
            off += (size_t)snprintf(buf + off, size - off, "%s%s", sep, v->dim_params[i]);
        else
            off += (size_t)snprintf(buf + off, size - off, "%s?", sep);
    }
    if (off < size)
        snprintf(buf + off, size - off, "]");
}

/* A plan with the graph inputs at batch 1 (symbolic batch), producing the
 * fetches: the activation shapes are not stored in most files. NULL when the
 * model cannot be planned that way (dynamic image size, unsupported op). */
static graft_plan *batch1_plan(const graft_graph *g, const int32_t *fetches, int n_fetches,
                               char *why, size_t why_size)
{
    graft_shape in[64];
    snprintf(why, why_size, "no graph input");
    if (g->n_inputs < 1 || g->n_inputs > 64)
        return NULL;
    for (int32_t i = 0; i < g->n_inputs; i++) {
        const graft_value *x = &g->values[g->inputs[i]];
        snprintf(why, why_size, "input '%s' has no declared shape", x->name);
        if (x->rank < 0)
            return NULL;
        in[i].rank = x->rank;
        for (int d = 0; d < x->rank; d++) {
            if (x->dims[d] >= 0)
                in[i].dims[d] = x->dims[d];
            else if (d == 0)
                in[i].dims[d] = 1;
            else {
                /* dynamic image size: no single answer */
                snprintf(why, why_size, "input '%s' has a symbolic dimension %d", x->name, d);
                return NULL;
            }
        }
    }
    graft_plan_options po = graft_plan_options_default();
    po.fetches = fetches;
    po.n_fetches = n_fetches;
    graft_plan *p = NULL;
    graft_error err = {0};
    if (graft_plan_create(g, &po, g->n_inputs, in, &p, &err) != GRAFT_OK) {
        snprintf(why, why_size, "%s", err.msg);
        return NULL;
    }
    return p;
}

/* v's shape in a batch1_plan, the batch shown by the input's symbol. */
static bool plan_shape(const graft_graph *g, const graft_plan *p, int32_t v, char *buf,
                       size_t size)
{
    graft_shape s;
    if (!p || !graft_plan_value_shape(p, v, &s))
        return false;
    const graft_value *x0 = &g->values[g->inputs[0]];
    const char *batch = x0->rank > 0 && x0->dims[0] < 0 && x0->dim_params[0] &&
                                x0->dim_params[0][0]
                            ? x0->dim_params[0]
                            : NULL;
    size_t off = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < s.rank && off < size; d++) {
        if (d == 0 && batch && s.dims[0] == 1)
            off += (size_t)snprintf(buf + off, size - off, "%s", batch);
        else
            off += (size_t)snprintf(buf + off, size - off, "%s%lld", d ? "," : "",
                                    (long long)s.dims[d]);
    }
    if (off < size)
        snprintf(buf + off, size - off, "]");
    return true;
}

static bool infer_shape(const graft_graph *g, int32_t v, char *buf, size_t size)
{
    char why[1024];
    graft_plan *p = batch1_plan(g, &v, 1, why, sizeof why);
    bool ok = plan_shape(g, p, v, buf, size);
    graft_plan_destroy(p);
    return ok;
}

/* Every live node in stored order: op, name, the activations it reads (its
 * weights counted), what it writes with shapes where known (worked out at
 * batch 1, printed with the batch symbol), or why they are not. The names
 * are what --cut takes. */
static void print_nodes(const graft_graph *g, json_object *arr)
{
    int32_t *fetch = malloc((size_t)(g->n_values + 1) * sizeof *fetch);
    int n_fetch = 0;
    for (int32_t v = 0; fetch && v < g->n_values; v++)
        if (g->values[v].producer >= 0 && !g->nodes[g->values[v].producer].removed &&
            g->nodes[g->values[v].producer].op >= 0)
            fetch[n_fetch++] = v;
    char why[1024] = "";
    graft_plan *p = fetch && n_fetch ? batch1_plan(g, fetch, n_fetch, why, sizeof why) : NULL;
    if (!arr && p)
        printf("nodes       (name: reads -> writes, shapes; the batch dimension by its name)\n");
    else if (!arr)
        printf("nodes       (name: reads -> writes; no shapes: %s)\n", why);
    char shape[256];
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const graft_node *n = &g->nodes[i];
        if (n->removed)
            continue;
        json_object *jn = arr ? json_object_new_object() : NULL, *jin = NULL, *jout = NULL;
        int weights = 0;
        if (jn) {
            json_object_object_add(jn, "name", json_object_new_string(n->name));
            json_object_object_add(jn, "op_type", json_object_new_string(n->op_type));
            json_object_object_add(jn, "domain", json_object_new_string(n->domain ? n->domain : ""));
            jin = json_object_new_array();
            jout = json_object_new_array();
        } else {
            printf("  %-20s %s:", n->op_type, n->name[0] ? n->name : "(no name)");
        }
        for (int k = 0; k < n->n_inputs; k++) {
            if (n->inputs[k] < 0)
                continue;
            const graft_value *v = &g->values[n->inputs[k]];
            if (jin)
                json_object_array_add(jin, json_object_new_string(v->name));
            else if (v->kind == GRAFT_VALUE_INITIALIZER)
                weights++;
            else
                printf(" %s", v->name);
        }
        if (!jn && weights)
            printf(" (+%d weight%s)", weights, weights == 1 ? "" : "s");
        if (!jn)
            printf(" ->");
        for (int k = 0; k < n->n_outputs; k++) {
            if (n->outputs[k] < 0)
                continue;
            const graft_value *v = &g->values[n->outputs[k]];
            bool known = plan_shape(g, p, n->outputs[k], shape, sizeof shape);
            if (jout) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(v->name));
                json_object_object_add(o, "shape", known ? json_object_new_string(shape) : NULL);
                json_object_array_add(jout, o);
            } else {
                printf(" %s%s%s", v->name, known ? " " : "", known ? shape : "");
            }
        }
        if (jn) {
            json_object_object_add(jn, "inputs", jin);
            json_object_object_add(jn, "outputs", jout);
            json_object_array_add(arr, jn);
        } else {
            printf("\n");
        }
    }
    graft_plan_destroy(p);
    free(fetch);
}

typedef struct op_count {
    const char *op_type, *domain;
    int count;
    bool runnable;
} op_count;

static int count_ops(const graft_graph *g, op_count *ops)
{
    int n = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const graft_node *nd = &g->nodes[i];
        if (nd->removed)
            continue;
        int j;
        for (j = 0; j < n; j++)
            if (strcmp(ops[j].op_type, nd->op_type) == 0 &&
                strcmp(ops[j].domain, nd->domain ? nd->domain : "") == 0)
                break;
        if (j == n) {
            ops[n].op_type = nd->op_type;
            ops[n].domain = nd->domain ? nd->domain : "";
            ops[n].count = 0;
            ops[n].runnable = nd->op >= 0;
            n++;
        }
        ops[j].count++;
    }
    return n;
}

static json_object *value_json(const graft_value *v)
{
    json_object *o = json_object_new_object();
    char shape[256];
    format_shape(v, shape, sizeof(shape));
    json_object_object_add(o, "name", json_object_new_string(v->name));
    json_object_object_add(o, "dtype", json_object_new_string(graft_dtype_name(v->dtype)));
    json_object *dims = json_object_new_array();
    for (int i = 0; i < v->rank; i++) {
        if (v->dims[i] >= 0)
            json_object_array_add(dims, json_object_new_int64(v->dims[i]));
        else if (v->dim_params[i] && v->dim_params[i][0])
            json_object_array_add(dims, json_object_new_string(v->dim_params[i]));
        else
            json_object_array_add(dims, NULL);
    }
    json_object_object_add(o, "shape", v->rank < 0 ? NULL : dims);
    if (v->rank < 0)
        json_object_put(dims);
    return o;
}

static int by_op_type(const void *a, const void *b)
{
    const graft_op_support *x = a, *y = b;
    int c = strcmp(x->op_type, y->op_type);
    return c ? c : strcmp(x->domain, y->domain);
}

/* docs/OPS.md is this output: tests/e2e/inspect_nodes.py keeps them equal. */
static int print_ops(void)
{
    graft_op_support ops[256];
    int n = 0;
    while (n < 256 && graft_supported_op(n, &ops[n]))
        n++;
    qsort(ops, (size_t)n, sizeof *ops, by_op_type);
    printf("# Ops graft runs\n\n");
    printf("Generated by `graft inspect --ops` (graft %s). The importer accepts models of\n"
           "default-domain opsets %d to %d; an op runs from the first opset listed. Ops not\n"
           "listed are kept verbatim on export but cannot be run; `graft inspect MODEL`\n"
           "marks them. \"backward\": the op has a gradient, so it may sit on the trained\n"
           "part of a graph (the new head).\n\n"
           "Element types: float32 compute (float16, bfloat16 and double are widened),\n"
           "integers as int64, bool; no strings. Nodes stored in training form\n"
           "(BatchNormalization training_mode=1, Dropout with a training_mode input) run in\n"
           "inference form, as a frozen backbone needs.\n\n",
           GRAFT_VERSION_STRING, GRAFT_ONNX_OPSET_MIN, GRAFT_ONNX_OPSET_MAX);
    printf("| op | domain | opsets | backward |\n|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        char range[32];
        if (ops[i].max_opset > ops[i].min_opset)
            snprintf(range, sizeof range, "%d-%d", ops[i].min_opset, ops[i].max_opset);
        else
            snprintf(range, sizeof range, "%d", ops[i].min_opset);
        printf("| %s | %s | %s | %s |\n", ops[i].op_type,
               ops[i].domain[0] ? ops[i].domain : "ai.onnx", range,
               ops[i].backward ? "yes" : "no");
    }
    printf("\n%d ops.\n", n);
    return CLI_OK;
}

int cli_cmd_inspect(int argc, char **argv)
{
    cli_args a;
    const char *model = NULL;
    bool as_json = false, nodes = false, ops_table = false;
    int r;
    cli_args_init(&a, "inspect", argc, argv);
    while ((r = cli_args_next(&a)) >= 0) {
        if (r == 0) {
            if (model)
                return cli_fail(CLI_USAGE, "inspect: one MODEL only ('%s' is extra)",
                                a.positional);
            model = a.positional;
        } else if (strcmp(a.name, "--help") == 0 || strcmp(a.name, "-h") == 0) {
            fputs(help, stdout);
            return CLI_OK;
        } else if (strcmp(a.name, "--json") == 0 || strcmp(a.name, "--nodes") == 0 ||
                   strcmp(a.name, "--ops") == 0) {
            if (!cli_args_flag(&a))
                return CLI_USAGE;
            if (a.name[2] == 'j')
                as_json = true;
            else if (a.name[2] == 'n')
                nodes = true;
            else
                ops_table = true;
        } else {
            return cli_args_unknown(&a);
        }
    }
    if (ops_table) {
        if (model || as_json || nodes)
            return cli_fail(CLI_USAGE, "inspect: --ops takes no MODEL and no other option");
        return print_ops();
    }
    if (!model)
        return cli_fail(CLI_USAGE, "inspect: missing MODEL (see graft inspect --help)");

    graft_error err = {0};
    graft_graph *g = NULL;
    if (graft_onnx_import_file(model, NULL, &g, &err) != GRAFT_OK)
        return cli_fail_err(&err);

    op_count *ops = calloc((size_t)g->n_nodes + 1, sizeof(*ops));
    if (!ops) {
        graft_graph_destroy(g);
        return cli_fail(CLI_FAIL, "out of memory");
    }
    int n_ops = count_ops(g, ops);
    int n_live = 0, n_init = 0;
    for (int32_t i = 0; i < g->n_nodes; i++)
        n_live += !g->nodes[i].removed;
    for (int32_t i = 0; i < g->n_values; i++)
        n_init += g->values[i].kind == GRAFT_VALUE_INITIALIZER;
    int64_t n_params = graft_graph_param_count(g, false);
    char unsupported[1024] = "";
    int n_unsupported = graft_graph_unsupported_ops(g, NULL, 0, unsupported, sizeof(unsupported));

    graft_feature_info fi;
    graft_error ferr = {0};
    bool have_cut = graft_surgery_find_features(g, &fi, &ferr) == GRAFT_OK;

    if (as_json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "file", json_object_new_string(model));
        json_object_object_add(o, "ir_version", json_object_new_int64(g->ir_version));
        json_object *os = json_object_new_array();
        for (int i = 0; i < g->n_opsets; i++) {
            json_object *e = json_object_new_object();
            json_object_object_add(e, "domain", json_object_new_string(g->opsets[i].domain));
            json_object_object_add(e, "version", json_object_new_int64(g->opsets[i].version));
            json_object_array_add(os, e);
        }
        json_object_object_add(o, "opsets", os);
        json_object_object_add(o, "producer",
                               json_object_new_string(g->producer_name ? g->producer_name : ""));
        json_object_object_add(
            o, "producer_version",
            json_object_new_string(g->producer_version ? g->producer_version : ""));
        json_object *ins = json_object_new_array();
        for (int32_t i = 0; i < g->n_inputs; i++)
            json_object_array_add(ins, value_json(&g->values[g->inputs[i]]));
        json_object_object_add(o, "inputs", ins);
        json_object *outs = json_object_new_array();
        for (int32_t i = 0; i < g->n_outputs; i++)
            json_object_array_add(outs, value_json(&g->values[g->outputs[i]]));
        json_object_object_add(o, "outputs", outs);
        json_object_object_add(o, "nodes", json_object_new_int(n_live));
        json_object *hist = json_object_new_array();
        for (int i = 0; i < n_ops; i++) {
            json_object *e = json_object_new_object();
            json_object_object_add(e, "op_type", json_object_new_string(ops[i].op_type));
            json_object_object_add(e, "domain", json_object_new_string(ops[i].domain));
            json_object_object_add(e, "count", json_object_new_int(ops[i].count));
            json_object_object_add(e, "supported", json_object_new_boolean(ops[i].runnable));
            json_object_array_add(hist, e);
        }
        json_object_object_add(o, "ops", hist);
        json_object_object_add(o, "unsupported_ops",
                               json_object_new_string(n_unsupported ? unsupported : ""));
        json_object_object_add(o, "initializers", json_object_new_int(n_init));
        json_object_object_add(o, "parameters", json_object_new_int64(n_params));
        json_object *meta = json_object_new_object();
        for (int i = 0; i < g->n_meta; i++)
            json_object_object_add(meta, g->meta[i].key, json_object_new_string(g->meta[i].value));
        json_object_object_add(o, "metadata", meta);
        json_object *cut = json_object_new_object();
        if (have_cut) {
            json_object_object_add(cut, "value", value_json(&g->values[fi.value]));
            char inferred[256];
            if (infer_shape(g, fi.value, inferred, sizeof(inferred)))
                json_object_object_add(cut, "inferred_shape", json_object_new_string(inferred));
            json_object_object_add(
                cut, "classifier",
                fi.classifier_node >= 0 ? json_object_new_string(g->nodes[fi.classifier_node].name)
                                        : NULL);
            json_object_object_add(cut, "reason", json_object_new_string(fi.reason));
        } else {
            json_object_object_add(cut, "value", NULL);
            json_object_object_add(cut, "reason", json_object_new_string(ferr.msg));
        }
        json_object_object_add(o, "feature_cut", cut);
        if (nodes) {
            json_object *arr = json_object_new_array();
            print_nodes(g, arr);
            json_object_object_add(o, "node_list", arr);
        }
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    } else {
        char shape[256];
        printf("model       %s\n", model);
        printf("ir_version  %lld\n", (long long)g->ir_version);
        printf("opsets     ");
        for (int i = 0; i < g->n_opsets; i++)
            printf(" %s%s%lld", g->opsets[i].domain[0] ? g->opsets[i].domain : "ai.onnx", ":",
                   (long long)g->opsets[i].version);
        printf("\n");
        printf("producer    %s %s\n", g->producer_name ? g->producer_name : "",
               g->producer_version ? g->producer_version : "");
        printf("inputs\n");
        for (int32_t i = 0; i < g->n_inputs; i++) {
            const graft_value *v = &g->values[g->inputs[i]];
            format_shape(v, shape, sizeof(shape));
            printf("  %-24s %-8s %s\n", v->name, graft_dtype_name(v->dtype), shape);
        }
        printf("outputs\n");
        for (int32_t i = 0; i < g->n_outputs; i++) {
            const graft_value *v = &g->values[g->outputs[i]];
            format_shape(v, shape, sizeof(shape));
            printf("  %-24s %-8s %s\n", v->name, graft_dtype_name(v->dtype), shape);
        }
        printf("ops         %d nodes\n", n_live);
        for (int i = 0; i < n_ops; i++)
            printf("  %-24s %5d%s\n", ops[i].op_type, ops[i].count,
                   ops[i].runnable ? "" : "   (graft cannot run this op)");
        if (n_unsupported)
            printf("unsupported %s\n", unsupported);
        cli_note_training_form(g, stdout);
        printf("parameters  %lld in %d initializers\n", (long long)n_params, n_init);
        for (int i = 0; i < g->n_meta; i++)
            printf("metadata    %s = %s\n", g->meta[i].key, g->meta[i].value);
        if (have_cut) {
            format_shape(&g->values[fi.value], shape, sizeof(shape));
            if (g->values[fi.value].rank < 0)
                infer_shape(g, fi.value, shape, sizeof(shape));
            printf("feature cut %s %s\n", g->values[fi.value].name, shape);
            printf("  why       %s\n", fi.reason);
        } else {
            printf("feature cut none\n");
            printf("  why       %s\n", ferr.msg);
        }
        if (nodes)
            print_nodes(g, NULL);
    }
    free(ops);
    graft_graph_destroy(g);
    return CLI_OK;
}
