/*
 * Unit tests for the appending writers of src/store/store.c against a real
 * LMDB environment.  Checked: entries written in rising key order land and
 * read back; an entry below the greatest key (a clock that stepped back, a
 * shorter deadline) falls back to a plain put and lands too, with nothing
 * else lost; an existing key is overwritten, as a plain put would.
 */
#include <stdio.h>
#include <string.h>

#include "pickple/store.h"

#include "check.h"
#include "store_fixture.h"

#define ENTRIES 3000

/* Writes ENTRIES rising (time, id) pairs. */
static void fill_pairs(pk_store_t *st)
{
    MDB_txn *txn;
    CHECK_RC(pk_store_begin(st, false, &txn), 0);
    for (uint64_t i = 1; i <= ENTRIES; i++)
        CHECK_RC(pk_store_append_pair(st, txn, PK_TBL_ORDER_DUE, 1700000000000ull + i / 3, i * 2 + 1, "", 0), 0);
    CHECK_RC(pk_store_commit(st, txn), 0);
}

static void test_pairs_fall_back(pk_store_t *st)
{
    MDB_txn *txn;
    MDB_val v;
    uint64_t top = 1700000000000ull + ENTRIES / 3;
    CHECK_RC(pk_store_begin(st, false, &txn), 0);
    /* Below the greatest key: a plain put. */
    CHECK_RC(pk_store_append_pair(st, txn, PK_TBL_ORDER_DUE, 1600000000000ull, 5, "x", 1), 0);
    /* The greatest key itself: overwritten. */
    CHECK_RC(pk_store_append_pair(st, txn, PK_TBL_ORDER_DUE, top, ENTRIES * 2 + 1, "y", 1), 0);
    /* Above it again: appended. */
    CHECK_RC(pk_store_append_pair(st, txn, PK_TBL_ORDER_DUE, top + 1, 7, "z", 1), 0);
    CHECK_RC(pk_store_commit(st, txn), 0);
    CHECK_RC(pk_store_begin(st, true, &txn), 0);
    CHECK_RC(pk_store_get_pair(st, txn, PK_TBL_ORDER_DUE, 1600000000000ull, 5, &v), 0);
    CHECK(v.mv_size == 1 && ((const char *)v.mv_data)[0] == 'x');
    CHECK_RC(pk_store_get_pair(st, txn, PK_TBL_ORDER_DUE, top, ENTRIES * 2 + 1, &v), 0);
    CHECK(v.mv_size == 1 && ((const char *)v.mv_data)[0] == 'y');
    CHECK_RC(pk_store_get_pair(st, txn, PK_TBL_ORDER_DUE, top + 1, 7, &v), 0);
    CHECK(v.mv_size == 1 && ((const char *)v.mv_data)[0] == 'z');
    /* Everything else is still there. */
    CHECK_RC(pk_store_get_pair(st, txn, PK_TBL_ORDER_DUE, 1700000000000ull + 1, 7, &v), 0);
    MDB_stat ms;
    CHECK_RC(mdb_stat(txn, st->st_dbi[PK_TBL_ORDER_DUE], &ms), 0);
    CHECK(ms.ms_entries == ENTRIES + 2);
    mdb_txn_abort(txn);
}

static void test_ids_fall_back(pk_store_t *st)
{
    MDB_txn *txn;
    MDB_val v;
    CHECK_RC(pk_store_begin(st, false, &txn), 0);
    for (uint64_t id = 10; id <= 30; id += 10)
        CHECK_RC(pk_store_append_id(st, txn, PK_TBL_PRODUCTS, id, &id, sizeof(id)), 0);
    uint64_t low = 15;
    CHECK_RC(pk_store_append_id(st, txn, PK_TBL_PRODUCTS, low, &low, sizeof(low)), 0);
    CHECK_RC(pk_store_commit(st, txn), 0);
    CHECK_RC(pk_store_begin(st, true, &txn), 0);
    for (uint64_t id = 10; id <= 30; id += 5) {
        int rc = pk_store_get_id(st, txn, PK_TBL_PRODUCTS, id, &v);
        CHECK_RC(rc, id % 10 == 0 || id == 15 ? 0 : PK_ENOTFOUND);
        uint64_t got = 0;
        if (rc == 0 && v.mv_size == sizeof(got))
            memcpy(&got, v.mv_data, sizeof(got));
        CHECK(rc != 0 || got == id);
    }
    mdb_txn_abort(txn);
}

int main(void)
{
    char dir[] = "/tmp/pickple-test-store-XXXXXX";
    pk_store_t st;
    if (fixture_open_tmp_store(&st, dir) != 0)
        return 1;
    fill_pairs(&st);
    test_pairs_fall_back(&st);
    test_ids_fall_back(&st);
    fixture_close_store(&st, dir);
    return CHECK_DONE("test_store");
}
