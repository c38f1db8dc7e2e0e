/* Counter-based random numbers shared bit for bit with cl/common.cl. */
#ifndef DC_RNG_H
#define DC_RNG_H

#include <stdint.h>

/* Philox4x32-10 (Salmon et al., SC'11): out = philox(ctr, key). */
void dc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Dropout keep threshold: an element is kept when its word >= the threshold. */
uint32_t dc_dropout_threshold(float p);
/* The factor applied to kept elements, 1/(1-p), rounded once to float. */
float dc_dropout_scale(float p);
/* Word for element i of a dropout call (see dc_dropout in ops.h). */
uint32_t dc_dropout_word(uint64_t seed, uint32_t site, uint64_t step, uint64_t i);
/* The words of elements 4q .. 4q+3 from one Philox call. */
void dc_dropout_words(uint64_t seed, uint32_t site, uint64_t step, uint64_t q, uint32_t w[4]);

#endif
