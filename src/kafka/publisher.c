/* The publisher thread: outbox rows -> idempotent producer -> delivery
 * reports -> each shard's acknowledged seq.  See include/pickple/kafka.h. */
#include <assert.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "pickple/actor.h"
#include "pickple/log.h"
#include "kafka_internal.h"

#define PK__STOP_FLUSH_MS 2000   /* at shutdown, wait this long for delivery reports */
#define PK__BACKOFF_MIN_MS 200   /* producer re-creation backoff, doubling ... */
#define PK__BACKOFF_MAX_MS 10000 /* ... up to this */
#define PK__READ_CHUNK 2048      /* events per read transaction */
#define PK__IDLE_WAIT_MS 100
#define PK__LOG_EVERY_MS 10000
#define PK__STALL_MS 5000        /* no delivery report for this long with events in flight: stalled */
#define PK__LOG_BACKLOG_MIN 10000

/* A message's opaque: the shard in the low 6 bits, the seq above. */
_Static_assert(PK_THREADS_MAX <= 64, "shard index must fit 6 bits");
#define PK__OPAQUE(shard, seq) ((void *)(uintptr_t)((seq) << 6 | (shard)))

static int64_t pk__mono_ms(void)
{
    return (int64_t)(pk_mono_ns() / 1000000);
}

static uint64_t pk__inflight(const pk__kafka_shard_t *ks)
{
    return ks->ks_next - 1 - ks->ks_acked;
}

/* Publisher thread: marks seq delivered and advances the shard's
 * acknowledged prefix over every contiguous delivered seq. */
static void pk__mark_done(pk__kafka_shard_t *ks, uint64_t seq)
{
    assert(seq > ks->ks_acked && seq < ks->ks_next);
    ks->ks_done[seq % PK_KAFKA_INFLIGHT_MAX] = 1;
    uint64_t acked = ks->ks_acked;
    while (acked + 1 < ks->ks_next && ks->ks_done[(acked + 1) % PK_KAFKA_INFLIGHT_MAX]) {
        ks->ks_done[(acked + 1) % PK_KAFKA_INFLIGHT_MAX] = 0;
        acked++;
    }
    if (acked != ks->ks_acked) {
        ck_pr_store_64(&ks->ks_delivered, ks->ks_delivered + (acked - ks->ks_acked));
        /* Relaxed is enough: the owner only persists this number and
         * deletes rows the publisher has finished reading (and a read
         * transaction is a snapshot anyway). */
        ck_pr_store_64(&ks->ks_acked, acked);
    }
}

/* Delivery report, served by rd_kafka_poll() on the publisher thread. */
static void pk__on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    pk_kafka_t *k = opaque;
    if (k->k_discard_reports)
        return;
    uintptr_t tag = (uintptr_t)m->_private;
    unsigned shard = (unsigned)(tag & 63);
    uint64_t seq = (uint64_t)tag >> 6;
    assert(shard < k->k_nshards);
    k->k_last_report_ms = pk__mono_ms();
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* With no message timeout this is a permanent refusal or the end of
         * the producer; successes of other partitions still count. */
        if (!k->k_failed)
            snprintf(k->k_fail_reason, sizeof(k->k_fail_reason), "delivery of event %u-%llu to %s failed: %s",
                     shard, (unsigned long long)seq, rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        k->k_failed = true;
        return;
    }
    pk__mark_done(&k->k_shards[shard], seq);
    k->k_backoff_ms = 0;
}

/* Error callback, served by rd_kafka_poll() on the publisher thread. */
static void pk__on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    pk_kafka_t *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[256];
        rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(rk, why, sizeof(why));
        snprintf(k->k_fail_reason, sizeof(k->k_fail_reason), "fatal producer error %s: %s",
                 rd_kafka_err2name(ferr), why);
        k->k_failed = true;
        return;
    }
    /* Connection failures are already in librdkafka's own log (FAIL). */
    if (err != RD_KAFKA_RESP_ERR__TRANSPORT)
        pk_log_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* librdkafka's own log lines (any of its threads; pk_log is thread-safe). */
static void pk__on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* pickple sets enable.gapless.guarantee on purpose (see pk__producer_new);
     * librdkafka warns on every producer that the property is experimental. */
    if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "enable.gapless.guarantee") != NULL)
        return;
    pk_log(level <= LOG_ERR ? PK_LOG_ERROR : level <= LOG_WARNING ? PK_LOG_WARN : PK_LOG_INFO, "kafka: %s: %s",
           fac, buf);
}

