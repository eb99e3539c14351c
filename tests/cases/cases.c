/* tests/cases/cases.c - one check per bug case of ../shared/cases, doing what
 * the case's EXPECT.md says a correct tool must do.
 *
 *   graft_cases <ID>     runs case <ID> (e.g. B07a); exit 0 pass, 1 fail, 77 skip
 *   graft_cases --list   prints the IDs
 *
 * Valid models run every test_data_set_K against the stored references (read
 * with an independent protobuf reader; 1e-4 relative to max|ref|, fp16 2e-2).
 * Invalid models must be refused by import or plan with a one-line message
 * naming the file (and node or tensor), and `graft run` must exit 1 with one
 * line and write nothing. Train/export cases train a new head with plain SGD
 * written here on top of the public executor (graft_train_fit only takes
 * uint8 image data sets, the cases hold float tensors) and check the exported
 * file with tests/cases/check_export.py (onnx package). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cu.h"
#include "onnx_util.h"
#include "train/train_internal.h"

#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define PY(...) CU_CHECK(cu_py(__VA_ARGS__) == 0, "python check failed: " __VA_ARGS__)

static const char *dir_; /* the case folder */

static const char *P(const char *rel) { return cu_fmt("%s/%s", dir_, rel); }

static graft_graph *load(const char *path)
{
    graft_error err = {0};
    graft_graph *g = cu_import(path, &err);
    CU_CHECK(g != NULL, "import %s: %s", path, err.msg);
    return g;
}

static const cu_tol *tol(void)
{
    static cu_tol t;
    t = cu_tol_cases();
    return &t;
}

/* model.onnx imports and matches every test_data_set_K */
static graft_graph *sets(void)
{
    graft_graph *g = load(P("model.onnx"));
    if (g) {
        int k = cu_run_all_sets(g, dir_, tol());
        for (int i = 0; i < k; i++)
            cu_cli_run_set(P("model.onnx"), P(cu_fmt("test_data_set_%d", i)), tol());
    }
    return g;
}

static const char *fresh_dir(const char *tag)
{
    char *d = (char *)cu_keep(cu_fmt("%s/%s-XXXXXX", cu_work(), tag));
    if (!mkdtemp(d)) {
        CU_CHECK(0, "mkdtemp %s", d);
        return NULL;
    }
    return d;
}

static const char *export_file(const graft_graph *g, const char *tag, size_t threshold)
{
    const char *d = fresh_dir(tag);
    if (!d)
        return NULL;
    const char *path = cu_keep(cu_fmt("%s/model.onnx", d));
    graft_onnx_export_options eo = graft_onnx_export_options_default();
    eo.external_threshold = threshold;
    graft_error err = {0};
    if (graft_onnx_export_file(g, path, &eo, &err) != GRAFT_OK) {
        CU_CHECK(0, "export %s: %s", tag, err.msg);
        return NULL;
    }
    return path;
}

/* export -> import again -> the stored references still hold */
static void roundtrip_sets(const graft_graph *g)
{
    const char *path = export_file(g, "rt", 0);
    if (!path)
        return;
    graft_graph *h = load(path);
    if (h) {
        printf("  round trip through %s\n", path);
        cu_run_all_sets(h, dir_, tol());
    }
    graft_graph_destroy(h);
}

static graft_tensor *read_pb(const char *path)
{
    graft_tensor *t = NULL;
    graft_error err = {0};
    if (graft_onnx_read_tensor_file(path, &t, NULL, NULL, 0, &err) != GRAFT_OK)
        CU_CHECK(0, "read %s: %s", path, err.msg);
    return t;
}

static int32_t val(const graft_graph *g, const char *name)
{
    int32_t v = graft_graph_find_value(g, name);
    CU_CHECK(v >= 0, "value %s not in the graph", name);
    return v;
}

static bool head_and_train(graft_graph *g, const char *cut, int k, const graft_tensor *x,
                           const int64_t *labels, int64_t n, int batch, int steps,
                           graft_head_info *hi)
{
    graft_error err = {0};
    if (cu_reheat(g, cut, k, 3, hi, &err) != GRAFT_OK) {
        CU_CHECK(0, "re-heading (cut %s): %s", cut ? cut : "auto", err.msg);
        return false;
    }
    double loss = cu_train(g, hi, x, labels, n, batch, steps, 0.1f, &err);
    CU_CHECK(!isnan(loss), "training: %s", err.msg);
    if (!isnan(loss))
        printf("  trained %d steps, last loss %.4f\n", steps, loss);
    return !isnan(loss);
}

static int64_t *rand_labels(int64_t n, int k)
{
    int64_t *l = malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        l[i] = (i * 7 + 3) % k;
    return l;
}

/* trainable values must all be new head parameters (not in the source file) */
static void only_head_trainable(const graft_graph *g, const graft_graph *orig)
{
    int n = 0;
    for (int32_t v = 0; v < g->n_values; v++) {
        const graft_value *x = &g->values[v];
        if (!x->trainable)
            continue;
        n++;
        CU_CHECK(graft_graph_find_value(orig, x->name) < 0,
                 "backbone value '%s' is trainable after freeze", x->name);
    }
    CU_CHECK(n > 0, "no trainable parameter after freeze");
}

/* ---- security ------------------------------------------------------------------ */

static void case_B01(void)
{
    const char *w = fresh_dir("b01");
    char *c = ou_copy_case("B01_extdata_read_traversal", w);
    CU_CHECK(c && cu_sh("sh '%s/setup_links.sh' >/dev/null 2>&1", c) == 0, "setup_links.sh failed");
    if (!c)
        return;
    static const char *const variants[][2] = {
        {"model.onnx", "outside_target.bin"},     {"model_abs.onnx", "outside_target.bin"},
        {"model_backslash.onnx", "outside_target.bin"}, {"model_directory.onnx", "sub"},
        {"model_hardlink.onnx", "w_hardlink.bin"}, {"model_nul.onnx", "NUL"},
        {"model_parent_symlink.onnx", "linkdir"}, {"model_sub_dotdot.onnx", "outside_target.bin"},
        {"model_symlink.onnx", "w_link.bin"},
    };
    const char *cli = getenv("GRAFT_CLI");
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        const char *m = cu_fmt("%s/%s", c, variants[i][0]);
        printf("-- %s\n", variants[i][0]);
        cu_expect_reject(m, NEEDLES("W", variants[i][1]));
        /* strace: no successful open of anything outside the folder */
        if (cli && *cli && cu_sh("command -v strace >/dev/null") == 0) {
            const char *log = cu_fmt("%s/strace-%zu.txt", w, i);
            cu_sh("strace -f -qq -e trace=open,openat,openat2 -o '%s' '%s' inspect '%s' >/dev/null 2>&1",
                  log, cli, m);
            int hits = cu_sh("grep -E 'outside_target|outside_dir|w_link\\.bin|linkdir/' '%s' | "
                             "grep -vE '= -1 ' | grep -q .", log);
            CU_CHECK(hits != 0, "%s: strace shows a successful open outside the model folder "
                                "(see grep of %s)", variants[i][0], log);
            if (hits == 0)
                cu_sh("grep -E 'outside_target|outside_dir|w_link\\.bin|linkdir/' '%s' | head -3", log);
        }
    }
    printf("-- control\n");
    graft_graph *g = load(cu_fmt("%s/control/model.onnx", c));
    if (g)
        cu_run_all_sets(g, cu_fmt("%s/control", c), tol());
    graft_graph_destroy(g);
    free(c);
}

