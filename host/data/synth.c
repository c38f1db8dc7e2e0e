/* Synthetic MMSA-format datasets: see synth.h and datasets/README.md ("Synthetic datasets"),
 * whose equations this file implements. Every random draw comes from splitmix64 streams
 * keyed by (seed, purpose, split, sample, modality), so a sample does not depend on the
 * order in which the arrays are written. */
#include "data/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/pickle_write.h"

#define PI 3.14159265358979323846 /* PI is not in C11 */

/* --- random numbers: splitmix64 (Steele, Lea & Flood, OOPSLA 2014), Box-Muller ------ */

struct rng {
    uint64_t s;
    int have;
    double spare;
};

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_u64(struct rng *r) {
    r->s += 0x9e3779b97f4a7c15ull;
    return mix64(r->s);
}

static double rng_unif(struct rng *r) { return (double)(rng_u64(r) >> 11) * 0x1p-53; } /* [0, 1) */

static double rng_normal(struct rng *r) {
    if (r->have) {
        r->have = 0;
        return r->spare;
    }
    double u1 = 1.0 - rng_unif(r), u2 = rng_unif(r); /* u1 in (0, 1] */
    double rad = sqrt(-2.0 * log(u1)), th = 2.0 * PI * u2;
    r->spare = rad * sin(th), r->have = 1;
    return rad * cos(th);
}

static size_t rng_below(struct rng *r, size_t n) { return (size_t)(rng_unif(r) * (double)n); }

enum { TAG_PARAMS = 1, TAG_SAMPLE, TAG_FEAT, TAG_TOKENS, TAG_ID, TAG_TEXT, TAG_CLASSES };

static struct rng rng_stream(uint64_t seed, uint64_t tag, uint64_t a, uint64_t b) {
    uint64_t s = mix64(seed + 0x6a09e667f3bcc909ull);
    s = mix64(s ^ (tag * 0x9e3779b97f4a7c15ull));
    s = mix64(s ^ (a * 0xc2b2ae3d27d4eb4full + 1));
    s = mix64(s ^ (b * 0x165667b19e3779f9ull + 2));
    return (struct rng){s, 0, 0.0};
}

/* --- the datasets ------------------------------------------------------------------ */

struct kind_spec {
    const char *name;
    size_t dim[3];    /* text, audio, vision */
    size_t seq[2][3]; /* [unaligned, aligned]; 0: that alignment does not exist */
    size_t n[2][3];   /* default samples per split */
    int default_aligned;
};

/* Real feature sizes and sequence lengths (shared/spec/mmsa-format.md §1.3, §3); default
 * counts keep each file near 60 MB or less (README "Synthetic datasets"). */
static const struct kind_spec KINDS[] = {
    [DC_SYNTH_MOSI] = {"mosi", {768, 5, 20}, {{50, 375, 500}, {50, 50, 50}}, {{160, 40, 80}, {200, 50, 100}}, 1},
    [DC_SYNTH_MOSEI] = {"mosei", {768, 74, 35}, {{50, 500, 500}, {50, 50, 50}}, {{96, 24, 48}, {200, 50, 100}}, 1},
    [DC_SYNTH_SIMS] = {"sims", {768, 33, 709}, {{39, 400, 55}, {0, 0, 0}}, {{96, 24, 48}, {0, 0, 0}}, 0},
    [DC_SYNTH_IEMOCAP] = {"iemocap", {1024, 512, 1024}, {{0, 0, 0}, {1, 1, 1}}, {{0, 0, 0}, {1200, 300, 300}}, 1},
};

static const char *const SPLITS[3] = {"train", "valid", "test"};

/* --- the generative model (README "Synthetic datasets" has the equations) ---------- */

#define NF 8     /* latent factors: c1 c2 | t1 t2 | a1 a2 | v1 v2 */
#define NV 4     /* factors one modality carries: its two common plus its two own */
#define NR_MAX 4 /* nuisance dimensions per modality */

