/* Finite-difference and sanity tests of the reference heterogeneity alignment loss
 * (host/backend/ref/ref_align.[ch], spec section 3). Runs on the plain-C code only.
 *
 * Each forward is evaluated in double, so the gradient of a random linear functional
 * F = sum_o r_o * out_o (r fixed, uniform in [-1, 1)) is compared with central differences
 *     (F(p + h) - F(p - h)) / 2h,   h = FD_H,
 * for every element p of every input. Truncation error is O(h^2 F''') ~ 1e-11 and
 * rounding O(1e-16 |F| / h) ~ 1e-9 here, so the tolerance TOL on
 *     max_i |analytic_i - fd_i| / max_i |fd_i|
 * is 1e-6: a wrong backward term (sign, factor, missing path, clamp passing gradient
 * where it must not) errs by far more (see the mutation notes in the report).
 * Clamps are only tested away from their kink (the tests check the margin), since a
 * central difference across a kink is meaningless.
 *
 * Gradient buffers start with random values that are subtracted afterwards, which checks
 * that backward ADDS. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ref/ref_align.h"
#include "test_util.h"

#define FD_H 1e-6
#define TOL 1e-6

/* Step scale of the current case (1 unless its inputs live on a tiny scale). */
static double fd_scale = 1.0;

/* ---- deterministic random numbers (splitmix64) ---- */

static uint64_t rng_state;

static double rng_unit(void) { return test_unit_double(&rng_state); }

static double rng_range(double lo, double hi) { return lo + (hi - lo) * rng_unit(); }