/* sha256 + listing of every file under root except the folders in keep */
static const char *snapshot(const char *root, const char *tag)
{
    const char *out = cu_keep(cu_fmt("%s/../snap-%s.txt", root, tag));
    cu_sh("cd '%s' && { find . -path './x*' -prune -o -print | LC_ALL=C sort; "
          "find . -path './x*' -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum; "
          "} > '%s'",
          root, out);
    return out;
}

static void b02_export(const char *root, const char *sub, graft_graph *g)
{
    const char *x = cu_fmt("%s/%s", root, sub);
    cu_sh("cp -a '%s/B02_extdata_save_traversal/export_trap' '%s'", root, x);
    const char *out = cu_keep(cu_fmt("%s/out.onnx", x));
    const char *before = snapshot(root, "before");
    graft_onnx_export_options eo = graft_onnx_export_options_default();
    eo.external_threshold = 1; /* force external data */
    graft_error err = {0};
    graft_status st = graft_onnx_export_file(g, out, &eo, &err);
    const char *after = snapshot(root, "after");
    CU_CHECK(cu_sh("cmp -s '%s' '%s'", before, after) == 0,
             "%s: files outside the output dir changed: diff %s %s", sub, before, after);
    if (cu_sh("cmp -s '%s' '%s'", before, after) != 0)
        cu_sh("diff '%s' '%s' | head -5", before, after);
    const char *victim = cu_fmt("%s/outside_victim.bin", root);
    CU_CHECK(cu_sh("echo '83a0855d3e5730311802cdc0c6a47376608d20c391406eab4fa3625d9e115c83  %s' | "
                   "sha256sum -c --quiet >/dev/null 2>&1", victim) == 0,
             "%s: outside_victim.bin was changed", sub);
    if (st != GRAFT_OK) {
        printf("  export refused: %s\n", err.msg);
        cu_check_message(sub, err.msg, NEEDLES(NULL));
        CU_CHECK(strstr(err.msg, x) || strstr(err.msg, ".data") || strstr(err.msg, "out.onnx"),
                 "%s: refusal does not name the existing path: %s", sub, err.msg);
    } else {
        printf("  export written: %s\n", out);
        PY("locations '%s'", out);
        PY("checker '%s'", out);
        graft_graph *h = load(out);
        graft_graph_destroy(h);
    }
}

static void case_B02(void)
{
    const char *root = fresh_dir("b02");
    char *c = ou_copy_case("B02_extdata_save_traversal", root);
    CU_CHECK(c && cu_sh("sh '%s/setup_links.sh' >/dev/null 2>&1", c) == 0, "setup_links.sh failed");
    if (!c)
        return;
    CU_CHECK(cu_sh("test -L '%s/export_trap/out.onnx.data'", c) == 0, "export_trap has no symlinks");
    graft_graph *g = load(cu_fmt("%s/model.onnx", c));
    if (g) {
        cu_run_all_sets(g, c, tol());
        printf("-- plain re-export with external data forced\n");
        b02_export(root, "x1", g);
        printf("-- new head, trained, exported with external data forced\n");
        int64_t d[2] = {4, 4};
        graft_tensor *x = cu_rand_tensor(2, d, 1);
        int64_t lab[4] = {0, 1, 0, 1};
        graft_head_info hi;
        if (head_and_train(g, "Y", 2, x, lab, 4, 1, 4, &hi))
            b02_export(root, "x2", g);
        graft_tensor_destroy(x);
    }
    graft_graph_destroy(g);
    printf("-- model_dotdot_self.onnx\n");
    graft_error err = {0};
    g = cu_import(cu_fmt("%s/model_dotdot_self.onnx", c), &err);
    if (!g) {
        printf("  refused at import: %s\n", err.msg);
        cu_check_message("model_dotdot_self.onnx", err.msg, NEEDLES("W"));
    } else {
        b02_export(root, "x3", g);
        graft_graph_destroy(g);
    }
    free(c);
}

static void reject_all(const char *const *files, const char *const *const *needles)
{
    for (int i = 0; files[i]; i++) {
        printf("-- %s\n", files[i]);
        cu_expect_reject(P(files[i]), needles[i]);
    }
}

static void case_B03a(void)
{
    const char *f[] = {"model.onnx", "model_length_too_big.onnx", "model_length_too_small.onnx",
                       "model_nolength.onnx", "model_offset_garbage.onnx",
                       "model_offset_int64max.onnx", "model_offset_negative.onnx",
                       "model_offset_wraps_uint64.onnx", NULL};
    const char *const *w = NEEDLES("W");
    const char *const *n[8] = {w, w, w, w, w, w, w, w};
    reject_all(f, n);
}

static void case_B04(void)
{
    const char *f[] = {"model.onnx", "model_bytes_wrap.onnx", "model_dims_product_wraps.onnx",
                       "model_float_3bytes.onnx", "model_float_data_3_values.onnx",
                       "model_int64_data_3_values.onnx", "model_negative_dim.onnx",
                       "model_negative_dims_product_ok.onnx", "model_raw_and_float_data.onnx", NULL};
    const char *const *n[] = {NEEDLES("S"), NEEDLES("W"), NEEDLES("W"), NEEDLES("W"), NEEDLES("W"),
                              NEEDLES("S"), NEEDLES("W"), NEEDLES("W"), NEEDLES("W")};
    reject_all(f, n);
}

static void case_B05(void)
{
    /* the nodes have no names: the op type identifies them */
    const char *f[] = {"model.onnx", "model_cin_mismatch.onnx", "model_gemm6_rank0_B_transB823.onnx",
                       "model_group_indivisible.onnx", "model_kernel_shape_mismatch.onnx",
                       "model_pads_len2.onnx", "model_strides_len3.onnx", NULL};
    const char *const *n[] = {NEEDLES("Conv"), NEEDLES("Conv"), NEEDLES("Gemm"), NEEDLES("Conv"),
                              NEEDLES("Conv"), NEEDLES("Conv"), NEEDLES("Conv")};
    reject_all(f, n);
}

/* import + plan with the declared shapes; true if both succeed (err otherwise) */
static bool plans(const graft_graph *g, graft_error *err)
{
    graft_shape sh[16];
    for (int i = 0; i < g->n_inputs && i < 16; i++) {
        const graft_value *v = &g->values[g->inputs[i]];
        sh[i].rank = v->rank < 0 ? 0 : v->rank;
        for (int d = 0; d < sh[i].rank; d++)
            sh[i].dims[d] = v->dims[d] < 0 ? 1 : v->dims[d];
    }
    graft_plan_options o = graft_plan_options_default();
    graft_plan *p = NULL;
    graft_status st = graft_plan_create(g, &o, g->n_inputs, sh, &p, err);
    graft_plan_destroy(p);
    return st == GRAFT_OK;
}

static void case_B06(void)
{
    printf("-- model.onnx\n");
    graft_error err = {0};
    graft_graph *g = cu_import(P("model.onnx"), &err);
    bool refused = !g || !plans(g, &err);
    CU_CHECK(refused, "model.onnx (Loop body input also an initializer) accepted");
    if (refused) {
        printf("  refused: %s\n", err.msg);
        cu_check_message("model.onnx", err.msg, NULL);
        CU_CHECK(cu_has_token(err.msg, "Loop") || cu_has_token(err.msg, "v"),
                 "message names neither op Loop nor the clashing name v: %s", err.msg);
    }
    graft_graph_destroy(g);
    printf("-- control/model.onnx\n");
    memset(&err, 0, sizeof err);
    g = cu_import(P("control/model.onnx"), &err);
    if (g && plans(g, &err)) {
        cu_run_all_sets(g, P("control"), tol());
    } else {
        printf("  refused (no Loop support): %s\n", err.msg);
        cu_check_message("control/model.onnx", err.msg, NEEDLES("Loop"));
    }
    graft_graph_destroy(g);
}

