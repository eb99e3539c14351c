/* tests/data/test_preprocess.c - batch preprocessing: a hand-computed
 * bilinear example, agreement with torch.nn.functional.interpolate
 * (align_corners=False) through /usr/bin/python3, layouts and channel
 * handling against a naive reference, and augmentation: identity at zero
 * strength, exact mirror for a certain flip, fill and determinism. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/data_internal.h"

static graft_dataset *make_ds(int n, int h, int w, int c, unsigned seed)
{
    graft_dataset *ds = NULL;
    graft_error err = {0};
    assert_int_equal(graft__dataset_alloc(n, h, w, c, 2, &ds, &err), GRAFT_OK);
    uint32_t x = seed;
    for (size_t i = 0; i < (size_t)n * h * w * c; i++) {
        x = x * 1103515245u + 12345u;
        ds->pixels[i] = (uint8_t)(x >> 16);
    }
    return ds;
}

static void test_hand_example(void **state)
{
    (void)state;
    graft_dataset *ds = make_ds(1, 2, 2, 1, 1);
    const uint8_t px[4] = {0, 255, 255, 0};
    memcpy(ds->pixels, px, 4);
    graft_preprocess pp = graft_preprocess_default();
    pp.height = pp.width = 4;
    pp.mean[0] = 0.5f;
    pp.std[0] = 0.25f;
    graft_tensor *t = NULL;
    graft_error err = {0};
    int64_t d0[1] = {1};
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 1, d0, &t, &err), GRAFT_OK);
    int64_t idx = 0;
    assert_int_equal(graft_data_make_batch(ds, &idx, 1, &pp, NULL, NULL, t, &err), GRAFT_OK);
    assert_int_equal(t->rank, 4);
    assert_int_equal(t->dims[0], 1);
    assert_int_equal(t->dims[1], 1);
    assert_int_equal(t->dims[2], 4);
    assert_int_equal(t->dims[3], 4);
    /* Source x for output x: (x+0.5)/2-0.5 = -0.25(->0), 0.25, 0.75, 1.25(->1).
     * Row 0 resized: 0, 63.75, 191.25, 255; row 1 mirrored; output rows 0..3
     * weigh row 1 by 0, 0.25, 0.75, 1. */
    const double r0[4] = {0, 63.75, 191.25, 255}, r1[4] = {255, 191.25, 63.75, 0};
    const double wy[4] = {0, 0.25, 0.75, 1};
    const float *o = graft_tensor_f32(t);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) {
            double v = (1 - wy[y]) * r0[x] + wy[y] * r1[x];
            double want = (v / 255.0 - 0.5) / 0.25;
            assert_float_equal(o[y * 4 + x], want, 1e-5);
        }
    graft_tensor_destroy(t);
    graft_dataset_destroy(ds);
}

/* Runs torch's interpolate on image 0 of ds to HxW; returns 0 if python is missing. */
static int torch_resize(const graft_dataset *ds, int H, int W, float *out)
{
    const char *py = getenv("GRAFT_PYTHON");
    if (!py || access(py, X_OK) != 0)
        return 0;
    char path[] = "/tmp/graft_test_pp_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    size_t n = (size_t)ds->height * ds->width * ds->channels;
    fprintf(f, "%d %d %d %d %d\n", ds->height, ds->width, ds->channels, H, W);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%d ", ds->pixels[i]);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s -c \"import sys,torch,torch.nn.functional as F\n"
             "v=open(sys.argv[1]).read().split()\n"
             "h,w,c,H,W=map(int,v[:5])\n"
             "x=torch.tensor([float(a) for a in v[5:]]).reshape(1,h,w,c).permute(0,3,1,2)\n"
             "y=F.interpolate(x,size=(H,W),mode='bilinear',align_corners=False)\n"
             "print(' '.join(repr(float(a)) for a in y.permute(0,2,3,1).flatten()))\" %s",
             py, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t m = (size_t)H * W * ds->channels;
    for (size_t i = 0; i < m; i++)
        assert_int_equal(fscanf(p, "%f", &out[i]), 1);
    pclose(p);
    unlink(path);
    return 1;
}

static void test_against_torch(void **state)
{
    (void)state;
    const int sizes[][2] = {{9, 4}, {3, 11}, {5, 7}, {32, 32}};
    for (int s = 0; s < 4; s++) {
        graft_dataset *ds = make_ds(1, 5, 7, 3, 5 + s);
        int H = sizes[s][0], W = sizes[s][1];
        float *ref = malloc(sizeof(float) * H * W * 3);
        if (!torch_resize(ds, H, W, ref)) {
            free(ref);
            graft_dataset_destroy(ds);
            skip();
        }
        graft_preprocess pp = graft_preprocess_default();
        pp.height = H;
        pp.width = W;
        pp.channels = 3;
        pp.scale = 1.0f;
        pp.nhwc = true;
        graft_tensor *t = NULL;
        graft_error err = {0};
        int64_t d0[1] = {1};
        assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 1, d0, &t, &err), GRAFT_OK);
        int64_t idx = 0;
        assert_int_equal(graft_data_make_batch(ds, &idx, 1, &pp, NULL, NULL, t, &err), GRAFT_OK);
        const float *o = graft_tensor_f32(t);
        for (int i = 0; i < H * W * 3; i++)
            assert_float_equal(o[i], ref[i], 1e-3);
        graft_tensor_destroy(t);
        free(ref);
        graft_dataset_destroy(ds);
    }
}

