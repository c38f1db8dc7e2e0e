/* Op cases for the strided copies and DecAlign's small loss terms: odd shapes and
 * the label patterns the oracles distinguish (parity), model-sized shapes (bench).
 * Gradient buffers mostly start at 0, so the parity error measures the gradient
 * itself, not a pre-fill that would dwarf it; one case per backward starts from
 * random values (the add). */
#include "bench/op_cases.h"

/* Parity tolerances: nmse against the double oracle. On PoCL the worst cases measured
 * 7.5e-14 (losses), 3.4e-13 (gradients) and 1.1e-12 (homo_stats_bwd, whose gradient
 * sums p terms of products of covariances); these keep about 100x of margin for other
 * devices' reduction orders. Copies are exact; axpy2d may differ by a fused multiply-add. */
#define TOL_COPY 0.0f
#define TOL_AXPY 1e-13f
#define TOL_LOSS 1e-11f
#define TOL_GRAD 1e-11f
#define TOL_STATS_GRAD 1e-10f

/* ---- copy2d / axpy2d: tensors dst, src; p: rows, cols, ld_dst, ld_src; f: alpha ---- */

static dc_status run_copy2d(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_copy2d(be, t[0], c->p[2], t[1], c->p[3], c->p[0], c->p[1]);
}
static dc_status run_axpy2d(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_axpy2d(be, t[0], c->p[2], c->f[0], t[1], c->p[3], c->p[0], c->p[1]);
}

static size_t extent(size_t rows, size_t cols, size_t ld) { return (rows - 1) * ld + cols; }

static void cases_strided(struct dc_case_list *l, bool bench) {
    /* rows, cols, ld_dst, ld_src: a block into a wider matrix (the fusion vector, the context) and out of one */
    static const size_t test_s[][4] = {{1, 1, 1, 1}, {7, 37, 45, 40}, {33, 64, 384, 64}, {5, 3, 3, 7}, {2, 65, 65, 65}};
    static const size_t bench_s[][4] = {{32, 64, 384, 64}, {1600, 64, 192, 64}, {1600, 64, 64, 192}};
    const size_t(*v)[4] = bench ? bench_s : test_s;
    size_t n = bench ? sizeof bench_s / sizeof bench_s[0] : sizeof test_s / sizeof test_s[0];
    for (size_t i = 0; i < n; ++i) {
        size_t r = v[i][0], k = v[i][1], ldd = v[i][2], lds = v[i][3];
        for (int axpy = 0; axpy < 2; ++axpy) {
            struct dc_op_case *c = axpy ? dc_case_add(l, DC_OP_axpy2d, run_axpy2d, TOL_AXPY,
                                                      "axpy2d rows=%zu cols=%zu ld=%zu/%zu", r, k, ldd, lds)
                                        : dc_case_add(l, DC_OP_copy2d, run_copy2d, TOL_COPY,
                                                      "copy2d rows=%zu cols=%zu ld=%zu/%zu", r, k, ldd, lds);
            c->p[0] = r, c->p[1] = k, c->p[2] = ldd, c->p[3] = lds;
            c->f[0] = -0.7f;
            /* the gaps between rows of dst must keep their values: filled, compared */
            dc_case_tensor(c, "dst", extent(r, k, ldd), DC_FILL_UNIFORM, -1, 1, true);
            dc_case_tensor(c, "src", extent(r, k, lds), DC_FILL_UNIFORM, -1, 1, false);
        }
    }
}

/* ---- decoupling: fwd tensors loss, s, c; bwd ds, dc, s, c; p: B, L, zero row of s, of c; f: dloss ---- */

static dc_status run_decouple_fwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_decouple_fwd(be, t[0], t[1], t[2], c->p[0], c->p[1]);
}
static dc_status run_decouple_bwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_decouple_bwd(be, t[0], t[1], t[2], t[3], c->p[0], c->p[1], c->f[0]);
}

struct decouple_shape {
    size_t B, L;
    bool zero_s, zero_c, prefill;
};

