#!/usr/bin/env python3
"""Does this machine stop running threads while it writes durably?

    bench/machine_stalls.py [--dir DIR] [--seconds S]

One thread reads the monotonic clock in a tight loop and records every gap
between two reads: on a healthy machine they are microseconds, and a gap of
milliseconds means the thread was not running although it never blocked.
It runs in four conditions, S seconds each (default 3):

  alone                  nothing else
  durable writes         beside a second process that appends a 4 KiB page
                         to a file in DIR, fdatasyncs it and writes 128 bytes
                         through an O_DSYNC descriptor, every 4 ms or right
                         after a slower one (pickple-bench --disk-probe's
                         write)
  busy                   beside a second process spinning, so both cores of a
                         2-core machine are busy
  busy + durable writes  both

For each it prints how many 10 ms slots held a gap over 2 ms (per second),
their median and the longest, and for the writes their p50/p99, each write
timed alone (pickple-bench --disk-probe also times them from when each was
due, which is the figure to compare with order latency).  On the
machines pickple is benchmarked on, the last condition shows the whole
guest stopping for several ms several times a second (docs/decisions.md,
"The machine stops while it writes"); that is outside pickple and is why a
durable order's latency has a floor there.  Not a test of pickple; it
touches nothing but one unlinked file in DIR.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

SLOT_NS = 10_000_000
INTERVAL_NS = 4_000_000
STALL_MS = 2.0


def clock_gaps(seconds):
    """Largest gap between two clock reads in each 10 ms slot, in ms."""
    t0 = time.monotonic_ns()
    end = t0 + int(seconds * 1e9)
    prev, slots = t0, {}
    now = time.monotonic_ns
    while True:
        t = now()
        if t > end:
            break
        gap = t - prev
        prev = t
        s = (t - t0) // SLOT_NS
        if gap > slots.get(s, 0):
            slots[s] = gap
    return [slots.get(s, 0) / 1e6 for s in range(max(slots, default=0) + 1)]


def durable_writes(directory, seconds, out):
    """A durable write every 4 ms for seconds; appends each one's ms to out."""
    fd, path = tempfile.mkstemp(prefix="pickple-stalls-", dir=directory)
    meta = os.open(path, os.O_RDWR | os.O_DSYNC)
    os.unlink(path)
    page = bytes(range(256)) * 16
    off = 4096
    try:
        due = time.monotonic_ns()
        end = due + int(seconds * 1e9)
        while due < end:
            wait = due - time.monotonic_ns()
            if wait > 0:
                time.sleep(wait / 1e9)
            t = time.monotonic_ns()
            os.pwrite(fd, page, off)
            os.fdatasync(fd)
            os.pwrite(meta, page[:128], 0)
            out.append((time.monotonic_ns() - t) / 1e6)
            off = 4096 if off >= (64 << 20) else off + 4096
            due = max(due + INTERVAL_NS, t)
    finally:
        os.close(fd)
        os.close(meta)


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))] if v else 0.0


def condition(name, directory, seconds, busy, writes):
    # The spinner and the writer are processes of their own: threads of
    # this one would wait for each other's interpreter lock.
    others = []
    if busy:
        others.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
    writer = None
    if writes:
        writer = subprocess.Popen([sys.executable, __file__, "--writer", "--dir", directory,
                                   "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
    try:
        gaps = clock_gaps(seconds)
        report = writer.communicate(timeout=seconds + 60)[0].strip() if writer else ""
    finally:
        for p in others + ([writer] if writer else []):
            p.kill()
            p.wait()
    if writer is not None and writer.returncode not in (0, -9):
        raise SystemExit(f"machine_stalls: the writer failed (exit {writer.returncode})")
    stalls = [g for g in gaps if g > STALL_MS]
    line = (f"{name:22s} stalls over {STALL_MS:.0f} ms: {len(stalls) / seconds:5.1f}/s, "
            f"median {pct(stalls, 0.5):5.1f} ms, longest {max(gaps):5.1f} ms")
    if report:
        line += "; " + report
    print(line, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=".", help="where the durable writes go (default: .)")
    ap.add_argument("--seconds", type=float, default=3.0, help="per condition (default 3)")
    ap.add_argument("--writer", action="store_true", help=argparse.SUPPRESS)  # one condition's writer
    args = ap.parse_args()
    if not os.path.isdir(args.dir) or args.seconds <= 0:
        ap.error("--dir must be a directory and --seconds positive")
    if args.writer:
        times = []
        durable_writes(args.dir, args.seconds, times)
        print(f"{len(times)} durable writes p50 {pct(times, 0.5):.2f} p99 {pct(times, 0.99):.2f} ms each")
        return 0
    print(f"machine_stalls: {os.cpu_count()} cores, writes in {os.path.abspath(args.dir)}, "
          f"{args.seconds:g} s per condition", flush=True)
    for name, busy, writes in (("alone", False, False), ("durable writes", False, True),
                               ("busy", True, False), ("busy + durable writes", True, True)):
        condition(name, args.dir, args.seconds, busy, writes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
