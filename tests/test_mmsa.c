/* The dataset layer: splits, float32 features, labels, lengths and ids from every variant;
 * non-finite cleanup; standardisation against numpy's numbers (tests/make_fixtures.py) and
 * statistics round-tripped through the plain (4, D) array; kind detection; mt19937 and batching. */
#include <stdlib.h>

#include "core/mt19937.h"
#include "data_fixtures.h"

static const char *const VARIANTS[] = {"objarr", "unicode", "lists", "fet"};

static double jnum(json_t *a, size_t i) { return json_value(json_array_get(a, i)); }

START_TEST(dataset_from_every_variant) {
    json_t *ex = fixture_expected();
    for (int v = 0; v < 4; ++v)
        for (int p = 2; p <= 5; ++p) {
            char name[64];
            snprintf(name, sizeof name, "mmsa_%s_p%d.pkl", VARIANTS[v], p);
            struct dc_dataset *ds = NULL;
            struct dc_error err = {0};
            ck_assert_msg(dc_dataset_load(fixture_path(name), NULL, &ds, &err) == DC_OK, "%s: %s", name, err.msg);
            json_t *var = json_object_get(json_object_get(ex, "variants"), VARIANTS[v]);
            static const size_t n_want[] = {3, 2, 1};
            ck_assert_int_eq(ds->kind, v == 2 ? DC_KIND_SIMS : DC_KIND_UNKNOWN); /* lists: SIMS unimodal labels */
            ck_assert(!ds->classification);
            ck_assert_str_eq(ds->label_key, "regression_labels");
            for (int s = 0; s < DC_SPLIT_COUNT; ++s) {
                const struct dc_split *sp = &ds->split[s];
                json_t *keys = json_object_get(var, dc_split_name((enum dc_split_id)s));
                ck_assert_uint_eq(sp->n, n_want[s]);
                static const size_t T[] = {4, 5, 3}, D[] = {6, 3, 4};
                for (int m = 0; m < DC_MOD_COUNT; ++m) {
                    ck_assert(sp->seq_len[m] == T[m] && sp->dim[m] == D[m]);
                    json_t *vals = json_object_get(json_object_get(keys, dc_modality_name((enum dc_modality)m)), "values");
                    size_t cnt = sp->n * T[m] * D[m];
                    ck_assert_uint_eq(json_array_size(vals), cnt);
                    for (size_t i = 0; i < cnt; ++i) {
                        double w = jnum(vals, i);
                        float want = m != DC_MOD_TEXT && !isfinite(w) ? 0.0f : (float)w;
                        ck_assert_msg(sp->x[m][i] == want, "%s %s %zu: %g != %g", name,
                                      dc_modality_name((enum dc_modality)m), i, sp->x[m][i], want);
                    }
                }
                ck_assert_uint_eq(sp->nonfinite_replaced, s == 0 ? 3 : 1);
                json_t *lab = json_object_get(json_object_get(keys, "regression_labels"), "values");
                for (size_t i = 0; i < sp->n; ++i) ck_assert(sp->labels[i] == (float)jnum(lab, i));
                json_t *la = json_object_get(json_object_get(keys, "audio_lengths"), "values");
                ck_assert(sp->lengths[DC_MOD_AUDIO] && sp->lengths[DC_MOD_AUDIO][sp->n - 1] == (int64_t)jnum(la, sp->n - 1));
                ck_assert(sp->text_bert && sp->text_bert_len == 4 && sp->text_bert[0] == 101);
                json_t *ids = json_object_get(json_object_get(keys, "id"), "strings");
                for (size_t i = 0; i < sp->n; ++i) ck_assert_str_eq(sp->ids[i], json_string_value(json_array_get(ids, i)));
                if (v == 2) {
                    json_t *lt = json_object_get(json_object_get(keys, "regression_labels_V"), "values");
                    ck_assert(sp->labels_tav[2] && sp->labels_tav[2][0] == (float)jnum(lt, 0));
                } else {
                    ck_assert(sp->labels_tav[0] == NULL);
                }
            }
            dc_dataset_free(ds);
        }
    json_decref(ex);
}
END_TEST

