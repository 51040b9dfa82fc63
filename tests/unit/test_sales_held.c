/*
 * Unit tests for the sale records a write transaction holds and writes at
 * commit (src/store/sales.c, include/pickple/store.h) against a real LMDB
 * environment.  Checked: a sale written in a transaction reads back
 * changed in it while the table still has the old record; the commit
 * writes it; an abort forgets it; a read-only transaction reads the table,
 * not a write transaction's held record; a flush before a cursor read puts
 * it into the table; the sale's event goes into the
 * outbox at once, in order; with more changed sales than slots the rest
 * are written through and nothing is lost.
 */
#include <stdio.h>

#include "pickple/sales.h"

#include "check.h"
#include "store_fixture.h"

static pk_sale_t sale(uint64_t id, int64_t remaining)
{
    pk_sale_t s = {.s_id = id, .s_product_id = 7, .s_seller_id = 9, .s_price = 100, .s_quantity = 1000,
                   .s_per_user_limit = 5, .s_starts_ms = 1, .s_ends_ms = 4000000000000, .s_created_ms = 1};
    s.s_remaining = remaining;
    s.s_live = 1000 - remaining;
    return s;
}

/* What the table itself holds for id: remaining, or -1 when absent. */
static int64_t stored(pk_store_t *st, MDB_txn *txn, uint64_t id)
{
    MDB_val v;
    pk_sale_t s;
    if (pk_store_get_id(st, txn, PK_TBL_SALES, id, &v) != 0)
        return -1;
    CHECK_RC(pk_sale_decode(v.mv_data, v.mv_size, &s), 0);
    return s.s_remaining;
}

static int64_t read_remaining(pk_store_t *st, MDB_txn *txn, uint64_t id)
{
    pk_sale_t s;
    int rc = pk_sales_read(st, txn, id, &s);
    return rc == 0 ? s.s_remaining : rc;
}

static void test_commit_and_abort(pk_store_t *st)
{
    MDB_txn *txn;
    pk_sale_t s = sale(11, 1000);
    CHECK_RC(pk_store_begin(st, false, &txn), 0);
    CHECK_RC(pk_sales_write(st, txn, &s, NULL, 5), 0);
    CHECK_RC(pk_store_commit(st, txn), 0);

    /* Orders take units one by one: the record is held, the table waits. */
    CHECK_RC(pk_store_begin(st, false, &txn), 0);
    for (int64_t left = 999; left >= 990; left--) {
        CHECK_RC(pk_sales_read(st, txn, 11, &s), 0);
        CHECK(s.s_remaining == left + 1);
        s.s_remaining--;
        s.s_live++;
        CHECK_RC(pk_sales_write(st, txn, &s, NULL, 5), 0);
    }
    CHECK(stored(st, txn, 11) == 1000);
    CHECK(read_remaining(st, txn, 11) == 990);
    /* A read-only transaction meanwhile sees the last commit. */
    MDB_txn *rtxn;
    CHECK_RC(pk_store_begin(st, true, &rtxn), 0);
    CHECK(read_remaining(st, rtxn, 11) == 1000);
    CHECK_RC(pk_store_sales_flush(st, rtxn), 0); /* not its own: writes nothing, forgets nothing */
    mdb_txn_abort(rtxn);
    CHECK(read_remaining(st, txn, 11) == 990);
    /* Before a cursor reads the table, the writer flushes: then it is there. */
    CHECK_RC(pk_store_sales_flush(st, txn), 0);
    CHECK(stored(st, txn, 11) == 990);
    CHECK_RC(pk_store_commit(st, txn), 0);
    CHECK_RC(pk_store_begin(st, true, &rtxn), 0);
    CHECK(stored(st, rtxn, 11) == 990);
    mdb_txn_abort(rtxn);

    /* Aborted: nothing of it stays, in the table or held. */
    CHECK_RC(pk_store_begin(st, false, &txn), 0);
    CHECK_RC(pk_sales_read(st, txn, 11, &s), 0);
    s.s_remaining = 0;
    s.s_live = 1000;
    CHECK_RC(pk_sales_write(st, txn, &s, NULL, 5), 0);
    pk_store_abort(st, txn);
    CHECK_RC(pk_store_begin(st, false, &txn), 0);
    CHECK(read_remaining(st, txn, 11) == 990);
    CHECK_RC(pk_store_commit(st, txn), 0);
}

/* More changed sales than slots, each with an event: every record and
 * every event lands, the events in the order they were written. */
static void test_more_sales_than_slots(pk_store_t *st)
{
    enum { N = PK_STORE_SALES_HELD * 2 + 1 };
    MDB_txn *txn;
    uint64_t first = st->st_outbox_next;
    CHECK_RC(pk_store_begin(st, false, &txn), 0);
    for (int round = 0; round < 2; round++) {
        for (uint64_t id = 100; id < 100 + N; id++) {
            pk_sale_t s = sale(id, 500 - round - (int64_t)id % 7);
            CHECK_RC(pk_sales_write(st, txn, &s, "sale.updated", 5), 0);
        }
    }
    for (uint64_t id = 100; id < 100 + N; id++)
        CHECK(read_remaining(st, txn, id) == 499 - (int64_t)id % 7);
    CHECK_RC(pk_store_commit(st, txn), 0);
    CHECK(st->st_outbox_next == first + 2 * N);
    CHECK_RC(pk_store_begin(st, true, &txn), 0);
    for (uint64_t id = 100; id < 100 + N; id++)
        CHECK(stored(st, txn, id) == 499 - (int64_t)id % 7);
    mdb_txn_abort(txn);
}

int main(void)
{
    char dir[] = "/tmp/pickple-test-sales-XXXXXX";
    pk_store_t st;
    if (fixture_open_tmp_store(&st, dir) != 0)
        return 1;
    test_commit_and_abort(&st);
    test_more_sales_than_slots(&st);
    fixture_close_store(&st, dir);
    return CHECK_DONE("test_sales_held");
}
