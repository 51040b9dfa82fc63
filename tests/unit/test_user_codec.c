/*
 * Unit tests for the stored user record (pk_user_encode / pk_user_decode in
 * src/domain/user.c over the strict readers of src/store/codec.c): round
 * trips at the edge lengths, every field's refusal, every truncation, single
 * byte corruptions, random bytes, and the encoder's -ENOSPC contract.
 * Every decode reads from a heap copy of exactly len bytes so that an ASan
 * build catches any read past the end.  Plain program: prints one line per
 * failed check and a summary, exits non-zero when anything failed.
 */
#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pickple/codec.h"
#include "pickple/user.h"

#include "check.h"

#define ID_MAX ((1ull << 53) - 1)

/*
 * Sanitizer builds: any allocation over 64 MiB aborts the test.  msgpack-c
 * allocates room for a container's claimed element count before it checks
 * that the input holds them, so without pk_mp_check() in front of it random
 * bytes ask for up to 64 GiB; a regression shows up here as a crash.
 * test_reservation() measures the reservation itself in builds without a
 * sanitizer.  Ignored without the sanitizer.
 */
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

static const char default_hash[] = "scrypt$15$8$1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

static pk_user_t make_user(uint64_t id, int64_t created_ms, pk_role_t role, const char *name, size_t name_len,
                           const char *email, size_t email_len, const char *pwhash)
{
    pk_user_t u;
    memset(&u, 0, sizeof(u));
    u.u_id = id;
    u.u_created_ms = created_ms;
    u.u_role = role;
    u.u_username_len = (uint8_t)name_len;
    memcpy(u.u_username, name, name_len);
    u.u_email_len = (uint8_t)email_len;
    memcpy(u.u_email, email, email_len);
    snprintf(u.u_pwhash, sizeof(u.u_pwhash), "%s", pwhash);
    return u;
}

static pk_user_t default_user(void)
{
    return make_user(42, 1764000000123, PK_ROLE_SELLER, "alice", 5, "alice@example.com", 17, default_hash);
}

/* Decodes from a heap copy of exactly len bytes (ASan sees any over-read). */
static int decode_exact(const void *data, size_t len, pk_user_t *u)
{
    void *copy = malloc(len ? len : 1);
    if (copy == NULL)
        abort();
    if (len)
        memcpy(copy, data, len);
    int rc = pk_user_decode(copy, len, u);
    free(copy);
    return rc;
}

static int user_equal(const pk_user_t *a, const pk_user_t *b)
{
    return a->u_id == b->u_id && a->u_created_ms == b->u_created_ms && a->u_role == b->u_role &&
           a->u_username_len == b->u_username_len && memcmp(a->u_username, b->u_username, a->u_username_len) == 0 &&
           b->u_username[b->u_username_len] == '\0' && a->u_email_len == b->u_email_len &&
           memcmp(a->u_email, b->u_email, a->u_email_len) == 0 && b->u_email[b->u_email_len] == '\0' &&
           strcmp(a->u_pwhash, b->u_pwhash) == 0;
}

/*
 * What pk_user_decode promises about a record it accepts: every bound of
 * the stored form holds and every string is NUL-terminated inside its array.
 */
static int decoded_invariants_hold(const pk_user_t *u)
{
    return u->u_id >= 1 && u->u_id <= ID_MAX && (unsigned)u->u_role <= PK_ROLE_ADMIN &&
           u->u_username_len >= PK_USERNAME_BYTES_MIN && u->u_username_len <= PK_USERNAME_BYTES_MAX &&
           u->u_username[u->u_username_len] == '\0' && u->u_email_len <= PK_EMAIL_BYTES_MAX &&
           u->u_email[u->u_email_len] == '\0' && memchr(u->u_pwhash, '\0', sizeof(u->u_pwhash)) != NULL &&
           pk_role_name(u->u_role) != NULL;
}

/* The domain rules a stored user satisfied when it was created. */
static int decoded_passes_rules(const pk_user_t *u)
{
    return pk_user_username_valid(u->u_username, u->u_username_len) && pk_user_email_valid(u->u_email, u->u_email_len);
}

