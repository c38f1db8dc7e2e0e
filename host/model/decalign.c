/* The DecAlign model composed from backend ops (see decalign.h; shared/spec/decalign-model.md).
 *
 * Dimension letters: B batch, T_m / T'_m input / projected length, D_m input size, d
 * d_model, p pde_dim, O output size, Tk context length of a transformer. Modality order
 * l, a, v. Every activation is (B, T, d) row-major. */
#include "model/decalign.h"

#include <archive.h>
#include <archive_entry.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/npy.h"
#include "model/transformer.h"

/* ---------------------------------------------------------------- batch files ---- */

static const char *const BATCH_KEYS[3] = {"text", "audio", "vision"};

struct ar_src {
    struct archive *a;
};

static dc_status ar_read(void *ctx, void *buf, size_t n, size_t *got, struct dc_error *err) {
    struct ar_src *s = ctx;
    la_ssize_t k = archive_read_data(s->a, buf, n);
    if (k < 0)
        return dc_set_error(err, DC_ERR_FORMAT, "corrupt archive: %s",
                            archive_error_string(s->a) ? archive_error_string(s->a) : "unknown error");
    *got = (size_t)k;
    return DC_OK;
}

void dc_decalign_batch_free(struct dc_decalign_batch *b) {
    for (size_t m = 0; m < 3; ++m) free(b->x[m]);
    free(b->labels);
    memset(b, 0, sizeof *b);
}

/* The .npz of the grad tool: members text.npy, audio.npy, vision.npy, labels.npy (a flat
 * npz, not the <split>/<key>.npy dataset layout, so it is read here member by member). */
dc_status dc_decalign_batch_load(const char *path, struct dc_decalign_batch *b, struct dc_error *err) {
    memset(b, 0, sizeof *b);
    struct archive *a = archive_read_new();
    if (!a) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    archive_read_support_format_zip(a);
    struct dc_pk_doc *doc = dc_pk_doc_new();
    struct dc_pk_value *arr[4] = {NULL, NULL, NULL, NULL};
    dc_status st = DC_OK;
    if (!doc) st = dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    else if (archive_read_open_filename(a, path, 1 << 20) != ARCHIVE_OK)
        st = dc_set_error(err, DC_ERR_IO, "%s: cannot read as a .npz: %s", path,
                          archive_error_string(a) ? archive_error_string(a) : "unknown error");
    struct archive_entry *e;
    while (st == DC_OK) {
        int rc = archive_read_next_header(a, &e);
        if (rc == ARCHIVE_EOF) break;
        if (rc < ARCHIVE_WARN) {
            st = dc_set_error(err, DC_ERR_FORMAT, "%s: corrupt .npz: %s", path,
                              archive_error_string(a) ? archive_error_string(a) : "unknown error");
            break;
        }
        const char *name = archive_entry_pathname(e);
        int slot = -1;
        for (int k = 0; k < 4 && name; ++k) {
            char want[32];
            snprintf(want, sizeof want, "%s.npy", k < 3 ? BATCH_KEYS[k] : "labels");
            if (strcmp(name, want) == 0) slot = k;
        }
        if (slot < 0) continue; /* other members are not ours */
        struct ar_src src = {a};
        struct dc_stream s = {ar_read, &src, archive_entry_size_is_set(e) ? (int64_t)archive_entry_size(e) : -1, ""};
        snprintf(s.where, sizeof s.where, "%s: member %s", path, name);
        struct dc_pk_options opt = {.f32_min_ndim = 2};
        st = dc_npy_read(&s, &opt, doc, &arr[slot], err);
    }
    for (int k = 0; k < 4 && st == DC_OK; ++k) {
        const char *key = k < 3 ? BATCH_KEYS[k] : "labels";
        const struct dc_pk_value *v = arr[k];
        if (!v) {
            st = dc_set_error(err, DC_ERR_FORMAT, "%s: no '%s' array (a batch holds text, audio, vision, labels)",
                              path, key);
            break;
        }
        const struct dc_pk_array *ar = &v->u.arr;
        if (k < 3) {
            if (ar->ndim != 3 || ar->held != DC_DTYPE_F32 || ar->count == 0) {
                st = dc_set_error(err, DC_ERR_FORMAT, "%s: '%s' must be a float (B, T, D) array", path, key);
                break;
            }
            if (k > 0 && ar->shape[0] != b->B) {
                st = dc_set_error(err, DC_ERR_FORMAT, "%s: '%s' has %zu samples, text has %zu", path, key,
                                  ar->shape[0], b->B);
                break;
            }
            b->B = ar->shape[0];
            b->T[k] = ar->shape[1];
            b->D[k] = ar->shape[2];
            b->x[k] = malloc(ar->count * sizeof(float));
            if (!b->x[k]) st = dc_set_error(err, DC_ERR_NOMEM, "out of memory");
            else memcpy(b->x[k], ar->data, ar->count * sizeof(float));
        } else {
            bool numeric = dc_dtype_is_float(ar->held) || dc_dtype_is_int(ar->held);
            if (!numeric || ar->count != b->B || ar->ndim > 2 || (ar->ndim == 2 && ar->shape[1] != 1)) {
                st = dc_set_error(err, DC_ERR_FORMAT, "%s: 'labels' must be a numeric (B,) array, B = %zu", path,
                                  b->B);
                break;
            }
            b->labels_integer = dc_dtype_is_int(ar->held);
            b->labels = malloc(b->B * sizeof(float));
            if (!b->labels) st = dc_set_error(err, DC_ERR_NOMEM, "out of memory");
            else dc_convert_to_f32(b->labels, ar->data, ar->held, b->B);
        }
    }
    archive_read_free(a);
    dc_pk_doc_free(doc);
    if (st != DC_OK) dc_decalign_batch_free(b);
    return st;
}