static void cases_decouple(struct dc_case_list *l, bool bench) {
    static const struct decouple_shape test_s[] = {
        {1, 5, false, false, false},    {2, 7, false, false, true},
        {7, 37, false, false, false},   {33, 129, false, false, false},
        {5, 3201, false, false, false}, {7, 37, true, false, false}, /* row 0 of s is zero: the eps clamp */
        {7, 37, true, true, false},                                  /* row 0 of both */
    };
    /* mosi (B 32, T' 50, d 64) and mosei (B 128, T' 46) */
    static const struct decouple_shape bench_s[] = {{32, 3200, false, false, false}, {128, 2944, false, false, false}};
    const struct decouple_shape *v = bench ? bench_s : test_s;
    size_t n = bench ? sizeof bench_s / sizeof bench_s[0] : sizeof test_s / sizeof test_s[0];
    for (size_t i = 0; i < n; ++i) {
        const struct decouple_shape *s = &v[i];
        const char *tag = s->zero_s ? (s->zero_c ? " zero-rows" : " zero-s-row") : "";
        for (int bwd = 0; bwd < 2; ++bwd) {
            struct dc_op_case *c =
                bwd ? dc_case_add(l, DC_OP_decouple_bwd, run_decouple_bwd, TOL_GRAD, "decouple_bwd B=%zu L=%zu%s%s",
                                  s->B, s->L, tag, s->prefill ? " prefilled" : "")
                    : dc_case_add(l, DC_OP_decouple_fwd, run_decouple_fwd, TOL_LOSS, "decouple_fwd B=%zu L=%zu%s", s->B,
                                  s->L, tag);
            c->p[0] = s->B, c->p[1] = s->L;
            c->f[0] = 0.7f;
            size_t n_all = s->B * s->L;
            if (bwd) {
                dc_case_tensor(c, "ds", n_all, s->prefill ? DC_FILL_UNIFORM : DC_FILL_CONST, s->prefill ? -1 : 0, 1,
                               true);
                dc_case_tensor(c, "dc", n_all, s->prefill ? DC_FILL_UNIFORM : DC_FILL_CONST, s->prefill ? -1 : 0, 1,
                               true);
            } else {
                dc_case_tensor(c, "loss", 1, DC_FILL_NAN, 0, 0, true);
            }
            /* a shared offset makes s and c correlated: cosines away from 0 */
            dc_case_tensor(c, "s", n_all, DC_FILL_UNIFORM, -0.5f, 1, false);
            c->t[c->nt - 1].zero_head = s->zero_s ? s->L : 0;
            dc_case_tensor(c, "c", n_all, DC_FILL_UNIFORM, -0.5f, 1, false);
            c->t[c->nt - 1].zero_head = s->zero_c ? s->L : 0;
        }
    }
}

/* ---- homogeneity: fwd loss, zl, za, zv; bwd dzl, dza, dzv, zl, za, zv; p: B, p; f: dloss, bandwidth ---- */

static dc_status run_stats_fwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_homo_stats_fwd(be, t[0], t[1], t[2], t[3], c->p[0], c->p[1]);
}
static dc_status run_stats_bwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_homo_stats_bwd(be, t[0], t[1], t[2], t[3], t[4], t[5], c->p[0], c->p[1], c->f[0]);
}
static dc_status run_mmd_fwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_homo_mmd_fwd(be, t[0], t[1], t[2], t[3], c->p[0], c->p[1], c->f[1]);
}
static dc_status run_mmd_bwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_homo_mmd_bwd(be, t[0], t[1], t[2], t[3], t[4], t[5], c->p[0], c->p[1], c->f[1], c->f[0]);
}

struct homo_shape {
    size_t B, p;
    float bandwidth;
    bool prefill;
};

static void homo_tensors(struct dc_op_case *c, const struct homo_shape *s, bool bwd) {
    size_t n = s->B * s->p;
    if (bwd) {
        static const char *const names[3] = {"dzl", "dza", "dzv"};
        for (int m = 0; m < 3; ++m)
            dc_case_tensor(c, names[m], n, s->prefill ? DC_FILL_UNIFORM : DC_FILL_CONST, s->prefill ? -1 : 0, 1, true);
    } else {
        dc_case_tensor(c, "loss", 1, DC_FILL_NAN, 0, 0, true);
    }
    /* different ranges: the three distributions differ in mean, spread and skew */
    dc_case_tensor(c, "zl", n, DC_FILL_UNIFORM, -1, 1, false);
    dc_case_tensor(c, "za", n, DC_FILL_UNIFORM, -0.5f, 1.5f, false);
    dc_case_tensor(c, "zv", n, DC_FILL_UNIFORM, -2, 0.5f, false);
}

