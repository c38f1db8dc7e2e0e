/* The whitelisted globals of the pickle reader (shared/spec/mmsa-format.md §2.2, §2.4): what
 * REDUCE may call and what BUILD may set. Each call checks its argument types, dtype, shape and
 * payload length; nothing else can be called. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "data/pk_reader.h"

static dc_status want_args(struct pk_reader *r, int g, const struct dc_pk_value *args, size_t n) {
    if (args->u.seq.len != n)
        return pk_fail(r, DC_ERR_FORMAT, "%s takes %zu arguments, got %zu", pk_global_name(g), n, args->u.seq.len);
    return DC_OK;
}

static dc_status want_kind(struct pk_reader *r, const char *what, const struct dc_pk_value *v, enum dc_pk_kind k) {
    if (v->kind != k && !(k == DC_PK_INT && v->kind == DC_PK_BOOL))
        return pk_fail(r, DC_ERR_FORMAT, "%s is a %s (expected %s)", what, dc_pk_kind_name(v->kind),
                       dc_pk_kind_name(k));
    return DC_OK;
}

static int64_t int_of(const struct dc_pk_value *v) { return v->kind == DC_PK_BOOL ? v->u.b : v->u.i; }

/* numpy's dtype reduce strings: f2 f4 f8 i1 i2 i4 i8 u1 b1 O8 U<n>. */
static dc_status parse_dtype(struct pk_reader *r, const struct dc_pk_value *s, struct dc_pk_value *out) {
    static const struct {
        const char *s;
        enum dc_dtype t;
    } names[] = {{"f2", DC_DTYPE_F16}, {"f4", DC_DTYPE_F32}, {"f8", DC_DTYPE_F64}, {"i1", DC_DTYPE_I8},
                 {"i2", DC_DTYPE_I16}, {"i4", DC_DTYPE_I32}, {"i8", DC_DTYPE_I64}, {"u1", DC_DTYPE_U8},
                 {"b1", DC_DTYPE_BOOL}, {"O8", DC_DTYPE_OBJECT}};
    const char *p = s->u.s.data;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
        if (strcmp(p, names[i].s) == 0 && s->u.s.len == 2) {
            out->u.dtype.type = names[i].t;
            out->u.dtype.itemsize = names[i].t == DC_DTYPE_OBJECT ? 8 : dc_dtype_size(names[i].t);
            out->u.dtype.order = '=';
            return DC_OK;
        }
    if (p[0] == 'U' && s->u.s.len >= 2 && s->u.s.len <= 10) {
        uint64_t n = 0;
        size_t i = 1;
        for (; p[i] >= '0' && p[i] <= '9'; ++i) n = n * 10 + (uint64_t)(p[i] - '0');
        if (i == s->u.s.len && n <= (1u << 28)) {
            out->u.dtype.type = DC_DTYPE_UNICODE;
            out->u.dtype.itemsize = (size_t)n * 4;
            out->u.dtype.order = '=';
            return DC_OK;
        }
    }
    return pk_fail(r, DC_ERR_UNSUPPORTED, "unsupported dtype '%.40s' (expected f2 f4 f8 i1 i2 i4 i8 u1 b1 O8 U<n>)", p);
}

static dc_status read_shape(struct pk_reader *r, const struct dc_pk_value *t, struct dc_pk_array *a) {
    dc_status st = want_kind(r, "the shape", t, DC_PK_TUPLE);
    if (st != DC_OK) return st;
    if (t->u.seq.len > DC_PK_MAX_DIMS)
        return pk_fail(r, DC_ERR_FORMAT, "shape has %zu dimensions (at most %d)", t->u.seq.len, DC_PK_MAX_DIMS);
    a->ndim = (int)t->u.seq.len;
    for (size_t i = 0; i < t->u.seq.len; ++i) {
        const struct dc_pk_value *d = t->u.seq.items[i];
        if ((st = want_kind(r, "a shape dimension", d, DC_PK_INT)) != DC_OK) return st;
        if (int_of(d) < 0) return pk_fail(r, DC_ERR_FORMAT, "shape dimension %zu is negative (%" PRId64 ")", i, int_of(d));
        a->shape[i] = (size_t)int_of(d);
    }
    return DC_OK;
}

