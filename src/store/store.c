/* LMDB environments, one per shard; id sequences; the outbox. */
#include <assert.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pickple/codec.h"
#include "pickple/log.h"
#include "pickple/store.h"

static const char *const pk__table_names[PK_TBL_COUNT] = {
    "meta",         "users",      "usernames",  "outbox",        "products",     "sales",
    "sale_ends",    "orders",     "order_due",  "user_orders",   "sale_users",   "reservations",
    "releases",     "deliveries", "notifications", "user_notifs", "idem_keys",   "idem_answers",
    "idem_due",     "user_last",
};
static const char *const pk__seq_keys[PK_SEQ_COUNT] = {
    "seq.user", "seq.product", "seq.sale", "seq.order", "seq.payment", "seq.delivery", "seq.notification",
};

static int pk__mkdir(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

int pk_data_dir_init(const char *data_dir, unsigned *nshards, char *err, size_t err_size)
{
    char path[PATH_MAX + 32], text[128];
    int rc = pk__mkdir(data_dir);
    if (rc != 0) {
        snprintf(err, err_size, "cannot create data directory %s: %s", data_dir, strerror(-rc));
        return rc;
    }
    snprintf(path, sizeof(path), "%s/FORMAT", data_dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno != ENOENT) {
            snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
            return -errno;
        }
        /* First use: write FORMAT through a temporary file and rename, so a
         * crash never leaves a half-written one. */
        char tmp[PATH_MAX + 48];
        snprintf(tmp, sizeof(tmp), "%s/FORMAT.tmp", data_dir);
        int fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0)
            goto write_fail;
        int n = snprintf(text, sizeof(text), "pickple-data-format %d\nshards %u\n", PK_DATA_FORMAT, *nshards);
        if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
            close(fd);
            goto write_fail;
        }
        close(fd);
        if (rename(tmp, path) != 0)
            goto write_fail;
        return 0;
    write_fail:
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
        return -errno;
    }
    int format = -1;
    unsigned shards = 0;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    if (sscanf(text, "pickple-data-format %d\nshards %u", &format, &shards) != 2 || shards == 0 || shards > 64) {
        snprintf(err, err_size, "%s is not a pickple data directory (unreadable FORMAT file)", data_dir);
        return PK_EFORMAT;
    }
    if (format != PK_DATA_FORMAT) {
        snprintf(err, err_size,
                 "data directory %s has format %d; this pickple %s reads format %d only and will not "
                 "reinterpret it",
                 data_dir, format, PK_VERSION, PK_DATA_FORMAT);
        return PK_EVERSION;
    }
    *nshards = shards;
    return 0;
}

void pk_store_key_u64(uint64_t v, uint8_t out[8])
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

uint64_t pk_store_u64_of_key(const MDB_val *key)
{
    const uint8_t *p = key->mv_data;
    uint64_t v = 0;
    assert(key->mv_size == 8);
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

int pk_store_meta_get_u64(pk_store_t *st, MDB_txn *txn, const char *name, uint64_t *out)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = mdb_get(txn, st->st_dbi[PK_TBL_META], &k, &v);
    if (rc == MDB_NOTFOUND)
        return PK_ENOTFOUND;
    if (rc != 0 || v.mv_size != 8)
        return PK_ESTORE;
    *out = pk_store_u64_of_key(&v);
    return 0;
}

int pk_store_meta_put_u64(pk_store_t *st, MDB_txn *txn, const char *name, uint64_t value)
{
    uint8_t buf[8];
    pk_store_key_u64(value, buf);
    MDB_val k = {strlen(name), (void *)name}, v = {8, buf};
    return mdb_put(txn, st->st_dbi[PK_TBL_META], &k, &v, 0) == 0 ? 0 : PK_ESTORE;
}

