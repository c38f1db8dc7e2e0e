/* Finite-difference checks of every backward op on ref, and Adam against PyTorch.
 *
 * For a forward out = f(inputs) and fixed random weights r, the loss L = sum(out * r)
 * (accumulated in double) has dL/dout = r, so every backward is fed dout = r and its
 * gradient is compared with central differences
 *     (L(x + e) - L(x - e)) / ((x + e) - (x - e))   per input element,
 * the denominator taken from the float values actually used. The comparison is the
 * mean absolute error over the tensor relative to the mean absolute finite difference;
 * a failure names the op, the tensor and the worst element.
 *
 * Every gradient buffer starts from random non-zero values that are subtracted after
 * the backward, so the "*_bwd ADDS" rule of ops.h is checked everywhere. Workspaces the
 * backward must overwrite (conv1d's dcol) start as NaN. Runs on ref only: no OpenCL. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "test_util.h"

/* Print every comparison (DECOCL_GRAD_VERBOSE=1): for choosing tolerances. */
static int verbose;

/* Tolerances on mean |analytic - fd| / mean |fd|, at e = 1e-2 throughout. Linear ops have
 * no truncation error, only float rounding of the outputs: below 1e-5 here. Layernorm's
 * din and softmax add O(e^2) terms: below 3e-5 here. A wrong formula (missing factor or
 * term, sign, transposed index, overwrite instead of add) errs by 1e-2 or more. */
#define TOL_LINEAR 1e-4
#define TOL_SMOOTH 1e-3

/* ---- deterministic random numbers (splitmix64), seeded per test ---- */

static uint64_t rng_state;

static double rng_unit(void) { return test_unit_double(&rng_state); }

static float rng_range(float lo, float hi) { return (float)(lo + (hi - lo) * rng_unit()); }

/* Uniform in [lo, hi). */
static void fill_uniform(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; ++i) x[i] = rng_range(lo, hi);
}

/* Magnitude uniform in [lo, hi), random sign: values kept away from 0. */
static void fill_signed(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; ++i) x[i] = (rng_unit() < 0.5 ? -1.0f : 1.0f) * rng_range(lo, hi);
}

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* ---- the ref backend and its allocations, created inside the forked test ---- */

#define MAX_MEMS 32

struct ctx {
    struct dc_backend *be;
    struct dc_error err;
    struct dc_mem *mems[MAX_MEMS];
    size_t nmem;
};

