/* The OpenCL backend: context, one in-order queue, memory, the launch point. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clblast_c.h>

#include "backend/cl/cl_internal.h"
#include "core/log.h"

/* Which op each kernel serves, from cl_kernels.def. */
static const enum dc_op kernel_op[CLK_COUNT] = {
#define DC_CL_KERNEL(name, op) DC_OP_##op,
#include "backend/cl/cl_kernels.def"
#undef DC_CL_KERNEL
};

/* DECOCL_PROFILE=1: a per-kernel table of device time on stderr at close (launches
 * are serialised while profiling, so use it to rank kernels, not to time steps). */
static void profile_report(const struct cl_backend *cb) {
    double total = 0;
    for (int k = 0; k < CLK_COUNT; ++k) total += cb->profile_ns[k];
    if (total <= 0) return;
    int order[CLK_COUNT];
    for (int k = 0; k < CLK_COUNT; ++k) order[k] = k;
    for (int i = 1; i < CLK_COUNT; ++i)
        for (int j = i; j > 0 && cb->profile_ns[order[j]] > cb->profile_ns[order[j - 1]]; --j) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    fprintf(stderr, "kernel profile (%s): %.1f ms device time\n%-32s %10s %10s %6s\n", cb->base.device_name,
            total * 1e-6, "kernel", "calls", "ms", "%");
    for (int i = 0; i < CLK_COUNT && cb->profile_ns[order[i]] > 0; ++i)
        fprintf(stderr, "%-32s %10lu %10.2f %5.1f%%\n", cl_kernel_name(order[i]), cb->profile_calls[order[i]],
                cb->profile_ns[order[i]] * 1e-6, 100.0 * cb->profile_ns[order[i]] / total);
}

static void cl_close(struct dc_backend *be) {
    struct cl_backend *cb = cl_of(be);
    if (cb->queue) clFinish(cb->queue);
    if (cb->profile) profile_report(cb);
    for (int k = 0; k < CLK_COUNT; ++k)
        if (cb->kernels[k]) clReleaseKernel(cb->kernels[k]);
    if (cb->program) clReleaseProgram(cb->program);
    if (cb->queue) clReleaseCommandQueue(cb->queue);
    /* CLBlast keeps its compiled programs (holding the context) for the process's life */
    if (cb->clblast_ok) CLBlastClearCache();
    if (cb->ctx) clReleaseContext(cb->ctx);
    free(cb);
}

static dc_status cl_mem_alloc(struct dc_backend *be, size_t n, struct dc_mem **out) {
    struct dc_mem *m = calloc(1, sizeof *m);
    if (!m) return dc_set_error(be->err, DC_ERR_NOMEM, "cannot allocate a buffer handle");
    cl_int rc;
    m->buf = clCreateBuffer(cl_of(be)->ctx, CL_MEM_READ_WRITE, (n ? n : 1) * sizeof(float), NULL, &rc);
    if (rc != CL_SUCCESS) {
        free(m);
        dc_status st = cl_fail(be, rc, "clCreateBuffer", __FILE__, __LINE__);
        size_t len = strlen(be->err->msg);
        snprintf(be->err->msg + len, sizeof be->err->msg - len, " (%zu floats)", n);
        return st;
    }
    m->n = n;
    *out = m;
    return DC_OK;
}

static void cl_mem_free(struct dc_backend *be, struct dc_mem *mem) {
    (void)be;
    clReleaseMemObject(mem->buf);
    free(mem);
}

static size_t cl_mem_floats(const struct dc_mem *mem) { return mem->n; }

static dc_status cl_upload(struct dc_backend *be, dc_view dst, const float *src) {
    DC_CL_RETURN_IF(be, clEnqueueWriteBuffer(cl_of(be)->queue, dst.mem->buf, CL_TRUE, dst.off * sizeof(float),
                                             dst.n * sizeof(float), src, 0, NULL, NULL));
    return DC_OK;
}

static dc_status cl_download(struct dc_backend *be, float *dst, dc_view src) {
    DC_CL_RETURN_IF(be, clEnqueueReadBuffer(cl_of(be)->queue, src.mem->buf, CL_TRUE, src.off * sizeof(float),
                                            src.n * sizeof(float), dst, 0, NULL, NULL));
    return DC_OK;
}

static dc_status cl_fill(struct dc_backend *be, dc_view dst, float value) {
    DC_CL_RETURN_IF(be, clEnqueueFillBuffer(cl_of(be)->queue, dst.mem->buf, &value, sizeof value,
                                            dst.off * sizeof(float), dst.n * sizeof(float), 0, NULL, NULL));
    be->stats.launches++;
    return DC_OK;
}

