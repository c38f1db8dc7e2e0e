/* Homogeneity losses on zl, za, zv (B, p) (ops.h dc_homo_stats_* and dc_homo_mmd_*;
 * oracles ref_homo_stats_* and ref_homo_mmd_*). Modality m of the three is
 * homo_z(m, zl, za, zv). */

inline __global const float *homo_z(uint m, __global const float *zl, __global const float *za,
                                    __global const float *zv) {
    return m == 0u ? zl : m == 1u ? za : zv;
}

/* ---- distribution statistics: (dist(l,a) + dist(l,v) + dist(a,v)) / 3 ---- */

/* Mean of column j of z (B, p). */
inline float stats_mean(__global const float *z, ulong B, ulong p, ulong j) {
    float acc = 0.0f;
    for (ulong n = 0; n < B; ++n) acc += z[n * p + j];
    return acc / (float)B;
}

/* (vraw, var, m3, skew) of column j with mean mu: vraw = mean Z^2, var = max(vraw, 1e-6),
 * m3 = mean Z^3, skew = m3 / var^1.5, Z = z - mu. */
inline float4 stats_moments(__global const float *z, ulong B, ulong p, ulong j, float mu) {
    float a2 = 0.0f, a3 = 0.0f;
    for (ulong n = 0; n < B; ++n) {
        float d = z[n * p + j] - mu;
        a2 = fma(d, d, a2);
        a3 = fma(d * d, d, a3);
    }
    float vraw = a2 / (float)B, var = fmax(vraw, LOSS_STATS_VAR_FLOOR), m3 = a3 / (float)B;
    return (float4)(vraw, var, m3, m3 / (var * sqrt(var)));
}

/* Covariance entry (j, k) of z with column means mu (p): sum_n Z[n,j] Z[n,k] / denom. */
inline float stats_cov(__global const float *z, ulong B, ulong p, ulong j, ulong k, __local const float *mu,
                       float denom) {
    float acc = 0.0f, mj = mu[j], mk = mu[k];
    for (ulong n = 0; n < B; ++n) acc = fma(z[n * p + j] - mj, z[n * p + k] - mk, acc);
    return acc / denom;
}

/* Sum of the squared differences over the three pairs (l,a), (l,v), (a,v). */
inline float stats_pair_sq(float a, float b, float c) {
    return (a - b) * (a - b) + (a - c) * (a - c) + (b - c) * (b - c);
}

/* One work-group. mu, skew: local (3p) each. The covariance runs over the lower
 * triangle (symmetric), off-diagonal entries counted twice. */
