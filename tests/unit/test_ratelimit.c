/*
 * test_ratelimit.c: the token buckets of api/ratelimit.c: per app, and per
 * client address for failed authentications.
 *
 * The limiter reads no clock of its own: every call is given the time in
 * milliseconds, so these tests drive time by hand. Criterion runs each test
 * in its own process, so each starts from an unconfigured limiter.
 */
#include <criterion/criterion.h>

#include <stdint.h>

#include "api/ratelimit.h"

/* An arbitrary instant, far from zero so that "long ago" is representable. */
#define T0 1767225600000LL

static ratelimit_info_t info;

static ratelimit_key_t key(int64_t app)
{
    return (ratelimit_key_t){(uint64_t)app, 0};
}

static bool take(int64_t app, int64_t now)
{
    return ratelimit_take(RATELIMIT_APP, key(app), now, &info);
}

/* Takes n requests of app at now, all of which must be allowed. */
static void take_ok(int64_t app, int64_t now, int n)
{
    for (int i = 0; i < n; i++)
        cr_assert(take(app, now), "app %lld: request %d of %d refused", (long long)app, i + 1, n);
}

static void expect_info(int limit, int remaining, int reset_s, int retry_after)
{
    cr_expect_eq(info.limit, limit, "limit %d, want %d", info.limit, limit);
    cr_expect_eq(info.remaining, remaining, "remaining %d, want %d", info.remaining, remaining);
    cr_expect_eq(info.reset_s, reset_s, "reset %d s, want %d", info.reset_s, reset_s);
    cr_expect_eq(info.retry_after, retry_after, "retry after %d s, want %d", info.retry_after, retry_after);
}

Test(ratelimit, a_burst_is_allowed_at_once_and_the_next_request_is_refused)
{
    ratelimit_configure(RATELIMIT_APP, 2, 5);
    cr_assert(ratelimit_enabled(RATELIMIT_APP));
    take_ok(1, T0, 5);
    cr_expect_not(take(1, T0), "a sixth request in the same millisecond was allowed");
    cr_expect_not(take(1, T0), "a refused request made room for the next one");
}

Test(ratelimit, figures_count_down_through_the_burst)
{
    ratelimit_configure(RATELIMIT_APP, 2, 5);
    cr_assert(take(1, T0));
    /* 4 tokens left; the one spent comes back in half a second: 1 s. */
    expect_info(5, 4, 1, 0);
    take_ok(1, T0, 3);
    expect_info(5, 1, 2, 0);
    cr_assert(take(1, T0));
    /* Empty: five tokens at two a second are back in 2.5 s, rounded up. */
    expect_info(5, 0, 3, 0);
    cr_assert_not(take(1, T0));
    /* One token takes half a second, said as a whole second. */
    expect_info(5, 0, 3, 1);
}

Test(ratelimit, retry_after_is_the_wait_for_one_token_rounded_up)
{
    ratelimit_configure(RATELIMIT_APP, 0.5, 2); /* one token every two seconds */
    take_ok(7, T0, 2);
    cr_assert_not(take(7, T0));
    expect_info(2, 0, 4, 2);
    /* Half a token later: one more second to wait, three to be full. */
    cr_assert_not(take(7, T0 + 1000));
    expect_info(2, 0, 3, 1);
    cr_assert(take(7, T0 + 2000));
    expect_info(2, 0, 4, 0);
}

Test(ratelimit, waits_of_a_fraction_of_a_second_are_rounded_up)
{
    ratelimit_configure(RATELIMIT_APP, 0.4, 1); /* one token every 2.5 s */
    cr_assert(take(3, T0));
    cr_assert_not(take(3, T0));
    expect_info(1, 0, 3, 3);
    cr_assert_not(take(3, T0 + 2400));
    expect_info(1, 0, 1, 1);
    cr_expect(take(3, T0 + 2500));
}

Test(ratelimit, tokens_come_back_at_the_rate)
{
    ratelimit_configure(RATELIMIT_APP, 10, 10); /* a token every 100 ms */
    /* Two apps drained at the same instant, looked at 1 ms apart. */
    take_ok(1, T0, 10);
    take_ok(2, T0, 10);
    cr_expect_not(take(1, T0 + 99), "a token came back before 100 ms");
    cr_expect(take(2, T0 + 100), "no token came back after 100 ms");
    cr_expect_not(take(2, T0 + 100), "two tokens came back after 100 ms");
    /* Half a second on: five more. */
    take_ok(2, T0 + 600, 5);
    cr_expect_not(take(2, T0 + 600));
}

