/* The training loop of `decocl train` and the evaluation helpers; see train.h. */
#include "train/train.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "model/checkpoint.h"
#include "train/optim.h"
#include "train/schedule.h"
#include "train/step.h"

/* ---- small helpers ---- */

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_printf(struct sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *s, const char *fmt, ...) {
    if (s->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s->p ? s->p + s->len : NULL, s->p ? s->cap - s->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            s->oom = true;
            return;
        }
        if (s->p && s->len + (size_t)n < s->cap) {
            s->len += (size_t)n;
            return;
        }
        size_t nc = (s->cap ? s->cap * 2 : 4096) + (size_t)n + 1;
        char *np = realloc(s->p, nc);
        if (!np) {
            s->oom = true;
            return;
        }
        s->p = np;
        s->cap = nc;
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

dc_status dc_write_file_atomic(const char *path, const char *data, size_t len, struct dc_error *err) {
    char tmp[2048];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        return dc_set_error(err, DC_ERR_ARG, "%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return dc_set_error(err, DC_ERR_IO, "%s: %s", tmp, strerror(errno));
    bool ok = fwrite(data, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        e = errno;
    }
    if (!ok) {
        remove(tmp);
        return dc_set_error(err, DC_ERR_IO, "%s: %s", path, strerror(e));
    }
    return DC_OK;
}

static dc_status write_json_atomic(const char *path, json_t *j, struct dc_error *err) {
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    if (!text) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    size_t n = strlen(text);
    char *t2 = realloc(text, n + 2);
    if (!t2) {
        free(text);
        return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    }
    t2[n] = '\n';
    t2[n + 1] = 0;
    dc_status st = dc_write_file_atomic(path, t2, n + 1, err);
    free(t2);
    return st;
}

static dc_status mkdir_p(const char *path, struct dc_error *err) {
    char buf[2048];
    if (strlen(path) >= sizeof buf) return dc_set_error(err, DC_ERR_ARG, "%s: path too long", path);
    strcpy(buf, path);
    for (char *p = buf + 1; *p; ++p) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return dc_set_error(err, DC_ERR_IO, "%s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return dc_set_error(err, DC_ERR_IO, "%s: %s", buf, strerror(errno));
    struct stat sb;
    if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode)) return dc_set_error(err, DC_ERR_IO, "%s: not a directory", buf);
    return DC_OK;
}

/* ---- shared with eval/predict ---- */

dc_status dc_model_cache_get(struct dc_model_cache *c, size_t B, const size_t T[3], struct dc_decalign **out,
                             struct dc_error *err) {
    for (size_t i = 0; i < c->n; ++i)
        if (c->e[i].B == B && !memcmp(c->e[i].T, T, sizeof c->e[i].T)) {
            *out = c->e[i].m;
            return DC_OK;
        }
    size_t slot = c->n;
    if (slot == DC_MODEL_CACHE_MAX) { /* evict the last one */
        slot = DC_MODEL_CACHE_MAX - 1;
        dc_decalign_free(c->e[slot].m);
        c->n--;
    }
    struct dc_decalign *m;
    dc_status st = dc_decalign_create(c->be, c->cfg, c->pl, B, T, &m, err);
    if (st != DC_OK) return st;
    if (c->use_class_weights) dc_decalign_set_class_weights(m, c->class_weights);
    c->e[slot].B = B;
    memcpy(c->e[slot].T, T, sizeof c->e[slot].T);
    c->e[slot].m = m;
    c->n++;
    *out = m;
    return DC_OK;
}

void dc_model_cache_free(struct dc_model_cache *c) {
    for (size_t i = 0; i < c->n; ++i) dc_decalign_free(c->e[i].m);
    c->n = 0;
}

dc_status dc_train_class_weights(const struct dc_model_config *cfg, const struct dc_split *train, float *w, bool *use,
                                 struct dc_error *err) {
    *use = false;
    if (!cfg->classification) return DC_OK;
    size_t C = cfg->num_classes;
    double count[DC_CFG_MAX_CLASSES] = {0};
    for (size_t i = 0; i < train->n; ++i) {
        float y = train->labels[i];
        if (!(y >= 0 && y < (float)C) || y != floorf(y))
            return dc_set_error(err, DC_ERR_ARG, "training label %zu is %g, not a class id in [0, %zu)", i, (double)y, C);
        count[(size_t)y] += 1;
    }
    if (cfg->class_weight == DC_CFG_CLASS_WEIGHT_EXPLICIT) {
        memcpy(w, cfg->class_weights, C * sizeof(float));
        *use = true;
    } else if (cfg->class_weight == DC_CFG_CLASS_WEIGHT_BALANCED) {
        for (size_t k = 0; k < C; ++k)
            w[k] = (float)((double)train->n / (count[k] > 1 ? count[k] : 1) / (double)C);
        *use = true;
    }
    return DC_OK;
}

void dc_train_dataset_options(const struct dc_model_config *cfg, struct dc_dataset_options *opt) {
    memset(opt, 0, sizeof *opt);
    for (int m = 0; m < DC_MOD_COUNT; ++m)
        opt->standardize[m] = cfg->need_feature_standardized && cfg->feature_standardize_modalities[m];
    opt->pct_low = cfg->feature_clip_percentiles[0];
    opt->pct_high = cfg->feature_clip_percentiles[1];
}

enum dc_dataset_kind dc_train_kind(const struct dc_dataset *ds, const struct dc_model_config *cfg) {
    if (ds && ds->kind != DC_KIND_UNKNOWN) return ds->kind;
    static const enum dc_dataset_kind kinds[] = {DC_KIND_MOSI, DC_KIND_MOSEI, DC_KIND_SIMS, DC_KIND_IEMOCAP};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; ++i)
        if (!strcasecmp(cfg->dataset_name, dc_dataset_kind_name(kinds[i]))) return kinds[i];
    return DC_KIND_UNKNOWN;
}

dc_status dc_eval_split(struct dc_model_cache *mc, struct dc_mem *params, const struct dc_split *s, size_t batch_size,
                        enum dc_dataset_kind kind, float **pred, double *loss, struct dc_metrics *m,
                        struct dc_error *err) {
    *pred = NULL;
    size_t O = dc_model_config_out_dim(mc->cfg);
    struct dc_batcher bt = {0};
    struct dc_batch batch = {0};
    float *out = malloc(s->n * O * sizeof(float));
    if (!out) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    dc_status st = dc_batcher_init(&bt, s->n, batch_size < s->n ? batch_size : s->n, false, 0, err);
    if (st != DC_OK) goto done;
    dc_batcher_start_epoch(&bt, 0);
    double sum = 0;
    size_t nb = 0, pos = 0;
    const size_t *idx;
    size_t n;
    while ((n = dc_batcher_next(&bt, &idx)) > 0) {
        if ((st = dc_batch_gather(&batch, s, idx, n, err)) != DC_OK) goto done;
        struct dc_decalign *model;
        if ((st = dc_model_cache_get(mc, n, s->seq_len, &model, err)) != DC_OK) goto done;
        struct dc_decalign_losses l;
        const float *const xs[3] = {batch.x[0], batch.x[1], batch.x[2]};
        if ((st = dc_decalign_forward(model, params, xs, batch.labels, false, 0, 0, &l, err)) != DC_OK) goto done;
        memcpy(out + pos * O, dc_decalign_output(model), n * O * sizeof(float));
        pos += n;
        sum += l.task;
        nb++;
    }
    *loss = nb ? sum / (double)nb : 0;
    if (m && (st = dc_metrics_compute(kind, out, O, s->labels, s->n, m, err)) != DC_OK) goto done;
    *pred = out;
    out = NULL;
done:
    free(out);
    dc_batch_free(&batch);
    dc_batcher_free(&bt);
    return st;
}

