/* GEMM on the OpenCL backend: our register-blocked kernels (cl/gemm.cl) or CLBlast.
 *
 * The provider is forced (--gemm / DECOCL_GEMM) or, for auto, chosen once per device:
 * accelerators and --kernels-binary programs use ours (CLBlast compiles OpenCL C at
 * run time); otherwise a choice remembered in the cache directory, else both are
 * timed on model shapes and the faster one is remembered. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <clblast_c.h>

#include "backend/cl/cl_internal.h"
#include "backend/cl/cl_sources.h"
#include "core/hash.h"
#include "core/log.h"

#define CHOICE_FORMAT "decocl-gemm-choice-1"

/* ---- our kernels ---------------------------------------------------------------- */

/* Tile shapes; must match cl/gemm.cl. Rank-1 kernels (nn, tn, tt): a vector width per
 * width of the right operand, and r1_tm rows per vector width. */
static unsigned r1_vw(size_t cols) { return cols >= 16 ? 16 : cols >= 8 ? 8 : cols >= 4 ? 4 : 0; }
static size_t r1_tm(unsigned vw) { return vw == 16 ? 6 : vw == 0 ? 4 : 8; }
/* gemm_nt modes. On CPUs, with enough rows to share a transposed panel of B: mode 2
 * (16 columns per work-item, NTR_TM-row tiles; the fastest on PoCL for every model
 * shape). Otherwise (GPUs, few rows) mode 0 (NTR_TM x 8 tiles) below NT_DOT_MIN_K and
 * mode 1 (dot products, 4 x 4 tiles) from there on: the crossover measured on PoCL. */
#define NTR_TM 6
#define NT_DOT_MIN_K 128
#define NT_PANEL_MIN_M 32
#define NTP_KC 64 /* k steps per transposed panel: NTP_KC float16 of __local memory per work-item */

static bool own_kernels_present(const struct cl_backend *cb) {
    return cb->kernels[CLK_gemm_nn] && cb->kernels[CLK_gemm_nt] && cb->kernels[CLK_gemm_tn] && cb->kernels[CLK_gemm_tt];
}

/* Work-group shape over (tiles_x, tiles_y) for devices other than CPUs: up to 64. */
static void pick_local(const struct cl_backend *cb, cl_kernel k, size_t tx, size_t ty, size_t local[3]) {
    size_t target = 64, kmax = 0;
    if (clGetKernelWorkGroupInfo(k, cb->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax, NULL) == CL_SUCCESS &&
        kmax > 0 && kmax < target)
        target = kmax;
    if (cb->max_wg < target) target = cb->max_wg;
    size_t lx = 1, ly = 1;
    while (lx * 2 <= target && lx < tx) lx *= 2;
    while (lx * ly * 2 <= target && ly < ty) ly *= 2;
    local[0] = lx, local[1] = ly, local[2] = 1;
}