Test(ratelimit, a_long_pause_refills_the_bucket_only_up_to_the_burst)
{
    ratelimit_configure(RATELIMIT_APP, 10, 3);
    take_ok(1, T0, 3);
    cr_assert_not(take(1, T0));
    int64_t later = T0 + 3600 * 1000;
    take_ok(1, later, 3);
    cr_expect_not(take(1, later), "an hour's pause gave more than the burst");
    expect_info(3, 0, 1, 1);
}

Test(ratelimit, a_clock_that_steps_back_gives_no_tokens)
{
    ratelimit_configure(RATELIMIT_APP, 1, 1);
    cr_assert(take(1, T0));
    cr_expect_not(take(1, T0 - 5000));
    cr_expect_not(take(1, T0 + 999));
    cr_expect(take(1, T0 + 1000));
}

Test(ratelimit, apps_have_their_own_buckets)
{
    ratelimit_configure(RATELIMIT_APP, 1, 4);
    take_ok(1, T0, 4);
    cr_assert_not(take(1, T0));
    /* Another app is untouched by the first one's use... */
    take_ok(2, T0, 4);
    expect_info(4, 0, 4, 0);
    cr_expect_not(take(2, T0));
    /* ...and many more apps each get their whole burst. */
    for (int64_t app = 100; app < 400; app++)
        take_ok(app, T0, 4);
    cr_expect_not(take(1, T0), "app 1 regained tokens from other apps' traffic");
}

Test(ratelimit, off_by_default_and_when_configured_off)
{
    cr_expect_not(ratelimit_enabled(RATELIMIT_APP));
    take_ok(1, T0, 1000);
    ratelimit_configure(RATELIMIT_APP, 1, 2);
    take_ok(1, T0, 2);
    cr_assert_not(take(1, T0));
    ratelimit_configure(RATELIMIT_APP, 0, 0);
    cr_expect_not(ratelimit_enabled(RATELIMIT_APP));
    take_ok(1, T0, 1000);
    cr_expect_eq(info.retry_after, 0);
}

Test(ratelimit, burst_defaults_to_the_rate_when_below_one)
{
    ratelimit_configure(RATELIMIT_APP, 3, 0);
    take_ok(1, T0, 3);
    cr_expect_not(take(1, T0));
    expect_info(3, 0, 1, 1);
}

Test(ratelimit, a_peek_takes_nothing)
{
    ratelimit_configure(RATELIMIT_AUTH, 1, 2);
    ratelimit_key_t k = {0, 0x0000ffffc0000201ULL};
    for (int i = 0; i < 5; i++)
        cr_assert(ratelimit_peek(RATELIMIT_AUTH, k, T0, &info));
    expect_info(2, 2, 0, 0);
    cr_assert(ratelimit_take(RATELIMIT_AUTH, k, T0, &info));
    cr_assert(ratelimit_take(RATELIMIT_AUTH, k, T0, &info));
    cr_expect_not(ratelimit_peek(RATELIMIT_AUTH, k, T0, &info));
    expect_info(2, 0, 2, 1);
    cr_expect(ratelimit_peek(RATELIMIT_AUTH, k, T0 + 1000, &info));
}

Test(ratelimit, the_two_limiters_are_apart)
{
    ratelimit_configure(RATELIMIT_APP, 1, 1);
    cr_expect_not(ratelimit_enabled(RATELIMIT_AUTH));
    take_ok(1, T0, 1);
    cr_expect_not(take(1, T0));
    ratelimit_configure(RATELIMIT_AUTH, 1, 3);
    for (int i = 0; i < 3; i++)
        cr_expect(ratelimit_take(RATELIMIT_AUTH, key(1), T0, &info), "the same key in the other limiter");
    cr_expect_not(ratelimit_take(RATELIMIT_AUTH, key(1), T0, &info));
}

Test(ratelimit, a_bucket_filled_up_again_gives_its_slot_to_a_new_key)
{
    /* A new key every millisecond, far more keys than slots: each must
     * still be limited, as a bucket refilled (here in 1 ms) is as good as
     * a new one and its slot is taken over; none is let through for want
     * of room. */
    ratelimit_configure(RATELIMIT_APP, 1000, 1);
    for (int64_t i = 1; i <= 20000; i++) {
        cr_assert(take(i, T0 + i), "key %lld refused its first request", (long long)i);
        cr_assert_not(take(i, T0 + i), "key %lld was not limited", (long long)i);
    }
}

