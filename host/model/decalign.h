/* The whole DecAlign model (shared/spec/decalign-model.md §1-§6): forward with a tape and
 * backward into a flat gradient buffer laid out by dc_param_layout, composed from backend
 * ops so the same code runs on ref and OpenCL.
 *
 * Dimension letters: B batch, T_m input length, D_m input size, T'_m = T_m - k_m + 1 (T_m
 * when the projection is skipped), d d_model, p pde_dim, O output size (1 or classes).
 * Activations are batch-first (B, T, d) row-major: PyTorch's Conv1d layout (B, d, T) and
 * the transformer's (T, B, d) are transposes of it that change no number.
 *
 * Every loss term is a backend op (decocl/ops.h), so on OpenCL the whole step stays on
 * the device: the host uploads the inputs and labels, and reads back once per forward a
 * small buffer holding the loss slots and the output (B, O).
 */
#ifndef DC_MODEL_DECALIGN_H
#define DC_MODEL_DECALIGN_H

#include <stdbool.h>
#include <stdint.h>

#include "decocl/decocl.h"
#include "model/model_config.h"
#include "model/params.h"

/* A batch as the grad tool reads it from a .npz: text, audio, vision float32 (B, T_m, D_m)
 * and labels (B) (float32 regression values, or integer class ids held as floats). */
struct dc_decalign_batch {
    size_t B, T[3], D[3];
    float *x[3];
    float *labels;
    bool labels_integer; /* the file held an integer dtype */
};
dc_status dc_decalign_batch_load(const char *path, struct dc_decalign_batch *b, struct dc_error *err);
void dc_decalign_batch_free(struct dc_decalign_batch *b);

/* The parameter dims from the config and the input feature sizes D_l, D_a, D_v. */
void dc_decalign_dims(const struct dc_model_config *cfg, const size_t feat[3], struct dc_model_dims *dims);

struct dc_decalign_losses {
    double task, dec, hete, homo, ct, total; /* a term whose weight is 0 is not computed: 0 */
};

struct dc_decalign;

/* A model instance for batch size B and input lengths T[3] on be; pl must outlive it.
 * Fails (DC_ERR_ARG) on shapes the config cannot run (T_m < k_m, use_sequence_mask). */
dc_status dc_decalign_create(struct dc_backend *be, const struct dc_model_config *cfg,
                             const struct dc_param_layout *pl, size_t B, const size_t T[3], struct dc_decalign **out,
                             struct dc_error *err);
void dc_decalign_free(struct dc_decalign *m);

/* Which tensors take part in the loss (pl->count flags): false for a projection skipped
 * because D_m == d, everything modality-specific of an inactive modality, and the
 * homogeneity MLPs when L_homo is not computed (beta 0 or fewer than 3 modalities). */
void dc_decalign_active(const struct dc_decalign *m, bool *active);

/* Class weights for classification (num_classes floats), or NULL for unweighted. The
 * caller computes `balanced` weights from its training labels. Copied. */
void dc_decalign_set_class_weights(struct dc_decalign *m, const float *w);

/* Forward: params is a flat buffer (pl->total floats); x[m] host (B, T_m, D_m); labels
 * host (B). training enables every dropout (masks from seed and step). Fills loss and
 * keeps the tape for dc_decalign_backward. */
dc_status dc_decalign_forward(struct dc_decalign *m, struct dc_mem *params, const float *const x[3],
                              const float *labels, bool training, uint64_t seed, uint64_t step,
                              struct dc_decalign_losses *loss, struct dc_error *err);
/* The output of the last forward, host (B, O). */
const float *dc_decalign_output(const struct dc_decalign *m);
size_t dc_decalign_out_dim(const struct dc_decalign *m);

/* Phases of a step, for `decocl bench step`'s breakdown. The model calls the hook as each
 * phase begins (in this order in the forward; BACKWARD once, at the start of the
 * backward); the hook may synchronise the device and read a clock. ENCODERS covers the
 * input dropout, projections, unique/common encoders, pooling and the decoupling loss;
 * HEAD the fusion, output layer, task and contrastive losses. */
enum dc_phase {
    DC_PHASE_ENCODERS,
    DC_PHASE_HETE,
    DC_PHASE_HOMO,
    DC_PHASE_TRANSFORMERS,
    DC_PHASE_HEAD,
    DC_PHASE_BACKWARD,
    DC_PHASE_COUNT
};
const char *dc_phase_name(enum dc_phase p); /* "encoders", "hete", "homo", "transformers", "head", "backward" */
typedef void (*dc_phase_fn)(void *ctx, enum dc_phase begun);
/* NULL fn removes the hook. */
void dc_decalign_set_phase_hook(struct dc_decalign *m, dc_phase_fn fn, void *ctx);

/* Backward of the total loss of the last forward: ADDS into grads (flat, pl->total
 * floats; zero it first). */
dc_status dc_decalign_backward(struct dc_decalign *m, struct dc_mem *grads, struct dc_mem *params,
                               struct dc_error *err);

#endif
