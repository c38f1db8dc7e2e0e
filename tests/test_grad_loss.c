/* Finite-difference checks of the loss ops' backwards on ref (dc_decouple_bwd,
 * dc_homo_stats_bwd, dc_homo_mmd_bwd, dc_task_loss_bwd, dc_supcon_bwd), through the
 * public op API: the forward writes a float loss, the backward (with dloss = 0.7)
 * must add 0.7 * (L(x + e) - L(x - e)) / ((x + e) - (x - e)) into gradient buffers
 * pre-filled with random values. The comparison is the mean absolute error over the
 * tensor relative to the mean absolute finite difference (as tests/test_grad.c).
 * Also: the strided copies by hand, the ops' argument errors, and (when an OpenCL
 * device is present) the device's documented NaN for bad labels.
 * DECOCL_GRAD_VERBOSE=1 prints every comparison. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

/* e = 1e-2 on a float loss: rounding of the loss (~6e-8 relative) contributes ~1e-5
 * of the gradient's scale, truncation O(e^2) about 1e-4. The skew term of the
 * statistics loss curves more (var^-1.5 on 5 samples): e = 3e-3 there. A missing
 * factor, term or sign errs by 1e-1 or more. */
#define FD_EPS 1e-2f
#define FD_EPS_STATS 3e-3f
#define FD_TOL 1e-3
#define DLOSS 0.7f

static int verbose;
static uint64_t rng_state;

static float rng_range(float lo, float hi) { return (float)(lo + (hi - lo) * test_unit_double(&rng_state)); }

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

#define MAX_T 8

/* One loss problem on ref: up to three differentiable inputs x[i] with gradients g[i],
 * fixed inputs (labels, class weights) and the op-specific forward and backward. */
struct problem {
    const char *what;
    struct dc_backend *be;
    struct dc_error err;
    struct dc_mem *mems[MAX_T];
    size_t nmem;
    size_t nin;
    const char *name[3];
    float *h[3], *pre[3];
    dc_view x[3], g[3], loss, labels, class_w;
    size_t B, D; /* rows and row length of every x */
    float fa;    /* bandwidth or temperature */
    float eps;   /* finite-difference step */
    bool classification;
    struct dc_task_loss task;
    dc_status (*fwd)(struct problem *pb);
    dc_status (*bwd)(struct problem *pb, float dloss);
};

