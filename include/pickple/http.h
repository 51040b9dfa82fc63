/*
 * HTTP front end on h2o: routing, body formats, auth, and the link between
 * an h2o request and the message that carries it to a shard.
 *
 * Caveats: every function here runs on the connection's own actor thread;
 * h2o objects never leave it.  A request may be gone (client reset) by the
 * time its reply arrives: the link is cut by a dispose callback on the
 * request's pool and pk_http_detach() then returns NULL.
 */
#ifndef PICKPLE_HTTP_H
#define PICKPLE_HTTP_H

#include <h2o.h>
#include <jansson.h>

#include "pickple/actor.h"
#include "pickple/jwt.h"
#include "pickple/out.h"

#define PK_BODY_BYTES_MAX 65536
/* h2o resets HTTP/2 streams over its own limit instead of answering 413, so
 * its limit sits above ours and pickple answers 413 itself. */
#define PK_H2O_ENTITY_BYTES_MAX (8u << 20)

/* What the router hands a handler. */
typedef struct pk_http_args {
    uint64_t ha_id;       /* the {id} path segment, when the route has one */
    pk_fmt_t ha_fmt_out;  /* reply format (Accept / Content-Type) */
    pk_fmt_t ha_fmt_in;   /* body format (Content-Type) */
    bool ha_authed;
    pk_jwt_claims_t ha_claims; /* valid when ha_authed */
    int64_t ha_now_ms;
} pk_http_args_t;

typedef void (*pk_http_handler_t)(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);

/* Registers the pickple handler on rt->rt_h2o (called before threads start). */
void pk_http_setup(pk_runtime_t *rt);

/* Sends body with status and the content type of fmt. */
void pk_http_send(h2o_req_t *req, pk_fmt_t fmt, int status, const char *body, size_t len);
/* Sends the contract's error document. */
void pk_http_error(h2o_req_t *req, pk_fmt_t fmt, int status, const char *code, const char *message);
/* 503 unavailable with Retry-After. */
void pk_http_unavailable(h2o_req_t *req, pk_fmt_t fmt, const char *message);

/* Links msg to req so its reply can find the request (and notices when the
 * request is gone).  Returns 0 or -ENOMEM. */
int pk_http_attach(h2o_req_t *req, pk_msg_t *msg) PK_MUST_USE;
/* Cuts the link; returns the request, or NULL when the client went away. */
h2o_req_t *pk_http_detach(pk_msg_t *msg);

/*
 * The usual m_done: answers the request (if still there) from m_status and
 * m_body or m_err_*, then frees msg.
 */
void pk_http_finish(pk_actor_t *a, pk_msg_t *msg);

/*
 * Attaches msg to req and sends it to its shard; on a full inbox or
 * shutdown answers 503 + Retry-After and frees msg.
 */
void pk_http_submit(pk_actor_t *a, h2o_req_t *req, pk_msg_t *msg);
/*
 * The common single hop: sends msg with op to the shard owning owner_id
 * (id % nshards; a shard index is its own owner) and answers with
 * pk_http_finish when the reply comes back.
 */
void pk_http_submit_op(pk_actor_t *a, h2o_req_t *req, pk_msg_t *msg, const pk_op_t *op, uint64_t owner_id);

/* Same for the worker pool. */
void pk_http_submit_work(pk_actor_t *a, h2o_req_t *req, pk_msg_t *msg);

/*
 * Next hop of an attached message (from an m_done): sends it to its shard
 * (work false) or the worker pool (work true).  When the client is gone the
 * message is freed; when the hop is refused the client gets 503.
 */
void pk_http_forward(pk_actor_t *a, pk_msg_t *msg, bool work);

/* A new message for a request, or NULL after answering 503 (too many in
 * flight on this thread). */
pk_msg_t *pk_http_msg_new(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);

/*
 * Parses the request body as a JSON object (or a MessagePack map when the
 * body format says so) into a jansson object.  On failure answers 400
 * invalid_request itself and returns -EINVAL.
 */
int pk_http_body(h2o_req_t *req, const pk_http_args_t *args, json_t **out) PK_MUST_USE;

/*
 * Field readers: on a missing (when required) or invalid field (null
 * included: these fields are not nullable) they answer 400 invalid_request
 * naming the field and return -EINVAL; an absent optional field returns 1
 * and leaves the output alone.
 */
int pk_http_field_str(h2o_req_t *req, const pk_http_args_t *args, json_t *obj, const char *name, bool required,
                      const char **s, size_t *len) PK_MUST_USE;
int pk_http_field_int(h2o_req_t *req, const pk_http_args_t *args, json_t *obj, const char *name, bool required,
                      int64_t min, int64_t max, int64_t *out) PK_MUST_USE;
/* pk_http_field_int for obj[key] named label in errors ("items[2].quantity"). */
int pk_http_field_int_at(h2o_req_t *req, const pk_http_args_t *args, json_t *obj, const char *key,
                         const char *label, bool required, int64_t min, int64_t max, int64_t *out) PK_MUST_USE;
/* Answers 400 invalid_request with "<field>: <why>". */
void pk_http_invalid(h2o_req_t *req, const pk_http_args_t *args, const char *field, const char *why);

/*
 * Answers a list request (?limit=, ?after=, and ?<filter_name>= parsed by
 * parse_filter into a non-negative int, or -1 for unknown) by sending op to
 * every shard and merging their pk_msg_list_t parts (src/http/list.c).
 */
void pk_http_list(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args, const pk_op_t *op,
                  const char *filter_name, int (*parse_filter)(const char *value));

/* GET /metrics (src/http/metrics.c). */
void pk_h_metrics(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);

/* Handlers of the users/auth slice (src/http/users.c). */
void pk_h_sign_up(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);
void pk_h_sign_in(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);
void pk_h_users_me(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);
void pk_h_user_role(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);

/* Product endpoints (src/http/products.c). */
void pk_h_product_create(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);
void pk_h_product_get(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);
void pk_h_product_list(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);
void pk_h_product_patch(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);
void pk_h_product_stock(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);

/* Sale endpoints (src/http/sales.c). */
void pk_h_sale_create(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);
void pk_h_sale_get(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);
void pk_h_sale_list(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);

/* Order, delivery and notification endpoints (src/http/orders.c). */
void pk_h_order_create(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);
void pk_h_order_list(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);
void pk_h_order_get(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);
void pk_h_order_pay(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);
void pk_h_order_cancel(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);
void pk_h_order_delivery(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);
void pk_h_delivery_ship(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);
void pk_h_delivery_complete(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);
void pk_h_note_list(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args);

#endif
