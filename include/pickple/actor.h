/*
 * The actor runtime: N threads, each running an h2o event loop with its own
 * SO_REUSEPORT listener and owning one shard (its LMDB environment and
 * everything stored in it).
 *
 * A request whose state lives on another shard travels there as a pk_msg_t
 * through the owner's inbox; the owner applies a batch of messages in one
 * LMDB write transaction, which the shard's syncer thread commits once
 * (include/pickple/syncer.h) while the owner serves its connections, and
 * only then sends every reply of the batch back through the reply box of the thread that allocated the
 * message (the connection's thread), which alone touches h2o objects and
 * frees the message.
 *
 * Bounds: each sender's lane of an inbox holds PK_INBOX_CAPACITY messages;
 * a full lane is answered 503 + Retry-After by the sender.  A thread keeps
 * at most PK_INFLIGHT_MAX messages alive; each lane of its reply box holds
 * more than that, so a reply always fits and is never dropped.
 *
 * Caveats:
 * - Only the owner thread touches a shard's pk_store_t (its syncer only
 *   begins and ends the write transactions it applies); only the origin
 *   thread touches m_pending / the h2o request of a message.
 * - After pk_actor_send() the sender must not read or write the message
 *   until its m_done callback runs (on the origin thread).
 */
#ifndef PICKPLE_ACTOR_H
#define PICKPLE_ACTOR_H

#include <h2o.h>
#include <ck_pr.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>

#include "pickple/buyers.h"
#include "pickple/common.h"
#include "pickple/config.h"
#include "pickple/jwt.h"
#include "pickple/jwt_cache.h"
#include "pickple/mbox.h"
#include "pickple/out.h"
#include "pickple/product.h"
#include "pickple/order.h"
#include "pickple/sale.h"
#include "pickple/soldout.h"
#include "pickple/store.h"
#include "pickple/syncer.h"
#include "pickple/user.h"

#define PK_INBOX_CAPACITY 8192
#define PK_INFLIGHT_MAX 16384
#define PK_REPLY_CAPACITY (PK_INFLIGHT_MAX + 1)
#define PK_BATCH_MAX 4096 /* messages applied per write transaction */
#define PK_WORKER_QUEUE_CAPACITY 4096

typedef struct pk_runtime pk_runtime_t;
typedef struct pk_actor pk_actor_t;
typedef struct pk_msg pk_msg_t;
typedef struct pk_pending pk_pending_t;

/*
 * An operation a shard applies to its state.  op_apply runs on the owning
 * thread inside the batch transaction; it sets m_status and either renders
 * the reply into m_body (m_fmt) or sets m_err_code/m_err_message.  It must
 * validate everything before its first write, so a 4xx never half-applies.
 * It returns 0, or PK_ESTORE when LMDB failed, which poisons the batch.
 */
typedef struct pk_op {
    const char *op_name;
    bool op_readonly;
    int (*op_apply)(pk_actor_t *owner, MDB_txn *txn, pk_msg_t *msg);
} pk_op_t;

/* Payloads of the operations, one per message (the union in pk_msg_t). */
typedef struct pk_msg_user {
    pk_user_t mu_user;                         /* record to create / found */
    char mu_password[PK_PASSWORD_BYTES_MAX + 1]; /* wiped after use */
    uint8_t mu_password_len;
    bool mu_found;
    pk_role_t mu_role; /* new role (set-role) */
} pk_msg_user_t;

#define PK_LIST_LIMIT_MAX 100

/* Product create / patch / stock. */
typedef struct pk_msg_product {
    pk_product_t mp_product; /* fields to create or patch; the result */
    unsigned mp_fields;      /* PK_PRODUCT_F_* given in a patch */
    int64_t mp_delta;        /* stock adjustment */
} pk_msg_product_t;

enum { PK_PRODUCT_F_NAME = 1, PK_PRODUCT_F_DESCRIPTION = 2, PK_PRODUCT_F_PRICE = 4 };

/*
 * One shard's part of a list page: up to ml_limit + 1 items with id >
 * ml_after, ascending, rendered back to back into m_body (in m_fmt);
 * item i spans ml_offsets[i] .. ml_offsets[i + 1].
 */
typedef struct pk_msg_list {
    uint64_t ml_after;
    uint32_t ml_limit;
    int ml_filter; /* op-specific (sale state, order status), -1 none */
    uint32_t ml_count;
    uint64_t ml_ids[PK_LIST_LIMIT_MAX + 1];
    uint32_t ml_offsets[PK_LIST_LIMIT_MAX + 2];
} pk_msg_list_t;

typedef struct pk_msg_sale {
    pk_sale_t ms_sale;
} pk_msg_sale_t;

#define PK_IDEM_KEY_BYTES_MAX 64

