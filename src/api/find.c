/*
 * find.c: see find.h.
 *
 * Sections:
 *   values       one query parameter's values into a filter's fields
 *   filters      the lead and follow filters, the sort, count, paging
 *   binding      the digest a cursor is bound to
 *   rendering    rows, and meta with the next page's cursor
 *   lists        GET /leads/, /leads/{id}/follows, /follows/
 */
#include "api/find.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "api/auth.h"
#include "api/cursor.h"
#include "api/etag.h"
#include "api/export.h"
#include "api/query.h"
#include "api/request.h"
#include "api/resource.h"
#include "model/decimal.h"
#include "model/text.h"
#include "model/timestamp.h"

#define LEADS_DEFAULT_RECORDS 15
#define FOLLOWS_DEFAULT_RECORDS 100
#define SEARCH_MAX_CHARS 100
#define SOURCE_MAX_CHARS 64

/* --- values ------------------------------------------------------------------ */

static void bad(verrs_t *errs, const char *name, const char *fmt, const char *what)
{
    verrs_add(errs, "validation_error", NULL, name, fmt, name, what);
}

/* Reads the values of an enum parameter (names by namefn) as bits. */
static unsigned enum_bits(api_req_t *r, const char *name, const char *(*namefn)(int), int count,
                          const char *choices, verrs_t *errs)
{
    h2o_iovec_t v[API_QUERY_MAX];
    int n = api_query_values(r, name, v, API_QUERY_MAX);
    unsigned bits = 0;
    for (int i = 0; i < n && i < API_QUERY_MAX; i++) {
        int k = 0;
        while (k < count && !h2o_memis(v[i].base, v[i].len, namefn(k), strlen(namefn(k))))
            k++;
        if (k == count) {
            bad(errs, name, "%s must be one of %s", choices);
            return 0;
        }
        bits |= 1u << k;
    }
    return bits;
}

/* The number of values of name, or an error when there are too many. */
static int list_values(api_req_t *r, const char *name, h2o_iovec_t *v, verrs_t *errs)
{
    int n = api_query_values(r, name, v, STORE_LIST_MAX);
    if (n <= STORE_LIST_MAX) return n;
    verrs_add(errs, "validation_error", NULL, name, "%s takes at most %d values", name, STORE_LIST_MAX);
    return -1;
}

/* UUIDs (any letter case), and "null" when unset is allowed, sorted. */
static int id_values(api_req_t *r, const char *name, char (*out)[UUID_BUFSZ], bool *unset, verrs_t *errs)
{
    h2o_iovec_t v[STORE_LIST_MAX];
    int n = list_values(r, name, v, errs), k = 0;
    for (int i = 0; i < n; i++) {
        if (unset != NULL && h2o_memis(v[i].base, v[i].len, H2O_STRLIT("null"))) {
            *unset = true;
        } else if (!uuid_parse(v[i].base, v[i].len, out[k])) {
            bad(errs, name, "%s must be a UUID%s", unset != NULL ? " or null" : "");
            return 0;
        } else {
            k++;
        }
    }
    qsort(out, (size_t)k, UUID_BUFSZ, (int (*)(const void *, const void *))strcmp);
    return k;
}

