/*
 * uuid.h: record ids.
 *
 * Ids are RFC 9562 version 7 UUIDs (48-bit ms timestamp, random rest), so
 * they sort by creation time; they travel as the 36-character lowercase
 * canonical text form.
 */
#ifndef CRMD_MODEL_UUID_H
#define CRMD_MODEL_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UUID_STRLEN 36
#define UUID_BUFSZ 37
/* The binary form: 16 bytes, most significant first (PostgreSQL's uuid). */
#define UUID_BYTES 16

/* Writes a new v7 UUID for the instant ms and a NUL into out. Random bits
 * come from OpenSSL's RAND_bytes. Within one thread, ids made for the same
 * millisecond still increase (the 12-bit rand_a field is used as a
 * counter seeded randomly), so ordering by id is ordering by creation.
 * Returns 0, or -1 if the random source failed. */
int uuid_v7(int64_t ms, char out[UUID_BUFSZ]);

/* Checks that s[0..len) is a canonical UUID (8-4-4-4-12 hex digits, any
 * case) and writes its lowercase form and a NUL into out. Returns true if
 * it is one. */
bool uuid_parse(const char *s, size_t len, char out[UUID_BUFSZ]);

/* Converts the text form s[0..len) (canonical, any case) to its 16 bytes.
 * Returns false, with out untouched, if s is not a canonical UUID. */
bool uuid_to_bytes(const char *s, size_t len, unsigned char out[UUID_BYTES]);

/* Writes the canonical lowercase text of the 16 bytes b and a NUL into out. */
void uuid_from_bytes(const unsigned char b[UUID_BYTES], char out[UUID_BUFSZ]);

#endif
