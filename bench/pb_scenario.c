/*
 * Scenarios: what each one creates through the API before the load, what
 * every request of the load is, and what is checked afterwards.  Requests
 * follow ../shared/api.md: a sale order is POST /api/v1/orders
 * {"sale_id", "quantity"} answered 201 (accepted) or 409 (sold_out,
 * purchase_limit_exceeded: rejected).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pickple/common.h"
#include "pb.h"

#define PB__HUGE 1000000000ll /* the contract's stock bound: a sale that never runs out */
#define PB__PRICE 1000
#define PB__SALE_PRICE 500
#define PB__CALL_MS 10000
#define PB__SPREAD_CONNS_MAX 32
#define PB__UNPAID_MAX 4096

/* ---- request helpers (worker threads) ----------------------------------- */

static void pb__path(pb_req_t *rq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pb__path(pb_req_t *rq, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(rq->rq_path, sizeof(rq->rq_path), fmt, ap);
    va_end(ap);
    rq->rq_path_len = n < 0 ? 0 : (size_t)n < sizeof(rq->rq_path) ? (size_t)n : sizeof(rq->rq_path) - 1;
}

static void pb__body(pb_req_t *rq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pb__body(pb_req_t *rq, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(rq->rq_body, sizeof(rq->rq_body), fmt, ap);
    va_end(ap);
    rq->rq_body_len = n < 0 ? 0 : (size_t)n < sizeof(rq->rq_body) ? (size_t)n : sizeof(rq->rq_body) - 1;
}

static void pb__user(pb_worker_t *w, pb_req_t *rq, uint32_t user)
{
    const pb_tokens_t *tk = &w->w_run->r_tokens;
    rq->rq_user = user;
    rq->rq_token = tk->tk_buf + tk->tk_offset[user];
    rq->rq_token_len = tk->tk_len[user];
}

static void pb__random_user(pb_worker_t *w, pb_req_t *rq)
{
    pb__user(w, rq, pb_rand_below(&w->w_rng, w->w_run->r_tokens.tk_count));
}

static void pb__sale_order(pb_worker_t *w, pb_req_t *rq, uint64_t sale_id)
{
    rq->rq_method = "POST";
    rq->rq_class = PB_CLASS_ORDER;
    pb__path(rq, "/api/v1/orders");
    pb__body(rq, "{\"sale_id\":%llu,\"quantity\":1}", (unsigned long long)sale_id);
}

/* A catalog order of n distinct random products, one unit each. */
static void pb__catalog_order(pb_worker_t *w, pb_req_t *rq, unsigned n)
{
    const pb_run_t *run = w->w_run;
    uint32_t pick[3];
    if (n > 3)
        n = 3;
    if (n > run->r_nproducts)
        n = run->r_nproducts;
    for (unsigned i = 0; i < n; i++) {
        bool again;
        do {
            pick[i] = pb_rand_below(&w->w_rng, run->r_nproducts);
            again = false;
            for (unsigned k = 0; k < i; k++)
                again |= pick[k] == pick[i];
        } while (again);
    }
    rq->rq_method = "POST";
    rq->rq_class = PB_CLASS_ORDER;
    pb__path(rq, "/api/v1/orders");
    char items[200];
    size_t len = 0;
    for (unsigned i = 0; i < n; i++)
        len += (size_t)snprintf(items + len, sizeof(items) - len, "%s{\"product_id\":%llu,\"quantity\":1}",
                                i ? "," : "", (unsigned long long)run->r_product_ids[pick[i]]);
    pb__body(rq, "{\"items\":[%s]}", items);
}

/* ---- setup helpers (main thread) ---------------------------------------- */

void pb_extra(pb_run_t *run, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = sizeof(run->r_extra) - run->r_extra_len;
    int n = vsnprintf(run->r_extra + run->r_extra_len, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        run->r_extra_len += (size_t)n < room ? (size_t)n : room - 1;
}

static int64_t pb__int(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

/* A call whose answer must be `want`; prints what went wrong otherwise.
 * Returns 0 and *out (caller decrefs) or -1. */
static int pb__expect(pb_api_t *api, const char *method, const char *path, const char *token, const char *body,
                      int want, json_t **out)
{
    json_t *doc = NULL;
    int status = pb_api_call(api, method, path, token, body, &doc, PB__CALL_MS);
    if (status == want) {
        if (out != NULL)
            *out = doc;
        else
            json_decref(doc);
        return 0;
    }
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (status < 0)
        fprintf(stderr, "pickple-bench: %s %s: no answer (%s)\n", method, path, strerror(-status));
    else
        fprintf(stderr, "pickple-bench: %s %s answered %d, wanted %d: %s\n", method, path, status, want,
                text ? text : "(no JSON body)");
    free(text);
    json_decref(doc);
    return -1;
}

static int pb__admin(pb_run_t *run)
{
    if (run->r_admin_token[0])
        return 0;
    /* The server trusts a valid token's claims: an admin needs no account. */
    int rc = pb_token_one(run->r_secret_path, run->r_user_base - 1, "admin", run->r_admin_token,
                          sizeof(run->r_admin_token));
    if (rc != 0)
        fprintf(stderr, "pickple-bench: cannot sign an admin token with %s: %s\n", run->r_secret_path,
                pk_strerror(rc));
    return rc;
}

static int pb__create_product(pb_run_t *run, pb_api_t *api, int64_t stock, uint64_t *id)
{
    char body[160];
    json_t *doc;
    snprintf(body, sizeof(body), "{\"name\":\"bench %s product\",\"price\":%d,\"stock\":%lld}", run->r_sc->sc_name,
             PB__PRICE, (long long)stock);
    if (pb__expect(api, "POST", "/api/v1/products", run->r_admin_token, body, 201, &doc) != 0)
        return -1;
    int64_t v = pb__int(doc, "product_id");
    json_decref(doc);
    if (v <= 0) {
        fprintf(stderr, "pickple-bench: product without a product_id\n");
        return -1;
    }
    *id = (uint64_t)v;
    return 0;
}

/* A live sale (started a second ago, ending in an hour) of a new product
 * holding exactly quantity units. */
static int pb__create_sale(pb_run_t *run, pb_api_t *api, int64_t quantity, int64_t limit, uint64_t *sale_id)
{
    uint64_t product_id;
    char body[300], starts[32], ends[32];
    json_t *doc;
    if (pb__create_product(run, api, quantity, &product_id) != 0)
        return -1;
    int64_t now = pk_now_ms();
    pk_time_format(now - 1000, starts, sizeof(starts));
    pk_time_format(now + 3600 * 1000, ends, sizeof(ends));
    snprintf(body, sizeof(body),
             "{\"product_id\":%llu,\"price\":%d,\"quantity\":%lld,\"starts_at\":\"%s\",\"ends_at\":\"%s\","
             "\"per_user_limit\":%lld}",
             (unsigned long long)product_id, PB__SALE_PRICE, (long long)quantity, starts, ends, (long long)limit);
    if (pb__expect(api, "POST", "/api/v1/sales", run->r_admin_token, body, 201, &doc) != 0)
        return -1;
    int64_t v = pb__int(doc, "sale_id");
    json_decref(doc);
    if (v <= 0) {
        fprintf(stderr, "pickple-bench: sale without a sale_id\n");
        return -1;
    }
    *sale_id = (uint64_t)v;
    run->r_sale_price = PB__SALE_PRICE;
    return 0;
}

/*
 * Creates run->r_products products of huge stock spread over every shard.
 * A product lives on the shard of the server thread that accepted the
 * connection it was created on (SO_REUSEPORT picks that thread), and a
 * shard is id % shards, so connections are opened until one reaches each
 * shard, then products are created round robin over those.
 */
static int pb__create_products(pb_run_t *run)
{
    pb_api_t apis[PB__SPREAD_CONNS_MAX];
    unsigned napi = 0, shards = run->r_nshards ? run->r_nshards : 1, covered = 0;
    int rc = -1;
    uint32_t want = run->r_products;

    run->r_product_ids = calloc(want, sizeof(*run->r_product_ids));
    if (run->r_product_ids == NULL)
        return -1;
    bool seen[PB__SPREAD_CONNS_MAX] = {false};
    if (shards > PB__SPREAD_CONNS_MAX)
        shards = PB__SPREAD_CONNS_MAX;
    for (unsigned tries = 0; tries < PB__SPREAD_CONNS_MAX && covered < shards && run->r_nproducts < want; tries++) {
        pb_api_t *api = &apis[napi];
        if (pb_api_open(api, &run->r_addr, run->r_authority) != 0)
            goto done;
        uint64_t id;
        if (pb__create_product(run, api, PB__HUGE, &id) != 0) {
            pb_api_close(api);
            goto done;
        }
        run->r_product_ids[run->r_nproducts++] = id;
        unsigned shard = (unsigned)(id % shards);
        if (!seen[shard]) {
            seen[shard] = true;
            covered++;
            napi++;
        } else {
            pb_api_close(api);
        }
    }
    if (covered < shards)
        fprintf(stderr, "pickple-bench: warning: products reach %u of %u shards\n", covered, shards);
    for (unsigned i = 0; run->r_nproducts < want; i++) {
        uint64_t id;
        if (pb__create_product(run, &apis[i % napi], PB__HUGE, &id) != 0)
            goto done;
        run->r_product_ids[run->r_nproducts++] = id;
    }
    rc = 0;
done:
    for (unsigned i = 0; i < napi; i++)
        pb_api_close(&apis[i]);
    return rc;
}

static int pb__open(pb_run_t *run, pb_api_t *api)
{
    int rc = pb_api_open(api, &run->r_addr, run->r_authority);
    if (rc != 0)
        fprintf(stderr, "pickple-bench: cannot reach %s over h2c: %s\n", run->r_authority, strerror(-rc));
    return rc;
}

/* ---- get: one fixed path, no token ----------------------------------- */

static void pb__get_next(pb_worker_t *w, pb_req_t *rq, uint64_t seq)
{
    const pb_run_t *run = w->w_run;
    rq->rq_method = "GET";
    memcpy(rq->rq_path, run->r_path, sizeof(rq->rq_path));
    rq->rq_path_len = strlen(rq->rq_path);
}

/* ---- users_me: the signed-in read path ---------------------------------- */

static int pb__users_me_setup(pb_run_t *run)
{
    pb_api_t api;
    uint32_t n = run->r_users < 16 ? run->r_users : 16; /* sign-up hashes a password: keep it few */
    uint64_t ids[16];
    if (pb__open(run, &api) != 0)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        char body[200];
        json_t *doc;
        snprintf(body, sizeof(body),
                 "{\"username\":\"bench_%d_%u\",\"password\":\"bench-password\",\"email\":\"b%u@example.invalid\"}",
                 (int)getpid(), i, i);
        if (pb__expect(&api, "POST", "/api/v1/auth/sign-up", NULL, body, 201, &doc) != 0) {
            pb_api_close(&api);
            return -1;
        }
        ids[i] = (uint64_t)pb__int(doc, "user_id");
        json_decref(doc);
    }
    pb_api_close(&api);
    pb_tokens_free(&run->r_tokens);
    int rc = pb_tokens_sign(&run->r_tokens, run->r_secret_path, ids, 0, n, 86400);
    pb_extra(run, ",\"signed_up\":%u", n);
    return rc;
}

static void pb__users_me_next(pb_worker_t *w, pb_req_t *rq, uint64_t seq)
{
    rq->rq_method = "GET";
    pb__path(rq, "/api/v1/users/me");
    pb__random_user(w, rq);
}

/* ---- flash: Q units, U users x A attempts, then an audit ---------------- */

static int pb__flash_setup(pb_run_t *run)
{
    pb_api_t api;
    if (pb__admin(run) != 0 || pb__open(run, &api) != 0)
        return -1;
    int rc = pb__create_sale(run, &api, run->r_quantity, run->r_limit, &run->r_sale_id);
    pb_api_close(&api);
    run->r_requests = (uint64_t)run->r_users * (uint64_t)run->r_attempts;
    pb_extra(run, ",\"sale_id\":%llu,\"quantity\":%lld,\"per_user_limit\":%lld,\"attempts\":%lld",
             (unsigned long long)run->r_sale_id, (long long)run->r_quantity, (long long)run->r_limit,
             (long long)run->r_attempts);
    return rc;
}

/* Attempt a of every user before attempt a+1 of any, like a crowd pressing
 * "buy" again after a first answer. */
static void pb__flash_next(pb_worker_t *w, pb_req_t *rq, uint64_t seq)
{
    pb__sale_order(w, rq, w->w_run->r_sale_id);
    pb__user(w, rq, (uint32_t)(seq % w->w_run->r_tokens.tk_count));
}

/* Pages through every order as admin and checks the sale's invariants:
 * no more than Q units sold, the sale's remaining agrees, nobody above the
 * per-user limit, and every accepted answer the client saw is an order. */
static int pb__flash_verify(pb_run_t *run)
{
    pb_api_t api;
    json_t *doc = NULL;
    char path[PB_PATH_BYTES_MAX];
    int violations = 0;
    const pb_stats_t *st = &run->r_stats;
    uint64_t accepted = st->st_class_ok[PB_CLASS_ORDER];

    if (accepted >= (uint64_t)run->r_quantity && st->st_last_accept_ns > run->r_t0_ns)
        pb_extra(run, ",\"sellout_ms\":%.3f", (double)(st->st_last_accept_ns - run->r_t0_ns) / 1e6);
    else
        pb_extra(run, ",\"sellout_ms\":null");
    if (st->st_first_reject_ns > run->r_t0_ns)
        pb_extra(run, ",\"first_reject_ms\":%.3f", (double)(st->st_first_reject_ns - run->r_t0_ns) / 1e6);

    if (pb__open(run, &api) != 0)
        return -1;
    snprintf(path, sizeof(path), "/api/v1/sales/%llu", (unsigned long long)run->r_sale_id);
    if (pb__expect(&api, "GET", path, NULL, NULL, 200, &doc) != 0)
        goto fail;
    int64_t remaining = pb__int(doc, "remaining");
    const char *state = json_string_value(json_object_get(doc, "state"));
    pb_extra(run, ",\"remaining\":%lld,\"state\":\"%s\"", (long long)remaining, state ? state : "?");
    json_decref(doc);
    doc = NULL;

    uint32_t users = run->r_tokens.tk_count;
    uint32_t *units = calloc(users, sizeof(*units));
    if (units == NULL)
        goto fail;
    uint64_t orders = 0, sold = 0, foreign = 0, after = 0, pages = 0;
    for (;;) {
        if (after)
            snprintf(path, sizeof(path), "/api/v1/orders?limit=100&after=%llu", (unsigned long long)after);
        else
            snprintf(path, sizeof(path), "/api/v1/orders?limit=100");
        if (pb__expect(&api, "GET", path, run->r_admin_token, NULL, 200, &doc) != 0) {
            free(units);
            goto fail;
        }
        pages++;
        json_t *items = json_object_get(doc, "items"), *o;
        size_t i;
        json_array_foreach(items, i, o) {
            if (pb__int(o, "sale_id") != (int64_t)run->r_sale_id)
                continue;
            const char *status = json_string_value(json_object_get(o, "status"));
            if (status && (!strcmp(status, "expired") || !strcmp(status, "cancelled")))
                continue; /* gave its units back */
            int64_t q = 0;
            json_t *line;
            size_t k;
            json_array_foreach(json_object_get(o, "items"), k, line) q += pb__int(line, "quantity");
            orders++;
            sold += (uint64_t)q;
            int64_t user = pb__int(o, "user_id") - (int64_t)run->r_tokens.tk_user_base;
            if (user >= 0 && user < (int64_t)users)
                units[user] += (uint32_t)q;
            else
                foreign++;
        }
        json_t *next = json_object_get(doc, "next");
        after = json_is_integer(next) ? (uint64_t)json_integer_value(next) : 0;
        json_decref(doc);
        doc = NULL;
        if (after == 0)
            break;
    }
    uint64_t over = 0;
    for (uint32_t u = 0; u < users; u++)
        over += units[u] > (uint64_t)run->r_limit;
    free(units);
    pb_api_close(&api);

    uint64_t oversold = sold > (uint64_t)run->r_quantity ? sold - (uint64_t)run->r_quantity : 0;
    bool remaining_ok = remaining == run->r_quantity - (int64_t)sold;
    violations = (int)(oversold + over + foreign + !remaining_ok + (orders != accepted));
    pb_extra(run,
             ",\"verify\":{\"orders\":%llu,\"sold_units\":%llu,\"oversold\":%llu,\"users_over_limit\":%llu,"
             "\"foreign_users\":%llu,\"remaining_consistent\":%s,\"client_accepted\":%llu,\"pages\":%llu,"
             "\"sold_out\":%s}",
             (unsigned long long)orders, (unsigned long long)sold, (unsigned long long)oversold,
             (unsigned long long)over, (unsigned long long)foreign, remaining_ok ? "true" : "false",
             (unsigned long long)accepted, (unsigned long long)pages,
             sold == (uint64_t)run->r_quantity ? "true" : "false");
    return violations;
fail:
    json_decref(doc);
    pb_api_close(&api);
    pb_extra(run, ",\"verify\":null");
    return -1;
}

/* ---- hot: one sale that never runs out ---------------------------------- */

static int pb__hot_setup(pb_run_t *run)
{
    pb_api_t api;
    if (pb__admin(run) != 0 || pb__open(run, &api) != 0)
        return -1;
    int rc = pb__create_sale(run, &api, PB__HUGE, PB__HUGE, &run->r_sale_id);
    pb_api_close(&api);
    pb_extra(run, ",\"sale_id\":%llu", (unsigned long long)run->r_sale_id);
    return rc;
}

static void pb__hot_next(pb_worker_t *w, pb_req_t *rq, uint64_t seq)
{
    pb__sale_order(w, rq, w->w_run->r_sale_id);
    pb__random_user(w, rq);
}

/* ---- catalog: products on every shard, one- and three-item orders ------- */

static int pb__catalog_setup(pb_run_t *run)
{
    if (pb__admin(run) != 0 || pb__create_products(run) != 0)
        return -1;
    pb_extra(run, ",\"products\":%u", run->r_nproducts);
    return 0;
}

static void pb__catalog_next(pb_worker_t *w, pb_req_t *rq, uint64_t seq)
{
    pb__catalog_order(w, rq, pb_rand(&w->w_rng) & 1 ? 3 : 1);
    pb__random_user(w, rq);
}

/* ---- soldout: rejections, with a trickle of accepted orders ------------- */

static int pb__soldout_setup(pb_run_t *run)
{
    pb_api_t api;
    char body[80];
    if (pb__admin(run) != 0 || pb__open(run, &api) != 0)
        return -1;
    /* One unit, bought at once: every later order is 409 sold_out. */
    int rc = pb__create_sale(run, &api, 1, 1, &run->r_sale_id);
    snprintf(body, sizeof(body), "{\"sale_id\":%llu,\"quantity\":1}", (unsigned long long)run->r_sale_id);
    if (rc == 0)
        rc = pb__expect(&api, "POST", "/api/v1/orders", run->r_admin_token, body, 201, NULL);
    if (rc == 0)
        rc = pb__expect(&api, "POST", "/api/v1/orders", run->r_admin_token, body, 409, NULL);
    if (rc == 0 && run->r_accept_share > 0)
        rc = pb__create_sale(run, &api, PB__HUGE, PB__HUGE, &run->r_hot_sale_id);
    pb_api_close(&api);
    pb_extra(run, ",\"sale_id\":%llu,\"accept_share\":%g", (unsigned long long)run->r_sale_id, run->r_accept_share);
    return rc;
}

static void pb__soldout_next(pb_worker_t *w, pb_req_t *rq, uint64_t seq)
{
    const pb_run_t *run = w->w_run;
    bool accept = run->r_accept_share > 0 && (double)(pb_rand(&w->w_rng) >> 11) * 0x1p-53 < run->r_accept_share;
    pb__sale_order(w, rq, accept ? run->r_hot_sale_id : run->r_sale_id);
    pb__random_user(w, rq);
}

/* ---- mixed: browse 90%, order 8%, pay 2% -------------------------------- */

static int pb__mixed_setup(pb_run_t *run)
{
    pb_api_t api;
    if (pb__admin(run) != 0 || pb__create_products(run) != 0 || pb__open(run, &api) != 0)
        return -1;
    int rc = pb__create_sale(run, &api, PB__HUGE, PB__HUGE, &run->r_hot_sale_id);
    pb_api_close(&api);
    pb_extra(run, ",\"products\":%u,\"sale_id\":%llu", run->r_nproducts, (unsigned long long)run->r_hot_sale_id);
    return rc;
}

enum { PB__TAG_NONE = 0, PB__TAG_SALE_ORDER, PB__TAG_CATALOG_ORDER };

static void pb__browse(pb_worker_t *w, pb_req_t *rq, unsigned r)
{
    const pb_run_t *run = w->w_run;
    rq->rq_method = "GET";
    if (r < 70)
        pb__path(rq, "/api/v1/products/%llu",
                 (unsigned long long)run->r_product_ids[pb_rand_below(&w->w_rng, run->r_nproducts)]);
    else if (r < 90)
        pb__path(rq, "/api/v1/sales/%llu", (unsigned long long)run->r_hot_sale_id);
    else
        pb__path(rq, "/api/v1/products?limit=20");
    /* Browsing is signed in too, as in an app; the server ignores it. */
    pb__random_user(w, rq);
}

static void pb__mixed_next(pb_worker_t *w, pb_req_t *rq, uint64_t seq)
{
    unsigned r = pb_rand_below(&w->w_rng, 100);
    if (r < 90) {
        pb__browse(w, rq, pb_rand_below(&w->w_rng, 100));
    } else if (r < 98) {
        if (r < 94) {
            pb__sale_order(w, rq, w->w_run->r_hot_sale_id);
            rq->rq_tag = PB__TAG_SALE_ORDER;
        } else {
            pb__catalog_order(w, rq, 1);
            rq->rq_tag = PB__TAG_CATALOG_ORDER;
        }
        pb__random_user(w, rq);
        rq->rq_want_body = true; /* the order id and total, to pay it later */
    } else if (w->w_unpaid_count > 0) {
        pb_unpaid_t *u = &w->w_unpaid[w->w_unpaid_head];
        w->w_unpaid_head = (w->w_unpaid_head + 1) % w->w_unpaid_cap;
        w->w_unpaid_count--;
        rq->rq_method = "POST";
        rq->rq_class = PB_CLASS_PAY;
        pb__path(rq, "/api/v1/orders/%llu/pay", (unsigned long long)u->up_order_id);
        pb__body(rq, "{\"amount\":%lld,\"method\":\"card\"}", (long long)u->up_total);
        pb__user(w, rq, u->up_user);
    } else {
        pb__browse(w, rq, 0); /* nothing to pay yet */
    }
}

/* The integer after "key": in a JSON text, or -1. */
static int64_t pb__scan_int(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    if (p == NULL)
        return -1;
    p += strlen(key);
    while (*p == ' ')
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    return strtoll(p, NULL, 10);
}

static void pb__mixed_done(pb_worker_t *w, const pb_req_t *rq)
{
    if (rq->rq_class != PB_CLASS_ORDER || rq->rq_status != 201 || rq->rq_resp == NULL)
        return;
    int64_t id = pb__scan_int(rq->rq_resp, "\"order_id\":"), total = pb__scan_int(rq->rq_resp, "\"total\":");
    if (id <= 0 || total < 0)
        return;
    if (w->w_unpaid == NULL) {
        w->w_unpaid = calloc(PB__UNPAID_MAX, sizeof(*w->w_unpaid));
        if (w->w_unpaid == NULL)
            return;
        w->w_unpaid_cap = PB__UNPAID_MAX;
    }
    /* Full: the oldest unpaid order is forgotten (it will expire). */
    if (w->w_unpaid_count == w->w_unpaid_cap) {
        w->w_unpaid_head = (w->w_unpaid_head + 1) % w->w_unpaid_cap;
        w->w_unpaid_count--;
    }
    pb_unpaid_t *u = &w->w_unpaid[(w->w_unpaid_head + w->w_unpaid_count) % w->w_unpaid_cap];
    u->up_order_id = (uint64_t)id;
    u->up_total = total;
    u->up_user = rq->rq_user;
    w->w_unpaid_count++;
}

/* ---- the table ---------------------------------------------------------- */

static const pb_scenario_t pb__scenarios[] = {
    {"get", "GET --path (default /healthz) without a token; also any static file", false, false, NULL,
     pb__get_next, NULL, NULL},
    {"users_me", "GET /api/v1/users/me as up to 16 signed-up users", true, false, pb__users_me_setup,
     pb__users_me_next, NULL, NULL},
    {"flash", "one live sale of --quantity units, --users x --attempts orders, then an audit", true, true,
     pb__flash_setup, pb__flash_next, NULL, pb__flash_verify},
    {"hot", "sale orders against one sale that never runs out (durable accepted orders/s)", true, false,
     pb__hot_setup, pb__hot_next, NULL, NULL},
    {"catalog", "one- and three-item catalog orders of random products on every shard", true, false,
     pb__catalog_setup, pb__catalog_next, NULL, NULL},
    {"mixed", "browse 90% (product, sale, product list), order 8%, pay 2%", true, false, pb__mixed_setup,
     pb__mixed_next, pb__mixed_done, NULL},
    {"soldout", "orders of a sold-out sale (409), --accept-share of them to a live one", true, false,
     pb__soldout_setup, pb__soldout_next, NULL, NULL},
};

const pb_scenario_t *pb_scenario_find(const char *name)
{
    for (size_t i = 0; i < sizeof(pb__scenarios) / sizeof(pb__scenarios[0]); i++)
        if (strcmp(pb__scenarios[i].sc_name, name) == 0)
            return &pb__scenarios[i];
    return NULL;
}

void pb_scenario_list(FILE *f)
{
    for (size_t i = 0; i < sizeof(pb__scenarios) / sizeof(pb__scenarios[0]); i++)
        fprintf(f, "  %-9s %s\n", pb__scenarios[i].sc_name, pb__scenarios[i].sc_about);
}
