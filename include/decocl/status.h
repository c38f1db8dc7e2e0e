/* Status codes and the error record every layer fills; only main.c exits. */
#ifndef DECOCL_STATUS_H
#define DECOCL_STATUS_H

typedef enum dc_status {
    DC_OK = 0,
    DC_ERR_ARG = -1,         /* bad argument or usage */
    DC_ERR_NOMEM = -2,       /* host or device allocation failed */
    DC_ERR_IO = -3,          /* file system */
    DC_ERR_FORMAT = -4,      /* malformed input file */
    DC_ERR_CL = -5,          /* OpenCL call failed; sub holds the CL code */
    DC_ERR_CLBLAST = -6,     /* CLBlast-specific failure; sub holds its code */
    DC_ERR_UNSUPPORTED = -7, /* the backend or device lacks the op */
    DC_ERR_NUMERIC = -8,     /* non-finite value where a finite one is required */
} dc_status;

struct dc_error {
    dc_status code;
    int sub; /* raw OpenCL/CLBlast code where relevant, else 0 */
    char msg[4096];
};

const char *dc_status_str(dc_status s);

/* Records code and a printf-style message in err (which may be NULL); returns code. */
dc_status dc_set_error(struct dc_error *err, dc_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void dc_error_clear(struct dc_error *err);

#endif
