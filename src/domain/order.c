/* Orders: status and delivery machines, amount rules, stored form, documents. */
#include <assert.h>
#include <string.h>

#include "pickple/codec.h"
#include "pickple/order.h"

static const char *const pk__status_names[PK_ORDER_STATUS_COUNT] = {
    "placing", "pending_payment", "paid", "shipped", "delivered", "expired", "cancelled", "failed",
};

const char *pk_order_status_name(pk_order_status_t st)
{
    return (unsigned)st < PK_ORDER_STATUS_COUNT ? pk__status_names[st] : "unknown";
}

int pk_order_status_parse(const char *name)
{
    for (int i = PK_ORDER_PENDING_PAYMENT; i <= PK_ORDER_CANCELLED; i++)
        if (strcmp(name, pk__status_names[i]) == 0)
            return i;
    return -1;
}

bool pk_order_visible(const pk_order_t *o)
{
    return o->o_status != PK_ORDER_PLACING && o->o_status != PK_ORDER_FAILED;
}

bool pk_order_holds_units(pk_order_status_t st)
{
    return st == PK_ORDER_PLACING || st == PK_ORDER_PENDING_PAYMENT || st == PK_ORDER_PAID ||
           st == PK_ORDER_SHIPPED || st == PK_ORDER_DELIVERED;
}

int pk_order_step(pk_order_status_t st, pk_order_event_t ev)
{
    switch (ev) {
    case PK_OEV_CONFIRM:
        return st == PK_ORDER_PLACING ? PK_ORDER_PENDING_PAYMENT : -1;
    case PK_OEV_FAIL:
        return st == PK_ORDER_PLACING ? PK_ORDER_FAILED : -1;
    case PK_OEV_PAY:
        return st == PK_ORDER_PENDING_PAYMENT ? PK_ORDER_PAID : -1;
    case PK_OEV_EXPIRE:
        return st == PK_ORDER_PENDING_PAYMENT ? PK_ORDER_EXPIRED : -1;
    case PK_OEV_CANCEL:
        /* A paid order is cancellable only while its delivery is pending:
         * the caller checks the delivery, the machine allows the step. */
        return st == PK_ORDER_PENDING_PAYMENT || st == PK_ORDER_PAID ? PK_ORDER_CANCELLED : -1;
    case PK_OEV_SHIP:
        return st == PK_ORDER_PAID ? PK_ORDER_SHIPPED : -1;
    case PK_OEV_COMPLETE:
        return st == PK_ORDER_SHIPPED ? PK_ORDER_DELIVERED : -1;
    }
    return -1;
}

bool pk_order_due(const pk_order_t *o, int64_t now_ms)
{
    return o->o_status == PK_ORDER_PENDING_PAYMENT && now_ms >= o->o_expires_ms;
}

pk_pay_check_t pk_order_pay_check(const pk_order_t *o, int64_t amount, int64_t now_ms)
{
    switch ((pk_order_status_t)o->o_status) {
    case PK_ORDER_PENDING_PAYMENT:
        if (pk_order_due(o, now_ms))
            return PK_PAY_EXPIRED;
        return amount == o->o_total ? PK_PAY_OK : PK_PAY_AMOUNT_MISMATCH;
    case PK_ORDER_PAID:
    case PK_ORDER_SHIPPED:
    case PK_ORDER_DELIVERED:
        return PK_PAY_ALREADY_PAID;
    case PK_ORDER_EXPIRED:
        return PK_PAY_EXPIRED;
    case PK_ORDER_CANCELLED:
        return PK_PAY_CANCELLED;
    default:
        return PK_PAY_NOT_PAYABLE;
    }
}

int pk_delivery_step(pk_delivery_status_t st, pk_order_event_t ev)
{
    if (ev == PK_OEV_SHIP)
        return st == PK_DELIVERY_PENDING ? PK_DELIVERY_IN_TRANSIT : -1;
    if (ev == PK_OEV_COMPLETE)
        return st == PK_DELIVERY_IN_TRANSIT ? PK_DELIVERY_DELIVERED : -1;
    if (ev == PK_OEV_CANCEL)
        return st == PK_DELIVERY_PENDING ? PK_DELIVERY_CANCELLED : -1;
    return -1;
}

const char *pk_delivery_status_name(pk_delivery_status_t st)
{
    static const char *const names[] = {"none", "pending", "in_transit", "delivered", "cancelled"};
    return (unsigned)st < PK_ARRAY_LEN(names) ? names[st] : "unknown";
}