#define OK(pb, call)                                                                                 \
    do {                                                                                             \
        dc_status rc_ = (call);                                                                      \
        ck_assert_msg(rc_ == DC_OK, "%s failed: %s (%s)", #call, dc_status_str(rc_), (pb)->err.msg); \
    } while (0)

static dc_view pb_alloc(struct problem *pb, size_t n) {
    ck_assert(pb->nmem < MAX_T);
    struct dc_mem *m;
    OK(pb, dc_mem_alloc(pb->be, n, &m));
    pb->mems[pb->nmem++] = m;
    return dc_view_of(m, 0, n);
}

static void pb_open(struct problem *pb, const char *what, uint64_t seed) {
    memset(pb, 0, sizeof *pb);
    pb->what = what;
    rng_state = seed;
    ck_assert_msg(dc_backend_open_ref(&pb->be, &pb->err) == DC_OK, "ref: %s", pb->err.msg);
    pb->loss = pb_alloc(pb, 1);
    pb->eps = FD_EPS;
}

/* Adds a differentiable input (B, D) filled uniformly in [lo, hi), with its gradient. */
static float *pb_input(struct problem *pb, const char *name, float lo, float hi) {
    size_t i = pb->nin++, n = pb->B * pb->D;
    pb->name[i] = name;
    pb->h[i] = xmalloc(n * sizeof(float));
    pb->pre[i] = xmalloc(n * sizeof(float));
    for (size_t k = 0; k < n; ++k) {
        pb->h[i][k] = rng_range(lo, hi);
        pb->pre[i][k] = rng_range(0.25f, 1.5f) * (k % 2 ? 1.0f : -1.0f);
    }
    pb->x[i] = pb_alloc(pb, n);
    pb->g[i] = pb_alloc(pb, n);
    return pb->h[i];
}

static dc_view pb_fixed(struct problem *pb, const float *h, size_t n) {
    dc_view v = pb_alloc(pb, n);
    OK(pb, dc_upload(pb->be, v, h));
    return v;
}

static void pb_close(struct problem *pb) {
    for (size_t i = 0; i < pb->nin; ++i) free(pb->h[i]), free(pb->pre[i]);
    for (size_t i = 0; i < pb->nmem; ++i) dc_mem_free(pb->be, pb->mems[i]);
    dc_backend_close(pb->be);
}

static double pb_loss(struct problem *pb) {
    OK(pb, pb->fwd(pb));
    float l;
    OK(pb, dc_download(pb->be, &l, pb->loss));
    return l;
}

/* Runs the backward once and checks every input's gradient against finite differences. */
static void pb_check(struct problem *pb) {
    for (size_t i = 0; i < pb->nin; ++i) {
        OK(pb, dc_upload(pb->be, pb->x[i], pb->h[i]));
        OK(pb, dc_upload(pb->be, pb->g[i], pb->pre[i]));
    }
    double l0 = pb_loss(pb);
    ck_assert_msg(isfinite(l0), "%s: loss %g", pb->what, l0);
    OK(pb, pb->bwd(pb, DLOSS));
    size_t n = pb->B * pb->D;
    float *got = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < pb->nin; ++i) {
        OK(pb, dc_download(pb->be, got, pb->g[i]));
        double sum_err = 0.0, sum_fd = 0.0, worst_err = -1.0, worst_an = 0.0, worst_fd = 0.0;
        size_t worst = 0;
        for (size_t k = 0; k < n; ++k) {
            float x0 = pb->h[i][k], xp = x0 + pb->eps, xm = x0 - pb->eps;
            dc_view one = dc_view_of(pb->x[i].mem, pb->x[i].off + k, 1);
            OK(pb, dc_upload(pb->be, one, &xp));
            double lp = pb_loss(pb);
            OK(pb, dc_upload(pb->be, one, &xm));
            double lm = pb_loss(pb);
            OK(pb, dc_upload(pb->be, one, &x0));
            double fd = (lp - lm) / ((double)xp - (double)xm);
            double an = ((double)got[k] - (double)pb->pre[i][k]) / DLOSS;
            double e = fabs(an - fd);
            sum_err += e;
            sum_fd += fabs(fd);
            if (!(e <= worst_err)) worst_err = e, worst = k, worst_an = an, worst_fd = fd;
        }
        double mae = sum_err / (double)n, mfd = sum_fd / (double)n, limit = FD_TOL * mfd + 1e-7;
        if (verbose)
            printf("%-48s d%-3s n %4zu  loss %.4g  mean|fd| %.3e  mae/mean|fd| %.2e\n", pb->what, pb->name[i], n, l0,
                   mfd, mfd > 0.0 ? mae / mfd : mae);
        ck_assert_msg(isfinite(mae) && mae <= limit,
                      "%s: d%s: mean abs error %.3g > %.3g (mean |fd| %.3g); worst [%zu]: analytic %.7g, fd %.7g",
                      pb->what, pb->name[i], mae, limit, mfd, worst, worst_an, worst_fd);
    }
    free(got);
}

/* ---- decoupling ---- */

static dc_status fwd_decouple(struct problem *pb) {
    return dc_decouple_fwd(pb->be, pb->loss, pb->x[0], pb->x[1], pb->B, pb->D);
}
static dc_status bwd_decouple(struct problem *pb, float dloss) {
    return dc_decouple_bwd(pb->be, pb->g[0], pb->g[1], pb->x[0], pb->x[1], pb->B, pb->D, dloss);
}

