/* Sales on their product's shard: create (units move out of stock), get,
 * list, and settlement at the end (unsold units go back to stock). */
#include <assert.h>
#include <string.h>

#include "pickple/log.h"
#include "pickple/orders.h"
#include "pickple/products.h"
#include "pickple/sales.h"

#define PK__SETTLE_PER_SWEEP 256

/*
 * Whether the slots may serve txn.  Slots belong to one transaction: held
 * unchanged ones of another (an earlier read-only one; ids of write
 * transactions only grow, and a read-only one carries the id of the last
 * commit it sees) are forgotten; changed ones stay with their write
 * transaction, and txn (a read-only one beside it) reads the table.
 */
static bool pk__mine(pk_store_t *st, MDB_txn *txn)
{
    if (st->st_sales_n == 0 || st->st_sales_txn == mdb_txn_id(txn))
        return true;
    for (unsigned i = 0; i < st->st_sales_n; i++) {
        if (st->st_sales[i].sl_dirty)
            return false;
    }
    st->st_sales_n = 0;
    return true;
}

/* The slot holding sale id for txn, or NULL. */
static pk_store_sale_slot_t *pk__held(pk_store_t *st, MDB_txn *txn, uint64_t id)
{
    if (!pk__mine(st, txn))
        return NULL;
    for (unsigned i = 0; i < st->st_sales_n; i++) {
        if (st->st_sales[i].sl_sale.s_id == id)
            return &st->st_sales[i];
    }
    return NULL;
}

/* A slot for a sale not held yet: a free one, else one held unchanged;
 * NULL when every slot holds a changed sale or the slots serve another
 * transaction. */
static pk_store_sale_slot_t *pk__hold(pk_store_t *st, MDB_txn *txn)
{
    if (!pk__mine(st, txn))
        return NULL;
    if (st->st_sales_n == 0)
        st->st_sales_txn = mdb_txn_id(txn);
    if (st->st_sales_n < PK_STORE_SALES_HELD)
        return &st->st_sales[st->st_sales_n++];
    for (unsigned i = 0; i < st->st_sales_n; i++) {
        if (!st->st_sales[i].sl_dirty)
            return &st->st_sales[i];
    }
    return NULL;
}

static int pk__sale_put(pk_store_t *st, MDB_txn *txn, const pk_sale_t *s)
{
    pk_buf_t rec = {0};
    int rc = pk_sale_encode(s, &rec);
    if (rc == 0)
        rc = pk_store_put_id(st, txn, PK_TBL_SALES, s->s_id, rec.b_data, rec.b_len);
    pk_buf_free(&rec);
    return rc == 0 ? 0 : PK_ESTORE;
}

int pk_sales_read(pk_store_t *st, MDB_txn *txn, uint64_t id, pk_sale_t *s)
{
    MDB_val v;
    pk_store_sale_slot_t *slot = pk__held(st, txn, id);
    if (slot != NULL) {
        *s = slot->sl_sale;
        return 0;
    }
    int rc = pk_store_get_id(st, txn, PK_TBL_SALES, id, &v);
    if (rc != 0)
        return rc;
    if (pk_sale_decode(v.mv_data, v.mv_size, s) != 0 || s->s_id != id) {
        pk_log_error("shard=%u sale %llu: corrupt record", st->st_shard, (unsigned long long)id);
        return PK_ESTORE;
    }
    if ((slot = pk__hold(st, txn)) != NULL) {
        slot->sl_sale = *s;
        slot->sl_dirty = false;
    }
    return 0;
}

int pk_sales_write(pk_store_t *st, MDB_txn *txn, const pk_sale_t *s, const char *type, int64_t now_ms)
{
    assert(pk_sale_units_balanced(s) && s->s_remaining >= 0 && s->s_live >= 0);
    pk_buf_t json = {0};
    pk_out_t o;
    int rc = 0;
    pk_store_sale_slot_t *slot = pk__held(st, txn, s->s_id);
    if (slot == NULL)
        slot = pk__hold(st, txn);
    if (slot != NULL) {
        slot->sl_sale = *s;
        slot->sl_dirty = true;
    } else {
        rc = pk__sale_put(st, txn, s); /* every slot holds a changed sale */
    }
    /* The event now, in its place among the transaction's events. */
    if (rc == 0 && type != NULL) {
        pk_out_init(&o, PK_FMT_JSON);
        pk_sale_render(s, now_ms, &o);
        rc = pk_out_finish(&o, &json);
        if (rc == 0)
            rc = pk_store_outbox_append(st, txn, type, s->s_id, now_ms, PK_EVENT_JSON, json.b_data, json.b_len);
    }
    pk_buf_free(&json);
    return rc == 0 ? 0 : PK_ESTORE;
}

