/* Actor threads: event loops, listeners, the batch loop with group commit,
 * reply routing and graceful shutdown. */
#include <arpa/inet.h>
#include <assert.h>
#include <ck_pr.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "pickple/actor.h"
#include "pickple/alloc.h"
#include "pickple/http.h"
#include "pickple/kafka.h"
#include "pickple/log.h"
#include "pickple/orders.h"

#define PK__SHUTDOWN_LINGER_NS (300ull * 1000 * 1000)
#define PK__SHUTDOWN_MAX_NS (30ull * 1000 * 1000 * 1000)

pk_actor_t *pk_actor_of_ctx(h2o_context_t *ctx)
{
    return (pk_actor_t *)((char *)ctx - offsetof(pk_actor_t, a_ctx));
}

pk_msg_t *pk_msg_new(pk_actor_t *origin)
{
    if (origin->a_inflight >= PK_INFLIGHT_MAX)
        return NULL;
    pk_msg_t *msg = calloc(1, sizeof(*msg));
    if (msg == NULL)
        return NULL;
    msg->m_origin = (uint16_t)origin->a_index;
    msg->m_born_ns = pk_mono_ns();
    /* Relaxed store: other threads only read it to decide shutdown
     * quiescence, which re-checks over a linger period. */
    ck_pr_store_uint(&origin->a_inflight, origin->a_inflight + 1);
    return msg;
}

void pk_msg_free(pk_actor_t *origin, pk_msg_t *msg)
{
    assert(msg->m_origin == origin->a_index);
    assert(origin->a_inflight > 0);
    pk_buf_free(&msg->m_body);
    free(msg);
    ck_pr_store_uint(&origin->a_inflight, origin->a_inflight - 1);
}

void pk_msg_error(pk_msg_t *msg, int status, const char *code, const char *message)
{
    pk_buf_free(&msg->m_body);
    msg->m_render = NULL;
    msg->m_status = status;
    msg->m_err_code = code;
    msg->m_err_message = message;
}

void pk_msg_reply(pk_msg_t *msg, pk_out_t *o, int status)
{
    pk_buf_free(&msg->m_body);
    if (pk_out_finish(o, &msg->m_body) != 0) {
        pk_msg_error(msg, 500, "internal", "cannot render the answer");
        return;
    }
    msg->m_status = status;
}

void pk_msg_render(pk_msg_t *msg)
{
    if (msg->m_render == NULL || msg->m_err_code != NULL)
        return;
    pk_out_t out;
    pk_out_init(&out, msg->m_fmt);
    msg->m_render(msg, &out);
    msg->m_render = NULL;
    pk_msg_reply(msg, &out, msg->m_status);
}

int pk_actor_send(pk_actor_t *origin, pk_msg_t *msg)
{
    pk_runtime_t *rt = origin->a_rt;
    assert(msg->m_op != NULL && msg->m_done != NULL);
    assert(msg->m_shard < rt->rt_nactors);
    msg->m_origin = (uint16_t)origin->a_index;
    pk_actor_t *owner = &rt->rt_actors[msg->m_shard];
    int rc = pk_mbox_push(&owner->a_inbox, origin->a_index, msg);
    if (rc != 0)
        PK_STAT_ADD(origin->a_stats.as_rejected_full, 1);
    return rc;
}

/* On the answering (origin) thread: where a committed write's time went. */
static void pk__record_stages(pk_actor_t *a, const pk_msg_t *msg)
{
    if (msg->m_committed_ns == 0)
        return; /* a read, an aborted batch, or never applied */
    uint64_t now = pk_mono_ns(); /* one clock for every thread, read after the others */
    assert(msg->m_born_ns <= msg->m_batch_ns && msg->m_batch_ns <= msg->m_committed_ns &&
           msg->m_committed_ns <= now);
    uint64_t us[PK_STAGES] = {
        [PK_STAGE_QUEUED] = (msg->m_batch_ns - msg->m_born_ns) / 1000,
        [PK_STAGE_BATCH] = (msg->m_committed_ns - msg->m_batch_ns) / 1000,
        [PK_STAGE_ANSWERED] = (now - msg->m_committed_ns) / 1000,
    };
    for (unsigned st = 0; st < PK_STAGES; st++) {
        PK_STAT_ADD(a->a_stats.as_stage_us[st], us[st]);
        PK_STAT_ADD(a->a_stats.as_stage_hist[st][pk_hist_bucket(us[st], PK_STAGE_HIST_FIRST_US,
                                                                  PK_STAGE_HIST_BUCKETS)], 1);
    }
}

