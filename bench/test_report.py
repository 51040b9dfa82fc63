#!/usr/bin/env python3
"""bench/report.py's arithmetic on made-up runs: the disk rows' figures and
the p99 floor estimate.  Not a timing."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402


def spectrum_text(title, points):
    lines = [f"# {title}"] + [f"{ms} {pct} {1 / (1 - pct / 100) if pct < 100 else 0}" for pct, ms in points]
    return "\n".join(lines) + "\n"


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_quantile_interpolates():
    pts = [(0.0, 1.0), (0.5, 2.0), (0.9, 4.0), (1.0, 8.0)]
    assert report.quantile(pts, 0.0) == 1.0
    assert report.quantile(pts, 0.25) == 1.5
    assert abs(report.quantile(pts, 0.7) - 3.0) < 1e-9
    assert report.quantile(pts, 1.0) == 8.0


def test_sum_of_two_delays():
    # Two delays uniform on [0, 10] ms: their sum's p99 is 20 - sqrt(2) ms.
    uniform = [(0.0, 0.0), (1.0, 10.0)]
    got = report.sum_p99(uniform, uniform)
    assert abs(got - (20 - 2 ** 0.5)) < 0.1, got
    # A fixed delay just shifts the other.
    fixed = [(0.0, 3.0), (1.0, 3.0)]
    assert abs(report.sum_p99(fixed, uniform) - 12.9) < 0.1


def made_up_runs(d, due):
    """Three runs of h2o_at_redis and disk_at_redis in d.  h2o's file takes
    exactly 2 ms; the probe's spectrum is uniform 0-10 ms.  due: as
    pickple-bench writes them now (arrivals from their due time, then each
    write), else as older runs did (the writes alone)."""
    lines = []
    for run in (1, 2, 3):
        h2o = {"label": "h2o_at_redis", "mode": "open", "rate": 1000, "rps": 1000, "accepted_per_s": 0,
               "rejected_per_s": 0, "latency_ms": {"p50": 1.0, "p99": 2.0, "p999": 3.0}}
        disk = dict(h2o, label="disk_at_redis", disk_error="",
                    disk_write_ms={"count": 100, "p50": 3.0, "p99": 5.0 + run, "p999": 7.0})
        hist = spectrum_text("all requests", [(0, 1.0), (100, 1.0)]) + "\n\n"
        if due:
            disk["disk_due_ms"] = {"count": 500, "p50": 4.0, "p99": 8.0 + run, "p999": 12.0}
            hist += (spectrum_text("durable writes from their due time (--disk-probe)", [(0, 0.0), (100, 10.0)]) +
                     "\n\n" + spectrum_text("durable writes, each (--disk-probe)", [(0, 50.0), (100, 50.0)]))
        else:
            disk["disk_write_ms"].update(p50=4.0, p99=8.0 + run, p999=12.0)
            hist += spectrum_text("durable writes (--disk-probe)", [(0, 0.0), (100, 10.0)])
        lines += [{"row": "h2o_at_redis", "run": run, "rss_kb": None, "result": h2o},
                  {"row": "disk_at_redis", "run": run, "rss_kb": None, "result": disk}]
        write(os.path.join(d, f"h2o_at_redis-{run}.hist"), spectrum_text("all requests", [(0, 2.0), (100, 2.0)]))
        write(os.path.join(d, f"disk_at_redis-{run}.hist"), hist)
    jsonl = os.path.join(d, "results.jsonl")
    write(jsonl, "".join(json.dumps(x) + "\n" for x in lines))
    return jsonl


def check_disk_rows(due):
    d = tempfile.mkdtemp(prefix="pickple-report-")
    s, header, table = report.build(report.load(made_up_runs(d, due)))
    row = next(r for r in table if r[0] == "disk_at_redis")
    # The row's p50 and p99 are the probe's medians (from the due time when
    # there), not h2o's and not the writes alone.
    assert row[header.index("p50 ms")] == "4.000" and row[header.index("p99 ms")] == "10.000", row
    if due:
        assert "1,500 arrivals" in row[-1] and "300 writes, each alone p99 7.000 ms" in row[-1], row[-1]
    else:
        assert "300 durable writes" in row[-1], row[-1]
    s["hot_at_redis"] = dict(s["h2o_at_redis"], acc_p99=50.0, unfinished=0, failed=0)
    hot = [t for t in report.targets(s, d) if "hot at Redis" in t[0]][0]
    assert hot[2] == "FAIL", hot
    # 2 ms + uniform 0-10 ms: p99 11.9 (the due-time spectrum; the writes'
    # own 50 ms would give 52).
    assert "p99 10.000 ms" in hot[1] and "p99 11.9" in hot[1], hot[1]
    assert ("from each arrival" if due else "per write") in hot[1], hot[1]
    # Without the spectra there is no estimate.
    hot = [t for t in report.targets(s, None) if "hot at Redis" in t[0]][0]
    assert "independent" not in hot[1], hot[1]
    assert "h2o's file beside those writes: p99 2.000 ms" in hot[1], hot[1]
    # h2o's file beside the writes above 10 ms makes the verdict 'beyond
    # the machine', and so does a probe p99 above 10 ms.
    s["disk_at_redis"]["p99"] = 10.5
    hot = [t for t in report.targets(s, d) if "hot at Redis" in t[0]][0]
    assert hot[2].startswith("FAIL (beyond the machine: h2o's file beside durable writes"), hot[2]
    s["disk_at_redis"]["p99"] = 2.0
    s["disk_at_redis"]["disk_p99"] = 10.5
    hot = [t for t in report.targets(s, d) if "hot at Redis" in t[0]][0]
    assert hot[2].startswith("FAIL (beyond the machine: durable writes"), hot[2]


def test_write_stages():
    d = tempfile.mkdtemp(prefix="pickple-report-")
    lines = []
    for run, stages in ((1, {"queued": 1.0, "batch": 10.0, "answered": 0.5, "writes": 9}),
                        (2, {"queued": 3.0, "batch": 12.0, "answered": 0.7, "writes": 9}),
                        (3, None)):  # a run whose metrics could not be read
        hot = {"label": "hot_at_redis", "mode": "open", "rate": 1000, "rps": 1000, "accepted_per_s": 1000,
               "rejected_per_s": 0, "latency_ms": {"p50": 1.0, "p99": 20.0, "p999": 30.0},
               "accepted_latency_ms": {"p99": 20.0}}
        lines.append({"row": "hot_at_redis", "run": run, "rss_kb": 1000, "stages_ms": stages, "result": hot})
    # An older run's line has no stages_ms at all.
    lines.append({"row": "hot", "run": 1, "rss_kb": 1000, "result": dict(hot, label="hot", mode="closed")})
    jsonl = os.path.join(d, "results.jsonl")
    write(jsonl, "".join(json.dumps(x) + "\n" for x in lines))
    s, header, table = report.build(report.load(jsonl))
    row = next(r for r in table if r[0] == "hot_at_redis")
    # Medians of the runs that have them.
    assert "pickple's writes, mean ms (warm-up included): queued 2.0, batch 11.0, answered 0.6" in row[-1], row
    assert "pickple's writes" not in next(r for r in table if r[0] == "hot")[-1]
    line = [t for t in report.targets(s) if "hot at Redis" in t[0]][0]
    assert "pickple's writes in that row, mean ms: queued 2.0, batch 11.0, answered 0.6" in line[1], line


def test_disk_rows_and_the_estimate():
    check_disk_rows(due=True)


def test_disk_rows_of_older_runs():
    check_disk_rows(due=False)


if __name__ == "__main__":
    failed = 0
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            try:
                fn()
                print(f"ok   {name}")
            except AssertionError as e:
                failed += 1
                print(f"FAIL {name}: {e}")
    sys.exit(1 if failed else 0)
