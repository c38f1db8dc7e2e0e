/* Prepended to every decocl program: helpers and Philox, bit-identical to host/core/rng.c.
 * Convention: a tensor argument is a pair (__global float *name, ulong name_off), the
 * offset in floats; VIEW(name) rebases the pointer. */
#define VIEW(p) ((p) + p##_off)

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

inline uint4 philox4x32_10(uint4 c, uint2 k) {
    for (int round = 0; round < 10; ++round) {
        /* one 64-bit product gives both halves (vectorises better than mul_hi on CPUs) */
        ulong p0 = (ulong)PHILOX_M0 * c.x, p1 = (ulong)PHILOX_M1 * c.z;
        c = (uint4)((uint)(p1 >> 32) ^ c.y ^ k.x, (uint)p1, (uint)(p0 >> 32) ^ c.w ^ k.y, (uint)p0);
        k += (uint2)(PHILOX_W0, PHILOX_W1);
    }
    return c;
}

/* The dropout words of elements 4*q .. 4*q+3 (see dc_dropout in include/decocl/ops.h). */
inline uint4 dropout_words(ulong seed, uint site, ulong step, ulong q) {
    return philox4x32_10((uint4)((uint)q, site, (uint)step, (uint)(step >> 32)), (uint2)((uint)seed, (uint)(seed >> 32)));
}

/* The heterogeneity-loss kernels (hete_*.cl) compute in hreal: double where the device
 * has cl_khr_fp64, so they follow the double oracle (ref_align.c) to rounding, else
 * float. Their tapes hold hreal. HR(1e-8) spells a literal of that type. */
#if defined(cl_khr_fp64) && !defined(DC_HETE_FP32)
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double hreal;
#define HETE_FP64 1
#define HR(c) c
#else
typedef float hreal;
#define HETE_FP64 0
#define HR(c) c##f
#endif

/* Sum of v over the work-group (local size a power of two); every work-item gets it. */
inline hreal hete_group_sum(hreal v, __local hreal *scratch) {
    uint lid = get_local_id(0), n = get_local_size(0);
    barrier(CLK_LOCAL_MEM_FENCE);
    scratch[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = n / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return scratch[0];
}
