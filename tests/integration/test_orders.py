"""Orders over HTTP/2 against the real binary: sale and catalog placement,
the flash-sale race, all-or-nothing across shards, pay, ship, complete,
cancel, the payment deadline (also while the server is down), idempotent
retries across a restart, kill -9 during concurrent orders, and the outbox."""

import datetime
import glob
import os
import re
import shutil
import subprocess
import threading
import time

from pickple_harness import (Server, assert_error, assert_status, claims_for, forge_jwt, h2load_available, is_id,
                             msgpack_decode, run_tests, shared_server, skip)

ORDERS = "/api/v1/orders"
ORDER_KEYS = {"order_id", "user_id", "status", "items", "sale_id", "total", "shipping", "created_at",
              "expires_at", "payment", "delivery"}
_uid = [1000]


def srv():
    return shared_server("orders", threads=2)


def tok(s, uid, role="customer"):
    return forge_jwt(s.jwt_secret(), claims_for(uid, role))


def new_uid():
    _uid[0] += 1
    return _uid[0]


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def product(s, seller, stock=10, price=100, shard=None, nshards=2):
    while True:
        r = s.call("POST", "/api/v1/products", {"name": "thing", "price": price, "stock": stock}, token=seller)
        assert_status(r, 201)
        if shard is None or r.body["product_id"] % nshards == shard:
            return r.body["product_id"]


def stock(s, pid):
    r = s.call("GET", f"/api/v1/products/{pid}")
    assert_status(r, 200)
    return r.body["stock"]


def sale(s, seller, pid, quantity, limit=1, price=50, starts=-60, ends=3600):
    body = {"product_id": pid, "price": price, "quantity": quantity, "per_user_limit": limit,
            "starts_at": iso(now() + datetime.timedelta(seconds=starts)),
            "ends_at": iso(now() + datetime.timedelta(seconds=ends))}
    r = s.call("POST", "/api/v1/sales", body, token=seller)
    assert_status(r, 201)
    return r.body["sale_id"]


def seller_of(s):
    uid = new_uid()
    return uid, tok(s, uid, "seller")


def customer(s):
    uid = new_uid()
    return uid, tok(s, uid)


def all_orders(s, admin, status=None):
    out, after = [], 0
    while True:
        q = f"{ORDERS}?limit=100&after={after}" + (f"&status={status}" if status else "")
        r = s.call("GET", q, token=admin)
        assert_status(r, 200)
        out += r.body["items"]
        if r.body["next"] is None:
            return out
        after = r.body["next"]


LIVE = {"pending_payment", "paid", "shipped", "delivered"}


def check_product_invariant(s, admin, pid, initial):
    """stock + units in live orders (catalog or sale) + units left in open
    sales == initial (no stock adjustments in these tests)."""
    held = sum(it["quantity"] for o in all_orders(s, admin) if o["status"] in LIVE
               for it in o["items"] if it["product_id"] == pid and o["sale_id"] is None)
    sales = s.call("GET", "/api/v1/sales?limit=100", token=admin).body["items"]
    in_sales = 0
    for sl in sales:
        if sl["product_id"] != pid or sl["state"] == "ended":
            continue
        live = sum(o["items"][0]["quantity"] for o in all_orders(s, admin)
                   if o["sale_id"] == sl["sale_id"] and o["status"] in LIVE)
        assert sl["remaining"] + live == sl["quantity"], (sl, live)
        in_sales += sl["quantity"]
    got = stock(s, pid)
    assert got + held + in_sales == initial, (got, held, in_sales, initial)


# ---------------------------------------------------------------- sale orders

