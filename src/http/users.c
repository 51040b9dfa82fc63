/* Users and auth endpoints: sign-up, sign-in, users/me, role change.
 *
 * Sign-up:  connection thread -> worker (hash) -> owner shard (insert).
 * Sign-in:  connection thread -> owner shard (lookup) -> worker (verify)
 *           -> connection thread (sign the token).
 */
#include <openssl/crypto.h>
#include <string.h>

#include "pickple/http.h"
#include "pickple/users.h"

static void pk__wipe_password(pk_msg_t *msg)
{
    OPENSSL_cleanse(msg->u.user.mu_password, sizeof(msg->u.user.mu_password));
    msg->u.user.mu_password_len = 0;
}

/* Copies validated credentials into msg and routes it to the name's owner. */
static void pk__set_credentials(pk_actor_t *a, pk_msg_t *msg, const char *username, size_t ulen,
                                const char *password, size_t plen)
{
    pk_msg_user_t *mu = &msg->u.user;
    memcpy(mu->mu_user.u_username, username, ulen);
    mu->mu_user.u_username_len = (uint8_t)ulen;
    memcpy(mu->mu_password, password, plen);
    mu->mu_password_len = (uint8_t)plen;
    msg->m_shard = (uint16_t)pk_user_shard_of_name(username, ulen, a->a_rt->rt_nactors);
}

static void pk__hash_work(pk_msg_t *msg)
{
    pk_msg_user_t *mu = &msg->u.user;
    int rc = pk_password_hash(mu->mu_password, mu->mu_password_len, mu->mu_user.u_pwhash,
                              sizeof(mu->mu_user.u_pwhash));
    msg->m_work_rc = rc < 0 ? rc : 0;
    pk__wipe_password(msg);
}

static void pk__sign_up_hashed(pk_actor_t *a, pk_msg_t *msg)
{
    if (msg->m_work_rc != 0) {
        pk_msg_error(msg, 500, "internal", "password hashing failed");
        pk_http_finish(a, msg);
        return;
    }
    msg->m_op = &pk_op_user_create;
    msg->m_done = pk_http_finish;
    pk_http_forward(a, msg, false);
}

void pk_h_sign_up(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    json_t *body;
    const char *username, *password, *email;
    size_t ulen, plen, elen;
    if (pk_http_body(req, args, &body) != 0)
        return;
    if (pk_http_field_str(req, args, body, "username", true, &username, &ulen) != 0)
        goto done;
    if (!pk_user_username_valid(username, ulen)) {
        pk_http_invalid(req, args, "username", "must be 3..32 characters of a-z, 0-9, '_', '.', '-'");
        goto done;
    }
    if (pk_http_field_str(req, args, body, "password", true, &password, &plen) != 0)
        goto done;
    if (!pk_user_password_valid(plen)) {
        pk_http_invalid(req, args, "password", "must be 8..128 bytes");
        goto done;
    }
    if (pk_http_field_str(req, args, body, "email", true, &email, &elen) != 0)
        goto done;
    if (!pk_user_email_valid(email, elen)) {
        pk_http_invalid(req, args, "email", "must be an address with exactly one '@' (at most 254 bytes)");
        goto done;
    }
    pk_msg_t *msg = pk_http_msg_new(a, req, args);
    if (msg == NULL)
        goto done;
    pk__set_credentials(a, msg, username, ulen, password, plen);
    memcpy(msg->u.user.mu_user.u_email, email, elen);
    msg->u.user.mu_user.u_email_len = (uint8_t)elen;
    msg->m_work = pk__hash_work;
    msg->m_done = pk__sign_up_hashed;
    pk_http_submit_work(a, req, msg);
done:
    json_decref(body);
}

static void pk__verify_work(pk_msg_t *msg)
{
    pk_msg_user_t *mu = &msg->u.user;
    int rc = pk_password_verify(mu->mu_password, mu->mu_password_len, mu->mu_user.u_pwhash);
    msg->m_work_rc = mu->mu_found ? rc : PK_EAUTH;
    pk__wipe_password(msg);
}

