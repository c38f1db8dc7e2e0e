/* Reference fused attention (see dc_attention_fwd in ops.h). Per (b, head) it performs
 * the same float roundings as the unfused composition gemm -> softmax -> dropout -> gemm
 * on ref (double accumulation, one rounding per gemm element), so swapping one for the
 * other leaves every ref number unchanged. */
#include <math.h>
#include <stdlib.h>

#include "backend/ref/ref_internal.h"
#include "core/rng.h"

/* One (b, head): base pointers of its rows and columns. */
struct head {
    const float *q, *k, *v;
    float *probs; /* (T, S) */
    size_t row0;  /* index of probs[0][0] in the whole (B, H, T, S) tensor: the dropout index */
};

static struct head head_of(const struct dc_attention *a, dc_view probs, dc_view q, dc_view k, dc_view v, size_t b,
                           size_t hd) {
    size_t h = a->d / a->H;
    size_t row0 = (b * a->H + hd) * a->T * a->S;
    return (struct head){.q = ref_ptr(q) + b * a->T * a->ld_q + hd * h,
                         .k = ref_ptr(k) + b * a->S * a->ld_k + hd * h,
                         .v = ref_ptr(v) + b * a->S * a->ld_v + hd * h,
                         .probs = ref_ptr(probs) + row0,
                         .row0 = row0};
}

/* The dropout multiplier of probs element i (the whole tensor's index). */
static float drop_factor(const struct dc_dropout *d, uint32_t thr, float keep, size_t i) {
    if (d->p <= 0.0f) return 1.0f;
    return dc_dropout_word(d->seed, d->site, d->step, i) >= thr ? keep : 0.0f;
}

/* The multiplier a stored probability carries: probs keeps P (>= 0) with the sign bit
 * set where dropout dropped the element (see dc_attention_fwd). */
static float stored_factor(const struct dc_attention *a, float stored) {
    return signbit(stored) ? 0.0f : a->drop.p > 0.0f ? dc_dropout_scale(a->drop.p) : 1.0f;
}

/* Forward: pd (T, S) = drop(P) of one head, as dc_dropout_fwd computes it, and the
 * dropped elements' sign bits set in probs. */
static void head_dropped(const struct dc_attention *a, const struct head *hp, float *pd) {
    uint32_t thr = a->drop.p > 0.0f ? dc_dropout_threshold(a->drop.p) : 0;
    float keep = a->drop.p > 0.0f ? dc_dropout_scale(a->drop.p) : 1.0f;
    for (size_t i = 0; i < a->T * a->S; ++i) {
        float f = drop_factor(&a->drop, thr, keep, hp->row0 + i);
        pd[i] = hp->probs[i] * f;
        if (f == 0.0f) hp->probs[i] = -hp->probs[i];
    }
}

/* Backward: pd = drop(P) from the stored signs. */
static void head_stored_dropped(const struct dc_attention *a, const struct head *hp, float *pd) {
    for (size_t i = 0; i < a->T * a->S; ++i) pd[i] = fabsf(hp->probs[i]) * stored_factor(a, hp->probs[i]);
}

dc_status ref_attention_fwd(struct dc_backend *be, dc_view out, dc_view probs, dc_view q, dc_view k, dc_view v,
                            const struct dc_attention *a) {
    size_t T = a->T, S = a->S, h = a->d / a->H;
    float *pd = malloc(T * S * sizeof *pd);
    if (pd == NULL) return dc_set_error(be->err, DC_ERR_NOMEM, "attention_fwd: out of host memory (%zu floats)", T * S);
    for (size_t b = 0; b < a->B; ++b)
        for (size_t hd = 0; hd < a->H; ++hd) {
            struct head hp = head_of(a, probs, q, k, v, b, hd);
            for (size_t t = 0; t < T; ++t) {
                float *row = hp.probs + t * S;
                /* raw scores, rounded to float as a gemm writes them */
                for (size_t j = 0; j < S; ++j) {
                    double acc = 0.0;
                    for (size_t c = 0; c < h; ++c) acc += (double)hp.q[t * a->ld_q + c] * (double)hp.k[j * a->ld_k + c];
                    row[j] = (float)acc;
                }
                size_t valid = a->causal ? (t + 1 < S ? t + 1 : S) : S;
                double mx = -INFINITY, sum = 0.0;
                for (size_t j = 0; j < valid; ++j) mx = fmax(mx, (double)a->scale * row[j]);
                for (size_t j = 0; j < valid; ++j) sum += exp((double)a->scale * row[j] - mx);
                for (size_t j = 0; j < S; ++j) row[j] = j < valid ? (float)(exp((double)a->scale * row[j] - mx) / sum) : 0.0f;
            }
            head_dropped(a, &hp, pd);
            for (size_t t = 0; t < T; ++t)
                for (size_t c = 0; c < h; ++c) {
                    double acc = 0.0;
                    for (size_t j = 0; j < S; ++j) acc += (double)pd[t * S + j] * (double)hp.v[j * a->ld_v + c];
                    ref_ptr(out)[(b * T + t) * a->ld_out + hd * h + c] = (float)acc;
                }
        }
    free(pd);
    return DC_OK;
}

