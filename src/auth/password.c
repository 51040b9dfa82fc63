/*
 * scrypt password hashes in the self-describing form of password.h:
 *   "scrypt$<log2 N>$<r>$<p>$<salt base64url>$<hash base64url>"
 *
 * New hashes use log2 N = 14, r = 8, p = 5: OWASP's scrypt settings of equal
 * strength (N=2^14, r=8 needs 16 MiB per hash; p=5 multiplies the CPU time,
 * not the memory, because OpenSSL runs the p lanes one after another).
 * Verification accepts any parameters inside fixed bounds so they can be
 * raised later without rehashing every stored password at once.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "pickple/jwt.h" /* pk_b64url_* */
#include "pickple/password.h"

/* N=2^15, r=8, p=1 (32 MiB): the usual interactive-login setting, about
 * 90 ms of one core here.  Stored hashes carry their parameters, so they can
 * be raised later without invalidating existing users. */
#define PK__SCRYPT_LOG2N 15
#define PK__SCRYPT_R 8
#define PK__SCRYPT_P 1
#define PK__SALT_BYTES 16
#define PK__HASH_BYTES 32

#define PK__LOG2N_MIN 10
#define PK__LOG2N_MAX 20
#define PK__R_MIN 1
#define PK__R_MAX 16
#define PK__P_MIN 1
#define PK__P_MAX 16

/*
 * Memory cap handed to EVP_PBE_scrypt.  OpenSSL's own default (32 MiB) is
 * close to what our parameters need; 64 MiB leaves headroom while still
 * refusing a stored hash that would make one verification eat gigabytes.
 */
#define PK__SCRYPT_MAXMEM_BYTES (UINT64_C(64) << 20)

static const char pk__scrypt_prefix[] = "scrypt$";

/* The bytes OpenSSL's scrypt allocates for these parameters (crypto/evp/pbe_scrypt.c). */
static uint64_t pk__scrypt_mem_bytes(unsigned log2n, unsigned r, unsigned p)
{
    uint64_t n = UINT64_C(1) << log2n;
    return 128 * (uint64_t)r * (n + 2) + 128 * (uint64_t)r * p;
}

static int pk__scrypt(const char *password, size_t len, const uint8_t *salt, unsigned log2n, unsigned r,
                      unsigned p, uint8_t out[PK__HASH_BYTES])
{
    /* OpenSSL treats a NULL password as empty, but say so explicitly. */
    if (password == NULL)
        password = "";
    if (EVP_PBE_scrypt(password, len, salt, PK__SALT_BYTES, UINT64_C(1) << log2n, r, p, PK__SCRYPT_MAXMEM_BYTES,
                       out, PK__HASH_BYTES) != 1)
        return -EIO;
    return 0;
}

int pk_password_hash(const char *password, size_t len, char *out, size_t out_size)
{
    uint8_t salt[PK__SALT_BYTES];
    uint8_t hash[PK__HASH_BYTES];
    char salt_b64[32], hash_b64[48];
    char enc[PK_PASSWORD_ENCODED_BYTES_MAX + 1];
    int err;

    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return -EIO;
    err = pk__scrypt(password, len, salt, PK__SCRYPT_LOG2N, PK__SCRYPT_R, PK__SCRYPT_P, hash);
    if (err != 0)
        goto fail;
    if (pk_b64url_encode(salt, sizeof(salt), salt_b64, sizeof(salt_b64)) < 0 ||
        pk_b64url_encode(hash, sizeof(hash), hash_b64, sizeof(hash_b64)) < 0) {
        err = -EIO; /* the buffers are sized for these lengths */
        goto fail;
    }
    int n = snprintf(enc, sizeof(enc), "%s%d$%d$%d$%s$%s", pk__scrypt_prefix, PK__SCRYPT_LOG2N, PK__SCRYPT_R,
                     PK__SCRYPT_P, salt_b64, hash_b64);
    if (n < 0 || (size_t)n >= sizeof(enc)) {
        err = -EIO;
        goto fail;
    }
    if ((size_t)n + 1 > out_size) {
        err = -ENOSPC;
        goto fail;
    }
    memcpy(out, enc, (size_t)n + 1);
    OPENSSL_cleanse(hash, sizeof(hash));
    return n;

fail:
    OPENSSL_cleanse(hash, sizeof(hash));
    return err;
}

