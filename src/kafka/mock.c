/* The development broker: librdkafka's mock cluster, one broker on loopback. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickple/kafka.h"
#include "pickple/log.h"

#define PK__MOCK_BROKER_ID 1

struct pk_kafka_mock {
    rd_kafka_t *km_rk; /* hosts the cluster; never used as a client */
    rd_kafka_mock_cluster_t *km_cluster;
    char km_bootstraps[128];
};

int pk_kafka_mock_start(pk_kafka_mock_t **out, const char *prefix, unsigned partitions)
{
    char errstr[256], topic[256];
    pk_kafka_mock_t *m = calloc(1, sizeof(*m));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (m == NULL || conf == NULL)
        goto fail_nomem;
    /* The hosting handle logs only real trouble; it never connects. */
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        goto fail_conf;
    m->km_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (m->km_rk == NULL)
        goto fail_conf;
    conf = NULL; /* owned by km_rk now */
    m->km_cluster = rd_kafka_mock_cluster_new(m->km_rk, 1);
    if (m->km_cluster == NULL) {
        pk_log_error("kafka: cannot start the development broker (mock cluster)");
        goto fail;
    }
    snprintf(m->km_bootstraps, sizeof(m->km_bootstraps), "%s", rd_kafka_mock_cluster_bootstraps(m->km_cluster));
    for (unsigned i = 0; i < PK_KAFKA_TOPIC_COUNT; i++) {
        snprintf(topic, sizeof(topic), "%s.%s", prefix, pk_kafka_topics[i]);
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(m->km_cluster, topic, (int)partitions, 1);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            pk_log_error("kafka: development broker cannot create topic %s: %s", topic, rd_kafka_err2str(err));
            goto fail;
        }
    }
    *out = m;
    return 0;

fail_conf:
    pk_log_error("kafka: development broker: %s", errstr);
fail:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    pk_kafka_mock_stop(m);
    return -EIO;
fail_nomem:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    free(m);
    return -ENOMEM;
}

const char *pk_kafka_mock_bootstraps(const pk_kafka_mock_t *m)
{
    return m->km_bootstraps;
}

int pk_kafka_mock_set_up(pk_kafka_mock_t *m, bool up)
{
    rd_kafka_resp_err_t err = up ? rd_kafka_mock_broker_set_up(m->km_cluster, PK__MOCK_BROKER_ID)
                                 : rd_kafka_mock_broker_set_down(m->km_cluster, PK__MOCK_BROKER_ID);
    return err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -EIO;
}

void pk_kafka_mock_inject_fatal(pk_kafka_mock_t *m)
{
    /* ApiKey 0 is Produce.  An idempotent producer cannot continue with a
     * fenced epoch: librdkafka raises RD_KAFKA_RESP_ERR__FATAL. */
    rd_kafka_mock_push_request_errors(m->km_cluster, 0, 1, RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH);
}

void pk_kafka_mock_stop(pk_kafka_mock_t *m)
{
    if (m == NULL)
        return;
    if (m->km_cluster != NULL)
        rd_kafka_mock_cluster_destroy(m->km_cluster);
    if (m->km_rk != NULL)
        rd_kafka_destroy(m->km_rk);
    free(m);
}