/* Label weights on z (beta), label noise, and per-modality constants. */
static const double BETA[NF] = {0.6, 0.5, 0.5, 0.4, 0.45, 0.35, 0.45, 0.35};
static const double LABEL_NOISE = 0.2;
static const double ALPHA = 0.8; /* depth of the temporal modulation */
static const double RHO = 0.9;   /* AR(1) coefficient of the nuisance */

struct mod_const {
    double a, b, sigma, tau; /* signal gain, nuisance gain, frame noise, view noise */
};
static const struct mod_const MOD[3] = {
    {0.25, 0.25, 0.6, 0.35}, /* text */
    {0.5, 0.3, 0.5, 0.6},    /* audio */
    {0.4, 0.3, 0.5, 0.6},    /* vision */
};

struct mod_params {
    size_t D, r;
    double *A;  /* (D, NV) */
    double *B;  /* (D, r) */
    double *mu; /* (D) */
};

struct sample {
    double view[3][NV]; /* what modality m sees of (z_c, z_m), with its own noise */
    double phase[3][NV];
    double style[3][NR_MAX]; /* static nuisance */
    int len[3];              /* valid frames (aligned: len[0] for every modality) */
    int words;               /* raw_text length in words / characters */
    double y, ym[3];         /* labels: multimodal, and SIMS' unimodal T/A/V */
    int cls;                 /* IEMOCAP class */
};

struct gen {
    enum dc_synth_kind kind;
    const struct kind_spec *ks;
    int aligned;
    uint64_t seed;
    size_t T[3], D[3];
    struct mod_params mp[3];
    double G[6][NF]; /* IEMOCAP class weights */
    struct sample *smp;
    size_t n;
    int split;
    float *frame; /* one sample of one modality, (T, D) */
};

static int clampi(long v, long lo, long hi) { return (int)(v < lo ? lo : v > hi ? hi : v); }

static void latent_label_scale(double *sd_all, double sd_mod[3]) {
    double s = LABEL_NOISE * LABEL_NOISE;
    for (int k = 0; k < NF; ++k) s += BETA[k] * BETA[k];
    *sd_all = sqrt(s);
    for (int m = 0; m < 3; ++m)
        sd_mod[m] = sqrt(BETA[0] * BETA[0] + BETA[1] * BETA[1] + BETA[2 + 2 * m] * BETA[2 + 2 * m] +
                         BETA[3 + 2 * m] * BETA[3 + 2 * m] + LABEL_NOISE * LABEL_NOISE);
}

/* MOSI/MOSEI: annotators rate round(y* + noise) on -3..3 and the label is their mean. */
static double rate_sentiment7(struct rng *r, double ystar, int annotators) {
    long sum = 0;
    for (int j = 0; j < annotators; ++j) sum += clampi(lround(ystar + 0.5 * rng_normal(r)), -3, 3);
    return (double)sum / annotators;
}

/* SIMS: five annotators say negative/neutral/positive (-1/0/1); the label is their mean. */
static double rate_sentiment3(struct rng *r, double ystar) {
    long sum = 0;
    for (int j = 0; j < 5; ++j) {
        double v = ystar + 0.35 * rng_normal(r);
        sum += v < -0.4 ? -1 : v > 0.4 ? 1 : 0;
    }
    return (double)sum / 5.0;
}

