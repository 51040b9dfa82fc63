"""Users and auth: sign-up, sign-in, users/me, tokens, roles, MessagePack."""

import time

from pickple_harness import (ADMIN_PASSWORD, DEFAULT_PASSWORD, Server, assert_error, assert_error_shape,
                             assert_status, claims_for, forge_jwt, is_id, jwt_parts, jwt_signature_ok,
                             h2load_available, msgpack_decode, msgpack_encode, parse_rfc3339_utc,
                             run_tests, shared_server, skip, unique_name)

SIGN_UP = "/api/v1/auth/sign-up"
SIGN_IN = "/api/v1/auth/sign-in"
ME = "/api/v1/users/me"


def srv():
    return shared_server()


def role_path(user_id):
    return f"/api/v1/users/{user_id}/role"


def check_user_shape(u, username=None, email=None, role="customer"):
    assert isinstance(u, dict), f"user is not an object: {u!r}"
    for k in ("user_id", "username", "email", "role", "created_at"):
        assert k in u, f"user lacks {k}: {u!r}"
    assert is_id(u["user_id"]), f"user_id not an id below 2^53: {u!r}"
    if username is not None:
        assert u["username"] == username, u
    if email is not None:
        assert u["email"] == email, u
    assert u["role"] == role, f"role should be {role!r}: {u!r}"
    t = parse_rfc3339_utc(u["created_at"])
    assert abs(t - time.time()) < 600, f"created_at far from now: {u['created_at']}"
    for k in u:
        assert "pass" not in k.lower() and "hash" not in k.lower() and "salt" not in k.lower(), \
            f"user exposes {k}: {u!r}"


# ---------------------------------------------------------------- sign-up


def test_sign_up_returns_user():
    s = srv()
    name = unique_name("a")
    r = s.call("POST", SIGN_UP, {"username": name, "password": "s3cret-pass!", "email": f"{name}@ex.org"})
    assert_status(r, 201)
    assert r.headers.get("content-type", "").startswith("application/json"), r
    check_user_shape(r.body, name, f"{name}@ex.org")
    assert b"s3cret-pass!" not in r.raw, "password echoed back"
    assert b"scrypt" not in r.raw and b"$" not in r.raw, f"looks like a hash in the output: {r.raw!r}"


def test_sign_up_ids_distinct():
    s = srv()
    a = s.sign_up()
    b = s.sign_up()
    assert a["user_id"] != b["user_id"], (a, b)


def test_duplicate_username_409():
    s = srv()
    name = unique_name("dup")
    s.sign_up(name)
    r = s.call("POST", SIGN_UP, {"username": name, "password": "another-pass", "email": "x@y.z"})
    assert_error(r, 409, "username_taken")
    # the first account is untouched: its password still works, the second one's does not
    assert_status(s.sign_in_response(name, DEFAULT_PASSWORD), 200)
    assert_error(s.sign_in_response(name, "another-pass"), 401, "invalid_credentials")


def _valid(**over):
    name = unique_name("v")
    body = {"username": name, "password": DEFAULT_PASSWORD, "email": f"{name}@example.com"}
    for k, v in over.items():
        if v is _DROP:
            body.pop(k)
        else:
            body[k] = v
    return body


_DROP = object()

FIELD_CASES = [
    ("username too short (2)", dict(username="ab"), "username"),
    ("username too long (33)", dict(username="a" * 33), "username"),
    ("username uppercase", dict(username="Alice1"), "username"),
    ("username with space", dict(username="ali ce"), "username"),
    ("username non-ascii", dict(username="alicé"), "username"),
    ("username with NUL (\\u0000)", dict(username="ali\u0000ce"), None),
    ("username empty", dict(username=""), "username"),
    ("username number", dict(username=12345), "username"),
    ("username null", dict(username=None), "username"),
    ("username missing", dict(username=_DROP), "username"),
    ("password 7 bytes", dict(password="1234567"), "password"),
    ("password 129 bytes", dict(password="p" * 129), "password"),
    ("password 130 bytes in 65 chars", dict(password="é" * 65), "password"),
    ("password number", dict(password=12345678), "password"),
    ("password missing", dict(password=_DROP), "password"),
    ("email without @", dict(email="no-at.example.com"), "email"),
    ("email with two @", dict(email="a@b@example.com"), "email"),
    ("email number", dict(email=42), "email"),
    ("email missing", dict(email=_DROP), "email"),
]


