"""Products over HTTP/2: create, get, list (pagination across shards), patch,
stock adjustments (also concurrent), restart durability, MessagePack."""

import datetime
import re
import time

from pickple_harness import (assert_error, assert_status, is_id, msgpack_decode, msgpack_encode,
                             run_tests, shared_server, unique_name)

PRODUCTS = "/api/v1/products"
PRODUCT_KEYS = {"product_id", "seller_id", "name", "description", "price", "stock", "created_at",
                "updated_at"}
PRICE_MAX = 10 ** 12
STOCK_MAX = 10 ** 9

_cache = {}


def srv():
    return shared_server("products", threads=2)


def product_path(pid):
    return f"{PRODUCTS}/{pid}"


def stock_path(pid):
    return f"{PRODUCTS}/{pid}/stock"


def admin():
    """(admin user id, admin token) of the shared server."""
    s = srv()
    if "admin" not in _cache:
        tok = s.admin_token()
        me = s.call("GET", "/api/v1/users/me", token=tok)
        assert_status(me, 200)
        _cache["admin"] = (me.body["user_id"], tok)
    return _cache["admin"]


def make_seller(s=None):
    """Signs up a user, has the admin make it a seller, signs in again.
    Returns (user, seller token)."""
    s = s or srv()
    _, atok = admin()
    user, _ = s.new_user(prefix="sel")
    r = s.call("PUT", f"/api/v1/users/{user['user_id']}/role", {"role": "seller"}, token=atok)
    assert_status(r, 200)
    assert r.body["role"] == "seller", r
    return user, s.sign_in(user["username"])


def seller():
    """A seller shared by several tests."""
    if "seller" not in _cache:
        _cache["seller"] = make_seller()
    return _cache["seller"]


def customer():
    if "customer" not in _cache:
        _cache["customer"] = srv().new_user(prefix="cus")
    return _cache["customer"]


def parse_time(s):
    """RFC 3339 UTC with optional fraction -> float seconds."""
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?Z", s or "")
    assert m, f"not an RFC 3339 UTC time: {s!r}"
    dt = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp() + (float(m.group(2)) if m.group(2) else 0.0)


def check_product(p, **want):
    assert isinstance(p, dict), f"product is not an object: {p!r}"
    assert set(p) == PRODUCT_KEYS, f"product keys {sorted(p)} != {sorted(PRODUCT_KEYS)}: {p!r}"
    assert is_id(p["product_id"]), p
    assert is_id(p["seller_id"]), p
    assert isinstance(p["name"], str) and isinstance(p["description"], str), p
    for k in ("price", "stock"):
        assert isinstance(p[k], int) and not isinstance(p[k], bool) and p[k] >= 0, f"{k}: {p!r}"
    c = parse_time(p["created_at"])
    u = parse_time(p["updated_at"])
    assert abs(c - time.time()) < 600, f"created_at far from now: {p!r}"
    assert u >= c, f"updated_at before created_at: {p!r}"
    for k, v in want.items():
        assert p[k] == v, f"product {k} should be {v!r}, got {p[k]!r}: {p!r}"


def body(**over):
    b = {"name": unique_name("prod"), "price": 1999, "stock": 10}
    for k, v in over.items():
        if v is _DROP:
            b.pop(k, None)
        else:
            b[k] = v
    return b


_DROP = object()


def create(token=None, **over):
    s = srv()
    token = token or seller()[1]
    b = body(**over)
    r = s.call("POST", PRODUCTS, b, token=token)
    assert_status(r, 201)
    return r.body


def get_product(pid):
    r = srv().call("GET", product_path(pid))
    assert_status(r, 200)
    return r.body


def walk_all(limit=100, s=None):
    """Every product through the list endpoint; returns (items, pages)."""
    s = s or srv()
    items, pages, after = [], 0, None
    while True:
        q = f"?limit={limit}" + (f"&after={after}" if after is not None else "")
        r = s.call("GET", PRODUCTS + q)
        assert_status(r, 200)
        assert set(r.body) == {"items", "next"}, r
        pages += 1
        assert pages < 1000, "pagination does not end"
        items += r.body["items"]
        if r.body["next"] is None:
            return items, pages
        after = r.body["next"]


# ---------------------------------------------------------------- create


