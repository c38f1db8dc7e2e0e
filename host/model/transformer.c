/* One cross-modal transformer stack (spec §5), forward and backward, composed only from
 * the backend ops of decocl/ops.h, so ref and OpenCL run the same sequence of ops.
 *
 * Letters: B batch, T query length (cfg->Tq), S key length (cfg->Tk, or T without a
 * context), d model size, H heads, h = d / H head size, F = 4d, L layers, N = B * T rows.
 * Activations are (B, T, d) row-major, i.e. (N, d) matrices.
 *
 * Attention, per layer: the in-projection writes q, k, v packed, so that one gemm and
 * one bias add serve several of them: without a context q|k|v is one (N, 3d) matrix
 * (keys = values = queries' input x: one gemm against all of in_proj_weight); with one,
 * q is (N, d) and k|v one (B * S, 2d) matrix, written by a 2-batch gemm (K0 Wk^T and
 * V0 Wv^T, whose inputs differ). The head hd is the column block [hd*h, (hd+1)*h) of
 * q, k, v and of the context matrix. dc_attention_fwd then computes, in one op, the
 * probabilities P (B, H, T, S) (scale 1/sqrt(h), causal without context), the attention
 * dropout and ctx_hd = drop(P) v_hd; dc_attention_bwd adds dq, dk, dv into the packed
 * gradient buffer, which one linear backward (or 2-batch gemms) then carries to the
 * inputs and in_proj's gradients.
 *
 * Dropout sites (a stack uses [site_base, site_base + 16 * (L + 1))):
 *     site_base + 0             embed dropout of sqrt(d) * x
 *     site_base + 1, + 2        K0 and V0 dropouts of sqrt(d) * ctx (independent)
 *     site_base + 16 (l+1) + 0  attention probabilities of layer l
 *     site_base + 16 (l+1) + 1  residual dropout after out_proj
 *     site_base + 16 (l+1) + 2  relu dropout (after relu(fc1))
 *     site_base + 16 (l+1) + 3  residual dropout after fc2
 * A dropout is active when cfg->training and its p > 0; otherwise it is skipped. Masks
 * are regenerated in the backward (dc_dropout_bwd), never stored, except the attention
 * probabilities' (in the sign bits of P, see dc_attention_fwd).
 *
 * Tape: two device allocations made by dc_tf_tape_create, never in the forward:
 *  - saved (read by the backward): K0, V0 and per layer its input x, q, k, v, the softmax
 *    output P (before dropout, sign bits marking the dropped elements), the
 *    head-concatenated context, r1 = x + resdrop(attn), LN_attn's mean/rstd and output
 *    y1, h = relu(fc1(y1)) (the relu output), hd = reludrop(h) (only in a tape made with
 *    relu dropout: storing it spares the backward two Philox passes over (N, F), since
 *    hd > 0 exactly where both relu and dropout pass the gradient), r2 = y1 +
 *    resdrop(fc2(...)), LN_final's mean/rstd. The output of the last layer goes to `out`
 *    only; layer l's output is layer l+1's saved input.
 *  - work: scratch of the forward and the backward. */
#include "model/transformer.h"

#include <math.h>
#include <stdlib.h>

#include "core/assert.h"
#include "core/rng.h"

#define TF_ALIGN 64 /* floats: every tape view starts on a 256-byte boundary */
#define TF_SITES_PER_LAYER 16
enum { SITE_EMBED = 0, SITE_K0 = 1, SITE_V0 = 2 };
enum { SITE_ATTN = 0, SITE_RES1 = 1, SITE_RELU = 2, SITE_RES2 = 3 };

#define TRY(call)                                                                                                      \
    do {                                                                                                               \
        dc_status rc_ = (call);                                                                                        \
        if (rc_ != DC_OK) return rc_;                                                                                  \
    } while (0)

struct tf_layer_tape {
    dc_view x, q, k, v, p, ctx; /* q, k, v: column blocks of packed buffers (tf_ld_q) */
    dc_view r1, mean1, rstd1, y1;
    dc_view h, hd; /* hd: empty unless the tape was made with relu dropout */
    dc_view r2, mean2, rstd2;
};

