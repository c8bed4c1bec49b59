/*
 * cli_int.h: what the command line's files share: option parsing, help and
 * usage errors, opening the database. Not for anything outside src/cli/ and
 * src/main.c. Strings returned point into argv, the environment or static
 * storage (see each function); nothing here is freed by the caller.
 */
#ifndef CRMD_CLI_INT_H
#define CRMD_CLI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define DEFAULT_DB "sqlite:var/crmd.db"

/* The top-level usage, printed after a usage error and by --help. */
extern const char cli_usage_text[];

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

/* The body of a small command: runs with the database open (s, from the
 * URL db) and the command's positional arguments; returns the exit status. */
typedef int (*cli_simple_fn)(store_t *s, const char *db, char **args, const char *verb);

/* Prints "crmd: " fmt (with arg), then the top-level usage, on stderr;
 * returns the exit status of a usage error (2). */
int cli_usage_error(const char *fmt, const char *arg);
/* An option's value from the environment, else from the --config file,
 * else fallback. The string lives as long as the process. */
const char *cli_env_or(const char *name, const char *fallback);
/* The database URL as messages show it: without its password. The buffer
 * is static: use the result before the next call. */
const char *cli_shown(const char *url);
/* Refuses a database URL of no form crmd accepts (opt names where it came
 * from): -1 to go on, else the exit status (2), the reason printed. */
int cli_check_db(const char *opt, const char *url);
/* Opens and migrates the database; NULL (reason printed) on failure. The
 * caller closes it. */
store_t *cli_open_db(const char *url);
/* As cli_open_db, but an SQLite file that is not there is refused and
 * stays absent: for the commands that cannot succeed on a new database
 * (those that name an app, a key or leads in it), which a mistyped --db
 * left an empty database behind. */
store_t *cli_open_existing_db(const char *url);
/* Parses "90s", "5m", "12h", "30d" (up to 3650d) into seconds; -1 if invalid. */
int64_t cli_parse_ttl(const char *s);
/* Prints a command's help: on stdout when asked for (0), else on stderr (2). */
int cli_help_exit(const char *help, bool asked);
/* For a command line that names no known verb: its help, asked for or not. */
int cli_verb_help(int argc, char **argv, const char *help);
/* Parses argv (argv[0] is the command) against opts, a list ended by a
 * NULL name, and --help; then wants exactly npos positional arguments,
 * each non-empty and at most 200 bytes, the first at argv[*first]. Returns
 * -1 to go on, or the exit status (0 after --help, 2 on a usage error),
 * the help printed. */
int cli_parse_opts(int argc, char **argv, const char *help, const cli_opt_t *opts, int npos, int *first);
/* Reads s as a decimal number from min to max; false if it is not one. */
bool cli_parse_long(const char *s, long min, long max, long *out);
/* Runs a small command: [--db URL] [--help] and exactly npos positional
 * arguments, then fn with the database opened (created when create:
 * cli_open_db, else cli_open_existing_db) and closed after. Returns the
 * exit status (0 after --help, 2 on a usage error, 1 if the database
 * cannot be opened, else fn's). */
int cli_run_simple(int argc, char **argv, const char *help, int npos, bool create, cli_simple_fn fn,
                   const char *verb);

#endif