static json_t *stats_json(const struct dc_dataset *ds) {
    json_t *o = json_object();
    for (int m = 0; m < DC_MOD_COUNT; ++m) {
        const struct dc_feature_stats *s = &ds->stats[m];
        if (!ds->standardized[m] || !s->dim) continue;
        json_t *v = json_array();
        for (size_t i = 0; i < DC_STATS_ROWS * s->dim; ++i) json_array_append_new(v, json_real((double)s->values[i]));
        json_object_set_new(o, dc_modality_name((enum dc_modality)m),
                            json_pack("{sI sf sf so}", "dim", (json_int_t)s->dim, "pct_low", s->pct_low, "pct_high",
                                      s->pct_high, "values", v));
    }
    return o;
}

dc_status dc_run_checkpoint_open(const char *path, struct dc_run_checkpoint *ck, struct dc_error *err) {
    memset(ck, 0, sizeof *ck);
    dc_status st = dc_st_read(path, &ck->file, err);
    if (st != DC_OK) return st;
    const char *cj = dc_st_meta_get(&ck->file.meta, "config");
    if (!cj) {
        st = dc_set_error(err, DC_ERR_FORMAT, "%s: no \"config\" in the metadata (not written by decocl train)", path);
        goto fail;
    }
    char label[1100];
    snprintf(label, sizeof label, "%s metadata config", path);
    if ((st = dc_model_config_parse_json(&ck->cfg, cj, strlen(cj), label, err)) != DC_OK) goto fail;
    const char *sj = dc_st_meta_get(&ck->file.meta, "feature_stats");
    if (sj) {
        json_error_t je;
        json_t *root = json_loads(sj, 0, &je);
        if (!json_is_object(root)) {
            json_decref(root);
            st = dc_set_error(err, DC_ERR_FORMAT, "%s: bad feature_stats metadata", path);
            goto fail;
        }
        for (int m = 0; m < DC_MOD_COUNT && st == DC_OK; ++m) {
            json_t *e = json_object_get(root, dc_modality_name((enum dc_modality)m));
            if (!e) continue;
            json_int_t dim = json_integer_value(json_object_get(e, "dim"));
            json_t *vals = json_object_get(e, "values");
            if (dim <= 0 || !json_is_array(vals) || json_array_size(vals) != (size_t)dim * DC_STATS_ROWS) {
                st = dc_set_error(err, DC_ERR_FORMAT, "%s: bad feature_stats for %s", path,
                                  dc_modality_name((enum dc_modality)m));
                break;
            }
            float *v = malloc((size_t)dim * DC_STATS_ROWS * sizeof(float));
            if (!v) {
                st = dc_set_error(err, DC_ERR_NOMEM, "out of memory");
                break;
            }
            for (size_t i = 0; i < (size_t)dim * DC_STATS_ROWS; ++i)
                v[i] = (float)json_number_value(json_array_get(vals, i));
            st = dc_feature_stats_import(&ck->stats[m], (size_t)dim, v,
                                         json_number_value(json_object_get(e, "pct_low")),
                                         json_number_value(json_object_get(e, "pct_high")), err);
            free(v);
        }
        json_decref(root);
        if (st != DC_OK) goto fail;
    }
    return DC_OK;
fail:
    dc_run_checkpoint_close(ck);
    return st;
}

void dc_run_checkpoint_close(struct dc_run_checkpoint *ck) {
    for (int m = 0; m < DC_MOD_COUNT; ++m) dc_feature_stats_free(&ck->stats[m]);
    dc_st_free(&ck->file);
    memset(ck, 0, sizeof *ck);
}

/* ---- metric selection ---- */

struct metric_sel {
    bool is_loss;
    bool is_f1acc; /* the reference's F1Acc_score: 0.55 F1_score + 0.45 Acc_2 */
    char name[32];
    bool maximize;
};

/* The reference trainer's (trains/ATIO.py) default selection metric: WAF1 for IEMOCAP,
 * F1_score for other classification, else the validation task loss. */
static const char *default_selection(enum dc_dataset_kind kind, bool classification) {
    if (!classification) return "loss";
    return kind == DC_KIND_IEMOCAP ? "WAF1" : "F1_score";
}

static dc_status resolve_metric(const char *name, const char *mode, const char *key, enum dc_dataset_kind kind,
                                const struct dc_metrics *known, struct metric_sel *out, struct dc_error *err) {
    memset(out, 0, sizeof *out);
    if (!strcasecmp(name, "loss") || !strcasecmp(name, "mosi") || !strcasecmp(name, "mosei") ||
        !strcasecmp(name, "sims") || !strcasecmp(name, "iemocap")) {
        out->is_loss = true;
    } else if (!strcmp(name, "F1Acc_score") || !strcmp(name, "F1_Acc_score") || !strcmp(name, "F1Acc")) {
        bool f1 = false, acc = false;
        for (int i = 0; i < known->count; ++i) {
            f1 |= !strcmp(known->names[i], "F1_score");
            acc |= !strcmp(known->names[i], "Acc_2");
        }
        if (!f1 || !acc)
            return dc_set_error(err, DC_ERR_ARG, "%s '%s' needs F1_score and Acc_2, which %s does not report", key,
                                name, dc_dataset_kind_name(kind));
        out->is_f1acc = true;
    } else {
        bool found = false;
        for (int i = 0; i < known->count; ++i) found |= !strcmp(known->names[i], name);
        if (!found)
            return dc_set_error(err, DC_ERR_ARG, "%s '%s' is not a metric of %s (nor loss or a dataset name)", key, name,
                                dc_dataset_kind_name(kind));
    }
    snprintf(out->name, sizeof out->name, "%s", name);
    /* ATIO.py _metric_mode: names containing acc, f1 or corr are maximised */
    char lower[32];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof lower; ++i) lower[i] = (char)tolower((unsigned char)name[i]);
    lower[i] = 0;
    if (mode[0]) out->maximize = !strcmp(mode, "max");
    else out->maximize = strstr(lower, "acc") || strstr(lower, "f1") || strstr(lower, "corr");
    return DC_OK;
}

static double metric_value(const struct metric_sel *s, const struct dc_metrics *m, double loss) {
    if (s->is_loss) return dc_round_np(loss, 4);
    double v = NAN;
    if (s->is_f1acc) {
        double f1 = NAN, acc = NAN;
        dc_metrics_get(m, "F1_score", &f1);
        dc_metrics_get(m, "Acc_2", &acc);
        return 0.55 * f1 + 0.45 * acc;
    }
    dc_metrics_get(m, s->name, &v);
    return v;
}

/* The metric names of kind (a dummy computation). */
static dc_status kind_metrics(enum dc_dataset_kind kind, size_t O, struct dc_metrics *m, struct dc_error *err) {
    float pred[2 * DC_METRICS_MAX_CLASSES] = {0.5f, -0.5f}, labels[2] = {1, -1};
    if (kind == DC_KIND_IEMOCAP) {
        labels[0] = 0;
        labels[1] = 1;
    }
    return dc_metrics_compute(kind, pred, kind == DC_KIND_IEMOCAP ? O : 1, labels, 2, m, err);
}

/* ---- the training run ---- */

struct run {
    const struct dc_train_options *o;
    struct dc_model_config cfg;
    struct dc_dataset *ds;
    enum dc_dataset_kind kind;
    struct dc_param_layout pl;
    struct dc_backend *be;
    struct dc_mem *params, *grads;
    float *params_h, *best_h;
    struct dc_model_cache mc;
    struct metric_sel sel, sched;
    char dir[1024];
    char *cfg_json, *stats_text;
    struct sbuf csv, jsonl;
    bool csv_header;
    json_t *runs; /* results.json "runs" */
    const char *config_path; /* results.json "config" */
    char config_path_buf[2048];
    bool resuming;            /* o->resume: seeds may continue from their last/optim files */
    size_t stop_after, batches_run;
    size_t kill_after; /* test hook DECOCL_TRAIN_KILL_AFTER_BATCHES: SIGKILL itself after N batches */
    bool interrupted;
    float *m_h, *v_h;         /* Adam moments on the host (checkpoints) */
};

