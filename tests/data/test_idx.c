/* tests/data/test_idx.c - IDX reading: the real Fashion-MNIST files from
 * Debian's dataset-fashion-mnist, small hand-written files (plain and
 * gzipped), and broken copies (truncated, wrong magic, count mismatch,
 * trailing data, missing file), each failing with a message naming the file. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define FMNIST "/usr/share/datasets/fashion-mnist/"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/graft_test_idx_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp_path(const char *name)
{
    static char buf[64][512];
    static int k;
    k = (k + 1) % 64;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_file(const char *path, const void *data, size_t n, bool gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, n, f), n);
        fclose(f);
    }
}

static size_t put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return 4;
}

/* 3 images of 2x3 with pixel value 10*i + j, labels {2, 0, 5}. */
static size_t small_images(uint8_t *buf)
{
    size_t k = 0;
    buf[k++] = 0, buf[k++] = 0, buf[k++] = 8, buf[k++] = 3;
    k += put_be32(buf + k, 3);
    k += put_be32(buf + k, 2);
    k += put_be32(buf + k, 3);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 6; j++)
            buf[k++] = (uint8_t)(10 * i + j);
    return k;
}

static size_t small_labels(uint8_t *buf, uint32_t n)
{
    size_t k = 0;
    buf[k++] = 0, buf[k++] = 0, buf[k++] = 8, buf[k++] = 1;
    k += put_be32(buf + k, n);
    static const uint8_t lab[] = {2, 0, 5, 1};
    for (uint32_t i = 0; i < n; i++)
        buf[k++] = lab[i];
    return k;
}

static void test_fashion_mnist(void **state)
{
    (void)state;
    FILE *probe = fopen(FMNIST "train-images-idx3-ubyte.gz", "rb");
    if (!probe)
        skip();
    fclose(probe);
    graft_error err = {0};
    graft_dataset *tr = NULL, *te = NULL;
    assert_int_equal(graft_data_load_idx(FMNIST "train-images-idx3-ubyte.gz",
                                         FMNIST "train-labels-idx1-ubyte.gz", &tr, &err),
                     GRAFT_OK);
    assert_int_equal(tr->n, 60000);
    assert_int_equal(tr->height, 28);
    assert_int_equal(tr->width, 28);
    assert_int_equal(tr->channels, 1);
    assert_int_equal(tr->n_classes, 10);
    assert_int_equal(tr->labels[0], 9);
    assert_int_equal(tr->labels[1], 0);
    assert_string_equal(tr->class_names[9], "9");
    /* Fashion-MNIST is balanced: 6000 training images per class. */
    int64_t per[10] = {0};
    for (int64_t i = 0; i < tr->n; i++)
        per[tr->labels[i]]++;
    for (int c = 0; c < 10; c++)
        assert_int_equal(per[c], 6000);
    assert_int_equal(graft_data_load_idx(FMNIST "t10k-images-idx3-ubyte.gz",
                                         FMNIST "t10k-labels-idx1-ubyte.gz", &te, &err),
                     GRAFT_OK);
    assert_int_equal(te->n, 10000);
    assert_int_equal(te->labels[0], 9);
    assert_int_equal(te->labels[1], 2);
    graft_dataset_destroy(tr);
    graft_dataset_destroy(te);
}

static void test_small_plain_and_gz(void **state)
{
    (void)state;
    uint8_t im[64], lb[16];
    size_t nim = small_images(im), nlb = small_labels(lb, 3);
    for (int gz = 0; gz < 2; gz++) {
        const char *ip = tmp_path(gz ? "im.gz" : "im"), *lp = tmp_path(gz ? "lb.gz" : "lb");
        write_file(ip, im, nim, gz);
        write_file(lp, lb, nlb, gz);
        graft_error err = {0};
        graft_dataset *ds = NULL;
        assert_int_equal(graft_data_load_idx(ip, lp, &ds, &err), GRAFT_OK);
        assert_int_equal(ds->n, 3);
        assert_int_equal(ds->height, 2);
        assert_int_equal(ds->width, 3);
        assert_int_equal(ds->n_classes, 6);
        assert_int_equal(ds->labels[0], 2);
        assert_int_equal(ds->labels[2], 5);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 6; j++)
                assert_int_equal(ds->pixels[i * 6 + j], 10 * i + j);
        graft_dataset_destroy(ds);
    }
}

