"""``InferenceShProvider``: avatar models through inference.sh apps (Kling Avatar on
``klingai/avatar``, and the others in ``routes.py``: one app, declaration and input mapping each).

One HTTP protocol, translated (the notes: ``docs/protocols/inference-sh.md``):

- local files and base64 inputs: ``POST /files`` then ``PUT upload_url`` (streamed from
  disk, no Authorization on the PUT, §6); http(s) URLs are passed through unchanged;
- create: ``POST /apps/run`` with ``{app, input, webhook?}`` (§3), sent through
  ``talkinghead.http.send(idempotent=False)``: never resent once it may have arrived;
- follow: ``GET /tasks/{id}/stream`` (NDJSON, §5), falling back to ``GET /tasks/{id}``;
- ``POST /tasks/{id}/cancel`` (§8); webhooks are unsigned (§9), so the core confirms them;
- a create whose answer was lost is looked for with ``POST /tasks/list`` (``find_task``).
"""

from __future__ import annotations

# asyncio is imported inside the coroutines: registering the class (`talkinghead providers`,
# `estimate`) never loads it.
import os
from collections.abc import AsyncGenerator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from talkinghead.errors import (
    BillingError,
    InputError,
    ProviderError,
    ServerError,
    SubmitOutcomeUnknown,
)
from talkinghead.lazy_http import http, httpx  # loaded on the first request (start-up)
from talkinghead.models import Job, JobStatus, JobUpdate, Route
from talkinghead.provider import HttpProvider

from . import protocol, routes
from .routes import App  # by name: inside the class, ``routes`` is the method

if TYPE_CHECKING:
    from talkinghead.media import MediaFile, PreparedRequest

ENV_KEY = "INFERENCE_API_KEY"
ENV_BASE_URL = "INFERENCE_BASE_URL"
DEFAULT_BASE_URL = "https://api.inference.sh"
DEFAULT_APP = "klingai/avatar"

# Tunables (config keys) and their defaults, in seconds unless noted.
DEFAULTS: dict[str, float] = {
    "timeout": 30.0,               # REST calls (the SDK uses 30 s)
    "upload_timeout": 120.0,       # the PUT of one file
    "retry_attempts": 4,           # reads, uploads and refused creates (count)
    "retry_backoff": 0.5,          # first backoff when no Retry-After is given
    "stream_idle_timeout": 30.0,   # only heartbeats this long: re-read the task (the SDK's 30 s)
    "stream_read_timeout": 60.0,   # the SDK's stream timeout
    "stream_reconnects": 5,        # consecutive stream connections without news (count)
    "reconnect_delay": 1.0,        # between stream connections (the SDK waits 1 s)
    "find_pages": 4,               # pages of 50 of POST /tasks/list searched for a lost create (count)
    "find_window": 300.0,          # ... back to this long before the job was journaled
    "max_streams": 1000,           # open task streams at most (count); jobs beyond are polled
}

_STREAM_HEADERS = {"Accept": "application/x-ndjson", "Cache-Control": "no-cache",
                   "Accept-Encoding": "identity"}