static dc_status set_dtype(struct pk_reader *r, struct dc_pk_array *a, const struct dc_pk_value *dt) {
    dc_status st = want_kind(r, "the dtype", dt, DC_PK_DTYPE);
    if (st != DC_OK) return st;
    a->stored = a->held = dt->u.dtype.type;
    a->itemsize = dt->u.dtype.itemsize;
    if (!dc_shape_count(a->shape, a->ndim, a->itemsize, &a->count, &a->nbytes))
        return pk_fail(r, DC_ERR_FORMAT, "shape product overflows 64 bits");
    return DC_OK;
}

/* Moves a big payload into the array (copies small ones: CPython shares 1-byte bytes objects,
 * which a pickle may then reference twice through the memo). */
static dc_status take_payload(struct pk_reader *r, struct dc_pk_value *p, void **buf) {
    if (p->u.s.consumed) return pk_fail(r, DC_ERR_FORMAT, "payload bytes reused after an array took them");
    if (p->u.s.len >= PK_SMALL_COPY) {
        char *empty = calloc(1, 1); /* later readers of the value see b'' */
        if (!empty) return pk_fail(r, DC_ERR_NOMEM, "out of memory");
        *buf = p->u.s.data;
        p->u.s.data = empty;
        p->u.s.len = 0;
        p->u.s.consumed = true;
        return DC_OK;
    }
    *buf = malloc(p->u.s.len ? p->u.s.len : 1);
    if (!*buf) return pk_fail(r, DC_ERR_NOMEM, "out of memory");
    if (p->u.s.len) memcpy(*buf, p->u.s.data, p->u.s.len);
    return DC_OK;
}

/* Fills a->data from a payload: float32 conversion by policy, then Fortran -> C order. */
static dc_status set_payload(struct pk_reader *r, struct dc_pk_array *a, struct dc_pk_value *p) {
    const char *dn = dc_dtype_name(a->stored);
    if (p->kind != DC_PK_BYTES)
        return pk_fail(r, DC_ERR_FORMAT, "payload of a %s array is a %s (expected bytes)", dn, dc_pk_kind_name(p->kind));
    bool pre = p->u.s.conv_from >= 0;
    if (pre && p->u.s.conv_from != (int)a->stored)
        return pk_fail(r, DC_ERR_FORMAT, "payload converted for another dtype");
    if (p->u.s.raw_len != a->nbytes)
        return pk_fail(r, DC_ERR_FORMAT,
                       "payload has %zu bytes, shape and dtype %s need %zu (%zu elements of %zu bytes)",
                       p->u.s.raw_len, dn, a->nbytes, a->count, a->itemsize);
    void *buf;
    dc_status st = take_payload(r, p, &buf);
    if (st != DC_OK) return st;
    size_t hsz = a->itemsize;
    if (pre) {
        a->held = DC_DTYPE_F32;
        hsz = 4;
    } else if (r->opt.f32_min_ndim > 0 && a->ndim >= r->opt.f32_min_ndim &&
               (a->stored == DC_DTYPE_F64 || a->stored == DC_DTYPE_F16)) {
        if (a->stored == DC_DTYPE_F64) {
            dc_convert_to_f32(buf, buf, DC_DTYPE_F64, a->count); /* in place: narrows */
            void *q = realloc(buf, a->count ? a->count * 4 : 1);
            if (q) buf = q;
        } else {
            float *f = malloc(a->count ? a->count * 4 : 1);
            if (!f) {
                free(buf);
                return pk_fail(r, DC_ERR_NOMEM, "out of memory converting %zu float16 values", a->count);
            }
            dc_convert_to_f32(f, buf, DC_DTYPE_F16, a->count);
            free(buf);
            buf = f;
        }
        a->held = DC_DTYPE_F32;
        hsz = 4;
    }
    if (a->fortran && a->ndim > 1 && a->count > 1) {
        void *c = dc_fortran_to_c(buf, a->shape, a->ndim, hsz);
        free(buf);
        if (!c) return pk_fail(r, DC_ERR_NOMEM, "out of memory reordering a Fortran array");
        buf = c;
    }
    a->data = buf;
    a->nbytes = a->count * hsz;
    a->built = true;
    return DC_OK;
}

