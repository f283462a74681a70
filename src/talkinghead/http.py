"""Shared HTTP for providers: timeouts, retry policy, error mapping, downloads, network guard.

Retry policy, the rule that protects money: a read (``idempotent=True``) is retried on
connection errors, timeouts, 429 and 5xx. A create call (``idempotent=False``) is retried
only when it provably never reached the server (connect error) or the server refused it
outright (429, 503); if it may have been received (read timeout, connection reset after
sending) ``SubmitOutcomeUnknown`` is raised and nothing is resent.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import secrets
import shutil
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import httpx

from .errors import (
    AuthenticationError,
    BillingError,
    DownloadError,
    InputError,
    NetworkBlocked,
    ProviderError,
    ProviderTimeout,
    RateLimitError,
    RequestRefused,
    ResultExpired,
    ServerError,
    SubmitOutcomeUnknown,
)

if TYPE_CHECKING:
    import ssl

    from .media import MediaFile
    from .models import JobUpdate


DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's defaults
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CREATE_RETRY_STATUSES = frozenset({429, 503})  # refused before any work was accepted
MAX_RETRY_AFTER = 60.0
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class NetworkGuard:
    """While enabled, provider HTTP may only reach loopback (or hosts a test allows)."""

    def __init__(self) -> None:
        self.enabled = os.environ.get("TALKINGHEAD_BLOCK_NETWORK", "") not in ("", "0")
        self.allowed_hosts: set[str] = set(LOOPBACK)

    def check(self, provider: str, url: httpx.URL) -> None:
        if self.enabled and url.host not in self.allowed_hosts:
            raise NetworkBlocked(
                f"real HTTP request to {url.scheme}://{url.host} blocked by the talkinghead "
                "network guard (use a cassette, the mock provider, or the allow_network marker)",
                provider=provider)


guard = NetworkGuard()

_ssl_lock = threading.Lock()
_ssl_contexts: dict[tuple[str | None, str | None], ssl.SSLContext] = {}


def ssl_context() -> ssl.SSLContext:
    """The TLS context every client shares: httpx's default (certifi, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``), built once per process. Building one loads the whole CA bundle, about
    20 ms of CPU, which httpx would otherwise spend on every new client (e.g. each download)."""
    key = (os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)
    ctx = _ssl_contexts.get(key)
    if ctx is None:
        with _ssl_lock:
            ctx = _ssl_contexts.get(key)
            if ctx is None:
                ctx = _ssl_contexts[key] = httpx.create_ssl_context()
    return ctx


class GuardedTransport(httpx.AsyncBaseTransport):
    """Checks the network guard on every request, then hands it to the real transport.

    With its own inner transport it also keeps requests beyond the pool's size waiting here,
    on a semaphore, rather than in httpcore's queue: httpcore re-scans every queued request
    against every connection each time a request starts or ends, which is quadratic in the
    queue (at 1,000 concurrent jobs that scan took over 80 % of the client's CPU). The pool
    size, keep-alive and pool timeout (``PoolTimeout``) behave as before.

    Its own transport for ``https`` URLs is made on the first one, with the shared TLS
    context: plain-HTTP (loopback) traffic never loads the CA bundle."""

    def __init__(self, provider: str, inner: httpx.AsyncBaseTransport | None = None,
                 limits: httpx.Limits = POOL_LIMITS) -> None:
        self.provider = provider
        self._slots: asyncio.Semaphore | None = None
        self._limits = limits
        self._plain: httpx.AsyncBaseTransport | None = None
        self._tls: httpx.AsyncBaseTransport | None = None
        if inner is None:
            inner = self._plain = _transport(limits, None)
            slots = limits.max_connections or POOL_LIMITS.max_connections
            assert slots is not None  # POOL_LIMITS sets it
            self._slots = asyncio.Semaphore(slots)
        self.inner = inner

    def _route(self, request: httpx.Request) -> httpx.AsyncBaseTransport:
        if request.url.scheme != "https" or self.inner is not self._plain:
            return self.inner
        if self._tls is None:
            self._tls = _transport(self._limits, ssl_context())
        return self._tls

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        guard.check(self.provider, request.url)
        slots = self._slots
        transport = self._route(request)
        if slots is None:
            return await transport.handle_async_request(request)
        if slots.locked():
            pool_timeout = (request.extensions.get("timeout") or {}).get("pool")
            try:
                async with asyncio.timeout(pool_timeout):
                    await slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("timed out waiting for a connection from the pool",
                                        request=request) from None
        else:
            await slots.acquire()  # free: returns at once
        try:
            response = await transport.handle_async_request(request)
        except BaseException:
            slots.release()
            raise
        if response.is_closed:  # already read whole by the transport: nothing holds the slot
            slots.release()
        else:
            # an async-only stream, as httpx's own AsyncHTTPTransport puts there
            response.stream = _ReleaseOnClose(response.stream, slots)  # type: ignore[arg-type]
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
        if self._tls is not None:
            await self._tls.aclose()


def preload() -> None:
    """Import the transport's library now rather than on the first request."""
    if os.environ.get("TALKINGHEAD_HTTP_TRANSPORT", "").lower() != "httpcore":
        from . import transport  # noqa: F401


def _transport(limits: httpx.Limits, tls: ssl.SSLContext | None) -> httpx.AsyncBaseTransport:
    """aiohttp under httpx (``talkinghead.transport``: about a third of httpcore's CPU per
    request); ``TALKINGHEAD_HTTP_TRANSPORT=httpcore`` keeps httpx's own, e.g. to compare."""
    if os.environ.get("TALKINGHEAD_HTTP_TRANSPORT", "").lower() == "httpcore":
        # verify=False when plain: that transport never speaks TLS, so needs no certificates.
        return httpx.AsyncHTTPTransport(verify=tls if tls is not None else False, limits=limits)
    from .transport import AiohttpTransport

    return AiohttpTransport(limits=limits, ssl_context=tls)


class _ReleaseOnClose(httpx.AsyncByteStream):
    """A response body that gives its pool slot back when it is closed, as the connection
    under it goes back to httpcore's pool."""

    def __init__(self, stream: httpx.AsyncByteStream, slots: asyncio.Semaphore) -> None:
        self._stream = stream
        self._slots: asyncio.Semaphore | None = slots

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            slots, self._slots = self._slots, None
            if slots is not None:
                slots.release()


def async_client(provider: str, *, base_url: str = "", headers: dict[str, str] | None = None,
                 timeout: httpx.Timeout | float | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 limits: httpx.Limits = POOL_LIMITS) -> httpx.AsyncClient:
    """The httpx client every provider should use: guarded, with sane timeouts. ``limits``
    sizes its connection pool (a client that only holds long-lived status streams gets its
    own, so streams never hold the connections submits and reads need)."""
    from . import __version__

    base_headers = {"User-Agent": f"talkinghead/{__version__}"}
    base_headers.update(headers or {})
    return httpx.AsyncClient(base_url=base_url, headers=base_headers,
                             timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
                             transport=GuardedTransport(provider, transport, limits),
                             follow_redirects=False, verify=ssl_context() if _env_proxies() else True)


def call_timeout(seconds: float) -> httpx.Timeout:
    """A call's timeout: ``seconds`` in all, and no more than 10 s of it to connect."""
    return httpx.Timeout(seconds, connect=min(10.0, seconds))


def _env_proxies() -> bool:
    """Whether httpx will mount proxy transports from the environment: only those use the
    client's ``verify`` (the transport is ours), so only then is the TLS context built."""
    return any(os.environ.get(k) for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                                           "http_proxy", "https_proxy", "all_proxy"))


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta or HTTP date), capped."""
    raw = response.headers.get("retry-after")
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(raw) if raw else None
        if parsed is None:
            return None
        seconds = parsed.timestamp() - time.time()
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def _backoff(attempt: int, base: float) -> float:
    return min(base * (2.0 ** attempt), 8.0) * (0.5 + random.random() / 2)


async def send(client: httpx.AsyncClient, method: str, url: str, *, provider: str,
               idempotent: bool = True, attempts: int = 4, backoff: float = 0.5,
               **kwargs: Any) -> httpx.Response:
    """Send with the retry policy above. Returns the last response, whatever its status."""
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            response = await client.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Never left this machine: safe to retry even a create call.
            if last:
                raise ProviderTimeout(f"cannot reach {_where(client, url)}: {type(exc).__name__}",
                                      provider=provider) from None
        except httpx.TransportError as exc:
            if not idempotent:
                raise SubmitOutcomeUnknown(
                    f"{method} {_path(url)} was sent but no answer came back ({type(exc).__name__}); "
                    "the task may exist and be billed, so it was not resent", provider=provider) from None
            if last:
                kind = ProviderTimeout if isinstance(exc, httpx.TimeoutException) else ServerError
                raise kind(f"{method} {_path(url)} failed: {type(exc).__name__}", provider=provider) from None
        else:
            retry_on = RETRY_STATUSES if idempotent else CREATE_RETRY_STATUSES
            if response.status_code not in retry_on or last:
                return response
            wait = retry_after(response)
            await response.aclose()
            await asyncio.sleep(wait if wait is not None else _backoff(attempt, backoff))
            continue
        await asyncio.sleep(_backoff(attempt, backoff))
    raise AssertionError("unreachable")


def _path(url: str) -> str:
    return urlsplit(str(url)).path or str(url)


def _where(client: httpx.AsyncClient, url: str) -> str:
    full = client.base_url.join(url) if client.base_url else httpx.URL(url)
    return f"{full.scheme}://{full.host}"


def error_for_status(response: httpx.Response, message: str, *, provider: str,
                     env_var: str | None = None) -> ProviderError:
    """The typed error for an HTTP error status; providers use it after reading the message."""
    code = response.status_code
    if code in (401, 403):
        return AuthenticationError(f"authentication failed ({code}): {message}", provider=provider,
                                   env_var=env_var, status_code=code)
    if code == 402:
        return BillingError(f"payment required: {message}", provider=provider, status_code=code)
    if code in (400, 422):
        # Sent and refused: exit 4, not 2 (2 means nothing was sent).
        return RequestRefused(f"the backend refused the request ({code}): {message}", provider=provider,
                              status_code=code)
    if code == 429:
        return RateLimitError(f"rate limited: {message}", provider=provider, status_code=code,
                              retry_after=retry_after(response))
    if code >= 500:
        return ServerError(f"server error {code}: {message}", provider=provider, status_code=code)
    return ProviderError(f"HTTP {code}: {message}", provider=provider, status_code=code)


async def download(url: str, dest: Path, *, provider: str = "download",
                   client: httpx.AsyncClient | None = None) -> Path:
    """Fetch a result to ``dest``: streamed to a temporary file beside it, then renamed into
    place, so a crash never leaves a half-written video under the final name."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its 0600 would become the video's mode. A new file follows the umask.
    tmp = dest.parent / f".{dest.name}.{secrets.token_hex(6)}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            parts = urlsplit(url)
            if parts.scheme == "file":
                # A local result (mock, local renderer) is copied in place: in a thread, a cancelled
                # copy would keep writing to a file the handler below removes.
                with open(unquote(parts.path), "rb") as src:  # noqa: ASYNC230
                    shutil.copyfileobj(src, out, 1 << 20)
            elif parts.scheme in ("http", "https"):
                await _fetch(url, out, provider, client)
            else:
                raise DownloadError(f"cannot download {parts.scheme or 'a relative'} URL")
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"download of the result failed: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


