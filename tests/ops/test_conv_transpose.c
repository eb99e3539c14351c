/* tests/ops/test_conv_transpose.c - ConvTranspose: hand-derived values (1-D
 * and 2-D, stride 2, output_padding, group 2, dilation, pads, every auto_pad,
 * output_shape with cropping and with negative pads); forward and backward
 * against a naive double-precision reference over random shapes and
 * attributes, one and two threads, sizes that take the threaded, tiled and
 * pointwise paths; finite-difference gradients of X, W and B; infer on bad
 * inputs and hostile attributes (a status, never a crash); the ONNX node
 * tests and the PyTorch-converted ConvTranspose models. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_util.h"
#include "lightops_util.h"
#include "testutil.h"

#define DATA_DIR "/usr/share/libonnx-testdata/data"

static graft_tensor *tensor(int rank, const int64_t *dims, const float *v)
{
    return lt_tensor_f32(rank, dims, v);
}

/* ConvTranspose at opset 11 on x, w and (when non-NULL) b. */
static kt_node *make(graft_tensor *x, graft_tensor *w, graft_tensor *b)
{
    kt_node *k = kt_node_new("ConvTranspose", "", 11, b ? 3 : 2, 1);
    assert_non_null(k);
    kt_set_input_tensor(k, 0, x);
    kt_set_input_tensor(k, 1, w);
    if (b)
        kt_set_input_tensor(k, 2, b);
    return k;
}

static void expect(kt_node *k, int rank, const int64_t *yd, const float *want)
{
    graft_status st = kt_parse(k);
    if (st == GRAFT_OK)
        st = kt_infer(k);
    if (st)
        printf("%s\n", k->err.msg);
    assert_int_equal(st, GRAFT_OK);
    assert_int_equal(k->out[0]->rank, rank);
    for (int i = 0; i < rank; i++)
        assert_int_equal(k->out[0]->dims[i], yd[i]);
    assert_int_equal(kt_forward(k), GRAFT_OK);
    int64_t n = graft_tensor_nelem(k->out[0]);
    for (int64_t i = 0; i < n; i++) {
        float y = graft_tensor_f32(k->out[0])[i];
        if (fabsf(y - want[i]) > 1e-5f)
            printf("element %lld: %g, expected %g\n", (long long)i, y, want[i]);
        assert_true(fabsf(y - want[i]) <= 1e-5f);
    }
    kt_node_free(k);
}