def test_sale_order_shape_and_refusals():
    s = srv()
    _, seller = seller_of(s)
    pid = product(s, seller, stock=10)
    sid = sale(s, seller, pid, quantity=2, limit=1, price=70)
    uid, cust = customer(s)
    r = s.call("POST", ORDERS, {"sale_id": sid, "quantity": 1,
                                "shipping": {"recipient": "Ada", "address": "1 Main St", "phone": "+1 555"}},
               token=cust)
    assert_status(r, 201)
    o = r.body
    assert ORDER_KEYS <= set(o), o
    assert o["status"] == "pending_payment" and o["user_id"] == uid and o["sale_id"] == sid
    assert o["total"] == 70 and o["items"] == [{"product_id": pid, "quantity": 1, "unit_price": 70,
                                                 "line_total": 70}]
    assert o["payment"] is None and o["delivery"] is None and o["shipping"]["recipient"] == "Ada"
    assert o["order_id"] % 2 == sid % 2, "a sale order lives on its sale's shard"
    created = datetime.datetime.fromisoformat(o["created_at"].replace("Z", "+00:00"))
    expires = datetime.datetime.fromisoformat(o["expires_at"].replace("Z", "+00:00"))
    assert abs((expires - created).total_seconds() - 300) < 0.01
    assert_error(s.call("POST", ORDERS, {"sale_id": sid, "quantity": 1}, token=cust), 409, "purchase_limit_exceeded")
    _, other = customer(s)
    assert_status(s.call("POST", ORDERS, {"sale_id": sid, "quantity": 1}, token=other), 201)
    _, third = customer(s)
    assert_error(s.call("POST", ORDERS, {"sale_id": sid, "quantity": 1}, token=third), 409, "sold_out")
    r = s.call("GET", f"/api/v1/sales/{sid}")
    assert r.body["remaining"] == 0 and r.body["state"] == "sold_out"
    assert_error(s.call("POST", ORDERS, {"sale_id": 999999999, "quantity": 1}, token=third), 404, "sale_not_found")
    later = sale(s, seller, pid, quantity=1, starts=3600, ends=7200)
    assert_error(s.call("POST", ORDERS, {"sale_id": later, "quantity": 1}, token=third), 409, "sale_not_started")
    short = sale(s, seller, pid, quantity=1, ends=1)
    time.sleep(1.3)
    assert_error(s.call("POST", ORDERS, {"sale_id": short, "quantity": 1}, token=third), 409, "sale_ended")
    # A sold-out sale gets a unit back when an order of it is cancelled.
    assert_status(s.call("POST", f"{ORDERS}/{o['order_id']}/cancel", token=cust), 200)
    r = s.call("GET", f"/api/v1/sales/{sid}")
    assert r.body["remaining"] == 1 and r.body["state"] == "live", r.body
    assert_status(s.call("POST", ORDERS, {"sale_id": sid, "quantity": 1}, token=cust), 201)


def test_placement_answers_match_the_stored_order():
    # A placement's answer is rendered on the thread that holds the
    # connection, after the commit, unless an idempotency key stores it in
    # the batch: both must say what a later read of the order says, in
    # either format.
    s = srv()
    _, seller = seller_of(s)
    pid = product(s, seller, stock=100)
    sid = sale(s, seller, pid, quantity=50, limit=5, price=30)
    cat_pid = product(s, seller, stock=100, price=9)
    for i in range(12):
        uid, cust = customer(s)
        body = ({"sale_id": sid, "quantity": 1 + i % 2} if i % 3
                else {"items": [{"product_id": cat_pid, "quantity": 2}]})
        hdr = {"Idempotency-Key": f"place-{i}"} if i % 2 else {}
        if i % 4 >= 2:
            hdr["Accept"] = "application/msgpack"
        r = s.call("POST", ORDERS, body, token=cust, headers=hdr)
        assert_status(r, 201)
        placed = msgpack_decode(r.raw) if "Accept" in hdr else r.body
        stored = s.call("GET", f"{ORDERS}/{placed['order_id']}", token=cust)
        assert_status(stored, 200)
        assert placed == stored.body, (i, placed, stored.body)
        assert placed["user_id"] == uid and placed["status"] == "pending_payment", placed


def test_bad_order_input_is_refused():
    s = srv()
    _, seller = seller_of(s)
    pid = product(s, seller, stock=5)
    _, cust = customer(s)
    before = stock(s, pid)
    bad = [
        ({}, "sale_id"),
        ({"sale_id": 1, "items": []}, "items"),
        ({"items": []}, "items"),
        ({"items": "x"}, "items"),
        ({"items": [{"product_id": pid}]}, "items[0].quantity"),
        ({"items": [{"product_id": pid, "quantity": 0}]}, "items[0].quantity"),
        ({"items": [{"product_id": pid, "quantity": -1}]}, "items[0].quantity"),
        ({"items": [{"product_id": pid, "quantity": 1.5}]}, "items[0].quantity"),
        ({"items": [{"product_id": "1", "quantity": 1}]}, "items[0].product_id"),
        ({"items": [{"product_id": pid, "quantity": 1}, {"product_id": pid, "quantity": 1}]}, "items[1].product_id"),
        ({"items": [{"product_id": i + 1, "quantity": 1} for i in range(51)]}, "items"),
        ({"sale_id": 1}, "quantity"),
        ({"sale_id": 1, "quantity": 2 ** 40}, "quantity"),
        ({"items": [{"product_id": pid, "quantity": 1}], "shipping": "home"}, "shipping"),
        ({"items": [{"product_id": pid, "quantity": 1}], "shipping": {"recipient": "a", "address": "b"}},
         "shipping.phone"),
        ({"items": [{"product_id": pid, "quantity": 1}],
          "shipping": {"recipient": "a" * 201, "address": "b", "phone": "1"}}, "shipping.recipient"),
    ]
    for body, field in bad:
        r = s.call("POST", ORDERS, body, token=cust)
        assert_error(r, 400, "invalid_request")
        assert field in r.body["error"]["message"], (body, r.body)
    assert_error(s.call("POST", ORDERS, {"items": [{"product_id": pid, "quantity": 1}]}), 401, "unauthorized")
    r = s.call("POST", ORDERS, {"items": [{"product_id": pid, "quantity": 1}]}, token=cust,
               headers={"Idempotency-Key": "x" * 65})
    assert_error(r, 400, "invalid_request")
    assert stock(s, pid) == before
    assert s.healthy()


