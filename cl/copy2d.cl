/* Strided 2-D copies (ops.h dc_copy2d, dc_axpy2d): dimension 0 columns, 1 rows. */

__kernel void copy2d(__global float *dst, ulong dst_off, ulong ld_dst, __global const float *src, ulong src_off,
                     ulong ld_src, ulong rows, ulong cols) {
    ulong c = get_global_id(0), r = get_global_id(1);
    if (c >= cols || r >= rows) return;
    VIEW(dst)[r * ld_dst + c] = VIEW(src)[r * ld_src + c];
}

__kernel void axpy2d(__global float *dst, ulong dst_off, ulong ld_dst, float alpha, __global const float *src,
                     ulong src_off, ulong ld_src, ulong rows, ulong cols) {
    ulong c = get_global_id(0), r = get_global_id(1);
    if (c >= cols || r >= rows) return;
    __global float *y = VIEW(dst) + r * ld_dst + c;
    *y = fma(alpha, VIEW(src)[r * ld_src + c], *y);
}
