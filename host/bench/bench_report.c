/* `decocl bench step` output (table, JSON, CSV) and `decocl bench compare`. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_result.h"
#include "bench/bench_step.h"

const char *dc_bench_phase_name(size_t i) { return i < DC_PHASE_COUNT ? dc_phase_name((enum dc_phase)i) : "optimiser"; }

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *dist_json(const struct dc_bench_dist *d) {
    return json_pack("{s:o,s:o,s:o}", "median", num(d->median), "p10", num(d->p10), "p90", num(d->p90));
}

static json_t *sizes_json(const size_t v[3]) { return json_pack("[I,I,I]", (json_int_t)v[0], (json_int_t)v[1], (json_int_t)v[2]); }

static const struct dc_bench_result *first_ok(const struct dc_bench_result *r, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (r[i].ok) return &r[i];
    return NULL;
}

/* Where and when: the machine and its load, so numbers from several runs can be told apart. */
static json_t *machine_json(void) {
    struct utsname u;
    char date[32] = "";
    time_t t = time(NULL);
    struct tm tm;
    if (gmtime_r(&t, &tm)) strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    double load[3] = {NAN, NAN, NAN};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = load[1] = load[2] = NAN;
        fclose(f);
    }
    return json_pack("{s:s,s:s,s:I,s:s,s:[o,o,o]}", "host", uname(&u) == 0 ? u.nodename : "?", "arch",
                     uname(&u) == 0 ? u.machine : "?", "online_cpus", (json_int_t)sysconf(_SC_NPROCESSORS_ONLN),
                     "date_utc", date, "loadavg", num(load[0]), num(load[1]), num(load[2]));
}

static json_t *result_json(const struct dc_bench_result *r) {
    if (!r->ok) return json_pack("{s:s,s:s}", "device_id", r->device_id, "error", r->error);
    json_t *ph = json_object();
    if (r->have_phases)
        for (size_t p = 0; p < DC_BENCH_PHASES; ++p) json_object_set_new(ph, dc_bench_phase_name(p), num(r->phases_ms[p]));
    double bytes = r->read_bytes + r->write_bytes;
    json_t *j = json_object();
    json_object_set_new(j, "device", json_string(r->device));
    json_object_set_new(j, "device_id", json_string(r->device_id));
    json_object_set_new(j, "driver", json_string(r->driver));
    json_object_set_new(j, "backend", json_string(r->backend));
    json_object_set_new(j, "gemm_provider", json_string(r->gemm_provider));
    json_object_set_new(j, "step_ms", dist_json(&r->step_ms));
    json_object_set_new(j, "forward_ms", dist_json(&r->forward_ms));
    json_object_set_new(j, "phases_ms", ph);
    json_object_set_new(j, "phases_step_ms", r->have_phases ? num(r->breakdown_step_ms) : json_null());
    json_object_set_new(j, "launches_per_step", json_integer((json_int_t)llround(r->launches)));
    json_object_set_new(j, "host_device_bytes_per_step", json_integer((json_int_t)llround(bytes)));
    json_object_set_new(j, "host_to_device_bytes_per_step", json_integer((json_int_t)llround(r->write_bytes)));
    json_object_set_new(j, "device_to_host_bytes_per_step", json_integer((json_int_t)llround(r->read_bytes)));
    json_object_set_new(j, "transfers_per_step", json_integer((json_int_t)llround(r->reads + r->writes)));
    json_object_set_new(j, "ops_per_step", json_integer((json_int_t)llround(r->ops)));
    json_object_set_new(j, "launches_per_forward", json_integer((json_int_t)llround(r->forward_launches)));
    json_object_set_new(j, "peak_host_mb", num(r->peak_host_mb));
    json_object_set_new(j, "peak_host_scope", json_string("this device's child process (VmHWM)"));
    json_object_set_new(j, "peak_device_mb", num(r->peak_device_mb));
    json_object_set_new(j, "gflop_per_step", num(r->gflop_step));
    json_object_set_new(j, "gflop_forward", num(r->gflop_forward));
    json_object_set_new(j, "gflop_counted_per_step", num(r->gflop_counted));
    json_object_set_new(j, "gflops", num(r->gflops));
    json_object_set_new(j, "sgemm_gflops", num(r->sgemm_gflops));
    json_object_set_new(j, "sgemm_provider", json_string(r->sgemm_provider));
    json_object_set_new(j, "sgemm_n", json_integer((json_int_t)r->sgemm_n));
    json_object_set_new(j, "sgemm_fraction", num(r->gflops / r->sgemm_gflops));
    json_object_set_new(j, "epoch_s", r->epoch_samples ? num(r->epoch_s) : json_null());
    json_object_set_new(j, "epoch_estimated", json_true());
    json_object_set_new(j, "epoch_samples", json_integer((json_int_t)r->epoch_samples));
    json_object_set_new(j, "epoch_batches", json_integer((json_int_t)r->epoch_batches));
    json_object_set_new(j, "epoch_source", json_string(r->epoch_source));
    json_object_set_new(j, "last_loss", num(r->last_loss));
    json_object_set_new(j, "other_processes_cores", num(r->foreign_cores));
    return j;
}

