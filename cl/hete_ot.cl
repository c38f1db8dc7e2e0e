/* W2 prototype costs of the modality pairs (l,a), (l,v), (a,v), the joint cost and the
 * three-marginal entropic Sinkhorn, forward and backward through every iteration, in one
 * work-group. Mirrors dc_ref_w2_cost_*, dc_ref_sinkhorn_* (ref_align.c). The K^3 joint
 * arrays are spread over the work-items; each u, v, w update gives one work-item per
 * index (K of them) a K^2 contraction. */

/* The tape, in hreal units: pair costs, joint cost C, kernel before and after its floor
 * (E, G), plan P, dL/dP, dG, dC, per iteration u, v, w and their denominators' sums, a
 * vector of ones, the adjoints of u, v, w, a K-vector of d/dsum, dC per pair, dnu. */
struct ot_tape {
    __global hreal *c2, *C, *E, *G, *P, *dP, *dG, *dC, *it, *ones, *du, *dv, *dw, *gs, *dc2, *dnu;
};

inline struct ot_tape ot_tape_at(__global hreal *w, ulong K, ulong T) {
    struct ot_tape t;
    ulong k3 = K * K * K;
    t.c2 = w, w += 3 * K * K;
    t.C = w, w += k3;
    t.E = w, w += k3;
    t.G = w, w += k3;
    t.P = w, w += k3;
    t.dP = w, w += k3;
    t.dG = w, w += k3;
    t.dC = w, w += k3;
    t.it = w, w += 6 * T * K;
    t.ones = w, w += K;
    t.du = w, w += K;
    t.dv = w, w += K;
    t.dw = w, w += K;
    t.gs = w, w += K;
    t.dc2 = w, w += 3 * K * K;
    t.dnu = w;
    return t;
}

#define OT_SYNC() barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE)

/* out[i] = sum over the two other indices of G y z, for the mode (0: a, 1: b, 2: c). */
inline hreal ot_contract(__global const hreal *G, __global const hreal *y, __global const hreal *z, ulong K, ulong i,
                         int mode) {
    hreal s = 0;
    for (ulong p = 0; p < K; ++p)
        for (ulong q = 0; q < K; ++q) {
            ulong idx = mode == 0 ? (i * K + p) * K + q : mode == 1 ? (p * K + i) * K + q : (p * K + q) * K + i;
            s += G[idx] * y[p] * z[q];
        }
    return s;
}

/* loss[0] = L_OT of the GMM outputs mu, var (3, K, d) and nu (3, K). */
__kernel void sinkhorn_fwd(__global float *loss, ulong loss_off, __global float *tape, ulong tape_off,
                           __global const float *mu, ulong mu_off, __global const float *var, ulong var_off,
                           __global const float *nu, ulong nu_off, ulong d, ulong K, ulong T, float lam_hi,
                           float lam_lo, uint red_sum, __local hreal *scratch) {
    const ulong lid = get_local_id(0), L = get_local_size(0), kk = K * K, k3 = kk * K, kd = K * d;
    struct ot_tape t = ot_tape_at((__global hreal *)VIEW(tape), K, T);
    __global const float *M = VIEW(mu), *V = VIEW(var), *nul = VIEW(nu), *nua = nul + K, *nuv = nul + 2 * K;
    const hreal lam = (hreal)lam_hi + (hreal)lam_lo, eps = fmax(lam, HR(1e-6));
    const hreal sc = red_sum ? HR(1.0) : HR(1.0) / (hreal)d;

    for (ulong i = lid; i < 3 * kk; i += L) { /* W2 cost of pair p between prototypes a and b */
        ulong p = i / kk, a = (i / K) % K, b = i % K, mi = p == 2 ? 1 : 0, mj = p == 0 ? 1 : 2;
        hreal sm = 0, sv = 0;
        for (ulong j = 0; j < d; ++j) {
            hreal dm = (hreal)M[mi * kd + a * d + j] - (hreal)M[mj * kd + b * d + j];
            hreal vi = V[mi * kd + a * d + j], vj = V[mj * kd + b * d + j];
            sm += dm * dm;
            sv += vi + vj - HR(2.0) * sqrt(vi * vj + HR(1e-8));
        }
        t.c2[i] = sm * sc + sv * sc;
    }
    for (ulong i = lid; i < K; i += L) t.ones[i] = 1;
    OT_SYNC();
    for (ulong i = lid; i < k3; i += L) {
        ulong a = i / kk, b = (i / K) % K, c = i % K;
        hreal cost = t.c2[a * K + b] + t.c2[kk + a * K + c] + t.c2[2 * kk + b * K + c];
        t.C[i] = cost;
        t.E[i] = exp(-cost / eps);
        t.G[i] = fmax(t.E[i], HR(1e-30));
    }
    OT_SYNC();
    __global const hreal *u = t.ones, *v = t.ones, *w = t.ones;
    for (ulong it = 0; it < T; ++it) {
        __global hreal *ut = t.it + it * 6 * K, *vt = ut + K, *wt = vt + K, *su = wt + K, *sv = su + K, *sw = sv + K;
        for (ulong a = lid; a < K; a += L) {
            su[a] = ot_contract(t.G, v, w, K, a, 0);
            ut[a] = (hreal)nul[a] / (su[a] + HR(1e-8));
        }
        OT_SYNC();
        for (ulong b = lid; b < K; b += L) {
            sv[b] = ot_contract(t.G, ut, w, K, b, 1);
            vt[b] = (hreal)nua[b] / (sv[b] + HR(1e-8));
        }
        OT_SYNC();
        for (ulong c = lid; c < K; c += L) {
            sw[c] = ot_contract(t.G, ut, vt, K, c, 2);
            wt[c] = (hreal)nuv[c] / (sw[c] + HR(1e-8));
        }
        OT_SYNC();
        u = ut, v = vt, w = wt;
    }
    hreal lc = 0, le = 0;
    for (ulong i = lid; i < k3; i += L) {
        ulong a = i / kk, b = (i / K) % K, c = i % K;
        hreal p = u[a] * v[b] * w[c] * t.G[i];
        t.P[i] = p;
        lc += p * t.C[i];
        le += p * (log(fmax(p, HR(1e-8))) - HR(1.0));
    }
    lc = hete_group_sum(lc, scratch);
    le = hete_group_sum(le, scratch);
    if (lid == 0) VIEW(loss)[0] = (float)(lc + lam * le);
}

