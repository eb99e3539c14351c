/* tests/ops/test_conv.c - Conv and FusedConv: infer on good and bad shapes,
 * forward against a naive double-precision reference over random shapes and
 * attributes (every pad/stride/dilation/group/auto_pad combination), backward
 * against central differences, and the ONNX node test data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_util.h"
#include "testutil.h"

typedef struct ref_conv {
    int nsp;
    int64_t n, c, m, group;
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], out[3];
    int act; /* 0 none, 1 relu, 2 clip, 3 leaky, 4 sigmoid, 5 tanh, 6 hardsigmoid */
    float a, b;
} ref_conv;

static double ref_act(const ref_conv *r, double v)
{
    switch (r->act) {
    case 1: return v > 0 ? v : 0;
    case 2: return v < r->a ? r->a : (v > r->b ? r->b : v);
    case 3: return v >= 0 ? v : r->a * v;
    case 4: return 1.0 / (1.0 + exp(-v));
    case 5: return tanh(v);
    case 6: { double h = r->a * v + r->b; return h < 0 ? 0 : (h > 1 ? 1 : h); }
    default: return v;
    }
}

/* Direct definition, all spatial axes padded to 3 (leading extents 1). */
static void ref_conv_forward(const ref_conv *r, const float *x, const float *w, const float *b,
                             const float *z, float *y)
{
    int64_t cg = r->c / r->group, mg = r->m / r->group;
    int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1};
    int64_t pb[3] = {0, 0, 0}, out[3] = {1, 1, 1};
    for (int i = 0; i < r->nsp; i++) {
        int j = 3 - r->nsp + i;
        in[j] = r->in[i], k[j] = r->k[i], s[j] = r->s[i], d[j] = r->d[i], pb[j] = r->pb[i];
        out[j] = r->out[i];
    }
    int64_t yi = 0;
    for (int64_t n = 0; n < r->n; n++)
        for (int64_t m = 0; m < r->m; m++) {
            int64_t g = m / mg;
            for (int64_t oz = 0; oz < out[0]; oz++)
                for (int64_t oy = 0; oy < out[1]; oy++)
                    for (int64_t ox = 0; ox < out[2]; ox++, yi++) {
                        double acc = b ? b[m] : 0.0;
                        for (int64_t cc = 0; cc < cg; cc++)
                            for (int64_t kz = 0; kz < k[0]; kz++)
                                for (int64_t ky = 0; ky < k[1]; ky++)
                                    for (int64_t kx = 0; kx < k[2]; kx++) {
                                        int64_t iz = oz * s[0] - pb[0] + kz * d[0];
                                        int64_t iy = oy * s[1] - pb[1] + ky * d[1];
                                        int64_t ix = ox * s[2] - pb[2] + kx * d[2];
                                        if (iz < 0 || iz >= in[0] || iy < 0 || iy >= in[1] ||
                                            ix < 0 || ix >= in[2])
                                            continue;
                                        int64_t c = g * cg + cc;
                                        double xv = x[(((n * r->c + c) * in[0] + iz) * in[1] + iy) *
                                                          in[2] + ix];
                                        double wv = w[(((m * cg + cc) * k[0] + kz) * k[1] + ky) *
                                                          k[2] + kx];
                                        acc += xv * wv;
                                    }
                        if (z)
                            acc += z[yi];
                        y[yi] = (float)ref_act(r, acc);
                    }
        }
}

