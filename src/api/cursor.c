/*
 * cursor.c: see cursor.h.
 */
#include "api/cursor.h"

#include <string.h>

#include <openssl/crypto.h>

#include "api/etag.h"
#include "auth/jwt.h"
#include "model/uuid.h"

#define VERSION 1
#define MAC_BYTES 16
/* The payload before base64url: its version, keys, MAC. */
#define RAW_MAX (API_CURSOR_MAX / 4 * 3)

enum tag { TAG_NULL, TAG_INT, TAG_TEXT, TAG_UUID };

/* Whether a list's keys are enum store_lead_key's (else store_follow_key's). */
static bool by_lead_keys(int kind)
{
    return kind == CURSOR_LEADS || kind == CURSOR_TRASH || kind == CURSOR_HISTORY;
}

/* What the values of a key are. */
static enum tag tag_of(int kind, int key)
{
    if (by_lead_keys(kind)) return key == LEAD_KEY_ID ? TAG_UUID : key == LEAD_KEY_NAME ? TAG_TEXT : TAG_INT;
    return key == FOLLOW_KEY_ID ? TAG_UUID : TAG_INT;
}

static bool nullable(int kind, int key)
{
    if (by_lead_keys(kind)) return key == LEAD_KEY_VALUE || key == LEAD_KEY_PROBABILITY;
    return key == FOLLOW_KEY_DUE;
}

/* The MAC of raw[0..len) under b. */
static bool mac_of(const api_cursor_bind_t *b, const unsigned char *raw, size_t len,
                   unsigned char out[MAC_BYTES])
{
    unsigned char msg[RAW_MAX + 128];
    size_t m = 0;
    static const char label[] = "crmd cursor";
    memcpy(msg, label, sizeof label);
    m += sizeof label;
    msg[m++] = (unsigned char)b->kind;
    for (int i = 7; i >= 0; i--)
        msg[m++] = (unsigned char)((uint64_t)b->app >> (8 * i));
    size_t ln = strlen(b->lead);
    if (ln > UUID_STRLEN || m + ln + 1 + API_CURSOR_DIGEST + len > sizeof msg) return false;
    memcpy(msg + m, b->lead, ln);
    m += ln;
    msg[m++] = 0;
    memcpy(msg + m, b->digest, API_CURSOR_DIGEST);
    m += API_CURSOR_DIGEST;
    memcpy(msg + m, raw, len);
    m += len;
    unsigned char full[32];
    if (!api_hmac_sha256(b->secret, JWT_SECRET_BYTES, msg, m, full)) return false;
    memcpy(out, full, MAC_BYTES);
    return true;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v =
            (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = B64[v >> 18 & 63];
        out[o++] = B64[v >> 12 & 63];
        if (i + 1 < n) out[o++] = B64[v >> 6 & 63];
        if (i + 2 < n) out[o++] = B64[v & 63];
    }
    return o;
}

/* Decodes unpadded base64url; false on any other character or length. */
static bool b64_decode(const char *in, size_t n, unsigned char *out, size_t *outlen)
{
    if (n % 4 == 1) return false;
    size_t o = 0;
    uint32_t v = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = memchr(B64, in[i], 64);
        if (p == NULL || in[i] == '\0') return false;
        v = v << 6 | (uint32_t)(p - B64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(v >> bits);
        }
    }
    /* The bits left over must be zero: one string per cursor. */
    if ((v & ((1u << bits) - 1)) != 0) return false;
    *outlen = o;
    return true;
}

size_t api_cursor_encode(const api_cursor_bind_t *b, const store_sort_t *order, int n, const store_pos_t *pos,
                         char *out, size_t cap)
{
    unsigned char raw[RAW_MAX];
    size_t r = 0;
    raw[r++] = VERSION;
    for (int i = 0; i < n && i < pos->n; i++) {
        const store_val_t *v = &pos->v[i];
        enum tag t = v->null ? TAG_NULL : tag_of(b->kind, order[i].key);
        if (r + 3 + (t == TAG_TEXT ? v->t.len : 16) + MAC_BYTES > sizeof raw) return 0;
        raw[r++] = (unsigned char)t;
        if (t == TAG_INT) {
            for (int k = 7; k >= 0; k--)
                raw[r++] = (unsigned char)((uint64_t)v->i >> (8 * k));
        } else if (t == TAG_TEXT) {
            raw[r++] = (unsigned char)(v->t.len >> 8);
            raw[r++] = (unsigned char)v->t.len;
            memcpy(raw + r, v->t.ptr, v->t.len);
            r += v->t.len;
        } else if (t == TAG_UUID) {
            if (v->t.len != UUID_STRLEN || !uuid_to_bytes(v->t.ptr, v->t.len, raw + r)) return 0;
            r += UUID_BYTES;
        }
    }
    if (!mac_of(b, raw, r, raw + r)) return 0;
    r += MAC_BYTES;
    if ((r + 2) / 3 * 4 + 1 > cap) return 0;
    size_t len = b64_encode(raw, r, out);
    out[len] = '\0';
    return len;
}

/* Reads key i's value at raw[*at..end) into pos; false when malformed. */
static bool read_value(const api_cursor_bind_t *b, int key, const unsigned char *raw, size_t end, size_t *at,
                       store_pos_t *pos, size_t *used, int i)
{
    size_t a = *at;
    if (a >= end) return false;
    enum tag t = raw[a++], want = tag_of(b->kind, key);
    store_val_t *v = &pos->v[i];
    *v = (store_val_t){0};
    if (t == TAG_NULL) {
        v->null = true;
        *at = a;
        return nullable(b->kind, key);
    }
    if (t != want) return false;
    if (t == TAG_INT) {
        if (end - a < 8) return false;
        uint64_t x = 0;
        for (int k = 0; k < 8; k++)
            x = x << 8 | raw[a++];
        v->i = (int64_t)x;
    } else {
        size_t len = UUID_STRLEN;
        if (t == TAG_TEXT) {
            if (end - a < 2) return false;
            len = (size_t)raw[a] << 8 | raw[a + 1];
            a += 2;
            if (end - a < len) return false;
        } else if (end - a < UUID_BYTES) {
            return false;
        }
        if (sizeof pos->text - *used < len + 1) return false;
        char *dst = pos->text + *used;
        if (t == TAG_TEXT) {
            memcpy(dst, raw + a, len);
            a += len;
        } else {
            uuid_from_bytes(raw + a, dst);
            a += UUID_BYTES;
        }
        v->t = (text_ref_t){dst, len};
        *used += len + 1;
    }
    *at = a;
    return true;
}

bool api_cursor_decode(const api_cursor_bind_t *b, const store_sort_t *order, int n, const char *text,
                       size_t len, store_pos_t *pos)
{
    unsigned char raw[RAW_MAX], mac[MAC_BYTES];
    size_t r = 0;
    if (len == 0 || len > API_CURSOR_MAX || !b64_decode(text, len, raw, &r) || r < 1 + MAC_BYTES)
        return false;
    size_t end = r - MAC_BYTES;
    if (!mac_of(b, raw, end, mac) || CRYPTO_memcmp(mac, raw + end, MAC_BYTES) != 0) return false;
    if (raw[0] != VERSION) return false;
    size_t at = 1, used = 0;
    pos->n = n;
    for (int i = 0; i < n; i++)
        if (!read_value(b, order[i].key, raw, end, &at, pos, &used, i)) return false;
    return at == end;
}