static dc_status own_gemm(struct cl_backend *cb, const struct dc_gemm_shape *s, float alpha, dc_view a, dc_view b,
                          float beta, dc_view c) {
    struct dc_backend *be = &cb->base;
    const size_t lim = UINT32_MAX / 2;
    if (s->m > lim || s->n > lim || s->k > lim || s->lda > lim || s->ldb > lim || s->ldc > lim || s->batch > lim)
        return dc_set_error(be->err, DC_ERR_UNSUPPORTED, "gemm: dimensions above 2^31 are not supported by cl/gemm.cl");
    enum cl_kernel_id id = s->ta ? (s->tb ? CLK_gemm_tt : CLK_gemm_tn) : (s->tb ? CLK_gemm_nt : CLK_gemm_nn);
    if (!cb->kernels[id])
        return dc_set_error(be->err, DC_ERR_UNSUPPORTED, "%s: gemm kernels not in the program", be->device_name);
    size_t global[3] = {0, 0, s->batch}, local[3] = {1, 1, 1};
    unsigned vw = 0; /* gemm_nt: the mode */
    bool cpu = (cb->device_type & CL_DEVICE_TYPE_CPU) != 0;
    if (id == CLK_gemm_nt) {
        vw = cpu && s->m >= NT_PANEL_MIN_M ? 2 : s->k < NT_DOT_MIN_K ? 0 : 1;
        size_t tm = vw == 1 ? 4 : NTR_TM, tn = vw == 1 ? 4 : vw == 2 ? 16 : 8;
        global[0] = (s->n + tn - 1) / tn;
        global[1] = (s->m + tm - 1) / tm;
    } else {
        /* rows of the left operand x columns of the right one (tt computes C transposed) */
        size_t rows = id == CLK_gemm_tt ? s->n : s->m, cols = id == CLK_gemm_tt ? s->m : s->n;
        vw = r1_vw(cols);
        global[0] = (cols + (vw ? vw : 4) - 1) / (vw ? vw : 4);
        global[1] = (rows + r1_tm(vw) - 1) / r1_tm(vw);
    }
    if (cpu) {
        /* Work-items walk row tiles and batch entries (FOR_EACH_TILE in cl/gemm.cl): on
         * PoCL every work-item has a fixed cost, and a mode-2 work-item transposes its
         * panel once for all its rows. About 8 work-items per compute unit, one per
         * work-group, keep the cores balanced. */
        cl_uint cus = 1;
        clGetDeviceInfo(cb->device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cus, &cus, NULL);
        size_t want = 8 * (size_t)(cus ? cus : 1), have = global[0];
        size_t z = (want + have - 1) / have;
        global[2] = z < global[2] ? z : global[2];
        have *= global[2];
        size_t y = (want + have - 1) / have;
        global[1] = y < global[1] ? y : global[1];
    } else {
        pick_local(cb, cb->kernels[id], global[0], global[1], local);
    }
    /* with k == 0 the operands may be empty views: any buffer serves */
    dc_view av = a.mem ? a : c, bv = b.mem ? b : c;
    struct cl_arg args[] = {CLA_VIEW(av),         CLA_VIEW(bv),         CLA_VIEW(c),          CLA_U32(s->m),
                            CLA_U32(s->n),        CLA_U32(s->k),        CLA_U32(s->lda),      CLA_U32(s->ldb),
                            CLA_U32(s->ldc),      CLA_U64(s->stride_a), CLA_U64(s->stride_b), CLA_U64(s->stride_c),
                            CLA_U32(s->batch),    CLA_F32(alpha),       CLA_F32(beta),        CLA_U32(vw),
                            /* gemm_nt only: mode 2's panels (a token size for the other modes) */
                            CLA_LOCAL(id == CLK_gemm_nt && vw == 2
                                          ? NTP_KC * 16 * sizeof(cl_float) * local[0] * local[1] * local[2]
                                          : 16 * sizeof(cl_float))};
    return cl_launch(cb, id, 3, global, local, args, CL_NARGS(args) - (id != CLK_gemm_nt));
}

/* k == 0 without our kernels: C = beta * C, row by row unless C is contiguous. */
static dc_status scale_c(struct cl_backend *cb, const struct dc_gemm_shape *s, float beta, dc_view c) {
    if (beta == 1.0f) return DC_OK;
    bool whole = s->ldc == s->n && (s->batch == 1 || s->stride_c == s->m * s->n);
    size_t runs = whole ? 1 : s->batch * s->m, len = whole ? s->batch * s->m * s->n : s->n;
    for (size_t r = 0; r < runs; ++r) {
        size_t off = c.off + (whole ? 0 : (r / s->m) * s->stride_c + (r % s->m) * s->ldc);
        dc_view v = dc_view_of(c.mem, off, len);
        dc_status st = beta == 0.0f ? dc_fill(&cb->base, v, 0.0f) : cl_scale(&cb->base, v, beta, len);
        if (st != DC_OK) return st;
    }
    return DC_OK;
}

/* ---- CLBlast -------------------------------------------------------------------- */

static CLBlastStatusCode clblast_call(struct cl_backend *cb, const struct dc_gemm_shape *s, float alpha, dc_view a,
                                      dc_view b, float beta, dc_view c) {
    CLBlastTranspose ta = s->ta ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastTranspose tb = s->tb ? CLBlastTransposeYes : CLBlastTransposeNo;
    cb->base.stats.launches++; /* one per CLBlast call, whatever it enqueues inside */
    if (s->batch == 1)
        return CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, s->m, s->n, s->k, alpha, a.mem->buf, a.off, s->lda,
                            b.mem->buf, b.off, s->ldb, beta, c.mem->buf, c.off, s->ldc, &cb->queue, NULL);
    return CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, s->m, s->n, s->k, alpha, a.mem->buf, a.off, s->lda,
                                      s->stride_a, b.mem->buf, b.off, s->ldb, s->stride_b, beta, c.mem->buf, c.off,
                                      s->ldc, s->stride_c, s->batch, &cb->queue, NULL);
}

