/*
 * Order endpoints.  Placing an order is a short pipeline of hops, run by
 * the connection's thread:
 *   [idempotency.bind on the key's shard] ->
 *     sale form:     order.place_sale on the sale's shard
 *     catalog, one shard: order.place on it
 *     catalog, several:   order.begin (home) -> order.reserve on each other
 *                         shard -> order.confirm (home)
 * The pipeline goes on when the client has gone away, so a placing order
 * is always confirmed or refused; if a hop is refused (full inbox), the
 * home's timeout drops the order and releases its units.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickple/http.h"
#include "pickple/orders.h"

/* ---- request parsing ---- */

static int pk__text(h2o_req_t *req, const pk_http_args_t *args, json_t *obj, const char *key, const char *label,
                    size_t max, char *dst, uint16_t *len)
{
    char why[96];
    json_t *v = json_object_get(obj, key);
    if (v == NULL || !json_is_string(v)) {
        pk_http_invalid(req, args, label, v == NULL ? "is required" : "must be a string");
        return -EINVAL;
    }
    size_t n = json_string_length(v);
    if (n == 0 || n > max) {
        snprintf(why, sizeof(why), "must be 1..%zu bytes", max);
        pk_http_invalid(req, args, label, why);
        return -EINVAL;
    }
    memcpy(dst, json_string_value(v), n);
    dst[n] = '\0';
    *len = (uint16_t)n;
    return 0;
}

static int pk__shipping(h2o_req_t *req, const pk_http_args_t *args, json_t *body, pk_shipping_t *sh)
{
    const char *field;
    json_t *v = json_object_get(body, "shipping");
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v)) {
        pk_http_invalid(req, args, "shipping", "must be an object {recipient, address, phone}");
        return -EINVAL;
    }
    sh->sh_present = true;
    if (pk__text(req, args, v, "recipient", "shipping.recipient", PK_SHIP_RECIPIENT_BYTES_MAX, sh->sh_recipient,
                 &sh->sh_recipient_len) != 0 ||
        pk__text(req, args, v, "address", "shipping.address", PK_SHIP_ADDRESS_BYTES_MAX, sh->sh_address,
                 &sh->sh_address_len) != 0 ||
        pk__text(req, args, v, "phone", "shipping.phone", PK_SHIP_PHONE_BYTES_MAX, sh->sh_phone, &sh->sh_phone_len) != 0)
        return -EINVAL;
    if (!pk_shipping_valid(sh, &field)) {
        pk_http_invalid(req, args, field, "must not be blank");
        return -EINVAL;
    }
    return 0;
}

static int pk__items(h2o_req_t *req, const pk_http_args_t *args, json_t *items, pk_order_t *o)
{
    char label[48];
    if (!json_is_array(items) || json_array_size(items) < 1 || json_array_size(items) > PK_ORDER_ITEMS_MAX) {
        pk_http_invalid(req, args, "items", "must be an array of 1..50 {product_id, quantity}");
        return -EINVAL;
    }
    o->o_nitems = (uint8_t)json_array_size(items);
    for (unsigned i = 0; i < o->o_nitems; i++) {
        json_t *it = json_array_get(items, i);
        int64_t pid, q;
        if (!json_is_object(it)) {
            snprintf(label, sizeof(label), "items[%u]", i);
            pk_http_invalid(req, args, label, "must be an object {product_id, quantity}");
            return -EINVAL;
        }
        snprintf(label, sizeof(label), "items[%u].product_id", i);
        if (pk_http_field_int_at(req, args, it, "product_id", label, true, 1, (int64_t)PK_ID_MAX, &pid) != 0)
            return -EINVAL;
        snprintf(label, sizeof(label), "items[%u].quantity", i);
        if (pk_http_field_int_at(req, args, it, "quantity", label, true, 1, PK_STOCK_MAX, &q) != 0)
            return -EINVAL;
        for (unsigned j = 0; j < i; j++) {
            if (o->o_items[j].oi_product_id == (uint64_t)pid) {
                snprintf(label, sizeof(label), "items[%u].product_id", i);
                pk_http_invalid(req, args, label, "each product may appear only once");
                return -EINVAL;
            }
        }
        o->o_items[i].oi_product_id = (uint64_t)pid;
        o->o_items[i].oi_quantity = q;
    }
    return 0;
}

