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

/* ---- Strided 2-D copies (assembling the transformer context and the fusion vector) ----
 * A rows x cols block: dst row r starts at dst.off + r * ld_dst, src row r at
 * src.off + r * ld_src (ld >= cols). dst and src must not overlap. */
dc_status dc_copy2d(struct dc_backend *be, dc_view dst, size_t ld_dst, dc_view src, size_t ld_src, size_t rows,
                    size_t cols);
/* dst += alpha * src over the same block layout. */
dc_status dc_axpy2d(struct dc_backend *be, dc_view dst, size_t ld_dst, float alpha, dc_view src, size_t ld_src,
                    size_t rows, size_t cols);

/* ---- DecAlign's small loss terms (shared/spec/decalign-model.md §2, §4, §6) ----
 * Exact semantics, clamps and PyTorch conventions are those of the oracles in
 * host/backend/ref/ref_homo.h, which the ref backend wraps (accumulating in double);
 * the OpenCL kernels accumulate in float. Every forward WRITES one float to loss[0]
 * (a 1-float view, typically a slot in a small buffer of losses the host downloads
 * once per step); every backward ADDS dloss * d(loss)/d(input) into its gradients.
 * B, p, L, q and O must be > 0 (asserted). Bad options (bandwidth, temperature,
 * beta <= 0 where forbidden, an unknown kind, O != 1 for a regression kind) return
 * DC_ERR_ARG. Bad labels are data, checked by the caller before upload: the ref
 * backend returns DC_ERR_ARG for them, the OpenCL device cannot report an error and
 * writes NaN instead (forward: the loss; backward: the gradient of the term). */

/* loss[0] = mean_b cos(s_b, c_b)^2 over rows of length L; cosine as torch >= 1.13,
 * x / max(|x|, 1e-8) . y / max(|y|, 1e-8), the clamp passing no gradient. s, c: (B, L). */
dc_status dc_decouple_fwd(struct dc_backend *be, dc_view loss, dc_view s, dc_view c, size_t B, size_t L);
/* ds, dc: (B, L) accumulated. */
dc_status dc_decouple_bwd(struct dc_backend *be, dc_view ds, dc_view dc, dc_view s, dc_view c, size_t B, size_t L,
                          float dloss);

/* loss[0] = L_sem = (dist(l,a) + dist(l,v) + dist(a,v)) / 3, dist = mse(mean) + mse(cov,
 * unbiased, B - 1 floored at 1) + mse(skew, variance floored at 1e-6). zl, za, zv: (B, p). */
dc_status dc_homo_stats_fwd(struct dc_backend *be, dc_view loss, dc_view zl, dc_view za, dc_view zv, size_t B,
                            size_t p);
/* dzl, dza, dzv: (B, p) accumulated. */
dc_status dc_homo_stats_bwd(struct dc_backend *be, dc_view dzl, dc_view dza, dc_view dzv, dc_view zl, dc_view za,
                            dc_view zv, size_t B, size_t p, float dloss);

/* loss[0] = L_MMD = (MMD(l,a) + MMD(l,v) + MMD(a,v)) / 3, biased Gaussian-kernel MMD with
 * k(x, y) = exp(-|x - y|^2 / (2 bandwidth)), bandwidth > 0. zl, za, zv: (B, p). */
dc_status dc_homo_mmd_fwd(struct dc_backend *be, dc_view loss, dc_view zl, dc_view za, dc_view zv, size_t B, size_t p,
                          float bandwidth);
dc_status dc_homo_mmd_bwd(struct dc_backend *be, dc_view dzl, dc_view dza, dc_view dzv, dc_view zl, dc_view za,
                          dc_view zv, size_t B, size_t p, float bandwidth, float dloss);

/* The task loss. Regression kinds (O == 1): mean over B of MSE, L1 or smooth L1 (beta
 * >= 0; 0 is L1), plus binary_weight * BCE-with-logits(out, label > 0) over the rows
 * whose label != 0 (no term when there are none or binary_weight <= 0). DC_TASK_CE:
 * out is (B, O) logits, labels hold class ids as floats (truncated as .long(), in
 * [0, O)); weighted mean sum_b w[y_b] nll_b / sum_b w[y_b], w = class_w (O) or 1
 * when class_w is an empty view (mem NULL). An out-of-range class id gives NaN on the
 * device (PyTorch raises); a zero total weight gives NaN as in PyTorch. */