static int text_cmp(const void *a, const void *b)
{
    const text_ref_t *x = a, *y = b;
    int c = memcmp(x->ptr, y->ptr, x->len < y->len ? x->len : y->len);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* Sources: exact values after trimming, sorted. */
static int source_values(api_req_t *r, text_ref_t *out, verrs_t *errs)
{
    h2o_iovec_t v[STORE_LIST_MAX];
    int n = list_values(r, "source", v, errs);
    for (int i = 0; i < n; i++) {
        const char *s;
        size_t len, cps;
        if (text_clean(v[i].base, v[i].len, false, &s, &len, &cps) != TEXT_OK || cps == 0 ||
            cps > SOURCE_MAX_CHARS) {
            bad(errs, "source", "%s values must be 1 to 64 characters%s", "");
            return 0;
        }
        out[i] = (text_ref_t){s, len};
    }
    if (n > 0) qsort(out, (size_t)n, sizeof *out, text_cmp);
    return n > 0 ? n : 0;
}

static bool money(api_req_t *r, const char *name, int64_t *cents, verrs_t *errs)
{
    h2o_iovec_t v = api_query_value(r, name);
    if (v.base == NULL) return false;
    if (decimal_parse(v.base, v.len, cents) == DECIMAL_OK) return true;
    bad(errs, name, "%s must be a decimal amount like value (at least 0, below 10^13, two decimals)%s", "");
    return false;
}

static int percent(api_req_t *r, const char *name, verrs_t *errs)
{
    h2o_iovec_t v = api_query_value(r, name);
    if (v.base == NULL) return -1;
    int x = 0;
    bool ok = v.len >= 1 && v.len <= 3;
    for (size_t i = 0; ok && i < v.len; i++) {
        ok = v.base[i] >= '0' && v.base[i] <= '9';
        x = x * 10 + (v.base[i] - '0');
    }
    if (ok && x <= 100) return x;
    bad(errs, name, "%s must be an integer from 0 to 100%s", "");
    return -1;
}

static bool time_of(api_req_t *r, const char *name, int64_t *ms, verrs_t *errs)
{
    h2o_iovec_t v = api_query_value(r, name);
    if (v.base == NULL) return false;
    if (ts_parse(v.base, v.len, ms) == 0) return true;
    bad(errs, name, "%s must be an RFC 3339 date-time such as 2026-03-05T14:00:00Z%s", "");
    return false;
}

/* -1 when not given, else 0 or 1. */
static int boolean(api_req_t *r, const char *name, verrs_t *errs)
{
    h2o_iovec_t v = api_query_value(r, name);
    if (v.base == NULL) return -1;
    if (h2o_memis(v.base, v.len, H2O_STRLIT("true"))) return 1;
    if (h2o_memis(v.base, v.len, H2O_STRLIT("false"))) return 0;
    bad(errs, name, "%s must be true or false%s", "");
    return -1;
}

/* The search term, trimmed and folded into r's pool. */
static text_ref_t search_term(api_req_t *r, verrs_t *errs)
{
    h2o_iovec_t v = api_query_value(r, "search");
    if (v.base == NULL) return (text_ref_t){NULL, 0};
    const char *s;
    size_t len, cps;
    if (text_clean(v.base, v.len, false, &s, &len, &cps) != TEXT_OK || cps == 0 || cps > SEARCH_MAX_CHARS) {
        bad(errs, "search", "%s must be 1 to 100 characters after trimming%s", "");
        return (text_ref_t){NULL, 0};
    }
    char *out = h2o_mem_alloc_pool(&r->req->pool, TEXT_FOLD_MAX(len) + 1);
    size_t n = text_fold(s, len, out, TEXT_FOLD_MAX(len));
    return (text_ref_t){out, n};
}

/* --- filters ------------------------------------------------------------------- */

void api_lead_filter_parse(api_req_t *r, store_lead_filter_t *f, verrs_t *errs)
{
    store_lead_filter_init(f);
    f->stages = enum_bits(r, "stage", lead_stage_name, SCHEMA_STAGES,
                          "new, contacted, qualified, proposal, negotiation", errs);
    f->statuses =
        enum_bits(r, "status", lead_status_name, SCHEMA_STATUSES, "active, inactive, converted, lost", errs);
    f->nsources = source_values(r, f->sources, errs);
    f->naccounts = id_values(r, "account_id", f->accounts, &f->account_unset, errs);
    f->ncontacts = id_values(r, "contact_id", f->contacts, &f->contact_unset, errs);
    f->has_value_min = money(r, "value_min", &f->value_min, errs);
    f->has_value_max = money(r, "value_max", &f->value_max, errs);
    f->probability_min = percent(r, "probability_min", errs);
    f->probability_max = percent(r, "probability_max", errs);
    f->has_created_from = time_of(r, "created_from", &f->created_from, errs);
    f->has_created_to = time_of(r, "created_to", &f->created_to, errs);
    f->has_updated_from = time_of(r, "updated_from", &f->updated_from, errs);
    f->has_updated_to = time_of(r, "updated_to", &f->updated_to, errs);
    f->search = search_term(r, errs);
    f->has_overdue = boolean(r, "has_overdue", errs);
    f->has_open = boolean(r, "has_open_follows", errs);
}

/* The names of the sort keys, by key. */
static const char *const LEAD_SORT_NAMES[] = {
    [LEAD_KEY_CREATED] = "created_at", [LEAD_KEY_UPDATED] = "updated_at",      [LEAD_KEY_NAME] = "name",
    [LEAD_KEY_VALUE] = "value",        [LEAD_KEY_PROBABILITY] = "probability", [LEAD_KEY_STAGE] = "stage"};
static const char *const FOLLOW_SORT_NAMES[] = {
    [FOLLOW_KEY_DUE] = "due_date", [FOLLOW_KEY_CREATED] = "created_at", [FOLLOW_KEY_UPDATED] = "updated_at"};

/* sort: a comma list of names[0..count), each optionally after '-'. */
static int sort_of(api_req_t *r, const char *const *names, int count, store_sort_t *out, verrs_t *errs)
{
    h2o_iovec_t v = api_query_value(r, "sort");
    if (v.base == NULL) return 0;
    int n = 0;
    const char *p = v.base, *end = v.base + v.len;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *iend = comma != NULL ? comma : end;
        bool desc = p < iend && *p == '-';
        const char *name = p + desc;
        int k = 0;
        while (k < count && !h2o_memis(name, (size_t)(iend - name), names[k], strlen(names[k])))
            k++;
        bool twice = false;
        for (int i = 0; i < n && k < count; i++)
            twice |= out[i].key == k;
        if (k == count || twice || n == count) {
            verrs_add(errs, "validation_error", NULL, "sort",
                      twice ? "sort names a field twice"
                            : "sort must be a comma list of fields, each may start with -");
            return 0;
        }
        out[n++] = (store_sort_t){k, desc};
        if (comma == NULL) break;
        p = comma + 1;
    }
    return n;
}

