/* Products on their shard: create, get, patch, stock, list. */
#include <assert.h>
#include <string.h>

#include "pickple/log.h"
#include "pickple/products.h"

int pk_products_read(pk_store_t *st, MDB_txn *txn, uint64_t id, pk_product_t *p)
{
    MDB_val v;
    int rc = pk_store_get_id(st, txn, PK_TBL_PRODUCTS, id, &v);
    if (rc != 0)
        return rc;
    if (pk_product_decode(v.mv_data, v.mv_size, p) != 0 || p->p_id != id) {
        pk_log_error("shard=%u product %llu: corrupt record", st->st_shard, (unsigned long long)id);
        return PK_ESTORE;
    }
    return 0;
}

/* Writes p and its event (type) in txn. */
int pk_products_write(pk_store_t *st, MDB_txn *txn, const pk_product_t *p, const char *type, int64_t now_ms)
{
    pk_buf_t rec = {0}, json = {0};
    pk_out_t o;
    assert(pk_product_units_balanced(p) && p->p_stock >= 0 && p->p_sale_units >= 0 && p->p_order_units >= 0);
    int rc = pk_product_encode(p, &rec);
    if (rc == 0)
        rc = pk_store_put_id(st, txn, PK_TBL_PRODUCTS, p->p_id, rec.b_data, rec.b_len);
    if (rc == 0 && type != NULL) {
        pk_out_init(&o, PK_FMT_JSON);
        pk_product_render(p, &o);
        rc = pk_out_finish(&o, &json);
    }
    if (rc == 0 && type != NULL)
        rc = pk_store_outbox_append(st, txn, type, p->p_id, now_ms, PK_EVENT_JSON, json.b_data, json.b_len);
    pk_buf_free(&rec);
    pk_buf_free(&json);
    return rc == 0 ? 0 : PK_ESTORE;
}

static void pk__render(pk_msg_t *msg, const pk_product_t *p, int status)
{
    pk_out_t o;
    pk_out_init(&o, msg->m_fmt);
    pk_product_render(p, &o);
    pk_msg_reply(msg, &o, status);
}

static int pk__create_apply(pk_actor_t *owner, MDB_txn *txn, pk_msg_t *msg)
{
    pk_product_t *p = &msg->u.product.mp_product;
    p->p_id = pk_store_next_id(&owner->a_store, PK_SEQ_PRODUCT);
    p->p_seller_id = msg->m_subject;
    p->p_added_total = p->p_stock;
    p->p_created_ms = p->p_updated_ms = msg->m_now_ms;
    int rc = pk_products_write(&owner->a_store, txn, p, "product.created", msg->m_now_ms);
    if (rc != 0)
        return rc;
    pk__render(msg, p, 201);
    return 0;
}

static int pk__get_apply(pk_actor_t *owner, MDB_txn *txn, pk_msg_t *msg)
{
    pk_product_t p;
    int rc = pk_products_read(&owner->a_store, txn, msg->u.product.mp_product.p_id, &p);
    if (rc == PK_ENOTFOUND) {
        pk_msg_error(msg, 404, "not_found", "no product with that id");
        return 0;
    }
    if (rc != 0)
        return rc;
    pk__render(msg, &p, 200);
    return 0;
}

/* Reads the product for a change by its seller or an admin.  Returns 1 when
 * the answer (404/403) is already set. */
static int pk__read_owned(pk_actor_t *owner, MDB_txn *txn, pk_msg_t *msg, pk_product_t *p)
{
    int rc = pk_products_read(&owner->a_store, txn, msg->u.product.mp_product.p_id, p);
    if (rc == PK_ENOTFOUND) {
        pk_msg_error(msg, 404, "not_found", "no product with that id");
        return 1;
    }
    if (rc != 0)
        return rc;
    if (msg->m_subject_role != PK_ROLE_ADMIN && p->p_seller_id != msg->m_subject) {
        pk_msg_error(msg, 403, "forbidden", "only the product's seller or an admin can change it");
        return 1;
    }
    return 0;
}

static int pk__patch_apply(pk_actor_t *owner, MDB_txn *txn, pk_msg_t *msg)
{
    pk_product_t p;
    const pk_product_t *in = &msg->u.product.mp_product;
    unsigned f = msg->u.product.mp_fields;
    int rc = pk__read_owned(owner, txn, msg, &p);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    if (f & PK_PRODUCT_F_NAME) {
        memcpy(p.p_name, in->p_name, in->p_name_len + 1u);
        p.p_name_len = in->p_name_len;
    }
    if (f & PK_PRODUCT_F_DESCRIPTION) {
        memcpy(p.p_description, in->p_description, in->p_description_len + 1u);
        p.p_description_len = in->p_description_len;
    }
    if (f & PK_PRODUCT_F_PRICE)
        p.p_price = in->p_price;
    p.p_updated_ms = msg->m_now_ms;
    if ((rc = pk_products_write(&owner->a_store, txn, &p, "product.updated", msg->m_now_ms)) != 0)
        return rc;
    pk__render(msg, &p, 200);
    return 0;
}

