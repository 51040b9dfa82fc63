"""Black-box integration harness for the pickple server.

Standard library only.  All HTTP goes through the `curl` binary, HTTP/2 with
prior knowledge (h2c) unless a call asks for HTTP/1.1.

Environment:
  PICKPLE_BIN        path of the pickple binary (required)
  PICKPLE_KEEP_TMP   keep temporary data dirs and logs when set to 1
  PICKPLE_IT_VERBOSE print every curl command line when set to 1

Each test_*.py file imports this module, defines functions named test_*,
and ends with `run_tests(globals())`, which runs them in definition order,
prints PASS/FAIL/SKIP lines and a final line `N passed, M failed`, and exits
non-zero when anything failed.
"""

import atexit
import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

# --------------------------------------------------------------------------
# configuration and temporary files

ADMIN_PASSWORD = "admin-pass-1234"
DEFAULT_PASSWORD = "password123"
CURL_MAX_TIME = 30
READY_TIMEOUT = 20.0

_TMP_ROOT = tempfile.mkdtemp(prefix="pickple-it-")
_ALL_SERVERS = []
_tmp_counter = [0]
_tmp_lock = threading.Lock()


def pickple_bin():
    b = os.environ.get("PICKPLE_BIN")
    if not b:
        raise SystemExit("PICKPLE_BIN is not set (path of the pickple binary)")
    return os.path.abspath(b)


def tmp_path(prefix="f"):
    """A fresh path (not created) inside the run's temporary root."""
    with _tmp_lock:
        _tmp_counter[0] += 1
        n = _tmp_counter[0]
    return os.path.join(_TMP_ROOT, f"{prefix}-{n}")


