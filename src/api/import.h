/*
 * import.h: reading a CSV file of leads for an import, shared by
 * POST /leads/import (import.c) and `crmd import` (csvcmd.c).
 *
 * A file is read twice: once to check it (import_read_header, then
 * import_read_rows: the good rows counted, the bad ones' problems kept),
 * once to create its good rows (import_create_rows), which reads every
 * row by the same rules and so creates exactly the rows the first reading
 * counted as good.
 */
#ifndef CRMD_API_IMPORT_H
#define CRMD_API_IMPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "model/codec.h"
#include "model/csv.h"
#include "model/jsonw.h"
#include "store/store.h"

/* At most this many error objects in an answer (extensions.md). */
#define IMPORT_ERRORS_MAX 1000
/* At most this many rows in one POST /leads/import. All of a file's rows
 * are created in one transaction on the one writer thread, which every
 * app's writes wait for: a 16 MiB file of one-letter rows would be eight
 * million leads and minutes of that wait. A real 16 MiB export holds about
 * as many rows as this; `crmd import` takes any number. */
#define IMPORT_ROWS_MAX 100000
/* The leads of an import stamped with one created_at: the next ones are a
 * millisecond later (import.c). Well below the store's room for one
 * millisecond, so that other writes and imports of that millisecond fit. */
#define IMPORT_ROWS_PER_MS 500000

/* What the writer needs to read the file again: its separator, the
 * attribute of each column (-1: ignored), where the rows start. */
typedef struct import_plan {
    bool valid_mode;
    char sep;
    int ncols;
    signed char col[CSV_CELLS_MAX];
    size_t body_len, errors_len; /* the bytes after the plan in w->text */
    int64_t good, failed;
    int64_t max_rows; /* 0: any number; else reading stops past it */
    bool too_many;    /* the file has more than max_rows rows */
} import_plan_t;

/* The problems found: the first IMPORT_ERRORS_MAX, and the bad rows. */
typedef struct import_errs {
    verr_t *e;
    int n;
    int64_t failed;
} import_errs_t;

/* Reads the header row at rd's position into pl (separator, columns); its
 * problems (unknown, twice named or missing columns) into errs. */
void import_read_header(csv_reader_t *rd, import_plan_t *pl, verrs_t *errs);

/* Reads every row after the header: the good ones counted in pl->good,
 * the bad ones counted in ie->failed with their first IMPORT_ERRORS_MAX
 * problems in ie->e (which holds that many). False when a broken quote
 * cuts the file short (its problem kept), or when it has more than
 * pl->max_rows rows (pl->too_many set; reading stops there). */
bool import_read_rows(csv_reader_t *rd, import_plan_t *pl, import_errs_t *ie);

/* Writes ie's problems as JSON error objects, separated by commas. */
void import_render_errors(jw_t *w, const import_errs_t *ie);

/* Creates the good rows of body[0..len), read by pl, as leads of app made
 * at now (new ids), through store_lead_create_many, so only inside a
 * batch, which the caller ends uncommitted when this fails; *created
 * counts them. Each lead's lead.created events are recorded in the outbox
 * right after it (outbox.h), and its creation in its history by actor
 * (history.h), in the file's order, as a POST /leads records its own.
 * STORE_ERROR when the rows created are not the pl->good the first
 * reading counted. */
store_rc_t import_create_rows(store_t *s, int64_t app, int64_t now, const char *actor,
                              const import_plan_t *pl, const char *body, size_t len, int64_t *created);

#endif