__kernel void homo_stats_fwd(__global float *loss, ulong loss_off, __global const float *zl, ulong zl_off,
                             __global const float *za, ulong za_off, __global const float *zv, ulong zv_off, ulong B,
                             ulong p, __local float *mu, __local float *skew, __local float4 *scratch) {
    uint lid = get_local_id(0), G = get_local_size(0);
    __global const float *z0 = VIEW(zl), *z1 = VIEW(za), *z2 = VIEW(zv);
    float denom = B > 1 ? (float)(B - 1) : 1.0f;
    float4 part = 0.0f; /* (mean term, cov term, skew term, -) */
    for (ulong j = lid; j < p; j += G) {
        for (uint m = 0; m < 3u; ++m) {
            __global const float *z = homo_z(m, z0, z1, z2);
            float mj = stats_mean(z, B, p, j);
            mu[m * p + j] = mj;
            skew[m * p + j] = stats_moments(z, B, p, j, mj).w;
        }
        part.x += stats_pair_sq(mu[j], mu[p + j], mu[2 * p + j]);
        part.z += stats_pair_sq(skew[j], skew[p + j], skew[2 * p + j]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    /* work-item lid takes triangle entries lid, lid + G, ... (row-major, k <= j) */
    ulong j = 0, k = lid;
    while (k > j) k -= ++j;
    while (j < p) {
        float c0 = stats_cov(z0, B, p, j, k, mu, denom), c1 = stats_cov(z1, B, p, j, k, mu + p, denom),
              c2 = stats_cov(z2, B, p, j, k, mu + 2 * p, denom);
        part.y += (j == k ? 1.0f : 2.0f) * stats_pair_sq(c0, c1, c2);
        k += G;
        while (k > j) k -= ++j;
    }
    float4 t = loss_group_sum4(part, scratch);
    float fp = (float)p;
    if (lid == 0) VIEW(loss)[0] = (t.x / fp + t.y / (fp * fp) + t.z / fp) / 3.0f;
}

/* Columns of z per work-group of the backward: the column means are computed once per
 * group and every row of z read once serves them all. */
#define STATS_BWD_COLS 8

/* One work-group per block of STATS_BWD_COLS columns j. For each modality m, with (o1, o2)
 * the others and w = dloss / 3:
 *   g_mu = 2w/p (2 mu_m - mu_o1 - mu_o2), g_skew likewise, g_cov[j,k] = 2w/p^2 (2 cov_m - ...)
 *   dZ[n,j] = 2 sum_k g_cov[j,k] Z[n,k] / denom + d_m3 3 Z^2 / B + d_var 2 Z / B
 *   dz[n,j] += dZ[n,j] - mean_n dZ[., j] + g_mu / B
 * with d_m3 = g_skew / var^1.5 and d_var = -1.5 g_skew m3 / var^2.5 where vraw >= 1e-6 (else 0).
 * work: local floats 3p (mu) + 3 C p (g_cov rows) + 3 C B (dZ) + 15 C (column stats, means), C = STATS_BWD_COLS. */
__kernel void homo_stats_bwd(__global float *dzl, ulong dzl_off, __global float *dza, ulong dza_off,
                             __global float *dzv, ulong dzv_off, __global const float *zl, ulong zl_off,
                             __global const float *za, ulong za_off, __global const float *zv, ulong zv_off, ulong B,
                             ulong p, float dloss, __local float *work) {
    const uint C = STATS_BWD_COLS;
    uint lid = get_local_id(0), G = get_local_size(0);
    ulong j0 = get_group_id(0) * C;
    uint nj = p - j0 < C ? (uint)(p - j0) : C;
    __global const float *z0 = VIEW(zl), *z1 = VIEW(za), *z2 = VIEW(zv);
    /* gcov[(m C + jj) p + k], dZ[(m C + jj) B + n], col[4 (m C + jj) ..], mean_dZ[m C + jj] */
    __local float *mu = work, *gcov = mu + 3 * p, *dZ = gcov + 3 * C * p, *col = dZ + 3 * C * B,
                  *mean_dZ = col + 12 * C;
    float denom = B > 1 ? (float)(B - 1) : 1.0f, fp = (float)p, w = dloss / 3.0f;
    float wp = 2.0f * w / fp, wpp = 2.0f * w / (fp * fp);

    for (ulong k = lid; k < p; k += G)
        for (uint m = 0; m < 3u; ++m) mu[m * p + k] = stats_mean(homo_z(m, z0, z1, z2), B, p, k);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint it = lid; it < 3 * nj; it += G) {
        uint m = it / nj, jj = it % nj;
        vstore4(stats_moments(homo_z(m, z0, z1, z2), B, p, j0 + jj, mu[m * p + j0 + jj]), m * C + jj, col);
    }
    for (ulong it = lid; it < C * p; it += G) {
        uint jj = (uint)(it / p);
        ulong k = it % p;
        float c0 = 0.0f, c1 = 0.0f, c2 = 0.0f; /* rows past the last column stay 0 */
        if (jj < nj) {
            c0 = stats_cov(z0, B, p, j0 + jj, k, mu, denom);
            c1 = stats_cov(z1, B, p, j0 + jj, k, mu + p, denom);
            c2 = stats_cov(z2, B, p, j0 + jj, k, mu + 2 * p, denom);
        }
        gcov[jj * p + k] = wpp * (2.0f * c0 - c1 - c2);
        gcov[(C + jj) * p + k] = wpp * (2.0f * c1 - c0 - c2);
        gcov[(2 * C + jj) * p + k] = wpp * (2.0f * c2 - c0 - c1);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (ulong it = lid; it < 3 * B; it += G) {
        uint m = (uint)(it / B);
        ulong n = it % B;
        __local const float *mum = mu + m * p, *gm = gcov + m * C * p;
        __global const float *zr = homo_z(m, z0, z1, z2) + n * p;
        float acc[STATS_BWD_COLS];
        for (uint jj = 0; jj < C; ++jj) acc[jj] = 0.0f;
        for (ulong k = 0; k < p; ++k) {
            float zc = zr[k] - mum[k];
            for (uint jj = 0; jj < C; ++jj) acc[jj] = fma(gm[jj * p + k], zc, acc[jj]);
        }
        for (uint jj = 0; jj < nj; ++jj) {
            __local const float *st = col + 4 * (m * C + jj);
            float sk_o1 = col[4 * (((m + 1) % 3) * C + jj) + 3], sk_o2 = col[4 * (((m + 2) % 3) * C + jj) + 3];
            float g_skew = wp * (2.0f * st[3] - sk_o1 - sk_o2);
            float vraw = st[0], var = st[1], m3 = st[2], v15 = var * sqrt(var);
            float d_m3 = g_skew / v15, d_var = vraw >= LOSS_STATS_VAR_FLOOR ? -1.5f * g_skew * m3 / (v15 * var) : 0.0f;
            float zj = zr[j0 + jj] - mum[j0 + jj];
            dZ[(m * C + jj) * B + n] = 2.0f * acc[jj] / denom + (d_m3 * 3.0f * zj * zj + d_var * 2.0f * zj) / (float)B;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint it = lid; it < 3 * nj; it += G) {
        uint m = it / nj, jj = it % nj;
        float acc = 0.0f;
        for (ulong n = 0; n < B; ++n) acc += dZ[(m * C + jj) * B + n];
        mean_dZ[m * C + jj] = acc / (float)B;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (ulong it = lid; it < 3 * B; it += G) {
        uint m = (uint)(it / B);
        ulong n = it % B;
        __global float *dz = (m == 0u ? VIEW(dzl) : m == 1u ? VIEW(dza) : VIEW(dzv)) + n * p + j0;
        for (uint jj = 0; jj < nj; ++jj) {
            ulong j = j0 + jj;
            float g_mu = wp * (2.0f * mu[m * p + j] - mu[((m + 1) % 3) * p + j] - mu[((m + 2) % 3) * p + j]);
            dz[jj] += dZ[(m * C + jj) * B + n] - mean_dZ[m * C + jj] + g_mu / (float)B;
        }
    }
}

/* ---- Gaussian-kernel MMD: (MMD(l,a) + MMD(l,v) + MMD(a,v)) / 3 ----
 * The sum of the three MMDs is 2 (Kll + Kaa + Kvv) - 2 (Kla + Klv + Kav), each K the mean
 * of k(x_i, y_j) over B^2 pairs. Distances are formed as sum (x - y)^2, exactly 0 on the
 * diagonal (the oracle's |x|^2 + |y|^2 - 2 x.y clamped at 0 agrees to rounding). */

inline float mmd_sqdist(__global const float *x, __global const float *y, ulong p) {
    float acc = 0.0f;
    for (ulong k = 0; k < p; ++k) {
        float d = x[k] - y[k];
        acc = fma(d, d, acc);
    }
    return acc;
}

/* One work-group over the 6 B^2 (block, i, j) pairs; blocks (l,l) (a,a) (v,v) (l,a) (l,v) (a,v). */
__kernel void homo_mmd_fwd(__global float *loss, ulong loss_off, __global const float *zl, ulong zl_off,
                           __global const float *za, ulong za_off, __global const float *zv, ulong zv_off, ulong B,
                           ulong p, float gamma, __local float4 *scratch) {
    __global const float *z0 = VIEW(zl), *z1 = VIEW(za), *z2 = VIEW(zv);
    const uint xa[6] = {0, 1, 2, 0, 0, 1}, ya[6] = {0, 1, 2, 1, 2, 2};
    ulong BB = B * B;
    float4 part = 0.0f; /* (self blocks, cross blocks, -, -) */
    for (ulong it = get_local_id(0); it < 6 * BB; it += get_local_size(0)) {
        uint blk = (uint)(it / BB);
        ulong r = it % BB, i = r / B, j = r % B;
        float kv =
            exp(-gamma * mmd_sqdist(homo_z(xa[blk], z0, z1, z2) + i * p, homo_z(ya[blk], z0, z1, z2) + j * p, p));
        if (blk < 3u)
            part.x += kv;
        else
            part.y += kv;
    }
    float4 t = loss_group_sum4(part, scratch);
    if (get_local_id(0) == 0) VIEW(loss)[0] = 2.0f * (t.x - t.y) / (3.0f * (float)BB);
}

/* One work-group per row (m, i) (3B groups): with w = dloss / 3 / B^2,
 *   dz_m[i] += -2 gamma w (4 sum_j k(z_mi, z_mj)(z_mi - z_mj) - 2 sum_{o != m} sum_j k(z_mi, z_oj)(z_mi - z_oj)).
 * coef: local (3B) floats, the kernel value times 4 or -2 of every partner row. */
__kernel void homo_mmd_bwd(__global float *dzl, ulong dzl_off, __global float *dza, ulong dza_off, __global float *dzv,
                           ulong dzv_off, __global const float *zl, ulong zl_off, __global const float *za,
                           ulong za_off, __global const float *zv, ulong zv_off, ulong B, ulong p, float gamma,
                           float dloss, __local float *coef) {
    uint lid = get_local_id(0), G = get_local_size(0);
    uint m = (uint)(get_group_id(0) / B);
    ulong i = get_group_id(0) % B;
    __global const float *z0 = VIEW(zl), *z1 = VIEW(za), *z2 = VIEW(zv);
    __global const float *xi = homo_z(m, z0, z1, z2) + i * p;
    for (ulong it = lid; it < 3 * B; it += G) {
        uint o = (uint)(it / B);
        float kv = exp(-gamma * mmd_sqdist(xi, homo_z(o, z0, z1, z2) + (it % B) * p, p));
        coef[it] = (o == m ? 4.0f : -2.0f) * kv;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    float scale = -2.0f * gamma * dloss / (3.0f * (float)B * (float)B);
    __global float *dz = (m == 0u ? VIEW(dzl) : m == 1u ? VIEW(dza) : VIEW(dzv)) + i * p;
    for (ulong k = lid; k < p; k += G) {
        float x = xi[k], acc = 0.0f;
        for (uint o = 0; o < 3u; ++o) {
            __global const float *zo = homo_z(o, z0, z1, z2) + k;
            __local const float *co = coef + o * B;
            for (ulong j = 0; j < B; ++j) acc = fma(co[j], x - zo[j * p], acc);
        }
        dz[k] = fma(scale, acc, dz[k]);
    }
}