struct dc_tf_tape {
    struct dc_tf_config cfg; /* the shapes it was made for; the last forward's dropout settings */
    size_t S;                /* key length: Tk, or Tq without a context */
    struct dc_mem *saved, *work;
    dc_view k0, v0;
    struct tf_layer_tape *lay; /* cfg.layers entries */
    /* work */
    dc_view lin;               /* (N, d): attention / fc2 output in the forward */
    dc_view g, gx;             /* (N, d): gradient of a layer's output / input */
    dc_view dy1, dproj;        /* (N, d) */
    dc_view dctx;              /* (N, d) */
    dc_view dq, dk, dv;        /* packed like q, k, v */
    dc_view dk0, dv0;          /* (B*Tk, d) */
    dc_view dhf, dz;           /* (N, F) */
};

/* ---- small helpers ---- */

static dc_view sub(dc_view v, size_t off, size_t n) {
    DC_ASSERT(off + n <= v.n);
    return dc_view_of(v.mem, v.off + off, n);
}

static int same_view(dc_view a, dc_view b) { return a.mem == b.mem && a.off == b.off; }

static bool drop_active(const struct dc_tf_config *cfg, float p) { return cfg->training && p > 0.0f; }

static struct dc_dropout drop_of(const struct dc_tf_config *cfg, float p, uint32_t site) {
    return (struct dc_dropout){.p = p, .seed = cfg->seed, .step = cfg->step, .site = site};
}

static uint32_t layer_site(const struct dc_tf_config *cfg, size_t l, uint32_t k) {
    return cfg->site_base + (uint32_t)(TF_SITES_PER_LAYER * (l + 1)) + k;
}

/* out = drop(in); the identity (a copy unless in place) when inactive. */
static dc_status drop_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t n, const struct dc_tf_config *cfg,
                          float p, uint32_t site) {
    if (drop_active(cfg, p)) {
        struct dc_dropout dd = drop_of(cfg, p, site);
        return dc_dropout_fwd(be, out, in, n, &dd);
    }
    if (same_view(out, in)) return DC_OK;
    return dc_copy(be, sub(out, 0, n), sub(in, 0, n));
}

/* din += drop'(dout). */
static dc_status drop_bwd(struct dc_backend *be, dc_view din, dc_view dout, size_t n, const struct dc_tf_config *cfg,
                          float p, uint32_t site) {
    if (drop_active(cfg, p)) {
        struct dc_dropout dd = drop_of(cfg, p, site);
        return dc_dropout_bwd(be, din, dout, n, &dd);
    }
    return dc_axpy(be, din, 1.0f, dout, n);
}

/* The gradient a residual branch receives through its dropout from dr, the residual
 * sum's gradient: drop'(dr) written into scratch (dropout_fwd computes exactly the
 * dr * mask / (1 - p) that dropout_bwd would add to zeros), or dr itself when inactive.
 * The caller reads *out before anything adds into dr. */
static dc_status branch_grad(struct dc_backend *be, dc_view *out, dc_view scratch, dc_view dr, size_t n,
                             const struct dc_tf_config *cfg, float p, uint32_t site) {
    *out = dr;
    if (!drop_active(cfg, p)) return DC_OK;
    *out = scratch;
    return drop_fwd(be, scratch, dr, n, cfg, p, site);
}

/* Y (rows, out) = X (rows, in) W^T (W (out, in)) + b. */
static dc_status linear_fwd(struct dc_backend *be, dc_view y, dc_view x, dc_view w, dc_view b, size_t rows, size_t in,
                            size_t out) {
    TRY(dc_gemm(be, false, true, rows, out, in, 1.0f, x, in, w, in, 0.0f, y, out));
    return dc_bias_add(be, y, b, rows, out);
}

/* dW += dY^T X, db += column sums of dY, and dX = dY W (beta 0) or += (beta 1);
 * dx may be an empty view (not needed). */
static dc_status linear_bwd(struct dc_backend *be, dc_view dx, float beta, dc_view dw, dc_view db, dc_view dy,
                            dc_view x, dc_view w, size_t rows, size_t in, size_t out) {
    TRY(dc_gemm(be, true, false, out, in, rows, 1.0f, dy, out, x, in, 1.0f, dw, in));
    TRY(dc_bias_grad(be, db, dy, rows, out));
    if (dx.mem == NULL) return DC_OK;
    return dc_gemm(be, false, false, rows, in, out, 1.0f, dy, out, w, in, beta, dx, in);
}

