/* data/rng.c - the deterministic RNG: splitmix64 expands the seed into the
 * xoshiro256** state (the seeding its authors recommend), so every machine
 * draws the same sequence for the same seed. */
#include <math.h>

#include "data/data_internal.h"
#include "graft/data.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void graft_rng_seed(graft_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

uint64_t graft_rng_next(graft_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double graft_rng_uniform(graft_rng *r) { return (double)(graft_rng_next(r) >> 11) * 0x1.0p-53; }

float graft_rng_normal(graft_rng *r)
{
    /* Box-Muller; 1-u keeps the log argument in (0,1]. One of the pair is
     * dropped so that the state stays the four words of graft_rng. */
    double u1 = 1.0 - graft_rng_uniform(r);
    double u2 = graft_rng_uniform(r);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint64_t graft__rng_below(graft_rng *r, uint64_t bound)
{
    /* Reject the top partial range so that every residue is equally likely. */
    uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t x = graft_rng_next(r);
        if (x >= threshold)
            return x % bound;
    }
}

void graft_rng_shuffle(graft_rng *r, int64_t *v, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)graft__rng_below(r, (uint64_t)i + 1);
        int64_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}
