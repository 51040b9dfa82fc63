/* Users on their shard: create, find by name, get, change role. */
#include <assert.h>
#include <string.h>

#include "pickple/log.h"
#include "pickple/users.h"

/* Renders u as JSON and appends the event type about it. */
static int pk__user_event(pk_store_t *st, MDB_txn *txn, const pk_user_t *u, const char *type, int64_t now_ms)
{
    pk_out_t o;
    pk_buf_t json = {0};
    pk_out_init(&o, PK_FMT_JSON);
    pk_user_render(u, &o);
    if (pk_out_finish(&o, &json) != 0)
        return PK_ESTORE;
    int rc = pk_store_outbox_append(st, txn, type, u->u_id, now_ms, PK_EVENT_JSON, json.b_data, json.b_len);
    pk_buf_free(&json);
    return rc;
}

static int pk__user_write(pk_store_t *st, MDB_txn *txn, const pk_user_t *u)
{
    pk_buf_t rec = {0};
    int rc = pk_user_encode(u, &rec);
    if (rc == 0)
        rc = pk_store_put_id(st, txn, PK_TBL_USERS, u->u_id, rec.b_data, rec.b_len);
    pk_buf_free(&rec);
    return rc == 0 ? 0 : PK_ESTORE;
}

/* Reads user id.  Returns 0, PK_ENOTFOUND or PK_ESTORE (corrupt record:
 * the store is damaged, poison the batch rather than answer wrongly). */
static int pk__user_read(pk_store_t *st, MDB_txn *txn, uint64_t id, pk_user_t *u)
{
    MDB_val v;
    int rc = pk_store_get_id(st, txn, PK_TBL_USERS, id, &v);
    if (rc != 0)
        return rc;
    if (pk_user_decode(v.mv_data, v.mv_size, u) != 0 || u->u_id != id) {
        pk_log_error("shard=%u user %llu: corrupt record", st->st_shard, (unsigned long long)id);
        return PK_ESTORE;
    }
    return 0;
}

static void pk__render_user(pk_msg_t *msg, const pk_user_t *u, int status)
{
    pk_out_t o;
    pk_out_init(&o, msg->m_fmt);
    pk_user_render(u, &o);
    pk_msg_reply(msg, &o, status);
}

int pk_users_insert(pk_store_t *st, MDB_txn *txn, pk_user_t *u, int64_t now_ms)
{
    MDB_val k = {u->u_username_len, u->u_username}, v;
    int rc = mdb_get(txn, st->st_dbi[PK_TBL_USERNAMES], &k, &v);
    if (rc == 0)
        return PK_EEXISTS;
    if (rc != MDB_NOTFOUND)
        return PK_ESTORE;
    if (u->u_id == 0)
        u->u_id = pk_store_next_id(st, PK_SEQ_USER);
    u->u_created_ms = now_ms;
    uint8_t idb[8];
    pk_store_key_u64(u->u_id, idb);
    v.mv_size = 8;
    v.mv_data = idb;
    if (mdb_put(txn, st->st_dbi[PK_TBL_USERNAMES], &k, &v, MDB_NOOVERWRITE) != 0)
        return PK_ESTORE;
    if ((rc = pk__user_write(st, txn, u)) != 0)
        return rc;
    return pk__user_event(st, txn, u, "user.registered", now_ms);
}

static int pk__create_apply(pk_actor_t *owner, MDB_txn *txn, pk_msg_t *msg)
{
    pk_user_t *u = &msg->u.user.mu_user;
    u->u_role = PK_ROLE_CUSTOMER;
    u->u_id = 0;
    int rc = pk_users_insert(&owner->a_store, txn, u, msg->m_now_ms);
    if (rc == PK_EEXISTS) {
        pk_msg_error(msg, 409, "username_taken", "that username is already taken");
        return 0;
    }
    if (rc != 0)
        return rc;
    pk__render_user(msg, u, 201);
    return 0;
}

