/*
 * Unit tests for the document writer (src/common/out.c): the same call
 * sequence must render valid JSON (checked by parsing it with jansson) and
 * the same content as MessagePack (checked by unpacking it with msgpack-c
 * and comparing the two trees); string escaping; the error document; the
 * PK_OUT_BYTES_MAX and PK_OUT_DEPTH_MAX bounds.  Plain program: prints one
 * line per failed check and a summary, exits non-zero when anything failed.
 */
#include <jansson.h>
#include <msgpack.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pickple/out.h"

#include "check.h"

typedef void (*render_fn)(pk_out_t *o, const void *arg);

/* Renders one call sequence in fmt; returns the pk_out_finish() code. */
static int render(pk_fmt_t fmt, render_fn fn, const void *arg, pk_buf_t *out)
{
    pk_out_t o;
    pk_out_init(&o, fmt);
    fn(&o, arg);
    memset(out, 0, sizeof(*out));
    return pk_out_finish(&o, out);
}

/* Parses JSON text of exactly len bytes (NULs inside strings allowed). */
static json_t *parse_json(const pk_buf_t *b)
{
    json_error_t err;
    json_t *j = json_loadb(b->b_data, b->b_len, JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);
    if (j == NULL)
        printf("  jansson: %s at %d: %.*s\n", err.text, err.position, (int)b->b_len, b->b_data);
    return j;
}

/* Unpacks exactly one MessagePack object filling all of b. */
static int unpack_one(const pk_buf_t *b, msgpack_unpacked *up)
{
    size_t off = 0;
    msgpack_unpacked_init(up);
    if (msgpack_unpack_next(up, b->b_data, b->b_len, &off) != MSGPACK_UNPACK_SUCCESS || off != b->b_len) {
        msgpack_unpacked_destroy(up);
        return -1;
    }
    return 0;
}

/* Structural equality of a jansson tree and a MessagePack tree. */
static int same_value(const json_t *j, const msgpack_object *m)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        if (m->type != MSGPACK_OBJECT_MAP || m->via.map.size != json_object_size(j))
            return 0;
        for (uint32_t i = 0; i < m->via.map.size; i++) {
            const msgpack_object_kv *kv = &m->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR)
                return 0;
            char key[256];
            if (kv->key.via.str.size >= sizeof(key))
                return 0;
            memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
            key[kv->key.via.str.size] = '\0';
            const json_t *v = json_object_get(j, key);
            if (v == NULL || !same_value(v, &kv->val))
                return 0;
        }
        return 1;
    }
    case JSON_ARRAY:
        if (m->type != MSGPACK_OBJECT_ARRAY || m->via.array.size != json_array_size(j))
            return 0;
        for (uint32_t i = 0; i < m->via.array.size; i++)
            if (!same_value(json_array_get(j, i), &m->via.array.ptr[i]))
                return 0;
        return 1;
    case JSON_STRING:
        return m->type == MSGPACK_OBJECT_STR && m->via.str.size == json_string_length(j) &&
               memcmp(m->via.str.ptr, json_string_value(j), m->via.str.size) == 0;
    case JSON_INTEGER: {
        json_int_t v = json_integer_value(j);
        if (m->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            return v >= 0 && (uint64_t)v == m->via.u64;
        if (m->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            return v < 0 && v == m->via.i64;
        return 0;
    }
    case JSON_TRUE: return m->type == MSGPACK_OBJECT_BOOLEAN && m->via.boolean;
    case JSON_FALSE: return m->type == MSGPACK_OBJECT_BOOLEAN && !m->via.boolean;
    case JSON_NULL: return m->type == MSGPACK_OBJECT_NIL;
    default: return 0;
    }
}

/* Renders fn in both formats and checks: JSON parses, MessagePack unpacks,
 * and both trees are the same.  Returns the parsed JSON (caller decrefs). */
