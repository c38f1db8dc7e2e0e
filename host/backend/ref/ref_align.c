/* Reference heterogeneity alignment loss (spec section 3): GMM-EM, W2 prototype costs,
 * three-marginal Sinkhorn, local prototype term, forward and backward. See ref_align.h
 * for the shapes and the clamp convention. Letters: B rows, d features, K prototypes,
 * R = em_iters, T = ot_iters. */
#include "backend/ref/ref_align.h"

#include <math.h>
#include <string.h>

#define GMM_PI_FLOOR 1e-8     /* log(max(pi, 1e-8)) */
#define GMM_NK_FLOOR 1e-6     /* N_k = max(sum_n gamma, 1e-6) */
#define NU_SUM_FLOOR 1e-8     /* nu / max(sum nu, 1e-8) */
#define W2_SQRT_EPS 1e-8      /* sqrt(var_i var_j + 1e-8) */
#define OT_EPS_FLOOR 1e-6     /* eps = max(lambda_ot, 1e-6) */
#define OT_KERNEL_FLOOR 1e-30 /* G = max(exp(-C/eps), 1e-30) */
#define OT_DENOM_EPS 1e-8     /* u = nu / (sum + 1e-8) */
#define OT_LOG_FLOOR 1e-8     /* log(max(P, 1e-8)) */

/* torch.clamp_min backward: the gradient passes where input >= floor. */
static inline double clamp_pass(double input, double floor) { return input >= floor ? 1.0 : 0.0; }

static inline double red_scale(size_t d, enum dc_hete_reduction red) {
    return red == DC_HETE_REDUCTION_SUM ? 1.0 : 1.0 / (double)d;
}

static int red_valid(enum dc_hete_reduction red) {
    return red == DC_HETE_REDUCTION_MEAN || red == DC_HETE_REDUCTION_SUM;
}

/* ================================ GMM-EM ================================ */

size_t dc_ref_gmm_init_row(size_t k, size_t B, size_t K) {
    if (B < K) return k % B;
    if (K == 1) return 0; /* torch.linspace with one step returns start */
    /* torch.linspace on CPU in float32: step = (end - start) / (steps - 1), the first half
     * as start + step * i, the second half as end - step * (steps - 1 - i). */
    float end = (float)(B - 1);
    float step = end / (float)(K - 1);
    float val = (k < K / 2) ? step * (float)k : end - step * (float)(K - 1 - k);
    return (size_t)nearbyintf(val); /* round half to even, as torch.round */
}

/* Layout of the GMM work buffer. Round r = 0..R holds the parameters theta_r that enter
 * E-step r (theta_0 the init, theta_{r+1} the M-step output of round r) and gamma_r. */
struct gmm_layout {
    double *pi;     /* (R+1, K) */
    double *mu;     /* (R+1, K, d) */
    double *var;    /* (R+1, K, d) clamped */
    double *vraw;   /* (R+1, K, d) before the var_floor clamp (r = 0: init variance) */
    double *gamma;  /* (R+1, B, K) */
    double *nraw;   /* (R+1, K) sum_n gamma_r before the 1e-6 clamp (rounds 0..R-1 used) */
    double *nu_raw; /* (K) mean_n gamma_R; [K] holds its sum */
    /* backward scratch */
    double *dpi, *dmu, *dvar; /* (K), (K, d), (K, d) adjoint of theta_r */
    double *dgamma, *dl;      /* (B, K) */
    double *dv0;              /* (d) gradient of the init variance */
};

size_t dc_ref_gmm_work_len(size_t B, size_t K, size_t d, size_t em_iters) {
    size_t r1 = em_iters + 1;
    return r1 * K * 2 + r1 * K * d * 3 + r1 * B * K + (K + 1) + K + 2 * K * d + 2 * B * K + d;
}

static struct gmm_layout gmm_layout(double *w, size_t B, size_t K, size_t d, size_t R) {
    struct gmm_layout g;
    size_t r1 = R + 1;
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
    g.dv0 = w;
    return g;
}

/* E-step: gamma (B, K) = softmax_k L[n,k], L the log-density of the spec. */
static void gmm_estep(double *gamma, const double *pi, const double *mu, const double *var, const double *x, size_t B,
                      size_t d, size_t K) {
    const double log_norm = (double)d * log(2.0 * 3.14159265358979323846);
    for (size_t k = 0; k < K; ++k) {
        double logdet = 0.0;
        for (size_t j = 0; j < d; ++j) logdet += log(var[k * d + j]);
        for (size_t n = 0; n < B; ++n) {
            double maha = 0.0;
            for (size_t j = 0; j < d; ++j) {
                double t = x[n * d + j] - mu[k * d + j];
                maha += t * t / var[k * d + j];
            }
            gamma[n * K + k] = log(fmax(pi[k], GMM_PI_FLOOR)) - 0.5 * (maha + logdet + log_norm);
        }
    }
    for (size_t n = 0; n < B; ++n) {
        double *g = gamma + n * K, mx = g[0], s = 0.0;
        for (size_t k = 1; k < K; ++k) mx = fmax(mx, g[k]);
        for (size_t k = 0; k < K; ++k) s += (g[k] = exp(g[k] - mx));
        for (size_t k = 0; k < K; ++k) g[k] /= s;
    }
}