def tmp_dir(prefix="d"):
    p = tmp_path(prefix)
    os.makedirs(p)
    return p


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def clean_env(extra=None):
    """The caller's environment without PICKPLE_* variables, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICKPLE_")}
    if extra:
        env.update(extra)
    return env


def _cleanup():
    for s in list(_ALL_SERVERS):
        try:
            s.kill9()
        except Exception:
            pass
    if os.environ.get("PICKPLE_KEEP_TMP") != "1":
        shutil.rmtree(_TMP_ROOT, ignore_errors=True)
    else:
        print(f"(kept temporary files in {_TMP_ROOT})")


atexit.register(_cleanup)


def _on_term(signum, frame):
    # ctest timeouts send SIGTERM/SIGKILL; make sure no server is left over.
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_term)

# --------------------------------------------------------------------------
# HTTP through curl


class Response(tuple):
    """(status, headers, body, raw); also .status .headers .body .raw .proto."""

    def __new__(cls, status, headers, body, raw, proto=""):
        r = super().__new__(cls, (status, headers, body, raw))
        r.proto = proto
        return r

    status = property(lambda self: self[0])
    headers = property(lambda self: self[1])
    body = property(lambda self: self[2])
    raw = property(lambda self: self[3])

    def __repr__(self):
        return (f"<HTTP {self.status} {self.proto} ct={self.headers.get('content-type')!r} "
                f"body={self.raw[:300]!r}>")


class TransportError(AssertionError):
    """curl got no HTTP response at all (connection refused, reset, timeout)."""


def _parse_header_file(data):
    text = data.decode("latin-1")
    blocks = [b for b in re.split(r"\r?\n\r?\n", text) if b.strip()]
    if not blocks:
        return "", {}
    block = blocks[-1]
    lines = block.splitlines()
    proto = lines[0].split(" ")[0] if lines else ""
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            k = k.strip().lower()
            v = v.strip()
            if k in headers:
                headers[k] += ", " + v
            else:
                headers[k] = v
    return proto, headers


def decode_body(headers, raw):
    ct = headers.get("content-type", "").lower()
    if "msgpack" in ct:
        try:
            return msgpack_decode(raw)
        except Exception:
            return None
    try:
        return json.loads(raw.decode("utf-8"))
    except Exception:
        return None


def _header_args(method, json_body, token, headers, has_body):
    args = []
    hdrs = dict(headers or {})
    lower = {k.lower() for k in hdrs}
    if has_body and "content-type" not in lower:
        hdrs["Content-Type"] = "application/json"
    if token is not None and "authorization" not in lower:
        hdrs["Authorization"] = f"Bearer {token}"
    if "expect" not in lower:
        hdrs["Expect"] = ""  # no 100-continue round trip on HTTP/1.1
    for k, v in hdrs.items():
        if v == "":
            args += ["-H", f"{k}:"]
        else:
            args += ["-H", f"{k}: {v}"]
    return args


def curl_call(base_url, method, path, json_body=None, token=None, headers=None,
              raw_body=None, http1=False, max_time=CURL_MAX_TIME, extra_curl_args=()):
    work = tmp_path("req")
    os.makedirs(work)
    body_file = os.path.join(work, "body")
    head_file = os.path.join(work, "head")
    cmd = ["curl", "-sS", "-g", "--path-as-is", "--max-time", str(max_time),
           "--http1.1" if http1 else "--http2-prior-knowledge",
           "-X", method, "-o", body_file, "-D", head_file, "-w", "%{http_code}"]
    has_body = json_body is not None or raw_body is not None
    if has_body:
        data = raw_body if raw_body is not None else json.dumps(json_body).encode()
        if isinstance(data, str):
            data = data.encode()
        req_file = os.path.join(work, "req")
        with open(req_file, "wb") as f:
            f.write(data)
        cmd += ["--data-binary", "@" + req_file]
    cmd += _header_args(method, json_body, token, headers, has_body)
    cmd += list(extra_curl_args)
    cmd.append(base_url + path)
    if os.environ.get("PICKPLE_IT_VERBOSE") == "1":
        print("  $", " ".join(cmd))
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=max_time + 15)
    except subprocess.TimeoutExpired:
        shutil.rmtree(work, ignore_errors=True)
        raise TransportError(f"curl hung: {method} {path}")
    out = p.stdout.decode("latin-1").strip()
    status = int(out[-3:]) if re.fullmatch(r".*\d{3}", out or "") else 0
    raw = b""
    if os.path.exists(body_file):
        with open(body_file, "rb") as f:
            raw = f.read()
    hdata = b""
    if os.path.exists(head_file):
        with open(head_file, "rb") as f:
            hdata = f.read()
    shutil.rmtree(work, ignore_errors=True)
    if status == 0:
        raise TransportError(f"no HTTP response for {method} {path} "
                             f"(curl exit {p.returncode}: {p.stderr.decode(errors='replace').strip()})")
    proto, hd = _parse_header_file(hdata)
    return Response(status, hd, decode_body(hd, raw), raw, proto)


def curl_parallel(base_url, requests, http1=False, parallel_max=200, separate_connections=False,
                  max_time=240):
    """Fires every request concurrently with one `curl --parallel` process,
    each on its own connection (separate_connections is kept for callers; it
    is always so, see below).

    requests: list of dicts with keys method, path and optionally json_body,
    raw_body, token, headers.  Returns a list of Response in request order
    (headers are empty; status 0 means no response).
    """
    work = tmp_path("par")
    os.makedirs(work)
    cfg_lines = []

    def q(s):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    # curl 7.88.1 cannot reuse an h2 prior-knowledge connection (curl issue
    # #10634, fixed in 8.0): a second stream on it fails with "Error in the
    # HTTP2 framing layer".  So every transfer gets a host name of its own
    # (routed to the server with --connect-to) and thus its own connection.
    m = re.match(r"^http://([^:/]+):(\d+)$", base_url)
    host, port = m.group(1), m.group(2)
    for i, r in enumerate(requests):
        if i:
            cfg_lines.append("next")
        fake = f"t{i}.pickple.test"
        cfg_lines.append(f"url = {q(f'http://{fake}:{port}' + r['path'])}")
        cfg_lines.append(f"connect-to = {q(f'{fake}:{port}:{host}:{port}')}")
        cfg_lines.append("http1.1" if http1 else "http2-prior-knowledge")
        cfg_lines.append(f"request = {q(r.get('method', 'GET'))}")
        cfg_lines.append(f"max-time = {max_time}")
        cfg_lines.append("globoff")
        body = r.get("raw_body")
        if body is None and r.get("json_body") is not None:
            body = json.dumps(r["json_body"]).encode()
        if isinstance(body, str):
            body = body.encode()
        if body is not None:
            bf = os.path.join(work, f"req{i}")
            with open(bf, "wb") as f:
                f.write(body)
            cfg_lines.append(f"data-binary = {q('@' + bf)}")
        hargs = _header_args(r.get("method", "GET"), r.get("json_body"), r.get("token"),
                             r.get("headers"), body is not None)
        for j in range(0, len(hargs), 2):
            cfg_lines.append(f"header = {q(hargs[j + 1])}")
        cfg_lines.append(f"output = {q(os.path.join(work, f'resp{i}'))}")
        cfg_lines.append('write-out = "%{http_code} %{filename_effective}\\n"')
    cfg = os.path.join(work, "config")
    with open(cfg, "w") as f:
        f.write("\n".join(cfg_lines) + "\n")
    cmd = ["curl", "-sS", "--parallel", "--parallel-immediate", "--parallel-max", str(min(parallel_max, 300))]
    cmd += ["-K", cfg]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=max_time + 60)
    except subprocess.TimeoutExpired:
        shutil.rmtree(work, ignore_errors=True)
        raise TransportError("curl --parallel hung")
    statuses = {}
    for line in p.stdout.decode("latin-1").splitlines():
        m = re.match(r"^(\d{3}) .*resp(\d+)$", line.strip())
        if m:
            statuses[int(m.group(2))] = int(m.group(1))
    results = []
    for i in range(len(requests)):
        raw = b""
        rf = os.path.join(work, f"resp{i}")
        if os.path.exists(rf):
            with open(rf, "rb") as f:
                raw = f.read()
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except Exception:
            body = None
        results.append(Response(statuses.get(i, 0), {}, body, raw, "HTTP/1.1" if http1 else "HTTP/2"))
    shutil.rmtree(work, ignore_errors=True)
    return results


def curl_threads(base_url, requests, http1=False, max_time=60):
    """Like curl_parallel but one curl process per request, all started together
    (separate TCP connections).  Transport failures give status 0."""
    results = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def one(i, r):
        try:
            barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            pass
        try:
            results[i] = curl_call(base_url, r.get("method", "GET"), r["path"], r.get("json_body"),
                                   r.get("token"), r.get("headers"), r.get("raw_body"), http1,
                                   max_time)
        except TransportError as e:
            results[i] = Response(0, {}, None, str(e).encode())

    ts = [threading.Thread(target=one, args=(i, r)) for i, r in enumerate(requests)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return results


def h2load_available():
    return shutil.which("h2load") is not None


def run_h2load(base_url, path, n, clients=1, streams=100, body=None, headers=None, timeout=600):
    """Runs nghttp2's h2load (h2c prior knowledge, many streams multiplexed on
    each connection; this is what curl 7.88 cannot do).  Returns a dict with
    total, succeeded, failed, errored, timeout, 2xx, 3xx, 4xx, 5xx."""
    cmd = ["h2load", "-n", str(n), "-c", str(clients), "-m", str(streams), "-T", str(timeout), "-N", str(timeout)]
    if body is not None:
        bf = tmp_path("h2load-body")
        with open(bf, "wb") as f:
            f.write(body if isinstance(body, bytes) else json.dumps(body).encode())
        cmd += ["-d", bf]
        headers = dict(headers or {})
        headers.setdefault("content-type", "application/json")
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(base_url + path)
    p = subprocess.run(cmd, capture_output=True, timeout=timeout + 60)
    out = p.stdout.decode(errors="replace")
    res = {}
    m = re.search(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", out)
    assert m, f"cannot parse h2load output (exit {p.returncode}):\n{out}\n{p.stderr.decode(errors='replace')}"
    res.update(total=int(m.group(1)), succeeded=int(m.group(2)), failed=int(m.group(3)),
               errored=int(m.group(4)), timeout=int(m.group(5)))
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    assert m, out
    res.update({"2xx": int(m.group(1)), "3xx": int(m.group(2)), "4xx": int(m.group(3)), "5xx": int(m.group(4))})
    res["output"] = out
    return res


# --------------------------------------------------------------------------
# the server process


class ServerStartError(AssertionError):
    pass


class Server:
    """One pickple process on 127.0.0.1:<free port> with its own data dir."""

    def __init__(self, extra_args=(), admin_password=ADMIN_PASSWORD, env=None, data_dir=None,
                 port=None, threads=2, start=True, base_args=None):
        self.bin = pickple_bin()
        self.port = port or free_port()
        self.data_dir = data_dir or tmp_dir("data")
        self.admin_password = admin_password
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.threads = threads
        self.base_args = base_args
        self.log_path = tmp_path("server") + ".log"
        self.proc = None
        self.starts = 0
        self.last_exit = None
        _ALL_SERVERS.append(self)
        if start:
            self.start()

    # -- process control
    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def argv(self):
        if self.base_args is not None:
            args = list(self.base_args)
        else:
            args = ["--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
                    "--threads", str(self.threads), "--kafka-brokers", "off"]
            if self.admin_password is not None:
                args += ["--admin-password", self.admin_password]
        return [self.bin] + args + self.extra_args

    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"==== start #{self.starts}: {' '.join(self.argv())}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=log, env=clean_env(self.env))
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.last_exit = rc
                raise ServerStartError(f"server exited with code {rc} before /readyz was 200\n"
                                       + self.log_tail())
            try:
                r = self.call("GET", "/readyz", max_time=2)
                last = r.status
                if r.status == 200:
                    return
            except TransportError as e:
                last = str(e)
            time.sleep(0.05)
        raise ServerStartError(f"/readyz not 200 within {timeout}s (last: {last})\n" + self.log_tail())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Sends sig and waits; returns the exit code (negative = killed by a
        signal).  If it does not exit within timeout: kill -9 and fail."""
        if self.proc is None:
            return self.last_exit
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.last_exit = self.proc.returncode
                self.proc = None
                raise AssertionError(f"server did not exit within {timeout}s of signal {sig}\n"
                                     + self.log_tail())
        self.last_exit = self.proc.returncode
        self.proc = None
        return self.last_exit

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self.last_exit = self.proc.returncode
        self.proc = None

    def restart(self, extra_args=None, env=None, admin_password="unchanged", sig=signal.SIGTERM):
        """Stops (if running) with sig and starts again with the same data dir
        and port.  Returns the exit code of the stop (None if not running)."""
        rc = None
        if self.alive():
            rc = self.stop(sig)
        if extra_args is not None:
            self.extra_args = list(extra_args)
        if env is not None:
            self.env = dict(env)
        if admin_password != "unchanged":
            self.admin_password = admin_password
        # the port may linger briefly; start() retries readiness for 20 s
        self.start()
        return rc

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no server log)"
        tail = lines[-n:]
        return f"---- server log tail ({self.log_path}) ----\n" + "\n".join(tail) + "\n----"

    # -- HTTP
    def call(self, method, path, json_body=None, token=None, headers=None, raw_body=None,
             http1=False, max_time=CURL_MAX_TIME, extra_curl_args=()):
        return curl_call(self.base_url, method, path, json_body, token, headers, raw_body, http1,
                         max_time, extra_curl_args)

    def parallel(self, requests, **kw):
        return curl_parallel(self.base_url, requests, **kw)

    def h2load(self, path, n, **kw):
        return run_h2load(self.base_url, path, n, **kw)

    def parallel_threads(self, requests, **kw):
        return curl_threads(self.base_url, requests, **kw)

    # -- users and auth helpers
    def sign_up(self, username=None, password=DEFAULT_PASSWORD, email=None, expect=201, **extra):
        username = username or unique_name()
        body = {"username": username, "password": password,
                "email": email if email is not None else f"{username}@example.com"}
        body.update(extra)
        r = self.call("POST", "/api/v1/auth/sign-up", body)
        if expect is not None:
            assert r.status == expect, f"sign-up {username}: expected {expect}, got {r!r}"
        return r.body if expect == 201 else r

    def sign_in_response(self, username, password=DEFAULT_PASSWORD, http1=False):
        return self.call("POST", "/api/v1/auth/sign-in",
                         {"username": username, "password": password}, http1=http1)

    def sign_in(self, username, password=DEFAULT_PASSWORD):
        r = self.sign_in_response(username, password)
        assert r.status == 200, f"sign-in {username}: expected 200, got {r!r}"
        assert isinstance(r.body, dict) and isinstance(r.body.get("access_token"), str), r
        return r.body["access_token"]

    def new_user(self, password=DEFAULT_PASSWORD, prefix="u"):
        """Signs up a fresh customer; returns (user, token)."""
        user = self.sign_up(unique_name(prefix), password)
        return user, self.sign_in(user["username"], password)

    def admin_token(self):
        assert self.admin_password is not None or "PICKPLE_ADMIN_PASSWORD" in self.env
        pw = self.admin_password if self.admin_password is not None else self.env["PICKPLE_ADMIN_PASSWORD"]
        return self.sign_in("admin", pw)

    def jwt_secret(self):
        return read_jwt_secret(os.path.join(self.data_dir, "jwt-secret"))

    def healthy(self):
        try:
            r = self.call("GET", "/healthz", max_time=10)
        except TransportError:
            return False
        return r.status == 200


