/*
 * Orders, their payment and delivery: the record, the state machines and the
 * amount rules (pure, no I/O), the stored form and the API documents.
 *
 * Where an order lives: on its home shard (order_id % nshards).  A sale
 * order's home is its sale's shard (one hop, one transaction); a catalog
 * order's home is the shard of its first item, and items on other shards
 * are reserved there (src/store/reservations.c).  Its payment and delivery
 * are parts of the record; their ids are allocated on the home shard too,
 * so delivery_id % nshards finds the order's shard.
 *
 * Status machine (pk_order_step):
 *   placing -> pending_payment | failed          (internal, never shown)
 *   pending_payment -> paid | expired | cancelled
 *   paid -> shipped (delivery ships) | cancelled (delivery still pending)
 *   shipped -> delivered
 * Every step that ends a reservation (expired, cancelled, failed) is taken
 * exactly once, because the status it starts from is left for good.
 */
#ifndef PICKPLE_ORDER_H
#define PICKPLE_ORDER_H

#include <stdbool.h>
#include <stdint.h>

#include "pickple/common.h"
#include "pickple/out.h"

#define PK_ORDER_ITEMS_MAX 50
#define PK_SHIP_RECIPIENT_BYTES_MAX 200
#define PK_SHIP_ADDRESS_BYTES_MAX 500
#define PK_SHIP_PHONE_BYTES_MAX 40
#define PK_CARRIER_BYTES_MAX 100
#define PK_TRACKING_BYTES_MAX 100
#define PK_ORDER_TOTAL_MAX ((1ll << 53) - 1) /* totals stay exact in JSON */

typedef enum pk_order_status {
    PK_ORDER_PLACING = 0, /* catalog order reserving on other shards */
    PK_ORDER_PENDING_PAYMENT,
    PK_ORDER_PAID,
    PK_ORDER_SHIPPED,
    PK_ORDER_DELIVERED,
    PK_ORDER_EXPIRED,
    PK_ORDER_CANCELLED,
    PK_ORDER_FAILED, /* a reservation was refused; never shown */
    PK_ORDER_STATUS_COUNT,
} pk_order_status_t;

typedef enum pk_order_event {
    PK_OEV_CONFIRM = 0, /* every reservation made */
    PK_OEV_FAIL,        /* a reservation refused */
    PK_OEV_PAY,
    PK_OEV_EXPIRE,
    PK_OEV_CANCEL,
    PK_OEV_SHIP,
    PK_OEV_COMPLETE,
} pk_order_event_t;

typedef enum pk_delivery_status {
    PK_DELIVERY_NONE = 0,
    PK_DELIVERY_PENDING,
    PK_DELIVERY_IN_TRANSIT,
    PK_DELIVERY_DELIVERED,
    PK_DELIVERY_CANCELLED, /* its paid order was cancelled */
} pk_delivery_status_t;

typedef enum pk_pay_method {
    PK_PAY_CARD = 0,
    PK_PAY_BANK_TRANSFER,
    PK_PAY_TEST_DECLINE,
    PK_PAY_METHOD_COUNT,
} pk_pay_method_t;

typedef enum pk_payment_status {
    PK_PAYMENT_NONE = 0,
    PK_PAYMENT_COMPLETED,
    PK_PAYMENT_REFUNDED,
} pk_payment_status_t;

typedef struct pk_order_item {
    uint64_t oi_product_id;
    uint64_t oi_seller_id; /* who may ship it */
    int64_t oi_quantity;
    int64_t oi_unit_price;
} pk_order_item_t;

typedef struct pk_shipping {
    bool sh_present;
    uint16_t sh_recipient_len, sh_address_len, sh_phone_len;
    char sh_recipient[PK_SHIP_RECIPIENT_BYTES_MAX + 1];
    char sh_address[PK_SHIP_ADDRESS_BYTES_MAX + 1];
    char sh_phone[PK_SHIP_PHONE_BYTES_MAX + 1];
} pk_shipping_t;

typedef struct pk_payment {
    uint64_t pa_id; /* 0: no payment yet */
    int64_t pa_amount;
    uint8_t pa_method;  /* pk_pay_method_t */
    uint8_t pa_status;  /* pk_payment_status_t */
    int64_t pa_paid_ms;
    int64_t pa_refunded_ms;
} pk_payment_t;