static dc_status reduce_reconstruct(struct pk_reader *r, struct dc_pk_value *args, struct dc_pk_value **out) {
    dc_status st = want_args(r, PK_G_RECONSTRUCT, args, 3);
    if (st != DC_OK) return st;
    struct dc_pk_value **a = args->u.seq.items;
    if (a[0]->kind != DC_PK_GLOBAL || a[0]->u.global != PK_G_NDARRAY)
        return pk_fail(r, DC_ERR_FORMAT, "_reconstruct's first argument must be numpy.ndarray");
    if ((st = want_kind(r, "_reconstruct's shape", a[1], DC_PK_TUPLE)) != DC_OK ||
        (st = want_kind(r, "_reconstruct's dtype code", a[2], DC_PK_BYTES)) != DC_OK)
        return st;
    struct dc_pk_value *v = dc_pk_new(r->doc, DC_PK_ARRAY);
    if (!v) return pk_fail(r, DC_ERR_NOMEM, "out of memory");
    *out = v; /* an empty array waiting for BUILD */
    return DC_OK;
}

static dc_status reduce_frombuffer(struct pk_reader *r, struct dc_pk_value *args, struct dc_pk_value **out) {
    dc_status st = want_args(r, PK_G_FROMBUFFER, args, 4);
    if (st != DC_OK) return st;
    struct dc_pk_value **a = args->u.seq.items;
    if ((st = want_kind(r, "_frombuffer's order", a[3], DC_PK_STR)) != DC_OK) return st;
    if (strcmp(a[3]->u.s.data, "C") != 0 && strcmp(a[3]->u.s.data, "F") != 0)
        return pk_fail(r, DC_ERR_FORMAT, "_frombuffer's order is '%.8s' (expected 'C' or 'F')", a[3]->u.s.data);
    struct dc_pk_value *v = dc_pk_new(r->doc, DC_PK_ARRAY);
    if (!v) return pk_fail(r, DC_ERR_NOMEM, "out of memory");
    struct dc_pk_array *arr = &v->u.arr;
    arr->fortran = a[3]->u.s.data[0] == 'F';
    if ((st = read_shape(r, a[2], arr)) != DC_OK || (st = set_dtype(r, arr, a[1])) != DC_OK) return st;
    if (arr->stored == DC_DTYPE_OBJECT) return pk_fail(r, DC_ERR_FORMAT, "_frombuffer of an object dtype");
    if ((st = set_payload(r, arr, a[0])) != DC_OK) return st;
    *out = v;
    return DC_OK;
}

static dc_status reduce_scalar(struct pk_reader *r, struct dc_pk_value *args, struct dc_pk_value **out) {
    dc_status st = want_args(r, PK_G_SCALAR, args, 2);
    if (st != DC_OK) return st;
    struct dc_pk_value **a = args->u.seq.items;
    struct dc_pk_value *v = dc_pk_new(r->doc, DC_PK_ARRAY);
    if (!v) return pk_fail(r, DC_ERR_NOMEM, "out of memory");
    v->u.arr.scalar = true;
    if ((st = set_dtype(r, &v->u.arr, a[0])) != DC_OK) return st;
    if (v->u.arr.stored == DC_DTYPE_OBJECT) return pk_fail(r, DC_ERR_UNSUPPORTED, "numpy scalar of object dtype");
    if ((st = set_payload(r, &v->u.arr, a[1])) != DC_OK) return st;
    *out = v;
    return DC_OK;
}

