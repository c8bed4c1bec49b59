/*
 * listen.c: see listen.h.
 */
#include "http/listen.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/reqid.h"

size_t http_busy_response(char *buf, size_t size, const char *detail)
{
    char id[HTTP_REQID_MAX + 1], body[384];
    reqid_generate(id);
    int blen =
        snprintf(body, sizeof body,
                 "{\"errors\":[{\"status\":\"503\",\"code\":\"service_unavailable\","
                 "\"title\":\"Service Unavailable\",\"detail\":\"%s\"}],\"meta\":{\"requestId\":\"%s\"}}",
                 detail, id);
    int n = snprintf(buf, size,
                     "HTTP/1.1 503 Service Unavailable\r\n"
                     "Content-Type: application/json\r\n"
                     "Retry-After: 1\r\n"
                     "X-Request-Id: %s\r\n"
                     "Connection: close\r\n"
                     "Content-Length: %d\r\n"
                     "\r\n%s",
                     id, blen, body);
    assert(blen > 0 && (size_t)blen < sizeof body && n > 0 && (size_t)n < size);
    return (size_t)n;
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
 * listens there already. Returns 0 when the address is free. */
int http_address_free(const char *host, uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t sslen = listen_address(host, port, &ss);
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