/* ---- tape layout ---- */

struct carve {
    struct dc_mem *mem;
    size_t next;
};

static dc_view take(struct carve *c, size_t n) {
    dc_view v = dc_view_of(c->mem, c->next, n);
    c->next += (n + TF_ALIGN - 1) / TF_ALIGN * TF_ALIGN;
    return v;
}

/* Row strides of q, and of k and v: packed (N, 3d) without a context, else q (N, d)
 * and k|v (B*S, 2d). */
static size_t tf_ld_q(const struct dc_tf_config *c) { return c->Tk ? c->d : 3 * c->d; }
static size_t tf_ld_kv(const struct dc_tf_config *c) { return c->Tk ? 2 * c->d : 3 * c->d; }

/* q, k, v (or their gradients) as column blocks of freshly carved packed storage. */
static void take_qkv(struct carve *cv, const struct dc_tf_config *c, size_t S, dc_view *q, dc_view *k, dc_view *v) {
    size_t N = c->B * c->Tq, d = c->d, BS = c->B * S;
    if (c->Tk == 0) {
        dc_view all = take(cv, N * 3 * d);
        *q = dc_view_of(all.mem, all.off, N * 3 * d);
        *k = dc_view_of(all.mem, all.off + d, N * 3 * d - d);
        *v = dc_view_of(all.mem, all.off + 2 * d, N * 3 * d - 2 * d);
        return;
    }
    *q = take(cv, N * d);
    dc_view kv = take(cv, BS * 2 * d);
    *k = dc_view_of(kv.mem, kv.off, BS * 2 * d);
    *v = dc_view_of(kv.mem, kv.off + d, BS * 2 * d - d);
}

/* Assigns every view of t into saved / work (NULL on the sizing pass); returns the sizes. */
static void tape_layout(struct dc_tf_tape *t, struct dc_mem *saved, struct dc_mem *work, size_t *n_saved,
                        size_t *n_work) {
    const struct dc_tf_config *c = &t->cfg;
    size_t N = c->B * c->Tq, d = c->d, F = 4 * d, S = t->S, BK = c->B * c->Tk;
    size_t P = c->B * c->heads * c->Tq * S;
    struct carve sv = {saved, 0}, wk = {work, 0};
    t->k0 = take(&sv, BK * d);
    t->v0 = take(&sv, BK * d);
    for (size_t l = 0; l < c->layers; ++l) {
        struct tf_layer_tape *lt = &t->lay[l];
        lt->x = take(&sv, N * d);
        take_qkv(&sv, c, S, &lt->q, &lt->k, &lt->v);
        lt->p = take(&sv, P);
        lt->ctx = take(&sv, N * d);
        lt->r1 = take(&sv, N * d);
        lt->mean1 = take(&sv, N);
        lt->rstd1 = take(&sv, N);
        lt->y1 = take(&sv, N * d);
        lt->h = take(&sv, N * F);
        lt->hd = take(&sv, c->relu_dropout > 0.0f ? N * F : 0);
        lt->r2 = take(&sv, N * d);
        lt->mean2 = take(&sv, N);
        lt->rstd2 = take(&sv, N);
    }
    t->lin = take(&wk, N * d);
    t->g = take(&wk, N * d);
    t->gx = take(&wk, N * d);
    t->dy1 = take(&wk, N * d);
    t->dproj = take(&wk, N * d);
    t->dctx = take(&wk, N * d);
    take_qkv(&wk, c, S, &t->dq, &t->dk, &t->dv);
    t->dk0 = take(&wk, BK * d);
    t->dv0 = take(&wk, BK * d);
    t->dhf = take(&wk, N * F);
    t->dz = take(&wk, N * F);
    *n_saved = sv.next;
    *n_work = wk.next;
}

