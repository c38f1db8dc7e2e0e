/* `decocl make-dataset`: deterministic bytes, the pickle's structure re-parsed at the
 * byte level (a small parser of its own, independent of the data layer's reader),
 * atomic writes and usage errors. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "data/synth.h"
#include "test_util.h"

/* --- temporary directory ------------------------------------------------------------ */

static char g_dir[64];

static void dir_setup(void) {
    strcpy(g_dir, "/tmp/dc_mkds_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
}

static void dir_teardown(void) {
    DIR *d = opendir(g_dir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
                struct stat sb;
                if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
                    rmdir(p);
                else
                    unlink(p);
            }
        closedir(d);
    }
    rmdir(g_dir);
}

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", g_dir, name); }

static size_t dir_entries(void) {
    DIR *d = opendir(g_dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) ++n;
    if (d) closedir(d);
    return n;
}

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) free(buf), buf = NULL;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void make(enum dc_synth_kind kind, int aligned, size_t tr, size_t va, size_t te, uint64_t seed,
                 const char *path) {
    struct dc_synth_options o = {.kind = kind, .aligned = aligned, .samples = {tr, va, te}, .seed = seed};
    struct dc_error err = {0};
    dc_status st = dc_synth_write(&o, path, NULL, &err);
    ck_assert_msg(st == DC_OK, "dc_synth_write: %s", err.msg);
}

/* --- a small unpickler for what make-dataset writes --------------------------------- */

enum nt { N_NONE, N_BOOL, N_INT, N_STR, N_BYTES, N_TUPLE, N_LIST, N_DICT, N_GLOBAL, N_MARK, N_ARRAY, N_DTYPE };

struct node {
    enum nt t;
    int64_t i;
    const uint8_t *p; /* str/bytes payload, or an array's */
    uint64_t len;
    struct node **items; /* tuple/list; dict as key, value, key, value */
    size_t n;
    char name[64]; /* global "module.name", dtype string */
    uint64_t shape[8];
    int ndim;
    char order; /* dtype byte order */
    const struct node *dtype;
};

struct parser {
    const uint8_t *b;
    size_t len, pos;
    struct node **all; /* every node, for freeing */
    size_t n_all;
    struct node *stack[4096];
    size_t sp;
    struct node **memo;
    size_t n_memo;
    char err[256];
};

static struct node *node_new(struct parser *ps, enum nt t) {
    struct node *n = calloc(1, sizeof *n);
    ps->all = realloc(ps->all, (ps->n_all + 1) * sizeof *ps->all);
    ps->all[ps->n_all++] = n;
    n->t = t;
    return n;
}

static void add_item(struct node *c, struct node *x) {
    c->items = realloc(c->items, (c->n + 1) * sizeof *c->items);
    c->items[c->n++] = x;
}

static void parser_free(struct parser *ps) {
    for (size_t i = 0; i < ps->n_all; ++i) free(ps->all[i]->items), free(ps->all[i]);
    free(ps->all);
    free(ps->memo);
}

static uint64_t rd(struct parser *ps, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= (uint64_t)ps->b[ps->pos + (size_t)i] << (8 * i);
    ps->pos += (size_t)n;
    return v;
}

#define NEED(k)                                                                          \
    do {                                                                                 \
        if (ps->len - ps->pos < (size_t)(k))                                             \
            return snprintf(ps->err, sizeof ps->err, "truncated at %zu", ps->pos), NULL; \
    } while (0)
#define FAIL(...) return snprintf(ps->err, sizeof ps->err, __VA_ARGS__), NULL

static int pop_mark(struct parser *ps, size_t *mark) {
    for (size_t k = ps->sp; k-- > 0;)
        if (ps->stack[k]->t == N_MARK) {
            *mark = k;
            return 0;
        }
    return -1;
}

