/* `decocl inspect FILE [--json]`: splits, keys, dtypes as stored, shapes, non-finite counts, label
 * ranges and counts, and which dataset the file looks like (issue 3 item 4). The file is read with
 * the safe reader and nothing is converted, so dtypes and counts are those of the file. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "data/archive.h"
#include "data/mmsa.h"

static void dtype_str(const struct dc_pk_value *v, char *out, size_t cap) {
    if (v->kind != DC_PK_ARRAY) {
        snprintf(out, cap, "%s", dc_pk_kind_name(v->kind));
        return;
    }
    if (v->u.arr.stored == DC_DTYPE_UNICODE) snprintf(out, cap, "<U%zu", v->u.arr.itemsize / 4);
    else snprintf(out, cap, "%s", dc_dtype_name(v->u.arr.stored));
}

static json_t *shape_json(const struct dc_pk_value *v) {
    json_t *a = json_array();
    if (v->kind == DC_PK_ARRAY)
        for (int k = 0; k < v->u.arr.ndim; ++k) json_array_append_new(a, json_integer((json_int_t)v->u.arr.shape[k]));
    else if (v->kind == DC_PK_LIST || v->kind == DC_PK_TUPLE || v->kind == DC_PK_DICT)
        json_array_append_new(a, json_integer((json_int_t)(v->kind == DC_PK_DICT ? v->u.dict.len : v->u.seq.len)));
    return a;
}

static size_t nonfinite(const struct dc_pk_value *v) {
    if (v->kind != DC_PK_ARRAY || !dc_dtype_is_float(v->u.arr.held)) return 0;
    size_t k = 0;
    const struct dc_pk_array *a = &v->u.arr;
    if (a->held == DC_DTYPE_F32) {
        const float *f = a->data;
        for (size_t i = 0; i < a->count; ++i) k += !isfinite(f[i]);
    } else if (a->held == DC_DTYPE_F64) {
        const double *d = a->data;
        for (size_t i = 0; i < a->count; ++i) k += !isfinite(d[i]);
    } else {
        for (size_t i = 0; i < a->count; ++i) {
            double x;
            dc_mmsa_number_at(v, i, &x);
            k += !isfinite(x);
        }
    }
    return k;
}

static json_t *real_or_null(double x) { return isfinite(x) ? json_real(x) : json_null(); }

/* {"key", "min", "max", "mean", "counts"?}; NULL when the split has no usable labels. */
static json_t *labels_json(const struct dc_pk_value *split, bool classification) {
    const char *key = dc_pk_dict_get(split, "regression_labels") ? "regression_labels" : "classification_labels";
    const struct dc_pk_value *v = dc_pk_dict_get(split, key);
    size_t n;
    if (!v || !dc_mmsa_len(v, &n) || (v->kind == DC_PK_ARRAY && v->u.arr.count != n)) return NULL;
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    json_t *counts = classification ? json_object() : NULL;
    for (size_t i = 0; i < n; ++i) {
        double x;
        if (!dc_mmsa_number_at(v, i, &x)) {
            json_decref(counts);
            return NULL;
        }
        mn = x < mn ? x : mn;
        mx = x > mx ? x : mx;
        sum += x;
        if (counts) {
            char k[64];
            snprintf(k, sizeof k, "%.17g", x);
            json_t *c = json_object_get(counts, k);
            json_object_set_new(counts, k, json_integer(c ? json_integer_value(c) + 1 : 1));
        }
    }
    json_t *o = json_object();
    json_object_set_new(o, "key", json_string(key));
    json_object_set_new(o, "min", n ? real_or_null(mn) : json_null());
    json_object_set_new(o, "max", n ? real_or_null(mx) : json_null());
    json_object_set_new(o, "mean", n ? real_or_null(sum / (double)n) : json_null());
    if (counts) json_object_set_new(o, "counts", counts);
    return o;
}

static json_t *split_json(const struct dc_pk_value *split, bool classification) {
    json_t *o = json_object(), *keys = json_object();
    size_t samples = 0;
    const struct dc_pk_value *lab = dc_pk_dict_get(split, "regression_labels");
    if (!lab) lab = dc_pk_dict_get(split, "classification_labels");
    if (!lab || !dc_mmsa_len(lab, &samples)) {
        const struct dc_pk_value *t = dc_pk_dict_get(split, "text");
        if (!t || !dc_mmsa_len(t, &samples)) samples = 0;
    }
    json_object_set_new(o, "samples", json_integer((json_int_t)samples));
    for (size_t i = 0; i < split->u.dict.len; ++i) {
        const struct dc_pk_value *v = split->u.dict.vals[i];
        json_t *k = json_object();
        char dt[64];
        dtype_str(v, dt, sizeof dt);
        json_object_set_new(k, "dtype", json_string(dt));
        json_object_set_new(k, "shape", shape_json(v));
        json_object_set_new(k, "nonfinite", json_integer((json_int_t)nonfinite(v)));
        json_object_set_new(keys, split->u.dict.keys[i]->u.s.data, k);
    }
    json_object_set_new(o, "keys", keys);
    json_t *labels = labels_json(split, classification);
    if (labels) json_object_set_new(o, "labels", labels);
    return o;
}

