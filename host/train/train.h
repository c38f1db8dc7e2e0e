/* `decocl train` (issue 5 item 2-3, shared/spec/decalign-model.md §6) and the evaluation
 * helpers `decocl eval` / `decocl predict` share with it.
 *
 * Training, per seed: parameters from dc_params_init(seed); per epoch the training split
 * shuffled from (seed, epoch), forward with every dropout (seed, global step), backward,
 * clip + Adam (dc_optim_step); then the validation split in file order: the metrics of
 * the dataset kind (4-decimal values) and the validation task loss (plain mean over
 * batches of the task loss, binary term included, rounded to 4 decimals: the selection
 * metric named after the dataset, e.g. `MOSI`, or `loss`). ReduceLROnPlateau on the
 * scheduler metric, early stopping on the selection metric (schedule.h); the best epoch's
 * weights are saved as seed-<S>/best.safetensors and give the test metrics.
 *
 * Metric names: any name dc_metrics_compute reports for the kind (Acc_2, F1_score,
 * MAE, WAF1, ...), `loss`, a dataset name (mosi, mosei, sims, iemocap, any case) for
 * the validation task loss, or F1Acc_score (0.55 F1_score + 0.45 Acc_2). As the
 * reference trainer (trains/ATIO.py): selection_metric left empty is WAF1 for IEMOCAP,
 * F1_score for other classification, else the loss; scheduler_metric left empty is the
 * selection metric; a mode left empty is max for names containing acc, f1 or corr
 * (any case), else min.
 *
 * Run directory: config.cfg, metrics.csv, metrics.jsonl, results.json, seed-<S>/best.safetensors,
 * every file written atomically (tmp + rename) and rewritten after each epoch.
 * best.safetensors metadata: "config" (dc_model_config_to_json), "dataset" (kind name),
 * "seed", "epoch", "feature_stats" (JSON: {"audio": {"dim", "pct_low", "pct_high",
 * "values": [4*dim]}, ...} for the standardised modalities; values print with 9
 * significant digits, so they read back bit-exactly). */
#ifndef DC_TRAIN_TRAIN_H
#define DC_TRAIN_TRAIN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "decocl/data.h"
#include "decocl/decocl.h"
#include "model/decalign.h"
#include "model/model_config.h"
#include "model/params.h"
#include "model/safetensors.h"
#include "train/metrics.h"

struct dc_train_options {
    const char *config;                 /* config file (.cfg or reference .json) */
    const char *data;                   /* NULL: the config's `data` */
    const char *const *sets;            /* --set key=value overrides */
    size_t nsets;
    const uint64_t *seeds;              /* NULL/0: the config's seeds, else 1111 */
    size_t nseeds;
    const char *out_dir;                /* NULL: runs/<config name>-<YYYYmmdd-HHMMSS> */
    const struct dc_backend_options *backend;
    FILE *log;                          /* one line per epoch; NULL: silent */
    bool progress;                      /* also a progress bar on log, redrawn with \r (a terminal) */
    const char *resume;                 /* continue the stopped run in this directory (see below) */
    volatile sig_atomic_t *stop;        /* when it becomes non-zero (SIGINT): stop after the current batch */
    size_t stop_after_batches;          /* test hook: stop as on *stop after this many training batches
                                           of this call; 0: DECOCL_TRAIN_STOP_AFTER_BATCHES, else never */
    bool *interrupted;                  /* out (may be NULL): true when the run stopped early on *stop */
};

/* Runs every seed; out_dir (cap bytes) receives the run directory.
 *
 * Stopping and resuming. A run killed outright (SIGKILL, power loss) resumes from the
 * state written at the end of its last completed epoch (DECOCL_TRAIN_KILL_AFTER_BATCHES=N,
 * a test hook, makes the process SIGKILL itself after N batches). At the end of every epoch, and when *stop is set (after the
 * current batch; DECOCL_TRAIN_STOP_AFTER_BATCHES=N, a test hook, behaves the same after N
 * batches), the seed's state is written to seed-<S>/last.safetensors (the parameters) and
 * seed-<S>/optim.safetensors (exp_avg.<name>, exp_avg_sq.<name>), each atomically. Both
 * carry "step" (Adam steps taken = the dropout step counter), "epoch" (epochs completed),
 * "batch" (batches completed of the next epoch, in its (seed, epoch) shuffle order);
 * optim.safetensors adds "lr" and "state" (JSON, doubles as C hex floats: plateau and
 * early-stopping state with the best metric and epoch, the partial train-loss sums of
 * the interrupted epoch, the config path). The shuffle order and dropout masks depend only
 * on (seed, epoch) and (seed, step), so no other RNG state exists. After a stop the call
 * returns DC_OK with *interrupted set; results.json then holds the finished seeds only.
 *
 * o->resume = DIR continues such a run: the config is DIR/config.cfg; when o->config is
 * also given, it is resolved with o->data, o->sets and o->seeds and must give the same
 * config.cfg text (else DC_ERR_ARG), otherwise those must be unset. out_dir is DIR. Seeds
 * already in DIR/results.json are kept; the first other seed continues from its
 * last/optim files when present (else starts afresh); metrics rows past the checkpoint
 * are dropped. Same seed, device and data give the same results.json as an uninterrupted
 * run (its "config" is o->config, else the one recorded by the stopped run). */
