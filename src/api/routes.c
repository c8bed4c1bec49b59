/*
 * routes.c: the route table (see routes.h). Adding a route is one entry
 * here plus its handler (handlers.h).
 */
#include "api/routes.h"

#include <assert.h>
#include <pthread.h>
#include <string.h>

#include "api/handlers.h"

/* Query parameters; a name ending in "[]" takes several values (query.h). */
static const char *const NO_QUERY[] = {NULL};
static const char *const PAGING[] = {"page", "records", "cursor", NULL};
#define LEAD_FILTERS                                                                                         \
    "stage[]", "status[]", "source[]", "account_id[]", "contact_id[]", "value_min", "value_max",             \
        "probability_min", "probability_max", "created_from", "created_to", "updated_from", "updated_to",    \
        "search", "has_overdue", "has_open_follows"
#define FOLLOW_FILTERS "status[]", "due_from", "due_to", "sort", "page", "records", "cursor"
static const char *const LEAD_LIST[] = {LEAD_FILTERS, "sort",  "page",   "records",
                                        "cursor",     "count", "format", NULL};
static const char *const LEAD_SUMMARY[] = {LEAD_FILTERS, NULL};
static const char *const LEAD_IMPORT[] = {"mode", NULL};
static const char *const LEAD_FOLLOWS[] = {FOLLOW_FILTERS, NULL};
static const char *const APP_FOLLOWS[] = {FOLLOW_FILTERS, "lead_id[]", NULL};
static const char *const TRASH_LIST[] = {"page", "records", "cursor", NULL};
static const char *const HISTORY[] = {"page", "records", "cursor", NULL};

/* One entry per method and path: the method, the path pattern, the
 * handler, then the query parameters it reads, what its writes make stale
 * in the response cache, whether credentials are needed, its body limit
 * (none: no body is read) and a summary for the docs. */