/* E-step backward: given dgamma (B, K), adds into dpi (K), dmu, dvar (K, d), dx (B, d).
 * dl (B, K) is scratch for dL/dlogdensity. */
static void gmm_estep_bwd(double *dpi, double *dmu, double *dvar, double *dx, double *dl, const double *dgamma,
                          const double *gamma, const double *pi, const double *mu, const double *var, const double *x,
                          size_t B, size_t d, size_t K) {
    for (size_t n = 0; n < B; ++n) { /* softmax backward */
        double dot = 0.0;
        for (size_t k = 0; k < K; ++k) dot += gamma[n * K + k] * dgamma[n * K + k];
        for (size_t k = 0; k < K; ++k) dl[n * K + k] = gamma[n * K + k] * (dgamma[n * K + k] - dot);
    }
    for (size_t k = 0; k < K; ++k) {
        double sdl = 0.0;
        for (size_t n = 0; n < B; ++n) sdl += dl[n * K + k];
        dpi[k] += sdl * clamp_pass(pi[k], GMM_PI_FLOOR) / fmax(pi[k], GMM_PI_FLOOR);
        for (size_t j = 0; j < d; ++j) {
            double iv = 1.0 / var[k * d + j], gm = 0.0, gv = 0.0;
            for (size_t n = 0; n < B; ++n) {
                double t = (x[n * d + j] - mu[k * d + j]) * iv, g = dl[n * K + k];
                gm += g * t;                  /* d/dmu of -0.5 t^2 var */
                gv += g * 0.5 * (t * t - iv); /* d/dvar of -0.5 (diff^2/var + log var) */
                dx[n * d + j] -= g * t;
            }
            dmu[k * d + j] += gm;
            dvar[k * d + j] += gv;
        }
    }
}

/* M-step: theta (pi, mu, var, vraw, nraw) from gamma (B, K). */
static void gmm_mstep(double *pi, double *mu, double *var, double *vraw, double *nraw, const double *gamma,
                      const double *x, size_t B, size_t d, size_t K, double var_floor) {
    for (size_t k = 0; k < K; ++k) {
        double s = 0.0;
        for (size_t n = 0; n < B; ++n) s += gamma[n * K + k];
        nraw[k] = s;
        double nk = fmax(s, GMM_NK_FLOOR);
        pi[k] = nk / (double)B;
        for (size_t j = 0; j < d; ++j) {
            double s1 = 0.0, s2 = 0.0;
            for (size_t n = 0; n < B; ++n) {
                double g = gamma[n * K + k], xv = x[n * d + j];
                s1 += g * xv;
                s2 += g * xv * xv;
            }
            double m = s1 / nk;
            mu[k * d + j] = m;
            vraw[k * d + j] = s2 / nk - m * m;
            var[k * d + j] = fmax(vraw[k * d + j], var_floor);
        }
    }
}

/* M-step backward: given the adjoint (dpi, dmu, dvar) of its output, overwrites dgamma
 * (B, K) and adds into dx (B, d). */
static void gmm_mstep_bwd(double *dgamma, double *dx, const double *dpi, const double *dmu, const double *dvar,
                          const double *mu, const double *vraw, const double *nraw, const double *gamma,
                          const double *x, size_t B, size_t d, size_t K, double var_floor) {
    for (size_t k = 0; k < K; ++k) {
        double nk = fmax(nraw[k], GMM_NK_FLOOR), dn = dpi[k] / (double)B;
        for (size_t j = 0; j < d; ++j) {
            double m = mu[k * d + j];
            double dm2 = dvar[k * d + j] * clamp_pass(vraw[k * d + j], var_floor); /* d/d(S2/N) */
            double dmt = dmu[k * d + j] - 2.0 * m * dm2;                           /* d/d(S1/N) */
            dn -= (dmt * m + dm2 * (vraw[k * d + j] + m * m)) / nk;
        }
        dn *= clamp_pass(nraw[k], GMM_NK_FLOOR);
        for (size_t n = 0; n < B; ++n) dgamma[n * K + k] = dn;
        for (size_t j = 0; j < d; ++j) {
            double m = mu[k * d + j];
            double dm2 = dvar[k * d + j] * clamp_pass(vraw[k * d + j], var_floor);
            double ds1 = (dmu[k * d + j] - 2.0 * m * dm2) / nk, ds2 = dm2 / nk;
            for (size_t n = 0; n < B; ++n) {
                double xv = x[n * d + j], g = gamma[n * K + k];
                dgamma[n * K + k] += ds1 * xv + ds2 * xv * xv;
                dx[n * d + j] += g * (ds1 + 2.0 * ds2 * xv);
            }
        }
    }
}

