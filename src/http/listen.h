/*
 * listen.h: listening sockets, and the answers written straight to a
 * socket before any request was read. Used by server.c (the API's
 * listeners, connections over the cap), admin.c and guard.c (a refused
 * upload); it calls none of them.
 */
#ifndef CRMD_HTTP_LISTEN_H
#define CRMD_HTTP_LISTEN_H

#include <stddef.h>
#include <stdint.h>

/* 0 when nobody listens on host:port yet (a plain bind, so that a second
 * crmd does not share the port through SO_REUSEPORT) and no other crmd
 * process is starting on it (a claim held until this process ends), else
 * -1 with the reason on stderr. */
int http_address_free(const char *host, uint16_t port);

/* Gives up the claims http_address_free made: the process is stopping, its
 * listeners close. Main thread only, as http_address_free. */
void http_address_release(void);

/* A listening socket on host (a numeric address) and port, with
 * SO_REUSEPORT, non-blocking; -1 with the reason on stderr. */
int http_listen_socket(const char *host, uint16_t port);

/* An HTTP/1.1 503 written straight to a socket before any request was
 * read (a connection over the cap, a refused upload): JSON with detail (no
 * quotes in it), Retry-After: 1, Connection: close, and a request id of its
 * own in X-Request-Id and meta.requestId, as every answer has. Writes it
 * into buf (size bytes, at least HTTP_BUSY_MAX) and returns its length. */
#define HTTP_BUSY_MAX 768
size_t http_busy_response(char *buf, size_t size, const char *detail);

/* The same answer for another status (Retry-After only with a 503):
 * code, title and detail go into the JSON error as they are (no quotes in
 * them). */
size_t http_canned_error(char *buf, size_t size, int status, const char *code, const char *title,
                         const char *detail);

#endif
