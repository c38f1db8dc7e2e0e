/* Evaluation metrics (spec section 8); see metrics.h for the semantics. */
#include "train/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double dc_round_np(double x, int decimals) {
    if (decimals < 0)
        decimals = 0;
    if (decimals > 15)
        decimals = 15;
    double f = 1.0;
    for (int i = 0; i < decimals; ++i)
        f *= 10.0;
    /* nearbyint rounds half to even in the default rounding mode, like numpy's rint */
    return nearbyint(x * f) / f;
}

/* numpy's pairwise summation for float32 (blocks of 128, 8 accumulators). */
static float pairwise_sum_f32(const float *a, size_t n) {
    if (n < 8) {
        float res = 0.0f;
        for (size_t i = 0; i < n; ++i)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        float r[8];
        for (int j = 0; j < 8; ++j)
            r[j] = a[j];
        size_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; ++j)
                r[j] += a[i + (size_t)j];
        float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i)
            res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum_f32(a, n2) + pairwise_sum_f32(a + n2, n - n2);
}

float dc_mean_f32_np(const float *x, size_t n) {
    if (n == 0)
        return 0.0f;
    float s = 0.0f + pairwise_sum_f32(x, n);
    return (float)((double)s / (double)n);
}

double dc_weighted_f1(const int *y_true, const int *y_pred, size_t n, int n_classes) {
    if (n == 0 || n_classes <= 0)
        return 0.0;
    int64_t tp[DC_METRICS_MAX_CLASSES] = {0}, npred[DC_METRICS_MAX_CLASSES] = {0}, ntrue[DC_METRICS_MAX_CLASSES] = {0};
    if (n_classes > DC_METRICS_MAX_CLASSES)
        return 0.0;
    for (size_t i = 0; i < n; ++i) {
        int t = y_true[i], p = y_pred[i];
        if (t >= 0 && t < n_classes)
            ntrue[t]++;
        if (p >= 0 && p < n_classes)
            npred[p]++;
        if (t == p && t >= 0 && t < n_classes)
            tp[t]++;
    }
    double num = 0.0, den = 0.0;
    for (int c = 0; c < n_classes; ++c) {
        if (ntrue[c] == 0)
            continue; /* weight 0 (and absent labels are not scored at all) */
        int64_t fp = npred[c] - tp[c], fn = ntrue[c] - tp[c];
        int64_t d = 2 * tp[c] + fp + fn;
        double f = d > 0 ? (double)(2 * tp[c]) / (double)d : 0.0;
        num += f * (double)ntrue[c];
        den += (double)ntrue[c];
    }
    return den > 0.0 ? num / den : 0.0;
}

/* numpy.corrcoef(x, y)[0][1] on float32 inputs (computed in double); 0 when undefined. */
static double corr_np(const float *x, const float *y, size_t n) {
    if (n < 2)
        return 0.0;
    double mx = 0.0, my = 0.0;
    for (size_t i = 0; i < n; ++i) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)n;
    my /= (double)n;
    double sxx = 0.0, syy = 0.0, sxy = 0.0;
    for (size_t i = 0; i < n; ++i) {
        double dx = (double)x[i] - mx, dy = (double)y[i] - my;
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    double dn = (double)(n - 1);
    double c = (sxy / dn) / sqrt(sxx / dn) / sqrt(syy / dn);
    if (!isfinite(c))
        return 0.0;
    if (c > 1.0)
        c = 1.0;
    if (c < -1.0)
        c = -1.0;
    return c;
}

static float clipf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* accuracy of round(clip(pred)) == round(clip(label)) */
static double round_acc(const float *p, const float *t, size_t n, float lim) {
    size_t hit = 0;
    for (size_t i = 0; i < n; ++i)
        if (nearbyintf(clipf(p[i], -lim, lim)) == nearbyintf(clipf(t[i], -lim, lim)))
            hit++;
    return (double)hit / (double)n;
}

static void put(struct dc_metrics *m, const char *name, double v) {
    m->names[m->count] = name;
    m->raw[m->count] = v;
    m->values[m->count] = dc_round_np(v, 4);
    m->count++;
}

