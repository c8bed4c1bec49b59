/*
 * sender.c: delivering webhook events (see sender.h; the outbox's
 * contract is store/webhook.h).
 *
 * One thread per process runs a loop around libcurl's multi interface:
 *
 *   claim   lease webhooks whose oldest event is due (store_outbox_claim):
 *           each becomes a lane; at most LANES_MAX at once
 *   fetch   a lane with no event in memory reads the oldest events of its
 *           queue (store_outbox_queue, a read), passing over those it sent
 *           whose outcomes are not reported yet; a lane that finds none
 *           for LANE_IDLE_MS is given back. The writer's pokes make idle
 *           lanes look at once, so a leased webhook's new events go out
 *           without a write to the database.
 *   send    a lane sends its oldest event, one at a time: a POST with the
 *           signature headers, no redirects, 10 s at most, the answer
 *           read and dropped past 64 KiB, the peer's address checked
 *           after resolution on every new connection
 *   report  the outcomes, up to REPORT_DELAY_MS' worth at once, in one
 *           transaction (store_outbox_report), which also renews the
 *           leases held and gives back those let go: few write
 *           transactions, whatever the rate of deliveries
 *
 * Order. A lane sends its next event only once the one before succeeded
 * or was given up; an attempt that failed but will be retried ends the
 * lane (its lease is given back with the retry's time), and the webhook is
 * claimed again when that time comes. A lane always reads from the head
 * of its queue, so an event recorded by another process's transaction
 * that committed late is sent next, not passed over. Events sent but not
 * yet reported when the process dies are sent again by whoever takes the
 * webhook over: at least once, in order.
 *
 * Leases last LEASE_MS and are renewed at every report (at least every
 * RENEW_MS). A lane starts a transfer only with LEASE_LEFT_MIN_MS of lease
 * left, more than a transfer can take, so two processes never send for
 * one webhook at once, even when this one cannot reach the database.
 *
 * Sections:
 *   state            configuration, lanes, outcomes
 *   lanes            claiming, fetching, dropping
 *   transfers        an attempt's request, its end, its outcome
 *   reports          outcomes and leases to the store
 *   the loop         stepping lanes, waiting, stopping
 */
#include "webhook/sender.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "model/event.h"
#include "model/timestamp.h"
#include "model/uuid.h"
#include "store/webhook.h"
#include "webhook/sign.h"
#include "webhook/target.h"

/* --- state ------------------------------------------------------------------ */

#define LANES_MAX 256               /* webhooks worked on at once: transfers in flight at most */
#define PREFETCH 64                 /* events a lane reads ahead... */
#define PREFETCH_BYTES (256 * 1024) /* ...and at most this many bytes of them beyond the first */
#define SENT_MAX 256                /* a lane's sent events waiting to be reported; then it waits */
#define LANE_IDLE_MS 2000           /* a lane with nothing to send is given back after this */
#define IDLE_FETCH_MS 100           /* an idle lane looks for new events this often (and when poked) */
#define CLAIM_MIN_MS 20             /* pokes claim at most this often */
#define CLAIM_BATCH 4               /* webhooks one claim takes at most, so that processes share them */
#define LEASE_MS 30000              /* a lease's length */
#define RENEW_MS 2000               /* leases held are renewed at least this often */
#define LEASE_LEFT_MIN_MS 15000     /* a transfer starts only with this much lease left */
#define CLAIM_EVERY_MS 500          /* due work is looked for at least this often */
#define REPORT_DELAY_MS 50          /* outcomes wait at most this long to be reported together */
#define REPORT_RETRY_MS 1000        /* after a failed report */
#define OUTCOMES_MAX 1024           /* outcomes waiting to be reported; then sending pauses */
#define TIMEOUT_MS 10000            /* a 2xx within this is a success */
#define ANSWER_MAX (64 * 1024)      /* bytes of an answer read; beyond, the transfer ends */
#define ERROR_MAX 256
#define STALE_EVERY_MS 5000 /* leases of dead processes of this machine are looked for this often */
/* The delivery logs are pruned of attempts older than --webhook-log-keep
 * at most PRUNE_BATCH rows per write, so that no write holds the database
 * for long; a full batch is followed by the next one PRUNE_AGAIN_MS
 * later, else the logs are looked at again PRUNE_EVERY_MS later. */
