/* LRN, InstanceNormalization, LayerNormalization, MeanVarianceNormalization:
 * hand-derived values, naive double references, finite differences, error
 * cases, the ONNX node tests, and the decomposed LayerNormalization (what
 * PyTorch exports below opset 17) run as a graph against the fused op. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lightops_util.h"
#include "testutil.h"

static void expect(const graft_tensor *t, const float *want, int64_t n, double tol,
                   const char *what)
{
    assert_int_equal(graft_tensor_nelem(t), n);
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(graft_tensor_f32(t)[i] - want[i]) <= tol * (1 + fabs(want[i]))))
            fail_msg("%s elem %lld: %.8g, want %.8g", what, (long long)i,
                     graft_tensor_f32(t)[i], want[i]);
}

static void expect_d(const graft_tensor *t, const double *want, int64_t n, double tol,
                     const char *what)
{
    assert_int_equal(graft_tensor_nelem(t), n);
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(graft_tensor_f32(t)[i] - want[i]) <= tol * (1 + fabs(want[i]))))
            fail_msg("%s elem %lld: %.8g, want %.8g", what, (long long)i,
                     graft_tensor_f32(t)[i], want[i]);
}

/* ---- LRN ------------------------------------------------------------------ */

static int32_t lrn_node(graft_graph *g, int64_t size, float alpha, float beta, float bias)
{
    int32_t n = lt_node(g, "LRN", 1, 0, 1);
    graft_node_set_int(g, n, "size", size, NULL);
    graft_node_set_float(g, n, "alpha", alpha, NULL);
    graft_node_set_float(g, n, "beta", beta, NULL);
    graft_node_set_float(g, n, "bias", bias, NULL);
    return n;
}

static void test_lrn_by_hand(void **state)
{
    (void)state;
    /* x = [1, 2, 3] over 3 channels, alpha/size = 1, beta = 1, bias = 1.
     * size 3: window [c-1, c+1]
     *   c0: s = 1 + (1+4)   = 6   y = 1/6
     *   c1: s = 1 + (1+4+9) = 15  y = 2/15
     *   c2: s = 1 + (4+9)   = 14  y = 3/14
     * size 2: window [c, c+1] (floor((2-1)/2) = 0 before, ceil = 1 after)
     *   c0: s = 1 + (1+4) = 6    y = 1/6
     *   c1: s = 1 + (4+9) = 14   y = 2/14
     *   c2: s = 1 + 9     = 10   y = 3/10 */
    int64_t d[4] = {1, 3, 1, 1};
    float xv[3] = {1, 2, 3};
    graft_tensor *x = lt_tensor_f32(4, d, xv);
    struct { int64_t size; float want[3]; } cases[2] = {
        {3, {1.0f / 6, 2.0f / 15, 3.0f / 14}}, {2, {1.0f / 6, 2.0f / 14, 3.0f / 10}}};
    for (int k = 0; k < 2; k++) {
        graft_graph *g = lt_graph(13);
        int32_t n = lrn_node(g, cases[k].size, (float)cases[k].size, 1.0f, 1.0f);
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
        expect(c.out[0], cases[k].want, 3, 1e-6, "LRN by hand");
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    graft_tensor_destroy(x);
}

static void ref_lrn(const float *x, double *y, int64_t nb, int64_t nc, int64_t m, int64_t size,
                    double alpha, double beta, double bias)
{
    int64_t before = (size - 1) / 2, after = size / 2; /* ceil((size-1)/2) */
    for (int64_t n = 0; n < nb; n++)
        for (int64_t ch = 0; ch < nc; ch++)
            for (int64_t i = 0; i < m; i++) {
                double s = 0;
                for (int64_t j = ch - before; j <= ch + after; j++)
                    if (j >= 0 && j < nc) {
                        double v = x[(n * nc + j) * m + i];
                        s += v * v;
                    }
                double xv = x[(n * nc + ch) * m + i];
                y[(n * nc + ch) * m + i] = xv * pow(bias + alpha / (double)size * s, -beta);
            }
}

static void test_lrn_reference(void **state)
{
    (void)state;
    int64_t d[4] = {2, 7, 3, 4};
    graft_tensor *x = lt_tensor_rand(4, d, 3, -2, 2);
    struct { int64_t size; float alpha, beta, bias; } cases[] = {
        {3, 1e-4f, 0.75f, 1.0f}, {5, 0.5f, 0.75f, 2.0f}, {4, 0.3f, 0.6f, 1.5f},
        {1, 1.0f, 0.5f, 1.0f},   {30, 2.0f, 1.2f, 1.0f}};
    int64_t total = graft_tensor_nelem(x);
    double *want = malloc((size_t)total * sizeof *want);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        graft_graph *g = lt_graph(13);
        int32_t n = lrn_node(g, cases[k].size, cases[k].alpha, cases[k].beta, cases[k].bias);
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
        ref_lrn(graft_tensor_f32(x), want, 2, 7, 12, cases[k].size, cases[k].alpha,
                cases[k].beta, cases[k].bias);
        expect_d(c.out[0], want, total, 2e-6, "LRN reference");
        lt_call_fini(&c);
        graft_graph_destroy(g);
    }
    free(want);
    graft_tensor_destroy(x);
}

