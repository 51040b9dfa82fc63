/*
 * Talking to pickple outside the measured load: bearer tokens signed with
 * the data directory's secret, and one-at-a-time JSON calls for setting a
 * scenario up and checking its outcome.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "pickple/jwt.h"
#include "pb.h"

#define PB__BEARER "Bearer "

static int pb__sign(const pk_jwt_key_t *key, uint64_t user_id, pk_role_t role, int64_t now_s, int64_t ttl_s,
                    char *out, size_t out_size)
{
    size_t prefix = sizeof(PB__BEARER) - 1;
    if (out_size <= prefix)
        return -ENOSPC;
    memcpy(out, PB__BEARER, prefix);
    pk_jwt_claims_t c = {.jc_user_id = user_id, .jc_role = role, .jc_iat = now_s, .jc_exp = now_s + ttl_s};
    int n = pk_jwt_sign(key, &c, out + prefix, out_size - prefix);
    return n < 0 ? n : (int)prefix + n;
}

int pb_tokens_sign(pb_tokens_t *tk, const char *secret_path, const uint64_t *ids, uint64_t base, uint32_t count,
                   int64_t ttl_s)
{
    pk_jwt_key_t key;
    int rc = pk_jwt_key_load(&key, secret_path);
    if (rc != 0)
        return rc;
    memset(tk, 0, sizeof(*tk));
    /* A token for a 16-digit id is about 190 bytes; 256 a token is ample. */
    size_t cap = (size_t)count * 256;
    tk->tk_buf = malloc(cap);
    tk->tk_offset = malloc((size_t)count * sizeof(*tk->tk_offset));
    tk->tk_len = malloc((size_t)count * sizeof(*tk->tk_len));
    if (tk->tk_buf == NULL || tk->tk_offset == NULL || tk->tk_len == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    tk->tk_count = count;
    tk->tk_user_base = base;
    int64_t now_s = pk_now_ms() / 1000;
    size_t off = 0;
    for (uint32_t i = 0; i < count; i++) {
        int n = pb__sign(&key, ids ? ids[i] : base + i, PK_ROLE_CUSTOMER, now_s, ttl_s, tk->tk_buf + off, cap - off);
        if (n < 0) {
            rc = n;
            goto fail;
        }
        tk->tk_offset[i] = (uint32_t)off;
        tk->tk_len[i] = (uint16_t)n;
        off += (size_t)n + 1;
    }
    return 0;
fail:
    pb_tokens_free(tk);
    return rc;
}

void pb_tokens_free(pb_tokens_t *tk)
{
    free(tk->tk_buf);
    free(tk->tk_offset);
    free(tk->tk_len);
    memset(tk, 0, sizeof(*tk));
}

int pb_token_one(const char *secret_path, uint64_t user_id, const char *role, char *out, size_t out_size)
{
    pk_jwt_key_t key;
    pk_role_t r;
    int rc = pk_jwt_key_load(&key, secret_path);
    if (rc != 0)
        return rc;
    if (pk_role_parse(role, strlen(role), &r) != 0)
        return -EINVAL;
    rc = pb__sign(&key, user_id, r, pk_now_ms() / 1000, 86400, out, out_size);
    return rc < 0 ? rc : 0;
}

static void pb__api_done(pb_conn_t *c, pb_req_t *rq, void *arg)
{
    pb_api_t *api = arg;
    api->ap_status = rq->rq_status;
    api->ap_done = true;
}

int pb_api_open(pb_api_t *api, const struct sockaddr_in *addr, const char *authority)
{
    memset(api, 0, sizeof(*api));
    int rc = pb_conn_open(&api->ap_conn, addr, authority, 1, pb__api_done, api);
    if (rc != 0)
        return rc;
    rc = pb_conn_handshake(&api->ap_conn, 5000);
    if (rc != 0)
        pb_conn_close(&api->ap_conn);
    return rc;
}

void pb_api_close(pb_api_t *api)
{
    pb_conn_close(&api->ap_conn);
}

int pb_api_call(pb_api_t *api, const char *method, const char *path, const char *token, const char *body,
                json_t **out, int timeout_ms)
{
    pb_conn_t *c = &api->ap_conn;
    *out = NULL;
    pb_req_t *rq = pb_conn_slot(c);
    if (rq == NULL)
        return -EPIPE;
    size_t plen = strlen(path), blen = body ? strlen(body) : 0;
    if (plen >= sizeof(rq->rq_path) || blen > sizeof(rq->rq_body))
        return -ENAMETOOLONG;
    rq->rq_method = method;
    memcpy(rq->rq_path, path, plen + 1);
    rq->rq_path_len = plen;
    if (blen)
        memcpy(rq->rq_body, body, blen);
    rq->rq_body_len = blen;
    rq->rq_token = token;
    rq->rq_token_len = token ? strlen(token) : 0;
    rq->rq_want_body = true;
    api->ap_done = false;
    if (pb_conn_submit(c, rq) != 0)
        return -EPROTO;

    uint64_t deadline = pb_now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (!api->ap_done) {
        int pending = pb_conn_flush(c);
        if (pending < 0)
            break; /* the connection died: the request was failed */
        uint64_t now = pb_now_ns();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = c->cn_fd, .events = POLLIN | (pending ? POLLOUT : 0)};
        if (poll(&p, 1, (int)((deadline - now) / 1000000u) + 1) < 0 && errno != EINTR)
            return -errno;
        /* A death fails the request, which sets ap_done. */
        if ((p.revents & (POLLIN | POLLHUP | POLLERR)) && pb_conn_read(c) != 0)
            break;
    }
    if (!api->ap_done || api->ap_status == 0)
        return -EPIPE;
    if (rq->rq_resp_len > 0)
        *out = json_loadb(rq->rq_resp, rq->rq_resp_len, 0, NULL);
    return api->ap_status;
}