def test_create_as_admin_shape():
    s = srv()
    aid, atok = admin()
    name = unique_name("adm")
    r = s.call("POST", PRODUCTS, {"name": name, "price": 12345, "stock": 7}, token=atok)
    assert_status(r, 201)
    assert r.proto == "HTTP/2", f"expected an HTTP/2 answer: {r!r}"
    assert r.headers.get("content-type", "").startswith("application/json"), r
    check_product(r.body, seller_id=aid, name=name, description="", price=12345, stock=7)
    assert r.body["created_at"] == r.body["updated_at"], r.body
    assert get_product(r.body["product_id"]) == r.body


def test_create_as_seller_shape():
    s = srv()
    user, tok = seller()
    name = unique_name("sel")
    r = s.call("POST", PRODUCTS, {"name": name, "description": "A fine thing.\nTwo lines, \u00fcnicode.",
                                  "price": 500, "stock": 0}, token=tok)
    assert_status(r, 201)
    check_product(r.body, seller_id=user["user_id"], name=name,
                  description="A fine thing.\nTwo lines, \u00fcnicode.", price=500, stock=0)
    assert get_product(r.body["product_id"]) == r.body


def test_create_ids_distinct_across_shards():
    _, tok = seller()
    ids = [create(tok)["product_id"] for _ in range(8)]
    assert len(set(ids)) == 8, ids
    for i in ids:
        assert get_product(i)["product_id"] == i


def test_create_customer_403():
    s = srv()
    _, ctok = customer()
    before = len(walk_all()[0])
    r = s.call("POST", PRODUCTS, body(), token=ctok)
    assert_error(r, 403, "forbidden")
    assert len(walk_all()[0]) == before, "a refused create left a product behind"


def test_create_no_token_401():
    s = srv()
    before = len(walk_all()[0])
    r = s.call("POST", PRODUCTS, body())
    assert_error(r, 401, "unauthorized")
    r = s.call("POST", PRODUCTS, body(), headers={"Authorization": "Bearer not.a.token"})
    assert_error(r, 401, "unauthorized")
    assert len(walk_all()[0]) == before, "a refused create left a product behind"


CREATE_CASES = [
    ("name missing", dict(name=_DROP), "name"),
    ("name blank", dict(name="   "), "name"),
    ("name empty", dict(name=""), "name"),
    ("name 201 bytes", dict(name="n" * 201), "name"),
    ("name number", dict(name=42), "name"),
    ("description 2001 bytes", dict(description="d" * 2001), "description"),
    ("description number", dict(description=5), "description"),
    ("price -1", dict(price=-1), "price"),
    ("price 1.5", dict(price=1.5), "price"),
    ("price \"10\"", dict(price="10"), "price"),
    ("price 10^12+1", dict(price=PRICE_MAX + 1), "price"),
    ("price missing", dict(price=_DROP), "price"),
    ("price null", dict(price=None), "price"),
    ("stock -1", dict(stock=-1), "stock"),
    ("stock missing", dict(stock=_DROP), "stock"),
    ("stock 10^9+1", dict(stock=STOCK_MAX + 1), "stock"),
    ("stock 2.5", dict(stock=2.5), "stock"),
    ("stock true", dict(stock=True), "stock"),
]


def test_create_validation_names_field():
    s = srv()
    _, tok = seller()
    before = len(walk_all()[0])
    problems = []
    for label, over, field in CREATE_CASES:
        r = s.call("POST", PRODUCTS, body(**over), token=tok)
        try:
            assert_error(r, 400, "invalid_request", field)
        except AssertionError as e:
            problems.append(f"{label}: {e}")
    for label, raw in [("malformed JSON", b'{"name": "x", "price": 1, '),
                       ("not an object", b'[1, 2, 3]'),
                       ("empty body", b''),
                       ("trailing garbage", b'{"name": "x", "price": 1, "stock": 1} x')]:
        r = s.call("POST", PRODUCTS, raw_body=raw, token=tok)
        try:
            assert_error(r, 400, "invalid_request")
        except AssertionError as e:
            problems.append(f"{label}: {e}")
    assert not problems, "\n".join(problems)
    assert len(walk_all()[0]) == before, "a refused create left a product behind"


def test_create_boundaries_accepted():
    _, tok = seller()
    n200 = "\u00e9" * 100  # 200 bytes in 100 characters
    assert len(n200.encode()) == 200
    p = create(tok, name=n200)
    assert p["name"] == n200, p
    p = create(tok, name="n" * 200, description="d" * 2000, price=PRICE_MAX, stock=STOCK_MAX)
    check_product(p, name="n" * 200, description="d" * 2000, price=PRICE_MAX, stock=STOCK_MAX)
    assert get_product(p["product_id"]) == p


