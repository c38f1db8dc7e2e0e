/* Plain-C references for the decoupling, homogeneity, task and contrastive loss terms
 * (shared/spec/decalign-model.md §2, §4, §6); see ref_homo.h for the conventions.
 * Inputs are float, every reduction is accumulated in double. */
#include "backend/ref/ref_homo.h"

#include <math.h>
#include <stdlib.h>

/* ======================================================================================
 * §4 distribution statistics
 * ====================================================================================== */

/* Statistics of one z (B, p), all in double. */
struct stats {
    double *mu;   /* (p) mean over rows */
    double *cov;  /* (p, p) Z^T Z / max(B-1, 1) */
    double *vraw; /* (p) mean_n Z^2 before the floor */
    double *var;  /* (p) max(vraw, 1e-6) */
    double *m3;   /* (p) mean_n Z^3 */
    double *skew; /* (p) m3 / var^1.5 */
};

static size_t stats_len(size_t p) { return p * p + 5 * p; }

static void stats_bind(struct stats *s, double *buf, size_t p) {
    s->mu = buf;
    s->cov = s->mu + p;
    s->vraw = s->cov + p * p;
    s->var = s->vraw + p;
    s->m3 = s->var + p;
    s->skew = s->m3 + p;
}

/* z: (B, p). */
static void stats_compute(struct stats *s, const float *z, size_t B, size_t p) {
    double denom = B > 1 ? (double)(B - 1) : 1.0;
    for (size_t j = 0; j < p; ++j) {
        double acc = 0.0;
        for (size_t n = 0; n < B; ++n) acc += z[n * p + j];
        s->mu[j] = acc / (double)B;
    }
    for (size_t j = 0; j < p; ++j) {
        double a2 = 0.0, a3 = 0.0;
        for (size_t n = 0; n < B; ++n) {
            double zj = (double)z[n * p + j] - s->mu[j];
            a2 += zj * zj;
            a3 += zj * zj * zj;
        }
        s->vraw[j] = a2 / (double)B;
        s->var[j] = s->vraw[j] < DC_REF_STATS_VAR_FLOOR ? DC_REF_STATS_VAR_FLOOR : s->vraw[j];
        s->m3[j] = a3 / (double)B;
        s->skew[j] = s->m3[j] / pow(s->var[j], 1.5);
        for (size_t k = 0; k <= j; ++k) {
            double acc = 0.0;
            for (size_t n = 0; n < B; ++n)
                acc += ((double)z[n * p + j] - s->mu[j]) * ((double)z[n * p + k] - s->mu[k]);
            s->cov[j * p + k] = s->cov[k * p + j] = acc / denom;
        }
    }
}

/* dist(x, y) = mse(mu) + mse(cov) + mse(skew), each the mean over its entries. */
static double stats_dist(const struct stats *x, const struct stats *y, size_t p) {
    double a = 0.0, b = 0.0, c = 0.0;
    for (size_t j = 0; j < p; ++j) {
        a += (x->mu[j] - y->mu[j]) * (x->mu[j] - y->mu[j]);
        c += (x->skew[j] - y->skew[j]) * (x->skew[j] - y->skew[j]);
    }
    for (size_t i = 0; i < p * p; ++i) b += (x->cov[i] - y->cov[i]) * (x->cov[i] - y->cov[i]);
    return a / (double)p + b / ((double)p * (double)p) + c / (double)p;
}

static dc_status stats_alloc(double **buf, struct stats st[3], const float *const z[3], size_t B, size_t p) {
    *buf = malloc(3 * stats_len(p) * sizeof(double));
    if (!*buf) return DC_ERR_NOMEM;
    for (int m = 0; m < 3; ++m) {
        stats_bind(&st[m], *buf + (size_t)m * stats_len(p), p);
        stats_compute(&st[m], z[m], B, p);
    }
    return DC_OK;
}

