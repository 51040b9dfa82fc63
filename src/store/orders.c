/* Orders on their home shard: placement, reads, pay, cancel, expiry. */
#include <assert.h>
#include <string.h>

#include "pickple/log.h"
#include "pickple/notification.h"
#include "pickple/orders.h"
#include "pickple/payment.h"
#include "pickple/products.h"
#include "pickple/sales.h"

#define PK__EXPIRE_PER_SWEEP 256

int pk_orders_read(pk_store_t *st, MDB_txn *txn, uint64_t id, pk_order_t *o)
{
    MDB_val v;
    int rc = pk_store_get_id(st, txn, PK_TBL_ORDERS, id, &v);
    if (rc != 0)
        return rc;
    if (pk_order_decode(v.mv_data, v.mv_size, o) != 0 || o->o_id != id) {
        pk_log_error("shard=%u order %llu: corrupt record", st->st_shard, (unsigned long long)id);
        return PK_ESTORE;
    }
    return 0;
}

/* ---- events and records ---- */

typedef void (*pk__render_fn)(const pk_order_t *o, pk_out_t *out);

/* Appends event type of o: the record of o, rendered as kind by the
 * publisher (rec: o already encoded, or NULL). */
static int pk__event_of(pk_store_t *st, MDB_txn *txn, const pk_order_t *o, const pk_buf_t *rec, pk_event_body_t kind,
                        const char *type, uint64_t key, int64_t now_ms)
{
    pk_buf_t own = {0};
    int rc = 0;
    if (rec == NULL) {
        rc = pk_order_encode(o, &own);
        rec = &own;
    }
    if (rc == 0)
        rc = pk_store_outbox_append(st, txn, type, key, now_ms, kind, rec->b_data, rec->b_len);
    pk_buf_free(&own);
    return rc == 0 ? 0 : PK_ESTORE;
}

static int pk__event(pk_store_t *st, MDB_txn *txn, const pk_order_t *o, pk_event_body_t kind, const char *type,
                     uint64_t key, int64_t now_ms)
{
    return pk__event_of(st, txn, o, NULL, kind, type, key, now_ms);
}

/* Writes o (and its event of type, unless NULL, from the same record). */
static int pk__order_put(pk_store_t *st, MDB_txn *txn, const pk_order_t *o, const char *type, int64_t now_ms,
                         bool is_new)
{
    pk_buf_t rec = {0};
    int rc = pk_order_encode(o, &rec);
    if (rc == 0)
        rc = (is_new ? pk_store_append_id : pk_store_put_id)(st, txn, PK_TBL_ORDERS, o->o_id, rec.b_data, rec.b_len);
    if (rc == 0 && type != NULL)
        rc = pk__event_of(st, txn, o, &rec, PK_EVENT_ORDER, type, o->o_id, now_ms);
    pk_buf_free(&rec);
    return rc == 0 ? 0 : PK_ESTORE;
}

static int pk__order_write(pk_store_t *st, MDB_txn *txn, const pk_order_t *o, const char *type, int64_t now_ms)
{
    return pk__order_put(st, txn, o, type, now_ms, false);
}

static int pk__due_put(pk_store_t *st, MDB_txn *txn, int64_t at_ms, uint64_t order_id)
{
    return pk_store_append_pair(st, txn, PK_TBL_ORDER_DUE, (uint64_t)at_ms, order_id, "", 0);
}

static int pk__note(pk_store_t *st, MDB_txn *txn, const pk_order_t *o, pk_note_kind_t kind, int64_t now_ms)
{
    pk_note_t n;
    pk_buf_t rec = {0}, json = {0};
    pk_out_t out;
    pk_note_compose(&n, kind, o, now_ms);
    n.n_id = pk_store_next_id(st, PK_SEQ_NOTIFICATION);
    int rc = pk_note_encode(&n, &rec);
    if (rc == 0)
        rc = pk_store_put_id(st, txn, PK_TBL_NOTIFICATIONS, n.n_id, rec.b_data, rec.b_len);
    if (rc == 0)
        rc = pk_store_put_pair(st, txn, PK_TBL_USER_NOTIFS, n.n_user_id, n.n_id, "", 0);
    if (rc == 0) {
        pk_out_init(&out, PK_FMT_JSON);
        pk_note_render(&n, &out);
        rc = pk_out_finish(&out, &json);
    }
    if (rc == 0)
        rc = pk_store_outbox_append(st, txn, "notification.created", n.n_id, now_ms, PK_EVENT_JSON, json.b_data,
                                    json.b_len);
    pk_buf_free(&rec);
    pk_buf_free(&json);
    return rc == 0 ? 0 : PK_ESTORE;
}

static void pk__reply(pk_msg_t *msg, const pk_order_t *o, pk__render_fn render, int status)
{
    pk_out_t out;
    pk_out_init(&out, msg->m_fmt);
    render(o, &out);
    pk_msg_reply(msg, &out, status);
}

/*
 * Per-user order index: listing a user's orders needs them by user, but a
 * B-tree keyed (user, order) takes one random leaf per order.  So an order
 * whose id was drawn in the transaction that places it (sale orders,
 * one-shard catalog orders: ids rise in placement order) joins its user's
 * chain instead: o_prev_id points to the user's previous chained order and
 * the buyer's row (include/pickple/buyers.h) holds the newest one and the
 * count.  Every PK__CHAIN_STRIDE-th chained order is also a checkpoint
 * ("c") in PK_TBL_USER_ORDERS, so a page walk finds where to start with a
 * B-tree seek and walks at most PK__CHAIN_STRIDE records per segment.
 * Orders placed by a later confirmation (cross-shard catalog orders, ids
 * drawn earlier) stay standalone entries ("").
 *
 * Each checkpoint is a random leaf in the group commit, so they are sparse:
 * one per 64 orders (16 before; the walk takes segments of any length up
 * to the stride, so chains written with either read alike).
 */
#define PK__CHAIN_STRIDE 64