/* Reads the Idempotency-Key header into mo.  Returns 0 or -EINVAL (answered). */
static int pk__idem_key(h2o_req_t *req, const pk_http_args_t *args, pk_msg_order_t *mo)
{
    ssize_t hi = h2o_find_header_by_str(&req->headers, H2O_STRLIT("idempotency-key"), -1);
    if (hi < 0)
        return 0;
    h2o_iovec_t v = req->headers.entries[hi].value;
    bool ok = v.len >= 1 && v.len <= PK_IDEM_KEY_BYTES_MAX;
    for (size_t i = 0; ok && i < v.len; i++)
        ok = v.base[i] >= 0x20 && v.base[i] <= 0x7e;
    if (!ok) {
        pk_http_invalid(req, args, "Idempotency-Key", "must be 1..64 printable ASCII characters");
        return -EINVAL;
    }
    memcpy(mo->mo_key, v.base, v.len);
    mo->mo_key[v.len] = '\0';
    mo->mo_key_len = (uint8_t)v.len;
    return 0;
}

static uint64_t pk__fnv(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The request's fingerprint: its meaning, not its bytes (JSON and
 * MessagePack forms of one request match). */
static uint64_t pk__fingerprint(const pk_msg_order_t *mo)
{
    const pk_order_t *o = &mo->mo_order;
    const pk_shipping_t *sh = &o->o_shipping;
    uint64_t h = 14695981039346656037ull;
    h = pk__fnv(h, &o->o_sale_id, sizeof(o->o_sale_id));
    h = pk__fnv(h, &mo->mo_quantity, sizeof(mo->mo_quantity));
    h = pk__fnv(h, &o->o_nitems, sizeof(o->o_nitems));
    for (unsigned i = 0; i < o->o_nitems; i++) {
        h = pk__fnv(h, &o->o_items[i].oi_product_id, sizeof(uint64_t));
        h = pk__fnv(h, &o->o_items[i].oi_quantity, sizeof(int64_t));
    }
    h = pk__fnv(h, &sh->sh_present, sizeof(sh->sh_present));
    h = pk__fnv(h, sh->sh_recipient, sh->sh_recipient_len + 1u);
    h = pk__fnv(h, sh->sh_address, sh->sh_address_len + 1u);
    h = pk__fnv(h, sh->sh_phone, sh->sh_phone_len + 1u);
    return h;
}

/* ---- the placement pipeline ---- */

static void pk__send_or_fail(pk_actor_t *a, pk_msg_t *msg)
{
    if (pk_actor_send(a, msg) != 0) {
        pk_msg_error(msg, 503, "unavailable", "server busy; retry shortly");
        pk_http_finish(a, msg);
    }
}

static void pk__confirmed(pk_actor_t *a, pk_msg_t *msg)
{
    pk_http_finish(a, msg);
}

/* Every other shard answered its reservation: ask the home to decide. */
static void pk__gathered(pk_actor_t *a, pk_msg_t *parent)
{
    pk_msg_order_t *mo = &parent->u.order;
    mo->mo_ok = true;
    for (uint32_t c = 0; c < parent->m_children_count; c++) {
        pk_msg_t *ch = parent->m_children[c];
        if (ch->m_err_code != NULL && mo->mo_ok) {
            mo->mo_ok = false;
            mo->mo_refusal_status = ch->m_status;
            mo->mo_refusal_code = ch->m_err_code;
            mo->mo_refusal_message = ch->m_err_message;
        }
        /* Prices and sellers come back from the items' own shards. */
        const pk_order_t *part = &ch->u.order.mo_order;
        for (unsigned i = 0; i < part->o_nitems; i++)
            for (unsigned j = 0; j < mo->mo_order.o_nitems; j++)
                if (mo->mo_order.o_items[j].oi_product_id == part->o_items[i].oi_product_id)
                    mo->mo_order.o_items[j] = part->o_items[i];
        pk_msg_free(a, ch);
    }
    free(parent->m_children);
    parent->m_children = NULL;
    parent->m_children_count = 0;
    parent->m_err_code = NULL;
    parent->m_status = 0;
    parent->m_op = &pk_op_order_confirm;
    parent->m_done = pk__confirmed;
    parent->m_shard = (uint16_t)(mo->mo_id % a->a_rt->rt_nactors);
    pk__send_or_fail(a, parent);
}

static void pk__reserved(pk_actor_t *a, pk_msg_t *child)
{
    pk_msg_t *parent = child->m_parent;
    if (--parent->m_children_waiting == 0)
        pk__gathered(a, parent);
}

