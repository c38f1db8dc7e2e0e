/* The data layer: MMSA feature datasets (CMU-MOSI, CMU-MOSEI, CH-SIMS, IEMOCAP) read safely from
 * pickles, archives and .npy files, their preprocessing statistics, and batching.
 * Format contract: shared/spec/mmsa-format.md. Features are float32, (N, T, D), C order. */
#ifndef DECOCL_DATA_H
#define DECOCL_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decocl/status.h"

/* Element types of the arrays the readers accept (numpy names in dc_dtype_name). */
enum dc_dtype {
    DC_DTYPE_BOOL,
    DC_DTYPE_I8,
    DC_DTYPE_U8,
    DC_DTYPE_I16,
    DC_DTYPE_I32,
    DC_DTYPE_I64,
    DC_DTYPE_F16,
    DC_DTYPE_F32,
    DC_DTYPE_F64,
    DC_DTYPE_UNICODE, /* <U n: n UCS-4 code units per element */
    DC_DTYPE_OBJECT,  /* Python objects (strings in MMSA files) */
};
const char *dc_dtype_name(enum dc_dtype t); /* "float32", "int64", "bool", "object", "<U" for unicode */
bool dc_dtype_is_float(enum dc_dtype t);
bool dc_dtype_is_int(enum dc_dtype t); /* integers and bool */

enum dc_modality { DC_MOD_TEXT, DC_MOD_AUDIO, DC_MOD_VISION, DC_MOD_COUNT };
enum dc_split_id { DC_SPLIT_TRAIN, DC_SPLIT_VALID, DC_SPLIT_TEST, DC_SPLIT_COUNT };
enum dc_dataset_kind { DC_KIND_UNKNOWN, DC_KIND_MOSI, DC_KIND_MOSEI, DC_KIND_SIMS, DC_KIND_IEMOCAP };

const char *dc_modality_name(enum dc_modality m);    /* "text" "audio" "vision" (the MMSA keys) */
const char *dc_split_name(enum dc_split_id s);       /* "train" "valid" "test" */
const char *dc_dataset_kind_name(enum dc_dataset_kind k); /* "mosi" ... "unknown" */

/* Per-dimension standardisation statistics of one modality, computed on the train split
 * (shared/spec/mmsa-format.md §4 step 6). `values` is one plain (4, dim) float32 array, rows
 * low, high, mean, std, so a checkpoint stores it as a single tensor and hands it back through
 * dc_feature_stats_import. */
struct dc_feature_stats {
    size_t dim;      /* 0: no statistics */
    double pct_low;  /* percentiles the clip bounds came from, e.g. 0.5 and 99.5 */
    double pct_high;
    float *values;   /* (4, dim) */
};
enum { DC_STATS_LOW, DC_STATS_HIGH, DC_STATS_MEAN, DC_STATS_STD, DC_STATS_ROWS };

dc_status dc_feature_stats_import(struct dc_feature_stats *s, size_t dim, const float *values, double pct_low,
                                  double pct_high, struct dc_error *err);
void dc_feature_stats_free(struct dc_feature_stats *s);

/* Computes statistics over axes (0,1) of x (n_frames, dim) = all N*T frames, zero padding included:
 * low/high = numpy's default (linear) percentile, mean and std (ddof 0, floored at 1e-6) of the
 * clipped values. Accumulates in double. */
dc_status dc_feature_stats_compute(struct dc_feature_stats *s, const float *x, size_t n_frames, size_t dim,
                                   double pct_low, double pct_high, struct dc_error *err);
/* x = nan_to_num((clip(x, low, high) - mean) / std), in float32 arithmetic as numpy does. */
void dc_feature_stats_apply(const struct dc_feature_stats *s, float *x, size_t n_frames);

