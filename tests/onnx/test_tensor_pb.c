/* TensorProto files (ONNX test-data input_N.pb / output_N.pb): reading every
 * stored layout written by the onnx package, writing with dtype conversion
 * checked by the onnx package, and refusing truncated or inconsistent files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnx_util.h"
#include "testutil.h"

static char *tmp_root;

static void test_read_all_layouts(void **state)
{
    (void)state;
    const char *dir = ou_models();
    if (!dir)
        skip();
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "ls '%s/tensors'", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        char path[2048], ref[2048], name[256] = "";
        snprintf(path, sizeof path, "%s/tensors/%s", dir, line);
        line[strlen(line) - 3] = 0; /* drop .pb */
        snprintf(ref, sizeof ref, "%s/ref/%s.f64", dir, line);
        graft_tensor *t = NULL;
        graft_dtype sdt = GRAFT_DTYPE_UNDEFINED;
        graft_error err = {0};
        if (graft_onnx_read_tensor_file(path, &t, &sdt, name, sizeof name, &err))
            fail_msg("%s", err.msg);
        assert_string_equal(name, line);
        size_t len = 0;
        double *want = (double *)ou_read(ref, &len);
        assert_non_null(want);
        int64_t ne = graft_tensor_nelem(t);
        assert_int_equal((size_t)ne * 8, len);
        for (int64_t i = 0; i < ne; i++) {
            double got = t->dtype == GRAFT_FLOAT     ? graft_tensor_f32(t)[i]
                         : t->dtype == GRAFT_UINT8 ? ((uint8_t *)t->data)[i]
                                                   : (double)graft_tensor_i64(t)[i];
            double w = t->dtype == GRAFT_FLOAT ? (double)(float)want[i] : want[i];
            if (!(got == w))
                fail_msg("%s[%lld] = %.9g, want %.9g", line, (long long)i, got, w);
        }
        assert_true(sdt != GRAFT_DTYPE_UNDEFINED);
        free(want);
        graft_tensor_destroy(t);
        n++;
    }
    pclose(p);
    assert_int_equal(n, 28);
}

static void write_and_check(const graft_tensor *t, graft_dtype as, const char *dims,
                            const char *values)
{
    char *path = ou_join(tmp_root, "w.pb");
    graft_error err = {0};
    if (graft_onnx_write_tensor_file(path, t, as, "tname", &err))
        fail_msg("%s", err.msg);
    graft_dtype stored = as ? as : t->dtype;
    const char *py = ou_python();
    if (py && ou_sh("'%s' '%s/tests/onnx/check_tensor.py' '%s' tname %d '%s' '%s'", py,
                    ou_source(), path, (int)stored, dims, values) != 0)
        fail_msg("check_tensor.py rejected the file written as dtype %d", (int)stored);
    /* and graft reads back what it wrote */
    graft_tensor *back = NULL;
    graft_dtype sdt;
    assert_int_equal(graft_onnx_read_tensor_file(path, &back, &sdt, NULL, 0, &err), GRAFT_OK);
    assert_int_equal(sdt, stored);
    assert_int_equal(back->rank, t->rank);
    graft_tensor_destroy(back);
    unlink(path);
    free(path);
}

static void test_write(void **state)
{
    (void)state;
    int64_t dims[2] = {2, 3};
    graft_tensor *f = NULL, *i = NULL, *b = NULL;
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 2, dims, &f, NULL), GRAFT_OK);
    const float fv[6] = {0.1f, -2.5f, 65504.0f, 1e-5f, 3.0f, -0.0f};
    memcpy(f->data, fv, sizeof fv);
    const char *fvals = "0.1,-2.5,65504,1e-5,3,-0";
    write_and_check(f, GRAFT_DTYPE_UNDEFINED, "2,3", fvals);
    write_and_check(f, GRAFT_FLOAT16, "2,3", fvals);
    write_and_check(f, GRAFT_DOUBLE, "2,3", fvals);
    assert_int_equal(graft_tensor_create(GRAFT_INT64, 2, dims, &i, NULL), GRAFT_OK);
    const int64_t iv[6] = {1, -2, 3, 100, 0, -7};
    memcpy(i->data, iv, sizeof iv);
    write_and_check(i, GRAFT_DTYPE_UNDEFINED, "2,3", "1,-2,3,100,0,-7");
    write_and_check(i, GRAFT_INT32, "2,3", "1,-2,3,100,0,-7");
    write_and_check(i, GRAFT_INT8, "2,3", "1,-2,3,100,0,-7");
    assert_int_equal(graft_tensor_create(GRAFT_UINT8, 1, dims, &b, NULL), GRAFT_OK);
    ((uint8_t *)b->data)[1] = 1;
    write_and_check(b, GRAFT_BOOL, "2", "0,1");
    graft_tensor *s = NULL;
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 0, dims, &s, NULL), GRAFT_OK);
    graft_tensor_f32(s)[0] = 4.25f;
    write_and_check(s, GRAFT_DTYPE_UNDEFINED, "", "4.25");
    graft_tensor_destroy(s);
    graft_tensor_destroy(f);
    graft_tensor_destroy(i);
    graft_tensor_destroy(b);
}

static void test_bad_files(void **state)
{
    (void)state;
    graft_tensor *t = NULL;
    graft_error err = {0};
    const char *missing = "/nonexistent-graft/x.pb";
    assert_int_equal(graft_onnx_read_tensor_file(missing, &t, NULL, NULL, 0, &err), GRAFT_ERR_IO);
    assert_non_null(strstr(err.msg, missing));
    /* a float tensor cut short: every prefix is refused or consistent */
    int64_t dims[1] = {64};
    graft_tensor *f = NULL;
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 1, dims, &f, NULL), GRAFT_OK);
    char *path = ou_join(tmp_root, "full.pb");
    assert_int_equal(graft_onnx_write_tensor_file(path, f, GRAFT_DTYPE_UNDEFINED, "x", &err),
                     GRAFT_OK);
    size_t len = 0;
    unsigned char *buf = ou_read(path, &len);
    assert_non_null(buf);
    char *cut = ou_join(tmp_root, "cut.pb");
    for (size_t k = 1; k < len; k += 7) {
        FILE *fp = fopen(cut, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(buf, 1, k, fp), k);
        fclose(fp);
        graft_status st = graft_onnx_read_tensor_file(cut, &t, NULL, NULL, 0, &err);
        if (st == GRAFT_OK) {
            graft_tensor_destroy(t);
            continue;
        }
        assert_non_null(strstr(err.msg, cut));
    }
    free(cut);
    free(buf);
    free(path);
    graft_tensor_destroy(f);
}

static void test_shared_test_data(void **state)
{
    (void)state;
    if (!ou_shared())
        skip();
    char p[2048];
    snprintf(p, sizeof p, "%s/models/squeezenet1.0-fp16/test_data_set_0/input_0.pb", ou_shared());
    if (!ou_exists(p))
        skip();
    graft_tensor *t = NULL;
    graft_dtype sdt;
    graft_error err = {0};
    assert_int_equal(graft_onnx_read_tensor_file(p, &t, &sdt, NULL, 0, &err), GRAFT_OK);
    assert_int_equal(sdt, GRAFT_FLOAT16);
    assert_int_equal(t->dtype, GRAFT_FLOAT);
    assert_int_equal(t->rank, 4);
    graft_tensor_destroy(t);
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
        cmocka_unit_test(test_read_all_layouts),
        cmocka_unit_test(test_write),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_shared_test_data),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
