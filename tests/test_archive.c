/* Containers: the fixture pickle inside .tar/.tar.gz/.tar.xz/.zip, FILE#member, .npz and a
 * directory of .npy (every array compared with Python's values), plus archives written in memory
 * with libarchive's writer: zip with data descriptors (members of unknown size), member selection,
 * several pickles, and member names in errors. */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>

#include "data_fixtures.h"

START_TEST(archives_match_python) {
    json_t *ex = fixture_expected();
    const char *file;
    json_t *variant;
    size_t files = 0;
    json_object_foreach(json_object_get(ex, "files"), file, variant) {
        if (strstr(file, ".pkl") && !strchr(file, '#') && !strstr(file, ".tar") && !strstr(file, ".zip")) continue;
        struct dc_pk_options opt = {.f32_min_ndim = 2};
        struct dc_pk_doc *doc = NULL;
        struct dc_error err = {0};
        ck_assert_msg(dc_data_load_doc(fixture_path(file), &opt, &doc, &err) == DC_OK, "%s: %s", file, err.msg);
        size_t n = check_doc(file, doc, json_object_get(json_object_get(ex, "variants"), json_string_value(variant)), 1, 0);
        ck_assert_msg(n > 300, "%s: %zu values", file, n);
        dc_pk_doc_free(doc);
        ++files;
    }
    ck_assert_uint_eq(files, 5); /* tar, tar.gz, tar.xz, zip, nested#member */
    json_decref(ex);
}
END_TEST

