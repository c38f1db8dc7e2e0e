/* Learning-rate schedule and early stopping of `decocl train` (shared/spec/decalign-model.md §6).
 *
 * dc_plateau is PyTorch's ReduceLROnPlateau with threshold_mode 'rel', threshold 1e-4,
 * cooldown 0, min_lr 0, eps 1e-8: a value is better when it is below best * (1 - 1e-4)
 * (mode min) or above best * (1 + 1e-4) (mode max); after more than `patience`
 * consecutive epochs that are not better, lr *= factor (applied only when the change
 * exceeds eps) and the count restarts.
 *
 * dc_early_stop keeps the best epoch of the selection metric, compared strictly
 * (value < best for min, > best for max; the first epoch is always the best so far),
 * and asks to stop once `patience` epochs have passed since the best one.
 *
 * Both see the values the caller passes: the trainer hands them the 4-decimal metric
 * values, as the reference does. */
#ifndef DC_TRAIN_SCHEDULE_H
#define DC_TRAIN_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>

#define DC_PLATEAU_THRESHOLD 1e-4
#define DC_PLATEAU_EPS 1e-8

struct dc_plateau {
    bool maximize;
    double factor, lr, best;
    size_t patience, bad_epochs;
    bool has_best;
};
void dc_plateau_init(struct dc_plateau *p, bool maximize, double factor, size_t patience, double lr);
/* One epoch's metric; returns true when the learning rate was reduced (new one in p->lr). */
bool dc_plateau_step(struct dc_plateau *p, double value);

struct dc_early_stop {
    bool maximize;
    size_t patience;
    double best;
    size_t best_epoch; /* 1-based; 0 before the first update */
};
void dc_early_stop_init(struct dc_early_stop *e, bool maximize, size_t patience);
/* Epoch `epoch` (1-based) scored value; returns true when it is the new best. */
bool dc_early_stop_update(struct dc_early_stop *e, size_t epoch, double value);
/* True when training should stop after epoch `epoch`. */
bool dc_early_stop_done(const struct dc_early_stop *e, size_t epoch);

#endif
