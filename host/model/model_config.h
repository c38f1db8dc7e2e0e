/* The DecAlign model, loss and training configuration, read from a reference JSON config
 * (taco-group/DecAlign config/<name>.json key names; shared/spec/decalign-model.md §9).
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

/* Reads path: a reference .json config. A .cfg file is rejected (DC_ERR_UNSUPPORTED) until
 * the INI reader lands. */
dc_status dc_model_config_load(struct dc_model_config *cfg, const char *path, struct dc_error *err);

/* The output size of the model: num_classes for classification, else 1. */
size_t dc_model_config_out_dim(const struct dc_model_config *cfg);

#endif