/* A random convolution; auto: 0 NOTSET, 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID. */
static void random_conv(uint64_t *rng, ref_conv *r, int *auto_pad, int nsp)
{
    memset(r, 0, sizeof *r);
    r->nsp = nsp;
    r->n = kt_randint(rng, 1, 2);
    int kind = kt_randint(rng, 0, 3); /* 0 plain, 1 grouped, 2 depthwise, 3 pointwise */
    if (kind == 2) {
        r->c = kt_randint(rng, 1, 6);
        r->group = r->c;
        r->m = r->c * kt_randint(rng, 1, 3);
    } else if (kind == 1) {
        r->group = kt_randint(rng, 2, 3);
        r->c = r->group * kt_randint(rng, 1, 3);
        r->m = r->group * kt_randint(rng, 1, 3);
    } else {
        r->group = 1;
        r->c = kt_randint(rng, 1, 5);
        r->m = kt_randint(rng, 1, 7);
    }
    *auto_pad = kind == 3 ? 0 : kt_randint(rng, 0, 3);
    for (int i = 0; i < nsp; i++) {
        int64_t lim = nsp == 3 ? 5 : 9;
        r->in[i] = kt_randint(rng, 1, (int)lim);
        r->k[i] = kind == 3 ? 1 : kt_randint(rng, 1, 3);
        r->s[i] = kind == 3 ? 1 : kt_randint(rng, 1, 3);
        r->d[i] = kind == 3 ? 1 : kt_randint(rng, 1, 2);
        int64_t ek = (r->k[i] - 1) * r->d[i] + 1;
        if (*auto_pad == 0) {
            r->pb[i] = kind == 3 ? 0 : kt_randint(rng, 0, 2);
            r->pe[i] = kind == 3 ? 0 : kt_randint(rng, 0, 2);
            if (r->in[i] + r->pb[i] + r->pe[i] < ek)
                r->pe[i] += ek - (r->in[i] + r->pb[i] + r->pe[i]);
            r->out[i] = (r->in[i] + r->pb[i] + r->pe[i] - ek) / r->s[i] + 1;
        } else if (*auto_pad == 3) {
            if (r->in[i] < ek)
                r->in[i] = ek;
            r->out[i] = (r->in[i] - ek) / r->s[i] + 1;
        } else {
            r->out[i] = (r->in[i] + r->s[i] - 1) / r->s[i];
            int64_t total = (r->out[i] - 1) * r->s[i] + ek - r->in[i];
            if (total < 0)
                total = 0;
            r->pb[i] = *auto_pad == 1 ? total / 2 : total - total / 2;
            r->pe[i] = total - r->pb[i];
        }
    }
}

static const char *auto_pad_names[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};

/* Builds the node; explicit pads are set for NOTSET. */
static kt_node *make_conv(const ref_conv *r, int auto_pad, bool bias, bool fused, bool z,
                          bool kernel_attr, uint64_t *rng)
{
    kt_node *k = kt_node_new(fused ? "FusedConv" : "Conv", fused ? "com.microsoft" : "", fused ? 1 : 13,
                             fused ? 4 : 3, 1);
    assert_non_null(k);
    int nsp = r->nsp;
    int64_t ks[3], ss[3], ds[3], ps[6];
    for (int i = 0; i < nsp; i++) {
        ks[i] = r->k[i];
        ss[i] = r->s[i];
        ds[i] = r->d[i];
        ps[i] = r->pb[i];
        ps[i + nsp] = r->pe[i];
    }
    if (kernel_attr)
        kt_set_ints(k, "kernel_shape", nsp, ks);
    kt_set_ints(k, "strides", nsp, ss);
    kt_set_ints(k, "dilations", nsp, ds);
    if (auto_pad == 0)
        kt_set_ints(k, "pads", 2 * nsp, ps);
    else
        kt_set_string(k, "auto_pad", auto_pad_names[auto_pad]);
    kt_set_int(k, "group", r->group);
    if (fused) {
        static const char *names[] = {"", "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid"};
        if (r->act)
            kt_set_string(k, "activation", names[r->act]);
        float ap[2] = {r->a, r->b};
        if (r->act == 2 || r->act == 6)
            kt_set_floats(k, "activation_params", 2, ap);
        else if (r->act == 3)
            kt_set_floats(k, "activation_params", 1, ap);
    }
    int64_t xd[5] = {r->n, r->c}, wd[5] = {r->m, r->c / r->group}, yd[5] = {r->n, r->m};
    for (int i = 0; i < nsp; i++) {
        xd[2 + i] = r->in[i];
        wd[2 + i] = r->k[i];
        yd[2 + i] = r->out[i];
    }
    kt_set_input(k, 0, nsp + 2, xd, rng);
    kt_set_input(k, 1, nsp + 2, wd, rng);
    if (bias)
        kt_set_input(k, 2, 1, &r->m, rng);
    if (z)
        kt_set_input(k, 3, nsp + 2, yd, rng);
    return k;
}