static double rng_normal(void) {
    double u1 = rng_unit() + 1e-12, u2 = rng_unit();
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

static void fill(double *x, size_t n, double lo, double hi) {
    for (size_t i = 0; i < n; ++i) x[i] = rng_range(lo, hi);
}

static double *xalloc(size_t n) {
    double *p = calloc(n ? n : 1, sizeof(double));
    ck_assert_ptr_nonnull(p);
    return p;
}

static double *xrand(size_t n, double lo, double hi) {
    double *p = xalloc(n);
    fill(p, n, lo, hi);
    return p;
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}

#define OK(call) ck_assert_int_eq((call), DC_OK)

/* ---- finite-difference driver ---- */

typedef double (*fd_fn)(void *ctx);

/* Compares the analytic gradient g (n) of f with central differences over p (n, perturbed
 * in place and restored), step FD_H * fd_scale * max(|p|, 1e-2). Fails naming the case, the
 * tensor and the worst element. With may_vanish, a function that does not depend on p at
 * all passes when the analytic gradient is 0 too (|g| < 1e-12); otherwise that is an error
 * (the case would test nothing). */
static void fd_check(const char *name, const char *tensor, double *p, const double *g, size_t n, fd_fn f, void *ctx,
                     int may_vanish) {
    double max_err = 0.0, max_fd = 0.0;
    size_t worst = 0;
    double worst_fd = 0.0;
    for (size_t i = 0; i < n; ++i) {
        double p0 = p[i], h = FD_H * fd_scale * fmax(fabs(p0), 1e-2);
        p[i] = p0 + h;
        double fp = f(ctx);
        p[i] = p0 - h;
        double fm = f(ctx);
        p[i] = p0;
        double fd = (fp - fm) / (2.0 * h), err = fabs(fd - g[i]);
        if (fabs(fd) > max_fd) max_fd = fabs(fd);
        if (err > max_err) max_err = err, worst = i, worst_fd = fd;
    }
    double rel = max_err / (max_fd > 1e-300 ? max_fd : 1e-300);
    if (getenv("DECOCL_GRAD_VERBOSE")) printf("%-28s %-8s n=%zu max|fd|=%.3e rel=%.3e\n", name, tensor, n, max_fd, rel);
    if (may_vanish && max_fd < 1e-10) {
        for (size_t i = 0; i < n; ++i)
            ck_assert_msg(fabs(g[i]) < 1e-12, "%s: d/d%s: f is flat but analytic [%zu] = %.3e", name, tensor, i, g[i]);
        return;
    }
    ck_assert_msg(max_fd > 1e-8, "%s: d/d%s is identically ~0 (max |fd| %.3e): the case tests nothing", name, tensor,
                  max_fd);
    ck_assert_msg(rel < TOL, "%s: d/d%s rel err %.3e > %.1e (worst [%zu]: analytic %.9e fd %.9e)", name, tensor, rel,
                  TOL, worst, g[worst], worst_fd);
}

/* Analytic gradient buffer starting at random values (remembered) so that "adds" is checked. */
struct gbuf {
    double *g, *init;
    size_t n;
};

static struct gbuf gbuf_new(size_t n) {
    struct gbuf b = {xrand(n, -1, 1), xalloc(n), n};
    memcpy(b.init, b.g, n * sizeof(double));
    return b;
}

static void fd_compare(const char *name, const char *tensor, double *p, const double *g, size_t n, fd_fn f, void *ctx) {
    fd_check(name, tensor, p, g, n, f, ctx, 0);
}

static void gbuf_finish(struct gbuf *b) {
    for (size_t i = 0; i < b->n; ++i) b->g[i] -= b->init[i];
}

static void gbuf_free(struct gbuf *b) {
    free(b->g);
    free(b->init);
}

/* ---- data: overlapping clusters (soft responsibilities) ---- */

/* x (B, d): row n = centre[n % nc] + noise * N(0, 1), centres spread `sep` apart. */
static void fill_clusters(double *x, size_t B, size_t d, size_t nc, double sep, double noise) {
    double *cent = xalloc(nc * d);
    for (size_t i = 0; i < nc * d; ++i) cent[i] = sep * rng_normal();
    for (size_t n = 0; n < B; ++n)
        for (size_t j = 0; j < d; ++j) x[n * d + j] = cent[(n % nc) * d + j] + noise * rng_normal();
    free(cent);
}

/* min over rows of max over prototypes of gamma. When B < K, prototypes k and k + B start
 * on the same row and stay identical through EM (they split their mass evenly), so their
 * responsibilities are merged first: otherwise duplicates would look "soft" while the
 * merged posterior is one-hot. */
static double min_row_max(const double *gamma, size_t B, size_t K) {
    size_t groups = B < K ? B : K;
    double mn = 1.0;
    for (size_t n = 0; n < B; ++n) {
        double mx = 0.0;
        for (size_t gi = 0; gi < groups; ++gi) {
            double s = 0.0;
            for (size_t k = gi; k < K; k += groups) s += gamma[n * K + k];
            mx = fmax(mx, s);
        }
        mn = fmin(mn, mx);
    }
    return mn;
}

/* ================= forward sanity ================= */

START_TEST(init_rows) {
    const size_t want[7] = {0, 2, 5, 8, 10, 12, 15};
    for (size_t k = 0; k < 7; ++k) ck_assert_uint_eq(dc_ref_gmm_init_row(k, 16, 7), want[k]);
    const size_t cyc[4] = {0, 1, 2, 0}; /* B = 3 < K = 4: cyclic */
    for (size_t k = 0; k < 4; ++k) ck_assert_uint_eq(dc_ref_gmm_init_row(k, 3, 4), cyc[k]);
    ck_assert_uint_eq(dc_ref_gmm_init_row(0, 5, 1), 0);  /* one step: start */
    ck_assert_uint_eq(dc_ref_gmm_init_row(3, 10, 4), 9); /* linspace(0, 9, 4) = 0, 3, 6, 9 */
    ck_assert_uint_eq(dc_ref_gmm_init_row(0, 4, 4), 0);
    ck_assert_uint_eq(dc_ref_gmm_init_row(3, 4, 4), 3);
    /* B = 6, K = 5: step 1.25 -> 0, 1.25, 2.5, 3.75, 5 -> 0, 1, 2, 4, 5 (2.5 rounds to even) */
    const size_t w65[5] = {0, 1, 2, 4, 5};
    for (size_t k = 0; k < 5; ++k) ck_assert_uint_eq(dc_ref_gmm_init_row(k, 6, 5), w65[k]);
}
END_TEST

/* GMM with em_iters = 0: mu is the picked rows, var the clamped population variance. */
START_TEST(gmm_init_values) {
    rng_state = 11;
    const size_t B = 16, d = 2, K = 7;
    double *x = xrand(B * d, -1, 1);
    for (size_t n = 0; n < B; ++n) x[n * d + 1] = 0.5 + 1e-4 * (double)(n % 2); /* variance 2.5e-9 */
    double *ga = xalloc(B * K), *mu = xalloc(K * d), *var = xalloc(K * d), *nu = xalloc(K);
    double *w = xalloc(dc_ref_gmm_work_len(B, K, d, 0));
    OK(dc_ref_gmm_fwd(ga, mu, var, nu, w, x, B, d, K, 0, 1e-4));
    const size_t rows[7] = {0, 2, 5, 8, 10, 12, 15};
    double m = 0.0, v = 0.0;
    for (size_t n = 0; n < B; ++n) m += x[n * d];
    m /= (double)B;
    for (size_t n = 0; n < B; ++n) v += (x[n * d] - m) * (x[n * d] - m);
    v /= (double)B;
    double nusum = 0.0;
    for (size_t k = 0; k < K; ++k) {
        ck_assert_double_eq(mu[k * d], x[rows[k] * d]);
        ck_assert_double_eq_tol(var[k * d], v, 1e-15);
        ck_assert_double_eq(var[k * d + 1], 1e-4); /* floor */
        nusum += nu[k];
    }
    ck_assert_double_eq_tol(nusum, 1.0, 1e-12);
    free(x), free(ga), free(mu), free(var), free(nu), free(w);
}
END_TEST

/* Marginals of P approach nu after many iterations; P sums to ~1. */
START_TEST(sinkhorn_marginals) {
    rng_state = 5;
    const size_t K = 4, T = 500;
    double *C = xrand(K * K * K, 0, 1), *nu[3], *P = xalloc(K * K * K), loss;
    for (int m = 0; m < 3; ++m) {
        nu[m] = xrand(K, 0.2, 1);
        double s = 0;
        for (size_t k = 0; k < K; ++k) s += nu[m][k];
        for (size_t k = 0; k < K; ++k) nu[m][k] /= s;
    }
    double *w = xalloc(dc_ref_sinkhorn_work_len(K, T));
    OK(dc_ref_sinkhorn_fwd(P, &loss, w, C, nu[0], nu[1], nu[2], K, T, 0.3));
    double tot = 0, marg[3][4] = {{0}};
    for (size_t a = 0; a < K; ++a)
        for (size_t b = 0; b < K; ++b)
            for (size_t c = 0; c < K; ++c) {
                double p = P[(a * K + b) * K + c];
                tot += p;
                marg[0][a] += p, marg[1][b] += p, marg[2][c] += p;
            }
    ck_assert_msg(fabs(tot - 1.0) < 1e-6, "sum P = %.12f", tot);
    for (int m = 0; m < 3; ++m)
        for (size_t k = 0; k < K; ++k)
            ck_assert_msg(fabs(marg[m][k] - nu[m][k]) < 1e-6, "marginal %d[%zu] %.9f vs nu %.9f", m, k, marg[m][k],
                          nu[m][k]);
    ck_assert(isfinite(loss));
    free(C), free(P), free(w);
    for (int m = 0; m < 3; ++m) free(nu[m]);
}
END_TEST

START_TEST(invalid_args) {
    double x[4] = {0}, g[8], mu[4], var[4], nu[2], w[256];
    ck_assert_int_eq(dc_ref_gmm_fwd(g, mu, var, nu, w, x, 0, 2, 2, 1, 1e-4), DC_ERR_ARG);
    ck_assert_int_eq(dc_ref_gmm_fwd(g, mu, var, nu, w, x, 2, 2, 2, 1, 0.0), DC_ERR_ARG);
    ck_assert_int_eq(dc_ref_gmm_fwd(NULL, mu, var, nu, w, x, 2, 2, 2, 1, 1e-4), DC_ERR_ARG);
    ck_assert_int_eq(dc_ref_w2_cost_fwd(g, mu, var, mu, var, 2, 2, (enum dc_hete_reduction)7), DC_ERR_ARG);
    ck_assert_int_eq(dc_ref_sinkhorn_fwd(NULL, NULL, w, g, nu, nu, nu, 2, 1, 0.1), DC_ERR_ARG);
    ck_assert_int_eq(dc_ref_sinkhorn_fwd(NULL, g, w, g, nu, nu, nu, 2, 1, -1.0), DC_ERR_ARG);
    struct dc_hete_opts o = {.k = 0, .em_iters = 1, .var_floor = 1e-4, .lambda_ot = 0.1, .ot_iters = 1};
    ck_assert_uint_eq(dc_ref_hete_work_len(2, 2, &o), 0);
    const double *xs[3] = {x, x, NULL};
    double l;
    o.k = 2;
    ck_assert_int_eq(dc_ref_hete_fwd_f64(&l, NULL, NULL, w, xs, 2, 2, &o), DC_ERR_ARG);
}
END_TEST

/* ================= GMM-EM gradients ================= */

struct gmm_ctx {
    double *x;
    size_t B, d, K, R;
    double floor;
    double *rg, *rm, *rv, *rn;            /* functional weights */
    double *gamma, *mu, *var, *nu, *work; /* outputs */
};

static double gmm_f(void *p) {
    struct gmm_ctx *c = p;
    ck_assert_int_eq(dc_ref_gmm_fwd(c->gamma, c->mu, c->var, c->nu, c->work, c->x, c->B, c->d, c->K, c->R, c->floor),
                     DC_OK);
    return dot(c->rg, c->gamma, c->B * c->K) + dot(c->rm, c->mu, c->K * c->d) + dot(c->rv, c->var, c->K * c->d) +
           dot(c->rn, c->nu, c->K);
}

struct gmm_case {
    const char *name;
    size_t B, d, K, R;
    double floor;
    size_t nc;
    double sep, noise;
    int flat_dim;   /* make dimension 0 nearly constant: the var floor clamps it */
    int want_soft;  /* assert min_n max_k gamma < 0.9 */
    int want_floor; /* 1: assert the var floor is active for some but not all (k, j); 2: for all */
};

static const struct gmm_case GMM_CASES[] = {
    {"gmm_soft", 12, 3, 3, 5, 1e-4, 3, 0.8, 0.7, 0, 1, 0},
    {"gmm_soft_longer", 10, 2, 4, 8, 1e-4, 2, 0.6, 0.8, 0, 1, 0},
    {"gmm_var_floor", 12, 3, 3, 4, 1e-2, 3, 0.8, 0.7, 1, 1, 1},
    {"gmm_b_lt_k_3_4", 3, 2, 4, 3, 0.1, 3, 0.5, 0.4, 0, 1, 1},
    {"gmm_b_lt_k_2_4", 2, 2, 4, 2, 1.0, 2, 0.5, 0.2, 0, 1, 2},
    {"gmm_b_lt_k_floor", 3, 2, 4, 2, 1e-2, 3, 0.5, 0.5, 1, 1, 1},
    {"gmm_no_rounds", 8, 2, 3, 0, 1e-4, 2, 0.5, 0.7, 0, 1, 0},
};

START_TEST(grad_gmm) {
    const struct gmm_case *tc = &GMM_CASES[_i];
    rng_state = 100 + (uint64_t)_i;
    const size_t B = tc->B, d = tc->d, K = tc->K;
    struct gmm_ctx c = {.x = xalloc(B * d), .B = B, .d = d, .K = K, .R = tc->R, .floor = tc->floor};
    fill_clusters(c.x, B, d, tc->nc, tc->sep, tc->noise);
    if (tc->flat_dim)
        for (size_t n = 0; n < B; ++n) c.x[n * d] = 0.3 + 0.01 * rng_normal(); /* variance ~1e-4 < floor */
    c.rg = xrand(B * K, -1, 1), c.rm = xrand(K * d, -1, 1), c.rv = xrand(K * d, -1, 1), c.rn = xrand(K, -1, 1);
    c.gamma = xalloc(B * K), c.mu = xalloc(K * d), c.var = xalloc(K * d), c.nu = xalloc(K);
    c.work = xalloc(dc_ref_gmm_work_len(B, K, d, tc->R));
    gmm_f(&c);

    double soft = min_row_max(c.gamma, B, K);
    if (getenv("DECOCL_GRAD_VERBOSE")) printf("%s: min_n max_k gamma = %.4f\n", tc->name, soft);
    if (tc->want_soft) ck_assert_msg(soft < 0.9, "%s: responsibilities not soft (min max gamma %.4f)", tc->name, soft);
    size_t active = 0, margin_bad = 0;
    for (size_t i = 0; i < K * d; ++i) {
        if (c.var[i] == tc->floor)
            ++active;
        else if (c.var[i] < tc->floor * 1.001)
            ++margin_bad;
    }
    ck_assert_msg(margin_bad == 0, "%s: a variance sits on the floor's kink", tc->name);
    if (tc->want_floor == 2)
        ck_assert_msg(active == K * d, "%s: var floor active for %zu of %zu", tc->name, active, K * d);
    if (tc->want_floor == 1)
        ck_assert_msg(active > 0 && active < K * d, "%s: var floor active for %zu of %zu", tc->name, active, K * d);

    struct gbuf dx = gbuf_new(B * d);
    OK(dc_ref_gmm_bwd(dx.g, c.rg, c.rm, c.rv, c.rn, c.work, c.x, B, d, K, tc->R, tc->floor));
    gbuf_finish(&dx);
    fd_compare(tc->name, "x", c.x, dx.g, B * d, gmm_f, &c);

    /* each output alone too: a wrong path can hide in the sum */
    double *zero_g = xalloc(B * K), *zero_k = xalloc(K * d), *zero_n = xalloc(K);
    double *saved[4] = {c.rg, c.rm, c.rv, c.rn};
    for (int which = 0; which < 4; ++which) {
        c.rg = which == 0 ? saved[0] : zero_g;
        c.rm = which == 1 ? saved[1] : zero_k;
        c.rv = which == 2 ? saved[2] : zero_k;
        c.rn = which == 3 ? saved[3] : zero_n;
        gmm_f(&c);
        double *g1 = xalloc(B * d);
        OK(dc_ref_gmm_bwd(g1, c.rg, c.rm, c.rv, c.rn, c.work, c.x, B, d, K, tc->R, tc->floor));
        static const char *names[4] = {"x(gamma)", "x(mu)", "x(var)", "x(nu)"};
        /* with every variance on the floor, var does not depend on x: d var / dx is exactly 0;
         * with B = 2 rows and K = 4, gamma[1] is gamma[0] with the two prototype pairs
         * swapped, so nu = 1/4 whatever x is */
        int vanish = (tc->want_floor == 2 && which == 2) || (B == 2 && which == 3);
        fd_check(tc->name, names[which], c.x, g1, B * d, gmm_f, &c, vanish);
        free(g1);
    }
    for (int i = 0; i < 4; ++i) free(saved[i]);
    free(zero_g), free(zero_k), free(zero_n);
    gbuf_free(&dx);
    free(c.x), free(c.gamma), free(c.mu), free(c.var), free(c.nu), free(c.work);
}
END_TEST

/* ================= W2 costs ================= */

struct w2_ctx {
    double *mi, *vi, *mj, *vj, *C, *r;
    size_t K, d;
    enum dc_hete_reduction red;
};

static double w2_f(void *p) {
    struct w2_ctx *c = p;
    ck_assert_int_eq(dc_ref_w2_cost_fwd(c->C, c->mi, c->vi, c->mj, c->vj, c->K, c->d, c->red), DC_OK);
    return dot(c->r, c->C, c->K * c->K);
}

START_TEST(grad_w2) {
    rng_state = 200 + (uint64_t)_i;
    const size_t K = 3 + (size_t)_i, d = 4;
    struct w2_ctx c = {xrand(K * d, -1, 1),
                       xrand(K * d, 1e-3, 2),
                       xrand(K * d, -1, 1),
                       xrand(K * d, 1e-3, 2),
                       xalloc(K * K),
                       xrand(K * K, -1, 1),
                       K,
                       d,
                       _i ? DC_HETE_REDUCTION_SUM : DC_HETE_REDUCTION_MEAN};
    c.vi[0] = 1e-4, c.vj[1] = 2e-4; /* small variances: the sqrt's curvature is large */
    struct gbuf g[4] = {gbuf_new(K * d), gbuf_new(K * d), gbuf_new(K * d), gbuf_new(K * d)};
    w2_f(&c);
    OK(dc_ref_w2_cost_bwd(g[0].g, g[1].g, g[2].g, g[3].g, c.r, c.mi, c.vi, c.mj, c.vj, K, d, c.red));
    for (int i = 0; i < 4; ++i) gbuf_finish(&g[i]);
    const char *nm = _i ? "w2_sum" : "w2_mean";
    fd_compare(nm, "mu_i", c.mi, g[0].g, K * d, w2_f, &c);
    fd_compare(nm, "var_i", c.vi, g[1].g, K * d, w2_f, &c);
    fd_compare(nm, "mu_j", c.mj, g[2].g, K * d, w2_f, &c);
    fd_compare(nm, "var_j", c.vj, g[3].g, K * d, w2_f, &c);
    for (int i = 0; i < 4; ++i) gbuf_free(&g[i]);
    free(c.mi), free(c.vi), free(c.mj), free(c.vj), free(c.C), free(c.r);
}
END_TEST

/* ================= Sinkhorn ================= */

struct sk_ctx {
    double *C, *nu[3], *P, *rP, *work, rl, lambda;
    size_t K, T;
};

static double sk_f(void *p) {
    struct sk_ctx *c = p;
    double loss;
    ck_assert_int_eq(
        dc_ref_sinkhorn_fwd(c->P, &loss, c->work, c->C, c->nu[0], c->nu[1], c->nu[2], c->K, c->T, c->lambda), DC_OK);
    size_t k3 = c->K * c->K * c->K;
    return c->rl * loss + (c->rP ? dot(c->rP, c->P, k3) : 0.0);
}

struct sk_case {
    const char *name;
    size_t K, T;
    double lambda, cmax;
    int with_dp, want_floor;
};

static const struct sk_case SK_CASES[] = {
    {"sinkhorn_basic", 3, 5, 0.5, 1.0, 1, 0},      {"sinkhorn_k4_loss_only", 4, 10, 0.2, 1.0, 0, 0},
    {"sinkhorn_k4_plan", 4, 7, 0.3, 2.0, 1, 0},    {"sinkhorn_kernel_floor", 3, 6, 0.1, 14.0, 1, 1},
    {"sinkhorn_eps_floor", 2, 4, 0.0, 1e-5, 1, 0}, /* lambda 0: eps = 1e-6, no entropy term */
    {"sinkhorn_no_iters", 3, 0, 0.5, 1.0, 1, 0},
};

START_TEST(grad_sinkhorn) {
    const struct sk_case *tc = &SK_CASES[_i];
    rng_state = 300 + (uint64_t)_i;
    const size_t K = tc->K, k3 = K * K * K;
    struct sk_ctx c = {.C = xrand(k3, 0, tc->cmax),
                       .P = xalloc(k3),
                       .rl = rng_range(0.5, 1.5),
                       .lambda = tc->lambda,
                       .K = K,
                       .T = tc->T};
    c.rP = tc->with_dp ? xrand(k3, -1, 1) : NULL;
    for (int m = 0; m < 3; ++m) c.nu[m] = xrand(K, 0.1, 1); /* not normalised: nu is a free input here */
    c.work = xalloc(dc_ref_sinkhorn_work_len(K, tc->T));
    sk_f(&c);
    double eps = fmax(tc->lambda, 1e-6);
    size_t floored = 0, logfloored = 0;
    for (size_t i = 0; i < k3; ++i) {
        double e = c.C[i] / eps;
        ck_assert_msg(fabs(e - (-log(1e-30))) > 1e-3, "%s: C/eps on the kernel floor's kink", tc->name);
        if (exp(-e) < 1e-30) ++floored;
        if (c.P[i] < 1e-8) {
            ++logfloored;
            ck_assert_msg(c.P[i] < 0.999e-8, "%s: P on the log floor's kink", tc->name);
        }
    }
    if (tc->want_floor) {
        ck_assert_msg(floored > 0 && floored < k3, "%s: 1e-30 floor active for %zu of %zu", tc->name, floored, k3);
        ck_assert_msg(logfloored > 0, "%s: the 1e-8 log floor is never active", tc->name);
    }
    if (tc->want_floor) {
        /* Where G = 1e-30 is floored it is a constant, so C enters L_OT only through the
         * direct sum P*C: dL_OT/dC = P exactly. Central differences cannot see this (the
         * effect is O(1e-30)), so check the identity: a kernel floor that passed gradient
         * adds -dG E / eps, of the order of P itself. */
        double *d1 = xalloc(k3);
        OK(dc_ref_sinkhorn_bwd(d1, NULL, NULL, NULL, 1.0, NULL, c.work, c.C, c.nu[0], c.nu[1], c.nu[2], K, tc->T,
                               tc->lambda));
        for (size_t i = 0; i < k3; ++i)
            if (exp(-c.C[i] / eps) < 1e-30)
                ck_assert_msg(fabs(d1[i] - c.P[i]) <= 1e-12 * fabs(c.P[i]), "%s: floored dC[%zu] %.6e != P %.6e",
                              tc->name, i, d1[i], c.P[i]);
        free(d1);
    }
    struct gbuf dC = gbuf_new(k3), dn[3] = {gbuf_new(K), gbuf_new(K), gbuf_new(K)};
    OK(dc_ref_sinkhorn_bwd(dC.g, dn[0].g, dn[1].g, dn[2].g, c.rl, c.rP, c.work, c.C, c.nu[0], c.nu[1], c.nu[2], K,
                           tc->T, tc->lambda));
    gbuf_finish(&dC);
    fd_scale = tc->cmax < 1e-3 ? 1e-6 : 1.0; /* the eps-floor case: C lives on the 1e-6 scale */
    fd_compare(tc->name, "C", c.C, dC.g, k3, sk_f, &c);
    fd_scale = 1.0;
    static const char *nn[3] = {"nu_l", "nu_a", "nu_v"};
    for (int m = 0; m < 3; ++m) {
        gbuf_finish(&dn[m]);
        fd_check(tc->name, nn[m], c.nu[m], dn[m].g, K, sk_f, &c, tc->T == 0); /* T = 0: P = G */
    }
    for (int m = 0; m < 3; ++m) gbuf_free(&dn[m]), free(c.nu[m]);
    gbuf_free(&dC);
    free(c.C), free(c.P), free(c.rP), free(c.work);
}
END_TEST

/* ================= local prototype term ================= */

struct lp_ctx {
    double *x[3], *g[3], *mu[3], *var[3];
    size_t B, d, K;
    enum dc_hete_reduction red;
    int maha;
    double floor;
};

static double lp_f(void *p) {
    struct lp_ctx *c = p;
    double loss;
    const double *x[3] = {c->x[0], c->x[1], c->x[2]}, *g[3] = {c->g[0], c->g[1], c->g[2]};
    const double *mu[3] = {c->mu[0], c->mu[1], c->mu[2]}, *var[3] = {c->var[0], c->var[1], c->var[2]};
    ck_assert_int_eq(dc_ref_local_proto_fwd(&loss, x, g, mu, var, c->B, c->d, c->K, c->red, c->maha, c->floor), DC_OK);
    return 0.7 * loss;
}

START_TEST(grad_local_proto) {
    rng_state = 400 + (uint64_t)_i;
    struct lp_ctx c = {.B = 5,
                       .d = 3,
                       .K = 4,
                       .red = (_i & 1) ? DC_HETE_REDUCTION_SUM : DC_HETE_REDUCTION_MEAN,
                       .maha = (_i & 2) != 0,
                       .floor = 0.05};
    const size_t B = c.B, d = c.d, K = c.K;
    size_t active = 0;
    for (int m = 0; m < 3; ++m) {
        c.x[m] = xrand(B * d, -1, 1), c.g[m] = xrand(B * K, 0, 1), c.mu[m] = xrand(K * d, -1, 1);
        c.var[m] = xrand(K * d, 0.1, 1);
        c.var[m][m] = 0.01; /* below the floor: Mahalanobis clamp active */
    }
    for (int m = 0; m < 3; ++m)
        for (size_t i = 0; i < K * d; ++i) active += c.var[m][i] < c.floor;
    ck_assert(active == 3);
    struct gbuf gx[3], gg[3], gm[3], gv[3];
    double *px[3], *pg[3], *pm[3], *pv[3];
    for (int m = 0; m < 3; ++m) {
        gx[m] = gbuf_new(B * d), gg[m] = gbuf_new(B * K), gm[m] = gbuf_new(K * d), gv[m] = gbuf_new(K * d);
        px[m] = gx[m].g, pg[m] = gg[m].g, pm[m] = gm[m].g, pv[m] = gv[m].g;
    }
    const double *x[3] = {c.x[0], c.x[1], c.x[2]}, *g[3] = {c.g[0], c.g[1], c.g[2]};
    const double *mu[3] = {c.mu[0], c.mu[1], c.mu[2]}, *var[3] = {c.var[0], c.var[1], c.var[2]};
    OK(dc_ref_local_proto_bwd(px, pg, pm, pv, 0.7, x, g, mu, var, B, d, K, c.red, c.maha, c.floor));
    char nm[64];
    snprintf(nm, sizeof nm, "local_proto_%s%s", (_i & 1) ? "sum" : "mean", c.maha ? "_maha" : "");
    static const char *xs[3] = {"x_l", "x_a", "x_v"}, *gs[3] = {"gamma_l", "gamma_a", "gamma_v"};
    static const char *ms[3] = {"mu_l", "mu_a", "mu_v"}, *vs[3] = {"var_l", "var_a", "var_v"};
    for (int m = 0; m < 3; ++m) {
        gbuf_finish(&gx[m]), gbuf_finish(&gg[m]), gbuf_finish(&gm[m]), gbuf_finish(&gv[m]);
        fd_compare(nm, xs[m], c.x[m], gx[m].g, B * d, lp_f, &c);
        fd_compare(nm, gs[m], c.g[m], gg[m].g, B * K, lp_f, &c);
        fd_compare(nm, ms[m], c.mu[m], gm[m].g, K * d, lp_f, &c);
        if (c.maha) {
            fd_compare(nm, vs[m], c.var[m], gv[m].g, K * d, lp_f, &c);
            ck_assert_double_eq(gv[m].g[m], 0.0); /* clamped entry: no gradient */
        } else {
            for (size_t i = 0; i < K * d; ++i) ck_assert_double_eq(gv[m].g[i], 0.0);
        }
    }
    for (int m = 0; m < 3; ++m) {
        gbuf_free(&gx[m]), gbuf_free(&gg[m]), gbuf_free(&gm[m]), gbuf_free(&gv[m]);
        free(c.x[m]), free(c.g[m]), free(c.mu[m]), free(c.var[m]);
    }
}
END_TEST

/* ================= whole L_hete ================= */

struct hete_ctx {
    double *x[3], *work;
    size_t B, d;
    struct dc_hete_opts o;
};

static double hete_f(void *p) {
    struct hete_ctx *c = p;
    double loss;
    const double *x[3] = {c->x[0], c->x[1], c->x[2]};
    ck_assert_int_eq(dc_ref_hete_fwd_f64(&loss, NULL, NULL, c->work, x, c->B, c->d, &c->o), DC_OK);
    return loss;
}

struct hete_case {
    const char *name;
    size_t B, d, K, R, T;
    double floor, lambda;
    enum dc_hete_reduction red;
    int maha;
};

static const struct hete_case HETE_CASES[] = {
    {"hete_default", 8, 3, 3, 5, 10, 1e-4, 0.1, DC_HETE_REDUCTION_MEAN, 0},
    {"hete_sum_maha", 8, 3, 3, 3, 6, 0.05, 0.3, DC_HETE_REDUCTION_SUM, 1},
    {"hete_b_lt_k", 3, 2, 4, 2, 5, 1e-4, 0.5, DC_HETE_REDUCTION_MEAN, 0},
    {"hete_b_lt_k_maha", 2, 2, 3, 2, 4, 1e-2, 0.5, DC_HETE_REDUCTION_MEAN, 1},
};

START_TEST(grad_hete) {
    const struct hete_case *tc = &HETE_CASES[_i];
    rng_state = 500 + (uint64_t)_i;
    struct hete_ctx c = {.B = tc->B,
                         .d = tc->d,
                         .o = {.k = tc->K,
                               .em_iters = tc->R,
                               .var_floor = tc->floor,
                               .lambda_ot = tc->lambda,
                               .ot_iters = tc->T,
                               .reduction = tc->red,
                               .mahalanobis = tc->maha}};
    const size_t B = c.B, d = c.d;
    for (int m = 0; m < 3; ++m) {
        c.x[m] = xalloc(B * d);
        fill_clusters(c.x[m], B, d, 2, 0.7, 0.6);
    }
    if (tc->maha) /* a nearly flat dimension: the var floor (and the Mahalanobis clamp) active */
        for (size_t n = 0; n < B; ++n) c.x[1][n * d] = 0.2 + 0.01 * rng_normal();
    size_t wl = dc_ref_hete_work_len(B, d, &c.o);
    ck_assert_uint_gt(wl, 0);
    c.work = xalloc(wl);
    double lot, lpr, l;
    const double *xc[3] = {c.x[0], c.x[1], c.x[2]};
    OK(dc_ref_hete_fwd_f64(&l, &lot, &lpr, c.work, xc, B, d, &c.o));
    ck_assert(isfinite(l) && fabs(l - (lot + lpr)) < 1e-12);
    struct gbuf g[3] = {gbuf_new(B * d), gbuf_new(B * d), gbuf_new(B * d)};
    double *pg[3] = {g[0].g, g[1].g, g[2].g};
    OK(dc_ref_hete_bwd_f64(pg, 1.0, c.work, xc, B, d, &c.o));
    static const char *xs[3] = {"x_l", "x_a", "x_v"};
    for (int m = 0; m < 3; ++m) {
        gbuf_finish(&g[m]);
        fd_compare(tc->name, xs[m], c.x[m], g[m].g, B * d, hete_f, &c);
    }

    /* float entry points agree with the double ones (to float rounding of x and dx) */
    float *xf[3], *dxf[3];
    for (int m = 0; m < 3; ++m) {
        xf[m] = malloc(B * d * sizeof(float)), dxf[m] = calloc(B * d, sizeof(float));
        ck_assert(xf[m] && dxf[m]);
        for (size_t i = 0; i < B * d; ++i) xf[m][i] = (float)c.x[m][i], c.x[m][i] = xf[m][i];
    }
    OK(dc_ref_hete_fwd_f64(&l, NULL, NULL, c.work, xc, B, d, &c.o));
    for (int m = 0; m < 3; ++m) memset(g[m].g, 0, B * d * sizeof(double));
    OK(dc_ref_hete_bwd_f64(pg, 2.0, c.work, xc, B, d, &c.o));
    float lf;
    const float *xfc[3] = {xf[0], xf[1], xf[2]};
    OK(dc_ref_hete_fwd(&lf, c.work, xfc, B, d, &c.o));
    OK(dc_ref_hete_bwd(dxf, 2.0f, c.work, xfc, B, d, &c.o));
    ck_assert_msg(fabs(lf - l) <= 1e-6 * fabs(l) + 1e-7, "float loss %.9g vs %.9g", lf, l);
    for (int m = 0; m < 3; ++m) {
        for (size_t i = 0; i < B * d; ++i)
            ck_assert_msg(fabs(dxf[m][i] - g[m].g[i]) <= 1e-5 * fabs(g[m].g[i]) + 1e-6, "float dx %g vs %g", dxf[m][i],
                          g[m].g[i]);
        free(xf[m]), free(dxf[m]);
        gbuf_free(&g[m]);
        free(c.x[m]);
    }
    free(c.work);
}
END_TEST

#define NCASES(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(void) {
    Suite *s = suite_create("align_hete");
    TCase *tf = tcase_create("forward");
    tcase_add_test(tf, init_rows);
    tcase_add_test(tf, gmm_init_values);
    tcase_add_test(tf, sinkhorn_marginals);
    tcase_add_test(tf, invalid_args);
    suite_add_tcase(s, tf);
    TCase *tg = tcase_create("finite_differences");
    tcase_set_timeout(tg, 120); /* milliseconds each; sanitizers slow that down */
    tcase_add_loop_test(tg, grad_gmm, 0, NCASES(GMM_CASES));
    tcase_add_loop_test(tg, grad_w2, 0, 2);
    tcase_add_loop_test(tg, grad_sinkhorn, 0, NCASES(SK_CASES));
    tcase_add_loop_test(tg, grad_local_proto, 0, 4);
    tcase_add_loop_test(tg, grad_hete, 0, NCASES(HETE_CASES));
    suite_add_tcase(s, tg);
    return test_run_suite(s, 0);
}
