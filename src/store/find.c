/*
 * find.c: the order of a find read, the position of a row in it, and the
 * SQL of the find reads for both dialects (see find.h).
 *
 * Sections:
 *   orders and positions   store_lead_order, store_follow_order, store_*_pos
 *   writing SQL            buffers, parameters in either dialect
 *   filters                the WHERE of leads and follows, search
 *   keys and phases        the ORDER BY, the keyset ranges, the arms
 *   statements             fq_lead_find, fq_follow_find, fq_lead_summary
 */
#include "store/find.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/text.h"
#include "store/schema.h"

/* --- orders and positions ---------------------------------------------------- */

static bool named(const store_sort_t *sort, int n, int key)
{
    for (int i = 0; i < n; i++)
        if (sort[i].key == key) return true;
    return false;
}

/* sort[0..n), then the ties not already named. */
static int complete(const store_sort_t *sort, int n, const store_sort_t *ties, int nties,
                    store_sort_t out[STORE_SORT_MAX])
{
    int k = 0;
    for (int i = 0; i < n && k < STORE_SORT_MAX; i++)
        out[k++] = sort[i];
    for (int i = 0; i < nties && k < STORE_SORT_MAX; i++)
        if (!named(sort, n, ties[i].key)) out[k++] = ties[i];
    return k;
}

void store_lead_filter_init(store_lead_filter_t *f)
{
    memset(f, 0, sizeof *f);
    f->probability_min = f->probability_max = -1;
    f->has_overdue = f->has_open = -1;
}

int store_lead_order(const store_sort_t *sort, int n, store_sort_t out[STORE_SORT_MAX])
{
    static const store_sort_t ties[] = {{LEAD_KEY_CREATED, true}, {LEAD_KEY_ID, true}};
    return complete(sort, n, ties, 2, out);
}

int store_follow_order(const store_sort_t *sort, int n, store_sort_t out[STORE_SORT_MAX])
{
    static const store_sort_t ties[] = {
        {FOLLOW_KEY_DUE, false}, {FOLLOW_KEY_CREATED, false}, {FOLLOW_KEY_ID, false}};
    return complete(sort, n, ties, 3, out);
}

static store_val_t val_int(int64_t i)
{
    return (store_val_t){.i = i};
}

/* Copies text into pos->text (cut to fit, which a name never needs). */
static store_val_t val_text(store_pos_t *pos, size_t *used, const char *s, size_t len)
{
    size_t room = sizeof pos->text - *used;
    if (len > room) len = room;
    memcpy(pos->text + *used, s, len);
    store_val_t v = {.t = {pos->text + *used, len}};
    *used += len;
    return v;
}

static store_val_t val_opt(bool set, int64_t i)
{
    return set ? val_int(i) : (store_val_t){.null = true};
}

/* Key key of lead l. */
static store_val_t lead_val(const lead_t *l, int key, store_pos_t *pos, size_t *used)
{
    if (key == LEAD_KEY_NAME) {
        /* A stored name is at most 255 code points, 1020 bytes, and folds
         * to no more than that (two-byte letters that grow to three make
         * 765 at most). */
        char buf[TEXT_FOLD_MAX(STORE_POS_NAME_MAX)];
        size_t len = l->name.len <= STORE_POS_NAME_MAX ? l->name.len : STORE_POS_NAME_MAX;
        size_t m = text_fold(l->name.ptr != NULL ? l->name.ptr : "", len, buf, sizeof buf);
        return val_text(pos, used, buf, m);
    }
    if (key == LEAD_KEY_ID) return val_text(pos, used, l->id, strlen(l->id));
    if (key == LEAD_KEY_VALUE) return val_opt(l->has_value, l->value_cents);
    if (key == LEAD_KEY_PROBABILITY) return val_opt(l->probability >= 0, l->probability);
    assert(key == LEAD_KEY_CREATED || key == LEAD_KEY_UPDATED || key == LEAD_KEY_STAGE);
    return val_int(key == LEAD_KEY_CREATED   ? l->created_at
                   : key == LEAD_KEY_UPDATED ? l->updated_at
                                             : l->stage);
}

/* Key key of follow f. */
static store_val_t follow_val(const follow_t *f, int key, store_pos_t *pos, size_t *used)
{
    switch (key) {
    case FOLLOW_KEY_DUE:
        return val_opt(f->has_due, f->due_at);
    case FOLLOW_KEY_ID:
        return val_text(pos, used, f->id, strlen(f->id));
    default:
        assert(key == FOLLOW_KEY_CREATED || key == FOLLOW_KEY_UPDATED);
        return val_int(key == FOLLOW_KEY_CREATED ? f->created_at : f->updated_at);
    }
}

void store_lead_pos(const lead_t *l, const store_sort_t *order, int n, store_pos_t *pos)
{
    size_t used = 0;
    pos->n = n;
    for (int i = 0; i < n; i++)
        pos->v[i] = lead_val(l, order[i].key, pos, &used);
}

void store_follow_pos(const follow_t *f, const store_sort_t *order, int n, store_pos_t *pos)
{
    size_t used = 0;
    pos->n = n;
    for (int i = 0; i < n; i++)
        pos->v[i] = follow_val(f, order[i].key, pos, &used);
}

/* --- writing SQL --------------------------------------------------------------- */

void fq_init(fq_t *q, bool pg)
{
    memset(q, 0, offsetof(fq_t, p));
    q->pg = pg;
    q->sql = (fq_buf_t){q->sql_buf, 0, sizeof q->sql_buf, false};
    q->where = (fq_buf_t){q->where_buf, 0, sizeof q->where_buf, false};
    q->count_where = (fq_buf_t){q->count_buf, 0, sizeof q->count_buf, false};
    q->sql_buf[0] = q->where_buf[0] = q->count_buf[0] = '\0';
}

