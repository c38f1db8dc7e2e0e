/* Containers through libarchive (filter_all + format_all), streamed member by member: a member's
 * bytes go straight from archive_read_data into the pickle or .npy reader. Entries with data
 * descriptors report no size, so streams end when archive_read_data returns 0, never by size. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/archive.h"
#include "data/npy.h"

#define LIST_MAX 2000 /* bytes of member names quoted in errors */

/* ---- memory and file streams ---- */

static dc_status mem_read(void *ctx, void *buf, size_t n, size_t *got, struct dc_error *err) {
    (void)err;
    struct dc_mem_source *m = ctx;
    size_t k = m->len - m->pos < n ? m->len - m->pos : n;
    if (k) memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    *got = k;
    return DC_OK;
}

void dc_stream_init_memory(struct dc_stream *s, struct dc_mem_source *ctx, const void *buf, size_t len,
                           const char *where) {
    ctx->p = buf;
    ctx->len = len;
    ctx->pos = 0;
    s->read = mem_read;
    s->ctx = ctx;
    s->size = (int64_t)len;
    snprintf(s->where, sizeof s->where, "%s", where);
}

struct file_source {
    int fd;
    const char *path;
};

static dc_status file_read(void *ctx, void *buf, size_t n, size_t *got, struct dc_error *err) {
    struct file_source *f = ctx;
    for (;;) {
        ssize_t k = read(f->fd, buf, n > (1u << 30) ? (1u << 30) : n);
        if (k >= 0) {
            *got = (size_t)k;
            return DC_OK;
        }
        if (errno != EINTR) return dc_set_error(err, DC_ERR_IO, "%s: read failed: %s", f->path, strerror(errno));
    }
}

/* ---- archive members ---- */

struct member_source {
    struct archive *a;
    const char *where;
};