dc_status dc_ref_gmm_fwd(double *gamma, double *mu, double *var, double *nu, double *work, const double *x, size_t B,
                         size_t d, size_t K, size_t em_iters, double var_floor) {
    if (!gamma || !mu || !var || !nu || !work || !x || B == 0 || d == 0 || K == 0 || !(var_floor > 0.0) ||
        !isfinite(var_floor))
        return DC_ERR_ARG;
    const size_t R = em_iters;
    struct gmm_layout g = gmm_layout(work, B, K, d, R);

    /* init: theta_0 */
    for (size_t j = 0; j < d; ++j) {
        double s = 0.0, v = 0.0;
        for (size_t n = 0; n < B; ++n) s += x[n * d + j];
        double m = s / (double)B;
        for (size_t n = 0; n < B; ++n) v += (x[n * d + j] - m) * (x[n * d + j] - m);
        v /= (double)B; /* unbiased=False */
        for (size_t k = 0; k < K; ++k) {
            g.vraw[k * d + j] = v;
            g.var[k * d + j] = fmax(v, var_floor);
        }
    }
    for (size_t k = 0; k < K; ++k) {
        g.pi[k] = 1.0 / (double)K;
        memcpy(g.mu + k * d, x + dc_ref_gmm_init_row(k, B, K) * d, d * sizeof(double));
    }

    for (size_t r = 0; r <= R; ++r) {
        const size_t kd = K * d;
        gmm_estep(g.gamma + r * B * K, g.pi + r * K, g.mu + r * kd, g.var + r * kd, x, B, d, K);
        if (r < R)
            gmm_mstep(g.pi + (r + 1) * K, g.mu + (r + 1) * kd, g.var + (r + 1) * kd, g.vraw + (r + 1) * kd,
                      g.nraw + r * K, g.gamma + r * B * K, x, B, d, K, var_floor);
    }
    memcpy(gamma, g.gamma + R * B * K, B * K * sizeof(double));
    memcpy(mu, g.mu + R * K * d, K * d * sizeof(double));
    memcpy(var, g.var + R * K * d, K * d * sizeof(double));

    double tot = 0.0;
    for (size_t k = 0; k < K; ++k) {
        double s = 0.0;
        for (size_t n = 0; n < B; ++n) s += gamma[n * K + k];
        g.nu_raw[k] = s / (double)B;
        tot += g.nu_raw[k];
    }
    g.nu_raw[K] = tot;
    for (size_t k = 0; k < K; ++k) nu[k] = g.nu_raw[k] / fmax(tot, NU_SUM_FLOOR);
    return DC_OK;
}

dc_status dc_ref_gmm_bwd(double *dx, const double *dgamma, const double *dmu, const double *dvar, const double *dnu,
                         double *work, const double *x, size_t B, size_t d, size_t K, size_t em_iters,
                         double var_floor) {
    if (!dx || !work || !x || B == 0 || d == 0 || K == 0 || !(var_floor > 0.0) || !isfinite(var_floor))
        return DC_ERR_ARG;
    const size_t R = em_iters, kd = K * d;
    struct gmm_layout g = gmm_layout(work, B, K, d, R);

    /* upstream gradient of the final gamma, including nu = m / max(sum m, 1e-8) */
    if (dgamma)
        memcpy(g.dgamma, dgamma, B * K * sizeof(double));
    else
        memset(g.dgamma, 0, B * K * sizeof(double));
    if (dnu) {
        double tot = g.nu_raw[K], den = fmax(tot, NU_SUM_FLOOR), dot = 0.0;
        for (size_t k = 0; k < K; ++k) dot += dnu[k] * g.nu_raw[k];
        double dden = -dot / (den * den) * clamp_pass(tot, NU_SUM_FLOOR);
        for (size_t k = 0; k < K; ++k) {
            double dm = dnu[k] / den + dden;
            for (size_t n = 0; n < B; ++n) g.dgamma[n * K + k] += dm / (double)B;
        }
    }
    memset(g.dpi, 0, K * sizeof(double));
    if (dmu)
        memcpy(g.dmu, dmu, kd * sizeof(double));
    else
        memset(g.dmu, 0, kd * sizeof(double));
    if (dvar)
        memcpy(g.dvar, dvar, kd * sizeof(double));
    else
        memset(g.dvar, 0, kd * sizeof(double));

    /* final E-step on theta_R, then each round r = R-1..0: M-step r (theta_{r+1} from
     * gamma_r) and E-step r (gamma_r from theta_r). */
    for (size_t r = R + 1; r-- > 0;) {
        gmm_estep_bwd(g.dpi, g.dmu, g.dvar, dx, g.dl, g.dgamma, g.gamma + r * B * K, g.pi + r * K, g.mu + r * kd,
                      g.var + r * kd, x, B, d, K);
        if (r == 0) break;
        gmm_mstep_bwd(g.dgamma, dx, g.dpi, g.dmu, g.dvar, g.mu + r * kd, g.vraw + r * kd, g.nraw + (r - 1) * K,
                      g.gamma + (r - 1) * B * K, x, B, d, K, var_floor);
        /* theta_{r-1} is only used by E-step r-1: its adjoint starts at zero */
        memset(g.dpi, 0, K * sizeof(double));
        memset(g.dmu, 0, kd * sizeof(double));
        memset(g.dvar, 0, kd * sizeof(double));
    }

    /* init: mu_0[k] = x[row_k]; var_0[k, j] = max(popvar_j, floor); pi_0 constant */
    for (size_t k = 0; k < K; ++k) {
        size_t row = dc_ref_gmm_init_row(k, B, K);
        for (size_t j = 0; j < d; ++j) dx[row * d + j] += g.dmu[k * d + j];
    }
    for (size_t j = 0; j < d; ++j) {
        double dv = 0.0, s = 0.0;
        for (size_t k = 0; k < K; ++k) dv += g.dvar[k * d + j];
        dv *= clamp_pass(g.vraw[j], var_floor);
        for (size_t n = 0; n < B; ++n) s += x[n * d + j];
        double m = s / (double)B;
        for (size_t n = 0; n < B; ++n) dx[n * d + j] += dv * 2.0 * (x[n * d + j] - m) / (double)B;
    }
    return DC_OK;
}

