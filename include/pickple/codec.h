/*
 * Strict readers over MessagePack objects for record decoders.  Each reader
 * checks the type and the bounds and returns PK_EFORMAT otherwise, so a
 * truncated or corrupted record is an error, never a crash.
 */
#ifndef PICKPLE_CODEC_H
#define PICKPLE_CODEC_H

#include <msgpack.h>
#include <stdint.h>
#include <string.h>

#include "pickple/common.h"
#include "pickple/out.h"

/* Parses exactly one object filling all len bytes; unpacked must be
 * destroyed by the caller (msgpack_unpacked_destroy) on success.  The bytes
 * pass pk_mp_check() first (depth PK_MP_DEPTH_MAX), so a corrupted length
 * is PK_EFORMAT, never a reservation sized by the claim. */
int pk_codec_unpack(const void *data, size_t len, msgpack_unpacked *unpacked) PK_MUST_USE;

/* Array of exactly n elements at the root. */
int pk_codec_array(const msgpack_object *o, uint32_t n, msgpack_object **items) PK_MUST_USE;
int pk_codec_u64(const msgpack_object *o, uint64_t max, uint64_t *out) PK_MUST_USE;
int pk_codec_i64(const msgpack_object *o, int64_t *out) PK_MUST_USE;
/* Copies a string of min..max bytes into dst (size max + 1) with a NUL. */
int pk_codec_str(const msgpack_object *o, size_t min, size_t max, char *dst, size_t *len) PK_MUST_USE;

/* Packs into a pk_buf_t (the packer's data is the buffer).  Each write
 * returns 0 or the buffer's error; a failed write appends nothing, but a
 * later, smaller one may still fit: records use pk_codec_rec_begin(). */
void pk_codec_packer_init(msgpack_packer *pk, pk_buf_t *buf);
/* Packs a str header and its bytes.  Returns 0 or the first write error. */
int pk_codec_pack_str(msgpack_packer *pk, const char *s, size_t len);

/*
 * One record appended to a pk_buf_t whole or not at all.  After the first
 * write that does not fit (-ENOSPC past PK_OUT_BYTES_MAX, -ENOMEM) every
 * later write through the packer is refused too, so no smaller write can
 * leave a record with a hole in it; pk_codec_rec_end() then takes the
 * buffer back to its length before the record.  The record lives on the
 * encoder's stack and must outlive the packer's use.
 */
typedef struct pk_codec_rec {
    pk_buf_t *cr_buf;
    size_t cr_start; /* cr_buf->b_len before the record */
    int cr_err;      /* first write error, 0 while every write fit */
} pk_codec_rec_t;

/* Starts a record at the end of buf and points pk at it. */
void pk_codec_rec_begin(pk_codec_rec_t *rec, msgpack_packer *pk, pk_buf_t *buf);
/* Returns 0 when the whole record was appended, else the first write error
 * with the buffer back at its length before the record. */
int pk_codec_rec_end(pk_codec_rec_t *rec) PK_MUST_USE;

/*
 * Direct writers for hot records: each writes one MessagePack value at p,
 * in the smallest form (the one msgpack-c's packer picks), and returns the
 * end.  The caller has reserved the room first (pk_buf_reserve): at most
 * PK_MPW_NUM_MAX bytes for a number or an array header, PK_MPW_STR_HDR_MAX
 * plus len for a string.
 */
#define PK_MPW_NUM_MAX 9
#define PK_MPW_STR_HDR_MAX 5

static inline uint8_t *pk__mpw_be(uint8_t *p, uint8_t tag, uint64_t v, unsigned bytes)
{
    *p++ = tag;
    for (unsigned i = bytes; i-- > 0;)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static inline uint8_t *pk_mpw_uint(uint8_t *p, uint64_t v)
{
    if (v < 0x80) {
        *p = (uint8_t)v;
        return p + 1;
    }
    if (v < 0x100)
        return pk__mpw_be(p, 0xcc, v, 1);
    if (v < 0x10000)
        return pk__mpw_be(p, 0xcd, v, 2);
    if (v < 0x100000000ull)
        return pk__mpw_be(p, 0xce, v, 4);
    return pk__mpw_be(p, 0xcf, v, 8);
}

static inline uint8_t *pk_mpw_int(uint8_t *p, int64_t v)
{
    if (v >= 0)
        return pk_mpw_uint(p, (uint64_t)v);
    if (v >= -32) {
        *p = (uint8_t)(int8_t)v; /* negative fixint */
        return p + 1;
    }
    if (v >= INT8_MIN)
        return pk__mpw_be(p, 0xd0, (uint64_t)v, 1);
    if (v >= INT16_MIN)
        return pk__mpw_be(p, 0xd1, (uint64_t)v, 2);
    if (v >= INT32_MIN)
        return pk__mpw_be(p, 0xd2, (uint64_t)v, 4);
    return pk__mpw_be(p, 0xd3, (uint64_t)v, 8);
}

static inline uint8_t *pk_mpw_array(uint8_t *p, uint32_t n)
{
    if (n < 16) {
        *p = (uint8_t)(0x90 | n);
        return p + 1;
    }
    return n < 0x10000 ? pk__mpw_be(p, 0xdc, n, 2) : pk__mpw_be(p, 0xdd, n, 4);
}

static inline uint8_t *pk_mpw_str(uint8_t *p, const char *s, size_t len)
{
    if (len < 32)
        *p++ = (uint8_t)(0xa0 | len);
    else if (len < 0x100)
        p = pk__mpw_be(p, 0xd9, len, 1);
    else if (len < 0x10000)
        p = pk__mpw_be(p, 0xda, len, 2);
    else
        p = pk__mpw_be(p, 0xdb, len, 4);
    memcpy(p, s, len);
    return p + len;
}

#endif