static dc_status check_config(struct dc_backend *be, const struct dc_tf_config *c) {
    if (c->B == 0 || c->Tq == 0 || c->d == 0 || c->heads == 0 || c->layers == 0 || c->d % c->heads != 0)
        return dc_set_error(dc_backend_error(be), DC_ERR_ARG,
                            "transformer: bad shape B=%zu Tq=%zu d=%zu heads=%zu layers=%zu (d %% heads must be 0)",
                            c->B, c->Tq, c->d, c->heads, c->layers);
    const float ps[4] = {c->attn_dropout, c->relu_dropout, c->res_dropout, c->embed_dropout};
    for (int i = 0; i < 4; ++i)
        if (!(ps[i] >= 0.0f && ps[i] < 1.0f))
            return dc_set_error(dc_backend_error(be), DC_ERR_ARG, "transformer: dropout %g outside [0, 1)",
                                (double)ps[i]);
    return DC_OK;
}

dc_status dc_tf_tape_create(struct dc_backend *be, const struct dc_tf_config *cfg, struct dc_tf_tape **out) {
    *out = NULL;
    TRY(check_config(be, cfg));
    struct dc_tf_tape *t = calloc(1, sizeof *t);
    if (t == NULL) return dc_set_error(dc_backend_error(be), DC_ERR_NOMEM, "transformer tape: out of host memory");
    t->cfg = *cfg;
    t->S = cfg->Tk ? cfg->Tk : cfg->Tq;
    t->lay = calloc(cfg->layers, sizeof *t->lay);
    if (t->lay == NULL) {
        free(t);
        return dc_set_error(dc_backend_error(be), DC_ERR_NOMEM, "transformer tape: out of host memory");
    }
    size_t n_saved, n_work;
    tape_layout(t, NULL, NULL, &n_saved, &n_work);
    dc_status rc = dc_mem_alloc(be, n_saved, &t->saved);
    if (rc == DC_OK) rc = dc_mem_alloc(be, n_work, &t->work);
    if (rc != DC_OK) {
        dc_tf_tape_free(be, t);
        return rc;
    }
    tape_layout(t, t->saved, t->work, &n_saved, &n_work);
    *out = t;
    return DC_OK;
}

void dc_tf_tape_free(struct dc_backend *be, struct dc_tf_tape *tape) {
    if (tape == NULL) return;
    if (tape->saved) dc_mem_free(be, tape->saved);
    if (tape->work) dc_mem_free(be, tape->work);
    free(tape->lay);
    free(tape);
}

void dc_tf_layer_views(const struct dc_param_layout *pl, enum dc_stack_id stack, size_t layer, struct dc_mem *flat,
                       struct dc_tf_layer *out) {
    static const enum dc_layer_param_id ids[DC_LAYER_PARAM_COUNT] = {
        DC_LAYER_PARAM_IN_PROJ_W, DC_LAYER_PARAM_IN_PROJ_B, DC_LAYER_PARAM_OUT_PROJ_W, DC_LAYER_PARAM_OUT_PROJ_B,
        DC_LAYER_PARAM_ATTN_LN_W, DC_LAYER_PARAM_ATTN_LN_B, DC_LAYER_PARAM_FC1_W,      DC_LAYER_PARAM_FC1_B,
        DC_LAYER_PARAM_FC2_W,     DC_LAYER_PARAM_FC2_B,     DC_LAYER_PARAM_FINAL_LN_W, DC_LAYER_PARAM_FINAL_LN_B,
    };
    dc_view *slots[DC_LAYER_PARAM_COUNT] = {
        &out->in_proj_w, &out->in_proj_b, &out->out_w, &out->out_b, &out->ln_attn_w,  &out->ln_attn_b,
        &out->fc1_w,     &out->fc1_b,     &out->fc2_w, &out->fc2_b, &out->ln_final_w, &out->ln_final_b,
    };
    _Static_assert(DC_LAYER_PARAM_COUNT == 12, "struct dc_tf_layer lists every layer tensor");
    for (size_t i = 0; i < DC_LAYER_PARAM_COUNT; ++i) {
        const struct dc_param_desc *pd = dc_param_layer(pl, stack, layer, ids[i]);
        DC_ASSERT(pd != NULL);
        *slots[i] = dc_view_of(flat, pd->offset, pd->numel);
    }
}

