/* The value an outbox event is mirrored with: the envelope around the
 * event's data, rendered on the publisher thread (include/pickple/kafka.h). */
#include <errno.h>
#include <stdio.h>

#include "pickple/kafka.h"
#include "pickple/order.h"
#include "pickple/out.h"

static void (*const pk__order_views[PK_EVENT_BODY_COUNT])(const pk_order_t *, pk_out_t *) = {
    [PK_EVENT_ORDER] = pk_order_render,
    [PK_EVENT_PAYMENT] = pk_payment_render,
    [PK_EVENT_PAYMENT_FAILED] = pk_payment_failed_render,
    [PK_EVENT_DELIVERY] = pk_delivery_render,
};

int pk_kafka_event_value(const pk_outbox_event_t *ev, unsigned shard, uint64_t seq, pk_buf_t *out)
{
    pk_order_t o;
    pk_out_t w;
    char event_id[48];
    if (ev->oe_schema == 1)
        return pk_buf_append(out, ev->oe_body, ev->oe_body_len) == 0 ? 0 : -ENOMEM;
    if (ev->oe_body_kind != PK_EVENT_JSON && pk_order_decode(ev->oe_body, ev->oe_body_len, &o) != 0)
        return PK_EFORMAT;
    snprintf(event_id, sizeof(event_id), "%u-%llu", shard, (unsigned long long)seq);
    pk_out_init(&w, PK_FMT_JSON);
    pk_out_map(&w, 4);
    pk_out_key(&w, "event_id");
    pk_out_cstr(&w, event_id);
    pk_out_key(&w, "type");
    pk_out_str(&w, ev->oe_type, ev->oe_type_len);
    pk_out_key(&w, "occurred_at");
    pk_out_time(&w, ev->oe_occurred_ms);
    pk_out_key(&w, "data");
    if (ev->oe_body_kind == PK_EVENT_JSON)
        pk_out_raw(&w, ev->oe_body, ev->oe_body_len);
    else
        pk__order_views[ev->oe_body_kind](&o, &w);
    pk_out_end(&w);
    return pk_out_finish(&w, out);
}