dc_status ref_homo_stats_fwd(double *loss, const float *zl, const float *za, const float *zv, size_t B, size_t p) {
    if (!loss || !zl || !za || !zv || B == 0 || p == 0) return DC_ERR_ARG;
    const float *z[3] = {zl, za, zv};
    struct stats st[3];
    double *buf;
    dc_status rc = stats_alloc(&buf, st, z, B, p);
    if (rc != DC_OK) return rc;
    *loss = (stats_dist(&st[0], &st[1], p) + stats_dist(&st[0], &st[2], p) + stats_dist(&st[1], &st[2], p)) / 3.0;
    free(buf);
    return DC_OK;
}

/* Back-propagates the loss gradients of one modality's statistics to its z.
 * g_mu (p), g_cov (p, p), g_skew (p): dL/d(stat). dz (B, p) accumulated. */
static void stats_backward(float *dz, const float *z, const struct stats *s, const double *g_mu, const double *g_cov,
                           const double *g_skew, size_t B, size_t p, double *dZ /* (B) scratch */) {
    double denom = B > 1 ? (double)(B - 1) : 1.0;
    for (size_t j = 0; j < p; ++j) {
        /* skew = m3 * var^-1.5: d/dm3 = var^-1.5; d/dvar = -1.5 m3 var^-2.5, which reaches
         * vraw only where the floor is inactive (vraw >= floor, as clamp_min). */
        double d_m3 = g_skew[j] / pow(s->var[j], 1.5);
        double d_var = s->vraw[j] >= DC_REF_STATS_VAR_FLOOR ? -1.5 * g_skew[j] * s->m3[j] / pow(s->var[j], 2.5) : 0.0;
        double mean_dZ = 0.0;
        for (size_t n = 0; n < B; ++n) {
            double zj = (double)z[n * p + j] - s->mu[j];
            /* cov[j,k] = sum_n Z[n,j] Z[n,k] / denom: dZ[n,j] = sum_k (G[j,k] + G[k,j]) Z[n,k] / denom */
            double acc = 0.0;
            for (size_t k = 0; k < p; ++k)
                acc += (g_cov[j * p + k] + g_cov[k * p + j]) * ((double)z[n * p + k] - s->mu[k]);
            double d = acc / denom + d_m3 * 3.0 * zj * zj / (double)B + d_var * 2.0 * zj / (double)B;
            dZ[n] = d;
            mean_dZ += d;
        }
        mean_dZ /= (double)B;
        /* Z = z - mean(z): dz = dZ - mean_n dZ; mu = mean(z): dz += g_mu / B. */
        for (size_t n = 0; n < B; ++n) dz[n * p + j] += (float)(dZ[n] - mean_dZ + g_mu[j] / (double)B);
    }
}

dc_status ref_homo_stats_bwd(float *dzl, float *dza, float *dzv, double dloss, const float *zl, const float *za,
                             const float *zv, size_t B, size_t p) {
    if (!dzl || !dza || !dzv || !zl || !za || !zv || B == 0 || p == 0) return DC_ERR_ARG;
    const float *z[3] = {zl, za, zv};
    float *dz[3] = {dzl, dza, dzv};
    struct stats st[3];
    double *buf;
    dc_status rc = stats_alloc(&buf, st, z, B, p);
    if (rc != DC_OK) return rc;
    double *g = malloc((p * p + 2 * p + B) * sizeof(double));
    if (!g) {
        free(buf);
        return DC_ERR_NOMEM;
    }
    double *g_mu = g, *g_skew = g + p, *g_cov = g + 2 * p, *scratch = g + 2 * p + p * p;
    /* Each modality m is in two pairs (m, o); d/d(stat_m) of mse(stat_m, stat_o) is
     * 2 (stat_m - stat_o) / count, and L_sem carries a factor 1/3. */
    double w = dloss / 3.0, wp = 2.0 * w / (double)p, wpp = 2.0 * w / ((double)p * (double)p);
    for (int m = 0; m < 3; ++m) {
        const struct stats *a = &st[m], *o1 = &st[(m + 1) % 3], *o2 = &st[(m + 2) % 3];
        for (size_t j = 0; j < p; ++j) {
            g_mu[j] = wp * (2.0 * a->mu[j] - o1->mu[j] - o2->mu[j]);
            g_skew[j] = wp * (2.0 * a->skew[j] - o1->skew[j] - o2->skew[j]);
        }
        for (size_t i = 0; i < p * p; ++i) g_cov[i] = wpp * (2.0 * a->cov[i] - o1->cov[i] - o2->cov[i]);
        stats_backward(dz[m], z[m], a, g_mu, g_cov, g_skew, B, p, scratch);
    }
    free(g);
    free(buf);
    return DC_OK;
}

