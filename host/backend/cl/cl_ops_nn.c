/* PLACEHOLDER until the row ops land. */
#include "backend/cl/cl_internal.h"

#define NYI(name) return dc_set_error(be->err, DC_ERR_UNSUPPORTED, #name " not yet implemented")
dc_status cl_layernorm_fwd(struct dc_backend *be, dc_view out, dc_view mean, dc_view rstd, dc_view in, dc_view w,
                           dc_view b, size_t rows, size_t cols) {
    (void)out, (void)mean, (void)rstd, (void)in, (void)w, (void)b, (void)rows, (void)cols;
    NYI(layernorm_fwd);
}
dc_status cl_layernorm_bwd(struct dc_backend *be, dc_view din, dc_view dw, dc_view db, dc_view dout, dc_view in,
                           dc_view mean, dc_view rstd, dc_view w, size_t rows, size_t cols) {
    (void)din, (void)dw, (void)db, (void)dout, (void)in, (void)mean, (void)rstd, (void)w, (void)rows, (void)cols;
    NYI(layernorm_bwd);
}
dc_status cl_softmax_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t batch, size_t rows, size_t cols,
                         float scale, bool causal) {
    (void)out, (void)in, (void)batch, (void)rows, (void)cols, (void)scale, (void)causal;
    NYI(softmax_fwd);
}
dc_status cl_softmax_bwd(struct dc_backend *be, dc_view din, dc_view dout, dc_view out, size_t batch, size_t rows,
                         size_t cols, float scale) {
    (void)din, (void)dout, (void)out, (void)batch, (void)rows, (void)cols, (void)scale;
    NYI(softmax_bwd);
}
dc_status cl_meanpool_fwd(struct dc_backend *be, dc_view out, dc_view in, size_t B, size_t T, size_t D) {
    (void)out, (void)in, (void)B, (void)T, (void)D;
    NYI(meanpool_fwd);
}
dc_status cl_meanpool_bwd(struct dc_backend *be, dc_view din, dc_view dout, size_t B, size_t T, size_t D) {
    (void)din, (void)dout, (void)B, (void)T, (void)D;
    NYI(meanpool_bwd);
}
dc_status cl_im2col(struct dc_backend *be, dc_view col, dc_view in, size_t B, size_t T, size_t C, size_t k) {
    (void)col, (void)in, (void)B, (void)T, (void)C, (void)k;
    NYI(im2col);
}
dc_status cl_col2im(struct dc_backend *be, dc_view din, dc_view dcol, size_t B, size_t T, size_t C, size_t k) {
    (void)din, (void)dcol, (void)B, (void)T, (void)C, (void)k;
    NYI(col2im);
}