static void make_sample(struct gen *g, size_t i, struct sample *s) {
    struct rng r = rng_stream(g->seed, TAG_SAMPLE, (uint64_t)g->split, i);
    double z[NF], sd, sd_m[3];
    for (int k = 0; k < NF; ++k) z[k] = rng_normal(&r);
    latent_label_scale(&sd, sd_m);
    double score = LABEL_NOISE * rng_normal(&r);
    for (int k = 0; k < NF; ++k) score += BETA[k] * z[k];
    for (int m = 0; m < 3; ++m) {
        for (int k = 0; k < NV; ++k) {
            int f = k < 2 ? k : 2 + 2 * m + (k - 2);
            s->view[m][k] = z[f] + MOD[m].tau * rng_normal(&r);
            s->phase[m][k] = 2.0 * PI * rng_unif(&r);
        }
        for (int k = 0; k < NR_MAX; ++k) s->style[m][k] = rng_normal(&r);
    }
    /* lengths */
    double u = rng_unif(&r);
    if (g->kind == DC_SYNTH_SIMS) {
        double d = 0.15 + 0.85 * u; /* utterance duration, relative */
        s->len[0] = clampi(lround((8 + 31 * d) * (0.85 + 0.3 * rng_unif(&r))), 4, (long)g->T[0]);
        s->len[1] = clampi(lround(400 * d * (0.85 + 0.3 * rng_unif(&r))), 20, (long)g->T[1]);
        s->len[2] = clampi(lround(55 * d * (0.85 + 0.3 * rng_unif(&r))), 5, (long)g->T[2]);
        s->words = s->len[0] - 2;
    } else if (g->kind == DC_SYNTH_IEMOCAP) {
        s->len[0] = s->len[1] = s->len[2] = 1;
        s->words = 3 + (int)rng_below(&r, 18);
    } else {
        double mean_words = g->kind == DC_SYNTH_MOSI ? 10.0 : 14.0;
        int words = clampi(3 + (long)floor(-mean_words * log(1.0 - u)), 3, (long)g->T[0] - 2);
        s->words = words;
        s->len[0] = words + 2; /* [CLS] words [SEP] */
        s->len[1] = clampi(lround(words * 7.0 * (0.8 + 0.4 * rng_unif(&r))), 8, (long)g->T[1]);
        s->len[2] = clampi(lround(words * 9.0 * (0.8 + 0.4 * rng_unif(&r))), 8, (long)g->T[2]);
        if (g->aligned) s->len[1] = s->len[2] = s->len[0];
    }
    /* labels */
    if (g->kind == DC_SYNTH_IEMOCAP) {
        double best = -INFINITY;
        for (int c = 0; c < 6; ++c) {
            double l = -log(-log(1.0 - rng_unif(&r)) + 1e-300) * 0.5; /* Gumbel, scale 0.5 */
            for (int k = 0; k < NF; ++k) l += g->G[c][k] * z[k];
            if (l > best) best = l, s->cls = c;
        }
    } else if (g->kind == DC_SYNTH_SIMS) {
        s->y = rate_sentiment3(&r, 0.9 * score / sd);
        for (int m = 0; m < 3; ++m) {
            double sm = BETA[0] * z[0] + BETA[1] * z[1] + BETA[2 + 2 * m] * z[2 + 2 * m] +
                        BETA[3 + 2 * m] * z[3 + 2 * m] + LABEL_NOISE * rng_normal(&r);
            s->ym[m] = rate_sentiment3(&r, 0.9 * sm / sd_m[m]);
        }
    } else {
        int annotators = g->kind == DC_SYNTH_MOSEI ? 3 : (rng_unif(&r) < 0.75 ? 5 : 3);
        s->y = rate_sentiment7(&r, 1.4 * score / sd, annotators);
    }
}

static dc_status params_init(struct gen *g, struct dc_error *err) {
    struct rng r = rng_stream(g->seed, TAG_PARAMS, 0, 0);
    for (int m = 0; m < 3; ++m) {
        struct mod_params *p = &g->mp[m];
        p->D = g->D[m];
        p->r = p->D / 8 < 1 ? 1 : p->D / 8 > NR_MAX ? NR_MAX : p->D / 8;
        p->A = malloc(p->D * NV * sizeof *p->A);
        p->B = malloc(p->D * p->r * sizeof *p->B);
        p->mu = malloc(p->D * sizeof *p->mu);
        if (!p->A || !p->B || !p->mu) return dc_set_error(err, DC_ERR_NOMEM, "make-dataset: out of memory");
        for (size_t i = 0; i < p->D * NV; ++i) p->A[i] = MOD[m].a * rng_normal(&r);
        for (size_t i = 0; i < p->D * p->r; ++i) p->B[i] = MOD[m].b * rng_normal(&r);
        for (size_t i = 0; i < p->D; ++i) p->mu[i] = 0.5 * rng_normal(&r);
    }
    /* IEMOCAP class weights do not depend on the seed, so the README's numbers hold for any seed. */
    struct rng rc = rng_stream(0x1e3c0cadull, TAG_CLASSES, 0, 0);
    for (int c = 0; c < 6; ++c)
        for (int k = 0; k < NF; ++k) g->G[c][k] = 1.2 * rng_normal(&rc);
    return DC_OK;
}

