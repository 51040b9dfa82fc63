/*
 * A per-thread cache of verified bearer tokens.
 *
 * Verifying an HS256 token costs two SHA-256 passes and a JSON parse; a
 * flash-sale client sends the same token with every request.  Each actor
 * thread keeps the tokens it has verified in a fixed table of four-way sets
 * (least recently used out) and answers a repeat from it:
 *
 *   - only tokens that passed pk_jwt_verify() are stored: a forged token
 *     always pays the full check and never enters the table;
 *   - a hit is a whole-token match compared in constant time
 *     (CRYPTO_memcmp), after a 32-bit tag from the same keyed hash;
 *   - expiry is checked on every hit against the caller's clock;
 *   - the set comes from a hash keyed with per-cache random bytes, so a
 *     client cannot aim its tokens at another user's set.
 *
 * Not thread-safe by design: one cache per thread, no locks.  Fixed size:
 * PK_JWTC_SLOTS entries; tokens longer than PK_JWTC_TOKEN_BYTES are not
 * cached (they are verified every time).
 */
#ifndef PICKPLE_JWT_CACHE_H
#define PICKPLE_JWT_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "pickple/jwt.h"

#define PK_JWTC_SLOTS 32768 /* power of two; about 8 MiB per thread */
#define PK_JWTC_WAYS 4
#define PK_JWTC_TOKEN_BYTES 200 /* pickple's own tokens are about 180 */

typedef struct pk_jwtc_slot {
    uint16_t js_len; /* 0: empty */
    uint32_t js_tag;  /* high half of the token's hash */
    uint64_t js_used; /* cache clock at the last use; 0: never */
    pk_jwt_claims_t js_claims;
    char js_token[PK_JWTC_TOKEN_BYTES];
} pk_jwtc_slot_t;

typedef struct pk_jwtc {
    uint64_t jc_seed[2];
    uint64_t jc_hits, jc_misses;
    uint64_t jc_clock; /* counts uses, for least-recently-used replacement */
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
