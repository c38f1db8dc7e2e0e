/* ref and OpenCL agree on the whole model (issue 4): for the mosi, sims and iemocap golden
 * configs and input shapes (config.json, and T/D from batch.npz), with RANDOM weights
 * (dc_params_init, fixed seed) and random batches of B = 12 made here, forward + backward
 * on ref and on the OpenCL device of test_cl_options() (OpenCL state created inside each
 * test), compared under the tolerances of ../shared/golden/README.md with ref as the
 * reference:
 *   loss terms:  |cl - ref| <= 1e-4 * max(1, |ref|)
 *   output:      max |cl - ref| <= 1e-4 * max(1, max |ref|)
 *   gradients:   ||g_cl - g_ref|| <= 1e-3 * ||g_ref|| + 1e-7 for every parameter
 * Dropout off, plus one training-mode case (mosi, every dropout on, same seed and step:
 * the masks are bit-identical by design). A failure names the worst tensor.
 *
 * step_counts: the backend counters (dc_backend_stats) over one forward + backward on the
 * mosi config at batch 32: ref's first step and OpenCL's second make the same op calls,
 * reads and writes, and the Adam step (dc_norm2 + dc_adam) adds two launches
 * and no transfer. Set DECOCL_AGREE_STATS=1 to print the numbers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decocl/decocl.h"
#include "golden_dims.h"
#include "model/decalign.h"
#include "test_util.h"

#define AGREE_B 12
#define AGREE_SEED 20240611u

static const char *const AGREE_CASES[] = {"mosi", "sims", "iemocap"};

/* A small deterministic generator (splitmix64) and Box-Muller normals. */
static uint64_t rng_next(uint64_t *s) { return test_splitmix64(s); }
static double rng_unit(uint64_t *s) { return ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0; }
static float rng_normal(uint64_t *s) {
    double u = rng_unit(s), v = rng_unit(s);
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* The config of a golden case and a random batch of its shapes with B rows. */
struct agree_input {
    struct dc_model_config cfg;
    struct dc_decalign_batch batch;
    struct dc_param_layout pl;
    float *params_h;
};

static void input_make(const char *gcase, size_t B, bool train, struct agree_input *in) {
    char path[1024];
    struct dc_error err = {0};
    memset(in, 0, sizeof *in);
    golden_path(path, sizeof path, gcase, "config.json");
    ck_assert_msg(dc_model_config_load(&in->cfg, path, &err) == DC_OK, "%s: %s", gcase, err.msg);
    if (train) {
        in->cfg.text_dropout = 0.2;
        in->cfg.output_dropout = 0.3;
    }
    struct dc_decalign_batch shapes;
    golden_path(path, sizeof path, gcase, "batch.npz");
    ck_assert_msg(dc_decalign_batch_load(path, &shapes, &err) == DC_OK, "%s: %s", gcase, err.msg);
    struct dc_decalign_batch *b = &in->batch;
    b->B = B;
    b->labels_integer = shapes.labels_integer;
    uint64_t s = AGREE_SEED ^ (uint64_t)strlen(gcase) * 0x1234567ull;
    for (int m = 0; m < 3; ++m) {
        b->T[m] = shapes.T[m];
        b->D[m] = shapes.D[m];
        size_t n = B * b->T[m] * b->D[m];
        b->x[m] = malloc(n * sizeof(float));
        ck_assert(b->x[m]);
        for (size_t i = 0; i < n; ++i) b->x[m][i] = rng_normal(&s);
    }
    dc_decalign_batch_free(&shapes);
    b->labels = malloc(B * sizeof(float));
    ck_assert(b->labels);
    size_t C = in->cfg.classification ? in->cfg.num_classes : 0;
    for (size_t i = 0; i < B; ++i)
        b->labels[i] = C ? (float)(rng_next(&s) % C) : (float)(3.0 * (2.0 * rng_unit(&s) - 1.0));

    struct dc_model_dims dims;
    dc_decalign_dims(&in->cfg, b->D, &dims);
    ck_assert_msg(dc_param_layout_init(&in->pl, &dims, &err) == DC_OK, "%s: %s", gcase, err.msg);
    in->params_h = calloc(in->pl.total, sizeof(float));
    ck_assert(in->params_h);
    dc_params_init(&in->pl, in->params_h, AGREE_SEED);
}

static void input_free(struct agree_input *in) {
    free(in->params_h);
    dc_param_layout_free(&in->pl);
    dc_decalign_batch_free(&in->batch);
}

/* One backend's model on an input, with host copies of the results of the last step. */
struct agree_run {
    struct dc_backend *be;
    struct dc_mem *params, *grads;
    struct dc_decalign *model;
    struct dc_decalign_losses loss;
    float *out, *grads_h;
    size_t out_n;
};

static void run_open(struct agree_run *r, const struct agree_input *in, bool cl) {
    struct dc_error err = {0};
    memset(r, 0, sizeof *r);
    if (cl) {
        struct dc_backend_options o = test_cl_options();
        ck_assert_msg(dc_backend_open(&r->be, &o, &err) == DC_OK, "%s", err.msg);
    } else {
        ck_assert_msg(dc_backend_open_ref(&r->be, &err) == DC_OK, "%s", err.msg);
    }
    ck_assert(dc_mem_alloc(r->be, in->pl.total, &r->params) == DC_OK);
    ck_assert(dc_mem_alloc(r->be, in->pl.total, &r->grads) == DC_OK);
    ck_assert(dc_upload(r->be, dc_view_of(r->params, 0, in->pl.total), in->params_h) == DC_OK);
    ck_assert_msg(dc_decalign_create(r->be, &in->cfg, &in->pl, in->batch.B, in->batch.T, &r->model, &err) == DC_OK,
                  "%s", err.msg);
    r->grads_h = calloc(in->pl.total, sizeof(float));
    ck_assert(r->grads_h);
}

/* Zeroes the gradient, then forward + backward (no download). */
static void run_step(struct agree_run *r, const struct agree_input *in, bool train, uint64_t step) {
    struct dc_error err = {0};
    ck_assert(dc_fill(r->be, dc_view_of(r->grads, 0, in->pl.total), 0.0f) == DC_OK);
    const float *const xs[3] = {in->batch.x[0], in->batch.x[1], in->batch.x[2]};
    ck_assert_msg(dc_decalign_forward(r->model, r->params, xs, in->batch.labels, train, 7, step, &r->loss, &err) ==
                      DC_OK,
                  "%s: forward: %s", dc_backend_name(r->be), err.msg);
    ck_assert_msg(dc_decalign_backward(r->model, r->grads, r->params, &err) == DC_OK, "%s: backward: %s",
                  dc_backend_name(r->be), err.msg);
    ck_assert(dc_sync(r->be) == DC_OK);
}

static void run_fetch(struct agree_run *r, const struct agree_input *in) {
    ck_assert(dc_download(r->be, r->grads_h, dc_view_of(r->grads, 0, in->pl.total)) == DC_OK);
    r->out_n = in->batch.B * dc_decalign_out_dim(r->model);
    r->out = malloc(r->out_n * sizeof(float));
    ck_assert(r->out);
    memcpy(r->out, dc_decalign_output(r->model), r->out_n * sizeof(float));
}

static void run_close(struct agree_run *r) {
    dc_decalign_free(r->model);
    dc_mem_free(r->be, r->params);
    dc_mem_free(r->be, r->grads);
    dc_backend_close(r->be);
    free(r->grads_h);
    free(r->out);
}

/* Compares cl against ref under the golden tolerances; the message names the worst tensor. */
static void compare(const char *label, const struct agree_input *in, const struct agree_run *ref,
                    const struct agree_run *cl) {
    const char *names[6] = {"task", "dec", "hete", "homo", "ct", "total"};
    const double a[6] = {ref->loss.task, ref->loss.dec, ref->loss.hete, ref->loss.homo, ref->loss.ct, ref->loss.total};
    const double b[6] = {cl->loss.task, cl->loss.dec, cl->loss.hete, cl->loss.homo, cl->loss.ct, cl->loss.total};
    ck_assert_msg(isfinite(a[5]) && a[5] != 0.0, "%s: ref total loss %.9g", label, a[5]);
    for (size_t k = 0; k < 6; ++k)
        ck_assert_msg(fabs(b[k] - a[k]) <= 1e-4 * fmax(1.0, fabs(a[k])),
                      "%s: loss %s: cl %.9g, ref %.9g (|diff| %.3g > tolerance %.3g)", label, names[k], b[k], a[k],
                      fabs(b[k] - a[k]), 1e-4 * fmax(1.0, fabs(a[k])));

    ck_assert_uint_eq(ref->out_n, cl->out_n);
    double maxref = 0, maxdiff = 0;
    size_t worst_i = 0;
    for (size_t i = 0; i < ref->out_n; ++i) {
        double d = fabs((double)cl->out[i] - ref->out[i]);
        maxref = fmax(maxref, fabs(ref->out[i]));
        if (d > maxdiff || isnan(d)) maxdiff = d, worst_i = i;
    }
    ck_assert_msg(maxdiff <= 1e-4 * fmax(1.0, maxref), "%s: output[%zu] cl %.9g ref %.9g (|diff| %.3g > %.3g)", label,
                  worst_i, (double)cl->out[worst_i], (double)ref->out[worst_i], maxdiff, 1e-4 * fmax(1.0, maxref));

    double worst = -1, worst_diff = 0, worst_norm = 0, total = 0;
    const char *worst_name = "";
    for (size_t i = 0; i < in->pl.count; ++i) {
        const struct dc_param_desc *dsc = &in->pl.desc[i];
        double dd = 0, nn = 0;
        for (size_t j = 0; j < dsc->numel; ++j) {
            double x = cl->grads_h[dsc->offset + j], y = ref->grads_h[dsc->offset + j];
            dd += (x - y) * (x - y);
            nn += y * y;
        }
        total += nn;
        dd = sqrt(dd);
        nn = sqrt(nn);
        double ratio = dd / (1e-3 * nn + 1e-7);
        if (ratio > worst || isnan(ratio)) worst = ratio, worst_name = dsc->name, worst_diff = dd, worst_norm = nn;
    }
    ck_assert_msg(total > 0, "%s: the ref gradient is all zero", label);
    ck_assert_msg(worst <= 1.0, "%s: gradient of %s: ||cl - ref|| %.3g, ||ref|| %.3g (%.3g of the tolerance)", label,
                  worst_name, worst_diff, worst_norm, worst);
    if (getenv("DECOCL_AGREE_STATS"))
        fprintf(stderr, "agree %s: worst gradient %s at %.3g of the tolerance; output |diff| %.3g\n", label,
                worst_name, worst, maxdiff);
}

static void agree_case(const char *gcase, bool train) {
    char label[64];
    snprintf(label, sizeof label, "%s%s", gcase, train ? " (training)" : "");
    struct agree_input in;
    input_make(gcase, AGREE_B, train, &in);
    struct agree_run ref, cl;
    run_open(&ref, &in, false);
    run_step(&ref, &in, train, 3);
    run_fetch(&ref, &in);
    run_open(&cl, &in, true);
    run_step(&cl, &in, train, 3);
    run_fetch(&cl, &in);
    compare(label, &in, &ref, &cl);
    run_close(&cl);
    run_close(&ref);
    input_free(&in);
}

START_TEST(agree_eval) { agree_case(AGREE_CASES[_i], false); }
END_TEST

START_TEST(agree_training) { agree_case("mosi", true); }
END_TEST

static struct dc_backend_stats stats_diff(const struct dc_backend_stats *a, const struct dc_backend_stats *b) {
    return (struct dc_backend_stats){.ops = b->ops - a->ops,
                                     .launches = b->launches - a->launches,
                                     .reads = b->reads - a->reads,
                                     .read_bytes = b->read_bytes - a->read_bytes,
                                     .writes = b->writes - a->writes,
                                     .write_bytes = b->write_bytes - a->write_bytes};
}

/* The counters over one step of a backend: ref's first, OpenCL's second (its first may
 * include one-off work such as the GEMM provider measurement). */
static void step_stats(const struct agree_input *in, bool cl, struct dc_backend_stats *step,
                       struct dc_backend_stats *adam) {
    struct agree_run r;
    run_open(&r, in, cl);
    struct dc_backend_stats s0, s1;
    if (cl) run_step(&r, in, false, 1); /* warm-up: the GEMM provider measurement, if any */
    dc_backend_stats_get(r.be, &s0);
    run_step(&r, in, false, 2);
    dc_backend_stats_get(r.be, &s1);
    *step = stats_diff(&s0, &s1);

    /* the Adam step after it */
    size_t n = in->pl.total;
    struct dc_mem *m = NULL, *v = NULL, *norm = NULL;
    ck_assert(dc_mem_alloc(r.be, n, &m) == DC_OK && dc_mem_alloc(r.be, n, &v) == DC_OK);
    ck_assert(dc_mem_alloc(r.be, 1, &norm) == DC_OK);
    ck_assert(dc_fill(r.be, dc_view_of(m, 0, n), 0.0f) == DC_OK && dc_fill(r.be, dc_view_of(v, 0, n), 0.0f) == DC_OK);
    struct dc_adam a = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0, .clip = 1.0f,
                        .step = 1};
    dc_backend_stats_get(r.be, &s0);
    dc_view gv = dc_view_of(r.grads, 0, n), nv = dc_view_of(norm, 0, 1);
    ck_assert(dc_norm2(r.be, nv, gv, n) == DC_OK);
    ck_assert(dc_adam(r.be, dc_view_of(r.params, 0, n), dc_view_of(m, 0, n), dc_view_of(v, 0, n), gv, nv,
                      (dc_view){0}, n, &a) == DC_OK);
    ck_assert(dc_sync(r.be) == DC_OK);
    dc_backend_stats_get(r.be, &s1);
    *adam = stats_diff(&s0, &s1);
    dc_mem_free(r.be, m);
    dc_mem_free(r.be, v);
    dc_mem_free(r.be, norm);
    run_close(&r);
}