/*
 * Parses one '$'-terminated (or string-terminated) decimal field in
 * [min, max] written canonically: 1..2 digits, no sign, no leading zero.
 * Advances *s past the field and its '$'.  Returns 0 or PK_EFORMAT.
 */
static int pk__parse_param(const char **s, unsigned min, unsigned max, unsigned *out)
{
    const char *p = *s;
    unsigned v = 0;
    size_t digits = 0;
    while (p[digits] >= '0' && p[digits] <= '9') {
        if (digits == 2)
            return PK_EFORMAT;
        v = v * 10 + (unsigned)(p[digits] - '0');
        digits++;
    }
    if (digits == 0 || (digits > 1 && p[0] == '0') || p[digits] != '$' || v < min || v > max)
        return PK_EFORMAT;
    *s = p + digits + 1;
    *out = v;
    return 0;
}

/* Decodes a base64url field of exactly want bytes ending at '$' or end. */
static int pk__parse_b64(const char **s, char end, uint8_t *out, size_t want)
{
    const char *p = *s;
    const char *stop = strchr(p, end);
    if (stop == NULL)
        return PK_EFORMAT;
    /* Larger than any field we accept; a longer one fails with -ENOSPC. */
    uint8_t buf[64];
    int n = pk_b64url_decode(p, (size_t)(stop - p), buf, sizeof(buf));
    if (n < 0 || (size_t)n != want)
        return PK_EFORMAT;
    memcpy(out, buf, want);
    *s = end == '\0' ? stop : stop + 1;
    return 0;
}

int pk_password_verify(const char *password, size_t len, const char *encoded)
{
    uint8_t salt[PK__SALT_BYTES];
    uint8_t want[PK__HASH_BYTES];
    uint8_t got[PK__HASH_BYTES];
    unsigned log2n, r, p;
    int err;

    if (encoded == NULL || strnlen(encoded, PK_PASSWORD_ENCODED_BYTES_MAX + 1) > PK_PASSWORD_ENCODED_BYTES_MAX)
        return PK_EFORMAT;
    const char *s = encoded;
    if (strncmp(s, pk__scrypt_prefix, sizeof(pk__scrypt_prefix) - 1) != 0)
        return PK_EFORMAT;
    s += sizeof(pk__scrypt_prefix) - 1;
    if (pk__parse_param(&s, PK__LOG2N_MIN, PK__LOG2N_MAX, &log2n) != 0 ||
        pk__parse_param(&s, PK__R_MIN, PK__R_MAX, &r) != 0 || pk__parse_param(&s, PK__P_MIN, PK__P_MAX, &p) != 0)
        return PK_EFORMAT;
    if (pk__parse_b64(&s, '$', salt, sizeof(salt)) != 0 || pk__parse_b64(&s, '\0', want, sizeof(want)) != 0)
        return PK_EFORMAT;
    /*
     * In-bounds parameters can still ask for more memory than this build
     * grants one hash (log2 N 20 with r 16 is 2 GiB): such a hash is not one
     * this build can check, which is a format answer, not an I/O failure.
     */
    if (pk__scrypt_mem_bytes(log2n, r, p) > PK__SCRYPT_MAXMEM_BYTES)
        return PK_EFORMAT;

    err = pk__scrypt(password, len, salt, log2n, r, p, got);
    if (err != 0)
        goto done;
    err = CRYPTO_memcmp(got, want, sizeof(got)) == 0 ? 0 : PK_EAUTH;

done:
    OPENSSL_cleanse(got, sizeof(got));
    return err;
}
