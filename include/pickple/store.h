/*
 * Storage: one LMDB environment per shard under the data directory, records
 * encoded with MessagePack, ids that carry their shard.
 *
 * Layout of a data directory:
 *   FORMAT            "pickple-data-format 1\nshards N\n", written once
 *   jwt-secret        generated HS256 key (mode 0600) unless configured
 *   shard-NN/         one LMDB environment per shard
 *
 * Ids: id = seq * nshards + shard with seq >= 1, so any thread finds the
 * owner of an id as id % nshards without a lookup.  Ids stay below 2^53.
 *
 * Caveats:
 * - A shard's environment is written only through its owning actor thread:
 *   LMDB allows one write transaction per environment.  The shard's syncer
 *   (include/pickple/syncer.h) begins and ends those transactions, because
 *   LMDB's writer lock belongs to the thread that begins one; the owner
 *   applies its batch in between, never at the same time.
 * - Any error inside a write transaction poisons it: the caller aborts and
 *   answers every request of the batch with 503 (pk_store_abort resets the
 *   in-memory counters that the transaction advanced).
 */
#ifndef PICKPLE_STORE_H
#define PICKPLE_STORE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>

#include "pickple/common.h"
#include "pickple/out.h"
#include "pickple/sale.h"

#define PK_DATA_FORMAT 1
#define PK_ID_MAX ((1ull << 53) - 1)

typedef enum pk_table {
    PK_TBL_META = 0,  /* string keys: "format", "seq.<kind>" -> u64 */
    PK_TBL_USERS,     /* u64 id -> user record */
    PK_TBL_USERNAMES, /* username -> u64 id */
    PK_TBL_OUTBOX,    /* u64 seq -> event record */
    PK_TBL_PRODUCTS,  /* u64 id -> product record */
    PK_TBL_SALES,     /* u64 id -> sale record */
    PK_TBL_SALE_ENDS, /* (u64 ends_ms, u64 sale id) -> "": sales to settle */
    PK_TBL_ORDERS,       /* u64 id -> order record (home shard) */
    PK_TBL_ORDER_DUE,    /* (u64 expires_ms, u64 order id) -> "": unpaid orders */
    PK_TBL_USER_ORDERS,  /* (u64 user id, u64 order id) -> "" standalone, "c" chain checkpoint */
    PK_TBL_SALE_USERS,   /* (u64 sale id, u64 user id) -> i64 units in live orders, beyond the buyer's row */
    PK_TBL_RESERVATIONS, /* u64 order id -> reservation of this shard's items */
    PK_TBL_RELEASES,     /* u64 order id -> u64 mask of shards still to release */
    PK_TBL_DELIVERIES,   /* u64 delivery id -> u64 order id */
    PK_TBL_NOTIFICATIONS, /* u64 id -> notification record */
    PK_TBL_USER_NOTIFS,  /* (u64 user id, u64 notification id) -> "" */
    PK_TBL_IDEM_KEYS,    /* (u64 user id, key) -> request fingerprint binding */
    PK_TBL_IDEM_ANSWERS, /* (u64 user id, key) -> first answer of the home shard */
    PK_TBL_IDEM_DUE,     /* (u64 written_ms, u8 0: keys | 1: answers, u64 user id, key) -> "" */
    PK_TBL_USER_LAST,    /* u64 user id -> buyer row (include/pickple/buyers.h), written back */
    PK_TBL_COUNT,
} pk_table_t;

/* Id sequences, one counter per kind and shard. */
typedef enum pk_seq {
    PK_SEQ_USER = 0,
    PK_SEQ_PRODUCT,
    PK_SEQ_SALE,
    PK_SEQ_ORDER,
    PK_SEQ_PAYMENT,
    PK_SEQ_DELIVERY,
    PK_SEQ_NOTIFICATION,
    PK_SEQ_COUNT,
} pk_seq_t;

/*
 * Sale records held for the write transaction that changed them, written
 * once when it commits (src/store/sales.c).  Under a flash sale every order
 * reads and rewrites its sale's record: held decoded, the record is decoded
 * once per batch and encoded and put once, not once per order.
 */
#define PK_STORE_SALES_HELD 4
typedef struct pk_store_sale_slot {
    pk_sale_t sl_sale;
    bool sl_dirty; /* changed since it was read: written at commit */
} pk_store_sale_slot_t;