/* The forward's shapes must be the tape's. */
static dc_status check_shapes(struct dc_backend *be, const struct dc_tf_tape *t, const struct dc_tf_config *c) {
    const struct dc_tf_config *m = &t->cfg;
    if (c->B != m->B || c->Tq != m->Tq || c->Tk != m->Tk || c->d != m->d || c->heads != m->heads ||
        c->layers != m->layers)
        return dc_set_error(dc_backend_error(be), DC_ERR_ARG,
                            "transformer: config (B=%zu Tq=%zu Tk=%zu d=%zu heads=%zu layers=%zu) differs from the "
                            "tape's (B=%zu Tq=%zu Tk=%zu d=%zu heads=%zu layers=%zu)",
                            c->B, c->Tq, c->Tk, c->d, c->heads, c->layers, m->B, m->Tq, m->Tk, m->d, m->heads,
                            m->layers);
    if (c->relu_dropout > 0.0f && t->lay[0].hd.n == 0)
        return dc_set_error(dc_backend_error(be), DC_ERR_ARG,
                            "transformer: relu dropout %g, but the tape was made without it", (double)c->relu_dropout);
    return check_config(be, c);
}

/* ---- forward ---- */

/* The attention op's description for layer l (dropout off unless active). */
static struct dc_attention attention_of(const struct dc_tf_tape *t, size_t l, const struct dc_tf_config *c) {
    size_t h = c->d / c->heads;
    bool drop = drop_active(c, c->attn_dropout);
    return (struct dc_attention){.B = c->B, .T = c->Tq, .S = t->S, .d = c->d, .H = c->heads, .ld_q = tf_ld_q(c),
                                 .ld_k = tf_ld_kv(c), .ld_v = tf_ld_kv(c), .ld_out = c->d,
                                 .scale = 1.0f / sqrtf((float)h), .causal = c->causal && c->Tk == 0,
                                 .drop = drop_of(c, drop ? c->attn_dropout : 0.0f, layer_site(c, l, SITE_ATTN))};
}

/* A view from v's start that also spans `to` (both in one allocation, to after v). */
static dc_view span(dc_view v, dc_view to) {
    DC_ASSERT(v.mem == to.mem && to.off >= v.off);
    return dc_view_of(v.mem, v.off, to.off - v.off + to.n);
}

/* k|v (B*S, 2d) = [K0 Wk^T, V0 Wv^T] + [bk, bv]: a 2-batch gemm, its batches K0/V0 and
 * Wk/Wv, writing the two column blocks. */
static dc_status kv_fwd(struct dc_backend *be, struct tf_layer_tape *lt, const struct dc_tf_tape *t,
                        const struct dc_tf_layer *w, const struct dc_tf_config *c) {
    size_t d = c->d, BS = c->B * t->S;
    struct dc_gemm_shape s = {.ta = false, .tb = true, .m = BS, .n = d, .k = d, .lda = d, .ldb = d, .ldc = 2 * d,
                              .stride_a = t->v0.off - t->k0.off, .stride_b = d * d, .stride_c = d, .batch = 2};
    TRY(dc_gemm_ex(be, &s, 1.0f, span(t->k0, t->v0), sub(w->in_proj_w, d * d, 2 * d * d), 0.0f, lt->k));
    return dc_bias_add(be, lt->k, sub(w->in_proj_b, d, 2 * d), BS, 2 * d);
}

/* Attention of layer l: lt->q/k/v/p/ctx from x (queries) and K0/V0 (or x itself). */
static dc_status attn_fwd(struct dc_backend *be, struct dc_tf_tape *t, size_t l, const struct dc_tf_layer *w,
                          const struct dc_tf_config *c) {
    struct tf_layer_tape *lt = &t->lay[l];
    size_t d = c->d, N = c->B * c->Tq;
    if (c->Tk == 0) {
        TRY(linear_fwd(be, lt->q, lt->x, w->in_proj_w, w->in_proj_b, N, d, 3 * d)); /* q|k|v at once */
    } else {
        TRY(linear_fwd(be, lt->q, lt->x, sub(w->in_proj_w, 0, d * d), sub(w->in_proj_b, 0, d), N, d, d));
        TRY(kv_fwd(be, lt, t, w, c));
    }
    struct dc_attention a = attention_of(t, l, c);
    return dc_attention_fwd(be, lt->ctx, lt->p, lt->q, lt->k, lt->v, &a);
}

