/* Strict MessagePack readers shared by the record codecs. */
#include <string.h>

#include "pickple/codec.h"
#include "pickple/mpcheck.h"

int pk_codec_unpack(const void *data, size_t len, msgpack_unpacked *unpacked)
{
    size_t off = 0;
    /* msgpack-c reserves memory for a claimed element count before it checks
     * the bytes: a corrupted length must be refused before it gets there. */
    if (pk_mp_check(data, len, PK_MP_DEPTH_MAX) != 0)
        return PK_EFORMAT;
    msgpack_unpacked_init(unpacked);
    msgpack_unpack_return r = msgpack_unpack_next(unpacked, data, len, &off);
    if (r != MSGPACK_UNPACK_SUCCESS || off != len) {
        msgpack_unpacked_destroy(unpacked);
        return PK_EFORMAT;
    }
    return 0;
}

int pk_codec_array(const msgpack_object *o, uint32_t n, msgpack_object **items)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != n)
        return PK_EFORMAT;
    *items = o->via.array.ptr;
    return 0;
}

int pk_codec_u64(const msgpack_object *o, uint64_t max, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return PK_EFORMAT;
    *out = o->via.u64;
    return 0;
}

int pk_codec_i64(const msgpack_object *o, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *out = (int64_t)o->via.u64;
        return 0;
    }
    return PK_EFORMAT;
}

int pk_codec_str(const msgpack_object *o, size_t min, size_t max, char *dst, size_t *len)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size < min || o->via.str.size > max)
        return PK_EFORMAT;
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
    if (len != NULL)
        *len = o->via.str.size;
    return 0;
}

static int pk__buf_write(void *data, const char *buf, size_t len)
{
    return pk_buf_append(data, buf, len);
}

void pk_codec_packer_init(msgpack_packer *pk, pk_buf_t *buf)
{
    msgpack_packer_init(pk, buf, pk__buf_write);
}

int pk_codec_pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    int rc = msgpack_pack_str(pk, len);
    return rc != 0 ? rc : msgpack_pack_str_body(pk, s, len);
}

static int pk__rec_write(void *data, const char *buf, size_t len)
{
    pk_codec_rec_t *rec = data;
    if (rec->cr_err == 0)
        rec->cr_err = pk_buf_append(rec->cr_buf, buf, len);
    return rec->cr_err;
}

void pk_codec_rec_begin(pk_codec_rec_t *rec, msgpack_packer *pk, pk_buf_t *buf)
{
    rec->cr_buf = buf;
    rec->cr_start = buf->b_len;
    rec->cr_err = 0;
    msgpack_packer_init(pk, rec, pk__rec_write);
}

int pk_codec_rec_end(pk_codec_rec_t *rec)
{
    if (rec->cr_err == 0)
        return 0;
    rec->cr_buf->b_len = rec->cr_start;
    return rec->cr_err;
}
