/*
 * Idempotency-Key: a key binds to the request's fingerprint on the key's
 * own shard (so the same key with another body is refused wherever that
 * body would go), and the home shard that answers keeps the first answer in
 * the same transaction as the change it made.  Entries older than 24 hours
 * are ignored and overwritten.
 */
#include <stdlib.h>
#include <string.h>

#include "pickple/codec.h"
#include "pickple/log.h"
#include "pickple/orders.h"

static size_t pk__key(const pk_msg_t *msg, uint8_t *kb)
{
    const pk_msg_order_t *mo = &msg->u.order;
    pk_store_key_u64(msg->m_subject, kb);
    memcpy(kb + 8, mo->mo_key, mo->mo_key_len);
    return 8 + (size_t)mo->mo_key_len;
}

typedef struct pk__answer {
    int64_t an_created_ms;
    uint64_t an_fingerprint;
    int an_status; /* 0: still placing */
    pk_fmt_t an_fmt;
    uint64_t an_order_id;
    const char *an_body;
    size_t an_body_len;
} pk__answer_t;

int pk_idem_replay(pk_store_t *st, MDB_txn *txn, pk_msg_t *msg)
{
    pk_msg_order_t *mo = &msg->u.order;
    uint8_t kb[8 + PK_IDEM_KEY_BYTES_MAX];
    msgpack_unpacked up;
    msgpack_object *f;
    uint64_t status, fmt, fp, order_id;
    int64_t created;
    if (mo->mo_key_len == 0)
        return 0;
    MDB_val k = {pk__key(msg, kb), kb}, v;
    int rc = mdb_get(txn, st->st_dbi[PK_TBL_IDEM_ANSWERS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0 || pk_codec_unpack(v.mv_data, v.mv_size, &up) != 0)
        return PK_ESTORE;
    rc = PK_ESTORE;
    if (pk_codec_array(&up.data, 6, &f) != 0 || pk_codec_i64(&f[0], &created) != 0 ||
        pk_codec_u64(&f[1], UINT64_MAX, &fp) != 0 || pk_codec_u64(&f[2], 599, &status) != 0 ||
        pk_codec_u64(&f[3], PK_FMT_MSGPACK, &fmt) != 0 || pk_codec_u64(&f[4], PK_ID_MAX, &order_id) != 0 ||
        f[5].type != MSGPACK_OBJECT_BIN)
        goto done;
    rc = 0;
    if (created + PK_IDEM_TTL_MS <= msg->m_now_ms)
        goto done; /* expired: this request starts afresh */
    rc = 1;
    if (fp != mo->mo_fingerprint) {
        pk_msg_error(msg, 422, "idempotency_key_reused", "this Idempotency-Key was used with a different request");
        goto done;
    }
    if (status == 0) {
        pk_order_t o;
        int orc = pk_orders_read(st, txn, order_id, &o);
        if (orc == 0 && o.o_status == PK_ORDER_PLACING) {
            pk_msg_error(msg, 409, "idempotency_in_progress", "the first request with this key is still being placed");
            goto done;
        }
        rc = orc == 0 || orc == PK_ENOTFOUND ? 0 : orc; /* dropped: start afresh */
        goto done;
    }
    msg->m_status = (int)status;
    msg->m_fmt = (pk_fmt_t)fmt;
    msg->m_body.b_len = 0;
    if (pk_buf_append(&msg->m_body, f[5].via.bin.ptr, f[5].via.bin.size) != 0) {
        pk_msg_error(msg, 500, "internal", "cannot copy the stored answer");
    }
done:
    msgpack_unpacked_destroy(&up);
    return rc;
}

int pk_idem_record(pk_store_t *st, MDB_txn *txn, pk_msg_t *msg, int status)
{
    pk_msg_order_t *mo = &msg->u.order;
    uint8_t kb[8 + PK_IDEM_KEY_BYTES_MAX];
    pk_buf_t buf = {0}, err = {0};
    msgpack_packer pk;
    pk_codec_rec_t rec;
    if (mo->mo_key_len == 0)
        return 0;
    const pk_buf_t *body = &msg->m_body;
    if (status != 0 && msg->m_err_code != NULL) {
        if (pk_out_error(msg->m_fmt, msg->m_err_code, msg->m_err_message, &err) != 0)
            return PK_ESTORE;
        body = &err;
    }
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
    int rc = pk_codec_rec_end(&rec);
    MDB_val k = {pk__key(msg, kb), kb}, v = {buf.b_len, buf.b_data};
    if (rc == 0 && mdb_put(txn, st->st_dbi[PK_TBL_IDEM_ANSWERS], &k, &v, 0) != 0)
        rc = -1;
    pk_buf_free(&buf);
    pk_buf_free(&err);
    return rc == 0 ? 0 : PK_ESTORE;
}

/* On the key's shard: binds (user, key) to the request's fingerprint. */
static int pk__bind_apply(pk_actor_t *a, MDB_txn *txn, pk_msg_t *msg)
{
    pk_store_t *st = &a->a_store;
    pk_msg_order_t *mo = &msg->u.order;
    uint8_t kb[8 + PK_IDEM_KEY_BYTES_MAX], vb[16];
    MDB_val k = {pk__key(msg, kb), kb}, v;
    int rc = mdb_get(txn, st->st_dbi[PK_TBL_IDEM_KEYS], &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return PK_ESTORE;
    if (rc == 0) {
        if (v.mv_size != 16)
            return PK_ESTORE;
        MDB_val t = {8, v.mv_data}, fp = {8, (uint8_t *)v.mv_data + 8};
        int64_t created = (int64_t)pk_store_u64_of_key(&t);
        if (created + PK_IDEM_TTL_MS > msg->m_now_ms) {
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
    if (mdb_put(txn, st->st_dbi[PK_TBL_IDEM_KEYS], &k, &v, 0) != 0)
        return PK_ESTORE;
    msg->m_status = 200;
    return 0;
}

const pk_op_t pk_op_idem_bind = {"idempotency.bind", false, pk__bind_apply};
