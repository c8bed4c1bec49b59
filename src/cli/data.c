/*
 * data.c: crmd copy, backup, export, import and routes: whole databases
 * copied or backed up, an app's leads out as CSV and in from CSV, and the
 * route table printed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/csvcmd.h"
#include "cli/cli.h"
#include "cli/cli_int.h"
#include "store/copy.h"
#include "store/store.h"

/* --- copy ---------------------------------------------------------------------- */

int cli_copy(int argc, char **argv)
{
    static const char help[] = "usage: crmd copy --from URL --to URL [--append]\n";
    const char *from = NULL, *to = NULL, *append = NULL;
    const cli_opt_t opts[] = {{"from", &from}, {"to", &to}, {"append", &append, true}, {NULL}};
    int first, rc = cli_parse_opts(argc, argv, help, opts, 0, &first);
    if (rc >= 0) return rc;
    if (from == NULL || to == NULL) return cli_help_exit(help, false);
    if ((rc = cli_check_db("--from", from)) >= 0 || (rc = cli_check_db("--to", to)) >= 0) return rc;
    return store_copy(from, to, append != NULL, stdout, stderr) == STORE_OK ? 0 : 1;
}

/* --- backup -------------------------------------------------------------------- */

int cli_backup(int argc, char **argv)
{
    static const char help[] = "usage: crmd backup [--db URL] --to FILE\n";
    const char *db = cli_env_or("CRMD_DB", DEFAULT_DB), *to = NULL;
    const cli_opt_t opts[] = {{"db", &db}, {"to", &to}, {NULL}};
    int first, rc = cli_parse_opts(argc, argv, help, opts, 0, &first);
    if (rc >= 0) return rc;
    if (to == NULL || to[0] == '\0') return cli_help_exit(help, false);
    if ((rc = cli_check_db("--db", db)) >= 0) return rc;
    /* Not cli_open_db: a backup never creates or migrates its source. */
    char err[STORE_OPEN_ERR_MAX], msg[1024] = "";
    store_t *s = store_open_existing(db, err, sizeof err);
    if (s == NULL) {
        fprintf(stderr, "crmd: %s\n", err);
        return 1;
    }
    rc = store_backup(s, to, msg, sizeof msg);
    store_close(s);
    fprintf(stderr, "crmd: backup of %s: %s\n", cli_shown(db), msg);
    return rc == STORE_OK ? 0 : 1;
}

/* --- export, import ---------------------------------------------------------------- */

/* Opens (and migrates) db, which must be there, and finds the app with
 * key; NULL (reason printed) when either fails. */
static store_t *open_app(const char *db, const char *key, store_app_t *app)
{
    store_t *s = cli_open_existing_db(db);
    if (s == NULL) return NULL;
    store_rc_t rc = store_app_find(s, key, app, NULL);
    if (rc == STORE_OK) return s;
    fprintf(stderr, "crmd: %s\n", rc == STORE_NOT_FOUND ? "no app has that key" : "cannot read the apps");
    store_close(s);
    return NULL;
}

int cli_export(int argc, char **argv)
{
    static const char help[] =
        "usage: crmd export --app KEY [--query QUERY] [--db URL]\n"
        "  write the app's leads as CSV on stdout: every one, newest first, or those GET /leads/'s\n"
        "  filters in QUERY keep, in its sort ('stage=qualified&value_min=1000&sort=-value')\n";
    const char *db = cli_env_or("CRMD_DB", DEFAULT_DB), *key = NULL, *query = NULL;
    const cli_opt_t opts[] = {{"db", &db}, {"app", &key}, {"query", &query}, {NULL}};
    int first, rc = cli_parse_opts(argc, argv, help, opts, 0, &first);
    if (rc >= 0) return rc;
    if (key == NULL) return cli_help_exit(help, false);
    if ((rc = cli_check_db("--db", db)) >= 0) return rc;
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

int cli_import(int argc, char **argv)
{
    static const char help[] =
        "usage: crmd import --app KEY [--mode all|valid] [--db URL] FILE\n"
        "  create the app's leads from a CSV file (- reads standard input) in one transaction:\n"
        "  all of it or nothing (--mode all, the default), or its valid rows (--mode valid)\n";
    const char *db = cli_env_or("CRMD_DB", DEFAULT_DB), *key = NULL, *mode = "all";
    const cli_opt_t opts[] = {{"db", &db}, {"app", &key}, {"mode", &mode}, {NULL}};
    int first, rc = cli_parse_opts(argc, argv, help, opts, 1, &first);
    if (rc >= 0) return rc;
    if (key == NULL) return cli_help_exit(help, false);
    if (strcmp(mode, "all") != 0 && strcmp(mode, "valid") != 0)
        return cli_usage_error("--mode wants all or valid, not '%s'", mode);
    if ((rc = cli_check_db("--db", db)) >= 0) return rc;
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

int cli_routes(int argc, char **argv)
{
    static const char help[] = "usage: crmd routes\n";
    const cli_opt_t opts[] = {{NULL}};
    int first, rc = cli_parse_opts(argc, argv, help, opts, 0, &first);
    if (rc >= 0) return rc;
    api_routes_print(stdout);
    return 0;
}
