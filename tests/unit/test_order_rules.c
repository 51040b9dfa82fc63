/* The order, delivery and sale-admission rules and the order record codec:
 * pure functions, no threads, no disk. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "pickple/notification.h"
#include "pickple/order.h"
#include "pickple/payment.h"
#include "pickple/sale.h"

static void test_status_machine(void)
{
    /* Every (status, event) pair: exactly the contract's steps exist. */
    static const struct {
        pk_order_status_t from;
        pk_order_event_t ev;
        int to;
    } allowed[] = {
        {PK_ORDER_PLACING, PK_OEV_CONFIRM, PK_ORDER_PENDING_PAYMENT},
        {PK_ORDER_PLACING, PK_OEV_FAIL, PK_ORDER_FAILED},
        {PK_ORDER_PENDING_PAYMENT, PK_OEV_PAY, PK_ORDER_PAID},
        {PK_ORDER_PENDING_PAYMENT, PK_OEV_EXPIRE, PK_ORDER_EXPIRED},
        {PK_ORDER_PENDING_PAYMENT, PK_OEV_CANCEL, PK_ORDER_CANCELLED},
        {PK_ORDER_PAID, PK_OEV_CANCEL, PK_ORDER_CANCELLED},
        {PK_ORDER_PAID, PK_OEV_SHIP, PK_ORDER_SHIPPED},
        {PK_ORDER_SHIPPED, PK_OEV_COMPLETE, PK_ORDER_DELIVERED},
    };
    for (int st = 0; st < PK_ORDER_STATUS_COUNT; st++) {
        for (int ev = PK_OEV_CONFIRM; ev <= PK_OEV_COMPLETE; ev++) {
            int want = -1;
            for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
                if ((int)allowed[i].from == st && (int)allowed[i].ev == ev)
                    want = allowed[i].to;
            CHECK(pk_order_step((pk_order_status_t)st, (pk_order_event_t)ev) == want);
        }
    }
    /* Units are held exactly by the statuses between placing and the end. */
    CHECK(pk_order_holds_units(PK_ORDER_PAID) && pk_order_holds_units(PK_ORDER_PLACING));
    CHECK(!pk_order_holds_units(PK_ORDER_EXPIRED) && !pk_order_holds_units(PK_ORDER_CANCELLED) &&
          !pk_order_holds_units(PK_ORDER_FAILED));
    CHECK(pk_order_status_parse("paid") == PK_ORDER_PAID);
    CHECK(pk_order_status_parse("placing") == -1 && pk_order_status_parse("failed") == -1);
    CHECK(pk_order_status_parse("") == -1);
}

static void test_pay_checks(void)
{
    pk_order_t o = {0};
    o.o_status = PK_ORDER_PENDING_PAYMENT;
    o.o_total = 500;
    o.o_expires_ms = 10000;
    CHECK(pk_order_pay_check(&o, 500, 9999) == PK_PAY_OK);
    CHECK(pk_order_pay_check(&o, 501, 9999) == PK_PAY_AMOUNT_MISMATCH);
    CHECK(pk_order_pay_check(&o, 500, 10000) == PK_PAY_EXPIRED); /* the deadline itself is too late */
    CHECK(pk_order_due(&o, 10000) && !pk_order_due(&o, 9999));
    o.o_status = PK_ORDER_SHIPPED;
    CHECK(pk_order_pay_check(&o, 500, 0) == PK_PAY_ALREADY_PAID);
    o.o_status = PK_ORDER_CANCELLED;
    CHECK(pk_order_pay_check(&o, 500, 0) == PK_PAY_CANCELLED);
    o.o_status = PK_ORDER_EXPIRED;
    CHECK(pk_order_pay_check(&o, 500, 0) == PK_PAY_EXPIRED);
    CHECK(!pk_order_due(&o, 20000)); /* expired already: not due again */
    o.o_status = PK_ORDER_PLACING;
    CHECK(pk_order_pay_check(&o, 500, 0) == PK_PAY_NOT_PAYABLE);
    CHECK(pk_pay_method_parse("card", 4) == PK_PAY_CARD);
    CHECK(pk_pay_method_parse("cardx", 5) == -1 && pk_pay_method_parse("car", 3) == -1);
    CHECK(pk_pay_simulated.pp_charge(1, 1, PK_PAY_TEST_DECLINE) == PK_PAY_DECLINED);
    CHECK(pk_pay_simulated.pp_charge(1, 1, PK_PAY_BANK_TRANSFER) == PK_PAY_APPROVED);
}