enum dc_task_loss_kind { DC_TASK_MSE = 0, DC_TASK_L1 = 1, DC_TASK_SMOOTH_L1 = 2, DC_TASK_CE = 3 };
struct dc_task_loss {
    enum dc_task_loss_kind kind;
    float beta;          /* smooth L1 only */
    float binary_weight; /* regression only */
};
dc_status dc_task_loss_fwd(struct dc_backend *be, dc_view loss, dc_view out, dc_view labels, dc_view class_w, size_t B,
                           size_t O, const struct dc_task_loss *t);
/* dout: (B, O) accumulated. */
dc_status dc_task_loss_bwd(struct dc_backend *be, dc_view dout, dc_view out, dc_view labels, dc_view class_w, size_t B,
                           size_t O, const struct dc_task_loss *t, float dloss);

/* loss[0] = supervised contrastive loss on f (B, q): rows L2-normalised (eps 1e-12),
 * logits fn_i . fn_j / temperature, row max (diagonal included) detached, denominator
 * sum over j != i floored at 1e-8, mean over positives, mean over rows with at least
 * one positive (0 when none has). Classes: classification (int)label (truncation);
 * otherwise rint(clamp(label, -3, 3)) + 3. A non-finite label gives NaN on the device. */
dc_status dc_supcon_fwd(struct dc_backend *be, dc_view loss, dc_view f, dc_view labels, size_t B, size_t q,
                        bool classification, float temperature);
/* df: (B, q) accumulated. */
dc_status dc_supcon_bwd(struct dc_backend *be, dc_view df, dc_view f, dc_view labels, size_t B, size_t q,
                        bool classification, float temperature, float dloss);
/* ---- DecAlign's heterogeneity loss L_hete (shared/spec/decalign-model.md section 3) ----
 * Letters: B rows, d features (d_model), K prototypes, R EM rounds, T Sinkhorn iterations.
 * The three modalities are l, a, v in that order; stacked tensors put them first:
 * gamma (3, B, K), mu and var (3, K, d), nu (3, K). A tape is backend-private workspace
 * (the forward writes it, the matching backward reads it; its contents differ between
 * backends: ref keeps doubles there). host/backend/ref/ref_align.h is the C oracle. */
#define DC_HETE_M 3 /* modalities */

enum dc_hete_reduction {
    DC_HETE_REDUCTION_MEAN = 0, /* hetero_cost_reduction = "mean" (default): average over d */
    DC_HETE_REDUCTION_SUM = 1,  /* hetero_cost_reduction = "sum" */
};

struct dc_hete_opts {
    size_t k;                         /* num_prototypes, >= 1 */
    size_t em_iters;                  /* gmm_em_iters (reference default 5), may be 0 */
    double var_floor;                 /* gmm_var_floor (reference default 1e-4), > 0 */
    double lambda_ot;                 /* ot_reg: entropy weight; the kernel uses max(lambda_ot, 1e-6) */
    size_t ot_iters;                  /* ot_num_iters, may be 0 */
    enum dc_hete_reduction reduction; /* of the W2 costs and the local prototype term */
    int mahalanobis;                  /* local_proto_mahalanobis: divide by max(var_j, var_floor) */
};

/* Differentiable GMM-EM of the three modalities x_l, x_a, x_v (B, d each), as
 * dc_ref_gmm_fwd per modality: init, R rounds of E-step + M-step, final E-step. Writes
 * gamma, mu, var, nu (stacked, see above) and the tape (dc_gmm_tape_len floats). */
size_t dc_gmm_tape_len(size_t B, size_t d, const struct dc_hete_opts *o);
dc_status dc_gmm_fwd(struct dc_backend *be, dc_view gamma, dc_view mu, dc_view var, dc_view nu, dc_view tape,
                     dc_view xl, dc_view xa, dc_view xv, size_t B, size_t d, const struct dc_hete_opts *o);
/* dx_m += dL/dx_m given the upstream dgamma, dmu, dvar, dnu (stacked), back through every
 * EM round and the initialisation. tape: the forward's, on the same x; overwritten in part. */
