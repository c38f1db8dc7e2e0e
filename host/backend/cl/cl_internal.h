/* The OpenCL backend's private state and helpers shared by its files. */
#ifndef DC_CL_INTERNAL_H
#define DC_CL_INTERNAL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include "backend/backend_impl.h"

struct dc_mem {
    cl_mem buf;
    size_t n;
};

enum cl_kernel_id {
#define DC_CL_KERNEL(name, op) CLK_##name,
#include "backend/cl/cl_kernels.def"
#undef DC_CL_KERNEL
    CLK_COUNT
};

struct cl_backend {
    struct dc_backend base; /* first: the generic code casts */
    cl_platform_id platform;
    cl_device_id device;
    cl_device_type device_type;
    cl_context ctx;
    cl_command_queue queue;
    cl_program program;
    cl_kernel kernels[CLK_COUNT];
    size_t max_wg;               /* CL_DEVICE_MAX_WORK_GROUP_SIZE */
    char platform_version[256];
    char cache_dir[1024];        /* "" when the program cache is off */
    struct dc_backend_options opt;
    /* GEMM provider state (cl_gemm.c) */
    bool clblast_ok;             /* CLBlast usable on this device (not an offline binary) */
    bool clblast_failed_logged;
    /* DECOCL_PROFILE: each launch waits for its event and adds its device time here */
    bool profile;
    double profile_ns[CLK_COUNT];
    unsigned long profile_calls[CLK_COUNT];
};

static inline struct cl_backend *cl_of(struct dc_backend *be) { return (struct cl_backend *)be; }

/* Kernel arguments: a view travels as (buffer, ulong offset in floats). */
struct cl_arg {
    size_t size;
    const void *value;
};
#define CLA_VIEW(v) {sizeof(cl_mem), (v).mem ? (const void *)&(v).mem->buf : NULL}, {sizeof(cl_ulong), &(cl_ulong){(v).off}}
#define CLA_U64(x) {sizeof(cl_ulong), &(cl_ulong){(cl_ulong)(x)}}
#define CLA_U32(x) {sizeof(cl_uint), &(cl_uint){(cl_uint)(x)}}
#define CLA_I32(x) {sizeof(cl_int), &(cl_int){(cl_int)(x)}}
#define CLA_F32(x) {sizeof(cl_float), &(cl_float){(cl_float)(x)}}
#define CLA_LOCAL(bytes) {(bytes), NULL}
#define CL_NARGS(arr) (sizeof(arr) / sizeof((arr)[0]))

/* The one launch point: sets args, rounds each global size up to a multiple of
 * the local size (PoCL has no non-uniform work-groups), enqueues. Never waits. */
dc_status cl_launch(struct cl_backend *cb, enum cl_kernel_id id, cl_uint dims, const size_t *global,
                    const size_t *local, const struct cl_arg *args, size_t nargs);
