/* The program cache and the --kernels-binary path: cold build, warm hit, corrupt
 * entries rebuilt, concurrent builders, binary round trip, build-log reporting. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/hash.h"
#include "test_util.h"

#define ENTRY_HEADER 88 /* magic 8, version 4, reserved 4, key 32, length 8, sha256 32 */

static char cache_dir[256];

static void fresh_cache_dir(void) {
    snprintf(cache_dir, sizeof cache_dir, "/tmp/decocl-test-cache-%ld", (long)getpid());
    mkdir(cache_dir, 0755);
}

static struct dc_backend *open_cl(const char *kernels_binary, const char *cl_dir, struct dc_error *err,
                                  dc_status *st) {
    struct dc_backend_options o = test_cl_options();
    o.cache_dir = cache_dir;
    o.kernels_binary = kernels_binary;
    o.cl_dir = cl_dir;
    struct dc_backend *be = NULL;
    *st = dc_backend_open(&be, &o, err);
    return be;
}

/* Counts entries in the cache dir ending in suffix; *path gets the last one. */
static int count_files(const char *suffix, char *path, size_t cap) {
    DIR *d = opendir(cache_dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (len > sl && strcmp(e->d_name + len - sl, suffix) == 0) {
            ++n;
            if (path) snprintf(path, cap, "%s/%s", cache_dir, e->d_name);
        }
        if (strstr(e->d_name, ".tmp.")) ck_abort_msg("temporary file left behind: %s", e->d_name);
    }
    closedir(d);
    return n;
}

