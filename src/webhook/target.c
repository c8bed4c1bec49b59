/*
 * target.c: see target.h. URLs are read with libcurl's own URL parser,
 * the same that reads them when delivering, so the check and the delivery
 * never disagree about which host a URL names.
 */
#include "webhook/target.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <time.h>

static atomic_bool allow_private;

void webhook_allow_private(bool on)
{
    atomic_store(&allow_private, on);
}

bool webhook_private_allowed(void)
{
    return atomic_load(&allow_private);
}

/* --- the host's own addresses ---------------------------------------------------- */

/* A host with a public address on one of its interfaces would otherwise
 * let a webhook reach whatever listens on 0.0.0.0 there. The list is read
 * with getifaddrs at most every LOCAL_REFRESH_MS, so an address added to
 * an interface is refused within seconds without a system call on every
 * connection; LOCAL_MAX addresses are kept (more is a very unusual host). */
#define LOCAL_REFRESH_MS 5000
#define LOCAL_MAX 128

static struct {
    pthread_mutex_t mu;
    int64_t read_at; /* monotonic ms of the last read; 0: never read */
    int n;
    struct {
        int family;
        unsigned char b[16];
    } a[LOCAL_MAX];
} local = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Rereads the list when it is stale; called with local.mu held. */
static void local_refresh(void)
{
    int64_t now = mono_ms();
    if (local.read_at != 0 && now - local.read_at < LOCAL_REFRESH_MS) return;
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0) return; /* keeps the last list, and tries again next time */
    local.read_at = now;
    local.n = 0;
    for (const struct ifaddrs *i = ifs; i != NULL && local.n < LOCAL_MAX; i = i->ifa_next) {
        if (i->ifa_addr == NULL) continue;
        int f = i->ifa_addr->sa_family;
        if (f == AF_INET)
            memcpy(local.a[local.n].b, &((const struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
        else if (f == AF_INET6)
            memcpy(local.a[local.n].b, &((const struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
        else
            continue;
        local.a[local.n++].family = f;
    }
    freeifaddrs(ifs);
}

/* Whether the address (4 bytes for AF_INET, 16 for AF_INET6, network
 * order) is one of the host's own. */
static bool is_local(int family, const unsigned char *b)
{
    size_t len = family == AF_INET ? 4 : 16;
    bool found = false;
    pthread_mutex_lock(&local.mu);
    local_refresh();
    for (int i = 0; i < local.n && !found; i++)
        found = local.a[i].family == family && memcmp(local.a[i].b, b, len) == 0;
    pthread_mutex_unlock(&local.mu);
    return found;
}

bool webhook_addr_local(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return is_local(AF_INET, (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6)
        return is_local(AF_INET6, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
    return false;
}

/* --- refused ranges ------------------------------------------------------------------ */

/* An IPv4 address (host order) in a refused range, or the host's own. */
static bool v4_refused(uint32_t a)
{
    static const struct {
        uint32_t net, mask;
    } ranges[] = {
        {0x00000000, 0xff000000}, /* 0/8: unspecified, "this network" */
        {0x0a000000, 0xff000000}, /* 10/8: private */
        {0x64400000, 0xffc00000}, /* 100.64/10: CGNAT */
        {0x7f000000, 0xff000000}, /* 127/8: loopback */
        {0xa9fe0000, 0xffff0000}, /* 169.254/16: link-local */
        {0xac100000, 0xfff00000}, /* 172.16/12: private */
        {0xc0000000, 0xffffff00}, /* 192.0.0/24: protocol assignments */
        {0xc0000200, 0xffffff00}, /* 192.0.2/24: documentation (TEST-NET-1) */
        {0xc0a80000, 0xffff0000}, /* 192.168/16: private */
        {0xc6120000, 0xfffe0000}, /* 198.18/15: benchmarking */
        {0xc6336400, 0xffffff00}, /* 198.51.100/24: documentation (TEST-NET-2) */
        {0xcb007100, 0xffffff00}, /* 203.0.113/24: documentation (TEST-NET-3) */
        {0xe0000000, 0xf0000000}, /* 224/4: multicast */
        {0xf0000000, 0xf0000000}, /* 240/4: reserved, and the broadcast address */
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if ((a & ranges[i].mask) == ranges[i].net) return true;
    uint32_t n = htonl(a);
    return is_local(AF_INET, (const unsigned char *)&n);
}

/* Whether b starts with the len bytes of prefix. */
static bool starts(const unsigned char b[16], const unsigned char *prefix, size_t len)
{
    return memcmp(b, prefix, len) == 0;
}

static bool v6_refused(const unsigned char b[16])
{
    static const unsigned char zero[12] = {0};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    /* IPv4 inside IPv6 (mapped, compatible, NAT64; :: and ::1 are
     * "compatible" zeros and ones, refused as 0/8): the IPv4 decides. */
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, zero, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return v4_refused((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15]);
    if ((b[0] & 0xfe) == 0xfc) return true;                 /* fc00::/7: unique-local */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return true; /* fe80::/10: link-local */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return true; /* fec0::/10: site-local (deprecated) */
    if (b[0] == 0xff) return true;                          /* ff00::/8: multicast */
    /* Translation and tunnel prefixes lead to IPv4 (or other) networks
     * crmd cannot see into; none is a webhook receiver's address. */
    static const unsigned char nat64_local[6] = {0, 0x64, 0xff, 0x9b, 0, 1}; /* 64:ff9b:1::/48 */
    static const unsigned char translated[12] = {0, 0, 0,    0,    0, 0,
                                                 0, 0, 0xff, 0xff, 0, 0}; /* ::ffff:0:0:0/96 */
    static const unsigned char six_to_four[2] = {0x20, 0x02};             /* 2002::/16: 6to4 */
    static const unsigned char teredo[4] = {0x20, 0x01, 0, 0};            /* 2001::/32 */
    static const unsigned char doc[4] = {0x20, 0x01, 0x0d, 0xb8};         /* 2001:db8::/32 */
    static const unsigned char discard[8] = {1, 0, 0, 0, 0, 0, 0, 0};     /* 100::/64 */
    if (starts(b, nat64_local, sizeof nat64_local) || starts(b, translated, sizeof translated) ||
        starts(b, six_to_four, sizeof six_to_four) || starts(b, teredo, sizeof teredo) ||
        starts(b, doc, sizeof doc) || starts(b, discard, sizeof discard))
        return true;
    return is_local(AF_INET6, b);
}

bool webhook_port_refused(long port)
{
    return port != 80 && port != 443 && (port < 1024 || port > 65535);
}

bool webhook_addr_refused(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) return v4_refused(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6) return v6_refused(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
    return true;
}

void webhook_addr_text(const struct sockaddr *sa, char out[WEBHOOK_ADDR_TEXT_MAX])
{
    const void *a = sa->sa_family == AF_INET    ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                    : sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                                : NULL;
    if (a == NULL || inet_ntop(sa->sa_family, a, out, WEBHOOK_ADDR_TEXT_MAX) == NULL)
        snprintf(out, WEBHOOK_ADDR_TEXT_MAX, "(an address of family %d)", sa->sa_family);
}

webhook_target_rc_t webhook_target_resolved(const struct addrinfo *res, char *why, size_t whysz)
{
    if (webhook_private_allowed()) return TARGET_OK;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
        if (ai->ai_addr != NULL && webhook_addr_refused(ai->ai_addr)) {
            snprintf(why, whysz, "%s", WEBHOOK_REFUSED_TEXT);
            return TARGET_REFUSED;
        }
    return TARGET_OK;
}

/* Reads an IP literal host ("10.0.0.1", "[::1]") into ss; false for a
 * name. A zone ("[fe80::1%eth0]") is a literal of no allowed address. */
static bool literal(const char *host, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    /* inet_aton as well: it reads the short forms ("127.1", "0x7f.1"),
     * as the resolver does, which libcurl leaves as written when the host
     * ends in a dot ("127.1."). */
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1 || inet_aton(host, &v4->sin_addr) != 0) {
        v4->sin_family = AF_INET;
        return true;
    }
    size_t n = strlen(host);
    if (n < 2 || host[0] != '[' || host[n - 1] != ']') return false;
    char inner[WEBHOOK_HOST_MAX];
    snprintf(inner, sizeof inner, "%.*s", (int)(n - 2), host + 1);
    char *zone = strchr(inner, '%');
    if (zone != NULL) *zone = '\0';
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    v6->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, inner, &v6->sin6_addr) != 1 || zone != NULL)
        memset(&v6->sin6_addr, 0xff, sizeof v6->sin6_addr); /* refused: multicast */
    return true;
}

/* Reads part of h into out (outsz bytes); false when it is absent. */
static bool url_part(CURLU *h, CURLUPart part, char *out, size_t outsz)
{
    char *v = NULL;
    if (curl_url_get(h, part, &v, 0) != CURLUE_OK || v == NULL) return false;
    snprintf(out, outsz, "%s", v);
    curl_free(v);
    return true;
}

/* The URL's port, the scheme's default when it names none. */
static bool url_port(CURLU *h, char *out, size_t outsz)
{
    char *v = NULL;
    if (curl_url_get(h, CURLUPART_PORT, &v, CURLU_DEFAULT_PORT) != CURLUE_OK || v == NULL) return false;
    snprintf(out, outsz, "%s", v);
    curl_free(v);
    return true;
}

/* Whether host is a name a resolver can look up (RFC 1123, 2.1): labels
 * of 1 to 63 letters, digits and hyphens, none first or last in a label,
 * and one trailing dot at most. libcurl takes "-", "a..b" and "_" as
 * hosts, which no delivery could ever reach. An IPv4 literal, in any of
 * the forms the resolver reads ("127.1", "0x7f.1"), is such a name too. */
static bool labels_ok(const char *host)
{
    size_t len = strlen(host);
    if (len > 0 && host[len - 1] == '.') len--;
    if (len == 0) return false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? host[i] : '.';
        if (c == '.') {
            size_t n = i - start;
            if (n == 0 || n > 63 || host[start] == '-' || host[i - 1] == '-') return false;
            start = i + 1;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-')) {
            return false;
        }
    }
    return true;
}

/* The form of url: parsed into h, then its scheme, user info and host
 * (into host). TARGET_NAME when it is well formed, else TARGET_INVALID
 * with why. */
static webhook_target_rc_t check_form(CURLU *h, const char *url, char *host, size_t hostsz, char *why,
                                      size_t whysz)
{
    char scheme[16], user[8];
    if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK) {
        snprintf(why, whysz, "URL is not a valid URL");
        return TARGET_INVALID;
    }
    if (!url_part(h, CURLUPART_SCHEME, scheme, sizeof scheme) ||
        (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) ||
        strncasecmp(url, scheme, strlen(scheme)) != 0 || strncmp(url + strlen(scheme), "://", 3) != 0 ||
        url[strlen(scheme) + 3] == '/') {
        /* libcurl takes "http:/host" and "http:///host" too: the URL
         * must say "scheme://host" as written. */
        snprintf(why, whysz, "URL must be an http:// or https:// URL");
        return TARGET_INVALID;
    }
    if (url_part(h, CURLUPART_USER, user, sizeof user) ||
        url_part(h, CURLUPART_PASSWORD, user, sizeof user)) {
        snprintf(why, whysz, "URL must not hold a user name or password");
        return TARGET_INVALID;
    }
    if (!url_part(h, CURLUPART_HOST, host, hostsz) || host[0] == '\0') {
        snprintf(why, whysz, "URL must name a host");
        return TARGET_INVALID;
    }
    /* A longer host was cut by url_part: the checks below would read a
     * name it is not (a long name under localhost, cut before it). */
    if (strlen(host) > WEBHOOK_NAME_MAX) {
        snprintf(why, whysz, "URL's host must be at most 253 bytes");
        return TARGET_INVALID;
    }
    /* libcurl converts a name in Unicode to its xn-- form by the process's
     * locale, which is "C" in crmd (it never calls setlocale): such a name
     * would be taken and then fail every delivery with "bad/illegal
     * format", so it is refused here, the client told of the ASCII form. */
    for (const char *c = host; *c != '\0'; c++)
        if ((unsigned char)*c >= 0x80 || *c == '%') {
            snprintf(why, whysz, "URL's host must be ASCII: give an international name in its xn-- form");
            return TARGET_INVALID;
        }
    if (host[0] != '[' && !labels_ok(host)) {
        snprintf(why, whysz,
                 "URL's host must be a name of labels of letters, digits and hyphens (1 to 63 bytes each, "
                 "no hyphen first or last), or an IP address");
        return TARGET_INVALID;
    }
    return TARGET_NAME;
}

/* Whether host is localhost or a name under it (RFC 6761: they always
 * mean the loopback addresses, so they are known without a resolver),
 * a trailing dot or not, in any case. */
static bool names_loopback(const char *host)
{
    static const char name[] = "localhost";
    const size_t n = sizeof name - 1;
    size_t len = strlen(host);
    if (len > 0 && host[len - 1] == '.') len--;
    if (len < n || strncasecmp(host + len - n, name, n) != 0) return false;
    return len == n || host[len - n - 1] == '.';
}

webhook_target_rc_t webhook_target_check(const char *url, char *host, size_t hostsz, char *why, size_t whysz)
{
    CURLU *h = curl_url();
    if (h == NULL) {
        snprintf(why, whysz, "URL could not be read (out of memory)");
        return TARGET_INVALID;
    }
    webhook_target_rc_t rc = check_form(h, url, host, hostsz, why, whysz);
    char port_text[8];
    long port =
        rc == TARGET_NAME && url_port(h, port_text, sizeof port_text) ? strtol(port_text, NULL, 10) : 0;
    curl_url_cleanup(h);
    if (rc != TARGET_NAME || webhook_private_allowed()) return rc == TARGET_NAME ? TARGET_OK : rc;
    /* Without its trailing dots, which a resolver ignores: "127.0.0.1."
     * is that address, "localhost.." that name. */
    char bare[WEBHOOK_HOST_MAX];
    snprintf(bare, sizeof bare, "%s", host);
    for (size_t n = strlen(bare); n > 0 && bare[n - 1] == '.'; n--)
        bare[n - 1] = '\0';
    struct sockaddr_storage ss;
    bool is_literal = literal(bare, &ss);
    if ((is_literal && webhook_addr_refused((const struct sockaddr *)&ss)) ||
        (!is_literal && names_loopback(bare))) {
        snprintf(why, whysz, "%s", WEBHOOK_REFUSED_TEXT);
        return TARGET_REFUSED;
    }
    if (webhook_port_refused(port)) {
        snprintf(why, whysz, "URL's port must be 80, 443, or 1024 or above");
        return TARGET_REFUSED;
    }
    return is_literal ? TARGET_OK : TARGET_NAME;
}
