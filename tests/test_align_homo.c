/* Finite-difference and value checks of the plain-C loss references in
 * host/backend/ref/ref_homo.c: distribution statistics, MMD, decoupling cosine, task
 * losses (MSE, L1, smooth L1, BCE on non-zero labels, weighted CE) and the supervised
 * contrastive loss.
 *
 * Every loss is a double scalar L(inputs). Each backward is run with dloss = DLOSS into
 * gradient arrays pre-filled with random values (subtracted afterwards, which checks the
 * "adds" rule) and compared with central differences
 *     (L(x + h) - L(x - h)) / ((x + h) - (x - h))   per input element,
 * the denominator taken from the float values actually used, h = HREL * max(|x|, HMIN).
 * The measure is sum |analytic - fd| / sum |fd| per tensor; a failure names the case,
 * the tensor and the worst element. Cases drive the clamps active: a constant and a
 * near-constant column (variance floor), duplicate rows (MMD distance), zero vectors
 * (cosine eps), an empty-denominator row (contrastive 1e-8 floor), B = 1 (covariance). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ref/ref_homo.h"
#include "test_util.h"

/* Observed errors are below 1e-7 (double losses, h = 1e-3 relative); a wrong term, sign,
 * factor or clamp errs by 1e-3 or more (see the mutation notes in the report). */
#define TOL 1e-5
#define HREL 1e-3
#define HMIN 1e-4
#define DLOSS 0.7

/* ---- deterministic random numbers (splitmix64) ---- */

static uint64_t rng_state;

static double rng_unit(void) { return test_unit_double(&rng_state); }

static void fill_uniform(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; ++i) x[i] = (float)(lo + (hi - lo) * rng_unit());
}

static float *xalloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}

/* ---- generic finite-difference harness ---- */

#define MAX_IN 6

struct fd_case {
    const char *name;
    size_t nin;
    float *in[MAX_IN];       /* inputs to differentiate */
    size_t n[MAX_IN];        /* their lengths */
    const char *tname[MAX_IN];
    /* the loss at the current inputs */
    double (*loss)(const struct fd_case *c);
    /* adds dloss * dL/d(in[t]) into g[t] */
    void (*grad)(const struct fd_case *c, float *const *g, double dloss);
    const void *ctx; /* per-case sizes and options */
};

/* Returns the worst relative error over the tensors; asserts it is below tol. */
static double fd_check(const struct fd_case *c, double tol) {
    float *g[MAX_IN], *pre[MAX_IN];
    for (size_t t = 0; t < c->nin; ++t) {
        g[t] = xalloc(c->n[t]);
        pre[t] = xalloc(c->n[t]);
        fill_uniform(pre[t], c->n[t], -1e-3f, 1e-3f); /* small: keeps float rounding of g low */
        memcpy(g[t], pre[t], c->n[t] * sizeof(float));
    }
    c->grad(c, g, DLOSS);
    double worst = 0.0;
    for (size_t t = 0; t < c->nin; ++t) {
        double sum_err = 0.0, sum_fd = 0.0, max_err = -1.0;
        size_t at = 0;
        double at_a = 0.0, at_fd = 0.0;
        for (size_t i = 0; i < c->n[t]; ++i) {
            float x0 = c->in[t][i];
            float h = (float)(HREL * fmax(fabs((double)x0), HMIN));
            float xp = x0 + h, xm = x0 - h;
            c->in[t][i] = xp;
            double lp = c->loss(c);
            c->in[t][i] = xm;
            double lm = c->loss(c);
            c->in[t][i] = x0;
            double fd = DLOSS * (lp - lm) / ((double)xp - (double)xm);
            double a = (double)g[t][i] - (double)pre[t][i];
            double e = fabs(a - fd);
            sum_err += e;
            sum_fd += fabs(fd);
            if (e > max_err) {
                max_err = e;
                at = i;
                at_a = a;
                at_fd = fd;
            }
        }
        double rel = sum_fd > 0.0 ? sum_err / sum_fd : sum_err;
        if (getenv("DECOCL_GRAD_VERBOSE"))
            fprintf(stderr, "%-28s %-4s rel %.3g (mean |fd| %.3g)\n", c->name, c->tname[t], rel,
                    sum_fd / (double)c->n[t]);
        ck_assert_msg(rel <= tol, "%s: d%s: rel err %.3g > %.3g; worst [%zu] analytic %.9g fd %.9g", c->name,
                      c->tname[t], rel, tol, at, at_a, at_fd);
        if (rel > worst) worst = rel;
        free(g[t]);
        free(pre[t]);
    }
    return worst;
}