static json_t *render_both(render_fn fn, const void *arg, int line)
{
    pk_buf_t jb, mb;
    msgpack_unpacked up;
    json_t *j = NULL;
    int ok = 0;
    if (render(PK_FMT_JSON, fn, arg, &jb) == 0 && render(PK_FMT_MSGPACK, fn, arg, &mb) == 0) {
        j = parse_json(&jb);
        if (j != NULL && unpack_one(&mb, &up) == 0) {
            ok = same_value(j, &up.data);
            msgpack_unpacked_destroy(&up);
        }
        pk_buf_free(&mb);
    }
    pk_buf_free(&jb);
    if (ok) {
        g_passed++;
    } else {
        g_failed++;
        printf("FAIL %s:%d: JSON and MessagePack renderings differ or do not parse\n", __FILE__, line);
    }
    return j;
}

/* ---- Documents --------------------------------------------------------- */

static void doc_nested(pk_out_t *o, const void *arg)
{
    (void)arg;
    pk_out_map(o, 11);
    pk_out_key(o, "id");
    pk_out_u64(o, 42);
    pk_out_key(o, "big");
    pk_out_u64(o, (uint64_t)INT64_MAX);
    pk_out_key(o, "neg");
    pk_out_i64(o, INT64_MIN);
    pk_out_key(o, "t");
    pk_out_bool(o, true);
    pk_out_key(o, "f");
    pk_out_bool(o, false);
    pk_out_key(o, "n");
    pk_out_null(o);
    pk_out_key(o, "s");
    pk_out_cstr(o, "h\xc3\xa9llo \"w\"");
    pk_out_key(o, "empty");
    pk_out_str(o, "", 0);
    pk_out_key(o, "arr");
    pk_out_array(o, 6);
    pk_out_u64(o, 1);
    pk_out_i64(o, -2);
    pk_out_cstr(o, "x");
    pk_out_array(o, 0);
    pk_out_end(o);
    pk_out_map(o, 0);
    pk_out_end(o);
    pk_out_array(o, 1);
    pk_out_array(o, 1);
    pk_out_array(o, 1);
    pk_out_cstr(o, "deep");
    pk_out_end(o);
    pk_out_end(o);
    pk_out_end(o);
    pk_out_end(o);
    pk_out_key(o, "map");
    pk_out_map(o, 2);
    pk_out_key(o, "a");
    pk_out_map(o, 1);
    pk_out_key(o, "b");
    pk_out_array(o, 3);
    pk_out_bool(o, true);
    pk_out_null(o);
    pk_out_map(o, 1);
    pk_out_key(o, "c");
    pk_out_i64(o, 0);
    pk_out_end(o);
    pk_out_end(o);
    pk_out_end(o);
    pk_out_key(o, "z");
    pk_out_i64(o, -1);
    pk_out_end(o);
    pk_out_key(o, "time");
    pk_out_time(o, 1764000000123);
    pk_out_end(o);
}

