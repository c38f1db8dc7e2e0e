/* The opcode loop of the safe pickle reader: exactly the 39 opcodes of
 * shared/spec/mmsa-format.md §2.4; every length, memo index and stack operation is checked. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/pk_reader.h"

#define MEMO_MAX_GAP 65536u /* BINPUT may leave at most this many holes (Python never leaves any) */
#define LINE_MAX_LEN 256u   /* GLOBAL module / name */

static const char *op_name(int op) {
    switch (op) {
        case 0x28: return "MARK";
        case 0x2e: return "STOP";
        case 0x30: return "POP";
        case 0x31: return "POP_MARK";
        case 0x32: return "DUP";
        case 0x42: return "BINBYTES";
        case 0x43: return "SHORT_BINBYTES";
        case 0x46: return "FLOAT";
        case 0x47: return "BINFLOAT";
        case 0x49: return "INT";
        case 0x4a: return "BININT";
        case 0x4b: return "BININT1";
        case 0x4c: return "LONG";
        case 0x4d: return "BININT2";
        case 0x4e: return "NONE";
        case 0x50: return "PERSID";
        case 0x51: return "BINPERSID";
        case 0x52: return "REDUCE";
        case 0x53: return "STRING";
        case 0x54: return "BINSTRING";
        case 0x55: return "SHORT_BINSTRING";
        case 0x56: return "UNICODE";
        case 0x58: return "BINUNICODE";
        case 0x5d: return "EMPTY_LIST";
        case 0x61: return "APPEND";
        case 0x62: return "BUILD";
        case 0x63: return "GLOBAL";
        case 0x64: return "DICT";
        case 0x65: return "APPENDS";
        case 0x67: return "GET";
        case 0x68: return "BINGET";
        case 0x69: return "INST";
        case 0x6a: return "LONG_BINGET";
        case 0x6c: return "LIST";
        case 0x6f: return "OBJ";
        case 0x70: return "PUT";
        case 0x71: return "BINPUT";
        case 0x72: return "LONG_BINPUT";
        case 0x73: return "SETITEM";
        case 0x74: return "TUPLE";
        case 0x29: return "EMPTY_TUPLE";
        case 0x75: return "SETITEMS";
        case 0x7d: return "EMPTY_DICT";
        case 0x80: return "PROTO";
        case 0x81: return "NEWOBJ";
        case 0x82: return "EXT1";
        case 0x83: return "EXT2";
        case 0x84: return "EXT4";
        case 0x85: return "TUPLE1";
        case 0x86: return "TUPLE2";
        case 0x87: return "TUPLE3";
        case 0x88: return "NEWTRUE";
        case 0x89: return "NEWFALSE";
        case 0x8a: return "LONG1";
        case 0x8b: return "LONG4";
        case 0x8c: return "SHORT_BINUNICODE";
        case 0x8d: return "BINUNICODE8";
        case 0x8e: return "BINBYTES8";
        case 0x8f: return "EMPTY_SET";
        case 0x90: return "ADDITEMS";
        case 0x91: return "FROZENSET";
        case 0x92: return "NEWOBJ_EX";
        case 0x93: return "STACK_GLOBAL";
        case 0x94: return "MEMOIZE";
        case 0x95: return "FRAME";
        case 0x96: return "BYTEARRAY8";
        case 0x97: return "NEXT_BUFFER";
        case 0x98: return "READONLY_BUFFER";
    }
    return "unknown opcode";
}

