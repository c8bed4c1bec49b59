/*
 * reqid.c: see reqid.h.
 */
#include "http/reqid.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static uint64_t prefix;
static atomic_uint threads;
static _Thread_local unsigned thread_no; /* 0: none yet */
static _Thread_local uint64_t seq;
static pthread_once_t prefix_once = PTHREAD_ONCE_INIT;

static void draw_prefix(void)
{
    /* From the kernel, not RAND_bytes: the listener's canned answers
     * (listen.c) draw this at start-up, and OpenSSL's generator costs a
     * millisecond or two to set up at its first use. */
    if (getrandom(&prefix, sizeof prefix, 0) != (ssize_t)sizeof prefix) {
        /* Without randomness the time still tells processes apart. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        prefix = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec;
    }
}

bool reqid_valid(const char *s, size_t n)
{
    if (n == 0 || n > HTTP_REQID_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_' || c == '.' || c == ':' || c == '~';
        if (!ok) return false;
    }
    return true;
}

/* Writes v as exactly digits hex digits at out. */
static char *hex(char *out, uint64_t v, int digits)
{
    static const char HEX[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = HEX[v & 15];
        v >>= 4;
    }
    return out + digits;
}

size_t reqid_generate(char *out)
{
    if (thread_no == 0) {
        pthread_once(&prefix_once, draw_prefix);
        thread_no = atomic_fetch_add(&threads, 1) + 1;
    }
    seq++;
    /* "<12 hex: process>-<4 hex: thread>-<12 hex: sequence>", 30 characters. */
    char *p = hex(out, prefix, 12);
    *p++ = '-';
    p = hex(p, thread_no, 4);
    *p++ = '-';
    p = hex(p, seq, 12);
    *p = '\0';
    return (size_t)(p - out);
}