static void test_lrn_gradients(void **state)
{
    (void)state;
    int64_t d[4] = {2, 5, 3, 2};
    struct { int64_t size; float alpha, beta, bias; } cases[] = {
        {3, 0.5f, 0.75f, 1.0f}, {4, 1.0f, 0.6f, 2.0f}, {2, 2.0f, 0.5f, 1.0f}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        graft_graph *g = lt_graph(13);
        int32_t n = lrn_node(g, cases[k].size, cases[k].alpha, cases[k].beta, cases[k].bias);
        graft_tensor *x = lt_tensor_rand(4, d, 11 + k, -2, 2);
        double e = lt_gradcheck(g, n, 1, &x, 1, 1e-3, 2e-3, false);
        if (!(e <= 2e-3))
            fail_msg("LRN case %zu gradient error %g", k, e);
        graft_tensor_destroy(x);
        graft_graph_destroy(g);
    }
}

/* ---- InstanceNormalization ------------------------------------------------- */

static void test_instance_by_hand(void **state)
{
    (void)state;
    /* x [1, 2, 2], epsilon 0:
     *   channel 0 [1, 3]: mean 2, var 1 -> xh [-1, 1]; scale 2, B 0.5 -> [-1.5, 2.5]
     *   channel 1 [0, 4]: mean 2, var 4 -> xh [-1, 1]; scale -1, B 1 -> [2, 0] */
    int64_t d[3] = {1, 2, 2}, dc[1] = {2};
    graft_tensor *x = lt_tensor_f32(3, d, (float[]){1, 3, 0, 4});
    graft_tensor *s = lt_tensor_f32(1, dc, (float[]){2, -1});
    graft_tensor *b = lt_tensor_f32(1, dc, (float[]){0.5f, 1});
    graft_tensor *in[3] = {x, s, b};
    graft_graph *g = lt_graph(6);
    int32_t n = lt_node(g, "InstanceNormalization", 3, 0, 1);
    graft_node_set_float(g, n, "epsilon", 0.0f, NULL);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 3, in), GRAFT_OK);
    expect(c.out[0], (float[]){-1.5f, 2.5f, 2, 0}, 4, 1e-6, "InstanceNormalization by hand");
    lt_call_fini(&c);
    graft_graph_destroy(g);
    for (int i = 0; i < 3; i++)
        graft_tensor_destroy(in[i]);
}

static void test_instance_gradients(void **state)
{
    (void)state;
    int64_t d[4] = {2, 3, 4, 5}, dc[1] = {3}, d3[3] = {3, 2, 7};
    graft_tensor *x = lt_tensor_rand(4, d, 1, -2, 2), *s = lt_tensor_rand(1, dc, 2, 0.5f, 2);
    graft_tensor *b = lt_tensor_rand(1, dc, 3, -1, 1);
    graft_tensor *in[3] = {x, s, b};
    graft_graph *g = lt_graph(6);
    int32_t n = lt_node(g, "InstanceNormalization", 3, 0, 1);
    double e = lt_gradcheck(g, n, 3, in, 7, 1e-3, 3e-3, false);
    if (!(e <= 3e-3))
        fail_msg("InstanceNormalization gradient error %g", e);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);
    graft_tensor_destroy(s);
    graft_tensor_destroy(b);
    /* rank 3, two channels... with opset 1 (consumed_inputs era): the same op */
    x = lt_tensor_rand(3, d3, 4, -3, 3);
    int64_t d2[1] = {2};
    s = lt_tensor_rand(1, d2, 5, 0.5f, 2);
    b = lt_tensor_rand(1, d2, 6, -1, 1);
    in[0] = x, in[1] = s, in[2] = b;
    g = lt_graph(1);
    n = lt_node(g, "InstanceNormalization", 3, 0, 1);
    e = lt_gradcheck(g, n, 3, in, 7, 1e-3, 3e-3, false);
    if (!(e <= 3e-3))
        fail_msg("InstanceNormalization rank 3 gradient error %g", e);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);
    graft_tensor_destroy(s);
    graft_tensor_destroy(b);
}

/* ---- LayerNormalization ---------------------------------------------------- */

