/* tests/train/test_fit_backbone.c - training on real data through the
 * default backbone (models/fmnist_cnn.onnx, Fashion-MNIST from Debian):
 * the optimized clone used for the feature cache gives the features of the
 * plain graph, a new head for classes 5-9 learns from 30 images per class,
 * and graft_evaluate scores it on other images well above chance. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "train/train_internal.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/"

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_backbone_head(void **state)
{
    (void)state;
    const char *src = getenv("GRAFT_SOURCE_DIR");
    char model[1024];
    snprintf(model, sizeof model, "%s/models/fmnist_cnn.onnx", src ? src : ".");
    FILE *probe = fopen(model, "rb");
    FILE *probe2 = fopen(FMNIST "t10k-images-idx3-ubyte.gz", "rb");
    if (probe)
        fclose(probe);
    if (probe2)
        fclose(probe2);
    if (!probe || !probe2)
        skip();
    graft_error err = {0};
    graft_graph *g = NULL;
    if (graft_onnx_import_file(model, NULL, &g, &err))
        fail_msg("%s", err.msg);
    graft_feature_info fi;
    graft_head_spec hs = graft_head_spec_default();
    hs.n_classes = 5;
    hs.seed = 3;
    graft_head_info hi;
    if (graft_surgery_find_features(g, &fi, &err) ||
        graft_surgery_cut_and_attach(g, fi.value, &hs, &hi, &err) ||
        graft_surgery_freeze(g, &hi, &err))
        fail_msg("%s", err.msg);

    graft_dataset *all = NULL, *train = NULL, *test = NULL;
    assert_int_equal(graft_data_load_idx(FMNIST "t10k-images-idx3-ubyte.gz",
                                         FMNIST "t10k-labels-idx1-ubyte.gz", &all, &err),
                     GRAFT_OK);
    int classes[5] = {5, 6, 7, 8, 9};
    assert_int_equal(graft_data_select(all, classes, 5, 30, 1, &train, &err), GRAFT_OK);
    assert_int_equal(graft_data_select(all, classes, 5, 40, 2, &test, &err), GRAFT_OK);
    graft_preprocess pp = graft_preprocess_default();
    for (int c = 0; c < 3; c++) {
        pp.mean[c] = 0.313887f;
        pp.std[c] = 0.362561f;
    }

    /* the optimized clone and the plain graph compute the same features */
    graft_tensor *x = NULL;
    int64_t d0[1] = {1}, idx[50];
    for (int i = 0; i < 50; i++)
        idx[i] = i;
    assert_int_equal(graft_tensor_create(GRAFT_FLOAT, 1, d0, &x, &err), GRAFT_OK);
    assert_int_equal(graft_data_make_batch(train, idx, 50, &pp, NULL, NULL, x, &err), GRAFT_OK);
    graft__runner fast, plain;
    assert_int_equal(graft__runner_init(&fast, g, g->inputs[0], hi.features, true, 1, &err),
                     GRAFT_OK);
    assert_int_equal(graft__runner_init(&plain, g, g->inputs[0], hi.features, false, 1, &err),
                     GRAFT_OK);
    const graft_tensor *yf = NULL, *yp = NULL;
    if (graft__runner_run(&fast, x, &yf, &err) || graft__runner_run(&plain, x, &yp, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(graft_tensor_nelem(yf), graft_tensor_nelem(yp));
    for (int64_t i = 0; i < graft_tensor_nelem(yf); i++) {
        float a = graft_tensor_f32(yf)[i], b = graft_tensor_f32(yp)[i];
        assert_true(fabsf(a - b) <= 1e-4f * (1.0f + fabsf(b)));
    }
    graft__runner_fini(&fast);
    graft__runner_fini(&plain);
    graft_tensor_destroy(x);

    graft_train_config tc = graft_train_config_default();
    tc.epochs = 15;
    tc.lr = 1e-2f;
    tc.val_split = 0.2f;
    tc.patience = 0;
    tc.n_threads = 1;
    graft_train_result res;
    double t0 = wall();
    if (graft_train_fit(g, &hi, train, &pp, &tc, &res, &err))
        fail_msg("fit: %s", err.msg);
    double t_fit = wall() - t0;
    assert_true(res.features_cached);
    /* backbone and head times are apart: together no more than the call */
    assert_true(res.feature_seconds > 0 && res.train_seconds > 0);
    assert_true(res.feature_seconds + res.train_seconds <= t_fit + 1e-6);
    assert_true(res.final_accuracy > 0.6);
    graft_metrics m;
    if (graft_evaluate(g, hi.probabilities, test, &pp, 1, &m, &err))
        fail_msg("evaluate: %s", err.msg);
    assert_int_equal(m.n, 200);
    assert_true(m.accuracy > 0.5); /* chance is 0.2 */
    assert_true(isfinite(m.loss));
    graft_metrics_fini(&m);

    /* The untouched backbone scores 5 classes (0-4); data of 3 classes
     * (0, 1, 2 relabelled): predictions of 3 and 4 are an "other" column of
     * errors, never an index into the 3-class matrix. */
    graft_graph *bb = NULL;
    graft_dataset *three = NULL;
    int first3[3] = {0, 1, 2};
    if (graft_onnx_import_file(model, NULL, &bb, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(graft_data_select(all, first3, 3, 50, 4, &three, &err), GRAFT_OK);
    if (graft_evaluate(bb, bb->outputs[0], three, &pp, 1, &m, &err))
        fail_msg("evaluate: %s", err.msg);
    assert_int_equal(m.n_classes, 3);
    assert_non_null(m.other);
    int64_t counted = 0;
    for (int i = 0; i < 9; i++)
        counted += m.confusion[i];
    for (int i = 0; i < 3; i++)
        counted += m.other[i];
    assert_int_equal(counted, 150);
    assert_int_equal(m.n, 150);
    graft_metrics_fini(&m);
    /* data with more classes than the model scores: refused, naming the model */
    graft_dataset *seven = NULL;
    int first7[7] = {0, 1, 2, 3, 4, 5, 6};
    assert_int_equal(graft_data_select(all, first7, 7, 5, 4, &seven, &err), GRAFT_OK);
    assert_int_equal(graft_evaluate(bb, bb->outputs[0], seven, &pp, 1, &m, &err), GRAFT_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "fmnist_cnn.onnx"));
    graft_dataset_destroy(seven);
    graft_dataset_destroy(three);
    graft_graph_destroy(bb);
    graft_dataset_destroy(all);
    graft_dataset_destroy(train);
    graft_dataset_destroy(test);
    graft_graph_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backbone_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