/* Hands a finished message back to its origin: directly when that is this
 * thread, else through the origin's reply box. */
static void pk__reply(pk_actor_t *self, pk_msg_t *msg)
{
    if (msg->m_origin == self->a_index) {
        pk__record_stages(self, msg);
        pk_msg_render(msg);
        msg->m_done(self, msg);
        return;
    }
    pk_actor_t *origin = &self->a_rt->rt_actors[msg->m_origin];
    int rc = pk_mbox_push(&origin->a_replies, self->a_index, msg);
    /* Never full: the origin keeps fewer live messages than it holds. */
    assert(rc == 0);
    (void)rc;
}

_Static_assert(PK_BUYERS_FLUSH_AT + PK_BATCH_MAX <= PK_BUYERS_MAX, "a batch's rows stay pending");

/* Replays the orders the stored buyer rows lack (include/pickple/buyers.h). */
static int pk__buyers_rebuild(pk_actor_t *a, MDB_txn *txn)
{
    uint64_t replayed;
    int rc = pk_buyers_rebuild(&a->a_store, &a->a_buyers, txn, pk_now_ms(), &replayed);
    if (rc == 0 && replayed > 0)
        pk_log_info("shard=%u buyer rows: replayed %llu orders placed after their last flush", a->a_index,
                    (unsigned long long)replayed);
    return rc;
}

/* Sends the answers of a finished batch; after a failure (nothing of it
 * was committed) every one is a 503. */
static void pk__finish_batch(pk_actor_t *a, unsigned n, int rc)
{
    if (rc != 0) {
        /* In-memory schedule and buyer rows may describe the aborted
         * writes: re-derive them. */
        a->a_next_due_ms = 0;
        pk_buyers_discard(&a->a_buyers);
        PK_STAT_ADD(a->a_stats.as_store_errors, 1);
        pk_log_error("shard=%u batch of %u aborted: %s", a->a_index, n, pk_strerror(rc));
        for (unsigned i = 0; i < n; i++)
            pk_msg_error(a->a_batch[i], 503, "unavailable", "storage failure; nothing was changed, retry later");
    }
    for (unsigned i = 0; i < n; i++)
        pk__reply(a, a->a_batch[i]);
}

/*
 * Applies up to PK_BATCH_MAX queued messages in one transaction.  A write
 * batch is applied in the transaction the syncer began and handed back to
 * it to commit (include/pickple/syncer.h); its answers wait in a_batch
 * until pk__synced: an acknowledged change is durable, and nothing
 * unacknowledged was visible to anyone.  Call only with the owner's turn
 * and no commit in flight.
 */
static void pk__apply_batch(pk_actor_t *a)
{
    unsigned n = 0;
    bool readonly = true;
    pk_msg_t *msg;
    assert(!a->a_sync_pending);
    while (n < PK_BATCH_MAX && (msg = pk_mbox_pop(&a->a_inbox)) != NULL) {
        a->a_batch[n++] = msg;
        readonly = readonly && msg->m_op->op_readonly;
    }
    if (n == 0)
        return;
    MDB_txn *txn = NULL;
    int rc = 0;
    uint64_t t0 = pk_mono_ns();
    /* Buyer rows thrown away by an abort are rebuilt first, which writes. */
    readonly = readonly && !a->a_buyers.bs_stale;
    if (readonly)
        rc = pk_store_begin(&a->a_store, true, &txn);
    else if ((txn = pk_syncer_txn(&a->a_syncer)) == NULL)
        rc = PK_ESTORE; /* the syncer could not begin one; it tries again */
    if (rc == 0 && a->a_buyers.bs_stale)
        rc = pk__buyers_rebuild(a, txn);
    unsigned applied = 0;
    for (; rc == 0 && applied < n; applied++) {
        msg = a->a_batch[applied];
        msg->m_batch_ns = t0;
        msg->m_committed_ns = 0; /* set again if this batch commits */
        msg->m_status = 0;
        rc = msg->m_op->op_apply(a, txn, msg);
        assert(rc != 0 || msg->m_status != 0);
    }
    if (readonly) {
        if (txn != NULL)
            mdb_txn_abort(txn);
        if (rc == 0)
            PK_STAT_ADD(a->a_stats.as_read_batches, 1);
        pk__finish_batch(a, n, rc);
        return;
    }
    if (rc == 0) {
        int64_t unused;
        rc = pk_buyers_maintain(&a->a_store, &a->a_buyers, txn, pk_now_ms(), &unused);
    }
    if (rc == 0)
        rc = pk_store_commit_prepare(&a->a_store, txn);
    if (rc != 0) {
        /* Back to the syncer even without a transaction: it begins a new
         * one, which the next batch waits for. */
        pk_syncer_hand_back(&a->a_syncer, PK_SYNC_ABORT);
        a->a_sync_pending = true;
        pk_store_abort(&a->a_store, NULL);
        pk__finish_batch(a, n, rc);
        return;
    }
    a->a_batch_n = n;
    a->a_batch_t0 = t0;
    a->a_batch_t1 = pk_mono_ns();
    a->a_sync_pending = true;
    pk_syncer_hand_back(&a->a_syncer, PK_SYNC_COMMIT);
}

