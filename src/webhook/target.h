/*
 * target.h: which URLs a webhook may deliver to.
 *
 * A webhook's target is an http or https URL with a host and no user
 * info. Unless private targets are allowed (--webhook-allow-private), its
 * address must not be one that reaches into the server's own network:
 * private (10/8, 172.16/12, 192.168/16), loopback, link-local,
 * unspecified, CGNAT (100.64/10), unique-local (fc00::/7), multicast, or
 * reserved or documentation (192.0.2/24, 198.51.100/24, 203.0.113/24,
 * 2001:db8::/32), in IPv4, IPv6, and IPv4 inside IPv6 (mapped
 * ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64 64:ff9b::/96 decided by the
 * IPv4; translated ::ffff:0:a.b.c.d, local NAT64 64:ff9b:1::/48, 6to4
 * 2002::/16, Teredo 2001::/32 and discard 100::/64 refused whole), nor
 * any address of the host's own interfaces; and its port must be 80, 443
 * or 1024 and above. The API checks the form, the port, an IP literal and
 * localhost and the names under it (RFC 6761: always loopback) when a
 * webhook is created or changed (webhook_target_check), then resolves any
 * other name, off its event loop (api/resolve.h), and checks what it
 * resolved to (webhook_target_resolved); a name that does not resolve
 * then is taken. The sender checks every address on every connection,
 * after resolution (webhook_addr_refused), so a name that resolves to
 * 127.0.0.1 later, or did not resolve in time, is refused then.
 *
 * Thread-safe: the setting is made once before serving, then only read;
 * the list of the host's addresses is guarded by a mutex.
 */
#ifndef CRMD_WEBHOOK_TARGET_H
#define CRMD_WEBHOOK_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct addrinfo;

/* Room for a host name (253 bytes) or an address literal, with its NUL. */
#define WEBHOOK_HOST_MAX 256
/* The longest host a URL may name (a DNS name's longest). */
#define WEBHOOK_NAME_MAX 253
/* Room for an address as text ("ffff:...:255.255.255.255"), with its NUL. */
#define WEBHOOK_ADDR_TEXT_MAX 64

/* Allows private targets (--webhook-allow-private); off by default. */
void webhook_allow_private(bool on);
bool webhook_private_allowed(void);

typedef enum webhook_target_rc {
    TARGET_OK,      /* allowed as it is: an allowed address, or any target with private ones allowed */
    TARGET_NAME,    /* a well-formed URL whose host is a name: the sender checks its addresses */
    TARGET_INVALID, /* not a URL crmd delivers to: *why says what is wrong */
    TARGET_REFUSED  /* its port or address literal is not allowed: *why says which (not the address) */
} webhook_target_rc_t;

/* Checks url (NUL-terminated): its form, and its host when that is an IP
 * literal. On TARGET_NAME the host goes to host (hostsz bytes); on
 * TARGET_INVALID or TARGET_REFUSED a sentence for the client goes to why
 * (whysz bytes). */
webhook_target_rc_t webhook_target_check(const char *url, char *host, size_t hostsz, char *why, size_t whysz);

/* Checks the addresses a target's name resolved to (a getaddrinfo list)
 * when a webhook is created or changed: TARGET_REFUSED, with why, when
 * any of them is refused (webhook_addr_refused, the sender's own test),
 * else TARGET_OK. Private targets allowed, every list is TARGET_OK. */
webhook_target_rc_t webhook_target_resolved(const struct addrinfo *res, char *why, size_t whysz);

/* What a client (API answer, delivery log) is told of a refused address;
 * the address itself goes only to the server's log. */
#define WEBHOOK_REFUSED_TEXT "the target's address is not allowed"

/* Whether a webhook may not use port (1..65535): only 80, 443 and 1024 and
 * above are allowed, whatever webhook_private_allowed says. */
bool webhook_port_refused(long port);

/* Whether sa is one of the addresses of the host's own interfaces (read at
 * most every few seconds, cached; any thread). */
bool webhook_addr_local(const struct sockaddr *sa);

/* Whether a webhook may not connect to sa (any family but IPv4 and IPv6 is
 * refused), whatever webhook_private_allowed says: the caller decides. */
bool webhook_addr_refused(const struct sockaddr *sa);

/* Writes sa's address as text into out (WEBHOOK_ADDR_TEXT_MAX bytes). */
void webhook_addr_text(const struct sockaddr *sa, char out[WEBHOOK_ADDR_TEXT_MAX]);

#endif
