"""An httpx transport that sends over aiohttp, with errors mapped for money safety.

Providers keep httpx's API (requests, responses, ``MockTransport`` in tests, cassettes,
``httpx-sse``); only the bytes move through aiohttp, whose HTTP/1.1 client (a C parser on an
asyncio protocol) costs a fraction of httpcore's anyio stack per request (``docs/performance.md``).

The error mapping is the point of this module. ``talkinghead.http.send`` resends a create
call only after ``httpx.ConnectError``/``ConnectTimeout``/``PoolTimeout``: errors that prove
the request never left this machine. So only aiohttp's connect-phase errors become those;
everything else that can follow a write (a reset, a disconnect, a read timeout, a bad
response, a plain timeout of unknown origin) becomes a read-side ``httpx.TransportError``, and
a create that meets one is reported as ``SubmitOutcomeUnknown``, never sent again. (aiohttp
itself resends an idempotent request, GET/PUT/DELETE, once when its connection drops; never a
POST, which is how every provider sends a create.) A
maintained adapter exists (``httpx-aiohttp``), but it maps some errors after a send to
``ConnectTimeout``, which would let a create be sent twice.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import yarl

# Headers httpx computes that aiohttp must compute itself for the body it writes.
_FRAMING = ("transfer-encoding",)


def map_error(exc: BaseException, request: httpx.Request) -> httpx.TransportError | None:
    """The httpx error for an aiohttp one, or None when it is not a transport error.
    The order matters: connect-phase classes first, and anything unknown is a read error."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):  # DNS, refused, TLS handshake: nothing sent
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError
                  | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, TimeoutError):  # SocketTimeoutError (between reads) and any other
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return httpx.ReadError(message, request=request)
    return None


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (its own connection pool), made on the first request so it
    belongs to the event loop that uses it. ``ssl_context`` None: plain HTTP only."""

    def __init__(self, *, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None) -> None:
        self._limits = limits
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else False
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[Any, Any], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        keepalive = self._limits.keepalive_expiry
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0, limit_per_host=0, ssl=self._ssl,
            keepalive_timeout=keepalive if keepalive is not None else 5.0)
        # httpx owns cookies, redirects, decoding and the environment's proxies.
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            trust_env=False, timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        spec = request.extensions.get("timeout") or {}
        key = (spec.get("connect"), spec.get("read"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            # A connect timeout covers opening the socket only (the pool wait is
            # GuardedTransport's); a read timeout is the longest silence between reads.
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                total=None, sock_connect=key[0], sock_read=key[1])
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        headers = [(k, v) for k, v in request.headers.multi_items() if k not in _FRAMING]
        data: Any = None
        if request.method not in ("GET", "HEAD") or "content-length" in request.headers \
                or "transfer-encoding" in request.headers:
            stream = request.stream
            data = (request.content if isinstance(stream, httpx.ByteStream)
                    else _aiter(stream))  # type: ignore[arg-type]  # an async stream
        # encoded=True: the URL goes out exactly as httpx built it (yarl would re-quote it).
        try:
            response = await session.request(
                request.method, yarl.URL(str(request.url), encoded=True), headers=headers, data=data,
                allow_redirects=False, timeout=self._timeout(request),
                skip_auto_headers=_SKIP if "content-type" not in request.headers else None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            mapped = map_error(exc, request)
            if mapped is None:
                raise
            raise mapped from exc
        return httpx.Response(response.status, headers=response.raw_headers,
                              stream=_Body(response, request), extensions={"http_version": b"HTTP/1.1"})

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


_SKIP = ("Content-Type",)  # aiohttp would add one httpx did not send


async def _aiter(stream: httpx.AsyncByteStream) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield chunk


class _Body(httpx.AsyncByteStream):
    """A response body read from aiohttp as it arrives; closing it returns the connection."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            mapped = map_error(exc, self._request)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        self._response.release()
