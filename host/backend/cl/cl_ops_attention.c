/* OpenCL fused attention (kernels in cl/attention.cl): one launch forward, one backward. */
#include "backend/cl/cl_internal.h"
#include "core/rng.h"
#include <stdlib.h>

/* Work-items per group: at most 64, the device's and this kernel's limits, and no more
 * than the rows there are to share out. On a CPU the local-memory kernels run one
 * work-item per (b, head), which walks all its rows: PoCL then builds no work-item loops
 * around the barrier regions (MOSI shapes, PoCL 3.1: backward 2.5 ms instead of 3.3).
 * DECOCL_ATTENTION_GROUP=N forces N (tests use it to cover several rows per group). */
static dc_status group_size(struct cl_backend *cb, enum cl_kernel_id id, size_t rows, size_t *out) {
    const char *forced = getenv("DECOCL_ATTENTION_GROUP");
    bool local_kernel = id == CLK_attention_fwd_local || id == CLK_attention_bwd_local;
    if (forced && *forced && atoi(forced) > 0) {
        *out = (size_t)atoi(forced);
        if (*out > cb->max_wg) *out = cb->max_wg;
        return DC_OK;
    }
    if (local_kernel && (cb->device_type & CL_DEVICE_TYPE_CPU)) {
        *out = 1;
        return DC_OK;
    }
    size_t kernel_max = 0;
    DC_CL_RETURN_IF(&cb->base, clGetKernelWorkGroupInfo(cb->kernels[id], cb->device, CL_KERNEL_WORK_GROUP_SIZE,
                                                        sizeof kernel_max, &kernel_max, NULL));
    size_t cap = 64;
    if (cb->max_wg < cap) cap = cb->max_wg;
    if (kernel_max && kernel_max < cap) cap = kernel_max;
    if (rows < cap) cap = rows;
    /* equal groups: rounding the global size up adds fewer than rows / cap idle items */
    size_t groups = (rows + cap - 1) / cap;
    *out = (rows + groups - 1) / groups;
    return DC_OK;
}

/* The arguments both kernels share after their views: sizes, scale, mask, dropout. */
#define ATTENTION_ARGS(a)                                                                                             \
    CLA_U64((a)->T), CLA_U64((a)->S), CLA_U64((a)->H), CLA_U64((a)->d / (a)->H), CLA_U64((a)->ld_q),                  \
        CLA_U64((a)->ld_k), CLA_U64((a)->ld_v), CLA_U64((a)->ld_out), CLA_F32((a)->scale), CLA_U32((a)->causal),      \
        CLA_U32((a)->drop.p > 0.0f), CLA_U64((a)->drop.seed), CLA_U32((a)->drop.site), CLA_U64((a)->drop.step),       \
        CLA_U32((a)->drop.p > 0.0f ? dc_dropout_threshold((a)->drop.p) : 0),                                           \
        CLA_F32((a)->drop.p > 0.0f ? dc_dropout_scale((a)->drop.p) : 1.0f)

static dc_status local_mem_size(struct cl_backend *cb, size_t *out) {
    cl_ulong n = 0;
    DC_CL_RETURN_IF(&cb->base, clGetDeviceInfo(cb->device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof n, &n, NULL));
    *out = (size_t)n;
    return DC_OK;
}

/* Local memory of the *_local kernels (see cl/attention.cl), lt work-items per group. */
static size_t round8(size_t n) { return (n + 7) / 8 * 8; }
#define ATT_FR_EXTRA 128 /* as in cl/attention.cl: a row's dropout factors take S8 + 128 floats */
static size_t fwd_local_bytes(const struct dc_attention *a, size_t lt) {
    return ((2 * (a->d / a->H) + lt) * round8(a->S) + lt * (round8(a->S) + ATT_FR_EXTRA)) * sizeof(cl_float);
}
/* ... with the whole head's dropout factors instead of per-row buffers: T*S elements
 * from a 64-aligned start, whole 64-float groups */
static size_t fwd_head_bytes(const struct dc_attention *a, size_t lt) {
    return ((2 * (a->d / a->H) + lt) * round8(a->S) + (a->T * a->S / 64 + 2) * 64) * sizeof(cl_float);
}
static size_t bwd_local_bytes(const struct dc_attention *a, size_t lt) {
    size_t S8 = round8(a->S), T8 = round8(a->T), h = a->d / a->H;
    return (2 * h * S8 + 2 * h * T8 + 2 * a->S * T8 + lt * S8) * sizeof(cl_float);
}

