/* The heterogeneity-loss ops on ref: thin wrappers of the double-precision oracle
 * host/backend/ref/ref_align.c. Float views are widened to double on the way in and
 * rounded on the way out; everything in between (and the tapes) stays double. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/hete_layout.h"
#include "backend/ref/ref_internal.h"

/* The tape view as doubles, aligned to 8 bytes (the ref allocation is). */
static double *tape_f64(dc_view v) {
    float *p = ref_ptr(v);
    return (double *)(void *)(p + (((uintptr_t)p & 7) ? 1 : 0));
}

static void widen(double *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] = src[i];
}
static void narrow(float *dst, const double *src, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] = (float)src[i];
}
static void add_narrow(float *dst, const double *src, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] += (float)src[i];
}

/* One modality's GMM tape (see dc_hete_gmm_units). */
struct gmm_tape {
    double *work, *x, *gamma, *mu, *var, *nu, *dx, *dgamma, *dmu, *dvar, *dnu;
};

static struct gmm_tape gmm_tape_of(dc_view tape, int m, size_t B, size_t d, const struct dc_hete_opts *o) {
    const size_t K = o->k;
    double *w = tape_f64(tape) + (size_t)m * dc_hete_gmm_units(B, d, K, o->em_iters);
    struct gmm_tape g;
    g.work = w, w += dc_ref_gmm_work_len(B, K, d, o->em_iters);
    g.x = w, w += B * d;
    g.gamma = w, w += B * K;
    g.mu = w, w += K * d;
    g.var = w, w += K * d;
    g.nu = w, w += K;
    g.dx = w, w += B * d;
    g.dgamma = w, w += B * K;
    g.dmu = w, w += K * d;
    g.dvar = w, w += K * d;
    g.dnu = w;
    return g;
}

dc_status ref_gmm_fwd(struct dc_backend *be, dc_view gamma, dc_view mu, dc_view var, dc_view nu, dc_view tape,
                      dc_view xl, dc_view xa, dc_view xv, size_t B, size_t d, const struct dc_hete_opts *o) {
    const size_t K = o->k;
    const dc_view x[DC_HETE_M] = {xl, xa, xv};
    for (int m = 0; m < DC_HETE_M; ++m) {
        struct gmm_tape g = gmm_tape_of(tape, m, B, d, o);
        widen(g.x, ref_ptr(x[m]), B * d);
        dc_status st = dc_ref_gmm_fwd(g.gamma, g.mu, g.var, g.nu, g.work, g.x, B, d, K, o->em_iters, o->var_floor);
        if (st != DC_OK) return dc_set_error(be->err, st, "gmm_fwd: invalid arguments");
        narrow(ref_ptr(gamma) + (size_t)m * B * K, g.gamma, B * K);
        narrow(ref_ptr(mu) + (size_t)m * K * d, g.mu, K * d);
        narrow(ref_ptr(var) + (size_t)m * K * d, g.var, K * d);
        narrow(ref_ptr(nu) + (size_t)m * K, g.nu, K);
    }
    return DC_OK;
}

dc_status ref_gmm_bwd(struct dc_backend *be, dc_view dxl, dc_view dxa, dc_view dxv, dc_view dgamma, dc_view dmu,
                      dc_view dvar, dc_view dnu, dc_view tape, dc_view xl, dc_view xa, dc_view xv, size_t B, size_t d,
                      const struct dc_hete_opts *o) {
    (void)xl, (void)xa, (void)xv; /* the tape holds the forward's double copy of x */
    const size_t K = o->k;
    const dc_view dx[DC_HETE_M] = {dxl, dxa, dxv};
    for (int m = 0; m < DC_HETE_M; ++m) {
        struct gmm_tape g = gmm_tape_of(tape, m, B, d, o);
        widen(g.dgamma, ref_ptr(dgamma) + (size_t)m * B * K, B * K);
        widen(g.dmu, ref_ptr(dmu) + (size_t)m * K * d, K * d);
        widen(g.dvar, ref_ptr(dvar) + (size_t)m * K * d, K * d);
        widen(g.dnu, ref_ptr(dnu) + (size_t)m * K, K);
        memset(g.dx, 0, B * d * sizeof(double));
        dc_status st = dc_ref_gmm_bwd(g.dx, g.dgamma, g.dmu, g.dvar, g.dnu, g.work, g.x, B, d, K, o->em_iters,
                                      o->var_floor);
        if (st != DC_OK) return dc_set_error(be->err, st, "gmm_bwd: invalid arguments");
        add_narrow(ref_ptr(dx[m]), g.dx, B * d);
    }
    return DC_OK;
}

/* The Sinkhorn tape (see dc_hete_sinkhorn_units). Pair p joins modalities pair_i[p], pair_j[p]. */
static const int pair_i[DC_HETE_M] = {0, 0, 1}, pair_j[DC_HETE_M] = {1, 2, 2};

