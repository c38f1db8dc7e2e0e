/* `decocl bench step`: whole training steps per device (issue 6 item 1).
 *
 * Each device runs in a child process: peak host memory is then that device's alone
 * (the parent never touches OpenCL or the data; the child resets its high-water mark
 * first), and a device that crashes its driver cannot take the others down. The child
 * hands its dc_bench_result back through a pipe.
 *
 * Per device: the config's model on one batch (synthetic N(0,1) features with the
 * config's feature_dims/seq_lens, or the first batch of --data's train split), then
 *   warm-up   `warmup` training steps (dc_train_step: what `decocl train` runs per batch);
 *   step      `steps` timed steps, each ended by dc_sync: median/p10/p90, and the
 *             backend counters (launches, transfers, GEMM FLOPs) per step;
 *   forward   `steps` forwards without dropout (as evaluation runs them);
 *   phases    `steps` more steps with the phase hook, which syncs at every phase start
 *             (so the undisturbed step time above comes from steps without it);
 *   SGEMM     the best rate of the device's GEMM providers on m = n = k = sgemm_n. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_result.h"
#include "bench/bench_step.h"
#include "core/log.h"
#include "decocl/data.h"
#include "decocl/ops.h"
#include "train/optim.h"
#include "train/step.h"
#include "train/train.h"

#define BENCH_SEED 1111
#define SGEMM_MAX_SECONDS 3.0

/* ---- small helpers ---- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Linear-interpolated quantile q of v[n] (sorts v). */
static double quantile(double *v, size_t n, double q) {
    if (n == 0) return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    double f = pos - (double)i;
    return i + 1 < n ? v[i] * (1 - f) + v[i + 1] * f : v[i];
}

static struct dc_bench_dist dist_of(double *ms, size_t n) {
    return (struct dc_bench_dist){.median = quantile(ms, n, 0.5), .p10 = quantile(ms, n, 0.1),
                                  .p90 = quantile(ms, n, 0.9)};
}

static double now_ms(void) { return 1e3 * dc_now_seconds(); }

/* Starts the peak-RSS count afresh (Linux: clear_refs 5 resets VmHWM); best effort. */
static void reset_peak_rss(void) {
    int fd = open("/proc/self/clear_refs", O_WRONLY);
    if (fd < 0) return;
    ssize_t w = write(fd, "5", 1);
    (void)w;
    close(fd);
}

/* Peak resident set in MiB: VmHWM, else ru_maxrss. */
static double peak_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) {
            fclose(f);
            return strtod(line + 6, NULL) / 1024.0;
        }
    if (f) fclose(f);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* CPU time used by other processes: busy jiffies of /proc/stat minus this process's own
 * user + system time (threads included), in core-seconds; NAN where /proc is absent. */
struct cpu_snap {
    double wall, busy, own;
};
static struct cpu_snap cpu_snap(void) {
    struct cpu_snap c = {dc_now_seconds(), NAN, 0};
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[8] = {0};
    if (f) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   &v[7]) == 8)
            c.busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
        fclose(f);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    c.own = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
            1e-6 * (double)ru.ru_stime.tv_usec;
    return c;
}
/* Mean cores other processes kept busy between a and b. */
static double foreign_cores(struct cpu_snap a, struct cpu_snap b) {
    double f = ((b.busy - a.busy) - (b.own - a.own)) / (b.wall - a.wall);
    return f > 0 ? f : 0;
}

/* splitmix64 -> uniform (0, 1) -> Box-Muller normals: the synthetic inputs. */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double uniform01(uint64_t *s) { return ((double)(splitmix64(s) >> 11) + 0.5) / 9007199254740992.0; }
static void fill_normal(float *x, size_t n, uint64_t *s) {
    for (size_t i = 0; i < n; i += 2) {
        double r = sqrt(-2.0 * log(uniform01(s))), t = 6.283185307179586 * uniform01(s);
        x[i] = (float)(r * cos(t));
        if (i + 1 < n) x[i + 1] = (float)(r * sin(t));
    }
}

/* Training-split sizes of the reference datasets (shared/spec/mmsa-format.md §1.3; IEMOCAP's
 * 2717 is DecAlign's sessions 1-3 split as given in the task, not in the spec). */
