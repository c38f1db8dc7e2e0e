/* Pickle protocol 4 writer: see pickle_write.h. The save order below follows CPython's
 * C pickler (save, save_reduce, save_global, save_tuple, batch_dict/batch_list) as it
 * runs on numpy 1.x's ndarray.__reduce__ and dtype.__reduce__, so that a dataset written
 * here and the same objects dumped by Python are the same bytes. */
#include "data/pickle_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FRAME_TARGET 65536u /* CPython's _FRAME_SIZE_TARGET */
#define FRAME_MIN 4u        /* shorter frames get no FRAME header */
#define BATCH 1000u         /* SETITEMS/APPENDS batch size */
#define NO_MEMO UINT32_MAX
#define MAX_DEPTH 16

enum op {
    OP_MARK = 0x28,
    OP_STOP = 0x2e,
    OP_BININT = 0x4a,
    OP_BININT1 = 0x4b,
    OP_BININT2 = 0x4d,
    OP_NONE = 0x4e,
    OP_REDUCE = 0x52,
    OP_BINUNICODE = 0x58,
    OP_APPEND = 0x61,
    OP_BUILD = 0x62,
    OP_APPENDS = 0x65,
    OP_BINGET = 0x68,
    OP_LONG_BINGET = 0x6a,
    OP_SETITEM = 0x73,
    OP_TUPLE = 0x74,
    OP_SETITEMS = 0x75,
    OP_EMPTY_DICT = 0x7d,
    OP_EMPTY_LIST = 0x5d,
    OP_PROTO = 0x80,
    OP_TUPLE1 = 0x85,
    OP_TUPLE3 = 0x87,
    OP_NEWTRUE = 0x88,
    OP_NEWFALSE = 0x89,
    OP_LONG1 = 0x8a,
    OP_SHORT_BINUNICODE = 0x8c,
    OP_BINUNICODE8 = 0x8d,
    OP_BINBYTES8 = 0x8e,
    OP_STACK_GLOBAL = 0x93,
    OP_MEMOIZE = 0x94,
    OP_FRAME = 0x95,
    OP_BINBYTES = 0x42,
    OP_SHORT_BINBYTES = 0x43,
};

struct ctr {
    int is_dict;
    size_t n;     /* items announced */
    size_t saved; /* elements saved (a dict item is two) */
};

struct interned {
    char *s;
    uint32_t memo;
};

struct dc_pkl_writer {
    FILE *f;
    char *path, *tmp;
    struct dc_error *err;
    dc_status st;
    uint8_t *buf; /* the open frame's content */
    size_t len, cap;
    uint64_t written; /* bytes handed to the file */
    uint32_t memo_next;
    uint32_t m_reconstruct, m_ndarray, m_dtype_fn, m_bytes_b, m_bytes_empty, m_dtype[3];
    struct interned *strs;
    size_t n_strs, cap_strs;
    struct ctr stack[MAX_DEPTH];
    int depth, top_done;
    /* the array whose payload is being written */
    int in_array, bypass;
    uint64_t payload_total, payload_done;
};

static dc_status fail(struct dc_pkl_writer *w, dc_status code, const char *what) {
    if (w->st != DC_OK) return w->st;
    w->st = code;
    if (code == DC_ERR_IO)
        dc_set_error(w->err, code, "%s: %s: %s", w->path, what, strerror(errno ? errno : EIO));
    else
        dc_set_error(w->err, code, "%s: pickle writer: %s", w->path, what);
    return code;
}

static dc_status file_write(struct dc_pkl_writer *w, const void *p, size_t n) {
    if (n == 0) return DC_OK;
    errno = 0;
    if (fwrite(p, 1, n, w->f) != n) return fail(w, DC_ERR_IO, "write failed");
    w->written += n;
    return DC_OK;
}