/* ======================================================================================
 * §4 Gaussian-kernel MMD
 * ====================================================================================== */

/* Squared distance |a|^2 + |b|^2 - 2 a.b as the reference forms it (not clamped here).
 * a, b: (p). Symmetric in its arguments bit for bit. */
static double sqdist_raw(const float *a, const float *b, size_t p) {
    double na = 0.0, nb = 0.0, ab = 0.0;
    for (size_t k = 0; k < p; ++k) {
        na += (double)a[k] * a[k];
        nb += (double)b[k] * b[k];
        ab += (double)a[k] * b[k];
    }
    return na + nb - 2.0 * ab;
}

/* sum_{i,j} exp(-g max(d_ij, 0)) over a (na, p) x b (nb, p). */
static double gram_sum(const float *a, size_t na, const float *b, size_t nb, size_t p, double g) {
    double acc = 0.0;
    for (size_t i = 0; i < na; ++i)
        for (size_t j = 0; j < nb; ++j) {
            double d = sqdist_raw(a + i * p, b + j * p, p);
            acc += exp(-g * (d < 0.0 ? 0.0 : d));
        }
    return acc;
}

/* Adds w * d(sum_{i,j} k(a_i, b_j))/da to da (na, p) and /db to db (nb, p); da and db may
 * alias (a == b). dk/dd = -g k where d >= 0, 0 where the clamp is active (d < 0);
 * dd/da_i = 2 (a_i - b_j), dd/db_j = 2 (b_j - a_i). */
static void gram_backward(float *da, float *db, double w, const float *a, size_t na, const float *b, size_t nb,
                          size_t p, double g, double *acc /* (p) scratch */) {
    for (size_t i = 0; i < na; ++i) {
        for (size_t k = 0; k < p; ++k) acc[k] = 0.0;
        for (size_t j = 0; j < nb; ++j) {
            double d = sqdist_raw(a + i * p, b + j * p, p);
            if (d < 0.0) continue;
            double c = w * -g * exp(-g * d) * 2.0;
            for (size_t k = 0; k < p; ++k) acc[k] += c * ((double)a[i * p + k] - b[j * p + k]);
        }
        for (size_t k = 0; k < p; ++k) da[i * p + k] += (float)acc[k];
    }
    for (size_t j = 0; j < nb; ++j) {
        for (size_t k = 0; k < p; ++k) acc[k] = 0.0;
        for (size_t i = 0; i < na; ++i) {
            double d = sqdist_raw(a + i * p, b + j * p, p);
            if (d < 0.0) continue;
            double c = w * -g * exp(-g * d) * 2.0;
            for (size_t k = 0; k < p; ++k) acc[k] += c * ((double)b[j * p + k] - a[i * p + k]);
        }
        for (size_t k = 0; k < p; ++k) db[j * p + k] += (float)acc[k];
    }
}

static int mmd_args_ok(const float *x, size_t nx, const float *y, size_t ny, size_t p, float bandwidth) {
    return x && y && nx > 0 && ny > 0 && p > 0 && isfinite(bandwidth) && bandwidth > 0.0f;
}

dc_status ref_mmd_pair_fwd(double *mmd, const float *x, size_t nx, const float *y, size_t ny, size_t p,
                           float bandwidth) {
    if (!mmd || !mmd_args_ok(x, nx, y, ny, p, bandwidth)) return DC_ERR_ARG;
    double g = 1.0 / (2.0 * (double)bandwidth);
    *mmd = gram_sum(x, nx, x, nx, p, g) / ((double)nx * nx) + gram_sum(y, ny, y, ny, p, g) / ((double)ny * ny) -
           2.0 * gram_sum(x, nx, y, ny, p, g) / ((double)nx * ny);
    return DC_OK;
}