def test_plain_sale_bodies_match_the_general_parser():
    # Sale-form bodies are read by a narrow parser without a JSON tree; every
    # neighbour of its grammar must get the general parser's answer.
    s = srv()
    _, seller = seller_of(s)
    pid = product(s, seller, stock=50)
    sid = sale(s, seller, pid, quantity=4, limit=4)
    _, cust = customer(s)
    ok = [f'{{"sale_id":{sid},"quantity":1}}', f' {{ "quantity" : 1 ,\n\t"sale_id" : {sid} }} ',
          f'{{"sale_id":{sid},"quantity":1,"shipping":null}}']
    for body in ok:
        r = s.call("POST", ORDERS, token=cust, raw_body=body.encode(),
                   headers={"content-type": "application/json"})
        assert r.status == 201, (body, r.status, r.body)
        assert r.body["sale_id"] == sid and r.body["items"][0]["quantity"] == 1, r.body
    bad = [
        (f'{{"sale_id":{sid},"sale_id":{sid},"quantity":1}}', 400),   # duplicate member
        (f'{{"sale_id":0{sid},"quantity":1}}', 400),                  # leading zero: not JSON
        (f'{{"sale_id":{sid},"quantity":0}}', 400),
        (f'{{"sale_id":{sid},"quantity":-1}}', 400),
        (f'{{"sale_id":{sid},"quantity":1000000001}}', 400),
        (f'{{"sale_id":9007199254740992,"quantity":1}}', 400),        # above 2^53-1
        (f'{{"sale_id":{sid},"quantity":1}}x', 400),                  # trailing garbage
        (f'{{"sale_id":{sid},"quantity":1', 400),                     # truncated
        (f'{{"sale_id":"{sid}","quantity":1}}', 400),
        (f'{{"sale_id":{sid},"quantity":1,"items":[]}}', 400),
        (f'{{"sale_id":123456789012345,"quantity":1}}', 404),          # 15 digits, no such sale
    ]
    for body, status in bad:
        r = s.call("POST", ORDERS, token=cust, raw_body=body.encode(),
                   headers={"content-type": "application/json"})
        assert r.status == status, (body, r.status, r.body)
    # Three of four units went and the refusals took none: the fourth sells,
    # then sold out is answered for the plain body too (with and without a key).
    body = f'{{"sale_id":{sid},"quantity":1}}'.encode()
    hdr = {"content-type": "application/json"}
    assert s.call("POST", ORDERS, token=cust, raw_body=body, headers=hdr).status == 201
    fast = s.call("POST", ORDERS, token=cust, raw_body=body, headers=hdr)
    owner = s.call("POST", ORDERS, token=cust, raw_body=body, headers=dict(hdr, **{"Idempotency-Key": "k1"}))
    assert_error(fast, 409, "sold_out")
    assert_error(owner, 409, "sold_out")
    assert fast.body == owner.body, (fast.body, owner.body)  # the early refusal says what the owner says
    assert s.healthy()


def test_own_orders_list_every_order_once_in_id_order():
    # A user's orders are indexed three ways: chained sale orders and
    # one-shard catalog orders (a checkpoint every 64), and standalone
    # cross-shard catalog orders.  Every page size and every cursor must see
    # each order exactly once, ascending, with the status filter applied.
    s = srv()
    _, seller = seller_of(s)
    p0 = product(s, seller, stock=500, shard=0)
    p1 = product(s, seller, stock=500, shard=1)
    sid = sale(s, seller, p0, quantity=200, limit=200)
    uid, cust = customer(s)
    _, other = customer(s)
    mine = []
    plan = (["sale"] * 20 + ["one0", "cross", "one1"] * 3 + ["sale"] * 60 + ["cross"] * 2 + ["sale"] * 64
            + ["one1"] * 17 + ["sale"])
    for i, kind in enumerate(plan):
        if kind == "sale":
            body = {"sale_id": sid, "quantity": 1}
        elif kind == "cross":
            body = {"items": [{"product_id": p0, "quantity": 1}, {"product_id": p1, "quantity": 1}]}
        else:
            body = {"items": [{"product_id": p0 if kind == "one0" else p1, "quantity": 1}]}
        r = s.call("POST", ORDERS, body, token=cust)
        assert_status(r, 201)
        mine.append(r.body["order_id"])
        if i % 7 == 0:  # someone else's orders between, on the same chains' shards
            assert_status(s.call("POST", ORDERS, {"sale_id": sid, "quantity": 1}, token=other), 201)
    cancelled = set(mine[3::5])
    for oid in cancelled:
        assert_status(s.call("POST", f"{ORDERS}/{oid}/cancel", token=cust), 200)

    def walk(limit, status=None, start=0):
        got, after = [], start
        for _ in range(len(mine) + 2):
            q = f"{ORDERS}?limit={limit}&after={after}" + (f"&status={status}" if status else "")
            r = s.call("GET", q, token=cust)
            assert_status(r, 200)
            assert len(r.body["items"]) <= limit
            got += [o["order_id"] for o in r.body["items"]]
            assert all(o["user_id"] == uid for o in r.body["items"])
            if r.body["next"] is None:
                return got
            after = r.body["next"]
        raise AssertionError("the pages never ended")

    want = sorted(mine)
    for limit in (1, 3, 17, 64, 65, 100):
        assert walk(limit) == want, limit
    # Cursors that are not ids of this user's orders, and in the middle of segments.
    for start in (want[0] - 1, want[5], want[16] + 1, want[40], want[70], want[130], want[-2]):
        assert walk(7, start=start) == [o for o in want if o > start], start
    assert walk(5, status="cancelled") == sorted(cancelled)
    assert walk(9, status="pending_payment") == sorted(set(mine) - cancelled)
    assert s.healthy()


