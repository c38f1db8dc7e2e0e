/* Reading values out of the MMSA tree: splits, lengths, strings, numbers, dataset kind. */
#include <string.h>

#include "data/mmsa.h"

const char *dc_modality_name(enum dc_modality m) {
    static const char *const n[] = {"text", "audio", "vision"};
    return (unsigned)m < DC_MOD_COUNT ? n[m] : "?";
}

const char *dc_split_name(enum dc_split_id s) {
    static const char *const n[] = {"train", "valid", "test"};
    return (unsigned)s < DC_SPLIT_COUNT ? n[s] : "?";
}

const char *dc_dataset_kind_name(enum dc_dataset_kind k) {
    switch (k) {
        case DC_KIND_MOSI: return "mosi";
        case DC_KIND_MOSEI: return "mosei";
        case DC_KIND_SIMS: return "sims";
        case DC_KIND_IEMOCAP: return "iemocap";
        case DC_KIND_UNKNOWN: break;
    }
    return "unknown";
}

struct dc_pk_value *dc_mmsa_split(const struct dc_pk_doc *doc, enum dc_split_id s) {
    struct dc_pk_value *v = doc && doc->root ? dc_pk_dict_get(doc->root, dc_split_name(s)) : NULL;
    return v && v->kind == DC_PK_DICT ? v : NULL;
}

bool dc_mmsa_len(const struct dc_pk_value *v, size_t *n) {
    if (!v) return false;
    if (v->kind == DC_PK_ARRAY) {
        *n = v->u.arr.ndim ? v->u.arr.shape[0] : 1;
        return true;
    }
    if (v->kind == DC_PK_LIST || v->kind == DC_PK_TUPLE) {
        *n = v->u.seq.len;
        return true;
    }
    return false;
}

static size_t put_utf8(char *out, size_t cap, size_t n, uint32_t cp) {
    char b[4];
    size_t k;
    if (cp < 0x80) b[0] = (char)cp, k = 1;
    else if (cp < 0x800) b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f)), k = 2;
    else if (cp < 0x10000)
        b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[2] = (char)(0x80 | (cp & 0x3f)), k = 3;
    else if (cp < 0x110000)
        b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), k = 4;
    else b[0] = '?', k = 1;
    if (n + k < cap) memcpy(out + n, b, k);
    return n + k < cap ? n + k : n;
}

