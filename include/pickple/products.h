/*
 * Product operations a shard applies; the product's shard is id % nshards
 * (creation runs on the receiving thread's own shard).
 */
#ifndef PICKPLE_PRODUCTS_H
#define PICKPLE_PRODUCTS_H

#include "pickple/actor.h"

extern const pk_op_t pk_op_product_create; /* mp_product -> 201 */
extern const pk_op_t pk_op_product_get;    /* mp_product.p_id -> 200 | 404 */
extern const pk_op_t pk_op_product_patch;  /* p_id, mp_fields -> 200 | 403 | 404 */
extern const pk_op_t pk_op_product_stock;  /* p_id, mp_delta -> 200 | 403 | 404 | 409 */
extern const pk_op_t pk_op_product_list;   /* u.list -> this shard's part of a page */

/* Reads product id: 0, PK_ENOTFOUND or PK_ESTORE (corrupt). */
int pk_products_read(pk_store_t *st, MDB_txn *txn, uint64_t id, pk_product_t *p) PK_MUST_USE;
/* Writes p and appends its event of type (none when NULL); asserts the
 * product invariant.  Returns 0 or PK_ESTORE. */
int pk_products_write(pk_store_t *st, MDB_txn *txn, const pk_product_t *p, const char *type, int64_t now_ms)
    PK_MUST_USE;

/*
 * Lists records of tbl with id > ml_after for a page: renders up to
 * ml_limit + 1 of them with render (returns 1 when it rendered the record,
 * 0 to skip it, PK_ESTORE on a corrupt record).  Shared by every list op.
 */
int pk_store_list_page(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, pk_msg_t *msg,
                       int (*render)(const MDB_val *val, pk_msg_t *msg, pk_out_t *o)) PK_MUST_USE;

/*
 * Same over a pair index (hi, id) -> "": the ids under hi above ml_after,
 * each rendered by render from its own table.
 */
int pk_store_index_page(pk_store_t *st, MDB_txn *txn, pk_table_t index, uint64_t hi, pk_msg_t *msg,
                        int (*render)(pk_store_t *st, MDB_txn *txn, uint64_t id, pk_msg_t *msg, pk_out_t *o))
    PK_MUST_USE;

#endif
