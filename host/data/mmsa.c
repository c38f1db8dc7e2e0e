/* The dataset layer: splits, keys, float32 features, labels, lengths, ids, and the preprocessing of
 * the DecAlign loader (shared/spec/mmsa-format.md §4): non-finite audio/vision values to 0, then
 * optional per-dimension standardisation with statistics from the train split. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/archive.h"
#include "data/mmsa.h"

struct ctx {
    const char *file;
    const char *split;
    struct dc_error *err;
};

#define FAIL(c, code, ...) fail_at(c, code, __VA_ARGS__)
static dc_status fail_at(const struct ctx *c, dc_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static dc_status fail_at(const struct ctx *c, dc_status code, const char *fmt, ...) {
    char detail[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (c->split) return dc_set_error(c->err, code, "%s: split '%s': %s", c->file, c->split, detail);
    return dc_set_error(c->err, code, "%s: %s", c->file, detail);
}

static void shape_str(const struct dc_pk_value *v, char *out, size_t cap) {
    if (v->kind != DC_PK_ARRAY) {
        snprintf(out, cap, "a %s", dc_pk_kind_name(v->kind));
        return;
    }
    size_t n = (size_t)snprintf(out, cap, "%s [", dc_dtype_name(v->u.arr.stored));
    for (int k = 0; k < v->u.arr.ndim && n < cap; ++k)
        n += (size_t)snprintf(out + n, cap - n, "%s%zu", k ? ", " : "", v->u.arr.shape[k]);
    if (n < cap) snprintf(out + n, cap - n, "]");
}

/* A numeric (N, T, D) array as float32: the reader's float32 buffer is taken over, others converted. */
static dc_status take_features(const struct ctx *c, struct dc_pk_value *v, const char *key, size_t n, float **out,
                               size_t *t, size_t *d) {
    char sh[256];
    shape_str(v, sh, sizeof sh);
    if (v->kind != DC_PK_ARRAY || v->u.arr.ndim != 3 || v->u.arr.stored == DC_DTYPE_OBJECT ||
        v->u.arr.stored == DC_DTYPE_UNICODE)
        return FAIL(c, DC_ERR_FORMAT, "key '%s' is %s (expected a numeric array [N, T, D])", key, sh);
    struct dc_pk_array *a = &v->u.arr;
    if (a->shape[0] != n)
        return FAIL(c, DC_ERR_FORMAT, "key '%s' is %s but the labels have %zu samples", key, sh, n);
    *t = a->shape[1];
    *d = a->shape[2];
    if (a->held == DC_DTYPE_F32 && a->data) {
        *out = a->data;
        a->data = NULL;
        return DC_OK;
    }
    float *f = malloc(a->count ? a->count * sizeof *f : 1);
    if (!f) return FAIL(c, DC_ERR_NOMEM, "out of memory for '%s'", key);
    if (a->count) dc_convert_to_f32(f, a->data, a->held, a->count);
    *out = f;
    return DC_OK;
}

/* A per-sample vector: an array [N] or [N, 1], or a list of N numbers. */
static dc_status take_vector(const struct ctx *c, const struct dc_pk_value *v, const char *key, size_t n, float **f,
                             int64_t **ints) {
    char sh[256];
    shape_str(v, sh, sizeof sh);
    size_t len;
    bool shape_ok = dc_mmsa_len(v, &len) && len == n;
    if (v->kind == DC_PK_ARRAY)
        shape_ok = shape_ok && (v->u.arr.ndim == 1 || (v->u.arr.ndim == 2 && v->u.arr.shape[1] == 1)) &&
                   dc_dtype_size(v->u.arr.held) > 0;
    if (!shape_ok) return FAIL(c, DC_ERR_FORMAT, "key '%s' is %s (expected %zu numbers)", key, sh, n);
    float *fo = f ? malloc(n * sizeof *fo + 1) : NULL;
    int64_t *io = ints ? malloc(n * sizeof *io + 1) : NULL;
    if ((f && !fo) || (ints && !io)) {
        free(fo);
        free(io);
        return FAIL(c, DC_ERR_NOMEM, "out of memory for '%s'", key);
    }
    for (size_t i = 0; i < n; ++i) {
        double x;
        if (!dc_mmsa_number_at(v, i, &x)) {
            free(fo);
            free(io);
            return FAIL(c, DC_ERR_FORMAT, "key '%s': element %zu is not a number", key, i);
        }
        if (fo) fo[i] = (float)x;
        if (io) io[i] = (int64_t)x;
    }
    if (f) *f = fo;
    if (ints) *ints = io;
    return DC_OK;
}