void api_lead_query_parse(api_req_t *r, store_lead_query_t *q, verrs_t *errs)
{
    memset(q, 0, sizeof *q);
    api_lead_filter_parse(r, &q->f, errs);
    q->nsort = sort_of(r, LEAD_SORT_NAMES, 6, q->sort, errs);
}

/* --- binding -------------------------------------------------------------------- */

typedef struct digest {
    EVP_MD_CTX *ctx;
} digest_t;

static void dig(digest_t *d, const void *p, size_t n)
{
    if (d->ctx != NULL) EVP_DigestUpdate(d->ctx, p, n);
}

static void dig_int(digest_t *d, int64_t v)
{
    dig(d, &v, sizeof v);
}

static void dig_text(digest_t *d, text_ref_t t)
{
    dig_int(d, t.ptr == NULL ? -1 : (int64_t)t.len);
    if (t.ptr != NULL) dig(d, t.ptr, t.len);
}

static void dig_lead_filter(digest_t *d, const store_lead_filter_t *f)
{
    dig_int(d, f->stages);
    dig_int(d, f->statuses);
    dig_int(d, f->nsources);
    for (int i = 0; i < f->nsources; i++)
        dig_text(d, f->sources[i]);
    dig_int(d, f->naccounts * 2 + f->account_unset);
    dig(d, f->accounts, (size_t)f->naccounts * UUID_BUFSZ);
    dig_int(d, f->ncontacts * 2 + f->contact_unset);
    dig(d, f->contacts, (size_t)f->ncontacts * UUID_BUFSZ);
    const int64_t nums[] = {f->has_value_min,   f->value_min,       f->has_value_max,    f->value_max,
                            f->probability_min, f->probability_max, f->has_created_from, f->created_from,
                            f->has_created_to,  f->created_to,      f->has_updated_from, f->updated_from,
                            f->has_updated_to,  f->updated_to,      f->has_overdue,      f->has_open};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        dig_int(d, nums[i]);
    dig_text(d, f->search);
}

/* Starts a digest of r's filters and sort (the sort comes last). */
static void digest_begin(digest_t *d, int kind)
{
    /* The thread's context (etag.h): the digests of a request are made
     * one after the other. */
    d->ctx = api_sha256_begin();
    dig_int(d, kind);
}

/* Ends it into r->rd.digest, with the sort; false when it failed. */
static bool digest_end(api_req_t *r, digest_t *d, const store_sort_t *sort, int n)
{
    dig_int(d, n);
    for (int i = 0; i < n; i++)
        dig_int(d, sort[i].key * 2 + sort[i].desc);
    unsigned int len = 0;
    bool ok =
        d->ctx != NULL && EVP_DigestFinal_ex(d->ctx, r->rd.digest, &len) == 1 && len == sizeof r->rd.digest;
    return ok;
}

/* The i-th secret a cursor may be bound with, NULL past the last: those of
 * crmd's own keys in the thread's key set, the signing key's (the newest)
 * first, so that a cursor given before a key rotation still reads while
 * its key verifies tokens. */
static const unsigned char *cursor_secret(api_req_t *r, size_t i)
{
    static const unsigned char none[JWT_SECRET_BYTES]; /* a set without crmd's keys (tests) */
    const jwt_keyset_t *set = auth_keys(r);
    size_t k = 0;
    for (size_t j = jwt_keyset_count(set); j-- > 0;) {
        const unsigned char *secret = jwt_key_secret(jwt_keyset_key(set, j));
        if (secret != NULL && k++ == i) return secret;
    }
    return i == 0 && k == 0 ? none : NULL;
}

static api_cursor_bind_t binding(const api_req_t *r, const unsigned char *secret)
{
    api_cursor_bind_t b = {.secret = secret,
                           .app = r->app.id,
                           .kind = r->rd.kind,
                           .lead = r->rd.kind == CURSOR_LEAD_FOLLOWS || r->rd.kind == CURSOR_DELIVERIES ||
                                           r->rd.kind == CURSOR_HISTORY
                                       ? r->id
                                       : ""};
    memcpy(b.digest, r->rd.digest, sizeof b.digest);
    return b;
}

/* Whether text[0..len) is a cursor of r's list, read into *pos, bound with
 * any of the secrets. */
static bool cursor_read(api_req_t *r, const char *text, size_t len, store_pos_t *pos)
{
    const unsigned char *secret;
    for (size_t i = 0; (secret = cursor_secret(r, i)) != NULL; i++) {
        api_cursor_bind_t b = binding(r, secret);
        if (api_cursor_decode(&b, r->rd.order, r->rd.norder, text, len, pos)) return true;
    }
    return false;
}

/* Ends d into r->rd.key's variant, adding the secret r's cursors are made
 * with: a body kept from before a key rotation would hand out cursors of
 * the old key, which stop reading once it is retired. */
