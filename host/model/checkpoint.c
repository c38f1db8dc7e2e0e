/* The flat parameter layout as safetensors: straight copies, PyTorch's layout kept. */
#include "model/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decocl/decocl.h"

static void shape_text(char *buf, size_t cap, const size_t *shape, size_t ndim) {
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (size_t i = 0; i < ndim && at < cap; ++i)
        at += (size_t)snprintf(buf + at, cap - at, "%s%zu", i ? ", " : "", shape[i]);
    if (at < cap) snprintf(buf + at, cap - at, "]");
}

dc_status dc_checkpoint_write(const char *path, const struct dc_param_layout *pl, const float *buf, const char *prefix,
                              const struct dc_st_entry *extra, size_t nextra, const struct dc_st_kv *meta, size_t nmeta,
                              struct dc_error *err) {
    if (!prefix) prefix = "";
    for (size_t i = 0; i < nmeta; ++i)
        if (meta[i].key && (strcmp(meta[i].key, "format") == 0 || strcmp(meta[i].key, "decocl_version") == 0))
            return dc_set_error(err, DC_ERR_ARG, "%s: metadata key '%s' is set by decocl", path, meta[i].key);
    size_t n = nextra + pl->count, nm = 2 + nmeta, plen = strlen(prefix);
    struct dc_st_entry *t = calloc(n ? n : 1, sizeof *t);
    struct dc_st_kv *m = calloc(nm, sizeof *m);
    char *names = calloc(pl->count ? pl->count : 1, plen + DC_PARAM_NAME_MAX);
    dc_status rc;
    if (!t || !m || !names) {
        rc = dc_set_error(err, DC_ERR_NOMEM, "%s: %zu tensor entries", path, n);
        goto done;
    }
    for (size_t i = 0; i < nextra; ++i) t[i] = extra[i];
    for (size_t i = 0; i < pl->count; ++i) {
        const struct dc_param_desc *d = &pl->desc[i];
        char *name = names + i * (plen + DC_PARAM_NAME_MAX);
        snprintf(name, plen + DC_PARAM_NAME_MAX, "%s%s", prefix, d->name);
        struct dc_st_entry *e = &t[nextra + i];
        e->name = name;
        e->ndim = d->ndim;
        for (size_t j = 0; j < d->ndim; ++j) e->shape[j] = d->shape[j];
        e->data = buf + d->offset;
    }
    m[0] = (struct dc_st_kv){"format", "pt"};
    m[1] = (struct dc_st_kv){"decocl_version", DECOCL_VERSION};
    for (size_t i = 0; i < nmeta; ++i) m[2 + i] = meta[i];
    rc = dc_st_write(path, t, n, m, nm, err);
done:
    free(t);
    free(m);
    free(names);
    return rc;
}

dc_status dc_checkpoint_save(const char *path, const struct dc_param_layout *pl, const float *params,
                             const struct dc_st_kv *meta, size_t nmeta, struct dc_error *err) {
    return dc_checkpoint_write(path, pl, params, "", NULL, 0, meta, nmeta, err);
}

dc_status dc_checkpoint_gather(const struct dc_st_file *f, const char *label, const struct dc_param_layout *pl,
                               const char *prefix, float *buf, struct dc_error *err) {
    if (!prefix) prefix = "";
    size_t plen = strlen(prefix);
    size_t *src = malloc((pl->count ? pl->count : 1) * sizeof *src); /* tensor of f per parameter */
    if (!src) return dc_set_error(err, DC_ERR_NOMEM, "%s: %zu parameters", label, pl->count);
    for (size_t i = 0; i < pl->count; ++i) src[i] = f->count;
    dc_status rc = DC_OK;
    char have[160], want[160];
    for (size_t k = 0; k < f->count && !rc; ++k) {
        const struct dc_st_tensor *t = &f->tensors[k];
        if (strncmp(t->name, prefix, plen) != 0) continue; /* only possible with a prefix */
        size_t i = dc_param_index(pl, t->name + plen);
        if (i == pl->count) {
            rc = dc_set_error(err, DC_ERR_FORMAT, "%s: unexpected tensor '%s' (no such parameter in this model)", label,
                              t->name);
            break;
        }
        const struct dc_param_desc *d = &pl->desc[i];
        int same = t->ndim == d->ndim;
        for (size_t j = 0; same && j < d->ndim; ++j) same = t->shape[j] == d->shape[j];
        if (!same) {
            shape_text(have, sizeof have, t->shape, t->ndim);
            shape_text(want, sizeof want, d->shape, d->ndim);
            rc = dc_set_error(err, DC_ERR_FORMAT, "%s: tensor '%s' has shape %s, the model expects %s", label, t->name,
                              have, want);
            break;
        }
        src[i] = k; /* names in f are unique, so no parameter is matched twice */
    }
    for (size_t i = 0; i < pl->count && !rc; ++i) {
        if (src[i] != f->count) continue;
        size_t missing = 0;
        for (size_t j = i; j < pl->count; ++j) missing += src[j] == f->count;
        shape_text(want, sizeof want, pl->desc[i].shape, pl->desc[i].ndim);
        rc = dc_set_error(err, DC_ERR_FORMAT, "%s: missing tensor '%s%s' (shape %s; %zu missing in all)", label, prefix,
                          pl->desc[i].name, want, missing);
    }
    if (!rc) {
        memset(buf, 0, pl->total * sizeof *buf);
        for (size_t i = 0; i < pl->count; ++i)
            memcpy(buf + pl->desc[i].offset, f->tensors[src[i]].data, pl->desc[i].numel * sizeof *buf);
    }
    free(src);
    return rc;
}

dc_status dc_checkpoint_load(const char *path, const struct dc_param_layout *pl, float *params, struct dc_st_meta *meta,
                             struct dc_error *err) {
    struct dc_st_file f;
    dc_status rc = dc_st_read(path, &f, err);
    if (rc) return rc;
    rc = dc_checkpoint_gather(&f, path, pl, "", params, err);
    if (!rc && meta) {
        *meta = f.meta;
        memset(&f.meta, 0, sizeof f.meta);
    }
    dc_st_free(&f);
    return rc;
}
