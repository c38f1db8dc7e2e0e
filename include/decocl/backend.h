/* Backends: opaque handles, memory views, device choice.
 *
 * A backend is either "ref" (plain C, the oracle) or "opencl" (one device, one
 * in-order queue). Memory is allocated in float elements; a dc_view is a window
 * (offset and length, in floats) into one allocation. Views never become
 * sub-buffers: the offset travels with every kernel argument. */
#ifndef DECOCL_BACKEND_H
#define DECOCL_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decocl/status.h"

struct dc_backend;
struct dc_mem;

typedef struct dc_view {
    struct dc_mem *mem;
    size_t off, n; /* in floats */
} dc_view;

enum dc_gemm_provider {
    DC_GEMM_AUTO = 0,    /* measured per device and remembered */
    DC_GEMM_OWN = 1,     /* cl/gemm.cl, register-blocked */
    DC_GEMM_CLBLAST = 2, /* CLBlast */
};

struct dc_backend_options {
    const char *device;         /* "ref", "gpu", "cpu", "accelerator", "P:D"; NULL: first GPU, else CPU, else ref */
    const char *cache_dir;      /* program cache; NULL: $DECOCL_CACHE_DIR, else $XDG_CACHE_HOME/decocl, else ~/.cache/decocl */
    const char *kernels_binary; /* precompiled program (FPGA path): never compile source */
    const char *cl_dir;         /* read the cl/ kernel files from here instead of the embedded copies ($DECOCL_CL_DIR) */
    enum dc_gemm_provider gemm; /* DC_GEMM_AUTO unless forced ($DECOCL_GEMM=own|clblast) */
    bool no_cache;              /* build without the on-disk program cache */
    bool verbose;               /* log cache hits, builds and GEMM choice to stderr */
};

/* Opens the backend named by opt->device. Unknown or absent devices give DC_ERR_ARG
 * with a message listing the available ones. */
dc_status dc_backend_open(struct dc_backend **out, const struct dc_backend_options *opt, struct dc_error *err);
void dc_backend_close(struct dc_backend *be); /* NULL is allowed */
/* The plain-C backend, whatever the options say (the oracle next to a device). */
dc_status dc_backend_open_ref(struct dc_backend **out, struct dc_error *err);

const char *dc_backend_name(const struct dc_backend *be);        /* "ref" | "opencl" */
const char *dc_backend_device_name(const struct dc_backend *be); /* e.g. "ref (plain C)" or CL_DEVICE_NAME */
const char *dc_backend_driver(const struct dc_backend *be);      /* CL_DRIVER_VERSION or "decocl <version>" */
struct dc_error *dc_backend_error(struct dc_backend *be);
/* Where the kernels came from: "source" (compiled now), "cache" (program cache hit),
 * "binary" (--kernels-binary) or "none" (ref). */
const char *dc_backend_program_origin(const struct dc_backend *be);
/* Which GEMM provider this backend uses now (OWN for ref). */
enum dc_gemm_provider dc_backend_gemm_provider(const struct dc_backend *be);

/* Counters since the backend opened (cheap, always on; not thread-safe, like the backend).
 *   ops:      op calls through the public API (gemm, fill, copy, ... ; composites such as
 *             dc_conv1d_fwd count their parts); counted once, in the wrappers of backend.c.
 *   launches: work enqueued on the device: every cl_launch kernel, every CLBlast call (one
 *             per call, whatever CLBlast enqueues inside) and every fill or copy. The ref
 *             backend has no device queue: there launches == ops (each op call is one
 *             plain-C "launch").
 *   reads, read_bytes:   dc_download calls (device -> host) and their bytes.
 *   writes, write_bytes: dc_upload calls (host -> device) and their bytes.
 *   gemm_flops:          2*m*n*k*batch of every dc_gemm_ex call (dc_gemm, dc_gemm_batched and
 *                        the composites' GEMMs included), plus the matrix products the fused
 *                        attention ops stand for (4*B*T*S*d forward, 8*B*T*S*d backward).
 *   mem_bytes, mem_peak_bytes: bytes held in dc_mem_alloc allocations now, and their
 *                        maximum since the backend opened (a provider's private scratch,
 *                        e.g. CLBlast's, is not seen).
 * Internal work counts too (e.g. the GEMM provider measurement on the first GEMM of a
 * DC_GEMM_AUTO backend without a remembered choice): take differences around a step. */
struct dc_backend_stats {
    uint64_t ops, launches, reads, read_bytes, writes, write_bytes;
    uint64_t gemm_flops, mem_bytes, mem_peak_bytes;
};
void dc_backend_stats_get(const struct dc_backend *be, struct dc_backend_stats *out);

/* Memory. All transfers are blocking with respect to the host buffer. */
dc_status dc_mem_alloc(struct dc_backend *be, size_t n, struct dc_mem **out);
void dc_mem_free(struct dc_backend *be, struct dc_mem *mem);
dc_view dc_view_of(struct dc_mem *mem, size_t off, size_t n);
dc_status dc_upload(struct dc_backend *be, dc_view dst, const float *src);
dc_status dc_download(struct dc_backend *be, float *dst, dc_view src);
dc_status dc_fill(struct dc_backend *be, dc_view dst, float value);
dc_status dc_copy(struct dc_backend *be, dc_view dst, dc_view src);
/* Waits for all queued work; ops themselves never wait. */
dc_status dc_sync(struct dc_backend *be);

/* Writes the device binary of the built program (for --kernels-binary), atomically. */
dc_status dc_backend_export_kernels(struct dc_backend *be, const char *path);

/* Devices, for `decocl devices` and error messages. */
struct dc_device_info {
    char id[24]; /* "P:D" or "ref" */
    char platform[128];
    char name[128];
    char vendor[128];
    char type[16]; /* gpu | cpu | accelerator | ref | other */
    unsigned compute_units;
    uint64_t global_mem, local_mem, max_alloc;
    char cl_version[128];
    char driver[128];
};
/* Lists every OpenCL device (none is not an error) plus ref last. Caller frees *out. */
dc_status dc_device_list(struct dc_device_info **out, size_t *n, struct dc_error *err);
/* One line per device, for error messages; caller frees. */
char *dc_device_list_text(void);

#endif
