/*
 * keypoll.c: a server's key set (see keyring.h): crmd's signing and
 * verifying keys from the database, plus an identity provider's keys from
 * a file or a URL, published as read-only snapshots that a poller thread
 * replaces when anything changes.
 *
 * Snapshots are counted by references: the keyring holds one on the
 * newest, and each server thread holds one on the snapshot it verifies
 * with until it sees a newer generation. The poller never blocks a server
 * thread longer than a pointer swap under the mutex.
 *
 * A provider's URL or file is read on a thread of its own (the fetcher),
 * which hands each new text to the poller: a provider that hangs (up to
 * FETCH_TIMEOUT_S a fetch, or a file on a mount that stopped answering)
 * never delays the database's keys, so a key retired there stops
 * verifying within POLL_MS whatever the provider does.
 *
 * When the database or the identity provider cannot be read, the last
 * snapshot stays: keys never disappear because of an outage, and the
 * problem is said once (and its end once).
 */
#include "api/keyring.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/jwk.h"
#include "model/timestamp.h"

#define POLL_MS 1000
#define FETCH_TIMEOUT_S 10

struct keyring {
    keyring_conf_t conf;
    store_t *store;       /* the poller's own connection */
    pthread_mutex_t lock; /* guards snap, stop and the fetcher's hand-over */
    pthread_cond_t wake;  /* stop */
    keyring_snap_t *snap; /* the newest, with the keyring's reference */
    _Atomic uint64_t gen; /* snap->gen */
    pthread_t thread, fetch_thread;
    bool started, fetch_started, stop;
    _Atomic bool halt; /* stop, read by a fetch in progress to end it */
    /* The fetcher's hand-over: the last text fetched, until the poller
     * takes it, or why the last fetch failed. */
    char *fetched;
    bool fetch_failing;
    char fetch_err[256];
    /* The fetcher's own state (keyring_open's before it starts): the
     * provider's file as last read. */
    bool file_read;
    struct timespec file_mtime;
    off_t file_size;
    /* The poller's own state. */
    char *fingerprint; /* the own keys' seqs and states of snap */
    char *ext;         /* the last good JWK Set text of the provider */
    bool ext_refused;  /* the last text read or fetched was not usable */
    bool db_failing, ext_failing;
};

static void say(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "crmd: keys: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
}

/* --- the identity provider's keys ---------------------------------------------- */

typedef struct body {
    char *text;
    size_t len;
    bool too_big;
} body_t;

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    body_t *b = ctx;
    size_t add = size * n;
    if (b->len + add > JWK_SET_MAX) {
        b->too_big = true;
        return 0;
    }
    char *t = realloc(b->text, b->len + add + 1);
    if (t == NULL) return 0;
    memcpy(t + b->len, data, add);
    b->text = t;
    b->len += add;
    t[b->len] = '\0';
    return add;
}

/* Whether host (as libcurl's URL parser gives it) is this machine's:
 * localhost, 127.0.0.0/8 or [::1]. */
static bool loopback_host(const char *host)
{
    struct in_addr a;
    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0) return true;
    return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

int keyring_url_check(const char *url, char *err, size_t errsz)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = -1;
    if (u == NULL) {
        snprintf(err, errsz, "out of memory");
    } else if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
               curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
               curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(err, errsz, "not a URL");
    } else if (strcmp(scheme, "https") == 0 || (strcmp(scheme, "http") == 0 && loopback_host(host))) {
        rc = 0;
    } else {
        snprintf(err, errsz, "https only, or http to this machine");
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

void keyring_url_shown(const char *url, char *out, size_t outsz)
{
    CURLU *u = curl_url();
    char *pw = NULL, *shown = NULL;
    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_PASSWORD, "***", 0) == CURLUE_OK)
        curl_url_get(u, CURLUPART_URL, &shown, 0);
    /* No password (or no URL libcurl reads): url is shown as it is. */
    snprintf(out, outsz, "%s", shown != NULL ? shown : pw == NULL ? url : "(a URL with a password)");
    curl_free(pw);
    curl_free(shown);
    curl_url_cleanup(u);
}

