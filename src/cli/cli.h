/*
 * cli.h: crmd's commands, as main.c dispatches them. Each takes its own
 * argv (argv[0] is the command's name), parses its options over the
 * CRMD_ environment and the --config file, and returns the process's exit
 * status: 0 done, 1 failed (reason printed), 2 a usage error.
 */
#ifndef CRMD_CLI_H
#define CRMD_CLI_H

#include <stdbool.h>

/* serve.c */
int cli_serve(int argc, char **argv);
/* admin.c: apps, tokens, signing keys, migrations. */
int cli_app(int argc, char **argv);
int cli_token(int argc, char **argv);
int cli_migrate(int argc, char **argv);
int cli_key(int argc, char **argv);
/* data.c: whole databases and an app's leads in and out; the routes. */
int cli_copy(int argc, char **argv);
int cli_backup(int argc, char **argv);
int cli_export(int argc, char **argv);
int cli_import(int argc, char **argv);
int cli_routes(int argc, char **argv);

/* Prints the top-level usage (on stdout if asked for, else stderr). */
void cli_usage(bool asked);
/* A usage error: "crmd: " fmt with arg, then the usage; returns 2. */
int cli_usage_error(const char *fmt, const char *arg);

#endif
