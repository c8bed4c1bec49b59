/*
 * main.c: the command line.
 *
 *   crmd serve [--listen HOST:PORT] [--db URL] [--threads N] [--quiet]
 *              [--rate-limit RATE[:BURST]|off] [--auth-limit RATE[:BURST]|off]
 *              [--trusted-proxy CIDR[,CIDR...]]... [--max-connections N]
 *              [--cache-mb N] [--write-queue N]
 *              [--request-memory-mb N] [--response-memory-mb N] [--http2]
 *              [--tls-cert FILE --tls-key FILE] [--admin-listen HOST:PORT]
 *              [--cors-origin ORIGIN[,ORIGIN...]]... [--log-format text|json]
 *              [--webhook-allow-private] [--webhook-retry D,...] [--webhook-give-up D]
 *              [--webhook-disable-after D] [--webhook-ca-file FILE] [--webhook-sender on|off]
 *              [--webhook-backlog-max N] [--webhook-log-keep D]
 *              [--trash-retention DURATION]
 *              [--export-limit N[:PER_APP]] [--export-time DURATION]
 *   crmd app create NAME [--db URL]
 *   crmd app list [--db URL]
 *   crmd app disable KEY [--db URL]
 *   crmd app enable KEY [--db URL]
 *   crmd token issue --app KEY [--subject S] [--ttl DURATION] [--db URL]
 *   crmd token revoke JTI [--unrecorded] [--db URL]
 *   crmd migrate [--db URL]
 *   crmd copy --from URL --to URL [--append]
 *   crmd routes
 *
 * Every command that opens the database migrates it first, so each works
 * on a new, empty path. Machine-readable output (exports, tokens) goes to
 * stdout; everything else to stderr.
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "api/api.h"
#include "api/cache.h"
#include "api/cors.h"
#include "api/csvcmd.h"
#include "api/log.h"
#include "api/outbox.h"
#include "api/proxy.h"
#include "api/ratelimit.h"
#include "api/keyring.h"
#include "auth/jwt.h"
#include "config.h"
#include "notify.h"
#include "http/server.h"
#include "model/timestamp.h"
#include "model/uuid.h"
#include "store/copy.h"
#include "store/store.h"
#include "webhook/schedule.h"
#include "webhook/sender.h"
#include "webhook/target.h"
/* CRMD_VERSION, written by the Makefile into the build folder. */
#include "version.h"

#define DEFAULT_DB "sqlite:var/crmd.db"
#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_TTL_S (30 * 86400)
#define MAX_TTL_S (3650LL * 86400)
#define ISSUER "crmd"
#define DEFAULT_RATE_LIMIT "100:200"
#define DEFAULT_AUTH_LIMIT "20:40"
#define DEFAULT_CACHE_MB 16
#define DEFAULT_MEMORY_MB ((long)(HTTP_MEMORY_DEFAULT >> 20))
#define DEFAULT_JWKS_REFRESH_S 300

static const char usage_text[] =
    "usage: crmd COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  serve [--listen HOST:PORT] [--db URL] [--threads N] [--quiet]\n"
    "        [--rate-limit RATE[:BURST]|off] [--auth-limit RATE[:BURST]|off]\n"
    "        [--trusted-proxy CIDR[,CIDR...]]... [--max-connections N] [--cache-mb N]\n"
    "        [--write-queue N] [--request-memory-mb N] [--response-memory-mb N] [--http2]\n"
    "        [--tls-cert FILE --tls-key FILE] [--admin-listen HOST:PORT] [--cors-origin ORIGIN]...\n"
    "        [--log-format text|json] [--webhook-allow-private] [--webhook-retry D[,D...]]\n"
    "        [--webhook-give-up D] [--webhook-disable-after D] [--webhook-ca-file FILE]\n"
    "        [--webhook-sender on|off] [--webhook-backlog-max N] [--webhook-log-keep D]\n"
    "        [--trash-retention DURATION] [--export-limit N[:PER_APP]] [--export-time DURATION]\n"
    "        serve the API (default 127.0.0.1:8080, sqlite:var/crmd.db, one thread per core);\n"
    "        --rate-limit: requests per app (default 100:200, on every address);\n"
    "        --auth-limit: failed authentications per client address (default 20:40);\n"
    "        --trusted-proxy: proxies whose X-Forwarded-For names the client (default none);\n"
    "        --write-queue: writes waiting for the commit before new ones get a 503 (4096);\n"
    "        CRMD_LISTEN, CRMD_DB, CRMD_THREADS, CRMD_RATE_LIMIT, CRMD_AUTH_LIMIT,\n"
    "        request and response memory: what clients may make it hold (64 MiB each);\n"
    "        --http2: HTTP/2, cleartext by prior knowledge, or by ALPN with TLS (off by default);\n"
    "        --tls-cert FILE --tls-key FILE: HTTPS (re-read on SIGHUP); --admin-listen HOST:PORT:\n"
    "        /metrics (Prometheus) there (off by default); --cors-origin ORIGIN: origins whose\n"
    "        pages may call the API (off by default); --log-format text|json (text);\n"
    "        --trash-retention: how long deleted leads stay in the trash (30d; 0: none);\n"
    "        --export-limit: CSV exports running at once, in all and per app (16:4);\n"
    "        --export-time: how long an export may hold its snapshot before it is cut off (10m);\n"
    "        CRMD_TRUSTED_PROXY, CRMD_MAX_CONNECTIONS, CRMD_CACHE_MB, CRMD_WRITE_QUEUE,\n"
    "        CRMD_REQUEST_MEMORY_MB, CRMD_RESPONSE_MEMORY_MB, CRMD_HTTP2=1, CRMD_TLS_CERT,\n"
    "        CRMD_TLS_KEY, CRMD_ADMIN_LISTEN, CRMD_CORS_ORIGIN, CRMD_LOG_FORMAT,\n"
    "        CRMD_TRASH_RETENTION, CRMD_EXPORT_LIMIT and CRMD_EXPORT_TIME set the same\n"
    "  app create NAME [--db URL]\n"
    "        create an app (tenant); prints export lines for BLOCKS_API_KEY and BLOCKS_AUTH_TOKEN\n"
    "  app list [--db URL] | app disable KEY [--db URL] | app enable KEY [--db URL]\n"
    "        list apps; refuse (or again accept) an app's requests, within a second\n"
    "  token issue --app KEY [--subject S] [--ttl DURATION] [--db URL]\n"
    "        print a bearer token for an app; DURATION is a number with s, m, h or d (default 30d)\n"
    "  token revoke JTI [--unrecorded] [--db URL]\n"
    "        refuse the token with that id (its jti claim) from now on, within a second; exits 1\n"
    "        for an id this database never issued (--unrecorded: revoke it anyway, for tokens\n"
    "        issued before crmd recorded them or by an identity provider), 0 for one already revoked\n"
    "  key rotate [--db URL] | key list [--db URL] | key retire KID [--force] [--db URL]\n"
    "        add a signing key (older ones verify their tokens until these expire); list the\n"
    "        keys and their states; refuse a key's tokens from now on\n"
    "  migrate [--db URL]\n"
    "        create or upgrade the database schema\n"
    "  copy --from URL --to URL [--append]\n"
    "        copy every app, signing key, issued and revoked token, lead, follow, webhook and\n"
    "        undelivered event to another database (ids kept), in one transaction; a target\n"
    "        holding data is refused unless --append\n"
    "  backup [--db URL] --to FILE\n"
    "        write a consistent copy of a SQLite database to the new file FILE (0600) while it\n"
    "        serves; for PostgreSQL it says how to use pg_dump\n"
    "  export --app KEY [--query QUERY] [--db URL]\n"
    "        write an app's leads as CSV (the API's columns) on stdout: every one, newest first, or\n"
    "        those GET /leads/'s filters in QUERY keep, in its sort ('stage=qualified&sort=-value');\n"
    "        a bad filter exits 2\n"
    "  import --app KEY [--mode all|valid] [--db URL] FILE\n"
    "        create an app's leads from a CSV file (- for standard input), as POST /leads/import\n"
    "        does but without its size limit, in one transaction: all or nothing, or the valid rows\n"
    "  routes\n"
    "        print the API's routes as a Markdown table (method, path, auth, summary)\n"
    "  version | --version\n"
    "        print crmd's version\n"
    "\n"
    "URL is sqlite:PATH, a path that does not begin like a URL scheme (WORD:), a PostgreSQL\n"
    "URL (postgres://USER@HOST:PORT/DBNAME, postgresql:// too) or a libpq key=value string\n"
    "such as 'host=/run/postgresql dbname=crmd' (one that starts with KEYWORD=); anything else\n"
    "is refused (exit 2). Keep passwords off the command line, which other users can see:\n"
    "set CRMD_DB, or use a ~/.pgpass file or PGPASSWORD.\n"
    "\n"
    "--config FILE (or CRMD_CONFIG=FILE), with any command: read settings from FILE, one\n"
    "'name = value' line each, named as the long options (db = sqlite:/var/lib/crmd/crmd.db);\n"
    "'#' starts a comment line. An option beats its CRMD_ variable, which beats the file.\n"
    "Run 'crmd COMMAND --help' for one command.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "crmd: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage_text);
    return 2;
}