static pk_buyers_t *pk__buyers(pk_store_t *st)
{
    return &pk_actor_of_store(st)->a_buyers;
}

static int pk__buyer_read(pk_store_t *st, MDB_txn *txn, uint64_t user, pk_buyer_t *b)
{
    return pk_buyer_read(st, pk__buyers(st), txn, user, b);
}

/* Saves b: pending (through: stored in this transaction). */
static int pk__buyer_save(pk_store_t *st, MDB_txn *txn, pk_buyer_t *b, bool through, int64_t now_ms)
{
    return pk_buyer_save(st, pk__buyers(st), txn, b, through, now_ms, &pk_actor_of_store(st)->a_next_due_ms);
}

/* Indexes o for its user: chained (b: the buyer's row, read when NULL,
 * written here) or a standalone entry. */
static int pk__user_index(pk_store_t *st, MDB_txn *txn, pk_order_t *o, bool chain, pk_buyer_t *b, int64_t now_ms)
{
    pk_buyer_t own;
    int rc;
    if (!chain)
        return pk_store_put_pair(st, txn, PK_TBL_USER_ORDERS, o->o_user_id, o->o_id, "", 0);
    if (b == NULL) {
        if ((rc = pk__buyer_read(st, txn, o->o_user_id, &own)) != 0)
            return rc;
        b = &own;
    }
    assert(b->b_user == o->o_user_id && b->b_last < o->o_id);
    o->o_prev_id = b->b_last;
    b->b_last = o->o_id;
    b->b_count++;
    b->b_changed = true;
    if ((rc = pk__buyer_save(st, txn, b, false, now_ms)) != 0)
        return rc;
    if (b->b_count % PK__CHAIN_STRIDE == 0)
        rc = pk_store_put_pair(st, txn, PK_TBL_USER_ORDERS, o->o_user_id, o->o_id, "c", 1);
    return rc;
}

/* ---- units coming back ---- */

static int pk__sale_release(pk_actor_t *a, MDB_txn *txn, const pk_order_t *o, int64_t now_ms)
{
    pk_store_t *st = &a->a_store;
    pk_sale_t s;
    int64_t q = o->o_items[0].oi_quantity, held = 0;
    if (pk_sales_read(st, txn, o->o_sale_id, &s) != 0)
        return PK_ESTORE; /* sales are never deleted */
    assert(s.s_live >= q);
    s.s_live -= q;
    if (!s.s_settled) {
        s.s_remaining += q; /* back to the sale, which may be live again */
        pk_soldout_clear(&a->a_soldout, s.s_id);
    } else {
        /* The sale is over: the units go back to the product's stock. */
        pk_product_t p;
        if (pk_products_read(st, txn, s.s_product_id, &p) != 0)
            return PK_ESTORE;
        s.s_returned += q;
        p.p_stock += q;
        p.p_order_units -= q;
        p.p_updated_ms = now_ms;
        if (pk_products_write(st, txn, &p, "stock.adjusted", now_ms) != 0)
            return PK_ESTORE;
    }
    if (pk_sales_write(st, txn, &s, NULL, now_ms) != 0)
        return PK_ESTORE;
    pk_buyer_t b;
    int rc = pk__buyer_read(st, txn, o->o_user_id, &b);
    if (rc == 0)
        rc = pk_buyer_held(st, txn, &b, o->o_sale_id, &held);
    if (rc != 0)
        return rc;
    assert(held >= q);
    if ((rc = pk_buyer_set_held(st, txn, &b, o->o_sale_id, held - q)) != 0)
        return rc;
    /* Through: a replay of the orders above the watermark relies on every
     * release being stored with its order (include/pickple/buyers.h). */
    return pk__buyer_save(st, txn, &b, true, now_ms);
}

/* Returns an order's units: called exactly once, when the order leaves a
 * status that holds units. */
static int pk__release_units(pk_actor_t *a, MDB_txn *txn, const pk_order_t *o, int64_t now_ms)
{
    pk_store_t *st = &a->a_store;
    if (o->o_sale_id != 0)
        return pk__sale_release(a, txn, o, now_ms);
    uint64_t remote = 0;
    for (unsigned i = 0; i < o->o_nitems; i++) {
        unsigned shard = (unsigned)(o->o_items[i].oi_product_id % st->st_nshards);
        if (shard != st->st_shard)
            remote |= 1ull << shard;
    }
    int rc = pk_reservation_release(st, txn, o->o_id, now_ms);
    if (rc == 0 && remote != 0) {
        rc = pk_releases_add(st, txn, o->o_id, remote);
        a->a_next_due_ms = 0; /* the next tick sends them */
    }
    return rc;
}

/* ---- placement ---- */

/* Fills the new order's common fields; the id comes from this shard. */
static void pk__order_new(pk_actor_t *a, pk_msg_t *msg, pk_order_t *o, pk_order_status_t status)
{
    o->o_id = pk_store_next_id(&a->a_store, PK_SEQ_ORDER);
    o->o_user_id = msg->m_subject;
    o->o_status = (uint8_t)status;
    o->o_created_ms = msg->m_now_ms;
    o->o_updated_ms = msg->m_now_ms;
    o->o_expires_ms = msg->m_now_ms + (int64_t)a->a_rt->rt_cfg->cf_order_ttl_s * 1000;
}

/* The answer to a placement, rendered on the origin thread. */
static void pk__render_placed(const pk_msg_t *msg, pk_out_t *out)
{
    pk_order_render(&msg->u.order.mo_order, out);
}

/* The order is now pending payment: index it and announce it.  chain: its
 * id was drawn in this transaction (see the per-user order index). */
