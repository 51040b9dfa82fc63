/*
 * HS256 JSON Web Tokens and the base64url codec they are written in.
 *
 * Verification order is part of the contract, so it is fixed here:
 *   1. shape: length bound, exactly three segments, each valid base64url
 *      (-EINVAL);
 *   2. header: JSON object whose "alg" is exactly "HS256" (-EINVAL for bad
 *      JSON, PK_EAUTH for any other alg);
 *   3. signature: HMAC-SHA256 over "header.payload", compared in constant
 *      time (PK_EAUTH);
 *   4. claims: only now is the payload parsed (-EINVAL), so attacker-chosen
 *      JSON in an unsigned payload never reaches the claim parser;
 *   5. expiry (PK_EEXPIRED), last, so a forged token is always PK_EAUTH and
 *      an expired answer leaks nothing to someone without the key.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "pickple/jwt.h"

#define PK__JWT_SIG_BYTES 32 /* SHA-256 output */
#define PK__JWT_ID_MAX ((UINT64_C(1) << 53) - 1)
#define PK__JWT_ID_DIGITS_MAX 16 /* 2^53-1 = 9007199254740991 */

/* base64url of {"alg":"HS256","typ":"JWT"}: every token we sign starts so. */
static const char pk__jwt_header_b64[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

static const char pk__b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* ---- base64url ---------------------------------------------------------- */

/* Encoded length of len bytes without padding. */
static size_t pk__b64url_encoded_len(size_t len)
{
    return len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
}

int pk_b64url_encode(const uint8_t *in, size_t len, char *out, size_t out_size)
{
    /* The result must fit an int; anything near that size is a caller bug. */
    if (len > (size_t)INT_MAX / 4 * 3 - 3)
        return -ENOSPC;
    size_t need = pk__b64url_encoded_len(len);
    if (out_size < need + 1)
        return -ENOSPC;

    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = pk__b64url_alphabet[v >> 18 & 63];
        out[o++] = pk__b64url_alphabet[v >> 12 & 63];
        out[o++] = pk__b64url_alphabet[v >> 6 & 63];
        out[o++] = pk__b64url_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = pk__b64url_alphabet[v >> 18 & 63];
        out[o++] = pk__b64url_alphabet[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = pk__b64url_alphabet[v >> 18 & 63];
        out[o++] = pk__b64url_alphabet[v >> 12 & 63];
        out[o++] = pk__b64url_alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
    return (int)o;
}

/* Value of one base64url character, or -1 for anything outside the alphabet. */
static int pk__b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int pk_b64url_decode(const char *in, size_t len, uint8_t *out, size_t out_size)
{
    /* A single leftover character carries only 6 bits: no byte ends there. */
    if (len % 4 == 1 || len > (size_t)INT_MAX)
        return -EINVAL;
    size_t need = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
    if (out_size < need)
        return -ENOSPC;

    size_t o = 0, i = 0;
    for (; i + 4 <= len; i += 4) {
        int a = pk__b64url_value((unsigned char)in[i]), b = pk__b64url_value((unsigned char)in[i + 1]);
        int c = pk__b64url_value((unsigned char)in[i + 2]), d = pk__b64url_value((unsigned char)in[i + 3]);
        if ((a | b | c | d) < 0)
            return -EINVAL;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    size_t rest = len - i;
    if (rest > 0) {
        int a = pk__b64url_value((unsigned char)in[i]), b = pk__b64url_value((unsigned char)in[i + 1]);
        int c = rest == 3 ? pk__b64url_value((unsigned char)in[i + 2]) : 0;
        if ((a | b | c) < 0)
            return -EINVAL;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
        /*
         * Unused low bits of the last character must be zero.  Otherwise
         * several strings decode to the same bytes, and a token whose
         * signature segment was altered in those bits would still verify.
         */
        if ((rest == 2 && (v & 0xffff)) || (rest == 3 && (v & 0xff)))
            return -EINVAL;
        out[o++] = (uint8_t)(v >> 16);
        if (rest == 3)
            out[o++] = (uint8_t)(v >> 8);
    }
    return (int)o;
}

/* ---- keys --------------------------------------------------------------- */

int pk_jwt_key_load(pk_jwt_key_t *key, const char *path)
{
    /* One byte for the optional newline and one more to notice a longer file. */
    uint8_t buf[PK_JWT_KEY_BYTES_MAX + 2];
    size_t len = 0;
    int err;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    while (len < sizeof(buf)) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err = -errno;
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len < PK_JWT_KEY_BYTES_MIN || len > PK_JWT_KEY_BYTES_MAX) {
        err = -EINVAL;
        goto fail;
    }
    memcpy(key->jk_bytes, buf, len);
    key->jk_len = len;
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return 0;

fail:
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return err;
}

int pk_jwt_key_init_file(pk_jwt_key_t *key, const char *path)
{
    uint8_t raw[PK_JWT_GENERATED_KEY_BYTES];
    char hex[PK_JWT_GENERATED_KEY_BYTES * 2 + 1]; /* digits and the newline */
    static const char digits[] = "0123456789abcdef";
    int err;

    /* O_EXCL: never overwrite a secret another process has just written. */
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return pk_jwt_key_load(key, path);
        return -errno;
    }
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        err = -EIO;
        goto fail;
    }
    for (size_t i = 0; i < sizeof(raw); i++) {
        hex[2 * i] = digits[raw[i] >> 4];
        hex[2 * i + 1] = digits[raw[i] & 15];
    }
    hex[sizeof(hex) - 1] = '\n';
    for (size_t off = 0; off < sizeof(hex);) {
        ssize_t n = write(fd, hex + off, sizeof(hex) - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err = -errno;
            goto fail;
        }
        off += (size_t)n;
    }
    /* The key must survive a crash, or every issued token dies with it. */
    if (fsync(fd) != 0) {
        err = -errno;
        goto fail;
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(hex, sizeof(hex));
    if (close(fd) != 0)
        return -errno;
    return pk_jwt_key_load(key, path);

fail:
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(hex, sizeof(hex));
    close(fd);
    /* A half-written file would be loaded as a (weak or short) key next time. */
    unlink(path);
    return err;
}

/* ---- signing ------------------------------------------------------------ */

static int pk__jwt_hmac(const pk_jwt_key_t *key, const char *data, size_t len, uint8_t sig[PK__JWT_SIG_BYTES])
{
    unsigned int sig_len = 0;
    if (HMAC(EVP_sha256(), key->jk_bytes, (int)key->jk_len, (const unsigned char *)data, len, sig, &sig_len) ==
            NULL ||
        sig_len != PK__JWT_SIG_BYTES)
        return -EIO;
    return 0;
}

int pk_jwt_sign(const pk_jwt_key_t *key, const pk_jwt_claims_t *claims, char *out, size_t out_size)
{
    char payload[192];
    char token[PK_JWT_TOKEN_BYTES_MAX + 1];
    uint8_t sig[PK__JWT_SIG_BYTES];
    int err;

    const char *role = pk_role_name(claims->jc_role);
    if (role == NULL || claims->jc_user_id < 1 || claims->jc_user_id > PK__JWT_ID_MAX)
        return -EINVAL;
    if (key->jk_len < PK_JWT_KEY_BYTES_MIN || key->jk_len > PK_JWT_KEY_BYTES_MAX)
        return -EINVAL;

    /* Fixed field order and no whitespace: signing is deterministic. */
    int plen = snprintf(payload, sizeof(payload), "{\"sub\":\"%" PRIu64 "\",\"role\":\"%s\",\"iat\":%" PRId64
                        ",\"exp\":%" PRId64 "}",
                        claims->jc_user_id, role, claims->jc_iat, claims->jc_exp);
    if (plen < 0 || (size_t)plen >= sizeof(payload))
        return -EINVAL; /* cannot happen for in-range claims */

    size_t n = sizeof(pk__jwt_header_b64) - 1;
    memcpy(token, pk__jwt_header_b64, n);
    token[n++] = '.';
    err = pk_b64url_encode((const uint8_t *)payload, (size_t)plen, token + n, sizeof(token) - n);
    if (err < 0)
        return err;
    n += (size_t)err;
    err = pk__jwt_hmac(key, token, n, sig);
    if (err < 0)
        return err;
    token[n++] = '.';
    err = pk_b64url_encode(sig, sizeof(sig), token + n, sizeof(token) - n);
    if (err < 0)
        return err;
    n += (size_t)err;

    if (out_size < n + 1)
        return -ENOSPC;
    memcpy(out, token, n + 1);
    return (int)n;
}

/* ---- verification ------------------------------------------------------- */

/*
 * Parses a canonical decimal id: 1..16 digits, no sign, no leading zero,
 * value in 1..2^53-1.  Returns 0 or -EINVAL.
 */
static int pk__jwt_parse_id(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > PK__JWT_ID_DIGITS_MAX || s[0] == '0')
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0'); /* 16 digits cannot overflow 64 bits */
    }
    if (v > PK__JWT_ID_MAX)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Returns 0 when the header asks for HS256, PK_EAUTH or -EINVAL otherwise. */
