/* The flat parameter layout, expanded from model/params.def. */
#include "model/params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mt19937.h"

/* The names params.def's shape expressions use. */
#define DC_PARAM_DIMS(m)                                                                                   \
    const size_t D = (m)->d, DL = (m)->feat[0], DA = (m)->feat[1], DV = (m)->feat[2], KL = (m)->kernel[0], \
                 KA = (m)->kernel[1], KV = (m)->kernel[2], PDE = (m)->pde_dim, OUT = (m)->out_dim;         \
    (void)D, (void)DL, (void)DA, (void)DV, (void)KL, (void)KA, (void)KV, (void)PDE, (void)OUT

struct builder {
    struct dc_param_layout *pl;
    size_t next;   /* desc index */
    size_t floats; /* running offset */
    bool overflow;
};

static size_t round_up(size_t n) { return (n + DC_PARAM_ALIGN - 1) / DC_PARAM_ALIGN * DC_PARAM_ALIGN; }

static void add(struct builder *b, const char *name, enum dc_param_init init, size_t fan_in, size_t fan_out,
                size_t ndim, size_t s0, size_t s1, size_t s2) {
    struct dc_param_desc *d = &b->pl->desc[b->next++];
    snprintf(d->name, sizeof d->name, "%s", name);
    d->ndim = ndim;
    d->shape[0] = s0;
    d->shape[1] = ndim > 1 ? s1 : 1;
    d->shape[2] = ndim > 2 ? s2 : 1;
    d->offset = b->floats;
    d->init = init;
    d->fan_in = fan_in;
    d->fan_out = fan_out;
    size_t end;
    if (__builtin_mul_overflow(d->shape[0], d->shape[1], &d->numel) ||
        __builtin_mul_overflow(d->numel, d->shape[2], &d->numel) || __builtin_add_overflow(b->floats, d->numel, &end) ||
        end > SIZE_MAX / 4 - DC_PARAM_ALIGN)
        b->overflow = true;
    else
        b->floats = round_up(end);
}