bool dc_mmsa_string_at(const struct dc_pk_value *v, size_t i, char *out, size_t cap) {
    if (!v || cap == 0) return false;
    const struct dc_pk_value *s = NULL;
    if (v->kind == DC_PK_LIST || v->kind == DC_PK_TUPLE) {
        if (i >= v->u.seq.len) return false;
        s = v->u.seq.items[i];
    } else if (v->kind == DC_PK_ARRAY && v->u.arr.stored == DC_DTYPE_OBJECT) {
        if (!v->u.arr.objects || i >= v->u.arr.objects->u.seq.len) return false;
        s = v->u.arr.objects->u.seq.items[i];
    } else if (v->kind == DC_PK_ARRAY && v->u.arr.stored == DC_DTYPE_UNICODE) {
        if (i >= v->u.arr.count) return false;
        size_t chars = v->u.arr.itemsize / 4, n = 0;
        const unsigned char *p = (const unsigned char *)v->u.arr.data + i * v->u.arr.itemsize;
        size_t end = chars;
        while (end > 0) { /* numpy strips trailing NULs */
            const unsigned char *q = p + 4 * (end - 1);
            if (q[0] | q[1] | q[2] | q[3]) break;
            --end;
        }
        for (size_t c = 0; c < end; ++c) {
            const unsigned char *q = p + 4 * c;
            n = put_utf8(out, cap, n, (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24);
        }
        out[n] = '\0';
        return true;
    } else {
        return false;
    }
    if (!s || s->kind != DC_PK_STR) return false;
    size_t n = s->u.s.len < cap - 1 ? s->u.s.len : cap - 1;
    memcpy(out, s->u.s.data, n);
    out[n] = '\0';
    return true;
}

static bool array_elem(const struct dc_pk_array *a, size_t i, double *out) {
    if (i >= a->count || !a->data) return false;
    const unsigned char *p = a->data;
    switch (a->held) {
        case DC_DTYPE_BOOL: *out = p[i] != 0; return true;
        case DC_DTYPE_I8: *out = (int8_t)p[i]; return true;
        case DC_DTYPE_U8: *out = p[i]; return true;
        case DC_DTYPE_I16: { int16_t x; memcpy(&x, p + 2 * i, 2); *out = x; return true; }
        case DC_DTYPE_I32: { int32_t x; memcpy(&x, p + 4 * i, 4); *out = x; return true; }
        case DC_DTYPE_I64: { int64_t x; memcpy(&x, p + 8 * i, 8); *out = (double)x; return true; }
        case DC_DTYPE_F16:
        case DC_DTYPE_F32: {
            float f;
            dc_convert_to_f32(&f, p + dc_dtype_size(a->held) * i, a->held, 1);
            *out = f;
            return true;
        }
        case DC_DTYPE_F64: { memcpy(out, p + 8 * i, 8); return true; }
        default: return false;
    }
}

static bool scalar_value(const struct dc_pk_value *v, double *out) {
    switch (v->kind) {
        case DC_PK_BOOL: *out = v->u.b; return true;
        case DC_PK_INT: *out = (double)v->u.i; return true;
        case DC_PK_FLOAT: *out = v->u.f; return true;
        case DC_PK_ARRAY: return v->u.arr.ndim == 0 && array_elem(&v->u.arr, 0, out);
        default: return false;
    }
}

bool dc_mmsa_number_at(const struct dc_pk_value *v, size_t i, double *out) {
    if (!v) return false;
    if (v->kind == DC_PK_ARRAY) return array_elem(&v->u.arr, i, out);
    if ((v->kind == DC_PK_LIST || v->kind == DC_PK_TUPLE) && i < v->u.seq.len)
        return scalar_value(v->u.seq.items[i], out);
    return false;
}

enum dc_dataset_kind dc_dataset_kind_guess(const struct dc_kind_hints *h) {
    const size_t *d = h->dim;
    if (h->has_classification && !h->has_regression) return DC_KIND_IEMOCAP;
    if (h->seq_len[0] == 1 && h->seq_len[1] == 1 && h->seq_len[2] == 1) return DC_KIND_IEMOCAP;
    if (h->has_sims_unimodal || (d[DC_MOD_AUDIO] == 33 && d[DC_MOD_VISION] == 709)) return DC_KIND_SIMS;
    if (d[DC_MOD_AUDIO] == 74 && d[DC_MOD_VISION] == 35) return DC_KIND_MOSEI;
    if (d[DC_MOD_AUDIO] == 5 && d[DC_MOD_VISION] == 20) return DC_KIND_MOSI;
    return DC_KIND_UNKNOWN;
}

enum dc_dataset_kind dc_mmsa_doc_kind(const struct dc_pk_doc *doc) {
    const struct dc_pk_value *train = dc_mmsa_split(doc, DC_SPLIT_TRAIN);
    if (!train) return DC_KIND_UNKNOWN;
    struct dc_kind_hints h = {0};
    for (int m = 0; m < DC_MOD_COUNT; ++m) {
        const struct dc_pk_value *x = dc_pk_dict_get(train, dc_modality_name((enum dc_modality)m));
        if (x && x->kind == DC_PK_ARRAY && x->u.arr.ndim == 3) {
            h.seq_len[m] = x->u.arr.shape[1];
            h.dim[m] = x->u.arr.shape[2];
        }
    }
    h.has_regression = dc_pk_dict_get(train, "regression_labels") != NULL;
    h.has_classification = dc_pk_dict_get(train, "classification_labels") != NULL;
    h.has_sims_unimodal = dc_pk_dict_get(train, "regression_labels_T") != NULL;
    return dc_dataset_kind_guess(&h);
}
