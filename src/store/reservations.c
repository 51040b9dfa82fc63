/* Catalog reservations on the shards that own the items, and the releases
 * a home shard owes to other shards. */
#include <string.h>

#include "pickple/codec.h"
#include "pickple/log.h"
#include "pickple/orders.h"
#include "pickple/products.h"

enum { PK__RES_RESERVED = 1, PK__RES_RELEASED = 2 };

typedef struct pk__res {
    uint8_t r_state;
    unsigned r_n;
    uint64_t r_product[PK_ORDER_ITEMS_MAX];
    int64_t r_quantity[PK_ORDER_ITEMS_MAX];
} pk__res_t;

static int pk__res_encode(const pk__res_t *r, pk_buf_t *out)
{
    msgpack_packer pk;
    pk_codec_rec_t rec;
    pk_codec_rec_begin(&rec, &pk, out);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, r->r_state);
    msgpack_pack_array(&pk, r->r_n * 2);
    for (unsigned i = 0; i < r->r_n; i++) {
        msgpack_pack_uint64(&pk, r->r_product[i]);
        msgpack_pack_int64(&pk, r->r_quantity[i]);
    }
    return pk_codec_rec_end(&rec);
}

static int pk__res_decode(const MDB_val *v, pk__res_t *r)
{
    msgpack_unpacked up;
    msgpack_object *f;
    uint64_t state;
    int rc = pk_codec_unpack(v->mv_data, v->mv_size, &up);
    if (rc != 0)
        return rc;
    rc = PK_EFORMAT;
    if (pk_codec_array(&up.data, 2, &f) != 0 || pk_codec_u64(&f[0], PK__RES_RELEASED, &state) != 0 ||
        f[1].type != MSGPACK_OBJECT_ARRAY || f[1].via.array.size % 2 != 0 ||
        f[1].via.array.size > 2 * PK_ORDER_ITEMS_MAX)
        goto fail;
    r->r_state = (uint8_t)state;
    r->r_n = f[1].via.array.size / 2;
    for (unsigned i = 0; i < r->r_n; i++)
        if (pk_codec_u64(&f[1].via.array.ptr[2 * i], PK_ID_MAX, &r->r_product[i]) != 0 ||
            pk_codec_i64(&f[1].via.array.ptr[2 * i + 1], &r->r_quantity[i]) != 0 || r->r_quantity[i] <= 0)
            goto fail;
    rc = 0;
fail:
    msgpack_unpacked_destroy(&up);
    return rc;
}

static int pk__res_get(pk_store_t *st, MDB_txn *txn, uint64_t order_id, pk__res_t *r)
{
    MDB_val v;
    int rc = pk_store_get_id(st, txn, PK_TBL_RESERVATIONS, order_id, &v);
    if (rc != 0)
        return rc;
    if (pk__res_decode(&v, r) != 0) {
        pk_log_error("shard=%u reservation %llu: corrupt record", st->st_shard, (unsigned long long)order_id);
        return PK_ESTORE;
    }
    return 0;
}

static int pk__res_put(pk_store_t *st, MDB_txn *txn, uint64_t order_id, const pk__res_t *r)
{
    pk_buf_t b = {0};
    int rc = pk__res_encode(r, &b);
    if (rc == 0)
        rc = pk_store_put_id(st, txn, PK_TBL_RESERVATIONS, order_id, b.b_data, b.b_len);
    pk_buf_free(&b);
    return rc == 0 ? 0 : PK_ESTORE;
}

int pk_reservation_make(pk_store_t *st, MDB_txn *txn, uint64_t order_id, pk_order_item_t *items, unsigned n,
                        int64_t now_ms, pk_msg_t *msg)
{
    pk__res_t r;
    pk_product_t p[PK_ORDER_ITEMS_MAX];
    int rc = pk__res_get(st, txn, order_id, &r);
    if (rc != 0 && rc != PK_ENOTFOUND)
        return rc;
    if (rc == 0 && r.r_state == PK__RES_RELEASED) {
        pk_msg_error(msg, 503, "unavailable", "the order was abandoned; retry");
        return 1;
    }
    bool again = rc == 0;
    /* Check every item before the first write. */
    for (unsigned i = 0; i < n; i++) {
        rc = pk_products_read(st, txn, items[i].oi_product_id, &p[i]);
        if (rc == PK_ENOTFOUND) {
            pk_msg_error(msg, 404, "product_not_found", "an item names a product that does not exist");
            return 1;
        }
        if (rc != 0)
            return rc;
        items[i].oi_unit_price = p[i].p_price;
        items[i].oi_seller_id = p[i].p_seller_id;
        if (!again && p[i].p_stock < items[i].oi_quantity) {
            pk_msg_error(msg, 409, "insufficient_stock", "not enough units in stock for an item");
            return 1;
        }
    }
    if (again) /* a repeated message: the units are already held */
        return 0;
    r.r_state = PK__RES_RESERVED;
    r.r_n = n;
    for (unsigned i = 0; i < n; i++) {
        p[i].p_stock -= items[i].oi_quantity;
        p[i].p_order_units += items[i].oi_quantity;
        p[i].p_updated_ms = now_ms;
        if ((rc = pk_products_write(st, txn, &p[i], "stock.adjusted", now_ms)) != 0)
            return rc;
        r.r_product[i] = items[i].oi_product_id;
        r.r_quantity[i] = items[i].oi_quantity;
    }
    return pk__res_put(st, txn, order_id, &r);
}

