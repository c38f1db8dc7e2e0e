#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "decocl/status.h"

const char *dc_status_str(dc_status s) {
    switch (s) {
        case DC_OK: return "ok";
        case DC_ERR_ARG: return "invalid argument";
        case DC_ERR_NOMEM: return "out of memory";
        case DC_ERR_IO: return "i/o error";
        case DC_ERR_FORMAT: return "format error";
        case DC_ERR_CL: return "OpenCL error";
        case DC_ERR_CLBLAST: return "CLBlast error";
        case DC_ERR_UNSUPPORTED: return "unsupported";
        case DC_ERR_NUMERIC: return "numerical error";
    }
    return "unknown status";
}

dc_status dc_set_error(struct dc_error *err, dc_status code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void dc_error_clear(struct dc_error *err) {
    if (!err) return;
    err->code = DC_OK;
    err->sub = 0;
    err->msg[0] = '\0';
}