def test_limits_across_many_sales_of_one_shard():
    # A buyer's units per sale live in their row for up to 8 sales of a
    # shard and in sale_users beyond: the limit holds in both, units come
    # back on cancel in both, and moving between them loses nothing.
    s = srv()
    _, seller = seller_of(s)
    pid = product(s, seller, stock=500)
    sids = [sale(s, seller, pid, quantity=5, limit=2) for _ in range(11)]
    assert len({sid % 2 for sid in sids}) == 1  # a product's sales share its shard
    _, cust = customer(s)
    first = {}
    for sid in sids:
        r = s.call("POST", ORDERS, {"sale_id": sid, "quantity": 2}, token=cust)
        assert_status(r, 201)
        first[sid] = r.body["order_id"]
    for sid in sids:
        assert_error(s.call("POST", ORDERS, {"sale_id": sid, "quantity": 1}, token=cust), 409,
                     "purchase_limit_exceeded")
    # Give back the first (in the row) and the last (beyond it), buy again.
    for sid in (sids[0], sids[-1]):
        assert_status(s.call("POST", f"{ORDERS}/{first[sid]}/cancel", token=cust), 200)
        assert_status(s.call("POST", ORDERS, {"sale_id": sid, "quantity": 1}, token=cust), 201)
        assert_status(s.call("POST", ORDERS, {"sale_id": sid, "quantity": 1}, token=cust), 201)
        assert_error(s.call("POST", ORDERS, {"sale_id": sid, "quantity": 1}, token=cust), 409,
                     "purchase_limit_exceeded")
    # Another buyer is not limited by the first one's units.
    _, other = customer(s)
    for sid in sids:
        assert_status(s.call("POST", ORDERS, {"sale_id": sid, "quantity": 2}, token=other), 201)
    for sid in sids:
        r = s.call("GET", f"/api/v1/sales/{sid}")
        assert_status(r, 200)
        assert r.body["remaining"] == 1, r.body
    assert s.healthy()


def test_flash_sale_500_users_twice():
    s = srv()
    _, seller = seller_of(s)
    pid = product(s, seller, stock=150)
    sid = sale(s, seller, pid, quantity=100, limit=1)
    users = [customer(s) for _ in range(500)]
    reqs = [{"method": "POST", "path": ORDERS, "json_body": {"sale_id": sid, "quantity": 1}, "token": t}
            for _, t in users for _ in range(2)]
    res = s.parallel(reqs)
    statuses = [r.status for r in res]
    assert statuses.count(201) == 100, {st: statuses.count(st) for st in set(statuses)}
    assert all(st in (201, 409) for st in statuses), set(statuses)
    for r in res:
        if r.status == 409:
            assert r.body["error"]["code"] in ("sold_out", "purchase_limit_exceeded"), r.body
    buyers = [r.body["user_id"] for r in res if r.status == 201]
    assert len(set(buyers)) == 100, "nobody above the limit of 1"
    r = s.call("GET", f"/api/v1/sales/{sid}")
    assert r.body["remaining"] == 0 and r.body["state"] == "sold_out", r.body
    admin = tok(s, 1, "admin")
    sold = [o for o in all_orders(s, admin) if o["sale_id"] == sid]
    assert len(sold) == 100 and len({o["user_id"] for o in sold}) == 100
    assert stock(s, pid) == 50


def midturn_batches(s):
    r = s.call("GET", "/metrics")
    assert_status(r, 200)
    return sum(int(line.rpartition(" ")[2]) for line in r.raw.decode().splitlines()
               if line.startswith("pickple_commit_batches_midturn_total{"))


