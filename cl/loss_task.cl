/* Task losses (ops.h dc_task_loss_fwd/bwd; oracles ref_task_regression_* and
 * ref_task_ce_*). One work-group; work-item b takes rows b, b + G, ... and the
 * per-row terms are reduced with loss_group_sum4.
 * kind: 0 MSE, 1 L1, 2 smooth L1, 3 cross-entropy (enum dc_task_loss_kind). */

#define TASK_CE 3u

/* The class id of a CE label, truncated as .long(); -1 when outside [0, O) or NaN. */
inline int task_ce_class(float label, ulong O) { return label > -1.0f && label < (float)O ? (int)label : -1; }

/* log sum_c exp(row[c]), shifted by the row max. */
inline float task_logsumexp(__global const float *row, ulong O) {
    float mx = row[0];
    for (ulong c = 1; c < O; ++c) mx = fmax(mx, row[c]);
    float acc = 0.0f;
    for (ulong c = 0; c < O; ++c) acc += exp(row[c] - mx);
    return mx + log(acc);
}

/* Weight of a CE row: class_w[y] or 1; NaN for an invalid class id (PyTorch raises). */
inline float task_ce_weight(int y, __global const float *cw, uint has_w) { return y < 0 ? NAN : has_w ? cw[y] : 1.0f; }

/* The regression criterion's value (MSE, L1, smooth L1) at x = out - label. */
inline float task_crit(uint kind, float x, float beta) {
    float ax = fabs(x);
    if (kind == 0u) return x * x;
    if (kind == 2u && ax < beta) return 0.5f * x * x / beta; /* beta 0: never */
    return kind == 2u ? ax - 0.5f * beta : ax;
}

/* Its derivative; sign(0) = 0 as in PyTorch. */
inline float task_crit_grad(uint kind, float x, float beta) {
    if (kind == 0u) return 2.0f * x;
    if (kind == 2u && fabs(x) < beta) return x / beta;
    return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : 0.0f;
}

__kernel void task_loss_fwd(__global float *loss, ulong loss_off, __global const float *out, ulong out_off,
                            __global const float *labels, ulong labels_off, __global const float *class_w,
                            ulong class_w_off, uint has_w, ulong B, ulong O, uint kind, float beta, float binary_weight,
                            __local float4 *scratch) {
    __global const float *o = VIEW(out), *y = VIEW(labels), *cw = VIEW(class_w);
    /* CE: (sum w nll, sum w); regression: (sum crit, -, sum bce, rows with label != 0) */
    float4 part = 0.0f;
    for (ulong b = get_local_id(0); b < B; b += get_local_size(0)) {
        float lb = y[b];
        if (kind == TASK_CE) {
            __global const float *row = o + b * O;
            int cls = task_ce_class(lb, O);
            float w = task_ce_weight(cls, cw, has_w);
            float nll = cls < 0 ? NAN : task_logsumexp(row, O) - row[cls];
            part.x = fma(w, nll, part.x);
            part.y += w;
        } else {
            part.x += task_crit(kind, o[b] - lb, beta);
            if (lb != 0.0f) {
                float xo = o[b], t = lb > 0.0f ? 1.0f : 0.0f;
                /* BCE with logits: max(x, 0) - x t + log(1 + exp(-|x|)) */
                part.z += fmax(xo, 0.0f) - xo * t + log1p(exp(-fabs(xo)));
                part.w += 1.0f;
            }
        }
    }
    float4 t = loss_group_sum4(part, scratch);
    if (get_local_id(0) != 0) return;
    float l;
    if (kind == TASK_CE) {
        l = t.x / t.y;
    } else {
        l = t.x / (float)B;
        if (binary_weight > 0.0f && t.w > 0.0f) l += binary_weight * t.z / t.w;
    }
    VIEW(loss)[0] = l;
}

__kernel void task_loss_bwd(__global float *dout, ulong dout_off, __global const float *out, ulong out_off,
                            __global const float *labels, ulong labels_off, __global const float *class_w,
                            ulong class_w_off, uint has_w, ulong B, ulong O, uint kind, float beta, float binary_weight,
                            float dloss, __local float4 *scratch) {
    __global const float *o = VIEW(out), *y = VIEW(labels), *cw = VIEW(class_w);
    __global float *g = VIEW(dout);
    /* the normaliser first: CE sum_b w[y_b]; regression the rows with label != 0 */
    float4 part = 0.0f;
    for (ulong b = get_local_id(0); b < B; b += get_local_size(0)) {
        float lb = y[b];
        if (kind == TASK_CE)
            part.x += task_ce_weight(task_ce_class(lb, O), cw, has_w);
        else
            part.x += lb != 0.0f ? 1.0f : 0.0f;
    }
    float norm = loss_group_sum4(part, scratch).x;
    for (ulong b = get_local_id(0); b < B; b += get_local_size(0)) {
        float lb = y[b];
        if (kind == TASK_CE) {
            __global const float *row = o + b * O;
            int cls = task_ce_class(lb, O);
            float w = dloss * task_ce_weight(cls, cw, has_w) / norm;
            float lse = cls < 0 ? NAN : task_logsumexp(row, O);
            /* d nll / d logit_c = softmax_c - [c == y] */
            for (ulong c = 0; c < O; ++c)
                g[b * O + c] = fma(w, exp(row[c] - lse) - (c == (ulong)cls ? 1.0f : 0.0f), g[b * O + c]);
        } else {
            float d = dloss / (float)B * task_crit_grad(kind, o[b] - lb, beta);
            if (binary_weight > 0.0f && norm > 0.0f && lb != 0.0f) {
                float xo = o[b], t = lb > 0.0f ? 1.0f : 0.0f;
                float sig = xo >= 0.0f ? 1.0f / (1.0f + exp(-xo)) : exp(xo) / (1.0f + exp(xo));
                d += dloss * binary_weight * (sig - t) / norm;
            }
            g[b] += d;
        }
    }
}
