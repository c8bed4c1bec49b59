/*
 * main.c: the command line.
 *
 *   crmd serve   [--listen HOST:PORT] [--db URL] [--threads N] [--quiet]
 *   crmd app create NAME [--db URL]
 *   crmd token issue --app KEY [--subject S] [--ttl DURATION] [--db URL]
 *   crmd migrate [--db URL]
 *
 * Every command that opens the database migrates it first, so each works
 * on a new, empty path. Machine-readable output (exports, tokens) goes to
 * stdout; everything else to stderr.
 */
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
#include "api/ratelimit.h"
#include "auth/jwt.h"
#include "http/server.h"
#include "model/timestamp.h"
#include "model/uuid.h"
#include "store/copy.h"
#include "store/store.h"

#define DEFAULT_DB "sqlite:var/crmd.db"
#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_TTL_S (30 * 86400)
#define MAX_TTL_S (3650LL * 86400)
#define ISSUER "crmd"
#define DEFAULT_RATE_LIMIT "100:200"
#define DEFAULT_CACHE_MB 16

static const char usage_text[] =
    "usage: crmd COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  serve [--listen HOST:PORT] [--db URL] [--threads N] [--quiet]\n"
    "        [--rate-limit RATE[:BURST]|off] [--max-connections N] [--cache-mb N]\n"
    "        serve the API (default 127.0.0.1:8080, sqlite:var/crmd.db, one thread per core);\n"
    "        CRMD_LISTEN, CRMD_DB, CRMD_THREADS, CRMD_RATE_LIMIT, CRMD_MAX_CONNECTIONS and\n"
    "        CRMD_CACHE_MB set the same\n"
    "  app create NAME [--db URL]\n"
    "        create an app (tenant); prints export lines for BLOCKS_API_KEY and BLOCKS_AUTH_TOKEN\n"
    "  app list [--db URL] | app disable KEY [--db URL] | app enable KEY [--db URL]\n"
    "        list apps; refuse (or again accept) an app's requests, within a second\n"
    "  token issue --app KEY [--subject S] [--ttl DURATION] [--db URL]\n"
    "        print a bearer token for an app; DURATION is a number with s, m, h or d (default 30d)\n"
    "  token revoke JTI [--db URL]\n"
    "        refuse the token with that id (its jti claim) from now on, within a second\n"
    "  migrate [--db URL]\n"
    "        create or upgrade the database schema\n"
    "  copy --from URL --to URL [--append]\n"
    "        copy every app, key, revocation, lead and follow to another database (ids kept),\n"
    "        in one transaction; a target holding data is refused unless --append\n"
    "  routes\n"
    "        print the API's routes as a Markdown table (method, path, auth, summary)\n"
    "\n"
    "URL is sqlite:PATH (a bare path is read as SQLite too), a PostgreSQL URL\n"
    "(postgres://USER:PASSWORD@HOST:PORT/DBNAME, postgresql:// too) or a libpq key=value\n"
    "string such as 'host=/run/postgresql dbname=crmd' (one that starts with KEYWORD=).\n"
    "Run 'crmd COMMAND --help' for one command.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "crmd: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage_text);
    return 2;
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : fallback;
}

/* The database URL as messages show it: without its password. The
 * buffer is static: use the result before the next call. */