/* ============================ W2 prototype costs ============================ */

dc_status dc_ref_w2_cost_fwd(double *C, const double *mu_i, const double *var_i, const double *mu_j,
                             const double *var_j, size_t K, size_t d, enum dc_hete_reduction red) {
    if (!C || !mu_i || !var_i || !mu_j || !var_j || K == 0 || d == 0 || !red_valid(red)) return DC_ERR_ARG;
    const double sc = red_scale(d, red);
    for (size_t a = 0; a < K; ++a)
        for (size_t b = 0; b < K; ++b) {
            double sm = 0.0, sv = 0.0;
            for (size_t j = 0; j < d; ++j) {
                double t = mu_i[a * d + j] - mu_j[b * d + j], vi = var_i[a * d + j], vj = var_j[b * d + j];
                sm += t * t;
                sv += vi + vj - 2.0 * sqrt(vi * vj + W2_SQRT_EPS);
            }
            C[a * K + b] = sm * sc + sv * sc;
        }
    return DC_OK;
}

dc_status dc_ref_w2_cost_bwd(double *dmu_i, double *dvar_i, double *dmu_j, double *dvar_j, const double *dC,
                             const double *mu_i, const double *var_i, const double *mu_j, const double *var_j, size_t K,
                             size_t d, enum dc_hete_reduction red) {
    if (!dmu_i || !dvar_i || !dmu_j || !dvar_j || !dC || !mu_i || !var_i || !mu_j || !var_j || K == 0 || d == 0 ||
        !red_valid(red))
        return DC_ERR_ARG;
    const double sc = red_scale(d, red);
    for (size_t a = 0; a < K; ++a)
        for (size_t b = 0; b < K; ++b) {
            double g = dC[a * K + b] * sc;
            for (size_t j = 0; j < d; ++j) {
                double t = mu_i[a * d + j] - mu_j[b * d + j], vi = var_i[a * d + j], vj = var_j[b * d + j];
                double rs = 1.0 / sqrt(vi * vj + W2_SQRT_EPS);
                dmu_i[a * d + j] += 2.0 * g * t;
                dmu_j[b * d + j] -= 2.0 * g * t;
                dvar_i[a * d + j] += g * (1.0 - vj * rs);
                dvar_j[b * d + j] += g * (1.0 - vi * rs);
            }
        }
    return DC_OK;
}

/* ============================ Sinkhorn ============================ */

/* Work layout: kernel E (K^3, before the floor), G (K^3), P (K^3), then per iteration
 * t = 1..T: u, v, w, su, sv, sw (K each; s* the sums before "+ 1e-8"), then backward
 * scratch dG (K^3) and du, dv, dw, dsum (K each). */
size_t dc_ref_sinkhorn_work_len(size_t K, size_t ot_iters) {
    size_t k3 = K * K * K;
    return 4 * k3 + ot_iters * 6 * K + 4 * K; /* E, G, P, dG; tape; ones, du, dv, dw */
}

/* out_a = sum_{b,c} G[a,b,c] y_b z_c (mode 0), out_b = sum_{a,c} G y_a z_c (mode 1),
 * out_c = sum_{a,b} G y_a z_b (mode 2). */
static void contract3(double *out, const double *G, const double *y, const double *z, size_t K, int mode) {
    for (size_t i = 0; i < K; ++i) out[i] = 0.0;
    for (size_t a = 0; a < K; ++a)
        for (size_t b = 0; b < K; ++b)
            for (size_t c = 0; c < K; ++c) {
                double g = G[(a * K + b) * K + c];
                if (mode == 0)
                    out[a] += g * y[b] * z[c];
                else if (mode == 1)
                    out[b] += g * y[a] * z[c];
                else
                    out[c] += g * y[a] * z[b];
            }
}

static const double *ones_k(double *buf, size_t K) {
    for (size_t i = 0; i < K; ++i) buf[i] = 1.0;
    return buf;
}