/* The syncer gave the turn back: answers the batch it committed (or, after
 * a failed commit, 503s). */
static void pk__synced(pk_actor_t *a)
{
    if (!a->a_sync_pending || !pk_syncer_owner_turn(&a->a_syncer))
        return;
    a->a_sync_pending = false;
    unsigned n = a->a_batch_n;
    a->a_batch_n = 0;
    if (n == 0)
        return; /* an abort: nothing waits */
    int rc = pk_syncer_result(&a->a_syncer);
    pk_store_committed(&a->a_store, rc);
    if (rc == 0) {
        PK_STAT_ADD(a->a_stats.as_apply_us, (a->a_batch_t1 - a->a_batch_t0) / 1000);
        PK_STAT_ADD(a->a_stats.as_commit_us, (pk_mono_ns() - a->a_batch_t1) / 1000);
        uint64_t sync_us = pk_syncer_commit_ns(&a->a_syncer) / 1000;
        PK_STAT_ADD(a->a_stats.as_sync_us, sync_us);
        PK_STAT_ADD(a->a_stats.as_sync_hist[pk_hist_bucket(sync_us, PK_SYNC_HIST_FIRST_US, PK_SYNC_HIST_BUCKETS)], 1);
        if (a->a_rt->rt_kafka != NULL)
            pk_kafka_committed(a->a_rt->rt_kafka, a); /* new events, if any, can be shipped */
        PK_STAT_ADD(a->a_stats.as_batches, 1);
        PK_STAT_ADD(a->a_stats.as_batch_msgs, n);
        PK_STAT_ADD(a->a_stats.as_batch_hist[pk_hist_bucket(n, 1, PK_BATCH_HIST_BUCKETS)], 1);
        if (n > a->a_stats.as_batch_max)
            ck_pr_store_64(&a->a_stats.as_batch_max, n);
        uint64_t committed = pk_mono_ns();
        for (unsigned i = 0; i < n; i++)
            a->a_batch[i]->m_committed_ns = committed;
    }
    pk__finish_batch(a, n, rc);
}

/* Answers the replies other shards sent back (at most a mailbox's worth). */
static void pk__answer_replies(pk_actor_t *a)
{
    pk_msg_t *msg;
    for (unsigned i = 0; i < PK_REPLY_CAPACITY && (msg = pk_mbox_pop(&a->a_replies)) != NULL; i++) {
        pk__record_stages(a, msg);
        pk_msg_render(msg);
        msg->m_done(a, msg);
    }
}

static void pk__on_wake(h2o_socket_t *sock, const char *err)
{
    pk_actor_t *a = sock->data;
    pk_waker_drain(&a->a_waker);
    /* Replies first: they finish requests and free memory. */
    pk__answer_replies(a);
    a->a_apply_due = true;
}

