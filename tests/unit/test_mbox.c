/*
 * Unit tests for src/actors/mbox.c: argument checks, capacity rounding per
 * lane, empty pops, round-robin over lanes, the waker's one-write-per-arming
 * rule, and a multi-producer stress run whose consumer follows the header's
 * wake protocol exactly (sleep in poll() on the eventfd, pk_waker_drain(),
 * pop until empty or the batch bound, kick itself when messages remain).
 * Plain program: prints one line per failed check and a summary, exits
 * non-zero when anything failed.
 *
 * Usage: test_mbox [producers [per_producer [budget_ms]]] (for measuring).
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pickple/mbox.h"

#include "check.h"

/* Message values: (producer << 32 | seq) + 1, never NULL, never dereferenced. */
static void *tag(unsigned producer, uint32_t seq)
{
    return (void *)(uintptr_t)((((uint64_t)producer << 32) | seq) + 1);
}

static void untag(void *msg, unsigned *producer, uint32_t *seq)
{
    uint64_t v = (uint64_t)(uintptr_t)msg - 1;
    *producer = (unsigned)(v >> 32);
    *seq = (uint32_t)v;
}

/* Reads the eventfd counter without blocking: the number of writes since the
 * last read, or 0 when there was none (EAGAIN). */
static uint64_t eventfd_take(int fd)
{
    uint64_t count = 0;
    if (read(fd, &count, sizeof(count)) != (ssize_t)sizeof(count))
        return 0;
    return count;
}

/* Pushes to lane `producer` until PK_EFULL (or limit); returns how many fit. */
static unsigned fill_lane(pk_mbox_t *mb, unsigned producer, unsigned limit)
{
    unsigned n = 0;
    while (n < limit && pk_mbox_push(mb, producer, tag(producer, n)) == 0)
        n++;
    return n;
}

static void test_init_args(void)
{
    pk_waker_t wk;
    pk_mbox_t mb;
    CHECK_RC(pk_waker_init(&wk), 0);
    CHECK_RC(pk_mbox_init(&mb, 1, 0, &wk), -EINVAL);
    CHECK_RC(pk_mbox_init(&mb, 1, (1u << 24) + 1, &wk), -EINVAL);
    CHECK_RC(pk_mbox_init(&mb, 0, 8, &wk), -EINVAL);
    CHECK_RC(pk_mbox_init(&mb, 1025, 8, &wk), -EINVAL);
    /* A failed init leaves a box that destroy accepts. */
    pk_mbox_destroy(&mb);
    CHECK_RC(pk_mbox_init(&mb, 1024, 1, &wk), 0);
    CHECK(mb.mb_producers == 1024);
    CHECK(pk_mbox_pop(&mb) == NULL);
    pk_mbox_destroy(&mb);
    /* destroy twice is harmless (it clears the lanes pointer). */
    pk_mbox_destroy(&mb);
    pk_waker_destroy(&wk);
}

static void test_capacity(void)
{
    pk_waker_t wk;
    pk_mbox_t mb;
    CHECK_RC(pk_waker_init(&wk), 0);

    /* 5 rounds up: a lane must hold at least 5, and exactly what it reports. */
    CHECK_RC(pk_mbox_init(&mb, 1, 5, &wk), 0);
    CHECK(mb.mb_capacity >= 5);
    CHECK(((mb.mb_capacity + 1) & mb.mb_capacity) == 0); /* ring size is a power of two */
    unsigned pushed = fill_lane(&mb, 0, 1000);
    CHECK(pushed >= 5);
    CHECK(pushed == mb.mb_capacity);
    CHECK(pk_mbox_size(&mb) == pushed);
    CHECK_RC(pk_mbox_push(&mb, 0, tag(9, 9)), PK_EFULL);
    CHECK(pk_mbox_size(&mb) == pushed); /* a refused push leaves the box unchanged */
    int order_ok = 1;
    for (unsigned i = 0; i < pushed; i++)
        if (pk_mbox_pop(&mb) != tag(0, i))
            order_ok = 0;
    CHECK(order_ok);
    CHECK(pk_mbox_pop(&mb) == NULL);
    CHECK(pk_mbox_size(&mb) == 0);
    pk_mbox_destroy(&mb);

    /* Exact powers of two and their neighbours. */
    static const unsigned asks[] = {1, 2, 3, 4, 7, 8, 9, 1023, 1024, 1025};
    for (size_t i = 0; i < PK_ARRAY_LEN(asks); i++) {
        CHECK_RC(pk_mbox_init(&mb, 1, asks[i], &wk), 0);
        CHECK(mb.mb_capacity >= asks[i]);
        CHECK(mb.mb_capacity < 2 * asks[i] + 1); /* no more than one doubling */
        CHECK(fill_lane(&mb, 0, 5000) == mb.mb_capacity);
        pk_mbox_destroy(&mb);
    }

    /* The bound is per lane: one full lane does not refuse another's push. */
    CHECK_RC(pk_mbox_init(&mb, 3, 5, &wk), 0);
    CHECK(fill_lane(&mb, 1, 1000) == mb.mb_capacity);
    CHECK_RC(pk_mbox_push(&mb, 1, tag(1, 999)), PK_EFULL);
    CHECK_RC(pk_mbox_push(&mb, 0, tag(0, 0)), 0);
    CHECK_RC(pk_mbox_push(&mb, 2, tag(2, 0)), 0);
    CHECK(pk_mbox_size(&mb) == mb.mb_capacity + 2);
    pk_mbox_destroy(&mb);
    pk_waker_destroy(&wk);
}

