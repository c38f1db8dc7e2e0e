/* Finite-difference checks of the heterogeneity-loss backward ops on ref (gmm_bwd,
 * sinkhorn_bwd, local_proto_bwd and the dc_hete_bwd composite), in the situations the
 * oracle's own tests cover: B < K (cyclic init), K = 1, no EM rounds, no Sinkhorn
 * iterations, a variance floor that clamps, soft responsibilities (asserted soft, so the
 * E-step softmax is differentiated for real), both reductions, mahalanobis on and off,
 * a small ot_reg. (The Gibbs kernel's 1e-30 floor leaves gradients too small for float
 * finite differences here; test_align_hete checks it on the oracle, test_ops_parity's
 * kernel-floor case checks the OpenCL kernels against it.)
 *
 * For outputs out_k and fixed random weights r_k, L = sum_k r_k . out_k (in double), so
 * the backward is fed the r_k as upstream gradients and compared with central
 * differences (L(x + e) - L(x - e)) / ((x + e) - (x - e)) per input element, as in
 * test_grad.c: mean |analytic - fd| over a tensor relative to mean |fd|. Gradient
 * buffers start from random non-zero values subtracted afterwards (the ops ADD).
 * The composite is also compared with the double oracle dc_ref_hete_fwd. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ref/ref_align.h"
#include "test_util.h"

/* Print every comparison (DECOCL_GRAD_VERBOSE=1): for choosing tolerances. */
static int verbose;

/* Float outputs of double internals, e = 1e-3: rounding noise of L over 2e-3 stays
 * below 1e-4 of the gradients here; a wrong term errs by far more than the tolerance. */
#define FD_EPS 1e-3f
#define FD_TOL 2e-3

static uint64_t rng_state;
static float urand(float lo, float hi) { return (float)(lo + (hi - lo) * test_unit_double(&rng_state)); }

enum kind { GMM, OT, PROTO, HETE };

#define MAXT 4
struct problem {
    const char *what;
    enum kind kind;
    size_t B, d;
    struct dc_hete_opts o;
    struct dc_backend *be;
    struct dc_error err;
    struct dc_mem *mem[4 * MAXT + 2];
    size_t nmem;
    size_t nin, nout;
    const char *in_name[MAXT];
    dc_view in[MAXT], out[MAXT], up[MAXT], grad[MAXT];
    float *h[MAXT], *r[MAXT], *pre[MAXT];
    dc_view tape;
};

