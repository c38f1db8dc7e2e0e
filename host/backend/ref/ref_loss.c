/* The ref backend's loss ops: thin wrappers of the double-precision oracles in
 * ref_homo.c (which stay the reference the OpenCL kernels are tested against). A
 * forward narrows the oracle's double loss to the 1-float view; a backward passes
 * dloss through. Oracle failures (bad labels) become DC_ERR_ARG with a message. */
#include "backend/ref/ref_homo.h"
#include "backend/ref/ref_internal.h"

/* An oracle's status as a backend error. */
static dc_status oracle_status(struct dc_backend *be, dc_status rc, const char *op) {
    if (rc == DC_OK) return DC_OK;
    if (rc == DC_ERR_NOMEM) return dc_set_error(be->err, rc, "ref %s: out of memory", op);
    return dc_set_error(be->err, rc, "ref %s: invalid arguments or labels", op);
}

static dc_status write_loss(struct dc_backend *be, dc_view loss, dc_status rc, double value, const char *op) {
    if (rc != DC_OK) return oracle_status(be, rc, op);
    ref_ptr(loss)[0] = (float)value;
    return DC_OK;
}

dc_status ref_loss_decouple_fwd(struct dc_backend *be, dc_view loss, dc_view s, dc_view c, size_t B, size_t L) {
    double v = 0.0;
    dc_status rc = ref_decouple_fwd(&v, ref_ptr(s), ref_ptr(c), B, L);
    return write_loss(be, loss, rc, v, "decouple_fwd");
}

dc_status ref_loss_decouple_bwd(struct dc_backend *be, dc_view ds, dc_view dc, dc_view s, dc_view c, size_t B, size_t L,
                                float dloss) {
    return oracle_status(be, ref_decouple_bwd(ref_ptr(ds), ref_ptr(dc), dloss, ref_ptr(s), ref_ptr(c), B, L),
                         "decouple_bwd");
}

dc_status ref_loss_homo_stats_fwd(struct dc_backend *be, dc_view loss, dc_view zl, dc_view za, dc_view zv, size_t B,
                                  size_t p) {
    double v = 0.0;
    dc_status rc = ref_homo_stats_fwd(&v, ref_ptr(zl), ref_ptr(za), ref_ptr(zv), B, p);
    return write_loss(be, loss, rc, v, "homo_stats_fwd");
}

dc_status ref_loss_homo_stats_bwd(struct dc_backend *be, dc_view dzl, dc_view dza, dc_view dzv, dc_view zl, dc_view za,
                                  dc_view zv, size_t B, size_t p, float dloss) {
    dc_status rc = ref_homo_stats_bwd(ref_ptr(dzl), ref_ptr(dza), ref_ptr(dzv), dloss, ref_ptr(zl), ref_ptr(za),
                                      ref_ptr(zv), B, p);
    return oracle_status(be, rc, "homo_stats_bwd");
}

dc_status ref_loss_homo_mmd_fwd(struct dc_backend *be, dc_view loss, dc_view zl, dc_view za, dc_view zv, size_t B,
                                size_t p, float bandwidth) {
    double v = 0.0;
    dc_status rc = ref_homo_mmd_fwd(&v, ref_ptr(zl), ref_ptr(za), ref_ptr(zv), B, p, bandwidth);
    return write_loss(be, loss, rc, v, "homo_mmd_fwd");
}

dc_status ref_loss_homo_mmd_bwd(struct dc_backend *be, dc_view dzl, dc_view dza, dc_view dzv, dc_view zl, dc_view za,
                                dc_view zv, size_t B, size_t p, float bandwidth, float dloss) {
    dc_status rc = ref_homo_mmd_bwd(ref_ptr(dzl), ref_ptr(dza), ref_ptr(dzv), dloss, ref_ptr(zl), ref_ptr(za),
                                    ref_ptr(zv), B, p, bandwidth);
    return oracle_status(be, rc, "homo_mmd_bwd");
}

static enum dc_ref_task_loss oracle_kind(enum dc_task_loss_kind k) {
    return k == DC_TASK_MSE ? DC_REF_TASK_LOSS_MSE : k == DC_TASK_L1 ? DC_REF_TASK_LOSS_L1 : DC_REF_TASK_LOSS_SMOOTH_L1;
}

dc_status ref_loss_task_fwd(struct dc_backend *be, dc_view loss, dc_view out, dc_view labels, dc_view class_w, size_t B,
                            size_t O, const struct dc_task_loss *t) {
    double v = 0.0;
    dc_status rc = t->kind == DC_TASK_CE ? ref_task_ce_fwd(&v, ref_ptr(out), ref_ptr(labels), ref_ptr(class_w), B, O)
                                         : ref_task_regression_fwd(&v, ref_ptr(out), ref_ptr(labels), B,
                                                                   oracle_kind(t->kind), t->beta, t->binary_weight);
    return write_loss(be, loss, rc, v, "task_loss_fwd");
}

dc_status ref_loss_task_bwd(struct dc_backend *be, dc_view dout, dc_view out, dc_view labels, dc_view class_w, size_t B,
                            size_t O, const struct dc_task_loss *t, float dloss) {
    dc_status rc = t->kind == DC_TASK_CE
                       ? ref_task_ce_bwd(ref_ptr(dout), dloss, ref_ptr(out), ref_ptr(labels), ref_ptr(class_w), B, O)
                       : ref_task_regression_bwd(ref_ptr(dout), dloss, ref_ptr(out), ref_ptr(labels), B,
                                                 oracle_kind(t->kind), t->beta, t->binary_weight);
    return oracle_status(be, rc, "task_loss_bwd");
}

dc_status ref_loss_supcon_fwd(struct dc_backend *be, dc_view loss, dc_view f, dc_view labels, size_t B, size_t q,
                              bool classification, float temperature) {
    double v = 0.0;
    dc_status rc = ref_supcon_fwd(&v, ref_ptr(f), ref_ptr(labels), B, q, classification, temperature);
    return write_loss(be, loss, rc, v, "supcon_fwd");
}

dc_status ref_loss_supcon_bwd(struct dc_backend *be, dc_view df, dc_view f, dc_view labels, size_t B, size_t q,
                              bool classification, float temperature, float dloss) {
    dc_status rc = ref_supcon_bwd(ref_ptr(df), dloss, ref_ptr(f), ref_ptr(labels), B, q, classification, temperature);
    return oracle_status(be, rc, "supcon_bwd");
}