/* An option's value from the environment, else from the --config file. */
static const char *env_or(const char *name, const char *fallback)
{
    return config_env_or(name, fallback);
}

/* The database URL as messages show it: without its password. The
 * buffer is static: use the result before the next call. */
static const char *shown(const char *url)
{
    static char buf[256];
    store_url_redact(url, buf, sizeof buf);
    return buf;
}

/* Refuses a database URL (from option opt, or the environment) of no
 * form crmd accepts, before anything is opened or created: a usage error.
 * Returns -1 to go on, else the exit status (2), the reason printed. */
static int check_db(const char *opt, const char *url)
{
    char err[STORE_OPEN_ERR_MAX];
    if (store_url_check(url, err, sizeof err)) return -1;
    fprintf(stderr, "crmd: %s: %s\n", opt, err);
    return 2;
}

/* Opens and migrates the database; NULL (reason printed) on failure. */
static store_t *open_db(const char *url)
{
    char err[512];
    store_t *s = store_open(url, err, sizeof err);
    if (s == NULL) {
        fprintf(stderr, "crmd: %s\n", err);
        return NULL;
    }
    if (store_migrate(s) != STORE_OK) {
        fprintf(stderr, "crmd: cannot migrate the database %s\n", shown(url));
        store_close(s);
        return NULL;
    }
    return s;
}

/* The key that signs, making and saving one on first use; its seq goes
 * into *seq. NULL (reason printed) on failure. */
static jwt_key_t *signing_key(store_t *s, int64_t *seq)
{
    char err[256];
    jwt_key_t *key = keyring_signing_key(s, seq, err, sizeof err);
    if (key == NULL) fprintf(stderr, "crmd: %s\n", err);
    return key;
}

/* Parses "90s", "5m", "12h", "30d" into seconds; -1 if invalid. */
static int64_t parse_ttl(const char *s)
{
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno != 0 || end == s || n <= 0 || end[0] == '\0' || end[1] != '\0' || s[0] == '-' || s[0] == '+')
        return -1;
    long long mult = end[0] == 's'   ? 1
                     : end[0] == 'm' ? 60
                     : end[0] == 'h' ? 3600
                     : end[0] == 'd' ? 86400
                                     : 0;
    if (mult == 0 || n > MAX_TTL_S / mult) return -1;
    return n * mult;
}

/* Signs a token for the app (its key and id) with key, the signing key
 * of s whose seq is seq, and, before anyone can have it, records its
 * expiry with that key (so that the key is known to verify until then)
 * and the token itself (`crmd token revoke` knows only recorded tokens);
 * names its id on stderr. The caller frees *token. */
static int issue_token(store_t *s, const jwt_key_t *key, int64_t seq, const store_app_t *app,
                       const char *subject, int64_t ttl, char **token)
{
    jwt_claims_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.iss, sizeof c.iss, "%s", ISSUER);
    snprintf(c.sub, sizeof c.sub, "%s", subject);
    snprintf(c.app, sizeof c.app, "%s", app->key);
    char jti[UUID_BUFSZ];
    int64_t now_ms = ts_now_ms();
    if (uuid_v7(now_ms, jti) != 0) return -1;
    snprintf(c.jti, sizeof c.jti, "%s", jti);
    c.iat = now_ms / 1000;
    c.exp = c.iat + ttl;
    if (jwt_sign(key, &c, token) != JWT_OK) {
        fprintf(stderr, "crmd: cannot sign a token\n");
        return -1;
    }
    store_token_t rec = {.jti = jti,
                         .app = app->id,
                         .subject = subject,
                         .issued_at = c.iat * 1000,
                         .expires_at = c.exp * 1000};
    const char *unsaved = store_key_update(s, seq, c.exp, 0) != STORE_OK ? "the token's expiry with its key"
                          : store_token_record(s, &rec) != STORE_OK      ? "the token in the database"
                                                                         : NULL;
    if (unsaved != NULL) {
        fprintf(stderr, "crmd: cannot record %s\n", unsaved);
        free(*token);
        *token = NULL;
        return -1;
    }
    /* The id is what `crmd token revoke` takes; stdout stays the token. */
    fprintf(stderr, "crmd: token jti=%s expires in %" PRId64 "s\n", jti, ttl);
    return 0;
}

/* Prints a command's help: on stdout when asked for (exit status 0), on
 * stderr after a usage error (2). Returns that status. */
static int help_exit(const char *help, bool asked)
{
    fputs(help, asked ? stdout : stderr);
    return asked ? 0 : 2;
}

/* For a command line that names no known verb: its help, asked for or not. */
static int verb_help(int argc, char **argv, const char *help)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return help_exit(help, true);
    return help_exit(help, false);
}

