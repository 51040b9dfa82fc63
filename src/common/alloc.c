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
const char *malloc_conf = "thp:always,metadata_thp:always,dirty_decay_ms:-1,muzzy_decay_ms:-1";

void pk_alloc_info(pk_alloc_info_t *out)
{
    const char *thp = "";
    ssize_t dirty = 0, muzzy = 0;
    size_t len = sizeof(thp);
    if (mallctl("opt.thp", &thp, &len, NULL, 0) != 0)
        thp = "";
    len = sizeof(dirty);
    if (mallctl("opt.dirty_decay_ms", &dirty, &len, NULL, 0) != 0)
        dirty = 0;
    len = sizeof(muzzy);
    if (mallctl("opt.muzzy_decay_ms", &muzzy, &len, NULL, 0) != 0)
        muzzy = 0;
    *out = (pk_alloc_info_t){"jemalloc", thp, dirty, muzzy};
}

#else

void pk_alloc_info(pk_alloc_info_t *out)
{
    *out = (pk_alloc_info_t){"libc", "", 0, 0};
}

#endif
