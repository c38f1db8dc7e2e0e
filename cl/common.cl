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
