/* The parameter layout: aligned disjoint views, exactly the reference names and shapes
 * of every golden case, PyTorch-default initialisation, Adam's active flags. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "golden_dims.h"
#include "model/params.h"
#include "test_util.h"

static void layout_of(const char *gcase, struct dc_param_layout *pl) {
    struct dc_model_dims m;
    char why[512];
    ck_assert_msg(golden_dims(gcase, &m, why, sizeof why), "%s: %s", gcase, why);
    struct dc_error err = {0};
    ck_assert_msg(dc_param_layout_init(pl, &m, &err) == DC_OK, "%s: %s", gcase, err.msg);
}

static void check_views(const struct dc_param_layout *pl, const char *what) {
    ck_assert_msg(pl->count == DC_PARAM_COUNT + DC_STACK_COUNT * pl->dims.nlevels * DC_LAYER_PARAM_COUNT, "%s", what);
    size_t end = 0;
    for (size_t i = 0; i < pl->count; ++i) {
        const struct dc_param_desc *d = &pl->desc[i];
        ck_assert_msg(d->offset % DC_PARAM_ALIGN == 0 && d->offset % DC_ADAM_CHUNK == 0, "%s: %s at %zu", what, d->name,
                      d->offset);
        ck_assert_msg(d->offset >= end, "%s: %s at %zu overlaps the previous view ending at %zu", what, d->name,
                      d->offset, end);
        ck_assert_msg(d->offset - end < DC_PARAM_ALIGN, "%s: %s: gap of %zu", what, d->name, d->offset - end);
        size_t n = 1;
        for (size_t j = 0; j < d->ndim; ++j) n *= d->shape[j];
        ck_assert_msg(n == d->numel && n > 0, "%s: %s numel %zu vs shape %zu", what, d->name, d->numel, n);
        end = d->offset + d->numel;
    }
    ck_assert_msg(pl->total >= end && pl->total - end < DC_PARAM_ALIGN && pl->total % DC_PARAM_ALIGN == 0,
                  "%s: total %zu, last view ends at %zu", what, pl->total, end);
    ck_assert_uint_eq(dc_param_chunks(pl), pl->total / DC_ADAM_CHUNK);
}

START_TEST(views_aligned_and_disjoint) {
    for (size_t c = 0; c < GOLDEN_NCASES; ++c) {
        struct dc_param_layout pl;
        layout_of(GOLDEN_CASES[c], &pl);
        check_views(&pl, GOLDEN_CASES[c]);
        dc_param_layout_free(&pl);
    }
    /* Odd sizes, no layers. */
    struct dc_model_dims m = {
        .d = 6, .heads = 3, .nlevels = 0, .feat = {7, 1, 65}, .kernel = {3, 1, 5}, .pde_dim = 1, .out_dim = 2};
    struct dc_param_layout pl;
    struct dc_error err = {0};
    ck_assert_msg(dc_param_layout_init(&pl, &m, &err) == DC_OK, "%s", err.msg);
    check_views(&pl, "odd dims");
    ck_assert_uint_eq(pl.count, DC_PARAM_COUNT);
    dc_param_layout_free(&pl);
}
END_TEST

/* Our list generates exactly the names and shapes of each golden weights.safetensors,
 * in its (state_dict) order. The header is parsed here directly, not by our reader. */
