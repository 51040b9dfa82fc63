/* Error names, roles, clocks, histogram buckets and thread names shared by
 * every module. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pickple/common.h"

const char *pk_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case PK_EFORMAT: return "malformed record";
    case PK_EVERSION: return "unsupported format version";
    case PK_EAUTH: return "authentication failed";
    case PK_EEXPIRED: return "expired";
    case PK_ENOTFOUND: return "not found";
    case PK_EEXISTS: return "already exists";
    case PK_EFULL: return "queue full";
    case PK_ESTORE: return "storage failure";
    case PK_ESHUTDOWN: return "shutting down";
    case PK_EINSUFFICIENT: return "insufficient units";
    default: break;
    }
    if (err < 0 && err > PK_ERR_BASE)
        return strerror(-err);
    return "unknown error";
}

static const char *const pk__role_names[] = {"customer", "seller", "admin"};

const char *pk_role_name(pk_role_t role)
{
    if ((unsigned)role >= PK_ARRAY_LEN(pk__role_names))
        return NULL;
    return pk__role_names[role];
}

int pk_role_parse(const char *s, size_t len, pk_role_t *out)
{
    for (size_t i = 0; i < PK_ARRAY_LEN(pk__role_names); i++) {
        if (strlen(pk__role_names[i]) == len && memcmp(pk__role_names[i], s, len) == 0) {
            *out = (pk_role_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

int64_t pk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t pk_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Writes v as exactly width digits (leading zeros). */
static void pk__put_digits(char *at, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        at[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* Days since 1970-01-01 (>= 0) to a proleptic Gregorian date: count whole
 * 400-year eras (146097 days each) from 0000-03-01, then years within the
 * era, with the year starting in March so the leap day comes last. */
static void pk__civil_of_days(int64_t days, unsigned *y, unsigned *m, unsigned *d)
{
    int64_t z = days + 719468; /* days from 0000-03-01 to 1970-01-01 */
    int64_t era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);                           /* 0..146096 */
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* 0..365, from March 1 */
    unsigned mp = (5 * doy + 2) / 153;                                     /* 0 = March */
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (unsigned)(era * 400 + yoe) + (*m <= 2);
}

int pk_time_format(int64_t ms, char *out, size_t out_size)
{
    /* Every order answer and event carries several times: the common range
     * (1970..9999) is formatted by hand, the rest through gmtime. */
    if (ms >= 0 && ms < INT64_C(253402300800000) && out_size >= 25) {
        int64_t s = ms / 1000, days = s / 86400;
        unsigned sec = (unsigned)(s % 86400), y, m, d;
        pk__civil_of_days(days, &y, &m, &d);
        pk__put_digits(out, y, 4);
        out[4] = '-';
        pk__put_digits(out + 5, m, 2);
        out[7] = '-';
        pk__put_digits(out + 8, d, 2);
        out[10] = 'T';
        pk__put_digits(out + 11, sec / 3600, 2);
        out[13] = ':';
        pk__put_digits(out + 14, sec / 60 % 60, 2);
        out[16] = ':';
        pk__put_digits(out + 17, sec % 60, 2);
        out[19] = '.';
        pk__put_digits(out + 20, (unsigned)(ms % 1000), 3);
        out[23] = 'Z';
        out[24] = '\0';
        return 24;
    }
    time_t s = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        s -= 1;
    }
    struct tm tm;
    int n = -EOVERFLOW;
    if (gmtime_r(&s, &tm) != NULL)
        n = snprintf(out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    /* snprintf returns the length it would have written: a truncated text
     * is an error, never a length past what out holds. */
    if (n >= 0 && (size_t)n >= out_size)
        n = -ENOSPC;
    if (n < 0 && out_size > 0)
        out[0] = '\0';
    return n;
}

static int pk__digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (civil calendar). */
static int64_t pk__days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int pk_time_parse(const char *s, size_t len, int64_t *out_ms)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec;
    if (len < 20 || len > 40)
        return -EINVAL;
    if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' ||
        s[16] != ':')
        return -EINVAL;
    if (pk__digits(s, 4, &y) || pk__digits(s + 5, 2, &mo) || pk__digits(s + 8, 2, &d) ||
        pk__digits(s + 11, 2, &h) || pk__digits(s + 14, 2, &mi) || pk__digits(s + 17, 2, &sec))
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return -EINVAL;
    size_t i = 19;
    int64_t frac_ms = 0;
    if (i < len && s[i] == '.') {
        i++;
        size_t start = i;
        int scale = 100;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            frac_ms += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start || i - start > 9)
            return -EINVAL;
    }
    if (i >= len)
        return -EINVAL;
    int64_t offset_min = 0;
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
        offset_min = 0;
    } else if ((s[i] == '+' || s[i] == '-') && i + 6 == len && s[i + 3] == ':') {
        int oh, om;
        if (pk__digits(s + i + 1, 2, &oh) || pk__digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return -EINVAL;
        offset_min = oh * 60 + om;
        if (s[i] == '-')
            offset_min = -offset_min;
    } else {
        return -EINVAL;
    }
    if (sec == 60)
        sec = 59; /* leap second: clamp, a sale boundary does not need it */
    int64_t days = pk__days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *out_ms = secs * 1000 + frac_ms;
    return 0;
}

unsigned pk_hist_bucket(uint64_t value, uint64_t first, unsigned n)
{
    assert(first > 0 && n > 0);
    unsigned b = 0;
    while (b + 1 < n && (first << b) < value)
        b++;
    return b;
}

void pk_thread_name(pthread_t thread, const char *prefix, unsigned index)
{
    char name[16]; /* the kernel keeps 15 characters and the NUL */
    snprintf(name, sizeof(name), "%s-%u", prefix, index);
    pthread_setname_np(thread, name);
}

/* The kernel's struct sched_attr (include/uapi/linux/sched/types.h); glibc
 * has no wrapper, and the uapi header clashes with <sched.h>. */
typedef struct pk__sched_attr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime; /* SCHED_OTHER: the requested slice */
    uint64_t sched_deadline;
    uint64_t sched_period;
    uint32_t sched_util_min;
    uint32_t sched_util_max;
} pk__sched_attr_t;

int pk_thread_short_slice(uint64_t slice_ns)
{
    pk__sched_attr_t at = {.size = sizeof(at), .sched_policy = 0 /* SCHED_OTHER */, .sched_runtime = slice_ns};
    return syscall(SYS_sched_setattr, 0, &at, 0) == 0 ? 0 : -errno;
}

int64_t pk_thread_slice(pid_t tid)
{
    pk__sched_attr_t at = {0};
    if (syscall(SYS_sched_getattr, tid, &at, (unsigned)sizeof(at), 0) != 0)
        return -errno;
    return (int64_t)at.sched_runtime;
}
