/* Building (or loading) the one program that holds every decocl kernel:
 * embedded sources (or --cl-dir), the on-disk cache, --kernels-binary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cl/cl_internal.h"
#include "backend/cl/cl_sources.h"
#include "core/hash.h"
#include "core/log.h"

#define BUILD_OPTIONS "-cl-std=CL1.2"
#define PROGRAM_FORMAT "decocl-program-1"

static const char *const kernel_names[CLK_COUNT] = {
#define DC_CL_KERNEL(name, op) #name,
#include "backend/cl/cl_kernels.def"
#undef DC_CL_KERNEL
};

const char *cl_kernel_name(enum cl_kernel_id id) { return (unsigned)id < CLK_COUNT ? kernel_names[id] : "?"; }

static dc_status read_file(struct dc_backend *be, const char *path, char **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return dc_set_error(be->err, DC_ERR_IO, "cannot open %s", path);
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? 2 * cap : 1 << 20;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                return dc_set_error(be->err, DC_ERR_NOMEM, "cannot read %s", path);
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, 65536, f);
        n += got;
        if (got < 65536) break;
    }
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed) {
        free(buf);
        return dc_set_error(be->err, DC_ERR_IO, "cannot read %s", path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return DC_OK;
}

/* The full program text: every kernel file, common.cl first, from the binary or --cl-dir. */
static dc_status program_source(struct cl_backend *cb, char **out) {
    struct dc_backend *be = &cb->base;
    const char *dir = cb->opt.cl_dir ? cb->opt.cl_dir : getenv("DECOCL_CL_DIR");
    size_t total = 1;
    char **parts = calloc(dc_cl_source_count, sizeof *parts);
    size_t *lens = calloc(dc_cl_source_count, sizeof *lens);
    dc_status rc = parts && lens ? DC_OK : dc_set_error(be->err, DC_ERR_NOMEM, "program source");
    for (size_t i = 0; rc == DC_OK && i < dc_cl_source_count; ++i) {
        if (dir && *dir) {
            char path[1200];
            snprintf(path, sizeof path, "%s/%s", dir, dc_cl_sources[i].name);
            rc = read_file(be, path, &parts[i], &lens[i]);
        } else {
            lens[i] = dc_cl_sources[i].len;
        }
        total += lens[i] + 64;
    }
    char *src = rc == DC_OK ? malloc(total) : NULL;
    if (rc == DC_OK && !src) rc = dc_set_error(be->err, DC_ERR_NOMEM, "program source");
    if (rc == DC_OK) {
        size_t used = 0;
        for (size_t i = 0; i < dc_cl_source_count; ++i) {
            /* #line keeps build-log line numbers per file */
            used += (size_t)snprintf(src + used, total - used, "\n#line 1 /* %s */\n", dc_cl_sources[i].name);
            memcpy(src + used, parts[i] ? parts[i] : dc_cl_sources[i].text, lens[i]);
            used += lens[i];
        }
        src[used] = '\0';
        *out = src;
    }
    for (size_t i = 0; parts && i < dc_cl_source_count; ++i) free(parts[i]);
    free(parts);
    free(lens);
    return rc;
}

static void build_log(struct cl_backend *cb, char *out, size_t cap) {
    size_t n = 0;
    out[0] = '\0';
    if (clGetProgramBuildInfo(cb->program, cb->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) != CL_SUCCESS || n == 0) return;
    char *log = malloc(n + 1);
    if (!log) return;
    if (clGetProgramBuildInfo(cb->program, cb->device, CL_PROGRAM_BUILD_LOG, n, log, NULL) == CL_SUCCESS) {
        log[n] = '\0';
        snprintf(out, cap, "%s", log);
    }
    free(log);
}

static dc_status build_failed(struct cl_backend *cb, cl_int rc, const char *what) {
    char log[3000];
    build_log(cb, log, sizeof log);
    dc_set_error(cb->base.err, DC_ERR_CL, "%s: %s failed: %s (%d)%s%s", cb->base.device_name, what,
                 dc_cl_error_name(rc), (int)rc, log[0] ? "; build log:\n" : "", log);
    cb->base.err->sub = rc;
    return DC_ERR_CL;
}

static dc_status program_binary(struct cl_backend *cb, unsigned char **bin, size_t *len) {
    size_t n = 0;
    DC_CL_RETURN_IF(&cb->base, clGetProgramInfo(cb->program, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL));
    if (n == 0) return dc_set_error(cb->base.err, DC_ERR_CL, "%s: the driver returned an empty program binary",
                                    cb->base.device_name);
    unsigned char *buf = malloc(n);
    if (!buf) return dc_set_error(cb->base.err, DC_ERR_NOMEM, "program binary of %zu bytes", n);
    cl_int rc = clGetProgramInfo(cb->program, CL_PROGRAM_BINARIES, sizeof buf, &buf, NULL);
    if (rc != CL_SUCCESS) {
        free(buf);
        return cl_fail(&cb->base, rc, "clGetProgramInfo(CL_PROGRAM_BINARIES)", __FILE__, __LINE__);
    }
    *bin = buf;
    *len = n;
    return DC_OK;
}

