/* Sale operations on the product's shard. */
#ifndef PICKPLE_SALES_H
#define PICKPLE_SALES_H

#include "pickple/actor.h"

extern const pk_op_t pk_op_sale_create; /* ms_sale -> 201 | 403 | 404 product_not_found | 409 insufficient_stock */
extern const pk_op_t pk_op_sale_get;    /* ms_sale.s_id -> 200 | 404 */
extern const pk_op_t pk_op_sale_list;   /* u.list, ml_filter = state or -1 */

/* Reads sale id: 0, PK_ENOTFOUND or PK_ESTORE (corrupt). */
int pk_sales_read(pk_store_t *st, MDB_txn *txn, uint64_t id, pk_sale_t *s) PK_MUST_USE;
/* Writes s and appends its event of type (none when NULL); asserts the
 * sale invariant.  Returns 0 or PK_ESTORE. */
int pk_sales_write(pk_store_t *st, MDB_txn *txn, const pk_sale_t *s, const char *type, int64_t now_ms) PK_MUST_USE;

#endif
