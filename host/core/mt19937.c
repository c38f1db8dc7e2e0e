/* MT19937 from the published algorithm (init_genrand, init_by_array, genrand_int32). */
#include "core/mt19937.h"

void dc_mt19937_seed(struct dc_mt19937 *g, uint32_t seed) {
    g->mt[0] = seed;
    for (uint32_t i = 1; i < 624; ++i) g->mt[i] = 1812433253u * (g->mt[i - 1] ^ (g->mt[i - 1] >> 30)) + i;
    g->idx = 624;
}

void dc_mt19937_seed_array(struct dc_mt19937 *g, const uint32_t *key, size_t n) {
    dc_mt19937_seed(g, 19650218u);
    size_t i = 1, j = 0;
    for (size_t k = n > 624 ? n : 624; k; --k) {
        g->mt[i] = (g->mt[i] ^ ((g->mt[i - 1] ^ (g->mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
        if (++i >= 624) {
            g->mt[0] = g->mt[623];
            i = 1;
        }
        if (++j >= n) j = 0;
    }
    for (size_t k = 623; k; --k) {
        g->mt[i] = (g->mt[i] ^ ((g->mt[i - 1] ^ (g->mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        if (++i >= 624) {
            g->mt[0] = g->mt[623];
            i = 1;
        }
    }
    g->mt[0] = 0x80000000u;
    g->idx = 624;
}

uint32_t dc_mt19937_u32(struct dc_mt19937 *g) {
    if (g->idx >= 624) {
        for (size_t k = 0; k < 624; ++k) {
            uint32_t y = (g->mt[k] & 0x80000000u) | (g->mt[(k + 1) % 624] & 0x7fffffffu);
            g->mt[k] = g->mt[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        g->idx = 0;
    }
    uint32_t y = g->mt[g->idx++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t dc_mt19937_below(struct dc_mt19937 *g, uint64_t n) {
    if (n <= 1) return 0;
    if (n <= 0xffffffffu) {
        uint32_t lim = (uint32_t)(0x100000000ull - 0x100000000ull % n) - 1; /* largest unbiased value */
        for (;;) {
            uint32_t r = dc_mt19937_u32(g);
            if (r <= lim) return r % n;
        }
    }
    uint64_t rem = (UINT64_MAX % n + 1) % n; /* 2^64 mod n */
    for (;;) {
        uint64_t hi = dc_mt19937_u32(g), r = hi << 32 | dc_mt19937_u32(g);
        if (r <= UINT64_MAX - rem) return r % n;
    }
}