static const char *shown(const char *url)
{
    static char buf[256];
    store_url_redact(url, buf, sizeof buf);
    return buf;
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

/* Loads the token signing key, making and saving one on first use. */
static jwt_key_t *signing_key(store_t *s)
{
    char *pem = NULL;
    int rc = store_signing_key(s, NULL, &pem);
    if (rc == STORE_NOT_FOUND) {
        char *fresh = NULL;
        if (jwt_key_generate(&fresh) != JWT_OK) {
            fprintf(stderr, "crmd: cannot generate a signing key\n");
            return NULL;
        }
        rc = store_signing_key(s, fresh, &pem);
        OPENSSL_cleanse(fresh, strlen(fresh));
        free(fresh);
    }
    if (rc != STORE_OK) {
        fprintf(stderr, "crmd: cannot read the signing key from the database\n");
        return NULL;
    }
    jwt_key_t *key = jwt_key_load(pem, strlen(pem));
    /* The private key is in the database anyway, but not left in freed heap. */
    OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
    if (key == NULL) fprintf(stderr, "crmd: the stored signing key is not a valid RSA key\n");
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

/* Signs a token for app key; prints nothing. The caller frees *token. */
static int issue_token(const jwt_key_t *key, const char *app, const char *subject, int64_t ttl, char **token)
{
    jwt_claims_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.iss, sizeof c.iss, "%s", ISSUER);
    snprintf(c.sub, sizeof c.sub, "%s", subject);
    snprintf(c.app, sizeof c.app, "%s", app);
    char jti[UUID_BUFSZ];
    if (uuid_v7(ts_now_ms(), jti) != 0) return -1;
    snprintf(c.jti, sizeof c.jti, "%s", jti);
    c.iat = ts_now_ms() / 1000;
    c.exp = c.iat + ttl;
    if (jwt_sign(key, &c, token) != JWT_OK) return -1;
    /* The id is what `crmd token revoke` takes; stdout stays the token. */
    fprintf(stderr, "crmd: token jti=%s expires in %" PRId64 "s\n", jti, ttl);
    return 0;
}

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

/* --- serve ---------------------------------------------------------------- */

static void on_ready(void *arg)
{
    const api_shared_t *shared = arg;
    fprintf(stderr, "crmd: ready (database %s)\n", shown(shared->db_url));
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

static int cmd_serve(int argc, char **argv)
{
    static const char help[] = "usage: crmd serve [--listen HOST:PORT] [--db URL] [--threads N] [--quiet]\n"
                               "                  [--rate-limit RATE[:BURST]|off] [--max-connections N]"
                               " [--cache-mb N]\n";
    const char *listen_at = env_or("CRMD_LISTEN", DEFAULT_LISTEN);
    const char *db = env_or("CRMD_DB", DEFAULT_DB);
    const char *threads_s = env_or("CRMD_THREADS", NULL);
    const char *rate_s = env_or("CRMD_RATE_LIMIT", NULL);
    const char *maxconn_s = env_or("CRMD_MAX_CONNECTIONS", NULL);
    const char *cache_s = env_or("CRMD_CACHE_MB", NULL);
    int quiet = 0;
    static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                         {"db", required_argument, NULL, 'd'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"rate-limit", required_argument, NULL, 'r'},
                                         {"max-connections", required_argument, NULL, 'm'},
                                         {"cache-mb", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            listen_at = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 't':
            threads_s = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'r':
            rate_s = optarg;
            break;
        case 'm':
            maxconn_s = optarg;
            break;
        case 'c':
            cache_s = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            return 0;
        default:
            fputs(help, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fputs(help, stderr);
        return 2;
    }
    char host[128];
    uint16_t port;
    if (parse_listen(listen_at, host, sizeof host, &port) != 0)
        return usage_error("--listen wants HOST:PORT, not '%s'", listen_at);
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    if (threads_s != NULL) {
        char *end;
        threads = strtol(threads_s, &end, 10);
        if (*end != '\0' || threads < 1 || threads > 256)
            return usage_error("--threads wants a number from 1 to 256, not '%s'", threads_s);
    }
    if (threads < 1) threads = 1;
    /* Rate limiting is off by default on loopback (a local tool or a proxy
     * in front), on with a generous default anywhere else. */
    double rate = 0, burst = 0;
    bool loopback = strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
    if (rate_s == NULL && !loopback) rate_s = DEFAULT_RATE_LIMIT;
    if (rate_s != NULL && strcmp(rate_s, "off") != 0 && !ratelimit_parse(rate_s, &rate, &burst))
        return usage_error("--rate-limit wants RATE[:BURST] in requests per second, or off, not '%s'",
                           rate_s);
    ratelimit_configure(rate, burst);
    /* The response cache sees only this process's writes: it is for an
     * embedded SQLite database, never for a shared PostgreSQL one. */
    long cache_mb = DEFAULT_CACHE_MB;
    if (cache_s != NULL) {
        char *end;
        cache_mb = strtol(cache_s, &end, 10);
        if (*end != '\0' || cache_mb < 0 || cache_mb > 65536)
            return usage_error("--cache-mb wants a number of MiB from 0 to 65536, not '%s'", cache_s);
    }
    if (store_url_is_shared(db)) cache_mb = 0;
    cache_configure((size_t)cache_mb << 20);
    long max_conns = http_max_connections_default();
    if (maxconn_s != NULL) {
        char *end;
        max_conns = strtol(maxconn_s, &end, 10);
        if (*end != '\0' || max_conns < 1 || max_conns > 1000000)
            return usage_error("--max-connections wants a number from 1 to 1000000, not '%s'", maxconn_s);
    }

    store_t *s = open_db(db);
    if (s == NULL) return 1;
    jwt_key_t *key = signing_key(s);
    store_close(s);
    if (key == NULL) return 1;

    api_shared_t shared = {.db_url = db, .key = key, .log_requests = !quiet};
    http_config_t cfg = {.host = host,
                         .port = port,
                         .threads = (int)threads,
                         .max_body = API_MAX_BODY,
                         .max_connections = (int)max_conns,
                         .thread_init = api_thread_init,
                         .thread_fini = api_thread_fini,
                         .busy = api_thread_busy,
                         .handle = api_handle,
                         .error_body = api_error_body,
                         .arg = &shared};
    if (api_writer_start(&shared) != 0) {
        jwt_key_free(key);
        return 1;
    }
    fprintf(stderr,
            "crmd: listening on http://%s:%u with %ld threads, at most %ld connections, rate limit %s, "
            "cache %ld MiB\n",
            host, port, threads, max_conns, rate > 0 ? rate_s : "off", cache_mb);
    int rc = http_serve(&cfg, on_ready);
    /* The workers are done: finish what the writer holds, then close it. */
    api_writer_stop();
    jwt_key_free(key);
    fprintf(stderr, "crmd: stopped\n");
    return rc;
}

/* --- app, token, migrate ------------------------------------------------------ */

/* Parses the options of the small commands: [--db URL] [--help] and
 * exactly npos positional arguments, found from argv[*first] on. Returns
 * -1 to go on, or the exit status (0 after --help, 2 on a usage error). */
static int parse_simple(int argc, char **argv, const char *help, int npos, const char **db, int *first)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    *db = env_or("CRMD_DB", DEFAULT_DB);
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'd') {
            *db = optarg;
        } else if (c == 'h') {
            fputs(help, stdout);
            return 0;
        } else {
            fputs(help, stderr);
            return 2;
        }
    }
    if (argc - optind != npos) {
        fputs(help, stderr);
        return 2;
    }
    for (int i = optind; i < argc; i++) {
        if (argv[i][0] == '\0' || strlen(argv[i]) > 200) {
            fputs(help, stderr);
            return 2;
        }
    }
    *first = optind;
    return -1;
}