/* Ends a fetch in progress once the keyring stops. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return atomic_load(&((keyring_t *)ctx)->halt) ? 1 : 0;
}

/* GETs url (https, or http to this machine: keyring_url_check; no
 * redirects, no proxy, 10 s at most, less when k stops) into *text. */
static int fetch_url(keyring_t *k, const char *url, char **text, char *err, size_t errsz)
{
    body_t b = {0};
    CURL *h = curl_easy_init();
    if (h == NULL) return snprintf(err, errsz, "cannot start an HTTP client"), -1;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    /* The keys sign tokens for every app: no proxy of the environment's
     * stands between crmd and the provider. */
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)FETCH_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, k);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    if (cc == CURLE_OK && b.text != NULL) {
        *text = b.text;
        return 0;
    }
    snprintf(err, errsz, "%s", b.too_big ? "the key set is over 256 KiB" : curl_easy_strerror(cc));
    free(b.text);
    return -1;
}

/* Reads the file path into *text when it changed since the last read (1),
 * or not (0); -1 with the reason in err. */
static int read_file(keyring_t *k, const char *path, char **text, char *err, size_t errsz)
{
    struct stat st;
    /* Not blocked by a FIFO's open, which waits for a writer: it is then
     * refused as no regular file. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > JWK_SET_MAX) {
        snprintf(err, errsz, "%s", fd < 0 ? strerror(errno) : "not a regular file of at most 256 KiB");
        if (fd >= 0) close(fd);
        return -1;
    }
    if (k->file_read && st.st_mtim.tv_sec == k->file_mtime.tv_sec &&
        st.st_mtim.tv_nsec == k->file_mtime.tv_nsec && st.st_size == k->file_size) {
        close(fd);
        return 0;
    }
    char *t = malloc((size_t)st.st_size + 1);
    ssize_t n = t != NULL ? read(fd, t, (size_t)st.st_size) : -1;
    close(fd);
    if (n != st.st_size) {
        free(t);
        snprintf(err, errsz, "cannot read it whole");
        return -1;
    }
    t[n] = '\0';
    *text = t;
    k->file_read = true;
    k->file_mtime = st.st_mtim;
    k->file_size = st.st_size;
    return 1;
}

/* Whether text is a usable JWK Set (reason in err when not). */
static bool usable(const char *text, char *err, size_t errsz)
{
    jwt_keyset_t *set = jwt_keyset_new();
    char notes[512];
    bool ok = set != NULL && jwk_set_parse(text, strlen(text), set, err, errsz, notes, sizeof notes) > 0;
    if (ok && notes[0] != '\0') say("the identity provider's %s%s", "keys skipped: ", notes);
    jwt_keyset_unref(set);
    return ok;
}

/* Reads the provider's file or URL: a new text (1, *text), the file
 * unchanged (0), or a failure (-1, reason in err). */
static int read_provider(keyring_t *k, char **text, char *err, size_t errsz)
{
    if (k->conf.jwks_file != NULL) return read_file(k, k->conf.jwks_file, text, err, errsz);
    return fetch_url(k, k->conf.jwks_url, text, err, errsz) == 0 ? 1 : -1;
}

/* The fetcher's last outcome: a new text (1, *text), none since the last
 * call (0), or a failure (-1, reason in err). Before the fetcher starts
 * (keyring_open), the provider is read here. */
static int take_fetched(keyring_t *k, char **text, char *err, size_t errsz)
{
    if (!k->fetch_started) return read_provider(k, text, err, errsz);
    pthread_mutex_lock(&k->lock);
    *text = k->fetched;
    k->fetched = NULL;
    int rc = *text != NULL ? 1 : k->fetch_failing ? -1 : 0;
    snprintf(err, errsz, "%s", k->fetch_err);
    pthread_mutex_unlock(&k->lock);
    return rc;
}

/* Reads the provider's keys again: 1 when they changed, 0 when not, -1
 * when they cannot be read or are not usable (reason in err; the old ones
 * stay). Nothing new read after a text that was not usable is still -1,
 * so that the problem's end is said only once it ended. */
static int refresh_external(keyring_t *k, char *err, size_t errsz)
{
    char *text = NULL;
    int rc = 0;
    if (k->conf.jwks_file != NULL || k->conf.jwks_url != NULL) rc = take_fetched(k, &text, err, errsz);
    if (rc == 0 && k->ext_refused) rc = -1;
    if (rc == 1) k->ext_refused = false;
    if (rc == 1 && (k->ext == NULL || strcmp(k->ext, text) != 0)) {
        if (!usable(text, err, errsz)) {
            k->ext_refused = true;
            free(text);
            return -1;
        }
        free(k->ext);
        k->ext = text;
        return 1;
    }
    free(text);
    return rc < 0 ? -1 : 0;
}

/* --- snapshots ----------------------------------------------------------------- */

static void snap_free(keyring_snap_t *s)
{
    jwt_keyset_unref(s->set);
    free(s->jwks);
    free(s);
}

void keyring_release(keyring_snap_t *s)
{
    if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1) snap_free(s);
}

