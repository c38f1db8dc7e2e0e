/* Golden parity of the whole model on the ref backend (issue 4 item 5): for every case of
 * ../shared/golden, forward + backward with dropout disabled, compared with the authors'
 * PyTorch numbers under the tolerances of shared/golden/README.md:
 *   loss terms:  |ours - ref| <= 1e-4 * max(1, |ref|)
 *   output:      max |ours - ref| <= 1e-4 * max(1, max |ref|)
 *   gradients:   ||g - g_ref|| <= 1e-3 * ||g_ref|| + 1e-7 for every parameter
 * (grad_norm is held to the gradient tolerance, 1e-3 relative). A failure names the worst
 * tensor by its PyTorch name. Also: config parsing, the active flags, the batch reader. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decocl/decocl.h"
#include "golden_dims.h"
#include "model/checkpoint.h"
#include "model/decalign.h"
#include "test_util.h"

/* The backend under test: ref, or DECOCL_GOLDEN_DEVICE (e.g. cpu) through OpenCL. */
static const char *golden_device(void) {
    const char *d = getenv("DECOCL_GOLDEN_DEVICE");
    return d && *d ? d : "ref";
}

static dc_status open_backend(struct dc_backend **be, struct dc_error *err) {
    struct dc_backend_options o = test_cl_options();
    o.device = golden_device();
    return dc_backend_open(be, &o, err);
}

struct run {
    struct dc_model_config cfg;
    struct dc_decalign_batch batch;
    struct dc_param_layout pl;
    struct dc_backend *be;
    struct dc_mem *params, *grads, *norm;
    struct dc_decalign *model;
    struct dc_decalign_losses loss;
    float *grads_h;
    float grad_norm;
};

/* Loads a golden case and runs forward + backward; with train set, every dropout of the
 * config (overridden: text and output dropout 0.2 / 0.3) is on, with seed 7 and step train. */
static void run_case_ex(const char *gcase, struct run *r, uint64_t train) {
    char path[1024], path2[1024];
    struct dc_error err = {0};
    memset(r, 0, sizeof *r);
    golden_path(path, sizeof path, gcase, "config.json");
    ck_assert_msg(dc_model_config_load(&r->cfg, path, &err) == DC_OK, "%s: %s", gcase, err.msg);
    if (train) {
        r->cfg.text_dropout = 0.2;
        r->cfg.output_dropout = 0.3;
    }
    golden_path(path, sizeof path, gcase, "batch.npz");
    ck_assert_msg(dc_decalign_batch_load(path, &r->batch, &err) == DC_OK, "%s: %s", gcase, err.msg);
    struct dc_model_dims dims;
    dc_decalign_dims(&r->cfg, r->batch.D, &dims);
    ck_assert_msg(dc_param_layout_init(&r->pl, &dims, &err) == DC_OK, "%s: %s", gcase, err.msg);
    float *params_h = calloc(r->pl.total, sizeof(float));
    r->grads_h = calloc(r->pl.total, sizeof(float));
    ck_assert(params_h && r->grads_h);
    golden_path(path2, sizeof path2, gcase, "weights.safetensors");
    ck_assert_msg(dc_checkpoint_load(path2, &r->pl, params_h, NULL, &err) == DC_OK, "%s: %s", gcase, err.msg);
    ck_assert_msg(open_backend(&r->be, &err) == DC_OK, "%s", err.msg);
    ck_assert(dc_mem_alloc(r->be, r->pl.total, &r->params) == DC_OK);
    ck_assert(dc_mem_alloc(r->be, r->pl.total, &r->grads) == DC_OK);
    ck_assert(dc_mem_alloc(r->be, 1, &r->norm) == DC_OK);
    dc_view gv = dc_view_of(r->grads, 0, r->pl.total);
    ck_assert(dc_upload(r->be, dc_view_of(r->params, 0, r->pl.total), params_h) == DC_OK);
    ck_assert(dc_fill(r->be, gv, 0.0f) == DC_OK);
    free(params_h);
    ck_assert_msg(dc_decalign_create(r->be, &r->cfg, &r->pl, r->batch.B, r->batch.T, &r->model, &err) == DC_OK,
                  "%s: %s", gcase, err.msg);
    const float *const xs[3] = {r->batch.x[0], r->batch.x[1], r->batch.x[2]};
    ck_assert_msg(dc_decalign_forward(r->model, r->params, xs, r->batch.labels, train != 0, 7, train, &r->loss,
                                      &err) == DC_OK,
                  "%s: %s", gcase, err.msg);
    ck_assert_msg(dc_decalign_backward(r->model, r->grads, r->params, &err) == DC_OK, "%s: %s", gcase, err.msg);
    ck_assert(dc_norm2(r->be, dc_view_of(r->norm, 0, 1), gv, r->pl.total) == DC_OK);
    ck_assert(dc_download(r->be, &r->grad_norm, dc_view_of(r->norm, 0, 1)) == DC_OK);
    ck_assert(dc_download(r->be, r->grads_h, gv) == DC_OK);
}