/* Loads the counters from what is committed. */
static int pk__load_counters(pk_store_t *st, MDB_txn *txn)
{
    for (int i = 0; i < PK_SEQ_COUNT; i++) {
        int rc = pk_store_meta_get_u64(st, txn, pk__seq_keys[i], &st->st_seq[i]);
        if (rc == PK_ENOTFOUND)
            st->st_seq[i] = 0;
        else if (rc != 0)
            return rc;
    }
    MDB_cursor *cur;
    MDB_val k, v;
    if (mdb_cursor_open(txn, st->st_dbi[PK_TBL_OUTBOX], &cur) != 0)
        return PK_ESTORE;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0) {
        st->st_outbox_next = pk_store_u64_of_key(&k) + 1;
    } else if (rc == MDB_NOTFOUND) {
        /* An empty outbox after trimming must not reuse event ids. */
        uint64_t next = 1;
        int mrc = pk_store_meta_get_u64(st, txn, "outbox.next", &next);
        if (mrc != 0 && mrc != PK_ENOTFOUND) {
            mdb_cursor_close(cur);
            return mrc;
        }
        st->st_outbox_next = next;
    } else {
        mdb_cursor_close(cur);
        return PK_ESTORE;
    }
    mdb_cursor_close(cur);
    st->st_seq_dirty = false;
    return 0;
}

int pk_store_open(pk_store_t *st, const char *data_dir, unsigned shard, unsigned nshards, bool sync_full,
                  size_t map_bytes)
{
    char path[PATH_MAX + 32];
    MDB_txn *txn = NULL;
    int rc;
    memset(st, 0, sizeof(*st));
    st->st_shard = shard;
    st->st_nshards = nshards;
    snprintf(path, sizeof(path), "%s/shard-%02u", data_dir, shard);
    if ((rc = pk__mkdir(path)) != 0) {
        pk_log_error("shard=%u cannot create %s: %s", shard, path, strerror(-rc));
        return PK_ESTORE;
    }
    if ((rc = mdb_env_create(&st->st_env)) != 0)
        goto fail_lmdb;
    if ((rc = mdb_env_set_maxdbs(st->st_env, PK_TBL_COUNT + 8)) != 0 ||
        (rc = mdb_env_set_mapsize(st->st_env, map_bytes)) != 0)
        goto fail_lmdb;
    /* MDB_NOTLS: read transactions are not tied to OS threads' TLS slots;
     * every transaction still stays on the owning actor thread. */
    unsigned flags = MDB_NOTLS | (sync_full ? 0 : MDB_NOSYNC);
    if ((rc = mdb_env_open(st->st_env, path, flags, 0600)) != 0)
        goto fail_lmdb;
    if ((rc = mdb_txn_begin(st->st_env, NULL, 0, &txn)) != 0)
        goto fail_lmdb;
    for (int i = 0; i < PK_TBL_COUNT; i++) {
        if ((rc = mdb_dbi_open(txn, pk__table_names[i], MDB_CREATE, &st->st_dbi[i])) != 0)
            goto fail_lmdb;
    }
    uint64_t format;
    rc = pk_store_meta_get_u64(st, txn, "format", &format);
    if (rc == PK_ENOTFOUND) {
        if ((rc = pk_store_meta_put_u64(st, txn, "format", PK_DATA_FORMAT)) != 0)
            goto fail;
    } else if (rc != 0) {
        goto fail;
    } else if (format != PK_DATA_FORMAT) {
        pk_log_error("shard=%u %s has format %llu; this build reads format %d only", shard, path,
                     (unsigned long long)format, PK_DATA_FORMAT);
        rc = PK_EVERSION;
        goto fail;
    }
    if ((rc = pk__load_counters(st, txn)) != 0)
        goto fail;
    if ((rc = mdb_txn_commit(txn)) != 0) {
        txn = NULL;
        goto fail_lmdb;
    }
    return 0;

fail_lmdb:
    pk_log_error("shard=%u cannot open %s: %s", shard, path, mdb_strerror(rc));
    rc = PK_ESTORE;
fail:
    if (txn != NULL)
        mdb_txn_abort(txn);
    if (st->st_env != NULL)
        mdb_env_close(st->st_env);
    st->st_env = NULL;
    return rc;
}

