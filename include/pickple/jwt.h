/*
 * HS256 JSON Web Tokens, as the API contract defines them: claims `sub`
 * (user id as a decimal string), `role`, `iat`, `exp` (seconds).
 *
 * Pure functions over caller-owned memory: no I/O except pk_jwt_key_load()
 * and pk_jwt_key_init_file(), no global state, safe to call from any thread
 * with its own output buffers.
 */
#ifndef PICKPLE_JWT_H
#define PICKPLE_JWT_H

#include <stdint.h>
#include <stddef.h>

#include "pickple/common.h"

#define PK_JWT_KEY_BYTES_MIN 32
#define PK_JWT_KEY_BYTES_MAX 512
#define PK_JWT_TOKEN_BYTES_MAX 512 /* a signed token always fits */
#define PK_JWT_GENERATED_KEY_BYTES 48

typedef struct pk_jwt_key {
    uint8_t jk_bytes[PK_JWT_KEY_BYTES_MAX];
    size_t jk_len;
} pk_jwt_key_t;

typedef struct pk_jwt_claims {
    uint64_t jc_user_id; /* `sub`, 1 .. 2^53-1 */
    pk_role_t jc_role;   /* `role` */
    int64_t jc_iat;      /* seconds since the epoch */
    int64_t jc_exp;      /* seconds since the epoch */
} pk_jwt_claims_t;

/*
 * Reads the secret file at path: its bytes with one trailing "\n" removed.
 * Returns 0, -errno when the file cannot be read, -EINVAL when the key is
 * shorter than PK_JWT_KEY_BYTES_MIN or longer than PK_JWT_KEY_BYTES_MAX.
 */
int pk_jwt_key_load(pk_jwt_key_t *key, const char *path) PK_MUST_USE;

/*
 * Loads path when it exists; otherwise creates it (mode 0600, O_EXCL) with
 * PK_JWT_GENERATED_KEY_BYTES random bytes from OpenSSL's RAND_bytes encoded
 * as hex plus a newline, and loads that.  Returns 0 or a negative error.
 */
int pk_jwt_key_init_file(pk_jwt_key_t *key, const char *path) PK_MUST_USE;

/*
 * Signs claims into out as "header.payload.signature" (base64url, no
 * padding, NUL-terminated).  Returns the token length (> 0), or -ENOSPC when
 * out_size is too small, -EINVAL for a claim out of range.
 */
int pk_jwt_sign(const pk_jwt_key_t *key, const pk_jwt_claims_t *claims, char *out, size_t out_size) PK_MUST_USE;

/*
 * Verifies token (len bytes, need not be NUL-terminated) at time now_s.
 * The header must be JSON with "alg":"HS256"; any other alg (including
 * "none") is refused.  The signature is compared in constant time
 * (CRYPTO_memcmp).  The payload must carry sub (decimal string of an id in
 * 1..2^53-1), role (a known role name), iat and exp (integers).
 * Returns 0 and fills *out; PK_EEXPIRED when exp <= now_s; PK_EAUTH when
 * the signature does not match or alg is not HS256; -EINVAL when the token
 * is malformed (wrong segment count, bad base64url, bad JSON, missing or
 * mistyped claims, longer than PK_JWT_TOKEN_BYTES_MAX).
 */
int pk_jwt_verify(const pk_jwt_key_t *key, const char *token, size_t len, int64_t now_s, pk_jwt_claims_t *out) PK_MUST_USE;

/*
 * base64url without padding.  encode: returns the length written (out gets a
 * NUL too) or -ENOSPC.  decode: accepts no padding and no characters outside
 * the URL-safe alphabet; returns the decoded length, -EINVAL or -ENOSPC.
 */
int pk_b64url_encode(const uint8_t *in, size_t len, char *out, size_t out_size) PK_MUST_USE;
int pk_b64url_decode(const char *in, size_t len, uint8_t *out, size_t out_size) PK_MUST_USE;

#endif
