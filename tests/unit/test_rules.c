/*
 * Unit tests for the pure rules: user field validation and shard placement
 * (src/domain/user.c), RFC 3339 times and roles (src/common/common.c), and
 * option parsing (src/common/config.c).  Expected times come from libc's
 * timegm(), an independent oracle.  Plain program: prints one line per
 * failed check and a summary, exits non-zero when anything failed.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pickple/common.h"
#include "pickple/config.h"
#include "pickple/user.h"

#include "check.h"

/* ---- Users -------------------------------------------------------------- */

#define NAME_OK(s) CHECK(pk_user_username_valid(s, sizeof(s) - 1))
#define NAME_BAD(s) CHECK(!pk_user_username_valid(s, sizeof(s) - 1))
#define EMAIL_OK(s) CHECK(pk_user_email_valid(s, sizeof(s) - 1))
#define EMAIL_BAD(s) CHECK(!pk_user_email_valid(s, sizeof(s) - 1))

static void test_username(void)
{
    char buf[64];
    NAME_OK("abc");
    NAME_OK("a1b");
    NAME_OK("123");
    NAME_OK("a_b");
    NAME_OK("a.b");
    NAME_OK("a-b");
    NAME_OK("___");
    NAME_OK("...");
    NAME_OK("---");
    NAME_OK("john.doe-99_x");
    NAME_BAD("ab");
    NAME_BAD("");
    NAME_BAD("Abc");
    NAME_BAD("abC");
    NAME_BAD("a c");
    NAME_BAD(" abc");
    NAME_BAD("abc\n");
    NAME_BAD("caf\xc3\xa9");       /* UTF-8 e-acute */
    NAME_BAD("\xe6\x97\xa5\xe6\x9c\xac"); /* two CJK characters */
    NAME_BAD("ab\x80");
    NAME_BAD("ab\xff");
    NAME_BAD("ab\0c"); /* NUL inside the counted bytes */
    /* Every other ASCII punctuation character is refused. */
    const char *punct = "!\"#$%&'()*+,/:;<=>?@[\\]^`{|}~";
    int others_ok = 1;
    for (const char *p = punct; *p; p++) {
        char s[4] = {'a', *p, 'b', 0};
        if (pk_user_username_valid(s, 3)) {
            others_ok = 0;
            printf("  username with '%c' accepted\n", *p);
        }
    }
    CHECK(others_ok);
    /* Lengths 3 and 32 pass, 2 and 33 fail. */
    memset(buf, 'x', sizeof(buf));
    CHECK(pk_user_username_valid(buf, 3));
    CHECK(pk_user_username_valid(buf, 32));
    CHECK(!pk_user_username_valid(buf, 2));
    CHECK(!pk_user_username_valid(buf, 33));
    CHECK(!pk_user_username_valid(buf, 0));
    /* len is honoured: bytes past it are not looked at. */
    CHECK(pk_user_username_valid("abc DEF", 3));
}

static void test_email(void)
{
    char buf[300];
    EMAIL_OK("a@b");
    EMAIL_OK("alice@example.com");
    EMAIL_OK("a.b+tag@sub.example.org");
    EMAIL_OK("!#$%&'*+/=?^_`{|}~-@x");
    EMAIL_BAD("ab");
    EMAIL_BAD("abc");       /* no @ */
    EMAIL_BAD("a@b@c");     /* two @ */
    EMAIL_BAD("a@@b");
    EMAIL_BAD("@ab");       /* leading */
    EMAIL_BAD("ab@");       /* trailing */
    EMAIL_BAD("@");
    EMAIL_BAD("a b@c");     /* space */
    EMAIL_BAD(" a@b");
    EMAIL_BAD("a@b ");
    EMAIL_BAD("a@b\t");     /* control characters */
    EMAIL_BAD("a\n@b");
    EMAIL_BAD("a@b\x01");
    EMAIL_BAD("a@b\x1f");
    EMAIL_BAD("a@b\x7f");   /* DEL */
    EMAIL_BAD("a@b\0c");    /* NUL */
    EMAIL_BAD("\xc3\xa9@b"); /* non-ASCII */
    EMAIL_BAD("a@\xff");
    /* 254 bytes pass, 255 fail. */
    memset(buf, 'e', sizeof(buf));
    buf[10] = '@';
    CHECK(pk_user_email_valid(buf, 254));
    CHECK(!pk_user_email_valid(buf, 255));
    CHECK(pk_user_email_valid(buf, 12));
    CHECK(!pk_user_email_valid(buf, 11)); /* '@' would be last */
    CHECK(!pk_user_email_valid(buf, 0));
}