START_TEST(names_and_shapes_match_golden) {
    const char *gcase = GOLDEN_CASES[_i];
    struct dc_param_layout pl;
    layout_of(gcase, &pl);
    char path[1024];
    golden_path(path, sizeof path, gcase, "weights.safetensors");
    FILE *fp = fopen(path, "rb");
    ck_assert_msg(fp, "%s missing (the golden folder must exist: CI has it)", path);
    unsigned char len8[8];
    ck_assert(fread(len8, 1, 8, fp) == 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | len8[i];
    char *text = malloc(n);
    ck_assert(text && fread(text, 1, n, fp) == n);
    fclose(fp);
    json_error_t jerr;
    json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr);
    ck_assert_msg(root, "%s: %s", path, jerr.text);
    size_t seen = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) continue;
        const struct dc_param_desc *d = dc_param_find(&pl, key);
        ck_assert_msg(d, "%s: golden tensor %s is not in params.def", gcase, key);
        json_t *shape = json_object_get(val, "shape");
        ck_assert_msg(json_array_size(shape) == d->ndim, "%s: %s rank %zu, ours %zu", gcase, key,
                      json_array_size(shape), d->ndim);
        for (size_t j = 0; j < d->ndim; ++j)
            ck_assert_msg((size_t)json_integer_value(json_array_get(shape, j)) == d->shape[j],
                          "%s: %s axis %zu: golden %lld, ours %zu", gcase, key, j,
                          (long long)json_integer_value(json_array_get(shape, j)), d->shape[j]);
        /* state_dict order: the golden data lies in the same order as our views */
        json_t *offs = json_object_get(val, "data_offsets");
        size_t idx = (size_t)(d - pl.desc);
        if (idx + 1 < pl.count) {
            json_t *next = json_object_get(root, pl.desc[idx + 1].name);
            ck_assert_msg(next && json_integer_value(json_array_get(json_object_get(next, "data_offsets"), 0)) ==
                                      json_integer_value(json_array_get(offs, 1)),
                          "%s: %s is not followed by %s in the golden data", gcase, key, pl.desc[idx + 1].name);
        }
        ++seen;
    }
    ck_assert_msg(seen == pl.count, "%s: golden has %zu tensors, params.def generates %zu", gcase, seen, pl.count);
    json_decref(root);
    free(text);
    dc_param_layout_free(&pl);
}
END_TEST

START_TEST(lookup_by_id_and_name) {
    struct dc_param_layout pl;
    layout_of("mosi", &pl);
    ck_assert_str_eq(dc_param_get(&pl, DC_PARAM_PROJ_L_W)->name, "proj_l.weight");
    ck_assert_str_eq(dc_param_get(&pl, DC_PARAM_OUT_B)->name, "out_layer.bias");
    ck_assert_str_eq(dc_param_get(&pl, DC_PARAM_PDE_V_NET3_W)->name, "pde_v.net.3.weight");
    ck_assert_str_eq(dc_param_layer(&pl, DC_STACK_TRANS_A, 3, DC_LAYER_PARAM_FC1_W)->name,
                     "trans_a.layers.3.fc1.weight");
    ck_assert_str_eq(dc_param_layer(&pl, DC_STACK_TRANS_V, 4, DC_LAYER_PARAM_FINAL_LN_B)->name,
                     "trans_v.layers.4.final_layer_norm.bias");
    ck_assert_ptr_null(dc_param_layer(&pl, DC_STACK_TRANS_L, 5, DC_LAYER_PARAM_FC1_W));
    const struct dc_param_desc *d = dc_param_find(&pl, "trans_l.layers.2.self_attn.in_proj_weight");
    ck_assert_ptr_nonnull(d);
    ck_assert(d == dc_param_layer(&pl, DC_STACK_TRANS_L, 2, DC_LAYER_PARAM_IN_PROJ_W));
    ck_assert_uint_eq(d->shape[0], 192);
    ck_assert_uint_eq(d->shape[1], 64);
    ck_assert_ptr_null(dc_param_find(&pl, "proj_l.bias"));
    ck_assert_uint_eq(dc_param_index(&pl, "nope"), pl.count);
    ck_assert_uint_eq(dc_param_index(&pl, "out_layer.bias"), pl.count - 1);
    dc_param_layout_free(&pl);
}
END_TEST

START_TEST(bad_dims_rejected) {
    struct dc_model_dims good = {
        .d = 8, .heads = 2, .nlevels = 1, .feat = {3, 4, 5}, .kernel = {1, 1, 1}, .pde_dim = 4, .out_dim = 1};
    struct dc_param_layout pl;
    struct dc_error err = {0};
    struct dc_model_dims m = good;
    m.heads = 3;
    ck_assert_int_eq(dc_param_layout_init(&pl, &m, &err), DC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "heads"), "%s", err.msg);
    dc_param_layout_free(&pl);
    m = good;
    m.feat[1] = 0;
    ck_assert_int_eq(dc_param_layout_init(&pl, &m, &err), DC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "feature_dims[a]"), "%s", err.msg);
    dc_param_layout_free(&pl);
    m = good;
    m.kernel[2] = 0;
    ck_assert_int_eq(dc_param_layout_init(&pl, &m, &err), DC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "conv1d_kernel_size_v"), "%s", err.msg);
    dc_param_layout_free(&pl);
    m = good;
    m.nlevels = 100000;
    ck_assert_int_eq(dc_param_layout_init(&pl, &m, &err), DC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "nlevels"), "%s", err.msg);
    dc_param_layout_free(&pl);
}
END_TEST