static size_t reference_train_size(const char *kind) {
    static const struct {
        const char *name;
        size_t n;
    } sizes[] = {{"mosi", 1284}, {"mosei", 16326}, {"sims", 1368}, {"iemocap", 2717}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i)
        if (!strcasecmp(kind, sizes[i].name)) return sizes[i].n;
    return 0;
}

/* ---- one device (runs in the child) ---- */

struct device_run {
    struct dc_model_config cfg;
    struct dc_dataset *ds;
    float *xs[3], *labels; /* synthetic batch (owned) */
    const float *x[3], *y; /* the batch used */
    struct dc_param_layout pl;
    float *params_h;
    bool *active;
    struct dc_backend *be;
    struct dc_mem *params, *grads;
    struct dc_decalign *model;
    struct dc_optim *opt;
    double *ms; /* steps timings */
};

static void device_run_free(struct device_run *d) {
    dc_optim_free(d->opt);
    dc_decalign_free(d->model);
    if (d->be) {
        dc_mem_free(d->be, d->params);
        dc_mem_free(d->be, d->grads);
        dc_backend_close(d->be);
    }
    dc_param_layout_free(&d->pl);
    free(d->params_h);
    free(d->active);
    for (int m = 0; m < 3; ++m) free(d->xs[m]);
    free(d->labels);
    dc_dataset_free(d->ds);
    free(d->ms);
}

static dc_status be_error(struct dc_backend *be, dc_status st, const char *what, struct dc_error *err) {
    return dc_set_error(err, st, "%s: %s", what, be ? dc_backend_error(be)->msg : "");
}

/* The batch: the first B samples of --data's train split, or synthetic data. */
static dc_status make_batch(struct device_run *d, const struct dc_bench_step_options *o, struct dc_bench_result *r,
                            struct dc_error *err) {
    struct dc_model_config *c = &d->cfg;
    size_t bs = o->batch_size ? o->batch_size : c->batch_size;
    if (bs == 0) return dc_set_error(err, DC_ERR_ARG, "batch size 0");
    if (o->data) {
        struct dc_dataset_options dopt;
        dc_train_dataset_options(c, &dopt);
        dc_status st = dc_dataset_load(o->data, &dopt, &d->ds, err);
        if (st != DC_OK) return st;
        const struct dc_split *tr = &d->ds->split[DC_SPLIT_TRAIN];
        r->batch = bs < tr->n ? bs : tr->n;
        for (int m = 0; m < 3; ++m) {
            r->T[m] = tr->seq_len[m];
            r->D[m] = tr->dim[m];
            d->x[m] = tr->x[m]; /* (N, T, D) C order: the first B samples are contiguous */
        }
        d->y = tr->labels;
        snprintf(r->dataset, sizeof r->dataset, "%s", dc_dataset_kind_name(dc_train_kind(d->ds, c)));
        r->epoch_samples = tr->n;
        snprintf(r->epoch_source, sizeof r->epoch_source, "train split of --data");
        return DC_OK;
    }
    for (int m = 0; m < 3; ++m)
        if (!c->feature_dims[m] || !c->seq_lens[m])
            return dc_set_error(err, DC_ERR_ARG,
                                "the config gives no feature_dims/seq_lens for synthetic data; pass --data FILE");
    r->batch = bs;
    uint64_t s = BENCH_SEED;
    for (int m = 0; m < 3; ++m) {
        r->T[m] = c->seq_lens[m];
        r->D[m] = c->feature_dims[m];
        size_t n = bs * r->T[m] * r->D[m];
        if (!(d->xs[m] = malloc(n * sizeof(float)))) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
        fill_normal(d->xs[m], n, &s);
        d->x[m] = d->xs[m];
    }
    if (!(d->labels = malloc(bs * sizeof(float)))) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    snprintf(r->dataset, sizeof r->dataset, "%.15s", c->dataset_name[0] ? c->dataset_name : "unknown");
    double range = !strcasecmp(c->dataset_name, "sims") ? 1.0 : 3.0; /* the label ranges of the datasets */
    for (size_t b = 0; b < bs; ++b)
        d->labels[b] = c->classification ? (float)(b % c->num_classes)
                                         : (float)(range * (2.0 * uniform01(&s) - 1.0));
    d->y = d->labels;
    r->epoch_samples = reference_train_size(r->dataset);
    snprintf(r->epoch_source, sizeof r->epoch_source, "%s",
             r->epoch_samples ? "reference dataset's train split" : "unknown (no --data, no reference size)");
    return DC_OK;
}