/* ---- import ---------------------------------------------------------------------- */

static void b07(void)
{
    graft_graph *g = sets();
    if (!g)
        return;
    CU_CHECK(g->n_inputs == 1 && strcmp(g->values[g->inputs[0]].name, "X") == 0,
             "want exactly one real input X, got %d", g->n_inputs);
    int32_t w = val(g, "W"), b = val(g, "B");
    if (w >= 0 && b >= 0)
        CU_CHECK(g->values[w].kind == GRAFT_VALUE_INITIALIZER &&
                     g->values[b].kind == GRAFT_VALUE_INITIALIZER,
                 "W and B are not weights");
    graft_head_info hi;
    int64_t d[2] = {1, 8};
    graft_tensor *x = cu_rand_tensor(2, d, 2);
    int64_t lab[1] = {1};
    if (head_and_train(g, "Y", 2, x, lab, 1, 1, 3, &hi)) {
        if (w >= 0 && b >= 0)
            CU_CHECK(!g->values[w].trainable && !g->values[b].trainable,
                     "W/B not frozen though listed in graph.input");
        const char *out = export_file(g, "b07", 0);
        if (out) {
            PY("inputs_rule '%s'", out);
            PY("checker '%s'", out);
        }
    }
    graft_tensor_destroy(x);
    graft_graph_destroy(g);
}
static void case_B07a(void) { b07(); }
static void case_B07b(void) { b07(); }
static void case_B07c(void) { b07(); }

static void case_B08(void)
{
    graft_graph *g = sets();
    if (!g)
        return;
    roundtrip_sets(g);
    int32_t conv = -1;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i].removed && strcmp(g->nodes[i].op_type, "Conv") == 0)
            conv = i;
    CU_CHECK(conv >= 0, "no Conv node");
    int32_t wc = conv >= 0 ? g->nodes[conv].inputs[1] : -1;
    int32_t bc = conv >= 0 && g->nodes[conv].n_inputs > 2 ? g->nodes[conv].inputs[2] : -1;
    int64_t d[2] = {1, 3 * 64};
    (void)d;
    graft_tensor *in[4];
    int n = cu_read_inputs(P("test_data_set_0"), in, 4);
    graft_head_info hi;
    int64_t lab[1] = {0};
    /* the weights count as backbone weights exactly as initializers would
     * (`graft inspect` prints this count) */
    int64_t np = graft_graph_param_count(g, false);
    CU_CHECK(np >= 112, "imported model counts %lld parameters; the Constant-node Conv weight "
             "and bias alone are 112 floats", (long long)np);
    if (n == 1 && head_and_train(g, "Y", 2, in[0], lab, 1, 1, 2, &hi) && wc >= 0 && bc >= 0) {
        int64_t frozen = graft_graph_param_count(g, false) - graft_graph_param_count(g, true);
        CU_CHECK(frozen >= 112, "after freeze %lld frozen backbone parameters, want >= 112 "
                 "(Wc 108 + Bc 4 from Constant nodes)", (long long)frozen);
        CU_CHECK(!g->values[wc].trainable && !g->values[bc].trainable,
                 "Constant-node weights not frozen");
        const char *out = export_file(g, "b08", 0);
        if (out)
            PY("checker '%s'", out);
    }
    for (int i = 0; i < n; i++)
        graft_tensor_destroy(in[i]);
    graft_graph_destroy(g);
}

static void case_B09(void)
{
    graft_graph *g = sets();
    if (!g)
        return;
    roundtrip_sets(g);
    graft_head_info hi;
    graft_tensor *in[4];
    int n = cu_read_inputs(P("test_data_set_0"), in, 4);
    int64_t lab[2] = {0, 1};
    if (n == 1 && head_and_train(g, "Y", 2, in[0], lab, 2, 2, 2, &hi)) {
        const char *names[] = {"Wf", "S", "W2"};
        for (int i = 0; i < 3; i++) {
            int32_t v = graft_graph_find_value(g, names[i]);
            if (v >= 0)
                CU_CHECK(!g->values[v].trainable, "%s trainable after freeze", names[i]);
        }
    }
    for (int i = 0; i < n; i++)
        graft_tensor_destroy(in[i]);
    graft_graph_destroy(g);
}

static void just_sets(void) { graft_graph_destroy(sets()); }
static void case_B10a(void) { just_sets(); }

static void case_B11(void)
{
    graft_error err = {0};
    graft_graph *g = cu_import(P("model.onnx"), &err);
    if (!g) {
        printf("  refused at import: %s\n", err.msg);
        cu_check_message("model.onnx", err.msg, NEEDLES("flatten_reshape"));
        return;
    }
    cu_run_all_sets(g, dir_, tol());
    graft_tensor *in[2];
    int n = cu_read_inputs(P("batch2_if_rewritten"), in, 2);
    if (n == 1) {
        graft_tensor *y = cu_forward(g, 1, in, -1, false, &err);
        if (!y) {
            printf("  batch 2 refused: %s\n", err.msg);
            cu_check_message("batch 2", err.msg, NEEDLES("flatten_reshape"));
        } else {
            cu_compare("batch 2 (rewritten Reshape)", y, P("batch2_if_rewritten/output_0.pb"), tol());
            graft_tensor_destroy(y);
            graft_head_info hi;
            int64_t lab[2] = {0, 1};
            head_and_train(g, NULL, 2, in[0], lab, 2, 2, 3, &hi);
        }
        graft_tensor_destroy(in[0]);
    }
    graft_graph_destroy(g);
}

static void case_B12a(void)
{
    const char *f[] = {"model.onnx", NULL};
    const char *const *n[] = {NEEDLES("Gemm")};
    reject_all(f, n);
}

static void case_B12b(void)
{
    const char *f[] = {"model.onnx", "model_opset6.onnx", NULL};
    for (int i = 0; f[i]; i++) {
        printf("-- %s\n", f[i]);
        cu_expect_reject(P(f[i]), NEEDLES("Gemm"));
        graft_error err = {0};
        graft_graph *g = cu_import(P(f[i]), &err);
        if (!g || !plans(g, &err))
            CU_CHECK(strstr(err.msg, "rank") || strstr(err.msg, "2-D") || strstr(err.msg, "2D"),
                     "%s: message does not say A must be 2-D / rank 4: %s", f[i], err.msg);
        graft_graph_destroy(g);
    }
}

static void case_B13a(void) { just_sets(); }
static void case_B13b(void) { just_sets(); }
static void case_B14a(void) { just_sets(); }
static void case_B14b(void) { just_sets(); }
static void case_B15a(void) { just_sets(); }
static void case_B15b(void) { just_sets(); }

static void case_B15c(void)
{
    const char *f[] = {"model.onnx", NULL};
    const char *const *n[] = {NEEDLES("relu6")};
    reject_all(f, n);
}

