/*
 * Flash sales: the record, its window rules (pure, no I/O) and its stored
 * form.  A sale lives on its product's shard (its id is allocated there, so
 * sale_id % nshards == product_id % nshards).
 */
#ifndef PICKPLE_SALE_H
#define PICKPLE_SALE_H

#include <stdbool.h>
#include <stdint.h>

#include "pickple/common.h"
#include "pickple/out.h"

typedef enum pk_sale_state {
    PK_SALE_SCHEDULED = 0,
    PK_SALE_LIVE = 1,
    PK_SALE_SOLD_OUT = 2,
    PK_SALE_ENDED = 3,
} pk_sale_state_t;

typedef struct pk_sale {
    uint64_t s_id;
    uint64_t s_product_id;
    uint64_t s_seller_id;
    int64_t s_price;
    int64_t s_quantity;
    int64_t s_remaining; /* units not in live orders; 0 once settled */
    int64_t s_live;      /* units in live orders of this sale */
    int64_t s_returned;  /* units given back to the product's stock */
    int64_t s_per_user_limit;
    int64_t s_starts_ms;
    int64_t s_ends_ms;
    int64_t s_created_ms;
    bool s_settled; /* unsold units went back to the product's stock */
} pk_sale_t;

/* The state at now_ms: ended at or after ends_ms (or once settled),
 * scheduled before starts_ms, sold out with nothing remaining, else live. */
pk_sale_state_t pk_sale_state(const pk_sale_t *s, int64_t now_ms);

/* The sale's invariant: remaining + live + returned == quantity. */
bool pk_sale_units_balanced(const pk_sale_t *s);

/* Why a sale order is refused (pk_sale_admit). */
typedef enum pk_sale_admit {
    PK_ADMIT_OK = 0,
    PK_ADMIT_NOT_STARTED,
    PK_ADMIT_ENDED,
    PK_ADMIT_SOLD_OUT,       /* fewer units remain than asked for */
    PK_ADMIT_LIMIT_EXCEEDED, /* user_units + quantity > per_user_limit */
} pk_sale_admit_t;

/*
 * May a user who already holds user_units in live orders of s take quantity
 * more at now_ms?  Checks, in order: window, units remaining, the limit.
 */
pk_sale_admit_t pk_sale_admit(const pk_sale_t *s, int64_t now_ms, int64_t user_units, int64_t quantity);

const char *pk_sale_state_name(pk_sale_state_t st);
/* Returns the state for a name, or -1. */
int pk_sale_state_parse(const char *name);

/*
 * Checks a new sale's window and amounts.  Returns NULL when valid, or the
 * name of the offending field with *why set to a static explanation.
 */
const char *pk_sale_validate(const pk_sale_t *s, int64_t now_ms, const char **why);

int pk_sale_encode(const pk_sale_t *s, pk_buf_t *out) PK_MUST_USE;
int pk_sale_decode(const void *data, size_t len, pk_sale_t *s) PK_MUST_USE;

/* The API's sale document at now_ms (an ended sale shows remaining 0). */
void pk_sale_render(const pk_sale_t *s, int64_t now_ms, pk_out_t *o);

#endif
