#!/usr/bin/env python3
"""pickple-bench --disk-probe against a real pickple over HTTP/2.

Not a timing: checks that the probe writes durably while the load runs,
reports its writes in the JSON line and the spectrum file, leaves no file
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


def bench(server, *args):
    return subprocess.run([BENCH, "--url", server.base_url, "--scenario", "get", "--path", "/healthz",
                           "-c", "2", "-m", "4", "-t", "1", *args],
                          capture_output=True, text=True, timeout=120)


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
        disk = out["disk_write_ms"]
        # One write every 4 ms for 2 s is 500; a slow disk does fewer, none
        # would mean the probe never ran.
        assert disk is not None and 20 <= disk["count"] <= 501, disk
        assert 0 < disk["p50"] <= disk["p99"] <= disk["max"], disk
        assert out["disk_error"] == "", out["disk_error"]
        assert "durable writes" in r.stderr, r.stderr
        spectrum = open(hist).read()
        assert "# durable writes (--disk-probe)" in spectrum
        # The file was unlinked as soon as it was open.
        assert os.listdir(probe_dir) == [], os.listdir(probe_dir)
    finally:
        s.stop()


def test_no_probe_no_figures():
    s = Server()
    try:
        r = bench(s, "-d", "1", "-w", "0", "--json")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert "disk_write_ms" not in out and "durable writes" not in r.stderr
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
