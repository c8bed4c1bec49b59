/*
 * test_router.c: path matching, methods and the Allow header.
 *
 * Paths are copied into heap buffers of exactly their length (no NUL), so
 * that a read past len shows up under AddressSanitizer.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "api/router.h"

#define ID "0190f3a2-7c1e-7b3a-9d4e-5f6a7b8c9d0e"
#define FID "0190f3a2-7c1e-7b3a-9d4e-000000000002"

static char *buf_;
static route_match_t m;

static void teardown(void)
{
    free(buf_);
    buf_ = NULL;
}

TestSuite(router_match, .fini = teardown);

/* Matches path[0..len). */
static int match_n(const char *path, size_t len)
{
    free(buf_);
    buf_ = malloc(len ? len : 1);
    cr_assert_not_null(buf_);
    memcpy(buf_, path, len);
    memset(&m, 0x5a, sizeof m); /* garbage, to see that every member is written */
    int r = router_match(buf_, len, &m);
    cr_expect_eq(r, m.route, "%.*s: returned %d, kept %d", (int)len, path, r, m.route);
    return r;
}

static int match(const char *path)
{
    return match_n(path, strlen(path));
}

static void expect_route(const char *path, int route)
{
    int r = match(path);
    cr_expect_eq(r, route, "\"%s\": route %d, want %d", path, r, route);
}

static void expect_seg(const char *got, size_t len, const char *want, const char *what, const char *path)
{
    cr_assert_not_null(got, "%s: %s unset", path, what);
    cr_expect(got >= buf_ && got + len <= buf_ + strlen(path), "%s: %s points outside the path", path, what);
    cr_expect(len == strlen(want) && memcmp(got, want, len) == 0, "%s: %s \"%.*s\", want \"%s\"", path, what,
              (int)len, got, want);
}

Test(router_match, health)
{
    expect_route("/healthz", ROUTE_HEALTH);
    expect_route("/healthz/", ROUTE_HEALTH);
    cr_expect_null(m.id);
    cr_expect_null(m.fid);
    expect_route("/healthz//", ROUTE_NONE);
    expect_route("/healthz/x", ROUTE_NONE);
    expect_route("/healthzz", ROUTE_NONE);
    expect_route("/health", ROUTE_NONE);
    expect_route("/HEALTHZ", ROUTE_NONE);
    expect_route("//healthz", ROUTE_NONE);
    expect_route("/leads/healthz/x/y/z", ROUTE_NONE);
}

Test(router_match, leads_collection)
{
    expect_route("/leads", ROUTE_LEADS);
    cr_expect_null(m.id);
    cr_expect_eq(m.id_len, 0u);
    cr_expect_null(m.fid);
    expect_route("/leads/", ROUTE_LEADS);
    cr_expect_null(m.id);
    expect_route("/leadsx", ROUTE_NONE);
    expect_route("/lead", ROUTE_NONE);
    expect_route("/Leads", ROUTE_NONE);
    expect_route("/leads.json", ROUTE_NONE);
    expect_route("leads", ROUTE_NONE);
}

Test(router_match, one_lead)
{
    const char *p = "/leads/" ID;
    expect_route(p, ROUTE_LEAD);
    expect_seg(m.id, m.id_len, ID, "id", p);
    cr_expect_null(m.fid);
    cr_expect_eq(m.fid_len, 0u);

    p = "/leads/" ID "/";
    expect_route(p, ROUTE_LEAD);
    expect_seg(m.id, m.id_len, ID, "id", p);

    /* Any text is an id to the router: the handler decides. */
    p = "/leads/not-a-uuid";
    expect_route(p, ROUTE_LEAD);
    expect_seg(m.id, m.id_len, "not-a-uuid", "id", p);
    p = "/leads/%2F";
    expect_route(p, ROUTE_LEAD);
    expect_seg(m.id, m.id_len, "%2F", "id", p);
    p = "/leads/x";
    expect_route(p, ROUTE_LEAD);
    expect_seg(m.id, m.id_len, "x", "id", p);
}

Test(router_match, follows_collection)
{
    const char *p = "/leads/" ID "/follows";
    expect_route(p, ROUTE_FOLLOWS);
    expect_seg(m.id, m.id_len, ID, "id", p);
    cr_expect_null(m.fid);

    p = "/leads/" ID "/follows/";
    expect_route(p, ROUTE_FOLLOWS);
    expect_seg(m.id, m.id_len, ID, "id", p);
    cr_expect_null(m.fid);

    expect_route("/leads/" ID "/follow", ROUTE_NONE);
    expect_route("/leads/" ID "/followsx", ROUTE_NONE);
    expect_route("/leads/" ID "/notes", ROUTE_NONE);
    expect_route("/leads/" ID "/Follows", ROUTE_NONE);
}