/* One option of a command: where its value goes. A flag (no argument)
 * stores "" there. An option with a list (of list_size bytes, "" at
 * first) may be repeated: its values are joined there with commas, and
 * value points to it. */
typedef struct cli_opt {
    const char *name;
    const char **value;
    bool flag;
    char *list;
    size_t list_size;
} cli_opt_t;

#define CLI_OPTS_MAX 48
/* An option's index is what getopt_long returns for it: below '?' and 'h'. */
_Static_assert(CLI_OPTS_MAX < '?', "option indexes collide with getopt_long's own returns");

/* Parses argv (argv[0] is the command) against opts, a list ended by a
 * NULL name, and --help; then wants exactly npos positional arguments,
 * each non-empty and at most 200 bytes, the first at argv[*first]. Returns
 * -1 to go on, or the exit status (0 after --help, 2 on a usage error),
 * the help printed. */
static int parse_opts(int argc, char **argv, const char *help, const cli_opt_t *opts, int npos, int *first)
{
    struct option lopts[CLI_OPTS_MAX + 2];
    int n = 0;
    for (; opts[n].name != NULL; n++) {
        assert(n < CLI_OPTS_MAX);
        lopts[n] = (struct option){opts[n].name, opts[n].flag ? no_argument : required_argument, NULL, n};
    }
    lopts[n] = (struct option){"help", no_argument, NULL, 'h'};
    lopts[n + 1] = (struct option){NULL, 0, NULL, 0};
    int c;
    while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        if (c >= n) return help_exit(help, c == 'h');
        *opts[c].value = opts[c].flag ? "" : optarg;
        if (opts[c].list == NULL) continue;
        size_t len = strlen(opts[c].list);
        int w = snprintf(opts[c].list + len, opts[c].list_size - len, "%s%s", len ? "," : "", optarg);
        if (w < 0 || (size_t)w >= opts[c].list_size - len)
            return usage_error("the values of --%s are too long", opts[c].name);
        *opts[c].value = opts[c].list;
    }
    if (argc - optind != npos) return help_exit(help, false);
    for (int i = optind; i < argc; i++)
        if (argv[i][0] == '\0' || strlen(argv[i]) > 200) return help_exit(help, false);
    *first = optind;
    return -1;
}

/* Reads s as a decimal number from min to max; false if it is not one. */
static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || v < min || v > max) return false;
    *out = v;
    return true;
}

/* --- serve ---------------------------------------------------------------- */

static void on_ready(void *arg)
{
    const api_shared_t *shared = arg;
    fprintf(stderr, "crmd: ready (database %s)\n", shown(shared->db_url));
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
    long threads, cache_mb, max_conns, write_queue, request_mb, response_mb;
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
        int64_t secs = strcmp(s, "0") == 0 ? 0 : parse_ttl(s);
        if (secs < 0)
            return usage_error(
                "--trash-retention wants 0 or a number with s, m, h or d (up to 3650d), not '%s'", s);
        ms = secs * 1000;
    }
    api_writer_configure_trash(ms);
    return -1;
}

_Static_assert(API_EXPORT_MAX_TOTAL == 1024, "--export-limit's message names the bound");

/* --export-limit N[:PER_APP] (PER_APP defaults to N, and is at most N) and
 * --export-time DURATION. Returns -1 to go on, or the exit status (usage
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
        bool ok = strlen(s) < sizeof buf && parse_long(buf, 1, API_EXPORT_MAX_TOTAL, &total);
        per_app = total;
        if (ok && colon != NULL) ok = parse_long(colon + 1, 1, total, &per_app);
        if (!ok)
            return usage_error("--export-limit wants N[:PER_APP], N from 1 to 1024 and PER_APP from 1 to N, "
                               "not '%s'",
                               s);
    }
    int64_t ms = API_EXPORT_TIME_DEFAULT_MS;
    if (c->export_time != NULL) {
        int64_t secs = parse_ttl(c->export_time);
        if (secs < 0 || secs > 86400)
            return usage_error("--export-time wants a number with s, m, h or d (up to 1d), not '%s'",
                               c->export_time);
        ms = secs * 1000;
    }
    api_export_configure((int)total, (int)per_app, ms);
    return -1;
}

/* The operations options: the log's form, the admin listener, TLS, CORS.
 * Returns -1 to go on, or the exit status (usage printed). */
static int serve_operations(serve_conf_t *c)
{
    const char *f = c->ops.log_format;
    if (f != NULL && strcmp(f, "text") != 0 && strcmp(f, "json") != 0)
        return usage_error("--log-format wants text or json, not '%s'", f);
    api_log_configure(f != NULL && strcmp(f, "json") == 0 ? API_LOG_JSON : API_LOG_TEXT);
    if ((c->ops.tls_cert == NULL) != (c->ops.tls_key == NULL))
        return usage_error("%s", "--tls-cert and --tls-key go together");
    if (c->ops.admin != NULL) {
        if (parse_listen(c->ops.admin, c->ops.admin_host, sizeof c->ops.admin_host, &c->ops.admin_port) != 0)
            return usage_error("--admin-listen wants HOST:PORT, not '%s'", c->ops.admin);
        api_metrics_configure();
    }
    char err[160];
    if (cors_allow(c->ops.cors, err, sizeof err) != 0)
        return usage_error("--cors-origin wants origins such as https://app.example.com, or *: %s", err);
    return -1;
}

/* The options of serve that name an external identity provider. Returns
 * -1 to go on, or the exit status (usage printed). */
