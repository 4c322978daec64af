/*
 * dq_consumer_options.output_format as a C caller sets it: binary output
 * through the whole struct, an invalid value, and a caller built before
 * the field existed (struct_size ending before it), which gets JSON.
 *
 * Usage: binary_output <queue> <binary out> <json out>
 * Pushes one JSON transition, consumes it with DQ_OUTPUT_BINARY into
 * <binary out>, pushes another and consumes it with an older caller's
 * struct into <json out>. Prints "ok" and exits 0 when every call
 * returns what it should.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diskq.h"

static const char LINE[] =
    "{\"obs\":[0.5],\"mask\":[1],\"action\":1,\"reward\":0.0,\"done\":true,"
    "\"gameId\":\"c\",\"playerId\":\"pA\",\"seq\":0}";

static void check(dq_status got, dq_status want, const char *what)
{
    if (got != want) {
        fprintf(stderr, "%s: status %d, expected %d: %s\n", what, (int)got,
                (int)want, dq_last_error_message());
        exit(1);
    }
}

static void push_one(const char *queue)
{
    struct dq_producer *p = NULL;
    check(dq_producer_open(queue, NULL, &p), DQ_STATUS_OK, "dq_producer_open");
    check(dq_producer_push(p, (const uint8_t *)LINE, strlen(LINE)), DQ_STATUS_OK,
          "dq_producer_push");
    check(dq_producer_close(p), DQ_STATUS_OK, "dq_producer_close");
    dq_producer_free(p);
}

static void consume_one(const char *queue, const dq_consumer_options *o)
{
    struct dq_consumer *c = NULL;
    dq_poll_result r;
    check(dq_consumer_open(queue, o, &c), DQ_STATUS_OK, "dq_consumer_open");
    check(dq_consumer_poll(c, &r), DQ_STATUS_OK, "dq_consumer_poll");
    if (r.lots != 1 || r.lines != 1) {
        fprintf(stderr, "poll consumed %llu lots, %llu lines\n",
                (unsigned long long)r.lots, (unsigned long long)r.lines);
        exit(1);
    }
    check(dq_consumer_close(c), DQ_STATUS_OK, "dq_consumer_close");
    dq_consumer_free(c);
}

int main(int argc, char **argv)
{
    dq_consumer_options o;
    struct dq_consumer *c = NULL;

    if (argc != 4) {
        fprintf(stderr, "usage: binary_output <queue> <binary out> <json out>\n");
        return 2;
    }
    check(dq_consumer_options_default(&o, sizeof o), DQ_STATUS_OK,
          "dq_consumer_options_default");
    if (o.output_format != DQ_OUTPUT_JSON_LINES) {
        fprintf(stderr, "default output_format is %d\n", (int)o.output_format);
        return 1;
    }

    o.output_dir = argv[2];
    o.output_format = 2;
    check(dq_consumer_open(argv[1], &o, &c), DQ_STATUS_INVALID_ARGUMENT,
          "dq_consumer_open with output_format 2");
    if (strstr(dq_last_error_message(), "output_format") == NULL) {
        fprintf(stderr, "message does not name the field: %s\n",
                dq_last_error_message());
        return 1;
    }

    push_one(argv[1]);
    o.output_format = DQ_OUTPUT_BINARY;
    consume_one(argv[1], &o);

    /* An older caller's struct ends before output_format; whatever lies
     * past its struct_size is not read. */
    push_one(argv[1]);
    o.output_dir = argv[3];
    o.output_format = 7;
    o.struct_size = offsetof(dq_consumer_options, output_format);
    consume_one(argv[1], &o);

    puts("ok");
    return 0;
}
