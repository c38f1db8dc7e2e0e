/* Containers: a plain pickle, a pickle inside .tar/.tar.gz/.tar.xz/.zip (streamed through
 * libarchive, never extracted), a .npz, or a directory of <split>/<key>.npy files. Each becomes
 * one value tree: {split: {key: value}}. FILE#member selects an archive member; an archive that
 * holds exactly one .pkl needs no member. */
#ifndef DC_ARCHIVE_H
#define DC_ARCHIVE_H

#include "data/pickle.h"

dc_status dc_data_load_doc(const char *path, const struct dc_pk_options *opt, struct dc_pk_doc **out,
                           struct dc_error *err);

/* The same for bytes in memory (tests, fuzzing): a pickle, or an archive / .npz. member may be NULL. */
dc_status dc_data_load_memory(const void *buf, size_t len, const char *name, const char *member,
                              const struct dc_pk_options *opt, struct dc_pk_doc **out, struct dc_error *err);

/* A stream over memory; ctx must outlive the stream. */
struct dc_mem_source {
    const unsigned char *p;
    size_t len, pos;
};
void dc_stream_init_memory(struct dc_stream *s, struct dc_mem_source *ctx, const void *buf, size_t len,
                           const char *where);

#endif
