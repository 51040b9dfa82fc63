/* The per-thread cache of verified bearer tokens (include/pickple/jwt_cache.h). */
#include <errno.h>
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
    c->jc_slots = calloc(PK_JWTC_SLOTS, sizeof(*c->jc_slots));
    return c->jc_slots == NULL ? -ENOMEM : 0;
}

void pk_jwtc_destroy(pk_jwtc_t *c)
{
    if (c->jc_slots != NULL)
        OPENSSL_cleanse(c->jc_slots, PK_JWTC_SLOTS * sizeof(*c->jc_slots));
    free(c->jc_slots);
    c->jc_slots = NULL;
}

/* Slot index: a seeded multiply-rotate over 8-byte words with a final
 * avalanche.  Not a MAC; it only has to spread tokens that differ in a few
 * bytes and keep clients from choosing which slot their token lands in. */
static uint64_t pk__mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static uint64_t pk__hash_of(const pk_jwtc_t *c, const char *token, size_t len)
{
    uint64_t h = c->jc_seed[0] ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, token + i, 8);
        h = (h ^ pk__mix(w ^ c->jc_seed[1])) * 0x9e3779b97f4a7c15ull;
        h = h << 31 | h >> 33;
    }
    uint64_t w = 0;
    memcpy(&w, token + i, len - i);
    return pk__mix(h ^ pk__mix(w ^ c->jc_seed[1]));
}

int pk_jwtc_verify(pk_jwtc_t *c, const pk_jwt_key_t *key, const char *token, size_t len, int64_t now_s,
                   pk_jwt_claims_t *out)
{
    if (len == 0 || len > PK_JWTC_TOKEN_BYTES)
        return pk_jwt_verify(key, token, len, now_s, out);
    /*
     * Sets of PK_JWTC_WAYS slots with least-recently-used replacement: ten
     * thousand users in a one-way table would keep evicting each other.
     * The low hash bits pick the set, the high ones are a tag compared
     * before the constant-time comparison of the whole token.
     */
    uint64_t h = pk__hash_of(c, token, len);
    uint32_t tag = (uint32_t)(h >> 32);
    pk_jwtc_slot_t *set = &c->jc_slots[(h & (PK_JWTC_SLOTS / PK_JWTC_WAYS - 1)) * PK_JWTC_WAYS];
    unsigned victim = 0;
    for (unsigned w = 0; w < PK_JWTC_WAYS; w++) {
        pk_jwtc_slot_t *s = &set[w];
        if (s->js_tag == tag && s->js_len == len && CRYPTO_memcmp(s->js_token, token, len) == 0) {
            c->jc_hits++;
            s->js_used = ++c->jc_clock;
            if (s->js_claims.jc_exp <= now_s)
                return PK_EEXPIRED;
            *out = s->js_claims;
            return 0;
        }
        if (s->js_used < set[victim].js_used)
            victim = w;
    }
    c->jc_misses++;
    int rc = pk_jwt_verify(key, token, len, now_s, out);
    if (rc == 0) {
        pk_jwtc_slot_t *s = &set[victim]; /* empty slots have js_used 0 */
        memcpy(s->js_token, token, len);
        s->js_len = (uint16_t)len;
        s->js_tag = tag;
        s->js_used = ++c->jc_clock;
        s->js_claims = *out;
    }
    return rc;
}