async def _fetch(url: str, out: IO[bytes], provider: str, client: httpx.AsyncClient | None) -> None:
    own = client is None
    client = client or async_client(provider, timeout=DOWNLOAD_TIMEOUT)
    try:
        for attempt in range(3):
            try:
                async with client.stream("GET", url, follow_redirects=True) as response:
                    if response.status_code in RETRY_STATUSES and attempt < 2:
                        await asyncio.sleep(retry_after(response) or _backoff(attempt, 0.5))
                        continue
                    if response.status_code in (403, 404, 410):
                        raise ResultExpired(
                            f"the result URL has expired or is gone (HTTP {response.status_code} from "
                            f"{response.url.host}): the backend no longer serves this video there")
                    if response.status_code != 200:
                        raise DownloadError(f"download of the result failed: HTTP {response.status_code} "
                                            f"from {response.url.host}")
                    out.seek(0)
                    out.truncate()
                    async for chunk in response.aiter_bytes(1 << 20):
                        out.write(chunk)
                    return
            except httpx.TransportError as exc:
                if attempt == 2:
                    raise DownloadError(f"download of the result failed: {type(exc).__name__}") from None
                await asyncio.sleep(_backoff(attempt, 0.5))
    finally:
        if own:
            await client.aclose()


_CALLBACK_STATUS = {"queued": 2, "running": 7, "completed": 10, "failed": 11, "cancelled": 12}


