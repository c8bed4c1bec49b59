/*
 * csvcmd.h: `crmd export` and `crmd import`, the command line's CSV, on a
 * store the command opened (main.c parses the options). The file format
 * and the rules are the API's (model/csv.h, api/import.h); the command
 * line has no 16 MiB limit.
 */
#ifndef CRMD_API_CSVCMD_H
#define CRMD_API_CSVCMD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"

/* Writes the CSV of every lead of app, newest first, to out, read a page
 * at a time. Returns the exit status (messages on err). */
int csvcmd_export(store_t *s, int64_t app, FILE *out, FILE *err);

/* Imports the CSV body[0..len) into app: all of it (valid false) or its
 * good rows, in one transaction; the problems go to err (as many as the
 * API reports), what was done to out. Returns the exit status: 0 when
 * leads were committed (or the file had no row), 1 otherwise. */
int csvcmd_import(store_t *s, int64_t app, const char *body, size_t len, bool valid, FILE *out, FILE *err);

#endif