static dc_status commit_frame(struct dc_pkl_writer *w) {
    if (w->st != DC_OK || w->len == 0) return w->st;
    if (w->len >= FRAME_MIN) {
        uint8_t h[9] = {OP_FRAME};
        uint64_t n = w->len;
        for (int i = 0; i < 8; ++i) h[1 + i] = (uint8_t)(n >> (8 * i));
        if (file_write(w, h, sizeof h) != DC_OK) return w->st;
    }
    dc_status st = file_write(w, w->buf, w->len);
    w->len = 0;
    return st;
}

static dc_status put(struct dc_pkl_writer *w, const void *p, size_t n) {
    if (w->st != DC_OK) return w->st;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 2 * FRAME_TARGET;
        while (cap < w->len + n) cap *= 2;
        uint8_t *b = realloc(w->buf, cap);
        if (!b) return fail(w, DC_ERR_NOMEM, "out of memory for the frame buffer");
        w->buf = b, w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return DC_OK;
}

static dc_status put1(struct dc_pkl_writer *w, uint8_t op) { return put(w, &op, 1); }

static void le(uint8_t *out, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out[i] = (uint8_t)(v >> (8 * i));
}

/* Opcode header plus data; data of FRAME_TARGET bytes or more bypasses the frame, as
 * CPython's _Pickler_write_bytes does. */
static dc_status put_data(struct dc_pkl_writer *w, const uint8_t *hdr, size_t hlen, const void *data, uint64_t dlen,
                          int *bypassed) {
    int big = dlen >= FRAME_TARGET;
    if (bypassed) *bypassed = big;
    if (!big) {
        put(w, hdr, hlen);
        return data ? put(w, data, (size_t)dlen) : w->st;
    }
    commit_frame(w);
    if (w->st != DC_OK) return w->st;
    file_write(w, hdr, hlen);
    return data ? file_write(w, data, (size_t)dlen) : w->st;
}

/* The start of every save(): CPython commits a frame that reached the target size. */
static dc_status boundary(struct dc_pkl_writer *w) {
    if (w->st == DC_OK && w->len >= FRAME_TARGET) commit_frame(w);
    return w->st;
}

static uint32_t memoize(struct dc_pkl_writer *w) {
    put1(w, OP_MEMOIZE);
    return w->memo_next++;
}

static dc_status get(struct dc_pkl_writer *w, uint32_t idx) {
    uint8_t b[5];
    if (idx < 256) {
        b[0] = OP_BINGET, b[1] = (uint8_t)idx;
        return put(w, b, 2);
    }
    b[0] = OP_LONG_BINGET;
    le(b + 1, idx, 4);
    return put(w, b, 5);
}

/* --- containers ------------------------------------------------------------------ */

/* Before an element of the enclosing container: MARK at the start of each batch. */
static dc_status elem_begin(struct dc_pkl_writer *w) {
    if (w->st != DC_OK) return w->st;
    if (w->in_array) return fail(w, DC_ERR_ARG, "value written inside an array payload");
    if (w->depth == 0) {
        if (w->top_done) return fail(w, DC_ERR_ARG, "a second top-level object");
        return DC_OK;
    }
    struct ctr *c = &w->stack[w->depth - 1];
    size_t per = c->is_dict ? 2 : 1;
    if (c->saved >= c->n * per) return fail(w, DC_ERR_ARG, "more elements than announced");
    if (c->n != 1 && c->saved % (BATCH * per) == 0) put1(w, OP_MARK);
    return w->st;
}

/* After an element: SETITEMS/APPENDS at the end of a batch, SETITEM/APPEND for a
 * one-item container (CPython's batch_dict_exact/batch_list_exact). */
static dc_status elem_end(struct dc_pkl_writer *w) {
    if (w->st != DC_OK) return w->st;
    if (w->depth == 0) {
        w->top_done = 1;
        return DC_OK;
    }
    struct ctr *c = &w->stack[w->depth - 1];
    size_t per = c->is_dict ? 2 : 1, total = c->n * per;
    c->saved++;
    if (c->is_dict && c->saved % 2 == 1) return DC_OK; /* a key */
    if (c->n == 1) {
        if (c->saved == total) put1(w, c->is_dict ? OP_SETITEM : OP_APPEND);
    } else if (c->saved % (BATCH * per) == 0 || c->saved == total) {
        put1(w, c->is_dict ? OP_SETITEMS : OP_APPENDS);
    }
    return w->st;
}

