/*
 * tls.c: see tls.h.
 */
#include "http/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "auth/jwt.h"
#include "h2o.h"

/* TLS 1.2: ephemeral key exchange, AEAD ciphers only. TLS 1.3's suites are
 * all AEAD. */
#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

static const h2o_iovec_t ALPN_H2[] = {{H2O_STRLIT("h2")}, {H2O_STRLIT("http/1.1")}, {NULL, 0}};
static const h2o_iovec_t ALPN_H1[] = {{H2O_STRLIT("http/1.1")}, {NULL, 0}};

static struct {
    pthread_mutex_t mu;
    SSL_CTX *ctx; /* the current one; NULL: HTTPS off */
    char cert[4096], key[4096];
    bool http2;
    atomic_bool on; /* set by the first init, before serving */
} T = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* OpenSSL's last error as text into err (after what). */
static int fail(char *err, size_t errsz, const char *what)
{
    char reason[256] = "";
    unsigned long e = ERR_get_error();
    if (e != 0) ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    snprintf(err, errsz, "%s%s%s", what, reason[0] ? ": " : "", reason);
    return -1;
}

/* Opens path (what: "the key", "the certificate") for reading without
 * blocking on the open: a FIFO, or a device, would hold the thread that
 * waits for the stop signals, at start-up or on a reload (SIGHUP), and
 * nothing but SIGKILL could stop crmd. Only a regular file is taken.
 * Returns the descriptor (the caller closes it), or -1 with err set. */
static int open_regular(const char *path, const char *what, struct stat *st, char *err, size_t errsz)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errsz, "cannot open %s %s: %s", what, path, strerror(errno));
        return -1;
    }
    if (fstat(fd, st) != 0) {
        snprintf(err, errsz, "cannot stat %s %s: %s", what, path, strerror(errno));
    } else if (!S_ISREG(st->st_mode)) {
        snprintf(err, errsz, "%s %s is not a regular file", what, path);
    } else {
        return fd;
    }
    close(fd);
    return -1;
}

/* Reads the private key from path, refusing a file group or others may
 * read or write (checked on the open file, so it is the file read). */
static EVP_PKEY *read_key(const char *path, char *err, size_t errsz)
{
    struct stat st;
    int fd = open_regular(path, "the key", &st, err, errsz);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        snprintf(err, errsz, "cannot read the key %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    EVP_PKEY *key = NULL;
    if ((st.st_mode & 077) != 0) {
        snprintf(err, errsz, "the key %s is open to group or others (mode %04o): chmod 600 it", path,
                 (unsigned)(st.st_mode & 07777));
    } else if ((key = PEM_read_PrivateKey(f, NULL, jwt_pem_no_pass_phrase, NULL)) == NULL) {
        fail(err, errsz, "the key is not a PEM private key without a pass phrase");
    }
    fclose(f);
    return key;
}

/* Puts the certificate chain of path (PEM: the server's certificate
 * first, then the certificates that sign it) into ctx, read from the
 * regular file that open_regular checked (OpenSSL's own
 * SSL_CTX_use_certificate_chain_file opens the path again, after the
 * check). False with the reason in err. */
static bool use_chain(SSL_CTX *ctx, const char *path, char *err, size_t errsz)
{
    struct stat st;
    int fd = open_regular(path, "the certificate", &st, err, errsz);
    if (fd < 0) return false;
    BIO *bio = BIO_new_fd(fd, BIO_CLOSE);
    if (bio == NULL) {
        close(fd);
        fail(err, errsz, "cannot read the certificate");
        return false;
    }
    X509 *leaf = PEM_read_bio_X509_AUX(bio, NULL, jwt_pem_no_pass_phrase, NULL);
    bool ok = leaf != NULL && SSL_CTX_use_certificate(ctx, leaf) == 1 && SSL_CTX_clear_chain_certs(ctx) == 1;
    X509_free(leaf);
    while (ok) {
        X509 *ca = PEM_read_bio_X509(bio, NULL, jwt_pem_no_pass_phrase, NULL);
        if (ca == NULL) {
            /* The end of the file reads as "no start line"; anything else
             * is a certificate that does not parse. */
            unsigned long e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
                ERR_clear_error();
            else
                ok = false;
            break;
        }
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
            X509_free(ca);
            ok = false;
        }
    }
    BIO_free(bio);
    if (!ok) {
        char what[4200];
        snprintf(what, sizeof what, "cannot read the certificate %s", path);
        fail(err, errsz, what);
    }
    return ok;
}

/* A new context from T's files; NULL with the reason in err. */
static SSL_CTX *make(char *err, size_t errsz)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) return fail(err, errsz, "cannot make a TLS context"), NULL;
    SSL_CTX_set_default_passwd_cb(ctx, jwt_pem_no_pass_phrase); /* the certificate's file too */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx,
                        SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* h2o 2.2 takes any write while it reads as a renegotiation and
     * closes the connection; TLS 1.3 tickets are sent after the handshake,
     * so none are sent (sessions are not resumed: a full handshake each
     * connection). */
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    EVP_PKEY *key = NULL;
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1) {
        fail(err, errsz, "cannot set the ciphers");
    } else if (!use_chain(ctx, T.cert, err, errsz)) {
        /* err says why */
    } else if ((key = read_key(T.key, err, errsz)) == NULL) {
        /* err says why */
    } else if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        fail(err, errsz, "the key does not match the certificate");
    } else {
        EVP_PKEY_free(key);
        h2o_ssl_register_alpn_protocols(ctx, T.http2 ? ALPN_H2 : ALPN_H1);
        return ctx;
    }
    EVP_PKEY_free(key);
    SSL_CTX_free(ctx);
    return NULL;
}

static int install(char *err, size_t errsz);

int http_tls_init(const char *cert, const char *key, bool http2, char *err, size_t errsz)
{
    if (strlen(cert) >= sizeof T.cert || strlen(key) >= sizeof T.key) {
        snprintf(err, errsz, "a file name is too long");
        return -1;
    }
    snprintf(T.cert, sizeof T.cert, "%s", cert);
    snprintf(T.key, sizeof T.key, "%s", key);
    T.http2 = http2;
    return install(err, errsz);
}

/* Makes a context from T's files and makes it the current one. */
static int install(char *err, size_t errsz)
{
    SSL_CTX *ctx = make(err, errsz);
    if (ctx == NULL) return -1;
    pthread_mutex_lock(&T.mu);
    SSL_CTX *old = T.ctx;
    T.ctx = ctx;
    pthread_mutex_unlock(&T.mu);
    SSL_CTX_free(old);
    atomic_store(&T.on, true);
    return 0;
}

bool http_tls_enabled(void)
{
    return atomic_load(&T.on);
}

int http_tls_reload(char *err, size_t errsz)
{
    if (!http_tls_enabled()) {
        snprintf(err, errsz, "HTTPS is off");
        return -1;
    }
    return install(err, errsz);
}

SSL_CTX *http_tls_context(void)
{
    if (!atomic_load(&T.on)) return NULL;
    pthread_mutex_lock(&T.mu);
    SSL_CTX *ctx = T.ctx;
    if (ctx != NULL) SSL_CTX_up_ref(ctx);
    pthread_mutex_unlock(&T.mu);
    return ctx;
}
