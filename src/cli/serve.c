/*
 * serve.c: crmd serve: its options (over the CRMD_ environment and the
 * --config file) read into a serve_conf_t and set up module by module,
 * then the keys, the writer, the webhook sender and the HTTP server
 * started, and stopped in order on SIGINT or SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "api/api.h"
#include "api/cache.h"
#include "api/cors.h"
#include "api/keyring.h"
#include "api/log.h"
#include "api/outbox.h"
#include "api/proxy.h"
#include "api/ratelimit.h"
#include "auth/jwt.h"
#include "cli/cli.h"
#include "cli/cli_int.h"
#include "http/server.h"
#include "notify.h"
#include "store/store.h"
#include "webhook/schedule.h"
#include "webhook/sender.h"
#include "webhook/target.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_RATE_LIMIT "100:200"
#define DEFAULT_AUTH_LIMIT "20:40"
#define DEFAULT_CACHE_MB 16
#define DEFAULT_MEMORY_MB ((long)(HTTP_MEMORY_DEFAULT >> 20))
#define DEFAULT_JWKS_REFRESH_S 300

static void on_ready(void *arg)
{
    const api_shared_t *shared = arg;
    fprintf(stderr, "crmd: ready (database %s)\n", cli_shown(shared->db_url));
    /* Type=notify units start their dependents only now. */
    if (notify_send("READY=1") < 0) fprintf(stderr, "crmd: cannot tell $NOTIFY_SOCKET that it is ready\n");
}

/* Splits HOST:PORT ("[::1]:8080" for IPv6; "localhost" means 127.0.0.1). */
static int parse_listen(const char *s, char *host, size_t hostsz, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s) return -1;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostsz) return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (strcmp(host, "localhost") == 0) snprintf(host, hostsz, "127.0.0.1");
    /* An address, not a name: the listeners bind what inet_pton reads,
     * and a name failed only later, without a reason. */
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1) return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p < 1 || p > 65535) return -1;
    *port = (uint16_t)p;
    return 0;
}

/* What crmd serve runs with, from its options and the environment. */
typedef struct serve_conf {
    const char *db;
    char host[128];
    uint16_t port;
    bool quiet, http2;
    long threads, cache_mb, max_conns, write_queue, request_mb, response_mb, drain_s;
    double rate, burst, auth_rate, auth_burst;
    /* The operations options (serve_operations): strings as given. */
    struct {
        const char *log_format, *admin, *tls_cert, *tls_key, *cors;
        char cors_list[1024], admin_host[128];
        uint16_t admin_port;
    } ops;
    keyring_conf_t keys;                    /* an identity provider's keys, and its tokens' rules */
    const char *trash_retention;            /* as given; NULL: the default */
    const char *export_limit, *export_time; /* as given; NULL: the defaults */
    const char *read_time;                  /* as given; NULL: the default */
    /* The webhook options (serve_webhooks): strings as given. */
    struct {
        const char *allow_private, *retry, *give_up, *disable_after, *ca_file, *sender, *backlog, *log_keep;
        bool send; /* this process delivers (--webhook-sender on) */
        webhook_sender_conf_t conf;
    } wh;
} serve_conf_t;

/* --trash-retention: a DURATION, or 0 (a delete purges at once). Returns
 * -1 to go on, or the exit status (usage printed). */
static int serve_trash(const serve_conf_t *c)
{
    const char *s = c->trash_retention;
    int64_t ms = API_TRASH_RETENTION_DEFAULT_MS;
    if (s != NULL) {
        int64_t secs = strcmp(s, "0") == 0 ? 0 : cli_parse_ttl(s);
        if (secs < 0)
            return cli_usage_error(
                "--trash-retention wants 0 or a number with s, m, h or d (up to 3650d), not '%s'", s);
        ms = secs * 1000;
    }
    api_writer_configure_trash(ms);
    return -1;
}

_Static_assert(API_EXPORT_MAX_TOTAL == 1024, "--export-limit's message names the bound");

/* --export-limit N[:PER_APP] (PER_APP defaults to N, and is at most N) and
 * --export-time DURATION[:IDLE]. Returns -1 to go on, or the exit status (usage
 * printed). */