static void cases_homo(struct dc_case_list *l, bool bench) {
    static const struct homo_shape test_s[] = {
        {1, 5, 1.0f, false}, {2, 7, 1.0f, true}, {7, 13, 4.0f, false}, {33, 31, 1.0f, false}, {16, 64, 8.0f, false},
    };
    static const struct homo_shape bench_s[] = {{32, 64, 1.0f, false}, {128, 64, 1.0f, false}, {32, 128, 1.0f, false}};
    const struct homo_shape *v = bench ? bench_s : test_s;
    size_t n = bench ? sizeof bench_s / sizeof bench_s[0] : sizeof test_s / sizeof test_s[0];
    for (size_t i = 0; i < n; ++i) {
        const struct homo_shape *s = &v[i];
        const char *pre = s->prefill ? " prefilled" : "";
        struct dc_op_case *c;
        c = dc_case_add(l, DC_OP_homo_stats_fwd, run_stats_fwd, TOL_LOSS, "homo_stats_fwd B=%zu p=%zu", s->B, s->p);
        c->p[0] = s->B, c->p[1] = s->p, c->f[0] = 0.7f, c->f[1] = s->bandwidth;
        homo_tensors(c, s, false);
        c = dc_case_add(l, DC_OP_homo_stats_bwd, run_stats_bwd, TOL_STATS_GRAD, "homo_stats_bwd B=%zu p=%zu%s", s->B,
                        s->p, pre);
        c->p[0] = s->B, c->p[1] = s->p, c->f[0] = 0.7f, c->f[1] = s->bandwidth;
        homo_tensors(c, s, true);
        c = dc_case_add(l, DC_OP_homo_mmd_fwd, run_mmd_fwd, TOL_LOSS, "homo_mmd_fwd B=%zu p=%zu bw=%g", s->B, s->p,
                        (double)s->bandwidth);
        c->p[0] = s->B, c->p[1] = s->p, c->f[0] = 0.7f, c->f[1] = s->bandwidth;
        homo_tensors(c, s, false);
        c = dc_case_add(l, DC_OP_homo_mmd_bwd, run_mmd_bwd, TOL_GRAD, "homo_mmd_bwd B=%zu p=%zu bw=%g%s", s->B, s->p,
                        (double)s->bandwidth, pre);
        c->p[0] = s->B, c->p[1] = s->p, c->f[0] = 0.7f, c->f[1] = s->bandwidth;
        homo_tensors(c, s, true);
    }
}

/* ---- task losses: fwd loss, out, labels[, class_w]; bwd dout, out, labels[, class_w];
 *      p: B, O, kind, weighted; f: dloss, beta, binary_weight ---- */

static struct dc_task_loss task_of(const struct dc_op_case *c) {
    return (struct dc_task_loss){.kind = (enum dc_task_loss_kind)c->p[2], .beta = c->f[1], .binary_weight = c->f[2]};
}
static dc_status run_task_fwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    struct dc_task_loss k = task_of(c);
    return dc_task_loss_fwd(be, t[0], t[1], t[2], c->p[3] ? t[3] : (dc_view){0}, c->p[0], c->p[1], &k);
}
static dc_status run_task_bwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    struct dc_task_loss k = task_of(c);
    return dc_task_loss_bwd(be, t[0], t[1], t[2], c->p[3] ? t[3] : (dc_view){0}, c->p[0], c->p[1], &k, c->f[0]);
}

enum task_labels {
    LABELS_MIXED,   /* uniform in [-3, 3], the first two exactly 0 (no binary term) */
    LABELS_ZERO,    /* all 0: the binary term vanishes */
    LABELS_CLASSES, /* class ids 0, 1, ..., O-1, 0, ... */
};