#define OK(call) ck_assert_int_eq((call), DC_OK)

/* ======================================================================================
 * distribution statistics
 * ====================================================================================== */

struct sizes {
    size_t B, p;
};

static double stats_loss(const struct fd_case *c) {
    const struct sizes *s = c->ctx;
    double l;
    OK(ref_homo_stats_fwd(&l, c->in[0], c->in[1], c->in[2], s->B, s->p));
    return l;
}

static void stats_grad(const struct fd_case *c, float *const *g, double dloss) {
    const struct sizes *s = c->ctx;
    OK(ref_homo_stats_bwd(g[0], g[1], g[2], dloss, c->in[0], c->in[1], c->in[2], s->B, s->p));
}

/* mean_n (z - mean z)^2 of column j, in double. */
static double column_var(const float *z, size_t B, size_t p, size_t j) {
    double mu = 0.0, v = 0.0;
    for (size_t n = 0; n < B; ++n) mu += z[n * p + j];
    mu /= (double)B;
    for (size_t n = 0; n < B; ++n) v += (z[n * p + j] - mu) * (z[n * p + j] - mu);
    return v / (double)B;
}

static void run_stats(const char *name, size_t B, size_t p, int clamp_columns) {
    struct sizes s = {B, p};
    struct fd_case c = {.name = name, .nin = 3, .loss = stats_loss, .grad = stats_grad, .ctx = &s,
                        .tname = {"zl", "za", "zv"}};
    for (int m = 0; m < 3; ++m) {
        c.in[m] = xalloc(B * p);
        c.n[m] = B * p;
        /* different spreads and offsets so the three distributions differ */
        fill_uniform(c.in[m], B * p, -1.0f + 0.3f * (float)m, 1.0f + 0.2f * (float)m);
        for (size_t i = 0; i < B * p; i += 3) c.in[m][i] *= c.in[m][i] * (1.5f + (float)m); /* skew */
    }
    if (clamp_columns) {
        /* za column 1 constant (zero: the perturbation stays far inside the floor);
         * zv column 2 nearly constant, mean_n Z^2 < 1e-6 but Z != 0, so the floor is
         * active while m3 and Z carry gradient. */
        for (size_t n = 0; n < B; ++n) c.in[1][n * p + 1] = 0.0f;
        for (size_t n = 0; n < B; ++n) c.in[2][n * p + 2] = (float)(1e-3 * (2.0 * rng_unit() - 1.0));
        ck_assert(column_var(c.in[1], B, p, 1) < DC_REF_STATS_VAR_FLOOR);
        double v = column_var(c.in[2], B, p, 2);
        ck_assert_msg(v < DC_REF_STATS_VAR_FLOOR && v > 1e-9, "near-constant column var %g", v);
    }
    fd_check(&c, TOL);
    for (int m = 0; m < 3; ++m) free(c.in[m]);
}

START_TEST(stats_grad_plain) {
    rng_state = 11;
    run_stats("stats B=9 p=4", 9, 4, 0);
}
END_TEST

START_TEST(stats_grad_var_floor) {
    rng_state = 12;
    run_stats("stats B=7 p=5 floor", 7, 5, 1);
}
END_TEST

START_TEST(stats_grad_batch1) {
    rng_state = 13;
    run_stats("stats B=1 p=3", 1, 3, 0);
}
END_TEST

/* Values by hand: z (B=2, p=1) rows {0, 2} -> mu 1, cov 2 (denominator 1), var 1, skew 0;
 * rows {1, 1} -> mu 1, cov 0, var floor, skew 0; rows {0, 4} -> mu 2, cov 8, skew 0.
 * dist(l,a) = 0 + 4 + 0, dist(l,v) = 1 + 36, dist(a,v) = 1 + 64: L = 106 / 3. */