def test_create_unknown_fields_ignored():
    s = srv()
    user, tok = seller()
    name = unique_name("unk")
    r = s.call("POST", PRODUCTS, {"name": name, "price": 10, "stock": 3, "color": "red",
                                  "seller_id": 1, "product_id": 999, "nested": {"a": [1]}}, token=tok)
    assert_status(r, 201)
    check_product(r.body, name=name, price=10, stock=3, seller_id=user["user_id"], description="")
    assert "color" not in r.body


# ---------------------------------------------------------------- get


def test_get_by_id_and_unknown():
    s = srv()
    p = create(description="desc")
    r = s.call("GET", product_path(p["product_id"]))
    assert_status(r, 200)
    assert r.body == p, (r.body, p)
    # anyone: also with a customer token
    r = s.call("GET", product_path(p["product_id"]), token=customer()[1])
    assert_status(r, 200)
    assert r.body == p
    unknown = p["product_id"] + 2 * 100000  # same shard, never allocated
    assert_error(s.call("GET", product_path(unknown)), 404, "not_found")
    for bad in ("abc", "0", "-1", "1.5", str(2 ** 53), "99999999999999999999999"):
        assert_error(s.call("GET", product_path(bad)), 404, "not_found")


# ---------------------------------------------------------------- list


def test_list_pagination_limit3():
    s = srv()
    _, tok = seller()
    created = [create(tok)["product_id"] for _ in range(7)]
    seen, after, pages = [], None, 0
    while True:
        q = "?limit=3" + (f"&after={after}" if after is not None else "")
        r = s.call("GET", PRODUCTS + q)
        assert_status(r, 200)
        assert set(r.body) == {"items", "next"}, r
        items = r.body["items"]
        assert len(items) <= 3, r
        for it in items:
            check_product(it)
        pages += 1
        assert pages < 500, "pagination does not end"
        seen += [it["product_id"] for it in items]
        nxt = r.body["next"]
        if nxt is None:
            break
        assert len(items) == 3, f"a non-final page must be full: {r!r}"
        assert nxt == items[-1]["product_id"], f"next should be the last id of the page: {r!r}"
        after = nxt
    assert seen == sorted(seen), f"ids not ascending: {seen}"
    # ids are seq*nshards+shard; by now dozens of products were created over
    # separate connections, so both shards hold some and the list merges them
    assert {i % 2 for i in seen} == {0, 1}, f"list does not show products of both shards: {seen}"
    assert len(seen) == len(set(seen)), f"duplicate ids: {seen}"
    missing = set(created) - set(seen)
    assert not missing, f"created products missing from the list: {missing}"
    # the list matches a single big page
    allitems, _ = walk_all(100)
    assert [i["product_id"] for i in allitems] == seen
    # after = the 3rd created product: the page starts with the next id above it
    r = s.call("GET", PRODUCTS + f"?limit=3&after={created[2]}")
    assert_status(r, 200)
    higher = [i for i in seen if i > created[2]]
    assert [i["product_id"] for i in r.body["items"]] == higher[:3], (r, higher)
    # items equal what GET by id answers
    p = get_product(created[4])
    assert [i for i in allitems if i["product_id"] == created[4]] == [p]


def test_list_default_limit_and_end():
    s = srv()
    allitems, _ = walk_all(100)
    ids = [i["product_id"] for i in allitems]
    r = s.call("GET", PRODUCTS)
    assert_status(r, 200)
    assert [i["product_id"] for i in r.body["items"]] == ids[:20], r
    if len(ids) > 20:
        assert r.body["next"] == ids[19], r
    else:
        assert r.body["next"] is None, r
    # past the last id: empty page, next null
    r = s.call("GET", PRODUCTS + f"?after={ids[-1]}")
    assert_status(r, 200)
    assert r.body == {"items": [], "next": None}, r
    # exactly the remaining count: next null (no empty trailing page needed)
    r = s.call("GET", PRODUCTS + f"?limit=2&after={ids[-3]}")
    assert_status(r, 200)
    assert [i["product_id"] for i in r.body["items"]] == ids[-2:], r
    assert r.body["next"] is None, f"last page should have next null: {r!r}"
    r = s.call("GET", PRODUCTS + "?limit=100")
    assert_status(r, 200)
    assert len(r.body["items"]) == min(100, len(ids)), r