static void run_free(struct run *r) {
    dc_model_cache_free(&r->mc);
    if (r->be) {
        if (r->params) dc_mem_free(r->be, r->params);
        if (r->grads) dc_mem_free(r->be, r->grads);
    }
    dc_backend_close(r->be);
    free(r->params_h);
    free(r->best_h);
    free(r->m_h);
    free(r->v_h);
    dc_param_layout_free(&r->pl);
    dc_dataset_free(r->ds);
    free(r->cfg_json);
    free(r->stats_text);
    free(r->csv.p);
    free(r->jsonl.p);
    json_decref(r->runs);
}

static dc_status be_fail(struct run *r, dc_status st, const char *what, struct dc_error *err) {
    return dc_set_error(err, st, "%s: %s", what, dc_backend_error(r->be)->msg);
}

static dc_status path_in(const struct run *r, char *buf, size_t cap, const char *name, struct dc_error *err) {
    if ((size_t)snprintf(buf, cap, "%s/%s", r->dir, name) >= cap)
        return dc_set_error(err, DC_ERR_ARG, "%s/%s: path too long", r->dir, name);
    return DC_OK;
}

struct epoch_row {
    uint64_t seed;
    size_t epoch;
    double lr, seconds;
    struct dc_decalign_losses train;
    double valid_loss;
    struct dc_metrics valid;
    bool best;
};

static dc_status append_row(struct run *r, const struct epoch_row *e, struct dc_error *err) {
    static const char *const tnames[6] = {"train_loss", "train_task", "train_dec", "train_hete", "train_homo", "train_ct"};
    const double tv[6] = {e->train.total, e->train.task, e->train.dec, e->train.hete, e->train.homo, e->train.ct};
    if (!r->csv_header) {
        sb_printf(&r->csv, "seed,epoch,lr,seconds");
        for (int i = 0; i < 6; ++i) sb_printf(&r->csv, ",%s", tnames[i]);
        sb_printf(&r->csv, ",valid_loss");
        for (int i = 0; i < e->valid.count; ++i) sb_printf(&r->csv, ",valid_%s", e->valid.names[i]);
        sb_printf(&r->csv, ",best\n");
        r->csv_header = true;
    }
    sb_printf(&r->csv, "%llu,%zu,%.9g,%.3f", (unsigned long long)e->seed, e->epoch, e->lr, e->seconds);
    for (int i = 0; i < 6; ++i) sb_printf(&r->csv, ",%.9g", tv[i]);
    sb_printf(&r->csv, ",%.9g", e->valid_loss);
    for (int i = 0; i < e->valid.count; ++i) sb_printf(&r->csv, ",%.4f", e->valid.values[i]);
    sb_printf(&r->csv, ",%d\n", e->best ? 1 : 0);

    json_t *j = json_object();
    json_object_set_new(j, "seed", json_integer((json_int_t)e->seed));
    json_object_set_new(j, "epoch", json_integer((json_int_t)e->epoch));
    json_object_set_new(j, "lr", json_real(e->lr));
    json_object_set_new(j, "seconds", json_real(dc_round_np(e->seconds, 3)));
    for (int i = 0; i < 6; ++i) json_object_set_new(j, tnames[i], isfinite(tv[i]) ? json_real(tv[i]) : json_null());
    json_object_set_new(j, "valid_loss", isfinite(e->valid_loss) ? json_real(e->valid_loss) : json_null());
    json_t *vm = json_object();
    for (int i = 0; i < e->valid.count; ++i) json_object_set_new(vm, e->valid.names[i], json_real(e->valid.values[i]));
    json_object_set_new(j, "valid", vm);
    json_object_set_new(j, "best", json_boolean(e->best));
    char *t = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(j);
    if (!t) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    sb_printf(&r->jsonl, "%s\n", t);
    free(t);
    if (r->csv.oom || r->jsonl.oom) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    char path[2048];
    dc_status st = path_in(r, path, sizeof path, "metrics.csv", err);
    if (st == DC_OK) st = dc_write_file_atomic(path, r->csv.p, r->csv.len, err);
    if (st == DC_OK) st = path_in(r, path, sizeof path, "metrics.jsonl", err);
    if (st == DC_OK) st = dc_write_file_atomic(path, r->jsonl.p, r->jsonl.len, err);
    return st;
}

static dc_status save_best(struct run *r, uint64_t seed, size_t epoch, struct dc_error *err) {
    char sub[64], path[2048], seed_s[32], epoch_s[32];
    snprintf(sub, sizeof sub, "seed-%llu", (unsigned long long)seed);
    dc_status st = path_in(r, path, sizeof path, sub, err);
    if (st == DC_OK) st = mkdir_p(path, err);
    if (st != DC_OK) return st;
    snprintf(sub, sizeof sub, "seed-%llu/best.safetensors", (unsigned long long)seed);
    if ((st = path_in(r, path, sizeof path, sub, err)) != DC_OK) return st;
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)seed);
    snprintf(epoch_s, sizeof epoch_s, "%zu", epoch);
    const struct dc_st_kv meta[] = {
        {"config", r->cfg_json},
        {"dataset", dc_dataset_kind_name(r->kind)},
        {"seed", seed_s},
        {"epoch", epoch_s},
        {"feature_stats", r->stats_text},
    };
    return dc_checkpoint_save(path, &r->pl, r->best_h, meta, sizeof meta / sizeof meta[0], err);
}