/* Frames of modality m of sample i: x[t] = mu + A (view (.) env(t)) + B (style + u[t]) + sigma eps,
 * on the valid frames; zero elsewhere. */
static void make_frames(struct gen *g, size_t i, int m) {
    const struct sample *s = &g->smp[i];
    const struct mod_params *p = &g->mp[m];
    size_t T = g->T[m], D = g->D[m];
    struct rng r = rng_stream(g->seed, TAG_FEAT, (uint64_t)(g->split * 3 + m), i);
    memset(g->frame, 0, T * D * sizeof *g->frame);
    size_t t0 = 0, L = (size_t)s->len[m];
    if (g->aligned && m > 0 && g->kind != DC_SYNTH_IEMOCAP) t0 = 1, L = (size_t)s->len[0] - 2; /* no [CLS]/[SEP] */
    double alpha = L >= 2 ? ALPHA : 0.0;
    double u[NR_MAX];
    for (size_t k = 0; k < p->r; ++k) u[k] = rng_normal(&r);
    for (size_t t = 0; t < L; ++t) {
        double c[NV], nu[NR_MAX];
        for (int k = 0; k < NV; ++k)
            c[k] = s->view[m][k] * (1.0 + alpha * cos(2.0 * PI * (double)t / (double)L + s->phase[m][k]));
        for (size_t k = 0; k < p->r; ++k) {
            if (t > 0) u[k] = RHO * u[k] + sqrt(1.0 - RHO * RHO) * rng_normal(&r);
            nu[k] = s->style[m][k] + u[k];
        }
        float *x = g->frame + (t0 + t) * D;
        for (size_t d = 0; d < D; ++d) {
            double v = p->mu[d] + MOD[m].sigma * rng_normal(&r);
            for (int k = 0; k < NV; ++k) v += p->A[d * NV + k] * c[k];
            for (size_t k = 0; k < p->r; ++k) v += p->B[d * p->r + k] * nu[k];
            x[d] = (float)v;
        }
        /* MOSEI's COVAREP audio holds -inf; a few frames get one here too. */
        if (g->kind == DC_SYNTH_MOSEI && m == 1 && rng_unif(&r) < 0.005) x[0] = -INFINITY;
    }
}

/* --- strings -------------------------------------------------------------------------- */

static const char *const WORDS_EN[] = {
    "i",     "the",        "movie",  "was",     "really",   "good",   "bad",      "it",     "and",    "you",
    "know",  "um",         "like",   "just",    "that",     "story",  "acting",   "pretty", "boring", "great",
    "not",   "so",         "very",   "funny",   "scene",    "think",  "plot",     "was",    "kind",   "of",
    "loved", "hated",      "actors", "okay",    "but",      "ending", "whole",    "thing",  "love",   "this",
    "film",  "characters", "slow",   "amazing", "terrible", "about",  "honestly", "would"};
static const char *const CHARS_ZH[] = {"我", "们", "这", "个", "是", "不", "了", "的", "好", "很", "你",
                                       "他", "有", "没", "什", "么", "说", "就", "也", "还", "要", "会",
                                       "看", "到", "真", "太", "想", "去", "吧", "呢", "啊", "对"};

#define NWORDS_EN (sizeof WORDS_EN / sizeof WORDS_EN[0])
#define NCHARS_ZH (sizeof CHARS_ZH / sizeof CHARS_ZH[0])