static int encode_to(const pk_user_t *u, pk_buf_t *b)
{
    memset(b, 0, sizeof(*b));
    return pk_user_encode(u, b);
}

/* ---- Round trips ------------------------------------------------------ */

static void check_round_trip(const pk_user_t *u, int line)
{
    pk_buf_t b;
    pk_user_t back;
    int rc = encode_to(u, &b);
    int rc2 = rc == 0 ? decode_exact(b.b_data, b.b_len, &back) : -1;
    if (rc == 0 && rc2 == 0 && user_equal(u, &back)) {
        g_passed++;
    } else {
        g_failed++;
        printf("FAIL %s:%d: round trip (encode %d, decode %d) of id %" PRIu64 " name_len %u email_len %u hash_len %zu\n",
               __FILE__, line, rc, rc2, u->u_id, u->u_username_len, u->u_email_len, strlen(u->u_pwhash));
    }
    pk_buf_free(&b);
}

static void test_round_trips(void)
{
    char name32[33], email254[255], email3[] = "a@b", hash159[160];
    memset(name32, 'z', 32);
    name32[0] = 'a';
    name32[31] = '9';
    name32[32] = '\0';
    memset(email254, 'e', 254);
    email254[100] = '@';
    memset(hash159, 'h', 159);
    hash159[159] = '\0';

    pk_user_t u = default_user();
    check_round_trip(&u, __LINE__);
    /* Username at both bounds and at the fixstr/str8 boundary (31/32). */
    u = make_user(1, 0, PK_ROLE_CUSTOMER, "abc", 3, email3, 3, "x");
    check_round_trip(&u, __LINE__);
    u = make_user(ID_MAX, -1, PK_ROLE_ADMIN, name32, 32, email254, 254, hash159);
    check_round_trip(&u, __LINE__);
    u = make_user(7, INT64_MAX, PK_ROLE_SELLER, name32, 31, email254 + 80, 31, hash159); /* '@' inside */
    check_round_trip(&u, __LINE__);
    /* The hash may be empty in the stored form (min 0 in the decoder). */
    u = make_user(7, INT64_MIN, PK_ROLE_CUSTOMER, "a.b-c_d", 7, "x@y", 3, "");
    check_round_trip(&u, __LINE__);
    /* created_ms across the fixint / int8 / int16 / int32 / int64 widths. */
    static const int64_t times[] = {-33, -32, -129, -32769, -2147483649LL, 127, 128, 65536, 4294967296LL};
    for (size_t i = 0; i < PK_ARRAY_LEN(times); i++) {
        u = default_user();
        u.u_created_ms = times[i];
        check_round_trip(&u, __LINE__);
    }
    /* ids across widths. */
    static const uint64_t ids[] = {1, 127, 128, 255, 256, 65535, 65536, 4294967295ull, 4294967296ull, ID_MAX};
    for (size_t i = 0; i < PK_ARRAY_LEN(ids); i++) {
        u = default_user();
        u.u_id = ids[i];
        check_round_trip(&u, __LINE__);
    }

    /* The stored form starts with [1, ... (fixarray of 7, schema 1). */
    pk_buf_t b;
    u = default_user();
    CHECK_RC(encode_to(&u, &b), 0);
    CHECK(b.b_len > 2 && (unsigned char)b.b_data[0] == 0x97 && b.b_data[1] == 0x01);
    /* encode appends: two records back to back decode separately. */
    size_t one = b.b_len;
    pk_user_t v = make_user(99, 5, PK_ROLE_ADMIN, "bob", 3, "b@c.d", 5, "h");
    CHECK_RC(pk_user_encode(&v, &b), 0);
    pk_user_t back;
    CHECK_RC(decode_exact(b.b_data, one, &back), 0);
    CHECK(user_equal(&u, &back));
    CHECK_RC(decode_exact(b.b_data + one, b.b_len - one, &back), 0);
    CHECK(user_equal(&v, &back));
    /* ...and the pair as one buffer is not a record (trailing bytes). */
    CHECK_RC(decode_exact(b.b_data, b.b_len, &back), PK_EFORMAT);
    pk_buf_free(&b);
}

