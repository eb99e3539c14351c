/* tests/train/test_metrics.c - metrics from a hand-made confusion matrix
 * with precision/recall/F1 derived by hand, the undefined cases, the table
 * and the JSON (parsed back with json-c). */
#include "testutil.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* rows = true class, columns = predicted
 *        a  b  c
 *   a  [ 5, 1, 0 ]   recall a = 5/6
 *   b  [ 2, 3, 1 ]   recall b = 3/6
 *   c  [ 0, 0, 4 ]   recall c = 4/4
 * column sums 7, 4, 5: precision a = 5/7, b = 3/4, c = 4/5. */
static const int64_t conf[9] = {5, 1, 0, 2, 3, 1, 0, 0, 4};

static double f1(double p, double r) { return 2 * p * r / (p + r); }

static void test_from_confusion(void **state)
{
    (void)state;
    graft_metrics m;
    graft_error err = {0};
    assert_int_equal(graft_metrics_from_confusion(3, conf, &m, &err), GRAFT_OK);
    assert_int_equal(m.n, 16);
    assert_float_equal(m.accuracy, 12.0 / 16.0, 1e-12);
    const double p[3] = {5.0 / 7, 3.0 / 4, 4.0 / 5}, r[3] = {5.0 / 6, 3.0 / 6, 1.0};
    for (int c = 0; c < 3; c++) {
        assert_float_equal(m.precision[c], p[c], 1e-12);
        assert_float_equal(m.recall[c], r[c], 1e-12);
        assert_float_equal(m.f1[c], f1(p[c], r[c]), 1e-12);
    }
    assert_float_equal(m.macro_precision, (p[0] + p[1] + p[2]) / 3, 1e-12);
    assert_float_equal(m.macro_recall, (r[0] + r[1] + r[2]) / 3, 1e-12);
    assert_float_equal(m.macro_f1, (f1(p[0], r[0]) + f1(p[1], r[1]) + f1(p[2], r[2])) / 3, 1e-12);
    assert_true(isnan(m.loss));
    graft_metrics_fini(&m);
}

static void test_undefined_is_zero(void **state)
{
    (void)state;
    /* class 1 never predicted and class 2 has no images */
    const int64_t c2[9] = {3, 0, 1, 2, 0, 0, 0, 0, 0};
    graft_metrics m;
    graft_error err = {0};
    assert_int_equal(graft_metrics_from_confusion(3, c2, &m, &err), GRAFT_OK);
    assert_float_equal(m.precision[1], 0.0, 0);
    assert_float_equal(m.recall[1], 0.0, 0);
    assert_float_equal(m.f1[1], 0.0, 0);
    assert_float_equal(m.recall[2], 0.0, 0);
    assert_float_equal(m.precision[2], 0.0, 0); /* 0 of 1 predictions right */
    assert_float_equal(m.precision[0], 3.0 / 5, 1e-12);
    graft_metrics_fini(&m);
    const int64_t neg[1] = {-1};
    assert_int_equal(graft_metrics_from_confusion(1, neg, &m, &err), GRAFT_ERR_ARG);
    assert_int_equal(graft_metrics_from_confusion(0, conf, &m, &err), GRAFT_ERR_ARG);
}

static void test_print(void **state)
{
    (void)state;
    graft_metrics m;
    graft_error err = {0};
    assert_int_equal(graft_metrics_from_confusion(3, conf, &m, &err), GRAFT_OK);
    m.loss = 0.5;
    const char *names[3] = {"sandal", "shirt", "ankle boot"};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    graft_metrics_print(&m, names, f);
    fclose(f);
    assert_non_null(strstr(buf, "ankle boot"));
    assert_non_null(strstr(buf, "precision"));
    assert_non_null(strstr(buf, "0.7500")); /* accuracy 12/16 and precision of shirt */
    assert_non_null(strstr(buf, "0.7143")); /* 5/7 */
    assert_non_null(strstr(buf, "confusion"));
    /* the table's lines line up: every class row has the same length */
    int row_len[3] = {0};
    for (int c = 0; c < 3; c++) {
        const char *at = strstr(buf, names[c]);
        const char *start = at;
        while (start > buf && start[-1] != '\n')
            start--;
        row_len[c] = (int)(strchr(at, '\n') - start);
    }
    assert_int_equal(row_len[0], row_len[1]);
    assert_int_equal(row_len[1], row_len[2]);
    free(buf);
    graft_metrics_fini(&m);
}

