/* Op cases for the elementwise ops, reductions and Adam. */
#include "bench/op_cases.h"

static dc_status run_bias_add(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_bias_add(be, t[0], t[1], c->p[0], c->p[1]);
}
static dc_status run_bias_grad(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_bias_grad(be, t[0], t[1], c->p[0], c->p[1]);
}
static dc_status run_relu_fwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_relu_fwd(be, t[0], t[1], c->p[0]);
}
static dc_status run_relu_bwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_relu_bwd(be, t[0], t[1], t[2], c->p[0]);
}
static struct dc_dropout case_dropout(const struct dc_op_case *c) {
    return (struct dc_dropout){.p = c->f[0], .seed = 0x5EED0000DEC0C1ull + c->p[1], .step = c->p[2] * 0x100000001ull,
                               .site = (uint32_t)c->p[3]};
}
static dc_status run_dropout_fwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    struct dc_dropout d = case_dropout(c);
    return dc_dropout_fwd(be, t[0], t[1], c->p[0], &d);
}
static dc_status run_dropout_bwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    struct dc_dropout d = case_dropout(c);
    return dc_dropout_bwd(be, t[0], t[1], c->p[0], &d);
}
static dc_status run_scale(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_scale(be, t[0], c->f[0], c->p[0]);
}
static dc_status run_axpy(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_axpy(be, t[0], c->f[0], t[1], c->p[0]);
}
static dc_status run_add(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_add(be, t[0], t[1], t[2], c->p[0]);
}
static dc_status run_sum(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_sum(be, t[0], t[1], c->p[0], c->f[0]);
}
static dc_status run_norm2(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_norm2(be, t[0], t[1], c->p[0]);
}
/* tensors: param, m, v, grad, norm, active */
static dc_status run_adam(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    struct dc_adam a = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.005,
                        .clip = c->f[0], .step = c->p[1]};
    dc_view active = c->p[2] ? t[5] : (dc_view){0};
    /* the norm is computed on the device first, as in a training step */
    dc_status st = a.clip > 0.0f ? dc_norm2(be, t[4], t[3], c->p[0]) : DC_OK;
    return st != DC_OK ? st : dc_adam(be, t[0], t[1], t[2], t[3], t[4], active, c->p[0], &a);
}

