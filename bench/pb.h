/*
 * pickple-bench: an HTTP/2 (h2c, prior knowledge) load generator for
 * pickple's scenarios.  This header is the contract between its parts:
 *
 *   pb_hist.c      log-linear latency histogram (HDR style)
 *   pb_h2.c        one client connection: socket + nghttp2 session, request
 *                  slots, and a blocking one-request call for setup
 *   pb_api.c       talking to pickple outside the load: tokens, JSON calls
 *   pb_scenario.c  what each scenario sets up, sends, and verifies
 *   pb_run.c       worker threads, closed and open loop, statistics
 *   pb_cpu.c       CPU used by the client, the server and the machine
 *   pb_disk.c      the durable-write probe (--disk-probe)
 *   pickple-bench.c options, report (human and JSON), main
 *
 * Caveats: a connection and everything hanging from it belongs to one
 * thread.  Workers share only the read-only run description (pb_run_t,
 * after setup) and one atomic request counter; their statistics are merged
 * by the main thread after they are joined.
 */
#ifndef PICKPLE_BENCH_PB_H
#define PICKPLE_BENCH_PB_H

#include <netinet/in.h>
#include <pthread.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <nghttp2/nghttp2.h>

#define PB_MUST_USE __attribute__((warn_unused_result))

/* A self-test's check: prints the failed condition and its place on
 * stderr and counts it in failures (an int lvalue). */
#define PB_SELF_CHECK(failures, cond)                                                  \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "pickple-bench self-test: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            (failures)++;                                                              \
        }                                                                              \
    } while (0)

#define PB_STATUS_MAX 600 /* status codes 0..599; 0 = no response */

/* ---- histogram ---------------------------------------------------------- */

/*
 * Log-linear buckets over nanoseconds: values below 2^PB_HIST_SUB_BITS+1 are
 * exact, above that every power of two is split into 2^PB_HIST_SUB_BITS
 * equal buckets, so any recorded value is known to within 1/128 (0.8%).
 * Covers 0 .. 2^63 ns; 60 s needs about 3,800 buckets.
 */
#define PB_HIST_SUB_BITS 7
#define PB_HIST_SUB (1u << PB_HIST_SUB_BITS)
#define PB_HIST_BUCKETS (2 * PB_HIST_SUB + (63 - PB_HIST_SUB_BITS) * PB_HIST_SUB)

typedef struct pb_hist {
    uint64_t h_count;
    uint64_t h_sum_ns;
    uint64_t h_min_ns;
    uint64_t h_max_ns;
    uint64_t h_buckets[PB_HIST_BUCKETS];
} pb_hist_t;

void pb_hist_init(pb_hist_t *h);
void pb_hist_record(pb_hist_t *h, uint64_t ns);
void pb_hist_merge(pb_hist_t *into, const pb_hist_t *from);
/* The value at percentile p (0..100), as the midpoint of its bucket clamped
 * to [min, max]; 0 for an empty histogram. */
uint64_t pb_hist_percentile_ns(const pb_hist_t *h, double p);
/*
 * Writes the percentile spectrum for gnuplot, HdrHistogram style: lines of
 * "value_ms percentile x" with x = 1/(1-percentile/100), so a log x axis
 * spreads p50, p90, p99, p99.9 evenly.  Returns 0 or -errno.
 */
int pb_hist_write_spectrum(const pb_hist_t *h, FILE *f) PB_MUST_USE;
/* Unit checks of the bucket arithmetic; returns the number of failures. */
int pb_hist_self_test(void);

/* ---- requests and connections ------------------------------------------ */

/* What a request is, for the counts and the per-class histograms. */
typedef enum pb_class {
    PB_CLASS_READ = 0, /* GET: browse, health, users/me, static file */
    PB_CLASS_ORDER,    /* POST /api/v1/orders */
    PB_CLASS_PAY,      /* POST /api/v1/orders/{id}/pay */
    PB_CLASS_COUNT,
} pb_class_t;

#define PB_PATH_BYTES_MAX 192
#define PB_BODY_BYTES_MAX 320

struct pb_conn;

/* One request and, while it is in flight, its stream.  Owned by a
 * connection's slot array; the strings it points to (rq_token) must live as
 * long as the run, since nghttp2 is told not to copy them. */
