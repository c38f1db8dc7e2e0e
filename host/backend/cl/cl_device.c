/* Enumerating OpenCL devices and resolving --device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cl/cl_internal.h"
#include "decocl/decocl.h"

/* All platforms (none is not an error). */
static cl_uint platforms_get(cl_platform_id **out) {
    cl_uint np = 0;
    *out = NULL;
    if (clGetPlatformIDs(0, NULL, &np) != CL_SUCCESS || np == 0) return 0;
    *out = calloc(np, sizeof **out);
    if (!*out || clGetPlatformIDs(np, *out, NULL) != CL_SUCCESS) {
        free(*out);
        *out = NULL;
        return 0;
    }
    return np;
}

static cl_uint devices_get(cl_platform_id p, cl_device_id **out) {
    cl_uint nd = 0;
    *out = NULL;
    if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0) return 0;
    *out = calloc(nd, sizeof **out);
    if (!*out || clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, nd, *out, NULL) != CL_SUCCESS) {
        free(*out);
        *out = NULL;
        return 0;
    }
    return nd;
}

static const char *type_name(cl_device_type t) {
    if (t & CL_DEVICE_TYPE_GPU) return "gpu";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
    if (t & CL_DEVICE_TYPE_CPU) return "cpu";
    if (t & CL_DEVICE_TYPE_CUSTOM) return "accelerator"; /* FPGA runtimes report CUSTOM too */
    return "other";
}

static void info_str(cl_device_id d, cl_device_info what, char *buf, size_t cap) {
    buf[0] = '\0';
    if (clGetDeviceInfo(d, what, cap, buf, NULL) != CL_SUCCESS) snprintf(buf, cap, "?");
    buf[cap - 1] = '\0';
}

static void describe(cl_platform_id p, cl_device_id d, unsigned pi, unsigned di, struct dc_device_info *o) {
    memset(o, 0, sizeof *o);
    snprintf(o->id, sizeof o->id, "%u:%u", pi, di);
    if (clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof o->platform, o->platform, NULL) != CL_SUCCESS)
        snprintf(o->platform, sizeof o->platform, "?");
    o->platform[sizeof o->platform - 1] = '\0';
    info_str(d, CL_DEVICE_NAME, o->name, sizeof o->name);
    info_str(d, CL_DEVICE_VENDOR, o->vendor, sizeof o->vendor);
    info_str(d, CL_DEVICE_VERSION, o->cl_version, sizeof o->cl_version);
    info_str(d, CL_DRIVER_VERSION, o->driver, sizeof o->driver);
    cl_device_type t = 0;
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof t, &t, NULL);
    snprintf(o->type, sizeof o->type, "%s", type_name(t));
    cl_uint cu = 0;
    clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    o->compute_units = cu;
    cl_ulong g = 0, l = 0, a = 0;
    clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof g, &g, NULL);
    clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof l, &l, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof a, &a, NULL);
    o->global_mem = g;
    o->local_mem = l;
    o->max_alloc = a;
}

dc_status dc_device_list(struct dc_device_info **out, size_t *n, struct dc_error *err) {
    *out = NULL;
    *n = 0;
    cl_platform_id *ps;
    cl_uint np = platforms_get(&ps);
    size_t cap = 1, count = 0;
    struct dc_device_info *list = calloc(cap, sizeof *list);
    if (!list) {
        free(ps);
        return dc_set_error(err, DC_ERR_NOMEM, "cannot list devices");
    }
    for (cl_uint p = 0; p < np; ++p) {
        cl_device_id *ds;
        cl_uint nd = devices_get(ps[p], &ds);
        for (cl_uint d = 0; d < nd; ++d) {
            if (count + 1 >= cap) {
                struct dc_device_info *grown = realloc(list, 2 * cap * sizeof *list);
                if (!grown) {
                    free(ds);
                    free(ps);
                    free(list);
                    return dc_set_error(err, DC_ERR_NOMEM, "cannot list devices");
                }
                list = grown;
                cap *= 2;
            }
            describe(ps[p], ds[d], p, d, &list[count++]);
        }
        free(ds);
    }
    free(ps);
    struct dc_device_info *ref = &list[count++];
    memset(ref, 0, sizeof *ref);
    snprintf(ref->id, sizeof ref->id, "ref");
    snprintf(ref->platform, sizeof ref->platform, "decocl");
    snprintf(ref->name, sizeof ref->name, "ref (plain C reference backend)");
    snprintf(ref->vendor, sizeof ref->vendor, "decocl");
    snprintf(ref->type, sizeof ref->type, "ref");
    ref->compute_units = 1;
    snprintf(ref->cl_version, sizeof ref->cl_version, "-");
    snprintf(ref->driver, sizeof ref->driver, "decocl %s", DECOCL_VERSION);
    *out = list;
    *n = count;
    return DC_OK;
}

