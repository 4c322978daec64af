/*
 * torture_producer: a producer worker for the crash and fault tests,
 * using only include/diskq.h.
 *
 * It pushes transitions whose key is (game, "p<seq % 3>", seq) and whose
 * other fields follow from seq, with the formula of
 * tests/common/keys.rs. Before each push it appends the key to
 * <logs>/<game>.pushed; once the push is acknowledged (a successful
 * push with write_through, else a successful flush or close) it appends
 * the key to <logs>/<game>.acked. Both logs are written with writev, so
 * tests that fail write and pwrite64 do not break the bookkeeping.
 *
 * Arguments are key=value pairs:
 *   queue=DIR game=ID logs=DIR  (required)
 *   count=N        pushes before closing; 0 runs until the stop file
 *   batch=N        pushes between two flushes (default 10)
 *   pause_us=N     sleep after each batch
 *   big=N          obs length of every 16th transition (0: all short)
 *   write_through=0|1 durable=0|1 lot_lines=N lot_age_ms=N
 *   on_error=fail|stop|retry
 *                  fail: exit 2; stop: one more push and one flush,
 *                  then _exit(0) without closing; retry: push again,
 *                  flush later, reopen after DQ_STATUS_POISONED
 *   stop=FILE      close and exit once FILE exists
 *
 * Every failed call prints "event op=... kind=DQ_STATUS_... msg=..." to
 * stdout.
 *
 * Build: gcc -std=c99 -I include tests/c/torture_producer.c -ldiskq
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "diskq.h"

enum on_error { ON_ERROR_FAIL, ON_ERROR_STOP, ON_ERROR_RETRY };

struct args {
    const char *queue;
    const char *game;
    const char *logs;
    const char *stop;
    uint64_t count;
    uint64_t batch;
    uint64_t pause_us;
    uint64_t big;
    uint64_t lot_lines;
    uint64_t lot_age_ms;
    int write_through;
    int durable;
    enum on_error on_error;
};

struct worker {
    struct args a;
    dq_producer *p;
    int pushed_fd;
    int acked_fd;
    uint64_t *pending;
    size_t n_pending;
    size_t cap_pending;
    float *obs;
    char *json;
    size_t json_cap;
};

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("torture_producer: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void event(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("event ", stdout);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

static void pause_us(uint64_t us)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(us / 1000000);
    ts.tv_nsec = (long)(us % 1000000) * 1000;
    nanosleep(&ts, NULL);
}

static uint64_t parse_u64(const char *key, const char *value)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno != 0 || *value == '\0' || *end != '\0')
        die("invalid number for %s: %s", key, value);
    return (uint64_t)v;
}

static void parse_args(int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof *a);
    a->batch = 10;
    a->lot_lines = 500;
    for (int i = 1; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL)
            die("expected key=value, got %s", argv[i]);
        *eq = '\0';
        const char *k = argv[i];
        const char *v = eq + 1;
        if (strcmp(k, "queue") == 0)
            a->queue = v;
        else if (strcmp(k, "game") == 0)
            a->game = v;
        else if (strcmp(k, "logs") == 0)
            a->logs = v;
        else if (strcmp(k, "stop") == 0)
            a->stop = v;
        else if (strcmp(k, "count") == 0)
            a->count = parse_u64(k, v);
        else if (strcmp(k, "batch") == 0)
            a->batch = parse_u64(k, v);
        else if (strcmp(k, "pause_us") == 0)
            a->pause_us = parse_u64(k, v);
        else if (strcmp(k, "big") == 0)
            a->big = parse_u64(k, v);
        else if (strcmp(k, "lot_lines") == 0)
            a->lot_lines = parse_u64(k, v);
        else if (strcmp(k, "lot_age_ms") == 0)
            a->lot_age_ms = parse_u64(k, v);
        else if (strcmp(k, "write_through") == 0)
            a->write_through = parse_u64(k, v) != 0;
        else if (strcmp(k, "durable") == 0)
            a->durable = parse_u64(k, v) != 0;
        else if (strcmp(k, "on_error") == 0) {
            if (strcmp(v, "fail") == 0)
                a->on_error = ON_ERROR_FAIL;
            else if (strcmp(v, "stop") == 0)
                a->on_error = ON_ERROR_STOP;
            else if (strcmp(v, "retry") == 0)
                a->on_error = ON_ERROR_RETRY;
            else
                die("invalid on_error: %s", v);
        } else
            die("unknown argument %s", k);
    }
    if (a->queue == NULL || a->game == NULL || a->logs == NULL)
        die("queue=, game= and logs= are required");
    if (a->batch == 0)
        die("batch must be greater than 0");
}

static int open_log(const struct args *a, const char *suffix)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s.%s", a->logs, a->game, suffix);
    if (n < 0 || (size_t)n >= sizeof path)
        die("log path too long");
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        die("open %s: %s", path, strerror(errno));
    return fd;
}

/* Appends `len` bytes with one writev call; the logs are test
 * bookkeeping, so a short or failed append ends the worker. */
