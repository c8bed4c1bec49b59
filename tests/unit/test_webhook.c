/*
 * test_webhook.c: the pieces of webhooks that need no server: which
 * targets are refused, the retry schedule, the signature, event types,
 * a webhook's body and rendering, and what changed between two versions
 * of a record.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <string.h>

#include "model/diff.h"
#include "model/event.h"
#include "model/webhook.h"
#include "webhook/schedule.h"
#include "webhook/sign.h"
#include "webhook/target.h"

/* --- targets ------------------------------------------------------------------ */

static bool refused(const char *addr)
{
    struct sockaddr_storage ss = {0};
    if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
    } else {
        cr_assert_eq(inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1, "%s", addr);
        ss.ss_family = AF_INET6;
    }
    return webhook_addr_refused((struct sockaddr *)&ss);
}

Test(target, internal_addresses_are_refused_and_public_ones_are_not)
{
    static const char *const bad[] = {
        "0.0.0.0",
        "0.1.2.3",
        "10.0.0.1",
        "10.255.255.255",
        "100.64.0.1",
        "100.127.255.255",
        "127.0.0.1",
        "127.255.0.9",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.8",
        "192.168.1.1",
        "198.18.0.1",
        "224.0.0.1",
        "239.1.2.3",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fe80::1",
        "febf::1",
        "fec0::1",
        "fc00::1",
        "fdff::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.1.1.1",
        "::127.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::808:808",
        "::ffff:0:808:808",
        "2002:808:808::1",
        "2002:7f00:1::1",
        "2001:0:4136:e378::1",
        "100::1",
        "192.0.2.1",
        "198.51.100.7",
        "203.0.113.9",
        "2001:db8::1",
    };
    static const char *const good[] = {
        "1.1.1.1",        "8.8.8.8",        "93.184.216.34",    "100.63.255.255",  "100.128.0.1",
        "172.15.255.255", "172.32.0.1",     "192.169.0.1",      "223.255.255.254", "2606:4700::1111",
        "2001:1::1",      "::ffff:8.8.8.8", "64:ff9b::808:808", "101::1",          "2003::1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect(refused(bad[i]), "%s must be refused", bad[i]);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_expect(!refused(good[i]), "%s must be allowed", good[i]);
}

/* The host's own addresses are refused, whatever range they are in: one
 * with a public address on its interface would otherwise let a webhook
 * reach services listening on 0.0.0.0. */
Test(target, the_hosts_own_addresses_are_refused)
{
    struct ifaddrs *ifs = NULL;
    cr_assert_eq(getifaddrs(&ifs), 0);
    int seen = 0;
    for (const struct ifaddrs *i = ifs; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
            continue;
        char text[WEBHOOK_ADDR_TEXT_MAX];
        webhook_addr_text(i->ifa_addr, text);
        cr_expect(webhook_addr_local(i->ifa_addr), "%s (%s) is the host's own", text, i->ifa_name);
        cr_expect(webhook_addr_refused(i->ifa_addr), "%s (%s) must be refused", text, i->ifa_name);
        seen++;
    }
    freeifaddrs(ifs);
    cr_assert_gt(seen, 0, "the host has at least its loopback address");
    struct sockaddr_in far = {.sin_family = AF_INET};
    inet_pton(AF_INET, "8.8.4.4", &far.sin_addr);
    cr_expect(!webhook_addr_local((struct sockaddr *)&far), "not an address of this test host");
}

static webhook_target_rc_t check(const char *url, char *host)
{
    char why[192];
    return webhook_target_check(url, host, WEBHOOK_HOST_MAX, why, sizeof why);
}

Test(target, urls_are_read_as_the_sender_reads_them)
{
    char host[WEBHOOK_HOST_MAX];
    webhook_allow_private(false);
    cr_expect_eq(check("https://93.184.216.34/x?y=1#z", host), TARGET_OK);
    cr_expect_eq(check("http://hooks.example.com:8443/in", host), TARGET_NAME);
    cr_expect_str_eq(host, "hooks.example.com");
    cr_expect_eq(check("http://127.0.0.1/", host), TARGET_REFUSED);
    cr_expect_eq(check("http://127.1/", host), TARGET_REFUSED, "short forms are normalized");
    cr_expect_eq(check("http://0x7f.0.0.1/", host), TARGET_REFUSED);
    cr_expect_eq(check("http://[::1]:80/", host), TARGET_REFUSED);
    cr_expect_eq(check("http://[fe80::1%25eth0]/", host), TARGET_REFUSED, "a zone is refused");
    cr_expect_eq(check("ftp://93.184.216.34/", host), TARGET_INVALID);
    cr_expect_eq(check("93.184.216.34/x", host), TARGET_INVALID);
    cr_expect_eq(check("https://u:p@93.184.216.34/", host), TARGET_INVALID);
    cr_expect_eq(check("https://u@93.184.216.34/", host), TARGET_INVALID);
    cr_expect_eq(check("http://exa mple.com/", host), TARGET_INVALID);
    cr_expect_eq(check("https://b\xc3\xbccher.example/", host), TARGET_INVALID, "a name in Unicode");
    cr_expect_eq(check("https://b%C3%BCcher.example/", host), TARGET_INVALID, "the same, percent-encoded");
    cr_expect_eq(check("https://xn--bcher-kva.example/", host), TARGET_NAME, "its xn-- form");
    cr_expect_eq(check("https://x.example/b\xc3\xbccher", host), TARGET_NAME, "a path in Unicode is fine");
    cr_expect_eq(check("http://93.184.216.34:22/", host), TARGET_REFUSED, "ports under 1024 but 80 and 443");
    cr_expect_eq(check("http://hooks.example.com:25/", host), TARGET_REFUSED, "for names too");
    cr_expect_eq(check("https://93.184.216.34:1023/", host), TARGET_REFUSED);
    cr_expect_eq(check("https://93.184.216.34:1024/", host), TARGET_OK);
    cr_expect_eq(check("http://93.184.216.34:443/", host), TARGET_OK);
    cr_expect_eq(check("https://93.184.216.34:80/", host), TARGET_OK);
    webhook_allow_private(false);
}

Test(target, a_host_name_is_made_of_labels_a_resolver_can_look_up)
{
    char host[WEBHOOK_HOST_MAX];
    static const char *const bad[] = {"https://.../",      "https://-/",           "https://a..b/",
                                      "https://_/",        "https://-a-.com/",     "https://a-.com/",
                                      "https://x.-a.com/", "https://a_b.example/", "https://example.com../",
                                      "https://./"};
    for (int pass = 0; pass < 2; pass++) {
        /* The form is checked whether private targets are allowed or not. */
        webhook_allow_private(pass == 1);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            cr_expect_eq(check(bad[i], host), TARGET_INVALID, "%s", bad[i]);
    }
    webhook_allow_private(false);
    char name[96];
    snprintf(name, sizeof name, "https://%.*s.example/", 63,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    cr_expect_eq(check(name, host), TARGET_NAME, "a label of 63 bytes");
    snprintf(name, sizeof name, "https://%.*s.example/", 64,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    cr_expect_eq(check(name, host), TARGET_INVALID, "a label of 64 bytes");
    cr_expect_eq(check("https://a-b.x1.example./", host), TARGET_NAME, "one trailing dot");
    cr_expect_eq(check("https://1.example/", host), TARGET_NAME, "a label may start with a digit");
    cr_expect_eq(check("https://[2606:4700::1111]/", host), TARGET_OK, "a bracketed IPv6 literal");
    cr_expect_eq(check("https://93.184.216.34./", host), TARGET_OK, "an IPv4 literal with its dot");
    webhook_allow_private(true);
    cr_expect_eq(check("http://127.0.0.1/", host), TARGET_OK);
    cr_expect_eq(check("http://localhost/", host), TARGET_OK);
    cr_expect_eq(check("http://127.0.0.1:22/", host), TARGET_OK, "any port with private targets allowed");
    cr_expect_eq(check("ftp://127.0.0.1/", host), TARGET_INVALID, "the form is checked all the same");
    webhook_allow_private(false);
}

/* An addrinfo list of the given addresses (text), in ai[] and sa[]. */
static struct addrinfo *addr_list(const char *const *addrs, int n, struct addrinfo *ai,
                                  struct sockaddr_storage *sa)
{
    memset(ai, 0, sizeof *ai * (size_t)n);
    memset(sa, 0, sizeof *sa * (size_t)n);
    for (int i = 0; i < n; i++) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)&sa[i];
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&sa[i];
        if (inet_pton(AF_INET, addrs[i], &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
            ai[i].ai_addrlen = sizeof *v4;
        } else {
            cr_assert_eq(inet_pton(AF_INET6, addrs[i], &v6->sin6_addr), 1, "%s", addrs[i]);
            v6->sin6_family = AF_INET6;
            ai[i].ai_addrlen = sizeof *v6;
        }
        ai[i].ai_family = sa[i].ss_family;
        ai[i].ai_addr = (struct sockaddr *)&sa[i];
        ai[i].ai_next = i + 1 < n ? &ai[i + 1] : NULL;
    }
    return ai;
}

Test(target, a_name_is_refused_when_any_address_it_resolved_to_is)
{
    struct addrinfo ai[3];
    struct sockaddr_storage sa[3];
    char why[192] = "";
    static const char *const public[] = {"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"};
    static const char *const mixed[] = {"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::1"};
    static const char *const mapped[] = {"::ffff:10.0.0.1"};
    webhook_allow_private(false);
    cr_expect_eq(webhook_target_resolved(addr_list(public, 2, ai, sa), why, sizeof why), TARGET_OK);
    cr_expect_eq(webhook_target_resolved(addr_list(mixed, 3, ai, sa), why, sizeof why), TARGET_REFUSED);
    cr_expect_str_eq(why, WEBHOOK_REFUSED_TEXT, "the address itself is not told");
    cr_expect_eq(webhook_target_resolved(addr_list(mapped, 1, ai, sa), why, sizeof why), TARGET_REFUSED);
    cr_expect_eq(webhook_target_resolved(NULL, why, sizeof why), TARGET_OK, "no address: not resolved");
    webhook_allow_private(true);
    cr_expect_eq(webhook_target_resolved(addr_list(mixed, 3, ai, sa), why, sizeof why), TARGET_OK);
    webhook_allow_private(false);
}

/* --- the schedule ---------------------------------------------------------------- */

Test(schedule, durations_and_lists)
{
    int64_t ms;
    cr_expect(webhook_duration_parse("90s", &ms) && ms == 90000);
    cr_expect(webhook_duration_parse("2m", &ms) && ms == 120000);
    cr_expect(webhook_duration_parse("8h", &ms) && ms == 8 * 3600000LL);
    cr_expect(webhook_duration_parse("30d", &ms) && ms == 30 * 86400000LL);
    static const char *const bad[] = {"", "0s", "-1s", "+1s", "1", "1x", "1sec", "31d", "s", " 1s", "1.5s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect(!webhook_duration_parse(bad[i], &ms), "'%s' is not a duration", bad[i]);
    webhook_schedule_t s;
    cr_assert(webhook_schedule_parse(WEBHOOK_RETRY_DEFAULT, &s));
    cr_expect_eq(s.n, 10);
    cr_expect_eq(s.ms[0], 10000);
    cr_expect_eq(s.ms[9], 8 * 3600000LL);
    static const char *const bad_lists[] = {"", ",", "1s,", ",1s", "1s,,2s", "1s,x"};
    for (size_t i = 0; i < sizeof bad_lists / sizeof bad_lists[0]; i++)
        cr_expect(!webhook_schedule_parse(bad_lists[i], &s), "'%s'", bad_lists[i]);
}

Test(schedule, retries_follow_the_list_the_last_repeating_until_the_give_up)
{
    webhook_schedule_t s = {.give_up_ms = 6000};
    cr_assert(webhook_schedule_parse("1s,2s,4s", &s));
    cr_expect_eq(webhook_next_attempt(&s, 1, 0, 0), 1000);
    cr_expect_eq(webhook_next_attempt(&s, 2, 0, 1000), 3000);
    cr_expect_eq(webhook_next_attempt(&s, 3, 0, 3000), 0, "3000 + 4000 is past the give-up: given up");
    s.give_up_ms = 100000;
    cr_expect_eq(webhook_next_attempt(&s, 3, 0, 3000), 7000);
    cr_expect_eq(webhook_next_attempt(&s, 9, 0, 50000), 54000, "the last interval repeats");
    cr_expect_eq(webhook_next_attempt(&s, 9, 0, 96000), 100000, "exactly at the give-up still goes");
    s.give_up_ms = 6000;
    cr_expect_eq(webhook_next_attempt(&s, 1, 50000, 50000), 51000,
                 "the give-up counts from the first attempt, however old the event");
    cr_expect_eq(webhook_next_attempt(&s, 3, 50000, 53000), 0);
}

/* --- the signature ----------------------------------------------------------------- */

Test(sign, the_signature_is_an_hmac_of_the_time_and_the_body)
{
    char sig[WEBHOOK_SIGNATURE_MAX];
    cr_assert_eq(webhook_sign("whsec_test", 10, 1700000000, "{\"a\":1}", 7, sig), 0);
    /* python3: hmac.new(b"whsec_test", b"1700000000.{\"a\":1}", hashlib.sha256).hexdigest() */
    cr_expect_str_eq(sig, "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789");
}

/* --- event types and webhook bodies ----------------------------------------------- */

Test(event, names_and_bits)
{
    int t;
    cr_expect(event_parse("lead.stage_changed", 18, &t) && t == EVENT_LEAD_STAGE_CHANGED);
    cr_expect(event_parse("*", 1, &t) && t == -1);
    cr_expect(!event_parse("lead.created ", 13, &t));
    cr_expect(!event_parse("lead", 4, &t));
    cr_expect_str_eq(event_name(EVENT_FOLLOW_COMPLETED), "follow.completed");
    cr_expect_str_eq(event_name(EVENT_NTYPES), "");
    cr_expect(event_wanted(EVENT_ALL, EVENT_LEAD_PURGED));
    cr_expect(event_wanted(EVENT_BIT(EVENT_LEAD_DELETED), EVENT_LEAD_DELETED));
    cr_expect(!event_wanted(EVENT_BIT(EVENT_LEAD_DELETED), EVENT_LEAD_CREATED));
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    cr_assert_not_null(j, "%s", e.text);
    return j;
}

Test(webhook, a_body_is_decoded_with_every_problem_named)
{
    webhook_patch_t p;
    verrs_t errs = {0};
    json_t *j = parse("{\"webhook\":{\"url\":\" https://x.example/h \",\"events\":[\"lead.created\",\"*\"],"
                      "\"description\":null}}");
    webhook_decode(j, true, &p, &errs);
    cr_expect_eq(errs.n, 0);
    cr_expect_eq(p.v.url.len, 19u, "trimmed");
    cr_expect_eq(p.v.events, EVENT_ALL | EVENT_BIT(EVENT_LEAD_CREATED));
    cr_expect(p.v.active, "active by default");
    cr_expect_null(p.v.description.ptr);
    json_decref(j);
    errs = (verrs_t){0};
    j = parse("{\"webhook\":{\"events\":[\"lead.created\",\"nope\",\"lead.created\"],\"active\":1,\"secret\":"
              "\"s\"}}");
    webhook_decode(j, true, &p, &errs);
    const char *want[] = {"/webhook/events/1", "/webhook/events/2", "/webhook/active", "/webhook/secret",
                          "/webhook/url"};
    cr_assert_eq(errs.n, 5);
    for (int i = 0; i < 5; i++) {
        bool found = false;
        for (int k = 0; k < errs.n; k++)
            found |= strcmp(errs.e[k].pointer, want[i]) == 0;
        cr_expect(found, "%s", want[i]);
    }
    json_decref(j);
}

Test(webhook, the_secret_is_rendered_only_when_asked)
{
    webhook_t wh = {.id = "0190f3a2-0000-7000-8000-000000000001",
                    .url = {"https://x.example/h", 19},
                    .events = EVENT_BIT(EVENT_LEAD_DELETED) | EVENT_BIT(EVENT_LEAD_CREATED),
                    .active = true,
                    .secret = {"whsec_s", 7},
                    .created_at = 0,
                    .updated_at = 1};
    jw_t w = {0};
    webhook_encode(&w, &wh, false);
    cr_expect_null(memmem(w.buf, w.len, "whsec_s", 7));
    static const char events[] = "\"events\":[\"lead.created\",\"lead.deleted\"]";
    cr_expect_not_null(memmem(w.buf, w.len, events, sizeof events - 1), "in the document's order");
    jw_reset(&w);
    webhook_encode(&w, &wh, true);
    cr_expect_not_null(memmem(w.buf, w.len, "\"secret\":\"whsec_s\"", 18));
    jw_free(&w);
    char secret[WEBHOOK_SECRET_BUFSZ], other[WEBHOOK_SECRET_BUFSZ];
    cr_assert_eq(webhook_secret_new(secret), 0);
    cr_assert_eq(webhook_secret_new(other), 0);
    cr_expect_eq(strlen(secret), 38u);
    cr_expect_eq(strncmp(secret, "whsec_", 6), 0);
    cr_expect_eq(strspn(secret + 6, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"), 32u);
    cr_expect_str_neq(secret, other);
}

/* --- what changed ---------------------------------------------------------------- */

Test(diff, changed_attributes_and_their_old_values)
{
    lead_t a = {.name = {"A", 1}, .probability = -1, .stage = STAGE_NEW}, b = a;
    cr_expect_eq(lead_changed_fields(&a, &b), 0u);
    b.name = (text_ref_t){"B", 1};
    b.stage = STAGE_QUALIFIED;
    b.has_value = true;
    b.value_cents = 1250;
    b.updated_at = 99;
    cr_expect_eq(lead_changed_fields(&a, &b), (unsigned)(LEAD_F_NAME | LEAD_F_STAGE | LEAD_F_VALUE));
    jw_t w = {0};
    lead_encode_fields(&w, &a, lead_changed_fields(&a, &b));
    cr_expect_eq(w.len, strlen("{\"name\":\"A\",\"value\":null,\"stage\":\"new\"}"));
    cr_expect_eq(memcmp(w.buf, "{\"name\":\"A\",\"value\":null,\"stage\":\"new\"}", w.len), 0);
    jw_reset(&w);
    lead_encode_fields(&w, &b, LEAD_F_VALUE);
    cr_expect_eq(memcmp(w.buf, "{\"value\":12.5}", w.len), 0);
    jw_free(&w);
    /* A pending follow past due reads overdue: completing it changes its
     * status from "overdue". */
    follow_t f = {.title = {"T", 1}, .has_due = true, .due_at = 1000, .status = FOLLOW_PENDING}, g = f;
    g.status = FOLLOW_COMPLETED;
    cr_expect_eq(follow_changed_fields(&f, &g, 2000), (unsigned)FOLLOW_F_STATUS);
    jw_t fw = {0};
    follow_encode_fields(&fw, &f, FOLLOW_F_STATUS, 2000);
    cr_expect_eq(memcmp(fw.buf, "{\"status\":\"overdue\"}", fw.len), 0);
    jw_free(&fw);
    g = f;
    g.due_at = 5000;
    cr_expect_eq(follow_changed_fields(&f, &g, 2000), (unsigned)(FOLLOW_F_DUE | FOLLOW_F_STATUS),
                 "moving the due date past now makes it pending again");
}
