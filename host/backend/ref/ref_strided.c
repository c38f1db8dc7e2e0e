/* Reference strided 2-D copies (ops.h: dc_copy2d, dc_axpy2d). */
#include <string.h>

#include "backend/ref/ref_internal.h"

dc_status ref_copy2d(struct dc_backend *be, dc_view dst, size_t ld_dst, dc_view src, size_t ld_src, size_t rows,
                     size_t cols) {
    (void)be;
    for (size_t r = 0; r < rows; ++r)
        memcpy(ref_ptr(dst) + r * ld_dst, ref_ptr(src) + r * ld_src, cols * sizeof(float));
    return DC_OK;
}

dc_status ref_axpy2d(struct dc_backend *be, dc_view dst, size_t ld_dst, float alpha, dc_view src, size_t ld_src,
                     size_t rows, size_t cols) {
    (void)be;
    for (size_t r = 0; r < rows; ++r) {
        float *y = ref_ptr(dst) + r * ld_dst;
        const float *x = ref_ptr(src) + r * ld_src;
        for (size_t c = 0; c < cols; ++c) y[c] += alpha * x[c];
    }
    return DC_OK;
}
