/*
 * Unit tests for src/auth/password.c: hashing, verification and the strict
 * parser of the encoded form.  Plain program: prints one line per failed
 * check and a summary, exits non-zero when anything failed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "pickple/password.h"

#define PW "correct horse"
#define PW_LEN (sizeof(PW) - 1)

/*
 * Computed independently with Python's hashlib.scrypt, password PW, salt
 * "saltsaltsaltsalt": one with cheap parameters, one with the defaults.
 */
static const char known_cheap[] = "scrypt$10$8$1$c2FsdHNhbHRzYWx0c2FsdA$A9lBa6RTbfBovWqamVIqXKovIl4Vk6OZyVojLJmYmSI";
static const char known_default[] =
    "scrypt$14$8$5$c2FsdHNhbHRzYWx0c2FsdA$lL-etD-5NhUN9HUeWkxbqhCbDq9ZmXspDX_GZjrObTs";
#define KNOWN_SALT "c2FsdHNhbHRzYWx0c2FsdA"
#define KNOWN_HASH "A9lBa6RTbfBovWqamVIqXKovIl4Vk6OZyVojLJmYmSI"

static void test_round_trip(void)
{
    char a[PK_PASSWORD_ENCODED_BYTES_MAX + 1], b[PK_PASSWORD_ENCODED_BYTES_MAX + 1];

    int n = pk_password_hash(PW, PW_LEN, a, sizeof(a));
    CHECK(n > 0 && (size_t)n == strlen(a) && n <= PK_PASSWORD_ENCODED_BYTES_MAX);
    CHECK(strncmp(a, "scrypt$15$8$1$", 14) == 0);
    CHECK_RC(pk_password_verify(PW, PW_LEN, a), 0);

    CHECK_RC(pk_password_verify("correct horsf", PW_LEN, a), PK_EAUTH);
    CHECK_RC(pk_password_verify(PW, PW_LEN - 1, a), PK_EAUTH); /* prefix */
    CHECK_RC(pk_password_verify(PW "!", PW_LEN + 1, a), PK_EAUTH);
    CHECK_RC(pk_password_verify("", 0, a), PK_EAUTH);

    /* A fresh salt every time. */
    CHECK(pk_password_hash(PW, PW_LEN, b, sizeof(b)) == n);
    CHECK(strcmp(a, b) != 0);
    CHECK(strncmp(a, b, 14) == 0 && strncmp(a + 14, b + 14, 22) != 0);
    CHECK_RC(pk_password_verify(PW, PW_LEN, b), 0);

    /* Same salt and hash under other parameters derive another key. */
    char c[PK_PASSWORD_ENCODED_BYTES_MAX + 1];
    snprintf(c, sizeof(c), "scrypt$13%s", a + 9);
    CHECK_RC(pk_password_verify(PW, PW_LEN, c), PK_EAUTH);

    /* Empty password: length policy belongs to the caller. */
    n = pk_password_hash("", 0, a, sizeof(a));
    CHECK(n > 0);
    CHECK_RC(pk_password_verify("", 0, a), 0);
    CHECK_RC(pk_password_verify(NULL, 0, a), 0);
    CHECK_RC(pk_password_verify("x", 1, a), PK_EAUTH);

    /* Any bytes, including NUL: len decides, not strlen. */
    n = pk_password_hash("ab\0cd", 5, a, sizeof(a));
    CHECK(n > 0);
    CHECK_RC(pk_password_verify("ab\0cd", 5, a), 0);
    CHECK_RC(pk_password_verify("ab\0ce", 5, a), PK_EAUTH);
    CHECK_RC(pk_password_verify("ab", 2, a), PK_EAUTH);

    /* Output exactly the size needed, and one byte short. */
    n = pk_password_hash(PW, PW_LEN, a, sizeof(a));
    CHECK_RC(pk_password_hash(PW, PW_LEN, b, (size_t)n + 1), n);
    CHECK_RC(pk_password_hash(PW, PW_LEN, b, (size_t)n), -ENOSPC);
}

static void test_known_answers(void)
{
    CHECK_RC(pk_password_verify(PW, PW_LEN, known_cheap), 0);
    CHECK_RC(pk_password_verify(PW, PW_LEN, known_default), 0);
    CHECK_RC(pk_password_verify("Correct horse", PW_LEN, known_cheap), PK_EAUTH);
}