static void check_forward(const ref_conv *r, int auto_pad, bool bias, bool fused, bool z,
                          bool kernel_attr, uint64_t *rng)
{
    kt_node *k = make_conv(r, auto_pad, bias, fused, z, kernel_attr, rng);
    k->ctx.n_threads = 1 + (int)(kt_rand(rng) % 3); /* every threading split */
    assert_int_equal(kt_parse(k), GRAFT_OK);
    graft_status st = kt_infer(k);
    if (st != GRAFT_OK)
        printf("infer: %s\n", k->err.msg);
    assert_int_equal(st, GRAFT_OK);
    assert_int_equal(k->out[0]->rank, r->nsp + 2);
    assert_int_equal(k->out[0]->dims[0], r->n);
    assert_int_equal(k->out[0]->dims[1], r->m);
    for (int i = 0; i < r->nsp; i++)
        assert_int_equal(k->out[0]->dims[2 + i], r->out[i]);
    assert_int_equal(kt_forward(k), GRAFT_OK);
    int64_t n = graft_tensor_nelem(k->out[0]);
    float *ref = malloc((size_t)n * sizeof *ref);
    ref_conv_forward(r, graft_tensor_f32(k->in[0]), graft_tensor_f32(k->in[1]),
                     bias ? graft_tensor_f32(k->in[2]) : NULL, z ? graft_tensor_f32(k->in[3]) : NULL,
                     ref);
    double e = kt_close(graft_tensor_f32(k->out[0]), ref, n, 1e-5, 1e-4);
    if (e > 1.0)
        printf("conv mismatch: nsp %d n %lld c %lld m %lld group %lld in %lldx%lld k %lldx%lld "
               "s %lld auto_pad %d act %d threads %d err %g\n",
               r->nsp, (long long)r->n, (long long)r->c, (long long)r->m, (long long)r->group,
               (long long)r->in[0], (long long)r->in[1], (long long)r->k[0], (long long)r->k[1],
               (long long)r->s[0], auto_pad, r->act, k->ctx.n_threads, e);
    assert_true(e <= 1.0);
    free(ref);
    kt_node_free(k);
}

static void test_conv_forward_random(void **state)
{
    (void)state;
    uint64_t rng = 0x1234567;
    for (int it = 0; it < 600; it++) {
        ref_conv r;
        int ap;
        random_conv(&rng, &r, &ap, 1 + it % 3);
        check_forward(&r, ap, it % 2 == 0, false, false, it % 3 != 0, &rng);
    }
}

static void test_fused_conv_forward(void **state)
{
    (void)state;
    uint64_t rng = 0xfeed;
    for (int it = 0; it < 210; it++) {
        ref_conv r;
        int ap;
        random_conv(&rng, &r, &ap, 1 + it % 2 + (it % 7 == 0));
        r.act = it % 7;
        r.a = r.act == 2 ? -0.3f : (r.act == 3 ? 0.1f : 0.2f);
        r.b = r.act == 2 ? 0.4f : 0.5f;
        check_forward(&r, ap, it % 3 != 0, true, it % 2 == 0, true, &rng);
    }
}

/* Depthwise (group = C, any multiplier): every stride/kernel/dilation the
 * direct kernels specialise, on planes from 1x1 up, 1-D and 2-D. */
static void test_depthwise_sweep(void **state)
{
    (void)state;
    uint64_t rng = 0xd1;
    int64_t ks[] = {1, 2, 3, 5}, hw[] = {1, 2, 5, 7, 12};
    for (int ki = 0; ki < 4; ki++)
        for (int s = 1; s <= 3; s++)
            for (int d = 1; d <= 2; d++)
                for (int hi = 0; hi < 5; hi++)
                    for (int nsp = 1; nsp <= 2; nsp++) {
                        ref_conv r = {.nsp = nsp, .n = 2, .c = 3, .group = 3};
                        r.m = 3 * (1 + (hi + ki) % 2);
                        for (int i = 0; i < nsp; i++) {
                            r.in[i] = hw[hi] + i;
                            r.k[i] = ks[ki];
                            r.s[i] = s;
                            r.d[i] = d;
                            r.pb[i] = (ks[ki] - 1) * d / 2;
                            r.pe[i] = (ks[ki] - 1) * d - r.pb[i] + (i == 0);
                            r.out[i] = (r.in[i] + r.pb[i] + r.pe[i] - (ks[ki] - 1) * d - 1) / s + 1;
                        }
                        r.act = (ki + s + d) % 7;
                        r.a = r.act == 2 ? -0.3f : 0.1f;
                        r.b = r.act == 2 ? 0.4f : 0.5f;
                        check_forward(&r, 0, true, true, hi % 2 == 0, true, &rng);
                    }
}

