/* Strict safetensors reader: every header entry and every byte of the data checked. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/safetensors.h"

/* One header entry while validating. */
struct entry {
    const char *name; /* owned by the JSON tree */
    size_t ndim, shape[DC_ST_MAX_DIMS], numel;
    uint64_t begin, end;
};

static uint64_t load_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
    return v;
}

static void shape_text(char *buf, size_t cap, const size_t *shape, size_t ndim) {
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (size_t i = 0; i < ndim && at < cap; ++i)
        at += (size_t)snprintf(buf + at, cap - at, "%s%zu", i ? ", " : "", shape[i]);
    if (at < cap) snprintf(buf + at, cap - at, "]");
}

static int cmp_entry(const void *a, const void *b) {
    const struct entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* A JSON integer in [0, 2^63). */
static int get_u64(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return 0;
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

static dc_status parse_meta(const json_t *obj, const char *label, struct dc_st_meta *m, struct dc_error *err) {
    if (!json_is_object(obj))
        return dc_set_error(err, DC_ERR_FORMAT, "%s: header: __metadata__ is not a JSON object", label);
    size_t n = json_object_size(obj);
    m->keys = calloc(n ? n : 1, sizeof *m->keys);
    m->values = calloc(n ? n : 1, sizeof *m->values);
    if (!m->keys || !m->values) return dc_set_error(err, DC_ERR_NOMEM, "%s: metadata of %zu entries", label, n);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        if (!json_is_string(val))
            return dc_set_error(err, DC_ERR_FORMAT, "%s: header: __metadata__ value of '%s' is not a string", label,
                                key);
        m->keys[m->n] = strdup(key);
        m->values[m->n] = strdup(json_string_value(val));
        ++m->n;
        if (!m->keys[m->n - 1] || !m->values[m->n - 1])
            return dc_set_error(err, DC_ERR_NOMEM, "%s: metadata entry '%s'", label, key);
    }
    return DC_OK;
}

/* Checks one tensor entry's fields, dtype, shape and length against the data size. */
static dc_status parse_entry(const char *name, const json_t *obj, size_t data_len, size_t data_at, const char *label,
                             struct entry *e, struct dc_error *err) {
    e->name = name;
    if (!json_is_object(obj))
        return dc_set_error(err, DC_ERR_FORMAT, "%s: header: tensor '%s' is not a JSON object", label, name);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return dc_set_error(err, DC_ERR_FORMAT, "%s: header: tensor '%s': unknown field '%s'", label, name, key);
    }
    const json_t *dtype = json_object_get(obj, "dtype"), *shape = json_object_get(obj, "shape"),
                 *offs = json_object_get(obj, "data_offsets");
    if (!json_is_string(dtype))
        return dc_set_error(err, DC_ERR_FORMAT, "%s: header: tensor '%s': dtype missing or not a string", label, name);
    if (strcmp(json_string_value(dtype), "F32") != 0)
        return dc_set_error(err, DC_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s is not supported (only F32)", label,
                            name, json_string_value(dtype));
    if (!json_is_array(shape))
        return dc_set_error(err, DC_ERR_FORMAT, "%s: header: tensor '%s': shape missing or not an array", label, name);
    e->ndim = json_array_size(shape);
    if (e->ndim > DC_ST_MAX_DIMS)
        return dc_set_error(err, DC_ERR_UNSUPPORTED, "%s: tensor '%s': rank %zu above %d", label, name, e->ndim,
                            DC_ST_MAX_DIMS);
    e->numel = 1;
    int overflow = 0;
    for (size_t i = 0; i < e->ndim; ++i) {
        uint64_t s;
        if (!get_u64(json_array_get(shape, i), &s) || s > SIZE_MAX)
            return dc_set_error(err, DC_ERR_FORMAT, "%s: header: tensor '%s': shape[%zu] is not a non-negative integer",
                                label, name, i);
        e->shape[i] = (size_t)s;
        if (__builtin_mul_overflow(e->numel, e->shape[i], &e->numel)) overflow = 1;
    }
    if (!json_is_array(offs) || json_array_size(offs) != 2 || !get_u64(json_array_get(offs, 0), &e->begin) ||
        !get_u64(json_array_get(offs, 1), &e->end))
        return dc_set_error(err, DC_ERR_FORMAT,
                            "%s: header: tensor '%s': data_offsets is not two non-negative integers", label, name);
    if (e->end < e->begin)
        return dc_set_error(err, DC_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin",
                            label, name, (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end > data_len)
        return dc_set_error(err, DC_ERR_FORMAT,
                            "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the file (%zu data bytes "
                            "from file byte %zu)",
                            label, name, (unsigned long long)e->begin, (unsigned long long)e->end, data_len, data_at);
    if (overflow || e->numel > SIZE_MAX / 4 || (uint64_t)e->numel * 4 != e->end - e->begin) {
        char st[160], need[32];
        shape_text(st, sizeof st, e->shape, e->ndim);
        if (overflow || e->numel > SIZE_MAX / 4)
            snprintf(need, sizeof need, "more than 2^64");
        else
            snprintf(need, sizeof need, "%zu", e->numel * 4);
        return dc_set_error(err, DC_ERR_FORMAT,
                            "%s: tensor '%s': shape %s needs %s bytes of F32 but data_offsets [%llu, %llu] hold %llu",
                            label, name, st, need, (unsigned long long)e->begin, (unsigned long long)e->end,
                            (unsigned long long)(e->end - e->begin));
    }
    return DC_OK;
}

/* Sorted by offset, the entries must tile [0, data_len) exactly. */
static dc_status check_tiling(const struct entry *e, size_t n, size_t data_len, size_t data_at, const char *label,
                              struct dc_error *err) {
    uint64_t at = 0;
    for (size_t i = 0; i < n; ++i) {
        if (e[i].begin > at)
            return dc_set_error(
                err, DC_ERR_FORMAT,
                "%s: tensor '%s': hole of %llu bytes before it (data bytes [%llu, %llu), file byte %llu)", label,
                e[i].name, (unsigned long long)(e[i].begin - at), (unsigned long long)at,
                (unsigned long long)e[i].begin, (unsigned long long)(data_at + at));
        if (e[i].begin < at)
            return dc_set_error(err, DC_ERR_FORMAT,
                                "%s: tensor '%s' overlaps tensor '%s' (data offset %llu < %llu, file byte %llu)", label,
                                e[i].name, e[i - 1].name, (unsigned long long)e[i].begin, (unsigned long long)at,
                                (unsigned long long)(data_at + e[i].begin));
        at = e[i].end;
    }
    if (at != data_len)
        return dc_set_error(err, DC_ERR_FORMAT, "%s: %llu trailing bytes after the last tensor, from file byte %llu",
                            label, (unsigned long long)(data_len - at), (unsigned long long)(data_at + at));
    return DC_OK;
}

static dc_status parse_header(const unsigned char *buf, size_t len, const char *label, json_t **root, size_t *data_at,
                              struct dc_error *err) {
    if (len < 8)
        return dc_set_error(err, DC_ERR_FORMAT, "%s: %zu bytes, too short for the 8-byte header length", label, len);
    uint64_t n = load_le64(buf);
    if (n > DC_ST_MAX_HEADER)
        return dc_set_error(err, DC_ERR_FORMAT, "%s: byte 0: header length %llu above the limit %llu", label,
                            (unsigned long long)n, DC_ST_MAX_HEADER);
    if (n > len - 8)
        return dc_set_error(err, DC_ERR_FORMAT,
                            "%s: byte 0: header length %llu runs past the end of the file (%zu bytes)", label,
                            (unsigned long long)n, len);
    json_error_t jerr;
    *root = json_loadb((const char *)buf + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!*root)
        return dc_set_error(err, DC_ERR_FORMAT, "%s: header byte %d (file byte %lld): invalid JSON: %s", label,
                            jerr.position, 8LL + jerr.position, jerr.text);
    if (!json_is_object(*root))
        return dc_set_error(err, DC_ERR_FORMAT, "%s: file byte 8: the header is not a JSON object", label);
    *data_at = 8 + (size_t)n;
    return DC_OK;
}

/* Moves the data to the start of a new buffer (aligned for floats) in host byte order. */
static dc_status take_data(struct dc_st_file *f, const struct entry *e, const unsigned char *data, size_t data_len,
                           const char *label, struct dc_error *err) {
    f->storage = malloc(data_len ? data_len : 1);
    if (!f->storage) return dc_set_error(err, DC_ERR_NOMEM, "%s: %zu bytes of tensor data", label, data_len);
    unsigned char *dst = f->storage;
    memcpy(dst, data, data_len);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i + 4 <= data_len; i += 4) {
        unsigned char t0 = dst[i], t1 = dst[i + 1];
        dst[i] = dst[i + 3], dst[i + 1] = dst[i + 2], dst[i + 2] = t1, dst[i + 3] = t0;
    }
#endif
    for (size_t i = 0; i < f->count; ++i) {
        struct dc_st_tensor *t = &f->tensors[i];
        t->name = strdup(e[i].name);
        if (!t->name) return dc_set_error(err, DC_ERR_NOMEM, "%s: tensor name", label);
        t->ndim = e[i].ndim;
        memcpy(t->shape, e[i].shape, sizeof t->shape);
        t->numel = e[i].numel;
        t->data = (float *)(void *)(dst + e[i].begin); /* offsets are multiples of 4: tiles of F32 from 0 */
    }
    return DC_OK;
}