const api_route_t API_ROUTES[] = {
    {METHOD_GET, "/healthz", health_get, .query = NO_QUERY,
     .summary = "Liveness: 200 {\"status\":\"ok\"}, no credentials, no database"},
    {METHOD_GET, "/readyz", health_ready, .query = NO_QUERY,
     .summary = "Readiness: 200 when the database answers and the writer runs, else 503; no credentials"},
    {METHOD_GET, "/.well-known/jwks.json", jwks_get, .query = NO_QUERY,
     .summary = "crmd's public token keys as a JWK Set, no credentials"},
    {METHOD_GET, "/openapi.json", openapi_get, .query = NO_QUERY,
     .summary = "The OpenAPI 3.1 document of the API, no credentials"},
    {METHOD_GET, "/", board_index, .query = NO_QUERY,
     .summary = "The pipeline board, a web app on this API (docs/board.md), no credentials"},
    {METHOD_GET, "/board/{file}", board_file, .query = NO_QUERY,
     .summary = "A file of the board (named by its content's hash, cached for a year), no credentials"},

    {METHOD_GET, "/leads", leads_list, .query = LEAD_LIST, .auth = true,
     .summary = "A page of the app's leads: filters, search, sort, cursor; newest first; all of them as CSV "
                "(format=csv or Accept: text/csv)"},
    {METHOD_POST, "/leads", leads_create, .query = NO_QUERY, .stale = API_STALE_APP, .etag = true,
     .auth = true, .body_max = API_MAX_BODY, .summary = "Create a lead"},
    {METHOD_POST, "/leads/batch", leads_batch, .query = NO_QUERY, .stale = API_STALE_APP, .auth = true,
     .body_max = API_MAX_BODY, .summary = "Create, update and delete up to 500 leads, all or nothing"},
    {METHOD_GET, "/leads/summary", summary_get, .query = LEAD_SUMMARY, .auth = true,
     .summary = "Pipeline summary of the leads the filters keep"},
    {METHOD_POST, "/leads/import", leads_import, .query = LEAD_IMPORT, .stale = API_STALE_APP, .auth = true,
     .body_max = API_IMPORT_MAX_BODY,
     .summary = "Create leads from a CSV file: all or nothing, or the valid rows"},
    {METHOD_GET, "/leads/{id}", leads_get, .query = NO_QUERY, .etag = true, .auth = true,
     .summary = "One lead"},
    {METHOD_PUT, "/leads/{id}", leads_update, .query = NO_QUERY, .stale = API_STALE_LEAD | API_STALE_APP,
     .etag = true, .auth = true, .body_max = API_MAX_BODY, .summary = "Change some of a lead's attributes"},
    {METHOD_DELETE, "/leads/{id}", leads_delete, .query = NO_QUERY, .stale = API_STALE_LEAD | API_STALE_APP,
     .auth = true, .summary = "Move a lead and its follows to the trash"},
    {METHOD_GET, "/leads/trash/show", leads_trash_list, .query = TRASH_LIST, .auth = true,
     .summary = "A page of the app's trashed leads, newest deletion first, each with deleted_at"},
    {METHOD_PUT, "/leads/{id}/recover", leads_recover, .query = NO_QUERY,
     .stale = API_STALE_LEAD | API_STALE_APP, .etag = true, .auth = true,
     .summary = "Bring a lead back from the trash with its follows"},
    {METHOD_GET, "/leads/{id}/history", leads_history, .query = HISTORY, .auth = true,
     .summary = "A page of a lead's changes and its follows', newest first (also in the trash)"},
    {METHOD_DELETE, "/leads/trash/{id}", leads_trash_purge, .query = NO_QUERY, .auth = true,
     .summary = "Purge a lead and its follows from the trash for good"},

    {METHOD_GET, "/leads/{id}/follows", follows_list, .query = LEAD_FOLLOWS, .auth = true,
     .summary = "A page of a lead's follows, by due date: filters, sort, cursor"},
    {METHOD_POST, "/leads/{id}/follows", follows_create, .query = NO_QUERY, .stale = API_STALE_LEAD,
     .etag = true, .auth = true, .body_max = API_MAX_BODY, .summary = "Create a follow of a lead"},
    {METHOD_GET, "/leads/{id}/follows/{follow_id}", follows_get, .query = NO_QUERY, .etag = true,
     .auth = true, .summary = "One follow"},
    {METHOD_PUT, "/leads/{id}/follows/{follow_id}", follows_update, .query = NO_QUERY,
     .stale = API_STALE_LEAD, .etag = true, .auth = true, .body_max = API_MAX_BODY,
     .summary = "Change some of a follow's attributes"},
    {METHOD_DELETE, "/leads/{id}/follows/{follow_id}", follows_delete, .query = NO_QUERY,
     .stale = API_STALE_LEAD, .auth = true, .summary = "Delete a follow"},

    {METHOD_GET, "/follows", follows_all, .query = APP_FOLLOWS, .auth = true,
     .summary = "A page of the follows of all the app's leads, by due date: filters, sort, cursor"},
    {METHOD_GET, "/webhooks", webhooks_list, .query = PAGING, .auth = true,
     .summary = "A page of the app's webhooks, newest first (never their secrets)"},
    {METHOD_POST, "/webhooks", webhooks_create, .query = NO_QUERY, .auth = true,
     .body_max = API_WEBHOOK_BODY_MAX, .summary = "Create a webhook; the 201 alone shows its secret"},
    {METHOD_GET, "/webhooks/{id}", webhooks_get, .query = NO_QUERY, .auth = true, .summary = "One webhook"},
    {METHOD_PUT, "/webhooks/{id}", webhooks_update, .query = NO_QUERY, .auth = true,
     .body_max = API_WEBHOOK_BODY_MAX, .summary = "Change some of a webhook's attributes (never its secret)"},
    {METHOD_DELETE, "/webhooks/{id}", webhooks_delete, .query = NO_QUERY, .auth = true,
     .summary = "Delete a webhook, its undelivered events and its log"},
    {METHOD_GET, "/webhooks/{id}/deliveries", webhooks_deliveries, .query = PAGING, .auth = true,
     .summary = "A page of a webhook's delivery attempts, newest first"},
};
const size_t API_NROUTES = sizeof API_ROUTES / sizeof API_ROUTES[0];

