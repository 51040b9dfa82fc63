/* The actors' side of Kafka mirroring: telling the publisher about committed
 * events, and persisting the cursor and trimming acknowledged events in the
 * shard's own write transactions. */
#include <assert.h>

#include "pickple/actor.h"
#include "pickple/log.h"
#include "kafka_internal.h"

void pk_kafka_committed(pk_kafka_t *k, pk_actor_t *a)
{
    pk__kafka_shard_t *ks = &k->k_shards[a->a_index];
    uint64_t next = a->a_store.st_outbox_next;
    /* The owner is the only writer of ks_committed_next: a plain read. */
    if (next == ks->ks_committed_next)
        return;
    /* The publisher only uses this as a hint that rows exist; it reads them
     * with its own read transaction, which sees this commit because the
     * commit finished before the store.  The kick's fetch-and-store is a
     * full barrier, so the publisher that wakes finds the new value. */
    ck_pr_store_64(&ks->ks_committed_next, next);
    pk_waker_kick(&k->k_waker);
}

/* Runs in a shard batch: moves the cursor to what Kafka acknowledged and
 * deletes a chunk of acknowledged rows.  The results are kept by
 * pk__trim_done only if the batch commits. */
static int pk__trim_apply(pk_actor_t *owner, MDB_txn *txn, pk_msg_t *msg)
{
    pk_kafka_t *k = owner->a_rt->rt_kafka;
    pk__kafka_shard_t *ks = &k->k_shards[owner->a_index];
    /* Acquire-free load: the value only ever grows, and any value the
     * publisher published names events it saw delivered. */
    uint64_t acked = ck_pr_load_64(&ks->ks_acked);
    int rc = pk_store_outbox_trim(&owner->a_store, txn, acked, PK_KAFKA_TRIM_ROWS_MAX, &ks->ks_staged_first,
                                  &ks->ks_staged_more);
    if (rc != 0)
        return rc;
    ks->ks_staged_acked = acked > ks->ks_persisted ? acked : ks->ks_persisted;
    msg->m_status = 200;
    return 0;
}

static const pk_op_t pk__op_outbox_trim = {"outbox.trim", false, pk__trim_apply};

static void pk__trim_send(pk_kafka_t *k, pk_actor_t *a);

static void pk__trim_done(pk_actor_t *a, pk_msg_t *msg)
{
    pk_kafka_t *k = a->a_rt->rt_kafka;
    pk__kafka_shard_t *ks = &k->k_shards[a->a_index];
    ks->ks_trim_pending = false;
    bool committed = msg->m_status == 200;
    pk_msg_free(a, msg);
    if (!committed) {
        ks->ks_trim_more = true; /* the next tick tries again */
        return;
    }
    ks->ks_persisted = ks->ks_staged_acked;
    ks->ks_trim_more = ks->ks_staged_more;
    ck_pr_store_64(&ks->ks_first_row, ks->ks_staged_first);
    /* A long backlog just drained: keep deleting chunk after chunk, each in
     * its own batch, rather than one chunk per tick. */
    if (ks->ks_trim_more)
        pk__trim_send(k, a);
}

static void pk__trim_send(pk_kafka_t *k, pk_actor_t *a)
{
    pk__kafka_shard_t *ks = &k->k_shards[a->a_index];
    if (ks->ks_trim_pending || ck_pr_load_uint(&a->a_rt->rt_stopping))
        return;
    pk_msg_t *msg = pk_msg_new(a);
    if (msg == NULL)
        return;
    msg->m_op = &pk__op_outbox_trim;
    msg->m_shard = (uint16_t)a->a_index;
    msg->m_now_ms = pk_now_ms();
    msg->m_done = pk__trim_done;
    if (pk_actor_send(a, msg) == 0)
        ks->ks_trim_pending = true;
    else
        pk_msg_free(a, msg);
}

void pk_kafka_tick(pk_kafka_t *k, pk_actor_t *a)
{
    pk__kafka_shard_t *ks = &k->k_shards[a->a_index];
    if (ck_pr_load_64(&ks->ks_acked) > ks->ks_persisted || ks->ks_trim_more)
        pk__trim_send(k, a);
}

/* Called by pk_kafka_stop once no actor runs: the calling thread is the
 * only writer left, so it persists what Kafka acknowledged since the last
 * trim (a restart then sends fewer events twice). */
void pk__kafka_persist(pk_kafka_t *k)
{
    for (unsigned i = 0; i < k->k_nshards; i++) {
        pk__kafka_shard_t *ks = &k->k_shards[i];
        uint64_t acked = ck_pr_load_64(&ks->ks_acked), first;
        bool more;
        MDB_txn *txn;
        if (acked <= ks->ks_persisted)
            continue;
        if (pk_store_begin(ks->ks_store, false, &txn) != 0)
            continue;
        if (pk_store_outbox_trim(ks->ks_store, txn, acked, PK_KAFKA_TRIM_ROWS_MAX, &first, &more) != 0) {
            pk_store_abort(ks->ks_store, txn);
            continue;
        }
        if (pk_store_commit(ks->ks_store, txn) == 0) {
            ks->ks_persisted = acked;
            ck_pr_store_64(&ks->ks_first_row, first);
        }
    }
}