static int pk__find_apply(pk_actor_t *owner, MDB_txn *txn, pk_msg_t *msg)
{
    pk_store_t *st = &owner->a_store;
    pk_user_t *u = &msg->u.user.mu_user;
    MDB_val k = {u->u_username_len, u->u_username}, v;
    msg->m_status = 200;
    int rc = mdb_get(txn, st->st_dbi[PK_TBL_USERNAMES], &k, &v);
    if (rc == MDB_NOTFOUND) {
        msg->u.user.mu_found = false;
        return 0;
    }
    if (rc != 0 || v.mv_size != 8)
        return PK_ESTORE;
    rc = pk__user_read(st, txn, pk_store_u64_of_key(&v), u);
    if (rc == PK_ENOTFOUND)
        return PK_ESTORE; /* name index points nowhere: corruption */
    if (rc != 0)
        return rc;
    msg->u.user.mu_found = true;
    return 0;
}

static int pk__get_apply(pk_actor_t *owner, MDB_txn *txn, pk_msg_t *msg)
{
    pk_user_t u;
    int rc = pk__user_read(&owner->a_store, txn, msg->m_subject, &u);
    if (rc == PK_ENOTFOUND) {
        pk_msg_error(msg, 401, "unauthorized", "the token's user does not exist");
        return 0;
    }
    if (rc != 0)
        return rc;
    pk__render_user(msg, &u, 200);
    return 0;
}

static int pk__set_role_apply(pk_actor_t *owner, MDB_txn *txn, pk_msg_t *msg)
{
    pk_user_t u;
    pk_store_t *st = &owner->a_store;
    int rc = pk__user_read(st, txn, msg->u.user.mu_user.u_id, &u);
    if (rc == PK_ENOTFOUND) {
        pk_msg_error(msg, 404, "not_found", "no user with that id");
        return 0;
    }
    if (rc != 0)
        return rc;
    if (u.u_role != msg->u.user.mu_role) {
        u.u_role = msg->u.user.mu_role;
        if ((rc = pk__user_write(st, txn, &u)) != 0)
            return rc;
        if ((rc = pk__user_event(st, txn, &u, "user.role_changed", msg->m_now_ms)) != 0)
            return rc;
    }
    pk__render_user(msg, &u, 200);
    return 0;
}

const pk_op_t pk_op_user_create = {"user.create", false, pk__create_apply};
const pk_op_t pk_op_user_find_by_name = {"user.find_by_name", true, pk__find_apply};
const pk_op_t pk_op_user_get = {"user.get", true, pk__get_apply};
const pk_op_t pk_op_user_set_role = {"user.set_role", false, pk__set_role_apply};

int pk_users_bootstrap_admin(pk_store_t *st, const char *password, int64_t now_ms)
{
    MDB_txn *txn;
    pk_user_t u = {0};
    memcpy(u.u_username, "admin", 6);
    u.u_username_len = 5;
    memcpy(u.u_email, "admin@localhost", 16);
    u.u_email_len = 15;
    u.u_role = PK_ROLE_ADMIN;
    int rc = pk_store_begin(st, true, &txn);
    if (rc != 0)
        return rc;
    MDB_val k = {u.u_username_len, u.u_username}, v;
    rc = mdb_get(txn, st->st_dbi[PK_TBL_USERNAMES], &k, &v);
    mdb_txn_abort(txn);
    if (rc == 0)
        return 0; /* created on an earlier start; its password is the user's now */
    rc = pk_password_hash(password, strlen(password), u.u_pwhash, sizeof(u.u_pwhash));
    if (rc < 0)
        return rc;
    if ((rc = pk_store_begin(st, false, &txn)) != 0)
        return rc;
    rc = pk_users_insert(st, txn, &u, now_ms);
    if (rc != 0) {
        pk_store_abort(st, txn);
        return rc;
    }
    if ((rc = pk_store_commit(st, txn)) != 0)
        return rc;
    pk_log_info("created user admin (id %llu)", (unsigned long long)u.u_id);
    return 0;
}