static void case_B17(void)
{
    printf("-- model.onnx\n");
    graft_error err = {0};
    graft_graph *g = cu_import(P("model.onnx"), &err);
    if (!g || !plans(g, &err)) {
        printf("  refused: %s\n", err.msg);
        cu_check_message("model.onnx", err.msg, NULL);
        CU_CHECK(cu_has_token(err.msg, "relu") || cu_has_token(err.msg, "T"),
                 "refusal names neither node relu nor value T: %s", err.msg);
    } else {
        cu_run_all_sets(g, dir_, tol());
        const char *out = export_file(g, "b17", 0);
        if (out) {
            PY("topo '%s'", out);
            PY("checker '%s'", out);
        }
        /* and with a new head after the (sorted) backbone */
        graft_head_info hi;
        graft_tensor *in[2];
        if (cu_read_inputs(P("test_data_set_0"), in, 2) == 1) {
            int64_t lab[1] = {1};
            if (head_and_train(g, "Y", 2, in[0], lab, 1, 1, 2, &hi)) {
                out = export_file(g, "b17h", 0);
                if (out)
                    PY("topo '%s'", out);
            }
            graft_tensor_destroy(in[0]);
        }
    }
    graft_graph_destroy(g);
    printf("-- model_cycle.onnx\n");
    cu_expect_reject(P("model_cycle.onnx"), NULL);
    memset(&err, 0, sizeof err);
    g = cu_import(P("model_cycle.onnx"), &err);
    if (!g || !plans(g, &err))
        CU_CHECK(strstr(err.msg, "cycle") || strstr(err.msg, "Cycle"),
                 "model_cycle.onnx: message does not name the cycle: %s", err.msg);
    graft_graph_destroy(g);
}

static void case_B18a(void)
{
    graft_graph *g = sets();
    if (!g)
        return;
    const char *out = export_file(g, "b18a", 0);
    if (out) {
        PY("names '%s'", out);
        PY("checker '%s'", out);
    }
    graft_graph_destroy(g);
}

static void case_B18b(void)
{
    const char *f[] = {"model.onnx", "model_shadow_graph_input.onnx",
                       "model_shadow_initializer.onnx", NULL};
    const char *const *n[] = {NEEDLES("Y", "Relu", "Neg"), NEEDLES("X", "Relu"),
                              NEEDLES("W", "Neg")};
    reject_all(f, n);
}

static void case_B19b(void)
{
    graft_graph *g = sets();
    if (!g)
        return;
    graft_tensor *in[2];
    if (cu_read_inputs(P("test_data_set_0"), in, 2) == 1) {
        graft_head_info hi;
        int64_t lab[1] = {1};
        if (head_and_train(g, "Y", 2, in[0], lab, 1, 1, 3, &hi)) {
            const char *out = export_file(g, "b19b", 0);
            if (out) {
                PY("checker '%s'", out);
                PY("keeps '%s' '%s' W B", out, P("model.onnx"));
                cu_ort_check(out, g, in[0], tol());
            }
        }
        graft_tensor_destroy(in[0]);
    }
    graft_graph_destroy(g);
}

static void case_B21a(void)
{
    graft_error err = {0};
    graft_graph *g = cu_import(P("model.onnx"), &err);
    if (!g || !plans(g, &err)) {
        printf("  refused: %s\n", err.msg);
        cu_check_message("model.onnx", err.msg, NEEDLES("com.microsoft", "FusedConv"));
    } else {
        cu_run_all_sets(g, dir_, tol());
    }
    graft_graph_destroy(g);
}

static void case_B21b(void)
{
    const char *f[] = {"model.onnx", NULL};
    const char *const *n[] = {NEEDLES("_DCNv2", "DetectionOutput")};
    reject_all(f, n);
}

static void case_B22a(void)
{
    graft_graph *g = sets();
    if (!g)
        return;
    graft_feature_info fi;
    graft_error err = {0};
    graft_status st = graft_surgery_find_features(g, &fi, &err);
    CU_CHECK(st != GRAFT_OK, "automatic cut accepted a detection output (picked '%s')",
             st == GRAFT_OK && fi.value >= 0 ? g->values[fi.value].name : "?");
    if (st != GRAFT_OK) {
        printf("  automatic cut refused: %s\n", err.msg);
        cu_check_message("find_features", err.msg, NULL);
    }
    int32_t r1 = -1;
    memset(&err, 0, sizeof err);
    if (graft_surgery_resolve_cut(g, "r1", &r1, &err) != GRAFT_OK) {
        CU_CHECK(0, "--cut r1: %s", err.msg);
    } else {
        graft_head_spec hs = graft_head_spec_default();
        hs.n_classes = 3;
        graft_head_info hi;
        if (graft_surgery_cut_and_attach(g, r1, &hs, &hi, &err) != GRAFT_OK) {
            printf("  cut at r1 refused: %s\n", err.msg);
            cu_check_message("cut r1", err.msg, NEEDLES("r1"));
        } else {
            bool pooled = false;
            for (int32_t i = 0; i < g->n_nodes; i++) {
                const graft_node *nd = &g->nodes[i];
                if (!nd->removed && nd->n_inputs > 0 && nd->inputs[0] == r1 &&
                    (!strcmp(nd->op_type, "GlobalAveragePool") || !strcmp(nd->op_type, "Flatten")))
                    pooled = true;
            }
            CU_CHECK(pooled, "rank-4 cut r1: no pooling/Flatten inserted before the head");
            CU_CHECK(hi.n_features == 8, "head reads %lld features, want 8 (pooled r1)",
                     (long long)hi.n_features);
        }
    }
    graft_graph_destroy(g);
}

static void case_B22b(void)
{
    graft_graph *g = sets();
    if (!g)
        return;
    graft_feature_info fi;
    graft_error err = {0};
    if (graft_surgery_find_features(g, &fi, &err) == GRAFT_OK) {
        printf("  automatic cut: %s (%s)\n", g->values[fi.value].name, fi.reason);
        CU_CHECK(fi.value == graft_graph_find_value(g, "emb"),
                 "automatic cut picked '%s', not the embedding output", g->values[fi.value].name);
    } else {
        printf("  automatic cut refused: %s\n", err.msg);
        cu_check_message("find_features", err.msg, NULL);
    }
    int n_before = 0, n_after = 0;
    for (int32_t i = 0; i < g->n_nodes; i++)
        n_before += !g->nodes[i].removed;
    graft_head_info hi;
    memset(&err, 0, sizeof err);
    if (cu_reheat(g, "emb", 3, 1, &hi, &err) != GRAFT_OK) {
        CU_CHECK(0, "head after emb: %s", err.msg);
    } else {
        for (int32_t i = 0; i < g->n_nodes; i++)
            if (!g->nodes[i].removed && i < hi.first_head_node)
                n_after++;
        const char *ops[] = {"Conv", "GlobalAveragePool", "Flatten"};
        for (int k = 0; k < 3; k++) {
            bool found = false;
            for (int32_t i = 0; i < g->n_nodes; i++)
                found |= !g->nodes[i].removed && !strcmp(g->nodes[i].op_type, ops[k]) &&
                         g->nodes[i].n_outputs > 0 &&
                         g->values[g->nodes[i].outputs[0]].name[0] != 0 &&
                         graft_graph_find_value(g, "emb") >= 0;
            CU_CHECK(found, "backbone layer %s removed", ops[k]);
        }
        graft_tensor *in[2];
        if (cu_read_inputs(P("test_data_set_0"), in, 2) == 1) {
            graft_tensor *f = cu_forward(g, 1, in, hi.head_input, false, &err);
            CU_CHECK(f != NULL, "features of the new head: %s", err.msg);
            if (f)
                cu_compare("features seen by the head", f, P("test_data_set_0/output_0.pb"), tol());
            graft_tensor_destroy(f);
            graft_tensor_destroy(in[0]);
        }
    }
    (void)n_before;
    (void)n_after;
    graft_graph_destroy(g);
}

