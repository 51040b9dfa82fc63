/*
 * Idempotency-Key: a key binds to the request's fingerprint on the key's
 * own shard (so the same key with another body is refused wherever that
 * body would go), and the home shard that answers keeps the first answer in
 * the same transaction as the change it made.  An entry older than the
 * window (--idempotency-window) is ignored and may be overwritten.
 *
 * Expiry: every entry of idem_keys and idem_answers has an entry in
 * idem_due, (written_ms, tag, user id, key), written and moved in the same
 * transaction as the entry itself.  Big-endian times sort first, so the
 * shard's maintenance walks idem_due from its first entry, oldest first,
 * and stops at the first one still inside the window.  The index holds the
 * time an entry was written, not when it falls due, so a later start with
 * another window applies the new window to old entries too.  The purge
 * re-reads the entry and deletes it only when the entry still carries the
 * index entry's time: an index entry whose entry was rewritten or is gone
 * is only dropped, so a stale index entry can never delete a live binding.
 *
 * Data directories from before idem_due have entries without index
 * entries; the maintenance indexes them once, in bounded steps, with its
 * progress in meta "idem.backfill" ([u8 tag][last key indexed], or the
 * single byte PK__TAG_DONE).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "pickple/codec.h"
#include "pickple/config.h"
#include "pickple/log.h"
#include "pickple/orders.h"

/* Bounds per maintenance call, like order expiry: a long backlog (a restart
 * after days, a lowered window) is worked off in many short transactions. */
#define PK__PURGE_PER_SWEEP 256
#define PK__BACKFILL_PER_SWEEP 256
/* An expired entry is already ignored, so deleting it later changes no
 * answer: under steady keyed traffic a shard wakes for the purge about once
 * a second, deleting a second's worth, instead of on every 100 ms tick. */
#define PK__PURGE_SLACK_MS 1000

/* Which table an idem_due entry points at (its 9th byte); PK__TAG_DONE
 * only marks a finished backfill in meta. */
enum { PK__TAG_KEYS = 0, PK__TAG_ANSWERS = 1, PK__TAG_DONE = 2 };

#define PK__UKEY_BYTES_MAX (8 + PK_IDEM_KEY_BYTES_MAX)  /* (u64 user id, key) */
#define PK__DUE_BYTES_MIN (8 + 1 + 8 + 1)              /* keys are 1..64 bytes */
#define PK__DUE_BYTES_MAX (8 + 1 + PK__UKEY_BYTES_MAX)
#define PK__BACKFILL_META "idem.backfill"

static size_t pk__key(const pk_msg_t *msg, uint8_t *kb)
{
    const pk_msg_order_t *mo = &msg->u.order;
    pk_store_key_u64(msg->m_subject, kb);
    memcpy(kb + 8, mo->mo_key, mo->mo_key_len);
    return 8 + (size_t)mo->mo_key_len;
}

static pk_table_t pk__table_of(unsigned tag)
{
    assert(tag == PK__TAG_KEYS || tag == PK__TAG_ANSWERS);
    return tag == PK__TAG_KEYS ? PK_TBL_IDEM_KEYS : PK_TBL_IDEM_ANSWERS;
}

/* A (user id, key) as stored: 8 bytes of user id and 1..64 bytes of key. */
static bool pk__ukey_ok(const MDB_val *uk)
{
    return uk->mv_size > 8 && uk->mv_size <= PK__UKEY_BYTES_MAX;
}

static int64_t pk__window_ms(pk_store_t *st)
{
    const pk_config_t *cfg = pk_actor_of_store(st)->a_rt->rt_cfg;
    assert(cfg->cf_idempotency_window_s >= 1 && cfg->cf_idempotency_window_s <= PK_IDEM_WINDOW_S_MAX);
    return (int64_t)cfg->cf_idempotency_window_s * 1000;
}

typedef struct pk__answer {
    int64_t an_created_ms;
    uint64_t an_fingerprint;
    int an_status; /* 0: still placing */
    pk_fmt_t an_fmt;
    uint64_t an_order_id;
    const char *an_body; /* into the unpacked object */
    size_t an_body_len;
} pk__answer_t;

/* Decodes a PK_TBL_IDEM_ANSWERS value: [created_ms, fingerprint, status,
 * format, order id (status 0), body (bin)].  Returns 0 with *up to be
 * destroyed by the caller, or PK_ESTORE (nothing to destroy). */
