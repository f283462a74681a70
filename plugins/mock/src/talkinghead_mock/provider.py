"""The mock provider: a backend that never touches the network.

It behaves like a real one, a task that is queued, runs through progress steps and ends
with an MP4 at a URL, but the "URL" is a ``file://`` path and the video is the photo framed
to the requested aspect ratio over the input audio. Everything is scripted and repeatable:
task ids count up per instance (``mock-000001``, ...), each poll advances one step, and
failures are injected on request. Every protocol call is recorded in ``provider.calls``.

By default tasks live in the instance's memory. With ``state_dir`` set they are also kept on
disk, so another instance (another process, after a crash) can follow them; see
"Persistent state" below.

Settings come from the ``config`` mapping (the ``[providers.mock]`` table or client keyword
arguments) and fall back to environment variables, so the CLI can be scripted too:

    key          env var                     default
    latency      TALKINGHEAD_MOCK_LATENCY    0      seconds from submit to done, spread
                                                    evenly over the steps
    steps        TALKINGHEAD_MOCK_STEPS      4      polls to finish; progress = step/steps
    price_std    TALKINGHEAD_MOCK_PRICE_STD  0.01   USD per second of output
    price_pro    TALKINGHEAD_MOCK_PRICE_PRO  0.02
    fail         TALKINGHEAD_MOCK_FAIL       none   ``kind[@stage][:after]``, see FailSpec
    size         -                           360    frame short side in pixels
    output_dir   -                           a temp dir per instance, removed with it;
                                                    ``state_dir/outputs`` with a state dir
    retry_after  -                           0.1    seconds, on injected rate limits
    state_dir    TALKINGHEAD_MOCK_STATE_DIR  none   keep task state on disk (below)

Persistent state. With ``state_dir`` every task is written to ``state_dir/tasks/<id>.json``
(temp file + ``os.replace``, so never half written) whenever it changes, and ``poll``,
``cancel`` and ``webhook_body`` load a task they do not hold from there. Bytes inputs are
copied to ``state_dir/inputs/``; path inputs are kept by path (they must still exist when the
task renders) and URL inputs by URL. Results go to ``state_dir/outputs/`` and stay there.
Every ``submit``, ``poll`` and ``cancel`` is appended to ``state_dir/calls.jsonl``, one JSON
line each (``method``, ``job_id``, ``task_id``, ``pid``, ``time``, and ``error`` on an
injected submit failure), with a single ``O_APPEND`` write; ``read_calls`` reads it back.

Task ids stay ``mock-NNNNNN`` and unique across processes sharing a state dir: each is
reserved by creating its task file with ``O_EXCL``, taking the next free number. So ids are
still deterministic for one instance on a fresh state dir, and always without one.

Several processes may follow the same task; no lock is held across processes. Each poll
re-reads the task file (under the task's in-process lock), takes its step and writes the
whole task back. Two processes polling the same task at the same instant may both take the
same step (the task then needs one poll more, never fewer) and may both render the final
video, each to a temp name renamed into place, so the result is whole either way. A cancel
also leaves a marker file (``tasks/<id>.cancel``) that no task write removes, so a poll
racing it in another process cannot lose it. A task's ``steps`` and ``latency`` are those of
the instance that submitted it (the backend's schedule, not the poller's), and its latency is
measured in wall-clock time from submit, so a task resumed after a crash is due when it
would have been. Submit-stage failure injection (``after``, ``times``) counts per instance.
Nothing is fsync'ed: state survives a killed process, not a power cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from talkinghead.errors import (
    BillingError,
    ConfigError,
    ContentPolicyError,
    InputError,
    ProviderTimeout,
    RateLimitError,
    ServerError,
)
from talkinghead.models import ASPECT_RATIOS, AvatarRequest, Job, JobStatus, JobUpdate, Quote, Route
from talkinghead.provider import Provider

if TYPE_CHECKING:
    from talkinghead.media import MediaFile, PreparedRequest

MODEL = "mock-avatar"
TEXT_CHARS_PER_SECOND = 15  # a brisk speaking rate; text renders as silence this long
URL_AUDIO_SECONDS = 5.0     # the mock cannot fetch URL audio, so it renders this much silence

FAIL_KINDS = ("rate_limited", "server_error", "content_policy", "timeout", "billing")

STATE_VERSION = 1                                   # of the task files in state_dir/tasks
_TASK_FILE = re.compile(r"mock-(\d+)\.json")
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")       # task ids we will look up on disk


@dataclass(frozen=True)
class FailSpec:
    """An injected failure: ``kind[@stage][:after]``, e.g. ``server_error@run:2``.

    * at ``submit`` (the default) the first ``after`` submits succeed, later ones raise the
      typed error a real backend's HTTP error would map to;
    * at ``run`` each job answers ``after`` polls normally, then its next poll reports it
      FAILED with ``error_kind=kind``; ``timeout@run`` instead never finishes, so the
      core's own wait timeout has to fire.

    ``times`` (mapping form only) stops injecting after that many failures, e.g.
    ``{"kind": "rate_limited", "times": 1}`` fails once and then lets a retry through.
    """

    kind: str
    stage: Literal["submit", "run"] = "submit"
    after: int = 0
    times: int | None = None

    @classmethod
    def parse(cls, value: str | Mapping[str, Any] | FailSpec | None) -> FailSpec | None:
        if value is None or value == "" or isinstance(value, FailSpec):
            return value or None
        if isinstance(value, Mapping):
            unknown = set(value) - {"kind", "stage", "after", "times"}
            if unknown:
                raise ConfigError(f"mock fail: unknown keys {sorted(unknown)}")
            try:
                times = value.get("times")
                spec = cls(str(value.get("kind")), str(value.get("stage", "submit")),
                           int(value.get("after", 0)), None if times is None else int(times))
            except (TypeError, ValueError):
                raise ConfigError(f"mock fail: after and times must be integers in {value!r}") from None
        else:
            m = re.fullmatch(r"\s*(\w+)(?:@(\w+))?(?::(\d+))?\s*", str(value))
            if not m:
                raise ConfigError(f"mock fail: {value!r} is not kind[@stage][:after_polls]")
            spec = cls(m[1], m[2] or "submit", int(m[3] or 0))
        if spec.kind not in FAIL_KINDS:
            raise ConfigError(f"mock fail: kind {spec.kind!r} is not one of {list(FAIL_KINDS)}")
        if spec.stage not in ("submit", "run"):
            raise ConfigError(f"mock fail: stage {spec.stage!r} is not 'submit' or 'run'")
        if spec.after < 0 or (spec.times is not None and spec.times < 0):
            raise ConfigError("mock fail: after and times must not be negative")
        return spec


@dataclass
class MockCall:
    """One protocol call, as a test would want to assert on it."""

    method: str                         # submit | poll | cancel | parse_webhook
    job_id: str | None
    task_id: str | None
    request: Any = None                 # the AvatarRequest, on submit
    prepared: PreparedRequest | None = None


@dataclass
class MockTask:
    """The backend's side of one job."""

    task_id: str
    job_id: str
    prepared: PreparedRequest
    submitted_at: float                 # time.monotonic()
    fail: FailSpec | None = None        # this job is doomed at run time
    polls: int = 0
    step: int = 0
    cancelled: bool = False
    output_path: Path | None = None
    update: JobUpdate | None = None     # the latest answer; terminal ones are repeated
    steps: int = 4                      # the schedule it was submitted with
    latency: float = 0.0
    submitted_unix: float = 0.0         # time.time() at submit, for other processes
    etag: str | None = None             # of the state last written or read (state_dir only)
    stored_inputs: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)