static void test_password_and_shard(void)
{
    CHECK(!pk_user_password_valid(0));
    CHECK(!pk_user_password_valid(7));
    CHECK(pk_user_password_valid(8));
    CHECK(pk_user_password_valid(128));
    CHECK(!pk_user_password_valid(129));
    CHECK(!pk_user_password_valid((size_t)-1));

    /* FNV-1a 64 reference vectors (from the FNV specification's test
     * suite), reduced modulo nshards. */
    static const struct {
        const char *s;
        uint64_t h;
    } fnv[] = {{"", 0xcbf29ce484222325ull}, {"a", 0xaf63dc4c8601ec8cull}, {"foobar", 0x85944171f73967e8ull}};
    unsigned fnv_bad = 0;
    for (size_t i = 0; i < PK_ARRAY_LEN(fnv); i++)
        for (unsigned n = 1; n <= 64; n++)
            if (pk_user_shard_of_name(fnv[i].s, strlen(fnv[i].s), n) != (unsigned)(fnv[i].h % n) &&
                fnv_bad++ < 3)
                printf("  shard_of_name(\"%s\", %u) = %u, FNV-1a says %u\n", fnv[i].s, n,
                       pk_user_shard_of_name(fnv[i].s, strlen(fnv[i].s), n), (unsigned)(fnv[i].h % n));
    /* Regression: the offset basis once lacked its last digit
     * (1469598103934665603), a deterministic but undocumented hash. */
    CHECK(fnv_bad == 0);

    /* Stable, in range, and spread over the shards. */
    unsigned hist[8] = {0};
    int stable = 1, in_range = 1;
    for (int i = 0; i < 8000; i++) {
        char name[32];
        int len = snprintf(name, sizeof(name), "user%d", i);
        for (unsigned n = 1; n <= 64; n++) {
            unsigned s = pk_user_shard_of_name(name, (size_t)len, n);
            if (s >= n)
                in_range = 0;
            if (s != pk_user_shard_of_name(name, (size_t)len, n))
                stable = 0;
        }
        hist[pk_user_shard_of_name(name, (size_t)len, 8)]++;
    }
    CHECK(stable);
    CHECK(in_range);
    int spread = 1;
    for (int s = 0; s < 8; s++)
        if (hist[s] < 800 || hist[s] > 1200)
            spread = 0;
    CHECK(spread);
    CHECK(pk_user_shard_of_name("alice", 5, 1) == 0);
}

/* ---- Roles -------------------------------------------------------------- */

static void test_roles(void)
{
    pk_role_t r = (pk_role_t)99;
    CHECK_RC(pk_role_parse("customer", 8, &r), 0);
    CHECK(r == PK_ROLE_CUSTOMER);
    CHECK_RC(pk_role_parse("seller", 6, &r), 0);
    CHECK(r == PK_ROLE_SELLER);
    CHECK_RC(pk_role_parse("admin", 5, &r), 0);
    CHECK(r == PK_ROLE_ADMIN);
    r = (pk_role_t)99;
    CHECK_RC(pk_role_parse("Admin", 5, &r), -EINVAL);
    CHECK_RC(pk_role_parse("ADMIN", 5, &r), -EINVAL);
    CHECK_RC(pk_role_parse("admi", 4, &r), -EINVAL);
    CHECK_RC(pk_role_parse("adminx", 6, &r), -EINVAL);
    CHECK_RC(pk_role_parse("", 0, &r), -EINVAL);
    CHECK_RC(pk_role_parse("root", 4, &r), -EINVAL);
    CHECK_RC(pk_role_parse("admin\0", 6, &r), -EINVAL);
    CHECK(r == (pk_role_t)99); /* untouched on failure */
    /* len bounds the name: a prefix of a longer buffer. */
    CHECK_RC(pk_role_parse("sellers", 6, &r), 0);
    CHECK(r == PK_ROLE_SELLER);

    CHECK(pk_role_name(PK_ROLE_CUSTOMER) != NULL && strcmp(pk_role_name(PK_ROLE_CUSTOMER), "customer") == 0);
    CHECK(pk_role_name(PK_ROLE_SELLER) != NULL && strcmp(pk_role_name(PK_ROLE_SELLER), "seller") == 0);
    CHECK(pk_role_name(PK_ROLE_ADMIN) != NULL && strcmp(pk_role_name(PK_ROLE_ADMIN), "admin") == 0);
    CHECK(pk_role_name((pk_role_t)3) == NULL);
    CHECK(pk_role_name((pk_role_t)-1) == NULL);
    /* name and parse are inverse. */
    for (int i = 0; i <= 2; i++) {
        const char *n = pk_role_name((pk_role_t)i);
        CHECK(n != NULL && pk_role_parse(n, strlen(n), &r) == 0 && r == (pk_role_t)i);
    }
}

/* ---- Times -------------------------------------------------------------- */

