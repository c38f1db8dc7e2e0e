/* Tests of the transformer stack (host/model/transformer.c, spec §5):
 *  - forward against a naive double-precision host implementation (dropout masks taken
 *    from the same Philox words, so training mode is covered too);
 *  - backward against central differences of L = sum(out * r), r fixed, on ref, for
 *    x, ctx and every entry of every tensor of the stack, per tensor by relative L2 error
 *        ||analytic - fd|| / max(||fd||, FLOOR * rms(all fd) * sqrt(n));
 *    the forward is float, so the step FD_EPS trades truncation O(eps^2) against rounding
 *    O(1e-7 |L| / eps); the tolerance FD_TOL sits well above what a correct backward gives
 *    and far below what a wrong term gives (see the report of the issue);
 *  - parity: the same forward and backward on OpenCL (test_cl_options, default "cpu")
 *    against ref, every output and gradient by nmse.
 * Gradient buffers start with random values that are subtracted afterwards: the
 * backward must ADD, and must leave every other tensor of the flat buffer untouched. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "model/params.h"
#include "model/transformer.h"
#include "test_util.h"

#define FD_EPS 1e-2
#define FD_TOL 5e-3
#define FD_FLOOR 0.1
#define FWD_TOL 1e-5
#define PARITY_NMSE 1e-9

#define OK(call) ck_assert_int_eq((call), DC_OK)

static const enum dc_stack_id STACK = DC_STACK_TRANS_A; /* a middle stack: neighbours must stay untouched */

/* ---- deterministic random numbers (splitmix64) ---- */

static uint64_t rng_state;

static double rng_unit(void) { return test_unit_double(&rng_state); }

static float rng_range(double lo, double hi) { return (float)(lo + (hi - lo) * rng_unit()); }

static float *xalloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}

static float *xrand(size_t n, double lo, double hi) {
    float *p = xalloc(n);
    for (size_t i = 0; i < n; ++i) p[i] = rng_range(lo, hi);
    return p;
}

/* ---- cases ---- */

struct tf_case {
    const char *name;
    size_t B, Tq, Tk, d, H, L;
    bool causal, training;
    float p_attn, p_relu, p_res, p_emb;
};

static const struct tf_case CASES[] = {
    {"cross", 2, 5, 7, 8, 2, 2, false, false, 0, 0, 0, 0},
    {"self_causal", 2, 5, 0, 8, 2, 2, true, false, 0, 0, 0, 0},
    {"cross_dropout", 2, 5, 7, 8, 2, 2, false, true, 0.2f, 0.3f, 0.25f, 0.15f},
    {"self_dropout", 3, 4, 0, 12, 3, 2, true, true, 0.2f, 0.3f, 0.25f, 0.15f},
};
#define NCASES (sizeof CASES / sizeof CASES[0])

static struct dc_tf_config config_of(const struct tf_case *c) {
    return (struct dc_tf_config){.B = c->B, .Tq = c->Tq, .Tk = c->Tk, .d = c->d, .heads = c->H, .layers = c->L,
                                 .causal = c->causal, .training = c->training, .attn_dropout = c->p_attn,
                                 .relu_dropout = c->p_relu, .res_dropout = c->p_res, .embed_dropout = c->p_emb,
                                 .seed = 1234567, .step = 42, .site_base = 100};
}

/* Host data of one case: the flat parameters (random, small), inputs and the loss weights. */
struct problem {
    struct tf_case c;
    struct dc_tf_config cfg;
    struct dc_param_layout pl;
    float *params, *x, *ctx, *r;
    size_t nx, nctx, nout;
};

