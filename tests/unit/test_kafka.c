/*
 * Unit tests for the Kafka mirror's pure parts and its use of the outbox:
 * routing of every contract event type to its topic, outbox records read
 * back by pk_store_outbox_decode (all MessagePack string widths, schema 1
 * records of earlier builds), the value pk_kafka_event_value renders from
 * them (JSON bodies and every view of an order record), and the
 * cursor/trim rules of pk_store_outbox_trim (the cursor never moves back,
 * deletion is bounded per call, event ids are never reused after the
 * outbox was emptied, across a reopen).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickple/kafka.h"
#include "pickple/order.h"
#include "pickple/store.h"

#include "check.h"
#include "store_fixture.h"

static void test_routing(void)
{
    static const struct {
        const char *type;
        const char *topic;
    } cases[] = {
        {"user.registered", "users"},          {"user.role_changed", "users"},
        {"product.created", "products"},       {"product.updated", "products"},
        {"stock.adjusted", "products"},        {"sale.created", "sales"},
        {"sale.sold_out", "sales"},            {"sale.ended", "sales"},
        {"order.placed", "orders"},            {"order.paid", "orders"},
        {"order.cancelled", "orders"},         {"order.expired", "orders"},
        {"order.shipped", "orders"},           {"order.delivered", "orders"},
        {"payment.completed", "payments"},     {"payment.failed", "payments"},
        {"payment.refunded", "payments"},      {"delivery.created", "deliveries"},
        {"delivery.shipped", "deliveries"},    {"delivery.completed", "deliveries"},
        {"notification.created", "notifications"},
    };
    for (size_t i = 0; i < PK_ARRAY_LEN(cases); i++) {
        int t = pk_kafka_topic_of_type(cases[i].type, strlen(cases[i].type));
        CHECK(t >= 0 && t < PK_KAFKA_TOPIC_COUNT && strcmp(pk_kafka_topics[t], cases[i].topic) == 0);
    }
    CHECK(pk_kafka_topic_of_type("users.registered", 16) == -1);
    CHECK(pk_kafka_topic_of_type("use.registered", 14) == -1);
    CHECK(pk_kafka_topic_of_type("refund.done", 11) == -1);
    CHECK(pk_kafka_topic_of_type("", 0) == -1);
    /* Only type_len bytes count. */
    CHECK(pk_kafka_topic_of_type("sale.ended", 4) == 2);
}

/* Appends count events (data of data_len bytes) in one transaction. */
static void append(pk_store_t *st, unsigned count, size_t data_len)
{
    MDB_txn *txn;
    char *data = malloc(data_len + 3);
    data[0] = '"';
    memset(data + 1, 'x', data_len - 2);
    data[data_len - 1] = '"';
    CHECK_RC(pk_store_begin(st, false, &txn), 0);
    for (unsigned i = 0; i < count; i++)
        CHECK_RC(pk_store_outbox_append(st, txn, "product.created", 4242 + i, 1700000000000, PK_EVENT_JSON, data,
                                        data_len),
                 0);
    CHECK_RC(pk_store_commit(st, txn), 0);
    free(data);
}

