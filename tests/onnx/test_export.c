/* Export tests: import -> export -> import gives the same graph with
 * bit-identical tensors; the export passes onnx.checker(full_check) and keeps
 * the source's initializer bytes, metadata, versions (checked by
 * check_export.py with the onnx package); external data, the B02 symlink
 * trap, and failed exports that must leave nothing behind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx_util.h"
#include "passes_util.h"
#include "testutil.h"

static char *tmp_root;

static graft_graph *load_ok(const char *path)
{
    graft_graph *g = NULL;
    graft_error err = {0};
    if (graft_onnx_import_file(path, NULL, &g, &err))
        fail_msg("import %s failed: %s", path, err.msg);
    return g;
}

static void export_ok(const graft_graph *g, const char *path, size_t threshold)
{
    graft_onnx_export_options o = graft_onnx_export_options_default();
    o.external_threshold = threshold;
    graft_error err = {0};
    if (graft_onnx_export_file(g, path, &o, &err))
        fail_msg("export %s failed: %s", path, err.msg);
}

/* onnx.checker.check_model(full_check=True) accepts path (when python3-onnx is there) */
static void assert_checker_accepts(const char *path)
{
    const char *py = ou_python();
    if (py)
        assert_int_equal(ou_sh("'%s' -c \"import onnx,sys; onnx.checker.check_model(sys.argv[1], "
                               "full_check=True)\" '%s'",
                               py, path),
                         0);
}

static const graft_value *find(const graft_graph *g, const char *name)
{
    int32_t v = graft_graph_find_value(g, name);
    return v >= 0 ? &g->values[v] : NULL;
}

static bool used(const graft_graph *g, int32_t v)
{
    for (int32_t i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] == v)
                return true;
    return g->values[v].is_graph_output;
}

/* Same structure, same tensors bit for bit. Initializers that no node uses
 * may be dropped by the export. */
static void assert_same_graph(const graft_graph *a, const graft_graph *b)
{
    assert_int_equal(a->n_inputs, b->n_inputs);
    for (int32_t k = 0; k < a->n_inputs; k++)
        assert_string_equal(a->values[a->inputs[k]].name, b->values[b->inputs[k]].name);
    assert_int_equal(a->n_outputs, b->n_outputs);
    for (int32_t k = 0; k < a->n_outputs; k++)
        assert_string_equal(a->values[a->outputs[k]].name, b->values[b->outputs[k]].name);
    assert_int_equal(a->n_nodes, b->n_nodes);
    for (int32_t i = 0; i < a->n_nodes; i++) {
        const graft_node *x = &a->nodes[i], *y = &b->nodes[i];
        assert_string_equal(x->op_type, y->op_type);
        assert_string_equal(x->domain, y->domain);
        assert_int_equal(x->opset, y->opset);
        /* the export's inference form: Dropout loses training_mode (and a
         * then-trailing omitted ratio) */
        int x_inputs = x->n_inputs;
        if (!strcmp(x->op_type, "Dropout") && x_inputs > 2) {
            x_inputs = 2;
            while (x_inputs > 1 && x->inputs[x_inputs - 1] < 0)
                x_inputs--;
        }
        assert_int_equal(x_inputs, y->n_inputs);
        assert_int_equal(x->n_outputs, y->n_outputs);
        for (int k = 0; k < x_inputs; k++) {
            assert_int_equal(x->inputs[k] < 0, y->inputs[k] < 0);
            if (x->inputs[k] >= 0)
                assert_string_equal(a->values[x->inputs[k]].name, b->values[y->inputs[k]].name);
        }
        for (int k = 0; k < x->n_outputs; k++)
            if (x->outputs[k] >= 0)
                assert_string_equal(a->values[x->outputs[k]].name,
                                    b->values[y->outputs[k]].name);
        assert_int_equal(x->n_attrs, y->n_attrs);
        for (int k = 0; k < x->n_attrs; k++) {
            assert_string_equal(x->attrs[k].name, y->attrs[k].name);
            assert_int_equal(x->attrs[k].type, y->attrs[k].type);
            assert_int_equal(x->attrs[k].source_pb_len, y->attrs[k].source_pb_len);
            assert_memory_equal(x->attrs[k].source_pb, y->attrs[k].source_pb,
                                x->attrs[k].source_pb_len);
        }
    }
    for (int32_t v = 0; v < a->n_values; v++) {
        const graft_value *x = &a->values[v];
        if (x->kind != GRAFT_VALUE_INITIALIZER || !used(a, v))
            continue;
        const graft_value *y = find(b, x->name);
        if (!y)
            fail_msg("initializer %s lost", x->name);
        assert_int_equal(y->kind, GRAFT_VALUE_INITIALIZER);
        assert_int_equal(x->source_dtype, y->source_dtype);
        assert_int_equal(x->data->dtype, y->data->dtype);
        assert_int_equal(x->data->rank, y->data->rank);
        assert_memory_equal(x->data->dims, y->data->dims, sizeof x->data->dims);
        assert_int_equal(x->data->nbytes, y->data->nbytes);
        assert_memory_equal(x->data->data, y->data->data, x->data->nbytes);
        if (x->source_pb && y->source_pb) {
            assert_int_equal(x->source_pb_len, y->source_pb_len);
            assert_memory_equal(x->source_pb, y->source_pb, x->source_pb_len);
        }
    }
}