static void test_layer_by_hand(void **state)
{
    (void)state;
    /* X [2, 2], axis -1, epsilon 0:
     *   row 0 [1, 3]: mean 2, var 1 -> xh [-1, 1], InvStdDev 1
     *   row 1 [2, 6]: mean 4, var 4 -> xh [-1, 1], InvStdDev 0.5
     *   Scale [2, 3], B [0, 1] -> Y rows [-2, 4] */
    int64_t d[2] = {2, 2}, dw[1] = {2};
    graft_tensor *x = lt_tensor_f32(2, d, (float[]){1, 3, 2, 6});
    graft_tensor *w = lt_tensor_f32(1, dw, (float[]){2, 3});
    graft_tensor *b = lt_tensor_f32(1, dw, (float[]){0, 1});
    graft_tensor *in[3] = {x, w, b};
    graft_graph *g = lt_graph(17);
    int32_t n = lt_node(g, "LayerNormalization", 3, 0, 3);
    graft_node_set_float(g, n, "epsilon", 0.0f, NULL);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 3, in), GRAFT_OK);
    expect(c.out[0], (float[]){-2, 4, -2, 4}, 4, 1e-6, "LayerNormalization Y");
    expect(c.out[1], (float[]){2, 4}, 2, 1e-6, "LayerNormalization Mean");
    expect(c.out[2], (float[]){1, 0.5f}, 2, 1e-6, "LayerNormalization InvStdDev");
    assert_int_equal(c.out[1]->rank, 2);
    assert_int_equal(c.out[1]->dims[0], 2);
    assert_int_equal(c.out[1]->dims[1], 1);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    /* no B, Y only: [-2, 3] per row */
    g = lt_graph(17);
    n = lt_node(g, "LayerNormalization", 2, 0, 1);
    graft_node_set_float(g, n, "epsilon", 0.0f, NULL);
    assert_int_equal(lt_run(&c, g, n, 2, in), GRAFT_OK);
    expect(c.out[0], (float[]){-2, 3, -2, 3}, 4, 1e-6, "LayerNormalization without B");
    lt_call_fini(&c);
    graft_graph_destroy(g);
    for (int i = 0; i < 3; i++)
        graft_tensor_destroy(in[i]);
}

/* Naive LayerNormalization with Scale/B given per position of X[axis:]. */
static void ref_layer(const float *x, const double *w, const double *b, double *y,
                      int64_t rows, int64_t m, double eps)
{
    for (int64_t r = 0; r < rows; r++) {
        double mu = 0, v = 0;
        for (int64_t j = 0; j < m; j++)
            mu += x[r * m + j];
        mu /= (double)m;
        for (int64_t j = 0; j < m; j++)
            v += (x[r * m + j] - mu) * (x[r * m + j] - mu);
        double inv = 1 / sqrt(v / (double)m + eps);
        for (int64_t j = 0; j < m; j++)
            y[r * m + j] = (x[r * m + j] - mu) * inv * w[j] + (b ? b[j] : 0);
    }
}

static void test_layer_broadcast_params(void **state)
{
    (void)state;
    /* X [2, 2, 3], axis 1 (rows of 6 = [2, 3]); Scale [3] broadcasts along
     * the 2, B [2, 1] along the 3 */
    int64_t d[3] = {2, 2, 3}, dw[1] = {3}, db[2] = {2, 1};
    graft_tensor *x = lt_tensor_rand(3, d, 8, -2, 2), *w = lt_tensor_rand(1, dw, 9, 0.5f, 2);
    graft_tensor *b = lt_tensor_rand(2, db, 10, -1, 1);
    graft_tensor *in[3] = {x, w, b};
    double wf[6], bf[6], want[12];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            wf[i * 3 + j] = graft_tensor_f32(w)[j];
            bf[i * 3 + j] = graft_tensor_f32(b)[i];
        }
    ref_layer(graft_tensor_f32(x), wf, bf, want, 2, 6, 1e-5);
    graft_graph *g = lt_graph(17);
    int32_t n = lt_node(g, "LayerNormalization", 3, 0, 1);
    graft_node_set_int(g, n, "axis", 1, NULL);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 3, in), GRAFT_OK);
    expect_d(c.out[0], want, 12, 1e-5, "LayerNormalization broadcast Scale/B");
    lt_call_fini(&c);
    double e = lt_gradcheck(g, n, 3, in, 7, 1e-3, 3e-3, false);
    if (!(e <= 3e-3))
        fail_msg("LayerNormalization broadcast gradient error %g", e);
    graft_graph_destroy(g);
    for (int i = 0; i < 3; i++)
        graft_tensor_destroy(in[i]);
}