void pk_actor_progress(pk_actor_t *a)
{
    if (++a->a_progress_n < PK_PROGRESS_EVERY || a->a_in_progress)
        return;
    a->a_progress_n = 0;
    a->a_in_progress = true; /* an answer sent below must not come back here */
    pk__answer_replies(a);
    if (a->a_sync_pending && pk_syncer_owner_turn(&a->a_syncer)) {
        if (a->a_batch_n > 0)
            PK_STAT_ADD(a->a_stats.as_midturn_batches, 1);
        pk__synced(a);
        /* The next batch is applied after the turn, as before (the loop
         * has the syncer's kick).  Applying it here as well was measured
         * twice and raised no throughput (docs/decisions.md); the memory
         * growth it first showed came from the allocator's settings
         * (include/pickple/alloc.h). */
    }
    a->a_in_progress = false;
}

/* With TLS configured, cleartext and TLS share the port: the first byte of
 * a TLS connection is a handshake record (0x16), which no HTTP/1.1 method
 * and not the HTTP/2 preface starts with.  h2o keeps the bytes it read. */
static void pk__on_sniff(h2o_socket_t *sock, const char *err)
{
    pk_actor_t *a = sock->data;
    if (err != NULL) {
        h2o_socket_close(sock);
        return;
    }
    if (sock->input->size == 0)
        return;
    h2o_socket_read_stop(sock);
    sock->data = NULL;
    h2o_accept((unsigned char)sock->input->bytes[0] == 0x16 ? &a->a_accept_tls : &a->a_accept, sock);
}

#define PK__TICK_MS 100

static void pk__maint_done(pk_actor_t *a, pk_msg_t *msg)
{
    a->a_maint_pending = false;
    /* Committed: the releases it listed are durable, send them now. */
    if (msg->m_status == 200 && msg->m_err_code == NULL)
        pk_orders_send_releases(a, &msg->u.maint);
    pk_msg_free(a, msg);
}

/* Every PK__TICK_MS: when shard work fell due, queue one maintenance
 * message to this shard so it runs inside a normal batch (one writer). */
static void pk__on_tick(h2o_timeout_entry_t *entry)
{
    pk_actor_t *a = (pk_actor_t *)((char *)entry - offsetof(pk_actor_t, a_tick_entry));
    int64_t now = pk_now_ms();
    if (!a->a_maint_pending && now >= a->a_next_due_ms && !ck_pr_load_uint(&a->a_rt->rt_stopping)) {
        pk_msg_t *msg = pk_msg_new(a);
        if (msg != NULL) {
            msg->m_op = &pk_op_shard_maintain;
            msg->m_shard = (uint16_t)a->a_index;
            msg->m_now_ms = now;
            msg->m_done = pk__maint_done;
            if (pk_actor_send(a, msg) == 0)
                a->a_maint_pending = true;
            else
                pk_msg_free(a, msg);
        }
    }
    if (a->a_rt->rt_kafka != NULL)
        pk_kafka_tick(a->a_rt->rt_kafka, a); /* persist what Kafka acknowledged */
    h2o_timeout_link(a->a_loop, &a->a_tick, &a->a_tick_entry);
}

static void pk__on_accept(h2o_socket_t *listener, const char *err)
{
    pk_actor_t *a = listener->data;
    if (err != NULL)
        return;
    for (int i = 0; i < 64; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            break;
        if (a->a_accept_tls.ssl_ctx == NULL) {
            h2o_accept(&a->a_accept, sock);
        } else {
            sock->data = a;
            h2o_socket_read_start(sock, pk__on_sniff);
        }
    }
}

static bool pk__quiescent(pk_runtime_t *rt)
{
    for (unsigned i = 0; i < rt->rt_nactors; i++) {
        pk_actor_t *o = &rt->rt_actors[i];
        if (ck_pr_load_uint(&o->a_inflight) != 0 || pk_mbox_size(&o->a_inbox) != 0)
            return false;
    }
    return true;
}

