/* The worker pool: a few threads for slow, stateless work (password
 * hashing) so no actor loop ever stalls on it.  Jobs are messages; each
 * worker has its own mailbox with a lane per actor, and the result goes
 * back to the origin's reply box like a shard's reply. */
#include <assert.h>
#include <ck_pr.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "pickple/actor.h"
#include "pickple/log.h"

static void *pk__worker_main(void *arg)
{
    pk_worker_t *w = arg;
    pk_workers_t *wk = w->w_pool;
    pk_runtime_t *rt = wk->wk_rt;
    struct pollfd pfd = {.fd = w->w_waker.wk_fd, .events = POLLIN};
    for (;;) {
        pk_msg_t *msg;
        pk_waker_drain(&w->w_waker);
        while ((msg = pk_mbox_pop(&w->w_jobs)) != NULL) {
            msg->m_work(msg);
            pk_actor_t *origin = &rt->rt_actors[msg->m_origin];
            int rc = pk_mbox_push(&origin->a_replies, rt->rt_nactors + w->w_index, msg);
            /* The origin keeps fewer live messages than a lane holds. */
            assert(rc == 0);
            (void)rc;
        }
        if (ck_pr_load_uint(&wk->wk_stop))
            return NULL;
        while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
            ;
    }
}

int pk_workers_start(pk_workers_t *wk, pk_runtime_t *rt, unsigned count)
{
    wk->wk_rt = rt;
    wk->wk_stop = 0;
    wk->wk_count = 0;
    wk->wk_workers = calloc(count, sizeof(pk_worker_t));
    if (wk->wk_workers == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < count; i++) {
        pk_worker_t *w = &wk->wk_workers[i];
        int rc;
        w->w_pool = wk;
        w->w_index = i;
        if ((rc = pk_waker_init(&w->w_waker)) != 0 ||
            (rc = pk_mbox_init(&w->w_jobs, rt->rt_nactors, PK_WORKER_QUEUE_CAPACITY, &w->w_waker)) != 0 ||
            pthread_create(&w->w_thread, NULL, pk__worker_main, w) != 0) {
            pk_mbox_destroy(&w->w_jobs);
            pk_waker_destroy(&w->w_waker);
            pk_workers_stop(wk);
            return rc != 0 ? rc : -EAGAIN;
        }
        pk_thread_name(w->w_thread, "pk-worker", i);
        wk->wk_count++;
    }
    return 0;
}

void pk_workers_stop(pk_workers_t *wk)
{
    ck_pr_store_uint(&wk->wk_stop, 1);
    for (unsigned i = 0; i < wk->wk_count; i++)
        pk_waker_kick(&wk->wk_workers[i].w_waker);
    for (unsigned i = 0; i < wk->wk_count; i++) {
        pk_worker_t *w = &wk->wk_workers[i];
        pthread_join(w->w_thread, NULL);
        pk_mbox_destroy(&w->w_jobs);
        pk_waker_destroy(&w->w_waker);
    }
    free(wk->wk_workers);
    wk->wk_workers = NULL;
    wk->wk_count = 0;
}

int pk_actor_work(pk_actor_t *origin, pk_msg_t *msg)
{
    pk_workers_t *wk = &origin->a_rt->rt_workers;
    assert(msg->m_work != NULL && msg->m_done != NULL);
    msg->m_origin = (uint16_t)origin->a_index;
    /* Round-robin; a full lane passes the job to the next worker. */
    for (unsigned k = 0; k < wk->wk_count; k++) {
        pk_worker_t *w = &wk->wk_workers[origin->a_next_worker++ % wk->wk_count];
        if (pk_mbox_push(&w->w_jobs, origin->a_index, msg) == 0)
            return 0;
    }
    return PK_EFULL;
}
