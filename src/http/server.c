/* h2o handler: routing, format negotiation, auth gate, replies, and the
 * request <-> message link. */
#include <assert.h>
#include <ck_pr.h>
#include <string.h>

#include "pickple/http.h"
#include "pickple/log.h"

typedef struct pk_route {
    const char *r_method;
    const char *r_pattern; /* segments; ":id" matches an id 1..2^53-1 */
    pk_http_handler_t r_handler;
    bool r_auth; /* needs a valid bearer token */
} pk_route_t;

static void pk__h_healthz(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    if (args->ha_fmt_out == PK_FMT_MSGPACK) {
        static const char mp[] = "\x81\xa6status\xa2ok";
        pk_http_send(req, PK_FMT_MSGPACK, 200, mp, sizeof(mp) - 1);
        return;
    }
    pk_http_send(req, PK_FMT_JSON, 200, ok, sizeof(ok) - 1);
}

static void pk__h_readyz(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    if (!pk_runtime_ready(a->a_rt)) {
        pk_http_unavailable(req, args->ha_fmt_out, "not ready");
        return;
    }
    static const char ok[] = "{\"status\":\"ready\"}";
    pk_http_send(req, PK_FMT_JSON, 200, ok, sizeof(ok) - 1);
}

static const pk_route_t pk__routes[] = {
    {"GET", "/healthz", pk__h_healthz, false},
    {"GET", "/readyz", pk__h_readyz, false},
    {"GET", "/metrics", pk_h_metrics, false},
    {"POST", "/api/v1/auth/sign-up", pk_h_sign_up, false},
    {"POST", "/api/v1/auth/sign-in", pk_h_sign_in, false},
    {"GET", "/api/v1/users/me", pk_h_users_me, true},
    {"PUT", "/api/v1/users/:id/role", pk_h_user_role, true},
    {"POST", "/api/v1/products", pk_h_product_create, true},
    {"GET", "/api/v1/products", pk_h_product_list, false},
    {"GET", "/api/v1/products/:id", pk_h_product_get, false},
    {"PATCH", "/api/v1/products/:id", pk_h_product_patch, true},
    {"POST", "/api/v1/products/:id/stock", pk_h_product_stock, true},
    {"POST", "/api/v1/sales", pk_h_sale_create, true},
    {"GET", "/api/v1/sales", pk_h_sale_list, false},
    {"GET", "/api/v1/sales/:id", pk_h_sale_get, false},
    {"POST", "/api/v1/orders", pk_h_order_create, true},
    {"GET", "/api/v1/orders", pk_h_order_list, true},
    {"GET", "/api/v1/orders/:id", pk_h_order_get, true},
    {"POST", "/api/v1/orders/:id/pay", pk_h_order_pay, true},
    {"POST", "/api/v1/orders/:id/cancel", pk_h_order_cancel, true},
    {"GET", "/api/v1/orders/:id/delivery", pk_h_order_delivery, true},
    {"POST", "/api/v1/deliveries/:id/ship", pk_h_delivery_ship, true},
    {"POST", "/api/v1/deliveries/:id/complete", pk_h_delivery_complete, true},
    {"GET", "/api/v1/notifications", pk_h_note_list, true},
};

static const char *pk__reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

void pk_http_send(h2o_req_t *req, pk_fmt_t fmt, int status, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = pk__reason(status);
    if (fmt == PK_FMT_MSGPACK)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/msgpack"));
    else
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_send_inline(req, body, len);
}

void pk_http_error(h2o_req_t *req, pk_fmt_t fmt, int status, const char *code, const char *message)
{
    pk_buf_t b = {0};
    if (pk_out_error(fmt, code, message, &b) != 0) {
        static const char fallback[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        pk_http_send(req, PK_FMT_JSON, 500, fallback, sizeof(fallback) - 1);
        return;
    }
    pk_http_send(req, fmt, status, b.b_data, b.b_len);
    pk_buf_free(&b);
}

void pk_http_unavailable(h2o_req_t *req, pk_fmt_t fmt, const char *message)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
    pk_http_error(req, fmt, 503, "unavailable", message);
}

/* The link lives in the request's pool; its dispose runs when the request
 * is finished or abandoned, and tells the message the request is gone. */
struct pk_pending {
    h2o_req_t *p_req;
    pk_msg_t *p_msg;
};

static void pk__pending_dispose(void *p)
{
    pk_pending_t *pending = p;
    if (pending->p_msg != NULL)
        pending->p_msg->m_pending = NULL;
}