def test_sign_up_validation_names_field():
    s = srv()
    problems = []
    for label, over, field in FIELD_CASES:
        body = _valid(**over)
        r = s.call("POST", SIGN_UP, body)
        try:
            assert_error(r, 400, "invalid_request", field)
        except AssertionError as e:
            problems.append(f"{label}: {e}")
    assert not problems, "\n".join(problems)


def test_sign_up_malformed_bodies_400():
    s = srv()
    cases = [
        ("malformed JSON", b'{"username": "abc", "password": '),
        ("JSON array body", b'["abc", "password123", "a@b.c"]'),
        ("JSON string body", b'"hello"'),
        ("JSON null body", b"null"),
        ("empty body", b""),
        ("trailing garbage", b'{"username":"abcdef","password":"password123","email":"a@b.c"} xyz'),
    ]
    problems = []
    for label, raw in cases:
        r = s.call("POST", SIGN_UP, raw_body=raw)
        try:
            assert_error(r, 400, "invalid_request")
        except AssertionError as e:
            problems.append(f"{label}: {e}")
    assert not problems, "\n".join(problems)
    assert s.healthy()


def test_sign_up_boundaries_accepted():
    s = srv()
    tag = unique_name("")[:10].replace("_", "")
    three = ("a" + tag)[:3]
    r3 = s.call("POST", SIGN_UP, {"username": three, "password": DEFAULT_PASSWORD, "email": "t@e.st"})
    if r3.status == 409:  # extremely unlikely collision of a 3-char name; try another
        three = tag[-3:]
        r3 = s.call("POST", SIGN_UP, {"username": three, "password": DEFAULT_PASSWORD, "email": "t@e.st"})
    assert_status(r3, 201)
    thirty_two = ("z9_.-" + tag + "x" * 32)[:32]
    assert len(thirty_two) == 32
    r32 = s.call("POST", SIGN_UP, {"username": thirty_two, "password": DEFAULT_PASSWORD, "email": "t@e.st"})
    assert_status(r32, 201)
    assert r32.body["username"] == thirty_two
    # passwords of exactly 8 and 128 bytes; "é" is 2 bytes, so 4 of them are 8 bytes
    for pw in ("12345678", "p" * 128, "é" * 4, "é" * 64):
        name = unique_name("pw")
        r = s.call("POST", SIGN_UP, {"username": name, "password": pw, "email": "p@w.x"})
        assert_status(r, 201)
        assert_status(s.sign_in_response(name, pw), 200)


def test_unknown_fields_ignored():
    s = srv()
    body = _valid(favourite_color="blue", nested={"a": [1, 2, {"b": None}]}, n=1.5)
    r = s.call("POST", SIGN_UP, body)
    assert_status(r, 201)
    check_user_shape(r.body, body["username"])
    assert "favourite_color" not in r.body


def test_cannot_sign_up_as_admin_or_seller():
    s = srv()
    for role in ("admin", "seller"):
        body = _valid(role=role)
        r = s.call("POST", SIGN_UP, body)
        assert_status(r, 201)
        assert r.body["role"] == "customer", f"sign-up with role={role} gave {r!r}"
        tok = s.sign_in(body["username"])
        me = s.call("GET", ME, token=tok)
        assert_status(me, 200)
        assert me.body["role"] == "customer", me
        assert jwt_parts(tok)[1]["role"] == "customer"
        # and the forged-looking privilege is really absent
        assert_error(s.call("PUT", role_path(me.body["user_id"]), {"role": "admin"}, token=tok),
                     403, "forbidden")