static void check_std(const struct dc_dataset *ds, json_t *st) {
    json_t *stats = json_object_get(st, "audio_stats");
    const struct dc_feature_stats *fs = &ds->stats[DC_MOD_AUDIO];
    ck_assert(ds->standardized[DC_MOD_AUDIO] && !ds->standardized[DC_MOD_VISION]);
    ck_assert_uint_eq(fs->dim, 3);
    for (size_t d = 0; d < 3; ++d) {
        /* percentiles: numpy's linear interpolation, computed from the same float32 values */
        double lo = jnum(json_object_get(stats, "low"), d), hi = jnum(json_object_get(stats, "high"), d);
        ck_assert_msg(fabs(fs->values[DC_STATS_LOW * 3 + d] - lo) <= 1e-6 * (1 + fabs(lo)), "low[%zu] %.9g vs %.9g", d,
                      fs->values[DC_STATS_LOW * 3 + d], lo);
        ck_assert_msg(fabs(fs->values[DC_STATS_HIGH * 3 + d] - hi) <= 1e-6 * (1 + fabs(hi)), "high[%zu]", d);
        double mu = jnum(json_object_get(stats, "mean64"), d), sd = jnum(json_object_get(stats, "std64"), d);
        ck_assert_msg(fabs(fs->values[DC_STATS_MEAN * 3 + d] - mu) <= 1e-6 * (1 + fabs(mu)), "mean[%zu] %.9g vs %.9g", d,
                      fs->values[DC_STATS_MEAN * 3 + d], mu);
        ck_assert_msg(fabs(fs->values[DC_STATS_STD * 3 + d] - sd) <= 1e-6 * (1 + fabs(sd)), "std[%zu] %.9g vs %.9g", d,
                      fs->values[DC_STATS_STD * 3 + d], sd);
    }
    ck_assert(fs->values[DC_STATS_STD * 3 + 2] == 1e-6f); /* the constant dimension hits the floor */
    static const char *const names[] = {"train_audio", "valid_audio", "test_audio"};
    for (int s = 0; s < DC_SPLIT_COUNT; ++s) {
        json_t *want = json_object_get(st, names[s]);
        const struct dc_split *sp = &ds->split[s];
        ck_assert_uint_eq(json_array_size(want), sp->n * 7 * 3);
        for (size_t i = 0; i < json_array_size(want); ++i) {
            double w = jnum(want, i), g = sp->x[DC_MOD_AUDIO][i];
            /* numpy's float32 mean/std differ from our double ones in the last bits; the constant
             * dimension divides by 1e-6, where those bits are amplified */
            double tol = (i % 3 == 2) ? 1e-3 + 1e-3 * fabs(w) : 1e-5 + 1e-5 * fabs(w);
            ck_assert_msg(fabs(g - w) <= tol, "%s[%zu]: %.9g vs numpy %.9g", names[s], i, g, w);
        }
    }
}