static void problem_init(struct problem *p, const struct tf_case *c, uint64_t seed) {
    memset(p, 0, sizeof *p);
    p->c = *c;
    p->cfg = config_of(c);
    struct dc_model_dims dims = {.d = c->d, .heads = c->H, .nlevels = c->L, .feat = {3, 4, 5},
                                 .kernel = {1, 1, 1}, .pde_dim = 4, .out_dim = 1};
    struct dc_error err = {0};
    ck_assert_msg(dc_param_layout_init(&p->pl, &dims, &err) == DC_OK, "%s", err.msg);
    rng_state = seed;
    p->params = xrand(p->pl.total, -0.3, 0.3);
    for (size_t l = 0; l < c->L; ++l) {
        /* layernorm weights around 1 */
        const struct dc_param_desc *a = dc_param_layer(&p->pl, STACK, l, DC_LAYER_PARAM_ATTN_LN_W);
        const struct dc_param_desc *f = dc_param_layer(&p->pl, STACK, l, DC_LAYER_PARAM_FINAL_LN_W);
        for (size_t i = 0; i < c->d; ++i) p->params[a->offset + i] += 1.0f, p->params[f->offset + i] += 1.0f;
        /* fc1: small weights and biases of random sign with |b| in [0.7, 1): every relu input
         * stays clear of 0 (checked: relu_margin), so no central difference straddles a kink,
         * and both relu branches occur */
        const struct dc_param_desc *w1 = dc_param_layer(&p->pl, STACK, l, DC_LAYER_PARAM_FC1_W);
        const struct dc_param_desc *b1 = dc_param_layer(&p->pl, STACK, l, DC_LAYER_PARAM_FC1_B);
        for (size_t i = 0; i < w1->numel; ++i) p->params[w1->offset + i] *= 0.1f / 0.3f;
        for (size_t i = 0; i < b1->numel; ++i)
            p->params[b1->offset + i] = (rng_unit() < 0.5 ? -1.0f : 1.0f) * rng_range(0.7, 1.0);
    }
    p->nx = p->nout = c->B * c->Tq * c->d;
    p->nctx = c->B * c->Tk * c->d;
    p->x = xrand(p->nx, -0.5, 0.5);
    p->ctx = xrand(p->nctx, -0.5, 0.5);
    p->r = xrand(p->nout, -1, 1);
}

static void problem_free(struct problem *p) {
    dc_param_layout_free(&p->pl);
    free(p->params);
    free(p->x);
    free(p->ctx);
    free(p->r);
}

/* Device state for one problem on one backend. */
struct runner {
    struct dc_backend *be;
    struct problem *p;
    struct dc_mem *params, *grads, *x, *ctx, *out, *dout, *dx, *dctx;
    struct dc_tf_layer *w, *dw;
    struct dc_tf_tape *tape;
};

static struct dc_mem *mem_new(struct dc_backend *be, size_t n) {
    struct dc_mem *m = NULL;
    OK(dc_mem_alloc(be, n ? n : 1, &m));
    return m;
}

static dc_view whole(struct dc_mem *m, size_t n) { return n ? dc_view_of(m, 0, n) : (dc_view){0}; }

static void runner_init(struct runner *rn, struct dc_backend *be, struct problem *p) {
    memset(rn, 0, sizeof *rn);
    rn->be = be;
    rn->p = p;
    rn->params = mem_new(be, p->pl.total);
    rn->grads = mem_new(be, p->pl.total);
    rn->x = mem_new(be, p->nx);
    rn->ctx = mem_new(be, p->nctx);
    rn->out = mem_new(be, p->nout);
    rn->dout = mem_new(be, p->nout);
    rn->dx = mem_new(be, p->nx);
    rn->dctx = mem_new(be, p->nctx);
    rn->w = calloc(p->c.L, sizeof *rn->w);
    rn->dw = calloc(p->c.L, sizeof *rn->dw);
    ck_assert(rn->w && rn->dw);
    for (size_t l = 0; l < p->c.L; ++l) {
        dc_tf_layer_views(&p->pl, STACK, l, rn->params, &rn->w[l]);
        dc_tf_layer_views(&p->pl, STACK, l, rn->grads, &rn->dw[l]);
    }
    dc_status rc = dc_tf_tape_create(be, &p->cfg, &rn->tape);
    ck_assert_msg(rc == DC_OK, "tape: %s", dc_backend_error(be)->msg);
    OK(dc_upload(be, whole(rn->x, p->nx), p->x));
    OK(dc_upload(be, whole(rn->ctx, p->nctx), p->ctx));
    OK(dc_upload(be, whole(rn->dout, p->nout), p->r));
}

