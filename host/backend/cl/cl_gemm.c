/* PLACEHOLDER until the GEMM providers land: reports the op as unsupported. */
#include "backend/cl/cl_internal.h"

dc_status cl_gemm_init(struct cl_backend *cb) {
    cb->base.gemm_provider = DC_GEMM_OWN;
    return DC_OK;
}

dc_status cl_gemm(struct dc_backend *be, const struct dc_gemm_shape *s, float alpha, dc_view a, dc_view b, float beta,
                  dc_view c) {
    (void)s, (void)alpha, (void)a, (void)b, (void)beta, (void)c;
    return dc_set_error(be->err, DC_ERR_UNSUPPORTED, "gemm not yet implemented");
}