def test_pipelined_orders_answered_within_a_turn():
    # Hundreds of streams at once: a loop turn reads many orders, and the
    # shard answers a batch its syncer committed between two of them
    # (pk_actor_progress) instead of after the whole turn.  Every order is
    # still answered once and sold once.
    if not h2load_available():
        skip("h2load (nghttp2-client) not installed")
    s = srv()
    _, seller = seller_of(s)
    pid = product(s, seller, stock=20000)
    sid = sale(s, seller, pid, quantity=20000, limit=20000)
    _, t = customer(s)
    before, sent = midturn_batches(s), 0
    for _ in range(6):
        res = s.h2load(ORDERS, 2000, clients=4, streams=100, body={"sale_id": sid, "quantity": 1},
                       headers={"authorization": f"Bearer {t}"})
        assert res["2xx"] == 2000 and res["errored"] == 0, res["output"]
        sent += 2000
        if midturn_batches(s) > before:
            break
    assert midturn_batches(s) > before, f"no batch answered inside a turn in {sent} pipelined orders"
    r = s.call("GET", f"/api/v1/sales/{sid}")
    assert r.body["remaining"] == 20000 - sent, (r.body, sent)
    assert s.healthy()


# ----------------------------------------------------------- catalog orders

def test_catalog_orders_across_shards_are_all_or_nothing():
    s = srv()
    _, seller = seller_of(s)
    a0 = product(s, seller, stock=5, price=100, shard=0)
    a1 = product(s, seller, stock=5, price=30, shard=1)
    b1 = product(s, seller, stock=1, price=7, shard=1)
    _, cust = customer(s)
    r = s.call("POST", ORDERS, {"items": [{"product_id": a0, "quantity": 2}, {"product_id": a1, "quantity": 3}]},
               token=cust)
    assert_status(r, 201)
    assert r.body["total"] == 2 * 100 + 3 * 30 and r.body["sale_id"] is None
    assert [it["unit_price"] for it in r.body["items"]] == [100, 30]
    assert (stock(s, a0), stock(s, a1)) == (3, 2)
    # One item short on another shard: nothing is reserved anywhere.
    for items in ([{"product_id": a0, "quantity": 1}, {"product_id": b1, "quantity": 2}],
                  [{"product_id": b1, "quantity": 2}, {"product_id": a0, "quantity": 1}]):
        assert_error(s.call("POST", ORDERS, {"items": items}, token=cust), 409, "insufficient_stock")
    assert_error(s.call("POST", ORDERS, {"items": [{"product_id": a0, "quantity": 1},
                                                   {"product_id": 99999999, "quantity": 1}]}, token=cust),
                 404, "product_not_found")
    # Remote releases are asynchronous; they land within a few ticks.
    deadline = time.time() + 5
    while (stock(s, a0), stock(s, a1), stock(s, b1)) != (3, 2, 1) and time.time() < deadline:
        time.sleep(0.1)
    assert (stock(s, a0), stock(s, a1), stock(s, b1)) == (3, 2, 1)
    # Many concurrent cross-shard orders for the last units: exactly the
    # stock is sold, never more.
    c0 = product(s, seller, stock=20, shard=0)
    c1 = product(s, seller, stock=20, shard=1)
    reqs = [{"method": "POST", "path": ORDERS, "token": customer(s)[1],
             "json_body": {"items": [{"product_id": c0, "quantity": 1}, {"product_id": c1, "quantity": 1}]}}
            for _ in range(60)]
    res = s.parallel(reqs)
    assert [r.status for r in res].count(201) == 20, [r.status for r in res]
    deadline = time.time() + 5
    while (stock(s, c0), stock(s, c1)) != (0, 0) and time.time() < deadline:
        time.sleep(0.1)
    assert (stock(s, c0), stock(s, c1)) == (0, 0)


# ------------------------------------------------- pay, deliver, cancel

