/*
 * tls.h: HTTPS (--tls-cert, --tls-key).
 *
 * One server context, shared by every thread: TLS 1.2 and 1.3 only, TLS
 * 1.2 with ECDHE key exchange and AEAD ciphers only (AES-GCM,
 * ChaCha20-Poly1305), no compression, no renegotiation. The private key
 * file must not be readable by group or others (like ssh, crmd refuses
 * it). ALPN offers h2 only with --http2 (the memory guard watches HTTP/2
 * over TLS as it does cleartext HTTP/2: guard.c starts the protocol after
 * the handshake), else http/1.1 alone.
 *
 * SIGHUP re-reads both files (http_tls_reload, from the main thread): new
 * connections get the new certificate, open ones keep theirs; a reload that
 * fails keeps the old context, and says why.
 */
#ifndef CRMD_HTTP_TLS_H
#define CRMD_HTTP_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/* Loads cert (a PEM chain, the server's certificate first) and key (PEM)
 * and makes the context; http2: offer h2 by ALPN. 0, or -1 with the reason
 * in err (errsz bytes). */
int http_tls_init(const char *cert, const char *key, bool http2, char *err, size_t errsz);

/* Whether HTTPS is on (http_tls_init succeeded, before serving). */
bool http_tls_enabled(void);

/* Reads the files again; on success new connections use them. 0, or -1
 * with the reason in err, the old context kept. */
int http_tls_reload(char *err, size_t errsz);

/* The current context, with a reference the caller drops with
 * SSL_CTX_free once its connection has made its SSL object (which holds
 * one of its own). Any thread. */
SSL_CTX *http_tls_context(void);

#endif