static dc_status member_read(void *ctx, void *buf, size_t n, size_t *got, struct dc_error *err) {
    struct member_source *m = ctx;
    la_ssize_t k = archive_read_data(m->a, buf, n);
    if (k < 0)
        return dc_set_error(err, DC_ERR_FORMAT, "%s: corrupt archive data: %s", m->where,
                            archive_error_string(m->a) ? archive_error_string(m->a) : "unknown error");
    *got = (size_t)k;
    return DC_OK;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool is_pickle_name(const char *s) { return ends_with(s, ".pkl") || ends_with(s, ".pickle"); }

static bool same_member(const char *entry, const char *want) {
    while (entry[0] == '.' && entry[1] == '/') entry += 2;
    while (want[0] == '.' && want[1] == '/') want += 2;
    return strcmp(entry, want) == 0;
}

static void list_add(char *list, const char *name) {
    size_t n = strlen(list);
    if (n + strlen(name) + 8 >= LIST_MAX) {
        if (!ends_with(list, ", ...")) snprintf(list + n, LIST_MAX - n, ", ...");
        return;
    }
    snprintf(list + n, LIST_MAX - n, "%s%s", n ? ", " : "", name);
}

struct scan {
    const char *name;   /* the archive, for messages */
    const char *member; /* wanted member or NULL */
    const struct dc_pk_options *opt;
    struct dc_pk_doc *doc;  /* the pickle's document, or the .npz tree */
    char pickles[LIST_MAX]; /* pickle members seen */
    char members[LIST_MAX]; /* every member seen */
    int n_pickles, n_npy;
    bool found;
};

static dc_status read_member(struct scan *sc, struct archive *a, struct archive_entry *e, bool npy,
                             struct dc_error *err) {
    const char *path = archive_entry_pathname(e);
    struct member_source ms = {a, NULL};
    struct dc_stream s = {member_read, &ms, archive_entry_size_is_set(e) ? (int64_t)archive_entry_size(e) : -1, ""};
    snprintf(s.where, sizeof s.where, "%s: member %s", sc->name, path);
    ms.where = s.where;
    if (archive_entry_is_encrypted(e))
        return dc_set_error(err, DC_ERR_UNSUPPORTED, "%s: member is encrypted (decocl does not decrypt archives)",
                            s.where);
    if (!npy) return dc_pickle_load(&s, sc->opt, &sc->doc, err);
    if (!sc->doc && !(sc->doc = dc_pk_doc_new())) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    struct dc_pk_value *arr = NULL;
    dc_status st = dc_npy_read(&s, sc->opt, sc->doc, &arr, err);
    if (st == DC_OK) st = dc_npy_place(sc->doc, path, arr, s.where, err);
    return st;
}

static dc_status scan_archive(struct scan *sc, struct archive *a, struct dc_error *err) {
    struct archive_entry *e;
    for (;;) {
        int rc = archive_read_next_header(a, &e);
        if (rc == ARCHIVE_EOF) break;
        if (rc < ARCHIVE_WARN) {
            const char *why = archive_error_string(a) ? archive_error_string(a) : "unknown error";
            if (!sc->members[0] && !sc->found)
                return dc_set_error(err, DC_ERR_FORMAT,
                                    "%s: neither a pickle (expected PROTO 0x80 as the first byte) nor a readable "
                                    "archive: %s",
                                    sc->name, why);
            return dc_set_error(err, DC_ERR_FORMAT, "%s: corrupt archive: %s", sc->name, why);
        }
        if (archive_entry_filetype(e) != AE_IFREG) continue;
        const char *path = archive_entry_pathname(e);
        if (!path) continue;
        list_add(sc->members, path);
        dc_status st = DC_OK;
        if (sc->member) {
            if (sc->found || !same_member(path, sc->member)) continue;
            sc->found = true;
            st = read_member(sc, a, e, false, err);
            if (st != DC_OK) return st;
            return DC_OK; /* the named member is read; the rest is not our business */
        } else if (is_pickle_name(path)) {
            list_add(sc->pickles, path);
            if (++sc->n_pickles == 1 && sc->n_npy == 0) st = read_member(sc, a, e, false, err);
        } else if (ends_with(path, ".npy") && sc->n_pickles == 0) {
            ++sc->n_npy;
            st = read_member(sc, a, e, true, err);
        }
        if (st != DC_OK) return st;
    }
    if (sc->member && !sc->found)
        return dc_set_error(err, DC_ERR_FORMAT, "%s: no member '%s' (members: %s)", sc->name, sc->member,
                            sc->members[0] ? sc->members : "none");
    if (!sc->member && sc->n_pickles > 1)
        return dc_set_error(err, DC_ERR_FORMAT, "%s: holds several pickles (%s); choose one with %s#MEMBER", sc->name,
                            sc->pickles, sc->name);
    if (!sc->member && sc->n_pickles && sc->n_npy)
        return dc_set_error(err, DC_ERR_FORMAT, "%s: holds both .npy members and a pickle (%s); choose one with %s#MEMBER",
                            sc->name, sc->pickles, sc->name);
    if (!sc->member && !sc->n_pickles && !sc->n_npy)
        return dc_set_error(err, DC_ERR_FORMAT,
                            "%s: neither a pickle (expected PROTO 0x80 as the first byte) nor an archive with a "
                            ".pkl or .npy member (read as %s, members: %s)",
                            sc->name, archive_format_name(a) ? archive_format_name(a) : "an archive",
                            sc->members[0] ? sc->members : "none");
    return DC_OK;
}

/* Runs the scan on an opened libarchive reader; on success *out owns the document. */
static dc_status load_archive(struct archive *a, int open_rc, const char *name, const char *member,
                              const struct dc_pk_options *opt, struct dc_pk_doc **out, struct dc_error *err) {
    struct scan *sc = calloc(1, sizeof *sc);
    dc_status st;
    if (!sc) st = dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    else if (open_rc != ARCHIVE_OK)
        st = dc_set_error(err, DC_ERR_FORMAT,
                          "%s: neither a pickle (expected PROTO 0x80 as the first byte) nor a readable archive "
                          "(corrupt or unknown format: %s)",
                          name,
                          archive_error_string(a) ? archive_error_string(a) : "unknown error");
    else {
        sc->name = name;
        sc->member = member;
        sc->opt = opt;
        st = scan_archive(sc, a, err);
    }
    if (st == DC_OK && sc->doc && !sc->doc->root) st = dc_set_error(err, DC_ERR_FORMAT, "%s: empty archive", name);
    if (st == DC_OK) *out = sc->doc;
    else if (sc) dc_pk_doc_free(sc->doc);
    free(sc);
    archive_read_free(a);
    return st;
}

static struct archive *new_reader(void) {
    struct archive *a = archive_read_new();
    if (!a) return NULL;
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    return a;
}

static bool is_pickle_magic(const unsigned char *p, size_t n) { return n >= 1 && p[0] == 0x80; }
static bool is_npy_magic(const unsigned char *p, size_t n) { return n >= 6 && memcmp(p, "\x93NUMPY", 6) == 0; }

dc_status dc_data_load_memory(const void *buf, size_t len, const char *name, const char *member,
                              const struct dc_pk_options *opt, struct dc_pk_doc **out, struct dc_error *err) {
    *out = NULL;
    if (is_pickle_magic(buf, len)) {
        if (member) return dc_set_error(err, DC_ERR_ARG, "%s: a plain pickle has no member '%s'", name, member);
        struct dc_mem_source m;
        struct dc_stream s;
        dc_stream_init_memory(&s, &m, buf, len, name);
        return dc_pickle_load(&s, opt, out, err);
    }
    struct archive *a = new_reader();
    if (!a) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    return load_archive(a, archive_read_open_memory(a, buf, len), name, member, opt, out, err);
}

/* "path#member": the whole string when it names a file, else split at the last '#'. */
static dc_status split_member(const char *spec, char **path, const char **member, struct dc_error *err) {
    struct stat sb;
    *member = NULL;
    if (!(*path = strdup(spec))) return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    if (stat(spec, &sb) == 0) return DC_OK;
    char *hash = strrchr(*path, '#');
    if (hash && hash[1]) {
        *hash = '\0';
        if (stat(*path, &sb) == 0) {
            *member = hash + 1;
            return DC_OK;
        }
    }
    dc_status st = dc_set_error(err, DC_ERR_IO, "%s: cannot open: %s", spec, strerror(errno));
    free(*path);
    *path = NULL;
    return st;
}

static dc_status load_file(const char *path, const char *member, const struct dc_pk_options *opt,
                           struct dc_pk_doc **out, struct dc_error *err) {
    char where[1100];
    snprintf(where, sizeof where, "%s", path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return dc_set_error(err, DC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    unsigned char magic[8];
    ssize_t n = fstat(fd, &sb) == 0 ? pread(fd, magic, sizeof magic, 0) : -1;
    if (n < 0) {
        close(fd);
        return dc_set_error(err, DC_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    }
    if (n == 0) {
        close(fd);
        return dc_set_error(err, DC_ERR_FORMAT, "%s: empty file", path);
    }
    if (is_pickle_magic(magic, (size_t)n) || is_npy_magic(magic, (size_t)n)) {
        dc_status st;
        if (member) st = dc_set_error(err, DC_ERR_ARG, "%s: not an archive, it has no member '%s'", path, member);
        else if (magic[0] != 0x80)
            st = dc_set_error(err, DC_ERR_FORMAT,
                              "%s: a single .npy holds one array; a dataset is a directory of <split>/<key>.npy or "
                              "a .npz",
                              path);
        else {
#ifdef POSIX_FADV_SEQUENTIAL
            posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
            struct file_source f = {fd, path};
            struct dc_stream s = {file_read, &f, S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : -1, ""};
            snprintf(s.where, sizeof s.where, "%s", path);
            st = dc_pickle_load(&s, opt, out, err);
        }
        close(fd);
        return st;
    }
    struct archive *a = new_reader();
    if (!a) {
        close(fd);
        return dc_set_error(err, DC_ERR_NOMEM, "out of memory");
    }
    dc_status st = load_archive(a, archive_read_open_fd(a, fd, 1 << 20), where, member, opt, out, err);
    close(fd);
    return st;
}

dc_status dc_data_load_doc(const char *spec, const struct dc_pk_options *opt, struct dc_pk_doc **out,
                           struct dc_error *err) {
    *out = NULL;
    char *path;
    const char *member;
    dc_status st = split_member(spec, &path, &member, err);
    if (st != DC_OK) return st;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        st = member ? dc_set_error(err, DC_ERR_ARG, "%s: a directory has no member '%s'", path, member)
                    : dc_npy_load_dir(path, opt, out, err);
    } else {
        st = load_file(path, member, opt, out, err);
    }
    free(path);
    return st;
}