/* ---- Hand-built records: every field's refusal ------------------------- */

typedef void (*field_fn)(msgpack_packer *pk);

static void pack_default_field(msgpack_packer *pk, unsigned i)
{
    switch (i) {
    case 0: msgpack_pack_uint64(pk, 1); break;
    case 1: msgpack_pack_uint64(pk, 42); break;
    case 2: msgpack_pack_int64(pk, 1764000000123); break;
    case 3: msgpack_pack_uint64(pk, 1); break;
    case 4: msgpack_pack_str_with_body(pk, "alice", 5); break;
    case 5: msgpack_pack_str_with_body(pk, "alice@example.com", 17); break;
    case 6: msgpack_pack_str_with_body(pk, default_hash, strlen(default_hash)); break;
    default: msgpack_pack_nil(pk); break;
    }
}

/* Packs an array of nfields default fields with field `replace` produced by
 * fn instead, and decodes it. */
static int decode_built(unsigned nfields, unsigned replace, field_fn fn)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    pk_user_t u;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, nfields);
    for (unsigned i = 0; i < nfields; i++) {
        if (i == replace && fn != NULL)
            fn(&pk);
        else
            pack_default_field(&pk, i);
    }
    int rc = decode_exact(sb.data, sb.size, &u);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static void pack_str_n(msgpack_packer *pk, size_t n, char fill)
{
    char s[512];
    memset(s, fill, n);
    if (fill == '@' && n > 2) { /* a plausible email: one '@' in the middle */
        memset(s, 'e', n);
        s[n / 2] = '@';
    }
    msgpack_pack_str_with_body(pk, s, n);
}

static void f_u0(msgpack_packer *pk) { msgpack_pack_uint64(pk, 0); }
static void f_u1(msgpack_packer *pk) { msgpack_pack_uint64(pk, 1); }
static void f_u2(msgpack_packer *pk) { msgpack_pack_uint64(pk, 2); }
static void f_u3(msgpack_packer *pk) { msgpack_pack_uint64(pk, 3); }
static void f_u2p32(msgpack_packer *pk) { msgpack_pack_uint64(pk, 1ull << 32); }
static void f_u2p53(msgpack_packer *pk) { msgpack_pack_uint64(pk, 1ull << 53); }
static void f_u2p53m1(msgpack_packer *pk) { msgpack_pack_uint64(pk, (1ull << 53) - 1); }
static void f_umax(msgpack_packer *pk) { msgpack_pack_uint64(pk, UINT64_MAX); }
static void f_i64max_plus1(msgpack_packer *pk) { msgpack_pack_uint64(pk, (uint64_t)INT64_MAX + 1); }
static void f_neg1(msgpack_packer *pk) { msgpack_pack_int64(pk, -1); }
static void f_i64min(msgpack_packer *pk) { msgpack_pack_int64(pk, INT64_MIN); }
static void f_double(msgpack_packer *pk) { msgpack_pack_double(pk, 1.0); }
static void f_float(msgpack_packer *pk) { msgpack_pack_float(pk, 1.0f); }
static void f_nil(msgpack_packer *pk) { msgpack_pack_nil(pk); }
static void f_true(msgpack_packer *pk) { msgpack_pack_true(pk); }
static void f_str1(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "1", 1); }
static void f_bin_alice(msgpack_packer *pk) { msgpack_pack_bin_with_body(pk, "alice", 5); }
static void f_arr(msgpack_packer *pk) { msgpack_pack_array(pk, 0); }
static void f_map(msgpack_packer *pk) { msgpack_pack_map(pk, 0); }
static void f_ext(msgpack_packer *pk)
{
    msgpack_pack_ext(pk, 1, 1);
    msgpack_pack_ext_body(pk, "x", 1);
}
static void f_str0(msgpack_packer *pk) { pack_str_n(pk, 0, 'a'); }
static void f_str2(msgpack_packer *pk) { pack_str_n(pk, 2, 'a'); }
static void f_str3(msgpack_packer *pk) { pack_str_n(pk, 3, 'a'); }
static void f_name_upper(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "Alice", 5); }
static void f_name_space(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "al ce", 5); }
static void f_name_high(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "al\xff" "ce", 5); }
static void f_email_no_at(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "alice.example.com", 17); }
static void f_email_two_at(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "a@b@c", 5); }
static void f_email_space(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "a b@c", 5); }
static void f_email_edge_at(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "abc@", 4); }
static void f_str32(msgpack_packer *pk) { pack_str_n(pk, 32, 'a'); }
static void f_str33(msgpack_packer *pk) { pack_str_n(pk, 33, 'a'); }
static void f_email254(msgpack_packer *pk) { pack_str_n(pk, 254, '@'); }
static void f_email255(msgpack_packer *pk) { pack_str_n(pk, 255, '@'); }
static void f_hash159(msgpack_packer *pk) { pack_str_n(pk, 159, 'h'); }
static void f_hash160(msgpack_packer *pk) { pack_str_n(pk, 160, 'h'); }
static void f_hash500(msgpack_packer *pk) { pack_str_n(pk, 500, 'h'); }

