"""The JWT: claims as Kling's doc asks (§2.1), cached, renewed before it expires, and one
regeneration when Kling says the token is expired or not yet valid. No network: httpx's
MockTransport stands in for Kling."""

from __future__ import annotations

import time
import warnings

import httpx
import jwt
import pytest

from talkinghead_kling.auth import KlingAuth, make_token

from .conftest import TEST_AK, TEST_SK


def _claims(token: str) -> dict:
    return jwt.decode(token, TEST_SK, algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False})


def test_token_claims_and_header_follow_the_doc():
    token, exp = make_token(TEST_AK, TEST_SK, now=1_760_000_000)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    assert _claims(token) == {"iss": TEST_AK, "exp": 1_760_001_800, "nbf": 1_759_999_995}
    assert exp == 1_760_001_800
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-key-0123456789abcdef0123", algorithms=["HS256"],
                   options={"verify_exp": False, "verify_nbf": False})


def test_tokens_are_the_bytes_pyjwt_makes():
    # A key of 32 bytes or more: PyJWT signs it without a warning, so the two can be compared.
    for now in (1_760_000_000, 1_900_000_123):
        ours, exp = make_token(TEST_AK, TEST_SK, now=now, lifetime=600, nbf_slack=7)
        theirs = jwt.encode({"iss": TEST_AK, "exp": exp, "nbf": now - 7}, TEST_SK, algorithm="HS256",
                            headers={"alg": "HS256", "typ": "JWT"})
        assert ours == theirs


@pytest.mark.parametrize("secret", ["short", "x" * 31, TEST_SK])
def test_signing_neither_warns_nor_touches_the_warnings_filters(monkeypatch, secret):
    # Kling chooses the key's length (PyJWT warns under 32 bytes). A library must not silence
    # that by changing the process-wide warnings filters (catch_warnings is not thread-safe):
    # every way of touching them fails the test, and any warning is caught and fails it too.
    def touched(*args, **kwargs):
        raise AssertionError("make_token touched the process-wide warnings filters")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filters = list(warnings.filters)
        with monkeypatch.context() as patch:
            for name in ("catch_warnings", "simplefilter", "filterwarnings", "resetwarnings"):
                patch.setattr(warnings, name, touched)
            token, _ = make_token("ak", secret, now=1_760_000_000)
        assert warnings.filters == filters
    assert [str(w.message) for w in caught] == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT's decode gives its advice about short keys: not under test
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False})
    assert claims == {"iss": "ak", "exp": 1_760_001_800, "nbf": 1_759_999_995}


class Clock:
    def __init__(self, now: float = 1_760_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_token_is_cached_then_renewed_a_margin_before_expiry():
    clock = Clock()
    seen: list[str] = []
    auth = KlingAuth(TEST_AK, TEST_SK, clock=clock, on_token=seen.append)
    first = auth.token()
    clock.now += 1800 - 61  # 61 s before exp: still good
    assert auth.token() == first and auth.minted == 1
    clock.now += 2          # 59 s before exp: inside the renewal margin
    second = auth.token()
    assert second != first and auth.minted == 2 and seen == [first, second]
    assert _claims(second)["exp"] == int(clock.now) + 1800 and auth.expires_at == int(clock.now) + 1800


def test_lifetime_and_margin_are_configurable_and_sane():
    clock = Clock()
    auth = KlingAuth(TEST_AK, TEST_SK, lifetime=600, renew_before=900, clock=clock)
    assert auth.renew_before == 300  # never more than half the lifetime
    token = auth.token()
    assert _claims(token)["exp"] - int(clock.now) == 600
    clock.now += 299
    assert auth.token() == token
    clock.now += 2
    assert auth.token() != token


def test_repr_and_errors_never_show_a_secret():
    auth = KlingAuth(TEST_AK, TEST_SK)
    token = auth.token()
    for secret in (TEST_AK, TEST_SK, token):
        assert secret not in repr(auth)
    assert set(auth.secrets()) == {TEST_AK, TEST_SK, token}
    with pytest.raises(ValueError) as exc:
        KlingAuth(TEST_AK, "")
    assert TEST_AK not in str(exc.value)


def _client(auth: KlingAuth, answers: list[httpx.Response], seen: list[str]) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return answers.pop(0)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth, base_url="http://kling.test")


def _kling(status: int, code: int) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "message": "m", "request_id": "r"})


async def test_expired_answer_regenerates_once_and_resends():
    clock = Clock(time.time())
    auth = KlingAuth(TEST_AK, TEST_SK, clock=clock)
    seen: list[str] = []
    auth.token()
    clock.now += 10  # so the regenerated token differs from the cached one
    async with _client(auth, [_kling(401, 1004), _kling(200, 0)], seen) as client:
        response = await client.post("/v1/videos/avatar/image2video", json={"a": 1})
    assert response.status_code == 200 and len(seen) == 2 and seen[0] != seen[1]
    assert all(s.startswith("Bearer ") for s in seen) and auth.minted == 2


async def test_expired_twice_gives_up_after_one_resend():
    auth = KlingAuth(TEST_AK, TEST_SK)
    seen: list[str] = []
    async with _client(auth, [_kling(401, 1004), _kling(401, 1004)], seen) as client:
        response = await client.get("/v1/videos/avatar/image2video/1")
    assert response.status_code == 401 and len(seen) == 2


async def test_invalid_token_is_not_resent():
    auth = KlingAuth(TEST_AK, TEST_SK)
    seen: list[str] = []
    async with _client(auth, [_kling(401, 1002)], seen) as client:
        response = await client.get("/v1/videos/avatar/image2video/1")
    assert response.status_code == 401 and len(seen) == 1 and auth.minted == 1


async def test_not_yet_valid_widens_the_nbf_allowance():
    clock = Clock()
    auth = KlingAuth(TEST_AK, TEST_SK, clock=clock)
    seen: list[str] = []
    async with _client(auth, [_kling(401, 1003), _kling(200, 0)], seen) as client:
        response = await client.get("/v1/videos/avatar/image2video/1")
    assert response.status_code == 200
    first, second = (_claims(s[7:]) for s in seen)
    assert int(clock.now) - first["nbf"] == 5 and int(clock.now) - second["nbf"] == 300
