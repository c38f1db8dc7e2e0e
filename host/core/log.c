#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static int log_verbose;

void dc_log_set_verbose(int verbose) { log_verbose = verbose; }
int dc_log_verbose(void) { return log_verbose; }

void dc_log_info(const char *fmt, ...) {
    if (!log_verbose) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("decocl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void dc_log_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("decocl: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

double dc_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
