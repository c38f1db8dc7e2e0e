/* `decocl make-dataset`: synthetic datasets in the MMSA pickle format
 * (shared/spec/mmsa-format.md §1, §3) with a planted multimodal signal; the generative
 * model is documented in datasets/README.md ("Synthetic datasets"). */
#ifndef DC_SYNTH_H
#define DC_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "decocl/status.h"

enum dc_synth_kind { DC_SYNTH_MOSI, DC_SYNTH_MOSEI, DC_SYNTH_SIMS, DC_SYNTH_IEMOCAP };

struct dc_synth_options {
    enum dc_synth_kind kind;
    int aligned;       /* -1: the kind's default; 0 unaligned; 1 aligned */
    size_t samples[3]; /* train, valid, test; 0 takes the kind's default */
    uint64_t seed;
};

struct dc_synth_summary {
    int aligned;
    size_t samples[3];     /* train, valid, test */
    size_t seq[3], dim[3]; /* text, audio, vision */
    uint64_t bytes;        /* file size */
};

/* "mosi" | "mosei" | "sims" | "iemocap"; DC_ERR_ARG otherwise. */
dc_status dc_synth_parse_kind(const char *s, enum dc_synth_kind *out, struct dc_error *err);
const char *dc_synth_kind_name(enum dc_synth_kind k);
/* The default sample counts of a kind in the given alignment (aligned: -1 for the default). */
void dc_synth_default_samples(enum dc_synth_kind k, int aligned, size_t out[3]);

/* Writes the dataset to path atomically. DC_ERR_ARG for options the kind does not
 * support (sims is unaligned only, iemocap aligned only; counts must be 1..1000000). */
dc_status dc_synth_write(const struct dc_synth_options *o, const char *path, struct dc_synth_summary *sum,
                         struct dc_error *err);

#endif