static dc_status ctr_begin(struct dc_pkl_writer *w, int is_dict, size_t n) {
    if (elem_begin(w) != DC_OK || boundary(w) != DC_OK) return w->st;
    if (w->depth == MAX_DEPTH) return fail(w, DC_ERR_ARG, "containers nested too deeply");
    put1(w, is_dict ? OP_EMPTY_DICT : OP_EMPTY_LIST);
    memoize(w);
    w->stack[w->depth++] = (struct ctr){is_dict, n, 0};
    return w->st;
}

static dc_status ctr_end(struct dc_pkl_writer *w, int is_dict) {
    if (w->st != DC_OK) return w->st;
    if (w->depth == 0 || w->stack[w->depth - 1].is_dict != is_dict)
        return fail(w, DC_ERR_ARG, "unbalanced container end");
    struct ctr *c = &w->stack[w->depth - 1];
    if (c->saved != c->n * (is_dict ? 2 : 1)) return fail(w, DC_ERR_ARG, "fewer elements than announced");
    w->depth--;
    return elem_end(w);
}

dc_status dc_pkl_dict_begin(struct dc_pkl_writer *w, size_t n) { return ctr_begin(w, 1, n); }
dc_status dc_pkl_dict_end(struct dc_pkl_writer *w) { return ctr_end(w, 1); }
dc_status dc_pkl_list_begin(struct dc_pkl_writer *w, size_t n) { return ctr_begin(w, 0, n); }
dc_status dc_pkl_list_end(struct dc_pkl_writer *w) { return ctr_end(w, 0); }

/* --- scalars and strings ---------------------------------------------------------- */

static dc_status save_int(struct dc_pkl_writer *w, int64_t v) {
    uint8_t b[10];
    if (boundary(w) != DC_OK) return w->st;
    if (v >= 0 && v <= 0xff) {
        b[0] = OP_BININT1, b[1] = (uint8_t)v;
        return put(w, b, 2);
    }
    if (v >= 0 && v <= 0xffff) {
        b[0] = OP_BININT2;
        le(b + 1, (uint64_t)v, 2);
        return put(w, b, 3);
    }
    if (v >= INT32_MIN && v <= INT32_MAX) {
        b[0] = OP_BININT;
        le(b + 1, (uint64_t)v, 4);
        return put(w, b, 5);
    }
    /* LONG1: the shortest two's-complement little-endian form */
    uint8_t n = 8;
    le(b + 2, (uint64_t)v, 8);
    while (n > 1 && ((b[1 + n] == 0x00 && !(b[n] & 0x80)) || (b[1 + n] == 0xff && (b[n] & 0x80)))) --n;
    b[0] = OP_LONG1, b[1] = n;
    return put(w, b, 2u + n);
}

static dc_status save_bool(struct dc_pkl_writer *w, int v) {
    if (boundary(w) != DC_OK) return w->st;
    return put1(w, v ? OP_NEWTRUE : OP_NEWFALSE);
}

static dc_status save_none(struct dc_pkl_writer *w) {
    if (boundary(w) != DC_OK) return w->st;
    return put1(w, OP_NONE);
}

/* A str object; no memo lookup (a new object each time). */
static dc_status save_str_new(struct dc_pkl_writer *w, const char *s, size_t n) {
    uint8_t h[9];
    size_t hl;
    if (n <= 0xff)
        h[0] = OP_SHORT_BINUNICODE, h[1] = (uint8_t)n, hl = 2;
    else if (n <= 0xffffffffu)
        h[0] = OP_BINUNICODE, le(h + 1, n, 4), hl = 5;
    else
        h[0] = OP_BINUNICODE8, le(h + 1, n, 8), hl = 9;
    put_data(w, h, hl, s, n, NULL);
    memoize(w);
    return w->st;
}