/* Returns the top-level object, or NULL with ps->err set. */
static struct node *unpickle(struct parser *ps) {
    NEED(2);
    if (ps->b[0] != 0x80 || ps->b[1] != 4) FAIL("not protocol 4");
    ps->pos = 2;
    while (1) {
        NEED(1);
        size_t at = ps->pos;
        uint8_t op = ps->b[ps->pos++];
        struct node *x = NULL;
        size_t mark;
        if (ps->sp + 2 >= sizeof ps->stack / sizeof ps->stack[0]) FAIL("stack overflow");
        switch (op) {
            case 0x95:
                NEED(8);
                {
                    uint64_t fl = rd(ps, 8);
                    if (fl > ps->len - ps->pos) FAIL("frame past the end");
                }
                break;
            case 0x2e:
                if (ps->sp != 1) FAIL("STOP with %zu stack items", ps->sp);
                if (ps->pos != ps->len) FAIL("%zu bytes after STOP", ps->len - ps->pos);
                return ps->stack[0];
            case 0x28: ps->stack[ps->sp++] = node_new(ps, N_MARK); break;
            case 0x7d: ps->stack[ps->sp++] = node_new(ps, N_DICT); break;
            case 0x5d: ps->stack[ps->sp++] = node_new(ps, N_LIST); break;
            case 0x29: ps->stack[ps->sp++] = node_new(ps, N_TUPLE); break;
            case 0x4e: ps->stack[ps->sp++] = node_new(ps, N_NONE); break;
            case 0x88:
            case 0x89: x = node_new(ps, N_BOOL), x->i = op == 0x88, ps->stack[ps->sp++] = x; break;
            case 0x4b:
                NEED(1);
                x = node_new(ps, N_INT), x->i = (int64_t)rd(ps, 1), ps->stack[ps->sp++] = x;
                break;
            case 0x4d:
                NEED(2);
                x = node_new(ps, N_INT), x->i = (int64_t)rd(ps, 2), ps->stack[ps->sp++] = x;
                break;
            case 0x4a:
                NEED(4);
                x = node_new(ps, N_INT), x->i = (int32_t)(uint32_t)rd(ps, 4), ps->stack[ps->sp++] = x;
                break;
            case 0x8c:
            case 0x58:
            case 0x43:
            case 0x42:
            case 0x8e: {
                int w = op == 0x8c || op == 0x43 ? 1 : op == 0x8e ? 8 : 4;
                NEED(w);
                uint64_t n = rd(ps, w);
                NEED(n);
                x = node_new(ps, op == 0x8c || op == 0x58 ? N_STR : N_BYTES);
                x->p = ps->b + ps->pos, x->len = n;
                ps->pos += n;
                ps->stack[ps->sp++] = x;
                break;
            }
            case 0x94:
                if (!ps->sp) FAIL("MEMOIZE on an empty stack");
                ps->memo = realloc(ps->memo, (ps->n_memo + 1) * sizeof *ps->memo);
                ps->memo[ps->n_memo++] = ps->stack[ps->sp - 1];
                break;
            case 0x68:
            case 0x6a: {
                NEED(op == 0x68 ? 1 : 4);
                uint64_t k = rd(ps, op == 0x68 ? 1 : 4);
                if (k >= ps->n_memo) FAIL("BINGET %llu past the memo at %zu", (unsigned long long)k, at);
                ps->stack[ps->sp++] = ps->memo[k];
                break;
            }
            case 0x93: {
                if (ps->sp < 2) FAIL("STACK_GLOBAL needs two items");
                struct node *mod = ps->stack[ps->sp - 2], *name = ps->stack[ps->sp - 1];
                if (mod->t != N_STR || name->t != N_STR) FAIL("STACK_GLOBAL of non-strings");
                x = node_new(ps, N_GLOBAL);
                snprintf(x->name, sizeof x->name, "%.*s.%.*s", (int)mod->len, (const char *)mod->p, (int)name->len,
                         (const char *)name->p);
                ps->sp -= 2;
                ps->stack[ps->sp++] = x;
                break;
            }
            case 0x85:
            case 0x86:
            case 0x87: {
                size_t k = (size_t)(op - 0x84);
                if (ps->sp < k) FAIL("TUPLE%zu underflow", k);
                x = node_new(ps, N_TUPLE);
                for (size_t j = ps->sp - k; j < ps->sp; ++j) add_item(x, ps->stack[j]);
                ps->sp -= k;
                ps->stack[ps->sp++] = x;
                break;
            }
            case 0x74:
            case 0x65:
            case 0x75: {
                if (pop_mark(ps, &mark)) FAIL("no MARK at %zu", at);
                struct node *target = op == 0x74 ? node_new(ps, N_TUPLE) : mark > 0 ? ps->stack[mark - 1] : NULL;
                if (!target || (op == 0x65 && target->t != N_LIST) || (op == 0x75 && target->t != N_DICT))
                    FAIL("bad container at %zu", at);
                if (op == 0x75 && (ps->sp - mark - 1) % 2) FAIL("odd SETITEMS at %zu", at);
                for (size_t j = mark + 1; j < ps->sp; ++j) add_item(target, ps->stack[j]);
                ps->sp = mark;
                if (op == 0x74) ps->stack[ps->sp++] = target;
                break;
            }
            case 0x61:
            case 0x73: {
                size_t k = op == 0x61 ? 1 : 2;
                if (ps->sp < k + 1) FAIL("underflow at %zu", at);
                struct node *target = ps->stack[ps->sp - k - 1];
                if (target->t != (op == 0x61 ? N_LIST : N_DICT)) FAIL("bad container at %zu", at);
                for (size_t j = ps->sp - k; j < ps->sp; ++j) add_item(target, ps->stack[j]);
                ps->sp -= k;
                break;
            }
            case 0x52: {
                if (ps->sp < 2) FAIL("REDUCE underflow");
                struct node *fn = ps->stack[ps->sp - 2], *args = ps->stack[ps->sp - 1];
                if (fn->t != N_GLOBAL || args->t != N_TUPLE) FAIL("bad REDUCE at %zu", at);
                if (strcmp(fn->name, "numpy.core.multiarray._reconstruct") == 0) {
                    if (args->n != 3 || args->items[0]->t != N_GLOBAL ||
                        strcmp(args->items[0]->name, "numpy.ndarray") || args->items[1]->t != N_TUPLE ||
                        args->items[1]->n != 1 || args->items[1]->items[0]->i != 0 || args->items[2]->t != N_BYTES ||
                        args->items[2]->len != 1 || args->items[2]->p[0] != 'b')
                        FAIL("bad _reconstruct arguments at %zu", at);
                    x = node_new(ps, N_ARRAY);
                } else if (strcmp(fn->name, "numpy.dtype") == 0) {
                    if (args->n != 3 || args->items[0]->t != N_STR || args->items[1]->t != N_BOOL ||
                        args->items[1]->i || args->items[2]->t != N_BOOL || !args->items[2]->i)
                        FAIL("bad dtype arguments at %zu", at);
                    x = node_new(ps, N_DTYPE);
                    snprintf(x->name, sizeof x->name, "%.*s", (int)args->items[0]->len,
                             (const char *)args->items[0]->p);
                } else {
                    FAIL("REDUCE of %s", fn->name);
                }
                ps->sp -= 2;
                ps->stack[ps->sp++] = x;
                break;
            }
            case 0x62: {
                if (ps->sp < 2) FAIL("BUILD underflow");
                struct node *obj = ps->stack[ps->sp - 2], *st = ps->stack[ps->sp - 1];
                ps->sp -= 1;
                if (st->t != N_TUPLE) FAIL("BUILD state is not a tuple at %zu", at);
                if (obj->t == N_DTYPE) {
                    if (st->n != 8 || st->items[0]->i != 3 || st->items[1]->t != N_STR || st->items[1]->len != 1)
                        FAIL("bad dtype state at %zu", at);
                    obj->order = (char)st->items[1]->p[0];
                } else if (obj->t == N_ARRAY) {
                    if (st->n != 5 || st->items[0]->i != 1 || st->items[1]->t != N_TUPLE ||
                        st->items[2]->t != N_DTYPE || st->items[3]->t != N_BOOL || st->items[3]->i ||
                        st->items[4]->t != N_BYTES)
                        FAIL("bad array state at %zu", at);
                    obj->ndim = (int)st->items[1]->n;
                    for (int d = 0; d < obj->ndim && d < 8; ++d) obj->shape[d] = (uint64_t)st->items[1]->items[d]->i;
                    obj->dtype = st->items[2];
                    obj->p = st->items[4]->p, obj->len = st->items[4]->len;
                } else {
                    FAIL("BUILD on a non-numpy object at %zu", at);
                }
                break;
            }
            default: FAIL("unexpected opcode 0x%02x at %zu", op, at);
        }
    }
}

