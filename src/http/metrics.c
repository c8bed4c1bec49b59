/*
 * metrics.c: see metrics.h.
 */
#include "http/metrics.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef _Atomic uint64_t counter_t;

typedef struct slot {
    counter_t counter[METRIC_NCOUNTERS];
    counter_t requests[METRICS_ROUTES_MAX][METRICS_NSTATUS];
    counter_t latency[METRICS_ROUTES_MAX][METRICS_NLATENCY];
    counter_t latency_us[METRICS_ROUTES_MAX];
    counter_t batch_writes[METRICS_NBATCH], batch_writes_sum;
    counter_t batch_latency[METRICS_NLATENCY], batch_us;
} slot_t;

/* At most this many threads get a slot of their own (256 server threads,
 * the writer, the admin listener); others count in the shared one. */
#define SLOTS_MAX 260

static bool on;
static slot_t shared;
static _Atomic(slot_t *) slots[SLOTS_MAX];
static atomic_int nslots;
static _Thread_local slot_t *mine;

static const int STATUSES[] = {METRICS_STATUS_LIST};
static const uint64_t LATENCY_US[] = {METRICS_LATENCY_BOUNDS_US};
static const uint64_t BATCH[] = {METRICS_BATCH_BOUNDS};
_Static_assert(sizeof STATUSES / sizeof STATUSES[0] + 1 == METRICS_NSTATUS, "METRICS_NSTATUS");
_Static_assert(sizeof LATENCY_US / sizeof LATENCY_US[0] + 1 == METRICS_NLATENCY, "METRICS_NLATENCY");
_Static_assert(sizeof BATCH / sizeof BATCH[0] + 1 == METRICS_NBATCH, "METRICS_NBATCH");

void metrics_enable(void)
{
    on = true;
}

bool metrics_enabled(void)
{
    return on;
}

void metrics_thread_attach(void)
{
    if (!on || mine != NULL) return;
    int i = atomic_fetch_add(&nslots, 1);
    if (i >= SLOTS_MAX) return;
    slot_t *s = calloc(1, sizeof *s);
    if (s == NULL) return;
    atomic_store(&slots[i], s);
    mine = s;
}

/* Adds v to c: a plain load and store in the thread's own slot (no other
 * thread writes it), an atomic add in the shared one. */
static inline void add(counter_t *c, uint64_t v, bool own)
{
    if (own)
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

/* The calling thread's slot, or the shared one. */
#define SLOT(s, own)                                                                                         \
    slot_t *s = mine;                                                                                        \
    bool own = s != NULL;                                                                                    \
    if (!own) s = &shared

void metrics_count(enum metrics_counter c)
{
    if (!on) return;
    SLOT(s, own);
    add(&s->counter[c], 1, own);
}

static int status_index(int status)
{
    for (int i = 0; i < METRICS_NSTATUS - 1; i++)
        if (STATUSES[i] == status) return i;
    return METRICS_NSTATUS - 1;
}

static int latency_index(uint64_t us)
{
    int i = 0;
    while (i < METRICS_NLATENCY - 1 && us > LATENCY_US[i])
        i++;
    return i;
}

void metrics_request(int route, int status, int64_t ns)
{
    if (!on || route < 0 || route >= METRICS_ROUTES_MAX) return;
    SLOT(s, own);
    uint64_t us = ns > 0 ? (uint64_t)ns / 1000 : 0;
    add(&s->requests[route][status_index(status)], 1, own);
    add(&s->latency[route][latency_index(us)], 1, own);
    add(&s->latency_us[route], us, own);
}

void metrics_commit(int writes, int64_t ns)
{
    if (!on) return;
    SLOT(s, own);
    uint64_t us = ns > 0 ? (uint64_t)ns / 1000 : 0;
    int b = 0;
    while (b < METRICS_NBATCH - 1 && (uint64_t)writes > BATCH[b])
        b++;
    add(&s->batch_writes[b], 1, own);
    add(&s->batch_writes_sum, (uint64_t)writes, own);
    add(&s->batch_latency[latency_index(us)], 1, own);
    add(&s->batch_us, us, own);
}

int metrics_status(int index)
{
    return index < METRICS_NSTATUS - 1 ? STATUSES[index] : 0;
}

uint64_t metrics_latency_bound_us(int index)
{
    return index < METRICS_NLATENCY - 1 ? LATENCY_US[index] : 0;
}

uint64_t metrics_batch_bound(int index)
{
    return index < METRICS_NBATCH - 1 ? BATCH[index] : 0;
}

/* Adds n counters from src to dst. */
static void sum(uint64_t *dst, counter_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] += atomic_load_explicit(&src[i], memory_order_relaxed);
}

static void sum_slot(metrics_totals_t *out, slot_t *s)
{
    sum(out->counter, s->counter, METRIC_NCOUNTERS);
    sum(&out->requests[0][0], &s->requests[0][0], METRICS_ROUTES_MAX * METRICS_NSTATUS);
    sum(&out->latency[0][0], &s->latency[0][0], METRICS_ROUTES_MAX * METRICS_NLATENCY);
    sum(out->latency_us, s->latency_us, METRICS_ROUTES_MAX);
    sum(out->batch_writes, s->batch_writes, METRICS_NBATCH);
    sum(&out->batch_writes_sum, &s->batch_writes_sum, 1);
    sum(out->batch_latency, s->batch_latency, METRICS_NLATENCY);
    sum(&out->batch_us, &s->batch_us, 1);
}

void metrics_sum(metrics_totals_t *out)
{
    memset(out, 0, sizeof *out);
    sum_slot(out, &shared);
    int n = atomic_load(&nslots);
    for (int i = 0; i < n && i < SLOTS_MAX; i++) {
        slot_t *s = atomic_load(&slots[i]);
        if (s != NULL) sum_slot(out, s);
    }
}
