/*
 * csv.c: see csv.h.
 */
#include "model/csv.h"

#include <string.h>

#include "model/codec.h"
#include "model/decimal.h"
#include "model/timestamp.h"

static const char *const COLS[CSV_COLS] = {[CSV_UNIQUE_ID] = "unique_id",   [CSV_NAME] = "name",
                                           [CSV_SOURCE] = "source",         [CSV_ACCOUNT_ID] = "account_id",
                                           [CSV_CONTACT_ID] = "contact_id", [CSV_VALUE] = "value",
                                           [CSV_STAGE] = "stage",           [CSV_PROBABILITY] = "probability",
                                           [CSV_STATUS] = "status",         [CSV_CREATED_AT] = "created_at",
                                           [CSV_UPDATED_AT] = "updated_at"};

const char *csv_col_name(int col)
{
    return col >= 0 && col < CSV_COLS ? COLS[col] : "";
}

int csv_col_of(const char *name, size_t len)
{
    for (int i = 0; i < CSV_COLS; i++)
        if (strlen(COLS[i]) == len && memcmp(COLS[i], name, len) == 0) return i;
    return -1;
}

bool csv_col_read_only(int col)
{
    return col == CSV_UNIQUE_ID || col == CSV_CREATED_AT || col == CSV_UPDATED_AT;
}

/* --- writing ----------------------------------------------------------------- */

/* Whether a spreadsheet would read the cell as a formula once its leading
 * quotes were taken as text markers: ' * then =, +, - or @. */
static bool formula_like(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && s[i] == '\'')
        i++;
    return i < len && (s[i] == '=' || s[i] == '+' || s[i] == '-' || s[i] == '@');
}

void csv_write_cell(jw_t *w, const char *s, size_t len)
{
    bool quote = false;
    for (size_t i = 0; i < len && !quote; i++)
        quote = s[i] == ',' || s[i] == ';' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (quote) jw_lit(w, "\"");
    if (formula_like(s, len)) jw_lit(w, "'");
    if (!quote) {
        jw_raw(w, s, len);
        return;
    }
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '"') continue;
        jw_raw(w, s + from, i + 1 - from); /* the quote, then its double */
        jw_lit(w, "\"");
        from = i + 1;
    }
    jw_raw(w, s + from, len - from);
    jw_lit(w, "\"");
}

void csv_write_header(jw_t *w)
{
    for (int i = 0; i < CSV_COLS; i++) {
        if (i > 0) jw_lit(w, ",");
        jw_raw(w, COLS[i], strlen(COLS[i]));
    }
    jw_lit(w, "\r\n");
}

static void text_cell(jw_t *w, text_ref_t t)
{
    if (t.ptr != NULL) csv_write_cell(w, t.ptr, t.len);
}

static void time_cell(jw_t *w, int64_t ms)
{
    char b[TS_BUFSZ];
    jw_raw(w, b, ts_format(ms, b));
}

void csv_write_lead(jw_t *w, const lead_t *l)
{
    char b[DECIMAL_BUFSZ];
    jw_raw(w, l->id, strlen(l->id));
    jw_lit(w, ",");
    text_cell(w, l->name);
    jw_lit(w, ",");
    text_cell(w, l->source);
    jw_lit(w, ",");
    jw_raw(w, l->account_id, strlen(l->account_id));
    jw_lit(w, ",");
    jw_raw(w, l->contact_id, strlen(l->contact_id));
    jw_lit(w, ",");
    if (l->has_value) jw_raw(w, b, decimal_format(l->value_cents, b));
    jw_lit(w, ",");
    const char *stage = lead_stage_name(l->stage);
    jw_raw(w, stage, strlen(stage));
    jw_lit(w, ",");
    if (l->probability >= 0) jw_int(w, l->probability);
    jw_lit(w, ",");
    const char *status = lead_status_name(l->status);
    jw_raw(w, status, strlen(status));
    jw_lit(w, ",");
    time_cell(w, l->created_at);
    jw_lit(w, ",");
    time_cell(w, l->updated_at);
    jw_lit(w, "\r\n");
}

/* --- reading ----------------------------------------------------------------- */

void csv_reader_init(csv_reader_t *rd, const char *body, size_t len)
{
    memset(rd, 0, sizeof *rd);
    rd->p = body;
    rd->end = body + len;
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) rd->p += 3;
    rd->sep = ',';
}

void csv_reader_free(csv_reader_t *rd)
{
    jw_free(&rd->scratch);
}

