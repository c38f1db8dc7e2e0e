/* .npy reading: magic, version 1/2/3 header, the Python-literal header dict, the payload (streamed,
 * converted to float32 by the same policy as pickles), and the <split>/<key>.npy naming scheme. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/npy.h"

#define NPY_MAX_HEADER (1u << 20)
#define NPY_CHUNK (1u << 20)

struct npy_in {
    struct dc_stream *in;
    struct dc_error *err;
    uint64_t off;
};

static dc_status read_exact(struct npy_in *r, void *dst, size_t n) {
    unsigned char *d = dst;
    while (n) {
        size_t got = 0;
        dc_status st = r->in->read(r->in->ctx, d, n, &got, r->err);
        if (st != DC_OK) return st;
        if (got == 0)
            return dc_set_error(r->err, DC_ERR_FORMAT, "%s: offset %" PRIu64 ": truncated .npy: needs %zu more bytes",
                                r->in->where, r->off, n);
        d += got;
        n -= got;
        r->off += got;
    }
    return DC_OK;
}

/* The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } */
struct npy_header {
    char descr[64];
    int fortran; /* -1 unset */
    int ndim;    /* -1 unset */
    size_t shape[DC_PK_MAX_DIMS];
};

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') ++p;
    return p;
}

static const char *parse_quoted(const char *p, char *out, size_t cap) {
    char q = *p;
    if (q != '\'' && q != '"') return NULL;
    size_t n = 0;
    for (++p; *p && *p != q; ++p) {
        if (n + 1 >= cap) return NULL;
        out[n++] = *p;
    }
    if (*p != q) return NULL;
    out[n] = '\0';
    return p + 1;
}

static const char *parse_header(const char *p, struct npy_header *h) {
    h->fortran = h->ndim = -1;
    h->descr[0] = '\0';
    p = skip_ws(p);
    if (*p++ != '{') return NULL;
    for (;;) {
        p = skip_ws(p);
        if (*p == '}') return p + 1;
        char key[32];
        if (!(p = parse_quoted(p, key, sizeof key))) return NULL;
        p = skip_ws(p);
        if (*p++ != ':') return NULL;
        p = skip_ws(p);
        if (strcmp(key, "descr") == 0) {
            if (!(p = parse_quoted(p, h->descr, sizeof h->descr))) return NULL;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (strncmp(p, "True", 4) == 0) h->fortran = 1, p += 4;
            else if (strncmp(p, "False", 5) == 0) h->fortran = 0, p += 5;
            else return NULL;
        } else if (strcmp(key, "shape") == 0) {
            if (*p++ != '(') return NULL;
            h->ndim = 0;
            for (;;) {
                p = skip_ws(p);
                if (*p == ')') {
                    ++p;
                    break;
                }
                if (*p < '0' || *p > '9' || h->ndim == DC_PK_MAX_DIMS) return NULL;
                size_t v = 0;
                while (*p >= '0' && *p <= '9') {
                    if (v > (SIZE_MAX - 9) / 10) return NULL;
                    v = v * 10 + (size_t)(*p++ - '0');
                }
                h->shape[h->ndim++] = v;
                p = skip_ws(p);
                if (*p == ',') ++p;
                else if (*p != ')') return NULL;
            }
        } else {
            return NULL;
        }
        p = skip_ws(p);
        if (*p == ',') ++p;
        else if (*p != '}') return NULL;
    }
}