int pk_reservation_release(pk_store_t *st, MDB_txn *txn, uint64_t order_id, int64_t now_ms)
{
    pk__res_t r;
    int rc = pk__res_get(st, txn, order_id, &r);
    if (rc != 0 && rc != PK_ENOTFOUND)
        return rc;
    if (rc == 0 && r.r_state == PK__RES_RELEASED)
        return 0; /* released before: units return exactly once */
    if (rc == 0) {
        for (unsigned i = 0; i < r.r_n; i++) {
            pk_product_t p;
            if (pk_products_read(st, txn, r.r_product[i], &p) != 0)
                return PK_ESTORE; /* products are never deleted */
            p.p_stock += r.r_quantity[i];
            p.p_order_units -= r.r_quantity[i];
            p.p_updated_ms = now_ms;
            if ((rc = pk_products_write(st, txn, &p, "stock.adjusted", now_ms)) != 0)
                return rc;
        }
    }
    /* Tombstone: a reserve of this order arriving late is refused. */
    r.r_state = PK__RES_RELEASED;
    r.r_n = 0;
    return pk__res_put(st, txn, order_id, &r);
}

int pk_releases_add(pk_store_t *st, MDB_txn *txn, uint64_t order_id, uint64_t shards)
{
    uint8_t b[8];
    MDB_val v;
    int rc = pk_store_get_id(st, txn, PK_TBL_RELEASES, order_id, &v);
    if (rc == 0 && v.mv_size == 8)
        shards |= pk_store_u64_of_key(&v);
    else if (rc != 0 && rc != PK_ENOTFOUND)
        return rc;
    pk_store_key_u64(shards, b);
    return pk_store_put_id(st, txn, PK_TBL_RELEASES, order_id, b, 8);
}

/* ---- the release messages ---- */

static int pk__release_apply(pk_actor_t *owner, MDB_txn *txn, pk_msg_t *msg)
{
    int rc = pk_reservation_release(&owner->a_store, txn, msg->u.order.mo_id, msg->m_now_ms);
    if (rc != 0)
        return rc;
    msg->m_status = 200;
    return 0;
}

const pk_op_t pk_op_order_release = {"order.release", false, pk__release_apply};

static void pk__release_done(pk_actor_t *a, pk_msg_t *msg)
{
    a->a_releases_inflight--;
    if (msg->m_status == 200 && a->a_release_acks_count < PK_ARRAY_LEN(a->a_release_acks)) {
        a->a_release_acks[a->a_release_acks_count][0] = msg->u.order.mo_id;
        a->a_release_acks[a->a_release_acks_count][1] = msg->m_shard;
        a->a_release_acks_count++;
    }
    /* Acknowledged or not, the next maintenance looks at the table again. */
    a->a_next_due_ms = 0;
    pk_msg_free(a, msg);
}

void pk_orders_send_releases(pk_actor_t *a, const pk_msg_maint_t *rel)
{
    for (uint32_t i = 0; i < rel->mm_count; i++) {
        for (unsigned s = 0; s < a->a_rt->rt_nactors; s++) {
            if (!(rel->mm_shards[i] & (1ull << s)))
                continue;
            pk_msg_t *msg = pk_msg_new(a);
            if (msg == NULL)
                return;
            msg->m_op = &pk_op_order_release;
            msg->m_shard = (uint16_t)s;
            msg->m_now_ms = pk_now_ms();
            msg->m_done = pk__release_done;
            msg->u.order.mo_id = rel->mm_order[i];
            if (pk_actor_send(a, msg) != 0) {
                pk_msg_free(a, msg);
                a->a_next_due_ms = 0;
                return;
            }
            a->a_releases_inflight++;
        }
    }
}

/* Clears acknowledged releases, then lists what is still owed (only when
 * nothing is in flight, so no release is sent twice at once). */
int pk_releases_maintain(pk_actor_t *a, MDB_txn *txn, pk_msg_maint_t *rel, bool *more)
{
    pk_store_t *st = &a->a_store;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;
    *more = false;
    for (unsigned i = 0; i < a->a_release_acks_count; i++) {
        uint64_t order_id = a->a_release_acks[i][0], bit = 1ull << a->a_release_acks[i][1];
        rc = pk_store_get_id(st, txn, PK_TBL_RELEASES, order_id, &v);
        if (rc == PK_ENOTFOUND)
            continue;
        if (rc != 0 || v.mv_size != 8)
            return PK_ESTORE;
        uint64_t left = pk_store_u64_of_key(&v) & ~bit;
        uint8_t b[8];
        pk_store_key_u64(left, b);
        rc = left == 0 ? pk_store_del_id(st, txn, PK_TBL_RELEASES, order_id)
                       : pk_store_put_id(st, txn, PK_TBL_RELEASES, order_id, b, 8);
        if (rc != 0)
            return rc;
    }
    a->a_release_acks_count = 0; /* an aborted batch re-sends: idempotent */
    if (a->a_releases_inflight > 0) {
        *more = true;
        return 0;
    }
    if (mdb_cursor_open(txn, st->st_dbi[PK_TBL_RELEASES], &cur) != 0)
        return PK_ESTORE;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0 && rel->mm_count < PK_RELEASE_BATCH) {
        if (k.mv_size != 8 || v.mv_size != 8) {
            rc = PK_ESTORE;
            break;
        }
        rel->mm_order[rel->mm_count] = pk_store_u64_of_key(&k);
        rel->mm_shards[rel->mm_count] = pk_store_u64_of_key(&v);
        rel->mm_count++;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    *more = rel->mm_count > 0;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : PK_ESTORE;
}