static void test_empty_round_robin_wraparound(void)
{
    pk_waker_t wk;
    pk_mbox_t mb;
    CHECK_RC(pk_waker_init(&wk), 0);
    CHECK_RC(pk_mbox_init(&mb, 3, 4, &wk), 0);
    CHECK(pk_mbox_pop(&mb) == NULL);
    CHECK(pk_mbox_pop(&mb) == NULL);

    /* Lanes are served round-robin, FIFO within each. */
    for (uint32_t i = 0; i < 3; i++) {
        CHECK_RC(pk_mbox_push(&mb, 0, tag(0, i)), 0);
        CHECK_RC(pk_mbox_push(&mb, 2, tag(2, i)), 0);
    }
    CHECK_RC(pk_mbox_push(&mb, 1, tag(1, 0)), 0);
    static const unsigned want_p[] = {0, 1, 2, 0, 2, 0, 2};
    static const uint32_t want_s[] = {0, 0, 0, 1, 1, 2, 2};
    int rr_ok = 1;
    for (size_t i = 0; i < PK_ARRAY_LEN(want_p); i++) {
        void *m = pk_mbox_pop(&mb);
        if (m != tag(want_p[i], want_s[i])) {
            rr_ok = 0;
            printf("  round-robin pop %zu: got %p, want lane %u seq %u\n", i, m, want_p[i], want_s[i]);
        }
    }
    CHECK(rr_ok);
    CHECK(pk_mbox_pop(&mb) == NULL);

    /* Many laps around tiny rings keep FIFO order per lane. */
    int ok = 1;
    uint32_t next_push[3] = {0}, next_pop[3] = {0};
    for (int lap = 0; lap < 10000; lap++) {
        unsigned burst = 1 + (unsigned)lap % mb.mb_capacity;
        for (unsigned p = 0; p < 3; p++)
            for (unsigned i = 0; i < burst; i++)
                if (pk_mbox_push(&mb, p, tag(p, next_push[p]++)) != 0)
                    ok = 0;
        void *m;
        while ((m = pk_mbox_pop(&mb)) != NULL) {
            unsigned p;
            uint32_t seq;
            untag(m, &p, &seq);
            if (p >= 3 || seq != next_pop[p]++)
                ok = 0;
        }
    }
    CHECK(ok);
    CHECK(memcmp(next_pop, next_push, sizeof(next_pop)) == 0);
    pk_mbox_destroy(&mb);
    pk_waker_destroy(&wk);
}

