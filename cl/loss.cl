/* Helpers of the loss kernels (loss_*.cl; this file sorts before them). Those kernels
 * run as one work-group (or one per row) whose local size is a power of two chosen by
 * the host from CL_KERNEL_WORK_GROUP_SIZE, and reduce through local memory in a
 * fixed tree order: deterministic, no atomics. */

#define LOSS_COSINE_EPS 1e-8f      /* ref_homo.h DC_REF_COSINE_EPS */
#define LOSS_STATS_VAR_FLOOR 1e-6f /* DC_REF_STATS_VAR_FLOOR */
#define LOSS_NORMALIZE_EPS 1e-12f  /* DC_REF_NORMALIZE_EPS */
#define LOSS_SUPCON_FLOOR 1e-8f    /* DC_REF_SUPCON_DENOM_FLOOR */

/* The sum over the work-group of four partial sums at once, returned to every
 * work-item; scratch holds get_local_size(0) float4 and may be reused on return. */
inline float4 loss_group_sum4(float4 v, __local float4 *scratch) {
    uint lid = get_local_id(0), n = get_local_size(0);
    scratch[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = n / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float4 total = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE); /* every work-item has read scratch[0] before any reuse */
    return total;
}
