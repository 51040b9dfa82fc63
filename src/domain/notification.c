/* Notifications: their text, stored form and document. */
#include <stdio.h>
#include <string.h>

#include "pickple/codec.h"
#include "pickple/notification.h"

static const char *const pk__kind_names[PK_NOTE_KIND_COUNT] = {
    "order_paid", "order_expired", "order_cancelled", "delivery_shipped", "delivery_completed",
};

const char *pk_note_kind_name(pk_note_kind_t k)
{
    return (unsigned)k < PK_NOTE_KIND_COUNT ? pk__kind_names[k] : "unknown";
}

static uint16_t pk__fmt_len(int n, size_t size)
{
    if (n < 0)
        return 0;
    return (uint16_t)((size_t)n < size ? (size_t)n : size - 1);
}

void pk_note_compose(pk_note_t *n, pk_note_kind_t kind, const pk_order_t *o, int64_t now_ms)
{
    unsigned long long id = (unsigned long long)o->o_id;
    const char *subject = "", *body = "";
    char extra[160] = "";
    memset(n, 0, sizeof(*n));
    n->n_user_id = o->o_user_id;
    n->n_order_id = o->o_id;
    n->n_kind = (uint8_t)kind;
    n->n_created_ms = now_ms;
    switch (kind) {
    case PK_NOTE_ORDER_PAID:
        subject = "Payment received for order %llu";
        body = "We received your payment of %lld for order %llu. We will let you know when it ships.";
        break;
    case PK_NOTE_ORDER_EXPIRED:
        subject = "Order %llu expired";
        body = "Order %llu was not paid before its deadline; its items were released.";
        break;
    case PK_NOTE_ORDER_CANCELLED:
        subject = "Order %llu cancelled";
        body = o->o_payment.pa_status == PK_PAYMENT_REFUNDED
                   ? "Order %llu was cancelled and your payment of %lld was refunded."
                   : "Order %llu was cancelled.";
        break;
    case PK_NOTE_DELIVERY_SHIPPED:
        subject = "Order %llu has shipped";
        snprintf(extra, sizeof(extra), " Carrier: %.*s, tracking number: %.*s.", (int)o->o_delivery.de_carrier_len,
                 o->o_delivery.de_carrier, (int)o->o_delivery.de_tracking_len, o->o_delivery.de_tracking);
        body = "Order %llu is on its way.";
        break;
    case PK_NOTE_DELIVERY_COMPLETED:
        subject = "Order %llu was delivered";
        body = "Order %llu was delivered. Enjoy!";
        break;
    default:
        break;
    }
    n->n_subject_len = pk__fmt_len(snprintf(n->n_subject, sizeof(n->n_subject), subject, id), sizeof(n->n_subject));
    int len;
    if (kind == PK_NOTE_ORDER_PAID)
        len = snprintf(n->n_body, sizeof(n->n_body), body, (long long)o->o_payment.pa_amount, id);
    else if (kind == PK_NOTE_ORDER_CANCELLED && o->o_payment.pa_status == PK_PAYMENT_REFUNDED)
        len = snprintf(n->n_body, sizeof(n->n_body), body, id, (long long)o->o_payment.pa_amount);
    else
        len = snprintf(n->n_body, sizeof(n->n_body), body, id);
    n->n_body_len = pk__fmt_len(len, sizeof(n->n_body));
    if (extra[0] != '\0') {
        size_t room = sizeof(n->n_body) - 1 - n->n_body_len, add = strlen(extra);
        add = add < room ? add : room;
        memcpy(n->n_body + n->n_body_len, extra, add);
        n->n_body_len = (uint16_t)(n->n_body_len + add);
        n->n_body[n->n_body_len] = '\0';
    }
}

enum { PK__NOTE_SCHEMA = 1, PK__NOTE_FIELDS = 7 };

int pk_note_encode(const pk_note_t *n, pk_buf_t *out)
{
    msgpack_packer pk;
    pk_codec_rec_t rec;
    pk_codec_rec_begin(&rec, &pk, out);
    msgpack_pack_array(&pk, PK__NOTE_FIELDS);
    msgpack_pack_uint64(&pk, PK__NOTE_SCHEMA);
    msgpack_pack_uint64(&pk, n->n_id);
    msgpack_pack_uint64(&pk, n->n_user_id);
    msgpack_pack_uint64(&pk, n->n_order_id);
    msgpack_pack_uint64(&pk, n->n_kind);
    msgpack_pack_int64(&pk, n->n_created_ms);
    msgpack_pack_array(&pk, 2);
    pk_codec_pack_str(&pk, n->n_subject, n->n_subject_len);
    pk_codec_pack_str(&pk, n->n_body, n->n_body_len);
    return pk_codec_rec_end(&rec);
}

int pk_note_decode(const void *data, size_t len, pk_note_t *n)
{
    msgpack_unpacked up;
    msgpack_object *f, *t;
    uint64_t schema, kind;
    size_t sl, bl;
    const uint64_t id_max = (1ull << 53) - 1;
    int rc = pk_codec_unpack(data, len, &up);
    if (rc != 0)
        return rc;
    rc = PK_EFORMAT;
    if (pk_codec_array(&up.data, PK__NOTE_FIELDS, &f) != 0 || pk_codec_u64(&f[0], UINT32_MAX, &schema) != 0 ||
        schema != PK__NOTE_SCHEMA || pk_codec_u64(&f[1], id_max, &n->n_id) != 0 ||
        pk_codec_u64(&f[2], id_max, &n->n_user_id) != 0 || pk_codec_u64(&f[3], id_max, &n->n_order_id) != 0 ||
        pk_codec_u64(&f[4], PK_NOTE_KIND_COUNT - 1, &kind) != 0 || pk_codec_i64(&f[5], &n->n_created_ms) != 0 ||
        pk_codec_array(&f[6], 2, &t) != 0 ||
        pk_codec_str(&t[0], 0, PK_NOTE_SUBJECT_BYTES_MAX, n->n_subject, &sl) != 0 ||
        pk_codec_str(&t[1], 0, PK_NOTE_BODY_BYTES_MAX, n->n_body, &bl) != 0)
        goto fail;
    n->n_kind = (uint8_t)kind;
    n->n_subject_len = (uint16_t)sl;
    n->n_body_len = (uint16_t)bl;
    rc = 0;
fail:
    msgpack_unpacked_destroy(&up);
    return rc;
}

void pk_note_render(const pk_note_t *n, pk_out_t *out)
{
    pk_out_map(out, 6);
    pk_out_key(out, "notification_id");
    pk_out_u64(out, n->n_id);
    pk_out_key(out, "kind");
    pk_out_cstr(out, pk_note_kind_name(n->n_kind));
    pk_out_key(out, "order_id");
    pk_out_u64(out, n->n_order_id);
    pk_out_key(out, "subject");
    pk_out_str(out, n->n_subject, n->n_subject_len);
    pk_out_key(out, "body");
    pk_out_str(out, n->n_body, n->n_body_len);
    pk_out_key(out, "created_at");
    pk_out_time(out, n->n_created_ms);
    pk_out_end(out);
}