static int serve_exports(const serve_conf_t *c)
{
    long total = API_EXPORT_TOTAL_DEFAULT, per_app = API_EXPORT_PER_APP_DEFAULT;
    const char *s = c->export_limit;
    if (s != NULL) {
        char buf[32];
        snprintf(buf, sizeof buf, "%s", s);
        char *colon = strchr(buf, ':');
        if (colon != NULL) *colon = '\0';
        bool ok = strlen(s) < sizeof buf && cli_parse_long(buf, 1, API_EXPORT_MAX_TOTAL, &total);
        per_app = total;
        if (ok && colon != NULL) ok = cli_parse_long(colon + 1, 1, total, &per_app);
        if (!ok)
            return cli_usage_error(
                "--export-limit wants N[:PER_APP], N from 1 to 1024 and PER_APP from 1 to N, "
                "not '%s'",
                s);
    }
    int64_t ms = API_EXPORT_TIME_DEFAULT_MS, idle_ms = API_EXPORT_IDLE_DEFAULT_MS;
    if ((s = c->export_time) != NULL) {
        char buf[32];
        snprintf(buf, sizeof buf, "%s", s);
        char *colon = strchr(buf, ':');
        if (colon != NULL) *colon = '\0';
        int64_t secs = strlen(s) < sizeof buf ? cli_parse_ttl(buf) : -1;
        int64_t idle = colon != NULL ? cli_parse_ttl(colon + 1) : API_EXPORT_IDLE_DEFAULT_MS / 1000;
        if (secs < 0 || secs > 86400 || idle < 0 || idle > 86400)
            return cli_usage_error(
                "--export-time wants DURATION[:IDLE], each a number with s, m, h or d (up to "
                "1d), not '%s'",
                s);
        ms = secs * 1000;
        idle_ms = idle * 1000;
    }
    api_export_configure((int)total, (int)per_app, ms, idle_ms);
    return -1;
}

/* --read-time: "0" or "off" (no bound), or a number with ms, s or m, from
 * 1ms to 60s. Returns -1 to go on, or the exit status (usage printed). */
static int serve_read_time(const serve_conf_t *c)
{
    const char *s = c->read_time;
    int64_t ms = API_READ_TIME_DEFAULT_MS;
    if (s != NULL) {
        char *end;
        errno = 0;
        long long n = strtoll(s, &end, 10);
        bool ok = errno == 0 && end != s && s[0] >= '0' && s[0] <= '9' && n >= 0;
        if (strcmp(s, "off") == 0 || strcmp(s, "0") == 0)
            ms = 0;
        else if (ok && strcmp(end, "ms") == 0 && n >= 1 && n <= API_READ_TIME_MAX_MS)
            ms = n;
        else if (ok && strcmp(end, "s") == 0 && n >= 1 && n <= API_READ_TIME_MAX_MS / 1000)
            ms = n * 1000;
        else if (ok && strcmp(end, "m") == 0 && n == 1)
            ms = 60 * 1000;
        else
            return cli_usage_error("--read-time wants 0, off, or a number with ms, s or m (1ms to 60s), "
                                   "not '%s'",
                                   s);
    }
    api_read_configure(ms);
    return -1;
}

/* The operations options: the log's form, the admin listener, TLS, CORS.
 * Returns -1 to go on, or the exit status (usage printed). */
static int serve_operations(serve_conf_t *c)
{
    const char *f = c->ops.log_format;
    if (f != NULL && strcmp(f, "text") != 0 && strcmp(f, "json") != 0)
        return cli_usage_error("--log-format wants text or json, not '%s'", f);
    api_log_configure(f != NULL && strcmp(f, "json") == 0 ? API_LOG_JSON : API_LOG_TEXT);
    if ((c->ops.tls_cert == NULL) != (c->ops.tls_key == NULL))
        return cli_usage_error("%s", "--tls-cert and --tls-key go together");
    if (c->ops.admin != NULL) {
        if (parse_listen(c->ops.admin, c->ops.admin_host, sizeof c->ops.admin_host, &c->ops.admin_port) != 0)
            return cli_usage_error(
                "--admin-listen wants ADDRESS:PORT (an IPv4 address, [IPv6] or localhost), not '%s'",
                c->ops.admin);
        api_metrics_configure();
    }
    char err[160];
    if (cors_allow(c->ops.cors, err, sizeof err) != 0)
        return cli_usage_error("--cors-origin wants origins such as https://app.example.com, or *: %s", err);
    return -1;
}

/* The options of serve that name an external identity provider. Returns
 * -1 to go on, or the exit status (usage printed). */
