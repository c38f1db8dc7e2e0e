/* ReduceLROnPlateau and early stopping; see schedule.h. */
#include "train/schedule.h"

#include <math.h>

void dc_plateau_init(struct dc_plateau *p, bool maximize, double factor, size_t patience, double lr) {
    *p = (struct dc_plateau){.maximize = maximize, .factor = factor, .lr = lr, .patience = patience};
    p->best = maximize ? -INFINITY : INFINITY;
}

static bool plateau_better(const struct dc_plateau *p, double v) {
    return p->maximize ? v > p->best * (1.0 + DC_PLATEAU_THRESHOLD) : v < p->best * (1.0 - DC_PLATEAU_THRESHOLD);
}

bool dc_plateau_step(struct dc_plateau *p, double value) {
    if (plateau_better(p, value)) {
        p->best = value;
        p->bad_epochs = 0;
    } else {
        p->bad_epochs++;
    }
    if (p->bad_epochs > p->patience) {
        p->bad_epochs = 0;
        double nl = p->lr * p->factor;
        if (nl < 0) nl = 0;
        if (p->lr - nl > DC_PLATEAU_EPS) {
            p->lr = nl;
            return true;
        }
    }
    return false;
}

void dc_early_stop_init(struct dc_early_stop *e, bool maximize, size_t patience) {
    *e = (struct dc_early_stop){.maximize = maximize, .patience = patience, .best = maximize ? -INFINITY : INFINITY};
}

bool dc_early_stop_update(struct dc_early_stop *e, size_t epoch, double value) {
    bool better = e->best_epoch == 0 || (e->maximize ? value > e->best : value < e->best);
    if (better) {
        e->best = value;
        e->best_epoch = epoch;
    }
    return better;
}

bool dc_early_stop_done(const struct dc_early_stop *e, size_t epoch) {
    return e->best_epoch != 0 && epoch - e->best_epoch >= e->patience;
}
