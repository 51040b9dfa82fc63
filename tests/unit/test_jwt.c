/*
 * Unit tests for src/auth/jwt.c: base64url, key files, signing and every
 * refusal path of pk_jwt_verify().  Plain program: prints one line per failed
 * check and a summary, exits non-zero when anything failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "check.h"
#include "pickple/jwt.h"

#define NOW 1700000000
#define TEST_KEY "0123456789abcdef0123456789abcdef"

/* Generated independently with Python's hmac/base64 for TEST_KEY and the
 * claims {sub 42, seller, iat 1700000000, exp 1700003600}. */
static const char known_token[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiI0MiIsInJvbGUiOiJzZWxsZXIiLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMzYwMH0."
    "jWSWkYOhYwsXceB4OyB7CdnADSfsBcgBzkyxUTIE5sQ";

static pk_jwt_key_t make_key(const char *s)
{
    pk_jwt_key_t k;
    memset(&k, 0, sizeof(k));
    k.jk_len = strlen(s);
    memcpy(k.jk_bytes, s, k.jk_len);
    return k;
}

/*
 * Builds b64(header).b64(payload).sig where sig is HMAC-SHA256 under key
 * (when key is non-NULL) or the literal sig_text.  Lets the tests craft
 * tokens our signer would never produce but which carry a valid signature.
 */
static void build(char *out, size_t out_size, const char *header, const char *payload, const pk_jwt_key_t *key,
                  const char *sig_text)
{
    char buf[1000];
    int n = pk_b64url_encode((const uint8_t *)header, strlen(header), buf, sizeof(buf));
    buf[n++] = '.';
    n += pk_b64url_encode((const uint8_t *)payload, strlen(payload), buf + n, sizeof(buf) - (size_t)n);
    if (key != NULL) {
        uint8_t mac[32];
        unsigned int mac_len = 0;
        HMAC(EVP_sha256(), key->jk_bytes, (int)key->jk_len, (const uint8_t *)buf, (size_t)n, mac, &mac_len);
        buf[n++] = '.';
        n += pk_b64url_encode(mac, mac_len, buf + n, sizeof(buf) - (size_t)n);
    } else {
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, ".%s", sig_text);
    }
    snprintf(out, out_size, "%s", buf);
}

static int verify_str(const pk_jwt_key_t *key, const char *token)
{
    pk_jwt_claims_t c;
    return pk_jwt_verify(key, token, strlen(token), NOW, &c);
}