/* dst += acc, rounded once (what a gemm with beta 0 into a zeroed buffer gives, when dst is 0). */
static void add_to(float *dst, double acc) { *dst = (float)((double)*dst + acc); }

dc_status ref_attention_bwd(struct dc_backend *be, dc_view dq, dc_view dk, dc_view dv, dc_view dout, dc_view probs,
                            dc_view q, dc_view k, dc_view v, const struct dc_attention *a) {
    size_t T = a->T, S = a->S, h = a->d / a->H;
    float *pd = malloc(2 * T * S * sizeof *pd);
    if (pd == NULL)
        return dc_set_error(be->err, DC_ERR_NOMEM, "attention_bwd: out of host memory (%zu floats)", 2 * T * S);
    float *ds = pd + T * S; /* d drop(P), then the gradient of the raw scores */
    for (size_t b = 0; b < a->B; ++b)
        for (size_t hd = 0; hd < a->H; ++hd) {
            struct head hp = head_of(a, probs, q, k, v, b, hd);
            const float *go = ref_ptr(dout) + b * T * a->ld_out + hd * h;
            float *gq = ref_ptr(dq) + b * T * a->ld_q + hd * h;
            float *gk = ref_ptr(dk) + b * S * a->ld_k + hd * h;
            float *gv = ref_ptr(dv) + b * S * a->ld_v + hd * h;
            head_stored_dropped(a, &hp, pd);
            /* dV = drop(P)^T dO */
            for (size_t j = 0; j < S; ++j)
                for (size_t c = 0; c < h; ++c) {
                    double acc = 0.0;
                    for (size_t t = 0; t < T; ++t) acc += (double)pd[t * S + j] * (double)go[t * a->ld_out + c];
                    add_to(&gv[j * a->ld_v + c], acc);
                }
            /* d drop(P) = dO V^T, through the dropout, then the softmax (scale included) */
            for (size_t t = 0; t < T; ++t) {
                float *row = ds + t * S;
                const float *y = hp.probs + t * S;
                for (size_t j = 0; j < S; ++j) {
                    double acc = 0.0;
                    for (size_t c = 0; c < h; ++c) acc += (double)go[t * a->ld_out + c] * (double)hp.v[j * a->ld_v + c];
                    row[j] = (float)acc * stored_factor(a, y[j]);
                }
                double dot = 0.0;
                for (size_t j = 0; j < S; ++j) dot += (double)row[j] * fabsf(y[j]);
                for (size_t j = 0; j < S; ++j)
                    row[j] = (float)((double)a->scale * fabsf(y[j]) * ((double)row[j] - dot));
            }
            /* dQ = dS K, dK = dS^T Q */
            for (size_t t = 0; t < T; ++t)
                for (size_t c = 0; c < h; ++c) {
                    double acc = 0.0;
                    for (size_t j = 0; j < S; ++j) acc += (double)ds[t * S + j] * (double)hp.k[j * a->ld_k + c];
                    add_to(&gq[t * a->ld_q + c], acc);
                }
            for (size_t j = 0; j < S; ++j)
                for (size_t c = 0; c < h; ++c) {
                    double acc = 0.0;
                    for (size_t t = 0; t < T; ++t) acc += (double)ds[t * S + j] * (double)hp.q[t * a->ld_q + c];
                    add_to(&gk[j * a->ld_k + c], acc);
                }
        }
    free(pd);
    return DC_OK;
}