static int pk__stock_apply(pk_actor_t *owner, MDB_txn *txn, pk_msg_t *msg)
{
    pk_product_t p;
    int64_t delta = msg->u.product.mp_delta, next;
    int rc = pk__read_owned(owner, txn, msg, &p);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    rc = pk_stock_apply(p.p_stock, delta, &next);
    if (rc == PK_EINSUFFICIENT) {
        pk_msg_error(msg, 409, "insufficient_stock", "the adjustment would make stock negative");
        return 0;
    }
    if (rc != 0) {
        pk_msg_error(msg, 400, "invalid_request", "delta: stock would exceed 1000000000");
        return 0;
    }
    p.p_stock = next;
    p.p_added_total += delta;
    p.p_updated_ms = msg->m_now_ms;
    if ((rc = pk_products_write(&owner->a_store, txn, &p, "stock.adjusted", msg->m_now_ms)) != 0)
        return rc;
    pk__render(msg, &p, 200);
    return 0;
}

/*
 * The one page walk behind both list forms: entries of tbl whose key is
 * [prefix (plen bytes)] + u64 id with id > ml_after, in key order, until
 * ml_limit + 1 are rendered.  The page's callback (by value, or by id for
 * index tables) renders one entry (1), skips it (0) or fails (< 0).
 */
typedef struct pk__page {
    int (*pg_by_val)(const MDB_val *val, pk_msg_t *msg, pk_out_t *o);
    int (*pg_by_id)(pk_store_t *st, MDB_txn *txn, uint64_t id, pk_msg_t *msg, pk_out_t *o);
} pk__page_t;

static int pk__page_walk(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, const uint8_t *prefix, size_t plen,
                         pk_msg_t *msg, const pk__page_t *pg)
{
    pk_msg_list_t *l = &msg->u.list;
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t kb[16];
    pk_out_t o;
    int rc;
    assert(plen == 0 || plen == 8);
    pk_out_init(&o, msg->m_fmt);
    if (mdb_cursor_open(txn, st->st_dbi[tbl], &cur) != 0)
        return PK_ESTORE;
    memcpy(kb, prefix, plen);
    pk_store_key_u64(l->ml_after + 1, kb + plen);
    k.mv_size = plen + 8;
    k.mv_data = kb;
    l->ml_count = 0;
    l->ml_offsets[0] = 0;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && l->ml_count < l->ml_limit + 1) {
        if (k.mv_size != plen + 8) {
            rc = PK_ESTORE;
            break;
        }
        if (memcmp(k.mv_data, prefix, plen) != 0)
            break; /* past the prefix */
        MDB_val idk = {8, (uint8_t *)k.mv_data + plen};
        uint64_t id = pk_store_u64_of_key(&idk);
        int r = pg->pg_by_val != NULL ? pg->pg_by_val(&v, msg, &o) : pg->pg_by_id(st, txn, id, msg, &o);
        if (r < 0) {
            rc = r;
            break;
        }
        if (r > 0) {
            l->ml_ids[l->ml_count] = id;
            l->ml_count++;
            l->ml_offsets[l->ml_count] = (uint32_t)o.o_buf.b_len;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        pk_out_discard(&o);
        return PK_ESTORE;
    }
    if (pk_out_finish(&o, &msg->m_body) != 0)
        return PK_ESTORE;
    msg->m_status = 200;
    return 0;
}

int pk_store_list_page(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, pk_msg_t *msg,
                       int (*render)(const MDB_val *val, pk_msg_t *msg, pk_out_t *o))
{
    static const uint8_t no_prefix[8];
    pk__page_t pg = {render, NULL};
    return pk__page_walk(st, txn, tbl, no_prefix, 0, msg, &pg);
}

int pk_store_index_page(pk_store_t *st, MDB_txn *txn, pk_table_t index, uint64_t hi, pk_msg_t *msg,
                        int (*render)(pk_store_t *st, MDB_txn *txn, uint64_t id, pk_msg_t *msg, pk_out_t *o))
{
    uint8_t prefix[8];
    pk__page_t pg = {NULL, render};
    pk_store_key_u64(hi, prefix);
    return pk__page_walk(st, txn, index, prefix, 8, msg, &pg);
}

static int pk__list_render(const MDB_val *val, pk_msg_t *msg, pk_out_t *o)
{
    pk_product_t p;
    if (pk_product_decode(val->mv_data, val->mv_size, &p) != 0)
        return PK_ESTORE;
    pk_product_render(&p, o);
    return 1;
}

static int pk__list_apply(pk_actor_t *owner, MDB_txn *txn, pk_msg_t *msg)
{
    return pk_store_list_page(&owner->a_store, txn, PK_TBL_PRODUCTS, msg, pk__list_render);
}

const pk_op_t pk_op_product_create = {"product.create", false, pk__create_apply};
const pk_op_t pk_op_product_get = {"product.get", true, pk__get_apply};
const pk_op_t pk_op_product_patch = {"product.patch", false, pk__patch_apply};
const pk_op_t pk_op_product_stock = {"product.stock", false, pk__stock_apply};
const pk_op_t pk_op_product_list = {"product.list", true, pk__list_apply};