static const char *const pk__method_names[PK_PAY_METHOD_COUNT] = {"card", "bank_transfer", "test_decline"};

const char *pk_pay_method_name(pk_pay_method_t m)
{
    return (unsigned)m < PK_PAY_METHOD_COUNT ? pk__method_names[m] : "unknown";
}

int pk_pay_method_parse(const char *s, size_t len)
{
    for (int i = 0; i < PK_PAY_METHOD_COUNT; i++)
        if (strlen(pk__method_names[i]) == len && memcmp(s, pk__method_names[i], len) == 0)
            return i;
    return -1;
}

int pk_order_total(const pk_order_item_t *items, unsigned n, int64_t *total)
{
    int64_t sum = 0, line;
    for (unsigned i = 0; i < n; i++) {
        if (__builtin_mul_overflow(items[i].oi_quantity, items[i].oi_unit_price, &line) ||
            __builtin_add_overflow(sum, line, &sum) || sum > PK_ORDER_TOTAL_MAX)
            return -ERANGE;
    }
    *total = sum;
    return 0;
}

static bool pk__text_ok(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return true;
    return false;
}

bool pk_shipping_valid(const pk_shipping_t *sh, const char **field)
{
    if (!sh->sh_present)
        return true;
    if (!pk__text_ok(sh->sh_recipient, sh->sh_recipient_len, PK_SHIP_RECIPIENT_BYTES_MAX))
        *field = "shipping.recipient";
    else if (!pk__text_ok(sh->sh_address, sh->sh_address_len, PK_SHIP_ADDRESS_BYTES_MAX))
        *field = "shipping.address";
    else if (!pk__text_ok(sh->sh_phone, sh->sh_phone_len, PK_SHIP_PHONE_BYTES_MAX))
        *field = "shipping.phone";
    else
        return true;
    return false;
}

bool pk_order_has_seller(const pk_order_t *o, uint64_t user_id)
{
    for (unsigned i = 0; i < o->o_nitems; i++)
        if (o->o_items[i].oi_seller_id == user_id)
            return true;
    return false;
}

/* ---- stored form ---- */

/* Schema 2 appends o_prev_id; schema 1 records (25 fields) still decode,
 * with o_prev_id 0. */
enum { PK__ORDER_SCHEMA = 2, PK__ORDER_FIELDS = 26, PK__ORDER_FIELDS_V1 = 25 };

/* Written directly (include/pickple/codec.h), not through msgpack-c's
 * packer: every placed order is encoded on its owner's thread, and the
 * packer's call per value was most of the cost. */
int pk_order_encode(const pk_order_t *o, pk_buf_t *out)
{
    const pk_shipping_t *sh = &o->o_shipping;
    const pk_payment_t *pa = &o->o_payment;
    const pk_delivery_t *de = &o->o_delivery;
    size_t max = PK_MPW_NUM_MAX * (PK__ORDER_FIELDS + 2 + 5 + 5 * (size_t)o->o_nitems) +
                 PK_MPW_STR_HDR_MAX * 5 + sh->sh_recipient_len + sh->sh_address_len + sh->sh_phone_len +
                 de->de_carrier_len + de->de_tracking_len;
    int rc = pk_buf_reserve(out, max);
    if (rc != 0)
        return rc;
    uint8_t *start = (uint8_t *)out->b_data + out->b_len, *p = start;
    p = pk_mpw_array(p, PK__ORDER_FIELDS);
    p = pk_mpw_uint(p, PK__ORDER_SCHEMA);
    p = pk_mpw_uint(p, o->o_id);
    p = pk_mpw_uint(p, o->o_user_id);
    p = pk_mpw_uint(p, o->o_sale_id);
    p = pk_mpw_uint(p, o->o_status);
    p = pk_mpw_int(p, o->o_total);
    p = pk_mpw_int(p, o->o_created_ms);
    p = pk_mpw_int(p, o->o_expires_ms);
    p = pk_mpw_int(p, o->o_updated_ms);
    p = pk_mpw_array(p, o->o_nitems);
    for (unsigned i = 0; i < o->o_nitems; i++) {
        const pk_order_item_t *it = &o->o_items[i];
        p = pk_mpw_array(p, 4);
        p = pk_mpw_uint(p, it->oi_product_id);
        p = pk_mpw_uint(p, it->oi_seller_id);
        p = pk_mpw_int(p, it->oi_quantity);
        p = pk_mpw_int(p, it->oi_unit_price);
    }
    p = pk_mpw_uint(p, sh->sh_present);
    p = pk_mpw_str(p, sh->sh_recipient, sh->sh_recipient_len);
    p = pk_mpw_str(p, sh->sh_address, sh->sh_address_len);
    p = pk_mpw_str(p, sh->sh_phone, sh->sh_phone_len);
    p = pk_mpw_uint(p, pa->pa_id);
    p = pk_mpw_int(p, pa->pa_amount);
    p = pk_mpw_uint(p, pa->pa_method);
    p = pk_mpw_uint(p, pa->pa_status);
    p = pk_mpw_int(p, pa->pa_paid_ms);
    p = pk_mpw_int(p, pa->pa_refunded_ms);
    p = pk_mpw_uint(p, de->de_id);
    p = pk_mpw_uint(p, de->de_status);
    p = pk_mpw_str(p, de->de_carrier, de->de_carrier_len);
    p = pk_mpw_str(p, de->de_tracking, de->de_tracking_len);
    p = pk_mpw_array(p, PK_ARRAY_LEN(de->de_at_ms));
    for (unsigned i = 0; i < PK_ARRAY_LEN(de->de_at_ms); i++)
        p = pk_mpw_int(p, de->de_at_ms[i]);
    p = pk_mpw_uint(p, o->o_prev_id);
    assert((size_t)(p - start) <= max);
    out->b_len += (size_t)(p - start);
    return 0;
}

