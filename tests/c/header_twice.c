/*
 * header_twice.c: includes diskq.h twice and uses every type, constant
 * and function it declares.
 *
 * tests/c_abi.rs compiles this file as C99 and as C++17, both with
 * -Wall -Wextra -Werror -pedantic, links each build against libdiskq.so
 * and runs it. The second include must be a no-op (C99 rejects a
 * repeated typedef). Each function is bound to a pointer of the exact
 * type written out below, so a prototype that changes shape fails to
 * compile. In C++ the calls link only if the header declares them
 * extern "C".
 *
 * The calls pass NULL handles, which every function accepts, so the
 * program needs no queue directory. It exits 0 when every status is the
 * one the header documents, and 1 otherwise.
 */

#include "diskq.h"
#include "diskq.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Every DQ_STATUS_* constant, with the value it must keep. */
static const int32_t status_codes[][2] = {
    {DQ_STATUS_OK, 0},
    {DQ_STATUS_NULL_ARGUMENT, 1},
    {DQ_STATUS_INVALID_ARGUMENT, 2},
    {DQ_STATUS_INVALID_JSON, 3},
    {DQ_STATUS_NON_FINITE, 4},
    {DQ_STATUS_INVALID_FIELD, 5},
    {DQ_STATUS_LINE_TOO_LONG, 6},
    {DQ_STATUS_IO, 7},
    {DQ_STATUS_CLOSED, 8},
    {DQ_STATUS_POISONED, 9},
    {DQ_STATUS_LOCKED, 10},
    {DQ_STATUS_PANIC, 11},
};

static int failures;

static void expect(int ok, const char *what)
{
    if (!ok) {
        failures++;
        printf("FAIL: %s (last error message: \"%s\")\n", what,
               dq_last_error_message());
    }
}

static void on_log(int32_t level, const char *target, const char *message,
                   void *user_data)
{
    (void)level;
    (void)target;
    (void)message;
    (void)user_data;
}

int main(void)
{
    /* Every function, through a pointer of its documented type. */
    dq_status (*consumer_options_default)(struct dq_consumer_options *, size_t) =
        dq_consumer_options_default;
    dq_status (*consumer_open)(const char *,
                               const struct dq_consumer_options *,
                               struct dq_consumer **) = dq_consumer_open;
    dq_status (*consumer_poll)(struct dq_consumer *,
                               struct dq_poll_result *) = dq_consumer_poll;
    dq_status (*consumer_close)(struct dq_consumer *) = dq_consumer_close;
    void (*consumer_free)(struct dq_consumer *) = dq_consumer_free;
    dq_status (*set_log_callback)(dq_log_callback, void *, int32_t) =
        dq_set_log_callback;
    dq_status (*producer_options_default)(struct dq_producer_options *, size_t) =
        dq_producer_options_default;
    dq_status (*producer_open)(const char *,
                               const struct dq_producer_options *,
                               struct dq_producer **) = dq_producer_open;
    dq_status (*producer_push)(struct dq_producer *, const uint8_t *,
                               size_t) = dq_producer_push;
    dq_status (*producer_push_transition)(struct dq_producer *,
                                          const struct dq_transition *) =
        dq_producer_push_transition;
    dq_status (*producer_push_transitions)(struct dq_producer *,
                                           const struct dq_transition *,
                                           size_t, size_t *) =
        dq_producer_push_transitions;
    dq_status (*producer_flush)(struct dq_producer *) = dq_producer_flush;
    dq_status (*producer_close)(struct dq_producer *) = dq_producer_close;
    void (*producer_free)(struct dq_producer *) = dq_producer_free;
    const char *(*last_error_message)(void) = dq_last_error_message;
    dq_status (*last_error_copy)(char *, size_t, size_t *) =
        dq_last_error_copy;
    const char *(*status_str)(int32_t) = dq_status_str;
    const char *(*version)(void) = dq_version;

    /* Every type. */
    dq_producer *producer = NULL;
    dq_consumer *consumer = NULL;
    dq_producer_options producer_options;
    dq_consumer_options consumer_options;
    dq_transition transition;
    dq_poll_result poll_result;
    dq_log_callback callback = on_log;
    dq_status status = DQ_STATUS_OK;
    char buf[16];
    size_t written = 0;
    size_t accepted = 1;
    size_t i;

    memset(&transition, 0, sizeof transition);
    memset(&poll_result, 0, sizeof poll_result);

    for (i = 0; i < sizeof status_codes / sizeof status_codes[0]; i++)
        expect(status_codes[i][0] == status_codes[i][1],
               "status code value");
    expect(sizeof status == 4, "dq_status is 32 bits");

    expect(version() != NULL, "dq_version");
    expect(strcmp(status_str(DQ_STATUS_IO), "DQ_STATUS_IO") == 0,
           "dq_status_str");
    expect(producer_options_default(&producer_options, sizeof producer_options) == DQ_STATUS_OK,
           "dq_producer_options_default");
    expect(consumer_options_default(&consumer_options, sizeof consumer_options) == DQ_STATUS_OK,
           "dq_consumer_options_default");
    expect(producer_open(NULL, &producer_options, &producer) ==
               DQ_STATUS_NULL_ARGUMENT,
           "dq_producer_open");
    expect(consumer_open(NULL, &consumer_options, &consumer) ==
               DQ_STATUS_NULL_ARGUMENT,
           "dq_consumer_open");
    expect(producer == NULL, "dq_producer_open leaves *out untouched");
    expect(consumer == NULL, "dq_consumer_open leaves *out untouched");
    expect(producer_push(producer, (const uint8_t *)"{}", 2) ==
               DQ_STATUS_NULL_ARGUMENT,
           "dq_producer_push");
    expect(producer_push_transition(producer, &transition) ==
               DQ_STATUS_NULL_ARGUMENT,
           "dq_producer_push_transition");
    expect(producer_push_transitions(producer, &transition, 1,
                                     &accepted) == DQ_STATUS_NULL_ARGUMENT,
           "dq_producer_push_transitions");
    expect(accepted == 0, "dq_producer_push_transitions accepted");
    expect(producer_flush(producer) == DQ_STATUS_NULL_ARGUMENT,
           "dq_producer_flush");
    expect(producer_close(producer) == DQ_STATUS_NULL_ARGUMENT,
           "dq_producer_close");
    expect(consumer_poll(consumer, &poll_result) ==
               DQ_STATUS_NULL_ARGUMENT,
           "dq_consumer_poll");
    expect(consumer_close(consumer) == DQ_STATUS_NULL_ARGUMENT,
           "dq_consumer_close");
    expect(strstr(last_error_message(), "consumer") != NULL,
           "dq_last_error_message");
    expect(last_error_copy(buf, sizeof buf, &written) == DQ_STATUS_OK,
           "dq_last_error_copy");
    expect(written == sizeof buf - 1, "dq_last_error_copy cuts to fit");
    expect(buf[sizeof buf - 1] == '\0', "dq_last_error_copy ends in NUL");
    expect(set_log_callback(callback, NULL, 1) == DQ_STATUS_OK,
           "dq_set_log_callback");
    expect(set_log_callback(NULL, NULL, 0) == DQ_STATUS_OK,
           "dq_set_log_callback off");
    producer_free(producer);
    consumer_free(consumer);

    printf("%s\n", failures == 0 ? "ok" : "failed");
    return failures == 0 ? 0 : 1;
}
