/* GEMM, row-major, with CLBlastSgemm's semantics (include/decocl/ops.h):
 *   C[b] = alpha * op(A[b]) op(B[b]) + beta * C[b]  for b < batch,
 * every operand of entry b starting at its view offset + b * stride. beta == 0 never
 * reads C. Offsets are in floats and need not be aligned: only vloadN/vstoreN
 * (scalar alignment) touch memory, never a cast to a vector pointer.
 *
 * Register blocking without local memory: PoCL emulates local memory in RAM and
 * pays for barriers, and explicit vectors are what its compiler turns into AVX code.
 * Every tile loop is unrolled by macros (REPn): private arrays and loops over tile
 * rows stay in registers only when fully unrolled, and PoCL does not unroll them.
 *
 * NDRange: dimension 0 = column tiles, 1 = row tiles, 2 = batch entries. Work-items
 * stride over dimensions 1 and 2 (FOR_EACH_TILE), so the host may launch fewer of
 * them than there are row tiles or entries; padding work-items (the global size is
 * rounded up to the local size) fall out of the loops or return.
 *
 * gemm_nn, gemm_tn, gemm_tt: rank-1 updates. Per k step the "left" operand gives TM
 * scalars (one per tile row) and the "right" operand one VW-wide vector (a row of a
 * k x N row-major matrix); TM vector accumulators.
 *   nn: left = rows of A,               right = B (n wide), C stored directly
 *   tn: left = columns of A (k x m),    right = B,          C stored directly
 *   tt: left = rows of B (n), right = A (k x m, m wide): the tile is C transposed
 * Tile (x, y) covers left rows y*TM .. +TM and right columns x*VW .. +VW.
 * The host passes vw = 16, 8 or 4 (TM 6, 8, 8), or 0 for operands narrower than 4
 * (TM 4, lanes gathered); these must match host/backend/cl/cl_gemm.c.
 *
 * gemm_nt: both operands run along k. Three strategies, picked by the host (mode):
 *   mode 0 (short k): a 6 x 8 tile of rank-1 updates; each 8 x 8 block of B
 *     (8 rows j, 8 steps of k) is transposed in registers into 8 vectors along j.
 *   mode 1 (long k): a 4 x 4 tile of dot products, float8 accumulators along k,
 *     reduced four at a time at the end; the cost of the reduction fades as k grows.
 *   mode 2 (CPUs, enough rows): a work-item owns 16 columns, transposes panels of B
 *     into a private array and walks its row tiles as gemm_nn does (see nt_panel).
 *
 * Edge tiles keep the full-vector inner loop: rows past the end re-read the last row
 * (clamped) and are not stored, and the last column tile is shifted left to end at
 * the last column (lanes already stored by the previous tile are skipped). */

#define CAT_(x, y) x##y
#define CAT(x, y) CAT_(x, y)
/* REPn(X, a) expands X(0, a) .. X(n-1, a); REPBn(X, a) expands X(a, 0) .. X(a, n-1)
 * (a second family, so that one may be used inside the other). */
#define REP1(X, a) X(0, a)
#define REP2(X, a) REP1(X, a) X(1, a)
#define REP3(X, a) REP2(X, a) X(2, a)
#define REP4(X, a) REP3(X, a) X(3, a)
#define REP5(X, a) REP4(X, a) X(4, a)
#define REP6(X, a) REP5(X, a) X(5, a)
#define REP7(X, a) REP6(X, a) X(6, a)
#define REP8(X, a) REP7(X, a) X(7, a)
#define REPB1(X, a) X(a, 0)
#define REPB2(X, a) REPB1(X, a) X(a, 1)
#define REPB3(X, a) REPB2(X, a) X(a, 2)
#define REPB4(X, a) REPB3(X, a) X(a, 3)
#define REPB5(X, a) REPB4(X, a) X(a, 4)
#define REPB6(X, a) REPB5(X, a) X(a, 5)

