/* A shard's syncer thread: begins and ends the shard's write transactions
 * (include/pickple/syncer.h). */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pickple/log.h"
#include "pickple/syncer.h"

/*
 * The turn is a C11-style atomic (GCC builtins), not ck_pr: its release
 * store publishes everything the giver wrote, transaction included, and
 * the taker's acquire load sees it; ThreadSanitizer understands these, so
 * the unit test under TSan checks the hand-over itself.
 */
static void pk__give_turn(pk_syncer_t *sy, unsigned to_syncer)
{
    __atomic_store_n(&sy->sy_turn_syncer, to_syncer, __ATOMIC_RELEASE);
}

static bool pk__syncer_turn(pk_syncer_t *sy)
{
    return __atomic_load_n(&sy->sy_turn_syncer, __ATOMIC_ACQUIRE) != 0;
}

static void pk__begin(pk_syncer_t *sy)
{
    if (pk_store_begin(sy->sy_store, false, &sy->sy_txn) != 0)
        sy->sy_txn = NULL;
}

static void *pk__syncer_main(void *arg)
{
    pk_syncer_t *sy = arg;
    struct pollfd pfd = {.fd = sy->sy_waker.wk_fd, .events = POLLIN};
    sy->sy_tid = (pid_t)syscall(SYS_gettid);
    int rc = pk_thread_short_slice(PK_SYNCER_SLICE_NS);
    if (rc != 0)
        pk_log_warn("shard=%u syncer: no short time slice: %s", sy->sy_store->st_shard, strerror(-rc));
    pk__begin(sy);
    pk__give_turn(sy, 0);
    pk_waker_kick(sy->sy_owner_waker);
    for (;;) {
        while (!pk__syncer_turn(sy)) {
            if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                pk_log_error("shard=%u syncer: poll: %s", sy->sy_store->st_shard, strerror(errno));
            pk_waker_drain(&sy->sy_waker);
        }
        pk_sync_request_t req = sy->sy_request;
        MDB_txn *txn = sy->sy_txn;
        sy->sy_txn = NULL;
        if (req == PK_SYNC_COMMIT) {
            assert(txn != NULL);
            uint64_t t0 = pk_mono_ns();
            sy->sy_end_rc = pk_store_commit_txn(sy->sy_store, txn);
            sy->sy_commit_ns = pk_mono_ns() - t0;
        } else if (txn != NULL) {
            mdb_txn_abort(txn);
        }
        if (req == PK_SYNC_STOP)
            return NULL;
        pk__begin(sy);
        pk__give_turn(sy, 0);
        pk_waker_kick(sy->sy_owner_waker);
    }
}

int pk_syncer_start(pk_syncer_t *sy, pk_store_t *st, pk_waker_t *owner_waker)
{
    int rc;
    memset(sy, 0, sizeof(*sy));
    sy->sy_store = st;
    sy->sy_owner_waker = owner_waker;
    sy->sy_turn_syncer = 1; /* its first turn: beginning */
    if ((rc = pk_waker_init(&sy->sy_waker)) != 0)
        return rc;
    if (pthread_create(&sy->sy_thread, NULL, pk__syncer_main, sy) != 0) {
        pk_waker_destroy(&sy->sy_waker);
        return -EAGAIN;
    }
    sy->sy_started = true;
    return 0;
}

bool pk_syncer_owner_turn(pk_syncer_t *sy)
{
    return !pk__syncer_turn(sy);
}

MDB_txn *pk_syncer_txn(pk_syncer_t *sy)
{
    assert(!pk__syncer_turn(sy));
    return sy->sy_txn;
}

void pk_syncer_hand_back(pk_syncer_t *sy, pk_sync_request_t req)
{
    assert(!pk__syncer_turn(sy));
    assert(req != PK_SYNC_COMMIT || sy->sy_txn != NULL);
    sy->sy_request = req;
    pk__give_turn(sy, 1);
    pk_waker_kick(&sy->sy_waker);
}

int pk_syncer_result(pk_syncer_t *sy)
{
    assert(!pk__syncer_turn(sy));
    return sy->sy_end_rc;
}

uint64_t pk_syncer_commit_ns(pk_syncer_t *sy)
{
    assert(!pk__syncer_turn(sy));
    return sy->sy_commit_ns;
}

void pk_syncer_wait(pk_syncer_t *sy)
{
    const struct timespec pause = {0, 100 * 1000};
    while (!pk_syncer_owner_turn(sy))
        nanosleep(&pause, NULL);
}

void pk_syncer_stop(pk_syncer_t *sy)
{
    if (!sy->sy_started)
        return;
    pk_syncer_wait(sy);
    pk_syncer_hand_back(sy, PK_SYNC_STOP);
    pthread_join(sy->sy_thread, NULL);
    pk_waker_destroy(&sy->sy_waker);
    sy->sy_started = false;
}