/* ---------------------------------------------------------------- the model ---- */

#define MAX_MEMS 160

/* Loss slots of the scalars buffer. */
enum { LS_TASK, LS_DEC_L, LS_DEC_A, LS_DEC_V, LS_HETE, LS_SEM, LS_MMD, LS_CT, LS_COUNT };

struct dc_decalign {
    struct dc_backend *be;
    struct dc_model_config cfg;
    const struct dc_param_layout *pl;
    size_t B, T[3], Tp[3], D[3], d, p, O, nact;
    dc_phase_fn phase_fn; /* bench step's timer, NULL normally */
    void *phase_ctx;
    bool act[3], skip[3];
    bool do_dec, do_hete, do_homo, do_ct;
    size_t nctx[3], ctx_mod[3][2], Tk[3];
    bool training;
    uint64_t seed, step;
    struct dc_mem *mems[MAX_MEMS];
    size_t nmems;
    /* device activations */
    dc_view xin[3], xdrop, convin[3], col[3], dcol[3], P[3], s[3], c[3], ps[3], cp[3];
    dc_view z1[3], r[3], rd[3], z[3], ctx[3], tfo[3], h[3], fin, find, out;
    /* device gradients */
    dc_view dP[3], ds[3], dcv[3], dtfo[3], dctx[3], dh[3], dcp[3], dz[3], drd[3], dr[3], dz1[3], dfin, dfind,
        dout;
    struct dc_tf_config tfc[3];
    struct dc_tf_tape *tape[3];
    struct dc_tf_layer *wl[3], *gl[3];
    /* the loss terms run on the device: each writes one slot of `scalars`, which also
     * holds the output, so the host reads the step's results in one download */
    dc_view scalars, lossv[LS_COUNT], labelsv, class_wv, hete_tape, dxp[3];
    float *scalars_h; /* LS_COUNT loss slots, then the output (B, O) */
    float *class_w;   /* host copy; uploaded at the next forward when class_w_dirty */
    bool class_w_dirty;
    struct dc_hete_opts hopt;
    struct dc_task_loss task;
    bool forward_done;
};

static const dc_view EMPTY = {NULL, 0, 0};

static dc_status alloc_view(struct dc_decalign *m, size_t n, dc_view *v) {
    if (n == 0) {
        *v = EMPTY;
        return DC_OK;
    }
    if (m->nmems == MAX_MEMS) return DC_ERR_NOMEM;
    struct dc_mem *mem;
    dc_status st = dc_mem_alloc(m->be, n, &mem);
    if (st != DC_OK) return st;
    m->mems[m->nmems++] = mem;
    *v = dc_view_of(mem, 0, n);
    return DC_OK;
}

/* Fails with the backend's message when it has one. */
static dc_status fail(struct dc_decalign *m, dc_status st, const char *what, struct dc_error *err) {
    struct dc_error *be_err = dc_backend_error(m->be);
    if (be_err && be_err->msg[0])
        return dc_set_error(err, st, "model: %s failed: %s (%s)", what, dc_status_str(st), be_err->msg);
    return dc_set_error(err, st, "model: %s failed: %s", what, dc_status_str(st));
}

#define CK(expr)                                                     \
    do {                                                             \
        dc_status rc_ = (expr);                                      \
        if (rc_ != DC_OK) return fail(m, rc_, #expr, err);           \
    } while (0)

static dc_view pview(const struct dc_param_layout *pl, struct dc_mem *flat, enum dc_param_id id) {
    const struct dc_param_desc *dsc = dc_param_get(pl, id);
    return dc_view_of(flat, dsc->offset, dsc->numel);
}

static const enum dc_param_id PROJ_ID[3] = {DC_PARAM_PROJ_L_W, DC_PARAM_PROJ_A_W, DC_PARAM_PROJ_V_W};
static const enum dc_param_id UNI_ID[3] = {DC_PARAM_ENC_UNI_L_W, DC_PARAM_ENC_UNI_A_W, DC_PARAM_ENC_UNI_V_W};
static const enum dc_param_id PDE0W_ID[3] = {DC_PARAM_PDE_L_NET0_W, DC_PARAM_PDE_A_NET0_W, DC_PARAM_PDE_V_NET0_W};
static const enum dc_param_id PDE0B_ID[3] = {DC_PARAM_PDE_L_NET0_B, DC_PARAM_PDE_A_NET0_B, DC_PARAM_PDE_V_NET0_B};
static const enum dc_param_id PDE3W_ID[3] = {DC_PARAM_PDE_L_NET3_W, DC_PARAM_PDE_A_NET3_W, DC_PARAM_PDE_V_NET3_W};
static const enum dc_param_id PDE3B_ID[3] = {DC_PARAM_PDE_L_NET3_B, DC_PARAM_PDE_A_NET3_B, DC_PARAM_PDE_V_NET3_B};
static const enum dc_stack_id STACK_ID[3] = {DC_STACK_TRANS_L, DC_STACK_TRANS_A, DC_STACK_TRANS_V};

/* Dropout call sites (fixed ids, so ref and OpenCL draw the same masks). The transformer
 * of modality m numbers its own sites from TF_SITE_BASE(m). */
enum { SITE_TEXT_INPUT = 1, SITE_PDE = 10, SITE_OUTPUT = 20 };
#define TF_SITE_BASE(mod) ((uint32_t)(mod + 1) << 16)

void dc_decalign_dims(const struct dc_model_config *cfg, const size_t feat[3], struct dc_model_dims *dims) {
    memset(dims, 0, sizeof *dims);
    dims->d = cfg->d_model;
    dims->heads = cfg->heads;
    dims->nlevels = cfg->nlevels;
    for (size_t i = 0; i < 3; ++i) {
        dims->feat[i] = feat[i];
        dims->kernel[i] = cfg->kernel[i];
    }
    dims->pde_dim = cfg->pde_dim;
    dims->out_dim = dc_model_config_out_dim(cfg);
}

void dc_decalign_free(struct dc_decalign *m) {
    if (!m) return;
    for (size_t i = 0; i < 3; ++i) {
        dc_tf_tape_free(m->be, m->tape[i]);
        free(m->wl[i]);
        free(m->gl[i]);
    }
    for (size_t i = 0; i < m->nmems; ++i) dc_mem_free(m->be, m->mems[i]);
    free(m->scalars_h);
    free(m->class_w);
    free(m);
}

static float *fzalloc(size_t n, bool *ok) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) *ok = false;
    return p;
}

