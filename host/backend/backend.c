/* Public op wrappers: check view sizes, then dispatch to the backend's slot. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_impl.h"
#include "backend/backend_wrap.h"
#include "core/assert.h"

static const char *const op_names[DC_OP_COUNT] = {
#define DC_OP(name) #name,
#include "decocl/ops.def"
#undef DC_OP
};

const char *dc_op_name(enum dc_op op) { return (unsigned)op < DC_OP_COUNT ? op_names[op] : "?"; }

bool dc_backend_supports(const struct dc_backend *be, enum dc_op op) {
    return (unsigned)op < DC_OP_COUNT && be->op_ok[op];
}

dc_status dc_backend_open(struct dc_backend **out, const struct dc_backend_options *opt, struct dc_error *err) {
    *out = NULL;
    struct dc_backend_options defaults = {0};
    if (!opt) opt = &defaults;
    if (opt->device && strcmp(opt->device, "ref") == 0) return dc_ref_open(out, err);
    if (!opt->device) {
        /* No choice given: an OpenCL GPU, else the OpenCL CPU device, else ref. */
        struct dc_backend_options o = *opt;
        static const char *const order[] = {"gpu", "cpu"};
        for (size_t i = 0; i < 2; ++i) {
            o.device = order[i];
            struct dc_error probe = {0};
            if (dc_cl_open(out, &o, &probe) == DC_OK) return DC_OK;
            if (probe.code != DC_ERR_ARG) { /* the device exists but failed: report that */
                if (err) *err = probe;
                return probe.code;
            }
        }
        return dc_ref_open(out, err);
    }
    return dc_cl_open(out, opt, err);
}

dc_status dc_backend_open_ref(struct dc_backend **out, struct dc_error *err) { return dc_ref_open(out, err); }

void dc_backend_close(struct dc_backend *be) {
    if (be) be->impl->close(be);
}

const char *dc_backend_name(const struct dc_backend *be) { return be->impl->name; }
const char *dc_backend_device_name(const struct dc_backend *be) { return be->device_name; }
const char *dc_backend_driver(const struct dc_backend *be) { return be->driver; }
const char *dc_backend_program_origin(const struct dc_backend *be) { return be->program_origin; }
struct dc_error *dc_backend_error(struct dc_backend *be) { return be->err; }
enum dc_gemm_provider dc_backend_gemm_provider(const struct dc_backend *be) { return be->gemm_provider; }

dc_status dc_mem_alloc(struct dc_backend *be, size_t n, struct dc_mem **out) {
    dc_status st = be->impl->mem_alloc(be, n, out);
    if (st == DC_OK) {
        be->stats.mem_bytes += (uint64_t)n * sizeof(float);
        if (be->stats.mem_bytes > be->stats.mem_peak_bytes) be->stats.mem_peak_bytes = be->stats.mem_bytes;
    }
    return st;
}
void dc_mem_free(struct dc_backend *be, struct dc_mem *mem) {
    if (!mem) return;
    be->stats.mem_bytes -= (uint64_t)be->impl->mem_floats(mem) * sizeof(float);
    be->impl->mem_free(be, mem);
}
dc_view dc_view_of(struct dc_mem *mem, size_t off, size_t n) { return (dc_view){.mem = mem, .off = off, .n = n}; }

void dc_backend_stats_get(const struct dc_backend *be, struct dc_backend_stats *out) {
    *out = be->stats;
    if (strcmp(be->impl->name, "ref") == 0) out->launches = out->ops; /* no queue: an op is a launch */
}