static void variant_end(api_req_t *r, digest_t *d)
{
    dig(d, cursor_secret(r, 0), JWT_SECRET_BYTES);
    unsigned int len = 0;
    bool ok = d->ctx != NULL && EVP_DigestFinal_ex(d->ctx, r->rd.key.variant, &len) == 1 &&
              len == sizeof r->rd.key.variant;
    if (!ok) r->rd.key.kind = 0; /* not kept */
}

/* Keys r's filtered page in the response cache: its filters and sort
 * (r->rd.digest), its count and cursor, its page and records. */
static void cache_variant(api_req_t *r)
{
    digest_t d;
    digest_begin(&d, r->rd.kind);
    dig(&d, r->rd.digest, sizeof r->rd.digest);
    dig_int(&d, r->rd.no_count);
    h2o_iovec_t c = api_query_value(r, "cursor");
    dig_text(&d, (text_ref_t){c.base, c.len});
    r->rd.key =
        (cache_key_t){.kind = CACHE_LEADS, .app = r->app.id, .page = r->rd.page, .records = r->rd.records};
    variant_end(r, &d);
}

/* Keys a plain list (already in r->rd.key) by its cursors' secret. */
static void plain_variant(api_req_t *r)
{
    digest_t d;
    digest_begin(&d, r->rd.kind);
    variant_end(r, &d);
}

/* --- paging ---------------------------------------------------------------------- */

/* page and records, or a cursor (into *after): with its problems. Sets
 * r->rd.page, records, want, by_cursor; returns whether a cursor is used. */
static bool paging(api_req_t *r, int default_records, store_pos_t *after, verrs_t *errs)
{
    bool ok = api_paging_parse(r, default_records, &r->rd.page, &r->rd.records, errs);
    r->rd.want = r->rd.records;
    h2o_iovec_t c = api_query_value(r, "cursor");
    if (c.base == NULL) return false;
    if (api_query_value(r, "page").base != NULL) {
        verrs_add(errs, "validation_error", NULL, "cursor", "cursor and page cannot be used together");
        return false;
    }
    if (!ok || errs->n > 0) return false; /* a cursor is judged against a valid query only */
    if (!cursor_read(r, c.base, c.len, after)) {
        verrs_add(errs, "validation_error", NULL, "cursor",
                  "cursor is not one this list gave, or it was given with other filters or sort");
        return false;
    }
    r->rd.by_cursor = true;
    r->rd.page = 1;
    return true;
}

/* count: exact (the default) or none. */
static bool count_none(api_req_t *r, verrs_t *errs)
{
    h2o_iovec_t v = api_query_value(r, "count");
    if (v.base == NULL || h2o_memis(v.base, v.len, H2O_STRLIT("exact"))) return false;
    if (h2o_memis(v.base, v.len, H2O_STRLIT("none"))) return true;
    verrs_add(errs, "validation_error", NULL, "count", "count must be exact or none");
    return false;
}

/* --- rendering ---------------------------------------------------------------------- */

void api_render_follow_expiry(api_render_t *c, const follow_t *f)
{
    if (f->status == FOLLOW_PENDING && f->has_due && f->due_at >= c->now && f->due_at + 1 < c->expires)
        c->expires = f->due_at + 1;
}

/* The request whose render context ctx is. */
static api_req_t *req_of(void *ctx)
{
    return (api_req_t *)((char *)ctx - offsetof(api_req_t, rd.render));
}

/* Whether a list's row is one of its page (then with the comma before
 * it written), not the one read past it to know that a page follows. */
static bool on_page(api_render_t *c, api_req_t *r)
{
    if (c->n == r->rd.want) {
        r->rd.more = true; /* the row read past the page */
        return false;
    }
    if (c->n++ > 0) jw_lit(c->w, ",");
    return true;
}

static void emit_lead(void *ctx, const lead_t *l)
{
    api_render_t *c = ctx;
    api_req_t *r = req_of(ctx);
    if (!on_page(c, r)) return;
    lead_encode(c->w, l);
    store_lead_pos(l, r->rd.order, r->rd.norder, &r->rd.last);
}

static void emit_follow(void *ctx, const follow_t *f)
{
    api_render_t *c = ctx;
    api_req_t *r = req_of(ctx);
    if (!on_page(c, r)) return;
    follow_encode(c->w, f, c->now);
    api_render_follow_expiry(c, f);
    store_follow_pos(f, r->rd.order, r->rd.norder, &r->rd.last);
}

