/* decocl command line: parses options, runs one command, maps statuses to exit codes.
 * The only place that exits. Exit status: 0 ok, 1 failure, 2 usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/bench_step.h"
#include "cli/commands.h"
#include "core/log.h"
#include "train/train.h"
#include "decocl/decocl.h"

struct cli {
    struct dc_backend_options be;
    int argc; /* command and its arguments */
    char **argv;
};

static void usage(FILE *f) {
    fputs("usage: decocl [global options] <command> [args]\n"
          "\n"
          "commands:\n"
          "  devices                 list OpenCL platforms and devices, plus the ref path, and their ops\n"
          "  bench ops [--json] [--ops a,b] [--reps N]\n"
          "                          time each op on the chosen device next to ref\n"
          "  bench step CONFIG [--devices all|ref,cpu,gpu,P:D,...] [--steps N] [--warmup N]\n"
          "             [--batch-size B] [--data FILE] [--set key=value]... [--no-breakdown] [--sgemm-size N]\n"
          "             [--json] [--csv FILE]\n"
          "                          time whole training steps on each device (bench/README.md)\n"
          "  bench compare A.json B.json ...\n"
          "                          one Markdown table of several `bench step --json` results\n"
          "  build-kernels FILE      build the kernel program for the device and write its binary\n"
          "                          (load it later with --kernels-binary FILE)\n"
          "  train CONFIG [--data FILE] [--set key=value]... [--seeds a,b] [--out DIR]\n"
          "                          train on the config's dataset; writes a run directory\n"
          "  eval CHECKPOINT [--data FILE] [--split test] [--json]\n"
          "                          metrics of a trained checkpoint\n"
          "  predict CHECKPOINT --data FILE --out preds.csv\n"
          "  grad CONFIG --weights W.safetensors --batch B.npz [--out G.safetensors]\n"
          "                          outputs, loss terms and gradients of one batch (dropout off)\n"
          "  inspect FILE [--json]   what a dataset file holds\n"
          "  make-dataset --like mosi|mosei|sims|iemocap --out FILE [--samples A,B,C] [--seed S]\n"
          "\n"
          "global options:\n"
          "  --device D              gpu | cpu | accelerator | ref | P:D (platform:device index)\n"
          "                          default: first GPU, else the OpenCL CPU device, else ref\n"
          "  --cache-dir DIR         program cache (default $DECOCL_CACHE_DIR, else ~/.cache/decocl)\n"
          "  --no-cache              build kernels without the program cache\n"
          "  --kernels-binary FILE   load a precompiled program (FPGA path); never compiles source\n"
          "  --cl-dir DIR            read cl/*.cl from DIR instead of the embedded copies\n"
          "  --gemm own|clblast|auto GEMM provider (default auto: measured per device, remembered)\n"
          "  -v, --verbose           log builds, cache hits and choices to stderr\n"
          "  --version, -h/--help\n",
          f);
}

static int usage_error(const char *fmt, const char *arg) {
    fputs("decocl: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n(see decocl --help)\n", stderr);
    return 2;
}

static int fail(const struct dc_error *err) {
    fprintf(stderr, "decocl: %s: %s\n", dc_status_str(err->code), err->msg);
    return err->code == DC_ERR_ARG ? 2 : 1;
}

static int parse_gemm(const char *s, enum dc_gemm_provider *out) {
    if (strcmp(s, "own") == 0) *out = DC_GEMM_OWN;
    else if (strcmp(s, "clblast") == 0) *out = DC_GEMM_CLBLAST;
    else if (strcmp(s, "auto") == 0) *out = DC_GEMM_AUTO;
    else return -1;
    return 0;
}