# module-level convenience around a "current" server ---------------------

_current = [None]


def set_current(server):
    _current[0] = server
    return server


def current():
    return _current[0]


def call(method, path, json_body=None, token=None, headers=None, raw_body=None, http1=False, **kw):
    return _current[0].call(method, path, json_body, token, headers, raw_body, http1, **kw)


def sign_up(username=None, password=DEFAULT_PASSWORD, email=None, **kw):
    return _current[0].sign_up(username, password, email, **kw)


def sign_in(username, password=DEFAULT_PASSWORD):
    return _current[0].sign_in(username, password)


def admin_token():
    return _current[0].admin_token()


_shared = {}


def shared_server(key="default", **kw):
    """One long-lived server per key for a test file; started on first use and
    started again (with the same data dir) if an earlier test killed it."""
    s = _shared.get(key)
    if s is None:
        s = Server(**kw)
        _shared[key] = s
    elif not s.alive():
        s.start()
    return set_current(s)


# --------------------------------------------------------------------------
# names, assertions


_name_counter = [0]
_RUN_TAG = format(os.getpid() % 46656, "x")


def unique_name(prefix="u"):
    _name_counter[0] += 1
    n = f"{prefix}{_RUN_TAG}_{_name_counter[0]}_{os.urandom(2).hex()}"
    return n[:32]


RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


def parse_rfc3339_utc(s):
    assert isinstance(s, str) and RFC3339_UTC.match(s), f"not an RFC 3339 UTC time: {s!r}"
    base = s[:19]
    dt = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def is_id(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2 ** 53


def assert_error(resp, status, code=None, field=None):
    """resp must be status with the contract's error body; code/field checked when given."""
    assert resp.status == status, f"expected HTTP {status}" + (f" {code}" if code else "") + f", got {resp!r}"
    assert_error_shape(resp)
    if code is not None:
        assert resp.body["error"]["code"] == code, f"expected code {code!r}, got {resp!r}"
    if field is not None:
        msg = resp.body["error"]["message"]
        assert field in msg, f"error message should name field {field!r}: {msg!r}"


def assert_error_shape(resp, msgpack=False):
    """The contract's error body, as JSON (or, when msgpack is true, as the
    MessagePack the request asked for)."""
    ct = resp.headers.get("content-type", "")
    want = "application/msgpack" if msgpack else "application/json"
    assert ct.split(";")[0].strip().lower() == want, \
        f"error content-type should be {want}, got {ct!r} ({resp!r})"
    b = resp.body
    assert isinstance(b, dict) and isinstance(b.get("error"), dict), f"no error object: {resp!r}"
    e = b["error"]
    assert isinstance(e.get("code"), str) and e["code"], f"error.code missing: {resp!r}"
    assert isinstance(e.get("message"), str) and e["message"], f"error.message missing: {resp!r}"


def assert_status(resp, status):
    assert resp.status == status, f"expected HTTP {status}, got {resp!r}"


def assert_4xx(resp, msgpack=False):
    assert 400 <= resp.status <= 499, f"expected a 4xx, got {resp!r}"
    assert_error_shape(resp, msgpack)


# --------------------------------------------------------------------------
# JWT forging


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s):
    s = s + "=" * (-len(s) % 4)
    return base64.urlsafe_b64decode(s.encode())


