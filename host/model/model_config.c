/* Configs -> struct dc_model_config: native .cfg (libinih), reference JSON (jansson) and
 * --set key=value, all through one key table (see model_config.h). */
#include "model/model_config.h"

#include <errno.h>
#include <ini.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dc_model_config_defaults(struct dc_model_config *c) {
    memset(c, 0, sizeof *c);
    /* taco-group/DecAlign config.py default_config */
    c->d_model = 40;
    c->heads = 10;
    c->nlevels = 5;
    c->kernel[0] = c->kernel[1] = c->kernel[2] = 1;
    c->num_prototypes = 8;
    c->lambda_ot = 0.1;
    c->ot_num_iters = 50;
    c->attn_dropout = 0.1;
    c->attn_dropout_a = 0.0;
    c->attn_dropout_v = 0.0;
    c->relu_dropout = 0.1;
    c->embed_dropout = 0.25;
    c->res_dropout = 0.1;
    c->output_dropout = 0.0;
    c->text_dropout = 0.0;
    c->attn_mask = true;
    c->batch_size = 24;
    c->learning_rate = 1e-3;
    c->weight_decay = 0.0;
    c->num_epochs = 100;
    c->early_stop_patience = 20; /* patience 20 */
    c->scheduler_patience = 20;
    c->clip = 0.8;
    c->factor = 0.1;
    snprintf(c->dataset_name, sizeof c->dataset_name, "mosi");
    /* the spec's defaults for the keys read with getattr (shared/spec/decalign-model.md §3-§6) */
    c->gmm_em_iters = 5;
    c->gmm_var_floor = 1e-4;
    c->pde_dim = 0; /* 0: d_model */
    c->mmd_bandwidth = 1.0;
    c->active[0] = c->active[1] = c->active[2] = true;
    c->use_cross_modal_attention = true;
    c->hetero_sum = false;
    c->local_proto_mahalanobis = false;
    c->task_loss = DC_CFG_TASK_LOSS_L1; /* reference default "mae" */
    c->smooth_l1_beta = 1.0;
    c->binary_task_weight = 0.0;
    c->dec_loss_weight = 1.0;
    c->alpha = 0.05;
    c->beta = 0.05;
    c->ct_weight = 0.0;
    c->ct_temperature = 0.1;
    c->num_classes = 1;
    c->class_weight = DC_CFG_CLASS_WEIGHT_NONE;
    c->feature_standardize_modalities[1] = c->feature_standardize_modalities[2] = true; /* ['audio','vision'] */
    c->feature_clip_percentiles[0] = 0.5;
    c->feature_clip_percentiles[1] = 99.5;
}

size_t dc_model_config_out_dim(const struct dc_model_config *c) { return c->classification ? c->num_classes : 1; }

/* ---- value readers: each returns 0 on success, else fills err ---- */

static dc_status bad(struct dc_error *err, const char *label, const char *key, const char *what) {
    return dc_set_error(err, DC_ERR_ARG, "%s: config key '%s': %s", label, key, what);
}

static dc_status get_num(json_t *v, double *out, const char *label, const char *key, struct dc_error *err) {
    if (!json_is_number(v)) return bad(err, label, key, "expected a number");
    double x = json_number_value(v);
    if (!isfinite(x)) return bad(err, label, key, "expected a finite number");
    *out = x;
    return DC_OK;
}

static dc_status get_nonneg(json_t *v, double *out, const char *label, const char *key, struct dc_error *err) {
    dc_status st = get_num(v, out, label, key, err);
    if (st == DC_OK && *out < 0) return bad(err, label, key, "must not be negative");
    return st;
}

static dc_status get_prob(json_t *v, double *out, const char *label, const char *key, struct dc_error *err) {
    dc_status st = get_num(v, out, label, key, err);
    if (st == DC_OK && (*out < 0 || *out >= 1)) return bad(err, label, key, "a dropout probability must be in [0, 1)");
    return st;
}

static dc_status get_size(json_t *v, size_t *out, size_t lo, const char *label, const char *key,
                          struct dc_error *err) {
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo) {
        char why[64];
        snprintf(why, sizeof why, "expected an integer >= %zu", lo);
        return bad(err, label, key, why);
    }
    *out = (size_t)json_integer_value(v);
    return DC_OK;
}

static dc_status get_bool(json_t *v, bool *out, const char *label, const char *key, struct dc_error *err) {
    if (json_is_boolean(v)) *out = json_is_true(v);
    else if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1))
        *out = json_integer_value(v) == 1;
    else return bad(err, label, key, "expected true or false");
    return DC_OK;
}

static dc_status get_str(json_t *v, char *out, size_t cap, const char *label, const char *key, struct dc_error *err) {
    if (!json_is_string(v)) return bad(err, label, key, "expected a string");
    if (strlen(json_string_value(v)) >= cap) return bad(err, label, key, "string too long");
    snprintf(out, cap, "%s", json_string_value(v));
    return DC_OK;
}

static dc_status get_sizes3(json_t *v, size_t out[3], const char *label, const char *key, struct dc_error *err) {
    if (!json_is_array(v) || json_array_size(v) != 3) return bad(err, label, key, "expected a list of 3 integers");
    for (size_t i = 0; i < 3; ++i) {
        json_t *e = json_array_get(v, i);
        if (!json_is_integer(e) || json_integer_value(e) < 1)
            return bad(err, label, key, "expected a list of 3 positive integers");
        out[i] = (size_t)json_integer_value(e);
    }
    return DC_OK;
}

/* "text"/"audio"/"vision" (also "l"/"a"/"v", "video") -> 0/1/2, else -1. */
static int modality_index(const char *s) {
    if (!strcmp(s, "text") || !strcmp(s, "l") || !strcmp(s, "T")) return 0;
    if (!strcmp(s, "audio") || !strcmp(s, "a") || !strcmp(s, "A")) return 1;
    if (!strcmp(s, "vision") || !strcmp(s, "video") || !strcmp(s, "v") || !strcmp(s, "V")) return 2;
    return -1;
}