START_TEST(stats_values) {
    float zl[] = {0, 2}, za[] = {1, 1}, zv[] = {0, 4};
    double l;
    OK(ref_homo_stats_fwd(&l, zl, za, zv, 2, 1));
    ck_assert_double_eq_tol(l, 106.0 / 3.0, 1e-12);
    /* skewness and a 2x2 covariance: z = {0, 0, 3} has mean 1, Z = {-1,-1,2}, mean Z^2 2,
     * mean Z^3 2, skew 2 / 2^1.5; cov = 6 / 2 = 3. Against all-zero z: mu^2 + cov^2 + skew^2. */
    float a[] = {0, 0, 3}, b[] = {0, 0, 0};
    OK(ref_homo_stats_fwd(&l, a, b, b, 3, 1));
    double sk = 2.0 / pow(2.0, 1.5);
    ck_assert_double_eq_tol(l, 2.0 * (1.0 + 9.0 + sk * sk) / 3.0, 1e-12);
}
END_TEST

/* ======================================================================================
 * MMD
 * ====================================================================================== */

struct mmd_ctx {
    size_t B, p, ny;
    float bw;
};

static double mmd_loss(const struct fd_case *c) {
    const struct mmd_ctx *m = c->ctx;
    double l;
    OK(ref_homo_mmd_fwd(&l, c->in[0], c->in[1], c->in[2], m->B, m->p, m->bw));
    return l;
}

static void mmd_grad(const struct fd_case *c, float *const *g, double dloss) {
    const struct mmd_ctx *m = c->ctx;
    OK(ref_homo_mmd_bwd(g[0], g[1], g[2], dloss, c->in[0], c->in[1], c->in[2], m->B, m->p, m->bw));
}

static double mmd_pair_loss(const struct fd_case *c) {
    const struct mmd_ctx *m = c->ctx;
    double l;
    OK(ref_mmd_pair_fwd(&l, c->in[0], m->B, c->in[1], m->ny, m->p, m->bw));
    return l;
}

static void mmd_pair_grad(const struct fd_case *c, float *const *g, double dloss) {
    const struct mmd_ctx *m = c->ctx;
    OK(ref_mmd_pair_bwd(g[0], g[1], dloss, c->in[0], m->B, c->in[1], m->ny, m->p, m->bw));
}

/* MMD by the direct formula sum_k (x_k - y_k)^2, for the value check. */
static double mmd_direct(const float *x, size_t nx, const float *y, size_t ny, size_t p, double bw) {
    const float *s[2] = {x, y};
    size_t n[2] = {nx, ny};
    double term[3] = {0, 0, 0};
    int pairs[3][2] = {{0, 0}, {1, 1}, {0, 1}};
    for (int t = 0; t < 3; ++t) {
        const float *a = s[pairs[t][0]], *b = s[pairs[t][1]];
        size_t na = n[pairs[t][0]], nb = n[pairs[t][1]];
        for (size_t i = 0; i < na; ++i)
            for (size_t j = 0; j < nb; ++j) {
                double d = 0.0;
                for (size_t k = 0; k < p; ++k) {
                    double e = (double)a[i * p + k] - b[j * p + k];
                    d += e * e;
                }
                term[t] += exp(-d / (2.0 * bw));
            }
        term[t] /= (double)(na * nb);
    }
    return term[0] + term[1] - 2.0 * term[2];
}

START_TEST(mmd_grad_duplicates) {
    rng_state = 21;
    struct mmd_ctx m = {.B = 6, .p = 4, .bw = 0.7f};
    struct fd_case c = {.name = "mmd B=6 p=4 dup", .nin = 3, .loss = mmd_loss, .grad = mmd_grad, .ctx = &m,
                        .tname = {"zl", "za", "zv"}};
    for (int t = 0; t < 3; ++t) {
        c.in[t] = xalloc(m.B * m.p);
        c.n[t] = m.B * m.p;
        fill_uniform(c.in[t], m.B * m.p, -1.0f + 0.4f * (float)t, 1.0f);
    }
    /* duplicate rows: a zero distance inside za, and one between zl and zv */
    memcpy(c.in[1] + 3 * m.p, c.in[1] + 1 * m.p, m.p * sizeof(float));
    memcpy(c.in[2] + 2 * m.p, c.in[0] + 0 * m.p, m.p * sizeof(float));
    double bw = (double)m.bw, l;
    double want = (mmd_direct(c.in[0], 6, c.in[1], 6, 4, bw) + mmd_direct(c.in[0], 6, c.in[2], 6, 4, bw) +
                   mmd_direct(c.in[1], 6, c.in[2], 6, 4, bw)) / 3.0;
    OK(ref_homo_mmd_fwd(&l, c.in[0], c.in[1], c.in[2], m.B, m.p, m.bw));
    ck_assert_msg(fabs(l - want) < 1e-12, "mmd %.17g direct %.17g", l, want);
    fd_check(&c, TOL);
    for (int t = 0; t < 3; ++t) free(c.in[t]);
}
END_TEST