static int pk__jwt_check_header(const uint8_t *json, size_t len)
{
    int err;
    json_t *hdr = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, NULL);
    if (hdr == NULL || !json_is_object(hdr)) {
        err = -EINVAL;
        goto fail;
    }
    json_t *alg = json_object_get(hdr, "alg");
    if (!json_is_string(alg) || json_string_length(alg) != 5 || memcmp(json_string_value(alg), "HS256", 5) != 0) {
        err = PK_EAUTH;
        goto fail;
    }
    /* RFC 7515 4.1.11: a "crit" extension we do not implement must be refused. */
    if (json_object_get(hdr, "crit") != NULL) {
        err = PK_EAUTH;
        goto fail;
    }
    json_decref(hdr);
    return 0;

fail:
    json_decref(hdr); /* NULL-safe */
    return err;
}

static int pk__jwt_parse_claims(const uint8_t *json, size_t len, pk_jwt_claims_t *out)
{
    int err = -EINVAL;
    json_t *p = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, NULL);
    if (p == NULL || !json_is_object(p))
        goto fail;

    json_t *sub = json_object_get(p, "sub");
    json_t *role = json_object_get(p, "role");
    json_t *iat = json_object_get(p, "iat");
    json_t *exp = json_object_get(p, "exp");
    if (!json_is_string(sub) || !json_is_string(role) || !json_is_integer(iat) || !json_is_integer(exp))
        goto fail;

    pk_jwt_claims_t c;
    if (pk__jwt_parse_id(json_string_value(sub), json_string_length(sub), &c.jc_user_id) != 0)
        goto fail;
    if (pk_role_parse(json_string_value(role), json_string_length(role), &c.jc_role) != 0)
        goto fail;
    c.jc_iat = json_integer_value(iat);
    c.jc_exp = json_integer_value(exp);
    json_decref(p);
    *out = c;
    return 0;