static void append(int fd, const char *text, size_t len)
{
    struct iovec iov;
    iov.iov_base = (void *)text;
    iov.iov_len = len;
    ssize_t n = writev(fd, &iov, 1);
    if (n < 0 || (size_t)n != len)
        die("append to a bookkeeping log failed: %s", strerror(errno));
}

static void log_keys(const struct worker *w, int fd, const uint64_t *seqs, size_t n)
{
    if (n == 0)
        return;
    size_t cap = n * (strlen(w->a.game) + 32);
    char *text = malloc(cap);
    if (text == NULL)
        die("out of memory");
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int m = snprintf(text + len, cap - len, "%s p%u %llu\n", w->a.game,
                         (unsigned)(seqs[i] % 3), (unsigned long long)seqs[i]);
        if (m < 0 || (size_t)m >= cap - len)
            die("log line too long");
        len += (size_t)m;
    }
    append(fd, text, len);
    free(text);
}

static size_t obs_len(const struct args *a, uint64_t seq)
{
    if (a->big > 0 && seq % 16 == 15)
        return (size_t)a->big;
    return 2 + (size_t)(seq % 7);
}

static void fill_obs(struct worker *w, uint64_t seq, size_t n)
{
    float base = (float)(seq % 100);
    for (size_t i = 0; i < n; i++)
        w->obs[i] = (float)i * 0.25f + base;
}

/* Formats transition `seq` as JSON into w->json, for dq_producer_push.
 * Obs values are multiples of 0.25, so "%.2f" prints them exactly. */
static size_t format_json(struct worker *w, uint64_t seq, size_t n)
{
    size_t need = 256 + strlen(w->a.game) + n * 24;
    if (need > w->json_cap) {
        free(w->json);
        w->json = malloc(need);
        if (w->json == NULL)
            die("out of memory");
        w->json_cap = need;
    }
    size_t len = 0;
    len += (size_t)snprintf(w->json + len, need - len, "{\"obs\":[");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(w->json + len, need - len, "%s%.2f", i ? "," : "",
                                (double)w->obs[i]);
    int done = seq % 10 == 9;
    len += (size_t)snprintf(w->json + len, need - len,
                            "],\"mask\":[1,%u,1],\"action\":%u,\"reward\":%s,"
                            "\"done\":%s,\"gameId\":\"%s\",\"playerId\":\"p%u\","
                            "\"seq\":%llu}",
                            (unsigned)(seq % 2), (unsigned)(seq % 9),
                            done ? "1.0" : "0.0", done ? "true" : "false", w->a.game,
                            (unsigned)(seq % 3), (unsigned long long)seq);
    if (len >= need)
        die("JSON buffer too small");
    return len;
}

static dq_status push(struct worker *w, uint64_t seq)
{
    size_t n = obs_len(&w->a, seq);
    fill_obs(w, seq, n);
    if (seq % 5 == 4) {
        size_t len = format_json(w, seq, n);
        return dq_producer_push(w->p, (const uint8_t *)w->json, len);
    }
    char player[24];
    snprintf(player, sizeof player, "p%u", (unsigned)(seq % 3));
    uint8_t mask[3] = {1, (uint8_t)(seq % 2), 1};
    struct dq_transition t;
    memset(&t, 0, sizeof t);
    t.obs = w->obs;
    t.obs_len = n;
    t.mask = mask;
    t.mask_len = 3;
    t.action = (int64_t)(seq % 9);
    t.reward = seq % 10 == 9 ? 1.0 : 0.0;
    t.done = seq % 10 == 9;
    t.game_id = w->a.game;
    t.player_id = player;
    t.seq = seq;
    return dq_producer_push_transition(w->p, &t);
}

static void open_producer(struct worker *w)
{
    struct dq_producer_options o;
    if (dq_producer_options_default(&o, sizeof o) != DQ_STATUS_OK)
        die("dq_producer_options_default failed");
    o.write_through = (uint8_t)w->a.write_through;
    o.durable = (uint8_t)w->a.durable;
    o.max_lot_lines = w->a.lot_lines;
    o.max_lot_age_ms = w->a.lot_age_ms;
    for (int tries = 0;; tries++) {
        dq_status s = dq_producer_open(w->a.queue, &o, &w->p);
        if (s == DQ_STATUS_OK)
            return;
        event("op=open kind=%s msg=%s", dq_status_str(s), dq_last_error_message());
        if (w->a.on_error != ON_ERROR_RETRY || tries >= 1000)
            die("dq_producer_open: %s", dq_last_error_message());
        pause_us(5000);
    }
}

