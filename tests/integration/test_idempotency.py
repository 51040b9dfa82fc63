"""Idempotency-Key over HTTP/2 against the real binary: --idempotency-window
(flag and environment), replay of the first answer inside the window, a new
order with the same key after it, and the purge of idem_keys, idem_answers
and their expiry index idem_due, read back with mdb_dump (lmdb-utils): by
the running server's maintenance, at start-up after the window passed while
the server was down, and for entries written before the index existed."""

import datetime
import glob
import os
import shutil
import struct
import subprocess
import time

from pickple_harness import (Server, assert_error, assert_status, claims_for, clean_env, forge_jwt, free_port,
                             pickple_bin, run_tests, tmp_dir, tmp_path)

ORDERS = "/api/v1/orders"
WINDOW_S = 2
IDEM_TABLES = ("idem_keys", "idem_answers", "idem_due")
_uid = [5000]


def require_lmdb_utils():
    for tool in ("mdb_dump", "mdb_load"):
        if shutil.which(tool) is None:
            raise AssertionError(f"{tool} (lmdb-utils) is required")


def new_uid():
    _uid[0] += 1
    return _uid[0]


def tok(s, uid, role="customer"):
    return forge_jwt(s.jwt_secret(), claims_for(uid, role))


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def product(s, seller, shard, stock=20, price=100, nshards=2):
    while True:
        r = s.call("POST", "/api/v1/products", {"name": "thing", "price": price, "stock": stock}, token=seller)
        assert_status(r, 201)
        if r.body["product_id"] % nshards == shard:
            return r.body["product_id"]


def sale(s, seller, pid, quantity, limit):
    now = datetime.datetime.now(datetime.timezone.utc)
    body = {"product_id": pid, "price": 50, "quantity": quantity, "per_user_limit": limit,
            "starts_at": iso(now - datetime.timedelta(seconds=60)),
            "ends_at": iso(now + datetime.timedelta(seconds=3600))}
    r = s.call("POST", "/api/v1/sales", body, token=seller)
    assert_status(r, 201)
    return r.body["sale_id"]


# ------------------------------------------------------------ mdb_dump / load

def dump(env, table):
    """Every (key, value) of one table of one shard environment, as bytes.
    mdb_dump's hex format: its -p format does not escape backslashes (lmdb
    0.9.24), so binary keys would not read back exactly."""
    p = subprocess.run(["mdb_dump", "-s", table, env], capture_output=True, text=True)
    assert p.returncode == 0, f"mdb_dump -s {table} {env}: {p.stderr}"
    lines = p.stdout.splitlines()
    assert "format=bytevalue" in lines, p.stdout
    body = lines[lines.index("HEADER=END") + 1:lines.index("DATA=END")]
    assert len(body) % 2 == 0 and all(ln.startswith(" ") for ln in body), p.stdout
    items = [bytes.fromhex(ln[1:]) for ln in body]
    return list(zip(items[0::2], items[1::2]))


def shard_envs(data_dir):
    envs = sorted(glob.glob(os.path.join(data_dir, "shard-*")))
    assert envs, f"no shard environments in {data_dir}"
    return envs


def idem_state(data_dir):
    """{table: [entries]} over every shard, each entry decoded:
    idem_keys / idem_answers -> (user id, key), idem_due -> (written_ms, tag,
    user id, key) with tag 0 for idem_keys and 1 for idem_answers."""
    state = {t: [] for t in IDEM_TABLES}
    for env in shard_envs(data_dir):
        for t in IDEM_TABLES:
            for k, _ in dump(env, t):
                if t == "idem_due":
                    assert len(k) > 17, k
                    written_ms, tag, uid = struct.unpack(">QBQ", k[:17])
                    assert tag in (0, 1), k
                    state[t].append((written_ms, tag, uid, k[17:].decode()))
                else:
                    assert len(k) > 8, k
                    state[t].append((struct.unpack(">Q", k[:8])[0], k[8:].decode()))
    return state


