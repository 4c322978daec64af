/*
 * api_test.c: exercises every function of include/diskq.h from C.
 *
 * Usage: api_test TMPDIR
 *
 * TMPDIR must be an existing, empty, writable directory; each section
 * makes its own queue and output folders in it. The program prints one
 * line per failed check, then "N passed, M failed" as its last line, and
 * exits with status 1 if any check failed.
 *
 * tests/c_abi.rs compiles this file with
 *   gcc -std=c99 -Wall -Wextra -Werror -pedantic -pthread
 * links it against libdiskq.so (and, in a second build, libdiskq.a) and
 * runs it, also under valgrind when valgrind is installed. Every resource
 * the program takes is released, so valgrind reports no leak.
 *
 * Only the main thread calls CHECK and the EXPECT_* macros. Worker
 * threads store what they saw, and the main thread checks it after
 * joining them.
 */

#define _XOPEN_SOURCE 700

#include "diskq.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

static int passed;
static int failed;
static char root[PATH_MAX];

/* Copies this thread's last error message before any other dq_ call
 * can replace it. */
static void last_message(char *buf, size_t len)
{
    snprintf(buf, len, "%s", dq_last_error_message());
}

static void report(int ok, int line, const char *what)
{
    char message[512];

    if (ok) {
        passed++;
        return;
    }
    last_message(message, sizeof message);
    failed++;
    printf("FAIL line %d: %s\n", line, what);
    printf("    last error message: \"%s\"\n", message);
}

#define CHECK(cond) report((cond) != 0, __LINE__, #cond)

static void expect_status(dq_status got, dq_status want, const char *expr,
                          int line)
{
    char message[512];

    if (got == want) {
        passed++;
        return;
    }
    last_message(message, sizeof message);
    failed++;
    printf("FAIL line %d: %s returned %s (%d), expected %s\n", line, expr,
           dq_status_str(got), (int)got, dq_status_str(want));
    printf("    last error message: \"%s\"\n", message);
}

#define EXPECT_STATUS(expr, want) \
    expect_status((expr), (want), #expr, __LINE__)

static int utf8_valid(const unsigned char *s)
{
    while (*s) {
        int extra;
        unsigned cp;
        int i;

        if (*s < 0x80) {
            s++;
            continue;
        }
        if ((*s & 0xe0) == 0xc0) {
            extra = 1;
            cp = *s & 0x1f;
        } else if ((*s & 0xf0) == 0xe0) {
            extra = 2;
            cp = *s & 0x0f;
        } else if ((*s & 0xf8) == 0xf0) {
            extra = 3;
            cp = *s & 0x07;
        } else {
            return 0;
        }
        for (i = 1; i <= extra; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
            (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        s += extra + 1;
    }
    return 1;
}

/* Checks that the last error message contains `needle` and is valid
 * UTF-8. Call it right after the failing call. */
static void expect_message(const char *needle, int line)
{
    char message[8192];

    last_message(message, sizeof message);
    if (strstr(message, needle) != NULL) {
        passed++;
    } else {
        failed++;
        printf("FAIL line %d: last error message lacks \"%s\"\n", line,
               needle);
        printf("    last error message: \"%s\"\n", message);
    }
    if (utf8_valid((const unsigned char *)message)) {
        passed++;
    } else {
        failed++;
        printf("FAIL line %d: last error message is not valid UTF-8\n",
               line);
    }
}

#define EXPECT_MESSAGE(needle) expect_message((needle), __LINE__)

/* A failing call: the status, then the message naming the problem. */
#define EXPECT_ERROR(expr, want, needle)          \
    do {                                          \
        EXPECT_STATUS(expr, want);                \
        EXPECT_MESSAGE(needle);                   \
    } while (0)

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

/* Writes dir/name to `out`; exits if it does not fit. */
static void join(char *out, size_t len, const char *dir, const char *name)
{
    int n = snprintf(out, len, "%s/%s", dir, name);

    if (n < 0 || (size_t)n >= len) {
        fprintf(stderr, "path too long: %s/%s\n", dir, name);
        exit(2);
    }
}

/* Writes root/name to `out` and creates that directory. */
static void make_dir(char *out, size_t len, const char *name)
{
    join(out, len, root, name);
    if (mkdir(out, 0755) != 0)
        printf("FAIL: mkdir %s: %s\n", out, strerror(errno));
    CHECK(access(out, W_OK) == 0);
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int remove_tree(const char *path)
{
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int count_suffix(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = strlen(suffix);
    int count = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len >= n && strcmp(e->d_name + len - n, suffix) == 0)
            count++;
    }
    closedir(d);
    return count;
}

/* The lines of every finished output file, in file name order. */
struct lines {
    char **v;
    size_t n;
    size_t cap;
    int files;
    size_t max_per_file;
    int unterminated;
    int not_object;
};

static void lines_push(struct lines *l, char *line)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (l->v == NULL) {
            perror("realloc");
            exit(2);
        }
    }
    l->v[l->n++] = line;
}

static void lines_free(struct lines *l)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads every *.jsonl file in `dir` with stdio. Each line must end in
 * "\n", be valid UTF-8, start with '{', end with '}' and hold no '\r';
 * the counters in `out` record the lines that do not. */
static void read_output(const char *dir, struct lines *out)
{
    char *names[256];
    int n = 0;
    int i;
    DIR *d = opendir(dir);
    struct dirent *e;

    memset(out, 0, sizeof *out);
    if (d == NULL) {
        printf("FAIL: opendir %s: %s\n", dir, strerror(errno));
        failed++;
        return;
    }
    while ((e = readdir(d)) != NULL && n < 256) {
        size_t len = strlen(e->d_name);
        if (len > 6 && strcmp(e->d_name + len - 6, ".jsonl") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], compare_names);

    for (i = 0; i < n; i++) {
        char path[PATH_MAX];
        char *buf = NULL;
        size_t cap = 0;
        ssize_t len;
        size_t in_file = 0;
        FILE *f;

        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        f = fopen(path, "rb");
        free(names[i]);
        if (f == NULL) {
            printf("FAIL: fopen %s: %s\n", path, strerror(errno));
            failed++;
            continue;
        }
        out->files++;
        while ((len = getline(&buf, &cap, f)) > 0) {
            size_t body = (size_t)len;
            if (buf[body - 1] == '\n')
                buf[--body] = '\0';
            else
                out->unterminated++;
            if (body < 2 || buf[0] != '{' || buf[body - 1] != '}' ||
                strlen(buf) != body || strchr(buf, '\r') != NULL ||
                !utf8_valid((const unsigned char *)buf))
                out->not_object++;
            lines_push(out, strdup(buf));
            in_file++;
        }
        if (in_file > out->max_per_file)
            out->max_per_file = in_file;
        free(buf);
        fclose(f);
    }
}

/* Checks that `got` contains exactly the lines `want`, in order. */
static void expect_lines(const struct lines *got, const char *const *want,
                         size_t n, int line)
{
    size_t i;

    if (got->n != n) {
        failed++;
        printf("FAIL line %d: output has %zu lines, expected %zu\n", line,
               got->n, n);
    } else {
        passed++;
    }
    for (i = 0; i < n && i < got->n; i++) {
        if (strcmp(got->v[i], want[i]) != 0) {
            failed++;
            printf("FAIL line %d: output line %zu is\n    %s\n"
                   "expected\n    %s\n",
                   line, i, got->v[i], want[i]);
            return;
        }
    }
    passed++;
}

#define EXPECT_LINES(got, want, n) expect_lines((got), (want), (n), __LINE__)

/* Checks the shape of every line read by read_output. */
#define EXPECT_CLEAN_OUTPUT(l)           \
    do {                                 \
        CHECK((l)->unterminated == 0);   \
        CHECK((l)->not_object == 0);     \
    } while (0)

/* ------------------------------------------------------------------ */
/* Transitions                                                         */
/* ------------------------------------------------------------------ */

static const float SAMPLE_OBS[3] = {0.5f, -1.25f, 3.0f};
static const uint8_t SAMPLE_MASK[4] = {1, 0, 1, 1};

static dq_transition sample(const char *game, const char *player,
                            uint64_t seq)
{
    dq_transition t;

    memset(&t, 0, sizeof t);
    t.obs = SAMPLE_OBS;
    t.obs_len = 3;
    t.mask = SAMPLE_MASK;
    t.mask_len = 4;
    t.action = 2;
    t.reward = 0.0;
    t.done = 0;
    t.game_id = game;
    t.player_id = player;
    t.seq = seq;
    return t;
}

/* The line diskq writes for sample(game, player, seq). */
static void sample_json(char *buf, size_t len, const char *game,
                        const char *player, uint64_t seq)
{
    snprintf(buf, len,
             "{\"obs\":[0.5,-1.25,3.0],\"mask\":[1,0,1,1],\"action\":2,"
             "\"reward\":0.0,\"done\":false,\"gameId\":\"%s\","
             "\"playerId\":\"%s\",\"seq\":%" PRIu64 "}",
             game, player, seq);
}

static dq_status push_str(dq_producer *p, const char *json)
{
    return dq_producer_push(p, (const uint8_t *)json, strlen(json));
}

/* Consumer options writing to `out_dir` under the id `id`. */
static dq_consumer_options consumer_options(const char *out_dir,
                                            const char *id)
{
    dq_consumer_options o;

    memset(&o, 0xab, sizeof o);
    EXPECT_STATUS(dq_consumer_options_default(&o, sizeof o), DQ_STATUS_OK);
    o.output_dir = out_dir;
    o.consumer_id = id;
    return o;
}

/* Opens a consumer, polls once, closes and frees it. */
static dq_poll_result consume_all(const char *queue, const char *out_dir,
                                  const char *id)
{
    dq_consumer_options o = consumer_options(out_dir, id);
    dq_consumer *c = NULL;
    dq_poll_result r;

    memset(&r, 0, sizeof r);
    EXPECT_STATUS(dq_consumer_open(queue, &o, &c), DQ_STATUS_OK);
    if (c == NULL)
        return r;
    EXPECT_STATUS(dq_consumer_poll(c, &r), DQ_STATUS_OK);
    EXPECT_STATUS(dq_consumer_close(c), DQ_STATUS_OK);
    dq_consumer_free(c);
    return r;
}

/* ------------------------------------------------------------------ */
/* Static strings and the last error                                   */
/* ------------------------------------------------------------------ */

static void test_version_and_status_names(void)
{
    static const char *const names[] = {
        "DQ_STATUS_OK",          "DQ_STATUS_NULL_ARGUMENT",
        "DQ_STATUS_INVALID_ARGUMENT", "DQ_STATUS_INVALID_JSON",
        "DQ_STATUS_NON_FINITE",  "DQ_STATUS_INVALID_FIELD",
        "DQ_STATUS_LINE_TOO_LONG", "DQ_STATUS_IO",
        "DQ_STATUS_CLOSED",      "DQ_STATUS_POISONED",
        "DQ_STATUS_LOCKED",      "DQ_STATUS_PANIC",
    };
    static const int32_t codes[] = {
        DQ_STATUS_OK,          DQ_STATUS_NULL_ARGUMENT,
        DQ_STATUS_INVALID_ARGUMENT, DQ_STATUS_INVALID_JSON,
        DQ_STATUS_NON_FINITE,  DQ_STATUS_INVALID_FIELD,
        DQ_STATUS_LINE_TOO_LONG, DQ_STATUS_IO,
        DQ_STATUS_CLOSED,      DQ_STATUS_POISONED,
        DQ_STATUS_LOCKED,      DQ_STATUS_PANIC,
    };
    static const int32_t unknown[] = {-1, 12, 999, INT32_MIN, INT32_MAX};
    const char *version = dq_version();
    unsigned major, minor, patch;
    char tail;
    size_t i;

    CHECK(version != NULL);
    if (version != NULL)
        CHECK(sscanf(version, "%u.%u.%u%c", &major, &minor, &patch,
                     &tail) == 3);
    CHECK(dq_version() == version);

    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *name = dq_status_str(codes[i]);
        CHECK(codes[i] == (int32_t)i);
        CHECK(name != NULL);
        if (name != NULL)
            CHECK(strcmp(name, names[i]) == 0);
    }
    for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *name = dq_status_str(unknown[i]);
        CHECK(name != NULL);
        if (name != NULL)
            CHECK(strcmp(name, "DQ_STATUS_UNKNOWN") == 0);
    }
}