/* B, L, zero row 1 of s */
static const size_t DECOUPLE_CASES[][3] = {{3, 11, 0}, {1, 4, 0}, {4, 7, 1}};

START_TEST(grad_decouple) {
    const size_t *k = DECOUPLE_CASES[_i];
    struct problem pb;
    char what[64];
    snprintf(what, sizeof what, "decouple B=%zu L=%zu%s", k[0], k[1], k[2] ? " zero row" : "");
    pb_open(&pb, what, 100 + (uint64_t)_i);
    pb.B = k[0], pb.D = k[1], pb.fwd = fwd_decouple, pb.bwd = bwd_decouple;
    float *s = pb_input(&pb, "s", -0.5f, 1.0f);
    pb_input(&pb, "c", -0.5f, 1.0f);
    if (k[2]) memset(s + pb.D, 0, pb.D * sizeof(float));
    pb_check(&pb);
    pb_close(&pb);
}
END_TEST

/* ---- homogeneity ---- */

static dc_status fwd_stats(struct problem *pb) {
    return dc_homo_stats_fwd(pb->be, pb->loss, pb->x[0], pb->x[1], pb->x[2], pb->B, pb->D);
}
static dc_status bwd_stats(struct problem *pb, float dloss) {
    return dc_homo_stats_bwd(pb->be, pb->g[0], pb->g[1], pb->g[2], pb->x[0], pb->x[1], pb->x[2], pb->B, pb->D, dloss);
}
static dc_status fwd_mmd(struct problem *pb) {
    return dc_homo_mmd_fwd(pb->be, pb->loss, pb->x[0], pb->x[1], pb->x[2], pb->B, pb->D, pb->fa);
}
static dc_status bwd_mmd(struct problem *pb, float dloss) {
    return dc_homo_mmd_bwd(pb->be, pb->g[0], pb->g[1], pb->g[2], pb->x[0], pb->x[1], pb->x[2], pb->B, pb->D, pb->fa,
                           dloss);
}

/* B, p, bandwidth x 10, mmd */
static const size_t HOMO_CASES[][4] = {{5, 4, 0, 0},  {1, 3, 0, 0}, {7, 3, 0, 0},
                                       {4, 3, 10, 1}, {3, 5, 5, 1}, {1, 2, 10, 1}};

START_TEST(grad_homo) {
    const size_t *k = HOMO_CASES[_i];
    struct problem pb;
    char what[64];
    snprintf(what, sizeof what, "homo_%s B=%zu p=%zu", k[3] ? "mmd" : "stats", k[0], k[1]);
    pb_open(&pb, what, 200 + (uint64_t)_i);
    pb.B = k[0], pb.D = k[1], pb.fa = (float)k[2] / 10.0f;
    pb.fwd = k[3] ? fwd_mmd : fwd_stats;
    pb.bwd = k[3] ? bwd_mmd : bwd_stats;
    if (!k[3]) pb.eps = FD_EPS_STATS;
    pb_input(&pb, "zl", -1.0f, 1.0f);
    pb_input(&pb, "za", -0.5f, 1.5f);
    pb_input(&pb, "zv", -2.0f, 0.5f);
    pb_check(&pb);
    pb_close(&pb);
}
END_TEST

/* ---- task losses ---- */

static dc_status fwd_task(struct problem *pb) {
    return dc_task_loss_fwd(pb->be, pb->loss, pb->x[0], pb->labels, pb->class_w, pb->B, pb->D, &pb->task);
}
static dc_status bwd_task(struct problem *pb, float dloss) {
    return dc_task_loss_bwd(pb->be, pb->g[0], pb->x[0], pb->labels, pb->class_w, pb->B, pb->D, &pb->task, dloss);
}

