/* Reference GEMM: a direct triple loop with double accumulation. */
#include "backend/ref/ref_internal.h"

dc_status ref_gemm(struct dc_backend *be, const struct dc_gemm_shape *s, float alpha, dc_view a, dc_view b, float beta,
                   dc_view c) {
    (void)be;
    for (size_t bi = 0; bi < s->batch; ++bi) {
        const float *A = ref_ptr(a) + bi * s->stride_a;
        const float *B = ref_ptr(b) + bi * s->stride_b;
        float *C = ref_ptr(c) + bi * s->stride_c;
        for (size_t i = 0; i < s->m; ++i) {
            for (size_t j = 0; j < s->n; ++j) {
                double acc = 0.0;
                for (size_t p = 0; p < s->k; ++p) {
                    float av = s->ta ? A[p * s->lda + i] : A[i * s->lda + p];
                    float bv = s->tb ? B[j * s->ldb + p] : B[p * s->ldb + j];
                    acc += (double)av * (double)bv;
                }
                float *cij = &C[i * s->ldc + j];
                /* beta == 0 must not read C: it may hold NaN */
                *cij = beta == 0.0f ? (float)(alpha * acc) : (float)(alpha * acc + (double)beta * *cij);
            }
        }
    }
    return DC_OK;
}
