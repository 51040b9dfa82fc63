"""HTTP layer: health endpoints, routing errors, body limits, hostile input,
HTTP/2 (h2c prior knowledge) and HTTP/1.1 on the same port."""

import json
import os
import random
import subprocess

from pickple_harness import (DEFAULT_PASSWORD, Server, TransportError, assert_4xx, assert_error,
                             assert_error_shape, assert_status, h2load_available, is_id, run_tests,
                             shared_server, skip, unique_name)

SIGN_UP = "/api/v1/auth/sign-up"
ME = "/api/v1/users/me"
LIMIT = 65536


def srv():
    return shared_server()


def padded_sign_up(size, how="whitespace"):
    """A valid sign-up body of exactly size bytes; returns (username, bytes)."""
    name = unique_name("big")
    body = {"username": name, "password": DEFAULT_PASSWORD, "email": f"{name}@example.com"}
    if how == "whitespace":
        base = json.dumps(body).encode()
        pad = size - len(base)
        assert pad >= 0
        raw = base[:-1] + b" " * pad + b"}"
    else:  # an ignored long string field
        body["padding"] = ""
        base = json.dumps(body).encode()
        pad = size - len(base)
        body["padding"] = "x" * pad
        raw = json.dumps(body).encode()
    assert len(raw) == size, len(raw)
    return name, raw


# ---------------------------------------------------------------- operations


def test_healthz():
    s = srv()
    for http1 in (False, True):
        r = s.call("GET", "/healthz", http1=http1)
        assert_status(r, 200)
        assert r.body == {"status": "ok"}, r
        assert r.headers.get("content-type", "").startswith("application/json"), r
    assert_status(s.call("GET", "/healthz?probe=1"), 200)


def test_readyz():
    s = srv()
    for http1 in (False, True):
        assert_status(s.call("GET", "/readyz", http1=http1), 200)


def metric_lines(s):
    """The /metrics page as {name{labels}: value}, checking its shape."""
    r = s.call("GET", "/metrics")
    assert_status(r, 200)
    assert r.headers.get("content-type", "").startswith("text/plain"), r
    vals = {}
    for line in r.raw.decode().splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        assert key and value.isdigit(), f"malformed metrics line {line!r}"
        vals[key] = int(value)
    return vals


def test_metrics_commit_histograms():
    s = srv()
    for _ in range(3):
        s.new_user()  # sign-ups are written, so each is at least one group commit
    m = metric_lines(s)
    shards = sorted({int(k.split('shard="')[1].split('"')[0]) for k in m if 'shard="' in k})
    assert shards, m
    total = 0
    for sh in shards:
        buckets = [(k, v) for k, v in m.items() if k.startswith(f'pickple_sync_microseconds_bucket{{shard="{sh}",')]
        les = [k.split('le="')[1].split('"')[0] for k, _ in buckets]
        assert les == ["250", "500", "1000", "2000", "4000", "8000", "16000", "32000", "+Inf"], les
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), f"cumulative buckets go down: {buckets}"
        count = m[f'pickple_sync_microseconds_count{{shard="{sh}"}}']
        assert counts[-1] == count, (buckets, count)
        # Every committed batch is one sync, timed on the syncer.
        assert count == m[f'pickple_commit_batches_total{{shard="{sh}"}}'], (sh, m)
        sync_sum = m[f'pickple_sync_microseconds_sum{{shard="{sh}"}}']
        assert sync_sum <= m[f'pickple_commit_microseconds_total{{shard="{sh}"}}'] + count, \
            "the sync is part of the commit wait, so it cannot be longer"
        assert (sync_sum > 0) == (count > 0), (sh, sync_sum, count)
        total += count
    assert total >= 3, m