/* Signs a payload with a standard header and returns pk_jwt_verify's answer. */
static int verify_payload(const pk_jwt_key_t *key, const char *payload)
{
    char tok[1024];
    build(tok, sizeof(tok), "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, key, NULL);
    return verify_str(key, tok);
}

static void test_b64url(void)
{
    static const struct {
        const char *raw, *enc;
    } vec[] = {{"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}};
    char enc[32];
    uint8_t dec[32];

    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        size_t len = strlen(vec[i].raw);
        CHECK_RC(pk_b64url_encode((const uint8_t *)vec[i].raw, len, enc, sizeof(enc)), (int)strlen(vec[i].enc));
        CHECK(strcmp(enc, vec[i].enc) == 0);
        CHECK_RC(pk_b64url_decode(vec[i].enc, strlen(vec[i].enc), dec, sizeof(dec)), (int)len);
        CHECK(memcmp(dec, vec[i].raw, len) == 0);
    }

    /* The URL-safe alphabet, not '+' and '/'. */
    const uint8_t hi[] = {0xfb, 0xff};
    CHECK_RC(pk_b64url_encode(hi, 2, enc, sizeof(enc)), 3);
    CHECK(strcmp(enc, "-_8") == 0);
    CHECK_RC(pk_b64url_decode("-_8", 3, dec, sizeof(dec)), 2);
    CHECK(dec[0] == 0xfb && dec[1] == 0xff);

    /* Every byte value survives a round trip. */
    uint8_t all[256], back[256];
    char all_enc[400];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    int n = pk_b64url_encode(all, sizeof(all), all_enc, sizeof(all_enc));
    CHECK(n == 342);
    CHECK_RC(pk_b64url_decode(all_enc, (size_t)n, back, sizeof(back)), 256);
    CHECK(memcmp(all, back, sizeof(all)) == 0);

    CHECK_RC(pk_b64url_decode("Zg==", 4, dec, sizeof(dec)), -EINVAL);  /* padding */
    CHECK_RC(pk_b64url_decode("Zm9+", 4, dec, sizeof(dec)), -EINVAL);  /* standard alphabet */
    CHECK_RC(pk_b64url_decode("Zm9/", 4, dec, sizeof(dec)), -EINVAL);
    CHECK_RC(pk_b64url_decode("Zm 9", 4, dec, sizeof(dec)), -EINVAL);  /* whitespace */
    CHECK_RC(pk_b64url_decode("Zm9vY", 5, dec, sizeof(dec)), -EINVAL); /* 1 char left over */
    CHECK_RC(pk_b64url_decode("Zh", 2, dec, sizeof(dec)), -EINVAL);    /* non-zero trailing bits */
    CHECK_RC(pk_b64url_decode("Zm9", 3, dec, sizeof(dec)), -EINVAL);
    CHECK_RC(pk_b64url_decode("Zm8\0", 4, dec, sizeof(dec)), -EINVAL); /* embedded NUL */
    CHECK_RC(pk_b64url_decode("Zm9v", 4, dec, 2), -ENOSPC);
    CHECK_RC(pk_b64url_encode((const uint8_t *)"foo", 3, enc, 4), -ENOSPC); /* no room for NUL */
    CHECK_RC(pk_b64url_encode((const uint8_t *)"foo", 3, enc, 5), 4);
}

static void test_sign_verify(void)
{
    pk_jwt_key_t key = make_key(TEST_KEY);
    pk_jwt_claims_t in = {.jc_user_id = 42, .jc_role = PK_ROLE_SELLER, .jc_iat = NOW, .jc_exp = NOW + 3600};
    pk_jwt_claims_t out;
    char tok[PK_JWT_TOKEN_BYTES_MAX + 1];

    /* Byte-identical to an independent implementation. */
    int n = pk_jwt_sign(&key, &in, tok, sizeof(tok));
    CHECK(n == (int)strlen(known_token));
    CHECK(strcmp(tok, known_token) == 0);
    CHECK(strncmp(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37) == 0);

    memset(&out, 0, sizeof(out));
    CHECK_RC(pk_jwt_verify(&key, tok, (size_t)n, NOW, &out), 0);
    CHECK(out.jc_user_id == 42 && out.jc_role == PK_ROLE_SELLER && out.jc_iat == NOW && out.jc_exp == NOW + 3600);

    /* Each role and the largest id round-trip. */
    for (int r = PK_ROLE_CUSTOMER; r <= PK_ROLE_ADMIN; r++) {
        pk_jwt_claims_t c = {.jc_user_id = (UINT64_C(1) << 53) - 1, .jc_role = (pk_role_t)r, .jc_iat = 0,
                             .jc_exp = INT64_MAX};
        n = pk_jwt_sign(&key, &c, tok, sizeof(tok));
        CHECK(n > 0);
        memset(&out, 0, sizeof(out));
        CHECK_RC(pk_jwt_verify(&key, tok, (size_t)n, NOW, &out), 0);
        CHECK(out.jc_user_id == c.jc_user_id && out.jc_role == (pk_role_t)r && out.jc_exp == INT64_MAX);
    }

    /* The worst-case token (longest numbers, longest role) fits the bound. */
    pk_jwt_claims_t big = {.jc_user_id = (UINT64_C(1) << 53) - 1, .jc_role = PK_ROLE_CUSTOMER,
                           .jc_iat = INT64_MIN, .jc_exp = INT64_MIN};
    n = pk_jwt_sign(&key, &big, tok, sizeof(tok));
    CHECK(n > 0 && n <= PK_JWT_TOKEN_BYTES_MAX);

    /* The token need not be NUL-terminated: only len bytes are read. */
    char padded[PK_JWT_TOKEN_BYTES_MAX + 16];
    memcpy(padded, known_token, sizeof(known_token) - 1);
    memcpy(padded + sizeof(known_token) - 1, ".junk", 6);
    CHECK_RC(pk_jwt_verify(&key, padded, sizeof(known_token) - 1, NOW, &out), 0);

    /* Sign refusals. */
    CHECK_RC(pk_jwt_sign(&key, &in, tok, (size_t)strlen(known_token)), -ENOSPC);
    CHECK_RC(pk_jwt_sign(&key, &in, tok, strlen(known_token) + 1), (int)strlen(known_token));
    pk_jwt_claims_t bad = in;
    bad.jc_user_id = 0;
    CHECK_RC(pk_jwt_sign(&key, &bad, tok, sizeof(tok)), -EINVAL);
    bad.jc_user_id = UINT64_C(1) << 53;
    CHECK_RC(pk_jwt_sign(&key, &bad, tok, sizeof(tok)), -EINVAL);
    bad = in;
    bad.jc_role = (pk_role_t)7;
    CHECK_RC(pk_jwt_sign(&key, &bad, tok, sizeof(tok)), -EINVAL);
}

static void test_expiry_and_signature(void)
{
    pk_jwt_key_t key = make_key(TEST_KEY);
    pk_jwt_key_t other = make_key("fedcba9876543210fedcba9876543210");
    pk_jwt_claims_t c = {.jc_user_id = 7, .jc_role = PK_ROLE_CUSTOMER, .jc_iat = NOW - 10, .jc_exp = NOW};
    pk_jwt_claims_t out;
    char tok[PK_JWT_TOKEN_BYTES_MAX + 1];

    int n = pk_jwt_sign(&key, &c, tok, sizeof(tok));
    CHECK_RC(pk_jwt_verify(&key, tok, (size_t)n, NOW, &out), PK_EEXPIRED);     /* exp == now */
    CHECK_RC(pk_jwt_verify(&key, tok, (size_t)n, NOW + 99, &out), PK_EEXPIRED);
    CHECK_RC(pk_jwt_verify(&key, tok, (size_t)n, NOW - 1, &out), 0);           /* one second left */
    CHECK_RC(pk_jwt_verify(&other, tok, (size_t)n, NOW + 99, &out), PK_EAUTH); /* forged beats expired */
    CHECK_RC(pk_jwt_verify(&other, tok, (size_t)n, NOW - 1, &out), PK_EAUTH);  /* wrong key */

    /* Swap in the payload of another (valid) token: signature no longer matches. */
    char tok2[PK_JWT_TOKEN_BYTES_MAX + 1], mixed[1100];
    pk_jwt_claims_t admin = {.jc_user_id = 7, .jc_role = PK_ROLE_ADMIN, .jc_iat = NOW, .jc_exp = NOW + 60};
    CHECK(pk_jwt_sign(&key, &admin, tok2, sizeof(tok2)) > 0);
    const char *p2 = strchr(tok2, '.') + 1;
    const char *s1 = strrchr(tok, '.');
    snprintf(mixed, sizeof(mixed), "%.*s.%.*s%s", (int)(strchr(tok, '.') - tok), tok,
             (int)(strrchr(tok2, '.') - p2), p2, s1);
    CHECK_RC(verify_str(&key, mixed), PK_EAUTH);

    /* Hand-tampered payload, re-encoded but not re-signed. */
    char forged[1024];
    build(forged, sizeof(forged), "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
          "{\"sub\":\"42\",\"role\":\"admin\",\"iat\":1700000000,\"exp\":1700003600}", NULL,
          strrchr(known_token, '.') + 1);
    CHECK_RC(verify_str(&key, forged), PK_EAUTH);

    /* One signature character changed; a truncated and an empty signature. */
    char flip[sizeof(known_token)];
    memcpy(flip, known_token, sizeof(known_token));
    flip[sizeof(known_token) - 3] = flip[sizeof(known_token) - 3] == 'A' ? 'B' : 'A';
    CHECK_RC(verify_str(&key, flip), PK_EAUTH);
    CHECK_RC(pk_jwt_verify(&key, known_token, sizeof(known_token) - 1 - 4, NOW, &out), PK_EAUTH);
    CHECK_RC(pk_jwt_verify(&key, known_token, (size_t)(strrchr(known_token, '.') + 1 - known_token), NOW, &out),
             PK_EAUTH);
    /* Last character changed only in bits base64url leaves unused: not canonical. */
    memcpy(flip, known_token, sizeof(known_token));
    flip[sizeof(known_token) - 2] = 'R'; /* 'Q' + 1: same top 4 bits as 'Q' */
    CHECK_RC(verify_str(&key, flip), -EINVAL);
}

static void test_alg(void)
{
    pk_jwt_key_t key = make_key(TEST_KEY);
    const char *payload = "{\"sub\":\"42\",\"role\":\"admin\",\"iat\":1700000000,\"exp\":1700003600}";
    char tok[1024];
    char p64[256];
    char hand[1024];

    /* The classic alg "none" attack, written out by hand. */
    CHECK(pk_b64url_encode((const uint8_t *)payload, strlen(payload), p64, sizeof(p64)) > 0);
    snprintf(hand, sizeof(hand), "eyJhbGciOiJub25lIn0.%s.", p64);
    CHECK_RC(verify_str(&key, hand), PK_EAUTH);
    /* ... and with a signature that is valid HMAC-SHA256 of its contents. */
    build(tok, sizeof(tok), "{\"alg\":\"none\"}", payload, &key, NULL);
    CHECK_RC(verify_str(&key, tok), PK_EAUTH);
    build(tok, sizeof(tok), "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", payload, &key, NULL);
    CHECK_RC(verify_str(&key, tok), PK_EAUTH);
    build(tok, sizeof(tok), "{\"alg\":\"hs256\"}", payload, &key, NULL);
    CHECK_RC(verify_str(&key, tok), PK_EAUTH);
    build(tok, sizeof(tok), "{\"alg\":\"HS256 \"}", payload, &key, NULL);
    CHECK_RC(verify_str(&key, tok), PK_EAUTH);
    build(tok, sizeof(tok), "{\"typ\":\"JWT\"}", payload, &key, NULL);
    CHECK_RC(verify_str(&key, tok), PK_EAUTH);
    build(tok, sizeof(tok), "{\"alg\":null}", payload, &key, NULL);
    CHECK_RC(verify_str(&key, tok), PK_EAUTH);
    build(tok, sizeof(tok), "{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", payload, &key, NULL);
    CHECK_RC(verify_str(&key, tok), PK_EAUTH);

    /* typ is optional, and header field order does not matter. */
    build(tok, sizeof(tok), "{\"alg\":\"HS256\"}", payload, &key, NULL);
    CHECK_RC(verify_str(&key, tok), 0);
    build(tok, sizeof(tok), "{\"typ\":\"JWT\", \"alg\":\"HS256\"}", payload, &key, NULL);
    CHECK_RC(verify_str(&key, tok), 0);
}

static void test_malformed(void)
{
    pk_jwt_key_t key = make_key(TEST_KEY);
    char tok[1024];
    pk_jwt_claims_t out;

    /* Segment count. */
    CHECK_RC(verify_str(&key, ""), -EINVAL);
    CHECK_RC(verify_str(&key, "eyJhbGciOiJIUzI1NiJ9"), -EINVAL);
    CHECK_RC(verify_str(&key, "eyJhbGciOiJIUzI1NiJ9.e30"), -EINVAL);
    snprintf(tok, sizeof(tok), "%s.AAAA", known_token);
    CHECK_RC(verify_str(&key, tok), -EINVAL);
    snprintf(tok, sizeof(tok), "%s.", known_token);
    CHECK_RC(verify_str(&key, tok), -EINVAL);
    CHECK_RC(verify_str(&key, ".."), -EINVAL);

    /* Bad base64url in each segment, and padding. */
    snprintf(tok, sizeof(tok), "%s", known_token);
    tok[40] = '*';
    CHECK_RC(verify_str(&key, tok), -EINVAL);
    snprintf(tok, sizeof(tok), "%s", known_token);
    tok[3] = '+';
    CHECK_RC(verify_str(&key, tok), -EINVAL);
    snprintf(tok, sizeof(tok), "%s", known_token);
    tok[strlen(tok) - 1] = '/';
    CHECK_RC(verify_str(&key, tok), -EINVAL);
    snprintf(tok, sizeof(tok), "%s=", known_token);
    CHECK_RC(verify_str(&key, tok), -EINVAL);
    snprintf(tok, sizeof(tok), "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9=%s", strchr(known_token, '.'));
    CHECK_RC(verify_str(&key, tok), -EINVAL);

    /* Header that is not a JSON object. */
    build(tok, sizeof(tok), "alg=HS256", "{}", &key, NULL);
    CHECK_RC(verify_str(&key, tok), -EINVAL);
    build(tok, sizeof(tok), "[\"HS256\"]", "{}", &key, NULL);
    CHECK_RC(verify_str(&key, tok), -EINVAL);
    build(tok, sizeof(tok), "{\"alg\":\"HS256\",\"alg\":\"none\"}", "{}", &key, NULL);
    CHECK_RC(verify_str(&key, tok), -EINVAL);

    /* Claims, each validly signed so only the claim is at fault. */
    CHECK_RC(verify_payload(&key, "{\"sub\":\"42\",\"role\":\"admin\",\"iat\":1,\"exp\":1700003600}"), 0);
    CHECK_RC(verify_payload(&key, "{\"sub\":42,\"role\":\"admin\",\"iat\":1,\"exp\":1700003600}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"0\",\"role\":\"admin\",\"iat\":1,\"exp\":1700003600}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"abc\",\"role\":\"admin\",\"iat\":1,\"exp\":1700003600}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"\",\"role\":\"admin\",\"iat\":1,\"exp\":1700003600}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"+42\",\"role\":\"admin\",\"iat\":1,\"exp\":1700003600}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"-42\",\"role\":\"admin\",\"iat\":1,\"exp\":1700003600}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\" 42\",\"role\":\"admin\",\"iat\":1,\"exp\":1700003600}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"42x\",\"role\":\"admin\",\"iat\":1,\"exp\":1700003600}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"042\",\"role\":\"admin\",\"iat\":1,\"exp\":1700003600}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"4\\u00002\",\"role\":\"admin\",\"iat\":1,\"exp\":1700003600}"),
             -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"9007199254740991\",\"role\":\"admin\",\"iat\":1,\"exp\":1700003600}"),
             0);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"9007199254740992\",\"role\":\"admin\",\"iat\":1,\"exp\":1700003600}"),
             -EINVAL);
    CHECK_RC(verify_payload(&key,
                            "{\"sub\":\"18446744073709551617\",\"role\":\"admin\",\"iat\":1,\"exp\":1700003600}"),
             -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"42\",\"role\":\"admin\",\"iat\":1}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"42\",\"role\":\"admin\",\"exp\":1700003600}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"42\",\"iat\":1,\"exp\":1700003600}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"42\",\"role\":\"root\",\"iat\":1,\"exp\":1700003600}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"42\",\"role\":\"Admin\",\"iat\":1,\"exp\":1700003600}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"42\",\"role\":2,\"iat\":1,\"exp\":1700003600}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"42\",\"role\":\"admin\",\"iat\":1,\"exp\":\"1700003600\"}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"42\",\"role\":\"admin\",\"iat\":1,\"exp\":1.7e9}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"42\",\"role\":\"admin\",\"iat\":1,\"exp\":1e99}"), -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"42\",\"role\":\"admin\",\"iat\":1,\"exp\":99999999999999999999}"),
             -EINVAL);
    CHECK_RC(verify_payload(&key, "{\"sub\":\"1\",\"sub\":\"42\",\"role\":\"admin\",\"iat\":1,\"exp\":1700003600}"),
             -EINVAL);
    CHECK_RC(verify_payload(&key, "[\"42\",\"admin\"]"), -EINVAL);
    CHECK_RC(verify_payload(&key, "not json"), -EINVAL);
    CHECK_RC(verify_payload(&key, ""), -EINVAL);
    /* Unknown claims are ignored. */
    CHECK_RC(verify_payload(&key, "{\"sub\":\"42\",\"role\":\"admin\",\"iat\":1,\"exp\":1700003600,\"x\":[1]}"), 0);

    /* Over-long token: refused before anything is decoded. */
    char longtok[PK_JWT_TOKEN_BYTES_MAX + 2];
    memset(longtok, 'A', sizeof(longtok));
    longtok[10] = '.';
    longtok[20] = '.';
    CHECK_RC(pk_jwt_verify(&key, longtok, PK_JWT_TOKEN_BYTES_MAX + 1, NOW, &out), -EINVAL);
    CHECK_RC(pk_jwt_verify(&key, longtok, 1u << 20, NOW, &out), -EINVAL); /* len is not trusted to be read */
    /* A validly signed token padded with unknown claims beyond the bound. */
    char payload[600];
    snprintf(payload, sizeof(payload), "{\"sub\":\"42\",\"role\":\"admin\",\"iat\":1,\"exp\":1700003600,\"x\":\"%0400d\"}",
             0);
    build(tok, sizeof(tok), "{\"alg\":\"HS256\"}", payload, &key, NULL);
    CHECK(strlen(tok) > PK_JWT_TOKEN_BYTES_MAX);
    CHECK_RC(verify_str(&key, tok), -EINVAL);
}