keyring_snap_t *keyring_acquire(keyring_t *k)
{
    pthread_mutex_lock(&k->lock);
    keyring_snap_t *s = k->snap;
    atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&k->lock);
    return s;
}

uint64_t keyring_generation(const keyring_t *k)
{
    return atomic_load(&k->gen);
}

const jwt_rules_t *keyring_rules(const keyring_t *k)
{
    return &k->conf.rules;
}

/* Publishes set (taken over) as the newest snapshot. */
static int publish(keyring_t *k, jwt_keyset_t *set)
{
    keyring_snap_t *s = calloc(1, sizeof *s);
    if (s != NULL) s->jwks = jwk_set_render(set, &s->jwks_len);
    if (s == NULL || s->jwks == NULL) {
        free(s);
        jwt_keyset_unref(set);
        return -1;
    }
    atomic_init(&s->refs, 1);
    s->set = set;
    pthread_mutex_lock(&k->lock);
    keyring_snap_t *old = k->snap;
    s->gen = (old != NULL ? old->gen : 0) + 1;
    k->snap = s;
    atomic_store(&k->gen, s->gen);
    pthread_mutex_unlock(&k->lock);
    keyring_release(old);
    return 0;
}

/* The seqs and states of l's keys that verify, as text. */
static char *fingerprint_of(const keyring_list_t *l)
{
    size_t cap = 32 * l->n + 1, o = 0;
    char *f = malloc(cap);
    if (f == NULL) return NULL;
    f[0] = '\0';
    for (size_t i = 0; i < l->n; i++)
        o += (size_t)snprintf(f + o, cap - o, "%lld:%d,", (long long)l->v[i].seq, (int)l->v[i].state);
    return f;
}

/* Whether the database's keys or their states differ from the last
 * snapshot's, read without parsing a key. */
static bool own_keys_changed(keyring_t *k, store_t *s, int64_t now_s, bool *changed)
{
    keyring_list_t l;
    if (keyring_read(s, now_s, KEYRING_STATES, &l) != STORE_OK) return false;
    char *f = fingerprint_of(&l);
    keyring_list_free(&l);
    *changed = f == NULL || k->fingerprint == NULL || strcmp(f, k->fingerprint) != 0;
    free(f);
    return true;
}

/* Builds and publishes a snapshot of l's verifying keys and the
 * provider's. */
static int rebuild(keyring_t *k, keyring_list_t *l, char *err, size_t errsz)
{
    char *f = fingerprint_of(l);
    if (f == NULL) return snprintf(err, errsz, "out of memory"), -1;
    jwt_keyset_t *set = jwt_keyset_new();
    bool ok = set != NULL;
    for (size_t i = 0; ok && i < l->n; i++) {
        if (l->v[i].key == NULL) continue;
        ok = jwt_keyset_add(set, l->v[i].key) == JWT_OK;
        l->v[i].key = NULL; /* the set owns it now */
    }
    /* The provider's keys were found usable when read; one whose kid
     * crmd's keys took is skipped. */
    char notes[512], why[256];
    if (ok && k->ext != NULL)
        jwk_set_parse(k->ext, strlen(k->ext), set, why, sizeof why, notes, sizeof notes);
    if (!ok || publish(k, set) != 0) {
        if (!ok) jwt_keyset_unref(set);
        free(f);
        if (err[0] == '\0') snprintf(err, errsz, "cannot build the key set");
        return -1;
    }
    free(k->fingerprint);
    k->fingerprint = f;
    return 0;
}

