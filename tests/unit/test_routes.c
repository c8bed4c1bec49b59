/*
 * test_routes.c: the route table and what is derived from it: matching,
 * the 404 and the 405 with its Allow header, path parameters, and the
 * table's own consistency.
 *
 * Paths are copied into heap buffers of exactly their length (no NUL), so
 * that a read past len shows up under AddressSanitizer.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/routes.h"

#define ID "0190f3a2-7c1e-7b3a-9d4e-5f6a7b8c9d0e"
#define FID "0190f3a2-7c1e-7b3a-9d4e-000000000002"

static char *buf_;
static api_route_match_t m;

static void teardown(void)
{
    free(buf_);
    buf_ = NULL;
}

TestSuite(routes, .fini = teardown);

/* Matches method on path[0..len) against table (API_ROUTES when NULL). */
static const api_route_t *find_n(const api_route_t *table, size_t n, enum api_method method, const char *path,
                                 size_t len)
{
    free(buf_);
    buf_ = malloc(len ? len : 1);
    cr_assert_not_null(buf_);
    memcpy(buf_, path, len);
    memset(&m, 0x5a, sizeof m); /* garbage, to see that every member is written */
    if (table == NULL)
        api_route_match(buf_, len, method, &m);
    else
        api_route_find(table, n, buf_, len, method, &m);
    return m.route;
}

static const api_route_t *find(enum api_method method, const char *path)
{
    return find_n(NULL, 0, method, path, strlen(path));
}

/* The entry of API_ROUTES for method and pattern. */
static const api_route_t *entry(enum api_method method, const char *pattern)
{
    for (size_t i = 0; i < API_NROUTES; i++)
        if (API_ROUTES[i].method == method && strcmp(API_ROUTES[i].path, pattern) == 0) return &API_ROUTES[i];
    cr_assert_fail("no entry %u %s", method, pattern);
    return NULL;
}

static void expect_route(enum api_method method, const char *path, const char *pattern)
{
    const api_route_t *r = find(method, path);
    cr_assert_not_null(r, "%d %s: no route, want %s", method, path, pattern);
    cr_expect_str_eq(r->path, pattern, "%d %s", method, path);
    cr_expect_eq(r, entry(method == METHOD_HEAD ? METHOD_GET : method, pattern));
}

static void expect_param(int i, const char *want, const char *path)
{
    h2o_iovec_t p = m.params[i];
    if (want == NULL) {
        cr_expect_null(p.base, "%s: param %d set", path, i);
        return;
    }
    cr_assert_not_null(p.base, "%s: param %d unset", path, i);
    cr_expect(p.base >= buf_ && p.base + p.len <= buf_ + strlen(path), "%s: param %d outside the path", path,
              i);
    cr_expect(p.len == strlen(want) && memcmp(p.base, want, p.len) == 0, "%s: param %d \"%.*s\", want \"%s\"",
              path, i, (int)p.len, p.base, want);
}

/* Paths of every route, with and without a trailing slash, and the
 * params found in them. Any text is an id to the table: the handler
 * decides, so "follows" is an id in either place. */
static const struct {
    enum api_method method;
    const char *path, *pattern, *id, *fid;
} MATCHES[] = {
    {METHOD_GET, "/", "/"},
    {METHOD_HEAD, "/", "/"},
    {METHOD_GET, "/board/app.0123456789ab.js", "/board/{file}", "app.0123456789ab.js"},
    {METHOD_GET, "/board/x/", "/board/{file}", "x"},
    {METHOD_GET, "/healthz", "/healthz"},
    {METHOD_GET, "/healthz/", "/healthz"},
    {METHOD_GET, "/leads", "/leads"},
    {METHOD_POST, "/leads/", "/leads"},
    {METHOD_GET, "/leads/" ID, "/leads/{id}", ID},
    {METHOD_PUT, "/leads/" ID "/", "/leads/{id}", ID},
    {METHOD_DELETE, "/leads/" ID, "/leads/{id}", ID},
    {METHOD_GET, "/leads/not-a-uuid", "/leads/{id}", "not-a-uuid"},
    {METHOD_GET, "/leads/%2F", "/leads/{id}", "%2F"},
    {METHOD_GET, "/leads/" ID "/follows", "/leads/{id}/follows", ID},
    {METHOD_POST, "/leads/" ID "/follows/", "/leads/{id}/follows", ID},
    {METHOD_PUT, "/leads/" ID "/follows/" FID "/", "/leads/{id}/follows/{follow_id}", ID, FID},
    {METHOD_GET, "/leads/follows/follows/follows", "/leads/{id}/follows/{follow_id}", "follows", "follows"},
    {METHOD_HEAD, "/healthz", "/healthz"},
    {METHOD_HEAD, "/leads/", "/leads"},
    {METHOD_HEAD, "/leads/" ID "/follows/" FID, "/leads/{id}/follows/{follow_id}", ID, FID},
};

