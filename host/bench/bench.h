/* decocl bench: op timings (this issue) and, later, whole training steps. */
#ifndef DC_BENCH_H
#define DC_BENCH_H

#include <stdio.h>

#include "decocl/decocl.h"

struct dc_bench_ops_options {
    bool json;
    const char *ops; /* comma-separated op names; NULL: all */
    int reps;        /* timed batches of calls; 0: automatic */
};

/* Times every bench-sized op case on the chosen device and on ref; prints a table or JSON. */
dc_status dc_bench_ops(const struct dc_backend_options *be_opt, const struct dc_bench_ops_options *o, FILE *out,
                       struct dc_error *err);

#endif
