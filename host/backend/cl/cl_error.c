/* OpenCL and CLBlast status codes as names, for messages. */
#include <stdio.h>

#include "backend/cl/cl_internal.h"

const char *dc_cl_error_name(cl_int code) {
    switch (code) {
#define NAME(c) \
    case c: return #c;
        NAME(CL_SUCCESS) NAME(CL_DEVICE_NOT_FOUND) NAME(CL_DEVICE_NOT_AVAILABLE) NAME(CL_COMPILER_NOT_AVAILABLE)
        NAME(CL_MEM_OBJECT_ALLOCATION_FAILURE) NAME(CL_OUT_OF_RESOURCES) NAME(CL_OUT_OF_HOST_MEMORY)
        NAME(CL_PROFILING_INFO_NOT_AVAILABLE) NAME(CL_MEM_COPY_OVERLAP) NAME(CL_IMAGE_FORMAT_MISMATCH)
        NAME(CL_IMAGE_FORMAT_NOT_SUPPORTED) NAME(CL_BUILD_PROGRAM_FAILURE) NAME(CL_MAP_FAILURE)
        NAME(CL_MISALIGNED_SUB_BUFFER_OFFSET) NAME(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
        NAME(CL_COMPILE_PROGRAM_FAILURE) NAME(CL_LINKER_NOT_AVAILABLE) NAME(CL_LINK_PROGRAM_FAILURE)
        NAME(CL_DEVICE_PARTITION_FAILED) NAME(CL_KERNEL_ARG_INFO_NOT_AVAILABLE) NAME(CL_INVALID_VALUE)
        NAME(CL_INVALID_DEVICE_TYPE) NAME(CL_INVALID_PLATFORM) NAME(CL_INVALID_DEVICE) NAME(CL_INVALID_CONTEXT)
        NAME(CL_INVALID_QUEUE_PROPERTIES) NAME(CL_INVALID_COMMAND_QUEUE) NAME(CL_INVALID_HOST_PTR)
        NAME(CL_INVALID_MEM_OBJECT) NAME(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR) NAME(CL_INVALID_IMAGE_SIZE)
        NAME(CL_INVALID_SAMPLER) NAME(CL_INVALID_BINARY) NAME(CL_INVALID_BUILD_OPTIONS) NAME(CL_INVALID_PROGRAM)
        NAME(CL_INVALID_PROGRAM_EXECUTABLE) NAME(CL_INVALID_KERNEL_NAME) NAME(CL_INVALID_KERNEL_DEFINITION)
        NAME(CL_INVALID_KERNEL) NAME(CL_INVALID_ARG_INDEX) NAME(CL_INVALID_ARG_VALUE) NAME(CL_INVALID_ARG_SIZE)
        NAME(CL_INVALID_KERNEL_ARGS) NAME(CL_INVALID_WORK_DIMENSION) NAME(CL_INVALID_WORK_GROUP_SIZE)
        NAME(CL_INVALID_WORK_ITEM_SIZE) NAME(CL_INVALID_GLOBAL_OFFSET) NAME(CL_INVALID_EVENT_WAIT_LIST)
        NAME(CL_INVALID_EVENT) NAME(CL_INVALID_OPERATION) NAME(CL_INVALID_GL_OBJECT) NAME(CL_INVALID_BUFFER_SIZE)
        NAME(CL_INVALID_MIP_LEVEL) NAME(CL_INVALID_GLOBAL_WORK_SIZE) NAME(CL_INVALID_PROPERTY)
        NAME(CL_INVALID_IMAGE_DESCRIPTOR) NAME(CL_INVALID_COMPILER_OPTIONS) NAME(CL_INVALID_LINKER_OPTIONS)
        NAME(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef NAME
        case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    }
    return "unknown OpenCL error";
}

/* CLBlast reuses OpenCL codes above -1000; clBLAS-style argument codes and its own below. */
const char *dc_clblast_error_name(int code) {
    if (code > -1000) return dc_cl_error_name(code);
    switch (code) {
        case -1024: return "CLBlastNotImplemented";
        case -1022: return "CLBlastInvalidMatrixA";
        case -1021: return "CLBlastInvalidMatrixB";
        case -1020: return "CLBlastInvalidMatrixC";
        case -1019: return "CLBlastInvalidVectorX";
        case -1018: return "CLBlastInvalidVectorY";
        case -1017: return "CLBlastInvalidDimension";
        case -1016: return "CLBlastInvalidLeadDimA";
        case -1015: return "CLBlastInvalidLeadDimB";
        case -1014: return "CLBlastInvalidLeadDimC";
        case -1013: return "CLBlastInvalidIncrementX";
        case -1012: return "CLBlastInvalidIncrementY";
        case -1011: return "CLBlastInsufficientMemoryA";
        case -1010: return "CLBlastInsufficientMemoryB";
        case -1009: return "CLBlastInsufficientMemoryC";
        case -1008: return "CLBlastInsufficientMemoryX";
        case -1007: return "CLBlastInsufficientMemoryY";
        case -2050: return "CLBlastInsufficientMemoryTemp";
        case -2049: return "CLBlastInvalidBatchCount";
        case -2048: return "CLBlastInvalidOverrideKernel";
        case -2047: return "CLBlastMissingOverrideParameter";
        case -2046: return "CLBlastInvalidLocalMemUsage";
        case -2045: return "CLBlastNoHalfPrecision";
        case -2044: return "CLBlastNoDoublePrecision";
        case -2043: return "CLBlastInvalidVectorScalar";
        case -2042: return "CLBlastInsufficientMemoryScalar";
        case -2041: return "CLBlastDatabaseError";
        case -2040: return "CLBlastUnknownError";
        case -2039: return "CLBlastUnexpectedError";
    }
    return "unknown CLBlast error";
}

dc_status cl_fail(struct dc_backend *be, cl_int code, const char *call, const char *file, int line) {
    dc_set_error(be->err, DC_ERR_CL, "%s: %s (%d) in %s at %s:%d", be->device_name, dc_cl_error_name(code), (int)code,
                 call, file, line);
    be->err->sub = code;
    return DC_ERR_CL;
}