static void log_line(const struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(const struct run *r, const char *fmt, ...) {
    if (!r->o->log) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(r->o->log, fmt, ap);
    va_end(ap);
    fflush(r->o->log);
}

/* ---- stop / resume state (see train.h) ---- */

static bool stop_requested(const struct run *r) {
    if (r->o->stop && *r->o->stop) return true;
    return r->stop_after && r->batches_run >= r->stop_after;
}

/* What a checkpoint holds besides the tensors. */
struct seed_state {
    uint64_t step;
    size_t epochs_done, batch; /* batch: batches done of epoch epochs_done + 1 */
    double lr, elapsed;
    struct dc_plateau plat;
    struct dc_early_stop es;
    struct dc_decalign_losses sums; /* partial train-loss sums of the interrupted epoch */
};

static json_t *jd(double v) {
    char b[64];
    snprintf(b, sizeof b, "%a", v);
    return json_string(b);
}

static bool gd(json_t *o, const char *key, double *v) {
    const char *t = json_string_value(json_object_get(o, key));
    if (!t) return false;
    char *end;
    *v = strtod(t, &end);
    return end != t && *end == 0;
}

static bool gz(json_t *o, const char *key, size_t *v) {
    json_t *j = json_object_get(o, key);
    if (!json_is_integer(j) || json_integer_value(j) < 0) return false;
    *v = (size_t)json_integer_value(j);
    return true;
}

static dc_status seed_path(const struct run *r, uint64_t seed, const char *file, char *buf, size_t cap,
                           struct dc_error *err) {
    char sub[128];
    snprintf(sub, sizeof sub, "seed-%llu%s%s", (unsigned long long)seed, file ? "/" : "", file ? file : "");
    return path_in(r, buf, cap, sub, err);
}

/* last.safetensors then optim.safetensors, each atomic; both stamped with step/epoch/batch. */
static dc_status save_state(struct run *r, uint64_t seed, struct dc_optim *opt, const struct seed_state *s,
                            struct dc_error *err) {
    size_t total = r->pl.total;
    char path[2048], seed_s[32], step_s[32], epoch_s[32], batch_s[32], lr_s[64];
    dc_status st = seed_path(r, seed, NULL, path, sizeof path, err);
    if (st == DC_OK) st = mkdir_p(path, err);
    if (st != DC_OK) return st;
    if ((st = dc_download(r->be, r->params_h, dc_view_of(r->params, 0, total))) != DC_OK ||
        (st = dc_download(r->be, r->m_h, dc_view_of(dc_optim_exp_avg(opt), 0, total))) != DC_OK ||
        (st = dc_download(r->be, r->v_h, dc_view_of(dc_optim_exp_avg_sq(opt), 0, total))) != DC_OK)
        return be_fail(r, st, "download the training state", err);
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)seed);
    snprintf(step_s, sizeof step_s, "%llu", (unsigned long long)s->step);
    snprintf(epoch_s, sizeof epoch_s, "%zu", s->epochs_done);
    snprintf(batch_s, sizeof batch_s, "%zu", s->batch);
    snprintf(lr_s, sizeof lr_s, "%a", s->lr);
    const struct dc_st_kv lmeta[] = {
        {"config", r->cfg_json}, {"dataset", dc_dataset_kind_name(r->kind)}, {"seed", seed_s}, {"step", step_s},
        {"epoch", epoch_s},      {"batch", batch_s},                         {"feature_stats", r->stats_text},
    };
    if ((st = seed_path(r, seed, "last.safetensors", path, sizeof path, err)) != DC_OK) return st;
    if ((st = dc_checkpoint_save(path, &r->pl, r->params_h, lmeta, sizeof lmeta / sizeof lmeta[0], err)) != DC_OK)
        return st;

    json_t *j = json_object();
    json_object_set_new(j, "plateau", json_pack("{so so sI sb}", "best", jd(s->plat.best), "lr", jd(s->plat.lr),
                                                 "bad_epochs", (json_int_t)s->plat.bad_epochs, "has_best",
                                                 (int)s->plat.has_best));
    json_object_set_new(j, "early_stop",
                        json_pack("{so sI}", "best", jd(s->es.best), "best_epoch", (json_int_t)s->es.best_epoch));
    json_object_set_new(j, "train_sums",
                        json_pack("{so so so so so so}", "task", jd(s->sums.task), "dec", jd(s->sums.dec), "hete",
                                  jd(s->sums.hete), "homo", jd(s->sums.homo), "ct", jd(s->sums.ct), "total",
                                  jd(s->sums.total)));
    json_object_set_new(j, "elapsed", jd(s->elapsed));
    json_object_set_new(j, "shuffle", json_pack("{sI sI}", "seed", (json_int_t)seed, "epoch", (json_int_t)s->epochs_done));
    json_object_set_new(j, "config_path", json_string(r->config_path));
    char *state = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!state) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    const struct dc_st_kv ometa[] = {{"seed", seed_s}, {"step", step_s}, {"epoch", epoch_s},
                                     {"batch", batch_s}, {"lr", lr_s},    {"state", state}};
    struct dc_st_entry *sq = calloc(r->pl.count, sizeof *sq);
    char *names = calloc(r->pl.count, DC_PARAM_NAME_MAX + 16);
    if (!sq || !names) st = dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == DC_OK && i < r->pl.count; ++i) {
        const struct dc_param_desc *d = &r->pl.desc[i];
        char *nm = names + i * (DC_PARAM_NAME_MAX + 16);
        snprintf(nm, DC_PARAM_NAME_MAX + 16, "exp_avg_sq.%s", d->name);
        sq[i].name = nm;
        sq[i].ndim = d->ndim;
        for (size_t k = 0; k < d->ndim; ++k) sq[i].shape[k] = d->shape[k];
        sq[i].data = r->v_h + d->offset;
    }
    if (st == DC_OK) st = seed_path(r, seed, "optim.safetensors", path, sizeof path, err);
    if (st == DC_OK)
        st = dc_checkpoint_write(path, &r->pl, r->m_h, "exp_avg.", sq, r->pl.count, ometa,
                                 sizeof ometa / sizeof ometa[0], err);
    free(sq);
    free(names);
    free(state);
    return st;
}

/* Reads seed's optim/last files into s and the device; *found false when there are none. */
static dc_status load_state(struct run *r, uint64_t seed, struct dc_optim *opt, struct seed_state *s, bool *found,
                            struct dc_error *err) {
    *found = false;
    size_t total = r->pl.total;
    char opath[2048], lpath[2048];
    dc_status st = seed_path(r, seed, "optim.safetensors", opath, sizeof opath, err);
    if (st == DC_OK) st = seed_path(r, seed, "last.safetensors", lpath, sizeof lpath, err);
    if (st != DC_OK) return st;
    if (access(opath, F_OK) != 0) return DC_OK;
    struct dc_st_file f;
    struct dc_st_meta lm = {0};
    json_t *j = NULL;
    if ((st = dc_st_read(opath, &f, err)) != DC_OK) return st;
    if ((st = dc_checkpoint_gather(&f, opath, &r->pl, "exp_avg.", r->m_h, err)) != DC_OK ||
        (st = dc_checkpoint_gather(&f, opath, &r->pl, "exp_avg_sq.", r->v_h, err)) != DC_OK)
        goto done;
    const char *step_s = dc_st_meta_get(&f.meta, "step"), *ep_s = dc_st_meta_get(&f.meta, "epoch"),
               *b_s = dc_st_meta_get(&f.meta, "batch"), *lr_s = dc_st_meta_get(&f.meta, "lr"),
               *state = dc_st_meta_get(&f.meta, "state");
    json_error_t je;
    j = state ? json_loads(state, 0, &je) : NULL;
    json_t *pj = json_object_get(j, "plateau"), *ej = json_object_get(j, "early_stop"),
           *tj = json_object_get(j, "train_sums");
    size_t best_epoch = 0, bad = 0;
    bool ok = step_s && ep_s && b_s && lr_s && j;
    if (ok) {
        s->step = strtoull(step_s, NULL, 10);
        s->epochs_done = (size_t)strtoull(ep_s, NULL, 10);
        s->batch = (size_t)strtoull(b_s, NULL, 10);
        s->lr = strtod(lr_s, NULL);
        ok = gd(pj, "best", &s->plat.best) && gd(pj, "lr", &s->plat.lr) && gz(pj, "bad_epochs", &bad) &&
             json_is_boolean(json_object_get(pj, "has_best")) && gd(ej, "best", &s->es.best) &&
             gz(ej, "best_epoch", &best_epoch) && gd(tj, "task", &s->sums.task) && gd(tj, "dec", &s->sums.dec) &&
             gd(tj, "hete", &s->sums.hete) && gd(tj, "homo", &s->sums.homo) && gd(tj, "ct", &s->sums.ct) &&
             gd(tj, "total", &s->sums.total) && gd(j, "elapsed", &s->elapsed);
    }
    if (!ok) {
        st = dc_set_error(err, DC_ERR_FORMAT, "%s: missing or bad resume metadata", opath);
        goto done;
    }
    s->plat.bad_epochs = bad;
    s->plat.has_best = json_is_true(json_object_get(pj, "has_best"));
    s->es.best_epoch = best_epoch;
    if ((st = dc_checkpoint_load(lpath, &r->pl, r->params_h, &lm, err)) != DC_OK) goto done;
    const char *ls = dc_st_meta_get(&lm, "step"), *le = dc_st_meta_get(&lm, "epoch"), *lb = dc_st_meta_get(&lm, "batch");
    if (!ls || !le || !lb || strcmp(ls, step_s) || strcmp(le, ep_s) || strcmp(lb, b_s)) {
        st = dc_set_error(err, DC_ERR_FORMAT, "%s and %s are from different steps (stopped while writing them?)", lpath,
                          opath);
        goto done;
    }
    /* the best weights so far: best.safetensors (it may be one epoch ahead when a run was
     * killed between writing it and the checkpoint; that epoch is replayed identically) */
    if (s->es.best_epoch == 0) {
        dc_params_init(&r->pl, r->best_h, seed);
    } else {
        char bpath[2048];
        struct dc_st_meta bm = {0};
        if ((st = seed_path(r, seed, "best.safetensors", bpath, sizeof bpath, err)) != DC_OK) goto done;
        if ((st = dc_checkpoint_load(bpath, &r->pl, r->best_h, &bm, err)) != DC_OK) goto done;
        const char *be_s = dc_st_meta_get(&bm, "epoch");
        size_t bep = be_s ? (size_t)strtoull(be_s, NULL, 10) : 0;
        dc_st_meta_free(&bm);
        if (bep != s->es.best_epoch && bep <= s->epochs_done) {
            st = dc_set_error(err, DC_ERR_FORMAT, "%s holds epoch %zu, the checkpoint's best epoch is %zu", bpath, bep,
                              s->es.best_epoch);
            goto done;
        }
    }
    if ((st = dc_upload(r->be, dc_view_of(r->params, 0, total), r->params_h)) != DC_OK ||
        (st = dc_upload(r->be, dc_view_of(dc_optim_exp_avg(opt), 0, total), r->m_h)) != DC_OK ||
        (st = dc_upload(r->be, dc_view_of(dc_optim_exp_avg_sq(opt), 0, total), r->v_h)) != DC_OK) {
        st = be_fail(r, st, "upload the training state", err);
        goto done;
    }
    dc_optim_set_steps(opt, s->step);
    dc_optim_set_lr(opt, s->lr);
    *found = true;
done:
    json_decref(j);
    dc_st_meta_free(&lm);
    dc_st_free(&f);
    return st;
}

