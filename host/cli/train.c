/* `decocl [--device D] train CONFIG [--data FILE] [--set key=value]... [--seeds a,b,...] [--out DIR]`
 * `decocl [--device D] train [CONFIG [--data/--set/--seeds as before]] --resume DIR`
 * (issue 5 items 2-3): trains DecAlign per seed and writes the run directory; see
 * train/train.h. Progress: one line per epoch on stderr, plus a progress bar redrawn in
 * place when stderr is a terminal. Ctrl-C (SIGINT) asks the trainer to stop after the
 * current batch; it writes seed-<S>/last.safetensors and optim.safetensors and this
 * command prints how to resume and returns 130. A second Ctrl-C kills at once.
 * --resume DIR: the config is DIR/config.cfg; a CONFIG given with it (and its --data,
 * --set, --seeds) must resolve to exactly that config, else it is an error. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "train/train.h"

#define TRAIN_USAGE                                                                                                   \
    "usage: decocl [--device D] train CONFIG [--data FILE] [--set key=value]... [--seeds a,b,...] [--out DIR]\n" \
    "       decocl [--device D] train [CONFIG [--data FILE] [--set key=value]... [--seeds ...]] --resume DIR"

static volatile sig_atomic_t g_stop;

static void on_sigint(int sig) {
    (void)sig;
    g_stop = 1;
}

static int usage_fail(const char *fmt, const char *arg) {
    fprintf(stderr, "decocl: train: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s\n", TRAIN_USAGE);
    return 2;
}

static int parse_seeds(const char *s, uint64_t *seeds, size_t *n) {
    *n = 0;
    const char *p = s;
    for (;;) {
        if (*n == DC_CFG_MAX_SEEDS) return -1;
        char *end;
        errno = 0;
        if (*p < '0' || *p > '9') return -1;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || end == p) return -1;
        seeds[(*n)++] = (uint64_t)v;
        if (*end == 0) return 0;
        if (*end != ',') return -1;
        p = end + 1;
    }
}

int dc_cmd_train(int argc, char **argv, const struct dc_backend_options *be) {
    const char *config = NULL, *data = NULL, *out = NULL, *resume = NULL;
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    uint64_t seeds[DC_CFG_MAX_SEEDS];
    size_t nsets = 0, nseeds = 0;
    int rc = 2;
    if (!sets) {
        fprintf(stderr, "decocl: train: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s\n", TRAIN_USAGE);
            rc = 0;
            goto done;
        }
        bool takes = !strcmp(a, "--data") || !strcmp(a, "--out") || !strcmp(a, "--set") || !strcmp(a, "--seeds") ||
                     !strcmp(a, "--resume");
        if (takes && i + 1 >= argc) {
            rc = usage_fail("option %s needs a value", a);
            goto done;
        }
        if (!strcmp(a, "--data")) data = argv[++i];
        else if (!strcmp(a, "--out")) out = argv[++i];
        else if (!strcmp(a, "--resume")) resume = argv[++i];
        else if (!strcmp(a, "--set")) {
            if (!strchr(argv[i + 1], '=')) {
                rc = usage_fail("--set needs key=value, not '%s'", argv[i + 1]);
                goto done;
            }
            sets[nsets++] = argv[++i];
        } else if (!strcmp(a, "--seeds")) {
            if (parse_seeds(argv[++i], seeds, &nseeds) != 0) {
                rc = usage_fail("--seeds needs comma-separated non-negative integers, not '%s'", argv[i]);
                goto done;
            }
        } else if (a[0] == '-' && a[1]) {
            rc = usage_fail("unknown train option '%s'", a);
            goto done;
        } else if (config) {
            rc = usage_fail("unexpected argument '%s'", a);
            goto done;
        } else config = a;
    }
    if (!config && !resume) {
        rc = usage_fail("%s", "train needs a CONFIG");
        goto done;
    }
    bool interrupted = false;
    g_stop = 0;
    struct dc_train_options o = {.config = config, .data = data, .sets = sets, .nsets = nsets,
                                 .seeds = nseeds ? seeds : NULL, .nseeds = nseeds, .out_dir = out,
                                 .backend = be, .log = stderr, .progress = isatty(fileno(stderr)) == 1,
                                 .resume = resume, .stop = &g_stop, .interrupted = &interrupted};
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C gets the default action */
    bool installed = sigaction(SIGINT, &sa, &old) == 0;
    struct dc_error err = {0};
    char dir[1024];
    dc_status st = dc_train_run(&o, dir, sizeof dir, &err);
    if (installed) sigaction(SIGINT, &old, NULL);
    if (st == DC_OK && interrupted) {
        fprintf(stderr,
                "decocl: train: stopped; the state is in %s/seed-*/last.safetensors and optim.safetensors\n"
                "resume with: decocl train --resume %s   (add the same --device)\n",
                dir, dir);
        rc = 130;
        goto done;
    }
    if (st != DC_OK) {
        fprintf(stderr, "decocl: train: %s\n", err.msg[0] ? err.msg : dc_status_str(st));
        rc = st == DC_ERR_ARG ? 2 : 1;
        goto done;
    }
    printf("%s/results.json\n", dir);
    rc = fflush(stdout) == 0 ? 0 : 1;
done:
    free(sets);
    return rc;
}