int pk_http_attach(h2o_req_t *req, pk_msg_t *msg)
{
    pk_pending_t *p = h2o_mem_alloc_shared(&req->pool, sizeof(*p), pk__pending_dispose);
    if (p == NULL)
        return -ENOMEM;
    p->p_req = req;
    p->p_msg = msg;
    msg->m_pending = p;
    return 0;
}

h2o_req_t *pk_http_detach(pk_msg_t *msg)
{
    pk_pending_t *p = msg->m_pending;
    if (p == NULL)
        return NULL;
    p->p_msg = NULL;
    msg->m_pending = NULL;
    return p->p_req;
}

void pk_http_finish(pk_actor_t *a, pk_msg_t *msg)
{
    h2o_req_t *req = pk_http_detach(msg);
    if (req != NULL) {
        if (msg->m_err_code != NULL) {
            if (msg->m_status == 503)
                pk_http_unavailable(req, msg->m_fmt, msg->m_err_message);
            else
                pk_http_error(req, msg->m_fmt, msg->m_status, msg->m_err_code, msg->m_err_message);
        } else {
            pk_http_send(req, msg->m_fmt, msg->m_status, msg->m_body.b_data, msg->m_body.b_len);
        }
    }
    pk_msg_free(a, msg);
}

pk_msg_t *pk_http_msg_new(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    pk_msg_t *msg = pk_msg_new(a);
    if (msg == NULL) {
        pk_http_unavailable(req, args->ha_fmt_out, "too many requests in flight; retry shortly");
        return NULL;
    }
    msg->m_fmt = args->ha_fmt_out;
    msg->m_now_ms = args->ha_now_ms;
    if (args->ha_authed) {
        msg->m_subject = args->ha_claims.jc_user_id;
        msg->m_subject_role = args->ha_claims.jc_role;
    }
    return msg;
}

static void pk__submit(pk_actor_t *a, h2o_req_t *req, pk_msg_t *msg, bool work)
{
    int rc = pk_http_attach(req, msg);
    if (rc == 0)
        rc = work ? pk_actor_work(a, msg) : pk_actor_send(a, msg);
    if (rc != 0) {
        pk_http_detach(msg);
        pk_http_unavailable(req, msg->m_fmt, "server busy; retry shortly");
        pk_msg_free(a, msg);
    }
}

void pk_http_submit(pk_actor_t *a, h2o_req_t *req, pk_msg_t *msg)
{
    pk__submit(a, req, msg, false);
}

void pk_http_submit_op(pk_actor_t *a, h2o_req_t *req, pk_msg_t *msg, const pk_op_t *op, uint64_t owner_id)
{
    msg->m_op = op;
    msg->m_shard = (uint16_t)(owner_id % a->a_rt->rt_nactors);
    msg->m_done = pk_http_finish;
    pk__submit(a, req, msg, false);
}

void pk_http_submit_work(pk_actor_t *a, h2o_req_t *req, pk_msg_t *msg)
{
    pk__submit(a, req, msg, true);
}

void pk_http_forward(pk_actor_t *a, pk_msg_t *msg, bool work)
{
    if (msg->m_pending == NULL) {
        pk_msg_free(a, msg);
        return;
    }
    int rc = work ? pk_actor_work(a, msg) : pk_actor_send(a, msg);
    if (rc != 0) {
        pk_msg_error(msg, 503, "unavailable", "server busy; retry shortly");
        pk_http_finish(a, msg);
    }
}

static bool pk__header_has(h2o_req_t *req, const h2o_token_t *token, const char *needle)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    if (i < 0)
        return false;
    h2o_iovec_t v = req->headers.entries[i].value;
    size_t n = strlen(needle);
    for (size_t k = 0; k + n <= v.len; k++)
        if (h2o_lcstris(v.base + k, n, needle, n))
            return true;
    return false;
}

/* Matches path against pattern segment by segment.  Returns true and sets
 * *id when the pattern has an ":id" segment. */
static bool pk__match(const char *pattern, const char *path, size_t len, uint64_t *id)
{
    size_t i = 0;
    const char *p = pattern;
    while (*p != '\0') {
        if (p[0] == ':' && p[1] == 'i' && p[2] == 'd') {
            uint64_t v = 0;
            size_t start = i;
            while (i < len && path[i] >= '0' && path[i] <= '9' && i - start < 17)
                v = v * 10 + (uint64_t)(path[i++] - '0');
            if (i == start || (i < len && path[i] != '/') || v == 0 || v > PK_ID_MAX)
                return false;
            *id = v;
            p += 3;
            continue;
        }
        if (i >= len || path[i] != *p)
            return false;
        i++;
        p++;
    }
    return i == len;
}

