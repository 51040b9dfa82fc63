"""Process lifecycle: command line, signals, durability across restarts and
kill -9, the `token` subcommand, environment configuration, secrets."""

import json
import os
import re
import signal
import subprocess
import threading
import time

from pickple_harness import (ADMIN_PASSWORD, DEFAULT_PASSWORD, Server, assert_error, assert_status,
                             claims_for, clean_env, forge_jwt, free_port, jwt_parts, jwt_signature_ok,
                             pickple_bin, read_jwt_secret, run_tests, skip, tmp_dir, tmp_path,
                             unique_name)

ME = "/api/v1/users/me"
SIGN_UP = "/api/v1/auth/sign-up"


def run_bin(args, timeout=15, env=None):
    """Runs the binary to completion; fails if it is still running after timeout."""
    try:
        return subprocess.run([pickple_bin()] + list(args), capture_output=True, timeout=timeout,
                              env=clean_env(env), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"`pickple {' '.join(args)}` still running after {timeout}s "
                             f"(stdout={e.stdout!r} stderr={e.stderr!r})")


# ---------------------------------------------------------------- command line


def test_help():
    p = run_bin(["--help"])
    assert p.returncode == 0, f"--help exit {p.returncode}, stderr={p.stderr!r}"
    out = p.stdout.decode(errors="replace")
    assert out.strip(), "--help printed nothing on stdout"
    for opt in ("--listen", "--data-dir", "--threads", "--admin-password", "--kafka-brokers"):
        assert opt in out, f"--help does not mention {opt}:\n{out}"


def test_version():
    p = run_bin(["--version"])
    assert p.returncode == 0, f"--version exit {p.returncode}, stderr={p.stderr!r}"
    out = p.stdout.decode(errors="replace")
    assert re.search(r"\d+\.\d+\.\d+", out), f"--version output has no version number: {out!r}"


def _bad_cli(args, mention=None):
    d = tmp_dir("cli")
    base = ["--listen", f"127.0.0.1:{free_port()}", "--data-dir", d, "--kafka-brokers", "off"]
    p = run_bin(base + args)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 2, f"{args}: exit {p.returncode}, expected 2 (stderr={err!r})"
    lines = [ln for ln in err.strip().splitlines()]
    assert len(lines) == 1 and lines[0].strip(), f"{args}: expected a one-line error on stderr, got {err!r}"
    if mention:
        assert mention in err, f"{args}: error should mention {mention!r}: {err!r}"


def test_unknown_option_exit_2():
    _bad_cli(["--no-such-option"], "no-such-option")


def test_malformed_threads_exit_2():
    _bad_cli(["--threads", "abc"], "threads")


def test_malformed_sync_exit_2():
    _bad_cli(["--sync", "maybe"], "sync")


def test_malformed_environment_exit_2():
    d = tmp_dir("cli")
    for name, value in (("PICKPLE_THREADS", "abc"), ("PICKPLE_SYNC", "maybe")):
        p = run_bin(["--listen", f"127.0.0.1:{free_port()}", "--data-dir", d, "--kafka-brokers", "off"],
                    env={name: value})
        err = p.stderr.decode(errors="replace")
        assert p.returncode == 2, f"{name}={value}: exit {p.returncode} (stderr={err!r})"
        assert len(err.strip().splitlines()) == 1 and name in err, f"{name}={value}: stderr {err!r}"


def test_more_malformed_values_exit_2():
    problems = []
    for args in (["--threads", "-3"], ["--threads", "12abc"], ["--order-ttl", "soon"],
                 ["--token-ttl", "-5"], ["--log-format", "xml"], ["--threads"]):
        try:
            _bad_cli(args)
        except AssertionError as e:
            problems.append(str(e))
    p = run_bin(["--listen", "127.0.0.1:99999", "--data-dir", tmp_dir("cli"), "--kafka-brokers", "off"])
    if p.returncode != 2:
        problems.append(f"--listen 127.0.0.1:99999: exit {p.returncode} (stderr={p.stderr!r})")
    p = run_bin(["--listen", "nonsense", "--data-dir", tmp_dir("cli"), "--kafka-brokers", "off"])
    if p.returncode != 2:
        problems.append(f"--listen nonsense: exit {p.returncode} (stderr={p.stderr!r})")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- signals and durability