void dc_bench_print_json(FILE *out, const char *config, const struct dc_bench_result *r, size_t n) {
    json_t *root = json_object(), *arr = json_array();
    json_object_set_new(root, "config", json_string(config));
    const struct dc_bench_result *f = first_ok(r, n);
    if (f) {
        json_object_set_new(root, "dataset", json_string(f->dataset));
        json_object_set_new(root, "batch_size", json_integer((json_int_t)f->batch));
        json_object_set_new(root, "seq_lens", sizes_json(f->T));
        json_object_set_new(root, "feature_dims", sizes_json(f->D));
        json_object_set_new(root, "params", json_integer((json_int_t)f->params));
        json_object_set_new(root, "steps", json_integer(f->steps));
        json_object_set_new(root, "warmup", json_integer(f->warmup));
    }
    json_object_set_new(root, "machine", machine_json());
    for (size_t i = 0; i < n; ++i) json_array_append_new(arr, result_json(&r[i]));
    json_object_set_new(root, "results", arr);
    char *s = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    if (s) fprintf(out, "%s\n", s);
    free(s);
    json_decref(root);
}

void dc_bench_print_table(FILE *out, const char *config, const struct dc_bench_result *r, size_t n) {
    const struct dc_bench_result *f = first_ok(r, n);
    fprintf(out, "config %s", config);
    if (f)
        fprintf(out, ": %s, batch %zu, T %zu/%zu/%zu, D %zu/%zu/%zu, %zu parameter floats; %d steps after %d warm-up\n"
                     "GEMM work per step %.2f GFLOP (forward %.2f), analytic\n",
                f->dataset, f->batch, f->T[0], f->T[1], f->T[2], f->D[0], f->D[1], f->D[2], f->params, f->steps,
                f->warmup, f->gflop_step, f->gflop_forward);
    else fputc('\n', out);
    fprintf(out, "%-28s %26s %9s %8s %8s %6s %8s %9s %8s %8s %8s\n", "device", "step ms (p10-p90)", "fwd ms",
            "GFLOP/s", "SGEMM", "%SGEMM", "launches", "KB/step", "host MB", "dev MB", "epoch s*");
    for (size_t i = 0; i < n; ++i) {
        const struct dc_bench_result *x = &r[i];
        char name[29];
        snprintf(name, sizeof name, "%s", x->ok ? x->device : x->device_id);
        if (!x->ok) {
            fprintf(out, "%-28s failed: %s\n", name, x->error);
            continue;
        }
        char step[64];
        snprintf(step, sizeof step, "%.1f (%.1f-%.1f)", x->step_ms.median, x->step_ms.p10, x->step_ms.p90);
        fprintf(out, "%-28s %26s %9.1f %8.2f %8.2f %5.1f%% %8.0f %9.1f %8.0f %8.1f %8.1f\n", name, step,
                x->forward_ms.median, x->gflops, x->sgemm_gflops, 100.0 * x->gflops / x->sgemm_gflops, x->launches,
                (x->read_bytes + x->write_bytes) / 1024.0, x->peak_host_mb, x->peak_device_mb, x->epoch_s);
    }
    if (f && f->have_phases) {
        fprintf(out, "\nphases (ms, medians over steps synchronised at each phase start):\n%-28s", "device");
        for (size_t p = 0; p < DC_BENCH_PHASES; ++p) fprintf(out, " %12s", dc_bench_phase_name(p));
        fprintf(out, " %12s\n", "step");
        for (size_t i = 0; i < n; ++i) {
            if (!r[i].ok || !r[i].have_phases) continue;
            fprintf(out, "%-28.28s", r[i].device);
            for (size_t p = 0; p < DC_BENCH_PHASES; ++p) fprintf(out, " %12.1f", r[i].phases_ms[p]);
            fprintf(out, " %12.1f\n", r[i].breakdown_step_ms);
        }
    }
    if (f) {
        fprintf(out, "\ncores other processes kept busy during the timed steps:");
        for (size_t i = 0; i < n; ++i)
            if (r[i].ok) fprintf(out, "%s %s %.2f", i ? "," : "", r[i].device_id, r[i].foreign_cores);
        fprintf(out, "\n* epoch: estimated, ceil(%zu / %zu) steps x the step median (%s); SGEMM: best GEMM provider "
                     "at %zu^3; host MB: peak RSS of the device's own process\n",
                f->epoch_samples, f->batch, f->epoch_source, f->sgemm_n);
    }
}