static int serve_idp(serve_conf_t *c, const char *refresh_s)
{
    keyring_conf_t *k = &c->keys;
    if (k->jwks_file != NULL && k->jwks_url != NULL)
        return cli_usage_error("%s", "--jwks-file and --jwks-url exclude each other");
    long refresh = DEFAULT_JWKS_REFRESH_S;
    if (refresh_s != NULL && !cli_parse_long(refresh_s, 1, 86400, &refresh))
        return cli_usage_error("--jwks-refresh wants a number of seconds from 1 to 86400, not '%s'",
                               refresh_s);
    k->refresh_s = (int)refresh;
    char why[128], shown[512];
    if (k->jwks_url != NULL && keyring_url_check(k->jwks_url, why, sizeof why) != 0) {
        keyring_url_shown(k->jwks_url, shown, sizeof shown);
        return cli_usage_error("--jwks-url wants an https:// URL (http:// only to localhost, "
                               "127.0.0.0/8 or [::1]), not '%s'",
                               shown);
    }
    const char *claim = k->rules.app_claim;
    if (claim[0] == '\0' || strlen(claim) > 64)
        return cli_usage_error("--app-claim wants a claim name of 1 to 64 bytes, not '%s'", claim);
    k->db_url = c->db;
    return -1;
}

/* Reads a switch's value: the flag stores "", a setting 1, 0, true or
 * false. False with *on untouched for anything else. */
static bool parse_switch(const char *s, bool *on)
{
    if (s == NULL) return true;
    if (strcmp(s, "") == 0 || strcmp(s, "1") == 0 || strcmp(s, "true") == 0)
        *on = true;
    else if (strcmp(s, "0") == 0 || strcmp(s, "false") == 0)
        *on = false;
    else
        return false;
    return true;
}

/* The webhook options of serve. Returns -1 to go on, or the exit status
 * (usage printed). */
static int serve_webhooks(serve_conf_t *c)
{
    webhook_sender_conf_t *w = &c->wh.conf;
    bool allow = false;
    if (!parse_switch(c->wh.allow_private, &allow))
        return cli_usage_error("CRMD_WEBHOOK_ALLOW_PRIVATE wants 1 or 0, not '%s'", c->wh.allow_private);
    webhook_allow_private(allow);
    const char *retry = c->wh.retry != NULL ? c->wh.retry : WEBHOOK_RETRY_DEFAULT;
    if (!webhook_schedule_parse(retry, &w->schedule))
        return cli_usage_error(
            "--webhook-retry wants durations such as 10s,30s,2m (each up to 30d), not '%s'", retry);
    w->schedule.give_up_ms = WEBHOOK_GIVE_UP_DEFAULT_MS;
    if (c->wh.give_up != NULL && !webhook_duration_parse(c->wh.give_up, &w->schedule.give_up_ms))
        return cli_usage_error("--webhook-give-up wants a duration such as 24h (up to 30d), not '%s'",
                               c->wh.give_up);
    w->log_keep_ms = WEBHOOK_LOG_KEEP_DEFAULT_MS;
    if (c->wh.log_keep != NULL && !webhook_duration_parse(c->wh.log_keep, &w->log_keep_ms))
        return cli_usage_error("--webhook-log-keep wants a duration such as 7d (up to 30d), not '%s'",
                               c->wh.log_keep);
    w->disable_after_ms = WEBHOOK_DISABLE_AFTER_DEFAULT_MS;
    if (c->wh.disable_after != NULL && !webhook_duration_parse(c->wh.disable_after, &w->disable_after_ms))
        return cli_usage_error("--webhook-disable-after wants a duration such as 3d (up to 30d), not '%s'",
                               c->wh.disable_after);
    const char *sender = c->wh.sender != NULL ? c->wh.sender : "on";
    if (strcmp(sender, "on") != 0 && strcmp(sender, "off") != 0)
        return cli_usage_error("--webhook-sender wants on or off, not '%s'", sender);
    c->wh.send = strcmp(sender, "on") == 0;
    long backlog = API_OUTBOX_BACKLOG_DEFAULT;
    if (c->wh.backlog != NULL && !cli_parse_long(c->wh.backlog, 1, API_OUTBOX_BACKLOG_MAX, &backlog))
        return cli_usage_error("--webhook-backlog-max wants a whole number from 1 to 10000000, not '%s'",
                               c->wh.backlog);
    api_outbox_configure(backlog);
    w->ca_file = c->wh.ca_file;
    w->db_url = c->db;
    return -1;
}

/* The options of serve that bound what clients can make it hold. Returns
 * -1 to go on, or the exit status (usage printed). */