#define PRUNE_BATCH 500
#define PRUNE_AGAIN_MS 200
#define PRUNE_EVERY_MS 60000
#define OWNER_MAX 128

typedef struct queued {
    int64_t seq;
    char event_id[UUID_BUFSZ];
    int type;
    char *payload;
    size_t len;
    int attempts;
    int64_t first_at, next_at;
} queued_t;

typedef struct lane {
    char id[UUID_BUFSZ];
    char *url, *secret;
    queued_t q[PREFETCH]; /* its next events: q[head..n) */
    int head, n;
    size_t bytes; /* of the events read ahead */
    int64_t lease_until;
    int64_t sent[SENT_MAX]; /* the seqs of its outcomes waiting to be reported */
    int nsent;
    int64_t idle_since; /* its queue was found empty since then; 0: it is not idle */
    int64_t next_fetch; /* an idle lane looks again then */
    bool release;       /* give its lease back at the next report, then drop it */
    bool held;          /* the last report renewed its lease */
    bool lost;          /* the last report did not: drop it once idle */
    /* The attempt in flight. */
    CURL *easy;
    bool busy;
    struct curl_slist *headers;
    char attempt_id[UUID_BUFSZ];
    int64_t started_at;
    struct timespec t0;
    size_t got;
    bool too_big;
    char refused[WEBHOOK_ADDR_TEXT_MAX];
    char curl_error[CURL_ERROR_SIZE];
} lane_t;

typedef struct outcome {
    char webhook_id[UUID_BUFSZ];
    int64_t seq, first_at;
    bool ok;
    delivery_t d;
    char error[ERROR_MAX];
} outcome_t;

static struct {
    webhook_sender_conf_t conf;
    store_t *store;
    CURLM *multi;
    STACK_OF(X509) * ca; /* --webhook-ca-file's certificates */
    pthread_t thread;
    bool running;
    atomic_bool stop, poked;
    char owner[OWNER_MAX]; /* this process's name on its leases (see set_owner) */
    size_t host_len;       /* its part naming this machine's boot and process namespace */
    lane_t *lanes[LANES_MAX];
    int nlanes;
    /* Room for a transfer in flight on every lane beyond the pause. */
    outcome_t outcomes[OUTCOMES_MAX + LANES_MAX];
    int noutcomes;
    int64_t first_outcome, last_report, report_retry_at, next_claim, last_claim, next_stale, next_prune;
    bool want_report, store_failing;
} S;

/* One line to stderr, written at once. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

/* --- lanes ------------------------------------------------------------------- */

static lane_t *find_lane(const char *id)
{
    for (int i = 0; i < S.nlanes; i++)
        if (strcmp(S.lanes[i]->id, id) == 0) return S.lanes[i];
    return NULL;
}

static void pop(lane_t *l)
{
    free(l->q[l->head].payload);
    l->q[l->head].payload = NULL;
    if (++l->head == l->n) l->head = l->n = 0;
}

static void lane_free(lane_t *l)
{
    while (l->head < l->n)
        pop(l);
    if (l->busy) curl_multi_remove_handle(S.multi, l->easy);
    curl_easy_cleanup(l->easy);
    curl_slist_free_all(l->headers);
    free(l->url);
    free(l->secret);
    free(l);
}

/* A lane's url, from a claim or a renewal (a PUT may have changed it). */
static bool set_url(lane_t *l, const char *url)
{
    if (l->url != NULL && strcmp(l->url, url) == 0) return true;
    char *copy = strdup(url);
    if (copy == NULL) return false;
    free(l->url);
    l->url = copy;
    return true;
}

