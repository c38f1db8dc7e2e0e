/* Elementwise ops: bias, relu, dropout, scale/axpy/add. One work-item per element. */

/* 2-D: dimension 0 columns, 1 rows (no per-element division). */
__kernel void bias_add(__global float *x, ulong x_off, __global const float *bias, ulong bias_off, ulong rows,
                       ulong cols) {
    ulong c = get_global_id(0), r = get_global_id(1);
    if (c >= cols || r >= rows) return;
    VIEW(x)[r * cols + c] += VIEW(bias)[c];
}

/* One work-item per column; rows summed in order (no atomics). */
__kernel void bias_grad(__global float *dbias, ulong dbias_off, __global const float *dy, ulong dy_off, ulong rows,
                        ulong cols) {
    ulong c = get_global_id(0);
    if (c >= cols) return;
    __global const float *g = VIEW(dy) + c;
    float acc = 0.0f;
    for (ulong r = 0; r < rows; ++r) acc += g[r * cols];
    VIEW(dbias)[c] += acc;
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

/* Dropout factors (0 or keep_scale) of elements 32*g .. 32*g+31: Philox blocks 8*g .. 8*g+7
 * in one 8-lane evaluation (bit-identical to dropout_words block by block; PoCL does not
 * vectorise the one-block loop), block m's four words as factors 4m .. 4m+3 of lo (m < 4)
 * or hi (m >= 4). */
inline void dropout_factors32(ulong g, ulong seed, uint site, ulong step, uint thr, float keep_scale, float16 *lo,
                              float16 *hi) {
    uint8 c0 = (uint8)((uint)(8 * g)) + (uint8)(0, 1, 2, 3, 4, 5, 6, 7), c1 = (uint8)(site), c2 = (uint8)((uint)step),
          c3 = (uint8)((uint)(step >> 32));
    uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
    for (int round = 0; round < 10; ++round) {
        ulong8 p0 = convert_ulong8(c0) * (ulong)PHILOX_M0, p1 = convert_ulong8(c2) * (ulong)PHILOX_M1;
        c0 = convert_uint8(p1 >> 32) ^ c1 ^ (uint8)(k0);
        c1 = convert_uint8(p1);
        c2 = convert_uint8(p0 >> 32) ^ c3 ^ (uint8)(k1);
        c3 = convert_uint8(p0);
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    float8 f0 = select((float8)0.0f, (float8)(keep_scale), c0 >= (uint8)(thr));
    float8 f1 = select((float8)0.0f, (float8)(keep_scale), c1 >= (uint8)(thr));
    float8 f2 = select((float8)0.0f, (float8)(keep_scale), c2 >= (uint8)(thr));
    float8 f3 = select((float8)0.0f, (float8)(keep_scale), c3 >= (uint8)(thr));
    *lo = (float16)(f0.s0, f1.s0, f2.s0, f3.s0, f0.s1, f1.s1, f2.s1, f3.s1, f0.s2, f1.s2, f2.s2, f3.s2, f0.s3, f1.s3,
                    f2.s3, f3.s3);
    *hi = (float16)(f0.s4, f1.s4, f2.s4, f3.s4, f0.s5, f1.s5, f2.s5, f3.s5, f0.s6, f1.s6, f2.s6, f3.s6, f0.s7, f1.s7,
                    f2.s7, f3.s7);
}

/* One work-item per 32 elements (dropout_factors32). The host handles p == 0 (copy) and
 * p == 1 (zero). */
__kernel void dropout_fwd(__global float *out, ulong out_off, __global const float *in, ulong in_off, ulong n,
                          ulong seed, uint site, ulong step, uint thr, float keep_scale) {
    ulong g = get_global_id(0), i0 = 32 * g;
    if (i0 >= n) return;
    float16 lo, hi;
    dropout_factors32(g, seed, site, step, thr, keep_scale, &lo, &hi);
    __global const float *x = VIEW(in) + i0;
    __global float *y = VIEW(out) + i0;
    if (i0 + 32 <= n) {
        vstore16(vload16(0, x) * lo, 0, y);
        vstore16(vload16(1, x) * hi, 1, y);
        return;
    }
    float fs[32];
    vstore16(lo, 0, fs);
    vstore16(hi, 1, fs);
    for (uint j = 0; j < (uint)(n - i0); ++j) y[j] = x[j] * fs[j];
}

__kernel void dropout_bwd(__global float *din, ulong din_off, __global const float *dout, ulong dout_off, ulong n,
                          ulong seed, uint site, ulong step, uint thr, float keep_scale) {
#pragma OPENCL FP_CONTRACT OFF /* a fused multiply-add would round differently from ref */
    ulong g = get_global_id(0), i0 = 32 * g;
    if (i0 >= n) return;
    float16 lo, hi;
    dropout_factors32(g, seed, site, step, thr, keep_scale, &lo, &hi);
    __global const float *dy = VIEW(dout) + i0;
    __global float *dx = VIEW(din) + i0;
    if (i0 + 32 <= n) {
        float16 g0 = vload16(0, dy) * lo, g1 = vload16(1, dy) * hi;
        vstore16(vload16(0, dx) + g0, 0, dx);
        vstore16(vload16(1, dx) + g1, 1, dx);
        return;
    }
    float fs[32];
    vstore16(lo, 0, fs);
    vstore16(hi, 1, fs);
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
