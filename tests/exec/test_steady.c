/* Steady state: once a plan has run, further runs (and backward passes)
 * allocate nothing. malloc and friends are interposed here and counted while
 * a flag is up; skipped under AddressSanitizer, which owns malloc. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "ops/op.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_COUNTING 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_COUNTING 0
#endif
#endif
#ifndef HAVE_COUNTING
#define HAVE_COUNTING 1
#endif

static volatile int counting;
static volatile long n_allocs, n_foreign;

/* Only graft's own allocations count (it is linked statically into this
 * program); libgomp allocates a team per parallel region, which is not ours
 * to avoid. */
extern const char __executable_start[], etext[];
#define COUNT()                                                                                 \
    do {                                                                                        \
        if (counting) {                                                                         \
            const char *ra = __builtin_return_address(0);                                       \
            if (ra >= __executable_start && ra < etext)                                         \
                __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);                             \
            else                                                                                \
                __atomic_add_fetch(&n_foreign, 1, __ATOMIC_RELAXED);                            \
        }                                                                                       \
    } while (0)

#if HAVE_COUNTING
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void *__libc_memalign(size_t, size_t);
void __libc_free(void *);

void *malloc(size_t n)
{
    COUNT();
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
    COUNT();
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
    COUNT();
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t al, size_t n)
{
    COUNT();
    return __libc_memalign(al, n);
}
void *memalign(size_t al, size_t n);
void *memalign(size_t al, size_t n)
{
    COUNT();
    return __libc_memalign(al, n);
}
int posix_memalign(void **out, size_t al, size_t n)
{
    COUNT();
    *out = __libc_memalign(al, n);
    return *out ? 0 : 12;
}
void free(void *p)
{
    __libc_free(p);
}
#endif

static graft_graph *g_new(void)
{
    graft_graph *g = NULL;
    assert_int_equal(graft_graph_create(&g, NULL), GRAFT_OK);
    g->n_opsets = 1;
    g->opsets = calloc(1, sizeof *g->opsets);
    g->opsets[0].domain = graft_graph_strdup(g, "");
    g->opsets[0].version = 13;
    return g;
}

static int32_t g_val(graft_graph *g, const char *name)
{
    int32_t v = graft_graph_add_value(g, name, NULL);
    assert_true(v >= 0);
    return v;
}

static int32_t g_init(graft_graph *g, const char *name, int rank, const int64_t *dims, float scale,
                      bool trainable)
{
    int32_t v = g_val(g, name);
    graft_tensor *t = NULL;
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, rank, dims, &t, NULL), GRAFT_OK);
    int64_t n = graft_tensor_nelem(t);
    for (int64_t i = 0; i < n; i++)
        graft_tensor_f32(t)[i] = scale * (float)sin(0.7 * (double)i + (double)rank);
    g->values[v].kind = GRAFT_VALUE_INITIALIZER;
    g->values[v].dtype = GRAFT_FLOAT;
    g->values[v].rank = rank;
    memcpy(g->values[v].dims, dims, (size_t)rank * sizeof *dims);
    g->values[v].trainable = trainable;
    graft_value_set_data(g, v, t);
    return v;
}

static int32_t g_node(graft_graph *g, const char *op, const char *name, int n_in,
                      const int32_t *in)
{
    int32_t y = g_val(g, name);
    int32_t n = graft_graph_add_node(g, op, "", name, n_in, in, 1, &y, NULL);
    assert_true(n >= 0);
    return y;
}

static void set_ints(graft_graph *g, int32_t v, const char *attr, int n, const int64_t *x)
{
    assert_int_equal(graft_node_set_ints(g, g->values[v].producer, attr, n, x, NULL), GRAFT_OK);
}

static bool have(int op)
{
    return graft__op_table[op]->forward && graft__op_table[op]->infer;
}

static void run_counted(graft_plan *p, const graft_tensor *x, const graft_tensor *d, int reps,
                        long *allocs)
{
    graft_error err = {0};
    counting = allocs != NULL;
    for (int r = 0; r < reps; r++) {
        assert_int_equal(graft_plan_run(p, &x, &err), GRAFT_OK);
        if (d)
            assert_int_equal(graft_plan_backward(p, &d, &err), GRAFT_OK);
    }
    counting = 0;
    if (allocs) {
        *allocs = n_allocs;
        print_message("(%ld allocations by libraries graft calls)\n", (long)n_foreign);
    }
    n_allocs = 0;
    n_foreign = 0;
}

/* A small CNN: Conv -> BatchNorm -> Relu -> MaxPool -> Conv -> GlobalAveragePool
 * -> Flatten -> Gemm -> Softmax. */