/* descr: byte order char + kind + size, e.g. '<f4' '|b1' '<U16'. */
static dc_status parse_descr(struct npy_in *r, const char *d, enum dc_dtype *t, size_t *itemsize) {
    static const struct {
        const char *s;
        enum dc_dtype t;
    } names[] = {{"f2", DC_DTYPE_F16}, {"f4", DC_DTYPE_F32}, {"f8", DC_DTYPE_F64}, {"i1", DC_DTYPE_I8},
                 {"i2", DC_DTYPE_I16}, {"i4", DC_DTYPE_I32}, {"i8", DC_DTYPE_I64}, {"u1", DC_DTYPE_U8},
                 {"b1", DC_DTYPE_BOOL}};
    char order = d[0];
    if (order == '>' && strcmp(d + 1, "i1") && strcmp(d + 1, "u1") && strcmp(d + 1, "b1"))
        return dc_set_error(r->err, DC_ERR_UNSUPPORTED,
                            "%s: big-endian dtype '%s' is not supported (expected '<' or '|' byte order)", r->in->where,
                            d);
    if (order != '<' && order != '|' && order != '=' && order != '>') order = 0;
    if (order) {
        for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
            if (strcmp(d + 1, names[i].s) == 0) {
                *t = names[i].t;
                *itemsize = dc_dtype_size(names[i].t);
                return DC_OK;
            }
        if (d[1] == 'U' && d[2] >= '0' && d[2] <= '9' && strlen(d) <= 11) {
            char *end;
            unsigned long n = strtoul(d + 2, &end, 10);
            if (!*end && n <= (1ul << 28)) {
                *t = DC_DTYPE_UNICODE;
                *itemsize = (size_t)n * 4;
                return DC_OK;
            }
        }
    }
    if (strcmp(d, "|O") == 0)
        return dc_set_error(r->err, DC_ERR_UNSUPPORTED,
                            "%s: object arrays in .npy files hold a pickle; save strings as '<U' arrays instead",
                            r->in->where);
    return dc_set_error(r->err, DC_ERR_UNSUPPORTED,
                        "%s: unsupported dtype '%s' (expected <f2 <f4 <f8 |i1 <i2 <i4 <i8 |u1 |b1 <U<n>)", r->in->where,
                        d);
}

static dc_status read_payload(struct npy_in *r, const struct dc_pk_options *opt, struct dc_pk_array *a) {
    bool conv = opt && opt->f32_min_ndim > 0 && a->ndim >= opt->f32_min_ndim &&
                (a->stored == DC_DTYPE_F64 || a->stored == DC_DTYPE_F16);
    if (r->in->size >= 0 && a->nbytes > (uint64_t)r->in->size - r->off)
        return dc_set_error(r->err, DC_ERR_FORMAT,
                            "%s: offset %" PRIu64 ": truncated .npy: shape and dtype need %zu bytes, %" PRIu64 " remain",
                            r->in->where, r->off, a->nbytes, (uint64_t)r->in->size - r->off);
    size_t hsz = conv ? 4 : a->itemsize, held_bytes = a->count * hsz;
    unsigned char *buf = malloc(held_bytes ? held_bytes : 1);
    if (!buf) return dc_set_error(r->err, DC_ERR_NOMEM, "%s: cannot allocate %zu bytes", r->in->where, held_bytes);
    dc_status st = DC_OK;
    if (!conv) {
        st = read_exact(r, buf, a->nbytes);
    } else {
        size_t isz = a->itemsize, per = NPY_CHUNK / isz;
        unsigned char *chunk = malloc(NPY_CHUNK);
        if (!chunk) st = dc_set_error(r->err, DC_ERR_NOMEM, "%s: out of memory", r->in->where);
        for (size_t done = 0; st == DC_OK && done < a->count;) {
            size_t k = a->count - done < per ? a->count - done : per;
            if ((st = read_exact(r, chunk, k * isz)) == DC_OK) dc_convert_to_f32((float *)buf + done, chunk, a->stored, k);
            done += k;
        }
        free(chunk);
        a->held = DC_DTYPE_F32;
    }
    if (st == DC_OK && a->fortran && a->ndim > 1 && a->count > 1) {
        void *c = dc_fortran_to_c(buf, a->shape, a->ndim, hsz);
        if (!c) st = dc_set_error(r->err, DC_ERR_NOMEM, "%s: out of memory", r->in->where);
        free(buf);
        buf = c;
    }
    if (st != DC_OK) {
        free(buf);
        return st;
    }
    a->data = buf;
    a->nbytes = held_bytes;
    a->built = true;
    return DC_OK;
}

