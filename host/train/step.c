/* The training step shared by `decocl train` and `decocl bench step` (see step.h). */
#include "train/step.h"

#include <math.h>

#include "decocl/ops.h"

dc_status dc_train_step(struct dc_decalign *model, struct dc_optim *opt, struct dc_mem *params, struct dc_mem *grads,
                        size_t total, const float *const x[3], const float *labels, uint64_t seed, uint64_t step,
                        const struct dc_step_hook *hook, struct dc_decalign_losses *loss, struct dc_error *err) {
    dc_status st = dc_decalign_forward(model, params, x, labels, true, seed, step, loss, err);
    if (st != DC_OK) return st;
    if (!isfinite(loss->total))
        return dc_set_error(err, DC_ERR_NUMERIC, "step %llu: the training loss is %g", (unsigned long long)step,
                            loss->total);
    struct dc_backend *be = dc_optim_backend(opt);
    if ((st = dc_fill(be, dc_view_of(grads, 0, total), 0.0f)) != DC_OK) {
        struct dc_error *be_err = dc_backend_error(be);
        return dc_set_error(err, st, "zero gradients: %s", be_err->msg);
    }
    if ((st = dc_decalign_backward(model, grads, params, err)) != DC_OK) return st;
    if (hook && hook->before_optimiser) hook->before_optimiser(hook->ctx);
    return dc_optim_step(opt, params, grads, err);
}