/* A list's meta: counts (unless count=none), page, records, nextCursor. */
static void write_meta(api_req_t *r)
{
    jw_t *w = &r->out;
    jw_lit(w, "],\"meta\":{");
    if (!r->rd.no_count) {
        int64_t total = r->rd.total, records = r->rd.records;
        jw_lit(w, "\"totalPages\":");
        jw_int(w, total == 0 ? 0 : (total + records - 1) / records);
        jw_lit(w, ",\"totalRecords\":");
        jw_int(w, total);
        jw_lit(w, ",");
    }
    jw_lit(w, "\"page\":");
    if (r->rd.by_cursor)
        jw_lit(w, "null");
    else
        jw_int(w, r->rd.page);
    jw_lit(w, ",\"records\":");
    jw_int(w, r->rd.records);
    jw_lit(w, ",\"nextCursor\":");
    /* The plain lists read no extra row: their total says what follows. */
    bool more = r->rd.plain ? api_resource_offset(r) + r->rd.render.n < r->rd.total : r->rd.more;
    char cursor[API_CURSOR_MAX + 1];
    api_cursor_bind_t b = binding(r, cursor_secret(r, 0));
    if (more && r->rd.render.n > 0 &&
        api_cursor_encode(&b, r->rd.order, r->rd.norder, &r->rd.last, cursor, sizeof cursor) > 0)
        jw_cstr(w, cursor);
    else
        jw_lit(w, "null");
    jw_lit(w, "}}");
}

/* --- lists -------------------------------------------------------------------------- */

/* The parameters of a plain list: the reference's. */
static const char *const PLAIN[] = {"page", "records", "format", NULL};

static store_rc_t start_plain_leads(api_req_t *r, const store_async_t *async)
{
    return store_lead_list(r->t->store, r->app.id, api_resource_offset(r), r->rd.records, &r->rd.total,
                           emit_lead, &r->rd.render, async);
}

static store_rc_t start_find_leads(api_req_t *r, const store_async_t *async)
{
    return store_lead_find(r->t->store, r->app.id, r->rd.query, &r->rd.total, emit_lead, &r->rd.render,
                           async);
}

static store_rc_t start_plain_follows(api_req_t *r, const store_async_t *async)
{
    return store_follow_list(r->t->store, r->app.id, r->id, api_resource_offset(r), r->rd.records,
                             &r->rd.total, emit_follow, &r->rd.render, async);
}

static store_rc_t start_find_follows(api_req_t *r, const store_async_t *async)
{
    return store_follow_find(r->t->store, r->app.id, r->rd.query, &r->rd.total, emit_follow, &r->rd.render,
                             async);
}

static const api_read_spec_t PLAIN_LEADS = {start_plain_leads, true, API_LEAD_NOT_FOUND_TITLE,
                                            API_LEAD_NOT_FOUND_DETAIL, write_meta};
static const api_read_spec_t FIND_LEADS = {start_find_leads, true, API_LEAD_NOT_FOUND_TITLE,
                                           API_LEAD_NOT_FOUND_DETAIL, write_meta};
/* A list of one lead's follows names its lead: a 404 there is the lead's. */
static const api_read_spec_t PLAIN_FOLLOWS = {start_plain_follows, true, API_LEAD_NOT_FOUND_TITLE,
                                              API_LEAD_NOT_FOUND_DETAIL, write_meta};
static const api_read_spec_t FIND_FOLLOWS = {start_find_follows, true, API_LEAD_NOT_FOUND_TITLE,
                                             API_LEAD_NOT_FOUND_DETAIL, write_meta};

/* Answers the problems of r's query (query.c's and errs), or reads. */
static bool checked_or_reply(api_req_t *r, const verrs_t *errs)
{
    if (errs->n == 0) return true;
    api_reply_errors(r, errs);
    return false;
}

/* Starts errs with the problems query.c found. */
static void errs_begin(const api_req_t *r, verrs_t *errs)
{
    *errs = r->query->errs;
}

/* The q value of an Accept media range's parameters (1000 for 1.000). */
static int accept_q(const char *p, const char *end)
{
    const char *q = p;
    while ((q = memchr(q, ';', (size_t)(end - q))) != NULL) {
        q++;
        while (q < end && *q == ' ')
            q++;
        if (end - q < 2 || (q[0] != 'q' && q[0] != 'Q') || q[1] != '=') continue;
        int v = 0, scale = 1000;
        for (q += 2; q < end && *q != ';' && *q != ' '; q++)
            if (*q >= '0' && *q <= '9') {
                v += (*q - '0') * scale;
                scale /= 10;
            } else if (*q != '.') {
                return 0;
            }
        return v > 1000 ? 1000 : v;
    }
    return 1000;
}

/* Whether r's Accept prefers text/csv to application/json: text/csv named
 * with a q above 0, and JSON not given a higher one (a tie goes to the
 * first named, or to text/csv against a range). JSON's q is that of
 * application/json, else of the range of every application type, else of
 * the range of every type (RFC 9110 12.5.1: the most specific range that
 * matches), so that "text/csv;q=0.5" beside every type at q=0.9 prefers
 * JSON. text/csv must be named: the range of every text type alone does
 * not ask for CSV. */