/* 1-D launch over n items with a default work-group size. */
dc_status cl_launch_1d(struct cl_backend *cb, enum cl_kernel_id id, size_t n, const struct cl_arg *args, size_t nargs);
static inline size_t cl_round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* Error names. */
const char *dc_cl_error_name(cl_int code);
const char *dc_clblast_error_name(int code);
/* Records "<device>: <CL error name> (<code>) in <call> at <file>:<line>"; returns DC_ERR_CL. */
dc_status cl_fail(struct dc_backend *be, cl_int code, const char *call, const char *file, int line);
#define DC_CL_RETURN_IF(be, call)                                                                \
    do {                                                                                         \
        cl_int dc_cl_rc_ = (call);                                                               \
        if (dc_cl_rc_ != CL_SUCCESS) return cl_fail((be), dc_cl_rc_, #call, __FILE__, __LINE__); \
    } while (0)

/* Devices (cl_device.c). */
struct cl_device_ref {
    cl_platform_id platform;
    cl_device_id device;
    unsigned p, d;
};
dc_status cl_device_select(const char *spec, struct cl_device_ref *out, struct dc_error *err);

/* Programs (cl_program.c): builds or loads the program, fills cb->kernels. */
const char *cl_kernel_name(enum cl_kernel_id id);
dc_status cl_program_load(struct cl_backend *cb);
/* Writes the built program's device binary to path, atomically. */
dc_status cl_program_export(struct cl_backend *cb, const char *path);

/* Program cache (cl_cache.c). */
dc_status cl_cache_dir_resolve(const char *flag_dir, char *out, size_t cap, struct dc_error *err);
/* Reads the entry for key; *bin is NULL on a miss or a corrupt entry (logged). */
void cl_cache_read(const char *dir, const uint8_t key[32], unsigned char **bin, size_t *len);
/* Stores an entry atomically; failures are logged, never fatal. */
void cl_cache_write(const char *dir, const uint8_t key[32], const unsigned char *bin, size_t len);
void cl_cache_remove(const char *dir, const uint8_t key[32]);

/* Ops implemented per family. */
dc_status cl_gemm(struct dc_backend *be, const struct dc_gemm_shape *s, float alpha, dc_view a, dc_view b, float beta,
                  dc_view c);
/* Chooses the GEMM provider (forced, remembered or measured); called once at open. */
dc_status cl_gemm_init(struct cl_backend *cb);
dc_status cl_bias_add(struct dc_backend *be, dc_view x, dc_view bias, size_t rows, size_t cols);
dc_status cl_bias_grad(struct dc_backend *be, dc_view dbias, dc_view dy, size_t rows, size_t cols);
dc_status cl_relu_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t n);
dc_status cl_relu_bwd(struct dc_backend *be, dc_view din, dc_view dout, dc_view out, size_t n);
dc_status cl_dropout_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t n, const struct dc_dropout *d);
dc_status cl_dropout_bwd(struct dc_backend *be, dc_view din, dc_view dout, size_t n, const struct dc_dropout *d);
dc_status cl_scale(struct dc_backend *be, dc_view x, float alpha, size_t n);
dc_status cl_axpy(struct dc_backend *be, dc_view y, float alpha, dc_view x, size_t n);
dc_status cl_add(struct dc_backend *be, dc_view out, dc_view a, dc_view b, size_t n);
dc_status cl_layernorm_fwd(struct dc_backend *be, dc_view out, dc_view mean, dc_view rstd, dc_view in, dc_view w,
                           dc_view b, size_t rows, size_t cols);
dc_status cl_layernorm_bwd(struct dc_backend *be, dc_view din, dc_view dw, dc_view db, dc_view dout, dc_view in,
                           dc_view mean, dc_view rstd, dc_view w, size_t rows, size_t cols);
dc_status cl_softmax_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t batch, size_t rows, size_t cols,
                         float scale, bool causal);
dc_status cl_softmax_bwd(struct dc_backend *be, dc_view din, dc_view dout, dc_view out, size_t batch, size_t rows,
                         size_t cols, float scale);
dc_status cl_meanpool_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t B, size_t T, size_t D);
dc_status cl_meanpool_bwd(struct dc_backend *be, dc_view din, dc_view dout, size_t B, size_t T, size_t D);
dc_status cl_im2col(struct dc_backend *be, dc_view col, dc_view in, size_t B, size_t T, size_t C, size_t k);
dc_status cl_col2im(struct dc_backend *be, dc_view din, dc_view dcol, size_t B, size_t T, size_t C, size_t k);
dc_status cl_sum(struct dc_backend *be, dc_view out, dc_view in, size_t n, float scale);
dc_status cl_norm2(struct dc_backend *be, dc_view out, dc_view in, size_t n);
dc_status cl_adam(struct dc_backend *be, dc_view param, dc_view m, dc_view v, dc_view grad, dc_view norm,
                  dc_view active, size_t n, const struct dc_adam *a);

/* Strided copies and the small loss terms (cl_ops_loss.c). */
dc_status cl_copy2d(struct dc_backend *be, dc_view dst, size_t ld_dst, dc_view src, size_t ld_src, size_t rows,
                    size_t cols);
dc_status cl_axpy2d(struct dc_backend *be, dc_view dst, size_t ld_dst, float alpha, dc_view src, size_t ld_src,
                    size_t rows, size_t cols);
