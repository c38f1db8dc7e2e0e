/* The safe pickle reader: Python-written MMSA pickles under protocols 2-5 (every array compared
 * with the values Python wrote), float32 streaming conversion, sources of unknown size delivering
 * odd-sized chunks, and every hostile fixture failing with its status and a message that names
 * the offset, opcode or global. */
#include <stdlib.h>

#include "data_fixtures.h"

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    ck_assert(b != NULL);
    ck_assert(fread(b, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static const char *const VARIANTS[] = {"objarr", "unicode", "lists", "fet"};

/* _i: variant * 4 + (protocol - 2) */
START_TEST(protocols_match_python) {
    json_t *ex = fixture_expected();
    char name[64];
    snprintf(name, sizeof name, "mmsa_%s_p%d.pkl", VARIANTS[_i / 4], 2 + _i % 4);
    for (int f32 = 0; f32 <= 1; ++f32) {
        struct dc_pk_options opt = {.f32_min_ndim = f32 ? 2 : 0};
        struct dc_pk_doc *doc = NULL;
        struct dc_error err = {0};
        dc_status st = dc_data_load_doc(fixture_path(name), &opt, &doc, &err);
        ck_assert_msg(st == DC_OK, "%s: %s", name, err.msg);
        size_t n = check_doc(name, doc, json_object_get(json_object_get(ex, "variants"), VARIANTS[_i / 4]), f32, 0);
        ck_assert_msg(n > 300, "%s: only %zu values compared", name, n);
        const struct dc_pk_value *train = dc_mmsa_split(doc, DC_SPLIT_TRAIN);
        const struct dc_pk_value *audio = dc_pk_dict_get(train, "audio");
        ck_assert_int_eq(audio->u.arr.held, f32 ? DC_DTYPE_F32 : DC_DTYPE_F64);
        ck_assert(audio->u.arr.stored == DC_DTYPE_F64);
        const struct dc_pk_value *big = dc_pk_dict_get(train, "big_int");
        ck_assert(big && big->kind == DC_PK_INT && big->u.i == (1ll << 40) + 5);
        const struct dc_pk_value *pf = dc_pk_dict_get(train, "py_float");
        ck_assert(pf && pf->kind == DC_PK_FLOAT && pf->u.f == 0.25);
        const struct dc_pk_value *tu = dc_pk_dict_get(train, "py_tuple");
        ck_assert(tu && tu->kind == DC_PK_TUPLE && tu->u.seq.len == 3 && tu->u.seq.items[1]->kind == DC_PK_BOOL);
        ck_assert(dc_pk_dict_get(train, "py_none")->kind == DC_PK_NONE);
        const struct dc_pk_value *vis = dc_pk_dict_get(train, "vision");
        ck_assert(vis->u.arr.fortran); /* reordered to C order, values compared above */
        const struct dc_pk_value *s0 = dc_pk_dict_get(train, "scale0d");
        ck_assert(s0->u.arr.ndim == 0 && s0->u.arr.count == 1);
        dc_pk_doc_free(doc);
    }
    json_decref(ex);
}
END_TEST

/* A stream of unknown size that hands out 1..13 bytes at a time (archives stream like this). */
struct drip {
    const unsigned char *p;
    size_t len, pos, k;
};
static dc_status drip_read(void *ctx, void *buf, size_t n, size_t *got, struct dc_error *err) {
    (void)err;
    struct drip *d = ctx;
    size_t m = 1 + (d->k++ % 13);
    if (m > n) m = n;
    if (m > d->len - d->pos) m = d->len - d->pos;
    memcpy(buf, d->p + d->pos, m);
    d->pos += m;
    *got = m;
    return DC_OK;
}

START_TEST(unknown_size_stream_in_small_chunks) {
    json_t *ex = fixture_expected();
    for (int v = 0; v < 4; ++v)
        for (int p = 2; p <= 5; ++p) {
            char name[64];
            snprintf(name, sizeof name, "mmsa_%s_p%d.pkl", VARIANTS[v], p);
            size_t len;
            unsigned char *b = slurp(fixture_path(name), &len);
            struct drip d = {b, len, 0, 0};
            struct dc_stream s = {drip_read, &d, -1, ""};
            snprintf(s.where, sizeof s.where, "%s", name);
            struct dc_pk_options opt = {.f32_min_ndim = 2};
            struct dc_pk_doc *doc = NULL;
            struct dc_error err = {0};
            ck_assert_msg(dc_pickle_load(&s, &opt, &doc, &err) == DC_OK, "%s: %s", name, err.msg);
            check_doc(name, doc, json_object_get(json_object_get(ex, "variants"), VARIANTS[v]), 1, 0);
            dc_pk_doc_free(doc);
            /* every truncation of the stream fails cleanly */
            for (size_t cut = 0; cut < len; cut += 1 + len / 97) {
                struct drip t = {b, cut, 0, 0};
                struct dc_stream ts = {drip_read, &t, -1, "cut"};
                struct dc_error e2 = {0};
                ck_assert_msg(dc_pickle_load(&ts, &opt, &doc, &e2) == DC_ERR_FORMAT && doc == NULL,
                              "%s cut at %zu: %s", name, cut, e2.msg);
                ck_assert_msg(strstr(e2.msg, "truncated") != NULL, "%s cut at %zu: %s", name, cut, e2.msg);
            }
            free(b);
        }
    json_decref(ex);
}
END_TEST

START_TEST(hostile_inputs_fail_cleanly) {
    json_t *ex = fixture_expected();
    size_t i, n = 0;
    json_t *c;
    json_array_foreach(json_object_get(ex, "hostile"), i, c) {
        const char *file = json_string_value(json_object_get(c, "file"));
        const char *path = fixture_path(file);
        struct dc_error err = {0};
        dc_status st;
        if (strcmp(json_string_value(json_object_get(c, "layer")), "dataset") == 0) {
            struct dc_dataset *ds = (struct dc_dataset *)1;
            st = dc_dataset_load(path, NULL, &ds, &err);
            ck_assert_msg(ds == NULL, "%s: partial dataset returned", file);
        } else {
            struct dc_pk_doc *doc = (struct dc_pk_doc *)1;
            struct dc_pk_options opt = {.f32_min_ndim = 2};
            st = dc_data_load_doc(path, &opt, &doc, &err);
            ck_assert_msg(doc == NULL, "%s: partial document returned", file);
        }
        check_error(file, st, &err, c);
        ck_assert_msg(strstr(err.msg, file) != NULL, "%s: message does not name the file: %s", file, err.msg);
        ++n;
    }
    ck_assert_uint_ge(n, 35);
    json_decref(ex);
}
END_TEST

/* Hand-written pickles for corners the Python fixtures do not reach. */
static dc_status load_bytes(const void *b, size_t n, struct dc_pk_doc **doc, struct dc_error *err) {
    struct dc_pk_options opt = {.f32_min_ndim = 2};
    return dc_data_load_memory(b, n, "mem.pkl", NULL, &opt, doc, err);
}

START_TEST(corner_cases) {
    struct dc_pk_doc *doc;
    struct dc_error err = {0};
    /* LONG1 negative and 8-byte extremes; BININT negative; BINFLOAT big-endian */
    static const unsigned char longs[] = {0x80, 4, '(', 0x8a, 1, 0xff, 0x8a, 8, 0, 0, 0, 0, 0, 0, 0, 0x80,
                                          0x8a, 0, 'J', 0xfe, 0xff, 0xff, 0xff, 'G', 0x40, 0x09, 0x21, 0xfb,
                                          0x54, 0x44, 0x2d, 0x18, 't', '.'};
    ck_assert_msg(load_bytes(longs, sizeof longs, &doc, &err) == DC_OK, "%s", err.msg);
    struct dc_pk_value **it = doc->root->u.seq.items;
    ck_assert_int_eq(doc->root->u.seq.len, 5);
    ck_assert(it[0]->u.i == -1 && it[1]->u.i == INT64_MIN && it[2]->u.i == 0 && it[3]->u.i == -2);
    ck_assert(it[4]->u.f > 3.14159 && it[4]->u.f < 3.1416);
    dc_pk_doc_free(doc);
    /* a list that contains itself (BINGET + APPEND) is freed without recursion or leaks */
    static const unsigned char cycle[] = {0x80, 4, ']', 0x94, 'h', 0, 'a', '.'};
    ck_assert_msg(load_bytes(cycle, sizeof cycle, &doc, &err) == DC_OK, "%s", err.msg);
    ck_assert(doc->root->u.seq.items[0] == doc->root);
    dc_pk_doc_free(doc);
    /* STOP with two values on the stack */
    static const unsigned char two[] = {0x80, 4, 'N', 'N', '.'};
    ck_assert(load_bytes(two, sizeof two, &doc, &err) == DC_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "offset 4:") && strstr(err.msg, "unbalanced"), "%s", err.msg);
    /* REDUCE with a non-tuple argument */
    static const unsigned char nt[] = {0x80, 2, 'c', 'n', 'u', 'm', 'p', 'y', '\n', 'd', 't', 'y', 'p', 'e', '\n', 'N', 'R', '.'};
    ck_assert(load_bytes(nt, sizeof nt, &doc, &err) == DC_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "offset 16:") && strstr(err.msg, "numpy.dtype are a None"), "%s", err.msg);
    /* a deep nest of lists (1e5 levels) loads and frees without recursion */
    size_t depth = 100000, n = 0;
    unsigned char *deep = malloc(depth * 2 + 8);
    deep[n++] = 0x80, deep[n++] = 4;
    for (size_t i = 0; i < depth; ++i) deep[n++] = ']';
    for (size_t i = 1; i < depth; ++i) deep[n++] = 'a';
    deep[n++] = '.';
    ck_assert_msg(load_bytes(deep, n, &doc, &err) == DC_OK, "%s", err.msg);
    dc_pk_doc_free(doc);
    free(deep);
}
END_TEST

