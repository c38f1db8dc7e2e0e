/* safetensors checkpoints: the golden files load into the flat layout and are rewritten
 * byte for byte, round trips, a Python-written fixture, hostile headers, strict loading
 * and atomic writes. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "decocl/decocl.h"
#include "golden_dims.h"
#include "model/checkpoint.h"
#include "test_util.h"

#define FIXTURES DECOCL_SOURCE_DIR "/tests/data"

static void layout_of(const char *gcase, struct dc_param_layout *pl) {
    struct dc_model_dims m;
    char why[512];
    ck_assert_msg(golden_dims(gcase, &m, why, sizeof why), "%s: %s", gcase, why);
    struct dc_error err = {0};
    ck_assert_msg(dc_param_layout_init(pl, &m, &err) == DC_OK, "%s: %s", gcase, err.msg);
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    ck_assert_msg(fp, "cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    ck_assert(buf && fread(buf, 1, (size_t)n, fp) == (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static char *make_tmpdir(void) {
    char *dir = strdup("/tmp/decocl_ckpt_XXXXXX");
    ck_assert(dir && mkdtemp(dir));
    return dir;
}

/* Removes dir and the plain files in it. */
static void remove_tmpdir(char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[1024];
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (unlink(p) != 0) rmdir(p);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

/* Entries in dir whose name contains ".tmp.". */
static int count_tmp_files(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* Values read from the golden files with /usr/bin/python3 (numpy): the u64 header
 * length, the JSON header, then np.frombuffer(data[b:e], '<f4') per tensor, flattened;
 * value = float(a[index]).hex(). */
static const struct {
    const char *gcase, *name;
    size_t index;
    float value;
} GOLDEN_VALUES[] = {
    {"mosi", "proj_l.weight", 0, -0x1.9efa4ep-6f},
    {"mosi", "proj_v.weight", 1279, 0x1.a97dcep-7f},
    {"mosi", "trans_v.layers.4.fc2.weight", 16383, -0x1.e8395p-5f},
    {"mosi", "trans_a.layers.0.self_attn.in_proj_weight", 5, -0x1.996b12p-5f},
    {"mosi", "pde_a.net.3.bias", 0, -0x1.5216acp-4f},
    {"mosi", "out_layer.weight", 383, 0x1.53d53ap-6f},
    {"mosi", "out_layer.bias", 0, -0x1.6784f4p-6f},
    {"sims", "proj_l.weight", 0, -0x1.224e8cp-10f},
    {"sims", "proj_v.weight", 113439, 0x1.3b3958p-7f},
    {"sims", "trans_v.layers.3.fc2.weight", 4095, -0x1.529a22p-4f},
    {"sims", "out_layer.bias", 0, 0x1.8348ep-5f},
    {"iemocap", "proj_v.weight", 49151, 0x1.992278p-6f},
    {"iemocap", "trans_a.layers.0.self_attn.in_proj_weight", 5, 0x1.7b86a2p-5f},
    {"iemocap", "out_layer.weight", 1727, 0x1.ac1e58p-6f},
    {"iemocap", "out_layer.bias", 5, 0x1.285bd8p-11f},
    {"soft", "proj_v.weight", 63, 0x1.60259ep-2f},
    {"soft", "trans_v.layers.1.fc2.weight", 255, 0x1.6d7a28p-5f},
    {"soft", "pde_a.net.3.bias", 0, -0x1.af5c44p-3f},
    {"edge", "proj_l.weight", 0, 0x1.7b88ecp-6f},
    {"edge", "proj_v.weight", 255, -0x1.741d8p-3f},
    {"edge", "trans_v.layers.0.fc2.weight", 1023, -0x1.c3d3bp-5f},
    {"edge", "out_layer.bias", 0, -0x1.196e2cp-4f},
};

START_TEST(golden_weights_load) {
    const char *gcase = GOLDEN_CASES[_i];
    struct dc_param_layout pl;
    layout_of(gcase, &pl);
    float *buf = malloc(pl.total * sizeof *buf);
    ck_assert_ptr_nonnull(buf);
    memset(buf, 0x7f, pl.total * sizeof *buf);
    char path[1024];
    golden_path(path, sizeof path, gcase, "weights.safetensors");
    struct dc_error err = {0};
    struct dc_st_meta meta = {0};
    ck_assert_msg(dc_checkpoint_load(path, &pl, buf, &meta, &err) == DC_OK, "%s", err.msg);
    ck_assert_str_eq(dc_st_meta_get(&meta, "case"), gcase);
    ck_assert_ptr_nonnull(dc_st_meta_get(&meta, "seed"));
    ck_assert_ptr_null(dc_st_meta_get(&meta, "format"));
    dc_st_meta_free(&meta);
    size_t checked = 0;
    for (size_t k = 0; k < sizeof GOLDEN_VALUES / sizeof GOLDEN_VALUES[0]; ++k) {
        if (strcmp(GOLDEN_VALUES[k].gcase, gcase) != 0) continue;
        const struct dc_param_desc *d = dc_param_find(&pl, GOLDEN_VALUES[k].name);
        ck_assert_ptr_nonnull(d);
        ck_assert_uint_lt(GOLDEN_VALUES[k].index, d->numel);
        float got = buf[d->offset + GOLDEN_VALUES[k].index];
        ck_assert_msg(got == GOLDEN_VALUES[k].value, "%s: %s[%zu] = %a, python says %a", gcase, d->name,
                      GOLDEN_VALUES[k].index, (double)got, (double)GOLDEN_VALUES[k].value);
        ++checked;
    }
    ck_assert_uint_ge(checked, 3);
    /* The reference's initial weights obey our init kinds: bounds, zeros, ones; padding is 0. */
    size_t end = 0;
    for (size_t i = 0; i < pl.count; ++i) {
        const struct dc_param_desc *d = &pl.desc[i];
        for (size_t j = end; j < d->offset; ++j) ck_assert_msg(buf[j] == 0.0f, "padding before %s", d->name);
        double b = dc_param_init_bound(d);
        for (size_t j = 0; j < d->numel; ++j) {
            float x = buf[d->offset + j];
            if (d->init == DC_PARAM_INIT_ZERO)
                ck_assert_msg(x == 0.0f, "%s: %s[%zu] = %g", gcase, d->name, j, x);
            else if (d->init == DC_PARAM_INIT_ONE)
                ck_assert_msg(x == 1.0f, "%s: %s[%zu] = %g", gcase, d->name, j, x);
            else
                ck_assert_msg(fabs(x) <= (float)b, "%s: %s[%zu] = %g above bound %g", gcase, d->name, j, x, b);
        }
        end = d->offset + d->numel;
    }
    free(buf);
    dc_param_layout_free(&pl);
}
END_TEST

/* Our writer, given the golden tensors and metadata in their order, reproduces the
 * reference's file byte for byte (same JSON layout, same padding). */
START_TEST(golden_weights_rewritten_byte_exact) {
    const char *gcase = GOLDEN_CASES[_i];
    char path[1024], out[1024];
    golden_path(path, sizeof path, gcase, "weights.safetensors");
    struct dc_st_file f;
    struct dc_error err = {0};
    ck_assert_msg(dc_st_read(path, &f, &err) == DC_OK, "%s", err.msg);
    struct dc_st_entry *e = calloc(f.count, sizeof *e);
    struct dc_st_kv *kv = calloc(f.meta.n + 1, sizeof *kv);
    ck_assert(e && kv);
    for (size_t i = 0; i < f.count; ++i) {
        e[i].name = f.tensors[i].name;
        e[i].ndim = f.tensors[i].ndim;
        memcpy(e[i].shape, f.tensors[i].shape, sizeof e[i].shape);
        e[i].data = f.tensors[i].data;
    }
    for (size_t i = 0; i < f.meta.n; ++i) kv[i] = (struct dc_st_kv){f.meta.keys[i], f.meta.values[i]};
    char *dir = make_tmpdir();
    snprintf(out, sizeof out, "%s/rewritten.safetensors", dir);
    ck_assert_msg(dc_st_write(out, e, f.count, kv, f.meta.n, &err) == DC_OK, "%s", err.msg);
    size_t la, lb;
    unsigned char *a = slurp(path, &la), *b = slurp(out, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert_msg(memcmp(a, b, la) == 0, "%s: rewritten file differs", gcase);
    free(a);
    free(b);
    free(e);
    free(kv);
    dc_st_free(&f);
    remove_tmpdir(dir);
}
END_TEST

/* grads.safetensors holds `output` and grad.<name>: the generic reader and a prefixed gather. */
START_TEST(golden_grads_generic_reader) {
    struct dc_param_layout pl;
    layout_of("mosi", &pl);
    char path[1024];
    golden_path(path, sizeof path, "mosi", "grads.safetensors");
    struct dc_st_file f;
    struct dc_error err = {0};
    ck_assert_msg(dc_st_read(path, &f, &err) == DC_OK, "%s", err.msg);
    ck_assert_uint_eq(f.count, pl.count + 1);
    const struct dc_st_tensor *o = dc_st_find(&f, "output");
    ck_assert_ptr_nonnull(o);
    ck_assert(o->ndim == 2 && o->shape[0] == 16 && o->shape[1] == 1 && o->numel == 16);
    ck_assert_msg(o->data[0] == -0x1.dae54cp-3f, "output[0] = %a", (double)o->data[0]); /* python, as above */
    float *g = malloc(pl.total * sizeof *g);
    ck_assert_ptr_nonnull(g);
    ck_assert_msg(dc_checkpoint_gather(&f, path, &pl, "grad.", g, &err) == DC_OK, "%s", err.msg);
    const struct dc_st_tensor *t = dc_st_find(&f, "grad.trans_a.layers.2.fc1.weight");
    const struct dc_param_desc *d = dc_param_find(&pl, "trans_a.layers.2.fc1.weight");
    ck_assert(t && d && memcmp(t->data, g + d->offset, d->numel * sizeof *g) == 0);
    /* Without the prefix, `output` and every grad.* are unexpected. */
    ck_assert_int_eq(dc_checkpoint_gather(&f, path, &pl, "", g, &err), DC_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "unexpected tensor 'output'"), "%s", err.msg);
    free(g);
    dc_st_free(&f);
    dc_param_layout_free(&pl);
}
END_TEST

static const struct dc_model_dims SMALL = {
    .d = 8, .heads = 2, .nlevels = 2, .feat = {5, 3, 8}, .kernel = {3, 1, 2}, .pde_dim = 4, .out_dim = 3};

START_TEST(round_trip_byte_exact) {
    struct dc_param_layout pl;
    struct dc_error err = {0};
    ck_assert_msg(dc_param_layout_init(&pl, &SMALL, &err) == DC_OK, "%s", err.msg);
    size_t bytes = pl.total * sizeof(float);
    float *a = malloc(bytes), *b = malloc(bytes);
    ck_assert(a && b);
    dc_params_init(&pl, a, 99);
    a[dc_param_get(&pl, DC_PARAM_OUT_B)->offset] = -0.0f; /* bits, not values, survive */
    char *dir = make_tmpdir();
    char p1[1024], p2[1024];
    snprintf(p1, sizeof p1, "%s/one.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/two.safetensors", dir);
    const struct dc_st_kv meta[] = {{"config", "{\"d\": 8, \"quote\": \"\\\"\"}"}, {"note", "ünïcode"}};
    ck_assert_msg(dc_checkpoint_save(p1, &pl, a, meta, 2, &err) == DC_OK, "%s", err.msg);
    struct dc_st_meta got = {0};
    memset(b, 0x55, bytes);
    ck_assert_msg(dc_checkpoint_load(p1, &pl, b, &got, &err) == DC_OK, "%s", err.msg);
    ck_assert(memcmp(a, b, bytes) == 0);
    ck_assert_str_eq(dc_st_meta_get(&got, "format"), "pt");
    ck_assert_str_eq(dc_st_meta_get(&got, "decocl_version"), DECOCL_VERSION);
    ck_assert_str_eq(dc_st_meta_get(&got, "config"), meta[0].value);
    ck_assert_str_eq(dc_st_meta_get(&got, "note"), meta[1].value);
    ck_assert_uint_eq(got.n, 4);
    dc_st_meta_free(&got);
    ck_assert_msg(dc_checkpoint_save(p2, &pl, b, meta, 2, &err) == DC_OK, "%s", err.msg);
    size_t l1, l2;
    unsigned char *f1 = slurp(p1, &l1), *f2 = slurp(p2, &l2);
    ck_assert(l1 == l2 && memcmp(f1, f2, l1) == 0);
    /* The header is padded with spaces to 8 bytes, and the data follows it exactly. */
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | f1[i];
    ck_assert_uint_eq(n % 8, 0);
    size_t numel = 0;
    for (size_t i = 0; i < pl.count; ++i) numel += pl.desc[i].numel;
    ck_assert_uint_eq(l1 - 8 - n, 4 * numel);
    ck_assert_int_eq(count_tmp_files(dir), 0);
    free(f1);
    free(f2);
    free(a);
    free(b);
    remove_tmpdir(dir);
    dc_param_layout_free(&pl);
}
END_TEST

/* tests/make_safetensors_fixture.py: element i of a tensor is (i + 1) * scale. */
START_TEST(python_written_fixture) {
    static const char *const files[] = {FIXTURES "/st_python_small.safetensors",
                                        FIXTURES "/st_python_unpadded.safetensors"};
    static const struct {
        const char *name;
        size_t ndim, shape[3], numel;
        float scale;
    } want[] = {
        {"z.last_in_name_first_in_data", 2, {2, 3}, 6, 0.5f},
        {"a.weight", 3, {4, 2, 1}, 8, -0.25f},
        {"scalar", 0, {0}, 1, 3.0f},
        {"empty", 2, {0, 4}, 0, 1.0f},
        {"m.bias", 1, {5}, 5, 0.125f},
    };
    for (size_t k = 0; k < 2; ++k) {
        struct dc_st_file f;
        struct dc_error err = {0};
        ck_assert_msg(dc_st_read(files[k], &f, &err) == DC_OK, "%s", err.msg);
        ck_assert_uint_eq(f.count, 5);
        for (size_t i = 0; i < 5; ++i) {
            const struct dc_st_tensor *t = &f.tensors[i]; /* in data order */
            ck_assert_str_eq(t->name, want[i].name);
            ck_assert_uint_eq(t->ndim, want[i].ndim);
            ck_assert_uint_eq(t->numel, want[i].numel);
            for (size_t j = 0; j < t->ndim; ++j) ck_assert_uint_eq(t->shape[j], want[i].shape[j]);
            for (size_t j = 0; j < t->numel; ++j) ck_assert(t->data[j] == (float)(j + 1) * want[i].scale);
        }
        ck_assert_str_eq(dc_st_meta_get(&f.meta, "writer"), "make_safetensors_fixture.py");
        dc_st_free(&f);
    }
    size_t len;
    unsigned char *raw = slurp(files[1], &len);
    ck_assert_msg(raw[0] % 2 == 1, "the unpadded fixture should have an odd header length");
    free(raw);
}
END_TEST

/* Hostile files, built in memory: each gives a specific status and names the tensor or offset. */
static const struct bad_case {
    const char *what;
    long long n; /* header length to store; -1: strlen(json) */
    const char *json;
    size_t data; /* data bytes after the header */
    dc_status want;
    const char *msg1, *msg2; /* substrings the message must hold */
} BAD[] = {
    {"header length past EOF", 1000, "{}", 0, DC_ERR_FORMAT, "byte 0", "header length 1000"},
    {"header length above 1e8", 100000001, "{}", 0, DC_ERR_FORMAT, "byte 0", "limit"},
    {"invalid JSON", -1, "{\"t\":{\"dtype\":\"F32\",", 0, DC_ERR_FORMAT, "header byte", "invalid JSON"},
    {"header not an object", -1, "[1]", 0, DC_ERR_FORMAT, "file byte 8", "not a JSON object"},
    {"duplicate names", -1,
     "{\"dup_name\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"dup_name\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     8, DC_ERR_FORMAT, "dup_name", "duplicate"},
    {"hole", -1,
     "{\"t1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"t2\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
     12, DC_ERR_FORMAT, "'t2': hole of 4 bytes", "file byte"},
    {"hole at the start", -1, "{\"t1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, DC_ERR_FORMAT,
     "'t1': hole", "file byte"},
    {"overlap", -1,
     "{\"t1\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"t2\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     8, DC_ERR_FORMAT, "overlaps", "'t1'"},
    {"trailing bytes", -1, "{\"t1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, DC_ERR_FORMAT,
     "4 trailing bytes", "file byte"},
    {"offsets beyond EOF", -1, "{\"t1\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, DC_ERR_FORMAT,
     "'t1'", "past the end"},
    {"F16", -1, "{\"halfw\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, DC_ERR_UNSUPPORTED,
     "'halfw'", "F16"},
    {"shape/length mismatch", -1, "{\"t1\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, DC_ERR_FORMAT,
     "'t1'", "needs 12 bytes"},
    {"end before begin", -1, "{\"t1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, DC_ERR_FORMAT,
     "'t1'", "before they begin"},
    {"negative shape", -1, "{\"t1\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, DC_ERR_FORMAT,
     "'t1'", "shape[0]"},
    {"missing data_offsets", -1, "{\"t1\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, DC_ERR_FORMAT, "'t1'",
     "data_offsets"},
    {"unknown field", -1, "{\"t1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, DC_ERR_FORMAT,
     "'t1'", "'x'"},
    {"metadata not strings", -1, "{\"__metadata__\":{\"k\":1}}", 0, DC_ERR_FORMAT, "__metadata__", "'k'"},
    {"huge shape", -1, "{\"t1\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
     DC_ERR_FORMAT, "'t1'", "2^64"},
};

START_TEST(hostile_headers_rejected) {
    const struct bad_case *c = &BAD[_i];
    size_t jl = strlen(c->json), len = 8 + jl + c->data;
    unsigned char *buf = calloc(1, len);
    ck_assert_ptr_nonnull(buf);
    uint64_t n = c->n < 0 ? jl : (uint64_t)c->n;
    for (int i = 0; i < 8; ++i) buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, c->json, jl);
    struct dc_st_file f;
    struct dc_error err = {0};
    dc_status rc = dc_st_parse(buf, len, "mem.safetensors", &f, &err);
    ck_assert_msg(rc == c->want, "%s: status %s (%s), want %s", c->what, dc_status_str(rc), err.msg,
                  dc_status_str(c->want));
    ck_assert_msg(strstr(err.msg, "mem.safetensors") && strstr(err.msg, c->msg1) && strstr(err.msg, c->msg2),
                  "%s: message lacks '%s'/'%s': %s", c->what, c->msg1, c->msg2, err.msg);
    ck_assert(f.count == 0 && f.tensors == NULL && f.meta.n == 0);
    free(buf);
}
END_TEST

START_TEST(short_and_missing_files) {
    struct dc_st_file f;
    struct dc_error err = {0};
    ck_assert_int_eq(dc_st_parse("abc", 3, "tiny", &f, &err), DC_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "tiny") && strstr(err.msg, "too short"), "%s", err.msg);
    ck_assert_int_eq(dc_st_read("/nonexistent/x.safetensors", &f, &err), DC_ERR_IO);
    ck_assert_msg(strstr(err.msg, "/nonexistent/x.safetensors"), "%s", err.msg);
    /* Through a real file: the path names the file. */
    char *dir = make_tmpdir();
    char p[1024];
    snprintf(p, sizeof p, "%s/cut.safetensors", dir);
    FILE *fp = fopen(p, "wb");
    ck_assert_ptr_nonnull(fp);
    const unsigned char hdr[12] = {64, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    fwrite(hdr, 1, sizeof hdr, fp);
    fclose(fp);
    ck_assert_int_eq(dc_st_read(p, &f, &err), DC_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, p) && strstr(err.msg, "byte 0"), "%s", err.msg);
    remove_tmpdir(dir);
}
END_TEST