#define GEMM_PARAMS                                                                                              \
    __global const float *a, ulong a_off, __global const float *b, ulong b_off, __global float *c, ulong c_off, \
        uint m, uint n, uint k, uint lda, uint ldb, uint ldc, ulong stride_a, ulong stride_b, ulong stride_c,   \
        uint batch, float alpha, float beta
#define GEMM_ARGS a, a_off, b, b_off, c, c_off, m, n, k, lda, ldb, ldc, stride_a, stride_b, stride_c, batch, alpha, beta

/* Work-items stride over batch entries (dimension 2) and row tiles (dimension 1), so
 * the host may launch fewer of them than there are tiles: on a CPU a work-item has a
 * fixed cost that many small tiles would pay again and again. */
#define FOR_EACH_TILE(tiles_y)                                                                  \
    for (ulong bi = get_global_id(2); bi < batch; bi += get_global_size(2))                     \
        for (uint ty = get_global_id(1); ty < (tiles_y); ty += (uint)get_global_size(1))
#define GEMM_BATCH_POINTERS                                            \
    __global const float *A = VIEW(a) + bi * stride_a;                 \
    __global const float *B = VIEW(b) + bi * stride_b;                 \
    __global float *C = VIEW(c) + bi * stride_c;

/* Stores alpha * v (+ beta * old when beta != 0) to lanes l0 <= l < lend at cr + l * ccs. */
#define DEF_STORE_ROW(VW)                                                                                       \
    void store_row##VW(float##VW v, __global float *cr, uint ccs, uint l0, uint lend, float alpha, float beta) { \
        v = alpha * v;                                                                                          \
        if (ccs == 1 && l0 == 0 && lend == VW) {                                                                \
            if (beta != 0.0f) v = fma((float##VW)(beta), vload##VW(0, cr), v);                                 \
            vstore##VW(v, 0, cr);                                                                               \
            return;                                                                                             \
        }                                                                                                       \
        float t[VW];                                                                                            \
        vstore##VW(v, 0, t);                                                                                    \
        for (uint l = l0; l < lend; ++l) {                                                                      \
            __global float *e = cr + (ulong)l * ccs;                                                           \
            *e = beta != 0.0f ? fma(beta, *e, t[l]) : t[l];                                                     \
        }                                                                                                       \
    }
DEF_STORE_ROW(16)
DEF_STORE_ROW(8)
DEF_STORE_ROW(4)

/* ---- rank-1 kernels: nn, tn, tt ---- */

#define R1_INIT(r, VW)                                    \
    ulong lo##r = (ulong)min(r0 + r, rows - 1) * lrs;     \
    float##VW acc##r = (float##VW)(0.0f);
#define R1_FMA(r, VW) acc##r = fma((float##VW)(lp[lo##r]), bv, acc##r);
#define R1_STORE(r, VW) \
    if (r0 + r < rows) store_row##VW(acc##r, C + (ulong)(r0 + r) * crs + (ulong)cb * ccs, ccs, l0, lend, alpha, beta);
/* the right operand at step p: a vector load, or lanes gathered (clamped to the last
 * column) when the operand is narrower than the vector */
#define R1_VLOAD(VW) vload##VW(0, rp)
#define R1_GATHER(VW) (float4)(rp[g0], rp[g1], rp[g2], rp[g3])

/* left element (r, p) at L[r * lrs + p * lps]; right row p at R + p * ldr; tile
 * element (r, l) to C[r * crs + l * ccs] */
#define DEF_R1(NAME, VW, TM, LOADB)                                                                             \
    void NAME(__global const float *L, uint lrs, uint lps, uint rows, __global const float *R, uint ldr, uint cols, \
              __global float *C, uint crs, uint ccs, uint k, float alpha, float beta, uint r0) {                   \
        uint c0 = get_global_id(0) * VW;                                                                          \
        uint cb = cols >= VW ? min(c0, cols - VW) : c0; /* window start, shifted left at the edge */             \
        uint g0 = 0, g1 = min(1u, cols - 1), g2 = min(2u, cols - 1), g3 = min(3u, cols - 1);                     \
        REP##TM(R1_INIT, VW)                                                                                      \
        __global const float *lp = L, *rp = R + cb;                                                               \
        for (uint p = 0; p < k; ++p, lp += lps, rp += ldr) {                                                      \
            float##VW bv = LOADB(VW);                                                                             \
            REP##TM(R1_FMA, VW)                                                                                   \
        }                                                                                                         \
        uint l0 = c0 - cb, lend = min((uint)VW, cols - cb);                                                       \
        REP##TM(R1_STORE, VW)                                                                                     \
    }

DEF_R1(r1_v16, 16, 6, R1_VLOAD)
DEF_R1(r1_v8, 8, 8, R1_VLOAD)
DEF_R1(r1_v4, 4, 8, R1_VLOAD)
DEF_R1(r1_g4, 4, 4, R1_GATHER)

/* The dispatch on vw stays outside the tile loops. */
#define R1_LOOP(FN, TM, L, lrs, lps, rows, R, ldr, cols, C, crs, ccs)                                           \
    FOR_EACH_TILE((rows + TM - 1) / TM) {                                                                        \
        GEMM_BATCH_POINTERS                                                                                      \
        FN(L, lrs, lps, rows, R, ldr, cols, C, crs, ccs, k, alpha, beta, ty * TM);                                \
    }
#define R1_KERNEL(NAME, L, lrs, lps, rows, R, ldr, cols, C, crs, ccs)                                            \
    __kernel void NAME(GEMM_PARAMS, uint vw) {                                                                   \
        if (get_global_id(0) * (vw ? vw : 4) >= (cols)) return;                                                  \
        if (vw == 16) R1_LOOP(r1_v16, 6, L, lrs, lps, rows, R, ldr, cols, C, crs, ccs)                           \
        else if (vw == 8) R1_LOOP(r1_v8, 8, L, lrs, lps, rows, R, ldr, cols, C, crs, ccs)                        \
        else if (vw == 4) R1_LOOP(r1_v4, 8, L, lrs, lps, rows, R, ldr, cols, C, crs, ccs)                        \
        else R1_LOOP(r1_g4, 4, L, lrs, lps, rows, R, ldr, cols, C, crs, ccs)                                     \
    }

R1_KERNEL(gemm_nn, A, lda, 1, m, B, ldb, n, C, ldc, 1)
R1_KERNEL(gemm_tn, A, 1, lda, m, B, ldb, n, C, ldc, 1)
/* C = A^T B^T = (B A)^T: tile rows run over rows of B (columns j of C), the vector over
 * A's row p (rows i of C); stored transposed. */
R1_KERNEL(gemm_tt, B, ldb, 1, n, A, lda, m, C, 1, ldc)

/* ---- gemm_nt, mode 0: rank-1 updates on B transposed in registers ---- */

#define NTR_TM 6
/* 8 x 8 transpose: rows r0..r7 in, columns c0..c7 out (3 stages of 8 shuffles). */
#define TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7, c0, c1, c2, c3, c4, c5, c6, c7)    \
    {                                                                                 \
        float8 t0 = (float8)(r0.s0, r1.s0, r0.s1, r1.s1, r0.s4, r1.s4, r0.s5, r1.s5); \
        float8 t1 = (float8)(r0.s2, r1.s2, r0.s3, r1.s3, r0.s6, r1.s6, r0.s7, r1.s7); \
        float8 t2 = (float8)(r2.s0, r3.s0, r2.s1, r3.s1, r2.s4, r3.s4, r2.s5, r3.s5); \
        float8 t3 = (float8)(r2.s2, r3.s2, r2.s3, r3.s3, r2.s6, r3.s6, r2.s7, r3.s7); \
        float8 t4 = (float8)(r4.s0, r5.s0, r4.s1, r5.s1, r4.s4, r5.s4, r4.s5, r5.s5); \
        float8 t5 = (float8)(r4.s2, r5.s2, r4.s3, r5.s3, r4.s6, r5.s6, r4.s7, r5.s7); \
        float8 t6 = (float8)(r6.s0, r7.s0, r6.s1, r7.s1, r6.s4, r7.s4, r6.s5, r7.s5); \
        float8 t7 = (float8)(r6.s2, r7.s2, r6.s3, r7.s3, r6.s6, r7.s6, r6.s7, r7.s7); \
        float8 u0 = (float8)(t0.s01, t2.s01, t0.s45, t2.s45);                         \
        float8 u1 = (float8)(t0.s23, t2.s23, t0.s67, t2.s67);                         \
        float8 u2 = (float8)(t1.s01, t3.s01, t1.s45, t3.s45);                         \
        float8 u3 = (float8)(t1.s23, t3.s23, t1.s67, t3.s67);                         \
        float8 u4 = (float8)(t4.s01, t6.s01, t4.s45, t6.s45);                         \
        float8 u5 = (float8)(t4.s23, t6.s23, t4.s67, t6.s67);                         \
        float8 u6 = (float8)(t5.s01, t7.s01, t5.s45, t7.s45);                         \
        float8 u7 = (float8)(t5.s23, t7.s23, t5.s67, t7.s67);                         \
        c0 = (float8)(u0.lo, u4.lo);                                                  \
        c1 = (float8)(u1.lo, u5.lo);                                                  \
        c2 = (float8)(u2.lo, u6.lo);                                                  \
        c3 = (float8)(u3.lo, u7.lo);                                                  \
        c4 = (float8)(u0.hi, u4.hi);                                                  \
        c5 = (float8)(u1.hi, u5.hi);                                                  \
        c6 = (float8)(u2.hi, u6.hi);                                                  \
        c7 = (float8)(u3.hi, u7.hi);                                                  \
    }
#define NTR_INIT(r, _)                                                         \
    __global const float *a##r = A + (ulong)min(i0 + r, m - 1) * lda;         \
    float8 acc##r = (float8)(0.0f);
#define NTR_BPTR(q, _) __global const float *b##q = B + (ulong)min(jb + q, n - 1) * ldb;
#define NTR_BLOAD(q, _) float8 br##q = vload8(0, b##q + p);
#define NTR_FMA(q, r) acc##r = fma((float8)(a##r[p + q]), c##q, acc##r);
#define NTR_STEP(q, _) CAT(REPB, NTR_TM)(NTR_FMA, q)
#define NTR_TAIL(r, _) acc##r = fma((float8)(a##r[p]), bt, acc##r);
#define NTR_STORE(r, _) \
    if (i0 + r < m) store_row8(acc##r, C + (ulong)(i0 + r) * ldc + jb, 1, l0, lend, alpha, beta);

void nt_transposed(GEMM_PARAMS, ulong bi, uint i0) {
    uint j0 = get_global_id(0) * 8;
    GEMM_BATCH_POINTERS
    uint jb = n >= 8 ? min(j0, n - 8) : j0; /* window start, shifted left at the edge */
    CAT(REP, NTR_TM)(NTR_INIT, _)
    REP8(NTR_BPTR, _)
    uint p = 0;
    for (; p + 8 <= k; p += 8) {
        REP8(NTR_BLOAD, _)
        float8 c0, c1, c2, c3, c4, c5, c6, c7;
        TRANSPOSE8(br0, br1, br2, br3, br4, br5, br6, br7, c0, c1, c2, c3, c4, c5, c6, c7)
        REP8(NTR_STEP, _)
    }
    for (; p < k; ++p) {
        float8 bt = (float8)(b0[p], b1[p], b2[p], b3[p], b4[p], b5[p], b6[p], b7[p]);
        CAT(REP, NTR_TM)(NTR_TAIL, _)
    }
    uint l0 = j0 - jb, lend = min(8u, n - jb);
    CAT(REP, NTR_TM)(NTR_STORE, _)
}

/* ---- gemm_nt, mode 1: dot products along k ---- */

#define NTD_TM 4 /* NTD_TN is 4: one row of the tile reduces into a float4 */
/* (sum x0, sum x1, sum x2, sum x3) */
float4 hsum4x8(float8 x0, float8 x1, float8 x2, float8 x3) {
    float8 y01 = (float8)(x0.lo, x1.lo) + (float8)(x0.hi, x1.hi);
    float8 y23 = (float8)(x2.lo, x3.lo) + (float8)(x2.hi, x3.hi);
    float8 z = (float8)(y01.s02, y23.s02, y01.s46, y23.s46) + (float8)(y01.s13, y23.s13, y01.s57, y23.s57);
    return (float4)(z.s0, z.s4, z.s2, z.s6) + (float4)(z.s1, z.s5, z.s3, z.s7);
}
#define NTD_PTR_A(r, _) __global const float *a##r = A + (ulong)min(i0 + r, m - 1) * lda;
#define NTD_PTR_B(q, _) __global const float *b##q = B + (ulong)min(j0 + q, n - 1) * ldb;
#define NTD_ZERO1(r, q) float8 acc##r##q = (float8)(0.0f);
#define NTD_ZERO(r, _) REPB4(NTD_ZERO1, r)
#define NTD_LOAD_A(r, _) float8 av##r = vload8(0, a##r + p);
#define NTD_LOAD_B(q, _) float8 bv##q = vload8(0, b##q + p);
#define NTD_FMA1(r, q) acc##r##q = fma(av##r, bv##q, acc##r##q);
#define NTD_FMA(r, _) REPB4(NTD_FMA1, r)
#define NTD_SUM(r, _) float4 s##r = hsum4x8(acc##r##0, acc##r##1, acc##r##2, acc##r##3);
#define NTD_TAIL(r, _) s##r = fma((float4)(a##r[p]), (float4)(b0[p], b1[p], b2[p], b3[p]), s##r);
#define NTD_STORE(r, _) \
    if (i0 + r < m) store_row4(s##r, C + (ulong)(i0 + r) * ldc + j0, 1, 0, min(4u, n - j0), alpha, beta);

void nt_dot(GEMM_PARAMS, ulong bi, uint i0) {
    uint j0 = get_global_id(0) * 4;
    GEMM_BATCH_POINTERS
    CAT(REP, NTD_TM)(NTD_PTR_A, _)
    REP4(NTD_PTR_B, _)
    CAT(REP, NTD_TM)(NTD_ZERO, _)
    uint p = 0;
    for (; p + 8 <= k; p += 8) {
        CAT(REP, NTD_TM)(NTD_LOAD_A, _)
        REP4(NTD_LOAD_B, _)
        CAT(REP, NTD_TM)(NTD_FMA, _)
    }
    CAT(REP, NTD_TM)(NTD_SUM, _)
    for (; p < k; ++p) {
        CAT(REP, NTD_TM)(NTD_TAIL, _)
    }
    CAT(REP, NTD_TM)(NTD_STORE, _)
}

/* ---- gemm_nt, mode 2 (CPUs): panels of B transposed into private memory ---- */

/* A work-item owns 16 columns of C. For each panel of up to NTP_KC steps of k it
 * transposes that 16 x kc block of B into its slice of the __local buffer `panel`
 * (NTP_KC float16 per work-item; on a CPU that is ordinary, L1-resident memory), then
 * walks its row tiles exactly like gemm_nn reading B. Partial sums go through C: the
 * first panel applies beta, later ones add. The buffer is a kernel argument so that
 * the other modes (GPUs) pay nothing for it; a private array of this size would be
 * reserved for every work-item of every launch. */
#define NTP_KC 64
#define NTP_BPTR(q, _)                                                              \
    __global const float *b##q = B + (ulong)min(jb + q, n - 1) * ldb + p0;            \
    __global const float *b##q##_8 = B + (ulong)min(jb + 8 + q, n - 1) * ldb + p0;
#define NTP_BLOAD(q, _) float8 br##q = vload8(0, b##q + p), bs##q = vload8(0, b##q##_8 + p);
#define NTP_PANEL(q, _) bt[p + q] = (float16)(c##q, d##q);
#define NTP_INIT(r, _)                                                         \
    __global const float *a##r = A + (ulong)min(i0 + r, m - 1) * lda + p0;     \
    float16 acc##r = (float16)(0.0f);
#define NTP_FMA(r, _) acc##r = fma((float16)(a##r[p]), bv, acc##r);
#define NTP_STORE(r, _) \
    if (i0 + r < m) store_row16(acc##r, C + (ulong)(i0 + r) * ldc + jb, 1, l0, lend, alpha, beta_p);

void nt_panel(GEMM_PARAMS, ulong bi, __local float16 *bt) {
    uint j0 = get_global_id(0) * 16;
    GEMM_BATCH_POINTERS
    uint jb = n >= 16 ? min(j0, n - 16) : j0;
    uint l0 = j0 - jb, lend = min(16u, n - jb), tiles = (m + NTR_TM - 1) / NTR_TM;
    for (uint p0 = 0; p0 == 0 || p0 < k; p0 += NTP_KC) {
        uint kc = min((uint)NTP_KC, k - p0), p = 0;
        REP8(NTP_BPTR, _)
        for (; p + 8 <= kc; p += 8) {
            float8 c0, c1, c2, c3, c4, c5, c6, c7, d0, d1, d2, d3, d4, d5, d6, d7;
            REP8(NTP_BLOAD, _)
            TRANSPOSE8(br0, br1, br2, br3, br4, br5, br6, br7, c0, c1, c2, c3, c4, c5, c6, c7)
            TRANSPOSE8(bs0, bs1, bs2, bs3, bs4, bs5, bs6, bs7, d0, d1, d2, d3, d4, d5, d6, d7)
            REP8(NTP_PANEL, _)
        }
        for (; p < kc; ++p)
            bt[p] = (float16)(b0[p], b1[p], b2[p], b3[p], b4[p], b5[p], b6[p], b7[p], b0_8[p], b1_8[p], b2_8[p],
                              b3_8[p], b4_8[p], b5_8[p], b6_8[p], b7_8[p]);
        float beta_p = p0 == 0 ? beta : 1.0f;
        for (uint ty = get_global_id(1); ty < tiles; ty += (uint)get_global_size(1)) {
            uint i0 = ty * NTR_TM;
            CAT(REP, NTR_TM)(NTP_INIT, _)
            for (p = 0; p < kc; ++p) {
                float16 bv = bt[p];
                CAT(REP, NTR_TM)(NTP_FMA, _)
            }
            CAT(REP, NTR_TM)(NTP_STORE, _)
        }
    }
}

__kernel void gemm_nt(GEMM_PARAMS, uint mode, __local float16 *panel) {
    if (get_global_id(0) * (mode == 1 ? 4 : mode == 2 ? 16 : 8) >= n) return;
    if (mode == 0) {
        FOR_EACH_TILE((m + NTR_TM - 1) / NTR_TM) nt_transposed(GEMM_ARGS, bi, ty * NTR_TM);
    } else if (mode == 1) {
        FOR_EACH_TILE((m + NTD_TM - 1) / NTD_TM) nt_dot(GEMM_ARGS, bi, ty * NTD_TM);
    } else {
        size_t slot = (get_local_id(2) * get_local_size(1) + get_local_id(1)) * get_local_size(0) + get_local_id(0);
        __local float16 *bt = panel + slot * NTP_KC;
        for (ulong bi = get_global_id(2); bi < batch; bi += get_global_size(2)) nt_panel(GEMM_ARGS, bi, bt);
    }
}