static void test_inference_runs_allocate_nothing(void **state)
{
    (void)state;
    if (!HAVE_COUNTING)
        skip();
    int ops[] = {GRAFT_OP_conv, GRAFT_OP_batch_normalization, GRAFT_OP_relu, GRAFT_OP_max_pool,
                 GRAFT_OP_global_average_pool, GRAFT_OP_flatten, GRAFT_OP_gemm,
                 GRAFT_OP_softmax};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!have(ops[i]))
            skip();
    /* The counter sees graft's allocations at all. */
    counting = 1;
    graft_tensor *probe = NULL;
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 1, (int64_t[]){4}, &probe, NULL), GRAFT_OK);
    counting = 0;
    assert_true(n_allocs >= 1);
    n_allocs = n_foreign = 0;
    graft_tensor_destroy(probe);

    graft_graph *g = g_new();
    int32_t x = g_val(g, "x");
    g->values[x].kind = GRAFT_VALUE_INPUT;
    g->values[x].dtype = GRAFT_FLOAT;
    g->values[x].rank = 4;
    memcpy(g->values[x].dims, (int64_t[]){1, 3, 32, 32}, 4 * sizeof(int64_t));
    g->inputs = malloc(sizeof *g->inputs);
    g->inputs[0] = x;
    g->n_inputs = 1;
    int32_t w1 = g_init(g, "w1", 4, (int64_t[]){16, 3, 3, 3}, 0.2f, false);
    int32_t b1 = g_init(g, "b1", 1, (int64_t[]){16}, 0.1f, false);
    int32_t c1 = g_node(g, "Conv", "conv1", 3, (int32_t[]){x, w1, b1});
    set_ints(g, c1, "pads", 4, (int64_t[]){1, 1, 1, 1});
    set_ints(g, c1, "kernel_shape", 2, (int64_t[]){3, 3});
    int32_t sc = g_init(g, "bn_s", 1, (int64_t[]){16}, 1.0f, false);
    int32_t bb = g_init(g, "bn_b", 1, (int64_t[]){16}, 0.1f, false);
    int32_t mu = g_init(g, "bn_m", 1, (int64_t[]){16}, 0.1f, false);
    int32_t var = g_init(g, "bn_v", 1, (int64_t[]){16}, 0.0f, false);
    for (int i = 0; i < 16; i++)
        graft_tensor_f32(g->values[var].data)[i] = 1.0f + 0.1f * (float)i;
    int32_t bn = g_node(g, "BatchNormalization", "bn", 5, (int32_t[]){c1, sc, bb, mu, var});
    int32_t r = g_node(g, "Relu", "relu", 1, (int32_t[]){bn});
    int32_t mp = g_node(g, "MaxPool", "pool", 1, &r);
    set_ints(g, mp, "kernel_shape", 2, (int64_t[]){2, 2});
    set_ints(g, mp, "strides", 2, (int64_t[]){2, 2});
    int32_t w2 = g_init(g, "w2", 4, (int64_t[]){32, 16, 1, 1}, 0.2f, false);
    int32_t c2 = g_node(g, "Conv", "conv2", 2, (int32_t[]){mp, w2});
    int32_t gp = g_node(g, "GlobalAveragePool", "gap", 1, &c2);
    int32_t fl = g_node(g, "Flatten", "flat", 1, &gp);
    int32_t w3 = g_init(g, "w3", 2, (int64_t[]){10, 32}, 0.3f, true);
    int32_t b3 = g_init(g, "b3", 1, (int64_t[]){10}, 0.1f, true);
    int32_t fc = g_node(g, "Gemm", "fc", 3, (int32_t[]){fl, w3, b3});
    assert_int_equal(graft_node_set_int(g, g->values[fc].producer, "transB", 1, NULL), GRAFT_OK);
    int32_t sm = g_node(g, "Softmax", "softmax", 1, &fc);
    g->outputs = malloc(sizeof *g->outputs);
    g->outputs[0] = sm;
    g->n_outputs = 1;
    g->values[sm].is_graph_output = true;

    graft_error err = {0};
    graft_plan *p = NULL;
    graft_shape s = {4, {8, 3, 32, 32}};
    assert_int_equal(graft_plan_create(g, NULL, 1, &s, &p, &err), GRAFT_OK);
    graft_tensor *xt = NULL;
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 4, s.dims, &xt, &err), GRAFT_OK);
    for (int64_t i = 0; i < graft_tensor_nelem(xt); i++)
        graft_tensor_f32(xt)[i] = (float)cos((double)i);
    long allocs = 0;
    run_counted(p, xt, NULL, 2, NULL); /* warm-up: scratch, thread pools */
    run_counted(p, xt, NULL, 5, &allocs);
    print_message("inference: %ld allocations in 5 runs\n", allocs);
    if (allocs)
        print_message("an op or kernel allocates per call (find it: gdb -ex 'break "
                      "__libc_malloc if counting' on this program)\n");
    assert_int_equal(allocs, 0);
    /* softmax rows sum to one: the runs did something */
    const graft_tensor *y = graft_plan_output(p, 0);
    double sum = 0;
    for (int k = 0; k < 10; k++)
        sum += graft_tensor_f32(y)[k];
    assert_float_equal(sum, 1.0, 1e-5);
    graft_plan_destroy(p);

    /* Training the head on cached features: run + backward. */
    graft_plan_options o = graft_plan_options_default();
    o.training = true;
    o.feeds = &fl;
    o.n_feeds = 1;
    o.fetches = &fc;
    o.n_fetches = 1;
    graft_shape fs = {2, {8, 32}};
    assert_int_equal(graft_plan_create(g, &o, 1, &fs, &p, &err), GRAFT_OK);
    graft_tensor *ft = NULL, *dt = NULL;
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 2, fs.dims, &ft, &err), GRAFT_OK);
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 2, (int64_t[]){8, 10}, &dt, &err), GRAFT_OK);
    for (int64_t i = 0; i < 8 * 32; i++)
        graft_tensor_f32(ft)[i] = (float)sin((double)i);
    for (int64_t i = 0; i < 80; i++)
        graft_tensor_f32(dt)[i] = 0.01f * (float)(i % 7);
    run_counted(p, ft, dt, 2, NULL);
    run_counted(p, ft, dt, 5, &allocs);
    print_message("training: %ld allocations in 5 run+backward\n", allocs);
    assert_int_equal(allocs, 0);
    assert_non_null(graft_plan_grad(p, w3));
    graft_plan_destroy(p);
    graft_tensor_destroy(ft);
    graft_tensor_destroy(dt);
    graft_tensor_destroy(xt);
    graft_graph_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inference_runs_allocate_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
