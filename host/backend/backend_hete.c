/* Public wrappers of the heterogeneity-loss ops (size checks, dispatch), their tape
 * sizes and the L_hete composite (include/decocl/ops.h). */
#include <math.h>

#include "backend/backend_impl.h"
#include "backend/backend_wrap.h"
#include "backend/hete_layout.h"
#include "core/assert.h"


/* Invalid options are programmer errors, like a short view. */
static void check_opts(size_t B, size_t d, const struct dc_hete_opts *o) {
    DC_ASSERT(o != NULL && B > 0 && d > 0 && o->k > 0);
    DC_ASSERT(o->var_floor > 0.0 && isfinite(o->var_floor) && o->lambda_ot >= 0.0 && isfinite(o->lambda_ot));
    DC_ASSERT(o->reduction == DC_HETE_REDUCTION_MEAN || o->reduction == DC_HETE_REDUCTION_SUM);
}

size_t dc_gmm_tape_len(size_t B, size_t d, const struct dc_hete_opts *o) {
    return 2 * DC_HETE_M * dc_hete_gmm_units(B, d, o->k, o->em_iters) + 1;
}

size_t dc_sinkhorn_tape_len(size_t d, const struct dc_hete_opts *o) {
    return 2 * dc_hete_sinkhorn_units(d, o->k, o->ot_iters) + 1;
}

dc_status dc_gmm_fwd(struct dc_backend *be, dc_view gamma, dc_view mu, dc_view var, dc_view nu, dc_view tape,
                     dc_view xl, dc_view xa, dc_view xv, size_t B, size_t d, const struct dc_hete_opts *o) {
    check_opts(B, d, o);
    const size_t K = o->k;
    NEED(gamma, DC_HETE_M * B * K);
    NEED(mu, DC_HETE_M * K * d);
    NEED(var, DC_HETE_M * K * d);
    NEED(nu, DC_HETE_M * K);
    NEED(tape, dc_gmm_tape_len(B, d, o));
    NEED(xl, B * d);
    NEED(xa, B * d);
    NEED(xv, B * d);
    DISPATCH(gmm_fwd, gamma, mu, var, nu, tape, xl, xa, xv, B, d, o);
}

dc_status dc_gmm_bwd(struct dc_backend *be, dc_view dxl, dc_view dxa, dc_view dxv, dc_view dgamma, dc_view dmu,
                     dc_view dvar, dc_view dnu, dc_view tape, dc_view xl, dc_view xa, dc_view xv, size_t B, size_t d,
                     const struct dc_hete_opts *o) {
    check_opts(B, d, o);
    const size_t K = o->k;
    NEED(dxl, B * d);
    NEED(dxa, B * d);
    NEED(dxv, B * d);
    NEED(dgamma, DC_HETE_M * B * K);
    NEED(dmu, DC_HETE_M * K * d);
    NEED(dvar, DC_HETE_M * K * d);
    NEED(dnu, DC_HETE_M * K);
    NEED(tape, dc_gmm_tape_len(B, d, o));
    NEED(xl, B * d);
    NEED(xa, B * d);
    NEED(xv, B * d);
    DISPATCH(gmm_bwd, dxl, dxa, dxv, dgamma, dmu, dvar, dnu, tape, xl, xa, xv, B, d, o);
}

dc_status dc_sinkhorn_fwd(struct dc_backend *be, dc_view loss, dc_view tape, dc_view mu, dc_view var, dc_view nu,
                          size_t d, const struct dc_hete_opts *o) {
    check_opts(1, d, o);
    const size_t K = o->k;
    NEED(loss, 1);
    NEED(tape, dc_sinkhorn_tape_len(d, o));
    NEED(mu, DC_HETE_M * K * d);
    NEED(var, DC_HETE_M * K * d);
    NEED(nu, DC_HETE_M * K);
    DISPATCH(sinkhorn_fwd, loss, tape, mu, var, nu, d, o);
}

dc_status dc_sinkhorn_bwd(struct dc_backend *be, dc_view dmu, dc_view dvar, dc_view dnu, dc_view tape, dc_view mu,
                          dc_view var, dc_view nu, size_t d, const struct dc_hete_opts *o, float dloss) {
    check_opts(1, d, o);
    const size_t K = o->k;
    NEED(dmu, DC_HETE_M * K * d);
    NEED(dvar, DC_HETE_M * K * d);
    NEED(dnu, DC_HETE_M * K);
    NEED(tape, dc_sinkhorn_tape_len(d, o));
    NEED(mu, DC_HETE_M * K * d);
    NEED(var, DC_HETE_M * K * d);
    NEED(nu, DC_HETE_M * K);
    DISPATCH(sinkhorn_bwd, dmu, dvar, dnu, tape, mu, var, nu, d, o, dloss);
}

dc_status dc_local_proto_fwd(struct dc_backend *be, dc_view loss, dc_view xl, dc_view xa, dc_view xv, dc_view gamma,
                             dc_view mu, dc_view var, size_t B, size_t d, const struct dc_hete_opts *o) {
    check_opts(B, d, o);
    const size_t K = o->k;
    NEED(loss, 1);
    NEED(xl, B * d);
    NEED(xa, B * d);
    NEED(xv, B * d);
    NEED(gamma, DC_HETE_M * B * K);
    NEED(mu, DC_HETE_M * K * d);
    NEED(var, DC_HETE_M * K * d);
    DISPATCH(local_proto_fwd, loss, xl, xa, xv, gamma, mu, var, B, d, o);
}