/* Drops the metrics rows of seed with epoch > keep (rows written after the checkpoint). */
static void drop_rows(struct sbuf *b, uint64_t seed, size_t keep, bool json) {
    if (!b->p) return;
    size_t w = 0;
    for (size_t i = 0; i < b->len;) {
        char *nl = memchr(b->p + i, '\n', b->len - i);
        size_t end = nl ? (size_t)(nl - b->p) + 1 : b->len;
        bool drop = false;
        unsigned long long sd = 0, ep = 0;
        if (json) {
            json_t *j = json_loadb(b->p + i, end - i, 0, NULL);
            if (j) {
                sd = (unsigned long long)json_integer_value(json_object_get(j, "seed"));
                ep = (unsigned long long)json_integer_value(json_object_get(j, "epoch"));
                drop = sd == seed && ep > keep;
            }
            json_decref(j);
        } else if (sscanf(b->p + i, "%llu,%llu,", &sd, &ep) == 2) {
            drop = sd == seed && ep > keep;
        }
        if (!drop) {
            memmove(b->p + w, b->p + i, end - i);
            w += end - i;
        }
        i = end;
    }
    b->len = w;
    if (b->cap) b->p[w] = 0;
}

static dc_status write_metrics(struct run *r, struct dc_error *err) {
    char path[2048];
    dc_status st = path_in(r, path, sizeof path, "metrics.csv", err);
    if (st == DC_OK) st = dc_write_file_atomic(path, r->csv.p ? r->csv.p : "", r->csv.len, err);
    if (st == DC_OK) st = path_in(r, path, sizeof path, "metrics.jsonl", err);
    if (st == DC_OK) st = dc_write_file_atomic(path, r->jsonl.p ? r->jsonl.p : "", r->jsonl.len, err);
    return st;
}

static void progress(const struct run *r, uint64_t seed, size_t epoch, size_t b, size_t nbat, size_t samples,
                     double secs, double loss) {
    const int W = 24;
    int fill = nbat ? (int)((double)W * (double)b / (double)nbat) : W;
    char bar[32];
    for (int i = 0; i < W; ++i) bar[i] = i < fill ? '#' : '.';
    bar[W] = 0;
    fprintf(r->o->log, "\r\033[Kseed %llu epoch %zu/%zu [%s] %zu/%zu  %.1f samples/s  loss %.4f",
            (unsigned long long)seed, epoch, r->cfg.num_epochs, bar, b, nbat, secs > 0 ? (double)samples / secs : 0.0,
            loss);
    fflush(r->o->log);
}

static void progress_clear(const struct run *r) {
    if (r->o->progress && r->o->log) {
        fputs("\r\033[K", r->o->log);
        fflush(r->o->log);
    }
}

