/* Op semantics, identical on every backend.
 *
 * Conventions (llm.c order): outputs first, then values saved for backward, then
 * inputs, then weights, then sizes. Everything is row-major float32. Activations
 * are (B, T, D); weights keep PyTorch's layout (Linear (out, in), Conv1d
 * (d, C, k)). Every *_bwd op ADDS into its gradient outputs; zeroing is an
 * explicit dc_fill. Views must be large enough for the sizes given (checked;
 * a violation is a programmer error and aborts). An op on a backend that lacks it
 * returns DC_ERR_UNSUPPORTED. Ops only enqueue work; none waits for the device. */
#ifndef DECOCL_OPS_H
#define DECOCL_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "decocl/backend.h"

enum dc_op {
#define DC_OP(name) DC_OP_##name,
#include "decocl/ops.def"
#undef DC_OP
    DC_OP_COUNT
};
const char *dc_op_name(enum dc_op op);
bool dc_backend_supports(const struct dc_backend *be, enum dc_op op);

/* C[b] = alpha * op(A[b]) op(B[b]) + beta * C[b] for b < batch, BLAS semantics as
 * CLBlastSgemm with CLBlastLayoutRowMajor: op(A) is (m, k), op(B) is (k, n), C is
 * (m, n); A is stored (m, lda) or, transposed, (k, lda); element [b] starts at
 * view offset + b * stride. beta == 0 ignores C's old contents (NaN included). */
struct dc_gemm_shape {
    bool ta, tb;
    size_t m, n, k;
    size_t lda, ldb, ldc;
    size_t stride_a, stride_b, stride_c, batch;
};
dc_status dc_gemm_ex(struct dc_backend *be, const struct dc_gemm_shape *s, float alpha, dc_view a, dc_view b, float beta,
                     dc_view c);
dc_status dc_gemm(struct dc_backend *be, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, dc_view a,
                  size_t lda, dc_view b, size_t ldb, float beta, dc_view c, size_t ldc);
dc_status dc_gemm_batched(struct dc_backend *be, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, dc_view a,
                          size_t lda, size_t stride_a, dc_view b, size_t ldb, size_t stride_b, float beta, dc_view c,
                          size_t ldc, size_t stride_c, size_t batch);

/* x (rows, cols) += bias (cols) broadcast over rows. */
dc_status dc_bias_add(struct dc_backend *be, dc_view x, dc_view bias, size_t rows, size_t cols);
/* dbias (cols) += sum over rows of dy (rows, cols). */
dc_status dc_bias_grad(struct dc_backend *be, dc_view dbias, dc_view dy, size_t rows, size_t cols);

/* out = max(in, 0); in place allowed. */
dc_status dc_relu_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t n);
/* din += dout * (out > 0), using the forward output as PyTorch does. */
dc_status dc_relu_bwd(struct dc_backend *be, dc_view din, dc_view dout, dc_view out, size_t n);

/* Per row of in (rows, cols): out = (in - mean) * rstd * w + b, rstd = 1/sqrt(var + 1e-5),
 * biased variance. mean and rstd (rows) are saved for the backward. */
#define DC_LAYERNORM_EPS 1e-5f
dc_status dc_layernorm_fwd(struct dc_backend *be, dc_view out, dc_view mean, dc_view rstd, dc_view in, dc_view w,
                           dc_view b, size_t rows, size_t cols);
/* din, dw, db += gradients of the forward above. */
dc_status dc_layernorm_bwd(struct dc_backend *be, dc_view din, dc_view dw, dc_view db, dc_view dout, dc_view in,
                           dc_view mean, dc_view rstd, dc_view w, size_t rows, size_t cols);

/* For each of batch matrices (rows, cols): out[i, :] = softmax_j(scale * in[i, j]);
 * with causal, entries j > i are masked (probability exactly 0), as MulT's future
 * mask with equal query and key lengths. In place allowed. */
dc_status dc_softmax_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t batch, size_t rows, size_t cols,
                         float scale, bool causal);
/* din += scale * out * (dout - sum_j dout * out) per row. */
dc_status dc_softmax_bwd(struct dc_backend *be, dc_view din, dc_view dout, dc_view out, size_t batch, size_t rows,
                         size_t cols, float scale);

/* Dropout with a counter-based mask (Philox4x32-10, see host/core/rng.h): element i is
 * kept when word (i & 3) of philox(key = seed, ctr = (i >> 2, site, step, step >> 32))
 * is >= threshold(p); kept values are multiplied by 1/(1-p). p == 0 copies; p == 1 zeroes.
 * Bit-identical on every backend. In place allowed. */
struct dc_dropout {
    float p;
    uint64_t seed, step;
    uint32_t site; /* fixed id per call site */
};
dc_status dc_dropout_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t n, const struct dc_dropout *d);
/* din += dout * mask * 1/(1-p); the mask is regenerated, not stored. */
dc_status dc_dropout_bwd(struct dc_backend *be, dc_view din, dc_view dout, size_t n, const struct dc_dropout *d);

/* x *= alpha */
dc_status dc_scale(struct dc_backend *be, dc_view x, float alpha, size_t n);
/* y += alpha * x */
dc_status dc_axpy(struct dc_backend *be, dc_view y, float alpha, dc_view x, size_t n);
/* out = a + b (residual); out may alias a or b. */
dc_status dc_add(struct dc_backend *be, dc_view out, dc_view a, dc_view b, size_t n);

/* out (B, D) = mean over t of in (B, T, D). */
dc_status dc_meanpool_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t B, size_t T, size_t D);
/* din (B, T, D) += dout (B, D) / T. */
dc_status dc_meanpool_bwd(struct dc_backend *be, dc_view din, dc_view dout, size_t B, size_t T, size_t D);