struct phase_clock {
    struct dc_backend *be;
    double t[DC_BENCH_PHASES];
    bool seen[DC_BENCH_PHASES];
};
static void phase_mark(struct phase_clock *pc, size_t i) {
    (void)dc_sync(pc->be); /* a failure shows up in the step's own status */
    pc->t[i] = now_ms();
    pc->seen[i] = true;
}
static void on_phase(void *ctx, enum dc_phase p) { phase_mark(ctx, (size_t)p); }
static void on_optimiser(void *ctx) { phase_mark(ctx, DC_PHASE_COUNT); }

static dc_status one_step(struct device_run *d, struct dc_bench_result *r, uint64_t *step,
                          const struct dc_step_hook *hook, struct dc_error *err) {
    struct dc_decalign_losses l;
    const float *const x[3] = {d->x[0], d->x[1], d->x[2]};
    dc_status st = dc_train_step(d->model, d->opt, d->params, d->grads, d->pl.total, x, d->y, BENCH_SEED, (*step)++,
                                 hook, &l, err);
    if (st != DC_OK) return st;
    if ((st = dc_sync(d->be)) != DC_OK) return be_error(d->be, st, "sync", err);
    r->last_loss = l.total;
    return DC_OK;
}

/* The best SGEMM rate of provider p on be (n^3, best of a few calls). */
static double sgemm_rate(struct dc_backend *be, size_t n) {
    struct dc_mem *a = NULL, *b = NULL, *c = NULL;
    double best = NAN;
    size_t nn = n * n;
    if (dc_mem_alloc(be, nn, &a) != DC_OK || dc_mem_alloc(be, nn, &b) != DC_OK || dc_mem_alloc(be, nn, &c) != DC_OK)
        goto done;
    dc_view va = dc_view_of(a, 0, nn), vb = dc_view_of(b, 0, nn), vc = dc_view_of(c, 0, nn);
    if (dc_fill(be, va, 0.5f) != DC_OK || dc_fill(be, vb, 0.25f) != DC_OK) goto done;
    double spent = 0;
    /* at least 3 timed calls, then more while under SGEMM_MAX_SECONDS: the best survives
     * other processes' bursts on a shared machine */
    for (int i = 0; i < 4 || (i < 30 && spent < SGEMM_MAX_SECONDS); ++i) {
        double t0 = dc_now_seconds();
        if (dc_gemm(be, false, false, n, n, n, 1.0f, va, n, vb, n, 0.0f, vc, n) != DC_OK || dc_sync(be) != DC_OK) {
            best = NAN;
            goto done;
        }
        double t = dc_now_seconds() - t0;
        spent += t;
        if (i == 0) continue; /* warm-up: kernel compilation, first touch */
        double g = 2.0 * (double)n * (double)n * (double)n / t * 1e-9;
        if (!(g <= best)) best = g;
    }
done:
    dc_mem_free(be, a);
    dc_mem_free(be, b);
    dc_mem_free(be, c);
    return best;
}

/* The device's SGEMM rate: ref's plain C, or the best of our kernel and CLBlast. */
static void sgemm_probe(const struct dc_backend_options *be_opt, const char *dev, struct dc_bench_result *r) {
    static const enum dc_gemm_provider providers[] = {DC_GEMM_OWN, DC_GEMM_CLBLAST};
    static const char *const names[] = {"own", "clblast"};
    r->sgemm_gflops = NAN;
    snprintf(r->sgemm_provider, sizeof r->sgemm_provider, "-");
    bool ref = strcmp(dev, "ref") == 0;
    for (size_t i = 0; i < (ref ? 1u : 2u); ++i) {
        struct dc_backend_options bo = *be_opt;
        bo.device = dev;
        bo.gemm = providers[i];
        struct dc_backend *be;
        struct dc_error e = {0};
        if (dc_backend_open(&be, &bo, &e) != DC_OK) continue;
        double g = sgemm_rate(be, r->sgemm_n);
        if (!isnan(g) && !(g <= r->sgemm_gflops)) {
            r->sgemm_gflops = g;
            snprintf(r->sgemm_provider, sizeof r->sgemm_provider, "%s", ref ? "ref" : names[i]);
        }
        dc_backend_close(be);
    }
}