static void runner_free(struct runner *rn) {
    dc_tf_tape_free(rn->be, rn->tape);
    struct dc_mem *ms[] = {rn->params, rn->grads, rn->x, rn->ctx, rn->out, rn->dout, rn->dx, rn->dctx};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; ++i) dc_mem_free(rn->be, ms[i]);
    free(rn->w);
    free(rn->dw);
}

/* Forward with the problem's current parameters and inputs; out (nout) on the host. */
static void runner_fwd(struct runner *rn, float *out) {
    struct problem *p = rn->p;
    OK(dc_upload(rn->be, whole(rn->params, p->pl.total), p->params));
    OK(dc_upload(rn->be, whole(rn->x, p->nx), p->x));
    OK(dc_upload(rn->be, whole(rn->ctx, p->nctx), p->ctx));
    dc_status rc = dc_tf_fwd(rn->be, rn->tape, whole(rn->out, p->nout), whole(rn->x, p->nx),
                             whole(rn->ctx, p->nctx), rn->w, &p->cfg);
    ck_assert_msg(rc == DC_OK, "fwd: %s", dc_backend_error(rn->be)->msg);
    OK(dc_download(rn->be, out, whole(rn->out, p->nout)));
}

static double runner_loss(struct runner *rn, float *scratch) {
    runner_fwd(rn, scratch);
    double s = 0.0;
    for (size_t i = 0; i < rn->p->nout; ++i) s += (double)scratch[i] * rn->p->r[i];
    return s;
}

/* Backward of the last forward with dout = r; the gradient buffers start at g0 / dx0 /
 * dctx0 (random) and the returned ones have those subtracted. */
static void runner_bwd(struct runner *rn, const float *g0, const float *dx0, const float *dctx0, float *g, float *dx,
                       float *dctx) {
    struct problem *p = rn->p;
    OK(dc_upload(rn->be, whole(rn->grads, p->pl.total), g0));
    OK(dc_upload(rn->be, whole(rn->dx, p->nx), dx0));
    OK(dc_upload(rn->be, whole(rn->dctx, p->nctx), dctx0));
    dc_status rc = dc_tf_bwd(rn->be, whole(rn->dx, p->nx), whole(rn->dctx, p->nctx), rn->dw,
                             whole(rn->dout, p->nout), rn->tape, rn->w, &p->cfg);
    ck_assert_msg(rc == DC_OK, "bwd: %s", dc_backend_error(rn->be)->msg);
    OK(dc_download(rn->be, g, whole(rn->grads, p->pl.total)));
    OK(dc_download(rn->be, dx, whole(rn->dx, p->nx)));
    OK(dc_download(rn->be, dctx, whole(rn->dctx, p->nctx)));
    for (size_t i = 0; i < p->pl.total; ++i) g[i] -= g0[i];
    for (size_t i = 0; i < p->nx; ++i) dx[i] -= dx0[i];
    for (size_t i = 0; i < p->nctx; ++i) dctx[i] -= dctx0[i];
}

static struct dc_backend *open_ref(void) {
    struct dc_backend *be = NULL;
    struct dc_error err = {0};
    ck_assert_msg(dc_backend_open_ref(&be, &err) == DC_OK, "%s", err.msg);
    return be;
}

/* ================= naive double forward ================= */

static double drop_factor(const struct dc_tf_config *c, float p, uint32_t site, size_t i) {
    if (!c->training || p <= 0.0f) return 1.0;
    uint32_t word = dc_dropout_word(c->seed, site, c->step, i);
    return word >= dc_dropout_threshold(p) ? (double)dc_dropout_scale(p) : 0.0;
}

/* y (rows, out) = x (rows, in) W^T + b */
static void naive_linear(double *y, const double *x, const float *W, const float *b, size_t rows, size_t in,
                         size_t out) {
    for (size_t i = 0; i < rows; ++i)
        for (size_t o = 0; o < out; ++o) {
            double s = b[o];
            for (size_t j = 0; j < in; ++j) s += x[i * in + j] * W[o * in + j];
            y[i * out + o] = s;
        }
}