struct task_case {
    enum dc_task_loss_kind kind;
    float beta, binary_weight;
    size_t B, O;
    bool weighted;
};
static const struct task_case TASK_CASES[] = {
    {DC_TASK_MSE, 0, 0.5f, 7, 1, false},
    {DC_TASK_L1, 0, 0, 7, 1, false},
    {DC_TASK_SMOOTH_L1, 0.5f, 1.0f, 9, 1, false},
    {DC_TASK_SMOOTH_L1, 0, 0.3f, 5, 1, false},
    {DC_TASK_CE, 0, 0, 5, 3, false},
    {DC_TASK_CE, 0, 0, 6, 4, true},
    {DC_TASK_CE, 0, 0, 1, 2, true},
};

START_TEST(grad_task) {
    const struct task_case *t = &TASK_CASES[_i];
    static const char *const kinds[] = {"mse", "l1", "smooth_l1", "ce"};
    struct problem pb;
    char what[80];
    snprintf(what, sizeof what, "task %s B=%zu O=%zu beta=%g bw=%g%s", kinds[t->kind], t->B, t->O, (double)t->beta,
             (double)t->binary_weight, t->weighted ? " weighted" : "");
    pb_open(&pb, what, 300 + (uint64_t)_i);
    pb.B = t->B, pb.D = t->O, pb.fwd = fwd_task, pb.bwd = bwd_task;
    pb.task = (struct dc_task_loss){.kind = t->kind, .beta = t->beta, .binary_weight = t->binary_weight};
    float *out = pb_input(&pb, "out", -3.0f, 3.0f);
    float labels[16], w[8];
    for (size_t b = 0; b < t->B; ++b) {
        if (t->kind == DC_TASK_CE) {
            labels[b] = (float)(b % t->O);
        } else {
            /* rows 0 and 3 have label 0 (no binary term); every |out - label| >= 0.1,
             * away from the kink of L1 at 0 */
            labels[b] = b % 3 == 0 ? 0.0f : rng_range(-3.0f, 3.0f);
            out[b] = labels[b] + (b % 2 ? 1.0f : -1.0f) * rng_range(0.1f, 1.2f);
        }
    }
    for (size_t c = 0; c < t->O; ++c) w[c] = rng_range(0.5f, 2.0f);
    pb.labels = pb_fixed(&pb, labels, t->B);
    if (t->weighted) pb.class_w = pb_fixed(&pb, w, t->O);
    pb_check(&pb);
    pb_close(&pb);
}
END_TEST

/* ---- supervised contrastive ---- */

static dc_status fwd_supcon(struct problem *pb) {
    return dc_supcon_fwd(pb->be, pb->loss, pb->x[0], pb->labels, pb->B, pb->D, pb->classification, pb->fa);
}
static dc_status bwd_supcon(struct problem *pb, float dloss) {
    return dc_supcon_bwd(pb->be, pb->g[0], pb->x[0], pb->labels, pb->B, pb->D, pb->classification, pb->fa, dloss);
}

/* B, q, classification, temperature x 100 */
static const size_t SUPCON_CASES[][4] = {{6, 5, 1, 50}, {7, 4, 0, 100}, {5, 6, 1, 20}};

START_TEST(grad_supcon) {
    const size_t *k = SUPCON_CASES[_i];
    struct problem pb;
    char what[64];
    snprintf(what, sizeof what, "supcon B=%zu q=%zu %s T=%g", k[0], k[1], k[2] ? "classification" : "regression",
             (double)k[3] / 100.0);
    pb_open(&pb, what, 400 + (uint64_t)_i);
    pb.B = k[0], pb.D = k[1], pb.classification = k[2] != 0, pb.fa = (float)k[3] / 100.0f;
    pb.fwd = fwd_supcon, pb.bwd = bwd_supcon;
    pb_input(&pb, "f", -1.0f, 1.0f);
    /* classification: classes 0, 1, 0, 1, 2, 3, ... (2 and up single members);
     * regression: labels that round to shared and to single classes */
    float labels[16];
    static const float reg[] = {-2.2f, -1.9f, 0.4f, 0.1f, 2.6f, 3.7f, -0.6f};
    for (size_t b = 0; b < pb.B; ++b) labels[b] = pb.classification ? (float)(b < 4 ? b % 2 : b - 2) : reg[b % 7];
    pb.labels = pb_fixed(&pb, labels, pb.B);
    pb_check(&pb);
    pb_close(&pb);
}
END_TEST

