/*
 * test_loop.c: api/loop.c, the server thread's h2o event loop as the store
 * sees it (store_loop_t): readiness of a descriptor the loop never reads
 * or closes, one write notification per request, and timers, on a real
 * h2o_evloop_t turned by the test. A socketpair stands in for the
 * database connection.
 */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/loop.h"

static h2o_evloop_t *loop;
static api_loop_t *glue;
static store_loop_t sl;
static int sv[2]; /* sv[0]: the store's descriptor; sv[1]: the database's end */

/* What the callbacks saw. */
static int reads, writes, fired;
static store_watch_t *self; /* a watch its own callback lets go of */

static void on_io(void *arg, unsigned events)
{
    (void)arg;
    if (events & STORE_IO_READ) reads++;
    if (events & STORE_IO_WRITE) writes++;
    if (self != NULL) {
        sl.unwatch(self);
        self = NULL;
    }
}

static void on_timer(void *arg)
{
    fired += *(int *)arg;
}

static void setup(void)
{
    loop = h2o_evloop_create();
    glue = api_loop_new(loop, &sl);
    cr_assert_not_null(glue);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    reads = writes = fired = 0;
    self = NULL;
}

static void teardown(void)
{
    api_loop_free(glue);
    close(sv[0]);
    close(sv[1]);
}

TestSuite(loop, .init = setup, .fini = teardown);

static void turns(int n)
{
    for (int i = 0; i < n; i++)
        h2o_evloop_run(loop, 10);
}

Test(loop, reports_readiness_without_reading_or_closing_the_descriptor)
{
    store_watch_t *w = sl.watch(sl.ctx, sv[0], on_io, NULL);
    cr_assert_not_null(w);
    turns(3);
    cr_expect_eq(reads + writes, 0, "reported before anything was asked");
    sl.read(w, true);
    turns(3);
    cr_expect_eq(reads, 0, "readable with nothing to read");
    cr_assert_eq(write(sv[1], "x", 1), 1);
    turns(3);
    cr_expect_gt(reads, 0, "the byte was not reported");
    /* Level-triggered: it stays readable until the owner reads it, and the
     * loop has not read it. */
    char c;
    cr_expect_eq(read(sv[0], &c, 1), 1, "the loop took the byte");
    int before = reads;
    turns(3);
    cr_expect_eq(reads, before, "reported again with nothing left to read");
    sl.unwatch(w);
    turns(2);
    cr_expect_neq(fcntl(sv[0], F_GETFD), -1, "the loop closed the store's descriptor");
}

Test(loop, a_write_notification_comes_once_per_request)
{
    store_watch_t *w = sl.watch(sl.ctx, sv[0], on_io, NULL);
    sl.write(w);
    sl.write(w); /* asking twice before it came is one request */
    turns(3);
    cr_expect_eq(writes, 1);
    turns(3);
    cr_expect_eq(writes, 1, "notified again without asking");
    sl.write(w);
    turns(3);
    cr_expect_eq(writes, 2);
    sl.unwatch(w);
}

Test(loop, the_owner_may_close_its_descriptor_first_and_let_go_from_a_callback)
{
    int mine = fcntl(sv[0], F_DUPFD_CLOEXEC, 0);
    store_watch_t *w = sl.watch(sl.ctx, mine, on_io, NULL);
    sl.read(w, true);
    close(mine); /* as libpq does when it finds its connection gone */
    close(sv[1]);
    sv[1] = -1;
    self = w; /* the store lets go of the watch from its callback */
    turns(3);
    cr_expect_eq(reads, 1, "the peer's close was not reported exactly once");
    turns(3);
    cr_expect_eq(reads, 1, "reported after the watch was let go of");
}

Test(loop, timers_fire_once_or_not_at_all_once_stopped)
{
    static int one = 1, ten = 10, hundred = 100;
    cr_assert_not_null(sl.timer_start(sl.ctx, 0, on_timer, &one));
    cr_assert_not_null(sl.timer_start(sl.ctx, 500, on_timer, &ten));
    store_timer_t *stopped = sl.timer_start(sl.ctx, 500, on_timer, &hundred);
    cr_assert_not_null(stopped);
    sl.timer_stop(stopped);
    turns(1);
    cr_expect_eq(fired, 1, "the timer due at once did not fire first, alone");
    struct timespec pause = {0, 600 * 1000 * 1000};
    nanosleep(&pause, NULL);
    turns(3);
    cr_expect_eq(fired, 11, "fired: %d", fired);
}
