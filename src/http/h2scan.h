/*
 * h2scan.h: a look at the HTTP/2 frames a read brings, before h2o decodes
 * them (guard.c). Two floods are found there: header blocks (HEADERS and
 * CONTINUATION payloads) over a number of bytes in one read, which HPACK
 * can make decode to hundreds of thousands of fields; and a header block
 * of more CONTINUATION frames than any client needs (h2o 2.2 takes any
 * number: a run of empty ones costs h2o a parse of each, about half a
 * core per connection, and never ends the block).
 */
#ifndef CRMD_HTTP_H2SCAN_H
#define CRMD_HTTP_H2SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CONTINUATION frames one header block may have. A block needs one only
 * past the peer's frame size (16 KiB at least): 32 carry over 512 KiB,
 * more than h2o takes in a request head (400 KiB). */
#define H2_CONTINUATIONS_MAX 32

/* What the scan of one connection carries from a read to the next. */
typedef struct h2_scan {
    /* Bytes from the input's start up to which whole frames were counted
     * (frames h2o left in the input, having stopped reading), so that
     * none is counted twice. */
    size_t seen;
    /* CONTINUATION frames so far in the header block open at seen. */
    uint32_t continuations;
    bool in_block; /* a header block is open at seen */
} h2_scan_t;

typedef enum { H2_SCAN_OK, H2_SCAN_HEADER_BYTES, H2_SCAN_CONTINUATIONS } h2_scan_result_t;

/* Looks at the whole frames of in[from..n) (from: where a frame starts),
 * with unparsed bytes of an unfinished header block h2o holds (block_open:
 * h2o holds one): H2_SCAN_HEADER_BYTES when their header block bytes and
 * unparsed are over max_bytes, H2_SCAN_CONTINUATIONS when a header block
 * has more than H2_CONTINUATIONS_MAX CONTINUATION frames (counted across
 * reads in st), else H2_SCAN_OK. st may be NULL (no count carried). */
h2_scan_result_t h2_scan(const uint8_t *in, size_t n, size_t from, size_t unparsed, bool block_open,
                         size_t max_bytes, h2_scan_t *st);

/* h2o took consumed bytes from the input's front after a scan. */
void h2_scan_taken(h2_scan_t *st, size_t consumed);

#endif
