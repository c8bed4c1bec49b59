/*
 * b64url.c: base64url without padding (see b64url.h).
 */
#include "auth/b64url.h"

#include <stdint.h>

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The length of the unpadded base64url text for n bytes. */
size_t b64url_encoded_len(size_t n)
{
    static const size_t tail[3] = {0, 2, 3};
    return n / 3 * 4 + tail[n % 3];
}

/* Encodes in[0..n) into out, which must hold b64url_encoded_len(n) bytes; no
 * NUL is written. Returns the number of bytes written. */
size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
    }
    return o;
}

/* The 6-bit value of one base64url character, or -1 for anything else,
 * including '=' padding and the '+' and '/' of plain base64. */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Strictly decodes in[0..len) into out, which holds cap bytes. Rejects
 * characters outside the url alphabet, lengths no encoder produces
 * (len % 4 == 1) and non-zero unused trailing bits, so each byte string has
 * exactly one accepted encoding. Returns false on any of those. */
bool b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *out_len)
{
    if (len % 4 == 1) return false;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need > cap) return false;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0) return false;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* The bits left over (2 or 4) are padding an encoder sets to zero. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return false;
    *out_len = o;
    return true;
}
