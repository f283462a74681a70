"""The ``local`` provider: talking-head videos rendered on this machine, free, offline.

It behaves like a cloud backend: ``submit`` queues a render and answers at once with a task
id, ``poll`` reports real progress (frames encoded out of the total) and finally a
``file://`` URL, ``cancel`` stops the render between two frames. Renders run one at a time
(``workers``) in a thread pool: each already keeps both cores of a small machine busy.

Settings (the ``[providers.local]`` table, or client keyword arguments):

    key          default    meaning
    resolution   720        the short side (1280x720 at 16:9), or "WxH"
    seed         0          blinks and sway are drawn from it: same seed, same video
    workers      1          renders at a time
    output_dir   temp dir   where videos are written; the default is removed with the
                            provider (the client copies results out when it downloads them)

It takes audio only (``native_text=False``): for text, the core speaks it with a TTS engine
first (this plugin's ``espeak`` when no other is installed) and passes the phoneme timings
on, which then shape the mouth. Image and audio must be local (path, bytes, data URI): a
URL cannot be fetched here, and it is refused when the request is validated.
"""

from __future__ import annotations

# asyncio is imported inside the coroutines: registering the class (`talkinghead providers`,
# `estimate`) never loads it.
import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talkinghead.errors import ConfigError, InputError
from talkinghead.models import Job, JobStatus, JobUpdate, Route, frame_ratio
from talkinghead.output_dir import OutputDir
from talkinghead.provider import Provider

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from talkinghead.media import MediaFile, PreparedRequest

    from .face import Face

MODEL = "local-preview"
_FACE_CACHE = 16


@dataclass
class LocalTask:
    """One render, as the provider tracks it."""

    task_id: str
    job_id: str
    prepared: PreparedRequest
    out: Path
    status: JobStatus = JobStatus.QUEUED
    done: int = 0                      # frames encoded
    total: int = 0
    duration_s: float | None = None
    error: str | None = None
    error_kind: str | None = None
    webhook_url: str | None = None     # where to POST the callback when the render ends
    created: float = field(default_factory=time.time)
    stop: threading.Event = field(default_factory=threading.Event, repr=False)
    future: Future | None = field(default=None, repr=False)