# ---------------------------------------------------------------- sign-in and tokens


def test_sign_in_shape_and_token_claims():
    s = srv()
    u = s.sign_up()
    r = s.sign_in_response(u["username"])
    assert_status(r, 200)
    b = r.body
    assert isinstance(b.get("access_token"), str) and b["access_token"].count(".") == 2, b
    assert b.get("token_type") == "Bearer", b
    assert b.get("expires_in") == 3600 and isinstance(b["expires_in"], int), b
    tok = b["access_token"]
    head, claims = jwt_parts(tok)
    assert head.get("alg") == "HS256", head
    assert claims.get("sub") == str(u["user_id"]), claims
    assert claims.get("role") == "customer", claims
    assert isinstance(claims.get("iat"), int) and isinstance(claims.get("exp"), int), claims
    assert claims["exp"] - claims["iat"] == 3600, claims
    assert abs(claims["iat"] - time.time()) < 120, claims
    assert jwt_signature_ok(s.jwt_secret(), tok), "token not signed with <data-dir>/jwt-secret"


def test_wrong_password_and_unknown_user_same_answer():
    s = srv()
    u = s.sign_up()
    wrong = s.sign_in_response(u["username"], "not-the-password")
    unknown = s.sign_in_response(unique_name("nobody"), "not-the-password")
    assert_error(wrong, 401, "invalid_credentials")
    assert_error(unknown, 401, "invalid_credentials")
    assert wrong.raw == unknown.raw, f"bodies differ: {wrong.raw!r} vs {unknown.raw!r}"


def test_sign_in_bad_input_400():
    s = srv()
    assert_error(s.call("POST", SIGN_IN, {"username": "someone"}), 400, "invalid_request", "password")
    assert_error(s.call("POST", SIGN_IN, {"password": "password123"}), 400, "invalid_request", "username")
    assert_error(s.call("POST", SIGN_IN, {"username": 5, "password": "password123"}), 400,
                 "invalid_request", "username")
    assert_error(s.call("POST", SIGN_IN, raw_body=b"{not json"), 400, "invalid_request")


def test_users_me():
    s = srv()
    u = s.sign_up()
    tok = s.sign_in(u["username"])
    r = s.call("GET", ME, token=tok)
    assert_status(r, 200)
    check_user_shape(r.body, u["username"], u["email"])
    assert r.body == u, f"users/me {r.body!r} differs from sign-up answer {u!r}"


def test_bad_tokens_401():
    s = srv()
    u = s.sign_up()
    real = s.sign_in(u["username"])
    secret = s.jwt_secret()
    uid = u["user_id"]
    now = int(time.time())
    # control: a token forged with the real secret works (else the cases below prove nothing)
    good = forge_jwt(secret, claims_for(uid))
    r = s.call("GET", ME, token=good)
    assert_status(r, 200)
    assert r.body["user_id"] == uid
    h, p, sig = real.split(".")
    admin_payload = forge_jwt(b"x" * 32, claims_for(uid, "admin")).split(".")[1]
    cases = {
        "expired": forge_jwt(secret, {"sub": str(uid), "role": "customer", "iat": now - 7200, "exp": now - 60}),
        "wrong signature key": forge_jwt(b"a-completely-different-secret-key-0123456789", claims_for(uid)),
        "alg none": forge_jwt(secret, claims_for(uid), header={"alg": "none", "typ": "JWT"}),
        "alg none with HS256 signature": ".".join(
            [forge_jwt(secret, claims_for(uid), header={"alg": "none"}).rsplit(".", 1)[0],
             forge_jwt(secret, claims_for(uid)).split(".")[2]]),
        "alg HS512 with the right key": forge_jwt(secret, claims_for(uid), header={"alg": "HS512", "typ": "JWT"}),
        "payload swapped (role admin) keeping signature": f"{h}.{admin_payload}.{sig}",
        "signature truncated": real[:-2],
        "signature removed": f"{h}.{p}.",
        "two segments": f"{h}.{p}",
        "garbage": "not-a-token",
        "bad base64": "@@@.###.$$$",
        "sub not a number": forge_jwt(secret, {"sub": "abc", "role": "customer", "iat": now, "exp": now + 600}),
        "sub as number": forge_jwt(secret, {"sub": uid, "role": "customer", "iat": now, "exp": now + 600}),
        "unknown role": forge_jwt(secret, {"sub": str(uid), "role": "root", "iat": now, "exp": now + 600}),
        "missing exp": forge_jwt(secret, {"sub": str(uid), "role": "customer", "iat": now}),
    }
    problems = []
    for label, tok in cases.items():
        r = s.call("GET", ME, token=tok)
        try:
            assert_error(r, 401, "unauthorized")
        except AssertionError as e:
            problems.append(f"{label}: {e}")
    header_cases = {
        "no Authorization header": {},
        "empty Bearer": {"Authorization": "Bearer "},
        "Basic scheme": {"Authorization": "Basic YWRtaW46YWRtaW4="},
        "token without scheme": {"Authorization": real},
    }
    for label, hd in header_cases.items():
        r = s.call("GET", ME, headers=hd)
        try:
            assert_error(r, 401, "unauthorized")
        except AssertionError as e:
            problems.append(f"{label}: {e}")
    assert not problems, "\n".join(problems)
    assert s.healthy()