dc_status dc_train_run(const struct dc_train_options *o, char *out_dir, size_t cap, struct dc_error *err);

/* Model instances by batch shape (a smaller last batch needs its own). */
#define DC_MODEL_CACHE_MAX 8
struct dc_model_cache {
    struct dc_backend *be;
    const struct dc_model_config *cfg;
    const struct dc_param_layout *pl;
    bool use_class_weights;
    float class_weights[DC_CFG_MAX_CLASSES];
    size_t n;
    struct {
        size_t B, T[3];
        struct dc_decalign *m;
    } e[DC_MODEL_CACHE_MAX];
};
dc_status dc_model_cache_get(struct dc_model_cache *c, size_t B, const size_t T[3], struct dc_decalign **out,
                             struct dc_error *err);
void dc_model_cache_free(struct dc_model_cache *c);

/* Class weights of the config (explicit, or balanced from the training labels). */
dc_status dc_train_class_weights(const struct dc_model_config *cfg, const struct dc_split *train, float *w, bool *use,
                                 struct dc_error *err);

/* The dataset options the config asks for (stats_in left NULL). */
void dc_train_dataset_options(const struct dc_model_config *cfg, struct dc_dataset_options *opt);

/* The dataset kind: ds->kind, else the config's dataset_name. */
enum dc_dataset_kind dc_train_kind(const struct dc_dataset *ds, const struct dc_model_config *cfg);

/* Forward (no dropout) over split s in file order in batches of batch_size: *pred gets
 * (n, O) outputs (malloc'd), *loss the plain mean over batches of the task loss, and m
 * the metrics of kind (when m is not NULL). */
dc_status dc_eval_split(struct dc_model_cache *mc, struct dc_mem *params, const struct dc_split *s, size_t batch_size,
                        enum dc_dataset_kind kind, float **pred, double *loss, struct dc_metrics *m,
                        struct dc_error *err);

/* A best.safetensors written by dc_train_run, opened for eval/predict: its config, the
 * standardisation statistics, and the tensors (dc_checkpoint_gather them). */
struct dc_run_checkpoint {
    struct dc_model_config cfg;
    struct dc_feature_stats stats[DC_MOD_COUNT];
    struct dc_st_file file;
};
dc_status dc_run_checkpoint_open(const char *path, struct dc_run_checkpoint *ck, struct dc_error *err);
void dc_run_checkpoint_close(struct dc_run_checkpoint *ck);

/* Writes len bytes to path atomically (<path>.tmp.<pid>, fsync, rename). */
dc_status dc_write_file_atomic(const char *path, const char *data, size_t len, struct dc_error *err);

/* eval/predict: a checkpoint written by dc_train_run, its dataset loaded with the
 * training standardisation statistics applied, and its weights on the device. */
struct dc_eval_job {
    struct dc_run_checkpoint ck;
    struct dc_dataset *ds;
    enum dc_dataset_kind kind;
    struct dc_param_layout pl;
    float *params_h;
    struct dc_backend *be;
    struct dc_mem *params;
    struct dc_model_cache mc;
};

/* Opens checkpoint, loads data (NULL: the config's `data`), uploads the weights. */
dc_status dc_eval_job_open(struct dc_eval_job *j, const char *checkpoint, const char *data,
                           const struct dc_backend_options *bo, struct dc_error *err);
void dc_eval_job_close(struct dc_eval_job *j);
/* "train" | "valid" | "test" -> split id; -1 when unknown. */
int dc_eval_split_id(const char *name);

#endif
