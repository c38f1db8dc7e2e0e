/* Per-dimension standardisation as the DecAlign loader does it (shared/spec/mmsa-format.md §4
 * step 6): numpy's linear-interpolation percentiles over all N*T frames of the train split, mean and
 * std (ddof 0, floored at 1e-6) of the clipped values, then (clip(x) - mean) / std in float32. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decocl/data.h"

dc_status dc_feature_stats_import(struct dc_feature_stats *s, size_t dim, const float *values, double pct_low,
                                  double pct_high, struct dc_error *err) {
    float *v = malloc(DC_STATS_ROWS * dim * sizeof *v + 1);
    if (!v) return dc_set_error(err, DC_ERR_NOMEM, "out of memory for feature statistics");
    memcpy(v, values, DC_STATS_ROWS * dim * sizeof *v);
    dc_feature_stats_free(s);
    s->dim = dim;
    s->values = v;
    s->pct_low = pct_low;
    s->pct_high = pct_high;
    return DC_OK;
}

void dc_feature_stats_free(struct dc_feature_stats *s) {
    free(s->values);
    memset(s, 0, sizeof *s);
}

/* k-th smallest of x[0..n) (x is reordered), Hoare-style quickselect. */
static float select_kth(float *x, size_t n, size_t k) {
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = x[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (x[i] < pivot) ++i;
            while (x[j] > pivot) --j;
            if (i <= j) {
                float t = x[i];
                x[i] = x[j];
                x[j] = t;
                ++i;
                if (j == 0) break;
                --j;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return x[k];
    }
    return x[k];
}

/* numpy.percentile(method='linear'): index (n-1)*q, then _lerp(a, b, t) =
 * a + (b-a)*t, or b - (b-a)*(1-t) when t >= 0.5. */
static double percentile(float *col, size_t n, double pct) {
    double vi = (double)(n - 1) * (pct / 100.0);
    if (vi < 0) vi = 0;
    if (vi > (double)(n - 1)) vi = (double)(n - 1);
    size_t lo = (size_t)floor(vi);
    double t = vi - (double)lo;
    double a = select_kth(col, n, lo);
    if (lo + 1 >= n) return a;
    /* after selection, everything right of lo is >= a: the next order statistic is their minimum */
    float b = col[lo + 1];
    for (size_t i = lo + 2; i < n; ++i)
        if (col[i] < b) b = col[i];
    double diff = (double)b - a;
    return t >= 0.5 ? (double)b - diff * (1.0 - t) : a + diff * t;
}

dc_status dc_feature_stats_compute(struct dc_feature_stats *s, const float *x, size_t n_frames, size_t dim,
                                   double pct_low, double pct_high, struct dc_error *err) {
    if (n_frames == 0 || dim == 0) return dc_set_error(err, DC_ERR_ARG, "standardisation needs at least one frame");
    if (!(pct_low >= 0 && pct_high <= 100 && pct_low <= pct_high))
        return dc_set_error(err, DC_ERR_ARG, "clip percentiles %g, %g must satisfy 0 <= low <= high <= 100", pct_low,
                            pct_high);
    float *col = malloc(n_frames * sizeof *col);
    float *v = malloc(DC_STATS_ROWS * dim * sizeof *v);
    if (!col || !v) {
        free(col);
        free(v);
        return dc_set_error(err, DC_ERR_NOMEM, "out of memory for feature statistics");
    }
    for (size_t d = 0; d < dim; ++d) {
        for (size_t i = 0; i < n_frames; ++i) col[i] = x[i * dim + d];
        float low = (float)percentile(col, n_frames, pct_low);
        float high = (float)percentile(col, n_frames, pct_high);
        double sum = 0, sq = 0;
        for (size_t i = 0; i < n_frames; ++i) {
            float c = x[i * dim + d];
            c = c < low ? low : c > high ? high : c;
            sum += c;
        }
        double mean = sum / (double)n_frames;
        for (size_t i = 0; i < n_frames; ++i) {
            float c = x[i * dim + d];
            c = c < low ? low : c > high ? high : c;
            sq += ((double)c - mean) * ((double)c - mean);
        }
        double sd = sqrt(sq / (double)n_frames);
        v[DC_STATS_LOW * dim + d] = low;
        v[DC_STATS_HIGH * dim + d] = high;
        v[DC_STATS_MEAN * dim + d] = (float)mean;
        v[DC_STATS_STD * dim + d] = (float)(sd < 1e-6 ? 1e-6 : sd);
    }
    free(col);
    dc_feature_stats_free(s);
    s->dim = dim;
    s->values = v;
    s->pct_low = pct_low;
    s->pct_high = pct_high;
    return DC_OK;
}

void dc_feature_stats_apply(const struct dc_feature_stats *s, float *x, size_t n_frames) {
    size_t dim = s->dim;
    const float *low = s->values + DC_STATS_LOW * dim, *high = s->values + DC_STATS_HIGH * dim;
    const float *mean = s->values + DC_STATS_MEAN * dim, *sd = s->values + DC_STATS_STD * dim;
    for (size_t i = 0; i < n_frames; ++i)
        for (size_t d = 0; d < dim; ++d) {
            float c = x[i * dim + d];
            c = c < low[d] ? low[d] : c > high[d] ? high[d] : c;
            float y = (c - mean[d]) / sd[d];
            x[i * dim + d] = isfinite(y) ? y : 0.0f;
        }
}