dc_status dc_upload(struct dc_backend *be, dc_view dst, const float *src) {
    if (!dst.n) return DC_OK;
    be->stats.writes++;
    be->stats.write_bytes += dst.n * sizeof(float);
    return be->impl->upload(be, dst, src);
}
dc_status dc_download(struct dc_backend *be, float *dst, dc_view src) {
    if (!src.n) return DC_OK;
    be->stats.reads++;
    be->stats.read_bytes += src.n * sizeof(float);
    return be->impl->download(be, dst, src);
}
dc_status dc_fill(struct dc_backend *be, dc_view dst, float value) {
    if (!dst.n) return DC_OK;
    be->stats.ops++;
    return be->impl->fill(be, dst, value);
}
dc_status dc_copy(struct dc_backend *be, dc_view dst, dc_view src) {
    DC_ASSERT(dst.n == src.n);
    if (!dst.n) return DC_OK;
    be->stats.ops++;
    return be->impl->copy(be, dst, src);
}
dc_status dc_sync(struct dc_backend *be) { return be->impl->sync(be); }


/* Floats spanned by `rows` rows of `cols` with leading dimension ld. */
static size_t matrix_extent(size_t rows, size_t cols, size_t ld) {
    return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols;
}
static size_t batched_extent(size_t batch, size_t stride, size_t one) {
    return batch == 0 || one == 0 ? 0 : (batch - 1) * stride + one;
}

dc_status dc_gemm_ex(struct dc_backend *be, const struct dc_gemm_shape *s, float alpha, dc_view a, dc_view b, float beta,
                     dc_view c) {
    size_t a_rows = s->ta ? s->k : s->m, a_cols = s->ta ? s->m : s->k;
    size_t b_rows = s->tb ? s->n : s->k, b_cols = s->tb ? s->k : s->n;
    DC_ASSERT(s->lda >= a_cols && s->ldb >= b_cols && s->ldc >= s->n);
    if (s->batch == 0 || s->m == 0 || s->n == 0) return DC_OK;
    if (s->k > 0) {
        NEED(a, batched_extent(s->batch, s->stride_a, matrix_extent(a_rows, a_cols, s->lda)));
        NEED(b, batched_extent(s->batch, s->stride_b, matrix_extent(b_rows, b_cols, s->ldb)));
    }
    NEED(c, batched_extent(s->batch, s->stride_c, matrix_extent(s->m, s->n, s->ldc)));
    if (be->op_ok[DC_OP_gemm]) be->stats.gemm_flops += 2 * (uint64_t)s->m * s->n * s->k * s->batch;
    DISPATCH(gemm, s, alpha, a, b, beta, c);
}

dc_status dc_gemm(struct dc_backend *be, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, dc_view a,
                  size_t lda, dc_view b, size_t ldb, float beta, dc_view c, size_t ldc) {
    struct dc_gemm_shape s = {.ta = ta, .tb = tb, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb, .ldc = ldc, .batch = 1};
    return dc_gemm_ex(be, &s, alpha, a, b, beta, c);
}

dc_status dc_gemm_batched(struct dc_backend *be, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, dc_view a,
                          size_t lda, size_t stride_a, dc_view b, size_t ldb, size_t stride_b, float beta, dc_view c,
                          size_t ldc, size_t stride_c, size_t batch) {
    struct dc_gemm_shape s = {.ta = ta, .tb = tb, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb, .ldc = ldc,
                              .stride_a = stride_a, .stride_b = stride_b, .stride_c = stride_c, .batch = batch};
    return dc_gemm_ex(be, &s, alpha, a, b, beta, c);
}