Test(router_match, one_follow)
{
    const char *p = "/leads/" ID "/follows/" FID;
    expect_route(p, ROUTE_FOLLOW);
    expect_seg(m.id, m.id_len, ID, "id", p);
    expect_seg(m.fid, m.fid_len, FID, "fid", p);

    p = "/leads/" ID "/follows/" FID "/";
    expect_route(p, ROUTE_FOLLOW);
    expect_seg(m.id, m.id_len, ID, "id", p);
    expect_seg(m.fid, m.fid_len, FID, "fid", p);

    p = "/leads/a/follows/b";
    expect_route(p, ROUTE_FOLLOW);
    expect_seg(m.id, m.id_len, "a", "id", p);
    expect_seg(m.fid, m.fid_len, "b", "fid", p);

    /* "follows" is a valid id text, in either place. */
    p = "/leads/follows/follows/follows";
    expect_route(p, ROUTE_FOLLOW);
    expect_seg(m.id, m.id_len, "follows", "id", p);
    expect_seg(m.fid, m.fid_len, "follows", "fid", p);
}

Test(router_match, empty_segments)
{
    static const char *const paths[] = {
        "",
        "/",
        "//",
        "///",
        "//leads",
        "//leads/",
        "/leads//",
        "/leads//follows",
        "/leads//follows/" FID,
        "/leads/" ID "//follows",
        "/leads/" ID "/follows//",
        "/leads/" ID "//",
        "/leads/" ID "/follows//" FID,
        "/leads/" ID "/follows/" FID "//",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        expect_route(paths[i], ROUTE_NONE);
}

Test(router_match, extra_segments)
{
    expect_route("/leads/" ID "/follows/" FID "/x", ROUTE_NONE);
    expect_route("/leads/" ID "/follows/" FID "/x/", ROUTE_NONE);
    expect_route("/leads/" ID "/follows/" FID "/x/y/z", ROUTE_NONE);
    expect_route("/leads/a/b", ROUTE_NONE);
    expect_route("/leads/a/b/c", ROUTE_NONE);
    expect_route("/api/leads", ROUTE_NONE);
    expect_route("/v1/leads/" ID, ROUTE_NONE);
    expect_route("/x", ROUTE_NONE);
    expect_route("*", ROUTE_NONE);
}

Test(router_match, no_route_clears_the_match)
{
    expect_route("/nothing/here", ROUTE_NONE);
    cr_expect_null(m.fid);
    cr_expect_eq(m.fid_len, 0u);
    expect_route("", ROUTE_NONE);
    cr_expect_null(m.id);
    cr_expect_null(m.fid);
}

Test(router_match, only_len_bytes_are_read)
{
    /* The caller cuts the query string off by passing its offset as len. */
    const char *full = "/leads/" ID "?page=2&records=5";
    size_t len = strcspn(full, "?");
    int r = match_n(full, len);
    cr_expect_eq(r, ROUTE_LEAD);
    cr_expect(m.id_len == strlen(ID) && memcmp(m.id, ID, m.id_len) == 0, "id \"%.*s\"", (int)m.id_len, m.id);

    full = "/leads/?page=2";
    cr_expect_eq(match_n(full, strcspn(full, "?")), ROUTE_LEADS);
    full = "/leads/" ID "/follows?records=100";
    cr_expect_eq(match_n(full, strcspn(full, "?")), ROUTE_FOLLOWS);
    full = "/healthz?probe=1";
    cr_expect_eq(match_n(full, strcspn(full, "?")), ROUTE_HEALTH);

    /* A prefix of a longer path is matched on its own. */
    cr_expect_eq(match_n("/leadsx", 6), ROUTE_LEADS);
    cr_expect_eq(match_n("/leads/abc/follows", 10), ROUTE_LEAD);
    cr_expect(m.id_len == 3 && memcmp(m.id, "abc", 3) == 0);
}

Test(router_match, query_string_in_path_is_not_stripped)
{
    /* router.h: the path given holds no query string; a '?' left in is
     * ordinary text, never a route of its own. */
    expect_route("/leads?page=2", ROUTE_NONE);
    expect_route("/healthz?x", ROUTE_NONE);
    const char *p = "/leads/abc?x=1";
    expect_route(p, ROUTE_LEAD);
    expect_seg(m.id, m.id_len, "abc?x=1", "id", p);
}

/* --- methods -------------------------------------------------------------- */

static unsigned method(const char *s)
{
    size_t n = strlen(s);
    char *b = malloc(n ? n : 1);
    cr_assert_not_null(b);
    memcpy(b, s, n);
    unsigned r = router_method(b, n);
    free(b);
    return r;
}

Test(router_method, known_and_unknown)
{
    cr_expect_eq(method("GET"), (unsigned)METHOD_GET);
    cr_expect_eq(method("HEAD"), (unsigned)METHOD_HEAD);
    cr_expect_eq(method("POST"), (unsigned)METHOD_POST);
    cr_expect_eq(method("PUT"), (unsigned)METHOD_PUT);
    cr_expect_eq(method("DELETE"), (unsigned)METHOD_DELETE);

    static const char *const other[] = {"PATCH", "OPTIONS", "TRACE", "CONNECT", "get",  "Get",  "GE",
                                        "GETS",  "POS",     "",      "DELET",   "PUT ", " PUT", "BREW"};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        cr_expect_eq(method(other[i]), (unsigned)METHOD_OTHER, "\"%s\"", other[i]);
    /* Only n bytes count. */
    cr_expect_eq(router_method("GETX", 3), (unsigned)METHOD_GET);
    cr_expect_eq(router_method("DELETE", 3), (unsigned)METHOD_OTHER);
}

/* --- Allow ---------------------------------------------------------------- */

Test(router_allowed, per_route)
{
    cr_expect_eq(router_allowed(ROUTE_HEALTH), (unsigned)(METHOD_GET | METHOD_HEAD));
    cr_expect_eq(router_allowed(ROUTE_LEADS), (unsigned)(METHOD_GET | METHOD_HEAD | METHOD_POST));
    cr_expect_eq(router_allowed(ROUTE_FOLLOWS), (unsigned)(METHOD_GET | METHOD_HEAD | METHOD_POST));
    cr_expect_eq(router_allowed(ROUTE_LEAD),
                 (unsigned)(METHOD_GET | METHOD_HEAD | METHOD_PUT | METHOD_DELETE));
    cr_expect_eq(router_allowed(ROUTE_FOLLOW),
                 (unsigned)(METHOD_GET | METHOD_HEAD | METHOD_PUT | METHOD_DELETE));
    cr_expect_eq(router_allowed(ROUTE_NONE), 0u);
    cr_expect_eq(router_allowed(99), 0u);
    cr_expect_eq(router_allowed(-1), 0u);

    /* An unknown method is never allowed anywhere: a 405. */
    for (int r = ROUTE_NONE; r <= ROUTE_FOLLOW; r++)
        cr_expect_eq(router_allowed(r) & METHOD_OTHER, 0u, "route %d", r);
    cr_expect_eq(router_allowed(ROUTE_HEALTH) & METHOD_POST, 0u, "POST /healthz is a 405");
    cr_expect_eq(router_allowed(ROUTE_LEADS) & METHOD_DELETE, 0u);
    cr_expect_eq(router_allowed(ROUTE_LEAD) & METHOD_POST, 0u);
}

Test(router_allowed, header_values)
{
    cr_expect_str_eq(router_allow_header(ROUTE_HEALTH), "GET, HEAD");
    cr_expect_str_eq(router_allow_header(ROUTE_LEADS), "GET, HEAD, POST");
    cr_expect_str_eq(router_allow_header(ROUTE_FOLLOWS), "GET, HEAD, POST");
    cr_expect_str_eq(router_allow_header(ROUTE_LEAD), "GET, HEAD, PUT, DELETE");
    cr_expect_str_eq(router_allow_header(ROUTE_FOLLOW), "GET, HEAD, PUT, DELETE");
    cr_expect_str_eq(router_allow_header(ROUTE_NONE), "");
    cr_expect_str_eq(router_allow_header(42), "");
}

Test(router_allowed, header_agrees_with_bits)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{METHOD_GET, "GET"},
                 {METHOD_HEAD, "HEAD"},
                 {METHOD_POST, "POST"},
                 {METHOD_PUT, "PUT"},
                 {METHOD_DELETE, "DELETE"}};
    for (int r = ROUTE_NONE; r <= ROUTE_FOLLOW; r++) {
        char want[64] = "";
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            if (router_allowed(r) & names[i].bit) {
                if (want[0]) strcat(want, ", ");
                strcat(want, names[i].name);
            }
        }
        cr_expect_str_eq(router_allow_header(r), want, "route %d", r);
        /* and every name in the header is a method the router knows */
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strstr(router_allow_header(r), names[i].name))
                cr_expect_eq(router_method(names[i].name, strlen(names[i].name)), names[i].bit);
    }
}

Test(router_match, every_route_then_allowed)
{
    /* End to end: what a path matches decides what is allowed. */
    cr_expect_eq(router_allowed(match("/healthz/")) & METHOD_GET, (unsigned)METHOD_GET);
    cr_expect_eq(router_allowed(match("/leads/")) & METHOD_POST, (unsigned)METHOD_POST);
    cr_expect_eq(router_allowed(match("/leads/" ID "/")) & METHOD_PUT, (unsigned)METHOD_PUT);
    cr_expect_eq(router_allowed(match("/leads/" ID "/follows/")) & METHOD_POST, (unsigned)METHOD_POST);
    cr_expect_eq(router_allowed(match("/leads/" ID "/follows/" FID "/")) & METHOD_DELETE,
                 (unsigned)METHOD_DELETE);
    cr_expect_eq(router_allowed(match("//leads")), 0u);
}