/* Entries for every parameter of pl from buf, names owned by pl. */
static struct dc_st_entry *entries_of(const struct dc_param_layout *pl, const float *buf, size_t extra) {
    struct dc_st_entry *e = calloc(pl->count + extra, sizeof *e);
    ck_assert_ptr_nonnull(e);
    for (size_t i = 0; i < pl->count; ++i) {
        const struct dc_param_desc *d = &pl->desc[i];
        e[i].name = d->name;
        e[i].ndim = d->ndim;
        for (size_t j = 0; j < d->ndim; ++j) e[i].shape[j] = d->shape[j];
        e[i].data = buf + d->offset;
    }
    return e;
}

/* Writes the entries, loads strictly, expects a status and a message naming the tensor;
 * the destination buffer must stay untouched. */
static void expect_load_fails(const char *dir, const struct dc_param_layout *pl, const struct dc_st_entry *e, size_t n,
                              dc_status want, const char *msg1, const char *msg2) {
    char p[1024];
    snprintf(p, sizeof p, "%s/bad.safetensors", dir);
    struct dc_error err = {0};
    ck_assert_msg(dc_st_write(p, e, n, NULL, 0, &err) == DC_OK, "%s", err.msg);
    float *dst = malloc(pl->total * sizeof *dst);
    ck_assert_ptr_nonnull(dst);
    for (size_t i = 0; i < pl->total; ++i) dst[i] = 42.0f;
    dc_status rc = dc_checkpoint_load(p, pl, dst, NULL, &err);
    ck_assert_msg(rc == want, "status %s (%s)", dc_status_str(rc), err.msg);
    ck_assert_msg(strstr(err.msg, p) && strstr(err.msg, msg1) && strstr(err.msg, msg2), "message lacks '%s'/'%s': %s",
                  msg1, msg2, err.msg);
    for (size_t i = 0; i < pl->total; ++i) ck_assert_msg(dst[i] == 42.0f, "buffer written at %zu on failure", i);
    free(dst);
}

