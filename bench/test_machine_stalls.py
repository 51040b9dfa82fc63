#!/usr/bin/env python3
"""bench/machine_stalls.py runs its four conditions and reports each, with
the durable writes where there are some, leaving nothing behind.  Not a
timing: the figures themselves are the machine's."""
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def test_four_conditions():
    d = tempfile.mkdtemp(prefix="pickple-stalls-test-")
    r = subprocess.run([sys.executable, os.path.join(HERE, "machine_stalls.py"), "--dir", d, "--seconds", "0.5"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 5 and lines[0].startswith("machine_stalls:"), r.stdout
    names = ["alone", "durable writes", "busy", "busy + durable writes"]
    for name, line in zip(names, lines[1:]):
        assert line.startswith(name) and re.search(r"stalls over 2 ms: +[0-9.]+/s", line), line
        writes = re.search(r"; (\d+) durable writes p50 [0-9.]+ p99 [0-9.]+ ms each$", line)
        # 0.5 s at one write per 4 ms is at most 126; a machine this slow
        # still makes one.
        assert bool(writes) == ("durable" in name), line
        if writes:
            assert 1 <= int(writes.group(1)) <= 126, line
    assert os.listdir(d) == [], os.listdir(d)  # the file was unlinked
    r = subprocess.run([sys.executable, os.path.join(HERE, "machine_stalls.py"), "--dir", os.path.join(d, "missing")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--dir" in r.stderr, (r.returncode, r.stderr)
    os.rmdir(d)


if __name__ == "__main__":
    try:
        test_four_conditions()
        print("ok   test_four_conditions")
    except AssertionError as e:
        print(f"FAIL test_four_conditions: {e}")
        sys.exit(1)