dc_status dc_bias_add(struct dc_backend *be, dc_view x, dc_view bias, size_t rows, size_t cols) {
    if (!rows || !cols) return DC_OK;
    NEED(x, rows * cols);
    NEED(bias, cols);
    DISPATCH(bias_add, x, bias, rows, cols);
}
dc_status dc_bias_grad(struct dc_backend *be, dc_view dbias, dc_view dy, size_t rows, size_t cols) {
    if (!rows || !cols) return DC_OK;
    NEED(dbias, cols);
    NEED(dy, rows * cols);
    DISPATCH(bias_grad, dbias, dy, rows, cols);
}
dc_status dc_relu_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t n) {
    if (!n) return DC_OK;
    NEED(out, n);
    NEED(in, n);
    DISPATCH(relu_fwd, out, in, n);
}
dc_status dc_relu_bwd(struct dc_backend *be, dc_view din, dc_view dout, dc_view out, size_t n) {
    if (!n) return DC_OK;
    NEED(din, n);
    NEED(dout, n);
    NEED(out, n);
    DISPATCH(relu_bwd, din, dout, out, n);
}
dc_status dc_layernorm_fwd(struct dc_backend *be, dc_view out, dc_view mean, dc_view rstd, dc_view in, dc_view w,
                           dc_view b, size_t rows, size_t cols) {
    if (!rows || !cols) return DC_OK;
    NEED(out, rows * cols);
    NEED(mean, rows);
    NEED(rstd, rows);
    NEED(in, rows * cols);
    NEED(w, cols);
    NEED(b, cols);
    DISPATCH(layernorm_fwd, out, mean, rstd, in, w, b, rows, cols);
}
dc_status dc_layernorm_bwd(struct dc_backend *be, dc_view din, dc_view dw, dc_view db, dc_view dout, dc_view in,
                           dc_view mean, dc_view rstd, dc_view w, size_t rows, size_t cols) {
    if (!rows || !cols) return DC_OK;
    NEED(din, rows * cols);
    NEED(dw, cols);
    NEED(db, cols);
    NEED(dout, rows * cols);
    NEED(in, rows * cols);
    NEED(mean, rows);
    NEED(rstd, rows);
    NEED(w, cols);
    DISPATCH(layernorm_bwd, din, dw, db, dout, in, mean, rstd, w, rows, cols);
}
dc_status dc_softmax_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t batch, size_t rows, size_t cols,
                         float scale, bool causal) {
    if (!batch || !rows || !cols) return DC_OK;
    NEED(out, batch * rows * cols);
    NEED(in, batch * rows * cols);
    DISPATCH(softmax_fwd, out, in, batch, rows, cols, scale, causal);
}
dc_status dc_softmax_bwd(struct dc_backend *be, dc_view din, dc_view dout, dc_view out, size_t batch, size_t rows,
                         size_t cols, float scale) {
    if (!batch || !rows || !cols) return DC_OK;
    NEED(din, batch * rows * cols);
    NEED(dout, batch * rows * cols);
    NEED(out, batch * rows * cols);
    DISPATCH(softmax_bwd, din, dout, out, batch, rows, cols, scale);
}
dc_status dc_dropout_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t n, const struct dc_dropout *d) {
    if (!n) return DC_OK;
    NEED(out, n);
    NEED(in, n);
    DC_ASSERT(d->p >= 0.0f && d->p <= 1.0f);
    DISPATCH(dropout_fwd, out, in, n, d);
}
dc_status dc_dropout_bwd(struct dc_backend *be, dc_view din, dc_view dout, size_t n, const struct dc_dropout *d) {
    if (!n) return DC_OK;
    NEED(din, n);
    NEED(dout, n);
    DC_ASSERT(d->p >= 0.0f && d->p <= 1.0f);
    DISPATCH(dropout_bwd, din, dout, n, d);
}
dc_status dc_scale(struct dc_backend *be, dc_view x, float alpha, size_t n) {
    if (!n) return DC_OK;
    NEED(x, n);
    DISPATCH(scale, x, alpha, n);
}
dc_status dc_axpy(struct dc_backend *be, dc_view y, float alpha, dc_view x, size_t n) {
    if (!n) return DC_OK;
    NEED(y, n);
    NEED(x, n);
    DISPATCH(axpy, y, alpha, x, n);
}
dc_status dc_add(struct dc_backend *be, dc_view out, dc_view a, dc_view b, size_t n) {
    if (!n) return DC_OK;
    NEED(out, n);
    NEED(a, n);
    NEED(b, n);
    DISPATCH(add, out, a, b, n);
}
dc_status dc_meanpool_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t B, size_t T, size_t D) {
    if (!B || !D) return DC_OK;
    DC_ASSERT(T > 0);
    NEED(out, B * D);
    NEED(in, B * T * D);
    DISPATCH(meanpool_fwd, out, in, B, T, D);
}
dc_status dc_meanpool_bwd(struct dc_backend *be, dc_view din, dc_view dout, size_t B, size_t T, size_t D) {
    if (!B || !D) return DC_OK;
    DC_ASSERT(T > 0);
    NEED(din, B * T * D);
    NEED(dout, B * D);
    DISPATCH(meanpool_bwd, din, dout, B, T, D);
}
dc_status dc_im2col(struct dc_backend *be, dc_view col, dc_view in, size_t B, size_t T, size_t C, size_t k) {
    DC_ASSERT(k >= 1 && T >= k);
    if (!B || !C) return DC_OK;
    NEED(col, B * (T - k + 1) * C * k);
    NEED(in, B * T * C);
    DISPATCH(im2col, col, in, B, T, C, k);
}
dc_status dc_col2im(struct dc_backend *be, dc_view din, dc_view dcol, size_t B, size_t T, size_t C, size_t k) {
    DC_ASSERT(k >= 1 && T >= k);
    if (!B || !C) return DC_OK;
    NEED(din, B * T * C);
    NEED(dcol, B * (T - k + 1) * C * k);
    DISPATCH(col2im, din, dcol, B, T, C, k);
}

