/*
 * test_h2scan.c: the look at HTTP/2 frames before h2o decodes them
 * (http/h2scan.h): header block bytes per read, and CONTINUATION frames
 * per header block, counted once across reads.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "http/h2scan.h"

#define MAX_BYTES ((size_t)256 << 10)

/* Appends a frame of type and flags on stream 1 with len payload bytes
 * ('a') to buf at *n. */
static void put_frame(uint8_t *buf, size_t *n, uint8_t type, uint8_t flags, size_t len)
{
    uint8_t *p = buf + *n;
    p[0] = (uint8_t)(len >> 16);
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)len;
    p[3] = type;
    p[4] = flags;
    p[5] = p[6] = p[7] = 0;
    p[8] = 1;
    memset(p + 9, 'a', len);
    *n += 9 + len;
}

/* A header block: HEADERS and conts CONTINUATION frames of len bytes
 * each, the last with END_HEADERS (end) or none. */
static size_t block(uint8_t *buf, size_t conts, size_t len, bool end)
{
    size_t n = 0;
    put_frame(buf, &n, 1, conts == 0 && end ? 4 : 0, len);
    for (size_t i = 0; i < conts; i++)
        put_frame(buf, &n, 9, i == conts - 1 && end ? 4 : 0, len);
    return n;
}

Test(h2scan, a_block_of_32_continuations_passes)
{
    uint8_t *buf = malloc(64 * 1024);
    h2_scan_t st = {0};
    size_t n = block(buf, H2_CONTINUATIONS_MAX, 10, true);
    cr_assert_eq(h2_scan(buf, n, 0, 0, false, MAX_BYTES, &st), H2_SCAN_OK);
    cr_assert_not(st.in_block);
    cr_assert_eq(st.seen, n);
    free(buf);
}

Test(h2scan, the_33rd_continuation_is_a_flood)
{
    uint8_t *buf = malloc(64 * 1024);
    h2_scan_t st = {0};
    size_t n = block(buf, H2_CONTINUATIONS_MAX + 1, 0, false);
    cr_assert_eq(h2_scan(buf, n, 0, 0, false, MAX_BYTES, &st), H2_SCAN_CONTINUATIONS);
    free(buf);
}

Test(h2scan, empty_continuations_counted_across_reads)
{
    uint8_t *buf = malloc(64 * 1024);
    h2_scan_t st = {0};
    /* The block's HEADERS and 20 empty CONTINUATIONs, all taken by h2o. */
    size_t n = block(buf, 20, 0, false);
    cr_assert_eq(h2_scan(buf, n, 0, 0, true, MAX_BYTES, &st), H2_SCAN_OK);
    h2_scan_taken(&st, n);
    cr_assert_eq(st.seen, 0);
    cr_assert_eq(st.continuations, 20);
    /* 12 more: 32, the most. */
    n = 0;
    for (int i = 0; i < 12; i++)
        put_frame(buf, &n, 9, 0, 0);
    cr_assert_eq(h2_scan(buf, n, 0, 1, true, MAX_BYTES, &st), H2_SCAN_OK);
    h2_scan_taken(&st, n);
    /* One more. */
    n = 0;
    put_frame(buf, &n, 9, 0, 0);
    cr_assert_eq(h2_scan(buf, n, 0, 1, true, MAX_BYTES, &st), H2_SCAN_CONTINUATIONS);
    free(buf);
}

Test(h2scan, frames_left_in_the_input_are_not_counted_twice)
{
    uint8_t *buf = malloc(64 * 1024);
    h2_scan_t st = {0};
    size_t n = block(buf, 30, 0, false);
    cr_assert_eq(h2_scan(buf, n, 0, 0, false, MAX_BYTES, &st), H2_SCAN_OK);
    /* h2o stopped after the HEADERS frame and 10 CONTINUATIONs: the other
     * 20 are still in the input when more come; the scan sees all again. */
    h2_scan_taken(&st, 9 * 11);
    memmove(buf, buf + 9 * 11, n - 9 * 11);
    n -= 9 * 11;
    put_frame(buf, &n, 9, 0, 0);
    put_frame(buf, &n, 9, 4, 0);
    cr_assert_eq(h2_scan(buf, n, 0, 1, true, MAX_BYTES, &st), H2_SCAN_OK);
    cr_assert_not(st.in_block);
    free(buf);
}

Test(h2scan, a_new_block_starts_the_count_again)
{
    uint8_t *buf = malloc(64 * 1024);
    h2_scan_t st = {0};
    size_t n = block(buf, 30, 1, true);
    n += block(buf + n, 30, 1, true);
    cr_assert_eq(h2_scan(buf, n, 0, 0, false, MAX_BYTES, &st), H2_SCAN_OK);
    free(buf);
}

Test(h2scan, a_finished_block_without_leftovers_resets_the_count)
{
    uint8_t *buf = malloc(64 * 1024);
    h2_scan_t st = {.seen = 0, .continuations = 31, .in_block = true};
    size_t n = 0;
    put_frame(buf, &n, 9, 0, 0);
    put_frame(buf, &n, 9, 0, 0);
    /* h2o holds no unfinished block: the count left from before is stale. */
    cr_assert_eq(h2_scan(buf, n, 0, 0, false, MAX_BYTES, &st), H2_SCAN_OK);
    free(buf);
}

Test(h2scan, header_bytes_over_the_most_in_one_read)
{
    uint8_t *buf = malloc(300 * 1024);
    size_t n = 0;
    for (int i = 0; i < 17; i++)
        put_frame(buf, &n, 1, 5, 16384);
    cr_assert_eq(h2_scan(buf, n, 0, 0, false, MAX_BYTES, NULL), H2_SCAN_HEADER_BYTES);
    /* 16 frames of 16 KiB with 1 byte held unparsed: one over. */
    cr_assert_eq(h2_scan(buf, 16 * (9 + 16384), 0, 0, false, MAX_BYTES, NULL), H2_SCAN_OK);
    cr_assert_eq(h2_scan(buf, 16 * (9 + 16384), 0, 1, true, MAX_BYTES, NULL), H2_SCAN_HEADER_BYTES);
    /* A frame not all here is not counted. */
    cr_assert_eq(h2_scan(buf, 16 * (9 + 16384) + 100, 0, 0, false, MAX_BYTES, NULL), H2_SCAN_OK);
    free(buf);
}