static dc_status get_modalities(json_t *v, bool out[3], bool nonempty, const char *label, const char *key,
                                struct dc_error *err) {
    if (!json_is_array(v)) return bad(err, label, key, "expected a list of modality names (text, audio, vision)");
    out[0] = out[1] = out[2] = false;
    for (size_t i = 0; i < json_array_size(v); ++i) {
        json_t *e = json_array_get(v, i);
        int m = json_is_string(e) ? modality_index(json_string_value(e)) : -1;
        if (m < 0) return bad(err, label, key, "modality names are text, audio and vision");
        out[m] = true;
    }
    if (nonempty && !out[0] && !out[1] && !out[2]) return bad(err, label, key, "at least one modality is needed");
    return DC_OK;
}

/* The one key table: every key .cfg, JSON and --set accept, its .cfg section and the shape of
 * its value (how a .cfg or --set string becomes a JSON value before parse_key checks it).
 * Table order is the order dc_model_config_to_cfg writes. */
enum key_section { SEC_DATA, SEC_MODEL, SEC_LOSS, SEC_TRAIN, SEC_IGNORED };
enum key_shape {
    SH_SCALAR, /* number, true/false or null */
    SH_STRING, /* the text as is (surrounding double quotes removed) */
    SH_LIST,   /* comma-separated scalars or names; null */
};
struct key_def {
    const char *name;
    enum key_section section;
    enum key_shape shape;
};

static const char *const SECTION_NAMES[] = {"data", "model", "loss", "train"};

static const struct key_def KEYS[] = {
    {"data", SEC_DATA, SH_STRING},
    {"dataset_name", SEC_DATA, SH_STRING},
    {"feature_dims", SEC_DATA, SH_LIST},
    {"seq_lens", SEC_DATA, SH_LIST},
    {"need_feature_standardized", SEC_DATA, SH_SCALAR},
    {"feature_standardize_modalities", SEC_DATA, SH_LIST},
    {"feature_clip_percentiles", SEC_DATA, SH_LIST},
    {"dst_feature_dim_nheads", SEC_MODEL, SH_LIST},
    {"nlevels", SEC_MODEL, SH_SCALAR},
    {"conv1d_kernel_size_l", SEC_MODEL, SH_SCALAR},
    {"conv1d_kernel_size_a", SEC_MODEL, SH_SCALAR},
    {"conv1d_kernel_size_v", SEC_MODEL, SH_SCALAR},
    {"num_prototypes", SEC_MODEL, SH_SCALAR},
    {"gmm_em_iters", SEC_MODEL, SH_SCALAR},
    {"gmm_var_floor", SEC_MODEL, SH_SCALAR},
    {"lambda_ot", SEC_MODEL, SH_SCALAR},
    {"ot_num_iters", SEC_MODEL, SH_SCALAR},
    {"pde_dim", SEC_MODEL, SH_SCALAR},
    {"mmd_bandwidth", SEC_MODEL, SH_SCALAR},
    {"active_modalities", SEC_MODEL, SH_LIST},
    {"use_cross_modal_attention", SEC_MODEL, SH_SCALAR},
    {"attn_mask", SEC_MODEL, SH_SCALAR},
    {"use_sequence_mask", SEC_MODEL, SH_SCALAR},
    {"hetero_cost_reduction", SEC_MODEL, SH_STRING},
    {"local_proto_mahalanobis", SEC_MODEL, SH_SCALAR},
    {"attn_dropout", SEC_MODEL, SH_SCALAR},
    {"attn_dropout_a", SEC_MODEL, SH_SCALAR},
    {"attn_dropout_v", SEC_MODEL, SH_SCALAR},
    {"relu_dropout", SEC_MODEL, SH_SCALAR},
    {"embed_dropout", SEC_MODEL, SH_SCALAR},
    {"res_dropout", SEC_MODEL, SH_SCALAR},
    {"output_dropout", SEC_MODEL, SH_SCALAR},
    {"text_dropout", SEC_MODEL, SH_SCALAR},
    {"train_mode", SEC_LOSS, SH_STRING},
    {"num_classes", SEC_LOSS, SH_SCALAR},
    {"task_loss", SEC_LOSS, SH_STRING},
    {"smooth_l1_beta", SEC_LOSS, SH_SCALAR},
    {"binary_task_weight", SEC_LOSS, SH_SCALAR},
    {"class_weight", SEC_LOSS, SH_STRING},
    {"class_weights", SEC_LOSS, SH_LIST},
    {"dec_loss_weight", SEC_LOSS, SH_SCALAR},
    {"alpha", SEC_LOSS, SH_SCALAR},
    {"beta", SEC_LOSS, SH_SCALAR},
    {"ct_weight", SEC_LOSS, SH_SCALAR},
    {"ct_temperature", SEC_LOSS, SH_SCALAR},
    {"seeds", SEC_TRAIN, SH_LIST},
    {"batch_size", SEC_TRAIN, SH_SCALAR},
    {"learning_rate", SEC_TRAIN, SH_SCALAR},
    {"weight_decay", SEC_TRAIN, SH_SCALAR},
    {"clip", SEC_TRAIN, SH_SCALAR},
    {"num_epochs", SEC_TRAIN, SH_SCALAR},
    {"patience", SEC_TRAIN, SH_SCALAR},
    {"early_stop_patience", SEC_TRAIN, SH_SCALAR},
    {"scheduler_patience", SEC_TRAIN, SH_SCALAR},
    {"factor", SEC_TRAIN, SH_SCALAR},
    {"selection_metric", SEC_TRAIN, SH_STRING},
    {"selection_mode", SEC_TRAIN, SH_STRING},
    {"scheduler_metric", SEC_TRAIN, SH_STRING},
    {"scheduler_mode", SEC_TRAIN, SH_STRING},
    /* accepted and reported as ignored (spec §9) */
    {"model_name", SEC_IGNORED, SH_STRING},
    {"use_bert", SEC_IGNORED, SH_STRING},
    {"use_finetune", SEC_IGNORED, SH_STRING},
    {"transformers", SEC_IGNORED, SH_STRING},
    {"pretrained", SEC_IGNORED, SH_STRING},
    {"bert_learning_rate", SEC_IGNORED, SH_STRING},
    {"need_data_aligned", SEC_IGNORED, SH_STRING},
    {"need_normalized", SEC_IGNORED, SH_STRING},
    {"language", SEC_IGNORED, SH_STRING},
    {"train_samples", SEC_IGNORED, SH_STRING},
    {"iemocap_protocol", SEC_IGNORED, SH_STRING},
    {"when", SEC_IGNORED, SH_STRING},
    {"alpha1", SEC_IGNORED, SH_STRING},
    {"alpha2", SEC_IGNORED, SH_STRING},
    {"featurePath", SEC_IGNORED, SH_STRING},
    {"feature_T", SEC_IGNORED, SH_STRING},
    {"feature_A", SEC_IGNORED, SH_STRING},
    {"feature_V", SEC_IGNORED, SH_STRING},
};
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