dc_status dc_conv1d_fwd(struct dc_backend *be, dc_view out, dc_view col, dc_view in, dc_view w, size_t B, size_t T,
                        size_t C, size_t d, size_t k) {
    DC_ASSERT(k >= 1 && T >= k);
    size_t tp = T - k + 1, ck = C * k;
    dc_view x = in;
    if (k > 1) {
        dc_status rc = dc_im2col(be, col, in, B, T, C, k);
        if (rc != DC_OK) return rc;
        x = col;
    }
    /* out (B*T', d) = x (B*T', C*k) . w^T, w viewed as (d, C*k) */
    return dc_gemm(be, false, true, B * tp, d, ck, 1.0f, x, ck, w, ck, 0.0f, out, d);
}

dc_status dc_conv1d_bwd(struct dc_backend *be, dc_view din, dc_view dw, dc_view dcol, dc_view dout, dc_view col,
                        dc_view in, dc_view w, size_t B, size_t T, size_t C, size_t d, size_t k) {
    DC_ASSERT(k >= 1 && T >= k);
    size_t tp = T - k + 1, ck = C * k;
    dc_view x = k > 1 ? col : in;
    /* dw (d, C*k) += dout^T (d, B*T') . x (B*T', C*k) */
    dc_status rc = dc_gemm(be, true, false, d, ck, B * tp, 1.0f, dout, d, x, ck, 1.0f, dw, ck);
    if (rc != DC_OK || din.mem == NULL) return rc;
    if (k == 1) return dc_gemm(be, false, false, B * tp, C, d, 1.0f, dout, d, w, ck, 1.0f, din, C);
    /* dcol (B*T', C*k) = dout (B*T', d) . w (d, C*k), then scatter-add into din */
    rc = dc_gemm(be, false, false, B * tp, ck, d, 1.0f, dout, d, w, ck, 0.0f, dcol, ck);
    if (rc != DC_OK) return rc;
    return dc_col2im(be, din, dcol, B, T, C, k);
}

dc_status dc_sum(struct dc_backend *be, dc_view out, dc_view in, size_t n, float scale) {
    NEED(out, 1);
    if (n) NEED(in, n);
    DISPATCH(sum, out, in, n, scale);
}
dc_status dc_norm2(struct dc_backend *be, dc_view out, dc_view in, size_t n) {
    NEED(out, 1);
    if (n) NEED(in, n);
    DISPATCH(norm2, out, in, n);
}
struct dc_adam_consts dc_adam_consts_of(const struct dc_adam *a) {
    double t = (double)a->step;
    return (struct dc_adam_consts){
        .step_size = (float)(a->lr / (1.0 - pow(a->beta1, t))),
        .bc2_sqrt = (float)sqrt(1.0 - pow(a->beta2, t)),
        .one_minus_beta1 = (float)(1.0 - a->beta1),
        .beta2 = (float)a->beta2,
        .one_minus_beta2 = (float)(1.0 - a->beta2),
        .eps = (float)a->eps,
        .weight_decay = (float)a->weight_decay,
        .clip = (float)a->clip,
    };
}

