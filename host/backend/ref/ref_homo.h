/* Plain-C references for the smaller DecAlign loss terms (shared/spec/decalign-model.md
 * §2 decoupling, §4 homogeneity, §6 task / binary / contrastive terms): forward and
 * backward on host float arrays, accumulated in double. They are the oracles the
 * OpenCL kernels stats.cl, mmd.cl, loss.cl and contrastive.cl will be tested against;
 * they have no backend dependency yet.
 *
 * Dimension letters: B batch rows, p columns of z (pde_dim), L flattened length of one
 * sample of s_m / c_m (d * T'_m), C classes, q width of final_rep (6d).
 *
 * Conventions (llm.c order): forward = outputs, inputs, sizes, options; backward =
 * gradients first, then the upstream gradient dloss, then the forward's inputs.
 * Scalar losses are written as double (the oracle keeps its precision; a backend
 * wrapper narrows). Every *_bwd ADDS dloss * d(loss)/d(input) into its gradient
 * arrays. Clamps of the form max(x, floor) pass no gradient where x < floor (PyTorch's
 * clamp_min passes it where x >= floor); the one documented exception is the cosine
 * of the decoupling loss, whose eps clamp PyTorch applies under no_grad.
 *
 * Return DC_OK, DC_ERR_ARG for invalid arguments (NULL pointers, zero sizes, bad
 * options or labels), or DC_ERR_NOMEM when a scratch allocation fails. */
#ifndef DC_REF_HOMO_H
#define DC_REF_HOMO_H

#include <stddef.h>

#include "decocl/status.h"

/* ---- §4 distribution statistics: L_sem = (dist(l,a) + dist(l,v) + dist(a,v)) / 3 ---- */

#define DC_REF_STATS_VAR_FLOOR 1e-6

/* loss: L_sem. zl, za, zv: (B, p) each. */
dc_status ref_homo_stats_fwd(double *loss, const float *zl, const float *za, const float *zv, size_t B, size_t p);
/* dzl, dza, dzv: (B, p), accumulated. */
dc_status ref_homo_stats_bwd(float *dzl, float *dza, float *dzv, double dloss, const float *zl, const float *za,
                             const float *zv, size_t B, size_t p);

/* ---- §4 Gaussian-kernel MMD, biased (diagonal included) ---- */

/* mmd: MMD(X, Y) = mean k(X,X) + mean k(Y,Y) - 2 mean k(X,Y), k = exp(-|x-y|^2 / (2 bw)).
 * x: (nx, p), y: (ny, p); bandwidth > 0. */
dc_status ref_mmd_pair_fwd(double *mmd, const float *x, size_t nx, const float *y, size_t ny, size_t p,
                           float bandwidth);
/* dx: (nx, p), dy: (ny, p), accumulated. */
dc_status ref_mmd_pair_bwd(float *dx, float *dy, double dmmd, const float *x, size_t nx, const float *y, size_t ny,
                           size_t p, float bandwidth);
/* loss: L_MMD = (MMD(l,a) + MMD(l,v) + MMD(a,v)) / 3; zl, za, zv: (B, p). */
dc_status ref_homo_mmd_fwd(double *loss, const float *zl, const float *za, const float *zv, size_t B, size_t p,
                           float bandwidth);
dc_status ref_homo_mmd_bwd(float *dzl, float *dza, float *dzv, double dloss, const float *zl, const float *za,
                           const float *zv, size_t B, size_t p, float bandwidth);

/* ---- §2 decoupling: mean_b cos(s[b], c[b])^2, cosine as torch >= 1.13 ---- */

#define DC_REF_COSINE_EPS 1e-8

/* One modality. s, c: (B, L), each row one flattened sample. */
dc_status ref_decouple_fwd(double *loss, const float *s, const float *c, size_t B, size_t L);
/* ds, dc: (B, L), accumulated. */
dc_status ref_decouple_bwd(float *ds, float *dc, double dloss, const float *s, const float *c, size_t B, size_t L);
/* L_dec = mean over the nmod active modalities; s[m], c[m]: (B, len[m]). */
dc_status ref_decouple_loss_fwd(double *loss, size_t nmod, const float *const *s, const float *const *c,
                                const size_t *len, size_t B);
dc_status ref_decouple_loss_bwd(float *const *ds, float *const *dc, double dloss, size_t nmod, const float *const *s,
                                const float *const *c, const size_t *len, size_t B);

/* ---- §6 task losses ---- */

enum dc_ref_task_loss {
    DC_REF_TASK_LOSS_MSE = 0,
    DC_REF_TASK_LOSS_L1 = 1,        /* `mae` / `l1` */
    DC_REF_TASK_LOSS_SMOOTH_L1 = 2, /* `smooth_l1` / `huber`, with beta (0 = L1) */
};

/* Regression: loss = crit(out, label) (mean over B) + binary_weight * BCE-with-logits(out,
 * label > 0) over the samples with label != 0 (that term is 0 when there are none or when
 * binary_weight <= 0). out, label: (B). beta >= 0 (smooth L1 only). */
dc_status ref_task_regression_fwd(double *loss, const float *out, const float *label, size_t B,
                                  enum dc_ref_task_loss kind, float beta, float binary_weight);
/* dout: (B), accumulated. */
dc_status ref_task_regression_bwd(float *dout, double dloss, const float *out, const float *label, size_t B,
                                  enum dc_ref_task_loss kind, float beta, float binary_weight);

/* Classification: weighted-mean cross-entropy, sum_b w[y_b] nll_b / sum_b w[y_b]
 * (w = 1 when class_w is NULL). logits: (B, C); label: (B) class ids stored as floats,
 * integral and in [0, C). A zero total weight gives NaN, as in PyTorch. */
dc_status ref_task_ce_fwd(double *loss, const float *logits, const float *label, const float *class_w, size_t B,
                          size_t C);
/* dlogits: (B, C), accumulated. */
dc_status ref_task_ce_bwd(float *dlogits, double dloss, const float *logits, const float *label,
                          const float *class_w, size_t B, size_t C);

/* ---- §6 supervised contrastive loss on final_rep ---- */

#define DC_REF_NORMALIZE_EPS 1e-12 /* torch.nn.functional.normalize */
#define DC_REF_SUPCON_DENOM_FLOOR 1e-8

/* The contrastive class of one label: for classification (int)label (truncation, as
 * .long()); for regression rint(clamp(label, -3, 3)) + 3 in float (half to even).
 * Writes it to *cls; DC_ERR_ARG for a non-finite label. */
dc_status ref_supcon_class(long *cls, float label, int classification);

/* loss: L_ct. f: (B, q); label: (B); temperature > 0. */
dc_status ref_supcon_fwd(double *loss, const float *f, const float *label, size_t B, size_t q, int classification,
                         float temperature);
/* df: (B, q), accumulated. */
dc_status ref_supcon_bwd(float *df, double dloss, const float *f, const float *label, size_t B, size_t q,
                         int classification, float temperature);

#endif