static const struct key_def *find_key(const char *k) {
    for (size_t i = 0; i < NKEYS; ++i)
        if (!strcmp(KEYS[i].name, k)) return &KEYS[i];
    return NULL;
}

/* One key; DC_ERR_ARG for an unknown key or a bad value. patience_seen tracks the fallback. */
struct parse_state {
    bool have_es, have_sp; /* early_stop_patience / scheduler_patience given (not null) */
    bool have_patience;
    size_t patience;
    bool have_class_weights;
    size_t nclass_weights;
    double class_weights[DC_CFG_MAX_CLASSES];
    bool have_task_loss;
};

static dc_status parse_key(struct dc_model_config *c, struct parse_state *ps, const char *k, json_t *v,
                           const char *label, struct dc_error *err) {
    dc_status st = DC_OK;
    const struct key_def *kd = find_key(k);
    if (!kd) return dc_set_error(err, DC_ERR_ARG, "%s: unknown config key '%s'", label, k);
    if (kd->section == SEC_IGNORED) {
        if (c->nignored < DC_CFG_MAX_IGNORED) snprintf(c->ignored[c->nignored++], sizeof c->ignored[0], "%s", k);
        return DC_OK;
    }
#define IS(name) (strcmp(k, name) == 0)
    if (IS("dst_feature_dim_nheads")) {
        if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 0)) ||
            !json_is_integer(json_array_get(v, 1)) || json_integer_value(json_array_get(v, 0)) < 1 ||
            json_integer_value(json_array_get(v, 1)) < 1)
            return bad(err, label, k, "expected [d_model, heads], two positive integers");
        c->d_model = (size_t)json_integer_value(json_array_get(v, 0));
        c->heads = (size_t)json_integer_value(json_array_get(v, 1));
    } else if (IS("nlevels")) st = get_size(v, &c->nlevels, 1, label, k, err);
    else if (IS("conv1d_kernel_size_l")) st = get_size(v, &c->kernel[0], 1, label, k, err);
    else if (IS("conv1d_kernel_size_a")) st = get_size(v, &c->kernel[1], 1, label, k, err);
    else if (IS("conv1d_kernel_size_v")) st = get_size(v, &c->kernel[2], 1, label, k, err);
    else if (IS("num_prototypes")) st = get_size(v, &c->num_prototypes, 1, label, k, err);
    else if (IS("gmm_em_iters")) st = get_size(v, &c->gmm_em_iters, 0, label, k, err);
    else if (IS("gmm_var_floor")) {
        if ((st = get_num(v, &c->gmm_var_floor, label, k, err)) == DC_OK && c->gmm_var_floor <= 0)
            return bad(err, label, k, "must be > 0");
    } else if (IS("lambda_ot")) st = get_nonneg(v, &c->lambda_ot, label, k, err);
    else if (IS("ot_num_iters")) st = get_size(v, &c->ot_num_iters, 0, label, k, err);
    else if (IS("pde_dim")) st = get_size(v, &c->pde_dim, 1, label, k, err);
    else if (IS("mmd_bandwidth")) {
        if ((st = get_num(v, &c->mmd_bandwidth, label, k, err)) == DC_OK && c->mmd_bandwidth <= 0)
            return bad(err, label, k, "must be > 0");
    } else if (IS("attn_dropout")) st = get_prob(v, &c->attn_dropout, label, k, err);
    else if (IS("attn_dropout_a")) st = get_prob(v, &c->attn_dropout_a, label, k, err);
    else if (IS("attn_dropout_v")) st = get_prob(v, &c->attn_dropout_v, label, k, err);
    else if (IS("relu_dropout")) st = get_prob(v, &c->relu_dropout, label, k, err);
    else if (IS("embed_dropout")) st = get_prob(v, &c->embed_dropout, label, k, err);
    else if (IS("res_dropout")) st = get_prob(v, &c->res_dropout, label, k, err);
    else if (IS("output_dropout")) st = get_prob(v, &c->output_dropout, label, k, err);
    else if (IS("text_dropout")) st = get_prob(v, &c->text_dropout, label, k, err);
    else if (IS("attn_mask")) st = get_bool(v, &c->attn_mask, label, k, err);
    else if (IS("task_loss")) {
        if (!json_is_string(v)) return bad(err, label, k, "expected a string");
        const char *s = json_string_value(v);
        if (!strcmp(s, "mse")) c->task_loss = DC_CFG_TASK_LOSS_MSE;
        else if (!strcmp(s, "mae") || !strcmp(s, "l1")) c->task_loss = DC_CFG_TASK_LOSS_L1;
        else if (!strcmp(s, "smooth_l1") || !strcmp(s, "huber")) c->task_loss = DC_CFG_TASK_LOSS_SMOOTH_L1;
        else return bad(err, label, k, "must be mse, mae, l1, smooth_l1 or huber");
        ps->have_task_loss = true;
    } else if (IS("smooth_l1_beta")) st = get_nonneg(v, &c->smooth_l1_beta, label, k, err);
    else if (IS("dec_loss_weight")) st = get_num(v, &c->dec_loss_weight, label, k, err);
    else if (IS("alpha")) st = get_num(v, &c->alpha, label, k, err);
    else if (IS("beta")) st = get_num(v, &c->beta, label, k, err);
    else if (IS("ct_weight")) st = get_num(v, &c->ct_weight, label, k, err);
    else if (IS("ct_temperature")) {
        if ((st = get_num(v, &c->ct_temperature, label, k, err)) == DC_OK && c->ct_temperature <= 0)
            return bad(err, label, k, "must be > 0");
    } else if (IS("binary_task_weight")) st = get_nonneg(v, &c->binary_task_weight, label, k, err);
    else if (IS("batch_size")) st = get_size(v, &c->batch_size, 1, label, k, err);
    else if (IS("learning_rate")) st = get_nonneg(v, &c->learning_rate, label, k, err);
    else if (IS("weight_decay")) st = get_nonneg(v, &c->weight_decay, label, k, err);
    else if (IS("num_epochs")) st = get_size(v, &c->num_epochs, 1, label, k, err);
    else if (IS("patience")) {
        st = get_size(v, &ps->patience, 0, label, k, err);
        ps->have_patience = true;
    } else if (IS("early_stop_patience")) {
        if (!json_is_null(v)) {
            st = get_size(v, &c->early_stop_patience, 0, label, k, err);
            ps->have_es = true;
        }
    } else if (IS("scheduler_patience")) {
        if (!json_is_null(v)) {
            st = get_size(v, &c->scheduler_patience, 0, label, k, err);
            ps->have_sp = true;
        }
    } else if (IS("selection_metric")) st = get_str(v, c->selection_metric, sizeof c->selection_metric, label, k, err);
    else if (IS("scheduler_metric")) st = get_str(v, c->scheduler_metric, sizeof c->scheduler_metric, label, k, err);
    else if (IS("selection_mode") || IS("scheduler_mode")) {
        char *dst = IS("selection_mode") ? c->selection_mode : c->scheduler_mode;
        if ((st = get_str(v, dst, sizeof c->selection_mode, label, k, err)) == DC_OK && strcmp(dst, "min") &&
            strcmp(dst, "max"))
            return bad(err, label, k, "must be min or max");
    } else if (IS("clip")) st = get_nonneg(v, &c->clip, label, k, err);
    else if (IS("factor")) st = get_nonneg(v, &c->factor, label, k, err);
    else if (IS("feature_dims")) st = get_sizes3(v, c->feature_dims, label, k, err);
    else if (IS("seq_lens")) st = get_sizes3(v, c->seq_lens, label, k, err);
    else if (IS("num_classes")) st = get_size(v, &c->num_classes, 1, label, k, err);
    else if (IS("train_mode")) {
        if (!json_is_string(v)) return bad(err, label, k, "expected a string");
        const char *s = json_string_value(v);
        if (!strcmp(s, "regression")) c->classification = false;
        else if (!strcmp(s, "classification")) c->classification = true;
        else return bad(err, label, k, "must be regression or classification");
    } else if (IS("dataset_name")) st = get_str(v, c->dataset_name, sizeof c->dataset_name, label, k, err);
    else if (IS("active_modalities")) st = get_modalities(v, c->active, true, label, k, err);
    else if (IS("use_cross_modal_attention")) st = get_bool(v, &c->use_cross_modal_attention, label, k, err);
    else if (IS("hetero_cost_reduction")) {
        if (!json_is_string(v)) return bad(err, label, k, "expected a string");
        const char *s = json_string_value(v);
        if (!strcmp(s, "mean")) c->hetero_sum = false;
        else if (!strcmp(s, "sum")) c->hetero_sum = true;
        else return bad(err, label, k, "must be mean or sum");
    } else if (IS("local_proto_mahalanobis")) st = get_bool(v, &c->local_proto_mahalanobis, label, k, err);
    else if (IS("use_sequence_mask")) st = get_bool(v, &c->use_sequence_mask, label, k, err);
    else if (IS("class_weight")) {
        if (json_is_null(v)) c->class_weight = DC_CFG_CLASS_WEIGHT_NONE;
        else if (!json_is_string(v)) return bad(err, label, k, "must be balanced or none");
        else if (!strcmp(json_string_value(v), "balanced")) c->class_weight = DC_CFG_CLASS_WEIGHT_BALANCED;
        else if (!strcmp(json_string_value(v), "none")) c->class_weight = DC_CFG_CLASS_WEIGHT_NONE;
        else return bad(err, label, k, "must be balanced or none");
    } else if (IS("class_weights")) {
        if (!json_is_null(v)) {
            if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > DC_CFG_MAX_CLASSES)
                return bad(err, label, k, "expected a list of per-class weights");
            ps->nclass_weights = json_array_size(v);
            for (size_t i = 0; i < ps->nclass_weights; ++i)
                if ((st = get_nonneg(json_array_get(v, i), &ps->class_weights[i], label, k, err)) != DC_OK) return st;
            ps->have_class_weights = true;
        }
    } else if (IS("need_feature_standardized")) st = get_bool(v, &c->need_feature_standardized, label, k, err);
    else if (IS("feature_standardize_modalities"))
        st = get_modalities(v, c->feature_standardize_modalities, false, label, k, err);
    else if (IS("feature_clip_percentiles")) {
        if (!json_is_array(v) || json_array_size(v) != 2) return bad(err, label, k, "expected [low, high]");
        for (size_t i = 0; i < 2 && st == DC_OK; ++i)
            st = get_num(json_array_get(v, i), &c->feature_clip_percentiles[i], label, k, err);
        if (st == DC_OK && !(0 <= c->feature_clip_percentiles[0] &&
                             c->feature_clip_percentiles[0] < c->feature_clip_percentiles[1] &&
                             c->feature_clip_percentiles[1] <= 100))
            return bad(err, label, k, "expected 0 <= low < high <= 100");
    } else if (IS("data")) st = get_str(v, c->data, sizeof c->data, label, k, err);
    else if (IS("seeds")) {
        if (json_is_integer(v) && json_integer_value(v) >= 0) {
            c->nseeds = 1;
            c->seeds[0] = (uint64_t)json_integer_value(v);
        } else {
            if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > DC_CFG_MAX_SEEDS)
                return bad(err, label, k, "expected a list of non-negative integers");
            c->nseeds = json_array_size(v);
            for (size_t i = 0; i < c->nseeds; ++i) {
                json_t *e = json_array_get(v, i);
                if (!json_is_integer(e) || json_integer_value(e) < 0)
                    return bad(err, label, k, "expected a list of non-negative integers");
                c->seeds[i] = (uint64_t)json_integer_value(e);
            }
        }
    } else {
        return dc_set_error(err, DC_ERR_ARG, "%s: config key '%s' has no reader", label, k); /* table out of step */
    }
