/*
 * Log-linear latency histogram, in the manner of HdrHistogram: constant
 * relative precision (1/128) from nanoseconds to hours in a fixed array, so
 * recording is a few instructions and no allocation, and per-thread
 * histograms merge by adding buckets.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "pb.h"

void pb_hist_init(pb_hist_t *h)
{
    memset(h, 0, sizeof(*h));
    h->h_min_ns = UINT64_MAX;
}

static unsigned pb__hist_index(uint64_t v)
{
    if (v < 2 * PB_HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= PB_HIST_SUB_BITS + 1 */
    unsigned shift = msb - PB_HIST_SUB_BITS;
    unsigned top = (unsigned)(v >> shift); /* PB_HIST_SUB .. 2*PB_HIST_SUB-1 */
    return 2 * PB_HIST_SUB + (msb - PB_HIST_SUB_BITS - 1) * PB_HIST_SUB + (top - PB_HIST_SUB);
}

/* Lowest value of bucket i and the bucket's width. */
static void pb__hist_bounds(unsigned i, uint64_t *low, uint64_t *width)
{
    if (i < 2 * PB_HIST_SUB) {
        *low = i;
        *width = 1;
        return;
    }
    unsigned group = (i - 2 * PB_HIST_SUB) / PB_HIST_SUB;
    unsigned top = PB_HIST_SUB + (i - 2 * PB_HIST_SUB) % PB_HIST_SUB;
    unsigned shift = group + 1;
    *low = (uint64_t)top << shift;
    *width = UINT64_C(1) << shift;
}

void pb_hist_record(pb_hist_t *h, uint64_t ns)
{
    h->h_buckets[pb__hist_index(ns)]++;
    h->h_count++;
    h->h_sum_ns += ns;
    if (ns < h->h_min_ns)
        h->h_min_ns = ns;
    if (ns > h->h_max_ns)
        h->h_max_ns = ns;
}

void pb_hist_merge(pb_hist_t *into, const pb_hist_t *from)
{
    if (from->h_count == 0)
        return;
    for (unsigned i = 0; i < PB_HIST_BUCKETS; i++)
        into->h_buckets[i] += from->h_buckets[i];
    into->h_count += from->h_count;
    into->h_sum_ns += from->h_sum_ns;
    if (from->h_min_ns < into->h_min_ns)
        into->h_min_ns = from->h_min_ns;
    if (from->h_max_ns > into->h_max_ns)
        into->h_max_ns = from->h_max_ns;
}

uint64_t pb_hist_percentile_ns(const pb_hist_t *h, double p)
{
    if (h->h_count == 0)
        return 0;
    if (p >= 100.0)
        return h->h_max_ns;
    /* The rank of the value at or below which p% of the samples lie. */
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->h_count + 0.5);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < PB_HIST_BUCKETS; i++) {
        seen += h->h_buckets[i];
        if (seen >= rank) {
            uint64_t low, width;
            pb__hist_bounds(i, &low, &width);
            uint64_t v = low + width / 2;
            if (v < h->h_min_ns)
                v = h->h_min_ns;
            if (v > h->h_max_ns)
                v = h->h_max_ns;
            return v;
        }
    }
    return h->h_max_ns;
}

int pb_hist_write_spectrum(const pb_hist_t *h, FILE *f)
{
    if (h->h_count == 0)
        return 0;
    /* Percentiles spread evenly on the log(1/(1-p)) axis: ten steps per
     * "nine" (90, 99, 99.9, ...) until the maximum is reached. */
    for (int step = 0; step <= 70; step++) {
        double nines = step / 10.0;
        double p = 100.0 * (1.0 - 1.0 / pow(10.0, nines));
        /* Stop once the tail is finer than one sample. */
        if (step > 0 && (100.0 - p) / 100.0 * (double)h->h_count < 1.0)
            break;
        double x = 1.0 / (1.0 - p / 100.0);
        if (fprintf(f, "%.4f %.6f %.3f\n", pb_hist_percentile_ns(h, p) / 1e6, p, x) < 0)
            return -EIO;
    }
    double x_max = (double)h->h_count;
    if (fprintf(f, "%.4f %.6f %.3f\n", h->h_max_ns / 1e6, 100.0, x_max) < 0)
        return -EIO;
    return 0;
}

int pb_hist_self_test(void)
{
    int failures = 0;
#define PB__CHECK(cond) PB_SELF_CHECK(failures, cond)

    /* Every value lands in a bucket whose bounds contain it, buckets are
     * contiguous, and the relative width never exceeds 1/128. */
    uint64_t values[] = {0, 1, 255, 256, 257, 1000, 12345, 999999, 1000000, 60000000000ull, UINT64_MAX / 2, UINT64_MAX};
    for (size_t k = 0; k < sizeof(values) / sizeof(values[0]); k++) {
        uint64_t v = values[k], low, width;
        unsigned i = pb__hist_index(v);
        PB__CHECK(i < PB_HIST_BUCKETS);
        pb__hist_bounds(i, &low, &width);
        PB__CHECK(low <= v && v - low < width);
        PB__CHECK(width == 1 || (double)width / (double)low <= 1.0 / PB_HIST_SUB + 1e-12);
    }
    for (unsigned i = 0; i + 1 < PB_HIST_BUCKETS; i++) {
        uint64_t low, width, low2, width2;
        pb__hist_bounds(i, &low, &width);
        pb__hist_bounds(i + 1, &low2, &width2);
        if (low + width != low2) {
            PB__CHECK(low + width == low2);
            break;
        }
    }
    /* 1..10000 µs uniformly: the percentiles come out within 1%. */
    static pb_hist_t h;
    pb_hist_init(&h);
    for (uint64_t us = 1; us <= 10000; us++)
        pb_hist_record(&h, us * 1000);
    double ps[] = {50, 90, 99, 99.9};
    for (size_t k = 0; k < 4; k++) {
        double want = ps[k] * 100.0 * 1000; /* ns */
        double got = (double)pb_hist_percentile_ns(&h, ps[k]);
        PB__CHECK(got > want * 0.99 && got < want * 1.01);
    }
    PB__CHECK(pb_hist_percentile_ns(&h, 100) == 10000 * 1000);
    PB__CHECK(h.h_min_ns == 1000 && h.h_count == 10000);
    /* Merging two halves gives the whole. */
    static pb_hist_t a, b;
    pb_hist_init(&a);
    pb_hist_init(&b);
    for (uint64_t us = 1; us <= 10000; us++)
        pb_hist_record(us % 2 ? &a : &b, us * 1000);
    pb_hist_merge(&a, &b);
    PB__CHECK(memcmp(a.h_buckets, h.h_buckets, sizeof(h.h_buckets)) == 0);
    PB__CHECK(a.h_count == h.h_count && a.h_sum_ns == h.h_sum_ns && a.h_max_ns == h.h_max_ns);
#undef PB__CHECK
    return failures;
}