static int serve_idp(serve_conf_t *c, const char *refresh_s)
{
    keyring_conf_t *k = &c->keys;
    if (k->jwks_file != NULL && k->jwks_url != NULL)
        return usage_error("%s", "--jwks-file and --jwks-url exclude each other");
    long refresh = DEFAULT_JWKS_REFRESH_S;
    if (refresh_s != NULL && !parse_long(refresh_s, 1, 86400, &refresh))
        return usage_error("--jwks-refresh wants a number of seconds from 1 to 86400, not '%s'", refresh_s);
    k->refresh_s = (int)refresh;
    if (k->jwks_url != NULL && strncmp(k->jwks_url, "http://", 7) != 0 &&
        strncmp(k->jwks_url, "https://", 8) != 0)
        return usage_error("--jwks-url wants an http:// or https:// URL, not '%s'", k->jwks_url);
    const char *claim = k->rules.app_claim;
    if (claim[0] == '\0' || strlen(claim) > 64)
        return usage_error("--app-claim wants a claim name of 1 to 64 bytes, not '%s'", claim);
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
        return usage_error("CRMD_WEBHOOK_ALLOW_PRIVATE wants 1 or 0, not '%s'", c->wh.allow_private);
    webhook_allow_private(allow);
    const char *retry = c->wh.retry != NULL ? c->wh.retry : WEBHOOK_RETRY_DEFAULT;
    if (!webhook_schedule_parse(retry, &w->schedule))
        return usage_error("--webhook-retry wants durations such as 10s,30s,2m (each up to 30d), not '%s'",
                           retry);
    w->schedule.give_up_ms = WEBHOOK_GIVE_UP_DEFAULT_MS;
    if (c->wh.give_up != NULL && !webhook_duration_parse(c->wh.give_up, &w->schedule.give_up_ms))
        return usage_error("--webhook-give-up wants a duration such as 24h (up to 30d), not '%s'",
                           c->wh.give_up);
    w->log_keep_ms = WEBHOOK_LOG_KEEP_DEFAULT_MS;
    if (c->wh.log_keep != NULL && !webhook_duration_parse(c->wh.log_keep, &w->log_keep_ms))
        return usage_error("--webhook-log-keep wants a duration such as 7d (up to 30d), not '%s'",
                           c->wh.log_keep);
    w->disable_after_ms = WEBHOOK_DISABLE_AFTER_DEFAULT_MS;
    if (c->wh.disable_after != NULL && !webhook_duration_parse(c->wh.disable_after, &w->disable_after_ms))
        return usage_error("--webhook-disable-after wants a duration such as 3d (up to 30d), not '%s'",
                           c->wh.disable_after);
    const char *sender = c->wh.sender != NULL ? c->wh.sender : "on";
    if (strcmp(sender, "on") != 0 && strcmp(sender, "off") != 0)
        return usage_error("--webhook-sender wants on or off, not '%s'", sender);
    c->wh.send = strcmp(sender, "on") == 0;
    long backlog = API_OUTBOX_BACKLOG_DEFAULT;
    if (c->wh.backlog != NULL && !parse_long(c->wh.backlog, 1, API_OUTBOX_BACKLOG_MAX, &backlog))
        return usage_error("--webhook-backlog-max wants a whole number from 1 to 10000000, not '%s'",
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
    if (request_s != NULL && !parse_long(request_s, 1, 65536, &c->request_mb))
        return usage_error("--request-memory-mb wants a number of MiB from 1 to 65536, not '%s'", request_s);
    if (response_s != NULL && !parse_long(response_s, 1, 65536, &c->response_mb))
        return usage_error("--response-memory-mb wants a number of MiB from 1 to 65536, not '%s'",
                           response_s);
    /* The flag stores "" and CRMD_HTTP2 must say 1 or 0. */
    if (http2_s != NULL && strcmp(http2_s, "") != 0 && strcmp(http2_s, "1") != 0 && strcmp(http2_s, "0") != 0)
        return usage_error("CRMD_HTTP2 wants 1 or 0, not '%s'", http2_s);
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
    return usage_error("%s", msg);
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
        return usage_error("--trusted-proxy wants CIDR ranges (10.0.0.0/8, ::1/128): %s", err);
    return -1;
}

/* The webhook options' environment variables, which their flags override. */
static void webhook_env(serve_conf_t *c)
{
    c->wh.allow_private = env_or("CRMD_WEBHOOK_ALLOW_PRIVATE", NULL);
    c->wh.retry = env_or("CRMD_WEBHOOK_RETRY", NULL);
    c->wh.give_up = env_or("CRMD_WEBHOOK_GIVE_UP", NULL);
    c->wh.disable_after = env_or("CRMD_WEBHOOK_DISABLE_AFTER", NULL);
    c->wh.ca_file = env_or("CRMD_WEBHOOK_CA_FILE", NULL);
    c->wh.sender = env_or("CRMD_WEBHOOK_SENDER", NULL);
    c->wh.backlog = env_or("CRMD_WEBHOOK_BACKLOG_MAX", NULL);
    c->wh.log_keep = env_or("CRMD_WEBHOOK_LOG_KEEP", NULL);
}

/* Reads the sizes serve runs with (threads, the response cache, the
 * connection cap, the writer's queue) and sets them up. Returns -1 to go
 * on, or the exit status (usage printed). */
static int serve_sizes(serve_conf_t *c, const char *threads_s, const char *cache_s, const char *maxconn_s,
                       const char *queue_s)
{
    c->threads = sysconf(_SC_NPROCESSORS_ONLN);
    if (threads_s != NULL && !parse_long(threads_s, 1, 256, &c->threads))
        return usage_error("--threads wants a number from 1 to 256, not '%s'", threads_s);
    if (c->threads < 1) c->threads = 1;
    /* The response cache sees only this process's writes: it is for an
     * embedded SQLite database, never for a shared PostgreSQL one. */
    c->cache_mb = DEFAULT_CACHE_MB;
    if (cache_s != NULL && !parse_long(cache_s, 0, 65536, &c->cache_mb))
        return usage_error("--cache-mb wants a number of MiB from 0 to 65536, not '%s'", cache_s);
    if (store_url_is_shared(c->db)) c->cache_mb = 0;
    cache_configure((size_t)c->cache_mb << 20);
    c->max_conns = http_max_connections_default();
    if (maxconn_s != NULL && !parse_long(maxconn_s, 1, 1000000, &c->max_conns))
        return usage_error("--max-connections wants a number from 1 to 1000000, not '%s'", maxconn_s);
    c->write_queue = API_WRITE_QUEUE_DEFAULT;
    if (queue_s != NULL && !parse_long(queue_s, 1, 1000000, &c->write_queue))
        return usage_error("--write-queue wants a number of writes from 1 to 1000000, not '%s'", queue_s);
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
        "                  [--export-limit N[:PER_APP]] [--export-time DURATION]\n";
    static char proxy_list[1024];
    const char *listen_at = env_or("CRMD_LISTEN", DEFAULT_LISTEN);
    const char *threads_s = env_or("CRMD_THREADS", NULL), *maxconn_s = env_or("CRMD_MAX_CONNECTIONS", NULL);
    const char *cache_s = env_or("CRMD_CACHE_MB", NULL), *queue_s = env_or("CRMD_WRITE_QUEUE", NULL);
    const char *rate_s = env_or("CRMD_RATE_LIMIT", NULL), *auth_s = env_or("CRMD_AUTH_LIMIT", NULL);
    const char *proxies = env_or("CRMD_TRUSTED_PROXY", NULL), *quiet = env_or("CRMD_QUIET", NULL);
    const char *request_s = env_or("CRMD_REQUEST_MEMORY_MB", NULL);
    const char *response_s = env_or("CRMD_RESPONSE_MEMORY_MB", NULL);
    const char *http2_s = env_or("CRMD_HTTP2", NULL), *refresh_s = env_or("CRMD_JWKS_REFRESH", NULL);
    c->trash_retention = env_or("CRMD_TRASH_RETENTION", NULL);
    c->export_limit = env_or("CRMD_EXPORT_LIMIT", NULL);
    c->export_time = env_or("CRMD_EXPORT_TIME", NULL);
    c->db = env_or("CRMD_DB", DEFAULT_DB);
    c->keys = (keyring_conf_t){.jwks_file = env_or("CRMD_JWKS_FILE", NULL),
                               .jwks_url = env_or("CRMD_JWKS_URL", NULL),
                               .rules = {.app_claim = env_or("CRMD_APP_CLAIM", "app"),
                                         .issuer = env_or("CRMD_JWT_ISSUER", NULL),
                                         .audience = env_or("CRMD_JWT_AUDIENCE", NULL)}};
    c->ops.log_format = env_or("CRMD_LOG_FORMAT", NULL);
    c->ops.cors = env_or("CRMD_CORS_ORIGIN", NULL);
    c->ops.admin = env_or("CRMD_ADMIN_LISTEN", NULL);
    c->ops.tls_cert = env_or("CRMD_TLS_CERT", NULL);
    c->ops.tls_key = env_or("CRMD_TLS_KEY", NULL);
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
        {"webhook-allow-private", &c->wh.allow_private, true},
        {"webhook-retry", &c->wh.retry},
        {"webhook-give-up", &c->wh.give_up},
        {"webhook-disable-after", &c->wh.disable_after},
        {"webhook-ca-file", &c->wh.ca_file},
        {"webhook-sender", &c->wh.sender},
        {"webhook-backlog-max", &c->wh.backlog},
        {"webhook-log-keep", &c->wh.log_keep},
        {NULL}};
    int first, rc = parse_opts(argc, argv, help, opts, 0, &first);
    if (rc >= 0 || (rc = check_db("--db", c->db)) >= 0) return rc;
    c->quiet = quiet != NULL && strcmp(quiet, "0") != 0;
    if ((rc = serve_memory(c, request_s, response_s, http2_s)) >= 0) return rc;
    if ((rc = serve_operations(c)) >= 0) return rc;
    if ((rc = serve_idp(c, refresh_s)) >= 0) return rc;
    if ((rc = serve_trash(c)) >= 0) return rc;
    if ((rc = serve_exports(c)) >= 0) return rc;
    if ((rc = serve_webhooks(c)) >= 0) return rc;
    if (parse_listen(listen_at, c->host, sizeof c->host, &c->port) != 0)
        return usage_error("--listen wants HOST:PORT, not '%s'", listen_at);
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
    if (n > own)
        fprintf(stderr, "; %zu of the identity provider's from %s (app claim '%s'%s%s%s%s)", n - own,
                k->jwks_file != NULL ? k->jwks_file : k->jwks_url, k->rules.app_claim,
                k->rules.issuer ? ", issuer " : "", k->rules.issuer ? k->rules.issuer : "",
                k->rules.audience ? ", audience " : "", k->rules.audience ? k->rules.audience : "");
    fputc('\n', stderr);
    keyring_release(snap);
}