static void csv_field(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; ++s) {
        if (*s == '"') fputc('"', out);
        fputc(*s == '\n' ? ' ' : *s, out);
    }
    fputc('"', out);
}

void dc_bench_print_csv(FILE *out, const char *config, const struct dc_bench_result *r, size_t n) {
    fprintf(out, "config,device_id,device,driver,gemm_provider,batch,step_ms_median,step_ms_p10,step_ms_p90,"
                 "forward_ms_median");
    for (size_t p = 0; p < DC_BENCH_PHASES; ++p) fprintf(out, ",phase_%s_ms", dc_bench_phase_name(p));
    fprintf(out, ",launches_per_step,host_device_bytes_per_step,peak_host_mb,peak_device_mb,gflop_per_step,gflops,"
                 "sgemm_gflops,epoch_s,error\n");
    for (size_t i = 0; i < n; ++i) {
        const struct dc_bench_result *x = &r[i];
        csv_field(out, config);
        fputc(',', out);
        csv_field(out, x->device_id);
        fputc(',', out);
        csv_field(out, x->device);
        fputc(',', out);
        csv_field(out, x->driver);
        fputc(',', out);
        csv_field(out, x->gemm_provider);
        if (!x->ok) {
            fprintf(out, ",,,,,");
            for (size_t p = 0; p < DC_BENCH_PHASES; ++p) fputc(',', out);
            fprintf(out, ",,,,,,,,");
            csv_field(out, x->error);
            fputc('\n', out);
            continue;
        }
        fprintf(out, ",%zu,%.3f,%.3f,%.3f,%.3f", x->batch, x->step_ms.median, x->step_ms.p10, x->step_ms.p90,
                x->forward_ms.median);
        for (size_t p = 0; p < DC_BENCH_PHASES; ++p)
            if (x->have_phases) fprintf(out, ",%.3f", x->phases_ms[p]);
            else fputc(',', out);
        fprintf(out, ",%.0f,%.0f,%.1f,%.1f,%.4f,%.3f,%.3f,", x->launches, x->read_bytes + x->write_bytes,
                x->peak_host_mb, x->peak_device_mb, x->gflop_step, x->gflops, x->sgemm_gflops);
        if (x->epoch_samples) fprintf(out, "%.2f", x->epoch_s);
        fprintf(out, ",\n");
    }
}

