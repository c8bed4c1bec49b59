/*
 * reqid.h: request ids (X-Request-Id).
 *
 * Every answer carries one, those written before a request was read
 * (server.c's refusals) included. A client's own id is kept when it is 1..HTTP_REQID_MAX characters of
 * letters, digits and -_.:~ (the OpenAPI document's rule); anything else is
 * replaced by a generated one, never refused, so a client cannot put
 * arbitrary bytes into the log or an error body through it. A generated id
 * is unique without a system call or a lock: a random prefix drawn once per
 * process, a number for the calling thread and that thread's own sequence
 * number.
 */
#ifndef CRMD_HTTP_REQID_H
#define CRMD_HTTP_REQID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_REQID_MAX 128

/* Whether s[0..n) is a request id crmd keeps. */
bool reqid_valid(const char *s, size_t n);

/* Writes a new id into out (at least HTTP_REQID_MAX + 1 bytes,
 * terminated); returns its length. The first call draws the process's
 * prefix. */
size_t reqid_generate(char *out);

#endif
