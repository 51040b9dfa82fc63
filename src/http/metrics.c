/* GET /metrics: Prometheus text exposition of the runtime's counters. */
#include <ck_pr.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "pickple/alloc.h"
#include "pickple/http.h"
#include "pickple/kafka.h"
#include "pickple/log.h"

/* Room for the page: a fixed part and each shard's lines (5.1 KiB at
 * start, 5.3 with Kafka on, a little more as the counters grow digits);
 * the whole page must fit, or it is not sent. */
#define PK__METRICS_BYTES_FIXED 4096
#define PK__METRICS_BYTES_PER_SHARD 8192

typedef struct pk__metrics_buf {
    char *mb_data;
    size_t mb_len, mb_cap;
    bool mb_truncated;
} pk__metrics_buf_t;

static void pk__emit(pk__metrics_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pk__emit(pk__metrics_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->mb_data + b->mb_len, b->mb_cap - b->mb_len, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < b->mb_cap - b->mb_len)
        b->mb_len += (size_t)n;
    else
        b->mb_truncated = true;
}

/* Per-shard u64 statistics exported as they are. */
static const struct {
    const char *name;
    const char *type;
    const char *help;
    size_t offset; /* in pk_actor_stats_t */
} pk__shard_stats[] = {
    {"pickple_commit_batches_total", "counter", "Write transactions committed (group commits).",
     offsetof(pk_actor_stats_t, as_batches)},
    {"pickple_commit_batch_messages_total", "counter", "Messages applied in committed batches.",
     offsetof(pk_actor_stats_t, as_batch_msgs)},
    {"pickple_commit_batch_max", "gauge", "Largest group commit so far.", offsetof(pk_actor_stats_t, as_batch_max)},
    {"pickple_commit_batches_midturn_total", "counter",
     "Committed batches answered between two requests of a loop turn rather than after the turn.",
     offsetof(pk_actor_stats_t, as_midturn_batches)},
    {"pickple_read_batches_total", "counter", "Read-only batches (no commit).",
     offsetof(pk_actor_stats_t, as_read_batches)},
    {"pickple_rejected_busy_total", "counter", "Requests answered 503 because a mailbox lane was full.",
     offsetof(pk_actor_stats_t, as_rejected_full)},
    {"pickple_store_errors_total", "counter", "Batches aborted by a storage failure.",
     offsetof(pk_actor_stats_t, as_store_errors)},
    {"pickple_batch_apply_microseconds_total", "counter",
     "Time spent applying messages of committed batches, before the commit.", offsetof(pk_actor_stats_t, as_apply_us)},
    {"pickple_commit_microseconds_total", "counter",
     "From each batch's hand-over to the shard's syncer until the owner took it back committed: the commit "
     "itself (pickple_sync_microseconds) plus the rest of the owner's loop turn.",
     offsetof(pk_actor_stats_t, as_commit_us)},
};

/* Kafka mirroring, per shard (absent with --kafka-brokers off). */
static const struct {
    const char *name;
    const char *type;
    const char *help;
    size_t offset; /* in pk_kafka_shard_stats_t */
} pk__kafka_stats[] = {
    {"pickple_kafka_backlog_events", "gauge", "Committed events not yet acknowledged by Kafka.",
     offsetof(pk_kafka_shard_stats_t, kss_backlog)},
    {"pickple_kafka_delivered_total", "counter", "Events acknowledged by Kafka since start.",
     offsetof(pk_kafka_shard_stats_t, kss_delivered)},
    {"pickple_kafka_acked_seq", "gauge", "Outbox sequence number up to which Kafka acknowledged every event.",
     offsetof(pk_kafka_shard_stats_t, kss_acked_seq)},
    {"pickple_kafka_outbox_rows", "gauge", "Outbox rows on disk (backlog plus acknowledged rows not yet trimmed).",
     offsetof(pk_kafka_shard_stats_t, kss_outbox_rows)},
};

/* One histogram: counts[k] observations of at most first << k, the last
 * bucket unbounded; the count is the sum of the buckets.  labels: what
 * goes before le, e.g. shard="0". */
