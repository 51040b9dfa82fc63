/*
 * pickple: shared definitions used by every module.
 *
 * Errors: functions return an int, 0 (or a non-negative count) on success and
 * a negative value on failure.  A failure is either a negated errno value
 * (-ENOMEM, -EINVAL, ...) or one of the pickple codes below, which live in a
 * reserved range far below any errno so the two never collide.
 * pk_strerror() names both.
 */
#ifndef PICKPLE_COMMON_H
#define PICKPLE_COMMON_H

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PK_VERSION "0.1.0"

#define PK_MUST_USE __attribute__((warn_unused_result))
#define PK_UNUSED __attribute__((unused))
#define PK_LIKELY(x) __builtin_expect(!!(x), 1)
#define PK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PK_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PK_CACHE_LINE 64

/* pickple error codes (reserved range, below -10000). */
enum {
    PK_ERR_BASE = -10000,
    PK_EFORMAT = -10001,   /* bytes do not decode as the expected record */
    PK_EVERSION = -10002,  /* stored format version unknown to this build */
    PK_EAUTH = -10003,     /* credentials or signature do not match */
    PK_EEXPIRED = -10004,  /* token past its exp claim */
    PK_ENOTFOUND = -10005, /* no such record */
    PK_EEXISTS = -10006,   /* unique key already taken */
    PK_EFULL = -10007,     /* a bounded queue or table is full */
    PK_ESTORE = -10008,    /* LMDB failed; the batch was aborted */
    PK_ESHUTDOWN = -10009, /* the runtime is stopping */
    PK_EINSUFFICIENT = -10010, /* not enough units */
    PK_ERR_MIN = -10011,
};

/* Returns a static, human-readable name for any pickple or errno code. */
const char *pk_strerror(int err);

/* Roles of the contract, in increasing privilege. */
typedef enum pk_role {
    PK_ROLE_CUSTOMER = 0,
    PK_ROLE_SELLER = 1,
    PK_ROLE_ADMIN = 2,
} pk_role_t;

/* "customer", "seller", "admin"; NULL for an out-of-range value. */
const char *pk_role_name(pk_role_t role);

/* Parses a role name of length len.  Returns 0 and sets *out, or -EINVAL. */
int pk_role_parse(const char *s, size_t len, pk_role_t *out) PK_MUST_USE;

/* Wall clock in milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t pk_now_ms(void);

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC), for durations only. */
uint64_t pk_mono_ns(void);

/*
 * Formats ms (Unix epoch milliseconds) as RFC 3339 UTC with millisecond
 * precision, "2026-11-24T10:00:00.000Z", into out (at least 25 bytes).
 * Returns the length written (24 for years 0000..9999; a later year takes
 * more digits), or -ENOSPC when out_size cannot hold the text and its NUL
 * (-EOVERFLOW past what gmtime_r handles); out is then "".
 */
int pk_time_format(int64_t ms, char *out, size_t out_size);

/*
 * Parses an RFC 3339 timestamp with any offset ("Z", "+02:00") and optional
 * fractional seconds into Unix epoch milliseconds.  Returns 0 or -EINVAL.
 */
int pk_time_parse(const char *s, size_t len, int64_t *out_ms) PK_MUST_USE;

/*
 * Index of the first bucket of a doubling histogram that holds value: bucket
 * b holds values up to first << b, and the last of n buckets holds the rest.
 * first > 0, n > 0.
 */
unsigned pk_hist_bucket(uint64_t value, uint64_t first, unsigned n);

/*
 * Names a thread "<prefix>-<index>" for top -H, perf and the comm file of
 * /proc/PID/task/TID.
 * The kernel keeps 15 characters; a longer name is cut there.  Best effort:
 * a failure leaves the thread unnamed.
 */
void pk_thread_name(pthread_t thread, const char *prefix, unsigned index);

/*
 * Asks the scheduler for a time slice of slice_ns for the calling thread
 * (Linux 6.12+ custom slices for normal tasks, via sched_setattr; bounded
 * by the kernel to 0.1-100 ms).  A thread with a shorter slice than the
 * one running gets the CPU soon after it wakes, instead of at the end of
 * the other's slice: for a thread that sleeps most of the time and must
 * run at once when woken.  It changes latency, not the share of CPU.  No
 * privilege is needed.  Returns 0 or a negative errno; an older kernel
 * accepts the request and ignores it.
 */
int pk_thread_short_slice(uint64_t slice_ns);

/* Thread tid's slice as the kernel reports it (sched_getattr):
 * the custom slice when one was set and the kernel has them, else 0.
 * Negative errno on failure. */
int64_t pk_thread_slice(pid_t tid);

#endif