static void naive_layernorm(double *y, const double *x, const float *w, const float *b, size_t rows, size_t d) {
    for (size_t i = 0; i < rows; ++i) {
        double m = 0.0, v = 0.0;
        for (size_t j = 0; j < d; ++j) m += x[i * d + j];
        m /= (double)d;
        for (size_t j = 0; j < d; ++j) v += (x[i * d + j] - m) * (x[i * d + j] - m);
        double rs = 1.0 / sqrt(v / (double)d + 1e-5);
        for (size_t j = 0; j < d; ++j) y[i * d + j] = (x[i * d + j] - m) * rs * w[j] + b[j];
    }
}

static const float *pptr(const struct problem *p, size_t l, enum dc_layer_param_id id) {
    return p->params + dc_param_layer(&p->pl, STACK, l, id)->offset;
}

/* The stack as spec §5 states it, with the dropout sites and the (B, H, T, S) order of
 * attention probabilities documented in transformer.c. */
static void naive_fwd(const struct problem *p, double *out, double *relu_margin) {
    const struct dc_tf_config *c = &p->cfg;
    size_t B = c->B, T = c->Tq, d = c->d, H = c->heads, h = d / H, N = B * T, F = 4 * d;
    size_t S = c->Tk ? c->Tk : T;
    bool causal = c->causal && c->Tk == 0;
    *relu_margin = INFINITY;
    double *X = calloc(N * d, sizeof(double)), *K0 = calloc(B * S * d, sizeof(double));
    double *V0 = calloc(B * S * d, sizeof(double)), *q = calloc(N * d, sizeof(double));
    double *k = calloc(B * S * d, sizeof(double)), *v = calloc(B * S * d, sizeof(double));
    double *ctx = calloc(N * d, sizeof(double)), *a = calloc(N * d, sizeof(double));
    double *y1 = calloc(N * d, sizeof(double)), *hh = calloc(N * F, sizeof(double));
    double *pr = calloc(S, sizeof(double));
    ck_assert(X && K0 && V0 && q && k && v && ctx && a && y1 && hh && pr);
    double emb = sqrt((double)d);
    for (size_t i = 0; i < N * d; ++i) X[i] = emb * p->x[i] * drop_factor(c, c->embed_dropout, c->site_base + 0, i);
    if (c->Tk)
        for (size_t i = 0; i < B * S * d; ++i) {
            K0[i] = emb * p->ctx[i] * drop_factor(c, c->embed_dropout, c->site_base + 1, i);
            V0[i] = emb * p->ctx[i] * drop_factor(c, c->embed_dropout, c->site_base + 2, i);
        }
    for (size_t l = 0; l < c->layers; ++l) {
        uint32_t ls = c->site_base + 16 * (uint32_t)(l + 1);
        const float *Wi = pptr(p, l, DC_LAYER_PARAM_IN_PROJ_W), *bi = pptr(p, l, DC_LAYER_PARAM_IN_PROJ_B);
        const double *kin = c->Tk ? K0 : X, *vin = c->Tk ? V0 : X;
        naive_linear(q, X, Wi, bi, N, d, d);
        naive_linear(k, kin, Wi + d * d, bi + d, B * S, d, d);
        naive_linear(v, vin, Wi + 2 * d * d, bi + 2 * d, B * S, d, d);
        for (size_t b = 0; b < B; ++b)
            for (size_t hd = 0; hd < H; ++hd)
                for (size_t i = 0; i < T; ++i) {
                    size_t valid = causal ? i + 1 : S;
                    double mx = -INFINITY, sum = 0.0;
                    for (size_t j = 0; j < valid; ++j) {
                        double s = 0.0;
                        for (size_t e = 0; e < h; ++e)
                            s += q[(b * T + i) * d + hd * h + e] * k[(b * S + j) * d + hd * h + e];
                        pr[j] = s / sqrt((double)h);
                        mx = fmax(mx, pr[j]);
                    }
                    for (size_t j = 0; j < valid; ++j) sum += (pr[j] = exp(pr[j] - mx));
                    for (size_t e = 0; e < h; ++e) {
                        double o = 0.0;
                        for (size_t j = 0; j < valid; ++j) {
                            size_t idx = ((b * H + hd) * T + i) * S + j;
                            o += pr[j] / sum * drop_factor(c, c->attn_dropout, ls + 0, idx) *
                                 v[(b * S + j) * d + hd * h + e];
                        }
                        ctx[(b * T + i) * d + hd * h + e] = o;
                    }
                }
        naive_linear(a, ctx, pptr(p, l, DC_LAYER_PARAM_OUT_PROJ_W), pptr(p, l, DC_LAYER_PARAM_OUT_PROJ_B), N, d, d);
        for (size_t i = 0; i < N * d; ++i) a[i] = X[i] + a[i] * drop_factor(c, c->res_dropout, ls + 1, i);
        naive_layernorm(y1, a, pptr(p, l, DC_LAYER_PARAM_ATTN_LN_W), pptr(p, l, DC_LAYER_PARAM_ATTN_LN_B), N, d);
        naive_linear(hh, y1, pptr(p, l, DC_LAYER_PARAM_FC1_W), pptr(p, l, DC_LAYER_PARAM_FC1_B), N, d, F);
        for (size_t i = 0; i < N * F; ++i) {
            *relu_margin = fmin(*relu_margin, fabs(hh[i]));
            hh[i] = (hh[i] > 0.0 ? hh[i] : 0.0) * drop_factor(c, c->relu_dropout, ls + 2, i);
        }
        naive_linear(a, hh, pptr(p, l, DC_LAYER_PARAM_FC2_W), pptr(p, l, DC_LAYER_PARAM_FC2_B), N, F, d);
        for (size_t i = 0; i < N * d; ++i) a[i] = y1[i] + a[i] * drop_factor(c, c->res_dropout, ls + 3, i);
        naive_layernorm(X, a, pptr(p, l, DC_LAYER_PARAM_FINAL_LN_W), pptr(p, l, DC_LAYER_PARAM_FINAL_LN_B), N, d);
    }
    memcpy(out, X, N * d * sizeof(double));
    double *fr[] = {X, K0, V0, q, k, v, ctx, a, y1, hh, pr};
    for (size_t i = 0; i < sizeof fr / sizeof fr[0]; ++i) free(fr[i]);
}

