"""Loopback servers for tests, benchmarks and plugin fakes: real uvicorn, real sockets,
127.0.0.1 only. ``serve_asgi`` runs any ASGI app in a thread; the rest is what the cloud
plugins' fake backends share: ``FakeBackend`` (with ``FakeStorage`` for signed-URL uploads),
the ``entered`` decorator of their handlers, ``SteppedTask`` for their jobs, ``serve_fake``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Self


@contextlib.contextmanager
def serve_asgi(app: Any, *, port: int = 0, name: str = "talkinghead-loopback") -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port unless ``port``); yields its base URL. Stops the
    server on exit without waiting for open streams."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(app, log_level="critical", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=name)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"{name}: the loopback server did not start")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        server.force_exit = True
        thread.join(timeout=10)
        sock.close()


def tiny_mp4(seconds: float = 1.0, size: int = 64) -> bytes:
    """A small valid MP4 (H.264 where the encoder exists) for fakes to serve as a result."""
    import io

    import av
    import numpy as np

    codec = next((c for c in ("libx264", "h264", "mpeg4") if c in av.codecs_available), "mpeg4")
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=10)
        assert isinstance(stream, av.VideoStream)  # a video codec gives a video stream
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(max(1, int(seconds * 10))):
            frame = np.full((size, size, 3), (i * 20) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


# -- what the loopback fakes of the cloud plugins share ---------------------------------------

@dataclass
class Recorded:
    """One request a fake received, for tests to assert what was sent."""

    method: str
    path: str
    query: str
    headers: dict[str, str]   # lower-case names
    json: Any
    body: bytes
    endpoint: str
    claims: dict[str, Any] | None = None  # what a fake verified of the credentials, if it does

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def token(self) -> str | None:
        """The bearer token sent, if any."""
        auth = self.header("authorization") or ""
        return auth[7:] if auth.startswith("Bearer ") else None


@dataclass(kw_only=True)
class SteppedTask:
    """A fake's job whose status follows the wall clock, so that every read (a GET, a stream,
    a webhook) agrees: one step along ``statuses`` per ``step_latency`` seconds from
    ``created`` (at its end at once when 0). Once cancelled (``cancelled_at``) it is
    ``CANCELLING`` for a step, then ``CANCELLED``: a subclass names the backend's two."""

    CANCELLING: ClassVar[Any] = None
    CANCELLED: ClassVar[Any] = None

    statuses: tuple[Any, ...]  # the path; the last one is where it ends
    step_latency: float
    created: float = field(default_factory=time.monotonic)
    cancelled_at: float | None = None

    def status(self, now: float | None = None) -> Any:
        now = time.monotonic() if now is None else now
        if self.cancelled_at is not None:
            return self.CANCELLED if now - self.cancelled_at >= self.step_latency else self.CANCELLING
        if self.step_latency <= 0:
            return self.statuses[-1]
        return self.statuses[min(int((now - self.created) / self.step_latency), len(self.statuses) - 1)]

    @property
    def ends_at(self) -> float:
        """When the last status is reached, had nobody cancelled it."""
        return self.created + self.step_latency * (len(self.statuses) - 1)


class EarlyAnswer(Exception):
    """Raised by a fake's handler (or what it calls) to answer with ``response`` at once: a
    lookup that finds nothing answers the backend's 404 this way."""

    def __init__(self, response: Any) -> None:
        super().__init__(getattr(response, "status_code", None))
        self.response = response


Handler = Callable[[Any, Any, Recorded], Awaitable[Any]]


def entered(endpoint: str, route: str | None = None, *,
            auth: bool = True) -> Callable[[Handler], Callable[[Any, Any], Awaitable[Any]]]:
    """Turns a fake's handler ``(self, request, rec)`` into its Starlette endpoint, served at
    ``route`` (``"METHOD /path"``; None: the fake routes it itself): the request is recorded
    as ``endpoint``, refused by the fake's ``_auth`` (when ``auth``) or by a failure queued
    for ``endpoint`` before the handler runs, and an ``EarlyAnswer`` raised inside is
    answered."""
    def decorate(handler: Handler) -> Callable[[Any, Any], Awaitable[Any]]:
        @functools.wraps(handler)
        async def endpoint_of(fake: FakeBackend, request: Any) -> Any:
            rec = await fake._record(request, endpoint)
            early = (fake._auth(rec) if auth else None) or fake._injected(request, endpoint)
            if early is not None:
                return early
            try:
                return await handler(fake, request, rec)
            except EarlyAnswer as answer:
                return answer.response
        endpoint_of.route = route  # type: ignore[attr-defined]  # read by FakeBackend._routes
        return endpoint_of
    return decorate


