/* Helpers for tests/passes (see passes_util.h). */
#include "passes_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void pu_fill(float *x, int64_t n, uint64_t seed)
{
    uint64_t s = seed * 7919u + 1;
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)((double)(mix(&s) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static uint64_t name_seed(const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 1099511628211ull;
    return h;
}

static void push(int32_t **arr, int32_t *n, int32_t v)
{
    *arr = realloc(*arr, (size_t)(*n + 1) * sizeof **arr);
    assert_non_null(*arr);
    (*arr)[(*n)++] = v;
}

graft_graph *pu_graph(int64_t opset)
{
    graft_graph *g = NULL;
    graft_error err = {0};
    assert_int_equal(graft_graph_create(&g, &err), GRAFT_OK);
    g->ir_version = 8;
    if (opset > 0) {
        g->opsets = calloc(1, sizeof *g->opsets);
        g->opsets[0].domain = graft_graph_strdup(g, "");
        g->opsets[0].version = opset;
        g->n_opsets = 1;
    }
    return g;
}

int32_t pu_input(graft_graph *g, const char *name, int rank, const int64_t *dims)
{
    graft_error err = {0};
    int32_t v = graft_graph_add_value(g, name, &err);
    assert_true(v >= 0);
    graft_value *val = &g->values[v];
    val->kind = GRAFT_VALUE_INPUT;
    val->dtype = GRAFT_FLOAT;
    val->rank = rank;
    for (int i = 0; i < rank; i++) {
        val->dims[i] = dims[i];
        if (dims[i] < 0)
            val->dim_params[i] = graft_graph_strdup(g, "N");
    }
    val->has_value_info = true;
    push(&g->inputs, &g->n_inputs, v);
    return v;
}

int32_t pu_init(graft_graph *g, const char *name, int rank, const int64_t *dims, float scale,
                float offset, const float *data)
{
    graft_error err = {0};
    int32_t v = graft_graph_add_value(g, name, &err);
    assert_true(v >= 0);
    graft_tensor *t = NULL;
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, rank, dims, &t, &err), GRAFT_OK);
    int64_t n = graft_tensor_nelem(t);
    float *x = graft_tensor_f32(t);
    if (data) {
        memcpy(x, data, (size_t)n * sizeof *x);
    } else {
        pu_fill(x, n, name_seed(name));
        for (int64_t i = 0; i < n; i++)
            x[i] = x[i] * scale + offset;
    }
    graft_value *val = &g->values[v];
    val->kind = GRAFT_VALUE_INITIALIZER;
    val->dtype = GRAFT_FLOAT;
    val->source_dtype = GRAFT_FLOAT;
    val->rank = rank;
    for (int i = 0; i < rank; i++)
        val->dims[i] = dims[i];
    graft_value_set_data(g, v, t);
    return v;
}

int32_t pu_init_i64(graft_graph *g, const char *name, int rank, const int64_t *dims,
                    const int64_t *data)
{
    graft_error err = {0};
    int32_t v = graft_graph_add_value(g, name, &err);
    assert_true(v >= 0);
    graft_tensor *t = NULL;
    assert_int_equal(graft_tensor_create(GRAFT_INT64, rank, dims, &t, &err), GRAFT_OK);
    memcpy(t->data, data, (size_t)graft_tensor_nelem(t) * sizeof *data);
    graft_value *val = &g->values[v];
    val->kind = GRAFT_VALUE_INITIALIZER;
    val->dtype = GRAFT_INT64;
    val->source_dtype = GRAFT_INT64;
    val->rank = rank;
    for (int i = 0; i < rank; i++)
        val->dims[i] = dims[i];
    graft_value_set_data(g, v, t);
    return v;
}

int32_t pu_val(const graft_graph *g, const char *name)
{
    int32_t v = graft_graph_find_value(g, name);
    if (v < 0)
        fprintf(stderr, "no value '%s'\n", name);
    assert_true(v >= 0);
    return v;
}

int32_t pu_node(graft_graph *g, const char *op, const char *name, const char *const *ins,
                const char *out)
{
    graft_error err = {0};
    int32_t in[16];
    int n_in = 0;
    for (; ins && ins[n_in]; n_in++)
        in[n_in] = *ins[n_in] ? pu_val(g, ins[n_in]) : -1;
    int32_t o = graft_graph_add_value(g, out, &err);
    assert_true(o >= 0);
    int32_t n = graft_graph_add_node(g, op, "", name, n_in, in, 1, &o, &err);
    if (n < 0)
        fprintf(stderr, "%s\n", err.msg);
    assert_true(n >= 0);
    return n;
}

void pu_output(graft_graph *g, const char *name)
{
    int32_t v = pu_val(g, name);
    g->values[v].is_graph_output = true;
    push(&g->outputs, &g->n_outputs, v);
}

int pu_count_op(const graft_graph *g, const char *op)
{
    int c = 0;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i].removed && strcmp(g->nodes[i].op_type, op) == 0)
            c++;
    return c;
}

graft_tensor *pu_run(const graft_graph *g, const graft_shape *in, uint64_t seed, int32_t fetch)
{
    graft_error err = {0};
    graft_plan *p = NULL;
    graft_plan_options o = graft_plan_options_default();
    if (fetch >= 0) {
        o.fetches = &fetch;
        o.n_fetches = 1;
    }
    if (graft_plan_create(g, &o, 1, in, &p, &err) != GRAFT_OK) {
        fprintf(stderr, "plan: %s\n", err.msg);
        return NULL;
    }
    graft_tensor *x = NULL, *y = NULL;
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, in->rank, in->dims, &x, &err), GRAFT_OK);
    pu_fill(graft_tensor_f32(x), graft_tensor_nelem(x), seed);
    const graft_tensor *xs[1] = {x};
    if (graft_plan_run(p, xs, &err) != GRAFT_OK) {
        fprintf(stderr, "run: %s\n", err.msg);
    } else {
        assert_int_equal(graft_tensor_clone(graft_plan_output(p, 0), &y, &err), GRAFT_OK);
    }
    graft_tensor_destroy(x);
    graft_plan_destroy(p);
    return y;
}

double pu_rel_diff(const graft_tensor *a, const graft_tensor *b)
{
    int64_t n = graft_tensor_nelem(b);
    if (graft_tensor_nelem(a) != n)
        return INFINITY;
    const float *x = graft_tensor_f32(a), *y = graft_tensor_f32(b);
    double md = 0, mb = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)x[i] - (double)y[i]);
        if (d > md || d != d)
            md = d;
        if (fabs((double)y[i]) > mb)
            mb = fabs((double)y[i]);
    }
    return md / mb;
}

const char *pu_shared(const char *rel)
{
    static char buf[4096];
    const char *dir = getenv("GRAFT_SHARED_DIR");
    struct stat st;
    if (!dir)
        return NULL;
    snprintf(buf, sizeof buf, "%s/%s", dir, rel);
    return stat(buf, &st) == 0 ? buf : NULL;
}