class InferenceShProvider(HttpProvider):
    """Kling Avatar on inference.sh. Config: ``api_key`` (or ``INFERENCE_API_KEY``),
    ``base_url`` (or ``INFERENCE_BASE_URL``), ``app`` (``klingai/avatar``, may be pinned
    ``@version``), and the tunables in ``DEFAULTS``."""

    name = "inferencesh"
    env_vars = (ENV_KEY,)
    config_keys = {ENV_KEY: "api_key"}
    signs_webhooks = False  # §9: no signature anywhere; the core re-reads the task instead
    defaults = DEFAULTS
    clients = ("_api", "_uploads", "_streams")
    _uploads: httpx.AsyncClient | None  # no Authorization: presigned PUTs to object storage
    _streams: httpx.AsyncClient | None  # task streams, on a pool of their own

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._open_streams = 0

    # -- declaration ---------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [app.route for app in routes.apps(self.name, self.app).values()]

    def app_for(self, model: str) -> App:
        table = routes.apps(self.name, self.app)
        if model not in table:
            raise InputError("model", f"{model!r} is not served by {self.name}", value=model, limit=tuple(table))
        return table[model]

    @property
    def base_url(self) -> str:
        url = self.config.get("base_url") or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
        return str(url).rstrip("/")

    @property
    def app(self) -> str:
        return str(self.config.get("app") or DEFAULT_APP)

    def api_key(self) -> str | None:
        return self.secret(ENV_KEY)

    # -- HTTP plumbing -------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._api is None:
            key = self.required_secret(ENV_KEY)
            self._api = http.async_client(
                self.name, base_url=self.base_url, headers={"Authorization": f"Bearer {key}"},
                timeout=http.call_timeout(self.setting("timeout")))
        return self._api

    def _stream_client(self) -> httpx.AsyncClient:
        # Streams live as long as their task (minutes for Kling): on a pool of their own they
        # never hold a connection a submit or a read is waiting for.
        if self._streams is None:
            api = self._client()
            limit = max(1, int(self.setting("max_streams")))
            self._streams = http.async_client(
                self.name, base_url=self.base_url, headers={"Authorization": api.headers["Authorization"]},
                timeout=api.timeout, limits=httpx.Limits(max_connections=limit, max_keepalive_connections=20))
        return self._streams

    def _upload_client(self) -> httpx.AsyncClient:
        # A separate client with no Authorization at all: the presigned PUT goes to object
        # storage, which must never see our key (§6). Still guarded by the network guard.
        if self._uploads is None:
            timeout = self.setting("upload_timeout")
            self._uploads = http.async_client(self.name, timeout=httpx.Timeout(timeout, connect=10.0))
        return self._uploads

    async def _send(self, method: str, path: str, *, client: httpx.AsyncClient | None = None,
                    idempotent: bool = True, **kwargs: Any) -> httpx.Response:
        return await http.send(client or self._client(), method, path, provider=self.name,
                               idempotent=idempotent, attempts=max(1, int(self.setting("retry_attempts"))),
                               backoff=self.setting("retry_backoff"), **kwargs)

    async def _call(self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> Any:
        """One API call; returns the unwrapped DTO or raises the typed error."""
        response = await self._send(method, path, idempotent=idempotent, **kwargs)
        payload = protocol.parse_json(response.content)
        if response.is_success and not protocol.is_error_envelope(payload):
            return protocol.unwrap(payload)
        raise self._error(response, payload)

    def _error(self, response: httpx.Response, payload: Any) -> Exception:
        status = response.status_code
        if response.is_success:  # a v1 ``success: false`` body under HTTP 200
            code = payload.get("status") if isinstance(payload, dict) else None
            status = code if isinstance(code, int) and code >= 400 else 400
            response = httpx.Response(status, headers=response.headers)
        message, code = protocol.error_message(payload, http.response_text(response))
        message = protocol.redact(message, self.secrets())
        if status not in (401, 403) and status < 500 and protocol.is_billing_problem(status, code, message):
            return BillingError(f"payment required ({status}): {message}", provider=self.name,
                                status_code=status)
        return http.error_for_status(response, message, provider=self.name, env_var=ENV_KEY)

    # -- submit --------------------------------------------------------------------------

    async def submit(self, job: Job, prepared: PreparedRequest) -> JobUpdate:
        request = prepared.request
        app = self.app_for(job.model)
        speaks = request.text is not None and app.route.native_text  # the app speaks the text itself
        if prepared.audio is None and not speaks:
            raise InputError("audio", f"{app.app} needs audio (the core synthesizes it from text "
                             "before submitting to a route without native text)")
        image = await self._input_file(prepared.image)
        # not speaks: audio was checked just above
        audio = None if speaks else await self._input_file(prepared.audio)  # type: ignore[arg-type]
        width, height = prepared.image.width, prepared.image.height
        size = (width, height) if width and height else None
        inputs = app.build(routes.Inputs(request, app.route, image, audio, size))
        body = protocol.run_body_for(app.app, inputs, webhook=job.webhook_url)
        self.create_sending(job)  # the uploads are done: from here the task may exist
        response = await self._send("POST", "/apps/run", json=body, idempotent=False)
        payload = protocol.parse_json(response.content)
        if response.status_code in (502, 504):
            # A gateway answered for a server that may have acted on the request.
            raise SubmitOutcomeUnknown(
                f"POST /apps/run got HTTP {response.status_code} from a gateway; the task may exist "
                "and be billed, so it was not resent", provider=self.name)
        if not response.is_success or protocol.is_error_envelope(payload):
            raise self._error(response, payload)
        task = protocol.unwrap(payload)
        if not protocol.task_id_of(task):
            raise SubmitOutcomeUnknown(
                "POST /apps/run was accepted but the answer carried no task id; the task may exist "
                "and be billed, so it was not resent", provider=self.name)
        update = protocol.task_update(task)
        if update.message == "rejected":  # refused at admission: it never ran, nothing charged
            raise BillingError(f"run rejected by inference.sh: {update.error}", provider=self.name)
        return update

    async def _input_file(self, media: MediaFile) -> str:
        if media.kind == "url":
            if not media.url:
                raise InputError(media.field, "URL input without a URL")
            return media.url  # passed through unchanged, like the SDK does
        return await self._upload(media)

    async def _upload(self, media: MediaFile) -> str:
        """``POST /files`` then ``PUT upload_url``; returns the file's ``uri`` (§6)."""
        filename = protocol.upload_filename(media.filename, media.format, media.field)
        content_type = media.content_type or protocol.content_type_for(media.format)
        size = http.upload_size(media)
        record = {"uri": "", "filename": filename, "content_type": content_type, "path": None,
                  "size": size, "public": None}
        created = protocol.first_file(await self._call("POST", "/files", json={"files": [record]}))
        upload_url = created.get("upload_url") if created else None
        uri = created.get("uri") if created else None
        if not upload_url or not uri:
            raise ServerError(f"POST /files answered without an upload_url and uri for {media.field}",
                              provider=self.name)
        response = await self._send("PUT", str(upload_url), client=self._upload_client(),
                                    content=http.UploadBody(media),
                                    headers={"Content-Type": content_type, "Content-Length": str(size)})
        if not response.is_success:
            # Storage errors say nothing about our key (a 403 is usually an expired signature):
            # never an AuthenticationError, and never the signed URL in the message.
            host = httpx.URL(str(upload_url)).host
            raise ServerError(f"upload of {media.field} to {host} failed: HTTP {response.status_code}",
                              provider=self.name, status_code=response.status_code)
        return str(uri)

    # -- a lost create answer ----------------------------------------------------------------

    async def find_task(self, job: Job) -> JobUpdate | None:
        """The task a create whose answer was lost made, from ``POST /tasks/list`` (the JS SDK's
        ``tasks.list``: cursor pages, newest first), searched back to a little before the job
        was journaled. It is ours only if exactly one task matches (``protocol.is_jobs_task``:
        the webhook token, else the inputs); none or several: None, and the job stays
        ``unknown`` for a person, rather than adopt a task that may be another job's."""
        since = job.created_at - timedelta(seconds=self.setting("find_window"))
        sources = {f: (job.input_summary.get(f) or {}).get("source") for f in ("image", "audio")}
        matches: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(max(1, int(self.setting("find_pages")))):
            try:
                payload = await self._call("POST", "/tasks/list", json=protocol.list_body(50, cursor))
            except ProviderError as exc:
                if exc.status_code in (404, 405):
                    return None  # no task list on this server: nothing can tell
                raise
            items, cursor = protocol.list_page(payload)
            older = False
            for task in items:
                moment = protocol.created_at(task)
                if moment is not None and moment < since:
                    older = True
                    continue
                if protocol.is_jobs_task(task, token_hash=job.webhook_token_hash, mode=job.mode, sources=sources):
                    matches.append(task)
            if older or cursor is None:
                break
        if len(matches) != 1:
            return None
        return protocol.task_update(matches[0])

    # -- follow --------------------------------------------------------------------------

    async def get_task(self, task_id: str) -> dict[str, Any]:
        # A read is safe to repeat: an answer that is not a task object (malformed or cut-short
        # JSON under HTTP 200) is retried like a 5xx, rather than abandoning a paid job's follow.
        import asyncio
        attempts = max(1, int(self.setting("retry_attempts")))
        for attempt in range(attempts):
            task = await self._call("GET", f"/tasks/{task_id}")
            if isinstance(task, dict):
                return task
            if attempt < attempts - 1:
                await asyncio.sleep(http._backoff(attempt, self.setting("retry_backoff")))
        raise ServerError(f"GET /tasks/{task_id} answered with no task object {attempts} times",
                          provider=self.name)

    async def poll(self, job: Job) -> JobUpdate:
        task_id = _task_id(job)
        update = protocol.task_update(await self.get_task(task_id))
        return update if update.task_id else update.model_copy(update={"task_id": task_id})

    async def stream(self, job: Job) -> AsyncGenerator[JobUpdate, None]:
        """Native NDJSON stream (§5). Heartbeats are skipped, partial ``{data, fields}`` lines
        are folded into the last known task, bad lines are ignored. When a connection ends
        without a terminal status (dropped, closed, or ``stream_idle_timeout`` of nothing but
        heartbeats) the task is re-read with ``GET /tasks/{id}`` and the stream reopened.

        Reconnections are bounded: once ``stream_reconnects`` reconnections in a row have
        each dropped or failed without news (no task line, and the re-read shows no new
        status), the next such failure raises ``ServerError``; any news resets the count. A
        quiet but healthy stream (only heartbeats, the task still alive when re-read) does not
        count: a Kling job may sit in ``running`` for minutes, and the caller's wait timeout
        bounds that, not this."""
        if self._open_streams >= max(1, int(self.setting("max_streams"))):
            # Every stream connection is taken: follow this job by polling (the API pool).
            async for update in super().stream(job):
                yield update
            return
        self._open_streams += 1
        try:
            async for update in self._follow(job):
                yield update
        finally:
            self._open_streams -= 1

    async def _follow(self, job: Job) -> AsyncGenerator[JobUpdate, None]:
        import asyncio
        task_id = _task_id(job)
        snapshot: dict[str, Any] = {"id": task_id}
        failures = 0
        max_failures = int(self.setting("stream_reconnects"))
        while True:
            outcome = _Connection()
            updates = self._stream_once(task_id, snapshot, outcome)
            try:
                async for update in updates:
                    yield update
                    if update.status.terminal:
                        return
            except httpx.TransportError as exc:
                outcome.ended = f"dropped ({type(exc).__name__})"
            finally:
                await updates.aclose()
            before = protocol.status_name(snapshot.get("status"), snapshot.get("status_text"))
            task = await self.get_task(task_id)
            protocol.merge(snapshot, task)
            update = protocol.task_update(snapshot)
            moved = update.message != before
            if moved or update.status.terminal:
                yield update
            if update.status.terminal:
                return
            if outcome.news or moved:
                failures = 0
            elif outcome.ended != "idle":
                failures += 1
                if failures > max_failures:
                    raise ServerError(
                        f"the task stream for {task_id} ended without news {failures} times in a row "
                        f"(last: {outcome.ended}); task still {update.message}", provider=self.name)
            await asyncio.sleep(self.setting("reconnect_delay"))

    async def _stream_once(self, task_id: str, snapshot: dict[str, Any],
                           outcome: _Connection) -> AsyncGenerator[JobUpdate, None]:
        """One connection to the stream; sets ``outcome`` when it ends without a terminal."""
        import asyncio
        idle = self.setting("stream_idle_timeout")
        timeout = httpx.Timeout(self.setting("stream_read_timeout"), connect=10.0)
        loop = asyncio.get_running_loop()
        async with self._stream_client().stream("GET", f"/tasks/{task_id}/stream", headers=_STREAM_HEADERS,
                                         timeout=timeout) as response:
            if response.status_code != 200:
                await response.aread()
                if response.status_code in http.RETRY_STATUSES:
                    outcome.ended = f"HTTP {response.status_code}"
                    return
                raise self._error(response, protocol.parse_json(response.content))
            lines = response.aiter_lines()
            last_news = loop.time()
            while True:
                remaining = idle - (loop.time() - last_news)
                if remaining <= 0:
                    outcome.ended = "idle"
                    return
                try:
                    # asyncio.timeout, not wait_for: no task is spawned for every line read
                    async with asyncio.timeout(remaining):
                        line = await anext(lines)
                except StopAsyncIteration:
                    outcome.ended = "closed"
                    return
                except TimeoutError:
                    outcome.ended = "idle"
                    return
                kind, fields = protocol.parse_stream_line(line)
                if kind != "task" or fields is None:
                    continue  # heartbeats keep the connection, not the task, alive
                last_news = loop.time()
                outcome.news = True
                update = protocol.task_update(protocol.merge(snapshot, fields))
                if update.status is JobStatus.COMPLETED and not update.output_url:
                    # A partial line may carry the status without the output: read it whole.
                    update = protocol.task_update(protocol.merge(snapshot, await self.get_task(task_id)))
                yield update
                if update.status.terminal:
                    return

    # -- cancel and webhooks -------------------------------------------------------------

    async def cancel(self, job: Job) -> None:
        task_id = _task_id(job)
        response = await self._send("POST", f"/tasks/{task_id}/cancel")
        if response.status_code == 409:
            return  # invalid_transition: the task already ended, there is nothing to cancel
        payload = protocol.parse_json(response.content)
        if not response.is_success or protocol.is_error_envelope(payload):
            raise self._error(response, payload)

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> JobUpdate:
        """An inference.sh callback (most likely the task JSON, maybe wrapped) as an update.
        Unsigned: the core confirms it with ``poll`` before trusting it."""
        payload = protocol.parse_json(body)
        if payload is None or protocol.is_error_envelope(payload):
            raise InputError("webhook", "the body is not an inference.sh task payload (not JSON)")
        task = protocol.unwrap(payload)
        if isinstance(task, dict) and isinstance(task.get("task"), dict):
            task = task["task"]
        if not isinstance(task, dict) or not protocol.task_id_of(task):
            raise InputError("webhook", "the body is not an inference.sh task payload (no task id)")
        return protocol.task_update(task)


class _Connection:
    """How one stream connection went."""

    def __init__(self) -> None:
        self.news = False
        self.ended = "closed"


def _task_id(job: Job) -> str:
    if not job.task_id:
        raise ProviderError(f"job {job.id} has no inference.sh task id", provider="inferencesh")
    return job.task_id


__all__ = ["InferenceShProvider"]