/* dmu, dvar (3, K, d) and dnu (3, K) += dloss * dL_OT/d{mu, var, nu}. */
__kernel void sinkhorn_bwd(__global float *dmu, ulong dmu_off, __global float *dvar, ulong dvar_off,
                           __global float *dnu, ulong dnu_off, __global float *tape, ulong tape_off,
                           __global const float *mu, ulong mu_off, __global const float *var, ulong var_off,
                           __global const float *nu, ulong nu_off, ulong d, ulong K, ulong T, float lam_hi,
                           float lam_lo, uint red_sum, float dloss) {
    const ulong lid = get_local_id(0), L = get_local_size(0), kk = K * K, k3 = kk * K, kd = K * d;
    struct ot_tape t = ot_tape_at((__global hreal *)VIEW(tape), K, T);
    __global const float *M = VIEW(mu), *V = VIEW(var);
    const hreal lam = (hreal)lam_hi + (hreal)lam_lo, eps = fmax(lam, HR(1e-6)), dl = dloss;
    const hreal sc = red_sum ? HR(1.0) : HR(1.0) / (hreal)d;
    __global hreal *G = t.G, *du = t.du, *dv = t.dv, *dw = t.dw, *gs = t.gs;
    __global hreal *dnul = t.dnu, *dnua = t.dnu + K, *dnuv = t.dnu + 2 * K;
    __global const hreal *u = T ? t.it + (T - 1) * 6 * K : t.ones, *v = T ? u + K : t.ones, *w = T ? u + 2 * K : t.ones;

    /* P = u v w G; L_OT = sum P C + lam sum P (log max(P, 1e-8) - 1) */
    for (ulong i = lid; i < k3; i += L) {
        ulong a = i / kk, b = (i / K) % K, c = i % K;
        hreal p = t.P[i];
        hreal dp = dl * (t.C[i] + lam * (log(fmax(p, HR(1e-8))) - HR(1.0) + (p >= HR(1e-8) ? HR(1.0) : HR(0.0))));
        t.dP[i] = dp;
        t.dC[i] = dl * p;
        t.dG[i] = dp * u[a] * v[b] * w[c];
    }
    for (ulong i = lid; i < 3 * K; i += L) t.dnu[i] = 0;
    OT_SYNC();
    for (ulong i = lid; i < K; i += L) {
        hreal sa = 0, sb = 0, sc3 = 0;
        for (ulong p = 0; p < K; ++p)
            for (ulong q = 0; q < K; ++q) {
                ulong ia = (i * K + p) * K + q, ib = (p * K + i) * K + q, ic = (p * K + q) * K + i;
                sa += t.dP[ia] * G[ia] * v[p] * w[q];
                sb += t.dP[ib] * G[ib] * u[p] * w[q];
                sc3 += t.dP[ic] * G[ic] * u[p] * v[q];
            }
        du[i] = sa, dv[i] = sb, dw[i] = sc3;
    }
    OT_SYNC();

    for (ulong it = T; it-- > 0;) {
        __global const hreal *ut = t.it + it * 6 * K, *vt = ut + K, *wt = vt + K, *su = wt + K, *sv = su + K,
                             *sw = sv + K;
        __global const hreal *vp = it ? t.it + (it - 1) * 6 * K + K : t.ones;
        __global const hreal *wp = it ? t.it + (it - 1) * 6 * K + 2 * K : t.ones;
        /* w_t = nu_v / (sw + 1e-8), sw_c = sum_ab G u_t v_t */
        for (ulong c = lid; c < K; c += L) {
            hreal den = sw[c] + HR(1e-8);
            dnuv[c] += dw[c] / den;
            gs[c] = -dw[c] * wt[c] / den;
        }
        OT_SYNC();
        for (ulong i = lid; i < k3; i += L) t.dG[i] += gs[i % K] * ut[i / kk] * vt[(i / K) % K];
        for (ulong a = lid; a < K; a += L) du[a] += ot_contract(G, vt, gs, K, a, 0);
        for (ulong b = lid; b < K; b += L) dv[b] += ot_contract(G, ut, gs, K, b, 1);
        for (ulong c = lid; c < K; c += L) dw[c] = 0;
        OT_SYNC();
        /* v_t = nu_a / (sv + 1e-8), sv_b = sum_ac G u_t w_{t-1} */
        for (ulong b = lid; b < K; b += L) {
            hreal den = sv[b] + HR(1e-8);
            dnua[b] += dv[b] / den;
            gs[b] = -dv[b] * vt[b] / den;
        }
        OT_SYNC();
        for (ulong i = lid; i < k3; i += L) t.dG[i] += gs[(i / K) % K] * ut[i / kk] * wp[i % K];
        for (ulong a = lid; a < K; a += L) du[a] += ot_contract(G, gs, wp, K, a, 0);
        for (ulong c = lid; c < K; c += L) dw[c] += ot_contract(G, ut, gs, K, c, 2);
        OT_SYNC();
        /* u_t = nu_l / (su + 1e-8), su_a = sum_bc G v_{t-1} w_{t-1} */
        for (ulong a = lid; a < K; a += L) {
            hreal den = su[a] + HR(1e-8);
            dnul[a] += du[a] / den;
            gs[a] = -du[a] * ut[a] / den;
        }
        OT_SYNC();
        for (ulong i = lid; i < k3; i += L) t.dG[i] += gs[i / kk] * vp[(i / K) % K] * wp[i % K];
        for (ulong b = lid; b < K; b += L) dv[b] = ot_contract(G, gs, wp, K, b, 1);
        for (ulong c = lid; c < K; c += L) dw[c] += ot_contract(G, gs, vp, K, c, 2);
        for (ulong a = lid; a < K; a += L) du[a] = 0;
        OT_SYNC();
    }
    /* G = max(E, 1e-30), E = exp(-C / eps) */
    for (ulong i = lid; i < k3; i += L)
        if (t.E[i] >= HR(1e-30)) t.dC[i] += t.dG[i] * t.E[i] * (-HR(1.0) / eps);
    OT_SYNC();
    /* C[a,b,c] = C_la[a,b] + C_lv[a,c] + C_av[b,c] */
    for (ulong i = lid; i < 3 * kk; i += L) {
        ulong p = i / kk, x = (i / K) % K, y = i % K;
        hreal s = 0;
        for (ulong z = 0; z < K; ++z) s += t.dC[p == 0 ? (x * K + y) * K + z : p == 1 ? (x * K + z) * K + y : (z * K + x) * K + y];
        t.dc2[i] = s;
    }
    OT_SYNC();
    /* W2 backward: modality m's prototype k appears in two pairs, as first or second */
    for (ulong i = lid; i < 3 * kd; i += L) {
        ulong m = i / kd, k = (i / d) % K, j = i % d;
        hreal gm = 0, gv = 0, mm = M[i], vm = V[i];
        for (ulong p = 0; p < 3; ++p) {
            ulong mi = p == 2 ? 1 : 0, mj = p == 0 ? 1 : 2;
            if (mi != m && mj != m) continue;
            bool first = mi == m;
            ulong q = first ? mj : mi;
            for (ulong b = 0; b < K; ++b) {
                hreal g = (first ? t.dc2[p * kk + k * K + b] : t.dc2[p * kk + b * K + k]) * sc;
                hreal dm = mm - (hreal)M[q * kd + b * d + j], vq = V[q * kd + b * d + j];
                hreal rs = HR(1.0) / sqrt(vm * vq + HR(1e-8));
                gm += HR(2.0) * g * dm;
                gv += g * (HR(1.0) - vq * rs);
            }
        }
        VIEW(dmu)[i] += (float)gm;
        VIEW(dvar)[i] += (float)gv;
    }
    for (ulong i = lid; i < 3 * K; i += L) VIEW(dnu)[i] += (float)t.dnu[i];
}