# ---------------------------------------------------------------- roles


def test_admin_bootstrap():
    s = srv()
    r = s.sign_in_response("admin", ADMIN_PASSWORD)
    assert_status(r, 200)
    tok = r.body["access_token"]
    assert jwt_parts(tok)[1]["role"] == "admin"
    me = s.call("GET", ME, token=tok)
    assert_status(me, 200)
    assert me.body["username"] == "admin" and me.body["role"] == "admin", me
    assert_error(s.sign_in_response("admin", ADMIN_PASSWORD + "x"), 401, "invalid_credentials")
    # nobody can take the admin's username
    assert_error(s.call("POST", SIGN_UP, {"username": "admin", "password": "password123", "email": "a@b.c"}),
                 409, "username_taken")


def test_role_change_by_admin():
    s = srv()
    adm = s.admin_token()
    u = s.sign_up()
    r = s.call("PUT", role_path(u["user_id"]), {"role": "seller"}, token=adm)
    assert_status(r, 200)
    check_user_shape(r.body, u["username"], role="seller")
    assert r.body["user_id"] == u["user_id"]
    tok = s.sign_in(u["username"])
    assert jwt_parts(tok)[1]["role"] == "seller"
    me = s.call("GET", ME, token=tok)
    assert_status(me, 200)
    assert me.body["role"] == "seller", me
    # and back to customer
    r = s.call("PUT", role_path(u["user_id"]), {"role": "customer"}, token=adm)
    assert_status(r, 200)
    assert r.body["role"] == "customer"
    me = s.call("GET", ME, token=s.sign_in(u["username"]))
    assert me.body["role"] == "customer", me


def test_role_change_promoted_admin_can_change_roles():
    s = srv()
    adm = s.admin_token()
    boss = s.sign_up()
    other = s.sign_up()
    assert_status(s.call("PUT", role_path(boss["user_id"]), {"role": "admin"}, token=adm), 200)
    boss_tok = s.sign_in(boss["username"])
    r = s.call("PUT", role_path(other["user_id"]), {"role": "seller"}, token=boss_tok)
    assert_status(r, 200)
    assert r.body["role"] == "seller"


