/*
 * test_uuid.c: v7 layout, per-thread monotonicity and the text form.
 *
 * Criterion runs every test in its own process, so each test starts with a
 * fresh generator state; the tests that look at the first id of a thread
 * rely on that.
 */
#include <criterion/criterion.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "model/uuid.h"

static bool is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Checks the canonical lowercase shape and the v7 version and variant. */
static void expect_v7_shape(const char *u)
{
    cr_assert_eq(strlen(u), UUID_STRLEN, "%s", u);
    for (size_t i = 0; i < UUID_STRLEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            cr_assert_eq(u[i], '-', "%s", u);
        else
            cr_assert(is_lower_hex(u[i]), "%s", u);
    }
    cr_assert_eq(u[14], '7', "version nibble in %s", u);
    cr_assert(strchr("89ab", u[19]) != NULL, "variant nibble in %s", u);
}

/* The 48-bit timestamp field of a v7 text id. */
static int64_t embedded_ms(const char *u)
{
    char hex[13];
    memcpy(hex, u, 8);
    memcpy(hex + 8, u + 9, 4);
    hex[12] = '\0';
    return (int64_t)strtoll(hex, NULL, 16);
}

/* The 12-bit rand_a field (the counter). */
static int rand_a(const char *u)
{
    char hex[4] = {u[15], u[16], u[17], '\0'};
    return (int)strtol(hex, NULL, 16);
}

Test(uuid_v7, layout)
{
    char u[UUID_BUFSZ];
    int64_t ms = INT64_C(1772719200123); /* far ahead of any earlier call in this thread */
    cr_assert_eq(uuid_v7(ms, u), 0);
    expect_v7_shape(u);
    cr_expect_eq(embedded_ms(u), ms);
    cr_expect_eq(strncmp(u, "019cbe4c-577b-7", 15), 0, "%s", u); /* 0x019cbe4c577b */
    /* A fresh millisecond seeds the counter in its lower half. */
    cr_expect_lt(rand_a(u), 0x800, "%s", u);
}

Test(uuid_v7, many_in_one_millisecond_increase)
{
    int64_t ms = INT64_C(1800000000000);
    char prev[UUID_BUFSZ], cur[UUID_BUFSZ];
    cr_assert_eq(uuid_v7(ms, prev), 0);
    for (int i = 0; i < 10000; i++) {
        cr_assert_eq(uuid_v7(ms, cur), 0);
        expect_v7_shape(cur);
        cr_assert_lt(strcmp(prev, cur), 0, "%d: %s then %s", i, prev, cur);
        memcpy(prev, cur, sizeof cur);
    }
    /* 10,001 ids cannot share one millisecond's 4096 counter values, so the
     * generator must have borrowed later milliseconds, but only a few. */
    cr_expect_gt(embedded_ms(prev), ms);
    cr_expect_leq(embedded_ms(prev), ms + 10);
}

Test(uuid_v7, clock_step_back_keeps_order)
{
    int64_t ms = INT64_C(1900000000000);
    char a[UUID_BUFSZ], b[UUID_BUFSZ], c[UUID_BUFSZ];
    cr_assert_eq(uuid_v7(ms, a), 0);
    cr_assert_eq(uuid_v7(ms - 5000, b), 0);
    cr_expect_lt(strcmp(a, b), 0, "%s then %s", a, b);
    cr_expect_eq(embedded_ms(b), ms, "the last ms is kept");
    cr_expect_eq(rand_a(b), rand_a(a) + 1);
    /* When the clock catches up and passes, it is used again. */
    cr_assert_eq(uuid_v7(ms + 1, c), 0);
    cr_expect_lt(strcmp(b, c), 0);
    cr_expect_eq(embedded_ms(c), ms + 1);
}

Test(uuid_v7, out_of_range_times_are_clamped)
{
    char u[UUID_BUFSZ];
    /* A fresh test process starts with no history, so ms 0 is used as is. */
    cr_assert_eq(uuid_v7(-5, u), 0);
    expect_v7_shape(u);
    cr_expect_eq(embedded_ms(u), 0);
    cr_assert_eq(uuid_v7(INT64_MAX, u), 0);
    expect_v7_shape(u);
    cr_expect_eq(strncmp(u, "ffffffff-ffff-7", 15), 0, "%s", u);
}