static void check_py(const char *src, const char *out, const char *extra)
{
    const char *py = ou_python();
    if (!py)
        return;
    int rc = ou_sh("'%s' '%s/tests/onnx/check_export.py' '%s' '%s' %s", py, ou_source(), src, out,
                   extra ? extra : "");
    if (rc != 0)
        fail_msg("check_export.py %s %s failed (%d)", src, out, rc);
}

/* import -> export -> check -> import -> compare */
static void roundtrip(const char *src, const char *extra)
{
    graft_graph *a = load_ok(src);
    char *out = ou_join(tmp_root, "rt.onnx");
    export_ok(a, out, 0);
    check_py(src, out, extra);
    graft_graph *b = load_ok(out);
    assert_same_graph(a, b);
    /* and a second generation is byte-identical to the first */
    uint8_t *buf1 = NULL, *buf2 = NULL;
    size_t n1 = 0, n2 = 0;
    graft_error err = {0};
    assert_int_equal(graft_onnx_export_buffer(a, NULL, &buf1, &n1, &err), GRAFT_OK);
    assert_int_equal(graft_onnx_export_buffer(b, NULL, &buf2, &n2, &err), GRAFT_OK);
    assert_int_equal(n1, n2);
    assert_memory_equal(buf1, buf2, n1);
    graft_graph *c = NULL;
    assert_int_equal(graft_onnx_import_buffer(buf1, n1, "buf", NULL, NULL, &c, &err), GRAFT_OK);
    assert_same_graph(a, c);
    graft_graph_destroy(c);
    free(buf1);
    free(buf2);
    graft_graph_destroy(b);
    graft_graph_destroy(a);
    unlink(out);
    free(out);
}

static void test_roundtrip_generated(void **state)
{
    (void)state;
    const char *dir = ou_models();
    if (!dir)
        skip();
    const char *names[] = {"dtypes.onnx", "attrs.onnx", "constant.onnx", "unsorted.onnx",
                           "meta.onnx"};
    for (int i = 0; i < 5; i++) {
        char *p = ou_join(dir, names[i]);
        roundtrip(p, NULL);
        free(p);
    }
}

static void test_roundtrip_cases(void **state)
{
    (void)state;
    if (!ou_shared())
        skip();
    const char *cases[] = {
        "B07a_ir3_inits_listed_as_inputs", "B07b_ir7_inits_listed_as_inputs",
        "B07c_ir7_inits_not_inputs",       "B08_constant_node_weights",
        "B09_gemm_weight_computed",        "B13a_softmax_default_axis_opset11",
        "B15b_clip_opset6_attributes",     "B17_nodes_not_topologically_sorted",
        "B18a_node_names_empty",           "B19b_fp16_conv_int32data_rawdata",
        "B21a_contrib_fusedconv_com_microsoft", "B23a_if_outer_scope_opset13",
        "B28b_dropout_ratio_attribute_opset7", "B32_export_keeps_ir_version",
        "B33_export_keeps_metadata",       "B34a_tied_embedding_weights",
        "E06_fp16_bf16_weights_raw_cast",  "E07a_symbolic_batch_dim",
        "E07b_fixed_batch_1",              "B01_extdata_read_traversal/control",
        "B02_extdata_save_traversal",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char p[2048];
        snprintf(p, sizeof p, "%s/cases/%s/model.onnx", ou_shared(), cases[i]);
        if (!ou_exists(p))
            continue;
        roundtrip(p, NULL);
    }
}