static void test_nested(void)
{
    json_t *j = render_both(doc_nested, NULL, __LINE__);
    if (j == NULL)
        return;
    CHECK(json_is_object(j) && json_object_size(j) == 11);
    CHECK(json_integer_value(json_object_get(j, "id")) == 42);
    CHECK(json_integer_value(json_object_get(j, "big")) == INT64_MAX);
    CHECK(json_integer_value(json_object_get(j, "neg")) == INT64_MIN);
    CHECK(json_is_true(json_object_get(j, "t")));
    CHECK(json_is_false(json_object_get(j, "f")));
    CHECK(json_is_null(json_object_get(j, "n")));
    CHECK(json_is_string(json_object_get(j, "s")) &&
          strcmp(json_string_value(json_object_get(j, "s")), "h\xc3\xa9llo \"w\"") == 0);
    CHECK(json_is_string(json_object_get(j, "empty")) && json_string_length(json_object_get(j, "empty")) == 0);
    json_t *arr = json_object_get(j, "arr");
    CHECK(json_is_array(arr) && json_array_size(arr) == 6);
    CHECK(json_integer_value(json_array_get(arr, 0)) == 1);
    CHECK(json_integer_value(json_array_get(arr, 1)) == -2);
    CHECK(json_is_array(json_array_get(arr, 3)) && json_array_size(json_array_get(arr, 3)) == 0);
    CHECK(json_is_object(json_array_get(arr, 4)) && json_object_size(json_array_get(arr, 4)) == 0);
    json_t *deep = json_array_get(json_array_get(json_array_get(json_array_get(arr, 5), 0), 0), 0);
    CHECK(json_is_string(deep) && strcmp(json_string_value(deep), "deep") == 0);
    json_t *c = json_object_get(json_array_get(json_object_get(json_object_get(json_object_get(j, "map"), "a"), "b"), 2),
                                "c");
    CHECK(json_is_integer(c) && json_integer_value(c) == 0);
    CHECK(json_integer_value(json_object_get(json_object_get(j, "map"), "z")) == -1);
    CHECK(strcmp(json_string_value(json_object_get(j, "time")), "2025-11-24T16:00:00.123Z") == 0);
    json_decref(j);

    /* The JSON text itself is compact and in call order. */
    pk_buf_t b;
    CHECK_RC(render(PK_FMT_JSON, doc_nested, NULL, &b), 0);
    static const char want[] =
        "{\"id\":42,\"big\":9223372036854775807,\"neg\":-9223372036854775808,\"t\":true,\"f\":false,\"n\":null,"
        "\"s\":\"h\xc3\xa9llo \\\"w\\\"\",\"empty\":\"\",\"arr\":[1,-2,\"x\",[],{},[[[\"deep\"]]]],"
        "\"map\":{\"a\":{\"b\":[true,null,{\"c\":0}]},\"z\":-1},\"time\":\"2025-11-24T16:00:00.123Z\"}";
    CHECK(b.b_len == sizeof(want) - 1 && memcmp(b.b_data, want, b.b_len) == 0);
    if (!(b.b_len == sizeof(want) - 1 && memcmp(b.b_data, want, b.b_len) == 0))
        printf("  got  %.*s\n  want %s\n", (int)b.b_len, b.b_data, want);
    pk_buf_free(&b);
}

static void doc_u64_max(pk_out_t *o, const void *arg)
{
    (void)arg;
    pk_out_array(o, 3);
    pk_out_u64(o, UINT64_MAX);
    pk_out_u64(o, 0);
    pk_out_i64(o, INT64_MAX);
    pk_out_end(o);
}

static void test_integers(void)
{
    /* jansson stops at INT64_MAX, so check the text and the unpacked form. */
    pk_buf_t b;
    msgpack_unpacked up;
    CHECK_RC(render(PK_FMT_JSON, doc_u64_max, NULL, &b), 0);
    CHECK(b.b_len == 44 && memcmp(b.b_data, "[18446744073709551615,0,9223372036854775807]", 44) == 0);
    pk_buf_free(&b);
    CHECK_RC(render(PK_FMT_MSGPACK, doc_u64_max, NULL, &b), 0);
    CHECK(unpack_one(&b, &up) == 0);
    CHECK(up.data.type == MSGPACK_OBJECT_ARRAY && up.data.via.array.size == 3 &&
          up.data.via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
          up.data.via.array.ptr[0].via.u64 == UINT64_MAX && up.data.via.array.ptr[1].via.u64 == 0 &&
          up.data.via.array.ptr[2].via.u64 == (uint64_t)INT64_MAX);
    msgpack_unpacked_destroy(&up);
    pk_buf_free(&b);
}

/* A bare top-level scalar and the ends of the depth bound are documents too. */
static void doc_scalar(pk_out_t *o, const void *arg)
{
    (void)arg;
    pk_out_cstr(o, "alone");
}

static void doc_depth(pk_out_t *o, const void *arg)
{
    unsigned depth = *(const unsigned *)arg;
    for (unsigned i = 0; i < depth; i++) {
        if (i % 2 == 0) {
            pk_out_array(o, 1);
        } else {
            pk_out_map(o, 1);
            pk_out_key(o, "k");
        }
    }
    pk_out_u64(o, 7);
    for (unsigned i = 0; i < depth; i++)
        pk_out_end(o);
}

