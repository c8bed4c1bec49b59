/*
 * uuid.c: RFC 9562 version 7 ids and the canonical text form.
 *
 * Layout (big-endian, 128 bits):
 *   48 bits unix_ts_ms | 4 bits version (7) | 12 bits rand_a |
 *   2 bits variant (10) | 62 bits rand_b
 *
 * The text form is the canonical 8-4-4-4-12 hex digits; the binary form
 * (uuid_to_bytes, uuid_from_bytes) is what PostgreSQL's uuid type sends
 * and receives in binary.
 *
 * Monotonicity follows RFC 9562 section 6.2, method 1: rand_a is a counter.
 * Each thread remembers the last millisecond it used and the counter value.
 * A new millisecond reseeds the counter randomly in its lower half, so at
 * least 2048 ids fit in one millisecond before the counter runs out. When it
 * does run out, or when the clock steps back, the thread keeps using (and if
 * need be advances) its own last millisecond instead of the clock's, so ids
 * keep increasing; the embedded time then runs slightly ahead of the clock,
 * which the RFC allows.
 */
#include "model/uuid.h"

#include <assert.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

/* The largest timestamp the 48-bit field holds. */
#define UUID_MS_MAX ((int64_t)0xFFFFFFFFFFFF)
#define COUNTER_MAX 0xFFF

/* Per-thread generator state; no locking is needed because no thread ever
 * sees another's. */
static _Thread_local struct {
    bool started;
    int64_t last_ms;
    unsigned counter; /* 0..COUNTER_MAX */
} gen;

static const char HEX[] = "0123456789abcdef";

/* Random bytes are drawn from OpenSSL a few kilobytes at a time: each
 * RAND_bytes call costs a getpid() system call (OpenSSL's fork check), one
 * per id otherwise. A forked child must not reuse its parent's bytes, so
 * fork empties the pool of the thread that forked (the child's only one). */
#define POOL_SIZE 4000
static _Thread_local struct {
    unsigned char bytes[POOL_SIZE];
    size_t left; /* unused bytes at the end of bytes[] */
} pool;

static void pool_forget(void)
{
    OPENSSL_cleanse(pool.bytes, sizeof pool.bytes);
    pool.left = 0;
}

static void pool_register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, pool_forget);
}

/* Copies n fresh random bytes into out; -1 if OpenSSL's generator fails. */
static int pool_take(unsigned char *out, size_t n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, pool_register_fork_handler);
    assert(n <= POOL_SIZE);
    if (pool.left < n) {
        if (RAND_bytes(pool.bytes, (int)sizeof pool.bytes) != 1) return -1;
        pool.left = sizeof pool.bytes;
    }
    unsigned char *p = pool.bytes + sizeof pool.bytes - pool.left;
    memcpy(out, p, n);
    OPENSSL_cleanse(p, n); /* never handed out twice, even by mistake */
    pool.left -= n;
    return 0;
}

int uuid_v7(int64_t ms, char out[UUID_BUFSZ])
{
    assert(out != NULL);

    /* Fetch all randomness first so that a failure leaves the state as it
     * was: 8 bytes for rand_b and 2 for a possible counter seed. */
    unsigned char rnd[10];
    if (pool_take(rnd, sizeof rnd) != 0) return -1;

    if (ms < 0) ms = 0;
    if (ms > UUID_MS_MAX) ms = UUID_MS_MAX;

    unsigned seed = ((unsigned)rnd[8] << 8 | rnd[9]) & (COUNTER_MAX >> 1);
    if (!gen.started || ms > gen.last_ms) {
        gen.started = true;
        gen.last_ms = ms;
        gen.counter = seed;
    } else if (gen.counter < COUNTER_MAX) {
        /* Same millisecond, or the clock went back: stay on last_ms. */
        gen.counter++;
    } else if (gen.last_ms < UUID_MS_MAX) {
        /* The counter is spent: borrow the next millisecond. */
        gen.last_ms++;
        gen.counter = seed;
    } else {
        /* The 48-bit clock is exhausted (the year 10889); ids stay unique
         * through rand_b but can no longer increase. */
        gen.counter = seed;
    }

    unsigned char b[UUID_BYTES];
    uint64_t t = (uint64_t)gen.last_ms;
    for (int k = 0; k < 6; k++)
        b[k] = (unsigned char)(t >> (8 * (5 - k)));
    b[6] = (unsigned char)(0x70 | (gen.counter >> 8));
    b[7] = (unsigned char)(gen.counter & 0xFF);
    for (int k = 0; k < 8; k++)
        b[8 + k] = rnd[k];
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3F));

    uuid_from_bytes(b, out);
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* True where the text form has a dash: before bytes 4, 6, 8 and 10. */
static bool is_dash_position(size_t i)
{
    return i == 8 || i == 13 || i == 18 || i == 23;
}

bool uuid_to_bytes(const char *s, size_t len, unsigned char out[UUID_BYTES])
{
    assert(out != NULL);
    if (s == NULL || len != UUID_STRLEN) return false;
    unsigned char b[UUID_BYTES];
    size_t n = 0;
    for (size_t i = 0; i < UUID_STRLEN; i++) {
        if (is_dash_position(i)) {
            if (s[i] != '-') return false;
            continue;
        }
        int hi = hex_value(s[i]), lo = hex_value(s[i + 1]); /* hex digits come in pairs */
        if (hi < 0 || lo < 0) return false;
        b[n++] = (unsigned char)(hi << 4 | lo);
        i++;
    }
    assert(n == UUID_BYTES);
    /* Written only on success, so out never holds half an id. */
    memcpy(out, b, UUID_BYTES);
    return true;
}

void uuid_from_bytes(const unsigned char b[UUID_BYTES], char out[UUID_BUFSZ])
{
    size_t o = 0;
    for (size_t k = 0; k < UUID_BYTES; k++) {
        if (is_dash_position(o)) out[o++] = '-';
        out[o++] = HEX[b[k] >> 4];
        out[o++] = HEX[b[k] & 0xF];
    }
    assert(o == UUID_STRLEN);
    out[o] = '\0';
}

bool uuid_parse(const char *s, size_t len, char out[UUID_BUFSZ])
{
    assert(out != NULL);
    out[0] = '\0';
    unsigned char b[UUID_BYTES];
    if (!uuid_to_bytes(s, len, b)) return false;
    uuid_from_bytes(b, out);
    return true;
}
