/*
 * Kafka mirroring of the shards' outboxes (../shared/api.md, "Events
 * mirrored to Kafka"), and the development broker.
 *
 * Every change writes its event into its shard's outbox (PK_TBL_OUTBOX, seq
 * -> record) in the change's own transaction.  One publisher thread per
 * process owns one idempotent librdkafka producer (enable.idempotence,
 * acks=all, no message timeout, gapless guarantee).  For each shard it:
 *
 *   1. reads the outbox from its "next to send" seq with its own short LMDB
 *      read transactions (the environments are opened with MDB_NOTLS),
 *   2. produces each event to <prefix>.<topic of the type's prefix>, key the
 *      aggregate id in decimal, value pk_kafka_event_value's JSON, header
 *      content-type: application/json, keeping at most
 *      PK_KAFKA_INFLIGHT_MAX events per shard in flight,
 *   3. advances the shard's "acknowledged up to" seq over the contiguous
 *      prefix of successful delivery reports only, and publishes it.
 *
 * The owning actor reads that seq on its 100 ms tick and, in its own write
 * transaction (an ordinary batch message, so one writer per environment),
 * persists it as the shard's cursor (meta "outbox.acked") and deletes
 * acknowledged rows in chunks of PK_KAFKA_TRIM_ROWS_MAX.  Actors tell the
 * publisher about new events by publishing their committed "outbox next"
 * and kicking its eventfd; nothing takes a lock and no actor ever waits for
 * Kafka.
 *
 * Failures: while brokers are unreachable events wait in librdkafka (which
 * reconnects with bounded backoff) up to the in-flight bound, then on disk.
 * A fatal producer error (rd_kafka_fatal_error) or any failed delivery
 * report destroys the producer and, after a backoff of 0.2 s doubling to
 * 10 s, creates a new one that resumes from the acknowledged seq: nothing is
 * skipped, and events sent again carry their event_id.
 *
 * Caveats:
 * - pk_kafka_committed() and pk_kafka_tick() run on a shard's owner thread
 *   only; pk_kafka_stop() only once no actor thread runs, before the stores
 *   close.
 * - The publisher never writes an environment.
 */
#ifndef PICKPLE_KAFKA_H
#define PICKPLE_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pickple/common.h"
#include "pickple/out.h"
#include "pickple/store.h"

#define PK_KAFKA_INFLIGHT_MAX 16384   /* events produced, not yet reported, per shard */
#define PK_KAFKA_TRIM_ROWS_MAX 4096   /* outbox rows deleted per trim transaction */
#define PK_KAFKA_PARTITIONS_DEFAULT 6
#define PK_KAFKA_PARTITIONS_MAX 1000

typedef struct pk_kafka pk_kafka_t;
typedef struct pk_kafka_mock pk_kafka_mock_t;
struct pk_runtime;
struct pk_actor;

/* The contract's topics, in a fixed order: "users", "products", ... */
#define PK_KAFKA_TOPIC_COUNT 7
extern const char *const pk_kafka_topics[PK_KAFKA_TOPIC_COUNT];

/*
 * The index in pk_kafka_topics of the topic of an event type ("stock.adjusted"
 * -> products), by the part before the first '.'.  Returns -1 for a prefix
 * the contract does not know.
 */
int pk_kafka_topic_of_type(const char *type, size_t type_len);

/*
 * The value event seq of shard is mirrored with, into *out (empty):
 * {"event_id":"<shard>-<seq>","type":..,"occurred_at":..,"data":..}, data
 * rendered from the event's body (an order record in its view, or the JSON
 * itself); a schema 1 record holds the value whole.  Pure: any thread.
 * Returns 0, PK_EFORMAT (an order record that does not decode) or -ENOMEM.
 */
int pk_kafka_event_value(const pk_outbox_event_t *ev, unsigned shard, uint64_t seq, pk_buf_t *out) PK_MUST_USE;

/*
 * Starts mirroring for rt (opened, threads not yet launched): with
 * --kafka-brokers off sets *out to NULL and returns 0; with embedded starts
 * the development broker in this process first.  Reads every shard's cursor
 * from its store.  Returns 0 or a negative error (logged).
 */
int pk_kafka_start(struct pk_runtime *rt, pk_kafka_t **out) PK_MUST_USE;

/*
 * Stops the publisher: produces nothing new, waits up to 2 s for delivery
 * reports of what is in flight, destroys the producer (and the embedded
 * broker), then persists each shard's cursor from the calling thread.  Call
 * only when no actor thread runs and the stores are still open.
 */
void pk_kafka_stop(pk_kafka_t *k);

/* Frees k (after pk_kafka_stop). */
void pk_kafka_free(pk_kafka_t *k);

/* Owner thread, after each successful commit: publishes the shard's outbox
 * next seq and wakes the publisher when it moved. */
void pk_kafka_committed(pk_kafka_t *k, struct pk_actor *a);

/* Owner thread, every tick: queues a trim message to its own shard when
 * acknowledged events wait to be persisted or deleted. */
void pk_kafka_tick(pk_kafka_t *k, struct pk_actor *a);

/* Per-shard figures, readable from any thread (approximate). */
typedef struct pk_kafka_shard_stats {
    uint64_t kss_backlog;    /* committed events not yet acknowledged by Kafka */
    uint64_t kss_delivered;  /* events acknowledged since start */
    uint64_t kss_acked_seq;  /* last seq of the acknowledged prefix */
    uint64_t kss_outbox_rows; /* rows on disk: backlog plus rows not yet trimmed */
} pk_kafka_shard_stats_t;

void pk_kafka_shard_stats(const pk_kafka_t *k, unsigned shard, pk_kafka_shard_stats_t *out);

/* Producers destroyed and created again (fatal errors, failed deliveries). */
uint64_t pk_kafka_restarts(const pk_kafka_t *k);

/*
 * The development broker (src/kafka/mock.c): librdkafka's in-memory mock
 * cluster with one broker on loopback, for trying pickple and for tests.
 * It keeps everything in memory (at most about 5 MiB per partition, older
 * messages dropped) and never persists.
 *
 * pk_kafka_mock_start() creates it and the contract's topics under prefix
 * with `partitions` partitions each; other topics are created on first use
 * with 4.  The listening port is chosen by the kernel (pickple-kafka-dev
 * fixes it).  Returns 0 or -ENOMEM / -EIO (logged).
 */
int pk_kafka_mock_start(pk_kafka_mock_t **out, const char *prefix, unsigned partitions) PK_MUST_USE;
/* "host:port" of the broker; valid until pk_kafka_mock_stop(). */
const char *pk_kafka_mock_bootstraps(const pk_kafka_mock_t *m);
/* Takes the broker down (connections closed, new ones refused) or up. */
int pk_kafka_mock_set_up(pk_kafka_mock_t *m, bool up) PK_MUST_USE;
/* Makes the next produce request fail with INVALID_PRODUCER_EPOCH, a fatal
 * error for an idempotent producer (tests only). */
void pk_kafka_mock_inject_fatal(pk_kafka_mock_t *m);
void pk_kafka_mock_stop(pk_kafka_mock_t *m);

#endif
