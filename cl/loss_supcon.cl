/* Supervised contrastive loss on f (B, q) (ops.h dc_supcon_fwd/bwd; oracle
 * ref_supcon_*). One work-group. Logits l_ij = f_i . f_j / (|f_i|c |f_j|c) / T are
 * formed R rows at a time into local memory (R * B floats, chosen by the host to fit),
 * then each row's statistics are taken by one work-item:
 *   rmax_i = max_j l_ij (diagonal included), ssum_i = sum_{j != i} exp(l_ij - rmax_i),
 *   npos_i = #{j != i: cls_j == cls_i}; row term possum_i / npos_i - rmax_i - log(max(ssum_i, 1e-8)).
 * l_ij and l_ji are bitwise equal (same products, same order). */

/* The contrastive class of a label as a float (exact for the integers involved);
 * NaN for a non-finite label, which then matches nothing. */
inline float supcon_class(float label, uint classification) {
    if (!isfinite(label)) return NAN;
    return classification ? trunc(label) : rint(clamp(label, -3.0f, 3.0f)) + 3.0f;
}

/* Row norms into nrm (B). */
inline void supcon_norms(__global const float *f, ulong B, ulong q, __local float *nrm) {
    for (ulong i = get_local_id(0); i < B; i += get_local_size(0)) {
        float acc = 0.0f;
        for (ulong k = 0; k < q; ++k) acc = fma(f[i * q + k], f[i * q + k], acc);
        nrm[i] = sqrt(acc);
    }
}

/* The norm as F.normalize divides by it. */
inline float supcon_nc(float nrm) { return fmax(nrm, LOSS_NORMALIZE_EPS); }

/* Logits of rows r0 .. r0 + rows - 1 against all B rows into lb (rows, B). When the
 * block holds every row, only j >= i is computed and mirrored (the same bits). */
inline void supcon_logits(__global const float *f, ulong B, ulong q, ulong r0, ulong rows, float inv_t,
                          __local const float *nrm, __local float *lb) {
    bool whole = rows == B;
    for (ulong it = get_local_id(0); it < rows * B; it += get_local_size(0)) {
        ulong i = r0 + it / B, j = it % B;
        if (whole && j < i) continue;
        __global const float *a = f + i * q, *b = f + j * q;
        float acc = 0.0f;
        for (ulong k = 0; k < q; ++k) acc = fma(a[k], b[k], acc);
        float l = acc / (supcon_nc(nrm[i]) * supcon_nc(nrm[j])) * inv_t;
        lb[it] = l;
        if (whole) lb[j * B + i] = l;
    }
}

/* Statistics of row i from its logits l (B): returns (rmax, ssum, npos, possum). */
inline float4 supcon_row(__local const float *l, __global const float *labels, ulong B, ulong i, uint classification) {
    float ci = supcon_class(labels[i], classification);
    float rmax = l[0];
    for (ulong j = 1; j < B; ++j) rmax = fmax(rmax, l[j]);
    float ssum = 0.0f, npos = 0.0f, possum = 0.0f;
    for (ulong j = 0; j < B; ++j) {
        if (j == i) continue;
        ssum += exp(l[j] - rmax);
        if (supcon_class(labels[j], classification) == ci) {
            npos += 1.0f;
            possum += l[j];
        }
    }
    return (float4)(rmax, ssum, npos, possum);
}

/* 1 when some label is not finite (the loss is then NaN). */
inline float supcon_bad_labels(__global const float *labels, ulong B, __local float4 *scratch) {
    float4 part = 0.0f;
    for (ulong i = get_local_id(0); i < B; i += get_local_size(0)) part.x += isfinite(labels[i]) ? 0.0f : 1.0f;
    return loss_group_sum4(part, scratch).x;
}

