/* On-disk program cache. An entry is <dir>/<hex key>.bin:
 *   magic "DCCLBIN1" | u32 format version | u32 0 | key[32] | u64 length | sha256(binary)[32] | binary
 * written to <file>.tmp.<pid> and renamed, so concurrent builders never expose
 * half a file; a short or mismatching entry is treated as a miss and replaced. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/cl/cl_internal.h"
#include "core/hash.h"
#include "core/log.h"

#define CACHE_MAGIC "DCCLBIN1"
#define CACHE_VERSION 1u
#define CACHE_HEADER (8 + 4 + 4 + 32 + 8 + 32)

static int mkdir_p(const char *path) {
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return -1;
    for (char *p = tmp + 1; *p; ++p) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

dc_status cl_cache_dir_resolve(const char *flag_dir, char *out, size_t cap, struct dc_error *err) {
    const char *env = getenv("DECOCL_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int len;
    if (flag_dir && *flag_dir) len = snprintf(out, cap, "%s", flag_dir);
    else if (env && *env) len = snprintf(out, cap, "%s", env);
    else if (xdg && *xdg) len = snprintf(out, cap, "%s/decocl", xdg);
    else if (home && *home) len = snprintf(out, cap, "%s/.cache/decocl", home);
    else len = snprintf(out, cap, "/tmp/decocl-cache");
    if (len < 0 || (size_t)len >= cap) return dc_set_error(err, DC_ERR_ARG, "cache directory path too long");
    if (mkdir_p(out) != 0) {
        dc_log_warn("program cache disabled: cannot create %s: %s", out, strerror(errno));
        out[0] = '\0';
    }
    return DC_OK;
}

static void entry_path(const char *dir, const uint8_t key[32], char *out, size_t cap) {
    char hex[65];
    dc_hex(key, 32, hex);
    snprintf(out, cap, "%s/%s.bin", dir, hex);
}

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void cl_cache_read(const char *dir, const uint8_t key[32], unsigned char **bin, size_t *len) {
    *bin = NULL;
    *len = 0;
    if (!dir[0]) return;
    char path[1200];
    entry_path(dir, key, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) return; /* plain miss */
    unsigned char hdr[CACHE_HEADER];
    const char *bad = NULL;
    unsigned char *data = NULL;
    uint64_t n = 0;
    if (fread(hdr, 1, sizeof hdr, f) != sizeof hdr) bad = "short header";
    else if (memcmp(hdr, CACHE_MAGIC, 8) != 0) bad = "bad magic";
    else if ((uint32_t)(hdr[8] | hdr[9] << 8 | hdr[10] << 16 | (uint32_t)hdr[11] << 24) != CACHE_VERSION) bad = "old format";
    else if (memcmp(hdr + 16, key, 32) != 0) bad = "key mismatch";
    else if ((n = get_u64(hdr + 48)) == 0 || n > ((uint64_t)1 << 31)) bad = "bad length";
    else if (!(data = malloc(n))) bad = "out of memory";
    else if (fread(data, 1, n, f) != n) bad = "truncated binary";
    else if (fgetc(f) != EOF) bad = "trailing bytes";
    else {
        uint8_t sum[32];
        dc_sha256(data, n, sum);
        if (memcmp(sum, hdr + 56, 32) != 0) bad = "checksum mismatch";
    }
    fclose(f);
    if (bad) {
        dc_log_warn("program cache entry %s is corrupt (%s); rebuilding it", path, bad);
        free(data);
        return;
    }
    *bin = data;
    *len = n;
}

void cl_cache_write(const char *dir, const uint8_t key[32], const unsigned char *bin, size_t len) {
    if (!dir[0]) return;
    char path[1200], tmp[1300];
    entry_path(dir, key, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    unsigned char hdr[CACHE_HEADER] = {0};
    memcpy(hdr, CACHE_MAGIC, 8);
    hdr[8] = CACHE_VERSION & 0xff;
    memcpy(hdr + 16, key, 32);
    put_u64(hdr + 48, len);
    dc_sha256(bin, len, hdr + 56);
    FILE *f = fopen(tmp, "wb");
    bool ok = f && fwrite(hdr, 1, sizeof hdr, f) == sizeof hdr && fwrite(bin, 1, len, f) == len && fflush(f) == 0 &&
              fsync(fileno(f)) == 0;
    if (f && fclose(f) != 0) ok = false;
    if (!ok || rename(tmp, path) != 0) {
        dc_log_warn("cannot write program cache entry %s: %s", path, strerror(errno));
        unlink(tmp);
    }
}

void cl_cache_remove(const char *dir, const uint8_t key[32]) {
    if (!dir[0]) return;
    char path[1200];
    entry_path(dir, key, path, sizeof path);
    unlink(path);
}