int pk_store_sales_flush(pk_store_t *st, MDB_txn *txn)
{
    int rc = 0;
    if (!pk__mine(st, txn))
        return 0; /* a read-only transaction beside the writer: nothing of its own */
    for (unsigned i = 0; i < st->st_sales_n && rc == 0; i++) {
        if (st->st_sales[i].sl_dirty)
            rc = pk__sale_put(st, txn, &st->st_sales[i].sl_sale);
    }
    st->st_sales_n = 0;
    return rc;
}

void pk_store_sales_drop(pk_store_t *st)
{
    st->st_sales_n = 0;
}

static void pk__end_key(const pk_sale_t *s, uint8_t key[16])
{
    pk_store_key_u64((uint64_t)s->s_ends_ms, key);
    pk_store_key_u64(s->s_id, key + 8);
}

static void pk__render(pk_msg_t *msg, const pk_sale_t *s, int status)
{
    pk_out_t o;
    pk_out_init(&o, msg->m_fmt);
    pk_sale_render(s, msg->m_now_ms, &o);
    pk_msg_reply(msg, &o, status);
}

static int pk__create_apply(pk_actor_t *owner, MDB_txn *txn, pk_msg_t *msg)
{
    pk_store_t *st = &owner->a_store;
    pk_sale_t *s = &msg->u.sale.ms_sale;
    pk_product_t p;
    int rc = pk_products_read(st, txn, s->s_product_id, &p);
    if (rc == PK_ENOTFOUND) {
        pk_msg_error(msg, 404, "product_not_found", "no product with that id");
        return 0;
    }
    if (rc != 0)
        return rc;
    if (msg->m_subject_role != PK_ROLE_ADMIN && p.p_seller_id != msg->m_subject) {
        pk_msg_error(msg, 403, "forbidden", "only the product's seller or an admin can put it on sale");
        return 0;
    }
    if (p.p_stock < s->s_quantity) {
        pk_msg_error(msg, 409, "insufficient_stock", "the product has fewer units in stock than the sale's quantity");
        return 0;
    }
    /* Checked; from here on only writes. */
    p.p_stock -= s->s_quantity;
    p.p_sale_units += s->s_quantity;
    p.p_updated_ms = msg->m_now_ms;
    s->s_id = pk_store_next_id(st, PK_SEQ_SALE);
    s->s_seller_id = p.p_seller_id;
    s->s_remaining = s->s_quantity;
    s->s_live = 0;
    s->s_returned = 0;
    s->s_created_ms = msg->m_now_ms;
    s->s_settled = false;
    uint8_t key[16];
    pk__end_key(s, key);
    MDB_val k = {sizeof(key), key}, v = {0, ""};
    if ((rc = pk_products_write(st, txn, &p, "stock.adjusted", msg->m_now_ms)) != 0 ||
        (rc = pk_sales_write(st, txn, s, "sale.created", msg->m_now_ms)) != 0)
        return rc;
    if (mdb_put(txn, st->st_dbi[PK_TBL_SALE_ENDS], &k, &v, 0) != 0)
        return PK_ESTORE;
    if (s->s_ends_ms < owner->a_next_due_ms)
        owner->a_next_due_ms = s->s_ends_ms;
    pk__render(msg, s, 201);
    return 0;
}

static int pk__get_apply(pk_actor_t *owner, MDB_txn *txn, pk_msg_t *msg)
{
    pk_sale_t s;
    int rc = pk_sales_read(&owner->a_store, txn, msg->u.sale.ms_sale.s_id, &s);
    if (rc == PK_ENOTFOUND) {
        pk_msg_error(msg, 404, "not_found", "no sale with that id");
        return 0;
    }
    if (rc != 0)
        return rc;
    pk__render(msg, &s, 200);
    return 0;
}

static int pk__list_render(const MDB_val *val, pk_msg_t *msg, pk_out_t *o)
{
    pk_sale_t s;
    if (pk_sale_decode(val->mv_data, val->mv_size, &s) != 0)
        return PK_ESTORE;
    if (msg->u.list.ml_filter >= 0 && (int)pk_sale_state(&s, msg->m_now_ms) != msg->u.list.ml_filter)
        return 0;
    pk_sale_render(&s, msg->m_now_ms, o);
    return 1;
}

static int pk__list_apply(pk_actor_t *owner, MDB_txn *txn, pk_msg_t *msg)
{
    /* The cursor reads the table: sales this batch changed go in first. */
    int rc = pk_store_sales_flush(&owner->a_store, txn);
    return rc != 0 ? rc : pk_store_list_page(&owner->a_store, txn, PK_TBL_SALES, msg, pk__list_render);
}

