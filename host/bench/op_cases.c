#include "bench/op_cases.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

#define GUARD_BITS 0x7FC0DEADu

float dc_guard_value(void) {
    uint32_t bits = GUARD_BITS;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

bool dc_is_guard(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits == GUARD_BITS;
}

double dc_nmse(const float *a, const float *ref, size_t n) {
    double err = 0.0, norm = 0.0;
    for (size_t i = 0; i < n; ++i) {
        double d = (double)a[i] - (double)ref[i];
        err += d * d;
        norm += (double)ref[i] * ref[i];
    }
    if (norm == 0.0) return err == 0.0 ? 0.0 : INFINITY;
    return err / norm;
}

struct dc_op_case *dc_case_add(struct dc_case_list *l, enum dc_op op, dc_case_run_fn run, float max_nmse,
                               const char *fmt, ...) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        struct dc_op_case *grown = realloc(l->v, l->cap * sizeof *grown);
        DC_ASSERT(grown != NULL);
        l->v = grown;
    }
    struct dc_op_case *c = &l->v[l->n++];
    memset(c, 0, sizeof *c);
    c->op = op;
    c->run = run;
    c->max_nmse = max_nmse;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->label, sizeof c->label, fmt, ap);
    va_end(ap);
    return c;
}

void dc_case_tensor(struct dc_op_case *c, const char *name, size_t n, enum dc_fill_kind fill, float lo, float hi,
                    bool written) {
    DC_ASSERT(c->nt < DC_CASE_MAX_TENSORS);
    c->t[c->nt++] = (struct dc_tensor_desc){.name = name, .n = n, .fill = fill, .lo = lo, .hi = hi, .written = written};
}

size_t dc_op_cases(struct dc_op_case **out, bool bench) {
    struct dc_case_list l = {0};
    dc_cases_gemm(&l, bench);
    dc_cases_elementwise(&l, bench);
    dc_cases_nn(&l, bench);
    dc_cases_loss(&l, bench);
    dc_cases_hete(&l, bench);
    dc_cases_attention(&l, bench);
    *out = l.v;
    return l.n;
}

/* splitmix64: a small deterministic generator for test inputs. */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float *dc_case_host_data(const struct dc_op_case *c, uint64_t seed, size_t *total) {
    size_t n = DC_CASE_GUARD;
    for (size_t i = 0; i < c->nt; ++i) n += c->t[i].n + DC_CASE_GUARD;
    float *h = malloc(n * sizeof *h);
    if (!h) return NULL;
    uint64_t s = seed;
    size_t pos = 0;
    for (size_t g = 0; g < DC_CASE_GUARD; ++g) h[pos++] = dc_guard_value();
    for (size_t i = 0; i < c->nt; ++i) {
        const struct dc_tensor_desc *t = &c->t[i];
        for (size_t j = 0; j < t->n; ++j) {
            float u = (float)((double)(splitmix64(&s) >> 40) / (double)(1u << 24));
            h[pos++] = j < t->zero_head               ? 0.0f
                       : t->fill == DC_FILL_UNIFORM  ? t->lo + (t->hi - t->lo) * u
                       : t->fill == DC_FILL_CONST  ? t->lo
                       : t->fill == DC_FILL_BINARY ? (u < 0.5f ? 0.0f : 1.0f)
                       : t->fill == DC_FILL_CYCLE  ? t->lo + (float)(j % (size_t)(t->hi - t->lo + 1.0f))
                                                   : NAN;
        }
        for (size_t g = 0; g < DC_CASE_GUARD; ++g) h[pos++] = dc_guard_value();
    }
    *total = n;
    return h;
}

dc_status dc_case_buffers_create(struct dc_backend *be, const struct dc_op_case *c, const float *host,
                                 struct dc_case_buffers *out) {
    memset(out, 0, sizeof *out);
    size_t n = DC_CASE_GUARD;
    for (size_t i = 0; i < c->nt; ++i) n += c->t[i].n + DC_CASE_GUARD;
    dc_status st = dc_mem_alloc(be, n, &out->mem);
    if (st != DC_OK) return st;
    out->total = n;
    size_t pos = DC_CASE_GUARD;
    for (size_t i = 0; i < c->nt; ++i) {
        out->t[i] = dc_view_of(out->mem, pos, c->t[i].n);
        pos += c->t[i].n + DC_CASE_GUARD;
    }
    st = dc_upload(be, dc_view_of(out->mem, 0, n), host);
    if (st != DC_OK) dc_case_buffers_free(be, out);
    return st;
}

void dc_case_buffers_free(struct dc_backend *be, struct dc_case_buffers *b) {
    dc_mem_free(be, b->mem);
    b->mem = NULL;
}
