/*
 * A one-shard store in a fresh data directory, for the unit tests that
 * need a real LMDB environment (64 MiB map, no sync).
 */
#ifndef PICKPLE_TEST_STORE_FIXTURE_H
#define PICKPLE_TEST_STORE_FIXTURE_H

#include "pickple/store.h"

/* Initialises dir as a data directory of one shard and opens it.  0 or an
 * error. */
static inline int fixture_open_store(pk_store_t *st, const char *dir)
{
    unsigned nshards = 1;
    char err[256];
    if (pk_data_dir_init(dir, &nshards, err, sizeof(err)) != 0)
        return -1;
    return pk_store_open(st, dir, 0, 1, false, 64u << 20);
}

#endif