START_TEST(mmd_grad_pair_uneven) {
    rng_state = 22;
    struct mmd_ctx m = {.B = 5, .p = 3, .ny = 7, .bw = 1.0f};
    struct fd_case c = {.name = "mmd pair 5x7 p=3", .nin = 2, .loss = mmd_pair_loss, .grad = mmd_pair_grad,
                        .ctx = &m, .tname = {"x", "y"}};
    c.in[0] = xalloc(5 * 3);
    c.in[1] = xalloc(7 * 3);
    c.n[0] = 15;
    c.n[1] = 21;
    fill_uniform(c.in[0], 15, -1.5f, 1.0f);
    fill_uniform(c.in[1], 21, -0.5f, 1.5f);
    double l;
    OK(ref_mmd_pair_fwd(&l, c.in[0], 5, c.in[1], 7, 3, 1.0f));
    ck_assert_double_eq_tol(l, mmd_direct(c.in[0], 5, c.in[1], 7, 3, 1.0), 1e-12);
    fd_check(&c, TOL);
    free(c.in[0]);
    free(c.in[1]);
}
END_TEST

/* ======================================================================================
 * decoupling cosine
 * ====================================================================================== */

struct dec_ctx {
    size_t B, nmod, len[3];
};

static double dec_loss(const struct fd_case *c) {
    const struct dec_ctx *d = c->ctx;
    const float *s[3], *cc[3];
    for (size_t m = 0; m < d->nmod; ++m) {
        s[m] = c->in[2 * m];
        cc[m] = c->in[2 * m + 1];
    }
    double l;
    OK(ref_decouple_loss_fwd(&l, d->nmod, s, cc, d->len, d->B));
    return l;
}

static void dec_grad(const struct fd_case *c, float *const *g, double dloss) {
    const struct dec_ctx *d = c->ctx;
    const float *s[3], *cc[3];
    float *ds[3], *dc[3];
    for (size_t m = 0; m < d->nmod; ++m) {
        s[m] = c->in[2 * m];
        cc[m] = c->in[2 * m + 1];
        ds[m] = g[2 * m];
        dc[m] = g[2 * m + 1];
    }
    OK(ref_decouple_loss_bwd(ds, dc, dloss, d->nmod, s, cc, d->len, d->B));
}

START_TEST(decouple_grad) {
    rng_state = 31;
    struct dec_ctx d = {.B = 5, .nmod = 2, .len = {7, 9}};
    struct fd_case c = {.name = "decouple B=5 L=7,9", .nin = 4, .loss = dec_loss, .grad = dec_grad, .ctx = &d,
                        .tname = {"s0", "c0", "s1", "c1"}};
    for (size_t t = 0; t < 4; ++t) {
        c.n[t] = d.B * d.len[t / 2];
        c.in[t] = xalloc(c.n[t]);
        fill_uniform(c.in[t], c.n[t], -1.0f, 1.0f);
    }
    /* shared direction so cosines are far from 0 */
    for (size_t i = 0; i < c.n[1]; ++i) c.in[1][i] += 0.8f * c.in[0][i];
    for (size_t i = 0; i < c.n[3]; ++i) c.in[3][i] -= 0.5f * c.in[2][i];
    /* zero vectors: s0[2] and c1[4] (norm 0 < eps: cosine 0, no NaN) */
    memset(c.in[0] + 2 * 7, 0, 7 * sizeof(float));
    memset(c.in[3] + 4 * 9, 0, 9 * sizeof(float));
    double l = dec_loss(&c);
    ck_assert(isfinite(l));
    fd_check(&c, TOL);
    for (size_t t = 0; t < 4; ++t) free(c.in[t]);
}
END_TEST

/* Norms below eps: x / max(|x|, 1e-8). s = 1e-10 * u, c = v: cos = 1e-10 (u.v) / (1e-8 |v|).
 * The gradient (torch: the eps clamp runs under no_grad, so autograd still goes through
 * the norm) is y / (1e-8 |v|) - cos / 1e-8 * s / |s| for cos' = 1. */
