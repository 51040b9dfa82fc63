/* GET /metrics: Prometheus text exposition of the runtime's counters. */
#include <ck_pr.h>
#include <stdio.h>

#include "pickple/http.h"

#define PK__METRICS_BYTES_MAX 16384

void pk_h_metrics(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    pk_runtime_t *rt = a->a_rt;
    char *buf = h2o_mem_alloc_pool(&req->pool, PK__METRICS_BYTES_MAX);
    size_t o = 0;
#define PK__EMIT(...)                                                                                                 \
    do {                                                                                                              \
        int n_ = snprintf(buf + o, PK__METRICS_BYTES_MAX - o, __VA_ARGS__);                                           \
        if (n_ > 0 && (size_t)n_ < PK__METRICS_BYTES_MAX - o)                                                         \
            o += (size_t)n_;                                                                                          \
    } while (0)
    PK__EMIT("# HELP pickple_commit_batches_total Write transactions committed (group commits).\n"
             "# TYPE pickple_commit_batches_total counter\n");
    for (unsigned i = 0; i < rt->rt_nactors; i++)
        PK__EMIT("pickple_commit_batches_total{shard=\"%u\"} %llu\n", i,
                 (unsigned long long)ck_pr_load_64(&rt->rt_actors[i].a_stats.as_batches));
    PK__EMIT("# HELP pickple_commit_batch_messages_total Messages applied in committed batches.\n"
             "# TYPE pickple_commit_batch_messages_total counter\n");
    for (unsigned i = 0; i < rt->rt_nactors; i++)
        PK__EMIT("pickple_commit_batch_messages_total{shard=\"%u\"} %llu\n", i,
                 (unsigned long long)ck_pr_load_64(&rt->rt_actors[i].a_stats.as_batch_msgs));
    PK__EMIT("# HELP pickple_commit_batch_size Messages per group commit.\n"
             "# TYPE pickple_commit_batch_size histogram\n");
    for (unsigned i = 0; i < rt->rt_nactors; i++) {
        pk_actor_stats_t *s = &rt->rt_actors[i].a_stats;
        uint64_t cum = 0;
        for (unsigned b = 0; b < PK_BATCH_HIST_BUCKETS; b++) {
            cum += ck_pr_load_64(&s->as_batch_hist[b]);
            if (b + 1 < PK_BATCH_HIST_BUCKETS)
                PK__EMIT("pickple_commit_batch_size_bucket{shard=\"%u\",le=\"%u\"} %llu\n", i, 1u << b,
                         (unsigned long long)cum);
            else
                PK__EMIT("pickple_commit_batch_size_bucket{shard=\"%u\",le=\"+Inf\"} %llu\n", i,
                         (unsigned long long)cum);
        }
        PK__EMIT("pickple_commit_batch_size_sum{shard=\"%u\"} %llu\n", i,
                 (unsigned long long)ck_pr_load_64(&s->as_batch_msgs));
        PK__EMIT("pickple_commit_batch_size_count{shard=\"%u\"} %llu\n", i,
                 (unsigned long long)ck_pr_load_64(&s->as_batches));
    }
    PK__EMIT("# TYPE pickple_commit_batch_max gauge\n");
    for (unsigned i = 0; i < rt->rt_nactors; i++)
        PK__EMIT("pickple_commit_batch_max{shard=\"%u\"} %llu\n", i,
                 (unsigned long long)ck_pr_load_64(&rt->rt_actors[i].a_stats.as_batch_max));
    PK__EMIT("# TYPE pickple_read_batches_total counter\n");
    for (unsigned i = 0; i < rt->rt_nactors; i++)
        PK__EMIT("pickple_read_batches_total{shard=\"%u\"} %llu\n", i,
                 (unsigned long long)ck_pr_load_64(&rt->rt_actors[i].a_stats.as_read_batches));
    PK__EMIT("# HELP pickple_rejected_busy_total Requests answered 503 because a mailbox was full.\n"
             "# TYPE pickple_rejected_busy_total counter\n");
    for (unsigned i = 0; i < rt->rt_nactors; i++)
        PK__EMIT("pickple_rejected_busy_total{shard=\"%u\"} %llu\n", i,
                 (unsigned long long)ck_pr_load_64(&rt->rt_actors[i].a_stats.as_rejected_full));
    PK__EMIT("# TYPE pickple_store_errors_total counter\n");
    for (unsigned i = 0; i < rt->rt_nactors; i++)
        PK__EMIT("pickple_store_errors_total{shard=\"%u\"} %llu\n", i,
                 (unsigned long long)ck_pr_load_64(&rt->rt_actors[i].a_stats.as_store_errors));
    PK__EMIT("# TYPE pickple_inflight gauge\n");
    for (unsigned i = 0; i < rt->rt_nactors; i++)
        PK__EMIT("pickple_inflight{shard=\"%u\"} %u\n", i, ck_pr_load_uint(&rt->rt_actors[i].a_inflight));
#undef PK__EMIT
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4"));
    h2o_send_inline(req, buf, o);
}
