/*
 * Users: the record, its validation rules (pure functions, no I/O) and its
 * stored encoding.
 */
#ifndef PICKPLE_USER_H
#define PICKPLE_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pickple/common.h"
#include "pickple/out.h"
#include "pickple/password.h"

#define PK_USERNAME_BYTES_MIN 3
#define PK_USERNAME_BYTES_MAX 32
#define PK_EMAIL_BYTES_MAX 254

typedef struct pk_user {
    uint64_t u_id;
    int64_t u_created_ms;
    pk_role_t u_role;
    uint8_t u_username_len;
    uint8_t u_email_len;
    char u_username[PK_USERNAME_BYTES_MAX + 1];
    char u_email[PK_EMAIL_BYTES_MAX + 1];
    char u_pwhash[PK_PASSWORD_ENCODED_BYTES_MAX]; /* NUL-terminated */
} pk_user_t;

/* 3..32 bytes of [a-z0-9_.-].  Returns true when valid. */
bool pk_user_username_valid(const char *s, size_t len);

/* 3..254 printable ASCII bytes without spaces, exactly one '@' with
 * something on both sides. */
bool pk_user_email_valid(const char *s, size_t len);

/* 8..128 bytes (any bytes: a password is never interpreted). */
bool pk_user_password_valid(size_t len);

/* The shard owning a username: FNV-1a of its bytes modulo nshards. */
unsigned pk_user_shard_of_name(const char *name, size_t len, unsigned nshards);

/*
 * Stored form: a MessagePack array [1 (schema), id, created_ms, role,
 * username, email, pwhash].  encode appends to out and returns 0 or -ENOSPC;
 * decode returns 0 or PK_EFORMAT for anything that is not exactly such a
 * record (wrong types, lengths over the limits, trailing bytes), never
 * reading past len.
 */
int pk_user_encode(const pk_user_t *u, pk_buf_t *out) PK_MUST_USE;
int pk_user_decode(const void *data, size_t len, pk_user_t *u) PK_MUST_USE;

/* Renders the API's user document (never the password hash). */
void pk_user_render(const pk_user_t *u, pk_out_t *o);

#endif
