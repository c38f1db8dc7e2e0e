/* safetensors files of float32 tensors, read strictly and written atomically.
 *
 * Format (huggingface/safetensors): a little-endian u64 N, N bytes of UTF-8 JSON (we pad
 * with spaces to a multiple of 8), then the raw little-endian row-major data. The JSON
 * maps each tensor name to {"dtype":"F32","shape":[...],"data_offsets":[begin,end]}
 * (offsets relative to the data start) and may hold "__metadata__", a string->string
 * map. Sorted by offset, the tensors start at 0, leave no holes and end at end-of-file.
 *
 * Errors name the file and the tensor, and byte offsets for header problems:
 * DC_ERR_IO (file system), DC_ERR_FORMAT (malformed file), DC_ERR_UNSUPPORTED (a dtype
 * other than F32, a rank above DC_ST_MAX_DIMS), DC_ERR_ARG (bad writer input). */
#ifndef DC_MODEL_SAFETENSORS_H
#define DC_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "decocl/status.h"

#define DC_ST_MAX_DIMS 8
#define DC_ST_MAX_HEADER 100000000ull /* N above this is rejected, as the reference does */

struct dc_st_kv {
    const char *key, *value;
};

struct dc_st_meta {
    size_t n;
    char **keys, **values; /* in header order */
};

struct dc_st_tensor {
    char *name;
    size_t ndim, shape[DC_ST_MAX_DIMS]; /* ndim 0 is a scalar */
    size_t numel;
    float *data; /* numel floats in host byte order, owned by the file */
};

struct dc_st_file {
    size_t count;
    struct dc_st_tensor *tensors; /* sorted by their place in the data */
    struct dc_st_meta meta;
    void *storage; /* the data of every tensor */
};

/* Reads and validates path; on failure *f is empty. Free with dc_st_free. */
dc_status dc_st_read(const char *path, struct dc_st_file *f, struct dc_error *err);
/* The same over a buffer in memory; label stands for the file name in messages. */
dc_status dc_st_parse(const void *buf, size_t len, const char *label, struct dc_st_file *f, struct dc_error *err);
void dc_st_free(struct dc_st_file *f);

const struct dc_st_tensor *dc_st_find(const struct dc_st_file *f, const char *name); /* NULL if absent */
const char *dc_st_meta_get(const struct dc_st_meta *m, const char *key);             /* NULL if absent */
void dc_st_meta_free(struct dc_st_meta *m);

/* A tensor to write; data holds the product of shape floats (may be NULL when 0). */
struct dc_st_entry {
    const char *name;
    size_t ndim, shape[DC_ST_MAX_DIMS];
    const float *data;
};

/* Writes the tensors in the given order, contiguous from offset 0, with exactly the
 * metadata given (none when nmeta is 0), atomically: <path>.tmp.<pid> is written,
 * flushed, fsync'd and renamed over path; on any failure it is removed and an existing
 * path is left as it was. Names must be unique and not "__metadata__". */
dc_status dc_st_write(const char *path, const struct dc_st_entry *t, size_t n, const struct dc_st_kv *meta,
                      size_t nmeta, struct dc_error *err);

#endif
