/*
 * Buyer rows: one per user and shard (PK_TBL_USER_LAST), holding the head of
 * the user's order chain (see src/store/orders.c) and the units the user
 * holds in live orders of up to PK_BUYER_SALES sales of the shard (the
 * per-user limit; further sales spill to PK_TBL_SALE_USERS).
 *
 * Write-back.  Under a flash sale every order changes its buyer's row, and
 * rows of different buyers sit on different B-tree leaves: written in the
 * order's own transaction, they made most of the pages of every group
 * commit.  So placing an order changes the row in memory only (a pending
 * row); pending rows are written together later (a flush: every
 * PK_BUYERS_FLUSH_AT rows, after --buyer-flush-ms, and at shutdown), where
 * one leaf write covers many buyers and a buyer ordering often is written
 * once.  The order itself is committed before its answer as always, and
 * every pending change is a function of committed orders, so nothing
 * acknowledged depends on a pending row:
 *
 *   meta "buyers.upto" = C, written with each flush: every chained order
 *   with id <= C is in the stored rows.  A chained order with id > C is in
 *   its buyer's stored row iff id <= the row's b_last (ids of chained
 *   orders rise in placement order, and a row is always written whole).
 *
 * A rebuild (at start-up, and after an aborted transaction threw away the
 * pending rows) replays the orders above C into pending rows.  Everything
 * else that changes a row (units coming back, a move through sale_users)
 * writes it in its own transaction (write-through), so a replayed order
 * still holds its units.
 *
 * All of it belongs to the shard's owner thread.
 */
#ifndef PICKPLE_BUYERS_H
#define PICKPLE_BUYERS_H

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>

#include "pickple/store.h"

#define PK_BUYER_SALES 8
#define PK_BUYERS_MAX 8192      /* pending rows at most */
#define PK_BUYERS_FLUSH_AT 4096 /* a batch ending with this many flushes */

typedef struct pk_buyer {
    uint64_t b_user;
    uint64_t b_last, b_count; /* newest chained order, chained orders */
    unsigned b_nsales;
    uint64_t b_sale[PK_BUYER_SALES];
    int64_t b_held[PK_BUYER_SALES]; /* > 0 */
    bool b_changed;                 /* differs from what was read */
    bool b_through;                 /* must be stored in this transaction */
} pk_buyer_t;

typedef struct pk_buyers {
    pk_buyer_t *bs_rows; /* pending rows [0, bs_count) */
    uint32_t *bs_slots;  /* open addressing on the user: row index + 1, 0 empty */
    unsigned bs_count;
    int64_t bs_since_ms; /* when the oldest pending row changed */
    uint32_t bs_flush_ms;
    bool bs_stale;      /* pending rows were thrown away: rebuild before use */
} pk_buyers_t;

/* Allocates the table.  flush_ms: how long a row may stay pending.  Starts
 * stale: pk_buyers_rebuild runs before the first use.  0 or -ENOMEM. */
int pk_buyers_init(pk_buyers_t *bs, uint32_t flush_ms) PK_MUST_USE;
void pk_buyers_destroy(pk_buyers_t *bs);

/*
 * Reads user's row into *b: the pending one, else the stored one, else an
 * empty row.  0 or PK_ESTORE (a malformed stored row).
 */
int pk_buyer_read(pk_store_t *st, pk_buyers_t *bs, MDB_txn *txn, uint64_t user, pk_buyer_t *b) PK_MUST_USE;

/* Units b holds in live orders of sale (the row, else sale_users).
 * 0 or PK_ESTORE. */
int pk_buyer_held(pk_store_t *st, MDB_txn *txn, const pk_buyer_t *b, uint64_t sale, int64_t *held) PK_MUST_USE;

/* Sets the units b holds in sale: in the row when it is there or fits,
 * else in sale_users (which makes the row write-through).  0 or PK_ESTORE. */
int pk_buyer_set_held(pk_store_t *st, MDB_txn *txn, pk_buyer_t *b, uint64_t sale, int64_t held) PK_MUST_USE;

/*
 * Saves a changed row: pending, or stored now when through (or b_through)
 * or when the table is full.  Rows read and not changed are left alone.
 * next_due_ms is lowered to when the row must be flushed.  0 or PK_ESTORE.
 */
int pk_buyer_save(pk_store_t *st, pk_buyers_t *bs, MDB_txn *txn, pk_buyer_t *b, bool through, int64_t now_ms,
                  int64_t *next_due_ms) PK_MUST_USE;

/* Writes every pending row and the watermark.  0 or PK_ESTORE. */
int pk_buyers_flush(pk_store_t *st, pk_buyers_t *bs, MDB_txn *txn) PK_MUST_USE;

/*
 * Flushes when due (PK_BUYERS_FLUSH_AT rows, or the oldest pending for
 * flush_ms); *next_due_ms: when it will be due (INT64_MAX: nothing
 * pending).  0 or PK_ESTORE.
 */
int pk_buyers_maintain(pk_store_t *st, pk_buyers_t *bs, MDB_txn *txn, int64_t now_ms, int64_t *next_due_ms)
    PK_MUST_USE;

/* Forgets the pending rows after an aborted transaction: they may hold its
 * changes.  The next write transaction rebuilds them. */
void pk_buyers_discard(pk_buyers_t *bs);

/*
 * Replays the chained orders above the watermark into pending rows (a
 * stale table only), in write transaction txn; *replayed: how many.  A
 * store without a watermark (first start, or written before buyer rows
 * were written back) gets one: its rows are complete.  0 or PK_ESTORE.
 */
int pk_buyers_rebuild(pk_store_t *st, pk_buyers_t *bs, MDB_txn *txn, int64_t now_ms, uint64_t *replayed)
    PK_MUST_USE;

#endif