static void test_layer_gradients(void **state)
{
    (void)state;
    int64_t d[3] = {3, 4, 5};
    struct { int64_t axis; int with_b; } cases[] = {{-1, 1}, {1, 1}, {0, 1}, {-1, 0}, {2, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int ax = (int)(cases[k].axis < 0 ? cases[k].axis + 3 : cases[k].axis);
        graft_tensor *x = lt_tensor_rand(3, d, 20 + k, -2, 2);
        graft_tensor *w = lt_tensor_rand(3 - ax, d + ax, 30 + k, 0.5f, 2);
        graft_tensor *b = lt_tensor_rand(3 - ax, d + ax, 40 + k, -1, 1);
        graft_tensor *in[3] = {x, w, b};
        int nin = cases[k].with_b ? 3 : 2;
        graft_graph *g = lt_graph(17);
        int32_t n = lt_node(g, "LayerNormalization", nin, 0, 3);
        graft_node_set_int(g, n, "axis", cases[k].axis, NULL);
        double e = lt_gradcheck(g, n, nin, in, nin == 3 ? 7 : 3, 1e-3, 3e-3, false);
        if (!(e <= 3e-3))
            fail_msg("LayerNormalization axis %lld gradient error %g", (long long)cases[k].axis, e);
        graft_graph_destroy(g);
        for (int i = 0; i < 3; i++)
            graft_tensor_destroy(in[i]);
    }
}

/* Gradients flowing in through Mean and InvStdDev (outputs 1 and 2), which a
 * graph may consume: finite differences of sum(r1 mean + r2 inv). */
static double stats_loss(lt_call *c, const graft_tensor *r1, const graft_tensor *r2)
{
    assert_int_equal(lt_forward(c), GRAFT_OK);
    double s = 0;
    for (int64_t i = 0; i < graft_tensor_nelem(r1); i++)
        s += (double)graft_tensor_f32(c->out[1])[i] * graft_tensor_f32(r1)[i] +
             (double)graft_tensor_f32(c->out[2])[i] * graft_tensor_f32(r2)[i];
    return s;
}

static void test_layer_stat_output_gradients(void **state)
{
    (void)state;
    int64_t d[2] = {3, 6}, dw[1] = {6}, dr[2] = {3, 1};
    graft_tensor *x = lt_tensor_rand(2, d, 50, -2, 2), *w = lt_tensor_rand(1, dw, 51, 0.5f, 2);
    graft_tensor *in[2] = {x, w};
    graft_graph *g = lt_graph(17);
    int32_t n = lt_node(g, "LayerNormalization", 2, 0, 3);
    graft_node_set_float(g, n, "epsilon", 0.1f, NULL);
    lt_call c;
    assert_int_equal(lt_prepare(&c, g, n, 2, in, 0), GRAFT_OK);
    graft_tensor *r1 = lt_tensor_rand(2, dr, 52, -1, 1), *r2 = lt_tensor_rand(2, dr, 53, -1, 1);
    graft_tensor *dx = lt_tensor_f32(2, d, NULL);
    memset(dx->data, 0, dx->nbytes);
    assert_int_equal(lt_forward(&c), GRAFT_OK);
    graft_tensor *d_out[3] = {NULL, r1, r2}, *d_in[2] = {dx, NULL};
    graft_op_call oc;
    memset(&oc, 0, sizeof oc);
    oc.graph = g;
    oc.node = &g->nodes[n];
    oc.params = c.params;
    oc.n_in = 2;
    oc.n_out = 3;
    oc.in = c.in;
    oc.out = c.out;
    oc.d_out = d_out;
    oc.d_in = d_in;
    oc.state = &c.state;
    oc.ctx = &c.ctx;
    oc.err = &c.err;
    assert_int_equal(c.def->backward(&oc), GRAFT_OK);
    float *xv = graft_tensor_f32(x);
    for (int64_t i = 0; i < 18; i++) {
        float x0 = xv[i];
        xv[i] = x0 + 1e-3f;
        double lp = stats_loss(&c, r1, r2);
        xv[i] = x0 - 1e-3f;
        double lm = stats_loss(&c, r1, r2);
        xv[i] = x0;
        double num = (lp - lm) / 2e-3, ana = graft_tensor_f32(dx)[i];
        if (fabs(num - ana) > 2e-3 * fmax(1, fabs(num)))
            fail_msg("LayerNormalization stats gradient elem %lld: numeric %g analytic %g",
                     (long long)i, num, ana);
    }
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);
    graft_tensor_destroy(w);
    graft_tensor_destroy(r1);
    graft_tensor_destroy(r2);
    graft_tensor_destroy(dx);
}

/* ---- MeanVarianceNormalization -------------------------------------------- */

static void test_mvn_by_hand(void **state)
{
    (void)state;
    /* X [1, 2, 1, 2], default axes [0, 2, 3]: per channel over 2 values
     *   channel 0 [1, 3]: mean 2, std 1 -> [-1, 1] / (1 + 1e-9)
     *   channel 1 [5, 5]: std 0 -> [0, 0] */
    int64_t d[4] = {1, 2, 1, 2};
    graft_tensor *x = lt_tensor_f32(4, d, (float[]){1, 3, 5, 5});
    graft_graph *g = lt_graph(13);
    int32_t n = lt_node(g, "MeanVarianceNormalization", 1, 0, 1);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
    expect(c.out[0], (float[]){-1, 1, 0, 0}, 4, 1e-6, "MVN by hand");
    lt_call_fini(&c);
    graft_graph_destroy(g);
    graft_tensor_destroy(x);
}