struct ot_tape {
    double *mu, *var, *nu, *c2, *cost, *dcost, *dc2, *dmu, *dvar, *dnu, *work;
};

static struct ot_tape ot_tape_of(dc_view tape, size_t d, size_t K) {
    const size_t M = DC_HETE_M;
    double *w = tape_f64(tape);
    struct ot_tape t;
    t.mu = w, w += M * K * d;
    t.var = w, w += M * K * d;
    t.nu = w, w += M * K;
    t.c2 = w, w += M * K * K;
    t.cost = w, w += K * K * K;
    t.dcost = w, w += K * K * K;
    t.dc2 = w, w += M * K * K;
    t.dmu = w, w += M * K * d;
    t.dvar = w, w += M * K * d;
    t.dnu = w, w += M * K;
    t.work = w;
    return t;
}

dc_status ref_sinkhorn_fwd(struct dc_backend *be, dc_view loss, dc_view tape, dc_view mu, dc_view var, dc_view nu,
                           size_t d, const struct dc_hete_opts *o) {
    const size_t K = o->k, kd = K * d;
    struct ot_tape t = ot_tape_of(tape, d, K);
    widen(t.mu, ref_ptr(mu), DC_HETE_M * kd);
    widen(t.var, ref_ptr(var), DC_HETE_M * kd);
    widen(t.nu, ref_ptr(nu), DC_HETE_M * K);
    for (int p = 0; p < DC_HETE_M; ++p) {
        int i = pair_i[p], j = pair_j[p];
        if (dc_ref_w2_cost_fwd(t.c2 + p * K * K, t.mu + i * kd, t.var + i * kd, t.mu + j * kd, t.var + j * kd, K, d,
                               o->reduction) != DC_OK)
            return dc_set_error(be->err, DC_ERR_ARG, "sinkhorn_fwd: invalid arguments");
    }
    const double *cla = t.c2, *clv = t.c2 + K * K, *cav = t.c2 + 2 * K * K;
    for (size_t a = 0; a < K; ++a)
        for (size_t b = 0; b < K; ++b)
            for (size_t c = 0; c < K; ++c) t.cost[(a * K + b) * K + c] = cla[a * K + b] + clv[a * K + c] + cav[b * K + c];
    double l;
    if (dc_ref_sinkhorn_fwd(NULL, &l, t.work, t.cost, t.nu, t.nu + K, t.nu + 2 * K, K, o->ot_iters, o->lambda_ot) !=
        DC_OK)
        return dc_set_error(be->err, DC_ERR_ARG, "sinkhorn_fwd: invalid arguments");
    ref_ptr(loss)[0] = (float)l;
    return DC_OK;
}

dc_status ref_sinkhorn_bwd(struct dc_backend *be, dc_view dmu, dc_view dvar, dc_view dnu, dc_view tape, dc_view mu,
                           dc_view var, dc_view nu, size_t d, const struct dc_hete_opts *o, float dloss) {
    (void)mu, (void)var, (void)nu; /* the tape holds the forward's double copies */
    const size_t K = o->k, kd = K * d, M = DC_HETE_M;
    struct ot_tape t = ot_tape_of(tape, d, K);
    memset(t.dcost, 0, K * K * K * sizeof(double));
    memset(t.dc2, 0, M * K * K * sizeof(double));
    memset(t.dmu, 0, M * kd * sizeof(double));
    memset(t.dvar, 0, M * kd * sizeof(double));
    memset(t.dnu, 0, M * K * sizeof(double));
    if (dc_ref_sinkhorn_bwd(t.dcost, t.dnu, t.dnu + K, t.dnu + 2 * K, (double)dloss, NULL, t.work, t.cost, t.nu,
                            t.nu + K, t.nu + 2 * K, K, o->ot_iters, o->lambda_ot) != DC_OK)
        return dc_set_error(be->err, DC_ERR_ARG, "sinkhorn_bwd: invalid arguments");
    double *dla = t.dc2, *dlv = t.dc2 + K * K, *dav = t.dc2 + 2 * K * K;
    for (size_t a = 0; a < K; ++a)
        for (size_t b = 0; b < K; ++b)
            for (size_t c = 0; c < K; ++c) {
                double g = t.dcost[(a * K + b) * K + c];
                dla[a * K + b] += g;
                dlv[a * K + c] += g;
                dav[b * K + c] += g;
            }
    for (int p = 0; p < DC_HETE_M; ++p) {
        int i = pair_i[p], j = pair_j[p];
        dc_ref_w2_cost_bwd(t.dmu + i * kd, t.dvar + i * kd, t.dmu + j * kd, t.dvar + j * kd, t.dc2 + p * K * K,
                           t.mu + i * kd, t.var + i * kd, t.mu + j * kd, t.var + j * kd, K, d, o->reduction);
    }
    add_narrow(ref_ptr(dmu), t.dmu, M * kd);
    add_narrow(ref_ptr(dvar), t.dvar, M * kd);
    add_narrow(ref_ptr(dnu), t.dnu, M * K);
    return DC_OK;
}