static int pk__order_placed(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg, pk_order_t *o, bool chain,
                            pk_buyer_t *b)
{
    pk_store_t *st = &a->a_store;
    int rc;
    /* A chained order's id was drawn in this transaction: the greatest yet. */
    if ((rc = pk__user_index(st, txn, o, chain, b, msg->m_now_ms)) != 0 ||
        (rc = pk__order_put(st, txn, o, "order.placed", msg->m_now_ms, chain)) != 0 ||
        (rc = pk__due_put(st, txn, o->o_expires_ms, o->o_id)) != 0)
        return rc;
    if (msg->u.order.mo_key_len == 0 && o == &msg->u.order.mo_order) {
        /* Nothing in this batch stores the answer, and the message carries
         * the order: its origin renders it before its m_done runs. */
        pk_buf_free(&msg->m_body);
        msg->m_render = pk__render_placed;
        msg->m_status = 201;
    } else {
        pk__reply(msg, o, pk_order_render, 201);
    }
    if (o->o_expires_ms < a->a_next_due_ms)
        a->a_next_due_ms = o->o_expires_ms;
    return pk_idem_record(st, txn, msg, 201);
}

/* A refusal that is part of an idempotent answer. */
static int pk__refuse(pk_store_t *st, MDB_txn *txn, pk_msg_t *msg, int status, const char *code, const char *why)
{
    pk_msg_error(msg, status, code, why);
    return pk_idem_record(st, txn, msg, status);
}

static int pk__place_sale_apply(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg)
{
    pk_store_t *st = &a->a_store;
    pk_msg_order_t *mo = &msg->u.order;
    pk_order_t *o = &mo->mo_order;
    pk_sale_t s;
    pk_buyer_t b;
    int64_t held = 0;
    int rc = pk_idem_replay(st, txn, msg);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    rc = pk_sales_read(st, txn, o->o_sale_id, &s);
    if (rc == PK_ENOTFOUND)
        return pk__refuse(st, txn, msg, 404, "sale_not_found", "no sale with that id");
    if (rc != 0)
        return rc;
    if ((rc = pk__buyer_read(st, txn, msg->m_subject, &b)) != 0 ||
        (rc = pk_buyer_held(st, txn, &b, s.s_id, &held)) != 0)
        return rc;
    switch (pk_sale_admit(&s, msg->m_now_ms, held, mo->mo_quantity)) {
    case PK_ADMIT_NOT_STARTED:
        return pk__refuse(st, txn, msg, 409, "sale_not_started", "the sale has not started yet");
    case PK_ADMIT_ENDED:
        return pk__refuse(st, txn, msg, 409, "sale_ended", "the sale has ended");
    case PK_ADMIT_SOLD_OUT:
        if (s.s_remaining == 0)
            pk_soldout_set(&a->a_soldout, s.s_id, s.s_ends_ms);
        return pk__refuse(st, txn, msg, 409, "sold_out", "not enough units left in this sale");
    case PK_ADMIT_LIMIT_EXCEEDED:
        return pk__refuse(st, txn, msg, 409, "purchase_limit_exceeded",
                          "this order would take you over the sale's per-user limit");
    case PK_ADMIT_OK:
        break;
    }
    /* Checked; from here on only writes. */
    pk__order_new(a, msg, o, PK_ORDER_PENDING_PAYMENT);
    o->o_nitems = 1;
    o->o_items[0].oi_product_id = s.s_product_id;
    o->o_items[0].oi_seller_id = s.s_seller_id;
    o->o_items[0].oi_quantity = mo->mo_quantity;
    o->o_items[0].oi_unit_price = s.s_price;
    if (pk_order_total(o->o_items, 1, &o->o_total) != 0)
        return pk__refuse(st, txn, msg, 400, "invalid_request", "quantity: the order total is too large");
    s.s_remaining -= mo->mo_quantity;
    s.s_live += mo->mo_quantity;
    held += mo->mo_quantity;
    assert(held <= s.s_per_user_limit);
    /* The row is written once, with the chain, by pk__order_placed. */
    if ((rc = pk_sales_write(st, txn, &s, s.s_remaining == 0 ? "sale.sold_out" : NULL, msg->m_now_ms)) != 0 ||
        (rc = pk_buyer_set_held(st, txn, &b, s.s_id, held)) != 0)
        return rc;
    if (s.s_remaining == 0)
        pk_soldout_set(&a->a_soldout, s.s_id, s.s_ends_ms);
    return pk__order_placed(a, txn, msg, o, true, &b);
}

static int pk__total_or_refuse(pk_store_t *st, MDB_txn *txn, pk_msg_t *msg, pk_order_t *o)
{
    if (pk_order_total(o->o_items, o->o_nitems, &o->o_total) == 0)
        return 0;
    return pk__refuse(st, txn, msg, 400, "invalid_request", "items: the order total is too large") == 0 ? 1
                                                                                                         : PK_ESTORE;
}

static int pk__place_apply(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg)
{
    pk_store_t *st = &a->a_store;
    pk_order_t *o = &msg->u.order.mo_order;
    int rc = pk_idem_replay(st, txn, msg);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    /* Prices first (a read), so an order over the total limit reserves nothing. */
    for (unsigned i = 0; i < o->o_nitems; i++) {
        pk_product_t p;
        rc = pk_products_read(st, txn, o->o_items[i].oi_product_id, &p);
        if (rc == PK_ENOTFOUND)
            return pk__refuse(st, txn, msg, 404, "product_not_found", "an item names a product that does not exist");
        if (rc != 0)
            return rc;
        o->o_items[i].oi_unit_price = p.p_price;
    }
    if ((rc = pk__total_or_refuse(st, txn, msg, o)) != 0)
        return rc < 0 ? rc : 0;
    pk__order_new(a, msg, o, PK_ORDER_PENDING_PAYMENT);
    rc = pk_reservation_make(st, txn, o->o_id, o->o_items, o->o_nitems, msg->m_now_ms, msg);
    if (rc != 0)
        return rc < 0 ? rc : pk_idem_record(st, txn, msg, msg->m_status);
    return pk__order_placed(a, txn, msg, o, true, NULL);
}