static void ref_mvn(const float *x, double *y, const int64_t *dims, const bool *red)
{
    int64_t n = 1, gstr[4], s = 1;
    for (int i = 3; i >= 0; i--) {
        gstr[i] = red[i] ? 0 : s;
        s *= red[i] ? 1 : dims[i];
        n *= dims[i];
    }
    int64_t ng = s;
    double *sum = calloc((size_t)ng, sizeof *sum), *sq = calloc((size_t)ng, sizeof *sq);
    int64_t *gid = malloc((size_t)n * sizeof *gid);
    for (int64_t e = 0; e < n; e++) {
        int64_t r = e, gi = 0;
        for (int i = 3; i >= 0; i--) {
            gi += (r % dims[i]) * gstr[i];
            r /= dims[i];
        }
        gid[e] = gi;
        sum[gi] += x[e];
    }
    double cnt = (double)(n / ng);
    for (int64_t e = 0; e < n; e++) {
        double u = x[e] - sum[gid[e]] / cnt;
        sq[gid[e]] += u * u;
    }
    for (int64_t e = 0; e < n; e++)
        y[e] = (x[e] - sum[gid[e]] / cnt) / (sqrt(sq[gid[e]] / cnt) + 1e-9);
    free(sum);
    free(sq);
    free(gid);
}

static void test_mvn_axes(void **state)
{
    (void)state;
    int64_t d[4] = {2, 3, 4, 5};
    graft_tensor *x = lt_tensor_rand(4, d, 60, -3, 3);
    struct { int n; int64_t axes[4]; } cases[] = {
        {-1, {0}}, {2, {2, 3}}, {1, {1}}, {4, {0, 1, 2, 3}}, {2, {-1, 0}}, {1, {3}}, {2, {1, 2}}};
    double want[120];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        bool red[4] = {cases[k].n < 0, false, cases[k].n < 0, cases[k].n < 0};
        for (int i = 0; i < cases[k].n; i++)
            red[cases[k].axes[i] < 0 ? cases[k].axes[i] + 4 : cases[k].axes[i]] = true;
        ref_mvn(graft_tensor_f32(x), want, d, red);
        graft_graph *g = lt_graph(13);
        int32_t n = lt_node(g, "MeanVarianceNormalization", 1, 0, 1);
        if (cases[k].n >= 0)
            graft_node_set_ints(g, n, "axes", cases[k].n, cases[k].axes, NULL);
        lt_call c;
        assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
        expect_d(c.out[0], want, 120, 2e-5, "MVN reference");
        lt_call_fini(&c);
        double e = lt_gradcheck(g, n, 1, &x, 1, 1e-3, 3e-3, false);
        if (!(e <= 3e-3))
            fail_msg("MVN case %zu gradient error %g", k, e);
        graft_graph_destroy(g);
    }
    graft_tensor_destroy(x);
}

/* ---- errors --------------------------------------------------------------- */

static graft_status prepare_status(graft_graph *g, int32_t n, int n_in, graft_tensor **in,
                                   const char *must_say)
{
    lt_call c;
    graft_status st = lt_prepare(&c, g, n, n_in, in, 0);
    if (st && must_say && !strstr(c.err.msg, must_say))
        fail_msg("message '%s' does not say '%s'", c.err.msg, must_say);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    return st;
}