/* ---- bench compare ---- */

static double jnum(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void cell(FILE *out, const char *fmt, double v) {
    if (isfinite(v)) fprintf(out, fmt, v);
    else fputs(" - |", out);
}

dc_status dc_bench_compare(const char *const *files, size_t n, FILE *out, struct dc_error *err) {
    json_t **docs = calloc(n ? n : 1, sizeof *docs);
    if (!docs) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    dc_status st = DC_OK;
    for (size_t i = 0; i < n; ++i) {
        json_error_t je;
        docs[i] = json_load_file(files[i], 0, &je);
        if (!docs[i]) {
            st = dc_set_error(err, DC_ERR_FORMAT, "%s:%d: %s", files[i], je.line, je.text);
            goto done;
        }
        if (!json_is_array(json_object_get(docs[i], "results")) || !json_is_string(json_object_get(docs[i], "config"))) {
            st = dc_set_error(err, DC_ERR_FORMAT, "%s: not a `decocl bench step --json` result (no config/results)",
                              files[i]);
            goto done;
        }
    }
    fprintf(out, "| config | batch | machine | device | driver | step ms (p10-p90) | speed-up over ref | GFLOP/s | "
                 "%% of SGEMM | launches/step | host-device bytes/step | epoch s (est.) |\n"
                 "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < n; ++i) {
        const char *cfg = json_string_value(json_object_get(docs[i], "config"));
        json_int_t batch = json_integer_value(json_object_get(docs[i], "batch_size"));
        const char *host = json_string_value(json_object_get(json_object_get(docs[i], "machine"), "host"));
        size_t k;
        json_t *res;
        json_array_foreach(json_object_get(docs[i], "results"), k, res) {
            const char *dev = json_string_value(json_object_get(res, "device"));
            const char *id = json_string_value(json_object_get(res, "device_id"));
            fprintf(out, "| %s | %lld | %s | %s |", base_name(cfg), (long long)batch, host ? host : "-",
                    dev ? dev : (id ? id : "?"));
            const char *error = json_string_value(json_object_get(res, "error"));
            if (error) {
                fprintf(out, " failed: %.80s | | | | | | | |\n", error);
                continue;
            }
            const char *drv = json_string_value(json_object_get(res, "driver"));
            json_t *step = json_object_get(res, "step_ms");
            double med = jnum(step, "median");
            fprintf(out, " %s | %.1f (%.1f-%.1f) |", drv ? drv : "-", med, jnum(step, "p10"), jnum(step, "p90"));
            /* ref of the same config and batch, from any of the files (the first found) */
            double ref = NAN;
            for (size_t a = 0; a < n && isnan(ref); ++a) {
                const char *c2 = json_string_value(json_object_get(docs[a], "config"));
                if (strcmp(base_name(c2), base_name(cfg)) != 0 ||
                    json_integer_value(json_object_get(docs[a], "batch_size")) != batch)
                    continue;
                size_t b;
                json_t *r2;
                json_array_foreach(json_object_get(docs[a], "results"), b, r2) {
                    const char *bk = json_string_value(json_object_get(r2, "backend"));
                    if (bk && strcmp(bk, "ref") == 0) {
                        ref = jnum(json_object_get(r2, "step_ms"), "median");
                        break;
                    }
                }
            }
            cell(out, " %.2fx |", ref / med);
            double g = jnum(res, "gflops"), sg = jnum(res, "sgemm_gflops");
            cell(out, " %.2f |", g);
            cell(out, " %.1f%% |", 100.0 * g / sg);
            cell(out, " %.0f |", jnum(res, "launches_per_step"));
            cell(out, " %.0f |", jnum(res, "host_device_bytes_per_step"));
            cell(out, " %.1f |", jnum(res, "epoch_s"));
            fputc('\n', out);
        }
    }
done:
    for (size_t i = 0; i < n; ++i) json_decref(docs[i]);
    free(docs);
    return st;
}