def assert_indexed(state, uid, key):
    """(uid, key) has exactly one binding, one answer and one index entry
    for each (an index entry left behind by a rewrite would be a second)."""
    assert state["idem_keys"].count((uid, key)) == 1, (uid, key, state)
    assert state["idem_answers"].count((uid, key)) == 1, (uid, key, state)
    for tag in (0, 1):
        due = [d for d in state["idem_due"] if d[1:] == (tag, uid, key)]
        assert len(due) == 1, (uid, key, tag, state)


def assert_purged(data_dir, what):
    state = idem_state(data_dir)
    left = {t: v for t, v in state.items() if v}
    assert not left, f"{what}: idempotency entries left: {left}"


def wait_purged(data_dir, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(idem_state(data_dir).values()):
            return
        time.sleep(0.1)
    assert_purged(data_dir, f"{timeout}s after the window")


def save_tables(data_dir, tables):
    """{(env, table): dump file} in mdb_dump's default (hex) format."""
    saved = {}
    for env in shard_envs(data_dir):
        for t in tables:
            path = tmp_path("dump")
            with open(path, "w") as f:
                subprocess.run(["mdb_dump", "-s", t, env], stdout=f, check=True)
            saved[(env, t)] = path
    return saved


def load(env, table, path):
    p = subprocess.run(["mdb_load", "-s", table, "-f", path, env], capture_output=True, text=True)
    assert p.returncode == 0, f"mdb_load -s {table} {env}: {p.stderr}"


def load_meta(env, key, value):
    path = tmp_path("meta")
    with open(path, "w") as f:
        f.write("VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n")
        f.write(f" {key.encode().hex()}\n {value.hex()}\nDATA=END\n")
    load(env, "meta", path)


# ------------------------------------------------------------------- options

def _run(args, env=None):
    d = tmp_dir("cli")
    base = ["--listen", f"127.0.0.1:{free_port()}", "--data-dir", d, "--kafka-brokers", "off"]
    return subprocess.run([pickple_bin()] + base + args, capture_output=True, timeout=15,
                          env=clean_env(env), stdin=subprocess.DEVNULL)


def test_window_option_is_documented_and_checked():
    p = subprocess.run([pickple_bin(), "--help"], capture_output=True, timeout=15)
    assert p.returncode == 0 and b"--idempotency-window SECONDS" in p.stdout, p.stdout
    for bad in ("0", "2592001", "-1", "1.5", "abc", ""):
        p = _run(["--idempotency-window", bad])
        err = p.stderr.decode(errors="replace")
        assert p.returncode == 2 and "--idempotency-window" in err, (bad, p.returncode, err)
    p = _run([], env={"PICKPLE_IDEMPOTENCY_WINDOW": "0"})
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 2 and "PICKPLE_IDEMPOTENCY_WINDOW" in err, (p.returncode, err)


# --------------------------------------------------------------- the window

def test_replay_inside_window_new_order_after_and_purge_across_restart():
    require_lmdb_utils()
    s = Server(threads=2, extra_args=["--idempotency-window", str(WINDOW_S)])
    seller = tok(s, new_uid(), "seller")
    p0 = product(s, seller, shard=0)
    p1 = product(s, seller, shard=1)
    sid = sale(s, seller, p1, quantity=10, limit=10)
    user, cust = s.new_user(prefix="idem")
    uid = user["user_id"]
    sale_body = {"sale_id": sid, "quantity": 1}
    cart_body = {"items": [{"product_id": p0, "quantity": 1}, {"product_id": p1, "quantity": 1}]}
    big_body = {"sale_id": sid, "quantity": 11}

    def place(body, key):
        return s.call("POST", ORDERS, body, token=cust, headers={"Idempotency-Key": key})

    # Inside the window: the first answer again, byte for byte, nothing new.
    # "cart" is placed across both shards (placing answer, then the final one).
    t0 = time.monotonic()
    first_sale = place(sale_body, "sale")
    assert_status(first_sale, 201)
    again = place(sale_body, "sale")
    first_cart = place(cart_body, "cart")
    assert_status(first_cart, 201)
    again_cart = place(cart_body, "cart")
    refused = place(big_body, "big")
    assert_error(refused, 409)
    again_big = place(big_body, "big")
    inside = time.monotonic() - t0
    assert inside < WINDOW_S, f"the retries took {inside:.2f}s, longer than the {WINDOW_S}s window"
    assert again.status == 201 and again.raw == first_sale.raw, (first_sale, again)
    assert again_cart.status == 201 and again_cart.raw == first_cart.raw, (first_cart, again_cart)
    assert again_big.status == 409 and again_big.raw == refused.raw, (refused, again_big)
    assert_error(place(cart_body, "sale"), 422, "idempotency_key_reused")
    assert s.call("GET", f"/api/v1/sales/{sid}").body["remaining"] == 9  # one sale order, once
    # Stored and indexed: one binding, one answer, one index entry each.
    state = idem_state(s.data_dir)
    for key in ("sale", "cart", "big"):
        assert_indexed(state, uid, key)
    assert len(state["idem_due"]) == 6, state

    # Past the window the maintenance deletes everything (100 ms tick).
    wait_purged(s.data_dir, timeout=WINDOW_S + 3 - (time.monotonic() - t0))

    # The same key is a new request now: a new order, a new answer.
    later = place(sale_body, "sale")
    assert_status(later, 201)
    assert later.body["order_id"] != first_sale.body["order_id"], (first_sale, later)
    later_cart = place(cart_body, "cart")
    assert_status(later_cart, 201)
    assert later_cart.body["order_id"] != first_cart.body["order_id"], (first_cart, later_cart)
    assert again.raw != later.raw
    ids = {o["order_id"] for o in s.call("GET", f"{ORDERS}?limit=100", token=cust).body["items"]}
    assert ids == {first_sale.body["order_id"], first_cart.body["order_id"], later.body["order_id"],
                   later_cart.body["order_id"]}, ids
    state = idem_state(s.data_dir)
    assert_indexed(state, uid, "sale")
    assert_indexed(state, uid, "cart")
    assert len(state["idem_due"]) == 4, state

    # Down while the window passes: start-up purges before /readyz is 200.
    s.stop()
    assert len(idem_state(s.data_dir)["idem_due"]) == 4
    time.sleep(WINDOW_S + 0.3)
    s.start()
    assert_purged(s.data_dir, "right after the restart")
    # A request within the new window replays again after the restart.
    third = place(sale_body, "sale")
    assert_status(third, 201)
    s.stop()
    s.start()
    assert place(sale_body, "sale").raw == third.raw
    s.stop()
    state = idem_state(s.data_dir)
    assert_indexed(state, uid, "sale")


def test_entries_from_before_the_index_are_purged():
    """A data directory written before idem_due has bindings and answers
    without index entries: the maintenance indexes them once and purges
    them like any other.  Simulated by loading back saved idem_keys and
    idem_answers (no idem_due entries) and resetting the backfill's progress
    marker.  The window comes from the environment this time."""
    require_lmdb_utils()
    s = Server(threads=2, env={"PICKPLE_IDEMPOTENCY_WINDOW": str(WINDOW_S)})
    seller = tok(s, new_uid(), "seller")
    pids = [product(s, seller, shard=0), product(s, seller, shard=1)]
    _, cust = s.new_user(prefix="old")
    keys = [f"old-{i}" for i in range(6)]
    for i, key in enumerate(keys):
        r = s.call("POST", ORDERS, {"items": [{"product_id": pids[i % 2], "quantity": 1}]}, token=cust,
                   headers={"Idempotency-Key": key})
        assert_status(r, 201)
    s.stop()
    saved = save_tables(s.data_dir, ("idem_keys", "idem_answers"))
    assert len(idem_state(s.data_dir)["idem_due"]) == 12
    time.sleep(WINDOW_S + 0.3)
    s.start()
    assert_purged(s.data_dir, "after the window")
    s.stop()
    for (env, table), path in saved.items():
        load(env, table, path)
        load_meta(env, "idem.backfill", b"\x00")
    state = idem_state(s.data_dir)
    assert len(state["idem_keys"]) == 6 and len(state["idem_answers"]) == 6 and not state["idem_due"], state
    s.start()
    assert_purged(s.data_dir, "after the start-up maintenance")
    s.stop()


def load_due(env, entries):
    """Adds idem_due entries (written_ms, tag, user id, key) to env."""
    path = tmp_path("due")
    with open(path, "w") as f:
        f.write("VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n")
        for written_ms, tag, uid, key in entries:
            f.write(f" {(struct.pack('>QBQ', written_ms, tag, uid) + key.encode()).hex()}\n \n")  # value ""
        f.write("DATA=END\n")
    load(env, "idem_due", path)


def test_stale_index_entries_never_delete_live_entries():
    """An index entry older than its entry's current write (left by a
    rewrite) is dropped by the purge without touching the entry; a shorter
    window after a restart applies to entries written under the longer one."""
    require_lmdb_utils()
    s = Server(threads=2, extra_args=["--idempotency-window", "60"])
    seller = tok(s, new_uid(), "seller")
    pid = product(s, seller, shard=1)
    user, cust = s.new_user(prefix="stale")
    uid = user["user_id"]
    body = {"items": [{"product_id": pid, "quantity": 1}]}
    first = s.call("POST", ORDERS, body, token=cust, headers={"Idempotency-Key": "live"})
    assert_status(first, 201)
    s.stop()
    state = idem_state(s.data_dir)
    assert_indexed(state, uid, "live")
    written_ms = state["idem_due"][0][0]
    stale = [(written_ms - 600_000, tag, uid, "live") for tag in (0, 1)]
    for env in shard_envs(s.data_dir):
        load_due(env, stale)
    assert len(idem_state(s.data_dir)["idem_due"]) == 2 + 2 * len(shard_envs(s.data_dir))
    s.start()  # the stale entries are 10 minutes past the window: handled at start-up
    state = idem_state(s.data_dir)
    assert len(state["idem_due"]) == 2, state
    assert_indexed(state, uid, "live")
    again = s.call("POST", ORDERS, body, token=cust, headers={"Idempotency-Key": "live"})
    assert again.status == 201 and again.raw == first.raw, (first, again)
    # A shorter window applies to what is stored, at start-up.
    s.stop()
    time.sleep(max(0.0, written_ms / 1000 + 1.2 - time.time()))
    s.restart(extra_args=["--idempotency-window", "1"])
    assert_purged(s.data_dir, "after a restart with a 1 s window")
    s.stop()


def load_keys(env, entries):
    """Adds idem_keys bindings (user id, key, written_ms) to env."""
    path = tmp_path("keys")
    with open(path, "w") as f:
        f.write("VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n")
        for uid, key, written_ms in entries:
            k = struct.pack(">Q", uid) + key.encode()
            f.write(f" {k.hex()}\n {struct.pack('>QQ', written_ms, 12345).hex()}\n")
        f.write("DATA=END\n")
    load(env, "idem_keys", path)


def test_large_backlog_is_purged_in_bounded_steps():
    """Bindings far beyond one sweep's bound (256): the start-up maintenance
    goes on, one bounded transaction after another, until nothing is due;
    first with index entries, then without (an old data directory)."""
    require_lmdb_utils()
    s = Server(threads=2, extra_args=["--idempotency-window", "60"])
    s.stop()
    old_ms = int(time.time() * 1000) - 3_600_000
    n = 600
    for indexed in (True, False):
        for shard, env in enumerate(shard_envs(s.data_dir)):
            entries = [(7, f"bulk-{indexed}-{shard}-{i:04d}", old_ms + i) for i in range(n)]
            load_keys(env, entries)
            if indexed:
                load_due(env, [(ms, 0, uid, key) for uid, key, ms in entries])
            else:
                load_meta(env, "idem.backfill", b"\x00")
        state = idem_state(s.data_dir)
        assert len(state["idem_keys"]) == 2 * n and len(state["idem_due"]) == (2 * n if indexed else 0), \
            {t: len(v) for t, v in state.items()}
        s.start()
        assert_purged(s.data_dir, f"after the start-up maintenance (indexed={indexed})")
        s.stop()
    with open(s.log_path) as f:
        log = f.read()
    assert "purged 256 idempotency entries" in log and "indexed 256 idempotency entries" in log, s.log_tail()


if __name__ == "__main__":
    run_tests(globals())