START_TEST(standardisation_matches_numpy) {
    json_t *ex = fixture_expected();
    json_t *st = json_object_get(ex, "standardize");
    struct dc_dataset_options opt = {.standardize = {false, true, false}, .pct_low = 0.5, .pct_high = 99.5};
    struct dc_dataset *ds = NULL;
    struct dc_error err = {0};
    ck_assert_msg(dc_dataset_load(fixture_path("std.pkl"), &opt, &ds, &err) == DC_OK, "%s", err.msg);
    check_std(ds, st);
    /* export the statistics as the plain (4, D) array, import them for a second load: the same result */
    struct dc_feature_stats saved[DC_MOD_COUNT] = {0};
    ck_assert(dc_feature_stats_import(&saved[DC_MOD_AUDIO], 3, ds->stats[DC_MOD_AUDIO].values, 0.5, 99.5, &err) == DC_OK);
    struct dc_dataset_options opt2 = opt;
    opt2.stats_in = saved;
    opt2.pct_low = 10, opt2.pct_high = 20; /* ignored: the imported statistics win */
    struct dc_dataset *ds2 = NULL;
    ck_assert_msg(dc_dataset_load(fixture_path("std.pkl"), &opt2, &ds2, &err) == DC_OK, "%s", err.msg);
    for (int s = 0; s < DC_SPLIT_COUNT; ++s)
        ck_assert(memcmp(ds->split[s].x[DC_MOD_AUDIO], ds2->split[s].x[DC_MOD_AUDIO],
                         ds->split[s].n * 21 * sizeof(float)) == 0);
    /* statistics of the wrong width are refused */
    dc_feature_stats_free(&saved[DC_MOD_AUDIO]);
    float four[16] = {0};
    dc_feature_stats_import(&saved[DC_MOD_AUDIO], 4, four, 0.5, 99.5, &err);
    struct dc_dataset *ds3 = NULL;
    ck_assert(dc_dataset_load(fixture_path("std.pkl"), &opt2, &ds3, &err) == DC_ERR_ARG && ds3 == NULL);
    ck_assert_msg(strstr(err.msg, "4 dimensions, the data has 3"), "%s", err.msg);
    dc_feature_stats_free(&saved[DC_MOD_AUDIO]);
    dc_dataset_free(ds);
    dc_dataset_free(ds2);
    json_decref(ex);
}
END_TEST

/* numpy.percentile(x, q) for small hand-checked cases, including the t >= 0.5 branch of _lerp. */
START_TEST(percentile_linear_interpolation) {
    struct dc_feature_stats s = {0};
    struct dc_error err = {0};
    float x[] = {4, 1, 3, 2, 10}; /* one dimension, five frames */
    ck_assert(dc_feature_stats_compute(&s, x, 5, 1, 25, 90, &err) == DC_OK);
    ck_assert(s.values[DC_STATS_LOW] == 2.0f);  /* np.percentile([1,2,3,4,10], 25) = 2 */
    ck_assert(s.values[DC_STATS_HIGH] == 7.6f); /* 90 -> index 3.6 -> 4 + 0.6*6 */
    double c[] = {2, 2, 3, 4, 7.6f}, mu = 0, var = 0;
    for (int i = 0; i < 5; ++i) mu += c[i] / 5;
    for (int i = 0; i < 5; ++i) var += (c[i] - mu) * (c[i] - mu) / 5;
    ck_assert(fabs(s.values[DC_STATS_MEAN] - mu) < 1e-6 && fabs(s.values[DC_STATS_STD] - sqrt(var)) < 1e-6);
    dc_feature_stats_free(&s);
    ck_assert(dc_feature_stats_compute(&s, x, 5, 1, 50, 40, &err) == DC_ERR_ARG);
}
END_TEST

START_TEST(kind_guess) {
    struct dc_kind_hints h = {.dim = {768, 5, 20}, .seq_len = {50, 50, 50}, .has_regression = true};
    ck_assert_int_eq(dc_dataset_kind_guess(&h), DC_KIND_MOSI);
    h.dim[1] = 74, h.dim[2] = 35;
    ck_assert_int_eq(dc_dataset_kind_guess(&h), DC_KIND_MOSEI);
    h.dim[1] = 33, h.dim[2] = 709;
    ck_assert_int_eq(dc_dataset_kind_guess(&h), DC_KIND_SIMS);
    struct dc_kind_hints ie = {.dim = {1024, 512, 1024}, .seq_len = {1, 1, 1}, .has_classification = true};
    ck_assert_int_eq(dc_dataset_kind_guess(&ie), DC_KIND_IEMOCAP);
    struct dc_kind_hints un = {.dim = {8, 8, 8}, .seq_len = {3, 3, 3}, .has_regression = true};
    ck_assert_int_eq(dc_dataset_kind_guess(&un), DC_KIND_UNKNOWN);
    ck_assert_str_eq(dc_dataset_kind_name(DC_KIND_SIMS), "sims");
}
END_TEST