static void test_roundtrip_models(void **state)
{
    (void)state;
    if (!ou_shared())
        skip();
    const char *names[] = {"squeezenet1.0-fp16", "mnist-cntk", "ultraface-rfb-320",
                           "bodypix-mnv1-050-s16"};
    for (int i = 0; i < 4; i++) {
        char p[2048];
        snprintf(p, sizeof p, "%s/models/%s/model.onnx", ou_shared(), names[i]);
        if (ou_exists(p))
            roundtrip(p, NULL);
    }
}

/* Every model of Debian's ONNX backend test data: import -> export -> import
 * keeps the graph and its tensors bit for bit; the few graft refuses are
 * refused as unsupported. */
static void test_roundtrip_debian(void **state)
{
    (void)state;
    const char *root = "/usr/share/libonnx-testdata/data";
    if (!ou_exists(root))
        skip();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "find '%s' -name '*.onnx' | sort", root);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[2048];
    int ok = 0, refused = 0;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        graft_graph *a = NULL, *b = NULL;
        graft_error err = {0};
        graft_status st = graft_onnx_import_file(line, NULL, &a, &err);
        if (st) {
            if (st != GRAFT_ERR_UNSUPPORTED)
                fail_msg("%s", err.msg);
            refused++;
            continue;
        }
        uint8_t *buf = NULL;
        size_t n = 0;
        st = graft_onnx_export_buffer(a, NULL, &buf, &n, &err);
        if (st == GRAFT_ERR_UNSUPPORTED && strstr(err.msg, "training_mode=1")) {
            /* its outputs are BatchNormalization's running statistics: a
             * training graph, which has no inference form to write */
            graft_graph_destroy(a);
            refused++;
            continue;
        }
        if (st)
            fail_msg("export of %s: %s", line, err.msg);
        if (graft_onnx_import_buffer(buf, n, line, NULL, NULL, &b, &err))
            fail_msg("re-import of %s: %s", line, err.msg);
        assert_same_graph(a, b);
        free(buf);
        graft_graph_destroy(a);
        graft_graph_destroy(b);
        ok++;
    }
    pclose(p);
    print_message("debian backend data: %d models round-tripped, %d refused as unsupported\n",
                  ok, refused);
    assert_true(ok > 1000);
    /* 44 in libonnx-testdata 1.12: opset 1 or no default-domain opset,
     * sequence/optional/map graph inputs or outputs, and training graphs
     * whose outputs are BatchNormalization's running statistics */
    assert_true(refused < 60);
}

static void test_b32_b33_fields(void **state)
{
    (void)state;
    if (!ou_shared())
        skip();
    char p[2048];
    snprintf(p, sizeof p, "%s/cases/B33_export_keeps_metadata/model.onnx", ou_shared());
    graft_graph *g = load_ok(p);
    assert_string_equal(graft_graph_meta_get(g, "labels"), "cat,dog");
    assert_int_equal(g->model_version, 42);
    assert_string_equal(g->domain, "org.example.cases");
    assert_string_equal(g->doc_string, "B33 model doc string");
    assert_string_equal(g->graph_doc_string, "B33 graph doc string");
    assert_string_equal(find(g, "X")->doc_string, "normalized rgb");
    assert_int_equal(graft_graph_meta_set(g, "classes", "5,6,7", NULL), GRAFT_OK);
    char *out = ou_join(tmp_root, "b33.onnx");
    export_ok(g, out, 0);
    graft_graph *h = load_ok(out);
    assert_string_equal(graft_graph_meta_get(h, "classes"), "5,6,7");
    assert_string_equal(graft_graph_meta_get(h, "std"), "0.25");
    assert_string_equal(find(h, "X")->doc_string, "normalized rgb");
    assert_string_equal(h->producer_name, "graft");
    assert_string_equal(h->producer_version, GRAFT_VERSION_STRING);
    graft_graph_destroy(h);
    graft_graph_destroy(g);
    snprintf(p, sizeof p, "%s/cases/B32_export_keeps_ir_version/model.onnx", ou_shared());
    g = load_ok(p);
    export_ok(g, out, 0);
    h = load_ok(out);
    assert_int_equal(h->ir_version, 6);
    assert_int_equal(h->n_opsets, 1);
    assert_int_equal(graft_graph_opset(h, ""), 11);
    graft_graph_destroy(h);
    graft_graph_destroy(g);
    free(out);
}