static void *pk__actor_main(void *arg)
{
    pk_actor_t *a = arg;
    pk_runtime_t *rt = a->a_rt;
    uint64_t stop_at = 0, quiet_since = 0;

    a->a_loop = h2o_evloop_create();
    h2o_context_init(&a->a_ctx, a->a_loop, &rt->rt_h2o);
    a->a_accept.ctx = &a->a_ctx;
    a->a_accept.hosts = rt->rt_h2o.hosts;
    a->a_accept_tls = a->a_accept;
    a->a_accept_tls.ssl_ctx = rt->rt_ssl_ctx;
    a->a_listener = h2o_evloop_socket_create(a->a_loop, a->a_listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    a->a_listener->data = a;
    h2o_socket_read_start(a->a_listener, pk__on_accept);
    a->a_wake_sock = h2o_evloop_socket_create(a->a_loop, a->a_waker.wk_fd, H2O_SOCKET_FLAG_DONT_READ);
    a->a_wake_sock->data = a;
    h2o_socket_read_start(a->a_wake_sock, pk__on_wake);
    h2o_timeout_init(a->a_loop, &a->a_tick, PK__TICK_MS);
    a->a_tick_entry.cb = pk__on_tick;
    h2o_timeout_link(a->a_loop, &a->a_tick, &a->a_tick_entry);
    /* Messages may have arrived before the loop watched the eventfd. */
    pk_waker_kick(&a->a_waker);
    ck_pr_inc_uint(&rt->rt_started);

    while (!a->a_exit) {
        bool stopping = ck_pr_load_uint(&rt->rt_stopping) != 0;
        h2o_evloop_run(a->a_loop, stopping ? 20 : INT32_MAX);
        pk__synced(a);
        /* While a commit is in flight (or before the first transaction was
         * begun) the batch stays due: the syncer's kick brings the loop back. */
        if (a->a_apply_due && !a->a_sync_pending && pk_syncer_owner_turn(&a->a_syncer)) {
            a->a_apply_due = false;
            pk__apply_batch(a);
            if (pk_mbox_size(&a->a_inbox) > 0 || pk_mbox_size(&a->a_replies) > 0)
                pk_waker_kick(&a->a_waker);
        }
        if (!ck_pr_load_uint(&rt->rt_stopping))
            continue;
        uint64_t now = pk_mono_ns();
        if (!a->a_shutdown_started) {
            /* Stop accepting; ask HTTP/2 peers to stop opening streams. */
            a->a_shutdown_started = true;
            stop_at = now;
            h2o_socket_read_stop(a->a_listener);
            h2o_socket_close(a->a_listener);
            a->a_listener = NULL;
            h2o_context_request_shutdown(&a->a_ctx);
        }
        if (pk__quiescent(rt)) {
            /* Linger so the last answers leave the socket buffers. */
            if (quiet_since == 0)
                quiet_since = now;
            else if (now - quiet_since > PK__SHUTDOWN_LINGER_NS)
                a->a_exit = true;
        } else {
            quiet_since = 0;
        }
        if (now - stop_at > PK__SHUTDOWN_MAX_NS) {
            pk_log_warn("shard=%u shutdown timed out with %u requests in flight", a->a_index, a->a_inflight);
            a->a_exit = true;
        }
    }
    if (a->a_sync_pending) {
        pk_syncer_wait(&a->a_syncer);
        pk__synced(a);
    }
    return NULL;
}

/* Creates a listening socket with SO_REUSEPORT so each actor accepts on its
 * own queue and the kernel spreads connections. */
static int pk__listen(const char *host, uint16_t port, uint16_t *bound_port)
{
    struct addrinfo hints = {0}, *res = NULL;
    char portstr[8];
    int fd = -1, on = 1;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%u", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        pk_log_error("cannot resolve listen address %s: %s", host, gai_strerror(gai));
        return -EINVAL;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0)
        goto fail;
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 4096) != 0)
        goto fail;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        goto fail;
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    freeaddrinfo(res);
    return fd;
fail:;
    int rc = -errno;
    pk_log_error("cannot listen on %s:%u: %s", host, port, strerror(errno));
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return rc;
}

static void pk__close_all(pk_runtime_t *rt, unsigned opened);

/* A TLS context offering h2 and http/1.1 by ALPN, TLS 1.2 or newer. */
static int pk__tls_init(pk_runtime_t *rt, const pk_config_t *cfg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return -ENOMEM;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cf_tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, cfg->cf_tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        pk_log_error("cannot load TLS certificate %s / key %s", cfg->cf_tls_cert, cfg->cf_tls_key);
        SSL_CTX_free(ctx);
        return -EINVAL;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    rt->rt_ssl_ctx = ctx;
    return 0;
}