dc_status dc_decalign_create(struct dc_backend *be, const struct dc_model_config *cfg,
                             const struct dc_param_layout *pl, size_t B, const size_t T[3], struct dc_decalign **out,
                             struct dc_error *err) {
    *out = NULL;
    if (cfg->use_sequence_mask)
        return dc_set_error(err, DC_ERR_UNSUPPORTED, "model: use_sequence_mask true is not supported yet");
    if (B == 0) return dc_set_error(err, DC_ERR_ARG, "model: empty batch");
    if (pl->dims.d != cfg->d_model || pl->dims.out_dim != dc_model_config_out_dim(cfg))
        return dc_set_error(err, DC_ERR_ARG, "model: the parameter layout does not match the config");
    struct dc_decalign *m = calloc(1, sizeof *m);
    if (!m) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    m->be = be;
    m->cfg = *cfg;
    m->pl = pl;
    m->B = B;
    m->d = cfg->d_model;
    m->p = pl->dims.pde_dim;
    m->O = pl->dims.out_dim;
    for (size_t i = 0; i < 3; ++i) {
        m->act[i] = cfg->active[i];
        m->nact += m->act[i];
        m->T[i] = T[i];
        m->D[i] = pl->dims.feat[i];
        m->skip[i] = m->D[i] == m->d;
        size_t k = pl->dims.kernel[i];
        if (m->act[i] && !m->skip[i] && T[i] < k) {
            dc_decalign_free(m);
            return dc_set_error(err, DC_ERR_ARG, "model: %s length %zu is shorter than its conv kernel %zu",
                                BATCH_KEYS[i], T[i], k);
        }
        m->Tp[i] = m->skip[i] ? T[i] : T[i] - k + 1;
    }
    m->do_dec = cfg->dec_loss_weight != 0 && m->nact > 0;
    m->do_hete = cfg->alpha != 0 && m->nact == 3;
    m->do_homo = cfg->beta != 0 && m->nact == 3;
    m->do_ct = cfg->ct_weight != 0;
    m->task = (struct dc_task_loss){
        .kind = cfg->classification                         ? DC_TASK_CE
                : cfg->task_loss == DC_CFG_TASK_LOSS_MSE ? DC_TASK_MSE
                : cfg->task_loss == DC_CFG_TASK_LOSS_L1  ? DC_TASK_L1
                                                         : DC_TASK_SMOOTH_L1,
        .beta = (float)cfg->smooth_l1_beta,
        .binary_weight = (float)cfg->binary_task_weight};
    m->hopt = (struct dc_hete_opts){.k = cfg->num_prototypes,
                                    .em_iters = cfg->gmm_em_iters,
                                    .var_floor = cfg->gmm_var_floor,
                                    .lambda_ot = cfg->lambda_ot,
                                    .ot_iters = cfg->ot_num_iters,
                                    .reduction = cfg->hetero_sum ? DC_HETE_REDUCTION_SUM : DC_HETE_REDUCTION_MEAN,
                                    .mahalanobis = cfg->local_proto_mahalanobis};
    const size_t d = m->d, p = m->p;
    dc_status st = DC_OK;
    bool ok = true;
    for (size_t i = 0; i < 3 && st == DC_OK; ++i) {
        if (!m->act[i]) continue;
        /* context: the other active modalities' s, concatenated along time in l, a, v order */
        if (cfg->use_cross_modal_attention)
            for (size_t o = 0; o < 3; ++o)
                if (o != i && m->act[o]) {
                    m->ctx_mod[i][m->nctx[i]++] = o;
                    m->Tk[i] += m->Tp[o];
                }
        size_t k = pl->dims.kernel[i], ntp = B * m->Tp[i] * d;
        if (st == DC_OK) st = alloc_view(m, B * T[i] * m->D[i], &m->xin[i]);
        if (st == DC_OK && i == 0 && cfg->text_dropout > 0) st = alloc_view(m, B * T[i] * m->D[i], &m->xdrop);
        if (!m->skip[i]) {
            if (st == DC_OK && k > 1) st = alloc_view(m, B * m->Tp[i] * m->D[i] * k, &m->col[i]);
            if (st == DC_OK && k > 1) st = alloc_view(m, B * m->Tp[i] * m->D[i] * k, &m->dcol[i]);
            if (st == DC_OK) st = alloc_view(m, ntp, &m->P[i]);
            if (st == DC_OK) st = alloc_view(m, ntp, &m->dP[i]);
        }
        dc_view *vs[] = {&m->s[i], &m->c[i], &m->tfo[i], &m->ds[i], &m->dcv[i], &m->dtfo[i]};
        for (size_t j = 0; j < sizeof vs / sizeof vs[0] && st == DC_OK; ++j) st = alloc_view(m, ntp, vs[j]);
        dc_view *vb[] = {&m->ps[i], &m->cp[i], &m->h[i], &m->dh[i], &m->dcp[i]};
        for (size_t j = 0; j < sizeof vb / sizeof vb[0] && st == DC_OK; ++j) st = alloc_view(m, B * d, vb[j]);
        if (m->Tk[i] && st == DC_OK) st = alloc_view(m, B * m->Tk[i] * d, &m->ctx[i]);
        if (m->Tk[i] && st == DC_OK) st = alloc_view(m, B * m->Tk[i] * d, &m->dctx[i]);
        if (m->do_homo) {
            dc_view *vh[] = {&m->z1[i], &m->r[i], &m->rd[i], &m->drd[i], &m->dr[i], &m->dz1[i]};
            for (size_t j = 0; j < sizeof vh / sizeof vh[0] && st == DC_OK; ++j) st = alloc_view(m, B * d, vh[j]);
            if (st == DC_OK) st = alloc_view(m, B * p, &m->z[i]);
            if (st == DC_OK) st = alloc_view(m, B * p, &m->dz[i]);
        }
        if (m->do_hete && st == DC_OK) st = alloc_view(m, B * d, &m->dxp[i]);
        m->tfc[i] = (struct dc_tf_config){.B = B,
                                          .Tq = m->Tp[i],
                                          .Tk = m->Tk[i],
                                          .d = d,
                                          .heads = cfg->heads,
                                          .layers = cfg->nlevels,
                                          .causal = cfg->attn_mask && m->Tk[i] == 0,
                                          .training = false,
                                          .attn_dropout = (float)(i == 0   ? cfg->attn_dropout
                                                                  : i == 1 ? cfg->attn_dropout_a
                                                                           : cfg->attn_dropout_v),
                                          .relu_dropout = (float)cfg->relu_dropout,
                                          .res_dropout = (float)cfg->res_dropout,
                                          .embed_dropout = (float)cfg->embed_dropout,
                                          .site_base = TF_SITE_BASE(i)};
        if (st == DC_OK) {
            st = dc_tf_tape_create(be, &m->tfc[i], &m->tape[i]);
            if (st != DC_OK) {
                st = fail(m, st, "transformer tape", err);
                dc_decalign_free(m);
                return st;
            }
        }
        m->wl[i] = calloc(cfg->nlevels, sizeof(struct dc_tf_layer));
        m->gl[i] = calloc(cfg->nlevels, sizeof(struct dc_tf_layer));
        if (!m->wl[i] || !m->gl[i]) ok = false;
    }
    if (st == DC_OK) st = alloc_view(m, B * 6 * d, &m->fin);
    if (st == DC_OK) st = alloc_view(m, B * 6 * d, &m->dfin);
    if (st == DC_OK && cfg->output_dropout > 0) st = alloc_view(m, B * 6 * d, &m->find);
    if (st == DC_OK && cfg->output_dropout > 0) st = alloc_view(m, B * 6 * d, &m->dfind);
    if (st == DC_OK) st = alloc_view(m, LS_COUNT + B * m->O, &m->scalars);
    if (st == DC_OK) {
        for (size_t j = 0; j < LS_COUNT; ++j) m->lossv[j] = dc_view_of(m->scalars.mem, j, 1);
        m->out = dc_view_of(m->scalars.mem, LS_COUNT, B * m->O);
    }
    if (st == DC_OK) st = alloc_view(m, B * m->O, &m->dout);
    if (st == DC_OK) st = alloc_view(m, B, &m->labelsv);
    if (st == DC_OK && cfg->classification) st = alloc_view(m, m->O, &m->class_wv);
    if (st == DC_OK && m->do_hete) st = alloc_view(m, dc_hete_tape_len(B, d, &m->hopt), &m->hete_tape);
    m->scalars_h = fzalloc(LS_COUNT + B * m->O, &ok);
    if (st != DC_OK || !ok) {
        st = st != DC_OK ? fail(m, st, "allocation", err) : dc_set_error(err, DC_ERR_NOMEM, "out of memory");
        dc_decalign_free(m);
        return st;
    }
    *out = m;
    return DC_OK;
}

