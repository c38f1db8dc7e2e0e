/* Op cases of the heterogeneity loss: gmm_fwd/bwd, sinkhorn_fwd/bwd, local_proto_fwd/bwd,
 * and the whole L_hete composite (dc_hete_fwd/bwd, filed under gmm_fwd/gmm_bwd) at the
 * golden cases' shapes. A backward case runs its forward first (the tape is the
 * forward's); tapes are backend-private, so they are marked scratch (guards checked,
 * contents not compared), while the forward outputs a backward case recomputes are
 * compared too. Three-modality inputs are one tensor (3, B, d) split into views.
 *
 * Parameters: p = B, d, K, R (em_iters), T (ot_iters), reduction, mahalanobis;
 * f = var_floor, lambda_ot, dloss. */
#include "bench/op_cases.h"

static struct dc_hete_opts opts_of(const struct dc_op_case *c) {
    return (struct dc_hete_opts){.k = c->p[2], .em_iters = c->p[3], .var_floor = c->f[0], .lambda_ot = c->f[1],
                                 .ot_iters = c->p[4], .reduction = (enum dc_hete_reduction)c->p[5],
                                 .mahalanobis = (int)c->p[6]};
}

/* Modality m's (B, d) part of a stacked view. */
static dc_view part(dc_view v, size_t m, size_t n) { return dc_view_of(v.mem, v.off + m * n, n); }

/* The forward outputs gamma, mu, var, nu packed in one view (3BK + 3Kd + 3Kd + 3K). */
struct gmm_out {
    dc_view gamma, mu, var, nu;
};
static struct gmm_out gmm_out_of(dc_view v, size_t B, size_t d, size_t K) {
    size_t nbk = 3 * B * K, nkd = 3 * K * d;
    return (struct gmm_out){dc_view_of(v.mem, v.off, nbk), dc_view_of(v.mem, v.off + nbk, nkd),
                            dc_view_of(v.mem, v.off + nbk + nkd, nkd), dc_view_of(v.mem, v.off + nbk + 2 * nkd, 3 * K)};
}

/* tensors: gamma, mu, var, nu, tape, x */
static dc_status run_gmm_fwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    struct dc_hete_opts o = opts_of(c);
    size_t B = c->p[0], d = c->p[1];
    return dc_gmm_fwd(be, t[0], t[1], t[2], t[3], t[4], part(t[5], 0, B * d), part(t[5], 1, B * d),
                      part(t[5], 2, B * d), B, d, &o);
}
/* tensors: dx, dgamma, dmu, dvar, dnu, fwd outputs, tape, x */
static dc_status run_gmm_bwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    struct dc_hete_opts o = opts_of(c);
    size_t B = c->p[0], d = c->p[1], bd = B * d;
    struct gmm_out f = gmm_out_of(t[5], B, d, o.k);
    dc_view x0 = part(t[7], 0, bd), x1 = part(t[7], 1, bd), x2 = part(t[7], 2, bd);
    dc_status st = dc_gmm_fwd(be, f.gamma, f.mu, f.var, f.nu, t[6], x0, x1, x2, B, d, &o);
    if (st != DC_OK) return st;
    return dc_gmm_bwd(be, part(t[0], 0, bd), part(t[0], 1, bd), part(t[0], 2, bd), t[1], t[2], t[3], t[4], t[6], x0,
                      x1, x2, B, d, &o);
}
/* tensors: loss, tape, mu, var, nu */
static dc_status run_sinkhorn_fwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    struct dc_hete_opts o = opts_of(c);
    return dc_sinkhorn_fwd(be, t[0], t[1], t[2], t[3], t[4], c->p[1], &o);
}
/* tensors: dmu, dvar, dnu, loss, tape, mu, var, nu */
static dc_status run_sinkhorn_bwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    struct dc_hete_opts o = opts_of(c);
    dc_status st = dc_sinkhorn_fwd(be, t[3], t[4], t[5], t[6], t[7], c->p[1], &o);
    return st != DC_OK ? st : dc_sinkhorn_bwd(be, t[0], t[1], t[2], t[4], t[5], t[6], t[7], c->p[1], &o, c->f[2]);
}
/* tensors: loss, x, gamma, mu, var */
static dc_status run_local_proto_fwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    struct dc_hete_opts o = opts_of(c);
    size_t B = c->p[0], d = c->p[1], bd = B * d;
    return dc_local_proto_fwd(be, t[0], part(t[1], 0, bd), part(t[1], 1, bd), part(t[1], 2, bd), t[2], t[3], t[4], B,
                              d, &o);
}
/* tensors: dx, dgamma, dmu, dvar, x, gamma, mu, var */
static dc_status run_local_proto_bwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    struct dc_hete_opts o = opts_of(c);
    size_t B = c->p[0], d = c->p[1], bd = B * d;
    return dc_local_proto_bwd(be, part(t[0], 0, bd), part(t[0], 1, bd), part(t[0], 2, bd), t[1], t[2], t[3],
                              part(t[4], 0, bd), part(t[4], 1, bd), part(t[4], 2, bd), t[5], t[6], t[7], B, d, &o,
                              c->f[2]);
}
/* tensors: loss, tape, x */
static dc_status run_hete_fwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    struct dc_hete_opts o = opts_of(c);
    size_t B = c->p[0], d = c->p[1], bd = B * d;
    return dc_hete_fwd(be, t[0], t[1], part(t[2], 0, bd), part(t[2], 1, bd), part(t[2], 2, bd), B, d, &o);
}
/* tensors: dx, loss, tape, x */
static dc_status run_hete_bwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    struct dc_hete_opts o = opts_of(c);
    size_t B = c->p[0], d = c->p[1], bd = B * d;
    dc_view x0 = part(t[3], 0, bd), x1 = part(t[3], 1, bd), x2 = part(t[3], 2, bd);
    dc_status st = dc_hete_fwd(be, t[1], t[2], x0, x1, x2, B, d, &o);
    if (st != DC_OK) return st;
    return dc_hete_bwd(be, part(t[0], 0, bd), part(t[0], 1, bd), part(t[0], 2, bd), t[2], x0, x1, x2, B, d, &o,
                       c->f[2]);
}

