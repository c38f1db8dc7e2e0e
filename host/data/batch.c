/* Batching: per-epoch order (Fisher-Yates from an mt19937 seeded with (seed, epoch) for training,
 * file order otherwise), batches of batch_size, last partial batch kept; gathering of a batch. */
#include <stdlib.h>
#include <string.h>

#include "core/mt19937.h"
#include "decocl/data.h"

dc_status dc_batcher_init(struct dc_batcher *b, size_t n, size_t batch_size, bool shuffle, uint64_t seed,
                          struct dc_error *err) {
    memset(b, 0, sizeof *b);
    if (n == 0 || batch_size == 0) return dc_set_error(err, DC_ERR_ARG, "batching needs samples and a batch size > 0");
    if (!(b->order = malloc(n * sizeof *b->order))) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    b->n = n;
    b->batch_size = batch_size;
    b->shuffle = shuffle;
    b->seed = seed;
    dc_batcher_start_epoch(b, 0);
    return DC_OK;
}

void dc_batcher_start_epoch(struct dc_batcher *b, uint64_t epoch) {
    b->epoch = epoch;
    b->pos = 0;
    for (size_t i = 0; i < b->n; ++i) b->order[i] = i;
    if (!b->shuffle) return;
    /* The order depends on (seed, epoch) only, so a resumed run reproduces it. */
    uint32_t key[4] = {(uint32_t)b->seed, (uint32_t)(b->seed >> 32), (uint32_t)epoch, (uint32_t)(epoch >> 32)};
    struct dc_mt19937 g;
    dc_mt19937_seed_array(&g, key, 4);
    for (size_t i = b->n - 1; i > 0; --i) {
        size_t j = (size_t)dc_mt19937_below(&g, (uint64_t)i + 1);
        size_t t = b->order[i];
        b->order[i] = b->order[j];
        b->order[j] = t;
    }
}

size_t dc_batcher_next(struct dc_batcher *b, const size_t **idx) {
    if (b->pos >= b->n) return 0;
    size_t k = b->n - b->pos < b->batch_size ? b->n - b->pos : b->batch_size;
    *idx = b->order + b->pos;
    b->pos += k;
    return k;
}

void dc_batcher_free(struct dc_batcher *b) {
    free(b->order);
    memset(b, 0, sizeof *b);
}

dc_status dc_batch_gather(struct dc_batch *out, const struct dc_split *s, const size_t *idx, size_t n,
                          struct dc_error *err) {
    if (n > out->cap) {
        dc_batch_free(out);
        for (int m = 0; m < DC_MOD_COUNT; ++m)
            if (!(out->x[m] = malloc(n * s->seq_len[m] * s->dim[m] * sizeof(float) + 1))) goto nomem;
        if (!(out->labels = malloc(n * sizeof(float)))) goto nomem;
        out->cap = n;
    }
    for (size_t i = 0; i < n; ++i) {
        if (idx[i] >= s->n) return dc_set_error(err, DC_ERR_ARG, "sample %zu out of range (%zu)", idx[i], s->n);
        for (int m = 0; m < DC_MOD_COUNT; ++m) {
            size_t per = s->seq_len[m] * s->dim[m];
            memcpy(out->x[m] + i * per, s->x[m] + idx[i] * per, per * sizeof(float));
        }
        out->labels[i] = s->labels[idx[i]];
    }
    out->n = n;
    return DC_OK;
nomem:
    dc_batch_free(out);
    return dc_set_error(err, DC_ERR_NOMEM, "out of memory for a batch of %zu", n);
}

void dc_batch_free(struct dc_batch *b) {
    for (int m = 0; m < DC_MOD_COUNT; ++m) free(b->x[m]);
    free(b->labels);
    memset(b, 0, sizeof *b);
}
