/* OpenCL elementwise ops, whole-buffer reductions and the Adam step. */
#include <math.h>

#include "backend/cl/cl_internal.h"
#include "core/rng.h"

dc_status cl_bias_add(struct dc_backend *be, dc_view x, dc_view bias, size_t rows, size_t cols) {
    struct cl_arg args[] = {CLA_VIEW(x), CLA_VIEW(bias), CLA_U64(rows), CLA_U64(cols)};
    size_t lx = cols >= 64 ? 64 : cols >= 16 ? 16 : 1, ly = 64 / lx;
    if (lx * ly > cl_of(be)->max_wg) lx = 1, ly = 1;
    size_t global[2] = {cols, rows}, local[2] = {lx, ly};
    return cl_launch(cl_of(be), CLK_bias_add, 2, global, local, args, CL_NARGS(args));
}

/* A work-group per 16 columns: one work-item on a CPU (a few groups already fill its
 * cores, and PoCL builds no work-item loop), 64 elsewhere. Was one work-item per column:
 * 150 us for (1600, 64) on PoCL, one core summing strided columns. */
dc_status cl_bias_grad(struct dc_backend *be, dc_view dbias, dc_view dy, size_t rows, size_t cols) {
    struct cl_backend *cb = cl_of(be);
    size_t ls = (cb->device_type & CL_DEVICE_TYPE_CPU) ? 1 : 64;
    if (ls > cb->max_wg) ls = cb->max_wg;
    size_t global = (cols + 15) / 16 * ls;
    struct cl_arg args[] = {CLA_VIEW(dbias), CLA_VIEW(dy), CLA_U64(rows), CLA_U64(cols),
                            CLA_LOCAL(ls * 16 * sizeof(cl_float))};
    return cl_launch(cb, CLK_bias_grad, 1, &global, &ls, args, CL_NARGS(args));
}

dc_status cl_relu_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t n) {
    struct cl_arg args[] = {CLA_VIEW(out), CLA_VIEW(in), CLA_U64(n)};
    return cl_launch_1d(cl_of(be), CLK_relu_fwd, n, args, CL_NARGS(args));
}

dc_status cl_relu_bwd(struct dc_backend *be, dc_view din, dc_view dout, dc_view out, size_t n) {
    struct cl_arg args[] = {CLA_VIEW(din), CLA_VIEW(dout), CLA_VIEW(out), CLA_U64(n)};
    return cl_launch_1d(cl_of(be), CLK_relu_bwd, n, args, CL_NARGS(args));
}

dc_status cl_dropout_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t n, const struct dc_dropout *d) {
    if (d->p <= 0.0f) return in.mem == out.mem && in.off == out.off ? DC_OK : dc_copy(be, dc_view_of(out.mem, out.off, n),
                                                                                    dc_view_of(in.mem, in.off, n));
    if (d->p >= 1.0f) return dc_fill(be, dc_view_of(out.mem, out.off, n), 0.0f);
    struct cl_arg args[] = {CLA_VIEW(out),  CLA_VIEW(in), CLA_U64(n),
                            CLA_U64(d->seed), CLA_U32(d->site), CLA_U64(d->step),
                            CLA_U32(dc_dropout_threshold(d->p)), CLA_F32(dc_dropout_scale(d->p))};
    /* one work-item per 64 elements (16 Philox blocks, cl/elementwise.cl) */
    return cl_launch_1d(cl_of(be), CLK_dropout_fwd, (n + 63) / 64, args, CL_NARGS(args));
}

dc_status cl_dropout_bwd(struct dc_backend *be, dc_view din, dc_view dout, size_t n, const struct dc_dropout *d) {
    if (d->p >= 1.0f) return DC_OK;
    if (d->p <= 0.0f) return cl_axpy(be, din, 1.0f, dout, n);
    struct cl_arg args[] = {CLA_VIEW(din),    CLA_VIEW(dout),   CLA_U64(n),
                            CLA_U64(d->seed), CLA_U32(d->site), CLA_U64(d->step),
                            CLA_U32(dc_dropout_threshold(d->p)), CLA_F32(dc_dropout_scale(d->p))};
    return cl_launch_1d(cl_of(be), CLK_dropout_bwd, (n + 63) / 64, args, CL_NARGS(args));
}

dc_status cl_scale(struct dc_backend *be, dc_view x, float alpha, size_t n) {
    struct cl_arg args[] = {CLA_VIEW(x), CLA_F32(alpha), CLA_U64(n)};
    return cl_launch_1d(cl_of(be), CLK_scale, n, args, CL_NARGS(args));
}

dc_status cl_axpy(struct dc_backend *be, dc_view y, float alpha, dc_view x, size_t n) {
    struct cl_arg args[] = {CLA_VIEW(y), CLA_F32(alpha), CLA_VIEW(x), CLA_U64(n)};
    return cl_launch_1d(cl_of(be), CLK_axpy, n, args, CL_NARGS(args));
}

dc_status cl_add(struct dc_backend *be, dc_view out, dc_view a, dc_view b, size_t n) {
    struct cl_arg args[] = {CLA_VIEW(out), CLA_VIEW(a), CLA_VIEW(b), CLA_U64(n)};
    return cl_launch_1d(cl_of(be), CLK_add, n, args, CL_NARGS(args));
}

/* Largest power of two <= min(256, device limit): the reduction tree needs one. */
static size_t reduce_group_size(const struct cl_backend *cb) {
    size_t g = 256;
    while (g > cb->max_wg) g /= 2;
    return g;
}

dc_status cl_sum(struct dc_backend *be, dc_view out, dc_view in, size_t n, float scale) {
    size_t g = reduce_group_size(cl_of(be));
    struct cl_arg args[] = {CLA_VIEW(out), CLA_VIEW(in), CLA_U64(n), CLA_F32(scale), CLA_LOCAL(g * sizeof(float))};
    return cl_launch(cl_of(be), CLK_sum, 1, &g, &g, args, CL_NARGS(args));
}

dc_status cl_norm2(struct dc_backend *be, dc_view out, dc_view in, size_t n) {
    size_t g = reduce_group_size(cl_of(be));
    struct cl_arg args[] = {CLA_VIEW(out), CLA_VIEW(in), CLA_U64(n), CLA_LOCAL(g * sizeof(float))};
    return cl_launch(cl_of(be), CLK_norm2, 1, &g, &g, args, CL_NARGS(args));
}

dc_status cl_adam(struct dc_backend *be, dc_view param, dc_view m, dc_view v, dc_view grad, dc_view norm,
                  dc_view active, size_t n, const struct dc_adam *a) {
    struct dc_adam_consts k = dc_adam_consts_of(a); /* the same float constants as ref_adam */
    dc_view norm_arg = k.clip > 0.0f ? norm : param; /* any valid buffer when unused */
    dc_view active_arg = active.mem ? active : param;
    struct cl_arg args[] = {CLA_VIEW(param),       CLA_VIEW(m),         CLA_VIEW(v),
                            CLA_VIEW(grad),        CLA_VIEW(norm_arg),  CLA_VIEW(active_arg),
                            CLA_U32(active.mem != NULL), CLA_U64(n),    CLA_F32(k.step_size),
                            CLA_F32(k.one_minus_beta1), CLA_F32(k.beta2), CLA_F32(k.one_minus_beta2),
                            CLA_F32(k.eps),        CLA_F32(k.weight_decay), CLA_F32(k.clip),
                            CLA_F32(k.bc2_sqrt)};
    return cl_launch_1d(cl_of(be), CLK_adam, n, args, CL_NARGS(args));
}