dc_status ref_mmd_pair_bwd(float *dx, float *dy, double dmmd, const float *x, size_t nx, const float *y, size_t ny,
                           size_t p, float bandwidth) {
    if (!dx || !dy || !mmd_args_ok(x, nx, y, ny, p, bandwidth)) return DC_ERR_ARG;
    double g = 1.0 / (2.0 * (double)bandwidth);
    double *acc = malloc(p * sizeof(double));
    if (!acc) return DC_ERR_NOMEM;
    gram_backward(dx, dx, dmmd / ((double)nx * nx), x, nx, x, nx, p, g, acc);
    gram_backward(dy, dy, dmmd / ((double)ny * ny), y, ny, y, ny, p, g, acc);
    gram_backward(dx, dy, -2.0 * dmmd / ((double)nx * ny), x, nx, y, ny, p, g, acc);
    free(acc);
    return DC_OK;
}

dc_status ref_homo_mmd_fwd(double *loss, const float *zl, const float *za, const float *zv, size_t B, size_t p,
                           float bandwidth) {
    if (!loss || !zv || !mmd_args_ok(zl, B, za, B, p, bandwidth)) return DC_ERR_ARG;
    double la, lv, av;
    ref_mmd_pair_fwd(&la, zl, B, za, B, p, bandwidth);
    ref_mmd_pair_fwd(&lv, zl, B, zv, B, p, bandwidth);
    ref_mmd_pair_fwd(&av, za, B, zv, B, p, bandwidth);
    *loss = (la + lv + av) / 3.0;
    return DC_OK;
}

dc_status ref_homo_mmd_bwd(float *dzl, float *dza, float *dzv, double dloss, const float *zl, const float *za,
                           const float *zv, size_t B, size_t p, float bandwidth) {
    if (!dzl || !dza || !dzv || !zv || !mmd_args_ok(zl, B, za, B, p, bandwidth)) return DC_ERR_ARG;
    double w = dloss / 3.0;
    dc_status rc = ref_mmd_pair_bwd(dzl, dza, w, zl, B, za, B, p, bandwidth);
    if (rc == DC_OK) rc = ref_mmd_pair_bwd(dzl, dzv, w, zl, B, zv, B, p, bandwidth);
    if (rc == DC_OK) rc = ref_mmd_pair_bwd(dza, dzv, w, za, B, zv, B, p, bandwidth);
    return rc;
}

/* ======================================================================================
 * §2 decoupling loss
 * ====================================================================================== */

/* torch >= 1.13 cosine_similarity: x1 / max(|x1|, eps) . x2 / max(|x2|, eps). The
 * clamp runs under no_grad on a clone of the norm, so autograd still differentiates
 * the norm (with the clamped value in the division); the norm's own backward gives 0
 * where the norm is 0. Returns the cosine and the two raw and clamped norms. */