static void test_depth(void)
{
    json_t *j = render_both(doc_scalar, NULL, __LINE__);
    CHECK(json_is_string(j) && strcmp(json_string_value(j), "alone") == 0);
    json_decref(j);

    unsigned depth = PK_OUT_DEPTH_MAX;
    j = render_both(doc_depth, &depth, __LINE__);
    json_t *v = j;
    for (unsigned i = 0; v != NULL && i < depth; i++)
        v = i % 2 == 0 ? json_array_get(v, 0) : json_object_get(v, "k");
    CHECK(json_is_integer(v) && json_integer_value(v) == 7);
    json_decref(j);

    /*
     * Deeper than PK_OUT_DEPTH_MAX: the writer fails (-ENOSPC) and stays
     * failed; the extra levels are counted so every pk_out_end() still
     * matches, and nothing asserts or wraps.  Run in a child so that a
     * regression (an assertion) kills only the child.
     */
    static const unsigned overs[] = {PK_OUT_DEPTH_MAX + 1, PK_OUT_DEPTH_MAX + 2, PK_OUT_DEPTH_MAX + 7, 200};
    for (int fmt = 0; fmt < 2; fmt++) {
        for (size_t k = 0; k < PK_ARRAY_LEN(overs); k++) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                pk_out_t o;
                pk_buf_t b = {NULL, 0, 0};
                pk_out_init(&o, (pk_fmt_t)fmt);
                doc_depth(&o, &overs[k]);
                int balanced = o.o_depth == 0 && o.o_over == 0;
                int rc = pk_out_finish(&o, &b);
                _exit(rc == -ENOSPC && balanced && b.b_data == NULL ? 0 : 1);
            }
            int status = 0;
            waitpid(pid, &status, 0);
            int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            if (!clean)
                printf("  depth %u (%s): child %s %d\n", overs[k], fmt ? "msgpack" : "json",
                       WIFSIGNALED(status) ? "killed by signal" : "exited with",
                       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            CHECK(clean);
        }
    }

    /* A branch that goes too deep, followed by siblings at the recorded
     * levels: the siblings are counted normally (no assertion) and the
     * document still fails as a whole. */
    for (int fmt = 0; fmt < 2; fmt++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            unsigned over = PK_OUT_DEPTH_MAX + 3;
            pk_out_t o;
            pk_buf_t b = {NULL, 0, 0};
            pk_out_init(&o, (pk_fmt_t)fmt);
            pk_out_map(&o, 3);
            pk_out_key(&o, "deep");
            doc_depth(&o, &over);
            pk_out_key(&o, "after");
            pk_out_array(&o, 2);
            pk_out_cstr(&o, "x");
            pk_out_map(&o, 1);
            pk_out_key(&o, "y");
            pk_out_null(&o);
            pk_out_end(&o);
            pk_out_end(&o);
            pk_out_key(&o, "last");
            pk_out_time(&o, 0);
            pk_out_end(&o);
            int rc = pk_out_finish(&o, &b);
            _exit(rc == -ENOSPC && o.o_depth == 0 && o.o_over == 0 ? 0 : 1);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
}

/* ---- Strings ----------------------------------------------------------- */

typedef struct strarg {
    const char *sa_s;
    size_t sa_len;
} strarg_t;

static void doc_string(pk_out_t *o, const void *arg)
{
    const strarg_t *sa = arg;
    pk_out_str(o, sa->sa_s, sa->sa_len);
}

static void doc_string_in_map(pk_out_t *o, const void *arg)
{
    const strarg_t *sa = arg;
    pk_out_map(o, 1);
    pk_out_key(o, "k\"\\\n\x7f");
    pk_out_str(o, sa->sa_s, sa->sa_len);
    pk_out_end(o);
}