static const struct node *dict_get(const struct node *d, const char *key) {
    for (size_t i = 0; i + 1 < d->n; i += 2)
        if (d->items[i]->len == strlen(key) && memcmp(d->items[i]->p, key, d->items[i]->len) == 0)
            return d->items[i + 1];
    return NULL;
}

static uint64_t itemsize(const struct node *dt) {
    if (strcmp(dt->name, "f4") == 0) return 4;
    if (strcmp(dt->name, "f8") == 0 || strcmp(dt->name, "i8") == 0) return 8;
    if (dt->name[0] == 'U') return 4 * (uint64_t)atoi(dt->name + 1);
    return 0;
}

/* An array of the given dtype (prefix for 'U') and shape; NULL dims match anything (0). */
static void check_array(const struct node *a, const char *what, const char *dtype, int ndim, uint64_t d0, uint64_t d1,
                        uint64_t d2) {
    ck_assert_msg(a && a->t == N_ARRAY, "%s: not an array", what);
    ck_assert_msg(strncmp(a->dtype->name, dtype, strlen(dtype)) == 0, "%s: dtype %s, expected %s", what, a->dtype->name,
                  dtype);
    ck_assert_msg(a->dtype->order == '<', "%s: byte order %c", what, a->dtype->order);
    ck_assert_msg(a->ndim == ndim, "%s: ndim %d, expected %d", what, a->ndim, ndim);
    uint64_t want[3] = {d0, d1, d2}, prod = itemsize(a->dtype);
    for (int i = 0; i < ndim; ++i) {
        ck_assert_msg(a->shape[i] == want[i], "%s: shape[%d] = %llu, expected %llu", what, i,
                      (unsigned long long)a->shape[i], (unsigned long long)want[i]);
        prod *= a->shape[i];
    }
    ck_assert_msg(a->len == prod, "%s: payload %llu bytes, expected %llu", what, (unsigned long long)a->len,
                  (unsigned long long)prod);
}