/* A str that Python shares between its uses (literals, module names, the one-character
 * strings CPython caches): written once, then fetched with BINGET. */
static dc_status save_str_shared(struct dc_pkl_writer *w, const char *s) {
    if (boundary(w) != DC_OK) return w->st;
    for (size_t i = 0; i < w->n_strs; ++i)
        if (strcmp(w->strs[i].s, s) == 0) return get(w, w->strs[i].memo);
    if (w->n_strs == w->cap_strs) {
        size_t cap = w->cap_strs ? 2 * w->cap_strs : 32;
        struct interned *p = realloc(w->strs, cap * sizeof *p);
        if (!p) return fail(w, DC_ERR_NOMEM, "out of memory");
        w->strs = p, w->cap_strs = cap;
    }
    char *copy = strdup(s);
    if (!copy) return fail(w, DC_ERR_NOMEM, "out of memory");
    uint32_t idx = w->memo_next;
    save_str_new(w, s, strlen(s));
    w->strs[w->n_strs++] = (struct interned){copy, idx};
    return w->st;
}

/* CPython caches the empty string and one-character Latin-1 strings. */
static int is_cached_str(const char *s) {
    uint32_t cp[2];
    long n = dc_utf8_decode(s, NULL);
    if (n == 0) return 1;
    if (n != 1) return 0;
    dc_utf8_decode(s, cp);
    return cp[0] < 256;
}

dc_status dc_pkl_str(struct dc_pkl_writer *w, const char *utf8) {
    if (elem_begin(w) != DC_OK) return w->st;
    if (dc_utf8_decode(utf8, NULL) < 0) return fail(w, DC_ERR_ARG, "string is not valid UTF-8");
    if (is_cached_str(utf8))
        save_str_shared(w, utf8);
    else if (boundary(w) == DC_OK)
        save_str_new(w, utf8, strlen(utf8));
    return elem_end(w);
}

dc_status dc_pkl_key(struct dc_pkl_writer *w, const char *key) {
    if (elem_begin(w) != DC_OK) return w->st;
    if (w->depth == 0 || !w->stack[w->depth - 1].is_dict || w->stack[w->depth - 1].saved % 2 != 0)
        return fail(w, DC_ERR_ARG, "key outside a dict's key position");
    if (dc_utf8_decode(key, NULL) < 0) return fail(w, DC_ERR_ARG, "key is not valid UTF-8");
    save_str_shared(w, key);
    return elem_end(w);
}

dc_status dc_pkl_int(struct dc_pkl_writer *w, int64_t v) {
    if (elem_begin(w) != DC_OK) return w->st;
    save_int(w, v);
    return elem_end(w);
}

/* --- numpy ------------------------------------------------------------------------ */

/* save_global under protocol 4: module and name strings, STACK_GLOBAL, memoized. */
static dc_status save_global(struct dc_pkl_writer *w, uint32_t *memo, const char *module, const char *name) {
    if (boundary(w) != DC_OK) return w->st;
    if (*memo != NO_MEMO) return get(w, *memo);
    save_str_shared(w, module);
    save_str_shared(w, name);
    put1(w, OP_STACK_GLOBAL);
    *memo = memoize(w);
    return w->st;
}

static dc_status save_small_bytes(struct dc_pkl_writer *w, uint32_t *memo, const char *b, uint8_t n) {
    if (boundary(w) != DC_OK) return w->st;
    if (*memo != NO_MEMO) return get(w, *memo);
    uint8_t h[2] = {OP_SHORT_BINBYTES, n};
    put(w, h, 2);
    put(w, b, n);
    *memo = memoize(w);
    return w->st;
}

static const char *const DTYPE_STR[] = {"f4", "f8", "i8"};
static const size_t ITEMSIZE[] = {4, 8, 8};

/* numpy.dtype(str, False, True) then BUILD (3, '<', None, None, None, elsize, align, flags).
 * Numeric dtypes are singletons in numpy, so a later array fetches the first one. */