/* Serves with c until SIGINT or SIGTERM; returns the exit status. */
static int serve_run(const serve_conf_t *c)
{
    /* Before the key poller and the writer start: only http_serve's wait
     * may take a stop signal. */
    http_block_stop_signals();
    store_t *s = open_db(c->db);
    if (s == NULL) return 1;
    char err[512];
    keyring_t *keys = keyring_open(&c->keys, s, err, sizeof err);
    store_close(s);
    if (keys == NULL) {
        fprintf(stderr, "crmd: %s\n", err);
        return 1;
    }
    if (keyring_start(keys) != 0) {
        keyring_free(keys);
        return 1;
    }
    print_keys(c, keys);

    api_shared_t shared = {.db_url = c->db, .keys = keys, .log_requests = !c->quiet};
    http_config_t cfg = {.host = c->host,
                         .port = c->port,
                         .threads = (int)c->threads,
                         .max_body = API_IMPORT_MAX_BODY,
                         .body_small = API_MAX_BODY,
                         .body_check = api_body_check,
                         .max_connections = (int)c->max_conns,
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

static int cmd_serve(int argc, char **argv)
{
    serve_conf_t c = {0};
    int rc = serve_configure(argc, argv, &c);
    return rc >= 0 ? rc : serve_run(&c);
}

/* --- app, token, migrate ------------------------------------------------------ */

/* The body of a small command: runs with the database open (s, from the
 * URL db) and the command's positional arguments; returns the exit status. */
typedef int (*simple_fn)(store_t *s, const char *db, char **args, const char *verb);

/* Runs a small command: [--db URL] [--help] and exactly npos positional
 * arguments, then fn with the database opened (and migrated) and closed
 * after. Returns the exit status (0 after --help, 2 on a usage error, 1 if
 * the database cannot be opened, else fn's). */
static int run_simple(int argc, char **argv, const char *help, int npos, simple_fn fn, const char *verb)
{
    const char *db = env_or("CRMD_DB", DEFAULT_DB);
    const cli_opt_t opts[] = {{"db", &db}, {NULL}};
    int first, rc = parse_opts(argc, argv, help, opts, npos, &first);
    if (rc >= 0 || (rc = check_db("--db", db)) >= 0) return rc;
    store_t *s = open_db(db);
    if (s == NULL) return 1;
    rc = fn(s, db, argv + first, verb);
    store_close(s);
    return rc;
}

/* Makes a new app key, "pk_live_" and 32 hex digits, into key (64 bytes). */
static int new_app_key(char key[64])
{
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1) return -1;
    int n = snprintf(key, 64, "pk_live_");
    for (size_t i = 0; i < sizeof rnd; i++)
        n += snprintf(key + n, 64 - (size_t)n, "%02x", rnd[i]);
    return 0;
}

static int app_create(store_t *s, const char *name)
{
    int64_t seq;
    jwt_key_t *key = signing_key(s, &seq);
    char app_key[64];
    if (key == NULL || new_app_key(app_key) != 0) {
        jwt_key_free(key);
        return 1;
    }
    int rc = 1;
    store_app_t app;
    char *token = NULL;
    if (store_app_create(s, app_key, name, ts_now_ms(), &app) != STORE_OK) {
        fprintf(stderr, "crmd: cannot create the app\n");
    } else if (issue_token(s, key, seq, &app, "admin", DEFAULT_TTL_S, &token) != 0) {
        fprintf(stderr, "crmd: the app '%s' was created without a token: crmd token issue --app %s\n", name,
                app_key);
    } else {
        printf("export BLOCKS_API_KEY=%s\nexport BLOCKS_AUTH_TOKEN=%s\n", app_key, token);
        fprintf(stderr, "crmd: created app '%s'\n", name);
        rc = 0;
    }
    free(token);
    jwt_key_free(key);
    return rc;
}

static void print_app(void *ctx, const store_app_t *app, int64_t leads)
{
    (void)ctx;
    char when[TS_BUFSZ];
    ts_format(app->created_at, when);
    printf("%s\t%s\t%s\t%" PRId64 "\t%s\n", app->key, app->disabled ? "disabled" : "enabled", when, leads,
           app->name);
}

/* Lists the apps (key NULL), or disables or enables one (verb). */
static int app_admin(store_t *s, const char *db, const char *verb, const char *key)
{
    int rc;
    if (key == NULL) {
        printf("key\tstate\tcreated_at\tleads\tname\n");
        rc = store_app_list(s, print_app, NULL);
    } else {
        rc = store_app_set_disabled(s, key, strcmp(verb, "disable") == 0);
        if (rc == STORE_NOT_FOUND)
            fprintf(stderr, "crmd: no app with key '%s' in %s\n", key, shown(db));
        else if (rc == STORE_OK)
            fprintf(stderr, "crmd: app %s %sd; running servers follow within a second\n", key, verb);
    }
    if (rc != STORE_OK && rc != STORE_NOT_FOUND)
        fprintf(stderr, "crmd: cannot %s apps in %s\n", verb, shown(db));
    return rc == STORE_OK ? 0 : 1;
}

/* app create, list, disable and enable (verb), after their options. */
static int app_run(store_t *s, const char *db, char **args, const char *verb)
{
    if (strcmp(verb, "create") == 0) return app_create(s, args[0]);
    return app_admin(s, db, verb, strcmp(verb, "list") == 0 ? NULL : args[0]);
}

static int cmd_app(int argc, char **argv)
{
    static const char help[] = "usage: crmd app create NAME [--db URL]\n"
                               "       crmd app list [--db URL]\n"
                               "       crmd app disable KEY [--db URL]\n"
                               "       crmd app enable KEY [--db URL]\n";
    const char *verb = argc >= 2 ? argv[1] : "";
    if (strcmp(verb, "create") != 0 && strcmp(verb, "list") != 0 && strcmp(verb, "disable") != 0 &&
        strcmp(verb, "enable") != 0)
        return verb_help(argc, argv, help);
    int npos = strcmp(verb, "list") == 0 ? 0 : 1;
    return run_simple(argc - 1, argv + 1, help, npos, app_run, verb);
}

/* Revokes token jti in the database db; unrecorded also takes a token
 * this database has no record of (one issued before records were kept). */
static int token_revoke(const char *db, const char *jti, bool unrecorded)
{
    store_t *s = open_db(db);
    if (s == NULL) return 1;
    store_rc_t rc = store_token_revoke(s, jti, ts_now_ms(), unrecorded);
    store_close(s);
    switch (rc) {
    case STORE_OK:
        fprintf(stderr, "crmd: token %s revoked; running servers refuse it within a second\n", jti);
        return 0;
    case STORE_CONFLICT:
        fprintf(stderr, "crmd: token %s was already revoked\n", jti);
        return 0;
    case STORE_NOT_FOUND:
        fprintf(stderr,
                "crmd: no token with jti %s was issued by %s; nothing was revoked (a token issued before "
                "crmd recorded the tokens it issues, or by an identity provider, is revoked with "
                "--unrecorded)\n",
                jti, shown(db));
        return 1;
    default:
        fprintf(stderr, "crmd: cannot record the revocation in %s\n", shown(db));
        return 1;
    }
}

static int cmd_token_revoke(int argc, char **argv)
{
    static const char help[] = "usage: crmd token revoke JTI [--unrecorded] [--db URL]\n";
    const char *db = env_or("CRMD_DB", DEFAULT_DB), *unrecorded = NULL;
    const cli_opt_t opts[] = {{"db", &db}, {"unrecorded", &unrecorded, true}, {NULL}};
    int first, rc = parse_opts(argc, argv, help, opts, 1, &first);
    if (rc >= 0 || (rc = check_db("--db", db)) >= 0) return rc;
    return token_revoke(db, argv[first], unrecorded != NULL);
}

/* Prints a token for the app with key app in the database db. */
static int token_issue(const char *db, const char *app, const char *subject, int64_t ttl)
{
    store_t *s = open_db(db);
    if (s == NULL) return 1;
    int rc = 1;
    store_app_t found;
    int frc = store_app_find(s, app, &found, NULL);
    if (frc == STORE_NOT_FOUND) {
        fprintf(stderr, "crmd: no app with key '%s' in %s\n", app, shown(db));
    } else if (frc != STORE_OK) {
        fprintf(stderr, "crmd: cannot read apps from %s\n", shown(db));
    } else {
        char *token = NULL;
        int64_t seq;
        jwt_key_t *key = signing_key(s, &seq);
        if (key != NULL && issue_token(s, key, seq, &found, subject, ttl, &token) == 0) {
            printf("%s\n", token);
            rc = 0;
        }
        free(token);
        jwt_key_free(key);
    }
    store_close(s);
    return rc;
}

static int cmd_token(int argc, char **argv)
{
    static const char help[] = "usage: crmd token issue --app KEY [--subject S] [--ttl DURATION] [--db URL]\n"
                               "       crmd token revoke JTI [--unrecorded] [--db URL]\n";
    if (argc >= 2 && strcmp(argv[1], "revoke") == 0) return cmd_token_revoke(argc - 1, argv + 1);
    if (argc < 2 || strcmp(argv[1], "issue") != 0) return verb_help(argc, argv, help);
    const char *db = env_or("CRMD_DB", DEFAULT_DB), *app = NULL, *subject = "cli", *ttl_s = NULL;
    const cli_opt_t opts[] = {{"db", &db}, {"app", &app}, {"subject", &subject}, {"ttl", &ttl_s}, {NULL}};
    int first, rc = parse_opts(argc - 1, argv + 1, help, opts, 0, &first);
    if (rc >= 0) return rc;
    if (app == NULL) return help_exit(help, false);
    if ((rc = check_db("--db", db)) >= 0) return rc;
    int64_t ttl = DEFAULT_TTL_S;
    if (ttl_s != NULL && (ttl = parse_ttl(ttl_s)) < 0)
        return usage_error("--ttl wants a number with s, m, h or d (up to 3650d), not '%s'", ttl_s);
    if (strlen(subject) >= JWT_CLAIM_MAX) return usage_error("--subject is too long: '%s'", subject);
    return token_issue(db, app, subject, ttl);
}

static int migrated(store_t *s, const char *db, char **args, const char *verb)
{
    (void)s;
    (void)args;
    (void)verb;
    fprintf(stderr, "crmd: %s is up to date\n", shown(db));
    return 0;
}

static int cmd_migrate(int argc, char **argv)
{
    static const char help[] = "usage: crmd migrate [--db URL]\n";
    return run_simple(argc, argv, help, 0, migrated, NULL);
}

/* --- key ------------------------------------------------------------------------ */

/* A time of a key for `key list`: ISO 8601, or what stands in for none. */
static const char *key_time(int64_t ms, const char *none, char buf[TS_BUFSZ])
{
    if (ms <= 0) return none;
    ts_format(ms, buf);
    return buf;
}

static int key_list(store_t *s, const char *db)
{
    keyring_list_t l;
    if (keyring_read(s, ts_now_ms() / 1000, KEYRING_KIDS, &l) != STORE_OK) {
        fprintf(stderr, "crmd: cannot read the signing keys from %s\n", shown(db));
        return 1;
    }
    printf("kid\tstate\tcreated_at\tsigned_until\tretired_at\n");
    for (size_t i = 0; i < l.n; i++) {
        const keyring_entry_t *e = &l.v[i];
        char created[TS_BUFSZ], until[TS_BUFSZ], retired[TS_BUFSZ];
        const char *u = e->signed_until == STORE_KEY_UNTRACKED ? "untracked"
                                                               : key_time(e->signed_until * 1000, "-", until);
        printf("%s\t%s\t%s\t%s\t%s\n", e->kid[0] ? e->kid : "(invalid)", keyring_state_name(e->state),
               key_time(e->created_at, "-", created), u, key_time(e->retired_at, "-", retired));
    }
    keyring_list_free(&l);
    return 0;
}

/* Retires the key kid: refused for the signing key, and, without force,
 * for a key some token it signed may still be valid for. */
static int key_retire(store_t *s, const char *db, const char *kid, bool force)
{
    keyring_list_t l;
    if (keyring_read(s, ts_now_ms() / 1000, KEYRING_KIDS, &l) != STORE_OK) {
        fprintf(stderr, "crmd: cannot read the signing keys from %s\n", shown(db));
        return 1;
    }
    const keyring_entry_t *e = NULL;
    for (size_t i = 0; i < l.n && e == NULL; i++)
        if (strcmp(l.v[i].kid, kid) == 0) e = &l.v[i];
    int rc = 1;
    if (e == NULL)
        fprintf(stderr, "crmd: no key with kid '%s' in %s (see crmd key list)\n", kid, shown(db));
    else if (e->state == KEY_SIGNING)
        fprintf(stderr, "crmd: key %s signs new tokens: run crmd key rotate first\n", kid);
    else if (e->state == KEY_VERIFYING && !force)
        fprintf(stderr,
                "crmd: key %s still verifies tokens that have not expired (%s); retiring it refuses them "
                "at once: add --force to do so\n",
                kid,
                e->signed_until == STORE_KEY_UNTRACKED ? "it signed tokens before expiries were recorded"
                                                       : "see signed_until in crmd key list");
    else if (store_key_update(s, e->seq, 0, ts_now_ms()) != STORE_OK)
        fprintf(stderr, "crmd: cannot retire key %s in %s\n", kid, shown(db));
    else
        rc = 0;
    if (rc == 0)
        fprintf(stderr, "crmd: key %s retired; running servers refuse its tokens within a second\n", kid);
    keyring_list_free(&l);
    return rc;
}

/* key rotate and list (verb), after their options. */
static int key_run(store_t *s, const char *db, char **args, const char *verb)
{
    (void)args;
    if (strcmp(verb, "list") == 0) return key_list(s, db);
    char kid[JWT_KID_MAX], err[256] = "";
    if (keyring_rotate(s, kid, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "crmd: %s\n", err[0] ? err : "cannot add a signing key");
        return 1;
    }
    printf("%s\n", kid);
    fprintf(stderr,
            "crmd: key %s signs new tokens from now on; older keys verify their tokens until they "
            "expire; running servers follow within a second\n",
            kid);
    return 0;
}

static int cmd_key(int argc, char **argv)
{
    static const char help[] = "usage: crmd key rotate [--db URL]\n"
                               "       crmd key list [--db URL]\n"
                               "       crmd key retire KID [--force] [--db URL]\n";
    const char *verb = argc >= 2 ? argv[1] : "";
    if (strcmp(verb, "rotate") == 0 || strcmp(verb, "list") == 0)
        return run_simple(argc - 1, argv + 1, help, 0, key_run, verb);
    if (strcmp(verb, "retire") != 0) return verb_help(argc, argv, help);
    const char *db = env_or("CRMD_DB", DEFAULT_DB), *force = NULL;
    const cli_opt_t opts[] = {{"db", &db}, {"force", &force, true}, {NULL}};
    int first, rc = parse_opts(argc - 1, argv + 1, help, opts, 1, &first);
    if (rc >= 0) return rc;
    store_t *s = open_db(db);
    if (s == NULL) return 1;
    rc = key_retire(s, db, argv[1 + first], force != NULL);
    store_close(s);
    return rc;
}

/* --- copy ---------------------------------------------------------------------- */

static int cmd_copy(int argc, char **argv)
{
    static const char help[] = "usage: crmd copy --from URL --to URL [--append]\n";
    const char *from = NULL, *to = NULL, *append = NULL;
    const cli_opt_t opts[] = {{"from", &from}, {"to", &to}, {"append", &append, true}, {NULL}};
    int first, rc = parse_opts(argc, argv, help, opts, 0, &first);
    if (rc >= 0) return rc;
    if (from == NULL || to == NULL) return help_exit(help, false);
    if ((rc = check_db("--from", from)) >= 0 || (rc = check_db("--to", to)) >= 0) return rc;
    return store_copy(from, to, append != NULL, stdout, stderr) == STORE_OK ? 0 : 1;
}

/* --- backup -------------------------------------------------------------------- */

static int cmd_backup(int argc, char **argv)
{
    static const char help[] = "usage: crmd backup [--db URL] --to FILE\n";
    const char *db = env_or("CRMD_DB", DEFAULT_DB), *to = NULL;
    const cli_opt_t opts[] = {{"db", &db}, {"to", &to}, {NULL}};
    int first, rc = parse_opts(argc, argv, help, opts, 0, &first);
    if (rc >= 0) return rc;
    if (to == NULL || to[0] == '\0') return help_exit(help, false);
    if ((rc = check_db("--db", db)) >= 0) return rc;
    /* Not open_db: a backup never creates or migrates its source. */
    char err[STORE_OPEN_ERR_MAX], msg[1024] = "";
    store_t *s = store_open_existing(db, err, sizeof err);
    if (s == NULL) {
        fprintf(stderr, "crmd: %s\n", err);
        return 1;
    }
    rc = store_backup(s, to, msg, sizeof msg);
    store_close(s);
    fprintf(stderr, "crmd: backup of %s: %s\n", shown(db), msg);
    return rc == STORE_OK ? 0 : 1;
}

/* --- export, import ---------------------------------------------------------------- */

/* Opens (and migrates) db and finds the app with key; NULL (reason
 * printed) when either fails. */
static store_t *open_app(const char *db, const char *key, store_app_t *app)
{
    store_t *s = open_db(db);
    if (s == NULL) return NULL;
    store_rc_t rc = store_app_find(s, key, app, NULL);
    if (rc == STORE_OK) return s;
    fprintf(stderr, "crmd: %s\n", rc == STORE_NOT_FOUND ? "no app has that key" : "cannot read the apps");
    store_close(s);
    return NULL;
}

static int cmd_export(int argc, char **argv)
{
    static const char help[] =
        "usage: crmd export --app KEY [--query QUERY] [--db URL]\n"
        "  write the app's leads as CSV on stdout: every one, newest first, or those GET /leads/'s\n"
        "  filters in QUERY keep, in its sort ('stage=qualified&value_min=1000&sort=-value')\n";
    const char *db = env_or("CRMD_DB", DEFAULT_DB), *key = NULL, *query = NULL;
    const cli_opt_t opts[] = {{"db", &db}, {"app", &key}, {"query", &query}, {NULL}};
    int first, rc = parse_opts(argc, argv, help, opts, 0, &first);
    if (rc >= 0) return rc;
    if (key == NULL) return help_exit(help, false);
    if ((rc = check_db("--db", db)) >= 0) return rc;
    csvcmd_query_t *q;
    if ((rc = csvcmd_query_parse(query, &q, stderr)) != 0) return rc;
    store_app_t app;
    store_t *s = open_app(db, key, &app);
    rc = s != NULL ? csvcmd_export(s, app.id, q, stdout, stderr) : 1;
    store_close(s);
    csvcmd_query_free(q);
    return rc;
}

/* Reads all of path ("-": standard input) into *buf (malloc'd); false
 * (reason printed) on failure. */
static bool read_all(const char *path, char **buf, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "crmd: import: cannot open %s: %s\n", path, strerror(errno));
        return false;
    }
    size_t cap = 1 << 16, n = 0, got;
    char *b = malloc(cap);
    while (b != NULL && (got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        char *grown = n == cap ? realloc(b, cap *= 2) : b;
        if (grown == NULL) free(b);
        b = grown;
    }
    bool ok = b != NULL && !ferror(f);
    if (!ok) fprintf(stderr, "crmd: import: cannot read %s\n", path);
    if (f != stdin) fclose(f);
    if (!ok) free(b);
    *buf = ok ? b : NULL;
    *len = ok ? n : 0;
    return ok;
}