START_TEST(forward_matches_naive) {
    struct problem p;
    problem_init(&p, &CASES[_i], 1000 + (uint64_t)_i);
    struct dc_backend *be = open_ref();
    struct runner rn;
    runner_init(&rn, be, &p);
    float *out = xalloc(p.nout);
    double *want = calloc(p.nout, sizeof(double));
    ck_assert_ptr_nonnull(want);
    runner_fwd(&rn, out);
    double margin;
    naive_fwd(&p, want, &margin);
    double maxerr = 0.0, maxv = 0.0;
    for (size_t i = 0; i < p.nout; ++i) {
        maxerr = fmax(maxerr, fabs(out[i] - want[i]));
        maxv = fmax(maxv, fabs(want[i]));
    }
    printf("forward %-14s max|out - naive| = %.3e (max|out| %.3f), min |relu input| %.3f\n", p.c.name, maxerr, maxv,
           margin);
    ck_assert_msg(maxerr < FWD_TOL * fmax(maxv, 1.0), "%s: forward differs from the naive one by %.3e", p.c.name,
                  maxerr);
    /* a second forward on the same tape gives the same bits */
    float *again = xalloc(p.nout);
    runner_fwd(&rn, again);
    ck_assert(memcmp(out, again, p.nout * sizeof(float)) == 0);
    free(again);
    free(out);
    free(want);
    runner_free(&rn);
    dc_backend_close(be);
    problem_free(&p);
}
END_TEST

/* ================= finite differences on ref ================= */

struct fd_stat {
    double err2, fd2, g2;
    size_t n;
};

/* Central differences of the loss w.r.t. vals[0..n) (perturbed in place, restored) into fd. */
static void fd_grad(struct runner *rn, float *vals, size_t n, double *fd, float *scratch) {
    for (size_t i = 0; i < n; ++i) {
        float v0 = vals[i], vp = (float)(v0 + FD_EPS), vm = (float)(v0 - FD_EPS);
        vals[i] = vp;
        double lp = runner_loss(rn, scratch);
        vals[i] = vm;
        double lm = runner_loss(rn, scratch);
        vals[i] = v0;
        fd[i] = (lp - lm) / ((double)vp - (double)vm);
    }
}