/* Creates and builds the program from a device binary; CL failures are returned as codes. */
static cl_int program_from_binary(struct cl_backend *cb, const unsigned char *bin, size_t len) {
    cl_int rc, bin_rc = CL_SUCCESS;
    cb->program = clCreateProgramWithBinary(cb->ctx, 1, &cb->device, &len, &bin, &bin_rc, &rc);
    if (rc == CL_SUCCESS) rc = bin_rc;
    if (rc == CL_SUCCESS) rc = clBuildProgram(cb->program, 1, &cb->device, BUILD_OPTIONS, NULL, NULL);
    return rc;
}

static void program_release(struct cl_backend *cb) {
    if (cb->program) clReleaseProgram(cb->program);
    cb->program = NULL;
}

static void cache_key(struct cl_backend *cb, const char *src, uint8_t key[32]) {
    char dev_name[256] = {0}, driver[256] = {0};
    clGetDeviceInfo(cb->device, CL_DEVICE_NAME, sizeof dev_name - 1, dev_name, NULL);
    clGetDeviceInfo(cb->device, CL_DRIVER_VERSION, sizeof driver - 1, driver, NULL);
    struct dc_sha256 h;
    dc_sha256_init(&h);
    const char *fields[] = {PROGRAM_FORMAT, src, BUILD_OPTIONS, dev_name, driver, cb->platform_version};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; ++i)
        dc_sha256_update(&h, fields[i], strlen(fields[i]) + 1); /* the NUL separates fields */
    dc_sha256_final(&h, key);
}

static dc_status kernels_create(struct cl_backend *cb) {
    for (int k = 0; k < CLK_COUNT; ++k) {
        cl_int rc;
        cb->kernels[k] = clCreateKernel(cb->program, kernel_names[k], &rc);
        if (rc == CL_INVALID_KERNEL_NAME) {
            cb->kernels[k] = NULL; /* a binary without this kernel: the op stays unavailable */
            dc_log_info("%s: kernel %s not in the program", cb->base.device_name, kernel_names[k]);
        } else if (rc != CL_SUCCESS) {
            return cl_fail(&cb->base, rc, kernel_names[k], __FILE__, __LINE__);
        }
    }
    return DC_OK;
}

static dc_status load_kernels_binary(struct cl_backend *cb, const char *path) {
    char *bin;
    size_t len;
    dc_status st = read_file(&cb->base, path, &bin, &len);
    if (st != DC_OK) return st;
    cl_int rc = len ? program_from_binary(cb, (const unsigned char *)bin, len) : CL_INVALID_BINARY;
    free(bin);
    if (rc != CL_SUCCESS) {
        char what[1300];
        snprintf(what, sizeof what, "loading --kernels-binary %s", path);
        return build_failed(cb, rc, what);
    }
    dc_log_info("%s: loaded program binary %s (%zu bytes)", cb->base.device_name, path, len);
    cb->base.program_origin = "binary";
    return DC_OK;
}

static dc_status build_from_source(struct cl_backend *cb) {
    char *src;
    dc_status st = program_source(cb, &src);
    if (st != DC_OK) return st;
    uint8_t key[32];
    cache_key(cb, src, key);
    unsigned char *bin = NULL;
    size_t len = 0;
    cl_cache_read(cb->cache_dir, key, &bin, &len);
    if (bin) {
        double t0 = dc_now_seconds();
        cl_int rc = program_from_binary(cb, bin, len);
        free(bin);
        if (rc == CL_SUCCESS) {
            dc_log_info("%s: program cache hit (%.0f ms)", cb->base.device_name, 1e3 * (dc_now_seconds() - t0));
            cb->base.program_origin = "cache";
            free(src);
            return DC_OK;
        }
        dc_log_warn("program cache entry rejected by the driver (%s); rebuilding", dc_cl_error_name(rc));
        program_release(cb);
        cl_cache_remove(cb->cache_dir, key);
    }
    double t0 = dc_now_seconds();
    const char *text = src;
    cl_int rc;
    cb->program = clCreateProgramWithSource(cb->ctx, 1, &text, NULL, &rc);
    if (rc == CL_SUCCESS) rc = clBuildProgram(cb->program, 1, &cb->device, BUILD_OPTIONS, NULL, NULL);
    free(src);
    if (rc != CL_SUCCESS) return build_failed(cb, rc, "building the kernels (" BUILD_OPTIONS ")");
    dc_log_info("%s: built the kernels from source in %.2f s", cb->base.device_name, dc_now_seconds() - t0);
    cb->base.program_origin = "source";
    if (cb->cache_dir[0] && program_binary(cb, &bin, &len) == DC_OK) {
        cl_cache_write(cb->cache_dir, key, bin, len);
        free(bin);
    }
    return DC_OK;
}

dc_status cl_program_load(struct cl_backend *cb) {
    dc_status st = cb->opt.kernels_binary ? load_kernels_binary(cb, cb->opt.kernels_binary) : build_from_source(cb);
    if (st != DC_OK) {
        program_release(cb);
        return st;
    }
    return kernels_create(cb);
}

dc_status cl_program_export(struct cl_backend *cb, const char *path) {
    unsigned char *bin;
    size_t len;
    dc_status st = program_binary(cb, &bin, &len);
    if (st != DC_OK) return st;
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    bool ok = f && fwrite(bin, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f && fclose(f) != 0) ok = false;
    free(bin);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return dc_set_error(cb->base.err, DC_ERR_IO, "cannot write %s", path);
    }
    return DC_OK;
}