typedef struct pb_req {
    struct pb_conn *rq_conn;
    const char *rq_method; /* static string */
    const char *rq_token;  /* bearer token or NULL */
    size_t rq_token_len;
    char rq_path[PB_PATH_BYTES_MAX];
    char rq_body[PB_BODY_BYTES_MAX];
    size_t rq_path_len, rq_body_len, rq_body_off;
    uint64_t rq_start_ns; /* intended (open loop) or actual send time */
    uint64_t rq_seq;      /* scenario's request number */
    uint32_t rq_user;     /* index of the token's user, for the scenario */
    uint16_t rq_status;   /* 0 until a :status arrives */
    uint8_t rq_class;     /* pb_class_t */
    uint8_t rq_tag;       /* scenario's own marker */
    bool rq_busy;
    bool rq_want_body; /* keep the response body in rq_resp */
    char *rq_resp;     /* malloc'd, NUL-terminated, kept across reuse */
    size_t rq_resp_len, rq_resp_cap;
} pb_req_t;

/* Called once per request when its stream closes, or with rq_status 0 when
 * it was reset or its connection died.  The slot is reusable when the
 * callback returns. */
typedef void pb_done_fn(struct pb_conn *c, pb_req_t *rq, void *arg);

typedef struct pb_conn {
    int cn_fd;
    nghttp2_session *cn_session;
    const char *cn_authority; /* "host:port", owned by the caller */
    pb_done_fn *cn_done;
    void *cn_arg;
    pb_req_t *cn_slots;
    unsigned cn_nslots, cn_inflight, cn_next_free;
    uint8_t *cn_wbuf; /* bytes nghttp2 produced that the socket has not taken */
    size_t cn_woff, cn_wlen, cn_wcap;
    bool cn_dead;
    bool cn_settings_seen; /* the server's SETTINGS arrived: it speaks h2c */
    bool cn_want_out;      /* EPOLLOUT registered */
    unsigned cn_goaway;
} pb_conn_t;

/*
 * Connects (blocking, then switched to nonblocking with TCP_NODELAY),
 * creates the nghttp2 client session with nslots request slots and queues
 * the connection preface.  authority must outlive the connection.
 * Returns 0 or -errno; on failure nothing needs closing.
 */
int pb_conn_open(pb_conn_t *c, const struct sockaddr_in *addr, const char *authority, unsigned nslots,
                 pb_done_fn *done, void *arg) PB_MUST_USE;
/* Fails every request still in flight (status 0) and frees everything. */
void pb_conn_close(pb_conn_t *c);
/* A free slot, or NULL when all nslots are in flight or the connection is
 * dead.  The slot stays free until pb_conn_submit(). */
pb_req_t *pb_conn_slot(pb_conn_t *c);
/* Queues the request filled in rq (a slot from pb_conn_slot).  Returns 0 or
 * a negative nghttp2 error; nothing is sent before pb_conn_flush(). */
int pb_conn_submit(pb_conn_t *c, pb_req_t *rq) PB_MUST_USE;
/* Reads what the socket holds and feeds it to nghttp2, which calls the
 * done callback for finished streams.  Returns 0, or -1 when the
 * connection died (cn_dead set, in-flight requests failed). */
int pb_conn_read(pb_conn_t *c) PB_MUST_USE;
/* Serialises queued frames and writes as much as the socket takes.
 * Returns 1 when bytes remain (wait for EPOLLOUT), 0 when all went out,
 * -1 when the connection died. */
int pb_conn_flush(pb_conn_t *c) PB_MUST_USE;
/* Blocks (poll) until the server's SETTINGS arrived or timeout_ms passed.
 * Returns 0, -ETIMEDOUT or -EPROTO. */
int pb_conn_handshake(pb_conn_t *c, int timeout_ms) PB_MUST_USE;

/* ---- talking to pickple outside the load -------------------------------- */

typedef struct pb_tokens {
    char *tk_buf;        /* all "Bearer <jwt>" values, each NUL-terminated */
    uint32_t *tk_offset; /* start of token i in tk_buf */
    uint16_t *tk_len;
    uint32_t tk_count;
    uint64_t tk_user_base; /* token i is for user tk_user_base + i */
} pb_tokens_t;