/* Double copies of the local prototype term's inputs (the op has no tape). */
struct proto_f64 {
    double *buf;
    const double *x[DC_HETE_M], *gamma[DC_HETE_M], *mu[DC_HETE_M], *var[DC_HETE_M];
};

static dc_status proto_widen(struct dc_backend *be, struct proto_f64 *p, const dc_view x[DC_HETE_M], dc_view gamma,
                             dc_view mu, dc_view var, size_t B, size_t d, size_t K, size_t extra) {
    const size_t M = DC_HETE_M, n = M * (B * d + B * K + 2 * K * d) + extra;
    p->buf = malloc(n * sizeof(double));
    if (!p->buf) return dc_set_error(be->err, DC_ERR_NOMEM, "local prototype term: %zu doubles", n);
    double *w = p->buf;
    for (size_t m = 0; m < M; ++m) {
        widen(w, ref_ptr(x[m]), B * d), p->x[m] = w, w += B * d;
        widen(w, ref_ptr(gamma) + m * B * K, B * K), p->gamma[m] = w, w += B * K;
        widen(w, ref_ptr(mu) + m * K * d, K * d), p->mu[m] = w, w += K * d;
        widen(w, ref_ptr(var) + m * K * d, K * d), p->var[m] = w, w += K * d;
    }
    return DC_OK;
}

dc_status ref_local_proto_fwd(struct dc_backend *be, dc_view loss, dc_view xl, dc_view xa, dc_view xv, dc_view gamma,
                              dc_view mu, dc_view var, size_t B, size_t d, const struct dc_hete_opts *o) {
    const dc_view x[DC_HETE_M] = {xl, xa, xv};
    struct proto_f64 p;
    dc_status st = proto_widen(be, &p, x, gamma, mu, var, B, d, o->k, 0);
    if (st != DC_OK) return st;
    double l;
    st = dc_ref_local_proto_fwd(&l, p.x, p.gamma, p.mu, p.var, B, d, o->k, o->reduction, o->mahalanobis,
                                o->var_floor);
    free(p.buf);
    if (st != DC_OK) return dc_set_error(be->err, st, "local_proto_fwd: invalid arguments");
    ref_ptr(loss)[0] = (float)l;
    return DC_OK;
}

dc_status ref_local_proto_bwd(struct dc_backend *be, dc_view dxl, dc_view dxa, dc_view dxv, dc_view dgamma, dc_view dmu,
                              dc_view dvar, dc_view xl, dc_view xa, dc_view xv, dc_view gamma, dc_view mu, dc_view var,
                              size_t B, size_t d, const struct dc_hete_opts *o, float dloss) {
    const size_t M = DC_HETE_M, K = o->k;
    const dc_view x[DC_HETE_M] = {xl, xa, xv}, dxv3[DC_HETE_M] = {dxl, dxa, dxv};
    struct proto_f64 p;
    /* the gradients accumulate in double too: dx, dgamma, dmu, dvar per modality */
    size_t per_m = B * d + B * K + 2 * K * d;
    dc_status st = proto_widen(be, &p, x, gamma, mu, var, B, d, K, M * per_m);
    if (st != DC_OK) return st;
    double *g = p.buf + M * per_m, *dx[DC_HETE_M], *dg[DC_HETE_M], *dm[DC_HETE_M], *dv[DC_HETE_M];
    memset(g, 0, M * per_m * sizeof(double));
    for (size_t m = 0; m < M; ++m) {
        dx[m] = g, g += B * d;
        dg[m] = g, g += B * K;
        dm[m] = g, g += K * d;
        dv[m] = g, g += K * d;
    }
    st = dc_ref_local_proto_bwd(dx, dg, dm, dv, (double)dloss, p.x, p.gamma, p.mu, p.var, B, d, K, o->reduction,
                                o->mahalanobis, o->var_floor);
    if (st == DC_OK)
        for (size_t m = 0; m < M; ++m) {
            add_narrow(ref_ptr(dxv3[m]), dx[m], B * d);
            add_narrow(ref_ptr(dgamma) + m * B * K, dg[m], B * K);
            add_narrow(ref_ptr(dmu) + m * K * d, dm[m], K * d);
            add_narrow(ref_ptr(dvar) + m * K * d, dv[m], K * d);
        }
    free(p.buf);
    return st == DC_OK ? DC_OK : dc_set_error(be->err, st, "local_proto_bwd: invalid arguments");
}
