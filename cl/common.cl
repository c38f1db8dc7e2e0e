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

/* High and low words of c * m in each 32-bit lane: even and odd lanes as 64-bit products,
 * recombined with shifts and masks (no widening shuffles). */
inline void philox_mul16(uint16 c, ulong m, uint16 *hi, uint16 *lo) {
    ulong8 w = as_ulong8(c), ev = (w & 0xFFFFFFFFul) * m, od = (w >> 32) * m;
    *lo = as_uint16((ev & 0xFFFFFFFFul) | (od << 32));
    *hi = as_uint16((ev >> 32) | (od & 0xFFFFFFFF00000000ul));
}

/* fa[k] lane l = factor (0 or keep_scale) of element 64*g + 16*k + l, which is word l & 3
 * of block 16*g + 4*k + (l >> 2). */
inline void dropout_factors64(ulong g, ulong seed, uint site, ulong step, uint thr, float keep_scale, float16 *fa) {
    uint16 c0 = (uint16)((uint)(16 * g)) + (uint16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    uint16 c1 = (uint16)(site), c2 = (uint16)((uint)step), c3 = (uint16)((uint)(step >> 32));
    uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
    for (int round = 0; round < 10; ++round) {
        uint16 h0, l0, h1, l1;
        philox_mul16(c0, PHILOX_M0, &h0, &l0);
        philox_mul16(c2, PHILOX_M1, &h1, &l1);
        c0 = h1 ^ c1 ^ (uint16)(k0);
        c1 = l1;
        c2 = h0 ^ c3 ^ (uint16)(k1);
        c3 = l0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    float16 f0 = select((float16)0.0f, (float16)(keep_scale), c0 >= (uint16)(thr));
    float16 f1 = select((float16)0.0f, (float16)(keep_scale), c1 >= (uint16)(thr));
    float16 f2 = select((float16)0.0f, (float16)(keep_scale), c2 >= (uint16)(thr));
    float16 f3 = select((float16)0.0f, (float16)(keep_scale), c3 >= (uint16)(thr));
    /* 4 x 16 transpose. clang's two rounds of lane zips become 8 two-source permutes;
     * PoCL builds the element-by-element form from scalars (a third of the kernel's time). */
#if defined(__clang__)
    float16 a = __builtin_shufflevector(f0, f1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    float16 b = __builtin_shufflevector(f0, f1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    float16 c = __builtin_shufflevector(f2, f3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    float16 d = __builtin_shufflevector(f2, f3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    fa[0] = __builtin_shufflevector(a, c, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    fa[1] = __builtin_shufflevector(a, c, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    fa[2] = __builtin_shufflevector(b, d, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    fa[3] = __builtin_shufflevector(b, d, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
#else
    fa[0] = (float16)(f0.s0, f1.s0, f2.s0, f3.s0, f0.s1, f1.s1, f2.s1, f3.s1, f0.s2, f1.s2, f2.s2, f3.s2, f0.s3, f1.s3,
                      f2.s3, f3.s3);
    fa[1] = (float16)(f0.s4, f1.s4, f2.s4, f3.s4, f0.s5, f1.s5, f2.s5, f3.s5, f0.s6, f1.s6, f2.s6, f3.s6, f0.s7, f1.s7,
                      f2.s7, f3.s7);
    fa[2] = (float16)(f0.s8, f1.s8, f2.s8, f3.s8, f0.s9, f1.s9, f2.s9, f3.s9, f0.sa, f1.sa, f2.sa, f3.sa, f0.sb, f1.sb,
                      f2.sb, f3.sb);
    fa[3] = (float16)(f0.sc, f1.sc, f2.sc, f3.sc, f0.sd, f1.sd, f2.sd, f3.sd, f0.se, f1.se, f2.se, f3.se, f0.sf, f1.sf,
                      f2.sf, f3.sf);
#endif
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
