/* OpenCL strided copies and the small loss terms (kernels in cl/copy2d.cl and
 * cl/loss*.cl). Each loss forward is one launch of one work-group; each backward one
 * launch (one work-group, or one per row / column where rows are independent). */
#include "backend/cl/cl_internal.h"

/* Logits rows held in local memory at once by the contrastive kernels: R * B <= this
 * many floats (16 KiB, well inside the 32 KiB OpenCL 1.2 guarantees with the rest). */
#define SUPCON_LOCAL_FLOATS 4096

/* Columns per work-group of homo_stats_bwd: STATS_BWD_COLS in cl/loss_homo.cl. */
#define STATS_BWD_COLS 8

/* The work-group size of a reduction kernel: the largest power of two <= 256, the
 * device's and the kernel's limits (CL_KERNEL_WORK_GROUP_SIZE), and items rounded up
 * to a power of two (fewer idle work-items when the work is small). */
static size_t loss_group(const struct cl_backend *cb, enum cl_kernel_id id, size_t items) {
    size_t cap = 256, kmax = 0;
    if (cb->kernels[id] &&
        clGetKernelWorkGroupInfo(cb->kernels[id], cb->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax, NULL) ==
            CL_SUCCESS &&
        kmax > 0 && kmax < cap)
        cap = kmax;
    if (cb->max_wg < cap) cap = cb->max_wg;
    size_t g = 1;
    while (g * 2 <= cap && g < items) g *= 2;
    return g;
}

/* Launches groups work-groups of g work-items each. */
static dc_status launch_groups(struct cl_backend *cb, enum cl_kernel_id id, size_t groups, size_t g,
                               const struct cl_arg *args, size_t nargs) {
    size_t global = groups * g;
    return cl_launch(cb, id, 1, &global, &g, args, nargs);
}

static size_t max2(size_t a, size_t b) { return a > b ? a : b; }

/* Shapes far beyond the model's (p in the thousands) can outgrow local memory: say so
 * plainly instead of failing in the enqueue. */
static dc_status check_local(struct cl_backend *cb, const char *op, size_t bytes) {
    cl_ulong have = 0;
    if (clGetDeviceInfo(cb->device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof have, &have, NULL) != CL_SUCCESS || bytes <= have)
        return DC_OK;
    return dc_set_error(cb->base.err, DC_ERR_UNSUPPORTED, "%s: this shape needs %zu bytes of local memory; %s has %llu",
                        op, bytes, cb->base.device_name, (unsigned long long)have);
}

/* ---- strided copies: grid (cols, rows), work-groups along the columns ---- */

static size_t copy_local(const struct cl_backend *cb, size_t cols) {
    size_t cap = cb->max_wg < 64 ? cb->max_wg : 64, groups = (cols + cap - 1) / cap;
    return (cols + groups - 1) / groups;
}

dc_status cl_copy2d(struct dc_backend *be, dc_view dst, size_t ld_dst, dc_view src, size_t ld_src, size_t rows,
                    size_t cols) {
    struct cl_backend *cb = cl_of(be);
    size_t global[2] = {cols, rows}, local[2] = {copy_local(cb, cols), 1};
    struct cl_arg args[] = {CLA_VIEW(dst),   CLA_U64(ld_dst), CLA_VIEW(src),
                            CLA_U64(ld_src), CLA_U64(rows),   CLA_U64(cols)};
    return cl_launch(cb, CLK_copy2d, 2, global, local, args, CL_NARGS(args));
}

dc_status cl_axpy2d(struct dc_backend *be, dc_view dst, size_t ld_dst, float alpha, dc_view src, size_t ld_src,
                    size_t rows, size_t cols) {
    struct cl_backend *cb = cl_of(be);
    size_t global[2] = {cols, rows}, local[2] = {copy_local(cb, cols), 1};
    struct cl_arg args[] = {CLA_VIEW(dst),   CLA_U64(ld_dst), CLA_F32(alpha), CLA_VIEW(src),
                            CLA_U64(ld_src), CLA_U64(rows),   CLA_U64(cols)};
    return cl_launch(cb, CLK_axpy2d, 2, global, local, args, CL_NARGS(args));
}

/* ---- decoupling ---- */

dc_status cl_decouple_fwd(struct dc_backend *be, dc_view loss, dc_view s, dc_view c, size_t B, size_t L) {
    struct cl_backend *cb = cl_of(be);
    size_t g = loss_group(cb, CLK_decouple_fwd, L);
    struct cl_arg args[] = {CLA_VIEW(loss), CLA_VIEW(s), CLA_VIEW(c),
                            CLA_U64(B),     CLA_U64(L),  CLA_LOCAL(g * sizeof(cl_float4))};
    return launch_groups(cb, CLK_decouple_fwd, 1, g, args, CL_NARGS(args));
}

