/* Local prototype term of the heterogeneity loss (dc_ref_local_proto_* in ref_align.c):
 * every sample of modality i against the prototypes of each other modality j, weighted
 * by its own responsibilities gamma_i. Pair index p = 0..5 runs over the ordered pairs
 * (0,1), (0,2), (1,0), (1,2), (2,0), (2,1). */

#define PROTO_X(m) ((m) == 0 ? VIEW(xl) : (m) == 1 ? VIEW(xa) : VIEW(xv))

/* 1 / max(var, floor) with mahalanobis, else 1. */
inline hreal proto_inv_var(__global const float *var, ulong i, uint maha, hreal var_floor) {
    return maha ? HR(1.0) / fmax((hreal)var[i], var_floor) : HR(1.0);
}

/* loss[0] = L_proto, in one work-group (a power-of-two local size). */
__kernel void local_proto_fwd(__global float *loss, ulong loss_off, __global const float *xl, ulong xl_off,
                              __global const float *xa, ulong xa_off, __global const float *xv, ulong xv_off,
                              __global const float *gamma, ulong gamma_off, __global const float *mu, ulong mu_off,
                              __global const float *var, ulong var_off, ulong B, ulong d, ulong K, uint red_sum,
                              uint maha, float floor_hi, float floor_lo, __local hreal *scratch) {
    const ulong lid = get_local_id(0), L = get_local_size(0), bk = B * K;
    const hreal var_floor = (hreal)floor_hi + (hreal)floor_lo;
    hreal acc = 0;
    for (ulong idx = lid; idx < 6 * bk; idx += L) {
        ulong p = idx / bk, n = (idx / K) % B, k = idx % K, i = p / 2, j = p % 2 < i ? p % 2 : p % 2 + 1;
        __global const float *x = PROTO_X(i) + n * d;
        __global const float *mj = VIEW(mu) + (j * K + k) * d;
        hreal c = 0;
        for (ulong e = 0; e < d; ++e) {
            hreal t = (hreal)x[e] - (hreal)mj[e];
            c += t * t * proto_inv_var(VIEW(var), (j * K + k) * d + e, maha, var_floor);
        }
        acc += (hreal)VIEW(gamma)[i * bk + n * K + k] * c;
    }
    acc = hete_group_sum(acc, scratch);
    const hreal sc = red_sum ? HR(1.0) : HR(1.0) / (hreal)d;
    if (lid == 0) VIEW(loss)[0] = (float)(acc * sc / (hreal)B / HR(6.0));
}

/* One work-item per gradient element: dx (3, B, d), then dmu and dvar (3, K, d), then
 * dgamma (3, B, K); each sums over the pairs it takes part in. */
__kernel void local_proto_bwd(__global float *dxl, ulong dxl_off, __global float *dxa, ulong dxa_off,
                              __global float *dxv, ulong dxv_off, __global float *dgamma, ulong dgamma_off,
                              __global float *dmu, ulong dmu_off, __global float *dvar, ulong dvar_off,
                              __global const float *xl, ulong xl_off, __global const float *xa, ulong xa_off,
                              __global const float *xv, ulong xv_off, __global const float *gamma, ulong gamma_off,
                              __global const float *mu, ulong mu_off, __global const float *var, ulong var_off,
                              ulong B, ulong d, ulong K, uint red_sum, uint maha, float floor_hi, float floor_lo,
                              float dloss) {
    const ulong bd = B * d, kd = K * d, bk = B * K;
    ulong idx = get_global_id(0);
    if (idx >= 3 * (bd + kd + bk)) return;
    const hreal var_floor = (hreal)floor_hi + (hreal)floor_lo;
    const hreal g0 = (hreal)dloss * (red_sum ? HR(1.0) : HR(1.0) / (hreal)d) / (hreal)B / HR(6.0);
    __global const float *G = VIEW(gamma), *MU = VIEW(mu), *VAR = VIEW(var);
    if (idx < 3 * bd) { /* dx_i[n, e] */
        ulong i = idx / bd, n = (idx / d) % B, e = idx % d;
        hreal xv_ = PROTO_X(i)[n * d + e], acc = 0;
        for (ulong j = 0; j < 3; ++j) {
            if (j == i) continue;
            for (ulong k = 0; k < K; ++k) {
                ulong q = (j * K + k) * d + e;
                acc += (hreal)G[i * bk + n * K + k] * (xv_ - (hreal)MU[q]) * proto_inv_var(VAR, q, maha, var_floor);
            }
        }
        __global float *dx = i == 0 ? VIEW(dxl) : i == 1 ? VIEW(dxa) : VIEW(dxv);
        dx[n * d + e] += (float)(HR(2.0) * g0 * acc);
        return;
    }
    idx -= 3 * bd;
    if (idx < 3 * kd) { /* dmu_j[k, e], dvar_j[k, e] */
        ulong j = idx / kd, k = (idx / d) % K, e = idx % d;
        hreal m = MU[idx], vr = VAR[idx], iv = proto_inv_var(VAR, idx, maha, var_floor), am = 0, av = 0;
        for (ulong i = 0; i < 3; ++i) {
            if (i == j) continue;
            __global const float *x = PROTO_X(i);
            for (ulong n = 0; n < B; ++n) {
                hreal gk = G[i * bk + n * K + k], t = (hreal)x[n * d + e] - m;
                am += gk * t;
                av += gk * t * t;
            }
        }
        VIEW(dmu)[idx] -= (float)(HR(2.0) * g0 * am * iv);
        if (maha && vr >= var_floor) VIEW(dvar)[idx] -= (float)(g0 * av * iv * iv);
        return;
    }
    idx -= 3 * kd;
    { /* dgamma_i[n, k] */
        ulong i = idx / bk, n = (idx / K) % B, k = idx % K;
        __global const float *x = PROTO_X(i) + n * d;
        hreal c = 0;
        for (ulong j = 0; j < 3; ++j) {
            if (j == i) continue;
            for (ulong e = 0; e < d; ++e) {
                ulong q = (j * K + k) * d + e;
                hreal t = (hreal)x[e] - (hreal)MU[q];
                c += t * t * proto_inv_var(VAR, q, maha, var_floor);
            }
        }
        VIEW(dgamma)[i * bk + n * K + k] += (float)(g0 * c);
    }
}
