/* `decocl [--device D] eval CHECKPOINT [--data FILE] [--split test] [--json]` (issue 5 item 4):
 * the metrics of spec section 8 for the dataset kind on one split, with the training
 * standardisation statistics stored in the checkpoint, plus the confusion matrix
 * (rows true, columns predicted). --json prints {"split", "metrics", "confusion"}. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "train/train.h"

#define EVAL_USAGE "usage: decocl [--device D] eval CHECKPOINT [--data FILE] [--split train|valid|test] [--json]"

static int usage_fail(const char *fmt, const char *arg) {
    fprintf(stderr, "decocl: eval: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s\n", EVAL_USAGE);
    return 2;
}

static int print_json(const char *split, const struct dc_metrics *m) {
    json_t *root = json_object(), *mj = json_object(), *cj = json_array();
    json_object_set_new(root, "split", json_string(split));
    for (int i = 0; i < m->count; ++i) json_object_set_new(mj, m->names[i], json_real(m->values[i]));
    json_object_set_new(root, "metrics", mj);
    for (int r = 0; r < m->n_classes; ++r) {
        json_t *row = json_array();
        for (int c = 0; c < m->n_classes; ++c) json_array_append_new(row, json_integer((json_int_t)m->confusion[r][c]));
        json_array_append_new(cj, row);
    }
    json_object_set_new(root, "confusion", cj);
    char *t = json_dumps(root, JSON_REAL_PRECISION(10));
    json_decref(root);
    if (!t) return 1;
    puts(t);
    free(t);
    return 0;
}

int dc_cmd_eval(int argc, char **argv, const struct dc_backend_options *be) {
    const char *ckpt = NULL, *data = NULL, *split = "test";
    bool json = false;
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s\n", EVAL_USAGE);
            return 0;
        } else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--data") || !strcmp(a, "--split")) {
            if (i + 1 >= argc) return usage_fail("option %s needs a value", a);
            *(!strcmp(a, "--data") ? &data : &split) = argv[++i];
        } else if (a[0] == '-' && a[1]) return usage_fail("unknown eval option '%s'", a);
        else if (ckpt) return usage_fail("unexpected argument '%s'", a);
        else ckpt = a;
    }
    if (!ckpt) return usage_fail("%s", "eval needs a CHECKPOINT");
    int sid = dc_eval_split_id(split);
    if (sid < 0) return usage_fail("--split must be train, valid or test, not '%s'", split);
    struct dc_eval_job *j = calloc(1, sizeof *j);
    if (!j) return 1;
    struct dc_error err = {0};
    struct dc_metrics m;
    float *pred = NULL;
    double loss = 0;
    int rc = 0;
    dc_status st = dc_eval_job_open(j, ckpt, data, be, &err);
    if (st == DC_OK)
        st = dc_eval_split(&j->mc, j->params, &j->ds->split[sid], j->ck.cfg.batch_size, j->kind, &pred, &loss, &m,
                           &err);
    if (st != DC_OK) {
        fprintf(stderr, "decocl: eval: %s\n", err.msg[0] ? err.msg : dc_status_str(st));
        rc = st == DC_ERR_ARG ? 2 : 1;
    } else if (json) {
        rc = print_json(split, &m);
    } else {
        printf("%s split of %s (%s, %zu samples)\n", split, j->ds->source, dc_dataset_kind_name(j->kind),
               j->ds->split[sid].n);
        for (int i = 0; i < m.count; ++i) printf("  %-14s %.4f\n", m.names[i], m.values[i]);
        printf("  %-14s %.4f\n", "loss", dc_round_np(loss, 4));
        printf("confusion (rows true, columns predicted):\n");
        for (int r = 0; r < m.n_classes; ++r) {
            printf(" ");
            for (int c = 0; c < m.n_classes; ++c) printf(" %8lld", (long long)m.confusion[r][c]);
            printf("\n");
        }
    }
    free(pred);
    dc_eval_job_close(j);
    free(j);
    if (rc == 0 && fflush(stdout) != 0) rc = 1;
    return rc;
}