/* Naive reference for the value and layout stage at the same size. */
static void test_layouts_channels(void **state)
{
    (void)state;
    graft_error err = {0};
    for (int sc = 1; sc <= 3; sc += 2) {
        graft_dataset *ds = make_ds(3, 4, 5, sc, 9);
        for (int cfg = 0; cfg < 8; cfg++) {
            graft_preprocess pp = graft_preprocess_default();
            pp.height = 4;
            pp.width = 5;
            pp.channels = (cfg & 1) ? 3 : 1;
            pp.bgr = (cfg & 2) != 0;
            pp.nhwc = (cfg & 4) != 0;
            pp.scale = 1.0f / 255.0f;
            const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
            memcpy(pp.mean, mean, sizeof mean);
            memcpy(pp.std, sd, sizeof sd);
            graft_tensor *t = NULL;
            int64_t d0[1] = {1};
            assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 1, d0, &t, &err), GRAFT_OK);
            int64_t idx[2] = {2, 0};
            assert_int_equal(graft_data_make_batch(ds, idx, 2, &pp, NULL, NULL, t, &err),
                             GRAFT_OK);
            int C = pp.channels;
            assert_int_equal(t->dims[0], 2);
            assert_int_equal(t->dims[pp.nhwc ? 3 : 1], C);
            const float *o = graft_tensor_f32(t);
            for (int b = 0; b < 2; b++)
                for (int y = 0; y < 4; y++)
                    for (int x = 0; x < 5; x++)
                        for (int c = 0; c < C; c++) {
                            const uint8_t *p = ds->pixels + (((size_t)idx[b] * 4 + y) * 5 + x) * sc;
                            double v;
                            int rgb = (pp.bgr && C == 3) ? 2 - c : c;
                            if (sc == 1)
                                v = p[0];
                            else if (C == 3)
                                v = p[rgb];
                            else
                                v = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
                            double want = (v / 255.0 - mean[c]) / sd[c];
                            size_t at = pp.nhwc ? (((size_t)b * 4 + y) * 5 + x) * C + c
                                                : (((size_t)b * C + c) * 4 + y) * 5 + x;
                            assert_float_equal(o[at], want, 1e-4);
                        }
            graft_tensor_destroy(t);
        }
        graft_dataset_destroy(ds);
    }
}

static graft_tensor *batch(const graft_dataset *ds, const graft_preprocess *pp,
                           const graft_augment *aug, uint64_t seed, int64_t n)
{
    graft_tensor *t = NULL;
    graft_error err = {0};
    int64_t d0[1] = {1};
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 1, d0, &t, &err), GRAFT_OK);
    int64_t idx[16];
    for (int64_t i = 0; i < n; i++)
        idx[i] = i % ds->n;
    graft_rng rng;
    graft_rng_seed(&rng, seed);
    assert_int_equal(graft_data_make_batch(ds, idx, n, pp, aug, &rng, t, &err), GRAFT_OK);
    return t;
}

