/* Reference elementwise ops: bias, relu, dropout, scale/axpy/add. */
#include "backend/ref/ref_internal.h"
#include "core/rng.h"

dc_status ref_bias_add(struct dc_backend *be, dc_view x, dc_view bias, size_t rows, size_t cols) {
    (void)be;
    float *X = ref_ptr(x);
    const float *b = ref_ptr(bias);
    for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < cols; ++c) X[r * cols + c] += b[c];
    return DC_OK;
}

dc_status ref_bias_grad(struct dc_backend *be, dc_view dbias, dc_view dy, size_t rows, size_t cols) {
    (void)be;
    float *db = ref_ptr(dbias);
    const float *g = ref_ptr(dy);
    for (size_t c = 0; c < cols; ++c) {
        double acc = 0.0;
        for (size_t r = 0; r < rows; ++r) acc += g[r * cols + c];
        db[c] = (float)((double)db[c] + acc);
    }
    return DC_OK;
}

dc_status ref_relu_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t n) {
    (void)be;
    float *o = ref_ptr(out);
    const float *x = ref_ptr(in);
    for (size_t i = 0; i < n; ++i) o[i] = x[i] > 0.0f ? x[i] : 0.0f;
    return DC_OK;
}

dc_status ref_relu_bwd(struct dc_backend *be, dc_view din, dc_view dout, dc_view out, size_t n) {
    (void)be;
    float *dx = ref_ptr(din);
    const float *dy = ref_ptr(dout), *y = ref_ptr(out);
    for (size_t i = 0; i < n; ++i)
        if (y[i] > 0.0f) dx[i] += dy[i];
    return DC_OK;
}

/* Multipliers of elements 4q .. 4q+3: 0 when dropped, else 1/(1-p). */
static void dropout_factors(const struct dc_dropout *d, uint32_t thr, float keep_scale, uint64_t q, float f[4]) {
    uint32_t w[4];
    dc_dropout_words(d->seed, d->site, d->step, q, w);
    for (int j = 0; j < 4; ++j) f[j] = w[j] >= thr ? keep_scale : 0.0f;
}

dc_status ref_dropout_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t n, const struct dc_dropout *d) {
    (void)be;
    float *o = ref_ptr(out);
    const float *x = ref_ptr(in);
    if (d->p <= 0.0f) {
        for (size_t i = 0; i < n; ++i) o[i] = x[i];
        return DC_OK;
    }
    if (d->p >= 1.0f) {
        for (size_t i = 0; i < n; ++i) o[i] = 0.0f;
        return DC_OK;
    }
    uint32_t thr = dc_dropout_threshold(d->p);
    float s = dc_dropout_scale(d->p);
    for (size_t q = 0; 4 * q < n; ++q) {
        float f[4];
        dropout_factors(d, thr, s, q, f);
        for (size_t j = 0; j < 4 && 4 * q + j < n; ++j) o[4 * q + j] = x[4 * q + j] * f[j];
    }
    return DC_OK;
}

dc_status ref_dropout_bwd(struct dc_backend *be, dc_view din, dc_view dout, size_t n, const struct dc_dropout *d) {
    (void)be;
    float *dx = ref_ptr(din);
    const float *dy = ref_ptr(dout);
    if (d->p >= 1.0f) return DC_OK;
    if (d->p <= 0.0f) {
        for (size_t i = 0; i < n; ++i) dx[i] += dy[i];
        return DC_OK;
    }
    uint32_t thr = dc_dropout_threshold(d->p);
    float s = dc_dropout_scale(d->p);
    for (size_t q = 0; 4 * q < n; ++q) {
        float f[4];
        dropout_factors(d, thr, s, q, f);
        for (size_t j = 0; j < 4 && 4 * q + j < n; ++j) dx[4 * q + j] += dy[4 * q + j] * f[j];
    }
    return DC_OK;
}

dc_status ref_scale(struct dc_backend *be, dc_view x, float alpha, size_t n) {
    (void)be;
    float *p = ref_ptr(x);
    for (size_t i = 0; i < n; ++i) p[i] *= alpha;
    return DC_OK;
}

dc_status ref_axpy(struct dc_backend *be, dc_view y, float alpha, dc_view x, size_t n) {
    (void)be;
    float *Y = ref_ptr(y);
    const float *X = ref_ptr(x);
    for (size_t i = 0; i < n; ++i) Y[i] += alpha * X[i];
    return DC_OK;
}

dc_status ref_add(struct dc_backend *be, dc_view out, dc_view a, dc_view b, size_t n) {
    (void)be;
    float *o = ref_ptr(out);
    const float *A = ref_ptr(a), *B = ref_ptr(b);
    for (size_t i = 0; i < n; ++i) o[i] = A[i] + B[i];
    return DC_OK;
}