def read_jwt_secret(path):
    """The key per contract: the file's bytes with one trailing newline removed."""
    with open(path, "rb") as f:
        data = f.read()
    if data.endswith(b"\n"):
        data = data[:-1]
    return data


def forge_jwt(secret, claims, header=None, alg="HS256"):
    header = header if header is not None else {"alg": alg, "typ": "JWT"}
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    p = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{h}.{p}".encode()
    a = header.get("alg")
    if a == "HS256":
        sig = b64url(hmac.new(secret, signing_input, hashlib.sha256).digest())
    elif a == "HS384":
        sig = b64url(hmac.new(secret, signing_input, hashlib.sha384).digest())
    elif a == "HS512":
        sig = b64url(hmac.new(secret, signing_input, hashlib.sha512).digest())
    else:  # "none" and anything else: unsigned
        sig = ""
    return f"{h}.{p}.{sig}"


def claims_for(user_id, role="customer", ttl=3600, iat=None):
    now = int(time.time()) if iat is None else iat
    return {"sub": str(user_id), "role": role, "iat": now, "exp": now + ttl}


def jwt_parts(token):
    """Decodes (header, payload) of a token without checking anything."""
    h, p, _ = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p))


def jwt_signature_ok(secret, token):
    h, p, s = token.split(".")
    want = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return hmac.compare_digest(want, b64url_decode(s))