/* Small planes at batch > 1 (the path that puts several images' im2col
 * side by side in one GEMM and scatters the result per image): batch sizes
 * that do and do not divide into blocks, odd plane sizes, "same" padding
 * (the contiguous im2col rows) and not, strides, groups, pointwise, 1-D,
 * every fused activation with and without the residual Z, 1-3 threads. */
static void test_conv_forward_batched(void **state)
{
    (void)state;
    uint64_t rng = 0xba7c4;
    static const int64_t batch[] = {2, 3, 5, 8, 9, 17};
    static const int64_t hw[][2] = {{7, 7}, {5, 7}, {3, 3}, {14, 9}, {1, 6}, {2, 1}};
    int it = 0;
    for (int bi = 0; bi < 6; bi++)
        for (int hi = 0; hi < 6; hi++)
            for (int kind = 0; kind < 5; kind++, it++) {
                /* 0 same 3x3, 1 grouped same, 2 stride 2, 3 valid 3x2 dilated, 4 pointwise */
                ref_conv r = {.nsp = hw[hi][0] == 1 && kind == 4 ? 1 : 2, .n = batch[bi]};
                r.group = kind == 1 ? (it % 2 ? 2 : 3) : 1;
                r.c = r.group * (1 + it % 4);
                /* kind 0: 4-20 rows, the kernel's 8-row blocks and the rest */
                r.m = r.group * (1 + (it / 5 + it) % 5) * (kind == 0 ? 4 : 1);
                for (int i = 0; i < r.nsp; i++) {
                    int64_t k = kind == 4 ? 1 : (kind == 3 && i == 1 ? 2 : 3);
                    int64_t d = kind == 3 ? 2 : 1, s = kind == 2 ? 2 : 1;
                    r.in[i] = r.nsp == 1 ? hw[hi][1] : hw[hi][i];
                    r.k[i] = k;
                    r.s[i] = s;
                    r.d[i] = d;
                    if (kind == 3) { /* valid: grow the input to the dilated kernel */
                        if (r.in[i] < (k - 1) * d + 1)
                            r.in[i] = (k - 1) * d + 1;
                    } else if (kind != 4) {
                        r.pb[i] = (k - 1) / 2;
                        r.pe[i] = k - 1 - r.pb[i];
                    }
                    r.out[i] = (r.in[i] + r.pb[i] + r.pe[i] - (k - 1) * d - 1) / s + 1;
                }
                r.act = it % 7;
                r.a = r.act == 2 ? -0.3f : (r.act == 3 ? 0.1f : 0.2f);
                r.b = r.act == 2 ? 0.4f : 0.5f;
                check_forward(&r, 0, it % 3 != 0, true, it % 2 == 0, true, &rng);
                r.act = 0; /* plain Conv */
                check_forward(&r, 0, it % 2 == 0, false, false, true, &rng);
            }
}