dc_status dc_npy_read(struct dc_stream *in, const struct dc_pk_options *opt, struct dc_pk_doc *doc,
                      struct dc_pk_value **out, struct dc_error *err) {
    struct npy_in r = {in, err, 0};
    unsigned char pre[12];
    dc_status st = read_exact(&r, pre, 8);
    if (st != DC_OK) return st;
    if (memcmp(pre, "\x93NUMPY", 6) != 0)
        return dc_set_error(err, DC_ERR_FORMAT, "%s: offset 0: not a .npy file (expected the magic \\x93NUMPY)",
                            in->where);
    uint8_t major = pre[6];
    if (major < 1 || major > 3)
        return dc_set_error(err, DC_ERR_UNSUPPORTED, "%s: offset 6: .npy format version %u (expected 1, 2 or 3)",
                            in->where, major);
    size_t lenbytes = major == 1 ? 2 : 4;
    if ((st = read_exact(&r, pre + 8, lenbytes)) != DC_OK) return st;
    uint32_t hlen = pre[8] | (uint32_t)pre[9] << 8;
    if (major > 1) hlen |= (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
    if (hlen > NPY_MAX_HEADER)
        return dc_set_error(err, DC_ERR_FORMAT, "%s: offset 8: .npy header of %u bytes (at most %u)", in->where, hlen,
                            NPY_MAX_HEADER);
    char *h = malloc(hlen + 1);
    if (!h) return dc_set_error(err, DC_ERR_NOMEM, "%s: out of memory", in->where);
    if ((st = read_exact(&r, h, hlen)) != DC_OK) {
        free(h);
        return st;
    }
    h[hlen] = '\0';
    struct npy_header hd;
    const char *end = memchr(h, '\0', hlen) ? NULL : parse_header(h, &hd);
    free(h);
    if (!end || !hd.descr[0] || hd.fortran < 0 || hd.ndim < 0)
        return dc_set_error(err, DC_ERR_FORMAT,
                            "%s: offset %zu: malformed .npy header (expected {'descr': ..., 'fortran_order': ..., "
                            "'shape': (...)})",
                            in->where, 6 + 2 + lenbytes);
    struct dc_pk_value *v = dc_pk_new(doc, DC_PK_ARRAY);
    if (!v) return dc_set_error(err, DC_ERR_NOMEM, "%s: out of memory", in->where);
    struct dc_pk_array *a = &v->u.arr;
    if ((st = parse_descr(&r, hd.descr, &a->stored, &a->itemsize)) != DC_OK) return st;
    a->held = a->stored;
    a->ndim = hd.ndim;
    a->fortran = hd.fortran;
    memcpy(a->shape, hd.shape, sizeof hd.shape);
    if (!dc_shape_count(a->shape, a->ndim, a->itemsize, &a->count, &a->nbytes))
        return dc_set_error(err, DC_ERR_FORMAT, "%s: .npy shape product overflows 64 bits", in->where);
    if ((st = read_payload(&r, opt, a)) != DC_OK) return st;
    *out = v;
    return DC_OK;
}

static struct dc_pk_value *new_str(struct dc_pk_doc *doc, const char *s, size_t n) {
    struct dc_pk_value *v = dc_pk_new(doc, DC_PK_STR);
    if (!v || !(v->u.s.data = malloc(n + 1))) return NULL;
    memcpy(v->u.s.data, s, n);
    v->u.s.data[n] = '\0';
    v->u.s.len = v->u.s.raw_len = n;
    return v;
}

dc_status dc_npy_place(struct dc_pk_doc *doc, const char *path, struct dc_pk_value *arr, const char *where,
                       struct dc_error *err) {
    size_t n = strlen(path);
    const char *base = strrchr(path, '/');
    if (n < 5 || strcmp(path + n - 4, ".npy") != 0 || !base || base == path)
        return dc_set_error(err, DC_ERR_FORMAT, "%s: '%s' does not follow the naming scheme <split>/<key>.npy", where,
                            path);
    const char *split = base - 1;
    while (split > path && split[-1] != '/') --split;
    if (!doc->root && !(doc->root = dc_pk_new(doc, DC_PK_DICT))) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    struct dc_pk_value *sk = new_str(doc, split, (size_t)(base - split));
    struct dc_pk_value *kk = new_str(doc, base + 1, (size_t)(path + n - 4 - (base + 1)));
    if (!sk || !kk) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    struct dc_pk_value *sd = dc_pk_dict_get(doc->root, sk->u.s.data);
    if (!sd) {
        if (!(sd = dc_pk_new(doc, DC_PK_DICT)) || !dc_pk_dict_set(doc->root, sk, sd))
            return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    }
    if (dc_pk_dict_get(sd, kk->u.s.data))
        return dc_set_error(err, DC_ERR_FORMAT, "%s: '%s' appears twice", where, path);
    if (!dc_pk_dict_set(sd, kk, arr)) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    return DC_OK;
}

struct fd_source {
    int fd;
};

static dc_status fd_read(void *ctx, void *buf, size_t n, size_t *got, struct dc_error *err) {
    struct fd_source *s = ctx;
    ssize_t k = read(s->fd, buf, n > (1u << 30) ? (1u << 30) : n);
    if (k < 0) return dc_set_error(err, DC_ERR_IO, "read failed");
    *got = (size_t)k;
    return DC_OK;
}

static dc_status load_one(const char *dir, const char *split, const char *name, const struct dc_pk_options *opt,
                          struct dc_pk_doc *doc, struct dc_error *err) {
    char path[2048], rel[1024];
    snprintf(path, sizeof path, "%.1000s/%s/%.500s", dir, split, name);
    snprintf(rel, sizeof rel, "%s/%.500s", split, name);
    struct fd_source src = {open(path, O_RDONLY)};
    if (src.fd < 0) return dc_set_error(err, DC_ERR_IO, "%s: cannot open", path);
    struct stat sb;
    struct dc_stream s = {fd_read, &src, fstat(src.fd, &sb) == 0 ? (int64_t)sb.st_size : -1, ""};
    snprintf(s.where, sizeof s.where, "%.1000s", path);
    struct dc_pk_value *arr = NULL;
    dc_status st = dc_npy_read(&s, opt, doc, &arr, err);
    close(src.fd);
    if (st == DC_OK) st = dc_npy_place(doc, rel, arr, path, err);
    return st;
}

dc_status dc_npy_load_dir(const char *dir, const struct dc_pk_options *opt, struct dc_pk_doc **out,
                          struct dc_error *err) {
    static const char *const splits[] = {"train", "valid", "test"};
    struct dc_pk_doc *doc = dc_pk_doc_new();
    if (!doc) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    dc_status st = DC_OK;
    for (size_t i = 0; i < 3 && st == DC_OK; ++i) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", dir, splits[i]);
        DIR *d = opendir(sub);
        if (!d) continue;
        struct dirent *e;
        while (st == DC_OK && (e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (n > 4 && strcmp(e->d_name + n - 4, ".npy") == 0) st = load_one(dir, splits[i], e->d_name, opt, doc, err);
        }
        closedir(d);
    }
    if (st == DC_OK && !doc->root)
        st = dc_set_error(err, DC_ERR_FORMAT, "%s: directory holds no <split>/<key>.npy files (splits train, valid, test)",
                          dir);
    if (st != DC_OK) {
        dc_pk_doc_free(doc);
        return st;
    }
    *out = doc;
    return DC_OK;
}