/* One configuration; xr is the half-range of the uniform pooled features. */
struct hete_shape {
    const char *name;
    size_t B, d, K, R, T;
    int sum, maha;
    float var_floor, lambda, xr;
};

static struct dc_op_case *add_case(struct dc_case_list *l, enum dc_op op, dc_case_run_fn run, float tol,
                                   const char *what, const struct hete_shape *s) {
    struct dc_op_case *c =
        dc_case_add(l, op, run, tol, "%s %s B=%zu d=%zu K=%zu R=%zu T=%zu%s%s", what, s->name, s->B, s->d, s->K, s->R,
                    s->T, s->sum ? " sum" : "", s->maha ? " maha" : "");
    c->p[0] = s->B, c->p[1] = s->d, c->p[2] = s->K, c->p[3] = s->R, c->p[4] = s->T;
    c->p[5] = s->sum ? DC_HETE_REDUCTION_SUM : DC_HETE_REDUCTION_MEAN, c->p[6] = (size_t)s->maha;
    c->f[0] = s->var_floor, c->f[1] = s->lambda, c->f[2] = 0.75f;
    return c;
}

static void tensor(struct dc_op_case *c, const char *name, size_t n, enum dc_fill_kind fill, float lo, float hi,
                   bool written) {
    dc_case_tensor(c, name, n, fill, lo, hi, written);
}
/* A tape: NaN at the start (the forward must write before it reads), not compared. */
static void tape(struct dc_op_case *c, size_t n) {
    dc_case_tensor(c, "tape", n, DC_FILL_NAN, 0, 0, true);
    c->t[c->nt - 1].scratch = true;
}

