/* decocl train / eval (issue 5 items 2-4): ReduceLROnPlateau and early stopping, a
 * 2-epoch run on ref over a tiny synthetic MOSI-like dataset that writes every file,
 * determinism, multi-seed mean/std, eval reproducing the test metrics, bad keys. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/synth.h"
#include "model/checkpoint.h"
#include "test_util.h"
#include "train/schedule.h"
#include "train/train.h"

#define CONFIG DECOCL_SOURCE_DIR "/configs/mosi.cfg"

static char g_dir[64], g_data[128];
static const char *const g_sets[] = {"num_epochs=2", "nlevels=1", "dst_feature_dim_nheads=16,2", "pde_dim=16",
                                     "batch_size=6"};
#define NSETS (sizeof g_sets / sizeof g_sets[0])

static void setup(void) {
    strcpy(g_dir, "/tmp/dc_train_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    snprintf(g_data, sizeof g_data, "%s/mosi.pkl", g_dir);
    struct dc_synth_options o = {.kind = DC_SYNTH_MOSI, .aligned = -1, .samples = {16, 8, 8}, .seed = 3};
    struct dc_error err = {0};
    struct dc_synth_summary sum;
    ck_assert_msg(dc_synth_write(&o, g_data, &sum, &err) == DC_OK, "%s", err.msg);
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
}

static const struct dc_backend_options g_ref = {.device = "ref"};

static dc_status train(const char *sub, const uint64_t *seeds, size_t nseeds, const char *const *sets, size_t nsets,
                       char *dir, struct dc_error *err) {
    char out[256];
    snprintf(out, sizeof out, "%s/%s", g_dir, sub);
    struct dc_train_options o = {.config = CONFIG, .data = g_data, .sets = sets, .nsets = nsets, .seeds = seeds,
                                 .nseeds = nseeds, .out_dir = out, .backend = &g_ref, .log = NULL};
    return dc_train_run(&o, dir, 256, err);
}

static char *slurp(const char *dir, const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    ck_assert_msg(f != NULL, "missing %s", p);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    return b;
}

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; *s; ++s) n += *s == '\n';
    return n;
}

START_TEST(plateau_and_early_stop) {
    struct dc_plateau p;
    dc_plateau_init(&p, false, 0.1, 2, 1.0);
    ck_assert(!dc_plateau_step(&p, 1.0)); /* best 1.0 */
    ck_assert(!dc_plateau_step(&p, 0.99995)); /* not better by 1e-4 relative: bad 1 */
    ck_assert(!dc_plateau_step(&p, 1.0));     /* bad 2 */
    ck_assert(dc_plateau_step(&p, 1.0));      /* bad 3 > patience 2: reduce */
    ck_assert_double_eq_tol(p.lr, 0.1, 1e-15);
    ck_assert(!dc_plateau_step(&p, 0.5)); /* better */
    ck_assert_uint_eq(p.bad_epochs, 0);
    struct dc_plateau q;
    dc_plateau_init(&q, true, 0.5, 0, 1.0);
    ck_assert(!dc_plateau_step(&q, 0.5));
    ck_assert(dc_plateau_step(&q, 0.5)); /* patience 0: first bad epoch reduces */
    ck_assert_double_eq_tol(q.lr, 0.5, 1e-15);

    struct dc_early_stop e;
    dc_early_stop_init(&e, true, 2);
    ck_assert(dc_early_stop_update(&e, 1, 0.5));
    ck_assert(!dc_early_stop_update(&e, 2, 0.5)); /* strict */
    ck_assert(!dc_early_stop_done(&e, 2));
    ck_assert(!dc_early_stop_update(&e, 3, 0.4));
    ck_assert(dc_early_stop_done(&e, 3));
    ck_assert_uint_eq(e.best_epoch, 1);
    dc_early_stop_init(&e, false, 1);
    ck_assert(dc_early_stop_update(&e, 1, 2.0));
    ck_assert(dc_early_stop_update(&e, 2, 1.5));
    ck_assert(!dc_early_stop_done(&e, 2));
}
END_TEST