static float f4_at(const struct node *a, uint64_t i) {
    float v;
    memcpy(&v, a->p + 4 * i, 4);
    return v;
}
static double f8_at(const struct node *a, uint64_t i) {
    double v;
    memcpy(&v, a->p + 8 * i, 8);
    return v;
}
static int64_t i8_at(const struct node *a, uint64_t i) {
    int64_t v;
    memcpy(&v, a->p + 8 * i, 8);
    return v;
}

/* Frames t0..t1-1 of sample i are zero (padding) or not all zero (content). */
static int frames_zero(const struct node *a, uint64_t i, uint64_t t0, uint64_t t1) {
    uint64_t T = a->shape[1], D = a->shape[2];
    for (uint64_t t = t0; t < t1; ++t)
        for (uint64_t d = 0; d < D; ++d)
            if (f4_at(a, (i * T + t) * D + d) != 0.0f) return 0;
    return 1;
}
static int frames_content(const struct node *a, uint64_t i, uint64_t t0, uint64_t t1) {
    for (uint64_t t = t0; t < t1; ++t)
        if (frames_zero(a, i, t, t + 1)) return 0;
    return 1;
}

/* --- structure per kind ---------------------------------------------------------------- */

struct expect {
    enum dc_synth_kind kind;
    int aligned;
    uint64_t T[3], D[3];
    const char *keys; /* space-separated, exactly the split's keys */
};