/* A trained parameter is written from its data, not from the stale copy. */
static void test_trained_param_written(void **state)
{
    (void)state;
    const char *dir = ou_models();
    if (!dir)
        skip();
    char *p = ou_join(dir, "meta.onnx");
    graft_graph *g = load_ok(p);
    int32_t w = graft_graph_find_value(g, "W");
    g->values[w].trainable = true;
    float *d = graft_tensor_f32(g->values[w].data);
    for (int i = 0; i < 16; i++)
        d[i] = (float)i * 0.5f;
    /* a new parameter without source */
    int32_t nv = graft_graph_add_value(g, "newb", NULL);
    int64_t dims[1] = {4};
    graft_tensor *t = NULL;
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 1, dims, &t, NULL), GRAFT_OK);
    graft_tensor_f32(t)[2] = 7.0f;
    g->values[nv].kind = GRAFT_VALUE_INITIALIZER;
    g->values[nv].trainable = true;
    graft_value_set_data(g, nv, t);
    int32_t y = graft_graph_find_value(g, "Y");
    int32_t y2 = graft_graph_add_value(g, "Y2", NULL);
    int32_t ins[2] = {y, nv};
    assert_true(graft_graph_add_node(g, "Add", "", "", 2, ins, 1, &y2, NULL) >= 0);
    g->outputs[0] = y2;
    g->values[y].is_graph_output = false;
    g->values[y2].is_graph_output = true;
    g->values[y2].dtype = GRAFT_FLOAT;
    g->values[y2].rank = 2;
    g->values[y2].dims[0] = -1;
    g->values[y2].dims[1] = 4;
    char *out = ou_join(tmp_root, "trained.onnx");
    export_ok(g, out, 0);
    graft_graph *h = load_ok(out);
    const graft_value *hw = find(h, "W");
    assert_memory_equal(hw->data->data, d, 64);
    assert_true(graft_tensor_f32(find(h, "newb")->data)[2] == 7.0f);
    /* read by no node in the source either: kept, so round trips lose nothing */
    assert_non_null(find(h, "unused"));
    assert_int_equal(graft_graph_verify(h, NULL), GRAFT_OK);
    assert_checker_accepts(out);
    graft_graph_destroy(h);
    graft_graph_destroy(g);
    free(out);
    free(p);
}

static int count_entries(const char *dir)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = -1;
        pclose(f);
    }
    return n;
}

static void test_failed_export_leaves_nothing(void **state)
{
    (void)state;
    const char *dir = ou_models();
    if (!dir)
        skip();
    char *p = ou_join(dir, "meta.onnx");
    graft_graph *g = load_ok(p);
    graft_error err = {0};
    const char *bad = "/nonexistent-graft-dir/out.onnx";
    assert_int_equal(graft_onnx_export_file(g, bad, NULL, &err), GRAFT_ERR_IO);
    assert_non_null(strstr(err.msg, bad));
    /* the target is an existing directory: rename fails, temp file removed */
    char *sub = ou_join(tmp_root, "fail");
    assert_int_equal(mkdir(sub, 0777), 0);
    char *target = ou_join(sub, "out.onnx");
    assert_int_equal(mkdir(target, 0777), 0);
    assert_int_not_equal(graft_onnx_export_file(g, target, NULL, &err), GRAFT_OK);
    assert_non_null(strstr(err.msg, target));
    assert_int_equal(count_entries(sub), 1);
    /* same with external data requested */
    graft_onnx_export_options o = graft_onnx_export_options_default();
    o.external_threshold = 1;
    assert_int_not_equal(graft_onnx_export_file(g, target, &o, &err), GRAFT_OK);
    assert_int_equal(count_entries(sub), 1);
    /* a structurally broken graph (its output no longer produced) is refused */
    char *out = ou_join(sub, "broken.onnx");
    g->nodes[g->n_nodes - 1].removed = true;
    assert_int_equal(graft_onnx_export_file(g, out, NULL, &err), GRAFT_ERR_INVALID);
    assert_non_null(strstr(err.msg, out));
    assert_non_null(strstr(err.msg, "'Y'"));
    assert_int_equal(count_entries(sub), 1);
    free(out);
    graft_graph_destroy(g);
    free(target);
    free(sub);
    free(p);
}

