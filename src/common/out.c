/* JSON / MessagePack document writer. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickple/out.h"

#define PK__OUT_FIRST_CAP 1024

int pk_buf_reserve(pk_buf_t *b, size_t extra)
{
    if (extra > PK_OUT_BYTES_MAX || b->b_len + extra > PK_OUT_BYTES_MAX)
        return -ENOSPC;
    if (b->b_len + extra > b->b_cap) {
        size_t cap = b->b_cap ? b->b_cap : 256;
        while (cap < b->b_len + extra)
            cap *= 2;
        char *p = realloc(b->b_data, cap);
        if (p == NULL)
            return -ENOMEM;
        b->b_data = p;
        b->b_cap = cap;
    }
    return 0;
}

int pk_buf_append(pk_buf_t *b, const void *data, size_t len)
{
    int rc = pk_buf_reserve(b, len);
    if (rc != 0)
        return rc;
    memcpy(b->b_data + b->b_len, data, len);
    b->b_len += len;
    return 0;
}

void pk_buf_free(pk_buf_t *b)
{
    free(b->b_data);
    b->b_data = NULL;
    b->b_len = b->b_cap = 0;
}

/* Records the first error; the writer stays failed. */
static void pk__fail(pk_out_t *o, int err)
{
    if (o->o_err == 0)
        o->o_err = err;
}

static int pk__pack_write(void *data, const char *buf, size_t len)
{
    pk_out_t *o = data;
    if (o->o_err != 0)
        return o->o_err; /* sticky: no smaller write lands after a failed one */
    int rc = pk_buf_append(&o->o_buf, buf, len);
    pk__fail(o, rc);
    return rc;
}

void pk_out_init(pk_out_t *o, pk_fmt_t fmt)
{
    memset(o, 0, sizeof(*o));
    o->o_fmt = fmt;
    msgpack_packer_init(&o->o_pk, o, pk__pack_write);
}

static inline void pk__raw(pk_out_t *o, const char *s, size_t len)
{
    pk_buf_t *b = &o->o_buf;
    /* Most writes are a few bytes into room already there. */
    if (PK_LIKELY(o->o_err == 0 && b->b_len + len <= b->b_cap && len <= PK_OUT_BYTES_MAX)) {
        memcpy(b->b_data + b->b_len, s, len);
        b->b_len += len;
        return;
    }
    if (o->o_err != 0)
        return;
    if (b->b_cap == 0 && len <= PK__OUT_FIRST_CAP) {
        /* Room for a typical document at once (an order of one item is
         * about 300 bytes of JSON, with shipping and items more), rather
         * than 256 bytes grown again and again. */
        if ((b->b_data = malloc(PK__OUT_FIRST_CAP)) == NULL) {
            pk__fail(o, -ENOMEM);
            return;
        }
        b->b_cap = PK__OUT_FIRST_CAP;
    }
    pk__fail(o, pk_buf_append(b, s, len));
}

/* Before every value (JSON): the separator owed to the enclosing container. */
static void pk__value_begin(pk_out_t *o)
{
    /* Inside a level past PK_OUT_DEPTH_MAX nothing is recorded (the writer
     * has failed already). */
    if (o->o_depth > 0 && !o->o_after_key && o->o_over == 0) {
        if (o->o_count[o->o_depth - 1]++ > 0 && o->o_fmt == PK_FMT_JSON)
            pk__raw(o, ",", 1);
    }
    o->o_after_key = false;
}

static void pk__open(pk_out_t *o, uint32_t n, bool map)
{
    pk__value_begin(o);
    if (o->o_over > 0 || o->o_depth >= PK_OUT_DEPTH_MAX) {
        /* Too deep: fail, and count the level so that its pk_out_end()
         * closes it instead of one of the recorded levels. */
        pk__fail(o, -ENOSPC);
        o->o_over++;
        return;
    }
    o->o_expected[o->o_depth] = n;
    o->o_count[o->o_depth] = 0;
    o->o_is_map[o->o_depth] = map;
    o->o_depth++;
    if (o->o_fmt == PK_FMT_JSON)
        pk__raw(o, map ? "{" : "[", 1);
    else if (map)
        msgpack_pack_map(&o->o_pk, n);
    else
        msgpack_pack_array(&o->o_pk, n);
}

