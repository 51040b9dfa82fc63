/*
 * Unit tests for the record writer of src/store/codec.c (pk_codec_rec_*)
 * and the encoders built on it (users, products, sales): a record is
 * appended whole or not at all, whatever room is left before
 * PK_OUT_BYTES_MAX.  Plain program: prints one line per failed check and a
 * summary, exits non-zero when anything failed.
 */
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickple/codec.h"
#include "pickple/product.h"
#include "pickple/sale.h"
#include "pickple/user.h"

#include "check.h"

typedef int (*encode_fn)(const void *rec, pk_buf_t *out);

static int enc_user(const void *rec, pk_buf_t *out) { return pk_user_encode(rec, out); }
static int enc_product(const void *rec, pk_buf_t *out) { return pk_product_encode(rec, out); }
static int enc_sale(const void *rec, pk_buf_t *out) { return pk_sale_encode(rec, out); }

/*
 * Encodes rec at the end of a buffer with room for 0..len+2 more bytes
 * before PK_OUT_BYTES_MAX (len: the record's size).  With room it must
 * append exactly the reference bytes; without, return -ENOSPC and leave
 * the buffer as it was.
 */
static void check_whole_or_nothing(const char *what, encode_fn enc, const void *rec)
{
    pk_buf_t ref = {NULL, 0, 0}, b = {NULL, 0, 0};
    CHECK_RC(enc(rec, &ref), 0);
    const size_t len = ref.b_len;
    b.b_data = malloc(PK_OUT_BYTES_MAX);
    b.b_cap = PK_OUT_BYTES_MAX;
    memset(b.b_data, 0x5a, PK_OUT_BYTES_MAX);
    unsigned bad = 0;
    for (size_t room = 0; room <= len + 2; room++) {
        size_t before = PK_OUT_BYTES_MAX - room;
        b.b_len = before;
        int rc = enc(rec, &b);
        int ok = room >= len ? rc == 0 && b.b_len == before + len && memcmp(b.b_data + before, ref.b_data, len) == 0
                             : rc == -ENOSPC && b.b_len == before;
        if (!ok && bad++ == 0)
            printf("  %s: %zu bytes of room for a %zu-byte record -> rc %d, appended %zu\n", what, room, len, rc,
                   b.b_len - before);
    }
    CHECK(bad == 0);
    /* A record appends after what the buffer holds, and a second fits. */
    b.b_len = 3;
    CHECK_RC(enc(rec, &b), 0);
    CHECK_RC(enc(rec, &b), 0);
    CHECK(b.b_len == 3 + 2 * len && memcmp(b.b_data + 3, ref.b_data, len) == 0 &&
          memcmp(b.b_data + 3 + len, ref.b_data, len) == 0);
    free(b.b_data);
    pk_buf_free(&ref);
}

static void test_encoders(void)
{
    pk_user_t u;
    memset(&u, 0, sizeof(u));
    u.u_id = 42;
    u.u_created_ms = 1764000000123;
    u.u_role = PK_ROLE_SELLER;
    u.u_username_len = 5;
    memcpy(u.u_username, "alice", 5);
    u.u_email_len = 17;
    memcpy(u.u_email, "alice@example.com", 17);
    strcpy(u.u_pwhash, "scrypt$15$8$1$c2FsdA$aGFzaA");
    check_whole_or_nothing("user", enc_user, &u);

    pk_product_t p;
    memset(&p, 0, sizeof(p));
    p.p_id = 7;
    p.p_seller_id = 42;
    p.p_price = 1999;
    p.p_stock = 10;
    p.p_added_total = 10;
    p.p_created_ms = p.p_updated_ms = 1764000000123;
    p.p_name_len = 6;
    memcpy(p.p_name, "widget", 6);
    p.p_description_len = 300; /* a str16 length among the fields */
    memset(p.p_description, 'd', 300);
    check_whole_or_nothing("product", enc_product, &p);

    pk_sale_t s;
    memset(&s, 0, sizeof(s));
    s.s_id = 9;
    s.s_product_id = 7;
    s.s_seller_id = 42;
    s.s_price = 999;
    s.s_quantity = 5;
    s.s_remaining = 5;
    s.s_per_user_limit = 1;
    s.s_starts_ms = 1764000000000;
    s.s_ends_ms = 1764003600000;
    s.s_created_ms = 1763990000000;
    check_whole_or_nothing("sale", enc_sale, &s);
}

/* The record writer itself: the first failed write makes every later one
 * fail, so a smaller write can never land after a bigger one was refused. */
