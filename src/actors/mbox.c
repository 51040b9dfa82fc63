/* Mailboxes: Concurrency Kit MPSC rings plus an eventfd that is written only
 * when the owner might be asleep. */
#include <assert.h>
#include <ck_pr.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pickple/mbox.h"

int pk_waker_init(pk_waker_t *wk)
{
    wk->wk_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wk->wk_fd < 0)
        return -errno;
    wk->wk_armed_not = 0;
    return 0;
}

void pk_waker_destroy(pk_waker_t *wk)
{
    if (wk->wk_fd >= 0)
        close(wk->wk_fd);
    wk->wk_fd = -1;
}

void pk_waker_drain(pk_waker_t *wk)
{
    uint64_t count;
    while (read(wk->wk_fd, &count, sizeof(count)) == (ssize_t)sizeof(count))
        ;
    /*
     * Disarm before the owner pops: a producer that pushes after this store
     * sees 0 in its fetch-and-store and writes the eventfd again.  The full
     * fence orders this store before the owner's subsequent ring loads
     * (store->load ordering is the one x86 does not give for free), so a
     * message pushed before a producer saw 1 here is seen by the pops.
     */
    ck_pr_store_uint(&wk->wk_armed_not, 0);
    ck_pr_fence_memory();
}

void pk_waker_kick(pk_waker_t *wk)
{
    /*
     * Fetch-and-store is a full barrier (locked xchg): the ring push that
     * precedes it is visible before the flag, so an owner that disarms after
     * this point finds the message when it pops.
     */
    if (ck_pr_fas_uint(&wk->wk_armed_not, 1) == 0) {
        uint64_t one = 1;
        ssize_t n;
        do {
            n = write(wk->wk_fd, &one, sizeof(one));
        } while (n < 0 && errno == EINTR);
        /* EAGAIN only when the counter is near 2^64: the owner is woken anyway. */
    }
}

int pk_mbox_init(pk_mbox_t *mb, unsigned producers, unsigned capacity_min, pk_waker_t *wk)
{
    unsigned size = 2;
    memset(mb, 0, sizeof(*mb));
    if (producers == 0 || producers > 1024 || capacity_min == 0 || capacity_min > (1u << 24))
        return -EINVAL;
    while (size - 1 < capacity_min)
        size <<= 1;
    mb->mb_lanes = aligned_alloc(PK_CACHE_LINE, sizeof(pk_mbox_lane_t) * producers);
    if (mb->mb_lanes == NULL)
        return -ENOMEM;
    memset(mb->mb_lanes, 0, sizeof(pk_mbox_lane_t) * producers);
    mb->mb_producers = producers;
    for (unsigned i = 0; i < producers; i++) {
        mb->mb_lanes[i].ml_slots = calloc(size, sizeof(ck_ring_buffer_t));
        if (mb->mb_lanes[i].ml_slots == NULL) {
            pk_mbox_destroy(mb);
            return -ENOMEM;
        }
        ck_ring_init(&mb->mb_lanes[i].ml_ring, size);
    }
    mb->mb_waker = wk;
    mb->mb_capacity = size - 1;
    return 0;
}

void pk_mbox_destroy(pk_mbox_t *mb)
{
    if (mb->mb_lanes != NULL) {
        for (unsigned i = 0; i < mb->mb_producers; i++)
            free(mb->mb_lanes[i].ml_slots);
        free(mb->mb_lanes);
    }
    mb->mb_lanes = NULL;
    mb->mb_producers = 0;
}

int pk_mbox_push(pk_mbox_t *mb, unsigned producer, void *msg)
{
    assert(msg != NULL);
    assert(producer < mb->mb_producers);
    pk_mbox_lane_t *lane = &mb->mb_lanes[producer];
    if (!ck_ring_enqueue_spsc(&lane->ml_ring, lane->ml_slots, msg))
        return PK_EFULL;
    pk_waker_kick(mb->mb_waker);
    return 0;
}

void *pk_mbox_pop(pk_mbox_t *mb)
{
    void *msg;
    for (unsigned k = 0; k < mb->mb_producers; k++) {
        unsigned i = (mb->mb_next + k) % mb->mb_producers;
        pk_mbox_lane_t *lane = &mb->mb_lanes[i];
        if (ck_ring_dequeue_spsc(&lane->ml_ring, lane->ml_slots, &msg)) {
            mb->mb_next = i + 1;
            return msg;
        }
    }
    return NULL;
}

unsigned pk_mbox_size(pk_mbox_t *mb)
{
    unsigned n = 0;
    for (unsigned i = 0; i < mb->mb_producers; i++)
        n += ck_ring_size(&mb->mb_lanes[i].ml_ring);
    return n;
}
