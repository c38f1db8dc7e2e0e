/* Op cases for the fused attention pair. Test shapes cover B 1/3, T 1/7/33, S 1/5/65,
 * H 1/2/8, h 1/3/8 (plus 12 and 40: a partial float8 block and a head wider than one
 * pass of the kernel), causal on and off, dropout 0 and 0.3, and row strides wider than
 * d (q, k, v as column blocks of a packed projection). Bench shapes are the MOSI
 * transformer's: cross-modal (T 50, S 100), with and without dropout, and causal
 * self-attention (T = S = 50). The last two test shapes need more local memory than
 * PoCL's CPU device has (1 MiB), so there the global-memory fallback kernels run. */
#include "bench/op_cases.h"

#include <math.h>

struct attention_shape {
    size_t B, T, S, H, h;
    bool causal;
    float p;
    size_t pad; /* extra floats per row of q, k, v, out */
};

static struct dc_attention attention_of(const struct dc_op_case *c) {
    size_t d = c->p[3] * c->p[4], ld = d + c->p[6];
    return (struct dc_attention){.B = c->p[0], .T = c->p[1], .S = c->p[2], .d = d, .H = c->p[3], .ld_q = ld,
                                 .ld_k = ld, .ld_v = ld, .ld_out = ld, .scale = c->f[0], .causal = c->p[5] != 0,
                                 .drop = {.p = c->f[1], .seed = 0x5eedull << 20, .step = 11, .site = 77}};
}

/* tensors: out, probs, q, k, v */
static dc_status run_attention_fwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    struct dc_attention a = attention_of(c);
    return dc_attention_fwd(be, t[0], t[1], t[2], t[3], t[4], &a);
}

/* tensors: dq, dk, dv, dout, probs, q, k, v, out; with p[7] the forward first makes
 * probs (causal rows need their masked entries 0), else probs is random */
static dc_status run_attention_bwd(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t) {
    struct dc_attention a = attention_of(c);
    if (c->p[7]) {
        dc_status st = dc_attention_fwd(be, t[8], t[4], t[5], t[6], t[7], &a);
        if (st != DC_OK) return st;
    }
    return dc_attention_bwd(be, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], &a);
}

static struct dc_op_case *attention_case(struct dc_case_list *l, enum dc_op op, const struct attention_shape *s,
                                         bool fwd_first) {
    struct dc_op_case *c =
        dc_case_add(l, op, op == DC_OP_attention_fwd ? run_attention_fwd : run_attention_bwd, 1e-9f,
                    "%s B=%zu T=%zu S=%zu H=%zu h=%zu%s p=%g%s", dc_op_name(op), s->B, s->T, s->S, s->H, s->h,
                    s->causal ? " causal" : "", (double)s->p, s->pad ? " strided" : "");
    c->p[0] = s->B, c->p[1] = s->T, c->p[2] = s->S, c->p[3] = s->H, c->p[4] = s->h, c->p[5] = s->causal;
    c->p[6] = s->pad, c->p[7] = fwd_first;
    c->f[0] = 1.0f / sqrtf((float)s->h), c->f[1] = s->p;
    size_t B = s->B, T = s->T, S = s->S;
    /* scores q.k and the products with v: 2 h flops each, twice forward, about 3x backward */
    c->flops = 4.0 * (double)(B * s->H * T * S * s->h) * (op == DC_OP_attention_fwd ? 1.0 : 2.5);
    return c;
}