START_TEST(train_writes_everything_and_eval_reproduces) {
    struct dc_error err = {0};
    char dir[256];
    ck_assert_msg(train("run", NULL, 0, g_sets, NSETS, dir, &err) == DC_OK, "%s", err.msg);
    char *csv = slurp(dir, "metrics.csv"), *jl = slurp(dir, "metrics.jsonl"), *res = slurp(dir, "results.json");
    ck_assert_uint_eq(count_lines(csv), 3); /* header + 2 epochs */
    ck_assert_ptr_nonnull(strstr(csv, "valid_Acc_2"));
    ck_assert_uint_eq(count_lines(jl), 2);
    char cfgp[512], ckpt[512];
    snprintf(cfgp, sizeof cfgp, "%s/config.cfg", dir);
    struct dc_model_config cfg;
    ck_assert_msg(dc_model_config_load(&cfg, cfgp, &err) == DC_OK, "%s", err.msg);
    ck_assert_uint_eq(cfg.num_epochs, 2);
    ck_assert_uint_eq(cfg.nlevels, 1);
    ck_assert_str_eq(cfg.data, g_data);

    json_error_t je;
    json_t *r = json_loads(res, 0, &je);
    ck_assert_msg(r != NULL, "results.json: %s", je.text);
    ck_assert_str_eq(json_string_value(json_object_get(r, "dataset")), "mosi");
    json_t *runs = json_object_get(r, "runs");
    ck_assert_uint_eq(json_array_size(runs), 1);
    json_t *run0 = json_array_get(runs, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(run0, "seed")), 1111);
    json_int_t be = json_integer_value(json_object_get(run0, "best_epoch"));
    ck_assert(be >= 1 && be <= 2);
    json_t *test = json_object_get(run0, "test");
    ck_assert_uint_eq(json_object_size(test), 8);
    ck_assert(json_equal(json_object_get(r, "mean"), test));

    /* eval on best.safetensors reproduces the test metrics exactly */
    snprintf(ckpt, sizeof ckpt, "%s/seed-1111/best.safetensors", dir);
    struct dc_eval_job *j = calloc(1, sizeof *j);
    ck_assert_msg(dc_eval_job_open(j, ckpt, g_data, &g_ref, &err) == DC_OK, "%s", err.msg);
    struct dc_metrics m;
    float *pred;
    double loss;
    ck_assert_msg(dc_eval_split(&j->mc, j->params, &j->ds->split[DC_SPLIT_TEST], j->ck.cfg.batch_size, j->kind, &pred,
                                &loss, &m, &err) == DC_OK,
                  "%s", err.msg);
    ck_assert_int_eq(m.count, 8);
    for (int i = 0; i < m.count; ++i) {
        json_t *v = json_object_get(test, m.names[i]);
        ck_assert_msg(v != NULL, "results.json lacks %s", m.names[i]);
        ck_assert_msg(json_real_value(v) == m.values[i], "%s: %.10g vs %.10g", m.names[i], json_real_value(v),
                      m.values[i]);
    }
    free(pred);
    dc_eval_job_close(j);
    free(j);
    json_decref(r);
    free(csv);
    free(jl);
    free(res);
}
END_TEST