static int64_t utc_ms(int y, int mo, int d, int h, int mi, int s, int ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* Parses from a heap copy of exactly strlen(s) bytes (no NUL to lean on). */
static int parse_exact(const char *s, int64_t *out)
{
    size_t len = strlen(s);
    char *copy = malloc(len ? len : 1);
    memcpy(copy, s, len);
    int rc = pk_time_parse(copy, len, out);
    free(copy);
    return rc;
}

static void check_time(const char *s, int64_t want, int line)
{
    int64_t got = 0;
    int rc = parse_exact(s, &got);
    if (rc == 0 && got == want) {
        g_passed++;
    } else {
        g_failed++;
        printf("FAIL %s:%d: pk_time_parse(\"%s\") -> rc %d, %lld ms; want %lld\n", __FILE__, line, s, rc,
               (long long)got, (long long)want);
    }
}

static void check_time_bad(const char *s, int line)
{
    int64_t got = 12345;
    int rc = parse_exact(s, &got);
    if (rc == -EINVAL && got == 12345) {
        g_passed++;
    } else {
        g_failed++;
        printf("FAIL %s:%d: pk_time_parse(\"%s\") -> rc %d (%lld ms), want -EINVAL\n", __FILE__, line, s, rc,
               (long long)got);
    }
}

#define TIME_IS(s, want) check_time(s, want, __LINE__)
#define TIME_BAD(s) check_time_bad(s, __LINE__)

static void test_time_parse(void)
{
    const int64_t ten = utc_ms(2026, 11, 24, 10, 0, 0, 0);
    TIME_IS("1970-01-01T00:00:00Z", 0);
    TIME_IS("2026-11-24T10:00:00Z", ten);
    TIME_IS("2026-11-24t10:00:00z", ten); /* RFC 3339 allows lower case */
    TIME_IS("2026-11-24 10:00:00Z", ten); /* and a space separator */
    TIME_IS("2026-11-24T12:00:00+02:00", ten);
    TIME_IS("2026-11-24T04:30:00-05:30", ten);
    TIME_IS("2026-11-24T10:00:00+00:00", ten);
    TIME_IS("2026-11-24T10:00:00-00:00", ten);
    TIME_IS("2026-11-25T09:59:00+23:59", ten);
    TIME_IS("2026-11-24T01:00:00+23:00", utc_ms(2026, 11, 23, 2, 0, 0, 0));
    TIME_IS("2026-12-31T23:30:00-01:00", utc_ms(2027, 1, 1, 0, 30, 0, 0)); /* offset crosses a year */
    /* Fractional seconds: any 1..9 digits, truncated to milliseconds. */
    TIME_IS("2026-11-24T10:00:00.5Z", ten + 500);
    TIME_IS("2026-11-24T10:00:00.05Z", ten + 50);
    TIME_IS("2026-11-24T10:00:00.123Z", ten + 123);
    TIME_IS("2026-11-24T10:00:00.1239Z", ten + 123);
    TIME_IS("2026-11-24T10:00:00.999999999Z", ten + 999);
    TIME_IS("2026-11-24T12:00:00.250+02:00", ten + 250);
    TIME_BAD("2026-11-24T10:00:00.1234567890Z"); /* 10 digits */
    TIME_BAD("2026-11-24T10:00:00.Z");
    TIME_BAD("2026-11-24T10:00:00,5Z");
    TIME_BAD("2026-11-24T10:00:00.5");
    /* Pre-epoch and the ends of the four-digit range. */
    TIME_IS("1969-12-31T23:59:59.999Z", -1);
    TIME_IS("1900-01-01T00:00:00Z", utc_ms(1900, 1, 1, 0, 0, 0, 0));
    TIME_IS("9999-12-31T23:59:59.999Z", utc_ms(9999, 12, 31, 23, 59, 59, 999));
    TIME_IS("0001-01-01T00:00:00Z", -62135596800000LL);
    /* Leap years. */
    TIME_IS("2024-02-29T00:00:00Z", utc_ms(2024, 2, 29, 0, 0, 0, 0));
    TIME_IS("2000-02-29T00:00:00Z", utc_ms(2000, 2, 29, 0, 0, 0, 0));
    TIME_IS("2024-03-01T00:00:00Z", utc_ms(2024, 3, 1, 0, 0, 0, 0));
    TIME_BAD("2023-02-29T00:00:00Z");
    TIME_BAD("1900-02-29T00:00:00Z");
    TIME_BAD("2100-02-29T00:00:00Z");
    TIME_BAD("2024-02-30T00:00:00Z");
    /* Months and days. */
    TIME_BAD("2026-00-10T00:00:00Z");
    TIME_BAD("2026-13-10T00:00:00Z");
    TIME_BAD("2026-01-00T00:00:00Z");
    TIME_BAD("2026-01-32T00:00:00Z");
    TIME_BAD("2026-04-31T00:00:00Z");
    TIME_BAD("2026-06-31T00:00:00Z");
    TIME_BAD("2026-09-31T00:00:00Z");
    TIME_BAD("2026-11-31T00:00:00Z");
    TIME_IS("2026-12-31T00:00:00Z", utc_ms(2026, 12, 31, 0, 0, 0, 0));
    TIME_BAD("2026-11-24T24:00:00Z");
    TIME_BAD("2026-11-24T10:60:00Z");
    TIME_BAD("2026-11-24T10:00:61Z");
    /* A leap second is accepted and clamped to :59. */
    TIME_IS("2016-12-31T23:59:60Z", utc_ms(2016, 12, 31, 23, 59, 59, 0));
    /* Offsets. */
    TIME_BAD("2026-11-24T10:00:00+24:00");
    TIME_BAD("2026-11-24T10:00:00+02:60");
    TIME_BAD("2026-11-24T10:00:00+0200");
    TIME_BAD("2026-11-24T10:00:00+02:0");
    TIME_BAD("2026-11-24T10:00:00+02:000");
    TIME_BAD("2026-11-24T10:00:00+2:00");
    TIME_BAD("2026-11-24T10:00:00 +02:00");
    TIME_BAD("2026-11-24T10:00:00UTC");
    TIME_BAD("2026-11-24T10:00:00ZZ");
    TIME_BAD("2026-11-24T10:00:00Z ");
    /* Garbage and near misses. */
    TIME_BAD("");
    TIME_BAD("Z");
    TIME_BAD("hello, world, hello!");
    TIME_BAD("2026-11-24");
    TIME_BAD("2026-11-24T10:00:00");
    TIME_BAD("2026-11-24T10:00Z");
    TIME_BAD("2026-11-24X10:00:00Z");
    TIME_BAD("2026/11/24T10:00:00Z");
    TIME_BAD("2026-11-24T10-00-00Z");
    TIME_BAD("20261-1-24T10:00:00Z");
    TIME_BAD("2026-1a-24T10:00:00Z");
    TIME_BAD("-026-11-24T10:00:00Z");
    TIME_BAD("+2026-11-24T10:00:00Z");
    TIME_BAD("2026-11-24T10:00:00.000000000000000000000Z"); /* over the length cap */
    TIME_BAD("2026-11-24T1 :00:00Z");
    TIME_BAD("2026-11-24T10:00: 0Z");

    /* len is honoured: a longer buffer parsed as its prefix. */
    int64_t got;
    CHECK_RC(pk_time_parse("2026-11-24T10:00:00Zjunk", 20, &got), 0);
    CHECK(got == ten);
    CHECK_RC(pk_time_parse("2026-11-24T10:00:00Z", 19, &got), -EINVAL);
}

static void test_time_format(void)
{
    char buf[64];
    CHECK(pk_time_format(0, buf, sizeof(buf)) == 24 && strcmp(buf, "1970-01-01T00:00:00.000Z") == 0);
    CHECK(pk_time_format(-1, buf, sizeof(buf)) == 24 && strcmp(buf, "1969-12-31T23:59:59.999Z") == 0);
    CHECK(pk_time_format(-1000, buf, sizeof(buf)) == 24 && strcmp(buf, "1969-12-31T23:59:59.000Z") == 0);
    CHECK(pk_time_format(-1001, buf, sizeof(buf)) == 24 && strcmp(buf, "1969-12-31T23:59:58.999Z") == 0);
    CHECK(pk_time_format(utc_ms(2026, 11, 24, 10, 0, 0, 7), buf, sizeof(buf)) == 24 &&
          strcmp(buf, "2026-11-24T10:00:00.007Z") == 0);
    CHECK(pk_time_format(utc_ms(2024, 2, 29, 23, 59, 59, 999), buf, sizeof(buf)) == 24 &&
          strcmp(buf, "2024-02-29T23:59:59.999Z") == 0);
    /* Exactly 25 bytes, as documented, is enough. */
    char exact[25];
    CHECK(pk_time_format(utc_ms(9999, 12, 31, 23, 59, 59, 999), exact, sizeof(exact)) == 24 &&
          strcmp(exact, "9999-12-31T23:59:59.999Z") == 0);

    /*
     * Past year 9999 the text no longer fits the documented 25 bytes: an
     * error with an empty string, never snprintf's would-be length (a caller
     * using that as the length would read past its buffer).  With room the
     * five-digit year is written whole.
     */
    int n = pk_time_format(utc_ms(9999, 12, 31, 23, 59, 59, 999) + 1, exact, sizeof(exact));
    CHECK(n == -ENOSPC && exact[0] == '\0');
    CHECK(pk_time_format(utc_ms(9999, 12, 31, 23, 59, 59, 999) + 1, buf, sizeof(buf)) == 25 &&
          strcmp(buf, "10000-01-01T00:00:00.000Z") == 0);
    /* Every size short of the text and its NUL is refused; one more fits. */
    int short_ok = 1;
    for (size_t size = 0; size <= 24; size++) {
        memset(buf, 'X', sizeof(buf));
        n = pk_time_format(0, buf, size);
        if (n != -ENOSPC || (size > 0 && buf[0] != '\0') || (size == 0 && buf[0] != 'X'))
            short_ok = 0;
    }
    CHECK(short_ok);
    CHECK(pk_time_format(0, buf, 25) == 24 && strcmp(buf, "1970-01-01T00:00:00.000Z") == 0);
    /* The hand-written calendar agrees with gmtime over 1970..9999: every
     * day boundary of the first 1,000 years' leap rules, and random times. */
    int calendar_ok = 1;
    uint64_t rnd = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 400000 && calendar_ok; i++) {
        int64_t ms;
        if (i < 200000) {
            ms = (int64_t)i * 86400000 + (i % 2 ? 86399999 : 0);
        } else {
            rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
            ms = (int64_t)(rnd % UINT64_C(253402300800000));
        }
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        char want[64];
        gmtime_r(&t, &tm);
        snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
        if (pk_time_format(ms, buf, sizeof(buf)) != 24 || strcmp(buf, want) != 0)
            calendar_ok = 0;
    }
    CHECK(calendar_ok);
    /* Out of gmtime's range: an error, not uninitialised fields. */
    n = pk_time_format(INT64_MAX, buf, sizeof(buf));
    CHECK(n == 29 || n < 0); /* year 292278994 formats; a narrower time_t could not */
    CHECK(n < 0 || strcmp(buf, "292278994-08-17T07:12:55.807Z") == 0);

    /* Round trips: format(parse(x)) == x for canonical text... */
    static const char *const canon[] = {
        "1970-01-01T00:00:00.000Z", "2026-11-24T10:00:00.000Z", "2024-02-29T12:34:56.789Z",
        "1999-12-31T23:59:59.999Z", "2000-01-01T00:00:00.001Z", "1969-07-20T20:17:40.000Z",
        "0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z",
    };
    for (size_t i = 0; i < PK_ARRAY_LEN(canon); i++) {
        int64_t ms;
        int rc = pk_time_parse(canon[i], strlen(canon[i]), &ms);
        CHECK(rc == 0 && pk_time_format(ms, buf, sizeof(buf)) == 24 && strcmp(buf, canon[i]) == 0);
    }
    /* ...offset text normalises to Z... */
    int64_t ms;
    CHECK_RC(pk_time_parse("2026-11-24T12:00:00.5+02:00", 27, &ms), 0);
    pk_time_format(ms, buf, sizeof(buf));
    CHECK(strcmp(buf, "2026-11-24T10:00:00.500Z") == 0);
    /* ...and parse(format(ms)) == ms over years 0001..9999 (fixed seed). */
    uint64_t x = 0x2545f4914f6cdd1dull;
    const int64_t lo = -62135596800000LL, hi = utc_ms(9999, 12, 31, 23, 59, 59, 999);
    int round_ok = 1;
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t t = lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
        int64_t back = 0;
        int len = pk_time_format(t, buf, sizeof(buf));
        if (len != 24 || pk_time_parse(buf, (size_t)len, &back) != 0 || back != t) {
            if (round_ok)
                printf("  round trip of %lld: \"%s\" -> %lld\n", (long long)t, buf, (long long)back);
            round_ok = 0;
        }
    }
    CHECK(round_ok);
}