static void pk__drain_fd(int fd)
{
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

static int pk__producer_new(pk_kafka_t *k)
{
    char errstr[512], queue_max[24];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf == NULL)
        return -ENOMEM;
    snprintf(queue_max, sizeof(queue_max), "%u", k->k_nshards * PK_KAFKA_INFLIGHT_MAX + 1024);
    const char *settings[][2] = {
        {"bootstrap.servers", k->k_brokers},
        {"client.id", "pickple"},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        /* A batch failure that could leave a gap is fatal: the producer is
         * then replaced and resumes from the acknowledged seq. */
        {"enable.gapless.guarantee", "true"},
        /* Never expire an event: the outbox on disk is the source, and an
         * expired in-flight message could reorder a key. */
        {"message.timeout.ms", "0"},
        {"queue.buffering.max.messages", queue_max},
        {"linger.ms", "5"},
        /* Same key -> same partition as the Java client's default. */
        {"partitioner", "murmur2_random"},
        /* Topics come from CreateTopics with --kafka-partitions, or an
         * operator; never from a broker's defaults. */
        {"allow.auto.create.topics", "false"},
        {"reconnect.backoff.ms", "100"},
        {"reconnect.backoff.max.ms", "5000"},
        {"retry.backoff.ms", "100"},
        {"socket.timeout.ms", "10000"},
        {"log_level", "4"},
    };
    for (size_t i = 0; i < PK_ARRAY_LEN(settings); i++) {
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
            pk_log_error("kafka: %s=%s: %s", settings[i][0], settings[i][1], errstr);
            rd_kafka_conf_destroy(conf);
            return -EINVAL;
        }
    }
    /* The operator's (security, rack, ...), checked at start-up already. */
    if (pk_kafka_settings_apply(&k->k_settings, k->k_settings_path, conf, errstr, sizeof(errstr)) != 0) {
        pk_log_error("kafka: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return -EINVAL;
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_dr_msg_cb(conf, pk__on_delivery);
    rd_kafka_conf_set_error_cb(conf, pk__on_error);
    rd_kafka_conf_set_log_cb(conf, pk__on_log);
    k->k_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (k->k_rk == NULL) {
        pk_log_error("kafka: cannot create the producer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return -EINVAL;
    }
    /* librdkafka writes a byte to the pipe when its main queue (delivery
     * reports, errors) goes from empty to non-empty. */
    rd_kafka_queue_t *q = rd_kafka_queue_get_main(k->k_rk);
    rd_kafka_queue_io_event_enable(q, k->k_rk_fd[1], "1", 1);
    rd_kafka_queue_destroy(q);
    for (unsigned t = 0; t < PK_KAFKA_TOPIC_COUNT; t++) {
        char name[256];
        snprintf(name, sizeof(name), "%s.%s", k->k_prefix, pk_kafka_topics[t]);
        k->k_topics[t] = rd_kafka_topic_new(k->k_rk, name, NULL);
        if (k->k_topics[t] == NULL) {
            pk_log_error("kafka: cannot create topic handle %s: %s", name, rd_kafka_err2str(rd_kafka_last_error()));
            return -EINVAL; /* the caller destroys the producer */
        }
    }
    k->k_failed = false;
    k->k_last_report_ms = pk__mono_ms();
    return 0;
}

/* Destroys the producer without waiting for anything: whatever it had not
 * acknowledged is produced again by the next one, from each shard's
 * acknowledged seq. */
static void pk__producer_destroy(pk_kafka_t *k)
{
    if (k->k_rk == NULL)
        return;
    k->k_discard_reports = true;
    if (k->k_admin_q != NULL)
        rd_kafka_queue_destroy(k->k_admin_q); /* the answer no longer matters */
    k->k_admin_q = NULL;
    rd_kafka_purge(k->k_rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(k->k_rk, 0);
    for (unsigned t = 0; t < PK_KAFKA_TOPIC_COUNT; t++) {
        if (k->k_topics[t] != NULL)
            rd_kafka_topic_destroy(k->k_topics[t]);
        k->k_topics[t] = NULL;
    }
    rd_kafka_destroy(k->k_rk);
    k->k_rk = NULL;
    k->k_discard_reports = false;
    pk__drain_fd(k->k_rk_fd[0]);
    for (unsigned i = 0; i < k->k_nshards; i++) {
        pk__kafka_shard_t *ks = &k->k_shards[i];
        ks->ks_next = ks->ks_acked + 1;
        memset(ks->ks_done, 0, PK_KAFKA_INFLIGHT_MAX);
    }
}

static void pk__schedule_restart(pk_kafka_t *k, int64_t now)
{
    k->k_backoff_ms = k->k_backoff_ms == 0 ? PK__BACKOFF_MIN_MS
                      : k->k_backoff_ms * 2 > PK__BACKOFF_MAX_MS ? PK__BACKOFF_MAX_MS
                                                                 : k->k_backoff_ms * 2;
    k->k_restart_at_ms = now + k->k_backoff_ms;
}

static void pk__producer_start(pk_kafka_t *k, int64_t now)
{
    if (pk__producer_new(k) != 0) {
        pk__producer_destroy(k);
        pk__schedule_restart(k, now);
        return;
    }
    if (k->k_create_topics) {
        k->k_admin_q = pk__kafka_create_topics(k->k_rk, k->k_prefix, k->k_partitions);
        k->k_create_topics = false;
    }
}

/*
 * Produces what shard i committed beyond its next seq: at most
 * PK__READ_CHUNK events and while fewer than PK_KAFKA_INFLIGHT_MAX are in
 * flight.  Returns true when it stopped at the chunk bound (more to read).
 */
static bool pk__fill_shard(pk_kafka_t *k, unsigned i)
{
    pk__kafka_shard_t *ks = &k->k_shards[i];
    uint64_t committed = ck_pr_load_64(&ks->ks_committed_next);
    uint64_t room = PK_KAFKA_INFLIGHT_MAX - pk__inflight(ks);
    unsigned n = 0;
    MDB_cursor *cur = NULL;
    MDB_val key, val;
    uint8_t kb[8];
    int rc;
    if (ks->ks_next >= committed || room == 0)
        return false;
    rc = ks->ks_rtxn == NULL ? mdb_txn_begin(ks->ks_store->st_env, NULL, MDB_RDONLY, &ks->ks_rtxn)
                             : mdb_txn_renew(ks->ks_rtxn);
    if (rc != 0) {
        pk_log_error("kafka: shard=%u cannot read the outbox: %s", i, mdb_strerror(rc));
        if (ks->ks_rtxn != NULL)
            mdb_txn_abort(ks->ks_rtxn);
        ks->ks_rtxn = NULL;
        return false;
    }
    if ((rc = mdb_cursor_open(ks->ks_rtxn, ks->ks_store->st_dbi[PK_TBL_OUTBOX], &cur)) != 0)
        goto done;
    pk_store_key_u64(ks->ks_next, kb);
    key = (MDB_val){8, kb};
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && n < PK__READ_CHUNK && room > 0) {
        uint64_t seq = pk_store_u64_of_key(&key);
        pk_outbox_event_t ev;
        if (seq != ks->ks_next) {
            /* Seqs are allocated without holes by committed transactions,
             * so this is damage: what is missing cannot be sent. */
            pk_log_error("kafka: shard=%u outbox events %llu..%llu are missing; continuing after them", i,
                         (unsigned long long)ks->ks_next, (unsigned long long)seq - 1);
            if (seq - ks->ks_next > room)
                break;
            while (ks->ks_next < seq) {
                uint64_t missing = ks->ks_next++;
                room--;
                pk__mark_done(ks, missing);
            }
            continue;
        }
        int topic = -1;
        pk_buf_t value = {0};
        if (pk_store_outbox_decode(&val, &ev) == 0 && pk_kafka_event_value(&ev, i, seq, &value) == 0)
            topic = pk_kafka_topic_of_type(ev.oe_type, ev.oe_type_len);
        if (topic < 0) {
            /* A programmer error: mirroring of this shard stops here (nothing
             * is skipped) and the backlog grows until a fixed build runs. */
            if (ks->ks_next != ks->ks_stuck_seq)
                pk_log_error("kafka: shard=%u outbox event %llu is unreadable or of an unknown type; "
                             "this shard's mirroring waits for a fixed build",
                             i, (unsigned long long)seq);
            ks->ks_stuck_seq = seq;
            pk_buf_free(&value);
            break;
        }
        char keytext[24];
        int keylen = snprintf(keytext, sizeof(keytext), "%llu", (unsigned long long)ev.oe_key_id);
        rd_kafka_resp_err_t err = rd_kafka_producev(
            k->k_rk, RD_KAFKA_V_RKT(k->k_topics[topic]), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(keytext, (size_t)keylen), RD_KAFKA_V_VALUE(value.b_data, value.b_len),
            RD_KAFKA_V_HEADER("content-type", "application/json", 16), RD_KAFKA_V_OPAQUE(PK__OPAQUE(i, seq)),
            RD_KAFKA_V_END);
        pk_buf_free(&value);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL && !k->k_failed) {
                snprintf(k->k_fail_reason, sizeof(k->k_fail_reason), "produce of event %u-%llu failed: %s", i,
                         (unsigned long long)seq, rd_kafka_err2str(err));
                k->k_failed = true;
            }
            break;
        }
        ks->ks_next++;
        n++;
        room--;
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
done:
    if (rc != 0 && rc != MDB_NOTFOUND)
        pk_log_error("kafka: shard=%u cannot read the outbox: %s", i, mdb_strerror(rc));
    if (cur != NULL)
        mdb_cursor_close(cur);
    mdb_txn_reset(ks->ks_rtxn);
    return n == PK__READ_CHUNK;
}

/* Logs the backlog per shard when it is large or stalled, and once when it
 * drained after that. */
static void pk__log_backlog(pk_kafka_t *k, int64_t now)
{
    char per_shard[512];
    size_t o = 0;
    uint64_t total = 0, inflight = 0;
    if (now < k->k_next_log_ms)
        return;
    k->k_next_log_ms = now + PK__LOG_EVERY_MS;
    for (unsigned i = 0; i < k->k_nshards; i++) {
        pk__kafka_shard_t *ks = &k->k_shards[i];
        uint64_t backlog = ck_pr_load_64(&ks->ks_committed_next) - 1 - ks->ks_acked;
        total += backlog;
        inflight += pk__inflight(ks);
        if (o + 32 < sizeof(per_shard))
            o += (size_t)snprintf(per_shard + o, sizeof(per_shard) - o, "%sshard%u=%llu", i ? " " : "", i,
                                  (unsigned long long)backlog);
    }
    bool stalled = k->k_rk == NULL || (inflight > 0 && now - k->k_last_report_ms > PK__STALL_MS);
    if (total > 0 && (stalled || total >= PK__LOG_BACKLOG_MIN)) {
        pk_log_warn("kafka: backlog %llu events on disk (%s)%s", (unsigned long long)total, per_shard,
                    k->k_rk == NULL ? "; producer restarting"
                    : stalled       ? "; brokers are not acknowledging, retrying"
                                    : "; draining");
        k->k_logged_backlog = total;
    } else if (total == 0 && k->k_logged_backlog > 0) {
        pk_log_info("kafka: backlog drained");
        k->k_logged_backlog = 0;
    }
}

/* Sleeps until an actor kicks, librdkafka queues a report, or timeout. */
static void pk__wait(pk_kafka_t *k, int timeout_ms)
{
    struct pollfd fds[2] = {{.fd = k->k_waker.wk_fd, .events = POLLIN}, {.fd = k->k_rk_fd[0], .events = POLLIN}};
    if (poll(fds, 2, timeout_ms) < 0 && errno != EINTR)
        pk_log_error("kafka: poll: %s", strerror(errno));
}

static void *pk__publisher_main(void *arg)
{
    pk_kafka_t *k = arg;
    int64_t flush_until = 0;
    for (;;) {
        int64_t now = pk__mono_ms();
        bool stopping = ck_pr_load_uint(&k->k_stop) != 0;
        /* Disarm and empty both wake-up sources before looking for work, so
         * a kick or report after this point wakes the next poll. */
        pk_waker_drain(&k->k_waker);
        pk__drain_fd(k->k_rk_fd[0]);
        if (stopping) {
            uint64_t inflight = 0;
            for (unsigned i = 0; i < k->k_nshards; i++)
                inflight += pk__inflight(&k->k_shards[i]);
            if (flush_until == 0)
                flush_until = now + PK__STOP_FLUSH_MS;
            if (k->k_rk == NULL || k->k_failed || inflight == 0 || now >= flush_until)
                break;
        }
        if (k->k_rk == NULL && !stopping && now >= k->k_restart_at_ms)
            pk__producer_start(k, now);
        bool more = false;
        if (k->k_rk != NULL) {
            rd_kafka_poll(k->k_rk, 0);
            if (k->k_admin_q != NULL && pk__kafka_topics_created(k->k_admin_q, k->k_partitions)) {
                rd_kafka_queue_destroy(k->k_admin_q);
                k->k_admin_q = NULL;
            }
            if (k->k_failed && !stopping) {
                pk__producer_destroy(k);
                pk__schedule_restart(k, now);
                ck_pr_store_64(&k->k_restarts, k->k_restarts + 1);
                pk_log_warn("kafka: %s; producer recreated in %u ms, resuming from the acknowledged events",
                            k->k_fail_reason, k->k_backoff_ms);
                continue;
            }
            for (unsigned i = 0; i < k->k_nshards && !stopping && !k->k_failed; i++)
                more |= pk__fill_shard(k, i);
        }
        pk__log_backlog(k, now);
        if (!more) {
            int64_t timeout = PK__IDLE_WAIT_MS;
            if (k->k_rk == NULL && k->k_restart_at_ms - now < timeout)
                timeout = k->k_restart_at_ms > now ? k->k_restart_at_ms - now : 0;
            pk__wait(k, (int)timeout);
        }
    }
    pk__producer_destroy(k);
    return NULL;
}

int pk_kafka_start(pk_runtime_t *rt, pk_kafka_t **out)
{
    const pk_config_t *cfg = rt->rt_cfg;
    int rc = -ENOMEM;
    *out = NULL;
    if (strcmp(cfg->cf_kafka_brokers, "off") == 0) {
        pk_log_info("kafka: mirroring is off (--kafka-brokers off); events stay in the outbox on disk");
        return 0;
    }
    pk_kafka_t *k = aligned_alloc(PK_CACHE_LINE, sizeof(*k));
    if (k == NULL)
        return -ENOMEM;
    memset(k, 0, sizeof(*k));
    k->k_rt = rt;
    k->k_nshards = rt->rt_nactors;
    k->k_rk_fd[0] = k->k_rk_fd[1] = -1;
    k->k_waker.wk_fd = -1;
    k->k_partitions = cfg->cf_kafka_partitions;
    snprintf(k->k_prefix, sizeof(k->k_prefix), "%s", cfg->cf_kafka_topic_prefix);
    k->k_shards = aligned_alloc(PK_CACHE_LINE, sizeof(pk__kafka_shard_t) * k->k_nshards);
    if (k->k_shards == NULL)
        goto fail;
    memset(k->k_shards, 0, sizeof(pk__kafka_shard_t) * k->k_nshards);
    for (unsigned i = 0; i < k->k_nshards; i++) {
        pk__kafka_shard_t *ks = &k->k_shards[i];
        pk_store_t *st = &rt->rt_actors[i].a_store;
        MDB_txn *txn;
        MDB_cursor *cur;
        MDB_val key, val;
        uint64_t acked;
        ks->ks_store = st;
        if ((ks->ks_done = calloc(PK_KAFKA_INFLIGHT_MAX, 1)) == NULL)
            goto fail;
        /* No thread runs yet: the stores are ours to read. */
        if ((rc = pk_store_begin(st, true, &txn)) != 0)
            goto fail;
        rc = pk_store_outbox_cursor(st, txn, &acked);
        ks->ks_first_row = st->st_outbox_next;
        if (rc == 0 && mdb_cursor_open(txn, st->st_dbi[PK_TBL_OUTBOX], &cur) == 0) {
            if (mdb_cursor_get(cur, &key, &val, MDB_FIRST) == 0)
                ks->ks_first_row = pk_store_u64_of_key(&key);
            mdb_cursor_close(cur);
        }
        mdb_txn_abort(txn);
        if (rc != 0)
            goto fail;
        ks->ks_acked = ks->ks_persisted = acked;
        ks->ks_next = acked + 1;
        ks->ks_committed_next = st->st_outbox_next;
        ks->ks_trim_more = ks->ks_first_row <= acked;
        if (st->st_outbox_next - 1 > acked)
            pk_log_info("kafka: shard=%u %llu events to ship from the outbox (after event %u-%llu)", i,
                        (unsigned long long)(st->st_outbox_next - 1 - acked), i, (unsigned long long)acked);
    }
    if (cfg->cf_kafka_config_file[0] != '\0') {
        /* Refused here, before any request is served, not at the first
         * producer: a typo in a password setting must stop the start-up. */
        char why[512];
        rd_kafka_conf_t *probe = rd_kafka_conf_new();
        k->k_settings_path = cfg->cf_kafka_config_file;
        rc = pk_kafka_settings_load(&k->k_settings, k->k_settings_path, why, sizeof(why));
        if (rc == 0)
            rc = probe == NULL ? -ENOMEM : pk_kafka_settings_apply(&k->k_settings, k->k_settings_path, probe, why,
                                                                     sizeof(why));
        if (probe != NULL)
            rd_kafka_conf_destroy(probe);
        if (rc != 0) {
            pk_log_error("kafka: --kafka-config-file: %s", why);
            goto fail;
        }
        pk_log_info("kafka: %u settings from %s", k->k_settings.kx_count, k->k_settings_path);
    }
    if (pipe2(k->k_rk_fd, O_NONBLOCK | O_CLOEXEC) != 0) {
        rc = -errno;
        goto fail;
    }
    if ((rc = pk_waker_init(&k->k_waker)) != 0)
        goto fail;
    if (strcmp(cfg->cf_kafka_brokers, "embedded") == 0) {
        if ((rc = pk_kafka_mock_start(&k->k_mock, k->k_prefix, k->k_partitions)) != 0)
            goto fail;
        snprintf(k->k_brokers, sizeof(k->k_brokers), "%s", pk_kafka_mock_bootstraps(k->k_mock));
        pk_log_info("kafka: embedded development broker on %s (in memory only, for trying pickple and tests; "
                    "production points --kafka-brokers at a real cluster); try: kcat -b %s -t %s.orders -C",
                    k->k_brokers, k->k_brokers, k->k_prefix);
    } else {
        snprintf(k->k_brokers, sizeof(k->k_brokers), "%s", cfg->cf_kafka_brokers);
        k->k_create_topics = true;
        pk_log_info("kafka: mirroring to %s, topics %s.*", k->k_brokers, k->k_prefix);
    }
    if (pthread_create(&k->k_thread, NULL, pk__publisher_main, k) != 0) {
        rc = -EAGAIN;
        goto fail;
    }
    k->k_thread_started = true;
    pthread_setname_np(k->k_thread, "pk-kafka");
    *out = k;
    return 0;
fail:
    pk_log_error("kafka: cannot start mirroring: %s", pk_strerror(rc));
    pk_kafka_free(k);
    return rc;
}

void pk_kafka_stop(pk_kafka_t *k)
{
    ck_pr_store_uint(&k->k_stop, 1);
    pk_waker_kick(&k->k_waker);
    if (k->k_thread_started)
        pthread_join(k->k_thread, NULL);
    k->k_thread_started = false;
    for (unsigned i = 0; i < k->k_nshards; i++) {
        if (k->k_shards[i].ks_rtxn != NULL)
            mdb_txn_abort(k->k_shards[i].ks_rtxn);
        k->k_shards[i].ks_rtxn = NULL;
    }
    pk__kafka_persist(k);
    pk_kafka_mock_stop(k->k_mock);
    k->k_mock = NULL;
}

void pk_kafka_free(pk_kafka_t *k)
{
    if (k == NULL)
        return;
    assert(!k->k_thread_started);
    pk_kafka_mock_stop(k->k_mock);
    for (unsigned i = 0; k->k_shards != NULL && i < k->k_nshards; i++)
        free(k->k_shards[i].ks_done);
    free(k->k_shards);
    if (k->k_rk_fd[0] >= 0)
        close(k->k_rk_fd[0]);
    if (k->k_rk_fd[1] >= 0)
        close(k->k_rk_fd[1]);
    pk_waker_destroy(&k->k_waker);
    pk_kafka_settings_free(&k->k_settings);
    free(k);
}

void pk_kafka_shard_stats(const pk_kafka_t *k, unsigned shard, pk_kafka_shard_stats_t *out)
{
    pk__kafka_shard_t *ks = &k->k_shards[shard];
    uint64_t next = ck_pr_load_64(&ks->ks_committed_next);
    uint64_t acked = ck_pr_load_64(&ks->ks_acked);
    uint64_t first = ck_pr_load_64(&ks->ks_first_row);
    out->kss_acked_seq = acked;
    out->kss_backlog = next - 1 > acked ? next - 1 - acked : 0;
    out->kss_delivered = ck_pr_load_64(&ks->ks_delivered);
    out->kss_outbox_rows = next > first ? next - first : 0;
}

uint64_t pk_kafka_restarts(const pk_kafka_t *k)
{
    return ck_pr_load_64((uint64_t *)&k->k_restarts);
}