dc_status pk_fail(struct pk_reader *r, dc_status code, const char *fmt, ...) {
    char detail[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (r->op < 0)
        return dc_set_error(r->err, code, "%s: offset %" PRIu64 ": %s", r->in->where, r->op_off, detail);
    return dc_set_error(r->err, code, "%s: offset %" PRIu64 ": %s (0x%02x): %s", r->in->where, r->op_off,
                        op_name(r->op), r->op, detail);
}

/* ---- stream ---- */

static dc_status fill(struct pk_reader *r) {
    size_t got = 0;
    dc_status st = r->in->read(r->in->ctx, r->buf, sizeof r->buf, &got, r->err);
    if (st != DC_OK) return st;
    r->bpos = 0;
    r->blen = got;
    return DC_OK;
}

static dc_status truncated(struct pk_reader *r, size_t want) {
    return pk_fail(r, DC_ERR_FORMAT, "truncated: needs %zu more bytes at offset %" PRIu64 ", the stream ends there",
                   want, r->off);
}

/* Reads exactly n bytes into dst; big reads bypass the buffer and land in dst directly. */
static dc_status read_exact(struct pk_reader *r, void *dst, size_t n) {
    unsigned char *d = dst;
    while (n) {
        if (r->bpos < r->blen) {
            size_t m = r->blen - r->bpos < n ? r->blen - r->bpos : n;
            memcpy(d, r->buf + r->bpos, m);
            r->bpos += m;
            r->off += m;
            d += m;
            n -= m;
        } else if (n >= sizeof r->buf) {
            size_t got = 0;
            dc_status st = r->in->read(r->in->ctx, d, n, &got, r->err);
            if (st != DC_OK) return st;
            if (got == 0) return truncated(r, n);
            r->off += got;
            d += got;
            n -= got;
        } else {
            dc_status st = fill(r);
            if (st != DC_OK) return st;
            if (r->blen == 0) return truncated(r, n);
        }
    }
    return DC_OK;
}

static dc_status read_u8(struct pk_reader *r, uint8_t *v) { return read_exact(r, v, 1); }

static dc_status read_le(struct pk_reader *r, size_t n, uint64_t *v) {
    unsigned char b[8];
    dc_status st = read_exact(r, b, n);
    if (st != DC_OK) return st;
    uint64_t x = 0;
    for (size_t i = n; i-- > 0;) x = (x << 8) | b[i];
    *v = x;
    return DC_OK;
}

/* A length announced by the stream must fit what is left of it (when its size is known). */
static dc_status check_len(struct pk_reader *r, uint64_t len) {
    if (len > SIZE_MAX - 1) return pk_fail(r, DC_ERR_FORMAT, "length %" PRIu64 " does not fit in memory", len);
    if (r->in->size >= 0 && len > (uint64_t)r->in->size - r->off)
        return pk_fail(r, DC_ERR_FORMAT,
                       "truncated: length %" PRIu64 " at offset %" PRIu64 " runs past the end of the stream (%" PRIi64
                       " bytes)",
                       len, r->off, r->in->size);
    return DC_OK;
}

/* Reads len bytes into a new buffer (plus a NUL). When the stream size is unknown, the buffer
 * grows as bytes arrive, so a forged length cannot make us allocate before the data exists. */
static dc_status read_new(struct pk_reader *r, size_t len, char **out) {
    size_t cap = r->in->size >= 0 || len < PK_CHUNK ? len : PK_CHUNK;
    char *p = malloc(cap + 1);
    if (!p) return pk_fail(r, DC_ERR_NOMEM, "cannot allocate %zu bytes", cap + 1);
    size_t got = 0;
    while (got < len) {
        if (got == cap) {
            cap = cap > len / 2 ? len : cap * 2;
            char *q = realloc(p, cap + 1);
            if (!q) {
                free(p);
                return pk_fail(r, DC_ERR_NOMEM, "cannot allocate %zu bytes", cap + 1);
            }
            p = q;
                }
        dc_status st = read_exact(r, p + got, cap - got);
        if (st != DC_OK) {
            free(p);
            return st;
        }
        got = cap;
    }
    p[len] = '\0';
    *out = p;
    return DC_OK;
}

/* Streams n elements of `from` into a new float32 buffer, PK_CHUNK bytes at a time. */
static dc_status read_convert_f32(struct pk_reader *r, size_t n, enum dc_dtype from, float **out) {
    size_t isz = dc_dtype_size(from), per = PK_CHUNK / isz;
    size_t cap = r->in->size >= 0 || n < per ? n : per;
    float *dst = malloc((cap ? cap : 1) * sizeof *dst);
    if (!dst) return pk_fail(r, DC_ERR_NOMEM, "cannot allocate %zu floats", cap);
    if (!r->scratch && !(r->scratch = malloc(PK_CHUNK))) {
        free(dst);
        return pk_fail(r, DC_ERR_NOMEM, "cannot allocate the conversion buffer");
    }
    for (size_t done = 0; done < n;) {
        size_t k = n - done < per ? n - done : per;
        if (done + k > cap) {
            cap = cap > n / 2 ? n : cap * 2;
            float *q = realloc(dst, cap * sizeof *q);
            if (!q) {
                free(dst);
                return pk_fail(r, DC_ERR_NOMEM, "cannot allocate %zu floats", cap);
            }
            dst = q;
                }
        dc_status st = read_exact(r, r->scratch, k * isz);
        if (st != DC_OK) {
            free(dst);
            return st;
        }
        dc_convert_to_f32(dst + done, r->scratch, from, k);
        done += k;
    }
    *out = dst;
    return DC_OK;
}

/* ---- stack, marks, memo ---- */

static size_t avail(const struct pk_reader *r) { return r->sp - (r->nmarks ? r->marks[r->nmarks - 1] : 0); }

static dc_status push(struct pk_reader *r, struct dc_pk_value *v) {
    if (!v) return pk_fail(r, DC_ERR_NOMEM, "out of memory");
    if (r->sp == r->scap) {
        size_t cap = r->scap ? r->scap * 2 : 64;
        struct dc_pk_value **s = realloc(r->stack, cap * sizeof *s);
        if (!s) return pk_fail(r, DC_ERR_NOMEM, "out of memory for the stack");
        r->stack = s;
        r->scap = cap;
    }
    r->stack[r->sp++] = v;
    return DC_OK;
}

static dc_status need(struct pk_reader *r, size_t n) {
    if (avail(r) < n)
        return pk_fail(r, DC_ERR_FORMAT, "stack underflow: needs %zu values above the last MARK, has %zu", n,
                       avail(r));
    return DC_OK;
}

static dc_status pop_mark(struct pk_reader *r, size_t *base) {
    if (!r->nmarks) return pk_fail(r, DC_ERR_FORMAT, "no MARK on the stack (unbalanced MARK)");
    *base = r->marks[--r->nmarks];
    return DC_OK;
}

static struct dc_pk_value *new_val(struct pk_reader *r, enum dc_pk_kind k) { return dc_pk_new(r->doc, k); }

static dc_status memo_put(struct pk_reader *r, uint64_t idx) {
    if (r->sp == 0 || avail(r) == 0) return need(r, 1);
    if (idx > r->memo_len + (uint64_t)MEMO_MAX_GAP)
        return pk_fail(r, DC_ERR_FORMAT, "memo index %" PRIu64 " out of range (the memo holds %zu entries)", idx,
                       r->memo_len);
    if (idx >= r->memo_cap) {
        size_t cap = r->memo_cap ? r->memo_cap : 64;
        while (cap <= idx) cap *= 2;
        struct dc_pk_value **m = realloc(r->memo, cap * sizeof *m);
        if (!m) return pk_fail(r, DC_ERR_NOMEM, "out of memory for the memo");
        memset(m + r->memo_cap, 0, (cap - r->memo_cap) * sizeof *m);
        r->memo = m;
        r->memo_cap = cap;
    }
    if (!r->memo[idx]) r->memo_count++;
    r->memo[idx] = r->stack[r->sp - 1];
    if (idx >= r->memo_len) r->memo_len = (size_t)idx + 1;
    return DC_OK;
}

static dc_status memo_get(struct pk_reader *r, uint64_t idx) {
    if (idx >= r->memo_len || !r->memo[idx])
        return pk_fail(r, DC_ERR_FORMAT, "memo index %" PRIu64 " out of range (the memo holds %zu entries)", idx,
                       r->memo_len);
    return push(r, r->memo[idx]);
}

/* ---- values ---- */

/* UTF-8 as Python's pickle writes it ('surrogatepass': surrogate code points allowed). */
static bool utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xe0) == 0xc0) k = 1, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0) k = 2, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0) k = 3, cp = c & 0x07;
        else return false;
        if (n - i <= k) return false;
        for (size_t j = 1; j <= k; ++j) {
            if ((s[i + j] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += k + 1;
    }
    return true;
}

static dc_status load_str(struct pk_reader *r, size_t lenbytes) {
    uint64_t len;
    dc_status st = read_le(r, lenbytes, &len);
    if (st == DC_OK) st = check_len(r, len);
    if (st != DC_OK) return st;
    struct dc_pk_value *v = new_val(r, DC_PK_STR);
    if (!v) return push(r, NULL);
    if ((st = read_new(r, (size_t)len, &v->u.s.data)) != DC_OK) return st;
    v->u.s.len = v->u.s.raw_len = (size_t)len;
    if (!utf8_valid((const unsigned char *)v->u.s.data, v->u.s.len))
        return pk_fail(r, DC_ERR_FORMAT, "string of %zu bytes is not valid UTF-8", v->u.s.len);
    return push(r, v);
}

static dc_status load_bytes(struct pk_reader *r, size_t lenbytes) {
    uint64_t len;
    dc_status st = read_le(r, lenbytes, &len); /* BINBYTES: u32, read unsigned */
    if (st == DC_OK) st = check_len(r, len);
    if (st != DC_OK) return st;
    struct dc_pk_value *v = new_val(r, DC_PK_BYTES);
    if (!v) return push(r, NULL);
    v->u.s.raw_len = (size_t)len;
    enum dc_dtype conv;
    size_t count;
    if (pk_payload_wants_f32(r, (size_t)len, &conv, &count)) {
        float *f = NULL;
        if ((st = read_convert_f32(r, count, conv, &f)) != DC_OK) return st;
        v->u.s.data = (char *)f;
        v->u.s.len = count * sizeof(float);
        v->u.s.conv_from = (int)conv;
    } else {
        if ((st = read_new(r, (size_t)len, &v->u.s.data)) != DC_OK) return st;
        v->u.s.len = (size_t)len;
    }
    return push(r, v);
}

static dc_status load_long1(struct pk_reader *r) {
    uint8_t n;
    dc_status st = read_u8(r, &n);
    if (st != DC_OK) return st;
    unsigned char b[255];
    if ((st = read_exact(r, b, n)) != DC_OK) return st;
    /* two's complement, little-endian; must fit in int64 */
    uint64_t x = 0;
    bool neg = n && (b[n - 1] & 0x80);
    for (size_t i = 8; i < n; ++i)
        if (b[i] != (neg ? 0xff : 0x00))
            return pk_fail(r, DC_ERR_UNSUPPORTED, "integer of %u bytes does not fit in 64 bits", n);
    if (n > 8 && ((b[7] & 0x80) != 0) != neg)
        return pk_fail(r, DC_ERR_UNSUPPORTED, "integer of %u bytes does not fit in 64 bits", n);
    size_t m = n < 8 ? n : 8;
    for (size_t i = m; i-- > 0;) x = (x << 8) | b[i];
    if (neg && m < 8) x |= ~(uint64_t)0 << (8 * m);
    struct dc_pk_value *v = new_val(r, DC_PK_INT);
    if (v) memcpy(&v->u.i, &x, sizeof x);
    return push(r, v);
}

static dc_status read_line(struct pk_reader *r, char *out) {
    for (size_t i = 0; i < LINE_MAX_LEN; ++i) {
        uint8_t c;
        dc_status st = read_u8(r, &c);
        if (st != DC_OK) return st;
        if (c == '\n') {
            out[i] = '\0';
            return DC_OK;
        }
        out[i] = (char)((c >= 0x20 && c < 0x7f) ? c : '?');
    }
    return pk_fail(r, DC_ERR_FORMAT, "GLOBAL name longer than %u bytes", LINE_MAX_LEN);
}

static const struct {
    const char *module, *name;
    int id;
} WHITELIST[] = {
    {"numpy.core.multiarray", "_reconstruct", PK_G_RECONSTRUCT},
    {"numpy._core.multiarray", "_reconstruct", PK_G_RECONSTRUCT},
    {"numpy.core._multiarray_umath", "_reconstruct", PK_G_RECONSTRUCT},
    {"numpy", "ndarray", PK_G_NDARRAY},
    {"numpy", "dtype", PK_G_DTYPE},
    {"numpy.core.numeric", "_frombuffer", PK_G_FROMBUFFER},
    {"numpy._core.numeric", "_frombuffer", PK_G_FROMBUFFER},
    {"numpy.core.multiarray", "scalar", PK_G_SCALAR},
    {"numpy._core.multiarray", "scalar", PK_G_SCALAR},
    {"_codecs", "encode", PK_G_ENCODE},
};

const char *pk_global_name(int g) {
    switch (g) {
        case PK_G_RECONSTRUCT: return "numpy.core.multiarray._reconstruct";
        case PK_G_NDARRAY: return "numpy.ndarray";
        case PK_G_DTYPE: return "numpy.dtype";
        case PK_G_FROMBUFFER: return "numpy.core.numeric._frombuffer";
        case PK_G_SCALAR: return "numpy.core.multiarray.scalar";
        case PK_G_ENCODE: return "_codecs.encode";
    }
    return "?";
}

static dc_status push_global(struct pk_reader *r, const char *module, const char *name) {
    for (size_t i = 0; i < sizeof WHITELIST / sizeof WHITELIST[0]; ++i)
        if (strcmp(module, WHITELIST[i].module) == 0 && strcmp(name, WHITELIST[i].name) == 0) {
            struct dc_pk_value *v = new_val(r, DC_PK_GLOBAL);
            if (v) v->u.global = WHITELIST[i].id;
            return push(r, v);
        }
    return pk_fail(r, DC_ERR_FORMAT,
                   "global '%.256s.%.256s' is not allowed (expected one of numpy's array/dtype/scalar "
                   "reconstructors or _codecs.encode)",
                   module, name);
}

static dc_status load_stack_global(struct pk_reader *r) {
    dc_status st = need(r, 2);
    if (st != DC_OK) return st;
    struct dc_pk_value *name = r->stack[r->sp - 1], *module = r->stack[r->sp - 2];
    if (module->kind != DC_PK_STR || name->kind != DC_PK_STR)
        return pk_fail(r, DC_ERR_FORMAT, "module and name must be str, got %s and %s", dc_pk_kind_name(module->kind),
                       dc_pk_kind_name(name->kind));
    r->sp -= 2;
    char m[LINE_MAX_LEN + 1], n[LINE_MAX_LEN + 1];
    snprintf(m, sizeof m, "%s", module->u.s.data);
    snprintf(n, sizeof n, "%s", name->u.s.data);
    if (strlen(module->u.s.data) != module->u.s.len || strlen(name->u.s.data) != name->u.s.len)
        return pk_fail(r, DC_ERR_FORMAT, "module or name contains a NUL byte");
    return push_global(r, m, n);
}

/* ---- containers ---- */

static dc_status make_tuple(struct pk_reader *r, size_t n) {
    dc_status st = need(r, n);
    if (st != DC_OK) return st;
    struct dc_pk_value *t = new_val(r, DC_PK_TUPLE);
    if (!t) return push(r, NULL);
    for (size_t i = r->sp - n; i < r->sp; ++i)
        if (!dc_pk_seq_push(t, r->stack[i])) return push(r, NULL);
    r->sp -= n;
    return push(r, t);
}

static dc_status append_items(struct pk_reader *r, size_t base) {
    /* base: first item; the list sits just below it */
    if (base == 0 || base - 1 < (r->nmarks ? r->marks[r->nmarks - 1] : 0))
        return pk_fail(r, DC_ERR_FORMAT, "stack underflow: no list below the items");
    struct dc_pk_value *list = r->stack[base - 1];
    if (list->kind != DC_PK_LIST)
        return pk_fail(r, DC_ERR_FORMAT, "appends to a %s (expected a list)", dc_pk_kind_name(list->kind));
    for (size_t i = base; i < r->sp; ++i)
        if (!dc_pk_seq_push(list, r->stack[i])) return push(r, NULL);
    r->sp = base;
    return DC_OK;
}

static dc_status set_items(struct pk_reader *r, size_t base) {
    if (base == 0 || base - 1 < (r->nmarks ? r->marks[r->nmarks - 1] : 0))
        return pk_fail(r, DC_ERR_FORMAT, "stack underflow: no dict below the items");
    struct dc_pk_value *d = r->stack[base - 1];
    if (d->kind != DC_PK_DICT)
        return pk_fail(r, DC_ERR_FORMAT, "sets items on a %s (expected a dict)", dc_pk_kind_name(d->kind));
    if ((r->sp - base) % 2)
        return pk_fail(r, DC_ERR_FORMAT, "odd number of values (%zu) for key/value pairs", r->sp - base);
    for (size_t i = base; i < r->sp; i += 2) {
        if (r->stack[i]->kind != DC_PK_STR)
            return pk_fail(r, DC_ERR_FORMAT, "dict key is a %s (expected str)", dc_pk_kind_name(r->stack[i]->kind));
        if (!dc_pk_dict_set(d, r->stack[i], r->stack[i + 1])) return push(r, NULL);
    }
    r->sp = base;
    return DC_OK;
}

/* ---- the loop ---- */

static dc_status step(struct pk_reader *r, bool *stop) {
    uint8_t op;
    uint64_t x;
    dc_status st;
    r->op = -1;
    r->op_off = r->off;
    if ((st = read_u8(r, &op)) != DC_OK) {
        if (r->err && r->err->code == DC_ERR_FORMAT)
            return pk_fail(r, DC_ERR_FORMAT, "truncated: the stream ends before STOP");
        return st;
    }
    r->op = op;
    if (r->proto == 0 && op != 0x80)
        return pk_fail(r, DC_ERR_FORMAT, "not a pickle of protocol 2-5 (expected PROTO 0x80 as the first byte)");
    switch (op) {
        case 0x80: { /* PROTO */
            uint8_t p;
            if ((st = read_u8(r, &p)) != DC_OK) return st;
            if (p < 2 || p > 5) return pk_fail(r, DC_ERR_UNSUPPORTED, "protocol %u (expected 2 to 5)", p);
            r->proto = p;
            return DC_OK;
        }
        case 0x95: return read_le(r, 8, &x); /* FRAME: a hint only */
        case 0x2e:                           /* STOP */
            if (r->nmarks || r->sp != 1)
                return pk_fail(r, DC_ERR_FORMAT, "unbalanced stack at STOP: %zu values, %zu open MARKs (expected 1, 0)",
                               r->sp, r->nmarks);
            *stop = true;
            return DC_OK;
        case 0x28: /* MARK */
            if (r->nmarks == r->mcap) {
                size_t cap = r->mcap ? r->mcap * 2 : 16;
                size_t *m = realloc(r->marks, cap * sizeof *m);
                if (!m) return push(r, NULL);
                r->marks = m;
                r->mcap = cap;
            }
            r->marks[r->nmarks++] = r->sp;
            return DC_OK;
        case 0x7d: return push(r, new_val(r, DC_PK_DICT));
        case 0x5d: return push(r, new_val(r, DC_PK_LIST));
        case 0x29: return push(r, new_val(r, DC_PK_TUPLE));
        case 0x74: { /* TUPLE */
            size_t base = 0;
            if ((st = pop_mark(r, &base)) != DC_OK) return st;
            return make_tuple(r, r->sp - base);
        }
        case 0x85: return make_tuple(r, 1);
        case 0x86: return make_tuple(r, 2);
        case 0x87: return make_tuple(r, 3);
        case 0x61: /* APPEND */
            if ((st = need(r, 2)) != DC_OK) return st;
            return append_items(r, r->sp - 1);
        case 0x65: { /* APPENDS */
            size_t base = 0;
            if ((st = pop_mark(r, &base)) != DC_OK) return st;
            return append_items(r, base);
        }
        case 0x73: /* SETITEM */
            if ((st = need(r, 3)) != DC_OK) return st;
            return set_items(r, r->sp - 2);
        case 0x75: { /* SETITEMS */
            size_t base = 0;
            if ((st = pop_mark(r, &base)) != DC_OK) return st;
            return set_items(r, base);
        }
        case 0x4e: return push(r, new_val(r, DC_PK_NONE));
        case 0x88:
        case 0x89: {
            struct dc_pk_value *v = new_val(r, DC_PK_BOOL);
            if (v) v->u.b = op == 0x88;
            return push(r, v);
        }
        case 0x4a: /* BININT */
        case 0x4b: /* BININT1 */
        case 0x4d: { /* BININT2 */
            if ((st = read_le(r, op == 0x4a ? 4 : op == 0x4b ? 1 : 2, &x)) != DC_OK) return st;
            struct dc_pk_value *v = new_val(r, DC_PK_INT);
            if (v) v->u.i = op == 0x4a ? (int64_t)(int32_t)(uint32_t)x : (int64_t)x;
            return push(r, v);
        }
        case 0x8a: return load_long1(r);
        case 0x47: { /* BINFLOAT: big-endian */
            unsigned char b[8];
            if ((st = read_exact(r, b, 8)) != DC_OK) return st;
            uint64_t bits = 0;
            for (int i = 0; i < 8; ++i) bits = (bits << 8) | b[i];
            struct dc_pk_value *v = new_val(r, DC_PK_FLOAT);
            if (v) memcpy(&v->u.f, &bits, 8);
            return push(r, v);
        }
        case 0x8c: return load_str(r, 1);
        case 0x58: return load_str(r, 4);
        case 0x8d: return load_str(r, 8);
        case 0x43: return load_bytes(r, 1);
        case 0x42: return load_bytes(r, 4);
        case 0x8e:
        case 0x96: return load_bytes(r, 8);
        case 0x94: /* MEMOIZE */
            return memo_put(r, r->memo_count);
        case 0x71:
        case 0x72:
            if ((st = read_le(r, op == 0x71 ? 1 : 4, &x)) != DC_OK) return st;
            return memo_put(r, x);
        case 0x68:
        case 0x6a:
            if ((st = read_le(r, op == 0x68 ? 1 : 4, &x)) != DC_OK) return st;
            return memo_get(r, x);
        case 0x63: { /* GLOBAL */
            char m[LINE_MAX_LEN + 1], n[LINE_MAX_LEN + 1];
            if ((st = read_line(r, m)) != DC_OK || (st = read_line(r, n)) != DC_OK) return st;
            return push_global(r, m, n);
        }
        case 0x93: return load_stack_global(r);
        case 0x52: { /* REDUCE */
            if ((st = need(r, 2)) != DC_OK) return st;
            struct dc_pk_value *res = NULL;
            st = pk_reduce(r, r->stack[r->sp - 2], r->stack[r->sp - 1], &res);
            if (st != DC_OK) return st;
            r->sp -= 2;
            return push(r, res);
        }
        case 0x62: /* BUILD */
            if ((st = need(r, 2)) != DC_OK) return st;
            if ((st = pk_build(r, r->stack[r->sp - 2], r->stack[r->sp - 1])) != DC_OK) return st;
            r->sp -= 1;
            return DC_OK;
    }
    return pk_fail(r, DC_ERR_FORMAT, "opcode not allowed (the reader accepts only the protocol 2-5 opcodes that "
                                     "numpy arrays, dicts, lists, str, int, float, bool and None need)");
}

dc_status dc_pickle_load(struct dc_stream *in, const struct dc_pk_options *opt, struct dc_pk_doc **out,
                         struct dc_error *err) {
    *out = NULL;
    struct pk_reader *r = calloc(1, sizeof *r);
    if (!r) return dc_set_error(err, DC_ERR_NOMEM, "%s: out of memory", in->where);
    r->in = in;
    r->err = err;
    r->op = -1;
    if (opt) r->opt = *opt;
    r->doc = dc_pk_doc_new();
    dc_status st = r->doc ? DC_OK : dc_set_error(err, DC_ERR_NOMEM, "%s: out of memory", in->where);
    bool stop = false;
    while (st == DC_OK && !stop) st = step(r, &stop);
    if (st == DC_OK) {
        r->doc->root = r->stack[0];
        *out = r->doc;
    } else {
        dc_pk_doc_free(r->doc);
    }
    free(r->stack);
    free(r->marks);
    free(r->memo);
    free(r->scratch);
    free(r);
    return st;
}
