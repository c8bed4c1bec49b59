/*
 * routes.c: the route table (see routes.h). Adding a route is one entry
 * here plus its handler (handlers.h).
 */
#include "api/routes.h"

#include <assert.h>
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

/* Whether pattern matches sg. *literal gets one bit per literal segment,
 * the first segment's highest, so that of two patterns matching one path
 * the greater value is the one with a literal first where they differ. */
static bool pattern_matches(const char *pattern, const segments_t *sg, unsigned *literal,
                            h2o_iovec_t params[API_ROUTE_PARAMS])
{
    const char *p = pattern;
    int i = 0, np = 0;
    *literal = 0;
    memset(params, 0, sizeof(h2o_iovec_t) * API_ROUTE_PARAMS);
    if (strcmp(pattern, "/") == 0) return sg->n == 0;
    while (*p == '/') {
        p++;
        size_t n = strcspn(p, "/");
        if (i == sg->n) return false;
        if (n >= 2 && p[0] == '{' && p[n - 1] == '}') {
            assert(np < API_ROUTE_PARAMS);
            params[np++] = h2o_iovec_init(sg->s[i], sg->len[i]);
        } else if (n == sg->len[i] && memcmp(p, sg->s[i], n) == 0) {
            *literal |= 1u << (API_ROUTE_SEGMENTS - 1 - i);
        } else {
            return false;
        }
        i++;
        p += n;
    }
    return i == sg->n;
}

void api_route_find(const api_route_t *table, size_t n, const char *path, size_t len, enum api_method method,
                    api_route_match_t *m)
{
    memset(m, 0, sizeof *m);
    segments_t sg;
    if (!split(path, len, &sg)) return;
    /* The most literal pattern that matches; the first of equals. */
    const char *best = NULL;
    unsigned best_literal = 0, literal;
    h2o_iovec_t params[API_ROUTE_PARAMS];
    for (size_t i = 0; i < n; i++) {
        if (best != NULL && strcmp(table[i].path, best) == 0) continue;
        if (!pattern_matches(table[i].path, &sg, &literal, params)) continue;
        if (best != NULL && literal <= best_literal) continue;
        best = table[i].path;
        best_literal = literal;
        memcpy(m->params, params, sizeof params);
    }
    if (best == NULL) return;
    /* Its methods, and the entry for this one. */
    enum api_method want = method == METHOD_HEAD ? METHOD_GET : method;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(table[i].path, best) != 0) continue;
        m->allowed |= METHOD_BIT(table[i].method);
        if (table[i].method == want && m->route == NULL) m->route = &table[i];
    }
    if (m->allowed & METHOD_BIT(METHOD_GET)) m->allowed |= METHOD_BIT(METHOD_HEAD);
}

void api_route_match(const char *path, size_t len, enum api_method method, api_route_match_t *m)
{
    api_route_find(API_ROUTES, API_NROUTES, path, len, method, m);
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
