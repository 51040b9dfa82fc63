/*
 * Strict readers over MessagePack objects for record decoders.  Each reader
 * checks the type and the bounds and returns PK_EFORMAT otherwise, so a
 * truncated or corrupted record is an error, never a crash.
 */
#ifndef PICKPLE_CODEC_H
#define PICKPLE_CODEC_H

#include <msgpack.h>
#include <stdint.h>

#include "pickple/common.h"
#include "pickple/out.h"

/* Parses exactly one object filling all len bytes; unpacked must be
 * destroyed by the caller (msgpack_unpacked_destroy) on success. */
int pk_codec_unpack(const void *data, size_t len, msgpack_unpacked *unpacked) PK_MUST_USE;

/* Array of exactly n elements at the root. */
int pk_codec_array(const msgpack_object *o, uint32_t n, msgpack_object **items) PK_MUST_USE;
int pk_codec_u64(const msgpack_object *o, uint64_t max, uint64_t *out) PK_MUST_USE;
int pk_codec_i64(const msgpack_object *o, int64_t *out) PK_MUST_USE;
/* Copies a string of min..max bytes into dst (size max + 1) with a NUL. */
int pk_codec_str(const msgpack_object *o, size_t min, size_t max, char *dst, size_t *len) PK_MUST_USE;

/* Packs into a pk_buf_t (the packer's data is the buffer). */
void pk_codec_packer_init(msgpack_packer *pk, pk_buf_t *buf);
void pk_codec_pack_str(msgpack_packer *pk, const char *s, size_t len);

#endif
