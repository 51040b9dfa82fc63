#!/usr/bin/env python3
"""pickple-bench --disk-probe against a real pickple over HTTP/2.

Not a timing: checks that the probe writes durably while the load runs,
reports its arrivals and writes in the JSON line and the spectrum file,
counts a slow write once for every arrival it held up, leaves no file
behind, and fails loudly where it cannot write.

Environment: PICKPLE_BIN (the server), PICKPLE_BENCH_BIN (pickple-bench).
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from pickple_harness import Server, run_tests, tmp_dir, tmp_path  # noqa: E402

BENCH = os.environ.get("PICKPLE_BENCH_BIN", "")


def bench(server, *args, env=None):
    return subprocess.run([BENCH, "--url", server.base_url, "--scenario", "get", "--path", "/healthz",
                           "-c", "2", "-m", "4", "-t", "1", *args],
                          capture_output=True, text=True, timeout=120, env=env)


def test_probe_writes_beside_the_load():
    s = Server()
    try:
        probe_dir = tmp_dir("probe")
        hist = tmp_path("hist")
        r = bench(s, "-d", "2", "-w", "0", "--rate", "200", "--json", "--hist-file", hist,
                  "--disk-probe", probe_dir)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["status"] == {"200": out["requests"]}, out["status"]
        due, writes = out["disk_due_ms"], out["disk_write_ms"]
        # An arrival every 4 ms for 2 s is 500, each covered by a write
        # however slow the disk; a slow disk makes fewer writes, none would
        # mean the probe never ran.
        assert due is not None and 499 <= due["count"] <= 501, due
        assert writes is not None and 20 <= writes["count"] <= due["count"], writes
        for h in (due, writes):
            assert 0 < h["p50"] <= h["p99"] <= h["max"], h
        assert out["disk_error"] == "", out["disk_error"]
        assert "durable, from due" in r.stderr and "durable writes" in r.stderr, r.stderr
        spectrum = open(hist).read()
        assert "# durable writes from their due time (--disk-probe)" in spectrum
        assert "# durable writes, each (--disk-probe)" in spectrum
        # The file was unlinked as soon as it was open.
        assert os.listdir(probe_dir) == [], os.listdir(probe_dir)
    finally:
        s.stop()


def test_slow_writes_count_for_every_arrival_they_hold_up():
    # Every fdatasync of the client takes 10 ms more (bench/test_slow_sync.c):
    # at most 200 writes fit in 2 s, yet all 500 arrivals are counted, each
    # waiting from its due time, so the spectrum from the due time is above
    # the writes' own.
    lib = os.environ.get("PB_SLOW_SYNC_LIB", "")
    assert os.path.exists(lib), "PB_SLOW_SYNC_LIB is not set (path of the pb_slow_sync library)"
    env = dict(os.environ, LD_PRELOAD=lib)
    # A sanitizer build of pickple-bench wants its runtime first; the
    # library needs none.
    env["ASAN_OPTIONS"] = ":".join(x for x in (os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0") if x)
    s = Server()
    try:
        r = bench(s, "-d", "2", "-w", "0", "--rate", "200", "--json", "--disk-probe", tmp_dir("probe"), env=env)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        due, writes = out["disk_due_ms"], out["disk_write_ms"]
        assert 499 <= due["count"] <= 501, due
        assert 20 <= writes["count"] <= 201, writes
        assert writes["p50"] >= 10.0, writes
        # A write covers the arrival it began for and those due meanwhile.
        assert due["count"] >= 2 * writes["count"], (due, writes)
        assert due["p50"] >= writes["p50"] and due["max"] >= writes["max"], (due, writes)
    finally:
        s.stop()


def test_no_probe_no_figures():
    s = Server()
    try:
        r = bench(s, "-d", "1", "-w", "0", "--json")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert "disk_write_ms" not in out and "disk_due_ms" not in out and "durable" not in r.stderr
    finally:
        s.stop()


def test_unusable_directory_fails_before_the_load():
    s = Server()
    try:
        missing = os.path.join(tmp_dir("probe"), "missing")
        r = bench(s, "-d", "1", "-w", "0", "--disk-probe", missing)
        assert r.returncode == 1 and "--disk-probe" in r.stderr, (r.returncode, r.stderr)
        assert "requests" not in r.stdout, r.stdout  # no load was run
        # A counted run has no window to write in.
        r = bench(s, "-n", "10", "--disk-probe", tmp_dir("probe"))
        assert r.returncode == 2 and "timed run" in r.stderr, (r.returncode, r.stderr)
    finally:
        s.stop()


if __name__ == "__main__":
    if not os.access(BENCH, os.X_OK):
        raise SystemExit("PICKPLE_BENCH_BIN is not set (path of pickple-bench)")
    run_tests(globals())
