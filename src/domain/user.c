/* Users: validation rules, shard placement, stored form and rendering. */
#include <string.h>

#include "pickple/codec.h"
#include "pickple/user.h"

bool pk_user_username_valid(const char *s, size_t len)
{
    if (len < PK_USERNAME_BYTES_MIN || len > PK_USERNAME_BYTES_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

bool pk_user_email_valid(const char *s, size_t len)
{
    size_t at = len, ats = 0;
    if (len < 3 || len > PK_EMAIL_BYTES_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
        if (c == '@') {
            ats++;
            at = i;
        }
    }
    return ats == 1 && at > 0 && at + 1 < len;
}

bool pk_user_password_valid(size_t len)
{
    return len >= PK_PASSWORD_BYTES_MIN && len <= PK_PASSWORD_BYTES_MAX;
}

unsigned pk_user_shard_of_name(const char *name, size_t len, unsigned nshards)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a 64 offset basis */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)name[i];
        h *= 1099511628211ull;
    }
    return (unsigned)(h % nshards);
}

enum { PK__USER_SCHEMA = 1, PK__USER_FIELDS = 7 };

int pk_user_encode(const pk_user_t *u, pk_buf_t *out)
{
    msgpack_packer pk;
    pk_codec_rec_t rec;
    pk_codec_rec_begin(&rec, &pk, out);
    msgpack_pack_array(&pk, PK__USER_FIELDS);
    msgpack_pack_uint64(&pk, PK__USER_SCHEMA);
    msgpack_pack_uint64(&pk, u->u_id);
    msgpack_pack_int64(&pk, u->u_created_ms);
    msgpack_pack_uint64(&pk, (uint64_t)u->u_role);
    pk_codec_pack_str(&pk, u->u_username, u->u_username_len);
    pk_codec_pack_str(&pk, u->u_email, u->u_email_len);
    pk_codec_pack_str(&pk, u->u_pwhash, strlen(u->u_pwhash));
    /* 0 only when the whole record fits; a short buffer is left as it was. */
    return pk_codec_rec_end(&rec);
}

int pk_user_decode(const void *data, size_t len, pk_user_t *u)
{
    msgpack_unpacked up;
    msgpack_object *f;
    uint64_t schema, role;
    size_t n;
    int rc = pk_codec_unpack(data, len, &up);
    if (rc != 0)
        return rc;
    memset(u, 0, sizeof(*u));
    rc = PK_EFORMAT;
    if (pk_codec_array(&up.data, PK__USER_FIELDS, &f) != 0)
        goto fail;
    if (pk_codec_u64(&f[0], UINT32_MAX, &schema) != 0 || schema != PK__USER_SCHEMA)
        goto fail;
    if (pk_codec_u64(&f[1], (1ull << 53) - 1, &u->u_id) != 0 || u->u_id == 0)
        goto fail;
    if (pk_codec_i64(&f[2], &u->u_created_ms) != 0)
        goto fail;
    if (pk_codec_u64(&f[3], PK_ROLE_ADMIN, &role) != 0)
        goto fail;
    u->u_role = (pk_role_t)role;
    if (pk_codec_str(&f[4], PK_USERNAME_BYTES_MIN, PK_USERNAME_BYTES_MAX, u->u_username, &n) != 0)
        goto fail;
    u->u_username_len = (uint8_t)n;
    if (pk_codec_str(&f[5], 0, PK_EMAIL_BYTES_MAX, u->u_email, &n) != 0)
        goto fail;
    u->u_email_len = (uint8_t)n;
    /* A stored user passed these rules when it was created; one that fails
     * them now is corrupted, not a user the API could have made. */
    if (!pk_user_username_valid(u->u_username, u->u_username_len) || !pk_user_email_valid(u->u_email, u->u_email_len))
        goto fail;
    if (pk_codec_str(&f[6], 0, PK_PASSWORD_ENCODED_BYTES_MAX - 1, u->u_pwhash, NULL) != 0)
        goto fail;
    rc = 0;
fail:
    msgpack_unpacked_destroy(&up);
    return rc;
}

void pk_user_render(const pk_user_t *u, pk_out_t *o)
{
    pk_out_map(o, 5);
    pk_out_key(o, "user_id");
    pk_out_u64(o, u->u_id);
    pk_out_key(o, "username");
    pk_out_str(o, u->u_username, u->u_username_len);
    pk_out_key(o, "email");
    pk_out_str(o, u->u_email, u->u_email_len);
    pk_out_key(o, "role");
    pk_out_cstr(o, pk_role_name(u->u_role));
    pk_out_key(o, "created_at");
    pk_out_time(o, u->u_created_ms);
    pk_out_end(o);
}