def stage_counts(m):
    """{(shard, stage): count} of pickple_write_stage_microseconds, checking
    each histogram's buckets."""
    out = {}
    for k, v in m.items():
        if not k.startswith("pickple_write_stage_microseconds_count{"):
            continue
        labels = k[k.index("{") + 1:-1]
        shard, stage = (x.split('"')[1] for x in labels.split(","))
        buckets = [(b, n) for b, n in m.items()
                   if b.startswith(f"pickple_write_stage_microseconds_bucket{{{labels},")]
        les = [b.split('le="')[1].split('"')[0] for b, _ in buckets]
        assert les == ["250", "500", "1000", "2000", "4000", "8000", "16000", "32000", "64000", "128000",
                       "256000", "+Inf"], les
        counts = [n for _, n in buckets]
        assert counts == sorted(counts) and counts[-1] == v, (k, buckets)
        out[(int(shard), stage)] = v
    return out


def test_metrics_write_stages():
    s = srv()
    before = stage_counts(metric_lines(s))
    for _ in range(3):
        s.new_user()  # each sign-up is a write committed on the username's shard
    after = stage_counts(metric_lines(s))
    stages = {"queued", "batch", "answered"}
    shards = {sh for sh, _ in after}
    assert shards and set(after) == {(sh, st) for sh in shards for st in stages}, sorted(after)
    for sh in shards:
        # Every committed write answered on a thread passed all three stages.
        assert len({after[(sh, st)] for st in stages}) == 1, (sh, after)
    grew = sum(after[(sh, "batch")] - before.get((sh, "batch"), 0) for sh in shards)
    assert grew >= 3, (before, after)


def test_metrics_whole_with_many_shards():
    # 64 shards made a page over the old fixed 16 KiB, which was cut short.
    s = Server(threads=64)
    try:
        m = metric_lines(s)
        for name in ("pickple_commit_batches_total", "pickple_sync_microseconds_count", "pickple_inflight"):
            present = [k for k in m if k.startswith(name + "{")]
            assert len(present) == 64, f"{name}: {len(present)} shards of 64 on the page"
        present = [k for k in m if k.startswith("pickple_write_stage_microseconds_count{")]
        assert len(present) == 64 * 3, f"write stages: {len(present)} of 64 x 3 on the page"
    finally:
        s.stop()


def test_threads_named():
    s = srv()
    pid = s.proc.pid
    names = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            names.add(f.read().strip())
    for want in ("pk-actor-0", "pk-sync-0", "pk-worker-0"):
        assert want in names, f"no thread {want}: {sorted(names)}"


def allocator_info(s):
    for key in metric_lines(s):
        if key.startswith("pickple_allocator_info{"):
            return dict(kv.split("=", 1) for kv in key[len("pickple_allocator_info{"):-1].replace('"', "").split(","))
    raise AssertionError("no pickple_allocator_info on /metrics")


def test_allocator_keeps_huge_pages():
    # Page faults stall actors on the machines pickple runs on, so with
    # jemalloc it asks for huge pages and never hands freed memory back, and
    # lets any free extent be reused so that memory does not grow
    # (include/pickple/alloc.h); MALLOC_CONF still overrides it.
    s = srv()
    with open(f"/proc/{s.proc.pid}/maps") as f:
        jemalloc = "libjemalloc" in f.read()
    info = allocator_info(s)
    if not jemalloc:  # sanitizer builds keep their own allocator
        assert info["allocator"] == "libc", info
        return
    assert info == {"allocator": "jemalloc", "thp": "always", "dirty_decay_ms": "-1",
                    "muzzy_decay_ms": "-1", "lg_extent_max_active_fit": "30"}, info
    with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
        thp_mode = f.read().split("[")[1].split("]")[0]
    if thp_mode != "never":
        with open(f"/proc/{s.proc.pid}/smaps_rollup") as f:
            huge_kb = int(next(l for l in f if l.startswith("AnonHugePages:")).split()[1])
        assert huge_kb > 0, f"no huge pages with THP {thp_mode}"
    o = Server(env={"MALLOC_CONF": "dirty_decay_ms:5000,thp:never"})
    try:
        info = allocator_info(o)
        assert (info["thp"], info["dirty_decay_ms"], info["muzzy_decay_ms"]) == ("never", "5000", "-1"), info
    finally:
        o.stop()