int pk_runtime_open(pk_runtime_t *rt, const pk_config_t *cfg, unsigned nshards)
{
    int rc;
    unsigned opened = 0;
    if (cfg->cf_tls_cert[0] != '\0' && (rc = pk__tls_init(rt, cfg)) != 0)
        return rc;
    rt->rt_cfg = cfg;
    rt->rt_nactors = nshards;
    rt->rt_actors = aligned_alloc(PK_CACHE_LINE, sizeof(pk_actor_t) * nshards);
    if (rt->rt_actors == NULL)
        return -ENOMEM;
    memset(rt->rt_actors, 0, sizeof(pk_actor_t) * nshards);

    uint16_t port = cfg->cf_listen_port;
    /* Reply boxes have a lane per actor and per worker: size the pool now. */
    rt->rt_workers.wk_count = nshards < 2 ? 2 : nshards;
    for (unsigned i = 0; i < nshards; i++) {
        pk_actor_t *a = &rt->rt_actors[i];
        a->a_rt = rt;
        a->a_index = i;
        a->a_listen_fd = -1;
        a->a_waker.wk_fd = -1;
        if ((rc = pk_store_open(&a->a_store, cfg->cf_data_dir, i, nshards, cfg->cf_sync_full, (size_t)cfg->cf_map_bytes)) != 0)
            goto fail;
        opened++;
        if ((rc = pk_waker_init(&a->a_waker)) != 0 || (rc = pk_jwtc_init(&a->a_jwtc)) != 0 ||
            (rc = pk_buyers_init(&a->a_buyers, cfg->cf_buyer_flush_ms)) != 0 ||
            (rc = pk_mbox_init(&a->a_inbox, nshards, PK_INBOX_CAPACITY, &a->a_waker)) != 0 ||
            (rc = pk_mbox_init(&a->a_replies, nshards + rt->rt_workers.wk_count, PK_REPLY_CAPACITY, &a->a_waker)) !=
                0)
            goto fail;
        /* Port 0 binds an ephemeral port once; the others share it. */
        rc = pk__listen(cfg->cf_listen_host, port, &port);
        if (rc < 0)
            goto fail;
        a->a_listen_fd = rc;
    }
    rt->rt_port = port;
    /* What fell due while the server was down is settled before any thread
     * runs, so /readyz never answers 200 with stale sales or orders. */
    for (unsigned i = 0; i < nshards; i++) {
        pk_actor_t *a = &rt->rt_actors[i];
        MDB_txn *txn;
        if ((rc = pk_store_begin(&a->a_store, false, &txn)) != 0)
            goto fail;
        int64_t now = pk_now_ms();
        if ((a->a_buyers.bs_stale && (rc = pk__buyers_rebuild(a, txn)) != 0) ||
            (rc = pk_shard_maintain(a, txn, now, &a->a_next_due_ms, NULL)) != 0) {
            pk_store_abort(&a->a_store, txn);
            goto fail;
        }
        if ((rc = pk_store_commit(&a->a_store, txn)) != 0)
            goto fail;
        /* Bounded per call: go on until nothing is due any more. */
        if (a->a_next_due_ms <= now) {
            i--;
            continue;
        }
    }
    return 0;
fail:
    pk__close_all(rt, opened);
    return rc;
}

int pk_runtime_launch(pk_runtime_t *rt)
{
    int rc;
    unsigned started = 0, nshards = rt->rt_nactors;
    const pk_config_t *cfg = rt->rt_cfg;
    if ((rc = pk_workers_start(&rt->rt_workers, rt, rt->rt_workers.wk_count)) != 0)
        goto fail;
    for (unsigned i = 0; i < nshards; i++) {
        pk_actor_t *a = &rt->rt_actors[i];
        if ((rc = pk_syncer_start(&a->a_syncer, &a->a_store, &a->a_waker)) != 0 ||
            pthread_create(&a->a_thread, NULL, pk__actor_main, a) != 0) {
            if (rc == 0)
                rc = -EAGAIN;
            ck_pr_store_uint(&rt->rt_stopping, 1);
            for (unsigned j = 0; j < started; j++) {
                pk_waker_kick(&rt->rt_actors[j].a_waker);
                pthread_join(rt->rt_actors[j].a_thread, NULL);
            }
            for (unsigned j = 0; j <= i; j++)
                pk_syncer_stop(&rt->rt_actors[j].a_syncer);
            pk_workers_stop(&rt->rt_workers);
            goto fail;
        }
        /* Named for top -H and perf: pk-actor-N owns shard N, pk-sync-N commits it. */
        pk_thread_name(a->a_thread, "pk-actor", i);
        pk_thread_name(a->a_syncer.sy_thread, "pk-sync", i);
        started++;
    }
    pk_alloc_info_t al;
    pk_alloc_info(&al);
    pk_log_info("listening on %s:%u with %u actor threads (http/1.1, h2c%s); allocator %s thp=%s dirty_decay_ms=%zd",
                cfg->cf_listen_host, rt->rt_port, nshards, rt->rt_ssl_ctx ? ", h2 over TLS" : "", al.ai_allocator,
                al.ai_thp, al.ai_dirty_decay_ms);
    return 0;
fail:
    pk__close_all(rt, nshards);
    return rc;
}