def test_list_bad_params_400():
    s = srv()
    problems = []
    for q, field in [("limit=0", "limit"), ("limit=101", "limit"), ("limit=abc", "limit"),
                     ("limit=-1", "limit"), ("limit=", "limit"), ("after=-1", "after"),
                     ("after=abc", "after"), ("after=1.5", "after")]:
        r = s.call("GET", PRODUCTS + "?" + q)
        try:
            assert_error(r, 400, "invalid_request", field)
        except AssertionError as e:
            problems.append(f"{q}: {e}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- patch


def test_patch_by_owner():
    s = srv()
    user, tok = seller()
    p = create(tok, description="old", price=100, stock=4)
    time.sleep(1.1)
    newname = unique_name("ren")
    r = s.call("PATCH", product_path(p["product_id"]),
               {"name": newname, "price": 250, "description": "new desc"}, token=tok)
    assert_status(r, 200)
    check_product(r.body, product_id=p["product_id"], seller_id=user["user_id"], name=newname,
                  description="new desc", price=250, stock=4, created_at=p["created_at"])
    assert parse_time(r.body["updated_at"]) > parse_time(p["updated_at"]), (p, r.body)
    assert get_product(p["product_id"]) == r.body
    # partial: only price; the rest stays
    r2 = s.call("PATCH", product_path(p["product_id"]), {"price": 7}, token=tok)
    assert_status(r2, 200)
    check_product(r2.body, name=newname, description="new desc", price=7, stock=4,
                  created_at=p["created_at"])
    # description can be cleared
    r3 = s.call("PATCH", product_path(p["product_id"]), {"description": ""}, token=tok)
    assert_status(r3, 200)
    check_product(r3.body, name=newname, description="", price=7, stock=4)


def test_patch_by_other_seller_and_customer_403():
    s = srv()
    _, tok = seller()
    p = create(tok, price=100)
    _, other = make_seller()
    r = s.call("PATCH", product_path(p["product_id"]), {"price": 1}, token=other)
    assert_error(r, 403, "forbidden")
    r = s.call("PATCH", product_path(p["product_id"]), {"price": 1}, token=customer()[1])
    assert_error(r, 403, "forbidden")
    r = s.call("PATCH", product_path(p["product_id"]), {"price": 1})
    assert_error(r, 401, "unauthorized")
    assert get_product(p["product_id"]) == p


def test_patch_by_admin():
    s = srv()
    user, tok = seller()
    _, atok = admin()
    p = create(tok, price=100)
    r = s.call("PATCH", product_path(p["product_id"]), {"name": "admin renamed", "price": 5}, token=atok)
    assert_status(r, 200)
    # the seller stays the owner
    check_product(r.body, seller_id=user["user_id"], name="admin renamed", price=5, stock=p["stock"],
                  created_at=p["created_at"])


def test_patch_unknown_404():
    s = srv()
    _, atok = admin()
    _, tok = seller()
    p = create(tok)
    unknown = p["product_id"] + 2 * 100000
    assert_error(s.call("PATCH", product_path(unknown), {"price": 1}, token=atok), 404, "not_found")
    assert_error(s.call("PATCH", product_path(unknown), {"price": 1}, token=tok), 404, "not_found")
    assert_error(s.call("PATCH", product_path("abc"), {"price": 1}, token=atok), 404, "not_found")


def test_patch_invalid_fields_400():
    s = srv()
    _, tok = seller()
    p = create(tok, description="keep", price=100)
    problems = []
    cases = [
        ("name blank", {"name": "   "}, "name"),
        ("name empty", {"name": ""}, "name"),
        ("name 201 bytes", {"name": "n" * 201}, "name"),
        ("description 2001 bytes", {"description": "d" * 2001}, "description"),
        ("price -1", {"price": -1}, "price"),
        ("price 1.5", {"price": 1.5}, "price"),
        ("price \"10\"", {"price": "10"}, "price"),
        ("price 10^12+1", {"price": PRICE_MAX + 1}, "price"),
        # a valid field next to an invalid one: nothing is applied
        ("valid name + bad price", {"name": "changed", "price": -5}, "price"),
    ]
    for label, b, field in cases:
        r = s.call("PATCH", product_path(p["product_id"]), b, token=tok)
        try:
            assert_error(r, 400, "invalid_request", field)
        except AssertionError as e:
            problems.append(f"{label}: {e}")
    r = s.call("PATCH", product_path(p["product_id"]), raw_body=b'{"price": ', token=tok)
    try:
        assert_error(r, 400, "invalid_request")
    except AssertionError as e:
        problems.append(f"malformed JSON: {e}")
    assert not problems, "\n".join(problems)
    assert get_product(p["product_id"]) == p, "a refused patch changed the product"


def test_patch_null_for_non_nullable_field_400():
    """name and price cannot be null (a product always has them): a null is a
    wrong type (contract: wrong types -> 4xx), not "leave unchanged"."""
    s = srv()
    _, tok = seller()
    p = create(tok, price=100)
    problems = []
    for label, b, field in [("name null", {"name": None}, "name"), ("price null", {"price": None}, "price")]:
        r = s.call("PATCH", product_path(p["product_id"]), b, token=tok)
        try:
            assert_error(r, 400, "invalid_request", field)
        except AssertionError as e:
            problems.append(f"{label}: {e}")
    assert not problems, "\n".join(problems)
    assert get_product(p["product_id"]) == p, "a refused patch changed the product"


def test_patch_unknown_fields_ignored():
    s = srv()
    user, tok = seller()
    p = create(tok, price=100, stock=9)
    r = s.call("PATCH", product_path(p["product_id"]),
               {"price": 101, "stock": 5000, "seller_id": 1, "product_id": 1, "color": "blue"}, token=tok)
    assert_status(r, 200)
    check_product(r.body, product_id=p["product_id"], seller_id=user["user_id"], price=101, stock=9,
                  name=p["name"])
    assert get_product(p["product_id"]) == r.body


# ---------------------------------------------------------------- stock


def test_stock_delta_arithmetic():
    s = srv()
    _, tok = seller()
    p = create(tok, stock=10)
    r = s.call("POST", stock_path(p["product_id"]), {"delta": 5}, token=tok)
    assert_status(r, 200)
    check_product(r.body, product_id=p["product_id"], stock=15, price=p["price"], name=p["name"])
    r = s.call("POST", stock_path(p["product_id"]), {"delta": -3}, token=tok)
    assert_status(r, 200)
    check_product(r.body, stock=12)
    assert get_product(p["product_id"])["stock"] == 12
    # admin may adjust too
    r = s.call("POST", stock_path(p["product_id"]), {"delta": -12}, token=admin()[1])
    assert_status(r, 200)
    check_product(r.body, stock=0)
    assert get_product(p["product_id"])["stock"] == 0


def test_stock_insufficient_409():
    s = srv()
    _, tok = seller()
    p = create(tok, stock=4)
    r = s.call("POST", stock_path(p["product_id"]), {"delta": -5}, token=tok)
    assert_error(r, 409, "insufficient_stock")
    assert get_product(p["product_id"])["stock"] == 4
    r = s.call("POST", stock_path(p["product_id"]), {"delta": -4}, token=tok)
    assert_status(r, 200)
    assert r.body["stock"] == 0, r
    r = s.call("POST", stock_path(p["product_id"]), {"delta": -1}, token=tok)
    assert_error(r, 409, "insufficient_stock")
    assert get_product(p["product_id"])["stock"] == 0


def test_stock_bad_delta_400():
    s = srv()
    _, tok = seller()
    p = create(tok, stock=4)
    problems = []
    for label, b in [("delta 0", {"delta": 0}), ("delta 1.5", {"delta": 1.5}),
                     ("delta \"1\"", {"delta": "1"}), ("delta missing", {}),
                     ("delta null", {"delta": None}), ("delta 10^9+1", {"delta": STOCK_MAX + 1})]:
        r = s.call("POST", stock_path(p["product_id"]), b, token=tok)
        try:
            assert_error(r, 400, "invalid_request", "delta")
        except AssertionError as e:
            problems.append(f"{label}: {e}")
    r = s.call("POST", stock_path(p["product_id"]), raw_body=b"{delta: 1}", token=tok)
    try:
        assert_error(r, 400, "invalid_request")
    except AssertionError as e:
        problems.append(f"malformed JSON: {e}")
    assert not problems, "\n".join(problems)
    assert get_product(p["product_id"]) == p


def test_stock_forbidden_and_unknown():
    s = srv()
    _, tok = seller()
    p = create(tok, stock=4)
    _, other = make_seller()
    assert_error(s.call("POST", stock_path(p["product_id"]), {"delta": 1}, token=other), 403, "forbidden")
    assert_error(s.call("POST", stock_path(p["product_id"]), {"delta": 1}, token=customer()[1]),
                 403, "forbidden")
    assert_error(s.call("POST", stock_path(p["product_id"]), {"delta": 1}), 401, "unauthorized")
    unknown = p["product_id"] + 2 * 100000
    assert_error(s.call("POST", stock_path(unknown), {"delta": 1}, token=admin()[1]), 404, "not_found")
    assert get_product(p["product_id"]) == p


def test_stock_concurrent_decrements():
    s = srv()
    _, tok = seller()
    p = create(tok, stock=60)
    reqs = [{"method": "POST", "path": stock_path(p["product_id"]), "json_body": {"delta": -1},
             "token": tok} for _ in range(100)]
    res = s.parallel(reqs)
    statuses = [r.status for r in res]
    ok = [r for r in res if r.status == 200]
    conflict = [r for r in res if r.status == 409]
    assert len(ok) == 60 and len(conflict) == 40, \
        f"expected 60x200 and 40x409, got {sorted(set((x, statuses.count(x)) for x in statuses))}"
    for r in conflict:
        assert r.body["error"]["code"] == "insufficient_stock", r
    stocks = sorted(r.body["stock"] for r in ok)
    assert stocks == list(range(60)), f"each success should see a distinct stock 0..59: {stocks}"
    assert get_product(p["product_id"])["stock"] == 0


# ---------------------------------------------------------------- MessagePack


def test_msgpack_get():
    s = srv()
    p = create(description="msgpack \u00e9 desc", price=4242, stock=3)
    r = s.call("GET", product_path(p["product_id"]), headers={"Accept": "application/msgpack"})
    assert_status(r, 200)
    assert r.headers.get("content-type", "").split(";")[0] == "application/msgpack", r
    d = msgpack_decode(r.raw)
    assert d == p, f"msgpack {d!r} != json {p!r}"
    # list and errors too
    r = s.call("GET", PRODUCTS + "?limit=2", headers={"Accept": "application/msgpack"})
    assert_status(r, 200)
    d = msgpack_decode(r.raw)
    assert set(d) == {"items", "next"} and len(d["items"]) == 2, d
    r = s.call("GET", product_path(p["product_id"] + 200000), headers={"Accept": "application/msgpack"})
    assert r.status == 404, r
    assert msgpack_decode(r.raw)["error"]["code"] == "not_found", r


def test_msgpack_create():
    s = srv()
    user, tok = seller()
    name = unique_name("mp")
    r = s.call("POST", PRODUCTS, raw_body=msgpack_encode({"name": name, "price": 77, "stock": 2}), token=tok,
               headers={"Content-Type": "application/msgpack", "Accept": "application/msgpack"})
    assert_status(r, 201)
    d = msgpack_decode(r.raw)
    check_product(d, name=name, price=77, stock=2, description="", seller_id=user["user_id"])
    assert get_product(d["product_id"]) == d


# ---------------------------------------------------------------- restart


def test_restart_keeps_products_and_stock():
    s = srv()
    _, tok = seller()
    made = [create(tok, stock=20, description=f"r{i}") for i in range(4)]
    for i, p in enumerate(made):
        r = s.call("POST", stock_path(p["product_id"]), {"delta": -(i + 1)}, token=tok)
        assert_status(r, 200)
        made[i] = r.body
    r = s.call("PATCH", product_path(made[0]["product_id"]), {"name": "renamed before restart"}, token=tok)
    assert_status(r, 200)
    made[0] = r.body
    before, _ = walk_all()
    rc = s.restart()
    assert rc == 0, f"SIGTERM exit code {rc}"
    for p in made:
        assert get_product(p["product_id"]) == p
    after, _ = walk_all()
    assert after == before, "the product list changed across the restart"
    # ids keep being allocated without collisions after the restart
    newp = create(tok)
    assert newp["product_id"] not in {i["product_id"] for i in before}, newp
    # the old token still works and stock still moves
    r = s.call("POST", stock_path(made[1]["product_id"]), {"delta": -18}, token=tok)
    assert_status(r, 200)
    assert r.body["stock"] == 0, r


if __name__ == "__main__":
    run_tests(globals())