static int pk__begin_apply(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg)
{
    pk_store_t *st = &a->a_store;
    pk_order_t *o = &msg->u.order.mo_order;
    pk_order_item_t local[PK_ORDER_ITEMS_MAX];
    unsigned nlocal = 0;
    int rc = pk_idem_replay(st, txn, msg);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    for (unsigned i = 0; i < o->o_nitems; i++)
        if (o->o_items[i].oi_product_id % st->st_nshards == st->st_shard)
            local[nlocal++] = o->o_items[i];
    pk__order_new(a, msg, o, PK_ORDER_PLACING);
    rc = pk_reservation_make(st, txn, o->o_id, local, nlocal, msg->m_now_ms, msg);
    if (rc != 0) /* refused: nothing was written, the id is simply unused */
        return rc < 0 ? rc : pk_idem_record(st, txn, msg, msg->m_status);
    /* Keep the local prices; the other items get theirs from their shards. */
    for (unsigned i = 0, j = 0; i < o->o_nitems; i++)
        if (o->o_items[i].oi_product_id % st->st_nshards == st->st_shard)
            o->o_items[i] = local[j++];
    o->o_total = 0;
    if ((rc = pk__order_write(st, txn, o, NULL, msg->m_now_ms)) != 0 ||
        (rc = pk__due_put(st, txn, msg->m_now_ms + PK_ORDER_PLACING_TIMEOUT_MS, o->o_id)) != 0)
        return rc;
    if (msg->m_now_ms + PK_ORDER_PLACING_TIMEOUT_MS < a->a_next_due_ms)
        a->a_next_due_ms = msg->m_now_ms + PK_ORDER_PLACING_TIMEOUT_MS;
    msg->u.order.mo_id = o->o_id;
    msg->m_status = 200;
    return pk_idem_record(st, txn, msg, 0); /* "placing": retries wait */
}

static int pk__reserve_apply(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg)
{
    pk_order_t *o = &msg->u.order.mo_order;
    int rc = pk_reservation_make(&a->a_store, txn, o->o_id, o->o_items, o->o_nitems, msg->m_now_ms, msg);
    if (rc < 0)
        return rc;
    if (rc == 0)
        msg->m_status = 200;
    return 0;
}

/* Fails a placing order: drops it and releases every reservation (on the
 * other shards too: their release is idempotent, also where nothing was
 * reserved). */
static int pk__fail_placing(pk_actor_t *a, MDB_txn *txn, pk_order_t *o, int64_t now_ms)
{
    int rc = pk__release_units(a, txn, o, now_ms);
    if (rc != 0)
        return rc;
    return pk_store_del_id(&a->a_store, txn, PK_TBL_ORDERS, o->o_id);
}

static int pk__confirm_apply(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg)
{
    pk_store_t *st = &a->a_store;
    pk_msg_order_t *mo = &msg->u.order;
    pk_order_t o;
    int rc = pk_orders_read(st, txn, mo->mo_id, &o);
    if (rc == PK_ENOTFOUND || (rc == 0 && o.o_status != PK_ORDER_PLACING)) {
        /* Timed out and failed meanwhile (or a repeated confirm). */
        pk_msg_error(msg, 503, "unavailable", "the order took too long to place and was dropped; retry");
        return rc == PK_ENOTFOUND ? 0 : rc;
    }
    if (rc != 0)
        return rc;
    int64_t total;
    if (mo->mo_ok && pk_order_total(mo->mo_order.o_items, mo->mo_order.o_nitems, &total) != 0) {
        mo->mo_ok = false;
        mo->mo_refusal_status = 400;
        mo->mo_refusal_code = "invalid_request";
        mo->mo_refusal_message = "items: the order total is too large";
    }
    if (!mo->mo_ok) {
        /* The request's items name every shard involved, also those whose
         * answer never came: release on all of them. */
        o.o_nitems = mo->mo_order.o_nitems;
        memcpy(o.o_items, mo->mo_order.o_items, sizeof(o.o_items[0]) * o.o_nitems);
        if ((rc = pk__fail_placing(a, txn, &o, msg->m_now_ms)) != 0 ||
            (rc = pk_store_del_pair(st, txn, PK_TBL_ORDER_DUE, (uint64_t)(o.o_created_ms + PK_ORDER_PLACING_TIMEOUT_MS),
                                    o.o_id)) != 0)
            return rc;
        return pk__refuse(st, txn, msg, mo->mo_refusal_status, mo->mo_refusal_code, mo->mo_refusal_message);
    }
    o.o_nitems = mo->mo_order.o_nitems;
    memcpy(o.o_items, mo->mo_order.o_items, sizeof(o.o_items[0]) * o.o_nitems);
    o.o_total = total;
    o.o_status = (uint8_t)pk_order_step(PK_ORDER_PLACING, PK_OEV_CONFIRM);
    if ((rc = pk_store_del_pair(st, txn, PK_TBL_ORDER_DUE, (uint64_t)(o.o_created_ms + PK_ORDER_PLACING_TIMEOUT_MS),
                                o.o_id)) != 0)
        return rc;
    mo->mo_order = o;
    return pk__order_placed(a, txn, msg, &mo->mo_order, false, NULL);
}

/* ---- reads ---- */

/* Reads the order a message addresses, visible to its subject: owner or
 * admin (sellers too when sellers_too).  Answers 404 otherwise. */
static int pk__order_for(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg, bool sellers_too, pk_order_t *o)
{
    int rc = pk_orders_read(&a->a_store, txn, msg->u.order.mo_id, o);
    if (rc == PK_ENOTFOUND || (rc == 0 && (!pk_order_visible(o) ||
                                           (o->o_user_id != msg->m_subject && msg->m_subject_role != PK_ROLE_ADMIN &&
                                            !(sellers_too && pk_order_has_seller(o, msg->m_subject)))))) {
        pk_msg_error(msg, 404, "not_found", "no order with that id");
        return 1;
    }
    return rc;
}

