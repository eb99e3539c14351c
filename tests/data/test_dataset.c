/* tests/data/test_dataset.c - class selection and the stratified split on a
 * synthetic data set whose pixels encode each image's original index, so
 * that the tests can tell exactly which images were taken. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

/* n images of 2x1 grey; pixel bytes = index (little-endian 16 bit); label = i % k. */
static graft_dataset *synthetic(int64_t n, int k)
{
    graft_dataset *ds = NULL;
    graft_error err = {0};
    assert_int_equal(graft__dataset_alloc(n, 2, 1, 1, k, &ds, &err), GRAFT_OK);
    for (int64_t i = 0; i < n; i++) {
        ds->pixels[2 * i] = (uint8_t)(i & 0xff);
        ds->pixels[2 * i + 1] = (uint8_t)(i >> 8);
        ds->labels[i] = (int32_t)(i % k);
    }
    return ds;
}

static int64_t orig_index(const graft_dataset *ds, int64_t i)
{
    return ds->pixels[2 * i] | (int64_t)ds->pixels[2 * i + 1] << 8;
}

static void test_select(void **state)
{
    (void)state;
    graft_dataset *all = synthetic(1000, 10);
    const char *names[10] = {"t-shirt", "trouser", "pullover", "dress", "coat",
                             "sandal",  "shirt",   "sneaker",  "bag",   "boot"};
    graft_error err = {0};
    assert_int_equal(graft_data_set_class_names(all, 10, names, &err), GRAFT_OK);
    int classes[] = {7, 5, 9};
    graft_dataset *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(graft_data_select(all, classes, 3, 20, 42, &a, &err), GRAFT_OK);
    assert_int_equal(a->n, 60);
    assert_int_equal(a->n_classes, 3);
    assert_string_equal(a->class_names[0], "sneaker");
    assert_string_equal(a->class_names[1], "sandal");
    assert_string_equal(a->class_names[2], "boot");
    int per[3] = {0};
    for (int64_t i = 0; i < a->n; i++) {
        int64_t o = orig_index(a, i);
        assert_int_equal(classes[a->labels[i]], all->labels[o]);
        per[a->labels[i]]++;
        if (i > 0)
            assert_true(o > orig_index(a, i - 1)); /* original order, no duplicates */
    }
    for (int k = 0; k < 3; k++)
        assert_int_equal(per[k], 20);
    /* same seed, same images; another seed, other images */
    assert_int_equal(graft_data_select(all, classes, 3, 20, 42, &b, &err), GRAFT_OK);
    assert_int_equal(b->n, a->n);
    assert_memory_equal(a->pixels, b->pixels, (size_t)a->n * 2);
    assert_memory_equal(a->labels, b->labels, (size_t)a->n * sizeof *a->labels);
    assert_int_equal(graft_data_select(all, classes, 3, 20, 43, &c, &err), GRAFT_OK);
    assert_true(memcmp(a->pixels, c->pixels, (size_t)a->n * 2) != 0);
    graft_dataset_destroy(b);
    graft_dataset_destroy(c);
    /* per_class 0 and a cap above the class size keep everything */
    assert_int_equal(graft_data_select(all, classes, 3, 0, 1, &b, &err), GRAFT_OK);
    assert_int_equal(b->n, 300);
    assert_int_equal(graft_data_select(all, classes, 3, 5000, 1, &c, &err), GRAFT_OK);
    assert_int_equal(c->n, 300);
    graft_dataset_destroy(b);
    graft_dataset_destroy(c);
    /* bad class lists */
    int bad1[] = {3, 10};
    int bad2[] = {3, 3};
    assert_int_equal(graft_data_select(all, bad1, 2, 5, 1, &b, &err), GRAFT_ERR_ARG);
    assert_null(b);
    assert_int_equal(graft_data_select(all, bad2, 2, 5, 1, &b, &err), GRAFT_ERR_ARG);
    assert_int_equal(graft_data_set_class_names(all, 3, names, &err), GRAFT_ERR_ARG);
    graft_dataset_destroy(a);
    graft_dataset_destroy(all);
}

static void test_split(void **state)
{
    (void)state;
    graft_dataset *all = synthetic(503, 5); /* classes of 101 and 100 images */
    graft_error err = {0};
    graft_dataset *tr = NULL, *va = NULL, *tr2 = NULL, *va2 = NULL;
    assert_int_equal(graft_data_split(all, 0.2, 11, &tr, &va, &err), GRAFT_OK);
    assert_int_equal(tr->n + va->n, 503);
    int vper[5] = {0};
    for (int64_t i = 0; i < va->n; i++)
        vper[va->labels[i]]++;
    for (int k = 0; k < 5; k++)
        assert_int_equal(vper[k], 20); /* round(0.2 * 101) = round(0.2 * 100) = 20 */
    /* disjoint, and together the original set with the original labels */
    char *seen = calloc(503, 1);
    for (int64_t i = 0; i < tr->n; i++) {
        int64_t o = orig_index(tr, i);
        assert_int_equal(tr->labels[i], all->labels[o]);
        seen[o]++;
    }
    for (int64_t i = 0; i < va->n; i++) {
        int64_t o = orig_index(va, i);
        assert_int_equal(va->labels[i], all->labels[o]);
        seen[o]++;
    }
    for (int i = 0; i < 503; i++)
        assert_int_equal(seen[i], 1);
    free(seen);
    assert_int_equal(graft_data_split(all, 0.2, 11, &tr2, &va2, &err), GRAFT_OK);
    assert_int_equal(va2->n, va->n);
    assert_memory_equal(va->pixels, va2->pixels, (size_t)va->n * 2);
    graft_dataset_destroy(tr2);
    graft_dataset_destroy(va2);
    assert_int_equal(graft_data_split(all, 0.2, 12, &tr2, &va2, &err), GRAFT_OK);
    assert_true(memcmp(va->pixels, va2->pixels, (size_t)va->n * 2) != 0);
    graft_dataset_destroy(tr2);
    graft_dataset_destroy(va2);
    /* no split: everything in train */
    assert_int_equal(graft_data_split(all, 0.0, 1, &tr2, &va2, &err), GRAFT_OK);
    assert_int_equal(tr2->n, 503);
    assert_int_equal(va2->n, 0);
    graft_dataset_destroy(tr2);
    graft_dataset_destroy(va2);
    assert_int_equal(graft_data_split(all, 1.0, 1, &tr2, &va2, &err), GRAFT_ERR_ARG);
    assert_null(tr2);
    graft_dataset_destroy(tr);
    graft_dataset_destroy(va);
    graft_dataset_destroy(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