static void test_errors(void **state)
{
    (void)state;
    int64_t d4[4] = {1, 3, 2, 2}, d2[2] = {3, 4}, dc[1] = {3}, d5[1] = {5};
    graft_tensor *x = lt_tensor_rand(4, d4, 1, -1, 1), *x2 = lt_tensor_rand(2, d2, 2, -1, 1);
    graft_tensor *s3 = lt_tensor_rand(1, dc, 3, -1, 1), *s5 = lt_tensor_rand(1, d5, 4, -1, 1);
    graft_tensor *xi = lt_tensor_i64(2, d2, (int64_t[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
    graft_graph *g;
    int32_t n;

    /* LRN: size missing, zero, huge but valid; rank 2; int64 */
    g = lt_graph(13);
    n = lt_node(g, "LRN", 1, 0, 1);
    assert_int_equal(prepare_status(g, n, 1, &x, "size"), GRAFT_ERR_INVALID);
    g = lt_graph(13);
    n = lrn_node(g, 0, 1, 1, 1);
    assert_int_equal(prepare_status(g, n, 1, &x, "LRN node 'n0'"), GRAFT_ERR_INVALID);
    g = lt_graph(13);
    n = lrn_node(g, INT64_MAX, 1, 0.75f, 1);
    lt_call c;
    assert_int_equal(lt_run(&c, g, n, 1, &x), GRAFT_OK);
    lt_call_fini(&c);
    graft_graph_destroy(g);
    g = lt_graph(13);
    n = lrn_node(g, 3, 1, 1, 1);
    assert_int_equal(prepare_status(g, n, 1, &x2, "rank"), GRAFT_ERR_INVALID);
    g = lt_graph(13);
    n = lrn_node(g, 3, 1, 1, 1);
    assert_int_equal(prepare_status(g, n, 1, &xi, NULL), GRAFT_ERR_UNSUPPORTED);

    /* InstanceNormalization: scale of the wrong length, rank 2, missing B */
    graft_tensor *in[3] = {x, s5, s3};
    g = lt_graph(6);
    n = lt_node(g, "InstanceNormalization", 3, 0, 1);
    assert_int_equal(prepare_status(g, n, 3, in, "scale"), GRAFT_ERR_SHAPE);
    in[0] = x2, in[1] = s3;
    g = lt_graph(6);
    n = lt_node(g, "InstanceNormalization", 3, 0, 1);
    assert_int_equal(prepare_status(g, n, 3, in, "rank"), GRAFT_ERR_INVALID);
    in[0] = x;
    g = lt_graph(6);
    n = lt_node(g, "InstanceNormalization", 3, 4, 1);
    assert_int_equal(prepare_status(g, n, 3, in, NULL), GRAFT_ERR_INVALID);

    /* LayerNormalization: axis out of range, Scale that does not broadcast,
     * integer stash_type, a fourth output, int64 X */
    graft_tensor *lin[2] = {x2, lt_tensor_rand(1, (int64_t[]){4}, 5, -1, 1)};
    g = lt_graph(17);
    n = lt_node(g, "LayerNormalization", 2, 0, 1);
    graft_node_set_int(g, n, "axis", 2, NULL);
    assert_int_equal(prepare_status(g, n, 2, lin, "axis"), GRAFT_ERR_INVALID);
    g = lt_graph(17);
    n = lt_node(g, "LayerNormalization", 2, 0, 1);
    graft_node_set_int(g, n, "axis", -3, NULL);
    assert_int_equal(prepare_status(g, n, 2, lin, "axis"), GRAFT_ERR_INVALID);
    graft_tensor *lbad[2] = {x2, s3};
    g = lt_graph(17);
    n = lt_node(g, "LayerNormalization", 2, 0, 1);
    assert_int_equal(prepare_status(g, n, 2, lbad, "Scale"), GRAFT_ERR_SHAPE);
    graft_tensor *lrow[2] = {x2, x2}; /* [3,4] Scale for rows of 4: varies across rows */
    g = lt_graph(17);
    n = lt_node(g, "LayerNormalization", 2, 0, 1);
    assert_int_equal(prepare_status(g, n, 2, lrow, "Scale"), GRAFT_ERR_SHAPE);
    g = lt_graph(17);
    n = lt_node(g, "LayerNormalization", 2, 0, 1);
    graft_node_set_int(g, n, "stash_type", 7, NULL);
    assert_int_equal(prepare_status(g, n, 2, lin, "stash_type"), GRAFT_ERR_INVALID);
    g = lt_graph(17);
    n = lt_node(g, "LayerNormalization", 2, 0, 4);
    assert_int_equal(prepare_status(g, n, 2, lin, "output"), GRAFT_ERR_INVALID);
    graft_tensor *lint[2] = {xi, lin[1]};
    g = lt_graph(17);
    n = lt_node(g, "LayerNormalization", 2, 0, 1);
    assert_int_equal(prepare_status(g, n, 2, lint, NULL), GRAFT_ERR_UNSUPPORTED);
    graft_tensor_destroy(lin[1]);

    /* MVN: default axes on rank 2, an axis out of range, an axis twice */
    g = lt_graph(13);
    n = lt_node(g, "MeanVarianceNormalization", 1, 0, 1);
    assert_int_equal(prepare_status(g, n, 1, &x2, "out of range"), GRAFT_ERR_INVALID);
    g = lt_graph(13);
    n = lt_node(g, "MeanVarianceNormalization", 1, 0, 1);
    graft_node_set_ints(g, n, "axes", 2, (int64_t[]){1, -3}, NULL);
    assert_int_equal(prepare_status(g, n, 1, &x2, "out of range"), GRAFT_ERR_INVALID);
    g = lt_graph(13);
    n = lt_node(g, "MeanVarianceNormalization", 1, 0, 1);
    graft_node_set_ints(g, n, "axes", 2, (int64_t[]){1, -1}, NULL);
    assert_int_equal(prepare_status(g, n, 1, &x2, "twice"), GRAFT_ERR_INVALID);

    graft_tensor_destroy(x);
    graft_tensor_destroy(x2);
    graft_tensor_destroy(s3);
    graft_tensor_destroy(s5);
    graft_tensor_destroy(xi);
}

/* ---- ONNX test data --------------------------------------------------------- */

static void test_onnx_node_data(void **state)
{
    (void)state;
    static const char *const ops[] = {"LRN", "InstanceNormalization", "LayerNormalization",
                                      "MeanVarianceNormalization", NULL};
    int pass, fail, skip;
    if (lt_onnx_suite(ops, &pass, &fail, &skip) < 0)
        skip();
    assert_int_equal(fail, 0);
    /* 2 LRN, 2 InstanceNormalization, 19 LayerNormalization, 1 MVN */
    assert_true(pass >= 24);
}

/* A whole model through graft's importer and plan: PyTorch's
 * InstanceNorm2d export (pytorch-operator test_operator_symbolic_override). */
static void test_pytorch_instancenorm(void **state)
{
    (void)state;
    const char *dir = "/usr/share/libonnx-testdata/data/pytorch-operator/"
                      "test_operator_symbolic_override";
    int r = lt_onnx_model_dir(dir);
    if (r == -2)
        skip();
    assert_int_equal(r, 1);
}

/* ---- the decomposed LayerNormalization -------------------------------------- */

static int32_t gval(graft_graph *g, const char *name)
{
    int32_t v = graft_graph_add_value(g, name, NULL);
    assert_true(v >= 0);
    return v;
}

static void push(int32_t **arr, int32_t *n, int32_t v)
{
    *arr = realloc(*arr, (size_t)(*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = v;
}

static graft_graph *plan_graph(int opset)
{
    graft_graph *g = lt_graph(opset);
    assert_non_null(g);
    return g;
}

static int32_t ginput(graft_graph *g, const char *name, int rank, const int64_t *dims)
{
    int32_t v = gval(g, name);
    graft_value *val = &g->values[v];
    val->kind = GRAFT_VALUE_INPUT;
    val->dtype = GRAFT_FLOAT;
    val->rank = rank;
    memcpy(val->dims, dims, (size_t)rank * sizeof *dims);
    val->has_value_info = true;
    push(&g->inputs, &g->n_inputs, v);
    return v;
}

static int32_t ginit(graft_graph *g, const char *name, int rank, const int64_t *dims,
                     const float *data, bool trainable)
{
    int32_t v = gval(g, name);
    graft_tensor *t = lt_tensor_f32(rank, dims, data);
    graft_value *val = &g->values[v];
    val->kind = GRAFT_VALUE_INITIALIZER;
    val->dtype = GRAFT_FLOAT;
    val->rank = rank;
    memcpy(val->dims, dims, (size_t)rank * sizeof *dims);
    graft_value_set_data(g, v, t);
    g->values[v].trainable = trainable;
    return v;
}

static int32_t gnode(graft_graph *g, const char *op, const char *name, int n_in,
                     const int32_t *in)
{
    int32_t y = gval(g, name);
    int32_t n = graft_graph_add_node(g, op, "", name, n_in, in, 1, &y, NULL);
    assert_true(n >= 0);
    return y;
}

static void mark_output(graft_graph *g, int32_t v)
{
    g->values[v].is_graph_output = true;
    push(&g->outputs, &g->n_outputs, v);
}

enum { DB = 3, DT = 4, DD = 16 };

/* ReduceMean, Sub, Pow, ReduceMean, Add eps, Sqrt, Div, Mul, Add: PyTorch's
 * LayerNorm export before opset 17 (ReduceMean's axes are an attribute there). */
static graft_graph *decomposed_ln(const float *w, const float *b, float eps, int32_t *vw,
                                  int32_t *vb)
{
    graft_graph *g = plan_graph(13);
    int64_t dx[3] = {DB, DT, DD}, dp[1] = {DD}, d1[1] = {1};
    int32_t x = ginput(g, "X", 3, dx);
    *vw = ginit(g, "W", 1, dp, w, true);
    *vb = ginit(g, "B", 1, dp, b, true);
    int32_t two = ginit(g, "two", 1, d1, (float[]){2.0f}, false);
    int32_t e = ginit(g, "eps", 1, d1, &eps, false);
    int32_t mean = gnode(g, "ReduceMean", "mean", 1, &x);
    int64_t axes[1] = {-1};
    graft_node_set_ints(g, g->n_nodes - 1, "axes", 1, axes, NULL);
    int32_t dev = gnode(g, "Sub", "dev", 2, (int32_t[]){x, mean});
    int32_t sq = gnode(g, "Pow", "sq", 2, (int32_t[]){dev, two});
    int32_t var = gnode(g, "ReduceMean", "var", 1, &sq);
    graft_node_set_ints(g, g->n_nodes - 1, "axes", 1, axes, NULL);
    int32_t ve = gnode(g, "Add", "var_eps", 2, (int32_t[]){var, e});
    int32_t sd = gnode(g, "Sqrt", "std", 1, &ve);
    int32_t nrm = gnode(g, "Div", "norm", 2, (int32_t[]){dev, sd});
    int32_t sc = gnode(g, "Mul", "scaled", 2, (int32_t[]){nrm, *vw});
    int32_t y = gnode(g, "Add", "Y", 2, (int32_t[]){sc, *vb});
    mark_output(g, y);
    return g;
}

static graft_graph *fused_ln(const float *w, const float *b, float eps, int32_t *vw,
                             int32_t *vb)
{
    graft_graph *g = plan_graph(17);
    int64_t dx[3] = {DB, DT, DD}, dp[1] = {DD};
    int32_t x = ginput(g, "X", 3, dx);
    *vw = ginit(g, "W", 1, dp, w, true);
    *vb = ginit(g, "B", 1, dp, b, true);
    int32_t y = gnode(g, "LayerNormalization", "Y", 3, (int32_t[]){x, *vw, *vb});
    graft_node_set_float(g, g->n_nodes - 1, "epsilon", eps, NULL);
    mark_output(g, y);
    return g;
}

/* Runs g on x, then backward with dy; copies Y, dW and dB out. */
static void run_ln_graph(graft_graph *g, int32_t vw, int32_t vb, const graft_tensor *x,
                         const graft_tensor *dy, float *y, float *dw, float *db)
{
    graft_plan_options o = graft_plan_options_default();
    o.training = true;
    graft_plan *p = NULL;
    graft_error err = {0};
    graft_shape s = {3, {DB, DT, DD}};
    if (graft_plan_create(g, &o, 1, &s, &p, &err) != GRAFT_OK)
        fail_msg("plan: %s", err.msg);
    if (graft_plan_run(p, (const graft_tensor *const *)&x, &err) != GRAFT_OK)
        fail_msg("run: %s", err.msg);
    memcpy(y, graft_plan_output(p, 0)->data, (size_t)DB * DT * DD * sizeof *y);
    if (graft_plan_backward(p, (const graft_tensor *const *)&dy, &err) != GRAFT_OK)
        fail_msg("backward: %s", err.msg);
    const graft_tensor *gw = graft_plan_grad(p, vw), *gb = graft_plan_grad(p, vb);
    assert_non_null(gw);
    assert_non_null(gb);
    memcpy(dw, gw->data, DD * sizeof *dw);
    memcpy(db, gb->data, DD * sizeof *db);
    graft_plan_destroy(p);
}

static void test_decomposed_layernorm(void **state)
{
    (void)state;
    int64_t dx[3] = {DB, DT, DD}, dp[1] = {DD};
    graft_tensor *x = lt_tensor_rand(3, dx, 70, -3, 3), *dy = lt_tensor_rand(3, dx, 71, -1, 1);
    graft_tensor *w = lt_tensor_rand(1, dp, 72, 0.5f, 2), *b = lt_tensor_rand(1, dp, 73, -1, 1);
    const float eps = 1e-5f;
    static float y1[DB * DT * DD], y2[DB * DT * DD];
    float dw1[DD], dw2[DD], db1[DD], db2[DD];
    int32_t vw, vb;
    graft_graph *g1 = decomposed_ln(graft_tensor_f32(w), graft_tensor_f32(b), eps, &vw, &vb);
    run_ln_graph(g1, vw, vb, x, dy, y1, dw1, db1);
    graft_graph *g2 = fused_ln(graft_tensor_f32(w), graft_tensor_f32(b), eps, &vw, &vb);
    run_ln_graph(g2, vw, vb, x, dy, y2, dw2, db2);
    for (int i = 0; i < DB * DT * DD; i++)
        if (fabsf(y1[i] - y2[i]) > 1e-5f * (1 + fabsf(y1[i])))
            fail_msg("Y elem %d: decomposed %.8g fused %.8g", i, y1[i], y2[i]);
    for (int j = 0; j < DD; j++) {
        if (fabsf(dw1[j] - dw2[j]) > 1e-4f * (1 + fabsf(dw1[j])))
            fail_msg("dW elem %d: decomposed %.8g fused %.8g", j, dw1[j], dw2[j]);
        if (fabsf(db1[j] - db2[j]) > 1e-4f * (1 + fabsf(db1[j])))
            fail_msg("dB elem %d: decomposed %.8g fused %.8g", j, db1[j], db2[j]);
    }
    graft_graph_destroy(g1);
    graft_graph_destroy(g2);
    graft_tensor_destroy(x);
    graft_tensor_destroy(dy);
    graft_tensor_destroy(w);
    graft_tensor_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lrn_by_hand),
        cmocka_unit_test(test_lrn_reference),
        cmocka_unit_test(test_lrn_gradients),
        cmocka_unit_test(test_instance_by_hand),
        cmocka_unit_test(test_instance_gradients),
        cmocka_unit_test(test_layer_by_hand),
        cmocka_unit_test(test_layer_broadcast_params),
        cmocka_unit_test(test_layer_gradients),
        cmocka_unit_test(test_layer_stat_output_gradients),
        cmocka_unit_test(test_mvn_by_hand),
        cmocka_unit_test(test_mvn_axes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_onnx_node_data),
        cmocka_unit_test(test_pytorch_instancenorm),
        cmocka_unit_test(test_decomposed_layernorm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