static char *make_raw_text(const struct gen *g, size_t i) {
    const struct sample *s = &g->smp[i];
    struct rng r = rng_stream(g->seed, TAG_TEXT, (uint64_t)g->split, i);
    size_t cap = (size_t)s->words * 16 + 4, n = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    for (int w = 0; w < s->words; ++w) {
        const char *word =
            g->kind == DC_SYNTH_SIMS ? CHARS_ZH[rng_below(&r, NCHARS_ZH)] : WORDS_EN[rng_below(&r, NWORDS_EN)];
        if (w > 0 && g->kind != DC_SYNTH_SIMS) out[n++] = ' ';
        size_t k = strlen(word);
        memcpy(out + n, word, k);
        if (w == 0 && g->kind == DC_SYNTH_IEMOCAP) out[n] = (char)(out[n] - 'a' + 'A');
        n += k;
    }
    if (g->kind == DC_SYNTH_IEMOCAP) out[n++] = '.';
    if (g->kind == DC_SYNTH_SIMS) memcpy(out + n, "。", strlen("。")), n += strlen("。");
    out[n] = '\0';
    return out;
}

static char *make_id(const struct gen *g, size_t i) {
    char *out = malloc(64);
    if (!out) return NULL;
    if (g->kind == DC_SYNTH_SIMS) {
        /* videos are never shared between splits */
        snprintf(out, 64, "video_%04zu$_$%04zu", (size_t)g->split * 1000 + i / 5 + 1, i % 5 + 1);
    } else if (g->kind == DC_SYNTH_IEMOCAP) {
        /* sessions 1-3 train, 4 valid, 5 test, as in DecAlign's prepare_iemocap.py */
        size_t dialog = i / 24, session = g->split == 0 ? 1 + dialog % 3 : (size_t)g->split + 3;
        struct rng r = rng_stream(g->seed, TAG_ID, (uint64_t)g->split, dialog);
        char sex = rng_unif(&r) < 0.5 ? 'F' : 'M', who = rng_unif(&r) < 0.5 ? 'F' : 'M';
        snprintf(out, 64, "Ses%02zu%c_%s%02zu_%c%03zu", session, sex, rng_unif(&r) < 0.5 ? "impro" : "script",
                 dialog / 3 + 1, who, i % 24);
    } else {
        static const char ALNUM[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
        size_t video = i / 6;
        struct rng r = rng_stream(g->seed, TAG_ID, (uint64_t)g->split, video);
        char vid[12];
        for (int k = 0; k < 11; ++k) vid[k] = ALNUM[rng_below(&r, sizeof ALNUM - 1)];
        vid[11] = '\0';
        snprintf(out, 64, "%s$_$%zu", vid, i % 6 + 1 + rng_below(&r, 4));
    }
    return out;
}

static const char *annotation(double y) { return y < 0 ? "Negative" : y > 0 ? "Positive" : "Neutral"; }
static double sentiment_class(double y) { return y < 0 ? 0.0 : y > 0 ? 2.0 : 1.0; }

/* --- keys ------------------------------------------------------------------------------ */

enum key {
    K_RAW_TEXT,
    K_AUDIO,
    K_VISION,
    K_ID,
    K_TEXT,
    K_TEXT_BERT,
    K_AUDIO_LEN,
    K_VISION_LEN,
    K_ANNOT,
    K_CLS,
    K_REG,
    K_REG_T,
    K_REG_A,
    K_REG_V,
    K_CLS_T,
    K_CLS_A,
    K_CLS_V,
};
static const char *const KEY_NAME[] = {"raw_text",
                                       "audio",
                                       "vision",
                                       "id",
                                       "text",
                                       "text_bert",
                                       "audio_lengths",
                                       "vision_lengths",
                                       "annotations",
                                       "classification_labels",
                                       "regression_labels",
                                       "regression_labels_T",
                                       "regression_labels_A",
                                       "regression_labels_V",
                                       "classification_labels_T",
                                       "classification_labels_A",
                                       "classification_labels_V"};

/* Key order as in the MMSA README's list; IEMOCAP as DecAlign's loader reads it. */
static size_t split_keys(const struct gen *g, enum key *out) {
    static const enum key mmsa_head[] = {K_RAW_TEXT, K_AUDIO, K_VISION, K_ID, K_TEXT, K_TEXT_BERT};
    static const enum key mmsa_tail[] = {K_ANNOT, K_CLS, K_REG};
    static const enum key sims_extra[] = {K_REG_T, K_REG_A, K_REG_V, K_CLS_T, K_CLS_A, K_CLS_V};
    static const enum key iemocap[] = {K_TEXT, K_AUDIO, K_VISION, K_RAW_TEXT, K_ID, K_CLS};
    size_t n = 0;
    if (g->kind == DC_SYNTH_IEMOCAP) {
        memcpy(out, iemocap, sizeof iemocap);
        return sizeof iemocap / sizeof iemocap[0];
    }
    for (size_t i = 0; i < sizeof mmsa_head / sizeof mmsa_head[0]; ++i) out[n++] = mmsa_head[i];
    if (!g->aligned) out[n++] = K_AUDIO_LEN, out[n++] = K_VISION_LEN;
    for (size_t i = 0; i < sizeof mmsa_tail / sizeof mmsa_tail[0]; ++i) out[n++] = mmsa_tail[i];
    if (g->kind == DC_SYNTH_SIMS)
        for (size_t i = 0; i < sizeof sims_extra / sizeof sims_extra[0]; ++i) out[n++] = sims_extra[i];
    return n;
}

static dc_status write_features(struct gen *g, struct dc_pkl_writer *w, int m) {
    uint64_t shape[3] = {g->n, g->T[m], g->D[m]};
    dc_status st = dc_pkl_array_begin(w, DC_PKL_F4, 0, 3, shape);
    for (size_t i = 0; i < g->n && st == DC_OK; ++i) {
        make_frames(g, i, m);
        st = dc_pkl_array_write(w, g->frame, g->T[m] * g->D[m] * sizeof *g->frame);
    }
    return st == DC_OK ? dc_pkl_array_end(w) : st;
}

/* BERT inputs: input_ids ([CLS]=101 ... [SEP]=102, then 0), input_mask, segment_ids. */
static dc_status write_text_bert(struct gen *g, struct dc_pkl_writer *w, struct dc_error *err) {
    size_t T = g->T[0];
    uint64_t shape[3] = {g->n, 3, T};
    int64_t *row = malloc(3 * T * sizeof *row);
    if (!row) return dc_set_error(err, DC_ERR_NOMEM, "make-dataset: out of memory");
    dc_status st = dc_pkl_array_begin(w, DC_PKL_I8, 0, 3, shape);
    for (size_t i = 0; i < g->n && st == DC_OK; ++i) {
        struct rng r = rng_stream(g->seed, TAG_TOKENS, (uint64_t)g->split, i);
        size_t L = (size_t)g->smp[i].len[0];
        memset(row, 0, 3 * T * sizeof *row);
        for (size_t t = 0; t < L; ++t) {
            row[t] = t == 0 ? 101 : t == L - 1 ? 102 : (int64_t)(1000 + rng_below(&r, 28000));
            row[T + t] = 1;
        }
        st = dc_pkl_array_write(w, row, 3 * T * sizeof *row);
    }
    free(row);
    return st == DC_OK ? dc_pkl_array_end(w) : st;
}

static double label_of(const struct sample *s, enum key k) {
    switch (k) {
        case K_REG: return s->y;
        case K_REG_T: return s->ym[0];
        case K_REG_A: return s->ym[1];
        case K_REG_V: return s->ym[2];
        case K_CLS: return sentiment_class(s->y);
        case K_CLS_T: return sentiment_class(s->ym[0]);
        case K_CLS_A: return sentiment_class(s->ym[1]);
        default: return sentiment_class(s->ym[2]);
    }
}

static dc_status write_numbers(struct gen *g, struct dc_pkl_writer *w, enum key k) {
    uint64_t shape[1] = {g->n};
    int is_int = g->kind == DC_SYNTH_IEMOCAP || k == K_AUDIO_LEN || k == K_VISION_LEN;
    int as_list = g->kind == DC_SYNTH_SIMS && (k == K_AUDIO_LEN || k == K_VISION_LEN); /* Python lists in SIMS */
    if (as_list) {
        dc_pkl_list_begin(w, g->n);
        for (size_t i = 0; i < g->n; ++i) dc_pkl_int(w, g->smp[i].len[k == K_AUDIO_LEN ? 1 : 2]);
        return dc_pkl_list_end(w);
    }
    dc_status st = dc_pkl_array_begin(w, is_int ? DC_PKL_I8 : DC_PKL_F8, 0, 1, shape);
    for (size_t i = 0; i < g->n && st == DC_OK; ++i) {
        const struct sample *s = &g->smp[i];
        if (is_int) {
            int64_t v = g->kind == DC_SYNTH_IEMOCAP ? s->cls : s->len[k == K_AUDIO_LEN ? 1 : 2];
            st = dc_pkl_array_write(w, &v, sizeof v);
        } else {
            double v = label_of(s, k);
            st = dc_pkl_array_write(w, &v, sizeof v);
        }
    }
    return st == DC_OK ? dc_pkl_array_end(w) : st;
}

/* raw_text, id, annotations: '<U' arrays for MOSI/MOSEI, Python lists for SIMS and IEMOCAP. */
static dc_status write_strings(struct gen *g, struct dc_pkl_writer *w, enum key k, struct dc_error *err) {
    char **s = calloc(g->n, sizeof *s);
    dc_status st = s ? DC_OK : dc_set_error(err, DC_ERR_NOMEM, "make-dataset: out of memory");
    for (size_t i = 0; i < g->n && st == DC_OK; ++i) {
        s[i] = k == K_RAW_TEXT ? make_raw_text(g, i) : k == K_ID ? make_id(g, i) : strdup(annotation(g->smp[i].y));
        if (!s[i]) st = dc_set_error(err, DC_ERR_NOMEM, "make-dataset: out of memory");
    }
    if (st == DC_OK) {
        if (g->kind == DC_SYNTH_SIMS || g->kind == DC_SYNTH_IEMOCAP) {
            dc_pkl_list_begin(w, g->n);
            for (size_t i = 0; i < g->n; ++i) dc_pkl_str(w, s[i]);
            st = dc_pkl_list_end(w);
        } else {
            st = dc_pkl_array_str(w, (const char *const *)s, g->n);
        }
    }
    for (size_t i = 0; s && i < g->n; ++i) free(s[i]);
    free(s);
    return st;
}

static dc_status write_split(struct gen *g, struct dc_pkl_writer *w, struct dc_error *err) {
    enum key keys[32];
    size_t nk = split_keys(g, keys);
    dc_status st = dc_pkl_dict_begin(w, nk);
    for (size_t j = 0; j < nk && st == DC_OK; ++j) {
        enum key k = keys[j];
        if ((st = dc_pkl_key(w, KEY_NAME[k])) != DC_OK) break;
        switch (k) {
            case K_TEXT: st = write_features(g, w, 0); break;
            case K_AUDIO: st = write_features(g, w, 1); break;
            case K_VISION: st = write_features(g, w, 2); break;
            case K_TEXT_BERT: st = write_text_bert(g, w, err); break;
            case K_RAW_TEXT:
            case K_ID:
            case K_ANNOT: st = write_strings(g, w, k, err); break;
            default: st = write_numbers(g, w, k); break;
        }
    }
    return st == DC_OK ? dc_pkl_dict_end(w) : st;
}

/* --- entry points ---------------------------------------------------------------------- */

dc_status dc_synth_parse_kind(const char *s, enum dc_synth_kind *out, struct dc_error *err) {
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; ++k)
        if (strcmp(s, KINDS[k].name) == 0) {
            *out = (enum dc_synth_kind)k;
            return DC_OK;
        }
    return dc_set_error(err, DC_ERR_ARG, "make-dataset: --like must be mosi, mosei, sims or iemocap, not '%s'", s);
}