static void test_fields(void)
{
    /* The unmodified hand-built record is valid (sanity for what follows). */
    CHECK_RC(decode_built(7, 99, NULL), 0);

    /* Field count and root type. */
    CHECK_RC(decode_built(6, 99, NULL), PK_EFORMAT);
    CHECK_RC(decode_built(8, 99, NULL), PK_EFORMAT);
    CHECK_RC(decode_built(0, 99, NULL), PK_EFORMAT);
    static const unsigned char not_arrays[][3] = {{0xc0}, {0x01}, {0x80}, {0xa1, 'x'}, {0x81, 0x01, 0x02}};
    static const size_t not_array_lens[] = {1, 1, 1, 2, 3};
    for (size_t i = 0; i < PK_ARRAY_LEN(not_arrays); i++) {
        pk_user_t u;
        CHECK_RC(decode_exact(not_arrays[i], not_array_lens[i], &u), PK_EFORMAT);
    }

    /* [0] schema: exactly 1. */
    CHECK_RC(decode_built(7, 0, f_u1), 0);
    CHECK_RC(decode_built(7, 0, f_u0), PK_EFORMAT);
    CHECK_RC(decode_built(7, 0, f_u2), PK_EFORMAT);
    CHECK_RC(decode_built(7, 0, f_u2p32), PK_EFORMAT);
    CHECK_RC(decode_built(7, 0, f_umax), PK_EFORMAT);
    CHECK_RC(decode_built(7, 0, f_neg1), PK_EFORMAT);
    CHECK_RC(decode_built(7, 0, f_str1), PK_EFORMAT);
    CHECK_RC(decode_built(7, 0, f_double), PK_EFORMAT);
    CHECK_RC(decode_built(7, 0, f_nil), PK_EFORMAT);
    CHECK_RC(decode_built(7, 0, f_true), PK_EFORMAT);

    /* [1] id: 1..2^53-1. */
    CHECK_RC(decode_built(7, 1, f_u1), 0);
    CHECK_RC(decode_built(7, 1, f_u2p53m1), 0);
    CHECK_RC(decode_built(7, 1, f_u0), PK_EFORMAT);
    CHECK_RC(decode_built(7, 1, f_u2p53), PK_EFORMAT);
    CHECK_RC(decode_built(7, 1, f_umax), PK_EFORMAT);
    CHECK_RC(decode_built(7, 1, f_neg1), PK_EFORMAT);
    CHECK_RC(decode_built(7, 1, f_str1), PK_EFORMAT);
    CHECK_RC(decode_built(7, 1, f_float), PK_EFORMAT);

    /* [2] created_ms: any int64. */
    CHECK_RC(decode_built(7, 2, f_i64min), 0);
    CHECK_RC(decode_built(7, 2, f_neg1), 0);
    CHECK_RC(decode_built(7, 2, f_u0), 0);
    CHECK_RC(decode_built(7, 2, f_i64max_plus1), PK_EFORMAT);
    CHECK_RC(decode_built(7, 2, f_umax), PK_EFORMAT);
    CHECK_RC(decode_built(7, 2, f_double), PK_EFORMAT);
    CHECK_RC(decode_built(7, 2, f_str1), PK_EFORMAT);
    CHECK_RC(decode_built(7, 2, f_nil), PK_EFORMAT);

    /* [3] role: 0..2. */
    CHECK_RC(decode_built(7, 3, f_u0), 0);
    CHECK_RC(decode_built(7, 3, f_u2), 0);
    CHECK_RC(decode_built(7, 3, f_u3), PK_EFORMAT);
    CHECK_RC(decode_built(7, 3, f_neg1), PK_EFORMAT);
    CHECK_RC(decode_built(7, 3, f_str1), PK_EFORMAT);

    /* [4] username: str of 3..32 bytes. */
    CHECK_RC(decode_built(7, 4, f_str3), 0);
    CHECK_RC(decode_built(7, 4, f_str32), 0);
    CHECK_RC(decode_built(7, 4, f_str0), PK_EFORMAT);
    CHECK_RC(decode_built(7, 4, f_str2), PK_EFORMAT);
    CHECK_RC(decode_built(7, 4, f_str33), PK_EFORMAT);
    CHECK_RC(decode_built(7, 4, f_bin_alice), PK_EFORMAT);
    CHECK_RC(decode_built(7, 4, f_u1), PK_EFORMAT);
    CHECK_RC(decode_built(7, 4, f_nil), PK_EFORMAT);
    CHECK_RC(decode_built(7, 4, f_arr), PK_EFORMAT);
    CHECK_RC(decode_built(7, 4, f_map), PK_EFORMAT);
    CHECK_RC(decode_built(7, 4, f_ext), PK_EFORMAT);
    /* ...that also passes the username rules it was created under. */
    CHECK_RC(decode_built(7, 4, f_name_upper), PK_EFORMAT);
    CHECK_RC(decode_built(7, 4, f_name_space), PK_EFORMAT);
    CHECK_RC(decode_built(7, 4, f_name_high), PK_EFORMAT);

    /* [5] email: str of at most 254 bytes passing the email rules. */
    CHECK_RC(decode_built(7, 5, f_email254), 0);
    CHECK_RC(decode_built(7, 5, f_email255), PK_EFORMAT);
    CHECK_RC(decode_built(7, 5, f_bin_alice), PK_EFORMAT);
    CHECK_RC(decode_built(7, 5, f_nil), PK_EFORMAT);
    CHECK_RC(decode_built(7, 5, f_str0), PK_EFORMAT);
    CHECK_RC(decode_built(7, 5, f_email_no_at), PK_EFORMAT);
    CHECK_RC(decode_built(7, 5, f_email_two_at), PK_EFORMAT);
    CHECK_RC(decode_built(7, 5, f_email_space), PK_EFORMAT);
    CHECK_RC(decode_built(7, 5, f_email_edge_at), PK_EFORMAT);

    /* [6] password hash: str that fits u_pwhash with its NUL (<= 159). */
    CHECK_RC(decode_built(7, 6, f_hash159), 0);
    CHECK_RC(decode_built(7, 6, f_hash160), PK_EFORMAT);
    CHECK_RC(decode_built(7, 6, f_hash500), PK_EFORMAT);
    CHECK_RC(decode_built(7, 6, f_u1), PK_EFORMAT);

    /* The encoder does not validate: what it writes out of range, the
     * decoder refuses (role 3, short username, id 0). */
    pk_buf_t b;
    pk_user_t u = default_user(), back;
    u.u_role = (pk_role_t)3;
    CHECK_RC(encode_to(&u, &b), 0);
    CHECK_RC(decode_exact(b.b_data, b.b_len, &back), PK_EFORMAT);
    pk_buf_free(&b);
    u = default_user();
    u.u_username_len = 2;
    CHECK_RC(encode_to(&u, &b), 0);
    CHECK_RC(decode_exact(b.b_data, b.b_len, &back), PK_EFORMAT);
    pk_buf_free(&b);
    u = default_user();
    u.u_id = 0;
    CHECK_RC(encode_to(&u, &b), 0);
    CHECK_RC(decode_exact(b.b_data, b.b_len, &back), PK_EFORMAT);
    pk_buf_free(&b);
}