static void remove_dir(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Opens once and checks the origin and that the ops work afterwards. */
static void expect_origin(const char *want) {
    struct dc_error err = {0};
    dc_status st;
    struct dc_backend *be = open_cl(NULL, NULL, &err, &st);
    ck_assert_msg(st == DC_OK, "open: %s", err.msg);
    ck_assert_str_eq(dc_backend_program_origin(be), want);
    /* the program must actually run: scale a few floats */
    struct dc_mem *m;
    ck_assert(dc_mem_alloc(be, 5, &m) == DC_OK);
    float x[5] = {1, 2, 3, 4, 5}, y[5];
    dc_view v = dc_view_of(m, 0, 5);
    ck_assert(dc_upload(be, v, x) == DC_OK && dc_scale(be, v, 2.0f, 5) == DC_OK && dc_download(be, y, v) == DC_OK);
    ck_assert(y[4] == 10.0f);
    dc_mem_free(be, m);
    dc_backend_close(be);
}

START_TEST(cold_then_warm) {
    fresh_cache_dir();
    expect_origin("source");
    ck_assert_int_eq(count_files(".bin", NULL, 0), 1);
    expect_origin("cache");
    remove_dir(cache_dir);
}
END_TEST

/* Truncated, bit-flipped and garbage-but-checksummed entries are all rebuilt and replaced. */
START_TEST(corrupt_entries_rebuilt) {
    fresh_cache_dir();
    expect_origin("source");
    char path[512];
    ck_assert_int_eq(count_files(".bin", path, sizeof path), 1);
    long good = file_size(path);
    ck_assert(good > ENTRY_HEADER);

    ck_assert_int_eq(truncate(path, good / 2), 0); /* short */
    expect_origin("source");
    ck_assert_int_eq(file_size(path), good);
    expect_origin("cache");

    FILE *f = fopen(path, "r+b"); /* one flipped byte in the binary: checksum mismatch */
    ck_assert_ptr_nonnull(f);
    fseek(f, good - 7, SEEK_SET);
    int c = fgetc(f);
    fseek(f, good - 7, SEEK_SET);
    fputc(c ^ 0x55, f);
    fclose(f);
    expect_origin("source");
    expect_origin("cache");

    /* garbage binary with a valid header and checksum: the driver rejects it */
    f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    size_t blen = (size_t)good - ENTRY_HEADER;
    unsigned char *junk = malloc(blen);
    ck_assert_ptr_nonnull(junk);
    for (size_t i = 0; i < blen; ++i) junk[i] = (unsigned char)(i * 131 + 7);
    uint8_t sum[32];
    dc_sha256(junk, blen, sum);
    fseek(f, 56, SEEK_SET);
    fwrite(sum, 1, 32, f);
    fwrite(junk, 1, blen, f);
    fclose(f);
    free(junk);
    expect_origin("source");
    expect_origin("cache");
    remove_dir(cache_dir);
}
END_TEST

/* Several processes building into an empty cache at once all succeed and leave one entry. */
START_TEST(concurrent_builders) {
    fresh_cache_dir();
    enum { N = 3 };
    pid_t kids[N];
    for (int i = 0; i < N; ++i) {
        kids[i] = fork();
        ck_assert(kids[i] >= 0);
        if (kids[i] == 0) {
            struct dc_error err = {0};
            dc_status st;
            struct dc_backend *be = open_cl(NULL, NULL, &err, &st);
            if (st != DC_OK) {
                fprintf(stderr, "child %d: %s\n", i, err.msg);
                _exit(1);
            }
            dc_backend_close(be);
            _exit(0);
        }
    }
    for (int i = 0; i < N; ++i) {
        int status;
        ck_assert(waitpid(kids[i], &status, 0) == kids[i]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "builder %d failed", i);
    }
    ck_assert_int_eq(count_files(".bin", NULL, 0), 1);
    expect_origin("cache");
    remove_dir(cache_dir);
}
END_TEST

/* Export the built program, reload it with --kernels-binary: every op present, no source compiled. */
START_TEST(kernels_binary_round_trip) {
    fresh_cache_dir();
    struct dc_error err = {0};
    dc_status st;
    struct dc_backend *be = open_cl(NULL, NULL, &err, &st);
    ck_assert_msg(st == DC_OK, "%s", err.msg);
    char bin[512];
    snprintf(bin, sizeof bin, "%s/exported.bin", cache_dir);
    ck_assert_msg(dc_backend_export_kernels(be, bin) == DC_OK, "%s", dc_backend_error(be)->msg);
    bool ops[DC_OP_COUNT];
    for (int op = 0; op < DC_OP_COUNT; ++op) ops[op] = dc_backend_supports(be, (enum dc_op)op);
    dc_backend_close(be);
    /* an unusable --cl-dir proves no source is read on the binary path */
    be = open_cl(bin, "/nonexistent-cl-dir", &err, &st);
    ck_assert_msg(st == DC_OK, "%s", err.msg);
    ck_assert_str_eq(dc_backend_program_origin(be), "binary");
    for (int op = 0; op < DC_OP_COUNT; ++op)
        ck_assert_msg(dc_backend_supports(be, (enum dc_op)op) == ops[op], "op %s differs after reload",
                      dc_op_name((enum dc_op)op));
    dc_backend_close(be);
    remove_dir(cache_dir);
}
END_TEST

START_TEST(kernels_binary_bad_files) {
    fresh_cache_dir();
    struct dc_error err = {0};
    dc_status st;
    struct dc_backend *be = open_cl("/nonexistent/kernels.bin", NULL, &err, &st);
    ck_assert(be == NULL);
    ck_assert_int_eq(st, DC_ERR_IO);
    ck_assert_msg(strstr(err.msg, "/nonexistent/kernels.bin") != NULL, "message: %s", err.msg);
    char junk[512];
    snprintf(junk, sizeof junk, "%s/junk.bin", cache_dir);
    FILE *f = fopen(junk, "wb");
    fputs("this is not a device binary", f);
    fclose(f);
    be = open_cl(junk, NULL, &err, &st);
    ck_assert(be == NULL);
    ck_assert_int_eq(st, DC_ERR_CL);
    ck_assert_msg(strstr(err.msg, "junk.bin") != NULL, "message: %s", err.msg);
    remove_dir(cache_dir);
}
END_TEST

/* A kernel that does not compile: the error carries the device's build log. */
START_TEST(build_failure_reports_log) {
    fresh_cache_dir();
    char dir[300], cmd[1200];
    snprintf(dir, sizeof dir, "%s/cl-broken", cache_dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s'/cl/*.cl '%s'/ && printf '\\n__kernel void broken(void) { undeclared_thing = 1; }\\n' >> '%s/elementwise.cl'",
             dir, DECOCL_SOURCE_DIR, dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    struct dc_error err = {0};
    dc_status st;
    struct dc_backend *be = open_cl(NULL, dir, &err, &st);
    ck_assert(be == NULL);
    ck_assert_int_eq(st, DC_ERR_CL);
    ck_assert_msg(strstr(err.msg, "CL_BUILD_PROGRAM_FAILURE") && strstr(err.msg, "build log") &&
                      strstr(err.msg, "undeclared_thing"),
                  "message lacks the build log: %s", err.msg);
    remove_dir(cache_dir);
}
END_TEST

/* --gemm auto: the measured choice is written to the cache, read back instead of
 * measuring again, and an unreadable choice file is measured again and replaced. */
static struct dc_backend *open_auto(void) {
    struct dc_backend_options o = test_cl_options();
    o.cache_dir = cache_dir;
    o.gemm = DC_GEMM_AUTO;
    struct dc_backend *be = NULL;
    struct dc_error err = {0};
    ck_assert_msg(dc_backend_open(&be, &o, &err) == DC_OK, "%s", err.msg);
    return be;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static char first_word(const char *path, char *word, size_t cap) {
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char fmt[16];
    snprintf(fmt, sizeof fmt, "%%%zus", cap - 1);
    int got = fscanf(f, fmt, word);
    fclose(f);
    return got == 1;
}

START_TEST(gemm_auto_choice_remembered) {
    fresh_cache_dir();
    struct dc_backend *be = open_auto();
    enum dc_gemm_provider measured = dc_backend_gemm_provider(be);
    dc_backend_close(be);
    char path[512], word[32];
    ck_assert_int_eq(count_files(".choice", path, sizeof path), 1);
    ck_assert(first_word(path, word, sizeof word));
    ck_assert_str_eq(word, measured == DC_GEMM_CLBLAST ? "clblast" : "own");
    /* a remembered choice is used as is: flip it and the backend follows the file */
    enum dc_gemm_provider flipped = measured == DC_GEMM_CLBLAST ? DC_GEMM_OWN : DC_GEMM_CLBLAST;
    write_text(path, flipped == DC_GEMM_CLBLAST ? "clblast\n" : "own\n");
    be = open_auto();
    ck_assert_int_eq(dc_backend_gemm_provider(be), flipped);
    dc_backend_close(be);
    /* garbage: measured again and replaced by a valid choice */
    write_text(path, "\x01\x02 not a provider");
    be = open_auto();
    enum dc_gemm_provider again = dc_backend_gemm_provider(be);
    dc_backend_close(be);
    ck_assert(again == DC_GEMM_OWN || again == DC_GEMM_CLBLAST);
    ck_assert(first_word(path, word, sizeof word));
    ck_assert_str_eq(word, again == DC_GEMM_CLBLAST ? "clblast" : "own");
    remove_dir(cache_dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("program_cache");
    TCase *tc = tcase_create("cache");
    tcase_set_timeout(tc, 600); /* the GEMM measurement compiles CLBlast kernels when PoCL's cache is cold */
    tcase_add_test(tc, cold_then_warm);
    tcase_add_test(tc, corrupt_entries_rebuilt);
    tcase_add_test(tc, concurrent_builders);
    tcase_add_test(tc, kernels_binary_round_trip);
    tcase_add_test(tc, kernels_binary_bad_files);
    tcase_add_test(tc, build_failure_reports_log);
    tcase_add_test(tc, gemm_auto_choice_remembered);
    suite_add_tcase(s, tc);
    return test_run_suite(s, 1);
}