/* Y[o] = B + Σ_{i,t: o = i·s - pb + t·d} X[i]·W[t] per channel, worked by hand. */
static void test_convt_1d_values(void **state)
{
    (void)state;
    const float x3[] = {1, 2, 3}, w2[] = {1, 10}, w3[] = {1, 1, 1};
    /* stride 2, k 2, output_padding 1: out = 2·(3-1) + 1 + 2 = 7;
     * x[i] lands on y[2i] (×1) and y[2i+1] (×10), y[6] only gets the bias 0.5 */
    kt_node *k = make(tensor(3, (int64_t[]){1, 1, 3}, x3), tensor(3, (int64_t[]){1, 1, 2}, w2),
                      tensor(1, (int64_t[]){1}, (float[]){0.5f}));
    kt_set_ints(k, "strides", 1, (int64_t[]){2});
    kt_set_ints(k, "output_padding", 1, (int64_t[]){1});
    expect(k, 3, (int64_t[]){1, 1, 7}, (float[]){1.5f, 10.5f, 2.5f, 20.5f, 3.5f, 30.5f, 0.5f});

    /* dilation 2, k 3, stride 1: ek = 5, out = 2 - 1 + 5 = 6; x[i] lands on
     * y[i], y[i+2], y[i+4] with weights 1, 2, 3:
     * y = [1, 2, 2, 4, 3, 6] for x = [1, 2] */
    k = make(tensor(3, (int64_t[]){1, 1, 2}, (float[]){1, 2}),
             tensor(3, (int64_t[]){1, 1, 3}, (float[]){1, 2, 3}), NULL);
    kt_set_ints(k, "dilations", 1, (int64_t[]){2});
    expect(k, 3, (int64_t[]){1, 1, 6}, (float[]){1, 2, 2, 4, 3, 6});

    /* group 2, C = 2, W 2×1×2: channel 0 ([1,2] with [1,1]) -> [1,3,2],
     * channel 1 ([3,4] with [1,-1]) -> [3, -3+4, -4] = [3,1,-4]; no mixing */
    k = make(tensor(3, (int64_t[]){1, 2, 2}, (float[]){1, 2, 3, 4}),
             tensor(3, (int64_t[]){2, 1, 2}, (float[]){1, 1, 1, -1}), NULL);
    kt_set_int(k, "group", 2);
    expect(k, 3, (int64_t[]){1, 2, 3}, (float[]){1, 3, 2, 3, 1, -4});

    /* x = [1,2,3], w = [1,1,1], stride 2: the full (unpadded) output is
     * i=0 -> y[0..2] += 1, i=1 -> y[2..4] += 2, i=2 -> y[4..6] += 3:
     * natural = [1, 1, 3, 2, 5, 3, 3] (7 = 2·2 + 3). */
    static const float natural[] = {1, 1, 3, 2, 5, 3, 3};
    /* SAME_UPPER: out = 3·2 = 6, total pad 1, the odd unit at the end */
    k = make(tensor(3, (int64_t[]){1, 1, 3}, x3), tensor(3, (int64_t[]){1, 1, 3}, w3), NULL);
    kt_set_ints(k, "strides", 1, (int64_t[]){2});
    kt_set_string(k, "auto_pad", "SAME_UPPER");
    expect(k, 3, (int64_t[]){1, 1, 6}, natural);
    /* SAME_LOWER: the odd unit at the beginning */
    k = make(tensor(3, (int64_t[]){1, 1, 3}, x3), tensor(3, (int64_t[]){1, 1, 3}, w3), NULL);
    kt_set_ints(k, "strides", 1, (int64_t[]){2});
    kt_set_string(k, "auto_pad", "SAME_LOWER");
    expect(k, 3, (int64_t[]){1, 1, 6}, natural + 1);
    /* VALID: no padding, pads ignored */
    k = make(tensor(3, (int64_t[]){1, 1, 3}, x3), tensor(3, (int64_t[]){1, 1, 3}, w3), NULL);
    kt_set_ints(k, "strides", 1, (int64_t[]){2});
    kt_set_ints(k, "pads", 2, (int64_t[]){1, 1});
    kt_set_string(k, "auto_pad", "VALID");
    expect(k, 3, (int64_t[]){1, 1, 7}, natural);
    /* explicit pads [2, 1] crop two at the start, one at the end */
    k = make(tensor(3, (int64_t[]){1, 1, 3}, x3), tensor(3, (int64_t[]){1, 1, 3}, w3), NULL);
    kt_set_ints(k, "strides", 1, (int64_t[]){2});
    kt_set_ints(k, "pads", 2, (int64_t[]){2, 1});
    expect(k, 3, (int64_t[]){1, 1, 4}, natural + 2);
    /* output_shape 5 (overrides pads): total 2, split 1 + 1 */
    k = make(tensor(3, (int64_t[]){1, 1, 3}, x3), tensor(3, (int64_t[]){1, 1, 3}, w3), NULL);
    kt_set_ints(k, "strides", 1, (int64_t[]){2});
    kt_set_ints(k, "pads", 2, (int64_t[]){0, 0});
    kt_set_ints(k, "output_shape", 1, (int64_t[]){5});
    expect(k, 3, (int64_t[]){1, 1, 5}, natural + 1);
    /* output_shape 8: total -1; NOTSET puts total - floor(-1/2) = 0 at the
     * start and -1 at the end (one extra position holding only the bias) */
    k = make(tensor(3, (int64_t[]){1, 1, 3}, x3), tensor(3, (int64_t[]){1, 1, 3}, w3),
             tensor(1, (int64_t[]){1}, (float[]){0.25f}));
    kt_set_ints(k, "strides", 1, (int64_t[]){2});
    kt_set_ints(k, "output_shape", 1, (int64_t[]){8});
    expect(k, 3, (int64_t[]){1, 1, 8},
           (float[]){1.25f, 1.25f, 3.25f, 2.25f, 5.25f, 3.25f, 3.25f, 0.25f});
    /* ... SAME_UPPER puts floor(-1/2) = -1 at the start: shifted right by one */
    k = make(tensor(3, (int64_t[]){1, 1, 3}, x3), tensor(3, (int64_t[]){1, 1, 3}, w3), NULL);
    kt_set_ints(k, "strides", 1, (int64_t[]){2});
    kt_set_string(k, "auto_pad", "SAME_UPPER");
    kt_set_ints(k, "output_shape", 1, (int64_t[]){8});
    expect(k, 3, (int64_t[]){1, 1, 8}, (float[]){0, 1, 1, 3, 2, 5, 3, 3});
    /* stride 3, k 1, SAME_LOWER: out 9, total = 3·2 + 1 - 9 = -2, start
     * -2 - (-1) = -1: x[i] lands on 3i + 1 */
    k = make(tensor(3, (int64_t[]){1, 1, 3}, x3), tensor(3, (int64_t[]){1, 1, 1}, (float[]){2}),
             NULL);
    kt_set_ints(k, "strides", 1, (int64_t[]){3});
    kt_set_string(k, "auto_pad", "SAME_LOWER");
    expect(k, 3, (int64_t[]){1, 1, 9}, (float[]){0, 2, 0, 0, 4, 0, 0, 6, 0});
}