/* The home holds a placing order: reserve on every other shard. */
static void pk__begun(pk_actor_t *a, pk_msg_t *msg)
{
    pk_msg_order_t *mo = &msg->u.order;
    unsigned n = a->a_rt->rt_nactors, home = (unsigned)(mo->mo_id % n);
    if (msg->m_status != 200 || msg->m_err_code != NULL || mo->mo_id == 0) {
        pk_http_finish(a, msg); /* refused, or an idempotent replay */
        return;
    }
    msg->m_children = calloc(n, sizeof(pk_msg_t *));
    if (msg->m_children == NULL)
        goto busy;
    for (unsigned s = 0; s < n; s++) {
        if (s == home)
            continue;
        pk_msg_t *ch = NULL;
        for (unsigned i = 0; i < mo->mo_order.o_nitems; i++) {
            const pk_order_item_t *it = &mo->mo_order.o_items[i];
            if (it->oi_product_id % n != s)
                continue;
            if (ch == NULL) {
                if ((ch = pk_msg_new(a)) == NULL)
                    goto busy;
                ch->m_parent = msg;
                ch->m_fmt = msg->m_fmt;
                ch->m_now_ms = msg->m_now_ms;
                ch->m_subject = msg->m_subject;
                ch->m_op = &pk_op_order_reserve;
                ch->m_shard = (uint16_t)s;
                ch->m_done = pk__reserved;
                ch->u.order.mo_order.o_id = mo->mo_id;
                msg->m_children[msg->m_children_count++] = ch;
            }
            ch->u.order.mo_order.o_items[ch->u.order.mo_order.o_nitems++] = *it;
        }
    }
    /* The sending loop holds one count so no early answer finishes it. */
    msg->m_children_waiting = msg->m_children_count + 1;
    for (uint32_t c = 0; c < msg->m_children_count; c++) {
        pk_msg_t *ch = msg->m_children[c];
        if (pk_actor_send(a, ch) != 0) {
            pk_msg_error(ch, 503, "unavailable", "server busy; retry shortly");
            pk__reserved(a, ch);
        }
    }
    if (--msg->m_children_waiting == 0)
        pk__gathered(a, msg);
    return;
busy:
    /* Nothing was sent: ask the home to drop the order right away. */
    for (uint32_t c = 0; c < msg->m_children_count; c++)
        pk_msg_free(a, msg->m_children[c]);
    free(msg->m_children);
    msg->m_children = NULL;
    msg->m_children_count = 0;
    mo->mo_ok = false;
    mo->mo_refusal_status = 503;
    mo->mo_refusal_code = "unavailable";
    mo->mo_refusal_message = "server busy; retry shortly";
    msg->m_status = 0;
    msg->m_op = &pk_op_order_confirm;
    msg->m_done = pk__confirmed;
    msg->m_shard = (uint16_t)home;
    pk__send_or_fail(a, msg);
}

/* The idempotency key is bound (or there is none): place the order. */
static void pk__place(pk_actor_t *a, pk_msg_t *msg)
{
    pk_msg_order_t *mo = &msg->u.order;
    pk_order_t *o = &mo->mo_order;
    unsigned n = a->a_rt->rt_nactors;
    msg->m_status = 0;
    if (o->o_sale_id != 0) {
        msg->m_op = &pk_op_order_place_sale;
        msg->m_shard = (uint16_t)(o->o_sale_id % n);
        msg->m_done = pk_http_finish;
    } else {
        unsigned home = (unsigned)(o->o_items[0].oi_product_id % n);
        bool one_shard = true;
        for (unsigned i = 1; i < o->o_nitems; i++)
            one_shard = one_shard && o->o_items[i].oi_product_id % n == home;
        msg->m_op = one_shard ? &pk_op_order_place : &pk_op_order_begin;
        msg->m_done = one_shard ? pk_http_finish : pk__begun;
        msg->m_shard = (uint16_t)home;
    }
    if (msg->m_pending == NULL && msg->m_op != &pk_op_order_begin) {
        pk_msg_free(a, msg); /* client gone before anything was placed */
        return;
    }
    pk__send_or_fail(a, msg);
}

static void pk__bound(pk_actor_t *a, pk_msg_t *msg)
{
    if (msg->m_err_code != NULL || msg->m_status != 200) {
        pk_http_finish(a, msg);
        return;
    }
    pk__place(a, msg);
}

#define PK__SOLD_OUT_MESSAGE "not enough units left in this sale"