static struct fd_stat compare(const float *g, const double *fd, size_t n) {
    struct fd_stat s = {0, 0, 0, n};
    for (size_t i = 0; i < n; ++i) {
        s.err2 += (g[i] - fd[i]) * (g[i] - fd[i]);
        s.fd2 += fd[i] * fd[i];
        s.g2 += (double)g[i] * g[i];
    }
    return s;
}

static const char *const LAYER_NAMES[DC_LAYER_PARAM_COUNT] = {
    "in_proj_w", "in_proj_b", "out_w", "out_b", "ln_attn_w", "ln_attn_b",
    "fc1_w",     "fc1_b",     "fc2_w", "fc2_b", "ln_final_w", "ln_final_b",
};

START_TEST(backward_matches_fd) {
    struct problem p;
    problem_init(&p, &CASES[_i], 2000 + (uint64_t)_i);
    const struct dc_tf_config *c = &p.cfg;
    struct dc_backend *be = open_ref();
    struct runner rn;
    runner_init(&rn, be, &p);
    float *scratch = xalloc(p.nout);
    /* no relu input within reach of a step (a perturbation of FD_EPS moves them by < 0.05 here) */
    double *want = calloc(p.nout, sizeof(double)), margin;
    ck_assert_ptr_nonnull(want);
    naive_fwd(&p, want, &margin);
    free(want);
    ck_assert_msg(margin > 0.1, "%s: a relu input is %.3g from its kink: the setup is wrong", p.c.name, margin);
    /* analytic */
    float *g0 = xrand(p.pl.total, -1, 1), *dx0 = xrand(p.nx, -1, 1), *dctx0 = xrand(p.nctx, -1, 1);
    float *g = xalloc(p.pl.total), *dx = xalloc(p.nx), *dctx = xalloc(p.nctx);
    runner_fwd(&rn, scratch);
    runner_bwd(&rn, g0, dx0, dctx0, g, dx, dctx);

    /* everything outside this stack's layers is untouched (exactly) */
    size_t lo = dc_param_layer(&p.pl, STACK, 0, 0)->offset;
    const struct dc_param_desc *last = dc_param_layer(&p.pl, STACK, c->layers - 1, DC_LAYER_PARAM_COUNT - 1);
    size_t hi = last->offset + last->numel;
    for (size_t i = 0; i < p.pl.total; ++i)
        if (i < lo || i >= hi) ck_assert_msg(g[i] == 0.0f, "%s: gradient [%zu] outside the stack changed", p.c.name, i);

    /* finite differences: inputs, then every tensor of every layer */
    struct item {
        char name[48];
        float *vals;
        const float *g;
        size_t n;
    } items[2 + 2 * DC_LAYER_PARAM_COUNT * 4 + 8];
    size_t ni = 0;
    items[ni++] = (struct item){"x", p.x, dx, p.nx};
    if (p.nctx) items[ni++] = (struct item){"ctx", p.ctx, dctx, p.nctx};
    ck_assert(c->layers <= 4);
    for (size_t l = 0; l < c->layers; ++l)
        for (size_t id = 0; id < DC_LAYER_PARAM_COUNT; ++id) {
            const struct dc_param_desc *pd = dc_param_layer(&p.pl, STACK, l, (enum dc_layer_param_id)id);
            if (id == DC_LAYER_PARAM_IN_PROJ_W || id == DC_LAYER_PARAM_IN_PROJ_B) {
                size_t blk = pd->numel / 3; /* the q, k, v row blocks */
                for (size_t k = 0; k < 3; ++k) {
                    struct item it = {"", p.params + pd->offset + k * blk, g + pd->offset + k * blk, blk};
                    snprintf(it.name, sizeof it.name, "%zu.%s.%c", l, LAYER_NAMES[id], "qkv"[k]);
                    items[ni++] = it;
                }
            } else {
                struct item it = {"", p.params + pd->offset, g + pd->offset, pd->numel};
                snprintf(it.name, sizeof it.name, "%zu.%s", l, LAYER_NAMES[id]);
                items[ni++] = it;
            }
        }
    struct fd_stat st[sizeof items / sizeof items[0]];
    double all_fd2 = 0.0;
    size_t all_n = 0;
    for (size_t k = 0; k < ni; ++k) {
        double *fd = calloc(items[k].n, sizeof(double));
        ck_assert_ptr_nonnull(fd);
        fd_grad(&rn, items[k].vals, items[k].n, fd, scratch);
        st[k] = compare(items[k].g, fd, items[k].n);
        all_fd2 += st[k].fd2;
        all_n += st[k].n;
        free(fd);
    }
    double rms = sqrt(all_fd2 / (double)all_n), worst = 0.0;
    size_t worst_k = 0;
    for (size_t k = 0; k < ni; ++k) {
        bool kbias = strstr(items[k].name, "in_proj_b.k") != NULL;
        if (kbias) { /* softmax is invariant to q . bk, a constant per row: no gradient */
            ck_assert_msg(sqrt(st[k].g2) < 1e-4 * rms * sqrt((double)st[k].n), "%s: %s: gradient %.3e, want ~0",
                          p.c.name, items[k].name, sqrt(st[k].g2));
            continue;
        }
        double den = fmax(sqrt(st[k].fd2), FD_FLOOR * rms * sqrt((double)st[k].n));
        double rel = sqrt(st[k].err2) / den;
        if (getenv("DECOCL_TF_VERBOSE"))
            printf("  %-14s %-16s n=%-4zu |fd|=%.3e rel=%.3e\n", p.c.name, items[k].name, st[k].n, sqrt(st[k].fd2),
                   rel);
        if (rel > worst) worst = rel, worst_k = k;
    }
    printf("fd      %-14s %zu tensors, %zu entries, rms grad %.3e, worst rel L2 %.3e (%s)\n", p.c.name, ni, all_n, rms,
           worst, items[worst_k].name);
    ck_assert_msg(worst < FD_TOL, "%s: d/d%s rel L2 error %.3e > %.1e", p.c.name, items[worst_k].name, worst, FD_TOL);
    free(g0), free(dx0), free(dctx0), free(g), free(dx), free(dctx), free(scratch);
    runner_free(&rn);
    dc_backend_close(be);
    problem_free(&p);
}
END_TEST