static int serve_memory(serve_conf_t *c, const char *request_s, const char *response_s, const char *http2_s)
{
    c->request_mb = c->response_mb = DEFAULT_MEMORY_MB;
    if (request_s != NULL && !cli_parse_long(request_s, 1, 65536, &c->request_mb))
        return cli_usage_error("--request-memory-mb wants a number of MiB from 1 to 65536, not '%s'",
                               request_s);
    if (response_s != NULL && !cli_parse_long(response_s, 1, 65536, &c->response_mb))
        return cli_usage_error("--response-memory-mb wants a number of MiB from 1 to 65536, not '%s'",
                               response_s);
    /* The flag stores "" and CRMD_HTTP2 must say 1 or 0. */
    if (http2_s != NULL && strcmp(http2_s, "") != 0 && strcmp(http2_s, "1") != 0 && strcmp(http2_s, "0") != 0)
        return cli_usage_error("CRMD_HTTP2 wants 1 or 0, not '%s'", http2_s);
    c->http2 = http2_s != NULL && strcmp(http2_s, "0") != 0;
    return -1;
}

/* Reads a limit flag's value s ("RATE[:BURST]" or "off"; NULL: dflt) into
 * *rate and *burst (0 when off). Returns -1, or the exit status of a
 * usage error. */
static int parse_limit(const char *flag, const char *s, const char *dflt, double *rate, double *burst)
{
    *rate = *burst = 0;
    if (s == NULL) s = dflt;
    if (strcmp(s, "off") == 0 || ratelimit_parse(s, rate, burst)) return -1;
    char msg[320];
    snprintf(msg, sizeof msg, "--%s wants RATE[:BURST] in requests per second, or off, not '%.200s'", flag,
             s);
    return cli_usage_error("%s", msg);
}

/* Sets up the rate limits and the trusted proxies from their options.
 * Both limits are on by default on every address, loopback included:
 * loopback is where crmd listens behind the TLS proxy the docs recommend.
 * Returns -1, or the exit status of a usage error. */
static int serve_limits(serve_conf_t *c, const char *rate_s, const char *auth_s, const char *proxies)
{
    int rc = parse_limit("rate-limit", rate_s, DEFAULT_RATE_LIMIT, &c->rate, &c->burst);
    if (rc < 0) rc = parse_limit("auth-limit", auth_s, DEFAULT_AUTH_LIMIT, &c->auth_rate, &c->auth_burst);
    if (rc >= 0) return rc;
    ratelimit_configure(RATELIMIT_APP, c->rate, c->burst);
    ratelimit_configure(RATELIMIT_AUTH, c->auth_rate, c->auth_burst);
    proxy_reset();
    char err[160];
    if (proxies != NULL && proxies[0] != '\0' && proxy_trust(proxies, err, sizeof err) != 0)
        return cli_usage_error("--trusted-proxy wants CIDR ranges (10.0.0.0/8, ::1/128): %s", err);
    return -1;
}

/* The webhook options' environment variables, which their flags override. */
static void webhook_env(serve_conf_t *c)
{
    c->wh.allow_private = cli_env_or("CRMD_WEBHOOK_ALLOW_PRIVATE", NULL);
    c->wh.retry = cli_env_or("CRMD_WEBHOOK_RETRY", NULL);
    c->wh.give_up = cli_env_or("CRMD_WEBHOOK_GIVE_UP", NULL);
    c->wh.disable_after = cli_env_or("CRMD_WEBHOOK_DISABLE_AFTER", NULL);
    c->wh.ca_file = cli_env_or("CRMD_WEBHOOK_CA_FILE", NULL);
    c->wh.sender = cli_env_or("CRMD_WEBHOOK_SENDER", NULL);
    c->wh.backlog = cli_env_or("CRMD_WEBHOOK_BACKLOG_MAX", NULL);
    c->wh.log_keep = cli_env_or("CRMD_WEBHOOK_LOG_KEEP", NULL);
}

/* Reads the sizes serve runs with (threads, the response cache, the
 * connection cap, the writer's queue) and sets them up. Returns -1 to go
 * on, or the exit status (usage printed). */
