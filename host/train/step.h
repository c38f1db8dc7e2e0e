/* One training step exactly as `decocl train` takes it per batch (shared/spec/decalign-model.md
 * §6): forward with every dropout (masks from seed and step), a finite-loss check, zeroed
 * gradients, backward, then clip + Adam (dc_optim_step). `decocl bench step` times this
 * same function, so the benchmark measures the training code path itself. */
#ifndef DC_TRAIN_STEP_H
#define DC_TRAIN_STEP_H

#include <stdint.h>

#include "decocl/decocl.h"
#include "model/decalign.h"
#include "train/optim.h"

/* Called (when fn is set) after the backward has been enqueued and before the optimiser:
 * bench's per-phase breakdown opens its "optimiser" phase there. */
struct dc_step_hook {
    void (*before_optimiser)(void *ctx);
    void *ctx;
};

/* params and grads: flat buffers of `total` floats (the layout of the model); x[m] and
 * labels are host (B, T_m, D_m) and (B). A non-finite total loss stops the step before
 * the backward with DC_ERR_NUMERIC ("step S: the training loss is X"), leaving params and
 * the optimiser untouched. hook may be NULL. */
dc_status dc_train_step(struct dc_decalign *model, struct dc_optim *opt, struct dc_mem *params, struct dc_mem *grads,
                        size_t total, const float *const x[3], const float *labels, uint64_t seed, uint64_t step,
                        const struct dc_step_hook *hook, struct dc_decalign_losses *loss, struct dc_error *err);

#endif