dc_status dc_adam(struct dc_backend *be, dc_view param, dc_view m, dc_view v, dc_view grad, dc_view norm,
                  dc_view active, size_t n, const struct dc_adam *a) {
    if (!n) return DC_OK;
    NEED(param, n);
    NEED(m, n);
    NEED(v, n);
    NEED(grad, n);
    if (a->clip > 0.0f) NEED(norm, 1);
    if (active.mem) NEED(active, (n + DC_ADAM_CHUNK - 1) / DC_ADAM_CHUNK);
    DC_ASSERT(a->step >= 1);
    DISPATCH(adam, param, m, v, grad, norm, active, n, a);
}

/* ---- strided copies and the small loss terms ---- */

dc_status dc_copy2d(struct dc_backend *be, dc_view dst, size_t ld_dst, dc_view src, size_t ld_src, size_t rows,
                    size_t cols) {
    DC_ASSERT(ld_dst >= cols && ld_src >= cols);
    if (!rows || !cols) return DC_OK;
    NEED(dst, matrix_extent(rows, cols, ld_dst));
    NEED(src, matrix_extent(rows, cols, ld_src));
    DISPATCH(copy2d, dst, ld_dst, src, ld_src, rows, cols);
}
dc_status dc_axpy2d(struct dc_backend *be, dc_view dst, size_t ld_dst, float alpha, dc_view src, size_t ld_src,
                    size_t rows, size_t cols) {
    DC_ASSERT(ld_dst >= cols && ld_src >= cols);
    if (!rows || !cols) return DC_OK;
    NEED(dst, matrix_extent(rows, cols, ld_dst));
    NEED(src, matrix_extent(rows, cols, ld_src));
    DISPATCH(axpy2d, dst, ld_dst, alpha, src, ld_src, rows, cols);
}

dc_status dc_decouple_fwd(struct dc_backend *be, dc_view loss, dc_view s, dc_view c, size_t B, size_t L) {
    DC_ASSERT(B > 0 && L > 0);
    NEED(loss, 1);
    NEED(s, B * L);
    NEED(c, B * L);
    DISPATCH(decouple_fwd, loss, s, c, B, L);
}
dc_status dc_decouple_bwd(struct dc_backend *be, dc_view ds, dc_view dc, dc_view s, dc_view c, size_t B, size_t L,
                          float dloss) {
    DC_ASSERT(B > 0 && L > 0);
    NEED(ds, B * L);
    NEED(dc, B * L);
    NEED(s, B * L);
    NEED(c, B * L);
    DISPATCH(decouple_bwd, ds, dc, s, c, B, L, dloss);
}

#define NEED_Z3(a, b, c, count) \
    do {                        \
        NEED(a, count);         \
        NEED(b, count);         \
        NEED(c, count);         \
    } while (0)

dc_status dc_homo_stats_fwd(struct dc_backend *be, dc_view loss, dc_view zl, dc_view za, dc_view zv, size_t B,
                            size_t p) {
    DC_ASSERT(B > 0 && p > 0);
    NEED(loss, 1);
    NEED_Z3(zl, za, zv, B * p);
    DISPATCH(homo_stats_fwd, loss, zl, za, zv, B, p);
}
dc_status dc_homo_stats_bwd(struct dc_backend *be, dc_view dzl, dc_view dza, dc_view dzv, dc_view zl, dc_view za,
                            dc_view zv, size_t B, size_t p, float dloss) {
    DC_ASSERT(B > 0 && p > 0);
    NEED_Z3(dzl, dza, dzv, B * p);
    NEED_Z3(zl, za, zv, B * p);
    DISPATCH(homo_stats_bwd, dzl, dza, dzv, zl, za, zv, B, p, dloss);
}