def test_sigterm_restart_keeps_users():
    s = Server()
    try:
        users = [s.sign_up() for _ in range(3)]
        tok = s.sign_in(users[0]["username"])
        me_before = s.call("GET", ME, token=tok).body
        rc = s.stop(signal.SIGTERM)
        assert rc == 0, f"SIGTERM exit code {rc}\n{s.log_tail()}"
        s.start()
        for u in users:
            assert_status(s.sign_in_response(u["username"]), 200)
        # a token issued before the restart is still valid: the secret persisted
        me_after = s.call("GET", ME, token=tok)
        assert_status(me_after, 200)
        assert me_after.body == me_before, (me_before, me_after.body)
        assert_error(s.call("POST", SIGN_UP, {"username": users[1]["username"], "password": DEFAULT_PASSWORD,
                                              "email": "x@y.z"}), 409, "username_taken")
        new = s.sign_up()
        assert new["user_id"] not in {u["user_id"] for u in users}, "user id reused after restart"
        # the admin survives the restart too
        assert_status(s.sign_in_response("admin", ADMIN_PASSWORD), 200)
    finally:
        s.kill9()


def test_sigint_exits_0():
    s = Server()
    try:
        u = s.sign_up()
        rc = s.stop(signal.SIGINT)
        assert rc == 0, f"SIGINT exit code {rc}\n{s.log_tail()}"
        s.start()
        assert_status(s.sign_in_response(u["username"]), 200)
    finally:
        s.kill9()


def test_kill9_after_201_keeps_user():
    s = Server()
    try:
        adm = s.admin_token()
        promoted = s.sign_up()
        r = s.call("PUT", f"/api/v1/users/{promoted['user_id']}/role", {"role": "seller"}, token=adm)
        assert_status(r, 200)
        users = [s.sign_up() for _ in range(4)]
        s.kill9()  # right after the last 201
        s.start()
        for u in users + [promoted]:
            assert_status(s.sign_in_response(u["username"]), 200)
        me = s.call("GET", ME, token=s.sign_in(promoted["username"]))
        assert me.body["role"] == "seller", f"role change lost by kill -9: {me!r}"
        me = s.call("GET", ME, token=s.sign_in(users[-1]["username"]))
        assert me.body == users[-1], (me.body, users[-1])
    finally:
        s.kill9()


def test_sigterm_with_requests_in_flight():
    s = Server()
    try:
        def wave(prefix, n):
            names = [unique_name(prefix) for _ in range(n)]
            reqs = [{"method": "POST", "path": SIGN_UP,
                     "json_body": {"username": x, "password": DEFAULT_PASSWORD, "email": f"{x}@f.l"}} for x in names]
            return names, reqs

        names1, reqs1 = wave("fa", 30)
        names2, reqs2 = wave("fb", 20)
        out = {}

        def fire(key, reqs, http1):
            out[key] = s.parallel(reqs, http1=http1, max_time=120)

        t1 = threading.Thread(target=fire, args=("first", reqs1, True))
        t1.start()
        time.sleep(0.5)  # the first wave is being hashed and committed
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        t2 = threading.Thread(target=fire, args=("late", reqs2, False))  # after SIGTERM
        t2.start()
        try:
            s.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            raise AssertionError("server still running 120 s after SIGTERM\n" + s.log_tail())
        rc = s.stop()
        t1.join(180)
        t2.join(180)
        assert not t1.is_alive() and not t2.is_alive(), "clients still hanging after the server exited"
        assert rc == 0, f"SIGTERM under load: exit code {rc}\n{s.log_tail()}"
        st1 = [r.status for r in out["first"]]
        st2 = [r.status for r in out["late"]]
        assert set(st1) <= {201, 503, 0}, f"unexpected statuses for requests in flight: {sorted(set(st1))}"
        assert set(st2) <= {503, 0}, f"requests sent after SIGTERM: {sorted(set(st2))} (should not be accepted)"
        ok = [names1[i] for i, r in enumerate(out["first"]) if r.status == 201]
        assert ok, f"no request in flight was answered 201: {st1}"
        s.start()
        lost = [n for n in ok if s.sign_in_response(n).status != 200]
        assert not lost, f"{len(lost)} of {len(ok)} acknowledged sign-ups lost across SIGTERM: {lost[:5]}"
    finally:
        s.kill9()


def test_threads_change_keeps_users():
    s = Server()
    try:
        users = [s.sign_up() for _ in range(6)]
        assert s.stop() == 0
        for threads in (3, 1):
            s.threads = threads
            s.start()
            for u in users:
                assert_status(s.sign_in_response(u["username"]), 200)
                assert_error(s.call("POST", SIGN_UP, {"username": u["username"], "password": DEFAULT_PASSWORD,
                                                      "email": "d@u.p"}), 409, "username_taken")
            new = s.sign_up()
            assert new["user_id"] not in {u["user_id"] for u in users}
            users.append(new)
            assert s.stop() == 0
    finally:
        s.kill9()