#define OK(c, call)                                                                                 \
    do {                                                                                            \
        dc_status rc_ = (call);                                                                     \
        ck_assert_msg(rc_ == DC_OK, "%s failed: %s (%s)", #call, dc_status_str(rc_), (c)->err.msg); \
    } while (0)

static void ctx_open(struct ctx *c, uint64_t seed) {
    memset(c, 0, sizeof *c);
    ck_assert_msg(dc_backend_open_ref(&c->be, &c->err) == DC_OK, "ref: %s", c->err.msg);
    rng_state = seed;
}

static dc_view ctx_alloc(struct ctx *c, size_t n) {
    ck_assert(c->nmem < MAX_MEMS);
    struct dc_mem *m;
    OK(c, dc_mem_alloc(c->be, n, &m));
    c->mems[c->nmem++] = m;
    return dc_view_of(m, 0, n);
}

static void ctx_close(struct ctx *c) {
    for (size_t i = 0; i < c->nmem; ++i) dc_mem_free(c->be, c->mems[i]);
    dc_backend_close(c->be);
}

static void put(struct ctx *c, dc_view v, const float *h) { OK(c, dc_upload(c->be, v, h)); }

/* A fresh host copy of a view; caller frees. */
static float *get(struct ctx *c, dc_view v) {
    float *h = xmalloc(v.n * sizeof *h);
    OK(c, dc_download(c->be, h, v));
    return h;
}

/* An input tensor: device view plus the host copy the finite differences perturb. */
struct input {
    const char *name;
    dc_view v;
    float *h;
};

static struct input input_new(struct ctx *c, const char *name, size_t n, float lo, float hi) {
    struct input in = {.name = name, .v = ctx_alloc(c, n), .h = xmalloc(n * sizeof(float))};
    fill_uniform(in.h, n, lo, hi);
    put(c, in.v, in.h);
    return in;
}

/* A gradient buffer pre-filled with random non-zero values, to check that bwd adds. */
struct grad {
    dc_view v;
    float *pre;
};

static struct grad grad_new(struct ctx *c, size_t n) {
    struct grad g = {.v = ctx_alloc(c, n), .pre = xmalloc(n * sizeof(float))};
    fill_signed(g.pre, n, 0.25f, 1.5f);
    put(c, g.v, g.pre);
    return g;
}

/* What the backward added: downloaded minus the pre-fill. Caller frees. */
static double *grad_added(struct ctx *c, const struct grad *g) {
    float *h = get(c, g->v);
    double *d = xmalloc(g->v.n * sizeof *d);
    for (size_t i = 0; i < g->v.n; ++i) d[i] = (double)h[i] - (double)g->pre[i];
    free(h);
    return d;
}

/* ---- the finite-difference harness ---- */

/* One forward problem: fwd reads the inputs' views and writes out. */
struct fd_problem {
    const char *what; /* op and variant, for messages */
    struct ctx *c;
    void (*fwd)(struct ctx *c, const void *p);
    const void *p;
    dc_view out;
    const float *r; /* loss weights, out.n */
    float *scratch; /* out.n */
};

static double fd_loss(struct fd_problem *fp) {
    fp->fwd(fp->c, fp->p);
    OK(fp->c, dc_download(fp->c->be, fp->scratch, fp->out));
    double l = 0.0;
    for (size_t i = 0; i < fp->out.n; ++i) l += (double)fp->scratch[i] * (double)fp->r[i];
    return l;
}

static void fd_set(struct fd_problem *fp, struct input *in, size_t i, float value) {
    in->h[i] = value;
    OK(fp->c, dc_upload(fp->c->be, dc_view_of(in->v.mem, in->v.off + i, 1), &value));
}

/* Compares analytic (in->v.n values) with central differences of the loss w.r.t. in. */
static void fd_check(struct fd_problem *fp, struct input *in, const double *analytic, float eps, double tol) {
    size_t n = in->v.n, worst = 0;
    double sum_err = 0.0, sum_fd = 0.0, worst_err = -1.0, worst_fd = 0.0;
    for (size_t i = 0; i < n; ++i) {
        float x0 = in->h[i], xp = x0 + eps, xm = x0 - eps;
        fd_set(fp, in, i, xp);
        double lp = fd_loss(fp);
        fd_set(fp, in, i, xm);
        double lm = fd_loss(fp);
        fd_set(fp, in, i, x0);
        double fd = (lp - lm) / ((double)xp - (double)xm);
        double e = fabs(analytic[i] - fd);
        sum_err += e;
        sum_fd += fabs(fd);
        if (!(e <= worst_err)) worst_err = e, worst = i, worst_fd = fd; /* NaN becomes the worst */
    }
    double mae = sum_err / (double)n, mfd = sum_fd / (double)n;
    /* the absolute floor only matters where the true gradient is all zeros (dropout p = 1) */
    double limit = tol * mfd + 1e-6;
    if (verbose)
        printf("%-52s d%-5s n %4zu  mean|fd| %.3e  mae/mean|fd| %.2e  (limit %.0e)\n", fp->what, in->name, n, mfd,
               mfd > 0.0 ? mae / mfd : mae, tol);
    ck_assert_msg(isfinite(mae) && mae <= limit,
                  "%s: d%s: mean abs error %.3g > %.3g (tol %.0e x mean |fd| %.3g); worst element %s[%zu]: "
                  "analytic %.7g, finite difference %.7g",
                  fp->what, in->name, mae, limit, tol, mfd, in->name, worst, analytic[worst], worst_fd);
}

/* Sets up the problem: its forward, output and loss weights r (out.n floats). */
static void fd_init(struct fd_problem *fp, struct ctx *c, const char *what, void (*fwd)(struct ctx *, const void *),
                    const void *p, dc_view out, float *r) {
    *fp = (struct fd_problem){.what = what, .c = c, .fwd = fwd, .p = p, .out = out, .r = r};
    fp->scratch = xmalloc(out.n * sizeof(float));
}

static float *weights_new(size_t n) {
    float *r = xmalloc(n * sizeof *r);
    fill_uniform(r, n, -1.0f, 1.0f);
    return r;
}

/* ---- bias_add / bias_grad ---- */

struct p_bias {
    size_t rows, cols;
    dc_view out, x, bias;
};

static void fwd_bias(struct ctx *c, const void *pv) {
    const struct p_bias *p = pv;
    OK(c, dc_copy(c->be, p->out, p->x));
    OK(c, dc_bias_add(c->be, p->out, p->bias, p->rows, p->cols));
}

static const size_t BIAS_SHAPES[][2] = {{5, 7}, {3, 13}, {1, 5}};

START_TEST(grad_bias_add) {
    struct ctx c;
    ctx_open(&c, 100 + (uint64_t)_i);
    size_t rows = BIAS_SHAPES[_i][0], cols = BIAS_SHAPES[_i][1], n = rows * cols;
    char what[96];
    snprintf(what, sizeof what, "bias_add/bias_grad[rows %zu cols %zu]", rows, cols);
    struct input x = input_new(&c, "x", n, -2.0f, 2.0f), b = input_new(&c, "bias", cols, -1.0f, 1.0f);
    struct p_bias p = {rows, cols, ctx_alloc(&c, n), x.v, b.v};
    float *r = weights_new(n);
    dc_view dout = ctx_alloc(&c, n);
    put(&c, dout, r);
    struct grad dx = grad_new(&c, n), db = grad_new(&c, cols);
    OK(&c, dc_axpy(c.be, dx.v, 1.0f, dout, n)); /* d x = dout */
    OK(&c, dc_bias_grad(c.be, db.v, dout, rows, cols));
    double *adx = grad_added(&c, &dx), *adb = grad_added(&c, &db);
    struct fd_problem fp;
    fd_init(&fp, &c, what, fwd_bias, &p, p.out, r);
    fd_check(&fp, &x, adx, 1e-2f, TOL_LINEAR);
    fd_check(&fp, &b, adb, 1e-2f, TOL_LINEAR);
    free(adx), free(adb), free(dx.pre), free(db.pre), free(r), free(fp.scratch), free(x.h), free(b.h);
    ctx_close(&c);
}
END_TEST

/* ---- relu ---- */

struct p_relu {
    size_t n;
    bool in_place;
    dc_view out, x;
};

static void fwd_relu(struct ctx *c, const void *pv) {
    const struct p_relu *p = pv;
    if (p->in_place) {
        OK(c, dc_copy(c->be, p->out, p->x));
        OK(c, dc_relu_fwd(c->be, p->out, p->out, p->n));
    } else {
        OK(c, dc_relu_fwd(c->be, p->out, p->x, p->n));
    }
}

START_TEST(grad_relu) {
    struct ctx c;
    ctx_open(&c, 200 + (uint64_t)_i);
    const size_t n = _i ? 41 : 37;
    const bool in_place = _i == 1;
    char what[96];
    snprintf(what, sizeof what, "relu_bwd[n %zu%s]", n, in_place ? " in place" : "");
    struct input x = input_new(&c, "in", n, 0.0f, 0.0f);
    fill_signed(x.h, n, 0.05f, 1.5f); /* |x| >= 0.05 > eps: no kink crossed */
    put(&c, x.v, x.h);
    struct p_relu p = {n, in_place, ctx_alloc(&c, n), x.v};
    fwd_relu(&c, &p);
    float *r = weights_new(n);
    dc_view dout = ctx_alloc(&c, n);
    put(&c, dout, r);
    struct grad dx = grad_new(&c, n);
    OK(&c, dc_relu_bwd(c.be, dx.v, dout, p.out, n));
    double *adx = grad_added(&c, &dx);
    size_t neg = 0;
    for (size_t i = 0; i < n; ++i) neg += x.h[i] < 0.0f;
    ck_assert_msg(neg > 0 && neg < n, "%s: inputs must have both signs (%zu of %zu negative)", what, neg, n);
    struct fd_problem fp;
    fd_init(&fp, &c, what, fwd_relu, &p, p.out, r);
    fd_check(&fp, &x, adx, 1e-2f, TOL_LINEAR);
    free(adx), free(dx.pre), free(r), free(fp.scratch), free(x.h);
    ctx_close(&c);
}
END_TEST

/* ---- layernorm ---- */

struct p_ln {
    size_t rows, cols;
    dc_view out, mean, rstd, x, w, b;
};

static void fwd_ln(struct ctx *c, const void *pv) {
    const struct p_ln *p = pv;
    OK(c, dc_layernorm_fwd(c->be, p->out, p->mean, p->rstd, p->x, p->w, p->b, p->rows, p->cols));
}

static const size_t LN_SHAPES[][2] = {{5, 13}, {7, 5}, {3, 9}};

START_TEST(grad_layernorm) {
    struct ctx c;
    ctx_open(&c, 300 + (uint64_t)_i);
    size_t rows = LN_SHAPES[_i][0], cols = LN_SHAPES[_i][1], n = rows * cols;
    char what[96];
    snprintf(what, sizeof what, "layernorm_bwd[rows %zu cols %zu]", rows, cols);
    /* offset rows so the mean term matters; w of both signs */
    struct input x = input_new(&c, "in", n, -1.5f, 2.5f), w = input_new(&c, "w", cols, -1.5f, 1.5f),
                 b = input_new(&c, "b", cols, -0.5f, 0.5f);
    struct p_ln p = {rows, cols, ctx_alloc(&c, n), ctx_alloc(&c, rows), ctx_alloc(&c, rows), x.v, w.v, b.v};
    fwd_ln(&c, &p);
    float *r = weights_new(n);
    dc_view dout = ctx_alloc(&c, n);
    put(&c, dout, r);
    struct grad dx = grad_new(&c, n), dw = grad_new(&c, cols), db = grad_new(&c, cols);
    OK(&c, dc_layernorm_bwd(c.be, dx.v, dw.v, db.v, dout, x.v, p.mean, p.rstd, w.v, rows, cols));
    double *adx = grad_added(&c, &dx), *adw = grad_added(&c, &dw), *adb = grad_added(&c, &db);
    struct fd_problem fp;
    fd_init(&fp, &c, what, fwd_ln, &p, p.out, r);
    fd_check(&fp, &x, adx, 1e-2f, TOL_SMOOTH);
    fd_check(&fp, &w, adw, 1e-2f, TOL_LINEAR); /* out is linear in w and b */
    fd_check(&fp, &b, adb, 1e-2f, TOL_LINEAR);
    free(adx), free(adw), free(adb), free(dx.pre), free(dw.pre), free(db.pre);
    free(r), free(fp.scratch), free(x.h), free(w.h), free(b.h);
    ctx_close(&c);
}
END_TEST

/* ---- softmax ---- */

struct p_softmax {
    size_t batch, rows, cols;
    float scale;
    bool causal;
    dc_view out, x;
};

static void fwd_softmax(struct ctx *c, const void *pv) {
    const struct p_softmax *p = pv;
    OK(c, dc_softmax_fwd(c->be, p->out, p->x, p->batch, p->rows, p->cols, p->scale, p->causal));
}

static const struct {
    size_t batch, rows, cols;
    float scale;
    bool causal;
} SOFTMAX_CASES[] = {
    {3, 4, 7, 0.35f, false},
    {2, 6, 6, 0.5f, true},
    {2, 5, 7, 1.7f, true},
    {1, 5, 9, 1.0f, false},
};

START_TEST(grad_softmax) {
    struct ctx c;
    ctx_open(&c, 400 + (uint64_t)_i);
    struct p_softmax p = {SOFTMAX_CASES[_i].batch, SOFTMAX_CASES[_i].rows, SOFTMAX_CASES[_i].cols,
                          SOFTMAX_CASES[_i].scale, SOFTMAX_CASES[_i].causal};
    size_t n = p.batch * p.rows * p.cols;
    char what[96];
    snprintf(what, sizeof what, "softmax_bwd[batch %zu rows %zu cols %zu scale %g%s]", p.batch, p.rows, p.cols,
             (double)p.scale, p.causal ? " causal" : "");
    struct input x = input_new(&c, "in", n, -2.0f, 2.0f);
    p.out = ctx_alloc(&c, n);
    p.x = x.v;
    fwd_softmax(&c, &p);
    /* the forward the finite differences go through: masked entries exactly 0, rows sum to 1 */
    float *y = get(&c, p.out);
    for (size_t rr = 0; rr < p.batch * p.rows; ++rr) {
        double sum = 0.0;
        for (size_t j = 0; j < p.cols; ++j) {
            size_t i = rr * p.cols + j;
            bool masked = p.causal && j > rr % p.rows;
            ck_assert_msg(masked ? y[i] == 0.0f : y[i] > 0.0f, "%s: out[%zu] (row %zu col %zu) = %g, want %s", what, i,
                          rr % p.rows, j, (double)y[i], masked ? "0 (masked)" : "> 0");
            sum += y[i];
        }
        ck_assert_msg(fabs(sum - 1.0) < 1e-6, "%s: row %zu sums to %.9g", what, rr, sum);
    }
    free(y);
    float *r = weights_new(n);
    dc_view dout = ctx_alloc(&c, n);
    put(&c, dout, r);
    struct grad dx = grad_new(&c, n);
    OK(&c, dc_softmax_bwd(c.be, dx.v, dout, p.out, p.batch, p.rows, p.cols, p.scale));
    double *adx = grad_added(&c, &dx);
    struct fd_problem fp;
    fd_init(&fp, &c, what, fwd_softmax, &p, p.out, r);
    fd_check(&fp, &x, adx, 1e-2f, TOL_SMOOTH);
    free(adx), free(dx.pre), free(r), free(fp.scratch), free(x.h);
    ctx_close(&c);
}
END_TEST

/* ---- dropout ---- */

struct p_dropout {
    size_t n;
    bool in_place;
    struct dc_dropout d;
    dc_view out, x;
};

static void fwd_dropout(struct ctx *c, const void *pv) {
    const struct p_dropout *p = pv;
    if (p->in_place) {
        OK(c, dc_copy(c->be, p->out, p->x));
        OK(c, dc_dropout_fwd(c->be, p->out, p->out, p->n, &p->d));
    } else {
        OK(c, dc_dropout_fwd(c->be, p->out, p->x, p->n, &p->d));
    }
}

/* Multiplier of element i, straight from the words of ops.h, one element at a time. */
static float dropout_factor(const struct dc_dropout *d, uint32_t thr, float keep, size_t i) {
    if (d->p <= 0.0f) return 1.0f;
    if (d->p >= 1.0f) return 0.0f;
    return dc_dropout_word(d->seed, d->site, d->step, i) >= thr ? keep : 0.0f;
}

static const struct p_dropout DROPOUT_CASES[] = {
    {.n = 37, .d = {.p = 0.3f, .seed = 0x5eed, .step = 7, .site = 5}},
    {.n = 41, .in_place = true, .d = {.p = 0.3f, .seed = 0xfeedfacecafebeefull, .step = (1ull << 32) + 3, .site = 2}},
    {.n = 13, .d = {.p = 0.0f, .seed = 1, .step = 1, .site = 1}},
    {.n = 13, .d = {.p = 1.0f, .seed = 1, .step = 1, .site = 1}},
};

START_TEST(grad_dropout) {
    struct ctx c;
    ctx_open(&c, 500 + (uint64_t)_i);
    struct p_dropout p = DROPOUT_CASES[_i];
    size_t n = p.n;
    char what[96];
    snprintf(what, sizeof what, "dropout_bwd[n %zu p %g site %u step %llu%s]", n, (double)p.d.p, p.d.site,
             (unsigned long long)p.d.step, p.in_place ? " in place" : "");
    struct input x = input_new(&c, "in", n, 0.0f, 0.0f);
    fill_signed(x.h, n, 0.1f, 2.0f); /* non-zero, so a zero output means dropped */
    put(&c, x.v, x.h);
    p.out = ctx_alloc(&c, n);
    p.x = x.v;
    fwd_dropout(&c, &p);
    /* the linear map the finite differences see is the mask of ops.h, element by element */
    float *y = get(&c, p.out);
    size_t dropped = 0;
    uint32_t thr = dc_dropout_threshold(p.d.p);
    float keep = p.d.p < 1.0f ? dc_dropout_scale(p.d.p) : 0.0f;
    for (size_t i = 0; i < n; ++i) {
        float f = dropout_factor(&p.d, thr, keep, i);
        ck_assert_msg(y[i] == x.h[i] * f, "%s: out[%zu] = %.9g, want in * %.9g = %.9g", what, i, (double)y[i],
                      (double)f, (double)(x.h[i] * f));
        dropped += y[i] == 0.0f;
    }
    free(y);
    if (p.d.p > 0.0f && p.d.p < 1.0f)
        ck_assert_msg(dropped > 0 && dropped < n, "%s: mask is trivial (%zu of %zu dropped)", what, dropped, n);
    float *r = weights_new(n);
    dc_view dout = ctx_alloc(&c, n);
    put(&c, dout, r);
    struct grad dx = grad_new(&c, n);
    OK(&c, dc_dropout_bwd(c.be, dx.v, dout, n, &p.d));
    double *adx = grad_added(&c, &dx);
    struct fd_problem fp;
    fd_init(&fp, &c, what, fwd_dropout, &p, p.out, r);
    fd_check(&fp, &x, adx, 1e-2f, TOL_LINEAR);
    free(adx), free(dx.pre), free(r), free(fp.scratch), free(x.h);
    ctx_close(&c);
}
END_TEST

/* ---- meanpool ---- */

struct p_pool {
    size_t B, T, D;
    dc_view out, x;
};

static void fwd_pool(struct ctx *c, const void *pv) {
    const struct p_pool *p = pv;
    OK(c, dc_meanpool_fwd(c->be, p->out, p->x, p->B, p->T, p->D));
}

static const size_t POOL_SHAPES[][3] = {{2, 5, 7}, {3, 1, 5}, {1, 7, 3}};

START_TEST(grad_meanpool) {
    struct ctx c;
    ctx_open(&c, 600 + (uint64_t)_i);
    size_t B = POOL_SHAPES[_i][0], T = POOL_SHAPES[_i][1], D = POOL_SHAPES[_i][2];
    char what[96];
    snprintf(what, sizeof what, "meanpool_bwd[B %zu T %zu D %zu]", B, T, D);
    struct input x = input_new(&c, "in", B * T * D, -2.0f, 2.0f);
    struct p_pool p = {B, T, D, ctx_alloc(&c, B * D), x.v};
    float *r = weights_new(B * D);
    dc_view dout = ctx_alloc(&c, B * D);
    put(&c, dout, r);
    struct grad dx = grad_new(&c, B * T * D);
    OK(&c, dc_meanpool_bwd(c.be, dx.v, dout, B, T, D));
    double *adx = grad_added(&c, &dx);
    struct fd_problem fp;
    fd_init(&fp, &c, what, fwd_pool, &p, p.out, r);
    fd_check(&fp, &x, adx, 1e-2f, TOL_LINEAR);
    free(adx), free(dx.pre), free(r), free(fp.scratch), free(x.h);
    ctx_close(&c);
}
END_TEST

/* ---- im2col / col2im ---- */

struct p_im2col {
    size_t B, T, C, k;
    dc_view col, x;
};

static void fwd_im2col(struct ctx *c, const void *pv) {
    const struct p_im2col *p = pv;
    OK(c, dc_im2col(c->be, p->col, p->x, p->B, p->T, p->C, p->k));
}

static const size_t CONV_SHAPES[][4] = {{2, 7, 3, 3}, {3, 5, 2, 5}, {2, 6, 4, 1}, {1, 9, 3, 5}};

START_TEST(grad_im2col) {
    struct ctx c;
    ctx_open(&c, 700 + (uint64_t)_i);
    size_t B = CONV_SHAPES[_i][0], T = CONV_SHAPES[_i][1], C = CONV_SHAPES[_i][2], k = CONV_SHAPES[_i][3];
    size_t nx = B * T * C, ncol = B * (T - k + 1) * C * k;
    char what[96];
    snprintf(what, sizeof what, "im2col/col2im[B %zu T %zu C %zu k %zu]", B, T, C, k);
    struct input x = input_new(&c, "in", nx, -2.0f, 2.0f);
    struct p_im2col p = {B, T, C, k, ctx_alloc(&c, ncol), x.v};
    fwd_im2col(&c, &p);
    float *r = weights_new(ncol);
    dc_view dcol = ctx_alloc(&c, ncol);
    put(&c, dcol, r);
    struct grad dx = grad_new(&c, nx);
    OK(&c, dc_col2im(c.be, dx.v, dcol, B, T, C, k));
    double *adx = grad_added(&c, &dx);
    /* adjoint: <im2col(x), y> == <x, col2im(y)> with y = r */
    float *col = get(&c, p.col);
    double lhs = 0.0, rhs = 0.0, mag = 0.0;
    for (size_t i = 0; i < ncol; ++i) lhs += (double)col[i] * r[i], mag += fabs((double)col[i] * r[i]);
    for (size_t i = 0; i < nx; ++i) rhs += (double)x.h[i] * adx[i];
    free(col);
    ck_assert_msg(fabs(lhs - rhs) <= 1e-6 * mag, "%s: <im2col(x), y> = %.9g but <x, col2im(y)> = %.9g", what, lhs, rhs);
    struct fd_problem fp;
    fd_init(&fp, &c, what, fwd_im2col, &p, p.col, r);
    fd_check(&fp, &x, adx, 1e-2f, TOL_LINEAR);
    free(adx), free(dx.pre), free(r), free(fp.scratch), free(x.h);
    ctx_close(&c);
}
END_TEST

/* ---- conv1d (composite: im2col + gemm) ---- */

struct p_conv {
    size_t B, T, C, d, k;
    dc_view out, col, x, w;
};

static void fwd_conv(struct ctx *c, const void *pv) {
    const struct p_conv *p = pv;
    OK(c, dc_conv1d_fwd(c->be, p->out, p->col, p->x, p->w, p->B, p->T, p->C, p->d, p->k));
}

/* B, T, C, d, k, din wanted */
static const size_t CONV1D_CASES[][6] = {
    {2, 7, 3, 5, 1, 1}, {2, 7, 3, 5, 3, 1}, {3, 6, 2, 3, 5, 1}, {2, 8, 3, 4, 3, 0}};

START_TEST(grad_conv1d) {
    struct ctx c;
    ctx_open(&c, 800 + (uint64_t)_i);
    const size_t *s = CONV1D_CASES[_i];
    size_t B = s[0], T = s[1], C = s[2], d = s[3], k = s[4], tp = T - k + 1;
    bool want_din = s[5] != 0;
    size_t nx = B * T * C, nw = d * C * k, nout = B * tp * d, ncol = B * tp * C * k;
    char what[96];
    snprintf(what, sizeof what, "conv1d_bwd[B %zu T %zu C %zu d %zu k %zu%s]", B, T, C, d, k,
             want_din ? "" : " no din");
    struct input x = input_new(&c, "in", nx, -2.0f, 2.0f), w = input_new(&c, "w", nw, -1.0f, 1.0f);
    /* col and dcol are unused when k == 1: pass empty views */
    dc_view col = k > 1 ? ctx_alloc(&c, ncol) : (dc_view){0}, dcol = k > 1 ? ctx_alloc(&c, ncol) : (dc_view){0};
    struct p_conv p = {B, T, C, d, k, ctx_alloc(&c, nout), col, x.v, w.v};
    fwd_conv(&c, &p);
    float *r = weights_new(nout);
    dc_view dout = ctx_alloc(&c, nout);
    put(&c, dout, r);
    struct grad dx = grad_new(&c, nx), dw = grad_new(&c, nw);
    if (k > 1) OK(&c, dc_fill(c.be, dcol, NAN)); /* workspace: must be overwritten, never read */
    OK(&c, dc_conv1d_bwd(c.be, want_din ? dx.v : (dc_view){0}, dw.v, dcol, dout, col, x.v, w.v, B, T, C, d, k));
    double *adx = grad_added(&c, &dx), *adw = grad_added(&c, &dw);
    struct fd_problem fp;
    fd_init(&fp, &c, what, fwd_conv, &p, p.out, r);
    if (want_din) {
        fd_check(&fp, &x, adx, 1e-2f, TOL_LINEAR);
    } else {
        for (size_t i = 0; i < nx; ++i)
            ck_assert_msg(adx[i] == 0.0, "%s: din[%zu] changed by %g though no din was passed", what, i, adx[i]);
    }
    fd_check(&fp, &w, adw, 1e-2f, TOL_LINEAR);
    free(adx), free(adw), free(dx.pre), free(dw.pre), free(r), free(fp.scratch), free(x.h), free(w.h);
    ctx_close(&c);
}
END_TEST

/* ---- gemm: dA and dB by gemm itself, for all transposes, padded and batched ---- */

struct p_gemm {
    struct dc_gemm_shape s;
    float alpha, beta;
    dc_view c, c0, a, b;
};

static void fwd_gemm(struct ctx *c, const void *pv) {
    const struct p_gemm *p = pv;
    OK(c, dc_copy(c->be, p->c, p->c0));
    OK(c, dc_gemm_ex(c->be, &p->s, p->alpha, p->a, p->b, p->beta, p->c));
}

static size_t extent(size_t batch, size_t stride, size_t rows, size_t ld) { return (batch - 1) * stride + rows * ld; }

/* _i: bit 0 ta, bit 1 tb, bit 2 batched (batch 2, beta 0, gaps between matrices) */
START_TEST(grad_gemm) {
    struct ctx c;
    ctx_open(&c, 900 + (uint64_t)_i);
    const bool ta = _i & 1, tb = (_i >> 1) & 1, batched = (_i >> 2) & 1;
    const size_t m = 5, n = 7, k = 6, batch = batched ? 2 : 1;
    /* stored shapes: A (m, k) or (k, m); B (k, n) or (n, k); leading dimensions padded by 2 */
    size_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
    struct p_gemm p = {.alpha = 0.7f, .beta = batched ? 0.0f : 0.5f};
    struct dc_gemm_shape *s = &p.s;
    *s = (struct dc_gemm_shape){
        .ta = ta, .tb = tb, .m = m, .n = n, .k = k, .lda = a_cols + 2, .ldb = b_cols + 2, .ldc = n + 2, .batch = batch};
    s->stride_a = a_rows * s->lda + 3, s->stride_b = b_rows * s->ldb + 3, s->stride_c = m * s->ldc + 3;
    size_t na = extent(batch, s->stride_a, a_rows, s->lda), nb = extent(batch, s->stride_b, b_rows, s->ldb),
           nc = extent(batch, s->stride_c, m, s->ldc);
    char what[96];
    snprintf(what, sizeof what, "gemm[%c%c m %zu n %zu k %zu batch %zu alpha %g beta %g]", ta ? 'T' : 'N',
             tb ? 'T' : 'N', m, n, k, batch, (double)p.alpha, (double)p.beta);
    struct input a = input_new(&c, "A", na, -1.0f, 1.0f), b = input_new(&c, "B", nb, -1.0f, 1.0f),
                 c0 = input_new(&c, "C", nc, -1.0f, 1.0f);
    p.c = ctx_alloc(&c, nc), p.c0 = c0.v, p.a = a.v, p.b = b.v;
    /* r is zero outside C's logical elements: padding keeps C0's value, which is not gemm's business */
    float *r = weights_new(nc);
    for (size_t i = 0; i < nc; ++i) {
        size_t bi = i / s->stride_c, rem = i % s->stride_c;
        if (bi >= batch || rem >= m * s->ldc || rem % s->ldc >= n) r[i] = 0.0f;
    }
    dc_view g = ctx_alloc(&c, nc);
    put(&c, g, r);
    struct grad da = grad_new(&c, na), db = grad_new(&c, nb), dc0 = grad_new(&c, nc);
    /* d op(A) = alpha G op(B)^T and d op(B) = alpha op(A)^T G, each by one gemm into the stored
     * layout (transposed where op transposes), with the forward's leading dimensions and strides */
    struct dc_gemm_shape sa = {
        .m = ta ? k : m, .n = ta ? m : k, .k = n, .ldc = s->lda, .stride_c = s->stride_a, .batch = batch};
    if (!ta) { /* dA (m, k) = alpha G op(B)^T */
        sa.ta = false, sa.tb = !tb, sa.lda = s->ldc, sa.stride_a = s->stride_c, sa.ldb = s->ldb,
        sa.stride_b = s->stride_b;
    } else { /* dA (k, m) = alpha op(B) G^T */
        sa.ta = tb, sa.tb = true, sa.lda = s->ldb, sa.stride_a = s->stride_b, sa.ldb = s->ldc,
        sa.stride_b = s->stride_c;
    }
    struct dc_gemm_shape sb = {
        .m = tb ? n : k, .n = tb ? k : n, .k = m, .ldc = s->ldb, .stride_c = s->stride_b, .batch = batch};
    if (!tb) { /* dB (k, n) = alpha op(A)^T G */
        sb.ta = !ta, sb.tb = false, sb.lda = s->lda, sb.stride_a = s->stride_a, sb.ldb = s->ldc,
        sb.stride_b = s->stride_c;
    } else { /* dB (n, k) = alpha G^T op(A) */
        sb.ta = true, sb.tb = ta, sb.lda = s->ldc, sb.stride_a = s->stride_c, sb.ldb = s->lda,
        sb.stride_b = s->stride_a;
    }
    OK(&c, dc_gemm_ex(c.be, &sa, p.alpha, ta ? b.v : g, ta ? g : b.v, 1.0f, da.v));
    OK(&c, dc_gemm_ex(c.be, &sb, p.alpha, tb ? g : a.v, tb ? a.v : g, 1.0f, db.v));
    OK(&c, dc_axpy(c.be, dc0.v, p.beta, g, nc)); /* d C0 = beta G */
    double *ada = grad_added(&c, &da), *adb = grad_added(&c, &db), *adc = grad_added(&c, &dc0);
    struct fd_problem fp;
    fd_init(&fp, &c, what, fwd_gemm, &p, p.c, r);
    fd_check(&fp, &a, ada, 1e-2f, TOL_LINEAR);
    fd_check(&fp, &b, adb, 1e-2f, TOL_LINEAR);
    fd_check(&fp, &c0, adc, 1e-2f, TOL_LINEAR);
    free(ada), free(adb), free(adc), free(da.pre), free(db.pre), free(dc0.pre);
    free(r), free(fp.scratch), free(a.h), free(b.h), free(c0.h);
    ctx_close(&c);
}
END_TEST

/* ---- fused attention ---- */

struct p_attention {
    struct dc_attention a;
    dc_view out, probs, q, k, v;
};

static void fwd_attention(struct ctx *c, const void *pv) {
    const struct p_attention *p = pv;
    OK(c, dc_attention_fwd(c->be, p->out, p->probs, p->q, p->k, p->v, &p->a));
}

/* B, T, S, H, h, causal, dropout p, row padding. With dropout the mask is fixed by
 * (seed, step, site), so the finite differences see one linear map of drop(P). */
static const struct {
    size_t B, T, S, H, h;
    bool causal;
    float p;
    size_t pad;
} ATTENTION_CASES[] = {
    {2, 3, 5, 2, 3, false, 0.0f, 0}, {2, 3, 5, 2, 3, false, 0.3f, 2}, {1, 5, 5, 2, 2, true, 0.0f, 0},
    {2, 4, 4, 1, 3, true, 0.3f, 1},  {1, 1, 1, 1, 2, false, 0.3f, 0}, {1, 4, 7, 3, 2, false, 0.5f, 0},
};

START_TEST(grad_attention) {
    struct ctx c;
    ctx_open(&c, 1100 + (uint64_t)_i);
    size_t B = ATTENTION_CASES[_i].B, T = ATTENTION_CASES[_i].T, S = ATTENTION_CASES[_i].S, H = ATTENTION_CASES[_i].H,
           h = ATTENTION_CASES[_i].h, d = H * h, ld = d + ATTENTION_CASES[_i].pad;
    struct p_attention p = {.a = {.B = B, .T = T, .S = S, .d = d, .H = H, .ld_q = ld, .ld_k = ld, .ld_v = ld,
                                  .ld_out = ld, .scale = 1.0f / sqrtf((float)h), .causal = ATTENTION_CASES[_i].causal,
                                  .drop = {.p = ATTENTION_CASES[_i].p, .seed = 0xa77e, .step = 5, .site = 3}}};
    char what[96];
    snprintf(what, sizeof what, "attention_bwd[B %zu T %zu S %zu H %zu h %zu%s p %g ld %zu]", B, T, S, H, h,
             p.a.causal ? " causal" : "", (double)p.a.drop.p, ld);
    /* scores of order 1: the softmax is neither saturated nor flat */
    struct input q = input_new(&c, "q", B * T * ld, -1.5f, 1.5f), k = input_new(&c, "k", B * S * ld, -1.5f, 1.5f),
                 v = input_new(&c, "v", B * S * ld, -1.0f, 1.0f);
    p.q = q.v, p.k = k.v, p.v = v.v;
    p.out = ctx_alloc(&c, B * T * ld);
    OK(&c, dc_fill(c.be, p.out, 0.0f)); /* the padding columns, which the op leaves alone */
    p.probs = ctx_alloc(&c, B * H * T * S);
    fwd_attention(&c, &p);
    float *r = weights_new(B * T * ld);
    for (size_t i = 0; i < B * T * ld; ++i)
        if (i % ld >= d) r[i] = 0.0f;
    dc_view dout = ctx_alloc(&c, B * T * ld);
    put(&c, dout, r);
    struct grad dq = grad_new(&c, B * T * ld), dk = grad_new(&c, B * S * ld), dv = grad_new(&c, B * S * ld);
    OK(&c, dc_attention_bwd(c.be, dq.v, dk.v, dv.v, dout, p.probs, q.v, k.v, v.v, &p.a));
    double *adq = grad_added(&c, &dq), *adk = grad_added(&c, &dk), *adv = grad_added(&c, &dv);
    struct fd_problem fp;
    fd_init(&fp, &c, what, fwd_attention, &p, p.out, r);
    fd_check(&fp, &q, adq, 1e-2f, TOL_SMOOTH);
    fd_check(&fp, &k, adk, 1e-2f, TOL_SMOOTH);
    fd_check(&fp, &v, adv, 1e-2f, TOL_LINEAR);
    free(adq), free(adk), free(adv), free(dq.pre), free(dk.pre), free(dv.pre);
    free(r), free(fp.scratch), free(q.h), free(k.h), free(v.h);
    ctx_close(&c);
}
END_TEST

/* ---- scale, axpy, add ---- */

struct p_elt {
    size_t n;
    float alpha;
    dc_view out, x, y;
};

static void fwd_scale(struct ctx *c, const void *pv) {
    const struct p_elt *p = pv;
    OK(c, dc_copy(c->be, p->out, p->x));
    OK(c, dc_scale(c->be, p->out, p->alpha, p->n));
}

static void fwd_axpy(struct ctx *c, const void *pv) {
    const struct p_elt *p = pv;
    OK(c, dc_copy(c->be, p->out, p->y));
    OK(c, dc_axpy(c->be, p->out, p->alpha, p->x, p->n));
}

static void fwd_add(struct ctx *c, const void *pv) {
    const struct p_elt *p = pv;
    OK(c, dc_add(c->be, p->out, p->x, p->y, p->n));
}

/* _i: 0 scale, 1 axpy, 2 add. The backward of scale and axpy is axpy; add's is add in place. */
START_TEST(grad_elementwise) {
    struct ctx c;
    ctx_open(&c, 1000 + (uint64_t)_i);
    static const char *const names[] = {"scale", "axpy", "add"};
    static void (*const fwds[])(struct ctx *, const void *) = {fwd_scale, fwd_axpy, fwd_add};
    const size_t n = 23;
    char what[96];
    snprintf(what, sizeof what, "%s[n %zu]", names[_i], n);
    struct input x = input_new(&c, "x", n, -2.0f, 2.0f), y = input_new(&c, "y", n, -2.0f, 2.0f);
    struct p_elt p = {n, -1.35f, ctx_alloc(&c, n), x.v, y.v};
    float *r = weights_new(n);
    dc_view dout = ctx_alloc(&c, n);
    put(&c, dout, r);
    struct grad dx = grad_new(&c, n), dy = grad_new(&c, n);
    if (_i == 0) {
        OK(&c, dc_axpy(c.be, dx.v, p.alpha, dout, n));
    } else if (_i == 1) {
        OK(&c, dc_axpy(c.be, dx.v, p.alpha, dout, n));
        OK(&c, dc_axpy(c.be, dy.v, 1.0f, dout, n));
    } else {
        OK(&c, dc_add(c.be, dx.v, dx.v, dout, n)); /* out aliasing a */
        OK(&c, dc_add(c.be, dy.v, dout, dy.v, n)); /* out aliasing b */
    }
    double *adx = grad_added(&c, &dx), *ady = grad_added(&c, &dy);
    struct fd_problem fp;
    fd_init(&fp, &c, what, fwds[_i], &p, p.out, r);
    fd_check(&fp, &x, adx, 1e-2f, TOL_LINEAR);
    if (_i > 0) fd_check(&fp, &y, ady, 1e-2f, TOL_LINEAR);
    free(adx), free(ady), free(dx.pre), free(dy.pre), free(r), free(fp.scratch), free(x.h), free(y.h);
    ctx_close(&c);
}
END_TEST

/* ---- Adam: two PyTorch steps, by hand ---- */

/* Elements 0-2 active with gradients; 3 active and all zero (stays 0); 64 in chunk 1,
 * flagged 0, with a gradient (counted in the norm) and non-zero moments that must stay;
 * 128 and 129 in chunk 2, flagged 1, with zero gradient: weight decay alone moves them.
 * lr 0.01, betas (0.9, 0.999), eps 1e-8, weight_decay 0.1, clip 2.2: the step-1 norm
 * 2.5617 exceeds clip (gradients scaled by 0.85879), the step-2 norm 2.0156 does not
 * (scale 1: clipping never scales up).
 * Expected values were computed by hand in double precision from
 *   g = c grad + wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *   p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps),
 * which is torch.optim.Adam(weight_decay=wd) after clip_grad_norm_(clip). */
START_TEST(adam_two_steps_by_hand) {
    struct ctx c;
    ctx_open(&c, 1100);
    enum { N = 130 };
    static const size_t idx[] = {0, 1, 2, 3, 64, 128, 129};
    static const float p0[] = {0.5f, -1.25f, 0.125f, 0.0f, 0.75f, 2.0f, -0.5f};
    static const float g1[] = {2.0f, -1.5f, 0.25f, 0.0f, 0.5f, 0.0f, 0.0f};
    static const float g2[] = {-1.0f, 0.75f, 1.5f, 0.0f, 0.5f, 0.0f, 0.0f};
    static const float m0[] = {0, 0, 0, 0, 0.2f, 0, 0}, v0[] = {0, 0, 0, 0, 0.05f, 0, 0};
    static const double want_p[] = {4.876270026792e-01, -1.236889194230e+00, 1.066457098652e-01, 0.0, 0.75,
                                    1.980001338955e+00, -4.800057796845e-01};
    static const double want_m[] = {6.398251121278e-02, -6.458688340987e-02, 1.715978139059e-01, 0.0, 0.2,
                                    3.790000000500e-02, -9.400000020000e-03};
    static const double want_v[] = {4.025627929398e-03, 2.386978075056e-03, 2.336199531646e-03, 0.0, 0.05,
                                    7.956100001990e-05, 4.898500019600e-06};
    static const double want_norm[] = {2.5617376914898995, 2.0155644370746373};
    const size_t ne = sizeof idx / sizeof idx[0];
    float hp[N] = {0}, hm[N] = {0}, hv[N] = {0}, hg[2][N] = {{0}}, flags[3] = {1.0f, 0.0f, 1.0f};
    for (size_t e = 0; e < ne; ++e)
        hp[idx[e]] = p0[e], hm[idx[e]] = m0[e], hv[idx[e]] = v0[e], hg[0][idx[e]] = g1[e], hg[1][idx[e]] = g2[e];
    dc_view param = ctx_alloc(&c, N), m = ctx_alloc(&c, N), v = ctx_alloc(&c, N), grad = ctx_alloc(&c, N),
            norm = ctx_alloc(&c, 1), active = ctx_alloc(&c, 3);
    put(&c, param, hp), put(&c, m, hm), put(&c, v, hv), put(&c, active, flags);
    struct dc_adam a = {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1, .clip = 2.2};
    for (int t = 0; t < 2; ++t) {
        put(&c, grad, hg[t]);
        OK(&c, dc_norm2(c.be, norm, grad, N));
        float *got_norm = get(&c, norm);
        ck_assert_msg(fabs(got_norm[0] - want_norm[t]) <= 1e-6 * want_norm[t], "norm2 step %d: %.9g, want %.9g", t + 1,
                      (double)got_norm[0], want_norm[t]);
        free(got_norm);
        a.step = (uint64_t)t + 1;
        OK(&c, dc_adam(c.be, param, m, v, grad, norm, active, N, &a));
        float *gg = get(&c, grad);
        ck_assert_msg(memcmp(gg, hg[t], sizeof hg[t]) == 0, "adam step %d modified grad", t + 1);
        free(gg);
    }
    float *gp = get(&c, param), *gm = get(&c, m), *gv = get(&c, v);
    for (size_t i = 0; i < N; ++i) {
        size_t e = 0;
        while (e < ne && idx[e] != i) ++e;
        double wp = e < ne ? want_p[e] : 0.0, wm = e < ne ? want_m[e] : 0.0, wv = e < ne ? want_v[e] : 0.0;
        if (i >= 64 && i < 128) { /* inactive chunk: bit-identical */
            ck_assert_msg(
                gp[i] == hp[i] && gm[i] == hm[i] && gv[i] == hv[i],
                "adam: element %zu in a chunk flagged 0 changed: param %.9g m %.9g v %.9g (was %.9g %.9g %.9g)", i,
                (double)gp[i], (double)gm[i], (double)gv[i], (double)hp[i], (double)hm[i], (double)hv[i]);
            continue;
        }
        ck_assert_msg(fabs(gp[i] - wp) <= 2e-6 * fmax(1.0, fabs(wp)), "adam: param[%zu] = %.9g, want %.9g", i,
                      (double)gp[i], wp);
        ck_assert_msg(fabs(gm[i] - wm) <= 1e-5 * fabs(wm) + 1e-12, "adam: m[%zu] = %.9g, want %.9g", i, (double)gm[i],
                      wm);
        ck_assert_msg(fabs(gv[i] - wv) <= 1e-5 * fabs(wv) + 1e-15, "adam: v[%zu] = %.9g, want %.9g", i, (double)gv[i],
                      wv);
    }
    free(gp), free(gm), free(gv);
    ctx_close(&c);
}
END_TEST

/* clip <= 0 ignores the norm (an empty view is fine); an empty active view means all active. */
START_TEST(adam_no_clip_all_active) {
    struct ctx c;
    ctx_open(&c, 1200);
    enum { N = 67 };
    float hp[N], hg[N];
    fill_uniform(hp, N, -1.0f, 1.0f);
    fill_signed(hg, N, 0.5f, 3.0f); /* norm well above any clip: a clip would show */
    dc_view param = ctx_alloc(&c, N), m = ctx_alloc(&c, N), v = ctx_alloc(&c, N), grad = ctx_alloc(&c, N);
    put(&c, param, hp), put(&c, grad, hg);
    OK(&c, dc_fill(c.be, m, 0.0f));
    OK(&c, dc_fill(c.be, v, 0.0f));
    struct dc_adam a = {.lr = 0.05, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-3, .weight_decay = 0.0, .step = 1};
    OK(&c, dc_adam(c.be, param, m, v, grad, (dc_view){0}, (dc_view){0}, N, &a)); /* clip 0: norm unused; all active */
    float *gp = get(&c, param), *gm = get(&c, m);
    for (size_t i = 0; i < N; ++i) {
        /* step 1 from zero moments: m = (1-b1) g, m_hat = g, v_hat = g^2 */
        double g = hg[i], wp = hp[i] - 0.05 * g / (fabs(g) + 1e-3), wm = 0.2 * g;
        ck_assert_msg(fabs(gp[i] - wp) <= 2e-6, "adam (no clip): param[%zu] = %.9g, want %.9g", i, (double)gp[i], wp);
        ck_assert_msg(fabs(gm[i] - wm) <= 1e-6 * fabs(wm), "adam (no clip): m[%zu] = %.9g, want %.9g", i, (double)gm[i],
                      wm);
    }
    free(gp), free(gm);
    ctx_close(&c);
}
END_TEST

#define NCASES(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(void) {
    const char *vb = getenv("DECOCL_GRAD_VERBOSE");
    verbose = vb && *vb && strcmp(vb, "0") != 0;
    Suite *s = suite_create("grad");
    TCase *tc = tcase_create("finite_differences");
    tcase_set_timeout(tc, 30); /* each case takes milliseconds; sanitizers slow that down */
    tcase_add_loop_test(tc, grad_bias_add, 0, NCASES(BIAS_SHAPES));
    tcase_add_loop_test(tc, grad_relu, 0, 2);
    tcase_add_loop_test(tc, grad_layernorm, 0, NCASES(LN_SHAPES));
    tcase_add_loop_test(tc, grad_softmax, 0, NCASES(SOFTMAX_CASES));
    tcase_add_loop_test(tc, grad_dropout, 0, NCASES(DROPOUT_CASES));
    tcase_add_loop_test(tc, grad_meanpool, 0, NCASES(POOL_SHAPES));
    tcase_add_loop_test(tc, grad_im2col, 0, NCASES(CONV_SHAPES));
    tcase_add_loop_test(tc, grad_conv1d, 0, NCASES(CONV1D_CASES));
    tcase_add_loop_test(tc, grad_gemm, 0, 8);
    tcase_add_loop_test(tc, grad_elementwise, 0, 3);
    tcase_add_loop_test(tc, grad_attention, 0, NCASES(ATTENTION_CASES));
    suite_add_tcase(s, tc);
    TCase *ta = tcase_create("adam");
    tcase_add_test(ta, adam_two_steps_by_hand);
    tcase_add_test(ta, adam_no_clip_all_active);
    suite_add_tcase(s, ta);
    return test_run_suite(s, 0);
}