/* im2col for Conv1d over time, no padding, stride 1: in (B, T, C) ->
 * col (B * T', C * k), T' = T - k + 1, col[b*T' + t, c*k + j] = in[b, t + j, c]
 * (the column order of a PyTorch Conv1d weight (d, C, k) viewed as (d, C*k)). */
dc_status dc_im2col(struct dc_backend *be, dc_view col, dc_view in, size_t B, size_t T, size_t C, size_t k);
/* din (B, T, C) += the adjoint of im2col applied to dcol. */
dc_status dc_col2im(struct dc_backend *be, dc_view din, dc_view dcol, size_t B, size_t T, size_t C, size_t k);

/* Conv1d over time (composite: im2col + gemm): in (B, T, C), w (d, C, k),
 * out (B, T', d). col is workspace of B*T'*C*k floats (unused when k == 1). */
dc_status dc_conv1d_fwd(struct dc_backend *be, dc_view out, dc_view col, dc_view in, dc_view w, size_t B, size_t T,
                        size_t C, size_t d, size_t k);
/* din (may be an empty view: not needed) and dw += gradients. col must hold the forward's
 * im2col (when k > 1); dcol is workspace of the same size (unused when k == 1). */
dc_status dc_conv1d_bwd(struct dc_backend *be, dc_view din, dc_view dw, dc_view dcol, dc_view dout, dc_view col,
                        dc_view in, dc_view w, size_t B, size_t T, size_t C, size_t d, size_t k);

/* out[0] = scale * sum of in (n); use scale 1/n for the mean. */
dc_status dc_sum(struct dc_backend *be, dc_view out, dc_view in, size_t n, float scale);
/* out[0] = sqrt(sum of in^2): the global gradient norm over a flat buffer. */
dc_status dc_norm2(struct dc_backend *be, dc_view out, dc_view in, size_t n);

/* One PyTorch Adam step (not AdamW) over a flat buffer, with clip_grad_norm folded in:
 *   c = clip > 0 && clip / (norm[0] + 1e-6) < 1 ? clip / (norm[0] + 1e-6) : 1
 *   g = c * grad + weight_decay * param
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   param -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * norm is a 1-float view (from dc_norm2, read on the device: no host sync); it is
 * ignored when clip <= 0. active holds one float per DC_ADAM_CHUNK elements of
 * param; a chunk whose flag is 0 is left untouched (a parameter that took no part in
 * the loss has no gradient in PyTorch, so Adam skips it, weight decay included).
 * An empty active view (mem NULL) means all active. grad is not modified. */
#define DC_ADAM_CHUNK 64
/* Hyperparameters in double, as PyTorch holds them in Python: 1 - beta2 is formed in
 * double and then rounded to float, as torch does when it passes the scalar to a kernel. */
struct dc_adam {
    double lr, beta1, beta2, eps, weight_decay, clip;
    uint64_t step; /* t, starting at 1 */
};
/* The float constants every backend's Adam uses, derived once from struct dc_adam. */
struct dc_adam_consts {
    float step_size;                /* lr / (1 - beta1^t) */
    float bc2_sqrt;                 /* sqrt(1 - beta2^t) */
    float one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, clip;
};
struct dc_adam_consts dc_adam_consts_of(const struct dc_adam *a);
dc_status dc_adam(struct dc_backend *be, dc_view param, dc_view m, dc_view v, dc_view grad, dc_view norm,
                  dc_view active, size_t n, const struct dc_adam *a);


/* Fused multi-head attention (one transformer attention block without its projections).
 * Letters: B batch, T query length (Tq), S key/value length, d model width, H heads,
 * h = d / H head size. Row (b, t) of q is q[(b*T + t) * ld_q ...], row (b, j) of k and
 * v likewise with ld_k, ld_v (row strides >= d, so q, k, v may be column blocks of one
 * packed in-projection output); head hd is the column block [hd*h, (hd+1)*h). Per (b, hd):
 *     P = softmax_j(scale * q_hd k_hd^T)   (causal: entries j > t masked, exactly 0)
 *     out_hd = drop(P) v_hd                (out row (b, t) at out[(b*T + t) * ld_out ...])
 * The scores are rounded to float before scale is applied, as a gemm followed by
 * dc_softmax_fwd would. probs (B, H, T, S) saves P BEFORE dropout (the backward needs
 * the undropped P; the mask is regenerated from Philox). The dropout is the one
 * dc_dropout_fwd would apply to the whole probs tensor: element ((b*H + hd)*T + t)*S + j
 * takes that index's Philox word, so masks equal those of the unfused composition.
 * drop.p == 0 disables it; p must be < 1. out's columns outside d are untouched. */
struct dc_attention {
    size_t B, T, S, d, H;
    size_t ld_q, ld_k, ld_v, ld_out; /* row strides in floats */
    float scale;                     /* usually 1/sqrt(h) */
    bool causal;                     /* MulT's future mask (used with T == S) */
    struct dc_dropout drop;
};
dc_status dc_attention_fwd(struct dc_backend *be, dc_view out, dc_view probs, dc_view q, dc_view k, dc_view v,
                           const struct dc_attention *a);
/* dq, dk, dv += gradients of the forward above, given dout (rows ld_out apart) and the
 * forward's probs (with causal, kernels may skip the masked entries, which the forward
 * set to exactly 0); dq, dk, dv use the row strides of q, k, v and must not overlap
 * each other. */
dc_status dc_attention_bwd(struct dc_backend *be, dc_view dq, dc_view dk, dc_view dv, dc_view dout, dc_view probs,
                           dc_view q, dc_view k, dc_view v, const struct dc_attention *a);

#endif