/* A larger case that exercises the BLIS and multi-threaded paths. */
static void test_conv_forward_large(void **state)
{
    (void)state;
    uint64_t rng = 77;
    ref_conv cases[6] = {
        {.nsp = 2, .n = 2, .c = 32, .m = 48, .group = 1, .in = {20, 19}, .k = {3, 3}, .s = {1, 1},
         .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}, .out = {20, 19}},
        {.nsp = 2, .n = 1, .c = 64, .m = 96, .group = 1, .in = {14, 14}, .k = {1, 1}, .s = {1, 1},
         .d = {1, 1}, .out = {14, 14}},
        {.nsp = 2, .n = 2, .c = 48, .m = 96, .group = 48, .in = {17, 18}, .k = {3, 3},
         .s = {2, 2}, .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}, .out = {9, 9}},
        {.nsp = 2, .n = 1, .c = 3, .m = 16, .group = 1, .in = {32, 32}, .k = {7, 7}, .s = {2, 2},
         .d = {1, 1}, .pb = {3, 3}, .pe = {3, 3}, .out = {16, 16}},
        /* one 7x7 image: threads split the weight rows (40: blocks of 24 and 16) */
        {.nsp = 2, .n = 1, .c = 64, .m = 40, .group = 1, .in = {7, 7}, .k = {3, 3}, .s = {1, 1},
         .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}, .out = {7, 7}},
        /* the deep layer of models/fmnist_cnn.onnx, several images per GEMM */
        {.nsp = 2, .n = 9, .c = 64, .m = 128, .group = 1, .in = {7, 7}, .k = {3, 3},
         .s = {1, 1}, .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}, .out = {7, 7}},
    };
    for (int i = 0; i < 6; i++)
        for (int rep = 0; rep < 3; rep++) /* each draws its thread count: 1-3 */
            check_forward(&cases[i], 0, true, false, false, true, &rng);
    /* the row split again, 2 images, with the fused write-back and Z */
    ref_conv fused = cases[4];
    fused.n = 2;
    fused.act = 3;
    fused.a = 0.1f;
    for (int rep = 0; rep < 3; rep++)
        check_forward(&fused, 0, rep != 1, true, rep != 2, true, &rng);
}