static dc_status save_dtype(struct dc_pkl_writer *w, enum dc_pkl_dtype dt, size_t uchars) {
    char name[32];
    if (boundary(w) != DC_OK) return w->st;
    if (dt != DC_PKL_U && w->m_dtype[dt] != NO_MEMO) return get(w, w->m_dtype[dt]);
    save_global(w, &w->m_dtype_fn, "numpy", "dtype");
    boundary(w); /* the argument tuple */
    if (dt == DC_PKL_U)
        snprintf(name, sizeof name, "U%zu", uchars);
    else
        snprintf(name, sizeof name, "%s", DTYPE_STR[dt]);
    if (boundary(w) == DC_OK) save_str_new(w, name, strlen(name));
    save_bool(w, 0);
    save_bool(w, 1);
    put1(w, OP_TUPLE3);
    memoize(w);
    put1(w, OP_REDUCE);
    uint32_t self = memoize(w);
    if (dt != DC_PKL_U) w->m_dtype[dt] = self;
    boundary(w); /* the state tuple */
    put1(w, OP_MARK);
    save_int(w, 3);
    save_str_shared(w, "<");
    save_none(w);
    save_none(w);
    save_none(w);
    if (dt == DC_PKL_U) {
        save_int(w, (int64_t)(4 * uchars));
        save_int(w, 4);
        save_int(w, 8);
    } else {
        save_int(w, -1);
        save_int(w, -1);
        save_int(w, 0);
    }
    put1(w, OP_TUPLE);
    memoize(w);
    return put1(w, OP_BUILD);
}

static dc_status save_shape(struct dc_pkl_writer *w, int ndim, const uint64_t *shape) {
    if (boundary(w) != DC_OK) return w->st;
    if (ndim == 0) return put1(w, 0x29); /* EMPTY_TUPLE, not memoized */
    if (ndim > 3) put1(w, OP_MARK);
    for (int i = 0; i < ndim; ++i) save_int(w, (int64_t)shape[i]);
    put1(w, ndim > 3 ? OP_TUPLE : (uint8_t)(OP_TUPLE1 + ndim - 1));
    memoize(w);
    return w->st;
}

dc_status dc_pkl_array_begin(struct dc_pkl_writer *w, enum dc_pkl_dtype dt, size_t uchars, int ndim,
                             const uint64_t *shape) {
    if (elem_begin(w) != DC_OK) return w->st;
    if (ndim < 0 || ndim > DC_PKL_MAX_NDIM || (unsigned)dt > DC_PKL_U || (dt == DC_PKL_U && uchars == 0))
        return fail(w, DC_ERR_ARG, "bad array dtype or rank");
    uint64_t total = dt == DC_PKL_U ? 4 : ITEMSIZE[dt];
    if (dt == DC_PKL_U) {
        if (uchars > UINT64_MAX / 4 / 4) return fail(w, DC_ERR_ARG, "array too large");
        total *= uchars;
    }
    for (int i = 0; i < ndim; ++i) {
        if (shape[i] > (uint64_t)INT64_MAX || (shape[i] && total > UINT64_MAX / shape[i]))
            return fail(w, DC_ERR_ARG, "array too large");
        total *= shape[i];
    }
    if (boundary(w) != DC_OK) return w->st;
    /* _reconstruct(ndarray, (0,), b'b') */
    save_global(w, &w->m_reconstruct, "numpy.core.multiarray", "_reconstruct");
    boundary(w);
    save_global(w, &w->m_ndarray, "numpy", "ndarray");
    boundary(w);
    save_int(w, 0);
    put1(w, OP_TUPLE1);
    memoize(w);
    save_small_bytes(w, &w->m_bytes_b, "b", 1);
    put1(w, OP_TUPLE3);
    memoize(w);
    put1(w, OP_REDUCE);
    memoize(w);
    /* BUILD (1, shape, dtype, False, payload) */
    boundary(w);
    put1(w, OP_MARK);
    save_int(w, 1);
    save_shape(w, ndim, shape);
    save_dtype(w, dt, uchars);
    save_bool(w, 0);
    if (boundary(w) != DC_OK) return w->st;
    w->in_array = 1;
    w->payload_total = total, w->payload_done = 0;
    if (total == 0) { /* b'' is a singleton in CPython */
        if (w->m_bytes_empty != NO_MEMO) {
            get(w, w->m_bytes_empty);
        } else {
            uint8_t h[2] = {OP_SHORT_BINBYTES, 0};
            put(w, h, 2);
            w->m_bytes_empty = memoize(w);
        }
        w->bypass = -1; /* memo already handled */
        return w->st;
    }
    uint8_t h[9];
    size_t hl;
    if (total < 256)
        h[0] = OP_SHORT_BINBYTES, h[1] = (uint8_t)total, hl = 2;
    else if (total <= 0xffffffffu)
        h[0] = OP_BINBYTES, le(h + 1, total, 4), hl = 5;
    else
        h[0] = OP_BINBYTES8, le(h + 1, total, 8), hl = 9;
    return put_data(w, h, hl, NULL, total, &w->bypass);
}

