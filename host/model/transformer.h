/* One cross-modal transformer stack of DecAlign (shared/spec/decalign-model.md §5),
 * composed from backend ops, so it runs on ref and on OpenCL alike.
 *
 * Layout: activations are batch-first (B, T, d) row-major; PyTorch's (T, B, d) is its
 * transpose, which changes no number. Per layer, post-norm:
 *   X = LN_attn(X + resdrop(MHA(X, K0, V0)))
 *   X = LN_final(X + resdrop(fc2(reludrop(relu(fc1(X))))))
 * with X0 = embeddrop(sqrt(d) * x). With a context (Tk > 0): K0 = drop(sqrt(d) * ctx) and
 * V0 = drop(sqrt(d) * ctx), two independent dropout draws, shared by every layer.
 * Without one (Tk == 0): each layer attends to its own current input (keys = values = X).
 * MHA: q = X Wq^T + bq, k = K0 Wk^T + bk, v = V0 Wv^T + bv (Wq|Wk|Wv the row blocks of
 * in_proj_weight), H heads of size h = d/H, softmax(q k^T / sqrt(h)) with attention
 * dropout (and the causal mask when cfg->causal), heads concatenated, out_proj.
 * Dropout uses dc_dropout with sites cfg->site_base + a fixed offset per call site and
 * layer, so ref and OpenCL draw identical masks; cfg->training false disables it. */
#ifndef DC_MODEL_TRANSFORMER_H
#define DC_MODEL_TRANSFORMER_H

#include <stdbool.h>
#include <stdint.h>

#include "decocl/decocl.h"
#include "model/params.h"

struct dc_tf_config {
    size_t B, Tq, Tk; /* Tk == 0: self-attention without context */
    size_t d, heads, layers;
    bool causal;      /* MulT's future mask; only used without context (spec §5) */
    bool training;    /* false: every dropout is the identity */
    float attn_dropout, relu_dropout, res_dropout, embed_dropout;
    uint64_t seed, step;
    uint32_t site_base;
};

/* Views of one layer's tensors inside a flat buffer laid out by dc_param_layout
 * (parameters, or gradients: the same layout). */
struct dc_tf_layer {
    dc_view in_proj_w, in_proj_b;   /* (3d, d), (3d) */
    dc_view out_w, out_b;           /* (d, d), (d) */
    dc_view ln_attn_w, ln_attn_b;   /* (d) */
    dc_view fc1_w, fc1_b;           /* (4d, d), (4d) */
    dc_view fc2_w, fc2_b;           /* (d, 4d), (d) */
    dc_view ln_final_w, ln_final_b; /* (d) */
};
void dc_tf_layer_views(const struct dc_param_layout *pl, enum dc_stack_id stack, size_t layer, struct dc_mem *flat,
                       struct dc_tf_layer *out);

/* Everything the backward needs, allocated once for a config's shapes. */
struct dc_tf_tape;
dc_status dc_tf_tape_create(struct dc_backend *be, const struct dc_tf_config *cfg, struct dc_tf_tape **out);
void dc_tf_tape_free(struct dc_backend *be, struct dc_tf_tape *tape);

/* out (B, Tq, d) from x (B, Tq, d) and ctx (B, Tk, d) (an empty view when Tk == 0);
 * w holds cfg->layers entries. */
dc_status dc_tf_fwd(struct dc_backend *be, struct dc_tf_tape *tape, dc_view out, dc_view x, dc_view ctx,
                    const struct dc_tf_layer *w, const struct dc_tf_config *cfg);
/* Adds dL/dx into dx, dL/dctx into dctx (may be empty when Tk == 0) and every weight
 * gradient into dw (cfg->layers entries), given dout and the tape of the last dc_tf_fwd. */
dc_status dc_tf_bwd(struct dc_backend *be, dc_view dx, dc_view dctx, const struct dc_tf_layer *dw, dc_view dout,
                    struct dc_tf_tape *tape, const struct dc_tf_layer *w, const struct dc_tf_config *cfg);

#endif