static int cmd_import(int argc, char **argv)
{
    static const char help[] =
        "usage: crmd import --app KEY [--mode all|valid] [--db URL] FILE\n"
        "  create the app's leads from a CSV file (- reads standard input) in one transaction:\n"
        "  all of it or nothing (--mode all, the default), or its valid rows (--mode valid)\n";
    const char *db = env_or("CRMD_DB", DEFAULT_DB), *key = NULL, *mode = "all";
    const cli_opt_t opts[] = {{"db", &db}, {"app", &key}, {"mode", &mode}, {NULL}};
    int first, rc = parse_opts(argc, argv, help, opts, 1, &first);
    if (rc >= 0) return rc;
    if (key == NULL) return help_exit(help, false);
    if (strcmp(mode, "all") != 0 && strcmp(mode, "valid") != 0)
        return usage_error("--mode wants all or valid, not '%s'", mode);
    if ((rc = check_db("--db", db)) >= 0) return rc;
    char *body;
    size_t len;
    if (!read_all(argv[first], &body, &len)) return 1;
    store_app_t app;
    store_t *s = open_app(db, key, &app);
    rc = s != NULL ? csvcmd_import(s, app.id, body, len, strcmp(mode, "valid") == 0, stdout, stderr) : 1;
    if (s != NULL) store_close(s);
    free(body);
    return rc;
}

