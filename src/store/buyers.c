/* Buyer rows and their write-back table.  See include/pickple/buyers.h. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pickple/buyers.h"
#include "pickple/log.h"
#include "pickple/order.h"
#include "pickple/product.h"

#define PK__SLOTS (2 * PK_BUYERS_MAX) /* load factor <= 1/2 */
#define PK__ROW_BYTES_MAX (16 + 16 * PK_BUYER_SALES)

_Static_assert((PK__SLOTS & (PK__SLOTS - 1)) == 0, "slots: a power of two");

static const char pk__upto_key[] = "buyers.upto";

int pk_buyers_init(pk_buyers_t *bs, uint32_t flush_ms)
{
    memset(bs, 0, sizeof(*bs));
    bs->bs_rows = malloc(sizeof(pk_buyer_t) * PK_BUYERS_MAX);
    bs->bs_slots = calloc(PK__SLOTS, sizeof(uint32_t));
    if (bs->bs_rows == NULL || bs->bs_slots == NULL) {
        pk_buyers_destroy(bs);
        return -ENOMEM;
    }
    bs->bs_flush_ms = flush_ms;
    bs->bs_stale = true;
    return 0;
}

void pk_buyers_destroy(pk_buyers_t *bs)
{
    free(bs->bs_rows);
    free(bs->bs_slots);
    bs->bs_rows = NULL;
    bs->bs_slots = NULL;
}

static uint32_t pk__slot_of(uint64_t user)
{
    /* Ids of one shard step by the shard count: mix the bits. */
    uint64_t h = user * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> 40) & (PK__SLOTS - 1);
}

/* The slot of user's pending row, or the empty slot where it would go. */
static uint32_t *pk__find(pk_buyers_t *bs, uint64_t user)
{
    for (uint32_t i = pk__slot_of(user);; i = (i + 1) & (PK__SLOTS - 1)) {
        uint32_t *s = &bs->bs_slots[i];
        if (*s == 0 || bs->bs_rows[*s - 1].b_user == user)
            return s;
    }
}

static void pk__clear(pk_buyers_t *bs)
{
    if (bs->bs_count > 0)
        memset(bs->bs_slots, 0, sizeof(uint32_t) * PK__SLOTS);
    bs->bs_count = 0;
}

/* ---- the stored row: [u64 last][u64 count] then [u64 sale][u64 held] per sale ---- */

static int pk__row_decode(const MDB_val *v, pk_buyer_t *b)
{
    const uint8_t *p = v->mv_data;
    MDB_val f = {8, NULL};
    if (v->mv_size < 16 || (v->mv_size - 16) % 16 != 0 || (v->mv_size - 16) / 16 > PK_BUYER_SALES)
        return PK_ESTORE;
    f.mv_data = (void *)p;
    b->b_last = pk_store_u64_of_key(&f);
    f.mv_data = (void *)(p + 8);
    b->b_count = pk_store_u64_of_key(&f);
    b->b_nsales = (unsigned)((v->mv_size - 16) / 16);
    for (unsigned i = 0; i < b->b_nsales; i++) {
        f.mv_data = (void *)(p + 16 + 16 * i);
        b->b_sale[i] = pk_store_u64_of_key(&f);
        f.mv_data = (void *)(p + 24 + 16 * i);
        b->b_held[i] = (int64_t)pk_store_u64_of_key(&f);
        if (b->b_held[i] <= 0 || b->b_held[i] > PK_STOCK_MAX)
            return PK_ESTORE;
    }
    return 0;
}

static int pk__row_store(pk_store_t *st, MDB_txn *txn, const pk_buyer_t *b)
{
    uint8_t v[PK__ROW_BYTES_MAX];
    assert(b->b_nsales <= PK_BUYER_SALES);
    pk_store_key_u64(b->b_last, v);
    pk_store_key_u64(b->b_count, v + 8);
    for (unsigned i = 0; i < b->b_nsales; i++) {
        assert(b->b_held[i] > 0);
        pk_store_key_u64(b->b_sale[i], v + 16 + 16 * i);
        pk_store_key_u64((uint64_t)b->b_held[i], v + 24 + 16 * i);
    }
    return pk_store_put_id(st, txn, PK_TBL_USER_LAST, b->b_user, v, 16 + 16 * (size_t)b->b_nsales);
}

int pk_buyer_read(pk_store_t *st, pk_buyers_t *bs, MDB_txn *txn, uint64_t user, pk_buyer_t *b)
{
    MDB_val v;
    assert(!bs->bs_stale);
    uint32_t *s = pk__find(bs, user);
    if (*s != 0) {
        *b = bs->bs_rows[*s - 1];
        b->b_changed = b->b_through = false;
        return 0;
    }
    memset(b, 0, sizeof(*b));
    b->b_user = user;
    int rc = pk_store_get_id(st, txn, PK_TBL_USER_LAST, user, &v);
    if (rc == PK_ENOTFOUND)
        return 0;
    if (rc == 0 && (rc = pk__row_decode(&v, b)) != 0)
        pk_log_error("shard=%u buyer %llu: corrupt row", st->st_shard, (unsigned long long)user);
    return rc == 0 ? 0 : PK_ESTORE;
}

