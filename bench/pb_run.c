/*
 * The load: r_threads workers, each owning a share of the connections and
 * its own epoll set, statistics and random state, so the hot path shares
 * nothing but the atomic request counter of a counted run.
 *
 * Closed loop keeps every connection at r_streams requests in flight and
 * times each from the moment it was queued.  Open loop sends at a fixed
 * offered rate: request k of a worker is due at start + k/rate and its
 * latency runs from that intended time, not from when a free stream let it
 * leave, so a server that stalls is charged for the requests that queued
 * behind the stall (no coordinated omission, as in wrk2).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "pb.h"

#define PB__EVENTS 64
#define PB__GRACE_NS (5ull * 1000000000u) /* after the end, for answers in flight */
#define PB__IDLE_NS (50ull * 1000000u)     /* longest wait, to notice the end */

static void pb__done(pb_conn_t *c, pb_req_t *rq, void *arg)
{
    pb_worker_t *w = arg;
    pb_run_t *run = w->w_run;
    pb_stats_t *st = &w->w_stats;
    uint64_t now = pb_now_ns();

    w->w_inflight--;
    if (w->w_closing)
        return; /* failed by our own close after giving up: already unfinished */
    if (run->r_sc->sc_done != NULL)
        run->r_sc->sc_done(w, rq);
    if (rq->rq_start_ns < run->r_measure_ns) {
        st->st_warmup++;
        return;
    }
    uint64_t latency = now > rq->rq_start_ns ? now - rq->rq_start_ns : 0;
    unsigned cls = rq->rq_class < PB_CLASS_COUNT ? rq->rq_class : PB_CLASS_READ;
    st->st_counted++;
    st->st_status[rq->rq_status]++;
    st->st_last_ns = now;
    pb_hist_record(&st->st_all, latency);
    if (rq->rq_status >= 200 && rq->rq_status < 300) {
        st->st_class_ok[cls]++;
        pb_hist_record(&st->st_ok[cls], latency);
        if (st->st_first_ok_ns == 0)
            st->st_first_ok_ns = now;
        if (cls == PB_CLASS_ORDER)
            st->st_last_accept_ns = now;
    } else if (rq->rq_status == 409) {
        st->st_class_rejected[cls]++;
        pb_hist_record(&st->st_rejected, latency);
        if (st->st_first_reject_ns == 0)
            st->st_first_reject_ns = now;
    } else {
        st->st_class_failed[cls]++;
    }
}

/* Takes the next request number; false when a counted run has sent all. */
static bool pb__take_seq(pb_worker_t *w, uint64_t *seq)
{
    pb_run_t *run = w->w_run;
    if (!run->r_sc->sc_counted && run->r_requests == 0) {
        *seq = w->w_seq++;
        return true;
    }
    /* Relaxed: the counter only hands out distinct numbers; nothing else
     * is published through it. */
    *seq = __atomic_fetch_add(&run->r_next_seq, 1, __ATOMIC_RELAXED);
    return *seq < run->r_requests;
}

static int pb__send(pb_worker_t *w, pb_conn_t *c, pb_req_t *rq, uint64_t seq, uint64_t start_ns)
{
    rq->rq_seq = seq;
    rq->rq_class = PB_CLASS_READ;
    w->w_run->r_sc->sc_next(w, rq, seq);
    rq->rq_start_ns = start_ns;
    if (pb_conn_submit(c, rq) != 0)
        return -1;
    w->w_inflight++;
    return 0;
}

static void pb__issue_closed(pb_worker_t *w, uint64_t now)
{
    for (unsigned i = 0; i < w->w_nconns && !w->w_stopping; i++) {
        pb_conn_t *c = &w->w_conns[i];
        pb_req_t *rq;
        while ((rq = pb_conn_slot(c)) != NULL) {
            uint64_t seq;
            if (!pb__take_seq(w, &seq)) {
                w->w_stopping = true;
                break;
            }
            if (pb__send(w, c, rq, seq, now) != 0)
                break;
        }
    }
}

/* Sends every request that is due.  Returns true when one is due but no
 * connection has a free stream. */
