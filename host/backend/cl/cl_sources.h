/* Kernel sources embedded at build time by cmake/embed_cl.cmake (common.cl first). */
#ifndef DC_CL_SOURCES_H
#define DC_CL_SOURCES_H

#include <stddef.h>

struct dc_cl_source {
    const char *name; /* file name, e.g. "gemm.cl" */
    const char *text; /* NUL-terminated */
    size_t len;
};
extern const struct dc_cl_source dc_cl_sources[];
extern const size_t dc_cl_source_count;

#endif