void pk_out_map(pk_out_t *o, uint32_t pairs)
{
    pk__open(o, pairs, true);
}

void pk_out_array(pk_out_t *o, uint32_t items)
{
    pk__open(o, items, false);
}

void pk_out_end(pk_out_t *o)
{
    if (o->o_over > 0) {
        o->o_over--;
        o->o_after_key = false;
        return;
    }
    assert(o->o_depth > 0);
    assert(!o->o_after_key);
    if (o->o_depth == 0) { /* an unmatched end (a bug): fail, never wrap */
        pk__fail(o, -EINVAL);
        return;
    }
    o->o_depth--;
    /* A map counts its keys: values follow a key and are not counted. */
    assert(o->o_count[o->o_depth] == o->o_expected[o->o_depth]);
    if (o->o_fmt == PK_FMT_JSON)
        pk__raw(o, o->o_is_map[o->o_depth] ? "}" : "]", 1);
}

/* Bytes a JSON string must escape: the quote, the backslash, controls and
 * DEL. */
static inline bool pk__json_plain(unsigned char c)
{
    return c >= 0x20 && c != '"' && c != '\\' && c != 0x7f;
}

/* The quoted text of s, which needs no escape, then tail (":" after a key,
 * else nothing): one copy into room made once, since every order answer
 * has a few dozen keys and strings. */
static void pk__json_quoted(pk_out_t *o, const char *s, size_t len, const char *tail, size_t tail_len)
{
    pk_buf_t *b = &o->o_buf;
    /* Both lengths are checked against the bound before they are added, so
     * the sum cannot wrap. */
    bool small = len <= PK_OUT_BYTES_MAX && tail_len <= 1;
    size_t need = small ? len + 2 + tail_len : 0;
    if (PK_UNLIKELY(o->o_err != 0 || !small || b->b_len + need > b->b_cap)) {
        pk__raw(o, "\"", 1);
        pk__raw(o, s, len);
        pk__raw(o, "\"", 1);
        pk__raw(o, tail, tail_len);
        return;
    }
    char *p = b->b_data + b->b_len;
    *p++ = '"';
    memcpy(p, s, len);
    p += len;
    *p++ = '"';
    memcpy(p, tail, tail_len);
    b->b_len += need;
}

/* s quoted and escaped, then tail (as in pk__json_quoted). */
static void pk__json_string(pk_out_t *o, const char *s, size_t len, const char *tail, size_t tail_len)
{
    static const char hex[] = "0123456789abcdef";
    char esc[6] = {'\\', 'u', '0', '0'};
    size_t i = 0;
    while (i < len && pk__json_plain((unsigned char)s[i]))
        i++;
    if (i == len) { /* the common case: nothing to escape */
        pk__json_quoted(o, s, len, tail, tail_len);
        return;
    }
    size_t run = 0;
    pk__raw(o, "\"", 1);
    for (; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (pk__json_plain(c))
            continue;
        /* Plain bytes go out in runs; only an escape breaks one. */
        pk__raw(o, s + run, i - run);
        run = i + 1;
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            pk__raw(o, esc, 2);
            esc[1] = 'u';
        } else {
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            pk__raw(o, esc, 6);
        }
    }
    pk__raw(o, s + run, len - run);
    pk__raw(o, "\"", 1);
    pk__raw(o, tail, tail_len);
}

void pk_out_key(pk_out_t *o, const char *key)
{
    size_t len = strlen(key);
    if (o->o_over > 0) /* inside a level past the bound: nothing to record */
        return;
    assert(o->o_depth > 0 && !o->o_after_key);
    pk__value_begin(o);
    if (o->o_fmt == PK_FMT_JSON) {
        pk__json_string(o, key, len, ":", 1);
    } else {
        msgpack_pack_str(&o->o_pk, len);
        msgpack_pack_str_body(&o->o_pk, key, len);
    }
    o->o_after_key = true;
}

