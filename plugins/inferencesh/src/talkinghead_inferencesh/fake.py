"""A loopback fake of the inference.sh API subset the plugin speaks, with switches for faults.

A Starlette app (``FakeInferenceSh(...).app``) and ``serve()``, which runs it under uvicorn on
127.0.0.1 and a free port in a background thread::

    run_fake(serve(step_latency=0.05, failures={"create": [429, 200]}) as fake:
        provider = InferenceShProvider({"api_key": "k", "base_url": fake.url})
        ...
        assert len(fake.requests_to("create")) == 2

It speaks: ``POST /files`` + ``PUT`` to a presigned-looking upload URL on itself,
``POST /apps/run``, ``GET /tasks/{id}``, ``GET /tasks/{id}/status``, the NDJSON
``GET /tasks/{id}/stream``, ``POST /tasks/{id}/cancel``; it serves the output video at
``/outputs/{id}.mp4`` and POSTs the finished task to a run's ``webhook``; ``POST /hooks/...``
is a sink that accepts any webhook (point runs at ``fake.url + "/hooks/x"``). Every request is
recorded (method, path, query, headers, JSON body, raw body) in ``fake.requests``.

Tasks move through ``statuses`` one step per ``step_latency`` seconds of wall time, so a GET
and the stream agree. Switches (see ``Switches``) cover: HTTP failures per endpoint as status
sequences, Retry-After, 401 for a wrong key, 402, status 13 rejection, a task failing with
status 11, streams that drop mid-line, send only heartbeats or carry malformed lines, v1
wrapped or v2 bare envelopes, a slow create (client read timeout) and output shapes; and, in
the same failure queues, transport faults on a handled request (``fake_faults.py``: answer cut
mid-body, truncated, held back), plus per-task paths and outcomes (``per_task``).

Needs the ``[fake]`` extra (starlette, uvicorn). Run standalone with
``python -m talkinghead_inferencesh.fake --port 8000``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from talkinghead.testing.loopback import EarlyAnswer, FakeStorage, Recorded, entered, fake_arguments, run_fake
from talkinghead.testing.loopback import request_base as _base

from . import fake_apps
from .fake_faults import RESET, STALL, TRANSPORT_FAULTS, TRUNCATE, TransportFaults, mark
from .fake_model import ENDPOINTS, ERRORS, TERMINAL, FakeTask, Switches, now_iso

__all__ = ["ENDPOINTS", "RESET", "STALL", "TRUNCATE", "FakeInferenceSh", "FakeTask", "Recorded", "Switches",
           "serve"]


class FakeInferenceSh(FakeStorage):
    """The fake's state, switches and Starlette app. ``url`` is set by ``serve()``."""

    name = "inferencesh"
    switches_type = Switches
    endpoints = ENDPOINTS

    # -- for tests -----------------------------------------------------------------------

    def reset(self, **switches: Any) -> FakeInferenceSh:
        """Forget every request, task and file, and go back to the default switches (so one
        running server can serve many tests)."""
        self.tasks: dict[str, FakeTask] = {}
        self._stream_connections: dict[str, int] = {}
        return super().reset(**switches)

    @property
    def creates(self) -> list[Recorded]:
        return self.requests_to("create")

    # -- plumbing ------------------------------------------------------------------------

    def _next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"01jfake{prefix}{self._counter:0{26 - 7 - len(prefix)}d}"

    def _wrap(self, dto: Any, status: int = 200) -> Any:
        mode = self.switches.envelope
        if mode == "v1":
            return {"success": True, "status": status, "data": dto}
        if mode == "v3":
            return {"data": dto, "messages": []}
        return dto

    def _ok(self, dto: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(self._wrap(dto, status), status_code=status)

    def _problem(self, status: int, detail: str | None = None) -> Response:
        code, title, default = ERRORS.get(status, ("error", "Error", "error"))
        headers = self._retry_after(status)
        if self.switches.envelope == "v1":
            body = {"success": False, "status": status, "error": {"code": code, "message": detail or default}}
            return JSONResponse(body, status_code=status, headers=headers)
        body = {"type": f"https://api.inference.sh/errors/{code}", "title": title, "status": status,
                "detail": detail or default}
        return Response(json.dumps(body), status_code=status, headers=headers,
                        media_type="application/problem+json")

    def _failure(self, request: Request, status: int) -> Response | None:
        if status in TRANSPORT_FAULTS:
            mark(request.scope, status)  # handled as usual; the answer is damaged on the way out
        elif status >= 300:
            return self._problem(status)
        return None

    def _auth(self, rec: Recorded) -> Response | None:
        auth = rec.header("authorization") or ""
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return self._problem(401)
        if self.switches.api_key is not None and auth[7:] != self.switches.api_key:
            return self._problem(401, f"Invalid API key {auth[7:]!r}" if self.switches.echo_key else None)
        return None

    def _task(self, request: Request) -> FakeTask:
        """The task the path names, else the API's 404."""
        task = self.tasks.get(request.path_params["tid"])
        if task is None:
            raise EarlyAnswer(self._problem(404))
        return task

    def _task_dto(self, task: FakeTask, status: int | None = None, *, base: str) -> dict[str, Any]:
        status = task.status() if status is None else status
        return {
            "id": task.id, "status": status, "error": task.error if status in (11, 13) else None,
            "session_id": None, "app_id": "01jfakeapp0000000000000000", "function": "run",
            "infra": "cloud", "input": task.input, "webhook": task.webhook,
            "output": self._output(task, base) if status == 10 else None,
            "logs": [], "events": [{"id": f"ev{s}", "task_id": task.id, "status": s}
                                   for s in task.statuses if s <= status][-3:],
            "created_at": task.created_at, "updated_at": now_iso(),
        }

    def _output(self, task: FakeTask, base: str) -> Any:
        url = f"{base}/outputs/{task.id}.mp4"
        form = self.switches.output_form
        if form == "string":
            video: Any = url
        elif form == "url":
            video = {"url": url}
        else:
            video = {"uri": url, "content_type": "video/mp4", "filename": f"{task.id}.mp4",
                     "size": len(self.video)}
        out: dict[str, Any] = {"video": video}
        if self.switches.output_seconds is not None:
            extra = ({"quality": task.input.get("mode", "std"), "model": "kling-avatar"}
                     if fake_apps.app_name(task.app) == "klingai/avatar" else {"app": fake_apps.app_name(task.app)})
            out["output_meta"] = {"outputs": [{"type": "video", "seconds": self.switches.output_seconds,
                                               "extra": extra}]}
        return out

    # -- endpoints -----------------------------------------------------------------------

    @entered("files", "POST /files")
    async def create_files(self, request: Request, rec: Recorded) -> Response:
        records = (rec.json or {}).get("files") if isinstance(rec.json, dict) else None
        if not isinstance(records, list) or not records:
            return self._problem(400, "files: a non-empty list is required")
        base = _base(request)
        out = []
        for item in records:
            fid = self._next_id("file")
            name = str(item.get("filename") or fid)
            self.files[fid] = {"filename": name, "content_type": item.get("content_type"),
                               "size": item.get("size"), "data": None}
            out.append({"id": fid, "uri": f"{base}/files/{fid}/{name}",
                        "upload_url": f"{self.switches.upload_base or base}/upload/{fid}"
                                      f"?X-Expires=900&X-Signature=fakesig{fid[-4:]}",
                        "filename": name, "content_type": item.get("content_type"),
                        "size": item.get("size"), "path": "", "created_at": now_iso()})
        return self._ok(out)

    @entered("create", "POST /apps/run")
    async def run(self, request: Request, rec: Recorded) -> Response:
        s, tasks = self.switches, self.tasks  # a reset during the delay leaves the next test's tasks alone
        if s.create_delay:
            await asyncio.sleep(s.create_delay)
        body = rec.json if isinstance(rec.json, dict) else {}
        if not body.get("app"):
            return self._problem(422, "app field is required")
        if fake_apps.app_name(str(body["app"])) not in fake_apps.SCHEMAS:
            return self._problem(404, f"app {body['app']!r} not found")
        inputs = body.get("input")
        if not isinstance(inputs, dict):
            inputs = {}
        if (invalid := fake_apps.check(str(body["app"]), inputs)) is not None:
            return self._problem(422, invalid)  # the app's input schema refuses it: no task
        own = s.per_task(inputs) if s.per_task is not None else {}
        error = own.get("task_error", s.task_error)
        if s.reject:
            statuses, error = (13,), "insufficient balance: add credits or a payment method"
        else:
            statuses = tuple(own.get("statuses", s.statuses))
            statuses = statuses if error is None else (*statuses[:-1], 11)
        task = FakeTask(self._next_id("task"), body["app"], inputs, body.get("webhook"), error,
                        statuses=statuses, step_latency=own.get("step_latency", s.step_latency))
        tasks[task.id] = task
        if task.webhook and s.send_webhooks and not s.reject:
            self._spawn(self._deliver_webhook(task, _base(request)))
        answer = self._task_dto(task, statuses[0], base=_base(request))
        if s.answer_delay:
            await asyncio.sleep(s.answer_delay)  # made (and billed); the answer comes too late
        return self._ok(answer)

    @entered("get", "GET /tasks/{tid}")
    async def get_task(self, request: Request, rec: Recorded) -> Response:
        task = self._task(request)
        return self._ok(self._task_dto(task, base=_base(request)))

    @entered("list", "POST /tasks/list")
    async def list_tasks(self, request: Request, rec: Recorded) -> Response:
        """``POST /tasks/list`` (the JS SDK's ``tasks.list``): a ``CursorListResponse`` of the
        fake's tasks, newest first, ``limit`` per page, the cursor an offset."""
        body = rec.json if isinstance(rec.json, dict) else {}
        try:
            limit = max(1, min(100, int(body.get("limit") or 20)))
            start = int(body.get("cursor") or 0)
        except (TypeError, ValueError):
            return self._problem(400, "limit and cursor must be integers")
        newest = sorted(self.tasks.values(), key=lambda t: (t.created_at, t.id), reverse=True)
        chunk = newest[start:start + limit]
        more = start + limit < len(newest)
        return self._ok({"items": [self._task_dto(t, base=_base(request)) for t in chunk],
                         "next_cursor": str(start + limit) if more else "", "has_next": more,
                         "has_previous": start > 0, "items_per_page": limit})

    @entered("status", "GET /tasks/{tid}/status")
    async def task_status(self, request: Request, rec: Recorded) -> Response:
        task = self._task(request)
        return self._ok({"id": task.id, "status": task.status(), "updated_at": now_iso()})

    @entered("cancel", "POST /tasks/{tid}/cancel")
    async def cancel(self, request: Request, rec: Recorded) -> Response:
        task = self._task(request)
        if task.status() in TERMINAL:
            return self._problem(409)
        task.cancelled_at = time.monotonic()
        return self._ok({"id": task.id, "status": 8, "cancelled": True})

    def _has_output(self, job_id: str) -> bool:
        return job_id in self.tasks

    @entered("stream", "GET /tasks/{tid}/stream")
    async def stream(self, request: Request, rec: Recorded) -> Response:
        task = self._task(request)
        index = self._stream_connections.get(task.id, 0)
        self._stream_connections[task.id] = index + 1
        return StreamingResponse(self._lines(task, index, _base(request)),
                                 media_type="application/x-ndjson")

    async def _lines(self, task: FakeTask, index: int, base: str) -> AsyncIterator[bytes]:
        s = self.switches
        quiet, drops = index < s.stream_quiet, index < s.stream_drops
        start = last_beat = time.monotonic()
        if s.stream_malformed:
            yield b"this is not json\n"
            yield b'{"data": {"id": "' + task.id.encode() + b'", "sta\n'
            yield b"[1, 2, 3]\n"
            yield b'{"unrelated": true}\n'
        sent, last = 0, None
        while time.monotonic() - start < s.stream_max_seconds:
            now = time.monotonic()
            status = task.status(now)
            if not quiet and status != last:
                if drops and sent >= s.stream_drop_after:
                    yield b'{"data": {"id": "' + task.id.encode() + b'", "status": '
                    raise _StreamDrop("dropped on purpose")
                yield (json.dumps(self._stream_line(task, status, base)) + "\n").encode()
                sent, last = sent + 1, status
                if status in TERMINAL:
                    return
            await asyncio.sleep(max(0.001, min(s.heartbeat_interval, task.next_change(now))))
            if time.monotonic() - last_beat >= s.heartbeat_interval:
                yield b'{"type":"heartbeat"}\n'
                last_beat = time.monotonic()

    def _stream_line(self, task: FakeTask, status: int, base: str) -> dict[str, Any]:
        dto = self._task_dto(task, status, base=base)
        if not self.switches.stream_partial:
            if self.switches.stream_omit_output:
                dto["output"] = None
            return dto
        names = ["status", "updated_at"]
        if status == 10 and not self.switches.stream_omit_output:
            names.insert(1, "output")
        if status in (11, 13):
            names.insert(1, "error")
        return {"data": {"id": task.id, **{k: dto[k] for k in names}}, "fields": names}

    # -- webhooks ------------------------------------------------------------------------

    async def _deliver_webhook(self, task: FakeTask, base: str) -> None:
        url = task.webhook
        if url is None:  # spawned only for a task that named one
            return
        generation = self._generation
        # A fake task's status is a function of the clock: nothing sets an event to wait on.
        while task.status() not in TERMINAL:  # noqa: ASYNC110
            await asyncio.sleep(max(0.005, task.ends_at - time.monotonic()) if task.cancelled_at is None
                                else max(0.005, task.step_latency))
        if generation != self._generation:
            return  # the fake was reset meanwhile: this task belongs to a finished test
        payload = self._wrap(self._task_dto(task, base=base))
        delivery: dict[str, Any] = {"url": task.webhook, "task_id": task.id, "payload": payload}
        await self._deliver(url, delivery, json=payload)

    def _build_app(self) -> TransportFaults:
        return TransportFaults(super()._build_app(), lambda: self.switches.stall_seconds)


class _StreamDrop(Exception):
    """Raised inside a streaming body: uvicorn then cuts the connection mid-response."""


serve = FakeInferenceSh.serving


def main(argv: list[str] | None = None) -> None:
    parser = fake_arguments("Run the fake inference.sh API on 127.0.0.1.")
    parser.add_argument("--envelope", choices=["v1", "v2", "v3"], default="v2")
    args = parser.parse_args(argv)
    run_fake(serve(port=args.port, step_latency=args.step_latency, envelope=args.envelope),
             "fake inference.sh at {url} (Ctrl-C to stop)")


if __name__ == "__main__":
    main()
