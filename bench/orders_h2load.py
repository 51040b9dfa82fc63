"""Orders/s and latency for a hot live sale and for catalog orders of one
and three items (two shards) with --sync full: h2load -c 64 -m 16, three
runs each, medians.  Usage: PICKPLE_BIN=build/pickple python3 bench/orders_h2load.py"""
import sys, subprocess, json, datetime, re, os
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from pickple_harness import *
s = Server(threads=2, extra_args=["--sync", "full"])
sec = s.jwt_secret()
tok = lambda uid, role="customer": forge_jwt(sec, claims_for(uid, role))
seller = tok(9001, "seller")
now = datetime.datetime.utcnow()
iso = lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")
pid = s.call("POST", "/api/v1/products", {"name": "hot", "price": 100, "stock": 1000000000}, token=seller).body["product_id"]
sid = s.call("POST", "/api/v1/sales", {"product_id": pid, "price": 50, "quantity": 100000000, "per_user_limit": 100000000,
      "starts_at": iso(now - datetime.timedelta(minutes=1)), "ends_at": iso(now + datetime.timedelta(hours=1))}, token=seller).body["sale_id"]
prods = [s.call("POST", "/api/v1/products", {"name": "c", "price": 10, "stock": 1000000000}, token=seller).body["product_id"] for _ in range(6)]
by = {}
for p in prods: by.setdefault(p % 2, []).append(p)
cust = tok(5)
res = {}
def run(name, body, n=100000):
    f = tmp_path("body") + ".json"; open(f, "w").write(json.dumps(body))
    log = tmp_path("lat") + ".log"
    out = subprocess.run(["h2load", "-n", str(n), "-c", "64", "-m", "16", "-t", "1", "-d", f, "--log-file", log,
        "-H", "authorization: Bearer " + cust, "-H", "content-type: application/json", s.base_url + "/api/v1/orders"],
        capture_output=True, text=True).stdout
    rps = re.search(r"finished in .*?, ([\d.]+) req/s", out).group(1)
    st = re.search(r"status codes: (.*)", out).group(1)
    lat = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", out).groups()
    durs = sorted(int(l.split()[2]) for l in open(log) if l.strip())
    p = lambda q: durs[min(len(durs) - 1, int(q * len(durs)))] / 1000.0
    res.setdefault(name, []).append((float(rps), p(0.5), p(0.99)))
    print(f"{name}: {rps} req/s; {st}; p50 {p(0.5):.1f} ms p99 {p(0.99):.1f} ms")
for rep in range(3):
    run("hot sale", {"sale_id": sid, "quantity": 1})
    run("catalog 1 item", {"items": [{"product_id": by[0][0], "quantity": 1}]})
    run("catalog 3 items (2 shards)", {"items": [{"product_id": by[0][1], "quantity": 1}, {"product_id": by[1][0], "quantity": 1}, {"product_id": by[1][1], "quantity": 1}]}, n=50000)
import statistics
for k, v in res.items():
    print(f"MEDIAN {k}: {statistics.median(x[0] for x in v):.0f} req/s, p50 {statistics.median(x[1] for x in v):.1f} ms, p99 {statistics.median(x[2] for x in v):.1f} ms")
m = s.call("GET", "/metrics").raw.decode()
print("\n".join(l for l in m.splitlines() if "batch" in l and not l.startswith("#"))[:1500])
s.stop()