static bool accepts_csv(const api_req_t *r)
{
    enum { CSV, JSON, APP_ANY, ANY, KINDS };
    int q[KINDS] = {-1, -1, -1, -1}, at[KINDS] = {0}, n = 0;
    const h2o_headers_t *hs = &r->req->headers;
    for (ssize_t i = -1; (i = h2o_find_header(hs, H2O_TOKEN_ACCEPT, i)) >= 0;) {
        const char *p = hs->entries[i].value.base, *end = p + hs->entries[i].value.len;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p)), *iend = comma ? comma : end;
            while (p < iend && *p == ' ')
                p++;
            size_t tlen = 0;
            while (p + tlen < iend && p[tlen] != ';' && p[tlen] != ' ')
                tlen++;
            n++;
            int k = h2o_lcstris(p, tlen, H2O_STRLIT("text/csv"))           ? CSV
                    : h2o_lcstris(p, tlen, H2O_STRLIT("application/json")) ? JSON
                    : h2o_lcstris(p, tlen, H2O_STRLIT("application/*"))    ? APP_ANY
                    : h2o_lcstris(p, tlen, H2O_STRLIT("*/*"))              ? ANY
                                                                           : KINDS;
            if (k != KINDS && q[k] < 0) {
                q[k] = accept_q(p, iend);
                at[k] = n;
            }
            p = comma ? comma + 1 : end;
        }
    }
    int json = q[JSON] >= 0 ? JSON : q[APP_ANY] >= 0 ? APP_ANY : ANY;
    /* A tie goes to the one named first, or to text/csv named against a
     * range ("* / *, text/csv" asks for CSV in particular). */
    return q[CSV] > 0 && (q[CSV] > q[json] || (q[CSV] == q[json] && (json != JSON || at[CSV] < at[json])));
}

/* Whether r asks for CSV: format=csv, or no format and an Accept that
 * prefers it. A CSV export has no pages: page, records and cursor are
 * problems then (count does nothing). */
static bool wants_csv(api_req_t *r, verrs_t *errs)
{
    h2o_iovec_t f = api_query_value(r, "format");
    bool csv = f.base == NULL ? accepts_csv(r) : h2o_memis(f.base, f.len, H2O_STRLIT("csv"));
    if (f.base != NULL && !csv && !h2o_memis(f.base, f.len, H2O_STRLIT("json")))
        verrs_add(errs, "validation_error", NULL, "format", "format must be json or csv");
    static const char *const PAGING[] = {"page", "records", "cursor"};
    for (size_t i = 0; csv && i < sizeof PAGING / sizeof PAGING[0]; i++)
        if (api_query_value(r, PAGING[i]).base != NULL)
            verrs_add(errs, "validation_error", NULL, PAGING[i],
                      "%s does not apply to a CSV export, which holds every lead the filters keep",
                      PAGING[i]);
    return csv;
}

void api_leads_list(api_req_t *r)
{
    verrs_t errs;
    errs_begin(r, &errs);
    store_lead_query_t *q = h2o_mem_alloc_pool(&r->req->pool, sizeof *q + sizeof(store_pos_t));
    store_pos_t *after = (store_pos_t *)(q + 1);
    api_lead_query_parse(r, q, &errs);
    if (wants_csv(r, &errs)) {
        if (checked_or_reply(r, &errs)) api_leads_export(r, q);
        return;
    }
    r->rd.no_count = count_none(r, &errs);
    r->rd.kind = CURSOR_LEADS;
    r->rd.norder = store_lead_order(q->sort, q->nsort, r->rd.order);
    digest_t d;
    digest_begin(&d, CURSOR_LEADS);
    dig_lead_filter(&d, &q->f);
    if (!digest_end(r, &d, q->sort, q->nsort))
        verrs_add(&errs, "validation_error", NULL, "cursor", "cursor could not be made");
    bool cursor = paging(r, LEADS_DEFAULT_RECORDS, after, &errs);
    if (!checked_or_reply(r, &errs)) return;
    if (!api_query_has_other(r, PLAIN)) {
        r->rd.plain = true;
        r->rd.key = (cache_key_t){
            .kind = CACHE_LEADS, .app = r->app.id, .page = r->rd.page, .records = r->rd.records};
        plain_variant(r);
        api_resource_read(r, &PLAIN_LEADS);
        return;
    }
    q->limit = r->rd.records + 1; /* one more: whether a page follows */
    q->offset = cursor ? 0 : api_resource_offset(r);
    q->after = cursor ? after : NULL;
    q->count = !r->rd.no_count;
    q->now = r->now;
    r->rd.query = q;
    /* A page that depends on the leads alone (not on their follows, nor
     * on the time) is kept like the plain list, under its variant: a lead
     * write makes every list of its app stale. */
    if (q->f.has_overdue < 0 && q->f.has_open < 0) cache_variant(r);
    api_resource_read(r, &FIND_LEADS);
}

/* The follow filters of r's query into q (its lead set by the caller). */
static void follow_filter_parse(api_req_t *r, store_follow_query_t *q, verrs_t *errs)
{
    q->statuses = enum_bits(r, "status", follow_status_name, 3, "pending, completed, overdue", errs);
    q->has_due_from = time_of(r, "due_from", &q->due_from, errs);
    q->has_due_to = time_of(r, "due_to", &q->due_to, errs);
    q->nsort = sort_of(r, FOLLOW_SORT_NAMES, 3, q->sort, errs);
}

