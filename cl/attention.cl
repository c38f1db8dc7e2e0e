/* Fused multi-head attention (dc_attention_fwd / dc_attention_bwd in ops.h). The host
 * picks, per call: the *_local pair when its tiles fit the device's local memory, with
 * attention_bwd_serial instead of attention_bwd_local where a work-group is one
 * work-item (CPUs), else the global-memory pair.
 *
 * *_local (see the section below): the keys and values of one (b, head) are staged
 * transposed in local memory so that a work-item (a query row at a time in the forward)
 * works on 8 keys at once in float8, the way softmax_fwd vectorises; the backward's
 * work-group (one per (b, head)) keeps drop(P) and dS transposed locally for its key
 * phase. A forward row draws its dropout factors 64 elements at a time, as dropout_fwd
 * does (att_row_factors).
 *
 * attention_bwd_serial (the last section): one work-item per (b, head) walks the query
 * rows once, dK and dV accumulated as outer products in local memory.
 *
 * Global-memory pair (any shape, e.g. long sequences on a GPU's small local memory):
 * forward one work-item per query row (b, head, t), a work-group holding rows of one
 * (b, head); the row's raw scores go to probs, become the softmax in place, and the
 * output row is accumulated from drop(P) and V. Backward one work-group per (b, head);
 * its work-items first take the query rows (D_t = sum_j P_tj dP_tj into local memory,
 * then dQ), then, after a barrier, the key rows (dK, dV). Head columns are accumulated
 * ATT_GROUP at a time in private float8 registers; a wider head takes several passes.
 *
 * All: loops stride by the local size, so any local size works; no atomics, each
 * work-group owns its head's columns. Dropout: element i = ((b*H + hd)*T + t)*S + j of
 * probs takes word i & 3 of dropout_words(.., i >> 2), as dropout_fwd over the whole
 * tensor does, so masks equal the unfused composition's bit for bit; the forward stores
 * P with the sign bit set where the element was dropped, and the backwards read the
 * mask from there (no Philox). */

#define ATT_GROUP 32u

inline float att_hsum8(float8 v) {
    float4 a = v.lo + v.hi;
    float2 b = a.lo + a.hi;
    return b.lo + b.hi;
}

/* min(n, 8) floats from p, the other lanes 0. */
inline float8 att_load8(__global const float *p, uint n) {
    if (n >= 8) return vload8(0, p);
    float t[8];
    for (uint i = 0; i < 8; ++i) t[i] = i < n ? p[i] : 0.0f;
    return vload8(0, t);
}

/* p[i] = v[i] (add: p[i] += v[i]) for i < min(n, 8). */
inline void att_put8(__global float *p, uint n, float8 v, bool add) {
    if (n >= 8) {
        vstore8(add ? vload8(0, p) + v : v, 0, p);
        return;
    }
    float t[8];
    vstore8(v, 0, t);
    for (uint i = 0; i < n; ++i) p[i] = add ? p[i] + t[i] : t[i];
}

inline float att_dot(__global const float *a, __global const float *b, uint n) {
    float8 s8 = 0.0f;
    uint c = 0;
    for (; c + 8 <= n; c += 8) s8 = fma(vload8(0, a + c), vload8(0, b + c), s8);
    float s = att_hsum8(s8);
    for (; c < n; ++c) s = fma(a[c], b[c], s);
    return s;
}

/* Up to ATT_GROUP accumulated columns. */
struct att_acc {
    float8 a0, a1, a2, a3;
};

inline void att_acc_zero(struct att_acc *x) { x->a0 = x->a1 = x->a2 = x->a3 = 0.0f; }

/* x += s * p[0 .. w) */
inline void att_acc_axpy(struct att_acc *x, float s, __global const float *p, uint w) {
    x->a0 = fma(s, att_load8(p, w), x->a0);
    if (w > 8) x->a1 = fma(s, att_load8(p + 8, w - 8), x->a1);
    if (w > 16) x->a2 = fma(s, att_load8(p + 16, w - 16), x->a2);
    if (w > 24) x->a3 = fma(s, att_load8(p + 24, w - 24), x->a3);
}

inline void att_acc_put(__global float *p, uint w, const struct att_acc *x, bool add) {
    att_put8(p, w, x->a0, add);
    if (w > 8) att_put8(p + 8, w - 8, x->a1, add);
    if (w > 16) att_put8(p + 16, w - 16, x->a2, add);
    if (w > 24) att_put8(p + 24, w - 24, x->a3, add);
}

