/*
 * etag.h: entity tags of lead and follow representations, and the
 * If-Match / If-None-Match lists they are compared with (RFC 9110 8.8.3,
 * 13.1.1, 13.1.2).
 *
 * A tag is strong: the first 16 bytes of the SHA-256 of the body the
 * resource's GET would answer, in hex and quoted, so it changes whenever
 * any byte of the representation does (a follow's derived "overdue"
 * included) and is the same on every process and backend. A leaf: it
 * knows no request, route or store.
 */
#ifndef CRMD_API_ETAG_H
#define CRMD_API_ETAG_H

#include <stdbool.h>
#include <stddef.h>

/* A tag with its quotes and NUL. */
#define API_ETAG_MAX 35
/* The longest If-Match or If-None-Match value read (the OpenAPI
 * document's bound); a longer one matches nothing. */
#define API_ETAG_LIST_MAX 1024

/* The tag of body[0..len) into out. */
void api_etag_of(const char *body, size_t len, char out[API_ETAG_MAX]);

/* OpenSSL's SHA-256, fetched from its providers once for the process (the
 * one-shot SHA256() and EVP_sha256() in a digest's init fetch it again on
 * every call, a few per cent of a GET's CPU); NULL if it cannot be had.
 * Shared, never freed. */
const struct evp_md_st *api_sha256(void);

/* The calling thread's SHA-256 context, begun afresh (NULL if it cannot
 * be had): one per thread, kept for the thread's life, because a context
 * made and freed per digest (EVP_Digest does so) was half of a tag's cost.
 * One digest at a time per thread: beginning another ends the last. */
struct evp_md_ctx_st *api_sha256_begin(void);

/* HMAC-SHA256 (RFC 2104) of msg[0..len) under key[0..klen), klen at most
 * SHA-256's block of 64 bytes, into out (32 bytes), on the calling
 * thread's SHA-256 context; false if the context cannot be had or klen is
 * larger. HMAC(), which fetches the digest and makes and frees a context
 * on every call, cost a tenth of a cursor page's CPU. */
bool api_hmac_sha256(const unsigned char *key, size_t klen, const unsigned char *msg, size_t len,
                     unsigned char out[32]);

/* Writes the n bytes at md as 2 * n lowercase hex digits into out (no
 * terminator): by hand, as snprintf's call per byte costs more than a
 * SHA-256 of a small body. */
void api_hex(const unsigned char *md, size_t n, char *out);

/* Whether the header value list[0..len) (a list of entity tags, or "*")
 * names etag: strong comparison for If-Match (a weak tag never matches),
 * weak for If-None-Match. A value that is not such a list matches
 * nothing. */
bool api_etag_match(const char *list, size_t len, const char *etag, bool weak);

#endif