static bool pb__issue_open(pb_worker_t *w, uint64_t now)
{
    pb_run_t *run = w->w_run;
    while (w->w_next_ns <= now) {
        if (run->r_end_ns != 0 && w->w_next_ns >= run->r_end_ns) {
            w->w_stopping = true;
            return false;
        }
        /* Round robin over connections with a free stream; when none has
         * one the request waits, and its intended time keeps counting. */
        pb_conn_t *c = NULL;
        pb_req_t *rq = NULL;
        for (unsigned k = 0; k < w->w_nconns && rq == NULL; k++) {
            c = &w->w_conns[w->w_rr];
            w->w_rr = (w->w_rr + 1) % w->w_nconns;
            rq = pb_conn_slot(c);
        }
        if (rq == NULL) {
            w->w_starved_ns = now;
            return true;
        }
        uint64_t seq;
        if (!pb__take_seq(w, &seq)) {
            w->w_stopping = true;
            return false;
        }
        if (pb__send(w, c, rq, seq, w->w_next_ns) != 0)
            return true;
        if (w->w_next_ns < run->r_measure_ns)
            ; /* warm-up */
        else if (w->w_next_ns <= w->w_starved_ns)
            w->w_stats.st_stream_waits++;
        else
            pb_hist_record(&w->w_stats.st_late, now - w->w_next_ns);
        w->w_sent++;
        w->w_next_ns = w->w_open_start_ns + (uint64_t)((double)w->w_sent * w->w_interval_ns);
    }
    return false;
}

static void pb__set_out(pb_worker_t *w, pb_conn_t *c, bool want)
{
    if (c->cn_dead || c->cn_want_out == want)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(w->w_epfd, EPOLL_CTL_MOD, c->cn_fd, &ev) == 0)
        c->cn_want_out = want;
}

/* Flushes every live connection; counts the ones that died. */
static unsigned pb__flush_all(pb_worker_t *w)
{
    unsigned alive = 0;
    for (unsigned i = 0; i < w->w_nconns; i++) {
        pb_conn_t *c = &w->w_conns[i];
        if (c->cn_dead)
            continue;
        int r = pb_conn_flush(c);
        if (r < 0) {
            w->w_stats.st_conn_errors++;
            continue;
        }
        pb__set_out(w, c, r == 1);
        alive++;
    }
    return alive;
}

/* Waits at most timeout_ns for socket events and reads what arrived.  The
 * wait has nanosecond resolution (epoll_pwait2) where the kernel offers it:
 * an open-loop request due in 300 us must not leave a millisecond late,
 * since its latency counts from when it was due. */
static void pb__poll(pb_worker_t *w, uint64_t timeout_ns)
{
    struct epoll_event evs[PB__EVENTS];
    int n = -1;
    if (!w->w_no_pwait2) {
        struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000u), .tv_nsec = (long)(timeout_ns % 1000000000u)};
        n = epoll_pwait2(w->w_epfd, evs, PB__EVENTS, &ts, NULL);
        if (n < 0 && errno == ENOSYS)
            w->w_no_pwait2 = true;
    }
    if (w->w_no_pwait2)
        n = epoll_wait(w->w_epfd, evs, PB__EVENTS, (int)((timeout_ns + 999999) / 1000000));
    for (int i = 0; i < n; i++) {
        pb_conn_t *c = evs[i].data.ptr;
        if (c->cn_dead)
            continue;
        if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && pb_conn_read(c) != 0)
            w->w_stats.st_conn_errors++;
    }
}

static int pb__connect(pb_worker_t *w)
{
    pb_run_t *run = w->w_run;
    for (unsigned i = 0; i < w->w_nconns; i++) {
        pb_conn_t *c = &w->w_conns[i];
        int rc = pb_conn_open(c, &run->r_addr, run->r_authority, run->r_streams, pb__done, w);
        if (rc != 0) {
            fprintf(stderr, "pickple-bench: cannot connect to %s: %s\n", run->r_authority, strerror(-rc));
            return rc;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(w->w_epfd, EPOLL_CTL_ADD, c->cn_fd, &ev) != 0)
            return -errno;
    }
    /* Every connection has the server's SETTINGS before the clock starts,
     * so the first measured requests do not pay for the handshake. */
    uint64_t deadline = pb_now_ns() + 10ull * 1000000000u;
    for (;;) {
        unsigned alive = pb__flush_all(w), ready = 0;
        for (unsigned i = 0; i < w->w_nconns; i++)
            ready += w->w_conns[i].cn_settings_seen && !w->w_conns[i].cn_dead;
        if (ready == w->w_nconns)
            return 0;
        if (alive < w->w_nconns || pb_now_ns() > deadline) {
            fprintf(stderr, "pickple-bench: %s does not speak HTTP/2 with prior knowledge (h2c)\n",
                    run->r_authority);
            return -EPROTO;
        }
        pb__poll(w, 100000000u);
    }
}

