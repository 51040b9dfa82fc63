/*
 * One HTTP/2 client connection over cleartext TCP (h2c with prior
 * knowledge): a nonblocking socket, an nghttp2 client session, and a fixed
 * array of request slots, one per stream it may have in flight.
 *
 * nghttp2 is driven in memory (mem_recv / mem_send) so that everything it
 * wants to write between two flushes leaves in one send() call: with many
 * small requests per connection that is the difference between one system
 * call per request and one per batch.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pb.h"

#define PB__READ_BYTES (64 * 1024)
#define PB__WINDOW_BYTES (1 << 24) /* never let flow control pace responses */
#define PB__RESP_BYTES_MAX (16 * 1024 * 1024)

uint64_t pb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pb__finish(pb_conn_t *c, pb_req_t *rq)
{
    if (!rq->rq_busy)
        return;
    rq->rq_busy = false;
    c->cn_inflight--;
    c->cn_done(c, rq, c->cn_arg);
}

/* The connection is unusable: every request in flight fails (status 0). */
static void pb__die(pb_conn_t *c)
{
    if (c->cn_dead)
        return;
    c->cn_dead = true;
    if (c->cn_fd >= 0) {
        close(c->cn_fd); /* also leaves any epoll set */
        c->cn_fd = -1;
    }
    for (unsigned i = 0; i < c->cn_nslots; i++) {
        if (c->cn_slots[i].rq_busy) {
            c->cn_slots[i].rq_status = 0;
            pb__finish(c, &c->cn_slots[i]);
        }
    }
}

static int pb__on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                         const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_RESPONSE)
        return 0;
    if (namelen != 7 || memcmp(name, ":status", 7) != 0 || valuelen != 3)
        return 0;
    pb_req_t *rq = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (rq == NULL)
        return 0;
    unsigned v = (unsigned)(value[0] - '0') * 100 + (unsigned)(value[1] - '0') * 10 + (unsigned)(value[2] - '0');
    rq->rq_status = v < PB_STATUS_MAX ? (uint16_t)v : 0;
    return 0;
}

static int pb__on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                       void *user)
{
    pb_req_t *rq = nghttp2_session_get_stream_user_data(s, stream_id);
    if (rq == NULL || !rq->rq_want_body)
        return 0;
    if (rq->rq_resp_len + len + 1 > rq->rq_resp_cap) {
        size_t cap = rq->rq_resp_cap ? rq->rq_resp_cap : 4096;
        while (cap < rq->rq_resp_len + len + 1)
            cap *= 2;
        if (cap > PB__RESP_BYTES_MAX)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream: a failed request */
        char *p = realloc(rq->rq_resp, cap);
        if (p == NULL)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        rq->rq_resp = p;
        rq->rq_resp_cap = cap;
    }
    memcpy(rq->rq_resp + rq->rq_resp_len, data, len);
    rq->rq_resp_len += len;
    rq->rq_resp[rq->rq_resp_len] = '\0';
    return 0;
}

static int pb__on_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *user)
{
    pb_conn_t *c = user;
    pb_req_t *rq = nghttp2_session_get_stream_user_data(s, stream_id);
    if (rq == NULL)
        return 0;
    /* A reset stream is a failed request even when a status came first. */
    if (error_code != NGHTTP2_NO_ERROR)
        rq->rq_status = 0;
    pb__finish(c, rq);
    return 0;
}

static int pb__on_frame(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    pb_conn_t *c = user;
    if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK))
        c->cn_settings_seen = true;
    else if (frame->hd.type == NGHTTP2_GOAWAY)
        c->cn_goaway++;
    return 0;
}