/* Mismatched shapes and a backward that does not replay the forward are errors. */
START_TEST(config_mismatch) {
    struct problem p;
    problem_init(&p, &CASES[2], 7);
    struct dc_backend *be = open_ref();
    struct runner rn;
    runner_init(&rn, be, &p);
    float *out = xalloc(p.nout);
    runner_fwd(&rn, out);
    struct dc_tf_config bad = p.cfg;
    bad.Tq += 1;
    ck_assert_int_eq(dc_tf_fwd(be, rn.tape, whole(rn.out, p.nout), whole(rn.x, p.nx), whole(rn.ctx, p.nctx), rn.w,
                               &bad),
                     DC_ERR_ARG);
    bad = p.cfg;
    bad.step += 1;
    ck_assert_int_eq(dc_tf_bwd(be, whole(rn.dx, p.nx), whole(rn.dctx, p.nctx), rn.dw, whole(rn.dout, p.nout), rn.tape,
                               rn.w, &bad),
                     DC_ERR_ARG);
    bad = p.cfg;
    bad.heads = 3; /* 8 % 3 */
    struct dc_tf_tape *t = NULL;
    ck_assert_int_eq(dc_tf_tape_create(be, &bad, &t), DC_ERR_ARG);
    ck_assert_ptr_null(t);
    free(out);
    runner_free(&rn);
    dc_backend_close(be);
    problem_free(&p);
}
END_TEST

/* ================= OpenCL parity ================= */