static graft_status infer_shapes(int nsp_attr_k, int nsp_attr_s, int n_pads, int64_t group,
                                 int xr, const int64_t *xd, int wr, const int64_t *wd,
                                 const int64_t *bd, int64_t *out_dims, int *out_rank, char *msg)
{
    kt_node *k = kt_node_new("Conv", "", 13, 3, 1);
    int64_t v[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    int64_t kv[8];
    for (int i = 0; i < 8; i++)
        kv[i] = wr > 2 + i ? wd[2 + i] : 3;
    if (nsp_attr_k >= 0)
        kt_set_ints(k, "kernel_shape", nsp_attr_k, kv);
    if (nsp_attr_s >= 0)
        kt_set_ints(k, "strides", nsp_attr_s, v);
    if (n_pads >= 0)
        kt_set_ints(k, "pads", n_pads, (int64_t[8]){0});
    kt_set_int(k, "group", group);
    kt_set_input_shape(k, 0, GRAFT_FLOAT, xr, xd);
    kt_set_input_shape(k, 1, GRAFT_FLOAT, wr, wd);
    if (bd)
        kt_set_input_shape(k, 2, GRAFT_FLOAT, 1, bd);
    graft_status st = kt_parse(k);
    if (st == GRAFT_OK)
        st = kt_infer(k);
    if (st == GRAFT_OK && out_dims) {
        *out_rank = k->out[0]->rank;
        memcpy(out_dims, k->out[0]->dims, sizeof(int64_t) * (size_t)k->out[0]->rank);
    }
    if (msg)
        snprintf(msg, 512, "%.500s", k->err.msg);
    kt_node_free(k);
    return st;
}

static void test_conv_infer(void **state)
{
    (void)state;
    char msg[512];
    int64_t od[8];
    int orank = 0;
    int64_t x4[] = {1, 1, 5, 5}, w5[] = {1, 1, 3, 3, 3}, w4[] = {1, 1, 3, 3};
    /* B05: W rank 5 against X rank 4, no kernel_shape */
    assert_int_equal(infer_shapes(-1, -1, -1, 1, 4, x4, 5, w5, NULL, NULL, NULL, msg),
                     GRAFT_ERR_INVALID);
    assert_non_null(strstr(msg, "test_node"));
    /* pads of length 2 for a 2-D conv; strides of length 3 */
    assert_int_equal(infer_shapes(-1, -1, 2, 1, 4, x4, 4, w4, NULL, NULL, NULL, msg),
                     GRAFT_ERR_INVALID);
    assert_non_null(strstr(msg, "pads"));
    assert_int_equal(infer_shapes(-1, 3, -1, 1, 4, x4, 4, w4, NULL, NULL, NULL, msg),
                     GRAFT_ERR_INVALID);
    assert_non_null(strstr(msg, "strides"));
    /* kernel_shape [5,5] against W 3x3 */
    {
        kt_node *k = kt_node_new("Conv", "", 13, 2, 1);
        kt_set_ints(k, "kernel_shape", 2, (int64_t[]){5, 5});
        kt_set_input_shape(k, 0, GRAFT_FLOAT, 4, x4);
        kt_set_input_shape(k, 1, GRAFT_FLOAT, 4, w4);
        assert_int_equal(kt_parse(k), GRAFT_OK);
        assert_int_equal(kt_infer(k), GRAFT_ERR_SHAPE);
        kt_node_free(k);
    }
    /* X has 3 channels but W.shape[1] * group = 2 */
    int64_t x3c[] = {1, 3, 5, 5}, w2c[] = {4, 1, 3, 3};
    assert_int_equal(infer_shapes(-1, -1, -1, 2, 4, x3c, 4, w2c, NULL, NULL, NULL, msg),
                     GRAFT_ERR_SHAPE);
    /* M = 3 with group 2 */
    int64_t x2c[] = {1, 2, 5, 5}, w3m[] = {3, 1, 3, 3};
    assert_int_equal(infer_shapes(-1, -1, -1, 2, 4, x2c, 4, w3m, NULL, NULL, NULL, msg),
                     GRAFT_ERR_INVALID);
    /* bias of the wrong length */
    int64_t b2[] = {2};
    assert_int_equal(infer_shapes(-1, -1, -1, 1, 4, x4, 4, w4, b2, NULL, NULL, msg),
                     GRAFT_ERR_SHAPE);
    /* rank-2 X */
    int64_t x2[] = {3, 4}, w2[] = {3, 4};
    assert_int_equal(infer_shapes(-1, -1, -1, 1, 2, x2, 2, w2, NULL, NULL, NULL, msg),
                     GRAFT_ERR_INVALID);
    /* kernel larger than the (unpadded) input */
    int64_t w7[] = {1, 1, 7, 7};
    assert_int_equal(infer_shapes(-1, -1, -1, 1, 4, x4, 4, w7, NULL, NULL, NULL, msg),
                     GRAFT_ERR_SHAPE);
    /* good: symbolic batch and kernel_shape inferred from W */
    int64_t xs[] = {-1, 1, 5, 5}, b1[] = {1};
    assert_int_equal(infer_shapes(-1, -1, 4, 1, 4, xs, 4, w4, b1, od, &orank, msg), GRAFT_OK);
    assert_int_equal(orank, 4);
    assert_int_equal(od[0], -1);
    assert_int_equal(od[1], 1);
    assert_int_equal(od[2], 3);
    assert_int_equal(od[3], 3);
    /* bad auto_pad string and non-positive group are parse errors */
    kt_node *k = kt_node_new("Conv", "", 13, 2, 1);
    kt_set_string(k, "auto_pad", "SAME");
    assert_int_equal(kt_parse(k), GRAFT_ERR_INVALID);
    kt_node_free(k);
    k = kt_node_new("Conv", "", 13, 2, 1);
    kt_set_int(k, "group", 0);
    assert_int_equal(kt_parse(k), GRAFT_ERR_INVALID);
    kt_node_free(k);
    /* FusedConv with an unknown activation, and Clip without its parameters */
    k = kt_node_new("FusedConv", "com.microsoft", 1, 2, 1);
    kt_set_string(k, "activation", "Gelu");
    assert_int_equal(kt_parse(k), GRAFT_ERR_UNSUPPORTED);
    kt_node_free(k);
    k = kt_node_new("FusedConv", "com.microsoft", 1, 2, 1);
    kt_set_string(k, "activation", "Clip");
    assert_int_equal(kt_parse(k), GRAFT_ERR_INVALID);
    kt_node_free(k);
    /* Z of the wrong shape */
    k = kt_node_new("FusedConv", "com.microsoft", 1, 4, 1);
    kt_set_input_shape(k, 0, GRAFT_FLOAT, 4, x4);
    kt_set_input_shape(k, 1, GRAFT_FLOAT, 4, w4);
    kt_set_input_shape(k, 3, GRAFT_FLOAT, 4, x4);
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_ERR_SHAPE);
    kt_node_free(k);
}