static void test_external_threshold(void **state)
{
    (void)state;
    if (!ou_shared())
        skip();
    char src[2048];
    snprintf(src, sizeof src, "%s/cases/B31_export_external_data_threshold/model.onnx",
             ou_shared());
    graft_graph *g = load_ok(src);
    char *dir = ou_join(tmp_root, "b31");
    assert_int_equal(mkdir(dir, 0777), 0);
    char *out = ou_join(dir, "out.onnx");
    export_ok(g, out, 1u << 20);
    assert_int_equal(count_entries(dir), 2);
    char *data = ou_join(dir, "out.onnx.data");
    assert_true(ou_exists(data));
    check_py(src, out,
             "--sha W1=ace8fee53e156e853c47dc49285007b6ff5d7b53eddc93e21c730b00f1c889b2");
    graft_graph *h = load_ok(out);
    assert_same_graph(g, h);
    /* from memory with an explicit base folder */
    size_t len = 0;
    unsigned char *buf = ou_read(out, &len);
    assert_non_null(buf);
    graft_graph *m = NULL;
    graft_error err = {0};
    assert_int_equal(graft_onnx_import_buffer(buf, len, "out.onnx", dir, NULL, &m, &err),
                     GRAFT_OK);
    assert_same_graph(g, m);
    graft_graph_destroy(m);
    /* without a base folder external data is refused */
    assert_int_not_equal(graft_onnx_import_buffer(buf, len, "out.onnx", NULL, NULL, &m, &err),
                         GRAFT_OK);
    free(buf);
    graft_graph_destroy(h);
    graft_graph_destroy(g);
    free(data);
    free(out);
    free(dir);
}

