/* im2col / col2im for Conv1d over time (no padding, stride 1), T' = T - k + 1:
 * col[b*T' + t, c*k + j] = in[b, t + j, c]. Both launch over a 3-D grid
 * (C, time, B) so that no work-item divides, and neighbouring work-items (c, c+1)
 * read neighbouring input floats and write neighbouring runs of k col floats. */

/* col (B*T', C*k) <- in (B, T, C); global (C, T', B) */
__kernel void im2col(__global float *col, ulong col_off, __global const float *in, ulong in_off, ulong B, ulong T,
                     ulong C, ulong k) {
    ulong c = get_global_id(0), t = get_global_id(1), b = get_global_id(2);
    if (c >= C || t + k > T || b >= B) return;
    ulong tp = T - k + 1;
    __global const float *src = VIEW(in) + (b * T + t) * C + c;
    __global float *dst = VIEW(col) + ((b * tp + t) * C + c) * k;
    for (ulong j = 0; j < k; ++j) dst[j] = src[j * C];
}

/* din (B, T, C) += the adjoint of im2col applied to dcol (B*T', C*k); global (C, T, B).
 * A gather: input row s receives col rows t = s - j with 0 <= t < T', summed in j order. */
__kernel void col2im(__global float *din, ulong din_off, __global const float *dcol, ulong dcol_off, ulong B, ulong T,
                     ulong C, ulong k) {
    ulong c = get_global_id(0), s = get_global_id(1), b = get_global_id(2);
    if (c >= C || s >= T || b >= B) return;
    ulong tp = T - k + 1, ck = C * k;
    ulong j0 = s + 1 > tp ? s + 1 - tp : 0, j1 = s < k - 1 ? s : k - 1; /* s - j in [0, T') */
    __global const float *g = VIEW(dcol) + c * k;
    float acc = 0.0f;
    for (ulong j = j0; j <= j1; ++j) acc += g[(b * tp + s - j) * ck + j]; /* row b*T' + s - j, column c*k + j */
    VIEW(din)[(b * T + s) * C + c] += acc;
}
