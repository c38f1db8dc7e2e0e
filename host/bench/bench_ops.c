/* `decocl bench ops`: per op and shape, the time per call on the chosen device next to ref. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/op_cases.h"
#include "core/log.h"

#define BENCH_BATCHES 7       /* timed batches; the median is reported */
#define BENCH_BATCH_SECONDS 0.02
#define BENCH_MAX_CALLS 2000

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static bool op_selected(const char *list, const char *name) {
    if (!list) return true;
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, name, n) == 0) return true;
        p += n + (end != NULL);
    }
    return false;
}

/* Median seconds per call of case c on be (calls per batch calibrated to ~20 ms). */
static dc_status time_case(struct dc_backend *be, const struct dc_op_case *c, const float *host, int batches,
                           double *per_call) {
    struct dc_case_buffers b;
    dc_status st = dc_case_buffers_create(be, c, host, &b);
    if (st != DC_OK) return st;
    /* warm-up: first launches compile work-group functions on some drivers */
    if ((st = c->run(be, c, b.t)) != DC_OK || (st = dc_sync(be)) != DC_OK) goto done;
    double t0 = dc_now_seconds();
    if ((st = c->run(be, c, b.t)) != DC_OK || (st = dc_sync(be)) != DC_OK) goto done;
    double once = dc_now_seconds() - t0;
    int calls = once > 0 ? (int)(BENCH_BATCH_SECONDS / once) : BENCH_MAX_CALLS;
    if (calls < 1) calls = 1;
    if (calls > BENCH_MAX_CALLS) calls = BENCH_MAX_CALLS;
    double times[64];
    if (batches > 64) batches = 64;
    for (int r = 0; r < batches; ++r) {
        double s = dc_now_seconds();
        for (int i = 0; i < calls && st == DC_OK; ++i) st = c->run(be, c, b.t);
        if (st == DC_OK) st = dc_sync(be);
        if (st != DC_OK) goto done;
        times[r] = (dc_now_seconds() - s) / calls;
    }
    qsort(times, (size_t)batches, sizeof times[0], cmp_double);
    *per_call = times[batches / 2];
done:
    dc_case_buffers_free(be, &b);
    return st;
}

static void json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; ++s) {
        if (*s == '"' || *s == '\\') fprintf(out, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(out, "\\u%04x", *s);
        else fputc(*s, out);
    }
    fputc('"', out);
}

dc_status dc_bench_ops(const struct dc_backend_options *be_opt, const struct dc_bench_ops_options *o, FILE *out,
                       struct dc_error *err) {
    struct dc_backend *dev = NULL, *ref = NULL;
    dc_status st = dc_backend_open(&dev, be_opt, err);
    if (st != DC_OK) return st;
    bool dev_is_ref = strcmp(dc_backend_name(dev), "ref") == 0;
    if (!dev_is_ref && (st = dc_backend_open_ref(&ref, err)) != DC_OK) {
        dc_backend_close(dev);
        return st;
    }
    struct dc_op_case *cases;
    size_t n = dc_op_cases(&cases, true);
    int batches = o->reps > 0 ? o->reps : BENCH_BATCHES;
    size_t selected = 0;
    for (int op = 0; op < DC_OP_COUNT; ++op)
        if (op_selected(o->ops, dc_op_name((enum dc_op)op))) ++selected;
    if (selected == 0) {
        st = dc_set_error(err, DC_ERR_ARG, "--ops '%s' names no op", o->ops);
        goto out;
    }
    const char *provider = dc_backend_gemm_provider(dev) == DC_GEMM_CLBLAST ? "clblast" : "own";
    if (o->json) {
        fprintf(out, "{\"device\": ");
        json_string(out, dc_backend_device_name(dev));
        fprintf(out, ", \"driver\": ");
        json_string(out, dc_backend_driver(dev));
        fprintf(out, ", \"backend\": \"%s\", \"gemm_provider\": \"%s\", \"results\": [", dc_backend_name(dev), provider);
    } else {
        fprintf(out, "device: %s (%s), gemm: %s\n", dc_backend_device_name(dev), dc_backend_driver(dev), provider);
        fprintf(out, "%-14s %-44s %12s %12s %9s %9s\n", "op", "case", "device us", "ref us", "speedup", "GFLOP/s");
    }
    bool first = true;
    for (size_t i = 0; i < n; ++i) {
        const struct dc_op_case *c = &cases[i];
        if (!op_selected(o->ops, dc_op_name(c->op))) continue;
        size_t total;
        float *host = dc_case_host_data(c, 1234 + i, &total);
        if (!host) {
            st = dc_set_error(err, DC_ERR_NOMEM, "bench inputs for %s", c->label);
            goto out;
        }
        double t_dev = NAN, t_ref = NAN;
        bool dev_ok = dc_backend_supports(dev, c->op);
        if (dev_ok && (st = time_case(dev, c, host, batches, &t_dev)) != DC_OK) {
            *err = *dc_backend_error(dev);
            free(host);
            goto out;
        }
        if (ref && (st = time_case(ref, c, host, batches, &t_ref)) != DC_OK) {
            *err = *dc_backend_error(ref);
            free(host);
            goto out;
        }
        free(host);
        double gflops = c->flops > 0 && dev_ok ? c->flops / t_dev * 1e-9 : NAN;
        double speedup = ref && dev_ok ? t_ref / t_dev : NAN;
        if (o->json) {
            fprintf(out, "%s\n  {\"op\": \"%s\", \"case\": ", first ? "" : ",", dc_op_name(c->op));
            json_string(out, c->label);
            if (dev_ok) fprintf(out, ", \"device_us\": %.3f", 1e6 * t_dev);
            else fprintf(out, ", \"device_us\": null, \"unsupported\": true");
            if (ref) fprintf(out, ", \"ref_us\": %.3f", 1e6 * t_ref);
            if (!isnan(speedup)) fprintf(out, ", \"speedup\": %.3f", speedup);
            if (!isnan(gflops)) fprintf(out, ", \"gflops\": %.3f", gflops);
            fputc('}', out);
        } else {
            char dbuf[32], rbuf[32], sbuf[32], gbuf[32];
            snprintf(dbuf, sizeof dbuf, dev_ok ? "%.1f" : "unsupported", 1e6 * t_dev);
            snprintf(rbuf, sizeof rbuf, ref ? "%.1f" : "-", 1e6 * t_ref);
            snprintf(sbuf, sizeof sbuf, isnan(speedup) ? "-" : "%.2fx", speedup);
            snprintf(gbuf, sizeof gbuf, isnan(gflops) ? "-" : "%.1f", gflops);
            fprintf(out, "%-14s %-44s %12s %12s %9s %9s\n", dc_op_name(c->op), c->label, dbuf, rbuf, sbuf, gbuf);
        }
        first = false;
    }
    if (o->json) fprintf(out, "\n]}\n");
out:
    free(cases);
    dc_backend_close(ref);
    dc_backend_close(dev);
    return st;
}
