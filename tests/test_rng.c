/* Philox known answers and dropout masks equal across backends. */
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "test_util.h"

START_TEST(philox_known_answers) {
    /* Random123 kat_vectors for philox4x32_10 */
    static const struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t i = 0; i < sizeof kat / sizeof kat[0]; ++i) {
        uint32_t out[4];
        dc_philox4x32_10(kat[i].ctr, kat[i].key, out);
        for (int j = 0; j < 4; ++j)
            ck_assert_msg(out[j] == kat[i].out[j], "kat %zu word %d: %08x != %08x", i, j, out[j], kat[i].out[j]);
    }
}
END_TEST

START_TEST(dropout_threshold_and_scale) {
    ck_assert_uint_eq(dc_dropout_threshold(0.0f), 0);
    ck_assert_uint_eq(dc_dropout_threshold(0.5f), 0x80000000u);
    ck_assert_uint_eq(dc_dropout_threshold(1.0f), 0xFFFFFFFFu);
    ck_assert(dc_dropout_scale(0.5f) == 2.0f);
    ck_assert(dc_dropout_scale(0.1f) == (float)(1.0 / 0.9));
}
END_TEST

/* The keep rate over many elements is close to 1-p, and different sites/steps differ. */
START_TEST(dropout_mask_statistics) {
    const size_t n = 1 << 16;
    uint32_t thr = dc_dropout_threshold(0.3f);
    size_t kept = 0, same = 0;
    for (size_t i = 0; i < n; ++i) {
        bool k1 = dc_dropout_word(42, 1, 5, i) >= thr, k2 = dc_dropout_word(42, 2, 5, i) >= thr;
        kept += k1;
        same += k1 == k2;
    }
    double rate = (double)kept / (double)n;
    ck_assert_msg(rate > 0.69 && rate < 0.71, "keep rate %.4f for p=0.3", rate);
    ck_assert_msg(same < n * 0.65, "masks of two sites agree on %zu of %zu", same, n);
}
END_TEST

/* Dropout on the OpenCL device is bit-identical to ref, masks and values. */
START_TEST(dropout_bit_identical_across_backends) {
    const size_t n = 100003;
    struct dc_error e1 = {0}, e2 = {0};
    struct dc_backend *ref, *cl;
    ck_assert_msg(dc_backend_open_ref(&ref, &e1) == DC_OK, "%s", e1.msg);
    struct dc_backend_options o = test_cl_options();
    ck_assert_msg(dc_backend_open(&cl, &o, &e2) == DC_OK, "%s", e2.msg);
    float *x = malloc(n * sizeof *x), *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    ck_assert(x && a && b);
    for (size_t i = 0; i < n; ++i) x[i] = 0.001f * (float)(i % 997) - 0.3f;
    struct dc_dropout d = {.p = 0.25f, .seed = 0x123456789abcdefull, .step = (1ull << 32) + 17, .site = 3};
    struct dc_backend *bes[2] = {ref, cl};
    float *outs[2] = {a, b};
    for (int k = 0; k < 2; ++k) {
        struct dc_mem *m;
        ck_assert(dc_mem_alloc(bes[k], 2 * n, &m) == DC_OK);
        dc_view in = dc_view_of(m, 0, n), out = dc_view_of(m, n, n);
        ck_assert(dc_upload(bes[k], in, x) == DC_OK);
        ck_assert(dc_dropout_fwd(bes[k], out, in, n, &d) == DC_OK);
        ck_assert(dc_download(bes[k], outs[k], out) == DC_OK);
        dc_mem_free(bes[k], m);
    }
    size_t zeros = 0;
    for (size_t i = 0; i < n; ++i) {
        ck_assert_msg(memcmp(&a[i], &b[i], sizeof(float)) == 0, "element %zu: ref %a, device %a", i, (double)a[i],
                      (double)b[i]);
        zeros += a[i] == 0.0f && x[i] != 0.0f;
    }
    ck_assert_msg(zeros > n / 5 && zeros < n / 3, "%zu of %zu dropped at p=0.25", zeros, n);
    free(x), free(a), free(b);
    dc_backend_close(cl);
    dc_backend_close(ref);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("philox");
    tcase_add_test(tc, philox_known_answers);
    tcase_add_test(tc, dropout_threshold_and_scale);
    tcase_add_test(tc, dropout_mask_statistics);
    suite_add_tcase(s, tc);
    TCase *tcl = tcase_create("cross_backend");
    tcase_set_timeout(tcl, 120);
    tcase_add_test(tcl, dropout_bit_identical_across_backends);
    suite_add_tcase(s, tcl);
    return test_run_suite(s, 1);
}
