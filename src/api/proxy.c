/*
 * proxy.c: see proxy.h.
 */
#include "api/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* A range: an address (IPv4 as IPv4-mapped IPv6) and how many of its
 * leading bits count (an IPv4 /n is a /(96 + n)). */
typedef struct range {
    proxy_addr_t a;
    int bits;
} range_t;

static struct {
    range_t r[PROXY_MAX];
    size_t n;
} P;

static const uint8_t V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool is_v4(const proxy_addr_t *a)
{
    return memcmp(a->b, V4_MAPPED, sizeof V4_MAPPED) == 0;
}

static void from_v4(const void *in4, proxy_addr_t *out)
{
    memcpy(out->b, V4_MAPPED, sizeof V4_MAPPED);
    memcpy(out->b + 12, in4, 4);
}

/* Parses a bare IPv4 or IPv6 address from s[0..len). */
static bool parse_plain(const char *s, size_t len, proxy_addr_t *out)
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (len == 0 || len >= sizeof buf) return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    struct in_addr v4;
    if (inet_pton(AF_INET, buf, &v4) == 1) {
        from_v4(&v4, out);
        return true;
    }
    return inet_pton(AF_INET6, buf, out->b) == 1;
}

/* Drops the spaces and tabs around s[0..*len). proxy.c keeps its own
 * rather than api/request.h's api_trim_ows: it is a leaf that the request
 * layer depends on, and must not depend on it back. */
static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

/* Whether s[0..len) is ":PORT" (1 to 5 digits). */
static bool is_port(const char *s, size_t len)
{
    if (len < 2 || len > 6 || s[0] != ':') return false;
    for (size_t i = 1; i < len; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

bool proxy_addr_parse(const char *s, size_t len, proxy_addr_t *out)
{
    trim(&s, &len);
    if (len > 0 && s[0] == '[') { /* [v6] or [v6]:port */
        const char *close = memchr(s, ']', len);
        if (close == NULL) return false;
        size_t rest = len - (size_t)(close + 1 - s);
        return (rest == 0 || is_port(close + 1, rest)) && parse_plain(s + 1, (size_t)(close - s - 1), out);
    }
    if (parse_plain(s, len, out)) return true;
    /* v4:port: one colon only (a bare IPv6 address has several). */
    const char *colon = memchr(s, ':', len);
    if (colon == NULL || !is_port(colon, len - (size_t)(colon - s))) return false;
    return parse_plain(s, (size_t)(colon - s), out) && is_v4(out);
}

bool proxy_addr_of(const struct sockaddr *sa, proxy_addr_t *out)
{
    memset(out, 0, sizeof *out);
    if (sa->sa_family == AF_INET) {
        from_v4(&((const struct sockaddr_in *)sa)->sin_addr, out);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out->b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

static bool in_range(const range_t *r, const proxy_addr_t *a)
{
    int full = r->bits / 8, rest = r->bits % 8;
    if (memcmp(r->a.b, a->b, (size_t)full) != 0) return false;
    if (rest == 0) return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (r->a.b[full] & mask) == (a->b[full] & mask);
}

bool proxy_trusted(const proxy_addr_t *a)
{
    for (size_t i = 0; i < P.n; i++)
        if (in_range(&P.r[i], a)) return true;
    return false;
}

/* Parses one range, "ADDR" or "ADDR/BITS", from s[0..len) into r. */
static bool parse_range(const char *s, size_t len, range_t *r)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash != NULL ? (size_t)(slash - s) : len;
    if (!parse_plain(s, alen, &r->a)) return false;
    int max = is_v4(&r->a) ? 32 : 128;
    int bits = max;
    if (slash != NULL) {
        size_t i = alen + 1;
        if (i == len || len - i > 3) return false;
        for (bits = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9') return false;
            bits = bits * 10 + (s[i] - '0');
        }
        if (bits > max) return false;
    }
    r->bits = bits + (max == 32 ? 96 : 0);
    /* The bits beyond the prefix name nothing: cleared, so that the range
     * reads back as what it matches. */
    for (int b = r->bits; b < 128; b++)
        r->a.b[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
    return true;
}

int proxy_trust(const char *list, char *err, size_t errsz)
{
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        trim(&p, &len);
        range_t r;
        if (!parse_range(p, len, &r)) {
            snprintf(err, errsz, "'%.*s' is not an address or ADDRESS/BITS range", (int)(len > 64 ? 64 : len),
                     p);
            return -1;
        }
        if (P.n == PROXY_MAX) {
            snprintf(err, errsz, "more than %d trusted proxy ranges", PROXY_MAX);
            return -1;
        }
        P.r[P.n++] = r;
        if (end == NULL) return 0;
        p = end + 1;
    }
}

void proxy_reset(void)
{
    P.n = 0;
}

size_t proxy_count(void)
{
    return P.n;
}

void proxy_addr_format(const proxy_addr_t *a, char *buf, size_t size)
{
    if (is_v4(a))
        inet_ntop(AF_INET, a->b + 12, buf, (socklen_t)size);
    else
        inet_ntop(AF_INET6, a->b, buf, (socklen_t)size);
}

void proxy_describe(char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < P.n && len < size; i++) {
        char a[INET6_ADDRSTRLEN];
        proxy_addr_format(&P.r[i].a, a, sizeof a);
        int bits = is_v4(&P.r[i].a) ? P.r[i].bits - 96 : P.r[i].bits;
        int n = snprintf(buf + len, size - len, "%s%s/%d", i ? ", " : "", a, bits);
        if (n < 0) break;
        len += (size_t)n;
    }
}

/* The entries of one X-Forwarded-For value, right to left: each call
 * steps *end back over one entry and returns it. */
static h2o_iovec_t prev_entry(const char *start, const char **end)
{
    const char *e = *end, *b = e;
    while (b > start && b[-1] != ',')
        b--;
    *end = b > start ? b - 1 : start;
    return h2o_iovec_init(b, (size_t)(e - b));
}

void proxy_client(const proxy_addr_t *peer, const h2o_iovec_t *xff, size_t n, proxy_addr_t *client)
{
    *client = *peer;
    if (!proxy_trusted(peer)) return;
    int hops = 0;
    for (size_t h = n; h-- > 0;) {
        const char *start = xff[h].base, *end = xff[h].base + xff[h].len;
        while (end > start) {
            h2o_iovec_t entry = prev_entry(start, &end);
            proxy_addr_t a;
            /* Not an address: the hop to its right (client) wrote it. */
            if (!proxy_addr_parse(entry.base, entry.len, &a)) return;
            *client = a;
            if (!proxy_trusted(&a) || ++hops == PROXY_MAX_HOPS) return;
        }
    }
}

void proxy_limit_key(const proxy_addr_t *a, uint64_t key[2])
{
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 8; i++) {
        hi = hi << 8 | a->b[i];
        lo = lo << 8 | a->b[8 + i];
    }
    /* An IPv4 address is in lo whole (hi is 0); an IPv6 /64 is hi, and lo
     * only marks it as IPv6 (and never zero). */
    key[0] = hi;
    key[1] = is_v4(a) ? lo : 6;
}
