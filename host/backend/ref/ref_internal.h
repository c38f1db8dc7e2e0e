/* The plain-C backend: memory is a float array; ops are readable loops with
 * reductions accumulated in double. It is the oracle every kernel is tested against. */
#ifndef DC_REF_INTERNAL_H
#define DC_REF_INTERNAL_H

#include "backend/backend_impl.h"

struct dc_mem {
    float *data;
    size_t n;
};

/* Pointer to the first float of a view. */
static inline float *ref_ptr(dc_view v) { return v.mem ? v.mem->data + v.off : NULL; }

dc_status ref_gemm(struct dc_backend *be, const struct dc_gemm_shape *s, float alpha, dc_view a, dc_view b, float beta,
                   dc_view c);

dc_status ref_bias_add(struct dc_backend *be, dc_view x, dc_view bias, size_t rows, size_t cols);
dc_status ref_bias_grad(struct dc_backend *be, dc_view dbias, dc_view dy, size_t rows, size_t cols);
dc_status ref_relu_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t n);
dc_status ref_relu_bwd(struct dc_backend *be, dc_view din, dc_view dout, dc_view out, size_t n);
dc_status ref_dropout_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t n, const struct dc_dropout *d);
dc_status ref_dropout_bwd(struct dc_backend *be, dc_view din, dc_view dout, size_t n, const struct dc_dropout *d);
dc_status ref_scale(struct dc_backend *be, dc_view x, float alpha, size_t n);
dc_status ref_axpy(struct dc_backend *be, dc_view y, float alpha, dc_view x, size_t n);
dc_status ref_add(struct dc_backend *be, dc_view out, dc_view a, dc_view b, size_t n);

dc_status ref_layernorm_fwd(struct dc_backend *be, dc_view out, dc_view mean, dc_view rstd, dc_view in, dc_view w,
                            dc_view b, size_t rows, size_t cols);
dc_status ref_layernorm_bwd(struct dc_backend *be, dc_view din, dc_view dw, dc_view db, dc_view dout, dc_view in,
                            dc_view mean, dc_view rstd, dc_view w, size_t rows, size_t cols);
dc_status ref_softmax_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t batch, size_t rows, size_t cols,
                          float scale, bool causal);
dc_status ref_softmax_bwd(struct dc_backend *be, dc_view din, dc_view dout, dc_view out, size_t batch, size_t rows,
                          size_t cols, float scale);
dc_status ref_meanpool_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t B, size_t T, size_t D);
dc_status ref_meanpool_bwd(struct dc_backend *be, dc_view din, dc_view dout, size_t B, size_t T, size_t D);
dc_status ref_im2col(struct dc_backend *be, dc_view col, dc_view in, size_t B, size_t T, size_t C, size_t k);
dc_status ref_col2im(struct dc_backend *be, dc_view din, dc_view dcol, size_t B, size_t T, size_t C, size_t k);

dc_status ref_sum(struct dc_backend *be, dc_view out, dc_view in, size_t n, float scale);
dc_status ref_norm2(struct dc_backend *be, dc_view out, dc_view in, size_t n);
dc_status ref_adam(struct dc_backend *be, dc_view param, dc_view m, dc_view v, dc_view grad, dc_view norm,
                   dc_view active, size_t n, const struct dc_adam *a);

/* strided copies (ref_strided.c) and the loss ops (ref_loss.c, wrapping ref_homo.c) */
dc_status ref_copy2d(struct dc_backend *be, dc_view dst, size_t ld_dst, dc_view src, size_t ld_src, size_t rows,
                     size_t cols);
dc_status ref_axpy2d(struct dc_backend *be, dc_view dst, size_t ld_dst, float alpha, dc_view src, size_t ld_src,
                     size_t rows, size_t cols);
dc_status ref_loss_decouple_fwd(struct dc_backend *be, dc_view loss, dc_view s, dc_view c, size_t B, size_t L);
dc_status ref_loss_decouple_bwd(struct dc_backend *be, dc_view ds, dc_view dc, dc_view s, dc_view c, size_t B,
                                size_t L, float dloss);
