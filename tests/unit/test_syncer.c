/*
 * Unit tests for src/actors/syncer.c against a real LMDB environment: the
 * owner (this thread) follows the header's protocol exactly (sleep in
 * poll() on its waker, drain, check the turn), writes in the transaction
 * the syncer began, and hands it back.  Checked: a committed write is in
 * the store when the turn comes back and the result is 0; an aborted one
 * never is; the next transaction starts from the last commit; after
 * pk_syncer_stop (also of a syncer whose first transaction was never used) this
 * thread can begin and commit a write transaction of its own (the writer
 * lock was released by the thread that held it); the syncer runs with its
 * short time slice.  Under ThreadSanitizer
 * (scripts/test.sh --tsan) the owner's and the syncer's accesses to the
 * shared fields are checked for races (TSan also counts the eventfd
 * wake-ups as ordering, so it does not prove the turn's own ordering).
 */
#include <poll.h>
#include <stdio.h>

#include "pickple/syncer.h"

#include "check.h"
#include "store_fixture.h"

#define ROUNDS 600

/* The owner's wait: the header's wake protocol. */
static void wait_turn(pk_syncer_t *sy, pk_waker_t *owner)
{
    struct pollfd pfd = {.fd = owner->wk_fd, .events = POLLIN};
    while (!pk_syncer_owner_turn(sy)) {
        CHECK(poll(&pfd, 1, 5000) == 1); /* a lost wake-up would hang here */
        pk_waker_drain(owner);
    }
}

static bool present(pk_store_t *st, uint64_t id)
{
    MDB_txn *txn;
    MDB_val v;
    CHECK_RC(pk_store_begin(st, true, &txn), 0);
    int rc = pk_store_get_id(st, txn, PK_TBL_PRODUCTS, id, &v);
    mdb_txn_abort(txn);
    CHECK(rc == 0 || rc == PK_ENOTFOUND);
    return rc == 0;
}

static void test_rounds(pk_store_t *st)
{
    pk_waker_t owner;
    pk_syncer_t sy;
    unsigned committed = 0;
    CHECK_RC(pk_waker_init(&owner), 0);
    CHECK_RC(pk_syncer_start(&sy, st, &owner), 0);
    for (uint64_t id = 1; id <= ROUNDS; id++) {
        bool commit = id % 5 != 0;
        wait_turn(&sy, &owner);
        MDB_txn *txn = pk_syncer_txn(&sy);
        CHECK(txn != NULL);
        if (txn == NULL)
            break;
        /* The transaction sees every earlier commit and no abort. */
        MDB_val v;
        if (id > 1)
            CHECK_RC(pk_store_get_id(st, txn, PK_TBL_PRODUCTS, id - 1, &v), (id - 1) % 5 != 0 ? 0 : PK_ENOTFOUND);
        CHECK_RC(pk_store_put_id(st, txn, PK_TBL_PRODUCTS, id, &id, sizeof(id)), 0);
        uint64_t handed = pk_mono_ns();
        pk_syncer_hand_back(&sy, commit ? PK_SYNC_COMMIT : PK_SYNC_ABORT);
        wait_turn(&sy, &owner);
        uint64_t back = pk_mono_ns();
        if (commit) {
            CHECK_RC(pk_syncer_result(&sy), 0);
            /* The commit was timed on the syncer, inside the owner's wait. */
            uint64_t took = pk_syncer_commit_ns(&sy);
            CHECK(took > 0 && took <= back - handed);
            committed++;
        }
        CHECK(present(st, id) == commit);
    }
    pk_syncer_stop(&sy);
    pk_waker_destroy(&owner);
    /* Every commit is there, every abort is not. */
    unsigned found = 0;
    for (uint64_t id = 1; id <= ROUNDS; id++)
        found += present(st, id);
    CHECK(found == committed && committed == ROUNDS - ROUNDS / 5);
    /* The writer lock is free again: this thread writes. */
    MDB_txn *txn;
    uint64_t id = ROUNDS + 1;
    CHECK_RC(pk_store_begin(st, false, &txn), 0);
    CHECK_RC(pk_store_put_id(st, txn, PK_TBL_PRODUCTS, id, &id, sizeof(id)), 0);
    CHECK_RC(pk_store_commit(st, txn), 0);
    CHECK(present(st, id));
}

/* A syncer stopped right after it started (its first transaction begun,
 * never used) releases the writer lock too. */
static void test_stop_unused(pk_store_t *st)
{
    pk_waker_t owner;
    pk_syncer_t sy;
    MDB_txn *txn;
    CHECK_RC(pk_waker_init(&owner), 0);
    CHECK_RC(pk_syncer_start(&sy, st, &owner), 0);
    pk_syncer_stop(&sy);
    pk_waker_destroy(&owner);
    CHECK_RC(pk_store_begin(st, false, &txn), 0);
    CHECK_RC(pk_store_commit(st, txn), 0);
}

/* The syncer runs with the short slice it asked for, where the kernel has
 * custom slices (probed on this thread first). */
static void test_short_slice(pk_store_t *st)
{
    pk_waker_t owner;
    pk_syncer_t sy;
    CHECK_RC(pk_waker_init(&owner), 0);
    CHECK_RC(pk_syncer_start(&sy, st, &owner), 0);
    wait_turn(&sy, &owner);
    CHECK(sy.sy_tid > 0);
    if (pk_thread_short_slice(3 * PK_SYNCER_SLICE_NS) == 0 && pk_thread_slice(0) == 3 * PK_SYNCER_SLICE_NS)
        CHECK(pk_thread_slice(sy.sy_tid) == PK_SYNCER_SLICE_NS);
    else
        printf("  (this kernel has no custom slices: the syncer's is not checked)\n");
    pk_syncer_stop(&sy);
    pk_waker_destroy(&owner);
}

int main(void)
{
    char dir[] = "/tmp/pickple-test-syncer-XXXXXX";
    pk_store_t st;
    if (fixture_open_tmp_store(&st, dir) != 0)
        return 1;
    test_rounds(&st);
    test_stop_unused(&st);
    test_short_slice(&st);
    fixture_close_store(&st, dir);
    return CHECK_DONE("test_syncer");
}