static void test_malformed(void)
{
    static const char *const bad[] = {
        "",
        "scrypt",
        "scrypt$",
        "scrypt$10$8$1",
        "scrypt$10$8$1$" KNOWN_SALT,
        "scrypt$10$8$1$" KNOWN_SALT "$",
        "scrypt$10$8$" KNOWN_SALT "$" KNOWN_HASH,
        "scrypt$10$8$1$" KNOWN_SALT "$" KNOWN_HASH "$",
        "scrypt$10$8$1$" KNOWN_SALT "$" KNOWN_HASH "$x",
        "scrypt$10$8$1$$" KNOWN_SALT "$" KNOWN_HASH,
        "bcrypt$10$8$1$" KNOWN_SALT "$" KNOWN_HASH,
        "SCRYPT$10$8$1$" KNOWN_SALT "$" KNOWN_HASH,
        " scrypt$10$8$1$" KNOWN_SALT "$" KNOWN_HASH,
        "scrypt$10$8$1$" KNOWN_SALT "$" KNOWN_HASH " ",
        "scrypt$10$8$1$" KNOWN_SALT "$" KNOWN_HASH "\n",
        /* Parameters out of bounds or not canonical. */
        "scrypt$40$8$1$" KNOWN_SALT "$" KNOWN_HASH,
        "scrypt$9$8$1$" KNOWN_SALT "$" KNOWN_HASH,
        "scrypt$21$8$1$" KNOWN_SALT "$" KNOWN_HASH,
        "scrypt$010$8$1$" KNOWN_SALT "$" KNOWN_HASH,
        "scrypt$+10$8$1$" KNOWN_SALT "$" KNOWN_HASH,
        "scrypt$-10$8$1$" KNOWN_SALT "$" KNOWN_HASH,
        "scrypt$ 10$8$1$" KNOWN_SALT "$" KNOWN_HASH,
        "scrypt$10$0$1$" KNOWN_SALT "$" KNOWN_HASH,
        "scrypt$10$17$1$" KNOWN_SALT "$" KNOWN_HASH,
        "scrypt$10$08$1$" KNOWN_SALT "$" KNOWN_HASH,
        "scrypt$10$8$0$" KNOWN_SALT "$" KNOWN_HASH,
        "scrypt$10$8$17$" KNOWN_SALT "$" KNOWN_HASH,
        "scrypt$10$8$99999999999999999999$" KNOWN_SALT "$" KNOWN_HASH,
        "scrypt$x$8$1$" KNOWN_SALT "$" KNOWN_HASH,
        /* In bounds but beyond this build's memory cap (2 GiB). */
        "scrypt$20$16$1$" KNOWN_SALT "$" KNOWN_HASH,
        /* Bad base64url, padding, wrong lengths. */
        "scrypt$10$8$1$c2FsdHNhbHRzYWx0c2Fsd*$" KNOWN_HASH,
        "scrypt$10$8$1$c2FsdHNhbHRzYWx0c2FsdA==$" KNOWN_HASH,
        "scrypt$10$8$1$" KNOWN_SALT "$A9lBa6RTbfBovWqamVIqXKovIl4Vk6OZyVojLJmYmSI=",
        "scrypt$10$8$1$" KNOWN_SALT "$A9lBa6RTbfBovWqamVIqXKovIl4Vk6OZyVojLJmYmS+",
        "scrypt$10$8$1$c2FsdHNhbHRzYWx0c2Fsd$" KNOWN_HASH,     /* 1 char left over */
        "scrypt$10$8$1$c2FsdHNhbHRzYWx0c2F$" KNOWN_HASH,       /* 14-byte salt */
        "scrypt$10$8$1$c2FsdHNhbHRzYWx0c2FsdHM$" KNOWN_HASH,   /* 17-byte salt */
        "scrypt$10$8$1$" KNOWN_SALT "$A9lBa6RTbfBovWqamVIqXKovIl4Vk6OZyVojLJmYmQ", /* 31 bytes */
        "scrypt$10$8$1$" KNOWN_SALT "$A9lBa6RTbfBovWqamVIqXKovIl4Vk6OZyVojLJmYmSJ", /* trailing bits */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = pk_password_verify(PW, PW_LEN, bad[i]);
        if (rc == PK_EFORMAT) {
            g_passed++;
        } else {
            g_failed++;
            printf("FAIL malformed[%zu] \"%s\" -> %d (%s), want PK_EFORMAT\n", i, bad[i], rc, pk_strerror(rc));
        }
    }

    /* Over the encoded bound, and a long run without '$'. */
    char big[PK_PASSWORD_ENCODED_BYTES_MAX + 64];
    snprintf(big, sizeof(big), "%s%0*d", known_cheap, (int)(sizeof(big) - sizeof(known_cheap)), 0);
    CHECK_RC(pk_password_verify(PW, PW_LEN, big), PK_EFORMAT);
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK_RC(pk_password_verify(PW, PW_LEN, big), PK_EFORMAT);
    CHECK_RC(pk_password_verify(PW, PW_LEN, NULL), PK_EFORMAT);
}

int main(void)
{
    test_round_trip();
    test_known_answers();
    test_malformed();

    return CHECK_DONE("test_password");
}