Test(ratelimit, keys_that_crowd_the_table_share_its_budget)
{
    /* Twice as many keys as slots, each asking again and again at the
     * same instant: no bucket refills, so the later keys find every slot
     * they may take busy and drained. Such a key takes one over as it is
     * (drained), so all of them together get at most what the table's
     * buckets hold, one each: never a key let through for want of room
     * (eight addresses holding a ninth's slots made it unlimited), nor a
     * fresh burst for each key that takes a slot over (nine taking turns
     * each got one; helper-80, helper-86). */
    ratelimit_configure(RATELIMIT_AUTH, 1, 1);
    int allowed = 0;
    for (int round = 0; round < 3; round++)
        for (int64_t i = 1; i <= 8192; i++) {
            allowed += ratelimit_take(RATELIMIT_AUTH, key(i), T0, &info);
            cr_assert_not(ratelimit_take(RATELIMIT_AUTH, key(i), T0, &info), "key %lld took two at once",
                          (long long)i);
        }
    cr_expect_leq(allowed, 4096, "%d allowed at one instant, more than the table's 4,096 buckets hold",
                  allowed);
    cr_expect_geq(allowed, 1024, "%d allowed: free slots must still start full", allowed);
    /* A second later every bucket has a token again. */
    cr_expect(ratelimit_take(RATELIMIT_AUTH, key(1), T0 + 1000, &info));
}

Test(ratelimit_parse, rate_and_optional_burst)
{
    double rate = -1, burst = -1;
    cr_assert(ratelimit_parse("10", &rate, &burst));
    cr_expect_float_eq(rate, 10, 1e-9);
    cr_expect_float_eq(burst, 20, 1e-9); /* twice the rate */
    cr_assert(ratelimit_parse("0.5:3", &rate, &burst));
    cr_expect_float_eq(rate, 0.5, 1e-9);
    cr_expect_float_eq(burst, 3, 1e-9);
}

/* A rate under 0.5 without a burst: twice the rate is less than one
 * request, and a bucket that never holds one refused every request for
 * good. The burst is one request then, which the bucket starts with. */
Test(ratelimit_parse, a_slow_rate_without_a_burst_lets_one_request_through)
{
    double rate = -1, burst = -1;
    cr_assert(ratelimit_parse("0.1", &rate, &burst));
    cr_expect_float_eq(rate, 0.1, 1e-9);
    cr_expect_float_eq(burst, 1, 1e-9);
    ratelimit_configure(RATELIMIT_APP, rate, burst);
    cr_expect(take(1, T0), "the first request of a 0.1/s limit was refused");
    cr_expect_not(take(1, T0 + 1000), "a second request within 10 s was taken");
    cr_expect(take(1, T0 + 11000), "no request was taken 11 s later");
}

Test(ratelimit_parse, malformed_is_refused_and_leaves_the_outputs)
{
    static const char *const bad[] = {"",    "x",      "0",   "-1",  "10:",  "10:0.5", "10:x",
                                      "10x", "10:5:5", "nan", "inf", "1e10", "5:1e10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double rate = 42, burst = 43;
        cr_expect_not(ratelimit_parse(bad[i], &rate, &burst), "\"%s\" was accepted", bad[i]);
        cr_expect(rate == 42 && burst == 43, "\"%s\" changed the outputs", bad[i]);
    }
}

/* A slow read's cost (ratelimit_charge) is taken from its app's bucket,
 * below zero if need be, down to RATELIMIT_DEBT_S seconds of the rate; the
 * app is refused until the bucket refills past one, others are not. */
Test(ratelimit, a_charge_refuses_the_app_until_it_is_paid_back)
{
    ratelimit_configure(RATELIMIT_APP, 100, 200);
    cr_assert(take(1, T0));
    ratelimit_charge(RATELIMIT_APP, key(1), T0, 990); /* a read stopped at 1 s */
    cr_expect_not(take(1, T0));
    cr_expect_eq(info.remaining, 0);
    /* 199 - 990 = -791: 7.92 s until one is back. */
    cr_expect_eq(info.retry_after, 8, "retry_after %d", info.retry_after);
    cr_expect(take(2, T0), "another app is not charged");
    cr_expect_not(take(1, T0 + 7900));
    cr_expect(take(1, T0 + 7930));
    /* The debt stops at 60 s of the rate. */
    ratelimit_charge(RATELIMIT_APP, key(3), T0, 1e9);
    cr_expect_not(take(3, T0 + 59000));
    cr_expect(take(3, T0 + 60020));
}

Test(ratelimit, a_charge_with_the_limit_off_does_nothing)
{
    ratelimit_charge(RATELIMIT_APP, key(1), T0, 1e6);
    cr_expect(take(1, T0));
}