int pk_buyer_held(pk_store_t *st, MDB_txn *txn, const pk_buyer_t *b, uint64_t sale, int64_t *held)
{
    MDB_val v;
    *held = 0;
    for (unsigned i = 0; i < b->b_nsales; i++) {
        if (b->b_sale[i] == sale) {
            *held = b->b_held[i];
            return 0;
        }
    }
    int rc = pk_store_get_pair(st, txn, PK_TBL_SALE_USERS, sale, b->b_user, &v);
    if (rc == PK_ENOTFOUND)
        return 0;
    if (rc != 0 || v.mv_size != 8)
        return PK_ESTORE;
    *held = (int64_t)pk_store_u64_of_key(&v);
    return 0;
}

int pk_buyer_set_held(pk_store_t *st, MDB_txn *txn, pk_buyer_t *b, uint64_t sale, int64_t held)
{
    uint8_t v[8];
    MDB_val old;
    assert(held >= 0);
    for (unsigned i = 0; i < b->b_nsales; i++) {
        if (b->b_sale[i] != sale)
            continue;
        b->b_changed = true;
        if (held > 0) {
            b->b_held[i] = held;
        } else {
            b->b_nsales--;
            b->b_sale[i] = b->b_sale[b->b_nsales];
            b->b_held[i] = b->b_held[b->b_nsales];
        }
        return 0;
    }
    /* Not in the row: sale_users has it, or nobody does. */
    int rc = pk_store_get_pair(st, txn, PK_TBL_SALE_USERS, sale, b->b_user, &old);
    if (rc != 0 && rc != PK_ENOTFOUND)
        return PK_ESTORE;
    bool spilled = rc == 0;
    if (held > 0 && b->b_nsales < PK_BUYER_SALES) {
        b->b_sale[b->b_nsales] = sale;
        b->b_held[b->b_nsales] = held;
        b->b_nsales++;
        b->b_changed = true;
        if (!spilled)
            return 0;
        /* Moved into the row: the row and the removal land together. */
        b->b_through = true;
        return pk_store_del_pair(st, txn, PK_TBL_SALE_USERS, sale, b->b_user);
    }
    /* Written in sale_users, so the row's chain must be stored with it: a
     * replay of this order would otherwise count its units twice. */
    b->b_changed = b->b_through = true;
    if (held == 0)
        return spilled ? pk_store_del_pair(st, txn, PK_TBL_SALE_USERS, sale, b->b_user) : 0;
    pk_store_key_u64((uint64_t)held, v);
    return pk_store_put_pair(st, txn, PK_TBL_SALE_USERS, sale, b->b_user, v, 8);
}

int pk_buyer_save(pk_store_t *st, pk_buyers_t *bs, MDB_txn *txn, pk_buyer_t *b, bool through, int64_t now_ms,
                  int64_t *next_due_ms)
{
    assert(!bs->bs_stale);
    if (!b->b_changed)
        return 0;
    through = through || b->b_through;
    b->b_changed = b->b_through = false;
    uint32_t *s = pk__find(bs, b->b_user);
    if (*s != 0) {
        bs->bs_rows[*s - 1] = *b; /* pending stays pending: flushed again, harmlessly */
    } else if (!through && bs->bs_count < PK_BUYERS_MAX) {
        if (bs->bs_count == 0) {
            bs->bs_since_ms = now_ms;
            int64_t due = now_ms + (int64_t)bs->bs_flush_ms;
            if (due < *next_due_ms)
                *next_due_ms = due;
        }
        bs->bs_rows[bs->bs_count++] = *b;
        *s = bs->bs_count;
        return 0;
    } else {
        through = true; /* full: this one is stored now */
    }
    return through ? pk__row_store(st, txn, b) : 0;
}

static int pk__by_user(const void *x, const void *y)
{
    const pk_buyer_t *a = x, *b = y;
    return a->b_user < b->b_user ? -1 : a->b_user > b->b_user;
}

/* The greatest order id this shard has drawn (0: none). */
static uint64_t pk__last_order_id(const pk_store_t *st)
{
    uint64_t seq = st->st_seq[PK_SEQ_ORDER];
    return seq == 0 ? 0 : seq * st->st_nshards + st->st_shard;
}

/* Stores every pending row; upto: the watermark they complete. */
static int pk__flush(pk_store_t *st, pk_buyers_t *bs, MDB_txn *txn, uint64_t upto)
{
    assert(!bs->bs_stale);
    /* In key order: neighbours share leaves, and LMDB's cursor stays warm. */
    qsort(bs->bs_rows, bs->bs_count, sizeof(pk_buyer_t), pk__by_user);
    for (unsigned i = 0; i < bs->bs_count; i++)
        if (pk__row_store(st, txn, &bs->bs_rows[i]) != 0)
            return PK_ESTORE; /* the batch aborts and discards the table */
    if (pk_store_meta_put_u64(st, txn, pk__upto_key, upto) != 0)
        return PK_ESTORE;
    pk__clear(bs);
    return 0;
}

