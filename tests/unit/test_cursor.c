/*
 * test_cursor.c: list cursors (api/cursor.c): a cursor reads back as the
 * position it was made from, only under the binding it was made with, and
 * any change to it is refused.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "api/cursor.h"
#include "auth/jwt.h"
#include "model/text.h"

static const unsigned char SECRET[JWT_SECRET_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const char LEAD_ID[] = "0190f3a2-0000-7000-8000-000000000001";

static api_cursor_bind_t bind_of(int kind)
{
    api_cursor_bind_t b = {.secret = SECRET, .app = 42, .kind = kind, .lead = ""};
    memset(b.digest, 0xAB, sizeof b.digest);
    return b;
}

/* A position for order[0..n) of a lead list: value null, the rest set.
 * (Its texts point into *pos itself: it is filled in place.) */
static void lead_pos(store_pos_t *pos, const store_sort_t *order, int n, const char *name)
{
    lead_t l = {0};
    strcpy(l.id, LEAD_ID);
    l.name = (text_ref_t){name, strlen(name)};
    l.stage = STAGE_PROPOSAL;
    l.probability = 70;
    l.created_at = 1767225600123;
    l.updated_at = -5;
    store_lead_pos(&l, order, n, pos);
}

static void expect_same_pos(const store_pos_t *a, const store_pos_t *b)
{
    cr_assert_eq(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        cr_expect_eq(a->v[i].null, b->v[i].null, "key %d", i);
        if (a->v[i].null) continue;
        cr_expect_eq(a->v[i].i, b->v[i].i, "key %d", i);
        cr_expect_eq(a->v[i].t.len, b->v[i].t.len, "key %d", i);
        if (a->v[i].t.len) cr_expect(memcmp(a->v[i].t.ptr, b->v[i].t.ptr, a->v[i].t.len) == 0, "key %d", i);
    }
}

Test(cursor, round_trip_of_every_kind_of_key)
{
    store_sort_t sort[] = {{LEAD_KEY_NAME, false},
                           {LEAD_KEY_VALUE, true},
                           {LEAD_KEY_STAGE, true},
                           {LEAD_KEY_PROBABILITY, false},
                           {LEAD_KEY_UPDATED, false}};
    store_sort_t order[STORE_SORT_MAX];
    int n = store_lead_order(sort, 5, order);
    cr_assert_eq(n, 7);
    store_pos_t pos;
    lead_pos(&pos, order, n, "ÄRGER Σοφία Corp");
    api_cursor_bind_t b = bind_of(CURSOR_LEADS);
    char text[API_CURSOR_MAX + 1];
    size_t len = api_cursor_encode(&b, order, n, &pos, text, sizeof text);
    cr_assert_gt(len, 0);
    for (size_t i = 0; i < len; i++)
        cr_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", text[i]) !=
                  NULL);
    store_pos_t back;
    cr_assert(api_cursor_decode(&b, order, n, text, len, &back));
    expect_same_pos(&pos, &back);
    /* The name travels folded: a cursor sorts where the list does. */
    cr_expect(back.v[0].t.len == strlen("ärger σοφία corp") &&
              memcmp(back.v[0].t.ptr, "ärger σοφία corp", back.v[0].t.len) == 0);
}

Test(cursor, the_longest_name_fits)
{
    /* 255 characters of four bytes each (Deseret capitals, which fold to
     * four bytes too). */
    char name[255 * 4 + 1] = "";
    for (int i = 0; i < 255; i++)
        strcat(name, "𐐀");
    store_sort_t sort[] = {{LEAD_KEY_NAME, true}};
    store_sort_t order[STORE_SORT_MAX];
    int n = store_lead_order(sort, 1, order);
    store_pos_t pos;
    lead_pos(&pos, order, n, name);
    cr_expect_eq(pos.v[0].t.len, 255u * 4);
    cr_expect(memcmp(pos.v[0].t.ptr, "𐐨", 4) == 0, "folded");
    api_cursor_bind_t b = bind_of(CURSOR_LEADS);
    char text[API_CURSOR_MAX + 1];
    size_t len = api_cursor_encode(&b, order, n, &pos, text, sizeof text);
    cr_assert(len > 0 && len <= API_CURSOR_MAX, "%zu", len);
    store_pos_t back;
    cr_assert(api_cursor_decode(&b, order, n, text, len, &back));
    expect_same_pos(&pos, &back);
}

