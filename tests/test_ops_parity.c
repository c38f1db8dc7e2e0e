/* Parity: every op case on the OpenCL device against ref, with guard floats around
 * every tensor. Backends are created inside each forked test (never in the parent).
 * Environment: DECOCL_TEST_DEVICE, DECOCL_GEMM, DECOCL_KERNELS_BINARY (see test_util.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/op_cases.h"
#include "test_util.h"

static struct dc_op_case *cases;
static size_t ncases;

/* Runs c on be from host data; returns the downloaded buffer (guards included). */
static float *run_on(struct dc_backend *be, const struct dc_op_case *c, const float *host, size_t total) {
    struct dc_case_buffers b;
    dc_status st = dc_case_buffers_create(be, c, host, &b);
    ck_assert_msg(st == DC_OK, "%s: %s: buffers: %s", c->label, dc_backend_name(be), dc_backend_error(be)->msg);
    st = c->run(be, c, b.t);
    ck_assert_msg(st == DC_OK, "%s: %s: %s", c->label, dc_backend_name(be), dc_backend_error(be)->msg);
    float *res = malloc(total * sizeof *res);
    ck_assert_ptr_nonnull(res);
    st = dc_download(be, res, dc_view_of(b.mem, 0, total));
    ck_assert_msg(st == DC_OK, "%s: %s: download: %s", c->label, dc_backend_name(be), dc_backend_error(be)->msg);
    dc_case_buffers_free(be, &b);
    return res;
}

/* Checks guards and untouched inputs of one backend's result; returns a message or NULL. */
static const char *check_layout(const struct dc_op_case *c, const float *host, const float *res, char *msg,
                                size_t cap) {
    size_t pos = 0;
    for (size_t g = 0; g < DC_CASE_GUARD; ++g, ++pos)
        if (!dc_is_guard(res[pos])) return snprintf(msg, cap, "guard before %s overwritten", c->t[0].name), msg;
    for (size_t i = 0; i < c->nt; ++i) {
        if (!c->t[i].written && memcmp(host + pos, res + pos, c->t[i].n * sizeof(float)) != 0)
            return snprintf(msg, cap, "input %s was modified", c->t[i].name), msg;
        pos += c->t[i].n;
        for (size_t g = 0; g < DC_CASE_GUARD; ++g, ++pos)
            if (!dc_is_guard(res[pos]))
                return snprintf(msg, cap, "guard after %s overwritten at +%zu", c->t[i].name, g), msg;
    }
    return NULL;
}

START_TEST(op_matches_ref) {
    const struct dc_op_case *c = &cases[_i];
    struct dc_error ref_err = {0}, cl_err = {0};
    struct dc_backend *ref, *cl;
    ck_assert_msg(dc_backend_open_ref(&ref, &ref_err) == DC_OK, "ref: %s", ref_err.msg);
    struct dc_backend_options o = test_cl_options();
    ck_assert_msg(dc_backend_open(&cl, &o, &cl_err) == DC_OK, "%s: opening %s: %s", c->label, o.device, cl_err.msg);
    ck_assert_msg(dc_backend_supports(cl, c->op), "%s: op %s not available on %s", c->label, dc_op_name(c->op),
                  dc_backend_device_name(cl));
    size_t total;
    float *host = dc_case_host_data(c, 0xC0FFEE + _i, &total);
    ck_assert_ptr_nonnull(host);
    float *want = run_on(ref, c, host, total);
    float *got = run_on(cl, c, host, total);
    char msg[256];
    const char *bad = check_layout(c, host, want, msg, sizeof msg);
    ck_assert_msg(bad == NULL, "%s: ref: %s", c->label, bad);
    bad = check_layout(c, host, got, msg, sizeof msg);
    ck_assert_msg(bad == NULL, "%s: %s: %s", c->label, dc_backend_device_name(cl), bad);
    size_t pos = DC_CASE_GUARD;
    for (size_t i = 0; i < c->nt; ++i) {
        const struct dc_tensor_desc *t = &c->t[i];
        if (t->written && !t->scratch) {
            for (size_t j = 0; j < t->n; ++j) {
                ck_assert_msg(isfinite(want[pos + j]), "%s: ref %s[%zu] = %g is not finite", c->label, t->name, j,
                              (double)want[pos + j]);
                ck_assert_msg(isfinite(got[pos + j]), "%s: %s[%zu] = %g is not finite (ref %g)", c->label, t->name, j,
                              (double)got[pos + j], (double)want[pos + j]);
            }
            double e = dc_nmse(got + pos, want + pos, t->n);
            ck_assert_msg(e <= c->max_nmse, "%s: %s: nmse %.3g > %.3g", c->label, t->name, e, (double)c->max_nmse);
        }
        pos += t->n + DC_CASE_GUARD;
    }
    free(host);
    free(want);
    free(got);
    dc_backend_close(cl);
    dc_backend_close(ref);
}
END_TEST

START_TEST(every_op_has_a_case) {
    for (int op = 0; op < DC_OP_COUNT; ++op) {
        size_t have = 0;
        for (size_t i = 0; i < ncases; ++i) have += cases[i].op == (enum dc_op)op;
        ck_assert_msg(have > 0, "op %s has no parity case", dc_op_name((enum dc_op)op));
    }
}
END_TEST

/* DECOCL_TEST_OPS=a,b keeps only the cases of those ops (the coverage check is then skipped). */
static size_t keep_selected_ops(struct dc_op_case *v, size_t n, const char *list) {
    size_t kept = 0;
    for (size_t i = 0; i < n; ++i) {
        const char *name = dc_op_name(v[i].op), *p = list;
        size_t len = strlen(name);
        bool hit = false;
        while (*p && !hit) {
            size_t span = strcspn(p, ",");
            hit = span == len && strncmp(p, name, len) == 0;
            p += span + (p[span] == ',');
        }
        if (hit) v[kept++] = v[i];
    }
    return kept;
}

int main(void) {
    ncases = dc_op_cases(&cases, false);
    const char *only = getenv("DECOCL_TEST_OPS");
    if (only && *only) ncases = keep_selected_ops(cases, ncases, only);
    Suite *s = suite_create("ops_parity");
    TCase *tc = tcase_create("parity");
    tcase_set_timeout(tc, 300); /* a cold PoCL/CLBlast compile can take tens of seconds */
    tcase_add_loop_test(tc, op_matches_ref, 0, (int)ncases);
    suite_add_tcase(s, tc);
    if (!(only && *only)) {
        TCase *cov = tcase_create("coverage");
        tcase_add_test(cov, every_op_has_a_case);
        suite_add_tcase(s, cov);
    }
    int rc = test_run_suite(s, 1);
    free(cases);
    return rc;
}
