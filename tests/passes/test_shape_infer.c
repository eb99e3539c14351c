/* The passes' static shape inference against the executor's own (a separate
 * implementation) on every value of the real models and bug cases in
 * ../shared and of the ONNX node tests (Debian's libonnx-testdata), fed the
 * shapes of their reference inputs. Where both know a
 * shape they must agree. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "passes_util.h"

#include "passes/passes.h"

typedef struct tally {
    int models, agree, unknown;
} tally;

static void check_model(const char *dir, tally *t)
{
    char path[8400];
    struct stat st;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (stat(path, &st) != 0)
        return;
    graft_graph *g = NULL;
    graft_error err = {0};
    if (graft_onnx_import_file(path, NULL, &g, &err) != GRAFT_OK)
        return; /* the invalid cases */
    graft_shape in[16];
    bool ok = g->n_inputs <= 16;
    for (int32_t i = 0; ok && i < g->n_inputs; i++) {
        graft_tensor *x = NULL;
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dir, (int)i);
        if (stat(path, &st) != 0 ||
            graft_onnx_read_tensor_file(path, &x, NULL, NULL, 0, &err) != GRAFT_OK) {
            ok = false;
            break;
        }
        graft_value *v = &g->values[g->inputs[i]];
        in[i].rank = x->rank;
        memcpy(in[i].dims, x->dims, sizeof in[i].dims);
        v->rank = x->rank;
        memcpy(v->dims, x->dims, sizeof v->dims);
        graft_tensor_destroy(x);
    }
    graft__si *si = NULL;
    graft_plan *p = NULL;
    int32_t *fetch = malloc((size_t)(g->n_values + 1) * sizeof *fetch);
    int n_fetch = 0;
    for (int32_t v = 0; ok && v < g->n_values; v++)
        if (g->values[v].producer >= 0)
            fetch[n_fetch++] = v;
    graft_plan_options o = graft_plan_options_default();
    o.fetches = fetch;
    o.n_fetches = n_fetch;
    if (ok && n_fetch > 0 &&
        graft_plan_create(g, &o, (int)g->n_inputs, in, &p, &err) == GRAFT_OK) {
        assert_int_equal(graft__infer_static_shapes(g, in[0].dims[0], &si, &err), GRAFT_OK);
        t->models++;
        for (int i = 0; i < n_fetch; i++) {
            graft_shape s;
            const graft__si *x = &si[fetch[i]];
            bool known = x->rank >= 0;
            for (int d = 0; d < x->rank; d++)
                known = known && x->dims[d] >= 0;
            if (!graft_plan_value_shape(p, fetch[i], &s) || !known) {
                t->unknown++;
                continue;
            }
            bool same = x->rank == s.rank;
            for (int d = 0; same && d < s.rank; d++)
                same = x->dims[d] == s.dims[d];
            if (!same) {
                char a[128], b[128];
                fail_msg("%s: '%s': static %s, plan %s", dir, g->values[fetch[i]].name,
                         graft_shape_format(x->rank, x->dims, a, sizeof a),
                         graft_shape_format(s.rank, s.dims, b, sizeof b));
            }
            t->agree++;
        }
    }
    free(si);
    free(fetch);
    graft_plan_destroy(p);
    graft_graph_destroy(g);
}

static void scan(const char *base, tally *t)
{
    DIR *d = opendir(base);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char dir[8192];
        if ((size_t)snprintf(dir, sizeof dir, "%s/%s", base, e->d_name) >= sizeof dir)
            continue;
        check_model(dir, t);
    }
    closedir(d);
}

static void test_agrees_with_plan(void **state)
{
    (void)state;
    const char *models = pu_shared("models");
    const char *cases = NULL;
    tally t = {0};
    if (models) {
        char m[4096];
        snprintf(m, sizeof m, "%s", models);
        scan(m, &t);
    }
    if ((cases = pu_shared("cases")) != NULL) {
        char c[4096];
        snprintf(c, sizeof c, "%s", cases);
        scan(c, &t);
    }
    /* ONNX's own node tests: every attribute form of the ops graft runs */
    int before = t.models;
    scan("/usr/share/libonnx-testdata/data/node", &t);
    printf("ONNX node tests planned and compared: %d\n", t.models - before);
    if (!t.models)
        skip();
    printf("static shapes: %d models, %d values agree, %d unknown to one side\n", t.models,
           t.agree, t.unknown);
    assert_true(t.agree > 300);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agrees_with_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