static int serve_sizes(serve_conf_t *c, const char *threads_s, const char *cache_s, const char *maxconn_s,
                       const char *queue_s)
{
    c->threads = sysconf(_SC_NPROCESSORS_ONLN);
    if (threads_s != NULL && !cli_parse_long(threads_s, 1, 256, &c->threads))
        return cli_usage_error("--threads wants a number from 1 to 256, not '%s'", threads_s);
    if (c->threads < 1) c->threads = 1;
    if (c->threads > 256) c->threads = 256; /* the most --threads takes */
    /* The response cache sees only this process's writes: it is for an
     * embedded SQLite database, never for a shared PostgreSQL one. */
    c->cache_mb = DEFAULT_CACHE_MB;
    if (cache_s != NULL && !cli_parse_long(cache_s, 0, 65536, &c->cache_mb))
        return cli_usage_error("--cache-mb wants a number of MiB from 0 to 65536, not '%s'", cache_s);
    if (store_url_is_shared(c->db)) c->cache_mb = 0;
    cache_configure((size_t)c->cache_mb << 20);
    c->max_conns = http_max_connections_default();
    if (maxconn_s != NULL && !cli_parse_long(maxconn_s, 1, 1000000, &c->max_conns))
        return cli_usage_error("--max-connections wants a number from 1 to 1000000, not '%s'", maxconn_s);
    c->write_queue = API_WRITE_QUEUE_DEFAULT;
    if (queue_s != NULL && !cli_parse_long(queue_s, 1, 1000000, &c->write_queue))
        return cli_usage_error("--write-queue wants a number of writes from 1 to 1000000, not '%s'", queue_s);
    api_writer_configure((size_t)c->write_queue, API_WRITE_QUEUE_BYTES);
    return -1;
}

/* Reads serve's options (over the environment's CRMD_ settings) into c
 * and sets up the limits, the response cache and the writer's queue.
 * Returns -1 to go on, or the exit status (usage printed). */
