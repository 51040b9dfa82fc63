/* The simulated payment provider of the contract. */
#include "pickple/payment.h"

static pk_pay_outcome_t pk__sim_charge(uint64_t order_id, int64_t amount, pk_pay_method_t method)
{
    (void)order_id;
    (void)amount;
    return method == PK_PAY_TEST_DECLINE ? PK_PAY_DECLINED : PK_PAY_APPROVED;
}

static pk_pay_outcome_t pk__sim_refund(uint64_t payment_id, int64_t amount)
{
    (void)payment_id;
    (void)amount;
    return PK_PAY_APPROVED;
}

const pk_pay_provider_t pk_pay_simulated = {"simulated", pk__sim_charge, pk__sim_refund};