static void pk__emit_hist(pk__metrics_buf_t *b, const char *name, const char *labels, uint64_t *counts,
                          unsigned nbuckets, unsigned first, uint64_t sum)
{
    uint64_t cum = 0;
    for (unsigned k = 0; k < nbuckets; k++) {
        cum += ck_pr_load_64(&counts[k]);
        if (k + 1 < nbuckets)
            pk__emit(b, "%s_bucket{%s,le=\"%u\"} %llu\n", name, labels, first << k, (unsigned long long)cum);
        else
            pk__emit(b, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
    }
    pk__emit(b, "%s_sum{%s} %llu\n", name, labels, (unsigned long long)sum);
    pk__emit(b, "%s_count{%s} %llu\n", name, labels, (unsigned long long)cum);
}

static void pk__emit_kafka(pk__metrics_buf_t *b, pk_runtime_t *rt)
{
    for (size_t m = 0; m < PK_ARRAY_LEN(pk__kafka_stats); m++) {
        pk__emit(b, "# HELP %s %s\n# TYPE %s %s\n", pk__kafka_stats[m].name, pk__kafka_stats[m].help,
                 pk__kafka_stats[m].name, pk__kafka_stats[m].type);
        for (unsigned i = 0; i < rt->rt_nactors; i++) {
            pk_kafka_shard_stats_t s;
            pk_kafka_shard_stats(rt->rt_kafka, i, &s);
            pk__emit(b, "%s{shard=\"%u\"} %llu\n", pk__kafka_stats[m].name, i,
                     (unsigned long long)*(uint64_t *)((char *)&s + pk__kafka_stats[m].offset));
        }
    }
    pk__emit(b, "# HELP pickple_kafka_producer_restarts_total Producers replaced after a fatal error or a failed "
                "delivery.\n# TYPE pickple_kafka_producer_restarts_total counter\n"
                "pickple_kafka_producer_restarts_total %llu\n",
             (unsigned long long)pk_kafka_restarts(rt->rt_kafka));
}

void pk_h_metrics(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    pk_runtime_t *rt = a->a_rt;
    size_t cap = PK__METRICS_BYTES_FIXED + (size_t)PK__METRICS_BYTES_PER_SHARD * rt->rt_nactors;
    pk__metrics_buf_t b = {h2o_mem_alloc_pool(&req->pool, cap), 0, cap, false};
    for (size_t m = 0; m < PK_ARRAY_LEN(pk__shard_stats); m++) {
        pk__emit(&b, "# HELP %s %s\n# TYPE %s %s\n", pk__shard_stats[m].name, pk__shard_stats[m].help,
                 pk__shard_stats[m].name, pk__shard_stats[m].type);
        for (unsigned i = 0; i < rt->rt_nactors; i++) {
            uint64_t *field = (uint64_t *)((char *)&rt->rt_actors[i].a_stats + pk__shard_stats[m].offset);
            pk__emit(&b, "%s{shard=\"%u\"} %llu\n", pk__shard_stats[m].name, i,
                     (unsigned long long)ck_pr_load_64(field));
        }
    }
    char labels[64];
    pk__emit(&b, "# HELP pickple_commit_batch_size Messages per group commit.\n"
                 "# TYPE pickple_commit_batch_size histogram\n");
    for (unsigned i = 0; i < rt->rt_nactors; i++) {
        pk_actor_stats_t *s = &rt->rt_actors[i].a_stats;
        snprintf(labels, sizeof(labels), "shard=\"%u\"", i);
        pk__emit_hist(&b, "pickple_commit_batch_size", labels, s->as_batch_hist, PK_BATCH_HIST_BUCKETS, 1,
                      ck_pr_load_64(&s->as_batch_msgs));
    }
    pk__emit(&b, "# HELP pickple_sync_microseconds Time of each group commit on the shard's syncer thread "
                 "(page writes, data sync, meta page sync).\n"
                 "# TYPE pickple_sync_microseconds histogram\n");
    for (unsigned i = 0; i < rt->rt_nactors; i++) {
        pk_actor_stats_t *s = &rt->rt_actors[i].a_stats;
        snprintf(labels, sizeof(labels), "shard=\"%u\"", i);
        pk__emit_hist(&b, "pickple_sync_microseconds", labels, s->as_sync_hist, PK_SYNC_HIST_BUCKETS,
                      PK_SYNC_HIST_FIRST_US, ck_pr_load_64(&s->as_sync_us));
    }
    static const char *const stage_names[PK_STAGES] = {
        [PK_STAGE_QUEUED] = "queued", [PK_STAGE_BATCH] = "batch", [PK_STAGE_ANSWERED] = "answered"};
    pk__emit(&b, "# HELP pickple_write_stage_microseconds Where each committed write's time went, by the "
                 "thread that answered it (shard): queued (made, until its batch began on the owner; a sign-up's "
                 "password hashing on a worker included), batch (applied and committed), answered (committed, "
                 "until answered).\n"
                 "# TYPE pickple_write_stage_microseconds histogram\n");
    for (unsigned i = 0; i < rt->rt_nactors; i++) {
        pk_actor_stats_t *s = &rt->rt_actors[i].a_stats;
        for (unsigned st = 0; st < PK_STAGES; st++) {
            snprintf(labels, sizeof(labels), "shard=\"%u\",stage=\"%s\"", i, stage_names[st]);
            pk__emit_hist(&b, "pickple_write_stage_microseconds", labels, s->as_stage_hist[st],
                          PK_STAGE_HIST_BUCKETS, PK_STAGE_HIST_FIRST_US, ck_pr_load_64(&s->as_stage_us[st]));
        }
    }
    pk__emit(&b, "# HELP pickple_inflight Messages alive on each thread.\n# TYPE pickple_inflight gauge\n");
    for (unsigned i = 0; i < rt->rt_nactors; i++)
        pk__emit(&b, "pickple_inflight{shard=\"%u\"} %u\n", i, ck_pr_load_uint(&rt->rt_actors[i].a_inflight));
    if (rt->rt_kafka != NULL)
        pk__emit_kafka(&b, rt);
    pk_alloc_info_t al;
    pk_alloc_info(&al);
    pk__emit(&b,
             "# HELP pickple_allocator_info The allocator and its settings (include/pickple/alloc.h).\n"
             "# TYPE pickple_allocator_info gauge\n"
             "pickple_allocator_info{allocator=\"%s\",thp=\"%s\",dirty_decay_ms=\"%zd\",muzzy_decay_ms=\"%zd\","
             "lg_extent_max_active_fit=\"%zu\"} 1\n",
             al.ai_allocator, al.ai_thp, al.ai_dirty_decay_ms, al.ai_muzzy_decay_ms, al.ai_lg_extent_fit);
    if (b.mb_truncated) {
        pk_log_error("metrics: the page outgrew its %zu bytes", cap);
        pk_http_error(req, PK_FMT_JSON, 500, "internal", "metrics page too large");
        return;
    }
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4"));
    h2o_send_inline(req, b.mb_data, b.mb_len);
}
