/* The sold-out board: single writer, lock-free readers. */
#include <ck_pr.h>

#include "pickple/soldout.h"

static pk_soldout_slot_t *pk__slot(const pk_soldout_t *so, uint64_t sale_id)
{
    uint64_t h = (sale_id * 0x9e3779b97f4a7c15ull) >> 32;
    return (pk_soldout_slot_t *)&so->so_slots[h & (PK_SOLDOUT_SLOTS - 1)];
}

void pk_soldout_set(pk_soldout_t *so, uint64_t sale_id, int64_t ends_ms)
{
    pk_soldout_slot_t *s = pk__slot(so, sale_id);
    /* Empty the slot before changing its time, so a reader never pairs
     * this sale with another sale's end. */
    ck_pr_store_64(&s->ss_sale_id, 0);
    ck_pr_fence_store();
    ck_pr_store_64((uint64_t *)&s->ss_ends_ms, (uint64_t)ends_ms);
    ck_pr_fence_store();
    ck_pr_store_64(&s->ss_sale_id, sale_id);
}

void pk_soldout_clear(pk_soldout_t *so, uint64_t sale_id)
{
    pk_soldout_slot_t *s = pk__slot(so, sale_id);
    if (ck_pr_load_64(&s->ss_sale_id) == sale_id)
        ck_pr_store_64(&s->ss_sale_id, 0);
}

bool pk_soldout_check(const pk_soldout_t *so, uint64_t sale_id, int64_t now_ms)
{
    pk_soldout_slot_t *s = pk__slot(so, sale_id);
    if (ck_pr_load_64(&s->ss_sale_id) != sale_id)
        return false;
    ck_pr_fence_load();
    int64_t ends = (int64_t)ck_pr_load_64((uint64_t *)&s->ss_ends_ms);
    ck_pr_fence_load();
    /* Still the same sale after reading its end: the pair is consistent. */
    return ck_pr_load_64(&s->ss_sale_id) == sale_id && now_ms < ends;
}
