/*
 * metrics.h: the counters behind /metrics (api/admin.c renders them).
 *
 * Every thread that counts has a slot of its own (metrics_thread_attach:
 * the server threads, the writer), which only it writes, with plain
 * relaxed loads and stores: no lock and no locked instruction on the
 * request path. A scrape adds the slots up (metrics_sum), reading each
 * counter atomically, so it sees every count a little late at worst and
 * never a torn one. A thread without a slot (the main thread, a store's
 * log line from elsewhere) counts in a shared slot with atomic adds.
 *
 * Counting is off until metrics_enable (--admin-listen): then nothing is
 * counted and no clock is read for it. Labels stay bounded: requests are
 * counted by route table entry (its path pattern, never the raw path) and
 * by status among a fixed list.
 */
#ifndef CRMD_HTTP_METRICS_H
#define CRMD_HTTP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Route slots: the route table's entries, then one per method for
 * requests that matched none (api/admin.c names them). */
#define METRICS_ROUTES_MAX 96

/* The statuses counted one by one; any other counts as "other". */
#define METRICS_STATUS_LIST                                                                                  \
    200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 412, 413, 415, 422, 429, 499, 500, 503
enum { METRICS_NSTATUS = 19 }; /* the list and "other" */

/* Request latency buckets, upper bounds in microseconds (then +Inf). */
#define METRICS_LATENCY_BOUNDS_US                                                                            \
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 10000000
enum { METRICS_NLATENCY = 15 };
/* Writes per commit batch, upper bounds (then +Inf). */
#define METRICS_BATCH_BOUNDS 1, 2, 4, 8, 16, 32, 64, 128, 256
enum { METRICS_NBATCH = 10 };

enum metrics_counter {
    METRIC_CACHE_HITS,
    METRIC_CACHE_MISSES,
    METRIC_RATE_LIMITED_APP,
    METRIC_RATE_LIMITED_AUTH,
    METRIC_DB_ERRORS,
    METRIC_DB_RECONNECTS,
    METRIC_COMMIT_FAILURES,
    METRIC_CONNECTIONS_REFUSED,
    /* The memory guard (guard.h): a request refused for request memory (an
     * HTTP/1 connection, an HTTP/2 stream), an answer refused for response
     * memory (503), an answer a slow reader held given up, an HTTP/2 stream
     * over the cap, an HTTP/2 stream or connection past a deadline. */
    METRIC_GUARD_REQUEST_MEMORY,
    METRIC_GUARD_RESPONSE_MEMORY,
    METRIC_GUARD_EVICTED,
    METRIC_GUARD_STREAMS,
    METRIC_GUARD_DEADLINE,
    METRIC_TLS_HANDSHAKE_FAILURES,
    METRIC_TLS_RELOADS,
    METRIC_TLS_RELOAD_FAILURES,
    METRIC_NCOUNTERS
};

/* What a scrape reads: every slot added up. */
typedef struct metrics_totals {
    uint64_t counter[METRIC_NCOUNTERS];
    uint64_t requests[METRICS_ROUTES_MAX][METRICS_NSTATUS];
    uint64_t latency[METRICS_ROUTES_MAX][METRICS_NLATENCY]; /* per bucket, not cumulative */
    uint64_t latency_us[METRICS_ROUTES_MAX];                /* the sum */
    uint64_t batch_writes[METRICS_NBATCH], batch_writes_sum;
    uint64_t batch_latency[METRICS_NLATENCY], batch_us;
} metrics_totals_t;

/* Turns counting on; call before serving. */
void metrics_enable(void);
bool metrics_enabled(void);

/* Gives the calling thread a slot of its own (once; kept until the
 * process ends, so a scrape never reads freed memory). */
void metrics_thread_attach(void);

void metrics_count(enum metrics_counter c);
/* A request of route slot route answered with status after ns. */
void metrics_request(int route, int status, int64_t ns);
/* A commit batch of writes that took ns. */
void metrics_commit(int writes, int64_t ns);

/* The statuses counted, by index (the last, "other", is 0). */
int metrics_status(int index);
/* The bounds of the buckets (the last, +Inf, is 0). */
uint64_t metrics_latency_bound_us(int index);
uint64_t metrics_batch_bound(int index);

/* Adds every slot up into out. */
void metrics_sum(metrics_totals_t *out);

#endif