static void test_delivery_steps(void)
{
    CHECK(pk_delivery_step(PK_DELIVERY_PENDING, PK_OEV_SHIP) == PK_DELIVERY_IN_TRANSIT);
    CHECK(pk_delivery_step(PK_DELIVERY_IN_TRANSIT, PK_OEV_COMPLETE) == PK_DELIVERY_DELIVERED);
    CHECK(pk_delivery_step(PK_DELIVERY_PENDING, PK_OEV_COMPLETE) == -1);
    CHECK(pk_delivery_step(PK_DELIVERY_IN_TRANSIT, PK_OEV_SHIP) == -1);
    CHECK(pk_delivery_step(PK_DELIVERY_DELIVERED, PK_OEV_COMPLETE) == -1);
    CHECK(pk_delivery_step(PK_DELIVERY_PENDING, PK_OEV_CANCEL) == PK_DELIVERY_CANCELLED);
    CHECK(pk_delivery_step(PK_DELIVERY_IN_TRANSIT, PK_OEV_CANCEL) == -1);
}

static void test_sale_admission(void)
{
    pk_sale_t s = {0};
    s.s_quantity = 10;
    s.s_remaining = 3;
    s.s_live = 7;
    s.s_per_user_limit = 2;
    s.s_starts_ms = 1000;
    s.s_ends_ms = 2000;
    CHECK(pk_sale_units_balanced(&s));
    CHECK(pk_sale_admit(&s, 999, 0, 1) == PK_ADMIT_NOT_STARTED);
    CHECK(pk_sale_admit(&s, 1000, 0, 1) == PK_ADMIT_OK);
    CHECK(pk_sale_admit(&s, 2000, 0, 1) == PK_ADMIT_ENDED);
    CHECK(pk_sale_admit(&s, 1500, 0, 2) == PK_ADMIT_OK);
    CHECK(pk_sale_admit(&s, 1500, 1, 2) == PK_ADMIT_LIMIT_EXCEEDED);
    CHECK(pk_sale_admit(&s, 1500, 2, 1) == PK_ADMIT_LIMIT_EXCEEDED);
    CHECK(pk_sale_admit(&s, 1500, 0, 4) == PK_ADMIT_SOLD_OUT); /* all or nothing */
    s.s_remaining = 0;
    s.s_live = 10;
    CHECK(pk_sale_admit(&s, 1500, 0, 1) == PK_ADMIT_SOLD_OUT);
    s.s_live = 9;
    CHECK(!pk_sale_units_balanced(&s));
}

static void test_totals(void)
{
    pk_order_item_t it[2] = {{1, 0, 3, 250}, {2, 0, 1000000000, 1000000000000ll}};
    int64_t total = -1;
    CHECK_RC(pk_order_total(it, 1, &total), 0);
    CHECK(total == 750);
    CHECK_RC(pk_order_total(it, 2, &total), -ERANGE); /* 10^21 overflows */
    it[1].oi_quantity = 9008;
    it[1].oi_unit_price = 1000000000000ll; /* 9.008e15 > 2^53 - 1 */
    CHECK_RC(pk_order_total(it, 2, &total), -ERANGE);
}

static void fill(pk_order_t *o)
{
    memset(o, 0, sizeof(*o));
    o->o_id = 42;
    o->o_user_id = 7;
    o->o_status = PK_ORDER_PAID;
    o->o_nitems = 2;
    o->o_items[0] = (pk_order_item_t){11, 3, 2, 100};
    o->o_items[1] = (pk_order_item_t){12, 3, 1, 55};
    o->o_total = 255;
    o->o_created_ms = 1000;
    o->o_expires_ms = 301000;
    o->o_updated_ms = 2000;
    o->o_shipping.sh_present = true;
    strcpy(o->o_shipping.sh_recipient, "Ada");
    o->o_shipping.sh_recipient_len = 3;
    strcpy(o->o_shipping.sh_address, "1 Main St");
    o->o_shipping.sh_address_len = 9;
    strcpy(o->o_shipping.sh_phone, "+1");
    o->o_shipping.sh_phone_len = 2;
    o->o_payment = (pk_payment_t){9, 255, PK_PAY_CARD, PK_PAYMENT_COMPLETED, 2000, 0};
    o->o_delivery.de_id = 8;
    o->o_delivery.de_status = PK_DELIVERY_PENDING;
    o->o_delivery.de_at_ms[PK_DELIVERY_PENDING] = 2000;
}