static void stats_print(const char *what, const struct dc_backend_stats *s) {
    fprintf(stderr,
            "%s: %llu ops, %llu launches, %llu reads (%llu bytes), %llu writes (%llu bytes)\n", what,
            (unsigned long long)s->ops, (unsigned long long)s->launches, (unsigned long long)s->reads,
            (unsigned long long)s->read_bytes, (unsigned long long)s->writes, (unsigned long long)s->write_bytes);
}

START_TEST(step_counts) {
    struct agree_input in;
    input_make("mosi", 32, false, &in);
    struct dc_backend_stats ref_step, ref_adam, cl_step, cl_adam;
    step_stats(&in, false, &ref_step, &ref_adam);
    step_stats(&in, true, &cl_step, &cl_adam);
    if (getenv("DECOCL_AGREE_STATS")) {
        stats_print("mosi B=32 ref step", &ref_step);
        stats_print("mosi B=32 ref adam", &ref_adam);
        stats_print("mosi B=32 cl step", &cl_step);
        stats_print("mosi B=32 cl adam", &cl_adam);
    }
    /* the same model code issues the same ops and transfers on both backends */
    ck_assert_msg(ref_step.ops == cl_step.ops && ref_step.reads == cl_step.reads &&
                      ref_step.read_bytes == cl_step.read_bytes && ref_step.writes == cl_step.writes &&
                      ref_step.write_bytes == cl_step.write_bytes,
                  "ref and cl steps differ: ops %llu/%llu reads %llu/%llu writes %llu/%llu",
                  (unsigned long long)ref_step.ops, (unsigned long long)cl_step.ops,
                  (unsigned long long)ref_step.reads, (unsigned long long)cl_step.reads,
                  (unsigned long long)ref_step.writes, (unsigned long long)cl_step.writes);
    ck_assert(ref_step.launches == ref_step.ops);
    ck_assert(cl_step.launches > 0 && cl_step.reads > 0 && cl_step.writes > 0);
    /* Adam: dc_norm2 + dc_adam, two launches, nothing crosses to the host */
    ck_assert_uint_eq(cl_adam.ops, 2);
    ck_assert_uint_eq(cl_adam.launches, 2);
    ck_assert_uint_eq(cl_adam.reads + cl_adam.writes, 0);
    ck_assert_uint_eq(ref_adam.launches, 2);
    input_free(&in);
}
END_TEST

static Suite *agree_suite(void) {
    Suite *s = suite_create("model_agree");
    TCase *tc = tcase_create("agree");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, agree_eval, 0, (int)(sizeof AGREE_CASES / sizeof AGREE_CASES[0]));
    tcase_add_test(tc, agree_training);
    tcase_add_test(tc, step_counts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(agree_suite(), 1); }
