/* LayerNorm over the last dimension of (rows, cols), eps 1e-5 (DC_LAYERNORM_EPS).
 *
 * Forward and the dx part of the backward: one work-item per row, walking the row
 * with float8 vectors (PoCL does not vectorize across work-items when each one
 * loops, and rows are short: 64 in the model). dw/db are column sums over rows,
 * done without atomics: one work-group per block of 16 columns; its work-items take
 * runs of rows, then work-item 0 adds the partial sums in a fixed order. */

inline float ln_hsum8(float8 v) {
    float4 a = v.lo + v.hi;
    float2 b = a.lo + a.hi;
    return b.lo + b.hi;
}

/* n <= 8 floats from p (none read when n is 0), the other lanes 0: the last,
 * partial block of columns. */
inline float8 ln_load_part8(__global const float *p, uint n) {
    float t[8];
    for (uint i = 0; i < 8; ++i) t[i] = i < n ? p[i] : 0.0f;
    return vload8(0, t);
}

/* out, mean, rstd (rows) <- in (rows, cols), w, b (cols) */
__kernel void layernorm_fwd(__global float *out, ulong out_off, __global float *mean, ulong mean_off,
                            __global float *rstd, ulong rstd_off, __global const float *in, ulong in_off,
                            __global const float *w, ulong w_off, __global const float *b, ulong b_off, ulong rows,
                            ulong cols) {
    ulong r = get_global_id(0);
    if (r >= rows) return;
    uint n = (uint)cols, n8 = n & ~7u;
    __global const float *x = VIEW(in) + r * cols;
    __global const float *wp = VIEW(w), *bp = VIEW(b);
    __global float *y = VIEW(out) + r * cols;

    float8 s8 = 0.0f;
    for (uint c = 0; c < n8; c += 8) s8 += vload8(0, x + c);
    float s = ln_hsum8(s8);
    for (uint c = n8; c < n; ++c) s += x[c];
    float mu = s / (float)n;

    /* two passes: the variance from deviations, not E[x^2] - mu^2 */
    float8 v8 = 0.0f;
    for (uint c = 0; c < n8; c += 8) {
        float8 d = vload8(0, x + c) - mu;
        v8 = fma(d, d, v8);
    }
    float v = ln_hsum8(v8);
    for (uint c = n8; c < n; ++c) {
        float d = x[c] - mu;
        v = fma(d, d, v);
    }
    float rs = 1.0f / sqrt(v / (float)n + 1e-5f);

    /* each element is read before it is written: out may alias in */
    for (uint c = 0; c < n8; c += 8)
        vstore8(fma((vload8(0, x + c) - mu) * rs, vload8(0, wp + c), vload8(0, bp + c)), 0, y + c);
    for (uint c = n8; c < n; ++c) y[c] = fma((x[c] - mu) * rs, wp[c], bp[c]);
    VIEW(mean)[r] = mu;
    VIEW(rstd)[r] = rs;
}

/* din (rows, cols) += rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * w */
__kernel void layernorm_bwd_dx(__global float *din, ulong din_off, __global const float *dout, ulong dout_off,
                               __global const float *in, ulong in_off, __global const float *mean, ulong mean_off,
                               __global const float *rstd, ulong rstd_off, __global const float *w, ulong w_off,
                               ulong rows, ulong cols) {
    ulong r = get_global_id(0);
    if (r >= rows) return;
    uint n = (uint)cols, n8 = n & ~7u;
    __global const float *x = VIEW(in) + r * cols, *dy = VIEW(dout) + r * cols, *wp = VIEW(w);
    __global float *dx = VIEW(din) + r * cols;
    float mu = VIEW(mean)[r], rs = VIEW(rstd)[r];

    float8 sg8 = 0.0f, sgx8 = 0.0f;
    for (uint c = 0; c < n8; c += 8) {
        float8 g = vload8(0, dy + c) * vload8(0, wp + c);
        sg8 += g;
        sgx8 = fma(g, (vload8(0, x + c) - mu) * rs, sgx8);
    }
    float sg = ln_hsum8(sg8), sgx = ln_hsum8(sgx8);
    for (uint c = n8; c < n; ++c) {
        float g = dy[c] * wp[c];
        sg += g;
        sgx = fma(g, (x[c] - mu) * rs, sgx);
    }
    float mg = sg / (float)n, mgx = sgx / (float)n;

    for (uint c = 0; c < n8; c += 8) {
        float8 g = vload8(0, dy + c) * vload8(0, wp + c);
        float8 xhat = (vload8(0, x + c) - mu) * rs;
        vstore8(fma(rs, g - mg - xhat * mgx, vload8(0, dx + c)), 0, dx + c);
    }
    for (uint c = n8; c < n; ++c) {
        float g = dy[c] * wp[c], xhat = (x[c] - mu) * rs;
        dx[c] = fma(rs, g - mg - xhat * mgx, dx[c]);
    }
}