/* bucket index of v by edges e[0] < ... < e[k]: i with e[i] < v <= e[i+1] (float32) */
static int bucket(float v, const float *e, int k) {
    int b = -1;
    for (int i = 0; i < k; ++i)
        if (v > e[i] && v <= e[i + 1])
            b = i;
    return b;
}

static double bucket_acc(const float *p, const float *t, size_t n, const float *e, int k) {
    size_t hit = 0;
    for (size_t i = 0; i < n; ++i)
        if (bucket(p[i], e, k) == bucket(t[i], e, k))
            hit++;
    return (double)hit / (double)n;
}

static dc_status eval_mosi(const float *p, const float *t, size_t n, struct dc_metrics *m) {
    int *yt = malloc(n * sizeof *yt), *yp = malloc(n * sizeof *yp);
    float *ad = malloc(n * sizeof *ad);
    if (!yt || !yp || !ad) {
        free(yt), free(yp), free(ad);
        return DC_ERR_NOMEM;
    }
    m->n_classes = 2;
    size_t nz = 0, hit = 0;
    for (size_t i = 0; i < n; ++i) {
        if (t[i] == 0.0f)
            continue;
        yt[nz] = t[i] > 0.0f;
        yp[nz] = p[i] > 0.0f;
        m->confusion[yt[nz]][yp[nz]]++;
        hit += yt[nz] == yp[nz];
        nz++;
    }
    double acc2 = nz ? (double)hit / (double)nz : 0.0;
    double f1 = dc_weighted_f1(yt, yp, nz, 2);
    for (size_t i = 0; i < n; ++i)
        ad[i] = fabsf(p[i] - t[i]);
    double mae = (double)dc_mean_f32_np(ad, n);
    double corr = corr_np(p, t, n);
    double acc7 = round_acc(p, t, n, 3.0f);
    hit = 0;
    for (size_t i = 0; i < n; ++i) {
        yt[i] = t[i] >= 0.0f;
        yp[i] = p[i] >= 0.0f;
        hit += yt[i] == yp[i];
    }
    double h_acc2 = (double)hit / (double)n;
    double h_f1 = dc_weighted_f1(yt, yp, n, 2);
    double acc5 = round_acc(p, t, n, 2.0f);
    put(m, "Acc_2", acc2);
    put(m, "F1_score", f1);
    put(m, "MAE", mae);
    put(m, "Corr", corr);
    put(m, "Acc_7", acc7);
    put(m, "Has0_acc_2", h_acc2);
    put(m, "Has0_F1_score", h_f1);
    put(m, "Acc_5", acc5);
    free(yt), free(yp), free(ad);
    return DC_OK;
}

static dc_status eval_sims(const float *p0, const float *t0, size_t n, struct dc_metrics *m) {
    float *p = malloc(n * sizeof *p), *t = malloc(n * sizeof *t), *ad = malloc(n * sizeof *ad);
    int *yt = malloc(n * sizeof *yt), *yp = malloc(n * sizeof *yp);
    if (!p || !t || !ad || !yt || !yp) {
        free(p), free(t), free(ad), free(yt), free(yp);
        return DC_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; ++i) {
        p[i] = clipf(p0[i], -1.0f, 1.0f);
        t[i] = clipf(t0[i], -1.0f, 1.0f);
        ad[i] = fabsf(p[i] - t[i]);
    }
    static const float e2[] = {-1.01f, 0.0f, 1.01f};
    static const float e3[] = {-1.01f, -0.1f, 0.1f, 1.01f};
    static const float e5[] = {-1.01f, -0.7f, -0.1f, 0.1f, 0.7f, 1.01f};
    m->n_classes = 2;
    for (size_t i = 0; i < n; ++i) {
        yt[i] = bucket(t[i], e2, 2);
        yp[i] = bucket(p[i], e2, 2);
        m->confusion[yt[i]][yp[i]]++;
    }
    put(m, "Mult_acc_2", bucket_acc(p, t, n, e2, 2));
    put(m, "Mult_acc_3", bucket_acc(p, t, n, e3, 3));
    put(m, "Mult_acc_5", bucket_acc(p, t, n, e5, 5));
    put(m, "F1_score", dc_weighted_f1(yt, yp, n, 2));
    put(m, "MAE", (double)dc_mean_f32_np(ad, n));
    put(m, "Corr", corr_np(p, t, n));
    free(p), free(t), free(ad), free(yt), free(yp);
    return DC_OK;
}