static int app_create(const char *db, const char *name)
{
    store_t *s = open_db(db);
    if (s == NULL) return 1;
    jwt_key_t *key = signing_key(s);
    int rc = 1;
    if (key != NULL) {
        unsigned char rnd[16];
        char app_key[64];
        if (RAND_bytes(rnd, sizeof rnd) == 1) {
            int n = snprintf(app_key, sizeof app_key, "pk_live_");
            for (size_t i = 0; i < sizeof rnd; i++)
                n += snprintf(app_key + n, sizeof app_key - (size_t)n, "%02x", rnd[i]);
            store_app_t app;
            char *token = NULL;
            if (store_app_create(s, app_key, name, ts_now_ms(), &app) != STORE_OK) {
                fprintf(stderr, "crmd: cannot create the app\n");
            } else if (issue_token(key, app_key, "admin", DEFAULT_TTL_S, &token) != 0) {
                fprintf(stderr, "crmd: cannot sign a token\n");
            } else {
                printf("export BLOCKS_API_KEY=%s\nexport BLOCKS_AUTH_TOKEN=%s\n", app_key, token);
                fprintf(stderr, "crmd: created app '%s'\n", name);
                rc = 0;
            }
            free(token);
        }
        jwt_key_free(key);
    }
    store_close(s);
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

static int app_admin(const char *db, const char *verb, const char *key)
{
    store_t *s = open_db(db);
    if (s == NULL) return 1;
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
    store_close(s);
    return rc == STORE_OK ? 0 : 1;
}

static int cmd_app(int argc, char **argv)
{
    static const char help[] = "usage: crmd app create NAME [--db URL]\n"
                               "       crmd app list [--db URL]\n"
                               "       crmd app disable KEY [--db URL]\n"
                               "       crmd app enable KEY [--db URL]\n";
    const char *verb = argc >= 2 ? argv[1] : "";
    int npos = strcmp(verb, "list") == 0 ? 0 : 1;
    if (strcmp(verb, "create") != 0 && strcmp(verb, "list") != 0 && strcmp(verb, "disable") != 0 &&
        strcmp(verb, "enable") != 0) {
        if (wants_help(argc, argv)) {
            fputs(help, stdout);
            return 0;
        }
        fputs(help, stderr);
        return 2;
    }
    const char *db;
    int first;
    int rc = parse_simple(argc - 1, argv + 1, help, npos, &db, &first);
    if (rc >= 0) return rc;
    if (strcmp(verb, "create") == 0) return app_create(db, argv[1 + first]);
    return app_admin(db, verb, npos ? argv[1 + first] : NULL);
}

static int token_revoke(int argc, char **argv)
{
    static const char help[] = "usage: crmd token revoke JTI [--db URL]\n";
    const char *db;
    int first;
    int rc = parse_simple(argc, argv, help, 1, &db, &first);
    if (rc >= 0) return rc;
    store_t *s = open_db(db);
    if (s == NULL) return 1;
    rc = store_token_revoke(s, argv[first], ts_now_ms());
    store_close(s);
    if (rc != STORE_OK) {
        fprintf(stderr, "crmd: cannot record the revocation in %s\n", shown(db));
        return 1;
    }
    fprintf(stderr, "crmd: token %s revoked; running servers refuse it within a second\n", argv[first]);
    return 0;
}

static int cmd_token(int argc, char **argv)
{
    static const char help[] = "usage: crmd token issue --app KEY [--subject S] [--ttl DURATION] [--db URL]\n"
                               "       crmd token revoke JTI [--db URL]\n";
    if (argc >= 2 && strcmp(argv[1], "revoke") == 0) return token_revoke(argc - 1, argv + 1);
    if (argc < 2 || strcmp(argv[1], "issue") != 0) {
        if (wants_help(argc, argv)) {
            fputs(help, stdout);
            return 0;
        }
        fputs(help, stderr);
        return 2;
    }
    const char *db = env_or("CRMD_DB", DEFAULT_DB), *app = NULL, *subject = "cli", *ttl_s = NULL;
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},      {"app", required_argument, NULL, 'a'},
        {"subject", required_argument, NULL, 's'}, {"ttl", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    int c;
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'a':
            app = optarg;
            break;
        case 's':
            subject = optarg;
            break;
        case 't':
            ttl_s = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            return 0;
        default:
            fputs(help, stderr);
            return 2;
        }
    }
    if (optind != argc || app == NULL) {
        fputs(help, stderr);
        return 2;
    }
    int64_t ttl = DEFAULT_TTL_S;
    if (ttl_s != NULL && (ttl = parse_ttl(ttl_s)) < 0)
        return usage_error("--ttl wants a number with s, m, h or d (up to 3650d), not '%s'", ttl_s);
    if (strlen(subject) >= JWT_CLAIM_MAX) return usage_error("--subject is too long: '%s'", subject);

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
        jwt_key_t *key = signing_key(s);
        char *token = NULL;
        if (key != NULL && issue_token(key, app, subject, ttl, &token) == 0) {
            printf("%s\n", token);
            rc = 0;
        }
        free(token);
        jwt_key_free(key);
    }
    store_close(s);
    return rc;
}