/* A follows list, of one lead (lead, kind CURSOR_LEAD_FOLLOWS) or of the app. */
static void follows_read(api_req_t *r, int kind)
{
    verrs_t errs;
    errs_begin(r, &errs);
    store_follow_query_t *q = h2o_mem_alloc_pool(&r->req->pool, sizeof *q + sizeof(store_pos_t));
    store_pos_t *after = (store_pos_t *)(q + 1);
    memset(q, 0, sizeof *q);
    q->lead = kind == CURSOR_LEAD_FOLLOWS ? r->id : "";
    follow_filter_parse(r, q, &errs);
    if (kind == CURSOR_FOLLOWS) q->nleads = id_values(r, "lead_id", q->leads, NULL, &errs);
    r->rd.kind = kind;
    r->rd.norder = store_follow_order(q->sort, q->nsort, r->rd.order);
    digest_t d;
    digest_begin(&d, kind);
    dig_int(&d, q->statuses);
    const int64_t nums[] = {q->has_due_from, q->due_from, q->has_due_to, q->due_to, q->nleads};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        dig_int(&d, nums[i]);
    dig(&d, q->leads, (size_t)q->nleads * UUID_BUFSZ);
    if (!digest_end(r, &d, q->sort, q->nsort))
        verrs_add(&errs, "validation_error", NULL, "cursor", "cursor could not be made");
    bool cursor = paging(r, FOLLOWS_DEFAULT_RECORDS, after, &errs);
    if (!checked_or_reply(r, &errs)) return;
    if (kind == CURSOR_LEAD_FOLLOWS && !api_query_has_other(r, PLAIN)) {
        r->rd.plain = true;
        r->rd.key = (cache_key_t){
            .kind = CACHE_FOLLOWS, .app = r->app.id, .page = r->rd.page, .records = r->rd.records};
        memcpy(r->rd.key.id, r->id, sizeof r->id);
        plain_variant(r);
        api_resource_read(r, &PLAIN_FOLLOWS);
        return;
    }
    q->limit = r->rd.records + 1;
    q->offset = cursor ? 0 : api_resource_offset(r);
    q->after = cursor ? after : NULL;
    q->count = true;
    q->now = r->now;
    r->rd.query = q;
    api_resource_read(r, &FIND_FOLLOWS);
}

void api_follows_list(api_req_t *r)
{
    follows_read(r, CURSOR_LEAD_FOLLOWS);
}

void api_follows_all(api_req_t *r)
{
    follows_read(r, CURSOR_FOLLOWS);
}

/* --- the trash ---------------------------------------------------------------------- */

/* The trash's order, as its cursors carry it (cursor.h): deleted_at in
 * LEAD_KEY_UPDATED's place, then id, both descending. */
static const store_sort_t TRASH_ORDER[] = {{LEAD_KEY_UPDATED, true}, {LEAD_KEY_ID, true}};

static void emit_trashed(void *ctx, const lead_t *l, int64_t deleted_at)
{
    api_render_t *c = ctx;
    api_req_t *r = req_of(ctx);
    if (!on_page(c, r)) return;
    lead_encode_trashed(c->w, l, deleted_at);
    lead_t at = *l;
    at.updated_at = deleted_at;
    store_lead_pos(&at, r->rd.order, r->rd.norder, &r->rd.last);
}

static store_rc_t start_trash(api_req_t *r, const store_async_t *async)
{
    return store_trash_list(r->t->store, r->app.id, r->rd.query, &r->rd.total, emit_trashed, &r->rd.render,
                            async);
}

static const api_read_spec_t TRASH = {start_trash, true, API_LEAD_NOT_FOUND_TITLE, API_LEAD_NOT_FOUND_DETAIL,
                                      write_meta};

/* The start of a list of one fixed order (the trash's, a history's):
 * its kind and order, the problems of its query, and its paging (the
 * cursor's position into *after). False when r has been answered. */
static bool fixed_list(api_req_t *r, int kind, const store_sort_t *order, int n, int records,
                       store_pos_t *after, bool *cursor)
{
    r->rd.kind = kind;
    r->rd.norder = n;
    memcpy(r->rd.order, order, (size_t)n * sizeof *order);
    verrs_t errs;
    errs_begin(r, &errs);
    digest_t d;
    digest_begin(&d, kind);
    if (!digest_end(r, &d, order, n))
        verrs_add(&errs, "validation_error", NULL, "cursor", "cursor could not be made");
    *cursor = paging(r, records, after, &errs);
    return checked_or_reply(r, &errs);
}