static int json_text_is(const char *s, size_t len, const char *want)
{
    strarg_t sa = {s, len};
    pk_buf_t b;
    int ok = render(PK_FMT_JSON, doc_string, &sa, &b) == 0 && b.b_len == strlen(want) &&
             memcmp(b.b_data, want, b.b_len) == 0;
    if (!ok)
        printf("  rendered %.*s, want %s\n", (int)b.b_len, b.b_data, want);
    pk_buf_free(&b);
    return ok;
}

/* Renders s both ways; the JSON text has no raw control byte and jansson
 * reads back exactly s. */
static int string_round_trips(const char *s, size_t len)
{
    strarg_t sa = {s, len};
    pk_buf_t b;
    int ok = 0;
    if (render(PK_FMT_JSON, doc_string_in_map, &sa, &b) == 0) {
        ok = 1;
        for (size_t i = 0; i < b.b_len; i++)
            if ((unsigned char)b.b_data[i] < 0x20 || (unsigned char)b.b_data[i] == 0x7f)
                ok = 0;
        json_t *j = parse_json(&b);
        json_t *v = j ? json_object_get(j, "k\"\\\n\x7f") : NULL;
        ok = ok && v != NULL && json_string_length(v) == len && memcmp(json_string_value(v), s, len) == 0;
        json_decref(j);
        pk_buf_free(&b);
    }
    json_t *both = render_both(doc_string_in_map, &sa, __LINE__);
    ok = ok && both != NULL;
    json_decref(both);
    return ok;
}

static void test_escaping(void)
{
    CHECK(json_text_is("plain", 5, "\"plain\""));
    CHECK(json_text_is("", 0, "\"\""));
    CHECK(json_text_is("a\"b", 3, "\"a\\\"b\""));
    CHECK(json_text_is("a\\b", 3, "\"a\\\\b\""));
    CHECK(json_text_is("\\\"", 2, "\"\\\\\\\"\""));
    CHECK(json_text_is("\n\r\t", 3, "\"\\u000a\\u000d\\u0009\""));
    CHECK(json_text_is("\x01\x1f", 2, "\"\\u0001\\u001f\""));
    CHECK(json_text_is("a\0b", 3, "\"a\\u0000b\""));
    CHECK(json_text_is("\x7f", 1, "\"\\u007f\""));
    CHECK(json_text_is(" ~/<>'", 6, "\" ~/<>'\"")); /* printable ASCII stays as is */
    CHECK(json_text_is("\xe2\x82\xac", 3, "\"\xe2\x82\xac\"")); /* UTF-8 passes through */

    /* Every byte 0x00..0x7f, and every one of them repeated past the
     * writer's 256-byte staging buffer at each alignment. */
    char all[128];
    for (int i = 0; i < 128; i++)
        all[i] = (char)i;
    CHECK(string_round_trips(all, sizeof(all)));
    static const char specials[] = {'"', '\\', '\x01', '\x7f', 'a', '\0'};
    char big[1100];
    int long_ok = 1;
    for (size_t k = 0; k < sizeof(specials); k++) {
        for (size_t len = 240; len <= 270; len++) {
            memset(big, 'x', len);
            for (size_t i = 0; i < len; i += 1 + k)
                big[i] = specials[k];
            if (!string_round_trips(big, len))
                long_ok = 0;
        }
        memset(big, specials[k], sizeof(big));
        if (!string_round_trips(big, sizeof(big)))
            long_ok = 0;
    }
    CHECK(long_ok);
    /* Random ASCII with controls, fixed seed. */
    uint32_t x = 12345;
    int rand_ok = 1;
    for (int iter = 0; iter < 300; iter++) {
        size_t len = 0;
        x = x * 1103515245 + 12345;
        len = (x >> 8) % 1000;
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245 + 12345;
            big[i] = (char)((x >> 16) & 0x7f);
        }
        if (!string_round_trips(big, len))
            rand_ok = 0;
    }
    CHECK(rand_ok);
}

/* ---- Raw values --------------------------------------------------------- */