static void cases_fwd_bwd(struct dc_case_list *l, const struct attention_shape *s, bool bench) {
    size_t d = s->H * s->h, ld = d + s->pad, B = s->B, T = s->T, S = s->S, P = B * s->H * T * S;
    struct dc_op_case *c = attention_case(l, DC_OP_attention_fwd, s, false);
    /* out must be overwritten without being read, except the padding columns it leaves */
    dc_case_tensor(c, "out", B * T * ld, s->pad ? DC_FILL_UNIFORM : DC_FILL_NAN, -1, 1, true);
    dc_case_tensor(c, "probs", P, DC_FILL_NAN, 0, 0, true);
    dc_case_tensor(c, "q", B * T * ld, DC_FILL_UNIFORM, -2, 2, false);
    dc_case_tensor(c, "k", B * S * ld, DC_FILL_UNIFORM, -2, 2, false);
    dc_case_tensor(c, "v", B * S * ld, DC_FILL_UNIFORM, -1, 1, false);

    bool fwd_first = s->causal && !bench;
    if (bench && s->causal) return; /* the backward's cost does not depend on the mask much */
    c = attention_case(l, DC_OP_attention_bwd, s, fwd_first);
    dc_case_tensor(c, "dq", B * T * ld, DC_FILL_UNIFORM, -1, 1, true);
    dc_case_tensor(c, "dk", B * S * ld, DC_FILL_UNIFORM, -1, 1, true);
    dc_case_tensor(c, "dv", B * S * ld, DC_FILL_UNIFORM, -1, 1, true);
    dc_case_tensor(c, "dout", B * T * ld, DC_FILL_UNIFORM, -1, 1, false);
    /* the backward does not need rows that sum to 1 (see softmax_bwd's cases); with
     * dropout, negative values are the dropped elements (sign bit set, see ops.h) */
    dc_case_tensor(c, "probs", P, fwd_first ? DC_FILL_NAN : DC_FILL_UNIFORM, s->p > 0.0f ? -1 : 0, 1, fwd_first);
    dc_case_tensor(c, "q", B * T * ld, DC_FILL_UNIFORM, -2, 2, false);
    dc_case_tensor(c, "k", B * S * ld, DC_FILL_UNIFORM, -2, 2, false);
    dc_case_tensor(c, "v", B * S * ld, DC_FILL_UNIFORM, -1, 1, false);
    dc_case_tensor(c, "out", fwd_first ? B * T * ld : 1, DC_FILL_UNIFORM, -1, 1, fwd_first);
}

void dc_cases_attention(struct dc_case_list *l, bool bench) {
    static const struct attention_shape test_s[] = {
        {1, 1, 1, 1, 1, false, 0.0f, 0},   {3, 7, 5, 2, 3, false, 0.0f, 0},   {3, 7, 5, 2, 3, false, 0.3f, 0},
        {1, 33, 65, 8, 8, false, 0.3f, 0}, {3, 33, 65, 2, 8, false, 0.0f, 3}, {3, 7, 7, 8, 1, true, 0.0f, 0},
        {3, 7, 7, 8, 3, true, 0.3f, 0},    {1, 33, 33, 1, 8, true, 0.3f, 0},  {3, 33, 33, 2, 12, true, 0.0f, 2},
        {1, 1, 65, 8, 3, false, 0.3f, 0},  {3, 33, 1, 1, 8, false, 0.3f, 0},  {1, 7, 5, 2, 40, false, 0.3f, 1},
        {1, 65, 65, 1, 3, true, 0.3f, 0},  {3, 7, 33, 8, 8, true, 0.0f, 16},
        /* tiles beyond PoCL's 1 MiB of local memory: the global-memory kernels */
        {1, 3, 4000, 1, 40, false, 0.3f, 0}, {1, 400, 400, 1, 3, true, 0.3f, 0},
    };
    static const struct attention_shape bench_s[] = {
        {32, 50, 100, 8, 8, false, 0.1f, 0},
        {32, 50, 100, 8, 8, false, 0.0f, 0},
        {32, 50, 50, 8, 8, true, 0.1f, 2 * 64},
    };
    const struct attention_shape *v = bench ? bench_s : test_s;
    size_t n = bench ? sizeof bench_s / sizeof bench_s[0] : sizeof test_s / sizeof test_s[0];
    for (size_t i = 0; i < n; ++i) cases_fwd_bwd(l, &v[i], bench);
}