struct thread_message {
    char before[256];
    char after[256];
};

static void *message_thread(void *arg)
{
    struct thread_message *m = arg;

    last_message(m->before, sizeof m->before);
    dq_producer_options_default(NULL, sizeof(dq_producer_options));
    last_message(m->after, sizeof m->after);
    return NULL;
}

static void test_last_error_is_per_thread(void)
{
    struct thread_message m;
    dq_producer *p = NULL;
    char mine[256];
    pthread_t t;

    EXPECT_ERROR(dq_producer_open(NULL, NULL, &p), DQ_STATUS_NULL_ARGUMENT,
                 "queue directory");
    last_message(mine, sizeof mine);

    memset(&m, 0, sizeof m);
    CHECK(pthread_create(&t, NULL, message_thread, &m) == 0);
    CHECK(pthread_join(t, NULL) == 0);

    /* A fresh thread has no error yet, and its failure stays its own. */
    CHECK(strcmp(m.before, "") == 0);
    CHECK(strstr(m.after, "options") != NULL);
    CHECK(strcmp(dq_last_error_message(), mine) == 0);
}

static void test_last_error_copy(void)
{
    char full[256];
    char buf[64];
    dq_consumer *c = NULL;
    size_t len;
    size_t written;

    /* A known message: "queue directory is NULL" or similar. */
    EXPECT_STATUS(dq_consumer_open(NULL, NULL, &c), DQ_STATUS_NULL_ARGUMENT);
    last_message(full, sizeof full);
    len = strlen(full);
    CHECK(len > 8);
    CHECK(len < sizeof buf);

    /* Room for everything. */
    memset(buf, 'X', sizeof buf);
    written = 12345;
    EXPECT_STATUS(dq_last_error_copy(buf, sizeof buf, &written),
                  DQ_STATUS_OK);
    CHECK(written == len);
    CHECK(strcmp(buf, full) == 0);

    /* Exactly enough room for the text and its NUL. */
    memset(buf, 'X', sizeof buf);
    EXPECT_STATUS(dq_last_error_copy(buf, len + 1, &written), DQ_STATUS_OK);
    CHECK(written == len);
    CHECK(strcmp(buf, full) == 0);
    CHECK(buf[len + 1] == 'X');

    /* One byte short: cut, NUL-terminated, nothing written past len. */
    memset(buf, 'X', sizeof buf);
    EXPECT_STATUS(dq_last_error_copy(buf, len, &written), DQ_STATUS_OK);
    CHECK(written == len - 1);
    CHECK(buf[len - 1] == '\0');
    CHECK(strncmp(buf, full, len - 1) == 0);
    CHECK(buf[len] == 'X');

    memset(buf, 'X', sizeof buf);
    EXPECT_STATUS(dq_last_error_copy(buf, 5, &written), DQ_STATUS_OK);
    CHECK(written == 4);
    CHECK(buf[4] == '\0');
    CHECK(strncmp(buf, full, 4) == 0);
    CHECK(buf[5] == 'X');

    /* Only the NUL fits. */
    memset(buf, 'X', sizeof buf);
    EXPECT_STATUS(dq_last_error_copy(buf, 1, &written), DQ_STATUS_OK);
    CHECK(written == 0);
    CHECK(buf[0] == '\0');
    CHECK(buf[1] == 'X');

    /* Nothing fits: nothing is written, out_written is 0. */
    memset(buf, 'X', sizeof buf);
    written = 99;
    EXPECT_STATUS(dq_last_error_copy(buf, 0, &written), DQ_STATUS_OK);
    CHECK(written == 0);
    CHECK(buf[0] == 'X');
    written = 99;
    EXPECT_STATUS(dq_last_error_copy(NULL, 0, &written), DQ_STATUS_OK);
    CHECK(written == 0);

    /* out_written may be NULL; buf may not be while len > 0. */
    memset(buf, 'X', sizeof buf);
    EXPECT_STATUS(dq_last_error_copy(buf, sizeof buf, NULL), DQ_STATUS_OK);
    CHECK(strcmp(buf, full) == 0);
    written = 77;
    EXPECT_STATUS(dq_last_error_copy(NULL, 8, &written),
                  DQ_STATUS_NULL_ARGUMENT);
    CHECK(written == 77);

    /* Copying does not change the message. */
    CHECK(strcmp(dq_last_error_message(), full) == 0);
}

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