dc_status dc_pkl_array_write(struct dc_pkl_writer *w, const void *data, size_t n) {
    if (w->st != DC_OK) return w->st;
    if (!w->in_array) return fail(w, DC_ERR_ARG, "payload outside an array");
    if (n > w->payload_total - w->payload_done) return fail(w, DC_ERR_ARG, "payload longer than the array's shape");
    w->payload_done += n;
    return w->bypass == 1 ? file_write(w, data, n) : put(w, data, n);
}

dc_status dc_pkl_array_end(struct dc_pkl_writer *w) {
    if (w->st != DC_OK) return w->st;
    if (!w->in_array) return fail(w, DC_ERR_ARG, "array end without an array");
    if (w->payload_done != w->payload_total) return fail(w, DC_ERR_ARG, "payload shorter than the array's shape");
    w->in_array = 0;
    if (w->bypass != -1) memoize(w); /* the payload bytes */
    put1(w, OP_TUPLE);
    memoize(w);
    put1(w, OP_BUILD);
    return elem_end(w);
}

dc_status dc_pkl_array(struct dc_pkl_writer *w, enum dc_pkl_dtype dt, int ndim, const uint64_t *shape,
                       const void *data) {
    if (dt == DC_PKL_U) return fail(w, DC_ERR_ARG, "use dc_pkl_array_str for strings");
    if (dc_pkl_array_begin(w, dt, 0, ndim, shape) != DC_OK) return w->st;
    dc_pkl_array_write(w, data, (size_t)w->payload_total);
    return dc_pkl_array_end(w);
}

dc_status dc_pkl_array_str(struct dc_pkl_writer *w, const char *const *strs, size_t n) {
    size_t width = 1; /* numpy gives 'U1' when every string is empty */
    for (size_t i = 0; i < n; ++i) {
        long k = dc_utf8_decode(strs[i], NULL);
        if (k < 0) return fail(w, DC_ERR_ARG, "string is not valid UTF-8");
        if ((size_t)k > width) width = (size_t)k;
    }
    uint32_t *row = calloc(width, sizeof *row);
    if (!row) return fail(w, DC_ERR_NOMEM, "out of memory");
    uint64_t shape[1] = {n};
    if (dc_pkl_array_begin(w, DC_PKL_U, width, 1, shape) == DC_OK) {
        for (size_t i = 0; i < n && w->st == DC_OK; ++i) {
            memset(row, 0, width * sizeof *row);
            dc_utf8_decode(strs[i], row);
            uint8_t cu[4];
            for (size_t j = 0; j < width && w->st == DC_OK; ++j) {
                le(cu, row[j], 4); /* UCS-4 little-endian */
                dc_pkl_array_write(w, cu, 4);
            }
        }
        dc_pkl_array_end(w);
    }
    free(row);
    return w->st;
}

