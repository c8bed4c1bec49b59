/*
 * test_proxy.c: trusted proxies and the client address (api/proxy.c):
 * ranges as --trusted-proxy takes them, addresses as X-Forwarded-For
 * writes them, and which one of them is the client.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <string.h>

#include "api/proxy.h"

static proxy_addr_t addr(const char *s)
{
    proxy_addr_t a;
    cr_assert(proxy_addr_parse(s, strlen(s), &a), "'%s' does not parse", s);
    return a;
}

static const char *text(const proxy_addr_t *a)
{
    static char buf[INET6_ADDRSTRLEN];
    proxy_addr_format(a, buf, sizeof buf);
    return buf;
}

/* s parsed and written back. */
static const char *round_trip(const char *s)
{
    proxy_addr_t a = addr(s);
    return text(&a);
}

static void trust(const char *list)
{
    char err[160];
    cr_assert_eq(proxy_trust(list, err, sizeof err), 0, "%s: %s", list, err);
}

/* The client of a request from peer with the X-Forwarded-For headers
 * given (NULL-terminated), as text. */
static const char *client_of(const char *peer, const char *const *xff)
{
    h2o_iovec_t v[8];
    size_t n = 0;
    for (; xff[n] != NULL; n++)
        v[n] = h2o_iovec_init(xff[n], strlen(xff[n]));
    proxy_addr_t p = addr(peer), c;
    proxy_client(&p, v, n, &c);
    return text(&c);
}

#define CLIENT(peer, ...) client_of(peer, (const char *const[]){__VA_ARGS__, NULL})

Test(proxy, addresses_as_forwarded)
{
    cr_expect_str_eq(round_trip("192.0.2.7"), "192.0.2.7");
    cr_expect_str_eq(round_trip(" 192.0.2.7:4711 "), "192.0.2.7");
    cr_expect_str_eq(round_trip("2001:db8::1"), "2001:db8::1");
    cr_expect_str_eq(round_trip("[2001:db8::1]"), "2001:db8::1");
    cr_expect_str_eq(round_trip("[2001:db8::1]:443"), "2001:db8::1");
    /* An IPv4-mapped address is the IPv4 one. */
    cr_expect_str_eq(round_trip("::ffff:192.0.2.7"), "192.0.2.7");
    static const char *const bad[] = {"",          "unknown",  "192.0.2", "192.0.2.256", "[2001:db8::1]x",
                                      "[2001:db8", "1.2.3.4:", "_hidden", "1.2.3.4 5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        proxy_addr_t a;
        cr_expect_not(proxy_addr_parse(bad[i], strlen(bad[i]), &a), "'%s' parsed", bad[i]);
    }
}

Test(proxy, ranges_and_what_they_hold)
{
    cr_expect_eq(proxy_count(), 0);
    trust("10.0.0.0/8, 192.0.2.1");
    trust("2001:db8::/32,::1");
    cr_expect_eq(proxy_count(), 4);
    char buf[256];
    proxy_describe(buf, sizeof buf);
    cr_expect_str_eq(buf, "10.0.0.0/8, 192.0.2.1/32, 2001:db8::/32, ::1/128");
    proxy_addr_t in[] = {addr("10.255.1.2"), addr("192.0.2.1"), addr("2001:db8:ffff::9"), addr("::1"),
                         addr("::ffff:10.0.0.1")};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        cr_expect(proxy_trusted(&in[i]), "%s is not trusted", text(&in[i]));
    proxy_addr_t out[] = {addr("11.0.0.1"), addr("192.0.2.2"), addr("2001:db9::1"), addr("::2"),
                          addr("127.0.0.1")};
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++)
        cr_expect_not(proxy_trusted(&out[i]), "%s is trusted", text(&out[i]));
    proxy_reset();
    cr_expect_not(proxy_trusted(&in[0]));
}

Test(proxy, a_range_with_host_bits_is_its_network)
{
    trust("10.1.2.3/16");
    char buf[64];
    proxy_describe(buf, sizeof buf);
    cr_expect_str_eq(buf, "10.1.0.0/16");
    proxy_addr_t a = addr("10.1.200.200");
    cr_expect(proxy_trusted(&a));
}

