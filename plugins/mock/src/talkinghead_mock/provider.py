"""The mock provider: a backend that never touches the network.

It behaves like a real one, a task that is queued, runs through progress steps and ends
with an MP4 at a URL, but the "URL" is a ``file://`` path and the video is the photo framed
to the requested aspect ratio over the input audio. Everything is scripted and repeatable:
task ids count up per instance (``mock-000001``, ...), each poll advances one step, and
failures are injected on request (``failures.py``). Every protocol call is recorded in
``provider.calls``.

By default tasks live in the instance's memory. With ``state_dir`` set they are also kept on
disk, so another instance (another process, after a crash) can follow them, and a task whose
create answer was lost can be found again by our job id (``find_task``); the file layout and
what several processes sharing it may see are described in ``state.py``.

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
    state_dir    TALKINGHEAD_MOCK_STATE_DIR  none   keep task state on disk (``state.py``)

A task keeps the ``steps``, ``latency`` and run-time failure of the instance that submitted
it (the backend's schedule, not the poller's). Submit-stage failure injection (``after``,
``times``) counts per instance. Two processes polling a shared task at the same instant may
both render its video, each to a temp name renamed into place, so the result is whole.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talkinghead.errors import ConfigError, InputError
from talkinghead.models import RESOLUTIONS, Job, JobStatus, JobUpdate, Quote, Route, frame_ratio
from talkinghead.output_dir import OutputDir
from talkinghead.provider import Provider

from .failures import FailSpec, injected_error
from .state import MockTask, TaskStore

if TYPE_CHECKING:  # asyncio is imported in the coroutines: registering the mock stays light
    import asyncio

    from talkinghead.media import PreparedRequest

MODEL = "mock-avatar"
TEXT_CHARS_PER_SECOND = 15  # a brisk speaking rate; text renders as silence this long
URL_AUDIO_SECONDS = 5.0     # the mock cannot fetch URL audio, so it renders this much silence


@dataclass
class MockCall:
    """One protocol call, as a test would want to assert on it."""

    method: str                         # submit | poll | cancel | find_task | parse_webhook
    job_id: str | None
    task_id: str | None
    request: Any = None                 # the AvatarRequest, on submit
    prepared: PreparedRequest | None = None


class MockProvider(Provider):
    """Provider ``mock``, model ``mock-avatar``: real MP4s, scripted progress and failures."""

    name = "mock"
    env_vars = ()  # nothing to configure: always usable
    marks_create = True
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
        self.store = TaskStore(Path(state_dir).expanduser().absolute() if state_dir else None)
        self._deliveries: set[asyncio.Future] = set()  # webhook callbacks on their way
        output_dir = self.config.get("output_dir")
        self._outputs = OutputDir(Path(output_dir) if output_dir
                                  else self.state_dir / "outputs" if self.state_dir else None, "talkinghead-mock-")
        self.calls: list[MockCall] = []
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

    @property
    def state_dir(self) -> Path | None:
        """Where tasks are kept on disk, or None: in memory only."""
        return self.store.state_dir

    @property
    def lookup_is_authoritative(self) -> bool:  # type: ignore[override]  # read-only, per instance
        """With a state dir every task is on disk under our job id, whoever created it."""
        return self.state_dir is not None

    @property
    def tasks(self) -> dict[str, MockTask]:
        """The tasks this instance holds, by task id."""
        return self.store.tasks

    # -- declaration ---------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [Route(
            provider=self.name, model=MODEL, modes=("std", "pro"),
            price_per_second={"std": self.price_std, "pro": self.price_pro},
            aspect="controls", aspect_ratios=("16:9", "9:16", "1:1"), native_text=True, kind="test",
            voice_any=True, languages=(), resolutions=RESOLUTIONS, seed=True,
            price_source="mock: config price_std/price_pro or TALKINGHEAD_MOCK_PRICE_STD/_PRO",
        )]

    def stand_in(self, model: str, declared: list[Route]) -> Route | None:
        """The mock impersonates a model: the declarations (inputs, limits, price) of its first
        cloud route by provider name, so an app's tests meet that model's rules and quotes."""
        if not declared:
            return None
        template = min(declared, key=lambda r: r.provider)
        return template.model_copy(update={
            "provider": self.name, "kind": "test",
            "price_source": f"mock impersonating {template.id}: {template.price_source}"})

    def estimate(self, prepared: PreparedRequest, route: Route) -> Quote:
        # The mock knows exactly how long it will render text and URL audio, so it quotes
        # that instead of the base class's upper bound.
        mode = prepared.request.mode
        resolution = route.resolution_for(prepared.request)
        price = route.price_for(mode, resolution)  # by tier or by resolution, as the route declares
        seconds = route.billed_seconds(self.output_seconds(prepared))
        return Quote(provider=route.provider, model=route.model, mode=mode, seconds=round(seconds, 3),
                     price_per_second=price, cost_usd=round(seconds * price, 4), resolution=resolution,
                     unconfirmed=route.price_unconfirmed, min_billed_seconds=route.min_billed_seconds,
                     round_up=route.round_up)

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

        source = audio.path if audio.kind == "path" else audio.data
        if source is None:
            raise InputError(audio.field, "has no content to measure", value=audio.origin)
        return audio_duration(source)

    # -- the protocol ----------------------------------------------------------------------

    async def submit(self, job: Job, prepared: PreparedRequest) -> JobUpdate:
        call = self._record("submit", job, request=prepared.request, prepared=prepared)
        attempt, self._attempts = self._attempts, self._attempts + 1
        if self.fail and self.fail.stage == "submit" and attempt >= self.fail.after:
            if self._inject("submit"):
                self.store.log_call("submit", job.id, None, error=self.fail.kind)
                raise injected_error(self.fail.kind, self.name, self.retry_after)
        self.create_sending(job)
        task_id = call.task_id = self.store.new_task_id()
        doomed = self.fail if self.fail and self.fail.stage == "run" and self._inject("run") else None
        update = JobUpdate(status=JobStatus.QUEUED, task_id=task_id, progress=0.0, message="queued")
        task = self.tasks[task_id] = MockTask(
            task_id=task_id, job_id=job.id, prepared=prepared, submitted_at=time.monotonic(), update=update,
            fail=doomed, steps=self.steps, latency=self.latency, submitted_unix=time.time(),
            webhook_url=job.webhook_url)
        self._finish(task, update)  # written to the state dir, if there is one
        self.store.log_call("submit", job.id, task_id)
        return update

    async def poll(self, job: Job) -> JobUpdate:
        self._record("poll", job)
        self.store.log_call("poll", job.id, job.task_id)
        task = self.store.get(job.task_id)
        if task is None:  # e.g. a job resumed in another process without a shared state_dir
            where = (f"in {self.state_dir}" if self.state_dir else
                     "in this provider instance (tasks live in memory unless state_dir is set)")
            return JobUpdate(status=JobStatus.FAILED, task_id=job.task_id, error_kind="not_found",
                             error=f"mock: no task {job.task_id!r} {where}")
        async with task.lock:  # concurrent polls (stream + webhook check) take one step each
            self.store.refresh(task)  # another process may have moved it on
            return await self._advance(task)

    async def _advance(self, task: MockTask) -> JobUpdate:
        import asyncio
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
            if self.store.cancel_requested(task):  # cancelled while we waited, maybe elsewhere
                return self._cancelled(task)
        task.step += 1
        if task.step < task.steps:
            return self._running(task)
        return await self._complete(task)

    async def cancel(self, job: Job) -> None:
        self._record("cancel", job)
        self.store.log_call("cancel", job.id, job.task_id)
        task = self.store.get(job.task_id)
        if task is None or task.update.status.terminal:
            return
        self.store.cancel(task)  # seen by the next poll, as with a real backend

    async def find_task(self, job: Job) -> JobUpdate | None:
        """The task a create call made for ``job`` when its answer was lost, found by our job
        id (as a real backend would by an external id set to ``job.id``): its current update,
        carrying its ``task_id``. With a state dir every task file is searched, so a task
        submitted by a process that died is found; without one, this instance's memory.
        None if no task was created for the job."""
        call = self._record("find_task", job)
        task = self.store.find_job(job.id)
        self.store.log_call("find_task", job.id, task.task_id if task else None)
        if task is None:
            return None
        call.task_id = task.task_id
        if not task.lock.locked():  # else a poll is moving it on: report what it had
            self.store.refresh(task)
        return task.update

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
        output = data.get("output")
        if not isinstance(output, dict):
            output = {}
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
        task = self.store.get(task_id)
        if task is None:
            raise KeyError(task_id)
        if not task.lock.locked():
            self.store.refresh(task)
        from talkinghead.http import callback_payload

        payload = callback_payload(task_id, task.update, task.submitted_unix)
        # Two extras a real platform does not send, so tests can drive the receiver precisely.
        payload.update(progress=task.update.progress, error_kind=task.update.error_kind)
        return json.dumps(payload).encode()

    # -- rendering -----------------------------------------------------------------------

    @property
    def output_dir(self) -> Path:
        return self._outputs.path

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
        frame = video.frame_image(photo, frame_ratio(prepared.request.aspect_ratio, prepared.image.width,
                                                         prepared.image.height), self.size)
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
        import asyncio
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
        import asyncio
        ended = update.status.terminal and not (task.update and task.update.status.terminal)
        task.update = update  # what later polls (and webhook_body) report
        self.store.save(task)  # to the state dir, if there is one
        if ended and task.webhook_url:
            # As a real backend does: the callback goes out when the job ends.
            future = asyncio.ensure_future(self._deliver(task))
            self._deliveries.add(future)
            future.add_done_callback(self._deliveries.discard)
        return update

    async def _deliver(self, task: MockTask) -> None:
        from talkinghead.http import deliver_webhook

        if task.webhook_url is None:
            return
        await deliver_webhook(task.webhook_url, json.loads(self.webhook_body(task.task_id)), provider=self.name)

    async def aclose(self) -> None:
        """Let callbacks already on their way arrive before the event loop goes, then remove
        the temp folder of results this provider made for itself (a ``output_dir`` set in
        config is the user's and stays)."""
        import asyncio
        if self._deliveries:
            await asyncio.gather(*self._deliveries, return_exceptions=True)
        await self._outputs.remove()

    def _inject(self, stage: str) -> bool:
        """Whether to inject one more failure at ``stage``, counting it if so."""
        if self.fail is None or (self.fail.times is not None and self._injected[stage] >= self.fail.times):
            return False
        self._injected[stage] += 1
        return True


# inference.sh task statuses (current numbering, see docs/protocols/inference-sh.md §4).
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

def _status(value: Any) -> JobStatus:
    name = _STATUS_NAMES.get(value) if isinstance(value, int) and not isinstance(value, bool) else value
    status = _BY_NAME.get(name.lower()) if isinstance(name, str) else None
    if status is None:
        raise InputError("webhook", f"status {value!r} is not an inference.sh task status",
                         value=value, limit=sorted(_BY_NAME))
    return status


def _polls(n: int) -> str:
    return f"{n} poll" if n == 1 else f"{n} polls"
