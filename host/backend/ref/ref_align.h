/* Reference (plain C) forward and backward of DecAlign's heterogeneity alignment loss,
 * shared/spec/decalign-model.md section 3 (the reference implementation is
 * taco-group/DecAlign models/model.py: _init_gmm, _fit_gmm_em, _gaussian_cost,
 * _multi_marginal_sinkhorn, _sample_to_proto_cost, compute_hetero_loss).
 *
 * Dimension letters: B batch rows, d feature size (d_model), K prototypes, R EM rounds
 * (gmm_em_iters), T Sinkhorn iterations (ot_num_iters). Everything is row-major.
 *
 * Precision: the components (GMM-EM, W2 costs, Sinkhorn, local prototype term) work on
 * double arrays, so the finite-difference tests can evaluate the forward in double; the
 * top-level dc_ref_hete_fwd / dc_ref_hete_bwd take the model's float arrays and hold every
 * intermediate in double. An OpenCL twin that keeps float intermediates differs from this
 * oracle by float rounding only.
 *
 * Clamps: every floor is torch.clamp_min (Tensor.clamp_min / clamp(min=)) in the
 * reference, whose backward passes the gradient where input >= floor (at equality too)
 * and nothing where input < floor. That holds for max(pi,1e-8), N_k = max(., 1e-6),
 * max(var, var_floor), the 1e-8 floor of the nu renormalisation, the 1e-30 Sinkhorn
 * kernel floor, max(P, 1e-8) inside the entropy and the Mahalanobis max(var, floor).
 * The "+ 1e-8" added to the Sinkhorn denominators and inside the W2 square root are
 * additions, not clamps: gradient always flows through them.
 *
 * Backward functions ADD into their gradient outputs (ops.h convention). Every function
 * returns DC_ERR_ARG for invalid arguments only; the numerics themselves never fail.
 * Work buffers are caller-provided double arrays of the length the *_work_len function
 * returns: the forward writes its tape there and the backward reads it (and uses the
 * rest as scratch), so the forward must run before the backward on the same buffer. */
#ifndef DC_REF_ALIGN_H
#define DC_REF_ALIGN_H

#include <stddef.h>

#include "decocl/ops.h"
#include "decocl/status.h"

/* DC_HETE_M, enum dc_hete_reduction and struct dc_hete_opts live in decocl/ops.h. */

/* ---- 1. Differentiable diagonal GMM-EM of one modality ---- */

/* Row of x that initialises prototype k: round-half-even(linspace(0, B-1, K))[k] with
 * linspace evaluated in float32 as torch.linspace does on CPU (start + step*i in the first
 * half, end - step*(K-1-i) in the second), or k mod B when B < K. */
size_t dc_ref_gmm_init_row(size_t k, size_t B, size_t K);

/* Doubles of work the GMM forward+backward need for (B, K, d, R). */
size_t dc_ref_gmm_work_len(size_t B, size_t K, size_t d, size_t em_iters);

/* EM fit of x (B, d): init (see dc_ref_gmm_init_row; var = population variance of x per
 * dimension clamped at var_floor, the same for all k; pi = 1/K), R rounds of E-step +
 * M-step, then a final E-step. Outputs:
 *   gamma (B, K) final posterior; mu, var (K, d) after the last M-step (the init when
 *   R = 0); nu (K) = mean_n gamma renormalised to sum 1 (denominator clamped at 1e-8).
 * work: dc_ref_gmm_work_len doubles; holds the tape for dc_ref_gmm_bwd. */
dc_status dc_ref_gmm_fwd(double *gamma, double *mu, double *var, double *nu, double *work, const double *x, size_t B,
                         size_t d, size_t K, size_t em_iters, double var_floor);

/* Adds dL/dx (B, d) into dx, given dL/dgamma (B, K), dL/dmu (K, d), dL/dvar (K, d) and
 * dL/dnu (K); any upstream gradient may be NULL (zero). Replays every EM round in
 * reverse, through the initialisation. work must hold the tape of dc_ref_gmm_fwd on the
 * same x; its scratch part is overwritten. */
dc_status dc_ref_gmm_bwd(double *dx, const double *dgamma, const double *dmu, const double *dvar, const double *dnu,
                         double *work, const double *x, size_t B, size_t d, size_t K, size_t em_iters,
                         double var_floor);

/* ---- 2. W2 prototype costs between two modalities ---- */

/* C (K, K): C[a,b] = red_j (mu_i[a,j]-mu_j[b,j])^2
 *                  + red_j (var_i[a,j] + var_j[b,j] - 2 sqrt(var_i[a,j] var_j[b,j] + 1e-8)),
 * red = mean or sum over the d dimensions. mu_*, var_* are (K, d). */
dc_status dc_ref_w2_cost_fwd(double *C, const double *mu_i, const double *var_i, const double *mu_j,
                             const double *var_j, size_t K, size_t d, enum dc_hete_reduction red);

