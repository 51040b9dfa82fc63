/* Shared between the publisher (publisher.c), the actors' side (outbox.c)
 * and topics.c.  Not a public header. */
#ifndef PICKPLE_KAFKA_INTERNAL_H
#define PICKPLE_KAFKA_INTERNAL_H

#include <ck_pr.h>
#include <librdkafka/rdkafka.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>

#include "pickple/kafka.h"
#include "pickple/mbox.h"
#include "pickple/store.h"

/*
 * One shard's mirroring state.  Fields are grouped by writer, each group on
 * its own cache line; cross-thread fields are written with ck_pr stores and
 * read with ck_pr loads (see the comments at each use for the ordering).
 */
typedef struct pk__kafka_shard {
    /* Written by the owner actor, read by the publisher and metrics. */
    uint64_t ks_committed_next __attribute__((aligned(PK_CACHE_LINE))); /* outbox next, committed */
    uint64_t ks_first_row; /* oldest outbox row on disk (after the last trim) */
    /* Owner actor only. */
    uint64_t ks_persisted;  /* cursor stored in "outbox.acked" */
    uint64_t ks_staged_acked; /* a trim's results, kept if its batch commits */
    uint64_t ks_staged_first;
    bool ks_staged_more;
    bool ks_trim_more;      /* acknowledged rows remain to delete */
    bool ks_trim_pending;   /* a trim message is queued */
    /* Written by the publisher, read by the owner actor and metrics. */
    uint64_t ks_acked __attribute__((aligned(PK_CACHE_LINE))); /* contiguous delivered prefix */
    uint64_t ks_delivered;
    /* Publisher only. */
    uint64_t ks_next __attribute__((aligned(PK_CACHE_LINE))); /* next seq to produce */
    uint64_t ks_stuck_seq; /* an event that cannot be sent (logged once) */
    uint8_t *ks_done;   /* delivered flags of in-flight seqs, by seq % PK_KAFKA_INFLIGHT_MAX */
    MDB_txn *ks_rtxn;   /* read transaction, reset between reads */
    pk_store_t *ks_store; /* env and dbi handles only: immutable after open */
} pk__kafka_shard_t;

/* Extra librdkafka settings from --kafka-config-file (src/kafka/settings.c). */
#define PK_KAFKA_SETTINGS_MAX 64
#define PK_KAFKA_SETTING_LINE_MAX 4096

typedef struct pk_kafka_settings {
    unsigned kx_count;
    char *kx_key[PK_KAFKA_SETTINGS_MAX];
    char *kx_value[PK_KAFKA_SETTINGS_MAX];
    unsigned kx_line[PK_KAFKA_SETTINGS_MAX];
} pk_kafka_settings_t;

/* Reads path.  0, or a negative error with a message naming the file, line
 * and key in err (unreadable file, malformed line, a key pickple sets
 * itself, more than PK_KAFKA_SETTINGS_MAX settings). */
int pk_kafka_settings_load(pk_kafka_settings_t *s, const char *path, char *err, size_t err_size) PK_MUST_USE;
/* Sets every setting on conf; the first librdkafka refuses is -EINVAL with
 * its reason in err. */
int pk_kafka_settings_apply(const pk_kafka_settings_t *s, const char *path, rd_kafka_conf_t *conf, char *err,
                            size_t err_size) PK_MUST_USE;
void pk_kafka_settings_free(pk_kafka_settings_t *s);

struct pk_kafka {
    struct pk_runtime *k_rt;
    unsigned k_nshards;
    pk__kafka_shard_t *k_shards;
    char k_brokers[1024];
    char k_prefix[128];
    unsigned k_partitions;
    pk_kafka_settings_t k_settings; /* from --kafka-config-file */
    const char *k_settings_path;
    bool k_create_topics;     /* a real cluster: try CreateTopics once */
    pk_kafka_mock_t *k_mock;  /* the embedded broker, or NULL */
    pthread_t k_thread;
    bool k_thread_started;
    unsigned k_stop;          /* atomic: set once by pk_kafka_stop */
    uint64_t k_restarts;      /* atomic: producers recreated */
    /* Actors kick it on new events; its eventfd is one of the publisher's
     * two wake-up sources (librdkafka's queue is the other). */
    pk_waker_t k_waker __attribute__((aligned(PK_CACHE_LINE)));

    /* Publisher thread only. */
    rd_kafka_t *k_rk __attribute__((aligned(PK_CACHE_LINE)));
    rd_kafka_topic_t *k_topics[PK_KAFKA_TOPIC_COUNT];
    int k_rk_fd[2];           /* pipe librdkafka writes when its queue fills */
    rd_kafka_queue_t *k_admin_q; /* CreateTopics answer awaited, or NULL */
    bool k_failed;            /* this producer must be replaced */
    bool k_discard_reports;   /* tearing down: ignore delivery reports */
    char k_fail_reason[512];
    unsigned k_backoff_ms;
    int64_t k_restart_at_ms;  /* create the next producer at (monotonic ms) */
    int64_t k_last_report_ms; /* last delivery report (monotonic ms) */
    int64_t k_next_log_ms;
    uint64_t k_logged_backlog;
};

rd_kafka_queue_t *pk__kafka_create_topics(rd_kafka_t *rk, const char *prefix, unsigned partitions);
bool pk__kafka_topics_created(rd_kafka_queue_t *q, unsigned partitions);
/* Persists every shard's acknowledged seq (outbox.c); no actor may run. */
void pk__kafka_persist(pk_kafka_t *k);

#endif
