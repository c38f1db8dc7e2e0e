/* Op cases for GEMM: every transpose combination on odd shapes, padded leading
 * dimensions, alpha/beta, beta == 0 over NaN, k == 0, strided batches; bench: the
 * model's shapes. p[] = ta, tb, m, n, k, lda, ldb, ldc, stride_a, stride_b,
 * stride_c, batch; f[] = alpha, beta; tensors c (written), a, b, each covering the
 * whole batched operand. */
#include "bench/op_cases.h"

static struct dc_gemm_shape case_shape(const struct dc_op_case *c) {
    return (struct dc_gemm_shape){.ta = c->p[0] != 0, .tb = c->p[1] != 0, .m = c->p[2], .n = c->p[3], .k = c->p[4],
                                  .lda = c->p[5], .ldb = c->p[6], .ldc = c->p[7], .stride_a = c->p[8],
                                  .stride_b = c->p[9], .stride_c = c->p[10], .batch = c->p[11]};
}

static dc_status run_gemm(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    struct dc_gemm_shape s = case_shape(c);
    return dc_gemm_ex(be, &s, c->f[0], t[1], t[2], c->f[1], t[0]);
}

static size_t extent(size_t rows, size_t cols, size_t ld) { return rows && cols ? (rows - 1) * ld + cols : 0; }
static size_t batched(size_t batch, size_t stride, size_t one) { return one ? (batch - 1) * stride + one : 0; }

struct gemm_spec {
    bool ta, tb;
    size_t m, n, k;
    size_t pad_a, pad_b, pad_c;    /* leading dimension = minimum + pad */
    size_t batch, gap_a, gap_b, gap_c; /* stride = matrix extent + gap (batch > 1) */
    float alpha, beta;
    float max_nmse;
};

static void add_gemm(struct dc_case_list *l, const struct gemm_spec *g, bool bench) {
    size_t a_rows = g->ta ? g->k : g->m, a_cols = g->ta ? g->m : g->k;
    size_t b_rows = g->tb ? g->n : g->k, b_cols = g->tb ? g->k : g->n;
    size_t lda = a_cols + g->pad_a, ldb = b_cols + g->pad_b, ldc = g->n + g->pad_c;
    size_t batch = g->batch ? g->batch : 1;
    size_t ea = extent(a_rows, a_cols, lda), eb = extent(b_rows, b_cols, ldb), ec = extent(g->m, g->n, ldc);
    size_t sa = batch > 1 ? ea + g->gap_a : 0, sb = batch > 1 ? eb + g->gap_b : 0, sc = batch > 1 ? ec + g->gap_c : 0;
    char extra[96] = "";
    int len = 0;
    if (g->pad_a || g->pad_b || g->pad_c)
        len += snprintf(extra + len, sizeof extra - (size_t)len, " ld=%zu,%zu,%zu", lda, ldb, ldc);
    if (batch > 1) len += snprintf(extra + len, sizeof extra - (size_t)len, " batch=%zu", batch);
    if (g->alpha != 1.0f || g->beta != 0.0f)
        snprintf(extra + len, sizeof extra - (size_t)len, " a=%g b=%g", (double)g->alpha, (double)g->beta);
    struct dc_op_case *c = dc_case_add(l, DC_OP_gemm, run_gemm, g->max_nmse, "gemm %c%c m=%zu n=%zu k=%zu%s",
                                       g->ta ? 't' : 'n', g->tb ? 't' : 'n', g->m, g->n, g->k, extra);
    size_t p[12] = {g->ta, g->tb, g->m, g->n, g->k, lda, ldb, ldc, sa, sb, sc, batch};
    for (int i = 0; i < 12; ++i) c->p[i] = p[i];
    c->f[0] = g->alpha, c->f[1] = g->beta;
    /* beta == 0 must not read C: NaN there, unless C has gaps (ld or stride) that must stay finite */
    bool c_dense = ldc == g->n && (batch == 1 || sc == ec);
    bool nan_c = g->beta == 0.0f && c_dense && !bench;
    dc_case_tensor(c, "c", batched(batch, sc, ec), nan_c ? DC_FILL_NAN : DC_FILL_UNIFORM, -1, 1, true);
    dc_case_tensor(c, "a", g->k ? batched(batch, sa, ea) : 0, DC_FILL_UNIFORM, -1, 1, false);
    dc_case_tensor(c, "b", g->k ? batched(batch, sb, eb) : 0, DC_FILL_UNIFORM, -1, 1, false);
    c->flops = 2.0 * (double)g->m * (double)g->n * (double)g->k * (double)batch;
}

