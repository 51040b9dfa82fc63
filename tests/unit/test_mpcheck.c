/*
 * Unit tests for the MessagePack pre-check (src/common/mpcheck.c) and for
 * the readers that use it (pk_codec_unpack in src/store/codec.c): every
 * format byte, hostile element counts and lengths, truncation at every
 * byte offset, trailing bytes, nesting at and past the bound, and random
 * documents packed by msgpack-c (all accepted) and random bytes (whatever
 * is accepted, msgpack-c unpacks exactly).  Every check reads from a heap
 * copy of exactly len bytes so that an ASan build catches any read past
 * the end.  Plain program: prints one line per failed check and a summary,
 * exits non-zero when anything failed.
 */
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickple/codec.h"
#include "pickple/mpcheck.h"

#include "check.h"

/* Any allocation over 64 MiB aborts a sanitizer build: pk_codec_unpack
 * must refuse hostile counts before msgpack-c sizes a reservation. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "max_allocation_size_mb=64";
}

const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "max_allocation_size_mb=64";
}

/* pk_mp_check on a heap copy of exactly len bytes. */
static int check_exact(const void *data, size_t len, unsigned depth_max)
{
    void *copy = malloc(len ? len : 1);
    if (copy == NULL)
        abort();
    if (len)
        memcpy(copy, data, len);
    int rc = pk_mp_check(copy, len, depth_max);
    free(copy);
    return rc;
}

/* msgpack-c's verdict on data: 1 when it unpacks exactly one object
 * filling all len bytes.  Only call it on bytes pk_mp_check accepted. */
static int msgpack_accepts(const void *data, size_t len)
{
    msgpack_unpacked up;
    size_t off = 0;
    msgpack_unpacked_init(&up);
    int ok = msgpack_unpack_next(&up, data, len, &off) == MSGPACK_UNPACK_SUCCESS && off == len;
    msgpack_unpacked_destroy(&up);
    return ok;
}

static void check_ok(const void *data, size_t len, int line)
{
    int rc = check_exact(data, len, PK_MP_DEPTH_MAX);
    if (rc == 0 && msgpack_accepts(data, len)) {
        g_passed++;
    } else {
        g_failed++;
        printf("FAIL %s:%d: valid %zu-byte document (first byte 0x%02x) -> %d\n", __FILE__, line, len,
               len ? ((const unsigned char *)data)[0] : 0, rc);
    }
}

static void check_bad(const void *data, size_t len, int line)
{
    int rc = check_exact(data, len, PK_MP_DEPTH_MAX);
    if (rc == PK_EFORMAT) {
        g_passed++;
    } else {
        g_failed++;
        printf("FAIL %s:%d: hostile %zu-byte input (first byte 0x%02x) -> %d, want PK_EFORMAT\n", __FILE__, line,
               len, len ? ((const unsigned char *)data)[0] : 0, rc);
    }
}

#define OK(...)                                                                                                    \
    do {                                                                                                           \
        static const unsigned char d_[] = {__VA_ARGS__};                                                           \
        check_ok(d_, sizeof(d_), __LINE__);                                                                        \
    } while (0)
#define BAD(...)                                                                                                   \
    do {                                                                                                           \
        static const unsigned char d_[] = {__VA_ARGS__};                                                           \
        check_bad(d_, sizeof(d_), __LINE__);                                                                       \
    } while (0)

/* Every prefix of a valid document is refused, and so is the document with
 * any byte appended.  Returns 1 when all hold. */
static int truncations_refused(const unsigned char *doc, size_t len)
{
    int ok = 1;
    for (size_t n = 0; n < len; n++) {
        if (check_exact(doc, n, PK_MP_DEPTH_MAX) != PK_EFORMAT) {
            if (ok)
                printf("  prefix of %zu of %zu bytes accepted\n", n, len);
            ok = 0;
        }
    }
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, doc, len);
    static const unsigned char extra[] = {0x00, 0x90, 0xc0, 0xdd, 0xff};
    for (size_t i = 0; i < sizeof(extra); i++) {
        longer[len] = extra[i];
        if (check_exact(longer, len + 1, PK_MP_DEPTH_MAX) != PK_EFORMAT) {
            printf("  %zu-byte document plus 0x%02x accepted\n", len, extra[i]);
            ok = 0;
        }
    }
    free(longer);
    return ok;
}

/* ---- Every format byte ------------------------------------------------- */