static dc_status run_device(const struct dc_backend_options *be_opt, const char *dev,
                            const struct dc_bench_step_options *o, struct dc_bench_result *r, struct dc_error *err) {
    struct device_run d = {0};
    dc_status st;
    reset_peak_rss();
    snprintf(r->device_id, sizeof r->device_id, "%s", dev);
    r->steps = o->steps;
    r->warmup = o->warmup;
    r->sgemm_n = o->sgemm_n;
    if ((st = dc_model_config_read(&d.cfg, o->config, o->sets, o->nsets, err)) != DC_OK) goto done;
    if ((st = make_batch(&d, o, r, err)) != DC_OK) goto done;
    struct dc_model_dims dims;
    dc_decalign_dims(&d.cfg, r->D, &dims);
    if ((st = dc_param_layout_init(&d.pl, &dims, err)) != DC_OK) goto done;
    r->params = d.pl.total;
    struct dc_step_flops fl;
    dc_bench_step_flops(&d.cfg, &dims, r->batch, r->T, &fl);
    r->gflop_forward = fl.forward * 1e-9;
    r->gflop_step = (fl.forward + fl.backward) * 1e-9;

    struct dc_backend_options bo = *be_opt;
    bo.device = dev;
    if ((st = dc_backend_open(&d.be, &bo, err)) != DC_OK) goto done;
    snprintf(r->device, sizeof r->device, "%s", dc_backend_device_name(d.be));
    snprintf(r->driver, sizeof r->driver, "%s", dc_backend_driver(d.be));
    snprintf(r->backend, sizeof r->backend, "%s", dc_backend_name(d.be));
    if (!(d.params_h = malloc(d.pl.total * sizeof(float))) || !(d.active = calloc(d.pl.count, sizeof(bool))) ||
        !(d.ms = malloc((size_t)o->steps * sizeof(double)))) {
        st = dc_set_error(err, DC_ERR_NOMEM, "out of memory");
        goto done;
    }
    dc_params_init(&d.pl, d.params_h, BENCH_SEED);
    if ((st = dc_mem_alloc(d.be, d.pl.total, &d.params)) != DC_OK ||
        (st = dc_mem_alloc(d.be, d.pl.total, &d.grads)) != DC_OK ||
        (st = dc_upload(d.be, dc_view_of(d.params, 0, d.pl.total), d.params_h)) != DC_OK) {
        st = be_error(d.be, st, "parameters", err);
        goto done;
    }
    if ((st = dc_decalign_create(d.be, &d.cfg, &d.pl, r->batch, r->T, &d.model, err)) != DC_OK) goto done;
    dc_decalign_active(d.model, d.active);
    struct dc_adam hp = {.lr = d.cfg.learning_rate, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                         .weight_decay = d.cfg.weight_decay, .clip = d.cfg.clip};
    if ((st = dc_optim_create(d.be, &d.pl, d.active, &hp, &d.opt, err)) != DC_OK) goto done;
    snprintf(r->gemm_provider, sizeof r->gemm_provider, "%s",
             strcmp(r->backend, "ref") == 0                              ? "ref"
             : dc_backend_gemm_provider(d.be) == DC_GEMM_CLBLAST ? "clblast"
                                                                 : "own");

    uint64_t step = 0;
    for (int i = 0; i < o->warmup; ++i)
        if ((st = one_step(&d, r, &step, NULL, err)) != DC_OK) goto done;
    /* after the warm-up: the auto GEMM choice has been made, caches are warm */
    snprintf(r->gemm_provider, sizeof r->gemm_provider, "%s",
             strcmp(r->backend, "ref") == 0                              ? "ref"
             : dc_backend_gemm_provider(d.be) == DC_GEMM_CLBLAST ? "clblast"
                                                                 : "own");

    /* undisturbed steps */
    struct dc_backend_stats s0, s1;
    dc_backend_stats_get(d.be, &s0);
    struct cpu_snap c0 = cpu_snap();
    for (int i = 0; i < o->steps; ++i) {
        double t0 = now_ms();
        if ((st = one_step(&d, r, &step, NULL, err)) != DC_OK) goto done;
        d.ms[i] = now_ms() - t0;
    }
    r->foreign_cores = foreign_cores(c0, cpu_snap());
    dc_backend_stats_get(d.be, &s1);
    double ns = (double)o->steps;
    r->launches = (double)(s1.launches - s0.launches) / ns;
    r->ops = (double)(s1.ops - s0.ops) / ns;
    r->reads = (double)(s1.reads - s0.reads) / ns;
    r->writes = (double)(s1.writes - s0.writes) / ns;
    r->read_bytes = (double)(s1.read_bytes - s0.read_bytes) / ns;
    r->write_bytes = (double)(s1.write_bytes - s0.write_bytes) / ns;
    r->gflop_counted = (double)(s1.gemm_flops - s0.gemm_flops) / ns * 1e-9;
    r->step_ms = dist_of(d.ms, (size_t)o->steps);
    r->gflops = r->gflop_step / (r->step_ms.median * 1e-3);

    /* forward only, no dropout (as evaluation runs it) */
    dc_backend_stats_get(d.be, &s0);
    for (int i = 0; i < o->steps; ++i) {
        struct dc_decalign_losses l;
        const float *const x[3] = {d.x[0], d.x[1], d.x[2]};
        double t0 = now_ms();
        if ((st = dc_decalign_forward(d.model, d.params, x, d.y, false, 0, 0, &l, err)) != DC_OK) goto done;
        if ((st = dc_sync(d.be)) != DC_OK) {
            st = be_error(d.be, st, "sync", err);
            goto done;
        }
        d.ms[i] = now_ms() - t0;
    }
    dc_backend_stats_get(d.be, &s1);
    r->forward_launches = (double)(s1.launches - s0.launches) / ns;
    r->forward_ms = dist_of(d.ms, (size_t)o->steps);

    /* per-phase breakdown: separate steps, synchronised at each phase start */
    if (o->breakdown) {
        double *ph = calloc((size_t)o->steps * DC_BENCH_PHASES, sizeof(double));
        if (!ph) {
            st = dc_set_error(err, DC_ERR_NOMEM, "out of memory");
            goto done;
        }
        struct phase_clock pc = {.be = d.be};
        struct dc_step_hook hook = {.before_optimiser = on_optimiser, .ctx = &pc};
        dc_decalign_set_phase_hook(d.model, on_phase, &pc);
        for (int i = 0; i < o->steps && st == DC_OK; ++i) {
            memset(pc.seen, 0, sizeof pc.seen);
            double t0 = now_ms();
            if ((st = one_step(&d, r, &step, &hook, err)) != DC_OK) break;
            double t_end = now_ms();
            d.ms[i] = t_end - t0;
            for (size_t p = 0; p < DC_BENCH_PHASES; ++p) {
                if (!pc.seen[p]) continue;
                double next = t_end;
                for (size_t q = p + 1; q < DC_BENCH_PHASES; ++q)
                    if (pc.seen[q]) {
                        next = pc.t[q];
                        break;
                    }
                /* the encoders phase starts with the step: count the call overhead in it */
                ph[p * (size_t)o->steps + (size_t)i] = next - (p == 0 ? t0 : pc.t[p]);
            }
        }
        dc_decalign_set_phase_hook(d.model, NULL, NULL);
        if (st == DC_OK) {
            for (size_t p = 0; p < DC_BENCH_PHASES; ++p)
                r->phases_ms[p] = quantile(ph + p * (size_t)o->steps, (size_t)o->steps, 0.5);
            r->breakdown_step_ms = quantile(d.ms, (size_t)o->steps, 0.5);
            r->have_phases = true;
        }
        free(ph);
        if (st != DC_OK) goto done;
    }

    dc_backend_stats_get(d.be, &s1);
    r->peak_device_mb = (double)s1.mem_peak_bytes / (1024.0 * 1024.0);
    r->peak_host_mb = peak_rss_mb();
    if (r->epoch_samples) {
        r->epoch_batches = (r->epoch_samples + r->batch - 1) / r->batch;
        r->epoch_s = (double)r->epoch_batches * r->step_ms.median * 1e-3;
    } else r->epoch_s = NAN;
    device_run_free(&d);
    memset(&d, 0, sizeof d);
    sgemm_probe(be_opt, dev, r);
    r->ok = true;
    return DC_OK;
done:
    device_run_free(&d);
    return st;
}

