"""A loopback fake of the Kling API subset the plugin speaks, with switches for faults.

A Starlette app (``FakeKling(...).app``) and ``serve()``, which runs it under uvicorn on
127.0.0.1 and a free port in a background thread::

    run_fake(serve(access_key=AK, secret_key=SK, step_latency=0.05) as fake:
        provider = KlingProvider({"access_key": AK, "secret_key": SK, "base_url": fake.url})
        ...
        assert len(fake.creates) == 1 and fake.creates[0].claims["iss"] == AK

It speaks: ``POST /v1/videos/avatar/image2video`` (create, §4), ``GET .../{task_id or
external_task_id}`` (query, §5), ``GET /v1/videos/avatar/image2video`` (list, §6),
``POST /v1/audio/tts`` (§7, inline answer); it serves the output video at
``/cdn/avatar/{task_id}-output.mp4`` and the speech at ``/cdn/tts/{audio_id}.mp3``, and POSTs
each status change to a task's loopback ``callback_url`` (§8). ``POST /hooks/...`` is a sink
that accepts any callback. Every request is recorded (method, path, query, headers, JSON, raw
body, verified JWT claims) in ``fake.requests``.

With ``access_key`` and ``secret_key`` set, every API request must carry a JWT signed with
the secret (HS256, ``iss`` = access key, ``exp``/``nbf`` checked against the fake's clock,
shifted by ``clock_offset``), else 401 with 1001-1004 as Kling does; with ``api_key`` set, that
single key is accepted as the bearer token as well (the scheme Kling's console issues now).
The TTS refuses a voice not listed for its language (1201 "Voice id not found"), and an input
URL matching ``unreachable`` gets 1201 "Something went wrong when we tried to get the contents
of the file." as Kling answers for a URL it cannot download. Switches (``Switches``
in ``fake_model.py``) also cover: answers per endpoint as sequences (HTTP status, Kling code),
Retry-After, a task ending ``failed``, a concurrency limit (1303), a create whose answer
comes late (the task exists: a lost answer) or that stalls before creating, query by external
id switched off, and Kling's input rules (raw base64 only, exactly one of ``audio_id`` and
``sound_file``, unique ``external_task_id``, text <= 1000 characters).

Needs the ``[fake]`` extra (starlette, uvicorn). Run standalone with
``python -m talkinghead_kling.fake --port 8000``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
import uuid
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from talkinghead.testing.loopback import FakeBackend, Recorded, entered, fake_arguments, run_fake
from talkinghead.testing.loopback import request_base as _base

from .fake_model import CODES, DEFAULT_CODES, ENDPOINTS, TERMINAL, FakeTask, Switches, now_ms
from .protocol import VOICES

FETCH_FAILED = "Something went wrong when we tried to get the contents of the file."

__all__ = ["ENDPOINTS", "FakeKling", "FakeTask", "Recorded", "Switches", "serve"]

AVATAR = "/v1/videos/avatar/image2video"
TTS = "/v1/audio/tts"


class FakeKling(FakeBackend):
    """The fake's state, switches and Starlette app. ``url`` is set by ``serve()``."""

    name = "kling"
    switches_type = Switches
    endpoints = ENDPOINTS
    output_path = "/cdn/avatar/{job}-output.mp4"

    # -- for tests -----------------------------------------------------------------------

    def reset(self, **switches: Any) -> FakeKling:
        """Forget every request, task and audio, and go back to the default switches (so one
        running server can serve many tests)."""
        self.tasks: dict[str, FakeTask] = {}
        self.audios: dict[str, dict[str, Any]] = {}
        return super().reset(**switches)

    @property
    def creates(self) -> list[Recorded]:
        return self.requests_to("create")

    def task_by_external_id(self, external_id: str) -> FakeTask | None:
        return next((t for t in self.tasks.values() if t.external_task_id == external_id), None)

    def now(self) -> float:
        """The fake's clock (epoch seconds), as used to check a JWT's ``exp`` and ``nbf``."""
        return time.time() + float(self.switches.clock_offset)

    # -- plumbing ------------------------------------------------------------------------

    def _next_id(self) -> str:
        self._counter += 1
        return str(862311975200000000 + self._counter)  # 18-digit numeric strings, as seen live

    def _ok(self, data: Any) -> JSONResponse:
        return JSONResponse({"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": data})

    def _fail(self, status: int, code: int, message: str) -> JSONResponse:
        headers = self._retry_after(status)
        body = {"code": code, "message": message, "request_id": str(uuid.uuid4())}
        return JSONResponse(body, status_code=status, headers=headers)

    def _code(self, code: int, message: str | None = None) -> JSONResponse:
        status, default = CODES.get(code, (400, "error"))
        return self._fail(status, code, message or default)

    def _auth(self, rec: Recorded) -> JSONResponse | None:
        """Kling's auth rules: the single API key as the bearer token (§2.2), or a JWT (§2.1):
        HS256 with the secret, ``iss`` = access key, inside ``nbf``..``exp``. 1001 empty, 1002
        invalid, 1003 not yet valid, 1004 expired."""
        auth = rec.header("authorization")
        if not auth:
            return self._code(1001)
        token = rec.token
        if not token:
            return self._code(1002)
        s = self.switches
        if s.api_key is not None and token == s.api_key:
            rec.claims = {"api_key": True}
            return None
        if not (s.access_key and s.secret_key):
            if s.api_key is not None:
                return self._code(1002, "API key not found")
            return None  # verification off: any bearer token will do
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, s.secret_key, algorithms=["HS256"],
                                options={"verify_exp": False, "verify_nbf": False,
                                         "require": ["iss", "exp", "nbf"]})
        except jwt.InvalidTokenError:
            return self._code(1002)
        if header.get("typ") != "JWT" or claims.get("iss") != s.access_key:
            return self._code(1002, "access key not found")
        now = self.now()
        if now < float(claims["nbf"]):
            return self._code(1003)
        if now >= float(claims["exp"]):
            return self._code(1004)
        rec.claims = claims
        return None

    def _failure(self, request: Request, entry: Any) -> JSONResponse | None:
        if isinstance(entry, int):
            if entry < 300:
                return None
            if entry >= 1000:
                return self._code(entry)
            code, message = DEFAULT_CODES.get(entry, (entry * 10, "error"))
            return self._fail(entry, code, message)
        status, code, *rest = entry
        if status < 300 and code == 0:
            return None
        return self._fail(status, code, rest[0] if rest else CODES.get(code, (status, "error"))[1])

    def _task_dto(self, task: FakeTask, base: str, status: str | None = None) -> dict[str, Any]:
        status = status or task.status()
        dto: dict[str, Any] = {
            "task_id": task.task_id, "task_status": status,
            "task_status_msg": (task.error or "") if status == "failed" else "",
            "task_info": {"external_task_id": task.external_task_id} if task.external_task_id else {},
            "created_at": task.created_ms,
            "updated_at": task.created_ms + int(1000 * task.step_latency * task.statuses.index(status))
            if status in task.statuses else now_ms(),
        }
        if status == "succeed":
            video: dict[str, Any] = {"id": str(int(task.task_id) + 500000000),
                                     "url": f"{base}/cdn/avatar/{task.task_id}-output.mp4"}
            if self.switches.output_duration is not None:
                video["duration"] = self.switches.output_duration
            dto["task_result"] = {"videos": [video]}
            rate = 0.8 if task.body.get("mode") == "pro" else 0.4
            seconds = float(self.switches.output_duration or 0)
            dto["final_unit_deduction"] = f"{seconds * rate:.1f}"
        return dto

    # -- endpoints -----------------------------------------------------------------------

    @entered("create", f"POST {AVATAR}")
    async def create(self, request: Request, rec: Recorded) -> Response:
        s, tasks = self.switches, self.tasks  # a reset during the stall leaves the next test's tasks alone
        if s.create_stall:
            await asyncio.sleep(s.create_stall)
        body = rec.json if isinstance(rec.json, dict) else None
        if body is None:
            return self._code(1200, "the body must be a JSON object")
        if (refusal := self._refuse(body)) is not None:
            return refusal
        if s.concurrency is not None:
            running = sum(1 for t in self.tasks.values() if t.status() not in TERMINAL)
            if running >= s.concurrency:
                return self._code(1303)
        statuses = s.statuses if s.task_error is None else (*s.statuses[:-1], "failed")
        task = FakeTask(self._next_id(), body.get("external_task_id") or None, body, s.task_error,
                        statuses=statuses, step_latency=s.step_latency)
        tasks[task.task_id] = task
        base = _base(request)
        if body.get("callback_url") and s.send_webhooks:
            self._spawn(self._deliver_callbacks(task, str(body["callback_url"]), base))
        if s.create_delay:
            await asyncio.sleep(s.create_delay)  # made and billed; the answer comes too late
        if s.answer_without_task_id:
            return self._ok({"task_status": "submitted", "created_at": task.created_ms})
        answer = self._task_dto(task, base, status=statuses[0])
        if not task.external_task_id:
            answer.pop("task_info")  # seen live: no task_info when no external id was sent
        answer.pop("task_status_msg", None)
        return self._ok(answer)

    def _refuse(self, body: dict[str, Any]) -> JSONResponse | None:
        """Kling's input rules (§4), answered 400/1201 with a message naming the field."""
        image = body.get("image")
        if not isinstance(image, str) or not image:
            return self._code(1201, "image is required")
        if (bad := _media_problem("image", image)) is not None:
            return self._code(1201, bad)
        for value in (image, body.get("sound_file")):
            if isinstance(value, str) and value.startswith(("http://", "https://")) and \
                    any(part in value for part in self.switches.unreachable):
                return self._code(1201, FETCH_FAILED)
        audio_id, sound = body.get("audio_id") or None, body.get("sound_file") or None
        if (audio_id is None) == (sound is None):
            return self._code(1201, "exactly one of audio_id and sound_file must be set")
        if sound is not None and (bad := _media_problem("sound_file", str(sound))) is not None:
            return self._code(1201, bad)
        if audio_id is not None and str(audio_id) not in self.audios:
            return self._code(1201, f"audio_id {audio_id} does not exist or has expired")
        if body.get("mode", "std") not in ("std", "pro"):
            return self._code(1201, f"mode must be std or pro, not {body.get('mode')!r}")
        if len(str(body.get("prompt") or "")) > 2500:
            return self._code(1201, "prompt must not exceed 2500 characters")
        external = body.get("external_task_id")
        if external and self.task_by_external_id(str(external)) is not None:
            return self._code(1201, f"external_task_id {external} already exists")
        return None

    @entered("query", f"GET {AVATAR}/{{tid}}")
    async def query(self, request: Request, rec: Recorded) -> Response:
        key = request.path_params["tid"]
        task = self.tasks.get(key)
        if task is None and self.switches.external_lookup:
            task = self.task_by_external_id(key)
        if task is None:
            return self._code(1203, "task not found")
        return self._ok(self._task_dto(task, _base(request)))

    @entered("list", f"GET {AVATAR}")
    async def list_tasks(self, request: Request, rec: Recorded) -> Response:
        try:
            page = int(request.query_params.get("pageNum", 1))
            size = int(request.query_params.get("pageSize", 30))
        except ValueError:
            return self._code(1201, "pageNum and pageSize must be integers")
        if not (1 <= page <= 1000 and 1 <= size <= 500):
            return self._code(1201, "pageNum is 1-1000 and pageSize 1-500")
        newest = sorted(self.tasks.values(), key=lambda t: (t.created_ms, t.task_id), reverse=True)
        chunk = newest[(page - 1) * size: page * size]
        return self._ok([self._task_dto(t, _base(request)) for t in chunk])

    @entered("tts", f"POST {TTS}")
    async def tts(self, request: Request, rec: Recorded) -> Response:
        body = rec.json if isinstance(rec.json, dict) else {}
        text, voice, language = body.get("text"), body.get("voice_id"), body.get("voice_language", "zh")
        if not isinstance(text, str) or not text.strip():
            return self._code(1201, "text is required")
        if len(text) > 1000:
            return self._code(1201, "text must not exceed 1000 characters")
        if not voice:
            return self._code(1201, "voice_id is required")
        if language not in ("zh", "en"):
            return self._code(1201, f"voice_language must be zh or en, not {language!r}")
        if self.switches.check_voices and voice not in VOICES[language]:
            return self._code(1201, "Voice id not found")
        audio_id = self._next_id()
        duration = self.switches.tts_duration or f"{max(0.5, len(text.split()) * 0.4 + 0.3):.2f}"
        audio = {"id": audio_id, "url": f"{_base(request)}/cdn/tts/{audio_id}.mp3", "duration": duration}
        self.audios[audio_id] = {**audio, "text": text, "voice_id": voice, "voice_language": language}
        ms = now_ms()
        return self._ok({"task_id": self._next_id(), "task_status": "succeed", "task_status_msg": "",
                         "task_result": {"audios": [audio]}, "final_unit_deduction": "0.5",
                         "created_at": ms, "updated_at": ms})

    def _has_output(self, job_id: str) -> bool:
        task = self.tasks.get(job_id)
        return task is not None and task.status() == "succeed"

    @entered("audio", "GET /cdn/tts/{aid}.mp3", auth=False)
    async def audio(self, request: Request, rec: Recorded) -> Response:
        if request.path_params["aid"] not in self.audios:
            return Response("not found", status_code=404)
        return Response(b"ID3\x03\x00\x00\x00\x00\x00\x00", media_type="audio/mpeg")

    # -- callbacks (§8) ------------------------------------------------------------------

    async def _deliver_callbacks(self, task: FakeTask, url: str, base: str) -> None:
        """POST the bare task object on every status change after the first (the create's
        answer tells that one), as Kling does; loopback URLs only."""
        generation, sent, last = self._generation, 0, task.statuses[0]
        while True:
            status = task.status()
            reached = len(task.statuses) - 1 - task.statuses[::-1].index(status)
            # Every status change since the last callback, in order: a busy machine that
            # wakes this loop late must not skip one, as the platform would not.
            for passed in task.statuses[sent + 1:reached + 1]:
                if generation != self._generation:
                    return  # the fake was reset meanwhile: this task belongs to a finished test
                if passed != last:
                    await self._post_callback(url, task, self._task_dto(task, base, status=passed))
                    last = passed
            sent = max(sent, reached)
            if status in TERMINAL:
                return
            await asyncio.sleep(max(0.005, min(task.step_latency, 0.05)))

    async def _post_callback(self, url: str, task: FakeTask, payload: dict[str, Any]) -> None:
        delivery: dict[str, Any] = {"url": url, "task_id": task.task_id, "payload": payload}
        await self._deliver(url, delivery, json=payload)


def _media_problem(field: str, value: str) -> str | None:
    """Kling takes a URL or raw base64; a ``data:`` URI is refused (§4 notes)."""
    if value.startswith(("http://", "https://")):
        return None
    if value.startswith("data:"):
        return f"{field}: File is not in a valid base64 format"
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return f"{field}: File is not in a valid base64 format"
    return None


serve = FakeKling.serving


def main(argv: list[str] | None = None) -> None:
    parser = fake_arguments("Run the fake Kling API on 127.0.0.1.")
    parser.add_argument("--access-key", help="verify JWTs: the access key they must name (with --secret-key)")
    parser.add_argument("--secret-key", help="verify JWTs: the secret they must be signed with")
    parser.add_argument("--api-key", help="accept this single API key as the bearer token")
    args = parser.parse_args(argv)
    run_fake(serve(port=args.port, step_latency=args.step_latency, access_key=args.access_key,
                   secret_key=args.secret_key, api_key=args.api_key), "fake Kling API at {url} (Ctrl-C to stop)")


if __name__ == "__main__":
    main()