/* What a claim hands on_claimed, and what it counts. */
typedef struct claim_ctx {
    int64_t lease_until;
    int rows;
} claim_ctx_t;

static void on_claimed(void *ctx, const store_lane_t *sl)
{
    claim_ctx_t *cc = ctx;
    int64_t lease_until = cc->lease_until;
    cc->rows++;
    lane_t *l = find_lane(sl->id);
    if (l == NULL && S.nlanes < LANES_MAX && (l = calloc(1, sizeof *l)) != NULL) {
        snprintf(l->id, sizeof l->id, "%s", sl->id);
        l->secret = strdup(sl->secret);
        if (l->secret == NULL || !set_url(l, sl->url)) {
            /* Out of memory: the lease runs out and it is claimed again. */
            lane_free(l);
            return;
        }
        S.lanes[S.nlanes++] = l;
    }
    if (l != NULL) l->lease_until = lease_until;
}

static void claim(int64_t now)
{
    S.last_claim = now;
    S.next_claim = now + CLAIM_EVERY_MS;
    if (S.nlanes >= LANES_MAX) return;
    claim_ctx_t cc = {.lease_until = now + LEASE_MS};
    int max = LANES_MAX - S.nlanes < CLAIM_BATCH ? LANES_MAX - S.nlanes : CLAIM_BATCH;
    store_rc_t rc = store_outbox_claim(S.store, S.owner, now, cc.lease_until, max, on_claimed, &cc);
    if (rc != STORE_OK && !S.store_failing) say("crmd: webhooks: cannot look for events to send (database)");
    S.store_failing = rc != STORE_OK;
    /* A full batch: more webhooks may be due. They are claimed again soon,
     * not in CLAIM_EVERY_MS, so that one app's many backlogged webhooks,
     * claimed CLAIM_BATCH at a time, do not keep another app's webhook
     * waiting behind them (each then sends one event at a time). */
    if (rc == STORE_OK && cc.rows == max) S.next_claim = now + CLAIM_MIN_MS;
}

static bool was_sent(const lane_t *l, int64_t seq)
{
    for (int i = 0; i < l->nsent; i++)
        if (l->sent[i] == seq) return true;
    return false;
}

static void on_queued(void *ctx, const store_queued_t *e)
{
    lane_t *l = ctx;
    /* Events recorded after a change of the URL go to the new one. */
    if (!e->active || !set_url(l, e->url)) l->release = true;
    if (l->n == PREFETCH || l->release || was_sent(l, e->seq)) return;
    if (l->n > 0 && l->bytes + e->len > PREFETCH_BYTES) return;
    queued_t *q = &l->q[l->n];
    q->payload = malloc(e->len + 1);
    if (q->payload == NULL) return;
    memcpy(q->payload, e->payload, e->len);
    q->payload[e->len] = '\0';
    q->len = e->len;
    q->seq = e->seq;
    memcpy(q->event_id, e->event_id, sizeof q->event_id);
    q->type = e->type;
    q->attempts = e->attempts;
    q->first_at = e->first_at;
    q->next_at = e->next_at;
    l->bytes += e->len;
    l->n++;
}

/* Reads the lane's next events from the head of its queue, past those sent
 * but not reported; a lane idle for LANE_IDLE_MS is given back. */
static void fetch(lane_t *l, int64_t now)
{
    l->bytes = 0;
    if (store_outbox_queue(S.store, l->id, PREFETCH + l->nsent, on_queued, l) != STORE_OK) {
        l->release = true; /* claimed again later */
        return;
    }
    if (l->n > 0) {
        l->idle_since = 0;
        return;
    }
    if (l->idle_since == 0) l->idle_since = now;
    if (now - l->idle_since >= LANE_IDLE_MS) l->release = true;
    l->next_fetch = now + IDLE_FETCH_MS;
}