static dc_status take_text_bert(const struct ctx *c, const struct dc_pk_value *v, size_t n, struct dc_split *s) {
    char sh[256];
    shape_str(v, sh, sizeof sh);
    if (v->kind != DC_PK_ARRAY || v->u.arr.ndim != 3 || v->u.arr.shape[0] != n || v->u.arr.shape[1] != 3 ||
        dc_dtype_size(v->u.arr.held) == 0)
        return FAIL(c, DC_ERR_FORMAT, "key 'text_bert' is %s (expected token ids [%zu, 3, L])", sh, n);
    const struct dc_pk_array *a = &v->u.arr;
    s->text_bert_len = a->shape[2];
    if (!(s->text_bert = malloc(a->count * sizeof *s->text_bert + 1)))
        return FAIL(c, DC_ERR_NOMEM, "out of memory for 'text_bert'");
    for (size_t i = 0; i < a->count; ++i) {
        double x = 0;
        dc_mmsa_number_at(v, i, &x);
        s->text_bert[i] = (int64_t)x; /* MMSA-FET stores ids as float64: cast, as the spec's §4 note says */
    }
    return DC_OK;
}

static dc_status take_ids(const struct ctx *c, const struct dc_pk_value *v, size_t n, struct dc_split *s) {
    size_t len;
    if (!dc_mmsa_len(v, &len) || len != n)
        return FAIL(c, DC_ERR_FORMAT, "key 'id' has %zu entries (expected %zu strings)", dc_mmsa_len(v, &len) ? len : 0, n);
    if (!(s->ids = calloc(n, sizeof *s->ids))) return FAIL(c, DC_ERR_NOMEM, "out of memory for ids");
    char buf[1024];
    for (size_t i = 0; i < n; ++i) {
        if (!dc_mmsa_string_at(v, i, buf, sizeof buf))
            return FAIL(c, DC_ERR_FORMAT, "key 'id': element %zu is not a string", i);
        if (!(s->ids[i] = strdup(buf))) return FAIL(c, DC_ERR_NOMEM, "out of memory for ids");
    }
    return DC_OK;
}

static size_t clean_nonfinite(float *x, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; ++i)
        if (!isfinite(x[i])) {
            x[i] = 0.0f;
            ++k;
        }
    return k;
}

static dc_status load_split(const struct ctx *c, struct dc_pk_value *sd, const char *label_key, struct dc_split *s) {
    const struct dc_pk_value *lab = dc_pk_dict_get(sd, label_key);
    if (!lab) return FAIL(c, DC_ERR_FORMAT, "missing key '%s'", label_key);
    size_t n;
    if (!dc_mmsa_len(lab, &n)) return FAIL(c, DC_ERR_FORMAT, "key '%s' is not an array or list", label_key);
    if (n == 0) return FAIL(c, DC_ERR_FORMAT, "the split is empty ('%s' has 0 samples)", label_key);
    s->n = n;
    dc_status st = take_vector(c, lab, label_key, n, &s->labels, NULL);
    for (int m = 0; m < DC_MOD_COUNT && st == DC_OK; ++m) {
        const char *key = dc_modality_name((enum dc_modality)m);
        struct dc_pk_value *x = dc_pk_dict_get(sd, key);
        if (!x) return FAIL(c, DC_ERR_FORMAT, "missing key '%s'", key);
        st = take_features(c, x, key, n, &s->x[m], &s->seq_len[m], &s->dim[m]);
    }
    static const char *const tav[] = {"regression_labels_T", "regression_labels_A", "regression_labels_V"};
    for (int k = 0; k < 3 && st == DC_OK; ++k) {
        const struct dc_pk_value *v = dc_pk_dict_get(sd, tav[k]);
        if (v) st = take_vector(c, v, tav[k], n, &s->labels_tav[k], NULL);
    }
    static const char *const lens[] = {NULL, "audio_lengths", "vision_lengths"};
    for (int m = 1; m < DC_MOD_COUNT && st == DC_OK; ++m) {
        const struct dc_pk_value *v = dc_pk_dict_get(sd, lens[m]);
        if (v) st = take_vector(c, v, lens[m], n, NULL, &s->lengths[m]);
    }
    const struct dc_pk_value *tb = dc_pk_dict_get(sd, "text_bert");
    if (st == DC_OK && tb) st = take_text_bert(c, tb, n, s);
    const struct dc_pk_value *id = dc_pk_dict_get(sd, "id");
    if (st == DC_OK && id) st = take_ids(c, id, n, s);
    if (st == DC_OK)
        for (int m = DC_MOD_AUDIO; m <= DC_MOD_VISION; ++m)
            s->nonfinite_replaced += clean_nonfinite(s->x[m], n * s->seq_len[m] * s->dim[m]);
    return st;
}