/*
 * Signs count customer tokens with the HS256 secret at secret_path
 * (pickple's own signer, so they are exactly what `pickple token` prints),
 * valid for ttl_s, for users ids[0..count-1], or base .. base+count-1 when
 * ids is NULL.  Each is stored as the whole header value "Bearer <jwt>".
 * Returns 0 or negative.
 */
int pb_tokens_sign(pb_tokens_t *tk, const char *secret_path, const uint64_t *ids, uint64_t base, uint32_t count,
                   int64_t ttl_s) PB_MUST_USE;
/* One "Bearer <jwt>" for user_id with role "customer", "seller" or
 * "admin", valid for a day, into out (at least 512 bytes).  Returns 0 or
 * negative. */
int pb_token_one(const char *secret_path, uint64_t user_id, const char *role, char *out, size_t out_size) PB_MUST_USE;
void pb_tokens_free(pb_tokens_t *tk);

typedef struct pb_api {
    pb_conn_t ap_conn;
    int ap_status;
    bool ap_done;
} pb_api_t;

int pb_api_open(pb_api_t *api, const struct sockaddr_in *addr, const char *authority) PB_MUST_USE;
void pb_api_close(pb_api_t *api);
/*
 * One request, waited for (at most timeout_ms).  body may be NULL.  On a
 * response, returns its status and sets *out to the parsed JSON body (NULL
 * when empty or not JSON; the caller json_decref()s it).  Returns a negative
 * errno when no response came.
 */
int pb_api_call(pb_api_t *api, const char *method, const char *path, const char *token, const char *body,
                json_t **out, int timeout_ms);

/* ---- the run ------------------------------------------------------------ */

struct pb_worker;
struct pb_run;

typedef struct pb_scenario {
    const char *sc_name;
    const char *sc_about;
    bool sc_needs_secret; /* signs tokens: needs --data-dir or --jwt-secret-file */
    bool sc_counted;      /* a fixed number of requests (flash), not a duration */
    /* Main thread, before the load: creates what the requests need. */
    int (*sc_setup)(struct pb_run *run);
    /* Worker thread: fills rq (method, path, body, token, class) for
     * request number seq. */
    void (*sc_next)(struct pb_worker *w, pb_req_t *rq, uint64_t seq);
    /* Worker thread, optional: sees each finished request. */
    void (*sc_done)(struct pb_worker *w, const pb_req_t *rq);
    /* Main thread, optional, after the load: checks the outcome through the
     * API and appends JSON members to run->r_extra.  Returns the number of
     * violations found (0 = clean) or negative when it could not check. */
    int (*sc_verify)(struct pb_run *run);
} pb_scenario_t;

const pb_scenario_t *pb_scenario_find(const char *name);
void pb_scenario_list(FILE *f);

/* Statistics of one worker, merged into the run's after the join. */
typedef struct pb_stats {
    uint64_t st_status[PB_STATUS_MAX]; /* counted responses by status; [0] no response */
    uint64_t st_class_ok[PB_CLASS_COUNT];
    uint64_t st_class_rejected[PB_CLASS_COUNT]; /* 409: sold out, over the limit, ... */
    uint64_t st_class_failed[PB_CLASS_COUNT];   /* everything else, including no response */
    uint64_t st_counted;
    uint64_t st_warmup;     /* finished before measuring started; not counted */
    uint64_t st_unfinished; /* still in flight when the run gave up */
    uint64_t st_conn_errors;
    uint64_t st_first_ok_ns, st_last_ns, st_last_accept_ns, st_first_reject_ns; /* monotonic */
    pb_hist_t st_all;                  /* every counted response */
    pb_hist_t st_ok[PB_CLASS_COUNT];   /* counted 2xx, by class: [ORDER] = accepted orders */
    pb_hist_t st_rejected;             /* counted 409 */
    /* Open loop: how late each counted request left this client after it
     * was due (the client's own share of the latencies above), except those
     * that waited for a free stream (the server's share), only counted. */
    pb_hist_t st_late;
    uint64_t st_stream_waits;
} pb_stats_t;

/* ---- CPU accounting ------------------------------------------------------ */