dc_status dc_st_parse(const void *buf, size_t len, const char *label, struct dc_st_file *f, struct dc_error *err) {
    memset(f, 0, sizeof *f);
    json_t *root = NULL;
    struct entry *e = NULL;
    size_t data_at = 0, n = 0;
    dc_status rc = parse_header(buf, len, label, &root, &data_at, err);
    if (rc) goto done;
    size_t data_len = len - data_at;
    e = calloc(json_object_size(root) + 1, sizeof *e);
    if (!e) {
        rc = dc_set_error(err, DC_ERR_NOMEM, "%s: header of %zu entries", label, json_object_size(root));
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0)
            rc = parse_meta(val, label, &f->meta, err);
        else
            rc = parse_entry(key, val, data_len, data_at, label, &e[n++], err);
        if (rc) goto done;
    }
    qsort(e, n, sizeof *e, cmp_entry);
    if ((rc = check_tiling(e, n, data_len, data_at, label, err))) goto done;
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    if (!f->tensors) {
        rc = dc_set_error(err, DC_ERR_NOMEM, "%s: %zu tensors", label, n);
        goto done;
    }
    f->count = n;
    rc = take_data(f, e, (const unsigned char *)buf + data_at, data_len, label, err);
done:
    free(e);
    json_decref(root);
    if (rc) dc_st_free(f);
    return rc;
}

