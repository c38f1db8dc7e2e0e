/* The flat parameter layout generated from model/params.def: one descriptor per
 * tensor (PyTorch name, shape, offset), PyTorch-default initialisation from a seed,
 * and Adam's per-chunk active flags.
 *
 * params, grads and both Adam moments share this layout. Every tensor starts at a
 * multiple of DC_PARAM_ALIGN floats (256 bytes: float4 loads stay aligned, and each
 * DC_ADAM_CHUNK belongs to exactly one tensor); the gap after a tensor is padding,
 * kept at 0. The total is a multiple of DC_PARAM_ALIGN too. */
#ifndef DC_MODEL_PARAMS_H
#define DC_MODEL_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decocl/ops.h"
#include "decocl/status.h"

#define DC_PARAM_ALIGN 64 /* floats */
_Static_assert(DC_PARAM_ALIGN % DC_ADAM_CHUNK == 0, "a parameter view must start on an Adam chunk");

#define DC_PARAM_MAX_DIMS 3
#define DC_PARAM_NAME_MAX 64
#define DC_PARAM_MAX_LEVELS 1000

/* What decides the shapes. Modality order is l, a, v throughout. */
struct dc_model_dims {
    size_t d;         /* d_model */
    size_t heads;     /* attention heads; d % heads == 0 (no shape depends on it) */
    size_t nlevels;   /* transformer layers per modality */
    size_t feat[3];   /* D_l, D_a, D_v: input feature sizes */
    size_t kernel[3]; /* k_l, k_a, k_v: Conv1d projection kernels */
    size_t pde_dim;   /* homogeneity MLP output size */
    size_t out_dim;   /* 1 for regression, else the number of classes */
};

enum dc_param_init {
    DC_PARAM_INIT_UNIFORM, /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
    DC_PARAM_INIT_XAVIER,  /* U(-b, b), b = sqrt(6 / (fan_in + fan_out)) */
    DC_PARAM_INIT_ZERO,
    DC_PARAM_INIT_ONE,
};

/* Tensors outside the transformer stacks, e.g. DC_PARAM_OUT_W. */
enum dc_param_id {
#define DC_PARAM(id, ...) DC_PARAM_##id,
#include "model/params.def"
    DC_PARAM_COUNT
};
/* The transformer stacks, e.g. DC_STACK_TRANS_A. */
enum dc_stack_id {
#define DC_STACK(id, prefix) DC_STACK_##id,
#include "model/params.def"
    DC_STACK_COUNT
};
/* The tensors of one transformer layer, e.g. DC_LAYER_PARAM_FC1_W. */
enum dc_layer_param_id {
#define DC_LAYER_PARAM(id, ...) DC_LAYER_PARAM_##id,
#include "model/params.def"
    DC_LAYER_PARAM_COUNT
};

struct dc_param_desc {
    char name[DC_PARAM_NAME_MAX]; /* PyTorch state_dict name */
    size_t ndim, shape[DC_PARAM_MAX_DIMS];
    size_t numel;
    size_t offset; /* floats from the start of the flat buffer; a multiple of DC_PARAM_ALIGN */
    enum dc_param_init init;
    size_t fan_in, fan_out;
};

struct dc_param_layout {
    struct dc_model_dims dims;
    size_t count;                       /* tensors, in state_dict order */
    struct dc_param_desc *desc;         /* count entries, offsets increasing */
    size_t total;                       /* floats in the flat buffer, padding included */
    size_t top_index[DC_PARAM_COUNT];   /* desc index of each tensor outside the stacks */
    size_t first_layer[DC_STACK_COUNT]; /* desc index of layer 0's first tensor per stack */
};

/* Builds the layout for dims (DC_ERR_ARG naming the bad dimension). Free with
 * dc_param_layout_free, also after a failure. */
dc_status dc_param_layout_init(struct dc_param_layout *pl, const struct dc_model_dims *dims, struct dc_error *err);
void dc_param_layout_free(struct dc_param_layout *pl);

const struct dc_param_desc *dc_param_get(const struct dc_param_layout *pl, enum dc_param_id id);
const struct dc_param_desc *dc_param_layer(const struct dc_param_layout *pl, enum dc_stack_id stack, size_t layer,
                                           enum dc_layer_param_id id);
/* The tensor named name, or NULL. */
const struct dc_param_desc *dc_param_find(const struct dc_param_layout *pl, const char *name);
/* Its index in pl->desc, or pl->count when absent. */
size_t dc_param_index(const struct dc_param_layout *pl, const char *name);

/* The bound b of U(-b, b) for d's init (0 for ZERO/ONE). */
double dc_param_init_bound(const struct dc_param_desc *d);

/* Fills buf (pl->total floats) with PyTorch-default initial values drawn from an
 * mt19937 seeded with seed, tensor by tensor in state_dict order, each row-major;
 * padding is 0. The same seed gives the same bits on every host. */
void dc_params_init(const struct dc_param_layout *pl, float *buf, uint64_t seed);

/* Adam's active flags: flags has dc_param_chunks(pl) floats; a chunk is 1 when the
 * tensor it belongs to (padding included) has active[tensor index] true, else 0. */
size_t dc_param_chunks(const struct dc_param_layout *pl);
void dc_param_active_flags(const struct dc_param_layout *pl, const bool *active, float *flags);

#endif