/* ---- strided copies by hand; argument errors ---- */

START_TEST(strided_copies_by_hand) {
    struct problem pb;
    pb_open(&pb, "strided", 500);
    enum { ROWS = 3, COLS = 4, LDD = 6, LDS = 5 };
    float src[ROWS * LDS], dst[ROWS * LDD], got[ROWS * LDD];
    for (int i = 0; i < ROWS * LDS; ++i) src[i] = (float)(i + 1);
    for (int i = 0; i < ROWS * LDD; ++i) dst[i] = -(float)(i + 1);
    dc_view s = pb_fixed(&pb, src, ROWS * LDS), d = pb_fixed(&pb, dst, ROWS * LDD);
    OK(&pb, dc_copy2d(pb.be, d, LDD, s, LDS, ROWS, COLS));
    OK(&pb, dc_download(pb.be, got, d));
    for (int r = 0; r < ROWS; ++r)
        for (int c = 0; c < LDD; ++c)
            ck_assert_float_eq(got[r * LDD + c], c < COLS ? src[r * LDS + c] : dst[r * LDD + c]);
    OK(&pb, dc_axpy2d(pb.be, d, LDD, 0.5f, s, LDS, ROWS, COLS));
    float again[ROWS * LDD];
    OK(&pb, dc_download(pb.be, again, d));
    for (int r = 0; r < ROWS; ++r)
        for (int c = 0; c < LDD; ++c)
            ck_assert_float_eq(again[r * LDD + c], c < COLS ? 1.5f * src[r * LDS + c] : dst[r * LDD + c]);
    pb_close(&pb);
}
END_TEST

START_TEST(bad_arguments_are_errors) {
    struct problem pb;
    pb_open(&pb, "args", 600);
    float z[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}, bad_class[2] = {0.0f, 3.0f}, nan_label[2] = {1.0f, NAN};
    dc_view x = pb_fixed(&pb, z, 6), lab = pb_fixed(&pb, bad_class, 2), nanl = pb_fixed(&pb, nan_label, 2);
    struct dc_task_loss ce = {.kind = DC_TASK_CE}, mse = {.kind = DC_TASK_MSE};
    struct dc_task_loss sl1 = {.kind = DC_TASK_SMOOTH_L1, .beta = -1.0f}, unknown = {.kind = (enum dc_task_loss_kind)9};
    ck_assert_int_eq(dc_task_loss_fwd(pb.be, pb.loss, x, lab, (dc_view){0}, 2, 3, &ce), DC_ERR_ARG); /* class 3 of 3 */
    ck_assert_int_eq(dc_task_loss_bwd(pb.be, x, x, lab, (dc_view){0}, 2, 3, &ce, 1.0f), DC_ERR_ARG);
    ck_assert_int_eq(dc_task_loss_fwd(pb.be, pb.loss, x, lab, (dc_view){0}, 2, 3, &mse), DC_ERR_ARG); /* O != 1 */
    ck_assert_int_eq(dc_task_loss_fwd(pb.be, pb.loss, x, lab, (dc_view){0}, 2, 1, &sl1), DC_ERR_ARG);
    ck_assert_int_eq(dc_task_loss_fwd(pb.be, pb.loss, x, lab, (dc_view){0}, 2, 1, &unknown), DC_ERR_ARG);
    ck_assert_int_eq(dc_homo_mmd_fwd(pb.be, pb.loss, x, x, x, 2, 3, 0.0f), DC_ERR_ARG);
    ck_assert_int_eq(dc_homo_mmd_bwd(pb.be, x, x, x, x, x, x, 2, 3, NAN, 1.0f), DC_ERR_ARG);
    ck_assert_int_eq(dc_supcon_fwd(pb.be, pb.loss, x, lab, 2, 3, true, -0.1f), DC_ERR_ARG);
    ck_assert_int_eq(dc_supcon_fwd(pb.be, pb.loss, x, nanl, 2, 3, true, 0.1f), DC_ERR_ARG); /* NaN label */
    ck_assert_int_eq(dc_supcon_bwd(pb.be, x, x, nanl, 2, 3, false, 0.1f, 1.0f), DC_ERR_ARG);
    pb_close(&pb);
}
END_TEST

