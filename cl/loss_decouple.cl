/* Decoupling loss mean_b cos(s_b, c_b)^2 (ops.h dc_decouple_fwd/bwd; oracle
 * ref_decouple_fwd/bwd). Each row's |s|^2, |c|^2 and s.c come from one work-group
 * reduction: strided partial sums, then the tree of loss_group_sum4. */

/* (|s|^2, |c|^2, s.c, 0) of one row of length L, summed over the work-group. */
inline float4 decouple_row_sums(__global const float *x, __global const float *y, ulong L, __local float4 *scratch) {
    float4 part = 0.0f;
    for (ulong i = get_local_id(0); i < L; i += get_local_size(0)) {
        float a = x[i], b = y[i];
        part.x = fma(a, a, part.x);
        part.y = fma(b, b, part.y);
        part.z = fma(a, b, part.z);
    }
    return loss_group_sum4(part, scratch);
}

/* One work-group: loss[0] = mean over B rows of cos^2. */
__kernel void decouple_fwd(__global float *loss, ulong loss_off, __global const float *s, ulong s_off,
                           __global const float *c, ulong c_off, ulong B, ulong L, __local float4 *scratch) {
    float acc = 0.0f;
    for (ulong b = 0; b < B; ++b) {
        float4 t = decouple_row_sums(VIEW(s) + b * L, VIEW(c) + b * L, L, scratch);
        float cs = t.z / (fmax(sqrt(t.x), LOSS_COSINE_EPS) * fmax(sqrt(t.y), LOSS_COSINE_EPS));
        acc = fma(cs, cs, acc);
    }
    if (get_local_id(0) == 0) VIEW(loss)[0] = acc / (float)B;
}

/* One work-group per row b (B groups): ds, dc (B, L) += g (y / (|x|c |y|c) - cos x / (|x|c |x|)),
 * g = 2 dloss cos / B, |x|c the norm clamped at eps; the clamp passes no gradient, and
 * a zero norm's own gradient is 0 (torch >= 1.13). */
__kernel void decouple_bwd(__global float *ds, ulong ds_off, __global float *dc, ulong dc_off, __global const float *s,
                           ulong s_off, __global const float *c, ulong c_off, ulong B, ulong L, float dloss,
                           __local float4 *scratch) {
    ulong b = get_group_id(0);
    __global const float *x = VIEW(s) + b * L, *y = VIEW(c) + b * L;
    float4 t = decouple_row_sums(x, y, L, scratch);
    float ns = sqrt(t.x), nc = sqrt(t.y);
    float ns_c = fmax(ns, LOSS_COSINE_EPS), nc_c = fmax(nc, LOSS_COSINE_EPS);
    float inv = 1.0f / (ns_c * nc_c), cs = t.z * inv;
    float g = 2.0f * dloss * cs / (float)B;
    float kx = ns > 0.0f ? cs / (ns_c * ns) : 0.0f, ky = nc > 0.0f ? cs / (nc_c * nc) : 0.0f;
    __global float *gx = VIEW(ds) + b * L, *gy = VIEW(dc) + b * L;
    for (ulong i = get_local_id(0); i < L; i += get_local_size(0)) {
        float a = x[i], v = y[i];
        gx[i] = fma(g, v * inv - kx * a, gx[i]);
        gy[i] = fma(g, a * inv - ky * v, gy[i]);
    }
}