Test(routes, every_route_matches_with_its_params)
{
    for (size_t i = 0; i < sizeof MATCHES / sizeof MATCHES[0]; i++) {
        expect_route(MATCHES[i].method, MATCHES[i].path, MATCHES[i].pattern);
        expect_param(0, MATCHES[i].id, MATCHES[i].path);
        expect_param(1, MATCHES[i].fid, MATCHES[i].path);
    }
}

/* Paths no pattern matches: a 404 whatever the method. */
static const char *const NOWHERE[] = {
    "",
    "//",
    "///",
    "/board",
    "/board/",
    "/board//",
    "/board/a/b",
    "*",
    "leads",
    "//leads",
    "//healthz",
    "/healthz//",
    "/healthz/x",
    "/healthzz",
    "/health",
    "/HEALTHZ",
    "/leadsx",
    "/lead",
    "/Leads",
    "/leads.json",
    "/leads//",
    "/leads//follows",
    "/leads/" ID "//follows",
    "/leads/" ID "/follows//",
    "/leads/" ID "/follows//" FID,
    "/leads/" ID "/follows/" FID "//",
    "/leads/" ID "/follows/" FID "/x",
    "/leads/" ID "/follows/" FID "/x/y/z",
    "/leads/" ID "/follow",
    "/leads/" ID "/followsx",
    "/leads/" ID "/Follows",
    "/leads/a/b",
    "/api/leads",
    "/a/b/c/d/e/f/g/h/i/j",
};

Test(routes, other_paths_match_nothing)
{
    for (size_t i = 0; i < sizeof NOWHERE / sizeof NOWHERE[0]; i++) {
        cr_expect_null(find(METHOD_GET, NOWHERE[i]), "\"%s\" matched", NOWHERE[i]);
        cr_expect_eq(m.allowed, 0u, "\"%s\": a 404 allows nothing", NOWHERE[i]);
    }
}

Test(routes, only_len_bytes_are_read)
{
    /* The caller cuts the query string off by passing its offset as len. */
    const char *full = "/leads/" ID "?page=2&records=5";
    cr_expect_not_null(find_n(NULL, 0, METHOD_GET, full, strcspn(full, "?")));
    expect_param(0, ID, "/leads/" ID);
    full = "/healthz?probe=1";
    cr_expect_not_null(find_n(NULL, 0, METHOD_GET, full, strcspn(full, "?")));
    /* A prefix of a longer path is matched on its own. */
    cr_expect_str_eq(find_n(NULL, 0, METHOD_GET, "/leadsx", 6)->path, "/leads");
    cr_expect_str_eq(find_n(NULL, 0, METHOD_GET, "/leads/abc/follows", 10)->path, "/leads/{id}");
    /* A '?' left in the path is ordinary text. */
    cr_expect_null(find(METHOD_GET, "/leads?page=2"));
    expect_route(METHOD_GET, "/leads/abc?x=1", "/leads/{id}");
    expect_param(0, "abc?x=1", "/leads/abc?x=1");
}

static enum api_method method(const char *s)
{
    size_t n = strlen(s);
    char *b = malloc(n ? n : 1);
    cr_assert_not_null(b);
    memcpy(b, s, n);
    enum api_method r = api_method_of(b, n);
    free(b);
    return r;
}

Test(routes, method_names)
{
    static const char *const known[] = {
        [METHOD_GET] = "GET", [METHOD_HEAD] = "HEAD",     [METHOD_POST] = "POST",
        [METHOD_PUT] = "PUT", [METHOD_DELETE] = "DELETE", [METHOD_OPTIONS] = "OPTIONS"};
    for (int i = METHOD_GET; i <= METHOD_OPTIONS; i++)
        cr_expect_eq(method(known[i]), i, "\"%s\"", known[i]);
    static const char *const other[] = {"PATCH", "options", "TRACE", "get",  "GE",  "GETS",
                                        "",      "DELET",   "PUT ",  " PUT", "BREW"};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        cr_expect_eq(method(other[i]), METHOD_OTHER, "\"%s\"", other[i]);
    cr_expect_eq(api_method_of("GETX", 3), METHOD_GET);
    cr_expect_eq(api_method_of("DELETE", 3), METHOD_OTHER);
}

