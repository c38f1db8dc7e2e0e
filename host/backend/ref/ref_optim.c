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
    float coef = 1.0f;
    if (a->clip > 0.0f) {
        float c = a->clip / (ref_ptr(norm)[0] + 1e-6f);
        if (c < 1.0f) coef = c;
    }
    /* bias corrections in double, as PyTorch's single-tensor Adam computes them in Python */
    float bc2_sqrt = (float)sqrt(1.0 - pow((double)a->beta2, (double)a->step));
    float step_size = (float)((double)a->lr / (1.0 - pow((double)a->beta1, (double)a->step)));
    float *p = ref_ptr(param), *M = ref_ptr(m), *V = ref_ptr(v);
    const float *g = ref_ptr(grad);
    for (size_t i = 0; i < n; ++i) {
        if (active.mem && ref_ptr(active)[i / DC_ADAM_CHUNK] == 0.0f) continue;
        float gi = g[i] * coef + a->weight_decay * p[i];
        M[i] += (1.0f - a->beta1) * (gi - M[i]); /* torch lerp_ with weight < 0.5 */
        V[i] = a->beta2 * V[i] + (1.0f - a->beta2) * gi * gi;
        p[i] -= step_size * M[i] / (sqrtf(V[i]) / bc2_sqrt + a->eps);
    }
    return DC_OK;
}
