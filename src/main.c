/*
 * main.c: the command line: --config, --help, --version, then the command
 * (src/cli/: serve.c, admin.c, data.c, with cli.c's shared option parsing).
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
 *              [--export-limit N[:PER_APP]] [--export-time DURATION[:IDLE]] [--read-time DURATION]
 *              [--drain-seconds N]
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
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config.h"
/* CRMD_VERSION, written by the Makefile into the build folder. */
#include "version.h"

/* --- --config and --version ---------------------------------------------------- */

/* The names a --config file may set: every long option that takes a
 * value or is a switch, across the commands (a new option goes here too;
 * tests/api/test_operations.py checks serve's). */
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
                                           "read-time",
                                           "webhook-allow-private",
                                           "webhook-retry",
                                           "webhook-give-up",
                                           "webhook-disable-after",
                                           "webhook-ca-file",
                                           "webhook-sender",
                                           "webhook-backlog-max",
                                           "webhook-log-keep",
                                           "drain-seconds",
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
            return cli_usage_error("%s", "--config wants a FILE");
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

/* The commands, by the name that follows crmd. */
static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} COMMANDS[] = {
    {"serve", cli_serve},   {"app", cli_app},       {"token", cli_token},   {"migrate", cli_migrate},
    {"copy", cli_copy},     {"key", cli_key},       {"backup", cli_backup}, {"export", cli_export},
    {"import", cli_import}, {"routes", cli_routes},
};

/* glibc gives the free memory at the top of a heap back to the system once
 * it passes 128 KiB. The writer thread's heap grows by a megabyte or two in
 * every transaction of bulk writes (a batch, an import) and was given back
 * at its end, so the next transaction grew it again a page at a time, a
 * system call and a page fault each: with up to 2 MiB kept per heap, a
 * batch of 500 creates runs 13 to 16 % faster (bench/results.md,
 * 2026-12-01 14:05). Blocks of 128 KiB and more (request bodies) are
 * mapped on their own and still go back when freed (http_serve). */
#define TRIM_THRESHOLD (2 << 20)

/* rc, or 1 when what the command printed on stdout could not all be
 * written (a full disk, a closed pipe): app create, token issue and key
 * rotate print credentials that exist nowhere else, so their loss must not
 * pass for success. */
static int output_written(int rc)
{
    if (fflush(stdout) == 0 && !ferror(stdout)) return rc;
    fprintf(stderr, "crmd: what this command printed could not all be written: %s\n", strerror(errno));
    return rc == 0 ? 1 : rc;
}

int main(int argc, char **argv)
{
    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    int rc = take_config(&argc, argv);
    if (rc >= 0) return rc;
    if (argc < 2) {
        cli_usage(false);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        cli_usage(true);
        return output_written(0);
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("crmd %s\n", CRMD_VERSION);
        return output_written(0);
    }
    /* Each command parses its own options from argv[1] on. */
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (strcmp(cmd, COMMANDS[i].name) == 0) return output_written(COMMANDS[i].run(argc - 1, argv + 1));
    return cli_usage_error("unknown command '%s'", cmd);
}