static double cosine(const float *a, const float *b, size_t L, double *na, double *nb, double *na_c, double *nb_c) {
    double aa = 0.0, bb = 0.0;
    for (size_t i = 0; i < L; ++i) {
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    *na = sqrt(aa);
    *nb = sqrt(bb);
    *na_c = *na < DC_REF_COSINE_EPS ? DC_REF_COSINE_EPS : *na;
    *nb_c = *nb < DC_REF_COSINE_EPS ? DC_REF_COSINE_EPS : *nb;
    double dot = 0.0;
    for (size_t i = 0; i < L; ++i) dot += ((double)a[i] / *na_c) * ((double)b[i] / *nb_c);
    return dot;
}

dc_status ref_decouple_fwd(double *loss, const float *s, const float *c, size_t B, size_t L) {
    if (!loss || !s || !c || B == 0 || L == 0) return DC_ERR_ARG;
    double acc = 0.0, ns, nc, ns_c, nc_c;
    for (size_t b = 0; b < B; ++b) {
        double cs = cosine(s + b * L, c + b * L, L, &ns, &nc, &ns_c, &nc_c);
        acc += cs * cs;
    }
    *loss = acc / (double)B;
    return DC_OK;
}

dc_status ref_decouple_bwd(float *ds, float *dc, double dloss, const float *s, const float *c, size_t B, size_t L) {
    if (!ds || !dc || !s || !c || B == 0 || L == 0) return DC_ERR_ARG;
    double ns, nc, ns_c, nc_c;
    for (size_t b = 0; b < B; ++b) {
        const float *x = s + b * L, *y = c + b * L;
        double cs = cosine(x, y, L, &ns, &nc, &ns_c, &nc_c);
        double g = dloss * 2.0 * cs / (double)B; /* d loss / d cos */
        /* cos = sum_i (x_i / ns_c)(y_i / nc_c): d/dx_i = y_i / (ns_c nc_c) directly, plus
         * d/dns_c = -cos / ns_c, passed to ns (clamp under no_grad) and d ns/dx = x / ns. */
        double kx = ns > 0.0 ? cs / (ns_c * ns) : 0.0, ky = nc > 0.0 ? cs / (nc_c * nc) : 0.0;
        double inv = 1.0 / (ns_c * nc_c);
        for (size_t i = 0; i < L; ++i) {
            ds[b * L + i] += (float)(g * ((double)y[i] * inv - kx * x[i]));
            dc[b * L + i] += (float)(g * ((double)x[i] * inv - ky * y[i]));
        }
    }
    return DC_OK;
}

dc_status ref_decouple_loss_fwd(double *loss, size_t nmod, const float *const *s, const float *const *c,
                                const size_t *len, size_t B) {
    if (!loss || !s || !c || !len || nmod == 0) return DC_ERR_ARG;
    double acc = 0.0, t;
    for (size_t m = 0; m < nmod; ++m) {
        dc_status rc = ref_decouple_fwd(&t, s[m], c[m], B, len[m]);
        if (rc != DC_OK) return rc;
        acc += t;
    }
    *loss = acc / (double)nmod;
    return DC_OK;
}

dc_status ref_decouple_loss_bwd(float *const *ds, float *const *dc, double dloss, size_t nmod, const float *const *s,
                                const float *const *c, const size_t *len, size_t B) {
    if (!ds || !dc || !s || !c || !len || nmod == 0) return DC_ERR_ARG;
    for (size_t m = 0; m < nmod; ++m) {
        dc_status rc = ref_decouple_bwd(ds[m], dc[m], dloss / (double)nmod, s[m], c[m], B, len[m]);
        if (rc != DC_OK) return rc;
    }
    return DC_OK;
}

/* ======================================================================================
 * §6 task losses
 * ====================================================================================== */

static int regression_args_ok(const float *out, const float *label, size_t B, enum dc_ref_task_loss kind,
                              float beta) {
    if (!out || !label || B == 0) return 0;
    if (kind != DC_REF_TASK_LOSS_MSE && kind != DC_REF_TASK_LOSS_L1 && kind != DC_REF_TASK_LOSS_SMOOTH_L1) return 0;
    return kind != DC_REF_TASK_LOSS_SMOOTH_L1 || (isfinite(beta) && beta >= 0.0f);
}

static double sign0(double x) { return x > 0.0 ? 1.0 : x < 0.0 ? -1.0 : 0.0; }

dc_status ref_task_regression_fwd(double *loss, const float *out, const float *label, size_t B,
                                  enum dc_ref_task_loss kind, float beta, float binary_weight) {
    if (!loss || !regression_args_ok(out, label, B, kind, beta)) return DC_ERR_ARG;
    double acc = 0.0, bt = (double)beta;
    for (size_t b = 0; b < B; ++b) {
        double x = (double)out[b] - label[b], ax = fabs(x);
        if (kind == DC_REF_TASK_LOSS_MSE) acc += x * x;
        else if (kind == DC_REF_TASK_LOSS_SMOOTH_L1 && ax < bt) acc += 0.5 * x * x / bt; /* beta 0: never */
        else if (kind == DC_REF_TASK_LOSS_SMOOTH_L1) acc += ax - 0.5 * bt;
        else acc += ax;
    }
    *loss = acc / (double)B;
    if (binary_weight > 0.0f) {
        /* BCE with logits, t = (label > 0), over label != 0:
         * max(x, 0) - x t + log(1 + exp(-|x|)). */
        double bce = 0.0;
        size_t n = 0;
        for (size_t b = 0; b < B; ++b) {
            if (label[b] == 0.0f) continue;
            double x = out[b], t = label[b] > 0.0f ? 1.0 : 0.0;
            bce += (x > 0.0 ? x : 0.0) - x * t + log1p(exp(-fabs(x)));
            ++n;
        }
        if (n > 0) *loss += (double)binary_weight * bce / (double)n;
    }
    return DC_OK;
}

dc_status ref_task_regression_bwd(float *dout, double dloss, const float *out, const float *label, size_t B,
                                  enum dc_ref_task_loss kind, float beta, float binary_weight) {
    if (!dout || !regression_args_ok(out, label, B, kind, beta)) return DC_ERR_ARG;
    double bt = (double)beta, w = dloss / (double)B;
    size_t n = 0;
    for (size_t b = 0; b < B; ++b) n += label[b] != 0.0f;
    for (size_t b = 0; b < B; ++b) {
        double x = (double)out[b] - label[b], d;
        if (kind == DC_REF_TASK_LOSS_MSE) d = 2.0 * x;
        else if (kind == DC_REF_TASK_LOSS_SMOOTH_L1 && fabs(x) < bt) d = x / bt;
        else d = sign0(x); /* L1 and the linear branch; sign(0) = 0 as in PyTorch */
        double g = w * d;
        if (binary_weight > 0.0f && n > 0 && label[b] != 0.0f) {
            double t = label[b] > 0.0f ? 1.0 : 0.0, xo = out[b];
            double sig = xo >= 0.0 ? 1.0 / (1.0 + exp(-xo)) : exp(xo) / (1.0 + exp(xo));
            g += dloss * (double)binary_weight * (sig - t) / (double)n;
        }
        dout[b] += (float)g;
    }
    return DC_OK;
}

/* The class id of a CE label (PyTorch .long(): truncation), or -1 when out of range. */
static long ce_class(float label, size_t C) {
    if (!isfinite(label) || label <= -1.0f || label >= (float)C) return -1;
    return (long)label;
}

static int ce_args_ok(const float *logits, const float *label, size_t B, size_t C) {
    if (!logits || !label || B == 0 || C == 0) return 0;
    for (size_t b = 0; b < B; ++b)
        if (ce_class(label[b], C) < 0) return 0;
    return 1;
}

/* log sum_c exp(row[c]), shifted by the row max. row: (C). */
static double logsumexp(const float *row, size_t C) {
    double mx = row[0], acc = 0.0;
    for (size_t c = 1; c < C; ++c)
        if (row[c] > mx) mx = row[c];
    for (size_t c = 0; c < C; ++c) acc += exp((double)row[c] - mx);
    return mx + log(acc);
}

dc_status ref_task_ce_fwd(double *loss, const float *logits, const float *label, const float *class_w, size_t B,
                          size_t C) {
    if (!loss || !ce_args_ok(logits, label, B, C)) return DC_ERR_ARG;
    double num = 0.0, den = 0.0;
    for (size_t b = 0; b < B; ++b) {
        long y = ce_class(label[b], C);
        double w = class_w ? (double)class_w[y] : 1.0;
        num += w * (logsumexp(logits + b * C, C) - logits[b * C + (size_t)y]);
        den += w;
    }
    *loss = num / den;
    return DC_OK;
}

dc_status ref_task_ce_bwd(float *dlogits, double dloss, const float *logits, const float *label,
                          const float *class_w, size_t B, size_t C) {
    if (!dlogits || !ce_args_ok(logits, label, B, C)) return DC_ERR_ARG;
    double den = 0.0;
    for (size_t b = 0; b < B; ++b) den += class_w ? (double)class_w[ce_class(label[b], C)] : 1.0;
    for (size_t b = 0; b < B; ++b) {
        long y = ce_class(label[b], C);
        double w = dloss * (class_w ? (double)class_w[y] : 1.0) / den;
        double lse = logsumexp(logits + b * C, C);
        /* d nll / d logit_c = softmax_c - [c == y] */
        for (size_t c = 0; c < C; ++c)
            dlogits[b * C + c] += (float)(w * (exp((double)logits[b * C + c] - lse) - (c == (size_t)y ? 1.0 : 0.0)));
    }
    return DC_OK;
}

/* ======================================================================================
 * §6 supervised contrastive loss
 * ====================================================================================== */

dc_status ref_supcon_class(long *cls, float label, int classification) {
    if (!cls || !isfinite(label)) return DC_ERR_ARG;
    if (classification) {
        if (fabsf(label) >= 1e15f) return DC_ERR_ARG;
        *cls = (long)label; /* .long() truncates */
        return DC_OK;
    }
    float y = label < -3.0f ? -3.0f : label > 3.0f ? 3.0f : label;
    *cls = (long)rintf(y) + 3; /* torch.round: half to even (default rounding mode) */
    return DC_OK;
}

/* Row-normalised features and the per-row facts of the loss. */
struct supcon {
    double *fn;    /* (B, q) F / max(|F|, 1e-12) */
    double *nrm;   /* (B) raw row norms */
    double *rmax;  /* (B) row max of the logits, diagonal included (detached) */
    double *ssum;  /* (B) sum_{j != i} exp(logit_ij - rmax_i), before the 1e-8 floor */
    long *cls;     /* (B) contrastive classes */
    size_t *npos;  /* (B) positives of each row */
    size_t nvalid; /* rows with at least one positive */
    void *buf;
};

static double supcon_logit(const struct supcon *s, size_t i, size_t j, size_t q, double inv_t) {
    double acc = 0.0;
    for (size_t k = 0; k < q; ++k) acc += s->fn[i * q + k] * s->fn[j * q + k];
    return acc * inv_t;
}

static dc_status supcon_prepare(struct supcon *s, const float *f, const float *label, size_t B, size_t q,
                                int classification, float temperature) {
    if (!f || !label || B == 0 || q == 0 || !isfinite(temperature) || temperature <= 0.0f) return DC_ERR_ARG;
    size_t nd = B * q + 3 * B;
    s->buf = malloc(nd * sizeof(double) + B * (sizeof(long) + sizeof(size_t)));
    if (!s->buf) return DC_ERR_NOMEM;
    s->fn = s->buf;
    s->nrm = s->fn + B * q;
    s->rmax = s->nrm + B;
    s->ssum = s->rmax + B;
    s->cls = (long *)(s->ssum + B);
    s->npos = (size_t *)(s->cls + B);
    for (size_t i = 0; i < B; ++i)
        if (ref_supcon_class(&s->cls[i], label[i], classification) != DC_OK) {
            free(s->buf);
            return DC_ERR_ARG;
        }
    for (size_t i = 0; i < B; ++i) {
        double acc = 0.0;
        for (size_t k = 0; k < q; ++k) acc += (double)f[i * q + k] * f[i * q + k];
        s->nrm[i] = sqrt(acc);
        double d = s->nrm[i] < DC_REF_NORMALIZE_EPS ? DC_REF_NORMALIZE_EPS : s->nrm[i];
        for (size_t k = 0; k < q; ++k) s->fn[i * q + k] = (double)f[i * q + k] / d;
    }
    double inv_t = 1.0 / (double)temperature;
    s->nvalid = 0;
    for (size_t i = 0; i < B; ++i) {
        s->npos[i] = 0;
        s->rmax[i] = -INFINITY;
        for (size_t j = 0; j < B; ++j) {
            double l = supcon_logit(s, i, j, q, inv_t);
            if (l > s->rmax[i]) s->rmax[i] = l;
            if (j != i && s->cls[j] == s->cls[i]) ++s->npos[i];
        }
        s->ssum[i] = 0.0;
        for (size_t j = 0; j < B; ++j)
            if (j != i) s->ssum[i] += exp(supcon_logit(s, i, j, q, inv_t) - s->rmax[i]);
        if (s->npos[i] > 0) ++s->nvalid;
    }
    return DC_OK;
}

dc_status ref_supcon_fwd(double *loss, const float *f, const float *label, size_t B, size_t q, int classification,
                         float temperature) {
    if (!loss) return DC_ERR_ARG;
    struct supcon s;
    dc_status rc = supcon_prepare(&s, f, label, B, q, classification, temperature);
    if (rc != DC_OK) return rc;
    double inv_t = 1.0 / (double)temperature, acc = 0.0;
    for (size_t i = 0; i < B; ++i) {
        if (s.npos[i] == 0) continue;
        double lse = log(s.ssum[i] < DC_REF_SUPCON_DENOM_FLOOR ? DC_REF_SUPCON_DENOM_FLOOR : s.ssum[i]);
        double row = 0.0;
        for (size_t j = 0; j < B; ++j)
            if (j != i && s.cls[j] == s.cls[i]) row += supcon_logit(&s, i, j, q, inv_t) - s.rmax[i] - lse;
        acc += row / (double)s.npos[i];
    }
    *loss = s.nvalid ? -acc / (double)s.nvalid : 0.0;
    free(s.buf);
    return DC_OK;
}

dc_status ref_supcon_bwd(float *df, double dloss, const float *f, const float *label, size_t B, size_t q,
                         int classification, float temperature) {
    if (!df) return DC_ERR_ARG;
    struct supcon s;
    dc_status rc = supcon_prepare(&s, f, label, B, q, classification, temperature);
    if (rc != DC_OK) return rc;
    if (s.nvalid == 0) {
        free(s.buf);
        return DC_OK;
    }
    double *dfn = malloc(q * sizeof(double));
    if (!dfn) {
        free(s.buf);
        return DC_ERR_NOMEM;
    }
    double inv_t = 1.0 / (double)temperature, w = -dloss / (double)s.nvalid;
    /* A[i][k] = dL/dlogit_ik for a valid row i, k != i:
     *   w * ([k positive] / npos_i - [ssum_i >= 1e-8] exp(logit_ik - rmax_i) / ssum_i);
     * the row max is detached and the diagonal takes no part. logit_ik = fn_i . fn_k / T,
     * so dfn_i = sum_k (A[i][k] + A[k][i]) fn_k / T. */
    for (size_t i = 0; i < B; ++i) {
        for (size_t k = 0; k < q; ++k) dfn[k] = 0.0;
        for (size_t j = 0; j < B; ++j) {
            if (j == i) continue;
            double a = 0.0;
            size_t rows[2] = {i, j}, cols[2] = {j, i};
            for (int t = 0; t < 2; ++t) {
                size_t r = rows[t], c = cols[t];
                if (s.npos[r] == 0) continue;
                double ar = s.cls[c] == s.cls[r] ? 1.0 / (double)s.npos[r] : 0.0;
                if (s.ssum[r] >= DC_REF_SUPCON_DENOM_FLOOR)
                    ar -= exp(supcon_logit(&s, r, c, q, inv_t) - s.rmax[r]) / s.ssum[r];
                a += w * ar;
            }
            for (size_t k = 0; k < q; ++k) dfn[k] += a * s.fn[j * q + k] * inv_t;
        }
        /* fn = F / max(|F|, eps): where |F| >= eps, dF = (dfn - (fn . dfn) fn) / |F|;
         * where the clamp is active, dF = dfn / eps. */
        if (s.nrm[i] >= DC_REF_NORMALIZE_EPS) {
            double dot = 0.0;
            for (size_t k = 0; k < q; ++k) dot += s.fn[i * q + k] * dfn[k];
            for (size_t k = 0; k < q; ++k) df[i * q + k] += (float)((dfn[k] - dot * s.fn[i * q + k]) / s.nrm[i]);
        } else {
            for (size_t k = 0; k < q; ++k) df[i * q + k] += (float)(dfn[k] / DC_REF_NORMALIZE_EPS);
        }
    }
    free(dfn);
    free(s.buf);
    return DC_OK;
}