/* Reads the first line of file into out (outsz bytes); "" when it cannot. */
static void first_line(const char *file, char *out, size_t outsz)
{
    out[0] = '\0';
    FILE *f = fopen(file, "r");
    if (f == NULL) return;
    if (fgets(out, (int)outsz, f) == NULL) out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
}

/* This process's name on its leases: "BOOT/PIDNS/PID/RANDOM". The kernel's
 * boot id and the process namespace say which processes a pid names; the
 * random part that no other process (or this pid reused) shares it. */
static int set_owner(char *err, size_t errsz)
{
    char boot[64], ns[64] = "";
    first_line("/proc/sys/kernel/random/boot_id", boot, sizeof boot);
    ssize_t n = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
    ns[n > 0 ? n : 0] = '\0';
    /* From the kernel, not RAND_bytes: OpenSSL's generator, set up at its
     * first use, cost a server's start-up a millisecond or two; the first
     * id made (uuid.c) sets it up instead. */
    unsigned char rnd[6];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        snprintf(err, errsz, "webhook sender: no randomness is available");
        return -1;
    }
    int len = snprintf(S.owner, sizeof S.owner, "%s/%s/", boot[0] ? boot : "-", ns[0] ? ns : "-");
    S.host_len = boot[0] && ns[0] ? (size_t)len : 0; /* unknown: never judge others */
    snprintf(S.owner + len, sizeof S.owner - (size_t)len, "%ld/%02x%02x%02x%02x%02x%02x", (long)getpid(),
             rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    return 0;
}

/* A lease owner of this machine and namespace whose process is gone: its
 * leases need not run out (a restart takes its webhooks over at once). */
static void on_owner(void *ctx, const char *owner)
{
    (void)ctx;
    if (S.host_len == 0 || strcmp(owner, S.owner) == 0 || strncmp(owner, S.owner, S.host_len) != 0) return;
    char *end;
    long pid = strtol(owner + S.host_len, &end, 10);
    if (pid <= 0 || *end != '/' || (pid != getpid() && (kill((pid_t)pid, 0) == 0 || errno != ESRCH))) return;
    if (store_outbox_release_owner(S.store, owner) == STORE_OK)
        say("crmd: webhooks: took over the webhooks of process %ld, which is gone", pid);
}

static void prune(int64_t now)
{
    int deleted = 0;
    int64_t every = S.conf.log_keep_ms < PRUNE_EVERY_MS ? S.conf.log_keep_ms : PRUNE_EVERY_MS;
    store_rc_t rc = store_outbox_prune(S.store, now - S.conf.log_keep_ms, PRUNE_BATCH, &deleted);
    S.next_prune = now + (rc == STORE_OK && deleted == PRUNE_BATCH ? PRUNE_AGAIN_MS : every);
}

static void release_stale(int64_t now)
{
    S.next_stale = now + STALE_EVERY_MS;
    if (S.host_len > 0) store_outbox_owners(S.store, on_owner, NULL);
}

/* --- transfers ------------------------------------------------------------------ */

static size_t on_answer(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    lane_t *l = arg;
    l->got += size * n;
    if (l->got <= ANSWER_MAX) return size * n;
    l->too_big = true;
    return 0; /* ends the transfer */
}

