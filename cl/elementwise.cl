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

/* One work-item per 4 elements: one Philox call gives all four words. The host
 * handles p == 0 (copy) and p == 1 (zero). */
__kernel void dropout_fwd(__global float *out, ulong out_off, __global const float *in, ulong in_off, ulong n,
                          ulong seed, uint site, ulong step, uint thr, float keep_scale) {
    ulong q = get_global_id(0), i0 = 4 * q;
    if (i0 >= n) return;
    float4 f = select((float4)(0.0f), (float4)(keep_scale), dropout_words(seed, site, step, q) >= (uint4)(thr));
    if (i0 + 4 <= n) {
        vstore4(vload4(0, VIEW(in) + i0) * f, 0, VIEW(out) + i0);
        return;
    }
    float fs[4] = {f.x, f.y, f.z, f.w};
    for (ulong j = 0; i0 + j < n; ++j) VIEW(out)[i0 + j] = VIEW(in)[i0 + j] * fs[j];
}

__kernel void dropout_bwd(__global float *din, ulong din_off, __global const float *dout, ulong dout_off, ulong n,
                          ulong seed, uint site, ulong step, uint thr, float keep_scale) {
#pragma OPENCL FP_CONTRACT OFF /* a fused multiply-add would round differently from ref */
    ulong q = get_global_id(0), i0 = 4 * q;
    if (i0 >= n) return;
    float4 f = select((float4)(0.0f), (float4)(keep_scale), dropout_words(seed, site, step, q) >= (uint4)(thr));
    if (i0 + 4 <= n) {
        float4 g = vload4(0, VIEW(dout) + i0) * f;
        vstore4(vload4(0, VIEW(din) + i0) + g, 0, VIEW(din) + i0);
        return;
    }
    float fs[4] = {f.x, f.y, f.z, f.w};
    for (ulong j = 0; i0 + j < n; ++j) VIEW(din)[i0 + j] += VIEW(dout)[i0 + j] * fs[j];
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