def test_role_change_forbidden_for_non_admin():
    s = srv()
    u, tok = s.new_user()
    victim = s.sign_up()
    assert_error(s.call("PUT", role_path(victim["user_id"]), {"role": "seller"}, token=tok), 403, "forbidden")
    assert_error(s.call("PUT", role_path(u["user_id"]), {"role": "admin"}, token=tok), 403, "forbidden")
    # a seller cannot either
    adm = s.admin_token()
    assert_status(s.call("PUT", role_path(u["user_id"]), {"role": "seller"}, token=adm), 200)
    seller_tok = s.sign_in(u["username"])
    assert_error(s.call("PUT", role_path(victim["user_id"]), {"role": "admin"}, token=seller_tok),
                 403, "forbidden")
    # no token at all
    assert_error(s.call("PUT", role_path(victim["user_id"]), {"role": "seller"}), 401, "unauthorized")
    me = s.call("GET", ME, token=s.sign_in(victim["username"]))
    assert me.body["role"] == "customer", f"role changed by a non-admin: {me!r}"


def test_role_change_unknown_id_404():
    s = srv()
    adm = s.admin_token()
    for uid in (987654321, 2 ** 53 - 1):
        assert_error(s.call("PUT", role_path(uid), {"role": "seller"}, token=adm), 404, "not_found")


def test_role_change_bad_role_400():
    s = srv()
    adm = s.admin_token()
    u = s.sign_up()
    for body in ({"role": "superuser"}, {"role": "Admin"}, {"role": 2}, {"role": None}, {}):
        assert_error(s.call("PUT", role_path(u["user_id"]), body, token=adm), 400, "invalid_request", "role")
    assert_error(s.call("PUT", role_path(u["user_id"]), raw_body=b"{", token=adm), 400, "invalid_request")
    me = s.call("GET", ME, token=s.sign_in(u["username"]))
    assert me.body["role"] == "customer", me


# ---------------------------------------------------------------- concurrency


def test_concurrent_sign_ups_one_winner_h2():
    s = srv()
    name = unique_name("race")
    reqs = [{"method": "POST", "path": SIGN_UP,
             "json_body": {"username": name, "password": f"password-{i:04d}", "email": f"r{i}@ex.com"}}
            for i in range(200)]
    res = s.parallel(reqs)
    statuses = [r.status for r in res]
    winners = [i for i, r in enumerate(res) if r.status == 201]
    losers = [r for r in res if r.status == 409 and r.body and r.body["error"]["code"] == "username_taken"]
    other = sorted(set(st for st in statuses if st not in (201, 409)))
    assert len(winners) == 1 and len(losers) == 199, \
        f"expected one 201 and 199 409 username_taken; got {len(winners)} x 201, {len(losers)} x 409, others {other}"
    assert s.healthy(), "server not answering /healthz after the race"
    w = winners[0]
    assert_status(s.sign_in_response(name, f"password-{w:04d}"), 200)
    loser = (w + 1) % 200
    assert_error(s.sign_in_response(name, f"password-{loser:04d}"), 401, "invalid_credentials")


def test_concurrent_sign_ups_one_winner_http1_separate_connections():
    s = srv()
    name = unique_name("race1")
    reqs = [{"method": "POST", "path": SIGN_UP,
             "json_body": {"username": name, "password": f"password-{i:04d}", "email": f"r{i}@ex.com"}}
            for i in range(50)]
    res = s.parallel(reqs, http1=True, separate_connections=True)
    statuses = sorted(r.status for r in res)
    assert statuses.count(201) == 1 and statuses.count(409) == 49, f"statuses: {statuses}"
    assert s.healthy()


def test_concurrent_sign_ups_one_winner_multiplexed():
    # 100 identical sign-ups as concurrent streams of one h2c connection (h2load)
    if not h2load_available():
        skip("h2load (nghttp2-client) not installed")
    s = srv()
    name = unique_name("race2")
    res = s.h2load(SIGN_UP, 100, clients=1, streams=100, timeout=900,
                   body={"username": name, "password": DEFAULT_PASSWORD, "email": f"{name}@ex.com"})
    assert res["2xx"] == 1 and res["4xx"] == 99, res["output"]
    assert s.healthy()
    assert_status(s.sign_in_response(name), 200)


# ---------------------------------------------------------------- options