/* The token of an "Authorization: Bearer" header: 1 with *token set, 0 when
 * the header is missing, -1 when it holds no bearer token. */
static int pk__bearer(h2o_req_t *req, h2o_iovec_t *token)
{
    ssize_t hi = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (hi < 0)
        return 0;
    h2o_iovec_t v = req->headers.entries[hi].value;
    if (v.len <= 7 || !h2o_lcstris(v.base, 7, "bearer ", 7))
        return -1;
    size_t off = 7;
    while (off < v.len && v.base[off] == ' ')
        off++;
    *token = h2o_iovec_init(v.base + off, v.len - off);
    return 1;
}

static int pk__on_req(h2o_handler_t *self, h2o_req_t *req)
{
    pk_actor_t *a = pk_actor_of_ctx(req->conn->ctx);
    pk_http_args_t args = {0};
    const char *path = req->path_normalized.base;
    size_t len = req->path_normalized.len;
    const pk_route_t *route = NULL;
    bool path_known = false;
    h2o_iovec_t token = {NULL, 0};
    int bearer = pk__bearer(req, &token);

    /* The token's cache lines load while the route is found. */
    if (bearer > 0)
        pk_jwtc_prefetch(&a->a_jwtc, token.base, token.len);

    args.ha_fmt_in = pk__header_has(req, H2O_TOKEN_CONTENT_TYPE, "application/msgpack") ? PK_FMT_MSGPACK
                                                                                          : PK_FMT_JSON;
    args.ha_fmt_out = (args.ha_fmt_in == PK_FMT_MSGPACK || pk__header_has(req, H2O_TOKEN_ACCEPT, "application/msgpack"))
                          ? PK_FMT_MSGPACK
                          : PK_FMT_JSON;
    args.ha_now_ms = pk_now_ms();
    while (len > 1 && path[len - 1] == '/')
        len--;
    for (size_t i = 0; i < PK_ARRAY_LEN(pk__routes); i++) {
        uint64_t id = 0;
        if (!pk__match(pk__routes[i].r_pattern, path, len, &id))
            continue;
        path_known = true;
        if (h2o_memis(req->method.base, req->method.len, pk__routes[i].r_method, strlen(pk__routes[i].r_method))) {
            route = &pk__routes[i];
            args.ha_id = id;
            break;
        }
    }
    if (route == NULL) {
        if (path_known)
            pk_http_error(req, args.ha_fmt_out, 405, "method_not_allowed", "method not allowed on this path");
        else
            pk_http_error(req, args.ha_fmt_out, 404, "not_found", "no such resource");
        return 0;
    }
    if (req->entity.base != NULL && req->entity.len > PK_BODY_BYTES_MAX) {
        pk_http_error(req, args.ha_fmt_out, 413, "payload_too_large", "request body is over 65536 bytes");
        return 0;
    }
    if (ck_pr_load_uint(&a->a_rt->rt_stopping) && route->r_handler != pk__h_healthz) {
        pk_http_unavailable(req, args.ha_fmt_out, "server is shutting down");
        return 0;
    }
    if (route->r_auth) {
        int rc = -EINVAL;
        if (bearer > 0)
            rc = pk_jwtc_verify(&a->a_jwtc, &a->a_rt->rt_jwt, token.base, token.len, args.ha_now_ms / 1000,
                                &args.ha_claims);
        if (rc != 0) {
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
            pk_http_error(req, args.ha_fmt_out, 401, "unauthorized",
                          bearer == 0          ? "missing bearer token"
                          : rc == PK_EEXPIRED  ? "token expired"
                                               : "invalid token");
            return 0;
        }
        args.ha_authed = true;
    }
    route->r_handler(a, req, &args);
    pk_actor_progress(a);
    return 0;
}

void pk_http_setup(pk_runtime_t *rt)
{
    h2o_config_init(&rt->rt_h2o);
    rt->rt_h2o.server_name = h2o_iovec_init(H2O_STRLIT("pickple"));
    rt->rt_h2o.max_request_entity_size = PK_H2O_ENTITY_BYTES_MAX;
    h2o_hostconf_t *host = h2o_config_register_host(&rt->rt_h2o, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(path, sizeof(*h));
    h->on_req = pk__on_req;
}