static void test_convt_2d_values(void **state)
{
    (void)state;
    /* X = [[1,2],[3,4]], two output channels: W0 = [[1,2],[3,4]], W1 = ones;
     * stride 2 with a 2×2 kernel tiles the output without overlap, each
     * X[i,j] writing X[i,j]·W at rows 2i.., cols 2j..:
     *   Y0 = [[1,2,2,4],[3,4,6,8],[3,6,4,8],[9,12,12,16]]
     *   Y1 = [[1,1,2,2],[1,1,2,2],[3,3,4,4],[3,3,4,4]]   (+ bias 1, -1) */
    static const float x[] = {1, 2, 3, 4}, w[] = {1, 2, 3, 4, 1, 1, 1, 1};
    kt_node *k = make(tensor(4, (int64_t[]){1, 1, 2, 2}, x), tensor(4, (int64_t[]){1, 2, 2, 2}, w),
                      tensor(1, (int64_t[]){2}, (float[]){1, -1}));
    kt_set_ints(k, "strides", 2, (int64_t[]){2, 2});
    kt_set_ints(k, "kernel_shape", 2, (int64_t[]){2, 2});
    expect(k, 4, (int64_t[]){1, 2, 4, 4},
           (float[]){2, 3, 3, 5, 4, 5, 7, 9, 4, 7, 5, 9, 10, 13, 13, 17,
                     0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3});
    /* pads [top 1, left 0, bottom 0, right 1]: rows 1..3, cols 0..2 of Y0 */
    k = make(tensor(4, (int64_t[]){1, 1, 2, 2}, x), tensor(4, (int64_t[]){1, 2, 2, 2}, w), NULL);
    kt_set_ints(k, "strides", 2, (int64_t[]){2, 2});
    kt_set_ints(k, "pads", 4, (int64_t[]){1, 0, 0, 1});
    expect(k, 4, (int64_t[]){1, 2, 3, 3},
           (float[]){3, 4, 6, 3, 6, 4, 9, 12, 12, 1, 1, 2, 3, 3, 4, 3, 3, 4});
    /* stride (2,1), output_padding (1,0), W = ones 2×2: rows of Y get
     * x row 0 at 0..1, row 1 at 2..3, row 4 bias only; columns overlap:
     *   [1, 3, 2] for [1,2] and [3, 7, 4] for [3,4] */
    k = make(tensor(4, (int64_t[]){1, 1, 2, 2}, x),
             tensor(4, (int64_t[]){1, 1, 2, 2}, (float[]){1, 1, 1, 1}), NULL);
    kt_set_ints(k, "strides", 2, (int64_t[]){2, 1});
    kt_set_ints(k, "output_padding", 2, (int64_t[]){1, 0});
    expect(k, 4, (int64_t[]){1, 1, 5, 3},
           (float[]){1, 3, 2, 1, 3, 2, 3, 7, 4, 3, 7, 4, 0, 0, 0});
    /* group 2 in 2-D, 1×1 kernels (the pointwise path): each channel scaled
     * by its own weight, W 2×1×1×1 = [2, -1] */
    k = make(tensor(4, (int64_t[]){1, 2, 1, 2}, x),
             tensor(4, (int64_t[]){2, 1, 1, 1}, (float[]){2, -1}), NULL);
    kt_set_int(k, "group", 2);
    expect(k, 4, (int64_t[]){1, 2, 1, 2}, (float[]){2, 4, -3, -4});
    /* opset 1 node (same semantics) */
    kt_node *k1 = kt_node_new("ConvTranspose", "", 1, 2, 1);
    kt_set_input_tensor(k1, 0, tensor(4, (int64_t[]){1, 1, 2, 2}, x));
    kt_set_input_tensor(k1, 1, tensor(4, (int64_t[]){1, 1, 1, 1}, (float[]){3}));
    expect(k1, 4, (int64_t[]){1, 1, 2, 2}, (float[]){3, 6, 9, 12});
}

/* ---- naive reference ---------------------------------------------------- */

typedef struct ref_ct {
    int nsp;
    int64_t n, c, m, group;
    int64_t in[3], k[3], s[3], d[3], pb[3], out[3]; /* folded to 3-D, leading 1s */
} ref_ct;

/* Visits every (x index, w index, y index) triple of the definition. */
#define REF_LOOP(r, body)                                                                       \
    do {                                                                                        \
        int64_t cg_ = (r)->c / (r)->group, mg_ = (r)->m / (r)->group;                           \
        for (int64_t n_ = 0; n_ < (r)->n; n_++)                                                 \
            for (int64_t c_ = 0; c_ < (r)->c; c_++)                                             \
                for (int64_t iz = 0; iz < (r)->in[0]; iz++)                                     \
                    for (int64_t iy = 0; iy < (r)->in[1]; iy++)                                 \
                        for (int64_t ix = 0; ix < (r)->in[2]; ix++)                             \
                            for (int64_t j_ = 0; j_ < mg_; j_++)                                \
                                for (int64_t kz = 0; kz < (r)->k[0]; kz++)                      \
                                    for (int64_t ky = 0; ky < (r)->k[1]; ky++)                  \
                                        for (int64_t kx = 0; kx < (r)->k[2]; kx++) {            \
                                            int64_t oz = iz * (r)->s[0] - (r)->pb[0] +          \
                                                         kz * (r)->d[0];                        \
                                            int64_t oy = iy * (r)->s[1] - (r)->pb[1] +          \
                                                         ky * (r)->d[1];                        \
                                            int64_t ox = ix * (r)->s[2] - (r)->pb[2] +          \
                                                         kx * (r)->d[2];                        \
                                            if (oz < 0 || oz >= (r)->out[0] || oy < 0 ||        \
                                                oy >= (r)->out[1] || ox < 0 ||                  \
                                                ox >= (r)->out[2])                              \
                                                continue;                                       \
                                            int64_t mo = c_ / cg_ * mg_ + j_;                   \
                                            int64_t xi = (((n_ * (r)->c + c_) * (r)->in[0] +    \
                                                           iz) * (r)->in[1] + iy) *             \
                                                             (r)->in[2] + ix;                   \
                                            int64_t wi = (((c_ * mg_ + j_) * (r)->k[0] + kz) *  \
                                                              (r)->k[1] + ky) * (r)->k[2] + kx; \
                                            int64_t yi = (((n_ * (r)->m + mo) * (r)->out[0] +   \
                                                           oz) * (r)->out[1] + oy) *            \
                                                             (r)->out[2] + ox;                  \
                                            body;                                               \
                                        }                                                       \
    } while (0)

static int64_t ref_q(const ref_ct *r)
{
    return r->out[0] * r->out[1] * r->out[2];
}