void dc_cases_gemm(struct dc_case_list *l, bool bench) {
    if (bench) {
        /* the model: projections and the MLP (forward NT, dX NN, dW TN), attention heads */
        static const struct gemm_spec model[] = {
            {.m = 1600, .n = 64, .k = 64},
            {.m = 1600, .n = 256, .k = 64},
            {.m = 1600, .n = 64, .k = 256},
            {.tb = true, .m = 1600, .n = 192, .k = 64},
            {.tb = true, .m = 1600, .n = 256, .k = 64},
            {.tb = true, .m = 1600, .n = 64, .k = 256},
            {.ta = true, .m = 64, .n = 64, .k = 1600},
            {.ta = true, .m = 256, .n = 64, .k = 1600},
            {.tb = true, .m = 50, .n = 50, .k = 8, .batch = 256},
            {.m = 50, .n = 8, .k = 50, .batch = 256},
            {.ta = true, .m = 50, .n = 8, .k = 50, .batch = 256},
        };
        for (size_t i = 0; i < sizeof model / sizeof model[0]; ++i) {
            struct gemm_spec g = model[i];
            g.alpha = 1.0f;
            g.max_nmse = 1e-9f;
            add_gemm(l, &g, true);
        }
        return;
    }
    /* odd shapes on every transpose combination: partial tiles in every direction,
     * vectors of 16, 8, 4 and gathered scalars, k = 1, a single element, and k >= 128
     * (several of gemm_nt's panels on a CPU, its dot-product mode with m < 32) with a
     * k % 8 tail */
    static const size_t shapes[][3] = {{1, 1, 1},    {7, 37, 65},  {65, 7, 37}, {37, 65, 7},
                                       {65, 70, 33}, {2, 3, 5},    {37, 65, 1}, {33, 16, 17},
                                       {12, 8, 70},  {6, 33, 9},   {37, 30, 131}, {5, 3, 200}};
    for (int t = 0; t < 4; ++t) {
        bool ta = t & 2, tb = t & 1;
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; ++i)
            add_gemm(l,
                     &(struct gemm_spec){.ta = ta, .tb = tb, .m = shapes[i][0], .n = shapes[i][1], .k = shapes[i][2],
                                         .alpha = 1.0f, .max_nmse = 1e-10f},
                     false);
        /* padded leading dimensions, alpha and beta (C keeps its gaps) */
        add_gemm(l,
                 &(struct gemm_spec){.ta = ta, .tb = tb, .m = 37, .n = 65, .k = 33, .pad_a = 3, .pad_b = 5, .pad_c = 2,
                                     .alpha = -0.75f, .beta = 0.5f, .max_nmse = 1e-10f},
                 false);
        add_gemm(l,
                 &(struct gemm_spec){.ta = ta, .tb = tb, .m = 19, .n = 21, .k = 40, .pad_a = 1, .pad_b = 2, .pad_c = 7,
                                     .alpha = 1.5f, .beta = 0.0f, .max_nmse = 1e-10f},
                 false);
        /* strided batches, strides larger than the matrices */
        add_gemm(l,
                 &(struct gemm_spec){.ta = ta, .tb = tb, .m = 37, .n = 20, .k = 13, .pad_a = 2, .pad_c = 1, .batch = 3,
                                     .gap_a = 5, .gap_b = 3, .gap_c = 4, .alpha = 0.5f, .beta = -1.25f,
                                     .max_nmse = 1e-10f},
                 false);
        add_gemm(l,
                 &(struct gemm_spec){.ta = ta, .tb = tb, .m = 9, .n = 17, .k = 140, .batch = 4, .gap_a = 7,
                                     .gap_b = 1, .alpha = 1.0f, .max_nmse = 1e-10f},
                 false);
    }
    /* the attention heads: scores S = Q K^T, O = P V, dV = P^T dO, with a row
     * stride of the fused projection (ld 24) in one case */
    add_gemm(l, &(struct gemm_spec){.tb = true, .m = 50, .n = 50, .k = 8, .batch = 4, .gap_a = 8, .gap_b = 16,
                                    .alpha = 0.35f, .max_nmse = 1e-10f},
             false);
    add_gemm(l, &(struct gemm_spec){.tb = true, .m = 50, .n = 50, .k = 8, .pad_a = 16, .pad_b = 16, .batch = 3,
                                    .gap_a = 8, .gap_b = 8, .alpha = 1.0f, .max_nmse = 1e-10f},
             false);
    add_gemm(l, &(struct gemm_spec){.m = 50, .n = 8, .k = 50, .batch = 5, .gap_a = 10, .gap_b = 8, .gap_c = 0,
                                    .alpha = 1.0f, .max_nmse = 1e-10f},
             false);
    add_gemm(l, &(struct gemm_spec){.ta = true, .m = 50, .n = 8, .k = 50, .batch = 3, .gap_a = 10, .gap_b = 8,
                                    .gap_c = 4, .alpha = 1.0f, .beta = 1.0f, .max_nmse = 1e-10f},
             false);
    /* gemm_nt's strategies with beta: several k panels (m >= 32 on a CPU), and the
     * register-transposed and dot-product tiles (m < 32) */
    add_gemm(l, &(struct gemm_spec){.tb = true, .m = 40, .n = 21, .k = 150, .pad_a = 3, .pad_b = 1, .pad_c = 2,
                                    .alpha = 0.5f, .beta = -0.5f, .max_nmse = 1e-10f},
             false);
    add_gemm(l, &(struct gemm_spec){.tb = true, .m = 20, .n = 13, .k = 150, .pad_a = 2, .pad_c = 3, .batch = 2,
                                    .gap_a = 1, .gap_b = 2, .gap_c = 3, .alpha = 1.0f, .beta = 0.75f,
                                    .max_nmse = 1e-10f},
             false);
    add_gemm(l, &(struct gemm_spec){.tb = true, .m = 20, .n = 21, .k = 40, .pad_b = 4, .batch = 3, .gap_c = 5,
                                    .alpha = -1.0f, .beta = 0.25f, .max_nmse = 1e-10f},
             false);
    /* k == 0: C = beta * C, and zeroed (not read) for beta == 0 */
    add_gemm(l, &(struct gemm_spec){.m = 7, .n = 9, .k = 0, .pad_c = 3, .alpha = 1.0f, .beta = 0.5f, .max_nmse = 0},
             false);
    add_gemm(l, &(struct gemm_spec){.tb = true, .m = 7, .n = 9, .k = 0, .alpha = 1.0f, .beta = 0.0f, .max_nmse = 0},
             false);
    /* long k (the weight gradient over B*T = 1600 rows), and a model-sized projection */
    add_gemm(l, &(struct gemm_spec){.ta = true, .m = 64, .n = 48, .k = 1600, .alpha = 1.0f, .max_nmse = 1e-9f}, false);
    add_gemm(l, &(struct gemm_spec){.tb = true, .m = 160, .n = 192, .k = 64, .alpha = 1.0f, .max_nmse = 1e-10f},
             false);
}