/* ---- Configuration ------------------------------------------------------ */

static const char *const option_envs[] = {
    "PICKPLE_LISTEN",        "PICKPLE_THREADS",         "PICKPLE_DATA_DIR",          "PICKPLE_SYNC",
    "PICKPLE_ORDER_TTL",     "PICKPLE_ADMIN_PASSWORD",  "PICKPLE_JWT_SECRET_FILE",   "PICKPLE_TOKEN_TTL",
    "PICKPLE_KAFKA_BROKERS", "PICKPLE_KAFKA_TOPIC_PREFIX", "PICKPLE_TLS_CERT",       "PICKPLE_TLS_KEY",
    "PICKPLE_LOG_FORMAT",    "PICKPLE_MAP_SIZE",
};

static pk_config_t g_cf;
static char g_err[256];

/* Parses a NULL-terminated list of arguments after the program name.
 * --help and --version print to stdout: silence it around them. */
static int cfg(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    argv[argc++] = "pickple";
    va_start(ap, first);
    for (const char *a = first; a != NULL && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    g_err[0] = '\0';
    fflush(stdout);
    int saved = dup(STDOUT_FILENO), devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, STDOUT_FILENO);
    int rc = pk_config_parse(&g_cf, argc, argv, g_err, sizeof(g_err));
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(devnull);
    return rc;
}