/* The 405 of method on path: no entry, and this Allow header. */
static void expect_405(enum api_method meth, const char *path, const char *allow)
{
    cr_expect_null(find(meth, path), "%d %s: matched", meth, path);
    cr_assert_neq(m.allowed, 0u, "%d %s: a 404, want a 405", meth, path);
    char buf[64];
    size_t n = api_allow_header(m.allowed, buf, sizeof buf);
    cr_expect_str_eq(buf, allow, "%d %s", meth, path);
    cr_expect_eq(n, strlen(allow));
}

Test(routes, method_not_allowed)
{
    expect_405(METHOD_POST, "/healthz", "GET, HEAD");
    expect_405(METHOD_DELETE, "/leads", "GET, HEAD, POST");
    expect_405(METHOD_OTHER, "/leads/", "GET, HEAD, POST");
    expect_405(METHOD_POST, "/leads/" ID, "GET, HEAD, PUT, DELETE");
    expect_405(METHOD_PUT, "/leads/" ID "/follows", "GET, HEAD, POST");
    expect_405(METHOD_POST, "/leads/x/follows/y/", "GET, HEAD, PUT, DELETE");
}

Test(routes, allow_header_order_and_room)
{
    char buf[64];
    api_allow_header(METHOD_BIT(METHOD_DELETE) | METHOD_BIT(METHOD_PUT) | METHOD_BIT(METHOD_GET), buf,
                     sizeof buf);
    cr_expect_str_eq(buf, "GET, HEAD, PUT, DELETE");
    api_allow_header(METHOD_BIT(METHOD_POST), buf, sizeof buf);
    cr_expect_str_eq(buf, "POST");
    char small[10];
    size_t n = api_allow_header(METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_POST), small, sizeof small);
    cr_expect_str_eq(small, "GET, HEAD", "a whole method or none");
    cr_expect_eq(n, 9u);
}

/* --- a literal segment beats a {param} ----------------------------------------- */

static void handler(api_req_t *r)
{
    (void)r;
}

static const char *const NONE[] = {NULL};
static const api_route_t LATER[] = {
    {METHOD_GET, "/leads/{id}", handler, .query = NONE, .summary = "one"},
    {METHOD_PUT, "/leads/{id}", handler, .query = NONE, .summary = "update"},
    {METHOD_GET, "/leads/summary", handler, .query = NONE, .summary = "summary"},
    {METHOD_GET, "/leads/trash/show", handler, .query = NONE, .summary = "trash"},
    {METHOD_POST, "/leads/{id}/recover", handler, .query = NONE, .summary = "recover"},
    {METHOD_GET, "/leads/{id}/{what}", handler, .query = NONE, .summary = "anything"},
    {METHOD_GET, "/{kind}/{id}/history", handler, .query = NONE, .summary = "history"},
};
#define NLATER (sizeof LATER / sizeof LATER[0])

static const char *later(enum api_method meth, const char *path)
{
    const api_route_t *r = find_n(LATER, NLATER, meth, path, strlen(path));
    return r ? r->summary : NULL;
}

Test(routes, literal_beats_param)
{
    cr_expect_str_eq(later(METHOD_GET, "/leads/summary"), "summary");
    cr_expect_str_eq(later(METHOD_GET, "/leads/summary/"), "summary");
    cr_expect_str_eq(later(METHOD_GET, "/leads/x"), "one");
    cr_expect_str_eq(later(METHOD_GET, "/leads/summaryx"), "one");
    cr_expect_str_eq(later(METHOD_GET, "/leads/trash/show"), "trash");
    /* A literal of another pattern after the same segments is a fixed
     * word, no {id}: /leads/trash and /leads/summary/x are no routes. */
    cr_expect_null(later(METHOD_GET, "/leads/trash"));
    cr_expect_null(later(METHOD_PUT, "/leads/trash"));
    cr_expect_null(later(METHOD_GET, "/leads/summary/x"));
    cr_expect_null(later(METHOD_GET, "/leads/x/recover"));
    cr_expect_str_eq(later(METHOD_GET, "/leads/trashx"), "one");
    cr_expect_str_eq(later(METHOD_POST, "/leads/x/recover"), "recover");
    cr_expect_str_eq(later(METHOD_GET, "/leads/x/y"), "anything");
    /* The first literal decides: /leads/... beats /{kind}/... */
    cr_expect_str_eq(later(METHOD_GET, "/leads/x/history"), "anything");
    cr_expect_str_eq(later(METHOD_GET, "/notes/x/history"), "history");
    expect_param(0, "notes", "/notes/x/history");
    expect_param(1, "x", "/notes/x/history");
    /* The literal pattern decides the 405 too, though {id} takes PUT. */
    cr_expect_null(later(METHOD_PUT, "/leads/summary"));
    char buf[64];
    api_allow_header(m.allowed, buf, sizeof buf);
    cr_expect_str_eq(buf, "GET, HEAD");
    /* GET on recover's path is "/leads/{id}/{what}": a literal beats it
     * only for the methods of the same pattern. */
    cr_expect_null(later(METHOD_PUT, "/leads/x/recover"));
    api_allow_header(m.allowed, buf, sizeof buf);
    cr_expect_str_eq(buf, "POST");
}

