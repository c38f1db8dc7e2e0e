/* Mean-pool over time of (B, T, D). One work-item per (b, block of 8 features):
 * it walks t with float8 vectors (contiguous in d), so no work-item needs a
 * division per element, and neighbouring work-items touch neighbouring memory. */

/* out (B, D) = mean over t of in (B, T, D); global B * ceil(D / 8) */
__kernel void meanpool_fwd(__global float *out, ulong out_off, __global const float *in, ulong in_off, ulong B,
                           ulong T, ulong D) {
    ulong nblk = (D + 7) / 8, i = get_global_id(0);
    if (i >= B * nblk) return;
    ulong b = i / nblk, d0 = (i - b * nblk) * 8;
    uint nd = D - d0 < 8 ? (uint)(D - d0) : 8u;
    __global const float *x = VIEW(in) + b * T * D + d0;
    __global float *y = VIEW(out) + b * D + d0;
    float tf = (float)T;
    if (nd == 8) {
        float8 s = 0.0f;
        for (ulong t = 0; t < T; ++t) s += vload8(0, x + t * D);
        vstore8(s / tf, 0, y);
    } else {
        for (uint j = 0; j < nd; ++j) {
            float s = 0.0f;
            for (ulong t = 0; t < T; ++t) s += x[t * D + j];
            y[j] = s / tf;
        }
    }
}

/* din (B, T, D) += dout (B, D) / T; global B * ceil(D / 8). dout / T is rounded
 * to float before the add, as ref does. */
__kernel void meanpool_bwd(__global float *din, ulong din_off, __global const float *dout, ulong dout_off, ulong B,
                           ulong T, ulong D) {
    ulong nblk = (D + 7) / 8, i = get_global_id(0);
    if (i >= B * nblk) return;
    ulong b = i / nblk, d0 = (i - b * nblk) * 8;
    uint nd = D - d0 < 8 ? (uint)(D - d0) : 8u;
    __global float *dx = VIEW(din) + b * T * D + d0;
    __global const float *dy = VIEW(dout) + b * D + d0;
    float tf = (float)T;
    if (nd == 8) {
        float8 g = vload8(0, dy) / tf;
        for (ulong t = 0; t < T; ++t) vstore8(vload8(0, dx + t * D) + g, 0, dx + t * D);
    } else {
        for (uint j = 0; j < nd; ++j) {
            float g = dy[j] / tf;
            for (ulong t = 0; t < T; ++t) dx[t * D + j] += g;
        }
    }
}