const char *dc_synth_kind_name(enum dc_synth_kind k) { return KINDS[k].name; }

void dc_synth_default_samples(enum dc_synth_kind k, int aligned, size_t out[3]) {
    int a = aligned < 0 ? KINDS[k].default_aligned : aligned != 0;
    for (int i = 0; i < 3; ++i) out[i] = KINDS[k].n[a][i];
}

static void gen_free(struct gen *g) {
    for (int m = 0; m < 3; ++m) free(g->mp[m].A), free(g->mp[m].B), free(g->mp[m].mu);
    free(g->smp);
    free(g->frame);
}

dc_status dc_synth_write(const struct dc_synth_options *o, const char *path, struct dc_synth_summary *sum,
                         struct dc_error *err) {
    if ((unsigned)o->kind > DC_SYNTH_IEMOCAP) return dc_set_error(err, DC_ERR_ARG, "make-dataset: unknown kind");
    const struct kind_spec *ks = &KINDS[o->kind];
    int aligned = o->aligned < 0 ? ks->default_aligned : o->aligned != 0;
    if (ks->seq[aligned][0] == 0)
        return dc_set_error(err, DC_ERR_ARG, "make-dataset: %s has no %s variant", ks->name,
                            aligned ? "aligned" : "unaligned");
    struct gen g = {.kind = o->kind, .ks = ks, .aligned = aligned, .seed = o->seed};
    size_t n[3], frame = 0, nmax = 0;
    for (int s = 0; s < 3; ++s) {
        n[s] = o->samples[s] ? o->samples[s] : ks->n[aligned][s];
        if (n[s] > 1000000)
            return dc_set_error(err, DC_ERR_ARG, "make-dataset: at most 1000000 samples per split, not %zu", n[s]);
        nmax = n[s] > nmax ? n[s] : nmax;
    }
    for (int m = 0; m < 3; ++m) {
        g.T[m] = ks->seq[aligned][m], g.D[m] = ks->dim[m];
        if (g.T[m] * g.D[m] > frame) frame = g.T[m] * g.D[m];
    }
    dc_status st = params_init(&g, err);
    g.smp = malloc(nmax * sizeof *g.smp);
    g.frame = malloc(frame * sizeof *g.frame);
    if (st == DC_OK && (!g.smp || !g.frame)) st = dc_set_error(err, DC_ERR_NOMEM, "make-dataset: out of memory");
    struct dc_pkl_writer *w = NULL;
    if (st == DC_OK) st = dc_pkl_writer_open(&w, path, err);
    if (st == DC_OK) st = dc_pkl_dict_begin(w, 3);
    for (int s = 0; s < 3 && st == DC_OK; ++s) {
        g.split = s, g.n = n[s];
        for (size_t i = 0; i < g.n; ++i) make_sample(&g, i, &g.smp[i]);
        if ((st = dc_pkl_key(w, SPLITS[s])) == DC_OK) st = write_split(&g, w, err);
    }
    if (st == DC_OK) st = dc_pkl_dict_end(w);
    if (st == DC_OK) {
        st = dc_pkl_writer_commit(w);
    } else {
        dc_pkl_writer_abort(w);
    }
    gen_free(&g);
    struct stat sb;
    if (st == DC_OK && sum) {
        sum->aligned = aligned;
        sum->bytes = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
        for (int i = 0; i < 3; ++i) sum->samples[i] = n[i], sum->seq[i] = g.T[i], sum->dim[i] = g.D[i];
    }
    return st;
}
