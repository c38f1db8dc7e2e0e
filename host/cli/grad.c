/* `decocl [--device D] grad CONFIG --weights W.safetensors --batch B.npz [--out G.safetensors]`
 * (issue 4 item 4): one forward and backward of the whole model with every dropout
 * disabled, for comparison with the authors' PyTorch code. Prints one JSON object:
 *   {"output": [[...] x B], "loss": {"task", "dec", "hete", "homo", "ct", "total"}, "grad_norm": x}
 * With --out it also writes `output` (B, O) and `grad.<name>` for every parameter, atomically.
 * CONFIG is a reference JSON config; feature sizes and lengths come from the batch. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "model/checkpoint.h"
#include "model/decalign.h"

#define GRAD_USAGE "usage: decocl [--device D] grad CONFIG --weights W.safetensors --batch B.npz [--out G.safetensors]"

static int usage_fail(const char *fmt, const char *arg) {
    fprintf(stderr, "decocl: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s\n", GRAD_USAGE);
    return 2;
}

struct grad_job {
    struct dc_model_config cfg;
    struct dc_decalign_batch batch;
    struct dc_param_layout pl;
    float *params_h, *grads_h;
    struct dc_backend *be;
    struct dc_mem *params, *grads, *norm;
    struct dc_decalign *model;
};

static void job_free(struct grad_job *j) {
    dc_decalign_free(j->model);
    if (j->be) {
        if (j->params) dc_mem_free(j->be, j->params);
        if (j->grads) dc_mem_free(j->be, j->grads);
        if (j->norm) dc_mem_free(j->be, j->norm);
    }
    dc_backend_close(j->be);
    free(j->params_h);
    free(j->grads_h);
    dc_param_layout_free(&j->pl);
    dc_decalign_batch_free(&j->batch);
}

/* Labels of a classification batch must be class ids; balanced weights come from them
 * (the grad tool has no training split: the batch stands in for it). */
static dc_status class_weights(const struct grad_job *j, float *w, bool *use, struct dc_error *err) {
    const struct dc_model_config *c = &j->cfg;
    *use = false;
    if (!c->classification) return DC_OK;
    size_t C = c->num_classes, B = j->batch.B;
    double count[DC_CFG_MAX_CLASSES] = {0};
    for (size_t b = 0; b < B; ++b) {
        float y = j->batch.labels[b];
        if (!(y >= 0 && y < (float)C) || y != floorf(y))
            return dc_set_error(err, DC_ERR_ARG, "batch label %zu is %g, not a class id in [0, %zu)", b, (double)y, C);
        count[(size_t)y] += 1;
    }
    if (c->class_weight == DC_CFG_CLASS_WEIGHT_EXPLICIT) {
        memcpy(w, c->class_weights, C * sizeof(float));
        *use = true;
    } else if (c->class_weight == DC_CFG_CLASS_WEIGHT_BALANCED) {
        for (size_t k = 0; k < C; ++k) w[k] = (float)((double)B / (count[k] > 1 ? count[k] : 1) / (double)C);
        *use = true;
    }
    return DC_OK;
}

