/*
 * h2scan.c: see h2scan.h.
 */
#include "http/h2scan.h"

#define FRAME_HEADER 9
#define TYPE_HEADERS 1
#define TYPE_CONTINUATION 9
#define FLAG_END_HEADERS 4

h2_scan_result_t h2_scan(const uint8_t *in, size_t n, size_t from, size_t unparsed, bool block_open,
                         size_t max_bytes, h2_scan_t *st)
{
    size_t bytes = unparsed;
    /* A scan with nothing left over from the last, where h2o holds no
     * unfinished block: none is open (whatever h2o did since). */
    if (st != NULL && (st->seen == 0 || st->seen > n)) {
        st->seen = 0;
        if (!block_open) {
            st->in_block = false;
            st->continuations = 0;
        }
    }
    for (size_t at = from; at < n && n - at >= FRAME_HEADER;) {
        size_t len = (size_t)in[at] << 16 | (size_t)in[at + 1] << 8 | in[at + 2];
        if (n - at - FRAME_HEADER < len) break; /* not all here: h2o waits for it too */
        uint8_t type = in[at + 3], flags = in[at + 4];
        if (type == TYPE_HEADERS || type == TYPE_CONTINUATION) bytes += len;
        if (bytes > max_bytes) return H2_SCAN_HEADER_BYTES;
        size_t end = at + FRAME_HEADER + len;
        if (st != NULL && end > st->seen) {
            if (type == TYPE_HEADERS) {
                st->in_block = !(flags & FLAG_END_HEADERS);
                st->continuations = 0;
            } else if (type == TYPE_CONTINUATION && st->in_block) {
                if (++st->continuations > H2_CONTINUATIONS_MAX) return H2_SCAN_CONTINUATIONS;
                if (flags & FLAG_END_HEADERS) {
                    st->in_block = false;
                    st->continuations = 0;
                }
            }
            st->seen = end;
        }
        at = end;
    }
    return H2_SCAN_OK;
}

void h2_scan_taken(h2_scan_t *st, size_t consumed)
{
    st->seen = st->seen > consumed ? st->seen - consumed : 0;
}