static void pk__sign_in_verified(pk_actor_t *a, pk_msg_t *msg)
{
    pk_runtime_t *rt = a->a_rt;
    if (msg->m_work_rc != 0) {
        pk_msg_error(msg, 401, "invalid_credentials", "wrong username or password");
        pk_http_finish(a, msg);
        return;
    }
    pk_jwt_claims_t claims = {
        .jc_user_id = msg->u.user.mu_user.u_id,
        .jc_role = msg->u.user.mu_user.u_role,
        .jc_iat = msg->m_now_ms / 1000,
        .jc_exp = msg->m_now_ms / 1000 + rt->rt_cfg->cf_token_ttl_s,
    };
    char token[PK_JWT_TOKEN_BYTES_MAX];
    int len = pk_jwt_sign(&rt->rt_jwt, &claims, token, sizeof(token));
    if (len < 0) {
        pk_msg_error(msg, 500, "internal", "cannot sign the token");
        pk_http_finish(a, msg);
        return;
    }
    pk_out_t o;
    pk_out_init(&o, msg->m_fmt);
    pk_out_map(&o, 3);
    pk_out_key(&o, "access_token");
    pk_out_str(&o, token, (size_t)len);
    pk_out_key(&o, "token_type");
    pk_out_cstr(&o, "Bearer");
    pk_out_key(&o, "expires_in");
    pk_out_u64(&o, rt->rt_cfg->cf_token_ttl_s);
    pk_out_end(&o);
    pk_msg_reply(msg, &o, 200);
    pk_http_finish(a, msg);
}

static void pk__sign_in_found(pk_actor_t *a, pk_msg_t *msg)
{
    if (msg->m_err_code != NULL) { /* storage failure on the owner */
        pk_http_finish(a, msg);
        return;
    }
    /* Unknown users are checked against a real hash too: same time. */
    if (!msg->u.user.mu_found)
        memcpy(msg->u.user.mu_user.u_pwhash, a->a_rt->rt_dummy_pwhash, sizeof(a->a_rt->rt_dummy_pwhash));
    msg->m_work = pk__verify_work;
    msg->m_done = pk__sign_in_verified;
    pk_http_forward(a, msg, true);
}

void pk_h_sign_in(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    json_t *body;
    const char *username, *password;
    size_t ulen, plen;
    if (pk_http_body(req, args, &body) != 0)
        return;
    if (pk_http_field_str(req, args, body, "username", true, &username, &ulen) != 0 ||
        pk_http_field_str(req, args, body, "password", true, &password, &plen) != 0)
        goto done;
    /* Names and passwords that could never have been registered cannot
     * match; answer like any other mismatch. */
    if (!pk_user_username_valid(username, ulen) || !pk_user_password_valid(plen)) {
        pk_http_error(req, args->ha_fmt_out, 401, "invalid_credentials", "wrong username or password");
        goto done;
    }
    pk_msg_t *msg = pk_http_msg_new(a, req, args);
    if (msg == NULL)
        goto done;
    pk__set_credentials(a, msg, username, ulen, password, plen);
    msg->m_op = &pk_op_user_find_by_name;
    msg->m_done = pk__sign_in_found;
    pk_http_submit(a, req, msg);
done:
    json_decref(body);
}

void pk_h_users_me(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    pk_msg_t *msg = pk_http_msg_new(a, req, args);
    if (msg == NULL)
        return;
    pk_http_submit_op(a, req, msg, &pk_op_user_get, args->ha_claims.jc_user_id);
}

void pk_h_user_role(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    json_t *body;
    const char *role;
    size_t rlen;
    pk_role_t r;
    if (args->ha_claims.jc_role != PK_ROLE_ADMIN) {
        pk_http_error(req, args->ha_fmt_out, 403, "forbidden", "only an admin can change roles");
        return;
    }
    if (pk_http_body(req, args, &body) != 0)
        return;
    if (pk_http_field_str(req, args, body, "role", true, &role, &rlen) != 0)
        goto done;
    if (pk_role_parse(role, rlen, &r) != 0) {
        pk_http_invalid(req, args, "role", "must be customer, seller or admin");
        goto done;
    }
    pk_msg_t *msg = pk_http_msg_new(a, req, args);
    if (msg == NULL)
        goto done;
    msg->u.user.mu_user.u_id = args->ha_id;
    msg->u.user.mu_role = r;
    pk_http_submit_op(a, req, msg, &pk_op_user_set_role, args->ha_id);
done:
    json_decref(body);
}