/* The dropout settings of one call. */
struct att_drop {
    uint on, site, thr;
    ulong seed, step;
    float keep;
};

inline float att_word_factor(uint4 w, ulong i, const struct att_drop *d) {
    uint r = (uint)(i & 3), word = r == 0 ? w.x : r == 1 ? w.y : r == 2 ? w.z : w.w;
    return word >= d->thr ? d->keep : 0.0f;
}

/* Factor of element i; blk and words cache the last Philox block (start with blk = ~0). */
inline float att_factor_cached(ulong i, ulong *blk, uint4 *words, const struct att_drop *d) {
    if (!d->on) return 1.0f;
    if ((i >> 2) != *blk) {
        *blk = i >> 2;
        *words = dropout_words(d->seed, d->site, d->step, *blk);
    }
    return att_word_factor(*words, i, d);
}

inline float att_factor(ulong i, const struct att_drop *d) {
    if (!d->on) return 1.0f;
    return att_word_factor(dropout_words(d->seed, d->site, d->step, i >> 2), i, d);
}

/* probs keeps P with the sign bit set where dropout dropped the element (P >= 0), so
 * the backward needs no Philox: P = |stored|, factor 0 when the sign is set, else keep. */
inline float att_stored(float p, float f) { return f == 0.0f ? -p : p; }
inline float att_keep(const struct att_drop *d) { return d->on ? d->keep : 1.0f; }
inline float att_stored_factor(float stored, float keep) { return signbit(stored) ? 0.0f : keep; }

