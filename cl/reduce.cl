/* Whole-buffer reductions in one work-group (no float atomics, no temporary
 * buffer): each work-item sums a strided slice, then a tree in local memory.
 * The local size must be a power of two. */

inline float group_sum(float v, __local float *scratch) {
    uint lid = get_local_id(0), n = get_local_size(0);
    scratch[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = n / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return scratch[0];
}

__kernel void sum(__global float *out, ulong out_off, __global const float *in, ulong in_off, ulong n, float scale,
                  __local float *scratch) {
    __global const float *x = VIEW(in);
    float acc = 0.0f;
    for (ulong i = get_local_id(0); i < n; i += get_local_size(0)) acc += x[i];
    float total = group_sum(acc, scratch);
    if (get_local_id(0) == 0) VIEW(out)[0] = total * scale;
}

__kernel void norm2(__global float *out, ulong out_off, __global const float *in, ulong in_off, ulong n,
                    __local float *scratch) {
    __global const float *x = VIEW(in);
    /* contiguous float16 blocks per work-item, so a CPU sums in SIMD registers (the
     * strided scalar loop took 1.9 ms for the 842k gradient floats of MOSI on PoCL) */
    float16 acc16 = 0.0f;
    for (ulong b = get_local_id(0); b < n / 16; b += get_local_size(0)) {
        float16 v = vload16(b, x);
        acc16 = fma(v, v, acc16);
    }
    float8 a8 = acc16.lo + acc16.hi;
    float4 a4 = a8.lo + a8.hi;
    float acc = (a4.x + a4.y) + (a4.z + a4.w);
    for (ulong i = n / 16 * 16 + get_local_id(0); i < n; i += get_local_size(0)) acc = fma(x[i], x[i], acc);
    float total = group_sum(acc, scratch);
    if (get_local_id(0) == 0) VIEW(out)[0] = sqrt(total);
}
