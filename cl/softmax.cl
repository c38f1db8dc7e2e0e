/* Row softmax over (batch * rows, cols), with scale and the causal mask (see
 * dc_softmax_fwd). One work-item per row, float8 vectors along the row; the last,
 * partial vector is padded so that exp and the sums stay vectorized. */

inline float sm_hsum8(float8 v) {
    float4 a = v.lo + v.hi;
    float2 b = a.lo + a.hi;
    return b.lo + b.hi;
}

inline float sm_hmax8(float8 v) {
    float4 a = fmax(v.lo, v.hi);
    float2 b = fmax(a.lo, a.hi);
    return fmax(b.lo, b.hi);
}

/* n < 8 floats from p, the other lanes `fill`. */
inline float8 sm_load_part8(__global const float *p, uint n, float fill) {
    float t[8];
    for (uint i = 0; i < 8; ++i) t[i] = i < n ? p[i] : fill;
    return vload8(0, t);
}

inline void sm_store_part8(float8 v, __global float *p, uint n) {
    float t[8];
    vstore8(v, 0, t);
    for (uint i = 0; i < n; ++i) p[i] = t[i];
}

/* out may alias in: every element is read before the same element is written, and
 * a row belongs to one work-item. The row is written with the unnormalised exp
 * values first, then scaled, so exp runs once per element. */
__kernel void softmax_fwd(__global float *out, ulong out_off, __global const float *in, ulong in_off, ulong nrows,
                          ulong rows, ulong cols, float scale, uint causal) {
    ulong r = get_global_id(0);
    if (r >= nrows) return;
    ulong i = r % rows;
    uint n = (uint)cols, valid = causal && i + 1 < cols ? (uint)(i + 1) : n, v8 = valid & ~7u, tail = valid - v8;
    __global const float *x = VIEW(in) + r * cols;
    __global float *y = VIEW(out) + r * cols;

    float8 m8 = -INFINITY;
    for (uint c = 0; c < v8; c += 8) m8 = fmax(m8, scale * vload8(0, x + c));
    if (tail) m8 = fmax(m8, select((float8)(-INFINITY), scale * sm_load_part8(x + v8, tail, 0.0f),
                                   (int8)(0, 1, 2, 3, 4, 5, 6, 7) < (int8)(tail)));
    float mx = sm_hmax8(m8);

    float8 s8 = 0.0f;
    for (uint c = 0; c < v8; c += 8) {
        float8 e = exp(scale * vload8(0, x + c) - mx);
        s8 += e;
        vstore8(e, 0, y + c);
    }
    if (tail) {
        float8 e = exp(scale * sm_load_part8(x + v8, tail, 0.0f) - mx);
        e = select((float8)0.0f, e, (int8)(0, 1, 2, 3, 4, 5, 6, 7) < (int8)(tail));
        s8 += e;
        sm_store_part8(e, y + v8, tail);
    }
    float inv = 1.0f / sm_hsum8(s8);

    for (uint c = 0; c < v8; c += 8) vstore8(vload8(0, y + c) * inv, 0, y + c);
    for (uint c = v8; c < valid; ++c) y[c] *= inv;
    for (uint c = valid; c < n; ++c) y[c] = 0.0f; /* masked: exactly 0 */
}

/* din += scale * out * (dout - sum_j dout * out), per row. */
__kernel void softmax_bwd(__global float *din, ulong din_off, __global const float *dout, ulong dout_off,
                          __global const float *out, ulong out_off, ulong nrows, ulong cols, float scale) {
    ulong r = get_global_id(0);
    if (r >= nrows) return;
    uint n = (uint)cols, n8 = n & ~7u;
    __global const float *dy = VIEW(dout) + r * cols, *y = VIEW(out) + r * cols;
    __global float *dx = VIEW(din) + r * cols;

    float8 d8 = 0.0f;
    for (uint c = 0; c < n8; c += 8) d8 = fma(vload8(0, dy + c), vload8(0, y + c), d8);
    float dot = sm_hsum8(d8);
    for (uint c = n8; c < n; ++c) dot = fma(dy[c], y[c], dot);

    for (uint c = 0; c < n8; c += 8) {
        float8 g = scale * vload8(0, y + c) * (vload8(0, dy + c) - dot);
        vstore8(vload8(0, dx + c) + g, 0, dx + c);
    }
    for (uint c = n8; c < n; ++c) dx[c] += scale * y[c] * (dy[c] - dot);
}
