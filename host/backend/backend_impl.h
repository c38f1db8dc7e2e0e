/* Private backend interface: the function table each backend fills.
 * A NULL op slot means the backend (or this device's program) lacks the op. */
#ifndef DC_BACKEND_IMPL_H
#define DC_BACKEND_IMPL_H

#include "decocl/backend.h"
#include "decocl/ops.h"

struct dc_backend;

struct dc_backend_i {
    const char *name; /* "ref" | "opencl" */
    void (*close)(struct dc_backend *be);
    dc_status (*mem_alloc)(struct dc_backend *be, size_t n, struct dc_mem **out);
    void (*mem_free)(struct dc_backend *be, struct dc_mem *mem);
    size_t (*mem_floats)(const struct dc_mem *mem); /* the n it was allocated with (memory counters) */
    dc_status (*upload)(struct dc_backend *be, dc_view dst, const float *src);
    dc_status (*download)(struct dc_backend *be, float *dst, dc_view src);
    dc_status (*fill)(struct dc_backend *be, dc_view dst, float value);
    dc_status (*copy)(struct dc_backend *be, dc_view dst, dc_view src);
    dc_status (*sync)(struct dc_backend *be);

    dc_status (*gemm)(struct dc_backend *be, const struct dc_gemm_shape *s, float alpha, dc_view a, dc_view b,
                      float beta, dc_view c);
    dc_status (*bias_add)(struct dc_backend *be, dc_view x, dc_view bias, size_t rows, size_t cols);
    dc_status (*bias_grad)(struct dc_backend *be, dc_view dbias, dc_view dy, size_t rows, size_t cols);
    dc_status (*relu_fwd)(struct dc_backend *be, dc_view out, dc_view in, size_t n);
    dc_status (*relu_bwd)(struct dc_backend *be, dc_view din, dc_view dout, dc_view out, size_t n);
    dc_status (*layernorm_fwd)(struct dc_backend *be, dc_view out, dc_view mean, dc_view rstd, dc_view in, dc_view w,
                               dc_view b, size_t rows, size_t cols);
    dc_status (*layernorm_bwd)(struct dc_backend *be, dc_view din, dc_view dw, dc_view db, dc_view dout, dc_view in,
                               dc_view mean, dc_view rstd, dc_view w, size_t rows, size_t cols);
    dc_status (*softmax_fwd)(struct dc_backend *be, dc_view out, dc_view in, size_t batch, size_t rows, size_t cols,
                             float scale, bool causal);
    dc_status (*softmax_bwd)(struct dc_backend *be, dc_view din, dc_view dout, dc_view out, size_t batch, size_t rows,
                             size_t cols, float scale);
    dc_status (*dropout_fwd)(struct dc_backend *be, dc_view out, dc_view in, size_t n, const struct dc_dropout *d);
    dc_status (*dropout_bwd)(struct dc_backend *be, dc_view din, dc_view dout, size_t n, const struct dc_dropout *d);
    dc_status (*scale)(struct dc_backend *be, dc_view x, float alpha, size_t n);
    dc_status (*axpy)(struct dc_backend *be, dc_view y, float alpha, dc_view x, size_t n);
    dc_status (*add)(struct dc_backend *be, dc_view out, dc_view a, dc_view b, size_t n);
    dc_status (*meanpool_fwd)(struct dc_backend *be, dc_view out, dc_view in, size_t B, size_t T, size_t D);
    dc_status (*meanpool_bwd)(struct dc_backend *be, dc_view din, dc_view dout, size_t B, size_t T, size_t D);
    dc_status (*im2col)(struct dc_backend *be, dc_view col, dc_view in, size_t B, size_t T, size_t C, size_t k);
    dc_status (*col2im)(struct dc_backend *be, dc_view din, dc_view dcol, size_t B, size_t T, size_t C, size_t k);
    dc_status (*sum)(struct dc_backend *be, dc_view out, dc_view in, size_t n, float scale);
    dc_status (*norm2)(struct dc_backend *be, dc_view out, dc_view in, size_t n);
    dc_status (*adam)(struct dc_backend *be, dc_view param, dc_view m, dc_view v, dc_view grad, dc_view norm,
                      dc_view active, size_t n, const struct dc_adam *a);
    /* strided copies and the small loss terms (ops.h) */
    dc_status (*copy2d)(struct dc_backend *be, dc_view dst, size_t ld_dst, dc_view src, size_t ld_src, size_t rows,
                        size_t cols);
    dc_status (*axpy2d)(struct dc_backend *be, dc_view dst, size_t ld_dst, float alpha, dc_view src, size_t ld_src,
                        size_t rows, size_t cols);
    dc_status (*decouple_fwd)(struct dc_backend *be, dc_view loss, dc_view s, dc_view c, size_t B, size_t L);
    dc_status (*decouple_bwd)(struct dc_backend *be, dc_view ds, dc_view dc, dc_view s, dc_view c, size_t B, size_t L,
                              float dloss);
    dc_status (*homo_stats_fwd)(struct dc_backend *be, dc_view loss, dc_view zl, dc_view za, dc_view zv, size_t B,
                                size_t p);
    dc_status (*homo_stats_bwd)(struct dc_backend *be, dc_view dzl, dc_view dza, dc_view dzv, dc_view zl, dc_view za,
                                dc_view zv, size_t B, size_t p, float dloss);
    dc_status (*homo_mmd_fwd)(struct dc_backend *be, dc_view loss, dc_view zl, dc_view za, dc_view zv, size_t B,
                              size_t p, float bandwidth);
    dc_status (*homo_mmd_bwd)(struct dc_backend *be, dc_view dzl, dc_view dza, dc_view dzv, dc_view zl, dc_view za,
                              dc_view zv, size_t B, size_t p, float bandwidth, float dloss);
    dc_status (*task_loss_fwd)(struct dc_backend *be, dc_view loss, dc_view out, dc_view labels, dc_view class_w,
                               size_t B, size_t O, const struct dc_task_loss *t);
    dc_status (*task_loss_bwd)(struct dc_backend *be, dc_view dout, dc_view out, dc_view labels, dc_view class_w,
                               size_t B, size_t O, const struct dc_task_loss *t, float dloss);
    dc_status (*supcon_fwd)(struct dc_backend *be, dc_view loss, dc_view f, dc_view labels, size_t B, size_t q,
                            bool classification, float temperature);
    dc_status (*supcon_bwd)(struct dc_backend *be, dc_view df, dc_view f, dc_view labels, size_t B, size_t q,
                            bool classification, float temperature, float dloss);
    dc_status (*gmm_fwd)(struct dc_backend *be, dc_view gamma, dc_view mu, dc_view var, dc_view nu, dc_view tape,
                         dc_view xl, dc_view xa, dc_view xv, size_t B, size_t d, const struct dc_hete_opts *o);
    dc_status (*gmm_bwd)(struct dc_backend *be, dc_view dxl, dc_view dxa, dc_view dxv, dc_view dgamma, dc_view dmu,
                         dc_view dvar, dc_view dnu, dc_view tape, dc_view xl, dc_view xa, dc_view xv, size_t B,
                         size_t d, const struct dc_hete_opts *o);
    dc_status (*sinkhorn_fwd)(struct dc_backend *be, dc_view loss, dc_view tape, dc_view mu, dc_view var, dc_view nu,
                              size_t d, const struct dc_hete_opts *o);
    dc_status (*sinkhorn_bwd)(struct dc_backend *be, dc_view dmu, dc_view dvar, dc_view dnu, dc_view tape, dc_view mu,
                              dc_view var, dc_view nu, size_t d, const struct dc_hete_opts *o, float dloss);
    dc_status (*local_proto_fwd)(struct dc_backend *be, dc_view loss, dc_view xl, dc_view xa, dc_view xv,
                                 dc_view gamma, dc_view mu, dc_view var, size_t B, size_t d,
                                 const struct dc_hete_opts *o);
    dc_status (*local_proto_bwd)(struct dc_backend *be, dc_view dxl, dc_view dxa, dc_view dxv, dc_view dgamma,
                                 dc_view dmu, dc_view dvar, dc_view xl, dc_view xa, dc_view xv, dc_view gamma,
                                 dc_view mu, dc_view var, size_t B, size_t d, const struct dc_hete_opts *o,
                                 float dloss);
    dc_status (*attention_fwd)(struct dc_backend *be, dc_view out, dc_view probs, dc_view q, dc_view k, dc_view v,
                               const struct dc_attention *a);
    dc_status (*attention_bwd)(struct dc_backend *be, dc_view dq, dc_view dk, dc_view dv, dc_view dout,
                               dc_view probs, dc_view q, dc_view k, dc_view v, const struct dc_attention *a);
};

/* The common part of every backend; backends embed it first and cast. */
struct dc_backend {
    const struct dc_backend_i *impl;
    struct dc_error *err;       /* where messages go: own_err unless the caller shares one */
    struct dc_error own_err;
    bool op_ok[DC_OP_COUNT];    /* slot present and usable on this device */
    char device_name[256];
    char driver[128];
    enum dc_gemm_provider gemm_provider;
    const char *program_origin; /* "source", "cache", "binary" (--kernels-binary) or "none" (ref) */
    struct dc_backend_stats stats; /* ops/reads/writes: backend.c; launches: the OpenCL launch points */
};

/* Opens the plain-C backend. */
dc_status dc_ref_open(struct dc_backend **out, struct dc_error *err);
/* Opens an OpenCL device named by opt->device (never "ref"). */
dc_status dc_cl_open(struct dc_backend **out, const struct dc_backend_options *opt, struct dc_error *err);

/* The memory a view refers to, for backends: ref casts it to float *. */
struct dc_mem;

#endif