#undef IS
    return st;
}

/* ---- resolution: keys of one source (a phase), then the cross-key checks ---- */

/* patience fills early_stop_patience / scheduler_patience not given (or null) in this phase. */
static void phase_end(struct dc_model_config *c, struct parse_state *ps) {
    if (ps->have_patience) {
        if (!ps->have_es) c->early_stop_patience = ps->patience;
        if (!ps->have_sp) c->scheduler_patience = ps->patience;
    }
    ps->have_es = ps->have_sp = ps->have_patience = false;
}

static dc_status finalize(struct dc_model_config *c, const struct parse_state *ps, const char *label,
                          struct dc_error *err) {
    if (c->pde_dim == 0) c->pde_dim = c->d_model;
    if (c->d_model % c->heads != 0)
        return bad(err, label, "dst_feature_dim_nheads", "d_model must be a multiple of heads");
    if (c->classification && c->num_classes < 2)
        return bad(err, label, "num_classes", "classification needs at least 2 classes");
    if (c->classification && c->num_classes > DC_CFG_MAX_CLASSES)
        return bad(err, label, "num_classes", "too many classes");
    if (ps->have_class_weights) {
        if (!c->classification) return bad(err, label, "class_weights", "only for classification");
        if (ps->nclass_weights != c->num_classes) return bad(err, label, "class_weights", "needs num_classes entries");
        for (size_t i = 0; i < c->num_classes; ++i) c->class_weights[i] = (float)ps->class_weights[i];
        c->class_weight = DC_CFG_CLASS_WEIGHT_EXPLICIT;
    }
    return DC_OK;
}