static void add_layer(struct builder *b, const char *prefix, size_t layer) {
    DC_PARAM_DIMS(&b->pl->dims);
    char name[DC_PARAM_NAME_MAX];
#define DC_LAYER_PARAM(id, suffix, init, fan_in, fan_out, ndim, s0, s1, s2) \
    snprintf(name, sizeof name, "%s.layers.%zu.%s", prefix, layer, suffix); \
    add(b, name, DC_PARAM_INIT_##init, fan_in, fan_out, ndim, s0, s1, s2);
#include "model/params.def"
}

static void build(struct builder *b) {
    DC_PARAM_DIMS(&b->pl->dims);
#define DC_PARAM(id, name, init, fan_in, fan_out, ndim, s0, s1, s2) \
    b->pl->top_index[DC_PARAM_##id] = b->next;                      \
    add(b, name, DC_PARAM_INIT_##init, fan_in, fan_out, ndim, s0, s1, s2);
#define DC_STACK(id, prefix)                     \
    b->pl->first_layer[DC_STACK_##id] = b->next; \
    for (size_t layer = 0; layer < b->pl->dims.nlevels; ++layer) add_layer(b, prefix, layer);
#include "model/params.def"
}

/* Every dimension stays below 2^24, so the shape expressions themselves cannot overflow;
 * their products and the running total are checked in add(). */
static dc_status check_dim(const char *what, size_t v, size_t lo, struct dc_error *err) {
    if (v < lo || v >= (size_t)1 << 24)
        return dc_set_error(err, DC_ERR_ARG, "model dims: %s = %zu out of range [%zu, 2^24)", what, v, lo);
    return DC_OK;
}

static dc_status check_dims(const struct dc_model_dims *m, struct dc_error *err) {
    static const char *const mod = "lav";
    dc_status rc;
    char what[32];
    if ((rc = check_dim("d_model", m->d, 1, err)) || (rc = check_dim("heads", m->heads, 1, err)) ||
        (rc = check_dim("pde_dim", m->pde_dim, 1, err)) || (rc = check_dim("out_dim", m->out_dim, 1, err)))
        return rc;
    if (m->d % m->heads)
        return dc_set_error(err, DC_ERR_ARG, "model dims: d_model %zu is not a multiple of heads %zu", m->d, m->heads);
    if (m->nlevels > DC_PARAM_MAX_LEVELS)
        return dc_set_error(err, DC_ERR_ARG, "model dims: nlevels = %zu out of range [0, %d]", m->nlevels,
                            DC_PARAM_MAX_LEVELS);
    for (int i = 0; i < 3; ++i) {
        snprintf(what, sizeof what, "feature_dims[%c]", mod[i]);
        if ((rc = check_dim(what, m->feat[i], 1, err))) return rc;
        snprintf(what, sizeof what, "conv1d_kernel_size_%c", mod[i]);
        if ((rc = check_dim(what, m->kernel[i], 1, err))) return rc;
        if (m->kernel[i] > 64)
            return dc_set_error(err, DC_ERR_ARG, "model dims: %s = %zu out of range [1, 64]", what, m->kernel[i]);
    }
    return DC_OK;
}

dc_status dc_param_layout_init(struct dc_param_layout *pl, const struct dc_model_dims *dims, struct dc_error *err) {
    memset(pl, 0, sizeof *pl);
    dc_status rc = check_dims(dims, err);
    if (rc) return rc;
    pl->dims = *dims;
    size_t count = DC_PARAM_COUNT + (size_t)DC_STACK_COUNT * dims->nlevels * DC_LAYER_PARAM_COUNT;
    pl->desc = calloc(count, sizeof *pl->desc);
    if (!pl->desc) return dc_set_error(err, DC_ERR_NOMEM, "parameter layout: %zu descriptors", count);
    struct builder b = {.pl = pl};
    build(&b);
    if (b.next != count) { /* params.def and the count above disagree: a programmer error */
        fprintf(stderr, "params.c: built %zu of %zu descriptors\n", b.next, count);
        abort();
    }
    pl->count = count;
    if (b.overflow) return dc_set_error(err, DC_ERR_ARG, "model dims: the parameter count overflows size_t");
    pl->total = b.floats;
    return DC_OK;
}

void dc_param_layout_free(struct dc_param_layout *pl) {
    if (!pl) return;
    free(pl->desc);
    memset(pl, 0, sizeof *pl);
}

const struct dc_param_desc *dc_param_get(const struct dc_param_layout *pl, enum dc_param_id id) {
    if ((size_t)id >= DC_PARAM_COUNT || !pl->desc) return NULL;
    return &pl->desc[pl->top_index[id]];
}

const struct dc_param_desc *dc_param_layer(const struct dc_param_layout *pl, enum dc_stack_id stack, size_t layer,
                                           enum dc_layer_param_id id) {
    if ((size_t)stack >= DC_STACK_COUNT || layer >= pl->dims.nlevels || (size_t)id >= DC_LAYER_PARAM_COUNT) return NULL;
    return &pl->desc[pl->first_layer[stack] + layer * DC_LAYER_PARAM_COUNT + id];
}

size_t dc_param_index(const struct dc_param_layout *pl, const char *name) {
    for (size_t i = 0; i < pl->count; ++i)
        if (strcmp(pl->desc[i].name, name) == 0) return i;
    return pl->count;
}

const struct dc_param_desc *dc_param_find(const struct dc_param_layout *pl, const char *name) {
    size_t i = dc_param_index(pl, name);
    return i < pl->count ? &pl->desc[i] : NULL;
}

double dc_param_init_bound(const struct dc_param_desc *d) {
    switch (d->init) {
        case DC_PARAM_INIT_UNIFORM: return 1.0 / sqrt((double)d->fan_in);
        case DC_PARAM_INIT_XAVIER: return sqrt(6.0 / (double)(d->fan_in + d->fan_out));
        case DC_PARAM_INIT_ZERO:
        case DC_PARAM_INIT_ONE: break;
    }
    return 0.0;
}

void dc_params_init(const struct dc_param_layout *pl, float *buf, uint64_t seed) {
    struct dc_mt19937 g;
    /* A 32-bit seed seeds as torch.manual_seed does (init_genrand); wider ones use both words. */
    if (seed <= UINT32_MAX) {
        dc_mt19937_seed(&g, (uint32_t)seed);
    } else {
        uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
        dc_mt19937_seed_array(&g, key, 2);
    }
    memset(buf, 0, pl->total * sizeof *buf);
    for (size_t i = 0; i < pl->count; ++i) {
        const struct dc_param_desc *d = &pl->desc[i];
        float *p = buf + d->offset;
        double b = dc_param_init_bound(d);
        switch (d->init) {
            case DC_PARAM_INIT_UNIFORM:
            case DC_PARAM_INIT_XAVIER:
                /* 24 random bits per float, as torch's uniform_ takes them. */
                for (size_t j = 0; j < d->numel; ++j) {
                    double u = (double)(dc_mt19937_u32(&g) & 0xffffffu) * 0x1p-24;
                    p[j] = (float)(-b + 2.0 * b * u);
                }
                break;
            case DC_PARAM_INIT_ZERO: break; /* already 0 */
            case DC_PARAM_INIT_ONE:
                for (size_t j = 0; j < d->numel; ++j) p[j] = 1.0f;
                break;
        }
    }
}

size_t dc_param_chunks(const struct dc_param_layout *pl) { return (pl->total + DC_ADAM_CHUNK - 1) / DC_ADAM_CHUNK; }

void dc_param_active_flags(const struct dc_param_layout *pl, const bool *active, float *flags) {
    size_t chunks = dc_param_chunks(pl);
    for (size_t c = 0; c < chunks; ++c) flags[c] = 0.0f;
    for (size_t i = 0; i < pl->count; ++i) {
        if (!active[i]) continue;
        const struct dc_param_desc *d = &pl->desc[i];
        size_t end = i + 1 < pl->count ? pl->desc[i + 1].offset : pl->total; /* padding belongs to the tensor */
        for (size_t c = d->offset / DC_ADAM_CHUNK; c < (end + DC_ADAM_CHUNK - 1) / DC_ADAM_CHUNK; ++c) flags[c] = 1.0f;
    }
}
