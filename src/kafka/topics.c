/* Topics: the contract's routing of event types, and creating the topics on
 * a cluster that allows it (Admin API CreateTopics). */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "pickple/kafka.h"
#include "pickple/log.h"
#include "kafka_internal.h"

const char *const pk_kafka_topics[PK_KAFKA_TOPIC_COUNT] = {
    "users", "products", "sales", "orders", "payments", "deliveries", "notifications",
};

/* Type prefix -> topic index ("Topic by event type" in the contract). */
static const struct {
    const char *tp_prefix;
    int tp_topic;
} pk__routes[] = {
    {"user", 0},  {"product", 1}, {"stock", 1},    {"sale", 2},
    {"order", 3}, {"payment", 4}, {"delivery", 5}, {"notification", 6},
};

int pk_kafka_topic_of_type(const char *type, size_t type_len)
{
    const char *dot = memchr(type, '.', type_len);
    size_t n = dot != NULL ? (size_t)(dot - type) : type_len;
    for (size_t i = 0; i < PK_ARRAY_LEN(pk__routes); i++) {
        if (strlen(pk__routes[i].tp_prefix) == n && memcmp(pk__routes[i].tp_prefix, type, n) == 0)
            return pk__routes[i].tp_topic;
    }
    return -1;
}

#define PK__CREATE_WAIT_MS 10000

/*
 * Asks the cluster to create every topic with `partitions` partitions and
 * the broker's default replication factor; the answer arrives on the
 * returned queue (NULL when the request could not be made, logged).
 * Producing does not wait for it: the producer does not auto-create topics
 * and holds events for a topic that does not exist yet for
 * topic.metadata.propagation.max.ms.
 */
rd_kafka_queue_t *pk__kafka_create_topics(rd_kafka_t *rk, const char *prefix, unsigned partitions)
{
    rd_kafka_NewTopic_t *topics[PK_KAFKA_TOPIC_COUNT] = {0};
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    char name[256], errstr[256] = "out of memory";
    size_t n = 0;
    if (q == NULL || opts == NULL)
        goto fail;
    if (rd_kafka_AdminOptions_set_request_timeout(opts, PK__CREATE_WAIT_MS, errstr, sizeof(errstr)) != 0)
        goto fail;
    for (; n < PK_KAFKA_TOPIC_COUNT; n++) {
        snprintf(name, sizeof(name), "%s.%s", prefix, pk_kafka_topics[n]);
        /* -1: the broker's default.replication.factor (KIP-464). */
        topics[n] = rd_kafka_NewTopic_new(name, (int)partitions, -1, errstr, sizeof(errstr));
        if (topics[n] == NULL)
            goto fail;
    }
    rd_kafka_CreateTopics(rk, topics, n, opts, q);
    goto out;
fail:
    pk_log_warn("kafka: cannot ask for the topics to be created: %s", errstr);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    q = NULL;
out:
    for (size_t i = 0; i < n; i++)
        rd_kafka_NewTopic_destroy(topics[i]);
    if (opts != NULL)
        rd_kafka_AdminOptions_destroy(opts);
    return q;
}

/* Logs the answer to pk__kafka_create_topics() if it arrived (returns true)
 * or returns false.  Topics that already exist are fine; a refusal (no
 * CreateTopics support, ACLs, policies) leaves creating them to an
 * operator. */
bool pk__kafka_topics_created(rd_kafka_queue_t *q, unsigned partitions)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 0);
    if (ev == NULL)
        return false;
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        pk_log_warn("kafka: cannot create the topics (%s); they must exist already "
                    "(pickple-kafka-dev creates them; see README, \"Kafka\")",
                    rd_kafka_event_error_string(ev));
    } else {
        size_t cnt = 0;
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
        for (size_t i = 0; i < cnt; i++) {
            rd_kafka_resp_err_t err = rd_kafka_topic_result_error(tr[i]);
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
                pk_log_info("kafka: created topic %s with %u partitions", rd_kafka_topic_result_name(tr[i]),
                            partitions);
            else if (err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                pk_log_warn("kafka: cannot create topic %s (%s); it must exist already (see README, \"Kafka\")",
                            rd_kafka_topic_result_name(tr[i]), rd_kafka_topic_result_error_string(tr[i]));
        }
    }
    rd_kafka_event_destroy(ev);
    return true;
}