static void *pb__worker_main(void *arg)
{
    pb_worker_t *w = arg;
    pb_run_t *run = w->w_run;

    w->w_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->w_epfd < 0 || pb__connect(w) != 0)
        w->w_failed = true;
    pthread_barrier_wait(&run->r_barrier); /* all connected (or failed) */
    pthread_barrier_wait(&run->r_barrier); /* main has set r_t0_ns or r_abort */
    if (run->r_abort)
        goto out;

    bool open_loop = run->r_rate > 0;
    if (open_loop) {
        /* Workers start a fraction of an interval apart, so their requests
         * interleave instead of leaving in pairs. */
        w->w_interval_ns = 1e9 * run->r_threads / run->r_rate;
        w->w_open_start_ns = run->r_t0_ns + (uint64_t)(w->w_interval_ns * w->w_index / run->r_threads);
        w->w_next_ns = w->w_open_start_ns;
    }
    uint64_t give_up = run->r_end_ns ? run->r_end_ns + PB__GRACE_NS
                                     : run->r_t0_ns + (uint64_t)(run->r_timeout_s * 1e9);
    for (;;) {
        uint64_t now = pb_now_ns();
        if (!w->w_stopping && !open_loop && run->r_end_ns != 0 && now >= run->r_end_ns)
            w->w_stopping = true;
        bool blocked = false;
        if (!w->w_stopping) {
            if (open_loop)
                blocked = pb__issue_open(w, now);
            else
                pb__issue_closed(w, now);
        }
        if (w->w_stopping && w->w_inflight == 0)
            break;
        if (now >= give_up) {
            w->w_stats.st_unfinished += w->w_inflight;
            /* Open loop: requests that were due but never found a stream
             * count as unfinished too, or overload would look like speed. */
            if (open_loop && !w->w_stopping && run->r_end_ns > w->w_next_ns)
                w->w_stats.st_unfinished += (uint64_t)((run->r_end_ns - w->w_next_ns) / w->w_interval_ns);
            break;
        }
        if (pb__flush_all(w) == 0) {
            w->w_stats.st_unfinished += w->w_inflight;
            break; /* every connection is gone */
        }
        /* Closed loop, or open loop with every stream busy: only an answer
         * can let a request go, so wait for one.  Otherwise wake when the
         * next request is due. */
        uint64_t timeout_ns = PB__IDLE_NS;
        if (open_loop && !w->w_stopping && !blocked) {
            now = pb_now_ns();
            timeout_ns = w->w_next_ns <= now ? 0 : w->w_next_ns - now;
            if (timeout_ns > PB__IDLE_NS)
                timeout_ns = PB__IDLE_NS;
        }
        pb__poll(w, timeout_ns);
    }
out:
    w->w_closing = true;
    for (unsigned i = 0; i < w->w_nconns; i++)
        pb_conn_close(&w->w_conns[i]);
    if (w->w_epfd >= 0)
        close(w->w_epfd);
    return NULL;
}

static void pb__stats_merge(pb_stats_t *into, const pb_stats_t *from)
{
    for (unsigned i = 0; i < PB_STATUS_MAX; i++)
        into->st_status[i] += from->st_status[i];
    for (unsigned i = 0; i < PB_CLASS_COUNT; i++) {
        into->st_class_ok[i] += from->st_class_ok[i];
        into->st_class_rejected[i] += from->st_class_rejected[i];
        into->st_class_failed[i] += from->st_class_failed[i];
        pb_hist_merge(&into->st_ok[i], &from->st_ok[i]);
    }
    into->st_counted += from->st_counted;
    into->st_warmup += from->st_warmup;
    into->st_unfinished += from->st_unfinished;
    into->st_conn_errors += from->st_conn_errors;
#define PB__MAX(f) (into->f = from->f > into->f ? from->f : into->f)
#define PB__MIN_SET(f) (into->f = from->f && (!into->f || from->f < into->f) ? from->f : into->f)
    PB__MAX(st_last_ns);
    PB__MAX(st_last_accept_ns);
    PB__MIN_SET(st_first_ok_ns);
    PB__MIN_SET(st_first_reject_ns);
#undef PB__MAX
#undef PB__MIN_SET
    pb_hist_merge(&into->st_all, &from->st_all);
    pb_hist_merge(&into->st_rejected, &from->st_rejected);
    pb_hist_merge(&into->st_late, &from->st_late);
    into->st_stream_waits += from->st_stream_waits;
}

