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
 *   - a hit is a whole-token match behind a set and a 32-bit tag taken
 *     from the token's last signature characters mixed with per-cache
 *     random bytes (src/auth/jwt_cache.c says why that is safe);
 *   - expiry is checked on every hit against the caller's clock.
 *
 * Not thread-safe by design: one cache per thread, no locks.  Fixed size:
 * PK_JWTC_SLOTS entries; tokens longer than PK_JWTC_TOKEN_BYTES are not
 * cached (they are verified every time).
 */
#ifndef PICKPLE_JWT_CACHE_H
#define PICKPLE_JWT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pickple/jwt.h"

#define PK_JWTC_SLOTS 32768 /* power of two; about 8 MiB per thread */
#define PK_JWTC_WAYS 4
#define PK_JWTC_TOKEN_BYTES 200 /* pickple's own tokens are about 180 */

/* One cache line per set: lookups read it and, on a tag match, one slot. */
typedef struct pk_jwtc_set {
    uint64_t jt_used[PK_JWTC_WAYS]; /* cache clock at the last use; 0: empty */
    uint32_t jt_tag[PK_JWTC_WAYS];  /* high half of the token's hash */
    uint16_t jt_len[PK_JWTC_WAYS];
} __attribute__((aligned(64))) pk_jwtc_set_t;

typedef struct pk_jwtc_slot {
    pk_jwt_claims_t js_claims;
    char js_token[PK_JWTC_TOKEN_BYTES];
} pk_jwtc_slot_t;

typedef struct pk_jwtc {
    uint64_t jc_seed[2];
    uint64_t jc_hits, jc_misses;
    uint64_t jc_clock;        /* counts uses, for least-recently-used replacement */
    pk_jwtc_set_t *jc_sets;   /* PK_JWTC_SLOTS / PK_JWTC_WAYS */
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

/*
 * Starts loading the cache lines pk_jwtc_verify() will read for token, so
 * a caller with other work to do before verifying does not wait for
 * memory there: with ten thousand users the table is far larger than the
 * CPU's caches.  A hint only; it changes nothing.
 */
void pk_jwtc_prefetch(const pk_jwtc_t *c, const char *token, size_t len);

#endif