START_TEST(decouple_tiny_norm) {
    float s[3] = {1e-10f, -2e-10f, 2e-10f}, c[3] = {0.5f, 1.0f, 2.0f};
    double nc = sqrt(0.25 + 1.0 + 4.0);
    double sn = 0.0, dot = 0.0;
    for (int i = 0; i < 3; ++i) {
        sn += (double)s[i] * s[i];
        dot += (double)s[i] * c[i];
    }
    sn = sqrt(sn);
    ck_assert(sn < DC_REF_COSINE_EPS);
    double cs = dot / (DC_REF_COSINE_EPS * nc), l;
    OK(ref_decouple_fwd(&l, s, c, 1, 3));
    ck_assert_double_eq_tol(l, cs * cs, 1e-12);
    float ds[3] = {0, 0, 0}, dc[3] = {0, 0, 0};
    OK(ref_decouple_bwd(ds, dc, 1.0, s, c, 1, 3));
    for (int i = 0; i < 3; ++i) {
        double want = 2.0 * cs * ((double)c[i] / (DC_REF_COSINE_EPS * nc) - cs / DC_REF_COSINE_EPS * s[i] / sn);
        ck_assert_msg(fabs(ds[i] - want) <= 1e-5 * fabs(want), "ds[%d] %g want %g", i, ds[i], want);
    }
}
END_TEST

/* ======================================================================================
 * task losses
 * ====================================================================================== */

struct reg_ctx {
    size_t B;
    const float *label;
    enum dc_ref_task_loss kind;
    float beta, bw;
};

static double reg_loss(const struct fd_case *c) {
    const struct reg_ctx *r = c->ctx;
    double l;
    OK(ref_task_regression_fwd(&l, c->in[0], r->label, r->B, r->kind, r->beta, r->bw));
    return l;
}

static void reg_grad(const struct fd_case *c, float *const *g, double dloss) {
    const struct reg_ctx *r = c->ctx;
    OK(ref_task_regression_bwd(g[0], dloss, c->in[0], r->label, r->B, r->kind, r->beta, r->bw));
}

static void run_reg(const char *name, enum dc_ref_task_loss kind, float beta, float bw) {
    /* out - label: -1.3, -0.2, 0 (exact), 0.3, 0.9, -0.45, 1.7, 0.05, -0.75; labels include zeros */
    static const float label[9] = {0.0f, 1.2f, -0.6f, 0.0f, 2.1f, -1.4f, 0.0f, 0.8f, -2.2f};
    static const float diff[9] = {-1.3f, -0.2f, 0.0f, 0.3f, 0.9f, -0.45f, 1.7f, 0.05f, -0.75f};
    float out[9];
    for (int i = 0; i < 9; ++i) out[i] = label[i] + diff[i];
    struct reg_ctx r = {9, label, kind, beta, bw};
    struct fd_case c = {.name = name, .nin = 1, .in = {out}, .n = {9}, .tname = {"out"}, .loss = reg_loss,
                        .grad = reg_grad, .ctx = &r};
    fd_check(&c, TOL);
}

START_TEST(task_regression_grads) {
    rng_state = 41;
    run_reg("mse", DC_REF_TASK_LOSS_MSE, 0.0f, 0.0f);
    run_reg("l1", DC_REF_TASK_LOSS_L1, 0.0f, 0.0f);
    run_reg("smooth_l1 beta=0.5", DC_REF_TASK_LOSS_SMOOTH_L1, 0.5f, 0.0f);
    run_reg("smooth_l1 beta=1", DC_REF_TASK_LOSS_SMOOTH_L1, 1.0f, 0.0f);
    run_reg("smooth_l1 beta=0", DC_REF_TASK_LOSS_SMOOTH_L1, 0.0f, 0.0f);
    run_reg("mse + bce", DC_REF_TASK_LOSS_MSE, 0.0f, 0.3f);
    run_reg("l1 + bce", DC_REF_TASK_LOSS_L1, 0.0f, 2.0f);
}
END_TEST