/* One split. Features are float32 (N, T_m, D_m), C order; audio/vision are cleaned of -inf/NaN/+inf. */
struct dc_split {
    size_t n;                      /* samples, > 0 */
    size_t seq_len[DC_MOD_COUNT];  /* T_m */
    size_t dim[DC_MOD_COUNT];      /* D_m */
    float *x[DC_MOD_COUNT];        /* (N, T_m, D_m) */
    float *labels;                 /* (N) the label key as float32 (regression value or class index) */
    float *labels_tav[3];          /* SIMS: regression_labels_T/_A/_V (N) when present, else NULL */
    int64_t *text_bert;            /* (N, 3, text_bert_len) token ids when present, else NULL */
    size_t text_bert_len;
    int64_t *lengths[DC_MOD_COUNT]; /* audio_lengths/vision_lengths (N) when present, else NULL */
    char **ids;                    /* N UTF-8 strings ("video$_$clip") when `id` is present, else NULL */
    size_t nonfinite_replaced;     /* -inf/NaN/+inf set to 0 in audio and vision */
};

struct dc_dataset {
    char source[1024];              /* the file as given */
    enum dc_dataset_kind kind;
    bool classification;            /* labels are class indices (IEMOCAP) */
    char label_key[32];             /* "regression_labels" or "classification_labels" */
    struct dc_split split[DC_SPLIT_COUNT];
    bool standardized[DC_MOD_COUNT];
    struct dc_feature_stats stats[DC_MOD_COUNT]; /* those applied, for the checkpoint */
};

struct dc_dataset_options {
    /* Per-modality standardisation (DecAlign need_feature_standardized with
     * feature_standardize_modalities). Statistics come from stats_in[m] when its dim is set
     * (e.g. from a checkpoint), else from the train split with these percentiles. */
    bool standardize[DC_MOD_COUNT];
    double pct_low, pct_high;
    const struct dc_feature_stats *stats_in; /* NULL or DC_MOD_COUNT entries */
};

/* Loads FILE: a plain pickle, FILE#member of a .tar/.tar.gz/.tar.xz/.zip, an archive holding one
 * .pkl, a .npz, or a directory of <split>/<key>.npy (datasets/README.md "Dataset files").
 * Nothing partial is returned: on failure *out is NULL and err names file, member, offset. */
dc_status dc_dataset_load(const char *path, const struct dc_dataset_options *opt, struct dc_dataset **out,
                          struct dc_error *err);
void dc_dataset_free(struct dc_dataset *ds);

/* Dataset guess from feature sizes and keys (shared/spec/mmsa-format.md §1.3, §3). */
struct dc_kind_hints {
    size_t dim[DC_MOD_COUNT];
    size_t seq_len[DC_MOD_COUNT];
    bool has_regression, has_classification, has_sims_unimodal;
};
enum dc_dataset_kind dc_dataset_kind_guess(const struct dc_kind_hints *h);

/* Batching: a permutation per epoch (training: reshuffled from a seeded mt19937; valid/test: file
 * order), batches of batch_size with the last partial batch kept (drop_last False). */
struct dc_batcher {
    size_t n, batch_size, pos;
    size_t *order;
    bool shuffle;
    uint64_t seed, epoch;
};
dc_status dc_batcher_init(struct dc_batcher *b, size_t n, size_t batch_size, bool shuffle, uint64_t seed,
                          struct dc_error *err);
/* Starts epoch `epoch` (0-based); with shuffle the order depends only on (seed, epoch). */
void dc_batcher_start_epoch(struct dc_batcher *b, uint64_t epoch);
/* The next batch's sample indices; returns their count, 0 at the end of the epoch. */
size_t dc_batcher_next(struct dc_batcher *b, const size_t **idx);
void dc_batcher_free(struct dc_batcher *b);

/* A gathered batch: contiguous (B, T_m, D_m) features and (B) labels. */
struct dc_batch {
    size_t n, cap;
    float *x[DC_MOD_COUNT];
    float *labels;
};
dc_status dc_batch_gather(struct dc_batch *out, const struct dc_split *s, const size_t *idx, size_t n,
                          struct dc_error *err);
void dc_batch_free(struct dc_batch *b);

#endif
