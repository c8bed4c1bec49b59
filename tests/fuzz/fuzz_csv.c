/*
 * fuzz_csv.c: CSV both ways (model/csv.c) and an import's reading
 * (api/import.h) on any bytes.
 *
 * The input is a CSV body, read record by record with the separator the
 * header calls for: every cell lies within the body or the reader's own
 * buffer, rows count up by one, and each cell written back
 * (csv_write_cell) reads back to the same text once its guard is undone.
 * Then the import reads it as POST /leads/import does: good and bad rows
 * never add up to more than the records read, and every problem has a
 * pointer into the rows.
 */
#include <stdlib.h>
#include <string.h>

#include "api/import.h"
#include "common.h"
#include "model/csv.h"

/* Writes cell and reads it back: the same text. */
static void round_trip(text_ref_t cell)
{
    jw_t w = {0};
    csv_write_cell(&w, cell.ptr, cell.len);
    jw_lit(&w, "\n");
    csv_reader_t rd;
    csv_reader_init(&rd, w.buf, w.len);
    /* A BOM at the start would be taken as one: only when the cell has one. */
    bool bom = cell.len >= 3 && memcmp(cell.ptr, "\xEF\xBB\xBF", 3) == 0;
    csv_rc_t rc = csv_next(&rd);
    FUZZ_CHECK(rc == CSV_ROW, "a written cell does not read back (rc %d)", rc);
    text_ref_t back = csv_unguard(rd.cells > 0 ? rd.cell[0] : (text_ref_t){"", 0});
    if (!bom && (rd.cells == 1 || cell.len == 0))
        FUZZ_CHECK(back.len == cell.len && memcmp(back.ptr, cell.ptr, cell.len) == 0,
                   "cell %.*s reads back as %.*s", (int)cell.len, cell.ptr, (int)back.len, back.ptr);
    csv_reader_free(&rd);
    jw_free(&w);
}

static void walk(const char *body, size_t len)
{
    csv_reader_t rd;
    csv_reader_init(&rd, body, len);
    char sep = csv_detect_separator(&rd);
    rd.sep = sep != 0 ? sep : ',';
    int row = 0;
    while (csv_next(&rd) == CSV_ROW) {
        FUZZ_CHECK(rd.row == ++row, "row %d after %d", rd.row, row - 1);
        FUZZ_CHECK(rd.cells <= CSV_CELLS_MAX, "%d cells", rd.cells);
        for (int i = 0; i < rd.cells; i++) {
            const char *p = rd.cell[i].ptr;
            bool in_body = p >= body && p + rd.cell[i].len <= body + len;
            bool in_scratch = rd.scratch.buf != NULL && p >= rd.scratch.buf &&
                              p + rd.cell[i].len <= rd.scratch.buf + rd.scratch.len;
            FUZZ_CHECK(rd.cell[i].len == 0 || in_body || in_scratch, "cell %d out of bounds", i);
            if (rd.cell[i].len > 0 && rd.cell[i].len < 512 && !rd.blank) round_trip(rd.cell[i]);
        }
    }
    csv_reader_free(&rd);
}

static void import_reading(const char *body, size_t len)
{
    csv_reader_t rd;
    csv_reader_init(&rd, body, len);
    import_plan_t pl = {0};
    verrs_t head = {0};
    import_read_header(&rd, &pl, &head);
    if (head.n == 0) {
        import_errs_t ie = {.e = malloc(IMPORT_ERRORS_MAX * sizeof *ie.e)};
        FUZZ_CHECK(ie.e != NULL, "out of memory");
        import_read_rows(&rd, &pl, &ie);
        FUZZ_CHECK(pl.good + ie.failed <= rd.row, "%lld good and %lld bad of %d rows", (long long)pl.good,
                   (long long)ie.failed, rd.row);
        for (int i = 0; i < ie.n; i++)
            FUZZ_CHECK(strncmp(ie.e[i].pointer, "/rows/", 6) == 0, "pointer %s", ie.e[i].pointer);
        free(ie.e);
    }
    csv_reader_free(&rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    walk((const char *)data, size);
    import_reading((const char *)data, size);
    return 0;
}
