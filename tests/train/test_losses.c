/* tests/train/test_losses.c - softmax cross-entropy: value against a naive
 * double-precision formula, gradient against central finite differences,
 * stability with huge logits, and the probability form. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "train/train_internal.h"

/* Naive mean cross-entropy in double: -log(exp(z_y) / sum exp(z)). */
static double naive_loss(const double *z, const int32_t *y, int n, int k)
{
    double total = 0;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < k; j++)
            s += exp(z[i * k + j]);
        total += -log(exp(z[i * k + y[i]]) / s);
    }
    return total / n;
}

static void test_value_and_gradient(void **state)
{
    (void)state;
    enum { N = 4, K = 6 };
    float z[N * K], d[N * K];
    double zd[N * K];
    const int32_t y[N] = {0, 5, 2, 2};
    for (int i = 0; i < N * K; i++)
        zd[i] = z[i] = (float)(1.3 * sin(0.7 * i + 0.3));
    double loss_sum = 0;
    int64_t correct = -1;
    graft__softmax_xent(z, y, N, K, d, &loss_sum, &correct);
    assert_float_equal(loss_sum / N, naive_loss(zd, y, N, K), 1e-6);
    /* accuracy: argmax per row computed here */
    int64_t want_correct = 0;
    for (int i = 0; i < N; i++) {
        int am = 0;
        for (int j = 1; j < K; j++)
            if (zd[i * K + j] > zd[i * K + am])
                am = j;
        want_correct += am == y[i];
    }
    assert_int_equal(correct, want_correct);
    /* d(mean loss)/dz by central differences on the double formula */
    for (int i = 0; i < N * K; i++) {
        const double h = 1e-5;
        double save = zd[i];
        zd[i] = save + h;
        double up = naive_loss(zd, y, N, K);
        zd[i] = save - h;
        double down = naive_loss(zd, y, N, K);
        zd[i] = save;
        assert_float_equal(d[i], (up - down) / (2 * h), 1e-6);
    }
    /* each gradient row sums to zero (softmax minus one-hot) */
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int j = 0; j < K; j++)
            s += d[i * K + j];
        assert_float_equal(s, 0.0, 1e-7);
    }
}

static void test_large_logits(void **state)
{
    (void)state;
    /* exp(1000) overflows: the max-subtraction must keep this finite */
    const float z[6] = {1000.0f, 990.0f, -1000.0f, -5000.0f, 3000.0f, 2999.0f};
    const int32_t y[2] = {1, 1};
    float d[6];
    double loss = 0;
    graft__softmax_xent(z, y, 2, 3, d, &loss, NULL);
    /* row 0: lse = 1000 + log(1 + e^-10 + e^-2000) -> loss = 10 + log(1+e^-10)
     * row 1: z = {-5000, 3000, 2999}, y = 1 -> loss = log(1 + e^-1) */
    double want = 10.0 + log1p(exp(-10.0)) + log1p(exp(-1.0));
    assert_float_equal(loss, want, 1e-4);
    for (int i = 0; i < 6; i++)
        assert_true(isfinite(d[i]));
}

static void test_prob_xent(void **state)
{
    (void)state;
    const float p[6] = {0.7f, 0.2f, 0.1f, 0.0f, 0.0f, 1.0f};
    const int32_t y[2] = {1, 0};
    double loss = 0;
    int64_t correct = 0;
    graft__prob_xent(p, y, 2, 3, &loss, &correct);
    /* -log 0.2 and -log(clamp 1e-12) */
    assert_float_equal(loss, -log(0.2) - log(1e-12), 1e-5);
    assert_int_equal(correct, 0);
    assert_int_equal(graft__argmax(p, 3), 0);
    assert_int_equal(graft__argmax(p + 3, 3), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_and_gradient),
        cmocka_unit_test(test_large_logits),
        cmocka_unit_test(test_prob_xent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