static void test_option_defaults(void)
{
    dq_producer_options po;
    dq_consumer_options co;

    memset(&po, 0xab, sizeof po);
    EXPECT_STATUS(dq_producer_options_default(&po, sizeof po), DQ_STATUS_OK);
    CHECK(po.max_lot_lines == 500);
    CHECK(po.max_lot_bytes == 512 * 1024);
    CHECK(po.max_lot_age_ms == 2000);
    CHECK(po.max_line_bytes == 16 * 1024 * 1024);
    CHECK(po.write_through == 0);
    CHECK(po.durable == 0);
    CHECK(po.recover_on_open == 1);

    memset(&co, 0xab, sizeof co);
    EXPECT_STATUS(dq_consumer_options_default(&co, sizeof co), DQ_STATUS_OK);
    CHECK(co.output_dir == NULL);
    CHECK(co.consumer_id == NULL);
    CHECK(co.max_output_lines == 5000);
    CHECK(co.max_line_bytes == 16 * 1024 * 1024);
    CHECK(co.durable == 0);
    CHECK(co.recover_interval_ms == 10000);
    CHECK(po.struct_size == sizeof po);
    CHECK(co.struct_size == sizeof co);
}

/* A caller compiled against an older, shorter header passes its smaller
 * sizeof: the library writes only that much and reads only that much. */
static void test_option_struct_size(void)
{
    char q[PATH_MAX];
    unsigned char buf[sizeof(dq_producer_options) + 16];
    dq_producer_options po;
    dq_producer *p = NULL;
    size_t old_size = offsetof(dq_producer_options, max_lot_bytes);

    make_dir(q, sizeof q, "q_struct_size");

    memset(buf, 0xab, sizeof buf);
    EXPECT_STATUS(dq_producer_options_default((dq_producer_options *)buf,
                                              old_size),
                  DQ_STATUS_OK);
    CHECK(buf[old_size] == 0xab);
    memcpy(&po, buf, old_size);
    CHECK(po.struct_size == old_size);
    CHECK(po.max_lot_lines == 500);

    /* Fields past struct_size are never read: garbage there is ignored. */
    memset((unsigned char *)&po + old_size, 0xff, sizeof po - old_size);
    po.max_lot_lines = 3;
    EXPECT_STATUS(dq_producer_open(q, &po, &p), DQ_STATUS_OK);
    dq_producer_free(p);

    EXPECT_ERROR(dq_producer_options_default(&po, 4),
                 DQ_STATUS_INVALID_ARGUMENT, "size 4");
    dq_producer_options_default(&po, sizeof po);
    po.struct_size = 0;
    p = NULL;
    EXPECT_ERROR(dq_producer_open(q, &po, &p), DQ_STATUS_INVALID_ARGUMENT,
                 "struct_size");
    CHECK(p == NULL);
}

/* A producer opened with format DQ_LOT_BINARY writes binary lots, which
 * the consumer turns into the same JSON lines. */
static void test_binary_lots(void)
{
    char q[PATH_MAX], out[PATH_MAX], incoming[PATH_MAX], expected[2][512];
    const char *want[2];
    dq_producer_options po;
    dq_producer *p = NULL;
    dq_transition t;
    dq_poll_result r;
    struct lines got = {0};

    make_dir(q, sizeof q, "q_binary");
    join(out, sizeof out, root, "out_binary");
    join(incoming, sizeof incoming, q, "incoming");

    dq_producer_options_default(&po, sizeof po);
    CHECK(po.format == DQ_LOT_JSON);
    po.format = 2;
    EXPECT_ERROR(dq_producer_open(q, &po, &p), DQ_STATUS_INVALID_ARGUMENT,
                 "format");

    po.format = DQ_LOT_BINARY;
    EXPECT_STATUS(dq_producer_open(q, &po, &p), DQ_STATUS_OK);
    if (p == NULL)
        return;
    t = sample("gb", "pA", 0);
    EXPECT_STATUS(dq_producer_push_transition(p, &t), DQ_STATUS_OK);
    EXPECT_ERROR(push_str(p, "{\"not\":\"a transition\"}"),
                 DQ_STATUS_INVALID_JSON, "transitions only");
    sample_json(expected[1], sizeof expected[1], "gb", "pA", 1);
    EXPECT_STATUS(push_str(p, expected[1]), DQ_STATUS_OK);
    EXPECT_STATUS(dq_producer_close(p), DQ_STATUS_OK);
    dq_producer_free(p);
    CHECK(count_suffix(incoming, ".ready") == 1);

    r = consume_all(q, out, "binary");
    CHECK(r.lines == 2);
    sample_json(expected[0], sizeof expected[0], "gb", "pA", 0);
    want[0] = expected[0];
    want[1] = expected[1];
    read_output(out, &got);
    expect_lines(&got, want, 2, __LINE__);
    lines_free(&got);
}

static void test_invalid_options(void)
{
    char q[PATH_MAX], out[PATH_MAX], id33[34];
    dq_producer *sentinel_p = (dq_producer *)&sentinel_p;
    dq_producer *p = sentinel_p;
    dq_consumer *sentinel_c = (dq_consumer *)&sentinel_c;
    dq_consumer *c = sentinel_c;
    dq_producer_options po;
    dq_consumer_options co;

    make_dir(q, sizeof q, "q_options");
    join(out, sizeof out, root, "out_options");

    dq_producer_options_default(&po, sizeof po);
    po.durable = 2;
    EXPECT_ERROR(dq_producer_open(q, &po, &p), DQ_STATUS_INVALID_ARGUMENT,
                 "durable");
    dq_producer_options_default(&po, sizeof po);
    po.write_through = 3;
    EXPECT_ERROR(dq_producer_open(q, &po, &p), DQ_STATUS_INVALID_ARGUMENT,
                 "write_through");
    dq_producer_options_default(&po, sizeof po);
    po.recover_on_open = 255;
    EXPECT_ERROR(dq_producer_open(q, &po, &p), DQ_STATUS_INVALID_ARGUMENT,
                 "recover_on_open");
    dq_producer_options_default(&po, sizeof po);
    po.max_lot_lines = 0;
    EXPECT_ERROR(dq_producer_open(q, &po, &p), DQ_STATUS_INVALID_ARGUMENT,
                 "max_lot_lines");
    dq_producer_options_default(&po, sizeof po);
    po.max_lot_bytes = 0;
    EXPECT_ERROR(dq_producer_open(q, &po, &p), DQ_STATUS_INVALID_ARGUMENT,
                 "max_lot_bytes");
    dq_producer_options_default(&po, sizeof po);
    po.max_line_bytes = 0;
    EXPECT_ERROR(dq_producer_open(q, &po, &p), DQ_STATUS_INVALID_ARGUMENT,
                 "max_line_bytes");
    /* Out-pointers are written only on success. */
    CHECK(p == sentinel_p);

    co = consumer_options(out, "opts");
    co.durable = 2;
    EXPECT_ERROR(dq_consumer_open(q, &co, &c), DQ_STATUS_INVALID_ARGUMENT,
                 "durable");
    co = consumer_options(out, "opts");
    co.max_output_lines = 0;
    EXPECT_ERROR(dq_consumer_open(q, &co, &c), DQ_STATUS_INVALID_ARGUMENT,
                 "max_output_lines");
    co = consumer_options(out, "opts");
    co.max_line_bytes = 0;
    EXPECT_ERROR(dq_consumer_open(q, &co, &c), DQ_STATUS_INVALID_ARGUMENT,
                 "max_line_bytes");
    co = consumer_options(out, "bad id");
    EXPECT_ERROR(dq_consumer_open(q, &co, &c), DQ_STATUS_INVALID_ARGUMENT,
                 "consumer id");
    co = consumer_options(out, "");
    EXPECT_ERROR(dq_consumer_open(q, &co, &c), DQ_STATUS_INVALID_ARGUMENT,
                 "consumer id");
    co = consumer_options(out, "c\xff");
    EXPECT_ERROR(dq_consumer_open(q, &co, &c), DQ_STATUS_INVALID_ARGUMENT,
                 "consumer id");
    memset(id33, 'a', 33);
    id33[33] = '\0';
    co = consumer_options(out, id33);
    EXPECT_ERROR(dq_consumer_open(q, &co, &c), DQ_STATUS_INVALID_ARGUMENT,
                 "consumer id");
    co = consumer_options("", "opts");
    EXPECT_ERROR(dq_consumer_open(q, &co, &c), DQ_STATUS_INVALID_ARGUMENT,
                 "output_dir");
    CHECK(c == sentinel_c);

    EXPECT_ERROR(dq_set_log_callback(NULL, NULL, 9),
                 DQ_STATUS_INVALID_ARGUMENT, "max_level");
    EXPECT_ERROR(dq_set_log_callback(NULL, NULL, 6),
                 DQ_STATUS_INVALID_ARGUMENT, "max_level");
    EXPECT_ERROR(dq_set_log_callback(NULL, NULL, -1),
                 DQ_STATUS_INVALID_ARGUMENT, "max_level");
}

/* ------------------------------------------------------------------ */
/* Round trips                                                         */
/* ------------------------------------------------------------------ */