static int pk__u8(const msgpack_object *f, uint64_t max, uint8_t *out)
{
    uint64_t v;
    if (pk_codec_u64(f, max, &v) != 0)
        return PK_EFORMAT;
    *out = (uint8_t)v;
    return 0;
}

static int pk__str16(const msgpack_object *f, size_t min, size_t max, char *dst, uint16_t *len)
{
    size_t n;
    if (pk_codec_str(f, min, max, dst, &n) != 0)
        return PK_EFORMAT;
    *len = (uint16_t)n;
    return 0;
}

int pk_order_decode(const void *data, size_t len, pk_order_t *o)
{
    msgpack_unpacked up;
    msgpack_object *f, *it;
    uint64_t schema, present;
    const uint64_t id_max = (1ull << 53) - 1;
    memset(o, 0, sizeof(*o));
    int rc = pk_codec_unpack(data, len, &up);
    if (rc != 0)
        return rc;
    rc = PK_EFORMAT;
    pk_shipping_t *sh = &o->o_shipping;
    pk_payment_t *pa = &o->o_payment;
    pk_delivery_t *de = &o->o_delivery;
    if (pk_codec_array(&up.data, PK__ORDER_FIELDS, &f) == 0) {
        if (pk_codec_u64(&f[0], UINT32_MAX, &schema) != 0 || schema != PK__ORDER_SCHEMA ||
            pk_codec_u64(&f[25], id_max, &o->o_prev_id) != 0)
            goto fail;
    } else if (pk_codec_array(&up.data, PK__ORDER_FIELDS_V1, &f) != 0 ||
               pk_codec_u64(&f[0], UINT32_MAX, &schema) != 0 || schema != 1) {
        goto fail;
    }
    if (pk_codec_u64(&f[1], id_max, &o->o_id) != 0 || pk_codec_u64(&f[2], id_max, &o->o_user_id) != 0 ||
        pk_codec_u64(&f[3], id_max, &o->o_sale_id) != 0 || pk__u8(&f[4], PK_ORDER_STATUS_COUNT - 1, &o->o_status) != 0 ||
        pk_codec_i64(&f[5], &o->o_total) != 0 || pk_codec_i64(&f[6], &o->o_created_ms) != 0 ||
        pk_codec_i64(&f[7], &o->o_expires_ms) != 0 || pk_codec_i64(&f[8], &o->o_updated_ms) != 0)
        goto fail;
    /* A chain only points to older orders: walks always end. */
    if (o->o_prev_id >= o->o_id && o->o_prev_id != 0)
        goto fail;
    if (f[9].type != MSGPACK_OBJECT_ARRAY || f[9].via.array.size == 0 || f[9].via.array.size > PK_ORDER_ITEMS_MAX)
        goto fail;
    o->o_nitems = (uint8_t)f[9].via.array.size;
    for (unsigned i = 0; i < o->o_nitems; i++) {
        pk_order_item_t *item = &o->o_items[i];
        if (pk_codec_array(&f[9].via.array.ptr[i], 4, &it) != 0 || pk_codec_u64(&it[0], id_max, &item->oi_product_id) != 0 ||
            pk_codec_u64(&it[1], id_max, &item->oi_seller_id) != 0 || pk_codec_i64(&it[2], &item->oi_quantity) != 0 ||
            pk_codec_i64(&it[3], &item->oi_unit_price) != 0 || item->oi_quantity <= 0 || item->oi_unit_price < 0)
            goto fail;
    }
    if (pk_codec_u64(&f[10], 1, &present) != 0)
        goto fail;
    sh->sh_present = present != 0;
    if (pk__str16(&f[11], 0, PK_SHIP_RECIPIENT_BYTES_MAX, sh->sh_recipient, &sh->sh_recipient_len) != 0 ||
        pk__str16(&f[12], 0, PK_SHIP_ADDRESS_BYTES_MAX, sh->sh_address, &sh->sh_address_len) != 0 ||
        pk__str16(&f[13], 0, PK_SHIP_PHONE_BYTES_MAX, sh->sh_phone, &sh->sh_phone_len) != 0)
        goto fail;
    if (pk_codec_u64(&f[14], id_max, &pa->pa_id) != 0 || pk_codec_i64(&f[15], &pa->pa_amount) != 0 ||
        pk__u8(&f[16], PK_PAY_METHOD_COUNT - 1, &pa->pa_method) != 0 ||
        pk__u8(&f[17], PK_PAYMENT_REFUNDED, &pa->pa_status) != 0 || pk_codec_i64(&f[18], &pa->pa_paid_ms) != 0 ||
        pk_codec_i64(&f[19], &pa->pa_refunded_ms) != 0)
        goto fail;
    if (pk_codec_u64(&f[20], id_max, &de->de_id) != 0 || pk__u8(&f[21], PK_DELIVERY_CANCELLED, &de->de_status) != 0 ||
        pk__str16(&f[22], 0, PK_CARRIER_BYTES_MAX, de->de_carrier, &de->de_carrier_len) != 0 ||
        pk__str16(&f[23], 0, PK_TRACKING_BYTES_MAX, de->de_tracking, &de->de_tracking_len) != 0)
        goto fail;
    if (pk_codec_array(&f[24], PK_ARRAY_LEN(de->de_at_ms), &it) != 0)
        goto fail;
    for (unsigned i = 0; i < PK_ARRAY_LEN(de->de_at_ms); i++)
        if (pk_codec_i64(&it[i], &de->de_at_ms[i]) != 0)
            goto fail;
    /* A placing order learns its other shards' prices at confirmation. */
    int64_t total;
    if (o->o_status != PK_ORDER_PLACING &&
        (pk_order_total(o->o_items, o->o_nitems, &total) != 0 || total != o->o_total))
        goto fail;
    rc = 0;
fail:
    msgpack_unpacked_destroy(&up);
    return rc;
}

