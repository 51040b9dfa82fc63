/* The per-thread cache of verified bearer tokens (include/pickple/jwt_cache.h). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "pickple/jwt_cache.h"

int pk_jwtc_init(pk_jwtc_t *c)
{
    memset(c, 0, sizeof(*c));
    if (RAND_bytes((unsigned char *)c->jc_seed, sizeof(c->jc_seed)) != 1)
        return -EIO;
    c->jc_sets = aligned_alloc(64, sizeof(pk_jwtc_set_t) * (PK_JWTC_SLOTS / PK_JWTC_WAYS));
    c->jc_slots = calloc(PK_JWTC_SLOTS, sizeof(*c->jc_slots));
    if (c->jc_sets == NULL || c->jc_slots == NULL) {
        pk_jwtc_destroy(c);
        return -ENOMEM;
    }
    memset(c->jc_sets, 0, sizeof(pk_jwtc_set_t) * (PK_JWTC_SLOTS / PK_JWTC_WAYS));
    return 0;
}

void pk_jwtc_destroy(pk_jwtc_t *c)
{
    if (c->jc_slots != NULL)
        OPENSSL_cleanse(c->jc_slots, PK_JWTC_SLOTS * sizeof(*c->jc_slots));
    free(c->jc_slots);
    free(c->jc_sets);
    c->jc_slots = NULL;
    c->jc_sets = NULL;
}

/*
 * The token's hash: its last eight characters, which for a token we issued
 * are base64url of HMAC output (48 random bits), mixed with per-cache random
 * bytes.  Only valid tokens are ever stored, so whatever an attacker puts
 * at the end of a forged token, it can only miss.  Cheap on purpose: this
 * runs for every signed-in request.
 */
static uint64_t pk__hash_of(const pk_jwtc_t *c, const char *token, size_t len)
{
    uint64_t h = 0;
    memcpy(&h, token + (len > 8 ? len - 8 : 0), len > 8 ? 8 : len);
    h ^= c->jc_seed[0] ^ (uint64_t)len << 56;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h ^ c->jc_seed[1];
}

/* The set a hash picks: its low bits (the high half is the tag). */
static size_t pk__set_of(uint64_t h)
{
    return (size_t)(h & (PK_JWTC_SLOTS / PK_JWTC_WAYS - 1));
}

void pk_jwtc_prefetch(const pk_jwtc_t *c, const char *token, size_t len)
{
    if (len == 0 || len > PK_JWTC_TOKEN_BYTES)
        return;
    size_t si = pk__set_of(pk__hash_of(c, token, len));
    __builtin_prefetch(&c->jc_sets[si]);
    /* Every way's slot: which one holds the token is in the set line, still
     * on its way.  Claims first, then the token's bytes. */
    const char *slots = (const char *)&c->jc_slots[si * PK_JWTC_WAYS];
    size_t bytes = offsetof(pk_jwtc_slot_t, js_token) + len;
    for (unsigned w = 0; w < PK_JWTC_WAYS; w++)
        for (size_t off = 0; off < bytes; off += 64)
            __builtin_prefetch(slots + w * sizeof(pk_jwtc_slot_t) + off);
}

int pk_jwtc_verify(pk_jwtc_t *c, const pk_jwt_key_t *key, const char *token, size_t len, int64_t now_s,
                   pk_jwt_claims_t *out)
{
    if (len == 0 || len > PK_JWTC_TOKEN_BYTES)
        return pk_jwt_verify(key, token, len, now_s, out);
    /*
     * Sets of PK_JWTC_WAYS slots with least-recently-used replacement: ten
     * thousand users in a one-way table would keep evicting each other.
     * The low hash bits pick the set, the high ones are a tag.  The whole
     * token is compared only behind a matching set and tag, that is for a
     * token ending in the same eight characters of signature as a stored
     * one, which nobody without that token can produce: a plain memcmp
     * there tells a client nothing it did not already hold.
     */
    uint64_t h = pk__hash_of(c, token, len);
    uint32_t tag = (uint32_t)(h >> 32);
    size_t si = pk__set_of(h);
    pk_jwtc_set_t *set = &c->jc_sets[si];
    pk_jwtc_slot_t *slots = &c->jc_slots[si * PK_JWTC_WAYS];
    unsigned victim = 0;
    for (unsigned w = 0; w < PK_JWTC_WAYS; w++) {
        if (set->jt_tag[w] == tag && set->jt_len[w] == len && set->jt_used[w] != 0 &&
            memcmp(slots[w].js_token, token, len) == 0) {
            c->jc_hits++;
            set->jt_used[w] = ++c->jc_clock;
            if (slots[w].js_claims.jc_exp <= now_s)
                return PK_EEXPIRED;
            *out = slots[w].js_claims;
            return 0;
        }
        if (set->jt_used[w] < set->jt_used[victim])
            victim = w;
    }
    c->jc_misses++;
    int rc = pk_jwt_verify(key, token, len, now_s, out);
    if (rc == 0) {
        memcpy(slots[victim].js_token, token, len);
        slots[victim].js_claims = *out;
        set->jt_tag[victim] = tag;
        set->jt_len[victim] = (uint16_t)len;
        set->jt_used[victim] = ++c->jc_clock;
    }
    return rc;
}