typedef struct pk_delivery {
    uint64_t de_id; /* 0: no delivery yet */
    uint8_t de_status; /* pk_delivery_status_t */
    uint16_t de_carrier_len, de_tracking_len;
    char de_carrier[PK_CARRIER_BYTES_MAX + 1];
    char de_tracking[PK_TRACKING_BYTES_MAX + 1];
    int64_t de_at_ms[5]; /* when it entered each pk_delivery_status_t, 0 never */
} pk_delivery_t;

typedef struct pk_order {
    uint64_t o_id;
    uint64_t o_user_id;
    uint64_t o_sale_id; /* 0: a catalog order */
    uint8_t o_status;   /* pk_order_status_t */
    uint8_t o_nitems;
    int64_t o_total;
    int64_t o_created_ms;
    int64_t o_expires_ms;
    int64_t o_updated_ms;
    pk_order_item_t o_items[PK_ORDER_ITEMS_MAX];
    pk_shipping_t o_shipping;
    pk_payment_t o_payment;
    pk_delivery_t o_delivery;
    /* The same user's previous order in this shard's per-user chain
     * (src/store/orders.c, "per-user order index"), 0 for none. */
    uint64_t o_prev_id;
} pk_order_t;

const char *pk_order_status_name(pk_order_status_t st);
/* The status for a public name, or -1 (internal statuses have none). */
int pk_order_status_parse(const char *name);
/* True for the statuses an API client may see. */
bool pk_order_visible(const pk_order_t *o);
/* True while the order holds its units (placing, pending, paid, shipped,
 * delivered): the units it reserved are neither in stock nor in a sale. */
bool pk_order_holds_units(pk_order_status_t st);

/*
 * The status machine.  Returns the status after ev, or -1 when ev is not
 * allowed from st.  Pure: the caller applies the side effects.
 */
int pk_order_step(pk_order_status_t st, pk_order_event_t ev);

/* Why a payment attempt is refused, in the contract's order of checks. */
typedef enum pk_pay_check {
    PK_PAY_OK = 0,
    PK_PAY_ALREADY_PAID,
    PK_PAY_EXPIRED,   /* expired, or pending past its deadline */
    PK_PAY_CANCELLED,
    PK_PAY_NOT_PAYABLE, /* failed/placing: not a visible order */
    PK_PAY_AMOUNT_MISMATCH,
} pk_pay_check_t;

pk_pay_check_t pk_order_pay_check(const pk_order_t *o, int64_t amount, int64_t now_ms);
/* True when a pending order's deadline has passed at now_ms. */
bool pk_order_due(const pk_order_t *o, int64_t now_ms);

/* Delivery steps: pending -> in_transit -> delivered.  Returns the new
 * status or -1 (out of order). */
int pk_delivery_step(pk_delivery_status_t st, pk_order_event_t ev);
const char *pk_delivery_status_name(pk_delivery_status_t st);

const char *pk_pay_method_name(pk_pay_method_t m);
/* The method for a name, or -1. */
int pk_pay_method_parse(const char *s, size_t len);

/*
 * Sums quantity * unit_price over the items.  Returns 0 and sets *total, or
 * -ERANGE when the total would pass PK_ORDER_TOTAL_MAX.
 */
int pk_order_total(const pk_order_item_t *items, unsigned n, int64_t *total) PK_MUST_USE;

/* True when the shipping strings are within their limits and non-blank. */
bool pk_shipping_valid(const pk_shipping_t *sh, const char **field);

/* True when user (with role admin or not) may act as a seller of an item. */
bool pk_order_has_seller(const pk_order_t *o, uint64_t user_id);

/* Stored form: MessagePack array with a schema number first. */
int pk_order_encode(const pk_order_t *o, pk_buf_t *out) PK_MUST_USE;
int pk_order_decode(const void *data, size_t len, pk_order_t *o) PK_MUST_USE;

/* The API's documents. */
void pk_order_render(const pk_order_t *o, pk_out_t *o_out);
void pk_delivery_render(const pk_order_t *o, pk_out_t *out);
void pk_payment_render(const pk_order_t *o, pk_out_t *out);
/* The event of a declined attempt: o carries the attempt's payment id,
 * amount and method, with no payment completed. */
void pk_payment_failed_render(const pk_order_t *o, pk_out_t *out);

#endif