static int pk__get_apply(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg)
{
    pk_order_t *o = &msg->u.order.mo_order;
    int rc = pk__order_for(a, txn, msg, false, o);
    if (rc == 0)
        pk__reply(msg, o, pk_order_render, 200);
    return rc < 0 ? rc : 0;
}

static int pk__delivery_get_apply(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg)
{
    pk_order_t *o = &msg->u.order.mo_order;
    int rc = pk__order_for(a, txn, msg, true, o);
    if (rc == 0 && o->o_delivery.de_id == 0) {
        pk_msg_error(msg, 404, "not_found", "the order has no delivery yet (it is created when the order is paid)");
        return 0;
    }
    if (rc == 0)
        pk__reply(msg, o, pk_delivery_render, 200);
    return rc < 0 ? rc : 0;
}

static int pk__list_render(const MDB_val *val, pk_msg_t *msg, pk_out_t *out)
{
    pk_order_t ord;
    if (pk_order_decode(val->mv_data, val->mv_size, &ord) != 0)
        return PK_ESTORE;
    if (!pk_order_visible(&ord) || (msg->u.list.ml_filter >= 0 && ord.o_status != msg->u.list.ml_filter))
        return 0;
    pk_order_render(&ord, out);
    return 1;
}

/*
 * A user's orders above a cursor, ascending: the merge of two streams, both
 * read from PK_TBL_USER_ORDERS at (user, after + 1) on.  Standalone entries
 * come as they are.  The chain comes a segment at a time: the next
 * checkpoint (or, after the last one, the user's newest chained order) is
 * walked back through o_prev_id to the previous segment's end, at most
 * PK__CHAIN_STRIDE records, and served oldest first.
 */
typedef struct pk__user_walk {
    pk_store_t *uw_st;
    MDB_txn *uw_txn;
    uint64_t uw_user;
    MDB_cursor *uw_solo, *uw_marks; /* standalone entries; checkpoints */
    bool uw_solo_done, uw_marks_done, uw_tail_done;
    uint64_t uw_lower; /* chained ids up to here were served */
    uint64_t uw_seg[PK__CHAIN_STRIDE];
    MDB_val uw_seg_val[PK__CHAIN_STRIDE];
    unsigned uw_seg_n, uw_seg_pos; /* uw_seg[pos..n) are due, ascending */
} pk__user_walk_t;

/* Moves c to the next entry of the user from where it stands (first: a
 * range seek at `from`) whose value is (checkpoints) or is not ("")
 * a checkpoint.  0 with *id, 1 at the end, < 0 on failure. */
static int pk__user_entry(pk__user_walk_t *w, MDB_cursor *c, bool first, uint64_t from, bool marks, uint64_t *id)
{
    uint8_t kb[16];
    MDB_val k = {16, kb}, v;
    int rc;
    if (first) {
        pk_store_key_u64(w->uw_user, kb);
        pk_store_key_u64(from, kb + 8);
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    } else {
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        MDB_val hi = {8, k.mv_data}, lo = {8, (uint8_t *)k.mv_data + 8};
        if (k.mv_size != 16 || v.mv_size > 1)
            return PK_ESTORE;
        if (pk_store_u64_of_key(&hi) != w->uw_user)
            return 1;
        if ((v.mv_size == 1) == marks) {
            *id = pk_store_u64_of_key(&lo);
            return 0;
        }
    }
    return rc == MDB_NOTFOUND ? 1 : PK_ESTORE;
}

/* Loads the next chain segment.  0 loaded, 1 the chain is exhausted. */
static int pk__user_segment(pk__user_walk_t *w, bool first)
{
    uint64_t end = 0;
    int rc = 1;
    if (!w->uw_marks_done) {
        rc = pk__user_entry(w, w->uw_marks, first, w->uw_lower + 1, true, &end);
        if (rc < 0)
            return rc;
        w->uw_marks_done = rc == 1;
    }
    if (rc == 1) {
        if (w->uw_tail_done)
            return 1;
        w->uw_tail_done = true;
        pk_buyer_t b;
        if ((rc = pk__buyer_read(w->uw_st, w->uw_txn, w->uw_user, &b)) != 0)
            return rc;
        end = b.b_last;
        if (end <= w->uw_lower)
            return 1;
    }
    /* end..lower backwards, stored from the array's end. */
    unsigned n = 0;
    for (uint64_t id = end; id > w->uw_lower && id != 0;) {
        MDB_val v;
        pk_order_t o;
        if (n == PK__CHAIN_STRIDE || pk_store_get_id(w->uw_st, w->uw_txn, PK_TBL_ORDERS, id, &v) != 0 ||
            pk_order_decode(v.mv_data, v.mv_size, &o) != 0 || o.o_user_id != w->uw_user)
            return PK_ESTORE; /* a chain longer than a stride, or pointing nowhere */
        n++;
        w->uw_seg[PK__CHAIN_STRIDE - n] = id;
        w->uw_seg_val[PK__CHAIN_STRIDE - n] = v;
        id = o.o_prev_id;
    }
    /* end > lower (a checkpoint seek past it, or the tail checked above). */
    assert(n > 0);
    w->uw_seg_pos = PK__CHAIN_STRIDE - n;
    w->uw_seg_n = PK__CHAIN_STRIDE;
    w->uw_lower = end;
    return 0;
}