static long port_of(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

/* Every new connection's address, after resolution: refused ones never
 * get a socket. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)purpose;
    lane_t *l = arg;
    if (!webhook_private_allowed() &&
        (webhook_addr_refused(&a->addr) || webhook_port_refused(port_of(&a->addr)))) {
        webhook_addr_text(&a->addr, l->refused);
        /* The address goes to the operator only: the receiver's owner may
         * not learn what a name resolves to inside the server's network. */
        say("crmd: webhooks: webhook %s: refused to connect to %s port %ld", l->id, l->refused,
            port_of(&a->addr));
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static CURLcode add_cas(CURL *easy, void *ssl_ctx, void *arg)
{
    (void)easy;
    (void)arg;
    X509_STORE *st = SSL_CTX_get_cert_store(ssl_ctx);
    for (int i = 0; i < sk_X509_num(S.ca); i++)
        X509_STORE_add_cert(st, sk_X509_value(S.ca, i)); /* one it holds already is fine */
    return CURLE_OK;
}

/* The options every attempt of a lane shares. */
static CURL *new_easy(lane_t *l)
{
    CURL *h = curl_easy_init();
    if (h == NULL) return NULL;
    curl_easy_setopt(h, CURLOPT_PRIVATE, l);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROXY, ""); /* never through a proxy of the environment */
    /* A transfer that times out while its name is still being looked up
     * would otherwise wait, on this one sender thread, for the resolver's
     * thread to finish (up to the resolver's own timeouts: 30 s with three
     * silent name servers), holding up every other webhook meanwhile;
     * with this libcurl leaves that thread to end by itself. */
    curl_easy_setopt(h, CURLOPT_QUICK_EXIT, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_answer);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, l);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, l);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, l->curl_error);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "crmd-webhooks/1");
    if (S.ca != NULL) curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, add_cas);
    return h;
}

/* The attempt's headers: its type, its id, its signature. */
static bool set_headers(lane_t *l, const queued_t *e)
{
    char sig[WEBHOOK_SIGNATURE_MAX], line[160];
    if (webhook_sign(l->secret, strlen(l->secret), l->started_at / 1000, e->payload, e->len, sig) != 0)
        return false;
    curl_slist_free_all(l->headers);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    /* No "Expect: 100-continue" round trip before the body. */
    if (h != NULL) h = curl_slist_append(h, "Expect:");
    snprintf(line, sizeof line, "Crmd-Event: %s", event_name(e->type));
    if (h != NULL) h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "Crmd-Delivery: %s", l->attempt_id);
    if (h != NULL) h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "Crmd-Signature: %s", sig);
    if (h != NULL) h = curl_slist_append(h, line);
    l->headers = h;
    return h != NULL;
}

/* Starts the attempt of the lane's oldest event. */
static void send_head(lane_t *l, int64_t now)
{
    const queued_t *e = &l->q[l->head];
    if (l->easy == NULL && (l->easy = new_easy(l)) == NULL) return;
    l->started_at = now;
    clock_gettime(CLOCK_MONOTONIC, &l->t0);
    l->got = 0;
    l->too_big = false;
    l->refused[0] = l->curl_error[0] = '\0';
    if (uuid_v7(now, l->attempt_id) != 0 || !set_headers(l, e)) return;
    curl_easy_setopt(l->easy, CURLOPT_URL, l->url);
    curl_easy_setopt(l->easy, CURLOPT_HTTPHEADER, l->headers);
    curl_easy_setopt(l->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)e->len);
    curl_easy_setopt(l->easy, CURLOPT_POSTFIELDS, e->payload);
    if (curl_multi_add_handle(S.multi, l->easy) == CURLM_OK) l->busy = true;
}

/* Why an attempt failed, into out; false when it succeeded. */
static bool failure(const lane_t *l, CURLcode cc, long status, char *out, size_t outsz)
{
    bool answered = status >= 200 && status < 300;
    if ((cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && l->too_big)) && answered) return false;
    if (l->refused[0] != '\0')
        snprintf(out, outsz, "refused: %s", WEBHOOK_REFUSED_TEXT);
    else if (cc == CURLE_OPERATION_TIMEDOUT)
        snprintf(out, outsz, "no answer within %d s", TIMEOUT_MS / 1000);
    else if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && l->too_big))
        snprintf(out, outsz, "%s", l->curl_error[0] != '\0' ? l->curl_error : curl_easy_strerror(cc));
    else if (status >= 300 && status < 400)
        snprintf(out, outsz, "the receiver answered %ld (redirects are not followed)", status);
    else
        snprintf(out, outsz, "the receiver answered %ld", status);
    return true;
}