char csv_detect_separator(const csv_reader_t *rd)
{
    bool comma = false, semi = false, quoted = false;
    for (const char *p = rd->p; p < rd->end; p++) {
        if (*p == '"') quoted = !quoted;
        if (quoted) continue;
        if (*p == '\r' || *p == '\n') break;
        if (*p == '\t') return 0;
        comma |= *p == ',';
        semi |= *p == ';';
    }
    if (comma && semi) return 0;
    return semi ? ';' : ',';
}

/* Whether p is at the end of a record (and steps over its line end). */
static bool line_end(csv_reader_t *rd)
{
    if (rd->p == rd->end) return true;
    if (*rd->p == '\n') {
        rd->p++;
        return true;
    }
    if (*rd->p == '\r') {
        rd->p++;
        if (rd->p < rd->end && *rd->p == '\n') rd->p++;
        return true;
    }
    return false;
}

/* Reads a quoted cell starting after its opening quote. Cells with doubled
 * quotes are copied into scratch; their place is kept as an offset (the
 * scratch may move) and made a pointer by csv_next. */
static csv_rc_t quoted_cell(csv_reader_t *rd, text_ref_t *cell, size_t *scratch_at)
{
    const char *start = rd->p;
    bool doubled = false;
    for (;;) {
        const char *q = memchr(rd->p, '"', (size_t)(rd->end - rd->p));
        if (q == NULL) return CSV_BAD_QUOTE;
        if (q + 1 < rd->end && q[1] == '"') {
            doubled = true;
            rd->p = q + 2;
            continue;
        }
        rd->p = q + 1;
        if (!doubled) {
            *cell = (text_ref_t){start, (size_t)(q - start)};
            *scratch_at = SIZE_MAX;
            return CSV_ROW;
        }
        *scratch_at = rd->scratch.len;
        size_t n = 0;
        for (const char *s = start; s < q; s++) {
            if (*s == '"') s++; /* the first of a doubled pair */
            jw_raw(&rd->scratch, s, 1);
            n++;
        }
        *cell = (text_ref_t){NULL, n};
        return CSV_ROW;
    }
}

/* Reads one cell at p, quoted or not. */
static csv_rc_t one_cell(csv_reader_t *rd, text_ref_t *cell, size_t *scratch_at)
{
    *scratch_at = SIZE_MAX;
    if (rd->p < rd->end && *rd->p == '"') {
        rd->p++;
        csv_rc_t rc = quoted_cell(rd, cell, scratch_at);
        if (rc != CSV_ROW) return rc;
        if (rd->p < rd->end && *rd->p != rd->sep && *rd->p != '\r' && *rd->p != '\n') return CSV_BAD_QUOTE;
        return CSV_ROW;
    }
    const char *start = rd->p;
    while (rd->p < rd->end && *rd->p != rd->sep && *rd->p != '\r' && *rd->p != '\n')
        rd->p++;
    *cell = (text_ref_t){start, (size_t)(rd->p - start)};
    return CSV_ROW;
}

csv_rc_t csv_next(csv_reader_t *rd)
{
    if (rd->p >= rd->end) return CSV_END;
    rd->row++;
    rd->cells = 0;
    rd->too_many = false;
    jw_reset(&rd->scratch);
    rd->blank = *rd->p == '\r' || *rd->p == '\n';
    if (rd->blank) {
        line_end(rd);
        return CSV_ROW;
    }
    size_t at[CSV_CELLS_MAX];
    for (;;) {
        text_ref_t cell;
        size_t scratch_at;
        csv_rc_t rc = one_cell(rd, &cell, &scratch_at);
        if (rc != CSV_ROW) {
            rd->p = rd->end; /* nothing after a broken quote can be trusted */
            return rc;
        }
        if (rd->cells < CSV_CELLS_MAX) {
            at[rd->cells] = scratch_at;
            rd->cell[rd->cells++] = cell;
        } else if (cell.len > 0) {
            /* Empty cells past the last kept are a spreadsheet's trailing
             * separators: dropped without a word, however many. */
            rd->too_many = true;
        }
        if (line_end(rd)) break;
        rd->p++; /* the separator */
    }
    if (rd->scratch.oom) return CSV_BAD_QUOTE;
    /* A row of empty cells only (",,,") is what a spreadsheet saves for a
     * row it formatted but left empty: blank, like an empty line. */
    rd->blank = !rd->too_many;
    for (int i = 0; i < rd->cells; i++) {
        if (at[i] != SIZE_MAX) rd->cell[i].ptr = rd->scratch.buf + at[i];
        rd->blank &= rd->cell[i].len == 0;
    }
    return CSV_ROW;
}

text_ref_t csv_unguard(text_ref_t cell)
{
    if (cell.len >= 2 && cell.ptr[0] == '\'' && formula_like(cell.ptr, cell.len))
        return (text_ref_t){cell.ptr + 1, cell.len - 1};
    return cell;
}
