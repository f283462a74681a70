"""The shared HTTP retry policy: reads retried, create calls never resent once they may have
arrived, Retry-After honoured, the network guard naming the provider."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from talkinghead import http
from talkinghead.errors import AuthenticationError, NetworkBlocked, RequestRefused, SubmitOutcomeUnknown


class Script(httpx.AsyncBaseTransport):
    """Plays a list of outcomes: a status code or an exception, recording each attempt."""

    def __init__(self, *outcomes, headers=None):
        self.outcomes = list(outcomes)
        self.headers = headers or {}
        self.seen: list[httpx.Request] = []

    async def handle_async_request(self, request):
        self.seen.append(request)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, type) and issubclass(outcome, Exception):
            raise outcome("scripted", request=request)
        return httpx.Response(outcome, headers=self.headers, json={"ok": outcome})


def client(transport):
    return http.async_client("testprov", base_url="http://127.0.0.1:9", transport=transport)


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    """http's own sleeps are recorded, not slept. Only the http module sees the fake: patching
    ``asyncio.sleep`` itself would make every other coroutine in the process (a fake server
    left running by an earlier test, say) spin on it."""
    import types

    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)
    monkeypatch.setattr(http, "asyncio", types.SimpleNamespace(**{**vars(asyncio), "sleep": fake_sleep}))
    return slept


async def test_read_is_retried_on_5xx_and_timeouts():
    t = Script(500, httpx.ReadTimeout, 502, 200)
    async with client(t) as c:
        r = await http.send(c, "GET", "/tasks/1", provider="testprov")
    assert r.status_code == 200 and len(t.seen) == 4


async def test_retry_after_is_honoured(no_sleep):
    t = Script(429, 200, headers={"Retry-After": "7"})
    async with client(t) as c:
        r = await http.send(c, "GET", "/x", provider="testprov")
    assert r.status_code == 200 and no_sleep == [7.0]


@pytest.mark.parametrize("fault", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError,
                                   httpx.WriteTimeout])
async def test_create_is_never_resent_once_it_may_have_arrived(fault):
    t = Script(fault, 200)
    async with client(t) as c:
        with pytest.raises(SubmitOutcomeUnknown, match="not resent"):
            await http.send(c, "POST", "/apps/run", provider="testprov", idempotent=False, json={})
    assert len(t.seen) == 1


@pytest.mark.parametrize("first", [httpx.ConnectError, 429, 503])
async def test_create_is_retried_when_provably_not_accepted(first):
    t = Script(first, 200)
    async with client(t) as c:
        r = await http.send(c, "POST", "/apps/run", provider="testprov", idempotent=False, json={})
    assert r.status_code == 200 and len(t.seen) == 2


async def test_create_is_not_retried_on_500():
    t = Script(500, 200)
    async with client(t) as c:
        r = await http.send(c, "POST", "/apps/run", provider="testprov", idempotent=False, json={})
    assert r.status_code == 500 and len(t.seen) == 1


async def test_network_guard_names_the_provider(monkeypatch):
    monkeypatch.setattr(http.guard, "enabled", True)
    t = Script(200)
    async with http.async_client("someprov", transport=t) as c:
        with pytest.raises(NetworkBlocked, match="someprov: .*api.example.com"):
            await c.get("https://api.example.com/x")
        assert (await c.get("http://127.0.0.1:1/x")).status_code == 200  # loopback stays open
    assert len(t.seen) == 1


def test_error_for_status_maps_kinds():
    resp = httpx.Response(401, request=httpx.Request("GET", "http://x"))
    err = http.error_for_status(resp, "bad key", provider="p", env_var="P_KEY")
    assert isinstance(err, AuthenticationError) and "P_KEY" in str(err)
    resp = httpx.Response(422, request=httpx.Request("GET", "http://x"))
    err = http.error_for_status(resp, "image is required", provider="p")
    assert isinstance(err, RequestRefused) and err.exit_code == 4 and "image is required" in str(err)


async def test_download_file_url_is_atomic(tmp_path):
    src = tmp_path / "src.mp4"
    src.write_bytes(b"x" * 1000)
    dest = await http.download(src.as_uri(), tmp_path / "out" / "v.mp4")
    assert dest.read_bytes() == b"x" * 1000
    assert [p.name for p in dest.parent.iterdir()] == ["v.mp4"]  # no .part left behind