static const struct expect EXPECT[] = {
    {DC_SYNTH_MOSI,
     1,
     {50, 50, 50},
     {768, 5, 20},
     "raw_text audio vision id text text_bert annotations classification_labels regression_labels"},
    {DC_SYNTH_MOSI,
     0,
     {50, 375, 500},
     {768, 5, 20},
     "raw_text audio vision id text text_bert audio_lengths vision_lengths annotations classification_labels "
     "regression_labels"},
    {DC_SYNTH_MOSEI,
     1,
     {50, 50, 50},
     {768, 74, 35},
     "raw_text audio vision id text text_bert annotations classification_labels regression_labels"},
    {DC_SYNTH_MOSEI,
     0,
     {50, 500, 500},
     {768, 74, 35},
     "raw_text audio vision id text text_bert audio_lengths vision_lengths annotations classification_labels "
     "regression_labels"},
    {DC_SYNTH_SIMS,
     0,
     {39, 400, 55},
     {768, 33, 709},
     "raw_text audio vision id text text_bert audio_lengths vision_lengths annotations classification_labels "
     "regression_labels regression_labels_T regression_labels_A regression_labels_V classification_labels_T "
     "classification_labels_A classification_labels_V"},
    {DC_SYNTH_IEMOCAP, 1, {1, 1, 1}, {1024, 512, 1024}, "text audio vision raw_text id classification_labels"},
};

static void check_keys(const struct node *split, const char *keys) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", keys);
    size_t n = 0;
    for (char *k = strtok(buf, " "); k; k = strtok(NULL, " "), ++n)
        ck_assert_msg(dict_get(split, k), "missing key %s", k);
    ck_assert_msg(split->n == 2 * n, "split has %zu keys, expected %zu", split->n / 2, n);
}

static int has_sep(const uint8_t *p, uint64_t n) {
    for (uint64_t i = 0; i + 3 <= n; ++i)
        if (memcmp(p + i, "$_$", 3) == 0) return 1;
    return 0;
}

/* A per-sample length from an int64 array or a Python list of int. */
static int64_t length_at(const struct node *v, uint64_t i) {
    if (v->t == N_LIST) return v->items[i]->i;
    return i8_at(v, i);
}