static dc_status train_seed(struct run *r, uint64_t seed, struct dc_metrics *test, size_t *best_epoch_out,
                            struct dc_error *err) {
    const struct dc_model_config *c = &r->cfg;
    const struct dc_split *tr = &r->ds->split[DC_SPLIT_TRAIN], *va = &r->ds->split[DC_SPLIT_VALID],
                          *te = &r->ds->split[DC_SPLIT_TEST];
    size_t total = r->pl.total, bs = c->batch_size < tr->n ? c->batch_size : tr->n;
    dc_view pv = dc_view_of(r->params, 0, total);
    struct dc_optim *opt = NULL;
    struct dc_batcher bt = {0};
    struct dc_batch batch = {0};
    bool *active = NULL;
    float *pred = NULL;
    dc_status st;

    dc_params_init(&r->pl, r->params_h, seed);
    memcpy(r->best_h, r->params_h, total * sizeof(float));
    if ((st = dc_upload(r->be, pv, r->params_h)) != DC_OK) return be_fail(r, st, "upload parameters", err);
    struct dc_decalign *model;
    if ((st = dc_model_cache_get(&r->mc, bs, tr->seq_len, &model, err)) != DC_OK) return st;
    if (!(active = calloc(r->pl.count, sizeof(bool)))) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    dc_decalign_active(model, active);
    struct dc_adam hp = {.lr = c->learning_rate, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                         .weight_decay = c->weight_decay, .clip = c->clip};
    if ((st = dc_optim_create(r->be, &r->pl, active, &hp, &opt, err)) != DC_OK) goto done;
    if ((st = dc_batcher_init(&bt, tr->n, bs, true, seed, err)) != DC_OK) goto done;

    struct seed_state s = {0};
    dc_plateau_init(&s.plat, r->sched.maximize, c->factor, c->scheduler_patience, c->learning_rate);
    dc_early_stop_init(&s.es, r->sel.maximize, c->early_stop_patience);
    s.lr = c->learning_rate;
    bool found = false;
    if (r->resuming) {
        if ((st = load_state(r, seed, opt, &s, &found, err)) != DC_OK) goto done;
        drop_rows(&r->csv, seed, s.epochs_done, false);
        drop_rows(&r->jsonl, seed, s.epochs_done, true);
        if ((st = write_metrics(r, err)) != DC_OK) goto done;
        if (found)
            log_line(r, "seed %llu: resuming after epoch %zu, batch %zu (step %llu)\n", (unsigned long long)seed,
                     s.epochs_done, s.batch, (unsigned long long)s.step);
    }
    size_t nbat = (tr->n + bs - 1) / bs;
    bool finished = s.epochs_done >= c->num_epochs || (s.epochs_done > 0 && s.batch == 0 &&
                                                         dc_early_stop_done(&s.es, s.epochs_done));
    for (size_t epoch = s.epochs_done + 1; !finished && epoch <= c->num_epochs; ++epoch) {
        double t0 = now_s() - s.elapsed, last_draw = 0;
        struct epoch_row row = {.seed = seed, .epoch = epoch, .lr = dc_optim_lr(opt), .train = s.sums};
        dc_batcher_start_epoch(&bt, epoch - 1);
        const size_t *idx;
        size_t n, nb = 0, samples = 0;
        for (; nb < s.batch; ++nb) /* resume inside the epoch: skip the batches already taken */
            if (dc_batcher_next(&bt, &idx) == 0) break;
        s.batch = 0;
        s.elapsed = 0;
        while ((n = dc_batcher_next(&bt, &idx)) > 0) {
            if ((st = dc_batch_gather(&batch, tr, idx, n, err)) != DC_OK) goto done;
            if ((st = dc_model_cache_get(&r->mc, n, tr->seq_len, &model, err)) != DC_OK) goto done;
            struct dc_decalign_losses l;
            const float *const xs[3] = {batch.x[0], batch.x[1], batch.x[2]};
            st = dc_train_step(model, opt, r->params, r->grads, total, xs, batch.labels, seed, s.step, NULL, &l, err);
            if (st == DC_ERR_NUMERIC) { /* name the seed and epoch too */
                char msg[sizeof err->msg];
                snprintf(msg, sizeof msg, "%s", err->msg);
                st = dc_set_error(err, st, "seed %llu epoch %zu %s", (unsigned long long)seed, epoch, msg);
            }
            if (st != DC_OK) goto done;
            row.train.task += l.task;
            row.train.dec += l.dec;
            row.train.hete += l.hete;
            row.train.homo += l.homo;
            row.train.ct += l.ct;
            row.train.total += l.total;
            nb++;
            samples += n;
            s.step++;
            r->batches_run++;
            if (r->kill_after && r->batches_run == r->kill_after) raise(SIGKILL); /* no clean-up at all */
            if (r->o->progress && r->o->log) {
                double t = now_s();
                if (t - last_draw >= 0.1 || nb == nbat) {
                    progress(r, seed, epoch, nb, nbat, samples, t - t0 - 0.0, row.train.total / (double)nb);
                    last_draw = t;
                }
            }
            if (stop_requested(r)) {
                progress_clear(r);
                s.epochs_done = epoch - 1;
                s.batch = nb;
                s.sums = row.train;
                s.elapsed = now_s() - t0;
                s.lr = dc_optim_lr(opt);
                if ((st = save_state(r, seed, opt, &s, err)) != DC_OK) goto done;
                log_line(r, "seed %llu: stopped in epoch %zu after batch %zu/%zu (step %llu)\n",
                         (unsigned long long)seed, epoch, nb, nbat, (unsigned long long)s.step);
                r->interrupted = true;
                goto done;
            }
        }
        progress_clear(r);
        if (nb) {
            row.train.task /= (double)nb;
            row.train.dec /= (double)nb;
            row.train.hete /= (double)nb;
            row.train.homo /= (double)nb;
            row.train.ct /= (double)nb;
            row.train.total /= (double)nb;
        }
        s.sums = (struct dc_decalign_losses){0};
        free(pred);
        pred = NULL;
        if ((st = dc_eval_split(&r->mc, r->params, va, c->batch_size, r->kind, &pred, &row.valid_loss, &row.valid,
                                err)) != DC_OK)
            goto done;
        double sel = metric_value(&r->sel, &row.valid, row.valid_loss);
        double sch = metric_value(&r->sched, &row.valid, row.valid_loss);
        row.best = dc_early_stop_update(&s.es, epoch, sel);
        if (row.best) {
            if ((st = dc_download(r->be, r->best_h, pv)) != DC_OK) {
                st = be_fail(r, st, "download parameters", err);
                goto done;
            }
            if ((st = save_best(r, seed, epoch, err)) != DC_OK) goto done;
        }
        bool reduced = dc_plateau_step(&s.plat, sch);
        if (reduced) dc_optim_set_lr(opt, s.plat.lr);
        row.seconds = now_s() - t0;
        if ((st = append_row(r, &row, err)) != DC_OK) goto done;
        s.epochs_done = epoch;
        s.batch = 0;
        s.lr = dc_optim_lr(opt);
        if ((st = save_state(r, seed, opt, &s, err)) != DC_OK) goto done;
        log_line(r, "seed %llu epoch %zu/%zu: train loss %.4f (task %.4f) | valid loss %.4f %s %.4f%s | lr %.3g | %.1fs%s\n",
                 (unsigned long long)seed, epoch, c->num_epochs, row.train.total, row.train.task, row.valid_loss,
                 r->sel.name, sel, row.best ? " (best)" : "", row.lr, row.seconds,
                 reduced ? " | lr reduced" : "");
        if (dc_early_stop_done(&s.es, epoch) && epoch < c->num_epochs) {
            log_line(r, "seed %llu: early stop after epoch %zu (best epoch %zu)\n", (unsigned long long)seed, epoch,
                     s.es.best_epoch);
            break;
        }
        if (stop_requested(r) && epoch < c->num_epochs) {
            log_line(r, "seed %llu: stopped after epoch %zu (step %llu)\n", (unsigned long long)seed, epoch,
                     (unsigned long long)s.step);
            r->interrupted = true;
            goto done;
        }
    }
    /* test with the best weights */
    if ((st = dc_upload(r->be, pv, r->best_h)) != DC_OK) {
        st = be_fail(r, st, "upload parameters", err);
        goto done;
    }
    double test_loss;
    free(pred);
    pred = NULL;
    if ((st = dc_eval_split(&r->mc, r->params, te, c->batch_size, r->kind, &pred, &test_loss, test, err)) != DC_OK)
        goto done;
    *best_epoch_out = s.es.best_epoch;
    log_line(r, "seed %llu: test (best epoch %zu):", (unsigned long long)seed, s.es.best_epoch);
    for (int i = 0; i < test->count; ++i) log_line(r, " %s %.4f", test->names[i], test->values[i]);
    log_line(r, "\n");
done:
    free(pred);
    free(active);
    dc_batch_free(&batch);
    dc_batcher_free(&bt);
    dc_optim_free(opt);
    return st;
}

static dc_status write_results(struct run *r, const struct dc_metrics *tests, size_t nruns, struct dc_error *err) {
    json_t *root = json_object();
    json_object_set_new(root, "dataset", json_string(dc_dataset_kind_name(r->kind)));
    json_object_set_new(root, "config", json_string(r->config_path));
    json_object_set_new(root, "runs", json_deep_copy(r->runs));
    json_t *mean = json_object(), *sd = json_object();
    if (nruns > 0) {
        for (int i = 0; i < tests[0].count; ++i) {
            double s = 0, s2 = 0;
            for (size_t k = 0; k < nruns; ++k) s += tests[k].values[i];
            double mu = s / (double)nruns;
            for (size_t k = 0; k < nruns; ++k) s2 += (tests[k].values[i] - mu) * (tests[k].values[i] - mu);
            json_object_set_new(mean, tests[0].names[i], json_real(dc_round_np(mu, 4)));
            json_object_set_new(sd, tests[0].names[i], json_real(dc_round_np(sqrt(s2 / (double)nruns), 4)));
        }
    }
    json_object_set_new(root, "mean", mean);
    json_object_set_new(root, "std", sd);
    char path[2048];
    dc_status st = path_in(r, path, sizeof path, "results.json", err);
    if (st == DC_OK) st = write_json_atomic(path, root, err);
    json_decref(root);
    return st;
}

/* --resume: the metrics files and the seeds results.json already holds (in config order). */
static dc_status resume_outputs(struct run *r, struct dc_metrics *tests, size_t *ndone, struct dc_error *err) {
    *ndone = 0;
    static const char *const files[2] = {"metrics.csv", "metrics.jsonl"};
    struct sbuf *bufs[2] = {&r->csv, &r->jsonl};
    char path[2048];
    dc_status st;
    for (int i = 0; i < 2; ++i) {
        if ((st = path_in(r, path, sizeof path, files[i], err)) != DC_OK) return st;
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        char chunk[4096];
        size_t k;
        while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) sb_printf(bufs[i], "%.*s", (int)k, chunk);
        fclose(f);
        if (bufs[i]->oom) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    }
    r->csv_header = r->csv.len > 0;
    if ((st = path_in(r, path, sizeof path, "results.json", err)) != DC_OK) return st;
    if (access(path, F_OK) != 0) return DC_OK;
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    json_t *runs = json_object_get(root, "runs");
    if (!json_is_array(runs)) {
        json_decref(root);
        return dc_set_error(err, DC_ERR_FORMAT, "%s: not a results.json of decocl train", path);
    }
    struct dc_metrics known;
    if ((st = kind_metrics(r->kind, dc_model_config_out_dim(&r->cfg), &known, err)) != DC_OK) {
        json_decref(root);
        return st;
    }
    for (size_t k = 0; k < json_array_size(runs) && k < r->cfg.nseeds; ++k) {
        json_t *run = json_array_get(runs, k), *t = json_object_get(run, "test");
        if (json_integer_value(json_object_get(run, "seed")) != (json_int_t)r->cfg.seeds[k] || !json_is_object(t)) break;
        tests[k] = known;
        for (int i = 0; i < known.count; ++i) {
            json_t *v = json_object_get(t, known.names[i]);
            tests[k].values[i] = tests[k].raw[i] = json_number_value(v);
        }
        json_array_append(r->runs, run);
        *ndone = k + 1;
    }
    json_decref(root);
    for (size_t k = 0; k < *ndone; ++k)
        log_line(r, "seed %llu: already finished (results.json)\n", (unsigned long long)r->cfg.seeds[k]);
    return DC_OK;
}