START_TEST(deterministic_and_multi_seed) {
    struct dc_error err = {0};
    char a[256], b[256], c[256];
    const uint64_t one[] = {1111}, two[] = {1111, 1112};
    ck_assert_msg(train("a", one, 1, g_sets, NSETS, a, &err) == DC_OK, "%s", err.msg);
    ck_assert_msg(train("b", one, 1, g_sets, NSETS, b, &err) == DC_OK, "%s", err.msg);
    char *ra = slurp(a, "results.json"), *rb = slurp(b, "results.json");
    ck_assert_str_eq(ra, rb);
    ck_assert_msg(train("c", two, 2, g_sets, NSETS, c, &err) == DC_OK, "%s", err.msg);
    char *rc = slurp(c, "results.json");
    json_t *ja = json_loads(ra, 0, NULL), *jc = json_loads(rc, 0, NULL);
    json_t *runs = json_object_get(jc, "runs");
    ck_assert_uint_eq(json_array_size(runs), 2);
    ck_assert(json_equal(json_array_get(runs, 0), json_array_get(json_object_get(ja, "runs"), 0)));
    json_t *t0 = json_object_get(json_array_get(runs, 0), "test"), *t1 = json_object_get(json_array_get(runs, 1), "test");
    const char *key;
    json_t *v;
    json_object_foreach(t0, key, v) {
        double x = json_real_value(v), y = json_real_value(json_object_get(t1, key));
        double mean = json_real_value(json_object_get(json_object_get(jc, "mean"), key));
        double sd = json_real_value(json_object_get(json_object_get(jc, "std"), key));
        ck_assert_double_eq_tol(mean, (x + y) / 2, 0.6e-4);
        ck_assert_double_eq_tol(sd, fabs(x - y) / 2, 0.6e-4); /* population std of two values */
    }
    char p[512];
    struct stat sb;
    snprintf(p, sizeof p, "%s/seed-1112/best.safetensors", c);
    ck_assert_int_eq(stat(p, &sb), 0);
    json_decref(ja);
    json_decref(jc);
    free(ra);
    free(rb);
    free(rc);
}
END_TEST

START_TEST(bad_config_key_is_named) {
    struct dc_error err = {0};
    char dir[256];
    const char *sets[] = {"num_epochs=1", "no_such_key=1"};
    ck_assert_int_eq(train("bad", NULL, 0, sets, 2, dir, &err), DC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "no_such_key") != NULL, "%s", err.msg);
    const char *sets2[] = {"num_epochs=1", "selection_metric=Bogus"};
    ck_assert_int_eq(train("bad2", NULL, 0, sets2, 2, dir, &err), DC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "Bogus") != NULL, "%s", err.msg);
}
END_TEST

/* Runs like train() with the stop hook / resume; *interrupted reports a stop. */
static dc_status train_ex(const char *sub, const char *config, const uint64_t *seeds, size_t nseeds, const char *resume,
                          bool *interrupted, char *dir, struct dc_error *err) {
    char out[256];
    snprintf(out, sizeof out, "%s/%s", g_dir, sub);
    struct dc_train_options o = {.config = config, .data = config ? g_data : NULL, .sets = config ? g_sets : NULL,
                                 .nsets = config ? NSETS : 0, .seeds = config ? seeds : NULL,
                                 .nseeds = config ? nseeds : 0, .out_dir = resume ? NULL : out, .backend = &g_ref,
                                 .log = NULL, .resume = resume, .interrupted = interrupted};
    return dc_train_run(&o, dir, 256, err);
}

/* 16 training samples, batch 6: 3 batches per epoch, 2 epochs. Stopped after 4 batches
 * (epoch 2, batch 1) through DECOCL_TRAIN_STOP_AFTER_BATCHES, then resumed: the same
 * results.json as the uninterrupted run; last/optim files load with the right stamps. */
