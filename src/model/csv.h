/*
 * csv.h: leads as CSV (RFC 4180, UTF-8), both ways, with no HTTP and no
 * store: the export's rows, and a reader of an import's records.
 *
 * Writing: a header row of the attribute names in the model's order, then
 * one row per lead, each ended by CRLF. A cell is quoted when it holds the
 * separator, a quote, CR or LF; quotes are doubled. A cell that a
 * spreadsheet would run as a formula (one starting with =, +, - or @,
 * after any number of ') gets one more ' in front, which the reader takes
 * off again, so an export imports back to the same text.
 *
 * Reading: a csv_reader_t walks a whole body held by the caller; the cells
 * of the record it returns point into that body, or into the reader's own
 * buffer for a quoted cell with doubled quotes, and stay valid until the
 * next call.
 */
#ifndef CRMD_MODEL_CSV_H
#define CRMD_MODEL_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "model/jsonw.h"
#include "model/record.h"

/* The attributes a CSV row holds, in the model's order (the export's
 * columns), and their number. */
enum csv_col {
    CSV_UNIQUE_ID,
    CSV_NAME,
    CSV_SOURCE,
    CSV_ACCOUNT_ID,
    CSV_CONTACT_ID,
    CSV_VALUE,
    CSV_STAGE,
    CSV_PROBABILITY,
    CSV_STATUS,
    CSV_CREATED_AT,
    CSV_UPDATED_AT,
    CSV_COLS
};

/* The column's attribute name ("unique_id", ...). */
const char *csv_col_name(int col);
/* The column named name[0..len) (exactly), or -1. */
int csv_col_of(const char *name, size_t len);
/* Whether the import ignores the column (unique_id, created_at, updated_at). */
bool csv_col_read_only(int col);

/* Appends the header row. */
void csv_write_header(jw_t *w);
/* Appends one lead's row. */
void csv_write_lead(jw_t *w, const lead_t *lead);
/* Appends one cell (no separator, no line end). */
void csv_write_cell(jw_t *w, const char *s, size_t len);

/* The most cells a record may have. */
#define CSV_CELLS_MAX 64

typedef enum csv_rc {
    CSV_ROW = 0,  /* a record was read */
    CSV_END,      /* no record is left */
    CSV_BAD_QUOTE /* a quoted cell is not closed, or text follows its closing quote */
} csv_rc_t;

typedef struct csv_reader {
    const char *p, *end;
    char sep;   /* ',' or ';' */
    int row;    /* the last record's row, as a spreadsheet numbers it (from 1) */
    int cells;  /* its number of cells */
    bool blank; /* it was an empty line, or held empty cells only */
    text_ref_t cell[CSV_CELLS_MAX];
    bool too_many; /* it had a non-empty cell past CSV_CELLS_MAX (the rest are dropped) */
    jw_t scratch;  /* unquoted copies of cells with doubled quotes */
} csv_reader_t;

/* Starts reading body[0..len): an optional UTF-8 BOM is skipped; sep is
 * left ','. Free with csv_reader_free. */
void csv_reader_init(csv_reader_t *rd, const char *body, size_t len);
void csv_reader_free(csv_reader_t *rd);

/* The separator of the header row at rd's position: ',' or ';' when the
 * row (outside quotes) holds one of them and not the other, ',' when it
 * holds neither, and 0 when it holds both or a tab (which is refused). */
char csv_detect_separator(const csv_reader_t *rd);

/* Reads the next record (CR LF, LF or CR ends one, except inside quotes). */
csv_rc_t csv_next(csv_reader_t *rd);

/* Undoes the export's formula guard on a cell: one ' is taken off a cell
 * that starts with one or more ' and then =, +, - or @. */
text_ref_t csv_unguard(text_ref_t cell);

#endif
