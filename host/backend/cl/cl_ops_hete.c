/* OpenCL heterogeneity-loss ops (kernels in cl/hete_gmm.cl, cl/hete_ot.cl,
 * cl/hete_proto.cl): one launch each. */
#include "backend/cl/cl_internal.h"
#include "backend/hete_layout.h"

/* Work-items of the single-work-group kernels: a power of two, at most 256 (GPUs) or
 * 16 (CPU devices, where work-items of a group run as loops over each phase between
 * barriers, and the phases are short). */
static size_t hete_group(const struct cl_backend *cb) {
    size_t g = cb->device_type & CL_DEVICE_TYPE_CPU ? 16 : 256;
    while (g > cb->max_wg) g /= 2;
    return g;
}

/* The tape view rebased to its first 8-byte-aligned float (kernels read it as hreal). */
static dc_view tape_aligned(dc_view t) {
    size_t off = dc_hete_align8(t.off);
    return dc_view_of(t.mem, off, t.n - (off - t.off));
}

/* A double option as two floats whose sum is the value to double precision. */
static void split_f64(double v, float *hi, float *lo) {
    *hi = (float)v;
    *lo = (float)(v - (double)*hi);
}

dc_status cl_gmm_fwd(struct dc_backend *be, dc_view gamma, dc_view mu, dc_view var, dc_view nu, dc_view tape,
                     dc_view xl, dc_view xa, dc_view xv, size_t B, size_t d, const struct dc_hete_opts *o) {
    struct cl_backend *cb = cl_of(be);
    float fh, fl;
    split_f64(o->var_floor, &fh, &fl);
    dc_view t = tape_aligned(tape);
    size_t units = dc_hete_gmm_units(B, d, o->k, o->em_iters), g = hete_group(cb), global = DC_HETE_M * g;
    struct cl_arg args[] = {CLA_VIEW(gamma), CLA_VIEW(mu), CLA_VIEW(var), CLA_VIEW(nu), CLA_VIEW(t),
                            CLA_VIEW(xl), CLA_VIEW(xa), CLA_VIEW(xv), CLA_U64(B), CLA_U64(d), CLA_U64(o->k),
                            CLA_U64(o->em_iters), CLA_U64(units), CLA_F32(fh), CLA_F32(fl)};
    return cl_launch(cb, CLK_gmm_fwd, 1, &global, &g, args, CL_NARGS(args));
}

dc_status cl_gmm_bwd(struct dc_backend *be, dc_view dxl, dc_view dxa, dc_view dxv, dc_view dgamma, dc_view dmu,
                     dc_view dvar, dc_view dnu, dc_view tape, dc_view xl, dc_view xa, dc_view xv, size_t B, size_t d,
                     const struct dc_hete_opts *o) {
    struct cl_backend *cb = cl_of(be);
    float fh, fl;
    split_f64(o->var_floor, &fh, &fl);
    dc_view t = tape_aligned(tape);
    size_t units = dc_hete_gmm_units(B, d, o->k, o->em_iters), g = hete_group(cb), global = DC_HETE_M * g;
    struct cl_arg args[] = {CLA_VIEW(dxl), CLA_VIEW(dxa), CLA_VIEW(dxv), CLA_VIEW(dgamma), CLA_VIEW(dmu),
                            CLA_VIEW(dvar), CLA_VIEW(dnu), CLA_VIEW(t), CLA_VIEW(xl), CLA_VIEW(xa),
                            CLA_VIEW(xv), CLA_U64(B), CLA_U64(d), CLA_U64(o->k), CLA_U64(o->em_iters),
                            CLA_U64(units), CLA_F32(fh), CLA_F32(fl)};
    return cl_launch(cb, CLK_gmm_bwd, 1, &global, &g, args, CL_NARGS(args));
}