void pk_store_close(pk_store_t *st)
{
    if (st->st_env != NULL)
        mdb_env_close(st->st_env);
    st->st_env = NULL;
}

int pk_store_begin(pk_store_t *st, bool readonly, MDB_txn **txn)
{
    int rc = mdb_txn_begin(st->st_env, NULL, readonly ? MDB_RDONLY : 0, txn);
    if (rc != 0) {
        pk_log_error("shard=%u mdb_txn_begin: %s", st->st_shard, mdb_strerror(rc));
        return PK_ESTORE;
    }
    return 0;
}

int pk_store_commit_prepare(pk_store_t *st, MDB_txn *txn)
{
    int rc = pk_store_sales_flush(st, txn);
    if (rc != 0 || !st->st_seq_dirty)
        return rc;
    for (int i = 0; i < PK_SEQ_COUNT; i++) {
        if ((rc = pk_store_meta_put_u64(st, txn, pk__seq_keys[i], st->st_seq[i])) != 0)
            return rc;
    }
    return pk_store_meta_put_u64(st, txn, "outbox.next", st->st_outbox_next);
}

int pk_store_commit_txn(const pk_store_t *st, MDB_txn *txn)
{
    int rc = mdb_txn_commit(txn);
    if (rc != 0) {
        pk_log_error("shard=%u commit failed: %s", st->st_shard, mdb_strerror(rc));
        return PK_ESTORE;
    }
    return 0;
}

void pk_store_committed(pk_store_t *st, int rc)
{
    if (rc == 0)
        st->st_seq_dirty = false;
    else
        pk_store_abort(st, NULL);
}

int pk_store_commit(pk_store_t *st, MDB_txn *txn)
{
    int rc = pk_store_commit_prepare(st, txn);
    if (rc != 0) {
        pk_store_abort(st, txn);
        return rc;
    }
    rc = pk_store_commit_txn(st, txn);
    pk_store_committed(st, rc);
    return rc;
}

void pk_store_abort(pk_store_t *st, MDB_txn *txn)
{
    MDB_txn *rtxn;
    if (txn != NULL)
        mdb_txn_abort(txn);
    pk_store_sales_drop(st);
    if (!st->st_seq_dirty)
        return;
    /* Counters advanced by the aborted transaction go back to the stored
     * values so ids are never skipped-then-reused inconsistently. */
    if (mdb_txn_begin(st->st_env, NULL, MDB_RDONLY, &rtxn) == 0) {
        if (pk__load_counters(st, rtxn) != 0)
            pk_log_error("shard=%u cannot reload counters after abort", st->st_shard);
        mdb_txn_abort(rtxn);
    }
}

uint64_t pk_store_next_id(pk_store_t *st, pk_seq_t kind)
{
    assert(kind < PK_SEQ_COUNT);
    uint64_t seq = ++st->st_seq[kind];
    st->st_seq_dirty = true;
    uint64_t id = seq * st->st_nshards + st->st_shard;
    assert(id <= PK_ID_MAX);
    return id;
}

int pk_store_get_id(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t id, MDB_val *val)
{
    uint8_t kb[8];
    pk_store_key_u64(id, kb);
    MDB_val k = {8, kb};
    int rc = mdb_get(txn, st->st_dbi[tbl], &k, val);
    if (rc == MDB_NOTFOUND)
        return PK_ENOTFOUND;
    return rc == 0 ? 0 : PK_ESTORE;
}

static int pk__put_id(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t id, const void *data, size_t len,
                      unsigned flags)
{
    uint8_t kb[8];
    pk_store_key_u64(id, kb);
    MDB_val k = {8, kb}, v = {len, (void *)data};
    int rc = mdb_put(txn, st->st_dbi[tbl], &k, &v, flags);
    /* Refused before anything changed: the key is not the greatest. */
    if (rc == MDB_KEYEXIST && (flags & MDB_APPEND))
        rc = mdb_put(txn, st->st_dbi[tbl], &k, &v, 0);
    if (rc != 0) {
        pk_log_error("shard=%u put %s: %s", st->st_shard, pk__table_names[tbl], mdb_strerror(rc));
        return PK_ESTORE;
    }
    return 0;
}