class LocalProvider(Provider):
    """Provider ``local``, model ``local-preview``: renders on the CPU, price 0."""

    name = "local"
    env_vars = ()                      # nothing to configure: always usable
    poll_interval = (0.1, 1.5, 1.0)    # renders take seconds; polls are free

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self.resolution = self.config.get("resolution")
        if self.resolution is not None:  # the renderer (numpy, OpenCV) loads only to check one
            from .render import frame_dims

            try:
                frame_dims("16:9", self.resolution)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"local: resolution {self.resolution!r}: {exc}") from None
        self.seed = int(self.config.get("seed", 0))
        self.workers = max(1, int(self.config.get("workers", 1)))
        out = self.config.get("output_dir")
        self._outputs = OutputDir(Path(out).expanduser() if out else None, "talkinghead-local-")
        self.tasks: dict[str, LocalTask] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._faces: OrderedDict[tuple, Face] = OrderedDict()
        self._faces_lock = threading.Lock()

    def routes(self) -> list[Route]:
        return [self._route(MODEL, "free: rendered on this machine")]

    def _route(self, model: str, source: str) -> Route:
        return Route(provider=self.name, model=model, modes=("std", "pro"), aspect="controls",
                     aspect_ratios=("16:9", "9:16", "1:1"), price_per_second={"std": 0.0, "pro": 0.0},
                     native_text=False, prompt=False, kind="local", price_source=source)

    def route(self, model: str | None = None) -> Route:
        """Its own route, or its stand-in for ``model``: every job it holds renders here."""
        if model is None or model == MODEL:
            return super().route(model)
        return self._route(model, f"free: the local CPU preview stands in for {model}; not {model}'s output")

    def stand_in(self, model: str, declared: list[Route]) -> Route | None:
        """Any model a cloud route serves, rendered here as the same CPU preview at $0: the
        route says so."""
        if not declared:
            return None
        return self._route(model, f"free: the local CPU preview stands in for {model}; not {model}'s output")

    # -- before any work -----------------------------------------------------------------

    def validate(self, prepared: PreparedRequest, route: Route) -> None:
        """The shared route checks, local inputs only, and exactly one face of at least
        80 px, so a bad photo is refused before anything is queued. A quote (media read from
        their headers only: ``prepared.decoded`` false) skips the face, which needs numpy and
        OpenCV; the submit's validation looks for it."""
        super().validate(prepared, route)
        for media in (prepared.image, prepared.audio):
            if media is not None and media.kind == "url":
                raise InputError(media.field, f"the local renderer cannot fetch URLs ({media.url}); "
                                 f"download the {media.field} and give its path", value=media.url)
        if prepared.decoded:
            self.face(prepared.image)

    def face(self, image: MediaFile) -> Face:
        """The face in ``image``, detected once per file content (validate, then render)."""
        if image.kind == "path" and image.path is not None:
            stat = image.path.stat()
            key: tuple = ("path", str(image.path), stat.st_mtime_ns, stat.st_size)
        else:
            key = ("bytes", hashlib.sha256(image.data or b"").hexdigest())
        with self._faces_lock:
            if key in self._faces:
                self._faces.move_to_end(key)
                return self._faces[key]
        from .face import check_face

        face = check_face(_source(image))
        with self._faces_lock:
            self._faces[key] = face
            while len(self._faces) > _FACE_CACHE:
                self._faces.popitem(last=False)
        return face

    # -- the protocol --------------------------------------------------------------------

    async def submit(self, job: Job, prepared: PreparedRequest) -> JobUpdate:
        import asyncio
        if prepared.audio is None:
            raise InputError("text", "the local renderer needs audio, and no text-to-speech "
                             "engine made speech for this text (pip install talkinghead-local "
                             "brings espeak)")
        if prepared.image.kind == "url" or prepared.audio.kind == "url":
            self.validate(prepared, self.route())  # raises the URL error
        face = await asyncio.to_thread(self.face, prepared.image)
        task_id = f"local-{secrets.token_hex(6)}"
        task = LocalTask(task_id=task_id, job_id=job.id, prepared=prepared,
                         out=self.output_dir / f"{task_id}.mp4", webhook_url=job.webhook_url)
        self.tasks[task_id] = task
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor  # on the first render (start-up)

            self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                            thread_name_prefix="talkinghead-local")
        task.future = self._pool.submit(self._run, task, face)
        return JobUpdate(status=JobStatus.QUEUED, task_id=task_id, progress=0.0, message="queued")

    async def poll(self, job: Job) -> JobUpdate:
        import asyncio
        task = self.tasks.get(job.task_id or "")
        if task is None:
            out = self.output_dir / f"{job.task_id}.mp4"
            if job.task_id and out.is_file():  # finished by an earlier process (output_dir set)
                from talkinghead.video import audio_duration

                seconds = await asyncio.to_thread(audio_duration, out)
                return JobUpdate(status=JobStatus.COMPLETED, task_id=job.task_id, progress=100.0,
                                 output_url=out.resolve().as_uri(), duration_s=round(seconds, 3))
            return JobUpdate(status=JobStatus.FAILED, task_id=job.task_id, error_kind="not_found",
                             error=f"local: no render {job.task_id!r} in this process, and no "
                                   f"finished video in {self.output_dir}")
        return self._update(task)

    async def cancel(self, job: Job) -> None:
        task = self.tasks.get(job.task_id or "")
        if task is None or task.status.terminal:
            return
        task.stop.set()  # a running render stops before its next frame
        if task.future is not None and task.future.cancel():  # never started
            task.status = JobStatus.CANCELLED

    async def aclose(self) -> None:
        """Stop unfinished renders and wait for the worker to be idle."""
        import asyncio
        for task in self.tasks.values():
            if not task.status.terminal:
                task.stop.set()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
            for task in self.tasks.values():
                if task.status in (JobStatus.QUEUED, JobStatus.RUNNING):
                    task.status = JobStatus.CANCELLED
        await self._outputs.remove()  # our temp folder; a configured one is the user's

    # -- rendering -----------------------------------------------------------------------

    @property
    def output_dir(self) -> Path:
        return self._outputs.path

    def _run(self, task: LocalTask, face: Face) -> None:
        """The render, in a worker thread; its outcome is left on ``task`` for ``poll`` and,
        given a webhook URL, POSTed there as a cloud backend would."""
        import asyncio
        try:
            self._render(task, face)
        finally:
            if task.webhook_url and task.status.terminal:
                from talkinghead.http import callback_payload, deliver_webhook

                payload = callback_payload(task.task_id, self._update(task), task.created)
                asyncio.run(deliver_webhook(task.webhook_url, payload, provider=self.name))

    def _render(self, task: LocalTask, face: Face) -> None:
        from .render import RenderCancelled, render

        if task.stop.is_set():
            task.status = JobStatus.CANCELLED
            return
        task.status = JobStatus.RUNNING
        prepared = task.prepared
        speech = prepared.speech

        def progress(done: int, total: int) -> None:
            task.done, task.total = done, total

        try:
            result = render(_source(prepared.image), _source(prepared.audio), task.out,
                            aspect_ratio=frame_ratio(prepared.request.aspect_ratio, prepared.image.width,
                                                     prepared.image.height), resolution=self.resolution,
                            phonemes=speech.phonemes if speech is not None else (),
                            seed=self.seed, face=face,
                            duration_s=prepared.audio.duration_s if prepared.audio is not None else None,
                            should_stop=task.stop.is_set, on_frame=progress)
        except RenderCancelled:
            task.status = JobStatus.CANCELLED
        except InputError as exc:
            task.status, task.error, task.error_kind = JobStatus.FAILED, f"local: {exc}", "input"
        except Exception as exc:  # noqa: BLE001 - reported like a backend's failed task, not raised in poll
            task.status, task.error_kind = JobStatus.FAILED, "render_error"
            task.error = f"local: render failed: {type(exc).__name__}: {exc}"
        else:
            task.duration_s = result.duration_s
            task.status = JobStatus.COMPLETED

    def _update(self, task: LocalTask) -> JobUpdate:
        status = task.status
        if status is JobStatus.COMPLETED:
            return JobUpdate(status=status, task_id=task.task_id, progress=100.0, message="completed",
                             output_url=task.out.resolve().as_uri(),
                             duration_s=round(task.duration_s or 0.0, 3))
        if status in (JobStatus.FAILED, JobStatus.CANCELLED):
            return JobUpdate(status=status, task_id=task.task_id, error=task.error,
                             error_kind=task.error_kind, message=status.value)
        if status is JobStatus.RUNNING and task.total:
            # Below 100 until the file is closed and in place.
            progress = min(99.0, round(100.0 * task.done / task.total, 2))
            return JobUpdate(status=status, task_id=task.task_id, progress=progress,
                             message=f"frame {task.done}/{task.total}")
        return JobUpdate(status=status, task_id=task.task_id, progress=0.0, message=status.value)


def _source(media: MediaFile | None) -> Path | bytes:
    """What the renderer reads: a path, or the decoded bytes."""
    if media is None:
        raise InputError("audio", "no audio to render")
    if media.kind == "path" and media.path is not None:
        return media.path
    if media.kind == "bytes":
        return media.data or b""
    raise InputError(media.field, f"the local renderer cannot fetch URLs ({media.url}); download "
                     f"the {media.field} and give its path", value=media.url)


__all__ = ["MODEL", "LocalProvider", "LocalTask"]