/* One poll: the database's keys and the provider's. */
static int poll_once(keyring_t *k, store_t *s, char *err, size_t errsz)
{
    int64_t now_ms = ts_now_ms();
    char why[256] = "";
    int ext = refresh_external(k, why, sizeof why);
    if (ext < 0 && !k->ext_failing)
        say("cannot read the identity provider's keys (%s%s); keeping the last", why, "");
    if (ext >= 0 && k->ext_failing) say("the identity provider's keys are read again%s%s", "", "");
    k->ext_failing = ext < 0;
    bool changed = false;
    keyring_list_t l;
    if (!own_keys_changed(k, s, now_ms / 1000, &changed) ||
        ((changed || ext > 0) && keyring_read(s, now_ms / 1000, KEYRING_LOAD, &l) != STORE_OK)) {
        snprintf(err, errsz, "cannot read the signing keys from the database");
        return -1;
    }
    if (!changed && ext <= 0) return 0;
    err[0] = '\0';
    int r = rebuild(k, &l, err, errsz);
    keyring_list_free(&l);
    return r;
}

/* --- the poller ---------------------------------------------------------------- */

/* Waits ms on k->wake; false once the keyring stops. Called and returns
 * with k->lock held. */
static bool wait_unless_stopped(keyring_t *k, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    until.tv_sec += until.tv_nsec / 1000000000;
    until.tv_nsec %= 1000000000;
    while (!k->stop && pthread_cond_timedwait(&k->wake, &k->lock, &until) == 0) {
    }
    return !k->stop;
}

static void *poller(void *arg)
{
    keyring_t *k = arg;
    char err[256];
    pthread_mutex_lock(&k->lock);
    while (wait_unless_stopped(k, POLL_MS)) {
        pthread_mutex_unlock(&k->lock);
        int rc = poll_once(k, k->store, err, sizeof err);
        if (rc != 0 && !k->db_failing) say("%s%s; keeping the last keys", err, "");
        if (rc == 0 && k->db_failing) say("the signing keys are read again%s%s", "", "");
        k->db_failing = rc != 0;
        pthread_mutex_lock(&k->lock);
    }
    pthread_mutex_unlock(&k->lock);
    return NULL;
}

/* Reads the provider's file every POLL_MS, or fetches its URL every
 * --jwks-refresh seconds, and hands each outcome to the poller
 * (take_fetched); a text the poller has not taken yet is replaced by the
 * newer one. */
static void *fetcher(void *arg)
{
    keyring_t *k = arg;
    char err[sizeof k->fetch_err];
    int64_t every_ms = k->conf.jwks_file != NULL ? POLL_MS : (int64_t)k->conf.refresh_s * 1000;
    pthread_mutex_lock(&k->lock);
    while (wait_unless_stopped(k, every_ms)) {
        pthread_mutex_unlock(&k->lock);
        char *text = NULL;
        int rc = read_provider(k, &text, err, sizeof err);
        pthread_mutex_lock(&k->lock);
        k->fetch_failing = rc < 0;
        if (rc > 0) {
            free(k->fetched);
            k->fetched = text;
        } else if (rc < 0) {
            snprintf(k->fetch_err, sizeof k->fetch_err, "%s", err);
        }
    }
    pthread_mutex_unlock(&k->lock);
    return NULL;
}

static keyring_t *keyring_new(void)
{
    keyring_t *k = calloc(1, sizeof *k);
    if (k == NULL) return NULL;
    pthread_mutex_init(&k->lock, NULL);
    pthread_cond_init(&k->wake, NULL);
    return k;
}

/* Reads crmd's own keys from s into l, loaded, with a signing key among
 * them: keyring_signing_key makes one only when none is there, or says
 * why the stored one cannot sign. Each key is parsed once on the way: the
 * first RSA key OpenSSL parses costs a few milliseconds of a server's
 * start-up, and each one after it about one (a signing key was parsed a
 * second time here before). */