void api_trash_list(api_req_t *r)
{
    store_pos_t after;
    bool cursor;
    if (!fixed_list(r, CURSOR_TRASH, TRASH_ORDER, 2, LEADS_DEFAULT_RECORDS, &after, &cursor)) return;
    store_trash_query_t *q = h2o_mem_alloc_pool(&r->req->pool, sizeof *q);
    /* One row more than the page: whether a page follows. */
    *q = (store_trash_query_t){.limit = r->rd.records + 1, .offset = cursor ? 0 : api_resource_offset(r)};
    if (cursor) {
        q->after = true;
        q->after_deleted_at = after.v[0].i;
        size_t n = after.v[1].t.len < UUID_BUFSZ - 1 ? after.v[1].t.len : UUID_BUFSZ - 1;
        memcpy(q->after_id, after.v[1].t.ptr, n);
        q->after_id[n] = '\0';
    }
    r->rd.query = q;
    api_resource_read(r, &TRASH);
}

/* --- a lead's history ------------------------------------------------------------- */

#define HISTORY_DEFAULT_RECORDS 100

/* The history's order, as its cursors carry it (cursor.h). */
static const store_sort_t HISTORY_ORDER[] = {{LEAD_KEY_CREATED, true}};

static const char *const ACTIONS[] = {
    [STORE_CHANGE_CREATED] = "created",
    [STORE_CHANGE_UPDATED] = "updated",
    [STORE_CHANGE_DELETED] = "deleted",
    [STORE_CHANGE_RECOVERED] = "recovered",
    [STORE_CHANGE_FOLLOW_CREATED] = "follow_created",
    [STORE_CHANGE_FOLLOW_UPDATED] = "follow_updated",
    [STORE_CHANGE_FOLLOW_DELETED] = "follow_deleted",
};

static void emit_change(void *ctx, const store_change_t *c, int64_t seq)
{
    api_render_t *rc = ctx;
    api_req_t *r = req_of(ctx);
    if (!on_page(rc, r)) return;
    bool known = c->action >= 0 && (size_t)c->action < sizeof ACTIONS / sizeof ACTIONS[0];
    change_encode(rc->w, c->id, known ? ACTIONS[c->action] : "", c->changes, c->actor, c->at, c->follow_id);
    r->rd.last = (store_pos_t){.n = 1, .v = {{.i = seq}}};
}

static store_rc_t start_history(api_req_t *r, const store_async_t *async)
{
    return store_history_list(r->t->store, r->app.id, r->id, r->rd.query, &r->rd.total, emit_change,
                              &r->rd.render, async);
}

static const api_read_spec_t HISTORY = {start_history, true, API_LEAD_NOT_FOUND_TITLE,
                                        API_LEAD_NOT_FOUND_DETAIL, write_meta};

void api_history_list(api_req_t *r)
{
    store_pos_t after;
    bool cursor;
    if (!fixed_list(r, CURSOR_HISTORY, HISTORY_ORDER, 1, HISTORY_DEFAULT_RECORDS, &after, &cursor)) return;
    store_history_query_t *q = h2o_mem_alloc_pool(&r->req->pool, sizeof *q);
    *q = (store_history_query_t){.limit = r->rd.records + 1,
                                 .offset = cursor ? 0 : api_resource_offset(r),
                                 .after = cursor,
                                 .after_seq = cursor ? after.v[0].i : 0};
    r->rd.query = q;
    api_resource_read(r, &HISTORY);
}

/* --- newest-first lists ---------------------------------------------------------- */

bool api_newest_paging_or_reply(api_req_t *r, int kind, int default_records, store_newest_page_t *pg)
{
    verrs_t errs;
    errs_begin(r, &errs);
    r->rd.kind = kind;
    r->rd.norder = 2;
    r->rd.order[0] = (store_sort_t){FOLLOW_KEY_CREATED, true};
    r->rd.order[1] = (store_sort_t){FOLLOW_KEY_ID, true};
    digest_t d;
    digest_begin(&d, kind);
    if (!digest_end(r, &d, NULL, 0))
        verrs_add(&errs, "validation_error", NULL, "cursor", "cursor could not be made");
    store_pos_t *after = h2o_mem_alloc_pool(&r->req->pool, sizeof *after);
    bool cursor = paging(r, default_records, after, &errs);
    if (!checked_or_reply(r, &errs)) return false;
    *pg = (store_newest_page_t){.offset = api_resource_offset(r), .limit = r->rd.records + 1};
    if (cursor) {
        /* The decoded id is a canonical UUID in after->text, terminated. */
        pg->after_at = after->v[0].i;
        pg->after_id = after->v[1].t.ptr;
    }
    return true;
}

bool api_newest_row(void *ctx, int64_t created_at, const char *id)
{
    api_render_t *c = ctx;
    api_req_t *r = req_of(ctx);
    if (c->n == r->rd.want) {
        r->rd.more = true; /* the row read past the page */
        return false;
    }
    store_pos_t *pos = &r->rd.last;
    size_t n = strnlen(id, UUID_STRLEN);
    memcpy(pos->text, id, n);
    pos->text[n] = '\0';
    pos->n = 2;
    pos->v[0] = (store_val_t){.i = created_at};
    pos->v[1] = (store_val_t){.t = {pos->text, n}};
    if (c->n++ > 0) jw_lit(c->w, ",");
    return true;
}

void api_newest_meta(api_req_t *r)
{
    write_meta(r);
}