static void test_augment(void **state)
{
    (void)state;
    graft_dataset *ds = make_ds(4, 28, 28, 1, 3);
    graft_preprocess pp = graft_preprocess_default();
    pp.height = pp.width = 32;
    graft_tensor *plain = batch(ds, &pp, NULL, 1, 4);
    size_t nelem = (size_t)graft_tensor_nelem(plain);
    /* zero strength: not active, identical */
    graft_augment zero = {0, 0, 0, 0};
    graft_tensor *t = batch(ds, &pp, &zero, 1, 4);
    assert_memory_equal(graft_tensor_f32(t), graft_tensor_f32(plain), nelem * sizeof(float));
    graft_tensor_destroy(t);
    /* active but drawing the identity (a flip that never happens): the affine
     * path must reproduce the plain resize bit for bit */
    graft_augment never = {1e-30f, 0, 0, 0};
    t = batch(ds, &pp, &never, 1, 4);
    assert_memory_equal(graft_tensor_f32(t), graft_tensor_f32(plain), nelem * sizeof(float));
    graft_tensor_destroy(t);
    /* certain flip: an exact mirror of every row */
    graft_augment flip = {1.0f, 0, 0, 0};
    t = batch(ds, &pp, &flip, 1, 4);
    const float *a = graft_tensor_f32(t), *b = graft_tensor_f32(plain);
    for (int i = 0; i < 4; i++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
                assert_true(a[(i * 32 + y) * 32 + x] == b[(i * 32 + y) * 32 + (31 - x)]);
    graft_tensor_destroy(t);
    /* flip with probability 0.5: each image is either plain or mirrored, both occur */
    graft_augment half = {0.5f, 0, 0, 0};
    t = batch(ds, &pp, &half, 5, 16);
    graft_tensor *p16 = batch(ds, &pp, NULL, 1, 16);
    int flipped = 0;
    for (int i = 0; i < 16; i++) {
        const float *ai = graft_tensor_f32(t) + i * 1024, *bi = graft_tensor_f32(p16) + i * 1024;
        bool same = memcmp(ai, bi, 1024 * sizeof(float)) == 0;
        bool mirror = true;
        for (int y = 0; y < 32 && mirror; y++)
            for (int x = 0; x < 32; x++)
                if (ai[y * 32 + x] != bi[y * 32 + 31 - x]) {
                    mirror = false;
                    break;
                }
        assert_true(same || mirror);
        flipped += !same;
    }
    assert_true(flipped > 0 && flipped < 16);
    graft_tensor_destroy(t);
    graft_tensor_destroy(p16);
    graft_tensor_destroy(plain);
    graft_dataset_destroy(ds);

    /* rotation + zoom on a white image: the centre stays white, corners
     * are filled with 0 for some draws, same seed gives the same batch */
    ds = make_ds(1, 28, 28, 1, 3);
    memset(ds->pixels, 255, 28 * 28);
    pp.height = pp.width = 28;
    graft_augment rz = {0.5f, 0.1f, 0.1f, 0.1f};
    t = batch(ds, &pp, &rz, 77, 16);
    graft_tensor *t2 = batch(ds, &pp, &rz, 77, 16);
    assert_memory_equal(graft_tensor_f32(t), graft_tensor_f32(t2), 16 * 784 * sizeof(float));
    int corners_black = 0;
    for (int i = 0; i < 16; i++) {
        const float *ai = graft_tensor_f32(t) + i * 784;
        assert_float_equal(ai[14 * 28 + 14], 1.0, 1e-6);
        for (int k = 0; k < 784; k++)
            assert_true(ai[k] >= 0.0f && ai[k] <= 1.0f + 1e-6f);
        corners_black += ai[0] == 0.0f;
    }
    assert_true(corners_black > 0);
    graft_tensor_destroy(t2);
    t2 = batch(ds, &pp, &rz, 78, 16);
    assert_true(memcmp(graft_tensor_f32(t), graft_tensor_f32(t2), 16 * 784 * sizeof(float)) != 0);
    graft_tensor_destroy(t);
    graft_tensor_destroy(t2);
    graft_dataset_destroy(ds);
}

static void test_bad_args(void **state)
{
    (void)state;
    graft_dataset *ds = make_ds(2, 4, 4, 1, 1);
    graft_preprocess pp = graft_preprocess_default();
    graft_tensor *t = NULL;
    graft_error err = {0};
    int64_t d0[1] = {1};
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 1, d0, &t, &err), GRAFT_OK);
    int64_t idx = 5;
    assert_int_equal(graft_data_make_batch(ds, &idx, 1, &pp, NULL, NULL, t, &err), GRAFT_ERR_ARG);
    idx = 0;
    pp.std[0] = 0;
    assert_int_equal(graft_data_make_batch(ds, &idx, 1, &pp, NULL, NULL, t, &err), GRAFT_ERR_ARG);
    pp = graft_preprocess_default();
    pp.channels = 2;
    assert_int_equal(graft_data_make_batch(ds, &idx, 1, &pp, NULL, NULL, t, &err), GRAFT_ERR_ARG);
    pp = graft_preprocess_default();
    graft_augment aug = {0.5f, 0, 0, 0};
    assert_int_equal(graft_data_make_batch(ds, &idx, 1, &pp, &aug, NULL, t, &err), GRAFT_ERR_ARG);
    graft_tensor_destroy(t);
    graft_dataset_destroy(ds);
}

static void test_resize_u8(void **state)
{
    (void)state;
    /* A 1x2 image [0, 255] stretched to 1x4: 0, 63.75, 191.25, 255 -> rounded */
    const uint8_t src[2] = {0, 255};
    uint8_t dst[4];
    graft__resize_u8(src, 1, 2, 1, dst, 1, 4);
    assert_int_equal(dst[0], 0);
    assert_int_equal(dst[1], 64);
    assert_int_equal(dst[2], 191);
    assert_int_equal(dst[3], 255);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_example),
        cmocka_unit_test(test_against_torch),
        cmocka_unit_test(test_layouts_channels),
        cmocka_unit_test(test_augment),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_resize_u8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
