/* Elementwise ops: bias, relu, dropout, scale/axpy/add. One work-item per element (dropout:
 * per 64). */

/* 2-D: dimension 0 columns, 1 rows (no per-element division). */
__kernel void bias_add(__global float *x, ulong x_off, __global const float *bias, ulong bias_off, ulong rows,
                       ulong cols) {
    ulong c = get_global_id(0), r = get_global_id(1);
    if (c >= cols || r >= rows) return;
    VIEW(x)[r * cols + c] += VIEW(bias)[c];
}

/* One work-item per column; rows summed in order (no atomics). */
/* One work-group per block of 16 columns; its work-items take rows lid, lid + ls, ...
 * in float16, then work-item 0 adds the ls partial sums in order (deterministic, no
 * atomics). part holds ls float16. */
__kernel void bias_grad(__global float *dbias, ulong dbias_off, __global const float *dy, ulong dy_off, ulong rows,
                        ulong cols, __local float16 *part) {
    uint lid = (uint)get_local_id(0), ls = (uint)get_local_size(0);
    ulong c0 = get_group_id(0) * 16;
    uint w = (uint)min(cols - c0, (ulong)16);
    __global const float *g = VIEW(dy) + c0;
    float16 acc = 0.0f;
    if (w == 16) {
        for (ulong r = lid; r < rows; r += ls) acc += vload16(0, g + r * cols);
    } else {
        float t[16] = {0.0f};
        for (ulong r = lid; r < rows; r += ls)
            for (uint i = 0; i < w; ++i) t[i] += g[r * cols + i];
        acc = vload16(0, t);
    }
    part[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid != 0) return;
    float16 sum = part[0];
    for (uint i = 1; i < ls; ++i) sum += part[i];
    float t[16];
    vstore16(sum, 0, t);
    __global float *db = VIEW(dbias) + c0;
    for (uint i = 0; i < w; ++i) db[i] += t[i];
}

__kernel void relu_fwd(__global float *out, ulong out_off, __global const float *in, ulong in_off, ulong n) {
    ulong i = get_global_id(0);
    if (i >= n) return;
    float v = VIEW(in)[i];
    VIEW(out)[i] = v > 0.0f ? v : 0.0f;
}

__kernel void relu_bwd(__global float *din, ulong din_off, __global const float *dout, ulong dout_off,
                       __global const float *out, ulong out_off, ulong n) {
    ulong i = get_global_id(0);
    if (i >= n) return;
    if (VIEW(out)[i] > 0.0f) VIEW(din)[i] += VIEW(dout)[i];
}

/* Dropout: one work-item per 64 elements, i.e. Philox blocks 16*g .. 16*g+15, evaluated
 * in 16 lanes at once (PoCL does not vectorise one block per work-item; this is about 10x
 * faster). Bit-identical to dropout_words block by block. */

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

/* The host handles p == 0 (copy) and p == 1 (zero). Only the last work-item takes the
 * element-wise tail. */
__kernel void dropout_fwd(__global float *out, ulong out_off, __global const float *in, ulong in_off, ulong n,
                          ulong seed, uint site, ulong step, uint thr, float keep_scale) {
    ulong g = get_global_id(0), i0 = 64 * g;
    if (i0 >= n) return;
    float16 fa[4];
    dropout_factors64(g, seed, site, step, thr, keep_scale, fa);
    __global const float *x = VIEW(in) + i0;
    __global float *y = VIEW(out) + i0;
    if (i0 + 64 <= n) {
        for (int k = 0; k < 4; ++k) vstore16(vload16(k, x) * fa[k], k, y);
        return;
    }
    float fs[64];
    for (int k = 0; k < 4; ++k) vstore16(fa[k], k, fs);
    for (uint j = 0; j < (uint)(n - i0); ++j) y[j] = x[j] * fs[j];
}

__kernel void dropout_bwd(__global float *din, ulong din_off, __global const float *dout, ulong dout_off, ulong n,
                          ulong seed, uint site, ulong step, uint thr, float keep_scale) {
#pragma OPENCL FP_CONTRACT OFF /* a fused multiply-add would round differently from ref */
    ulong g = get_global_id(0), i0 = 64 * g;
    if (i0 >= n) return;
    float16 fa[4];
    dropout_factors64(g, seed, site, step, thr, keep_scale, fa);
    __global const float *dy = VIEW(dout) + i0;
    __global float *dx = VIEW(din) + i0;
    if (i0 + 64 <= n) {
        for (int k = 0; k < 4; ++k) vstore16(vload16(k, dx) + vload16(k, dy) * fa[k], k, dx);
        return;
    }
    float fs[64];
    for (int k = 0; k < 4; ++k) vstore16(fa[k], k, fs);
    for (uint j = 0; j < (uint)(n - i0); ++j) dx[j] += dy[j] * fs[j];
}

__kernel void scale(__global float *x, ulong x_off, float alpha, ulong n) {
    ulong i = get_global_id(0);
    if (i < n) VIEW(x)[i] *= alpha;
}

__kernel void axpy(__global float *y, ulong y_off, float alpha, __global const float *x, ulong x_off, ulong n) {
    ulong i = get_global_id(0);
    if (i < n) VIEW(y)[i] += alpha * VIEW(x)[i];
}

__kernel void add(__global float *out, ulong out_off, __global const float *a, ulong a_off, __global const float *b,
                  ulong b_off, ulong n) {
    ulong i = get_global_id(0);
    if (i < n) VIEW(out)[i] = VIEW(a)[i] + VIEW(b)[i];
}