static dc_status eval_iemocap(const float *logits, size_t c, const float *t, size_t n, struct dc_metrics *m,
                              struct dc_error *err) {
    int *yt = malloc(n * sizeof *yt), *yp = malloc(n * sizeof *yp);
    if (!yt || !yp) {
        free(yt), free(yp);
        return dc_set_error(err, DC_ERR_NOMEM, "metrics: out of memory");
    }
    for (size_t i = 0; i < n; ++i) {
        if (t[i] < 0.0f || t[i] >= (float)c || t[i] != floorf(t[i])) {
            free(yt), free(yp);
            return dc_set_error(err, DC_ERR_ARG, "metrics: label %g of sample %zu is not a class index in [0, %zu)",
                                (double)t[i], i, c);
        }
        const float *row = logits + i * c;
        size_t best = 0;
        for (size_t j = 1; j < c; ++j)
            if (row[j] > row[best])
                best = j;
        yt[i] = (int)t[i];
        yp[i] = (int)best;
    }
    m->n_classes = (int)c;
    size_t hit = 0;
    for (size_t i = 0; i < n; ++i) {
        m->confusion[yt[i]][yp[i]]++;
        hit += yt[i] == yp[i];
    }
    put(m, "WAcc", (double)hit / (double)n);
    put(m, "WAF1", dc_weighted_f1(yt, yp, n, (int)c));
    free(yt), free(yp);
    return DC_OK;
}

dc_status dc_metrics_compute(enum dc_dataset_kind kind, const float *pred, size_t n_cols, const float *labels, size_t n,
                             struct dc_metrics *out, struct dc_error *err) {
    if (!out || !pred || !labels)
        return dc_set_error(err, DC_ERR_ARG, "metrics: NULL argument");
    memset(out, 0, sizeof *out);
    out->kind = kind;
    if (n == 0)
        return dc_set_error(err, DC_ERR_ARG, "metrics: no samples");
    bool cls = kind == DC_KIND_IEMOCAP;
    if (!cls && kind != DC_KIND_MOSI && kind != DC_KIND_MOSEI && kind != DC_KIND_SIMS)
        return dc_set_error(err, DC_ERR_ARG, "metrics: unknown dataset kind");
    if (cls ? (n_cols < 2 || n_cols > DC_METRICS_MAX_CLASSES) : n_cols != 1)
        return dc_set_error(err, DC_ERR_ARG, "metrics: %zu prediction columns for %s", n_cols,
                            dc_dataset_kind_name(kind));
    for (size_t i = 0; i < n * n_cols; ++i)
        if (!isfinite(pred[i]))
            return dc_set_error(err, DC_ERR_NUMERIC, "metrics: non-finite prediction at %zu", i);
    for (size_t i = 0; i < n; ++i)
        if (!isfinite(labels[i]))
            return dc_set_error(err, DC_ERR_NUMERIC, "metrics: non-finite label at %zu", i);
    dc_status st;
    if (cls)
        return eval_iemocap(pred, n_cols, labels, n, out, err);
    st = kind == DC_KIND_SIMS ? eval_sims(pred, labels, n, out) : eval_mosi(pred, labels, n, out);
    if (st != DC_OK)
        return dc_set_error(err, st, "metrics: out of memory");
    return DC_OK;
}

int dc_metrics_get(const struct dc_metrics *m, const char *name, double *value) {
    for (int i = 0; i < m->count; ++i)
        if (strcmp(m->names[i], name) == 0) {
            *value = m->values[i];
            return 1;
        }
    return 0;
}