static dc_status cl_copy(struct dc_backend *be, dc_view dst, dc_view src) {
    DC_CL_RETURN_IF(be, clEnqueueCopyBuffer(cl_of(be)->queue, src.mem->buf, dst.mem->buf, src.off * sizeof(float),
                                            dst.off * sizeof(float), dst.n * sizeof(float), 0, NULL, NULL));
    be->stats.launches++;
    return DC_OK;
}

static dc_status cl_sync(struct dc_backend *be) {
    DC_CL_RETURN_IF(be, clFinish(cl_of(be)->queue));
    return DC_OK;
}

dc_status cl_launch(struct cl_backend *cb, enum cl_kernel_id id, cl_uint dims, const size_t *global,
                    const size_t *local, const struct cl_arg *args, size_t nargs) {
    struct dc_backend *be = &cb->base;
    cl_kernel k = cb->kernels[id];
    if (!k) return dc_set_error(be->err, DC_ERR_UNSUPPORTED, "%s: kernel %s missing", be->device_name, cl_kernel_name(id));
    size_t g[3];
    for (cl_uint d = 0; d < dims; ++d) {
        g[d] = local ? cl_round_up(global[d], local[d]) : global[d];
        if (g[d] == 0) return DC_OK;
    }
    cl_int rc = CL_SUCCESS;
    char call[96];
    for (size_t i = 0; i < nargs && rc == CL_SUCCESS; ++i) {
        rc = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].value);
        if (rc != CL_SUCCESS) snprintf(call, sizeof call, "clSetKernelArg(%s, %zu)", cl_kernel_name(id), i);
    }
    if (rc == CL_SUCCESS) {
        cl_event ev = NULL;
        rc = clEnqueueNDRangeKernel(cb->queue, k, dims, NULL, g, local, 0, NULL, cb->profile ? &ev : NULL);
        if (rc != CL_SUCCESS) snprintf(call, sizeof call, "clEnqueueNDRangeKernel(%s)", cl_kernel_name(id));
        else be->stats.launches++; /* the one kernel launch point */
        if (ev) {
            cl_ulong t0 = 0, t1 = 0;
            if (clWaitForEvents(1, &ev) == CL_SUCCESS &&
                clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL) == CL_SUCCESS &&
                clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) == CL_SUCCESS) {
                cb->profile_ns[id] += (double)(t1 - t0);
                cb->profile_calls[id]++;
            }
            clReleaseEvent(ev);
        }
    }
    return rc == CL_SUCCESS ? DC_OK : cl_fail(be, rc, call, __FILE__, __LINE__);
}

dc_status cl_launch_1d(struct cl_backend *cb, enum cl_kernel_id id, size_t n, const struct cl_arg *args, size_t nargs) {
    size_t local = cb->max_wg < 64 ? cb->max_wg : 64;
    return cl_launch(cb, id, 1, &n, &local, args, nargs);
}

static const struct dc_backend_i cl_impl = {
    .name = "opencl",
    .close = cl_close,
    .mem_alloc = cl_mem_alloc,
    .mem_free = cl_mem_free,
    .mem_floats = cl_mem_floats,
    .upload = cl_upload,
    .download = cl_download,
    .fill = cl_fill,
    .copy = cl_copy,
    .sync = cl_sync,
    .gemm = cl_gemm,
    .bias_add = cl_bias_add,
    .bias_grad = cl_bias_grad,
    .relu_fwd = cl_relu_fwd,
    .relu_bwd = cl_relu_bwd,
    .layernorm_fwd = cl_layernorm_fwd,
    .layernorm_bwd = cl_layernorm_bwd,
    .softmax_fwd = cl_softmax_fwd,
    .softmax_bwd = cl_softmax_bwd,
    .dropout_fwd = cl_dropout_fwd,
    .dropout_bwd = cl_dropout_bwd,
    .scale = cl_scale,
    .axpy = cl_axpy,
    .add = cl_add,
    .meanpool_fwd = cl_meanpool_fwd,
    .meanpool_bwd = cl_meanpool_bwd,
    .im2col = cl_im2col,
    .col2im = cl_col2im,
    .sum = cl_sum,
    .norm2 = cl_norm2,
    .adam = cl_adam,
    .copy2d = cl_copy2d,
    .axpy2d = cl_axpy2d,
    .decouple_fwd = cl_decouple_fwd,
    .decouple_bwd = cl_decouple_bwd,
    .homo_stats_fwd = cl_homo_stats_fwd,
    .homo_stats_bwd = cl_homo_stats_bwd,
    .homo_mmd_fwd = cl_homo_mmd_fwd,
    .homo_mmd_bwd = cl_homo_mmd_bwd,
    .task_loss_fwd = cl_task_loss_fwd,
    .task_loss_bwd = cl_task_loss_bwd,
    .supcon_fwd = cl_supcon_fwd,
    .supcon_bwd = cl_supcon_bwd,
    .gmm_fwd = cl_gmm_fwd,
    .gmm_bwd = cl_gmm_bwd,
    .sinkhorn_fwd = cl_sinkhorn_fwd,
    .sinkhorn_bwd = cl_sinkhorn_bwd,
    .local_proto_fwd = cl_local_proto_fwd,
    .local_proto_bwd = cl_local_proto_bwd,
    .attention_fwd = cl_attention_fwd,
    .attention_bwd = cl_attention_bwd,
};