static void case_B23a(void)
{
    graft_error err = {0};
    graft_graph *g = cu_import(P("model.onnx"), &err);
    if (!g || !plans(g, &err)) {
        printf("  refused: %s\n", err.msg);
        cu_check_message("model.onnx", err.msg, NEEDLES("If"));
    } else {
        cu_run_all_sets(g, dir_, tol());
        const char *out = export_file(g, "b23a", 0);
        if (out) {
            PY("keeps '%s' '%s' Wouter", out, P("model.onnx"));
            PY("checker '%s'", out);
        }
    }
    graft_graph_destroy(g);
}

static void case_B24(void)
{
    const char *f[] = {"model_ir0.onnx", "model_ir99.onnx", "model_no_ir_version.onnx",
                       "model_no_opset_import.onnx", "model_opset99.onnx", NULL};
    const char *const *n[5] = {NULL, NULL, NULL, NULL, NULL};
    reject_all(f, n);
    printf("-- model.onnx (opset 3)\n");
    graft_error err = {0};
    graft_graph *g = cu_import(P("model.onnx"), &err);
    if (!g || !plans(g, &err)) {
        printf("  refused: %s\n", err.msg);
        cu_check_message("model.onnx", err.msg, NEEDLES("3"));
    } else {
        float xv[4] = {-1, 0.5f, 2, -3};
        int64_t d[2] = {1, 4};
        graft_tensor *x = NULL;
        graft_tensor_attach(GRAFT_FLOAT, 2, d, xv, &x, &err);
        graft_tensor *y = cu_forward(g, 1, &x, -1, false, &err);
        CU_CHECK(y && graft_tensor_f32(y)[0] == 0 && graft_tensor_f32(y)[1] == 0.5f &&
                     graft_tensor_f32(y)[2] == 2 && graft_tensor_f32(y)[3] == 0,
                 "opset-3 Relu accepted but wrong");
        graft_tensor_destroy(y);
        graft_tensor_destroy(x);
    }
    graft_graph_destroy(g);
}

/* ---- train / export ------------------------------------------------------------- */

static const char *const bn_backbone[] = {"W1", "b1", "bn_scale", "bn_B", "bn_mean", "bn_var"};

/* feat for features/set_batch{1,8} equals the stored output_0 (and Y output_1 before training) */
static void bn_features(const graft_graph *g, const char *feat, bool with_y)
{
    const char *sets[] = {"features/set_batch1", "features/set_batch8"};
    graft_tensor *rows[2] = {NULL, NULL};
    for (int s = 0; s < 2; s++) {
        graft_tensor *in[2];
        if (cu_read_inputs(P(sets[s]), in, 2) != 1)
            continue;
        graft_error err = {0};
        graft_tensor *f = cu_forward(g, 1, in, graft_graph_find_value(g, feat), false, &err);
        CU_CHECK(f != NULL, "%s: %s", sets[s], err.msg);
        if (f) {
            cu_tol t = {0, 0, false, 1e-6}; /* EXPECT: |diff| <= 1e-6 */
            cu_compare(cu_fmt("%s feat", sets[s]), f, P(cu_fmt("%s/output_0.pb", sets[s])), &t);
            rows[s] = f;
        }
        if (with_y) {
            graft_tensor *y = cu_forward(g, 1, in, -1, false, &err);
            if (y)
                cu_compare(cu_fmt("%s Y", sets[s]), y, P(cu_fmt("%s/output_1.pb", sets[s])), tol());
            graft_tensor_destroy(y);
        }
        graft_tensor_destroy(in[0]);
    }
    if (rows[0] && rows[1]) {
        int64_t k = rows[0]->dims[1];
        double d = 0;
        for (int64_t j = 0; j < k; j++)
            d = fmax(d, fabs(graft_tensor_f32(rows[0])[j] - graft_tensor_f32(rows[1])[j]));
        CU_CHECK(d <= 1e-6, "feat row 0 of batch 8 differs from batch 1 by %.3g", d);
    }
    graft_tensor_destroy(rows[0]);
    graft_tensor_destroy(rows[1]);
}

static bool train_data(graft_tensor **x, int64_t **labels, int64_t *n)
{
    *x = read_pb(P("train_data/input_0.pb"));
    graft_tensor *l = read_pb(P("train_data/input_1.pb"));
    if (!*x || !l)
        return false;
    *n = graft_tensor_nelem(l);
    *labels = malloc(sizeof(int64_t) * (size_t)*n);
    memcpy(*labels, l->data, sizeof(int64_t) * (size_t)*n);
    graft_tensor_destroy(l);
    return true;
}

