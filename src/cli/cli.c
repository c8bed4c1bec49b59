/*
 * cli.c: the top-level usage and what every command shares: option
 * parsing over argv, the environment and --config, help and usage
 * errors, opening and migrating the database.
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_int.h"
#include "config.h"
#include "store/store.h"

#define MAX_TTL_S (3650LL * 86400)

const char cli_usage_text[] =
    "usage: crmd COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  serve [--listen HOST:PORT] [--db URL] [--threads N] [--quiet]\n"
    "        [--rate-limit RATE[:BURST]|off] [--auth-limit RATE[:BURST]|off]\n"
    "        [--trusted-proxy CIDR[,CIDR...]]... [--max-connections N] [--cache-mb N]\n"
    "        [--write-queue N] [--request-memory-mb N] [--response-memory-mb N] [--http2]\n"
    "        [--tls-cert FILE --tls-key FILE] [--admin-listen HOST:PORT] [--cors-origin ORIGIN]...\n"
    "        [--log-format text|json] [--jwks-file FILE | --jwks-url URL [--jwks-refresh SECONDS]]\n"
    "        [--app-claim NAME] [--jwt-issuer ISS] [--jwt-audience AUD]\n"
    "        [--webhook-allow-private] [--webhook-retry D[,D...]]\n"
    "        [--webhook-give-up D] [--webhook-disable-after D] [--webhook-ca-file FILE]\n"
    "        [--webhook-sender on|off] [--webhook-backlog-max N] [--webhook-log-keep D]\n"
    "        [--trash-retention DURATION] [--export-limit N[:PER_APP]] [--export-time DURATION[:IDLE]]\n"
    "        [--read-time DURATION] [--drain-seconds N]\n"
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
    "        --export-time: how long an export may hold its snapshot before it is cut off (10m),\n"
    "        and :IDLE how long its client may take nothing of it (30s);\n"
    "        --read-time: how long any other read may run before it is stopped, 503 (1s; 0: none);\n"
    "        --drain-seconds: after SIGTERM, how long answers being written may go on (3);\n"
    "        --jwks-file, --jwks-url: an identity provider's keys verify tokens too (--jwks-refresh:\n"
    "        how often the URL is read again, 300); --app-claim: the claim naming the app (app);\n"
    "        --jwt-issuer, --jwt-audience: the iss and aud those tokens must carry;\n"
    "        CRMD_TRUSTED_PROXY, CRMD_MAX_CONNECTIONS, CRMD_CACHE_MB, CRMD_WRITE_QUEUE,\n"
    "        CRMD_REQUEST_MEMORY_MB, CRMD_RESPONSE_MEMORY_MB, CRMD_HTTP2=1, CRMD_TLS_CERT,\n"
    "        CRMD_TLS_KEY, CRMD_ADMIN_LISTEN, CRMD_CORS_ORIGIN, CRMD_LOG_FORMAT,\n"
    "        CRMD_TRASH_RETENTION, CRMD_EXPORT_LIMIT, CRMD_EXPORT_TIME, CRMD_READ_TIME,\n"
    "        CRMD_DRAIN_SECONDS,\n"
    "        CRMD_JWKS_FILE, CRMD_JWKS_URL, CRMD_JWKS_REFRESH, CRMD_APP_CLAIM, CRMD_JWT_ISSUER and\n"
    "        CRMD_JWT_AUDIENCE set the same\n"
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

/* The help of the command whose options are being read (cli_parse_opts),
 * shown after a usage error instead of every command's: one command runs
 * per process, so one pointer to static text does. */
static const char *command_help;

int cli_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "crmd: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", command_help != NULL ? command_help : cli_usage_text);
    return 2;
}

void cli_usage(bool asked)
{
    fputs(cli_usage_text, asked ? stdout : stderr);
}

/* An option's value from the environment, else from the --config file. */
const char *cli_env_or(const char *name, const char *fallback)
{
    return config_env_or(name, fallback);
}

/* The database URL as messages show it: without its password. The
 * buffer is static: use the result before the next call. */
const char *cli_shown(const char *url)
{
    static char buf[256];
    store_url_redact(url, buf, sizeof buf);
    return buf;
}

/* Refuses a database URL (from option opt, or the environment) of no
 * form crmd accepts, before anything is opened or created: a usage error.
 * Returns -1 to go on, else the exit status (2), the reason printed. */