dc_status dc_gmm_bwd(struct dc_backend *be, dc_view dxl, dc_view dxa, dc_view dxv, dc_view dgamma, dc_view dmu,
                     dc_view dvar, dc_view dnu, dc_view tape, dc_view xl, dc_view xa, dc_view xv, size_t B, size_t d,
                     const struct dc_hete_opts *o);

/* loss[0] = L_OT: W2 costs of the pairs (l,a), (l,v), (a,v) from mu, var (stacked), the
 * joint cost C[a,b,c] = C_la[a,b] + C_lv[a,c] + C_av[b,c] and T rounds of the
 * three-marginal Sinkhorn with marginals nu (stacked); see dc_ref_sinkhorn_fwd. */
size_t dc_sinkhorn_tape_len(size_t d, const struct dc_hete_opts *o);
dc_status dc_sinkhorn_fwd(struct dc_backend *be, dc_view loss, dc_view tape, dc_view mu, dc_view var, dc_view nu,
                          size_t d, const struct dc_hete_opts *o);
/* dmu, dvar, dnu (stacked) += dloss * dL_OT/d{mu, var, nu}, through all T iterations. */
dc_status dc_sinkhorn_bwd(struct dc_backend *be, dc_view dmu, dc_view dvar, dc_view dnu, dc_view tape, dc_view mu,
                          dc_view var, dc_view nu, size_t d, const struct dc_hete_opts *o, float dloss);

/* loss[0] = L_proto, the local prototype term of x_l, x_a, x_v against the other
 * modalities' prototypes (see dc_ref_local_proto_fwd); var is read with mahalanobis only. */
dc_status dc_local_proto_fwd(struct dc_backend *be, dc_view loss, dc_view xl, dc_view xa, dc_view xv, dc_view gamma,
                             dc_view mu, dc_view var, size_t B, size_t d, const struct dc_hete_opts *o);
/* dx_m, dgamma, dmu, dvar += dloss * dL_proto/d{x_m, gamma, mu, var}. */
dc_status dc_local_proto_bwd(struct dc_backend *be, dc_view dxl, dc_view dxa, dc_view dxv, dc_view dgamma, dc_view dmu,
                             dc_view dvar, dc_view xl, dc_view xa, dc_view xv, dc_view gamma, dc_view mu, dc_view var,
                             size_t B, size_t d, const struct dc_hete_opts *o, float dloss);

/* The whole L_hete (composite of the ops above plus one add; 4 launches forward and 4
 * backward on OpenCL). tape: dc_hete_tape_len floats, the same on every backend. */
size_t dc_hete_tape_len(size_t B, size_t d, const struct dc_hete_opts *o);
/* loss[0] = L_hete = L_OT + L_proto of the pooled features x_m (B, d); writes the tape. */
dc_status dc_hete_fwd(struct dc_backend *be, dc_view loss, dc_view tape, dc_view xl, dc_view xa, dc_view xv, size_t B,
                      size_t d, const struct dc_hete_opts *o);
/* dx_m += dloss * dL_hete/dx_m; tape: dc_hete_fwd's on the same x. */
dc_status dc_hete_bwd(struct dc_backend *be, dc_view dxl, dc_view dxa, dc_view dxv, dc_view tape, dc_view xl,
                      dc_view xa, dc_view xv, size_t B, size_t d, const struct dc_hete_opts *o, float dloss);

/* Fused multi-head attention (one transformer attention block without its projections).
 * Letters: B batch, T query length (Tq), S key/value length, d model width, H heads,
 * h = d / H head size. Row (b, t) of q is q[(b*T + t) * ld_q ...], row (b, j) of k and
 * v likewise with ld_k, ld_v (row strides >= d, so q, k, v may be column blocks of one
 * packed in-projection output); head hd is the column block [hd*h, (hd+1)*h). Per (b, hd):
 *     P = softmax_j(scale * q_hd k_hd^T)   (causal: entries j > t masked, exactly 0)
 *     out_hd = drop(P) v_hd                (out row (b, t) at out[(b*T + t) * ld_out ...])
 * The scores are rounded to float before scale is applied, as a gemm followed by
 * dc_softmax_fwd would. probs (B, H, T, S) saves P BEFORE dropout (the backward needs
 * the undropped P) with the sign bit set where dropout dropped the element: P >= 0, so
 * |probs| is P and the backward reads the mask there instead of regenerating it from
 * Philox. The dropout is the one
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
