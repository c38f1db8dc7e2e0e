/* The pickle value tree: allocation owned by the document, sequences, dicts, lookups. */
#include <stdlib.h>
#include <string.h>

#include "data/pickle.h"

struct dc_pk_doc *dc_pk_doc_new(void) { return calloc(1, sizeof(struct dc_pk_doc)); }

struct dc_pk_value *dc_pk_new(struct dc_pk_doc *doc, enum dc_pk_kind kind) {
    struct dc_pk_value *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->kind = kind;
    if (kind == DC_PK_STR || kind == DC_PK_BYTES) v->u.s.conv_from = -1;
    v->next_owned = doc->owned;
    doc->owned = v;
    return v;
}

static void value_release(struct dc_pk_value *v) {
    switch (v->kind) {
        case DC_PK_STR:
        case DC_PK_BYTES: free(v->u.s.data); break;
        case DC_PK_TUPLE:
        case DC_PK_LIST: free(v->u.seq.items); break;
        case DC_PK_DICT:
            free(v->u.dict.keys);
            free(v->u.dict.vals);
            break;
        case DC_PK_ARRAY: free(v->u.arr.data); break;
        default: break;
    }
    free(v);
}

void dc_pk_doc_free(struct dc_pk_doc *doc) {
    if (!doc) return;
    struct dc_pk_value *v = doc->owned;
    while (v) { /* iterative: no recursion, cycles are harmless */
        struct dc_pk_value *next = v->next_owned;
        value_release(v);
        v = next;
    }
    free(doc);
}

bool dc_pk_seq_push(struct dc_pk_value *seq, struct dc_pk_value *v) {
    if (seq->u.seq.len == seq->u.seq.cap) {
        size_t cap = seq->u.seq.cap ? seq->u.seq.cap * 2 : 8;
        struct dc_pk_value **p = realloc(seq->u.seq.items, cap * sizeof *p);
        if (!p) return false;
        seq->u.seq.items = p;
        seq->u.seq.cap = cap;
    }
    seq->u.seq.items[seq->u.seq.len++] = v;
    return true;
}

bool dc_pk_dict_set(struct dc_pk_value *d, struct dc_pk_value *key, struct dc_pk_value *v) {
    for (size_t i = 0; i < d->u.dict.len; ++i) {
        const struct dc_pk_value *k = d->u.dict.keys[i];
        if (k->u.s.len == key->u.s.len && memcmp(k->u.s.data, key->u.s.data, k->u.s.len) == 0) {
            d->u.dict.vals[i] = v;
            return true;
        }
    }
    if (d->u.dict.len == d->u.dict.cap) {
        size_t cap = d->u.dict.cap ? d->u.dict.cap * 2 : 8;
        struct dc_pk_value **k = realloc(d->u.dict.keys, cap * sizeof *k);
        if (!k) return false;
        d->u.dict.keys = k;
        struct dc_pk_value **vv = realloc(d->u.dict.vals, cap * sizeof *vv);
        if (!vv) return false;
        d->u.dict.vals = vv;
        d->u.dict.cap = cap;
    }
    d->u.dict.keys[d->u.dict.len] = key;
    d->u.dict.vals[d->u.dict.len++] = v;
    return true;
}

struct dc_pk_value *dc_pk_dict_get(const struct dc_pk_value *d, const char *key) {
    if (!d || d->kind != DC_PK_DICT) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < d->u.dict.len; ++i) {
        const struct dc_pk_value *k = d->u.dict.keys[i];
        if (k->u.s.len == n && memcmp(k->u.s.data, key, n) == 0) return d->u.dict.vals[i];
    }
    return NULL;
}

const char *dc_pk_kind_name(enum dc_pk_kind k) {
    switch (k) {
        case DC_PK_NONE: return "None";
        case DC_PK_BOOL: return "bool";
        case DC_PK_INT: return "int";
        case DC_PK_FLOAT: return "float";
        case DC_PK_STR: return "str";
        case DC_PK_BYTES: return "bytes";
        case DC_PK_TUPLE: return "tuple";
        case DC_PK_LIST: return "list";
        case DC_PK_DICT: return "dict";
        case DC_PK_ARRAY: return "ndarray";
        case DC_PK_DTYPE: return "dtype";
        case DC_PK_GLOBAL: return "global";
    }
    return "?";
}