static dc_status check_bandwidth(struct dc_backend *be, float bandwidth) {
    if (isfinite(bandwidth) && bandwidth > 0.0f) return DC_OK;
    return dc_set_error(be->err, DC_ERR_ARG, "MMD bandwidth must be finite and > 0 (got %g)", (double)bandwidth);
}
dc_status dc_homo_mmd_fwd(struct dc_backend *be, dc_view loss, dc_view zl, dc_view za, dc_view zv, size_t B, size_t p,
                          float bandwidth) {
    DC_ASSERT(B > 0 && p > 0);
    NEED(loss, 1);
    NEED_Z3(zl, za, zv, B * p);
    if (check_bandwidth(be, bandwidth) != DC_OK) return DC_ERR_ARG;
    DISPATCH(homo_mmd_fwd, loss, zl, za, zv, B, p, bandwidth);
}
dc_status dc_homo_mmd_bwd(struct dc_backend *be, dc_view dzl, dc_view dza, dc_view dzv, dc_view zl, dc_view za,
                          dc_view zv, size_t B, size_t p, float bandwidth, float dloss) {
    DC_ASSERT(B > 0 && p > 0);
    NEED_Z3(dzl, dza, dzv, B * p);
    NEED_Z3(zl, za, zv, B * p);
    if (check_bandwidth(be, bandwidth) != DC_OK) return DC_ERR_ARG;
    DISPATCH(homo_mmd_bwd, dzl, dza, dzv, zl, za, zv, B, p, bandwidth, dloss);
}

/* Options of a task loss; the sizes are asserted by the callers. */
static dc_status check_task_loss(struct dc_backend *be, dc_view class_w, size_t O, const struct dc_task_loss *t) {
    switch (t->kind) {
    case DC_TASK_MSE:
    case DC_TASK_L1:
    case DC_TASK_SMOOTH_L1:
        if (O != 1) return dc_set_error(be->err, DC_ERR_ARG, "a regression task loss needs O == 1 (got %zu)", O);
        if (t->kind == DC_TASK_SMOOTH_L1 && !(isfinite(t->beta) && t->beta >= 0.0f))
            return dc_set_error(be->err, DC_ERR_ARG, "smooth L1 beta must be finite and >= 0 (got %g)", (double)t->beta);
        return DC_OK;
    case DC_TASK_CE:
        if (class_w.mem) NEED(class_w, O);
        return DC_OK;
    }
    return dc_set_error(be->err, DC_ERR_ARG, "unknown task loss kind %d", (int)t->kind);
}
dc_status dc_task_loss_fwd(struct dc_backend *be, dc_view loss, dc_view out, dc_view labels, dc_view class_w, size_t B,
                           size_t O, const struct dc_task_loss *t) {
    DC_ASSERT(B > 0 && O > 0);
    NEED(loss, 1);
    NEED(out, B * O);
    NEED(labels, B);
    if (check_task_loss(be, class_w, O, t) != DC_OK) return DC_ERR_ARG;
    DISPATCH(task_loss_fwd, loss, out, labels, class_w, B, O, t);
}
dc_status dc_task_loss_bwd(struct dc_backend *be, dc_view dout, dc_view out, dc_view labels, dc_view class_w, size_t B,
                           size_t O, const struct dc_task_loss *t, float dloss) {
    DC_ASSERT(B > 0 && O > 0);
    NEED(dout, B * O);
    NEED(out, B * O);
    NEED(labels, B);
    if (check_task_loss(be, class_w, O, t) != DC_OK) return DC_ERR_ARG;
    DISPATCH(task_loss_bwd, dout, out, labels, class_w, B, O, t, dloss);
}