static void pb__stats_init(pb_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    pb_hist_init(&st->st_all);
    pb_hist_init(&st->st_late);
    pb_hist_init(&st->st_rejected);
    for (unsigned i = 0; i < PB_CLASS_COUNT; i++)
        pb_hist_init(&st->st_ok[i]);
}

void pb_sleep_until(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* The main thread, while the workers run a timed load: the CPU of the
 * measured window (warm-up excluded). */
static void pb__measure_cpu(pb_run_t *run)
{
    pb_cpu_sample_t a, b;
    pb_sleep_until(run->r_measure_ns);
    pb_cpu_sample(run->r_server_pid, &a);
    pb_sleep_until(run->r_end_ns);
    pb_cpu_sample(run->r_server_pid, &b);
    pb_cpu_between(&a, &b, &run->r_cpu);
}

int pb_run_load(pb_run_t *run)
{
    int rc = 0;
    unsigned nw = run->r_threads, started = 0;
    pb_worker_t *ws = calloc(nw, sizeof(*ws));
    if (ws == NULL)
        return -ENOMEM;
    if (pthread_barrier_init(&run->r_barrier, NULL, nw + 1) != 0) {
        free(ws);
        return -ENOMEM;
    }
    pb__stats_init(&run->r_stats);
    for (unsigned i = 0; i < nw; i++) {
        pb_worker_t *w = &ws[i];
        w->w_run = run;
        w->w_index = i;
        w->w_epfd = -1;
        w->w_nconns = run->r_conns / nw + (i < run->r_conns % nw);
        w->w_rng = 0x9E3779B97F4A7C15ull * (i + 1) ^ pb_now_ns();
        pb__stats_init(&w->w_stats);
        w->w_conns = calloc(w->w_nconns ? w->w_nconns : 1, sizeof(*w->w_conns));
        if (w->w_conns == NULL)
            rc = -ENOMEM;
        for (unsigned k = 0; rc == 0 && k < w->w_nconns; k++)
            w->w_conns[k].cn_fd = -1, w->w_conns[k].cn_dead = true;
    }
    if (rc != 0) {
        for (unsigned i = 0; i < nw; i++)
            free(ws[i].w_conns);
        pthread_barrier_destroy(&run->r_barrier);
        free(ws);
        return rc;
    }
    for (unsigned i = 0; i < nw; i++) {
        if (pthread_create(&ws[i].w_thread, NULL, pb__worker_main, &ws[i]) != 0) {
            rc = -EAGAIN;
            break;
        }
        started++;
    }
    if (started < nw) {
        /* The barrier counts every worker, so the started ones would wait
         * forever; only reachable when the system is out of threads. */
        fprintf(stderr, "pickple-bench: cannot start %u worker threads\n", nw);
        exit(1);
    }
    pthread_barrier_wait(&run->r_barrier);
    for (unsigned i = 0; i < nw; i++)
        if (ws[i].w_failed)
            run->r_abort = true;
    run->r_t0_ns = pb_now_ns();
    run->r_measure_ns = run->r_t0_ns + (uint64_t)(run->r_warmup_s * 1e9);
    run->r_end_ns = run->r_duration_s > 0 ? run->r_measure_ns + (uint64_t)(run->r_duration_s * 1e9) : 0;
    if (run->r_disk != NULL && run->r_end_ns != 0 && !run->r_abort) {
        int prc = pb_disk_start(run->r_disk, run->r_measure_ns, run->r_end_ns);
        if (prc != 0)
            run->r_disk->dk_err = -prc;
    }
    pthread_barrier_wait(&run->r_barrier);
    if (run->r_end_ns != 0 && !run->r_abort)
        pb__measure_cpu(run);
    if (run->r_disk != NULL)
        pb_disk_finish(run->r_disk);
    for (unsigned i = 0; i < nw; i++) {
        pthread_join(ws[i].w_thread, NULL);
        pb__stats_merge(&run->r_stats, &ws[i].w_stats);
        free(ws[i].w_conns);
        free(ws[i].w_unpaid);
    }
    pthread_barrier_destroy(&run->r_barrier);
    free(ws);
    if (run->r_abort)
        return -ECONNREFUSED;

    const pb_stats_t *st = &run->r_stats;
    uint64_t last = st->st_last_ns > run->r_end_ns ? st->st_last_ns : run->r_end_ns;
    run->r_elapsed_s = last > run->r_measure_ns ? (double)(last - run->r_measure_ns) / 1e9 : 0;
    return rc;
}