/*
 * What the measured window cost in CPU, from /proc: this process (the
 * client, every thread), the server process given by --server-pid (every
 * thread), and the whole machine.  The two cores are shared by client and
 * server, so a latency figure means little without knowing how busy the
 * machine was.  Resolution: the kernel's clock tick (10 ms of CPU), small
 * against a window of seconds.
 */
typedef struct pb_cpu_sample {
    uint64_t cs_ns;           /* CLOCK_MONOTONIC */
    uint64_t cs_client_ticks; /* utime + stime of this process */
    uint64_t cs_server_ticks; /* of the server; 0 when not known */
    uint64_t cs_busy_ticks;   /* the machine: every CPU, all but idle and iowait */
    bool cs_server_ok;
    bool cs_ok;               /* this process and the machine were read */
} pb_cpu_sample_t;

typedef struct pb_cpu {
    bool cu_ok;             /* measured (a duration run with /proc readable) */
    bool cu_server_ok;      /* the server's share too */
    double cu_seconds;      /* the window */
    double cu_client_cores; /* CPU seconds per second */
    double cu_server_cores;
    double cu_busy_cores;   /* the machine, all processes */
    unsigned cu_cores;      /* online CPUs */
} pb_cpu_t;

/* Reads the counters now; server_pid 0 skips the server. */
void pb_cpu_sample(pid_t server_pid, pb_cpu_sample_t *s);

/* The window between two samples (a taken before b). */
void pb_cpu_between(const pb_cpu_sample_t *a, const pb_cpu_sample_t *b, pb_cpu_t *out);

/* Checks the /proc parsing and the window's arithmetic; returns the number
 * of failed checks (each printed on stderr). */
int pb_cpu_self_test(void);

/* ---- durable-write probe ------------------------------------------------ */

/*
 * --disk-probe DIR: over the measured window a thread of the client makes
 * durable writes in a file in DIR, as a group-committing server would for
 * orders arriving once every PB_DISK_INTERVAL_NS.  Each write is the least
 * that one acknowledged order needs with pickple's --sync full: a 4 KiB
 * page appended to a data file and made durable with fdatasync, then a
 * 128-byte record written at the file's head through a second descriptor
 * opened O_DSYNC (where LMDB writes its meta page).
 *
 * Two spectra are kept:
 *   dk_due    one entry per arrival (a due time, every interval): from the
 *             due time to the end of the first write that began at or
 *             after it.  A write still running when arrivals fall due
 *             holds them all, and the next write covers them together, so
 *             a slow write counts once for every order it held up, as the
 *             load generator counts open-loop latency from the intended
 *             send time.  This is the floor under the latency of durable
 *             orders at that load: no order can be answered before such a
 *             write, and a real commit writes more than one page.
 *   dk_write  one entry per write: its own duration.  It undercounts slow
 *             writes (fewer writes happen while one is slow), so it is
 *             kept for comparison, not as the floor.
 * The file is unlinked as soon as it is open and wraps at
 * PB_DISK_FILE_BYTES.
 */
#define PB_DISK_PAGE 4096
#define PB_DISK_META 128
#define PB_DISK_FILE_BYTES (64u << 20)
#define PB_DISK_INTERVAL_NS 4000000u /* 250 arrivals/s; pickple commits about 100-300 times/s in hot */

typedef struct pb_disk {
    int dk_fd, dk_meta_fd;
    uint64_t dk_start_ns, dk_end_ns; /* CLOCK_MONOTONIC: the window written in */
    pthread_t dk_thread;
    bool dk_running;
    int dk_err;         /* the errno that stopped the probe early, 0 if none */
    pb_hist_t dk_due;   /* each arrival: due time to the end of the write covering it */
    pb_hist_t dk_write; /* each write: page, fdatasync and head record */
} pb_disk_t;

/* Creates (and unlinks) the probe's file in dir.  Returns 0 or -errno, with
 * a message on stderr. */
int pb_disk_open(pb_disk_t *d, const char *dir) PB_MUST_USE;

/* Starts the thread, which writes from start_ns until end_ns.  Returns 0 or
 * -errno. */
int pb_disk_start(pb_disk_t *d, uint64_t start_ns, uint64_t end_ns) PB_MUST_USE;

/* Joins the thread (if started) and closes the file. */
void pb_disk_finish(pb_disk_t *d);

/* Options and everything setup produced; read-only while workers run,
 * except r_next_seq (atomic). */
