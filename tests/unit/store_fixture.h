/*
 * A one-shard store in a fresh data directory, for the unit tests that
 * need a real LMDB environment (64 MiB map, no sync).
 */
#ifndef PICKPLE_TEST_STORE_FIXTURE_H
#define PICKPLE_TEST_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

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

/* Makes dir (a mkdtemp template) a fresh directory and opens the store in
 * it, printing a FAIL line when it cannot.  0 or -1. */
static inline int fixture_open_tmp_store(pk_store_t *st, char *dir)
{
    if (mkdtemp(dir) != NULL && fixture_open_store(st, dir) == 0)
        return 0;
    printf("FAIL cannot open a store in %s\n", dir);
    return -1;
}

/* Closes the store and removes its directory. */
static inline void fixture_close_store(pk_store_t *st, const char *dir)
{
    char cmd[128];
    pk_store_close(st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("(could not remove %s)\n", dir);
}

#endif