static void grad_case(const ref_conv *r, int auto_pad, uint64_t *rng)
{
    kt_node *k = make_conv(r, auto_pad, true, false, false, true, rng);
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_OK);
    for (int wrt = 0; wrt < 3; wrt++) {
        int bad = kt_grad_check(k, wrt, 1e-2, 2e-3, 2e-3, 60, rng);
        if (bad)
            printf("conv grad wrt %d: nsp %d c %lld m %lld group %lld auto_pad %d\n", wrt, r->nsp,
                   (long long)r->c, (long long)r->m, (long long)r->group, auto_pad);
        assert_int_equal(bad, 0);
    }
    kt_node_free(k);
}

static void test_conv_backward(void **state)
{
    (void)state;
    uint64_t rng = 0xabcdef;
    for (int it = 0; it < 120; it++) {
        ref_conv r;
        int ap;
        random_conv(&rng, &r, &ap, 1 + it % 3);
        grad_case(&r, ap, &rng);
    }
    ref_conv big = {.nsp = 2, .n = 2, .c = 16, .m = 24, .group = 1, .in = {12, 11}, .k = {3, 3},
                    .s = {2, 1}, .d = {1, 2}, .pb = {1, 0}, .pe = {2, 1}, .out = {7, 8}};
    big.out[0] = (12 + 3 - 3) / 2 + 1;
    big.out[1] = (11 + 1 - 5) / 1 + 1;
    grad_case(&big, 0, &rng);
    ref_conv dw = {.nsp = 2, .n = 2, .c = 32, .m = 32, .group = 32, .in = {9, 9}, .k = {3, 3},
                   .s = {1, 1}, .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}, .out = {9, 9}};
    grad_case(&dw, 0, &rng);
}

/* FusedConv backward: through the activation (derivative read off Y), into
 * X, W, B and Z. Kinked activations may meet a kink inside the difference
 * step now and then, so they are allowed a few stray points; smooth ones none. */
static void test_fused_conv_backward(void **state)
{
    (void)state;
    uint64_t rng = 0x5eed;
    for (int it = 0; it < 70; it++) {
        ref_conv r;
        int ap;
        random_conv(&rng, &r, &ap, 1 + it % 2);
        r.act = it % 7;
        r.a = r.act == 2 ? -0.3f : (r.act == 3 ? 0.1f : 0.2f);
        r.b = r.act == 2 ? 0.4f : 0.5f;
        kt_node *k = make_conv(&r, ap, true, true, true, true, &rng);
        assert_int_equal(kt_parse(k), GRAFT_OK);
        assert_int_equal(kt_infer(k), GRAFT_OK);
        bool smooth = r.act == 0 || r.act == 4 || r.act == 5;
        for (int wrt = 0; wrt < 4; wrt++) {
            int bad = kt_grad_check(k, wrt, smooth ? 1e-2 : 1e-3, 3e-3, 3e-3, 40, &rng);
            if (bad > (smooth ? 0 : 4))
                printf("fused conv grad wrt %d act %d: %d bad\n", wrt, r.act, bad);
            assert_true(bad <= (smooth ? 0 : 4));
        }
        kt_node_free(k);
    }
}

static void test_conv_onnx_node_data(void **state)
{
    (void)state;
    static const char *const prefixes[] = {"test_conv_", "test_basic_conv_"};
    int n = kt_run_onnx_tests(prefixes, 2, "integer");
    printf("ran %d ONNX conv node tests\n", n);
    if (n == 0)
        skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_infer),
        cmocka_unit_test(test_conv_forward_random),
        cmocka_unit_test(test_fused_conv_forward),
        cmocka_unit_test(test_conv_forward_large),
        cmocka_unit_test(test_conv_forward_batched),
        cmocka_unit_test(test_depthwise_sweep),
        cmocka_unit_test(test_conv_backward),
        cmocka_unit_test(test_fused_conv_backward),
        cmocka_unit_test(test_conv_onnx_node_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