/* Global options come before the command. Returns -1 to exit 0 (help/version), else an exit code or 0. */
static int parse_globals(int argc, char **argv, struct cli *cli) {
    const char *gemm_env = getenv("DECOCL_GEMM");
    if (gemm_env && *gemm_env && parse_gemm(gemm_env, &cli->be.gemm) != 0)
        return usage_error("DECOCL_GEMM must be own, clblast or auto, not '%s'", gemm_env);
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; ++i) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE(field)                                                     \
    do {                                                                \
        if (!val) return usage_error("option %s needs a value", a);     \
        cli->be.field = val;                                            \
        ++i;                                                            \
    } while (0)
        if (strcmp(a, "--device") == 0) TAKE(device);
        else if (strcmp(a, "--cache-dir") == 0) TAKE(cache_dir);
        else if (strcmp(a, "--kernels-binary") == 0) TAKE(kernels_binary);
        else if (strcmp(a, "--cl-dir") == 0) TAKE(cl_dir);
        else if (strcmp(a, "--gemm") == 0) {
            if (!val) return usage_error("option %s needs a value", a);
            if (parse_gemm(val, &cli->be.gemm) != 0) return usage_error("--gemm must be own, clblast or auto, not '%s'", val);
            ++i;
        } else if (strcmp(a, "--no-cache") == 0) cli->be.no_cache = true;
        else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) cli->be.verbose = true;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return -1;
        } else if (strcmp(a, "--version") == 0) {
            printf("decocl %s\n", DECOCL_VERSION);
            return -1;
        } else return usage_error("unknown option '%s'", a);
#undef TAKE
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    cli->argc = argc - i;
    cli->argv = argv + i;
    return 0;
}

static void print_size(uint64_t bytes) {
    if (bytes >= (1ull << 30)) printf("%.1f GiB", (double)bytes / (double)(1ull << 30));
    else if (bytes >= (1ull << 20)) printf("%.1f MiB", (double)bytes / (double)(1ull << 20));
    else printf("%.0f KiB", (double)bytes / 1024.0);
}

/* `devices`: every device, and which ops its backend supports. */
static int cmd_devices(struct cli *cli) {
    struct dc_error err = {0};
    struct dc_device_info *list;
    size_t n;
    if (dc_device_list(&list, &n, &err) != DC_OK) return fail(&err);
    if (cli->be.device) { /* validate --device even though all devices are listed */
        struct dc_backend *be;
        if (dc_backend_open(&be, &cli->be, &err) != DC_OK) {
            free(list);
            return fail(&err);
        }
        dc_backend_close(be);
    }
    int rc = 0;
    for (size_t i = 0; i < n; ++i) {
        const struct dc_device_info *d = &list[i];
        printf("%s  %s\n", d->id, d->name);
        if (strcmp(d->type, "ref") != 0) {
            printf("    platform: %s\n    vendor: %s\n    type: %s\n    compute units: %u\n", d->platform, d->vendor,
                   d->type, d->compute_units);
            printf("    global memory: ");
            print_size(d->global_mem);
            printf(" (max allocation ");
            print_size(d->max_alloc);
            printf(")\n    local memory: ");
            print_size(d->local_mem);
            printf("\n    OpenCL: %s\n    driver: %s\n", d->cl_version, d->driver);
        } else {
            printf("    type: ref (plain C, no OpenCL; the oracle every kernel is tested against)\n    version: %s\n",
                   d->driver);
        }
        struct dc_backend_options o = cli->be;
        o.device = d->id;
        struct dc_backend *be;
        struct dc_error e = {0};
        if (dc_backend_open(&be, &o, &e) != DC_OK) {
            printf("    ops: unavailable: %s\n", e.msg);
            rc = 1;
            continue;
        }
        size_t have = 0;
        for (int op = 0; op < DC_OP_COUNT; ++op) have += dc_backend_supports(be, (enum dc_op)op);
        printf("    ops (%zu of %d):", have, DC_OP_COUNT);
        for (int op = 0; op < DC_OP_COUNT; ++op)
            if (dc_backend_supports(be, (enum dc_op)op)) printf(" %s", dc_op_name((enum dc_op)op));
        printf("\n");
        if (have < DC_OP_COUNT) {
            printf("    missing:");
            for (int op = 0; op < DC_OP_COUNT; ++op)
                if (!dc_backend_supports(be, (enum dc_op)op)) printf(" %s", dc_op_name((enum dc_op)op));
            printf("\n");
        }
        if (strcmp(d->type, "ref") != 0) {
            printf("    gemm provider: %s\n", dc_backend_gemm_provider(be) == DC_GEMM_CLBLAST ? "clblast" : "own (cl/gemm.cl)");
            printf("    kernels: %s\n", dc_backend_program_origin(be));
        }
        dc_backend_close(be);
    }
    free(list);
    return rc;
}