/* Global sizes (T, B*H). */
__kernel void attention_fwd(__global float *out, ulong out_off, __global float *probs, ulong probs_off,
                            __global const float *q, ulong q_off, __global const float *k, ulong k_off,
                            __global const float *v, ulong v_off, ulong T, ulong S, ulong H, ulong h, ulong ld_q,
                            ulong ld_k, ulong ld_v, ulong ld_out, float scale, uint causal, uint drop_on, ulong seed,
                            uint site, ulong step, uint thr, float keep) {
    ulong t = get_global_id(0), bh = get_global_id(1);
    if (t >= T) return;
    struct att_drop dr = {drop_on, site, thr, seed, step, keep};
    ulong b = bh / H, hd = bh % H;
    uint hn = (uint)h, valid = causal && t + 1 < S ? (uint)(t + 1) : (uint)S;
    __global const float *qr = VIEW(q) + (b * T + t) * ld_q + hd * h;
    __global const float *kb = VIEW(k) + b * S * ld_k + hd * h;
    __global const float *vb = VIEW(v) + b * S * ld_v + hd * h;
    ulong row0 = (bh * T + t) * S;
    __global float *p = VIEW(probs) + row0;

    float mx = -INFINITY;
    for (uint j = 0; j < valid; ++j) {
        float s = att_dot(qr, kb + j * ld_k, hn); /* the raw score, rounded as a gemm would */
        p[j] = s;
        mx = fmax(mx, scale * s);
    }
    float sum = 0.0f;
    for (uint j = 0; j < valid; ++j) {
        float e = exp(scale * p[j] - mx);
        p[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    {
        ulong blk = ~(ulong)0;
        uint4 words = 0;
        for (uint j = 0; j < valid; ++j) p[j] = att_stored(p[j] * inv, att_factor_cached(row0 + j, &blk, &words, &dr));
    }
    for (uint j = valid; j < S; ++j) p[j] = 0.0f; /* masked: exactly 0 */
    float keepf = att_keep(&dr);

    __global float *o = VIEW(out) + (b * T + t) * ld_out + hd * h;
    for (uint g0 = 0; g0 < hn; g0 += ATT_GROUP) {
        uint w = min(hn - g0, ATT_GROUP);
        struct att_acc acc;
        att_acc_zero(&acc);
        for (uint j = 0; j < valid; ++j) {
            float pj = fabs(p[j]) * att_stored_factor(p[j], keepf);
            att_acc_axpy(&acc, pj, vb + j * ld_v + g0, w);
        }
        att_acc_put(o + g0, w, &acc, false);
    }
}

/* Global sizes (local size, B*H): one work-group per (b, head). dsum holds T floats. */
__kernel void attention_bwd(__global float *dq, ulong dq_off, __global float *dk, ulong dk_off, __global float *dv,
                            ulong dv_off, __global const float *dout, ulong dout_off, __global const float *probs,
                            ulong probs_off, __global const float *q, ulong q_off, __global const float *k,
                            ulong k_off, __global const float *v, ulong v_off, ulong T, ulong S, ulong H, ulong h,
                            ulong ld_q, ulong ld_k, ulong ld_v, ulong ld_out, float scale, uint causal, uint drop_on,
                            ulong seed, uint site, ulong step, uint thr, float keep, __local float *dsum) {
    ulong bh = get_group_id(1), b = bh / H, hd = bh % H;
    uint lid = (uint)get_local_id(0), ls = (uint)get_local_size(0), hn = (uint)h;
    struct att_drop dr = {drop_on, site, thr, seed, step, keep};
    float keepf = att_keep(&dr);
    __global const float *qb = VIEW(q) + b * T * ld_q + hd * h, *gob = VIEW(dout) + b * T * ld_out + hd * h;
    __global const float *kb = VIEW(k) + b * S * ld_k + hd * h, *vb = VIEW(v) + b * S * ld_v + hd * h;
    __global float *dqb = VIEW(dq) + b * T * ld_q + hd * h;
    __global float *dkb = VIEW(dk) + b * S * ld_k + hd * h, *dvb = VIEW(dv) + b * S * ld_v + hd * h;
    __global const float *pb = VIEW(probs) + bh * T * S;

    /* query rows: with dP_tj = f_tj (dO_t . v_j) (f the dropout factor),
     * D_t = sum_j P_tj dP_tj, dS_tj = scale P_tj (dP_tj - D_t), dQ_t += sum_j dS_tj k_j */
    for (uint t = lid; t < T; t += ls) {
        uint valid = causal && t + 1 < S ? t + 1 : (uint)S;
        __global const float *go = gob + t * ld_out, *p = pb + t * S;
        float D = 0.0f;
        for (uint j = 0; j < valid; ++j)
            D = fma(fabs(p[j]), att_stored_factor(p[j], keepf) * att_dot(go, vb + j * ld_v, hn), D);
        dsum[t] = D;
        for (uint g0 = 0; g0 < hn; g0 += ATT_GROUP) {
            uint w = min(hn - g0, ATT_GROUP);
            struct att_acc acc;
            att_acc_zero(&acc);
            for (uint j = 0; j < valid; ++j) {
                float dp = att_stored_factor(p[j], keepf) * att_dot(go, vb + j * ld_v, hn);
                att_acc_axpy(&acc, scale * fabs(p[j]) * (dp - D), kb + j * ld_k + g0, w);
            }
            att_acc_put(dqb + t * ld_q + g0, w, &acc, true);
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* key rows: dV_j += sum_t drop(P)_tj dO_t, dK_j += sum_t dS_tj q_t (causal: P_tj = 0 for t < j) */
    for (uint j = lid; j < S; j += ls) {
        uint t0 = causal ? j : 0;
        for (uint g0 = 0; g0 < hn; g0 += ATT_GROUP) {
            uint w = min(hn - g0, ATT_GROUP);
            struct att_acc av, ak;
            att_acc_zero(&av);
            att_acc_zero(&ak);
            for (uint t = t0; t < T; ++t) {
                float stored = pb[t * S + j], pj = fabs(stored), f = att_stored_factor(stored, keepf);
                __global const float *go = gob + t * ld_out;
                float dp = f * att_dot(go, vb + j * ld_v, hn);
                att_acc_axpy(&av, pj * f, go + g0, w);
                att_acc_axpy(&ak, scale * pj * (dp - dsum[t]), qb + t * ld_q + g0, w);
            }
            att_acc_put(dvb + j * ld_v + g0, w, &av, true);
            att_acc_put(dkb + j * ld_k + g0, w, &ak, true);
        }
    }
}

/* ---- the local-memory pair ----
 * Forward: KT and VT (h, S8), S8 = S rounded up to 8, then per work-item its row's
 * scores, softmax and drop(P) in a local row buffer; the output is h dot products of
 * that row with VT's rows. Backward: KT, VT (h, S8) and dO^T, Q^T (h, T8); phase 1 (query
 * rows) computes f * dP, D, dS and dQ from a local row buffer and scatters drop(P) and dS
 * into PdT and dST (S, T8); phase 2 (key rows) reads those: dV and dK are then dot
 * products along t, with no Philox and no dP recomputed. */

inline uint att_lanes(uint j0, uint valid) { return min(valid - j0, 8u); }

inline float8 att_gload8(__global const float *p, uint n, float fill) {
    if (n >= 8) return vload8(0, p);
    float t[8];
    for (uint i = 0; i < 8; ++i) t[i] = i < n ? p[i] : fill;
    return vload8(0, t);
}

inline void att_gstore8(__global float *p, uint n, float8 v) {
    if (n >= 8) {
        vstore8(v, 0, p);
        return;
    }
    float t[8];
    vstore8(v, 0, t);
    for (uint i = 0; i < n; ++i) p[i] = t[i];
}

inline float att_hmax8(float8 v) {
    float4 a = fmax(v.lo, v.hi);
    float2 b = fmax(a.lo, a.hi);
    return fmax(b.lo, b.hi);
}

/* dst (h, S8) = the head's rows src (S, h) at stride ld, transposed, zero beyond S. */
inline void att_load_transposed(__local float *dst, __global const float *src, ulong ld, uint S, uint S8, uint h) {
    for (uint idx = (uint)get_local_id(0); idx < h * S8; idx += (uint)get_local_size(0)) {
        uint c = idx / S8, j = idx - c * S8;
        dst[idx] = j < S ? src[j * ld + c] : 0.0f;
    }
}

/* Floats of a row factor buffer (att_row_factors) beyond the row's keys. */
#define ATT_FR_EXTRA 128u

/* fr[j + (row0 & 63)] = dropout factor of element row0 + j, for j < n: the 64-element
 * groups (row0 >> 6) .. ((row0 + n - 1) >> 6), drawn as dropout_fwd draws them
 * (dropout_factors64). fr must hold n + ATT_FR_EXTRA floats. */
inline void att_row_factors(__local float *fr, ulong row0, uint n, const struct att_drop *d) {
    ulong g0 = row0 >> 6, g1 = (row0 + n - 1) >> 6;
    for (ulong g = g0; g <= g1; ++g) {
        float16 fa[4];
        dropout_factors64(g, d->seed, d->site, d->step, d->thr, d->keep, fa);
        for (int i = 0; i < 4; ++i) vstore16(fa[i], 0, fr + (g - g0) * 64 + 16 * i);
    }
}

/* Factors of keys j0 .. j0+7 of a row, frow pointing at its key 0's; lanes >= n exactly 0. */
inline float8 att_fr8(__local const float *frow, uint j0, uint n, const struct att_drop *d) {
    if (!d->on) return 1.0f;
    return select((float8)0.0f, vload8(0, frow + j0), (int8)(0, 1, 2, 3, 4, 5, 6, 7) < (int8)((int)n));
}

/* One query row of attention_fwd_local: scores against KT, softmax, P to probs (sign
 * set where dropped), drop(P) in the row buffer pd, then the output row from VT. */
inline void att_fwd_row(__global float *o, __global float *p, __global const float *qr, uint valid, uint Sn, uint hn,
                        float scale, const struct att_drop *dr, __local const float *kt,
                        __local const float *vt, __local float *pd, __local const float *frow) {
    uint S8 = (Sn + 7) & ~7u;
    const int8 lane = (int8)(0, 1, 2, 3, 4, 5, 6, 7);
    float8 m8 = -INFINITY;
    /* the query row 8 columns at a time in registers; partial scores of a wider head
     * wait in pd */
    for (uint c0 = 0; c0 < hn; c0 += 8) {
        uint w = min(hn - c0, 8u);
        float8 q8 = att_load8(qr + c0, w);
        bool last = c0 + 8 >= hn;
        for (uint j0 = 0; j0 < valid; j0 += 8) {
            __local const float *kc = kt + c0 * S8 + j0;
            float8 s8 = c0 ? vload8(0, pd + j0) : 0.0f;
            s8 = fma((float8)(q8.s0), vload8(0, kc), s8);
            if (w > 1) s8 = fma((float8)(q8.s1), vload8(0, kc + S8), s8);
            if (w > 2) s8 = fma((float8)(q8.s2), vload8(0, kc + 2 * S8), s8);
            if (w > 3) s8 = fma((float8)(q8.s3), vload8(0, kc + 3 * S8), s8);
            if (w > 4) s8 = fma((float8)(q8.s4), vload8(0, kc + 4 * S8), s8);
            if (w > 5) s8 = fma((float8)(q8.s5), vload8(0, kc + 5 * S8), s8);
            if (w > 6) s8 = fma((float8)(q8.s6), vload8(0, kc + 6 * S8), s8);
            if (w > 7) s8 = fma((float8)(q8.s7), vload8(0, kc + 7 * S8), s8);
            vstore8(s8, 0, pd + j0);
            if (last) m8 = fmax(m8, select((float8)(-INFINITY), scale * s8, lane < (int8)((int)att_lanes(j0, valid))));
        }
    }
    float mx = att_hmax8(m8);
    float8 sum8 = 0.0f;
    for (uint j0 = 0; j0 < valid; j0 += 8) {
        uint n = att_lanes(j0, valid);
        float8 e = select((float8)0.0f, exp(scale * vload8(0, pd + j0) - mx), lane < (int8)((int)n));
        sum8 += e;
        vstore8(e, 0, pd + j0);
    }
    float inv = 1.0f / att_hsum8(sum8);
    /* P to probs (sign set where dropped), drop(P) kept locally; masked lanes and keys
     * are exactly 0 */
    for (uint j0 = 0; j0 < S8; j0 += 8) {
        float8 p8 = j0 < valid ? vload8(0, pd + j0) * inv : 0.0f;
        float8 f8 = j0 < valid ? att_fr8(frow, j0, att_lanes(j0, valid), dr) : 1.0f;
        att_gstore8(p + j0, min(Sn - j0, 8u), select(p8, -p8, f8 == 0.0f));
        if (j0 < valid) vstore8(p8 * f8, 0, pd + j0);
    }
    /* 8 output columns per pass over the row, each drop(P) block loaded once */
    for (uint c0 = 0; c0 < hn; c0 += 8) {
        uint w = min(hn - c0, 8u);
        float8 a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;
        for (uint j0 = 0; j0 < valid; j0 += 8) {
            float8 p8 = vload8(0, pd + j0);
            __local const float *vc = vt + c0 * S8 + j0;
            a0 = fma(p8, vload8(0, vc), a0);
            if (w > 1) a1 = fma(p8, vload8(0, vc + S8), a1);
            if (w > 2) a2 = fma(p8, vload8(0, vc + 2 * S8), a2);
            if (w > 3) a3 = fma(p8, vload8(0, vc + 3 * S8), a3);
            if (w > 4) a4 = fma(p8, vload8(0, vc + 4 * S8), a4);
            if (w > 5) a5 = fma(p8, vload8(0, vc + 5 * S8), a5);
            if (w > 6) a6 = fma(p8, vload8(0, vc + 6 * S8), a6);
            if (w > 7) a7 = fma(p8, vload8(0, vc + 7 * S8), a7);
        }
        float8 sums = (float8)(att_hsum8(a0), att_hsum8(a1), att_hsum8(a2), att_hsum8(a3), att_hsum8(a4),
                               att_hsum8(a5), att_hsum8(a6), att_hsum8(a7));
        att_put8(o + c0, w, sums, false);
    }
}

/* Global sizes (lt, B*H), local (lt, 1): one work-group per (b, head), its work-items
 * taking the query rows in turn (a CPU runs best with lt = 1: no work-item loops). loc
 * holds KT and VT (h * S8 floats each), then per work-item a row buffer (S8) and a row
 * factor buffer (S8 + ATT_FR_EXTRA). */
__kernel void attention_fwd_local(__global float *out, ulong out_off, __global float *probs, ulong probs_off,
                                  __global const float *q, ulong q_off, __global const float *k, ulong k_off,
                                  __global const float *v, ulong v_off, ulong T, ulong S, ulong H, ulong h, ulong ld_q,
                                  ulong ld_k, ulong ld_v, ulong ld_out, float scale, uint causal, uint drop_on,
                                  ulong seed, uint site, ulong step, uint thr, float keep, uint head_factors,
                                  __local float *loc) {
    ulong bh = get_group_id(1), b = bh / H, hd = bh % H;
    uint hn = (uint)h, Sn = (uint)S, S8 = (Sn + 7) & ~7u, lid = (uint)get_local_id(0), ls = (uint)get_local_size(0);
    __local float *kt = loc, *vt = loc + hn * S8, *pd = vt + hn * S8 + lid * S8, *fbase = vt + hn * S8 + ls * S8;
    __local float *fr = fbase + lid * (S8 + ATT_FR_EXTRA);
    struct att_drop dr = {drop_on, site, thr, seed, step, keep};
    /* head_factors (the host sets it for one work-item per group): the dropout factors of
     * the whole head, T*S consecutive elements, drawn at once into fbase (no 64-element
     * group drawn twice, as consecutive rows would); else each row draws its own in fr */
    ulong g0 = (bh * T * S) >> 6;
    if (drop_on && head_factors && lid == 0) att_row_factors(fbase, bh * T * S, (uint)(T * S), &dr);
    att_load_transposed(kt, VIEW(k) + b * S * ld_k + hd * h, ld_k, Sn, S8, hn);
    att_load_transposed(vt, VIEW(v) + b * S * ld_v + hd * h, ld_v, Sn, S8, hn);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (ulong t = lid; t < T; t += ls) {
        uint valid = causal && t + 1 < S ? (uint)(t + 1) : Sn;
        ulong row0 = (bh * T + t) * S;
        __local const float *frow = fbase + (row0 - 64 * g0);
        if (!head_factors) {
            if (drop_on) att_row_factors(fr, row0, valid, &dr);
            frow = fr + (row0 & 63);
        }
        att_fwd_row(VIEW(out) + (b * T + t) * ld_out + hd * h, VIEW(probs) + row0, VIEW(q) + (b * T + t) * ld_q + hd * h,
                    valid, Sn, hn, scale, &dr, kt, vt, pd, frow);
    }
}

/* Global sizes (lt, B*H), local (lt, 1): one work-group per (b, head). loc holds, with
 * S8, T8 = S, T rounded up to 8: KT, VT (h * S8 each), dOT, QT (h * T8 each), the
 * transposed dropped probabilities PdT and score gradients dST (S * T8 each), and one
 * row buffer (S8) per work-item. */
__kernel void attention_bwd_local(__global float *dq, ulong dq_off, __global float *dk, ulong dk_off,
                                  __global float *dv, ulong dv_off, __global const float *dout, ulong dout_off,
                                  __global const float *probs, ulong probs_off, __global const float *q, ulong q_off,
                                  __global const float *k, ulong k_off, __global const float *v, ulong v_off, ulong T,
                                  ulong S, ulong H, ulong h, ulong ld_q, ulong ld_k, ulong ld_v, ulong ld_out,
                                  float scale, uint causal, uint drop_on, ulong seed, uint site, ulong step, uint thr,
                                  float keep, __local float *loc) {
    ulong bh = get_group_id(1), b = bh / H, hd = bh % H;
    uint lid = (uint)get_local_id(0), ls = (uint)get_local_size(0), hn = (uint)h, Tn = (uint)T, Sn = (uint)S;
    uint S8 = (Sn + 7) & ~7u, T8 = (Tn + 7) & ~7u;
    float keepf = drop_on ? keep : 1.0f;
    __local float *kt = loc, *vt = kt + hn * S8, *got = vt + hn * S8, *qt = got + hn * T8;
    __local float *pdt = qt + hn * T8, *dst = pdt + Sn * T8, *row = dst + Sn * T8 + lid * S8;
    __global const float *qb = VIEW(q) + b * T * ld_q + hd * h, *gob = VIEW(dout) + b * T * ld_out + hd * h;
    __global float *dqb = VIEW(dq) + b * T * ld_q + hd * h;
    __global float *dkb = VIEW(dk) + b * S * ld_k + hd * h, *dvb = VIEW(dv) + b * S * ld_v + hd * h;
    __global const float *pb = VIEW(probs) + bh * T * S;
    const int8 lane = (int8)(0, 1, 2, 3, 4, 5, 6, 7);
    att_load_transposed(kt, VIEW(k) + b * S * ld_k + hd * h, ld_k, Sn, S8, hn);
    att_load_transposed(vt, VIEW(v) + b * S * ld_v + hd * h, ld_v, Sn, S8, hn);
    att_load_transposed(got, gob, ld_out, Tn, T8, hn);
    att_load_transposed(qt, qb, ld_q, Tn, T8, hn);
    for (uint idx = 8 * lid; idx < 2 * Sn * T8; idx += 8 * ls) vstore8(0.0f, 0, pdt + idx); /* masked, padding */
    barrier(CLK_LOCAL_MEM_FENCE);

    /* query rows: x_tj = f_tj (dO_t . v_j), D_t = sum_j P_tj x_tj, dS_tj = scale P_tj (x_tj - D_t),
     * dQ_t += sum_j dS_tj k_j; drop(P) and dS go to PdT and dST for the key phase */
    for (uint t = lid; t < Tn; t += ls) {
        uint valid = causal && t + 1 < Sn ? t + 1 : Sn;
        __global const float *p = pb + t * S;
        float8 d8 = 0.0f;
        for (uint j0 = 0; j0 < valid; j0 += 8) {
            float8 x8 = 0.0f;
            for (uint c = 0; c < hn; ++c) x8 = fma((float8)(got[c * T8 + t]), vload8(0, vt + c * S8 + j0), x8);
            uint n = att_lanes(j0, valid);
            float8 stored = att_gload8(p + j0, n, 0.0f), p8 = fabs(stored);
            float8 f8 = select((float8)(keepf), (float8)0.0f, signbit(stored) | (lane >= (int8)((int)n)));
            x8 *= f8;
            vstore8(x8, 0, row + j0);
            d8 = fma(p8, x8, d8);
            float pd[8];
            vstore8(p8 * f8, 0, pd);
            for (uint l = 0; l < n; ++l) pdt[(j0 + l) * T8 + t] = pd[l];
        }
        float D = att_hsum8(d8);
        for (uint j0 = 0; j0 < valid; j0 += 8) {
            uint n = att_lanes(j0, valid);
            float8 s8 = scale * fabs(att_gload8(p + j0, n, 0.0f)) * (vload8(0, row + j0) - D);
            s8 = select((float8)0.0f, s8, lane < (int8)((int)n));
            vstore8(s8, 0, row + j0);
            float sv[8];
            vstore8(s8, 0, sv);
            for (uint l = 0; l < n; ++l) dst[(j0 + l) * T8 + t] = sv[l];
        }
        __global float *gq = dqb + t * ld_q;
        for (uint c = 0; c < hn; ++c) {
            float8 acc = 0.0f;
            for (uint j0 = 0; j0 < valid; j0 += 8) acc = fma(vload8(0, row + j0), vload8(0, kt + c * S8 + j0), acc);
            gq[c] += att_hsum8(acc);
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* key rows: dV_j += sum_t drop(P)_tj dO_t, dK_j += sum_t dS_tj q_t (causal: zero for t < j) */
    for (uint j = lid; j < Sn; j += ls) {
        uint t0 = causal ? j & ~7u : 0;
        __local const float *pj = pdt + j * T8, *sj = dst + j * T8;
        __global float *gv = dvb + j * ld_v, *gk = dkb + j * ld_k;
        for (uint c = 0; c < hn; ++c) {
            float8 av = 0.0f, ak = 0.0f;
            for (uint t = t0; t < T8; t += 8) {
                av = fma(vload8(0, pj + t), vload8(0, got + c * T8 + t), av);
                ak = fma(vload8(0, sj + t), vload8(0, qt + c * T8 + t), ak);
            }
            gv[c] += att_hsum8(av);
            gk[c] += att_hsum8(ak);
        }
    }
}

/* ---- the single-work-item backward (CPUs) ----
 * Global sizes (1, B*H), local (1, 1): one work-item per (b, head) walks the query rows
 * once and accumulates dV and dK as outer products into transposed local accumulators
 * (dVT, dKT: h * S8 each), so there is no transposing scatter and no key phase; dO_t and
 * q_t are read straight from their rows. loc holds KT, VT, dKT, dVT and one row buffer. */
__kernel void attention_bwd_serial(__global float *dq, ulong dq_off, __global float *dk, ulong dk_off,
                                   __global float *dv, ulong dv_off, __global const float *dout, ulong dout_off,
                                   __global const float *probs, ulong probs_off, __global const float *q, ulong q_off,
                                   __global const float *k, ulong k_off, __global const float *v, ulong v_off,
                                   ulong T, ulong S, ulong H, ulong h, ulong ld_q, ulong ld_k, ulong ld_v,
                                   ulong ld_out, float scale, uint causal, uint drop_on, ulong seed, uint site,
                                   ulong step, uint thr, float keep, __local float *loc) {
    ulong bh = get_group_id(1), b = bh / H, hd = bh % H;
    uint hn = (uint)h, Tn = (uint)T, Sn = (uint)S, S8 = (Sn + 7) & ~7u;
    float keepf = drop_on ? keep : 1.0f;
    __local float *kt = loc, *vt = kt + hn * S8, *dkt = vt + hn * S8, *dvt = dkt + hn * S8, *row = dvt + hn * S8;
    __global const float *qb = VIEW(q) + b * T * ld_q + hd * h, *gob = VIEW(dout) + b * T * ld_out + hd * h;
    __global float *dqb = VIEW(dq) + b * T * ld_q + hd * h;
    __global float *dkb = VIEW(dk) + b * S * ld_k + hd * h, *dvb = VIEW(dv) + b * S * ld_v + hd * h;
    __global const float *pb = VIEW(probs) + bh * T * S;
    const int8 lane = (int8)(0, 1, 2, 3, 4, 5, 6, 7);
    att_load_transposed(kt, VIEW(k) + b * S * ld_k + hd * h, ld_k, Sn, S8, hn);
    att_load_transposed(vt, VIEW(v) + b * S * ld_v + hd * h, ld_v, Sn, S8, hn);
    for (uint i = 0; i < 2 * hn * S8; i += 8) vstore8(0.0f, 0, dkt + i);
    barrier(CLK_LOCAL_MEM_FENCE);

    for (uint t = 0; t < Tn; ++t) {
        uint valid = causal && t + 1 < Sn ? t + 1 : Sn;
        __global const float *p = pb + t * S, *go = gob + t * ld_out, *qr = qb + t * ld_q;
        /* x_tj = f_tj (dO_t . v_j), D_t = sum_j P_tj x_tj; dV_j += f_tj P_tj dO_t */
        float8 d8 = 0.0f;
        for (uint j0 = 0; j0 < valid; j0 += 8) {
            uint n = att_lanes(j0, valid);
            float8 stored = att_gload8(p + j0, n, 0.0f), p8 = fabs(stored);
            float8 f8 = select((float8)(keepf), (float8)0.0f, signbit(stored) | (lane >= (int8)((int)n)));
            float8 x8 = 0.0f, pd8 = p8 * f8;
            for (uint c = 0; c < hn; ++c) {
                float g = go[c];
                x8 = fma((float8)(g), vload8(0, vt + c * S8 + j0), x8);
                vstore8(fma(pd8, (float8)(g), vload8(0, dvt + c * S8 + j0)), 0, dvt + c * S8 + j0);
            }
            x8 *= f8;
            vstore8(x8, 0, row + j0);
            d8 = fma(p8, x8, d8);
        }
        float D = att_hsum8(d8);
        /* dS_tj = scale P_tj (x_tj - D_t): dQ_t += sum_j dS_tj k_j, dK_j += dS_tj q_t */
        __global float *gq = dqb + t * ld_q;
        for (uint c0 = 0; c0 < hn; c0 += 8) {
            uint w = min(hn - c0, 8u);
            float8 a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;
            float qc[8];
            for (uint c = 0; c < 8; ++c) qc[c] = c < w ? qr[c0 + c] : 0.0f;
            for (uint j0 = 0; j0 < valid; j0 += 8) {
                uint n = att_lanes(j0, valid);
                float8 s8 = scale * fabs(att_gload8(p + j0, n, 0.0f)) * (vload8(0, row + j0) - D);
                s8 = select((float8)0.0f, s8, lane < (int8)((int)n));
                __local float *kc = kt + c0 * S8 + j0, *dkc = dkt + c0 * S8 + j0;
#define ATT_SERIAL_COL(i, acc)                                                                                    \
    if (i < w) {                                                                                                  \
        acc = fma(s8, vload8(0, kc + i * S8), acc);                                                               \
        vstore8(fma(s8, (float8)(qc[i]), vload8(0, dkc + i * S8)), 0, dkc + i * S8);                              \
    }
                ATT_SERIAL_COL(0, a0) ATT_SERIAL_COL(1, a1) ATT_SERIAL_COL(2, a2) ATT_SERIAL_COL(3, a3)
                ATT_SERIAL_COL(4, a4) ATT_SERIAL_COL(5, a5) ATT_SERIAL_COL(6, a6) ATT_SERIAL_COL(7, a7)
#undef ATT_SERIAL_COL
            }
            float8 sums = (float8)(att_hsum8(a0), att_hsum8(a1), att_hsum8(a2), att_hsum8(a3), att_hsum8(a4),
                                   att_hsum8(a5), att_hsum8(a6), att_hsum8(a7));
            att_put8(gq + c0, w, sums, true);
        }
    }

    /* dK, dV back to their rows */
    for (uint j = 0; j < Sn; ++j)
        for (uint c = 0; c < hn; ++c) {
            dkb[j * ld_k + c] += dkt[c * S8 + j];
            dvb[j * ld_v + c] += dvt[c * S8 + j];
        }
}
