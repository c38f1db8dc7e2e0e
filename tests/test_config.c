/* Configs (issue 5 item 1): configs/<kind>.cfg give the spec §9 values; .cfg and JSON agree;
 * errors name file, line and key; ignored keys; --set; patience fallback; round trip. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model_config.h"
#include "test_util.h"

#define CFG_DIR DECOCL_SOURCE_DIR "/configs/"

static void load_ok(const char *path, const char *const *sets, size_t n, struct dc_model_config *c) {
    struct dc_error err = {0};
    ck_assert_msg(dc_model_config_read(c, path, sets, n, &err) == DC_OK, "%s: %s", path, err.msg);
}

static dc_status cfg_text(const char *text, struct dc_model_config *c, struct dc_error *err) {
    return dc_model_config_parse_cfg(c, text, strlen(text), "t.cfg", err);
}

static char *json_of(const struct dc_model_config *c) {
    char *s = NULL;
    struct dc_error err = {0};
    ck_assert_msg(dc_model_config_to_json(c, &s, &err) == DC_OK, "%s", err.msg);
    return s;
}

static void assert_same(const struct dc_model_config *a, const struct dc_model_config *b) {
    char *ja = json_of(a), *jb = json_of(b);
    ck_assert_str_eq(ja, jb);
    free(ja);
    free(jb);
}


START_TEST(configs_have_spec_values) {
    struct dc_model_config c;
    load_ok(CFG_DIR "mosi.cfg", NULL, 0, &c);
    ck_assert(c.d_model == 64 && c.heads == 8 && c.nlevels == 5);
    ck_assert(c.kernel[0] == 1 && c.kernel[1] == 1 && c.kernel[2] == 1 && c.num_prototypes == 7);
    ck_assert(c.gmm_em_iters == 5 && c.gmm_var_floor == 1e-4 && c.lambda_ot == 0.1 && c.ot_num_iters == 50);
    ck_assert(c.pde_dim == 64 && c.mmd_bandwidth == 1.0 && c.alpha == 0.05 && c.beta == 0.07);
    ck_assert(c.ct_weight == 0.003 && c.ct_temperature == 0.1 && c.binary_task_weight == 0);
    ck_assert(!c.classification && c.task_loss == DC_CFG_TASK_LOSS_MSE);
    ck_assert(c.batch_size == 32 && c.learning_rate == 6e-5 && c.weight_decay == 0.005);
    ck_assert(c.num_epochs == 18 && c.early_stop_patience == 6 && c.scheduler_patience == 5);
    ck_assert(c.clip == 0.6 && c.factor == 0.1);
    ck_assert(c.attn_dropout == 0.1 && c.attn_dropout_a == 0 && c.attn_dropout_v == 0 && c.relu_dropout == 0.1 &&
              c.embed_dropout == 0.1 && c.res_dropout == 0.05 && c.output_dropout == 0 && c.text_dropout == 0);
    ck_assert_str_eq(c.selection_metric, "MOSI");
    ck_assert_str_eq(c.selection_mode, "min");
    ck_assert(!c.need_feature_standardized);
    ck_assert_str_eq(c.data, "datasets/synth/mosi.pkl");
    ck_assert_str_eq(c.dataset_name, "mosi");
    ck_assert(c.nseeds == 1 && c.seeds[0] == 1111 && c.nignored == 0);

    load_ok(CFG_DIR "mosei.cfg", NULL, 0, &c);
    ck_assert(c.d_model == 64 && c.heads == 8 && c.nlevels == 4 && c.kernel[0] == 5 && c.kernel[2] == 5);
    ck_assert(c.num_prototypes == 7 && c.pde_dim == 64 && c.alpha == 0.005 && c.beta == 0.0);
    ck_assert(c.ct_weight == 0.001 && c.ct_temperature == 0.1 && c.task_loss == DC_CFG_TASK_LOSS_MSE);
    ck_assert(c.batch_size == 128 && c.learning_rate == 5e-5 && c.weight_decay == 0.005);
    ck_assert(c.num_epochs == 16 && c.early_stop_patience == 5 && c.scheduler_patience == 5 && c.clip == 0.6);
    ck_assert(c.attn_dropout == 0.125 && c.attn_dropout_a == 0.125 && c.attn_dropout_v == 0.125 &&
              c.relu_dropout == 0.125 && c.embed_dropout == 0.125 && c.res_dropout == 0.125 &&
              c.output_dropout == 0.125 && c.text_dropout == 0.125);
    ck_assert_str_eq(c.selection_metric, "Acc_2");
    ck_assert_str_eq(c.selection_mode, "max");
    ck_assert(c.need_feature_standardized && !c.feature_standardize_modalities[0] &&
              c.feature_standardize_modalities[1] && c.feature_standardize_modalities[2]);
    ck_assert(c.feature_clip_percentiles[0] == 0.5 && c.feature_clip_percentiles[1] == 99.5);
    ck_assert(c.feature_dims[1] == 74 && c.seq_lens[0] == 50);

    load_ok(CFG_DIR "sims.cfg", NULL, 0, &c);
    ck_assert(c.d_model == 32 && c.heads == 8 && c.nlevels == 4 && c.kernel[1] == 5 && c.pde_dim == 32);
    ck_assert(c.alpha == 0.0175 && c.beta == 0.0525 && c.ct_weight == 0.01 && c.ct_temperature == 0.07);
    ck_assert(c.binary_task_weight == 0.01 && c.task_loss == DC_CFG_TASK_LOSS_MSE);
    ck_assert(c.batch_size == 24 && c.learning_rate == 3.5e-5 && c.weight_decay == 0.005);
    ck_assert(c.num_epochs == 55 && c.early_stop_patience == 11 && c.scheduler_patience == 5);
    ck_assert(c.clip == 0.5 && c.factor == 0.1);
    ck_assert(c.attn_dropout == 0.4 && c.attn_dropout_a == 0.3 && c.attn_dropout_v == 0.1 && c.relu_dropout == 0.1 &&
              c.embed_dropout == 0.3 && c.res_dropout == 0.1 && c.output_dropout == 0.35 && c.text_dropout == 0.25);
    ck_assert_str_eq(c.selection_metric, "F1_score");
    ck_assert(c.need_feature_standardized && c.feature_clip_percentiles[0] == 0.1 &&
              c.feature_clip_percentiles[1] == 99.9);
    ck_assert(c.seq_lens[1] == 400 && c.feature_dims[2] == 709);

    load_ok(CFG_DIR "iemocap.cfg", NULL, 0, &c);
    ck_assert(c.d_model == 48 && c.heads == 4 && c.nlevels == 4 && c.kernel[0] == 1 && c.num_prototypes == 6);
    ck_assert(c.pde_dim == 48 && c.alpha == 0.05 && c.beta == 0.05 && c.ct_weight == 0 && c.ct_temperature == 0.1);
    ck_assert(c.classification && c.num_classes == 6 && dc_model_config_out_dim(&c) == 6);
    ck_assert(c.batch_size == 32 && c.learning_rate == 1e-4 && c.weight_decay == 0.005);
    ck_assert(c.num_epochs == 50 && c.early_stop_patience == 5 && c.scheduler_patience == 5 && c.clip == 0.6);
    ck_assert(c.attn_dropout == 0.2 && c.attn_dropout_a == 0.2 && c.attn_dropout_v == 0.2 && c.relu_dropout == 0.2 &&
              c.embed_dropout == 0.2 && c.res_dropout == 0.2 && c.output_dropout == 0.2 && c.text_dropout == 0.2);
    ck_assert_str_eq(c.selection_metric, "WAF1");
    ck_assert(!c.need_feature_standardized && c.seq_lens[0] == 1 && c.feature_dims[1] == 512);
}
END_TEST

START_TEST(cfg_equals_json) {
    struct dc_model_config a, b;
    load_ok(CFG_DIR "sims.cfg", NULL, 0, &a);
    load_ok(DECOCL_SOURCE_DIR "/tests/data/cfg_sims.json", NULL, 0, &b);
    assert_same(&a, &b);
    /* the golden reference JSON configs still load through the combined reader */
    load_ok(DECOCL_SOURCE_DIR "/../shared/golden/sims/config.json", NULL, 0, &b);
    ck_assert(b.d_model == 32 && b.batch_size == 12 && b.nignored == 1);
}
END_TEST