dc_status dc_ref_sinkhorn_fwd(double *P, double *loss, double *work, const double *C, const double *nu_l,
                              const double *nu_a, const double *nu_v, size_t K, size_t ot_iters, double lambda_ot) {
    if (!loss || !work || !C || !nu_l || !nu_a || !nu_v || K == 0 || !(lambda_ot >= 0.0) || !isfinite(lambda_ot))
        return DC_ERR_ARG;
    const size_t k3 = K * K * K, T = ot_iters;
    const double eps = fmax(lambda_ot, OT_EPS_FLOOR);
    double *E = work, *G = E + k3, *Pw = G + k3, *tape = Pw + k3, *one = tape + T * 6 * K;
    for (size_t i = 0; i < k3; ++i) {
        E[i] = exp(-C[i] / eps);
        G[i] = fmax(E[i], OT_KERNEL_FLOOR);
    }
    const double *u = ones_k(one, K), *v = u, *w = u;
    for (size_t t = 0; t < T; ++t) {
        double *ut = tape + t * 6 * K, *vt = ut + K, *wt = vt + K, *su = wt + K, *sv = su + K, *sw = sv + K;
        contract3(su, G, v, w, K, 0);
        for (size_t i = 0; i < K; ++i) ut[i] = nu_l[i] / (su[i] + OT_DENOM_EPS);
        contract3(sv, G, ut, w, K, 1);
        for (size_t i = 0; i < K; ++i) vt[i] = nu_a[i] / (sv[i] + OT_DENOM_EPS);
        contract3(sw, G, ut, vt, K, 2);
        for (size_t i = 0; i < K; ++i) wt[i] = nu_v[i] / (sw[i] + OT_DENOM_EPS);
        u = ut, v = vt, w = wt;
    }
    double lc = 0.0, le = 0.0;
    for (size_t a = 0; a < K; ++a)
        for (size_t b = 0; b < K; ++b)
            for (size_t c = 0; c < K; ++c) {
                size_t i = (a * K + b) * K + c;
                double p = u[a] * v[b] * w[c] * G[i];
                Pw[i] = p;
                lc += p * C[i];
                le += p * (log(fmax(p, OT_LOG_FLOOR)) - 1.0);
            }
    *loss = lc + lambda_ot * le;
    if (P) memcpy(P, Pw, k3 * sizeof(double));
    return DC_OK;
}

dc_status dc_ref_sinkhorn_bwd(double *dC, double *dnu_l, double *dnu_a, double *dnu_v, double dloss, const double *dP,
                              double *work, const double *C, const double *nu_l, const double *nu_a, const double *nu_v,
                              size_t K, size_t ot_iters, double lambda_ot) {
    if (!work || !C || !nu_l || !nu_a || !nu_v || K == 0 || !(lambda_ot >= 0.0) || !isfinite(lambda_ot))
        return DC_ERR_ARG;
    const size_t k3 = K * K * K, T = ot_iters;
    const double eps = fmax(lambda_ot, OT_EPS_FLOOR);
    double *E = work, *G = E + k3, *Pw = G + k3, *tape = Pw + k3, *one = tape + T * 6 * K;
    double *dG = one + K, *du = dG + k3, *dv = du + K, *dw = dv + K;
    ones_k(one, K);
    const double *u = T ? tape + (T - 1) * 6 * K : one, *v = T ? u + K : one, *w = T ? u + 2 * K : one;

    /* P = u_a v_b w_c G: dP_total = dP + dloss * dL_OT/dP (through both factors of
     * P (log(max(P, 1e-8)) - 1)); C also enters L_OT directly. */
    for (size_t i = 0; i < K; ++i) du[i] = dv[i] = dw[i] = 0.0;
    for (size_t a = 0; a < K; ++a)
        for (size_t b = 0; b < K; ++b)
            for (size_t c = 0; c < K; ++c) {
                size_t i = (a * K + b) * K + c;
                double p = Pw[i];
                double dp =
                    dloss * (C[i] + lambda_ot * (log(fmax(p, OT_LOG_FLOOR)) - 1.0 + (p >= OT_LOG_FLOOR ? 1.0 : 0.0)));
                if (dP) dp += dP[i];
                if (dC) dC[i] += dloss * p;
                dG[i] = dp * u[a] * v[b] * w[c];
                du[a] += dp * G[i] * v[b] * w[c];
                dv[b] += dp * G[i] * u[a] * w[c];
                dw[c] += dp * G[i] * u[a] * v[b];
            }

    /* iterations in reverse; du/dv/dw carry the adjoint of the latest u, v, w */
    for (size_t t = T; t-- > 0;) {
        const double *ut = tape + t * 6 * K, *vt = ut + K, *wt = vt + K, *su = wt + K, *sv = su + K, *sw = sv + K;
        const double *vp = t ? tape + (t - 1) * 6 * K + K : one, *wp = t ? tape + (t - 1) * 6 * K + 2 * K : one;
        /* w_t = nu_v / (sw + 1e-8), sw_c = sum_ab G u_t v_t */
        for (size_t c = 0; c < K; ++c) {
            double den = sw[c] + OT_DENOM_EPS;
            if (dnu_v) dnu_v[c] += dw[c] / den;
            dw[c] = -dw[c] * wt[c] / den; /* now d/dsw */
        }
        for (size_t a = 0; a < K; ++a)
            for (size_t b = 0; b < K; ++b)
                for (size_t c = 0; c < K; ++c) {
                    size_t i = (a * K + b) * K + c;
                    dG[i] += dw[c] * ut[a] * vt[b];
                    du[a] += dw[c] * G[i] * vt[b];
                    dv[b] += dw[c] * G[i] * ut[a];
                }
        for (size_t c = 0; c < K; ++c) dw[c] = 0.0; /* w_{t-1} adjoint starts here */
        /* v_t = nu_a / (sv + 1e-8), sv_b = sum_ac G u_t w_{t-1} */
        for (size_t b = 0; b < K; ++b) {
            double den = sv[b] + OT_DENOM_EPS;
            if (dnu_a) dnu_a[b] += dv[b] / den;
            dv[b] = -dv[b] * vt[b] / den;
        }
        for (size_t a = 0; a < K; ++a)
            for (size_t b = 0; b < K; ++b)
                for (size_t c = 0; c < K; ++c) {
                    size_t i = (a * K + b) * K + c;
                    dG[i] += dv[b] * ut[a] * wp[c];
                    du[a] += dv[b] * G[i] * wp[c];
                    dw[c] += dv[b] * G[i] * ut[a];
                }
        /* u_t = nu_l / (su + 1e-8), su_a = sum_bc G v_{t-1} w_{t-1} */
        for (size_t a = 0; a < K; ++a) {
            double den = su[a] + OT_DENOM_EPS;
            if (dnu_l) dnu_l[a] += du[a] / den;
            du[a] = -du[a] * ut[a] / den;
        }
        for (size_t b = 0; b < K; ++b) dv[b] = 0.0; /* v_{t-1} adjoint */
        for (size_t a = 0; a < K; ++a)
            for (size_t b = 0; b < K; ++b)
                for (size_t c = 0; c < K; ++c) {
                    size_t i = (a * K + b) * K + c;
                    dG[i] += du[a] * vp[b] * wp[c];
                    dv[b] += du[a] * G[i] * wp[c];
                    dw[c] += du[a] * G[i] * vp[b];
                }
        for (size_t a = 0; a < K; ++a) du[a] = 0.0; /* u_{t-1} is not used by round t */
    }
    /* G = max(E, 1e-30), E = exp(-C / eps) */
    if (dC)
        for (size_t i = 0; i < k3; ++i) dC[i] += dG[i] * clamp_pass(E[i], OT_KERNEL_FLOOR) * E[i] * (-1.0 / eps);
    return DC_OK;
}

