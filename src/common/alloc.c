/* The allocator settings of include/pickple/alloc.h. */
#include "pickple/alloc.h"

#ifdef PK_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>

/*
 * jemalloc's link-time hook: it reads this string once, at its first
 * allocation, before main().  MALLOC_CONF in the environment is read after
 * it and wins.  Defined here, beside the only reader of the settings, so the
 * object that holds it is always linked in.
 */
const char *malloc_conf =
    "thp:always,metadata_thp:always,dirty_decay_ms:-1,muzzy_decay_ms:-1,lg_extent_max_active_fit:30";

/* Reads one of jemalloc's options into *value (size bytes, the option's
 * own size); an unknown option leaves *value as it was. */
static void pk__opt(const char *name, void *value, size_t size)
{
    size_t len = size;
    (void)mallctl(name, value, &len, NULL, 0);
}

void pk_alloc_info(pk_alloc_info_t *out)
{
    *out = (pk_alloc_info_t){"jemalloc", "", 0, 0, 0};
    pk__opt("opt.thp", &out->ai_thp, sizeof(out->ai_thp));
    pk__opt("opt.dirty_decay_ms", &out->ai_dirty_decay_ms, sizeof(out->ai_dirty_decay_ms));
    pk__opt("opt.muzzy_decay_ms", &out->ai_muzzy_decay_ms, sizeof(out->ai_muzzy_decay_ms));
    pk__opt("opt.lg_extent_max_active_fit", &out->ai_lg_extent_fit, sizeof(out->ai_lg_extent_fit));
}

#else

void pk_alloc_info(pk_alloc_info_t *out)
{
    *out = (pk_alloc_info_t){"libc", "", 0, 0, 0};
}

#endif
