/* MT19937 (Matsumoto & Nishimura 1998), 32-bit. Drives the per-epoch shuffle. */
#ifndef DC_MT19937_H
#define DC_MT19937_H

#include <stddef.h>
#include <stdint.h>

struct dc_mt19937 {
    uint32_t mt[624];
    size_t idx;
};

void dc_mt19937_seed(struct dc_mt19937 *g, uint32_t seed);                       /* init_genrand */
void dc_mt19937_seed_array(struct dc_mt19937 *g, const uint32_t *key, size_t n); /* init_by_array */
uint32_t dc_mt19937_u32(struct dc_mt19937 *g);
/* Uniform integer in [0, n), n >= 1, without modulo bias (rejection sampling). */
uint64_t dc_mt19937_below(struct dc_mt19937 *g, uint64_t n);

#endif