/* ============================ local prototype term ============================ */

static int proto_args_ok(const double *const x[DC_HETE_M], const double *const gamma[DC_HETE_M],
                         const double *const mu[DC_HETE_M], const double *const var[DC_HETE_M], size_t B, size_t d,
                         size_t K, enum dc_hete_reduction red, int mahalanobis, double var_floor) {
    if (!x || !gamma || !mu || B == 0 || d == 0 || K == 0 || !red_valid(red)) return 0;
    if (mahalanobis && (!var || !(var_floor > 0.0) || !isfinite(var_floor))) return 0;
    for (int m = 0; m < DC_HETE_M; ++m)
        if (!x[m] || !gamma[m] || !mu[m] || (mahalanobis && !var[m])) return 0;
    return 1;
}

dc_status dc_ref_local_proto_fwd(double *loss, const double *const x[DC_HETE_M], const double *const gamma[DC_HETE_M],
                                 const double *const mu[DC_HETE_M], const double *const var[DC_HETE_M], size_t B,
                                 size_t d, size_t K, enum dc_hete_reduction red, int mahalanobis, double var_floor) {
    if (!loss || !proto_args_ok(x, gamma, mu, var, B, d, K, red, mahalanobis, var_floor)) return DC_ERR_ARG;
    const double sc = red_scale(d, red);
    double tot = 0.0;
    for (int i = 0; i < DC_HETE_M; ++i)
        for (int j = 0; j < DC_HETE_M; ++j) {
            if (i == j) continue;
            double pair = 0.0;
            for (size_t n = 0; n < B; ++n)
                for (size_t k = 0; k < K; ++k) {
                    double c = 0.0;
                    for (size_t e = 0; e < d; ++e) {
                        double t = x[i][n * d + e] - mu[j][k * d + e];
                        c += mahalanobis ? t * t / fmax(var[j][k * d + e], var_floor) : t * t;
                    }
                    pair += gamma[i][n * K + k] * c * sc;
                }
            tot += pair / (double)B;
        }
    *loss = tot / (double)(DC_HETE_M * (DC_HETE_M - 1));
    return DC_OK;
}

dc_status dc_ref_local_proto_bwd(double *const dx[DC_HETE_M], double *const dgamma[DC_HETE_M],
                                 double *const dmu[DC_HETE_M], double *const dvar[DC_HETE_M], double dloss,
                                 const double *const x[DC_HETE_M], const double *const gamma[DC_HETE_M],
                                 const double *const mu[DC_HETE_M], const double *const var[DC_HETE_M], size_t B,
                                 size_t d, size_t K, enum dc_hete_reduction red, int mahalanobis, double var_floor) {
    if (!proto_args_ok(x, gamma, mu, var, B, d, K, red, mahalanobis, var_floor)) return DC_ERR_ARG;
    const double g0 = dloss * red_scale(d, red) / (double)B / (double)(DC_HETE_M * (DC_HETE_M - 1));
    for (int i = 0; i < DC_HETE_M; ++i)
        for (int j = 0; j < DC_HETE_M; ++j) {
            if (i == j) continue;
            for (size_t n = 0; n < B; ++n)
                for (size_t k = 0; k < K; ++k) {
                    double gk = gamma[i][n * K + k] * g0, c = 0.0;
                    for (size_t e = 0; e < d; ++e) {
                        double t = x[i][n * d + e] - mu[j][k * d + e], iv = 1.0;
                        if (mahalanobis) iv = 1.0 / fmax(var[j][k * d + e], var_floor);
                        c += t * t * iv;
                        double gt = 2.0 * gk * t * iv;
                        if (dx && dx[i]) dx[i][n * d + e] += gt;
                        if (dmu && dmu[j]) dmu[j][k * d + e] -= gt;
                        if (mahalanobis && dvar && dvar[j])
                            dvar[j][k * d + e] -= gk * t * t * iv * iv * clamp_pass(var[j][k * d + e], var_floor);
                    }
                    if (dgamma && dgamma[i]) dgamma[i][n * K + k] += g0 * c;
                }
        }
    return DC_OK;
}

