/* Evaluation metrics of spec section 8, computed as the reference (utils/metrices.py,
 * MMSA's SIMS metrics, sklearn, numpy) computes them.
 *
 * Kinds and names (in this order in dc_metrics.names):
 *   MOSI/MOSEI: Acc_2 F1_score MAE Corr Acc_7 Has0_acc_2 Has0_F1_score Acc_5
 *   SIMS:       Mult_acc_2 Mult_acc_3 Mult_acc_5 F1_score MAE Corr
 *   IEMOCAP:    WAcc WAF1
 * values[] are rounded to 4 decimals as numpy.round does (x*1e4, round half to even,
 * /1e4); raw[] holds the unrounded numbers.
 *
 * Semantics worth knowing:
 * - Inputs are float32, like the reference's tensors: differences, clipping, rounding
 *   to integers and the SIMS bucket comparisons are done in float32 (numpy compares a
 *   float32 array with a Python float in float32, so a prediction equal to 0.1f is in
 *   the bucket (-0.1, 0.1]). MAE is numpy's float32 mean (pairwise summation, float32
 *   accumulators); Corr is numpy.corrcoef in double, 0 when undefined (n < 2, constant
 *   input), clipped to [-1, 1].
 * - Acc_2/F1_score (MOSI/MOSEI) use the samples whose label != 0, positive = > 0. When
 *   every label is 0 the reference fails (empty index array); here both are 0 and the
 *   confusion matrix is all zeros.
 * - Acc_7 / Acc_5: accuracy of round-half-even(clip(x, -3, 3)) / clip(x, -2, 2), the
 *   label rounded the same way.
 * - SIMS: predictions and labels are clipped to [-1, 1] first (MAE and Corr included,
 *   as MMSA does); buckets (-1.01,0,1.01), (-1.01,-0.1,0.1,1.01),
 *   (-1.01,-0.7,-0.1,0.1,0.7,1.01), open on the left, closed on the right; F1_score is
 *   the weighted F1 of the 2 buckets.
 * - IEMOCAP: the prediction is the argmax of the logits (first maximum on ties); labels
 *   are class indices 0..C-1.
 * - F1 is sklearn's f1_score(average='weighted'): per label 2tp / (2tp + fp + fn) (0 when
 *   that denominator is 0, i.e. sklearn's zero_division result), averaged with weights
 *   equal to each label's count in y_true; labels absent from y_true weigh nothing.
 *
 * Confusion matrix, rows = true class, columns = predicted class:
 *   MOSI/MOSEI: 2x2 over the Acc_2 samples (label != 0); 0 = negative, 1 = positive
 *               (so Acc_2 = trace / total).
 *   SIMS:       2x2 of the Mult_acc_2 buckets over all samples; 0 = (-1.01, 0], 1 = (0, 1.01].
 *   IEMOCAP:    C x C over all samples. */
#ifndef DC_TRAIN_METRICS_H
#define DC_TRAIN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "decocl/data.h"
#include "decocl/status.h"

#define DC_METRICS_MAX 8
#define DC_METRICS_MAX_CLASSES 8

struct dc_metrics {
    enum dc_dataset_kind kind;
    int count;                          /* number of metrics */
    const char *names[DC_METRICS_MAX];  /* static strings */
    double values[DC_METRICS_MAX];      /* rounded to 4 decimals (numpy.round) */
    double raw[DC_METRICS_MAX];         /* unrounded */
    int n_classes;                      /* confusion is n_classes x n_classes */
    int64_t confusion[DC_METRICS_MAX_CLASSES][DC_METRICS_MAX_CLASSES]; /* [true][pred] */
};

/* Computes every metric of kind from n samples. Regression kinds (MOSI, MOSEI, SIMS):
 * pred is (n) and n_cols must be 1. IEMOCAP: pred is (n, n_cols) logits, row-major, with
 * 2 <= n_cols <= DC_METRICS_MAX_CLASSES, and each label an integer in [0, n_cols).
 * DC_ERR_ARG for n == 0, a bad kind, shape or label; DC_ERR_NUMERIC for a non-finite
 * prediction or label. */
dc_status dc_metrics_compute(enum dc_dataset_kind kind, const float *pred, size_t n_cols, const float *labels, size_t n,
                             struct dc_metrics *out, struct dc_error *err);

/* The value (rounded) of the metric called name; returns 0 and leaves *value alone when
 * m has no such metric, else 1. */
int dc_metrics_get(const struct dc_metrics *m, const char *name, double *value);

/* numpy.round(x, decimals) for 0 <= decimals <= 15: x * 10^d rounded half to even, / 10^d. */
double dc_round_np(double x, int decimals);

/* sklearn f1_score(y_true, y_pred, average='weighted') for labels in [0, n_classes);
 * 0 when n == 0. */
double dc_weighted_f1(const int *y_true, const int *y_pred, size_t n, int n_classes);

/* numpy's float32 np.mean (pairwise summation with float32 accumulators); 0 when n == 0. */
float dc_mean_f32_np(const float *x, size_t n);

#endif