static void add_shape(struct dc_case_list *l, const struct hete_shape *s, float tol) {
    const size_t B = s->B, d = s->d, K = s->K, M = DC_HETE_M;
    const size_t x3 = M * B * d, nbk = M * B * K, nkd = M * K * d, nk = M * K;
    struct dc_hete_opts o = {.k = K, .em_iters = s->R, .ot_iters = s->T};
    const float xr = s->xr, vlo = s->var_floor * 0.5f; /* some variances below the floor */
    struct dc_op_case *c = add_case(l, DC_OP_gmm_fwd, run_gmm_fwd, tol, "gmm_fwd", s);
    tensor(c, "gamma", nbk, DC_FILL_NAN, 0, 0, true);
    tensor(c, "mu", nkd, DC_FILL_NAN, 0, 0, true);
    tensor(c, "var", nkd, DC_FILL_NAN, 0, 0, true);
    tensor(c, "nu", nk, DC_FILL_NAN, 0, 0, true);
    tape(c, dc_gmm_tape_len(B, d, &o));
    tensor(c, "x", x3, DC_FILL_UNIFORM, -xr, xr, false);

    c = add_case(l, DC_OP_gmm_bwd, run_gmm_bwd, tol, "gmm_bwd", s);
    tensor(c, "dx", x3, DC_FILL_UNIFORM, -1, 1, true);
    tensor(c, "dgamma", nbk, DC_FILL_UNIFORM, -1, 1, false);
    tensor(c, "dmu", nkd, DC_FILL_UNIFORM, -1, 1, false);
    tensor(c, "dvar", nkd, DC_FILL_UNIFORM, -1, 1, false);
    tensor(c, "dnu", nk, DC_FILL_UNIFORM, -1, 1, false);
    tensor(c, "gmm_out", nbk + 2 * nkd + nk, DC_FILL_NAN, 0, 0, true);
    tape(c, dc_gmm_tape_len(B, d, &o));
    tensor(c, "x", x3, DC_FILL_UNIFORM, -xr, xr, false);

    c = add_case(l, DC_OP_sinkhorn_fwd, run_sinkhorn_fwd, tol, "sinkhorn_fwd", s);
    tensor(c, "loss", 1, DC_FILL_NAN, 0, 0, true);
    tape(c, dc_sinkhorn_tape_len(d, &o));
    tensor(c, "mu", nkd, DC_FILL_UNIFORM, -xr, xr, false);
    tensor(c, "var", nkd, DC_FILL_UNIFORM, vlo, xr * xr, false);
    tensor(c, "nu", nk, DC_FILL_UNIFORM, 0.05f, 0.6f, false);

    c = add_case(l, DC_OP_sinkhorn_bwd, run_sinkhorn_bwd, tol, "sinkhorn_bwd", s);
    tensor(c, "dmu", nkd, DC_FILL_UNIFORM, -1, 1, true);
    tensor(c, "dvar", nkd, DC_FILL_UNIFORM, -1, 1, true);
    tensor(c, "dnu", nk, DC_FILL_UNIFORM, -1, 1, true);
    tensor(c, "loss", 1, DC_FILL_NAN, 0, 0, true);
    tape(c, dc_sinkhorn_tape_len(d, &o));
    tensor(c, "mu", nkd, DC_FILL_UNIFORM, -xr, xr, false);
    tensor(c, "var", nkd, DC_FILL_UNIFORM, vlo, xr * xr, false);
    tensor(c, "nu", nk, DC_FILL_UNIFORM, 0.05f, 0.6f, false);

    c = add_case(l, DC_OP_local_proto_fwd, run_local_proto_fwd, tol, "local_proto_fwd", s);
    tensor(c, "loss", 1, DC_FILL_NAN, 0, 0, true);
    tensor(c, "x", x3, DC_FILL_UNIFORM, -xr, xr, false);
    tensor(c, "gamma", nbk, DC_FILL_UNIFORM, 0, 1, false);
    tensor(c, "mu", nkd, DC_FILL_UNIFORM, -xr, xr, false);
    tensor(c, "var", nkd, DC_FILL_UNIFORM, vlo, xr * xr, false);

    c = add_case(l, DC_OP_local_proto_bwd, run_local_proto_bwd, tol, "local_proto_bwd", s);
    tensor(c, "dx", x3, DC_FILL_UNIFORM, -1, 1, true);
    tensor(c, "dgamma", nbk, DC_FILL_UNIFORM, -1, 1, true);
    tensor(c, "dmu", nkd, DC_FILL_UNIFORM, -1, 1, true);
    tensor(c, "dvar", nkd, DC_FILL_UNIFORM, -1, 1, true);
    tensor(c, "x", x3, DC_FILL_UNIFORM, -xr, xr, false);
    tensor(c, "gamma", nbk, DC_FILL_UNIFORM, 0, 1, false);
    tensor(c, "mu", nkd, DC_FILL_UNIFORM, -xr, xr, false);
    tensor(c, "var", nkd, DC_FILL_UNIFORM, vlo, xr * xr, false);
}