static dc_status clblast_fail(struct cl_backend *cb, CLBlastStatusCode code, const struct dc_gemm_shape *s) {
    struct dc_backend *be = &cb->base;
    dc_status st = (int)code > -1000 ? DC_ERR_CL : DC_ERR_CLBLAST;
    dc_set_error(be->err, st, "%s: %s (m=%zu n=%zu k=%zu batch=%zu): %s (%d)", be->device_name,
                 s->batch == 1 ? "CLBlastSgemm" : "CLBlastSgemmStridedBatched", s->m, s->n, s->k, s->batch,
                 dc_clblast_error_name((int)code), (int)code);
    be->err->sub = (int)code;
    return st;
}

/* CLBlast could not build its kernels here (no compiler, or a failed build). */
static bool clblast_cannot_compile(CLBlastStatusCode code) {
    return code == CLBlastOpenCLCompilerNotAvailable || code == CLBlastOpenCLBuildProgramFailure;
}

dc_status cl_gemm(struct dc_backend *be, const struct dc_gemm_shape *s, float alpha, dc_view a, dc_view b, float beta,
                  dc_view c) {
    struct cl_backend *cb = cl_of(be);
    bool own = own_kernels_present(cb);
    /* CLBlast rejects k == 0 (C = beta * C then) */
    if (s->k == 0) return own ? own_gemm(cb, s, alpha, a, b, beta, c) : scale_c(cb, s, beta, c);
    if (be->gemm_provider != DC_GEMM_CLBLAST || !cb->clblast_ok) return own_gemm(cb, s, alpha, a, b, beta, c);
    CLBlastStatusCode code = clblast_call(cb, s, alpha, a, b, beta, c);
    if (code == CLBlastSuccess) return DC_OK;
    if (clblast_cannot_compile(code) && own) {
        if (!cb->clblast_failed_logged)
            dc_log_warn("%s: CLBlast cannot build its GEMM kernels (%s, %d); using cl/gemm.cl from now on",
                        be->device_name, dc_clblast_error_name((int)code), (int)code);
        cb->clblast_failed_logged = true;
        be->gemm_provider = DC_GEMM_OWN;
        return own_gemm(cb, s, alpha, a, b, beta, c);
    }
    return clblast_fail(cb, code, s);
}

/* ---- choosing the provider ------------------------------------------------------ */

static void choice_path(const struct cl_backend *cb, char *out, size_t cap) {
    struct dc_sha256 h;
    dc_sha256_init(&h);
    const char *fields[] = {CHOICE_FORMAT, cb->base.device_name, cb->base.driver, cb->platform_version};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; ++i)
        dc_sha256_update(&h, fields[i], strlen(fields[i]) + 1); /* the NUL separates fields */
    /* a changed kernel file is measured again */
    for (size_t i = 0; i < dc_cl_source_count; ++i)
        if (strcmp(dc_cl_sources[i].name, "gemm.cl") == 0)
            dc_sha256_update(&h, dc_cl_sources[i].text, dc_cl_sources[i].len);
    uint8_t key[32];
    dc_sha256_final(&h, key);
    char hex[65];
    dc_hex(key, 32, hex);
    snprintf(out, cap, "%s/gemm-%s.choice", cb->cache_dir, hex);
}

/* DC_GEMM_AUTO when there is no (readable) remembered choice. */
static enum dc_gemm_provider choice_read(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return DC_GEMM_AUTO;
    char word[16] = {0};
    int got = fscanf(f, "%15s", word);
    fclose(f);
    if (got == 1 && strcmp(word, "own") == 0) return DC_GEMM_OWN;
    if (got == 1 && strcmp(word, "clblast") == 0) return DC_GEMM_CLBLAST;
    dc_log_warn("ignoring unreadable GEMM choice %s", path);
    return DC_GEMM_AUTO;
}

static void choice_write(const char *path, enum dc_gemm_provider p, const char *detail) {
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    bool ok = f && fprintf(f, "%s\n%s\n", p == DC_GEMM_CLBLAST ? "clblast" : "own", detail) > 0 && fflush(f) == 0;
    if (f && fclose(f) != 0) ok = false;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        dc_log_warn("cannot remember the GEMM choice in %s", path);
    }
}

/* The model's GEMM shapes: projection (NN), fused QKV (NT), weight gradient (TN),
 * attention scores over 256 heads (batched NT). */