static void expect_fail(const char *ip, const char *lp, const char *names_file)
{
    graft_error err = {0};
    graft_dataset *ds = NULL;
    graft_status st = graft_data_load_idx(ip, lp, &ds, &err);
    assert_int_not_equal(st, GRAFT_OK);
    assert_null(ds);
    if (!strstr(err.msg, names_file))
        print_message("message '%s' does not name %s\n", err.msg, names_file);
    assert_non_null(strstr(err.msg, names_file));
    assert_null(strchr(err.msg, '\n'));
}

static void test_broken(void **state)
{
    (void)state;
    uint8_t im[64], lb[16], bad[80];
    size_t nim = small_images(im), nlb = small_labels(lb, 3);
    const char *ip = tmp_path("good_im"), *lp = tmp_path("good_lb");
    write_file(ip, im, nim, false);
    write_file(lp, lb, nlb, false);

    /* truncated pixels, plain and gzipped */
    const char *p = tmp_path("trunc_im");
    write_file(p, im, nim - 4, false);
    expect_fail(p, lp, p);
    p = tmp_path("trunc_im.gz");
    write_file(p, im, nim - 4, true);
    expect_fail(p, lp, p);
    /* truncated header */
    p = tmp_path("short_head");
    write_file(p, im, 6, false);
    expect_fail(p, lp, p);
    /* a gzip stream cut in the middle */
    {
        const char *full = tmp_path("full.gz");
        uint8_t big[4096 + 16];
        size_t k = 0;
        big[k++] = 0, big[k++] = 0, big[k++] = 8, big[k++] = 3;
        k += put_be32(big + k, 4);
        k += put_be32(big + k, 32);
        k += put_be32(big + k, 32);
        uint32_t x = 1;
        for (int i = 0; i < 4096; i++) {
            x = x * 1103515245u + 12345u;
            big[k++] = (uint8_t)(x >> 16);
        }
        write_file(full, big, k, true);
        FILE *f = fopen(full, "rb");
        uint8_t gzbytes[8192];
        size_t ng = fread(gzbytes, 1, sizeof gzbytes, f);
        fclose(f);
        p = tmp_path("cut.gz");
        write_file(p, gzbytes, ng / 2, false);
        const char *l4 = tmp_path("lb4");
        uint8_t lb4[16];
        write_file(l4, lb4, small_labels(lb4, 4), false);
        graft_error err = {0};
        graft_dataset *ds = NULL;
        assert_int_equal(graft_data_load_idx(full, l4, &ds, &err), GRAFT_OK);
        graft_dataset_destroy(ds);
        expect_fail(p, l4, p);
    }
    /* wrong magic: a label file given as images, a float IDX */
    expect_fail(lp, lp, lp);
    memcpy(bad, im, nim);
    bad[2] = 0x0d;
    p = tmp_path("float_im");
    write_file(p, bad, nim, false);
    expect_fail(p, lp, p);
    /* label count differs from image count */
    uint8_t lb2[16];
    size_t nlb2 = small_labels(lb2, 2);
    p = tmp_path("lb_two");
    write_file(p, lb2, nlb2, false);
    expect_fail(ip, p, p);
    /* trailing bytes after the data */
    memcpy(bad, im, nim);
    bad[nim] = 7;
    p = tmp_path("long_im");
    write_file(p, bad, nim + 1, false);
    expect_fail(p, lp, p);
    /* missing file */
    p = tmp_path("does_not_exist");
    expect_fail(p, lp, p);
    expect_fail(ip, p, p);
    /* not IDX at all */
    p = tmp_path("text");
    write_file(p, "hello world, not idx", 20, false);
    expect_fail(p, lp, p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fashion_mnist),
        cmocka_unit_test(test_small_plain_and_gz),
        cmocka_unit_test(test_broken),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