dc_status dc_st_read(const char *path, struct dc_st_file *f, struct dc_error *err) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) return dc_set_error(err, DC_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return dc_set_error(err, DC_ERR_IO, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) {
        fclose(fp);
        return dc_set_error(err, DC_ERR_NOMEM, "%s: %zu bytes", path, len);
    }
    size_t got = fread(buf, 1, len, fp);
    int bad = ferror(fp);
    fclose(fp);
    dc_status rc;
    if (bad || got != len)
        rc = dc_set_error(err, DC_ERR_IO, "%s: read %zu of %zu bytes", path, got, len);
    else
        rc = dc_st_parse(buf, len, path, f, err);
    free(buf);
    return rc;
}

void dc_st_meta_free(struct dc_st_meta *m) {
    for (size_t i = 0; i < m->n; ++i) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof *m);
}

void dc_st_free(struct dc_st_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->count; ++i) free(f->tensors[i].name);
    free(f->tensors);
    free(f->storage);
    dc_st_meta_free(&f->meta);
    memset(f, 0, sizeof *f);
}

const struct dc_st_tensor *dc_st_find(const struct dc_st_file *f, const char *name) {
    for (size_t i = 0; i < f->count; ++i)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *dc_st_meta_get(const struct dc_st_meta *m, const char *key) {
    for (size_t i = 0; i < m->n; ++i)
        if (strcmp(m->keys[i], key) == 0) return m->values[i];
    return NULL;
}