dc_status cl_decouple_fwd(struct dc_backend *be, dc_view loss, dc_view s, dc_view c, size_t B, size_t L);
dc_status cl_decouple_bwd(struct dc_backend *be, dc_view ds, dc_view dc, dc_view s, dc_view c, size_t B, size_t L,
                          float dloss);
dc_status cl_homo_stats_fwd(struct dc_backend *be, dc_view loss, dc_view zl, dc_view za, dc_view zv, size_t B,
                            size_t p);
dc_status cl_homo_stats_bwd(struct dc_backend *be, dc_view dzl, dc_view dza, dc_view dzv, dc_view zl, dc_view za,
                            dc_view zv, size_t B, size_t p, float dloss);
dc_status cl_homo_mmd_fwd(struct dc_backend *be, dc_view loss, dc_view zl, dc_view za, dc_view zv, size_t B, size_t p,
                          float bandwidth);
dc_status cl_homo_mmd_bwd(struct dc_backend *be, dc_view dzl, dc_view dza, dc_view dzv, dc_view zl, dc_view za,
                          dc_view zv, size_t B, size_t p, float bandwidth, float dloss);
dc_status cl_task_loss_fwd(struct dc_backend *be, dc_view loss, dc_view out, dc_view labels, dc_view class_w, size_t B,
                           size_t O, const struct dc_task_loss *t);
dc_status cl_task_loss_bwd(struct dc_backend *be, dc_view dout, dc_view out, dc_view labels, dc_view class_w,
                           size_t B, size_t O, const struct dc_task_loss *t, float dloss);
dc_status cl_supcon_fwd(struct dc_backend *be, dc_view loss, dc_view f, dc_view labels, size_t B, size_t q,
                        bool classification, float temperature);
dc_status cl_supcon_bwd(struct dc_backend *be, dc_view df, dc_view f, dc_view labels, size_t B, size_t q,
                        bool classification, float temperature, float dloss);
/* Heterogeneity-loss ops (cl_ops_hete.c). */
dc_status cl_gmm_fwd(struct dc_backend *be, dc_view gamma, dc_view mu, dc_view var, dc_view nu, dc_view tape,
                     dc_view xl, dc_view xa, dc_view xv, size_t B, size_t d, const struct dc_hete_opts *o);
dc_status cl_gmm_bwd(struct dc_backend *be, dc_view dxl, dc_view dxa, dc_view dxv, dc_view dgamma, dc_view dmu,
                     dc_view dvar, dc_view dnu, dc_view tape, dc_view xl, dc_view xa, dc_view xv, size_t B, size_t d,
                     const struct dc_hete_opts *o);
dc_status cl_sinkhorn_fwd(struct dc_backend *be, dc_view loss, dc_view tape, dc_view mu, dc_view var, dc_view nu,
                          size_t d, const struct dc_hete_opts *o);
dc_status cl_sinkhorn_bwd(struct dc_backend *be, dc_view dmu, dc_view dvar, dc_view dnu, dc_view tape, dc_view mu,
                          dc_view var, dc_view nu, size_t d, const struct dc_hete_opts *o, float dloss);
dc_status cl_local_proto_fwd(struct dc_backend *be, dc_view loss, dc_view xl, dc_view xa, dc_view xv, dc_view gamma,
                             dc_view mu, dc_view var, size_t B, size_t d, const struct dc_hete_opts *o);
dc_status cl_local_proto_bwd(struct dc_backend *be, dc_view dxl, dc_view dxa, dc_view dxv, dc_view dgamma, dc_view dmu,
                             dc_view dvar, dc_view xl, dc_view xa, dc_view xv, dc_view gamma, dc_view mu, dc_view var,
                             size_t B, size_t d, const struct dc_hete_opts *o, float dloss);
dc_status cl_attention_fwd(struct dc_backend *be, dc_view out, dc_view probs, dc_view q, dc_view k, dc_view v,
                           const struct dc_attention *a);
dc_status cl_attention_bwd(struct dc_backend *be, dc_view dq, dc_view dk, dc_view dv, dc_view dout, dc_view probs,
                           dc_view q, dc_view k, dc_view v, const struct dc_attention *a);

#endif
