/* List pages across shards: the connection thread scatters one message per
 * shard, each shard renders its next items, and the gather merges them by
 * id into the contract's {"items": [...], "next": id|null}. */
#include <stdlib.h>
#include <string.h>

#include "pickple/http.h"

/* Parses ?limit= (1..100, default 20) and ?after= (default 0).  Answers 400
 * itself and returns -EINVAL on a bad value. */
static int pk__list_query(h2o_req_t *req, const pk_http_args_t *args, uint32_t *limit, uint64_t *after,
                          char *filter, size_t filter_size, const char *filter_name)
{
    *limit = 20;
    *after = 0;
    if (filter != NULL)
        filter[0] = '\0';
    if (req->query_at == SIZE_MAX)
        return 0;
    const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(stop - q));
        if (eq != NULL) {
            size_t klen = (size_t)(eq - q), vlen = (size_t)(stop - eq - 1);
            char v[32];
            if (vlen < sizeof(v)) {
                memcpy(v, eq + 1, vlen);
                v[vlen] = '\0';
            }
            uint64_t n;
            if (klen == 5 && memcmp(q, "limit", 5) == 0) {
                if (vlen >= sizeof(v) || pk_parse_u64(v, 1, PK_LIST_LIMIT_MAX, &n) != 0) {
                    pk_http_invalid(req, args, "limit", "must be an integer between 1 and 100");
                    return -EINVAL;
                }
                *limit = (uint32_t)n;
            } else if (klen == 5 && memcmp(q, "after", 5) == 0) {
                if (vlen >= sizeof(v) || pk_parse_u64(v, 0, PK_ID_MAX, &n) != 0) {
                    pk_http_invalid(req, args, "after", "must be an id");
                    return -EINVAL;
                }
                *after = n;
            } else if (filter != NULL && klen == strlen(filter_name) && memcmp(q, filter_name, klen) == 0) {
                if (vlen >= filter_size || vlen >= sizeof(v)) {
                    pk_http_invalid(req, args, filter_name, "unknown value");
                    return -EINVAL;
                }
                memcpy(filter, v, vlen + 1);
            }
        }
        q = stop + 1;
    }
    return 0;
}

/* Drops one hold on parent; the last one merges the parts and answers. */
static void pk__gather_release(pk_actor_t *a, pk_msg_t *parent)
{
    if (--parent->m_children_waiting > 0)
        return;
    /* Every shard answered: merge ascending by id. */
    uint32_t limit = parent->u.list.ml_limit, taken = 0, idx[PK_THREADS_MAX] = {0};
    const char *fail = NULL;
    for (uint32_t c = 0; c < parent->m_children_count; c++)
        if (parent->m_children[c]->m_err_code != NULL)
            fail = parent->m_children[c]->m_err_message;
    pk_out_t o;
    pk_out_init(&o, parent->m_fmt);
    if (fail == NULL) {
        uint32_t total = 0;
        for (uint32_t c = 0; c < parent->m_children_count; c++)
            total += parent->m_children[c]->u.list.ml_count;
        uint32_t count = total < limit ? total : limit;
        uint64_t last = 0;
        pk_out_map(&o, 2);
        pk_out_key(&o, "items");
        pk_out_array(&o, count);
        for (; taken < count; taken++) {
            uint32_t best = UINT32_MAX;
            for (uint32_t c = 0; c < parent->m_children_count; c++) {
                pk_msg_list_t *l = &parent->m_children[c]->u.list;
                if (idx[c] < l->ml_count &&
                    (best == UINT32_MAX || l->ml_ids[idx[c]] < parent->m_children[best]->u.list.ml_ids[idx[best]]))
                    best = c;
            }
            pk_msg_t *ch = parent->m_children[best];
            uint32_t i = idx[best]++;
            last = ch->u.list.ml_ids[i];
            pk_out_raw(&o, ch->m_body.b_data + ch->u.list.ml_offsets[i],
                       ch->u.list.ml_offsets[i + 1] - ch->u.list.ml_offsets[i]);
        }
        pk_out_end(&o);
        pk_out_key(&o, "next");
        if (total > limit)
            pk_out_u64(&o, last);
        else
            pk_out_null(&o);
        pk_out_end(&o);
        if (pk_out_finish(&o, &parent->m_body) == 0)
            parent->m_status = 200;
        else
            pk_msg_error(parent, 500, "internal", "cannot render the page");
    } else {
        pk_msg_error(parent, 503, "unavailable", fail);
    }
    for (uint32_t c = 0; c < parent->m_children_count; c++)
        pk_msg_free(a, parent->m_children[c]);
    free(parent->m_children);
    parent->m_children = NULL;
    pk_http_finish(a, parent);
}

static void pk__gather_done(pk_actor_t *a, pk_msg_t *child)
{
    pk__gather_release(a, child->m_parent);
}

void pk_http_list(pk_actor_t *a, h2o_req_t *req, const pk_http_args_t *args, const pk_op_t *op,
                  const char *filter_name, int (*parse_filter)(const char *value))
{
    uint32_t limit;
    uint64_t after;
    char filter[32];
    int filter_value = -1;
    unsigned n = a->a_rt->rt_nactors;
    if (pk__list_query(req, args, &limit, &after, filter, sizeof(filter), filter_name ? filter_name : "") != 0)
        return;
    if (filter_name != NULL && filter[0] != '\0') {
        filter_value = parse_filter(filter);
        if (filter_value < 0) {
            pk_http_invalid(req, args, filter_name, "unknown value");
            return;
        }
    }
    pk_msg_t *parent = pk_http_msg_new(a, req, args);
    if (parent == NULL)
        return;
    parent->u.list.ml_limit = limit;
    parent->m_children = calloc(n, sizeof(pk_msg_t *));
    if (parent->m_children == NULL || pk_http_attach(req, parent) != 0) {
        free(parent->m_children);
        pk_http_unavailable(req, args->ha_fmt_out, "out of memory");
        pk_msg_free(a, parent);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        pk_msg_t *child = pk_msg_new(a);
        if (child == NULL) {
            /* Nothing was sent yet: give everything back and answer busy. */
            for (uint32_t c = 0; c < parent->m_children_count; c++)
                pk_msg_free(a, parent->m_children[c]);
            free(parent->m_children);
            parent->m_children = NULL;
            pk_http_detach(parent);
            pk_http_unavailable(req, args->ha_fmt_out, "too many requests in flight; retry shortly");
            pk_msg_free(a, parent);
            return;
        }
        child->m_parent = parent;
        child->m_fmt = parent->m_fmt;
        child->m_now_ms = parent->m_now_ms;
        child->m_subject = parent->m_subject;
        child->m_subject_role = parent->m_subject_role;
        child->m_op = op;
        child->m_shard = (uint16_t)i;
        child->m_done = pk__gather_done;
        child->u.list.ml_after = after;
        child->u.list.ml_limit = limit;
        child->u.list.ml_filter = filter_value;
        parent->m_children[parent->m_children_count++] = child;
    }
    /* One hold for the sending loop itself, so a child answered at once
     * (refused send) cannot finish the page before all are sent. */
    parent->m_children_waiting = parent->m_children_count + 1;
    for (uint32_t i = 0; i < parent->m_children_count; i++) {
        pk_msg_t *child = parent->m_children[i];
        if (pk_actor_send(a, child) != 0) {
            pk_msg_error(child, 503, "unavailable", "server busy; retry shortly");
            pk__gather_done(a, child);
        }
    }
    /* Drop the sending loop's hold; finishes the page if everything is back. */
    pk__gather_release(a, parent);
}
