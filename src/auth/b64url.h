/*
 * b64url.h: base64url without padding (RFC 4648 section 5), as JWS and JWK
 * use it, strict on decoding so each byte string has one accepted text.
 */
#ifndef CRMD_AUTH_B64URL_H
#define CRMD_AUTH_B64URL_H

#include <stdbool.h>
#include <stddef.h>

/* The length of the unpadded base64url text for n bytes. */
size_t b64url_encoded_len(size_t n);

/* Encodes in[0..n) into out, which must hold b64url_encoded_len(n) bytes; no
 * NUL is written. Returns the number of bytes written. */
size_t b64url_encode(const unsigned char *in, size_t n, char *out);

/* Strictly decodes in[0..len) into out, which holds cap bytes. Rejects
 * characters outside the url alphabet, '=' padding, lengths no encoder
 * produces (len % 4 == 1) and non-zero unused trailing bits. Returns false
 * on any of those, or when the result would not fit cap. */
bool b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *out_len);

#endif
