/* The optimiser of a training step (see optim.h; shared/spec/decalign-model.md §6):
 * norm = ||grads|| (dc_norm2, stays on the device), then dc_adam with the clip
 * coefficient folded in and the per-chunk active flags. */
#include "train/optim.h"

#include <stdlib.h>

#include "decocl/ops.h"

struct dc_optim {
    struct dc_backend *be;
    size_t n;               /* floats in the flat layout */
    struct dc_mem *m, *v;   /* exp_avg, exp_avg_sq (n floats) */
    struct dc_mem *norm;    /* 1 float: ||grads|| of the last step */
    struct dc_mem *active;  /* dc_param_chunks floats; NULL when every tensor is active */
    size_t nchunks;
    struct dc_adam hp;      /* hp.step: steps taken so far */
};

/* Fails with the backend's message when it has one. */
static dc_status fail(struct dc_backend *be, dc_status st, const char *what, struct dc_error *err) {
    struct dc_error *be_err = be ? dc_backend_error(be) : NULL;
    if (be_err && be_err->msg[0])
        return dc_set_error(err, st, "optimiser: %s failed: %s (%s)", what, dc_status_str(st), be_err->msg);
    return dc_set_error(err, st, "optimiser: %s failed: %s", what, dc_status_str(st));
}

dc_status dc_optim_create(struct dc_backend *be, const struct dc_param_layout *pl, const bool *active,
                          const struct dc_adam *hp, struct dc_optim **out, struct dc_error *err) {
    *out = NULL;
    if (!be || !pl || !hp || pl->total == 0) return dc_set_error(err, DC_ERR_ARG, "optimiser: empty parameter layout");
    if (!(hp->lr >= 0) || !(hp->beta1 >= 0 && hp->beta1 < 1) || !(hp->beta2 >= 0 && hp->beta2 < 1) ||
        !(hp->eps >= 0) || !(hp->weight_decay >= 0))
        return dc_set_error(err, DC_ERR_ARG, "optimiser: bad Adam hyperparameters (lr %g, betas %g/%g, eps %g, wd %g)",
                            hp->lr, hp->beta1, hp->beta2, hp->eps, hp->weight_decay);
    struct dc_optim *o = calloc(1, sizeof *o);
    if (!o) return dc_set_error(err, DC_ERR_NOMEM, "optimiser: out of host memory");
    o->be = be;
    o->n = pl->total;
    o->hp = *hp;
    o->hp.step = 0;
    o->nchunks = dc_param_chunks(pl);
    dc_status st;
    const char *what = "allocating the Adam state";
    if ((st = dc_mem_alloc(be, o->n, &o->m)) != DC_OK || (st = dc_mem_alloc(be, o->n, &o->v)) != DC_OK ||
        (st = dc_mem_alloc(be, 1, &o->norm)) != DC_OK)
        goto fail;
    what = "zeroing the Adam state";
    if ((st = dc_fill(be, dc_view_of(o->m, 0, o->n), 0.0f)) != DC_OK ||
        (st = dc_fill(be, dc_view_of(o->v, 0, o->n), 0.0f)) != DC_OK ||
        (st = dc_fill(be, dc_view_of(o->norm, 0, 1), 0.0f)) != DC_OK)
        goto fail;
    bool all = true;
    for (size_t i = 0; active && i < pl->count; ++i) all = all && active[i];
    if (!all) {
        float *flags = malloc(o->nchunks * sizeof(float));
        if (!flags) {
            dc_optim_free(o);
            return dc_set_error(err, DC_ERR_NOMEM, "optimiser: out of host memory");
        }
        dc_param_active_flags(pl, active, flags);
        what = "uploading the active flags";
        st = dc_mem_alloc(be, o->nchunks, &o->active);
        if (st == DC_OK) st = dc_upload(be, dc_view_of(o->active, 0, o->nchunks), flags);
        free(flags);
        if (st != DC_OK) goto fail;
    }
    *out = o;
    return DC_OK;
fail:
    fail(be, st, what, err);
    dc_optim_free(o);
    return st;
}

void dc_optim_free(struct dc_optim *o) {
    if (!o) return;
    dc_mem_free(o->be, o->m);
    dc_mem_free(o->be, o->v);
    dc_mem_free(o->be, o->norm);
    dc_mem_free(o->be, o->active);
    free(o);
}

dc_status dc_optim_step(struct dc_optim *o, struct dc_mem *params, struct dc_mem *grads, struct dc_error *err) {
    dc_view g = dc_view_of(grads, 0, o->n), nv = dc_view_of(o->norm, 0, 1);
    dc_view act = o->active ? dc_view_of(o->active, 0, o->nchunks) : (dc_view){0};
    dc_status st = dc_norm2(o->be, nv, g, o->n);
    if (st != DC_OK) return fail(o->be, st, "gradient norm", err);
    struct dc_adam a = o->hp;
    a.step = o->hp.step + 1;
    st = dc_adam(o->be, dc_view_of(params, 0, o->n), dc_view_of(o->m, 0, o->n), dc_view_of(o->v, 0, o->n), g, nv,
                 act, o->n, &a);
    if (st != DC_OK) return fail(o->be, st, "Adam step", err);
    o->hp.step = a.step;
    return DC_OK;
}

dc_status dc_optim_last_norm(struct dc_optim *o, float *out, struct dc_error *err) {
    dc_status st = dc_download(o->be, out, dc_view_of(o->norm, 0, 1));
    if (st != DC_OK) return fail(o->be, st, "reading the gradient norm", err);
    return DC_OK;
}

struct dc_backend *dc_optim_backend(const struct dc_optim *o) { return o->be; }
void dc_optim_set_lr(struct dc_optim *o, double lr) { o->hp.lr = lr; }
double dc_optim_lr(const struct dc_optim *o) { return o->hp.lr; }
uint64_t dc_optim_steps(const struct dc_optim *o) { return o->hp.step; }
void dc_optim_set_steps(struct dc_optim *o, uint64_t steps) { o->hp.step = steps; }
struct dc_mem *dc_optim_exp_avg(struct dc_optim *o) { return o->m; }
struct dc_mem *dc_optim_exp_avg_sq(struct dc_optim *o) { return o->v; }