# --------------------------------------------------------------------------
# minimal MessagePack


def msgpack_encode(o):
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 0x80:
            return bytes([o])
        if -32 <= o < 0:
            return struct.pack("b", o)
        if o >= 0:
            for code, fmt, lim in ((0xcc, ">B", 1 << 8), (0xcd, ">H", 1 << 16), (0xce, ">I", 1 << 32),
                                   (0xcf, ">Q", 1 << 64)):
                if o < lim:
                    return bytes([code]) + struct.pack(fmt, o)
            raise ValueError("int too large")
        for code, fmt, lim in ((0xd0, ">b", 1 << 7), (0xd1, ">h", 1 << 15), (0xd2, ">i", 1 << 31),
                               (0xd3, ">q", 1 << 63)):
            if o >= -lim:
                return bytes([code]) + struct.pack(fmt, o)
        raise ValueError("int too small")
    if isinstance(o, float):
        return b"\xcb" + struct.pack(">d", o)
    if isinstance(o, str):
        b = o.encode("utf-8")
        n = len(b)
        if n < 32:
            return bytes([0xa0 | n]) + b
        if n < 1 << 8:
            return b"\xd9" + struct.pack(">B", n) + b
        if n < 1 << 16:
            return b"\xda" + struct.pack(">H", n) + b
        return b"\xdb" + struct.pack(">I", n) + b
    if isinstance(o, (bytes, bytearray)):
        n = len(o)
        if n < 1 << 8:
            return b"\xc4" + struct.pack(">B", n) + bytes(o)
        if n < 1 << 16:
            return b"\xc5" + struct.pack(">H", n) + bytes(o)
        return b"\xc6" + struct.pack(">I", n) + bytes(o)
    if isinstance(o, (list, tuple)):
        n = len(o)
        if n < 16:
            head = bytes([0x90 | n])
        elif n < 1 << 16:
            head = b"\xdc" + struct.pack(">H", n)
        else:
            head = b"\xdd" + struct.pack(">I", n)
        return head + b"".join(msgpack_encode(x) for x in o)
    if isinstance(o, dict):
        n = len(o)
        if n < 16:
            head = bytes([0x80 | n])
        elif n < 1 << 16:
            head = b"\xde" + struct.pack(">H", n)
        else:
            head = b"\xdf" + struct.pack(">I", n)
        return head + b"".join(msgpack_encode(k) + msgpack_encode(v) for k, v in o.items())
    raise TypeError(f"cannot msgpack-encode {type(o)}")


def msgpack_decode(data):
    """Decodes exactly one MessagePack object filling all of data."""
    obj, pos = _mp_dec(bytes(data), 0)
    if pos != len(data):
        raise ValueError(f"trailing bytes after MessagePack object at {pos}")
    return obj