static void test_round_trip_null_options(void)
{
    static const char *const json[] = {
        "{\"obs\":[1.5],\"mask\":[1],\"action\":0,\"reward\":0.5,"
        "\"done\":false,\"gameId\":\"j1\",\"playerId\":\"pA\",\"seq\":0}",
        "{\"x\":\"caf\xc3\xa9\",\"n\":null}",
    };
    char q[PATH_MAX], out[PATH_MAX], archive[PATH_MAX];
    char want[8][256];
    const char *want_ptr[8];
    size_t n_want = 0;
    dq_producer *p = NULL;
    dq_transition batch[2];
    dq_transition t;
    dq_poll_result r;
    struct lines got;
    size_t accepted = 99;
    size_t bytes = 0;
    size_t i;

    make_dir(q, sizeof q, "q_round_null");
    join(out, sizeof out, root, "out_round_null");
    join(archive, sizeof archive, q, "archive");

    EXPECT_STATUS(dq_producer_open(q, NULL, &p), DQ_STATUS_OK);
    CHECK(p != NULL);
    if (p == NULL)
        return;

    /* JSON without and with a trailing newline. */
    EXPECT_STATUS(push_str(p, json[0]), DQ_STATUS_OK);
    snprintf(want[n_want++], sizeof want[0], "%s", json[0]);
    snprintf(want[n_want], sizeof want[0], "%s\n", json[1]);
    EXPECT_STATUS(push_str(p, want[n_want]), DQ_STATUS_OK);
    snprintf(want[n_want++], sizeof want[0], "%s", json[1]);

    /* A struct, then an array of two. */
    t = sample("g1", "pA", 7);
    t.done = 1;
    t.reward = -1.0;
    t.action = -3;
    EXPECT_STATUS(dq_producer_push_transition(p, &t), DQ_STATUS_OK);
    snprintf(want[n_want++], sizeof want[0],
             "{\"obs\":[0.5,-1.25,3.0],\"mask\":[1,0,1,1],\"action\":-3,"
             "\"reward\":-1.0,\"done\":true,\"gameId\":\"g1\","
             "\"playerId\":\"pA\",\"seq\":7}");
    batch[0] = sample("g2", "pB", 0);
    batch[1] = sample("g2", "pB", 1);
    batch[1].obs = NULL;
    batch[1].obs_len = 0;
    batch[1].mask = NULL;
    batch[1].mask_len = 0;
    EXPECT_STATUS(dq_producer_push_transitions(p, batch, 2, &accepted),
                  DQ_STATUS_OK);
    CHECK(accepted == 2);
    sample_json(want[n_want++], sizeof want[0], "g2", "pB", 0);
    snprintf(want[n_want++], sizeof want[0],
             "{\"obs\":[],\"mask\":[],\"action\":2,\"reward\":0.0,"
             "\"done\":false,\"gameId\":\"g2\",\"playerId\":\"pB\","
             "\"seq\":1}");
    EXPECT_STATUS(dq_producer_flush(p), DQ_STATUS_OK);

    /* One more after the flush goes out with close. */
    t = sample("g3", "pA", 0);
    EXPECT_STATUS(dq_producer_push_transition(p, &t), DQ_STATUS_OK);
    sample_json(want[n_want++], sizeof want[0], "g3", "pA", 0);
    EXPECT_STATUS(dq_producer_close(p), DQ_STATUS_OK);
    dq_producer_free(p);

    r = consume_all(q, out, "round1");
    for (i = 0; i < n_want; i++) {
        want_ptr[i] = want[i];
        bytes += strlen(want[i]) + 1;
    }
    /* The flush and the close each publish one lot; the 2 s age limit
     * can split them further on a slow machine. */
    CHECK(r.lots >= 2);
    CHECK(r.lots == (uint64_t)count_suffix(archive, ".done"));
    CHECK(r.lines == n_want);
    CHECK(r.bytes == bytes);
    CHECK(r.quarantined == 0);
    CHECK(count_suffix(out, ".jsonl.open") == 0);

    read_output(out, &got);
    EXPECT_CLEAN_OUTPUT(&got);
    EXPECT_LINES(&got, want_ptr, n_want);
    CHECK(got.files == 1);
    lines_free(&got);
}

static void test_round_trip_options(void)
{
    char q[PATH_MAX], out[PATH_MAX], archive[PATH_MAX], incoming[PATH_MAX];
    char want[10][256];
    const char *want_ptr[10];
    dq_producer_options po;
    dq_consumer_options co;
    dq_producer *p = NULL;
    dq_consumer *c = NULL;
    dq_poll_result r;
    uint64_t finished = 0;
    struct lines got;
    uint64_t i;

    make_dir(q, sizeof q, "q_round_opts");
    join(out, sizeof out, root, "out_round_opts");
    join(archive, sizeof archive, q, "archive");
    join(incoming, sizeof incoming, q, "incoming");

    EXPECT_STATUS(dq_producer_options_default(&po, sizeof po), DQ_STATUS_OK);
    po.max_lot_lines = 3;
    po.max_lot_age_ms = 0;
    po.write_through = 1;
    po.durable = 1;
    EXPECT_STATUS(dq_producer_open(q, &po, &p), DQ_STATUS_OK);
    if (p == NULL)
        return;
    for (i = 0; i < 10; i++) {
        dq_transition t = sample("g", "pA", i);
        EXPECT_STATUS(dq_producer_push_transition(p, &t), DQ_STATUS_OK);
        sample_json(want[i], sizeof want[0], "g", "pA", i);
        want_ptr[i] = want[i];
    }
    /* Three full lots are out already; the tenth line is still pending. */
    CHECK(count_suffix(incoming, ".ready") == 3);
    CHECK(count_suffix(incoming, ".part") == 1);
    EXPECT_STATUS(dq_producer_close(p), DQ_STATUS_OK);
    dq_producer_free(p);

    co = consumer_options(out, "round2");
    co.max_output_lines = 4;
    co.durable = 1;
    co.recover_interval_ms = 0;
    EXPECT_STATUS(dq_consumer_open(q, &co, &c), DQ_STATUS_OK);
    if (c == NULL)
        return;
    EXPECT_STATUS(dq_consumer_poll(c, &r), DQ_STATUS_OK);
    CHECK(r.lots == 4);
    CHECK(r.lines == 10);
    CHECK(r.quarantined == 0);
    finished += r.finished_files;

    /* Nothing new: an empty result. */
    memset(&r, 0xab, sizeof r);
    EXPECT_STATUS(dq_consumer_poll(c, &r), DQ_STATUS_OK);
    CHECK(r.lots == 0);
    CHECK(r.lines == 0);
    CHECK(r.bytes == 0);
    CHECK(r.quarantined == 0);
    finished += r.finished_files;
    EXPECT_STATUS(dq_consumer_poll(c, NULL), DQ_STATUS_OK);
    EXPECT_STATUS(dq_consumer_close(c), DQ_STATUS_OK);
    dq_consumer_free(c);

    CHECK(count_suffix(archive, ".done") == 4);
    read_output(out, &got);
    EXPECT_CLEAN_OUTPUT(&got);
    EXPECT_LINES(&got, want_ptr, 10);
    /* Lots of 3, 3, 3 and 1 lines into files of at most 4 lines. */
    CHECK(got.max_per_file <= 4);
    CHECK(got.files == 3);
    CHECK(finished == 3);
    lines_free(&got);
}

