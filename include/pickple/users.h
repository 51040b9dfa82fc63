/*
 * User operations a shard applies (store side of the users slice).  Every
 * op_apply runs on the shard owning the user: by username hash for
 * creation and lookup by name, by id (id % nshards) otherwise.
 */
#ifndef PICKPLE_USERS_H
#define PICKPLE_USERS_H

#include "pickple/actor.h"

extern const pk_op_t pk_op_user_create;       /* mu_user -> 201 user | 409 username_taken */
extern const pk_op_t pk_op_user_find_by_name; /* mu_user.u_username -> mu_found, mu_user */
extern const pk_op_t pk_op_user_get;          /* m_subject -> 200 user | 401 */
extern const pk_op_t pk_op_user_set_role;     /* mu_user.u_id, mu_role -> 200 user | 404 */

/*
 * Inserts u (u_id 0: a new id is allocated) with its event in txn.
 * Returns 0, PK_EEXISTS when the username is taken (nothing written), or
 * PK_ESTORE.
 */
int pk_users_insert(pk_store_t *st, MDB_txn *txn, pk_user_t *u, int64_t now_ms) PK_MUST_USE;

/*
 * Creates user "admin" with role admin and the given password on the shard
 * owning that name, unless it exists.  Runs before the actor threads start
 * (the caller is then the only user of the store).  Returns 0 or error.
 */
int pk_users_bootstrap_admin(pk_store_t *st, const char *password, int64_t now_ms) PK_MUST_USE;

#endif