START_TEST(init_follows_pytorch_defaults) {
    struct dc_param_layout pl;
    layout_of("mosi", &pl);
    float *buf = malloc(pl.total * sizeof *buf);
    ck_assert_ptr_nonnull(buf);
    memset(buf, 0x7f, pl.total * sizeof *buf); /* padding must come back 0 */
    dc_params_init(&pl, buf, 1234);
    size_t end = 0;
    for (size_t i = 0; i < pl.count; ++i) {
        const struct dc_param_desc *d = &pl.desc[i];
        for (size_t j = end; j < d->offset; ++j) ck_assert_msg(buf[j] == 0.0f, "padding before %s", d->name);
        const float *p = buf + d->offset;
        double b = dc_param_init_bound(d), sum = 0, sq = 0, mx = 0;
        for (size_t j = 0; j < d->numel; ++j) {
            sum += p[j];
            sq += (double)p[j] * p[j];
            if (fabs(p[j]) > mx) mx = fabs(p[j]);
        }
        switch (d->init) {
            case DC_PARAM_INIT_UNIFORM:
            case DC_PARAM_INIT_XAVIER:
                ck_assert_msg(mx <= (float)b, "%s: |x| %g above bound %g", d->name, mx, b);
                if (d->numel >= 1000) {
                    double mean = sum / (double)d->numel, sd = sqrt(sq / (double)d->numel - mean * mean);
                    ck_assert_msg(mx > 0.99 * b, "%s: max %g, bound %g", d->name, mx, b);
                    ck_assert_msg(fabs(mean) < 0.05 * b, "%s: mean %g", d->name, mean);
                    ck_assert_msg(fabs(sd / (b / sqrt(3.0)) - 1.0) < 0.05, "%s: std %g, expected %g", d->name, sd,
                                  b / sqrt(3.0));
                }
                break;
            case DC_PARAM_INIT_ZERO: ck_assert_msg(mx == 0.0, "%s not zero", d->name); break;
            case DC_PARAM_INIT_ONE:
                ck_assert_msg(sum == (double)d->numel && sq == (double)d->numel, "%s not ones", d->name);
                break;
        }
        end = d->offset + d->numel;
    }
    for (size_t j = end; j < pl.total; ++j) ck_assert(buf[j] == 0.0f);
    /* The kinds the spec names, spot-checked. */
    const struct dc_param_desc *w = dc_param_get(&pl, DC_PARAM_PROJ_L_W);
    ck_assert(w->init == DC_PARAM_INIT_UNIFORM && fabs(dc_param_init_bound(w) - 1.0 / sqrt(768.0)) < 1e-12);
    const struct dc_param_desc *q = dc_param_layer(&pl, DC_STACK_TRANS_L, 0, DC_LAYER_PARAM_IN_PROJ_W);
    ck_assert(q->init == DC_PARAM_INIT_XAVIER && fabs(dc_param_init_bound(q) - sqrt(6.0 / 256.0)) < 1e-12);
    ck_assert(dc_param_layer(&pl, DC_STACK_TRANS_V, 4, DC_LAYER_PARAM_IN_PROJ_B)->init == DC_PARAM_INIT_ZERO);
    ck_assert(dc_param_layer(&pl, DC_STACK_TRANS_V, 4, DC_LAYER_PARAM_OUT_PROJ_B)->init == DC_PARAM_INIT_ZERO);
    ck_assert(dc_param_layer(&pl, DC_STACK_TRANS_A, 1, DC_LAYER_PARAM_ATTN_LN_W)->init == DC_PARAM_INIT_ONE);
    ck_assert(dc_param_layer(&pl, DC_STACK_TRANS_A, 1, DC_LAYER_PARAM_FINAL_LN_B)->init == DC_PARAM_INIT_ZERO);
    const struct dc_param_desc *fb = dc_param_layer(&pl, DC_STACK_TRANS_A, 1, DC_LAYER_PARAM_FC2_B);
    ck_assert(fb->init == DC_PARAM_INIT_UNIFORM && fabs(dc_param_init_bound(fb) - 1.0 / 16.0) < 1e-12);
    /* The large std check above really ran on a big Xavier tensor (192 x 64). */
    ck_assert_uint_ge(q->numel, 1000);
    free(buf);
    dc_param_layout_free(&pl);
}
END_TEST