static int pk__answer_decode(const MDB_val *v, msgpack_unpacked *up, pk__answer_t *an)
{
    msgpack_object *f;
    uint64_t status, fmt;
    if (pk_codec_unpack(v->mv_data, v->mv_size, up) != 0)
        return PK_ESTORE;
    if (pk_codec_array(&up->data, 6, &f) != 0 || pk_codec_i64(&f[0], &an->an_created_ms) != 0 ||
        pk_codec_u64(&f[1], UINT64_MAX, &an->an_fingerprint) != 0 || pk_codec_u64(&f[2], 599, &status) != 0 ||
        pk_codec_u64(&f[3], PK_FMT_MSGPACK, &fmt) != 0 || pk_codec_u64(&f[4], PK_ID_MAX, &an->an_order_id) != 0 ||
        f[5].type != MSGPACK_OBJECT_BIN) {
        msgpack_unpacked_destroy(up);
        return PK_ESTORE;
    }
    an->an_status = (int)status;
    an->an_fmt = (pk_fmt_t)fmt;
    an->an_body = f[5].via.bin.ptr;
    an->an_body_len = f[5].via.bin.size;
    return 0;
}

/* The time the entry v of tag's table was written.  Returns 0 or PK_ESTORE. */
static int pk__written_ms(unsigned tag, const MDB_val *v, int64_t *written_ms)
{
    if (tag == PK__TAG_KEYS) {
        /* (u64 written_ms, u64 fingerprint) */
        if (v->mv_size != 16)
            return PK_ESTORE;
        MDB_val t = {8, v->mv_data};
        *written_ms = (int64_t)pk_store_u64_of_key(&t);
        return 0;
    }
    msgpack_unpacked up;
    pk__answer_t an;
    int rc = pk__answer_decode(v, &up, &an);
    if (rc != 0)
        return rc;
    *written_ms = an.an_created_ms;
    msgpack_unpacked_destroy(&up);
    return 0;
}

static size_t pk__due_key(int64_t written_ms, unsigned tag, const MDB_val *uk, uint8_t out[PK__DUE_BYTES_MAX])
{
    assert(written_ms >= 0 && pk__ukey_ok(uk));
    pk_store_key_u64((uint64_t)written_ms, out);
    out[8] = (uint8_t)tag;
    memcpy(out + 9, uk->mv_data, uk->mv_size);
    return 9 + uk->mv_size;
}

/*
 * Indexes the entry uk of tag's table, (re)written at new_ms: drops its
 * index entry of old_ms (the entry's previous write, when had_old) and adds
 * the new one, in the caller's transaction.  Also brings the shard's next
 * maintenance forward to when the entry is to be purged.  Returns 0 or
 * PK_ESTORE.
 */
static int pk__due_move(pk_store_t *st, MDB_txn *txn, unsigned tag, const MDB_val *uk, bool had_old, int64_t old_ms,
                        int64_t new_ms)
{
    uint8_t kb[PK__DUE_BYTES_MAX];
    MDB_val k, empty = {0, NULL};
    int rc;
    if (had_old && old_ms != new_ms && old_ms >= 0) {
        k.mv_size = pk__due_key(old_ms, tag, uk, kb);
        k.mv_data = kb;
        rc = mdb_del(txn, st->st_dbi[PK_TBL_IDEM_DUE], &k, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND) /* missing: written before idem_due */
            goto fail;
    }
    k.mv_size = pk__due_key(new_ms, tag, uk, kb);
    k.mv_data = kb;
    if ((rc = mdb_put(txn, st->st_dbi[PK_TBL_IDEM_DUE], &k, &empty, 0)) != 0)
        goto fail;
    pk_actor_t *a = pk_actor_of_store(st);
    int64_t due_ms = new_ms + pk__window_ms(st) + PK__PURGE_SLACK_MS;
    if (due_ms < a->a_next_due_ms)
        a->a_next_due_ms = due_ms;
    return 0;
fail:
    pk_log_error("shard=%u idem_due: %s", st->st_shard, mdb_strerror(rc));
    return PK_ESTORE;
}