static int run(struct grad_job *j, const char *config, const char *weights, const char *batch, const char *out,
               const struct dc_backend_options *bopt) {
    struct dc_error err = {0};
    dc_status st = dc_model_config_load(&j->cfg, config, &err);
    if (st != DC_OK) goto fail;
    for (size_t i = 0; i < j->cfg.nignored; ++i)
        fprintf(stderr, "decocl: grad: config key '%s' is ignored\n", j->cfg.ignored[i]);
    if ((st = dc_decalign_batch_load(batch, &j->batch, &err)) != DC_OK) goto fail;
    struct dc_model_dims dims;
    dc_decalign_dims(&j->cfg, j->batch.D, &dims);
    if ((st = dc_param_layout_init(&j->pl, &dims, &err)) != DC_OK) goto fail;
    j->params_h = calloc(j->pl.total, sizeof(float));
    j->grads_h = calloc(j->pl.total, sizeof(float));
    if (!j->params_h || !j->grads_h) {
        st = dc_set_error(&err, DC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = dc_checkpoint_load(weights, &j->pl, j->params_h, NULL, &err)) != DC_OK) goto fail;
    float cw[DC_CFG_MAX_CLASSES];
    bool use_cw;
    if ((st = class_weights(j, cw, &use_cw, &err)) != DC_OK) goto fail;

    if ((st = dc_backend_open(&j->be, bopt, &err)) != DC_OK) goto fail;
    st = dc_mem_alloc(j->be, j->pl.total, &j->params);
    if (st == DC_OK) st = dc_mem_alloc(j->be, j->pl.total, &j->grads);
    if (st == DC_OK) st = dc_mem_alloc(j->be, 1, &j->norm);
    dc_view pv = dc_view_of(j->params, 0, j->pl.total), gv = dc_view_of(j->grads, 0, j->pl.total);
    if (st == DC_OK) st = dc_upload(j->be, pv, j->params_h);
    if (st == DC_OK) st = dc_fill(j->be, gv, 0.0f);
    if (st != DC_OK) {
        dc_set_error(&err, st, "device memory: %s", dc_backend_error(j->be)->msg);
        goto fail;
    }
    if ((st = dc_decalign_create(j->be, &j->cfg, &j->pl, j->batch.B, j->batch.T, &j->model, &err)) != DC_OK)
        goto fail;
    if (use_cw) dc_decalign_set_class_weights(j->model, cw);
    struct dc_decalign_losses loss;
    const float *const xs[3] = {j->batch.x[0], j->batch.x[1], j->batch.x[2]};
    if ((st = dc_decalign_forward(j->model, j->params, xs, j->batch.labels, false, 0, 0, &loss, &err)) != DC_OK)
        goto fail;
    if ((st = dc_decalign_backward(j->model, j->grads, j->params, &err)) != DC_OK) goto fail;
    float gnorm = 0;
    st = dc_norm2(j->be, dc_view_of(j->norm, 0, 1), gv, j->pl.total);
    if (st == DC_OK) st = dc_download(j->be, &gnorm, dc_view_of(j->norm, 0, 1));
    if (st == DC_OK && out) st = dc_download(j->be, j->grads_h, gv);
    if (st != DC_OK) {
        dc_set_error(&err, st, "gradient norm: %s", dc_backend_error(j->be)->msg);
        goto fail;
    }
    const float *o = dc_decalign_output(j->model);
    size_t B = j->batch.B, O = dc_decalign_out_dim(j->model);
    if (out) {
        struct dc_st_entry extra = {.name = "output", .ndim = 2, .shape = {B, O}, .data = o};
        if ((st = dc_checkpoint_write(out, &j->pl, j->grads_h, "grad.", &extra, 1, NULL, 0, &err)) != DC_OK) goto fail;
    }
    json_t *root = json_object(), *outs = json_array(), *lj = json_object();
    for (size_t b = 0; b < B; ++b) {
        json_t *row = json_array();
        for (size_t k = 0; k < O; ++k) json_array_append_new(row, json_real((double)o[b * O + k]));
        json_array_append_new(outs, row);
    }
    json_object_set_new(root, "output", outs);
    const char *names[6] = {"task", "dec", "hete", "homo", "ct", "total"};
    const double vals[6] = {loss.task, loss.dec, loss.hete, loss.homo, loss.ct, loss.total};
    for (size_t k = 0; k < 6; ++k)
        json_object_set_new(lj, names[k], isfinite(vals[k]) ? json_real(vals[k]) : json_null());
    json_object_set_new(root, "loss", lj);
    json_object_set_new(root, "grad_norm", isfinite(gnorm) ? json_real((double)gnorm) : json_null());
    char *text = json_dumps(root, JSON_REAL_PRECISION(9));
    json_decref(root);
    if (!text) {
        st = dc_set_error(&err, DC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    fputs(text, stdout);
    fputc('\n', stdout);
    free(text);
    return fflush(stdout) == 0 ? 0 : 1;
fail:
    fprintf(stderr, "decocl: grad: %s\n", err.msg[0] ? err.msg : dc_status_str(st));
    return 1;
}

int dc_cmd_grad(int argc, char **argv, const struct dc_backend_options *be) {
    const char *config = NULL, *weights = NULL, *batch = NULL, *out = NULL;
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--weights") ? &weights
                            : !strcmp(a, "--batch") ? &batch
                            : !strcmp(a, "--out")   ? &out
                                                    : NULL;
        if (slot) {
            if (i + 1 >= argc) return usage_fail("option %s needs a value", a);
            if (*slot) return usage_fail("option %s given twice", a);
            *slot = argv[++i];
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s\n", GRAD_USAGE);
            return 0;
        } else if (a[0] == '-' && a[1]) return usage_fail("unknown grad option '%s'", a);
        else if (config) return usage_fail("unexpected argument '%s'", a);
        else config = a;
    }
    if (!config) return usage_fail("%s", "grad needs a CONFIG");
    if (!weights) return usage_fail("%s", "grad needs --weights W.safetensors");
    if (!batch) return usage_fail("%s", "grad needs --batch B.npz");
    struct grad_job *j = calloc(1, sizeof *j);
    if (!j) {
        fprintf(stderr, "decocl: grad: out of memory\n");
        return 1;
    }
    int rc = run(j, config, weights, batch, out, be);
    job_free(j);
    free(j);
    return rc;
}