def test_pay_ship_complete_and_permissions():
    s = srv()
    seller_id, seller = seller_of(s)
    pid = product(s, seller, stock=5, price=250)
    uid, cust = customer(s)
    _, stranger = customer(s)
    o = s.call("POST", ORDERS, {"items": [{"product_id": pid, "quantity": 2}],
                                "shipping": {"recipient": "B", "address": "2 Side St", "phone": "1"}}, token=cust).body
    oid = o["order_id"]
    assert_error(s.call("GET", f"{ORDERS}/{oid}", token=stranger), 404, "not_found")
    assert_error(s.call("POST", f"{ORDERS}/{oid}/pay", {"amount": 500, "method": "card"}, token=stranger), 404)
    assert_error(s.call("POST", f"{ORDERS}/{oid}/pay", {"amount": 499, "method": "card"}, token=cust), 422,
                 "amount_mismatch")
    assert_error(s.call("POST", f"{ORDERS}/{oid}/pay", {"amount": 500, "method": "cash"}, token=cust), 400,
                 "invalid_request")
    assert_error(s.call("POST", f"{ORDERS}/{oid}/pay", {"amount": 500, "method": "test_decline"}, token=cust), 402,
                 "payment_declined")
    assert s.call("GET", f"{ORDERS}/{oid}", token=cust).body["status"] == "pending_payment"
    assert_error(s.call("GET", f"{ORDERS}/{oid}/delivery", token=cust), 404)
    r = s.call("POST", f"{ORDERS}/{oid}/pay", {"amount": 500, "method": "bank_transfer"}, token=cust)
    assert_status(r, 200)
    assert r.body["status"] == "paid" and r.body["payment"]["status"] == "completed"
    assert r.body["payment"]["amount"] == 500 and r.body["payment"]["method"] == "bank_transfer"
    assert is_id(r.body["payment"]["payment_id"])
    assert_error(s.call("POST", f"{ORDERS}/{oid}/pay", {"amount": 500, "method": "card"}, token=cust), 409,
                 "already_paid")
    d = s.call("GET", f"{ORDERS}/{oid}/delivery", token=seller)
    assert_status(d, 200)
    d = d.body
    assert d["status"] == "pending" and d["order_id"] == oid and d["shipping"]["address"] == "2 Side St"
    assert [h["status"] for h in d["history"]] == ["pending"]
    did = d["delivery_id"]
    assert_status(s.call("GET", f"{ORDERS}/{oid}/delivery", token=cust), 200)
    assert_error(s.call("GET", f"{ORDERS}/{oid}/delivery", token=stranger), 404)
    assert_error(s.call("POST", f"/api/v1/deliveries/{did}/complete", token=seller), 409, "invalid_transition")
    assert_error(s.call("POST", f"/api/v1/deliveries/{did}/ship", {"carrier": "C", "tracking_number": "T"},
                        token=cust), 403, "forbidden")
    assert_error(s.call("POST", f"/api/v1/deliveries/{did}/ship", {"carrier": "C", "tracking_number": "T"},
                        token=stranger), 404)
    assert_error(s.call("POST", f"/api/v1/deliveries/{did}/ship", {"carrier": ""}, token=seller), 400)
    r = s.call("POST", f"/api/v1/deliveries/{did}/ship", {"carrier": "C", "tracking_number": "T1"}, token=seller)
    assert_status(r, 200)
    assert r.body["status"] == "in_transit" and r.body["carrier"] == "C" and r.body["tracking_number"] == "T1"
    assert s.call("GET", f"{ORDERS}/{oid}", token=cust).body["status"] == "shipped"
    assert_error(s.call("POST", f"{ORDERS}/{oid}/cancel", token=cust), 409, "not_cancellable")
    assert_error(s.call("POST", f"/api/v1/deliveries/{did}/ship", {"carrier": "C", "tracking_number": "T"},
                        token=seller), 409, "invalid_transition")
    r = s.call("POST", f"/api/v1/deliveries/{did}/complete", token=tok(s, 1, "admin"))
    assert_status(r, 200)
    assert [h["status"] for h in r.body["history"]] == ["pending", "in_transit", "delivered"]
    assert s.call("GET", f"{ORDERS}/{oid}", token=cust).body["status"] == "delivered"
    kinds = [n["kind"] for n in s.call("GET", "/api/v1/notifications", token=cust).body["items"]
             if n["order_id"] == oid]
    assert kinds == ["order_paid", "delivery_shipped", "delivery_completed"], kinds
    assert s.call("GET", "/api/v1/notifications", token=stranger).body["items"] == []
    mine = s.call("GET", f"{ORDERS}?status=delivered", token=cust).body["items"]
    assert [m["order_id"] for m in mine] == [oid]
    assert s.call("GET", ORDERS, token=stranger).body == {"items": [], "next": None}
    assert_error(s.call("GET", f"{ORDERS}?status=bogus", token=cust), 400)


def test_cancel_returns_units_exactly_once():
    s = srv()
    _, seller = seller_of(s)
    p0 = product(s, seller, stock=4, shard=0)
    p1 = product(s, seller, stock=4, shard=1)
    _, cust = customer(s)
    items = [{"product_id": p0, "quantity": 1}, {"product_id": p1, "quantity": 2}]
    a = s.call("POST", ORDERS, {"items": items}, token=cust).body["order_id"]
    b = s.call("POST", ORDERS, {"items": items}, token=cust).body["order_id"]
    assert (stock(s, p0), stock(s, p1)) == (2, 0)
    r = s.call("POST", f"{ORDERS}/{a}/cancel", token=cust)
    assert_status(r, 200)
    assert r.body["status"] == "cancelled"
    assert_error(s.call("POST", f"{ORDERS}/{a}/cancel", token=cust), 409, "not_cancellable")
    assert_error(s.call("POST", f"{ORDERS}/{a}/pay", {"amount": r.body["total"], "method": "card"}, token=cust),
                 409, "order_cancelled")
    total = s.call("GET", f"{ORDERS}/{b}", token=cust).body["total"]
    assert_status(s.call("POST", f"{ORDERS}/{b}/pay", {"amount": total, "method": "card"}, token=cust), 200)
    r = s.call("POST", f"{ORDERS}/{b}/cancel", token=tok(s, 1, "admin"))
    assert_status(r, 200)
    assert r.body["payment"]["status"] == "refunded" and r.body["delivery"]["status"] == "cancelled"
    deadline = time.time() + 5
    while (stock(s, p0), stock(s, p1)) != (4, 4) and time.time() < deadline:
        time.sleep(0.1)
    assert (stock(s, p0), stock(s, p1)) == (4, 4)
    time.sleep(0.5)  # a second release would show up by now
    assert (stock(s, p0), stock(s, p1)) == (4, 4)
    kinds = [n["kind"] for n in s.call("GET", "/api/v1/notifications", token=cust).body["items"]]
    assert kinds.count("order_cancelled") == 2