/* ---- documents ---- */

static void pk__shipping_render(const pk_shipping_t *sh, pk_out_t *out)
{
    if (!sh->sh_present) {
        pk_out_null(out);
        return;
    }
    pk_out_map(out, 3);
    pk_out_key(out, "recipient");
    pk_out_str(out, sh->sh_recipient, sh->sh_recipient_len);
    pk_out_key(out, "address");
    pk_out_str(out, sh->sh_address, sh->sh_address_len);
    pk_out_key(out, "phone");
    pk_out_str(out, sh->sh_phone, sh->sh_phone_len);
    pk_out_end(out);
}

static void pk__time_or_null(pk_out_t *out, int64_t ms)
{
    if (ms == 0)
        pk_out_null(out);
    else
        pk_out_time(out, ms);
}

void pk_payment_render(const pk_order_t *o, pk_out_t *out)
{
    const pk_payment_t *pa = &o->o_payment;
    if (pa->pa_id == 0) {
        pk_out_null(out);
        return;
    }
    pk_out_map(out, 6);
    pk_out_key(out, "payment_id");
    pk_out_u64(out, pa->pa_id);
    pk_out_key(out, "amount");
    pk_out_i64(out, pa->pa_amount);
    pk_out_key(out, "method");
    pk_out_cstr(out, pk_pay_method_name(pa->pa_method));
    pk_out_key(out, "status");
    pk_out_cstr(out, pa->pa_status == PK_PAYMENT_REFUNDED ? "refunded" : "completed");
    pk_out_key(out, "paid_at");
    pk_out_time(out, pa->pa_paid_ms);
    pk_out_key(out, "refunded_at");
    pk__time_or_null(out, pa->pa_refunded_ms);
    pk_out_end(out);
}

