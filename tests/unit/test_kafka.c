/*
 * Unit tests for the Kafka mirror's pure parts and its use of the outbox:
 * routing of every contract event type to its topic, outbox records read
 * back by pk_store_outbox_decode (all MessagePack string widths), and the
 * cursor/trim rules of pk_store_outbox_trim (the cursor never moves back,
 * deletion is bounded per call, event ids are never reused after the
 * outbox was emptied, across a reopen).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickple/kafka.h"
#include "pickple/store.h"

#include "check.h"

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

static int open_store(pk_store_t *st, const char *dir)
{
    unsigned nshards = 1;
    char err[256];
    if (pk_data_dir_init(dir, &nshards, err, sizeof(err)) != 0)
        return -1;
    return pk_store_open(st, dir, 0, 1, false, 64u << 20);
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
        CHECK_RC(pk_store_outbox_append(st, txn, "product.created", 4242 + i, 1700000000000, data, data_len), 0);
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
        char want[64];
        CHECK_RC(pk_store_get_id(st, txn, PK_TBL_OUTBOX, first + i, &rec), 0);
        CHECK_RC(pk_store_outbox_decode(&rec, &ev), 0);
        CHECK(ev.oe_type_len == 15 && memcmp(ev.oe_type, "product.created", 15) == 0);
        CHECK(ev.oe_key_id == 4242);
        snprintf(want, sizeof(want), "{\"event_id\":\"0-%llu\",\"type\":\"product.created\"",
                 (unsigned long long)(first + i));
        CHECK(ev.oe_value_len > sizes[i] && strncmp(ev.oe_value, want, strlen(want)) == 0);
        CHECK(ev.oe_value[ev.oe_value_len - 1] == '}');
        /* Every truncation is refused, never read past. */
        for (size_t cut = 0; cut < rec.mv_size; cut += cut < 64 ? 1 : 997) {
            MDB_val part = {cut, rec.mv_data};
            CHECK_RC(pk_store_outbox_decode(&part, &ev), PK_EFORMAT);
        }
    }
    const uint8_t bad_schema[] = {0x94, 0x02, 0xa1, 'x', 0x01, 0xa2, '{', '}'};
    const uint8_t good[] = {0x94, 0x01, 0xa1, 'x', 0x01, 0xa2, '{', '}'};
    const uint8_t trailing[] = {0x94, 0x01, 0xa1, 'x', 0x01, 0xa2, '{', '}', 0x00};
    pk_outbox_event_t ev;
    CHECK_RC(pk_store_outbox_decode(&(MDB_val){sizeof(bad_schema), (void *)bad_schema}, &ev), PK_EFORMAT);
    CHECK_RC(pk_store_outbox_decode(&(MDB_val){sizeof(good), (void *)good}, &ev), 0);
    CHECK_RC(pk_store_outbox_decode(&(MDB_val){sizeof(trailing), (void *)trailing}, &ev), PK_EFORMAT);
    mdb_txn_abort(txn);
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
    CHECK_RC(open_store(st, dir), 0);
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
    if (mkdtemp(dir) == NULL || open_store(&st, dir) != 0) {
        printf("FAIL cannot open a store in %s\n", dir);
        return 1;
    }
    test_decode(&st);
    test_trim(&st, dir);
    pk_store_close(&st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("(could not remove %s)\n", dir);
    return CHECK_DONE("test_kafka");
}
