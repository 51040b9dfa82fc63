/* Sale operations on the product's shard. */
#ifndef PICKPLE_SALES_H
#define PICKPLE_SALES_H

#include "pickple/actor.h"

extern const pk_op_t pk_op_sale_create; /* ms_sale -> 201 | 403 | 404 product_not_found | 409 insufficient_stock */
extern const pk_op_t pk_op_sale_get;    /* ms_sale.s_id -> 200 | 404 */
extern const pk_op_t pk_op_sale_list;   /* u.list, ml_filter = state or -1 */

#endif
