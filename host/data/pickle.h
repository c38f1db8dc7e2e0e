/* The whitelisted streaming pickle reader (shared/spec/mmsa-format.md §2.4) and the value tree it
 * builds. Protocols 2-5; only the opcodes and (module, name) globals of the spec; nothing is ever
 * executed. Input comes from a sequential dc_stream (no seek, no mmap). The .npy readers build
 * the same tree, so the dataset layer and `inspect` see one representation.
 *
 * Memory: the document owns every value it created (a linked list), so cycles that a pickle can
 * build with BINGET + APPEND are harmless and freeing never recurses. Big payloads are read
 * straight into the buffer the array keeps; float arrays of at least `f32_min_ndim` dimensions
 * are converted to float32 while streaming (1 MiB chunks) when the dtype is known before the
 * payload (protocols 3-4), or in place right after it (protocol 5 _frombuffer, protocol 2). */
#ifndef DC_PICKLE_H
#define DC_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/stream.h"
#include "decocl/data.h"

#define DC_PK_MAX_DIMS 32 /* numpy's NPY_MAXDIMS */

enum dc_pk_kind {
    DC_PK_NONE,
    DC_PK_BOOL,
    DC_PK_INT,
    DC_PK_FLOAT,
    DC_PK_STR,   /* UTF-8 */
    DC_PK_BYTES, /* bytes or bytearray */
    DC_PK_TUPLE,
    DC_PK_LIST,
    DC_PK_DICT,
    DC_PK_ARRAY, /* numpy ndarray or numpy scalar */
    DC_PK_DTYPE,
    DC_PK_GLOBAL,
};

struct dc_pk_value;

struct dc_pk_array {
    enum dc_dtype stored;    /* dtype in the file */
    enum dc_dtype held;      /* dtype of data: stored, or F32 after conversion */
    size_t itemsize;         /* stored bytes per element (unicode: 4 * chars) */
    int ndim;
    size_t shape[DC_PK_MAX_DIMS];
    size_t count;            /* product of shape */
    bool fortran;            /* Fortran order in the file; data is always C order */
    bool scalar;             /* numpy scalar (0-d) */
    bool built;              /* state set: an array from _reconstruct waits for BUILD */
    void *data;              /* count elements of held dtype, C order; NULL when count == 0 or object */
    size_t nbytes;
    struct dc_pk_value *objects; /* object dtype: the list of elements */
};

struct dc_pk_value {
    enum dc_pk_kind kind;
    struct dc_pk_value *next_owned; /* document ownership list */
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            char *data; /* STR: NUL-terminated UTF-8; BYTES: raw (or float32 after streaming conversion) */
            size_t len;
            size_t raw_len;   /* payload length in the file */
            int conv_from;    /* -1, or the enum dc_dtype a payload was converted to float32 from */
            bool consumed;    /* its buffer moved into an array */
        } s;
        struct {
            struct dc_pk_value **items;
            size_t len, cap;
        } seq; /* TUPLE, LIST */
        struct {
            struct dc_pk_value **keys, **vals;
            size_t len, cap;
        } dict;
        struct dc_pk_array arr;
        struct {
            enum dc_dtype type;
            size_t itemsize;
            char order; /* '<' '|' '=' */
            bool built;
        } dtype;
        int global; /* enum in pickle.c */
    } u;
};

struct dc_pk_doc {
    struct dc_pk_value *root;
    struct dc_pk_value *owned;
};

struct dc_pk_options {
    /* Float arrays (float16/float64) with at least this many dimensions are held as float32.
     * 0 keeps every array as stored (what `inspect` wants). */
    int f32_min_ndim;
};

/* Reads one pickle from `in` up to STOP. On failure returns the status, frees everything and
 * fills err with "<where>: offset N: <opcode>: <what was expected>". */
dc_status dc_pickle_load(struct dc_stream *in, const struct dc_pk_options *opt, struct dc_pk_doc **out,
                         struct dc_error *err);
void dc_pk_doc_free(struct dc_pk_doc *doc);

/* Tree construction (used by the reader and by npy.c). Return NULL when out of memory. */
struct dc_pk_doc *dc_pk_doc_new(void);
struct dc_pk_value *dc_pk_new(struct dc_pk_doc *doc, enum dc_pk_kind kind);
bool dc_pk_seq_push(struct dc_pk_value *seq, struct dc_pk_value *v);
/* Sets d[key] = v (replaces an existing key, as Python does). key must be a STR. */
bool dc_pk_dict_set(struct dc_pk_value *d, struct dc_pk_value *key, struct dc_pk_value *v);

/* Lookups. */
struct dc_pk_value *dc_pk_dict_get(const struct dc_pk_value *d, const char *key);
const char *dc_pk_kind_name(enum dc_pk_kind k); /* Python-ish names: "dict", "list", "ndarray", ... */

/* Element size in bytes of a held dtype (unicode and object: 0, use the array's itemsize). */
size_t dc_dtype_size(enum dc_dtype t);
/* Converts n elements of `from` at src to float32 at dst. dst may alias src only when `from` is
 * float32 or float64 (each element is read before a narrower one is written over it). */
void dc_convert_to_f32(float *dst, const void *src, enum dc_dtype from, size_t n);
/* Fortran order -> C order, in a new buffer; returns NULL when out of memory. */
void *dc_fortran_to_c(const void *src, const size_t *shape, int ndim, size_t itemsize);
/* Checked product of dims; returns false on overflow. */
bool dc_shape_count(const size_t *shape, int ndim, size_t itemsize, size_t *count, size_t *nbytes);

#endif