static void ref_forward(const ref_ct *r, const float *x, const float *w, const float *b, double *y)
{
    int64_t q = ref_q(r);
    for (int64_t i = 0; i < r->n * r->m * q; i++)
        y[i] = b ? b[i / q % r->m] : 0.0;
    REF_LOOP(r, y[yi] += (double)x[xi] * w[wi]);
}

static void ref_backward(const ref_ct *r, const float *x, const float *w, const float *dy,
                         double *dx, double *dw, double *db)
{
    int64_t q = ref_q(r);
    for (int64_t i = 0; i < r->n * r->m * q; i++)
        db[i / q % r->m] += dy[i];
    REF_LOOP(r, {
        dx[xi] += (double)dy[yi] * w[wi];
        dw[wi] += (double)dy[yi] * x[xi];
    });
}

static double max_err(const float *got, const double *want, int64_t n, double base)
{
    double e = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(got[i] - (want[i] + base)) / (1.0 + fabs(want[i]));
        e = d > e ? d : e;
    }
    return e;
}

/* Sets the attributes of a random case on k and fills r's pads and output:
 * mode 0 NOTSET (pads, output_padding), 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID,
 * 4 output_shape within a few units of the natural extent. */
static void random_attrs(uint64_t *rng, kt_node *k, ref_ct *r, int mode)
{
    int nsp = r->nsp, off = 3 - nsp;
    int64_t st[3], dl[3], pads[6], opad[3], os[3];
    for (int i = 0; i < nsp; i++) {
        int j = off + i;
        st[i] = r->s[j];
        dl[i] = r->d[j];
        opad[i] = kt_randint(rng, 0, (int)(r->s[j] > r->d[j] ? r->s[j] : r->d[j]) - 1);
        int64_t ek = (r->k[j] - 1) * r->d[j] + 1;
        int64_t natural = r->s[j] * (r->in[j] - 1) + ek + (mode == 0 || mode == 4 ? opad[i] : 0);
        int64_t total = 0, begin = 0;
        if (mode == 0) {
            pads[i] = kt_randint(rng, 0, (int)(ek - 1));
            pads[i + nsp] = kt_randint(rng, 0, (int)(ek - 1));
            if (pads[i] + pads[i + nsp] >= natural)
                pads[i] = pads[i + nsp] = 0;
            begin = pads[i];
            r->out[j] = natural - pads[i] - pads[i + nsp];
        } else if (mode == 1 || mode == 2) {
            r->out[j] = r->in[j] * r->s[j];
            total = natural - r->out[j];
        } else if (mode == 3) {
            r->out[j] = natural;
        } else {
            os[i] = natural + kt_randint(rng, -2, 3);
            if (os[i] < 1)
                os[i] = 1;
            r->out[j] = os[i];
            total = natural - os[i];
        }
        if (mode == 1 || mode == 2 || mode == 4) {
            int64_t half = (int64_t)floor((double)total / 2.0);
            begin = mode == 1 ? half : total - half;
        }
        r->pb[j] = begin;
    }
    bool any_s = false, any_d = false; /* the attributes may be left out only when all 1 */
    for (int j = 0; j < 3; j++) {
        any_s = any_s || r->s[j] > 1;
        any_d = any_d || r->d[j] > 1;
    }
    kt_set_int(k, "group", r->group);
    if (kt_randint(rng, 0, 1) || any_s)
        kt_set_ints(k, "strides", nsp, st);
    if (kt_randint(rng, 0, 1) || any_d)
        kt_set_ints(k, "dilations", nsp, dl);
    if (kt_randint(rng, 0, 1))
        kt_set_ints(k, "kernel_shape", nsp, r->k + off);
    static const char *const names[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
    if (mode <= 3 && (mode > 0 || kt_randint(rng, 0, 1)))
        kt_set_string(k, "auto_pad", names[mode]);
    if (mode == 0) {
        kt_set_ints(k, "pads", 2 * nsp, pads);
        kt_set_ints(k, "output_padding", nsp, opad);
    }
    if (mode == 4) {
        kt_set_ints(k, "output_padding", nsp, opad);
        kt_set_ints(k, "output_shape", nsp, os);
    }
}

/* One case: forward and backward (into gradients starting at 0.25, to prove
 * accumulation) against the reference. */
static void check_case(uint64_t *rng, ref_ct *r, int mode, bool bias, int threads, double tol)
{
    int off = 3 - r->nsp;
    int64_t xd[5] = {r->n, r->c}, wd[5] = {r->c, r->m / r->group};
    for (int i = 0; i < r->nsp; i++) {
        xd[2 + i] = r->in[off + i];
        wd[2 + i] = r->k[off + i];
    }
    kt_node *k = kt_node_new("ConvTranspose", "", 11, bias ? 3 : 2, 1);
    k->ctx.n_threads = threads;
    graft_tensor *x = kt_set_input(k, 0, 2 + r->nsp, xd, rng);
    graft_tensor *w = kt_set_input(k, 1, 2 + r->nsp, wd, rng);
    graft_tensor *b = bias ? kt_set_input(k, 2, 1, (int64_t[]){r->m}, rng) : NULL;
    random_attrs(rng, k, r, mode);
    graft_status st = kt_parse(k);
    if (st == GRAFT_OK)
        st = kt_infer(k);
    if (st)
        printf("mode %d: %s\n", mode, k->err.msg);
    assert_int_equal(st, GRAFT_OK);
    for (int i = 0; i < r->nsp; i++) {
        if (k->out[0]->dims[2 + i] != r->out[off + i])
            printf("mode %d axis %d: in %lld k %lld s %lld d %lld: extent %lld, expected %lld\n",
                   mode, i, (long long)r->in[off + i], (long long)r->k[off + i],
                   (long long)r->s[off + i], (long long)r->d[off + i],
                   (long long)k->out[0]->dims[2 + i], (long long)r->out[off + i]);
        assert_int_equal(k->out[0]->dims[2 + i], r->out[off + i]);
    }
    assert_int_equal(kt_forward(k), GRAFT_OK);
    int64_t ny = graft_tensor_nelem(k->out[0]), nx = graft_tensor_nelem(x),
            nw = graft_tensor_nelem(w);
    double *ry = calloc((size_t)(ny + nx + nw + r->m), sizeof *ry);
    double *rdx = ry + ny, *rdw = rdx + nx, *rdb = rdw + nw;
    ref_forward(r, graft_tensor_f32(x), graft_tensor_f32(w), b ? graft_tensor_f32(b) : NULL, ry);
    double e = max_err(graft_tensor_f32(k->out[0]), ry, ny, 0.0);
    if (e > tol)
        printf("forward: mode %d nsp %d off by %g\n", mode, r->nsp, e);
    assert_true(e <= tol);

    graft_tensor *dy = NULL, *d_in[KT_MAX_IO] = {0};
    graft_tensor_create(GRAFT_FLOAT, k->out[0]->rank, k->out[0]->dims, &dy, NULL);
    kt_fill(graft_tensor_f32(dy), ny, rng);
    for (int i = 0; i < (bias ? 3 : 2); i++) {
        graft_tensor_create(GRAFT_FLOAT, k->in[i]->rank, k->in[i]->dims, &d_in[i], NULL);
        for (int64_t j = 0; j < graft_tensor_nelem(d_in[i]); j++)
            graft_tensor_f32(d_in[i])[j] = 0.25f;
    }
    assert_int_equal(kt_backward(k, (graft_tensor *[]){dy}, d_in), GRAFT_OK);
    ref_backward(r, graft_tensor_f32(x), graft_tensor_f32(w), graft_tensor_f32(dy), rdx, rdw, rdb);
    double ex = max_err(graft_tensor_f32(d_in[0]), rdx, nx, 0.25);
    double ew = max_err(graft_tensor_f32(d_in[1]), rdw, nw, 0.25);
    double eb = bias ? max_err(graft_tensor_f32(d_in[2]), rdb, r->m, 0.25) : 0.0;
    if (ex > tol || ew > tol || eb > tol)
        printf("backward: mode %d nsp %d: dX %g dW %g dB %g\n", mode, r->nsp, ex, ew, eb);
    assert_true(ex <= tol && ew <= tol && eb <= tol);
    /* only dW wanted (a frozen input): dX untouched, no crash */
    graft_tensor *only[KT_MAX_IO] = {NULL, d_in[1]};
    assert_int_equal(kt_backward(k, (graft_tensor *[]){dy}, only), GRAFT_OK);
    for (int i = 0; i < KT_MAX_IO; i++)
        graft_tensor_destroy(d_in[i]);
    graft_tensor_destroy(dy);
    free(ry);
    kt_node_free(k);
}

static void test_convt_random_reference(void **state)
{
    (void)state;
    uint64_t rng = 0x5eed1234;
    for (int it = 0; it < 150; it++) {
        ref_ct r;
        memset(&r, 0, sizeof r);
        r.nsp = 1 + it % 3;
        r.group = kt_randint(&rng, 1, 3);
        r.n = kt_randint(&rng, 1, 3);
        r.c = r.group * kt_randint(&rng, 1, 3);
        r.m = r.group * kt_randint(&rng, 1, 3);
        for (int j = 0; j < 3; j++) {
            bool sp = j >= 3 - r.nsp;
            r.in[j] = sp ? kt_randint(&rng, 1, r.nsp == 3 ? 3 : 5) : 1;
            r.k[j] = sp ? kt_randint(&rng, 1, 3) : 1;
            r.s[j] = sp ? kt_randint(&rng, 1, 3) : 1;
            r.d[j] = sp ? kt_randint(&rng, 1, 2) : 1;
            r.out[j] = 1;
        }
        check_case(&rng, &r, it % 5, it % 2 == 0, 1 + it % 2, 1e-4);
    }
}

/* Sizes that reach the threaded item loop (with per-thread dW), the split
 * of one item over channels, several column tiles and the pointwise path. */
static void test_convt_large(void **state)
{
    (void)state;
    uint64_t rng = 77;
    const struct {
        int nsp;
        int64_t n, c, m, group, in, k, s, d;
        int mode;
    } cases[] = {
        {2, 1, 16, 16, 1, 16, 3, 2, 1, 0}, /* one item: channels split */
        {2, 4, 16, 16, 2, 16, 3, 2, 1, 1}, /* items over threads */
        {2, 1, 8, 8, 1, 64, 3, 1, 1, 2},   /* two column tiles */
        {2, 3, 32, 32, 1, 20, 1, 1, 1, 3}, /* pointwise, threaded */
        {2, 1, 32, 32, 1, 32, 1, 1, 1, 3}, /* pointwise, one item */
        {3, 2, 8, 8, 2, 6, 3, 2, 2, 4},    /* 3-D, output_shape */
        {1, 4, 16, 16, 4, 64, 5, 3, 2, 0}, /* 1-D, group 4 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int threads = 1; threads <= 2; threads++) {
            ref_ct r;
            memset(&r, 0, sizeof r);
            r.nsp = cases[i].nsp;
            r.n = cases[i].n, r.c = cases[i].c, r.m = cases[i].m, r.group = cases[i].group;
            for (int j = 0; j < 3; j++) {
                bool sp = j >= 3 - r.nsp;
                r.in[j] = sp ? cases[i].in : 1;
                r.k[j] = sp ? cases[i].k : 1;
                r.s[j] = sp ? cases[i].s : 1;
                r.d[j] = sp ? cases[i].d : 1;
                r.out[j] = 1;
            }
            check_case(&rng, &r, cases[i].mode, i % 2 == 0, threads, 2e-4);
        }
    }
}

/* ---- finite differences --------------------------------------------------- */

static void gradcheck(int rank, const int64_t *xd, const int64_t *wd, int64_t group,
                      const char *auto_pad, int n_pairs, const char *const *names,
                      const int64_t *const *vals, const int *lens)
{
    graft_graph *g = lt_graph(11);
    int32_t node = lt_node(g, "ConvTranspose", 3, 0, 1);
    assert_int_equal(graft_node_set_int(g, node, "group", group, NULL), GRAFT_OK);
    if (auto_pad)
        assert_int_equal(graft_node_set_string(g, node, "auto_pad", auto_pad, NULL), GRAFT_OK);
    for (int i = 0; i < n_pairs; i++)
        assert_int_equal(graft_node_set_ints(g, node, names[i], lens[i], vals[i], NULL),
                         GRAFT_OK);
    graft_tensor *in[3] = {lt_tensor_rand(rank, xd, 11, -1, 1), lt_tensor_rand(rank, wd, 12, -1, 1),
                           lt_tensor_rand(1, (int64_t[]){wd[1] * group}, 13, -1, 1)};
    double e = lt_gradcheck(g, node, 3, in, 7, 1e-2, 2e-3, false);
    if (e > 2e-3)
        printf("gradcheck: %g\n", e);
    assert_true(e <= 2e-3);
    for (int i = 0; i < 3; i++)
        graft_tensor_destroy(in[i]);
    graft_graph_destroy(g);
}

static void test_convt_gradcheck(void **state)
{
    (void)state;
    /* 1-D, stride 2, output_padding 1, pads */
    gradcheck(3, (int64_t[]){2, 2, 4}, (int64_t[]){2, 3, 3}, 1, NULL, 3,
              (const char *[]){"strides", "output_padding", "pads"},
              (const int64_t *[]){(int64_t[]){2}, (int64_t[]){1}, (int64_t[]){1, 0}},
              (int[]){1, 1, 2});
    /* 2-D, group 2, dilation 2, stride (2,1) */
    gradcheck(4, (int64_t[]){1, 4, 3, 3}, (int64_t[]){4, 2, 2, 3}, 2, NULL, 3,
              (const char *[]){"strides", "dilations", "pads"},
              (const int64_t *[]){(int64_t[]){2, 1}, (int64_t[]){2, 2},
                                  (int64_t[]){0, 1, 1, 0}},
              (int[]){2, 2, 4});
    /* 2-D, SAME_LOWER, stride 3, kernel 1×2: total pad -2 on the first
     * axis (a negative begin pad), -1 on the second */
    gradcheck(4, (int64_t[]){2, 2, 3, 2}, (int64_t[]){2, 1, 1, 2}, 1, "SAME_LOWER", 1,
              (const char *[]){"strides"}, (const int64_t *[]){(int64_t[]){3, 3}},
              (int[]){2});
    /* 2-D, output_shape beyond and below the natural extent */
    gradcheck(4, (int64_t[]){1, 3, 3, 3}, (int64_t[]){3, 2, 3, 3}, 1, NULL, 2,
              (const char *[]){"strides", "output_shape"},
              (const int64_t *[]){(int64_t[]){2, 2}, (int64_t[]){9, 5}}, (int[]){2, 2});
    /* 3-D, stride 2 */
    gradcheck(5, (int64_t[]){1, 2, 2, 3, 2}, (int64_t[]){2, 2, 2, 2, 3}, 1, NULL, 1,
              (const char *[]){"strides"}, (const int64_t *[]){(int64_t[]){2, 1, 2}},
              (int[]){3});
    /* pointwise, group 2 */
    gradcheck(4, (int64_t[]){2, 4, 2, 3}, (int64_t[]){4, 3, 1, 1}, 2, NULL, 0, NULL, NULL, NULL);
}

/* ---- errors ----------------------------------------------------------------- */

static graft_status infer_status(kt_node *k)
{
    graft_status st = kt_parse(k);
    if (st == GRAFT_OK)
        st = kt_infer(k);
    if (st != GRAFT_OK) {
        assert_non_null(strstr(k->err.msg, "ConvTranspose")); /* the message names the node */
    }
    kt_node_free(k);
    return st;
}

static kt_node *shaped(int rank, const int64_t *xd, const int64_t *wd, graft_dtype xt)
{
    kt_node *k = kt_node_new("ConvTranspose", "", 11, 2, 1);
    kt_set_input_shape(k, 0, xt, rank, xd);
    kt_set_input_shape(k, 1, GRAFT_FLOAT, rank, wd);
    return k;
}

static void test_convt_errors(void **state)
{
    (void)state;
    const int64_t xd[] = {1, 4, 5, 5}, wd[] = {4, 2, 3, 3};
    kt_node *k = shaped(4, xd, wd, GRAFT_FLOAT);
    assert_int_equal(infer_status(k), GRAFT_OK);
    /* channel mismatch: X has 3 channels, W.shape[0] = 4 */
    assert_int_equal(infer_status(shaped(4, (int64_t[]){1, 3, 5, 5}, wd, GRAFT_FLOAT)),
                     GRAFT_ERR_SHAPE);
    /* group 3 does not divide 4 channels; group 0 and negative are invalid */
    k = shaped(4, xd, wd, GRAFT_FLOAT);
    kt_set_int(k, "group", 3);
    assert_int_equal(infer_status(k), GRAFT_ERR_INVALID);
    k = shaped(4, xd, wd, GRAFT_FLOAT);
    kt_set_int(k, "group", 0);
    assert_int_equal(infer_status(k), GRAFT_ERR_INVALID);
    k = shaped(4, xd, wd, GRAFT_FLOAT);
    kt_set_int(k, "group", -2);
    assert_int_equal(infer_status(k), GRAFT_ERR_INVALID);
    /* strides: negative, zero, huge, wrong length */
    const int64_t bad_strides[][2] = {{-1, 1}, {0, 1}, {INT64_MAX, 1}, {(int64_t)1 << 40, 1}};
    for (int i = 0; i < 4; i++) {
        k = shaped(4, xd, wd, GRAFT_FLOAT);
        kt_set_ints(k, "strides", 2, bad_strides[i]);
        assert_int_equal(infer_status(k), GRAFT_ERR_INVALID);
    }
    k = shaped(4, xd, wd, GRAFT_FLOAT);
    kt_set_ints(k, "strides", 3, (int64_t[]){1, 1, 1});
    assert_int_equal(infer_status(k), GRAFT_ERR_INVALID);
    /* the largest accepted strides on a large declared input: the output
     * shape overflows -> a clean status */
    k = shaped(4, (int64_t[]){1 << 20, 4, 1 << 30, 1 << 30}, wd, GRAFT_FLOAT);
    kt_set_ints(k, "strides", 2, (int64_t[]){INT32_MAX, INT32_MAX});
    assert_int_not_equal(infer_status(k), GRAFT_OK);
    /* pads: negative, huge, wrong length, larger than the output */
    const int64_t bad_pads[][4] = {{-1, 0, 0, 0}, {0, INT64_MAX, 0, 0}, {0, 0, INT64_MIN, 0}};
    for (int i = 0; i < 3; i++) {
        k = shaped(4, xd, wd, GRAFT_FLOAT);
        kt_set_ints(k, "pads", 4, bad_pads[i]);
        assert_int_equal(infer_status(k), GRAFT_ERR_INVALID);
    }
    k = shaped(4, xd, wd, GRAFT_FLOAT);
    kt_set_ints(k, "pads", 2, (int64_t[]){1, 1});
    assert_int_equal(infer_status(k), GRAFT_ERR_INVALID);
    k = shaped(4, xd, wd, GRAFT_FLOAT); /* natural extent 7: pads 4 + 3 leave nothing */
    kt_set_ints(k, "pads", 4, (int64_t[]){4, 0, 3, 0});
    assert_int_equal(infer_status(k), GRAFT_ERR_SHAPE);
    k = shaped(4, xd, wd, GRAFT_FLOAT);
    kt_set_ints(k, "pads", 4, (int64_t[]){1000, 0, 1000, 0});
    assert_int_equal(infer_status(k), GRAFT_ERR_SHAPE);
    /* dilations, output_padding, output_shape, kernel_shape */
    k = shaped(4, xd, wd, GRAFT_FLOAT);
    kt_set_ints(k, "dilations", 2, (int64_t[]){0, 1});
    assert_int_equal(infer_status(k), GRAFT_ERR_INVALID);
    k = shaped(4, xd, wd, GRAFT_FLOAT);
    kt_set_ints(k, "dilations", 2, (int64_t[]){INT64_MAX, 1});
    assert_int_equal(infer_status(k), GRAFT_ERR_INVALID);
    k = shaped(4, xd, wd, GRAFT_FLOAT);
    kt_set_ints(k, "output_padding", 2, (int64_t[]){-1, 0});
    assert_int_equal(infer_status(k), GRAFT_ERR_INVALID);
    k = shaped(4, xd, wd, GRAFT_FLOAT);
    kt_set_ints(k, "output_padding", 1, (int64_t[]){1});
    assert_int_equal(infer_status(k), GRAFT_ERR_INVALID);
    k = shaped(4, xd, wd, GRAFT_FLOAT);
    kt_set_ints(k, "output_shape", 2, (int64_t[]){0, 5});
    assert_int_not_equal(infer_status(k), GRAFT_OK);
    k = shaped(4, xd, wd, GRAFT_FLOAT);
    kt_set_ints(k, "output_shape", 2, (int64_t[]){-3, 5});
    assert_int_equal(infer_status(k), GRAFT_ERR_INVALID);
    k = shaped(4, xd, wd, GRAFT_FLOAT);
    kt_set_ints(k, "output_shape", 3, (int64_t[]){5, 5, 5});
    assert_int_equal(infer_status(k), GRAFT_ERR_INVALID);
    k = shaped(4, xd, wd, GRAFT_FLOAT); /* full N, C, H, W form */
    kt_set_ints(k, "output_shape", 4, (int64_t[]){1, 2, 9, 8});
    assert_int_equal(infer_status(k), GRAFT_OK);
    k = shaped(4, xd, wd, GRAFT_FLOAT);
    kt_set_ints(k, "kernel_shape", 2, (int64_t[]){3, 2});
    assert_int_equal(infer_status(k), GRAFT_ERR_SHAPE);
    k = shaped(4, xd, wd, GRAFT_FLOAT);
    kt_set_ints(k, "kernel_shape", 1, (int64_t[]){3});
    assert_int_equal(infer_status(k), GRAFT_ERR_INVALID);
    k = shaped(4, xd, wd, GRAFT_FLOAT);
    kt_set_string(k, "auto_pad", "SAME");
    assert_int_equal(infer_status(k), GRAFT_ERR_INVALID);
    /* ranks and dtypes */
    assert_int_equal(infer_status(shaped(2, (int64_t[]){1, 4}, (int64_t[]){4, 2}, GRAFT_FLOAT)),
                     GRAFT_ERR_INVALID);
    assert_int_equal(infer_status(shaped(6, (int64_t[]){1, 4, 2, 2, 2, 2},
                                         (int64_t[]){4, 2, 1, 1, 1, 1}, GRAFT_FLOAT)),
                     GRAFT_ERR_UNSUPPORTED);
    k = kt_node_new("ConvTranspose", "", 11, 2, 1);
    kt_set_input_shape(k, 0, GRAFT_FLOAT, 4, xd);
    kt_set_input_shape(k, 1, GRAFT_FLOAT, 3, (int64_t[]){4, 2, 3});
    assert_int_equal(infer_status(k), GRAFT_ERR_INVALID);
    assert_int_equal(infer_status(shaped(4, xd, wd, GRAFT_INT64)), GRAFT_ERR_UNSUPPORTED);
    assert_int_equal(infer_status(shaped(4, xd, (int64_t[]){4, 2, 0, 3}, GRAFT_FLOAT)),
                     GRAFT_ERR_SHAPE);
    /* bias of the wrong length (2 output channels) */
    k = kt_node_new("ConvTranspose", "", 11, 3, 1);
    kt_set_input_shape(k, 0, GRAFT_FLOAT, 4, xd);
    kt_set_input_shape(k, 1, GRAFT_FLOAT, 4, wd);
    kt_set_input_shape(k, 2, GRAFT_FLOAT, 1, (int64_t[]){3});
    assert_int_equal(infer_status(k), GRAFT_ERR_SHAPE);
    k = kt_node_new("ConvTranspose", "", 11, 3, 1);
    kt_set_input_shape(k, 0, GRAFT_FLOAT, 4, xd);
    kt_set_input_shape(k, 1, GRAFT_FLOAT, 4, wd);
    kt_set_input_shape(k, 2, GRAFT_INT64, 1, (int64_t[]){2});
    assert_int_equal(infer_status(k), GRAFT_ERR_UNSUPPORTED);
    /* a fourth input */
    k = kt_node_new("ConvTranspose", "", 11, 4, 1);
    for (int i = 0; i < 4; i++)
        kt_set_input_shape(k, i, GRAFT_FLOAT, 4, i < 2 ? (i ? wd : xd) : (int64_t[]){2, 1, 1, 1});
    assert_int_equal(infer_status(k), GRAFT_ERR_INVALID);
    /* unknown batch and spatial dims infer as unknown; output_shape fixes them */
    k = shaped(4, (int64_t[]){-1, 4, -1, 5}, wd, GRAFT_FLOAT);
    assert_int_equal(kt_parse(k), GRAFT_OK);
    assert_int_equal(kt_infer(k), GRAFT_OK);
    assert_int_equal(k->out[0]->dims[0], -1);
    assert_int_equal(k->out[0]->dims[1], 2);
    assert_int_equal(k->out[0]->dims[2], -1);
    assert_int_equal(k->out[0]->dims[3], 7);
    kt_node_free(k);
}

/* ---- ONNX test data ----------------------------------------------------------- */

static void test_convt_onnx_node_data(void **state)
{
    (void)state;
    static const char *const ops[] = {"ConvTranspose", NULL};
    int pass, fail, skip;
    if (lt_onnx_suite(ops, &pass, &fail, &skip) < 0)
        skip();
    print_message("ONNX ConvTranspose node tests: %d pass, %d fail, %d unsupported\n", pass, fail,
                  skip);
    assert_int_equal(fail, 0);
    assert_true(pass >= 10); /* every test_convtranspose* in libonnx-testdata 1.12 */
}

static void test_convt_pytorch_models(void **state)
{
    (void)state;
    static const char *const dirs[] = {
        DATA_DIR "/pytorch-converted/test_ConvTranspose2d",
        DATA_DIR "/pytorch-converted/test_ConvTranspose2d_no_bias",
        DATA_DIR "/pytorch-operator/test_operator_convtranspose",
    };
    if (lt_onnx_model_dir(dirs[0]) == -2)
        skip();
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        assert_int_equal(lt_onnx_model_dir(dirs[i]), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_convt_1d_values),
        cmocka_unit_test(test_convt_2d_values),
        cmocka_unit_test(test_convt_random_reference),
        cmocka_unit_test(test_convt_large),
        cmocka_unit_test(test_convt_gradcheck),
        cmocka_unit_test(test_convt_errors),
        cmocka_unit_test(test_convt_onnx_node_data),
        cmocka_unit_test(test_convt_pytorch_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