static void test_rec_sticky(void)
{
    pk_buf_t b = {NULL, 0, 0};
    b.b_data = malloc(PK_OUT_BYTES_MAX);
    b.b_cap = PK_OUT_BYTES_MAX;
    b.b_len = PK_OUT_BYTES_MAX - 4;
    pk_codec_rec_t rec;
    msgpack_packer pk;
    pk_codec_rec_begin(&rec, &pk, &b);
    CHECK_RC(msgpack_pack_array(&pk, 2), 0); /* 1 byte: fits */
    CHECK_RC(pk_codec_pack_str(&pk, "hello", 5), -ENOSPC); /* header fits, the 5 bytes do not */
    size_t at = b.b_len;
    CHECK(at == PK_OUT_BYTES_MAX - 2);
    CHECK_RC(msgpack_pack_uint64(&pk, 1), -ENOSPC); /* 1 byte would fit: refused */
    CHECK(b.b_len == at);
    CHECK_RC(pk_codec_rec_end(&rec), -ENOSPC);
    CHECK(b.b_len == PK_OUT_BYTES_MAX - 4); /* back to before the record */

    b.b_len = 0;
    pk_codec_rec_begin(&rec, &pk, &b);
    CHECK_RC(msgpack_pack_array(&pk, 1), 0);
    CHECK_RC(pk_codec_pack_str(&pk, "hello", 5), 0);
    CHECK_RC(pk_codec_rec_end(&rec), 0);
    CHECK(b.b_len == 7 && memcmp(b.b_data, "\x91\xa5hello", 7) == 0);
    free(b.b_data);
}

/* Bytes msgpack-c's packer writes for one value, into ref. */
static size_t packed(pk_buf_t *ref, int kind, int64_t i, uint64_t u, const char *str, size_t len)
{
    msgpack_packer pk;
    ref->b_len = 0;
    pk_codec_packer_init(&pk, ref);
    if (kind == 0)
        msgpack_pack_uint64(&pk, u);
    else if (kind == 1)
        msgpack_pack_int64(&pk, i);
    else if (kind == 2)
        msgpack_pack_array(&pk, (size_t)u);
    else
        CHECK_RC(pk_codec_pack_str(&pk, str, len), 0);
    return ref->b_len;
}

/* The direct writers pick the same smallest forms as the packer, at every
 * boundary. */
static void test_direct_writers(void)
{
    static const uint64_t us[] = {0, 1, 127, 128, 255, 256, 65535, 65536, 0xffffffffull, 0x100000000ull, UINT64_MAX};
    static const int64_t is[] = {0,      1,       127,        128,           255,       256,      65535,
                                 65536,  -1,      -32,        -33,           -128,      -129,     -32768,
                                 -32769, INT32_MIN, (int64_t)INT32_MIN - 1, INT64_MIN, INT64_MAX};
    static const size_t lens[] = {0, 1, 31, 32, 255, 256, 65535, 65536};
    static const uint64_t arrays[] = {0, 15, 16, 65535, 65536};
    pk_buf_t ref = {0};
    uint8_t mine[16];
    char *text = malloc(65536 + PK_MPW_STR_HDR_MAX);
    uint8_t *big = malloc(65536 + PK_MPW_STR_HDR_MAX);
    memset(text, 'x', 65536);
    for (size_t k = 0; k < PK_ARRAY_LEN(us); k++) {
        size_t n = (size_t)(pk_mpw_uint(mine, us[k]) - mine);
        CHECK(n == packed(&ref, 0, 0, us[k], NULL, 0) && memcmp(mine, ref.b_data, n) == 0);
    }
    for (size_t k = 0; k < PK_ARRAY_LEN(is); k++) {
        size_t n = (size_t)(pk_mpw_int(mine, is[k]) - mine);
        CHECK(n <= PK_MPW_NUM_MAX && n == packed(&ref, 1, is[k], 0, NULL, 0) && memcmp(mine, ref.b_data, n) == 0);
    }
    for (size_t k = 0; k < PK_ARRAY_LEN(arrays); k++) {
        size_t n = (size_t)(pk_mpw_array(mine, (uint32_t)arrays[k]) - mine);
        CHECK(n == packed(&ref, 2, 0, arrays[k], NULL, 0) && memcmp(mine, ref.b_data, n) == 0);
    }
    for (size_t k = 0; k < PK_ARRAY_LEN(lens); k++) {
        size_t n = (size_t)(pk_mpw_str(big, text, lens[k]) - big);
        CHECK(n <= lens[k] + PK_MPW_STR_HDR_MAX && n == packed(&ref, 3, 0, 0, text, lens[k]) &&
              memcmp(big, ref.b_data, n) == 0);
    }
    free(text);
    free(big);
    pk_buf_free(&ref);
}

int main(void)
{
    test_encoders();
    test_rec_sticky();
    test_direct_writers();
    return CHECK_DONE("test_codec");
}