#define OK(p, call)                                                                                 \
    do {                                                                                            \
        dc_status rc_ = (call);                                                                     \
        ck_assert_msg(rc_ == DC_OK, "%s failed: %s (%s)", #call, dc_status_str(rc_), (p)->err.msg); \
    } while (0)

static dc_view alloc(struct problem *p, size_t n) {
    ck_assert(p->nmem < sizeof p->mem / sizeof p->mem[0]);
    OK(p, dc_mem_alloc(p->be, n, &p->mem[p->nmem]));
    return dc_view_of(p->mem[p->nmem++], 0, n);
}

static float *host_new(size_t n, float lo, float hi) {
    float *h = malloc(n * sizeof *h);
    ck_assert_ptr_nonnull(h);
    for (size_t i = 0; i < n; ++i) h[i] = urand(lo, hi);
    return h;
}

static dc_view part(dc_view v, size_t m, size_t n) { return dc_view_of(v.mem, v.off + m * n, n); }

static void add_input(struct problem *p, const char *name, size_t n, float lo, float hi) {
    size_t i = p->nin++;
    p->in_name[i] = name;
    p->h[i] = host_new(n, lo, hi);
    p->in[i] = alloc(p, n);
    OK(p, dc_upload(p->be, p->in[i], p->h[i]));
    p->grad[i] = alloc(p, n);
    p->pre[i] = host_new(n, 0.25f, 1.5f);
    OK(p, dc_upload(p->be, p->grad[i], p->pre[i]));
}

/* Moves values of input i within 20 e of the variance floor off it: the clamp's kink
 * would make a central difference there meaningless. */
static void keep_off_floor(struct problem *p, size_t i) {
    const float fl = (float)p->o.var_floor, gap = 20 * FD_EPS;
    for (size_t k = 0; k < p->in[i].n; ++k)
        if (fabsf(p->h[i][k] - fl) < gap) p->h[i][k] = p->h[i][k] < fl ? fl - gap : fl + gap;
    OK(p, dc_upload(p->be, p->in[i], p->h[i]));
}

static void add_output(struct problem *p, size_t n) {
    size_t i = p->nout++;
    p->out[i] = alloc(p, n);
    p->r[i] = host_new(n, -1, 1);
    p->up[i] = alloc(p, n);
    OK(p, dc_upload(p->be, p->up[i], p->r[i]));
}

static void problem_open(struct problem *p, const char *what, enum kind kind, size_t B, size_t d,
                         struct dc_hete_opts o, float xr) {
    memset(p, 0, sizeof *p);
    p->what = what, p->kind = kind, p->B = B, p->d = d, p->o = o;
    ck_assert_msg(dc_backend_open_ref(&p->be, &p->err) == DC_OK, "ref: %s", p->err.msg);
    const size_t M = DC_HETE_M, K = o.k, x3 = M * B * d, nkd = M * K * d;
    const float vhi = xr * xr + 2.0f * (float)o.var_floor; /* some variances below the floor */
    switch (kind) {
    case GMM:
        add_input(p, "x", x3, -xr, xr);
        add_output(p, M * B * K); /* gamma */
        add_output(p, nkd);       /* mu */
        add_output(p, nkd);       /* var */
        add_output(p, M * K);     /* nu */
        p->tape = alloc(p, dc_gmm_tape_len(B, d, &o));
        break;
    case OT:
        add_input(p, "mu", nkd, -xr, xr);
        add_input(p, "var", nkd, 0.05f * vhi, vhi);
        keep_off_floor(p, 1);
        add_input(p, "nu", M * K, 0.05f, 0.6f);
        add_output(p, 1);
        p->tape = alloc(p, dc_sinkhorn_tape_len(d, &o));
        break;
    case PROTO:
        add_input(p, "x", x3, -xr, xr);
        add_input(p, "gamma", M * B * K, 0, 1);
        add_input(p, "mu", nkd, -xr, xr);
        add_input(p, "var", nkd, 0.05f * vhi, vhi);
        keep_off_floor(p, 3);
        add_output(p, 1);
        break;
    case HETE:
        add_input(p, "x", x3, -xr, xr);
        add_output(p, 1);
        p->tape = alloc(p, dc_hete_tape_len(B, d, &o));
        break;
    }
}

static void problem_close(struct problem *p) {
    for (size_t i = 0; i < p->nin; ++i) free(p->h[i]), free(p->pre[i]);
    for (size_t i = 0; i < p->nout; ++i) free(p->r[i]);
    for (size_t i = 0; i < p->nmem; ++i) dc_mem_free(p->be, p->mem[i]);
    dc_backend_close(p->be);
}

static void forward(struct problem *p) {
    const size_t B = p->B, d = p->d, bd = B * d;
    const struct dc_hete_opts *o = &p->o;
    switch (p->kind) {
    case GMM:
        OK(p, dc_gmm_fwd(p->be, p->out[0], p->out[1], p->out[2], p->out[3], p->tape, part(p->in[0], 0, bd),
                         part(p->in[0], 1, bd), part(p->in[0], 2, bd), B, d, o));
        break;
    case OT:
        OK(p, dc_sinkhorn_fwd(p->be, p->out[0], p->tape, p->in[0], p->in[1], p->in[2], d, o));
        break;
    case PROTO:
        OK(p, dc_local_proto_fwd(p->be, p->out[0], part(p->in[0], 0, bd), part(p->in[0], 1, bd),
                                 part(p->in[0], 2, bd), p->in[1], p->in[2], p->in[3], B, d, o));
        break;
    case HETE:
        OK(p, dc_hete_fwd(p->be, p->out[0], p->tape, part(p->in[0], 0, bd), part(p->in[0], 1, bd),
                          part(p->in[0], 2, bd), B, d, o));
        break;
    }
}

static double loss(struct problem *p) {
    forward(p);
    double l = 0.0;
    for (size_t k = 0; k < p->nout; ++k) {
        float *h = malloc(p->out[k].n * sizeof *h);
        ck_assert_ptr_nonnull(h);
        OK(p, dc_download(p->be, h, p->out[k]));
        for (size_t i = 0; i < p->out[k].n; ++i) l += (double)h[i] * (double)p->r[k][i];
        free(h);
    }
    return l;
}

/* Runs forward and backward; what the backward added per input (caller frees). */
static double *analytic(struct problem *p, size_t which) {
    const size_t B = p->B, d = p->d, bd = B * d;
    const struct dc_hete_opts *o = &p->o;
    for (size_t i = 0; i < p->nin; ++i) OK(p, dc_upload(p->be, p->grad[i], p->pre[i]));
    forward(p);
    dc_view *g = p->grad, *x = p->in;
    switch (p->kind) {
    case GMM:
        OK(p, dc_gmm_bwd(p->be, part(g[0], 0, bd), part(g[0], 1, bd), part(g[0], 2, bd), p->up[0], p->up[1],
                         p->up[2], p->up[3], p->tape, part(x[0], 0, bd), part(x[0], 1, bd), part(x[0], 2, bd), B, d,
                         o));
        break;
    case OT:
        OK(p, dc_sinkhorn_bwd(p->be, g[0], g[1], g[2], p->tape, x[0], x[1], x[2], d, o, p->r[0][0]));
        break;
    case PROTO:
        OK(p, dc_local_proto_bwd(p->be, part(g[0], 0, bd), part(g[0], 1, bd), part(g[0], 2, bd), g[1], g[2], g[3],
                                 part(x[0], 0, bd), part(x[0], 1, bd), part(x[0], 2, bd), x[1], x[2], x[3], B, d, o,
                                 p->r[0][0]));
        break;
    case HETE:
        OK(p, dc_hete_bwd(p->be, part(g[0], 0, bd), part(g[0], 1, bd), part(g[0], 2, bd), p->tape,
                          part(x[0], 0, bd), part(x[0], 1, bd), part(x[0], 2, bd), B, d, o, p->r[0][0]));
        break;
    }
    size_t n = g[which].n;
    float *h = malloc(n * sizeof *h);
    double *a = malloc(n * sizeof *a);
    ck_assert(h && a);
    OK(p, dc_download(p->be, h, g[which]));
    for (size_t i = 0; i < n; ++i) a[i] = (double)h[i] - (double)p->pre[which][i];
    free(h);
    return a;
}

static void set_elem(struct problem *p, size_t which, size_t i, float v) {
    p->h[which][i] = v;
    OK(p, dc_upload(p->be, dc_view_of(p->in[which].mem, p->in[which].off + i, 1), &v));
}

static void check_input(struct problem *p, size_t which, int may_be_zero) {
    double *a = analytic(p, which);
    size_t n = p->in[which].n, worst = 0;
    double sum_err = 0.0, sum_fd = 0.0, worst_err = -1.0, worst_fd = 0.0;
    for (size_t i = 0; i < n; ++i) {
        float x0 = p->h[which][i], xp = x0 + FD_EPS, xm = x0 - FD_EPS;
        set_elem(p, which, i, xp);
        double lp = loss(p);
        set_elem(p, which, i, xm);
        double lm = loss(p);
        set_elem(p, which, i, x0);
        double fd = (lp - lm) / ((double)xp - (double)xm), e = fabs(a[i] - fd);
        sum_err += e;
        sum_fd += fabs(fd);
        if (!(e <= worst_err)) worst_err = e, worst = i, worst_fd = fd;
    }
    double mae = sum_err / (double)n, mfd = sum_fd / (double)n;
    if (verbose)
        printf("%-44s d%-6s n %4zu  mean|fd| %.3e  mae/mean|fd| %.2e\n", p->what, p->in_name[which], n, mfd,
               mfd > 0 ? mae / mfd : mae);
    ck_assert_msg(may_be_zero || mfd > 1e-6, "%s: d%s: the gradient is all zero: the case tests nothing", p->what, p->in_name[which]);
    ck_assert_msg(isfinite(mae) && mae <= FD_TOL * mfd + 1e-9,
                  "%s: d%s: mean abs error %.3g > %.0e x mean |fd| %.3g; worst %s[%zu]: analytic %.7g, fd %.7g",
                  p->what, p->in_name[which], mae, FD_TOL, mfd, p->in_name[which], worst, a[worst], worst_fd);
    free(a);
}

static void check_all(struct problem *p) {
    for (size_t i = 0; i < p->nin; ++i) {
        if (p->kind == PROTO && i == 3 && !p->o.mahalanobis) continue; /* var is not read */
        check_input(p, i, p->kind == OT && i == 2 && p->o.ot_iters == 0); /* the plan is G: nu unused */
    }
}

/* Fraction of gamma entries (the GMM's first output) strictly inside (0.02, 0.98). */
static double soft_fraction(struct problem *p) {
    forward(p);
    size_t n = p->out[0].n, soft = 0;
    float *g = malloc(n * sizeof *g);
    ck_assert_ptr_nonnull(g);
    OK(p, dc_download(p->be, g, p->out[0]));
    for (size_t i = 0; i < n; ++i) soft += g[i] > 0.02f && g[i] < 0.98f;
    free(g);
    return (double)soft / (double)n;
}

struct fd_case {
    const char *name;
    size_t B, d, K, R, T;
    int sum, maha;
    float var_floor, lambda, xr;
    int soft; /* assert soft responsibilities */
};

static const struct fd_case cases[] = {
    {"soft", 12, 8, 3, 5, 6, 0, 0, 0.05f, 0.1f, 0.3f, 1},
    {"soft sum maha", 9, 5, 3, 3, 4, 1, 1, 0.1f, 0.1f, 0.3f, 1},
    {"b<k", 3, 4, 5, 2, 4, 0, 1, 0.05f, 0.1f, 0.3f, 0},
    {"k1", 7, 3, 1, 2, 3, 1, 0, 0.05f, 0.1f, 0.3f, 0},
    {"em0", 6, 5, 4, 0, 5, 0, 0, 0.05f, 0.1f, 0.3f, 1},
    {"ot0", 5, 6, 3, 2, 0, 0, 1, 0.05f, 0.1f, 0.3f, 0},
    {"clamp", 10, 4, 3, 3, 6, 0, 1, 0.3f, 0.1f, 1.0f, 1},
    {"small-eps", 8, 4, 3, 2, 20, 0, 0, 0.05f, 0.02f, 0.3f, 0},
};
#define NCASES (sizeof cases / sizeof cases[0])

static struct dc_hete_opts opts_of(const struct fd_case *c) {
    return (struct dc_hete_opts){.k = c->K, .em_iters = c->R, .var_floor = c->var_floor, .lambda_ot = c->lambda,
                                 .ot_iters = c->T, .reduction = c->sum ? DC_HETE_REDUCTION_SUM : DC_HETE_REDUCTION_MEAN,
                                 .mahalanobis = c->maha};
}

static void run_kind(enum kind kind, const char *op, int i) {
    const struct fd_case *c = &cases[i];
    char what[96];
    snprintf(what, sizeof what, "%s %s", op, c->name);
    rng_state = 0x4E7E + (uint64_t)i * 131 + (uint64_t)kind;
    struct problem p;
    problem_open(&p, what, kind, c->B, c->d, opts_of(c), c->xr);
    if (kind == GMM && c->soft) {
        double f = soft_fraction(&p);
        ck_assert_msg(f >= 0.2, "%s: only %.0f%% of the responsibilities are soft", what, 100 * f);
    }
    check_all(&p);
    problem_close(&p);
}

START_TEST(gmm_fd) { run_kind(GMM, "gmm", _i); }
END_TEST
START_TEST(sinkhorn_fd) { run_kind(OT, "sinkhorn", _i); }
END_TEST
START_TEST(local_proto_fd) { run_kind(PROTO, "local_proto", _i); }
END_TEST
START_TEST(hete_fd) { run_kind(HETE, "hete", _i); }
END_TEST

/* The composite on ref equals the double oracle up to the float rounding of the
 * intermediate views (gamma, mu, var, nu) and of the loss. */
/* The golden cases' shapes and options (shared/golden/<case>/config.json). */
static const struct fd_case golden[] = {
    {"golden mosi", 16, 64, 7, 5, 50, 0, 0, 1e-4f, 0.1f, 1.0f, 0},
    {"golden sims", 12, 32, 7, 5, 50, 0, 0, 1e-4f, 0.1f, 0.5f, 0},
    {"golden iemocap", 16, 48, 6, 5, 50, 0, 0, 1e-4f, 0.1f, 1.0f, 0},
    {"golden soft", 12, 8, 3, 5, 50, 0, 0, 0.05f, 0.1f, 0.3f, 0},
    {"golden edge", 5, 16, 7, 5, 50, 1, 1, 1e-4f, 0.1f, 1.0f, 0},
};
#define NGOLDEN (sizeof golden / sizeof golden[0])

static void matches_oracle(const struct fd_case *c, uint64_t seed) {
    rng_state = seed;
    struct problem p;
    problem_open(&p, c->name, HETE, c->B, c->d, opts_of(c), c->xr);
    float got;
    forward(&p);
    OK(&p, dc_download(p.be, &got, p.out[0]));
    double *work = calloc(dc_ref_hete_work_len(c->B, c->d, &p.o), sizeof(double));
    ck_assert_ptr_nonnull(work);
    const size_t bd = c->B * c->d;
    const float *x[DC_HETE_M] = {p.h[0], p.h[0] + bd, p.h[0] + 2 * bd};
    float want;
    ck_assert(dc_ref_hete_fwd(&want, work, x, c->B, c->d, &p.o) == DC_OK);
    double dl = fabs((double)got - (double)want) / fmax(1.0, fabs((double)want));
    ck_assert_msg(dl <= 1e-5,
                  "%s: composite %.9g, oracle %.9g", c->name, (double)got, (double)want);
    /* and the gradients */
    float *dx = calloc(3 * bd, sizeof(float));
    ck_assert_ptr_nonnull(dx);
    float *dxo[DC_HETE_M] = {dx, dx + bd, dx + 2 * bd};
    ck_assert(dc_ref_hete_bwd(dxo, 0.75f, work, x, c->B, c->d, &p.o) == DC_OK);
    p.r[0][0] = 0.75f;
    double *a = analytic(&p, 0), err = 0.0, norm = 0.0;
    for (size_t i = 0; i < 3 * bd; ++i) {
        err += (a[i] - dx[i]) * (a[i] - dx[i]);
        norm += (double)dx[i] * dx[i];
    }
    if (verbose)
        printf("%-44s composite vs oracle: loss %.2e, |dx err| / |dx| %.2e\n", c->name, dl,
               sqrt(err) / fmax(sqrt(norm), 1e-300));
    ck_assert_msg(sqrt(err) <= 1e-4 * sqrt(norm) + 1e-9, "%s: composite dx differs from the oracle: %.3g of %.3g",
                  c->name, sqrt(err), sqrt(norm));
    free(a);
    free(dx);
    free(work);
    problem_close(&p);
}

START_TEST(hete_matches_oracle) { matches_oracle(&cases[_i], 0x0AC1E + (uint64_t)_i); }
END_TEST
START_TEST(hete_golden_matches_oracle) { matches_oracle(&golden[_i], 0x601DE + (uint64_t)_i); }
END_TEST

/* The composite is 4 ops forward and 4 backward (one launch each on OpenCL) and moves
 * no data between host and device: the lead keeps the features on the device. */
START_TEST(hete_op_count) {
    const struct fd_case *c = &cases[0];
    struct problem p;
    rng_state = 7;
    problem_open(&p, c->name, HETE, c->B, c->d, opts_of(c), c->xr);
    struct dc_backend_stats s0, s1, s2;
    dc_backend_stats_get(p.be, &s0);
    forward(&p);
    dc_backend_stats_get(p.be, &s1);
    const size_t bd = c->B * c->d;
    OK(&p, dc_hete_bwd(p.be, part(p.grad[0], 0, bd), part(p.grad[0], 1, bd), part(p.grad[0], 2, bd), p.tape,
                       part(p.in[0], 0, bd), part(p.in[0], 1, bd), part(p.in[0], 2, bd), c->B, c->d, &p.o, 1.0f));
    dc_backend_stats_get(p.be, &s2);
    ck_assert_uint_eq(s1.ops - s0.ops, 4);
    ck_assert_uint_eq(s2.ops - s1.ops, 4);
    ck_assert_uint_eq(s2.reads - s0.reads, 0);
    ck_assert_uint_eq(s2.writes - s0.writes, 0);
    problem_close(&p);
}
END_TEST

int main(void) {
    const char *v = getenv("DECOCL_GRAD_VERBOSE");
    verbose = v && *v && strcmp(v, "0") != 0;
    Suite *s = suite_create("grad_hete");
    TCase *tc = tcase_create("fd");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, gmm_fd, 0, (int)NCASES);
    tcase_add_loop_test(tc, sinkhorn_fd, 0, (int)NCASES);
    tcase_add_loop_test(tc, local_proto_fd, 0, (int)NCASES);
    tcase_add_loop_test(tc, hete_fd, 0, (int)NCASES);
    tcase_add_loop_test(tc, hete_matches_oracle, 0, (int)NCASES);
    tcase_add_loop_test(tc, hete_golden_matches_oracle, 0, (int)NGOLDEN);
    tcase_add_test(tc, hete_op_count);
    suite_add_tcase(s, tc);
    return test_run_suite(s, 0);
}
