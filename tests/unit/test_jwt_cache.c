/*
 * Unit tests for src/auth/jwt_cache.c: a cached token answers exactly what
 * pk_jwt_verify() would, forged and oversized tokens are never answered
 * from the table, expiry is checked on every hit, and repeats really are
 * served from the cache (the hit counter moves).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pickple/jwt_cache.h"

#define NOW 1700000000

static pk_jwt_key_t make_key(const char *s)
{
    pk_jwt_key_t k;
    memset(&k, 0, sizeof(k));
    k.jk_len = strlen(s);
    memcpy(k.jk_bytes, s, k.jk_len);
    return k;
}

static int sign(const pk_jwt_key_t *key, uint64_t user, pk_role_t role, int64_t exp, char *out, size_t size)
{
    pk_jwt_claims_t c = {.jc_user_id = user, .jc_role = role, .jc_iat = NOW - 10, .jc_exp = exp};
    return pk_jwt_sign(key, &c, out, size);
}

static void test_hit_and_expiry(void)
{
    pk_jwt_key_t key = make_key("0123456789abcdef0123456789abcdef");
    pk_jwtc_t c;
    pk_jwt_claims_t got;
    char tok[PK_JWT_TOKEN_BYTES_MAX + 1];
    CHECK_RC(pk_jwtc_init(&c), 0);
    int n = sign(&key, 42, PK_ROLE_SELLER, NOW + 60, tok, sizeof(tok));
    CHECK(n > 0 && n <= PK_JWTC_TOKEN_BYTES);

    CHECK_RC(pk_jwtc_verify(&c, &key, tok, (size_t)n, NOW, &got), 0);
    CHECK(got.jc_user_id == 42 && got.jc_role == PK_ROLE_SELLER && got.jc_exp == NOW + 60);
    CHECK(c.jc_misses == 1 && c.jc_hits == 0);
    memset(&got, 0, sizeof(got));
    CHECK_RC(pk_jwtc_verify(&c, &key, tok, (size_t)n, NOW + 1, &got), 0);
    CHECK(got.jc_user_id == 42 && got.jc_role == PK_ROLE_SELLER && got.jc_iat == NOW - 10);
    CHECK(c.jc_hits == 1);
    /* Expiry is judged on every hit, with the same answer as the verifier. */
    CHECK_RC(pk_jwtc_verify(&c, &key, tok, (size_t)n, NOW + 60, &got), PK_EEXPIRED);
    CHECK_RC(pk_jwt_verify(&key, tok, (size_t)n, NOW + 60, &got), PK_EEXPIRED);
    CHECK(c.jc_hits == 2);

    /* A prefix of a cached token is not that token. */
    CHECK(pk_jwtc_verify(&c, &key, tok, (size_t)n - 1, NOW, &got) != 0);
    pk_jwtc_destroy(&c);
}

static void test_forged_never_cached(void)
{
    pk_jwt_key_t key = make_key("0123456789abcdef0123456789abcdef");
    pk_jwt_key_t other = make_key("fedcba9876543210fedcba9876543210");
    pk_jwtc_t c;
    pk_jwt_claims_t got;
    char tok[PK_JWT_TOKEN_BYTES_MAX + 1], bad[PK_JWT_TOKEN_BYTES_MAX + 1];
    CHECK_RC(pk_jwtc_init(&c), 0);
    int n = sign(&key, 7, PK_ROLE_CUSTOMER, NOW + 60, tok, sizeof(tok));
    CHECK_RC(pk_jwtc_verify(&c, &key, tok, (size_t)n, NOW, &got), 0);

    /* Signed with another key: refused every time, however often it comes. */
    int m = sign(&other, 7, PK_ROLE_ADMIN, NOW + 60, bad, sizeof(bad));
    for (int i = 0; i < 3; i++)
        CHECK_RC(pk_jwtc_verify(&c, &key, bad, (size_t)m, NOW, &got), PK_EAUTH);
    /* One signature character changed: refused, and the real token still
     * answers from its slot with its own claims. */
    memcpy(bad, tok, (size_t)n);
    bad[n - 2] = bad[n - 2] == 'A' ? 'B' : 'A';
    CHECK_RC(pk_jwtc_verify(&c, &key, bad, (size_t)n, NOW, &got), PK_EAUTH);
    CHECK_RC(pk_jwtc_verify(&c, &key, bad, (size_t)n, NOW, &got), PK_EAUTH);
    uint64_t hits = c.jc_hits;
    CHECK_RC(pk_jwtc_verify(&c, &key, tok, (size_t)n, NOW, &got), 0);
    CHECK(got.jc_user_id == 7 && got.jc_role == PK_ROLE_CUSTOMER && c.jc_hits == hits + 1);
    /* Garbage and empty input take the verifier's answers. */
    CHECK_RC(pk_jwtc_verify(&c, &key, "a.b", 3, NOW, &got), -EINVAL);
    CHECK_RC(pk_jwtc_verify(&c, &key, "", 0, NOW, &got), -EINVAL);
    pk_jwtc_destroy(&c);
}

