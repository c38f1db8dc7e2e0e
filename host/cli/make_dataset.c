/* `decocl make-dataset`: parses the command line and runs the synthetic dataset generator. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/log.h"
#include "data/synth.h"

static const char USAGE[] =
    "usage: decocl make-dataset --like mosi|mosei|sims|iemocap --out FILE\n"
    "                           [--samples TRAIN,VALID,TEST] [--seed S] [--aligned|--unaligned]\n"
    "  Writes a synthetic dataset in the MMSA pickle format (protocol 4) with the real dataset's\n"
    "  keys, shapes and label quantisation and a planted multimodal signal (datasets/README.md).\n"
    "  --aligned/--unaligned: mosi and mosei (default aligned); sims is unaligned, iemocap aligned.\n"
    "  --seed: default 1. --samples: default per kind, see datasets/README.md.\n";

static int usage_error(const char *fmt, const char *arg) {
    fputs("decocl: make-dataset: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n(see decocl make-dataset --help)\n", stderr);
    return 2;
}

/* A decimal unsigned integer with nothing after it. */
static int parse_u64(const char *s, uint64_t *out) {
    if (!s || *s < '0' || *s > '9') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int parse_samples(const char *s, size_t out[3]) {
    char buf[96];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    char *p = buf;
    for (int i = 0; i < 3; ++i) {
        char *comma = strchr(p, ',');
        if ((i < 2) != (comma != NULL)) return -1;
        if (comma) *comma = '\0';
        uint64_t v;
        if (parse_u64(p, &v) != 0 || v == 0 || v > 1000000) return -1;
        out[i] = (size_t)v;
        p = comma + 1;
    }
    return 0;
}

int dc_cmd_make_dataset(int argc, char **argv) {
    struct dc_synth_options o = {.aligned = -1, .seed = 1};
    const char *like = NULL, *out = NULL;
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(USAGE, stdout);
            return 0;
        } else if (strcmp(a, "--aligned") == 0 || strcmp(a, "--unaligned") == 0) {
            int want = strcmp(a, "--aligned") == 0;
            if (o.aligned >= 0 && o.aligned != want)
                return usage_error("%s", "--aligned and --unaligned exclude each other");
            o.aligned = want;
        } else if (strcmp(a, "--like") == 0 || strcmp(a, "--out") == 0 || strcmp(a, "--samples") == 0 ||
                   strcmp(a, "--seed") == 0) {
            if (!val) return usage_error("option %s needs a value", a);
            ++i;
            if (strcmp(a, "--like") == 0)
                like = val;
            else if (strcmp(a, "--out") == 0)
                out = val;
            else if (strcmp(a, "--samples") == 0) {
                if (parse_samples(val, o.samples) != 0)
                    return usage_error("--samples takes TRAIN,VALID,TEST, each 1..1000000, not '%s'", val);
            } else if (parse_u64(val, &o.seed) != 0) {
                return usage_error("--seed takes an unsigned 64-bit integer, not '%s'", val);
            }
        } else {
            return usage_error("unknown argument '%s'", a);
        }
    }
    if (!like) return usage_error("%s", "--like is required");
    if (!out || !*out) return usage_error("%s", "--out FILE is required");
    struct dc_error err = {0};
    if (dc_synth_parse_kind(like, &o.kind, &err) != DC_OK) return usage_error("%s", err.msg);

    struct dc_synth_summary sum;
    double t0 = dc_now_seconds();
    dc_status st = dc_synth_write(&o, out, &sum, &err);
    if (st != DC_OK) {
        fprintf(stderr, "decocl: %s: %s\n", dc_status_str(st), err.msg);
        return st == DC_ERR_ARG ? 2 : 1;
    }
    printf("make-dataset: wrote %s: like %s (%s), seed %" PRIu64
           ", train/valid/test %zu/%zu/%zu, "
           "text %zux%zu, audio %zux%zu, vision %zux%zu, %.1f MB in %.1f s\n",
           out, dc_synth_kind_name(o.kind), sum.aligned ? "aligned" : "unaligned", o.seed, sum.samples[0],
           sum.samples[1], sum.samples[2], sum.seq[0], sum.dim[0], sum.seq[1], sum.dim[1], sum.seq[2], sum.dim[2],
           (double)sum.bytes / 1e6, dc_now_seconds() - t0);
    return 0;
}
