/* Parameters (or gradients, or Adam moments) in the flat layout <-> safetensors files
 * with the reference names and shapes, so a PyTorch state_dict saved with safetensors
 * loads here and ours loads there. Loading is strict, like load_state_dict(strict=True). */
#ifndef DC_MODEL_CHECKPOINT_H
#define DC_MODEL_CHECKPOINT_H

#include "model/params.h"
#include "model/safetensors.h"

/* Writes every tensor of pl from buf (pl->total floats) as <prefix><name>, after the
 * extra tensors (e.g. the grad tool's `output`), atomically. The metadata is
 * "format": "pt", "decocl_version": DECOCL_VERSION, then meta in order; meta may not
 * repeat those two keys. prefix may be NULL (""). */
dc_status dc_checkpoint_write(const char *path, const struct dc_param_layout *pl, const float *buf, const char *prefix,
                              const struct dc_st_entry *extra, size_t nextra, const struct dc_st_kv *meta, size_t nmeta,
                              struct dc_error *err);
/* dc_checkpoint_write with no prefix and no extra tensors. */
dc_status dc_checkpoint_save(const char *path, const struct dc_param_layout *pl, const float *params,
                             const struct dc_st_kv *meta, size_t nmeta, struct dc_error *err);

/* Copies the tensors of f named <prefix><name> into buf (pl->total floats). With an
 * empty prefix every tensor of f must be a parameter; with a prefix, tensors without it
 * are ignored. A missing, unexpected or mis-shaped tensor is DC_ERR_FORMAT naming it
 * (label stands for the file); buf is only written (padding zeroed) when all match. */
dc_status dc_checkpoint_gather(const struct dc_st_file *f, const char *label, const struct dc_param_layout *pl,
                               const char *prefix, float *buf, struct dc_error *err);

/* Reads path strictly into params (pl->total floats). When meta is not NULL it receives
 * the file's metadata (free with dc_st_meta_free). */
dc_status dc_checkpoint_load(const char *path, const struct dc_param_layout *pl, float *params, struct dc_st_meta *meta,
                             struct dc_error *err);

#endif