static void test_default_output_folder(void)
{
    char dir[PATH_MAX], q[PATH_MAX], cwd[PATH_MAX], made[PATH_MAX];
    dq_consumer *c = NULL;
    dq_poll_result r;
    struct stat st;

    make_dir(dir, sizeof dir, "cwd_default");
    make_dir(q, sizeof q, "q_default_out");
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(dir) == 0);

    /* NULL options: output in ./dataset/transitions, id "main". */
    EXPECT_STATUS(dq_consumer_open(q, NULL, &c), DQ_STATUS_OK);
    CHECK(c != NULL);
    if (c != NULL) {
        EXPECT_STATUS(dq_consumer_poll(c, &r), DQ_STATUS_OK);
        CHECK(r.lots == 0);
        dq_consumer_free(c);
    }
    CHECK(chdir(cwd) == 0);
    join(made, sizeof made, dir, "dataset/transitions");
    CHECK(stat(made, &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    join(made, sizeof made, q, "consumers/main.lock");
    CHECK(stat(made, &st) == 0);
}

/* ------------------------------------------------------------------ */
/* Bad input                                                           */
/* ------------------------------------------------------------------ */

struct bad_json {
    const char *data;
    size_t len;
    dq_status want;
    const char *needle;
};

#define BAD(text, status, needle) {text, sizeof text - 1, status, needle}

static void test_bad_input(void)
{
    static const struct bad_json bad[] = {
        BAD("{\"a\":", DQ_STATUS_INVALID_JSON, "invalid JSON"),
        BAD("{\"reward\":NaN}", DQ_STATUS_NON_FINITE, "reward"),
        BAD("{\"reward\":nan}", DQ_STATUS_NON_FINITE, "reward"),
        BAD("{\"reward\":-Infinity}", DQ_STATUS_NON_FINITE, "reward"),
        BAD("{\"obs\":[1,Infinity]}", DQ_STATUS_NON_FINITE, "obs[1]"),
        BAD("[1]", DQ_STATUS_INVALID_JSON, "object"),
        BAD("\"s\"", DQ_STATUS_INVALID_JSON, "object"),
        BAD("", DQ_STATUS_INVALID_JSON, "empty"),
        BAD(" \n", DQ_STATUS_INVALID_JSON, "empty"),
        BAD("{} {}", DQ_STATUS_INVALID_JSON, "invalid JSON"),
        BAD("{\"a\":1}\n{\"b\":2}\n", DQ_STATUS_INVALID_JSON,
            "invalid JSON"),
        BAD("{\"p\":\"p\xff\"}", DQ_STATUS_INVALID_JSON, "UTF-8"),
        BAD("{\"p\":\"\xc3\"}", DQ_STATUS_INVALID_JSON, "UTF-8"),
        BAD("{\"a\":\"x\0y\"}", DQ_STATUS_INVALID_JSON, "invalid JSON"),
        BAD("{\"a\":\"x\ny\"}", DQ_STATUS_INVALID_JSON, "invalid JSON"),
    };
    static const float inf_obs[3] = {1.0f, 2.0f, INFINITY};
    static const float neg_inf_obs[1] = {-INFINITY};
    static const uint8_t bad_mask[2] = {1, 7};
    char q[PATH_MAX], out[PATH_MAX];
    char want[64][128];
    const char *want_ptr[64];
    char long_line[300];
    char long_id[300];
    size_t n_want = 0;
    dq_producer_options po;
    dq_producer *p = NULL;
    dq_transition t, batch[3];
    dq_poll_result r;
    struct lines got;
    size_t accepted;
    size_t i;
    float nan_obs[2];
    volatile double zero = 0.0;

    make_dir(q, sizeof q, "q_bad");
    join(out, sizeof out, root, "out_bad");
    dq_producer_options_default(&po, sizeof po);
    po.max_lot_age_ms = 0;
    po.max_line_bytes = 200;
    EXPECT_STATUS(dq_producer_open(q, &po, &p), DQ_STATUS_OK);
    if (p == NULL)
        return;

/* Pushes a good line, so each rejection is seen to keep what came
 * before it. */
#define PUSH_GOOD()                                                     \
    do {                                                                \
        snprintf(want[n_want], sizeof want[0], "{\"good\":%zu}",        \
                 n_want);                                               \
        EXPECT_STATUS(push_str(p, want[n_want]), DQ_STATUS_OK);         \
        n_want++;                                                       \
    } while (0)

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        PUSH_GOOD();
        EXPECT_ERROR(dq_producer_push(p, (const uint8_t *)bad[i].data,
                                      bad[i].len),
                     bad[i].want, bad[i].needle);
    }

    /* NULL data with length 0 is an empty line. */
    PUSH_GOOD();
    EXPECT_ERROR(dq_producer_push(p, NULL, 0), DQ_STATUS_INVALID_JSON,
                 "empty");

    /* Longer than max_line_bytes. */
    PUSH_GOOD();
    memset(long_line, ' ', sizeof long_line);
    long_line[0] = '{';
    long_line[sizeof long_line - 1] = '}';
    EXPECT_ERROR(dq_producer_push(p, (const uint8_t *)long_line,
                                  sizeof long_line),
                 DQ_STATUS_LINE_TOO_LONG, "200");

    /* Accepted, but written as one line: pretty-printed JSON, CRLF, and
     * a raw U+2028 inside a string. */
    EXPECT_STATUS(push_str(p, "{\n  \"a\": 1,\n  \"b\": [1,\n    2]\n}\n"),
                  DQ_STATUS_OK);
    snprintf(want[n_want++], sizeof want[0],
             "{  \"a\": 1,  \"b\": [1,    2]}");
    EXPECT_STATUS(push_str(p, "{\r\n\"crlf\":1}\r\n"), DQ_STATUS_OK);
    snprintf(want[n_want++], sizeof want[0], "{\"crlf\":1}");
    EXPECT_STATUS(push_str(p, "{\"s\":\"a\xe2\x80\xa8" "b\"}"),
                  DQ_STATUS_OK);
    snprintf(want[n_want++], sizeof want[0], "{\"s\":\"a\\u2028b\"}");

    /* Struct fields. */
    PUSH_GOOD();
    t = sample("g", "p\xff", 0);
    EXPECT_ERROR(dq_producer_push_transition(p, &t),
                 DQ_STATUS_INVALID_FIELD, "player_id");
    EXPECT_MESSAGE("UTF-8");
    PUSH_GOOD();
    t = sample("g\xc3", "p", 0);
    EXPECT_ERROR(dq_producer_push_transition(p, &t),
                 DQ_STATUS_INVALID_FIELD, "game_id");
    PUSH_GOOD();
    t = sample("g", "p", 0);
    t.reward = NAN;
    EXPECT_ERROR(dq_producer_push_transition(p, &t), DQ_STATUS_NON_FINITE,
                 "reward");
    PUSH_GOOD();
    t.reward = zero / zero;
    EXPECT_ERROR(dq_producer_push_transition(p, &t), DQ_STATUS_NON_FINITE,
                 "reward");
    PUSH_GOOD();
    t.reward = -INFINITY;
    EXPECT_ERROR(dq_producer_push_transition(p, &t), DQ_STATUS_NON_FINITE,
                 "reward");
    PUSH_GOOD();
    t = sample("g", "p", 0);
    t.obs = inf_obs;
    t.obs_len = 3;
    EXPECT_ERROR(dq_producer_push_transition(p, &t), DQ_STATUS_NON_FINITE,
                 "obs[2]");
    PUSH_GOOD();
    t.obs = neg_inf_obs;
    t.obs_len = 1;
    EXPECT_ERROR(dq_producer_push_transition(p, &t), DQ_STATUS_NON_FINITE,
                 "obs[0]");
    PUSH_GOOD();
    nan_obs[0] = 0.0f;
    nan_obs[1] = NAN;
    t.obs = nan_obs;
    t.obs_len = 2;
    EXPECT_ERROR(dq_producer_push_transition(p, &t), DQ_STATUS_NON_FINITE,
                 "obs[1]");
    PUSH_GOOD();
    t = sample("g", "p", 0);
    t.mask = bad_mask;
    t.mask_len = 2;
    EXPECT_ERROR(dq_producer_push_transition(p, &t),
                 DQ_STATUS_INVALID_FIELD, "mask[1]");
    PUSH_GOOD();
    t = sample("g", "p", 0);
    t.done = 2;
    EXPECT_ERROR(dq_producer_push_transition(p, &t),
                 DQ_STATUS_INVALID_FIELD, "done");
    PUSH_GOOD();
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    t = sample(long_id, "p", 0);
    EXPECT_ERROR(dq_producer_push_transition(p, &t),
                 DQ_STATUS_LINE_TOO_LONG, "200");

    /* An array stops at its first bad item, and the message names
     * that item's index. */
    batch[0] = sample("gb", "pb", 0);
    batch[1] = sample("gb", "pb", 1);
    batch[1].reward = NAN;
    batch[2] = sample("gb", "pb", 2);
    accepted = 99;
    EXPECT_ERROR(dq_producer_push_transitions(p, batch, 3, &accepted),
                 DQ_STATUS_NON_FINITE, "item 1");
    EXPECT_MESSAGE("reward");
    CHECK(accepted == 1);
    sample_json(want[n_want++], sizeof want[0], "gb", "pb", 0);
    PUSH_GOOD();
#undef PUSH_GOOD

    EXPECT_STATUS(dq_producer_close(p), DQ_STATUS_OK);
    dq_producer_free(p);

    r = consume_all(q, out, "bad");
    CHECK(r.lines == n_want);
    CHECK(r.quarantined == 0);
    read_output(out, &got);
    EXPECT_CLEAN_OUTPUT(&got);
    for (i = 0; i < n_want; i++)
        want_ptr[i] = want[i];
    EXPECT_LINES(&got, want_ptr, n_want);
    for (i = 0; i < got.n; i++) {
        CHECK(strstr(got.v[i], "NaN") == NULL);
        CHECK(strstr(got.v[i], "nan") == NULL);
        CHECK(strstr(got.v[i], "Infinity") == NULL);
    }
    lines_free(&got);
}

