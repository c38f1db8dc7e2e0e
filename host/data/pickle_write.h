/* Streaming pickle writer, protocol 4, producing the bytes CPython's C pickler emits
 * for dicts, lists, str, int and numpy 1.x arrays (shared/spec/mmsa-format.md §2.2):
 * the same opcodes, the same MEMOIZE/BINGET sharing (a numeric dtype, the globals, the
 * '<' byte-order string and dict keys are written once and fetched after), the same
 * 1000-item SETITEMS/APPENDS batches and the same 64 KiB framing, with payloads of
 * 64 KiB or more written outside frames.
 *
 * The output is written atomically: everything goes to "<path>.tmp.<pid>", which
 * dc_pkl_writer_commit fsyncs and renames over path; dc_pkl_writer_abort (or any
 * failure inside commit) unlinks it, so path is either untouched or complete.
 *
 * Errors are sticky: after the first failure every call returns the same status
 * without writing, and the message stays in the dc_error given at open.
 *
 * Containers are written by announcing their size, then their elements:
 *   dc_pkl_dict_begin(w, 2); dc_pkl_key(w, "a"); <value>; dc_pkl_key(w, "b"); <value>; dc_pkl_dict_end(w);
 * An array is begin (dtype and shape), then its payload in any number of pieces, then end. */
#ifndef DC_PICKLE_WRITE_H
#define DC_PICKLE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "decocl/status.h"

struct dc_pkl_writer;

/* numpy dtypes the writer knows: dtype string, byte order and item size. */
enum dc_pkl_dtype {
    DC_PKL_F4, /* float32, 'f4' */
    DC_PKL_F8, /* float64, 'f8' */
    DC_PKL_I8, /* int64, 'i8' */
    DC_PKL_U,  /* unicode 'U<n>': n UCS-4 code units per element */
};

#define DC_PKL_MAX_NDIM 8

dc_status dc_pkl_writer_open(struct dc_pkl_writer **out, const char *path, struct dc_error *err);
/* Writes STOP, flushes, fsyncs and renames the temporary file onto path; frees w.
 * On failure the temporary file is removed and path is untouched. */
dc_status dc_pkl_writer_commit(struct dc_pkl_writer *w);
/* Removes the temporary file and frees w (NULL is allowed). */
void dc_pkl_writer_abort(struct dc_pkl_writer *w);

dc_status dc_pkl_dict_begin(struct dc_pkl_writer *w, size_t n_items);
dc_status dc_pkl_dict_end(struct dc_pkl_writer *w);
/* A dict key: the same key text is written once and fetched from the memo afterwards,
 * as with the interned string literals of a dict built in Python. */
dc_status dc_pkl_key(struct dc_pkl_writer *w, const char *key);
dc_status dc_pkl_list_begin(struct dc_pkl_writer *w, size_t n_items);
dc_status dc_pkl_list_end(struct dc_pkl_writer *w);
/* A new str object (UTF-8, validated). */
dc_status dc_pkl_str(struct dc_pkl_writer *w, const char *utf8);
dc_status dc_pkl_int(struct dc_pkl_writer *w, int64_t v);

/* numpy.ndarray, C order. For DC_PKL_U, uchars is n of 'U<n>' (>= 1); else it is ignored. */
dc_status dc_pkl_array_begin(struct dc_pkl_writer *w, enum dc_pkl_dtype dt, size_t uchars, int ndim,
                             const uint64_t *shape);
/* Appends payload bytes (little-endian element data); the total must equal
 * prod(shape) * itemsize by dc_pkl_array_end. */
dc_status dc_pkl_array_write(struct dc_pkl_writer *w, const void *data, size_t nbytes);
dc_status dc_pkl_array_end(struct dc_pkl_writer *w);
/* Convenience: a whole 1-D 'U<n>' array from n UTF-8 strings, n = the longest in code points. */
dc_status dc_pkl_array_str(struct dc_pkl_writer *w, const char *const *strs, size_t n);
/* Convenience: a whole array from memory. */
dc_status dc_pkl_array(struct dc_pkl_writer *w, enum dc_pkl_dtype dt, int ndim, const uint64_t *shape,
                       const void *data);

/* UTF-8 decoding shared with the string helpers: returns the number of code points
 * of s, or -1 when s is not valid UTF-8 (overlongs, surrogates and > U+10FFFF rejected).
 * When cps is not NULL the code points are stored there. */
long dc_utf8_decode(const char *s, uint32_t *cps);

#endif
