/* Reference row ops: layernorm, softmax, mean-pool over time, im2col/col2im. */
#include <math.h>

#include "backend/ref/ref_internal.h"

dc_status ref_layernorm_fwd(struct dc_backend *be, dc_view out, dc_view mean, dc_view rstd, dc_view in, dc_view w,
                            dc_view b, size_t rows, size_t cols) {
    (void)be;
    for (size_t r = 0; r < rows; ++r) {
        const float *x = ref_ptr(in) + r * cols;
        float *y = ref_ptr(out) + r * cols;
        double s = 0.0;
        for (size_t c = 0; c < cols; ++c) s += x[c];
        double mu = s / (double)cols, v = 0.0;
        for (size_t c = 0; c < cols; ++c) v += ((double)x[c] - mu) * ((double)x[c] - mu);
        double rs = 1.0 / sqrt(v / (double)cols + (double)DC_LAYERNORM_EPS);
        for (size_t c = 0; c < cols; ++c)
            y[c] = (float)(((double)x[c] - mu) * rs * ref_ptr(w)[c] + ref_ptr(b)[c]);
        ref_ptr(mean)[r] = (float)mu;
        ref_ptr(rstd)[r] = (float)rs;
    }
    return DC_OK;
}

dc_status ref_layernorm_bwd(struct dc_backend *be, dc_view din, dc_view dw, dc_view db, dc_view dout, dc_view in,
                            dc_view mean, dc_view rstd, dc_view w, size_t rows, size_t cols) {
    (void)be;
    const float *W = ref_ptr(w);
    for (size_t r = 0; r < rows; ++r) {
        const float *x = ref_ptr(in) + r * cols, *dy = ref_ptr(dout) + r * cols;
        float *dx = ref_ptr(din) + r * cols;
        double mu = ref_ptr(mean)[r], rs = ref_ptr(rstd)[r];
        /* dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w */
        double sum_g = 0.0, sum_gx = 0.0;
        for (size_t c = 0; c < cols; ++c) {
            double xhat = ((double)x[c] - mu) * rs, g = (double)dy[c] * W[c];
            sum_g += g;
            sum_gx += g * xhat;
        }
        double mg = sum_g / (double)cols, mgx = sum_gx / (double)cols;
        for (size_t c = 0; c < cols; ++c) {
            double xhat = ((double)x[c] - mu) * rs, g = (double)dy[c] * W[c];
            dx[c] = (float)((double)dx[c] + rs * (g - mg - xhat * mgx));
        }
    }
    for (size_t c = 0; c < cols; ++c) {
        double gw = 0.0, gb = 0.0;
        for (size_t r = 0; r < rows; ++r) {
            double xhat = ((double)ref_ptr(in)[r * cols + c] - ref_ptr(mean)[r]) * ref_ptr(rstd)[r];
            gw += (double)ref_ptr(dout)[r * cols + c] * xhat;
            gb += ref_ptr(dout)[r * cols + c];
        }
        ref_ptr(dw)[c] = (float)((double)ref_ptr(dw)[c] + gw);
        ref_ptr(db)[c] = (float)((double)ref_ptr(db)[c] + gb);
    }
    return DC_OK;
}

dc_status ref_softmax_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t batch, size_t rows, size_t cols,
                          float scale, bool causal) {
    (void)be;
    for (size_t r = 0; r < batch * rows; ++r) {
        const float *x = ref_ptr(in) + r * cols;
        float *y = ref_ptr(out) + r * cols;
        size_t i = r % rows, valid = causal ? (i + 1 < cols ? i + 1 : cols) : cols;
        double mx = -INFINITY;
        for (size_t j = 0; j < valid; ++j) mx = fmax(mx, (double)scale * x[j]);
        double s = 0.0;
        for (size_t j = 0; j < valid; ++j) s += exp((double)scale * x[j] - mx);
        /* write after reading: in place is allowed */
        for (size_t j = 0; j < cols; ++j) y[j] = j < valid ? (float)(exp((double)scale * x[j] - mx) / s) : 0.0f;
    }
    return DC_OK;
}

dc_status ref_softmax_bwd(struct dc_backend *be, dc_view din, dc_view dout, dc_view out, size_t batch, size_t rows,
                          size_t cols, float scale) {
    (void)be;
    for (size_t r = 0; r < batch * rows; ++r) {
        const float *dy = ref_ptr(dout) + r * cols, *y = ref_ptr(out) + r * cols;
        float *dx = ref_ptr(din) + r * cols;
        double dot = 0.0;
        for (size_t j = 0; j < cols; ++j) dot += (double)dy[j] * y[j];
        for (size_t j = 0; j < cols; ++j) dx[j] = (float)((double)dx[j] + (double)scale * y[j] * ((double)dy[j] - dot));
    }
    return DC_OK;
}

dc_status ref_meanpool_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t B, size_t T, size_t D) {
    (void)be;
    for (size_t b = 0; b < B; ++b)
        for (size_t d = 0; d < D; ++d) {
            double s = 0.0;
            for (size_t t = 0; t < T; ++t) s += ref_ptr(in)[(b * T + t) * D + d];
            ref_ptr(out)[b * D + d] = (float)(s / (double)T);
        }
    return DC_OK;
}

dc_status ref_meanpool_bwd(struct dc_backend *be, dc_view din, dc_view dout, size_t B, size_t T, size_t D) {
    (void)be;
    for (size_t b = 0; b < B; ++b)
        for (size_t t = 0; t < T; ++t)
            for (size_t d = 0; d < D; ++d) ref_ptr(din)[(b * T + t) * D + d] += ref_ptr(dout)[b * D + d] / (float)T;
    return DC_OK;
}

dc_status ref_im2col(struct dc_backend *be, dc_view col, dc_view in, size_t B, size_t T, size_t C, size_t k) {
    (void)be;
    size_t tp = T - k + 1;
    for (size_t b = 0; b < B; ++b)
        for (size_t t = 0; t < tp; ++t)
            for (size_t c = 0; c < C; ++c)
                for (size_t j = 0; j < k; ++j)
                    ref_ptr(col)[(b * tp + t) * C * k + c * k + j] = ref_ptr(in)[(b * T + t + j) * C + c];
    return DC_OK;
}

dc_status ref_col2im(struct dc_backend *be, dc_view din, dc_view dcol, size_t B, size_t T, size_t C, size_t k) {
    (void)be;
    size_t tp = T - k + 1;
    for (size_t b = 0; b < B; ++b)
        for (size_t s = 0; s < T; ++s)
            for (size_t c = 0; c < C; ++c) {
                /* input row s feeds output rows t = s - j for 0 <= t < T' */
                double acc = 0.0;
                for (size_t j = 0; j < k; ++j)
                    if (s >= j && s - j < tp) acc += ref_ptr(dcol)[(b * tp + s - j) * C * k + c * k + j];
                ref_ptr(din)[(b * T + s) * C + c] = (float)((double)ref_ptr(din)[(b * T + s) * C + c] + acc);
            }
    return DC_OK;
}