def test_sync_none_works():
    s = Server(extra_args=["--sync", "none"])
    try:
        u = s.sign_up()
        assert s.stop() == 0
        s.start()
        assert_status(s.sign_in_response(u["username"]), 200)
    finally:
        s.kill9()


def test_log_format_json():
    s = Server(extra_args=["--log-format", "json"])
    try:
        s.sign_up()
        s.call("GET", "/api/v1/nope")
        assert s.stop() == 0
        with open(s.log_path, "rb") as f:
            lines = [ln for ln in f.read().decode("utf-8", "replace").splitlines()
                     if ln.strip() and not ln.startswith("==== start")]
        assert lines, "no log lines at all with --log-format json"
        bad = []
        for ln in lines:
            try:
                if not isinstance(json.loads(ln), dict):
                    bad.append(ln)
            except ValueError:
                bad.append(ln)
        assert not bad, f"{len(bad)} of {len(lines)} log lines are not JSON objects, e.g. {bad[:3]}"
    finally:
        s.kill9()


def test_admin_created_only_on_first_start():
    s = Server()
    try:
        s.stop()
        s.admin_password = "a-different-password"
        s.start()
        assert_status(s.sign_in_response("admin", ADMIN_PASSWORD), 200)
        assert_error(s.sign_in_response("admin", "a-different-password"), 401, "invalid_credentials")
    finally:
        s.kill9()


# ---------------------------------------------------------------- secrets and tokens


def test_jwt_secret_generated():
    s = Server()
    try:
        path = os.path.join(s.data_dir, "jwt-secret")
        assert os.path.isfile(path), f"no {path}"
        key = read_jwt_secret(path)
        assert len(key) >= 32, f"secret shorter than 32 bytes: {len(key)}"
        mode = os.stat(path).st_mode & 0o777
        assert mode & 0o077 == 0, f"jwt-secret readable by others: mode {oct(mode)}"
        tok = s.admin_token()
        assert jwt_signature_ok(key, tok)
        s.stop()
        s.start()
        assert read_jwt_secret(path) == key, "secret regenerated on restart"
    finally:
        s.kill9()


def test_jwt_secret_file_option():
    key = os.urandom(24).hex().encode()  # 48 bytes
    for content in (key + b"\n", key):
        f = tmp_path("secret")
        with open(f, "wb") as fh:
            fh.write(content)
        os.chmod(f, 0o600)
        s = Server(extra_args=["--jwt-secret-file", f])
        try:
            u = s.sign_up()
            tok = s.sign_in(u["username"])
            assert jwt_signature_ok(key, tok), f"token not signed with --jwt-secret-file ({content[-3:]!r})"
            forged = forge_jwt(key, claims_for(u["user_id"]))
            me = s.call("GET", ME, token=forged)
            assert_status(me, 200)
            assert me.body["user_id"] == u["user_id"]
        finally:
            s.kill9()


def test_short_jwt_secret_refused():
    f = tmp_path("secret")
    with open(f, "wb") as fh:
        fh.write(b"too-short-secret\n")
    os.chmod(f, 0o600)
    d = tmp_dir("data")
    p = run_bin(["--listen", f"127.0.0.1:{free_port()}", "--data-dir", d, "--kafka-brokers", "off",
                 "--jwt-secret-file", f], timeout=20)
    assert p.returncode != 0, "server started with a 16-byte JWT secret"
    assert p.stderr.strip(), "no message for the refused secret"


def test_token_subcommand():
    s = Server()
    try:
        u = s.sign_up()
        victim = s.sign_up()
        p = run_bin(["token", "--data-dir", s.data_dir, "--user-id", str(u["user_id"]), "--role", "admin"])
        assert p.returncode == 0, f"token exit {p.returncode}: {p.stderr!r}"
        tok = p.stdout.decode().strip()
        assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", tok), f"not a JWT: {p.stdout!r}"
        head, claims = jwt_parts(tok)
        assert head.get("alg") == "HS256", head
        assert claims.get("sub") == str(u["user_id"]) and claims.get("role") == "admin", claims
        assert jwt_signature_ok(s.jwt_secret(), tok)
        me = s.call("GET", ME, token=tok)
        assert_status(me, 200)
        assert me.body["user_id"] == u["user_id"], me
        # the token's admin role is honoured (benchmark harnesses rely on it)
        r = s.call("PUT", f"/api/v1/users/{victim['user_id']}/role", {"role": "seller"}, token=tok)
        assert_status(r, 200)
        # --ttl
        p = run_bin(["token", "--data-dir", s.data_dir, "--user-id", str(u["user_id"]), "--ttl", "60"])
        assert p.returncode == 0, p.stderr
        _, c2 = jwt_parts(p.stdout.decode().strip())
        assert c2["exp"] - c2["iat"] == 60, c2
        assert_status(s.call("GET", ME, token=p.stdout.decode().strip()), 200)
    finally:
        s.kill9()