/* ---- child processes ---- */

struct child_head {
    dc_status st;
    size_t len;
    char msg[1024];
};

static bool write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}
static bool read_all(int fd, void *p, size_t n) {
    char *c = p;
    while (n) {
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        c += r;
        n -= (size_t)r;
    }
    return true;
}

typedef dc_status (*child_fn)(void *arg, void **out, size_t *len, struct dc_error *err);

/* Runs fn in a child process; *out (malloc'd, *len bytes) is what it produced. */
static dc_status in_child(child_fn fn, void *arg, const char *what, void **out, size_t *len, struct dc_error *err) {
    *out = NULL;
    *len = 0;
    int fds[2];
    if (pipe(fds) != 0) return dc_set_error(err, DC_ERR_IO, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return dc_set_error(err, DC_ERR_IO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        struct dc_error e = {0};
        void *buf = NULL;
        size_t n = 0;
        struct child_head h = {.st = fn(arg, &buf, &n, &e)};
        h.len = h.st == DC_OK ? n : 0;
        snprintf(h.msg, sizeof h.msg, "%.1000s", e.msg);
        bool ok = write_all(fds[1], &h, sizeof h) && (!h.len || write_all(fds[1], buf, h.len));
        free(buf);
        _exit(ok ? 0 : 1);
    }
    close(fds[1]);
    struct child_head h;
    bool got = read_all(fds[0], &h, sizeof h);
    void *buf = NULL;
    if (got && h.len) {
        buf = malloc(h.len);
        got = buf && read_all(fds[0], buf, h.len);
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!got) {
        free(buf);
        if (WIFSIGNALED(status))
            return dc_set_error(err, DC_ERR_CL, "%s: the child process died of signal %d (%s)", what,
                                WTERMSIG(status), strsignal(WTERMSIG(status)));
        return dc_set_error(err, DC_ERR_IO, "%s: the child process exited with %d before reporting", what,
                            WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    if (h.st != DC_OK) {
        free(buf);
        return dc_set_error(err, h.st, "%s", h.msg);
    }
    *out = buf;
    *len = h.len;
    return DC_OK;
}

/* Child: the ids of every device (OpenCL ones, then ref), NUL-separated. */
static dc_status list_ids(void *arg, void **out, size_t *len, struct dc_error *err) {
    (void)arg;
    struct dc_device_info *list;
    size_t n;
    dc_status st = dc_device_list(&list, &n, err);
    if (st != DC_OK) return st;
    char *buf = malloc(n * sizeof list[0].id + 1);
    if (!buf) {
        free(list);
        return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; ++i) {
        size_t l = strlen(list[i].id) + 1;
        memcpy(buf + pos, list[i].id, l);
        pos += l;
    }
    free(list);
    *out = buf;
    *len = pos;
    return DC_OK;
}

struct device_job {
    const struct dc_backend_options *be_opt;
    const struct dc_bench_step_options *o;
    const char *dev;
};

/* Child: one device's result (also when it failed: the error travels inside). */
static dc_status bench_one(void *arg, void **out, size_t *len, struct dc_error *err) {
    const struct device_job *j = arg;
    struct dc_bench_result *r = calloc(1, sizeof *r);
    if (!r) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    struct dc_error e = {0};
    if (run_device(j->be_opt, j->dev, j->o, r, &e) != DC_OK) {
        r->ok = false;
        r->status = e.code;
        snprintf(r->error, sizeof r->error, "%s: %.990s", dc_status_str(e.code), e.msg);
    }
    *out = r;
    *len = sizeof *r;
    return DC_OK;
}

/* The device list to run: "all" expands to every device. Returns a NUL-separated list. */
static dc_status device_ids(const char *spec, char **ids, size_t *len, struct dc_error *err) {
    if (!spec || strcmp(spec, "all") == 0) {
        void *buf;
        dc_status st = in_child(list_ids, NULL, "listing devices", &buf, len, err);
        *ids = buf;
        return st;
    }
    size_t n = strlen(spec);
    if (!(*ids = malloc(n + 1))) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    *len = 0;
    for (const char *p = spec; *p;) {
        const char *end = strchr(p, ',');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        if (l == 0 || l >= sizeof(((struct dc_device_info *)0)->id)) {
            free(*ids);
            *ids = NULL;
            return dc_set_error(err, DC_ERR_ARG, "--devices: bad entry in '%s'", spec);
        }
        memcpy(*ids + *len, p, l);
        (*ids)[*len + l] = '\0';
        *len += l + 1;
        p += l + (end != NULL);
    }
    if (*len == 0) {
        free(*ids);
        *ids = NULL;
        return dc_set_error(err, DC_ERR_ARG, "--devices names no device");
    }
    return DC_OK;
}

dc_status dc_bench_step(const struct dc_backend_options *be_opt, const struct dc_bench_step_options *o, FILE *out,
                        struct dc_error *err) {
    if (o->steps < 1 || o->warmup < 0) return dc_set_error(err, DC_ERR_ARG, "--steps must be >= 1, --warmup >= 0");
    char *ids;
    size_t len;
    dc_status st = device_ids(o->devices, &ids, &len, err);
    if (st != DC_OK) return st;
    size_t n = 0, cap = 0;
    struct dc_bench_result *res = NULL;
    dc_status first_fail = DC_OK;
    for (size_t pos = 0; pos < len; pos += strlen(ids + pos) + 1) {
        const char *dev = ids + pos;
        if (n == cap) {
            cap = cap ? 2 * cap : 4;
            struct dc_bench_result *nr = realloc(res, cap * sizeof *res);
            if (!nr) {
                st = dc_set_error(err, DC_ERR_NOMEM, "out of memory");
                goto done;
            }
            res = nr;
        }
        struct dc_bench_result *r = &res[n++];
        memset(r, 0, sizeof *r);
        dc_log_info("bench step: %s", dev);
        struct device_job job = {be_opt, o, dev};
        void *buf;
        size_t blen;
        struct dc_error e = {0};
        if (in_child(bench_one, &job, dev, &buf, &blen, &e) == DC_OK && blen == sizeof *r) {
            memcpy(r, buf, sizeof *r);
        } else {
            snprintf(r->device_id, sizeof r->device_id, "%s", dev);
            r->status = e.code ? e.code : DC_ERR_IO;
            snprintf(r->error, sizeof r->error, "%.1000s", e.msg[0] ? e.msg : "no result from the child process");
        }
        free(buf);
        if (!r->ok) {
            if (first_fail == DC_OK) {
                first_fail = r->status ? r->status : DC_ERR_CL;
                dc_set_error(err, first_fail, "bench step on %s: %s", r->device_id, r->error);
            }
        }
    }
    if (o->json) dc_bench_print_json(out, o->config, res, n);
    else dc_bench_print_table(out, o->config, res, n);
    if (o->csv) {
        FILE *f = fopen(o->csv, "w");
        if (!f) {
            st = dc_set_error(err, DC_ERR_IO, "%s: %s", o->csv, strerror(errno));
            goto done;
        }
        dc_bench_print_csv(f, o->config, res, n);
        if (fclose(f) != 0) {
            st = dc_set_error(err, DC_ERR_IO, "%s: %s", o->csv, strerror(errno));
            goto done;
        }
    }
    st = first_fail;
done:
    free(res);
    free(ids);
    return st;
}
