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

/* Slot index: a seeded multiply-xorshift over 8-byte words.  Not a MAC; it
 * only has to keep clients from choosing which slot their token lands in. */
static size_t pk__slot_of(const pk_jwtc_t *c, const char *token, size_t len)
{
    uint64_t h = c->jc_seed[0] ^ (len * 0x9e3779b97f4a7c15ull);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, token + i, 8);
        h = (h ^ w ^ c->jc_seed[1]) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    memcpy(&w, token + i, len - i);
    h = (h ^ w ^ c->jc_seed[1]) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    return (size_t)(h & (PK_JWTC_SLOTS - 1));
}

int pk_jwtc_verify(pk_jwtc_t *c, const pk_jwt_key_t *key, const char *token, size_t len, int64_t now_s,
                   pk_jwt_claims_t *out)
{
    if (len == 0 || len > PK_JWTC_TOKEN_BYTES)
        return pk_jwt_verify(key, token, len, now_s, out);
    pk_jwtc_slot_t *s = &c->jc_slots[pk__slot_of(c, token, len)];
    if (s->js_len == len && CRYPTO_memcmp(s->js_token, token, len) == 0) {
        c->jc_hits++;
        if (s->js_claims.jc_exp <= now_s)
            return PK_EEXPIRED;
        *out = s->js_claims;
        return 0;
    }
    c->jc_misses++;
    int rc = pk_jwt_verify(key, token, len, now_s, out);
    if (rc == 0) {
        memcpy(s->js_token, token, len);
        s->js_len = (uint16_t)len;
        s->js_claims = *out;
    }
    return rc;
}
