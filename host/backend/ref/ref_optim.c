/* Reference reductions and the Adam step. */
#include <math.h>

#include "backend/ref/ref_internal.h"

dc_status ref_sum(struct dc_backend *be, dc_view out, dc_view in, size_t n, float scale) {
    (void)be;
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) s += ref_ptr(in)[i];
    ref_ptr(out)[0] = (float)(s * scale);
    return DC_OK;
}

dc_status ref_norm2(struct dc_backend *be, dc_view out, dc_view in, size_t n) {
    (void)be;
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) s += (double)ref_ptr(in)[i] * ref_ptr(in)[i];
    ref_ptr(out)[0] = (float)sqrt(s);
    return DC_OK;
}

dc_status ref_adam(struct dc_backend *be, dc_view param, dc_view m, dc_view v, dc_view grad, dc_view norm,
                   dc_view active, size_t n, const struct dc_adam *a) {
    (void)be;
    struct dc_adam_consts k = dc_adam_consts_of(a);
    float coef = 1.0f;
    if (k.clip > 0.0f) {
        float c = k.clip / (ref_ptr(norm)[0] + 1e-6f);
        if (c < 1.0f) coef = c;
    }
    float *p = ref_ptr(param), *M = ref_ptr(m), *V = ref_ptr(v);
    const float *g = ref_ptr(grad);
    for (size_t i = 0; i < n; ++i) {
        if (active.mem && ref_ptr(active)[i / DC_ADAM_CHUNK] == 0.0f) continue;
        float gi = g[i] * coef + k.weight_decay * p[i];
        M[i] += k.one_minus_beta1 * (gi - M[i]); /* torch lerp_ with weight < 0.5 */
        V[i] = k.beta2 * V[i] + k.one_minus_beta2 * gi * gi;
        p[i] -= k.step_size * M[i] / (sqrtf(V[i]) / k.bc2_sqrt + k.eps);
    }
    return DC_OK;
}