static void test_codec(void)
{
    pk_order_t o, back;
    pk_buf_t b = {0};
    fill(&o);
    CHECK_RC(pk_order_encode(&o, &b), 0);
    CHECK_RC(pk_order_decode(b.b_data, b.b_len, &back), 0);
    CHECK(memcmp(&o, &back, sizeof(o)) == 0);
    /* Every truncation is an error, never a crash. */
    for (size_t n = 0; n < b.b_len; n++)
        CHECK(pk_order_decode(b.b_data, n, &back) != 0);
    /* A flipped byte either fails or decodes to a valid record. */
    for (size_t i = 0; i < b.b_len; i++) {
        char saved = b.b_data[i];
        b.b_data[i] = (char)(saved ^ 0x5a);
        if (pk_order_decode(b.b_data, b.b_len, &back) == 0)
            CHECK(back.o_nitems >= 1 && back.o_nitems <= PK_ORDER_ITEMS_MAX);
        b.b_data[i] = saved;
    }
    pk_buf_free(&b);
    /* Chain pointers: kept, and only ever to an older order. */
    o.o_prev_id = 41;
    CHECK_RC(pk_order_encode(&o, &b), 0);
    CHECK_RC(pk_order_decode(b.b_data, b.b_len, &back), 0);
    CHECK(back.o_prev_id == 41);
    pk_buf_free(&b);
    o.o_prev_id = 42;
    CHECK_RC(pk_order_encode(&o, &b), 0);
    CHECK(pk_order_decode(b.b_data, b.b_len, &back) != 0);
    pk_buf_free(&b);
    /* A schema 1 record (25 fields, before chains) still decodes, with no
     * chain pointer: the schema 2 form minus its last field. */
    o.o_prev_id = 0;
    CHECK_RC(pk_order_encode(&o, &b), 0);
    CHECK((uint8_t)b.b_data[0] == 0xdc && b.b_data[1] == 0 && b.b_data[2] == 26 && b.b_data[3] == 2 &&
          b.b_data[b.b_len - 1] == 0);
    b.b_data[2] = 25;
    b.b_data[3] = 1;
    CHECK_RC(pk_order_decode(b.b_data, b.b_len - 1, &back), 0);
    CHECK(memcmp(&o, &back, sizeof(o)) == 0);
    /* ...but a 25-field record claiming schema 2 is not. */
    b.b_data[3] = 2;
    CHECK(pk_order_decode(b.b_data, b.b_len - 1, &back) != 0);
    pk_buf_free(&b);
    /* A total that does not match the items is a corrupt record. */
    o.o_total = 256;
    CHECK_RC(pk_order_encode(&o, &b), 0);
    CHECK(pk_order_decode(b.b_data, b.b_len, &back) != 0);
    pk_buf_free(&b);
}

static void test_notes(void)
{
    pk_order_t o;
    pk_note_t n, back;
    pk_buf_t b = {0};
    fill(&o);
    pk_note_compose(&n, PK_NOTE_ORDER_PAID, &o, 5000);
    CHECK(n.n_user_id == 7 && n.n_order_id == 42 && n.n_kind == PK_NOTE_ORDER_PAID);
    CHECK(strstr(n.n_subject, "42") != NULL && strstr(n.n_body, "255") != NULL);
    CHECK(n.n_subject_len == strlen(n.n_subject) && n.n_body_len == strlen(n.n_body));
    n.n_id = 3;
    CHECK_RC(pk_note_encode(&n, &b), 0);
    CHECK_RC(pk_note_decode(b.b_data, b.b_len, &back), 0);
    CHECK(back.n_id == 3 && back.n_body_len == n.n_body_len && memcmp(back.n_body, n.n_body, n.n_body_len) == 0);
    for (size_t k = 0; k < b.b_len; k++)
        CHECK(pk_note_decode(b.b_data, k, &back) != 0);
    pk_buf_free(&b);
}

int main(void)
{
    test_status_machine();
    test_pay_checks();
    test_delivery_steps();
    test_sale_admission();
    test_totals();
    test_codec();
    test_notes();
    return CHECK_DONE("test_order_rules");
}