static void bn_case(bool b26)
{
    graft_graph *g = sets();
    graft_graph *orig = load(P("model.onnx"));
    if (!g || !orig)
        goto out;
    bn_features(g, "feat", true);
    float *snap[6] = {0};
    for (int i = 0; i < 6; i++) {
        int32_t v = val(g, bn_backbone[i]);
        if (v >= 0 && g->values[v].data) {
            size_t nb = sizeof(float) * (size_t)graft_tensor_nelem(g->values[v].data);
            snap[i] = malloc(nb);
            memcpy(snap[i], g->values[v].data->data, nb);
        }
    }
    graft_feature_info fi;
    graft_error err = {0};
    if (graft_surgery_find_features(g, &fi, &err) != GRAFT_OK)
        CU_CHECK(0, "automatic cut: %s", err.msg);
    else
        CU_CHECK(fi.value == graft_graph_find_value(g, "feat"), "automatic cut at '%s', want feat",
                 g->values[fi.value].name);
    graft_tensor *x = NULL;
    int64_t *lab = NULL, n = 0;
    graft_head_info hi;
    if (!train_data(&x, &lab, &n))
        goto out;
    if (cu_reheat(g, NULL, 2, 5, &hi, &err) != GRAFT_OK) {
        CU_CHECK(0, "re-heading: %s", err.msg);
        goto out2;
    }
    only_head_trainable(g, orig);
    for (int i = 0; i < 6; i++) {
        int32_t v = graft_graph_find_value(g, bn_backbone[i]);
        if (v >= 0)
            CU_CHECK(!g->values[v].trainable && !g->values[v].needs_grad,
                     "%s trainable or needs_grad after freeze", bn_backbone[i]);
    }
    if (!b26) {
        /* optimizer state: graft's own trainer (internal API: the public one
         * only takes image data sets) holds moments only for head parameters */
        graft__trainer tr;
        memset(&tr, 0, sizeof tr);
        graft_train_config tc = graft_train_config_default();
        tc.optimizer = GRAFT_OPT_ADAM;
        graft_shape fs = {x->rank, {0}};
        memcpy(fs.dims, x->dims, sizeof fs.dims);
        if (graft__trainer_init(&tr, g, g->inputs[0], hi.logits, &fs, &tc, &err) != GRAFT_OK) {
            CU_CHECK(0, "graft__trainer_init: %s", err.msg);
        } else {
            int32_t lab32[64];
            for (int64_t i = 0; i < n && i < 64; i++)
                lab32[i] = (int32_t)lab[i];
            double ls = 0;
            CU_CHECK(graft__trainer_grad(&tr, x, lab32, n, &ls, NULL, &err) == GRAFT_OK,
                     "graft__trainer_grad: %s", err.msg);
            graft__trainer_update(&tr);
            printf("  graft's trainer holds %d parameters:", tr.n_params);
            for (int i = 0; i < tr.n_params; i++) {
                const graft_value *pv = &g->values[tr.params[i].value];
                printf(" %s", pv->name);
                CU_CHECK(graft_graph_find_value(orig, pv->name) < 0,
                         "optimizer state for backbone tensor %s", pv->name);
            }
            printf("\n");
            CU_CHECK(tr.n_params == 2, "%d optimizer parameters, want 2 (head weight and bias)",
                     tr.n_params);
            graft__trainer_fini(&tr);
        }
    }
    if (b26) {
        /* (3) in a training-mode plan, feat of train_data uses the stored statistics */
        int32_t f = val(g, "feat");
        graft_tensor *tf = cu_forward(g, 1, &x, f, true, &err);
        CU_CHECK(tf != NULL, "training-mode features: %s", err.msg);
        if (tf) {
            cu_compare("train_data feat in training mode", tf,
                       P("features/feat_train_data_stored_stats.pb"), tol());
            graft_tensor *wrong = read_pb(P("features/WRONG_if_batch_stats_on_train_data.pb"));
            if (wrong) {
                double d = 0;
                for (int64_t i = 0; i < graft_tensor_nelem(wrong) && i < graft_tensor_nelem(tf); i++)
                    d = fmax(d, fabs(graft_tensor_f32(wrong)[i] - graft_tensor_f32(tf)[i]));
                CU_CHECK(d > 1e-3, "train_data feat equals the batch-statistics result");
            }
            graft_tensor_destroy(wrong);
            graft_tensor_destroy(tf);
        }
    }
    double loss = cu_train(g, &hi, x, lab, n, 8, 5, 0.1f, &err);
    CU_CHECK(!isnan(loss), "training: %s", err.msg);
    printf("  5 steps at batch 8, last loss %.4f\n", loss);
    for (int i = 0; i < 6; i++) {
        int32_t v = graft_graph_find_value(g, bn_backbone[i]);
        if (v >= 0 && snap[i] && g->values[v].data)
            CU_CHECK(memcmp(snap[i], g->values[v].data->data,
                            sizeof(float) * (size_t)graft_tensor_nelem(g->values[v].data)) == 0,
                     "%s changed by training", bn_backbone[i]);
    }
    if (b26)
        bn_features(g, "feat", false);
    const char *out = export_file(g, b26 ? "b26" : "b25", 0);
    if (out) {
        PY("sha '%s' '%s'", out, P("backbone_sha256.json"));
        PY("checker '%s'", out);
        PY("no_training '%s'", out);
        cu_ort_check(out, g, x, tol());
        if (b26) {
            graft_graph *h = load(out);
            if (h)
                bn_features(h, "feat", false);
            graft_graph_destroy(h);
        }
    }
out2:
    graft_tensor_destroy(x);
    free(lab);
    for (int i = 0; i < 6; i++)
        free(snap[i]);
out:
    graft_graph_destroy(g);
    graft_graph_destroy(orig);
}

static void case_B25(void) { bn_case(false); }
static void case_B26(void) { bn_case(true); }

static void case_B27a(void)
{
    graft_error err = {0};
    graft_graph *g = cu_import(P("model.onnx"), &err);
    if (!g || !plans(g, &err)) {
        printf("  refused: %s\n", err.msg);
        cu_check_message("model.onnx", err.msg, NEEDLES("bn"));
    } else {
        printf("  accepted: must run the inference form\n");
        cu_run_set(g, P("inference_form_expected"), tol());
        const char *out = export_file(g, "b27a", 0);
        if (out)
            PY("no_training '%s'", out);
    }
    graft_graph_destroy(g);
}

static void case_B28a(void)
{
    graft_graph *g = load(P("model.onnx"));
    if (!g)
        return;
    for (int k = 0; k < 2; k++)
        cu_run_set(g, P("tool_expected"), tol());
    graft_tensor *in[2];
    if (cu_read_inputs(P("tool_expected"), in, 2) == 1) {
        graft_error err = {0};
        for (int k = 0; k < 3; k++) {
            graft_tensor *y = cu_forward(g, 1, in, g->outputs[0], true, &err);
            CU_CHECK(y != NULL, "training-mode run: %s", err.msg);
            if (y)
                cu_compare("Y in a training-mode plan (frozen backbone Dropout)", y,
                           P("tool_expected/output_0.pb"), tol());
            graft_tensor_destroy(y);
        }
        graft_tensor_destroy(in[0]);
    }
    const char *out = export_file(g, "b28a", 0);
    if (out)
        PY("no_training '%s'", out);
    graft_graph_destroy(g);
}

static void case_B28b(void) { just_sets(); }
static void case_B28c(void) { just_sets(); }

static void case_B29a(void)
{
    graft_graph *g = sets();
    graft_graph *orig = load(P("model.onnx"));
    if (g && orig) {
        int64_t d[2] = {6, 8};
        graft_tensor *x = cu_rand_tensor(2, d, 9);
        int64_t *lab = rand_labels(6, 3);
        graft_head_info hi;
        if (head_and_train(g, NULL, 3, x, lab, 6, 3, 5, &hi)) {
            only_head_trainable(g, orig);
            const char *out = export_file(g, "b29a", 0);
            if (out) {
                PY("checker '%s'", out);
                cu_ort_check(out, g, x, tol());
            }
        }
        graft_tensor_destroy(x);
        free(lab);
    }
    graft_graph_destroy(g);
    graft_graph_destroy(orig);
}

static bool ort_ok(void)
{
    const char *o = getenv("GRAFT_ORT_DIR");
    return o && *o && cu_exists(cu_fmt("%s/node_modules/onnxruntime-node", o)) &&
           cu_sh("command -v node >/dev/null") == 0;
}

/* B30: trains, exports; returns the export's path */
static const char *b30_train_export(graft_graph *g, const graft_tensor *x, const int64_t *lab,
                                    int64_t n, const char *tag, graft_tensor **probs)
{
    graft_head_info hi;
    if (!head_and_train(g, NULL, 3, x, lab, n, 6, 10, &hi))
        return NULL;
    graft_error err = {0};
    graft_tensor *xs[1] = {(graft_tensor *)x};
    *probs = cu_forward(g, 1, xs, -1, false, &err);
    CU_CHECK(*probs != NULL, "%s: inference after training: %s", tag, err.msg);
    return export_file(g, tag, 0);
}