static void doc_raw(pk_out_t *o, const void *arg)
{
    (void)arg;
    pk_out_array(o, 3);
    pk_out_u64(o, 1);
    if (o->o_fmt == PK_FMT_JSON) {
        pk_out_raw(o, "{\"r\":[1,2]}", 11);
        pk_out_raw(o, "\"s\"", 3);
    } else {
        pk_out_raw(o, "\x81\xa1r\x92\x01\x02", 6);
        pk_out_raw(o, "\xa1s", 2);
    }
    pk_out_end(o);
}

static void test_raw(void)
{
    json_t *j = render_both(doc_raw, NULL, __LINE__);
    CHECK(json_is_array(j) && json_array_size(j) == 3);
    CHECK(json_integer_value(json_array_get(json_object_get(json_array_get(j, 1), "r"), 1)) == 2);
    CHECK(json_is_string(json_array_get(j, 2)) && strcmp(json_string_value(json_array_get(j, 2)), "s") == 0);
    json_decref(j);
}

/* ---- Errors ------------------------------------------------------------- */

static void test_error_doc(void)
{
    pk_buf_t b;
    CHECK_RC(pk_out_error(PK_FMT_JSON, "not_found", "no such \"thing\"", &b), 0);
    static const char want[] = "{\"error\":{\"code\":\"not_found\",\"message\":\"no such \\\"thing\\\"\"}}";
    CHECK(b.b_len == sizeof(want) - 1 && memcmp(b.b_data, want, b.b_len) == 0);
    json_t *j = parse_json(&b);
    json_t *e = json_object_get(j, "error");
    CHECK(json_is_object(j) && json_object_size(j) == 1);
    CHECK(json_is_object(e) && json_object_size(e) == 2);
    CHECK(json_is_string(json_object_get(e, "code")) &&
          strcmp(json_string_value(json_object_get(e, "code")), "not_found") == 0);
    CHECK(json_is_string(json_object_get(e, "message")) &&
          strcmp(json_string_value(json_object_get(e, "message")), "no such \"thing\"") == 0);
    pk_buf_free(&b);

    msgpack_unpacked up;
    CHECK_RC(pk_out_error(PK_FMT_MSGPACK, "not_found", "no such \"thing\"", &b), 0);
    CHECK(unpack_one(&b, &up) == 0);
    CHECK(same_value(j, &up.data));
    msgpack_unpacked_destroy(&up);
    pk_buf_free(&b);
    json_decref(j);

    /* Control characters in a message are escaped too. */
    CHECK_RC(pk_out_error(PK_FMT_JSON, "bad", "line1\nline2\t\x01", &b), 0);
    j = parse_json(&b);
    CHECK(j != NULL &&
          strcmp(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "line1\nline2\t\x01") ==
              0);
    json_decref(j);
    pk_buf_free(&b);
}

/* ---- Bounds ------------------------------------------------------------- */

static void doc_huge_string(pk_out_t *o, const void *arg)
{
    const strarg_t *sa = arg;
    pk_out_array(o, 2);
    pk_out_str(o, sa->sa_s, sa->sa_len);
    pk_out_u64(o, 1);
    pk_out_end(o);
}

static void doc_many_small(pk_out_t *o, const void *arg)
{
    (void)arg;
    const uint32_t n = PK_OUT_BYTES_MAX / 8;
    pk_out_array(o, n);
    for (uint32_t i = 0; i < n; i++)
        pk_out_cstr(o, "0123456789");
    pk_out_end(o);
}