static ssize_t pb__read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                             uint32_t *data_flags, nghttp2_data_source *source, void *user)
{
    pb_req_t *rq = source->ptr;
    size_t n = rq->rq_body_len - rq->rq_body_off;
    if (n > length)
        n = length;
    memcpy(buf, rq->rq_body + rq->rq_body_off, n);
    rq->rq_body_off += n;
    if (rq->rq_body_off == rq->rq_body_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

int pb_conn_open(pb_conn_t *c, const struct sockaddr_in *addr, const char *authority, unsigned nslots,
                 pb_done_fn *done, void *arg)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    int rc, one = 1;

    memset(c, 0, sizeof(*c));
    c->cn_authority = authority;
    c->cn_done = done;
    c->cn_arg = arg;
    c->cn_nslots = nslots;
    c->cn_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->cn_fd < 0)
        return -errno;
    if (connect(c->cn_fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0) {
        rc = -errno;
        goto fail;
    }
    if (setsockopt(c->cn_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        fcntl(c->cn_fd, F_SETFL, fcntl(c->cn_fd, F_GETFL) | O_NONBLOCK) != 0) {
        rc = -errno;
        goto fail;
    }
    c->cn_slots = calloc(nslots, sizeof(*c->cn_slots));
    if (c->cn_slots == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    for (unsigned i = 0; i < nslots; i++)
        c->cn_slots[i].rq_conn = c;

    if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0) {
        rc = -ENOMEM;
        goto fail;
    }
    nghttp2_session_callbacks_set_on_header_callback(cbs, pb__on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, pb__on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, pb__on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, pb__on_frame);
    /* Until the server's SETTINGS arrive nghttp2 assumes no stream limit;
     * 100 is what h2o announces, so the first burst never exceeds it. */
    nghttp2_option_set_peer_max_concurrent_streams(opt, 100);
    rc = nghttp2_session_client_new2(&c->cn_session, cbs, c, opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    cbs = NULL;
    opt = NULL;
    if (rc != 0) {
        c->cn_session = NULL;
        rc = -ENOMEM;
        goto fail;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, PB__WINDOW_BYTES},
    };
    if (nghttp2_submit_settings(c->cn_session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(c->cn_session, NGHTTP2_FLAG_NONE, 0, PB__WINDOW_BYTES) != 0) {
        rc = -ENOMEM;
        goto fail;
    }
    return 0;

fail:
    if (c->cn_session != NULL)
        nghttp2_session_del(c->cn_session);
    free(c->cn_slots);
    close(c->cn_fd);
    memset(c, 0, sizeof(*c));
    c->cn_fd = -1;
    c->cn_dead = true;
    return rc;
}

void pb_conn_close(pb_conn_t *c)
{
    pb__die(c);
    if (c->cn_session != NULL)
        nghttp2_session_del(c->cn_session);
    for (unsigned i = 0; i < c->cn_nslots; i++)
        free(c->cn_slots[i].rq_resp);
    free(c->cn_slots);
    free(c->cn_wbuf);
    c->cn_session = NULL;
    c->cn_slots = NULL;
    c->cn_wbuf = NULL;
    c->cn_nslots = 0;
}

pb_req_t *pb_conn_slot(pb_conn_t *c)
{
    if (c->cn_dead || c->cn_goaway || c->cn_inflight >= c->cn_nslots)
        return NULL;
    for (unsigned k = 0; k < c->cn_nslots; k++) {
        unsigned i = (c->cn_next_free + k) % c->cn_nslots;
        if (!c->cn_slots[i].rq_busy) {
            c->cn_next_free = (i + 1) % c->cn_nslots;
            pb_req_t *rq = &c->cn_slots[i];
            rq->rq_token = NULL;
            rq->rq_token_len = 0;
            rq->rq_body_len = 0;
            rq->rq_want_body = false;
            rq->rq_tag = 0;
            return rq;
        }
    }
    return NULL;
}

#define PB__NV(n, v, vlen)                                                                         \
    ((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen),                             \
                  NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE})

int pb_conn_submit(pb_conn_t *c, pb_req_t *rq)
{
    nghttp2_nv nva[7];
    size_t n = 0;
    /* Names and values stay valid until the stream closes (slot, run-long
     * tokens, static strings), after HEADERS went out: no copies needed. */
    nva[n++] = PB__NV(":method", rq->rq_method, strlen(rq->rq_method));
    nva[n++] = PB__NV(":scheme", "http", 4);
    nva[n++] = PB__NV(":authority", c->cn_authority, strlen(c->cn_authority));
    nva[n++] = PB__NV(":path", rq->rq_path, rq->rq_path_len);
    if (rq->rq_token != NULL)
        nva[n++] = PB__NV("authorization", rq->rq_token, rq->rq_token_len);
    nghttp2_data_provider prd = {.source.ptr = rq, .read_callback = pb__read_body};
    if (rq->rq_body_len > 0)
        nva[n++] = PB__NV("content-type", "application/json", 16);
    rq->rq_body_off = 0;
    rq->rq_status = 0;
    rq->rq_resp_len = 0;
    if (rq->rq_resp != NULL)
        rq->rq_resp[0] = '\0';
    int32_t id = nghttp2_submit_request(c->cn_session, NULL, nva, n, rq->rq_body_len > 0 ? &prd : NULL, rq);
    if (id < 0)
        return id;
    rq->rq_busy = true;
    c->cn_inflight++;
    return 0;
}

int pb_conn_read(pb_conn_t *c)
{
    uint8_t buf[PB__READ_BYTES];
    if (c->cn_dead)
        return -1;
    for (;;) {
        ssize_t n = recv(c->cn_fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0) {
            pb__die(c);
            return -1;
        }
        ssize_t used = nghttp2_session_mem_recv(c->cn_session, buf, (size_t)n);
        if (used < 0 || used != n) {
            pb__die(c);
            return -1;
        }
        if ((size_t)n < sizeof(buf))
            return 0;
    }
}

int pb_conn_flush(pb_conn_t *c)
{
    if (c->cn_dead)
        return -1;
    /* Gather everything nghttp2 has to say behind what is still unsent. */
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->cn_session, &data);
        if (n < 0) {
            pb__die(c);
            return -1;
        }
        if (n == 0)
            break;
        if (c->cn_woff > 0 && c->cn_woff == c->cn_wlen)
            c->cn_woff = c->cn_wlen = 0;
        if (c->cn_wlen + (size_t)n > c->cn_wcap) {
            size_t cap = c->cn_wcap ? c->cn_wcap : 16384;
            while (cap < c->cn_wlen + (size_t)n)
                cap *= 2;
            uint8_t *p = realloc(c->cn_wbuf, cap);
            if (p == NULL) {
                pb__die(c);
                return -1;
            }
            c->cn_wbuf = p;
            c->cn_wcap = cap;
        }
        memcpy(c->cn_wbuf + c->cn_wlen, data, (size_t)n);
        c->cn_wlen += (size_t)n;
    }
    while (c->cn_woff < c->cn_wlen) {
        ssize_t n = send(c->cn_fd, c->cn_wbuf + c->cn_woff, c->cn_wlen - c->cn_woff, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        if (n < 0) {
            pb__die(c);
            return -1;
        }
        c->cn_woff += (size_t)n;
    }
    c->cn_woff = c->cn_wlen = 0;
    /* After GOAWAY and the last stream, the session has nothing more to do. */
    if (!nghttp2_session_want_read(c->cn_session) && !nghttp2_session_want_write(c->cn_session)) {
        pb__die(c);
        return -1;
    }
    return 0;
}

int pb_conn_handshake(pb_conn_t *c, int timeout_ms)
{
    uint64_t deadline = pb_now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (!c->cn_settings_seen) {
        int pending = pb_conn_flush(c);
        if (pending < 0)
            return -EPROTO;
        uint64_t now = pb_now_ns();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = c->cn_fd, .events = POLLIN | (pending ? POLLOUT : 0)};
        int left_ms = (int)((deadline - now) / 1000000u) + 1;
        if (poll(&p, 1, left_ms) < 0 && errno != EINTR)
            return -errno;
        if ((p.revents & (POLLIN | POLLHUP | POLLERR)) && pb_conn_read(c) != 0)
            return -EPROTO;
    }
    return pb_conn_flush(c) < 0 ? -EPROTO : 0;
}