void pk_payment_failed_render(const pk_order_t *o, pk_out_t *out)
{
    const pk_payment_t *pa = &o->o_payment;
    pk_out_map(out, 7);
    pk_out_key(out, "payment_id");
    pk_out_u64(out, pa->pa_id);
    pk_out_key(out, "order_id");
    pk_out_u64(out, o->o_id);
    pk_out_key(out, "amount");
    pk_out_i64(out, pa->pa_amount);
    pk_out_key(out, "method");
    pk_out_cstr(out, pk_pay_method_name(pa->pa_method));
    pk_out_key(out, "status");
    pk_out_cstr(out, "failed");
    pk_out_key(out, "paid_at");
    pk_out_null(out);
    pk_out_key(out, "refunded_at");
    pk_out_null(out);
    pk_out_end(out);
}

void pk_delivery_render(const pk_order_t *o, pk_out_t *out)
{
    const pk_delivery_t *de = &o->o_delivery;
    if (de->de_id == 0) {
        pk_out_null(out);
        return;
    }
    unsigned steps = 0;
    for (unsigned i = PK_DELIVERY_PENDING; i < PK_ARRAY_LEN(de->de_at_ms); i++)
        steps += de->de_at_ms[i] != 0;
    pk_out_map(out, 7);
    pk_out_key(out, "delivery_id");
    pk_out_u64(out, de->de_id);
    pk_out_key(out, "order_id");
    pk_out_u64(out, o->o_id);
    pk_out_key(out, "status");
    pk_out_cstr(out, pk_delivery_status_name(de->de_status));
    pk_out_key(out, "carrier");
    if (de->de_carrier_len > 0)
        pk_out_str(out, de->de_carrier, de->de_carrier_len);
    else
        pk_out_null(out);
    pk_out_key(out, "tracking_number");
    if (de->de_tracking_len > 0)
        pk_out_str(out, de->de_tracking, de->de_tracking_len);
    else
        pk_out_null(out);
    pk_out_key(out, "shipping");
    pk__shipping_render(&o->o_shipping, out);
    pk_out_key(out, "history");
    pk_out_array(out, steps);
    for (unsigned i = PK_DELIVERY_PENDING; i < PK_ARRAY_LEN(de->de_at_ms); i++) {
        if (de->de_at_ms[i] == 0)
            continue;
        pk_out_map(out, 2);
        pk_out_key(out, "status");
        pk_out_cstr(out, pk_delivery_status_name((pk_delivery_status_t)i));
        pk_out_key(out, "at");
        pk_out_time(out, de->de_at_ms[i]);
        pk_out_end(out);
    }
    pk_out_end(out);
    pk_out_end(out);
}

void pk_order_render(const pk_order_t *o, pk_out_t *out)
{
    pk_out_map(out, 12);
    pk_out_key(out, "order_id");
    pk_out_u64(out, o->o_id);
    pk_out_key(out, "user_id");
    pk_out_u64(out, o->o_user_id);
    pk_out_key(out, "status");
    pk_out_cstr(out, pk_order_status_name(o->o_status));
    pk_out_key(out, "items");
    pk_out_array(out, o->o_nitems);
    for (unsigned i = 0; i < o->o_nitems; i++) {
        const pk_order_item_t *it = &o->o_items[i];
        pk_out_map(out, 4);
        pk_out_key(out, "product_id");
        pk_out_u64(out, it->oi_product_id);
        pk_out_key(out, "quantity");
        pk_out_i64(out, it->oi_quantity);
        pk_out_key(out, "unit_price");
        pk_out_i64(out, it->oi_unit_price);
        pk_out_key(out, "line_total");
        pk_out_i64(out, it->oi_quantity * it->oi_unit_price);
        pk_out_end(out);
    }
    pk_out_end(out);
    pk_out_key(out, "sale_id");
    if (o->o_sale_id != 0)
        pk_out_u64(out, o->o_sale_id);
    else
        pk_out_null(out);
    pk_out_key(out, "total");
    pk_out_i64(out, o->o_total);
    pk_out_key(out, "shipping");
    pk__shipping_render(&o->o_shipping, out);
    pk_out_key(out, "created_at");
    pk_out_time(out, o->o_created_ms);
    pk_out_key(out, "expires_at");
    pk_out_time(out, o->o_expires_ms);
    pk_out_key(out, "updated_at");
    pk_out_time(out, o->o_updated_ms);
    pk_out_key(out, "payment");
    pk_payment_render(o, out);
    pk_out_key(out, "delivery");
    pk_delivery_render(o, out);
    pk_out_end(out);
}