dc_status cl_attention_fwd(struct dc_backend *be, dc_view out, dc_view probs, dc_view q, dc_view k, dc_view v,
                           const struct dc_attention *a) {
    struct cl_backend *cb = cl_of(be);
    size_t local_mem, lt;
    dc_status st = local_mem_size(cb, &local_mem);
    if (st == DC_OK) st = group_size(cb, CLK_attention_fwd_local, a->T, &lt);
    if (st != DC_OK) return st;
    /* keys, values and the rows' dropped probabilities in local memory when they fit,
     * with fewer rows per group if need be (GPUs have tens of KiB), else everything
     * straight from global memory */
    size_t need = fwd_local_bytes(a, lt);
    while (need > local_mem && lt > 1) {
        lt = (lt + 1) / 2;
        need = fwd_local_bytes(a, lt);
    }
    enum cl_kernel_id id = CLK_attention_fwd_local;
    if (need > local_mem) {
        id = CLK_attention_fwd;
        st = group_size(cb, id, a->T, &lt);
        if (st != DC_OK) return st;
    }
    /* one work-item per group (CPUs) and dropout on: the head's factors at once, if they fit */
    bool head_factors = id == CLK_attention_fwd_local && lt == 1 && a->drop.p > 0.0f &&
                        fwd_head_bytes(a, lt) <= local_mem;
    if (head_factors) need = fwd_head_bytes(a, lt);
    /* the local kernel's work-items walk the rows; the global one has an item per row */
    size_t global[2] = {id == CLK_attention_fwd_local ? lt : a->T, a->B * a->H}, local[2] = {lt, 1};
    struct cl_arg args[] = {CLA_VIEW(out), CLA_VIEW(probs),   CLA_VIEW(q),              CLA_VIEW(k),
                            CLA_VIEW(v),   ATTENTION_ARGS(a), CLA_U32(head_factors), CLA_LOCAL(need)};
    /* the global-memory kernel has neither the head_factors nor the local argument */
    size_t nargs = id == CLK_attention_fwd_local ? CL_NARGS(args) : CL_NARGS(args) - 2;
    return cl_launch(cb, id, 2, global, local, args, nargs);
}

dc_status cl_attention_bwd(struct dc_backend *be, dc_view dq, dc_view dk, dc_view dv, dc_view dout, dc_view probs,
                           dc_view q, dc_view k, dc_view v, const struct dc_attention *a) {
    struct cl_backend *cb = cl_of(be);
    size_t local_mem, lt;
    dc_status st = local_mem_size(cb, &local_mem);
    if (st == DC_OK) st = group_size(cb, CLK_attention_bwd_local, a->T > a->S ? a->T : a->S, &lt);
    if (st != DC_OK) return st;
    /* one work-item per (b, head): the serial kernel, which accumulates dK and dV as
     * outer products (MOSI shapes, PoCL 3.1: 1.6 ms instead of 2.5-2.9 for the local kernel
     * run with one work-item) */
    size_t S8 = round8(a->S), serial_need = (4 * (a->d / a->H) * S8 + S8) * sizeof(cl_float);
    if (lt == 1 && serial_need <= local_mem) {
        size_t global[2] = {1, a->B * a->H}, local[2] = {1, 1};
        struct cl_arg args[] = {CLA_VIEW(dq), CLA_VIEW(dk), CLA_VIEW(dv),      CLA_VIEW(dout),        CLA_VIEW(probs),
                                CLA_VIEW(q),  CLA_VIEW(k),  CLA_VIEW(v),       ATTENTION_ARGS(a), CLA_LOCAL(serial_need)};
        return cl_launch(cb, CLK_attention_bwd_serial, 2, global, local, args, CL_NARGS(args));
    }
    size_t need = bwd_local_bytes(a, lt);
    while (need > local_mem && lt > 1) {
        lt = (lt + 1) / 2;
        need = bwd_local_bytes(a, lt);
    }
    enum cl_kernel_id id = CLK_attention_bwd_local;
    if (need > local_mem) {
        /* the global-memory kernel keeps only D_t (T floats) locally */
        id = CLK_attention_bwd;
        need = a->T * sizeof(cl_float);
        if (need > local_mem)
            return dc_set_error(be->err, DC_ERR_UNSUPPORTED,
                                "%s: attention_bwd needs %zu bytes of local memory for T=%zu query rows, the device "
                                "has %zu",
                                be->device_name, need, a->T, local_mem);
        st = group_size(cb, id, a->T > a->S ? a->T : a->S, &lt);
        if (st != DC_OK) return st;
    }
    size_t global[2] = {lt, a->B * a->H}, local[2] = {lt, 1};
    struct cl_arg args[] = {CLA_VIEW(dq), CLA_VIEW(dk), CLA_VIEW(dv),      CLA_VIEW(dout), CLA_VIEW(probs),
                            CLA_VIEW(q),  CLA_VIEW(k),  CLA_VIEW(v),       ATTENTION_ARGS(a), CLA_LOCAL(need)};
    return cl_launch(cb, id, 2, global, local, args, CL_NARGS(args));
}
