"""Storage failures: a write transaction that cannot commit (LMDB map full)
aborts its whole batch; every request in it is answered 503 with
Retry-After, nothing of it becomes visible, and the server stays up."""

from pickple_harness import DEFAULT_PASSWORD, Server, assert_error, assert_status, run_tests

SIGN_UP = "/api/v1/auth/sign-up"
SIGN_IN = "/api/v1/auth/sign-in"
LONG_EMAIL = "e" * 240 + "@b.c"


def test_map_full_answers_503_and_changes_nothing():
    # One shard with a tiny map: it fills after a handful of users.
    srv = Server(extra_args=["--map-size", "96k"], threads=1, admin_password=None)
    try:
        created, refused = [], []
        for i in range(60):
            name = f"fill{i}"
            r = srv.call("POST", SIGN_UP, {"username": name, "password": DEFAULT_PASSWORD, "email": LONG_EMAIL})
            if r.status == 201:
                assert not refused, f"201 after a 503: {r!r}"
                created.append(name)
            else:
                assert_error(r, 503, "unavailable")
                assert r.headers.get("retry-after"), f"503 without Retry-After: {r!r}"
                refused.append(name)
            if len(refused) >= 3:
                break
        assert created, "no user could be created at all"
        assert len(refused) >= 3, "the map never filled: the test proves nothing"
        for name in refused:
            # Not half-created: the name is free (sign-up is refused again by
            # storage, not by 409) and sign-in does not find the user.
            r = srv.call("POST", SIGN_IN, {"username": name, "password": DEFAULT_PASSWORD})
            assert_error(r, 401, "invalid_credentials")
            r = srv.call("POST", SIGN_UP, {"username": name, "password": DEFAULT_PASSWORD, "email": LONG_EMAIL})
            assert_error(r, 503, "unavailable")
        for name in created:
            r = srv.call("POST", SIGN_IN, {"username": name, "password": DEFAULT_PASSWORD})
            assert_status(r, 200)
        assert_status(srv.call("GET", "/healthz"), 200)
        # What was acknowledged survives a restart; what was refused never appears.
        srv.restart()
        assert_status(srv.call("POST", SIGN_IN, {"username": created[-1], "password": DEFAULT_PASSWORD}), 200)
        assert_error(srv.call("POST", SIGN_IN, {"username": refused[0], "password": DEFAULT_PASSWORD}), 401,
                     "invalid_credentials")
    finally:
        srv.stop()


if __name__ == "__main__":
    run_tests(globals())
