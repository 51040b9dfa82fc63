/* Product endpoints. */
#include <string.h>

#include "pickple/http.h"
#include "pickple/products.h"

/* Reads the optional/required text fields of a product body into p.
 * Returns 0 or -EINVAL (answered). */
static int pk__product_fields(h2o_req_t *req, const pk_http_args_t *args, json_t *body, bool create,
                              pk_product_t *p, unsigned *fields)
{
    const char *s;
    size_t len;
    int64_t price;
    int rc = pk_http_field_str(req, args, body, "name", create, &s, &len);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        if (!pk_product_name_valid(s, len)) {
            pk_http_invalid(req, args, "name", "must be 1..200 bytes and not blank");
            return -EINVAL;
        }
        memcpy(p->p_name, s, len);
        p->p_name[len] = '\0';
        p->p_name_len = (uint16_t)len;
        *fields |= PK_PRODUCT_F_NAME;
    }
    rc = pk_http_field_str(req, args, body, "description", false, &s, &len);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        if (len > PK_PRODUCT_DESCRIPTION_BYTES_MAX) {
            pk_http_invalid(req, args, "description", "must be at most 2000 bytes");
            return -EINVAL;
        }
        memcpy(p->p_description, s, len);
        p->p_description[len] = '\0';
        p->p_description_len = (uint16_t)len;
        *fields |= PK_PRODUCT_F_DESCRIPTION;
    }
    rc = pk_http_field_int(req, args, body, "price", create, 0, PK_PRICE_MAX, &price);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        p->p_price = price;
        *fields |= PK_PRODUCT_F_PRICE;
    }
    return 0;
}

void pk_h_product_create(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    json_t *body;
    int64_t stock;
    unsigned fields = 0;
    if (args->ha_claims.jc_role == PK_ROLE_CUSTOMER) {
        pk_http_error(req, args->ha_fmt_out, 403, "forbidden", "only sellers and admins can create products");
        return;
    }
    if (pk_http_body(req, args, &body) != 0)
        return;
    pk_msg_t *msg = pk_http_msg_new(a, req, args);
    if (msg == NULL)
        goto done;
    pk_product_t *p = &msg->u.product.mp_product;
    if (pk__product_fields(req, args, body, true, p, &fields) != 0 ||
        pk_http_field_int(req, args, body, "stock", true, 0, PK_STOCK_MAX, &stock) != 0) {
        pk_msg_free(a, msg);
        goto done;
    }
    p->p_stock = stock;
    /* A new product lives on this thread's own shard: no hop to create it. */
    pk_http_submit_op(a, req, msg, &pk_op_product_create, a->a_index);
done:
    json_decref(body);
}

static void pk__by_id(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args, const pk_op_t *op)
{
    pk_msg_t *msg = pk_http_msg_new(a, req, args);
    if (msg == NULL)
        return;
    msg->u.product.mp_product.p_id = args->ha_id;
    pk_http_submit_op(a, req, msg, op, args->ha_id);
}

void pk_h_product_get(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    pk__by_id(a, req, args, &pk_op_product_get);
}

void pk_h_product_list(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    pk_http_list(a, req, args, &pk_op_product_list, NULL, NULL);
}

void pk_h_product_patch(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    json_t *body;
    unsigned fields = 0;
    if (args->ha_claims.jc_role == PK_ROLE_CUSTOMER) {
        pk_http_error(req, args->ha_fmt_out, 403, "forbidden", "only the product's seller or an admin can change it");
        return;
    }
    if (pk_http_body(req, args, &body) != 0)
        return;
    pk_msg_t *msg = pk_http_msg_new(a, req, args);
    if (msg == NULL)
        goto done;
    if (pk__product_fields(req, args, body, false, &msg->u.product.mp_product, &fields) != 0) {
        pk_msg_free(a, msg);
        goto done;
    }
    msg->u.product.mp_fields = fields;
    msg->u.product.mp_product.p_id = args->ha_id;
    pk_http_submit_op(a, req, msg, &pk_op_product_patch, args->ha_id);
done:
    json_decref(body);
}

void pk_h_product_stock(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args)
{
    json_t *body;
    int64_t delta;
    if (args->ha_claims.jc_role == PK_ROLE_CUSTOMER) {
        pk_http_error(req, args->ha_fmt_out, 403, "forbidden", "only the product's seller or an admin can change it");
        return;
    }
    if (pk_http_body(req, args, &body) != 0)
        return;
    if (pk_http_field_int(req, args, body, "delta", true, -PK_STOCK_MAX, PK_STOCK_MAX, &delta) != 0)
        goto done;
    if (delta == 0) {
        pk_http_invalid(req, args, "delta", "must not be 0");
        goto done;
    }
    pk_msg_t *msg = pk_http_msg_new(a, req, args);
    if (msg == NULL)
        goto done;
    msg->u.product.mp_delta = delta;
    msg->u.product.mp_product.p_id = args->ha_id;
    pk_http_submit_op(a, req, msg, &pk_op_product_stock, args->ha_id);
done:
    json_decref(body);
}