/* ---- key files ---------------------------------------------------------- */

static void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len)
        printf("setup: cannot write %s\n", path);
    if (fd >= 0)
        close(fd);
}

static void test_keys(const char *dir)
{
    char path[512], path2[512];
    char buf[PK_JWT_KEY_BYTES_MAX + 8];
    pk_jwt_key_t k, k2;

    snprintf(path, sizeof(path), "%s/key", dir);
    write_file(path, TEST_KEY "\n", 33);
    CHECK_RC(pk_jwt_key_load(&k, path), 0);
    CHECK(k.jk_len == 32 && memcmp(k.jk_bytes, TEST_KEY, 32) == 0);

    write_file(path, TEST_KEY, 32);
    CHECK_RC(pk_jwt_key_load(&k, path), 0);
    CHECK(k.jk_len == 32 && memcmp(k.jk_bytes, TEST_KEY, 32) == 0);

    /* Exactly one newline is removed; the second one is key material. */
    write_file(path, TEST_KEY "\n\n", 34);
    CHECK_RC(pk_jwt_key_load(&k, path), 0);
    CHECK(k.jk_len == 33 && k.jk_bytes[32] == '\n');

    /* "\r\n" is not special: the '\r' stays. */
    write_file(path, TEST_KEY "\r\n", 34);
    CHECK_RC(pk_jwt_key_load(&k, path), 0);
    CHECK(k.jk_len == 33 && k.jk_bytes[32] == '\r');

    write_file(path, TEST_KEY, 31);
    CHECK_RC(pk_jwt_key_load(&k, path), -EINVAL);
    write_file(path, "0123456789abcdef0123456789abcde\n", 32); /* 31 bytes + newline */
    CHECK_RC(pk_jwt_key_load(&k, path), -EINVAL);
    write_file(path, "", 0);
    CHECK_RC(pk_jwt_key_load(&k, path), -EINVAL);

    memset(buf, 'k', sizeof(buf));
    write_file(path, buf, PK_JWT_KEY_BYTES_MAX);
    CHECK_RC(pk_jwt_key_load(&k, path), 0);
    CHECK(k.jk_len == PK_JWT_KEY_BYTES_MAX);
    buf[PK_JWT_KEY_BYTES_MAX] = '\n';
    write_file(path, buf, PK_JWT_KEY_BYTES_MAX + 1);
    CHECK_RC(pk_jwt_key_load(&k, path), 0);
    CHECK(k.jk_len == PK_JWT_KEY_BYTES_MAX);
    buf[PK_JWT_KEY_BYTES_MAX] = 'k';
    write_file(path, buf, PK_JWT_KEY_BYTES_MAX + 1);
    CHECK_RC(pk_jwt_key_load(&k, path), -EINVAL);
    write_file(path, buf, sizeof(buf));
    CHECK_RC(pk_jwt_key_load(&k, path), -EINVAL);

    snprintf(path2, sizeof(path2), "%s/missing", dir);
    CHECK_RC(pk_jwt_key_load(&k, path2), -ENOENT);

    /* init_file creates a private file once and reloads it afterwards. */
    snprintf(path2, sizeof(path2), "%s/generated", dir);
    CHECK_RC(pk_jwt_key_init_file(&k, path2), 0);
    CHECK(k.jk_len == PK_JWT_GENERATED_KEY_BYTES * 2);
    int hex = 1;
    for (size_t i = 0; i < k.jk_len; i++)
        hex &= (k.jk_bytes[i] >= '0' && k.jk_bytes[i] <= '9') || (k.jk_bytes[i] >= 'a' && k.jk_bytes[i] <= 'f');
    CHECK(hex);
    struct stat st;
    CHECK(stat(path2, &st) == 0 && (st.st_mode & 0777) == 0600 && S_ISREG(st.st_mode));
    CHECK(st.st_size == PK_JWT_GENERATED_KEY_BYTES * 2 + 1);
    CHECK_RC(pk_jwt_key_init_file(&k2, path2), 0);
    CHECK(k2.jk_len == k.jk_len && memcmp(k.jk_bytes, k2.jk_bytes, k.jk_len) == 0);

    /* A token signed with the generated key verifies after a reload. */
    pk_jwt_claims_t c = {.jc_user_id = 1, .jc_role = PK_ROLE_ADMIN, .jc_iat = NOW, .jc_exp = NOW + 1};
    pk_jwt_claims_t out;
    char tok[PK_JWT_TOKEN_BYTES_MAX + 1];
    int n = pk_jwt_sign(&k, &c, tok, sizeof(tok));
    CHECK(n > 0);
    CHECK_RC(pk_jwt_verify(&k2, tok, (size_t)n, NOW, &out), 0);

    /* Two fresh files get different keys. */
    snprintf(path2, sizeof(path2), "%s/generated2", dir);
    CHECK_RC(pk_jwt_key_init_file(&k2, path2), 0);
    CHECK(memcmp(k.jk_bytes, k2.jk_bytes, k.jk_len) != 0);

    /* An existing file is loaded, never replaced. */
    write_file(path, TEST_KEY "\n", 33);
    CHECK_RC(pk_jwt_key_init_file(&k, path), 0);
    CHECK(k.jk_len == 32 && memcmp(k.jk_bytes, TEST_KEY, 32) == 0);

    /* Unwritable location: the errno comes back. */
    snprintf(path2, sizeof(path2), "%s/no/such/dir/key", dir);
    CHECK_RC(pk_jwt_key_init_file(&k, path2), -ENOENT);
}

static void remove_dir(const char *dir)
{
    static const char *const names[] = {"key", "generated", "generated2"};
    char path[512];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void)
{
    char dir[] = "/tmp/pickple-test-jwt-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_b64url();
    test_sign_verify();
    test_expiry_and_signature();
    test_alg();
    test_malformed();
    test_keys(dir);
    remove_dir(dir);

    return CHECK_DONE("test_jwt");
}