fail:
    json_decref(p);
    return err;
}

int pk_jwt_verify(const pk_jwt_key_t *key, const char *token, size_t len, int64_t now_s, pk_jwt_claims_t *out)
{
    /* Each decoded segment is shorter than the token, so these always fit. */
    uint8_t header[PK_JWT_TOKEN_BYTES_MAX];
    uint8_t payload[PK_JWT_TOKEN_BYTES_MAX];
    uint8_t sig[PK_JWT_TOKEN_BYTES_MAX];
    uint8_t want[PK__JWT_SIG_BYTES];
    pk_jwt_claims_t claims;
    int err;

    if (len == 0 || len > PK_JWT_TOKEN_BYTES_MAX)
        return -EINVAL;
    const char *dot1 = memchr(token, '.', len);
    if (dot1 == NULL)
        return -EINVAL;
    const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
        return -EINVAL;
    size_t h_len = (size_t)(dot1 - token);
    size_t p_len = (size_t)(dot2 - dot1 - 1);
    size_t s_len = len - (size_t)(dot2 + 1 - token);

    int hn = pk_b64url_decode(token, h_len, header, sizeof(header));
    int pn = pk_b64url_decode(dot1 + 1, p_len, payload, sizeof(payload));
    int sn = pk_b64url_decode(dot2 + 1, s_len, sig, sizeof(sig));
    if (hn < 0 || pn < 0 || sn < 0)
        return -EINVAL;

    err = pk__jwt_check_header(header, (size_t)hn);
    if (err != 0)
        return err;

    err = pk__jwt_hmac(key, token, (size_t)(dot2 - token), want);
    if (err != 0)
        return err;
    if (sn != PK__JWT_SIG_BYTES || CRYPTO_memcmp(sig, want, sizeof(want)) != 0)
        return PK_EAUTH;

    err = pk__jwt_parse_claims(payload, (size_t)pn, &claims);
    if (err != 0)
        return err;
    if (claims.jc_exp <= now_s)
        return PK_EEXPIRED;
    *out = claims;
    return 0;
}