# ------------------------------------------------------------- deadline

def test_unpaid_orders_expire_also_while_stopped():
    s = Server(threads=2, extra_args=["--order-ttl", "2"])
    _, seller = seller_of(s)
    p0 = product(s, seller, stock=3, shard=0)
    p1 = product(s, seller, stock=3, shard=1)
    sid = sale(s, seller, p0, quantity=1)
    _, cust = customer(s)
    o1 = s.call("POST", ORDERS, {"items": [{"product_id": p0, "quantity": 1}, {"product_id": p1, "quantity": 3}]},
                token=cust).body
    o2 = s.call("POST", ORDERS, {"sale_id": sid, "quantity": 1}, token=cust).body
    assert (stock(s, p0), stock(s, p1)) == (1, 0)
    time.sleep(2.2)
    # pay checks the deadline itself, even before the sweep ran.
    assert_error(s.call("POST", f"{ORDERS}/{o1['order_id']}/pay", {"amount": o1["total"], "method": "card"},
                        token=cust), 409, "order_expired")
    time.sleep(0.6)
    assert s.call("GET", f"{ORDERS}/{o2['order_id']}", token=cust).body["status"] == "expired"
    assert s.call("GET", f"/api/v1/sales/{sid}").body["remaining"] == 1
    assert (stock(s, p0), stock(s, p1)) == (2, 3)
    # The limit counts live orders only: the buyer may buy again.
    o3 = s.call("POST", ORDERS, {"sale_id": sid, "quantity": 1}, token=cust)
    assert_status(o3, 201)
    o4 = s.call("POST", ORDERS, {"items": [{"product_id": p1, "quantity": 2}, {"product_id": p0, "quantity": 1}]},
                token=cust)
    assert_status(o4, 201)
    s.stop()
    time.sleep(2.5)
    s.start()  # ready only once what fell due is expired
    for o in (o3.body, o4.body):
        assert s.call("GET", f"{ORDERS}/{o['order_id']}", token=cust).body["status"] == "expired"
    deadline = time.time() + 5
    while (stock(s, p0), stock(s, p1)) != (2, 3) and time.time() < deadline:
        time.sleep(0.1)
    assert (stock(s, p0), stock(s, p1)) == (2, 3)
    kinds = [n["kind"] for n in s.call("GET", "/api/v1/notifications", token=cust).body["items"]]
    assert kinds.count("order_expired") == 4, kinds
    s.stop()


# ---------------------------------------------------------- idempotency

def test_idempotent_retries_across_restart():
    s = Server(threads=2)
    _, seller = seller_of(s)
    p0 = product(s, seller, stock=5, shard=0)
    p1 = product(s, seller, stock=5, shard=1)
    sid = sale(s, seller, p1, quantity=3, limit=3)
    _, cust = customer(s)
    _, other = customer(s)
    cat = {"items": [{"product_id": p0, "quantity": 1}, {"product_id": p1, "quantity": 1}]}
    first = s.call("POST", ORDERS, cat, token=cust, headers={"Idempotency-Key": "cart-1"})
    assert_status(first, 201)
    first_sale = s.call("POST", ORDERS, {"sale_id": sid, "quantity": 1}, token=cust,
                        headers={"Idempotency-Key": "sale-1"})
    assert_status(first_sale, 201)
    refused = s.call("POST", ORDERS, {"sale_id": sid, "quantity": 9}, token=cust, headers={"Idempotency-Key": "big"})
    assert_error(refused, 409, "sold_out")
    # The same key by another user is another request.
    assert_status(s.call("POST", ORDERS, cat, token=other, headers={"Idempotency-Key": "cart-1"}), 201)
    s.stop()
    s.start()
    again = s.call("POST", ORDERS, cat, token=cust, headers={"Idempotency-Key": "cart-1"})
    assert again.status == 201 and again.body == first.body
    again = s.call("POST", ORDERS, {"sale_id": sid, "quantity": 1}, token=cust, headers={"Idempotency-Key": "sale-1"})
    assert again.status == 201 and again.body == first_sale.body
    again = s.call("POST", ORDERS, {"sale_id": sid, "quantity": 9}, token=cust, headers={"Idempotency-Key": "big"})
    assert again.status == 409 and again.body == refused.body
    assert_error(s.call("POST", ORDERS, {"sale_id": sid, "quantity": 2}, token=cust,
                        headers={"Idempotency-Key": "cart-1"}), 422, "idempotency_key_reused")
    assert (stock(s, p0), stock(s, p1)) == (3, 0)
    assert s.call("GET", f"/api/v1/sales/{sid}").body["remaining"] == 2
    admin = tok(s, 1, "admin")
    assert len([o for o in all_orders(s, admin) if o["user_id"] in (first.body["user_id"],)]) == 2
    s.stop()