def test_token_subcommand_bad_args():
    d = tmp_dir("data")
    Server(data_dir=d).stop()  # creates the data dir and its secret
    for args in (["token", "--data-dir", d, "--user-id", "abc"],
                 ["token", "--data-dir", d, "--user-id", "1", "--role", "emperor"],
                 ["token", "--data-dir", d, "--user-id", "1", "--bogus"]):
        p = run_bin(args)
        assert p.returncode == 2, f"{args}: exit {p.returncode}, stdout={p.stdout!r} stderr={p.stderr!r}"
        assert not p.stdout.strip(), f"{args}: printed a token anyway: {p.stdout!r}"


# ---------------------------------------------------------------- environment


def test_admin_password_from_environment():
    s = Server(admin_password=None, env={"PICKPLE_ADMIN_PASSWORD": "env-admin-pass-77"})
    try:
        r = s.sign_in_response("admin", "env-admin-pass-77")
        assert_status(r, 200)
        me = s.call("GET", ME, token=r.body["access_token"])
        assert me.body["role"] == "admin", me
    finally:
        s.kill9()


def test_options_from_environment():
    port = free_port()
    d = tmp_dir("data")
    env = {"PICKPLE_LISTEN": f"127.0.0.1:{port}", "PICKPLE_DATA_DIR": d, "PICKPLE_THREADS": "2",
           "PICKPLE_KAFKA_BROKERS": "off", "PICKPLE_ADMIN_PASSWORD": "env-only-pass", "PICKPLE_TOKEN_TTL": "77"}
    s = Server(base_args=[], env=env, port=port, data_dir=d, admin_password=None)
    try:
        r = s.sign_in_response("admin", "env-only-pass")
        assert_status(r, 200)
        assert r.body["expires_in"] == 77, r
        assert os.path.isfile(os.path.join(d, "jwt-secret")), "PICKPLE_DATA_DIR not used"
    finally:
        s.kill9()


def test_no_admin_password_no_admin():
    s = Server(admin_password=None)
    try:
        assert_error(s.sign_in_response("admin", ADMIN_PASSWORD), 401, "invalid_credentials")
        u = s.sign_up()
        assert_status(s.sign_in_response(u["username"]), 200)
    finally:
        s.kill9()


# ---------------------------------------------------------------- data directory versions


def test_newer_data_dir_format_refused():
    # TODO(lead): the contract does not name the file that holds the data
    # format version.  The current server writes <data-dir>/FORMAT
    # ("pickple-data-format 1" ...; src/store/store.c); this test bumps the
    # first number in it to 999 and expects the start to be refused with a
    # message naming 999, and the directory left as it was.  Confirm the file
    # name and adjust here if it changes.
    s = Server()
    try:
        u = s.sign_up()
        assert s.stop() == 0
        fmt = os.path.join(s.data_dir, "FORMAT")
        if not os.path.isfile(fmt):
            skip("no <data-dir>/FORMAT file; format-version location unknown (TODO)")
        with open(fmt, "rb") as f:
            original = f.read()
        bumped, n = re.subn(rb"\d+", b"999", original, count=1)
        assert n == 1, f"no version number in FORMAT: {original!r}"
        with open(fmt, "wb") as f:
            f.write(bumped)
        p = run_bin(s.argv()[1:], timeout=20)
        err = p.stderr.decode(errors="replace") + p.stdout.decode(errors="replace")
        assert p.returncode != 0, f"server started on a format-999 data dir (exit {p.returncode}): {err}"
        assert "999" in err, f"refusal does not name the version found: {err!r}"
        with open(fmt, "rb") as f:
            assert f.read() == bumped, "FORMAT rewritten by the refused start"
        with open(fmt, "wb") as f:
            f.write(original)
        s.start()
        assert_status(s.sign_in_response(u["username"]), 200)
    finally:
        s.kill9()


def test_garbage_format_file_refused():
    s = Server()
    try:
        assert s.stop() == 0
        fmt = os.path.join(s.data_dir, "FORMAT")
        if not os.path.isfile(fmt):
            skip("no <data-dir>/FORMAT file (TODO)")
        with open(fmt, "wb") as f:
            f.write(b"\x00\xffnot a format file\n")
        p = run_bin(s.argv()[1:], timeout=20)
        assert p.returncode != 0, "server started with a garbage FORMAT file"
        assert p.stderr.strip(), "no message for the unreadable data directory"
    finally:
        s.kill9()


if __name__ == "__main__":
    run_tests(globals())