static void check_split(const struct expect *e, const struct node *s, uint64_t N) {
    check_keys(s, e->keys);
    const char *mods[3] = {"text", "audio", "vision"};
    for (int m = 0; m < 3; ++m) check_array(dict_get(s, mods[m]), mods[m], "f4", 3, N, e->T[m], e->D[m]);
    const struct node *text = dict_get(s, "text"), *audio = dict_get(s, "audio"), *vision = dict_get(s, "vision");
    const struct node *cls = dict_get(s, "classification_labels");
    int lists = e->kind == DC_SYNTH_SIMS || e->kind == DC_SYNTH_IEMOCAP;
    const char *strkeys[3] = {"raw_text", "id", "annotations"};
    for (int k = 0; k < 3; ++k) {
        const struct node *v = dict_get(s, strkeys[k]);
        if (!v) continue;
        if (lists && k < 2) {
            ck_assert_msg(v->t == N_LIST && v->n == N, "%s: expected a list of %llu", strkeys[k],
                          (unsigned long long)N);
            for (size_t i = 0; i < v->n; ++i) ck_assert(v->items[i]->t == N_STR && v->items[i]->len > 0);
        } else if (k == 2 && e->kind == DC_SYNTH_SIMS) {
            ck_assert_msg(v->t == N_LIST && v->n == N, "annotations: expected a list");
        } else {
            check_array(v, strkeys[k], "U", 1, N, 0, 0);
        }
    }
    /* ids look like MMSA's video$_$clip (IEMOCAP: SesNN...) */
    const struct node *id = dict_get(s, "id");
    if (id->t == N_ARRAY) {
        uint64_t w = id->len / N / 4;
        char first[64] = {0};
        for (uint64_t c = 0; c < w && c < 63; ++c) first[c] = (char)id->p[4 * c];
        ck_assert_msg(strstr(first, "$_$"), "id '%s'", first);
    } else {
        const struct node *s0 = id->items[0];
        ck_assert_msg(e->kind == DC_SYNTH_IEMOCAP ? memcmp(s0->p, "Ses", 3) == 0 : has_sep(s0->p, s0->len), "id '%.*s'",
                      (int)s0->len, (const char *)s0->p);
    }
    if (e->kind == DC_SYNTH_IEMOCAP) {
        check_array(cls, "classification_labels", "i8", 1, N, 0, 0);
        for (uint64_t i = 0; i < N; ++i) ck_assert(i8_at(cls, i) >= 0 && i8_at(cls, i) <= 5);
        for (uint64_t i = 0; i < N; ++i)
            for (int m = 0; m < 3; ++m) ck_assert(frames_content(dict_get(s, mods[m]), i, 0, 1));
        return;
    }
    /* labels: range and quantisation */
    const struct node *reg = dict_get(s, "regression_labels");
    check_array(reg, "regression_labels", "f8", 1, N, 0, 0);
    check_array(cls, "classification_labels", "f8", 1, N, 0, 0);
    double hi = e->kind == DC_SYNTH_SIMS ? 1.0 : 3.0, q = e->kind == DC_SYNTH_SIMS    ? 5.0
                                                          : e->kind == DC_SYNTH_MOSEI ? 3.0
                                                                                      : 15.0;
    for (uint64_t i = 0; i < N; ++i) {
        double y = f8_at(reg, i), c = f8_at(cls, i);
        ck_assert_msg(y >= -hi && y <= hi, "label %g out of range", y);
        ck_assert_msg(fabs(y * q - round(y * q)) < 1e-9, "label %g not a multiple of 1/%g", y, q);
        ck_assert_msg(c == (y < 0 ? 0.0 : y > 0 ? 2.0 : 1.0), "class %g for label %g", c, y);
    }
    if (e->kind == DC_SYNTH_SIMS) {
        const char *uni[6] = {"regression_labels_T",     "regression_labels_A",     "regression_labels_V",
                              "classification_labels_T", "classification_labels_A", "classification_labels_V"};
        for (int k = 0; k < 6; ++k) check_array(dict_get(s, uni[k]), uni[k], "f8", 1, N, 0, 0);
    }
    /* text_bert and the padding it implies */
    const struct node *tb = dict_get(s, "text_bert");
    check_array(tb, "text_bert", "i8", 3, N, 3, e->T[0]);
    for (uint64_t i = 0; i < N; ++i) {
        uint64_t T = e->T[0], L = 0;
        while (L < T && i8_at(tb, (i * 3 + 1) * T + L) == 1) ++L;
        ck_assert_msg(L >= 3 && i8_at(tb, i * 3 * T) == 101 && i8_at(tb, i * 3 * T + L - 1) == 102,
                      "sample %llu tokens", (unsigned long long)i);
        ck_assert(frames_content(text, i, 0, L) && frames_zero(text, i, L, T));
        if (e->aligned) { /* audio/vision: zero at [CLS], words 1..L-2, zero from [SEP] on */
            for (int m = 1; m < 3; ++m) {
                const struct node *a = m == 1 ? audio : vision;
                ck_assert(frames_zero(a, i, 0, 1) && frames_content(a, i, 1, L - 1) && frames_zero(a, i, L - 1, T));
            }
        } else {
            const struct node *al = dict_get(s, "audio_lengths"), *vl = dict_get(s, "vision_lengths");
            if (e->kind == DC_SYNTH_SIMS) {
                ck_assert(al->t == N_LIST && al->n == N && vl->t == N_LIST && vl->n == N);
            } else {
                check_array(al, "audio_lengths", "i8", 1, N, 0, 0);
                check_array(vl, "vision_lengths", "i8", 1, N, 0, 0);
            }
            int64_t la = length_at(al, i), lv = length_at(vl, i);
            ck_assert(la >= 1 && la <= (int64_t)e->T[1] && lv >= 1 && lv <= (int64_t)e->T[2]);
            ck_assert(frames_content(audio, i, 0, (uint64_t)la) && frames_zero(audio, i, (uint64_t)la, e->T[1]));
            ck_assert(frames_content(vision, i, 0, (uint64_t)lv) && frames_zero(vision, i, (uint64_t)lv, e->T[2]));
        }
    }
}

