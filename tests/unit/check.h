/*
 * Check macros shared by the unit test programs.  A test is a plain
 * program: every failed check prints one line (file, line, expression) and
 * the run goes on; CHECK_DONE() prints the summary and gives the exit code
 * (non-zero when anything failed).  Include it from one .c file only: the
 * counters are per program.
 */
#ifndef PICKPLE_TEST_CHECK_H
#define PICKPLE_TEST_CHECK_H

#include <stdio.h>

#include "pickple/common.h"

static int g_passed, g_failed;

#define CHECK(cond)                                                                                                \
    do {                                                                                                           \
        if (cond) {                                                                                                \
            g_passed++;                                                                                            \
        } else {                                                                                                   \
            g_failed++;                                                                                            \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                                                \
        }                                                                                                          \
    } while (0)

/* Checks that expr evaluates to want, printing both codes when it does not. */
#define CHECK_RC(expr, want)                                                                                       \
    do {                                                                                                           \
        int rc_ = (expr);                                                                                          \
        if (rc_ == (want)) {                                                                                       \
            g_passed++;                                                                                            \
        } else {                                                                                                   \
            g_failed++;                                                                                            \
            printf("FAIL %s:%d: %s -> %d (%s), want %d (%s)\n", __FILE__, __LINE__, #expr, rc_, pk_strerror(rc_), \
                   (int)(want), pk_strerror(want));                                                                \
        }                                                                                                          \
    } while (0)

/* Prints "name: N passed, M failed"; evaluates to main's exit code. */
#define CHECK_DONE(name) (printf("%s: %d passed, %d failed\n", (name), g_passed, g_failed), g_failed == 0 ? 0 : 1)

#endif