/* A transfer ended: its outcome is kept for the next report. */
static void finished(lane_t *l, CURLcode cc)
{
    curl_multi_remove_handle(S.multi, l->easy);
    l->busy = false;
    long status = 0;
    curl_easy_getinfo(l->easy, CURLINFO_RESPONSE_CODE, &status);
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    queued_t *e = &l->q[l->head];
    outcome_t *o = &S.outcomes[S.noutcomes];
    memset(o, 0, sizeof *o);
    if (S.noutcomes++ == 0) S.first_outcome = ts_now_ms();
    l->sent[l->nsent++] = e->seq;
    memcpy(o->webhook_id, l->id, sizeof o->webhook_id);
    o->seq = e->seq;
    o->first_at = e->first_at != 0 ? e->first_at : l->started_at;
    o->ok = !failure(l, cc, status, o->error, sizeof o->error);
    delivery_t *d = &o->d;
    memcpy(d->id, l->attempt_id, sizeof d->id);
    memcpy(d->event_id, e->event_id, sizeof d->event_id);
    d->type = e->type;
    d->attempt = e->attempts + 1;
    d->status_code = status >= 100 && status <= 599 ? (int)status : 0;
    d->duration_ms = (t1.tv_sec - l->t0.tv_sec) * 1000 + (t1.tv_nsec - l->t0.tv_nsec) / 1000000;
    d->created_at = l->started_at;
    if (!o->ok) {
        d->error = (text_ref_t){o->error, strlen(o->error)};
        d->next_retry_at = webhook_next_attempt(&S.conf.schedule, d->attempt, o->first_at, ts_now_ms());
    }
    if (o->ok || d->next_retry_at == 0) {
        pop(l);
        return;
    }
    /* Tried again later: the lane ends, and the webhook is claimed again
     * when the retry is due. */
    e->attempts = d->attempt;
    e->first_at = o->first_at;
    e->next_at = d->next_retry_at;
    l->release = true;
}

static void collect(void)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(S.multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) continue;
        lane_t *l = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&l);
        if (l != NULL) finished(l, m->data.result);
    }
}

/* --- reports ------------------------------------------------------------------ */

static void on_held(void *ctx, const store_lane_t *sl)
{
    int64_t lease_until = *(const int64_t *)ctx;
    lane_t *l = find_lane(sl->id);
    if (l == NULL) return;
    l->held = true;
    l->lease_until = lease_until;
    set_url(l, sl->url);
}

static void on_disabled(void *ctx, const char *webhook_id)
{
    (void)ctx;
    say("crmd: webhooks: webhook %s is now inactive: every delivery failed for %lld s", webhook_id,
        (long long)(S.conf.disable_after_ms / 1000));
}

/* Drops the lanes the report let go of, or no longer holds, unless a
 * transfer is still running (its outcome goes into the next report). */
static void drop_lanes(void)
{
    int kept = 0;
    for (int i = 0; i < S.nlanes; i++) {
        lane_t *l = S.lanes[i];
        l->nsent = 0;
        if (!l->held) l->lost = true;
        if ((l->release || l->lost) && !l->busy)
            lane_free(l);
        else
            S.lanes[kept++] = l;
    }
    S.nlanes = kept;
}