void dc_decalign_active(const struct dc_decalign *m, bool *active) {
    const struct dc_param_layout *pl = m->pl;
    for (size_t i = 0; i < pl->count; ++i) active[i] = true;
    for (size_t i = 0; i < 3; ++i) {
        if (m->skip[i] || !m->act[i]) active[dc_param_index(pl, dc_param_get(pl, PROJ_ID[i])->name)] = false;
        if (!m->act[i]) {
            active[dc_param_index(pl, dc_param_get(pl, UNI_ID[i])->name)] = false;
            size_t first = pl->first_layer[STACK_ID[i]];
            for (size_t j = 0; j < pl->dims.nlevels * DC_LAYER_PARAM_COUNT; ++j) active[first + j] = false;
        }
        if (!m->do_homo) {
            const enum dc_param_id ids[4] = {PDE0W_ID[i], PDE0B_ID[i], PDE3W_ID[i], PDE3B_ID[i]};
            for (size_t j = 0; j < 4; ++j) active[dc_param_index(pl, dc_param_get(pl, ids[j])->name)] = false;
        }
    }
    if (m->nact == 0) active[dc_param_index(pl, dc_param_get(pl, DC_PARAM_ENC_COM_W)->name)] = false;
}

void dc_decalign_set_class_weights(struct dc_decalign *m, const float *w) {
    free(m->class_w);
    m->class_w = NULL;
    m->class_w_dirty = true;
    if (!w || !m->cfg.classification) return;
    m->class_w = malloc(m->O * sizeof(float));
    if (m->class_w) memcpy(m->class_w, w, m->O * sizeof(float));
}

