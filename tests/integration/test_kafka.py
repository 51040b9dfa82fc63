"""Kafka mirroring against the development broker, read back with kcat as an
independent consumer: an event for every kind of change (topic, key, value,
header, causal order per key), the broker paused or restarted during
concurrent writes (every request answered in time, every event arrives),
pickple stopped (SIGTERM) and killed (kill -9) in the middle of a backlog,
a fatal producer error injected through the mock cluster, and --kafka-brokers
off keeping events on disk until mirroring is turned on."""

import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from pickple_harness import (Server, ServerStartError, assert_status, claims_for, forge_jwt, free_port,
                             run_h2load, run_tests, tmp_path)

PREFIX = "pickple"
TOPICS = ["users", "products", "sales", "orders", "payments", "deliveries", "notifications"]
TOPIC_OF_PREFIX = {"user": "users", "product": "products", "stock": "products", "sale": "sales",
                   "order": "orders", "payment": "payments", "delivery": "deliveries",
                   "notification": "notifications"}
ID_FIELD = {"users": "user_id", "products": "product_id", "sales": "sale_id", "orders": "order_id",
            "payments": "payment_id", "deliveries": "delivery_id", "notifications": "notification_id"}
ALL_TYPES = {"user.registered", "user.role_changed", "product.created", "product.updated", "stock.adjusted",
             "sale.created", "sale.sold_out", "sale.ended", "order.placed", "order.paid", "order.cancelled",
             "order.expired", "order.shipped", "order.delivered", "payment.completed", "payment.failed",
             "payment.refunded", "delivery.created", "delivery.shipped", "delivery.completed",
             "notification.created"}
# Outage tests write enough events that one shard exceeds the publisher's
# in-flight bound (16,384), so part of the backlog waits on disk only.
OUTAGE_EVENTS = int(os.environ.get("PICKPLE_KAFKA_OUTAGE_EVENTS", "40000"))
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


# ------------------------------------------------------------------ helpers

def kafka_dev_bin():
    d = os.environ.get("PICKPLE_BUILD_DIR") or os.path.dirname(os.environ.get("PICKPLE_BIN", ""))
    return os.path.join(os.path.abspath(d), "pickple-kafka-dev")


