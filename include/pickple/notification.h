/*
 * Notifications for customers: created on the order's home shard when the
 * order is paid, expired or cancelled and when its delivery ships or
 * completes.  The record, its text and its stored form (pure, no I/O).
 */
#ifndef PICKPLE_NOTIFICATION_H
#define PICKPLE_NOTIFICATION_H

#include <stdint.h>

#include "pickple/common.h"
#include "pickple/order.h"
#include "pickple/out.h"

#define PK_NOTE_SUBJECT_BYTES_MAX 120
#define PK_NOTE_BODY_BYTES_MAX 400

typedef enum pk_note_kind {
    PK_NOTE_ORDER_PAID = 0,
    PK_NOTE_ORDER_EXPIRED,
    PK_NOTE_ORDER_CANCELLED,
    PK_NOTE_DELIVERY_SHIPPED,
    PK_NOTE_DELIVERY_COMPLETED,
    PK_NOTE_KIND_COUNT,
} pk_note_kind_t;

typedef struct pk_note {
    uint64_t n_id;
    uint64_t n_user_id;
    uint64_t n_order_id;
    uint8_t n_kind;
    int64_t n_created_ms;
    uint16_t n_subject_len, n_body_len;
    char n_subject[PK_NOTE_SUBJECT_BYTES_MAX + 1];
    char n_body[PK_NOTE_BODY_BYTES_MAX + 1];
} pk_note_t;

const char *pk_note_kind_name(pk_note_kind_t k);

/* Fills n (all but n_id) for kind about order o at now_ms. */
void pk_note_compose(pk_note_t *n, pk_note_kind_t kind, const pk_order_t *o, int64_t now_ms);

int pk_note_encode(const pk_note_t *n, pk_buf_t *out) PK_MUST_USE;
int pk_note_decode(const void *data, size_t len, pk_note_t *n) PK_MUST_USE;
void pk_note_render(const pk_note_t *n, pk_out_t *out);

#endif