/* The OpenCL device cannot fail an op on data: bad labels give a NaN loss. */
START_TEST(device_bad_labels_give_nan) {
    struct dc_error err = {0};
    struct dc_backend *be;
    struct dc_backend_options o = test_cl_options();
    ck_assert_msg(dc_backend_open(&be, &o, &err) == DC_OK, "%s", err.msg);
    struct dc_mem *m;
    ck_assert_int_eq(dc_mem_alloc(be, 16, &m), DC_OK);
    float h[16] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, /* out (2, 3) */
                   0.0f, 3.0f,                         /* class ids, 3 out of range */
                   1.0f, NAN};                         /* supcon labels */
    ck_assert_int_eq(dc_upload(be, dc_view_of(m, 0, 16), h), DC_OK);
    dc_view out = dc_view_of(m, 0, 6), ids = dc_view_of(m, 6, 2), lab = dc_view_of(m, 8, 2),
            loss = dc_view_of(m, 12, 1);
    struct dc_task_loss ce = {.kind = DC_TASK_CE};
    float l = 0.0f;
    ck_assert_int_eq(dc_task_loss_fwd(be, loss, out, ids, (dc_view){0}, 2, 3, &ce), DC_OK);
    ck_assert_int_eq(dc_download(be, &l, loss), DC_OK);
    ck_assert_msg(isnan(l), "CE with class id 3 of 3: loss %g, want NaN", (double)l);
    ck_assert_int_eq(dc_supcon_fwd(be, loss, out, lab, 2, 3, true, 0.1f), DC_OK);
    ck_assert_int_eq(dc_download(be, &l, loss), DC_OK);
    ck_assert_msg(isnan(l), "supcon with a NaN label: loss %g, want NaN", (double)l);
    dc_mem_free(be, m);
    dc_backend_close(be);
}
END_TEST

#define NCASES(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(void) {
    const char *v = getenv("DECOCL_GRAD_VERBOSE");
    verbose = v && *v && strcmp(v, "0") != 0;
    Suite *s = suite_create("grad_loss");
    TCase *tc = tcase_create("finite_differences");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, grad_decouple, 0, NCASES(DECOUPLE_CASES));
    tcase_add_loop_test(tc, grad_homo, 0, NCASES(HOMO_CASES));
    tcase_add_loop_test(tc, grad_task, 0, NCASES(TASK_CASES));
    tcase_add_loop_test(tc, grad_supcon, 0, NCASES(SUPCON_CASES));
    suite_add_tcase(s, tc);
    TCase *ta = tcase_create("api");
    tcase_add_test(ta, strided_copies_by_hand);
    tcase_add_test(ta, bad_arguments_are_errors);
    suite_add_tcase(s, ta);
    /* the device check runs only where an OpenCL device exists (ref-only machines skip it) */
    if (test_probe_opencl()) {
        TCase *td = tcase_create("device");
        tcase_set_timeout(td, 300);
        tcase_add_test(td, device_bad_labels_give_nan);
        suite_add_tcase(s, td);
    }
    return test_run_suite(s, 0);
}