int cli_check_db(const char *opt, const char *url)
{
    char err[STORE_OPEN_ERR_MAX];
    if (store_url_check(url, err, sizeof err)) return -1;
    fprintf(stderr, "crmd: %s: %s\n", opt, err);
    return 2;
}

/* Opens (creating it when create) and migrates the database; NULL
 * (reason printed) on failure. */
static store_t *open_db(const char *url, bool create)
{
    char err[512];
    store_t *s = create ? store_open(url, err, sizeof err) : store_open_existing(url, err, sizeof err);
    if (s == NULL) {
        fprintf(stderr, "crmd: %s\n", err);
        return NULL;
    }
    if (store_migrate(s) != STORE_OK) {
        fprintf(stderr, "crmd: cannot migrate the database %s\n", cli_shown(url));
        store_close(s);
        return NULL;
    }
    return s;
}

store_t *cli_open_db(const char *url)
{
    return open_db(url, true);
}

store_t *cli_open_existing_db(const char *url)
{
    return open_db(url, false);
}

/* Parses "90s", "5m", "12h", "30d" into seconds; -1 if invalid. */
int64_t cli_parse_ttl(const char *s)
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

/* Prints a command's help: on stdout when asked for (exit status 0), on
 * stderr after a usage error (2). Returns that status. */
int cli_help_exit(const char *help, bool asked)
{
    fputs(help, asked ? stdout : stderr);
    return asked ? 0 : 2;
}

/* For a command line that names no known verb: its help, asked for or not. */
int cli_verb_help(int argc, char **argv, const char *help)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return cli_help_exit(help, true);
    return cli_help_exit(help, false);
}

/* Parses argv (argv[0] is the command) against opts, a list ended by a
 * NULL name, and --help; then wants exactly npos positional arguments,
 * each non-empty and at most 200 bytes, the first at argv[*first]. Returns
 * -1 to go on, or the exit status (0 after --help, 2 on a usage error),
 * the help printed. */
int cli_parse_opts(int argc, char **argv, const char *help, const cli_opt_t *opts, int npos, int *first)
{
    command_help = help;
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
        if (c >= n) return cli_help_exit(help, c == 'h');
        *opts[c].value = opts[c].flag ? "" : optarg;
        if (opts[c].list == NULL) continue;
        size_t len = strlen(opts[c].list);
        int w = snprintf(opts[c].list + len, opts[c].list_size - len, "%s%s", len ? "," : "", optarg);
        if (w < 0 || (size_t)w >= opts[c].list_size - len)
            return cli_usage_error("the values of --%s are too long", opts[c].name);
        *opts[c].value = opts[c].list;
    }
    if (argc - optind != npos) return cli_help_exit(help, false);
    /* Said, not only the usage shown: nothing in it tells why a path of
     * 201 bytes (crmd import's FILE) or an empty NAME is refused. */
    for (int i = optind; i < argc; i++)
        if (argv[i][0] == '\0' || strlen(argv[i]) > 200)
            return cli_usage_error("%s", argv[i][0] == '\0' ? "an argument is empty"
                                                            : "an argument is longer than 200 bytes");
    *first = optind;
    return -1;
}

/* Reads s as a decimal number from min to max; false if it is not one.
 * Digits only, after an optional '-': strtol also took "" (as 0: a
 * --cache-mb= turned the cache off), blanks and a '+' before them. */
bool cli_parse_long(const char *s, long min, long max, long *out)
{
    const char *digits = s[0] == '-' ? s + 1 : s;
    if (digits[0] < '0' || digits[0] > '9') return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) return false;
    *out = v;
    return true;
}

/* Runs a small command: [--db URL] [--help] and exactly npos positional
 * arguments, then fn with the database opened (created when create, and
 * migrated) and closed after. Returns the exit status (0 after --help, 2 on
 * a usage error, 1 if the database cannot be opened, else fn's). */
int cli_run_simple(int argc, char **argv, const char *help, int npos, bool create, cli_simple_fn fn,
                   const char *verb)
{
    const char *db = cli_env_or("CRMD_DB", DEFAULT_DB);
    const cli_opt_t opts[] = {{"db", &db}, {NULL}};
    int first, rc = cli_parse_opts(argc, argv, help, opts, npos, &first);
    if (rc >= 0 || (rc = cli_check_db("--db", db)) >= 0) return rc;
    store_t *s = open_db(db, create);
    if (s == NULL) return 1;
    rc = fn(s, db, argv + first, verb);
    store_close(s);
    return rc;
}