START_TEST(task_regression_values) {
    float out[4] = {1.0f, -2.0f, 0.5f, 3.0f}, label[4] = {0.0f, 0.0f, 0.0f, 2.5f};
    double l;
    /* smooth L1 beta 1: diffs 1, -2, 0.5, 0.5 -> 0.5, 1.5, 0.125, 0.125 */
    OK(ref_task_regression_fwd(&l, out, label, 4, DC_REF_TASK_LOSS_SMOOTH_L1, 1.0f, 0.0f));
    ck_assert_double_eq_tol(l, 2.25 / 4.0, 1e-12);
    /* beta 0 is L1 */
    double l1;
    OK(ref_task_regression_fwd(&l, out, label, 4, DC_REF_TASK_LOSS_SMOOTH_L1, 0.0f, 0.0f));
    OK(ref_task_regression_fwd(&l1, out, label, 4, DC_REF_TASK_LOSS_L1, 0.0f, 0.0f));
    ck_assert_double_eq_tol(l, 4.0 / 4.0, 1e-12);
    ck_assert_double_eq_tol(l1, l, 1e-15);
    /* BCE over the one non-zero label (2.5 > 0, logit 3): log(1 + e^-3) */
    OK(ref_task_regression_fwd(&l, out, label, 4, DC_REF_TASK_LOSS_MSE, 0.0f, 0.5f));
    ck_assert_double_eq_tol(l, (1.0 + 4.0 + 0.25 + 0.25) / 4.0 + 0.5 * log1p(exp(-3.0)), 1e-12);
    /* all labels zero: no binary term, no gradient from it */
    float z4[4] = {0, 0, 0, 0}, g[4] = {0, 0, 0, 0};
    OK(ref_task_regression_fwd(&l, out, z4, 4, DC_REF_TASK_LOSS_MSE, 0.0f, 0.5f));
    ck_assert_double_eq_tol(l, (1.0 + 4.0 + 0.25 + 9.0) / 4.0, 1e-12);
    OK(ref_task_regression_bwd(g, 1.0, out, z4, 4, DC_REF_TASK_LOSS_MSE, 0.0f, 0.5f));
    ck_assert_float_eq_tol(g[3], 2.0f * 3.0f / 4.0f, 1e-7f);
    /* L1 at exactly zero difference: sign(0) = 0 */
    float o1[1] = {0.25f}, y1[1] = {0.25f}, g1[1] = {0.0f};
    OK(ref_task_regression_bwd(g1, 1.0, o1, y1, 1, DC_REF_TASK_LOSS_L1, 0.0f, 0.0f));
    ck_assert_float_eq(g1[0], 0.0f);
    /* invalid arguments */
    ck_assert_int_eq(ref_task_regression_fwd(&l, out, label, 4, DC_REF_TASK_LOSS_SMOOTH_L1, -1.0f, 0.0f),
                     DC_ERR_ARG);
    ck_assert_int_eq(ref_task_regression_fwd(&l, out, label, 4, (enum dc_ref_task_loss)7, 0.0f, 0.0f), DC_ERR_ARG);
    ck_assert_int_eq(ref_task_regression_fwd(&l, out, label, 0, DC_REF_TASK_LOSS_MSE, 0.0f, 0.0f), DC_ERR_ARG);
}
END_TEST

struct ce_ctx {
    size_t B, C;
    const float *label, *w;
};

static double ce_loss(const struct fd_case *c) {
    const struct ce_ctx *e = c->ctx;
    double l;
    OK(ref_task_ce_fwd(&l, c->in[0], e->label, e->w, e->B, e->C));
    return l;
}

static void ce_grad(const struct fd_case *c, float *const *g, double dloss) {
    const struct ce_ctx *e = c->ctx;
    OK(ref_task_ce_bwd(g[0], dloss, c->in[0], e->label, e->w, e->B, e->C));
}

START_TEST(task_ce_grads) {
    rng_state = 42;
    const float label[7] = {0, 3, 1, 1, 2, 0, 3}, w[4] = {0.5f, 2.0f, 1.0f, 0.25f};
    float logits[7 * 4];
    fill_uniform(logits, 28, -2.0f, 2.0f);
    struct ce_ctx e = {7, 4, label, NULL};
    struct fd_case c = {.name = "ce unweighted B=7 C=4", .nin = 1, .in = {logits}, .n = {28},
                        .tname = {"logits"}, .loss = ce_loss, .grad = ce_grad, .ctx = &e};
    fd_check(&c, TOL);
    e.w = w;
    c.name = "ce weighted B=7 C=4";
    fd_check(&c, TOL);
    /* value: B=2, C=2, logits {0, 0} (y=0) and {ln 3, 0} (y=1), weights 2 and 1:
     * nll = ln 2 and ln 4; (2 ln 2 + 1 ln 4) / 3 */
    float lg[4] = {0.0f, 0.0f, (float)log(3.0), 0.0f}, lb[2] = {0, 1}, w2[2] = {2.0f, 1.0f};
    double l;
    OK(ref_task_ce_fwd(&l, lg, lb, w2, 2, 2));
    ck_assert_double_eq_tol(l, (2.0 * log(2.0) + log(4.0)) / 3.0, 1e-7);
    float bad[2] = {0, 2};
    ck_assert_int_eq(ref_task_ce_fwd(&l, lg, bad, NULL, 2, 2), DC_ERR_ARG);
}
END_TEST