/* ---- Truncation, trailing bytes, corruption ----------------------------- */

static void test_truncation_and_trailing(void)
{
    pk_buf_t b;
    pk_user_t u = default_user(), back;
    CHECK_RC(encode_to(&u, &b), 0);
    size_t len = b.b_len;
    unsigned bad = 0;
    for (size_t n = 0; n < len; n++) {
        int rc = decode_exact(b.b_data, n, &back);
        if (rc != PK_EFORMAT) {
            if (bad++ < 5)
                printf("  truncation to %zu of %zu bytes -> %d (%s)\n", n, len, rc, pk_strerror(rc));
        }
    }
    CHECK(bad == 0); /* every prefix 0..len-1 is PK_EFORMAT */

    /* One trailing byte of any value is refused. */
    char *longer = malloc(len + 1);
    memcpy(longer, b.b_data, len);
    static const unsigned char extra[] = {0x00, 0x01, 0x90, 0xc0, 0xc1, 0xff};
    for (size_t i = 0; i < PK_ARRAY_LEN(extra); i++) {
        longer[len] = (char)extra[i];
        CHECK_RC(decode_exact(longer, len + 1, &back), PK_EFORMAT);
    }
    free(longer);

    /* Same for the longest record (str8 lengths everywhere). */
    char name32[32], email254[254], hash159[160];
    memset(name32, 'n', sizeof(name32));
    memset(email254, 'e', sizeof(email254));
    email254[7] = '@';
    memset(hash159, 'h', 159);
    hash159[159] = '\0';
    pk_user_t big = make_user(ID_MAX, INT64_MIN, PK_ROLE_ADMIN, name32, 32, email254, 254, hash159);
    pk_buf_t bb;
    CHECK_RC(encode_to(&big, &bb), 0);
    bad = 0;
    for (size_t n = 0; n < bb.b_len; n++)
        if (decode_exact(bb.b_data, n, &back) != PK_EFORMAT)
            bad++;
    CHECK(bad == 0);
    pk_buf_free(&bb);
    pk_buf_free(&b);
}