typedef struct pk_store {
    MDB_env *st_env;
    MDB_dbi st_dbi[PK_TBL_COUNT];
    unsigned st_shard;
    unsigned st_nshards;
    uint64_t st_seq[PK_SEQ_COUNT]; /* last used sequence number per kind */
    uint64_t st_outbox_next;       /* next outbox sequence number */
    bool st_seq_dirty;
    size_t st_sales_txn; /* id of the transaction the held sales belong to */
    unsigned st_sales_n;
    pk_store_sale_slot_t st_sales[PK_STORE_SALES_HELD];
} pk_store_t;

/*
 * Prepares data_dir: creates it and FORMAT on first use; otherwise reads
 * FORMAT, refusing a format other than PK_DATA_FORMAT (PK_EVERSION) and
 * returning the recorded shard count in *nshards.  On first use *nshards is
 * the requested count.  err receives a one-line message on failure.
 */
int pk_data_dir_init(const char *data_dir, unsigned *nshards, char *err, size_t err_size) PK_MUST_USE;

/*
 * Opens (creating on first use) shard's environment with map_bytes of
 * address space.  sync_full: fsync on every commit; else MDB_NOSYNC (the OS
 * flushes; a process crash loses nothing, a power loss may).  Returns 0,
 * PK_EVERSION for an unknown stored format, or PK_ESTORE.
 */
int pk_store_open(pk_store_t *st, const char *data_dir, unsigned shard, unsigned nshards, bool sync_full,
                  size_t map_bytes) PK_MUST_USE;
void pk_store_close(pk_store_t *st);

/* Meta table u64 values by name: get returns 0, PK_ENOTFOUND or PK_ESTORE;
 * put 0 or PK_ESTORE. */
int pk_store_meta_get_u64(pk_store_t *st, MDB_txn *txn, const char *name, uint64_t *out) PK_MUST_USE;
int pk_store_meta_put_u64(pk_store_t *st, MDB_txn *txn, const char *name, uint64_t value) PK_MUST_USE;

/* Begins a transaction (read-only or write).  Returns 0 or PK_ESTORE. */
int pk_store_begin(pk_store_t *st, bool readonly, MDB_txn **txn) PK_MUST_USE;
/* Commits a write transaction, persisting advanced counters first.
 * Returns 0 or PK_ESTORE (the transaction is gone either way).  The same
 * in three steps, for a transaction that another thread commits: */
int pk_store_commit(pk_store_t *st, MDB_txn *txn) PK_MUST_USE;
/* Owner: writes the held sales and the advanced counters into txn.  0 or
 * PK_ESTORE. */
int pk_store_commit_prepare(pk_store_t *st, MDB_txn *txn) PK_MUST_USE;
/* The thread that began txn: commits it.  0 or PK_ESTORE (logged). */
int pk_store_commit_txn(const pk_store_t *st, MDB_txn *txn) PK_MUST_USE;
/* Owner, with the result of pk_store_commit_txn: on failure the counters
 * go back to what is stored. */
void pk_store_committed(pk_store_t *st, int rc);
/* Aborts and rolls the in-memory counters back to what is stored; held
 * sales are forgotten. */
void pk_store_abort(pk_store_t *st, MDB_txn *txn);

/* src/store/sales.c: writes the sales held for txn into it and forgets
 * them (before a commit, and before anything reads the sales table by
 * cursor).  0 or PK_ESTORE. */
int pk_store_sales_flush(pk_store_t *st, MDB_txn *txn) PK_MUST_USE;
/* Forgets the held sales unwritten (their transaction was aborted). */
void pk_store_sales_drop(pk_store_t *st);

/* Allocates the next id of kind in this shard. */
uint64_t pk_store_next_id(pk_store_t *st, pk_seq_t kind);

/* Big-endian u64 keys sort numerically in LMDB's default comparison. */
void pk_store_key_pair(uint64_t hi, uint64_t lo, uint8_t out[16]);
void pk_store_key_u64(uint64_t v, uint8_t out[8]);
uint64_t pk_store_u64_of_key(const MDB_val *key);

/* Reads tbl[id].  Returns 0 with *val pointing into the map (valid until the
 * transaction ends), PK_ENOTFOUND, or PK_ESTORE. */
int pk_store_get_id(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t id, MDB_val *val) PK_MUST_USE;
/* Writes tbl[id] = data.  Returns 0 or PK_ESTORE. */
int pk_store_put_id(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t id, const void *data, size_t len)
    PK_MUST_USE;