def test_http2_prior_knowledge_is_really_h2():
    s = srv()
    r = s.call("GET", "/healthz")
    assert r.proto == "HTTP/2", f"response protocol {r.proto!r}"
    r1 = s.call("GET", "/healthz", http1=True)
    assert r1.proto == "HTTP/1.1", f"response protocol {r1.proto!r}"


# ---------------------------------------------------------------- routing errors


def test_unknown_path_404():
    s = srv()
    for path in ("/api/v1/nope", "/nope", "/api/v2/auth/sign-up", "/api/v1/auth/sign-upx",
                 "/api/v1/users/me/extra", "/"):
        for http1 in (False, True):
            assert_error(s.call("GET", path, http1=http1), 404, "not_found")
    assert_error(s.call("POST", "/api/v1/nothing-here", {"a": 1}), 404, "not_found")


def test_wrong_method_405():
    s = srv()
    cases = [("DELETE", SIGN_UP), ("GET", SIGN_UP), ("PUT", "/api/v1/auth/sign-in"),
             ("POST", "/healthz"), ("DELETE", ME), ("POST", ME), ("GET", "/api/v1/users/1/role")]
    problems = []
    for method, path in cases:
        for http1 in (False, True):
            r = s.call(method, path, http1=http1)
            try:
                assert_error(r, 405, "method_not_allowed")
            except AssertionError as e:
                problems.append(f"{method} {path} ({'h1' if http1 else 'h2'}): {e}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- body size limit


def _check_limit(http1, how, chunked=False):
    s = srv()
    headers = {"Transfer-Encoding": "chunked"} if chunked else None
    name, raw = padded_sign_up(LIMIT, how)
    r = s.call("POST", SIGN_UP, raw_body=raw, http1=http1, headers=headers)
    assert_status(r, 201)
    assert r.body["username"] == name
    name2, raw2 = padded_sign_up(LIMIT + 1, how)
    r2 = s.call("POST", SIGN_UP, raw_body=raw2, http1=http1, headers=headers)
    assert_error(r2, 413, "payload_too_large")
    # the rejected body did not half-apply
    assert_error(s.sign_in_response(name2), 401, "invalid_credentials")
    assert s.healthy()


def test_body_limit_h2_whitespace():
    _check_limit(False, "whitespace")


def test_body_limit_h2_ignored_field():
    _check_limit(False, "field")


def test_body_limit_http1_whitespace():
    _check_limit(True, "whitespace")


def test_body_limit_http1_ignored_field():
    _check_limit(True, "field")


def test_body_limit_http1_chunked():
    _check_limit(True, "whitespace", chunked=True)


def test_body_way_over_limit_h2():
    s = srv()
    name, raw = padded_sign_up(1024 * 1024)
    assert_error(s.call("POST", SIGN_UP, raw_body=raw), 413, "payload_too_large")
    assert s.healthy()


def test_body_far_over_limit_h2():
    # contract: every body over 65,536 bytes is 413 payload_too_large, and a
    # request is never dropped silently (no stream reset instead of an answer)
    s = srv()
    name, raw = padded_sign_up(4 * 1024 * 1024)
    try:
        r = s.call("POST", SIGN_UP, raw_body=raw)
    except TransportError as e:
        raise AssertionError(f"4 MiB body over HTTP/2 got no answer at all: {e}")
    assert_error(r, 413, "payload_too_large")
    assert s.healthy()


def test_body_far_over_limit_http1():
    s = srv()
    name, raw = padded_sign_up(4 * 1024 * 1024)
    try:
        r = s.call("POST", SIGN_UP, raw_body=raw, http1=True)
    except TransportError as e:
        raise AssertionError(f"4 MiB body over HTTP/1.1 got no answer at all: {e}")
    assert_error(r, 413, "payload_too_large")
    assert s.healthy()


# ---------------------------------------------------------------- hostile input


def test_raw_tcp_garbage():
    # not HTTP at all, or broken HTTP: whatever the server answers, it must
    # survive and keep serving
    import socket as _socket
    s = srv()
    rnd = random.Random(99)
    payloads = [
        b"GARBAGE\x00\xff\r\n\r\n",
        bytes(rnd.randrange(256) for _ in range(5000)),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n",  # never finished
        b"GET /healthz HTTP/1.1\r\nX-Long: " + b"a" * 200000 + b"\r\n\r\n",
        b"POST /api/v1/auth/sign-up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"user",  # short body
        b"POST /api/v1/auth/sign-up HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST /api/v1/auth/sign-up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # h2 preface, then nothing
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x06\x04\x00\x00\x00\x00\x00" + b"\xff" * 64,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(rnd.randrange(256) for _ in range(3000)),
        b"\x16\x03\x01\x00\x05hello",  # a TLS record start without TLS configured
    ]
    for i, data in enumerate(payloads):
        c = _socket.create_connection(("127.0.0.1", s.port), timeout=5)
        try:
            c.sendall(data)
            c.settimeout(1.0)
            try:
                c.recv(65536)
            except (_socket.timeout, OSError):
                pass
        except OSError:
            pass
        finally:
            c.close()
        assert s.healthy(), f"server stopped answering after raw payload #{i} ({data[:40]!r})"
    # many half-open connections at once
    conns = [_socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(100)]
    for c in conns:
        c.sendall(b"PRI * HTTP/2.0\r\n")
    assert s.healthy()
    for c in conns:
        c.close()
    assert s.healthy()


def _hostile(label, raw, path=SIGN_UP, http1=False, content_type="application/json", shape=True):
    s = srv()
    try:
        r = s.call("POST", path, raw_body=raw, http1=http1, headers={"Content-Type": content_type})
    except TransportError as e:
        raise AssertionError(f"{label}: no answer ({e})")
    try:
        if shape:
            assert_4xx(r, msgpack="msgpack" in content_type)
        else:
            assert 400 <= r.status <= 499, r
    except AssertionError as e:
        raise AssertionError(f"{label}: {e}")
    assert s.healthy(), f"server stopped answering /healthz after {label}"
    return r


def test_garbage_bytes():
    rnd = random.Random(1234)
    for n in (1, 17, 1000, 60000):
        raw = bytes(rnd.randrange(256) for _ in range(n))
        r = _hostile(f"{n} random bytes", raw)
        assert_error(r, 400, "invalid_request")
    _hostile("binary over HTTP/1.1", bytes(range(256)) * 4, http1=True)


def test_nul_bytes():
    for label, raw in [
        ("all NUL", b"\x00" * 100),
        ("NUL inside string", b'{"username":"abc\x00def","password":"password123","email":"a@b.c"}'),
        ("NUL after object", b'{"username":"abcdef","password":"password123","email":"a@b.c"}\x00'),
    ]:
        r = _hostile(label, raw)
        assert_error(r, 400, "invalid_request")
    # a NUL character escaped inside a password is legal JSON; the password is
    # "8..128 bytes", so either it is accepted or refused cleanly
    s = srv()
    r = s.call("POST", SIGN_UP, raw_body=b'{"username":"' + unique_name("nul").encode()
               + b'","password":"pass\\u0000word1","email":"a@b.c"}')
    assert r.status in (201, 400), r
    assert s.healthy()


def test_deep_nesting():
    _hostile("60000 x [", b"[" * 60000)
    _hostile("30000 x [ closed", b"[" * 30000 + b"]" * 30000)
    _hostile("13000 x {\"a\":", b'{"a":' * 13000)
    deep_field = b'{"username":' + b"[" * 30000 + b"]" * 30000 + b',"password":"password123","email":"a@b.c"}'
    _hostile("deep array as username", deep_field)
    deep_unknown = (b'{"username":"deepok","password":"password123","email":"a@b.c","x":'
                    + b"[" * 20000 + b"]" * 20000 + b"}")
    s = srv()
    r = s.call("POST", SIGN_UP, raw_body=deep_unknown)
    assert r.status in (201, 400), f"deeply nested unknown field: {r!r}"
    if r.status == 400:
        assert_error_shape(r)
    assert s.healthy()
    r = _hostile("100000 x [ (over the limit)", b"[" * 100000)
    assert_error(r, 413, "payload_too_large")


def test_huge_numbers():
    def body(username_json):
        return b'{"username":' + username_json + b',"password":"password123","email":"a@b.c"}'
    for label, raw in [
        ("1e999999", body(b"1e999999")),
        ("-1e999999", body(b"-1e999999")),
        ("40-digit integer", body(b"1234567890123456789012345678901234567890")),
        ("10000-digit integer", body(b"9" * 10000)),
        ("NaN literal", body(b"NaN")),
        ("Infinity literal", body(b"Infinity")),
    ]:
        r = _hostile(label, raw)
        assert r.status == 400, f"{label}: {r!r}"
    s = srv()
    adm = s.admin_token()
    for uid in ("99999999999999999999999999999", "18446744073709551616", "9007199254740992", "-1", "0",
                "1e3", "abc", "0x10"):
        r = s.call("PUT", f"/api/v1/users/{uid}/role", {"role": "seller"}, token=adm)
        assert r.status in (400, 404), f"PUT /users/{uid}/role: {r!r}"
        assert_error_shape(r)
    assert s.healthy()


def test_invalid_utf8():
    cases = [
        ("0xff in username", b'{"username":"ab\xffcd","password":"password123","email":"a@b.c"}'),
        ("truncated sequence in password",
         b'{"username":"utfpw","password":"pass\xc3word12","email":"a@b.c"}'),
        ("overlong encoding in email", b'{"username":"utfmail","password":"password123","email":"a\xc0\xafb@c.d"}'),
        ("lone surrogate escape", b'{"username":"ab\\ud800cd","password":"password123","email":"a@b.c"}'),
        ("encoded surrogate", b'{"username":"abcd","password":"pass\xed\xa0\x80word","email":"a@b.c"}'),
        ("invalid key", b'{"\xfe\xfe":1,"username":"abcd","password":"password123","email":"a@b.c"}'),
    ]
    for label, raw in cases:
        r = _hostile(label, raw)
        assert r.status == 400, f"{label}: {r!r}"
    for label, raw in cases[:2]:
        _hostile(label + " (HTTP/1.1)", raw, http1=True)


def test_wrong_content_type_json_garbage():
    # MessagePack content type with bytes that are not MessagePack
    _hostile("bad msgpack", b"\xc1\xc1\xc1", content_type="application/msgpack")
    _hostile("truncated msgpack map", b"\x83\xa8username\xa3abc", content_type="application/msgpack")


def test_long_path_and_headers():
    s = srv()
    r = s.call("GET", "/api/v1/" + "a" * 10000)
    assert 400 <= r.status <= 499, r
    r = s.call("GET", "/healthz", headers={"X-Filler": "y" * 6000})
    assert r.status in (200, 431, 400), r
    r = s.call("GET", ME, headers={"Authorization": "Bearer " + "A" * 6000})
    assert r.status in (401, 431, 400), r
    if r.status == 401:
        assert_error(r, 401, "unauthorized")
    assert s.healthy()


def test_error_responses_are_json_everywhere():
    s = srv()
    responses = [
        s.call("GET", "/api/v1/unknown"),
        s.call("GET", "/api/v1/unknown", http1=True),
        s.call("DELETE", SIGN_UP),
        s.call("POST", SIGN_UP, raw_body=b"{"),
        s.call("POST", SIGN_UP, raw_body=b"{", http1=True),
        s.call("GET", ME),
        s.call("GET", ME, token="x.y.z", http1=True),
        s.call("POST", "/api/v1/auth/sign-in", {"username": "nobody-here", "password": "password123"}),
        s.call("POST", SIGN_UP, raw_body=b" " * (LIMIT + 1)),
    ]
    for r in responses:
        assert 400 <= r.status <= 599, r
        assert_error_shape(r)


# ---------------------------------------------------------------- HTTP/1.1 and connections


def test_http1_full_flow():
    s = srv()
    name = unique_name("h1")
    r = s.call("POST", SIGN_UP, {"username": name, "password": DEFAULT_PASSWORD, "email": "h1@x.y"}, http1=True)
    assert_status(r, 201)
    assert r.proto == "HTTP/1.1", r.proto
    uid = r.body["user_id"]
    r = s.sign_in_response(name, http1=True)
    assert_status(r, 200)
    tok = r.body["access_token"]
    me = s.call("GET", ME, token=tok, http1=True)
    assert_status(me, 200)
    assert me.body["user_id"] == uid
    # the same token over HTTP/2
    me2 = s.call("GET", ME, token=tok)
    assert me2.body == me.body
    assert_error(s.call("POST", SIGN_UP, {"username": name, "password": DEFAULT_PASSWORD, "email": "h1@x.y"},
                        http1=True), 409, "username_taken")


def _connections_used(proto_flag, n=3):
    s = srv()
    url = s.base_url + "/healthz"
    cmd = ["curl", "-sS", "--max-time", "30", proto_flag, "-w", "%{http_code} %{num_connects}\n"]
    for _ in range(n):
        cmd += ["-o", "/dev/null", url]
    p = subprocess.run(cmd, capture_output=True, timeout=60)
    lines = p.stdout.decode().split()
    codes = lines[0::2]
    connects = [int(x) for x in lines[1::2]]
    return codes, connects


def test_http1_keep_alive():
    codes, connects = _connections_used("--http1.1")
    assert codes == ["200"] * 3, codes
    assert sum(connects) == 1, f"HTTP/1.1 connection not reused: connects per request {connects}"


def test_h2_multiplexing_one_connection():
    # curl 7.88.1 cannot put a second stream on an h2c connection (curl bug
    # #10634), so multiplexing is checked with nghttp2's h2load.
    if not h2load_available():
        skip("h2load (nghttp2-client) not installed")
    s = srv()
    res = s.h2load("/healthz", 300, clients=1, streams=100)
    assert res["2xx"] == 300 and res["errored"] == 0, res["output"]
    res = s.h2load("/api/v1/nope", 100, clients=1, streams=50)
    assert res["4xx"] == 100, res["output"]
    assert s.healthy()


def test_parallel_h2_health():
    s = srv()
    res = s.parallel([{"method": "GET", "path": "/healthz"} for _ in range(300)])
    st = [r.status for r in res]
    assert st.count(200) == 300, f"statuses: {sorted(set(st))} ({st.count(200)} x 200)"


def test_parallel_sign_ups_distinct_ids():
    s = srv()
    names = [unique_name("p") for _ in range(60)]
    reqs = [{"method": "POST", "path": SIGN_UP,
             "json_body": {"username": n, "password": DEFAULT_PASSWORD, "email": f"{n}@p.q"}} for n in names]
    half = len(reqs) // 2
    res = s.parallel(reqs[:half]) + s.parallel(reqs[half:], http1=True, separate_connections=True)
    st = [r.status for r in res]
    assert st == [201] * len(reqs), f"statuses: {st}"
    ids = [r.body["user_id"] for r in res]
    assert all(is_id(i) for i in ids), ids
    assert len(set(ids)) == len(ids), "duplicate user ids under concurrency"
    assert [r.body["username"] for r in res] == names


if __name__ == "__main__":
    run_tests(globals())
