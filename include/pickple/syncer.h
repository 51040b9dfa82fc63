/*
 * A shard's syncer: the thread that begins and ends the shard's write
 * transactions, so that the owner's event loop keeps serving its HTTP
 * connections while a group commit writes its pages and waits for the
 * disk (about 1.5 ms of every batch in `hot`, a third of the owner's time
 * before).
 *
 * Why a thread begins and ends them: LMDB's writer lock is a mutex owned by
 * the thread that begins a write transaction, and only that thread may
 * release it (commit or abort).  A transaction holds no other per-thread
 * state (the environments use MDB_NOTLS), so in between the owner applies
 * its batch in it, strictly one thread at a time: the turn flag hands the
 * transaction over with release/acquire ordering.
 *
 * The protocol, one transaction at a time:
 *   1. The syncer begins a write transaction and gives the turn to the
 *      owner (its waker is kicked).
 *   2. The owner applies a batch in it and asks for COMMIT (or ABORT),
 *      giving the turn back; it keeps the batch's replies.
 *   3. The syncer ends the transaction, records the result, begins the
 *      next one and gives the turn to the owner, who then sends the
 *      replies (or 503s) and may apply the next batch.
 * The owner applies no batch while the syncer has the turn: it reads,
 * parses and routes requests meanwhile.  Nothing unacknowledged is
 * visible: a reply still waits for its commit, and the only state other
 * threads see early (the sold-out board) was already set before the
 * commit.
 *
 * No locks: an atomic turn flag and two eventfd wakers (pk_waker_t).
 *
 * The syncer asks for a short time slice (PK_SYNCER_SLICE_NS,
 * pk_thread_short_slice): it sleeps between commits, and when the owner
 * hands it a transaction every microsecond before it runs delays the
 * batch's answers.  With the kernel's default slice, a woken syncer on two
 * busy cores waited for the running thread's slice to end: in closed-loop
 * `hot`, the time from hand-back to the owner seeing the commit exceeded
 * the commit itself by 513-661 us; with the short slice by 307-436 us
 * (7 interleaved pairs).
 */
#ifndef PICKPLE_SYNCER_H
#define PICKPLE_SYNCER_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>

#include "pickple/mbox.h"
#include "pickple/store.h"

typedef enum pk_sync_request {
    PK_SYNC_COMMIT = 1,
    PK_SYNC_ABORT = 2,
    PK_SYNC_STOP = 3, /* abort the begun transaction and exit */
} pk_sync_request_t;

#define PK_SYNCER_SLICE_NS 100000 /* the shortest the kernel grants */

typedef struct pk_syncer {
    pk_store_t *sy_store;
    pk_waker_t *sy_owner_waker; /* kicked when the turn comes back */
    pk_waker_t sy_waker;        /* the syncer sleeps on it */
    pthread_t sy_thread;
    bool sy_started;
    pid_t sy_tid;               /* the syncer's thread id, once its first turn came back */
    /* Written by whoever has the turn, read by the other after it. */
    unsigned sy_turn_syncer;    /* 1: the syncer's turn (atomic, release/acquire) */
    pk_sync_request_t sy_request;
    MDB_txn *sy_txn;            /* begun, for the owner; NULL when begin failed */
    int sy_end_rc;              /* result of the last COMMIT (0 or PK_ESTORE) */
    uint64_t sy_commit_ns;      /* how long the last COMMIT took (page writes and syncs) */
} pk_syncer_t;

/*
 * Starts the thread for st (nobody else may write st from now on until
 * pk_syncer_stop); it begins the first transaction at once and kicks
 * owner_waker.  Returns 0 or a negative errno.
 */
int pk_syncer_start(pk_syncer_t *sy, pk_store_t *st, pk_waker_t *owner_waker) PK_MUST_USE;

/* Owner: true when the owner has the turn (acquire). */
bool pk_syncer_owner_turn(pk_syncer_t *sy);

/* Owner, with the turn: the begun transaction, or NULL (begin failed,
 * logged; the next turn tries again). */
MDB_txn *pk_syncer_txn(pk_syncer_t *sy);

/* Owner, with the turn: hands the transaction back with req (COMMIT or
 * ABORT) and gives up the turn. */
void pk_syncer_hand_back(pk_syncer_t *sy, pk_sync_request_t req);

/* Owner, with the turn back after a COMMIT: its result, 0 or PK_ESTORE. */
int pk_syncer_result(pk_syncer_t *sy);

/* Owner, with the turn back after a COMMIT: how long mdb_txn_commit took on
 * the syncer, in nanoseconds (the disk's part of the batch's latency). */
uint64_t pk_syncer_commit_ns(pk_syncer_t *sy);

/* Owner: blocks until the turn is the owner's (shutdown only). */
void pk_syncer_wait(pk_syncer_t *sy);

/* Once the owner thread is gone: aborts the begun transaction and joins
 * the thread; then the store may be written by the caller again. */
void pk_syncer_stop(pk_syncer_t *sy);

#endif
