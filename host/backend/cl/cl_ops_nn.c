/* OpenCL row ops: layernorm, softmax, mean-pool over time, im2col/col2im
 * (kernels in cl/layernorm.cl, cl/softmax.cl, cl/pool.cl, cl/conv.cl). */
#include "backend/cl/cl_internal.h"

/* The largest work-group size to ask for: 64, or less where the device says so. */
static size_t group_cap(const struct cl_backend *cb) { return cb->max_wg < 64 ? cb->max_wg : 64; }

/* A local size <= cap that splits n into equal groups, so that cl_launch's rounding
 * up to a multiple of it adds fewer than n / cap idle work-items. */
static size_t balanced_local(size_t n, size_t cap) {
    size_t groups = (n + cap - 1) / cap;
    return (n + groups - 1) / groups;
}

dc_status cl_layernorm_fwd(struct dc_backend *be, dc_view out, dc_view mean, dc_view rstd, dc_view in, dc_view w,
                           dc_view b, size_t rows, size_t cols) {
    struct cl_arg args[] = {CLA_VIEW(out), CLA_VIEW(mean), CLA_VIEW(rstd), CLA_VIEW(in),
                            CLA_VIEW(w),   CLA_VIEW(b),    CLA_U64(rows),  CLA_U64(cols)};
    return cl_launch_1d(cl_of(be), CLK_layernorm_fwd, rows, args, CL_NARGS(args));
}

dc_status cl_layernorm_bwd(struct dc_backend *be, dc_view din, dc_view dw, dc_view db, dc_view dout, dc_view in,
                           dc_view mean, dc_view rstd, dc_view w, size_t rows, size_t cols) {
    struct cl_backend *cb = cl_of(be);
    struct cl_arg dx_args[] = {CLA_VIEW(din),  CLA_VIEW(dout), CLA_VIEW(in),  CLA_VIEW(mean),
                               CLA_VIEW(rstd), CLA_VIEW(w),    CLA_U64(rows), CLA_U64(cols)};
    dc_status st = cl_launch_1d(cb, CLK_layernorm_bwd_dx, rows, dx_args, CL_NARGS(dx_args));
    if (st != DC_OK) return st;
    /* one work-group of s work-items per block of 16 columns, the rows split among them */
    size_t s = rows < group_cap(cb) ? rows : group_cap(cb);
    size_t global[2] = {s, (cols + 15) / 16}, local[2] = {s, 1};
    struct cl_arg dwdb_args[] = {CLA_VIEW(dw),  CLA_VIEW(db),   CLA_VIEW(dout),
                                 CLA_VIEW(in),  CLA_VIEW(mean), CLA_VIEW(rstd),
                                 CLA_U64(rows), CLA_U64(cols),  CLA_LOCAL(4 * s * sizeof(cl_float8))};
    return cl_launch(cb, CLK_layernorm_bwd_dwdb, 2, global, local, dwdb_args, CL_NARGS(dwdb_args));
}

dc_status cl_softmax_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t batch, size_t rows, size_t cols,
                         float scale, bool causal) {
    struct cl_arg args[] = {CLA_VIEW(out), CLA_VIEW(in),   CLA_U64(batch * rows), CLA_U64(rows),
                            CLA_U64(cols), CLA_F32(scale), CLA_U32(causal)};
    return cl_launch_1d(cl_of(be), CLK_softmax_fwd, batch * rows, args, CL_NARGS(args));
}

dc_status cl_softmax_bwd(struct dc_backend *be, dc_view din, dc_view dout, dc_view out, size_t batch, size_t rows,
                         size_t cols, float scale) {
    struct cl_arg args[] = {CLA_VIEW(din),         CLA_VIEW(dout), CLA_VIEW(out),
                            CLA_U64(batch * rows), CLA_U64(cols),  CLA_F32(scale)};
    return cl_launch_1d(cl_of(be), CLK_softmax_bwd, batch * rows, args, CL_NARGS(args));
}

dc_status cl_meanpool_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t B, size_t T, size_t D) {
    struct cl_arg args[] = {CLA_VIEW(out), CLA_VIEW(in), CLA_U64(B), CLA_U64(T), CLA_U64(D)};
    return cl_launch_1d(cl_of(be), CLK_meanpool_fwd, B * ((D + 7) / 8), args, CL_NARGS(args));
}

dc_status cl_meanpool_bwd(struct dc_backend *be, dc_view din, dc_view dout, size_t B, size_t T, size_t D) {
    struct cl_arg args[] = {CLA_VIEW(din), CLA_VIEW(dout), CLA_U64(B), CLA_U64(T), CLA_U64(D)};
    return cl_launch_1d(cl_of(be), CLK_meanpool_bwd, B * ((D + 7) / 8), args, CL_NARGS(args));
}

/* Grid (C, time, B) with work-groups along C only. */
static dc_status launch_conv(struct dc_backend *be, enum cl_kernel_id id, dc_view dst, dc_view src, size_t B, size_t T,
                             size_t C, size_t k, size_t time) {
    struct cl_backend *cb = cl_of(be);
    size_t global[3] = {C, time, B}, local[3] = {balanced_local(C, group_cap(cb)), 1, 1};
    struct cl_arg args[] = {CLA_VIEW(dst), CLA_VIEW(src), CLA_U64(B), CLA_U64(T), CLA_U64(C), CLA_U64(k)};
    return cl_launch(cb, id, 3, global, local, args, CL_NARGS(args));
}

dc_status cl_im2col(struct dc_backend *be, dc_view col, dc_view in, size_t B, size_t T, size_t C, size_t k) {
    return launch_conv(be, CLK_im2col, col, in, B, T, C, k, T - k + 1);
}

dc_status cl_col2im(struct dc_backend *be, dc_view din, dc_view dcol, size_t B, size_t T, size_t C, size_t k) {
    return launch_conv(be, CLK_col2im, din, dcol, B, T, C, k, T);
}