static int err_has(const char *needle)
{
    if (strstr(g_err, needle) != NULL)
        return 1;
    printf("  error message \"%s\" lacks \"%s\"\n", g_err, needle);
    return 0;
}

static void test_config_defaults(void)
{
    CHECK_RC(cfg(NULL), PK_CONFIG_RUN);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned want_threads = cores < 1 ? 1 : cores > PK_THREADS_MAX ? PK_THREADS_MAX : (unsigned)cores;
    CHECK(strcmp(g_cf.cf_listen_host, "127.0.0.1") == 0);
    CHECK(g_cf.cf_listen_port == 8080);
    CHECK(g_cf.cf_threads == want_threads);
    CHECK(strcmp(g_cf.cf_data_dir, "./pickple-data") == 0);
    CHECK(g_cf.cf_sync_full);
    CHECK(g_cf.cf_order_ttl_s == 300);
    CHECK(g_cf.cf_admin_password[0] == '\0');
    CHECK(g_cf.cf_jwt_secret_file[0] == '\0');
    CHECK(g_cf.cf_token_ttl_s == 3600);
    CHECK(strcmp(g_cf.cf_kafka_brokers, "embedded") == 0);
    CHECK(strcmp(g_cf.cf_kafka_topic_prefix, "pickple") == 0);
    CHECK(g_cf.cf_tls_cert[0] == '\0' && g_cf.cf_tls_key[0] == '\0');
    CHECK(!g_cf.cf_log_json);
    CHECK(g_cf.cf_map_bytes == (uint64_t)8192 << 20);
    CHECK_RC(cfg("--help", NULL), PK_CONFIG_EXIT_OK);
    CHECK_RC(cfg("-h", NULL), PK_CONFIG_EXIT_OK);
    CHECK_RC(cfg("--version", NULL), PK_CONFIG_EXIT_OK);
}