static void case_B30(void)
{
    graft_graph *g = sets();
    if (!g)
        return;
    graft_tensor *x = NULL, *p1 = NULL, *p2 = NULL, *e1 = NULL;
    int64_t *lab = NULL, n = 0;
    graft_error err = {0};
    if (!train_data(&x, &lab, &n))
        goto out;
    const char *out = b30_train_export(g, x, lab, n, "b30", &p1);
    if (out) {
        PY("b30 '%s' 3", out);
        PY("checker '%s'", out);
        graft_graph *h = load(out);
        if (h && p1) {
            e1 = cu_forward(h, 1, &x, -1, false, &err);
            CU_CHECK(e1 != NULL, "exported model: %s", err.msg);
            if (e1) {
                const char *ref = cu_fmt("%s/graft_probs.pb", cu_work());
                graft_onnx_write_tensor_file(ref, p1, GRAFT_DTYPE_UNDEFINED, "p", &err);
                cu_compare("exported model vs in-memory graph", e1, ref, tol());
                if (ort_ok()) {
                    const char *xin = cu_fmt("%s/b30_x.pb", cu_work());
                    graft_onnx_write_tensor_file(xin, x, GRAFT_FLOAT, "X", &err);
                    const char *od = cu_fmt("%s/b30_ort", cu_work());
                    const char *src = getenv("GRAFT_SOURCE_DIR");
                    int rc = cu_sh("mkdir -p '%s' && NODE_PATH='%s/node_modules' node "
                                   "'%s/tests/e2e/ort_run.js' '%s' '%s' '%s'",
                                   od, getenv("GRAFT_ORT_DIR"), src ? src : ".", out, od, xin);
                    CU_CHECK(rc == 0, "ONNX Runtime could not run the export");
                    if (rc == 0) {
                        graft_tensor *o = read_pb(cu_fmt("%s/output_0.pb", od));
                        if (o)
                            cu_compare("graft vs ONNX Runtime on the export", p1,
                                       cu_fmt("%s/output_0.pb", od), tol());
                        graft_tensor_destroy(o);
                        printf("  ONNX Runtime ran the export; compared with graft's inference\n");
                    }
                } else {
                    printf("  (ONNX Runtime not installed: ORT cross-check skipped)\n");
                }
            }
        }
        graft_graph_destroy(h);
    }
    /* the same from an in-memory buffer */
    size_t len = 0;
    char *buf = cu_slurp(P("model.onnx"), &len);
    graft_graph *m = NULL;
    if (!buf || graft_onnx_import_buffer(buf, len, "B30 buffer", NULL, NULL, &m, &err) != GRAFT_OK) {
        CU_CHECK(0, "import from memory: %s", err.msg);
    } else {
        const char *out2 = b30_train_export(m, x, lab, n, "b30mem", &p2);
        if (out2) {
            PY("b30 '%s' 3", out2);
            PY("checker '%s'", out2);
        }
        uint8_t *eb = NULL;
        size_t el = 0;
        CU_CHECK(graft_onnx_export_buffer(m, NULL, &eb, &el, &err) == GRAFT_OK,
                 "export to memory: %s", err.msg);
        free(eb);
        if (p1 && p2)
            CU_CHECK(memcmp(p1->data, p2->data, p1->nbytes) == 0,
                     "file-loaded and buffer-loaded runs trained differently");
    }
    free(buf);
    graft_graph_destroy(m);
out:
    graft_tensor_destroy(x);
    graft_tensor_destroy(p1);
    graft_tensor_destroy(p2);
    graft_tensor_destroy(e1);
    free(lab);
    graft_graph_destroy(g);
}

static void case_B31(void)
{
    graft_graph *g = sets();
    if (!g)
        return;
    const char *out = export_file(g, "b31", 1 << 20);
    if (out) {
        PY("b31 '%s' ace8fee53e156e853c47dc49285007b6ff5d7b53eddc93e21c730b00f1c889b2", out);
        graft_graph *h = load(out);
        if (h) {
            printf("  reloaded from its path\n");
            cu_run_all_sets(h, dir_, tol());
        }
        graft_graph_destroy(h);
        size_t len = 0;
        char *buf = cu_slurp(out, &len);
        char *base = strdup(out);
        *strrchr(base, '/') = 0;
        graft_error err = {0};
        graft_graph *m = NULL;
        if (!buf || graft_onnx_import_buffer(buf, len, "b31 export", base, NULL, &m, &err) != GRAFT_OK) {
            CU_CHECK(0, "reload from memory with base dir: %s", err.msg);
        } else {
            printf("  reloaded from memory with its base dir\n");
            cu_run_all_sets(m, dir_, tol());
        }
        graft_graph_destroy(m);
        free(buf);
        free(base);
    }
    /* a new head trained on the frozen backbone, exported the same way */
    int64_t d[2] = {4, 1024};
    graft_tensor *x = cu_rand_tensor(2, d, 8);
    int64_t lab[4] = {0, 1, 2, 1};
    graft_head_info hi;
    if (head_and_train(g, NULL, 3, x, lab, 4, 2, 3, &hi)) {
        out = export_file(g, "b31h", 1 << 20);
        if (out)
            PY("b31 '%s' ace8fee53e156e853c47dc49285007b6ff5d7b53eddc93e21c730b00f1c889b2", out);
    }
    graft_tensor_destroy(x);
    /* a write error is reported, not swallowed, and leaves nothing behind */
    const char *ro = fresh_dir("b31ro");
    if (ro && geteuid() != 0) {
        cu_sh("chmod a-w '%s'", ro);
        graft_onnx_export_options eo = graft_onnx_export_options_default();
        eo.external_threshold = 1 << 20;
        graft_error err = {0};
        const char *p = cu_keep(cu_fmt("%s/model.onnx", ro));
        CU_CHECK(graft_onnx_export_file(g, p, &eo, &err) != GRAFT_OK,
                 "export into a read-only folder reported success");
        cu_check_message("export into a read-only folder", err.msg, NULL);
        cu_sh("chmod u+w '%s'", ro);
    }
    {
        graft_onnx_export_options eo = graft_onnx_export_options_default();
        eo.external_threshold = 1 << 20;
        graft_error err = {0};
        const char *p = cu_fmt("%s/no/such/dir/model.onnx", cu_work());
        CU_CHECK(graft_onnx_export_file(g, p, &eo, &err) != GRAFT_OK,
                 "export into a missing folder reported success");
        cu_check_message("export into a missing folder", err.msg, NULL);
        CU_CHECK(strstr(err.msg, "no/such/dir") != NULL, "write error does not name the path: %s",
                 err.msg);
    }
    graft_graph_destroy(g);
}

static void head_export_case(const char *tag, int k, const char *check)
{
    graft_graph *g = sets();
    if (!g)
        return;
    const graft_value *xv = &g->values[g->inputs[0]];
    int64_t d[GRAFT_MAX_RANK];
    for (int i = 0; i < xv->rank; i++)
        d[i] = xv->dims[i] < 0 ? 4 : xv->dims[i];
    graft_tensor *x = cu_rand_tensor(xv->rank, d, 11);
    int64_t *lab = rand_labels(d[0], k);
    graft_head_info hi;
    if (head_and_train(g, NULL, k, x, lab, d[0], (int)d[0], 4, &hi)) {
        const char *out = export_file(g, tag, 0);
        if (out) {
            PY("%s '%s'", check, out);
            PY("checker '%s'", out);
            cu_ort_check(out, g, x, tol());
        }
    }
    graft_tensor_destroy(x);
    free(lab);
    graft_graph_destroy(g);
}

static void case_B32(void) { head_export_case("b32", 3, "b32"); }
static void case_B33(void) { head_export_case("b33", 2, "b33"); }