/* ======================================================================================
 * supervised contrastive loss
 * ====================================================================================== */

struct ct_ctx {
    size_t B, q;
    const float *label;
    int classification;
    float temp;
};

static double ct_loss(const struct fd_case *c) {
    const struct ct_ctx *t = c->ctx;
    double l;
    OK(ref_supcon_fwd(&l, c->in[0], t->label, t->B, t->q, t->classification, t->temp));
    return l;
}

static void ct_grad(const struct fd_case *c, float *const *g, double dloss) {
    const struct ct_ctx *t = c->ctx;
    OK(ref_supcon_bwd(g[0], dloss, c->in[0], t->label, t->B, t->q, t->classification, t->temp));
}

START_TEST(supcon_binning) {
    /* round half to even after clamping to [-3, 3], then + 3 */
    const float y[] = {-2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f, 0.49f, 0.51f, 3.7f, -3.2f, -3.5f, 2.4999f};
    const long want[] = {1, 1, 3, 3, 5, 5, 3, 4, 6, 0, 0, 5};
    for (size_t i = 0; i < sizeof y / sizeof y[0]; ++i) {
        long k;
        OK(ref_supcon_class(&k, y[i], 0));
        ck_assert_msg(k == want[i], "label %g -> %ld, want %ld", (double)y[i], k, want[i]);
    }
    long k;
    OK(ref_supcon_class(&k, 2.0f, 1));
    ck_assert_int_eq(k, 2);
    ck_assert_int_eq(ref_supcon_class(&k, NAN, 0), DC_ERR_ARG);
}
END_TEST

START_TEST(supcon_grad_classes) {
    rng_state = 51;
    /* rows 5 and 6 have no positive; the others do */
    const float label[7] = {0, 0, 1, 1, 1, 2, 3};
    float f[7 * 5];
    fill_uniform(f, 35, -1.0f, 1.0f);
    struct ct_ctx t = {7, 5, label, 1, 0.1f};
    struct fd_case c = {.name = "supcon cls B=7 q=5 T=0.1", .nin = 1, .in = {f}, .n = {35}, .tname = {"F"},
                        .loss = ct_loss, .grad = ct_grad, .ctx = &t};
    fd_check(&c, TOL);
    /* no positive anywhere: 0 and no gradient */
    const float distinct[7] = {0, 1, 2, 3, 4, 5, 6};
    double l;
    OK(ref_supcon_fwd(&l, f, distinct, 7, 5, 1, 0.1f));
    ck_assert_double_eq(l, 0.0);
    float g[35] = {0};
    OK(ref_supcon_bwd(g, 1.0, f, distinct, 7, 5, 1, 0.1f));
    for (int i = 0; i < 35; ++i) ck_assert_float_eq(g[i], 0.0f);
}
END_TEST

START_TEST(supcon_grad_regression) {
    rng_state = 52;
    /* classes 1, 1, 3, 3, 5, 5, 6, 0, 3: x.5 boundaries decide the grouping */
    const float label[9] = {-2.5f, -1.5f, 0.5f, -0.5f, 1.5f, 2.5f, 3.7f, -3.2f, 0.49f};
    float f[9 * 3];
    fill_uniform(f, 27, -1.0f, 1.0f);
    struct ct_ctx t = {9, 3, label, 0, 0.07f};
    struct fd_case c = {.name = "supcon reg B=9 q=3 T=0.07", .nin = 1, .in = {f}, .n = {27}, .tname = {"F"},
                        .loss = ct_loss, .grad = ct_grad, .ctx = &t};
    fd_check(&c, TOL);
}
END_TEST

