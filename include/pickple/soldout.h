/*
 * Sold-out board: each shard publishes which of its sales are sold out, so
 * every thread can refuse their orders without a mailbox hop.
 *
 * One board per shard, written only by its owner; any thread reads it.  A
 * board is a fixed table of slots indexed by a hash of the sale id; a slot
 * holds (sale id, ends_ms).  A collision overwrites the older entry, which
 * only costs that sale its fast refusal: the owner still decides every order
 * it receives, so the board is an optimisation, never the authority.
 *
 * Readers see a published state at most one write late: an order refused
 * here a moment after units came back is answered sold_out, as it would
 * have been a moment earlier.
 */
#ifndef PICKPLE_SOLDOUT_H
#define PICKPLE_SOLDOUT_H

#include <stdbool.h>
#include <stdint.h>

#define PK_SOLDOUT_SLOTS 1024 /* power of two */

typedef struct pk_soldout_slot {
    uint64_t ss_sale_id; /* 0: empty */
    int64_t ss_ends_ms;
} pk_soldout_slot_t;

typedef struct pk_soldout {
    pk_soldout_slot_t so_slots[PK_SOLDOUT_SLOTS];
} pk_soldout_t;

/* Owner only: sale_id is sold out until ends_ms (or a clear). */
void pk_soldout_set(pk_soldout_t *so, uint64_t sale_id, int64_t ends_ms);
/* Owner only: sale_id has units again, or ended. */
void pk_soldout_clear(pk_soldout_t *so, uint64_t sale_id);
/* Any thread: true when sale_id is published sold out at now_ms. */
bool pk_soldout_check(const pk_soldout_t *so, uint64_t sale_id, int64_t now_ms);

#endif