Test(proxy, bad_ranges_are_refused)
{
    static const char *const bad[] = {
        "",           "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8x", "host.example", "10.0.0.0/-1",
        "10.0.0.0,,", "1.2.3.4:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[160] = "";
        cr_expect_eq(proxy_trust(bad[i], err, sizeof err), -1, "'%s' was accepted", bad[i]);
        cr_expect_neq(err[0], '\0');
    }
}

Test(proxy, the_client_is_the_right_most_untrusted_hop)
{
    /* No trusted proxy: the peer, whatever the header says. */
    cr_expect_str_eq(CLIENT("127.0.0.1", "203.0.113.9"), "127.0.0.1");
    trust("127.0.0.1, 10.0.0.0/8");
    /* From a trusted peer: the address it forwarded for. */
    cr_expect_str_eq(CLIENT("127.0.0.1", "203.0.113.9"), "203.0.113.9");
    /* What the client wrote itself (left) does not count: the right-most
     * address that is not a trusted proxy does. */
    cr_expect_str_eq(CLIENT("127.0.0.1", "1.1.1.1, 203.0.113.9, 10.0.0.5"), "203.0.113.9");
    cr_expect_str_eq(CLIENT("127.0.0.1", "1.1.1.1", "203.0.113.9,10.0.0.5"), "203.0.113.9");
    /* A peer that is not trusted is the client, whatever it forwards. */
    cr_expect_str_eq(CLIENT("198.51.100.1", "203.0.113.9"), "198.51.100.1");
    /* Every hop trusted: the left-most. */
    cr_expect_str_eq(CLIENT("127.0.0.1", "10.0.0.1, 10.0.0.2"), "10.0.0.1");
    /* No header: the peer. */
    cr_expect_str_eq(client_of("127.0.0.1", (const char *const[]){NULL}), "127.0.0.1");
    /* An entry that is no address: the trusted hop that wrote it. */
    cr_expect_str_eq(CLIENT("127.0.0.1", "1.1.1.1, garbage, 10.0.0.7"), "10.0.0.7");
    cr_expect_str_eq(CLIENT("127.0.0.1", "garbage"), "127.0.0.1");
    cr_expect_str_eq(CLIENT("127.0.0.1", ""), "127.0.0.1");
    cr_expect_str_eq(CLIENT("127.0.0.1", "[2001:db8::5]:1234"), "2001:db8::5");
}

Test(proxy, a_long_chain_of_trusted_hops_stops_counting)
{
    trust("10.0.0.0/8, 127.0.0.1");
    char chain[4096] = "203.0.113.9";
    for (int i = 0; i < 100; i++)
        snprintf(chain + strlen(chain), sizeof chain - strlen(chain), ", 10.0.%d.%d", i / 250, i % 250 + 1);
    const char *c = CLIENT("127.0.0.1", chain);
    cr_expect(strncmp(c, "10.0.", 5) == 0, "%s", c);
}

Test(proxy, limit_keys_are_an_ipv4_address_or_an_ipv6_64)
{
    uint64_t a[2], b[2];
    proxy_addr_t x = addr("192.0.2.7"), y = addr("192.0.2.8");
    proxy_limit_key(&x, a);
    proxy_limit_key(&y, b);
    cr_expect(a[0] != b[0] || a[1] != b[1], "two IPv4 addresses share a key");
    x = addr("2001:db8:1:2::1");
    y = addr("2001:db8:1:2:ffff::9");
    proxy_limit_key(&x, a);
    proxy_limit_key(&y, b);
    cr_expect(a[0] == b[0] && a[1] == b[1], "one /64, two keys");
    y = addr("2001:db8:1:3::1");
    proxy_limit_key(&y, b);
    cr_expect(a[0] != b[0], "two /64s share a key");
    proxy_addr_t unknown = {{0}};
    proxy_limit_key(&unknown, a);
    cr_expect(a[0] != 0 || a[1] != 0, "the unknown address has the free slot's key");
}