def callback_payload(task_id: str, update: JobUpdate, created_at: float) -> dict[str, Any]:
    """An inference.sh-shaped task callback (``id``, ``status``, ``output``, ``error``,
    ``session_id``, ``created_at``, ``updated_at``) for an offline provider's ``JobUpdate``."""
    import time as _time

    def iso(t: float) -> str:
        return _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(t))
    output = None
    if update.output_url:
        output = {"video": {"uri": update.output_url, "content_type": "video/mp4"},
                  "output_meta": {"outputs": [{"type": "video", "seconds": update.duration_s}]}}
    return {"id": task_id, "status": _CALLBACK_STATUS.get(update.status.value, 0), "output": output,
            "error": update.error, "session_id": None, "created_at": iso(created_at), "updated_at": iso(_time.time())}


async def deliver_webhook(url: str, payload: dict, *, provider: str, attempts: int = 3) -> bool:
    """POST a completion callback, as a real backend would; for offline providers (mock,
    local) so apps can test their webhook handling with no account. Never raises: a receiver
    that is down must not fail the job. Returns whether a 2xx came back."""
    import json

    from .log import get_logger

    async with async_client(provider, timeout=httpx.Timeout(10.0, connect=5.0)) as client:
        for attempt in range(attempts):
            try:
                response = await client.post(url, content=json.dumps(payload).encode(),
                                             headers={"Content-Type": "application/json"})
                if response.is_success:
                    return True
                if response.status_code < 500:
                    break  # the receiver refused it; resending will not help
            except (httpx.TransportError, NetworkBlocked) as exc:
                if isinstance(exc, NetworkBlocked):
                    break
            await asyncio.sleep(_backoff(attempt, 0.2))
    get_logger("talkinghead.http").warning("webhook.undelivered", provider=provider,
                                           url=url.split("?")[0].rsplit("/", 1)[0])
    return False