/* ------------------------------------------------------------------ */
/* NULL arguments                                                      */
/* ------------------------------------------------------------------ */

static void test_null_arguments(void)
{
    char q[PATH_MAX], out[PATH_MAX];
    dq_producer *sentinel_p = (dq_producer *)&sentinel_p;
    dq_producer *p = sentinel_p;
    dq_consumer *sentinel_c = (dq_consumer *)&sentinel_c;
    dq_consumer *c = sentinel_c;
    dq_producer_options po;
    dq_consumer_options co;
    dq_transition t, items[1];
    dq_poll_result r;
    size_t accepted;

    make_dir(q, sizeof q, "q_null");
    join(out, sizeof out, root, "out_null");
    dq_producer_options_default(&po, sizeof po);
    po.max_lot_age_ms = 0;

    EXPECT_ERROR(dq_producer_options_default(NULL, sizeof(dq_producer_options)), DQ_STATUS_NULL_ARGUMENT,
                 "options");
    EXPECT_ERROR(dq_consumer_options_default(NULL, sizeof(dq_consumer_options)), DQ_STATUS_NULL_ARGUMENT,
                 "options");

    EXPECT_ERROR(dq_producer_open(NULL, &po, &p), DQ_STATUS_NULL_ARGUMENT,
                 "queue directory");
    EXPECT_ERROR(dq_producer_open(q, &po, NULL), DQ_STATUS_NULL_ARGUMENT,
                 "out");
    CHECK(p == sentinel_p);
    co = consumer_options(out, "nulls");
    EXPECT_ERROR(dq_consumer_open(NULL, &co, &c), DQ_STATUS_NULL_ARGUMENT,
                 "queue directory");
    EXPECT_ERROR(dq_consumer_open(q, &co, NULL), DQ_STATUS_NULL_ARGUMENT,
                 "out");
    CHECK(c == sentinel_c);

    EXPECT_ERROR(dq_consumer_poll(NULL, &r), DQ_STATUS_NULL_ARGUMENT,
                 "consumer");
    EXPECT_ERROR(dq_consumer_close(NULL), DQ_STATUS_NULL_ARGUMENT,
                 "consumer");
    EXPECT_ERROR(push_str(NULL, "{}"), DQ_STATUS_NULL_ARGUMENT, "producer");
    t = sample("g", "p", 0);
    EXPECT_ERROR(dq_producer_push_transition(NULL, &t),
                 DQ_STATUS_NULL_ARGUMENT, "producer");
    accepted = 99;
    items[0] = t;
    EXPECT_ERROR(dq_producer_push_transitions(NULL, items, 1, &accepted),
                 DQ_STATUS_NULL_ARGUMENT, "producer");
    CHECK(accepted == 0);
    EXPECT_ERROR(dq_producer_flush(NULL), DQ_STATUS_NULL_ARGUMENT,
                 "producer");
    EXPECT_ERROR(dq_producer_close(NULL), DQ_STATUS_NULL_ARGUMENT,
                 "producer");
    dq_producer_free(NULL);
    dq_consumer_free(NULL);
    CHECK(1);

    p = NULL;
    EXPECT_STATUS(dq_producer_open(q, &po, &p), DQ_STATUS_OK);
    if (p == NULL)
        return;
    EXPECT_ERROR(dq_producer_push(p, NULL, 5), DQ_STATUS_NULL_ARGUMENT,
                 "json");
    EXPECT_ERROR(dq_producer_push_transition(p, NULL),
                 DQ_STATUS_NULL_ARGUMENT, "transition");

    t = sample("g", "p", 0);
    t.obs = NULL;
    EXPECT_ERROR(dq_producer_push_transition(p, &t),
                 DQ_STATUS_NULL_ARGUMENT, "obs");
    t = sample("g", "p", 0);
    t.mask = NULL;
    EXPECT_ERROR(dq_producer_push_transition(p, &t),
                 DQ_STATUS_NULL_ARGUMENT, "mask");
    t = sample(NULL, "p", 0);
    EXPECT_ERROR(dq_producer_push_transition(p, &t),
                 DQ_STATUS_NULL_ARGUMENT, "game_id");
    t = sample("g", NULL, 0);
    EXPECT_ERROR(dq_producer_push_transition(p, &t),
                 DQ_STATUS_NULL_ARGUMENT, "player_id");

    accepted = 99;
    EXPECT_ERROR(dq_producer_push_transitions(p, NULL, 2, &accepted),
                 DQ_STATUS_NULL_ARGUMENT, "items");
    CHECK(accepted == 0);
    accepted = 99;
    EXPECT_STATUS(dq_producer_push_transitions(p, NULL, 0, &accepted),
                  DQ_STATUS_OK);
    CHECK(accepted == 0);
    items[0] = sample("g", "p", 1);
    items[0].obs = NULL;
    items[0].obs_len = 0;
    EXPECT_STATUS(dq_producer_push_transitions(p, items, 1, NULL),
                  DQ_STATUS_OK);

    EXPECT_STATUS(dq_producer_close(p), DQ_STATUS_OK);
    dq_producer_free(p);

    /* The one transition pushed with NULL obs and length 0 arrives. */
    r = consume_all(q, out, "nulls");
    CHECK(r.lines == 1);

    /* A NULL log callback turns logging off, whatever the level. */
    EXPECT_STATUS(dq_set_log_callback(NULL, NULL, 3), DQ_STATUS_OK);
}

/* ------------------------------------------------------------------ */
/* Misuse                                                              */
/* ------------------------------------------------------------------ */

static void test_bad_paths(void)
{
    char path[PATH_MAX], out[PATH_MAX];
    char long_path[PATH_MAX + 64];
    dq_producer *p = NULL;
    dq_consumer *c = NULL;
    dq_consumer_options co;
    dq_poll_result r;
    FILE *f;
    int i;

    join(out, sizeof out, root, "out_paths");
    co = consumer_options(out, "paths");

    EXPECT_ERROR(dq_producer_open("", NULL, &p), DQ_STATUS_INVALID_ARGUMENT,
                 "empty");
    EXPECT_ERROR(dq_consumer_open("", &co, &c), DQ_STATUS_INVALID_ARGUMENT,
                 "empty");

    join(path, sizeof path, root, "missing");
    EXPECT_ERROR(dq_producer_open(path, NULL, &p),
                 DQ_STATUS_INVALID_ARGUMENT, "does not exist");
    EXPECT_MESSAGE(path);
    EXPECT_ERROR(dq_consumer_open(path, &co, &c),
                 DQ_STATUS_INVALID_ARGUMENT, "does not exist");

    join(path, sizeof path, root, "regular_file");
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL)
        fclose(f);
    EXPECT_ERROR(dq_producer_open(path, NULL, &p),
                 DQ_STATUS_INVALID_ARGUMENT, "not a directory");
    EXPECT_ERROR(dq_consumer_open(path, &co, &c),
                 DQ_STATUS_INVALID_ARGUMENT, "not a directory");

    /* A path that is not UTF-8 and does not exist: rejected, with a
     * message that is still valid UTF-8. */
    join(path, sizeof path, root, "missing_\xff\xfe");
    EXPECT_ERROR(dq_producer_open(path, NULL, &p),
                 DQ_STATUS_INVALID_ARGUMENT, "does not exist");
    EXPECT_ERROR(dq_consumer_open(path, &co, &c),
                 DQ_STATUS_INVALID_ARGUMENT, "does not exist");

    /* A path through a regular file. */
    join(path, sizeof path, root, "regular_file/q");
    EXPECT_ERROR(dq_producer_open(path, NULL, &p),
                 DQ_STATUS_INVALID_ARGUMENT, "Not a directory");
    EXPECT_ERROR(dq_consumer_open(path, &co, &c),
                 DQ_STATUS_INVALID_ARGUMENT, "Not a directory");

    /* Longer than PATH_MAX. */
    join(long_path, sizeof long_path, root, "");
    i = (int)strlen(long_path);
    memset(long_path + i, 'a', sizeof long_path - (size_t)i - 1);
    long_path[sizeof long_path - 1] = '\0';
    EXPECT_STATUS(dq_producer_open(long_path, NULL, &p),
                  DQ_STATUS_INVALID_ARGUMENT);
    EXPECT_MESSAGE("too long");
    EXPECT_STATUS(dq_consumer_open(long_path, &co, &c),
                  DQ_STATUS_INVALID_ARGUMENT);
    EXPECT_MESSAGE("too long");
    CHECK(p == NULL);
    CHECK(c == NULL);

    /* An existing directory whose name is not UTF-8 is a usable queue:
     * paths are passed to the kernel as bytes. */
    join(path, sizeof path, root, "q_\xff");
    CHECK(mkdir(path, 0755) == 0);
    EXPECT_STATUS(dq_producer_open(path, NULL, &p), DQ_STATUS_OK);
    if (p != NULL) {
        EXPECT_STATUS(push_str(p, "{\"bytes\":1}"), DQ_STATUS_OK);
        EXPECT_STATUS(dq_producer_close(p), DQ_STATUS_OK);
        dq_producer_free(p);
        r = consume_all(path, out, "paths");
        CHECK(r.lines == 1);
    }

    /* A queue whose folders are read-only. */
    if (geteuid() == 0) {
        /* NOTE: root writes through any mode bits, so this case only runs
         * for other users. */
        printf("note: skipping the read-only queue case as root\n");
    } else {
        char incoming[PATH_MAX];
        make_dir(path, sizeof path, "q_read_only");
        p = NULL;
        EXPECT_STATUS(dq_producer_open(path, NULL, &p), DQ_STATUS_OK);
        dq_producer_free(p);
        p = NULL;
        join(incoming, sizeof incoming, path, "incoming");
        CHECK(chmod(incoming, 0555) == 0);
        EXPECT_ERROR(dq_producer_open(path, NULL, &p),
                     DQ_STATUS_INVALID_ARGUMENT, "not writable");
        CHECK(p == NULL);
        CHECK(chmod(incoming, 0755) == 0);
    }
}

