/*
 * Payment providers: the seam between the order logic and whoever moves the
 * money.  The order logic asks a provider to charge or refund and applies
 * the outcome; it never knows which provider it talks to.
 *
 * pickple ships one provider, the simulated one of the contract: `card` and
 * `bank_transfer` succeed, `test_decline` is declined.  It answers at once,
 * inside the order's transaction.  A real gateway answers later: its
 * adapter would record the attempt, return PK_PAY_PENDING, and confirm with
 * a message to the order's shard when the gateway calls back (the order
 * stays pending_payment meanwhile, and its deadline still applies).
 */
#ifndef PICKPLE_PAYMENT_H
#define PICKPLE_PAYMENT_H

#include <stdint.h>

#include "pickple/order.h"

typedef enum pk_pay_outcome {
    PK_PAY_APPROVED = 0,
    PK_PAY_DECLINED,
    PK_PAY_PENDING, /* asynchronous providers only */
} pk_pay_outcome_t;

typedef struct pk_pay_provider {
    const char *pp_name;
    /* Charges amount for order_id with method; returns the outcome. */
    pk_pay_outcome_t (*pp_charge)(uint64_t order_id, int64_t amount, pk_pay_method_t method);
    /* Refunds a completed payment; returns PK_PAY_APPROVED or declined. */
    pk_pay_outcome_t (*pp_refund)(uint64_t payment_id, int64_t amount);
} pk_pay_provider_t;

extern const pk_pay_provider_t pk_pay_simulated;

#endif