Test(uuid_v7, ids_are_unique_across_milliseconds)
{
    enum { N = 2000 };
    static char ids[N][UUID_BUFSZ];
    int64_t ms = INT64_C(2000000000000);
    for (int i = 0; i < N; i++)
        cr_assert_eq(uuid_v7(ms + i / 3, ids[i]), 0);
    for (int i = 1; i < N; i++)
        cr_assert_lt(strcmp(ids[i - 1], ids[i]), 0, "%s then %s", ids[i - 1], ids[i]);
}

struct thread_result {
    int64_t ms;
    bool ordered;
    char first[UUID_BUFSZ];
};

static void *make_ids(void *arg)
{
    struct thread_result *r = arg;
    char prev[UUID_BUFSZ], cur[UUID_BUFSZ];
    r->ordered = uuid_v7(r->ms, prev) == 0;
    memcpy(r->first, prev, sizeof prev);
    for (int i = 0; i < 3000 && r->ordered; i++) {
        if (uuid_v7(r->ms, cur) != 0 || strcmp(prev, cur) >= 0) r->ordered = false;
        memcpy(prev, cur, sizeof cur);
    }
    return NULL;
}

Test(uuid_v7, state_is_per_thread)
{
    /* This thread moves far ahead; new threads must not inherit that, so
     * their ids carry their own (earlier) millisecond. */
    char u[UUID_BUFSZ];
    cr_assert_eq(uuid_v7(INT64_C(3000000000000), u), 0);

    enum { T = 4 };
    pthread_t th[T];
    struct thread_result res[T];
    for (int i = 0; i < T; i++) {
        res[i] = (struct thread_result){.ms = INT64_C(2500000000000)};
        cr_assert_eq(pthread_create(&th[i], NULL, make_ids, &res[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        cr_assert_eq(pthread_join(th[i], NULL), 0);
        cr_expect(res[i].ordered, "thread %d", i);
        cr_expect_eq(embedded_ms(res[i].first), INT64_C(2500000000000));
    }
}

static void expect_parse(const char *s, const char *want)
{
    char out[UUID_BUFSZ];
    memset(out, 'x', sizeof out);
    cr_expect(uuid_parse(s, strlen(s), out), "\"%s\" rejected", s);
    cr_expect_str_eq(out, want);
}

static void expect_parse_bad(const char *s, size_t len)
{
    char out[UUID_BUFSZ];
    memset(out, 'x', sizeof out);
    cr_expect_not(uuid_parse(s, len, out), "\"%.*s\" accepted", (int)len, s);
    cr_expect_str_eq(out, "", "output on failure must be empty");
}

Test(uuid_parse, accepts_any_case)
{
    expect_parse("019cbe59-f27b-7abc-8def-0123456789ab", "019cbe59-f27b-7abc-8def-0123456789ab");
    expect_parse("019CBE59-F27B-7ABC-8DEF-0123456789AB", "019cbe59-f27b-7abc-8def-0123456789ab");
    expect_parse("019cBe59-f27B-7aBc-8DeF-0123456789aB", "019cbe59-f27b-7abc-8def-0123456789ab");
    /* Any version, not only 7: the id may come from elsewhere. */
    expect_parse("00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000");
    expect_parse("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", "ffffffff-ffff-ffff-ffff-ffffffffffff");
}

Test(uuid_parse, rejects)
{
    static const char *const bad[] = {
        "",
        "019cbe59-f27b-7abc-8def-0123456789a",   /* 35 */
        "019cbe59-f27b-7abc-8def-0123456789abc", /* 37 */
        "019cbe59f27b7abc8def0123456789ab",      /* no dashes */
        "{019cbe59-f27b-7abc-8def-0123456789a}", /* braces */
        "019cbe5-9f27b-7abc-8def-0123456789ab",  /* dash moved */
        "019cbe59-f27b-7abc-8def-0123456789ag",  /* g */
        "019cbe59-f27b-7abc-8def-0123456789a ",  /* space */
        "019cbe59_f27b_7abc_8def_0123456789ab",  /* underscores */
        "019cbe59-f27b-7abc-8def--123456789ab",  /* extra dash */
        "urn:uuid:019cbe59-f27b-7abc-8def-012345",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_parse_bad(bad[i], strlen(bad[i]));
    /* A NUL inside, and the length deciding rather than the terminator. */
    expect_parse_bad("019cbe59-f27b-7abc-8def-0123456789\0b", 36);
    expect_parse_bad("019cbe59-f27b-7abc-8def-0123456789abXYZ", 39);
    expect_parse_bad(NULL, 0);
}

Test(uuid_parse, round_trips_generated_ids)
{
    for (int i = 0; i < 100; i++) {
        char u[UUID_BUFSZ], out[UUID_BUFSZ];
        cr_assert_eq(uuid_v7(INT64_C(1772719200000) + i, u), 0);
        cr_assert(uuid_parse(u, UUID_STRLEN, out));
        cr_assert_str_eq(out, u);
    }
}

/* Random bytes come from a per-thread pool; a forked child must not reuse
 * the parent's, or both would make the same next id. */
Test(uuid, forked_child_does_not_repeat_parent_ids)
{
    char first[UUID_BUFSZ], mine[UUID_BUFSZ], theirs[UUID_BUFSZ];
    const int64_t ms = 1800000000000;
    cr_assert_eq(uuid_v7(ms, first), 0);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char id[UUID_BUFSZ];
        int ok = uuid_v7(ms, id) == 0 && write(fds[1], id, UUID_BUFSZ) == UUID_BUFSZ;
        _exit(ok ? 0 : 1);
    }
    cr_assert_eq(uuid_v7(ms, mine), 0);
    cr_assert_eq(read(fds[0], theirs, UUID_BUFSZ), UUID_BUFSZ);
    int status = 0;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_expect_str_neq(mine, theirs, "parent and child made the same id %s", mine);
    close(fds[0]);
    close(fds[1]);
}

Test(uuid_bytes, round_trip_and_byte_order)
{
    static const unsigned char want[UUID_BYTES] = {0x01, 0x9c, 0xbe, 0x59, 0xf2, 0x7b, 0x7a, 0xbc,
                                                   0x8d, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab};
    unsigned char b[UUID_BYTES];
    const char *text = "019CBE59-f27b-7abc-8DEF-0123456789ab";
    cr_assert(uuid_to_bytes(text, strlen(text), b));
    cr_expect_arr_eq(b, want, UUID_BYTES, "most significant byte first");
    char out[UUID_BUFSZ];
    memset(out, 'x', sizeof out);
    uuid_from_bytes(b, out);
    cr_expect_str_eq(out, "019cbe59-f27b-7abc-8def-0123456789ab", "lowercase canonical text");

    static const unsigned char ends[2][UUID_BYTES] = {
        {0},
        {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
    uuid_from_bytes(ends[0], out);
    cr_expect_str_eq(out, "00000000-0000-0000-0000-000000000000");
    uuid_from_bytes(ends[1], out);
    cr_expect_str_eq(out, "ffffffff-ffff-ffff-ffff-ffffffffffff");

    for (int i = 0; i < 100; i++) {
        char u[UUID_BUFSZ], back[UUID_BUFSZ];
        cr_assert_eq(uuid_v7(INT64_C(1772719200000) + i, u), 0);
        cr_assert(uuid_to_bytes(u, UUID_STRLEN, b));
        uuid_from_bytes(b, back);
        cr_assert_str_eq(back, u);
    }
}

Test(uuid_bytes, rejects_what_uuid_parse_rejects)
{
    static const char *const bad[] = {
        "",
        "019cbe59-f27b-7abc-8def-0123456789a",
        "019cbe59-f27b-7abc-8def-0123456789abc",
        "019cbe59f27b7abc8def0123456789ab",
        "019cbe5-9f27b-7abc-8def-0123456789ab",
        "019cbe59-f27b-7abc-8def-0123456789ag",
        "019cbe59_f27b_7abc_8def_0123456789ab",
        "019cbe59-f27b-7abc-8def--123456789ab",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char b[UUID_BYTES];
        memset(b, 0x5a, sizeof b);
        cr_expect_not(uuid_to_bytes(bad[i], strlen(bad[i]), b), "\"%s\" accepted", bad[i]);
        for (size_t k = 0; k < UUID_BYTES; k++)
            cr_assert_eq(b[k], 0x5a, "\"%s\": output written on failure", bad[i]);
    }
    unsigned char b[UUID_BYTES];
    cr_expect_not(uuid_to_bytes("019cbe59-f27b-7abc-8def-0123456789\0b", 36, b), "a NUL inside");
    cr_expect_not(uuid_to_bytes(NULL, 0, b));
}