char *dc_device_list_text(void) {
    struct dc_device_info *list;
    size_t n;
    struct dc_error err = {0};
    if (dc_device_list(&list, &n, &err) != DC_OK) return NULL;
    size_t cap = 64 + n * 200;
    char *text = malloc(cap);
    if (!text) {
        free(list);
        return NULL;
    }
    size_t used = 0;
    for (size_t i = 0; i < n; ++i)
        used += (size_t)snprintf(text + used, cap - used, "  %-5s %-11s %s%s%s\n", list[i].id, list[i].type,
                                 list[i].name, strcmp(list[i].type, "ref") ? " / " : "",
                                 strcmp(list[i].type, "ref") ? list[i].platform : "");
    if (n == 1) snprintf(text + used, cap - used, "  (no OpenCL platform found: is an ICD such as pocl-opencl-icd installed?)\n");
    free(list);
    return text;
}

static dc_status no_such_device(struct dc_error *err, const char *why) {
    char *text = dc_device_list_text();
    dc_set_error(err, DC_ERR_ARG, "%s; available devices (--device gpu|cpu|accelerator|ref|P:D):\n%s", why,
                 text ? text : "  (cannot list devices)\n");
    free(text);
    return DC_ERR_ARG;
}

dc_status cl_device_select(const char *spec, struct cl_device_ref *out, struct dc_error *err) {
    char why[256];
    cl_device_type want = 0;
    unsigned wp = 0, wd = 0;
    bool by_index = false;
    char tail;
    if (strcmp(spec, "gpu") == 0) want = CL_DEVICE_TYPE_GPU;
    else if (strcmp(spec, "cpu") == 0) want = CL_DEVICE_TYPE_CPU;
    else if (strcmp(spec, "accelerator") == 0) want = CL_DEVICE_TYPE_ACCELERATOR | CL_DEVICE_TYPE_CUSTOM;
    else if (sscanf(spec, "%u:%u%c", &wp, &wd, &tail) == 2) by_index = true;
    else {
        snprintf(why, sizeof why, "unknown device '%s'", spec);
        return no_such_device(err, why);
    }
    cl_platform_id *ps;
    cl_uint np = platforms_get(&ps);
    for (cl_uint p = 0; p < np; ++p) {
        cl_device_id *ds;
        cl_uint nd = devices_get(ps[p], &ds);
        for (cl_uint d = 0; d < nd; ++d) {
            cl_device_type t = 0;
            clGetDeviceInfo(ds[d], CL_DEVICE_TYPE, sizeof t, &t, NULL);
            bool match = by_index ? (p == wp && d == wd) : (t & want) != 0;
            if (match) {
                *out = (struct cl_device_ref){.platform = ps[p], .device = ds[d], .p = p, .d = d};
                free(ds);
                free(ps);
                return DC_OK;
            }
        }
        free(ds);
    }
    free(ps);
    if (by_index) snprintf(why, sizeof why, "no OpenCL device %u:%u", wp, wd);
    else snprintf(why, sizeof why, "no OpenCL %s device found", spec);
    return no_such_device(err, why);
}
