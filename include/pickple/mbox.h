/*
 * Bounded multi-producer, single-consumer mailboxes between threads.
 *
 * A mailbox is one lane per producer thread, each a Concurrency Kit
 * single-producer/single-consumer ring of pointers.  Producers never wait
 * for each other (a shared multi-producer ring commits slots in ticket
 * order, so one producer preempted mid-push stalls every other producer:
 * on an oversubscribed machine that showed up as seconds-long stalls).
 * Only the owner pops, round-robin over the lanes.  The owner sleeps in
 * its event loop on an eventfd (pk_waker_t) that producers write only when
 * they see the waker disarmed, i.e. on the owner's empty -> non-empty
 * transition, so a busy owner costs its producers no system call.  Several
 * mailboxes may share one waker (an actor has a request box and a reply
 * box).
 *
 * Caveats:
 * - pk_mbox_pop() must only ever be called from the owning thread, and
 *   lane p of a mailbox only ever pushed to by producer thread p.
 * - A pushed pointer is handed over: the producer must not touch the object
 *   again until it comes back to it by another mailbox.
 * - Wake protocol (owner side): pk_waker_drain() (reads the eventfd and
 *   disarms), then pop until empty or the batch bound; if messages remain,
 *   pk_waker_kick() so the loop comes back to them after serving sockets.
 */
#ifndef PICKPLE_MBOX_H
#define PICKPLE_MBOX_H

#include <ck_ring.h>
#include <stdbool.h>

#include "pickple/common.h"

typedef struct pk_waker {
    int wk_fd; /* eventfd, EFD_NONBLOCK */
    char wk_pad0[PK_CACHE_LINE - sizeof(int)];
    /* 1 while an eventfd write is outstanding; written by every producer. */
    unsigned wk_armed_not;
    char wk_pad1[PK_CACHE_LINE - sizeof(unsigned)];
} pk_waker_t;

/* One producer's lane: written by that producer, read by the owner. */
typedef struct pk_mbox_lane {
    ck_ring_t ml_ring;
    ck_ring_buffer_t *ml_slots;
} __attribute__((aligned(PK_CACHE_LINE))) pk_mbox_lane_t;

typedef struct pk_mbox {
    pk_mbox_lane_t *mb_lanes;
    unsigned mb_producers;
    unsigned mb_capacity; /* usable slots per lane: ring size - 1 */
    unsigned mb_next;     /* owner: lane to try first (round-robin) */
    pk_waker_t *mb_waker;
} pk_mbox_t;

/* Creates the eventfd.  Returns 0 or -errno. */
int pk_waker_init(pk_waker_t *wk) PK_MUST_USE;
void pk_waker_destroy(pk_waker_t *wk);

/* Owner: consumes the eventfd counter and re-arms producers' wake-ups. */
void pk_waker_drain(pk_waker_t *wk);

/* Any thread: makes the owner's loop wake up (at most one write per arming). */
void pk_waker_kick(pk_waker_t *wk);

/*
 * Allocates one lane per producer (producers 0..producers-1), each holding
 * at least capacity_min pointers (2^k - 1 for the smallest such k), and
 * signals wk on pushes.  Returns 0 or -ENOMEM/-EINVAL.
 */
int pk_mbox_init(pk_mbox_t *mb, unsigned producers, unsigned capacity_min, pk_waker_t *wk) PK_MUST_USE;
void pk_mbox_destroy(pk_mbox_t *mb);

/*
 * Producer thread `producer` only: appends msg (non-NULL) to its lane.
 * Returns 0, or PK_EFULL when that lane is full, in which case ownership of
 * msg stays with the caller.  Wait-free.
 */
int pk_mbox_push(pk_mbox_t *mb, unsigned producer, void *msg) PK_MUST_USE;

/* Owner only: removes a message (FIFO per producer, lanes served
 * round-robin), or returns NULL when every lane is empty. */
void *pk_mbox_pop(pk_mbox_t *mb);

/* Approximate number of queued messages (exact from the owner when idle). */
unsigned pk_mbox_size(pk_mbox_t *mb);

#endif