/* --- routes -------------------------------------------------------------------- */

static int cmd_routes(int argc, char **argv)
{
    static const char help[] = "usage: crmd routes\n";
    const cli_opt_t opts[] = {{NULL}};
    int first, rc = parse_opts(argc, argv, help, opts, 0, &first);
    if (rc >= 0) return rc;
    api_routes_print(stdout);
    return 0;
}

/* --- --config and --version ---------------------------------------------------- */

/* The names a --config file may set: every long option that takes a
 * value or is a switch, across the commands (a new option goes here too;
 * tests/api/test_config.py checks serve's). */
static const char *const CONFIG_NAMES[] = {"db",
                                           "listen",
                                           "threads",
                                           "quiet",
                                           "rate-limit",
                                           "auth-limit",
                                           "trusted-proxy",
                                           "max-connections",
                                           "cache-mb",
                                           "write-queue",
                                           "request-memory-mb",
                                           "response-memory-mb",
                                           "http2",
                                           "jwks-file",
                                           "jwks-url",
                                           "jwks-refresh",
                                           "app-claim",
                                           "jwt-issuer",
                                           "jwt-audience",
                                           "log-format",
                                           "admin-listen",
                                           "tls-cert",
                                           "tls-key",
                                           "cors-origin",
                                           "trash-retention",
                                           "export-limit",
                                           "export-time",
                                           "webhook-allow-private",
                                           "webhook-retry",
                                           "webhook-give-up",
                                           "webhook-disable-after",
                                           "webhook-ca-file",
                                           "webhook-sender",
                                           "webhook-backlog-max",
                                           "webhook-log-keep",
                                           NULL};
