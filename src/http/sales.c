/* Sale endpoints. */
#include <string.h>

#include "pickple/http.h"
#include "pickple/sales.h"

static int pk__time_field(h2o_req_t *req, const pk_http_args_t *args, json_t *body, const char *name, int64_t *ms)
{
    const char *s;
    size_t len;
    if (pk_http_field_str(req, args, body, name, true, &s, &len) != 0)
        return -EINVAL;
    if (pk_time_parse(s, len, ms) != 0) {
        pk_http_invalid(req, args, name, "must be an RFC 3339 time such as 2026-11-24T10:00:00Z");
        return -EINVAL;
    }
    return 0;
}

void pk_h_sale_create(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    json_t *body;
    int64_t product_id, limit = 1;
    pk_sale_t s = {0};
    const char *why, *field;
    if (args->ha_claims.jc_role == PK_ROLE_CUSTOMER) {
        pk_http_error(req, args->ha_fmt_out, 403, "forbidden", "only sellers and admins can create sales");
        return;
    }
    if (pk_http_body(req, args, &body) != 0)
        return;
    if (pk_http_field_int(req, args, body, "product_id", true, 1, (int64_t)PK_ID_MAX, &product_id) != 0 ||
        pk_http_field_int(req, args, body, "price", true, 0, PK_PRICE_MAX, &s.s_price) != 0 ||
        pk_http_field_int(req, args, body, "quantity", true, 1, PK_STOCK_MAX, &s.s_quantity) != 0 ||
        pk__time_field(req, args, body, "starts_at", &s.s_starts_ms) != 0 ||
        pk__time_field(req, args, body, "ends_at", &s.s_ends_ms) != 0 ||
        pk_http_field_int(req, args, body, "per_user_limit", false, 1, PK_STOCK_MAX, &limit) < 0)
        goto done;
    s.s_product_id = (uint64_t)product_id;
    s.s_per_user_limit = limit;
    if ((field = pk_sale_validate(&s, args->ha_now_ms, &why)) != NULL) {
        pk_http_invalid(req, args, field, why);
        goto done;
    }
    pk_msg_t *msg = pk_http_msg_new(a, req, args);
    if (msg == NULL)
        goto done;
    msg->u.sale.ms_sale = s;
    pk_http_submit_op(a, req, msg, &pk_op_sale_create, s.s_product_id);
done:
    json_decref(body);
}

void pk_h_sale_get(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    pk_msg_t *msg = pk_http_msg_new(a, req, args);
    if (msg == NULL)
        return;
    msg->u.sale.ms_sale.s_id = args->ha_id;
    pk_http_submit_op(a, req, msg, &pk_op_sale_get, args->ha_id);
}

void pk_h_sale_list(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    pk_http_list(a, req, args, &pk_op_sale_list, "state", pk_sale_state_parse);
}