void dc_cases_elementwise(struct dc_case_list *l, bool bench) {
    static const size_t test_n[] = {1, 7, 37, 65, 4099};
    static const size_t bench_n[] = {102400, 409600};
    const size_t *ns = bench ? bench_n : test_n;
    size_t nn = bench ? 2 : 5;
    struct dc_op_case *c;

    static const size_t test_rc[][2] = {{1, 1}, {7, 37}, {65, 7}, {37, 65}};
    static const size_t bench_rc[][2] = {{1600, 64}, {1600, 256}};
    for (size_t i = 0; i < (bench ? 2u : 4u); ++i) {
        size_t r = bench ? bench_rc[i][0] : test_rc[i][0], k = bench ? bench_rc[i][1] : test_rc[i][1];
        c = dc_case_add(l, DC_OP_bias_add, run_bias_add, 1e-12f, "bias_add rows=%zu cols=%zu", r, k);
        c->p[0] = r, c->p[1] = k;
        dc_case_tensor(c, "x", r * k, DC_FILL_UNIFORM, -1, 1, true);
        dc_case_tensor(c, "bias", k, DC_FILL_UNIFORM, -1, 1, false);
        c = dc_case_add(l, DC_OP_bias_grad, run_bias_grad, 1e-10f, "bias_grad rows=%zu cols=%zu", r, k);
        c->p[0] = r, c->p[1] = k;
        dc_case_tensor(c, "dbias", k, DC_FILL_UNIFORM, -1, 1, true);
        dc_case_tensor(c, "dy", r * k, DC_FILL_UNIFORM, -1, 1, false);
    }
    for (size_t i = 0; i < nn; ++i) {
        size_t n = ns[i];
        c = dc_case_add(l, DC_OP_relu_fwd, run_relu_fwd, 0, "relu_fwd n=%zu", n);
        c->p[0] = n;
        dc_case_tensor(c, "out", n, DC_FILL_NAN, 0, 0, true);
        dc_case_tensor(c, "in", n, DC_FILL_UNIFORM, -1, 1, false);
        c = dc_case_add(l, DC_OP_relu_bwd, run_relu_bwd, 0, "relu_bwd n=%zu", n);
        c->p[0] = n;
        dc_case_tensor(c, "din", n, DC_FILL_UNIFORM, -1, 1, true);
        dc_case_tensor(c, "dout", n, DC_FILL_UNIFORM, -1, 1, false);
        dc_case_tensor(c, "out", n, DC_FILL_UNIFORM, -1, 1, false);
        static const float ps[] = {0.1f, 0.5f, 0.0f, 1.0f};
        for (size_t j = 0; j < (bench ? 1u : 4u); ++j) {
            /* dropout must be bit-identical: tolerance 0 */
            c = dc_case_add(l, DC_OP_dropout_fwd, run_dropout_fwd, 0, "dropout_fwd n=%zu p=%g", n, (double)ps[j]);
            c->p[0] = n, c->p[1] = i, c->p[2] = j + 1, c->p[3] = 7 + j, c->f[0] = ps[j];
            dc_case_tensor(c, "out", n, DC_FILL_NAN, 0, 0, true);
            dc_case_tensor(c, "in", n, DC_FILL_UNIFORM, -1, 1, false);
            c = dc_case_add(l, DC_OP_dropout_bwd, run_dropout_bwd, 0, "dropout_bwd n=%zu p=%g", n, (double)ps[j]);
            c->p[0] = n, c->p[1] = i, c->p[2] = j + 1, c->p[3] = 7 + j, c->f[0] = ps[j];
            dc_case_tensor(c, "din", n, DC_FILL_UNIFORM, -1, 1, true);
            dc_case_tensor(c, "dout", n, DC_FILL_UNIFORM, -1, 1, false);
        }
        c = dc_case_add(l, DC_OP_scale, run_scale, 0, "scale n=%zu", n);
        c->p[0] = n, c->f[0] = -0.37f;
        dc_case_tensor(c, "x", n, DC_FILL_UNIFORM, -1, 1, true);
        c = dc_case_add(l, DC_OP_axpy, run_axpy, 1e-12f, "axpy n=%zu", n);
        c->p[0] = n, c->f[0] = 0.61f;
        dc_case_tensor(c, "y", n, DC_FILL_UNIFORM, -1, 1, true);
        dc_case_tensor(c, "x", n, DC_FILL_UNIFORM, -1, 1, false);
        c = dc_case_add(l, DC_OP_add, run_add, 0, "add n=%zu", n);
        c->p[0] = n;
        dc_case_tensor(c, "out", n, DC_FILL_NAN, 0, 0, true);
        dc_case_tensor(c, "a", n, DC_FILL_UNIFORM, -1, 1, false);
        dc_case_tensor(c, "b", n, DC_FILL_UNIFORM, -1, 1, false);
        c = dc_case_add(l, DC_OP_sum, run_sum, 1e-10f, "sum n=%zu", n);
        c->p[0] = n, c->f[0] = 1.0f / (float)n;
        dc_case_tensor(c, "out", 1, DC_FILL_NAN, 0, 0, true);
        dc_case_tensor(c, "in", n, DC_FILL_UNIFORM, -0.5f, 1, false);
        c = dc_case_add(l, DC_OP_norm2, run_norm2, 1e-10f, "norm2 n=%zu", n);
        c->p[0] = n;
        dc_case_tensor(c, "out", 1, DC_FILL_NAN, 0, 0, true);
        dc_case_tensor(c, "in", n, DC_FILL_UNIFORM, -1, 1, false);
        /* Adam: no clipping, and clipping active (norm of n uniform(-1,1) values > 0.05) with half the chunks frozen */
        for (int variant = 0; variant < 2; ++variant) {
            c = dc_case_add(l, DC_OP_adam, run_adam, 1e-10f, "adam n=%zu %s", n, variant ? "clip+frozen" : "plain");
            c->p[0] = n, c->p[1] = variant ? 3 : 1, c->p[2] = (size_t)variant, c->f[0] = variant ? 0.05f : 0.0f;
            dc_case_tensor(c, "param", n, DC_FILL_UNIFORM, -1, 1, true);
            dc_case_tensor(c, "m", n, DC_FILL_UNIFORM, -0.01f, 0.01f, true);
            dc_case_tensor(c, "v", n, DC_FILL_UNIFORM, 0, 1e-4f, true);
            dc_case_tensor(c, "grad", n, DC_FILL_UNIFORM, -1, 1, false);
            dc_case_tensor(c, "norm", 1, DC_FILL_CONST, 0, 0, true);
            dc_case_tensor(c, "active", (n + DC_ADAM_CHUNK - 1) / DC_ADAM_CHUNK, DC_FILL_BINARY, 0, 1, false);
        }
    }
}