static const struct dc_gemm_shape probe_shapes[] = {
    {.m = 1600, .n = 64, .k = 64, .lda = 64, .ldb = 64, .ldc = 64, .batch = 1},
    {.tb = true, .m = 1600, .n = 192, .k = 64, .lda = 64, .ldb = 64, .ldc = 192, .batch = 1},
    {.ta = true, .m = 64, .n = 64, .k = 1600, .lda = 64, .ldb = 64, .ldc = 64, .batch = 1},
    {.tb = true, .m = 50, .n = 50, .k = 8, .lda = 8, .ldb = 8, .ldc = 50, .stride_a = 400, .stride_b = 400,
     .stride_c = 2500, .batch = 256},
};
#define PROBE_SHAPES (sizeof probe_shapes / sizeof probe_shapes[0])
#define PROBE_A 102400
#define PROBE_B 102400
#define PROBE_C 640000
#define PROBE_BATCH_SECONDS 0.01 /* per timed batch; the best of 3 counts */

static dc_status probe_run(struct cl_backend *cb, enum dc_gemm_provider p, const struct dc_gemm_shape *s, dc_view a,
                           dc_view b, dc_view c, CLBlastStatusCode *blast) {
    if (p == DC_GEMM_OWN) return own_gemm(cb, s, 1.0f, a, b, 0.0f, c);
    *blast = clblast_call(cb, s, 1.0f, a, b, 0.0f, c);
    return *blast == CLBlastSuccess ? DC_OK : clblast_fail(cb, *blast, s);
}

/* Best seconds per call of provider p on shape s; the first call (compiles) is not timed. */
static dc_status probe_time(struct cl_backend *cb, enum dc_gemm_provider p, const struct dc_gemm_shape *s, dc_view a,
                            dc_view b, dc_view c, double *best, CLBlastStatusCode *blast) {
    struct dc_backend *be = &cb->base;
    dc_status st = probe_run(cb, p, s, a, b, c, blast);
    if (st != DC_OK) return st;
    DC_CL_RETURN_IF(be, clFinish(cb->queue));
    int calls = 1;
    *best = 1e30;
    for (int batch = 0; batch < 4; ++batch) {
        double t0 = dc_now_seconds();
        for (int i = 0; i < calls && st == DC_OK; ++i) st = probe_run(cb, p, s, a, b, c, blast);
        if (st != DC_OK) return st;
        DC_CL_RETURN_IF(be, clFinish(cb->queue));
        double per = (dc_now_seconds() - t0) / calls;
        if (batch == 0) { /* calibration */
            calls = per > 0 ? (int)(PROBE_BATCH_SECONDS / per) : 50;
            calls = calls < 1 ? 1 : calls > 50 ? 50 : calls;
            continue;
        }
        if (per < *best) *best = per;
    }
    return DC_OK;
}

/* Times both providers on probe_shapes. A provider that fails is reported and left
 * out (the choice is then remembered only when CLBlast cannot compile here); when
 * both fail, our kernels' error is returned. */
