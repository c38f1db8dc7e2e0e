/* A sequential byte source: plain files, archive members and memory all look like this to the
 * pickle and .npy readers, which never seek (archives stream, shared/spec/mmsa-format.md §6). */
#ifndef DC_STREAM_H
#define DC_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "decocl/status.h"

struct dc_stream {
    /* Reads up to n bytes into buf and sets *got; *got == 0 means end of stream. On failure fills
     * err (naming the container) and returns its status. */
    dc_status (*read)(void *ctx, void *buf, size_t n, size_t *got, struct dc_error *err);
    void *ctx;
    int64_t size;     /* total bytes when known (plain files, most archive members), else -1 */
    char where[1024]; /* "FILE" or "FILE: member M", the prefix of every error message */
};

#endif