/* Outcome counters for corrupted inputs. */
typedef struct fuzz_stats {
    unsigned fs_refused;     /* PK_EFORMAT */
    unsigned fs_accepted;    /* 0 with every decoder invariant */
    unsigned fs_broken;      /* 0 but an invariant broken, or another code */
    unsigned fs_rules_fail;  /* accepted but the username/email rules fail */
    size_t fs_first_rules_fail_at; /* byte offset of the first such case */
    unsigned fs_first_rules_fail_value;
} fuzz_stats_t;

static void classify(fuzz_stats_t *fs, int rc, const pk_user_t *u, size_t at, unsigned value)
{
    if (rc == PK_EFORMAT) {
        fs->fs_refused++;
    } else if (rc == 0 && decoded_invariants_hold(u)) {
        fs->fs_accepted++;
        if (!decoded_passes_rules(u) && fs->fs_rules_fail++ == 0) {
            fs->fs_first_rules_fail_at = at;
            fs->fs_first_rules_fail_value = value;
        }
    } else {
        if (fs->fs_broken++ < 5)
            printf("  corrupted input (byte %zu = 0x%02x) -> rc %d, invariants %s\n", at, value, rc,
                   rc == 0 ? "broken" : "n/a");
    }
}

static void test_byte_flips(void)
{
    pk_buf_t b;
    pk_user_t u = default_user(), back;
    CHECK_RC(encode_to(&u, &b), 0);
    unsigned char *rec = malloc(b.b_len);
    fuzz_stats_t fs;
    memset(&fs, 0, sizeof(fs));
    for (size_t i = 0; i < b.b_len; i++) {
        unsigned char orig = (unsigned char)b.b_data[i];
        const unsigned values[] = {0x00, 0xff, 0xc1, orig ^ 0x55u};
        for (size_t k = 0; k < PK_ARRAY_LEN(values); k++) {
            if (values[k] == orig)
                continue;
            memcpy(rec, b.b_data, b.b_len);
            rec[i] = (unsigned char)values[k];
            int rc = pk_user_decode(rec, b.b_len, &back); /* rec is exactly b_len bytes */
            classify(&fs, rc, &back, i, values[k]);
        }
    }
    printf("# byte flips of a %zu-byte record: %u refused, %u accepted, %u broken, %u accepted but failing "
           "username/email rules\n",
           b.b_len, fs.fs_refused, fs.fs_accepted, fs.fs_broken, fs.fs_rules_fail);
    /* Either PK_EFORMAT or a record inside every bound of the stored form. */
    CHECK(fs.fs_broken == 0);
    CHECK(fs.fs_refused > 0 && fs.fs_accepted > 0);
    /*
     * A record that decodes also satisfies the rules it was created under:
     * a corrupted byte inside the username or email (e.g. "al\xffce") is
     * refused, not decoded as a user the API could never have created.
     */
    if (fs.fs_rules_fail != 0)
        printf("  byte %zu set to 0x%02x decodes (rc 0) into a user failing "
               "pk_user_username_valid/pk_user_email_valid\n",
               fs.fs_first_rules_fail_at, fs.fs_first_rules_fail_value);
    CHECK(fs.fs_rules_fail == 0);
    free(rec);
    pk_buf_free(&b);
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ull; /* fixed seed: reproducible */

static uint64_t rng_next(void)
{
    /* xorshift64* */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ull;
}

static void test_random(void)
{
    fuzz_stats_t fs;
    pk_user_t back;
    memset(&fs, 0, sizeof(fs));
    /* 10,000 buffers of 0..300 random bytes. */
    for (int iter = 0; iter < 10000; iter++) {
        size_t len = (size_t)(rng_next() % 301);
        unsigned char *buf = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++)
            buf[i] = (unsigned char)rng_next();
        /* Half of them start like a record so the decoder gets further. */
        if ((iter & 1) && len >= 2) {
            buf[0] = 0x97;
            buf[1] = 0x01;
        }
        int rc = pk_user_decode(buf, len, &back);
        classify(&fs, rc, &back, len, buf[0]);
        free(buf);
    }
    printf("# random buffers: %u refused, %u accepted, %u broken\n", fs.fs_refused, fs.fs_accepted, fs.fs_broken);
    CHECK(fs.fs_broken == 0);

    /* 10,000 valid records with 1..4 random bytes changed and a random
     * length change of -3..+3 bytes. */
    pk_buf_t b;
    pk_user_t u = default_user();
    CHECK_RC(encode_to(&u, &b), 0);
    memset(&fs, 0, sizeof(fs));
    for (int iter = 0; iter < 10000; iter++) {
        size_t len = b.b_len + (size_t)(rng_next() % 7) - 3;
        unsigned char *buf = malloc(len);
        memcpy(buf, b.b_data, len < b.b_len ? len : b.b_len);
        for (size_t i = b.b_len; i < len; i++)
            buf[i] = (unsigned char)rng_next();
        unsigned flips = 1 + (unsigned)(rng_next() % 4);
        for (unsigned k = 0; k < flips; k++)
            buf[rng_next() % len] = (unsigned char)rng_next();
        int rc = pk_user_decode(buf, len, &back);
        classify(&fs, rc, &back, len, 0);
        free(buf);
    }
    printf("# mutated records: %u refused, %u accepted, %u broken\n", fs.fs_refused, fs.fs_accepted, fs.fs_broken);
    CHECK(fs.fs_broken == 0);
    pk_buf_free(&b);
}