/* Skips JSON whitespace. */
static const char *pk__ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/*
 * The flash-sale body, {"sale_id": N, "quantity": N} in either order, read
 * without building a JSON tree.  Deliberately narrow: plain decimal
 * integers in range, each member once, nothing else.  Anything else (other
 * members, escapes, signs, fractions, out-of-range values, bad JSON) returns
 * false and takes the general parser, which gives the precise 400.
 */
static bool pk__plain_sale_body(const char *p, size_t len, int64_t *sale_id, int64_t *quantity)
{
    const char *end = p + len;
    bool have_sale = false, have_qty = false;
    p = pk__ws(p, end);
    if (p == end || *p++ != '{')
        return false;
    for (int member = 0; member < 2; member++) {
        p = pk__ws(p, end);
        int64_t *dst;
        if ((size_t)(end - p) >= 9 && memcmp(p, "\"sale_id\"", 9) == 0 && !have_sale) {
            dst = sale_id;
            have_sale = true;
            p += 9;
        } else if ((size_t)(end - p) >= 10 && memcmp(p, "\"quantity\"", 10) == 0 && !have_qty) {
            dst = quantity;
            have_qty = true;
            p += 10;
        } else {
            return false;
        }
        p = pk__ws(p, end);
        if (p == end || *p++ != ':')
            return false;
        p = pk__ws(p, end);
        /* 1..15 digits, no leading zero: always below 2^53 (PK_ID_MAX). */
        const char *digits = p;
        int64_t v = 0;
        while (p < end && *p >= '0' && *p <= '9' && p - digits < 16)
            v = v * 10 + (*p++ - '0');
        if (p == digits || p - digits > 15 || *digits == '0' || (p < end && *p >= '0' && *p <= '9'))
            return false;
        *dst = v;
        p = pk__ws(p, end);
        if (p == end || *p++ != (member == 0 ? ',' : '}'))
            return false;
    }
    return pk__ws(p, end) == end && *sale_id <= (int64_t)PK_ID_MAX && *quantity <= PK_STOCK_MAX;
}

void pk_h_order_create(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    json_t *body = NULL;
    int64_t v, plain_sale = 0, plain_qty = 0;
    unsigned n = a->a_rt->rt_nactors;
    bool plain = args->ha_fmt_in == PK_FMT_JSON && req->entity.base != NULL &&
                 pk__plain_sale_body(req->entity.base, req->entity.len, &plain_sale, &plain_qty);
    /* The rejection storm of a sold-out flash sale: answered before any
     * allocation.  Keyed requests go to the owner, whose answer is the one
     * remembered. */
    if (plain && h2o_find_header_by_str(&req->headers, H2O_STRLIT("idempotency-key"), -1) < 0 &&
        pk_soldout_check(&a->a_rt->rt_actors[(uint64_t)plain_sale % n].a_soldout, (uint64_t)plain_sale,
                         args->ha_now_ms)) {
        /* What pk_http_error renders for this refusal, spelled out once. */
        static const char sold_out_json[] =
            "{\"error\":{\"code\":\"sold_out\",\"message\":\"" PK__SOLD_OUT_MESSAGE "\"}}";
        if (args->ha_fmt_out == PK_FMT_JSON)
            pk_http_send(req, PK_FMT_JSON, 409, sold_out_json, sizeof(sold_out_json) - 1);
        else
            pk_http_error(req, args->ha_fmt_out, 409, "sold_out", PK__SOLD_OUT_MESSAGE);
        return;
    }
    if (!plain && pk_http_body(req, args, &body) != 0)
        return;
    pk_msg_t *msg = pk_http_msg_new(a, req, args);
    if (msg == NULL)
        goto done;
    pk_msg_order_t *mo = &msg->u.order;
    pk_order_t *o = &mo->mo_order;
    json_t *items = plain ? NULL : json_object_get(body, "items");
    bool sale_form = plain || json_object_get(body, "sale_id") != NULL;
    if (sale_form == (items != NULL)) {
        pk_http_invalid(req, args, sale_form ? "items" : "sale_id",
                        "give either sale_id and quantity (a sale order) or items (a catalog order)");
        goto drop;
    }
    if (plain) {
        o->o_sale_id = (uint64_t)plain_sale;
        mo->mo_quantity = plain_qty;
    } else if (sale_form) {
        if (pk_http_field_int(req, args, body, "sale_id", true, 1, (int64_t)PK_ID_MAX, &v) != 0 ||
            pk_http_field_int(req, args, body, "quantity", true, 1, PK_STOCK_MAX, &mo->mo_quantity) != 0)
            goto drop;
        o->o_sale_id = (uint64_t)v;
    } else if (pk__items(req, args, items, o) != 0) {
        goto drop;
    }
    if ((!plain && pk__shipping(req, args, body, &o->o_shipping) != 0) || pk__idem_key(req, args, mo) != 0)
        goto drop;
    /* A sold-out sale is refused here, without a hop.  Keyed requests go to
     * the owner, whose answer is the one remembered. */
    if (sale_form && mo->mo_key_len == 0 &&
        pk_soldout_check(&a->a_rt->rt_actors[o->o_sale_id % n].a_soldout, o->o_sale_id, args->ha_now_ms)) {
        pk_http_error(req, args->ha_fmt_out, 409, "sold_out", PK__SOLD_OUT_MESSAGE);
        goto drop;
    }
    if (pk_http_attach(req, msg) != 0) {
        pk_http_unavailable(req, args->ha_fmt_out, "out of memory");
        goto drop;
    }
    if (mo->mo_key_len == 0) {
        pk__place(a, msg);
        goto done;
    }
    mo->mo_fingerprint = pk__fingerprint(mo);
    uint64_t kh = pk__fnv(pk__fnv(14695981039346656037ull, &msg->m_subject, 8), mo->mo_key, mo->mo_key_len);
    msg->m_op = &pk_op_idem_bind;
    msg->m_shard = (uint16_t)(kh % n);
    msg->m_done = pk__bound;
    pk__send_or_fail(a, msg);
    goto done;
drop:
    pk_msg_free(a, msg);
done:
    if (body != NULL)
        json_decref(body);
}