/* ============================ whole L_hete ============================ */

/* Layout of the top-level work buffer. */
struct hete_layout {
    double *gmm[DC_HETE_M];                     /* GMM work per modality */
    double *gamma[DC_HETE_M], *mu[DC_HETE_M];   /* (B, K), (K, d) */
    double *var[DC_HETE_M], *nu[DC_HETE_M];     /* (K, d), (K) */
    double *c2[DC_HETE_M];                      /* pair costs la, lv, av (K, K) */
    double *cost;                               /* joint (K, K, K) */
    double *sk;                                 /* Sinkhorn work */
    double *dgamma[DC_HETE_M], *dmu[DC_HETE_M]; /* backward */
    double *dvar[DC_HETE_M], *dnu[DC_HETE_M];
    double *dc2[DC_HETE_M], *dcost;
    double *xd[DC_HETE_M], *dxd[DC_HETE_M]; /* (B, d) double copies for the float entry points */
    double *end;
};

static struct hete_layout hete_layout(double *w, size_t B, size_t d, const struct dc_hete_opts *o) {
    struct hete_layout h;
    const size_t K = o->k, gl = dc_ref_gmm_work_len(B, K, d, o->em_iters);
    for (int m = 0; m < DC_HETE_M; ++m) {
        h.gmm[m] = w, w += gl;
        h.gamma[m] = w, w += B * K;
        h.mu[m] = w, w += K * d;
        h.var[m] = w, w += K * d;
        h.nu[m] = w, w += K;
        h.c2[m] = w, w += K * K;
        h.dgamma[m] = w, w += B * K;
        h.dmu[m] = w, w += K * d;
        h.dvar[m] = w, w += K * d;
        h.dnu[m] = w, w += K;
        h.dc2[m] = w, w += K * K;
        h.xd[m] = w, w += B * d;
        h.dxd[m] = w, w += B * d;
    }
    h.cost = w, w += K * K * K;
    h.dcost = w, w += K * K * K;
    h.sk = w, w += dc_ref_sinkhorn_work_len(K, o->ot_iters);
    h.end = w;
    return h;
}

static int opts_ok(size_t B, size_t d, const struct dc_hete_opts *o) {
    return o && B > 0 && d > 0 && o->k > 0 && o->var_floor > 0.0 && isfinite(o->var_floor) && o->lambda_ot >= 0.0 &&
           isfinite(o->lambda_ot) && red_valid(o->reduction);
}

size_t dc_ref_hete_work_len(size_t B, size_t d, const struct dc_hete_opts *o) {
    if (!opts_ok(B, d, o)) return 0;
    const size_t K = o->k;
    /* must match hete_layout */
    size_t per_m = dc_ref_gmm_work_len(B, K, d, o->em_iters) + 2 * B * K + 4 * K * d + 2 * K + 2 * K * K + 2 * B * d;
    return DC_HETE_M * per_m + 2 * K * K * K + dc_ref_sinkhorn_work_len(K, o->ot_iters);
}

/* Pair order of the joint cost: C[a,b,c] = C_la[a,b] + C_lv[a,c] + C_av[b,c]. */
static const int pair_i[DC_HETE_M] = {0, 0, 1}, pair_j[DC_HETE_M] = {1, 2, 2};

dc_status dc_ref_hete_fwd_f64(double *loss, double *l_ot, double *l_proto, double *work,
                              const double *const x[DC_HETE_M], size_t B, size_t d, const struct dc_hete_opts *o) {
    if (!loss || !work || !x || !opts_ok(B, d, o) || !x[0] || !x[1] || !x[2]) return DC_ERR_ARG;
    struct hete_layout h = hete_layout(work, B, d, o);
    const size_t K = o->k;
    for (int m = 0; m < DC_HETE_M; ++m)
        dc_ref_gmm_fwd(h.gamma[m], h.mu[m], h.var[m], h.nu[m], h.gmm[m], x[m], B, d, K, o->em_iters, o->var_floor);
    for (int p = 0; p < DC_HETE_M; ++p)
        dc_ref_w2_cost_fwd(h.c2[p], h.mu[pair_i[p]], h.var[pair_i[p]], h.mu[pair_j[p]], h.var[pair_j[p]], K, d,
                           o->reduction);
    for (size_t a = 0; a < K; ++a)
        for (size_t b = 0; b < K; ++b)
            for (size_t c = 0; c < K; ++c)
                h.cost[(a * K + b) * K + c] = h.c2[0][a * K + b] + h.c2[1][a * K + c] + h.c2[2][b * K + c];
    double lot, lpr;
    dc_ref_sinkhorn_fwd(NULL, &lot, h.sk, h.cost, h.nu[0], h.nu[1], h.nu[2], K, o->ot_iters, o->lambda_ot);
    const double *g[DC_HETE_M] = {h.gamma[0], h.gamma[1], h.gamma[2]};
    const double *mu[DC_HETE_M] = {h.mu[0], h.mu[1], h.mu[2]}, *var[DC_HETE_M] = {h.var[0], h.var[1], h.var[2]};
    dc_ref_local_proto_fwd(&lpr, x, g, mu, var, B, d, K, o->reduction, o->mahalanobis, o->var_floor);
    *loss = lot + lpr;
    if (l_ot) *l_ot = lot;
    if (l_proto) *l_proto = lpr;
    return DC_OK;
}