/* ---- Memory reserved for a corrupted record ---------------------------- */

static long vm_peak_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmPeak:", 7) == 0)
            sscanf(line + 7, "%ld", &kib);
    fclose(f);
    return kib;
}

/*
 * A 7-byte "record" whose username claims to be an array of 2^26 elements:
 * a decoder that checks the claim against the bytes left refuses it without
 * reserving memory for 64M objects.  Measured in a child (VmPeak only grows).
 */
static void test_reservation(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    printf("# reservation check skipped: the sanitizer caps allocations at 64 MiB in this binary\n");
    return;
#endif
    static const unsigned char claim[] = {0x97, 0x01, 0x01, 0x00, 0x01, 0xdd, 0x04, 0x00, 0x00, 0x00};
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        pk_user_t u;
        long before = vm_peak_kib();
        int rc = decode_exact(claim, sizeof(claim), &u);
        long grown_mib = (vm_peak_kib() - before) / 1024;
        printf("# decode of a %zu-byte record claiming a 2^26-element array: rc %d, VmPeak grew %ld MiB\n",
               sizeof(claim), rc, grown_mib);
        fflush(stdout);
        _exit(rc != PK_EFORMAT ? 2 : grown_mib > 64 ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 2); /* refused, no crash */
    /* pk_mp_check refuses the claim before msgpack_unpack_next reserves
     * claimed_count * sizeof(msgpack_object) bytes for it. */
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- The encoder's -ENOSPC contract ------------------------------------ */

static void test_encode_enospc(void)
{
    pk_user_t u = default_user(), back;
    pk_buf_t ref;
    CHECK_RC(encode_to(&u, &ref), 0);
    const size_t enc_len = ref.b_len;

    /*
     * A buffer with room for 0..enc_len+1 more bytes before PK_OUT_BYTES_MAX.
     * The contract (user.h): "encode appends to out and returns 0 or
     * -ENOSPC".  Returning 0 must mean a whole record was appended.
     */
    pk_buf_t b;
    memset(&b, 0, sizeof(b));
    b.b_data = calloc(1, PK_OUT_BYTES_MAX);
    b.b_cap = PK_OUT_BYTES_MAX;
    unsigned lies = 0;
    size_t first_lie_room = 0, first_lie_appended = 0;
    for (size_t room = 0; room <= enc_len + 1; room++) {
        size_t before = PK_OUT_BYTES_MAX - room;
        b.b_len = before;
        int rc = pk_user_encode(&u, &b);
        if (room >= enc_len) {
            /* Fits: success, and exactly the reference bytes. */
            CHECK_RC(rc, 0);
            CHECK(b.b_len == before + enc_len && memcmp(b.b_data + before, ref.b_data, enc_len) == 0);
            CHECK_RC(decode_exact(b.b_data + before, enc_len, &back), 0);
        } else if (rc == 0) {
            /* Does not fit, yet success: whatever was appended is not the
             * record. */
            if (lies++ == 0) {
                first_lie_room = room;
                first_lie_appended = b.b_len - before;
            }
        } else {
            CHECK_RC(rc, -ENOSPC);
            CHECK(b.b_len == before); /* nothing of the record is left behind */
        }
    }
    if (lies != 0)
        printf("  pk_user_encode returned 0 with only %zu bytes of room (record needs %zu); it appended %zu "
               "bytes that do not decode (%u of %zu short rooms affected)\n",
               first_lie_room, enc_len, first_lie_appended, lies, enc_len);
    CHECK(lies == 0);
    free(b.b_data);
    pk_buf_free(&ref);
}

int main(void)
{
    test_reservation(); /* first: it reads this process's VmPeak */
    test_round_trips();
    test_fields();
    test_truncation_and_trailing();
    test_byte_flips();
    test_random();
    test_encode_enospc();

    return CHECK_DONE("test_user_codec");
}
