/*
 * pickple's allocator settings.
 *
 * With jemalloc (every build but the sanitizer ones) pickple asks for
 * transparent huge pages and keeps the memory it freed instead of handing
 * it back to the kernel:
 *
 *   thp:always, metadata_thp:always, dirty_decay_ms:-1, muzzy_decay_ms:-1
 *
 * Why: a page fault is the most expensive thing a request can run into on
 * the virtual machines pickple is measured on (tens of microseconds each).
 * With the defaults, jemalloc returns idle pages after ten seconds and a
 * burst of requests then faults them back in by the thousand, stalling an
 * actor for hundreds of milliseconds (docs/decisions.md, "Page faults and
 * the open-loop tail").  The cost is resident memory: the process keeps its
 * peak, in 2 MiB pages.
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
} pk_alloc_info_t;

/* Fills *out from the running allocator.  Never fails; an unreadable
 * setting reads as "" or 0. */
void pk_alloc_info(pk_alloc_info_t *out);

#endif