START_TEST(unknown_key_names_file_line_key) {
    struct dc_model_config c;
    struct dc_error err = {0};
    ck_assert_int_eq(cfg_text("# comment\n[model]\nnlevels = 3\n\nbogus_key = 1\n", &c, &err), DC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "t.cfg:5") && strstr(err.msg, "bogus_key"), "%s", err.msg);
    /* through a file: the path names it */
    char path[64];
    snprintf(path, sizeof path, "/tmp/decocl_cfg_%ld.cfg", (long)getpid());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("[train]\nbatch_size = 8\nlearning_rate = 1e-3\nlearnig_rate = 2\n", f);
    fclose(f);
    ck_assert_int_eq(dc_model_config_read(&c, path, NULL, 0, &err), DC_ERR_ARG);
    char want[96];
    snprintf(want, sizeof want, "%s:4", path);
    ck_assert_msg(strstr(err.msg, want) && strstr(err.msg, "learnig_rate"), "%s", err.msg);
    remove(path);
    /* syntax errors, duplicates and unknown sections have their line too */
    ck_assert_int_eq(cfg_text("[model]\nnlevels = 3\nthis is not ini\n", &c, &err), DC_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "t.cfg:3"), "%s", err.msg);
    ck_assert_int_eq(cfg_text("nlevels = 3\n[train]\nnlevels = 4\n", &c, &err), DC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "t.cfg:3") && strstr(err.msg, "nlevels") && strstr(err.msg, "line 1"), "%s",
                  err.msg);
    ck_assert_int_eq(cfg_text("[modle]\nnlevels = 3\n", &c, &err), DC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "t.cfg:2") && strstr(err.msg, "modle"), "%s", err.msg);
}
END_TEST