static void test_kick(void)
{
    pk_waker_t wk;
    pk_mbox_t mb;
    CHECK_RC(pk_waker_init(&wk), 0);

    /* Nothing written before any kick. */
    CHECK(eventfd_take(wk.wk_fd) == 0);

    /* Two kicks while armed: one write. */
    pk_waker_kick(&wk);
    pk_waker_kick(&wk);
    CHECK(eventfd_take(wk.wk_fd) == 1);
    /* Reading the counter does not re-arm: only drain does. */
    pk_waker_kick(&wk);
    CHECK(eventfd_take(wk.wk_fd) == 0);

    /* drain consumes and re-arms: the next kicks write again, once. */
    pk_waker_kick(&wk);
    pk_waker_drain(&wk);
    CHECK(eventfd_take(wk.wk_fd) == 0);
    pk_waker_kick(&wk);
    pk_waker_kick(&wk);
    pk_waker_kick(&wk);
    CHECK(eventfd_take(wk.wk_fd) == 1);
    pk_waker_drain(&wk);

    /* Pushes kick: the first push after a drain writes, later ones do not,
     * whichever lane they use. */
    CHECK_RC(pk_mbox_init(&mb, 2, 16, &wk), 0);
    CHECK_RC(pk_mbox_push(&mb, 0, tag(0, 0)), 0);
    CHECK_RC(pk_mbox_push(&mb, 1, tag(1, 0)), 0);
    CHECK_RC(pk_mbox_push(&mb, 0, tag(0, 1)), 0);
    struct pollfd pfd = {.fd = wk.wk_fd, .events = POLLIN};
    CHECK(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN));
    CHECK(eventfd_take(wk.wk_fd) == 1);
    pk_waker_drain(&wk);
    CHECK(pk_mbox_size(&mb) == 3);
    while (pk_mbox_pop(&mb) != NULL)
        ;
    /* A refused push does not kick. */
    pk_mbox_destroy(&mb);
    CHECK_RC(pk_mbox_init(&mb, 1, 1, &wk), 0);
    CHECK_RC(pk_mbox_push(&mb, 0, tag(4, 0)), 0);
    CHECK(eventfd_take(wk.wk_fd) == 1);
    pk_waker_drain(&wk);
    CHECK_RC(pk_mbox_push(&mb, 0, tag(4, 1)), PK_EFULL);
    CHECK(eventfd_take(wk.wk_fd) == 0);
    CHECK(pk_mbox_pop(&mb) == tag(4, 0));
    CHECK(pk_mbox_pop(&mb) == NULL);
    pk_mbox_destroy(&mb);

    /* Several boxes share one waker: one write for pushes to both. */
    pk_mbox_t a, b;
    pk_waker_drain(&wk);
    CHECK_RC(pk_mbox_init(&a, 1, 8, &wk), 0);
    CHECK_RC(pk_mbox_init(&b, 1, 8, &wk), 0);
    CHECK_RC(pk_mbox_push(&a, 0, tag(5, 0)), 0);
    CHECK_RC(pk_mbox_push(&b, 0, tag(6, 0)), 0);
    CHECK(eventfd_take(wk.wk_fd) == 1);
    pk_mbox_destroy(&a);
    pk_mbox_destroy(&b);

    pk_waker_destroy(&wk);
    CHECK(wk.wk_fd == -1);
}

/* ---- Multi-producer stress ------------------------------------------------ */

enum { PRODUCERS_MAX = 8, CAPACITY = 1024, POLL_TIMEOUT_MS = 5000 };

typedef struct stress {
    pk_waker_t s_waker;
    pk_mbox_t s_box;
    unsigned s_producers;
    uint32_t s_per_producer;
    uint64_t s_deadline_ns; /* producers stop early past it (slow machines) */
    unsigned s_batch_max;   /* 0: pop until empty */
    /*
     * Progress counters, relaxed on purpose: they only let the consumer tell
     * "outstanding" from "idle" on a poll timeout, and must not add
     * happens-before edges that would hide a ring race from TSan.
     */
    _Atomic uint32_t s_pushed[PRODUCERS_MAX];
    /* Release by a finished producer, acquire by the consumer when it decides
     * to stop: orders the final s_pushed values.  Used only at the very end. */
    atomic_uint s_done;
    /* Set by the consumer when it gives up so producers stop retrying
     * (relaxed: it carries no data, only "stop"). */
    atomic_int s_abort;
    /* Consumer results, read by main after join (join orders them). */
    uint64_t s_received;
    uint64_t s_out_of_order;
    uint64_t s_bad_tag;
    uint64_t s_wakeups;
    uint64_t s_self_kicks;
    uint64_t s_timeouts_outstanding;
    uint32_t s_next_seq[PRODUCERS_MAX];
} stress_t;