dc_status dc_local_proto_bwd(struct dc_backend *be, dc_view dxl, dc_view dxa, dc_view dxv, dc_view dgamma, dc_view dmu,
                             dc_view dvar, dc_view xl, dc_view xa, dc_view xv, dc_view gamma, dc_view mu, dc_view var,
                             size_t B, size_t d, const struct dc_hete_opts *o, float dloss) {
    check_opts(B, d, o);
    const size_t K = o->k;
    NEED(dxl, B * d);
    NEED(dxa, B * d);
    NEED(dxv, B * d);
    NEED(dgamma, DC_HETE_M * B * K);
    NEED(dmu, DC_HETE_M * K * d);
    NEED(dvar, DC_HETE_M * K * d);
    NEED(xl, B * d);
    NEED(xa, B * d);
    NEED(xv, B * d);
    NEED(gamma, DC_HETE_M * B * K);
    NEED(mu, DC_HETE_M * K * d);
    NEED(var, DC_HETE_M * K * d);
    DISPATCH(local_proto_bwd, dxl, dxa, dxv, dgamma, dmu, dvar, xl, xa, xv, gamma, mu, var, B, d, o, dloss);
}

/* The composite's tape: the GMM outputs, the two loss terms and the adjoints of the
 * GMM outputs (floats, the same on every backend), then the two ops' private tapes. */
struct hete_tape {
    dc_view gamma, mu, var, nu, l_ot, l_proto;
    dc_view grads; /* dgamma, dmu, dvar, dnu back to back: zeroed with one fill */
    dc_view dgamma, dmu, dvar, dnu;
    dc_view gmm, sinkhorn;
    size_t len;
};

static struct hete_tape hete_tape_split(dc_view t, size_t B, size_t d, const struct dc_hete_opts *o) {
    const size_t M = DC_HETE_M, K = o->k, nbk = M * B * K, nkd = M * K * d, nk = M * K;
    struct hete_tape h;
    size_t off = t.off;
#define TAKE(field, count) (h.field = dc_view_of(t.mem, off, (count)), off += (count))
    TAKE(gamma, nbk);
    TAKE(mu, nkd);
    TAKE(var, nkd);
    TAKE(nu, nk);
    TAKE(l_ot, 1);
    TAKE(l_proto, 1);
    h.grads = dc_view_of(t.mem, off, nbk + 2 * nkd + nk);
    TAKE(dgamma, nbk);
    TAKE(dmu, nkd);
    TAKE(dvar, nkd);
    TAKE(dnu, nk);
    TAKE(gmm, dc_gmm_tape_len(B, d, o));
    TAKE(sinkhorn, dc_sinkhorn_tape_len(d, o));
#undef TAKE
    h.len = off - t.off;
    return h;
}

size_t dc_hete_tape_len(size_t B, size_t d, const struct dc_hete_opts *o) {
    return hete_tape_split((dc_view){0}, B, d, o).len;
}

dc_status dc_hete_fwd(struct dc_backend *be, dc_view loss, dc_view tape, dc_view xl, dc_view xa, dc_view xv, size_t B,
                      size_t d, const struct dc_hete_opts *o) {
    check_opts(B, d, o);
    NEED(loss, 1);
    NEED(tape, dc_hete_tape_len(B, d, o));
    struct hete_tape h = hete_tape_split(tape, B, d, o);
    dc_status st = dc_gmm_fwd(be, h.gamma, h.mu, h.var, h.nu, h.gmm, xl, xa, xv, B, d, o);
    if (st == DC_OK) st = dc_sinkhorn_fwd(be, h.l_ot, h.sinkhorn, h.mu, h.var, h.nu, d, o);
    if (st == DC_OK) st = dc_local_proto_fwd(be, h.l_proto, xl, xa, xv, h.gamma, h.mu, h.var, B, d, o);
    if (st == DC_OK) st = dc_add(be, loss, h.l_ot, h.l_proto, 1);
    return st;
}

dc_status dc_hete_bwd(struct dc_backend *be, dc_view dxl, dc_view dxa, dc_view dxv, dc_view tape, dc_view xl,
                      dc_view xa, dc_view xv, size_t B, size_t d, const struct dc_hete_opts *o, float dloss) {
    check_opts(B, d, o);
    NEED(tape, dc_hete_tape_len(B, d, o));
    struct hete_tape h = hete_tape_split(tape, B, d, o);
    dc_status st = dc_fill(be, h.grads, 0.0f);
    if (st == DC_OK) st = dc_sinkhorn_bwd(be, h.dmu, h.dvar, h.dnu, h.sinkhorn, h.mu, h.var, h.nu, d, o, dloss);
    if (st == DC_OK)
        st = dc_local_proto_bwd(be, dxl, dxa, dxv, h.dgamma, h.dmu, h.dvar, xl, xa, xv, h.gamma, h.mu, h.var, B, d, o,
                                dloss);
    if (st == DC_OK) st = dc_gmm_bwd(be, dxl, dxa, dxv, h.dgamma, h.dmu, h.dvar, h.dnu, h.gmm, xl, xa, xv, B, d, o);
    return st;
}
