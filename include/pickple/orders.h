/*
 * Order operations on their shards (src/store/orders.c, reservations.c,
 * deliveries.c, idempotency.c).
 *
 * Placement:
 * - sale form: order.place_sale on the sale's shard, one transaction.
 * - catalog, every item on one shard: order.place on that shard.
 * - catalog across shards: order.begin on the home shard (first item's)
 *   writes a `placing` order and reserves the home's items; the connection
 *   thread then sends order.reserve to every other shard involved and
 *   finally order.confirm to the home with every answer.  The home decides:
 *   all reserved -> pending_payment; any refusal -> the order is dropped and
 *   every shard's reservation is released.
 * Crash safety: a `placing` order that is not confirmed within
 * PK_ORDER_PLACING_TIMEOUT_MS (connection gone, server restarted) is
 * failed by the home's maintenance, which releases every reservation.
 * Releases on other shards are recorded in PK_TBL_RELEASES in the same
 * transaction as the decision and re-sent until acknowledged; reserve and
 * release are idempotent per order id (a release leaves a tombstone, so a
 * late reserve of a dropped order is refused).
 */
#ifndef PICKPLE_ORDERS_H
#define PICKPLE_ORDERS_H

#include "pickple/actor.h"

#define PK_ORDER_PLACING_TIMEOUT_MS 10000

extern const pk_op_t pk_op_order_place_sale; /* user, sale_id, mo_quantity, shipping -> 201 | 404 | 409 */
extern const pk_op_t pk_op_order_place;      /* catalog, all items here -> 201 | 404 | 409 */
extern const pk_op_t pk_op_order_begin;      /* catalog, home part -> 200 (o_id set) | 404 | 409 */
extern const pk_op_t pk_op_order_reserve;    /* o_id + this shard's items -> 200 (prices) | 404 | 409 */
extern const pk_op_t pk_op_order_confirm;    /* o_id, all items, mo_ok -> 201 | the refusal */
extern const pk_op_t pk_op_order_release;    /* o_id -> 200 */
extern const pk_op_t pk_op_order_get;        /* mo_id -> 200 | 404 */
extern const pk_op_t pk_op_order_list;       /* u.list (own orders; admin all), ml_filter = status */
extern const pk_op_t pk_op_order_pay;        /* mo_id, mo_amount, mo_method -> 200 | 402 | 404 | 409 | 422 */
extern const pk_op_t pk_op_order_cancel;     /* mo_id -> 200 | 404 | 409 */
extern const pk_op_t pk_op_delivery_get;     /* mo_id = order id -> 200 | 404 */
extern const pk_op_t pk_op_delivery_ship;    /* mo_id = delivery id, carrier, tracking -> 200 | 403 | 404 | 409 */
extern const pk_op_t pk_op_delivery_complete; /* mo_id = delivery id -> 200 | 403 | 404 | 409 */
extern const pk_op_t pk_op_note_list;        /* u.list, own notifications */
extern const pk_op_t pk_op_idem_bind;        /* (user, key) -> fingerprint: 200 | 422 */

/* Reads order id: 0, PK_ENOTFOUND or PK_ESTORE (corrupt). */
int pk_orders_read(pk_store_t *st, MDB_txn *txn, uint64_t id, pk_order_t *o) PK_MUST_USE;

/*
 * Order part of the shard's maintenance: expires due unpaid orders, fails
 * stale placing ones (bounded per call), applies release acknowledgements
 * and lists remote releases to send into rel.  *next_due_ms is the next
 * time there is work.  Returns 0 or PK_ESTORE.
 */
int pk_orders_maintain(pk_actor_t *a, MDB_txn *txn, int64_t now_ms, int64_t *next_due_ms, pk_msg_maint_t *rel)
    PK_MUST_USE;
/* After the maintenance batch committed: sends the listed releases. */
void pk_orders_send_releases(pk_actor_t *a, const pk_msg_maint_t *rel);

/* Reservations of catalog items on this shard (src/store/reservations.c). */
/* Reserves items[0..n) (all on this shard) for order_id, filling their
 * prices and sellers.  Returns 0, 1 when refused (msg carries the 4xx), or
 * PK_ESTORE.  Idempotent: an existing reservation answers 0 again. */
int pk_reservation_make(pk_store_t *st, MDB_txn *txn, uint64_t order_id, pk_order_item_t *items, unsigned n,
                        int64_t now_ms, pk_msg_t *msg) PK_MUST_USE;
/* Returns order_id's units on this shard to stock, once; leaves a tombstone. */
int pk_reservation_release(pk_store_t *st, MDB_txn *txn, uint64_t order_id, int64_t now_ms) PK_MUST_USE;
/* Records that shards (bit mask) must still release order_id. */
int pk_releases_add(pk_store_t *st, MDB_txn *txn, uint64_t order_id, uint64_t shards) PK_MUST_USE;
/* Clears acknowledged releases and, when none is in flight, lists up to
 * PK_RELEASE_BATCH owed ones into rel; *more: call again later. */
int pk_releases_maintain(pk_actor_t *a, MDB_txn *txn, pk_msg_maint_t *rel, bool *more) PK_MUST_USE;

/* Idempotent answers on the home shard (src/store/idempotency.c).  Entries
 * older than --idempotency-window are ignored, then purged. */
/* Returns 1 and fills msg with the stored answer (or a 409/422 refusal),
 * 0 when there is none, or PK_ESTORE. */
int pk_idem_replay(pk_store_t *st, MDB_txn *txn, pk_msg_t *msg) PK_MUST_USE;
/* Stores msg's answer (status 0: still placing) and its expiry index
 * entry.  No-op without a key.  Returns 0 or PK_ESTORE. */
int pk_idem_record(pk_store_t *st, MDB_txn *txn, pk_msg_t *msg, int status) PK_MUST_USE;
/*
 * Idempotency part of the shard's maintenance: deletes idem_keys and
 * idem_answers entries written more than --idempotency-window ago (at most
 * 256 index entries per call, oldest first, each with its idem_due entry)
 * and indexes, in steps of 256, entries of a data directory from before
 * idem_due.  *next_due_ms: the next time there is work (now_ms when a bound
 * was hit, INT64_MAX when nothing is stored).  Returns 0 or PK_ESTORE.
 */
int pk_idem_maintain(pk_actor_t *a, MDB_txn *txn, int64_t now_ms, int64_t *next_due_ms) PK_MUST_USE;

#endif