typedef struct producer_arg {
    stress_t *p_stress;
    unsigned p_id;
    uint64_t p_full_retries;
} producer_arg_t;

static void *producer_main(void *arg)
{
    producer_arg_t *pa = arg;
    stress_t *s = pa->p_stress;
    for (uint32_t seq = 0; seq < s->s_per_producer; seq++) {
        if ((seq & 63) == 0 && pk_mono_ns() > s->s_deadline_ns)
            break;
        for (;;) {
            int rc = pk_mbox_push(&s->s_box, pa->p_id, tag(pa->p_id, seq));
            if (rc == 0)
                break;
            if (rc != PK_EFULL) {
                printf("FAIL %s:%d: push returned %d (%s)\n", __FILE__, __LINE__, rc, pk_strerror(rc));
                atomic_store_explicit(&s->s_abort, 1, memory_order_relaxed);
                goto out;
            }
            if (atomic_load_explicit(&s->s_abort, memory_order_relaxed))
                goto out;
            pa->p_full_retries++;
            sched_yield();
        }
        atomic_store_explicit(&s->s_pushed[pa->p_id], seq + 1, memory_order_relaxed);
    }
out:
    atomic_fetch_add_explicit(&s->s_done, 1, memory_order_release);
    return NULL;
}

static uint64_t stress_pushed(stress_t *s)
{
    uint64_t sum = 0;
    for (unsigned p = 0; p < s->s_producers; p++)
        sum += atomic_load_explicit(&s->s_pushed[p], memory_order_relaxed);
    return sum;
}

static void *consumer_main(void *arg)
{
    stress_t *s = arg;
    struct pollfd pfd = {.fd = s->s_waker.wk_fd, .events = POLLIN};

    for (;;) {
        /* Stop once every producer finished and everything it pushed came
         * out; the acquire orders the producers' last counter stores. */
        if (atomic_load_explicit(&s->s_done, memory_order_acquire) == s->s_producers &&
            s->s_received == stress_pushed(s))
            break;
        if (atomic_load_explicit(&s->s_abort, memory_order_relaxed))
            break;
        int n = poll(&pfd, 1, POLL_TIMEOUT_MS);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /* Timed out: fine when idle, a lost wake-up when values wait. */
            if (stress_pushed(s) > s->s_received) {
                s->s_timeouts_outstanding++;
                atomic_store_explicit(&s->s_abort, 1, memory_order_relaxed);
                break;
            }
            continue;
        }
        s->s_wakeups++;
        /* The header's owner protocol: drain (disarm), then pop. */
        pk_waker_drain(&s->s_waker);
        unsigned popped = 0;
        void *msg;
        while ((s->s_batch_max == 0 || popped < s->s_batch_max) && (msg = pk_mbox_pop(&s->s_box)) != NULL) {
            unsigned p;
            uint32_t seq;
            popped++;
            untag(msg, &p, &seq);
            if (p >= s->s_producers || seq >= s->s_per_producer) {
                s->s_bad_tag++;
                continue;
            }
            /* Exactly-once and per-producer FIFO in one test: the next value
             * of each producer must be exactly the one after the last. */
            if (seq != s->s_next_seq[p])
                s->s_out_of_order++;
            s->s_next_seq[p] = seq + 1;
            s->s_received++;
        }
        /* Batch bound reached with messages left: come back to them. */
        if (s->s_batch_max != 0 && popped == s->s_batch_max && pk_mbox_size(&s->s_box) > 0) {
            pk_waker_kick(&s->s_waker);
            s->s_self_kicks++;
        }
    }
    return NULL;
}

/*
 * `producers` threads push per_producer values each (or as many as they
 * manage before budget_ms, so a slow sanitizer build stays bounded), one
 * consumer drains.  Checks exactly-once, per-producer order and the absence
 * of lost wake-ups.
 */