static int read_own_keys(store_t *s, keyring_list_t *l, char *err, size_t errsz)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (keyring_read(s, ts_now_ms() / 1000, KEYRING_LOAD, l) != STORE_OK) {
            snprintf(err, errsz, "cannot read the signing keys from the database");
            return -1;
        }
        for (size_t i = 0; i < l->n; i++)
            if (l->v[i].state == KEY_SIGNING && l->v[i].key != NULL) return 0;
        keyring_list_free(l);
        if (attempt > 0) break;
        int64_t seq;
        jwt_key_t *signer = keyring_signing_key(s, &seq, err, errsz);
        if (signer == NULL) return -1;
        jwt_key_free(signer);
    }
    snprintf(err, errsz, "no signing key");
    return -1;
}

keyring_t *keyring_open(const keyring_conf_t *conf, store_t *s, char *err, size_t errsz)
{
    keyring_t *k = keyring_new();
    if (k == NULL) return snprintf(err, errsz, "out of memory"), NULL;
    k->conf = *conf;
    if (k->conf.jwks_url != NULL) curl_global_init(CURL_GLOBAL_DEFAULT);
    char why[256] = "";
    keyring_list_t l;
    int rc = read_own_keys(s, &l, err, errsz);
    if (rc == 0 && refresh_external(k, why, sizeof why) < 0) {
        char shown[512];
        keyring_url_shown(conf->jwks_file != NULL ? conf->jwks_file : conf->jwks_url, shown, sizeof shown);
        snprintf(err, errsz, "cannot read the identity provider's keys from %s: %s",
                 conf->jwks_file != NULL ? conf->jwks_file : shown, why);
        keyring_list_free(&l);
        rc = -1;
    }
    if (rc == 0) {
        err[0] = '\0';
        rc = rebuild(k, &l, err, errsz);
        keyring_list_free(&l);
    }
    if (rc != 0) {
        keyring_free(k);
        return NULL;
    }
    return k;
}

int keyring_start(keyring_t *k, store_t *s)
{
    /* The poller's connection: the one keyring_open read from, rather than
     * another opened (and its schema read) on the server's start-up path. */
    k->store = s;
    /* The fetcher first: the poller reads fetch_started, set before the
     * poller's thread is made. */
    if (k->conf.jwks_url != NULL || k->conf.jwks_file != NULL) {
        if (pthread_create(&k->fetch_thread, NULL, fetcher, k) != 0) {
            fprintf(stderr, "crmd: keys: cannot start the identity provider's fetcher\n");
            return -1;
        }
        k->fetch_started = true;
    }
    if (pthread_create(&k->thread, NULL, poller, k) != 0) {
        fprintf(stderr, "crmd: keys: cannot start the key poller\n");
        return -1;
    }
    k->started = true;
    return 0;
}

void keyring_free(keyring_t *k)
{
    if (k == NULL) return;
    if (k->started || k->fetch_started) {
        pthread_mutex_lock(&k->lock);
        k->stop = true;
        atomic_store(&k->halt, true);
        pthread_cond_broadcast(&k->wake);
        pthread_mutex_unlock(&k->lock);
        if (k->started) pthread_join(k->thread, NULL);
        if (k->fetch_started) pthread_join(k->fetch_thread, NULL);
    }
    store_close(k->store);
    keyring_release(k->snap);
    free(k->fingerprint);
    free(k->ext);
    free(k->fetched);
    pthread_cond_destroy(&k->wake);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

keyring_t *keyring_of_key(jwt_key_t *key)
{
    if (key == NULL) return NULL;
    keyring_t *k = keyring_new();
    jwt_keyset_t *set = jwt_keyset_new();
    if (k == NULL || set == NULL) {
        jwt_key_free(key);
        jwt_keyset_unref(set);
        keyring_free(k);
        return NULL;
    }
    /* The set owns key from here on (also when adding fails), and
     * publish the set. */
    if (jwt_keyset_add(set, key) != JWT_OK) {
        jwt_keyset_unref(set);
        keyring_free(k);
        return NULL;
    }
    if (publish(k, set) != 0) {
        keyring_free(k);
        return NULL;
    }
    k->conf.rules.app_claim = "app";
    return k;
}