static void test_config_options(void)
{
    /* Both "--opt value" and "--opt=value" for every option. */
    CHECK_RC(cfg("--listen", "0.0.0.0:9000", NULL), 0);
    CHECK(strcmp(g_cf.cf_listen_host, "0.0.0.0") == 0 && g_cf.cf_listen_port == 9000);
    CHECK_RC(cfg("--listen=[::1]:8443", NULL), 0);
    CHECK(strcmp(g_cf.cf_listen_host, "::1") == 0 && g_cf.cf_listen_port == 8443);
    CHECK_RC(cfg("--listen=localhost:65535", NULL), 0);
    CHECK(strcmp(g_cf.cf_listen_host, "localhost") == 0 && g_cf.cf_listen_port == 65535);
    CHECK_RC(cfg("--threads", "4", NULL), 0);
    CHECK(g_cf.cf_threads == 4);
    CHECK_RC(cfg("--threads=1", NULL), 0);
    CHECK(g_cf.cf_threads == 1);
    CHECK_RC(cfg("--threads", "64", NULL), 0);
    CHECK(g_cf.cf_threads == 64);
    CHECK_RC(cfg("--data-dir", "/tmp/pk data", NULL), 0);
    CHECK(strcmp(g_cf.cf_data_dir, "/tmp/pk data") == 0);
    CHECK_RC(cfg("--data-dir=/var/lib/pk", NULL), 0);
    CHECK(strcmp(g_cf.cf_data_dir, "/var/lib/pk") == 0);
    CHECK_RC(cfg("--sync", "none", NULL), 0);
    CHECK(!g_cf.cf_sync_full);
    CHECK_RC(cfg("--sync=full", NULL), 0);
    CHECK(g_cf.cf_sync_full);
    CHECK_RC(cfg("--order-ttl", "1", NULL), 0);
    CHECK(g_cf.cf_order_ttl_s == 1);
    CHECK_RC(cfg("--order-ttl=2592000", NULL), 0);
    CHECK(g_cf.cf_order_ttl_s == 2592000);
    CHECK_RC(cfg("--admin-password", "12345678", NULL), 0);
    CHECK(strcmp(g_cf.cf_admin_password, "12345678") == 0);
    CHECK_RC(cfg("--admin-password=pass word=with=equals", NULL), 0);
    CHECK(strcmp(g_cf.cf_admin_password, "pass word=with=equals") == 0); /* split at the first '=' */
    CHECK_RC(cfg("--jwt-secret-file", "/etc/pk/secret", NULL), 0);
    CHECK(strcmp(g_cf.cf_jwt_secret_file, "/etc/pk/secret") == 0);
    CHECK_RC(cfg("--token-ttl", "60", NULL), 0);
    CHECK(g_cf.cf_token_ttl_s == 60);
    CHECK_RC(cfg("--token-ttl=2592000", NULL), 0);
    CHECK(g_cf.cf_token_ttl_s == 2592000);
    CHECK_RC(cfg("--kafka-brokers", "off", NULL), 0);
    CHECK(strcmp(g_cf.cf_kafka_brokers, "off") == 0);
    CHECK_RC(cfg("--kafka-brokers=k1:9092,k2:9092", NULL), 0);
    CHECK(strcmp(g_cf.cf_kafka_brokers, "k1:9092,k2:9092") == 0);
    CHECK_RC(cfg("--kafka-topic-prefix", "shop.v2_x-1", NULL), 0);
    CHECK(strcmp(g_cf.cf_kafka_topic_prefix, "shop.v2_x-1") == 0);
    CHECK_RC(cfg("--tls-cert", "c.pem", "--tls-key=k.pem", NULL), 0);
    CHECK(strcmp(g_cf.cf_tls_cert, "c.pem") == 0 && strcmp(g_cf.cf_tls_key, "k.pem") == 0);
    CHECK_RC(cfg("--log-format", "json", NULL), 0);
    CHECK(g_cf.cf_log_json);
    CHECK_RC(cfg("--log-format=text", NULL), 0);
    CHECK(!g_cf.cf_log_json);
    CHECK_RC(cfg("--map-size", "16", NULL), 0);
    CHECK(g_cf.cf_map_bytes == (uint64_t)16 << 20);
    CHECK_RC(cfg("--map-size=64k", NULL), 0);
    CHECK(g_cf.cf_map_bytes == (uint64_t)64 << 10);
    CHECK_RC(cfg("--map-size=1048576", NULL), 0);
    CHECK(g_cf.cf_map_bytes == (uint64_t)1 << 40);
    /* The last of repeated options wins. */
    CHECK_RC(cfg("--threads", "2", "--threads=3", NULL), 0);
    CHECK(g_cf.cf_threads == 3);
    /* A value that looks like an option is still the value. */
    CHECK_RC(cfg("--data-dir", "--threads", NULL), 0);
    CHECK(strcmp(g_cf.cf_data_dir, "--threads") == 0);
}

