/* Tape sizes of the heterogeneity-loss ops, shared by every backend so that
 * dc_*_tape_len is one function: each op's private region is counted in 8-byte units
 * (ref keeps doubles there, OpenCL doubles where the device has cl_khr_fp64, else
 * floats), plus one float of slack so a backend can align the region to 8 bytes. */
#ifndef DC_HETE_LAYOUT_H
#define DC_HETE_LAYOUT_H

#include <stddef.h>

#include "backend/ref/ref_align.h"

/* 8-byte units of GMM tape per modality: the oracle's work plus what either backend
 * keeps next to it (ref: double copies of x, outputs and upstream gradients; OpenCL:
 * the per-round adjoint scratch, dx, log-determinants, init rows, the mean of x). */
static inline size_t dc_hete_gmm_units(size_t B, size_t d, size_t K, size_t R) {
    return dc_ref_gmm_work_len(B, K, d, R) + 2 * B * d + 2 * B * K + 4 * K * d + 3 * K + d + 8;
}

/* 8-byte units of Sinkhorn tape: ref: double mu, var, nu and their gradients, pair
 * costs, joint cost and the oracle's work; OpenCL: pair costs, C, E, G, P, dP, dG, dC,
 * the u, v, w tape and their adjoints. */
static inline size_t dc_hete_sinkhorn_units(size_t d, size_t K, size_t T) {
    return 12 * K * d + 6 * K * K + 7 * K * K * K + 6 * T * K + 14 * K + 8;
}

/* Offset (in floats) of the first 8-byte-aligned float at or after off, for a buffer
 * whose base is 8-byte aligned. */
static inline size_t dc_hete_align8(size_t off) { return off + (off & 1); }

#endif