int pk_store_put_id(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t id, const void *data, size_t len)
{
    return pk__put_id(st, txn, tbl, id, data, len, 0);
}

int pk_store_append_id(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t id, const void *data, size_t len)
{
    return pk__put_id(st, txn, tbl, id, data, len, MDB_APPEND);
}

void pk_store_key_pair(uint64_t hi, uint64_t lo, uint8_t out[16])
{
    pk_store_key_u64(hi, out);
    pk_store_key_u64(lo, out + 8);
}

static int pk__put_pair(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t hi, uint64_t lo, const void *data,
                        size_t len, unsigned flags)
{
    uint8_t kb[16];
    pk_store_key_pair(hi, lo, kb);
    MDB_val k = {16, kb}, v = {len, (void *)data};
    int rc = mdb_put(txn, st->st_dbi[tbl], &k, &v, flags);
    if (rc == MDB_KEYEXIST && (flags & MDB_APPEND))
        rc = mdb_put(txn, st->st_dbi[tbl], &k, &v, 0);
    if (rc != 0) {
        pk_log_error("shard=%u put %s: %s", st->st_shard, pk__table_names[tbl], mdb_strerror(rc));
        return PK_ESTORE;
    }
    return 0;
}

int pk_store_put_pair(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t hi, uint64_t lo, const void *data,
                      size_t len)
{
    return pk__put_pair(st, txn, tbl, hi, lo, data, len, 0);
}

int pk_store_append_pair(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t hi, uint64_t lo, const void *data,
                         size_t len)
{
    return pk__put_pair(st, txn, tbl, hi, lo, data, len, MDB_APPEND);
}

int pk_store_get_pair(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t hi, uint64_t lo, MDB_val *val)
{
    uint8_t kb[16];
    pk_store_key_pair(hi, lo, kb);
    MDB_val k = {16, kb};
    int rc = mdb_get(txn, st->st_dbi[tbl], &k, val);
    if (rc == MDB_NOTFOUND)
        return PK_ENOTFOUND;
    return rc == 0 ? 0 : PK_ESTORE;
}

static int pk__del(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, MDB_val *k)
{
    int rc = mdb_del(txn, st->st_dbi[tbl], k, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        pk_log_error("shard=%u del %s: %s", st->st_shard, pk__table_names[tbl], mdb_strerror(rc));
        return PK_ESTORE;
    }
    return 0;
}

int pk_store_del_pair(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t hi, uint64_t lo)
{
    uint8_t kb[16];
    pk_store_key_pair(hi, lo, kb);
    MDB_val k = {16, kb};
    return pk__del(st, txn, tbl, &k);
}

int pk_store_del_id(pk_store_t *st, MDB_txn *txn, pk_table_t tbl, uint64_t id)
{
    uint8_t kb[8];
    pk_store_key_u64(id, kb);
    MDB_val k = {8, kb};
    return pk__del(st, txn, tbl, &k);
}

static uint8_t *pk__be_u32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *pk__mp_u64(uint8_t *p, uint64_t v)
{
    *p++ = 0xcf;
    pk_store_key_u64(v, p);
    return p + 8;
}