dc_status cl_sinkhorn_fwd(struct dc_backend *be, dc_view loss, dc_view tape, dc_view mu, dc_view var, dc_view nu,
                          size_t d, const struct dc_hete_opts *o) {
    struct cl_backend *cb = cl_of(be);
    float lh, ll;
    split_f64(o->lambda_ot, &lh, &ll);
    dc_view t = tape_aligned(tape);
    size_t g = hete_group(cb);
    struct cl_arg args[] = {CLA_VIEW(loss), CLA_VIEW(t), CLA_VIEW(mu), CLA_VIEW(var), CLA_VIEW(nu), CLA_U64(d),
                            CLA_U64(o->k), CLA_U64(o->ot_iters), CLA_F32(lh), CLA_F32(ll),
                            CLA_U32(o->reduction == DC_HETE_REDUCTION_SUM), CLA_LOCAL(g * sizeof(cl_double))};
    return cl_launch(cb, CLK_sinkhorn_fwd, 1, &g, &g, args, CL_NARGS(args));
}

dc_status cl_sinkhorn_bwd(struct dc_backend *be, dc_view dmu, dc_view dvar, dc_view dnu, dc_view tape, dc_view mu,
                          dc_view var, dc_view nu, size_t d, const struct dc_hete_opts *o, float dloss) {
    struct cl_backend *cb = cl_of(be);
    float lh, ll;
    split_f64(o->lambda_ot, &lh, &ll);
    dc_view t = tape_aligned(tape);
    size_t g = hete_group(cb);
    struct cl_arg args[] = {CLA_VIEW(dmu), CLA_VIEW(dvar), CLA_VIEW(dnu), CLA_VIEW(t), CLA_VIEW(mu), CLA_VIEW(var),
                            CLA_VIEW(nu), CLA_U64(d), CLA_U64(o->k), CLA_U64(o->ot_iters), CLA_F32(lh),
                            CLA_F32(ll), CLA_U32(o->reduction == DC_HETE_REDUCTION_SUM), CLA_F32(dloss)};
    return cl_launch(cb, CLK_sinkhorn_bwd, 1, &g, &g, args, CL_NARGS(args));
}

dc_status cl_local_proto_fwd(struct dc_backend *be, dc_view loss, dc_view xl, dc_view xa, dc_view xv, dc_view gamma,
                             dc_view mu, dc_view var, size_t B, size_t d, const struct dc_hete_opts *o) {
    struct cl_backend *cb = cl_of(be);
    float fh, fl;
    split_f64(o->var_floor, &fh, &fl);
    size_t g = hete_group(cb);
    struct cl_arg args[] = {CLA_VIEW(loss), CLA_VIEW(xl), CLA_VIEW(xa), CLA_VIEW(xv), CLA_VIEW(gamma), CLA_VIEW(mu),
                            CLA_VIEW(var), CLA_U64(B), CLA_U64(d), CLA_U64(o->k),
                            CLA_U32(o->reduction == DC_HETE_REDUCTION_SUM), CLA_U32(o->mahalanobis != 0),
                            CLA_F32(fh), CLA_F32(fl), CLA_LOCAL(g * sizeof(cl_double))};
    return cl_launch(cb, CLK_local_proto_fwd, 1, &g, &g, args, CL_NARGS(args));
}

dc_status cl_local_proto_bwd(struct dc_backend *be, dc_view dxl, dc_view dxa, dc_view dxv, dc_view dgamma, dc_view dmu,
                             dc_view dvar, dc_view xl, dc_view xa, dc_view xv, dc_view gamma, dc_view mu, dc_view var,
                             size_t B, size_t d, const struct dc_hete_opts *o, float dloss) {
    float fh, fl;
    split_f64(o->var_floor, &fh, &fl);
    size_t K = o->k, items = DC_HETE_M * (B * d + K * d + B * K);
    struct cl_arg args[] = {CLA_VIEW(dxl), CLA_VIEW(dxa), CLA_VIEW(dxv), CLA_VIEW(dgamma), CLA_VIEW(dmu),
                            CLA_VIEW(dvar), CLA_VIEW(xl), CLA_VIEW(xa), CLA_VIEW(xv), CLA_VIEW(gamma),
                            CLA_VIEW(mu), CLA_VIEW(var), CLA_U64(B), CLA_U64(d), CLA_U64(K),
                            CLA_U32(o->reduction == DC_HETE_REDUCTION_SUM), CLA_U32(o->mahalanobis != 0),
                            CLA_F32(fh), CLA_F32(fl), CLA_F32(dloss)};
    return cl_launch_1d(cl_of(be), CLK_local_proto_bwd, items, args, CL_NARGS(args));
}