struct task_shape {
    size_t B, O;
    enum dc_task_loss_kind kind;
    float beta, binary_weight;
    enum task_labels labels;
    bool weighted, prefill;
};

static void cases_task(struct dc_case_list *l, bool bench) {
    static const struct task_shape test_s[] = {
        {1, 1, DC_TASK_MSE, 0, 0.5f, LABELS_MIXED, false, false},
        {7, 1, DC_TASK_MSE, 0, 0.5f, LABELS_MIXED, false, true},
        {33, 1, DC_TASK_L1, 0, 0, LABELS_MIXED, false, false},
        {33, 1, DC_TASK_SMOOTH_L1, 1.0f, 1.0f, LABELS_MIXED, false, false}, /* |x| on both sides of beta */
        {7, 1, DC_TASK_SMOOTH_L1, 0.0f, 0.3f, LABELS_MIXED, false, false},  /* beta 0: L1 */
        {7, 1, DC_TASK_MSE, 0, 1.0f, LABELS_ZERO, false, false},
        {1, 2, DC_TASK_CE, 0, 0, LABELS_CLASSES, false, false},
        {7, 3, DC_TASK_CE, 0, 0, LABELS_CLASSES, false, true},
        {33, 5, DC_TASK_CE, 0, 0, LABELS_CLASSES, true, false},
        {2, 7, DC_TASK_CE, 0, 0, LABELS_CLASSES, true, false},
    };
    static const struct task_shape bench_s[] = {
        {32, 1, DC_TASK_SMOOTH_L1, 1.0f, 0.5f, LABELS_MIXED, false, false},
        {128, 1, DC_TASK_SMOOTH_L1, 1.0f, 0.5f, LABELS_MIXED, false, false},
        {32, 3, DC_TASK_CE, 0, 0, LABELS_CLASSES, true, false},
    };
    static const char *const kinds[] = {"mse", "l1", "smooth_l1", "ce"};
    static const char *const label_names[] = {"mixed", "zero", "classes"};
    const struct task_shape *v = bench ? bench_s : test_s;
    size_t n = bench ? sizeof bench_s / sizeof bench_s[0] : sizeof test_s / sizeof test_s[0];
    for (size_t i = 0; i < n; ++i) {
        const struct task_shape *s = &v[i];
        for (int bwd = 0; bwd < 2; ++bwd) {
            const char *fmt = "%s B=%zu O=%zu %s beta=%g bw=%g labels=%s%s%s";
            struct dc_op_case *c =
                dc_case_add(l, bwd ? DC_OP_task_loss_bwd : DC_OP_task_loss_fwd, bwd ? run_task_bwd : run_task_fwd,
                            bwd ? TOL_GRAD : TOL_LOSS, fmt, bwd ? "task_loss_bwd" : "task_loss_fwd", s->B, s->O,
                            kinds[s->kind], (double)s->beta, (double)s->binary_weight, label_names[s->labels],
                            s->weighted ? " weighted" : "", bwd && s->prefill ? " prefilled" : "");
            c->p[0] = s->B, c->p[1] = s->O, c->p[2] = (size_t)s->kind, c->p[3] = s->weighted;
            c->f[0] = 0.7f, c->f[1] = s->beta, c->f[2] = s->binary_weight;
            size_t n_out = s->B * s->O;
            if (bwd)
                dc_case_tensor(c, "dout", n_out, s->prefill ? DC_FILL_UNIFORM : DC_FILL_CONST, s->prefill ? -1 : 0, 1,
                               true);
            else
                dc_case_tensor(c, "loss", 1, DC_FILL_NAN, 0, 0, true);
            dc_case_tensor(c, "out", n_out, DC_FILL_UNIFORM, -3, 3, false);
            if (s->labels == LABELS_CLASSES) {
                dc_case_tensor(c, "labels", s->B, DC_FILL_CYCLE, 0, (float)(s->O - 1), false);
            } else if (s->labels == LABELS_ZERO) {
                dc_case_tensor(c, "labels", s->B, DC_FILL_CONST, 0, 0, false);
            } else {
                dc_case_tensor(c, "labels", s->B, DC_FILL_UNIFORM, -3, 3, false);
                c->t[c->nt - 1].zero_head = s->B > 2 ? 2 : 0;
            }
            if (s->weighted) dc_case_tensor(c, "class_w", s->O, DC_FILL_UNIFORM, 0.5f, 2, false);
        }
    }
}