static const char *const CONFIG_BOOLEANS[] = {"quiet", "http2", "webhook-allow-private", NULL};

/* Takes --config FILE (or --config=FILE, or CRMD_CONFIG) out of argv and
 * reads it. Returns -1 to go on, or the exit status (reason printed). */
static int take_config(int *argc, char **argv)
{
    const char *path = getenv("CRMD_CONFIG");
    for (int i = 1; i < *argc; i++) {
        int n = 0;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < *argc)
            path = argv[i + 1], n = 2;
        else if (strncmp(argv[i], "--config=", 9) == 0)
            path = argv[i] + 9, n = 1;
        else if (strcmp(argv[i], "--config") == 0)
            return usage_error("%s", "--config wants a FILE");
        if (n == 0) continue;
        memmove(&argv[i], &argv[i + n], (size_t)(*argc - i - n + 1) * sizeof *argv);
        *argc -= n;
        i--;
    }
    if (path == NULL || path[0] == '\0') return -1;
    char err[2048];
    if (config_load(path, CONFIG_NAMES, CONFIG_BOOLEANS, err, sizeof err) == 0) return -1;
    fprintf(stderr, "crmd: the config file is refused:\n%s\n", err);
    return 2;
}

int main(int argc, char **argv)
{
    int rc = take_config(&argc, argv);
    if (rc >= 0) return rc;
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("crmd %s\n", CRMD_VERSION);
        return 0;
    }
    /* Each command parses its own options from argv[1] on. */
    if (strcmp(cmd, "serve") == 0) return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "app") == 0) return cmd_app(argc - 1, argv + 1);
    if (strcmp(cmd, "token") == 0) return cmd_token(argc - 1, argv + 1);
    if (strcmp(cmd, "migrate") == 0) return cmd_migrate(argc - 1, argv + 1);
    if (strcmp(cmd, "copy") == 0) return cmd_copy(argc - 1, argv + 1);
    if (strcmp(cmd, "key") == 0) return cmd_key(argc - 1, argv + 1);
    if (strcmp(cmd, "backup") == 0) return cmd_backup(argc - 1, argv + 1);
    if (strcmp(cmd, "export") == 0) return cmd_export(argc - 1, argv + 1);
    if (strcmp(cmd, "import") == 0) return cmd_import(argc - 1, argv + 1);
    if (strcmp(cmd, "routes") == 0) return cmd_routes(argc - 1, argv + 1);
    return usage_error("unknown command '%s'", cmd);
}
