/* Products: rules, stock arithmetic, stored form, rendering. */
#include <string.h>

#include "pickple/codec.h"
#include "pickple/product.h"

bool pk_product_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > PK_PRODUCT_NAME_BYTES_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return true;
    return false;
}

int pk_stock_apply(int64_t stock, int64_t delta, int64_t *out)
{
    if (delta < -PK_STOCK_MAX || delta > PK_STOCK_MAX)
        return -ERANGE;
    int64_t next = stock + delta;
    if (next < 0)
        return PK_EINSUFFICIENT;
    if (next > PK_STOCK_MAX)
        return -ERANGE;
    *out = next;
    return 0;
}

bool pk_product_units_balanced(const pk_product_t *p)
{
    return p->p_stock + p->p_sale_units + p->p_order_units == p->p_added_total;
}

enum { PK__PRODUCT_SCHEMA = 1, PK__PRODUCT_FIELDS = 12 };

int pk_product_encode(const pk_product_t *p, pk_buf_t *out)
{
    msgpack_packer pk;
    pk_codec_rec_t rec;
    pk_codec_rec_begin(&rec, &pk, out);
    msgpack_pack_array(&pk, PK__PRODUCT_FIELDS);
    msgpack_pack_uint64(&pk, PK__PRODUCT_SCHEMA);
    msgpack_pack_uint64(&pk, p->p_id);
    msgpack_pack_uint64(&pk, p->p_seller_id);
    msgpack_pack_int64(&pk, p->p_price);
    msgpack_pack_int64(&pk, p->p_stock);
    msgpack_pack_int64(&pk, p->p_added_total);
    msgpack_pack_int64(&pk, p->p_created_ms);
    msgpack_pack_int64(&pk, p->p_updated_ms);
    pk_codec_pack_str(&pk, p->p_name, p->p_name_len);
    pk_codec_pack_str(&pk, p->p_description, p->p_description_len);
    msgpack_pack_int64(&pk, p->p_sale_units);
    msgpack_pack_int64(&pk, p->p_order_units);
    /* 0 only when the whole record fits; a short buffer is left as it was. */
    return pk_codec_rec_end(&rec);
}

int pk_product_decode(const void *data, size_t len, pk_product_t *p)
{
    msgpack_unpacked up;
    msgpack_object *f;
    uint64_t schema;
    size_t n;
    int rc = pk_codec_unpack(data, len, &up);
    if (rc != 0)
        return rc;
    rc = PK_EFORMAT;
    if (pk_codec_array(&up.data, PK__PRODUCT_FIELDS, &f) != 0)
        goto fail;
    if (pk_codec_u64(&f[0], UINT32_MAX, &schema) != 0 || schema != PK__PRODUCT_SCHEMA)
        goto fail;
    if (pk_codec_u64(&f[1], (1ull << 53) - 1, &p->p_id) != 0 || pk_codec_u64(&f[2], (1ull << 53) - 1, &p->p_seller_id) != 0)
        goto fail;
    if (pk_codec_i64(&f[3], &p->p_price) != 0 || pk_codec_i64(&f[4], &p->p_stock) != 0 ||
        pk_codec_i64(&f[5], &p->p_added_total) != 0 || pk_codec_i64(&f[6], &p->p_created_ms) != 0 ||
        pk_codec_i64(&f[7], &p->p_updated_ms) != 0)
        goto fail;
    if (p->p_price < 0 || p->p_price > PK_PRICE_MAX || p->p_stock < 0 || p->p_stock > p->p_added_total)
        goto fail;
    if (pk_codec_str(&f[8], 1, PK_PRODUCT_NAME_BYTES_MAX, p->p_name, &n) != 0)
        goto fail;
    p->p_name_len = (uint16_t)n;
    if (pk_codec_str(&f[9], 0, PK_PRODUCT_DESCRIPTION_BYTES_MAX, p->p_description, &n) != 0)
        goto fail;
    p->p_description_len = (uint16_t)n;
    if (pk_codec_i64(&f[10], &p->p_sale_units) != 0 || pk_codec_i64(&f[11], &p->p_order_units) != 0 ||
        p->p_sale_units < 0 || p->p_order_units < 0 || !pk_product_units_balanced(p))
        goto fail;
    rc = 0;
fail:
    msgpack_unpacked_destroy(&up);
    return rc;
}

void pk_product_render(const pk_product_t *p, pk_out_t *o)
{
    pk_out_map(o, 8);
    pk_out_key(o, "product_id");
    pk_out_u64(o, p->p_id);
    pk_out_key(o, "seller_id");
    pk_out_u64(o, p->p_seller_id);
    pk_out_key(o, "name");
    pk_out_str(o, p->p_name, p->p_name_len);
    pk_out_key(o, "description");
    pk_out_str(o, p->p_description, p->p_description_len);
    pk_out_key(o, "price");
    pk_out_i64(o, p->p_price);
    pk_out_key(o, "stock");
    pk_out_i64(o, p->p_stock);
    pk_out_key(o, "created_at");
    pk_out_time(o, p->p_created_ms);
    pk_out_key(o, "updated_at");
    pk_out_time(o, p->p_updated_ms);
    pk_out_end(o);
}