START_TEST(ignored_keys_reported) {
    struct dc_model_config c;
    struct dc_error err = {0};
    ck_assert_int_eq(cfg_text("use_bert = true\n[data]\nfeaturePath = x/y.pkl\nnlevels = 2\n", &c, &err), DC_OK);
    ck_assert_uint_eq(c.nignored, 2);
    ck_assert_str_eq(c.ignored[0], "use_bert");
    ck_assert_str_eq(c.ignored[1], "featurePath");
    ck_assert_uint_eq(c.nlevels, 2);
}
END_TEST

START_TEST(bad_values_rejected) {
    static const char *const BAD[][2] = {
        {"task_loss = foo\n", "task_loss"},
        {"learning_rate = -0.1\n", "learning_rate"},
        {"learning_rate = fast\n", "learning_rate"},
        {"nlevels = 2.5\n", "nlevels"},
        {"nlevels =\n", "nlevels"},
        {"attn_dropout = 1.5\n", "attn_dropout"},
        {"attn_mask = maybe\n", "attn_mask"},
        {"dst_feature_dim_nheads = 30, 4\n", "dst_feature_dim_nheads"},
        {"dst_feature_dim_nheads = 32\n", "dst_feature_dim_nheads"},
        {"dst_feature_dim_nheads = 32,,8\n", "dst_feature_dim_nheads"},
        {"active_modalities = text, smell\n", "active_modalities"},
        {"seeds = 1, -2\n", "seeds"},
        {"selection_mode = up\n", "selection_mode"},
        {"gmm_var_floor = 0\n", "gmm_var_floor"},
        {"lambda_ot = nan\n", "lambda_ot"},
        {"train_mode = classification\nnum_classes = 1\n", "num_classes"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; ++i) {
        struct dc_model_config c;
        struct dc_error err = {0};
        ck_assert_msg(cfg_text(BAD[i][0], &c, &err) == DC_ERR_ARG, "accepted: %s", BAD[i][0]);
        ck_assert_msg(strstr(err.msg, BAD[i][1]), "%s: %s", BAD[i][0], err.msg);
    }
}
END_TEST

START_TEST(set_overrides) {
    struct dc_model_config c;
    struct dc_error err = {0};
    const char *sets[] = {"num_epochs=1", " learning_rate = 2e-4 ", "dst_feature_dim_nheads=16,4",
                          "data=/tmp/x.pkl", "seeds=1,2,3", "num_epochs=2", "task_loss=huber"};
    load_ok(CFG_DIR "sims.cfg", sets, sizeof sets / sizeof sets[0], &c);
    ck_assert_uint_eq(c.num_epochs, 2); /* later wins */
    ck_assert(c.learning_rate == 2e-4 && c.d_model == 16 && c.heads == 4);
    ck_assert_str_eq(c.data, "/tmp/x.pkl");
    ck_assert(c.nseeds == 3 && c.seeds[2] == 3 && c.task_loss == DC_CFG_TASK_LOSS_SMOOTH_L1);
    ck_assert(c.batch_size == 24); /* untouched keys keep the file's values */
    /* errors name the key */
    const char *bad1[] = {"task_loss=foo"};
    ck_assert_int_eq(dc_model_config_read(&c, CFG_DIR "sims.cfg", bad1, 1, &err), DC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "--set") && strstr(err.msg, "task_loss"), "%s", err.msg);
    const char *bad2[] = {"no_such_key=1"};
    ck_assert_int_eq(dc_model_config_read(&c, CFG_DIR "sims.cfg", bad2, 1, &err), DC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "no_such_key"), "%s", err.msg);
    const char *bad3[] = {"nlevels"};
    ck_assert_int_eq(dc_model_config_read(&c, CFG_DIR "sims.cfg", bad3, 1, &err), DC_ERR_ARG);
    const char *bad4[] = {"batch_size=-4"};
    ck_assert_int_eq(dc_model_config_read(&c, NULL, bad4, 1, &err), DC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "batch_size"), "%s", err.msg);
    /* on a resolved config; a JSON file takes --set too */
    load_ok(CFG_DIR "mosi.cfg", NULL, 0, &c);
    const char *s2[] = {"alpha=0", "beta=0"};
    ck_assert_int_eq(dc_model_config_apply_sets(&c, s2, 2, &err), DC_OK);
    ck_assert(c.alpha == 0 && c.beta == 0 && c.d_model == 64);
    const char *s3[] = {"batch_size=7"};
    load_ok(DECOCL_SOURCE_DIR "/tests/data/cfg_sims.json", s3, 1, &c);
    ck_assert_uint_eq(c.batch_size, 7);
}
END_TEST

