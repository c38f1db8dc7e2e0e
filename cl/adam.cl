/* PyTorch Adam (L2 weight decay added to the gradient) with clip_grad_norm folded in;
 * see dc_adam in include/decocl/ops.h. The clip coefficient is computed here from the
 * norm on the device, so a training step never reads it back. */
__kernel void adam(__global float *param, ulong param_off, __global float *m, ulong m_off, __global float *v,
                   ulong v_off, __global const float *grad, ulong grad_off, __global const float *norm, ulong norm_off,
                   __global const float *active, ulong active_off, uint has_active, ulong n, float step_size,
                   float one_minus_beta1, float beta2, float one_minus_beta2, float eps, float weight_decay,
                   float clip, float bc2_sqrt) {
#pragma OPENCL FP_CONTRACT OFF /* round as ref and PyTorch do: no fused multiply-adds */
    ulong i = get_global_id(0);
    if (i >= n) return;
    if (has_active && VIEW(active)[i / 64] == 0.0f) return; /* 64 = DC_ADAM_CHUNK */
    float coef = 1.0f;
    if (clip > 0.0f) {
        float c = clip / (VIEW(norm)[0] + 1e-6f);
        if (c < 1.0f) coef = c;
    }
    float p = VIEW(param)[i];
    float g = VIEW(grad)[i] * coef + weight_decay * p;
    float mi = VIEW(m)[i], vi = VIEW(v)[i];
    mi += one_minus_beta1 * (g - mi);
    vi = beta2 * vi + one_minus_beta2 * g * g;
    VIEW(m)[i] = mi;
    VIEW(v)[i] = vi;
    VIEW(param)[i] = p - step_size * mi / (sqrt(vi) / bc2_sqrt + eps);
}