static void test_config_errors(void)
{
    CHECK_RC(cfg("--bogus", "1", NULL), -EINVAL);
    CHECK(err_has("unknown option '--bogus'"));
    CHECK_RC(cfg("--bogus=1", NULL), -EINVAL);
    CHECK(err_has("unknown option '--bogus'"));
    CHECK_RC(cfg("--THREADS", "2", NULL), -EINVAL);
    CHECK(err_has("unknown option"));
    CHECK_RC(cfg("--", NULL), -EINVAL);
    CHECK(err_has("unknown option"));
    CHECK_RC(cfg("--=5", NULL), -EINVAL);
    CHECK_RC(cfg("-t", "2", NULL), -EINVAL);
    CHECK(err_has("unexpected argument '-t'"));
    CHECK_RC(cfg("serve", NULL), -EINVAL);
    CHECK(err_has("unexpected argument 'serve'"));
    CHECK_RC(cfg("--threads", NULL), -EINVAL);
    CHECK(err_has("'--threads' needs a value"));

    /* Bad values name the option and the value. */
    CHECK_RC(cfg("--threads", "0", NULL), -EINVAL);
    CHECK(err_has("invalid value '0' for option '--threads'"));
    CHECK_RC(cfg("--threads", "abc", NULL), -EINVAL);
    CHECK(err_has("invalid value 'abc' for option '--threads'"));
    CHECK_RC(cfg("--threads=65", NULL), -EINVAL);
    CHECK_RC(cfg("--threads=-1", NULL), -EINVAL);
    CHECK_RC(cfg("--threads=", NULL), -EINVAL);
    CHECK_RC(cfg("--threads= 4", NULL), -EINVAL);
    CHECK_RC(cfg("--threads=4x", NULL), -EINVAL);
    CHECK_RC(cfg("--sync", "maybe", NULL), -EINVAL);
    CHECK(err_has("invalid value 'maybe' for option '--sync'"));
    CHECK_RC(cfg("--sync=FULL", NULL), -EINVAL);
    CHECK_RC(cfg("--listen", "nohost", NULL), -EINVAL);
    CHECK(err_has("'--listen'"));
    CHECK_RC(cfg("--listen", "1.2.3.4:70000", NULL), -EINVAL);
    CHECK(err_has("invalid value '1.2.3.4:70000'"));
    CHECK_RC(cfg("--listen", "1.2.3.4:65536", NULL), -EINVAL);
    CHECK_RC(cfg("--listen", ":8080", NULL), -EINVAL);
    CHECK_RC(cfg("--listen", "host:", NULL), -EINVAL);
    CHECK_RC(cfg("--listen", "host:http", NULL), -EINVAL);
    CHECK_RC(cfg("--listen", "host:-1", NULL), -EINVAL);
    CHECK_RC(cfg("--listen", "[::1]", NULL), -EINVAL);
    CHECK_RC(cfg("--listen", "[::1]8080", NULL), -EINVAL);
    CHECK_RC(cfg("--listen", "[]:8080", NULL), -EINVAL);
    CHECK_RC(cfg("--listen", "[::1:8080", NULL), -EINVAL);
    CHECK_RC(cfg("--listen", "", NULL), -EINVAL);
    char longhost[300];
    memset(longhost, 'h', 260);
    strcpy(longhost + 260, ":80");
    CHECK_RC(cfg("--listen", longhost, NULL), -EINVAL);
    CHECK_RC(cfg("--data-dir=", NULL), -EINVAL);
    CHECK_RC(cfg("--order-ttl", "0", NULL), -EINVAL);
    CHECK_RC(cfg("--order-ttl", "2592001", NULL), -EINVAL);
    CHECK_RC(cfg("--admin-password", "1234567", NULL), -EINVAL);
    char pw[140];
    memset(pw, 'p', 129);
    pw[129] = '\0';
    CHECK_RC(cfg("--admin-password", pw, NULL), -EINVAL);
    pw[128] = '\0';
    CHECK_RC(cfg("--admin-password", pw, NULL), 0);
    CHECK_RC(cfg("--jwt-secret-file=", NULL), -EINVAL);
    CHECK_RC(cfg("--token-ttl=0", NULL), -EINVAL);
    CHECK_RC(cfg("--kafka-brokers=", NULL), -EINVAL);
    CHECK_RC(cfg("--kafka-topic-prefix", "bad/prefix", NULL), -EINVAL);
    CHECK_RC(cfg("--kafka-topic-prefix", "sp ace", NULL), -EINVAL);
    CHECK_RC(cfg("--kafka-topic-prefix=", NULL), -EINVAL);
    CHECK_RC(cfg("--log-format", "xml", NULL), -EINVAL);
    CHECK_RC(cfg("--map-size", "0", NULL), -EINVAL);
    CHECK_RC(cfg("--map-size", "63k", NULL), -EINVAL);
    CHECK_RC(cfg("--map-size", "1048577", NULL), -EINVAL);
    CHECK_RC(cfg("--map-size", "k", NULL), -EINVAL);
    CHECK_RC(cfg("--map-size", "16m", NULL), -EINVAL);
    CHECK_RC(cfg("--map-size", "16K", NULL), -EINVAL);
    CHECK_RC(cfg("--map-size", "99999999999999999999999999k", NULL), -EINVAL);

    /* TLS needs both halves. */
    CHECK_RC(cfg("--tls-cert", "c.pem", NULL), -EINVAL);
    CHECK(err_has("--tls-cert and --tls-key must be given together"));
    CHECK_RC(cfg("--tls-key", "k.pem", NULL), -EINVAL);
    CHECK(err_has("--tls-cert and --tls-key must be given together"));

    /* A small error buffer truncates the message but still terminates it. */
    char *argv[] = {"pickple", "--bogus-option-with-a-long-name", "1", NULL};
    char small[8];
    memset(small, 'X', sizeof(small));
    CHECK_RC(pk_config_parse(&g_cf, 3, argv, small, sizeof(small)), -EINVAL);
    CHECK(memchr(small, '\0', sizeof(small)) != NULL);
}

static void test_config_env(void)
{
    setenv("PICKPLE_ORDER_TTL", "600", 1);
    CHECK_RC(cfg(NULL), 0);
    CHECK(g_cf.cf_order_ttl_s == 600);
    CHECK_RC(cfg("--order-ttl", "900", NULL), 0); /* the flag wins */
    CHECK(g_cf.cf_order_ttl_s == 900);
    CHECK_RC(cfg("--order-ttl=abc", NULL), -EINVAL); /* a bad flag is not rescued by the env */
    setenv("PICKPLE_ORDER_TTL", "abc", 1);
    CHECK_RC(cfg(NULL), -EINVAL);
    CHECK(err_has("PICKPLE_ORDER_TTL"));
    /* An empty variable counts as unset. */
    setenv("PICKPLE_ORDER_TTL", "", 1);
    CHECK_RC(cfg(NULL), 0);
    CHECK(g_cf.cf_order_ttl_s == 300);
    unsetenv("PICKPLE_ORDER_TTL");
    CHECK_RC(cfg(NULL), 0);
    CHECK(g_cf.cf_order_ttl_s == 300);

    /* Multi-word names map '-' to '_'. */
    setenv("PICKPLE_KAFKA_TOPIC_PREFIX", "envpfx", 1);
    setenv("PICKPLE_THREADS", "2", 1);
    setenv("PICKPLE_LISTEN", "[::]:7000", 1);
    setenv("PICKPLE_ADMIN_PASSWORD", "from-the-env", 1);
    CHECK_RC(cfg(NULL), 0);
    CHECK(strcmp(g_cf.cf_kafka_topic_prefix, "envpfx") == 0);
    CHECK(g_cf.cf_threads == 2);
    CHECK(strcmp(g_cf.cf_listen_host, "::") == 0 && g_cf.cf_listen_port == 7000);
    CHECK(strcmp(g_cf.cf_admin_password, "from-the-env") == 0);
    CHECK_RC(cfg("--threads", "5", NULL), 0);
    CHECK(g_cf.cf_threads == 5);
    unsetenv("PICKPLE_KAFKA_TOPIC_PREFIX");
    unsetenv("PICKPLE_THREADS");
    unsetenv("PICKPLE_LISTEN");
    unsetenv("PICKPLE_ADMIN_PASSWORD");

    /* The TLS pairing rule applies across env and flags. */
    setenv("PICKPLE_TLS_CERT", "c.pem", 1);
    CHECK_RC(cfg(NULL), -EINVAL);
    CHECK_RC(cfg("--tls-key", "k.pem", NULL), 0);
    unsetenv("PICKPLE_TLS_CERT");
}