static void test_decode(pk_store_t *st)
{
    static const size_t sizes[] = {2, 100, 300, 70000}; /* fixstr..str32 values */
    MDB_txn *txn;
    MDB_val rec;
    uint64_t first = st->st_outbox_next;
    for (size_t i = 0; i < PK_ARRAY_LEN(sizes); i++)
        append(st, 1, sizes[i]);
    CHECK_RC(pk_store_begin(st, true, &txn), 0);
    for (size_t i = 0; i < PK_ARRAY_LEN(sizes); i++) {
        pk_outbox_event_t ev;
        char want[160];
        CHECK_RC(pk_store_get_id(st, txn, PK_TBL_OUTBOX, first + i, &rec), 0);
        CHECK_RC(pk_store_outbox_decode(&rec, &ev), 0);
        CHECK(ev.oe_type_len == 15 && memcmp(ev.oe_type, "product.created", 15) == 0);
        CHECK(ev.oe_key_id == 4242);
        CHECK(ev.oe_schema == 2 && ev.oe_occurred_ms == 1700000000000 && ev.oe_body_kind == PK_EVENT_JSON);
        CHECK(ev.oe_body_len == sizes[i] && ev.oe_body[0] == '"' && ev.oe_body[sizes[i] - 1] == '"');
        pk_buf_t value = {0};
        CHECK_RC(pk_kafka_event_value(&ev, 0, first + i, &value), 0);
        snprintf(want, sizeof(want), "{\"event_id\":\"0-%llu\",\"type\":\"product.created\","
                 "\"occurred_at\":\"2023-11-14T22:13:20.000Z\",\"data\":\"",
                 (unsigned long long)(first + i));
        CHECK(value.b_len == strlen(want) + sizes[i] && strncmp(value.b_data, want, strlen(want)) == 0);
        CHECK(memcmp(value.b_data + strlen(want) - 1, ev.oe_body, ev.oe_body_len) == 0);
        CHECK(value.b_data[value.b_len - 1] == '}');
        pk_buf_free(&value);
        /* Every truncation is refused, never read past. */
        for (size_t cut = 0; cut < rec.mv_size; cut += cut < 64 ? 1 : 997) {
            MDB_val part = {cut, rec.mv_data};
            CHECK_RC(pk_store_outbox_decode(&part, &ev), PK_EFORMAT);
        }
    }
    /* Schema 1 (earlier builds): [1, type, key, the whole value]. */
    const uint8_t bad_schema[] = {0x94, 0x02, 0xa1, 'x', 0x01, 0xa2, '{', '}'};
    const uint8_t good[] = {0x94, 0x01, 0xa1, 'x', 0x01, 0xa2, '{', '}'};
    const uint8_t trailing[] = {0x94, 0x01, 0xa1, 'x', 0x01, 0xa2, '{', '}', 0x00};
    /* Schema 2 with an order kind must carry a bin, and no unknown kind. */
    const uint8_t str_order[] = {0x96, 0x02, 0xa1, 'x', 0x01, 0x05, 0x01, 0xa2, '{', '}'};
    const uint8_t bad_kind[] = {0x96, 0x02, 0xa1, 'x', 0x01, 0x05, 0x05, 0xc4, 0x00};
    pk_outbox_event_t ev;
    pk_buf_t value = {0};
    CHECK_RC(pk_store_outbox_decode(&(MDB_val){sizeof(bad_schema), (void *)bad_schema}, &ev), PK_EFORMAT);
    CHECK_RC(pk_store_outbox_decode(&(MDB_val){sizeof(good), (void *)good}, &ev), 0);
    CHECK_RC(pk_kafka_event_value(&ev, 0, 1, &value), 0);
    CHECK(value.b_len == 2 && memcmp(value.b_data, "{}", 2) == 0);
    pk_buf_free(&value);
    CHECK_RC(pk_store_outbox_decode(&(MDB_val){sizeof(trailing), (void *)trailing}, &ev), PK_EFORMAT);
    CHECK_RC(pk_store_outbox_decode(&(MDB_val){sizeof(str_order), (void *)str_order}, &ev), PK_EFORMAT);
    CHECK_RC(pk_store_outbox_decode(&(MDB_val){sizeof(bad_kind), (void *)bad_kind}, &ev), PK_EFORMAT);
    mdb_txn_abort(txn);
}

/* An order record stored as each order view renders, in the value, exactly
 * what the view renders of the order itself. */