/* --- UTF-8 ------------------------------------------------------------------------- */

long dc_utf8_decode(const char *str, uint32_t *cps) {
    const unsigned char *s = (const unsigned char *)str;
    long n = 0;
    while (*s) {
        uint32_t c = *s, min;
        int extra;
        if (c < 0x80)
            extra = 0, min = 0;
        else if ((c & 0xe0) == 0xc0)
            extra = 1, c &= 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            extra = 2, c &= 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            extra = 3, c &= 0x07, min = 0x10000;
        else
            return -1;
        ++s;
        for (int i = 0; i < extra; ++i, ++s) {
            if ((*s & 0xc0) != 0x80) return -1;
            c = (c << 6) | (*s & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return -1;
        if (cps) cps[n] = c;
        ++n;
    }
    return n;
}

/* --- file ------------------------------------------------------------------------- */

static void writer_free(struct dc_pkl_writer *w) {
    for (size_t i = 0; i < w->n_strs; ++i) free(w->strs[i].s);
    free(w->strs);
    free(w->buf);
    free(w->path);
    free(w->tmp);
    free(w);
}

dc_status dc_pkl_writer_open(struct dc_pkl_writer **out, const char *path, struct dc_error *err) {
    *out = NULL;
    const uint16_t probe = 1;
    if (*(const uint8_t *)&probe != 1)
        return dc_set_error(err, DC_ERR_UNSUPPORTED, "%s: the pickle writer needs a little-endian host", path);
    struct dc_pkl_writer *w = calloc(1, sizeof *w);
    size_t n = strlen(path) + 32;
    if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(n))) {
        if (w) writer_free(w);
        return dc_set_error(err, DC_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(w->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    w->err = err;
    w->m_reconstruct = w->m_ndarray = w->m_dtype_fn = w->m_bytes_b = w->m_bytes_empty = NO_MEMO;
    for (int i = 0; i < 3; ++i) w->m_dtype[i] = NO_MEMO;
    errno = 0;
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        dc_status st = dc_set_error(err, DC_ERR_IO, "%s: cannot create %s: %s", path, w->tmp, strerror(errno));
        writer_free(w);
        return st;
    }
    uint8_t proto[2] = {OP_PROTO, 4}; /* before framing starts, as in CPython */
    if (file_write(w, proto, 2) != DC_OK) {
        dc_status st = w->st;
        dc_pkl_writer_abort(w);
        return st;
    }
    *out = w;
    return DC_OK;
}

void dc_pkl_writer_abort(struct dc_pkl_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    unlink(w->tmp);
    writer_free(w);
}

/* Makes the rename itself durable; a failure here loses nothing already written. */
static void sync_parent_dir(const char *path) {
    char *dir = strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    const char *d = ".";
    if (slash) {
        slash[slash == dir ? 1 : 0] = '\0';
        d = dir;
    }
    int fd = open(d, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

dc_status dc_pkl_writer_commit(struct dc_pkl_writer *w) {
    if (w->st == DC_OK && (w->depth != 0 || !w->top_done || w->in_array))
        fail(w, DC_ERR_ARG, "commit before the top-level object is complete");
    put1(w, OP_STOP);
    commit_frame(w);
    if (w->st == DC_OK) {
        errno = 0;
        if (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0) fail(w, DC_ERR_IO, "flush failed");
    }
    if (w->st == DC_OK) {
        FILE *f = w->f;
        w->f = NULL;
        errno = 0;
        if (fclose(f) != 0) fail(w, DC_ERR_IO, "close failed");
    }
    if (w->st == DC_OK) {
        errno = 0;
        if (rename(w->tmp, w->path) != 0) fail(w, DC_ERR_IO, "cannot rename the temporary file onto it");
    }
    dc_status st = w->st;
    if (st != DC_OK) {
        dc_pkl_writer_abort(w);
        return st;
    }
    sync_parent_dir(w->path);
    writer_free(w);
    return DC_OK;
}