static void test_formats(void)
{
    OK(0x00);
    OK(0x7f);
    OK(0xe0);
    OK(0xff);
    OK(0xc0);
    OK(0xc2);
    OK(0xc3);
    OK(0xcc, 0xff);
    OK(0xcd, 0xff, 0xff);
    OK(0xce, 1, 2, 3, 4);
    OK(0xcf, 1, 2, 3, 4, 5, 6, 7, 8);
    OK(0xd0, 0x80);
    OK(0xd1, 1, 2);
    OK(0xd2, 1, 2, 3, 4);
    OK(0xd3, 1, 2, 3, 4, 5, 6, 7, 8);
    OK(0xca, 0x3f, 0x80, 0, 0);
    OK(0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0);
    OK(0xa0);
    OK(0xa3, 'a', 'b', 'c');
    OK(0xd9, 0);
    OK(0xd9, 2, 'h', 'i');
    OK(0xda, 0, 1, 'x');
    OK(0xdb, 0, 0, 0, 1, 'x');
    OK(0xc4, 0);
    OK(0xc4, 1, 0xc1); /* 0xc1 as payload is data, not a format byte */
    OK(0xc5, 0, 2, 0xc1, 0xc1);
    OK(0xc6, 0, 0, 0, 1, 0xc1);
    OK(0xd4, 1, 0xc1);
    OK(0xd5, 1, 0xc1, 2);
    OK(0xd6, 1, 1, 2, 3, 4);
    OK(0xd7, 1, 1, 2, 3, 4, 5, 6, 7, 8);
    OK(0xd8, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    OK(0xc7, 0, 1);
    OK(0xc7, 2, 1, 0xc1, 0xc1);
    OK(0xc8, 0, 1, 1, 0xaa);
    OK(0xc9, 0, 0, 0, 1, 1, 0xaa);
    OK(0x90);
    OK(0x80);
    OK(0x93, 1, 2, 3);
    OK(0x82, 0xa1, 'a', 1, 0xa1, 'b', 0x90);
    OK(0xdc, 0, 0);
    OK(0xdc, 0, 2, 0xc0, 0xc0);
    OK(0xdd, 0, 0, 0, 1, 0xc0);
    OK(0xde, 0, 1, 1, 2);
    OK(0xdf, 0, 0, 0, 1, 1, 2);
    /* Map keys of any type, as the format allows. */
    OK(0x81, 0x90, 0x80);

    /* The one byte the format never uses, anywhere a header is expected. */
    BAD(0xc1);
    BAD(0x91, 0xc1);
    BAD(0x81, 0xc1, 0x01);
    BAD(0x81, 0x01, 0xc1);
    /* Empty input. */
    check_bad("", 0, __LINE__);
    /* Headers cut short. */
    BAD(0xcc);
    BAD(0xcd, 0xff);
    BAD(0xcf, 1, 2, 3, 4, 5, 6, 7);
    BAD(0xcb, 0x3f);
    BAD(0xd9);
    BAD(0xda, 0);
    BAD(0xdb, 0, 0, 0);
    BAD(0xc6, 0, 0);
    BAD(0xc7, 0);    /* ext 8 without its type byte */
    BAD(0xc9, 0, 0, 0, 0);
    BAD(0xd8, 1, 1, 2, 3);
    BAD(0xdc, 0);
    BAD(0xdd, 0, 0, 0);
    BAD(0xdf, 0, 0);
}

/* ---- Hostile counts and lengths ---------------------------------------- */

static void test_hostile_counts(void)
{
    /* The 5-byte body of the report: an array claiming 2^31 - 1 elements. */
    BAD(0xdd, 0x7f, 0xff, 0xff, 0xff);
    BAD(0xdd, 0xff, 0xff, 0xff, 0xff);
    BAD(0xdf, 0xff, 0xff, 0xff, 0xff);
    BAD(0xdf, 0x7f, 0xff, 0xff, 0xff, 0x01, 0x02);
    BAD(0xdc, 0xff, 0xff);
    BAD(0xde, 0xff, 0xff, 1, 2, 3, 4);
    BAD(0xdb, 0xff, 0xff, 0xff, 0xff, 'x');
    BAD(0xc6, 0xff, 0xff, 0xff, 0xff, 'x');
    BAD(0xc9, 0xff, 0xff, 0xff, 0xff, 1, 'x');
    BAD(0xda, 0x01, 0x00, 'x');
    /* Fixed containers: one element short. */
    BAD(0x9f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14);
    BAD(0x8f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
        28, 29);
    /* A map needs two objects per pair: n bytes are not enough. */
    BAD(0x82, 1, 2);
    BAD(0xde, 0, 3, 1, 2, 3);
    /* The claim of a nested container counts with what its parents still
     * owe: [ [15 elements], x ] with room for only 15 more objects in all. */
    BAD(0x92, 0x9f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    OK(0x92, 0x9f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    /* A str whose length fits the input but leaves nothing for a sibling. */
    BAD(0x92, 0xa3, 'a', 'b', 'c');
    /* Huge claims hidden one level down, inside a record-like array. */
    BAD(0x97, 0x01, 0x01, 0x00, 0x01, 0xdd, 0x04, 0x00, 0x00, 0x00);
    BAD(0x91, 0xdd, 0x7f, 0xff, 0xff, 0xff);
    BAD(0x81, 0xa1, 'k', 0xdf, 0x7f, 0xff, 0xff, 0xff);

    /* Claimed counts from 0 to 2^32-1 of an array32 or map32 in a 64-byte
     * input: accepted exactly when the input holds the objects. */
    unsigned char buf[64];
    memset(buf, 0x01, sizeof(buf));
    int counts_ok = 1;
    static const uint32_t claims[] = {0, 1, 58, 59, 60, 61, 100, 65535, 65536, 0x7fffffff, 0xffffffff};
    for (size_t i = 0; i < PK_ARRAY_LEN(claims); i++) {
        for (int map = 0; map < 2; map++) {
            uint32_t n = claims[i];
            buf[0] = map ? 0xdf : 0xdd;
            buf[1] = (unsigned char)(n >> 24);
            buf[2] = (unsigned char)(n >> 16);
            buf[3] = (unsigned char)(n >> 8);
            buf[4] = (unsigned char)n;
            uint64_t objects = map ? 2 * (uint64_t)n : n;
            size_t len = 5 + (objects <= 59 ? (size_t)objects : 59);
            int want = objects <= 59 ? 0 : PK_EFORMAT;
            if (check_exact(buf, len, PK_MP_DEPTH_MAX) != want) {
                printf("  %s32 claiming %u in %zu bytes: want %d\n", map ? "map" : "array", n, len, want);
                counts_ok = 0;
            }
        }
    }
    CHECK(counts_ok);

    /* pk_codec_unpack (the record reader) refuses the same inputs before
     * msgpack-c sees them: no reservation, no crash. */
    static const unsigned char claim[] = {0xdd, 0x7f, 0xff, 0xff, 0xff};
    msgpack_unpacked up;
    CHECK_RC(pk_codec_unpack(claim, sizeof(claim), &up), PK_EFORMAT);
    static const unsigned char nested[] = {0x97, 0x01, 0x01, 0x00, 0x01, 0xdd, 0x04, 0x00, 0x00, 0x00};
    CHECK_RC(pk_codec_unpack(nested, sizeof(nested), &up), PK_EFORMAT);
    static const unsigned char good[] = {0x92, 0x01, 0xa1, 'x'};
    CHECK_RC(pk_codec_unpack(good, sizeof(good), &up), 0);
    CHECK(up.data.type == MSGPACK_OBJECT_ARRAY && up.data.via.array.size == 2);
    msgpack_unpacked_destroy(&up);
}

/* ---- Truncation and trailing bytes ------------------------------------- */

static void test_truncation(void)
{
    /* A document with every kind of header, packed by msgpack-c. */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    char long_str[300];
    memset(long_str, 's', sizeof(long_str));
    msgpack_pack_map(&pk, 5);
    msgpack_pack_str_with_body(&pk, "username", 8);
    msgpack_pack_str_with_body(&pk, "alice", 5);
    msgpack_pack_str_with_body(&pk, "numbers", 7);
    msgpack_pack_array(&pk, 9);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 200);
    msgpack_pack_uint64(&pk, 70000);
    msgpack_pack_uint64(&pk, 1ull << 40);
    msgpack_pack_int64(&pk, -1);
    msgpack_pack_int64(&pk, -200);
    msgpack_pack_int64(&pk, INT64_MIN);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_float(&pk, 2.5f);
    msgpack_pack_str_with_body(&pk, "blobs", 5);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_bin_with_body(&pk, "\xc1\xc1", 2);
    msgpack_pack_ext_with_body(&pk, "abcd", 4, 7);
    msgpack_pack_ext_with_body(&pk, "abc", 3, 7);
    msgpack_pack_str_with_body(&pk, long_str, sizeof(long_str));
    msgpack_pack_str_with_body(&pk, "nested", 6);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_nil(&pk);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_true(&pk);
    msgpack_pack_false(&pk);

    check_ok(sb.data, sb.size, __LINE__);
    CHECK(truncations_refused((const unsigned char *)sb.data, sb.size));
    /* Two documents back to back are not one. */
    size_t one = sb.size;
    msgpack_pack_uint64(&pk, 1);
    check_bad(sb.data, sb.size, __LINE__);
    check_ok(sb.data + one, sb.size - one, __LINE__);
    msgpack_sbuffer_destroy(&sb);

    /* A sign-up body, the shape the server reads most. */
    static const unsigned char signup[] = {
        0x83, 0xa8, 'u', 's', 'e', 'r', 'n', 'a', 'm', 'e', 0xa5, 'a', 'l', 'i', 'c', 'e', 0xa8, 'p', 'a', 's',
        's', 'w', 'o', 'r', 'd', 0xab, 'p', 'a', 's', 's', 'w', 'o', 'r', 'd', '1', '2', '3', 0xa5, 'e', 'm',
        'a', 'i', 'l', 0xa9, 'a', '@', 'b', '.', 'c', 'o', 'm', '.', 'x'};
    check_ok(signup, sizeof(signup), __LINE__);
    CHECK(truncations_refused(signup, sizeof(signup)));
}

/* ---- Nesting ------------------------------------------------------------ */

static void test_depth(void)
{
    unsigned char buf[256];
    /* n nested one-element arrays around a scalar: n containers deep. */
    for (unsigned n = 0; n <= PK_MP_DEPTH_MAX + 2; n++) {
        memset(buf, 0x91, n);
        buf[n] = 0x07;
        int want = n <= PK_MP_DEPTH_MAX ? 0 : PK_EFORMAT;
        CHECK_RC(check_exact(buf, n + 1, PK_MP_DEPTH_MAX), want);
        if (n <= PK_MP_DEPTH_MAX)
            CHECK(msgpack_accepts(buf, n + 1));
    }
    /* The same with maps ({"k": {"k": ... 7}}) and an empty innermost
     * container (it counts as a level too). */
    for (unsigned n = 1; n <= PK_MP_DEPTH_MAX + 1; n++) {
        size_t len = 0;
        for (unsigned i = 0; i < n - 1; i++) {
            buf[len++] = 0x81;
            buf[len++] = 0xa1;
            buf[len++] = 'k';
        }
        buf[len++] = 0x90;
        CHECK_RC(check_exact(buf, len, PK_MP_DEPTH_MAX), n <= PK_MP_DEPTH_MAX ? 0 : PK_EFORMAT);
    }
    /* A smaller bound from the caller: 0 allows only a scalar root. */
    CHECK_RC(check_exact("\x07", 1, 0), 0);
    CHECK_RC(check_exact("\x90", 1, 0), PK_EFORMAT);
    CHECK_RC(check_exact("\x91\x90", 2, 1), PK_EFORMAT);
    CHECK_RC(check_exact("\x92\x90\x01", 3, 2), 0);
    /* Depth is per path, not a total: 15 siblings each nested up to the
     * bound are accepted; one more level on the last one is not. */
    unsigned char *wide = malloc(1 + 15 * PK_MP_DEPTH_MAX + 1);
    size_t len = 0;
    wide[len++] = 0x9f;
    for (int i = 0; i < 15; i++) {
        memset(wide + len, 0x91, PK_MP_DEPTH_MAX - 2);
        len += PK_MP_DEPTH_MAX - 2;
        wide[len++] = 0x90; /* at depth PK_MP_DEPTH_MAX */
    }
    CHECK_RC(check_exact(wide, len, PK_MP_DEPTH_MAX), 0);
    CHECK(msgpack_accepts(wide, len));
    wide[len - 1] = 0x91; /* the last empty array gets a child container */
    wide[len++] = 0x90;
    CHECK_RC(check_exact(wide, len, PK_MP_DEPTH_MAX), PK_EFORMAT);
    free(wide);

    /* 100,000 opening brackets: refused by a loop, not a recursion. */
    size_t deep_len = 100000;
    unsigned char *deep = malloc(deep_len);
    memset(deep, 0x91, deep_len);
    deep[deep_len - 1] = 0x01;
    CHECK_RC(check_exact(deep, deep_len, PK_MP_DEPTH_MAX), PK_EFORMAT);
    memset(deep, 0x81, deep_len); /* maps: each needs two more */
    CHECK_RC(check_exact(deep, deep_len, PK_MP_DEPTH_MAX), PK_EFORMAT);
    free(deep);
}

/* ---- Random documents and random bytes --------------------------------- */

static uint64_t g_rng = 0x2545f4914f6cdd1dull; /* fixed seed: reproducible */

static uint64_t rng_next(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

/* Packs a random object no deeper than depth_left containers. */
static void pack_random(msgpack_packer *pk, unsigned depth_left)
{
    char bytes[300];
    unsigned kind = (unsigned)(rng_next() % (depth_left > 0 ? 12 : 10));
    size_t n = (size_t)(rng_next() % 4 == 0 ? rng_next() % 300 : rng_next() % 20);
    for (size_t i = 0; i < n; i++)
        bytes[i] = (char)rng_next();
    switch (kind) {
    case 0: msgpack_pack_uint64(pk, rng_next() >> (rng_next() % 64)); break;
    case 1: msgpack_pack_int64(pk, -(int64_t)(rng_next() >> (1 + rng_next() % 63))); break;
    case 2: msgpack_pack_nil(pk); break;
    case 3: msgpack_pack_true(pk); break;
    case 4: msgpack_pack_double(pk, (double)rng_next()); break;
    case 5: msgpack_pack_float(pk, (float)rng_next()); break;
    case 6: msgpack_pack_str_with_body(pk, bytes, n); break;
    case 7: msgpack_pack_bin_with_body(pk, bytes, n); break;
    case 8: msgpack_pack_ext_with_body(pk, bytes, n, (int8_t)rng_next()); break;
    case 9: msgpack_pack_str_with_body(pk, bytes, n % 40); break;
    case 10: {
        size_t items = (size_t)(rng_next() % 6);
        msgpack_pack_array(pk, items);
        for (size_t i = 0; i < items; i++)
            pack_random(pk, depth_left - 1);
        break;
    }
    default: {
        size_t pairs = (size_t)(rng_next() % 4);
        msgpack_pack_map(pk, pairs);
        for (size_t i = 0; i < 2 * pairs; i++)
            pack_random(pk, depth_left - 1);
        break;
    }
    }
}

static void test_random(void)
{
    /* Valid documents packed by msgpack-c are all accepted, and their
     * prefixes all refused. */
    int docs_ok = 1, prefixes_ok = 1;
    for (int iter = 0; iter < 2000; iter++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pack_random(&pk, 1 + (unsigned)(rng_next() % 6));
        if (check_exact(sb.data, sb.size, PK_MP_DEPTH_MAX) != 0) {
            if (docs_ok)
                printf("  random document %d (%zu bytes) refused\n", iter, sb.size);
            docs_ok = 0;
        }
        if (iter % 20 == 0 && !truncations_refused((const unsigned char *)sb.data, sb.size))
            prefixes_ok = 0;
        msgpack_sbuffer_destroy(&sb);
    }
    CHECK(docs_ok);
    CHECK(prefixes_ok);

    /* Random bytes: whatever pk_mp_check accepts, msgpack-c unpacks as
     * exactly one object filling the input (never an over-read, never a
     * disagreement).  Half start with a container header to go deeper. */
    unsigned accepted = 0, disagreements = 0;
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = (size_t)(rng_next() % 24);
        unsigned char *buf = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++) {
            uint64_t r = rng_next();
            /* Mostly small values so that counts often fit. */
            buf[i] = (unsigned char)(r % 3 == 0 ? r >> 8 : (r >> 8) % 0x20 + (r % 3 == 1 ? 0x80 : 0));
        }
        if (check_exact(buf, len, PK_MP_DEPTH_MAX) == 0) {
            accepted++;
            if (!msgpack_accepts(buf, len) && disagreements++ < 3)
                printf("  accepted %zu bytes that msgpack-c refuses (first 0x%02x)\n", len, buf[0]);
        }
        free(buf);
    }
    printf("# random inputs: %u of 200000 accepted\n", accepted);
    CHECK(accepted > 1000);
    CHECK(disagreements == 0);
}

int main(void)
{
    test_formats();
    test_hostile_counts();
    test_truncation();
    test_depth();
    test_random();
    return CHECK_DONE("test_mpcheck");
}