dc_status cl_decouple_bwd(struct dc_backend *be, dc_view ds, dc_view dc, dc_view s, dc_view c, size_t B, size_t L,
                          float dloss) {
    struct cl_backend *cb = cl_of(be);
    size_t g = loss_group(cb, CLK_decouple_bwd, L);
    struct cl_arg args[] = {CLA_VIEW(ds), CLA_VIEW(dc), CLA_VIEW(s),    CLA_VIEW(c),
                            CLA_U64(B),   CLA_U64(L),   CLA_F32(dloss), CLA_LOCAL(g * sizeof(cl_float4))};
    return launch_groups(cb, CLK_decouple_bwd, B, g, args, CL_NARGS(args));
}

/* ---- homogeneity ---- */

dc_status cl_homo_stats_fwd(struct dc_backend *be, dc_view loss, dc_view zl, dc_view za, dc_view zv, size_t B,
                            size_t p) {
    struct cl_backend *cb = cl_of(be);
    size_t g = loss_group(cb, CLK_homo_stats_fwd, p * (p + 1) / 2);
    if (check_local(cb, "homo_stats_fwd", 6 * p * sizeof(cl_float) + g * sizeof(cl_float4)) != DC_OK)
        return DC_ERR_UNSUPPORTED;
    struct cl_arg args[] = {CLA_VIEW(loss),
                            CLA_VIEW(zl),
                            CLA_VIEW(za),
                            CLA_VIEW(zv),
                            CLA_U64(B),
                            CLA_U64(p),
                            CLA_LOCAL(3 * p * sizeof(cl_float)),
                            CLA_LOCAL(3 * p * sizeof(cl_float)),
                            CLA_LOCAL(g * sizeof(cl_float4))};
    return launch_groups(cb, CLK_homo_stats_fwd, 1, g, args, CL_NARGS(args));
}

dc_status cl_homo_stats_bwd(struct dc_backend *be, dc_view dzl, dc_view dza, dc_view dzv, dc_view zl, dc_view za,
                            dc_view zv, size_t B, size_t p, float dloss) {
    struct cl_backend *cb = cl_of(be);
    size_t g = loss_group(cb, CLK_homo_stats_bwd, max2(STATS_BWD_COLS * p, 3 * B));
    size_t work = 3 * p + 3 * STATS_BWD_COLS * (p + B) + 15 * STATS_BWD_COLS; /* floats, see cl/loss_homo.cl */
    if (check_local(cb, "homo_stats_bwd", work * sizeof(cl_float)) != DC_OK) return DC_ERR_UNSUPPORTED;
    struct cl_arg args[] = {
        CLA_VIEW(dzl), CLA_VIEW(dza), CLA_VIEW(dzv), CLA_VIEW(zl),   CLA_VIEW(za),
        CLA_VIEW(zv),  CLA_U64(B),    CLA_U64(p),    CLA_F32(dloss), CLA_LOCAL(work * sizeof(cl_float))};
    return launch_groups(cb, CLK_homo_stats_bwd, (p + STATS_BWD_COLS - 1) / STATS_BWD_COLS, g, args, CL_NARGS(args));
}

dc_status cl_homo_mmd_fwd(struct dc_backend *be, dc_view loss, dc_view zl, dc_view za, dc_view zv, size_t B, size_t p,
                          float bandwidth) {
    struct cl_backend *cb = cl_of(be);
    size_t g = loss_group(cb, CLK_homo_mmd_fwd, 6 * B * B);
    float gamma = (float)(1.0 / (2.0 * (double)bandwidth));
    struct cl_arg args[] = {CLA_VIEW(loss), CLA_VIEW(zl), CLA_VIEW(za),   CLA_VIEW(zv),
                            CLA_U64(B),     CLA_U64(p),   CLA_F32(gamma), CLA_LOCAL(g * sizeof(cl_float4))};
    return launch_groups(cb, CLK_homo_mmd_fwd, 1, g, args, CL_NARGS(args));
}

dc_status cl_homo_mmd_bwd(struct dc_backend *be, dc_view dzl, dc_view dza, dc_view dzv, dc_view zl, dc_view za,
                          dc_view zv, size_t B, size_t p, float bandwidth, float dloss) {
    struct cl_backend *cb = cl_of(be);
    size_t g = loss_group(cb, CLK_homo_mmd_bwd, max2(p, 3 * B));
    if (check_local(cb, "homo_mmd_bwd", 3 * B * sizeof(cl_float)) != DC_OK) return DC_ERR_UNSUPPORTED;
    float gamma = (float)(1.0 / (2.0 * (double)bandwidth));
    struct cl_arg args[] = {CLA_VIEW(dzl),
                            CLA_VIEW(dza),
                            CLA_VIEW(dzv),
                            CLA_VIEW(zl),
                            CLA_VIEW(za),
                            CLA_VIEW(zv),
                            CLA_U64(B),
                            CLA_U64(p),
                            CLA_F32(gamma),
                            CLA_F32(dloss),
                            CLA_LOCAL(3 * B * sizeof(cl_float))};
    return launch_groups(cb, CLK_homo_mmd_bwd, 3 * B, g, args, CL_NARGS(args));
}