class FakeBackend:
    """Plumbing shared by the fakes of backends (Starlette apps a plugin ships for its tests
    and benchmarks): switches checked by name, a record of every request, failures injected
    per endpoint, background tasks, the result video, and callbacks POSTed to loopback
    addresses only. A subclass sets ``switches_type`` (a dataclass) and ``endpoints``, serves
    its API with handlers decorated with ``entered`` (each naming its route), answers a queued
    failure in ``_failure``, checks credentials in ``_auth``, says in ``_has_output`` which
    jobs have a video, and extends ``reset`` with its own state."""

    name = "fake"
    switches_type: type
    endpoints: tuple[str, ...] = ()
    output_path = "/outputs/{job}.mp4"  # where the result video is served
    # set by the subclass's __init__
    switches: Any  # an instance of switches_type
    webhook_deliveries: list[dict[str, Any]]
    app: Any  # the Starlette app serving the fake

    def __init__(self, *, video: bytes | None = None, **switches: Any) -> None:
        self._video = video
        self.url: str | None = None
        self._background: set[Any] = set()
        self._generation = 0
        self._counter = 0  # never reset: ids stay unique for the server's life
        self.reset(**switches)
        self.app = self._build_app()

    def _build_app(self) -> Any:
        from starlette.applications import Starlette

        return Starlette(routes=self._routes())

    def _routes(self) -> list[Any]:
        """The routes of the handlers that name one (``entered``), then the output video's
        (at ``output_path``). Paths that start with a parameter come after the others, a
        catch-all last, so that neither swallows a path another route serves."""
        from starlette.routing import Route

        routes: dict[str, tuple[str, str]] = {}  # handler name -> (method, path), in class order
        for klass in reversed(type(self).__mro__):
            for name, attr in vars(klass).items():
                if getattr(attr, "route", None):
                    method, path = attr.route.split(" ", 1)
                    routes[name] = (method, path)
        ordered = sorted(routes.items(), key=lambda item: (item[1][1].startswith("/{"), ":path}" in item[1][1]))
        return ([Route(path, getattr(self, name), methods=[method]) for name, (method, path) in ordered]
                + [Route(self.output_path, self.output, methods=["GET"])])

    @classmethod
    def serving(cls, fake: Self | None = None, *, port: int = 0,
                **switches: Any) -> contextlib.AbstractContextManager[Self]:
        """Run ``fake`` (or a new one with ``switches``) on 127.0.0.1 in a thread, as a context
        manager yielding it with ``fake.url`` set. Stops the server on exit."""
        fake = fake.configure(**switches) if fake is not None else cls(**switches)
        return serve_fake(fake, port=port)

    def reset(self, **switches: Any) -> Self:
        """Forget every request and go back to the default switches (so one running server can
        serve many tests); a new generation, so that background work of the test before (a
        callback on its way) sees it is stale."""
        self.switches = self.switches_type()
        self._generation += 1
        self.requests: list[Recorded] = []
        self.webhook_deliveries: list[dict[str, Any]] = []
        return self.configure(**switches)

    def configure(self, **switches: Any) -> Self:
        known = {f.name for f in fields(self.switches_type)}
        for name, value in switches.items():
            if name not in known:
                raise TypeError(f"unknown fake switch {name!r} (known: {', '.join(sorted(known))})")
            if name == "failures":
                value = {k: list(v) for k, v in value.items()}
                bad = set(value) - set(self.endpoints)
                if bad:
                    raise TypeError(f"unknown endpoint(s) {sorted(bad)} (known: {self.endpoints})")
            if name == "statuses":
                value = tuple(value)
            setattr(self.switches, name, value)
        return self

    def _auth(self, rec: Recorded) -> Any:
        """The answer refusing ``rec``'s credentials, or None to let it through."""
        return None

    def _injected(self, request: Any, endpoint: str) -> Any:
        """The answer to the next failure the ``failures`` switch queued for ``endpoint``, if any."""
        queue = self.switches.failures.get(endpoint)
        return self._failure(request, queue.pop(0)) if queue else None

    def _failure(self, request: Any, entry: Any) -> Any:
        """The answer to one queued failure (None: behave, e.g. for a 200)."""
        raise NotImplementedError

    def _has_output(self, job_id: str) -> bool:
        """Whether the job ``job_id`` has a result video to serve."""
        raise NotImplementedError

    @entered("output", auth=False)
    async def output(self, request: Any, rec: Recorded) -> Any:
        """The result video, at the URL a finished job's answer gives (route ``{job}`` in it)."""
        from starlette.responses import Response

        if not self._has_output(request.path_params["job"]):
            return Response("not found", status_code=404)
        return Response(self.video, media_type="video/mp4")

    @entered("hook", "POST /hooks/{name:path}", auth=False)
    async def hook(self, request: Any, rec: Recorded) -> Any:
        """A webhook receiver for tests: records the POST (``requests_to("hook")``)."""
        from starlette.responses import Response

        return Response(status_code=204)

    def _retry_after(self, status: int) -> dict[str, str]:
        """The Retry-After header the ``retry_after`` switch asks for, on a 429 or 503."""
        after = self.switches.retry_after
        return {"Retry-After": f"{after:g}"} if after is not None and status in (429, 503) else {}

    def requests_to(self, endpoint: str) -> list[Recorded]:
        return [r for r in self.requests if r.endpoint == endpoint]

    @property
    def video(self) -> bytes:
        if self._video is None:
            self._video = tiny_mp4()
        return self._video

    async def _record(self, request: Any, endpoint: str) -> Recorded:
        body = await request.body()
        parsed = None
        if body:
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                parsed = json.loads(body)
        rec = Recorded(request.method, request.url.path, request.url.query,
                       {k.lower(): v for k, v in request.headers.items()}, parsed, body, endpoint)
        self.requests.append(rec)
        return rec

    def _spawn(self, coro: Any) -> None:
        import asyncio

        job = asyncio.get_running_loop().create_task(coro)
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    async def _deliver(self, url: str, delivery: dict[str, Any], **post: Any) -> None:
        """POST a callback as the real platform would, best effort; loopback URLs only, so a
        test never reaches a real host. What happened is appended to ``webhook_deliveries``."""
        import httpx

        if httpx.URL(str(url)).host not in ("127.0.0.1", "localhost", "::1"):
            delivery["error"] = "skipped: the fake only calls loopback webhooks"
        else:
            try:
                async with httpx.AsyncClient(timeout=5.0) as client:
                    response = await client.post(str(url), **post)
                delivery["status_code"] = response.status_code
            except Exception as exc:  # noqa: BLE001 - best effort, like the real platform
                delivery["error"] = f"{type(exc).__name__}: {exc}"
        self.webhook_deliveries.append(delivery)

    def __repr__(self) -> str:
        hidden = ("api_key", "access_key", "secret_key")
        shown = {k: v for k, v in asdict(self.switches).items() if k not in hidden}
        return f"<{type(self).__name__} {self.url or '(not serving)'} {shown}>"


