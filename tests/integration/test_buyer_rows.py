"""Buyer rows written back (include/pickple/buyers.h): a buyer's chain head
and units held per sale change in memory with each order and are stored
later.  These tests take the real binary through kill -9 before any flush,
a clean stop, and an aborted batch, and check that per-user limits, units
coming back and the own-orders list come out exactly as acknowledged."""

import re

from pickple_harness import Server, assert_error, assert_status, run_tests
from test_orders import ORDERS, customer, product, sale, seller_of

NEVER = ["--buyer-flush-ms", "3600000"]  # only a full table or a stop flushes


def order(s, token, sid, q=1, want=201):
    r = s.call("POST", ORDERS, {"sale_id": sid, "quantity": q}, token=token)
    if want == 201:
        assert_status(r, 201)
        return r.body["order_id"]
    assert_error(r, want, "purchase_limit_exceeded")
    return None


def own_orders(s, token, limit):
    got, after = [], 0
    while True:
        r = s.call("GET", f"{ORDERS}?limit={limit}&after={after}", token=token)
        assert_status(r, 200)
        got += [(o["order_id"], o["status"]) for o in r.body["items"]]
        if r.body["next"] is None:
            return got
        after = r.body["next"]


def runs_of(srv):
    """The server log split by start: [(start line, [lines])]."""
    with open(srv.log_path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    return [chunk.splitlines() for chunk in text.split("==== start #")[1:]]


def replays(lines):
    """Orders replayed by each rebuild of this run, in order."""
    return [int(m.group(1)) for line in lines for m in [re.search(r"buyer rows: replayed (\d+) orders", line)]
            if m]


def replayed(lines):
    return sum(replays(lines))


def remaining(s, sid):
    r = s.call("GET", f"/api/v1/sales/{sid}")
    assert_status(r, 200)
    return r.body["remaining"]


def test_kill9_before_any_flush_keeps_limits_and_lists():
    s = Server(threads=2, extra_args=NEVER)
    try:
        _, seller = seller_of(s)
        pid = product(s, seller, stock=1000)
        main = sale(s, seller, pid, quantity=100, limit=3)
        # Ten sales of one shard: a buyer holds units in up to 8 of them in
        # the row, the rest in sale_users (a write-through).
        many = [sale(s, seller, pid, quantity=10, limit=2) for _ in range(10)]
        _, a = customer(s)
        _, b = customer(s)
        _, d = customer(s)
        o1 = order(s, a, main)
        o2 = order(s, a, main)
        order(s, b, main, q=3)
        assert_status(s.call("POST", f"{ORDERS}/{o1}/cancel", token=a), 200)  # written through
        o3 = order(s, a, main)  # pending only
        for sid in many:
            order(s, d, sid)
        order(s, d, many[0])  # in the row
        order(s, d, many[9])  # in sale_users
        before = {sid: remaining(s, sid) for sid in [main] + many}
        s.kill9()
        s.start()
        assert replayed(runs_of(s)[-1]) > 0, "nothing replayed: the test did not reach a pending row"
        # Limits count every acknowledged order, units came back once.
        assert {sid: remaining(s, sid) for sid in [main] + many} == before
        order(s, a, main, q=2, want=409)
        o4 = order(s, a, main)
        order(s, a, main, want=409)
        order(s, b, main, want=409)
        order(s, d, many[0], want=409)
        order(s, d, many[9], want=409)
        order(s, d, many[1])
        order(s, d, many[1], want=409)
        # The chain: every order once, in id order, through any page size.
        want = [(o1, "cancelled"), (o2, "pending_payment"), (o3, "pending_payment"), (o4, "pending_payment")]
        for limit in (1, 2, 100):
            assert own_orders(s, a, limit) == want, limit
        # A clean stop stores the pending rows: the next start replays none.
        assert s.stop() == 0
        s.start()
        assert replayed(runs_of(s)[-1]) == 0, runs_of(s)[-1]
        order(s, a, main, want=409)
        assert own_orders(s, a, 3) == want
    finally:
        s.stop()


def test_full_table_flushes_mid_run_and_replay_resumes_after_it():
    # More buyers than the table flushes at (4096): a flush lands while
    # orders go on, then kill -9; the restart replays only what came after
    # the flush's watermark, and every buyer is still at their limit.
    s = Server(threads=1, extra_args=NEVER)
    try:
        _, seller = seller_of(s)
        pid = product(s, seller, stock=6000)
        sid = sale(s, seller, pid, quantity=6000, limit=1)
        tokens = [customer(s)[1] for _ in range(4500)]
        reqs = [{"method": "POST", "path": ORDERS, "json_body": {"sale_id": sid, "quantity": 1}, "token": t}
                for t in tokens]
        res = s.parallel(reqs, max_time=60)
        assert all(r.status == 201 for r in res), [r for r in res if r.status != 201][:3]
        s.kill9()
        s.start()
        n = replayed(runs_of(s)[-1])
        assert 0 < n < 4500, f"replayed {n}: expected only the orders after the mid-run flush"
        assert remaining(s, sid) == 1500
        again = s.parallel(reqs[:300] + reqs[-300:], max_time=60)
        assert all(r.status == 409 for r in again), [r for r in again if r.status != 409][:3]
        assert remaining(s, sid) == 1500
    finally:
        s.stop()


def test_aborted_batch_forgets_its_buyer_changes():
    # A map that fills: the batch that cannot commit is answered 503, and
    # the buyer row it changed in memory is rebuilt from committed orders,
    # so the list shows exactly the acknowledged orders.
    s = Server(threads=1, extra_args=NEVER + ["--map-size", "512k"], admin_password=None)
    try:
        _, seller = seller_of(s)
        pid = product(s, seller, stock=100000)
        sid = sale(s, seller, pid, quantity=100000, limit=100000)
        _, a = customer(s)
        acked, refused = [], 0
        for _ in range(5000):
            r = s.call("POST", ORDERS, {"sale_id": sid, "quantity": 1}, token=a)
            if r.status == 201:
                assert refused == 0, "201 after a 503"
                acked.append(r.body["order_id"])
            else:
                assert_error(r, 503, "unavailable")
                refused += 1
                if refused >= 3:
                    break
        assert acked and refused >= 3, (len(acked), refused)
        got = [oid for oid, _ in own_orders(s, a, 100)]
        assert got == acked
        # One rebuild per aborted batch, each from the committed orders.
        assert replays(runs_of(s)[-1]) == [len(acked)] * refused, (replays(runs_of(s)[-1]), len(acked), refused)
    finally:
        s.stop()


if __name__ == "__main__":
    run_tests(globals())