static void test_closed_handles(void)
{
    char q[PATH_MAX], out[PATH_MAX];
    dq_producer_options po;
    dq_producer *p = NULL;
    dq_consumer *c = NULL;
    dq_consumer_options co;
    dq_transition t = sample("g", "p", 0);
    dq_poll_result r;
    size_t accepted;

    make_dir(q, sizeof q, "q_closed");
    join(out, sizeof out, root, "out_closed");
    dq_producer_options_default(&po, sizeof po);
    po.max_lot_age_ms = 0;

    EXPECT_STATUS(dq_producer_open(q, &po, &p), DQ_STATUS_OK);
    if (p == NULL)
        return;
    EXPECT_STATUS(push_str(p, "{\"before\":1}"), DQ_STATUS_OK);
    EXPECT_STATUS(dq_producer_close(p), DQ_STATUS_OK);
    EXPECT_ERROR(dq_producer_close(p), DQ_STATUS_CLOSED, "closed");
    EXPECT_ERROR(push_str(p, "{\"after\":1}"), DQ_STATUS_CLOSED, "closed");
    EXPECT_ERROR(dq_producer_push_transition(p, &t), DQ_STATUS_CLOSED,
                 "closed");
    accepted = 99;
    EXPECT_ERROR(dq_producer_push_transitions(p, &t, 1, &accepted),
                 DQ_STATUS_CLOSED, "closed");
    CHECK(accepted == 0);
    EXPECT_ERROR(dq_producer_flush(p), DQ_STATUS_CLOSED, "closed");
    dq_producer_free(p);

    co = consumer_options(out, "closed");
    EXPECT_STATUS(dq_consumer_open(q, &co, &c), DQ_STATUS_OK);
    if (c == NULL)
        return;
    EXPECT_STATUS(dq_consumer_poll(c, &r), DQ_STATUS_OK);
    CHECK(r.lines == 1);
    EXPECT_STATUS(dq_consumer_close(c), DQ_STATUS_OK);
    EXPECT_ERROR(dq_consumer_close(c), DQ_STATUS_CLOSED, "closed");
    EXPECT_ERROR(dq_consumer_poll(c, &r), DQ_STATUS_CLOSED, "closed");
    dq_consumer_free(c);

    /* A handle freed without close publishes what it held. */
    p = NULL;
    EXPECT_STATUS(dq_producer_open(q, &po, &p), DQ_STATUS_OK);
    EXPECT_STATUS(push_str(p, "{\"freed\":1}"), DQ_STATUS_OK);
    dq_producer_free(p);
    r = consume_all(q, out, "closed");
    CHECK(r.lines == 1);
}

static void test_queue_removed_under_producer(void)
{
    char q[PATH_MAX];
    dq_producer_options po;
    dq_producer *p = NULL;
    int i;

    make_dir(q, sizeof q, "q_removed");
    dq_producer_options_default(&po, sizeof po);
    po.max_lot_age_ms = 0;
    EXPECT_STATUS(dq_producer_open(q, &po, &p), DQ_STATUS_OK);
    if (p == NULL)
        return;
    EXPECT_STATUS(push_str(p, "{\"a\":1}"), DQ_STATUS_OK);
    CHECK(remove_tree(q) == 0);

    /* Pushes may still land in the unlinked .part, but publishing must
     * fail with a status and a message, never abort the host. */
    for (i = 0; i < 3; i++)
        (void)push_str(p, "{\"b\":2}");
    EXPECT_STATUS(dq_producer_flush(p), DQ_STATUS_IO);
    CHECK(strlen(dq_last_error_message()) > 0);
    EXPECT_STATUS(dq_producer_close(p), DQ_STATUS_IO);
    CHECK(strlen(dq_last_error_message()) > 0);
    dq_producer_free(p);
}