/*
 * Writes a new tbl[id] whose id is above every key in tbl (ids drawn from a
 * sequence, outbox numbers): LMDB then goes straight to the last leaf
 * instead of searching for the key, and fills leaves to the brim (10,000
 * records of 300 bytes: 834 leaf pages against 909 with plain puts).  A
 * key that is not the greatest falls back to a plain put.  0 or
 * PK_ESTORE.
 */
int pk_store_append_id(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t id, const void *data, size_t len)
    PK_MUST_USE;
/* Pair-keyed index entries (hi, lo) -> value.  put/del return 0 or
 * PK_ESTORE (del of a missing entry is 0); get returns 0, PK_ENOTFOUND or
 * PK_ESTORE. */
int pk_store_put_pair(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t hi, uint64_t lo, const void *data,
                      size_t len) PK_MUST_USE;
/* The same for a pair that usually sorts last (a deadline index keyed by a
 * time that rises with the clock): as pk_store_append_id, with the plain
 * put when it does not. */
int pk_store_append_pair(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t hi, uint64_t lo, const void *data,
                         size_t len) PK_MUST_USE;
int pk_store_get_pair(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t hi, uint64_t lo, MDB_val *val)
    PK_MUST_USE;
int pk_store_del_pair(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t hi, uint64_t lo) PK_MUST_USE;
int pk_store_del_id(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t id) PK_MUST_USE;

/* What an outbox event's body holds, and so how the Kafka mirror renders
 * the event's "data" (pk_kafka_event_value). */
typedef enum pk_event_body {
    PK_EVENT_JSON = 0,           /* the data JSON itself */
    PK_EVENT_ORDER = 1,          /* an order record (pk_order_encode): the order */
    PK_EVENT_PAYMENT = 2,        /* an order record: its payment */
    PK_EVENT_PAYMENT_FAILED = 3, /* an order record: its declined payment attempt */
    PK_EVENT_DELIVERY = 4,       /* an order record: its delivery */
    PK_EVENT_BODY_COUNT
} pk_event_body_t;

/*
 * Appends an event to the outbox in txn, keyed by key_id on the topic of
 * type's prefix (type shorter than 32 bytes).  The record keeps the body as
 * given; the publisher renders the value Kafka gets,
 * {"event_id":"<shard>-<seq>","type":type,"occurred_at":..,"data":..}, so
 * the owner thread renders and stores no envelope.  Returns 0 or PK_ESTORE.
 */
int pk_store_outbox_append(pk_store_t *st, MDB_txn *txn, const char *type, uint64_t key_id, int64_t now_ms,
                           pk_event_body_t kind, const void *body, size_t body_len) PK_MUST_USE;

/* An outbox record as read back: pointers into the record (valid as long as
 * the record is, i.e. until its transaction ends). */
typedef struct pk_outbox_event {
    unsigned oe_schema; /* 1: oe_body is the whole value JSON; 2: as appended */
    const char *oe_type;
    size_t oe_type_len;
    uint64_t oe_key_id;
    int64_t oe_occurred_ms; /* schema 2 */
    pk_event_body_t oe_body_kind;
    const char *oe_body;
    size_t oe_body_len;
} pk_outbox_event_t;

/* Decodes a PK_TBL_OUTBOX value.  Returns 0 or PK_EFORMAT. */
int pk_store_outbox_decode(const MDB_val *rec, pk_outbox_event_t *ev) PK_MUST_USE;

/* The shard's Kafka cursor: every event with seq <= *acked was acknowledged
 * by Kafka (meta "outbox.acked", 0 before the first).  Returns 0 or
 * PK_ESTORE. */
int pk_store_outbox_cursor(pk_store_t *st, MDB_txn *txn, uint64_t *acked) PK_MUST_USE;

/*
 * Moves the Kafka cursor forward to acked (never back) and deletes up to
 * rows_max outbox rows at or below the cursor, oldest first.  *first_left
 * receives the seq of the oldest row left (the next seq when none) and
 * *more whether rows at or below the cursor remain.  Returns 0 or
 * PK_ESTORE.
 */
int pk_store_outbox_trim(pk_store_t *st, MDB_txn *txn, uint64_t acked, unsigned rows_max, uint64_t *first_left,
                         bool *more) PK_MUST_USE;

#endif