static int serve_configure(int argc, char **argv, serve_conf_t *c)
{
    static const char help[] =
        "usage: crmd serve [--listen HOST:PORT] [--db URL] [--threads N] [--quiet]\n"
        "                  [--rate-limit RATE[:BURST]|off] [--auth-limit RATE[:BURST]|off]\n"
        "                  [--trusted-proxy CIDR[,CIDR...]]... [--max-connections N]\n"
        "                  [--cache-mb N] [--write-queue N]\n"
        "                  [--request-memory-mb N] [--response-memory-mb N] [--http2]\n"
        "                  [--tls-cert FILE --tls-key FILE] [--admin-listen HOST:PORT]\n"
        "                  [--cors-origin ORIGIN[,ORIGIN...]]... [--log-format text|json]\n"
        "                  [--jwks-file FILE | --jwks-url URL [--jwks-refresh SECONDS]]\n"
        "                  [--app-claim NAME] [--jwt-issuer ISS] [--jwt-audience AUD]\n"
        "                  [--webhook-allow-private] [--webhook-retry D[,D...]] [--webhook-give-up D]\n"
        "                  [--webhook-disable-after D] [--webhook-ca-file FILE] [--webhook-sender on|off]\n"
        "                  [--webhook-backlog-max N] [--webhook-log-keep D]\n"
        "                  [--trash-retention DURATION]\n"
        "                  [--export-limit N[:PER_APP]] [--export-time DURATION[:IDLE]]\n"
        "                  [--read-time DURATION] [--drain-seconds N]\n";
    static char proxy_list[1024];
    const char *listen_at = cli_env_or("CRMD_LISTEN", DEFAULT_LISTEN);
    const char *threads_s = cli_env_or("CRMD_THREADS", NULL),
               *maxconn_s = cli_env_or("CRMD_MAX_CONNECTIONS", NULL);
    const char *cache_s = cli_env_or("CRMD_CACHE_MB", NULL), *queue_s = cli_env_or("CRMD_WRITE_QUEUE", NULL);
    const char *rate_s = cli_env_or("CRMD_RATE_LIMIT", NULL), *auth_s = cli_env_or("CRMD_AUTH_LIMIT", NULL);
    const char *proxies = cli_env_or("CRMD_TRUSTED_PROXY", NULL), *quiet = cli_env_or("CRMD_QUIET", NULL);
    const char *request_s = cli_env_or("CRMD_REQUEST_MEMORY_MB", NULL);
    const char *response_s = cli_env_or("CRMD_RESPONSE_MEMORY_MB", NULL);
    const char *http2_s = cli_env_or("CRMD_HTTP2", NULL), *refresh_s = cli_env_or("CRMD_JWKS_REFRESH", NULL);
    const char *drain_s = cli_env_or("CRMD_DRAIN_SECONDS", NULL);
    c->trash_retention = cli_env_or("CRMD_TRASH_RETENTION", NULL);
    c->export_limit = cli_env_or("CRMD_EXPORT_LIMIT", NULL);
    c->export_time = cli_env_or("CRMD_EXPORT_TIME", NULL);
    c->read_time = cli_env_or("CRMD_READ_TIME", NULL);
    c->db = cli_env_or("CRMD_DB", DEFAULT_DB);
    c->keys = (keyring_conf_t){.jwks_file = cli_env_or("CRMD_JWKS_FILE", NULL),
                               .jwks_url = cli_env_or("CRMD_JWKS_URL", NULL),
                               .rules = {.app_claim = cli_env_or("CRMD_APP_CLAIM", "app"),
                                         .issuer = cli_env_or("CRMD_JWT_ISSUER", NULL),
                                         .audience = cli_env_or("CRMD_JWT_AUDIENCE", NULL)}};
    c->ops.log_format = cli_env_or("CRMD_LOG_FORMAT", NULL);
    c->ops.cors = cli_env_or("CRMD_CORS_ORIGIN", NULL);
    c->ops.admin = cli_env_or("CRMD_ADMIN_LISTEN", NULL);
    c->ops.tls_cert = cli_env_or("CRMD_TLS_CERT", NULL);
    c->ops.tls_key = cli_env_or("CRMD_TLS_KEY", NULL);
    webhook_env(c);
    const cli_opt_t opts[] = {
        {"listen", &listen_at},
        {"db", &c->db},
        {"threads", &threads_s},
        {"quiet", &quiet, true},
        {"rate-limit", &rate_s},
        {"auth-limit", &auth_s},
        {"trusted-proxy", &proxies, .list = proxy_list, .list_size = sizeof proxy_list},
        {"max-connections", &maxconn_s},
        {"cache-mb", &cache_s},
        {"write-queue", &queue_s},
        {"request-memory-mb", &request_s},
        {"response-memory-mb", &response_s},
        {"http2", &http2_s, true},
        {"log-format", &c->ops.log_format},
        {"admin-listen", &c->ops.admin},
        {"tls-cert", &c->ops.tls_cert},
        {"tls-key", &c->ops.tls_key},
        {"cors-origin", &c->ops.cors, .list = c->ops.cors_list, .list_size = sizeof c->ops.cors_list},
        {"jwks-file", &c->keys.jwks_file},
        {"jwks-url", &c->keys.jwks_url},
        {"jwks-refresh", &refresh_s},
        {"app-claim", &c->keys.rules.app_claim},
        {"jwt-issuer", &c->keys.rules.issuer},
        {"jwt-audience", &c->keys.rules.audience},
        {"trash-retention", &c->trash_retention},
        {"export-limit", &c->export_limit},
        {"export-time", &c->export_time},
        {"read-time", &c->read_time},
        {"webhook-allow-private", &c->wh.allow_private, true},
        {"webhook-retry", &c->wh.retry},
        {"webhook-give-up", &c->wh.give_up},
        {"webhook-disable-after", &c->wh.disable_after},
        {"webhook-ca-file", &c->wh.ca_file},
        {"webhook-sender", &c->wh.sender},
        {"webhook-backlog-max", &c->wh.backlog},
        {"webhook-log-keep", &c->wh.log_keep},
        {"drain-seconds", &drain_s},
        {NULL}};
    int first, rc = cli_parse_opts(argc, argv, help, opts, 0, &first);
    if (rc >= 0 || (rc = cli_check_db("--db", c->db)) >= 0) return rc;
    /* The flag stores ""; CRMD_QUIET must say 1 or 0 (true or false), as
     * every switch does: "false" read as on turned the request log off. */
    if (!parse_switch(quiet, &c->quiet)) return cli_usage_error("CRMD_QUIET wants 1 or 0, not '%s'", quiet);
    c->drain_s = 3;
    if (drain_s != NULL && !cli_parse_long(drain_s, 1, 3600, &c->drain_s))
        return cli_usage_error("--drain-seconds wants a number of seconds from 1 to 3600, not '%s'", drain_s);
    if ((rc = serve_memory(c, request_s, response_s, http2_s)) >= 0) return rc;
    if ((rc = serve_operations(c)) >= 0) return rc;
    if ((rc = serve_idp(c, refresh_s)) >= 0) return rc;
    if ((rc = serve_trash(c)) >= 0) return rc;
    if ((rc = serve_exports(c)) >= 0) return rc;
    if ((rc = serve_read_time(c)) >= 0) return rc;
    if ((rc = serve_webhooks(c)) >= 0) return rc;
    if (parse_listen(listen_at, c->host, sizeof c->host, &c->port) != 0)
        return cli_usage_error("--listen wants ADDRESS:PORT (an IPv4 address, [IPv6] or localhost), not '%s'",
                               listen_at);
    if ((rc = serve_limits(c, rate_s, auth_s, proxies)) >= 0) return rc;
    return serve_sizes(c, threads_s, cache_s, maxconn_s, queue_s);
}