Test(cursor, bound_to_its_app_route_lead_filters_and_secret)
{
    store_sort_t order[STORE_SORT_MAX];
    int n = store_follow_order(NULL, 0, order);
    follow_t f = {0};
    strcpy(f.id, LEAD_ID);
    f.created_at = 7;
    store_pos_t pos;
    store_follow_pos(&f, order, n, &pos);
    cr_expect(pos.v[0].null, "an unset due date");
    api_cursor_bind_t b = bind_of(CURSOR_LEAD_FOLLOWS);
    b.lead = LEAD_ID;
    char text[API_CURSOR_MAX + 1];
    size_t len = api_cursor_encode(&b, order, n, &pos, text, sizeof text);
    cr_assert_gt(len, 0);
    store_pos_t back;
    cr_assert(api_cursor_decode(&b, order, n, text, len, &back));
    expect_same_pos(&pos, &back);
    api_cursor_bind_t other = b;
    other.app = 43;
    cr_expect_not(api_cursor_decode(&other, order, n, text, len, &back), "another app");
    other = b;
    other.kind = CURSOR_FOLLOWS;
    other.lead = "";
    cr_expect_not(api_cursor_decode(&other, order, n, text, len, &back), "another route");
    other = b;
    other.lead = "0190f3a2-0000-7000-8000-000000000002";
    cr_expect_not(api_cursor_decode(&other, order, n, text, len, &back), "another lead");
    other = b;
    other.digest[31] ^= 1;
    cr_expect_not(api_cursor_decode(&other, order, n, text, len, &back), "other filters or sort");
    unsigned char secret2[JWT_SECRET_BYTES] = {9};
    other = b;
    other.secret = secret2;
    cr_expect_not(api_cursor_decode(&other, order, n, text, len, &back), "another signing key");
}

Test(cursor, any_change_is_refused)
{
    store_sort_t sort[] = {{LEAD_KEY_VALUE, false}};
    store_sort_t order[STORE_SORT_MAX];
    int n = store_lead_order(sort, 1, order);
    store_pos_t pos;
    lead_pos(&pos, order, n, "Acme");
    api_cursor_bind_t b = bind_of(CURSOR_LEADS);
    char text[API_CURSOR_MAX + 1], bad[API_CURSOR_MAX + 2];
    size_t len = api_cursor_encode(&b, order, n, &pos, text, sizeof text);
    store_pos_t back;
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < 64; k += 7) {
            memcpy(bad, text, len + 1);
            if (bad[i] == alphabet[k]) continue;
            bad[i] = alphabet[k];
            cr_expect_not(api_cursor_decode(&b, order, n, bad, len, &back), "changed at %zu", i);
        }
    }
    cr_expect_not(api_cursor_decode(&b, order, n, text, len - 1, &back), "cut short");
    memcpy(bad, text, len);
    bad[len] = 'A';
    cr_expect_not(api_cursor_decode(&b, order, n, bad, len + 1, &back), "one more character");
    cr_expect_not(api_cursor_decode(&b, order, n, "", 0, &back), "empty");
    cr_expect_not(api_cursor_decode(&b, order, n, "not a cursor!", 13, &back), "not base64url");
    cr_expect_not(api_cursor_decode(&b, order, n, "AAAAAAAAAAAAAAAAAAAAAAAA", 24, &back), "no MAC");
    /* The same cursor under another order: the key count differs. */
    store_sort_t order2[STORE_SORT_MAX];
    int n2 = store_lead_order(NULL, 0, order2);
    cr_expect_not(api_cursor_decode(&b, order2, n2, text, len, &back), "another order");
}