START_TEST(patience_fallback) {
    struct dc_model_config c;
    struct dc_error err = {0};
    ck_assert_int_eq(cfg_text("patience = 7\n", &c, &err), DC_OK);
    ck_assert(c.early_stop_patience == 7 && c.scheduler_patience == 7);
    ck_assert_int_eq(cfg_text("patience = 7\nscheduler_patience = 3\n", &c, &err), DC_OK);
    ck_assert(c.early_stop_patience == 7 && c.scheduler_patience == 3);
    ck_assert_int_eq(cfg_text("early_stop_patience = null\npatience = 4\n", &c, &err), DC_OK);
    ck_assert(c.early_stop_patience == 4 && c.scheduler_patience == 4);
    const char *text = "{\"patience\": 9, \"early_stop_patience\": null, \"scheduler_patience\": 2}";
    ck_assert_int_eq(dc_model_config_parse_json(&c, text, strlen(text), "t.json", &err), DC_OK);
    ck_assert(c.early_stop_patience == 9 && c.scheduler_patience == 2);
    /* --set patience overrides both unless the --set list also names them */
    const char *s1[] = {"patience=2"};
    load_ok(CFG_DIR "sims.cfg", s1, 1, &c);
    ck_assert(c.early_stop_patience == 2 && c.scheduler_patience == 2);
    const char *s2[] = {"patience=2", "early_stop_patience=9"};
    load_ok(CFG_DIR "sims.cfg", s2, 2, &c);
    ck_assert(c.early_stop_patience == 9 && c.scheduler_patience == 2);
}
END_TEST

