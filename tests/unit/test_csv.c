/*
 * test_csv.c: CSV cells and records both ways (model/csv.c): quoting, the
 * formula guard and its undoing, BOM, line ends, quoted newlines, doubled
 * quotes, separators, broken quotes.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "model/csv.h"

static void expect_cell(const char *in, const char *want)
{
    jw_t w = {0};
    csv_write_cell(&w, in, strlen(in));
    cr_expect(w.len == strlen(want) && memcmp(w.buf, want, w.len) == 0, "%s: got %.*s, want %s", in,
              (int)w.len, w.buf, want);
    jw_free(&w);
}

Test(csv, cells_are_quoted_only_when_they_must_be)
{
    expect_cell("plain text", "plain text");
    expect_cell("a,b", "\"a,b\"");
    expect_cell("a;b", "\"a;b\"");
    expect_cell("say \"hi\"", "\"say \"\"hi\"\"\"");
    expect_cell("two\r\nlines", "\"two\r\nlines\"");
    expect_cell("", "");
}

Test(csv, formula_cells_get_one_more_quote)
{
    expect_cell("=1+1", "'=1+1");
    expect_cell("+1", "'+1");
    expect_cell("-1", "'-1");
    expect_cell("@x", "'@x");
    expect_cell("'=x", "''=x");
    expect_cell("'x", "'x");
    expect_cell("x=1", "x=1");
    expect_cell("=a,b", "\"'=a,b\"");
}

static text_ref_t ref(const char *s)
{
    return (text_ref_t){s, strlen(s)};
}

static void expect_text(text_ref_t t, const char *want)
{
    cr_expect(t.len == strlen(want) && memcmp(t.ptr, want, t.len) == 0, "got %.*s, want %s", (int)t.len,
              t.ptr, want);
}

Test(csv, unguarding_undoes_exactly_the_guard)
{
    const char *texts[] = {"=1+1", "'=x", "''@y", "'plain", "-", "'", "a"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        jw_t w = {0};
        csv_write_cell(&w, texts[i], strlen(texts[i]));
        expect_text(csv_unguard((text_ref_t){w.buf, w.len}), texts[i]);
        jw_free(&w);
    }
    expect_text(csv_unguard(ref("'plain")), "'plain");
}

Test(csv, records_end_at_any_line_end_but_not_inside_quotes)
{
    const char body[] = "\xEF\xBB\xBFname;source\r\n\"two\nlines\";\"a \"\"q\"\"\"\rlast;x\n\n;";
    csv_reader_t rd;
    csv_reader_init(&rd, body, sizeof body - 1);
    cr_assert_eq(csv_detect_separator(&rd), ';');
    rd.sep = ';';
    cr_assert_eq(csv_next(&rd), CSV_ROW);
    cr_assert_eq(rd.cells, 2);
    expect_text(rd.cell[0], "name");
    cr_assert_eq(csv_next(&rd), CSV_ROW);
    cr_assert_eq(rd.row, 2);
    expect_text(rd.cell[0], "two\nlines");
    expect_text(rd.cell[1], "a \"q\"");
    cr_assert_eq(csv_next(&rd), CSV_ROW);
    expect_text(rd.cell[0], "last");
    cr_assert_eq(csv_next(&rd), CSV_ROW);
    cr_expect(rd.blank);
    cr_assert_eq(csv_next(&rd), CSV_ROW);
    cr_assert_eq(rd.row, 5);
    cr_assert_eq(rd.cells, 2);
    cr_expect_eq(rd.cell[0].len, 0);
    cr_expect_eq(rd.cell[1].len, 0);
    cr_expect_eq(csv_next(&rd), CSV_END);
    csv_reader_free(&rd);
}

Test(csv, separators_are_detected_or_refused)
{
    struct {
        const char *header;
        char want;
    } cases[] = {{"name,value", ','}, {"name;value", ';'}, {"name", ','},       {"\"a;b\",c", ','},
                 {"name;va,lue", 0},  {"name\tvalue", 0},  {"name\r\nx;y", ','}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        csv_reader_t rd;
        csv_reader_init(&rd, cases[i].header, strlen(cases[i].header));
        cr_expect_eq(csv_detect_separator(&rd), cases[i].want, "%s", cases[i].header);
        csv_reader_free(&rd);
    }
}

Test(csv, broken_quotes_are_reported)
{
    const char *bodies[] = {"name\n\"never closed", "name\n\"closed\"then text"};
    for (size_t i = 0; i < 2; i++) {
        csv_reader_t rd;
        csv_reader_init(&rd, bodies[i], strlen(bodies[i]));
        cr_assert_eq(csv_next(&rd), CSV_ROW);
        cr_expect_eq(csv_next(&rd), CSV_BAD_QUOTE, "%s", bodies[i]);
        cr_expect_eq(rd.row, 2);
        cr_expect_eq(csv_next(&rd), CSV_END);
        csv_reader_free(&rd);
    }
}

Test(csv, a_lead_row_renders_values_as_the_json_does)
{
    lead_t l = {.id = "019bb1c1-6440-7b27-94e9-a13c6f80d2e4",
                .name = ref("Deal"),
                .account_id = "7d3c1e52-9a4b-4f0e-8c26-5b1d9e7a3f40",
                .has_value = true,
                .value_cents = 1250050,
                .stage = STAGE_QUALIFIED,
                .probability = -1,
                .status = LEAD_LOST,
                .created_at = 0,
                .updated_at = 1};
    jw_t w = {0};
    csv_write_lead(&w, &l);
    const char *want = "019bb1c1-6440-7b27-94e9-a13c6f80d2e4,Deal,,7d3c1e52-9a4b-4f0e-8c26-5b1d9e7a3f40,,"
                       "12500.5,qualified,,lost,1970-01-01T00:00:00.000Z,1970-01-01T00:00:00.001Z\r\n";
    cr_expect(w.len == strlen(want) && memcmp(w.buf, want, w.len) == 0, "%.*s", (int)w.len, w.buf);
    jw_free(&w);
}
