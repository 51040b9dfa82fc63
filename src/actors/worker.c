/* The worker pool: a few threads for slow, stateless work (password
 * hashing) so no actor loop ever stalls on it.  Jobs are messages; the
 * result goes back to the origin's reply box like a shard's reply. */
#include <assert.h>
#include <ck_pr.h>
#include <stdlib.h>
#include <string.h>

#include "pickple/actor.h"
#include "pickple/log.h"

static void *pk__worker_main(void *arg)
{
    pk_workers_t *wk = arg;
    for (;;) {
        while (sem_wait(&wk->wk_sem) != 0 && errno == EINTR)
            ;
        if (ck_pr_load_uint(&wk->wk_stop))
            return NULL;
        pk_msg_t *msg;
        /* The semaphore counted one job for us; a concurrent worker may
         * still be mid-enqueue, so spin briefly until it is visible. */
        while (!ck_ring_dequeue_mpmc(&wk->wk_ring, wk->wk_slots, &msg))
            ck_pr_stall();
        msg->m_work(msg);
        pk_actor_t *origin = &wk->wk_rt->rt_actors[msg->m_origin];
        int rc = pk_mbox_push(&origin->a_replies, msg);
        /* The origin keeps fewer live messages than its reply box holds. */
        assert(rc == 0);
        (void)rc;
    }
}

int pk_workers_start(pk_workers_t *wk, pk_runtime_t *rt, unsigned count)
{
    memset(wk, 0, sizeof(*wk));
    wk->wk_rt = rt;
    wk->wk_slots = calloc(PK_WORKER_QUEUE_CAPACITY, sizeof(ck_ring_buffer_t));
    wk->wk_threads = calloc(count, sizeof(pthread_t));
    if (wk->wk_slots == NULL || wk->wk_threads == NULL)
        goto fail;
    ck_ring_init(&wk->wk_ring, PK_WORKER_QUEUE_CAPACITY);
    if (sem_init(&wk->wk_sem, 0, 0) != 0)
        goto fail;
    for (unsigned i = 0; i < count; i++) {
        if (pthread_create(&wk->wk_threads[i], NULL, pk__worker_main, wk) != 0) {
            pk_workers_stop(wk);
            return -EAGAIN;
        }
        wk->wk_count++;
    }
    return 0;
fail:
    free(wk->wk_slots);
    free(wk->wk_threads);
    return -ENOMEM;
}

void pk_workers_stop(pk_workers_t *wk)
{
    ck_pr_store_uint(&wk->wk_stop, 1);
    for (unsigned i = 0; i < wk->wk_count; i++)
        sem_post(&wk->wk_sem);
    for (unsigned i = 0; i < wk->wk_count; i++)
        pthread_join(wk->wk_threads[i], NULL);
    sem_destroy(&wk->wk_sem);
    free(wk->wk_slots);
    free(wk->wk_threads);
    wk->wk_slots = NULL;
    wk->wk_threads = NULL;
    wk->wk_count = 0;
}

int pk_actor_work(pk_actor_t *origin, pk_msg_t *msg)
{
    pk_workers_t *wk = &origin->a_rt->rt_workers;
    assert(msg->m_work != NULL && msg->m_done != NULL);
    msg->m_origin = (uint16_t)origin->a_index;
    if (!ck_ring_enqueue_mpmc(&wk->wk_ring, wk->wk_slots, msg))
        return PK_EFULL;
    sem_post(&wk->wk_sem);
    return 0;
}