/* Orders, payments, deliveries (src/store/orders.c and neighbours). */
typedef struct pk_msg_order {
    pk_order_t mo_order;   /* request fields in; the order out */
    int64_t mo_quantity;   /* sale form */
    int64_t mo_amount;     /* pay */
    uint8_t mo_method;     /* pay: pk_pay_method_t */
    bool mo_ok;            /* confirm: every reservation was made */
    const char *mo_refusal_code; /* confirm: the first refusal (static) */
    const char *mo_refusal_message;
    int mo_refusal_status;
    uint64_t mo_id;        /* the order or delivery addressed */
    uint64_t mo_fingerprint; /* idempotency: hash of the request */
    uint8_t mo_key_len;    /* idempotency key, 0 when none */
    char mo_key[PK_IDEM_KEY_BYTES_MAX + 1];
} pk_msg_order_t;

#define PK_RELEASE_BATCH 64

/* Maintenance: remote releases to send once the batch committed. */
typedef struct pk_msg_maint {
    uint32_t mm_count;
    uint64_t mm_order[PK_RELEASE_BATCH];
    uint64_t mm_shards[PK_RELEASE_BATCH]; /* bit per shard */
} pk_msg_maint_t;

struct pk_msg {
    const pk_op_t *m_op;      /* what the shard does; NULL for worker jobs */
    void (*m_work)(pk_msg_t *msg); /* worker-pool job, runs on a worker */
    /* Origin thread, after the reply arrived (or the send failed). */
    void (*m_done)(pk_actor_t *origin, pk_msg_t *msg);
    pk_pending_t *m_pending; /* origin only: the h2o request, NULL if gone */
    uint16_t m_origin;       /* index of the allocating thread */
    uint16_t m_shard;        /* target shard */
    pk_fmt_t m_fmt;          /* body format the client asked for */
    int m_status;            /* HTTP status of the reply */
    int m_work_rc;           /* result of m_work */
    const char *m_err_code;  /* static string, set with a 4xx/5xx status */
    const char *m_err_message; /* static string */
    int64_t m_now_ms;        /* request time, fixed at admission */
    uint64_t m_subject;      /* authenticated user id, 0 if anonymous */
    pk_role_t m_subject_role;
    pk_buf_t m_body;         /* rendered reply body (owned) */
    /* Set by a shard, instead of filling m_body, when the answer is a pure
     * function of the message's own fields: the runtime renders it on the
     * origin thread before m_done runs (pk_msg_render), off the owner's
     * thread and outside its batch.  NULL when m_body holds the answer. */
    void (*m_render)(const pk_msg_t *msg, pk_out_t *out);
    /* Stages of a write (CLOCK_MONOTONIC ns, 0 until reached): made on
     * the origin, its batch begun on the owner, that batch committed. */
    uint64_t m_born_ns, m_batch_ns, m_committed_ns;
    pk_msg_t *m_parent; /* scatter/gather: the message waiting for this one */
    pk_msg_t **m_children;
    uint32_t m_children_count;
    uint32_t m_children_waiting;
    union {
        pk_msg_user_t user;
        pk_msg_product_t product;
        pk_msg_list_t list;
        pk_msg_sale_t sale;
        pk_msg_order_t order;
        pk_msg_maint_t maint;
    } u;
};

#define PK_BATCH_HIST_BUCKETS 14 /* batch sizes 1, 2, 4, ... 4096, more */
#define PK_SYNC_HIST_BUCKETS 9   /* commit times <= 250 us, 500 us, ... 32 ms, more */
#define PK_SYNC_HIST_FIRST_US 250

/* Where a committed write's time went, recorded by the thread that answers
 * it (pickple_write_stage_microseconds). */
typedef enum pk_stage {
    PK_STAGE_QUEUED,   /* made on the origin -> its batch begins on the owner (a worker's job, such
                        * as a sign-up's password hashing, included) */
    PK_STAGE_BATCH,    /* batch begins -> the owner sees it committed (apply + commit) */
    PK_STAGE_ANSWERED, /* committed -> answered on the origin thread */
    PK_STAGES
} pk_stage_t;
#define PK_STAGE_HIST_BUCKETS 12 /* <= 250 us, 500 us, ... 256 ms, more */
#define PK_STAGE_HIST_FIRST_US 250

/* Per-thread statistics, written by the owner only (ck_pr stores), read by
 * anyone with ck_pr loads (metrics, bench reports). */
