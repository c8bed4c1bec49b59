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

/* The leads an export keeps, and their order: a GET /leads/ query string
 * read by the API's own code (query.c, find.c). Opaque. */
typedef struct csvcmd_query csvcmd_query_t;

/* Reads query (GET /leads/'s filters and sort, "stage=qualified&sort=-value";
 * a leading '?' is allowed; NULL or "" for every lead, newest first) into
 * *out, to free with csvcmd_query_free. Returns 0, or the exit status with
 * every problem printed on err: 2 for a bad query (the API's 422s, and the
 * paging parameters, which an export has none of), 1 out of memory. */
int csvcmd_query_parse(const char *query, csvcmd_query_t **out, FILE *err);
void csvcmd_query_free(csvcmd_query_t *q);

/* Writes the CSV of the leads of app that q keeps, in its order, to out,
 * read a page at a time. Returns the exit status (messages on err). */
int csvcmd_export(store_t *s, int64_t app, const csvcmd_query_t *q, FILE *out, FILE *err);

/* Imports the CSV body[0..len) into app: all of it (valid false) or its
 * good rows, in one transaction; the problems go to err (as many as the
 * API reports), what was done to out. Returns the exit status: 0 when
 * leads were committed (or the file had no row), 1 otherwise. */
int csvcmd_import(store_t *s, int64_t app, const char *body, size_t len, bool valid, FILE *out, FILE *err);

#endif