/* dw (cols) += sum_r dout * xhat, db (cols) += sum_r dout. Global (S, ceil(cols / 16)),
 * local (S, 1): a work-group per 16 columns (a 64-byte cache line), its work-item
 * lid takes the lid-th run of consecutive rows; scratch holds 4 * S float8. */
__kernel void layernorm_bwd_dwdb(__global float *dw, ulong dw_off, __global float *db, ulong db_off,
                                 __global const float *dout, ulong dout_off, __global const float *in, ulong in_off,
                                 __global const float *mean, ulong mean_off, __global const float *rstd,
                                 ulong rstd_off, ulong rows, ulong cols, __local float8 *scratch) {
    uint lid = get_local_id(0), S = get_local_size(0);
    ulong c0 = get_global_id(1) * 16;
    uint nc = cols - c0 < 16 ? (uint)(cols - c0) : 16u; /* c0 < cols: the grid's second size is exact */
    ulong run = (rows + S - 1) / S, r0 = lid * run, r1 = r0 + run < rows ? r0 + run : rows;
    __global const float *x = VIEW(in) + c0, *dy = VIEW(dout) + c0, *mu = VIEW(mean), *rs = VIEW(rstd);

    float8 aw0 = 0.0f, aw1 = 0.0f, ab0 = 0.0f, ab1 = 0.0f;
    if (nc == 16) {
        for (ulong r = r0; r < r1; ++r) {
            __global const float *xr = x + r * cols, *gr = dy + r * cols;
            float8 g0 = vload8(0, gr), g1 = vload8(1, gr);
            float m = mu[r], s = rs[r];
            aw0 = fma(g0, (vload8(0, xr) - m) * s, aw0);
            aw1 = fma(g1, (vload8(1, xr) - m) * s, aw1);
            ab0 += g0;
            ab1 += g1;
        }
    } else {
        uint n0 = nc < 8 ? nc : 8u, n1 = nc - n0;
        for (ulong r = r0; r < r1; ++r) {
            __global const float *xr = x + r * cols, *gr = dy + r * cols;
            float8 g0 = ln_load_part8(gr, n0), g1 = ln_load_part8(gr + 8, n1);
            float m = mu[r], s = rs[r];
            aw0 = fma(g0, (ln_load_part8(xr, n0) - m) * s, aw0);
            aw1 = fma(g1, (ln_load_part8(xr + 8, n1) - m) * s, aw1);
            ab0 += g0;
            ab1 += g1;
        }
    }
    __local float8 *p = scratch + 4 * lid;
    p[0] = aw0, p[1] = aw1, p[2] = ab0, p[3] = ab1;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid != 0) return;
    for (uint i = 1; i < S; ++i) {
        p = scratch + 4 * i;
        aw0 += p[0], aw1 += p[1], ab0 += p[2], ab1 += p[3];
    }
    float tw[16], tb[16];
    vstore8(aw0, 0, tw), vstore8(aw1, 1, tw);
    vstore8(ab0, 0, tb), vstore8(ab1, 1, tb);
    __global float *pw = VIEW(dw) + c0, *pb = VIEW(db) + c0;
    for (uint i = 0; i < nc; ++i) {
        pw[i] += tw[i];
        pb[i] += tb[i];
    }
}