/* --- the table itself ---------------------------------------------------------- */

/* Counts a pattern's segments and params; false if it is malformed. */
static bool pattern_shape(const char *p, int *segs, int *params)
{
    *segs = *params = 0;
    if (p[0] != '/') return false;
    if (strcmp(p, "/") == 0) return true; /* the root, the board's page */
    while (*p == '/') {
        p++;
        size_t n = strcspn(p, "/");
        if (n == 0) return false;
        if (p[0] == '{') {
            if (p[n - 1] != '}' || n < 3) return false;
            (*params)++;
        } else if (memchr(p, '{', n) || memchr(p, '}', n)) {
            return false;
        }
        (*segs)++;
        p += n;
    }
    return *p == '\0';
}

/* A path the pattern matches: each {param} replaced by "x". */
static void concrete(const char *pattern, char *out, size_t size)
{
    size_t o = 0;
    for (const char *p = pattern; *p != '\0' && o + 1 < size; p++) {
        if (*p == '{') {
            p = strchr(p, '}');
            out[o++] = 'x';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

Test(routes, every_entry_is_well_formed)
{
    for (size_t i = 0; i < API_NROUTES; i++) {
        const api_route_t *e = &API_ROUTES[i];
        int segs, params;
        cr_expect(pattern_shape(e->path, &segs, &params), "%s: malformed", e->path);
        cr_expect_leq(segs, API_ROUTE_SEGMENTS, "%s", e->path);
        cr_expect_leq(params, API_ROUTE_PARAMS, "%s", e->path);
        enum api_method one = e->method;
        cr_expect(one == METHOD_GET || one == METHOD_POST || one == METHOD_PUT || one == METHOD_DELETE,
                  "%s: method %d", e->path, one);
        cr_expect_not_null(e->handler, "%s", e->path);
        cr_expect_not_null(e->query, "%s: the query list is there, even empty", e->path);
        cr_expect(e->summary != NULL && e->summary[0] != '\0' && !strchr(e->summary, '|'), "%s", e->path);
        /* Reads make nothing stale, and read no body; the JSON writes take
         * 1 MiB, the CSV import 16 MiB, a webhook's 16 KiB. */
        if (e->method == METHOD_GET) cr_expect_eq(e->stale, 0u, "%s", e->path);
        bool bodiless = strcmp(e->path, "/leads/{id}/recover") == 0; /* a recovery takes no body */
        if (strcmp(e->path, "/leads/import") == 0)
            cr_expect_eq(e->body_max, (size_t)API_IMPORT_MAX_BODY, "%s", e->path);
        else if ((e->method == METHOD_POST || e->method == METHOD_PUT) &&
                 strncmp(e->path, "/webhooks", 9) == 0)
            cr_expect_eq(e->body_max, (size_t)API_WEBHOOK_BODY_MAX, "%s", e->path);
        else if ((e->method == METHOD_POST || e->method == METHOD_PUT) && !bodiless)
            cr_expect_eq(e->body_max, (size_t)API_MAX_BODY, "%s", e->path);
        else
            cr_expect_eq(e->body_max, 0u, "%s", e->path);
        /* Each entry is the one its own method and path find. */
        char path[128];
        concrete(e->path, path, sizeof path);
        cr_expect_eq(find(e->method, path), e, "%s %s finds another entry", path, e->path);
        for (size_t j = 0; j < i; j++)
            cr_expect(API_ROUTES[j].method != e->method || strcmp(API_ROUTES[j].path, e->path) != 0,
                      "%s twice", e->path);
    }
}

Test(routes, what_each_route_makes_stale_and_needs)
{
    /* Lead writes touch the app's lists; lead and follow writes touch
     * the lead named by the path (none yet for a create). */
    cr_expect_eq(entry(METHOD_POST, "/leads")->stale, (unsigned)API_STALE_APP);
    cr_expect_eq(entry(METHOD_POST, "/leads/import")->stale, (unsigned)API_STALE_APP);
    cr_expect_eq(entry(METHOD_PUT, "/leads/{id}")->stale, (unsigned)(API_STALE_LEAD | API_STALE_APP));
    cr_expect_eq(entry(METHOD_DELETE, "/leads/{id}")->stale, (unsigned)(API_STALE_LEAD | API_STALE_APP));
    /* A recovered lead is back in its GET and the lists; a purge changes
     * nothing the cache holds (the trash is never cached). */
    cr_expect_eq(entry(METHOD_PUT, "/leads/{id}/recover")->stale, (unsigned)(API_STALE_LEAD | API_STALE_APP));
    cr_expect_eq(entry(METHOD_DELETE, "/leads/trash/{id}")->stale, 0u);
    cr_expect_eq(entry(METHOD_POST, "/leads/{id}/follows")->stale, (unsigned)API_STALE_LEAD);
    cr_expect_eq(entry(METHOD_PUT, "/leads/{id}/follows/{follow_id}")->stale, (unsigned)API_STALE_LEAD);
    cr_expect_eq(entry(METHOD_DELETE, "/leads/{id}/follows/{follow_id}")->stale, (unsigned)API_STALE_LEAD);
    /* Webhooks are never cached: their writes make nothing stale. */
    cr_expect_eq(entry(METHOD_POST, "/webhooks")->stale, 0u);
    cr_expect_eq(entry(METHOD_PUT, "/webhooks/{id}")->stale, 0u);
    cr_expect_eq(entry(METHOD_DELETE, "/webhooks/{id}")->stale, 0u);
    /* Only the health checks, the public keys, the OpenAPI document and
     * the board's files go without credentials. */
    for (size_t i = 0; i < API_NROUTES; i++)
        cr_expect_eq(
            API_ROUTES[i].auth,
            strcmp(API_ROUTES[i].path, "/healthz") != 0 && strcmp(API_ROUTES[i].path, "/readyz") != 0 &&
                strcmp(API_ROUTES[i].path, "/.well-known/jwks.json") != 0 &&
                strcmp(API_ROUTES[i].path, "/openapi.json") != 0 && strcmp(API_ROUTES[i].path, "/") != 0 &&
                strcmp(API_ROUTES[i].path, "/board/{file}") != 0,
            "%s", API_ROUTES[i].path);
    /* The lists read page, records and cursor among their parameters, the
     * summary the lead filters and no paging, the import its mode; nothing
     * else reads a query. */
    for (size_t i = 0; i < API_NROUTES; i++) {
        const api_route_t *e = &API_ROUTES[i];
        bool list =
            e->method == METHOD_GET &&
            (strcmp(e->path, "/leads") == 0 || strcmp(e->path, "/leads/{id}/follows") == 0 ||
             strcmp(e->path, "/follows") == 0 || strcmp(e->path, "/webhooks") == 0 ||
             strcmp(e->path, "/webhooks/{id}/deliveries") == 0 || strcmp(e->path, "/leads/trash/show") == 0 ||
             strcmp(e->path, "/leads/{id}/history") == 0);
        bool summary = e->method == METHOD_GET && strcmp(e->path, "/leads/summary") == 0;
        bool paging = false, stage = false;
        int n = 0;
        for (; e->query[n] != NULL; n++) {
            paging |= strcmp(e->query[n], "page") == 0 || strcmp(e->query[n], "cursor") == 0;
            stage |= strcmp(e->query[n], "stage[]") == 0;
        }
        if (list) cr_expect(paging, "%s reads page and cursor", e->path);
        if (summary) cr_expect(stage && !paging, "the summary reads the lead filters, and no paging");
        bool import = e->method == METHOD_POST && strcmp(e->path, "/leads/import") == 0;
        if (import) cr_expect(n == 1 && strcmp(e->query[0], "mode") == 0, "the import reads its mode");
        if (!list && !summary && !import) cr_expect_eq(n, 0, "%s reads no query", e->path);
    }
}

Test(routes, printed_as_a_markdown_table)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    api_routes_print(f);
    fclose(f);
    cr_expect(strncmp(text, "| method | path | auth | summary |\n|---|---|---|---|\n", 52) == 0, "%s", text);
    cr_expect_not_null(strstr(text, "\n| GET | `/healthz` | no | "), "%s", text);
    cr_expect_not_null(
        strstr(text, "\n| DELETE | `/leads/{id}/follows/{follow_id}` | yes | Delete a follow |\n"), "%s",
        text);
    size_t lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    cr_expect_eq(lines, API_NROUTES + 2);
    free(text);
}
