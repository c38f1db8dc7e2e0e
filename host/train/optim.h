/* The optimiser of a training step (shared/spec/decalign-model.md §6, ATIO.py order):
 * global gradient 2-norm of the raw gradients, clip_grad_norm at `clip`, then one
 * PyTorch Adam step (L2 weight decay added to the gradient) over the flat parameter
 * buffer. Everything stays on the device: the clip coefficient is computed there from
 * the norm, and a step reads nothing back. Parameters that take no part in the loss
 * (dc_decalign_active) are left untouched, weight decay included. */
#ifndef DC_TRAIN_OPTIM_H
#define DC_TRAIN_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "decocl/decocl.h"
#include "model/params.h"

struct dc_optim;

/* Adam state (exp_avg, exp_avg_sq: zeros, the flat layout of pl), the norm scalar and the
 * per-chunk active flags from active[pl->count]. hp->step is ignored: steps count from 1. */
dc_status dc_optim_create(struct dc_backend *be, const struct dc_param_layout *pl, const bool *active,
                          const struct dc_adam *hp, struct dc_optim **out, struct dc_error *err);
void dc_optim_free(struct dc_optim *o);

/* norm = ||grads||, clip, Adam; increments the step count. Never reads back. */
dc_status dc_optim_step(struct dc_optim *o, struct dc_mem *params, struct dc_mem *grads, struct dc_error *err);

/* The gradient norm before clipping of the last step (reads one float back). */
dc_status dc_optim_last_norm(struct dc_optim *o, float *out, struct dc_error *err);

/* The backend its state lives on. */
struct dc_backend *dc_optim_backend(const struct dc_optim *o);
void dc_optim_set_lr(struct dc_optim *o, double lr);
double dc_optim_lr(const struct dc_optim *o);
uint64_t dc_optim_steps(const struct dc_optim *o);
/* Restores the step count (resume). */
void dc_optim_set_steps(struct dc_optim *o, uint64_t steps);
/* The moments, in the parameter layout (checkpoints and resume). */
struct dc_mem *dc_optim_exp_avg(struct dc_optim *o);
struct dc_mem *dc_optim_exp_avg_sq(struct dc_optim *o);

#endif