/* local: nrm (B), lb (R * B), scratch (G float4). */
__kernel void supcon_fwd(__global float *loss, ulong loss_off, __global const float *f, ulong f_off,
                         __global const float *labels, ulong labels_off, ulong B, ulong q, uint classification,
                         float inv_t, ulong R, __local float *nrm, __local float *lb, __local float4 *scratch) {
    __global const float *F = VIEW(f), *y = VIEW(labels);
    supcon_norms(F, B, q, nrm);
    barrier(CLK_LOCAL_MEM_FENCE);
    float4 part = 0.0f; /* (sum of row terms, valid rows, -, -) */
    for (ulong r0 = 0; r0 < B; r0 += R) {
        ulong rows = B - r0 < R ? B - r0 : R;
        supcon_logits(F, B, q, r0, rows, inv_t, nrm, lb);
        barrier(CLK_LOCAL_MEM_FENCE);
        for (ulong rr = get_local_id(0); rr < rows; rr += get_local_size(0)) {
            float4 st = supcon_row(lb + rr * B, y, B, r0 + rr, classification);
            if (st.z > 0.0f) {
                part.x += st.w / st.z - st.x - log(fmax(st.y, LOSS_SUPCON_FLOOR));
                part.y += 1.0f;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float4 t = loss_group_sum4(part, scratch);
    float bad = supcon_bad_labels(y, B, scratch);
    if (get_local_id(0) == 0) VIEW(loss)[0] = bad > 0.0f ? NAN : t.y > 0.0f ? -t.x / t.y : 0.0f;
}

/* df_i += normalize-backward of dfn_i = sum_{j != i} C_ij fn_j / T, where with
 * w = -dloss / nvalid and A_rc = w ([c positive for r] / npos_r - [ssum_r >= 1e-8] exp(l_rc - rmax_r) / ssum_r)
 * for valid rows r (0 otherwise), C_ij = A_ij + A_ji. fn_i . dfn_i = sum_j C_ij l_ij.
 * Where |f_i| >= 1e-12: df_i = (dfn_i - (fn_i . dfn_i) fn_i) / |f_i|, else dfn_i / 1e-12.
 * local: stats = nrm, rmax, ssum, npos (B each), lb (R * B), dotv (R), scratch (G float4). */
__kernel void supcon_bwd(__global float *df, ulong df_off, __global const float *f, ulong f_off,
                         __global const float *labels, ulong labels_off, ulong B, ulong q, uint classification,
                         float inv_t, float dloss, ulong R, __local float *stats, __local float *lb,
                         __local float *dotv, __local float4 *scratch) {
    __global const float *F = VIEW(f), *y = VIEW(labels);
    __global float *D = VIEW(df);
    __local float *nrm = stats, *rmax = stats + B, *ssum = stats + 2 * B, *npos = stats + 3 * B;
    supcon_norms(F, B, q, nrm);
    barrier(CLK_LOCAL_MEM_FENCE);
    float4 part = 0.0f;
    for (ulong r0 = 0; r0 < B; r0 += R) {
        ulong rows = B - r0 < R ? B - r0 : R;
        supcon_logits(F, B, q, r0, rows, inv_t, nrm, lb);
        barrier(CLK_LOCAL_MEM_FENCE);
        for (ulong rr = get_local_id(0); rr < rows; rr += get_local_size(0)) {
            float4 st = supcon_row(lb + rr * B, y, B, r0 + rr, classification);
            rmax[r0 + rr] = st.x;
            ssum[r0 + rr] = st.y;
            npos[r0 + rr] = st.z;
            part.x += st.z > 0.0f ? 1.0f : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float nvalid = loss_group_sum4(part, scratch).x;
    float bad = supcon_bad_labels(y, B, scratch);
    if (nvalid == 0.0f && bad == 0.0f) return; /* the loss is the constant 0 */
    float w = bad > 0.0f ? NAN : -dloss / nvalid;
    for (ulong r0 = 0; r0 < B; r0 += R) {
        ulong rows = B - r0 < R ? B - r0 : R;
        if (rows < B) { /* one block for all rows: lb still holds its logits */
            supcon_logits(F, B, q, r0, rows, inv_t, nrm, lb);
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        for (ulong rr = get_local_id(0); rr < rows; rr += get_local_size(0)) {
            ulong i = r0 + rr;
            float ci = supcon_class(y[i], classification), dot = 0.0f;
            __local float *l = lb + rr * B;
            for (ulong j = 0; j < B; ++j) {
                float a = 0.0f, lij = l[j];
                if (j != i) {
                    bool same = supcon_class(y[j], classification) == ci;
                    if (npos[i] > 0.0f) {
                        a += same ? 1.0f / npos[i] : 0.0f;
                        if (ssum[i] >= LOSS_SUPCON_FLOOR) a -= exp(lij - rmax[i]) / ssum[i];
                    }
                    if (npos[j] > 0.0f) {
                        a += same ? 1.0f / npos[j] : 0.0f;
                        if (ssum[j] >= LOSS_SUPCON_FLOOR) a -= exp(lij - rmax[j]) / ssum[j];
                    }
                    a *= w;
                }
                dot = fma(a, lij, dot);
                l[j] = a / supcon_nc(nrm[j]); /* C_ij / |f_j|c replaces l_ij: dfn_i = sum_j l[j] f_j / T */
            }
            dotv[rr] = dot;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (ulong it = get_local_id(0); it < rows * q; it += get_local_size(0)) {
            ulong rr = it / q, k = it % q, i = r0 + rr;
            __local const float *C = lb + rr * B;
            float acc = 0.0f;
            for (ulong j = 0; j < B; ++j) acc = fma(C[j], F[j * q + k], acc);
            float dfn = acc * inv_t;
            float g = nrm[i] >= LOSS_NORMALIZE_EPS ? (dfn - dotv[rr] * F[i * q + k] / nrm[i]) / nrm[i]
                                                   : dfn / LOSS_NORMALIZE_EPS;
            D[i * q + k] += g;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}