START_TEST(init_deterministic_per_seed) {
    struct dc_param_layout pl;
    layout_of("sims", &pl);
    size_t bytes = pl.total * sizeof(float);
    float *a = malloc(bytes), *b = malloc(bytes), *c = malloc(bytes), *h = malloc(bytes);
    ck_assert(a && b && c && h);
    dc_params_init(&pl, a, 7);
    dc_params_init(&pl, b, 7);
    dc_params_init(&pl, c, 8);
    dc_params_init(&pl, h, (uint64_t)7 << 32);
    ck_assert(memcmp(a, b, bytes) == 0);
    ck_assert(memcmp(a, c, bytes) != 0);
    ck_assert(memcmp(a, h, bytes) != 0);
    /* The first value depends only on the seed and the first tensor's bound. */
    const struct dc_param_desc *w = dc_param_get(&pl, DC_PARAM_PROJ_L_W);
    ck_assert(a[w->offset] != c[w->offset]);
    free(a);
    free(b);
    free(c);
    free(h);
    dc_param_layout_free(&pl);
}
END_TEST

START_TEST(active_flags_per_chunk) {
    struct dc_param_layout pl;
    layout_of("edge", &pl);
    size_t chunks = dc_param_chunks(&pl);
    bool *active = malloc(pl.count * sizeof *active);
    float *flags = malloc(chunks * sizeof *flags);
    ck_assert(active && flags);
    for (size_t i = 0; i < pl.count; ++i) active[i] = true;
    dc_param_active_flags(&pl, active, flags);
    for (size_t c = 0; c < chunks; ++c) ck_assert(flags[c] == 1.0f);
    /* edge: proj_v is skipped (D_v == d), so it takes no part in the loss. Also drop the
     * one-float out_layer.bias, whose single chunk is mostly padding. */
    size_t pv = dc_param_index(&pl, "proj_v.weight"), ob = dc_param_index(&pl, "out_layer.bias");
    active[pv] = false;
    active[ob] = false;
    dc_param_active_flags(&pl, active, flags);
    for (size_t c = 0; c < chunks; ++c) {
        size_t lo = c * DC_ADAM_CHUNK, owner = pl.count;
        for (size_t i = 0; i < pl.count; ++i)
            if (pl.desc[i].offset <= lo) owner = i; /* the last view starting at or before the chunk */
        ck_assert_uint_ne(owner, pl.count);
        float want = active[owner] ? 1.0f : 0.0f;
        ck_assert_msg(flags[c] == want, "chunk %zu (%s): flag %g", c, pl.desc[owner].name, flags[c]);
    }
    const struct dc_param_desc *d = &pl.desc[pv];
    size_t first = d->offset / DC_ADAM_CHUNK, last = (d->offset + d->numel - 1) / DC_ADAM_CHUNK;
    for (size_t c = first; c <= last; ++c) ck_assert(flags[c] == 0.0f);
    ck_assert(flags[first - 1] == 1.0f && flags[last + 1] == 1.0f);
    ck_assert(flags[chunks - 1] == 0.0f); /* out_layer.bias's chunk: the buffer's last */
    free(active);
    free(flags);
    dc_param_layout_free(&pl);
}
END_TEST

static Suite *params_suite(void) {
    Suite *s = suite_create("params");
    TCase *tc = tcase_create("layout");
    tcase_add_test(tc, views_aligned_and_disjoint);
    tcase_add_loop_test(tc, names_and_shapes_match_golden, 0, (int)GOLDEN_NCASES);
    tcase_add_test(tc, lookup_by_id_and_name);
    tcase_add_test(tc, bad_dims_rejected);
    suite_add_tcase(s, tc);
    tc = tcase_create("init");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, init_follows_pytorch_defaults);
    tcase_add_test(tc, init_deterministic_per_seed);
    tcase_add_test(tc, active_flags_per_chunk);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(params_suite(), 0); }