START_TEST(mt19937_known_answers) {
    struct dc_mt19937 g;
    dc_mt19937_seed(&g, 5489);
    ck_assert_uint_eq(dc_mt19937_u32(&g), 3499211612u); /* C++ std::mt19937 default seed */
    for (int i = 1; i < 9999; ++i) dc_mt19937_u32(&g);
    ck_assert_uint_eq(dc_mt19937_u32(&g), 4123659995u); /* the 10000th value, [rand.predef] */
    uint32_t key[] = {0x123, 0x234, 0x345, 0x456};     /* mt19937ar.c's init_by_array test */
    dc_mt19937_seed_array(&g, key, 4);
    ck_assert_uint_eq(dc_mt19937_u32(&g), 1067595299u);
    ck_assert_uint_eq(dc_mt19937_u32(&g), 955945823u);
    for (int i = 0; i < 1000; ++i) ck_assert(dc_mt19937_below(&g, 7) < 7);
}
END_TEST

START_TEST(batching) {
    struct dc_batcher b;
    struct dc_error err = {0};
    ck_assert(dc_batcher_init(&b, 10, 4, true, 1111, &err) == DC_OK);
    size_t first[10], second[10];
    for (int epoch = 0; epoch < 2; ++epoch) {
        dc_batcher_start_epoch(&b, (uint64_t)epoch);
        size_t *dst = epoch ? second : first, got = 0, k, sizes[4] = {0}, nb = 0;
        const size_t *idx;
        while ((k = dc_batcher_next(&b, &idx)) > 0) {
            memcpy(dst + got, idx, k * sizeof *idx);
            got += k;
            sizes[nb++] = k;
        }
        ck_assert(got == 10 && nb == 3 && sizes[0] == 4 && sizes[2] == 2); /* last partial batch kept */
        int seen[10] = {0};
        for (int i = 0; i < 10; ++i) seen[dst[i]]++;
        for (int i = 0; i < 10; ++i) ck_assert_int_eq(seen[i], 1);
    }
    ck_assert(memcmp(first, second, sizeof first) != 0); /* reshuffled every epoch */
    dc_batcher_start_epoch(&b, 0);
    const size_t *idx;
    ck_assert(dc_batcher_next(&b, &idx) == 4 && memcmp(idx, first, 4 * sizeof *idx) == 0); /* reproducible */
    dc_batcher_free(&b);
    ck_assert(dc_batcher_init(&b, 5, 2, false, 1, &err) == DC_OK); /* valid/test: file order */
    dc_batcher_start_epoch(&b, 3);
    for (size_t i = 0, k; (k = dc_batcher_next(&b, &idx)) > 0; i += k)
        for (size_t j = 0; j < k; ++j) ck_assert_uint_eq(idx[j], i + j);
    dc_batcher_free(&b);
    /* gather copies rows of the chosen samples */
    struct dc_dataset *ds = NULL;
    ck_assert(dc_dataset_load(fixture_path("mmsa_unicode_p4.pkl"), NULL, &ds, &err) == DC_OK);
    const struct dc_split *sp = &ds->split[DC_SPLIT_TRAIN];
    struct dc_batch batch = {0};
    size_t pick[] = {2, 0};
    ck_assert(dc_batch_gather(&batch, sp, pick, 2, &err) == DC_OK);
    ck_assert(batch.labels[0] == sp->labels[2] && batch.labels[1] == sp->labels[0]);
    ck_assert(memcmp(batch.x[DC_MOD_VISION], sp->x[DC_MOD_VISION] + 2 * 12, 12 * sizeof(float)) == 0);
    dc_batch_free(&batch);
    dc_dataset_free(ds);
}
END_TEST

int main(void) {
    Suite *s = suite_create("mmsa");
    TCase *tc = tcase_create("mmsa");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, dataset_from_every_variant);
    tcase_add_test(tc, standardisation_matches_numpy);
    tcase_add_test(tc, percentile_linear_interpolation);
    tcase_add_test(tc, kind_guess);
    tcase_add_test(tc, mt19937_known_answers);
    tcase_add_test(tc, batching);
    suite_add_tcase(s, tc);
    return test_run_suite(s, 0);
}