int pk_store_outbox_append(pk_store_t *st, MDB_txn *txn, const char *type, uint64_t key_id, int64_t now_ms,
                           pk_event_body_t kind, const void *body, size_t body_len)
{
    /* Record, written by hand in fixed widths (read by pk_store_outbox_decode):
     * [2 (schema), type, key id, occurred_at ms, kind, body]; the body is a
     * str for PK_EVENT_JSON, a bin (an order record) for the others. */
    uint8_t hdr[64], *p = hdr;
    size_t type_len = strlen(type);
    uint64_t seq = st->st_outbox_next;
    assert(type_len < 32 && kind < PK_EVENT_BODY_COUNT && now_ms >= 0);
    if (body_len > UINT32_MAX)
        return PK_ESTORE;
    *p++ = 0x96;
    *p++ = 0x02;
    *p++ = (uint8_t)(0xa0 | type_len);
    memcpy(p, type, type_len);
    p = pk__mp_u64(p + type_len, key_id);
    p = pk__mp_u64(p, (uint64_t)now_ms);
    *p++ = (uint8_t)kind;
    *p++ = kind == PK_EVENT_JSON ? 0xdb : 0xc6;
    p = pk__be_u32(p, (uint32_t)body_len);
    size_t hdr_len = (size_t)(p - hdr);
    uint8_t kb[8];
    pk_store_key_u64(seq, kb);
    MDB_val k = {8, kb}, v = {hdr_len + body_len, NULL};
    /* Reserved in place: the record is copied once, into its page. */
    int rc = mdb_put(txn, st->st_dbi[PK_TBL_OUTBOX], &k, &v, MDB_APPEND | MDB_RESERVE);
    if (rc != 0) {
        pk_log_error("shard=%u put outbox: %s", st->st_shard, mdb_strerror(rc));
        return PK_ESTORE;
    }
    memcpy(v.mv_data, hdr, hdr_len);
    memcpy((uint8_t *)v.mv_data + hdr_len, body, body_len);
    st->st_outbox_next = seq + 1;
    st->st_seq_dirty = true;
    return 0;
}

/* Reads a MessagePack str header at *p (fixstr, str8, str16, str32). */
static int pk__mp_str(const uint8_t **p, const uint8_t *end, const char **s, size_t *len)
{
    const uint8_t *q = *p;
    size_t n, hdr;
    if (q >= end)
        return PK_EFORMAT;
    if ((*q & 0xe0) == 0xa0) {
        n = *q & 0x1f;
        hdr = 1;
    } else if (*q == 0xd9 && end - q >= 2) {
        n = q[1];
        hdr = 2;
    } else if (*q == 0xda && end - q >= 3) {
        n = (size_t)q[1] << 8 | q[2];
        hdr = 3;
    } else if (*q == 0xdb && end - q >= 5) {
        n = (size_t)q[1] << 24 | (size_t)q[2] << 16 | (size_t)q[3] << 8 | q[4];
        hdr = 5;
    } else {
        return PK_EFORMAT;
    }
    if ((size_t)(end - q) - hdr < n)
        return PK_EFORMAT;
    *s = (const char *)q + hdr;
    *len = n;
    *p = q + hdr + n;
    return 0;
}

/* Reads a MessagePack unsigned integer at *p (positive fixint, uint8..64). */
static int pk__mp_uint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    const uint8_t *q = *p;
    size_t n;
    if (q >= end)
        return PK_EFORMAT;
    if (*q <= 0x7f) {
        *v = *q;
        *p = q + 1;
        return 0;
    }
    switch (*q) {
    case 0xcc: n = 1; break;
    case 0xcd: n = 2; break;
    case 0xce: n = 4; break;
    case 0xcf: n = 8; break;
    default: return PK_EFORMAT;
    }
    if ((size_t)(end - q) < n + 1)
        return PK_EFORMAT;
    *v = 0;
    for (size_t i = 1; i <= n; i++)
        *v = *v << 8 | q[i];
    *p = q + n + 1;
    return 0;
}

/* Reads a MessagePack bin header at *p (bin8, bin16, bin32). */
static int pk__mp_bin(const uint8_t **p, const uint8_t *end, const char **s, size_t *len)
{
    const uint8_t *q = *p;
    size_t n = 0, hdr;
    if (q >= end || *q < 0xc4 || *q > 0xc6)
        return PK_EFORMAT;
    hdr = 1 + ((size_t)1 << (*q - 0xc4));
    if ((size_t)(end - q) < hdr)
        return PK_EFORMAT;
    for (size_t i = 1; i < hdr; i++)
        n = n << 8 | q[i];
    if ((size_t)(end - q) - hdr < n)
        return PK_EFORMAT;
    *s = (const char *)q + hdr;
    *len = n;
    *p = q + hdr + n;
    return 0;
}