static void report(int64_t now)
{
    static store_outcome_t outcomes[OUTCOMES_MAX + LANES_MAX];
    const char *release[LANES_MAX];
    size_t nrelease = 0;
    for (int i = 0; i < S.noutcomes; i++)
        outcomes[i] = (store_outcome_t){.webhook_id = S.outcomes[i].webhook_id,
                                        .seq = S.outcomes[i].seq,
                                        .attempt = &S.outcomes[i].d,
                                        .first_at = S.outcomes[i].first_at,
                                        .ok = S.outcomes[i].ok};
    for (int i = 0; i < S.nlanes; i++) {
        S.lanes[i]->held = false;
        if (S.lanes[i]->release && !S.lanes[i]->busy) release[nrelease++] = S.lanes[i]->id;
    }
    int64_t until = now + LEASE_MS;
    store_report_t r = {.outcomes = outcomes,
                        .n = (size_t)S.noutcomes,
                        .release = release,
                        .nrelease = nrelease,
                        .owner = S.owner,
                        .now = now,
                        .lease_until = until,
                        .disable_after_ms = S.conf.disable_after_ms,
                        .held = on_held,
                        .disabled = on_disabled,
                        .ctx = &until};
    S.want_report = false;
    if (store_outbox_report(S.store, &r) != STORE_OK) {
        if (!S.store_failing) say("crmd: webhooks: cannot record deliveries (database); trying again");
        S.store_failing = true;
        S.report_retry_at = now + REPORT_RETRY_MS;
        for (int i = 0; i < S.nlanes; i++)
            S.lanes[i]->held = true; /* nothing is known to have changed */
        return;
    }
    S.store_failing = false;
    S.noutcomes = 0;
    S.last_report = now;
    drop_lanes();
    /* A lane given back may have received events meanwhile. */
    if (nrelease > 0) S.next_claim = now;
}

static bool report_due(int64_t now)
{
    if (now < S.report_retry_at) return false;
    if (S.noutcomes > 0 &&
        (S.want_report || S.noutcomes >= OUTCOMES_MAX / 2 || now - S.first_outcome >= REPORT_DELAY_MS))
        return true;
    for (int i = 0; i < S.nlanes; i++)
        if ((S.lanes[i]->release || S.lanes[i]->lost) && !S.lanes[i]->busy) return true;
    return S.nlanes > 0 && now - S.last_report >= RENEW_MS;
}

/* --- the loop --------------------------------------------------------------------- */

/* Moves a lane on: reads its events, starts its next transfer, or lets
 * it go. */
static void step(lane_t *l, int64_t now)
{
    if (l->busy || l->release || l->lost) return;
    if (l->nsent == SENT_MAX) {
        S.want_report = true; /* its sent events must be reported first */
        return;
    }
    if (l->head == l->n) {
        if (now < l->next_fetch) return;
        fetch(l, now);
        if (l->head == l->n) return;
    }
    if (l->q[l->head].next_at > now) {
        l->release = true; /* not due: claimed again when it is */
        return;
    }
    if (l->lease_until - now < LEASE_LEFT_MIN_MS) {
        S.want_report = true; /* renew first */
        return;
    }
    if (S.noutcomes < OUTCOMES_MAX) send_head(l, now);
}

/* Events were committed: idle lanes look at once, and new webhooks are
 * claimed (at most every CLAIM_MIN_MS). */
static void poked(int64_t now)
{
    for (int i = 0; i < S.nlanes; i++)
        S.lanes[i]->next_fetch = 0;
    if (now - S.last_claim >= CLAIM_MIN_MS)
        claim(now);
    else if (S.next_claim > S.last_claim + CLAIM_MIN_MS)
        S.next_claim = S.last_claim + CLAIM_MIN_MS;
}

/* Whether the lane waits only for the time to look for new events. */
static bool fetch_pending(const lane_t *l)
{
    return !l->busy && !l->release && !l->lost && l->head == l->n && l->nsent < SENT_MAX;
}

/* How long the loop may wait for the network: until the next claim, the
 * next report, or an idle lane's next look. */
static long wait_ms(int64_t now)
{
    int64_t until = S.next_claim < S.next_prune ? S.next_claim : S.next_prune;
    for (int i = 0; i < S.nlanes; i++)
        if (fetch_pending(S.lanes[i]) && S.lanes[i]->next_fetch < until) until = S.lanes[i]->next_fetch;
    int64_t report = INT64_MAX;
    if (S.noutcomes > 0) report = S.want_report ? now : S.first_outcome + REPORT_DELAY_MS;
    if (S.nlanes > 0 && S.last_report + RENEW_MS < report) report = S.last_report + RENEW_MS;
    if (report < S.report_retry_at) report = S.report_retry_at;
    if (report < until) until = report;
    return until <= now ? 0 : (long)(until - now);
}

