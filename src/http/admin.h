/*
 * admin.h: the admin listener (--admin-listen): an address of its own,
 * served by a thread of its own (admin.c).
 */
#ifndef CRMD_HTTP_ADMIN_H
#define CRMD_HTTP_ADMIN_H

#include <stdatomic.h>
#include <stdint.h>

#include "h2o.h"

/* Listens on host:port (a numeric address; host NULL: no admin listener,
 * 0) and serves every request there with handle(req, arg) on a thread of
 * its own, until *stopping is set. 0, or -1 with the reason on stderr. */
int http_admin_start(const char *host, uint16_t port, void (*handle)(h2o_req_t *req, void *arg), void *arg,
                     const atomic_int *stopping);

/* Waits for the admin thread to end (after *stopping was set). */
void http_admin_stop(void);

#endif