static int pk__user_page(pk_store_t *st, MDB_txn *txn, pk_msg_t *msg)
{
    pk_msg_list_t *l = &msg->u.list;
    pk__user_walk_t w = {.uw_st = st, .uw_txn = txn, .uw_user = msg->m_subject, .uw_lower = l->ml_after};
    uint64_t solo = 0;
    pk_out_t out;
    int rc;
    pk_out_init(&out, msg->m_fmt);
    l->ml_count = 0;
    l->ml_offsets[0] = 0;
    if (mdb_cursor_open(txn, st->st_dbi[PK_TBL_USER_ORDERS], &w.uw_solo) != 0)
        return PK_ESTORE;
    if (mdb_cursor_open(txn, st->st_dbi[PK_TBL_USER_ORDERS], &w.uw_marks) != 0) {
        mdb_cursor_close(w.uw_solo);
        return PK_ESTORE;
    }
    rc = pk__user_entry(&w, w.uw_solo, true, l->ml_after + 1, false, &solo);
    w.uw_solo_done = rc == 1;
    if (rc >= 0) {
        rc = pk__user_segment(&w, true);
        if (rc == 1)
            w.uw_seg_pos = w.uw_seg_n = 0;
    }
    while (rc >= 0 && l->ml_count < l->ml_limit + 1) {
        bool chained = w.uw_seg_pos < w.uw_seg_n;
        if (!chained && w.uw_solo_done)
            break;
        uint64_t id;
        MDB_val v;
        if (chained && (w.uw_solo_done || w.uw_seg[w.uw_seg_pos] < solo)) {
            id = w.uw_seg[w.uw_seg_pos];
            v = w.uw_seg_val[w.uw_seg_pos++];
            if (w.uw_seg_pos == w.uw_seg_n) {
                rc = pk__user_segment(&w, false);
                if (rc == 1)
                    w.uw_seg_pos = w.uw_seg_n = 0;
            }
        } else {
            id = solo;
            if (pk_store_get_id(st, txn, PK_TBL_ORDERS, id, &v) != 0) {
                rc = PK_ESTORE; /* the index points nowhere */
                break;
            }
            rc = pk__user_entry(&w, w.uw_solo, false, 0, false, &solo);
            w.uw_solo_done = rc == 1;
        }
        if (rc < 0)
            break;
        int r = pk__list_render(&v, msg, &out);
        if (r < 0) {
            rc = r;
            break;
        }
        if (r > 0) {
            l->ml_ids[l->ml_count++] = id;
            l->ml_offsets[l->ml_count] = (uint32_t)out.o_buf.b_len;
        }
    }
    mdb_cursor_close(w.uw_solo);
    mdb_cursor_close(w.uw_marks);
    if (rc < 0) {
        pk_out_discard(&out);
        return PK_ESTORE;
    }
    if (pk_out_finish(&out, &msg->m_body) != 0)
        return PK_ESTORE;
    msg->m_status = 200;
    return 0;
}

static int pk__list_apply(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg)
{
    if (msg->m_subject_role == PK_ROLE_ADMIN)
        return pk_store_list_page(&a->a_store, txn, PK_TBL_ORDERS, msg, pk__list_render);
    return pk__user_page(&a->a_store, txn, msg);
}

/* ---- pay, cancel, expire ---- */

/* Expires a pending order whose deadline passed: units back, events. */
static int pk__expire(pk_actor_t *a, MDB_txn *txn, pk_order_t *o, int64_t now_ms)
{
    pk_store_t *st = &a->a_store;
    int rc;
    assert(pk_order_due(o, now_ms));
    o->o_status = (uint8_t)pk_order_step(o->o_status, PK_OEV_EXPIRE);
    o->o_updated_ms = now_ms;
    if ((rc = pk__release_units(a, txn, o, now_ms)) != 0 ||
        (rc = pk__order_write(st, txn, o, "order.expired", now_ms)) != 0 ||
        (rc = pk_store_del_pair(st, txn, PK_TBL_ORDER_DUE, (uint64_t)o->o_expires_ms, o->o_id)) != 0)
        return rc;
    return pk__note(st, txn, o, PK_NOTE_ORDER_EXPIRED, now_ms);
}

static int pk__pay_apply(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg)
{
    pk_store_t *st = &a->a_store;
    pk_msg_order_t *mo = &msg->u.order;
    pk_order_t *o = &mo->mo_order;
    const pk_pay_provider_t *provider = &pk_pay_simulated;
    int rc = pk_orders_read(st, txn, mo->mo_id, o);
    if (rc == PK_ENOTFOUND || (rc == 0 && (!pk_order_visible(o) || o->o_user_id != msg->m_subject))) {
        pk_msg_error(msg, 404, "not_found", "no order with that id");
        return 0;
    }
    if (rc != 0)
        return rc;
    switch (pk_order_pay_check(o, mo->mo_amount, msg->m_now_ms)) {
    case PK_PAY_ALREADY_PAID:
        pk_msg_error(msg, 409, "already_paid", "the order is already paid");
        return 0;
    case PK_PAY_EXPIRED:
        /* Past its deadline: expire it now rather than wait for the sweep. */
        if (pk_order_due(o, msg->m_now_ms) && (rc = pk__expire(a, txn, o, msg->m_now_ms)) != 0)
            return rc;
        pk_msg_error(msg, 409, "order_expired", "the order's payment deadline has passed");
        return 0;
    case PK_PAY_CANCELLED:
        pk_msg_error(msg, 409, "order_cancelled", "the order was cancelled");
        return 0;
    case PK_PAY_AMOUNT_MISMATCH:
        pk_msg_error(msg, 422, "amount_mismatch", "amount must equal the order's total");
        return 0;
    case PK_PAY_NOT_PAYABLE:
        pk_msg_error(msg, 404, "not_found", "no order with that id");
        return 0;
    case PK_PAY_OK:
        break;
    }
    o->o_payment.pa_id = pk_store_next_id(st, PK_SEQ_PAYMENT);
    o->o_payment.pa_amount = mo->mo_amount;
    o->o_payment.pa_method = mo->mo_method;
    if (provider->pp_charge(o->o_id, mo->mo_amount, (pk_pay_method_t)mo->mo_method) != PK_PAY_APPROVED) {
        /* The attempt is recorded as an event; the order stays unpaid. */
        if ((rc = pk__event(st, txn, o, PK_EVENT_PAYMENT_FAILED, "payment.failed", o->o_payment.pa_id,
                            msg->m_now_ms)) != 0)
            return rc;
        pk_msg_error(msg, 402, "payment_declined", "the payment was declined");
        return 0;
    }
    o->o_payment.pa_status = PK_PAYMENT_COMPLETED;
    o->o_payment.pa_paid_ms = msg->m_now_ms;
    o->o_status = (uint8_t)pk_order_step(o->o_status, PK_OEV_PAY);
    o->o_updated_ms = msg->m_now_ms;
    o->o_delivery.de_id = pk_store_next_id(st, PK_SEQ_DELIVERY);
    o->o_delivery.de_status = PK_DELIVERY_PENDING;
    o->o_delivery.de_at_ms[PK_DELIVERY_PENDING] = msg->m_now_ms;
    uint8_t b[8];
    pk_store_key_u64(o->o_id, b);
    if ((rc = pk_store_del_pair(st, txn, PK_TBL_ORDER_DUE, (uint64_t)o->o_expires_ms, o->o_id)) != 0 ||
        (rc = pk_store_put_id(st, txn, PK_TBL_DELIVERIES, o->o_delivery.de_id, b, 8)) != 0 ||
        (rc = pk__order_write(st, txn, o, "order.paid", msg->m_now_ms)) != 0 ||
        (rc = pk__event(st, txn, o, PK_EVENT_PAYMENT, "payment.completed", o->o_payment.pa_id, msg->m_now_ms)) != 0 ||
        (rc = pk__event(st, txn, o, PK_EVENT_DELIVERY, "delivery.created", o->o_delivery.de_id, msg->m_now_ms)) != 0 ||
        (rc = pk__note(st, txn, o, PK_NOTE_ORDER_PAID, msg->m_now_ms)) != 0)
        return rc;
    pk__reply(msg, o, pk_order_render, 200);
    return 0;
}

