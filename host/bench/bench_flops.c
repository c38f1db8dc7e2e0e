/* The analytic FLOP count of a training step's matrix products (bench/README.md "FLOP
 * count"). It follows the model's composition (model/decalign.c, model/transformer.c),
 * and the bench_step test checks it against the GEMM FLOPs the backend counts. */
#include "bench/bench_step.h"

/* 2 m n k: one (m, k) x (k, n) product. */
static double mm(double m, double n, double k) { return 2.0 * m * n * k; }

void dc_bench_step_flops(const struct dc_model_config *cfg, const struct dc_model_dims *dims, size_t B,
                         const size_t T[3], struct dc_step_flops *out) {
    const double d = (double)dims->d, p = (double)dims->pde_dim, O = (double)dims->out_dim, b = (double)B;
    double Tp[3] = {0, 0, 0}, fwd = 0, input_side = 0;
    bool skip[3];
    size_t nact = 0;
    for (size_t i = 0; i < 3; ++i) {
        if (!cfg->active[i]) continue;
        nact++;
        skip[i] = dims->feat[i] == dims->d; /* the projection is the identity */
        Tp[i] = skip[i] ? (double)T[i] : (double)(T[i] - dims->kernel[i] + 1);
    }
    for (size_t i = 0; i < 3; ++i) {
        if (!cfg->active[i]) continue;
        double rows = b * Tp[i];
        /* projection: a Conv1d as (B T', D k) x (D k, d) */
        double proj = skip[i] ? 0 : mm(rows, d, (double)dims->feat[i] * (double)dims->kernel[i]);
        double enc = 2 * mm(rows, d, d); /* unique and common encoders */
        fwd += proj + enc;
        /* the product whose input is the model input forms no input gradient */
        input_side += skip[i] ? enc : proj;
        /* transformer: queries T', keys S (the other active modalities, else itself) */
        double S = 0;
        if (cfg->use_cross_modal_attention)
            for (size_t o = 0; o < 3; ++o)
                if (o != i && cfg->active[o]) S += Tp[o];
        if (S == 0) S = Tp[i];
        double layer = mm(rows, d, d)            /* q */
                       + 2 * mm(b * S, d, d)     /* k, v */
                       + 2 * b * mm(Tp[i], S, d) /* scores q k^T and P v, all heads */
                       + mm(rows, d, d)          /* out_proj */
                       + mm(rows, 4 * d, d)      /* fc1 */
                       + mm(rows, d, 4 * d);     /* fc2 */
        fwd += (double)dims->nlevels * layer;
    }
    if (cfg->beta != 0 && nact == 3) fwd += 3 * (mm(b, d, d) + mm(b, p, d)); /* pde MLPs */
    fwd += mm(b, O, 6 * d);                                                 /* output layer */
    out->forward = fwd;
    /* every product has a weight gradient and an input gradient of its own size */
    out->backward = 2 * fwd - input_side;
}