static double nmse(const float *a, const float *b, size_t n) {
    double e = 0.0, r = 0.0;
    for (size_t i = 0; i < n; ++i) {
        ck_assert_msg(isfinite(a[i]) && isfinite(b[i]), "non-finite value at %zu", i);
        e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    return r > 0.0 ? e / r : e;
}

START_TEST(opencl_matches_ref) {
    struct problem p;
    problem_init(&p, &CASES[_i], 3000 + (uint64_t)_i);
    struct dc_backend *ref = open_ref(), *cl = NULL;
    struct dc_backend_options o = test_cl_options();
    struct dc_error err = {0};
    ck_assert_msg(dc_backend_open(&cl, &o, &err) == DC_OK, "%s", err.msg);
    struct runner rr, rc;
    runner_init(&rr, ref, &p);
    runner_init(&rc, cl, &p);
    float *g0 = xrand(p.pl.total, -1, 1), *dx0 = xrand(p.nx, -1, 1), *dctx0 = xrand(p.nctx, -1, 1);
    float *out[2], *g[2], *dx[2], *dctx[2];
    struct runner *rs[2] = {&rr, &rc};
    for (int k = 0; k < 2; ++k) {
        out[k] = xalloc(p.nout), g[k] = xalloc(p.pl.total), dx[k] = xalloc(p.nx), dctx[k] = xalloc(p.nctx);
        runner_fwd(rs[k], out[k]);
        runner_bwd(rs[k], g0, dx0, dctx0, g[k], dx[k], dctx[k]);
    }
    double worst = nmse(out[1], out[0], p.nout);
    char what[64] = "out";
    double e = nmse(dx[1], dx[0], p.nx);
    if (e > worst) worst = e, snprintf(what, sizeof what, "dx");
    if (p.nctx && (e = nmse(dctx[1], dctx[0], p.nctx)) > worst) worst = e, snprintf(what, sizeof what, "dctx");
    double out_nmse = nmse(out[1], out[0], p.nout);
    for (size_t l = 0; l < p.cfg.layers; ++l)
        for (size_t id = 0; id < DC_LAYER_PARAM_COUNT; ++id) {
            const struct dc_param_desc *pd = dc_param_layer(&p.pl, STACK, l, (enum dc_layer_param_id)id);
            if (id == DC_LAYER_PARAM_IN_PROJ_B) { /* the k block is ~0 (rounding): compare q and v only */
                size_t blk = pd->numel / 3;
                e = fmax(nmse(g[1] + pd->offset, g[0] + pd->offset, blk),
                         nmse(g[1] + pd->offset + 2 * blk, g[0] + pd->offset + 2 * blk, blk));
                double ak = 0.0;
                for (size_t i = blk; i < 2 * blk; ++i)
                    ak = fmax(ak, fabs(g[1][pd->offset + i] - g[0][pd->offset + i]));
                ck_assert_msg(ak < 1e-5, "%s: in_proj_b k block differs by %.3e", p.c.name, ak);
            } else {
                e = nmse(g[1] + pd->offset, g[0] + pd->offset, pd->numel);
            }
            if (e > worst) worst = e, snprintf(what, sizeof what, "%zu.%s", l, LAYER_NAMES[id]);
        }
    printf("parity  %-14s on %s (gemm %s): out nmse %.3e, worst nmse %.3e (%s)\n", p.c.name, dc_backend_device_name(cl),
           dc_backend_gemm_provider(cl) == DC_GEMM_CLBLAST ? "clblast" : "own",
           out_nmse, worst, what);
    ck_assert_msg(worst <= PARITY_NMSE, "%s: %s nmse %.3e > %.1e", p.c.name, what, worst, PARITY_NMSE);
    for (int k = 0; k < 2; ++k) free(out[k]), free(g[k]), free(dx[k]), free(dctx[k]);
    free(g0), free(dx0), free(dctx0);
    runner_free(&rr);
    runner_free(&rc);
    dc_backend_close(cl);
    dc_backend_close(ref);
    problem_free(&p);
}
END_TEST

static Suite *transformer_suite(void) {
    Suite *s = suite_create("transformer");
    TCase *tc = tcase_create("ref");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, forward_matches_naive, 0, (int)NCASES);
    tcase_add_loop_test(tc, backward_matches_fd, 0, (int)NCASES);
    tcase_add_test(tc, config_mismatch);
    suite_add_tcase(s, tc);
    TCase *tp = tcase_create("parity");
    tcase_set_timeout(tp, 900);
    tcase_add_loop_test(tp, opencl_matches_ref, 0, (int)NCASES);
    suite_add_tcase(s, tp);
    return s;
}

int main(void) { return test_run_suite(transformer_suite(), 1); }