dc_status dc_ref_hete_bwd_f64(double *const dx[DC_HETE_M], double dloss, double *work, const double *const x[DC_HETE_M],
                              size_t B, size_t d, const struct dc_hete_opts *o) {
    if (!dx || !work || !x || !opts_ok(B, d, o)) return DC_ERR_ARG;
    for (int m = 0; m < DC_HETE_M; ++m)
        if (!dx[m] || !x[m]) return DC_ERR_ARG;
    struct hete_layout h = hete_layout(work, B, d, o);
    const size_t K = o->k;
    for (int m = 0; m < DC_HETE_M; ++m) {
        memset(h.dgamma[m], 0, B * K * sizeof(double));
        memset(h.dmu[m], 0, K * d * sizeof(double));
        memset(h.dvar[m], 0, K * d * sizeof(double));
        memset(h.dnu[m], 0, K * sizeof(double));
        memset(h.dc2[m], 0, K * K * sizeof(double));
    }
    memset(h.dcost, 0, K * K * K * sizeof(double));
    dc_ref_sinkhorn_bwd(h.dcost, h.dnu[0], h.dnu[1], h.dnu[2], dloss, NULL, h.sk, h.cost, h.nu[0], h.nu[1], h.nu[2], K,
                        o->ot_iters, o->lambda_ot);
    for (size_t a = 0; a < K; ++a)
        for (size_t b = 0; b < K; ++b)
            for (size_t c = 0; c < K; ++c) {
                double g = h.dcost[(a * K + b) * K + c];
                h.dc2[0][a * K + b] += g;
                h.dc2[1][a * K + c] += g;
                h.dc2[2][b * K + c] += g;
            }
    for (int p = 0; p < DC_HETE_M; ++p) {
        int i = pair_i[p], j = pair_j[p];
        dc_ref_w2_cost_bwd(h.dmu[i], h.dvar[i], h.dmu[j], h.dvar[j], h.dc2[p], h.mu[i], h.var[i], h.mu[j], h.var[j], K,
                           d, o->reduction);
    }
    const double *g[DC_HETE_M] = {h.gamma[0], h.gamma[1], h.gamma[2]};
    const double *mu[DC_HETE_M] = {h.mu[0], h.mu[1], h.mu[2]}, *var[DC_HETE_M] = {h.var[0], h.var[1], h.var[2]};
    dc_ref_local_proto_bwd(dx, h.dgamma, h.dmu, h.dvar, dloss, x, g, mu, var, B, d, K, o->reduction, o->mahalanobis,
                           o->var_floor);
    for (int m = 0; m < DC_HETE_M; ++m)
        dc_ref_gmm_bwd(dx[m], h.dgamma[m], h.dmu[m], h.dvar[m], h.dnu[m], h.gmm[m], x[m], B, d, K, o->em_iters,
                       o->var_floor);
    return DC_OK;
}

dc_status dc_ref_hete_fwd(float *loss, double *work, const float *const x[DC_HETE_M], size_t B, size_t d,
                          const struct dc_hete_opts *o) {
    if (!loss || !work || !x || !opts_ok(B, d, o)) return DC_ERR_ARG;
    struct hete_layout h = hete_layout(work, B, d, o);
    for (int m = 0; m < DC_HETE_M; ++m) {
        if (!x[m]) return DC_ERR_ARG;
        for (size_t i = 0; i < B * d; ++i) h.xd[m][i] = x[m][i];
    }
    const double *xd[DC_HETE_M] = {h.xd[0], h.xd[1], h.xd[2]};
    double l;
    dc_status st = dc_ref_hete_fwd_f64(&l, NULL, NULL, work, xd, B, d, o);
    if (st == DC_OK) *loss = (float)l;
    return st;
}

dc_status dc_ref_hete_bwd(float *const dx[DC_HETE_M], float dloss, double *work, const float *const x[DC_HETE_M],
                          size_t B, size_t d, const struct dc_hete_opts *o) {
    if (!dx || !work || !x || !opts_ok(B, d, o)) return DC_ERR_ARG;
    for (int m = 0; m < DC_HETE_M; ++m)
        if (!dx[m] || !x[m]) return DC_ERR_ARG;
    struct hete_layout h = hete_layout(work, B, d, o);
    /* x is the float input the forward copied into h.xd; the copy is what the tape matches */
    for (int m = 0; m < DC_HETE_M; ++m) memset(h.dxd[m], 0, B * d * sizeof(double));
    const double *xd[DC_HETE_M] = {h.xd[0], h.xd[1], h.xd[2]};
    double *dxd[DC_HETE_M] = {h.dxd[0], h.dxd[1], h.dxd[2]};
    dc_status st = dc_ref_hete_bwd_f64(dxd, (double)dloss, work, xd, B, d, o);
    if (st != DC_OK) return st;
    for (int m = 0; m < DC_HETE_M; ++m)
        for (size_t i = 0; i < B * d; ++i) dx[m][i] += (float)h.dxd[m][i];
    return DC_OK;
}
