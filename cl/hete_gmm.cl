/* Differentiable GMM-EM of the three modalities, one work-group per modality (group 0
 * = l, 1 = a, 2 = v), every EM round inside the launch; the backward replays the rounds
 * in reverse from the tape. Mirrors dc_ref_gmm_fwd / dc_ref_gmm_bwd (ref_align.c); the
 * tape layout extends the oracle's. Intermediates live in the tape (global memory),
 * phases are separated by work-group barriers. Letters: B rows, d features, K
 * prototypes, R rounds. */

/* One modality's tape, in hreal units from its base. Round r = 0..R holds theta_r
 * (pi, mu, var, vraw) entering E-step r and its gamma_r. */
struct gmm_tape {
    __global hreal *pi, *mu, *var, *vraw, *gamma, *nraw, *nu_raw;
    __global hreal *dpi, *dmu, *dvar, *dgamma, *dl, *ds1, *ds2, *dx, *logdet, *dn, *mean;
};

inline struct gmm_tape gmm_tape_at(__global hreal *w, ulong B, ulong d, ulong K, ulong R) {
    struct gmm_tape g;
    ulong r1 = R + 1;
    g.pi = w, w += r1 * K;
    g.mu = w, w += r1 * K * d;
    g.var = w, w += r1 * K * d;
    g.vraw = w, w += r1 * K * d;
    g.gamma = w, w += r1 * B * K;
    g.nraw = w, w += r1 * K;
    g.nu_raw = w, w += K + 1;
    g.dpi = w, w += K;
    g.dmu = w, w += K * d;
    g.dvar = w, w += K * d;
    g.dgamma = w, w += B * K;
    g.dl = w, w += B * K;
    g.ds1 = w, w += K * d;
    g.ds2 = w, w += K * d;
    g.dx = w, w += B * d;
    g.logdet = w, w += K;
    g.dn = w, w += K;
    g.mean = w;
    return g;
}

/* Row of x that initialises prototype k, bit-exact with dc_ref_gmm_init_row: torch's
 * float32 linspace (no fused multiply-add), rounded half to even. The float quotient
 * is formed in double where available: correctly rounded for these small integers. */
#pragma OPENCL FP_CONTRACT OFF
inline ulong gmm_init_row(ulong k, ulong B, ulong K) {
    if (B < K) return k % B;
    if (K == 1) return 0;
    float end = (float)(B - 1);
#if HETE_FP64
    float step = (float)((double)end / (double)(K - 1));
#else
    float step = end / (float)(K - 1);
#endif
    float val = k < K / 2 ? step * (float)k : end - step * (float)(K - 1 - k);
    return (ulong)rint(val);
}
#pragma OPENCL FP_CONTRACT ON

#define GMM_SYNC() barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE)

/* E-step r: gamma_r = softmax_k of the log-densities under theta_r. */
inline void gmm_estep(struct gmm_tape *g, ulong r, __global const float *x, ulong B, ulong d, ulong K) {
    const ulong lid = get_local_id(0), L = get_local_size(0);
    __global hreal *pi = g->pi + r * K, *mu = g->mu + r * K * d, *var = g->var + r * K * d;
    __global hreal *gam = g->gamma + r * B * K;
    const hreal log_norm = (hreal)d * log(HR(6.283185307179586));
    for (ulong k = lid; k < K; k += L) {
        hreal s = 0;
        for (ulong j = 0; j < d; ++j) s += log(var[k * d + j]);
        g->logdet[k] = s;
    }
    GMM_SYNC();
    for (ulong i = lid; i < B * K; i += L) {
        ulong n = i / K, k = i % K;
        hreal maha = 0;
        for (ulong j = 0; j < d; ++j) {
            hreal t = (hreal)x[n * d + j] - mu[k * d + j];
            maha += t * t / var[k * d + j];
        }
        gam[i] = log(fmax(pi[k], HR(1e-8))) - HR(0.5) * (maha + g->logdet[k] + log_norm);
    }
    GMM_SYNC();
    for (ulong n = lid; n < B; n += L) {
        __global hreal *row = gam + n * K;
        hreal mx = row[0], s = 0;
        for (ulong k = 1; k < K; ++k) mx = fmax(mx, row[k]);
        for (ulong k = 0; k < K; ++k) s += (row[k] = exp(row[k] - mx));
        for (ulong k = 0; k < K; ++k) row[k] /= s;
    }
    GMM_SYNC();
}