class KafkaDev:
    """pickple-kafka-dev on a fixed port of 127.0.0.1."""

    def __init__(self, port=None, partitions=6):
        self.port = port or free_port()
        self.partitions = partitions
        self.log_path = tmp_path("kafka-dev") + ".log"
        self.proc = None
        self.start()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([kafka_dev_bin(), "--listen", self.addr, "--partitions", str(self.partitions)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
        log.close()
        line = self.proc.stdout.readline().decode().strip()
        assert line == self.addr, f"pickple-kafka-dev printed {line!r}, expected {self.addr}\n{self.log()}"

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.proc = None

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


_devs = []


def kafka_dev(**kw):
    d = KafkaDev(**kw)
    _devs.append(d)
    return d


def stop_devs():
    for d in _devs:
        try:
            d.stop()
        except Exception:
            if d.proc:
                d.proc.kill()
    _devs.clear()


def consume(addr, timeout=120):
    """Every message of every topic from the beginning, as kcat -J prints them."""
    out = []
    for t in TOPICS:
        p = subprocess.run(["kcat", "-b", addr, "-C", "-t", f"{PREFIX}.{t}", "-o", "beginning", "-e", "-J", "-q",
                            "-X", "fetch.wait.max.ms=10"], capture_output=True, timeout=timeout)
        assert p.returncode == 0, f"kcat on {t}: {p.stderr.decode(errors='replace')}"
        for line in p.stdout.decode().splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out


def metrics(s):
    r = s.call("GET", "/metrics")
    assert_status(r, 200)
    vals = {}
    for line in r.raw.decode().splitlines():
        m = re.match(r'^(pickple_kafka_\w+)(?:\{shard="(\d+)"\})? (\d+)$', line)
        if m:
            vals.setdefault(m.group(1), {})[int(m.group(2)) if m.group(2) else None] = int(m.group(3))
    return vals


def backlog(s):
    return sum(metrics(s)["pickple_kafka_backlog_events"].values())


def wait_drained(s, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = metrics(s)
        if sum(m["pickple_kafka_backlog_events"].values()) == 0:
            return m
        time.sleep(0.2)
    raise AssertionError(f"backlog not drained within {timeout}s: {metrics(s)}\n{s.log_tail()}")


def check_events(records, acked_seq, since=None):
    """Every record is a well-formed event on its topic with its key; every
    shard's events since[shard]+1..acked_seq[shard] are present; duplicates are identical;
    the first occurrences of each key's events come in outbox order (per
    partition of one broker generation, rec["gen"], when a broker restarted).
    Returns {event_id: (topic, key, event)}."""
    events = {}
    first_seen = {}  # (topic, partition) -> [(key, shard, seq)] in offset order
    for rec in sorted(records, key=lambda r: (r.get("gen", 0), r["topic"], r["partition"], r["offset"])):
        topic = rec["topic"]
        assert topic.startswith(PREFIX + "."), rec
        ev = json.loads(rec["payload"])
        assert set(ev) == {"event_id", "type", "occurred_at", "data"}, ev
        assert ev["type"] in ALL_TYPES, ev
        assert topic == f"{PREFIX}.{TOPIC_OF_PREFIX[ev['type'].split('.')[0]]}", (topic, ev["type"])
        assert RFC3339.match(ev["occurred_at"]), ev
        kind = topic.split(".", 1)[1]
        assert rec["key"] == str(ev["data"][ID_FIELD[kind]]), (rec["key"], ev)
        hdrs = rec.get("headers") or []
        assert hdrs == ["content-type", "application/json"], hdrs
        if ev["type"].startswith("user."):
            assert "password" not in json.dumps(ev["data"]), ev
        m = re.fullmatch(r"(\d+)-(\d+)", ev["event_id"])
        assert m, ev["event_id"]
        shard, seq = int(m.group(1)), int(m.group(2))
        if ev["event_id"] in events:
            assert events[ev["event_id"]] == (topic, rec["key"], ev), f"duplicate {ev['event_id']} differs"
            continue
        events[ev["event_id"]] = (topic, rec["key"], ev)
        first_seen.setdefault((rec.get("gen", 0), topic, rec["partition"]), []).append((rec["key"], shard, seq))
    for shard, top in acked_seq.items():
        low = (since or {}).get(shard, 0) + 1
        missing = [s for s in range(low, top + 1) if f"{shard}-{s}" not in events]
        assert not missing, (f"shard {shard}: {len(missing)} of {top - low + 1} events after {low - 1} missing, "
                             f"e.g. {missing[:10]}")
    for part, seen in first_seen.items():
        last = {}
        for key, shard, seq in seen:
            prev = last.get((key, shard))
            assert prev is None or prev < seq, f"{part} key {key}: event {shard}-{seq} after {shard}-{prev}"
            last[(key, shard)] = seq
    return events


def acked(m):
    return m["pickple_kafka_acked_seq"]


def seller_token(s, uid=900001):
    return forge_jwt(s.jwt_secret(), claims_for(uid, "seller"))


def h2load_products(s, n, token, clients=4, streams=16):
    body = {"name": "kafka-load", "price": 100, "stock": 5}
    return run_h2load(s.base_url, "/api/v1/products", n, clients=clients, streams=streams, body=body,
                      headers={"authorization": f"Bearer {token}"}, timeout=300)


def max_request_seconds(h2load_output):
    m = re.search(r"time for request:\s+(\S+)\s+(\S+)", h2load_output)
    assert m, h2load_output
    v = m.group(2)
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
    num, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", v).groups()
    return float(num) * scale[unit]


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def broker_addr_from_log(s):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(s.log_path, errors="replace") as f:
            m = re.findall(r"embedded development broker on (\S+) ", f.read())
        if m:
            return m[-1]
        time.sleep(0.1)
    raise AssertionError("no embedded broker address in the log\n" + s.log_tail())


# -------------------------------------------------------------------- tests

def test_kafka_dev_cli():
    p = subprocess.run([kafka_dev_bin(), "--help"], capture_output=True)
    assert p.returncode == 0 and b"in memory" in p.stdout, p
    p = subprocess.run([kafka_dev_bin(), "--bogus", "1"], capture_output=True)
    assert p.returncode == 2, p
    p = subprocess.run([kafka_dev_bin(), "--partitions", "0"], capture_output=True)
    assert p.returncode == 2, p


def test_every_kind_of_change_embedded():
    """Default mode (embedded broker): each kind of change has its event on
    the right topic with the right key, value and header, in order per key."""
    s = Server(threads=2, extra_args=["--kafka-brokers", "embedded", "--order-ttl", "4"])
    try:
        addr = broker_addr_from_log(s)
        atok = s.admin_token()
        did = []

        user, _ = s.new_user(prefix="kfk")
        r = s.call("PUT", f"/api/v1/users/{user['user_id']}/role", {"role": "seller"}, token=atok)
        assert_status(r, 200)
        did += ["user.registered", "user.role_changed"]
        seller = s.sign_in(user["username"])
        r = s.call("POST", "/api/v1/products", {"name": "kettle", "price": 1000, "stock": 20}, token=seller)
        assert_status(r, 201)
        pid = r.body["product_id"]
        assert_status(s.call("PATCH", f"/api/v1/products/{pid}", {"price": 1200}, token=seller), 200)
        assert_status(s.call("POST", f"/api/v1/products/{pid}/stock", {"delta": 5}, token=seller), 200)
        did += ["product.created", "product.updated", "stock.adjusted"]
        body = {"product_id": pid, "price": 900, "quantity": 1, "per_user_limit": 1,
                "starts_at": iso(now() - datetime.timedelta(seconds=5)),
                "ends_at": iso(now() + datetime.timedelta(seconds=3))}
        r = s.call("POST", "/api/v1/sales", body, token=seller)
        assert_status(r, 201)
        sid = r.body["sale_id"]
        did += ["sale.created"]

        _, cust = s.new_user(prefix="kfc")
        r = s.call("POST", "/api/v1/orders", {"sale_id": sid, "quantity": 1}, token=cust)
        if r.status == 404 and r.body and r.body.get("error", {}).get("code") == "not_found":
            skip_orders = True
        else:
            skip_orders = False
            assert_status(r, 201)
            placed = r.body
            did += ["order.placed", "sale.sold_out"]
            ship = {"recipient": "Ada", "address": "1 Main St", "phone": "+1 555"}
            r = s.call("POST", "/api/v1/orders", {"items": [{"product_id": pid, "quantity": 2}], "shipping": ship},
                       token=cust)
            assert_status(r, 201)
            oid = r.body["order_id"]
            r = s.call("POST", f"/api/v1/orders/{oid}/pay", {"amount": 2400, "method": "test_decline"}, token=cust)
            assert_status(r, 402)
            r = s.call("POST", f"/api/v1/orders/{oid}/pay", {"amount": 2400, "method": "card"}, token=cust)
            assert_status(r, 200)
            paid_doc = r.body
            did += ["payment.failed", "order.paid", "payment.completed", "delivery.created",
                    "notification.created"]
            r = s.call("GET", f"/api/v1/orders/{oid}/delivery", token=cust)
            assert_status(r, 200)
            dlv = r.body["delivery_id"]
            r = s.call("POST", f"/api/v1/deliveries/{dlv}/ship", {"carrier": "ups", "tracking_number": "1Z"},
                       token=seller)
            assert_status(r, 200)
            assert_status(s.call("POST", f"/api/v1/deliveries/{dlv}/complete", token=seller), 200)
            did += ["delivery.shipped", "order.shipped", "delivery.completed", "order.delivered"]
            r = s.call("POST", "/api/v1/orders", {"items": [{"product_id": pid, "quantity": 1}]}, token=cust)
            assert_status(r, 201)
            paid = r.body["order_id"]
            assert_status(s.call("POST", f"/api/v1/orders/{paid}/pay", {"amount": 1200, "method": "card"},
                                 token=cust), 200)
            assert_status(s.call("POST", f"/api/v1/orders/{paid}/cancel", token=cust), 200)
            did += ["order.cancelled", "payment.refunded"]
            r = s.call("POST", "/api/v1/orders", {"items": [{"product_id": pid, "quantity": 1}]}, token=cust)
            assert_status(r, 201)
            did += ["order.expired"]  # --order-ttl 4
        time.sleep(5.5)  # the sale ends (sale.ended) and the last order expires
        did += ["sale.ended"]

        m = wait_drained(s)
        events = check_events(consume(addr), acked(m))
        types = {ev["type"] for _, _, ev in events.values()}
        missing = set(did) - types
        assert not missing, f"no event for {sorted(missing)}; got {sorted(types)}"
        if not skip_orders:
            assert types == ALL_TYPES, f"never seen: {sorted(ALL_TYPES - types)}"

        if not skip_orders:
            # Order events carry the API's documents of that moment.
            by_type = {}
            for _, key, ev in events.values():
                by_type.setdefault((ev["type"], key), []).append(ev["data"])
            assert by_type[("order.placed", str(placed["order_id"]))] == [placed], by_type.get(("order.placed",))
            assert by_type[("order.paid", str(oid))] == [paid_doc]
            pay = paid_doc["payment"]
            assert by_type[("payment.completed", str(pay["payment_id"]))] == [pay]
            failed = [d for (t, _), ds in by_type.items() if t == "payment.failed" for d in ds]
            assert len(failed) == 1 and failed[0]["order_id"] == oid and failed[0]["status"] == "failed" and \
                failed[0]["amount"] == 2400 and failed[0]["method"] == "test_decline" and \
                failed[0]["paid_at"] is None, failed

        # The product's own events, in the order the changes happened.
        prod = [ev for _, key, ev in events.values() if key == str(pid) and ev["type"].split(".")[0] in
                ("product", "stock")]
        prod.sort(key=lambda ev: int(ev["event_id"].split("-")[1]))
        assert [ev["type"] for ev in prod[:3]] == ["product.created", "product.updated", "stock.adjusted"], prod
        assert prod[1]["data"]["price"] == 1200 and prod[2]["data"]["stock"] == 25, prod[:3]
    finally:
        s.kill9()


def test_broker_paused_during_concurrent_writes():
    """The broker hangs (SIGSTOP) while clients write: every request is
    answered in time, the backlog grows past the in-flight bound onto disk,
    and after the broker resumes every event arrives, in order."""
    dev = kafka_dev()
    s = Server(threads=2, extra_args=["--kafka-brokers", dev.addr, "--sync", "none"])
    try:
        tok = seller_token(s)
        r = h2load_products(s, 200, tok)
        assert r["2xx"] == 200, r["output"]
        before = sum(acked(wait_drained(s)).values())
        result = {}

        def load():
            result["r"] = h2load_products(s, OUTAGE_EVENTS, tok)

        th = threading.Thread(target=load)
        th.start()
        # Stop the broker once it has taken the first events of the load,
        # not after a fixed time: a fast server could otherwise deliver most
        # of the load before the stop and leave too little to back up.
        deadline = time.monotonic() + 30
        while sum(acked(metrics(s)).values()) < before + 500 and time.monotonic() < deadline:
            time.sleep(0.01)
        dev.signal(signal.SIGSTOP)
        th.join()
        r = result["r"]
        assert r["2xx"] == OUTAGE_EVENTS, r["output"]
        slowest = max_request_seconds(r["output"])
        assert slowest < 5.0, f"slowest request {slowest:.3f}s with the broker down\n{r['output']}"
        stuck = backlog(s)
        assert stuck > 16384, f"backlog {stuck}: the broker did not stop in time?"
        # Still serving with the broker down.
        assert_status(s.call("GET", "/api/v1/products?limit=1", max_time=5), 200)
        dev.signal(signal.SIGCONT)
        m = wait_drained(s)
        check_events(consume(dev.addr), acked(m))
        assert sum(acked(m).values()) >= OUTAGE_EVENTS + 200
    finally:
        s.kill9()
        stop_devs()


def committed(m):
    """Per shard, the last outbox seq committed (acknowledged + backlog)."""
    return {sh: m["pickple_kafka_acked_seq"][sh] + m["pickple_kafka_backlog_events"][sh]
            for sh in m["pickple_kafka_acked_seq"]}


def test_broker_restarted_during_concurrent_writes():
    """The broker process is killed during writes (its in-memory data is
    gone) and a new one starts on the same port while writes go on: every
    request is answered in time, and every event committed after the old
    broker died reaches the new one.  (What the old broker had acknowledged
    died with it: only a durable cluster keeps that.)"""
    dev = kafka_dev()
    s = Server(threads=2, extra_args=["--kafka-brokers", dev.addr, "--sync", "none"])
    try:
        tok = seller_token(s)
        assert h2load_products(s, 100, tok)["2xx"] == 100
        check_events(consume(dev.addr), acked(wait_drained(s)))
        result = {}

        def load(n):
            result["r"] = h2load_products(s, n, tok)

        th = threading.Thread(target=load, args=(20000,))
        th.start()
        time.sleep(0.2)
        dev.proc.kill()
        dev.proc.wait()
        # Events committed from here on cannot have reached the old broker
        # (the pause lets every earlier commit publish its seq).
        time.sleep(0.3)
        at_kill = committed(metrics(s))
        th.join()
        r = result["r"]
        assert r["2xx"] == 20000, r["output"]
        assert max_request_seconds(r["output"]) < 5.0, r["output"]
        r = h2load_products(s, 3000, tok)  # no broker at all: connections refused
        assert r["2xx"] == 3000, r["output"]
        assert max_request_seconds(r["output"]) < 5.0, r["output"]
        assert backlog(s) >= 3000
        dev.start()
        m = wait_drained(s)
        check_events(consume(dev.addr), acked(m), since=at_kill)
        assert sum(acked(m).values()) - sum(at_kill.values()) >= 3000, (at_kill, acked(m))
    finally:
        s.kill9()
        stop_devs()


def test_pickple_stopped_and_killed_mid_backlog():
    """A backlog builds up with the broker down; pickple is stopped (SIGTERM)
    and restarted, then killed (kill -9) while the backlog drains, and
    restarted again: every event arrives."""
    dev = kafka_dev()
    s = Server(threads=2, extra_args=["--kafka-brokers", dev.addr])
    try:
        tok = seller_token(s)
        assert h2load_products(s, 500, tok)["2xx"] == 500
        wait_drained(s)
        dev.signal(signal.SIGUSR2)  # broker down: connections refused
        time.sleep(0.2)
        assert h2load_products(s, 4000, tok)["2xx"] == 4000
        assert backlog(s) >= 4000
        assert s.stop(signal.SIGTERM) == 0
        s.start()
        assert backlog(s) >= 4000, "the backlog survives a restart"
        assert h2load_products(s, 4000, tok)["2xx"] == 4000
        dev.signal(signal.SIGUSR2)  # broker up: the backlog starts draining
        deadline = time.monotonic() + 60
        while backlog(s) > 6000 and time.monotonic() < deadline:
            time.sleep(0.01)
        s.kill9()
        s.start()
        m = wait_drained(s)
        assert sum(acked(m).values()) >= 8500
        check_events(consume(dev.addr), acked(m))
    finally:
        s.kill9()
        stop_devs()


def test_fatal_producer_error_recovers():
    """A fatal idempotent-producer error injected through the mock cluster:
    the producer is replaced, resumes from the acknowledged events, and
    nothing is lost."""
    dev = kafka_dev()
    s = Server(threads=2, extra_args=["--kafka-brokers", dev.addr])
    try:
        tok = seller_token(s)
        assert h2load_products(s, 300, tok)["2xx"] == 300
        wait_drained(s)
        dev.signal(signal.SIGUSR1)  # the next produce request is fenced
        time.sleep(0.2)
        assert h2load_products(s, 3000, tok)["2xx"] == 3000
        m = wait_drained(s)
        assert m["pickple_kafka_producer_restarts_total"][None] >= 1, m
        with open(s.log_path, errors="replace") as f:
            assert "fatal producer error" in f.read(), s.log_tail()
        assert sum(acked(m).values()) >= 3300
        check_events(consume(dev.addr), acked(m))
    finally:
        s.kill9()
        stop_devs()


def test_off_keeps_events_until_mirroring_is_on():
    """--kafka-brokers off ships nothing and keeps every event on disk; the
    next start with a broker ships them all."""
    s = Server(threads=2)  # the harness default: --kafka-brokers off
    dev = None
    try:
        tok = seller_token(s)
        assert h2load_products(s, 1000, tok)["2xx"] == 1000
        assert "pickple_kafka_backlog_events" not in metrics(s)
        with open(s.log_path, errors="replace") as f:
            assert "mirroring is off" in f.read()
        dev = kafka_dev()
        s.restart(extra_args=["--kafka-brokers", dev.addr])
        m = wait_drained(s)
        assert sum(acked(m).values()) >= 1001  # + the admin's user.registered
        check_events(consume(dev.addr), acked(m))
        time.sleep(0.5)  # a tick trims what was acknowledged
        m = metrics(s)
        assert sum(m["pickple_kafka_outbox_rows"].values()) == 0, m
    finally:
        s.kill9()
        stop_devs()


def test_kafka_config_file():
    """--kafka-config-file passes librdkafka settings through (what a real
    cluster needs: security, rack); a setting pickple's guarantees rest on,
    an unknown one, a malformed line or a missing file stop the start-up
    with a message naming the file, line and key."""
    dev = kafka_dev()
    tmp = tempfile.mkdtemp(prefix="pickple-kcfg-")
    try:
        good = os.path.join(tmp, "client.properties")
        with open(good, "w") as f:
            f.write("# plaintext to the development broker\n\n"
                    "security.protocol = plaintext\n! another comment\nclient.rack=rack-a\nlinger.ms=1\n")
        s = Server(threads=2, extra_args=["--kafka-brokers", dev.addr, "--kafka-config-file", good])
        try:
            tok = seller_token(s)
            assert h2load_products(s, 200, tok)["2xx"] == 200
            m = wait_drained(s)
            check_events(consume(dev.addr), acked(m))
            with open(s.log_path, errors="replace") as f:
                assert "3 settings from " + good in f.read(), s.log_tail()
        finally:
            s.kill9()
        bad = [
            ("enable.idempotence=false\n", "client.properties:1: enable.idempotence is set by pickple"),
            ("client.rack=a\n  acks = 1\n", "client.properties:2: acks is set by pickple"),
            ("no.such.setting=1\n", "client.properties:1: No such configuration property"),
            ("security.protocol\n", "client.properties:1: expected key=value"),
            ("security.protocol=carrier-pigeon\n", "client.properties:1: Invalid value"),
        ]
        for text, want in bad:
            with open(good, "w") as f:
                f.write(text)
            s = Server(threads=2, extra_args=["--kafka-brokers", dev.addr, "--kafka-config-file", good], start=False)
            try:
                s.start()
                raise AssertionError(f"started with {text!r}")
            except ServerStartError:
                pass
            finally:
                s.kill9()
            with open(s.log_path, errors="replace") as f:
                log = f.read()
            assert want in log, (text, log[-2000:])
        missing = os.path.join(tmp, "nope.properties")
        s = Server(threads=2, extra_args=["--kafka-brokers", dev.addr, "--kafka-config-file", missing], start=False)
        try:
            s.start()
            raise AssertionError("started without its config file")
        except ServerStartError:
            pass
        finally:
            s.kill9()
        with open(s.log_path, errors="replace") as f:
            assert "cannot read " + missing in f.read()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        stop_devs()


if __name__ == "__main__":
    try:
        run_tests(globals())
    finally:
        stop_devs()