static void put(fq_buf_t *b, const char *s)
{
    size_t n = strlen(s);
    if (b->overflow || b->cap - b->len <= n) {
        b->overflow = true;
        return;
    }
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

static void putf(fq_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(fq_buf_t *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        b->overflow = true;
    else
        put(b, tmp);
}

/* Adds a parameter; returns its number (from 1). */
static int param(fq_t *q, fq_param_t p)
{
    if (q->np == FQ_PARAMS_MAX) {
        q->failed = true;
        return 1;
    }
    q->p[q->np++] = p;
    return q->np;
}

/* Writes parameter n's placeholder: "?n" (SQLite) or "$n::type". */
static void put_param(fq_t *q, fq_buf_t *b, int n)
{
    static const char *const pg_types[] = {"int8", "text", "uuid", "text[]", "uuid[]"};
    if (q->pg)
        putf(b, "$%d::%s", n, pg_types[q->p[n - 1].type]);
    else
        putf(b, "?%d", n);
}

static void put_int(fq_t *q, fq_buf_t *b, int64_t v)
{
    put_param(q, b, param(q, (fq_param_t){.type = FQ_INT8, .i = v}));
}

static void put_text(fq_t *q, fq_buf_t *b, text_ref_t t)
{
    put_param(q, b, param(q, (fq_param_t){.type = FQ_TEXT, .t = t}));
}

static void put_uuid(fq_t *q, fq_buf_t *b, const char *id)
{
    put_param(q, b, param(q, (fq_param_t){.type = FQ_UUID, .t = {id, strlen(id)}}));
}

static void put_app(fq_t *q, fq_buf_t *b)
{
    put_param(q, b, q->app_param);
}

/* now is a parameter only where it is used: PostgreSQL must see every
 * parameter to know its type. */
static void put_now(fq_t *q, fq_buf_t *b)
{
    if (q->now_param == 0) q->now_param = param(q, (fq_param_t){.type = FQ_INT8, .i = q->now});
    put_param(q, b, q->now_param);
}

/* "col IN (...)" of n texts, or ids when ids is not NULL: "= P" for one,
 * "= ANY(P)" (PostgreSQL) or "IN (P, P, ...)" (SQLite) for more. */
static void put_in(fq_t *q, fq_buf_t *b, const char *col, const text_ref_t *texts,
                   const char (*ids)[UUID_BUFSZ], int n)
{
    putf(b, "%s ", col);
    if (q->pg && n > 1) {
        fq_param_t p = {
            .type = ids != NULL ? FQ_UUID_ARRAY : FQ_TEXT_ARRAY, .texts = texts, .ids = ids, .n = n};
        put(b, "= ANY(");
        put_param(q, b, param(q, p));
        put(b, ")");
        return;
    }
    put(b, n == 1 ? "= " : "IN (");
    for (int i = 0; i < n; i++) {
        if (i > 0) put(b, ", ");
        if (ids != NULL)
            put_uuid(q, b, ids[i]);
        else
            put_text(q, b, texts[i]);
    }
    if (n > 1) put(b, ")");
}

/* " AND col IN (0, 2)" for the bits of mask below limit, unless it keeps
 * them all. The values are enum constants, so they are written as they are. */
static void put_bits(fq_buf_t *b, const char *col, unsigned mask, int limit)
{
    unsigned all = (1u << limit) - 1;
    mask &= all;
    if (mask == 0 || mask == all) return;
    putf(b, " AND %s IN (", col);
    bool first = true;
    for (int i = 0; i < limit; i++) {
        if (!(mask & (1u << i))) continue;
        putf(b, first ? "%d" : ", %d", i);
        first = false;
    }
    put(b, ")");
}

/* Room in q's own texts for n bytes; NULL (and q failed) when none is left. */
static char *own(fq_t *q, size_t n)
{
    if (FQ_OWN_MAX - q->nown < n) {
        q->failed = true;
        return NULL;
    }
    char *at = q->own + q->nown;
    q->nown += n;
    return at;
}

size_t fq_codepoints(text_ref_t t)
{
    size_t n = 0;
    for (size_t i = 0; i < t.len; i++)
        if (((unsigned char)t.ptr[i] & 0xC0) != 0x80) n++;
    return n;
}

/* Writes prefix, then t with every character of specials preceded by esc
 * (or doubled, esc 0), then suffix, into q's own texts. */
static text_ref_t own_quoted(fq_t *q, const char *prefix, text_ref_t t, const char *specials, char esc,
                             const char *suffix)
{
    size_t pn = strlen(prefix), sn = strlen(suffix);
    char *out = own(q, pn + 2 * t.len + sn);
    if (out == NULL) return (text_ref_t){"", 0};
    size_t o = 0;
    memcpy(out, prefix, pn);
    o += pn;
    for (size_t i = 0; i < t.len; i++) {
        if (strchr(specials, t.ptr[i]) != NULL && t.ptr[i] != '\0') out[o++] = esc ? esc : t.ptr[i];
        out[o++] = t.ptr[i];
    }
    memcpy(out + o, suffix, sn);
    return (text_ref_t){out, o + sn};
}

/* The start of a term's phrase: limited to the name and source columns
 * only when the term could match an app's token (app_f), which is made of
 * code points from FQ_APP_CHAR_BASE (65,536) on, four bytes each in
 * UTF-8: a term without them cannot, and FTS5 reads a phrase without a
 * column filter at 0.9 of the cost (106 against 119 us for 3 digits at
 * 1,000,000 leads, by app). */
static const char *phrase_start(text_ref_t term)
{
    _Static_assert(FQ_APP_CHAR_BASE == 0x10000, "app token characters are the four-byte ones of UTF-8");
    for (size_t i = 0; i < term.len; i++)
        if ((unsigned char)term.ptr[i] >= 0xF0) return "{name_f source_f} : \"";
    return "\"";
}

text_ref_t fq_fts_match(fq_t *q, text_ref_t term)
{
    /* A phrase in double quotes, quotes doubled: FTS5 reads nothing else
     * in it, and the trigram tokenizer makes it one run of trigrams. */
    return own_quoted(q, phrase_start(term), term, "\"", 0, "\"");
}

text_ref_t fq_fts_app_match(fq_t *q, text_ref_t term, int64_t app)
{
    /* The app's token as sql.c's SQ_APP_TOKEN makes it. */
    char suffix[48] = "\" AND app_f : \"";
    size_t n = strlen(suffix);
    for (int shift = 40; shift >= 0; shift -= 20)
        n += text_utf8_encode(FQ_APP_CHAR_BASE + (((uint64_t)app >> shift) & FQ_APP_CHAR_MASK), suffix + n);
    memcpy(suffix + n, "\"", 2);
    return own_quoted(q, phrase_start(term), term, "\"", 0, suffix);
}

/* --- filters --------------------------------------------------------------------- */

/* A filtered column as the plan wants it: name is "+l.col"; under
 * FQ_PLAN_SORT, every column but the sort's keeps its '+' (no index for
 * it: the sort's index is walked), else it is used as it is. */
static const char *col(const fq_t *q, const char *name)
{
    bool off = q->plan == FQ_PLAN_SORT && (q->sort_col == NULL || strcmp(name + 1, q->sort_col) != 0);
    return off ? name : name + 1;
}

/* col(q, name), except that under FQ_PLAN_SORT in created_at's order a
 * filter of one value (one) keeps its index: (app_id, col, created_at,
 * id) lists that value's leads in the sort's order, keys alone, so a
 * deep page skips its rows there, where the sort's own index would have
 * each row looked up in the table to test the filter. */
static const char *col_of_one(const fq_t *q, const char *name, bool one)
{
    bool created = q->sort_col != NULL && strcmp(q->sort_col, "l.created_at") == 0;
    return one && created && q->plan == FQ_PLAN_SORT ? name + 1 : col(q, name);
}

static bool one_bit(unsigned mask)
{
    return mask != 0 && (mask & (mask - 1)) == 0;
}

/* " AND (pre name mid P post OR pre source mid P post)" over the folded
 * name and source, P being parameter n. */
static void put_name_or_source(fq_t *q, fq_buf_t *b, const char *pre, const char *mid, const char *post,
                               int n)
{
    static const char *const cols[] = {"l.name_fold", "l.source_fold"};
    put(b, " AND (");
    for (int i = 0; i < 2; i++) {
        if (i > 0) put(b, " OR ");
        put(b, pre);
        put(b, cols[i]);
        put(b, mid);
        put_param(q, b, n);
        put(b, post);
    }
    put(b, ")");
}

static void search_where(fq_t *q, fq_buf_t *b, text_ref_t term)
{
    if (q->pg) {
        /* pg_trgm's index serves LIKE; backslash is LIKE's escape. */
        text_ref_t pattern = own_quoted(q, "%", term, "%_\\", '\\', "%");
        put_name_or_source(q, b, "", " LIKE ", "", param(q, (fq_param_t){.type = FQ_TEXT, .t = pattern}));
    } else if (q->search == FQ_SEARCH_INDEX) {
        put(b, " AND l.id IN (SELECT t.lead_id FROM lead_text t WHERE t.app_id = ");
        put_app(q, b);
        if (q->fts_rowids.ptr != NULL) {
            put(b, " AND t.rowid IN (SELECT value FROM json_each(");
            put_text(q, b, q->fts_rowids);
            put(b, ")");
        } else {
            put(b, " AND t.rowid IN (SELECT rowid FROM lead_fts WHERE lead_fts MATCH ");
            put_text(q, b, fq_fts_match(q, term));
        }
        put(b, "))");
    } else {
        put_name_or_source(q, b, "instr(", ", ", ") > 0", param(q, (fq_param_t){.type = FQ_TEXT, .t = term}));
    }
}

/* " AND (col = ... OR col IS NULL)" for an id filter. */
static void id_where(fq_t *q, fq_buf_t *b, const char *col, const char (*ids)[UUID_BUFSZ], int n, bool unset)
{
    if (n == 0 && !unset) return;
    put(b, " AND (");
    if (n > 0) put_in(q, b, col, NULL, ids, n);
    if (n > 0 && unset) put(b, " OR ");
    if (unset) putf(b, "%s IS NULL", col);
    put(b, ")");
}

static void range_where(fq_t *q, fq_buf_t *b, const char *col, const char *op, bool set, int64_t v)
{
    if (!set) return;
    putf(b, " AND %s %s ", col, op);
    put_int(q, b, v);
}

/* has_overdue and has_open_follows: a lead's follows are found by the
 * follows' primary key (app, lead), or, for overdue ones (few), the other
 * way round, by follows_app_state. */
static void follows_where(fq_t *q, fq_buf_t *b, const store_lead_filter_t *f)
{
    if (f->has_overdue == 1 && q->plan != FQ_PLAN_SORT) {
        put(b, " AND l.id IN (SELECT o.lead_id FROM follows o WHERE o.app_id = ");
        put_app(q, b);
        put(b, " AND o.status = 0 AND o.due_at < ");
        put_now(q, b);
        put(b, ")");
    } else if (f->has_overdue >= 0) {
        put(b, f->has_overdue ? " AND EXISTS" : " AND NOT EXISTS");
        put(b, " (SELECT 1 FROM follows o WHERE o.app_id = l.app_id AND o.lead_id = l.id "
               "AND o.status = 0 AND o.due_at < ");
        put_now(q, b);
        put(b, ")");
    }
    if (f->has_open >= 0)
        putf(b,
             " AND %sEXISTS (SELECT 1 FROM follows o WHERE o.app_id = l.app_id AND o.lead_id = l.id "
             "AND o.status = 0)",
             f->has_open ? "" : "NOT ");
}

/* The leads f keeps, as a condition on alias l (no leading AND). */
static void lead_where(fq_t *q, fq_buf_t *b, const store_lead_filter_t *f)
{
    put(b, "l.app_id = ");
    put_app(q, b);
    put_bits(b, col_of_one(q, "+l.stage", one_bit(f->stages)), f->stages, SCHEMA_STAGES);
    put_bits(b, col_of_one(q, "+l.status", one_bit(f->statuses)), f->statuses, SCHEMA_STATUSES);
    if (f->nsources > 0) {
        put(b, " AND ");
        put_in(q, b, col_of_one(q, "+l.source", f->nsources == 1), f->sources, NULL, f->nsources);
    }
    id_where(q, b, col_of_one(q, "+l.account_id", f->naccounts == 1 && !f->account_unset), f->accounts,
             f->naccounts, f->account_unset);
    id_where(q, b, col_of_one(q, "+l.contact_id", f->ncontacts == 1 && !f->contact_unset), f->contacts,
             f->ncontacts, f->contact_unset);
    const char *v = col(q, "+l.value_cents"), *p = col(q, "+l.probability"), *c = col(q, "+l.created_at"),
               *u = col(q, "+l.updated_at");
    range_where(q, b, v, ">=", f->has_value_min, f->value_min);
    range_where(q, b, v, "<=", f->has_value_max, f->value_max);
    range_where(q, b, p, ">=", f->probability_min >= 0, f->probability_min);
    range_where(q, b, p, "<=", f->probability_max >= 0, f->probability_max);
    range_where(q, b, c, ">=", f->has_created_from, f->created_from);
    range_where(q, b, c, "<", f->has_created_to, f->created_to);
    range_where(q, b, u, ">=", f->has_updated_from, f->updated_from);
    range_where(q, b, u, "<", f->has_updated_to, f->updated_to);
    if (f->search.ptr != NULL) search_where(q, b, f->search);
    follows_where(q, b, f);
}

/* The follow statuses of mask, overdue as derived at now. */
static void status_where(fq_t *q, fq_buf_t *b, unsigned mask)
{
    const unsigned P = 1u << FOLLOW_PENDING, C = 1u << FOLLOW_COMPLETED, O = 1u << FOLLOW_OVERDUE;
    mask &= P | C | O;
    if (mask == 0 || mask == (P | C | O)) return;
    if (mask == (P | O)) {
        put(b, " AND f.status = 0");
        return;
    }
    put(b, " AND (");
    if (mask & C) put(b, mask == C ? "f.status = 1" : "f.status = 1 OR ");
    if (mask & P) {
        put(b, "(f.status = 0 AND (f.due_at IS NULL OR f.due_at >= ");
        put_now(q, b);
        put(b, "))");
    } else if (mask & O) {
        put(b, "(f.status = 0 AND f.due_at < ");
        put_now(q, b);
        put(b, ")");
    }
    put(b, ")");
}

static void follow_where(fq_t *q, fq_buf_t *b, const store_follow_query_t *fq)
{
    put(b, "f.app_id = ");
    put_app(q, b);
    if (fq->lead[0] != '\0') {
        put(b, " AND f.lead_id = ");
        put_uuid(q, b, fq->lead);
    } else if (fq->nleads > 0) {
        put(b, " AND ");
        put_in(q, b, "f.lead_id", NULL, fq->leads, fq->nleads);
    }
    status_where(q, b, fq->statuses);
    range_where(q, b, "f.due_at", ">=", fq->has_due_from, fq->due_from);
    range_where(q, b, "f.due_at", "<", fq->has_due_to, fq->due_to);
}

/* --- keys and phases --------------------------------------------------------------- */

/* One key of an order, as SQL: its column, and what its values are. */
typedef struct fq_key {
    const char *col;
    bool desc, nullable;
    fq_type_t type;
    int vparam; /* the position's value, or 0 */
    int domain; /* a key of a few values (the stage): 0..domain-1, read one value at a time */
} fq_key_t;

/* The keys of leads and follows, by enum store_lead_key / store_follow_key. */
static const fq_key_t LEAD_KEYS[] = {
    [LEAD_KEY_CREATED] = {"l.created_at", false, false, FQ_INT8, 0},
    [LEAD_KEY_UPDATED] = {"l.updated_at", false, false, FQ_INT8, 0},
    [LEAD_KEY_NAME] = {"l.name_fold", false, false, FQ_TEXT, 0},
    [LEAD_KEY_VALUE] = {"l.value_cents", false, true, FQ_INT8, 0},
    [LEAD_KEY_PROBABILITY] = {"l.probability", false, true, FQ_INT8, 0},
    [LEAD_KEY_STAGE] = {"l.stage", false, false, FQ_INT8, 0, SCHEMA_STAGES},
    [LEAD_KEY_ID] = {"l.id", false, false, FQ_UUID, 0},
};
static const fq_key_t FOLLOW_KEYS[] = {
    [FOLLOW_KEY_DUE] = {"f.due_at", false, true, FQ_INT8, 0},
    [FOLLOW_KEY_CREATED] = {"f.created_at", false, false, FQ_INT8, 0},
    [FOLLOW_KEY_UPDATED] = {"f.updated_at", false, false, FQ_INT8, 0},
    [FOLLOW_KEY_ID] = {"f.id", false, false, FQ_UUID, 0},
};

/* The kinds of index range a page reads (see find.h). */
enum phase_kind {
    PH_ALL,         /* the whole set */
    PH_SET,         /* k0 is set */
    PH_UNSET,       /* k0 is unset */
    PH_ROW,         /* after the position, as one row-value comparison */
    PH_EQ_AFTER,    /* k0 = v0, the rest after the position */
    PH_BEYOND,      /* k0 beyond v0 */
    PH_UNSET_AFTER, /* k0 unset, the rest after the position */
    PH_VALUE        /* k0 = one value of its domain */
};

typedef struct phase {
    enum phase_kind kind;
    int value; /* PH_VALUE's */
} phase_t;

/* At most this many ranges: a domain's values, and the position's own. */
#define PHASES_MAX (SCHEMA_STAGES + 1)

/* A key of a few values, one range per value, in the key's direction:
 * only those of allowed (0: all), and after the position's value. */
static int domain_phases(const fq_key_t *k, unsigned allowed, const store_pos_t *pos, phase_t *out)
{
    int n = 0;
    if (pos != NULL) out[n++] = (phase_t){PH_EQ_AFTER, 0};
    for (int i = 0; i < k->domain; i++) {
        int v = k->desc ? k->domain - 1 - i : i;
        if (allowed != 0 && !(allowed & (1u << v))) continue;
        if (pos != NULL && (k->desc ? v >= pos->v[0].i : v <= pos->v[0].i)) continue;
        out[n++] = (phase_t){PH_VALUE, v};
    }
    return n;
}

/* The phases of a page of keys k[0..n) after pos (NULL: the first page).
 * SQLite holds unset values below every set one, so a descending index
 * already lists them last, as the order wants: its first page is one
 * range (PostgreSQL's indexes put them first). */
static int phases_of(const fq_t *q, const fq_key_t *k, int n, unsigned allowed, const store_pos_t *pos,
                     phase_t out[PHASES_MAX])
{
    if (k[0].domain > 0) return domain_phases(&k[0], allowed, pos, out);
    if (pos == NULL) {
        bool split = k[0].nullable && (q->pg || !k[0].desc);
        out[0] = (phase_t){split ? PH_SET : PH_ALL, 0};
        out[1] = (phase_t){PH_UNSET, 0};
        return split ? 2 : 1;
    }
    bool uniform = true;
    for (int i = 0; i < n; i++)
        if (k[i].nullable || k[i].desc != k[0].desc) uniform = false;
    if (uniform) {
        out[0] = (phase_t){PH_ROW, 0};
        return 1;
    }
    if (k[0].nullable && pos->v[0].null) {
        out[0] = (phase_t){PH_UNSET_AFTER, 0};
        return 1;
    }
    out[0] = (phase_t){PH_EQ_AFTER, 0};
    out[1] = (phase_t){PH_BEYOND, 0};
    out[2] = (phase_t){PH_UNSET, 0};
    return k[0].nullable ? 3 : 2;
}

/* Adds the position's values as parameters, once, for every phase to use. */
static void position_params(fq_t *q, fq_key_t *k, int n, const store_pos_t *pos)
{
    for (int i = 0; i < n; i++) {
        const store_val_t *v = &pos->v[i];
        if (v->null) continue;
        fq_param_t p = {.type = k[i].type, .i = v->i, .t = v->t};
        k[i].vparam = param(q, p);
    }
}

/* "the row comes after v in key k" (or, strict false, at or after) */
static void put_beyond(fq_t *q, fq_buf_t *b, const fq_key_t *k, bool strict)
{
    putf(b, "%s %s%s ", k->col, k->desc ? "<" : ">", strict ? "" : "=");
    put_param(q, b, k->vparam);
}

/* Rows after the position in keys k[i..n), unset values last. */
static void put_after(fq_t *q, fq_buf_t *b, const fq_key_t *k, int i, int n, const store_pos_t *pos)
{
    bool null = pos->v[i].null;
    put(b, "(");
    if (!null) {
        put_beyond(q, b, &k[i], true);
        if (k[i].nullable) putf(b, " OR %s IS NULL", k[i].col);
    } else {
        put(b, "1 = 0"); /* nothing comes after an unset value but unset ones */
    }
    if (i + 1 < n) {
        if (null)
            putf(b, " OR (%s IS NULL AND ", k[i].col);
        else
            putf(b, " OR (%s = ", k[i].col);
        if (!null) {
            put_param(q, b, k[i].vparam);
            put(b, " AND ");
        }
        put_after(q, b, k, i + 1, n, pos);
        put(b, ")");
    }
    put(b, ")");
}

static void put_phase(fq_t *q, fq_buf_t *b, phase_t ph, const fq_key_t *k, int n, const store_pos_t *pos)
{
    switch (ph.kind) {
    case PH_VALUE:
        putf(b, " AND %s = %d", k[0].col, ph.value); /* an enum constant */
        break;
    case PH_ALL:
        break;
    case PH_SET:
        putf(b, " AND %s IS NOT NULL", k[0].col);
        break;
    case PH_UNSET:
        putf(b, " AND %s IS NULL", k[0].col);
        break;
    case PH_ROW:
        put(b, " AND (");
        for (int i = 0; i < n; i++)
            putf(b, i ? ", %s" : "%s", k[i].col);
        put(b, k[0].desc ? ") < (" : ") > (");
        for (int i = 0; i < n; i++) {
            if (i) put(b, ", ");
            put_param(q, b, k[i].vparam);
        }
        put(b, ")");
        break;
    case PH_EQ_AFTER:
        putf(b, " AND %s = ", k[0].col);
        put_param(q, b, k[0].vparam);
        put(b, " AND ");
        put_after(q, b, k, 1, n, pos);
        break;
    case PH_BEYOND:
        put(b, " AND ");
        put_beyond(q, b, &k[0], true);
        break;
    case PH_UNSET_AFTER:
        putf(b, " AND %s IS NULL AND ", k[0].col);
        put_after(q, b, k, 1, n, pos);
        break;
    }
}

/* The ORDER BY of keys k[0..n) on columns named by col (the key's own, or
 * the arm's output s0, s1, ... with prefix): unset values last. */
static void put_order(fq_buf_t *b, const fq_key_t *k, int n, const char *prefix, bool first_plain,
                      bool no_index)
{
    for (int i = 0; i < n; i++) {
        char col[64];
        if (prefix != NULL)
            snprintf(col, sizeof col, "%ss%d", prefix, i);
        else
            snprintf(col, sizeof col, "%s%s", no_index ? "+" : "", k[i].col);
        if (i > 0) put(b, ", ");
        if (k[i].nullable && !(i == 0 && first_plain)) putf(b, "(%s IS NULL), ", col);
        putf(b, "%s %s", col, k[i].desc ? "DESC" : "ASC");
    }
}

/* A table's key as a find statement reads its rows again by it: the
 * key's columns after the app's (qualified), the same as a list of the
 * subquery k's columns, and the app's column. */
typedef struct fq_key_of {
    const char *cols;  /* "l.id" */
    const char *match; /* "l.id = k.id" */
    const char *app;   /* "l.app_id" */
} fq_key_of_t;

static const fq_key_of_t LEAD_KEY_OF = {"l.id", "l.id = k.id", "l.app_id"};
static const fq_key_of_t FOLLOW_KEY_OF = {"f.lead_id, f.id", "f.lead_id = k.lead_id AND f.id = k.id",
                                          "f.app_id"};

/* What a find statement reads: its table, alias, record columns, keys. */
typedef struct fq_read {
    const char *from;   /* "leads l" */
    const char *record; /* the record's columns, qualified */
    fq_key_t k[STORE_SORT_MAX];
    int nk;
    int limit;
    int64_t offset;
    const store_pos_t *after;
    bool count;
    bool bare;                      /* no count, no row for an empty page: the arms alone, no join */
    const struct fq_key_of *by_key; /* how rows are read again by their key, or NULL */
    const char *join;               /* a table the page is joined to ("leads ld CROSS JOIN "), or NULL */
    unsigned allowed; /* the values of a first key of a few values that the filter keeps (0: all) */
    bool covered;     /* the sort's index holds every column the range tests: its keys read alone */
} fq_read_t;

/* The rows of phases ph[0..n) (an arm's WHERE without its ORDER BY), at
 * most lim of them, counted: "(SELECT count(*) FROM (... LIMIT lim) AS k)"
 * per phase, added up. */
static void put_rows_before(fq_t *q, const fq_read_t *rd, const phase_t *ph, int n, int lim_param)
{
    fq_buf_t *b = &q->sql;
    for (int i = 0; i < n; i++) {
        put(b, i > 0 ? " + (SELECT count(*) FROM (SELECT 1 FROM " : "(SELECT count(*) FROM (SELECT 1 FROM ");
        put(b, rd->from);
        put(b, " WHERE ");
        put(b, q->where.s);
        put_phase(q, b, ph[i], rd->k, rd->nk, rd->after);
        put(b, " LIMIT ");
        put_param(q, b, lim_param);
        putf(b, ") AS k%d)", i);
    }
}

/* Arm i's range: its WHERE, ORDER BY, LIMIT and OFFSET (see put_arm). */
static void put_range(fq_t *q, const fq_read_t *rd, const phase_t *ph, int i, int lim_param, int off_param)
{
    fq_buf_t *b = &q->sql;
    put(b, q->where.s);
    put_phase(q, b, ph[i], rd->k, rd->nk, rd->after);
    put(b, " ORDER BY ");
    /* Inside a phase the first key is either set throughout or constant. */
    put_order(b, rd->k, rd->nk, NULL, true, q->plan == FQ_PLAN_FILTER);
    put(b, " LIMIT ");
    put_param(q, b, lim_param);
    if (off_param == 0) return;
    put(b, " OFFSET ");
    if (i == 0) {
        put_param(q, b, off_param);
        return;
    }
    put(b, q->pg ? "GREATEST(0, " : "max(0, ");
    put_param(q, b, off_param);
    put(b, " - (");
    put_rows_before(q, rd, ph, i, off_param);
    put(b, "))");
}

/* Arm i's FROM onwards when its rows are read by their key: the range's
 * keys alone (an index-only walk), then each record by its key. SQLite
 * looks a one-column key up as a list ("IN"; a list of two columns would
 * be looked up by the first one only), a longer one by a join that the
 * keys lead (CROSS JOIN); PostgreSQL as a nested loop (the OFFSET 0 keeps
 * it one: a generic plan, made without knowing LIMIT, would rather
 * hash-join the app's whole table, as sql.c's Q_LEAD_LIST says). Only
 * SQLite takes a unary plus on a text or uuid, and only its planner
 * needs it. */
static void put_by_key(fq_t *q, const fq_read_t *rd, const phase_t *ph, int i, int lim_param, int off_param)
{
    fq_buf_t *b = &q->sql;
    const fq_key_of_t *key = rd->by_key;
    if (!q->pg && strchr(key->cols, ',') == NULL) {
        putf(b, " FROM %s WHERE %s = ", rd->from, key->app);
        put_app(q, b);
        putf(b, " AND %s IN (SELECT %s FROM %s WHERE ", key->cols, key->cols, rd->from);
        put_range(q, rd, ph, i, lim_param, off_param);
        put(b, ") ORDER BY ");
        put_order(b, rd->k, rd->nk, NULL, true, true);
        return;
    }
    putf(b, " FROM (SELECT %s FROM %s WHERE ", key->cols, rd->from);
    put_range(q, rd, ph, i, lim_param, off_param);
    putf(b,
         q->pg ? ") AS k CROSS JOIN LATERAL (SELECT * FROM %s WHERE %s = "
               : ") AS k CROSS JOIN %s WHERE %s = ",
         rd->from, key->app);
    put_app(q, b);
    if (q->pg)
        putf(b, " AND %s OFFSET 0) AS %c ORDER BY ", key->match, key->app[0]);
    else
        putf(b, " AND %s ORDER BY ", key->match);
    put_order(b, rd->k, rd->nk, NULL, true, !q->pg);
}

/* One arm: phase ph[i]'s rows of the page, at most the page's limit, in
 * index order. A page at an offset skips, in arm i, the offset less the
 * rows of the arms before it (each counted up to the offset): the arms
 * hand over the page's rows only, whatever the offset, rather than every
 * row up to it for a sort to skip. A small filtered set of leads, sorted
 * whole (FQ_PLAN_FILTER), is sorted by its keys and ids only, and the
 * page's records read by their key after: a sort of whole records costs
 * a third of a 400-match search's time at 100,000 leads. A page at an
 * offset is read the same way: the rows it skips are then index entries
 * (the sort's index holds the keys and the primary key), not records
 * looked up in the table one by one (145 ms against 2 ms for 45,000 rows
 * skipped at 100,000 leads). */
static void put_arm(fq_t *q, const fq_read_t *rd, const phase_t *ph, int i, int lim_param, int off_param,
                    bool flat)
{
    fq_buf_t *b = &q->sql;
    bool by_key = rd->by_key != NULL && (q->plan == FQ_PLAN_FILTER || off_param != 0 || rd->covered);
    put(b, flat ? "SELECT CAST(NULL AS BIGINT) AS n, " : "SELECT * FROM (SELECT ");
    putf(b, "%d AS ph", i);
    for (int j = 0; j < rd->nk; j++)
        putf(b, ", %s AS s%d", rd->k[j].col, j);
    put(b, ", ");
    put(b, rd->record);
    if (by_key)
        put_by_key(q, rd, ph, i, lim_param, off_param);
    else {
        put(b, " FROM ");
        put(b, rd->from);
        put(b, " WHERE ");
        put_range(q, rd, ph, i, lim_param, off_param);
    }
    if (!flat) putf(b, ") AS a%d", i);
}

/* The arms of phases ph[0..nph) of the page, in order, joined by UNION
 * ALL, "AS u" sorted and limited; or, flat, the one arm as the whole
 * statement (its own ORDER BY is then the page's). */
static void put_arms(fq_t *q, const fq_read_t *rd, const phase_t *ph, int nph, bool flat)
{
    fq_buf_t *b = &q->sql;
    int lim = param(q, (fq_param_t){.type = FQ_INT8, .i = rd->limit});
    int off = rd->offset > 0 ? param(q, (fq_param_t){.type = FQ_INT8, .i = rd->offset}) : 0;
    if (flat) {
        assert(nph == 1);
        put_arm(q, rd, ph, 0, lim, off, true);
        return;
    }
    put(b, "(");
    for (int i = 0; i < nph; i++) {
        if (i > 0) put(b, " UNION ALL ");
        put_arm(q, rd, ph, i, lim, off, false);
    }
    put(b, ") AS u ORDER BY ph, ");
    put_order(b, rd->k, rd->nk, "", false, false);
    put(b, " LIMIT ");
    put_param(q, b, lim);
}

/* The page: "(count) AS c LEFT JOIN (arms, in order, limited) AS p ON
 * true" after the statement's head; or, for a bare read, the whole
 * statement: its one arm, or its arms sorted. */
static void put_page(fq_t *q, const fq_read_t *rd)
{
    fq_buf_t *b = &q->sql;
    phase_t ph[PHASES_MAX];
    int nph = phases_of(q, rd->k, rd->nk, rd->allowed, rd->after, ph);
    if (rd->bare) {
        if (nph > 1) put(b, "SELECT CAST(NULL AS BIGINT) AS n, u.* FROM ");
        put_arms(q, rd, ph, nph, nph == 1);
        return;
    }
    put(b, "SELECT c.n, p.* FROM ");
    if (rd->join != NULL) put(b, rd->join);
    if (rd->count) {
        put(b, "(SELECT count(*) AS n FROM ");
        put(b, rd->from);
        put(b, " WHERE ");
        put(b, q->count_where.len > 0 ? q->count_where.s : q->where.s);
        put(b, ") AS c");
    } else
        put(b, "(SELECT CAST(NULL AS BIGINT) AS n) AS c");
    put(b, " LEFT JOIN (SELECT * FROM ");
    put_arms(q, rd, ph, nph, false);
    put(b, ") AS p ON true");
}

/* Ends a find statement: the rows in the page's order. */
static void put_final_order(fq_t *q, const fq_read_t *rd)
{
    if (rd->bare) return;
    put(&q->sql, " ORDER BY p.ph, ");
    put_order(&q->sql, rd->k, rd->nk, "p.", false, false);
}

static bool done(fq_t *q)
{
    return !q->failed && !q->sql.overflow && !q->where.overflow && !q->count_where.overflow;
}

/* --- statements --------------------------------------------------------------------- */

static void begin(fq_t *q, int64_t app, int64_t now)
{
    q->app_param = param(q, (fq_param_t){.type = FQ_INT8, .i = app});
    q->now = now;
}

static fq_read_t read_of(const char *from, const char *record, int limit, int64_t offset,
                         const store_pos_t *after, bool count)
{
    return (fq_read_t){
        .from = from, .record = record, .limit = limit, .offset = offset, .after = after, .count = count};
}

/* The keys of a read (its order, ties included, from table) and the
 * position's values as parameters; false when the position does not fit
 * the order. */
static bool keys_of(fq_t *q, fq_read_t *rd, const store_sort_t *order, int n, const fq_key_t *table)
{
    rd->nk = n;
    for (int i = 0; i < n; i++) {
        rd->k[i] = table[order[i].key];
        rd->k[i].desc = order[i].desc;
    }
    if (rd->after != NULL) {
        if (rd->after->n != n) return false;
        position_params(q, rd->k, n, rd->after);
    }
    q->c0 = 2 + n;
    return true;
}

/* The column of a lead query's first sort key. */
static const char *first_sort_col(const store_lead_query_t *lq)
{
    store_sort_t order[STORE_SORT_MAX];
    store_lead_order(lq->sort, lq->nsort, order);
    return LEAD_KEYS[order[0].key].col;
}

/* Whether, on SQLite under FQ_PLAN_SORT, the sort's index holds all that
 * the page's range tests: order[0..n) sorts by updated_at, value or
 * probability (whose indexes carry the stage and status, schema version
 * 14) with ties broken by created_at and id only, and lq filters by stage
 * and status and nothing else beyond the sort's own column. The walk then
 * tests each lead in the index, and only the page's records are read from
 * the table; otherwise each lead it passes is, to be tested. PostgreSQL
 * reads as before. */
static bool sort_index_covers(const fq_t *q, const store_sort_t *order, int n, const store_lead_query_t *lq)
{
    if (q->pg || q->plan != FQ_PLAN_SORT || (lq->f.stages == 0 && lq->f.statuses == 0)) return false;
    store_lead_query_t rest = *lq;
    rest.f.stages = 0;
    rest.f.statuses = 0;
    if (fq_lead_filters_beyond_sort(&rest)) return false;
    int first = order[0].key;
    if (first != LEAD_KEY_UPDATED && first != LEAD_KEY_VALUE && first != LEAD_KEY_PROBABILITY) return false;
    for (int i = 1; i < n; i++)
        if (order[i].key != LEAD_KEY_CREATED && order[i].key != LEAD_KEY_ID) return false;
    return true;
}

bool fq_lead_find(fq_t *q, int64_t app, const store_lead_query_t *lq)
{
    begin(q, app, lq->now);
    q->sort_col = first_sort_col(lq);
    lead_where(q, &q->where, &lq->f);
    if (lq->count && q->plan != FQ_PLAN_ANY) {
        /* Counting wants every index, whatever the page's plan. */
        enum fq_plan plan = q->plan;
        q->plan = FQ_PLAN_ANY;
        lead_where(q, &q->count_where, &lq->f);
        q->plan = plan;
    }
    fq_read_t rd = read_of("leads l", SCHEMA_LEAD_COLS_L, lq->limit, lq->offset, lq->after, lq->count);
    rd.allowed = lq->f.stages;
    /* A page of leads without its count needs no row when it is empty
     * (the statement of one lead's follows does: it tells that the lead
     * exists), so it is the arms alone, sorted once. */
    rd.bare = !lq->count;
    rd.by_key = &LEAD_KEY_OF;
    store_sort_t order[STORE_SORT_MAX];
    int nkeys = store_lead_order(lq->sort, lq->nsort, order);
    if (!keys_of(q, &rd, order, nkeys, LEAD_KEYS)) return false;
    rd.covered = sort_index_covers(q, order, nkeys, lq);
    put_page(q, &rd);
    put_final_order(q, &rd);
    return done(q);
}

bool fq_follow_find(fq_t *q, int64_t app, const store_follow_query_t *fq)
{
    begin(q, app, fq->now);
    follow_where(q, &q->where, fq);
    fq_read_t rd = read_of("follows f", SCHEMA_FOLLOW_COLS_F, fq->limit, fq->offset, fq->after, fq->count);
    store_sort_t order[STORE_SORT_MAX];
    if (!keys_of(q, &rd, order, store_follow_order(fq->sort, fq->nsort, order), FOLLOW_KEYS)) return false;
    bool one_lead = fq->lead[0] != '\0';
    if (one_lead) rd.join = "leads ld CROSS JOIN ";
    rd.by_key = &FOLLOW_KEY_OF;
    put_page(q, &rd);
    if (one_lead) {
        /* No row at all when the lead does not exist. */
        put(&q->sql, " WHERE ld.app_id = ");
        put_app(q, &q->sql);
        put(&q->sql, " AND ld.id = ");
        put_uuid(q, &q->sql, fq->lead);
    }
    put_final_order(q, &rd);
    return done(q);
}

_Static_assert(FQ_KEY_SLOTS == FQ_KEY_SLOT_MAX + 1 && FQ_KEY_SLOTS == (int64_t)1 << FQ_KEY_BITS &&
                   FQ_CREATED_MAX == -FQ_CREATED_MIN - 1 && FQ_CREATED_MAX == INT64_MAX >> FQ_KEY_BITS,
               "every created_at in range has its keys in 64 bits");

bool fq_lead_walks_search(const store_lead_query_t *lq)
{
    store_sort_t order[STORE_SORT_MAX];
    int n = store_lead_order(lq->sort, lq->nsort, order);
    if (lq->f.search.ptr == NULL || fq_codepoints(lq->f.search) < FQ_TRIGRAM) return false;
    if (n != 2 || order[0].key != LEAD_KEY_CREATED || order[1].key != LEAD_KEY_ID) return false;
    if (lq->after == NULL) return true;
    int64_t c = lq->after->v[0].i;
    return lq->after->n == 2 && c >= FQ_CREATED_MIN && c <= FQ_CREATED_MAX;
}

/* The first search key of created_at c's range (c in range). */
static int64_t first_key(int64_t c)
{
    return c * FQ_KEY_SLOTS; /* c << FQ_KEY_BITS, without shifting a negative number */
}

/* " AND" the rows after the position (c, id) of a walk: other ranges
 * (below the position's, newest first), and the position's own range
 * after its id. */
static void walk_after(fq_t *q, fq_buf_t *b, const char *key, const store_sort_t *order,
                       const store_pos_t *pos)
{
    int64_t lo = first_key(pos->v[0].i), hi = lo + FQ_KEY_SLOT_MAX;
    bool newest = order[0].desc;
    putf(b, newest ? " AND %s <= " : " AND %s >= ", key);
    put_int(q, b, newest ? hi : lo);
    putf(b, newest ? " AND (%s < " : " AND (%s > ", key);
    put_int(q, b, newest ? lo : hi);
    put(b, order[1].desc ? " OR t.lead_id < " : " OR t.lead_id > ");
    put_text(q, b, pos->v[1].t);
    put(b, ")");
}

bool fq_lead_search_filtered(const store_lead_query_t *lq)
{
    store_lead_query_t rest = *lq;
    rest.f.search = (text_ref_t){NULL, 0};
    return fq_lead_filters_beyond_sort(&rest) || lq->f.has_created_from || lq->f.has_created_to;
}

bool fq_lead_search_walk(fq_t *q, int64_t app, const store_lead_query_t *lq, const int64_t span[2],
                         bool by_app)
{
    assert(fq_lead_walks_search(lq));
    bool filtered = fq_lead_search_filtered(lq);
    assert(by_app || !filtered);
    begin(q, app, lq->now);
    store_sort_t order[STORE_SORT_MAX];
    store_lead_order(lq->sort, lq->nsort, order);
    fq_buf_t *b = &q->sql;
    /* The matches from the index, or from the keys read already (in the
     * walk's order: json_each hands them over in the array's). */
    text_ref_t keys = q->fts_rowids;
    const char *key = keys.ptr != NULL ? "t.rowid" : "f.rowid";
    if (keys.ptr != NULL) {
        put(b, "SELECT t.rowid, t.lead_id, t.app_id FROM json_each(");
        put_text(q, b, keys);
        put(b, ") AS j CROSS JOIN lead_text t");
    } else {
        put(b, "SELECT f.rowid, t.lead_id, t.app_id FROM lead_fts f CROSS JOIN lead_text t");
    }
    if (filtered) put(b, " CROSS JOIN leads l");
    if (keys.ptr != NULL) {
        put(b, " WHERE t.rowid = j.value");
    } else {
        put(b, " WHERE f.lead_fts MATCH ");
        put_text(q, b, by_app ? fq_fts_app_match(q, lq->f.search, app) : fq_fts_match(q, lq->f.search));
        put(b, " AND t.rowid = f.rowid");
    }
    if (by_app) {
        put(b, " AND t.app_id = ");
        put_app(q, b);
    }
    /* A bound on the rowid of lead_fts is FTS5's own: it reads its
     * doclists from the first key of the span and stops after the last. */
    putf(b, " AND %s BETWEEN ", key);
    put_int(q, b, span[0]);
    put(b, " AND ");
    put_int(q, b, span[1]);
    if (lq->after != NULL) walk_after(q, b, key, order, lq->after);
    if (filtered) {
        /* The other filters on the lead's row, read by its key: no index
         * of theirs (the walk is the search index's). */
        store_lead_query_t rest = *lq;
        rest.f.search = (text_ref_t){NULL, 0};
        q->plan = FQ_PLAN_SORT;
        q->sort_col = NULL;
        put(b, " AND l.app_id = t.app_id AND l.id = t.lead_id AND ");
        lead_where(q, b, &rest.f);
    }
    if (keys.ptr != NULL)
        put(b, " ORDER BY j.key");
    else
        put(b, order[0].desc ? " ORDER BY f.rowid DESC" : " ORDER BY f.rowid");
    return done(q);
}

static bool totals_suffice(const store_lead_filter_t *f);

bool fq_lead_probe(fq_t *q, int64_t app, const store_lead_filter_t *f, int64_t now, int cap)
{
    begin(q, app, now);
    put(&q->sql, "SELECT count(*) FROM (SELECT 1 FROM leads l WHERE ");
    lead_where(q, &q->sql, f);
    put(&q->sql, " LIMIT ");
    put_int(q, &q->sql, cap);
    put(&q->sql, ") AS k");
    return done(q);
}

/* The cells of lead_totals f keeps (after "WHERE "): its app, stages,
 * statuses and sources. */
static void totals_where(fq_t *q, fq_buf_t *b, const store_lead_filter_t *f)
{
    put(b, "app_id = ");
    put_app(q, b);
    put_bits(b, "stage", f->stages, SCHEMA_STAGES);
    put_bits(b, "status", f->statuses, SCHEMA_STATUSES);
    if (f->nsources > 0) {
        put(b, " AND has_src = 1 AND ");
        put_in(q, b, "src", f->sources, NULL, f->nsources);
    }
}

bool fq_totals_count(fq_t *q, int64_t app, const store_lead_filter_t *f)
{
    begin(q, app, 0);
    put(&q->sql, "SELECT COALESCE(sum(n), 0) FROM lead_totals WHERE ");
    totals_where(q, &q->sql, f);
    return done(q);
}

bool fq_lead_filters_beyond_sort(const store_lead_query_t *lq)
{
    const store_lead_filter_t *f = &lq->f;
    const char *sc = first_sort_col(lq);
    bool value = f->has_value_min || f->has_value_max,
         prob = f->probability_min >= 0 || f->probability_max >= 0;
    bool created = f->has_created_from || f->has_created_to,
         updated = f->has_updated_from || f->has_updated_to;
    return f->stages || f->statuses || f->nsources || f->naccounts || f->account_unset || f->ncontacts ||
           f->contact_unset || f->search.ptr != NULL || f->has_overdue >= 0 || f->has_open >= 0 ||
           (value && strcmp(sc, "l.value_cents") != 0) || (prob && strcmp(sc, "l.probability") != 0) ||
           (created && strcmp(sc, "l.created_at") != 0) || (updated && strcmp(sc, "l.updated_at") != 0);
}

bool fq_by_totals_only(const store_lead_filter_t *f)
{
    return totals_suffice(f);
}

/* True when f keeps leads by stage, status and source only: the kept
 * totals answer then. */
static bool totals_suffice(const store_lead_filter_t *f)
{
    return f->naccounts == 0 && f->ncontacts == 0 && !f->account_unset && !f->contact_unset &&
           !f->has_value_min && !f->has_value_max && f->probability_min < 0 && f->probability_max < 0 &&
           !f->has_created_from && !f->has_created_to && !f->has_updated_from && !f->has_updated_to &&
           f->search.ptr == NULL && f->has_overdue < 0 && f->has_open < 0;
}

/* The summary's sums over the leads of a filter. */
#define SUM_OF(x) "CAST(sum(" x ") AS BIGINT)"
#define SUMS                                                                                                 \
    SUM_OF(SCHEMA_HI(SCHEMA_VALUE_OF("l.")))                                                                 \
    ", " SUM_OF(SCHEMA_LO(SCHEMA_VALUE_OF("l."))) ", " SUM_OF(                                               \
        SCHEMA_HI(SCHEMA_WEIGHT_OF("l."))) ", " SUM_OF(SCHEMA_LO(SCHEMA_WEIGHT_OF("l.")))

bool fq_lead_summary(fq_t *q, int64_t app, const store_lead_filter_t *f, int64_t now)
{
    begin(q, app, now);
    lead_where(q, &q->where, f);
    fq_buf_t *b = &q->sql;
    bool plain = totals_suffice(f);
    if (plain) {
        put(b, "SELECT 0 AS k, stage, status, n, v_hi, v_lo, w_hi, w_lo FROM lead_totals WHERE ");
        totals_where(q, b, f);
    } else {
        /* Grouped by expressions, so that SQLite reads the rows through the
         * filter's index rather than through the stage index. */
        put(b, "SELECT 0 AS k, l.stage + 0, l.status + 0, count(*), " SUMS " FROM leads l WHERE ");
        put(b, q->where.s);
        put(b, " GROUP BY l.stage + 0, l.status + 0");
    }
    /* Overdue follows come from follows_app_state (status, due date); a
     * filter then looks each one's lead up by its key. CROSS JOIN keeps
     * SQLite from starting at the leads the filter keeps (there may be
     * many more of them than of overdue follows). */
    put(b, " UNION ALL SELECT 1, 0, 0, count(*), 0, 0, 0, 0 FROM follows f");
    bool any_filter = f->stages != 0 || f->statuses != 0 || f->nsources > 0 || !plain;
    if (any_filter) put(b, " CROSS JOIN leads l");
    put(b, " WHERE f.app_id = ");
    put_app(q, b);
    put(b, " AND f.status = 0 AND f.due_at < ");
    put_now(q, b);
    if (any_filter) {
        put(b, " AND l.app_id = f.app_id AND l.id = f.lead_id AND ");
        put(b, q->where.s);
    }
    return done(q);
}

void fq_summary_add(store_summary_t *out, const store_lead_filter_t *f, const int64_t row[8])
{
    if (row[0] == 1) {
        out->overdue += row[3];
        return;
    }
    int64_t stage = row[1], status = row[2];
    if (stage < 0 || stage >= SCHEMA_STAGES || status < 0 || status >= SCHEMA_STATUSES) return;
    if (f->stages != 0 && !(f->stages & (1u << stage))) return;
    if (f->statuses != 0 && !(f->statuses & (1u << status))) return;
    store_cell_t *c = &out->cell[stage][status];
    c->n += row[3];
    c->v_hi += row[4];
    c->v_lo += row[5];
    c->w_hi += row[6];
    c->w_lo += row[7];
}

void store_pos_copy(store_pos_t *dst, const store_pos_t *src)
{
    *dst = *src;
    for (int i = 0; i < src->n; i++) {
        const char *p = src->v[i].t.ptr;
        if (p >= src->text && p < src->text + sizeof src->text) dst->v[i].t.ptr = dst->text + (p - src->text);
    }
}
