/* safetensors writer: compact JSON header padded to 8 bytes, atomic replace. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/safetensors.h"

static dc_status check_input(const struct dc_st_entry *t, size_t n, const struct dc_st_kv *meta, size_t nmeta,
                             const char *path, struct dc_error *err) {
    for (size_t i = 0; i < n; ++i) {
        if (!t[i].name || !*t[i].name || strcmp(t[i].name, "__metadata__") == 0)
            return dc_set_error(err, DC_ERR_ARG, "%s: tensor %zu has no usable name", path, i);
        if (t[i].ndim > DC_ST_MAX_DIMS)
            return dc_set_error(err, DC_ERR_ARG, "%s: tensor '%s': rank %zu above %d", path, t[i].name, t[i].ndim,
                                DC_ST_MAX_DIMS);
        for (size_t j = 0; j < i; ++j)
            if (strcmp(t[i].name, t[j].name) == 0)
                return dc_set_error(err, DC_ERR_ARG, "%s: tensor '%s' given twice", path, t[i].name);
    }
    for (size_t i = 0; i < nmeta; ++i) {
        if (!meta[i].key || !meta[i].value)
            return dc_set_error(err, DC_ERR_ARG, "%s: metadata entry %zu is incomplete", path, i);
        for (size_t j = 0; j < i; ++j)
            if (strcmp(meta[i].key, meta[j].key) == 0)
                return dc_set_error(err, DC_ERR_ARG, "%s: metadata key '%s' given twice", path, meta[i].key);
    }
    return DC_OK;
}

static size_t numel_of(const struct dc_st_entry *t, int *overflow) {
    size_t n = 1;
    for (size_t i = 0; i < t->ndim; ++i)
        if (__builtin_mul_overflow(n, t->shape[i], &n)) *overflow = 1;
    if (n > SIZE_MAX / 8) *overflow = 1;
    return n;
}

/* The header text, padded with spaces to a multiple of 8; caller frees. */
static dc_status build_header(const struct dc_st_entry *t, size_t n, const struct dc_st_kv *meta, size_t nmeta,
                              const char *path, char **out, size_t *out_len, struct dc_error *err) {
    json_t *root = json_object();
    int bad = !root;
    if (nmeta && root) {
        json_t *m = json_object();
        bad |= !m || json_object_set_new(root, "__metadata__", m);
        for (size_t i = 0; i < nmeta && !bad; ++i)
            bad |= json_object_set_new(m, meta[i].key, json_string(meta[i].value));
    }
    size_t at = 0;
    int overflow = 0;
    for (size_t i = 0; i < n && !bad; ++i) {
        size_t numel = numel_of(&t[i], &overflow);
        if (overflow || at > (size_t)INT64_MAX - numel * 4) {
            json_decref(root);
            return dc_set_error(err, DC_ERR_ARG, "%s: tensor '%s' is too large", path, t[i].name);
        }
        if (numel && !t[i].data) {
            json_decref(root);
            return dc_set_error(err, DC_ERR_ARG, "%s: tensor '%s' has no data", path, t[i].name);
        }
        json_t *e = json_object(), *shape = json_array(), *offs = json_array();
        bad |= !e || !shape || !offs;
        for (size_t j = 0; j < t[i].ndim && !bad; ++j)
            bad |= json_array_append_new(shape, json_integer((json_int_t)t[i].shape[j]));
        if (!bad) {
            bad |= json_array_append_new(offs, json_integer((json_int_t)at));
            bad |= json_array_append_new(offs, json_integer((json_int_t)(at + numel * 4)));
            bad |= json_object_set_new(e, "dtype", json_string("F32"));
            bad |= json_object_set_new(e, "shape", shape);
            bad |= json_object_set_new(e, "data_offsets", offs);
            bad |= json_object_set_new(root, t[i].name, e);
        } else {
            json_decref(e);
            json_decref(shape);
            json_decref(offs);
        }
        at += numel * 4;
    }
    char *text = bad ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text)
        return dc_set_error(err, DC_ERR_ARG,
                            "%s: cannot build the header (a name or value that is not UTF-8, or out of memory)", path);
    size_t len = strlen(text), padded = (len + 7) / 8 * 8;
    char *h = realloc(text, padded + 1);
    if (!h) {
        free(text);
        return dc_set_error(err, DC_ERR_NOMEM, "%s: header of %zu bytes", path, padded);
    }
    memset(h + len, ' ', padded - len);
    h[padded] = '\0';
    *out = h;
    *out_len = padded;
    return DC_OK;
}

/* Writes floats little-endian through a small buffer. */
static int write_floats(FILE *fp, const float *x, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    unsigned char buf[4096];
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        for (; k < sizeof buf / 4 && i < n; ++k, ++i) {
            uint32_t u;
            memcpy(&u, &x[i], 4);
            buf[4 * k] = (unsigned char)u, buf[4 * k + 1] = (unsigned char)(u >> 8);
            buf[4 * k + 2] = (unsigned char)(u >> 16), buf[4 * k + 3] = (unsigned char)(u >> 24);
        }
        if (fwrite(buf, 4, k, fp) != k) return 0;
    }
    return 1;
#else
    return n == 0 || fwrite(x, sizeof *x, n, fp) == n;
#endif
}

dc_status dc_st_write(const char *path, const struct dc_st_entry *t, size_t n, const struct dc_st_kv *meta,
                      size_t nmeta, struct dc_error *err) {
    dc_status rc = check_input(t, n, meta, nmeta, path, err);
    if (rc) return rc;
    char *header = NULL;
    size_t hlen = 0;
    if ((rc = build_header(t, n, meta, nmeta, path, &header, &hlen, err))) return rc;

    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp) {
        free(header);
        return dc_set_error(err, DC_ERR_ARG, "%s: path too long", path);
    }
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        rc = dc_set_error(err, DC_ERR_IO, "%s: %s", tmp, strerror(errno));
        free(header);
        return rc;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; ++i) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(header, 1, hlen, fp) == hlen;
    for (size_t i = 0; i < n && ok; ++i) {
        int overflow = 0;
        ok = write_floats(fp, t[i].data, numel_of(&t[i], &overflow));
    }
    free(header);
    int saved = errno;
    if (ok && fflush(fp) != 0) ok = 0, saved = errno;
    if (ok && fsync(fileno(fp)) != 0) ok = 0, saved = errno;
    if (fclose(fp) != 0 && ok) ok = 0, saved = errno;
    if (!ok) {
        unlink(tmp);
        return dc_set_error(err, DC_ERR_IO, "%s: writing %s: %s", path, tmp, strerror(saved ? saved : EIO));
    }
    if (rename(tmp, path) != 0) {
        saved = errno;
        unlink(tmp);
        return dc_set_error(err, DC_ERR_IO, "%s: renaming %s over it: %s", path, tmp, strerror(saved));
    }
    return DC_OK;
}