/* M-step r: theta_{r+1} from gamma_r. */
inline void gmm_mstep(struct gmm_tape *g, ulong r, __global const float *x, ulong B, ulong d, ulong K,
                      hreal var_floor) {
    const ulong lid = get_local_id(0), L = get_local_size(0);
    __global hreal *gam = g->gamma + r * B * K, *nraw = g->nraw + r * K;
    __global hreal *pi1 = g->pi + (r + 1) * K, *mu1 = g->mu + (r + 1) * K * d;
    __global hreal *var1 = g->var + (r + 1) * K * d, *vraw1 = g->vraw + (r + 1) * K * d;
    for (ulong k = lid; k < K; k += L) {
        hreal s = 0;
        for (ulong n = 0; n < B; ++n) s += gam[n * K + k];
        nraw[k] = s;
        pi1[k] = fmax(s, HR(1e-6)) / (hreal)B;
    }
    GMM_SYNC();
    for (ulong i = lid; i < K * d; i += L) {
        ulong k = i / d, j = i % d;
        hreal nk = fmax(nraw[k], HR(1e-6)), s1 = 0, s2 = 0;
        for (ulong n = 0; n < B; ++n) {
            hreal gk = gam[n * K + k], xv = x[n * d + j];
            s1 += gk * xv;
            s2 += gk * xv * xv;
        }
        hreal m = s1 / nk, vr = s2 / nk - m * m;
#if !HETE_FP64
        /* In float, S2/N - m^2 cancels badly for tight clusters: use the same quantity as
         * sum gamma (x - m)^2 / N + m^2 (1 - S0/N), which is exact in exact arithmetic. */
        hreal s0 = 0, c2 = 0;
        for (ulong n = 0; n < B; ++n) {
            hreal gk = gam[n * K + k], t = (hreal)x[n * d + j] - m;
            s0 += gk;
            c2 += gk * t * t;
        }
        vr = c2 / nk + m * m * (HR(1.0) - s0 / nk);
#endif
        mu1[i] = m;
        vraw1[i] = vr;
        var1[i] = fmax(vr, var_floor);
    }
    GMM_SYNC();
}

#define GMM_X(m) ((m) == 0 ? VIEW(xl) : (m) == 1 ? VIEW(xa) : VIEW(xv))

/* Outputs are stacked per modality: gamma (3, B, K), mu and var (3, K, d), nu (3, K).
 * tape: 8-byte aligned, units hreal per modality. */
__kernel void gmm_fwd(__global float *gamma, ulong gamma_off, __global float *mu, ulong mu_off, __global float *var,
                      ulong var_off, __global float *nu, ulong nu_off, __global float *tape, ulong tape_off,
                      __global const float *xl, ulong xl_off, __global const float *xa, ulong xa_off,
                      __global const float *xv, ulong xv_off, ulong B, ulong d, ulong K, ulong R, ulong units,
                      float floor_hi, float floor_lo) {
    const ulong m = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    __global const float *x = GMM_X(m);
    struct gmm_tape g = gmm_tape_at((__global hreal *)VIEW(tape) + m * units, B, d, K, R);
    const hreal var_floor = (hreal)floor_hi + (hreal)floor_lo;

    /* theta_0: mu_k = a row of x, var = population variance clamped, pi = 1/K */
    for (ulong j = lid; j < d; j += L) {
        hreal s = 0, v = 0;
        for (ulong n = 0; n < B; ++n) s += x[n * d + j];
        hreal mean = s / (hreal)B;
        for (ulong n = 0; n < B; ++n) v += ((hreal)x[n * d + j] - mean) * ((hreal)x[n * d + j] - mean);
        v /= (hreal)B;
        g.mean[j] = mean;
        for (ulong k = 0; k < K; ++k) {
            g.vraw[k * d + j] = v;
            g.var[k * d + j] = fmax(v, var_floor);
        }
    }
    for (ulong k = lid; k < K; k += L) g.pi[k] = HR(1.0) / (hreal)K;
    for (ulong i = lid; i < K * d; i += L) g.mu[i] = x[gmm_init_row(i / d, B, K) * d + i % d];
    GMM_SYNC();

    for (ulong r = 0; r <= R; ++r) {
        gmm_estep(&g, r, x, B, d, K);
        if (r < R) gmm_mstep(&g, r, x, B, d, K, var_floor);
    }

    __global hreal *gam = g.gamma + R * B * K;
    for (ulong i = lid; i < B * K; i += L) VIEW(gamma)[m * B * K + i] = (float)gam[i];
    for (ulong i = lid; i < K * d; i += L) {
        VIEW(mu)[m * K * d + i] = (float)g.mu[R * K * d + i];
        VIEW(var)[m * K * d + i] = (float)g.var[R * K * d + i];
    }
    for (ulong k = lid; k < K; k += L) {
        hreal s = 0;
        for (ulong n = 0; n < B; ++n) s += gam[n * K + k];
        g.nu_raw[k] = s / (hreal)B;
    }
    GMM_SYNC();
    hreal tot = 0;
    for (ulong k = 0; k < K; ++k) tot += g.nu_raw[k];
    for (ulong k = lid; k < K; k += L) VIEW(nu)[m * K + k] = (float)(g.nu_raw[k] / fmax(tot, HR(1e-8)));
    if (lid == 0) g.nu_raw[K] = tot;
}