static void test_json(void **state)
{
    (void)state;
    graft_metrics m;
    graft_error err = {0};
    assert_int_equal(graft_metrics_from_confusion(3, conf, &m, &err), GRAFT_OK);
    const char *names[3] = {"a", "b\"quoted\"", "c"};
    char *s = graft_metrics_to_json(&m, names);
    assert_non_null(s);
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    json_object *v = NULL;
    assert_true(json_object_object_get_ex(o, "accuracy", &v));
    assert_float_equal(json_object_get_double(v), 0.75, 1e-12);
    assert_true(json_object_object_get_ex(o, "loss", &v));
    assert_null(v); /* NaN is written as null */
    assert_true(json_object_object_get_ex(o, "classes", &v));
    assert_int_equal(json_object_array_length(v), 3);
    json_object *c1 = json_object_array_get_idx(v, 1), *x = NULL;
    assert_true(json_object_object_get_ex(c1, "name", &x));
    assert_string_equal(json_object_get_string(x), "b\"quoted\"");
    assert_true(json_object_object_get_ex(c1, "precision", &x));
    assert_float_equal(json_object_get_double(x), 0.75, 1e-12);
    assert_true(json_object_object_get_ex(c1, "support", &x));
    assert_int_equal(json_object_get_int64(x), 6);
    assert_true(json_object_object_get_ex(o, "confusion", &v));
    json_object *row = json_object_array_get_idx(v, 1);
    assert_int_equal(json_object_get_int64(json_object_array_get_idx(row, 0)), 2);
    json_object_put(o);
    free(s);
    graft_metrics_fini(&m);
}

/* A model scoring more classes than the data has: its predictions beyond
 * the data's classes are an "other" column, counted as errors; the table and
 * the JSON read exactly n_classes names (the buffer below has no more). */
static void test_other_column(void **state)
{
    (void)state;
    const int64_t other[3] = {2, 0, 4}; /* rows: 6+2, 6, 4+4 */
    graft_metrics m;
    graft_error err = {0};
    assert_int_equal(graft_metrics_from_counts(3, conf, other, &m, &err), GRAFT_OK);
    assert_int_equal(m.n, 22);
    assert_float_equal(m.accuracy, 12.0 / 22.0, 1e-12);
    assert_float_equal(m.recall[0], 5.0 / 8, 1e-12);
    assert_float_equal(m.recall[2], 4.0 / 8, 1e-12);
    assert_float_equal(m.precision[0], 5.0 / 7, 1e-12); /* columns unchanged */
    const int64_t bad[3] = {0, -1, 0};
    graft_metrics m2;
    assert_int_equal(graft_metrics_from_counts(3, conf, bad, &m2, &err), GRAFT_ERR_ARG);

    char **names = malloc(3 * sizeof *names); /* exactly 3: ASan sees a 4th read */
    names[0] = strdup("sandal");
    names[1] = strdup("shirt");
    names[2] = strdup("bag");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    graft_metrics_print(&m, (const char *const *)names, f);
    fclose(f);
    assert_non_null(strstr(buf, "other"));
    assert_non_null(strstr(buf, "0.5455")); /* accuracy 12/22 */
    const char *row = NULL; /* the last " bag ": the matrix row, after its header */
    for (const char *p = strstr(buf, " bag "); p; p = strstr(p + 1, " bag "))
        row = p;
    assert_non_null(row);
    long long cells[4] = {-1, -1, -1, -1}; /* c: 0 0 4, other 4 */
    assert_int_equal(sscanf(row, " bag %lld %lld %lld %lld", &cells[0], &cells[1], &cells[2],
                            &cells[3]), 4);
    assert_true(cells[0] == 0 && cells[1] == 0 && cells[2] == 4 && cells[3] == 4);
    free(buf);
    char *s = graft_metrics_to_json(&m, (const char *const *)names);
    assert_non_null(s);
    json_object *o = json_tokener_parse(s), *v = NULL;
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "confusion_other", &v));
    assert_int_equal(json_object_get_int64(json_object_array_get_idx(v, 2)), 4);
    assert_true(json_object_object_get_ex(o, "classes", &v));
    json_object *c0 = json_object_array_get_idx(v, 0), *x = NULL;
    assert_true(json_object_object_get_ex(c0, "support", &x));
    assert_int_equal(json_object_get_int64(x), 8);
    json_object_put(o);
    free(s);
    for (int i = 0; i < 3; i++)
        free(names[i]);
    free(names);
    graft_metrics_fini(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_confusion),
        cmocka_unit_test(test_undefined_is_zero),
        cmocka_unit_test(test_print),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_other_column),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