void pk_out_str(pk_out_t *o, const char *s, size_t len)
{
    pk__value_begin(o);
    if (o->o_fmt == PK_FMT_JSON) {
        pk__json_string(o, s, len, "", 0);
    } else {
        msgpack_pack_str(&o->o_pk, len);
        msgpack_pack_str_body(&o->o_pk, s, len);
    }
}

void pk_out_cstr(pk_out_t *o, const char *s)
{
    pk_out_str(o, s, strlen(s));
}

/* Decimal digits of v, right-aligned in tmp[24]: returns where they start.
 * Every order answer carries a dozen numbers; printf is measurably slower. */
static size_t pk__u64_digits(uint64_t v, char tmp[24])
{
    size_t i = 24;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return i;
}

void pk_out_u64(pk_out_t *o, uint64_t v)
{
    pk__value_begin(o);
    if (o->o_fmt == PK_FMT_JSON) {
        char tmp[24];
        size_t at = pk__u64_digits(v, tmp);
        pk__raw(o, tmp + at, 24 - at);
    } else {
        msgpack_pack_uint64(&o->o_pk, v);
    }
}

void pk_out_i64(pk_out_t *o, int64_t v)
{
    pk__value_begin(o);
    if (o->o_fmt == PK_FMT_JSON) {
        char tmp[24];
        /* The magnitude as unsigned, so INT64_MIN needs no special case. */
        size_t at = pk__u64_digits(v < 0 ? 0 - (uint64_t)v : (uint64_t)v, tmp);
        if (v < 0)
            tmp[--at] = '-';
        pk__raw(o, tmp + at, 24 - at);
    } else {
        msgpack_pack_int64(&o->o_pk, v);
    }
}

void pk_out_bool(pk_out_t *o, bool v)
{
    pk__value_begin(o);
    if (o->o_fmt == PK_FMT_JSON)
        pk__raw(o, v ? "true" : "false", v ? 4 : 5);
    else if (v)
        msgpack_pack_true(&o->o_pk);
    else
        msgpack_pack_false(&o->o_pk);
}

void pk_out_null(pk_out_t *o)
{
    pk__value_begin(o);
    if (o->o_fmt == PK_FMT_JSON)
        pk__raw(o, "null", 4);
    else
        msgpack_pack_nil(&o->o_pk);
}

void pk_out_time(pk_out_t *o, int64_t ms)
{
    char ts[40];
    int n = pk_time_format(ms, ts, sizeof(ts));
    if (n < 0) {
        /* Still one value for the container's count; the writer has failed,
         * so nothing is written. */
        pk__fail(o, n);
        n = 0;
    }
    if (o->o_fmt != PK_FMT_JSON) {
        pk_out_str(o, ts, (size_t)n);
        return;
    }
    /* Digits and separators only: nothing to escape. */
    pk__value_begin(o);
    pk__json_quoted(o, ts, (size_t)n, "", 0);
}

void pk_out_raw(pk_out_t *o, const char *data, size_t len)
{
    pk__value_begin(o);
    pk__raw(o, data, len);
}

int pk_out_finish(pk_out_t *o, pk_buf_t *out)
{
    assert(o->o_err != 0 || o->o_depth == 0);
    if (o->o_err != 0) {
        int rc = o->o_err;
        pk_buf_free(&o->o_buf);
        return rc;
    }
    *out = o->o_buf;
    memset(&o->o_buf, 0, sizeof(o->o_buf));
    return 0;
}

void pk_out_discard(pk_out_t *o)
{
    pk_buf_free(&o->o_buf);
}

int pk_out_error(pk_fmt_t fmt, const char *code, const char *message, pk_buf_t *out)
{
    pk_out_t o;
    pk_out_init(&o, fmt);
    pk_out_map(&o, 1);
    pk_out_key(&o, "error");
    pk_out_map(&o, 2);
    pk_out_key(&o, "code");
    pk_out_cstr(&o, code);
    pk_out_key(&o, "message");
    pk_out_cstr(&o, message);
    pk_out_end(&o);
    pk_out_end(&o);
    return pk_out_finish(&o, out);
}