/* E-step r backward: from dgamma (adjoint of gamma_r) into dpi, dmu, dvar (theta_r) and dx. */
inline void gmm_estep_bwd(struct gmm_tape *g, ulong r, __global const float *x, ulong B, ulong d, ulong K) {
    const ulong lid = get_local_id(0), L = get_local_size(0);
    __global hreal *pi = g->pi + r * K, *mu = g->mu + r * K * d, *var = g->var + r * K * d;
    __global hreal *gam = g->gamma + r * B * K;
    for (ulong n = lid; n < B; n += L) { /* softmax backward */
        hreal dot = 0;
        for (ulong k = 0; k < K; ++k) dot += gam[n * K + k] * g->dgamma[n * K + k];
        for (ulong k = 0; k < K; ++k) g->dl[n * K + k] = gam[n * K + k] * (g->dgamma[n * K + k] - dot);
    }
    GMM_SYNC();
    for (ulong k = lid; k < K; k += L) {
        hreal sdl = 0;
        for (ulong n = 0; n < B; ++n) sdl += g->dl[n * K + k];
        if (pi[k] >= HR(1e-8)) g->dpi[k] += sdl / pi[k];
    }
    for (ulong i = lid; i < K * d; i += L) {
        ulong k = i / d, j = i % d;
        hreal iv = HR(1.0) / var[i], gm = 0, gv = 0;
        for (ulong n = 0; n < B; ++n) {
            hreal t = ((hreal)x[n * d + j] - mu[i]) * iv, gl = g->dl[n * K + k];
            gm += gl * t;
            gv += gl * HR(0.5) * (t * t - iv);
        }
        g->dmu[i] += gm;
        g->dvar[i] += gv;
    }
    for (ulong i = lid; i < B * d; i += L) {
        ulong n = i / d, j = i % d;
        hreal acc = 0;
        for (ulong k = 0; k < K; ++k) acc += g->dl[n * K + k] * (((hreal)x[i] - mu[k * d + j]) * (HR(1.0) / var[k * d + j]));
        g->dx[i] -= acc;
    }
    GMM_SYNC();
}

/* M-step backward of round r-1 (theta_r from gamma_{r-1}): from dpi, dmu, dvar into
 * dgamma (overwritten: the adjoint of gamma_{r-1}) and dx; then zeroes dpi, dmu, dvar
 * (theta_{r-1} is used by E-step r-1 only). */
inline void gmm_mstep_bwd(struct gmm_tape *g, ulong r, __global const float *x, ulong B, ulong d, ulong K,
                          hreal var_floor) {
    const ulong lid = get_local_id(0), L = get_local_size(0);
    __global hreal *mu = g->mu + r * K * d, *vraw = g->vraw + r * K * d;
    __global hreal *nraw = g->nraw + (r - 1) * K, *gam = g->gamma + (r - 1) * B * K;
    for (ulong i = lid; i < K * d; i += L) {
        ulong k = i / d;
        hreal nk = fmax(nraw[k], HR(1e-6)), m = mu[i];
        hreal dm2 = vraw[i] >= var_floor ? g->dvar[i] : HR(0.0); /* d/d(S2/N) */
        g->ds1[i] = (g->dmu[i] - HR(2.0) * m * dm2) / nk;       /* d/dS1 */
        g->ds2[i] = dm2 / nk;                                   /* d/dS2 */
    }
    GMM_SYNC();
    for (ulong k = lid; k < K; k += L) {
        hreal dn = g->dpi[k] / (hreal)B;
        for (ulong j = 0; j < d; ++j) {
            ulong i = k * d + j;
            dn -= g->ds1[i] * mu[i] + g->ds2[i] * (vraw[i] + mu[i] * mu[i]);
        }
        g->dn[k] = nraw[k] >= HR(1e-6) ? dn : HR(0.0);
    }
    GMM_SYNC();
    for (ulong i = lid; i < B * K; i += L) {
        ulong n = i / K, k = i % K;
        hreal acc = g->dn[k];
        for (ulong j = 0; j < d; ++j) {
            hreal xv = x[n * d + j];
            acc += g->ds1[k * d + j] * xv + g->ds2[k * d + j] * xv * xv;
        }
        g->dgamma[i] = acc;
    }
    for (ulong i = lid; i < B * d; i += L) {
        ulong n = i / d, j = i % d;
        hreal xv = x[i], acc = 0;
        for (ulong k = 0; k < K; ++k) acc += gam[n * K + k] * (g->ds1[k * d + j] + HR(2.0) * g->ds2[k * d + j] * xv);
        g->dx[i] += acc;
    }
    for (ulong k = lid; k < K; k += L) g->dpi[k] = 0;
    for (ulong i = lid; i < K * d; i += L) g->dmu[i] = g->dvar[i] = 0;
    GMM_SYNC();
}