static dc_status json_keys(struct dc_model_config *c, struct parse_state *ps, const char *text, size_t len,
                           const char *label, struct dc_error *err) {
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return dc_set_error(err, DC_ERR_FORMAT, "%s: line %d column %d: %s", label, jerr.line, jerr.column, jerr.text);
    dc_status st = DC_OK;
    if (!json_is_object(root)) st = dc_set_error(err, DC_ERR_FORMAT, "%s: a config is a JSON object", label);
    const char *key;
    json_t *val;
    if (st == DC_OK) {
        json_object_foreach(root, key, val) {
            st = parse_key(c, ps, key, val, label, err);
            if (st != DC_OK) break;
        }
    }
    json_decref(root);
    if (st == DC_OK) phase_end(c, ps);
    return st;
}

dc_status dc_model_config_parse_json(struct dc_model_config *c, const char *text, size_t len, const char *label,
                                     struct dc_error *err) {
    dc_model_config_defaults(c);
    struct parse_state ps = {0};
    dc_status st = json_keys(c, &ps, text, len, label, err);
    return st == DC_OK ? finalize(c, &ps, label, err) : st;
}

/* ---- .cfg / --set values: text -> JSON value by the key's shape ---- */

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') ++s;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = 0;
    return s;
}

/* A number, true/false, null, or else the text as a string (the key's reader then names what it expected). */
static json_t *scalar_value(const char *s) {
    if (!strcmp(s, "true") || !strcmp(s, "True")) return json_true();
    if (!strcmp(s, "false") || !strcmp(s, "False")) return json_false();
    if (!strcmp(s, "null") || !strcmp(s, "None")) return json_null();
    if (*s) {
        char *end;
        errno = 0;
        long long i = strtoll(s, &end, 10);
        if (!*end && errno == 0) return json_integer(i);
        errno = 0;
        double d = strtod(s, &end);
        if (!*end && errno == 0 && isfinite(d)) return json_real(d);
    }
    return json_string(s);
}

/* NULL: out of memory, or *why set for a malformed value. */
static json_t *text_value(const struct key_def *kd, const char *raw, const char **why) {
    size_t n = strlen(raw);
    char *buf = malloc(n + 1);
    if (!buf) return NULL;
    memcpy(buf, raw, n + 1);
    char *s = trim(buf);
    json_t *v = NULL;
    if (kd->shape == SH_STRING) {
        size_t m = strlen(s);
        if (m >= 2 && s[0] == '"' && s[m - 1] == '"') {
            s[m - 1] = 0;
            ++s;
        }
        v = json_string(s);
        if (!v) *why = "not valid UTF-8";
    } else if (kd->shape == SH_SCALAR) {
        if (!*s) *why = "a value is needed";
        else v = scalar_value(s);
    } else if (!strcmp(s, "null") || !strcmp(s, "None")) {
        v = json_null();
    } else {
        v = json_array();
        for (char *p = s; v && *s;) {
            char *comma = strchr(p, ',');
            if (comma) *comma = 0;
            char *e = trim(p);
            if (!*e) {
                *why = "empty list element (lists are comma-separated: a, b, c)";
                json_decref(v);
                v = NULL;
                break;
            }
            json_array_append_new(v, scalar_value(e));
            if (!comma) break;
            p = comma + 1;
        }
    }
    free(buf);
    return v;
}