# ----------------------------------------------------------- crash safety

def test_kill9_during_concurrent_orders_keeps_every_201():
    s = Server(threads=2)
    _, seller = seller_of(s)
    p0 = product(s, seller, stock=400, shard=0)
    p1 = product(s, seller, stock=400, shard=1)
    sid = sale(s, seller, p0, quantity=150, limit=1)
    reqs = []
    for i in range(600):
        t = customer(s)[1]
        if i % 3 == 0:
            body = {"sale_id": sid, "quantity": 1}
        elif i % 3 == 1:
            body = {"items": [{"product_id": p0, "quantity": 1}, {"product_id": p1, "quantity": 1}]}
        else:
            body = {"items": [{"product_id": p1, "quantity": 1}]}
        reqs.append({"method": "POST", "path": ORDERS, "json_body": body, "token": t})
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("res", s.parallel(reqs, max_time=30)))
    th.start()
    time.sleep(1.0)
    s.kill9()
    th.join()
    acked = [r.body for r in out["res"] if r.status == 201]
    s.start()
    admin = tok(s, 1, "admin")
    for o in acked:
        r = s.call("GET", f"{ORDERS}/{o['order_id']}", token=admin)
        assert_status(r, 200)
        assert r.body["status"] == "pending_payment" and r.body["items"] == o["items"]
    time.sleep(11)  # placing orders interrupted by the kill are dropped after 10 s
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            check_product_invariant(s, admin, p0, 400)
            check_product_invariant(s, admin, p1, 400)
            break
        except AssertionError:
            time.sleep(0.3)
    check_product_invariant(s, admin, p0, 400)
    check_product_invariant(s, admin, p1, 400)
    print(f"    {len(acked)} orders acknowledged before kill -9; all present")
    s.stop()


# ---------------------------------------------------------------- outbox

def outbox_types(data_dir):
    """Event types in every shard's outbox, read with mdb_dump."""
    types = []
    for env in sorted(glob.glob(os.path.join(data_dir, "shard-*"))):
        out = subprocess.run(["mdb_dump", "-p", "-s", "outbox", env], capture_output=True, text=True,
                             check=True).stdout
        # Each record starts [2 (schema), type, ...]: array(6), 2, fixstr header.
        types += re.findall(r'^ \\96\\02\\[ab][0-9a-f]([a-z_]+\.[a-z_]+)', out, re.M)
    return types


def test_outbox_holds_every_event():
    if shutil.which("mdb_dump") is None:
        raise AssertionError("mdb_dump (lmdb-utils) is required")
    s = Server(threads=2)
    _, seller = seller_of(s)
    pid = product(s, seller, stock=5)
    sid = sale(s, seller, pid, quantity=1)
    _, cust = customer(s)
    o = s.call("POST", ORDERS, {"sale_id": sid, "quantity": 1}, token=cust).body
    assert_error(s.call("POST", f"{ORDERS}/{o['order_id']}/pay", {"amount": o["total"], "method": "test_decline"},
                        token=cust), 402)
    assert_status(s.call("POST", f"{ORDERS}/{o['order_id']}/pay", {"amount": o["total"], "method": "card"},
                         token=cust), 200)
    did = s.call("GET", f"{ORDERS}/{o['order_id']}/delivery", token=cust).body["delivery_id"]
    assert_status(s.call("POST", f"/api/v1/deliveries/{did}/ship", {"carrier": "C", "tracking_number": "T"},
                         token=seller), 200)
    assert_status(s.call("POST", f"/api/v1/deliveries/{did}/complete", token=seller), 200)
    c = s.call("POST", ORDERS, {"items": [{"product_id": pid, "quantity": 1}]}, token=cust).body
    assert_status(s.call("POST", f"{ORDERS}/{c['order_id']}/cancel", token=cust), 200)
    s.stop()
    types = outbox_types(s.data_dir)
    for t in ("product.created", "stock.adjusted", "sale.created", "sale.sold_out", "order.placed",
              "payment.failed", "order.paid", "payment.completed", "delivery.created", "order.shipped",
              "delivery.shipped", "order.delivered", "delivery.completed", "order.cancelled",
              "notification.created"):
        assert t in types, (t, sorted(set(types)))
    assert types.count("notification.created") == 4, types


if __name__ == "__main__":
    run_tests(globals())