START_TEST(stop_mid_epoch_and_resume) {
    struct dc_error err = {0};
    char full[256], part[256], res[256];
    const uint64_t one[] = {1111};
    bool intr = true;
    ck_assert_msg(train_ex("full", CONFIG, one, 1, NULL, &intr, full, &err) == DC_OK, "%s", err.msg);
    ck_assert(!intr);
    setenv("DECOCL_TRAIN_STOP_AFTER_BATCHES", "4", 1);
    ck_assert_msg(train_ex("part", CONFIG, one, 1, NULL, &intr, part, &err) == DC_OK, "%s", err.msg);
    unsetenv("DECOCL_TRAIN_STOP_AFTER_BATCHES");
    ck_assert(intr);
    char p[512];
    struct stat sb;
    snprintf(p, sizeof p, "%s/results.json", part);
    ck_assert_int_ne(stat(p, &sb), 0); /* no seed finished */
    char *csv = slurp(part, "metrics.csv");
    ck_assert_uint_eq(count_lines(csv), 2); /* header + epoch 1 */
    free(csv);

    /* (c) the checkpoint files load and carry the stop position */
    char cfgp[512];
    snprintf(cfgp, sizeof cfgp, "%s/config.cfg", part);
    struct dc_model_config cfg;
    ck_assert_msg(dc_model_config_load(&cfg, cfgp, &err) == DC_OK, "%s", err.msg);
    struct dc_run_checkpoint ck;
    snprintf(p, sizeof p, "%s/seed-1111/last.safetensors", part);
    ck_assert_msg(dc_run_checkpoint_open(p, &ck, &err) == DC_OK, "%s", err.msg);
    struct dc_model_dims dims;
    struct dc_param_layout pl;
    struct dc_dataset_options dopt;
    dc_train_dataset_options(&ck.cfg, &dopt);
    struct dc_dataset *ds;
    ck_assert_msg(dc_dataset_load(g_data, &dopt, &ds, &err) == DC_OK, "%s", err.msg);
    dc_decalign_dims(&ck.cfg, ds->split[DC_SPLIT_TRAIN].dim, &dims);
    ck_assert_msg(dc_param_layout_init(&pl, &dims, &err) == DC_OK, "%s", err.msg);
    float *buf = calloc(pl.total, sizeof(float));
    ck_assert_msg(dc_checkpoint_gather(&ck.file, p, &pl, "", buf, &err) == DC_OK, "%s", err.msg);
    ck_assert_str_eq(dc_st_meta_get(&ck.file.meta, "step"), "4");
    ck_assert_str_eq(dc_st_meta_get(&ck.file.meta, "epoch"), "1");
    ck_assert_str_eq(dc_st_meta_get(&ck.file.meta, "batch"), "1");
    dc_run_checkpoint_close(&ck);
    struct dc_st_file of;
    snprintf(p, sizeof p, "%s/seed-1111/optim.safetensors", part);
    ck_assert_msg(dc_st_read(p, &of, &err) == DC_OK, "%s", err.msg);
    ck_assert_msg(dc_checkpoint_gather(&of, p, &pl, "exp_avg.", buf, &err) == DC_OK, "%s", err.msg);
    ck_assert_msg(dc_checkpoint_gather(&of, p, &pl, "exp_avg_sq.", buf, &err) == DC_OK, "%s", err.msg);
    ck_assert_str_eq(dc_st_meta_get(&of.meta, "step"), "4");
    ck_assert_ptr_nonnull(dc_st_meta_get(&of.meta, "state"));
    ck_assert_ptr_nonnull(dc_st_meta_get(&of.meta, "lr"));
    dc_st_free(&of);
    free(buf);
    dc_param_layout_free(&pl);
    dc_dataset_free(ds);

    /* a CONFIG that does not resolve to the run's config is refused */
    const char *other[] = {"num_epochs=3"};
    struct dc_train_options bad = {.config = CONFIG, .data = g_data, .sets = other, .nsets = 1, .backend = &g_ref,
                                   .resume = part};
    ck_assert_int_eq(dc_train_run(&bad, res, sizeof res, &err), DC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "config.cfg") != NULL, "%s", err.msg);

    /* (a) resume with the same CONFIG: identical results.json */
    ck_assert_msg(train_ex("x", CONFIG, one, 1, part, &intr, res, &err) == DC_OK, "%s", err.msg);
    ck_assert(!intr);
    ck_assert_str_eq(res, part);
    char *ra = slurp(full, "results.json"), *rb = slurp(part, "results.json");
    ck_assert_str_eq(ra, rb);
    char *ca = slurp(full, "metrics.csv"), *cb = slurp(part, "metrics.csv");
    ck_assert_uint_eq(count_lines(ca), count_lines(cb));
    free(ca);
    free(cb);
    free(ra);
    free(rb);
}
END_TEST

/* Two seeds, stopped in the second seed's first epoch (after 7 batches), resumed without
 * CONFIG (config from the run directory): the same results.json. */
