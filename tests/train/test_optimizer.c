/* tests/train/test_optimizer.c - SGD with momentum and Adam against values
 * derived by hand from the PyTorch update rules, and the penalty gradients. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "train/train_internal.h"

static void test_sgd(void **state)
{
    (void)state;
    float w[2] = {1.0f, -2.0f}, g[2], m[2] = {0}, v[2] = {0};
    graft__param p = {.value = 0, .w = w, .nelem = 2, .penalize = false, .m = m, .v = v, .grad = g};
    graft__optim o = {.kind = GRAFT_OPT_SGD, .lr = 0.1f, .momentum = 0.9f};
    /* step 1: v = g = (0.5, -1); w = (1 - 0.05, -2 + 0.1) = (0.95, -1.9) */
    g[0] = 0.5f;
    g[1] = -1.0f;
    graft__optim_step(&o, &p, 1);
    assert_float_equal(w[0], 0.95, 1e-7);
    assert_float_equal(w[1], -1.9, 1e-7);
    /* step 2 with g = (0.5, 0): v = (0.9*0.5 + 0.5, 0.9*-1) = (0.95, -0.9);
     * w = (0.95 - 0.095, -1.9 + 0.09) = (0.855, -1.81) */
    g[1] = 0.0f;
    graft__optim_step(&o, &p, 1);
    assert_float_equal(w[0], 0.855, 1e-6);
    assert_float_equal(w[1], -1.81, 1e-6);
    /* no momentum: plain gradient descent */
    graft__optim plain = {.kind = GRAFT_OPT_SGD, .lr = 0.5f, .momentum = 0.0f};
    g[0] = 1.0f;
    graft__optim_step(&plain, &p, 1);
    assert_float_equal(w[0], 0.355, 1e-6);
}

static void test_adam(void **state)
{
    (void)state;
    float w[1] = {1.0f}, g[1], m[1] = {0}, v[1] = {0};
    graft__param p = {.value = 0, .w = w, .nelem = 1, .penalize = false, .m = m, .v = v, .grad = g};
    graft__optim o = {.kind = GRAFT_OPT_ADAM, .lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f,
                      .eps = 1e-8f};
    /* step 1, g = 0.2: m = 0.02, v = 4e-5; m_hat = 0.2, v_hat = 0.04;
     * w = 1 - 0.01 * 0.2 / (0.2 + 1e-8) */
    g[0] = 0.2f;
    graft__optim_step(&o, &p, 1);
    double w1 = 1.0 - 0.01 * 0.2 / (0.2 + 1e-8);
    assert_float_equal(w[0], w1, 1e-7);
    assert_float_equal(m[0], 0.02, 1e-8);
    assert_float_equal(v[0], 4e-5, 1e-11);
    /* step 2, g = -0.1: m = 0.018 - 0.01 = 0.008, v = 0.999*4e-5 + 1e-5;
     * bias corrections 1-0.81 = 0.19 and 1-0.998001 */
    g[0] = -0.1f;
    graft__optim_step(&o, &p, 1);
    double m2 = 0.9 * 0.02 + 0.1 * -0.1, v2 = 0.999 * 4e-5 + 0.001 * 0.01;
    double w2 = w1 - 0.01 / 0.19 * m2 / (sqrt(v2) / sqrt(1 - 0.998001) + 1e-8);
    assert_float_equal(w[0], w2, 1e-6);
}

static void test_penalty(void **state)
{
    (void)state;
    float w[4] = {0.5f, -0.25f, 0.0f, 2.0f}, g[4] = {0}, b[2] = {1.0f, -1.0f}, gb[2] = {0};
    graft__param p[2] = {
        {.value = 0, .w = w, .nelem = 4, .penalize = true, .grad = g},
        {.value = 1, .w = b, .nelem = 2, .penalize = false, .grad = gb},
    };
    graft__optim o = {.kind = GRAFT_OPT_SGD, .lr = 0.1f, .l1 = 0.01f, .l2 = 0.1f};
    double pen = graft__penalty_grad(&o, p, 2);
    /* l1 * (0.5+0.25+0+2) + l2 * (0.25+0.0625+0+4) */
    assert_float_equal(pen, 0.01 * 2.75 + 0.1 * 4.3125, 1e-7);
    /* g = l1*sign(w) + 2*l2*w; sign(0) = 0 as torch.abs' gradient */
    assert_float_equal(g[0], 0.01 + 0.1, 1e-7);
    assert_float_equal(g[1], -0.01 - 0.05, 1e-7);
    assert_float_equal(g[2], 0.0, 0);
    assert_float_equal(g[3], 0.01 + 0.4, 1e-7);
    /* biases are not penalised */
    assert_float_equal(gb[0], 0.0, 0);
    assert_float_equal(gb[1], 0.0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_penalty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