typedef struct pb_run {
    const pb_scenario_t *r_sc;
    struct sockaddr_in r_addr;
    char r_host[64];
    char r_authority[80];
    char r_url[128];
    char r_path[PB_PATH_BYTES_MAX]; /* scenario "get" */
    unsigned r_threads, r_conns, r_streams;
    double r_duration_s, r_warmup_s, r_rate, r_timeout_s;
    uint64_t r_requests; /* counted mode: requests to send */
    char r_secret_path[4096];
    char r_label[64];
    pid_t r_server_pid;  /* --server-pid: whose CPU to report, 0 none */
    pb_cpu_t r_cpu;      /* the measured window's CPU (duration runs) */
    pb_disk_t *r_disk;   /* --disk-probe: opened, run over the measured window; else NULL */
    /* users and tokens */
    uint32_t r_users;
    uint64_t r_user_base;
    pb_tokens_t r_tokens;
    char r_admin_token[512];
    unsigned r_nshards; /* from the data dir's FORMAT, 0 if unknown */
    /* scenario parameters */
    int64_t r_quantity, r_limit, r_attempts;
    uint32_t r_products;
    double r_accept_share;
    /* what setup created */
    uint64_t r_sale_id;     /* flash, hot, soldout's sold-out sale */
    uint64_t r_hot_sale_id; /* a live sale that never runs out */
    int64_t r_sale_price;
    uint64_t *r_product_ids;
    uint32_t r_nproducts;
    uint64_t *r_signup_ids; /* users_me: real users */
    uint32_t r_nsignup;
    /* the load */
    pthread_barrier_t r_barrier; /* workers connected; then: go */
    bool r_abort;                /* set by main between the two barriers */
    uint64_t r_next_seq; /* counted mode; atomic (relaxed: only uniqueness matters) */
    uint64_t r_t0_ns, r_measure_ns, r_end_ns;
    pb_stats_t r_stats;
    double r_elapsed_s;
    /* scenario results, as JSON members each starting with ',' */
    char r_extra[4096];
    size_t r_extra_len;
} pb_run_t;

/* Appends printf-formatted text to run->r_extra (silently truncated). */
void pb_extra(pb_run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A bounded ring of this worker's orders waiting to be paid (mixed). */
typedef struct pb_unpaid {
    uint64_t up_order_id;
    int64_t up_total;
    uint32_t up_user;
} pb_unpaid_t;

typedef struct pb_worker {
    pb_run_t *w_run;
    unsigned w_index;
    pthread_t w_thread;
    int w_epfd;
    pb_conn_t *w_conns;
    unsigned w_nconns, w_rr;
    uint64_t w_rng;
    uint64_t w_starved_ns;  /* open loop: last time a due request found no free stream */
    uint64_t w_seq;         /* duration mode: this worker's request numbers */
    uint64_t w_next_ns;     /* open loop: intended time of the next request */
    uint64_t w_open_start_ns, w_sent;
    double w_interval_ns;   /* open loop: 1e9 / this worker's rate */
    bool w_stopping;
    bool w_failed;  /* could not connect: the run is aborted */
    bool w_closing; /* the load is over: requests failed now are not counted */
    bool w_no_pwait2; /* the kernel lacks epoll_pwait2: millisecond waits */
    unsigned w_inflight;
    pb_unpaid_t *w_unpaid;
    unsigned w_unpaid_head, w_unpaid_count, w_unpaid_cap;
    pb_stats_t w_stats;
} pb_worker_t;

/* Runs the load with run->r_threads workers and merges their statistics
 * into run->r_stats.  Returns 0 or negative (with a message on stderr). */
int pb_run_load(pb_run_t *run) PB_MUST_USE;

/* xorshift64*: fast, per worker, good enough to pick users and products. */
static inline uint64_t pb_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in 0..n-1 (n > 0), by multiply-shift: no modulo bias worth
 * noticing for n far below 2^32. */
static inline uint32_t pb_rand_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(((pb_rand(s) >> 32) * (uint64_t)n) >> 32);
}

uint64_t pb_now_ns(void); /* CLOCK_MONOTONIC */
void pb_sleep_until(uint64_t ns); /* until CLOCK_MONOTONIC reads ns */

#endif