static void test_b02_trap(void **state)
{
    (void)state;
    char *root = ou_join(tmp_root, "b02");
    char *dir = ou_shared() ? ou_copy_case("B02_extdata_save_traversal", root) : NULL;
    if (!dir) {
        free(root);
        skip();
    }
    assert_int_equal(ou_sh("sh '%s/setup_links.sh' >/dev/null 2>&1", dir), 0);
    char *victim = ou_join(root, "outside_victim.bin");
    size_t vlen = 0;
    unsigned char *before = ou_read(victim, &vlen);
    assert_non_null(before);
    char *model = ou_join(dir, "model.onnx");
    graft_graph *g = load_ok(model);
    char *trap = ou_join(dir, "export_trap");
    char *out = ou_join(trap, "out.onnx");
    char *outdata = ou_join(trap, "out.onnx.data");
    struct stat st;
    assert_int_equal(lstat(outdata, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    export_ok(g, out, 1);
    size_t alen = 0;
    unsigned char *after = ou_read(victim, &alen);
    assert_int_equal(alen, vlen);
    assert_memory_equal(before, after, vlen);
    assert_int_equal(lstat(outdata, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    graft_graph *h = load_ok(out);
    assert_same_graph(g, h);
    check_py(model, out, NULL);
    /* the variant whose location lexically leaves the folder is refused */
    char *dd = ou_join(dir, "model_dotdot_self.onnx");
    graft_graph *x = NULL;
    graft_error err = {0};
    assert_int_not_equal(graft_onnx_import_file(dd, NULL, &x, &err), GRAFT_OK);
    assert_non_null(strstr(err.msg, "'W'"));
    free(dd);
    graft_graph_destroy(h);
    graft_graph_destroy(g);
    free(before);
    free(after);
    free(outdata);
    free(out);
    free(trap);
    free(model);
    free(victim);
    free(dir);
    free(root);
}

static void test_tensor_attr_and_names(void **state)
{
    (void)state;
    /* a graph built from scratch: attributes without a stored copy */
    graft_graph *g = NULL;
    assert_int_equal(graft_graph_create(&g, NULL), GRAFT_OK);
    int32_t x = graft_graph_add_value(g, "X", NULL);
    g->values[x].kind = GRAFT_VALUE_INPUT;
    g->values[x].dtype = GRAFT_FLOAT;
    g->values[x].rank = 2;
    g->values[x].dims[0] = 1;
    g->values[x].dims[1] = 6;
    int32_t y = graft_graph_add_value(g, "Y", NULL);
    int32_t z = graft_graph_add_value(g, "Z", NULL);
    int32_t n = graft_graph_add_node(g, "LeakyRelu", "", "", 1, &x, 1, &y, NULL);
    assert_int_equal(graft_node_set_float(g, n, "alpha", 0.125f, NULL), GRAFT_OK);
    n = graft_graph_add_node(g, "Flatten", "", "", 1, &y, 1, &z, NULL);
    assert_int_equal(graft_node_set_int(g, n, "axis", 1, NULL), GRAFT_OK);
    g->inputs = malloc(sizeof *g->inputs);
    g->inputs[0] = x;
    g->n_inputs = 1;
    g->outputs = malloc(sizeof *g->outputs);
    g->outputs[0] = z;
    g->n_outputs = 1;
    g->values[z].is_graph_output = true;
    g->values[z].dtype = GRAFT_FLOAT;
    g->values[z].rank = 2;
    g->values[z].dims[0] = 1;
    g->values[z].dims[1] = 6;
    char *out = ou_join(tmp_root, "scratch.onnx");
    export_ok(g, out, 0);
    graft_graph *h = load_ok(out);
    /* by default the declared batch size stays */
    assert_int_equal(find(h, "X")->dims[0], 1);
    assert_null(find(h, "X")->dim_params[0]);
    graft_graph_destroy(h);
    graft_onnx_export_options o = graft_onnx_export_options_default();
    o.dynamic_batch = true;
    graft_error err = {0};
    if (graft_onnx_export_file(g, out, &o, &err))
        fail_msg("export %s failed: %s", out, err.msg);
    h = load_ok(out);
    assert_int_equal(h->n_nodes, 2);
    assert_true(graft_node_attr_float(&h->nodes[0], "alpha", 0) == 0.125f);
    assert_int_equal(graft_node_attr_int(&h->nodes[1], "axis", 0), 1);
    assert_true(*h->nodes[0].name && *h->nodes[1].name);
    assert_string_not_equal(h->nodes[0].name, h->nodes[1].name);
    /* batch dim made symbolic on request */
    assert_int_equal(find(h, "X")->dims[0], -1);
    assert_string_equal(find(h, "X")->dim_params[0], "batch");
    assert_int_equal(find(h, "X")->dims[1], 6);
    assert_checker_accepts(out);
    graft_graph_destroy(h);
    graft_graph_destroy(g);
    free(out);
}

/* X -> BatchNormalization(training_mode=1; Y, mean, var) -> Dropout(ratio,
 * training_mode=true) -> Z, plus an initializer nothing reads (PyTorch's
 * num_batches_tracked) and one read only by a removed node. */
static graft_graph *training_form_graph(bool read_running_mean)
{
    graft_graph *g = pu_graph(15);
    int64_t xd[4] = {-1, 2, 3, 3}, cd[1] = {2}, one = 1;
    pu_input(g, "X", 4, xd);
    pu_init(g, "s", 1, cd, 0.5f, 1.0f, NULL);
    pu_init(g, "b", 1, cd, 0.5f, 0.0f, NULL);
    pu_init(g, "mu", 1, cd, 0.5f, 0.0f, NULL);
    pu_init(g, "var", 1, cd, 0.25f, 1.0f, NULL);
    int64_t zero = 0;
    int32_t nbt = pu_init_i64(g, "num_batches_tracked", 0, &one, &zero);
    g->values[nbt].unread_in_source = true; /* as the importer marks it */
    pu_init(g, "orphan", 1, cd, 1.0f, 0.0f, NULL);
    int32_t ratio = pu_init(g, "ratio", 0, &one, 0.0f, 0.5f, NULL);
    (void)ratio;
    int32_t tm = graft_graph_add_value(g, "train", NULL);
    graft_tensor *t = NULL;
    assert_int_equal(graft_tensor_create(GRAFT_UINT8, 0, &one, &t, NULL), GRAFT_OK);
    ((uint8_t *)t->data)[0] = 1;
    g->values[tm].kind = GRAFT_VALUE_INITIALIZER;
    g->values[tm].dtype = GRAFT_BOOL;
    g->values[tm].source_dtype = GRAFT_BOOL;
    g->values[tm].rank = 0;
    graft_value_set_data(g, tm, t);

    const char *bn_in[] = {"X", "s", "b", "mu", "var"};
    const char *bn_out[] = {"Y", "run_mean", "run_var"};
    int32_t in[5], out[3];
    for (int i = 0; i < 5; i++)
        in[i] = pu_val(g, bn_in[i]);
    for (int i = 0; i < 3; i++)
        out[i] = graft_graph_add_value(g, bn_out[i], NULL);
    int32_t bn = graft_graph_add_node(g, "BatchNormalization", "", "bn", 5, in, 3, out, NULL);
    assert_true(bn >= 0);
    assert_int_equal(graft_node_set_int(g, bn, "training_mode", 1, NULL), GRAFT_OK);
    pu_node(g, "Dropout", "drop", (const char *[]){"Y", "ratio", "train", NULL}, "Z");
    pu_node(g, "Add", "gone", (const char *[]){"Z", "orphan", NULL}, "W");
    g->nodes[g->n_nodes - 1].removed = true;
    pu_output(g, "Z");
    graft_value *z = &g->values[pu_val(g, "Z")];
    z->dtype = GRAFT_FLOAT;
    z->rank = 4;
    memcpy(z->dims, xd, sizeof xd);
    if (read_running_mean) {
        pu_node(g, "Identity", "peek", (const char *[]){"run_mean", NULL}, "M");
        pu_output(g, "M");
    }
    return g;
}

/* Runs g on one float32 input and returns output k (a copy). */
static graft_tensor *run_one(const graft_graph *g, const graft_tensor *x, int k)
{
    graft_shape sh = {.rank = x->rank};
    memcpy(sh.dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    graft_plan *p = NULL;
    graft_error err = {0};
    graft_plan_options po = graft_plan_options_default();
    if (graft_plan_create(g, &po, 1, &sh, &p, &err) || graft_plan_run(p, &x, &err))
        fail_msg("running: %s", err.msg);
    graft_tensor *y = NULL;
    assert_int_equal(graft_tensor_clone(graft_plan_output(p, k), &y, &err), GRAFT_OK);
    graft_plan_destroy(p);
    return y;
}

/* The float32 export of a mixed-precision model (half.onnx: float16 input,
 * raw float16 and int32_data bfloat16 weights, a float16 Constant, a double
 * weight, Casts both ways): check_export.py float32 finds no narrow or double
 * type left and every weight widened exactly; the export computes the values
 * make_models.py computed with numpy; the default export keeps the stored
 * types. */
static void test_float32_export(void **state)
{
    (void)state;
    const char *dir = ou_models();
    if (!dir)
        skip();
    char *src = ou_join(dir, "half.onnx");
    char *out = ou_join(tmp_root, "half32.onnx");
    graft_graph *g = load_ok(src);
    graft_onnx_export_options o = graft_onnx_export_options_default();
    o.float32 = true;
    graft_error err = {0};
    if (graft_onnx_export_file(g, out, &o, &err))
        fail_msg("float32 export: %s", err.msg);
    const char *py = ou_python();
    if (py)
        assert_int_equal(ou_sh("'%s' '%s/tests/cases/check_export.py' float32 '%s' '%s'", py,
                               ou_source(), out, src),
                         0);
    graft_graph *h = load_ok(out);
    assert_int_equal(h->values[h->inputs[0]].dtype, GRAFT_FLOAT);
    assert_int_equal(find(h, "w_f16")->source_dtype, GRAFT_FLOAT);
    assert_int_equal(find(h, "w_bf16")->source_dtype, GRAFT_FLOAT);

    size_t nx = 0, ny = 0;
    char *xp = ou_join(dir, "half.x.bin"), *yp = ou_join(dir, "half.y.bin");
    unsigned char *xb = ou_read(xp, &nx), *yb = ou_read(yp, &ny);
    assert_int_equal(nx, 6 * sizeof(float));
    assert_int_equal(ny, 4 * sizeof(float));
    int64_t xd[2] = {2, 3};
    graft_tensor *x = NULL;
    assert_int_equal(graft_tensor_attach(GRAFT_FLOAT, 2, xd, xb, &x, &err), GRAFT_OK);
    const float *want = (const float *)yb;
    for (int k = 0; k < 2; k++) {
        graft_tensor *a = run_one(h, x, k), *b = run_one(g, x, k);
        for (int i = 0; i < 4; i++) {
            /* y16: the source rounds to float16 in its last Cast, the
             * float32 export's Cast keeps float32 */
            float w16 = graft_fp16_to_f32(graft_f32_to_fp16(want[i]));
            assert_float_equal(graft_tensor_f32(a)[i], want[i], 1e-6);
            assert_float_equal(graft_tensor_f32(b)[i], k == 0 ? want[i] : w16, 1e-6);
        }
        graft_tensor_destroy(a);
        graft_tensor_destroy(b);
    }
    graft_tensor_destroy(x);
    graft_graph_destroy(h);

    /* off: the stored types stay */
    export_ok(g, out, 0);
    h = load_ok(out);
    assert_int_equal(h->values[h->inputs[0]].dtype, GRAFT_FLOAT16);
    assert_int_equal(find(h, "w_f16")->source_dtype, GRAFT_FLOAT16);
    assert_int_equal(find(h, "w_bf16")->source_dtype, GRAFT_BFLOAT16);
    assert_int_equal(find(h, "w_f64")->source_dtype, GRAFT_DOUBLE);
    graft_graph_destroy(h);
    graft_graph_destroy(g);
    free(xb);
    free(yb);
    free(xp);
    free(yp);
    unlink(out);
    free(out);
    free(src);
}

static void test_inference_form(void **state)
{
    (void)state;
    graft_graph *g = training_form_graph(false);
    char *out = ou_join(tmp_root, "inference_form.onnx");
    export_ok(g, out, 0);
    graft_graph *h = load_ok(out);
    int32_t bn = -1, drop = -1;
    for (int32_t i = 0; i < h->n_nodes; i++) {
        if (!strcmp(h->nodes[i].op_type, "BatchNormalization"))
            bn = i;
        if (!strcmp(h->nodes[i].op_type, "Dropout"))
            drop = i;
    }
    assert_true(bn >= 0 && drop >= 0);
    assert_int_equal(h->n_nodes, 2);
    assert_null(graft_node_attr(&h->nodes[bn], "training_mode"));
    assert_int_equal(h->nodes[bn].n_outputs, 1);
    assert_int_equal(h->nodes[drop].n_inputs, 2);
    assert_string_equal(h->values[h->nodes[drop].inputs[1]].name, "ratio");
    assert_null(find(h, "train"));  /* read by nothing once training_mode is gone */
    assert_null(find(h, "orphan")); /* its only reader was removed */
    const graft_value *nbt = find(h, "num_batches_tracked");
    assert_non_null(nbt); /* unused in the source too: kept */
    assert_int_equal(nbt->kind, GRAFT_VALUE_INITIALIZER);
    assert_checker_accepts(out);
    graft_graph_destroy(h);
    graft_graph_destroy(g);
    remove(out);

    /* the running statistics are read: no inference form exists, so no file */
    g = training_form_graph(true);
    graft_error err = {0};
    assert_int_equal(graft_onnx_export_file(g, out, NULL, &err), GRAFT_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "'bn'"));
    assert_non_null(strstr(err.msg, "run_mean"));
    assert_non_null(strstr(err.msg, "inference_form.onnx"));
    assert_int_equal(access(out, F_OK), -1);
    graft_graph_destroy(g);
    free(out);
}

static int setup(void **state)
{
    (void)state;
    tmp_root = ou_tmpdir();
    return tmp_root ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ou_rmtree(tmp_root);
    free(tmp_root);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_generated),
        cmocka_unit_test(test_roundtrip_cases),
        cmocka_unit_test(test_roundtrip_models),
        cmocka_unit_test(test_roundtrip_debian),
        cmocka_unit_test(test_b32_b33_fields),
        cmocka_unit_test(test_trained_param_written),
        cmocka_unit_test(test_failed_export_leaves_nothing),
        cmocka_unit_test(test_external_threshold),
        cmocka_unit_test(test_b02_trap),
        cmocka_unit_test(test_tensor_attr_and_names),
        cmocka_unit_test(test_inference_form),
        cmocka_unit_test(test_float32_export),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