static int pk__cancel_apply(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg)
{
    pk_store_t *st = &a->a_store;
    pk_order_t *o = &msg->u.order.mo_order;
    int rc = pk__order_for(a, txn, msg, false, o);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (pk_order_due(o, msg->m_now_ms)) {
        if ((rc = pk__expire(a, txn, o, msg->m_now_ms)) != 0)
            return rc;
        pk_msg_error(msg, 409, "not_cancellable", "the order expired: its payment deadline passed");
        return 0;
    }
    bool paid = o->o_status == PK_ORDER_PAID;
    if (pk_order_step(o->o_status, PK_OEV_CANCEL) < 0 ||
        (paid && pk_delivery_step(o->o_delivery.de_status, PK_OEV_CANCEL) < 0)) {
        pk_msg_error(msg, 409, "not_cancellable", "only unpaid orders and paid orders not yet shipped can be cancelled");
        return 0;
    }
    if (paid && pk_pay_simulated.pp_refund(o->o_payment.pa_id, o->o_payment.pa_amount) != PK_PAY_APPROVED) {
        pk_msg_error(msg, 502, "refund_failed", "the payment provider refused the refund; nothing was changed");
        return 0;
    }
    int64_t was_due = o->o_expires_ms;
    o->o_status = (uint8_t)pk_order_step(o->o_status, PK_OEV_CANCEL);
    o->o_updated_ms = msg->m_now_ms;
    if (paid) {
        o->o_payment.pa_status = PK_PAYMENT_REFUNDED;
        o->o_payment.pa_refunded_ms = msg->m_now_ms;
        o->o_delivery.de_status = PK_DELIVERY_CANCELLED;
        o->o_delivery.de_at_ms[PK_DELIVERY_CANCELLED] = msg->m_now_ms;
    }
    if ((rc = pk__release_units(a, txn, o, msg->m_now_ms)) != 0 ||
        (!paid && (rc = pk_store_del_pair(st, txn, PK_TBL_ORDER_DUE, (uint64_t)was_due, o->o_id)) != 0) ||
        (rc = pk__order_write(st, txn, o, "order.cancelled", msg->m_now_ms)) != 0 ||
        (paid && (rc = pk__event(st, txn, o, PK_EVENT_PAYMENT, "payment.refunded", o->o_payment.pa_id,
                                 msg->m_now_ms)) != 0) ||
        (rc = pk__note(st, txn, o, PK_NOTE_ORDER_CANCELLED, msg->m_now_ms)) != 0)
        return rc;
    pk__reply(msg, o, pk_order_render, 200);
    return 0;
}

/* ---- deliveries ---- */

static int pk__delivery_step_apply(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg, pk_order_event_t ev)
{
    pk_store_t *st = &a->a_store;
    pk_msg_order_t *mo = &msg->u.order;
    pk_order_t o;
    MDB_val v;
    int rc = pk_store_get_id(st, txn, PK_TBL_DELIVERIES, mo->mo_id, &v);
    if (rc == 0 && v.mv_size != 8)
        return PK_ESTORE;
    if (rc == 0)
        rc = pk_orders_read(st, txn, pk_store_u64_of_key(&v), &o);
    if (rc == PK_ENOTFOUND) {
        pk_msg_error(msg, 404, "not_found", "no delivery with that id");
        return 0;
    }
    if (rc != 0)
        return rc;
    bool seller = msg->m_subject_role == PK_ROLE_ADMIN || pk_order_has_seller(&o, msg->m_subject);
    if (!seller) {
        if (o.o_user_id == msg->m_subject)
            pk_msg_error(msg, 403, "forbidden", "only a seller of an item or an admin moves a delivery");
        else
            pk_msg_error(msg, 404, "not_found", "no delivery with that id");
        return 0;
    }
    int next = pk_delivery_step(o.o_delivery.de_status, ev);
    int onext = pk_order_step(o.o_status, ev);
    if (next < 0 || onext < 0) {
        pk_msg_error(msg, 409, "invalid_transition",
                     ev == PK_OEV_SHIP ? "only a pending delivery can ship" : "only a delivery in transit can complete");
        return 0;
    }
    o.o_delivery.de_status = (uint8_t)next;
    o.o_delivery.de_at_ms[next] = msg->m_now_ms;
    if (ev == PK_OEV_SHIP) {
        memcpy(o.o_delivery.de_carrier, mo->mo_order.o_delivery.de_carrier, sizeof(o.o_delivery.de_carrier));
        o.o_delivery.de_carrier_len = mo->mo_order.o_delivery.de_carrier_len;
        memcpy(o.o_delivery.de_tracking, mo->mo_order.o_delivery.de_tracking, sizeof(o.o_delivery.de_tracking));
        o.o_delivery.de_tracking_len = mo->mo_order.o_delivery.de_tracking_len;
    }
    o.o_status = (uint8_t)onext;
    o.o_updated_ms = msg->m_now_ms;
    bool ship = ev == PK_OEV_SHIP;
    if ((rc = pk__order_write(st, txn, &o, ship ? "order.shipped" : "order.delivered", msg->m_now_ms)) != 0 ||
        (rc = pk__event(st, txn, &o, PK_EVENT_DELIVERY, ship ? "delivery.shipped" : "delivery.completed",
                        o.o_delivery.de_id, msg->m_now_ms)) != 0 ||
        (rc = pk__note(st, txn, &o, ship ? PK_NOTE_DELIVERY_SHIPPED : PK_NOTE_DELIVERY_COMPLETED, msg->m_now_ms)) != 0)
        return rc;
    mo->mo_order = o;
    pk__reply(msg, &mo->mo_order, pk_delivery_render, 200);
    return 0;
}