/* dx_m += dL/dx_m from the upstream dgamma, dmu, dvar, dnu (stacked like the outputs). */
__kernel void gmm_bwd(__global float *dxl, ulong dxl_off, __global float *dxa, ulong dxa_off, __global float *dxv,
                      ulong dxv_off, __global const float *dgamma, ulong dgamma_off, __global const float *dmu,
                      ulong dmu_off, __global const float *dvar, ulong dvar_off, __global const float *dnu,
                      ulong dnu_off, __global float *tape, ulong tape_off, __global const float *xl, ulong xl_off,
                      __global const float *xa, ulong xa_off, __global const float *xv, ulong xv_off, ulong B, ulong d,
                      ulong K, ulong R, ulong units, float floor_hi, float floor_lo) {
    const ulong m = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    __global const float *x = GMM_X(m);
    __global float *dxo = m == 0 ? VIEW(dxl) : m == 1 ? VIEW(dxa) : VIEW(dxv);
    __global const float *dg_in = VIEW(dgamma) + m * B * K, *dnu_in = VIEW(dnu) + m * K;
    __global const float *dmu_in = VIEW(dmu) + m * K * d, *dvar_in = VIEW(dvar) + m * K * d;
    struct gmm_tape g = gmm_tape_at((__global hreal *)VIEW(tape) + m * units, B, d, K, R);
    const hreal var_floor = (hreal)floor_hi + (hreal)floor_lo;

    /* the final gamma's adjoint, with nu = mean_n gamma / max(sum, 1e-8) */
    hreal tot = g.nu_raw[K], den = fmax(tot, HR(1e-8)), dot = 0;
    for (ulong k = 0; k < K; ++k) dot += (hreal)dnu_in[k] * g.nu_raw[k];
    hreal dden = tot >= HR(1e-8) ? -dot / (den * den) : HR(0.0);
    for (ulong i = lid; i < B * K; i += L) g.dgamma[i] = (hreal)dg_in[i] + ((hreal)dnu_in[i % K] / den + dden) / (hreal)B;
    for (ulong k = lid; k < K; k += L) g.dpi[k] = 0;
    for (ulong i = lid; i < K * d; i += L) {
        g.dmu[i] = dmu_in[i];
        g.dvar[i] = dvar_in[i];
    }
    for (ulong i = lid; i < B * d; i += L) g.dx[i] = 0;
    GMM_SYNC();

    for (ulong r = R + 1; r-- > 0;) {
        gmm_estep_bwd(&g, r, x, B, d, K);
        if (r == 0) break;
        gmm_mstep_bwd(&g, r, x, B, d, K, var_floor);
    }

    /* init: mu_0[k] = x[row_k], var_0[k, j] = max(population variance_j, floor) */
    for (ulong i = lid; i < B * d; i += L) {
        ulong n = i / d, j = i % d;
        hreal acc = g.dx[i], dv = 0;
        for (ulong k = 0; k < K; ++k) {
            if (gmm_init_row(k, B, K) == n) acc += g.dmu[k * d + j];
            dv += g.dvar[k * d + j];
        }
        if (g.vraw[j] >= var_floor) acc += dv * HR(2.0) * ((hreal)x[i] - g.mean[j]) / (hreal)B;
        dxo[i] += (float)acc;
    }
}
