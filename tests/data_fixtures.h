/* Shared by the data tests: the fixtures under tests/data/ (written by tests/make_fixtures.py) and
 * comparison of a loaded value tree with the values Python wrote (tests/data/expected.json). */
#ifndef DC_DATA_FIXTURES_H
#define DC_DATA_FIXTURES_H

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "data/archive.h"
#include "data/mmsa.h"
#include "test_util.h"

#define FIXTURE_DIR DECOCL_SOURCE_DIR "/tests/data"

static inline const char *fixture_path(const char *name) {
    static char buf[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", FIXTURE_DIR, name);
    return buf[k];
}

static inline json_t *fixture_expected(void) {
    json_error_t e;
    json_t *j = json_load_file(fixture_path("expected.json"), 0, &e);
    ck_assert_msg(j != NULL, "expected.json: %s (line %d)", e.text, e.line);
    return j;
}

static inline double json_value(json_t *v) {
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strcmp(s, "nan") == 0) return NAN;
        return strcmp(s, "inf") == 0 ? INFINITY : -INFINITY;
    }
    return json_number_value(v);
}

static inline int same_double(double a, double b) {
    return (isnan(a) && isnan(b)) || a == b;
}

static inline void value_dtype(const struct dc_pk_value *v, char *out, size_t cap) {
    if (v->kind == DC_PK_ARRAY && v->u.arr.stored == DC_DTYPE_UNICODE) snprintf(out, cap, "<U%zu", v->u.arr.itemsize / 4);
    else if (v->kind == DC_PK_ARRAY) snprintf(out, cap, "%s", dc_dtype_name(v->u.arr.stored));
    else snprintf(out, cap, "%s", dc_pk_kind_name(v->kind));
}

/* Compares one value with its description; f32 != 0: float arrays of >= 2 dims were converted to
 * float32 by the reader, so they must equal (float)value. Returns the number of values checked. */
static inline size_t check_value(const char *what, const struct dc_pk_value *v, json_t *desc, int f32) {
    ck_assert_msg(v != NULL, "%s: missing", what);
    const char *dt = json_string_value(json_object_get(desc, "dtype"));
    char got[64];
    value_dtype(v, got, sizeof got);
    if (strcmp(dt, "str") == 0 || strcmp(dt, "int") == 0 || strcmp(dt, "float") == 0 || strcmp(dt, "NoneType") == 0 ||
        strcmp(dt, "tuple") == 0) {
        return 1; /* Python scalars: checked by name below where it matters */
    }
    ck_assert_msg(strcmp(dt, got) == 0, "%s: dtype %s, expected %s", what, got, dt);
    json_t *shape = json_object_get(desc, "shape");
    if (v->kind == DC_PK_ARRAY) {
        ck_assert_msg((size_t)v->u.arr.ndim == json_array_size(shape), "%s: ndim %d, expected %zu", what,
                      v->u.arr.ndim, json_array_size(shape));
        for (size_t k = 0; k < json_array_size(shape); ++k)
            ck_assert_msg(v->u.arr.shape[k] == (size_t)json_integer_value(json_array_get(shape, k)),
                          "%s: dim %zu is %zu", what, k, v->u.arr.shape[k]);
    }
    size_t checked = 0;
    json_t *vals = json_object_get(desc, "values"), *strs = json_object_get(desc, "strings");
    for (size_t i = 0; vals && i < json_array_size(vals); ++i) {
        double x, want = json_value(json_array_get(vals, i));
        ck_assert_msg(dc_mmsa_number_at(v, i, &x), "%s[%zu]: not readable", what, i);
        if (f32 && v->kind == DC_PK_ARRAY && v->u.arr.held == DC_DTYPE_F32) want = (float)want;
        ck_assert_msg(same_double(x, want), "%s[%zu] = %.17g, expected %.17g", what, i, x, want);
        ++checked;
    }
    for (size_t i = 0; strs && i < json_array_size(strs); ++i) {
        char s[1024];
        ck_assert_msg(dc_mmsa_string_at(v, i, s, sizeof s), "%s[%zu]: not a string", what, i);
        ck_assert_msg(strcmp(s, json_string_value(json_array_get(strs, i))) == 0, "%s[%zu] = '%s', expected '%s'", what,
                      i, s, json_string_value(json_array_get(strs, i)));
        ++checked;
    }
    return checked;
}

/* Every split and key of `variant` in doc; with only_arrays, keys that are not ndarrays in the
 * variant are skipped (.npz / .npy dir). Returns the number of values compared. */
static inline size_t check_doc(const char *file, const struct dc_pk_doc *doc, json_t *variant, int f32, int only_arrays) {
    size_t checked = 0;
    const char *split;
    json_t *keys;
    json_object_foreach(variant, split, keys) {
        const struct dc_pk_value *sd = dc_pk_dict_get(doc->root, split);
        ck_assert_msg(sd && sd->kind == DC_PK_DICT, "%s: no split %s", file, split);
        const char *key;
        json_t *desc;
        json_object_foreach(keys, key, desc) {
            const char *dt = json_string_value(json_object_get(desc, "dtype"));
            int is_array = strcmp(dt, "list") && strcmp(dt, "int") && strcmp(dt, "float") && strcmp(dt, "NoneType") &&
                           strcmp(dt, "tuple") && strcmp(dt, "object");
            if (only_arrays && !is_array) continue;
            char what[512];
            snprintf(what, sizeof what, "%s: %s/%s", file, split, key);
            checked += check_value(what, dc_pk_dict_get(sd, key), desc, f32);
        }
    }
    return checked;
}

static inline dc_status status_named(const char *s) {
    if (strcmp(s, "FORMAT") == 0) return DC_ERR_FORMAT;
    if (strcmp(s, "UNSUPPORTED") == 0) return DC_ERR_UNSUPPORTED;
    if (strcmp(s, "IO") == 0) return DC_ERR_IO;
    if (strcmp(s, "ARG") == 0) return DC_ERR_ARG;
    return DC_ERR_NOMEM;
}

static inline void check_error(const char *file, dc_status st, const struct dc_error *err, json_t *c) {
    dc_status want = status_named(json_string_value(json_object_get(c, "status")));
    ck_assert_msg(st == want, "%s: status %s, expected %s; message: %s", file, dc_status_str(st), dc_status_str(want),
                  err->msg);
    json_t *sub;
    size_t i;
    json_array_foreach(json_object_get(c, "contains"), i, sub) {
        ck_assert_msg(strstr(err->msg, json_string_value(sub)) != NULL, "%s: message lacks '%s': %s", file,
                      json_string_value(sub), err->msg);
    }
}

#endif