START_TEST(stop_in_second_seed_resume_without_config) {
    struct dc_error err = {0};
    char full[256], part[256], res[256];
    const uint64_t two[] = {1111, 1112};
    bool intr = true;
    ck_assert_msg(train_ex("full2", CONFIG, two, 2, NULL, &intr, full, &err) == DC_OK, "%s", err.msg);
    setenv("DECOCL_TRAIN_STOP_AFTER_BATCHES", "7", 1);
    ck_assert_msg(train_ex("part2", CONFIG, two, 2, NULL, &intr, part, &err) == DC_OK, "%s", err.msg);
    unsetenv("DECOCL_TRAIN_STOP_AFTER_BATCHES");
    ck_assert(intr);
    char *r1 = slurp(part, "results.json");
    json_t *j = json_loads(r1, 0, NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "runs")), 1);
    json_decref(j);
    free(r1);
    ck_assert_msg(train_ex("y", NULL, NULL, 0, part, &intr, res, &err) == DC_OK, "%s", err.msg);
    ck_assert(!intr);
    char *ra = slurp(full, "results.json"), *rb = slurp(part, "results.json");
    ck_assert_str_eq(ra, rb);
    char *ja = slurp(full, "metrics.jsonl"), *jb = slurp(part, "metrics.jsonl");
    ck_assert_uint_eq(count_lines(ja), 4);
    ck_assert_uint_eq(count_lines(jb), 4);
    free(ja);
    free(jb);
    free(ra);
    free(rb);
}
END_TEST

/* Issue 5 item 5: ref and the OpenCL CPU device give the same test metrics to 3
 * decimals after a 2-epoch run (OpenCL state is created in this forked test only). */
START_TEST(ref_and_opencl_agree) {
    struct dc_error err = {0};
    char a[256], b[256], out[256];
    const uint64_t one[] = {1111};
    ck_assert_msg(train("ref", one, 1, g_sets, NSETS, a, &err) == DC_OK, "%s", err.msg);
    struct dc_backend_options cl = test_cl_options();
    snprintf(out, sizeof out, "%s/cl", g_dir);
    struct dc_train_options o = {.config = CONFIG, .data = g_data, .sets = g_sets, .nsets = NSETS, .seeds = one,
                                 .nseeds = 1, .out_dir = out, .backend = &cl};
    ck_assert_msg(dc_train_run(&o, b, sizeof b, &err) == DC_OK, "%s", err.msg);
    char *ra = slurp(a, "results.json"), *rb = slurp(b, "results.json");
    json_t *ja = json_loads(ra, 0, NULL), *jb = json_loads(rb, 0, NULL);
    json_t *ta = json_object_get(json_array_get(json_object_get(ja, "runs"), 0), "test");
    json_t *tb = json_object_get(json_array_get(json_object_get(jb, "runs"), 0), "test");
    ck_assert_uint_eq(json_object_size(ta), json_object_size(tb));
    const char *key;
    json_t *v;
    json_object_foreach(ta, key, v) {
        double x = json_real_value(v), y = json_real_value(json_object_get(tb, key));
        ck_assert_msg(fabs(x - y) <= 1e-3 + 1e-9, "%s: ref %.4f, cl %.4f", key, x, y);
    }
    json_decref(ja);
    json_decref(jb);
    free(ra);
    free(rb);
}
END_TEST

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "cl")) {
        Suite *s = suite_create("train_cl");
        TCase *tc = tcase_create("train_cl");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 300);
        tcase_add_test(tc, ref_and_opencl_agree);
        suite_add_tcase(s, tc);
        return test_run_suite(s, 1);
    }
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("train");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, plateau_and_early_stop);
    tcase_add_test(tc, train_writes_everything_and_eval_reproduces);
    tcase_add_test(tc, deterministic_and_multi_seed);
    tcase_add_test(tc, bad_config_key_is_named);
    tcase_add_test(tc, stop_mid_epoch_and_resume);
    tcase_add_test(tc, stop_in_second_seed_resume_without_config);
    suite_add_tcase(s, tc);
    return test_run_suite(s, 0);
}
