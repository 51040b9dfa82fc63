/*
 * A per-thread cache of verified bearer tokens.
 *
 * Verifying an HS256 token costs two SHA-256 passes and a JSON parse; a
 * flash-sale client sends the same token with every request.  Each actor
 * thread keeps the tokens it has verified in a direct-mapped table and
 * answers a repeat from it:
 *
 *   - only tokens that passed pk_jwt_verify() are stored: a forged token
 *     always pays the full check and never enters the table;
 *   - a hit compares every byte of the token in constant time
 *     (CRYPTO_memcmp), so the cache reveals nothing about the tokens it
 *     holds;
 *   - expiry is checked on every hit against the caller's clock;
 *   - the slot comes from a hash keyed with per-cache random bytes, so a
 *     client cannot aim its tokens at another user's slot.
 *
 * Not thread-safe by design: one cache per thread, no locks.  Fixed size:
 * PK_JWTC_SLOTS entries, tokens longer than PK_JWTC_TOKEN_BYTES are not
 * cached (they are verified every time).
 */
#ifndef PICKPLE_JWT_CACHE_H
#define PICKPLE_JWT_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "pickple/jwt.h"

#define PK_JWTC_SLOTS 32768 /* power of two; 7.5 MiB per thread */
#define PK_JWTC_TOKEN_BYTES 200 /* pickple's own tokens are about 180 */

typedef struct pk_jwtc_slot {
    uint16_t js_len; /* 0: empty */
    pk_jwt_claims_t js_claims;
    char js_token[PK_JWTC_TOKEN_BYTES];
} pk_jwtc_slot_t;

typedef struct pk_jwtc {
    uint64_t jc_seed[2];
    uint64_t jc_hits, jc_misses;
    pk_jwtc_slot_t *jc_slots; /* PK_JWTC_SLOTS */
} pk_jwtc_t;

/* Allocates the table and draws the hash seed.  0, -ENOMEM or -EIO. */
int pk_jwtc_init(pk_jwtc_t *c) PK_MUST_USE;
void pk_jwtc_destroy(pk_jwtc_t *c);

/*
 * pk_jwt_verify() with the cache in front: same arguments, same answers.
 * A cached token is answered without recomputing its signature (expired:
 * PK_EEXPIRED); any other token is verified and, when valid, cached.
 */
int pk_jwtc_verify(pk_jwtc_t *c, const pk_jwt_key_t *key, const char *token, size_t len, int64_t now_s,
                   pk_jwt_claims_t *out) PK_MUST_USE;

#endif