/* The methods' names, by enum api_method: the order Allow lists them. */
static const char *const METHODS[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"};
#define NMETHODS (sizeof METHODS / sizeof METHODS[0])
_Static_assert(NMETHODS == METHOD_OTHER, "a name for every method but METHOD_OTHER");

enum api_method api_method_of(const char *name, size_t len)
{
    for (size_t i = 0; i < NMETHODS; i++)
        if (strlen(METHODS[i]) == len && memcmp(METHODS[i], name, len) == 0) return (enum api_method)i;
    return METHOD_OTHER;
}

int api_unmatched_route(enum api_method method)
{
    return (int)API_NROUTES + (int)method;
}

const char *api_method_name(enum api_method method)
{
    return method < METHOD_OTHER ? METHODS[method] : "OTHER";
}

size_t api_allow_header(unsigned allowed, char *buf, size_t size)
{
    if (allowed & METHOD_BIT(METHOD_GET)) allowed |= METHOD_BIT(METHOD_HEAD);
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < NMETHODS; i++) {
        if (!(allowed & METHOD_BIT(i))) continue;
        int n = snprintf(buf + len, size - len, "%s%s", len ? ", " : "", METHODS[i]);
        if (n < 0 || (size_t)n >= size - len) break;
        len += (size_t)n;
    }
    return len;
}

/* A path cut into its segments. */
typedef struct segments {
    const char *s[API_ROUTE_SEGMENTS];
    size_t len[API_ROUTE_SEGMENTS];
    int n;
} segments_t;

/* Cuts path[0..len) at '/'; false (no route) when it does not start with
 * '/', has an empty segment or too many. */
static bool split(const char *path, size_t len, segments_t *sg)
{
    sg->n = 0;
    if (len == 0 || path[0] != '/') return false;
    if (len == 1) return true; /* "/": no segment */
    /* One trailing slash is ignored, so "/leads/" is "/leads". */
    if (len > 1 && path[len - 1] == '/') len--;
    size_t i = 1;
    while (i <= len) {
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        if (i == start || sg->n == API_ROUTE_SEGMENTS) return false;
        sg->s[sg->n] = path + start;
        sg->len[sg->n] = i - start;
        sg->n++;
        i++;
    }
    return true;
}

/* A pattern cut into its segments once: route matching cut each pattern
 * again for every request, about 7,000 instructions of a GET's 77,000
 * (callgrind, bench/results.md). A segment is a literal (its text and
 * length) or a {param} (its bit in params). */
typedef struct pattern {
    int n; /* segments; 0 for "/" */
    const char *s[API_ROUTE_SEGMENTS];
    size_t len[API_ROUTE_SEGMENTS];
    unsigned params; /* bit i: segment i is a {param} */
    size_t group;    /* the first entry of the table with the same path */
    /* Bit q of fixed[i], for a {param} segment i: pattern q has a literal
     * there after the same segments before it, a fixed word that the
     * {param} does not match (contract-notes.md: `/leads/trash` is no
     * lead id, so it is no route at all). */
    uint64_t fixed[API_ROUTE_SEGMENTS];
} pattern_t;

/* The most entries a table other than API_ROUTES may have (the tests'):
 * one bit each in pattern_t.fixed. */
#define ROUTES_OTHER_MAX 64
_Static_assert(sizeof API_ROUTES / sizeof API_ROUTES[0] <= ROUTES_OTHER_MAX, "a bit of fixed per route");

/* Whether segment i of a and b is the same literal, or a {param} in both. */
static bool same_segment(const pattern_t *a, const pattern_t *b, int i)
{
    bool pa = a->params & (1u << i), pb = b->params & (1u << i);
    if (pa || pb) return pa && pb;
    return a->len[i] == b->len[i] && memcmp(a->s[i], b->s[i], a->len[i]) == 0;
}

/* Fills each pattern's fixed words (pattern_t.fixed) from the others. */
static void find_fixed_words(pattern_t *out, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        for (int i = 0; i < out[k].n; i++) {
            if (!(out[k].params & (1u << i))) continue;
            for (size_t q = 0; q < n; q++) {
                if (out[q].group != q || out[q].n <= i || (out[q].params & (1u << i))) continue;
                bool prefix = true;
                for (int j = 0; j < i && prefix; j++)
                    prefix = same_segment(&out[k], &out[q], j);
                if (prefix) out[k].fixed[i] |= (uint64_t)1 << q;
            }
        }
    }
}

static void compile(const api_route_t *table, size_t n, pattern_t *out)
{
    for (size_t k = 0; k < n; k++) {
        pattern_t *pt = &out[k];
        const char *p = table[k].path;
        memset(pt, 0, sizeof *pt);
        pt->group = k;
        for (size_t j = 0; j < k; j++) {
            if (strcmp(table[j].path, p) == 0) {
                pt->group = j;
                break;
            }
        }
        if (strcmp(p, "/") == 0) continue;
        while (*p == '/') {
            const char *seg = ++p;
            while (*p != '\0' && *p != '/')
                p++;
            size_t len = (size_t)(p - seg);
            assert(pt->n < API_ROUTE_SEGMENTS && len > 0);
            if (len >= 2 && seg[0] == '{' && seg[len - 1] == '}') pt->params |= 1u << pt->n;
            pt->s[pt->n] = seg;
            pt->len[pt->n] = len;
            pt->n++;
        }
        assert(*p == '\0');
    }
    find_fixed_words(out, n);
}