static void round_trip(const struct dc_model_config *a) {
    char *text = NULL;
    struct dc_error err = {0};
    ck_assert_msg(dc_model_config_to_cfg(a, &text, &err) == DC_OK, "%s", err.msg);
    struct dc_model_config b;
    ck_assert_msg(dc_model_config_parse_cfg(&b, text, strlen(text), "resolved.cfg", &err) == DC_OK, "%s\n%s",
                  err.msg, text);
    assert_same(a, &b);
    ck_assert(a->d_model == b.d_model && a->learning_rate == b.learning_rate && a->alpha == b.alpha &&
              a->nseeds == b.nseeds && a->classification == b.classification && a->class_weight == b.class_weight &&
              a->early_stop_patience == b.early_stop_patience && a->pde_dim == b.pde_dim);
    ck_assert_str_eq(a->data, b.data);
    free(text);
}

START_TEST(round_trip_serialisation) {
    static const char *const NAMES[] = {"mosi", "mosei", "sims", "iemocap"};
    struct dc_model_config c;
    for (size_t i = 0; i < 4; ++i) {
        char path[1024];
        snprintf(path, sizeof path, CFG_DIR "%s.cfg", NAMES[i]);
        load_ok(path, NULL, 0, &c);
        round_trip(&c);
    }
    const char *sets[] = {"learning_rate=0.1", "gmm_var_floor=3.3e-7", "class_weights=1, 0.3, 2.5, 1, 1, 1",
                          "hetero_cost_reduction=sum", "active_modalities=text, vision", "seeds=5, 18446744073709",
                          "selection_mode=min", "scheduler_metric=Loss", "scheduler_mode=min"};
    load_ok(CFG_DIR "iemocap.cfg", sets, sizeof sets / sizeof sets[0], &c);
    ck_assert(c.class_weight == DC_CFG_CLASS_WEIGHT_EXPLICIT && c.class_weights[2] == 2.5f);
    round_trip(&c);
    const char *bal[] = {"class_weight=balanced"};
    load_ok(CFG_DIR "iemocap.cfg", bal, 1, &c);
    round_trip(&c);
    /* defaults (no file) also survive */
    load_ok(NULL, NULL, 0, &c);
    round_trip(&c);
    /* a value a .cfg cannot hold is refused, not written wrong */
    struct dc_error err = {0};
    char *text = NULL;
    snprintf(c.data, sizeof c.data, "a ;b.pkl");
    ck_assert_int_eq(dc_model_config_to_cfg(&c, &text, &err), DC_ERR_ARG);
    ck_assert_ptr_null(text);
}
END_TEST

static Suite *config_suite(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, configs_have_spec_values);
    tcase_add_test(tc, cfg_equals_json);
    tcase_add_test(tc, unknown_key_names_file_line_key);
    tcase_add_test(tc, ignored_keys_reported);
    tcase_add_test(tc, bad_values_rejected);
    tcase_add_test(tc, set_overrides);
    tcase_add_test(tc, patience_fallback);
    tcase_add_test(tc, round_trip_serialisation);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(config_suite(), 0); }