/* Payloads above the 64 KiB copy threshold are moved into their arrays; float64/float16 are
 * converted (streaming for protocols 3-4, in place for 2 and 5), Fortran order is undone. */
START_TEST(large_payloads) {
    char name[64];
    snprintf(name, sizeof name, "large_p%d.tar.xz", 2 + _i / 2);
    struct dc_pk_options opt = {.f32_min_ndim = _i % 2 ? 2 : 0};
    struct dc_pk_doc *doc = NULL;
    struct dc_error err = {0};
    ck_assert_msg(dc_data_load_doc(fixture_path(name), &opt, &doc, &err) == DC_OK, "%s: %s", name, err.msg);
    const struct dc_pk_value *t = dc_mmsa_split(doc, DC_SPLIT_TRAIN);
    static const struct {
        const char *key;
        size_t n, mod;
        double scale;
        enum dc_dtype stored;
    } k[] = {{"f64", 10000, 64, 0.5, DC_DTYPE_F64}, {"f16", 36000, 64, 1, DC_DTYPE_F16},
             {"i64", 9000, 100, 1, DC_DTYPE_I64}, {"f32f", 20000, 128, 0.25, DC_DTYPE_F32}};
    for (int j = 0; j < 4; ++j) {
        const struct dc_pk_value *v = dc_pk_dict_get(t, k[j].key);
        ck_assert_msg(v && v->kind == DC_PK_ARRAY && v->u.arr.count == k[j].n && v->u.arr.stored == k[j].stored,
                      "%s %s", name, k[j].key);
        bool conv = opt.f32_min_ndim && dc_dtype_is_float(k[j].stored);
        ck_assert_int_eq(v->u.arr.held, conv ? DC_DTYPE_F32 : k[j].stored);
        for (size_t i = 0; i < k[j].n; ++i) {
            double x;
            ck_assert(dc_mmsa_number_at(v, i, &x));
            ck_assert_msg(x == (double)(i % k[j].mod) * k[j].scale, "%s %s[%zu] = %g", name, k[j].key, i, x);
        }
    }
    dc_pk_doc_free(doc);
}
END_TEST

int main(void) {
    Suite *s = suite_create("pickle");
    TCase *tc = tcase_create("pickle");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, protocols_match_python, 0, 16);
    tcase_add_test(tc, unknown_size_stream_in_small_chunks);
    tcase_add_loop_test(tc, large_payloads, 0, 8);
    tcase_add_test(tc, hostile_inputs_fail_cleanly);
    tcase_add_test(tc, corner_cases);
    suite_add_tcase(s, tc);
    return test_run_suite(s, 0);
}