/* One key = value from a .cfg line or --set, checked by parse_key. */
static dc_status text_key(struct dc_model_config *c, struct parse_state *ps, const char *key, const char *value,
                          const char *label, struct dc_error *err) {
    const struct key_def *kd = find_key(key);
    if (!kd) return dc_set_error(err, DC_ERR_ARG, "%s: unknown config key '%s'", label, key);
    const char *why = NULL;
    json_t *v = text_value(kd, value, &why);
    if (!v) return why ? bad(err, label, key, why) : dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    dc_status st = parse_key(c, ps, key, v, label, err);
    json_decref(v);
    return st;
}

/* ---- .cfg through libinih, with our own line reader so messages carry the exact line ---- */

struct cfg_reader {
    const char *p, *end, *label;
    int line;
    struct dc_model_config *c;
    struct parse_state *ps;
    int seen[NKEYS]; /* line where each key was given, 0 if not yet */
    int err_line;    /* first error found by the reader or the handler; 0 if none */
    struct dc_error first;
};

static void reader_fail(struct cfg_reader *r, int line, dc_status code, const char *msg) {
    if (r->err_line) return;
    r->err_line = line;
    dc_set_error(&r->first, code, "%s:%d: %s", r->label, line, msg);
}

static char *cfg_read_line(char *str, int num, void *stream) {
    struct cfg_reader *r = stream;
    if (r->p >= r->end || r->err_line) return NULL;
    size_t avail = (size_t)(r->end - r->p), cap = (size_t)num - 1;
    const char *nl = memchr(r->p, '\n', avail < cap ? avail : cap);
    size_t n = nl ? (size_t)(nl - r->p) + 1 : (avail < cap ? avail : cap);
    r->line++;
    if (!nl && avail > cap) {
        char msg[96];
        snprintf(msg, sizeof msg, "line longer than %d characters", num - 2);
        reader_fail(r, r->line, DC_ERR_FORMAT, msg);
        return NULL;
    }
    if (memchr(r->p, 0, n)) {
        reader_fail(r, r->line, DC_ERR_FORMAT, "NUL byte in a config");
        return NULL;
    }
    memcpy(str, r->p, n);
    str[n] = 0;
    r->p += n;
    return str;
}

static int cfg_handler(void *user, const char *section, const char *name, const char *value) {
    struct cfg_reader *r = user;
    if (r->err_line) return 1; /* report the first error only */
    char label[1100];
    snprintf(label, sizeof label, "%s:%d", r->label, r->line);
    struct dc_error e = {0};
    dc_status st = DC_OK;
    bool known_section = !*section;
    for (size_t i = 0; i < 4; ++i) known_section |= !strcmp(section, SECTION_NAMES[i]);
    const struct key_def *kd = find_key(name);
    if (!known_section)
        st = dc_set_error(&e, DC_ERR_ARG, "%s: unknown section [%s] (key '%s'); sections are [data], [model], [loss], [train]",
                          label, section, name);
    else if (kd && r->seen[kd - KEYS])
        st = dc_set_error(&e, DC_ERR_ARG, "%s: config key '%s' given twice (first at line %d)", label, name,
                          r->seen[kd - KEYS]);
    else {
        if (kd) r->seen[kd - KEYS] = r->line;
        st = text_key(r->c, r->ps, name, value, label, &e);
    }
    if (st != DC_OK) {
        r->err_line = r->line;
        r->first = e;
        return 0;
    }
    return 1;
}

static dc_status cfg_keys(struct dc_model_config *c, struct parse_state *ps, const char *text, size_t len,
                          const char *label, struct dc_error *err) {
    struct cfg_reader *r = calloc(1, sizeof *r);
    if (!r) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    r->p = text;
    r->end = text + len;
    r->label = label;
    r->c = c;
    r->ps = ps;
    int rc = ini_parse_stream(cfg_read_line, r, cfg_handler, r);
    dc_status st = DC_OK;
    if (rc == -2) st = dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    else if (rc > 0 && (!r->err_line || rc < r->err_line))
        st = dc_set_error(err, DC_ERR_FORMAT,
                          "%s:%d: syntax error: expected 'key = value', '[section]' or a '#' comment", label, rc);
    else if (r->err_line) {
        st = r->first.code;
        if (err) *err = r->first;
    }
    free(r);
    if (st == DC_OK) phase_end(c, ps);
    return st;
}

dc_status dc_model_config_parse_cfg(struct dc_model_config *c, const char *text, size_t len, const char *label,
                                    struct dc_error *err) {
    dc_model_config_defaults(c);
    struct parse_state ps = {0};
    dc_status st = cfg_keys(c, &ps, text, len, label, err);
    return st == DC_OK ? finalize(c, &ps, label, err) : st;
}

static dc_status set_keys(struct dc_model_config *c, struct parse_state *ps, const char *const *sets, size_t nsets,
                          struct dc_error *err) {
    for (size_t i = 0; i < nsets; ++i) {
        const char *eq = strchr(sets[i], '=');
        size_t klen = eq ? (size_t)(eq - sets[i]) : 0;
        char key[64];
        if (!eq || klen >= sizeof key)
            return dc_set_error(err, DC_ERR_ARG, "--set '%s': expected key=value", sets[i]);
        memcpy(key, sets[i], klen);
        key[klen] = 0;
        char *k = trim(key);
        if (!*k) return dc_set_error(err, DC_ERR_ARG, "--set '%s': expected key=value", sets[i]);
        dc_status st = text_key(c, ps, k, eq + 1, "--set", err);
        if (st != DC_OK) return st;
    }
    phase_end(c, ps);
    return DC_OK;
}

