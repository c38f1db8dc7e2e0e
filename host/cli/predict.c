/* `decocl [--device D] predict CHECKPOINT --data FILE --out preds.csv [--split test]`
 * (issue 5 item 4): one row per sample of the split: id (the dataset's id, else the
 * sample index), prediction (regression: the output; classification: the argmax class,
 * then one logit column per class), label. Written atomically. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "train/train.h"

#define PREDICT_USAGE "usage: decocl [--device D] predict CHECKPOINT --data FILE --out preds.csv [--split test]"

static int usage_fail(const char *fmt, const char *arg) {
    fprintf(stderr, "decocl: predict: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s\n", PREDICT_USAGE);
    return 2;
}

/* RFC 4180 quoting when needed. */
static void put_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; ++s) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static dc_status write_preds(const char *path, const struct dc_split *s, const float *pred, size_t O,
                             struct dc_error *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    fputs("id,prediction", f);
    if (O > 1)
        for (size_t k = 0; k < O; ++k) fprintf(f, ",logit_%zu", k);
    fputs(",label\n", f);
    for (size_t i = 0; i < s->n; ++i) {
        if (s->ids) put_field(f, s->ids[i]);
        else fprintf(f, "%zu", i);
        const float *p = pred + i * O;
        if (O == 1) fprintf(f, ",%.9g", (double)p[0]);
        else {
            size_t best = 0;
            for (size_t k = 1; k < O; ++k)
                if (p[k] > p[best]) best = k;
            fprintf(f, ",%zu", best);
            for (size_t k = 0; k < O; ++k) fprintf(f, ",%.9g", (double)p[k]);
        }
        fprintf(f, ",%.9g\n", (double)s->labels[i]);
    }
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    }
    dc_status st = dc_write_file_atomic(path, buf, len, err);
    free(buf);
    return st;
}

int dc_cmd_predict(int argc, char **argv, const struct dc_backend_options *be) {
    const char *ckpt = NULL, *data = NULL, *out = NULL, *split = "test";
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s\n", PREDICT_USAGE);
            return 0;
        } else if (!strcmp(a, "--data") || !strcmp(a, "--out") || !strcmp(a, "--split")) {
            if (i + 1 >= argc) return usage_fail("option %s needs a value", a);
            *(!strcmp(a, "--data") ? &data : !strcmp(a, "--out") ? &out : &split) = argv[++i];
        } else if (a[0] == '-' && a[1]) return usage_fail("unknown predict option '%s'", a);
        else if (ckpt) return usage_fail("unexpected argument '%s'", a);
        else ckpt = a;
    }
    if (!ckpt) return usage_fail("%s", "predict needs a CHECKPOINT");
    if (!data) return usage_fail("%s", "predict needs --data FILE");
    if (!out) return usage_fail("%s", "predict needs --out preds.csv");
    int sid = dc_eval_split_id(split);
    if (sid < 0) return usage_fail("--split must be train, valid or test, not '%s'", split);
    struct dc_eval_job *j = calloc(1, sizeof *j);
    if (!j) return 1;
    struct dc_error err = {0};
    float *pred = NULL;
    double loss;
    dc_status st = dc_eval_job_open(j, ckpt, data, be, &err);
    if (st == DC_OK)
        st = dc_eval_split(&j->mc, j->params, &j->ds->split[sid], j->ck.cfg.batch_size, j->kind, &pred, &loss, NULL,
                           &err);
    if (st == DC_OK)
        st = write_preds(out, &j->ds->split[sid], pred, dc_model_config_out_dim(&j->ck.cfg), &err);
    int rc = 0;
    if (st != DC_OK) {
        fprintf(stderr, "decocl: predict: %s\n", err.msg[0] ? err.msg : dc_status_str(st));
        rc = st == DC_ERR_ARG ? 2 : 1;
    } else {
        printf("wrote %zu predictions to %s\n", j->ds->split[sid].n, out);
    }
    free(pred);
    dc_eval_job_close(j);
    free(j);
    return rc;
}