static int cmd_build_kernels(struct cli *cli) {
    if (cli->argc != 2) return usage_error("%s", "usage: decocl [--device D] build-kernels FILE");
    struct dc_error err = {0};
    struct dc_backend *be;
    if (dc_backend_open(&be, &cli->be, &err) != DC_OK) return fail(&err);
    dc_status st = dc_backend_export_kernels(be, cli->argv[1]);
    if (st == DC_OK) printf("wrote %s for %s (%s)\n", cli->argv[1], dc_backend_device_name(be), dc_backend_driver(be));
    else err = *dc_backend_error(be);
    dc_backend_close(be);
    return st == DC_OK ? 0 : fail(&err);
}

static int parse_count(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) {
        fprintf(stderr, "decocl: %s must be an integer in [%ld, %ld], not '%s'\n(see decocl --help)\n", opt, lo, hi, s);
        return 2;
    }
    *out = v;
    return 0;
}

static bool takes_value(const char *a) {
    static const char *const opts[] = {"--devices", "--data", "--csv", "--set", "--steps", "--warmup", "--batch-size",
                                       "--sgemm-size"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; ++i)
        if (strcmp(a, opts[i]) == 0) return true;
    return false;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int cmd_bench_step(struct cli *cli) {
    struct dc_bench_step_options o = {.steps = 10, .warmup = 3, .sgemm_n = 1024, .breakdown = true};
    const char *sets[64];
    const char *json_path = NULL; /* --json FILE.json: the JSON goes to FILE (atomically), not stdout */
    for (int i = 2; i < cli->argc; ++i) {
        const char *a = cli->argv[i];
        const char *val = i + 1 < cli->argc ? cli->argv[i + 1] : NULL;
        long v;
        if (strcmp(a, "--json") == 0) {
            o.json = true;
            if (val && val[0] != '-' && ends_with(val, ".json")) json_path = cli->argv[++i];
        }
        else if (strcmp(a, "--no-breakdown") == 0) o.breakdown = false;
        else if (takes_value(a) && !val) return usage_error("option %s needs a value", a);
        else if (strcmp(a, "--devices") == 0) o.devices = cli->argv[++i];
        else if (strcmp(a, "--data") == 0) o.data = cli->argv[++i];
        else if (strcmp(a, "--csv") == 0) o.csv = cli->argv[++i];
        else if (strcmp(a, "--set") == 0) {
            if (o.nsets == sizeof sets / sizeof sets[0]) return usage_error("%s", "too many --set options");
            sets[o.nsets++] = cli->argv[++i];
            o.sets = sets;
        }
        else if (strcmp(a, "--steps") == 0) {
            if (parse_count(a, cli->argv[++i], 1, 100000, &v)) return 2;
            o.steps = (int)v;
        } else if (strcmp(a, "--warmup") == 0) {
            if (parse_count(a, cli->argv[++i], 0, 100000, &v)) return 2;
            o.warmup = (int)v;
        } else if (strcmp(a, "--batch-size") == 0) {
            if (parse_count(a, cli->argv[++i], 1, 1000000, &v)) return 2;
            o.batch_size = (size_t)v;
        } else if (strcmp(a, "--sgemm-size") == 0) {
            if (parse_count(a, cli->argv[++i], 16, 8192, &v)) return 2;
            o.sgemm_n = (size_t)v;
        } else if (a[0] == '-') return usage_error("unknown bench step argument '%s'", a);
        else if (!o.config) o.config = a;
        else return usage_error("bench step takes one CONFIG, not also '%s'", a);
    }
    if (!o.config) return usage_error("%s", "usage: decocl bench step CONFIG [--devices all|ref,cpu,...] [--json]");
    if (!o.devices && cli->be.device) o.devices = cli->be.device; /* the global --device picks one */
    struct dc_error err = {0};
    if (!json_path) {
        if (dc_bench_step(&cli->be, &o, stdout, &err) != DC_OK) return fail(&err);
        return 0;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) {
        dc_set_error(&err, DC_ERR_NOMEM, "out of memory");
        return fail(&err);
    }
    dc_status st = dc_bench_step(&cli->be, &o, mem, &err);
    fclose(mem);
    if (st == DC_OK) st = dc_write_file_atomic(json_path, buf, len, &err);
    free(buf);
    if (st != DC_OK) return fail(&err);
    fprintf(stderr, "decocl bench step: wrote %s\n", json_path);
    return 0;
}

static int cmd_bench_compare(struct cli *cli) {
    if (cli->argc < 3) return usage_error("%s", "usage: decocl bench compare A.json [B.json ...]");
    struct dc_error err = {0};
    if (dc_bench_compare((const char *const *)cli->argv + 2, (size_t)cli->argc - 2, stdout, &err) != DC_OK)
        return fail(&err);
    return 0;
}

static int cmd_bench(struct cli *cli) {
    if (cli->argc >= 2 && strcmp(cli->argv[1], "step") == 0) return cmd_bench_step(cli);
    if (cli->argc >= 2 && strcmp(cli->argv[1], "compare") == 0) return cmd_bench_compare(cli);
    if (cli->argc < 2 || strcmp(cli->argv[1], "ops") != 0)
        return usage_error("%s", "usage: decocl [--device D] bench ops [--json] [--ops a,b,...] [--reps N]\n"
                                 "       decocl bench step CONFIG [options]   |   decocl bench compare A.json ...");
    struct dc_bench_ops_options o = {.reps = 0};
    for (int i = 2; i < cli->argc; ++i) {
        const char *a = cli->argv[i];
        if (strcmp(a, "--json") == 0) o.json = true;
        else if (strcmp(a, "--ops") == 0 && i + 1 < cli->argc) o.ops = cli->argv[++i];
        else if (strcmp(a, "--reps") == 0 && i + 1 < cli->argc) {
            char *end;
            long r = strtol(cli->argv[++i], &end, 10);
            if (*end || r < 1 || r > 100000) return usage_error("--reps must be a positive integer, not '%s'", cli->argv[i]);
            o.reps = (int)r;
        } else return usage_error("unknown bench ops argument '%s'", a);
    }
    struct dc_error err = {0};
    if (dc_bench_ops(&cli->be, &o, stdout, &err) != DC_OK) return fail(&err);
    return 0;
}

int main(int argc, char **argv) {
    struct cli cli = {0};
    int rc = parse_globals(argc, argv, &cli);
    if (rc != 0) return rc < 0 ? 0 : rc;
    dc_log_set_verbose(cli.be.verbose);
    const char *cmd = cli.argv[0];
    if (strcmp(cmd, "devices") == 0) return cmd_devices(&cli);
    if (strcmp(cmd, "build-kernels") == 0) return cmd_build_kernels(&cli);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(&cli);
    if (strcmp(cmd, "inspect") == 0) return dc_cmd_inspect(cli.argc, cli.argv);
    if (strcmp(cmd, "make-dataset") == 0) return dc_cmd_make_dataset(cli.argc, cli.argv);
    if (strcmp(cmd, "grad") == 0) return dc_cmd_grad(cli.argc, cli.argv, &cli.be);
    if (strcmp(cmd, "train") == 0) return dc_cmd_train(cli.argc, cli.argv, &cli.be);
    if (strcmp(cmd, "eval") == 0) return dc_cmd_eval(cli.argc, cli.argv, &cli.be);
    if (strcmp(cmd, "predict") == 0) return dc_cmd_predict(cli.argc, cli.argv, &cli.be);
    return usage_error("unknown command '%s'", cmd);
}