static dc_status reduce_dtype(struct pk_reader *r, struct dc_pk_value *args, struct dc_pk_value **out) {
    dc_status st = want_args(r, PK_G_DTYPE, args, 3);
    if (st != DC_OK) return st;
    struct dc_pk_value **a = args->u.seq.items;
    if ((st = want_kind(r, "dtype's first argument", a[0], DC_PK_STR)) != DC_OK ||
        (st = want_kind(r, "dtype's align flag", a[1], DC_PK_INT)) != DC_OK ||
        (st = want_kind(r, "dtype's copy flag", a[2], DC_PK_INT)) != DC_OK)
        return st;
    struct dc_pk_value *v = dc_pk_new(r->doc, DC_PK_DTYPE);
    if (!v) return pk_fail(r, DC_ERR_NOMEM, "out of memory");
    if ((st = parse_dtype(r, a[0], v)) != DC_OK) return st;
    *out = v;
    return DC_OK;
}

/* Protocol 2 bytes: _codecs.encode(str, 'latin1'); code points <= 0xFF back to bytes, in place. */
static dc_status reduce_encode(struct pk_reader *r, struct dc_pk_value *args, struct dc_pk_value **out) {
    dc_status st = want_args(r, PK_G_ENCODE, args, 2);
    if (st != DC_OK) return st;
    struct dc_pk_value **a = args->u.seq.items;
    if ((st = want_kind(r, "encode's text", a[0], DC_PK_STR)) != DC_OK ||
        (st = want_kind(r, "encode's encoding", a[1], DC_PK_STR)) != DC_OK)
        return st;
    if (strcmp(a[1]->u.s.data, "latin1") != 0 && strcmp(a[1]->u.s.data, "latin-1") != 0)
        return pk_fail(r, DC_ERR_FORMAT, "_codecs.encode with encoding '%.32s' (expected 'latin1')", a[1]->u.s.data);
    struct dc_pk_value *s = a[0];
    if (s->u.s.consumed) return pk_fail(r, DC_ERR_FORMAT, "string reused after it was converted to bytes");
    struct dc_pk_value *v = dc_pk_new(r->doc, DC_PK_BYTES);
    if (!v) return pk_fail(r, DC_ERR_NOMEM, "out of memory");
    unsigned char *src = (unsigned char *)s->u.s.data, *dst;
    bool move = s->u.s.len >= PK_SMALL_COPY;
    char *empty = move ? calloc(1, 1) : NULL; /* what later readers of the moved string see */
    dst = move ? src : malloc(s->u.s.len + 1);
    if (!dst || (move && !empty)) {
        free(empty);
        if (!move) free(dst);
        return pk_fail(r, DC_ERR_NOMEM, "out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < s->u.s.len; ++n) { /* UTF-8 was validated on load */
        unsigned c = src[i];
        if (c < 0x80) dst[n] = (unsigned char)c, i += 1;
        else if ((c & 0xe0) == 0xc0 && c <= 0xc3) dst[n] = (unsigned char)(((c & 0x1f) << 6) | (src[i + 1] & 0x3f)), i += 2;
        else {
            if (!move) free(dst);
            free(empty);
            return pk_fail(r, DC_ERR_FORMAT, "latin1 text holds a code point above 0xFF at byte %zu", i);
        }
    }
    if (move) {
        s->u.s.data = empty;
        s->u.s.len = 0;
        s->u.s.consumed = true;
    }
    v->u.s.data = (char *)dst;
    v->u.s.len = v->u.s.raw_len = n;
    *out = v;
    return DC_OK;
}

dc_status pk_reduce(struct pk_reader *r, struct dc_pk_value *fn, struct dc_pk_value *args, struct dc_pk_value **out) {
    if (fn->kind != DC_PK_GLOBAL)
        return pk_fail(r, DC_ERR_FORMAT, "calls a %s (only whitelisted numpy globals may be called)",
                       dc_pk_kind_name(fn->kind));
    if (args->kind != DC_PK_TUPLE)
        return pk_fail(r, DC_ERR_FORMAT, "arguments of %s are a %s (expected a tuple)", pk_global_name(fn->u.global),
                       dc_pk_kind_name(args->kind));
    switch (fn->u.global) {
        case PK_G_RECONSTRUCT: return reduce_reconstruct(r, args, out);
        case PK_G_FROMBUFFER: return reduce_frombuffer(r, args, out);
        case PK_G_SCALAR: return reduce_scalar(r, args, out);
        case PK_G_DTYPE: return reduce_dtype(r, args, out);
        case PK_G_ENCODE: return reduce_encode(r, args, out);
    }
    return pk_fail(r, DC_ERR_FORMAT, "%s cannot be called (it may only be an argument of _reconstruct)",
                   pk_global_name(fn->u.global));
}

/* dtype state: (3|4, order, None, None, None, elsize, alignment, flags[, metadata]). */
static dc_status build_dtype(struct pk_reader *r, struct dc_pk_value *dt, const struct dc_pk_value *state) {
    dc_status st = want_kind(r, "dtype state", state, DC_PK_TUPLE);
    if (st != DC_OK) return st;
    size_t n = state->u.seq.len;
    struct dc_pk_value **s = state->u.seq.items;
    if (n != 8 && n != 9) return pk_fail(r, DC_ERR_FORMAT, "dtype state has %zu fields (expected 8 or 9)", n);
    if ((st = want_kind(r, "dtype state version", s[0], DC_PK_INT)) != DC_OK ||
        (st = want_kind(r, "dtype byte order", s[1], DC_PK_STR)) != DC_OK ||
        (st = want_kind(r, "dtype element size", s[5], DC_PK_INT)) != DC_OK)
        return st;
    if (int_of(s[0]) != 3 && int_of(s[0]) != 4)
        return pk_fail(r, DC_ERR_FORMAT, "dtype state version %" PRId64 " (expected 3 or 4)", int_of(s[0]));
    for (int i = 2; i <= 4; ++i)
        if (s[i]->kind != DC_PK_NONE)
            return pk_fail(r, DC_ERR_UNSUPPORTED, "structured or sub-array dtypes are not supported");
    char order = s[1]->u.s.len == 1 ? s[1]->u.s.data[0] : '?';
    if (order == '>' && dt->u.dtype.itemsize > 1 && dt->u.dtype.type != DC_DTYPE_OBJECT)
        return pk_fail(r, DC_ERR_UNSUPPORTED, "big-endian dtype '>%s' is not supported (expected '<' or '|' byte order)",
                       dc_dtype_name(dt->u.dtype.type));
    if (order != '<' && order != '|' && order != '=' && order != '>')
        return pk_fail(r, DC_ERR_FORMAT, "dtype byte order '%.4s' (expected '<', '|' or '=')", s[1]->u.s.data);
    int64_t elsize = int_of(s[5]);
    if (dt->u.dtype.type == DC_DTYPE_UNICODE && elsize != -1 && (uint64_t)elsize != dt->u.dtype.itemsize)
        return pk_fail(r, DC_ERR_FORMAT, "unicode dtype element size %" PRId64 " (expected %zu)", elsize,
                       dt->u.dtype.itemsize);
    dt->u.dtype.order = order;
    dt->u.dtype.built = true;
    return DC_OK;
}

/* ndarray state: (1, shape, dtype, is_fortran, bytes | list). */
static dc_status build_array(struct pk_reader *r, struct dc_pk_value *v, const struct dc_pk_value *state) {
    dc_status st = want_kind(r, "ndarray state", state, DC_PK_TUPLE);
    if (st != DC_OK) return st;
    if (state->u.seq.len != 5)
        return pk_fail(r, DC_ERR_FORMAT, "ndarray state has %zu fields (expected 5)", state->u.seq.len);
    struct dc_pk_value **s = state->u.seq.items;
    if ((st = want_kind(r, "ndarray state version", s[0], DC_PK_INT)) != DC_OK ||
        (st = want_kind(r, "is_fortran", s[3], DC_PK_INT)) != DC_OK)
        return st;
    if (int_of(s[0]) != 1)
        return pk_fail(r, DC_ERR_FORMAT, "ndarray state version %" PRId64 " (expected 1)", int_of(s[0]));
    struct dc_pk_array *a = &v->u.arr;
    a->fortran = int_of(s[3]) != 0;
    if ((st = read_shape(r, s[1], a)) != DC_OK || (st = set_dtype(r, a, s[2])) != DC_OK) return st;
    if (a->stored != DC_DTYPE_OBJECT) return set_payload(r, a, s[4]);
    if (s[4]->kind != DC_PK_LIST)
        return pk_fail(r, DC_ERR_FORMAT, "payload of an object array is a %s (expected a list)",
                       dc_pk_kind_name(s[4]->kind));
    if (s[4]->u.seq.len != a->count)
        return pk_fail(r, DC_ERR_FORMAT, "object array of %zu elements has %zu items", a->count, s[4]->u.seq.len);
    if (a->fortran && a->ndim > 1 && a->count > 1) { /* reorder the pointers */
        struct dc_pk_value **c = dc_fortran_to_c(s[4]->u.seq.items, a->shape, a->ndim, sizeof *c);
        if (!c) return pk_fail(r, DC_ERR_NOMEM, "out of memory");
        struct dc_pk_value *list = dc_pk_new(r->doc, DC_PK_LIST);
        if (!list) {
            free(c);
            return pk_fail(r, DC_ERR_NOMEM, "out of memory");
        }
        list->u.seq.items = c;
        list->u.seq.len = list->u.seq.cap = a->count;
        a->objects = list;
    } else {
        a->objects = s[4];
    }
    a->built = true;
    return DC_OK;
}

dc_status pk_build(struct pk_reader *r, struct dc_pk_value *obj, struct dc_pk_value *state) {
    if (obj->kind == DC_PK_DTYPE && !obj->u.dtype.built) return build_dtype(r, obj, state);
    if (obj->kind == DC_PK_ARRAY && !obj->u.arr.built) return build_array(r, obj, state);
    return pk_fail(r, DC_ERR_FORMAT, "BUILD on a %s%s (only arrays from _reconstruct and dtypes take state, once)",
                   obj->kind == DC_PK_ARRAY || obj->kind == DC_PK_DTYPE ? "finished " : "", dc_pk_kind_name(obj->kind));
}

bool pk_payload_wants_f32(struct pk_reader *r, size_t len, enum dc_dtype *conv, size_t *count) {
    if (r->opt.f32_min_ndim <= 0 || !r->nmarks) return false;
    size_t base = r->marks[r->nmarks - 1];
    if (base == 0 || r->sp - base != 4) return false;
    struct dc_pk_value **s = r->stack + base;
    const struct dc_pk_value *arr = r->stack[base - 1];
    if (arr->kind != DC_PK_ARRAY || arr->u.arr.built) return false;
    if (s[0]->kind != DC_PK_INT || s[0]->u.i != 1 || s[1]->kind != DC_PK_TUPLE || s[2]->kind != DC_PK_DTYPE)
        return false;
    enum dc_dtype t = s[2]->u.dtype.type;
    if (t != DC_DTYPE_F64 && t != DC_DTYPE_F16) return false;
    const struct dc_pk_value *shape = s[1];
    if (shape->u.seq.len > DC_PK_MAX_DIMS || (int)shape->u.seq.len < r->opt.f32_min_ndim) return false;
    size_t dims[DC_PK_MAX_DIMS], n, nbytes;
    for (size_t i = 0; i < shape->u.seq.len; ++i) {
        const struct dc_pk_value *d = shape->u.seq.items[i];
        if (d->kind != DC_PK_INT || d->u.i < 0) return false;
        dims[i] = (size_t)d->u.i;
    }
    if (!dc_shape_count(dims, (int)shape->u.seq.len, dc_dtype_size(t), &n, &nbytes) || nbytes != len) return false;
    *conv = t;
    *count = n;
    return true;
}
