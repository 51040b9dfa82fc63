/*
 * Salted slow password hashes (scrypt from OpenSSL's EVP_PBE_scrypt).
 *
 * These calls take about 90 ms of CPU on purpose: call them only
 * from the worker pool (pickple/worker.h), never on an actor thread.
 *
 * Encoded form (self-describing so parameters can be raised later):
 *   "scrypt$<log2 N>$<r>$<p>$<salt base64url>$<hash base64url>"
 */
#ifndef PICKPLE_PASSWORD_H
#define PICKPLE_PASSWORD_H

#include <stddef.h>

#include "pickple/common.h"

#define PK_PASSWORD_ENCODED_BYTES_MAX 160
#define PK_PASSWORD_BYTES_MIN 8
#define PK_PASSWORD_BYTES_MAX 128

/*
 * Hashes password (len bytes, any bytes allowed) with a fresh 16-byte salt
 * from RAND_bytes.  Writes the NUL-terminated encoded form to out.
 * Returns its length, -ENOSPC, or -EIO when OpenSSL fails.
 */
int pk_password_hash(const char *password, size_t len, char *out, size_t out_size) PK_MUST_USE;

/*
 * Checks password against an encoded hash in constant time.
 * Returns 0 on a match, PK_EAUTH on a mismatch, PK_EFORMAT when encoded is
 * not a hash this build understands.
 */
int pk_password_verify(const char *password, size_t len, const char *encoded) PK_MUST_USE;

#endif
