/*
 * pickple's allocator settings.
 *
 * With jemalloc (every build but the sanitizer ones) pickple asks for
 * transparent huge pages and keeps the memory it freed instead of handing
 * it back to the kernel:
 *
 *   thp:always, metadata_thp:always, dirty_decay_ms:-1, muzzy_decay_ms:-1,
 *   lg_extent_max_active_fit:30
 *
 * Why: a page fault is the most expensive thing a request can run into on
 * the virtual machines pickple is measured on (tens of microseconds each).
 * With the defaults, jemalloc returns idle pages after ten seconds and a
 * burst of requests then faults them back in by the thousand, stalling an
 * actor for hundreds of milliseconds (docs/decisions.md, "Page faults and
 * the open-loop tail").  The cost is resident memory: the process keeps its
 * peak, in 2 MiB pages.
 *
 * Why the last one: memory that is never handed back stays "dirty" and
 * coalesces into ever larger free extents, and by default jemalloc will
 * not carve an allocation out of a free extent more than 64 times its size
 * (lg_extent_max_active_fit:6); it maps fresh memory instead.  Under a
 * saturated open loop with batches of up to 4,096 orders the process then
 * grew by 60-70 MB/s (1.3 GB after 24 s); at exit jemalloc counted 93 MB
 * resident and 672 MB retained.  Letting any free extent be split (2^30
 * times the request) keeps the peak flat: about 215 MB over the same run
 * (docs/decisions.md, "batches of up to 4,096").
 *
 * Operators override any of it with the MALLOC_CONF environment variable,
 * which jemalloc reads after these built-in settings.
 */
#ifndef PICKPLE_ALLOC_H
#define PICKPLE_ALLOC_H

#include <sys/types.h>

/* The settings in force, as the allocator reports them. */
typedef struct pk_alloc_info {
    const char *ai_allocator; /* "jemalloc" or "libc" */
    const char *ai_thp;       /* jemalloc's opt.thp: "always", "never", "default"; "" for libc */
    ssize_t ai_dirty_decay_ms; /* -1: never returned; 0 for libc */
    ssize_t ai_muzzy_decay_ms;
    size_t ai_lg_extent_fit;   /* lg_extent_max_active_fit; 0 for libc */
} pk_alloc_info_t;

/* Fills *out from the running allocator.  Never fails; an unreadable
 * setting reads as "" or 0. */
void pk_alloc_info(pk_alloc_info_t *out);

#endif