const float *dc_decalign_output(const struct dc_decalign *m) { return m->scalars_h + LS_COUNT; }
size_t dc_decalign_out_dim(const struct dc_decalign *m) { return m->O; }

const char *dc_phase_name(enum dc_phase p) {
    static const char *const names[DC_PHASE_COUNT] = {"encoders", "hete", "homo", "transformers", "head", "backward"};
    return (unsigned)p < DC_PHASE_COUNT ? names[p] : "?";
}

void dc_decalign_set_phase_hook(struct dc_decalign *m, dc_phase_fn fn, void *ctx) {
    m->phase_fn = fn;
    m->phase_ctx = ctx;
}

static void phase(const struct dc_decalign *m, enum dc_phase p) {
    if (m->phase_fn) m->phase_fn(m->phase_ctx, p);
}

static struct dc_dropout drop_of(const struct dc_decalign *m, double p, uint32_t site) {
    return (struct dc_dropout){.p = (float)p, .seed = m->seed, .step = m->step, .site = site};
}

/* Labels the device losses can take: finite, and class ids in [0, O) for classification
 * (the kernels cannot report an error, so bad labels stop here). */
static dc_status check_labels(const struct dc_decalign *m, const float *labels, struct dc_error *err) {
    for (size_t b = 0; b < m->B; ++b) {
        float y = labels[b];
        if (!isfinite(y)) return dc_set_error(err, DC_ERR_ARG, "model: label %zu is not finite (%g)", b, (double)y);
        if (m->cfg.classification && (y != floorf(y) || y < 0 || y >= (float)m->O))
            return dc_set_error(err, DC_ERR_ARG, "model: label %zu is %g, not a class id in [0, %zu)", b, (double)y,
                                m->O);
    }
    return DC_OK;
}