typedef struct pk_actor_stats {
    uint64_t as_batches;      /* write transactions committed */
    uint64_t as_batch_msgs;   /* messages applied in them */
    uint64_t as_batch_max;    /* largest batch */
    uint64_t as_batch_hist[PK_BATCH_HIST_BUCKETS]; /* batches of <= 2^i msgs */
    uint64_t as_read_batches; /* read-only batches (no commit) */
    uint64_t as_rejected_full; /* requests answered 503: inbox full */
    uint64_t as_store_errors;  /* batches aborted */
    uint64_t as_apply_us;      /* time applying committed batches */
    uint64_t as_commit_us;     /* hand-over to the syncer until the committed batch is back */
    uint64_t as_sync_us;       /* of which in mdb_txn_commit on the syncer (writes + syncs) */
    uint64_t as_sync_hist[PK_SYNC_HIST_BUCKETS]; /* commits of <= 250 us * 2^i */
    uint64_t as_midturn_batches; /* committed batches answered by pk_actor_progress */
    /* Committed writes this thread answered, by stage (pk_stage_t). */
    uint64_t as_stage_hist[PK_STAGES][PK_STAGE_HIST_BUCKETS];
    uint64_t as_stage_us[PK_STAGES];
} pk_actor_stats_t;

/* Owner-side increment of a statistic others may read concurrently. */
#define PK_STAT_ADD(field, n) ck_pr_store_64(&(field), (field) + (n))

struct pk_actor {
    pk_runtime_t *a_rt;
    unsigned a_index;
    pthread_t a_thread;
    h2o_evloop_t *a_loop;
    h2o_context_t a_ctx;
    h2o_accept_ctx_t a_accept;     /* cleartext: HTTP/1.1 and h2c */
    h2o_accept_ctx_t a_accept_tls; /* TLS with ALPN h2, when configured */
    int a_listen_fd;
    h2o_socket_t *a_listener;
    h2o_socket_t *a_wake_sock;
    pk_store_t a_store;
    unsigned a_inflight; /* live messages allocated by this thread */
    unsigned a_next_worker; /* round-robin over the worker pool */
    bool a_shutdown_started;
    bool a_exit;
    bool a_apply_due; /* the inbox woke this thread: apply after the loop's I/O */
    bool a_in_progress;    /* inside pk_actor_progress */
    unsigned a_progress_n; /* requests since it last looked */
    /* The batch being applied, then waiting for its commit (a_sync_pending,
     * a_batch_n > 0; 0 for an abort). */
    bool a_sync_pending;
    unsigned a_batch_n;
    uint64_t a_batch_t0, a_batch_t1; /* applying began, handed to the syncer */
    pk_msg_t *a_batch[PK_BATCH_MAX];
    pk_actor_stats_t a_stats;
    /* Shard maintenance (sale settlement; later order expiry): the earliest
     * time something falls due; 0 forces a sweep.  A tick checks it. */
    int64_t a_next_due_ms;
    bool a_maint_pending;
    /* Remote releases of failed/ended catalog orders (src/store/reservations.c):
     * sent after the maintenance batch commits; acknowledgements wait here
     * until the next maintenance batch clears them from PK_TBL_RELEASES. */
    unsigned a_releases_inflight;
    unsigned a_release_acks_count;
    uint64_t a_release_acks[PK_RELEASE_BATCH * 8][2]; /* (order id, shard) */
    h2o_timeout_t a_tick;
    h2o_timeout_entry_t a_tick_entry;
    pk_jwtc_t a_jwtc; /* bearer tokens this thread verified */
    pk_buyers_t a_buyers; /* buyer rows written back (src/store/buyers.c) */
    /* Written by producers on other threads: keep on their own lines. */
    pk_waker_t a_waker __attribute__((aligned(PK_CACHE_LINE)));
    pk_mbox_t a_inbox __attribute__((aligned(PK_CACHE_LINE)));
    pk_mbox_t a_replies __attribute__((aligned(PK_CACHE_LINE)));
    pk_syncer_t a_syncer __attribute__((aligned(PK_CACHE_LINE))); /* begins and ends write transactions */
    /* Written by the owner, read by every thread (src/actors/soldout.c). */
    pk_soldout_t a_soldout __attribute__((aligned(PK_CACHE_LINE)));
};

/* The actor owning a shard's store. */
static inline pk_actor_t *pk_actor_of_store(pk_store_t *st)
{
    return (pk_actor_t *)((char *)st - offsetof(pk_actor_t, a_store));
}

/* The worker pool for slow work (password hashing). */
typedef struct pk_worker {
    struct pk_workers *w_pool;
    unsigned w_index; /* producer lane in reply boxes: nactors + w_index */
    pthread_t w_thread;
    pk_waker_t w_waker;
    pk_mbox_t w_jobs; /* a lane per actor */
} pk_worker_t;

typedef struct pk_workers {
    unsigned wk_count;
    pk_worker_t *wk_workers;
    pk_runtime_t *wk_rt;
    unsigned wk_stop; /* atomic */
} pk_workers_t;

