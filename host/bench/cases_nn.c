/* Op cases for the row ops: layernorm, softmax, mean-pool, im2col/col2im, and the
 * Conv1d composites (im2col + gemm + col2im) filed under im2col/col2im. */
#include "bench/op_cases.h"

/* tensors: out, mean, rstd, in, w, b; p: rows, cols */
static dc_status run_layernorm_fwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_layernorm_fwd(be, t[0], t[1], t[2], t[3], t[4], t[5], c->p[0], c->p[1]);
}
/* tensors: din, dw, db, dout, in, mean, rstd, w */
static dc_status run_layernorm_bwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_layernorm_bwd(be, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], c->p[0], c->p[1]);
}
/* tensors: out, in (or one tensor x, in place); p: batch, rows, cols, causal, in place; f: scale */
static dc_status run_softmax_fwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_softmax_fwd(be, t[0], c->p[4] ? t[0] : t[1], c->p[0], c->p[1], c->p[2], c->f[0], c->p[3] != 0);
}
/* tensors: din, dout, out */
static dc_status run_softmax_bwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_softmax_bwd(be, t[0], t[1], t[2], c->p[0], c->p[1], c->p[2], c->f[0]);
}
/* p: B, T, D */
static dc_status run_meanpool_fwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_meanpool_fwd(be, t[0], t[1], c->p[0], c->p[1], c->p[2]);
}
static dc_status run_meanpool_bwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_meanpool_bwd(be, t[0], t[1], c->p[0], c->p[1], c->p[2]);
}
/* p: B, T, C, k */
static dc_status run_im2col(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_im2col(be, t[0], t[1], c->p[0], c->p[1], c->p[2], c->p[3]);
}
static dc_status run_col2im(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_col2im(be, t[0], t[1], c->p[0], c->p[1], c->p[2], c->p[3]);
}
/* tensors: out, col, in, w; p: B, T, C, d, k */
static dc_status run_conv1d_fwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_conv1d_fwd(be, t[0], t[1], t[2], t[3], c->p[0], c->p[1], c->p[2], c->p[3], c->p[4]);
}
/* tensors: din, dw, dcol, dout, col, in, w; p: B, T, C, d, k, without din */
static dc_status run_conv1d_bwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    dc_view din = c->p[5] ? (dc_view){0} : t[0];
    return dc_conv1d_bwd(be, din, t[1], t[2], t[3], t[4], t[5], t[6], c->p[0], c->p[1], c->p[2], c->p[3], c->p[4]);
}

/* A one-element accumulated output is compared by its relative error alone, which
 * cancellation between its old value and the increment can blow up; backward test
 * shapes therefore keep every gradient at 7 or more elements. */
