/*
 * admin.c: what the admin listener serves (http/admin.c calls
 * api_admin_handle): GET /metrics in Prometheus' text format, and GET
 * /healthz; and the store's log hook, which counts database errors and
 * reconnections on their way to the log.
 *
 * /metrics adds up every thread's counters (http/metrics.h) at the time of
 * the scrape, and reads the gauges then: the writer's queue, the open
 * connections, the memory the guard counts. Requests are labelled by
 * their route table entry (method and path pattern), those that matched
 * none by method alone, so the series are bounded whatever clients send.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/log.h"
#include "api/routes.h"
#include "api/writer.h"
#include "http/metrics.h"
#include "http/server.h"

static int64_t started_at;

void api_metrics_configure(void)
{
    if (API_NROUTES + METHOD_OTHER + 1 > METRICS_ROUTES_MAX) {
        fprintf(stderr, "crmd: more routes than metrics slots (METRICS_ROUTES_MAX)\n");
        abort();
    }
    started_at = time(NULL);
    metrics_enable();
}

void api_store_log(void *ctx, const char *line)
{
    (void)ctx;
    bool back = strstr(line, "reconnected") != NULL;
    metrics_count(back ? METRIC_DB_RECONNECTS : METRIC_DB_ERRORS);
    api_log_message(back ? "info" : "error", line);
}

/* The labels of route slot i, into buf. */
static const char *route_labels(char *buf, size_t size, size_t i)
{
    if (i < API_NROUTES)
        snprintf(buf, size, "route=\"%s\",method=\"%s\"", API_ROUTES[i].path,
                 api_method_name(API_ROUTES[i].method));
    else
        snprintf(buf, size, "route=\"unmatched\",method=\"%s\"",
                 api_method_name((enum api_method)(i - API_NROUTES)));
    return buf;
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void seconds(FILE *f, uint64_t us)
{
    fprintf(f, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
}

/* The series of one histogram of durations: buckets counts per bucket
 * (not cumulative), sum_us their sum; labels "" or "name=\"value\",...". */
static void seconds_histogram(FILE *f, const char *name, const char *labels, const uint64_t *buckets,
                              uint64_t sum_us)
{
    const char *sep = labels[0] ? "," : "", *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    uint64_t n = 0;
    for (int b = 0; b < METRICS_NLATENCY; b++) {
        n += buckets[b];
        fprintf(f, "%s_bucket{%s%sle=\"", name, labels, sep);
        if (b < METRICS_NLATENCY - 1)
            seconds(f, metrics_latency_bound_us(b));
        else
            fprintf(f, "+Inf");
        fprintf(f, "\"} %" PRIu64 "\n", n);
    }
    fprintf(f, "%s_sum%s%s%s ", name, open, labels, close);
    seconds(f, sum_us);
    fprintf(f, "\n%s_count%s%s%s %" PRIu64 "\n", name, open, labels, close, n);
}

static void requests(FILE *f, const metrics_totals_t *m, size_t nslots)
{
    char labels[256];
    family(f, "crmd_http_requests_total", "counter",
           "Requests answered, by route pattern, method and status.");
    for (size_t i = 0; i < nslots; i++)
        for (int s = 0; s < METRICS_NSTATUS; s++) {
            if (m->requests[i][s] == 0) continue;
            int st = metrics_status(s);
            char status[16];
            snprintf(status, sizeof status, st != 0 ? "%d" : "other", st);
            fprintf(f, "crmd_http_requests_total{%s,status=\"%s\"} %" PRIu64 "\n",
                    route_labels(labels, sizeof labels, i), status, m->requests[i][s]);
        }
    family(f, "crmd_http_request_duration_seconds", "histogram",
           "Time from a request's start to its answer, by route pattern and method.");
    for (size_t i = 0; i < nslots; i++) {
        uint64_t total = 0;
        for (int b = 0; b < METRICS_NLATENCY; b++)
            total += m->latency[i][b];
        if (total > 0)
            seconds_histogram(f, "crmd_http_request_duration_seconds", route_labels(labels, sizeof labels, i),
                              m->latency[i], m->latency_us[i]);
    }
}

static void commits(FILE *f, const metrics_totals_t *m)
{
    uint64_t n = 0;
    family(f, "crmd_writer_batch_writes", "histogram", "Writes per commit (group commit batches).");
    for (int b = 0; b < METRICS_NBATCH; b++) {
        n += m->batch_writes[b];
        if (b < METRICS_NBATCH - 1)
            fprintf(f, "crmd_writer_batch_writes_bucket{le=\"%" PRIu64 "\"} %" PRIu64 "\n",
                    metrics_batch_bound(b), n);
        else
            fprintf(f, "crmd_writer_batch_writes_bucket{le=\"+Inf\"} %" PRIu64 "\n", n);
    }
    fprintf(f, "crmd_writer_batch_writes_sum %" PRIu64 "\ncrmd_writer_batch_writes_count %" PRIu64 "\n",
            m->batch_writes_sum, n);
    family(f, "crmd_writer_batch_duration_seconds", "histogram", "Time to run and commit one batch.");
    seconds_histogram(f, "crmd_writer_batch_duration_seconds", "", m->batch_latency, m->batch_us);
}

/* One counter family of one series, or of one series per label value. */
static void counter(FILE *f, const char *name, const char *help, const char *label, const char *const *values,
                    const uint64_t *counts, int n)
{
    family(f, name, "counter", help);
    for (int i = 0; i < n; i++)
        if (label != NULL)
            fprintf(f, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, values[i], counts[i]);
        else
            fprintf(f, "%s %" PRIu64 "\n", name, counts[i]);
}

static void gauge(FILE *f, const char *name, const char *help, uint64_t value)
{
    family(f, name, "gauge", help);
    fprintf(f, "%s %" PRIu64 "\n", name, value);
}

static void counters(FILE *f, const metrics_totals_t *m)
{
    const uint64_t *c = m->counter;
    static const char *const limits[] = {"app", "auth"};
    static const char *const guard[] = {"request_memory", "response_memory", "evicted", "streams",
                                        "deadline"};
    static const char *const reloads[] = {"ok", "failed"};
    uint64_t reload[] = {c[METRIC_TLS_RELOADS], c[METRIC_TLS_RELOAD_FAILURES]};
    counter(f, "crmd_cache_hits_total", "Response cache hits.", NULL, NULL, &c[METRIC_CACHE_HITS], 1);
    counter(f, "crmd_cache_misses_total", "Response cache misses.", NULL, NULL, &c[METRIC_CACHE_MISSES], 1);
    counter(f, "crmd_rate_limited_total", "Requests refused with 429, by limit.", "limit", limits,
            &c[METRIC_RATE_LIMITED_APP], 2);
    counter(f, "crmd_db_errors_total", "Problems the database reported (each also logged).", NULL, NULL,
            &c[METRIC_DB_ERRORS], 1);
    counter(f, "crmd_db_reconnects_total", "Connections to the database made again after a loss.", NULL, NULL,
            &c[METRIC_DB_RECONNECTS], 1);
    counter(f, "crmd_writer_commit_failures_total", "Batches whose transaction failed (none acknowledged).",
            NULL, NULL, &c[METRIC_COMMIT_FAILURES], 1);
    counter(f, "crmd_http_connections_refused_total", "Connections refused over --max-connections.", NULL,
            NULL, &c[METRIC_CONNECTIONS_REFUSED], 1);
    counter(f, "crmd_memory_guard_refusals_total", "What the memory guard refused or gave up, by kind.",
            "kind", guard, &c[METRIC_GUARD_REQUEST_MEMORY], 5);
    counter(f, "crmd_tls_handshake_failures_total", "TLS handshakes that failed or timed out.", NULL, NULL,
            &c[METRIC_TLS_HANDSHAKE_FAILURES], 1);
    counter(f, "crmd_tls_reloads_total", "Certificate reloads on SIGHUP, by result.", "result", reloads,
            reload, 2);
}

static void gauges(FILE *f)
{
    size_t writes, bytes, req, resp;
    api_writer_depth(&writes, &bytes);
    http_memory_held(&req, &resp);
    gauge(f, "crmd_writer_queue_writes", "Writes at the writer (queued or being committed).", writes);
    gauge(f, "crmd_writer_queue_bytes", "Bytes those writes hold.", bytes);
    gauge(f, "crmd_http_open_connections", "Open client connections, all threads together.",
          (uint64_t)http_open_connections());
    int conns[HTTP_THREADS_REPORTED];
    int threads = http_thread_connections(conns, HTTP_THREADS_REPORTED);
    family(f, "crmd_http_thread_connections", "gauge", "Open client connections by serving thread.");
    for (int i = 0; i < threads; i++)
        fprintf(f, "crmd_http_thread_connections{thread=\"%d\"} %d\n", i, conns[i]);
    gauge(f, "crmd_memory_request_bytes", "Request bytes held for clients (the memory guard's count).", req);
    gauge(f, "crmd_memory_response_bytes", "Answer bytes not yet taken by their readers.", resp);
    gauge(f, "crmd_start_time_seconds", "When this process started, in seconds since the epoch.",
          (uint64_t)started_at);
}

/* The exposition, malloc'd into *out; its length, or 0 when out of memory. */
static size_t render(char **out)
{
    size_t len = 0;
    FILE *f = open_memstream(out, &len);
    metrics_totals_t *m = malloc(sizeof *m);
    if (f == NULL || m == NULL) {
        if (f != NULL) fclose(f);
        free(m);
        free(*out);
        *out = NULL;
        return 0;
    }
    metrics_sum(m);
    requests(f, m, API_NROUTES + METHOD_OTHER + 1);
    commits(f, m);
    counters(f, m);
    gauges(f);
    free(m);
    return fclose(f) == 0 ? len : 0;
}

static void answer(h2o_req_t *req, int status, const char *type, h2o_iovec_t body)
{
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : status == 404 ? "Not Found" : "Service Unavailable";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
    req->res.content_length = body.len;
    h2o_send_inline(req, body.base, body.len);
}

void api_admin_handle(h2o_req_t *req, void *arg)
{
    (void)arg;
    static const char json[] = "application/json";
    bool get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
               h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    h2o_iovec_t path = h2o_iovec_init(req->path_normalized.base, req->path_normalized.len);
    if (get && h2o_memis(path.base, path.len, H2O_STRLIT("/metrics"))) {
        char *text = NULL;
        size_t len = render(&text);
        if (len == 0) {
            answer(req, 503, json,
                   h2o_iovec_init(
                       H2O_STRLIT("{\"errors\":[{\"status\":\"503\",\"code\":\"service_unavailable\","
                                  "\"title\":\"Service Unavailable\",\"detail\":\"The server is out of "
                                  "memory.\"}]}")));
        } else {
            answer(req, 200, "text/plain; version=0.0.4; charset=utf-8", h2o_strdup(&req->pool, text, len));
        }
        free(text);
    } else if (get && h2o_memis(path.base, path.len, H2O_STRLIT("/healthz"))) {
        answer(req, 200, json, h2o_iovec_init(H2O_STRLIT("{\"status\":\"ok\"}")));
    } else {
        answer(req, 404, json,
               h2o_iovec_init(H2O_STRLIT("{\"errors\":[{\"status\":\"404\",\"code\":\"not_found\",\"title\":"
                                         "\"Not Found\",\"detail\":\"The admin listener serves /metrics and "
                                         "/healthz only.\"}]}")));
    }
}