static void run_stress(unsigned producers, uint32_t per_producer, unsigned batch_max, unsigned budget_ms)
{
    static stress_t s; /* shared by five threads: not on a stack */
    memset(&s, 0, sizeof(s));
    atomic_init(&s.s_done, 0);
    atomic_init(&s.s_abort, 0);
    for (unsigned p = 0; p < PRODUCERS_MAX; p++)
        atomic_init(&s.s_pushed[p], 0);
    s.s_producers = producers;
    s.s_per_producer = per_producer;
    s.s_batch_max = batch_max;
    CHECK_RC(pk_waker_init(&s.s_waker), 0);
    CHECK_RC(pk_mbox_init(&s.s_box, producers, CAPACITY, &s.s_waker), 0);

    pthread_t consumer, threads[PRODUCERS_MAX];
    producer_arg_t args[PRODUCERS_MAX];
    uint64_t t0 = pk_mono_ns();
    s.s_deadline_ns = t0 + (uint64_t)budget_ms * 1000000;
    CHECK(pthread_create(&consumer, NULL, consumer_main, &s) == 0);
    for (unsigned i = 0; i < producers; i++) {
        args[i] = (producer_arg_t){.p_stress = &s, .p_id = i};
        CHECK(pthread_create(&threads[i], NULL, producer_main, &args[i]) == 0);
    }
    for (unsigned i = 0; i < producers; i++)
        pthread_join(threads[i], NULL);
    /* The last producer may have pushed nothing after its final kick: wake
     * the consumer so it notices everyone is done (any thread may kick). */
    pk_waker_kick(&s.s_waker);
    pthread_join(consumer, NULL);
    uint64_t elapsed_ms = (pk_mono_ns() - t0) / 1000000;

    const uint64_t total = (uint64_t)producers * per_producer;
    uint64_t pushed = stress_pushed(&s), retries = 0;
    for (unsigned i = 0; i < producers; i++)
        retries += args[i].p_full_retries;
    printf("# stress %u producers, batch_max=%u: %llu pushed of %llu planned, %llu received in %llu ms "
           "(%.0f msg/s), %llu wake-ups, %llu self-kicks, %llu full retries%s\n",
           producers, batch_max, (unsigned long long)pushed, (unsigned long long)total,
           (unsigned long long)s.s_received, (unsigned long long)elapsed_ms,
           elapsed_ms ? (double)s.s_received * 1000.0 / (double)elapsed_ms : 0.0, (unsigned long long)s.s_wakeups,
           (unsigned long long)s.s_self_kicks, (unsigned long long)retries,
           pushed < total ? " [time budget hit before all values were pushed]" : "");

    CHECK(s.s_timeouts_outstanding == 0); /* a lost wake-up shows up as a poll timeout */
    CHECK(s.s_received == pushed);        /* nothing lost, nothing extra */
    CHECK(s.s_out_of_order == 0);         /* exactly once, FIFO per producer */
    CHECK(s.s_bad_tag == 0);
    int per_producer_ok = 1;
    for (unsigned p = 0; p < producers; p++)
        if (s.s_next_seq[p] != atomic_load_explicit(&s.s_pushed[p], memory_order_relaxed))
            per_producer_ok = 0;
    CHECK(per_producer_ok);
    CHECK(pushed > 0);
    /* Nothing left over or duplicated after everyone stopped. */
    CHECK(pk_mbox_pop(&s.s_box) == NULL);
    CHECK(pk_mbox_size(&s.s_box) == 0);
    if (batch_max != 0 && pushed > CAPACITY)
        CHECK(s.s_self_kicks > 0);

    pk_mbox_destroy(&s.s_box);
    pk_waker_destroy(&s.s_waker);
}

int main(int argc, char **argv)
{
    unsigned producers = argc > 1 ? (unsigned)atoi(argv[1]) : 4;
    uint32_t per_producer = argc > 2 ? (uint32_t)atol(argv[2]) : 200000;
    unsigned budget_ms = argc > 3 ? (unsigned)atoi(argv[3]) : 8000;
    if (producers < 1 || producers > PRODUCERS_MAX || per_producer < 4) {
        fprintf(stderr, "usage: test_mbox [producers 1..%d [per_producer >= 4 [budget_ms]]]\n", PRODUCERS_MAX);
        return 2;
    }

    test_init_args();
    test_capacity();
    test_empty_round_robin_wraparound();
    test_kick();
    /* Pop until empty, as asked; then the batch-bounded variant of the wake
     * protocol (the owner re-kicks itself), with fewer messages. */
    run_stress(producers, per_producer, 0, budget_ms);
    run_stress(producers, per_producer / 4, 64, budget_ms / 2);

    return CHECK_DONE("test_mbox");
}