static void add_composite(struct dc_case_list *l, const struct hete_shape *s, float tol) {
    const size_t x3 = DC_HETE_M * s->B * s->d;
    struct dc_hete_opts o = {.k = s->K, .em_iters = s->R, .ot_iters = s->T};
    struct dc_op_case *c = add_case(l, DC_OP_gmm_fwd, run_hete_fwd, tol, "hete_fwd", s);
    tensor(c, "loss", 1, DC_FILL_NAN, 0, 0, true);
    tape(c, dc_hete_tape_len(s->B, s->d, &o));
    tensor(c, "x", x3, DC_FILL_UNIFORM, -s->xr, s->xr, false);
    c = add_case(l, DC_OP_gmm_bwd, run_hete_bwd, tol, "hete_bwd", s);
    tensor(c, "dx", x3, DC_FILL_UNIFORM, -1, 1, true);
    tensor(c, "loss", 1, DC_FILL_NAN, 0, 0, true);
    tape(c, dc_hete_tape_len(s->B, s->d, &o));
    tensor(c, "x", x3, DC_FILL_UNIFORM, -s->xr, s->xr, false);
}

/* The golden cases (shared/golden/<case>/config.json: batch, d_model, K, R, T, floor,
 * reduction, mahalanobis; ot_reg 0.1) with features of realistic size. */
static const struct hete_shape golden[] = {
    {"mosi", 16, 64, 7, 5, 50, 0, 0, 1e-4f, 0.1f, 1.0f},
    {"sims", 12, 32, 7, 5, 50, 0, 0, 1e-4f, 0.1f, 0.5f},
    {"iemocap", 16, 48, 6, 5, 50, 0, 0, 1e-4f, 0.1f, 1.0f},
    {"soft", 12, 8, 3, 5, 50, 0, 0, 0.05f, 0.1f, 0.3f},
    {"edge", 5, 16, 7, 5, 50, 1, 1, 1e-4f, 0.1f, 1.0f},
};

/* Odd shapes: B < K (cyclic init), K = 1, no EM rounds, no Sinkhorn iterations, a
 * variance floor that clamps, soft responsibilities, both reductions, mahalanobis, a
 * small ot_reg and one so small that the Gibbs kernel hits its 1e-30 floor. */
static const struct hete_shape odd[] = {
    {"plain", 7, 5, 3, 2, 3, 0, 0, 1e-4f, 0.1f, 1.0f},
    {"b<k", 3, 4, 5, 2, 4, 0, 1, 1e-4f, 0.1f, 1.0f},
    {"k1", 9, 3, 1, 3, 2, 1, 0, 1e-4f, 0.1f, 1.0f},
    {"em0", 6, 7, 4, 0, 5, 0, 0, 1e-4f, 0.1f, 1.0f},
    {"ot0", 5, 6, 3, 2, 0, 1, 1, 1e-4f, 0.1f, 1.0f},
    {"clamp", 11, 5, 3, 3, 6, 0, 1, 0.2f, 0.1f, 1.0f},
    {"soft", 13, 6, 3, 4, 8, 1, 0, 0.05f, 0.1f, 0.3f},
    {"small-eps", 8, 4, 3, 2, 20, 0, 0, 1e-4f, 0.02f, 0.5f},
    {"kernel-floor", 6, 4, 3, 2, 5, 0, 0, 1e-4f, 1e-3f, 0.3f}, /* exp(-C/eps) partly below 1e-30 */
    {"tiny", 1, 1, 2, 1, 2, 0, 1, 1e-4f, 0.1f, 1.0f}, /* one row, one feature */
};

/* MOSI and SIMS reference configs (configs/mosi.cfg, configs/sims.cfg): batch, d_model, K, R, T. */
static const struct hete_shape bench[] = {
    {"mosi", 32, 64, 7, 5, 50, 0, 0, 1e-4f, 0.1f, 1.0f},
    {"sims", 24, 32, 7, 5, 50, 0, 0, 1e-4f, 0.1f, 0.5f},
};

/* Tolerance (nmse) against ref. With cl_khr_fp64 the kernels compute in double and
 * their float outputs matched ref bit for bit on PoCL; the float fallback (the
 * parity_hete_fp32 test forces it) reached 1.5e-10 at worst over five input seeds. */
#define HETE_TOL 1e-9f

void dc_cases_hete(struct dc_case_list *l, bool bench_shapes) {
    if (bench_shapes) {
        for (size_t i = 0; i < sizeof bench / sizeof bench[0]; ++i) {
            add_shape(l, &bench[i], HETE_TOL);
            add_composite(l, &bench[i], HETE_TOL);
        }
        return;
    }
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; ++i) add_shape(l, &odd[i], HETE_TOL);
    for (size_t i = 0; i < sizeof golden / sizeof golden[0]; ++i) {
        add_shape(l, &golden[i], HETE_TOL);
        add_composite(l, &golden[i], HETE_TOL);
    }
}