static dc_status check_temperature(struct dc_backend *be, float temperature) {
    if (isfinite(temperature) && temperature > 0.0f) return DC_OK;
    return dc_set_error(be->err, DC_ERR_ARG, "contrastive temperature must be finite and > 0 (got %g)",
                        (double)temperature);
}
dc_status dc_supcon_fwd(struct dc_backend *be, dc_view loss, dc_view f, dc_view labels, size_t B, size_t q,
                        bool classification, float temperature) {
    DC_ASSERT(B > 0 && q > 0);
    NEED(loss, 1);
    NEED(f, B * q);
    NEED(labels, B);
    if (check_temperature(be, temperature) != DC_OK) return DC_ERR_ARG;
    DISPATCH(supcon_fwd, loss, f, labels, B, q, classification, temperature);
}
dc_status dc_supcon_bwd(struct dc_backend *be, dc_view df, dc_view f, dc_view labels, size_t B, size_t q,
                        bool classification, float temperature, float dloss) {
    DC_ASSERT(B > 0 && q > 0);
    NEED(df, B * q);
    NEED(f, B * q);
    NEED(labels, B);
    if (check_temperature(be, temperature) != DC_OK) return DC_ERR_ARG;
    DISPATCH(supcon_bwd, df, f, labels, B, q, classification, temperature, dloss);
}

/* Attention: every view must span its rows at its stride. */
static void attention_check(const struct dc_attention *a) {
    DC_ASSERT(a->H >= 1 && a->d % a->H == 0);
    DC_ASSERT(a->ld_q >= a->d && a->ld_k >= a->d && a->ld_v >= a->d && a->ld_out >= a->d);
    DC_ASSERT(a->drop.p >= 0.0f && a->drop.p < 1.0f);
}
dc_status dc_attention_fwd(struct dc_backend *be, dc_view out, dc_view probs, dc_view q, dc_view k, dc_view v,
                           const struct dc_attention *a) {
    if (!a->B || !a->T || !a->d) return DC_OK;
    attention_check(a);
    DC_ASSERT(a->S >= 1);
    NEED(out, matrix_extent(a->B * a->T, a->d, a->ld_out));
    NEED(probs, a->B * a->H * a->T * a->S);
    NEED(q, matrix_extent(a->B * a->T, a->d, a->ld_q));
    NEED(k, matrix_extent(a->B * a->S, a->d, a->ld_k));
    NEED(v, matrix_extent(a->B * a->S, a->d, a->ld_v));
    /* counted as the two matrix products it fuses (scores, weighted sum), causal or not */
    be->stats.gemm_flops += 4 * (uint64_t)a->B * a->T * a->S * a->d;
    DISPATCH(attention_fwd, out, probs, q, k, v, a);
}
dc_status dc_attention_bwd(struct dc_backend *be, dc_view dq, dc_view dk, dc_view dv, dc_view dout, dc_view probs,
                           dc_view q, dc_view k, dc_view v, const struct dc_attention *a) {
    if (!a->B || !a->T || !a->d) return DC_OK;
    attention_check(a);
    DC_ASSERT(a->S >= 1);
    NEED(dq, matrix_extent(a->B * a->T, a->d, a->ld_q));
    NEED(dk, matrix_extent(a->B * a->S, a->d, a->ld_k));
    NEED(dv, matrix_extent(a->B * a->S, a->d, a->ld_v));
    NEED(dout, matrix_extent(a->B * a->T, a->d, a->ld_out));
    NEED(probs, a->B * a->H * a->T * a->S);
    NEED(q, matrix_extent(a->B * a->T, a->d, a->ld_q));
    NEED(k, matrix_extent(a->B * a->S, a->d, a->ld_k));
    NEED(v, matrix_extent(a->B * a->S, a->d, a->ld_v));
    /* the four products it fuses: dP = dout v^T, dv = P^T dout, dq = dS k, dk = dS^T q */
    be->stats.gemm_flops += 8 * (uint64_t)a->B * a->T * a->S * a->d;
    DISPATCH(attention_bwd, dq, dk, dv, dout, probs, q, k, v, a);
}
