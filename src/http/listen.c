/*
 * listen.c: see listen.h.
 */
#include "http/listen.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "http/reqid.h"

size_t http_canned_error(char *buf, size_t size, int status, const char *code, const char *title,
                         const char *detail)
{
    char id[HTTP_REQID_MAX + 1], body[384];
    reqid_generate(id);
    int blen =
        snprintf(body, sizeof body,
                 "{\"errors\":[{\"status\":\"%d\",\"code\":\"%s\",\"title\":\"%s\",\"detail\":\"%s\"}],"
                 "\"meta\":{\"requestId\":\"%s\"}}",
                 status, code, title, detail, id);
    int n = snprintf(buf, size,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: application/json\r\n"
                     "%s"
                     "X-Request-Id: %s\r\n"
                     "Connection: close\r\n"
                     "Content-Length: %d\r\n"
                     "\r\n%s",
                     status, title, status == 503 ? "Retry-After: 1\r\n" : "", id, blen, body);
    assert(blen > 0 && (size_t)blen < sizeof body && n > 0 && (size_t)n < size);
    return (size_t)n;
}

size_t http_busy_response(char *buf, size_t size, const char *detail)
{
    return http_canned_error(buf, size, 503, "service_unavailable", "Service Unavailable", detail);
}

/* Fills ss with cfg's address; returns its length, or 0 if it is not a
 * numeric IPv4 or IPv6 address. */
static socklen_t listen_address(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        return sizeof *sin;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        return sizeof *sin6;
    }
    return 0;
}

/* SO_REUSEPORT lets every thread have its own listener, but it would also
 * let a second crmd share the port and take a share of the connections,
 * serving them from another database. A plain bind first fails if anyone
 * listens there already; two crmd processes starting at the same moment
 * could both pass it before either listens, so each also claims the
 * address in the abstract namespace of Unix sockets ("crmd-listen HOST
 * PORT"): only one process can hold that name, and the kernel drops it
 * when the process ends, however it ends, or when it starts to stop
 * (http_address_release), so that a new crmd can start while this one
 * drains, as it could before. A claim that cannot be made for another
 * reason (no such socket family) leaves the plain bind alone. */
#define CLAIMS_MAX 4
static int claims[CLAIMS_MAX];
static int n_claims;

/* Whether the claim on sa is held by a crmd: a socket that listens on the
 * name (a crmd's claim does) and belongs to this user. Linux lets only
 * sockets of one user share a port through SO_REUSEPORT, so a claim of
 * another user's, or one that does not listen, cannot be a crmd about to
 * share the port: it is not honoured (else anyone could keep crmd from
 * starting on a port only it may bind), and the plain bind decides. A
 * claim whose backlog is full is taken for a crmd's. */
static bool claim_is_crmd(const struct sockaddr_un *sa, socklen_t salen)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return true;
    bool crmd = true;
    if (connect(fd, (const struct sockaddr *)sa, salen) == 0) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) crmd = cred.uid == geteuid();
    } else if (errno == ECONNREFUSED) {
        crmd = false;
    }
    close(fd);
    return crmd;
}

/* ss: host:port as listen_address parsed it. */
static int claim_address(const char *host, uint16_t port, const struct sockaddr_storage *ss)
{
    /* The address as the kernel reads it, so that two spellings of one
     * address make one name. */
    char addr[INET6_ADDRSTRLEN];
    const void *raw = ss->ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                                               : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (n_claims == CLAIMS_MAX || inet_ntop(ss->ss_family, raw, addr, sizeof addr) == NULL) return 0;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int len = snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "crmd-listen %s %u", addr, port);
    if (len < 0 || (size_t)len >= sizeof sa.sun_path - 1) {
        close(fd);
        return 0;
    }
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
    if (bind(fd, (struct sockaddr *)&sa, salen) != 0 || listen(fd, 4) != 0) {
        int e = errno;
        close(fd);
        if (e != EADDRINUSE) return 0;
        if (!claim_is_crmd(&sa, salen)) {
            fprintf(stderr, "crmd: %s:%u is claimed by a socket that is not a crmd's of this user: ignored\n",
                    host, port);
            return 0;
        }
        fprintf(stderr, "crmd: cannot listen on %s:%u: address in use by another crmd, starting or serving\n",
                host, port);
        return -1;
    }
    claims[n_claims++] = fd;
    return 0;
}

void http_address_release(void)
{
    for (int i = 0; i < n_claims; i++)
        close(claims[i]);
    n_claims = 0;
}

/* Returns 0 when the address is free. */
int http_address_free(const char *host, uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t sslen = listen_address(host, port, &ss);
    if (sslen != 0 && port != 0 && claim_address(host, port, &ss) != 0) return -1;
    int fd = sslen ? socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
    if (fd < 0) return -1;
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on); /* TIME_WAIT is fine */
    int rc = bind(fd, (struct sockaddr *)&ss, sslen);
    if (rc != 0) fprintf(stderr, "crmd: cannot listen on %s:%u: %s\n", host, port, strerror(errno));
    close(fd);
    return rc;
}

int http_listen_socket(const char *host, uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t sslen = listen_address(host, port, &ss);
    if (sslen == 0) {
        fprintf(stderr, "crmd: '%s' is not a numeric IP address\n", host);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, SOMAXCONN) != 0) {
        fprintf(stderr, "crmd: cannot listen on %s:%u: %s\n", host, port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}