/* sum_{j != i} exp((cos_ij - max_j cos_ij) / T), the contrastive row denominator. */
static double ct_row_denominator(const float *f, size_t B, size_t q, size_t i, double T) {
    double nrm[16], mx = -INFINITY, s = 0.0, cs[16];
    for (size_t r = 0; r < B; ++r) {
        nrm[r] = 0.0;
        for (size_t k = 0; k < q; ++k) nrm[r] += (double)f[r * q + k] * f[r * q + k];
        nrm[r] = sqrt(nrm[r]);
    }
    for (size_t j = 0; j < B; ++j) {
        cs[j] = 0.0;
        for (size_t k = 0; k < q; ++k) cs[j] += (double)f[i * q + k] * f[j * q + k];
        cs[j] /= nrm[i] * nrm[j] * T;
        if (cs[j] > mx) mx = cs[j];
    }
    for (size_t j = 0; j < B; ++j)
        if (j != i) s += exp(cs[j] - mx);
    return s;
}

START_TEST(supcon_grad_denominator_floor) {
    rng_state = 53;
    /* T = 0.02: rows 0..3 near the basis vectors (cosines near 0, denominators ~ e^-50, below
     * the 1e-8 floor); rows 4, 5 nearly parallel (denominator ~ 1). Rows 0, 1 and 4, 5 are
     * positives; rows 2 and 3 have none. */
    const size_t B = 6, q = 6;
    const float label[6] = {0, 0, 1, 2, 3, 3};
    float f[36];
    fill_uniform(f, 36, -0.05f, 0.05f);
    for (size_t i = 0; i < 4; ++i) f[i * q + i] += 1.0f;
    for (size_t k = 0; k < q; ++k) {
        f[4 * q + k] = (k >= 4 ? 0.7f : 0.0f) + 0.05f * (float)(2.0 * rng_unit() - 1.0);
        f[5 * q + k] = f[4 * q + k] + 0.05f * (float)(2.0 * rng_unit() - 1.0);
    }
    for (size_t i = 0; i < 2; ++i)
        ck_assert_msg(ct_row_denominator(f, B, q, i, 0.02) < DC_REF_SUPCON_DENOM_FLOOR, "row %zu not floored", i);
    ck_assert(ct_row_denominator(f, B, q, 4, 0.02) > DC_REF_SUPCON_DENOM_FLOOR);
    struct ct_ctx t = {B, q, label, 1, 0.02f};
    struct fd_case c = {.name = "supcon floor B=6 q=6 T=0.02", .nin = 1, .in = {f}, .n = {36}, .tname = {"F"},
                        .loss = ct_loss, .grad = ct_grad, .ctx = &t};
    fd_check(&c, TOL);
}
END_TEST

/* Value by hand: B=3, q=2, T=1, rows e0, e0, e1, labels {0, 0, 1}. Row 0: logits to
 * rows 1, 2 are 1, 0; max 1 (diagonal); log-softmax of the positive = -log(1 + e^-1).
 * Row 1 likewise; row 2 has no positive. L = log(1 + e^-1). */
START_TEST(supcon_value) {
    float f[6] = {2, 0, 0.5f, 0, 0, 3};
    const float label[3] = {0, 0, 1};
    double l;
    OK(ref_supcon_fwd(&l, f, label, 3, 2, 1, 1.0f));
    ck_assert_double_eq_tol(l, log1p(exp(-1.0)), 1e-12);
    ck_assert_int_eq(ref_supcon_fwd(&l, f, label, 3, 2, 1, 0.0f), DC_ERR_ARG);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("align_homo");
    TCase *tc = tcase_create("ref");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, stats_grad_plain);
    tcase_add_test(tc, stats_grad_var_floor);
    tcase_add_test(tc, stats_grad_batch1);
    tcase_add_test(tc, stats_values);
    tcase_add_test(tc, mmd_grad_duplicates);
    tcase_add_test(tc, mmd_grad_pair_uneven);
    tcase_add_test(tc, decouple_grad);
    tcase_add_test(tc, decouple_tiny_norm);
    tcase_add_test(tc, task_regression_grads);
    tcase_add_test(tc, task_regression_values);
    tcase_add_test(tc, task_ce_grads);
    tcase_add_test(tc, supcon_binning);
    tcase_add_test(tc, supcon_grad_classes);
    tcase_add_test(tc, supcon_grad_regression);
    tcase_add_test(tc, supcon_grad_denominator_floor);
    tcase_add_test(tc, supcon_value);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(suite(), 0); }