static void case_B34a(void)
{
    graft_graph *g = sets();
    if (!g)
        return;
    const char *out = export_file(g, "b34", 0);
    if (out)
        PY("b34_plain '%s' '%s'", out, P("model.onnx"));
    graft_tensor *in[2];
    if (cu_read_inputs(P("test_data_set_0"), in, 2) == 1) {
        graft_head_info hi;
        int64_t lab[2] = {0, 1};
        graft_error err = {0};
        if (cu_reheat(g, "H", 2, 1, &hi, &err) != GRAFT_OK) {
            CU_CHECK(0, "head at H: %s", err.msg);
        } else {
            int32_t e = val(g, "E");
            if (e >= 0)
                CU_CHECK(!g->values[e].trainable, "tied E is trainable after re-heading");
            double loss = cu_train(g, &hi, in[0], lab, 2, 2, 4, 0.1f, &err);
            CU_CHECK(!isnan(loss), "training the new head on H: %s", err.msg);
            out = export_file(g, "b34h", 0);
            if (out)
                PY("b34_rehead '%s' '%s'", out, P("model.onnx"));
        }
        graft_tensor_destroy(in[0]);
    }
    graft_graph_destroy(g);
}

static void case_E01(void) { just_sets(); }

static void case_E02(void)
{
    graft_graph *g = sets();
    if (!g)
        return;
    const char *out = export_file(g, "e02", 0);
    if (out)
        PY("e02 '%s'", out);
    graft_graph_destroy(g);
}

static void case_E04a(void) { just_sets(); }
static void case_E04c(void) { just_sets(); }

static void case_E05(void)
{
    graft_graph *g = sets();
    if (!g)
        return;
    graft_feature_info fi;
    graft_error err = {0};
    if (graft_surgery_find_features(g, &fi, &err) != GRAFT_OK) {
        CU_CHECK(0, "automatic cut: %s", err.msg);
    } else {
        CU_CHECK(fi.value == graft_graph_find_value(g, "X"), "automatic cut at %s, want X",
                 g->values[fi.value].name);
        graft_head_spec hs = graft_head_spec_default();
        hs.n_classes = 4;
        graft_head_info hi;
        if (graft_surgery_cut_and_attach(g, fi.value, &hs, &hi, &err) != GRAFT_OK)
            CU_CHECK(0, "re-heading: %s", err.msg);
        else
            CU_CHECK(hi.n_features == 6, "new head reads %lld features, want 6",
                     (long long)hi.n_features);
    }
    graft_graph_destroy(g);
}

static void case_E06(void) { just_sets(); }

static void case_E07a(void)
{
    graft_graph *g = sets();
    if (!g)
        return;
    graft_tensor *a[2], *b[2];
    graft_error err = {0};
    if (cu_read_inputs(P("test_data_set_0"), a, 2) == 1 && cu_read_inputs(P("test_data_set_1"), b, 2) == 1) {
        graft_tensor *ya = cu_forward(g, 1, a, -1, false, &err);
        graft_tensor *yb = cu_forward(g, 1, b, -1, false, &err);
        if (ya && yb)
            CU_CHECK(memcmp(ya->data, yb->data, sizeof(float) * 5) == 0,
                     "row 0 at N=3 differs from N=1");
        graft_tensor_destroy(ya);
        graft_tensor_destroy(yb);
        graft_tensor_destroy(a[0]);
        graft_tensor_destroy(b[0]);
    }
    int64_t d[4] = {6, 3, 4, 4};
    graft_tensor *x = cu_rand_tensor(4, d, 4);
    int64_t *lab = rand_labels(6, 2);
    graft_head_info hi;
    if (head_and_train(g, NULL, 2, x, lab, 6, 3, 6, &hi)) {
        const char *out = export_file(g, "e07a", 0);
        if (out) {
            PY("symbolic_batch '%s'", out);
            PY("checker '%s'", out);
            cu_ort_check(out, g, x, tol()); /* at N=6: the export keeps the batch symbolic */
        }
    }
    graft_tensor_destroy(x);
    free(lab);
    graft_graph_destroy(g);
}

static void case_E07b(void)
{
    graft_graph *g = sets();
    if (!g)
        return;
    int64_t d[4] = {3, 3, 4, 4};
    graft_tensor *x = cu_rand_tensor(4, d, 5);
    graft_error err = {0};
    graft_tensor *y = cu_forward(g, 1, &x, -1, false, &err);
    if (!y) {
        printf("  N=3 refused: %s\n", err.msg);
        cu_check_message("N=3", err.msg, NEEDLES("X"));
    } else {
        /* relaxed: every row must be that sample's own batch-1 result */
        printf("  N=3 accepted (batch relaxed): checking per-sample rows\n");
        for (int s = 0; s < 3; s++) {
            int64_t d1[4] = {1, 3, 4, 4};
            graft_tensor *one = NULL;
            graft_tensor_attach(GRAFT_FLOAT, 4, d1, graft_tensor_f32(x) + s * 48, &one, &err);
            graft_tensor *y1 = cu_forward(g, 1, &one, -1, false, &err);
            if (y1)
                CU_CHECK(memcmp(graft_tensor_f32(y) + s * 5, y1->data, sizeof(float) * 5) == 0,
                         "N=3 row %d differs from that sample at N=1", s);
            graft_tensor_destroy(y1);
            graft_tensor_destroy(one);
        }
        graft_tensor_destroy(y);
    }
    int64_t *lab = rand_labels(3, 2);
    graft_head_info hi;
    /* head training at batch 1 as declared */
    if (head_and_train(g, NULL, 2, x, lab, 3, 1, 6, &hi)) {
        const char *out = export_file(g, "e07b", 0);
        if (out) {
            PY("fixed_batch1 '%s'", out);
            PY("checker '%s'", out);
        }
    }
    graft_tensor_destroy(x);
    free(lab);
    graft_graph_destroy(g);
}

static void case_E08(void) { just_sets(); }

/* ---- table ----------------------------------------------------------------------- */

typedef struct {
    const char *id;
    void (*fn)(void);
} entry;

#define E(x) {#x, case_##x}
static const entry table[] = {
    E(B01),  E(B02),  E(B03a), E(B04),  E(B05),  E(B06),  E(B07a), E(B07b), E(B07c), E(B08),
    E(B09),  E(B10a), E(B11),  E(B12a), E(B12b), E(B13a), E(B13b), E(B14a), E(B14b), E(B15a),
    E(B15b), E(B15c), E(B17),  E(B18a), E(B18b), E(B19b), E(B21a), E(B21b), E(B22a), E(B22b),
    E(B23a), E(B24),  E(B25),  E(B26),  E(B27a), E(B28a), E(B28b), E(B28c), E(B29a), E(B30),
    E(B31),  E(B32),  E(B33),  E(B34a), E(E01),  E(E02),  E(E04a), E(E04c), E(E05),  E(E06),
    E(E07a), E(E07b), E(E08),
};

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc != 2) {
        fprintf(stderr, "usage: graft_cases ID | --list\n");
        return 2;
    }
    if (!strcmp(argv[1], "--list")) {
        for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
            printf("%s\n", table[i].id);
        return 0;
    }
    if (!cu_shared()) {
        printf("SKIP: GRAFT_SHARED_DIR (%s) does not hold cases/ and models/\n",
               getenv("GRAFT_SHARED_DIR") ? getenv("GRAFT_SHARED_DIR") : "unset");
        return 77;
    }
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].id, argv[1]) != 0)
            continue;
        dir_ = cu_case_dir(argv[1]);
        if (!dir_) {
            printf("FAIL: case folder %s_* not found\n", argv[1]);
            return 1;
        }
        printf("case %s: %s\n", argv[1], dir_);
        table[i].fn();
        return cu_finish(argv[1]);
    }
    fprintf(stderr, "unknown case %s\n", argv[1]);
    return 2;
}
