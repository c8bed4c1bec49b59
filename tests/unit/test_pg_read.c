/*
 * test_pg_read.c: the statement_timeout a PostgreSQL server thread's
 * session is given for its reads (store/postgres/async.c, pg_read_ms),
 * from the time left to the read's --read-time deadline.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdint.h>

#include "store/postgres/pg_int.h"

#define MS(x) ((int64_t)((x)*1000000.0))

/* The bound of a read is never later than its deadline: rounded up to
 * 10 ms, --read-time 23ms ran each statement for up to 30 ms. */
Test(pg_read, the_bound_never_passes_the_time_left)
{
    cr_expect_eq(pg_read_ms(0, MS(23.4)), 23);
    cr_expect_eq(pg_read_ms(0, MS(11)), 11);
    for (int cur = 0; cur <= 300; cur += 7)
        for (int64_t left = 0; left <= MS(250); left += 100000) {
            int ms = pg_read_ms(cur, left);
            cr_assert_leq((int64_t)ms * 1000000, left < MS(1) ? MS(1) : left, "cur %d, left %lld ns: %d ms",
                          cur, (long long)left, ms);
            cr_assert_geq(ms, 1);
        }
}

/* A read at or past its deadline still gets a bound (1 ms), and one far
 * off is capped at what the setting takes. */
Test(pg_read, the_bound_is_at_least_1_ms_and_at_most_int_max)
{
    cr_expect_eq(pg_read_ms(0, 0), 1);
    cr_expect_eq(pg_read_ms(40, -MS(5)), 1);
    cr_expect_eq(pg_read_ms(0, INT64_MAX), INT_MAX);
}

/* The time left when a read begins wavers around --read-time; the bound
 * told to the session stays while it is less than 10 ms under the time
 * left, so that the session is not told again for each read. */
Test(pg_read, a_bound_a_little_under_the_time_left_is_kept)
{
    cr_expect_eq(pg_read_ms(49, MS(49.9)), 49);
    cr_expect_eq(pg_read_ms(49, MS(50.2)), 49);
    cr_expect_eq(pg_read_ms(49, MS(58.9)), 49);
    cr_expect_eq(pg_read_ms(49, MS(59.0)), 59, "a bound 10 ms under the time left was kept");
    cr_expect_eq(pg_read_ms(49, MS(48.7)), 48, "a bound past the time left was kept");
}
