/*
 * Document writer: one sequence of calls renders the same document as JSON
 * text or as MessagePack (the contract's two body formats).  Maps and arrays
 * declare their element count up front because MessagePack needs it; the
 * JSON backend ignores it but asserts it matched at close.
 *
 * The writer appends to a growable byte buffer bounded by
 * PK_OUT_BYTES_MAX; past it the writer is marked failed and pk_out_finish()
 * returns -ENOSPC, so a bug never turns into unbounded memory.  Nesting
 * containers deeper than PK_OUT_DEPTH_MAX fails the same way: the extra
 * levels are only counted so that their pk_out_end() calls still match.
 * A failure is sticky: later calls write nothing and pk_out_finish()
 * returns the first error.
 */
#ifndef PICKPLE_OUT_H
#define PICKPLE_OUT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pickple/common.h"

#define PK_OUT_BYTES_MAX (4u << 20)
#define PK_OUT_DEPTH_MAX 16

typedef enum pk_fmt { PK_FMT_JSON = 0, PK_FMT_MSGPACK = 1 } pk_fmt_t;

/* A heap buffer; b_data is owned by whoever holds the struct. */
typedef struct pk_buf {
    char *b_data;
    size_t b_len;
    size_t b_cap;
} pk_buf_t;

/* Appends; returns 0 or -ENOMEM/-ENOSPC (past PK_OUT_BYTES_MAX). */
int pk_buf_append(pk_buf_t *b, const void *data, size_t len) PK_MUST_USE;
void pk_buf_free(pk_buf_t *b);
/* Makes room for extra more bytes (b_len unchanged); 0 or -ENOMEM/-ENOSPC
 * (past PK_OUT_BYTES_MAX). */
int pk_buf_reserve(pk_buf_t *b, size_t extra) PK_MUST_USE;

typedef struct pk_out {
    pk_fmt_t o_fmt;
    pk_buf_t o_buf;
    msgpack_packer o_pk;
    int o_err; /* first error; nothing is written after it */
    unsigned o_depth;
    unsigned o_over; /* containers open past PK_OUT_DEPTH_MAX (not recorded) */
    uint32_t o_count[PK_OUT_DEPTH_MAX];    /* elements written at each depth */
    uint32_t o_expected[PK_OUT_DEPTH_MAX]; /* declared counts */
    bool o_is_map[PK_OUT_DEPTH_MAX];
    bool o_after_key;
} pk_out_t;

void pk_out_init(pk_out_t *o, pk_fmt_t fmt);
void pk_out_map(pk_out_t *o, uint32_t pairs);
void pk_out_array(pk_out_t *o, uint32_t items);
void pk_out_end(pk_out_t *o); /* closes the innermost map or array */
void pk_out_key(pk_out_t *o, const char *key);
void pk_out_str(pk_out_t *o, const char *s, size_t len);
void pk_out_cstr(pk_out_t *o, const char *s);
void pk_out_u64(pk_out_t *o, uint64_t v);
void pk_out_i64(pk_out_t *o, int64_t v);
void pk_out_bool(pk_out_t *o, bool v);
void pk_out_null(pk_out_t *o);
/* An RFC 3339 UTC string of Unix epoch milliseconds. */
void pk_out_time(pk_out_t *o, int64_t ms);
/* Appends one value already rendered in this writer's format (both JSON and
 * MessagePack values concatenate). */
void pk_out_raw(pk_out_t *o, const char *data, size_t len);

/*
 * Takes the rendered bytes: moves the buffer into *out (caller frees with
 * pk_buf_free).  Returns 0, or the first error seen (the buffer is freed).
 */
int pk_out_finish(pk_out_t *o, pk_buf_t *out) PK_MUST_USE;
void pk_out_discard(pk_out_t *o);

/* Renders {"error":{"code":..,"message":..}} into out.  Returns 0 or error. */
int pk_out_error(pk_fmt_t fmt, const char *code, const char *message, pk_buf_t *out) PK_MUST_USE;

#endif
