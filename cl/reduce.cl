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
    float acc = 0.0f;
    for (ulong i = get_local_id(0); i < n; i += get_local_size(0)) acc = fma(x[i], x[i], acc);
    float total = group_sum(acc, scratch);
    if (get_local_id(0) == 0) VIEW(out)[0] = sqrt(total);
}