/* An op is usable when every kernel it needs was found (GEMM: or CLBlast works). */
static void ops_available(struct cl_backend *cb) {
    for (int op = 0; op < DC_OP_COUNT; ++op) cb->base.op_ok[op] = true;
    for (int k = 0; k < CLK_COUNT; ++k)
        if (!cb->kernels[k]) cb->base.op_ok[kernel_op[k]] = false;
    if (cb->clblast_ok) cb->base.op_ok[DC_OP_gemm] = true;
}

dc_status dc_cl_open(struct dc_backend **out, const struct dc_backend_options *opt, struct dc_error *err) {
    *out = NULL;
    struct cl_device_ref ref;
    dc_status st = cl_device_select(opt->device, &ref, err);
    if (st != DC_OK) return st;
    struct cl_backend *cb = calloc(1, sizeof *cb);
    if (!cb) return dc_set_error(err, DC_ERR_NOMEM, "cannot allocate the OpenCL backend");
    struct dc_backend *be = &cb->base;
    be->impl = &cl_impl;
    be->err = err ? err : &be->own_err;
    cb->opt = *opt;
    cb->platform = ref.platform;
    cb->device = ref.device;
    clGetDeviceInfo(cb->device, CL_DEVICE_NAME, sizeof be->device_name - 1, be->device_name, NULL);
    clGetDeviceInfo(cb->device, CL_DRIVER_VERSION, sizeof be->driver - 1, be->driver, NULL);
    clGetDeviceInfo(cb->device, CL_DEVICE_TYPE, sizeof cb->device_type, &cb->device_type, NULL);
    clGetDeviceInfo(cb->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof cb->max_wg, &cb->max_wg, NULL);
    clGetPlatformInfo(cb->platform, CL_PLATFORM_VERSION, sizeof cb->platform_version - 1, cb->platform_version, NULL);
    if (cb->max_wg == 0) cb->max_wg = 1;
    cl_int rc;
    if (opt->no_cache) cb->cache_dir[0] = '\0';
    else if ((st = cl_cache_dir_resolve(opt->cache_dir, cb->cache_dir, sizeof cb->cache_dir, be->err)) != DC_OK)
        goto fail;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)cb->platform, 0};
    cb->ctx = clCreateContext(props, 1, &cb->device, NULL, NULL, &rc);
    if (rc != CL_SUCCESS) {
        st = cl_fail(be, rc, "clCreateContext", __FILE__, __LINE__);
        goto fail;
    }
    const char *profile = getenv("DECOCL_PROFILE");
    cb->profile = profile && *profile && strcmp(profile, "0") != 0;
    cb->queue = clCreateCommandQueue(cb->ctx, cb->device, cb->profile ? CL_QUEUE_PROFILING_ENABLE : 0, &rc);
    if (rc != CL_SUCCESS) {
        st = cl_fail(be, rc, "clCreateCommandQueue", __FILE__, __LINE__);
        goto fail;
    }
    if ((st = cl_program_load(cb)) != DC_OK) goto fail;
    if ((st = cl_gemm_init(cb)) != DC_OK) goto fail;
    ops_available(cb);
    *out = be;
    return DC_OK;
fail:
    cl_close(be);
    return st;
}

dc_status dc_backend_export_kernels(struct dc_backend *be, const char *path) {
    if (strcmp(be->impl->name, "opencl") != 0)
        return dc_set_error(be->err, DC_ERR_ARG, "the ref backend has no kernels to export; choose an OpenCL device");
    return cl_program_export(cl_of(be), path);
}