START_TEST(strict_load_names_the_tensor) {
    struct dc_param_layout pl;
    struct dc_error err = {0};
    ck_assert_msg(dc_param_layout_init(&pl, &SMALL, &err) == DC_OK, "%s", err.msg);
    float *buf = malloc(pl.total * sizeof *buf);
    ck_assert_ptr_nonnull(buf);
    dc_params_init(&pl, buf, 5);
    char *dir = make_tmpdir();
    struct dc_st_entry *e = entries_of(&pl, buf, 1);
    size_t ob = dc_param_index(&pl, "pde_v.net.3.weight");

    /* missing: drop pde_v.net.3.weight */
    struct dc_st_entry saved = e[ob];
    memmove(&e[ob], &e[ob + 1], (pl.count - ob - 1) * sizeof *e);
    expect_load_fails(dir, &pl, e, pl.count - 1, DC_ERR_FORMAT, "missing tensor 'pde_v.net.3.weight'", "[4, 8]");
    memmove(&e[ob + 1], &e[ob], (pl.count - ob - 1) * sizeof *e);
    e[ob] = saved;

    /* unexpected: one more tensor */
    e[pl.count] = (struct dc_st_entry){.name = "trans_l.layers.2.fc1.weight", .ndim = 1, .shape = {1}, .data = buf};
    expect_load_fails(dir, &pl, e, pl.count + 1, DC_ERR_FORMAT, "unexpected tensor 'trans_l.layers.2.fc1.weight'",
                      "no such parameter");

    /* mis-shaped: the transpose of out_layer.weight */
    size_t ow = dc_param_index(&pl, "out_layer.weight");
    e[ow].shape[0] = 48;
    e[ow].shape[1] = 3;
    expect_load_fails(dir, &pl, e, pl.count, DC_ERR_FORMAT, "'out_layer.weight' has shape [48, 3]", "expects [3, 48]");
    e[ow].shape[0] = 3;
    e[ow].shape[1] = 48;
    /* mis-shaped rank: a Conv1d weight saved without its kernel axis */
    size_t eu = dc_param_index(&pl, "encoder_uni_a.weight");
    e[eu].ndim = 2;
    expect_load_fails(dir, &pl, e, pl.count, DC_ERR_FORMAT, "'encoder_uni_a.weight' has shape [8, 8]",
                      "expects [8, 8, 1]");
    e[eu].ndim = 3;

    /* all well: loads */
    char p[1024];
    snprintf(p, sizeof p, "%s/good.safetensors", dir);
    ck_assert_msg(dc_st_write(p, e, pl.count, NULL, 0, &err) == DC_OK, "%s", err.msg);
    float *dst = malloc(pl.total * sizeof *dst);
    ck_assert_msg(dc_checkpoint_load(p, &pl, dst, NULL, &err) == DC_OK, "%s", err.msg);
    ck_assert(memcmp(dst, buf, pl.total * sizeof *dst) == 0);
    free(dst);
    free(e);
    free(buf);
    remove_tmpdir(dir);
    dc_param_layout_free(&pl);
}
END_TEST