static dc_status run_all(struct run *r, char *out_dir, size_t cap, struct dc_error *err) {
    const struct dc_train_options *o = r->o;
    struct dc_model_config *c = &r->cfg;
    dc_status st;
    r->config_path = o->config;
    if (o->stop_after_batches) r->stop_after = o->stop_after_batches;
    else {
        const char *hook = getenv("DECOCL_TRAIN_STOP_AFTER_BATCHES"); /* test hook, see train.h */
        if (hook && *hook) r->stop_after = (size_t)strtoull(hook, NULL, 10);
    }
    const char *kill_hook = getenv("DECOCL_TRAIN_KILL_AFTER_BATCHES"); /* test hook, see train.h */
    if (kill_hook && *kill_hook) r->kill_after = (size_t)strtoull(kill_hook, NULL, 10);
    char *resume_cfg = NULL; /* DIR/config.cfg text */
    size_t resume_len = 0;
    if (o->resume) {
        if (o->out_dir) return dc_set_error(err, DC_ERR_ARG, "--resume continues in its own directory; no --out");
        if (!o->config && (o->data || o->nsets || o->nseeds))
            return dc_set_error(err, DC_ERR_ARG, "--resume without CONFIG takes no --data, --set or --seeds");
        if (strlen(o->resume) >= sizeof r->dir) return dc_set_error(err, DC_ERR_ARG, "--resume path too long");
        strcpy(r->dir, o->resume);
        r->resuming = true;
        char cpath[2048];
        if ((st = path_in(r, cpath, sizeof cpath, "config.cfg", err)) != DC_OK) return st;
        FILE *f = fopen(cpath, "rb");
        if (!f) return dc_set_error(err, DC_ERR_IO, "%s: %s (not a run directory?)", cpath, strerror(errno));
        struct sbuf b = {0};
        char chunk[4096];
        size_t k;
        while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) sb_printf(&b, "%.*s", (int)k, chunk);
        fclose(f);
        if (b.oom) {
            free(b.p);
            return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
        }
        resume_cfg = b.p ? b.p : strdup("");
        resume_len = b.len;
        if (!o->config) {
            st = dc_model_config_parse_cfg(c, resume_cfg, resume_len, cpath, err);
            if (st != DC_OK) {
                free(resume_cfg);
                return st;
            }
            /* the config path the stopped run reported: results.json, else its default */
            snprintf(r->config_path_buf, sizeof r->config_path_buf, "%s", cpath);
            char rpath[2048];
            if (path_in(r, rpath, sizeof rpath, "results.json", err) == DC_OK) {
                json_t *rj = json_load_file(rpath, 0, NULL);
                const char *cp = json_string_value(json_object_get(rj, "config"));
                bool have = cp != NULL;
                if (cp) snprintf(r->config_path_buf, sizeof r->config_path_buf, "%s", cp);
                json_decref(rj);
                /* no seed finished yet: the path recorded in a checkpoint's state */
                for (size_t si = 0; !have && si < c->nseeds; ++si) {
                    struct dc_st_file of;
                    struct dc_error e2 = {0};
                    if (seed_path(r, c->seeds[si], "optim.safetensors", rpath, sizeof rpath, &e2) != DC_OK ||
                        access(rpath, F_OK) != 0 || dc_st_read(rpath, &of, &e2) != DC_OK)
                        continue;
                    const char *state = dc_st_meta_get(&of.meta, "state");
                    json_t *sj = state ? json_loads(state, 0, NULL) : NULL;
                    const char *sp = json_string_value(json_object_get(sj, "config_path"));
                    if (sp) {
                        snprintf(r->config_path_buf, sizeof r->config_path_buf, "%s", sp);
                        have = true;
                    }
                    json_decref(sj);
                    dc_st_free(&of);
                }
            }
            r->config_path = r->config_path_buf;
        }
    }
    if (o->config) {
        st = dc_model_config_read(c, o->config, o->sets, o->nsets, err);
        if (st != DC_OK) {
            free(resume_cfg);
            return st;
        }
        for (size_t i = 0; i < c->nignored; ++i)
            log_line(r, "decocl: train: config key '%s' is ignored\n", c->ignored[i]);
        if (o->data) {
            if (strlen(o->data) >= sizeof c->data) {
                free(resume_cfg);
                return dc_set_error(err, DC_ERR_ARG, "--data path too long");
            }
            strcpy(c->data, o->data);
        }
        if (o->nseeds) {
            if (o->nseeds > DC_CFG_MAX_SEEDS) {
                free(resume_cfg);
                return dc_set_error(err, DC_ERR_ARG, "at most %d seeds", DC_CFG_MAX_SEEDS);
            }
            c->nseeds = o->nseeds;
            memcpy(c->seeds, o->seeds, o->nseeds * sizeof *o->seeds);
        }
        if (!c->nseeds) {
            c->nseeds = 1;
            c->seeds[0] = 1111;
        }
    } else if (!o->resume) return dc_set_error(err, DC_ERR_ARG, "no config");
    if (resume_cfg && o->config) { /* the CLI config must resolve to the run's config.cfg */
        char *mine = NULL;
        st = dc_model_config_to_cfg(c, &mine, err);
        if (st == DC_OK && (strlen(mine) != resume_len || memcmp(mine, resume_cfg, resume_len))) {
            size_t i = 0, line = 1;
            for (; i < resume_len && mine[i] == resume_cfg[i]; ++i) line += resume_cfg[i] == '\n';
            st = dc_set_error(err, DC_ERR_ARG,
                              "%s (with --data/--set/--seeds) differs from %s/config.cfg at line %zu; "
                              "give the same options or omit CONFIG", o->config, r->dir, line);
        }
        free(mine);
        if (st != DC_OK) {
            free(resume_cfg);
            return st;
        }
    }
    free(resume_cfg);
    if (!c->nseeds) {
        c->nseeds = 1;
        c->seeds[0] = 1111;
    }
    if (!c->data[0]) return dc_set_error(err, DC_ERR_ARG, "no dataset: give --data FILE or set `data` in the config");
    struct dc_dataset_options dopt;
    dc_train_dataset_options(c, &dopt);
    if ((st = dc_dataset_load(c->data, &dopt, &r->ds, err)) != DC_OK) return st;
    r->kind = dc_train_kind(r->ds, c);
    if (r->kind == DC_KIND_UNKNOWN)
        return dc_set_error(err, DC_ERR_ARG, "%s: cannot tell the dataset kind; set dataset_name", c->data);
    if (r->ds->classification != c->classification)
        return dc_set_error(err, DC_ERR_ARG, "%s holds %s labels but the config's train_mode is %s", c->data,
                            r->ds->classification ? "classification" : "regression",
                            c->classification ? "classification" : "regression");
    struct dc_metrics known;
    if ((st = kind_metrics(r->kind, dc_model_config_out_dim(c), &known, err)) != DC_OK) return st;
    /* as ATIO.py: the scheduler follows the selection metric unless it is named */
    const char *sel_name = c->selection_metric[0] ? c->selection_metric : default_selection(r->kind, c->classification);
    const char *sched_name = c->scheduler_metric[0] ? c->scheduler_metric : sel_name;
    if ((st = resolve_metric(sel_name, c->selection_mode, "selection_metric", r->kind, &known, &r->sel, err)) != DC_OK)
        return st;
    if ((st = resolve_metric(sched_name, c->scheduler_mode, "scheduler_metric", r->kind, &known, &r->sched, err)) !=
        DC_OK)
        return st;

    /* run directory and resolved config */
    if (o->resume) {
        /* r->dir set above */
    } else if (o->out_dir) {
        if (strlen(o->out_dir) >= sizeof r->dir) return dc_set_error(err, DC_ERR_ARG, "--out path too long");
        strcpy(r->dir, o->out_dir);
    } else {
        const char *base = strrchr(o->config, '/');
        base = base ? base + 1 : o->config;
        size_t bl = strcspn(base, ".");
        char stamp[32];
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        snprintf(r->dir, sizeof r->dir, "runs/%.*s-%s", (int)(bl < 200 ? bl : 200), base, stamp);
    }
    if ((st = mkdir_p(r->dir, err)) != DC_OK) return st;
    if (out_dir && cap) snprintf(out_dir, cap, "%s", r->dir);
    char path[2048];
    if (!o->resume) {
        char *cfg_text = NULL;
        if ((st = dc_model_config_to_cfg(c, &cfg_text, err)) != DC_OK) return st;
        st = path_in(r, path, sizeof path, "config.cfg", err);
        if (st == DC_OK) st = dc_write_file_atomic(path, cfg_text, strlen(cfg_text), err);
        free(cfg_text);
        if (st != DC_OK) return st;
    }
    if ((st = dc_model_config_to_json(c, &r->cfg_json, err)) != DC_OK) return st;
    json_t *sj = stats_json(r->ds);
    r->stats_text = json_dumps(sj, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(sj);
    if (!r->stats_text) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");

    /* model, device */
    const struct dc_split *tr = &r->ds->split[DC_SPLIT_TRAIN];
    struct dc_model_dims dims;
    dc_decalign_dims(c, tr->dim, &dims);
    if ((st = dc_param_layout_init(&r->pl, &dims, err)) != DC_OK) return st;
    r->params_h = malloc(r->pl.total * sizeof(float));
    r->best_h = malloc(r->pl.total * sizeof(float));
    r->m_h = malloc(r->pl.total * sizeof(float));
    r->v_h = malloc(r->pl.total * sizeof(float));
    if (!r->params_h || !r->best_h || !r->m_h || !r->v_h) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    if ((st = dc_backend_open(&r->be, o->backend, err)) != DC_OK) return st;
    if ((st = dc_mem_alloc(r->be, r->pl.total, &r->params)) != DC_OK ||
        (st = dc_mem_alloc(r->be, r->pl.total, &r->grads)) != DC_OK)
        return be_fail(r, st, "device memory", err);
    r->mc = (struct dc_model_cache){.be = r->be, .cfg = c, .pl = &r->pl};
    if ((st = dc_train_class_weights(c, tr, r->mc.class_weights, &r->mc.use_class_weights, err)) != DC_OK) return st;
    log_line(r, "decocl train: %s on %s (%s: train %zu, valid %zu, test %zu), %zu parameters, device %s, run %s\n",
             r->config_path, c->data, dc_dataset_kind_name(r->kind), tr->n, r->ds->split[DC_SPLIT_VALID].n,
             r->ds->split[DC_SPLIT_TEST].n, r->pl.total, dc_backend_device_name(r->be), r->dir);

    struct dc_metrics *tests = calloc(c->nseeds, sizeof *tests);
    if (!tests) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    r->runs = json_array();
    size_t ndone = 0;
    if (o->resume && (st = resume_outputs(r, tests, &ndone, err)) != DC_OK) {
        free(tests);
        return st;
    }
    for (size_t k = ndone; k < c->nseeds && st == DC_OK; ++k) {
        size_t best_epoch = 0;
        if ((st = train_seed(r, c->seeds[k], &tests[k], &best_epoch, err)) != DC_OK) break;
        if (r->interrupted) break;
        json_t *tj = json_object();
        for (int i = 0; i < tests[k].count; ++i) json_object_set_new(tj, tests[k].names[i], json_real(tests[k].values[i]));
        json_array_append_new(r->runs, json_pack("{sI sI so}", "seed", (json_int_t)c->seeds[k], "best_epoch",
                                                 (json_int_t)best_epoch, "test", tj));
        st = write_results(r, tests, k + 1, err);
    }
    free(tests);
    return st;
}