class FakeStorage(FakeBackend):
    """A fake backend with object storage: signed upload URLs on itself (``PUT
    /upload/{fid}``, the ``upload`` endpoint) and the files served back (``GET
    /files/{fid}/{name}``, the ``download`` endpoint). A subclass creates the records in
    ``files`` (``data`` None until the PUT, ``content_type`` and, where declared, ``size``)
    and names the key of a file's name in them."""

    file_name_key = "filename"  # the key of a file's name in its record

    def reset(self, **switches: Any) -> Self:
        self.files: dict[str, dict[str, Any]] = {}  # file id -> its record and, once PUT, its data
        return super().reset(**switches)

    def uploaded(self) -> dict[str, bytes]:
        """File name -> bytes of every completed upload."""
        return {f[self.file_name_key]: f["data"] for f in self.files.values() if f.get("data") is not None}

    @entered("upload", "PUT /upload/{fid}", auth=False)
    async def upload(self, request: Any, rec: Recorded) -> Any:
        """The PUT to a signed upload URL, checked as object storage checks it when the
        ``strict_upload`` switch is on: no Authorization besides the signature, the declared
        size and content type."""
        from starlette.responses import Response

        entry = self.files.get(request.path_params["fid"])
        if entry is None:
            return Response("no such upload", status_code=404)
        if self.switches.strict_upload:
            if rec.header("authorization"):
                return Response("<Error>only one auth mechanism allowed</Error>", status_code=400)
            if entry.get("size") is not None and len(rec.body) != entry["size"]:
                return Response(f"<Error>size {len(rec.body)} != declared {entry['size']}</Error>", status_code=400)
            if entry["content_type"] and rec.header("content-type") != entry["content_type"]:
                return Response("<Error>content type differs from the signed one</Error>", status_code=403)
        entry["data"] = rec.body
        return Response(status_code=200)

    @entered("download", "GET /files/{fid}/{name:path}", auth=False)
    async def serve_file(self, request: Any, rec: Recorded) -> Any:
        """An uploaded file, served back at its URL."""
        from starlette.responses import Response

        entry = self.files.get(request.path_params["fid"])
        if entry is None or entry["data"] is None:
            return Response("not found", status_code=404)
        return Response(entry["data"], media_type=entry["content_type"] or "application/octet-stream")


@contextlib.contextmanager
def serve_fake(fake: FakeBackend, *, port: int = 0) -> Iterator[Any]:
    """Serve a fake on 127.0.0.1; yields it with ``fake.url`` set for the duration."""
    with serve_asgi(fake.app, port=port, name=f"fake-{fake.name}") as url:
        fake.url = url
        try:
            yield fake
        finally:
            fake.url = None


def fake_arguments(description: str) -> argparse.ArgumentParser:
    """The options every ``python -m talkinghead_<name>.fake`` takes; a plugin adds its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--step-latency", type=float, default=0.5)
    return parser


def run_fake(served: Any, banner: str) -> None:
    """``python -m talkinghead_<name>.fake``: serve until Ctrl-C."""
    with served as fake:
        print(banner.format(url=fake.url), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


def request_base(request: Any) -> str:
    return str(request.base_url).rstrip("/")