/* Adds into dmu_i, dvar_i, dmu_j, dvar_j (K, d) given dC (K, K). */
dc_status dc_ref_w2_cost_bwd(double *dmu_i, double *dvar_i, double *dmu_j, double *dvar_j, const double *dC,
                             const double *mu_i, const double *var_i, const double *mu_j, const double *var_j, size_t K,
                             size_t d, enum dc_hete_reduction red);

/* ---- 3. Three-marginal entropic Sinkhorn ---- */

/* Doubles of work for Sinkhorn with K prototypes and T iterations. */
size_t dc_ref_sinkhorn_work_len(size_t K, size_t ot_iters);

/* Plan P (K, K, K) and loss L_OT = sum P C + lambda_ot sum P (log(max(P, 1e-8)) - 1) for
 * the joint cost C (K, K, K) and marginals nu_l, nu_a, nu_v (K), with
 * G = max(exp(-C / max(lambda_ot, 1e-6)), 1e-30) and T rounds of the u, v, w updates of
 * the spec. P may be NULL. work: dc_ref_sinkhorn_work_len doubles (tape of u, v, w and
 * their denominators per iteration). */
dc_status dc_ref_sinkhorn_fwd(double *P, double *loss, double *work, const double *C, const double *nu_l,
                              const double *nu_a, const double *nu_v, size_t K, size_t ot_iters, double lambda_ot);

/* Adds into dC (K, K, K) and dnu_l, dnu_a, dnu_v (K) the gradient of
 * dloss * L_OT + sum dP * P (dP (K, K, K) may be NULL), back through all T iterations.
 * Any gradient output may be NULL (not wanted). work holds the forward's tape. */
dc_status dc_ref_sinkhorn_bwd(double *dC, double *dnu_l, double *dnu_a, double *dnu_v, double dloss, const double *dP,
                              double *work, const double *C, const double *nu_l, const double *nu_a, const double *nu_v,
                              size_t K, size_t ot_iters, double lambda_ot);

/* ---- 4. Local prototype term ---- */

/* L_proto = mean over the 6 ordered pairs i != j of
 *   (1/B) sum_n sum_k gamma_i[n,k] red_j c(x_i[n,j] - mu_j[k,j]),
 * c(t) = t^2, or t^2 / max(var_j[k,j], var_floor) with mahalanobis. x[m] (B, d),
 * gamma[m] (B, K), mu[m], var[m] (K, d); var is only read with mahalanobis. */
dc_status dc_ref_local_proto_fwd(double *loss, const double *const x[DC_HETE_M], const double *const gamma[DC_HETE_M],
                                 const double *const mu[DC_HETE_M], const double *const var[DC_HETE_M], size_t B,
                                 size_t d, size_t K, enum dc_hete_reduction red, int mahalanobis, double var_floor);

/* Adds dloss * dL_proto/d{x, gamma, mu, var}[m] into dx[m] (B, d), dgamma[m] (B, K),
 * dmu[m], dvar[m] (K, d). Any of the four arrays of pointers may be NULL (not wanted). */
dc_status dc_ref_local_proto_bwd(double *const dx[DC_HETE_M], double *const dgamma[DC_HETE_M],
                                 double *const dmu[DC_HETE_M], double *const dvar[DC_HETE_M], double dloss,
                                 const double *const x[DC_HETE_M], const double *const gamma[DC_HETE_M],
                                 const double *const mu[DC_HETE_M], const double *const var[DC_HETE_M], size_t B,
                                 size_t d, size_t K, enum dc_hete_reduction red, int mahalanobis, double var_floor);

/* ---- 5. The whole heterogeneity loss ---- */

/* Doubles of work dc_ref_hete_fwd[_f64] + dc_ref_hete_bwd[_f64] need. */
size_t dc_ref_hete_work_len(size_t B, size_t d, const struct dc_hete_opts *o);

/* L_hete = L_OT + L_proto of the pooled modality-unique features x[m] (B, d), m = l, a, v.
 * work: dc_ref_hete_work_len doubles, keeps everything the backward needs. Optional
 * outputs (NULL = not wanted): l_ot, l_proto (the two terms). */
dc_status dc_ref_hete_fwd_f64(double *loss, double *l_ot, double *l_proto, double *work,
                              const double *const x[DC_HETE_M], size_t B, size_t d, const struct dc_hete_opts *o);

/* Adds dloss * dL_hete/dx[m] into dx[m] (B, d). work holds dc_ref_hete_fwd_f64's tape on
 * the same x. */
dc_status dc_ref_hete_bwd_f64(double *const dx[DC_HETE_M], double dloss, double *work, const double *const x[DC_HETE_M],
                              size_t B, size_t d, const struct dc_hete_opts *o);

/* Float entry points for the model: same as the _f64 pair, on float inputs and outputs
 * (computed in double inside). */
dc_status dc_ref_hete_fwd(float *loss, double *work, const float *const x[DC_HETE_M], size_t B, size_t d,
                          const struct dc_hete_opts *o);
dc_status dc_ref_hete_bwd(float *const dx[DC_HETE_M], float dloss, double *work, const float *const x[DC_HETE_M],
                          size_t B, size_t d, const struct dc_hete_opts *o);

#endif