dc_status dc_tf_fwd(struct dc_backend *be, struct dc_tf_tape *tape, dc_view out, dc_view x, dc_view ctx,
                    const struct dc_tf_layer *w, const struct dc_tf_config *cfg) {
    TRY(check_shapes(be, tape, cfg));
    struct dc_tf_tape *t = tape;
    const struct dc_tf_config *c = cfg;
    size_t B = c->B, T = c->Tq, d = c->d, F = 4 * d, N = B * T, BK = B * c->Tk;
    float emb = sqrtf((float)d);
    DC_ASSERT(out.n >= N * d && x.n >= N * d && (c->Tk == 0 || ctx.n >= BK * d));
    t->cfg = *cfg; /* the backward checks it replays this forward's dropout */

    /* X0 = embeddrop(sqrt(d) x); K0, V0 = two dropouts of sqrt(d) ctx */
    dc_view x0 = t->lay[0].x;
    TRY(dc_copy(be, x0, sub(x, 0, N * d)));
    TRY(dc_scale(be, x0, emb, N * d));
    TRY(drop_fwd(be, x0, x0, N * d, c, c->embed_dropout, c->site_base + SITE_EMBED));
    if (c->Tk) {
        TRY(dc_copy(be, t->k0, sub(ctx, 0, BK * d)));
        TRY(dc_scale(be, t->k0, emb, BK * d));
        TRY(dc_copy(be, t->v0, t->k0));
        TRY(drop_fwd(be, t->k0, t->k0, BK * d, c, c->embed_dropout, c->site_base + SITE_K0));
        TRY(drop_fwd(be, t->v0, t->v0, BK * d, c, c->embed_dropout, c->site_base + SITE_V0));
    }

    for (size_t l = 0; l < c->layers; ++l) {
        struct tf_layer_tape *lt = &t->lay[l];
        const struct dc_tf_layer *lw = &w[l];
        TRY(attn_fwd(be, t, l, lw, c));
        /* r1 = x + resdrop(out_proj(ctx)); y1 = LN_attn(r1) */
        TRY(linear_fwd(be, t->lin, lt->ctx, lw->out_w, lw->out_b, N, d, d));
        TRY(drop_fwd(be, t->lin, t->lin, N * d, c, c->res_dropout, layer_site(c, l, SITE_RES1)));
        TRY(dc_add(be, lt->r1, lt->x, t->lin, N * d));
        TRY(dc_layernorm_fwd(be, lt->y1, lt->mean1, lt->rstd1, lt->r1, lw->ln_attn_w, lw->ln_attn_b, N, d));
        /* r2 = y1 + resdrop(fc2(reludrop(relu(fc1(y1))))); out = LN_final(r2) */
        TRY(linear_fwd(be, lt->h, lt->y1, lw->fc1_w, lw->fc1_b, N, d, F));
        TRY(dc_relu_fwd(be, lt->h, lt->h, N * F));
        dc_view hf = lt->h;
        if (drop_active(c, c->relu_dropout)) {
            hf = lt->hd;
            TRY(drop_fwd(be, hf, lt->h, N * F, c, c->relu_dropout, layer_site(c, l, SITE_RELU)));
        }
        TRY(linear_fwd(be, t->lin, hf, lw->fc2_w, lw->fc2_b, N, F, d));
        TRY(drop_fwd(be, t->lin, t->lin, N * d, c, c->res_dropout, layer_site(c, l, SITE_RES2)));
        TRY(dc_add(be, lt->r2, lt->y1, t->lin, N * d));
        dc_view y = l + 1 < c->layers ? t->lay[l + 1].x : sub(out, 0, N * d);
        TRY(dc_layernorm_fwd(be, y, lt->mean2, lt->rstd2, lt->r2, lw->ln_final_w, lw->ln_final_b, N, d));
    }
    return DC_OK;
}

/* ---- backward ---- */