/* Ends every transfer, reports what is known and gives every lease back. */
static void shut_down(void)
{
    for (int i = 0; i < S.nlanes; i++) {
        lane_t *l = S.lanes[i];
        if (l->busy) curl_multi_remove_handle(S.multi, l->easy);
        l->busy = false;
        l->release = true;
    }
    report(ts_now_ms());
    for (int i = 0; i < S.nlanes; i++)
        lane_free(S.lanes[i]);
    S.nlanes = 0;
}

static void *sender_main(void *arg)
{
    (void)arg;
    int running;
    while (!atomic_load(&S.stop)) {
        curl_multi_perform(S.multi, &running);
        collect();
        int64_t now = ts_now_ms();
        if (now >= S.next_stale) release_stale(now);
        if (now >= S.next_prune) prune(now);
        if (atomic_exchange(&S.poked, false)) poked(now);
        if (now >= S.next_claim) claim(now);
        for (int i = 0; i < S.nlanes; i++)
            step(S.lanes[i], now);
        if (report_due(now)) report(now);
        long ms = wait_ms(ts_now_ms());
        if (ms > 0 && !atomic_load(&S.poked)) curl_multi_poll(S.multi, NULL, 0, (int)ms, NULL);
    }
    shut_down();
    return NULL;
}

/* Reads the PEM certificates of file into S.ca; -1 when it holds none. */
static int load_cas(const char *file, char *err, size_t errsz)
{
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        snprintf(err, errsz, "cannot read --webhook-ca-file %s", file);
        return -1;
    }
    S.ca = sk_X509_new_null();
    X509 *x;
    while (S.ca != NULL && (x = PEM_read_X509(f, NULL, jwt_pem_no_pass_phrase, NULL)) != NULL)
        if (sk_X509_push(S.ca, x) == 0) X509_free(x);
    fclose(f);
    if (S.ca != NULL && sk_X509_num(S.ca) > 0) return 0;
    snprintf(err, errsz, "--webhook-ca-file %s holds no PEM certificate", file);
    sk_X509_pop_free(S.ca, X509_free);
    S.ca = NULL;
    return -1;
}

int webhook_sender_start(const webhook_sender_conf_t *conf, char *err, size_t errsz)
{
    S.conf = *conf;
    if (conf->ca_file != NULL && load_cas(conf->ca_file, err, errsz) != 0) return -1;
    if (set_owner(err, errsz) != 0) return -1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char why[STORE_OPEN_ERR_MAX];
    if ((S.store = store_open(conf->db_url, why, sizeof why)) == NULL ||
        (S.multi = curl_multi_init()) == NULL) {
        snprintf(err, errsz, "webhook sender: %s", S.store == NULL ? why : "out of memory");
        store_close(S.store);
        return -1;
    }
    curl_multi_setopt(S.multi, CURLMOPT_MAXCONNECTS, (long)LANES_MAX);
    atomic_store(&S.stop, false);
    if (pthread_create(&S.thread, NULL, sender_main, NULL) != 0) {
        snprintf(err, errsz, "webhook sender: cannot start its thread");
        curl_multi_cleanup(S.multi);
        store_close(S.store);
        return -1;
    }
    S.running = true;
    return 0;
}

void webhook_sender_stop(void)
{
    if (!S.running) return;
    atomic_store(&S.stop, true);
    curl_multi_wakeup(S.multi);
    pthread_join(S.thread, NULL);
    S.running = false;
    curl_multi_cleanup(S.multi);
    store_close(S.store);
    sk_X509_pop_free(S.ca, X509_free);
    S.ca = NULL;
}

void webhook_sender_poke(void)
{
    if (!S.running) return;
    atomic_store(&S.poked, true);
    curl_multi_wakeup(S.multi);
}