dc_status dc_decalign_forward(struct dc_decalign *m, struct dc_mem *params, const float *const x[3],
                              const float *labels, bool training, uint64_t seed, uint64_t step,
                              struct dc_decalign_losses *loss, struct dc_error *err) {
    struct dc_backend *be = m->be;
    const struct dc_param_layout *pl = m->pl;
    const struct dc_model_config *cfg = &m->cfg;
    const size_t B = m->B, d = m->d, p = m->p, O = m->O;
    memset(loss, 0, sizeof *loss);
    m->training = training;
    m->seed = seed;
    m->step = step;
    m->forward_done = false;
    dc_status st = check_labels(m, labels, err);
    if (st != DC_OK) return st;
    CK(dc_upload(be, m->labelsv, labels));
    if (m->class_w_dirty && cfg->classification) {
        if (m->class_w) CK(dc_upload(be, m->class_wv, m->class_w));
        m->class_w_dirty = false;
    }
    CK(dc_fill(be, m->scalars, 0.0f)); /* terms not computed read as 0 */
    dc_view wcom = pview(pl, params, DC_PARAM_ENC_COM_W);

    /* 1-2: projection, unique and common encoders, pooling */
    phase(m, DC_PHASE_ENCODERS);
    for (size_t i = 0; i < 3; ++i) {
        if (!m->act[i]) continue;
        CK(dc_upload(be, m->xin[i], x[i]));
        dc_view in = m->xin[i];
        if (i == 0 && training && cfg->text_dropout > 0) {
            struct dc_dropout dr = drop_of(m, cfg->text_dropout, SITE_TEXT_INPUT);
            CK(dc_dropout_fwd(be, m->xdrop, in, in.n, &dr));
            in = m->xdrop;
        }
        m->convin[i] = in;
        size_t k = pl->dims.kernel[i], rows = B * m->Tp[i];
        if (m->skip[i]) m->P[i] = in; /* identity: P is (B, T, d) */
        else CK(dc_conv1d_fwd(be, m->P[i], m->col[i], in, pview(pl, params, PROJ_ID[i]), B, m->T[i], m->D[i], d, k));
        /* s = P W_uni^T, c = P W_com^T: kernel-1 convolutions are (B*T', d) gemms */
        CK(dc_gemm(be, false, true, rows, d, d, 1.0f, m->P[i], d, pview(pl, params, UNI_ID[i]), d, 0.0f, m->s[i], d));
        CK(dc_gemm(be, false, true, rows, d, d, 1.0f, m->P[i], d, wcom, d, 0.0f, m->c[i], d));
        CK(dc_meanpool_fwd(be, m->ps[i], m->s[i], B, m->Tp[i], d));
        CK(dc_meanpool_fwd(be, m->cp[i], m->c[i], B, m->Tp[i], d));
        /* 2: decoupling, per sample over s and c flattened in the same (T', d) order, which
         * leaves the cosine unchanged; L_dec is the mean over the active modalities */
        if (m->do_dec) CK(dc_decouple_fwd(be, m->lossv[LS_DEC_L + i], m->s[i], m->c[i], B, m->Tp[i] * d));
    }

    /* 3: heterogeneity loss on x_m = pool(s_m) */
    phase(m, DC_PHASE_HETE);
    if (m->do_hete) CK(dc_hete_fwd(be, m->lossv[LS_HETE], m->hete_tape, m->ps[0], m->ps[1], m->ps[2], B, d, &m->hopt));

    /* 4: homogeneity loss on z_m = pde_m(pool(c_m)) */
    phase(m, DC_PHASE_HOMO);
    if (m->do_homo) {
        for (size_t i = 0; i < 3; ++i) {
            CK(dc_gemm(be, false, true, B, d, d, 1.0f, m->cp[i], d, pview(pl, params, PDE0W_ID[i]), d, 0.0f, m->z1[i],
                       d));
            CK(dc_bias_add(be, m->z1[i], pview(pl, params, PDE0B_ID[i]), B, d));
            CK(dc_relu_fwd(be, m->r[i], m->z1[i], B * d));
            if (training && cfg->output_dropout > 0) {
                struct dc_dropout dr = drop_of(m, cfg->output_dropout, SITE_PDE + (uint32_t)i);
                CK(dc_dropout_fwd(be, m->rd[i], m->r[i], B * d, &dr));
            } else CK(dc_copy(be, m->rd[i], m->r[i]));
            CK(dc_gemm(be, false, true, B, p, d, 1.0f, m->rd[i], d, pview(pl, params, PDE3W_ID[i]), d, 0.0f, m->z[i],
                       p));
            CK(dc_bias_add(be, m->z[i], pview(pl, params, PDE3B_ID[i]), B, p));
        }
        CK(dc_homo_stats_fwd(be, m->lossv[LS_SEM], m->z[0], m->z[1], m->z[2], B, p));
        CK(dc_homo_mmd_fwd(be, m->lossv[LS_MMD], m->z[0], m->z[1], m->z[2], B, p, (float)cfg->mmd_bandwidth));
    }

    /* 5: transformers, s_m as the query, the other modalities' s as the context */
    phase(m, DC_PHASE_TRANSFORMERS);
    for (size_t i = 0; i < 3; ++i) {
        if (!m->act[i]) continue;
        size_t off = 0; /* context rows (B, Tk, d): per sample the other modalities in turn */
        for (size_t j = 0; j < m->nctx[i]; ++j) {
            size_t o = m->ctx_mod[i][j], n = m->Tp[o] * d;
            CK(dc_copy2d(be, dc_view_of(m->ctx[i].mem, m->ctx[i].off + off * d, m->ctx[i].n - off * d), m->Tk[i] * d,
                         m->s[o], n, B, n));
            off += m->Tp[o];
        }
        m->tfc[i].training = training;
        m->tfc[i].seed = seed;
        m->tfc[i].step = step;
        for (size_t l = 0; l < cfg->nlevels; ++l) dc_tf_layer_views(pl, STACK_ID[i], l, params, &m->wl[i][l]);
        CK(dc_tf_fwd(be, m->tape[i], m->tfo[i], m->s[i], m->Tk[i] ? m->ctx[i] : EMPTY, m->wl[i], &m->tfc[i]));
        CK(dc_meanpool_fwd(be, m->h[i], m->tfo[i], B, m->Tp[i], d));
    }

    /* fusion: final_rep (B, 6d) = [h_l, h_a, h_v, pool(c_l), pool(c_a), pool(c_v)], zeros for
     * an inactive modality; then the output layer */
    phase(m, DC_PHASE_HEAD);
    if (m->nact < 3) CK(dc_fill(be, m->fin, 0.0f));
    for (size_t i = 0; i < 3; ++i) {
        if (!m->act[i]) continue;
        for (size_t part = 0; part < 2; ++part) {
            size_t col = (part * 3 + i) * d;
            CK(dc_copy2d(be, dc_view_of(m->fin.mem, m->fin.off + col, m->fin.n - col), 6 * d, part ? m->cp[i] : m->h[i],
                         d, B, d));
        }
    }
    dc_view fin_used = m->fin;
    if (training && cfg->output_dropout > 0) {
        struct dc_dropout dr = drop_of(m, cfg->output_dropout, SITE_OUTPUT);
        CK(dc_dropout_fwd(be, m->find, m->fin, B * 6 * d, &dr));
        fin_used = m->find;
    }
    CK(dc_gemm(be, false, true, B, O, 6 * d, 1.0f, fin_used, 6 * d, pview(pl, params, DC_PARAM_OUT_W), 6 * d, 0.0f,
               m->out, O));
    CK(dc_bias_add(be, m->out, pview(pl, params, DC_PARAM_OUT_B), B, O));

    /* 6: objective; the contrastive term reads final_rep before the output dropout */
    CK(dc_task_loss_fwd(be, m->lossv[LS_TASK], m->out, m->labelsv, m->class_w ? m->class_wv : EMPTY, B, O, &m->task));
    if (m->do_ct)
        CK(dc_supcon_fwd(be, m->lossv[LS_CT], m->fin, m->labelsv, B, 6 * d, cfg->classification,
                         (float)cfg->ct_temperature));
    /* the one read of the step: the loss slots and the output */
    CK(dc_download(be, m->scalars_h, m->scalars));
    const float *ls = m->scalars_h;
    loss->task = ls[LS_TASK];
    if (m->do_dec) {
        double sum = 0;
        for (size_t i = 0; i < 3; ++i)
            if (m->act[i]) sum += ls[LS_DEC_L + i];
        loss->dec = sum / (double)m->nact;
    }
    loss->hete = ls[LS_HETE];
    loss->homo = (double)ls[LS_SEM] + (double)ls[LS_MMD];
    loss->ct = ls[LS_CT];
    loss->total = loss->task + cfg->dec_loss_weight * loss->dec + cfg->alpha * loss->hete + cfg->beta * loss->homo +
                  cfg->ct_weight * loss->ct;
    m->forward_done = true;
    return DC_OK;
}

