/* tests/data/test_rng.c - the RNG against an independent Python
 * implementation of splitmix64 + xoshiro256** (values computed once with
 * /usr/bin/python3 from the published reference algorithms), and the
 * statistical shape of uniform, normal and shuffle. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_known_sequence(void **state)
{
    (void)state;
    static const uint64_t want0[4] = {0x99ec5f36cb75f2b4ull, 0xbf6e1f784956452aull,
                                      0x1a5f849d4933e6e0ull, 0x6aa594f1262d2d2cull};
    static const uint64_t want42[4] = {0x15780b2e0c2ec716ull, 0x6104d9866d113a7eull,
                                       0xae17533239e499a1ull, 0xecb8ad4703b360a1ull};
    graft_rng r;
    graft_rng_seed(&r, 0);
    for (int i = 0; i < 4; i++)
        assert_true(graft_rng_next(&r) == want0[i]);
    graft_rng_seed(&r, 42);
    for (int i = 0; i < 4; i++)
        assert_true(graft_rng_next(&r) == want42[i]);
}

static void test_uniform_normal(void **state)
{
    (void)state;
    graft_rng r;
    graft_rng_seed(&r, 7);
    double sum = 0, sum2 = 0, nsum = 0, nsum2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = graft_rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
        sum += u;
        sum2 += u * u;
        double z = graft_rng_normal(&r);
        assert_true(isfinite(z));
        nsum += z;
        nsum2 += z * z;
    }
    double mean = sum / n, var = sum2 / n - mean * mean;
    assert_true(fabs(mean - 0.5) < 0.005);
    assert_true(fabs(var - 1.0 / 12.0) < 0.002);
    double nmean = nsum / n, nvar = nsum2 / n - nmean * nmean;
    assert_true(fabs(nmean) < 0.01);
    assert_true(fabs(nvar - 1.0) < 0.02);
}

static void test_shuffle(void **state)
{
    (void)state;
    graft_rng r;
    graft_rng_seed(&r, 3);
    /* Every element lands in every slot about equally often. */
    enum { N = 5, TRIALS = 50000 };
    int count[N][N];
    memset(count, 0, sizeof count);
    for (int t = 0; t < TRIALS; t++) {
        int64_t v[N];
        for (int i = 0; i < N; i++)
            v[i] = i;
        graft_rng_shuffle(&r, v, N);
        int seen = 0;
        for (int i = 0; i < N; i++) {
            assert_true(v[i] >= 0 && v[i] < N);
            seen |= 1 << v[i];
            count[v[i]][i]++;
        }
        assert_int_equal(seen, (1 << N) - 1);
    }
    for (int a = 0; a < N; a++)
        for (int b = 0; b < N; b++)
            assert_true(abs(count[a][b] - TRIALS / N) < 400);
    /* Same seed, same permutation. */
    int64_t p[100], q[100];
    for (int i = 0; i < 100; i++)
        p[i] = q[i] = i;
    graft_rng_seed(&r, 99);
    graft_rng_shuffle(&r, p, 100);
    graft_rng_seed(&r, 99);
    graft_rng_shuffle(&r, q, 100);
    assert_memory_equal(p, q, sizeof p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_sequence),
        cmocka_unit_test(test_uniform_normal),
        cmocka_unit_test(test_shuffle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