static void print_text(json_t *root) {
    printf("file: %s\nkind: %s\n", json_string_value(json_object_get(root, "file")),
           json_string_value(json_object_get(root, "kind")));
    const char *name;
    json_t *split;
    json_object_foreach(json_object_get(root, "splits"), name, split) {
        printf("split %s: %lld samples\n", name, (long long)json_integer_value(json_object_get(split, "samples")));
        const char *key;
        json_t *k;
        json_object_foreach(json_object_get(split, "keys"), key, k) {
            char shape[256] = "[";
            size_t i, n = 1;
            json_t *d;
            json_array_foreach(json_object_get(k, "shape"), i, d) n += (size_t)snprintf(
                shape + n, sizeof shape - n > 0 ? sizeof shape - n : 0, "%s%lld", i ? ", " : "", (long long)json_integer_value(d));
            if (n < sizeof shape - 1) snprintf(shape + n, sizeof shape - n, "]");
            printf("  %-24s %-8s %-20s", key, json_string_value(json_object_get(k, "dtype")), shape);
            long long nf = json_integer_value(json_object_get(k, "nonfinite"));
            if (nf) printf(" nonfinite %lld", nf);
            printf("\n");
        }
        json_t *lab = json_object_get(split, "labels");
        if (lab) {
            printf("  labels %s: min %g max %g mean %g", json_string_value(json_object_get(lab, "key")),
                   json_number_value(json_object_get(lab, "min")), json_number_value(json_object_get(lab, "max")),
                   json_number_value(json_object_get(lab, "mean")));
            json_t *counts = json_object_get(lab, "counts");
            if (counts) {
                const char *v;
                json_t *c;
                printf(" counts");
                json_object_foreach(counts, v, c) printf(" %s:%lld", v, (long long)json_integer_value(c));
            }
            printf("\n");
        }
    }
}

int dc_cmd_inspect(int argc, char **argv) {
    const char *file = NULL;
    bool as_json = false;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--json") == 0) as_json = true;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "decocl: inspect: unknown option '%s'\nusage: decocl inspect FILE [--json]\n", argv[i]);
            return 2;
        } else if (file) {
            fprintf(stderr, "decocl: inspect takes one FILE\nusage: decocl inspect FILE [--json]\n");
            return 2;
        } else file = argv[i];
    }
    if (!file) {
        fprintf(stderr, "usage: decocl inspect FILE [--json]\n"
                        "  FILE: a .pkl, FILE#member of a .tar/.tar.gz/.tar.xz/.zip, a .npz or a directory of "
                        "<split>/<key>.npy\n");
        return 2;
    }
    struct dc_error err = {0};
    struct dc_pk_doc *doc = NULL;
    struct dc_pk_options opt = {.f32_min_ndim = 0}; /* keep every dtype as stored */
    if (dc_data_load_doc(file, &opt, &doc, &err) != DC_OK) {
        fprintf(stderr, "decocl: %s: %s\n", dc_status_str(err.code), err.msg);
        return err.code == DC_ERR_ARG ? 2 : 1;
    }
    int found = 0;
    for (int s = 0; s < DC_SPLIT_COUNT; ++s) found += dc_mmsa_split(doc, (enum dc_split_id)s) != NULL;
    if (!found) {
        fprintf(stderr, "decocl: format error: %s: the top-level object is a %s without 'train', 'valid' or 'test' dicts\n",
                file, doc->root ? dc_pk_kind_name(doc->root->kind) : "nothing");
        dc_pk_doc_free(doc);
        return 1;
    }
    enum dc_dataset_kind kind = dc_mmsa_doc_kind(doc);
    json_t *root = json_object(), *splits = json_object();
    json_object_set_new(root, "file", json_string(file));
    json_object_set_new(root, "kind", json_string(dc_dataset_kind_name(kind)));
    const struct dc_pk_value *train = dc_mmsa_split(doc, DC_SPLIT_TRAIN);
    bool classification = kind == DC_KIND_IEMOCAP || (train && !dc_pk_dict_get(train, "regression_labels"));
    for (int s = 0; s < DC_SPLIT_COUNT; ++s) {
        const struct dc_pk_value *sd = dc_mmsa_split(doc, (enum dc_split_id)s);
        if (sd) json_object_set_new(splits, dc_split_name((enum dc_split_id)s), split_json(sd, classification));
    }
    json_object_set_new(root, "splits", splits);
    dc_pk_doc_free(doc);
    if (as_json) {
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
        printf("\n");
    } else {
        print_text(root);
    }
    json_decref(root);
    return 0;
}