/* A failed write leaves the old file as it was and no temporary file behind. */
START_TEST(atomic_write_keeps_old_file) {
    struct dc_param_layout pl;
    struct dc_error err = {0};
    ck_assert_msg(dc_param_layout_init(&pl, &SMALL, &err) == DC_OK, "%s", err.msg);
    float *buf = calloc(pl.total, sizeof *buf);
    ck_assert_ptr_nonnull(buf);
    dc_params_init(&pl, buf, 3);
    char *dir = make_tmpdir();
    char p[1024];
    snprintf(p, sizeof p, "%s/ckpt.safetensors", dir);
    const struct dc_st_entry small = {.name = "old", .ndim = 1, .shape = {2}, .data = buf};
    ck_assert_msg(dc_st_write(p, &small, 1, NULL, 0, &err) == DC_OK, "%s", err.msg);
    size_t l0;
    unsigned char *before = slurp(p, &l0);

    /* The file size limit makes the write fail midway (EFBIG; the signal is ignored). */
    struct rlimit old_lim, lim;
    ck_assert(getrlimit(RLIMIT_FSIZE, &old_lim) == 0);
    lim = old_lim;
    lim.rlim_cur = 4096;
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    dc_status rc = dc_checkpoint_save(p, &pl, buf, NULL, 0, &err);
    setrlimit(RLIMIT_FSIZE, &old_lim);
    signal(SIGXFSZ, old_sig);
    ck_assert_msg(rc == DC_ERR_IO, "status %s: %s", dc_status_str(rc), err.msg);
    ck_assert_msg(strstr(err.msg, p), "%s", err.msg);
    size_t l1;
    unsigned char *after = slurp(p, &l1);
    ck_assert(l0 == l1 && memcmp(before, after, l0) == 0);
    ck_assert_int_eq(count_tmp_files(dir), 0);
    free(after);

    /* The target is a directory: rename fails, the temporary file is removed. */
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/adir", dir);
    ck_assert(mkdir(sub, 0700) == 0);
    ck_assert_int_eq(dc_checkpoint_save(sub, &pl, buf, NULL, 0, &err), DC_ERR_IO);
    ck_assert_msg(strstr(err.msg, "renaming"), "%s", err.msg);
    ck_assert_int_eq(count_tmp_files(dir), 0);

    /* No such directory. */
    ck_assert_int_eq(dc_checkpoint_save("/nonexistent-dir/x.safetensors", &pl, buf, NULL, 0, &err), DC_ERR_IO);

    /* Bad writer input: nothing is created. */
    const struct dc_st_entry dup[2] = {small, small};
    char q[1024];
    snprintf(q, sizeof q, "%s/dup.safetensors", dir);
    ck_assert_int_eq(dc_st_write(q, dup, 2, NULL, 0, &err), DC_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "'old' given twice"), "%s", err.msg);
    ck_assert(access(q, F_OK) != 0);
    const struct dc_st_kv own[] = {{"format", "np"}};
    ck_assert_int_eq(dc_checkpoint_save(q, &pl, buf, own, 1, &err), DC_ERR_ARG);
    ck_assert(access(q, F_OK) != 0);
    ck_assert_int_eq(count_tmp_files(dir), 0);

    /* The old file is still readable and intact. */
    struct dc_st_file f;
    ck_assert_msg(dc_st_read(p, &f, &err) == DC_OK, "%s", err.msg);
    ck_assert(f.count == 1 && f.tensors[0].data[1] == buf[1]);
    dc_st_free(&f);
    free(before);
    free(buf);
    remove_tmpdir(dir);
    dc_param_layout_free(&pl);
}
END_TEST

static Suite *checkpoint_suite(void) {
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, golden_weights_load, 0, (int)GOLDEN_NCASES);
    tcase_add_loop_test(tc, golden_weights_rewritten_byte_exact, 0, (int)GOLDEN_NCASES);
    tcase_add_test(tc, golden_grads_generic_reader);
    suite_add_tcase(s, tc);
    tc = tcase_create("format");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, round_trip_byte_exact);
    tcase_add_test(tc, python_written_fixture);
    tcase_add_loop_test(tc, hostile_headers_rejected, 0, (int)(sizeof BAD / sizeof BAD[0]));
    tcase_add_test(tc, short_and_missing_files);
    tcase_add_test(tc, strict_load_names_the_tensor);
    tcase_add_test(tc, atomic_write_keeps_old_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(checkpoint_suite(), 0); }