/* ---- the other order endpoints ---- */

static void pk__by_id(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args, const pk_op_t *op)
{
    pk_msg_t *msg = pk_http_msg_new(a, req, args);
    if (msg == NULL)
        return;
    msg->u.order.mo_id = args->ha_id;
    pk_http_submit_op(a, req, msg, op, args->ha_id);
}

void pk_h_order_get(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    pk__by_id(a, req, args, &pk_op_order_get);
}

void pk_h_order_cancel(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    pk__by_id(a, req, args, &pk_op_order_cancel);
}

void pk_h_order_delivery(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    pk__by_id(a, req, args, &pk_op_delivery_get);
}

void pk_h_delivery_complete(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    pk__by_id(a, req, args, &pk_op_delivery_complete);
}

void pk_h_order_list(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    pk_http_list(a, req, args, &pk_op_order_list, "status", pk_order_status_parse);
}

void pk_h_note_list(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    pk_http_list(a, req, args, &pk_op_note_list, NULL, NULL);
}

void pk_h_order_pay(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    json_t *body;
    const char *s;
    size_t len;
    int64_t amount;
    if (pk_http_body(req, args, &body) != 0)
        return;
    if (pk_http_field_int(req, args, body, "amount", true, 0, PK_ORDER_TOTAL_MAX, &amount) != 0 ||
        pk_http_field_str(req, args, body, "method", true, &s, &len) != 0)
        goto done;
    int method = pk_pay_method_parse(s, len);
    if (method < 0) {
        pk_http_invalid(req, args, "method", "must be card, bank_transfer or test_decline");
        goto done;
    }
    pk_msg_t *msg = pk_http_msg_new(a, req, args);
    if (msg == NULL)
        goto done;
    msg->u.order.mo_id = args->ha_id;
    msg->u.order.mo_amount = amount;
    msg->u.order.mo_method = (uint8_t)method;
    pk_http_submit_op(a, req, msg, &pk_op_order_pay, args->ha_id);
done:
    json_decref(body);
}

void pk_h_delivery_ship(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    json_t *body;
    if (pk_http_body(req, args, &body) != 0)
        return;
    pk_msg_t *msg = pk_http_msg_new(a, req, args);
    if (msg == NULL)
        goto done;
    pk_delivery_t *de = &msg->u.order.mo_order.o_delivery;
    if (pk__text(req, args, body, "carrier", "carrier", PK_CARRIER_BYTES_MAX, de->de_carrier, &de->de_carrier_len) != 0 ||
        pk__text(req, args, body, "tracking_number", "tracking_number", PK_TRACKING_BYTES_MAX, de->de_tracking,
                 &de->de_tracking_len) != 0) {
        pk_msg_free(a, msg);
        goto done;
    }
    msg->u.order.mo_id = args->ha_id;
    pk_http_submit_op(a, req, msg, &pk_op_delivery_ship, args->ha_id);
done:
    json_decref(body);
}