START_TEST(structure_of_each_kind) {
    const struct expect *e = &EXPECT[_i];
    char path[256];
    path_in(path, sizeof path, "tiny.pkl");
    const size_t n[3] = {7, 3, 2};
    make(e->kind, e->aligned, n[0], n[1], n[2], 5, path);
    size_t len;
    uint8_t *b = slurp(path, &len);
    ck_assert_ptr_nonnull(b);
    struct parser ps = {.b = b, .len = len};
    const struct node *top = unpickle(&ps);
    ck_assert_msg(top, "%s: %s", dc_synth_kind_name(e->kind), ps.err);
    ck_assert_msg(top->t == N_DICT && top->n == 6, "top level: 3 splits expected");
    const char *splits[3] = {"train", "valid", "test"};
    for (int s = 0; s < 3; ++s) {
        const struct node *sp = dict_get(top, splits[s]);
        ck_assert_msg(sp && sp->t == N_DICT, "split %s", splits[s]);
        check_split(e, sp, n[s]);
    }
    parser_free(&ps);
    free(b);
}
END_TEST

START_TEST(mosei_audio_has_some_minus_inf) {
    char path[256];
    path_in(path, sizeof path, "mosei.pkl");
    make(DC_SYNTH_MOSEI, 1, 200, 1, 1, 3, path);
    size_t len;
    uint8_t *b = slurp(path, &len);
    struct parser ps = {.b = b, .len = len};
    const struct node *top = unpickle(&ps);
    ck_assert_msg(top, "%s", ps.err);
    const struct node *audio = dict_get(dict_get(top, "train"), "audio");
    uint64_t n = audio->len / 4, ninf = 0, other = 0;
    for (uint64_t i = 0; i < n; ++i) {
        float v = f4_at(audio, i);
        if (isinf(v) && v < 0)
            ninf++;
        else if (!isfinite(v))
            other++;
    }
    ck_assert_msg(ninf > 0 && ninf < n / 100 && other == 0, "%llu -inf, %llu other non-finite",
                  (unsigned long long)ninf, (unsigned long long)other);
    parser_free(&ps);
    free(b);
}
END_TEST

/* --- determinism -------------------------------------------------------------------------- */

START_TEST(same_seed_same_bytes_other_seed_differs) {
    char p1[256], p2[256], p3[256];
    path_in(p1, sizeof p1, "a.pkl");
    path_in(p2, sizeof p2, "b.pkl");
    path_in(p3, sizeof p3, "c.pkl");
    static const enum dc_synth_kind kinds[] = {DC_SYNTH_MOSI, DC_SYNTH_SIMS, DC_SYNTH_IEMOCAP};
    for (size_t k = 0; k < 3; ++k) {
        make(kinds[k], -1, 4, 2, 3, 42, p1);
        make(kinds[k], -1, 4, 2, 3, 42, p2);
        make(kinds[k], -1, 4, 2, 3, 43, p3);
        size_t n1, n2, n3;
        uint8_t *a = slurp(p1, &n1), *b = slurp(p2, &n2), *c = slurp(p3, &n3);
        ck_assert_msg(n1 == n2 && memcmp(a, b, n1) == 0, "%s: same seed, different bytes",
                      dc_synth_kind_name(kinds[k]));
        ck_assert_msg(n1 != n3 || memcmp(a, c, n1) != 0, "%s: seeds 42 and 43 gave the same file",
                      dc_synth_kind_name(kinds[k]));
        free(a), free(b), free(c);
    }
}
END_TEST

/* --- atomic writes -------------------------------------------------------------------------- */