/* ---- supervised contrastive: fwd loss, f, labels; bwd df, f, labels; p: B, q, classification; f: dloss, T ---- */

static dc_status run_supcon_fwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_supcon_fwd(be, t[0], t[1], t[2], c->p[0], c->p[1], c->p[2] != 0, c->f[1]);
}
static dc_status run_supcon_bwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    return dc_supcon_bwd(be, t[0], t[1], t[2], c->p[0], c->p[1], c->p[2] != 0, c->f[1], c->f[0]);
}

struct supcon_shape {
    size_t B, q;
    bool classification;
    size_t classes; /* classification: class ids cycle over 0 .. classes-1 */
    float temperature;
    bool zero_row, prefill;
};

static void cases_supcon(struct dc_case_list *l, bool bench) {
    static const struct supcon_shape test_s[] = {
        {1, 5, true, 1, 0.1f, false, false},  /* no positives: loss 0, no gradient */
        {2, 7, false, 0, 0.5f, false, true},  /* regression classes from labels in [-4, 4] */
        {7, 13, true, 5, 0.1f, false, false}, /* classes 2, 3, 4 have a single member */
        {33, 65, false, 0, 0.1f, false, false}, {33, 31, true, 10, 0.07f, false, false},
        {7, 13, true, 3, 0.2f, true, false},   /* row 0 is zero: the normalize eps */
        {100, 9, true, 7, 0.1f, false, false}, /* logits in several row blocks */
    };
    /* final_rep of width 6d = 384: mosi (B 32, regression), mosei (B 128), iemocap-like classes */
    static const struct supcon_shape bench_s[] = {{32, 384, false, 0, 0.1f, false, false},
                                                  {128, 384, false, 0, 0.1f, false, false},
                                                  {32, 384, true, 4, 0.1f, false, false}};
    const struct supcon_shape *v = bench ? bench_s : test_s;
    size_t n = bench ? sizeof bench_s / sizeof bench_s[0] : sizeof test_s / sizeof test_s[0];
    for (size_t i = 0; i < n; ++i) {
        const struct supcon_shape *s = &v[i];
        for (int bwd = 0; bwd < 2; ++bwd) {
            struct dc_op_case *c =
                dc_case_add(l, bwd ? DC_OP_supcon_bwd : DC_OP_supcon_fwd, bwd ? run_supcon_bwd : run_supcon_fwd,
                            bwd ? TOL_GRAD : TOL_LOSS, "%s B=%zu q=%zu %s T=%g%s%s", bwd ? "supcon_bwd" : "supcon_fwd",
                            s->B, s->q, s->classification ? "classification" : "regression", (double)s->temperature,
                            s->zero_row ? " zero-row" : "", bwd && s->prefill ? " prefilled" : "");
            c->p[0] = s->B, c->p[1] = s->q, c->p[2] = s->classification;
            c->f[0] = 0.7f, c->f[1] = s->temperature;
            if (bwd)
                dc_case_tensor(c, "df", s->B * s->q, s->prefill ? DC_FILL_UNIFORM : DC_FILL_CONST, s->prefill ? -1 : 0,
                               1, true);
            else
                dc_case_tensor(c, "loss", 1, DC_FILL_NAN, 0, 0, true);
            dc_case_tensor(c, "f", s->B * s->q, DC_FILL_UNIFORM, -1, 1, false);
            c->t[c->nt - 1].zero_head = s->zero_row ? s->q : 0;
            if (s->classification)
                dc_case_tensor(c, "labels", s->B, DC_FILL_CYCLE, 0, (float)(s->classes - 1), false);
            else
                dc_case_tensor(c, "labels", s->B, DC_FILL_UNIFORM, -4, 4, false);
        }
    }
}

void dc_cases_loss(struct dc_case_list *l, bool bench) {
    cases_strided(l, bench);
    cases_decouple(l, bench);
    cases_homo(l, bench);
    cases_task(l, bench);
    cases_supcon(l, bench);
}