static int cmd_migrate(int argc, char **argv)
{
    static const char help[] = "usage: crmd migrate [--db URL]\n";
    const char *db;
    int first;
    int rc = parse_simple(argc, argv, help, 0, &db, &first);
    if (rc >= 0) return rc;
    store_t *s = open_db(db);
    if (s == NULL) return 1;
    store_close(s);
    fprintf(stderr, "crmd: %s is up to date\n", shown(db));
    return 0;
}

/* --- copy ---------------------------------------------------------------------- */

static int cmd_copy(int argc, char **argv)
{
    static const char help[] = "usage: crmd copy --from URL --to URL [--append]\n";
    const char *from = NULL, *to = NULL;
    bool append = false;
    static const struct option opts[] = {{"from", required_argument, NULL, 'f'},
                                         {"to", required_argument, NULL, 't'},
                                         {"append", no_argument, NULL, 'a'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'f') {
            from = optarg;
        } else if (c == 't') {
            to = optarg;
        } else if (c == 'a') {
            append = true;
        } else if (c == 'h') {
            fputs(help, stdout);
            return 0;
        } else {
            fputs(help, stderr);
            return 2;
        }
    }
    if (optind != argc || from == NULL || to == NULL) {
        fputs(help, stderr);
        return 2;
    }
    return store_copy(from, to, append, stdout, stderr) == STORE_OK ? 0 : 1;
}

/* --- routes -------------------------------------------------------------------- */

static int cmd_routes(int argc, char **argv)
{
    static const char help[] = "usage: crmd routes\n";
    if (wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    if (argc > 1) {
        fputs(help, stderr);
        return 2;
    }
    api_routes_print(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    /* Each command parses its own options from argv[1] on. */
    if (strcmp(cmd, "serve") == 0) return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "app") == 0) return cmd_app(argc - 1, argv + 1);
    if (strcmp(cmd, "token") == 0) return cmd_token(argc - 1, argv + 1);
    if (strcmp(cmd, "migrate") == 0) return cmd_migrate(argc - 1, argv + 1);
    if (strcmp(cmd, "copy") == 0) return cmd_copy(argc - 1, argv + 1);
    if (strcmp(cmd, "routes") == 0) return cmd_routes(argc - 1, argv + 1);
    return usage_error("unknown command '%s'", cmd);
}