static void test_many_tokens(void)
{
    /* Four times more users than slots: evictions happen, and every answer
     * stays right for whichever token is asked. */
    pk_jwt_key_t key = make_key("0123456789abcdef0123456789abcdef");
    pk_jwtc_t c;
    pk_jwt_claims_t got;
    char tok[PK_JWT_TOKEN_BYTES_MAX + 1];
    CHECK_RC(pk_jwtc_init(&c), 0);
    int wrong = 0;
    for (int round = 0; round < 2; round++) {
        for (uint64_t u = 1; u <= 4 * PK_JWTC_SLOTS; u++) {
            int n = sign(&key, u, PK_ROLE_CUSTOMER, NOW + 60, tok, sizeof(tok));
            if (n <= 0 || pk_jwtc_verify(&c, &key, tok, (size_t)n, NOW, &got) != 0 || got.jc_user_id != u)
                wrong++;
        }
    }
    CHECK(wrong == 0);
    /* Every token was missed once, and the table cannot hold a second
     * round of four times its slots.  (Whether any of them survived to the
     * second round depends on the per-cache hash seed: a set that received
     * at most four of them keeps them, which happens in most runs but not
     * all, so hits are not counted on.) */
    CHECK(c.jc_misses > (uint64_t)4 * PK_JWTC_SLOTS);
    /* The token used last is still in its set: answered from the table. */
    uint64_t hits = c.jc_hits;
    int n = sign(&key, 4 * PK_JWTC_SLOTS, PK_ROLE_CUSTOMER, NOW + 60, tok, sizeof(tok));
    CHECK(n > 0);
    CHECK_RC(pk_jwtc_verify(&c, &key, tok, (size_t)n, NOW, &got), 0);
    CHECK(got.jc_user_id == 4 * PK_JWTC_SLOTS && c.jc_hits == hits + 1);
    pk_jwtc_destroy(&c);
}

static void test_ten_thousand_users_stay(void)
{
    /* A flash sale's 10,000 users fit: on the second pass nearly every
     * token is answered from the table (one-way slots would lose about a
     * quarter of them to collisions). */
    pk_jwt_key_t key = make_key("0123456789abcdef0123456789abcdef");
    pk_jwtc_t c;
    pk_jwt_claims_t got;
    static char toks[10000][PK_JWT_TOKEN_BYTES_MAX + 1];
    static int lens[10000];
    CHECK_RC(pk_jwtc_init(&c), 0);
    for (int i = 0; i < 10000; i++)
        lens[i] = sign(&key, 1000000 + (uint64_t)i, PK_ROLE_CUSTOMER, NOW + 60, toks[i], sizeof(toks[i]));
    for (int round = 0; round < 2; round++) {
        c.jc_hits = 0;
        for (int i = 0; i < 10000; i++)
            CHECK_RC(pk_jwtc_verify(&c, &key, toks[i], (size_t)lens[i], NOW, &got), 0);
    }
    printf("second pass: %llu of 10000 from the cache\n", (unsigned long long)c.jc_hits);
    CHECK(c.jc_hits >= 9500);
    pk_jwtc_destroy(&c);
}

static void test_prefetch_is_only_a_hint(void)
{
    /* pk_jwtc_prefetch reads the token's own bytes and nothing past them
     * (each token below sits in a heap block of exactly its length, which
     * the sanitizer build watches), and neither stores nor counts. */
    pk_jwt_key_t key = make_key("0123456789abcdef0123456789abcdef");
    pk_jwtc_t c;
    pk_jwt_claims_t got;
    char tok[PK_JWT_TOKEN_BYTES_MAX + 1];
    CHECK_RC(pk_jwtc_init(&c), 0);
    int n = sign(&key, 7, PK_ROLE_CUSTOMER, NOW + 60, tok, sizeof(tok));
    CHECK(n > 0);
    for (size_t len = 1; len <= PK_JWTC_TOKEN_BYTES + 1; len++) {
        char *exact = malloc(len);
        CHECK(exact != NULL);
        if (exact == NULL)
            break;
        memset(exact, 'a', len);
        memcpy(exact, tok, len < (size_t)n ? len : (size_t)n);
        pk_jwtc_prefetch(&c, exact, len);
        free(exact);
    }
    pk_jwtc_prefetch(&c, tok, 0);
    CHECK(c.jc_hits == 0 && c.jc_misses == 0 && c.jc_clock == 0);
    /* Prefetched, the token is still unknown until verified once. */
    pk_jwtc_prefetch(&c, tok, (size_t)n);
    CHECK_RC(pk_jwtc_verify(&c, &key, tok, (size_t)n, NOW, &got), 0);
    CHECK(c.jc_misses == 1 && c.jc_hits == 0);
    pk_jwtc_prefetch(&c, tok, (size_t)n);
    CHECK_RC(pk_jwtc_verify(&c, &key, tok, (size_t)n, NOW, &got), 0);
    CHECK(c.jc_misses == 1 && c.jc_hits == 1 && got.jc_user_id == 7);
    pk_jwtc_destroy(&c);
}

int main(void)
{
    test_prefetch_is_only_a_hint();
    test_ten_thousand_users_stay();
    test_hit_and_expiry();
    test_forged_never_cached();
    test_many_tokens();
    return CHECK_DONE("test_jwt_cache");
}