/* The forward's dropout must be replayed exactly: same settings as the tape's forward. */
static dc_status check_replay(struct dc_backend *be, const struct dc_tf_tape *t, const struct dc_tf_config *c) {
    const struct dc_tf_config *m = &t->cfg;
    if (c->training != m->training || c->seed != m->seed || c->step != m->step || c->site_base != m->site_base ||
        c->attn_dropout != m->attn_dropout || c->relu_dropout != m->relu_dropout ||
        c->res_dropout != m->res_dropout || c->embed_dropout != m->embed_dropout || c->causal != m->causal)
        return dc_set_error(dc_backend_error(be), DC_ERR_ARG,
                            "transformer backward: config differs from the forward's (dropout, seed, step, sites or "
                            "causal)");
    return DC_OK;
}

/* Attention of layer l backward, from dctx (N, d): adds into dx (the layer input's
 * gradient, (N, d)), dK0/dV0 (with a context) and the in_proj gradients. */
static dc_status attn_bwd(struct dc_backend *be, struct dc_tf_tape *t, size_t l, dc_view dx,
                          const struct dc_tf_layer *dw, const struct dc_tf_layer *w, const struct dc_tf_config *c) {
    struct tf_layer_tape *lt = &t->lay[l];
    size_t d = c->d, N = c->B * c->Tq, BS = c->B * t->S;
    struct dc_attention a = attention_of(t, l, c);
    /* the packed q|k|v gradients: zeroed, then added into by the attention backward */
    if (c->Tk == 0) {
        TRY(dc_fill(be, sub(t->dq, 0, N * 3 * d), 0.0f));
    } else {
        TRY(dc_fill(be, sub(t->dq, 0, N * d), 0.0f));
        TRY(dc_fill(be, sub(t->dk, 0, BS * 2 * d), 0.0f));
    }
    TRY(dc_attention_bwd(be, t->dq, t->dk, t->dv, t->dctx, lt->p, lt->q, lt->k, lt->v, &a));
    if (c->Tk == 0) /* keys and values are x too: one linear backward over in_proj */
        return linear_bwd(be, dx, 1.0f, dw->in_proj_w, dw->in_proj_b, t->dq, lt->x, w->in_proj_w, N, d, 3 * d);
    TRY(linear_bwd(be, dx, 1.0f, sub(dw->in_proj_w, 0, d * d), sub(dw->in_proj_b, 0, d), t->dq, lt->x,
                   sub(w->in_proj_w, 0, d * d), N, d, d));
    /* dWk += dk^T K0 and dWv += dv^T V0; dbk|dbv; dK0 += dk Wk and dV0 += dv Wv: 2-batch gemms */
    struct dc_gemm_shape gw = {.ta = true, .tb = false, .m = d, .n = d, .k = BS, .lda = 2 * d, .ldb = d, .ldc = d,
                               .stride_a = d, .stride_b = t->v0.off - t->k0.off, .stride_c = d * d, .batch = 2};
    TRY(dc_gemm_ex(be, &gw, 1.0f, t->dk, span(t->k0, t->v0), 1.0f, sub(dw->in_proj_w, d * d, 2 * d * d)));
    TRY(dc_bias_grad(be, sub(dw->in_proj_b, d, 2 * d), t->dk, BS, 2 * d));
    struct dc_gemm_shape gx = {.ta = false, .tb = false, .m = BS, .n = d, .k = d, .lda = 2 * d, .ldb = d, .ldc = d,
                               .stride_a = d, .stride_b = d * d, .stride_c = t->dv0.off - t->dk0.off, .batch = 2};
    return dc_gemm_ex(be, &gx, 1.0f, t->dk, sub(w->in_proj_w, d * d, 2 * d * d), 1.0f, span(t->dk0, t->dv0));
}