static void test_parse_u64(void)
{
    uint64_t v = 77;
    CHECK_RC(pk_parse_u64("0", 0, 10, &v), 0);
    CHECK(v == 0);
    CHECK_RC(pk_parse_u64("10", 0, 10, &v), 0);
    CHECK(v == 10);
    CHECK_RC(pk_parse_u64("007", 0, 10, &v), 0);
    CHECK(v == 7);
    v = 77;
    CHECK_RC(pk_parse_u64("11", 0, 10, &v), -EINVAL);
    CHECK_RC(pk_parse_u64("4", 5, 10, &v), -EINVAL);
    CHECK(v == 77); /* untouched on failure */
    CHECK_RC(pk_parse_u64(NULL, 0, 10, &v), -EINVAL);
    CHECK_RC(pk_parse_u64("", 0, 10, &v), -EINVAL);
    CHECK_RC(pk_parse_u64("-1", 0, 10, &v), -EINVAL);
    CHECK_RC(pk_parse_u64("+1", 0, 10, &v), -EINVAL);
    CHECK_RC(pk_parse_u64(" 1", 0, 10, &v), -EINVAL);
    CHECK_RC(pk_parse_u64("1 ", 0, 10, &v), -EINVAL);
    CHECK_RC(pk_parse_u64("0x1", 0, 10, &v), -EINVAL);
    CHECK_RC(pk_parse_u64("1e3", 0, 10000, &v), -EINVAL);

    /* Overflow: anything above 2^64-1 is refused, never wrapped. */
    CHECK_RC(pk_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -EINVAL);
    CHECK_RC(pk_parse_u64("18446744073709551625", 0, UINT64_MAX, &v), -EINVAL);
    CHECK_RC(pk_parse_u64("99999999999999999999", 0, UINT64_MAX, &v), -EINVAL);
    CHECK_RC(pk_parse_u64("184467440737095516150", 0, UINT64_MAX, &v), -EINVAL);
    CHECK_RC(pk_parse_u64("100000000000000000000000000000", 0, UINT64_MAX, &v), -EINVAL);
    CHECK_RC(pk_parse_u64("1844674407370955161", 0, UINT64_MAX, &v), 0);
    CHECK(v == 1844674407370955161ull);
    CHECK_RC(pk_parse_u64("18446744073709551609", 0, UINT64_MAX, &v), 0);
    CHECK(v == 18446744073709551609ull);
    /* The largest values are in range and must parse. */
    static const char *const top[] = {"18446744073709551610", "18446744073709551611", "18446744073709551614",
                                      "18446744073709551615", "018446744073709551615"};
    for (size_t i = 0; i < PK_ARRAY_LEN(top); i++) {
        v = 0;
        CHECK_RC(pk_parse_u64(top[i], 0, UINT64_MAX, &v), 0);
        CHECK(v == strtoull(top[i], NULL, 10));
    }
    CHECK(v == UINT64_MAX);
    /* Every value just past 2^64-1 is refused, whatever its last digit. */
    static const char *const over[] = {"18446744073709551616", "18446744073709551617", "18446744073709551619",
                                       "18446744073709551620", "18446744073709551700", "28446744073709551615"};
    for (size_t i = 0; i < PK_ARRAY_LEN(over); i++)
        CHECK_RC(pk_parse_u64(over[i], 0, UINT64_MAX, &v), -EINVAL);
}

/* Doubling histogram buckets: bucket b holds values up to first << b. */
static void test_hist_bucket(void)
{
    CHECK(pk_hist_bucket(0, 1, 12) == 0);
    CHECK(pk_hist_bucket(1, 1, 12) == 0);
    CHECK(pk_hist_bucket(2, 1, 12) == 1);
    CHECK(pk_hist_bucket(3, 1, 12) == 2);
    CHECK(pk_hist_bucket(1024, 1, 12) == 10);
    CHECK(pk_hist_bucket(1025, 1, 12) == 11);
    CHECK(pk_hist_bucket(UINT64_MAX, 1, 12) == 11); /* the last bucket holds the rest */
    CHECK(pk_hist_bucket(250, 250, 9) == 0);
    CHECK(pk_hist_bucket(251, 250, 9) == 1);
    CHECK(pk_hist_bucket(32000, 250, 9) == 7);
    CHECK(pk_hist_bucket(32001, 250, 9) == 8);
    CHECK(pk_hist_bucket(7, 5, 1) == 0);
}

int main(void)
{
    /* The test controls the PICKPLE_* variables itself. */
    for (size_t i = 0; i < PK_ARRAY_LEN(option_envs); i++)
        unsetenv(option_envs[i]);

    test_username();
    test_email();
    test_password_and_shard();
    test_roles();
    test_time_parse();
    test_time_format();
    test_config_defaults();
    test_config_options();
    test_config_errors();
    test_config_env();
    test_parse_u64();
    test_hist_bucket();

    return CHECK_DONE("test_rules");
}