struct pk_runtime {
    const pk_config_t *rt_cfg;
    unsigned rt_nactors;
    pk_actor_t *rt_actors;
    h2o_globalconf_t rt_h2o;
    pk_jwt_key_t rt_jwt;
    /* A real hash of a random password: sign-in verifies against it when
     * the username is unknown, so both failures take the same time. */
    char rt_dummy_pwhash[PK_PASSWORD_ENCODED_BYTES_MAX];
    pk_workers_t rt_workers;
    void *rt_ssl_ctx; /* SSL_CTX*, NULL without TLS */
    uint16_t rt_port;   /* bound port (resolves --listen with port 0) */
    unsigned rt_started; /* actors whose loop runs (atomic) */
    unsigned rt_stopping; /* set once by the signal thread (atomic) */
    struct pk_kafka *rt_kafka; /* Kafka mirroring (src/kafka/), NULL when off */
};

/*
 * Opens every shard's store and binds the listeners; no thread runs yet, so
 * the caller may still use the stores (start-up work like the admin
 * bootstrap).  Returns 0 or a negative error (everything is closed again).
 */
int pk_runtime_open(pk_runtime_t *rt, const pk_config_t *cfg, unsigned nshards) PK_MUST_USE;

/*
 * The shard's periodic work inside txn (src/store/sales.c): settles sales
 * whose end passed, expires unpaid orders past their deadline, drops stale
 * placing orders, purges Idempotency-Key entries older than the window
 * (each bounded per call), lists owed remote releases into
 * rel (NULL: not now), and sets *next_due_ms to the next
 * time there is work, INT64_MAX when none.  Returns 0 or PK_ESTORE.
 */
int pk_shard_maintain(pk_actor_t *a, MDB_txn *txn, int64_t now_ms, int64_t *next_due_ms, pk_msg_maint_t *rel)
    PK_MUST_USE;
extern const pk_op_t pk_op_shard_maintain;

/* Starts the worker pool and the actor threads.  Returns 0 or an error
 * (the runtime is then closed). */
int pk_runtime_launch(pk_runtime_t *rt) PK_MUST_USE;

/* Asks every thread to stop accepting, finish in-flight work and exit, then
 * joins them and closes the shards. */
void pk_runtime_stop(pk_runtime_t *rt);

/* True once every actor loop runs and the runtime is not stopping. */
bool pk_runtime_ready(pk_runtime_t *rt);

/* The actor whose loop runs ctx. */
pk_actor_t *pk_actor_of_ctx(h2o_context_t *ctx);

/* Allocates a zeroed message owned by origin.  Returns NULL when origin is
 * at PK_INFLIGHT_MAX or memory is exhausted. */
pk_msg_t *pk_msg_new(pk_actor_t *origin);
/* Frees a message on its origin thread. */
void pk_msg_free(pk_actor_t *origin, pk_msg_t *msg);

/* Sets a 4xx/5xx answer on msg (code and message must be static strings). */
void pk_msg_error(pk_msg_t *msg, int status, const char *code, const char *message);

/* Takes the document rendered into o as the reply with status, or answers
 * 500 when rendering failed (o is finished either way). */
void pk_msg_reply(pk_msg_t *msg, pk_out_t *o, int status);

/* Origin thread, before m_done: renders a deferred answer (m_render) into
 * m_body, as pk_msg_reply would have.  Does nothing for an error or a
 * rendered body. */
void pk_msg_render(pk_msg_t *msg);

/*
 * Sends msg (m_op, m_shard, m_done set) to its shard.  Returns 0, or
 * PK_EFULL when the shard's inbox is full, or PK_ESHUTDOWN; on failure the
 * message stays with the caller.
 */
int pk_actor_send(pk_actor_t *origin, pk_msg_t *msg) PK_MUST_USE;

/*
 * The HTTP layer calls this after each request it dispatched.  One loop
 * turn can read thousands of requests when clients queued them (every
 * connection's streams at once), and the turn used to end before the
 * thread looked at its mailboxes again: a commit the syncer had finished,
 * and the answers other shards had sent back, waited for all of them.
 * Every PK_PROGRESS_EVERY requests this answers the replies that arrived
 * and, when the syncer has given the turn back, the committed batch.  The
 * next batch is still applied after the turn.  When there is nothing to
 * do it costs a counter, an empty pop of the reply mailbox (one ring per
 * thread) every 8th call and, while a commit is out, one atomic load.
 */
#define PK_PROGRESS_EVERY 8
void pk_actor_progress(pk_actor_t *a);

/* Queues msg (m_work, m_done set) on the worker pool.  Same returns. */
int pk_actor_work(pk_actor_t *origin, pk_msg_t *msg) PK_MUST_USE;

int pk_workers_start(pk_workers_t *wk, pk_runtime_t *rt, unsigned count) PK_MUST_USE;
void pk_workers_stop(pk_workers_t *wk);

#endif
