/* Reference JSON configs -> struct dc_model_config (see model_config.h). */
#include "model/model_config.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
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

static const char *const IGNORED_KEYS[] = {
    "model_name",  "use_bert",     "use_finetune", "transformers", "pretrained", "bert_learning_rate",
    "need_data_aligned", "need_normalized", "language", "train_samples", "iemocap_protocol", "when",
    "alpha1",      "alpha2",       "featurePath",  "feature_T",    "feature_A",  "feature_V",
};

/* One key; DC_ERR_ARG for an unknown key or a bad value. patience_seen tracks the fallback. */
struct parse_state {
    bool have_es, have_sp; /* early_stop_patience / scheduler_patience given (not null) */
    bool have_patience;
    size_t patience;
    bool have_class_weights;
    json_t *class_weights;
    bool have_task_loss;
};

static dc_status parse_key(struct dc_model_config *c, struct parse_state *ps, const char *k, json_t *v,
                           const char *label, struct dc_error *err) {
    dc_status st = DC_OK;
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
            ps->class_weights = v;
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
        for (size_t i = 0; i < sizeof IGNORED_KEYS / sizeof IGNORED_KEYS[0]; ++i)
            if (IS(IGNORED_KEYS[i])) {
                if (c->nignored < DC_CFG_MAX_IGNORED)
                    snprintf(c->ignored[c->nignored++], sizeof c->ignored[0], "%s", k);
                return DC_OK;
            }
        return dc_set_error(err, DC_ERR_ARG, "%s: unknown config key '%s'", label, k);
    }
#undef IS
    return st;
}

dc_status dc_model_config_parse_json(struct dc_model_config *c, const char *text, size_t len, const char *label,
                                     struct dc_error *err) {
    dc_model_config_defaults(c);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return dc_set_error(err, DC_ERR_FORMAT, "%s: line %d column %d: %s", label, jerr.line, jerr.column, jerr.text);
    dc_status st = DC_OK;
    if (!json_is_object(root)) st = dc_set_error(err, DC_ERR_FORMAT, "%s: a config is a JSON object", label);
    struct parse_state ps = {0};
    const char *key;
    json_t *val;
    if (st == DC_OK) {
        json_object_foreach(root, key, val) {
            st = parse_key(c, &ps, key, val, label, err);
            if (st != DC_OK) break;
        }
    }
    if (st == DC_OK && ps.have_patience) {
        if (!ps.have_es) c->early_stop_patience = ps.patience;
        if (!ps.have_sp) c->scheduler_patience = ps.patience;
    }
    if (st == DC_OK && c->pde_dim == 0) c->pde_dim = c->d_model;
    if (st == DC_OK && c->d_model % c->heads != 0)
        st = bad(err, label, "dst_feature_dim_nheads", "d_model must be a multiple of heads");
    if (st == DC_OK && c->classification && c->num_classes < 2)
        st = bad(err, label, "num_classes", "classification needs at least 2 classes");
    if (st == DC_OK && ps.have_class_weights) {
        if (!c->classification) st = bad(err, label, "class_weights", "only for classification");
        else if (json_array_size(ps.class_weights) != c->num_classes)
            st = bad(err, label, "class_weights", "needs num_classes entries");
        for (size_t i = 0; st == DC_OK && i < c->num_classes; ++i) {
            double w;
            st = get_nonneg(json_array_get(ps.class_weights, i), &w, label, "class_weights", err);
            c->class_weights[i] = (float)w;
        }
        if (st == DC_OK) c->class_weight = DC_CFG_CLASS_WEIGHT_EXPLICIT;
    }
    json_decref(root);
    return st;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

dc_status dc_model_config_load(struct dc_model_config *c, const char *path, struct dc_error *err) {
    if (ends_with(path, ".cfg"))
        return dc_set_error(err, DC_ERR_UNSUPPORTED,
                            "%s: .cfg (INI) configs are not supported yet; pass a reference JSON config (.json)", path);
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
    if (st == DC_OK) st = dc_model_config_parse_json(c, buf ? buf : "", len, path, err);
    free(buf);
    return st;
}