static void cases_layernorm(struct dc_case_list *l, bool bench) {
    static const size_t test_fwd[][2] = {{1, 1}, {65, 1}, {7, 37}, {65, 7}, {37, 65}, {65, 64}, {7, 256}, {5, 1000}};
    static const size_t test_bwd[][2] = {{1, 7}, {7, 37}, {65, 7}, {37, 65}, {65, 64}, {7, 256}, {5, 1000}};
    static const size_t bench_rc[][2] = {{1600, 64}, {1600, 256}};
    size_t nf = bench ? 2 : sizeof test_fwd / sizeof test_fwd[0], nb = bench ? 2 : sizeof test_bwd / sizeof test_bwd[0];
    for (size_t i = 0; i < nf; ++i) {
        size_t r = bench ? bench_rc[i][0] : test_fwd[i][0], k = bench ? bench_rc[i][1] : test_fwd[i][1];
        struct dc_op_case *c =
            dc_case_add(l, DC_OP_layernorm_fwd, run_layernorm_fwd, 1e-11f, "layernorm_fwd rows=%zu cols=%zu", r, k);
        c->p[0] = r, c->p[1] = k;
        dc_case_tensor(c, "out", r * k, DC_FILL_NAN, 0, 0, true);
        dc_case_tensor(c, "mean", r, DC_FILL_NAN, 0, 0, true);
        dc_case_tensor(c, "rstd", r, DC_FILL_NAN, 0, 0, true);
        dc_case_tensor(c, "in", r * k, DC_FILL_UNIFORM, -1, 2, false); /* a non-zero mean */
        dc_case_tensor(c, "w", k, DC_FILL_UNIFORM, -1, 1, false);
        dc_case_tensor(c, "b", k, DC_FILL_UNIFORM, -1, 1, false);
    }
    for (size_t i = 0; i < nb; ++i) {
        size_t r = bench ? bench_rc[i][0] : test_bwd[i][0], k = bench ? bench_rc[i][1] : test_bwd[i][1];
        struct dc_op_case *c =
            dc_case_add(l, DC_OP_layernorm_bwd, run_layernorm_bwd, 1e-11f, "layernorm_bwd rows=%zu cols=%zu", r, k);
        c->p[0] = r, c->p[1] = k;
        dc_case_tensor(c, "din", r * k, DC_FILL_UNIFORM, -1, 1, true);
        dc_case_tensor(c, "dw", k, DC_FILL_UNIFORM, -1, 1, true);
        dc_case_tensor(c, "db", k, DC_FILL_UNIFORM, -1, 1, true);
        dc_case_tensor(c, "dout", r * k, DC_FILL_UNIFORM, -1, 1, false);
        dc_case_tensor(c, "in", r * k, DC_FILL_UNIFORM, -1, 2, false);
        /* saved statistics need not match in: any values exercise the formula */
        dc_case_tensor(c, "mean", r, DC_FILL_UNIFORM, 0, 1, false);
        dc_case_tensor(c, "rstd", r, DC_FILL_UNIFORM, 0.5f, 2, false);
        dc_case_tensor(c, "w", k, DC_FILL_UNIFORM, -1, 1, false);
    }
}

struct softmax_shape {
    size_t batch, rows, cols;
    float scale;
    bool causal, in_place;
};

static void cases_softmax(struct dc_case_list *l, bool bench) {
    static const struct softmax_shape test_s[] = {
        {7, 1, 1, 1.0f, false, false},     {3, 7, 37, 0.35f, true, false},  {2, 37, 7, 1.0f, true, false},
        {3, 65, 65, 0.125f, false, false}, {2, 7, 256, 1.5f, false, false}, {1, 5, 1000, 0.5f, true, false},
        {2, 3, 1000, 0.25f, false, false}, {4, 37, 37, 0.35f, true, true},  {2, 7, 65, 1.0f, false, true},
        {1, 1, 1, 0.5f, true, true},       {2, 7, 37, 40.0f, true, false}, /* exp would overflow without the max */
    };
    static const struct softmax_shape bench_s[] = {
        {256, 50, 50, 0.35f, false, false},
        {256, 50, 50, 0.35f, true, false},
        {256, 50, 100, 0.35f, false, false},
    };
    const struct softmax_shape *v = bench ? bench_s : test_s;
    size_t n = bench ? sizeof bench_s / sizeof bench_s[0] : sizeof test_s / sizeof test_s[0];
    for (size_t i = 0; i < n; ++i) {
        const struct softmax_shape *s = &v[i];
        size_t all = s->batch * s->rows * s->cols;
        struct dc_op_case *c = dc_case_add(
            l, DC_OP_softmax_fwd, run_softmax_fwd, 1e-11f, "softmax_fwd batch=%zu rows=%zu cols=%zu scale=%g%s%s",
            s->batch, s->rows, s->cols, (double)s->scale, s->causal ? " causal" : "", s->in_place ? " in-place" : "");
        c->p[0] = s->batch, c->p[1] = s->rows, c->p[2] = s->cols, c->p[3] = s->causal, c->p[4] = s->in_place;
        c->f[0] = s->scale;
        if (s->in_place) {
            dc_case_tensor(c, "x", all, DC_FILL_UNIFORM, -3, 3, true);
        } else {
            dc_case_tensor(c, "out", all, DC_FILL_NAN, 0, 0, true);
            dc_case_tensor(c, "in", all, DC_FILL_UNIFORM, -3, 3, false);
        }
    }
    for (size_t i = 0; i < n; ++i) {
        const struct softmax_shape *s = &v[i];
        if (s->in_place || (bench && s->causal)) continue; /* the backward has neither */
        size_t all = s->batch * s->rows * s->cols;
        struct dc_op_case *c = dc_case_add(l, DC_OP_softmax_bwd, run_softmax_bwd, 1e-11f,
                                           "softmax_bwd batch=%zu rows=%zu cols=%zu scale=%g", s->batch, s->rows,
                                           s->cols, (double)s->scale);
        c->p[0] = s->batch, c->p[1] = s->rows, c->p[2] = s->cols;
        c->f[0] = s->scale;
        dc_case_tensor(c, "din", all, DC_FILL_UNIFORM, -1, 1, true);
        dc_case_tensor(c, "dout", all, DC_FILL_UNIFORM, -1, 1, false);
        /* the op does not need rows that sum to 1; values of order 1 keep the added term
         * as large as din's old contents, so that an error in it shows */
        dc_case_tensor(c, "out", all, DC_FILL_UNIFORM, 0, 1, false);
    }
}