/* ---- task losses ---- */

dc_status cl_task_loss_fwd(struct dc_backend *be, dc_view loss, dc_view out, dc_view labels, dc_view class_w, size_t B,
                           size_t O, const struct dc_task_loss *t) {
    struct cl_backend *cb = cl_of(be);
    size_t g = loss_group(cb, CLK_task_loss_fwd, B);
    dc_view w = class_w.mem ? class_w : labels; /* any valid buffer when unweighted */
    struct cl_arg args[] = {CLA_VIEW(loss),
                            CLA_VIEW(out),
                            CLA_VIEW(labels),
                            CLA_VIEW(w),
                            CLA_U32(class_w.mem != NULL),
                            CLA_U64(B),
                            CLA_U64(O),
                            CLA_U32(t->kind),
                            CLA_F32(t->beta),
                            CLA_F32(t->binary_weight),
                            CLA_LOCAL(g * sizeof(cl_float4))};
    return launch_groups(cb, CLK_task_loss_fwd, 1, g, args, CL_NARGS(args));
}

dc_status cl_task_loss_bwd(struct dc_backend *be, dc_view dout, dc_view out, dc_view labels, dc_view class_w, size_t B,
                           size_t O, const struct dc_task_loss *t, float dloss) {
    struct cl_backend *cb = cl_of(be);
    size_t g = loss_group(cb, CLK_task_loss_bwd, B);
    dc_view w = class_w.mem ? class_w : labels;
    struct cl_arg args[] = {CLA_VIEW(dout),
                            CLA_VIEW(out),
                            CLA_VIEW(labels),
                            CLA_VIEW(w),
                            CLA_U32(class_w.mem != NULL),
                            CLA_U64(B),
                            CLA_U64(O),
                            CLA_U32(t->kind),
                            CLA_F32(t->beta),
                            CLA_F32(t->binary_weight),
                            CLA_F32(dloss),
                            CLA_LOCAL(g * sizeof(cl_float4))};
    return launch_groups(cb, CLK_task_loss_bwd, 1, g, args, CL_NARGS(args));
}

/* ---- supervised contrastive ---- */

static size_t supcon_rows(size_t B) {
    size_t r = SUPCON_LOCAL_FLOATS / B;
    return r < 1 ? 1 : r > B ? B : r;
}

dc_status cl_supcon_fwd(struct dc_backend *be, dc_view loss, dc_view f, dc_view labels, size_t B, size_t q,
                        bool classification, float temperature) {
    struct cl_backend *cb = cl_of(be);
    size_t R = supcon_rows(B), g = loss_group(cb, CLK_supcon_fwd, R * B);
    if (check_local(cb, "supcon_fwd", (B + R * B) * sizeof(cl_float) + g * sizeof(cl_float4)) != DC_OK)
        return DC_ERR_UNSUPPORTED;
    float inv_t = (float)(1.0 / (double)temperature);
    struct cl_arg args[] = {CLA_VIEW(loss),
                            CLA_VIEW(f),
                            CLA_VIEW(labels),
                            CLA_U64(B),
                            CLA_U64(q),
                            CLA_U32(classification),
                            CLA_F32(inv_t),
                            CLA_U64(R),
                            CLA_LOCAL(B * sizeof(cl_float)),
                            CLA_LOCAL(R * B * sizeof(cl_float)),
                            CLA_LOCAL(g * sizeof(cl_float4))};
    return launch_groups(cb, CLK_supcon_fwd, 1, g, args, CL_NARGS(args));
}

dc_status cl_supcon_bwd(struct dc_backend *be, dc_view df, dc_view f, dc_view labels, size_t B, size_t q,
                        bool classification, float temperature, float dloss) {
    struct cl_backend *cb = cl_of(be);
    size_t R = supcon_rows(B), g = loss_group(cb, CLK_supcon_bwd, max2(R * B, R * q));
    if (check_local(cb, "supcon_bwd", (4 * B + R * B + R) * sizeof(cl_float) + g * sizeof(cl_float4)) != DC_OK)
        return DC_ERR_UNSUPPORTED;
    float inv_t = (float)(1.0 / (double)temperature);
    struct cl_arg args[] = {CLA_VIEW(df),
                            CLA_VIEW(f),
                            CLA_VIEW(labels),
                            CLA_U64(B),
                            CLA_U64(q),
                            CLA_U32(classification),
                            CLA_F32(inv_t),
                            CLA_F32(dloss),
                            CLA_U64(R),
                            CLA_LOCAL(4 * B * sizeof(cl_float)),
                            CLA_LOCAL(R * B * sizeof(cl_float)),
                            CLA_LOCAL(R * sizeof(cl_float)),
                            CLA_LOCAL(g * sizeof(cl_float4))};
    return launch_groups(cb, CLK_supcon_bwd, 1, g, args, CL_NARGS(args));
}