def _mp_dec(d, i):
    t = d[i]
    i += 1
    if t <= 0x7f:
        return t, i
    if 0x80 <= t <= 0x8f:
        return _mp_map(d, i, t & 0x0f)
    if 0x90 <= t <= 0x9f:
        return _mp_arr(d, i, t & 0x0f)
    if 0xa0 <= t <= 0xbf:
        n = t & 0x1f
        return d[i:i + n].decode("utf-8"), i + n
    if t >= 0xe0:
        return t - 0x100, i
    if t == 0xc0:
        return None, i
    if t == 0xc2:
        return False, i
    if t == 0xc3:
        return True, i

    def un(fmt):
        size = struct.calcsize(fmt)
        if i + size > len(d):
            raise ValueError("truncated")
        return struct.unpack(fmt, d[i:i + size])[0], i + size

    if t in (0xc4, 0xc5, 0xc6):
        n, j = un({0xc4: ">B", 0xc5: ">H", 0xc6: ">I"}[t])
        return d[j:j + n], j + n
    if t == 0xca:
        return un(">f")
    if t == 0xcb:
        return un(">d")
    ints = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q", 0xd0: ">b", 0xd1: ">h", 0xd2: ">i", 0xd3: ">q"}
    if t in ints:
        return un(ints[t])
    if t in (0xd9, 0xda, 0xdb):
        n, j = un({0xd9: ">B", 0xda: ">H", 0xdb: ">I"}[t])
        if j + n > len(d):
            raise ValueError("truncated string")
        return d[j:j + n].decode("utf-8"), j + n
    if t in (0xdc, 0xdd):
        n, j = un(">H" if t == 0xdc else ">I")
        return _mp_arr(d, j, n)
    if t in (0xde, 0xdf):
        n, j = un(">H" if t == 0xde else ">I")
        return _mp_map(d, j, n)
    raise ValueError(f"unsupported MessagePack type byte 0x{t:02x}")


def _mp_map(d, i, n):
    out = {}
    for _ in range(n):
        k, i = _mp_dec(d, i)
        v, i = _mp_dec(d, i)
        out[k] = v
    return out, i


def _mp_arr(d, i, n):
    out = []
    for _ in range(n):
        v, i = _mp_dec(d, i)
        out.append(v)
    return out, i


# --------------------------------------------------------------------------
# the runner


class Skip(Exception):
    pass


def skip(reason):
    raise Skip(reason)


def run_tests(namespace, only=None):
    """Runs every function named test_* in namespace, in definition order.
    Prints PASS/FAIL/SKIP per test and then `N passed, M failed`; exits 1 when
    anything failed (or nothing ran), else 0.  Test names can be filtered with
    command line arguments (substring match)."""
    tests = [(name, fn) for name, fn in namespace.items()
             if name.startswith("test_") and callable(fn) and hasattr(fn, "__code__")]
    tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
    filters = only if only is not None else sys.argv[1:]
    if filters:
        tests = [t for t in tests if any(f in t[0] for f in filters)]
    passed = failed = skipped = 0
    try:
        pickple_bin()
    except SystemExit as e:
        print(f"FAIL setup: {e}")
        print("0 passed, 1 failed")
        sys.stdout.flush()
        sys.exit(1)
    for name, fn in tests:
        n_servers = len(_ALL_SERVERS)
        t0 = time.monotonic()
        try:
            fn()
        except Skip as e:
            skipped += 1
            print(f"SKIP {name}: {e}")
        except (AssertionError, Exception) as e:  # every exception is a failure of that test
            failed += 1
            kind = "" if isinstance(e, AssertionError) else f"{type(e).__name__}: "
            print(f"FAIL {name} ({time.monotonic() - t0:.2f}s): {kind}{str(e).splitlines()[0] if str(e) else ''}")
            tb = traceback.format_exc()
            print("    " + tb.replace("\n", "\n    "))
            seen = set()
            for s in _ALL_SERVERS[n_servers:] + [s for s in _ALL_SERVERS if s.alive()]:
                if id(s) in seen:
                    continue
                seen.add(id(s))
                print("    " + s.log_tail(30).replace("\n", "\n    "))
        else:
            passed += 1
            print(f"PASS {name} ({time.monotonic() - t0:.2f}s)")
        sys.stdout.flush()
    for s in list(_ALL_SERVERS):
        s.kill9()
    if skipped:
        print(f"({skipped} skipped)")
    print(f"{passed} passed, {failed} failed")
    sys.stdout.flush()
    sys.exit(1 if failed or passed == 0 else 0)
