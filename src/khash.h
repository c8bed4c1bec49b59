/*
 * khash.h: just enough of klib's khash for h2o 2.2's <h2o/http2_internal.h>
 * to compile. That installed header includes "khash.h", which Debian's
 * libh2o-dev does not ship (h2o builds with its own copy of klib), and
 * src/http/guard.c needs the header for the HTTP/2 connection and stream
 * structures.
 *
 * The one type defined here has the layout of klib's hash table (which h2o
 * 2.2.5 was built with): bucket count, size, occupied and upper bound, then
 * the flag, key and value arrays. Two flag bits per bucket say "empty" (2)
 * and "deleted" (1); a bucket with neither holds a value. guard.c only walks
 * the buckets (kh_begin, kh_end, kh_exist, kh_val). A key lookup is not
 * provided: kh_get names a function that exists nowhere, so any use of it
 * (h2o_http2_conn_get_stream) fails to link instead of misreading the table.
 */
#ifndef CRMD_KHASH_SHIM_H
#define CRMD_KHASH_SHIM_H

#include <stdint.h>

typedef uint32_t khint32_t;
typedef uint64_t khint64_t;
typedef khint32_t khint_t;
typedef khint_t khiter_t;

#define KHASH_MAP_INIT_INT64(name, khval_t)                                                                  \
    typedef struct kh_##name##_s {                                                                           \
        khint_t n_buckets, size, n_occupied, upper_bound;                                                    \
        khint32_t *flags;                                                                                    \
        khint64_t *keys;                                                                                     \
        khval_t *vals;                                                                                       \
    } kh_##name##_t;

#define khash_t(name) kh_##name##_t

#define kh_begin(h) ((khint_t)0)
#define kh_end(h) ((h)->n_buckets)
#define kh_exist(h, i) ((((h)->flags[(i) >> 4] >> (((i)&0xfU) << 1)) & 3) == 0)
#define kh_val(h, i) ((h)->vals[i])

khint_t crmd_khash_lookup_is_not_provided(void);
#define kh_get(name, h, key) ((void)(h), (void)(key), crmd_khash_lookup_is_not_provided())

#endif