static int pk__ship_apply(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg)
{
    return pk__delivery_step_apply(a, txn, msg, PK_OEV_SHIP);
}

static int pk__complete_apply(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg)
{
    return pk__delivery_step_apply(a, txn, msg, PK_OEV_COMPLETE);
}

/* ---- notifications ---- */

static int pk__note_by_index(pk_store_t *st, MDB_txn *txn, uint64_t id, pk_msg_t *msg, pk_out_t *out)
{
    MDB_val v;
    pk_note_t n;
    if (pk_store_get_id(st, txn, PK_TBL_NOTIFICATIONS, id, &v) != 0 || pk_note_decode(v.mv_data, v.mv_size, &n) != 0)
        return PK_ESTORE;
    pk_note_render(&n, out);
    return 1;
}

static int pk__note_list_apply(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg)
{
    return pk_store_index_page(&a->a_store, txn, PK_TBL_USER_NOTIFS, msg->m_subject, msg, pk__note_by_index);
}

/* ---- maintenance ---- */

int pk_orders_maintain(pk_actor_t *a, MDB_txn *txn, int64_t now_ms, int64_t *next_due_ms, pk_msg_maint_t *rel)
{
    pk_store_t *st = &a->a_store;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, done = 0;
    bool more;
    *next_due_ms = INT64_MAX;
    if (mdb_cursor_open(txn, st->st_dbi[PK_TBL_ORDER_DUE], &cur) != 0)
        return PK_ESTORE;
    /* Each step deletes the entry it handled, so the first is the next. */
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
        if (k.mv_size != 16) {
            rc = PK_ESTORE;
            break;
        }
        MDB_val hi = {8, k.mv_data}, lo = {8, (uint8_t *)k.mv_data + 8};
        int64_t due = (int64_t)pk_store_u64_of_key(&hi);
        uint64_t order_id = pk_store_u64_of_key(&lo);
        if (due > now_ms || done == PK__EXPIRE_PER_SWEEP) {
            *next_due_ms = done == PK__EXPIRE_PER_SWEEP ? now_ms : due;
            break;
        }
        pk_order_t o;
        rc = pk_orders_read(st, txn, order_id, &o);
        if (rc == 0 && o.o_status == PK_ORDER_PLACING)
            rc = pk__fail_placing(a, txn, &o, now_ms);
        else if (rc == 0 && pk_order_due(&o, now_ms) && o.o_expires_ms == due)
            rc = pk__expire(a, txn, &o, now_ms);
        else if (rc == PK_ENOTFOUND)
            rc = 0; /* a failed order was dropped: only its entry is left */
        if (rc != 0)
            break;
        /* Stale or handled: the entry goes (pk__expire deleted it already). */
        if ((rc = pk_store_del_pair(st, txn, PK_TBL_ORDER_DUE, (uint64_t)due, order_id)) != 0)
            break;
        done++;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc < 0 ? rc : PK_ESTORE;
    /* After the expiries, so releases they just recorded go out at once. */
    if ((rc = pk_releases_maintain(a, txn, rel, &more)) != 0)
        return rc;
    if (more && *next_due_ms > now_ms + 100)
        *next_due_ms = now_ms + 100;
    if (done > 0)
        pk_log_info("shard=%u expired or dropped %d orders", st->st_shard, done);
    return 0;
}

const pk_op_t pk_op_order_place_sale = {"order.place_sale", false, pk__place_sale_apply};
const pk_op_t pk_op_order_place = {"order.place", false, pk__place_apply};
const pk_op_t pk_op_order_begin = {"order.begin", false, pk__begin_apply};
const pk_op_t pk_op_order_reserve = {"order.reserve", false, pk__reserve_apply};
const pk_op_t pk_op_order_confirm = {"order.confirm", false, pk__confirm_apply};
const pk_op_t pk_op_order_get = {"order.get", true, pk__get_apply};
const pk_op_t pk_op_order_list = {"order.list", true, pk__list_apply};
const pk_op_t pk_op_order_pay = {"order.pay", false, pk__pay_apply};
const pk_op_t pk_op_order_cancel = {"order.cancel", false, pk__cancel_apply};
const pk_op_t pk_op_delivery_get = {"delivery.get", true, pk__delivery_get_apply};
const pk_op_t pk_op_delivery_ship = {"delivery.ship", false, pk__ship_apply};
const pk_op_t pk_op_delivery_complete = {"delivery.complete", false, pk__complete_apply};
const pk_op_t pk_op_note_list = {"notification.list", true, pk__note_list_apply};
