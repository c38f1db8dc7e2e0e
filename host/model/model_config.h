/* The DecAlign model, loss and training configuration, read from a native INI .cfg
 * (configs/<name>.cfg, libinih), a reference JSON config (taco-group/DecAlign config/<name>.json,
 * jansson) and --set key=value overrides, all through one key table in model_config.c
 * (key names as in the reference JSON; shared/spec/decalign-model.md §9).
 *
 * .cfg: sections [data], [model], [loss], [train] only group keys (any known section, or
 * none, is accepted); `key = value`; lists comma-separated (`dst_feature_dim_nheads = 32, 8`);
 * booleans true/false; null (or None) where the JSON allows null; '#' or ';' starts a comment
 * line. A key given twice is an error (as JSON duplicates are). Messages name FILE:LINE and
 * the key. The `data` path is kept as written: a relative path is relative to the current
 * working directory (like --data), not to the config file.
 *
 * Every key the spec lists as implemented is parsed into struct dc_model_config; keys it
 * lists as ignored are accepted and recorded in `ignored` (the caller reports them); any
 * other key is DC_ERR_ARG naming it. Keys absent from the file take the reference
 * defaults (see dc_model_config_defaults). feature_dims and seq_lens are informational:
 * the model takes its input sizes from the batch. */
#ifndef DC_MODEL_MODEL_CONFIG_H
#define DC_MODEL_MODEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decocl/status.h"

#define DC_CFG_MAX_CLASSES 64
#define DC_CFG_MAX_SEEDS 64
#define DC_CFG_MAX_IGNORED 32

enum dc_cfg_task_loss {
    DC_CFG_TASK_LOSS_MSE,       /* "mse" */
    DC_CFG_TASK_LOSS_L1,        /* "mae" or "l1" (the reference default) */
    DC_CFG_TASK_LOSS_SMOOTH_L1, /* "smooth_l1" or "huber" */
};

enum dc_cfg_class_weight {
    DC_CFG_CLASS_WEIGHT_NONE,     /* unweighted cross-entropy */
    DC_CFG_CLASS_WEIGHT_BALANCED, /* N / max(n_c, 1) / C from the training labels */
    DC_CFG_CLASS_WEIGHT_EXPLICIT, /* class_weights: num_classes numbers */
};

struct dc_model_config {
    /* architecture */
    size_t d_model, heads, nlevels;
    size_t kernel[3]; /* conv1d_kernel_size_l/_a/_v */
    size_t num_prototypes, gmm_em_iters, ot_num_iters, pde_dim;
    double gmm_var_floor, lambda_ot, mmd_bandwidth;
    bool active[3]; /* active_modalities, order l, a, v */
    bool use_cross_modal_attention, attn_mask, use_sequence_mask;
    bool hetero_sum;              /* hetero_cost_reduction == "sum" (default "mean") */
    bool local_proto_mahalanobis; /* default false */
    /* dropouts */
    double attn_dropout, attn_dropout_a, attn_dropout_v, relu_dropout, embed_dropout, res_dropout, output_dropout,
        text_dropout;
    /* task and loss weights */
    bool classification; /* train_mode == "classification" */
    size_t num_classes;   /* classification: the output size */
    enum dc_cfg_task_loss task_loss;
    double smooth_l1_beta, binary_task_weight;
    double dec_loss_weight, alpha, beta, ct_weight, ct_temperature;
    enum dc_cfg_class_weight class_weight;
    float class_weights[DC_CFG_MAX_CLASSES]; /* EXPLICIT: num_classes entries */
    /* training (used by `decocl train`) */
    size_t batch_size, num_epochs, early_stop_patience, scheduler_patience;
    double learning_rate, weight_decay, clip, factor;
    char selection_metric[32], scheduler_metric[32];
    char selection_mode[8], scheduler_mode[8]; /* "min" | "max" | "" (derived from the metric) */
    /* data */
    char dataset_name[32];
    size_t feature_dims[3], seq_lens[3]; /* 0: not given */
    bool need_feature_standardized;
    bool feature_standardize_modalities[3];
    double feature_clip_percentiles[2];
    char data[1024]; /* decocl's own dataset path key; "" when absent */
    size_t nseeds;
    uint64_t seeds[DC_CFG_MAX_SEEDS];
    /* keys accepted and ignored (spec §9), in file order */
    size_t nignored;
    char ignored[DC_CFG_MAX_IGNORED][32];
};

/* The reference defaults (config.py's default_config, then the spec's stated defaults for
 * keys the reference reads with getattr). */
void dc_model_config_defaults(struct dc_model_config *cfg);

/* Parses a JSON object text (label names the source in messages) into cfg, starting from
 * the defaults. DC_ERR_FORMAT for malformed JSON, DC_ERR_ARG naming the key for an unknown
 * key or a bad value. */
dc_status dc_model_config_parse_json(struct dc_model_config *cfg, const char *text, size_t len, const char *label,
                                     struct dc_error *err);

/* Reads path (.cfg/.ini or reference .json) without overrides: dc_model_config_read(cfg, path, NULL, 0, err). */
dc_status dc_model_config_load(struct dc_model_config *cfg, const char *path, struct dc_error *err);

/* Parses .cfg (INI) text (label names the source: messages read "label:LINE: ...") into
 * cfg, starting from the defaults. DC_ERR_FORMAT for a syntax error, DC_ERR_ARG naming the
 * key for an unknown key, a duplicate, an unknown section or a bad value. */
dc_status dc_model_config_parse_cfg(struct dc_model_config *cfg, const char *text, size_t len, const char *label,
                                    struct dc_error *err);

/* The full resolution: defaults, then path (a .cfg/.ini or a .json, by extension; NULL for
 * none), then the nsets "key=value" overrides (--set, in order, the same key table and
 * checks; later ones win), then the cross-key checks. `patience` fills early_stop_patience
 * and scheduler_patience where the same source (the file, or the --set list) leaves them
 * absent or null. */
dc_status dc_model_config_read(struct dc_model_config *cfg, const char *path, const char *const *sets, size_t nsets,
                               struct dc_error *err);

/* Applies "key=value" overrides to an already resolved cfg (as the --set step above). */
dc_status dc_model_config_apply_sets(struct dc_model_config *cfg, const char *const *sets, size_t nsets,
                                     struct dc_error *err);

/* The resolved config as .cfg text / as a JSON object text (every implemented key, with
 * the values in effect; `patience` and ignored keys are not written). *out is malloc'd
 * (free it). Parsing the text back gives the same config. DC_ERR_ARG for a string value a
 * .cfg cannot hold (one containing ';' or a line break). */
dc_status dc_model_config_to_cfg(const struct dc_model_config *cfg, char **out, struct dc_error *err);
dc_status dc_model_config_to_json(const struct dc_model_config *cfg, char **out, struct dc_error *err);

/* The output size of the model: num_classes for classification, else 1. */
size_t dc_model_config_out_dim(const struct dc_model_config *cfg);

#endif