UPLOAD_CHUNK = 256 * 1024


class UploadBody:
    """A ``MediaFile``'s content for an upload request, read in chunks each time it is
    iterated, so a retried PUT sends the whole file again and a large file is never held in
    memory. Not a generator, so httpx lets it be re-read. Small content (bytes in memory, a
    file of one chunk) is read on the event loop; larger files in a worker thread."""

    def __init__(self, media: MediaFile) -> None:
        self.media = media

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        stream = self.media.open()
        try:
            if self.media.kind != "path" or _stream_size(stream) <= UPLOAD_CHUNK:
                while chunk := stream.read(UPLOAD_CHUNK):
                    yield chunk
                return
            ended = False
            while not ended:
                chunks, ended = await asyncio.to_thread(_next_chunks, stream)
                for chunk in chunks:
                    yield chunk
        finally:
            stream.close()


def upload_size(media: MediaFile) -> int:
    """Bytes an upload of ``media`` will send (what is on disk now, for a path)."""
    if media.kind == "path" and media.path is not None:
        return os.path.getsize(media.path)
    if media.data is not None:
        return len(media.data)
    if media.size is not None:
        return media.size
    raise InputError(media.field, "cannot upload: no path and no data")


def response_text(response: httpx.Response) -> str:
    """A response's text for an error message, or "" when it was not read or not text."""
    try:
        return response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return ""


def _stream_size(stream: IO[bytes]) -> int:
    try:
        return os.fstat(stream.fileno()).st_size
    except (OSError, AttributeError, ValueError):
        return UPLOAD_CHUNK + 1  # unknown: treat it as large


def _next_chunks(stream: IO[bytes]) -> tuple[list[bytes], bool]:
    """The next chunk and whether the stream has ended. A short read is almost always the end,
    so the read that confirms it is made in the same thread hop (one hop, not two)."""
    chunk = stream.read(UPLOAD_CHUNK)
    if not chunk:
        return [], True
    if len(chunk) == UPLOAD_CHUNK:
        return [chunk], False
    after = stream.read(UPLOAD_CHUNK)
    return ([chunk, after] if after else [chunk]), not after