static pattern_t compiled[sizeof API_ROUTES / sizeof API_ROUTES[0]];
static pthread_once_t compiled_once = PTHREAD_ONCE_INIT;

static void compile_routes(void)
{
    compile(API_ROUTES, API_NROUTES, compiled);
}

/* Whether pt matches sg. *literal gets one bit per literal segment, the
 * first segment's highest, so that of two patterns matching one path the
 * greater value is the one with a literal first where they differ. */
static bool pattern_matches(const pattern_t *all, const pattern_t *pt, const segments_t *sg,
                            unsigned *literal)
{
    *literal = 0;
    if (pt->n != sg->n) return false;
    for (int i = 0; i < pt->n; i++) {
        if (pt->params & (1u << i)) {
            for (uint64_t f = pt->fixed[i]; f != 0; f &= f - 1) {
                const pattern_t *q = &all[__builtin_ctzll(f)];
                if (q->len[i] == sg->len[i] && memcmp(q->s[i], sg->s[i], sg->len[i]) == 0) return false;
            }
            continue;
        }
        if (pt->len[i] != sg->len[i] || memcmp(pt->s[i], sg->s[i], sg->len[i]) != 0) return false;
        *literal |= 1u << (API_ROUTE_SEGMENTS - 1 - i);
    }
    return true;
}

static void find(const api_route_t *table, const pattern_t *pt, size_t n, const char *path, size_t len,
                 enum api_method method, api_route_match_t *m)
{
    memset(m, 0, sizeof *m);
    segments_t sg;
    if (!split(path, len, &sg)) return;
    /* The most literal pattern that matches; the first of equals. */
    size_t best = n;
    unsigned best_literal = 0, literal;
    for (size_t i = 0; i < n; i++) {
        if (pt[i].group != i) continue; /* its path was tried already */
        if (!pattern_matches(pt, &pt[i], &sg, &literal)) continue;
        if (best < n && literal <= best_literal) continue;
        best = i;
        best_literal = literal;
    }
    if (best == n) return;
    for (int i = 0, np = 0; i < sg.n; i++) {
        if (!(pt[best].params & (1u << i))) continue;
        assert(np < API_ROUTE_PARAMS);
        m->params[np++] = h2o_iovec_init(sg.s[i], sg.len[i]);
    }
    /* Its methods, and the entry for this one. */
    enum api_method want = method == METHOD_HEAD ? METHOD_GET : method;
    for (size_t i = best; i < n; i++) {
        if (pt[i].group != best) continue;
        m->allowed |= METHOD_BIT(table[i].method);
        if (table[i].method == want && m->route == NULL) m->route = &table[i];
    }
    if (m->allowed & METHOD_BIT(METHOD_GET)) m->allowed |= METHOD_BIT(METHOD_HEAD);
}

void api_route_find(const api_route_t *table, size_t n, const char *path, size_t len, enum api_method method,
                    api_route_match_t *m)
{
    if (table == API_ROUTES) {
        api_route_match(path, len, method, m);
        return;
    }
    /* Another table (the tests'): cut here, each time. */
    pattern_t pt[ROUTES_OTHER_MAX];
    assert(n <= ROUTES_OTHER_MAX);
    if (n > ROUTES_OTHER_MAX) n = ROUTES_OTHER_MAX;
    compile(table, n, pt);
    find(table, pt, n, path, len, method, m);
}

void api_route_match(const char *path, size_t len, enum api_method method, api_route_match_t *m)
{
    pthread_once(&compiled_once, compile_routes);
    find(API_ROUTES, compiled, API_NROUTES, path, len, method, m);
}

void api_routes_print_table(const api_route_t *table, size_t n, FILE *out)
{
    fprintf(out, "| method | path | auth | summary |\n|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "| %s | `%s` | %s | %s |\n", METHODS[table[i].method], table[i].path,
                table[i].auth ? "yes" : "no", table[i].summary);
}

void api_routes_print(FILE *out)
{
    api_routes_print_table(API_ROUTES, API_NROUTES, out);
}