static dc_status measure(struct cl_backend *cb, enum dc_gemm_provider *choice, bool *remember, char *detail,
                         size_t cap) {
    struct dc_backend *be = &cb->base;
    struct dc_mem *mem[3] = {0};
    const size_t sizes[3] = {PROBE_A, PROBE_B, PROBE_C};
    dc_status st = DC_OK;
    for (int i = 0; i < 3 && st == DC_OK; ++i) st = dc_mem_alloc(be, sizes[i], &mem[i]);
    dc_view v[3];
    for (int i = 0; i < 3 && st == DC_OK; ++i) {
        v[i] = dc_view_of(mem[i], 0, sizes[i]);
        st = dc_fill(be, v[i], i == 2 ? 0.0f : 0.01f * (float)(i + 1));
    }
    double t0 = dc_now_seconds(), total[3] = {0}, per[3][PROBE_SHAPES] = {{0}};
    bool failed[3] = {false};
    struct dc_error own_err = {0};
    const enum dc_gemm_provider provs[2] = {DC_GEMM_OWN, DC_GEMM_CLBLAST};
    CLBlastStatusCode blast = CLBlastSuccess;
    for (int pi = 0; pi < 2 && st == DC_OK; ++pi) {
        enum dc_gemm_provider p = provs[pi];
        for (size_t si = 0; si < PROBE_SHAPES; ++si) {
            dc_status pst = probe_time(cb, p, &probe_shapes[si], v[0], v[1], v[2], &per[p][si], &blast);
            if (pst != DC_OK) {
                dc_log_warn("%s: %s failed while measuring the GEMM providers: %s", be->device_name,
                            p == DC_GEMM_OWN ? "cl/gemm.cl" : "CLBlast", be->err->msg);
                if (p == DC_GEMM_OWN) own_err = *be->err;
                dc_error_clear(be->err);
                clFinish(cb->queue);
                failed[p] = true;
                break;
            }
            total[p] += per[p][si];
        }
    }
    for (int i = 2; i >= 0; --i) dc_mem_free(be, mem[i]);
    if (st != DC_OK) return st;
    if (failed[DC_GEMM_OWN] && failed[DC_GEMM_CLBLAST]) {
        *be->err = own_err;
        return own_err.code;
    }
    *choice = failed[DC_GEMM_OWN] ? DC_GEMM_CLBLAST
              : failed[DC_GEMM_CLBLAST] || total[DC_GEMM_OWN] <= total[DC_GEMM_CLBLAST] ? DC_GEMM_OWN
                                                                                      : DC_GEMM_CLBLAST;
    *remember = !failed[DC_GEMM_OWN] && (!failed[DC_GEMM_CLBLAST] || clblast_cannot_compile(blast));
    if (failed[DC_GEMM_CLBLAST] && clblast_cannot_compile(blast)) cb->clblast_ok = false;
    int len = snprintf(detail, cap, "measured in %.2f s; us per call own/clblast:", dc_now_seconds() - t0);
    for (size_t si = 0; si < PROBE_SHAPES && len > 0 && (size_t)len < cap; ++si) {
        const struct dc_gemm_shape *s = &probe_shapes[si];
        len += snprintf(detail + len, cap - (size_t)len, " %s%s%zux%zux%zu%s ", s->ta ? "T" : "N", s->tb ? "T" : "N",
                        s->m, s->n, s->k, s->batch > 1 ? "x256" : "");
        for (int pi = 0; pi < 2 && len > 0 && (size_t)len < cap; ++pi) {
            const char *sep = pi ? "/" : "";
            if (failed[provs[pi]]) len += snprintf(detail + len, cap - (size_t)len, "%sfailed", sep);
            else len += snprintf(detail + len, cap - (size_t)len, "%s%.0f", sep, 1e6 * per[provs[pi]][si]);
        }
    }
    return DC_OK;
}

dc_status cl_gemm_init(struct cl_backend *cb) {
    struct dc_backend *be = &cb->base;
    bool own = own_kernels_present(cb);
    bool offline = (cb->device_type & (CL_DEVICE_TYPE_ACCELERATOR | CL_DEVICE_TYPE_CUSTOM)) || cb->opt.kernels_binary;
    cb->clblast_failed_logged = false;
    switch (cb->opt.gemm) {
        case DC_GEMM_OWN:
            cb->clblast_ok = false;
            be->gemm_provider = DC_GEMM_OWN;
            return DC_OK;
        case DC_GEMM_CLBLAST: /* forced: tried even where auto would not (it falls back if it cannot compile) */
            cb->clblast_ok = true;
            be->gemm_provider = DC_GEMM_CLBLAST;
            return DC_OK;
        case DC_GEMM_AUTO:
            break;
    }
    cb->clblast_ok = !offline;
    if (offline || !own) {
        be->gemm_provider = own ? DC_GEMM_OWN : DC_GEMM_CLBLAST;
        dc_log_info("%s: gemm provider %s (%s)", be->device_name, own ? "own" : "clblast",
                    own ? "offline-compiled program or accelerator" : "cl/gemm.cl kernels missing");
        return DC_OK;
    }
    char path[1300] = "";
    if (cb->cache_dir[0]) {
        choice_path(cb, path, sizeof path);
        enum dc_gemm_provider p = choice_read(path);
        if (p != DC_GEMM_AUTO) {
            be->gemm_provider = p;
            dc_log_info("%s: gemm provider %s (remembered in %s)", be->device_name,
                        p == DC_GEMM_CLBLAST ? "clblast" : "own", path);
            return DC_OK;
        }
    }
    dc_log_info("%s: measuring the GEMM providers (CLBlast's first compile can take a minute on a CPU device)",
                be->device_name);
    enum dc_gemm_provider choice = DC_GEMM_OWN;
    bool remember = false;
    char detail[600];
    dc_status st = measure(cb, &choice, &remember, detail, sizeof detail);
    if (st != DC_OK) return st;
    be->gemm_provider = choice;
    dc_log_info("%s: gemm provider %s (%s)", be->device_name, choice == DC_GEMM_CLBLAST ? "clblast" : "own", detail);
    if (path[0] && remember) choice_write(path, choice, detail);
    return DC_OK;
}