static void split_free(struct dc_split *s) {
    for (int m = 0; m < DC_MOD_COUNT; ++m) {
        free(s->x[m]);
        free(s->lengths[m]);
    }
    for (int k = 0; k < 3; ++k) free(s->labels_tav[k]);
    free(s->labels);
    free(s->text_bert);
    if (s->ids)
        for (size_t i = 0; i < s->n; ++i) free(s->ids[i]);
    free(s->ids);
    memset(s, 0, sizeof *s);
}

void dc_dataset_free(struct dc_dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < DC_SPLIT_COUNT; ++i) split_free(&ds->split[i]);
    for (int m = 0; m < DC_MOD_COUNT; ++m) dc_feature_stats_free(&ds->stats[m]);
    free(ds);
}

static dc_status standardize(struct dc_dataset *ds, const struct dc_dataset_options *opt, struct dc_error *err) {
    for (int m = 0; m < DC_MOD_COUNT; ++m) {
        if (!opt->standardize[m]) continue;
        struct dc_split *train = &ds->split[DC_SPLIT_TRAIN];
        size_t d = train->dim[m];
        const struct dc_feature_stats *in = opt->stats_in ? &opt->stats_in[m] : NULL;
        dc_status st;
        if (in && in->dim) {
            if (in->dim != d)
                return dc_set_error(err, DC_ERR_ARG, "%s: %s statistics have %zu dimensions, the data has %zu",
                                    ds->source, dc_modality_name((enum dc_modality)m), in->dim, d);
            st = dc_feature_stats_import(&ds->stats[m], d, in->values, in->pct_low, in->pct_high, err);
        } else {
            st = dc_feature_stats_compute(&ds->stats[m], train->x[m], train->n * train->seq_len[m], d, opt->pct_low,
                                          opt->pct_high, err);
        }
        if (st != DC_OK) return st;
        for (int i = 0; i < DC_SPLIT_COUNT; ++i) /* train, then valid and test with the train statistics */
            dc_feature_stats_apply(&ds->stats[m], ds->split[i].x[m], ds->split[i].n * ds->split[i].seq_len[m]);
        ds->standardized[m] = true;
    }
    return DC_OK;
}

static dc_status build(struct dc_dataset *ds, struct dc_pk_doc *doc, struct dc_error *err) {
    struct ctx c = {ds->source, NULL, err};
    if (!doc->root || doc->root->kind != DC_PK_DICT)
        return FAIL(&c, DC_ERR_FORMAT, "the top-level object is a %s (expected a dict with 'train', 'valid', 'test')",
                    doc->root ? dc_pk_kind_name(doc->root->kind) : "nothing");
    struct dc_pk_value *train = dc_mmsa_split(doc, DC_SPLIT_TRAIN);
    const char *label_key = dc_pk_dict_get(train, "regression_labels") ? "regression_labels" : "classification_labels";
    snprintf(ds->label_key, sizeof ds->label_key, "%s", label_key);
    ds->kind = dc_mmsa_doc_kind(doc);
    ds->classification = ds->kind == DC_KIND_IEMOCAP || strcmp(label_key, "classification_labels") == 0;
    for (int i = 0; i < DC_SPLIT_COUNT; ++i) {
        c.split = dc_split_name((enum dc_split_id)i);
        struct dc_pk_value *sd = dc_mmsa_split(doc, (enum dc_split_id)i);
        if (!sd) {
            c.split = NULL;
            return FAIL(&c, DC_ERR_FORMAT, "missing split '%s' (expected a dict under 'train', 'valid' and 'test')",
                        dc_split_name((enum dc_split_id)i));
        }
        dc_status st = load_split(&c, sd, label_key, &ds->split[i]);
        if (st != DC_OK) return st;
        for (int m = 0; m < DC_MOD_COUNT; ++m)
            if (ds->split[i].dim[m] != ds->split[0].dim[m])
                return FAIL(&c, DC_ERR_FORMAT, "'%s' has %zu features per frame, train has %zu",
                            dc_modality_name((enum dc_modality)m), ds->split[i].dim[m], ds->split[0].dim[m]);
    }
    return DC_OK;
}

dc_status dc_dataset_load(const char *path, const struct dc_dataset_options *opt, struct dc_dataset **out,
                          struct dc_error *err) {
    *out = NULL;
    struct dc_dataset_options none = {0};
    if (!opt) opt = &none;
    struct dc_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    snprintf(ds->source, sizeof ds->source, "%s", path);
    struct dc_pk_options po = {.f32_min_ndim = 2}; /* features stream into float32; labels keep their dtype */
    struct dc_pk_doc *doc = NULL;
    dc_status st = dc_data_load_doc(path, &po, &doc, err);
    if (st == DC_OK) st = build(ds, doc, err);
    dc_pk_doc_free(doc);
    if (st == DC_OK) st = standardize(ds, opt, err);
    if (st != DC_OK) {
        dc_dataset_free(ds);
        return st;
    }
    *out = ds;
    return DC_OK;
}
