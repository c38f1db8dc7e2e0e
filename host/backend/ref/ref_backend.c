#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ref/ref_internal.h"
#include "decocl/decocl.h"

static void ref_close(struct dc_backend *be) { free(be); }

static dc_status ref_mem_alloc(struct dc_backend *be, size_t n, struct dc_mem **out) {
    struct dc_mem *m = calloc(1, sizeof *m);
    /* 64-byte alignment keeps vector loads in ref loops cheap; at least one element */
    size_t bytes = ((n ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
    if (m) m->data = aligned_alloc(64, bytes);
    if (!m || !m->data) {
        free(m);
        return dc_set_error(be->err, DC_ERR_NOMEM, "ref: cannot allocate %zu floats", n);
    }
    m->n = n;
    *out = m;
    return DC_OK;
}

static void ref_mem_free(struct dc_backend *be, struct dc_mem *mem) {
    (void)be;
    free(mem->data);
    free(mem);
}

static size_t ref_mem_floats(const struct dc_mem *mem) { return mem->n; }

static dc_status ref_upload(struct dc_backend *be, dc_view dst, const float *src) {
    (void)be;
    memcpy(ref_ptr(dst), src, dst.n * sizeof(float));
    return DC_OK;
}

static dc_status ref_download(struct dc_backend *be, float *dst, dc_view src) {
    (void)be;
    memcpy(dst, ref_ptr(src), src.n * sizeof(float));
    return DC_OK;
}

static dc_status ref_fill(struct dc_backend *be, dc_view dst, float value) {
    (void)be;
    float *p = ref_ptr(dst);
    for (size_t i = 0; i < dst.n; ++i) p[i] = value;
    return DC_OK;
}

static dc_status ref_copy(struct dc_backend *be, dc_view dst, dc_view src) {
    (void)be;
    memmove(ref_ptr(dst), ref_ptr(src), dst.n * sizeof(float));
    return DC_OK;
}

static dc_status ref_sync(struct dc_backend *be) {
    (void)be;
    return DC_OK;
}

static const struct dc_backend_i ref_impl = {
    .name = "ref",
    .close = ref_close,
    .mem_alloc = ref_mem_alloc,
    .mem_free = ref_mem_free,
    .mem_floats = ref_mem_floats,
    .upload = ref_upload,
    .download = ref_download,
    .fill = ref_fill,
    .copy = ref_copy,
    .sync = ref_sync,
    .gemm = ref_gemm,
    .bias_add = ref_bias_add,
    .bias_grad = ref_bias_grad,
    .relu_fwd = ref_relu_fwd,
    .relu_bwd = ref_relu_bwd,
    .layernorm_fwd = ref_layernorm_fwd,
    .layernorm_bwd = ref_layernorm_bwd,
    .softmax_fwd = ref_softmax_fwd,
    .softmax_bwd = ref_softmax_bwd,
    .dropout_fwd = ref_dropout_fwd,
    .dropout_bwd = ref_dropout_bwd,
    .scale = ref_scale,
    .axpy = ref_axpy,
    .add = ref_add,
    .meanpool_fwd = ref_meanpool_fwd,
    .meanpool_bwd = ref_meanpool_bwd,
    .im2col = ref_im2col,
    .col2im = ref_col2im,
    .sum = ref_sum,
    .norm2 = ref_norm2,
    .adam = ref_adam,
    .copy2d = ref_copy2d,
    .axpy2d = ref_axpy2d,
    .decouple_fwd = ref_loss_decouple_fwd,
    .decouple_bwd = ref_loss_decouple_bwd,
    .homo_stats_fwd = ref_loss_homo_stats_fwd,
    .homo_stats_bwd = ref_loss_homo_stats_bwd,
    .homo_mmd_fwd = ref_loss_homo_mmd_fwd,
    .homo_mmd_bwd = ref_loss_homo_mmd_bwd,
    .task_loss_fwd = ref_loss_task_fwd,
    .task_loss_bwd = ref_loss_task_bwd,
    .supcon_fwd = ref_loss_supcon_fwd,
    .supcon_bwd = ref_loss_supcon_bwd,
    .gmm_fwd = ref_gmm_fwd,
    .gmm_bwd = ref_gmm_bwd,
    .sinkhorn_fwd = ref_sinkhorn_fwd,
    .sinkhorn_bwd = ref_sinkhorn_bwd,
    .local_proto_fwd = ref_local_proto_fwd,
    .local_proto_bwd = ref_local_proto_bwd,
    .attention_fwd = ref_attention_fwd,
    .attention_bwd = ref_attention_bwd,
};

dc_status dc_ref_open(struct dc_backend **out, struct dc_error *err) {
    struct dc_backend *be = calloc(1, sizeof *be);
    if (!be) return dc_set_error(err, DC_ERR_NOMEM, "ref: cannot allocate the backend");
    be->impl = &ref_impl;
    be->err = err ? err : &be->own_err;
    for (int op = 0; op < DC_OP_COUNT; ++op) be->op_ok[op] = true;
    snprintf(be->device_name, sizeof be->device_name, "ref (plain C)");
    snprintf(be->driver, sizeof be->driver, "decocl %s", DECOCL_VERSION);
    be->gemm_provider = DC_GEMM_OWN;
    be->program_origin = "none";
    *out = be;
    return DC_OK;
}