dc_status dc_tf_bwd(struct dc_backend *be, dc_view dx, dc_view dctx, const struct dc_tf_layer *dw, dc_view dout,
                    struct dc_tf_tape *tape, const struct dc_tf_layer *w, const struct dc_tf_config *cfg) {
    TRY(check_shapes(be, tape, cfg));
    TRY(check_replay(be, tape, cfg));
    struct dc_tf_tape *t = tape;
    const struct dc_tf_config *c = cfg;
    size_t B = c->B, T = c->Tq, d = c->d, F = 4 * d, N = B * T, BK = B * c->Tk;
    float emb = sqrtf((float)d);
    DC_ASSERT(dx.n >= N * d && dout.n >= N * d && (c->Tk == 0 || dctx.n >= BK * d));

    if (c->Tk) {
        TRY(dc_fill(be, t->dk0, 0.0f));
        TRY(dc_fill(be, t->dv0, 0.0f));
    }
    dc_view g = t->g, gx = t->gx; /* gradient of the current layer's output, and of its input */
    TRY(dc_copy(be, g, sub(dout, 0, N * d)));
    for (size_t l = c->layers; l-- > 0;) {
        struct tf_layer_tape *lt = &t->lay[l];
        const struct dc_tf_layer *lw = &w[l], *lg = &dw[l];
        /* out = LN_final(r2), r2 = y1 + resdrop(fc2(...)): dy1 starts as dL/dr2 */
        dc_view dproj;
        TRY(dc_fill(be, t->dy1, 0.0f));
        TRY(dc_layernorm_bwd(be, t->dy1, lg->ln_final_w, lg->ln_final_b, g, lt->r2, lt->mean2, lt->rstd2,
                             lw->ln_final_w, N, d));
        TRY(branch_grad(be, &dproj, t->dproj, t->dy1, N * d, c, c->res_dropout, layer_site(c, l, SITE_RES2)));
        /* fc2 on hd = reludrop(relu(z)): dz = dhf * keep where hd > 0, else 0 (relu_bwd on
         * hd, then the dropout's 1/(1-p); the same float products as dropout_bwd then relu_bwd) */
        bool rdrop = drop_active(c, c->relu_dropout);
        dc_view hf = rdrop ? lt->hd : lt->h;
        TRY(linear_bwd(be, t->dhf, 0.0f, lg->fc2_w, lg->fc2_b, dproj, hf, lw->fc2_w, N, F, d));
        TRY(dc_fill(be, t->dz, 0.0f));
        TRY(dc_relu_bwd(be, t->dz, t->dhf, hf, N * F));
        if (rdrop) TRY(dc_scale(be, t->dz, dc_dropout_scale(c->relu_dropout), N * F));
        TRY(linear_bwd(be, t->dy1, 1.0f, lg->fc1_w, lg->fc1_b, t->dz, lt->y1, lw->fc1_w, N, d, F));
        /* y1 = LN_attn(r1), r1 = x + resdrop(out_proj(ctx)): gx starts as dL/dr1 */
        TRY(dc_fill(be, gx, 0.0f));
        TRY(dc_layernorm_bwd(be, gx, lg->ln_attn_w, lg->ln_attn_b, t->dy1, lt->r1, lt->mean1, lt->rstd1,
                             lw->ln_attn_w, N, d));
        TRY(branch_grad(be, &dproj, t->dproj, gx, N * d, c, c->res_dropout, layer_site(c, l, SITE_RES1)));
        TRY(linear_bwd(be, t->dctx, 0.0f, lg->out_w, lg->out_b, dproj, lt->ctx, lw->out_w, N, d, d));
        /* attention: keys and values are K0/V0 (gradients accumulate over layers) or x itself */
        TRY(attn_bwd(be, t, l, gx, lg, lw, c));
        dc_view tmp = g;
        g = gx;
        gx = tmp;
    }
    /* X0 = embeddrop(sqrt(d) x): dx += sqrt(d) drop'(g) */
    TRY(dc_scale(be, g, emb, N * d));
    TRY(drop_bwd(be, sub(dx, 0, N * d), g, N * d, c, c->embed_dropout, c->site_base + SITE_EMBED));
    if (c->Tk) {
        TRY(dc_scale(be, t->dk0, emb, BK * d));
        TRY(dc_scale(be, t->dv0, emb, BK * d));
        TRY(drop_bwd(be, sub(dctx, 0, BK * d), t->dk0, BK * d, c, c->embed_dropout, c->site_base + SITE_K0));
        TRY(drop_bwd(be, sub(dctx, 0, BK * d), t->dv0, BK * d, c, c->embed_dropout, c->site_base + SITE_V0));
    }
    return DC_OK;
}