dc_status dc_train_run(const struct dc_train_options *o, char *out_dir, size_t cap, struct dc_error *err) {
    struct run *r = calloc(1, sizeof *r);
    if (!r) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    r->o = o;
    if (out_dir && cap) out_dir[0] = 0;
    dc_status st = run_all(r, out_dir, cap, err);
    if (o->interrupted) *o->interrupted = st == DC_OK && r->interrupted;
    run_free(r);
    free(r);
    return st;
}

/* ---- eval / predict ---- */

int dc_eval_split_id(const char *name) {
    for (int s = 0; s < DC_SPLIT_COUNT; ++s)
        if (!strcmp(name, dc_split_name((enum dc_split_id)s))) return s;
    return -1;
}

dc_status dc_eval_job_open(struct dc_eval_job *j, const char *checkpoint, const char *data,
                           const struct dc_backend_options *bo, struct dc_error *err) {
    memset(j, 0, sizeof *j);
    dc_status st = dc_run_checkpoint_open(checkpoint, &j->ck, err);
    if (st != DC_OK) return st;
    const struct dc_model_config *c = &j->ck.cfg;
    if (!data) data = c->data;
    if (!data || !data[0]) return dc_set_error(err, DC_ERR_ARG, "no dataset: give --data FILE");
    struct dc_dataset_options dopt;
    dc_train_dataset_options(c, &dopt);
    dopt.stats_in = j->ck.stats;
    for (int m = 0; m < DC_MOD_COUNT; ++m)
        if (dopt.standardize[m] && !j->ck.stats[m].dim)
            return dc_set_error(err, DC_ERR_FORMAT, "%s: the config standardises %s but the checkpoint has no statistics",
                                checkpoint, dc_modality_name((enum dc_modality)m));
    if ((st = dc_dataset_load(data, &dopt, &j->ds, err)) != DC_OK) return st;
    j->kind = dc_train_kind(j->ds, c);
    if (j->kind == DC_KIND_UNKNOWN) return dc_set_error(err, DC_ERR_ARG, "%s: cannot tell the dataset kind", data);
    struct dc_model_dims dims;
    dc_decalign_dims(c, j->ds->split[DC_SPLIT_TRAIN].dim, &dims);
    if ((st = dc_param_layout_init(&j->pl, &dims, err)) != DC_OK) return st;
    if (!(j->params_h = calloc(j->pl.total, sizeof(float)))) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    if ((st = dc_checkpoint_gather(&j->ck.file, checkpoint, &j->pl, "", j->params_h, err)) != DC_OK) return st;
    if ((st = dc_backend_open(&j->be, bo, err)) != DC_OK) return st;
    if ((st = dc_mem_alloc(j->be, j->pl.total, &j->params)) != DC_OK ||
        (st = dc_upload(j->be, dc_view_of(j->params, 0, j->pl.total), j->params_h)) != DC_OK)
        return dc_set_error(err, st, "device memory: %s", dc_backend_error(j->be)->msg);
    j->mc = (struct dc_model_cache){.be = j->be, .cfg = &j->ck.cfg, .pl = &j->pl};
    return dc_train_class_weights(c, &j->ds->split[DC_SPLIT_TRAIN], j->mc.class_weights, &j->mc.use_class_weights,
                                  err);
}

void dc_eval_job_close(struct dc_eval_job *j) {
    dc_model_cache_free(&j->mc);
    if (j->be && j->params) dc_mem_free(j->be, j->params);
    dc_backend_close(j->be);
    free(j->params_h);
    dc_param_layout_free(&j->pl);
    dc_dataset_free(j->ds);
    dc_run_checkpoint_close(&j->ck);
    memset(j, 0, sizeof *j);
}
