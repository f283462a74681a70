"""talkinghead.transport: httpx over aiohttp. The money rule is that only errors proving the
request never left this machine may look like connect errors (``http.send`` resends a create
only after those); everything else must make a create ``SubmitOutcomeUnknown``.

Checked two ways: every exception class aiohttp defines is mapped by the rule (an invariant
over the whole class tree), and real misbehaving servers on loopback (a raw socket server
that closes after reading the request, or never answers) are met by the real transport."""

from __future__ import annotations

import asyncio
import gzip
import inspect
import socket
import threading

import aiohttp
import aiohttp.client_exceptions
import httpx
import pytest
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

from talkinghead import http
from talkinghead.errors import ServerError, SubmitOutcomeUnknown
from talkinghead.transport import AiohttpTransport, map_error

SAFE_TO_RESEND = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
REQUEST = httpx.Request("POST", "http://127.0.0.1:9/create")


def _aiohttp_error_classes() -> list[type[BaseException]]:
    return [cls for _, cls in inspect.getmembers(aiohttp.client_exceptions, inspect.isclass)
            if issubclass(cls, Exception) and cls.__module__.startswith("aiohttp")]


def _instance(cls: type[BaseException]) -> BaseException:
    """An instance of any aiohttp error class, whatever its constructor wants."""
    key = aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 9, False, True, None, None, None)
    url = yarl.URL("http://127.0.0.1:9/")
    info = aiohttp.RequestInfo(url=url, method="POST", headers=CIMultiDictProxy(CIMultiDict()),
                               real_url=url)
    shapes: list[tuple] = [("boom",), (), (b"x", b"y", "127.0.0.1", 9)]
    if issubclass(cls, aiohttp.ClientResponseError):
        shapes.insert(0, (info, ()))
    if issubclass(cls, aiohttp.ClientConnectorError):
        shapes[:0] = [(key, OSError(111, "refused")), ("/run/x.sock", key, OSError(2, "none"))]
    for args in shapes:
        try:
            made = cls(*args)
            str(made)  # some only fail when shown
            return made
        except Exception:  # noqa: S112  (try the next constructor shape)
            continue
    pytest.fail(f"cannot make a {cls.__name__}")


def _connect_phase(cls: type[BaseException]) -> bool:
    return issubclass(cls, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)


@pytest.mark.parametrize("cls", _aiohttp_error_classes(), ids=lambda cls: cls.__name__)
def test_only_connect_phase_errors_may_be_resent(cls):
    """Invariant, over every error class aiohttp defines: an aiohttp error maps to an httpx
    error that allows resending a create iff aiohttp raises it before any byte was written."""
    mapped = map_error(_instance(cls), REQUEST)
    if issubclass(cls, aiohttp.ClientError | OSError):  # the transport's errors: all mapped
        assert isinstance(mapped, httpx.TransportError), cls
    assert isinstance(mapped, SAFE_TO_RESEND) == _connect_phase(cls), (cls, type(mapped))


@pytest.mark.parametrize(("exc", "expected"), [
    (TimeoutError(), httpx.ReadTimeout),          # a timeout of unknown origin: may have arrived
    (ConnectionResetError(104, "reset"), httpx.ReadError),
    (ValueError("not ours"), None),
])
def test_other_errors(exc, expected):
    mapped = map_error(exc, REQUEST)
    assert (type(mapped) if mapped is not None else None) is expected


class RawServer:
    """A loopback server speaking raw sockets: ``mode`` says what it does after reading one
    request. Counts the requests it read."""

    def __init__(self, mode: str, response: bytes = b"") -> None:
        self.mode, self.response = mode, response
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> RawServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.sock.close()
        for conn in self._held:
            conn.close()
        self.thread.join(timeout=5)

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            try:
                self._answer(conn)
            except OSError:  # the client went away mid-request: count what arrived, go on
                conn.close()

    def _answer(self, conn: socket.socket) -> None:
        data = b""
        conn.settimeout(5)
        while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        chunked = b"transfer-encoding: chunked" in head.lower()
        while (not body.endswith(b"0\r\n\r\n")) if chunked else len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        self.requests.append(head + b"\r\n\r\n" + body)
        if self.mode == "close":
            conn.close()
        elif self.mode == "silent":
            self._held.append(conn)
        else:
            conn.sendall(self.response)
            conn.close()


@pytest.mark.parametrize("mode", ["close", "silent"])
async def test_a_create_that_may_have_arrived_is_sent_once(mode):
    with RawServer(mode) as server:
        async with http.async_client("t", timeout=httpx.Timeout(0.5, connect=2.0)) as client:
            with pytest.raises(SubmitOutcomeUnknown):
                await http.send(client, "POST", f"http://127.0.0.1:{server.port}/create",
                                provider="t", idempotent=False, backoff=0.01, json={"a": 1})
    assert len(server.requests) == 1
    assert server.requests[0].endswith(b'{"a":1}')


async def test_a_read_is_retried_after_the_same_faults():
    attempts = []
    with RawServer("close") as server:
        async with http.async_client("t", timeout=httpx.Timeout(0.5, connect=2.0)) as client:
            client.event_hooks["request"] = [lambda request: _count(attempts, request)]
            with pytest.raises(ServerError, match="RemoteProtocolError"):
                await http.send(client, "GET", f"http://127.0.0.1:{server.port}/status",
                                provider="t", attempts=3, backoff=0.01)
    assert len(attempts) == 3  # our retry policy's attempts, each of which reached the server
    assert len(server.requests) >= 3  # (aiohttp may resend an idempotent GET once on its own)


async def _count(attempts: list, request: httpx.Request) -> None:
    attempts.append(request.url.path)


async def test_a_refused_connection_is_a_connect_error():
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    transport = AiohttpTransport(limits=http.POOL_LIMITS)
    try:
        with pytest.raises(httpx.ConnectError):
            await transport.handle_async_request(httpx.Request("POST", f"http://127.0.0.1:{port}/x"))
    finally:
        await transport.aclose()


async def test_what_goes_out_and_comes_back_is_what_httpx_means():
    """The URL as httpx encoded it, the body streamed from an async iterable (chunked), no
    Content-Type aiohttp would invent, repeated response headers kept, gzip decoded once."""
    payload = b'{"ok": true}'
    packed = gzip.compress(payload)
    response = (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
                b"Content-Length: " + str(len(packed)).encode() + b"\r\nConnection: close\r\n\r\n" + packed)
    with RawServer("answer", response) as server:
        async def body():
            yield b"ab"
            await asyncio.sleep(0)
            yield b"cd"

        async with http.async_client("t") as client:
            got = await client.put(f"http://127.0.0.1:{server.port}/up?hook=http%3A%2F%2Fx%2Fy",
                                   content=body())
    head = server.requests[0].lower()
    assert head.startswith(b"put /up?hook=http%3a%2f%2fx%2fy http/1.1")
    assert b"transfer-encoding: chunked" in head and b"content-type" not in head
    assert server.requests[0].endswith(b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n")
    assert got.json() == {"ok": True}
    assert got.headers.get_list("set-cookie") == ["a=1", "b=2"]