/* Writes "RATE/s (burst BURST)", or "off", into buf. */
static const char *limit_text(char *buf, size_t size, double rate, double burst)
{
    if (rate <= 0)
        snprintf(buf, size, "off");
    else
        snprintf(buf, size, "%g/s (burst %g)", rate, burst);
    return buf;
}

/* Says at start-up which limits are in force, and whose address the
 * failed-authentication limit counts. */
static void print_limits(const serve_conf_t *c)
{
    char app[64], auth[64], proxies[1024];
    fprintf(stderr,
            "crmd: limits: requests per app %s; failed authentications per client address %s; "
            "write queue %ld writes or %zu MiB; %ld connections\n",
            limit_text(app, sizeof app, c->rate, c->burst),
            limit_text(auth, sizeof auth, c->auth_rate, c->auth_burst), c->write_queue,
            API_WRITE_QUEUE_BYTES >> 20, c->max_conns);
    proxy_describe(proxies, sizeof proxies);
    if (proxy_count() > 0)
        fprintf(stderr, "crmd: client address: from X-Forwarded-For when the peer is a trusted proxy (%s)\n",
                proxies);
    else
        fprintf(stderr, "crmd: client address: the connection's peer (no --trusted-proxy)\n");
    const char *origins = c->ops.cors != NULL && c->ops.cors[0] != '\0' ? c->ops.cors : NULL;
    fprintf(stderr, "crmd: CORS: %s\n", origins != NULL ? origins : "off (no --cors-origin)");
}

/* Says at start-up how webhooks are delivered. */
static void print_webhooks(const serve_conf_t *c)
{
    const webhook_sender_conf_t *w = &c->wh.conf;
    if (!c->wh.send) {
        fprintf(stderr,
                "crmd: webhooks: events are recorded; other processes deliver them (--webhook-sender off)\n");
        return;
    }
    fprintf(stderr,
            "crmd: webhooks: delivered by this process; %d retry intervals, given up after %llds, "
            "inactive after %llds of failures; private targets %s%s%s\n",
            w->schedule.n, (long long)(w->schedule.give_up_ms / 1000),
            (long long)(w->disable_after_ms / 1000), webhook_private_allowed() ? "allowed" : "refused",
            w->ca_file ? "; more CAs from " : "", w->ca_file ? w->ca_file : "");
}

/* Says at start-up which keys verify tokens. */
static void print_keys(const serve_conf_t *c, keyring_t *keys)
{
    keyring_snap_t *snap = keyring_acquire(keys);
    size_t own = 0, n = jwt_keyset_count(snap->set);
    for (size_t i = 0; i < n; i++)
        own += !jwt_key_external(jwt_keyset_key(snap->set, i));
    fprintf(stderr, "crmd: keys: %zu of crmd's own verify tokens", own);
    const keyring_conf_t *k = &c->keys;
    char shown[512] = "";
    if (k->jwks_url != NULL) keyring_url_shown(k->jwks_url, shown, sizeof shown);
    if (n > own)
        fprintf(stderr, "; %zu of the identity provider's from %s (app claim '%s'%s%s%s%s)", n - own,
                k->jwks_file != NULL ? k->jwks_file : shown, k->rules.app_claim,
                k->rules.issuer ? ", issuer " : "", k->rules.issuer ? k->rules.issuer : "",
                k->rules.audience ? ", audience " : "", k->rules.audience ? k->rules.audience : "");
    fputc('\n', stderr);
    keyring_release(snap);
}

/* Claims c's SQLite database for this server, with flock on its file
 * (held until the process ends): exclusive with the response cache on,
 * which sees only this process's writes, so that no other server changes
 * the data under it (a second server's update and delete were answered
 * stale by the first, for as long as it ran); shared with the cache off,
 * as several servers may then share the file (SQLite's locks keep the
 * data whole). False, said on stderr, when another server holds it;
 * PostgreSQL, or a file system without flock, claims nothing. *exclusive:
 * whether the exclusive lock was taken (api_writer_configure_syncs). */