static void pk__close_all(pk_runtime_t *rt, unsigned opened)
{
    for (unsigned i = 0; i < rt->rt_nactors; i++) {
        pk_actor_t *a = &rt->rt_actors[i];
        if (a->a_listen_fd >= 0)
            close(a->a_listen_fd);
        pk_mbox_destroy(&a->a_inbox);
        pk_mbox_destroy(&a->a_replies);
        pk_waker_destroy(&a->a_waker);
        pk_jwtc_destroy(&a->a_jwtc);
        pk_buyers_destroy(&a->a_buyers);
        if (i < opened)
            pk_store_close(&a->a_store);
    }
    free(rt->rt_actors);
    rt->rt_actors = NULL;
}

bool pk_runtime_ready(pk_runtime_t *rt)
{
    return ck_pr_load_uint(&rt->rt_started) == rt->rt_nactors && ck_pr_load_uint(&rt->rt_stopping) == 0;
}

static void pk__buyers_final_flush(pk_actor_t *a)
{
    MDB_txn *txn;
    if (a->a_buyers.bs_stale || a->a_buyers.bs_count == 0)
        return;
    if (pk_store_begin(&a->a_store, false, &txn) != 0)
        goto fail;
    if (pk_buyers_flush(&a->a_store, &a->a_buyers, txn) != 0) {
        pk_store_abort(&a->a_store, txn);
        goto fail;
    }
    if (pk_store_commit(&a->a_store, txn) == 0)
        return;
fail:
    pk_log_warn("shard=%u buyer rows not flushed at shutdown: the next start replays their orders", a->a_index);
}

void pk_runtime_stop(pk_runtime_t *rt)
{
    ck_pr_store_uint(&rt->rt_stopping, 1);
    for (unsigned i = 0; i < rt->rt_nactors; i++)
        pk_waker_kick(&rt->rt_actors[i].a_waker);
    for (unsigned i = 0; i < rt->rt_nactors; i++)
        pthread_join(rt->rt_actors[i].a_thread, NULL);
    /* The stores are this thread's to write again once their syncers end. */
    for (unsigned i = 0; i < rt->rt_nactors; i++)
        pk_syncer_stop(&rt->rt_actors[i].a_syncer);
    pk_workers_stop(&rt->rt_workers);
    /* No actor runs: pending buyer rows are stored, so a restart replays
     * nothing. */
    for (unsigned i = 0; i < rt->rt_nactors; i++)
        pk__buyers_final_flush(&rt->rt_actors[i]);
    /* Every committed event had its chance to be shipped; the cursors are
     * persisted while the stores are still open. */
    if (rt->rt_kafka != NULL)
        pk_kafka_stop(rt->rt_kafka);
    uint64_t batches = 0, msgs = 0, max = 0;
    for (unsigned i = 0; i < rt->rt_nactors; i++) {
        pk_actor_t *a = &rt->rt_actors[i];
        batches += a->a_stats.as_batches;
        msgs += a->a_stats.as_batch_msgs;
        if (a->a_stats.as_batch_max > max)
            max = a->a_stats.as_batch_max;
        pk_store_close(&a->a_store);
        pk_mbox_destroy(&a->a_inbox);
        pk_mbox_destroy(&a->a_replies);
        pk_waker_destroy(&a->a_waker);
        pk_jwtc_destroy(&a->a_jwtc);
        pk_buyers_destroy(&a->a_buyers);
    }
    pk_log_info("stopped: %llu group commits, %llu messages, largest batch %llu", (unsigned long long)batches,
                (unsigned long long)msgs, (unsigned long long)max);
    free(rt->rt_actors);
    rt->rt_actors = NULL;
}
