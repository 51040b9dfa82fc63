/*
 * Products: the record, its rules (pure, no I/O) and its stored form.
 * A product lives on the shard id % nshards, where its id was allocated
 * (the shard of the thread that received the creating request).
 */
#ifndef PICKPLE_PRODUCT_H
#define PICKPLE_PRODUCT_H

#include <stdbool.h>
#include <stdint.h>

#include "pickple/common.h"
#include "pickple/out.h"

#define PK_PRODUCT_NAME_BYTES_MAX 200
#define PK_PRODUCT_DESCRIPTION_BYTES_MAX 2000
#define PK_PRICE_MAX 1000000000000ll /* minor units */
#define PK_STOCK_MAX 1000000000ll

typedef struct pk_product {
    uint64_t p_id;
    uint64_t p_seller_id;
    int64_t p_price;
    int64_t p_stock;       /* units available to regular orders now */
    int64_t p_added_total; /* all units ever added (invariant bookkeeping) */
    int64_t p_sale_units;  /* units held by unsettled sales (left or in orders) */
    int64_t p_order_units; /* units in live orders outside unsettled sales */
    int64_t p_created_ms;
    int64_t p_updated_ms;
    uint16_t p_name_len;
    uint16_t p_description_len;
    char p_name[PK_PRODUCT_NAME_BYTES_MAX + 1];
    char p_description[PK_PRODUCT_DESCRIPTION_BYTES_MAX + 1];
} pk_product_t;

/* 1..200 bytes, not only whitespace.  Strings are valid UTF-8 (the body
 * parser guarantees it). */
bool pk_product_name_valid(const char *s, size_t len);

/*
 * Stock arithmetic: stock + delta must stay within 0..PK_STOCK_MAX.
 * Returns 0 and sets *out, or PK_EINSUFFICIENT when it would go negative,
 * -ERANGE when it would pass the maximum.
 */
int pk_stock_apply(int64_t stock, int64_t delta, int64_t *out) PK_MUST_USE;

/* The product's invariant: stock + sale units + order units == added. */
bool pk_product_units_balanced(const pk_product_t *p);

/* Stored form: MessagePack array with a schema number first. */
int pk_product_encode(const pk_product_t *p, pk_buf_t *out) PK_MUST_USE;
int pk_product_decode(const void *data, size_t len, pk_product_t *p) PK_MUST_USE;

/* The API's product document. */
void pk_product_render(const pk_product_t *p, pk_out_t *o);

#endif