int pk_buyers_flush(pk_store_t *st, pk_buyers_t *bs, MDB_txn *txn)
{
    /* Every chained order drawn so far is in a row now. */
    return pk__flush(st, bs, txn, pk__last_order_id(st));
}

int pk_buyers_maintain(pk_store_t *st, pk_buyers_t *bs, MDB_txn *txn, int64_t now_ms, int64_t *next_due_ms)
{
    *next_due_ms = INT64_MAX;
    if (bs->bs_count == 0)
        return 0;
    int64_t due = bs->bs_since_ms + (int64_t)bs->bs_flush_ms;
    if (bs->bs_count >= PK_BUYERS_FLUSH_AT || now_ms >= due)
        return pk_buyers_flush(st, bs, txn);
    *next_due_ms = due;
    return 0;
}

void pk_buyers_discard(pk_buyers_t *bs)
{
    pk__clear(bs);
    bs->bs_stale = true;
}

/* True when order id of user was placed as a standalone index entry (a
 * cross-shard order), not on the user's chain. */
static int pk__standalone(pk_store_t *st, MDB_txn *txn, uint64_t user, uint64_t id, bool *solo)
{
    MDB_val v;
    int rc = pk_store_get_pair(st, txn, PK_TBL_USER_ORDERS, user, id, &v);
    if (rc != 0 && rc != PK_ENOTFOUND)
        return PK_ESTORE;
    *solo = rc == 0 && v.mv_size == 0;
    return 0;
}

/* Applies one order above the watermark to its buyer's row. */
static int pk__replay_one(pk_store_t *st, pk_buyers_t *bs, MDB_txn *txn, const pk_order_t *o, int64_t now_ms,
                          bool *applied)
{
    pk_buyer_t b;
    bool solo;
    int64_t held, unused = INT64_MAX;
    int rc;
    *applied = false;
    if (o->o_status == PK_ORDER_PLACING || o->o_status == PK_ORDER_FAILED)
        return 0; /* cross-shard, never chained */
    if ((rc = pk__standalone(st, txn, o->o_user_id, o->o_id, &solo)) != 0 || solo)
        return rc;
    if ((rc = pk_buyer_read(st, bs, txn, o->o_user_id, &b)) != 0)
        return rc;
    if (o->o_id <= b.b_last)
        return 0; /* stored with its row, or written through since */
    if (o->o_prev_id != b.b_last) {
        pk_log_error("shard=%u order %llu: chain points to %llu, the buyer's row to %llu", st->st_shard,
                     (unsigned long long)o->o_id, (unsigned long long)o->o_prev_id, (unsigned long long)b.b_last);
        return PK_ESTORE;
    }
    b.b_last = o->o_id;
    b.b_count++;
    b.b_changed = true;
    /* A release writes its row through: an order above b_last never gave
     * its units back, whatever happened to it since. */
    if (o->o_sale_id != 0 && pk_order_holds_units(o->o_status)) {
        if ((rc = pk_buyer_held(st, txn, &b, o->o_sale_id, &held)) != 0 ||
            (rc = pk_buyer_set_held(st, txn, &b, o->o_sale_id, held + o->o_items[0].oi_quantity)) != 0)
            return rc;
    }
    if ((rc = pk_buyer_save(st, bs, txn, &b, false, now_ms, &unused)) != 0)
        return rc;
    *applied = true;
    return 0;
}

int pk_buyers_rebuild(pk_store_t *st, pk_buyers_t *bs, MDB_txn *txn, int64_t now_ms, uint64_t *replayed)
{
    uint64_t upto;
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    MDB_cursor *cur = NULL;
    pk_order_t o;
    *replayed = 0;
    assert(bs->bs_stale);
    pk__clear(bs);
    bs->bs_stale = false;
    int rc = pk_store_meta_get_u64(st, txn, pk__upto_key, &upto);
    if (rc == PK_ENOTFOUND) {
        /* Rows were written with their orders until now: all complete. */
        return pk_store_meta_put_u64(st, txn, pk__upto_key, pk__last_order_id(st));
    }
    if (rc != 0)
        goto fail;
    if (mdb_cursor_open(txn, st->st_dbi[PK_TBL_ORDERS], &cur) != 0)
        goto fail;
    pk_store_key_u64(upto + 1, kb);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        bool applied;
        if (k.mv_size != 8 || pk_order_decode(v.mv_data, v.mv_size, &o) != 0 || o.o_id != pk_store_u64_of_key(&k)) {
            pk_log_error("shard=%u buyer rebuild: corrupt order record", st->st_shard);
            goto fail;
        }
        if (pk__replay_one(st, bs, txn, &o, now_ms, &applied) != 0)
            goto fail;
        *replayed += applied;
        /* A full table is flushed up to the order replayed last (writes go
         * to other tables than the cursor's). */
        if (bs->bs_count >= PK_BUYERS_FLUSH_AT && pk__flush(st, bs, txn, o.o_id) != 0)
            goto fail;
    }
    if (rc != MDB_NOTFOUND)
        goto fail;
    mdb_cursor_close(cur);
    return 0;
fail:
    if (cur != NULL)
        mdb_cursor_close(cur);
    pk_buyers_discard(bs);
    return PK_ESTORE;
}