static void cases_meanpool(struct dc_case_list *l, bool bench) {
    static const size_t test_btd[][3] = {{1, 1, 1}, {7, 1, 37}, {3, 37, 65}, {7, 65, 7}, {1, 7, 256}};
    static const size_t bench_btd[][3] = {{32, 50, 64}};
    size_t n = bench ? 1 : sizeof test_btd / sizeof test_btd[0];
    for (size_t i = 0; i < n; ++i) {
        const size_t *s = bench ? bench_btd[i] : test_btd[i];
        struct dc_op_case *c = dc_case_add(l, DC_OP_meanpool_fwd, run_meanpool_fwd, 1e-12f,
                                           "meanpool_fwd B=%zu T=%zu D=%zu", s[0], s[1], s[2]);
        c->p[0] = s[0], c->p[1] = s[1], c->p[2] = s[2];
        dc_case_tensor(c, "out", s[0] * s[2], DC_FILL_NAN, 0, 0, true);
        dc_case_tensor(c, "in", s[0] * s[1] * s[2], DC_FILL_UNIFORM, -1, 2, false);
    }
    for (size_t i = 0; i < n; ++i) {
        const size_t *s = bench ? bench_btd[i] : test_btd[i];
        /* bit-identical where division is correctly rounded (PoCL); OpenCL allows 2.5 ulp */
        struct dc_op_case *c = dc_case_add(l, DC_OP_meanpool_bwd, run_meanpool_bwd, 1e-13f,
                                           "meanpool_bwd B=%zu T=%zu D=%zu", s[0], s[1], s[2]);
        c->p[0] = s[0], c->p[1] = s[1], c->p[2] = s[2];
        dc_case_tensor(c, "din", s[0] * s[1] * s[2], DC_FILL_UNIFORM, -1, 1, true);
        dc_case_tensor(c, "dout", s[0] * s[2], DC_FILL_UNIFORM, -1, 1, false);
    }
}

static void cases_im2col(struct dc_case_list *l, bool bench) {
    /* B, T, C, k: k = 1, 3, 5, and T = k (T' = 1) */
    static const size_t test_s[][4] = {{1, 1, 1, 1},   {3, 37, 7, 1}, {3, 7, 37, 3}, {2, 3, 65, 3},
                                       {7, 37, 65, 5}, {2, 5, 7, 5},  {1, 65, 37, 5}};
    static const size_t bench_s[][4] = {{32, 50, 74, 5}};
    size_t n = bench ? 1 : sizeof test_s / sizeof test_s[0];
    for (size_t i = 0; i < n; ++i) {
        const size_t *s = bench ? bench_s[i] : test_s[i];
        size_t B = s[0], T = s[1], C = s[2], k = s[3], ncol = B * (T - k + 1) * C * k;
        /* a copy: exact */
        struct dc_op_case *c =
            dc_case_add(l, DC_OP_im2col, run_im2col, 0, "im2col B=%zu T=%zu C=%zu k=%zu", B, T, C, k);
        c->p[0] = B, c->p[1] = T, c->p[2] = C, c->p[3] = k;
        dc_case_tensor(c, "col", ncol, DC_FILL_NAN, 0, 0, true);
        dc_case_tensor(c, "in", B * T * C, DC_FILL_UNIFORM, -1, 1, false);
        c = dc_case_add(l, DC_OP_col2im, run_col2im, 1e-12f, "col2im B=%zu T=%zu C=%zu k=%zu", B, T, C, k);
        c->p[0] = B, c->p[1] = T, c->p[2] = C, c->p[3] = k;
        dc_case_tensor(c, "din", B * T * C, DC_FILL_UNIFORM, -1, 1, true);
        dc_case_tensor(c, "dcol", ncol, DC_FILL_UNIFORM, -1, 1, false);
    }
}