static void run_case(const char *gcase, struct run *r) { run_case_ex(gcase, r, 0); }

static void run_free(struct run *r) {
    dc_decalign_free(r->model);
    dc_mem_free(r->be, r->params);
    dc_mem_free(r->be, r->grads);
    dc_mem_free(r->be, r->norm);
    dc_backend_close(r->be);
    free(r->grads_h);
    dc_param_layout_free(&r->pl);
    dc_decalign_batch_free(&r->batch);
}

START_TEST(golden_ref) {
    const char *gcase = GOLDEN_CASES[_i];
    struct run r;
    run_case(gcase, &r);
    char path[1024];
    struct dc_error err = {0};
    json_error_t jerr;
    golden_path(path, sizeof path, gcase, "expected.json");
    json_t *ex = json_load_file(path, 0, &jerr);
    ck_assert_msg(ex, "%s: %s", path, jerr.text);

    /* loss terms */
    const char *names[6] = {"task", "dec", "hete", "homo", "ct", "total"};
    const double ours[6] = {r.loss.task, r.loss.dec, r.loss.hete, r.loss.homo, r.loss.ct, r.loss.total};
    json_t *lj = json_object_get(ex, "loss");
    for (size_t k = 0; k < 6; ++k) {
        json_t *v = json_object_get(lj, names[k]);
        ck_assert_msg(json_is_number(v), "%s: expected.json has no loss.%s", gcase, names[k]);
        double ref = json_number_value(v);
        ck_assert_msg(fabs(ours[k] - ref) <= 1e-4 * fmax(1.0, fabs(ref)), "%s: loss %s = %.9g, reference %.9g",
                      gcase, names[k], ours[k], ref);
    }

    /* output */
    json_t *oj = json_object_get(ex, "output");
    const float *out = dc_decalign_output(r.model);
    size_t B = r.batch.B, O = dc_decalign_out_dim(r.model);
    ck_assert_msg(json_array_size(oj) == B, "%s: output rows", gcase);
    double maxref = 0, maxdiff = 0;
    size_t worst_b = 0, worst_k = 0;
    for (size_t b = 0; b < B; ++b) {
        json_t *row = json_array_get(oj, b);
        ck_assert_msg(json_array_size(row) == O, "%s: output row %zu has %zu values, ours %zu", gcase, b,
                      json_array_size(row), O);
        for (size_t k = 0; k < O; ++k) {
            double ref = json_number_value(json_array_get(row, k)), diff = fabs(out[b * O + k] - ref);
            maxref = fmax(maxref, fabs(ref));
            if (diff > maxdiff || isnan(diff)) maxdiff = diff, worst_b = b, worst_k = k;
        }
    }
    ck_assert_msg(maxdiff <= 1e-4 * fmax(1.0, maxref), "%s: output[%zu][%zu] differs by %.3g (tolerance %.3g)",
                  gcase, worst_b, worst_k, maxdiff, 1e-4 * fmax(1.0, maxref));

    /* grad_norm */
    double gn_ref = json_number_value(json_object_get(ex, "grad_norm"));
    ck_assert_msg(fabs(r.grad_norm - gn_ref) <= 1e-3 * gn_ref + 1e-7, "%s: grad_norm %.9g, reference %.9g", gcase,
                  (double)r.grad_norm, gn_ref);

    /* every parameter gradient, gathered from grads.safetensors into our layout */
    golden_path(path, sizeof path, gcase, "grads.safetensors");
    struct dc_st_file f;
    ck_assert_msg(dc_st_read(path, &f, &err) == DC_OK, "%s", err.msg);
    float *gref = calloc(r.pl.total, sizeof(float));
    ck_assert(gref);
    ck_assert_msg(dc_checkpoint_gather(&f, path, &r.pl, "grad.", gref, &err) == DC_OK, "%s", err.msg);
    const struct dc_st_tensor *to = dc_st_find(&f, "output");
    ck_assert_msg(to && to->numel == B * O, "%s: grads.safetensors output", gcase);
    double worst = -1, worst_diff = 0, worst_norm = 0;
    const char *worst_name = "";
    for (size_t i = 0; i < r.pl.count; ++i) {
        const struct dc_param_desc *dsc = &r.pl.desc[i];
        double dd = 0, nn = 0;
        for (size_t j = 0; j < dsc->numel; ++j) {
            double a = r.grads_h[dsc->offset + j], b = gref[dsc->offset + j];
            dd += (a - b) * (a - b);
            nn += b * b;
        }
        dd = sqrt(dd);
        nn = sqrt(nn);
        double ratio = dd / (1e-3 * nn + 1e-7);
        if (ratio > worst || isnan(ratio)) worst = ratio, worst_name = dsc->name, worst_diff = dd, worst_norm = nn;
    }
    fprintf(stderr, "golden %s: worst gradient %s at %.3g of the tolerance\n", gcase, worst_name, worst);
    ck_assert_msg(worst <= 1.0, "%s: gradient of %s off by %.3g (||ref|| %.3g; tolerance %.3g)", gcase, worst_name,
                  worst_diff, worst_norm, 1e-3 * worst_norm + 1e-7);
    free(gref);
    dc_st_free(&f);
    json_decref(ex);
    run_free(&r);
}
END_TEST