int pk_idem_replay(pk_store_t *st, MDB_txn *txn, pk_msg_t *msg)
{
    pk_msg_order_t *mo = &msg->u.order;
    uint8_t kb[PK__UKEY_BYTES_MAX];
    msgpack_unpacked up;
    pk__answer_t an;
    if (mo->mo_key_len == 0)
        return 0;
    MDB_val k = {pk__key(msg, kb), kb}, v;
    int rc = mdb_get(txn, st->st_dbi[PK_TBL_IDEM_ANSWERS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0 || pk__answer_decode(&v, &up, &an) != 0)
        return PK_ESTORE;
    rc = 0;
    if (an.an_created_ms + pk__window_ms(st) <= msg->m_now_ms)
        goto done; /* expired (the purge has not come by yet): this request starts afresh */
    rc = 1;
    if (an.an_fingerprint != mo->mo_fingerprint) {
        pk_msg_error(msg, 422, "idempotency_key_reused", "this Idempotency-Key was used with a different request");
        goto done;
    }
    if (an.an_status == 0) {
        pk_order_t o;
        int orc = pk_orders_read(st, txn, an.an_order_id, &o);
        if (orc == 0 && o.o_status == PK_ORDER_PLACING) {
            pk_msg_error(msg, 409, "idempotency_in_progress", "the first request with this key is still being placed");
            goto done;
        }
        rc = orc == 0 || orc == PK_ENOTFOUND ? 0 : orc; /* dropped: start afresh */
        goto done;
    }
    msg->m_status = an.an_status;
    msg->m_fmt = an.an_fmt;
    msg->m_body.b_len = 0;
    if (pk_buf_append(&msg->m_body, an.an_body, an.an_body_len) != 0) {
        pk_msg_error(msg, 500, "internal", "cannot copy the stored answer");
    }
done:
    msgpack_unpacked_destroy(&up);
    return rc;
}

int pk_idem_record(pk_store_t *st, MDB_txn *txn, pk_msg_t *msg, int status)
{
    pk_msg_order_t *mo = &msg->u.order;
    uint8_t kb[PK__UKEY_BYTES_MAX];
    pk_buf_t buf = {0}, err = {0};
    msgpack_packer pk;
    pk_codec_rec_t rec;
    int64_t old_ms = -1;
    bool had_old = false;
    int rc;
    if (mo->mo_key_len == 0)
        return 0;
    const pk_buf_t *body = &msg->m_body;
    if (status != 0 && msg->m_err_code != NULL) {
        if (pk_out_error(msg->m_fmt, msg->m_err_code, msg->m_err_message, &err) != 0)
            return PK_ESTORE;
        body = &err;
    }
    MDB_val k = {pk__key(msg, kb), kb}, v;
    /* A previous answer (a "placing" one, or one past the window) has an
     * index entry at its own time, which this write replaces. */
    rc = mdb_get(txn, st->st_dbi[PK_TBL_IDEM_ANSWERS], &k, &v);
    if (rc == 0 && (rc = pk__written_ms(PK__TAG_ANSWERS, &v, &old_ms)) != 0)
        goto fail;
    if (rc != 0 && rc != MDB_NOTFOUND)
        goto fail;
    had_old = rc == 0;
    pk_codec_rec_begin(&rec, &pk, &buf);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_int64(&pk, msg->m_now_ms);
    msgpack_pack_uint64(&pk, mo->mo_fingerprint);
    msgpack_pack_uint64(&pk, (uint64_t)status);
    msgpack_pack_uint64(&pk, (uint64_t)msg->m_fmt);
    msgpack_pack_uint64(&pk, status == 0 ? mo->mo_id : 0);
    msgpack_pack_bin(&pk, status == 0 ? 0 : body->b_len);
    if (status != 0)
        msgpack_pack_bin_body(&pk, body->b_data, body->b_len);
    if ((rc = pk_codec_rec_end(&rec)) != 0)
        goto fail;
    v.mv_size = buf.b_len;
    v.mv_data = buf.b_data;
    if (mdb_put(txn, st->st_dbi[PK_TBL_IDEM_ANSWERS], &k, &v, 0) != 0 ||
        (rc = pk__due_move(st, txn, PK__TAG_ANSWERS, &k, had_old, old_ms, msg->m_now_ms)) != 0)
        goto fail;
    pk_buf_free(&buf);
    pk_buf_free(&err);
    return 0;
fail:
    pk_buf_free(&buf);
    pk_buf_free(&err);
    return PK_ESTORE;
}

/* On the key's shard: binds (user, key) to the request's fingerprint. */
static int pk__bind_apply(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg)
{
    pk_store_t *st = &a->a_store;
    pk_msg_order_t *mo = &msg->u.order;
    uint8_t kb[PK__UKEY_BYTES_MAX], vb[16];
    int64_t old_ms = -1;
    MDB_val k = {pk__key(msg, kb), kb}, v;
    int rc = mdb_get(txn, st->st_dbi[PK_TBL_IDEM_KEYS], &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return PK_ESTORE;
    bool had_old = rc == 0;
    if (had_old) {
        if (pk__written_ms(PK__TAG_KEYS, &v, &old_ms) != 0)
            return PK_ESTORE;
        MDB_val fp = {8, (uint8_t *)v.mv_data + 8};
        if (old_ms + pk__window_ms(st) > msg->m_now_ms) {
            if (pk_store_u64_of_key(&fp) != mo->mo_fingerprint)
                pk_msg_error(msg, 422, "idempotency_key_reused",
                             "this Idempotency-Key was used with a different request");
            else
                msg->m_status = 200;
            return 0;
        }
    }
    pk_store_key_u64((uint64_t)msg->m_now_ms, vb);
    pk_store_key_u64(mo->mo_fingerprint, vb + 8);
    v.mv_size = 16;
    v.mv_data = vb;
    if (mdb_put(txn, st->st_dbi[PK_TBL_IDEM_KEYS], &k, &v, 0) != 0 ||
        pk__due_move(st, txn, PK__TAG_KEYS, &k, had_old, old_ms, msg->m_now_ms) != 0)
        return PK_ESTORE;
    msg->m_status = 200;
    return 0;
}

/* ---- maintenance ---- */

/*
 * Indexes up to PK__BACKFILL_PER_SWEEP entries that may lack an index entry
 * (written before idem_due existed), resuming after the last one indexed.
 * *more: entries remain.  Once both tables were walked, the marker makes
 * this one lookup per call.  Returns 0 or PK_ESTORE.
 */
static int pk__backfill(pk_store_t *st, MDB_txn *txn, bool *more)
{
    const char *name = PK__BACKFILL_META;
    MDB_val mk = {strlen(name), (void *)name}, mv, k, v;
    uint8_t last[1 + PK__UKEY_BYTES_MAX]; /* progress: [tag][last key indexed] */
    size_t last_len = 0;
    unsigned tag = PK__TAG_KEYS, done = 0;
    MDB_cursor *cur = NULL;
    *more = false;
    int rc = mdb_get(txn, st->st_dbi[PK_TBL_META], &mk, &mv);
    if (rc == 0) {
        const uint8_t *p = mv.mv_data;
        if (mv.mv_size == 1 && p[0] == PK__TAG_DONE)
            return 0;
        if (mv.mv_size < 1 || mv.mv_size > sizeof(last) || p[0] > PK__TAG_ANSWERS)
            goto corrupt;
        tag = p[0];
        last_len = mv.mv_size - 1;
        memcpy(last + 1, p + 1, last_len);
    } else if (rc != MDB_NOTFOUND) {
        goto fail;
    }
    if ((rc = mdb_cursor_open(txn, st->st_dbi[pk__table_of(tag)], &cur)) != 0)
        goto fail;
    if (last_len == 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    } else {
        /* Resume at the first key after the last one indexed. */
        k.mv_size = last_len;
        k.mv_data = last + 1;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == 0 && k.mv_size == last_len && memcmp(k.mv_data, last + 1, last_len) == 0)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    /* Bounded: at most PK__BACKFILL_PER_SWEEP entries, plus one switch of table. */
    while (done < PK__BACKFILL_PER_SWEEP) {
        if (rc == MDB_NOTFOUND && tag == PK__TAG_KEYS) {
            mdb_cursor_close(cur);
            cur = NULL;
            tag = PK__TAG_ANSWERS;
            last_len = 0;
            if ((rc = mdb_cursor_open(txn, st->st_dbi[PK_TBL_IDEM_ANSWERS], &cur)) != 0)
                goto fail;
            rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
            continue;
        }
        if (rc == MDB_NOTFOUND) {
            tag = PK__TAG_DONE;
            last_len = 0;
            break;
        }
        if (rc != 0)
            goto fail;
        int64_t written_ms;
        if (!pk__ukey_ok(&k) || pk__written_ms(tag, &v, &written_ms) != 0 || written_ms < 0)
            goto corrupt;
        /* Copied before any write: k points into the map. */
        memcpy(last + 1, k.mv_data, k.mv_size);
        last_len = k.mv_size;
        MDB_val uk = {last_len, last + 1};
        if ((rc = pk__due_move(st, txn, tag, &uk, false, -1, written_ms)) != 0)
            goto out;
        done++;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    cur = NULL;
    last[0] = (uint8_t)tag;
    mv.mv_size = 1 + last_len;
    mv.mv_data = last;
    if ((rc = mdb_put(txn, st->st_dbi[PK_TBL_META], &mk, &mv, 0)) != 0)
        goto fail;
    *more = tag != PK__TAG_DONE;
    if (done > 0)
        pk_log_info("shard=%u indexed %u idempotency entries written before idem_due", st->st_shard, done);
    return 0;
corrupt:
    pk_log_error("shard=%u idempotency backfill: corrupt record", st->st_shard);
    rc = PK_ESTORE;
    goto out;
fail:
    pk_log_error("shard=%u idempotency backfill: %s", st->st_shard, mdb_strerror(rc));
    rc = PK_ESTORE;
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    return rc;
}

int pk_idem_maintain(pk_actor_t *a, MDB_txn *txn, int64_t now_ms, int64_t *next_due_ms)
{
    pk_store_t *st = &a->a_store;
    int64_t window_ms = pk__window_ms(st);
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    unsigned purged = 0, handled = 0;
    bool more;
    *next_due_ms = INT64_MAX;
    int rc = pk__backfill(st, txn, &more);
    if (rc != 0)
        return rc;
    if (more)
        *next_due_ms = now_ms; /* the rest of the backfill: next tick */
    if ((rc = mdb_cursor_open(txn, st->st_dbi[PK_TBL_IDEM_DUE], &cur)) != 0)
        goto fail;
    /* Each step deletes the index entry it handled, so the first is the next. */
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
        uint8_t kb[PK__DUE_BYTES_MAX];
        if (k.mv_size < PK__DUE_BYTES_MIN || k.mv_size > PK__DUE_BYTES_MAX ||
            ((const uint8_t *)k.mv_data)[8] > PK__TAG_ANSWERS) {
            pk_log_error("shard=%u idem_due: corrupt key", st->st_shard);
            rc = PK_ESTORE;
            goto out;
        }
        MDB_val t = {8, k.mv_data};
        int64_t written_ms = (int64_t)pk_store_u64_of_key(&t);
        if (written_ms > now_ms - window_ms || handled == PK__PURGE_PER_SWEEP) {
            int64_t due = handled == PK__PURGE_PER_SWEEP ? now_ms : written_ms + window_ms + PK__PURGE_SLACK_MS;
            if (due < *next_due_ms)
                *next_due_ms = due;
            break;
        }
        /* Copied before any write: k points into the map. */
        memcpy(kb, k.mv_data, k.mv_size);
        unsigned tag = kb[8];
        MDB_val uk = {k.mv_size - 9, kb + 9}, ev;
        int64_t entry_ms;
        rc = mdb_get(txn, st->st_dbi[pk__table_of(tag)], &uk, &ev);
        if (rc != 0 && rc != MDB_NOTFOUND)
            goto fail;
        if (rc == 0) {
            if (pk__written_ms(tag, &ev, &entry_ms) != 0) {
                pk_log_error("shard=%u idempotency entry: corrupt record", st->st_shard);
                rc = PK_ESTORE;
                goto out;
            }
            /* Only the index entry of the entry's current write may delete
             * it; an older one is stale (the entry was rewritten).  Replay
             * and bind already ignore an entry this old, so deleting it
             * changes no answer. */
            if (entry_ms == written_ms) {
                if ((rc = mdb_del(txn, st->st_dbi[pk__table_of(tag)], &uk, NULL)) != 0)
                    goto fail;
                purged++;
            }
        }
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            goto fail;
        handled++;
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        goto fail;
    rc = 0;
    if (purged > 0)
        pk_log_info("shard=%u purged %u idempotency entries past the window", st->st_shard, purged);
    goto out;
fail:
    pk_log_error("shard=%u idempotency purge: %s", st->st_shard, mdb_strerror(rc));
    rc = PK_ESTORE;
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    return rc;
}

const pk_op_t pk_op_idem_bind = {"idempotency.bind", false, pk__bind_apply};