START_TEST(npz_and_npy_dir_match_python) {
    json_t *ex = fixture_expected();
    json_t *uni = json_object_get(json_object_get(ex, "variants"), "unicode");
    static const char *const files[] = {"mmsa_unicode.npz", "npydir"};
    for (int i = 0; i < 2; ++i) {
        for (int f32 = 0; f32 <= 1; ++f32) {
            struct dc_pk_options opt = {.f32_min_ndim = f32 ? 2 : 0};
            struct dc_pk_doc *doc = NULL;
            struct dc_error err = {0};
            ck_assert_msg(dc_data_load_doc(fixture_path(files[i]), &opt, &doc, &err) == DC_OK, "%s: %s", files[i], err.msg);
            size_t n = check_doc(files[i], doc, uni, f32, 1);
            ck_assert_msg(n > 300, "%s: %zu values", files[i], n);
            /* every key the script saved is there */
            size_t keys = 0;
            for (int s = 0; s < DC_SPLIT_COUNT; ++s) keys += dc_mmsa_split(doc, (enum dc_split_id)s)->u.dict.len;
            ck_assert_uint_eq(keys, json_array_size(json_object_get(ex, "npy_keys")));
            dc_pk_doc_free(doc);
        }
        struct dc_dataset *ds = NULL;
        struct dc_error err = {0};
        ck_assert_msg(dc_dataset_load(fixture_path(files[i]), NULL, &ds, &err) == DC_OK, "%s: %s", files[i], err.msg);
        ck_assert_uint_eq(ds->split[DC_SPLIT_TRAIN].n, 3);
        ck_assert_str_eq(ds->split[DC_SPLIT_VALID].ids[1], "vid01$_$2");
        dc_dataset_free(ds);
    }
    json_decref(ex);
}
END_TEST

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert(f != NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    ck_assert(fread(b, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

struct member {
    const char *name;
    const void *data;
    size_t len;
};

/* Writes an archive in memory. zip_stream: sizes unset, so the zip writer uses data descriptors. */
static unsigned char *write_archive(int zip, int gz, int zip_stream, const struct member *m, size_t n, size_t *out_len) {
    size_t cap = 1 << 20, used = 0;
    for (size_t i = 0; i < n; ++i) cap += m[i].len * 2;
    unsigned char *buf = malloc(cap);
    struct archive *a = archive_write_new();
    if (zip) archive_write_set_format_zip(a);
    else archive_write_set_format_pax_restricted(a);
    if (gz) archive_write_add_filter_gzip(a);
    archive_write_set_bytes_in_last_block(a, 1);
    ck_assert(archive_write_open_memory(a, buf, cap, &used) == ARCHIVE_OK);
    for (size_t i = 0; i < n; ++i) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        if (!zip_stream) archive_entry_set_size(e, (la_int64_t)m[i].len);
        ck_assert_msg(archive_write_header(a, e) == ARCHIVE_OK, "%s", archive_error_string(a));
        ck_assert(archive_write_data(a, m[i].data, m[i].len) == (la_ssize_t)m[i].len);
        archive_entry_free(e);
    }
    ck_assert(archive_write_close(a) == ARCHIVE_OK);
    archive_write_free(a);
    *out_len = used;
    return buf;
}

START_TEST(in_memory_archives) {
    json_t *ex = fixture_expected();
    json_t *uni = json_object_get(json_object_get(ex, "variants"), "unicode");
    size_t plen;
    unsigned char *pkl = slurp(fixture_path("mmsa_unicode_p4.pkl"), &plen);
    static const char other[] = "\x80\x04K\x01.";
    struct member one[] = {{"docs/readme.txt", "hi", 2}, {"data/ds.pkl", pkl, plen}};
    struct member two[] = {{"a/first.pkl", pkl, plen}, {"b/second.pkl", other, sizeof other - 1}};
    struct dc_pk_options opt = {.f32_min_ndim = 2};
    for (int kind = 0; kind < 4; ++kind) { /* tar, tar.gz, zip, zip with data descriptors */
        int zip = kind >= 2, gz = kind == 1, stream = kind == 3;
        size_t len;
        unsigned char *ar = write_archive(zip, gz, stream, one, 2, &len);
        struct dc_pk_doc *doc = NULL;
        struct dc_error err = {0};
        ck_assert_msg(dc_data_load_memory(ar, len, "mem", NULL, &opt, &doc, &err) == DC_OK, "kind %d: %s", kind, err.msg);
        check_doc("mem", doc, uni, 1, 0);
        dc_pk_doc_free(doc);
        ck_assert_msg(dc_data_load_memory(ar, len, "mem", "data/ds.pkl", &opt, &doc, &err) == DC_OK, "%s", err.msg);
        dc_pk_doc_free(doc);
        ck_assert(dc_data_load_memory(ar, len, "mem", "nope.pkl", &opt, &doc, &err) == DC_ERR_FORMAT);
        ck_assert_msg(strstr(err.msg, "no member 'nope.pkl'") && strstr(err.msg, "data/ds.pkl"), "%s", err.msg);
        /* a truncated archive names the member being read */
        ck_assert(dc_data_load_memory(ar, len * 3 / 5, "mem", NULL, &opt, &doc, &err) != DC_OK && doc == NULL);
        free(ar);
        ar = write_archive(zip, gz, stream, two, 2, &len);
        ck_assert(dc_data_load_memory(ar, len, "mem", NULL, &opt, &doc, &err) == DC_ERR_FORMAT && doc == NULL);
        ck_assert_msg(strstr(err.msg, "several pickles (a/first.pkl, b/second.pkl)"), "%s", err.msg);
        ck_assert_msg(dc_data_load_memory(ar, len, "mem", "b/second.pkl", &opt, &doc, &err) == DC_OK, "%s", err.msg);
        ck_assert(doc->root->kind == DC_PK_INT && doc->root->u.i == 1);
        dc_pk_doc_free(doc);
        free(ar);
    }
    /* a hostile pickle inside an archive: the message names archive, member and offset */
    static const char evil[] = "\x80\x02" "cos\nsystem\n" "X\x02\x00\x00\x00ls\x85R.";
    struct member em[] = {{"evil.pkl", evil, sizeof evil - 1}};
    size_t len;
    unsigned char *ar = write_archive(1, 0, 1, em, 1, &len);
    struct dc_pk_doc *doc = NULL;
    struct dc_error err = {0};
    ck_assert(dc_data_load_memory(ar, len, "evil.zip", NULL, &opt, &doc, &err) == DC_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "evil.zip: member evil.pkl: offset 2: GLOBAL") && strstr(err.msg, "'os.system'"), "%s",
                  err.msg);
    free(ar);
    free(pkl);
    json_decref(ex);
}
END_TEST

START_TEST(path_member_syntax) {
    struct dc_pk_doc *doc = NULL;
    struct dc_error err = {0};
    char spec[4200];
    snprintf(spec, sizeof spec, "%s#data/other.pkl", fixture_path("mmsa_nested.tar.gz"));
    ck_assert_msg(dc_data_load_doc(spec, NULL, &doc, &err) == DC_OK, "%s", err.msg);
    ck_assert(dc_pk_dict_get(doc->root, "x") != NULL);
    dc_pk_doc_free(doc);
    /* without a member: two pickles, listed */
    ck_assert(dc_data_load_doc(fixture_path("mmsa_nested.tar.gz"), NULL, &doc, &err) == DC_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "data/mosi/aligned.pkl, data/other.pkl"), "%s", err.msg);
    snprintf(spec, sizeof spec, "%s#x.pkl", fixture_path("mmsa_unicode_p4.pkl"));
    ck_assert(dc_data_load_doc(spec, NULL, &doc, &err) == DC_ERR_ARG);
    ck_assert(dc_data_load_doc(fixture_path("does-not-exist.pkl"), NULL, &doc, &err) == DC_ERR_IO);
    ck_assert_msg(strstr(err.msg, "does-not-exist.pkl"), "%s", err.msg);
}
END_TEST

int main(void) {
    Suite *s = suite_create("archive");
    TCase *tc = tcase_create("archive");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, archives_match_python);
    tcase_add_test(tc, npz_and_npy_dir_match_python);
    tcase_add_test(tc, in_memory_archives);
    tcase_add_test(tc, path_member_syntax);
    suite_add_tcase(s, tc);
    return test_run_suite(s, 0);
}
