/*
 * text.c: UTF-8 validation, trimming and the control-character rule.
 *
 * The whole input is validated first, so malformed UTF-8 is TEXT_BAD_UTF8
 * even inside the white space that trimming would drop; a bad byte sequence
 * is never something a client may smuggle through. Only then are the ends
 * trimmed and the control-character rule applied to what is left.
 */
#include "model/text.h"

#include <assert.h>
#include <stdint.h>

#include "model/casefold.h"

/* Decodes one well-formed UTF-8 sequence at s[i..len) per Unicode table 3-7
 * (no overlongs, no surrogates, nothing above U+10FFFF). Returns its length
 * in bytes and the code point in *cp, or 0 if the bytes are malformed or the
 * sequence is cut off by len. Never reads at or past s[len]. */
static size_t utf8_decode(const unsigned char *s, size_t len, size_t i, uint32_t *cp)
{
    assert(i < len);
    unsigned char b0 = s[i];
    size_t n;
    uint32_t c;
    /* The allowed range of the second byte narrows for E0, ED, F0 and F4;
     * that is what excludes overlongs, surrogates and values past U+10FFFF. */
    unsigned char lo = 0x80, hi = 0xBF;

    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
        n = 2;
        c = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        n = 3;
        c = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        n = 4;
        c = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        /* 80..C1 (stray continuation or overlong lead) and F5..FF. */
        return 0;
    }

    if (len - i < n) return 0;
    for (size_t k = 1; k < n; k++) {
        unsigned char b = s[i + k];
        if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
        c = (c << 6) | (b & 0x3F);
    }
    assert(c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF));
    *cp = c;
    return n;
}

static bool is_white_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

static bool is_control(uint32_t c)
{
    return c <= 0x1F || (c >= 0x7F && c <= 0x9F);
}

int text_clean(const char *s, size_t len, bool allow_newlines, const char **out, size_t *out_len,
               size_t *codepoints)
{
    assert(out != NULL && out_len != NULL && codepoints != NULL);
    assert(s != NULL || len == 0);
    const unsigned char *u = (const unsigned char *)s;

    /* Outputs are defined on every path: an empty span on error. */
    *out = s;
    *out_len = 0;
    *codepoints = 0;

    /* One pass validates everything and finds the trimmed span: start is
     * the first byte of the first non-white-space code point, end is one
     * past the last one, and count_at_end the code points up to end counted
     * from start. */
    size_t start = len, end = len, count = 0, count_at_end = 0;
    bool found = false;
    for (size_t i = 0; i < len;) {
        /* ASCII needs no decoding: most text is ASCII, and the call for
         * each byte was a tenth of a CSV import's decoding. */
        uint32_t c = u[i];
        size_t n = 1;
        if (c >= 0x80 && (n = utf8_decode(u, len, i, &c)) == 0) return TEXT_BAD_UTF8;
        if (found) count++;
        if (!is_white_space(c)) {
            if (!found) {
                found = true;
                start = i;
                count = 1;
            }
            end = i + n;
            count_at_end = count;
        }
        i += n;
    }
    if (!found) {
        /* All white space (or empty): the span is empty and clean. */
        return TEXT_OK;
    }

    /* The span is known to be valid UTF-8 now, so decoding cannot fail. */
    for (size_t i = start; i < end;) {
        uint32_t c = u[i];
        size_t n = c < 0x80 ? 1 : utf8_decode(u, end, i, &c);
        assert(n > 0);
        if (is_control(c) && !(allow_newlines && (c == '\n' || c == '\r' || c == '\t'))) return TEXT_CONTROL;
        i += n;
    }

    *out = s + start;
    *out_len = end - start;
    *codepoints = count_at_end;
    return TEXT_OK;
}

uint32_t text_fold_cp(uint32_t c)
{
    if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
    size_t lo = 0, hi = sizeof CASEFOLD / sizeof CASEFOLD[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (CASEFOLD[mid][0] == c) return CASEFOLD[mid][1];
        if (CASEFOLD[mid][0] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return c;
}

/* Writes code point c as UTF-8 into out; returns its length. */
bool text_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    uint32_t c;
    for (size_t i = 0; i < len;) {
        /* ASCII runs are the common case: skip them a byte at a time
         * without decoding. */
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_decode(u, len, i, &c);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

size_t text_utf8_encode(uint32_t c, char out[4])
{
    static const unsigned char lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
    size_t n = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    for (size_t i = n - 1; i > 0; i--) {
        out[i] = (char)(0x80 | (c & 0x3F));
        c >>= 6;
    }
    out[0] = (char)(lead[n] | c);
    return n;
}

size_t text_fold(const char *s, size_t len, char *out, size_t outsz)
{
    assert(s != NULL || len == 0);
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        size_t n = utf8_decode(u, len, i, &c);
        if (n == 0) {
            /* Not ours to judge here: the byte goes through unchanged. */
            if (o == outsz) return (size_t)-1;
            out[o++] = s[i++];
            continue;
        }
        char buf[4];
        size_t m = text_utf8_encode(text_fold_cp(c), buf);
        if (outsz - o < m) return (size_t)-1;
        for (size_t k = 0; k < m; k++)
            out[o++] = buf[k];
        i += n;
    }
    return o;
}
