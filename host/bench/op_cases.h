/* Op cases: one description of how to exercise an op on a shape, shared by the
 * parity tests (cl against ref, with guard floats) and `decocl bench ops`.
 *
 * A case names its tensors (sizes, how to fill them, whether the op writes them)
 * and a run function that calls the op on views of those tensors. Inputs are
 * filled from a seeded generator, so every backend sees the same numbers. */
#ifndef DC_OP_CASES_H
#define DC_OP_CASES_H

#include <stdio.h>

#include "decocl/decocl.h"

#define DC_CASE_MAX_TENSORS 10
#define DC_CASE_GUARD 64 /* guard floats on each side of every tensor */

enum dc_fill_kind {
    DC_FILL_UNIFORM,  /* uniform in [lo, hi] */
    DC_FILL_CONST,    /* every element = lo */
    DC_FILL_NAN,      /* NaN: the op must overwrite it without reading (e.g. gemm beta 0) */
    DC_FILL_BINARY,   /* 0 or 1 at random (flags) */
    DC_FILL_CYCLE,    /* lo, lo + 1, ..., hi, lo, ...: integer labels with every class present */
};

struct dc_tensor_desc {
    const char *name;
    size_t n;
    enum dc_fill_kind fill;
    float lo, hi;
    bool written;      /* the op writes it: compared across backends */
    size_t zero_head;  /* the first zero_head elements are 0 (a zero row: eps paths); set after dc_case_tensor */
    bool scratch;      /* written, but backend-private contents (a tape): not compared */
};

struct dc_op_case;
typedef dc_status (*dc_case_run_fn)(struct dc_backend *be, const struct dc_op_case *c, const dc_view *t);

struct dc_op_case {
    enum dc_op op;
    char label[96];                 /* e.g. "gemm nt m=33 n=65 k=47"; unique */
    size_t p[12];                   /* shape parameters, meaning per op family */
    float f[4];                     /* float parameters (alpha, beta, p, scale, ...) */
    float max_nmse;                 /* parity tolerance, normalised squared error */
    size_t nt;
    struct dc_tensor_desc t[DC_CASE_MAX_TENSORS];
    dc_case_run_fn run;
    double flops;                   /* per call, for bench (0: not meaningful) */
};

/* All cases, in op order. `bench` selects the larger shapes used by decocl bench ops
 * (model-sized); otherwise the odd test shapes (1, 7, 37, 65 ...). */
size_t dc_op_cases(struct dc_op_case **out, bool bench);

/* Per-family builders, each appending to the list (op_cases.c owns the list). */
struct dc_case_list {
    struct dc_op_case *v;
    size_t n, cap;
};
struct dc_op_case *dc_case_add(struct dc_case_list *l, enum dc_op op, dc_case_run_fn run, float max_nmse,
                               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void dc_case_tensor(struct dc_op_case *c, const char *name, size_t n, enum dc_fill_kind fill, float lo, float hi,
                    bool written);
void dc_cases_gemm(struct dc_case_list *l, bool bench);
void dc_cases_elementwise(struct dc_case_list *l, bool bench);
void dc_cases_nn(struct dc_case_list *l, bool bench);
void dc_cases_loss(struct dc_case_list *l, bool bench);
void dc_cases_hete(struct dc_case_list *l, bool bench);
void dc_cases_attention(struct dc_case_list *l, bool bench);

/* Case instances on a backend: one allocation holding every tensor with guards. */
struct dc_case_buffers {
    struct dc_mem *mem;
    dc_view t[DC_CASE_MAX_TENSORS];
    size_t total;
};
/* Fills host data for the case deterministically from seed (includes guards). */
float *dc_case_host_data(const struct dc_op_case *c, uint64_t seed, size_t *total);
dc_status dc_case_buffers_create(struct dc_backend *be, const struct dc_op_case *c, const float *host,
                                 struct dc_case_buffers *out);
void dc_case_buffers_free(struct dc_backend *be, struct dc_case_buffers *b);

/* The guard pattern: a NaN with a recognisable payload. */
float dc_guard_value(void);
bool dc_is_guard(float x);

/* Normalised squared error sum (a-b)^2 / sum b^2 (b the reference); 0 when both are all zero. */
double dc_nmse(const float *a, const float *ref, size_t n);

#endif