static bool claim_database(const serve_conf_t *c, bool *exclusive)
{
    *exclusive = false;
    const char *path = store_url_file(c->db);
    if (path == NULL || strcmp(path, ":memory:") == 0) return true;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return true; /* cli_open_db opened it: nothing more to say */
    if (flock(fd, (c->cache_mb > 0 ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) {
        *exclusive = c->cache_mb > 0;
        return true; /* fd kept */
    }
    int e = errno;
    close(fd);
    if (e != EWOULDBLOCK) return true;
    fprintf(stderr,
            "crmd: another crmd serve is serving %s%s: one server per SQLite database while the response "
            "cache is on (--cache-mb 0 on every server lets several share it; PostgreSQL serves many)\n",
            path, c->cache_mb > 0 ? "" : " with its response cache on");
    return false;
}

/* Serves with c until SIGINT or SIGTERM; returns the exit status. */
static int serve_run(const serve_conf_t *c)
{
    /* Before the key poller and the writer start: only http_serve's wait
     * may take a stop signal. */
    http_block_stop_signals();
    store_t *s = cli_open_db(c->db);
    if (s == NULL) return 1;
    bool exclusive;
    if (!claim_database(c, &exclusive)) {
        store_close(s);
        return 1;
    }
    /* Only with the file to itself among servers (the exclusive lock
     * taken) may the commits' syncs leave the writer. */
    api_writer_configure_syncs(exclusive);
    char err[512];
    keyring_t *keys = keyring_open(&c->keys, s, err, sizeof err);
    if (keys == NULL) {
        store_close(s);
        fprintf(stderr, "crmd: %s\n", err);
        return 1;
    }
    /* The key poller goes on with s. */
    if (keyring_start(keys, s) != 0) {
        keyring_free(keys);
        return 1;
    }
    print_keys(c, keys);

    static h2o_iovec_t statics[HTTP_STATIC_MAX];
    size_t nstatic = api_static_bodies(statics, HTTP_STATIC_MAX);
    api_shared_t shared = {.db_url = c->db, .keys = keys, .log_requests = !c->quiet};
    http_config_t cfg = {.host = c->host,
                         .port = c->port,
                         .threads = (int)c->threads,
                         .max_body = API_IMPORT_MAX_BODY,
                         .body_small = API_BODY_JUDGED,
                         .body_check = api_body_check,
                         .body_busy = api_body_busy,
                         .static_bodies = statics,
                         .nstatic = nstatic,
                         .max_connections = (int)c->max_conns,
                         .drain_ms = (int)c->drain_s * 1000,
                         .request_memory = (size_t)c->request_mb << 20,
                         .response_memory = (size_t)c->response_mb << 20,
                         .http2 = c->http2,
                         .thread_init = api_thread_init,
                         .thread_fini = api_thread_fini,
                         .busy = api_thread_busy,
                         .handle = api_handle,
                         .error_body = api_error_body,
                         .tls_cert = c->ops.tls_cert,
                         .tls_key = c->ops.tls_key,
                         .admin_host = c->ops.admin != NULL ? c->ops.admin_host : NULL,
                         .admin_port = c->ops.admin_port,
                         .admin_handle = api_admin_handle,
                         .arg = &shared};
    store_set_log(api_store_log, NULL);
    api_resolve_setup();
    if (api_writer_start(&shared) != 0) {
        keyring_free(keys);
        return 1;
    }
    if (c->wh.send && webhook_sender_start(&c->wh.conf, err, sizeof err) != 0) {
        fprintf(stderr, "crmd: %s\n", err);
        api_writer_stop();
        keyring_free(keys);
        return 1;
    }
    print_webhooks(c);
    fprintf(stderr,
            "crmd: listening on %s://%s:%u with %ld threads, cache %ld MiB, request memory %ld MiB, "
            "response memory %ld MiB, %s HTTP/2 %s\n",
            c->ops.tls_cert ? "https" : "http", c->host, c->port, c->threads, c->cache_mb, c->request_mb,
            c->response_mb, c->ops.tls_cert ? "ALPN" : "cleartext", c->http2 ? "on" : "off");
    print_limits(c);
    if (c->ops.admin != NULL)
        fprintf(stderr, "crmd: admin listener (metrics) on http://%s:%u/metrics\n", c->ops.admin_host,
                c->ops.admin_port);
    int rc = http_serve(&cfg, on_ready);
    notify_send("STOPPING=1");
    /* The workers are done: finish what the writer holds, then close it;
     * then the sender, which gives its leases back. */
    api_writer_stop();
    webhook_sender_stop();
    keyring_free(keys);
    fprintf(stderr, "crmd: stopped\n");
    return rc;
}

int cli_serve(int argc, char **argv)
{
    serve_conf_t c = {0};
    int rc = serve_configure(argc, argv, &c);
    return rc >= 0 ? rc : serve_run(&c);
}