dc_status ref_loss_homo_stats_fwd(struct dc_backend *be, dc_view loss, dc_view zl, dc_view za, dc_view zv, size_t B,
                                  size_t p);
dc_status ref_loss_homo_stats_bwd(struct dc_backend *be, dc_view dzl, dc_view dza, dc_view dzv, dc_view zl,
                                  dc_view za, dc_view zv, size_t B, size_t p, float dloss);
dc_status ref_loss_homo_mmd_fwd(struct dc_backend *be, dc_view loss, dc_view zl, dc_view za, dc_view zv, size_t B,
                                size_t p, float bandwidth);
dc_status ref_loss_homo_mmd_bwd(struct dc_backend *be, dc_view dzl, dc_view dza, dc_view dzv, dc_view zl, dc_view za,
                                dc_view zv, size_t B, size_t p, float bandwidth, float dloss);
dc_status ref_loss_task_fwd(struct dc_backend *be, dc_view loss, dc_view out, dc_view labels, dc_view class_w, size_t B,
                            size_t O, const struct dc_task_loss *t);
dc_status ref_loss_task_bwd(struct dc_backend *be, dc_view dout, dc_view out, dc_view labels, dc_view class_w,
                            size_t B, size_t O, const struct dc_task_loss *t, float dloss);
dc_status ref_loss_supcon_fwd(struct dc_backend *be, dc_view loss, dc_view f, dc_view labels, size_t B, size_t q,
                              bool classification, float temperature);
dc_status ref_loss_supcon_bwd(struct dc_backend *be, dc_view df, dc_view f, dc_view labels, size_t B, size_t q,
                              bool classification, float temperature, float dloss);
/* Heterogeneity-loss ops (ref_hete.c), wrapping the oracle ref_align.c. */
dc_status ref_gmm_fwd(struct dc_backend *be, dc_view gamma, dc_view mu, dc_view var, dc_view nu, dc_view tape,
                      dc_view xl, dc_view xa, dc_view xv, size_t B, size_t d, const struct dc_hete_opts *o);
dc_status ref_gmm_bwd(struct dc_backend *be, dc_view dxl, dc_view dxa, dc_view dxv, dc_view dgamma, dc_view dmu,
                      dc_view dvar, dc_view dnu, dc_view tape, dc_view xl, dc_view xa, dc_view xv, size_t B, size_t d,
                      const struct dc_hete_opts *o);
dc_status ref_sinkhorn_fwd(struct dc_backend *be, dc_view loss, dc_view tape, dc_view mu, dc_view var, dc_view nu,
                           size_t d, const struct dc_hete_opts *o);
dc_status ref_sinkhorn_bwd(struct dc_backend *be, dc_view dmu, dc_view dvar, dc_view dnu, dc_view tape, dc_view mu,
                           dc_view var, dc_view nu, size_t d, const struct dc_hete_opts *o, float dloss);
dc_status ref_local_proto_fwd(struct dc_backend *be, dc_view loss, dc_view xl, dc_view xa, dc_view xv, dc_view gamma,
                              dc_view mu, dc_view var, size_t B, size_t d, const struct dc_hete_opts *o);
dc_status ref_local_proto_bwd(struct dc_backend *be, dc_view dxl, dc_view dxa, dc_view dxv, dc_view dgamma, dc_view dmu,
                              dc_view dvar, dc_view xl, dc_view xa, dc_view xv, dc_view gamma, dc_view mu, dc_view var,
                              size_t B, size_t d, const struct dc_hete_opts *o, float dloss);
dc_status ref_attention_fwd(struct dc_backend *be, dc_view out, dc_view probs, dc_view q, dc_view k, dc_view v,
                            const struct dc_attention *a);
dc_status ref_attention_bwd(struct dc_backend *be, dc_view dq, dc_view dk, dc_view dv, dc_view dout, dc_view probs,
                            dc_view q, dc_view k, dc_view v, const struct dc_attention *a);

#endif
