"""Hostile MessagePack request bodies over HTTP/2: element counts and lengths
that the body cannot hold, truncation at every byte, trailing bytes and deep
nesting are all answered 400 invalid_request (as MessagePack), without the
server reserving memory for what a header claims, and it keeps answering.

msgpack-c allocates room for a container's claimed element count before it
checks the input, so before the bounded pre-check (src/common/mpcheck.c) the
5-byte body dd 7f ff ff ff made the server ask for tens of gigabytes (and
aborted sanitizer builds)."""

from pickple_harness import (DEFAULT_PASSWORD, TransportError, assert_error_shape, msgpack_decode,
                             msgpack_encode, run_tests, shared_server, unique_name)

SIGN_UP = "/api/v1/auth/sign-up"
MSGPACK = {"Content-Type": "application/msgpack"}
DEPTH_MAX = 32  # PK_MP_DEPTH_MAX

# Bodies whose headers claim more than they hold, alone and nested inside an
# otherwise plausible sign-up map.
HOSTILE = [
    ("array32 of 2^31-1", bytes.fromhex("dd7fffffff")),
    ("array32 of 2^32-1", bytes.fromhex("ddffffffff")),
    ("map32 of 2^31-1", bytes.fromhex("df7fffffff")),
    ("map32 of 2^32-1 with a few bytes", bytes.fromhex("dfffffffff") + b"\x01\x02\x03"),
    ("array16 of 65535", bytes.fromhex("dcffff")),
    ("map16 of 65535", bytes.fromhex("deffff") + b"\xa1k\x01"),
    ("str32 of 4 GiB", bytes.fromhex("dbffffffff") + b"x"),
    ("bin32 of 4 GiB", bytes.fromhex("c6ffffffff") + b"x"),
    ("ext32 of 4 GiB", bytes.fromhex("c9ffffffff01") + b"x"),
    ("fixmap of 15 pairs, 3 bytes", bytes.fromhex("8f010203")),
    ("username claiming 2^31-1 elements",
     b"\x83\xa8username\xdd\x7f\xff\xff\xff"),
    ("password claiming a 2^31-1-pair map",
     b"\x83\xa8username\xa5alice\xa8password\xdf\x7f\xff\xff\xff"),
    ("unknown field claiming 2^32-1 elements",
     msgpack_encode({"username": "alice", "password": DEFAULT_PASSWORD, "email": "a@b.c"})[:-1]
     + b"\xa1x\xdd\xff\xff\xff\xff"),
    ("nested claims", b"\x91" * 10 + bytes.fromhex("dd7fffffff")),
]


def srv():
    return shared_server()


def vm_peak_kib(server):
    """The server process's peak virtual memory (VmPeak), or None."""
    try:
        with open(f"/proc/{server.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1])
    except (OSError, AttributeError, ValueError):
        pass
    return None


def post(body, label):
    s = srv()
    try:
        r = s.call("POST", SIGN_UP, raw_body=body, headers=MSGPACK)
    except TransportError as e:
        raise AssertionError(f"{label}: no answer ({e})\n{s.log_tail()}")
    return r


def assert_400(r, label):
    assert r.status == 400, f"{label}: expected 400, got {r!r}"
    try:
        assert_error_shape(r, msgpack=True)
    except AssertionError as e:
        raise AssertionError(f"{label}: {e}")
    assert r.body["error"]["code"] == "invalid_request", f"{label}: {r!r}"


def assert_alive(label):
    s = srv()
    assert s.alive(), f"server exited after {label}\n{s.log_tail()}"
    assert s.healthy(), f"server stopped answering /healthz after {label}"


def valid_sign_up():
    name = unique_name("mph")
    body = msgpack_encode({"username": name, "password": DEFAULT_PASSWORD, "email": f"{name}@mp.io"})
    return name, body


# ---------------------------------------------------------------- tests


def test_claims_larger_than_the_body():
    s = srv()
    before = vm_peak_kib(s)
    for label, body in HOSTILE:
        r = post(body, label)
        assert r.proto == "HTTP/2", f"{label}: answered over {r.proto!r}"
        assert_400(r, label)
        assert_alive(label)
    after = vm_peak_kib(s)
    if before is not None and after is not None:
        grown_mib = (after - before) // 1024
        assert grown_mib < 512, f"server VmPeak grew {grown_mib} MiB answering {len(HOSTILE)} small bodies"


def test_many_hostile_bodies_at_once():
    s = srv()
    before = vm_peak_kib(s)
    reqs = [{"method": "POST", "path": SIGN_UP, "raw_body": HOSTILE[i % 4][1], "headers": MSGPACK}
            for i in range(64)]
    rs = s.parallel(reqs)
    statuses = sorted({r.status for r in rs})
    assert statuses == [400], f"statuses {statuses}"
    assert_alive("64 concurrent hostile bodies")
    after = vm_peak_kib(s)
    if before is not None and after is not None:
        grown_mib = (after - before) // 1024
        assert grown_mib < 512, f"server VmPeak grew {grown_mib} MiB answering 64 small bodies"


def test_truncated_at_every_byte():
    _, body = valid_sign_up()
    for n in range(1, len(body)):
        assert_400(post(body[:n], f"first {n} of {len(body)} bytes"), f"first {n} of {len(body)} bytes")
    assert_alive("every truncation")


def test_trailing_bytes_and_two_documents():
    _, body = valid_sign_up()
    for extra in (b"\x00", b"\xc0", b"\x90", b"\xdd\x7f\xff\xff\xff"):
        label = f"valid body plus {extra.hex()}"
        assert_400(post(body + extra, label), label)
    assert_400(post(body + body, "two documents"), "two documents")
    assert_400(post(b"\xc1", "0xc1"), "0xc1")
    assert_alive("trailing bytes")


def test_deep_nesting():
    # The root map plus an unknown field nested DEPTH_MAX - 1 deeper is at the
    # bound: accepted (the unknown field is ignored, the user is created).
    name, _ = valid_sign_up()
    fields = msgpack_encode({"username": name, "password": DEFAULT_PASSWORD, "email": f"{name}@mp.io"})
    at_bound = b"\x84" + fields[1:] + b"\xa1x" + b"\x91" * (DEPTH_MAX - 2) + b"\x90"
    r = post(at_bound, "nesting at the bound")
    assert r.status == 201, f"nesting at the bound: {r!r}"
    # One level more, and far more, are refused.
    name, _ = valid_sign_up()
    fields = msgpack_encode({"username": name, "password": DEFAULT_PASSWORD, "email": f"{name}@mp.io"})
    over = b"\x84" + fields[1:] + b"\xa1x" + b"\x91" * (DEPTH_MAX - 1) + b"\x90"
    assert_400(post(over, "nesting past the bound"), "nesting past the bound")
    for depth in (DEPTH_MAX + 1, 1000, 60000):
        label = f"{depth} nested arrays"
        assert_400(post(b"\x91" * depth + b"\x01", label), label)
        assert_400(post(b"\x81\xa1k" * min(depth, 20000) + b"\x01", f"{label} (maps)"), f"{label} (maps)")
    assert_alive("deep nesting")


def test_still_serves_msgpack_sign_up():
    # After all of the above the server still does its job in MessagePack.
    name, body = valid_sign_up()
    r = post(body, "valid sign-up")
    assert r.status == 201, f"valid MessagePack sign-up after hostile bodies: {r!r}"
    user = msgpack_decode(r.raw)
    assert user["username"] == name, user
    assert_alive("a valid sign-up")


if __name__ == "__main__":
    run_tests(globals())