START_TEST(missing_directory_leaves_nothing) {
    char path[256];
    path_in(path, sizeof path, "no/such/dir/x.pkl");
    struct dc_synth_options o = {.kind = DC_SYNTH_MOSI, .aligned = -1, .samples = {2, 1, 1}, .seed = 1};
    struct dc_error err = {0};
    ck_assert_int_eq(dc_synth_write(&o, path, NULL, &err), DC_ERR_IO);
    ck_assert_msg(strstr(err.msg, "no/such/dir/x.pkl") != NULL, "message names the file: %s", err.msg);
    ck_assert_uint_eq(dir_entries(), 0);
}
END_TEST

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(failed_write_keeps_existing_file) {
    char path[256];
    path_in(path, sizeof path, "out.pkl");
    write_text(path, "previous contents");
    /* the file system refuses to let the file grow past 256 KiB: writes fail with EFBIG */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 256 * 1024;
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    struct dc_synth_options o = {.kind = DC_SYNTH_MOSI, .aligned = -1, .samples = {20, 5, 5}, .seed = 1};
    struct dc_error err = {0};
    dc_status st = dc_synth_write(&o, path, NULL, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    ck_assert_msg(st == DC_ERR_IO, "expected an i/o error, got %d: %s", st, err.msg);
    size_t n;
    uint8_t *b = slurp(path, &n);
    ck_assert_msg(b && n == strlen("previous contents") && memcmp(b, "previous contents", n) == 0,
                  "the existing file changed");
    free(b);
    ck_assert_msg(dir_entries() == 1, "a temporary file was left behind");
}
END_TEST

START_TEST(rename_onto_directory_fails_cleanly) {
    char path[256];
    path_in(path, sizeof path, "adir");
    ck_assert_int_eq(mkdir(path, 0700), 0);
    char inner[300];
    snprintf(inner, sizeof inner, "%s/keep", path);
    write_text(inner, "x");
    struct dc_synth_options o = {.kind = DC_SYNTH_IEMOCAP, .aligned = -1, .samples = {3, 1, 1}, .seed = 1};
    struct dc_error err = {0};
    ck_assert_int_eq(dc_synth_write(&o, path, NULL, &err), DC_ERR_IO);
    ck_assert_msg(dir_entries() == 1, "a temporary file was left behind");
    struct stat sb;
    ck_assert(stat(inner, &sb) == 0);
    unlink(inner);
}
END_TEST

/* --- the command line ------------------------------------------------------------------------ */

static int run_cmd(const char *args) {
    char buf[1024], *argv[32];
    int argc = 0;
    snprintf(buf, sizeof buf, "make-dataset %s", args);
    for (char *t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " ")) argv[argc++] = t;
    argv[argc] = NULL;
    return dc_cmd_make_dataset(argc, argv);
}

START_TEST(usage_errors_exit_2) {
    char out[256], args[512];
    path_in(out, sizeof out, "u.pkl");
    static const char *const bad[] = {
        "",
        "--like mosi",
        "--out %s",
        "--like imdb --out %s",
        "--like mosi --out %s --samples 1,2",
        "--like mosi --out %s --samples 0,1,1",
        "--like mosi --out %s --samples a,b,c",
        "--like mosi --out %s --samples 1,2,3,4",
        "--like mosi --out %s --seed -1",
        "--like mosi --out %s --seed 12x",
        "--like sims --out %s --aligned",
        "--like iemocap --out %s --unaligned",
        "--like mosi --out %s --aligned --unaligned",
        "--like mosi --out %s --bogus",
        "--like mosi --out",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        snprintf(args, sizeof args, bad[i], out);
        ck_assert_msg(run_cmd(args) == 2, "'%s' should be a usage error", args);
    }
    ck_assert_uint_eq(dir_entries(), 0);
    snprintf(args, sizeof args, "--like mosei --unaligned --samples 2,1,1 --seed 9 --out %s", out);
    ck_assert_int_eq(run_cmd(args), 0);
    ck_assert_uint_eq(dir_entries(), 1);
    snprintf(args, sizeof args, "--like mosi --samples 2,1,1 --out %s/missing/x.pkl", g_dir);
    ck_assert_int_eq(run_cmd(args), 1);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("make_dataset");
    TCase *tc = tcase_create("make_dataset");
    tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, structure_of_each_kind, 0, (int)(sizeof EXPECT / sizeof EXPECT[0]));
    tcase_add_test(tc, mosei_audio_has_some_minus_inf);
    tcase_add_test(tc, same_seed_same_bytes_other_seed_differs);
    tcase_add_test(tc, missing_directory_leaves_nothing);
    tcase_add_test(tc, failed_write_keeps_existing_file);
    tcase_add_test(tc, rename_onto_directory_fails_cleanly);
    tcase_add_test(tc, usage_errors_exit_2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(suite(), 0); }