/* Gives a finished sale's unsold units back to its product, once. */
static int pk__settle(pk_store_t *st, MDB_txn *txn, uint64_t sale_id, int64_t now_ms)
{
    pk_sale_t s;
    pk_product_t p;
    int rc = pk_sales_read(st, txn, sale_id, &s);
    if (rc != 0)
        return rc == PK_ENOTFOUND ? PK_ESTORE : rc; /* index points nowhere */
    if (s.s_settled)
        return 0;
    if ((rc = pk_products_read(st, txn, s.s_product_id, &p)) != 0)
        return PK_ESTORE;
    /* Unsold units go back to stock; units in live orders stay with their
     * orders, now counted by the product instead of the sale. */
    p.p_stock += s.s_remaining;
    p.p_sale_units -= s.s_remaining + s.s_live;
    p.p_order_units += s.s_live;
    p.p_updated_ms = now_ms;
    if ((rc = pk_products_write(st, txn, &p, s.s_remaining > 0 ? "stock.adjusted" : NULL, now_ms)) != 0)
        return rc;
    s.s_returned += s.s_remaining;
    s.s_remaining = 0;
    s.s_settled = true;
    pk_soldout_clear(&pk_actor_of_store(st)->a_soldout, s.s_id);
    return pk_sales_write(st, txn, &s, "sale.ended", now_ms);
}

/* Settles sales whose end passed (bounded per call). */
static int pk__sales_maintain(pk_actor_t *a, MDB_txn *txn, int64_t now_ms, int64_t *next_due_ms)
{
    pk_store_t *st = &a->a_store;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, done = 0;
    *next_due_ms = INT64_MAX;
    if (mdb_cursor_open(txn, st->st_dbi[PK_TBL_SALE_ENDS], &cur) != 0)
        return PK_ESTORE;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size != 16) {
            rc = PK_ESTORE;
            break;
        }
        MDB_val hi = {8, k.mv_data}, lo = {8, (uint8_t *)k.mv_data + 8};
        int64_t ends = (int64_t)pk_store_u64_of_key(&hi);
        if (ends > now_ms || done == PK__SETTLE_PER_SWEEP) {
            *next_due_ms = done == PK__SETTLE_PER_SWEEP ? now_ms : ends;
            rc = MDB_NOTFOUND;
            break;
        }
        if ((rc = pk__settle(st, txn, pk_store_u64_of_key(&lo), now_ms)) != 0)
            break;
        if (mdb_cursor_del(cur, 0) != 0) {
            rc = PK_ESTORE;
            break;
        }
        done++;
        rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (rc == EINVAL || rc == MDB_NOTFOUND) /* deleted the last entry */
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (done > 0)
        pk_log_info("shard=%u settled %d ended sales", st->st_shard, done);
    return rc == MDB_NOTFOUND ? 0 : (rc < 0 ? rc : PK_ESTORE);
}

int pk_shard_maintain(pk_actor_t *a, MDB_txn *txn, int64_t now_ms, int64_t *next_due_ms, pk_msg_maint_t *rel)
{
    int64_t sales_next, orders_next, idem_next, buyers_next;
    pk_msg_maint_t unused;
    if (rel == NULL) {
        rel = &unused;
    }
    rel->mm_count = 0;
    int rc = pk__sales_maintain(a, txn, now_ms, &sales_next);
    if (rc == 0)
        rc = pk_orders_maintain(a, txn, now_ms, &orders_next, rel);
    if (rc == 0)
        rc = pk_idem_maintain(a, txn, now_ms, &idem_next);
    if (rc == 0)
        rc = pk_buyers_maintain(&a->a_store, &a->a_buyers, txn, now_ms, &buyers_next);
    if (rc == 0) {
        int64_t next = sales_next < orders_next ? sales_next : orders_next;
        next = idem_next < next ? idem_next : next;
        *next_due_ms = buyers_next < next ? buyers_next : next;
    }
    return rc;
}

static int pk__maintain_apply(pk_actor_t *owner, MDB_txn *txn, pk_msg_t *msg)
{
    int64_t next;
    int rc = pk_shard_maintain(owner, txn, msg->m_now_ms, &next, &msg->u.maint);
    if (rc != 0)
        return rc;
    owner->a_next_due_ms = next;
    msg->m_status = 200;
    return 0;
}

const pk_op_t pk_op_sale_create = {"sale.create", false, pk__create_apply};
const pk_op_t pk_op_sale_get = {"sale.get", true, pk__get_apply};
const pk_op_t pk_op_sale_list = {"sale.list", true, pk__list_apply};
const pk_op_t pk_op_shard_maintain = {"shard.maintain", false, pk__maintain_apply};