static void test_bounds(void)
{
    pk_buf_t b;
    memset(&b, 0, sizeof(b));
    /* Over the bound in one append: refused, nothing allocated. */
    CHECK_RC(pk_buf_append(&b, "x", (size_t)PK_OUT_BYTES_MAX + 1), -ENOSPC);
    CHECK(b.b_len == 0 && b.b_data == NULL);
    CHECK_RC(pk_buf_append(&b, "x", SIZE_MAX), -ENOSPC); /* no wrap-around */
    CHECK(b.b_len == 0);

    /* Exactly the bound fits; one byte more does not, and changes nothing. */
    char *chunk = malloc(PK_OUT_BYTES_MAX);
    memset(chunk, 'a', PK_OUT_BYTES_MAX);
    CHECK_RC(pk_buf_append(&b, "abc", 3), 0);
    CHECK_RC(pk_buf_append(&b, chunk, PK_OUT_BYTES_MAX - 3), 0);
    CHECK(b.b_len == PK_OUT_BYTES_MAX && memcmp(b.b_data, "abc", 3) == 0);
    CHECK_RC(pk_buf_append(&b, "x", 1), -ENOSPC);
    CHECK_RC(pk_buf_append(&b, "x", SIZE_MAX - 1), -ENOSPC);
    CHECK(b.b_len == PK_OUT_BYTES_MAX);
    CHECK_RC(pk_buf_append(&b, "", 0), 0);
    pk_buf_free(&b);
    CHECK(b.b_data == NULL && b.b_len == 0 && b.b_cap == 0);

    /* The writer turns the bound into an error from pk_out_finish, in both
     * formats, for one big value and for many small ones. */
    strarg_t sa = {chunk, PK_OUT_BYTES_MAX - 2};
    for (int fmt = 0; fmt < 2; fmt++) {
        pk_out_t o;
        pk_out_init(&o, (pk_fmt_t)fmt);
        doc_huge_string(&o, &sa);
        pk_buf_t out = {(char *)"sentinel", 8, 8};
        CHECK_RC(pk_out_finish(&o, &out), -ENOSPC);
        CHECK(o.o_buf.b_data == NULL);                          /* freed */
        CHECK(out.b_len == 8 && strcmp(out.b_data, "sentinel") == 0); /* untouched */
        CHECK_RC(render((pk_fmt_t)fmt, doc_many_small, NULL, &out), -ENOSPC);
    }
    /* The failure is sticky: once a value did not fit, a smaller one that
     * would fit is not written either (no document with a hole). */
    sa.sa_len = PK_OUT_BYTES_MAX - 4;
    for (int fmt = 0; fmt < 2; fmt++) {
        pk_out_t o;
        pk_out_init(&o, (pk_fmt_t)fmt);
        pk_out_array(&o, 3);
        pk_out_cstr(&o, "0123456789");
        pk_out_str(&o, chunk, sa.sa_len); /* does not fit (a prefix may have) */
        CHECK_RC(o.o_err, -ENOSPC);
        size_t at = o.o_buf.b_len;
        CHECK(at < PK_OUT_BYTES_MAX);
        pk_out_u64(&o, 1); /* would fit */
        pk_out_end(&o);
        CHECK(o.o_buf.b_len == at);
        pk_buf_t out;
        CHECK_RC(pk_out_finish(&o, &out), -ENOSPC);
    }

    /* Just under the bound still renders. */
    sa.sa_len = PK_OUT_BYTES_MAX - 16;
    CHECK_RC(render(PK_FMT_MSGPACK, doc_huge_string, &sa, &b), 0);
    CHECK(b.b_len <= PK_OUT_BYTES_MAX);
    pk_buf_free(&b);
    sa.sa_len = PK_OUT_BYTES_MAX - 16;
    CHECK_RC(render(PK_FMT_JSON, doc_huge_string, &sa, &b), 0);
    CHECK(b.b_len == PK_OUT_BYTES_MAX - 16 + 6); /* ["...",1] */
    pk_buf_free(&b);
    free(chunk);

    /* discard frees an unfinished writer. */
    pk_out_t o;
    pk_out_init(&o, PK_FMT_JSON);
    pk_out_array(&o, 1);
    pk_out_cstr(&o, "x");
    pk_out_discard(&o);
    CHECK(o.o_buf.b_data == NULL);
}

int main(void)
{
    test_nested();
    test_integers();
    test_depth();
    test_escaping();
    test_raw();
    test_error_doc();
    test_bounds();

    return CHECK_DONE("test_out");
}