/* The skipped projection (edge and soft: D_v == d) takes no part: zero gradient and
 * inactive for Adam; everything else is active. */
START_TEST(active_flags) {
    const char *cases[2] = {"edge", "soft"};
    for (size_t c = 0; c < 2; ++c) {
        struct run r;
        run_case(cases[c], &r);
        bool *act = malloc(r.pl.count * sizeof(bool));
        ck_assert(act);
        dc_decalign_active(r.model, act);
        for (size_t i = 0; i < r.pl.count; ++i) {
            bool skipped = strcmp(r.pl.desc[i].name, "proj_v.weight") == 0;
            ck_assert_msg(act[i] == !skipped, "%s: %s active = %d", cases[c], r.pl.desc[i].name, act[i]);
            if (skipped)
                for (size_t j = 0; j < r.pl.desc[i].numel; ++j)
                    ck_assert_float_eq(r.grads_h[r.pl.desc[i].offset + j], 0.0f);
        }
        free(act);
        run_free(&r);
    }
}
END_TEST

/* Training mode: dropout changes the numbers, reproducibly for a (seed, step), and the
 * backward runs through every dropout site. */
START_TEST(training_dropout) {
    struct run eval, a, b, c;
    run_case("soft", &eval);
    run_case_ex("soft", &a, 1);
    run_case_ex("soft", &b, 1);
    run_case_ex("soft", &c, 2);
    ck_assert(isfinite(a.loss.total) && isfinite(a.grad_norm) && a.grad_norm > 0);
    ck_assert(a.loss.total == b.loss.total && a.grad_norm == b.grad_norm);
    ck_assert(memcmp(a.grads_h, b.grads_h, a.pl.total * sizeof(float)) == 0);
    ck_assert(a.loss.total != eval.loss.total && a.loss.total != c.loss.total);
    run_free(&eval);
    run_free(&a);
    run_free(&b);
    run_free(&c);
}
END_TEST

static dc_status parse(const char *text, struct dc_model_config *c, struct dc_error *err) {
    return dc_model_config_parse_json(c, text, strlen(text), "test.json", err);
}

