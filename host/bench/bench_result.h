/* One device's `bench step` result: a plain struct, so a child process can hand it to
 * its parent through a pipe as bytes (same binary on both ends). */
#ifndef DC_BENCH_RESULT_H
#define DC_BENCH_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "model/decalign.h"

#define DC_BENCH_PHASES (DC_PHASE_COUNT + 1) /* the model's phases, then "optimiser" */

struct dc_bench_dist {
    double median, p10, p90; /* ms */
};

struct dc_bench_result {
    bool ok;
    dc_status status; /* of a failed run */
    char error[1024];
    char device_id[24], device[256], driver[128], backend[16], gemm_provider[16];
    /* the run's shapes (the same for every device) */
    char dataset[16];
    size_t batch, T[3], D[3], params;
    int steps, warmup;
    /* timings */
    struct dc_bench_dist step_ms, forward_ms;
    bool have_phases;
    double phases_ms[DC_BENCH_PHASES]; /* medians */
    double breakdown_step_ms;          /* median of the steps with the phase syncs */
    /* counters per step */
    double launches, ops, reads, writes, read_bytes, write_bytes;
    double forward_launches;
    double peak_host_mb, peak_device_mb;
    /* work */
    double gflop_forward, gflop_step, gflop_counted, gflops;
    double sgemm_gflops;
    char sgemm_provider[16];
    size_t sgemm_n;
    /* epoch (estimated: batches x step median) */
    size_t epoch_samples, epoch_batches;
    char epoch_source[96];
    double epoch_s;
    double last_loss;
    double foreign_cores; /* cores other processes kept busy during the timed steps */
};

/* Output of the results: table, JSON (issue 6's structure plus extras), CSV. */
void dc_bench_print_table(FILE *out, const char *config, const struct dc_bench_result *r, size_t n);
void dc_bench_print_json(FILE *out, const char *config, const struct dc_bench_result *r, size_t n);
void dc_bench_print_csv(FILE *out, const char *config, const struct dc_bench_result *r, size_t n);
const char *dc_bench_phase_name(size_t i); /* dc_phase_name, then "optimiser" */

#endif
