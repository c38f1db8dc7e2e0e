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
 * faster). Bit-identical to dropout_words block by block.
 * philox_mul16 and dropout_factors64 live in common.cl (attention.cl uses them too). */

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
