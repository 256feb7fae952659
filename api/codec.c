/*
 * codec.c - the byte codecs of the HTTP surface: percent-decoding of path
 * segments and query values (RFC 3986), standard base64 and base64url
 * (RFC 4648 sections 4 and 5), UTF-8 validation, and the JSON form of bytes
 * ("value" when valid UTF-8, "value_base64" otherwise), and the entity tags
 * of If-Match and If-None-Match (RFC 9110 section 8.8.3).
 *
 * Decoders are strict: anything that is not exactly the encoding is
 * -CELLAR_EINVAL. They see network bytes and are written to be fuzzed.
 * Pure functions, any thread.
 */
#include <string.h>

#include "api/internal.h"

int api_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int api_pct_decode(const char *in, size_t len, char *out, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] != '%') {
            out[o++] = in[i];
            continue;
        }
        if (len - i < 3)
            return -CELLAR_EINVAL;
        int hi = api_hex_value(in[i + 1]), lo = api_hex_value(in[i + 2]);
        if (hi < 0 || lo < 0)
            return -CELLAR_EINVAL;
        out[o++] = (char)((hi << 4) | lo);
        i += 2;
    }
    *out_len = o;
    return 0;
}

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t api_base64_encoded_len(size_t len)
{
    return (len + 2) / 3 * 4;
}

size_t api_base64_encode(const void *in, size_t len, char *out, bool url)
{
    const uint8_t *p = in;
    const char *alpha = url ? b64_url : b64_std;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
        out[o++] = alpha[(v >> 18) & 63];
        out[o++] = alpha[(v >> 12) & 63];
        out[o++] = alpha[(v >> 6) & 63];
        out[o++] = alpha[v & 63];
    }
    size_t rest = len - i;
    if (rest) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (rest == 2)
            v |= (uint32_t)p[i + 1] << 8;
        out[o++] = alpha[(v >> 18) & 63];
        out[o++] = alpha[(v >> 12) & 63];
        if (rest == 2)
            out[o++] = alpha[(v >> 6) & 63];
        if (!url) {
            if (rest == 1)
                out[o++] = '=';
            out[o++] = '=';
        }
    }
    return o;
}

static int b64val(char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

/* Standard base64 must be padded to a multiple of 4; base64url must not be
 * padded. Unused low bits of the last symbol must be zero (canonical). */
int api_base64_decode(const char *in, size_t len, char *out, size_t *out_len, bool url)
{
    size_t pad = 0;
    if (!url) {
        if (len % 4 != 0)
            return -CELLAR_EINVAL;
        if (len >= 1 && in[len - 1] == '=')
            pad++;
        if (pad && len >= 2 && in[len - 2] == '=')
            pad++;
        len -= pad;
        if ((pad == 1 && len % 4 != 3) || (pad == 2 && len % 4 != 2))
            return -CELLAR_EINVAL;
    } else if (len % 4 == 1) {
        return -CELLAR_EINVAL;
    }
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val(in[i], url);
        if (v < 0)
            return -CELLAR_EINVAL;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    if (bits >= 6 || (acc & ((1u << bits) - 1)) != 0)
        return -CELLAR_EINVAL;
    *out_len = o;
    return 0;
}

bool api_utf8_valid(const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates, beyond Unicode. */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += n + 1;
    }
    return true;
}

void api_json_set_bytes(json_t *obj, const char *name, const void *data, size_t len,
                        bool force_base64)
{
    /* jansson strings hold NUL bytes, but JSON texts with \u0000 trip up
     * many clients; send NUL-carrying bytes as base64. */
    if (!force_base64 && api_utf8_valid(data, len) && !memchr(data, 0, len)) {
        json_object_set_new(obj, name, json_stringn(data, len));
        return;
    }
    size_t n = api_base64_encoded_len(len);
    char *tmp = cellar_xmalloc(n + 1);
    n = api_base64_encode(data, len, tmp, false);
    char key[64];
    snprintf(key, sizeof(key), "%s_base64", name);
    json_object_set_new(obj, key, json_stringn(tmp, n));
    free(tmp);
}

/* --- Direct JSON text (hot pages), the same text jansson would write ---- */

void api_jw_string(struct cellar_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    cellar_buf_reserve(b, len + 2);
    b->data[b->len++] = '"';
    size_t run = 0; /* bytes copied as they are, pending */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        cellar_buf_append(b, s + i - run, run);
        run = 0;
        char esc[6] = {'\\', 0};
        size_t n = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
            break;
        }
        cellar_buf_append(b, esc, n);
    }
    cellar_buf_append(b, s + len - run, run);
    cellar_buf_append_byte(b, '"');
}

void api_jw_bytes(struct cellar_buf *b, const char *name, const void *data, size_t len,
                  bool force_base64)
{
    size_t nlen = strlen(name);
    cellar_buf_append_byte(b, '"');
    cellar_buf_append(b, name, nlen);
    if (!force_base64 && api_utf8_valid(data, len) && !memchr(data, 0, len)) {
        cellar_buf_append(b, "\":", 2);
        api_jw_string(b, data, len);
        return;
    }
    cellar_buf_append(b, "_base64\":\"", 10);
    size_t n = api_base64_encoded_len(len);
    cellar_buf_reserve(b, n + 1);
    b->len += api_base64_encode(data, len, b->data + b->len, false);
    cellar_buf_append_byte(b, '"');
}

void api_jw_u64(struct cellar_buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    cellar_buf_append(b, tmp + i, sizeof(tmp) - i);
}

/* --- Entity tags --------------------------------------------------------- */

/* A canonical decimal uint64: 1..20 digits, no leading zero but "0" itself,
 * no overflow. The only spelling of a version, so ETag comparison stays the
 * character-by-character one of RFC 9110. */
static bool parse_version(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* etagc of RFC 9110: "!", "#".."~" and obs-text. */
static bool is_etagc(char c)
{
    uint8_t u = (uint8_t)c;
    return u == 0x21 || (u >= 0x23 && u <= 0x7e) || u >= 0x80;
}

int api_etag_next(const char *s, size_t len, size_t *pos, struct api_etag *tag)
{
    size_t i = *pos;
    /* Whitespace and empty list elements ("a, , b") are skipped. */
    while (i < len && (is_ows(s[i]) || s[i] == ','))
        i++;
    if (i == len) {
        *pos = i;
        return 0;
    }
    bool weak = false;
    if (len - i >= 2 && s[i] == 'W' && s[i + 1] == '/') {
        weak = true;
        i += 2;
    }
    if (i == len || s[i] != '"')
        return -CELLAR_EINVAL;
    size_t open = ++i;
    while (i < len && s[i] != '"') {
        if (!is_etagc(s[i]))
            return -CELLAR_EINVAL;
        i++;
    }
    if (i == len)
        return -CELLAR_EINVAL; /* unterminated */
    size_t close = i++;
    /* Only whitespace, then a comma or the end, may follow a tag. */
    while (i < len && is_ows(s[i]))
        i++;
    if (i < len) {
        if (s[i] != ',')
            return -CELLAR_EINVAL;
        i++;
    }
    tag->weak = weak;
    tag->version = 0;
    tag->ours = parse_version(s + open, close - open, &tag->version);
    *pos = i;
    return 1;
}

size_t api_etag_format(uint64_t version, char *out)
{
    return (size_t)snprintf(out, API_ETAG_MAX, "\"%llu\"", (unsigned long long)version);
}