static void test_order_views(pk_store_t *st)
{
    static const struct {
        pk_event_body_t kind;
        void (*view)(const pk_order_t *, pk_out_t *);
        const char *type;
    } views[] = {
        {PK_EVENT_ORDER, pk_order_render, "order.paid"},
        {PK_EVENT_PAYMENT, pk_payment_render, "payment.completed"},
        {PK_EVENT_PAYMENT_FAILED, pk_payment_failed_render, "payment.failed"},
        {PK_EVENT_DELIVERY, pk_delivery_render, "delivery.created"},
    };
    pk_order_t o = {.o_id = 77, .o_user_id = 5, .o_sale_id = 9, .o_status = PK_ORDER_PAID, .o_nitems = 1,
                    .o_total = 1998, .o_created_ms = 1700000000000, .o_expires_ms = 1700000300000,
                    .o_updated_ms = 1700000001000};
    o.o_items[0] = (pk_order_item_t){.oi_product_id = 3, .oi_seller_id = 2, .oi_quantity = 2, .oi_unit_price = 999};
    o.o_payment = (pk_payment_t){.pa_id = 11, .pa_amount = 1998, .pa_method = 0, .pa_status = PK_PAYMENT_COMPLETED,
                                 .pa_paid_ms = 1700000001000};
    o.o_delivery.de_id = 13;
    o.o_delivery.de_status = PK_DELIVERY_PENDING;
    o.o_delivery.de_at_ms[PK_DELIVERY_PENDING] = 1700000001000;
    pk_buf_t rec = {0};
    MDB_txn *txn;
    MDB_val val;
    uint64_t first = st->st_outbox_next;
    CHECK_RC(pk_order_encode(&o, &rec), 0);
    CHECK_RC(pk_store_begin(st, false, &txn), 0);
    for (size_t i = 0; i < PK_ARRAY_LEN(views); i++)
        CHECK_RC(pk_store_outbox_append(st, txn, views[i].type, 77, 1700000001000, views[i].kind, rec.b_data,
                                        rec.b_len),
                 0);
    CHECK_RC(pk_store_commit(st, txn), 0);
    CHECK_RC(pk_store_begin(st, true, &txn), 0);
    for (size_t i = 0; i < PK_ARRAY_LEN(views); i++) {
        pk_outbox_event_t ev;
        pk_buf_t value = {0}, data = {0};
        pk_out_t w;
        char want[128];
        CHECK_RC(pk_store_get_id(st, txn, PK_TBL_OUTBOX, first + i, &val), 0);
        CHECK_RC(pk_store_outbox_decode(&val, &ev), 0);
        CHECK(ev.oe_body_kind == views[i].kind && ev.oe_body_len == rec.b_len);
        CHECK_RC(pk_kafka_event_value(&ev, 3, first + i, &value), 0);
        pk_out_init(&w, PK_FMT_JSON);
        views[i].view(&o, &w);
        CHECK_RC(pk_out_finish(&w, &data), 0);
        int n = snprintf(want, sizeof(want),
                         "{\"event_id\":\"3-%llu\",\"type\":\"%s\",\"occurred_at\":\"2023-11-14T22:13:21.000Z\","
                         "\"data\":",
                         (unsigned long long)(first + i), views[i].type);
        CHECK(value.b_len == (size_t)n + data.b_len + 1 && memcmp(value.b_data, want, (size_t)n) == 0);
        CHECK(memcmp(value.b_data + n, data.b_data, data.b_len) == 0 && value.b_data[value.b_len - 1] == '}');
        if (views[i].kind == PK_EVENT_PAYMENT_FAILED)
            CHECK(strstr(value.b_data, "\"status\":\"failed\"") != NULL);
        pk_buf_free(&value);
        pk_buf_free(&data);
        /* A damaged order record is refused, not rendered. */
        ev.oe_body_len = 3;
        CHECK_RC(pk_kafka_event_value(&ev, 3, first + i, &value), PK_EFORMAT);
    }
    mdb_txn_abort(txn);
    pk_buf_free(&rec);
}

/* One trim in its own transaction; returns (first_left, more). */
static void trim(pk_store_t *st, uint64_t acked, unsigned rows_max, uint64_t *first, bool *more)
{
    MDB_txn *txn;
    CHECK_RC(pk_store_begin(st, false, &txn), 0);
    CHECK_RC(pk_store_outbox_trim(st, txn, acked, rows_max, first, more), 0);
    CHECK_RC(pk_store_commit(st, txn), 0);
}

static uint64_t cursor(pk_store_t *st)
{
    MDB_txn *txn;
    uint64_t c = 0;
    CHECK_RC(pk_store_begin(st, true, &txn), 0);
    CHECK_RC(pk_store_outbox_cursor(st, txn, &c), 0);
    mdb_txn_abort(txn);
    return c;
}

static void test_trim(pk_store_t *st, const char *dir)
{
    uint64_t first;
    bool more;
    uint64_t base = st->st_outbox_next - 1; /* events 1..base exist */
    append(st, 10, 2);
    uint64_t last = base + 10;
    CHECK(cursor(st) == 0);
    trim(st, base + 5, 3, &first, &more);
    CHECK(first == 4 && more);
    CHECK(cursor(st) == base + 5);
    /* An older acknowledgement never moves the cursor back. */
    trim(st, 2, 1000, &first, &more);
    CHECK(first == base + 6 && !more);
    CHECK(cursor(st) == base + 5);
    trim(st, last, 1000, &first, &more);
    CHECK(first == last + 1 && !more);
    CHECK(cursor(st) == last);
    /* Emptied outbox: the next event still gets a new id, also after a
     * reopen. */
    pk_store_close(st);
    CHECK_RC(fixture_open_store(st, dir), 0);
    CHECK(st->st_outbox_next == last + 1);
    CHECK(cursor(st) == last);
    append(st, 1, 2);
    MDB_txn *txn;
    MDB_val rec;
    CHECK_RC(pk_store_begin(st, true, &txn), 0);
    CHECK_RC(pk_store_get_id(st, txn, PK_TBL_OUTBOX, last + 1, &rec), 0);
    mdb_txn_abort(txn);
}

int main(void)
{
    char dir[] = "/tmp/pickple-test-kafka-XXXXXX";
    pk_store_t st;
    test_routing();
    if (fixture_open_tmp_store(&st, dir) != 0)
        return 1;
    test_decode(&st);
    test_order_views(&st);
    test_trim(&st, dir);
    fixture_close_store(&st, dir);
    return CHECK_DONE("test_kafka");
}