def test_token_ttl_option():
    s = Server(extra_args=["--token-ttl", "120"])
    try:
        u = s.sign_up()
        r = s.sign_in_response(u["username"])
        assert_status(r, 200)
        assert r.body["expires_in"] == 120, r
        _, claims = jwt_parts(r.body["access_token"])
        assert claims["exp"] - claims["iat"] == 120, claims
    finally:
        s.kill9()


# ---------------------------------------------------------------- MessagePack


def test_msgpack_users_me():
    s = srv()
    u = s.sign_up()
    tok = s.sign_in(u["username"])
    js = s.call("GET", ME, token=tok)
    mp = s.call("GET", ME, token=tok, headers={"Accept": "application/msgpack"})
    assert_status(mp, 200)
    assert "application/msgpack" in mp.headers.get("content-type", ""), mp
    decoded = msgpack_decode(mp.raw)
    assert isinstance(decoded, dict), decoded
    assert decoded == js.body, f"msgpack {decoded!r} != json {js.body!r}"


def test_msgpack_sign_up_body():
    s = srv()
    name = unique_name("mp")
    body = msgpack_encode({"username": name, "password": DEFAULT_PASSWORD, "email": f"{name}@mp.io"})
    r = s.call("POST", SIGN_UP, raw_body=body, headers={"Content-Type": "application/msgpack"})
    assert_status(r, 201)
    assert isinstance(r.body, dict) and r.body.get("username") == name, r
    assert r.body["role"] == "customer"
    assert_status(s.sign_in_response(name), 200)


def test_msgpack_request_gets_msgpack_answer():
    # contract: a client that sends Content-Type msgpack "and/or" Accept msgpack
    # gets MessagePack documents
    s = srv()
    name = unique_name("mq")
    body = msgpack_encode({"username": name, "password": DEFAULT_PASSWORD, "email": f"{name}@mp.io"})
    r = s.call("POST", SIGN_UP, raw_body=body, headers={"Content-Type": "application/msgpack"})
    assert_status(r, 201)
    assert "application/msgpack" in r.headers.get("content-type", ""), r
    u = msgpack_decode(r.raw)
    check_user_shape(u, name, f"{name}@mp.io")
    # sign-in both ways msgpack
    r = s.call("POST", SIGN_IN, raw_body=msgpack_encode({"username": name, "password": DEFAULT_PASSWORD}),
               headers={"Content-Type": "application/msgpack", "Accept": "application/msgpack"})
    assert_status(r, 200)
    b = msgpack_decode(r.raw)
    assert b["token_type"] == "Bearer" and b["expires_in"] == 3600 and isinstance(b["access_token"], str), b


def test_msgpack_unknown_fields_ignored():
    # contract: unknown fields are ignored, whatever the encoding
    s = srv()
    problems = []
    for label, extra in [("nested unknown", {"extra": {"a": [1, -2, None, True, "x"]}}),
                         ("unknown key of 300 bytes", {"k" * 300: 1}),
                         ("unknown bin value", {"blob": b"\x00\x01\x02"}),
                         ("unknown float", {"ratio": 0.5})]:
        name = unique_name("mu")
        doc = {"username": name, "password": DEFAULT_PASSWORD, "email": f"{name}@mp.io"}
        doc.update(extra)
        r = s.call("POST", SIGN_UP, raw_body=msgpack_encode(doc), headers={"Content-Type": "application/msgpack"})
        if r.status != 201:
            problems.append(f"{label}: {r!r} (body {r.body!r})")
    assert not problems, "\n".join(problems)


def test_msgpack_bad_body_400():
    s = srv()
    for raw in (b"\xc1", b"\x93\x01\x02\x03", b"\x83\xa8username", msgpack_encode({"username": 1})):
        r = s.call("POST", SIGN_UP, raw_body=raw, headers={"Content-Type": "application/msgpack"})
        assert 400 <= r.status < 500, f"{raw!r}: {r!r}"
        assert_error_shape(r, msgpack=True)
        assert r.body["error"]["code"] == "invalid_request", r

    assert s.healthy()


if __name__ == "__main__":
    run_tests(globals())
