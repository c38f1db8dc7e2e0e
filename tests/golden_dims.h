/* The golden cases of ../shared/golden and their model dims, read from config.json
 * (reference key names). Shared by test_params.c and test_checkpoint.c. */
#ifndef DC_TEST_GOLDEN_DIMS_H
#define DC_TEST_GOLDEN_DIMS_H

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/params.h"

#define GOLDEN_DIR DECOCL_SOURCE_DIR "/../shared/golden"

static const char *const GOLDEN_CASES[] = {"mosi", "sims", "iemocap", "soft", "edge"};
#define GOLDEN_NCASES (sizeof GOLDEN_CASES / sizeof GOLDEN_CASES[0])

static inline void golden_path(char *buf, size_t cap, const char *gcase, const char *file) {
    snprintf(buf, cap, "%s/%s/%s", GOLDEN_DIR, gcase, file);
}

static inline void golden_why(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline void golden_why(char *why, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

static inline size_t golden_int(json_t *root, const char *key, size_t index, char *why, size_t cap) {
    json_t *v = json_object_get(root, key);
    if (json_is_array(v)) v = json_array_get(v, index);
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        golden_why(why, cap, "config key %s[%zu] missing or not a non-negative integer", key, index);
        return 0;
    }
    return (size_t)json_integer_value(v);
}

/* Fills dims from <case>/config.json; returns 0 and a reason in why on failure. The
 * output size is num_classes for classification, else 1 (the reference's regression head). */
static inline int golden_dims(const char *gcase, struct dc_model_dims *m, char *why, size_t cap) {
    char path[1024];
    golden_path(path, sizeof path, gcase, "config.json");
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        golden_why(why, cap, "%s: %s (the golden folder must exist: CI has it)", path, jerr.text);
        return 0;
    }
    why[0] = '\0';
    memset(m, 0, sizeof *m);
    m->d = golden_int(root, "dst_feature_dim_nheads", 0, why, cap);
    m->heads = golden_int(root, "dst_feature_dim_nheads", 1, why, cap);
    m->nlevels = golden_int(root, "nlevels", 0, why, cap);
    m->kernel[0] = golden_int(root, "conv1d_kernel_size_l", 0, why, cap);
    m->kernel[1] = golden_int(root, "conv1d_kernel_size_a", 0, why, cap);
    m->kernel[2] = golden_int(root, "conv1d_kernel_size_v", 0, why, cap);
    for (size_t i = 0; i < 3; ++i) m->feat[i] = golden_int(root, "feature_dims", i, why, cap);
    m->pde_dim = golden_int(root, "pde_dim", 0, why, cap);
    const char *mode = json_string_value(json_object_get(root, "train_mode"));
    m->out_dim = mode && strcmp(mode, "classification") == 0 ? golden_int(root, "num_classes", 0, why, cap) : 1;
    json_decref(root);
    return why[0] == '\0';
}

#endif
