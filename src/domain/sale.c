/* Flash sales: window rules, stored form, rendering. */
#include <string.h>

#include "pickple/codec.h"
#include "pickple/product.h"
#include "pickple/sale.h"

static const char *const pk__sale_state_names[] = {"scheduled", "live", "sold_out", "ended"};

pk_sale_state_t pk_sale_state(const pk_sale_t *s, int64_t now_ms)
{
    if (s->s_settled || now_ms >= s->s_ends_ms)
        return PK_SALE_ENDED;
    if (now_ms < s->s_starts_ms)
        return PK_SALE_SCHEDULED;
    if (s->s_remaining == 0)
        return PK_SALE_SOLD_OUT;
    return PK_SALE_LIVE;
}

const char *pk_sale_state_name(pk_sale_state_t st)
{
    return (unsigned)st < PK_ARRAY_LEN(pk__sale_state_names) ? pk__sale_state_names[st] : "unknown";
}

int pk_sale_state_parse(const char *name)
{
    for (size_t i = 0; i < PK_ARRAY_LEN(pk__sale_state_names); i++)
        if (strcmp(name, pk__sale_state_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *pk_sale_validate(const pk_sale_t *s, int64_t now_ms, const char **why)
{
    if (s->s_price < 0 || s->s_price > PK_PRICE_MAX) {
        *why = "must be between 0 and 1000000000000";
        return "price";
    }
    if (s->s_quantity < 1 || s->s_quantity > PK_STOCK_MAX) {
        *why = "must be between 1 and 1000000000";
        return "quantity";
    }
    if (s->s_per_user_limit < 1 || s->s_per_user_limit > s->s_quantity) {
        *why = "must be between 1 and the sale's quantity";
        return "per_user_limit";
    }
    if (s->s_ends_ms <= s->s_starts_ms) {
        *why = "must be after starts_at";
        return "ends_at";
    }
    if (s->s_ends_ms <= now_ms) {
        *why = "must be in the future";
        return "ends_at";
    }
    return NULL;
}

bool pk_sale_units_balanced(const pk_sale_t *s)
{
    return s->s_remaining + s->s_live + s->s_returned == s->s_quantity;
}

pk_sale_admit_t pk_sale_admit(const pk_sale_t *s, int64_t now_ms, int64_t user_units, int64_t quantity)
{
    switch (pk_sale_state(s, now_ms)) {
    case PK_SALE_SCHEDULED:
        return PK_ADMIT_NOT_STARTED;
    case PK_SALE_ENDED:
        return PK_ADMIT_ENDED;
    case PK_SALE_SOLD_OUT:
        return PK_ADMIT_SOLD_OUT;
    case PK_SALE_LIVE:
        break;
    }
    if (quantity > s->s_remaining)
        return PK_ADMIT_SOLD_OUT;
    if (quantity > s->s_per_user_limit - user_units)
        return PK_ADMIT_LIMIT_EXCEEDED;
    return PK_ADMIT_OK;
}

enum { PK__SALE_SCHEMA = 1, PK__SALE_FIELDS = 14 };

int pk_sale_encode(const pk_sale_t *s, pk_buf_t *out)
{
    msgpack_packer pk;
    pk_codec_rec_t rec;
    pk_codec_rec_begin(&rec, &pk, out);
    msgpack_pack_array(&pk, PK__SALE_FIELDS);
    msgpack_pack_uint64(&pk, PK__SALE_SCHEMA);
    msgpack_pack_uint64(&pk, s->s_id);
    msgpack_pack_uint64(&pk, s->s_product_id);
    msgpack_pack_uint64(&pk, s->s_seller_id);
    msgpack_pack_int64(&pk, s->s_price);
    msgpack_pack_int64(&pk, s->s_quantity);
    msgpack_pack_int64(&pk, s->s_remaining);
    msgpack_pack_int64(&pk, s->s_per_user_limit);
    msgpack_pack_int64(&pk, s->s_starts_ms);
    msgpack_pack_int64(&pk, s->s_ends_ms);
    msgpack_pack_int64(&pk, s->s_created_ms);
    if (s->s_settled)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    msgpack_pack_int64(&pk, s->s_live);
    msgpack_pack_int64(&pk, s->s_returned);
    /* 0 only when the whole record fits; a short buffer is left as it was. */
    return pk_codec_rec_end(&rec);
}

int pk_sale_decode(const void *data, size_t len, pk_sale_t *s)
{
    msgpack_unpacked up;
    msgpack_object *f;
    uint64_t schema;
    int rc = pk_codec_unpack(data, len, &up);
    if (rc != 0)
        return rc;
    rc = PK_EFORMAT;
    if (pk_codec_array(&up.data, PK__SALE_FIELDS, &f) != 0)
        goto fail;
    if (pk_codec_u64(&f[0], UINT32_MAX, &schema) != 0 || schema != PK__SALE_SCHEMA)
        goto fail;
    if (pk_codec_u64(&f[1], (1ull << 53) - 1, &s->s_id) != 0 ||
        pk_codec_u64(&f[2], (1ull << 53) - 1, &s->s_product_id) != 0 ||
        pk_codec_u64(&f[3], (1ull << 53) - 1, &s->s_seller_id) != 0)
        goto fail;
    if (pk_codec_i64(&f[4], &s->s_price) != 0 || pk_codec_i64(&f[5], &s->s_quantity) != 0 ||
        pk_codec_i64(&f[6], &s->s_remaining) != 0 || pk_codec_i64(&f[7], &s->s_per_user_limit) != 0 ||
        pk_codec_i64(&f[8], &s->s_starts_ms) != 0 || pk_codec_i64(&f[9], &s->s_ends_ms) != 0 ||
        pk_codec_i64(&f[10], &s->s_created_ms) != 0)
        goto fail;
    if (f[11].type != MSGPACK_OBJECT_BOOLEAN)
        goto fail;
    s->s_settled = f[11].via.boolean;
    if (pk_codec_i64(&f[12], &s->s_live) != 0 || pk_codec_i64(&f[13], &s->s_returned) != 0)
        goto fail;
    if (s->s_remaining < 0 || s->s_remaining > s->s_quantity || s->s_quantity < 1 || s->s_live < 0 ||
        s->s_returned < 0 || !pk_sale_units_balanced(s))
        goto fail;
    rc = 0;
fail:
    msgpack_unpacked_destroy(&up);
    return rc;
}

void pk_sale_render(const pk_sale_t *s, int64_t now_ms, pk_out_t *o)
{
    pk_sale_state_t st = pk_sale_state(s, now_ms);
    pk_out_map(o, 9);
    pk_out_key(o, "sale_id");
    pk_out_u64(o, s->s_id);
    pk_out_key(o, "product_id");
    pk_out_u64(o, s->s_product_id);
    pk_out_key(o, "price");
    pk_out_i64(o, s->s_price);
    pk_out_key(o, "quantity");
    pk_out_i64(o, s->s_quantity);
    pk_out_key(o, "remaining");
    pk_out_i64(o, st == PK_SALE_ENDED ? 0 : s->s_remaining);
    pk_out_key(o, "per_user_limit");
    pk_out_i64(o, s->s_per_user_limit);
    pk_out_key(o, "starts_at");
    pk_out_time(o, s->s_starts_ms);
    pk_out_key(o, "ends_at");
    pk_out_time(o, s->s_ends_ms);
    pk_out_key(o, "state");
    pk_out_cstr(o, pk_sale_state_name(st));
    pk_out_end(o);
}