/* ---- files ---- */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static dc_status slurp(const char *path, char **out, size_t *out_len, struct dc_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return dc_set_error(err, DC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    dc_status st = DC_OK;
    for (;;) {
        if (len + 4096 > cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            if (ncap > (64u << 20)) {
                st = dc_set_error(err, DC_ERR_FORMAT, "%s: too large for a config", path);
                break;
            }
            char *nb = realloc(buf, ncap);
            if (!nb) {
                st = dc_set_error(err, DC_ERR_NOMEM, "out of memory");
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) st = dc_set_error(err, DC_ERR_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (st != DC_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_len = len;
    return DC_OK;
}

dc_status dc_model_config_load(struct dc_model_config *c, const char *path, struct dc_error *err) {
    return dc_model_config_read(c, path, NULL, 0, err);
}

dc_status dc_model_config_read(struct dc_model_config *c, const char *path, const char *const *sets, size_t nsets,
                               struct dc_error *err) {
    dc_model_config_defaults(c);
    struct parse_state ps = {0};
    dc_status st = DC_OK;
    if (path) {
        bool is_cfg = ends_with(path, ".cfg") || ends_with(path, ".ini");
        if (!is_cfg && !ends_with(path, ".json"))
            return dc_set_error(err, DC_ERR_ARG, "%s: a config is a .cfg (INI) or a reference .json file", path);
        char *buf = NULL;
        size_t len = 0;
        st = slurp(path, &buf, &len, err);
        if (st == DC_OK)
            st = is_cfg ? cfg_keys(c, &ps, buf ? buf : "", len, path, err)
                        : json_keys(c, &ps, buf ? buf : "", len, path, err);
        free(buf);
    }
    if (st == DC_OK) st = set_keys(c, &ps, sets, nsets, err);
    if (st == DC_OK) st = finalize(c, &ps, path ? path : "--set", err);
    return st;
}

dc_status dc_model_config_apply_sets(struct dc_model_config *c, const char *const *sets, size_t nsets,
                                     struct dc_error *err) {
    struct parse_state ps = {0};
    dc_status st = set_keys(c, &ps, sets, nsets, err);
    return st == DC_OK ? finalize(c, &ps, "--set", err) : st;
}

/* ---- serialisation ---- */

static const char *const MODALITY_NAMES[3] = {"text", "audio", "vision"};

static json_t *modality_list(const bool m[3]) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < 3; ++i)
        if (m[i]) json_array_append_new(a, json_string(MODALITY_NAMES[i]));
    return a;
}

static json_t *size_list(const size_t *v, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; ++i) json_array_append_new(a, json_integer((json_int_t)v[i]));
    return a;
}

/* The value of one implemented key in c, or NULL where the key is left out (unset/derived). */
static json_t *key_value(const struct dc_model_config *c, const char *k) {
#define IS(name) (strcmp(k, name) == 0)
#define I(x) json_integer((json_int_t)(x))
    if (IS("data")) return c->data[0] ? json_string(c->data) : NULL;
    if (IS("dataset_name")) return json_string(c->dataset_name);
    if (IS("feature_dims")) return c->feature_dims[0] ? size_list(c->feature_dims, 3) : NULL;
    if (IS("seq_lens")) return c->seq_lens[0] ? size_list(c->seq_lens, 3) : NULL;
    if (IS("need_feature_standardized")) return json_boolean(c->need_feature_standardized);
    if (IS("feature_standardize_modalities")) return modality_list(c->feature_standardize_modalities);
    if (IS("feature_clip_percentiles"))
        return json_pack("[ff]", c->feature_clip_percentiles[0], c->feature_clip_percentiles[1]);
    if (IS("dst_feature_dim_nheads")) return json_pack("[II]", (json_int_t)c->d_model, (json_int_t)c->heads);
    if (IS("nlevels")) return I(c->nlevels);
    if (IS("conv1d_kernel_size_l")) return I(c->kernel[0]);
    if (IS("conv1d_kernel_size_a")) return I(c->kernel[1]);
    if (IS("conv1d_kernel_size_v")) return I(c->kernel[2]);
    if (IS("num_prototypes")) return I(c->num_prototypes);
    if (IS("gmm_em_iters")) return I(c->gmm_em_iters);
    if (IS("gmm_var_floor")) return json_real(c->gmm_var_floor);
    if (IS("lambda_ot")) return json_real(c->lambda_ot);
    if (IS("ot_num_iters")) return I(c->ot_num_iters);
    if (IS("pde_dim")) return c->pde_dim ? I(c->pde_dim) : NULL;
    if (IS("mmd_bandwidth")) return json_real(c->mmd_bandwidth);
    if (IS("active_modalities")) return modality_list(c->active);
    if (IS("use_cross_modal_attention")) return json_boolean(c->use_cross_modal_attention);
    if (IS("attn_mask")) return json_boolean(c->attn_mask);
    if (IS("use_sequence_mask")) return json_boolean(c->use_sequence_mask);
    if (IS("hetero_cost_reduction")) return json_string(c->hetero_sum ? "sum" : "mean");
    if (IS("local_proto_mahalanobis")) return json_boolean(c->local_proto_mahalanobis);
    if (IS("attn_dropout")) return json_real(c->attn_dropout);
    if (IS("attn_dropout_a")) return json_real(c->attn_dropout_a);
    if (IS("attn_dropout_v")) return json_real(c->attn_dropout_v);
    if (IS("relu_dropout")) return json_real(c->relu_dropout);
    if (IS("embed_dropout")) return json_real(c->embed_dropout);
    if (IS("res_dropout")) return json_real(c->res_dropout);
    if (IS("output_dropout")) return json_real(c->output_dropout);
    if (IS("text_dropout")) return json_real(c->text_dropout);
    if (IS("train_mode")) return json_string(c->classification ? "classification" : "regression");
    if (IS("num_classes")) return I(c->num_classes);
    if (IS("task_loss"))
        return json_string(c->task_loss == DC_CFG_TASK_LOSS_MSE  ? "mse"
                           : c->task_loss == DC_CFG_TASK_LOSS_L1 ? "mae"
                                                                 : "smooth_l1");
    if (IS("smooth_l1_beta")) return json_real(c->smooth_l1_beta);
    if (IS("binary_task_weight")) return json_real(c->binary_task_weight);
    if (IS("class_weight"))
        return c->class_weight == DC_CFG_CLASS_WEIGHT_EXPLICIT
                   ? NULL
                   : json_string(c->class_weight == DC_CFG_CLASS_WEIGHT_BALANCED ? "balanced" : "none");
    if (IS("class_weights")) {
        if (c->class_weight != DC_CFG_CLASS_WEIGHT_EXPLICIT) return NULL;
        json_t *a = json_array();
        for (size_t i = 0; a && i < c->num_classes; ++i) json_array_append_new(a, json_real(c->class_weights[i]));
        return a;
    }
    if (IS("dec_loss_weight")) return json_real(c->dec_loss_weight);
    if (IS("alpha")) return json_real(c->alpha);
    if (IS("beta")) return json_real(c->beta);
    if (IS("ct_weight")) return json_real(c->ct_weight);
    if (IS("ct_temperature")) return json_real(c->ct_temperature);
    if (IS("seeds")) {
        if (!c->nseeds) return NULL;
        json_t *a = json_array();
        for (size_t i = 0; a && i < c->nseeds; ++i) json_array_append_new(a, I(c->seeds[i]));
        return a;
    }
    if (IS("batch_size")) return I(c->batch_size);
    if (IS("learning_rate")) return json_real(c->learning_rate);
    if (IS("weight_decay")) return json_real(c->weight_decay);
    if (IS("clip")) return json_real(c->clip);
    if (IS("num_epochs")) return I(c->num_epochs);
    if (IS("early_stop_patience")) return I(c->early_stop_patience);
    if (IS("scheduler_patience")) return I(c->scheduler_patience);
    if (IS("factor")) return json_real(c->factor);
    if (IS("selection_metric")) return c->selection_metric[0] ? json_string(c->selection_metric) : NULL;
    if (IS("selection_mode")) return c->selection_mode[0] ? json_string(c->selection_mode) : NULL;
    if (IS("scheduler_metric")) return c->scheduler_metric[0] ? json_string(c->scheduler_metric) : NULL;
    if (IS("scheduler_mode")) return c->scheduler_mode[0] ? json_string(c->scheduler_mode) : NULL;
    return NULL; /* patience (resolved into the two patiences) and the ignored keys */
#undef I
#undef IS
}

static json_t *config_json(const struct dc_model_config *c) {
    json_t *o = json_object();
    for (size_t i = 0; o && i < NKEYS; ++i) {
        if (KEYS[i].section == SEC_IGNORED) continue;
        json_t *v = key_value(c, KEYS[i].name);
        if (v && json_object_set_new(o, KEYS[i].name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

dc_status dc_model_config_to_json(const struct dc_model_config *c, char **out, struct dc_error *err) {
    json_t *o = config_json(c);
    *out = o ? json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    return *out ? DC_OK : dc_set_error(err, DC_ERR_NOMEM, "out of memory");
}

/* A growing text buffer; ok false after an allocation failure. */
struct sbuf {
    char *s;
    size_t len, cap;
    bool ok;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *b, const char *fmt, ...) {
    if (!b->ok) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->ok = false;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = (b->cap ? b->cap * 2 : 1024) + (size_t)n;
        char *ns = realloc(b->s, ncap);
        if (!ns) {
            b->ok = false;
            return;
        }
        b->s = ns;
        b->cap = ncap;
    }
}

/* The shortest decimal that reads back as the same double. */
static void sb_real(struct sbuf *b, double x) {
    char tmp[40];
    for (int p = 1; p <= 17; ++p) {
        snprintf(tmp, sizeof tmp, "%.*g", p, x);
        if (strtod(tmp, NULL) == x) break;
    }
    sb_add(b, "%s%s", tmp, strpbrk(tmp, ".eEn") ? "" : ".0");
}

static dc_status sb_scalar(struct sbuf *b, json_t *v, const char *key, struct dc_error *err) {
    if (json_is_integer(v)) sb_add(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v)) sb_real(b, json_real_value(v));
    else if (json_is_boolean(v)) sb_add(b, "%s", json_is_true(v) ? "true" : "false");
    else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strpbrk(s, "\n\r;") || (*s && (s[0] == ' ' || s[strlen(s) - 1] == ' ')))
            return dc_set_error(err, DC_ERR_ARG, "config key '%s': value '%s' cannot be written to a .cfg", key, s);
        sb_add(b, "%s", s);
    } else sb_add(b, "null");
    return DC_OK;
}

dc_status dc_model_config_to_cfg(const struct dc_model_config *c, char **out, struct dc_error *err) {
    *out = NULL;
    json_t *o = config_json(c);
    if (!o) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    struct sbuf b = {.ok = true};
    dc_status st = DC_OK;
    sb_add(&b, "# decocl resolved config (keys as in the reference JSON configs; see configs/README.md)\n");
    for (int sec = SEC_DATA; sec <= SEC_TRAIN && st == DC_OK; ++sec) {
        sb_add(&b, "\n[%s]\n", SECTION_NAMES[sec]);
        for (size_t i = 0; i < NKEYS && st == DC_OK; ++i) {
            if ((int)KEYS[i].section != sec) continue;
            json_t *v = json_object_get(o, KEYS[i].name);
            if (!v) continue;
            sb_add(&b, "%s = ", KEYS[i].name);
            if (json_is_array(v)) {
                for (size_t j = 0; j < json_array_size(v) && st == DC_OK; ++j) {
                    if (j) sb_add(&b, ", ");
                    st = sb_scalar(&b, json_array_get(v, j), KEYS[i].name, err);
                }
            } else st = sb_scalar(&b, v, KEYS[i].name, err);
            sb_add(&b, "\n");
        }
    }
    json_decref(o);
    if (st == DC_OK && !b.ok) st = dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    if (st != DC_OK) {
        free(b.s);
        return st;
    }
    *out = b.s;
    return DC_OK;
}