static void add_pending(struct worker *w, uint64_t seq)
{
    if (w->n_pending == w->cap_pending) {
        size_t cap = w->cap_pending ? w->cap_pending * 2 : 64;
        uint64_t *grown = realloc(w->pending, cap * sizeof *grown);
        if (grown == NULL)
            die("out of memory");
        w->pending = grown;
        w->cap_pending = cap;
    }
    w->pending[w->n_pending++] = seq;
}

static void ack_pending(struct worker *w)
{
    log_keys(w, w->acked_fd, w->pending, w->n_pending);
    w->n_pending = 0;
}

static int stop_requested(const struct args *a)
{
    struct stat st;
    return a->stop != NULL && stat(a->stop, &st) == 0;
}

/* One more push and one flush after a failure, both reported, then an
 * exit that skips dq_producer_free: the disk is still failing. */
static void stop_after_error(struct worker *w, uint64_t seq)
{
    log_keys(w, w->pushed_fd, &seq, 1);
    dq_status s = push(w, seq);
    if (s == DQ_STATUS_OK && w->a.write_through)
        log_keys(w, w->acked_fd, &seq, 1);
    event("op=push_after seq=%llu kind=%s", (unsigned long long)seq, dq_status_str(s));
    s = dq_producer_flush(w->p);
    event("op=flush_after kind=%s", dq_status_str(s));
    _exit(0);
}

static void reopen(struct worker *w)
{
    /* The pending lines of a poisoned producer were never acknowledged. */
    w->n_pending = 0;
    dq_producer_free(w->p);
    w->p = NULL;
    event("op=reopen");
    open_producer(w);
}

int main(int argc, char **argv)
{
    struct worker w;
    memset(&w, 0, sizeof w);
    parse_args(argc, argv, &w.a);
    w.pushed_fd = open_log(&w.a, "pushed");
    w.acked_fd = open_log(&w.a, "acked");
    w.obs = malloc(sizeof(float) * (size_t)(w.a.big > 8 ? w.a.big : 8));
    if (w.obs == NULL)
        die("out of memory");
    open_producer(&w);

    uint64_t seq = 0;
    int running = 1;
    while (running) {
        for (uint64_t i = 0; i < w.a.batch; i++) {
            if ((w.a.count > 0 && seq >= w.a.count) || stop_requested(&w.a)) {
                running = 0;
                break;
            }
            log_keys(&w, w.pushed_fd, &seq, 1);
            for (;;) {
                dq_status s = push(&w, seq);
                if (s == DQ_STATUS_OK)
                    break;
                event("op=push seq=%llu kind=%s msg=%s", (unsigned long long)seq,
                      dq_status_str(s), dq_last_error_message());
                if (w.a.on_error == ON_ERROR_FAIL)
                    die("push of seq %llu failed", (unsigned long long)seq);
                if (w.a.on_error == ON_ERROR_STOP)
                    stop_after_error(&w, seq + 1);
                if (s == DQ_STATUS_POISONED)
                    reopen(&w);
                pause_us(2000);
            }
            if (w.a.write_through)
                log_keys(&w, w.acked_fd, &seq, 1);
            else
                add_pending(&w, seq);
            seq++;
        }

        dq_status s = dq_producer_flush(w.p);
        if (s == DQ_STATUS_OK) {
            ack_pending(&w);
        } else {
            event("op=flush kind=%s msg=%s", dq_status_str(s), dq_last_error_message());
            if (w.a.on_error == ON_ERROR_FAIL)
                die("flush failed");
            if (w.a.on_error == ON_ERROR_STOP)
                stop_after_error(&w, seq);
            if (s == DQ_STATUS_POISONED)
                reopen(&w);
        }
        if (w.a.pause_us > 0)
            pause_us(w.a.pause_us);
    }

    for (;;) {
        dq_status s = dq_producer_close(w.p);
        if (s == DQ_STATUS_OK)
            break;
        event("op=close kind=%s msg=%s", dq_status_str(s), dq_last_error_message());
        if (w.a.on_error != ON_ERROR_RETRY || s != DQ_STATUS_IO)
            die("close failed");
        pause_us(5000);
    }
    ack_pending(&w);
    dq_producer_free(w.p);
    event("op=done pushed=%llu", (unsigned long long)seq);
    free(w.pending);
    free(w.obs);
    free(w.json);
    return 0;
}