dc_status dc_decalign_backward(struct dc_decalign *m, struct dc_mem *grads, struct dc_mem *params,
                               struct dc_error *err) {
    if (!m->forward_done) return dc_set_error(err, DC_ERR_ARG, "model: backward without a forward");
    struct dc_backend *be = m->be;
    const struct dc_param_layout *pl = m->pl;
    const struct dc_model_config *cfg = &m->cfg;
    const size_t B = m->B, d = m->d, p = m->p, O = m->O;
    const bool training = m->training;
    phase(m, DC_PHASE_BACKWARD);

    /* task loss -> output layer */
    CK(dc_fill(be, m->dout, 0.0f));
    CK(dc_task_loss_bwd(be, m->dout, m->out, m->labelsv, m->class_w ? m->class_wv : EMPTY, B, O, &m->task, 1.0f));
    bool outdrop = training && cfg->output_dropout > 0;
    dc_view fin_used = outdrop ? m->find : m->fin;
    CK(dc_gemm(be, true, false, O, 6 * d, B, 1.0f, m->dout, O, fin_used, 6 * d, 1.0f,
               pview(pl, grads, DC_PARAM_OUT_W), 6 * d));
    CK(dc_bias_grad(be, pview(pl, grads, DC_PARAM_OUT_B), m->dout, B, O));
    if (outdrop) {
        CK(dc_gemm(be, false, false, B, 6 * d, O, 1.0f, m->dout, O, pview(pl, params, DC_PARAM_OUT_W), 6 * d, 0.0f,
                   m->dfind, 6 * d));
        struct dc_dropout dr = drop_of(m, cfg->output_dropout, SITE_OUTPUT);
        CK(dc_fill(be, m->dfin, 0.0f));
        CK(dc_dropout_bwd(be, m->dfin, m->dfind, B * 6 * d, &dr));
    } else
        CK(dc_gemm(be, false, false, B, 6 * d, O, 1.0f, m->dout, O, pview(pl, params, DC_PARAM_OUT_W), 6 * d, 0.0f,
                   m->dfin, 6 * d));
    /* contrastive term on final_rep */
    if (m->do_ct)
        CK(dc_supcon_bwd(be, m->dfin, m->fin, m->labelsv, B, 6 * d, cfg->classification, (float)cfg->ct_temperature,
                         (float)cfg->ct_weight));

    /* decoupling starts ds and dc; final_rep's slices give dh_m and dpool(c_m) */
    for (size_t i = 0; i < 3; ++i) {
        if (!m->act[i]) continue;
        CK(dc_fill(be, m->ds[i], 0.0f));
        CK(dc_fill(be, m->dcv[i], 0.0f));
        if (m->do_dec)
            CK(dc_decouple_bwd(be, m->ds[i], m->dcv[i], m->s[i], m->c[i], B, m->Tp[i] * d,
                               (float)(cfg->dec_loss_weight / (double)m->nact)));
        for (size_t part = 0; part < 2; ++part) {
            size_t col = (part * 3 + i) * d;
            CK(dc_copy2d(be, part ? m->dcp[i] : m->dh[i], d, dc_view_of(m->dfin.mem, m->dfin.off + col, m->dfin.n - col),
                         6 * d, B, d));
        }
    }

    /* heterogeneity -> ds via the pooling */
    if (m->do_hete) {
        for (size_t i = 0; i < 3; ++i) CK(dc_fill(be, m->dxp[i], 0.0f));
        CK(dc_hete_bwd(be, m->dxp[0], m->dxp[1], m->dxp[2], m->hete_tape, m->ps[0], m->ps[1], m->ps[2], B, d, &m->hopt,
                       (float)cfg->alpha));
        for (size_t i = 0; i < 3; ++i) CK(dc_meanpool_bwd(be, m->ds[i], m->dxp[i], B, m->Tp[i], d));
    }

    /* homogeneity -> pde MLPs -> dpool(c) */
    if (m->do_homo) {
        for (size_t i = 0; i < 3; ++i) CK(dc_fill(be, m->dz[i], 0.0f));
        CK(dc_homo_stats_bwd(be, m->dz[0], m->dz[1], m->dz[2], m->z[0], m->z[1], m->z[2], B, p, (float)cfg->beta));
        CK(dc_homo_mmd_bwd(be, m->dz[0], m->dz[1], m->dz[2], m->z[0], m->z[1], m->z[2], B, p,
                           (float)cfg->mmd_bandwidth, (float)cfg->beta));
        for (size_t i = 0; i < 3; ++i) {
            CK(dc_gemm(be, true, false, p, d, B, 1.0f, m->dz[i], p, m->rd[i], d, 1.0f, pview(pl, grads, PDE3W_ID[i]),
                       d));
            CK(dc_bias_grad(be, pview(pl, grads, PDE3B_ID[i]), m->dz[i], B, p));
            CK(dc_gemm(be, false, false, B, d, p, 1.0f, m->dz[i], p, pview(pl, params, PDE3W_ID[i]), d, 0.0f,
                       m->drd[i], d));
            CK(dc_fill(be, m->dr[i], 0.0f));
            if (training && cfg->output_dropout > 0) {
                struct dc_dropout dr = drop_of(m, cfg->output_dropout, SITE_PDE + (uint32_t)i);
                CK(dc_dropout_bwd(be, m->dr[i], m->drd[i], B * d, &dr));
            } else CK(dc_axpy(be, m->dr[i], 1.0f, m->drd[i], B * d));
            CK(dc_fill(be, m->dz1[i], 0.0f));
            CK(dc_relu_bwd(be, m->dz1[i], m->dr[i], m->r[i], B * d));
            CK(dc_gemm(be, true, false, d, d, B, 1.0f, m->dz1[i], d, m->cp[i], d, 1.0f, pview(pl, grads, PDE0W_ID[i]),
                       d));
            CK(dc_bias_grad(be, pview(pl, grads, PDE0B_ID[i]), m->dz1[i], B, d));
            CK(dc_gemm(be, false, false, B, d, d, 1.0f, m->dz1[i], d, pview(pl, params, PDE0W_ID[i]), d, 1.0f,
                       m->dcp[i], d));
        }
    }

    /* transformers -> ds of the query and of the context modalities */
    for (size_t i = 0; i < 3; ++i) {
        if (!m->act[i]) continue;
        CK(dc_meanpool_bwd(be, m->dcv[i], m->dcp[i], B, m->Tp[i], d));
        CK(dc_fill(be, m->dtfo[i], 0.0f));
        CK(dc_meanpool_bwd(be, m->dtfo[i], m->dh[i], B, m->Tp[i], d));
        if (m->Tk[i]) CK(dc_fill(be, m->dctx[i], 0.0f));
        for (size_t l = 0; l < cfg->nlevels; ++l) dc_tf_layer_views(pl, STACK_ID[i], l, grads, &m->gl[i][l]);
        CK(dc_tf_bwd(be, m->ds[i], m->Tk[i] ? m->dctx[i] : EMPTY, m->gl[i], m->dtfo[i], m->tape[i], m->wl[i],
                     &m->tfc[i]));
        size_t off = 0;
        for (size_t j = 0; j < m->nctx[i]; ++j) {
            size_t o = m->ctx_mod[i][j], n = m->Tp[o] * d;
            CK(dc_axpy2d(be, m->ds[o], n, 1.0f,
                         dc_view_of(m->dctx[i].mem, m->dctx[i].off + off * d, m->dctx[i].n - off * d), m->Tk[i] * d,
                         B, n));
            off += m->Tp[o];
        }
    }

    /* encoders and projections */
    dc_view gcom = pview(pl, grads, DC_PARAM_ENC_COM_W), wcom = pview(pl, params, DC_PARAM_ENC_COM_W);
    for (size_t i = 0; i < 3; ++i) {
        if (!m->act[i]) continue;
        size_t rows = B * m->Tp[i], k = pl->dims.kernel[i];
        dc_view wuni = pview(pl, params, UNI_ID[i]);
        CK(dc_gemm(be, true, false, d, d, rows, 1.0f, m->ds[i], d, m->P[i], d, 1.0f, pview(pl, grads, UNI_ID[i]), d));
        CK(dc_gemm(be, true, false, d, d, rows, 1.0f, m->dcv[i], d, m->P[i], d, 1.0f, gcom, d));
        if (m->skip[i]) continue; /* the input needs no gradient */
        CK(dc_gemm(be, false, false, rows, d, d, 1.0f, m->ds[i], d, wuni, d, 0.0f, m->dP[i], d));
        CK(dc_gemm(be, false, false, rows, d, d, 1.0f, m->dcv[i], d, wcom, d, 1.0f, m->dP[i], d));
        CK(dc_conv1d_bwd(be, EMPTY, pview(pl, grads, PROJ_ID[i]), m->dcol[i], m->dP[i], m->col[i], m->convin[i],
                         pview(pl, params, PROJ_ID[i]), B, m->T[i], m->D[i], d, k));
    }
    return DC_OK;
}