/* Conv1d composites: they need GEMM as well. Test shapes only (bench: the gemm cases time GEMM). */
static void cases_conv1d(struct dc_case_list *l) {
    /* B, T, C, d, k, without din */
    static const size_t s_all[][6] = {{2, 7, 37, 7, 3, 0},  {3, 5, 7, 37, 5, 0},  {1, 37, 65, 7, 1, 0},
                                      {2, 37, 7, 65, 5, 0}, {2, 37, 7, 65, 5, 1}, {3, 7, 37, 7, 1, 1}};
    for (size_t i = 0; i < sizeof s_all / sizeof s_all[0]; ++i) {
        const size_t *s = s_all[i];
        size_t B = s[0], T = s[1], C = s[2], d = s[3], k = s[4], tp = T - k + 1, ncol = B * tp * C * k;
        bool no_din = s[5] != 0;
        struct dc_op_case *c;
        if (!no_din) {
            c = dc_case_add(l, DC_OP_im2col, run_conv1d_fwd, 1e-11f, "conv1d_fwd B=%zu T=%zu C=%zu d=%zu k=%zu", B, T,
                            C, d, k);
            c->p[0] = B, c->p[1] = T, c->p[2] = C, c->p[3] = d, c->p[4] = k;
            c->flops = 2.0 * (double)(B * tp) * (double)d * (double)(C * k);
            dc_case_tensor(c, "out", B * tp * d, DC_FILL_NAN, 0, 0, true);
            if (k > 1)
                dc_case_tensor(c, "col", ncol, DC_FILL_NAN, 0, 0, true);
            else
                dc_case_tensor(c, "col", 1, DC_FILL_UNIFORM, -1, 1, false); /* unused when k == 1 */
            dc_case_tensor(c, "in", B * T * C, DC_FILL_UNIFORM, -1, 1, false);
            dc_case_tensor(c, "w", d * C * k, DC_FILL_UNIFORM, -0.5f, 0.5f, false);
        }
        c = dc_case_add(l, DC_OP_col2im, run_conv1d_bwd, 1e-11f, "conv1d_bwd B=%zu T=%zu C=%zu d=%zu k=%zu%s", B, T, C,
                        d, k, no_din ? " no-din" : "");
        c->p[0] = B, c->p[1] = T, c->p[2] = C, c->p[3] = d, c->p[4] = k, c->p[5] = no_din;
        c->flops = (no_din ? 2.0 : 4.0) * (double)(B * tp) * (double)d * (double)(C * k);
        dc_case_tensor(c, "din", B * T * C, DC_FILL_UNIFORM, -1, 1, !no_din);
        dc_case_tensor(c, "dw", d * C * k, DC_FILL_UNIFORM, -1, 1, true);
        if (k > 1 && !no_din)
            dc_case_tensor(c, "dcol", ncol, DC_FILL_NAN, 0, 0, true);
        else
            dc_case_tensor(c, "dcol", 1, DC_FILL_UNIFORM, -1, 1, false); /* unused */
        dc_case_tensor(c, "dout", B * tp * d, DC_FILL_UNIFORM, -1, 1, false);
        /* any col works for parity; it need not be im2col(in) */
        dc_case_tensor(c, "col", k > 1 ? ncol : 1, DC_FILL_UNIFORM, -1, 1, false);
        dc_case_tensor(c, "in", B * T * C, DC_FILL_UNIFORM, -1, 1, false);
        dc_case_tensor(c, "w", d * C * k, DC_FILL_UNIFORM, -0.5f, 0.5f, false);
    }
}

void dc_cases_nn(struct dc_case_list *l, bool bench) {
    cases_layernorm(l, bench);
    cases_softmax(l, bench);
    cases_meanpool(l, bench);
    cases_im2col(l, bench);
    if (!bench) cases_conv1d(l);
}
