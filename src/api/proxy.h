/*
 * proxy.h: who the client is when crmd runs behind trusted proxies.
 *
 * crmd normally listens on loopback behind a TLS-terminating proxy, so the
 * connection's peer is the proxy. The operator names the proxies it trusts
 * (--trusted-proxy CIDR); a request whose peer is one of them is taken to
 * come from the right-most address of its X-Forwarded-For list that is not
 * a trusted proxy (each proxy appends the address it received from, so
 * what lies to the right of the first untrusted hop was written by trusted
 * proxies and what lies to the left by the client, who may lie). The
 * client's address keys the limit on failed authentication (ratelimit.h).
 *
 * The table of trusted ranges is set once, before serving, and only read
 * afterwards, by every thread.
 */
#ifndef CRMD_API_PROXY_H
#define CRMD_API_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "h2o.h"

/* An address, IPv6 or IPv4 (as ::ffff:a.b.c.d); all zero when unknown. */
typedef struct proxy_addr {
    uint8_t b[16];
} proxy_addr_t;

/* At most this many trusted ranges. */
#define PROXY_MAX 64
/* At most this many X-Forwarded-For entries are looked at, right to left;
 * a request forwarded through more trusted proxies than that is taken to
 * come from the last one looked at. */
#define PROXY_MAX_HOPS 32

/* Adds the comma-separated ranges of list ("10.0.0.0/8, ::1", a bare
 * address is a range of one) to the trusted ones. -1 with the reason in
 * err (errsz bytes) when one is not a range, or there are too many. */
int proxy_trust(const char *list, char *err, size_t errsz);
/* Forgets every trusted range. */
void proxy_reset(void);
/* How many ranges are trusted. */
size_t proxy_count(void);
/* The trusted ranges as text ("10.0.0.0/8, ::1/128"; "" for none). */
void proxy_describe(char *buf, size_t size);

/* The address of a socket address (AF_INET, AF_INET6); false for others. */
bool proxy_addr_of(const struct sockaddr *sa, proxy_addr_t *out);
/* Parses one address as X-Forwarded-For writes it: IPv4, IPv6, IPv6 in
 * brackets, any of them with a :port. False when it is none of these. */
bool proxy_addr_parse(const char *s, size_t len, proxy_addr_t *out);
/* Whether a is in a trusted range. */
bool proxy_trusted(const proxy_addr_t *a);

/* The client of a request from peer whose X-Forwarded-For headers are
 * xff[0..n) (in the order received): peer itself unless it is trusted;
 * else the right-most listed address that is not trusted; if an entry is
 * not an address, the trusted hop to its right (who wrote it); if every
 * entry is trusted, the left-most. */
void proxy_client(const proxy_addr_t *peer, const h2o_iovec_t *xff, size_t n, proxy_addr_t *client);

/* The key a client is limited by: an IPv4 address whole, an IPv6 address
 * by its /64 (one subscriber's usual share); never both words zero. */
void proxy_limit_key(const proxy_addr_t *a, uint64_t key[2]);

/* Writes a as text (at least INET6_ADDRSTRLEN bytes). */
void proxy_addr_format(const proxy_addr_t *a, char *buf, size_t size);

#endif
