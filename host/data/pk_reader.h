/* Internal to the pickle reader: its state, shared by pickle.c (opcodes, stream, stack, memo) and
 * pk_numpy.c (the whitelisted globals: REDUCE and BUILD). */
#ifndef DC_PK_READER_H
#define DC_PK_READER_H

#include "data/pickle.h"

enum pk_global {
    PK_G_RECONSTRUCT = 1, /* numpy.core.multiarray._reconstruct and its aliases */
    PK_G_NDARRAY,         /* numpy.ndarray: only an argument of _reconstruct */
    PK_G_DTYPE,           /* numpy.dtype */
    PK_G_FROMBUFFER,      /* numpy.core.numeric._frombuffer (protocol 5) */
    PK_G_SCALAR,          /* numpy.core.multiarray.scalar */
    PK_G_ENCODE,          /* _codecs.encode (protocol 2 bytes) */
};

#define PK_SMALL_COPY (64u * 1024u) /* payloads below this are copied, above moved into the array */
#define PK_CHUNK (1u << 20)         /* streaming conversion chunk */

struct pk_reader {
    struct dc_stream *in;
    struct dc_error *err;
    struct dc_pk_options opt;
    struct dc_pk_doc *doc;
    unsigned char buf[64 * 1024];
    size_t bpos, blen;
    uint64_t off;    /* stream offset of the next unread byte */
    uint64_t op_off; /* offset of the opcode being executed */
    int op;          /* the opcode being executed */
    int proto;
    struct dc_pk_value **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    struct dc_pk_value **memo;
    size_t memo_len, memo_count, memo_cap;
    unsigned char *scratch; /* PK_CHUNK bytes, for streaming conversion */
};

/* Fills err with "<where>: offset N: OPNAME (0xNN): <detail>" and returns code. */
dc_status pk_fail(struct pk_reader *r, dc_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *pk_global_name(int g); /* "numpy.core.multiarray._reconstruct" ... */

dc_status pk_reduce(struct pk_reader *r, struct dc_pk_value *fn, struct dc_pk_value *args, struct dc_pk_value **out);
dc_status pk_build(struct pk_reader *r, struct dc_pk_value *obj, struct dc_pk_value *state);
/* BINBYTES & co. when the stack says an array's BUILD is being assembled: true (and *conv set to
 * the dtype, *count to the elements) when the payload can stream straight into float32. */
bool pk_payload_wants_f32(struct pk_reader *r, size_t len, enum dc_dtype *conv, size_t *count);

#endif