START_TEST(config_keys) {
    struct dc_model_config c;
    struct dc_error err = {0};
    /* defaults: the reference's */
    ck_assert_int_eq(parse("{}", &c, &err), DC_OK);
    ck_assert_int_eq(c.task_loss, DC_CFG_TASK_LOSS_L1);
    ck_assert(c.binary_task_weight == 0 && !c.hetero_sum && !c.local_proto_mahalanobis);
    ck_assert(c.use_cross_modal_attention && c.active[0] && c.active[1] && c.active[2]);
    ck_assert(c.gmm_em_iters == 5 && c.gmm_var_floor == 1e-4 && c.ot_num_iters == 50);
    /* unknown keys name themselves */
    ck_assert_int_eq(parse("{\"nlevels\": 2, \"bogus_key\": 1}", &c, &err), DC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "bogus_key"), "%s", err.msg);
    /* ignored keys are accepted and recorded */
    ck_assert_int_eq(parse("{\"use_bert\": false, \"alpha1\": 0.1}", &c, &err), DC_OK);
    ck_assert_uint_eq(c.nignored, 2);
    ck_assert_str_eq(c.ignored[0], "use_bert");
    /* values */
    ck_assert_int_eq(parse("{\"task_loss\": \"huber\", \"hetero_cost_reduction\": \"sum\", \"active_modalities\": "
                           "[\"text\", \"vision\"], \"patience\": 7, \"scheduler_patience\": 3}",
                           &c, &err),
                     DC_OK);
    ck_assert_int_eq(c.task_loss, DC_CFG_TASK_LOSS_SMOOTH_L1);
    ck_assert(c.hetero_sum && c.active[0] && !c.active[1] && c.active[2]);
    ck_assert_uint_eq(c.early_stop_patience, 7);
    ck_assert_uint_eq(c.scheduler_patience, 3);
    ck_assert_int_eq(parse("{\"task_loss\": \"hinge\"}", &c, &err), DC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "task_loss"), "%s", err.msg);
    ck_assert_int_eq(parse("{\"dst_feature_dim_nheads\": [30, 4]}", &c, &err), DC_ERR_ARG);
    ck_assert_int_eq(parse("{\"train_mode\": \"classification\", \"num_classes\": 3, \"class_weights\": [1, 2]}",
                           &c, &err),
                     DC_ERR_ARG);
    ck_assert_int_eq(parse("{\"train_mode\": \"classification\", \"num_classes\": 2, \"class_weights\": [1, 2]}",
                           &c, &err),
                     DC_OK);
    ck_assert(c.class_weight == DC_CFG_CLASS_WEIGHT_EXPLICIT && c.class_weights[1] == 2.0f);
    ck_assert_int_eq(parse("[1]", &c, &err), DC_ERR_FORMAT);
    ck_assert_int_eq(parse("{\"nlevels\": 1, \"nlevels\": 2}", &c, &err), DC_ERR_FORMAT);
    /* .cfg configs load too; a missing file names its path */
    ck_assert_int_ne(dc_model_config_load(&c, "/nonexistent/mosi.cfg", &err), DC_OK);
    ck_assert_msg(strstr(err.msg, "/nonexistent/mosi.cfg"), "%s", err.msg);
    ck_assert_msg(dc_model_config_load(&c, DECOCL_SOURCE_DIR "/configs/mosi.cfg", &err) == DC_OK, "%s", err.msg);
    /* every golden config parses */
    for (size_t i = 0; i < GOLDEN_NCASES; ++i) {
        char path[1024];
        golden_path(path, sizeof path, GOLDEN_CASES[i], "config.json");
        ck_assert_msg(dc_model_config_load(&c, path, &err) == DC_OK, "%s", err.msg);
    }
}
END_TEST

START_TEST(batch_reader) {
    struct dc_decalign_batch b;
    struct dc_error err = {0};
    char path[1024];
    golden_path(path, sizeof path, "iemocap", "batch.npz");
    ck_assert_msg(dc_decalign_batch_load(path, &b, &err) == DC_OK, "%s", err.msg);
    ck_assert_uint_eq(b.B, 16);
    ck_assert(b.labels_integer);
    ck_assert_uint_eq(b.D[1], 512);
    dc_decalign_batch_free(&b);
    golden_path(path, sizeof path, "mosi", "weights.safetensors");
    ck_assert_int_ne(dc_decalign_batch_load(path, &b, &err), DC_OK);
    ck_assert_int_ne(dc_decalign_batch_load("/nonexistent.npz", &b, &err), DC_OK);
}
END_TEST

static Suite *golden_suite(void) {
    Suite *s = suite_create("model_golden");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 1200);
    tcase_add_loop_test(tc, golden_ref, 0, (int)GOLDEN_NCASES);
    tcase_add_test(tc, active_flags);
    tcase_add_test(tc, training_dropout);
    tcase_add_test(tc, config_keys);
    tcase_add_test(tc, batch_reader);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(golden_suite(), strcmp(golden_device(), "ref") != 0); }