class MockProvider(Provider):
    """Provider ``mock``, model ``mock-avatar``: real MP4s, scripted progress and failures."""

    name = "mock"
    env_vars = ()  # nothing to configure: always usable
    poll_interval = (0.0, 1.0, 0.0)  # polls cost nothing here, so tests need not wait

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self.latency = self._setting("latency", "TALKINGHEAD_MOCK_LATENCY", 0.0, float)
        self.steps = max(1, self._setting("steps", "TALKINGHEAD_MOCK_STEPS", 4, int))
        self.price_std = self._setting("price_std", "TALKINGHEAD_MOCK_PRICE_STD", 0.01, float)
        self.price_pro = self._setting("price_pro", "TALKINGHEAD_MOCK_PRICE_PRO", 0.02, float)
        self.fail = FailSpec.parse(self._setting("fail", "TALKINGHEAD_MOCK_FAIL", None, None))
        self.size = self._setting("size", None, 360, int)
        self.retry_after = self._setting("retry_after", None, 0.1, float)
        state_dir = self._setting("state_dir", "TALKINGHEAD_MOCK_STATE_DIR", None, None)
        self.state_dir: Path | None = Path(state_dir).expanduser().absolute() if state_dir else None
        output_dir = self.config.get("output_dir")
        self._output_dir = (Path(output_dir) if output_dir
                            else self.state_dir / "outputs" if self.state_dir else None)
        self.calls: list[MockCall] = []
        self.tasks: dict[str, MockTask] = {}
        self._created = 0                      # the task id counter: the last number taken
        self._made: set[Path] = set()          # state dirs known to exist
        self._attempts = 0                     # submit calls, failed ones included
        self._injected = {"submit": 0, "run": 0}

    def _setting(self, key: str, env: str | None, default: Any, cast: Any) -> Any:
        """``config[key]``, else ``$env``, else ``default``; a bad value is a ConfigError."""
        value = self.config.get(key)
        source = key
        if value is None and env and os.environ.get(env, "") != "":
            value, source = os.environ[env], env
        if value is None:
            return default
        try:
            return cast(value) if cast else value
        except (TypeError, ValueError):
            raise ConfigError(f"mock: {source}={value!r} is not a valid {cast.__name__}") from None

    # -- declaration ---------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [Route(
            provider=self.name, model=MODEL, modes=("std", "pro"),
            price_per_second={"std": self.price_std, "pro": self.price_pro},
            aspect_ratios=ASPECT_RATIOS, native_text=True, kind="test",
            price_source="mock: config price_std/price_pro or TALKINGHEAD_MOCK_PRICE_STD/_PRO",
        )]

    def estimate(self, prepared: PreparedRequest, route: Route) -> Quote:
        # The mock knows exactly how long it will render text and URL audio, so it quotes
        # that instead of the base class's upper bound.
        mode = prepared.request.mode
        price = float(route.price_per_second[mode])
        seconds = self.output_seconds(prepared)
        return Quote(provider=route.provider, model=route.model, mode=mode, seconds=round(seconds, 3),
                     price_per_second=price, cost_usd=round(seconds * price, 4))

    def output_seconds(self, prepared: PreparedRequest) -> float:
        """How long the result will be: the audio's length; text as silence at 15 chars/s
        (2 to 300 s); URL audio, which the mock cannot fetch, as 5 s of silence."""
        audio, text = prepared.audio, prepared.request.text
        if audio is None:
            return min(300.0, max(2.0, len(text or "") / TEXT_CHARS_PER_SECOND))
        if audio.kind == "url":
            return URL_AUDIO_SECONDS
        if audio.duration_s:
            return float(audio.duration_s)
        from talkinghead.video import audio_duration  # not measured upstream: measure here

        return audio_duration(audio.path if audio.kind == "path" else audio.data)

    # -- the protocol ----------------------------------------------------------------------

    async def submit(self, job: Job, prepared: PreparedRequest) -> JobUpdate:
        call = self._record("submit", job, request=prepared.request, prepared=prepared)
        attempt, self._attempts = self._attempts, self._attempts + 1
        if self.fail and self.fail.stage == "submit" and attempt >= self.fail.after:
            if self._inject("submit"):
                self._log_call("submit", job, None, error=self.fail.kind)
                raise self._error(self.fail.kind)
        task_id = call.task_id = self._new_task_id()
        doomed = self.fail if self.fail and self.fail.stage == "run" and self._inject("run") else None
        update = JobUpdate(status=JobStatus.QUEUED, task_id=task_id, progress=0.0, message="queued")
        task = self.tasks[task_id] = MockTask(
            task_id=task_id, job_id=job.id, prepared=prepared, submitted_at=time.monotonic(),
            fail=doomed, steps=self.steps, latency=self.latency, submitted_unix=time.time())
        self._finish(task, update)  # written to the state dir, if there is one
        self._log_call("submit", job, task_id)
        return update

    async def poll(self, job: Job) -> JobUpdate:
        self._record("poll", job)
        self._log_call("poll", job, job.task_id)
        task = self._task(job.task_id)
        if task is None:  # e.g. a job resumed in another process without a shared state_dir
            where = (f"in {self.state_dir}" if self.state_dir else
                     "in this provider instance (tasks live in memory unless state_dir is set)")
            return JobUpdate(status=JobStatus.FAILED, task_id=job.task_id, error_kind="not_found",
                             error=f"mock: no task {job.task_id!r} {where}")
        async with task.lock:  # concurrent polls (stream + webhook check) take one step each
            self._refresh(task)  # another process may have moved it on
            return await self._advance(task)

    async def _advance(self, task: MockTask) -> JobUpdate:
        if task.update.status.terminal:
            return task.update
        if task.cancelled:
            return self._cancelled(task)
        task.polls += 1
        if task.fail and task.polls > task.fail.after:
            if task.fail.kind == "timeout":
                # Stuck for good. A short pause keeps a zero-interval poll loop from spinning.
                await asyncio.sleep(0.005)
                return self._running(task)
            return self._finish(task, JobUpdate(
                status=JobStatus.FAILED, task_id=task.task_id, error_kind=task.fail.kind,
                error=f"mock: injected {task.fail.kind} after {_polls(task.fail.after)}"))

        # Step k is not reached before k/steps of the latency has passed since submit.
        due = task.submitted_at + task.latency * (task.step + 1) / task.steps
        if (wait := due - time.monotonic()) > 0:
            await asyncio.sleep(wait)
            if self._cancel_requested(task):  # cancelled while we waited, maybe elsewhere
                return self._cancelled(task)
        task.step += 1
        if task.step < task.steps:
            return self._running(task)
        return await self._complete(task)

    async def cancel(self, job: Job) -> None:
        self._record("cancel", job)
        self._log_call("cancel", job, job.task_id)
        task = self._task(job.task_id)
        if task is None or task.update.status.terminal:
            return
        task.cancelled = True  # seen by the next poll, as with a real backend
        if self.state_dir is not None:
            self._cancel_marker(task.task_id).touch()  # survives any racing task write
            if not task.lock.locked():  # else the poll holding it writes the flag
                self._refresh(task)
                if not task.update.status.terminal:
                    self._save(task)

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> JobUpdate:
        """Parse a callback shaped like an inference.sh task: ``id``, ``status`` (the
        platform's number or its lowercase name), ``output.video.uri``, ``error``."""
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise InputError("webhook", "body is not JSON", value=body[:80]) from None
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            data = data["data"]  # the platform's {"data": {...}} envelope
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise InputError("webhook", "expected a JSON object with a task 'id'", value=body[:80])
        self.calls.append(MockCall("parse_webhook", None, data["id"]))
        status = _status(data.get("status"))
        output = data.get("output") if isinstance(data.get("output"), dict) else {}
        video = output.get("video")
        url = video.get("uri") if isinstance(video, dict) else video if isinstance(video, str) else None
        seconds = None
        meta = (output.get("output_meta") or {}).get("outputs") or []
        if meta and isinstance(meta[0], dict) and isinstance(meta[0].get("seconds"), (int, float)):
            seconds = float(meta[0]["seconds"])
        rejected = data.get("status") in (13, "rejected")  # refused at admission: no balance
        progress = data.get("progress")
        if not isinstance(progress, (int, float)) or isinstance(progress, bool) or not 0 <= progress <= 100:
            progress = None
        return JobUpdate(status=status, task_id=data["id"], progress=progress,
                         output_url=url, duration_s=seconds, error=data.get("error") or None,
                         error_kind="billing" if rejected else data.get("error_kind"))

    def webhook_body(self, task_id: str) -> bytes:
        """The callback a real backend would send for this task's current state, for tests
        of webhook handling: feed it to ``parse_webhook`` or POST it to the receiver."""
        task = self._task(task_id)
        if task is None:
            raise KeyError(task_id)
        if not task.lock.locked():
            self._refresh(task)
        update = task.update
        output = None
        if update.output_url:
            output = {"video": {"uri": update.output_url, "content_type": "video/mp4"},
                      "output_meta": {"outputs": [{"type": "video", "seconds": update.duration_s}]}}
        return json.dumps({"id": task_id, "status": _STATUS_NUMBER[update.status],
                           "progress": update.progress, "output": output, "error": update.error,
                           "error_kind": update.error_kind}).encode()

    # -- rendering -----------------------------------------------------------------------

    @property
    def output_dir(self) -> Path:
        if self._output_dir is None:
            self._output_dir = Path(tempfile.mkdtemp(prefix="talkinghead-mock-"))
            # The client copies results out when it downloads them, so a temp dir of our own
            # goes with the provider (or the process) rather than piling up in /tmp.
            weakref.finalize(self, shutil.rmtree, self._output_dir, ignore_errors=True)
        self._output_dir.mkdir(parents=True, exist_ok=True)
        return self._output_dir

    def render(self, prepared: PreparedRequest, out: Path) -> float:
        """Write the result MP4: the photo framed to the aspect ratio over the audio (or
        silence). Blocking, so ``poll`` runs it in a thread. Returns its duration."""
        from talkinghead import video

        image, audio = prepared.image, prepared.audio
        photo = None if image.kind == "url" else image.path if image.kind == "path" else image.data
        sound = None
        if audio is not None and audio.kind != "url":
            sound = audio.path if audio.kind == "path" else audio.data
        seconds = self.output_seconds(prepared)
        frame = video.frame_image(photo, prepared.request.aspect_ratio, self.size)
        video.encode_mp4(out, frame, audio=sound, duration_s=seconds)
        return seconds

    def _cancelled(self, task: MockTask) -> JobUpdate:
        return self._finish(task, JobUpdate(status=JobStatus.CANCELLED, task_id=task.task_id,
                                            message="cancelled"))

    def _running(self, task: MockTask) -> JobUpdate:
        return self._finish(task, JobUpdate(
            status=JobStatus.RUNNING, task_id=task.task_id, message=f"step {task.step}/{task.steps}",
            progress=round(100.0 * task.step / task.steps, 2)))

    async def _complete(self, task: MockTask) -> JobUpdate:
        safe_job = re.sub(r"[^A-Za-z0-9_-]", "_", task.job_id)[:64]
        out = self.output_dir / f"{task.task_id}-{safe_job}.mp4"
        try:
            seconds = await asyncio.to_thread(self.render, task.prepared, out)
        except Exception as exc:  # a real backend reports a failed render as a failed task
            return self._finish(task, JobUpdate(
                status=JobStatus.FAILED, task_id=task.task_id, error_kind="server_error",
                error=f"mock: render failed: {type(exc).__name__}: {exc}"))
        task.output_path = out
        return self._finish(task, JobUpdate(
            status=JobStatus.COMPLETED, task_id=task.task_id, progress=100.0, message="completed",
            output_url=out.resolve().as_uri(), duration_s=round(seconds, 3)))

    # -- helpers -------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[MockCall]:
        return [c for c in self.calls if c.method == method]

    def _record(self, method: str, job: Job, **extra: Any) -> MockCall:
        call = MockCall(method, job.id, job.task_id, **extra)
        self.calls.append(call)
        return call

    def _finish(self, task: MockTask, update: JobUpdate) -> JobUpdate:
        task.update = update  # what later polls (and webhook_body) report
        self._save(task)
        return update

    # -- persistent state (state_dir) ----------------------------------------------------

    def _task(self, task_id: str | None) -> MockTask | None:
        """The task in memory, else loaded from the state dir (and kept), else None."""
        task = self.tasks.get(task_id or "")
        if task is None and self.state_dir is not None and task_id:
            data = self._read_state(task_id)
            if data is not None:
                task = self.tasks.setdefault(task_id, self._task_from(data))
        return task

    def _new_task_id(self) -> str:
        if self.state_dir is None:
            self._created += 1
            return f"mock-{self._created:06d}"
        tasks = self._state("tasks")
        if self._created == 0:
            self._created = _highest_task_number(tasks)
        while True:  # reserve the next free number: creating its file is atomic across processes
            self._created += 1
            task_id = f"mock-{self._created:06d}"
            try:
                os.close(os.open(tasks / f"{task_id}.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            except FileExistsError:  # another process took it: skip past everything taken
                self._created = max(self._created, _highest_task_number(tasks))
                continue
            return task_id

    def _state(self, *parts: str) -> Path:
        """A directory under the state dir, created on first use."""
        path = self.state_dir.joinpath(*parts)
        if path not in self._made:
            path.mkdir(parents=True, exist_ok=True)
            self._made.add(path)
        return path

    def _cancel_marker(self, task_id: str) -> Path:
        return self._state("tasks") / f"{task_id}.cancel"

    def _cancel_requested(self, task: MockTask) -> bool:
        if not task.cancelled and self.state_dir is not None:
            task.cancelled = self._cancel_marker(task.task_id).exists()
        return task.cancelled

    def _save(self, task: MockTask) -> None:
        """Write the whole task to ``state_dir/tasks/<id>.json``, atomically."""
        if self.state_dir is None:
            return
        task.etag = secrets.token_hex(8)  # tells a poller whether someone else wrote since
        if task.stored_inputs is None:  # once: inputs never change, bytes are copied out once
            task.stored_inputs = self._inputs_state(task)
        data = {
            "version": STATE_VERSION, "etag": task.etag, "task_id": task.task_id,
            "job_id": task.job_id, "status": task.update.status.value, "step": task.step,
            "steps": task.steps, "polls": task.polls, "latency": task.latency,
            "submitted_unix": task.submitted_unix, "cancelled": task.cancelled,
            "fail": None if task.fail is None else {
                "kind": task.fail.kind, "stage": task.fail.stage, "after": task.fail.after,
                "times": task.fail.times},
            "output_path": str(task.output_path) if task.output_path else None,
            "update": task.update.model_dump(mode="json"),
            "inputs": task.stored_inputs,
        }
        _atomic_write(self._state("tasks") / f"{task.task_id}.json",
                      json.dumps(data, indent=1).encode())

    def _inputs_state(self, task: MockTask) -> dict[str, Any]:
        """What a later process needs to render: the request, and each input by path, URL
        or (for bytes) a copy in ``state_dir/inputs``."""
        prepared = task.prepared
        request = prepared.request.model_dump(mode="json", exclude={"image", "audio"})
        media = {}
        for name, item in (("image", prepared.image), ("audio", prepared.audio)):
            if item is None:
                media[name] = None
                continue
            entry = {k: getattr(item, k) for k in (
                "kind", "filename", "format", "content_type", "size", "width", "height",
                "duration_s", "origin")}
            if item.kind == "path":
                entry["path"] = str(Path(item.path).absolute())
            elif item.kind == "url":
                entry["url"] = item.url
            else:
                suffix = f".{item.format}" if item.format else ".bin"
                copy = self._state("inputs") / f"{task.task_id}-{name}{suffix}"
                _atomic_write(copy, item.data or b"")
                entry["path"] = str(copy)
            media[name] = entry
        return {"request": request, **media}

    def _read_state(self, task_id: str) -> dict[str, Any] | None:
        if not _SAFE_ID.fullmatch(task_id):
            return None
        try:
            data = json.loads((self._state("tasks") / f"{task_id}.json").read_bytes())
        except (FileNotFoundError, ValueError):  # none, or only reserved (empty) so far
            return None
        return data if isinstance(data, dict) and data.get("version") == STATE_VERSION else None

    def _task_from(self, data: dict[str, Any]) -> MockTask:
        from talkinghead.media import MediaFile, PreparedRequest

        inputs = data["inputs"]

        def media(name: str) -> MediaFile | None:
            entry = inputs.get(name)
            if entry is None:
                return None
            kind, extra = entry["kind"], {}
            if kind == "url":
                extra["url"] = entry["url"]
            else:  # a path, or the copy of bytes: rendered from the file either way
                kind, extra["path"] = "path", Path(entry["path"])
            known = {k: entry.get(k) for k in ("format", "content_type", "size", "width",
                                               "height", "duration_s")}
            return MediaFile(name, kind, entry.get("filename") or name, origin=entry.get("origin") or "",
                             **known, **extra)

        image, audio = media("image"), media("audio")
        request = AvatarRequest(**inputs["request"], image=image.url or str(image.path),
                                audio=None if audio is None else audio.url or str(audio.path))
        fail = data.get("fail")
        age = max(0.0, time.time() - data["submitted_unix"])
        task = MockTask(
            task_id=data["task_id"], job_id=data["job_id"],
            prepared=PreparedRequest(request, image, audio),
            submitted_at=time.monotonic() - age, fail=FailSpec(**fail) if fail else None,
            polls=data["polls"], step=data["step"], cancelled=data["cancelled"],
            output_path=Path(data["output_path"]) if data.get("output_path") else None,
            update=JobUpdate.model_validate(data["update"]), steps=data["steps"],
            latency=data["latency"], submitted_unix=data["submitted_unix"], etag=data["etag"],
            stored_inputs=inputs)
        self._cancel_requested(task)
        return task

    def _refresh(self, task: MockTask) -> None:
        """Adopt the task file if another process wrote it since we last did."""
        if self.state_dir is None or task.update.status.terminal:
            return
        data = self._read_state(task.task_id)
        if data is not None and data["etag"] != task.etag:
            task.polls, task.step = data["polls"], data["step"]
            task.cancelled = task.cancelled or data["cancelled"]
            task.output_path = Path(data["output_path"]) if data.get("output_path") else None
            task.update = JobUpdate.model_validate(data["update"])
            task.etag = data["etag"]
        self._cancel_requested(task)

    def _log_call(self, method: str, job: Job, task_id: str | None, **extra: Any) -> None:
        """Append one line to ``state_dir/calls.jsonl``: one O_APPEND write, so lines from
        several processes never interleave."""
        if self.state_dir is None:
            return
        line = json.dumps({"method": method, "job_id": job.id, "task_id": task_id,
                           "pid": os.getpid(), "time": time.time(), **extra}) + "\n"
        self._state()
        fd = os.open(self.state_dir / "calls.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def _inject(self, stage: str) -> bool:
        """Whether to inject one more failure at ``stage``, counting it if so."""
        if self.fail.times is not None and self._injected[stage] >= self.fail.times:
            return False
        self._injected[stage] += 1
        return True

    def _error(self, kind: str) -> Exception:
        """The typed error a real provider raises for the matching HTTP answer."""
        p = self.name
        if kind == "rate_limited":
            return RateLimitError("injected rate limit", provider=p, status_code=429,
                                  retry_after=self.retry_after)
        if kind == "server_error":
            return ServerError("injected server error", provider=p, status_code=500)
        if kind == "content_policy":
            return ContentPolicyError("injected content policy refusal", provider=p, status_code=400)
        if kind == "timeout":
            return ProviderTimeout("injected timeout: no answer in time", provider=p)
        return BillingError("injected billing failure: insufficient balance", provider=p,
                            status_code=402)


# inference.sh task statuses (current numbering, see shared/protocols/inference-sh.md §4).
_STATUS_NAMES = {
    0: "unknown", 1: "received", 2: "queued", 3: "dispatched", 4: "preparing", 5: "serving",
    6: "setting_up", 7: "running", 8: "cancelling", 9: "uploading", 10: "completed",
    11: "failed", 12: "cancelled", 13: "rejected",
}
_BY_NAME = {
    **dict.fromkeys(("unknown", "received", "queued", "dispatched", "scheduled"), JobStatus.QUEUED),
    **dict.fromkeys(("preparing", "serving", "setting_up", "running", "cancelling", "uploading"),
                    JobStatus.RUNNING),
    "completed": JobStatus.COMPLETED, "failed": JobStatus.FAILED, "rejected": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
}
_STATUS_NUMBER = {JobStatus.QUEUED: 2, JobStatus.RUNNING: 7, JobStatus.COMPLETED: 10,
                  JobStatus.FAILED: 11, JobStatus.CANCELLED: 12}


def _status(value: Any) -> JobStatus:
    name = _STATUS_NAMES.get(value) if isinstance(value, int) and not isinstance(value, bool) else value
    status = _BY_NAME.get(name.lower()) if isinstance(name, str) else None
    if status is None:
        raise InputError("webhook", f"status {value!r} is not an inference.sh task status",
                         value=value, limit=sorted(_BY_NAME))
    return status


def _polls(n: int) -> str:
    return f"{n} poll" if n == 1 else f"{n} polls"


def read_calls(state_dir: str | os.PathLike[str], method: str | None = None) -> list[dict[str, Any]]:
    """The calls logged in ``state_dir/calls.jsonl`` by every process that shared it, oldest
    first: dicts with ``method`` (submit | poll | cancel), ``job_id``, ``task_id``, ``pid``,
    ``time`` and, on an injected submit failure, ``error``. ``method`` keeps only those."""
    try:
        text = (Path(state_dir) / "calls.jsonl").read_text()
    except FileNotFoundError:
        return []
    # Whatever follows the last newline is a line cut short by a killed writer: not a call.
    calls = [json.loads(line) for line in text.split("\n")[:-1] if line]
    return [c for c in calls if method is None or c["method"] == method]


def _highest_task_number(tasks: Path) -> int:
    return max((int(m[1]) for name in os.listdir(tasks) if (m := _TASK_FILE.fullmatch(name))),
               default=0)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path`` and rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