static void test_consumer_id_lock(void)
{
    char q[PATH_MAX], out[PATH_MAX];
    dq_consumer_options co;
    dq_consumer *first = NULL;
    dq_consumer *sentinel = (dq_consumer *)&sentinel;
    dq_consumer *second = sentinel;
    dq_consumer *other = NULL;

    make_dir(q, sizeof q, "q_lock");
    join(out, sizeof out, root, "out_lock");
    co = consumer_options(out, "dup");
    EXPECT_STATUS(dq_consumer_open(q, &co, &first), DQ_STATUS_OK);
    if (first == NULL)
        return;

    /* The message names the id and the queue, which is what to check. */
    EXPECT_ERROR(dq_consumer_open(q, &co, &second), DQ_STATUS_LOCKED,
                 "dup");
    EXPECT_MESSAGE(q);
    CHECK(second == sentinel);

    /* Another id on the same queue is fine. */
    co = consumer_options(out, "other");
    EXPECT_STATUS(dq_consumer_open(q, &co, &other), DQ_STATUS_OK);
    dq_consumer_free(other);

    /* Close releases the id, even before the handle is freed. */
    co = consumer_options(out, "dup");
    EXPECT_STATUS(dq_consumer_close(first), DQ_STATUS_OK);
    second = NULL;
    EXPECT_STATUS(dq_consumer_open(q, &co, &second), DQ_STATUS_OK);
    dq_consumer_free(first);
    dq_consumer_free(second);
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

#define THREADS 4
#define PER_THREAD 5000
#define BATCH 10

struct worker {
    dq_producer *p;
    int index;
    int errors;
    dq_status first_status;
    char first_message[256];
};

static void worker_failed(struct worker *w, dq_status s)
{
    if (w->errors++ == 0) {
        w->first_status = s;
        last_message(w->first_message, sizeof w->first_message);
    }
}

/* Thread 0 and 3 push structs one by one, thread 1 pushes JSON text,
 * thread 2 pushes arrays of BATCH structs. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char game[16], player[16], line[256];
    dq_transition batch[BATCH];
    uint64_t seq;
    dq_status s;

    snprintf(game, sizeof game, "g%d", w->index);
    snprintf(player, sizeof player, "p%d", w->index);
    for (seq = 0; seq < PER_THREAD;) {
        if (w->index == 1) {
            sample_json(line, sizeof line, game, player, seq);
            s = push_str(w->p, line);
            seq++;
        } else if (w->index == 2) {
            size_t i, accepted = 0;
            for (i = 0; i < BATCH; i++)
                batch[i] = sample(game, player, seq + i);
            s = dq_producer_push_transitions(w->p, batch, BATCH, &accepted);
            if (s == DQ_STATUS_OK && accepted != BATCH)
                s = -1;
            seq += BATCH;
        } else {
            dq_transition t = sample(game, player, seq);
            s = dq_producer_push_transition(w->p, &t);
            seq++;
        }
        if (s != DQ_STATUS_OK)
            worker_failed(w, s);
    }
    return NULL;
}

/* Reads "key":"<prefix><n>" or "key":<n> from a line. */
static long field_number(const char *line, const char *key)
{
    const char *at = strstr(line, key);
    char *end;
    long n;

    if (at == NULL)
        return -1;
    at += strlen(key);
    n = strtol(at, &end, 10);
    return end == at ? -1 : n;
}

static void test_threads_share_producer(void)
{
    static unsigned char seen[THREADS][PER_THREAD];
    char q[PATH_MAX], out[PATH_MAX];
    struct worker workers[THREADS];
    pthread_t threads[THREADS];
    dq_consumer_options co;
    dq_consumer *c = NULL;
    dq_producer *p = NULL;
    dq_poll_result r;
    struct lines got;
    int missing = 0, repeated = 0, unparsed = 0;
    uint64_t finished = 0;
    size_t i;
    int k;

    make_dir(q, sizeof q, "q_threads");
    join(out, sizeof out, root, "out_threads");
    EXPECT_STATUS(dq_producer_open(q, NULL, &p), DQ_STATUS_OK);
    if (p == NULL)
        return;

    for (k = 0; k < THREADS; k++) {
        memset(&workers[k], 0, sizeof workers[k]);
        workers[k].p = p;
        workers[k].index = k;
        CHECK(pthread_create(&threads[k], NULL, worker_main,
                             &workers[k]) == 0);
    }
    for (k = 0; k < THREADS; k++) {
        CHECK(pthread_join(threads[k], NULL) == 0);
        if (workers[k].errors > 0)
            printf("worker %d: %d failed pushes, first %s: %s\n", k,
                   workers[k].errors,
                   dq_status_str(workers[k].first_status),
                   workers[k].first_message);
        CHECK(workers[k].errors == 0);
    }
    EXPECT_STATUS(dq_producer_close(p), DQ_STATUS_OK);
    dq_producer_free(p);

    co = consumer_options(out, "threads");
    EXPECT_STATUS(dq_consumer_open(q, &co, &c), DQ_STATUS_OK);
    if (c == NULL)
        return;
    EXPECT_STATUS(dq_consumer_poll(c, &r), DQ_STATUS_OK);
    CHECK(r.lines == THREADS * PER_THREAD);
    CHECK(r.quarantined == 0);
    finished = r.finished_files;
    EXPECT_STATUS(dq_consumer_close(c), DQ_STATUS_OK);
    dq_consumer_free(c);

    read_output(out, &got);
    EXPECT_CLEAN_OUTPUT(&got);
    CHECK(got.n == THREADS * PER_THREAD);
    CHECK(got.max_per_file <= 5000);
    /* Files finished by the poll, plus at most one finished by close. */
    CHECK((uint64_t)got.files >= finished);
    CHECK((uint64_t)got.files <= finished + 1);

    memset(seen, 0, sizeof seen);
    for (i = 0; i < got.n; i++) {
        long g = field_number(got.v[i], "\"gameId\":\"g");
        long pl = field_number(got.v[i], "\"playerId\":\"p");
        long seq = field_number(got.v[i], "\"seq\":");
        if (g < 0 || g >= THREADS || pl != g || seq < 0 ||
            seq >= PER_THREAD) {
            unparsed++;
            continue;
        }
        if (seen[g][seq]++ > 0)
            repeated++;
    }
    for (k = 0; k < THREADS; k++)
        for (i = 0; i < PER_THREAD; i++)
            missing += seen[k][i] == 0;
    if (missing || repeated || unparsed)
        printf("threads: %d missing, %d repeated, %d unparsed lines\n",
               missing, repeated, unparsed);
    CHECK(missing == 0);
    CHECK(repeated == 0);
    CHECK(unparsed == 0);
    lines_free(&got);
}

/* ------------------------------------------------------------------ */
/* Log callback                                                        */
/* ------------------------------------------------------------------ */

struct log_sink {
    pthread_mutex_t lock;
    int records;
    int above_max;
    int bad_level;
    int bad_strings;
    int appended;
    int appended_level;
    int max_level;
    char appended_target[64];
};

static void on_log(int32_t level, const char *target, const char *message,
                   void *user_data)
{
    struct log_sink *sink = user_data;

    pthread_mutex_lock(&sink->lock);
    sink->records++;
    if (level < 1 || level > 5)
        sink->bad_level++;
    if (level > sink->max_level)
        sink->above_max++;
    if (target == NULL || message == NULL ||
        !utf8_valid((const unsigned char *)target) ||
        !utf8_valid((const unsigned char *)message)) {
        sink->bad_strings++;
    } else if (strncmp(message, "appended 2 lines -> ", 20) == 0) {
        sink->appended++;
        sink->appended_level = level;
        snprintf(sink->appended_target, sizeof sink->appended_target, "%s",
                 target);
    }
    pthread_mutex_unlock(&sink->lock);
}

static int sink_records(struct log_sink *sink)
{
    int n;

    pthread_mutex_lock(&sink->lock);
    n = sink->records;
    pthread_mutex_unlock(&sink->lock);
    return n;
}

/* Pushes two lines into `q` and consumes them. */
static void produce_and_consume(const char *q, const char *out)
{
    dq_producer_options po;
    dq_producer *p = NULL;
    dq_poll_result r;

    dq_producer_options_default(&po, sizeof po);
    po.max_lot_age_ms = 0;
    EXPECT_STATUS(dq_producer_open(q, &po, &p), DQ_STATUS_OK);
    if (p == NULL)
        return;
    EXPECT_STATUS(push_str(p, "{\"log\":1}"), DQ_STATUS_OK);
    EXPECT_STATUS(push_str(p, "{\"log\":2}"), DQ_STATUS_OK);
    EXPECT_STATUS(dq_producer_close(p), DQ_STATUS_OK);
    dq_producer_free(p);
    r = consume_all(q, out, "logs");
    CHECK(r.lines == 2);
}

static void test_log_callback(void)
{
    char q[PATH_MAX], out[PATH_MAX];
    struct log_sink sink;
    int before;

    make_dir(q, sizeof q, "q_log");
    join(out, sizeof out, root, "out_log");
    memset(&sink, 0, sizeof sink);
    CHECK(pthread_mutex_init(&sink.lock, NULL) == 0);

    /* Info: the consumer's "appended N lines" record comes through. */
    sink.max_level = 3;
    EXPECT_STATUS(dq_set_log_callback(on_log, &sink, 3), DQ_STATUS_OK);
    produce_and_consume(q, out);
    CHECK(sink_records(&sink) > 0);
    CHECK(sink.appended == 1);
    CHECK(sink.appended_level == 3);
    CHECK(strcmp(sink.appended_target, "queue_consumer") == 0);
    CHECK(sink.above_max == 0);
    CHECK(sink.bad_level == 0);
    CHECK(sink.bad_strings == 0);

    /* Error only: info records stay out. */
    sink.max_level = 1;
    before = sink_records(&sink);
    EXPECT_STATUS(dq_set_log_callback(on_log, &sink, 1), DQ_STATUS_OK);
    produce_and_consume(q, out);
    CHECK(sink_records(&sink) == before);

    /* Trace: more records than at info. */
    sink.max_level = 5;
    before = sink_records(&sink);
    EXPECT_STATUS(dq_set_log_callback(on_log, &sink, 5), DQ_STATUS_OK);
    produce_and_consume(q, out);
    CHECK(sink_records(&sink) > before);
    CHECK(sink.appended == 2);
    CHECK(sink.above_max == 0);
    CHECK(sink.bad_level == 0);
    CHECK(sink.bad_strings == 0);

    /* Level 0, then a NULL callback: nothing more arrives. */
    before = sink_records(&sink);
    EXPECT_STATUS(dq_set_log_callback(on_log, &sink, 0), DQ_STATUS_OK);
    produce_and_consume(q, out);
    CHECK(sink_records(&sink) == before);
    EXPECT_STATUS(dq_set_log_callback(NULL, &sink, 5), DQ_STATUS_OK);
    produce_and_consume(q, out);
    CHECK(sink_records(&sink) == before);

    /* A rejected level leaves the callback off. */
    EXPECT_STATUS(dq_set_log_callback(on_log, &sink, 9),
                  DQ_STATUS_INVALID_ARGUMENT);
    produce_and_consume(q, out);
    CHECK(sink_records(&sink) == before);
    pthread_mutex_destroy(&sink.lock);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s TMPDIR\n", argv[0]);
        return 2;
    }
    if (realpath(argv[1], root) == NULL) {
        fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    /* Fully buffered output would be lost if a test crashed. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    test_version_and_status_names();
    test_last_error_is_per_thread();
    test_last_error_copy();
    test_option_defaults();
    test_option_struct_size();
    test_binary_lots();
    test_invalid_options();
    test_round_trip_null_options();
    test_round_trip_options();
    test_default_output_folder();
    test_bad_input();
    test_null_arguments();
    test_bad_paths();
    test_closed_handles();
    test_queue_removed_under_producer();
    test_consumer_id_lock();
    test_threads_share_producer();
    test_log_callback();

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