int pk_store_outbox_decode(const MDB_val *rec, pk_outbox_event_t *ev)
{
    /* Decoded by hand because the publisher reads every event.  Schema 1
     * (written before 2026-11-24): [1, type, key id, the whole value JSON].
     * Schema 2: see pk_store_outbox_append. */
    const uint8_t *p = rec->mv_data, *end = p + rec->mv_size;
    uint64_t schema, occurred, kind;
    memset(ev, 0, sizeof(*ev));
    if (rec->mv_size < 2 || (p[0] != 0x94 && p[0] != 0x96))
        return PK_EFORMAT;
    uint64_t want = *p++ == 0x94 ? 1 : 2; /* the array's length names the schema */
    if (pk__mp_uint(&p, end, &schema) != 0 || schema != want ||
        pk__mp_str(&p, end, &ev->oe_type, &ev->oe_type_len) != 0 || pk__mp_uint(&p, end, &ev->oe_key_id) != 0)
        return PK_EFORMAT;
    ev->oe_schema = (unsigned)schema;
    if (schema == 1) {
        ev->oe_body_kind = PK_EVENT_JSON;
        if (pk__mp_str(&p, end, &ev->oe_body, &ev->oe_body_len) != 0)
            return PK_EFORMAT;
    } else {
        if (pk__mp_uint(&p, end, &occurred) != 0 || occurred > INT64_MAX || pk__mp_uint(&p, end, &kind) != 0 ||
            kind >= PK_EVENT_BODY_COUNT)
            return PK_EFORMAT;
        ev->oe_occurred_ms = (int64_t)occurred;
        ev->oe_body_kind = (pk_event_body_t)kind;
        if ((kind == PK_EVENT_JSON ? pk__mp_str : pk__mp_bin)(&p, end, &ev->oe_body, &ev->oe_body_len) != 0)
            return PK_EFORMAT;
    }
    return p == end ? 0 : PK_EFORMAT;
}

int pk_store_outbox_cursor(pk_store_t *st, MDB_txn *txn, uint64_t *acked)
{
    int rc = pk_store_meta_get_u64(st, txn, "outbox.acked", acked);
    if (rc == PK_ENOTFOUND) {
        *acked = 0;
        return 0;
    }
    return rc;
}

int pk_store_outbox_trim(pk_store_t *st, MDB_txn *txn, uint64_t acked, unsigned rows_max, uint64_t *first_left,
                         bool *more)
{
    uint64_t cursor;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    unsigned deleted = 0;
    int rc = pk_store_outbox_cursor(st, txn, &cursor);
    if (rc != 0)
        return rc;
    if (acked > cursor) {
        assert(acked < st->st_outbox_next); /* only committed events are acknowledged */
        if ((rc = pk_store_meta_put_u64(st, txn, "outbox.acked", acked)) != 0)
            return rc;
        cursor = acked;
    }
    if (mdb_cursor_open(txn, st->st_dbi[PK_TBL_OUTBOX], &cur) != 0)
        return PK_ESTORE;
    *first_left = st->st_outbox_next;
    *more = false;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        uint64_t seq = pk_store_u64_of_key(&k);
        if (seq > cursor || deleted == rows_max) {
            *first_left = seq;
            *more = seq <= cursor;
            break;
        }
        if (mdb_cursor_del(cur, 0) != 0) {
            rc = PK_ESTORE;
            break;
        }
        deleted++;
        /* After a delete the cursor sits on the next entry, if any. */
        rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (rc == EINVAL || rc == MDB_NOTFOUND)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        pk_log_error("shard=%u outbox trim: %s", st->st_shard, rc == PK_ESTORE ? "delete failed" : mdb_strerror(rc));
        return PK_ESTORE;
    }
    return 0;
}
