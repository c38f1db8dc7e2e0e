/* `decocl bench step` and `decocl bench compare` (issue 6): whole training steps per
 * device, and the cross-machine table of their JSON results. */
#ifndef DC_BENCH_STEP_H
#define DC_BENCH_STEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "decocl/decocl.h"
#include "model/decalign.h"
#include "model/model_config.h"
#include "model/params.h"

struct dc_bench_step_options {
    const char *config;
    const char *const *sets; /* --set key=value overrides of the config */
    size_t nsets;
    const char *devices;   /* "all" or a comma list of ref, cpu, gpu, accelerator, P:D; NULL: "all" */
    const char *data;      /* a dataset file: its train split gives the batch and the epoch size; NULL: synthetic */
    int steps, warmup;     /* timed steps (also for forward-only and the breakdown), warm-up steps */
    size_t batch_size;     /* 0: the config's */
    size_t sgemm_n;        /* the SGEMM probe's m = n = k (1024 unless a test asks for less) */
    bool breakdown;        /* the per-phase breakdown (extra timed steps with syncs) */
    bool json;             /* JSON on stdout instead of the table */
    const char *csv;       /* also write a CSV here */
};

/* Runs the benchmark for every device, each in a child process (so peak host memory is
 * that device's), and prints the results to out. A device that fails gives an "error"
 * entry; the call then returns the first failure's status after the others have run. */
dc_status dc_bench_step(const struct dc_backend_options *be_opt, const struct dc_bench_step_options *o, FILE *out,
                        struct dc_error *err);

/* Merges the results of several `bench step --json` files into one Markdown table on out. */
dc_status dc_bench_compare(const char *const *files, size_t n, FILE *out, struct dc_error *err);

/* The analytic FLOP count of one training step's matrix products (2 m n k per product):
 * see bench/README.md "FLOP count" for the formula. */
struct dc_step_flops {
    double forward, backward;
};
void dc_bench_step_flops(const struct dc_model_config *cfg, const struct dc_model_dims *dims, size_t B,
                         const size_t T[3], struct dc_step_flops *out);

#endif
