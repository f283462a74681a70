"""The mock backend's task state: in memory, and with a ``state_dir`` also on disk.

By default tasks live in the provider instance's memory. With ``state_dir`` set every task
is written to ``state_dir/tasks/<id>.json`` (temp file + ``os.replace``, so never half
written) whenever it changes, and a task the instance does not hold is loaded from there.
Bytes inputs are copied to ``state_dir/inputs/``; path inputs are kept by path (they must
still exist when the task renders) and URL inputs by URL. Every ``submit``, ``poll``,
``cancel`` and ``find_task`` is appended to ``state_dir/calls.jsonl``, one JSON line each
(``method``, ``job_id``, ``task_id``, ``pid``, ``time``, and ``error`` on an injected submit
failure), with a single ``O_APPEND`` write; ``read_calls`` reads it back.

Task ids stay ``mock-NNNNNN`` and unique across processes sharing a state dir: each is
reserved by creating its task file with ``O_EXCL``, taking the next free number. So ids are
still deterministic for one instance on a fresh state dir, and always without one.

Several processes may follow the same task; no lock is held across processes. Each poll
re-reads the task file (``refresh``, under the task's in-process lock), takes its step and
writes the whole task back. Two processes polling the same task at the same instant may both
take the same step (the task then needs one poll more, never fewer). A cancel also leaves a
marker file (``tasks/<id>.cancel``) that no task write removes, so a poll racing it in
another process cannot lose it. A loaded task keeps the ``steps`` and ``latency`` it was
submitted with, and its latency is measured in wall-clock time from submit, so a task resumed
after a crash is due when it would have been. Nothing is fsync'ed: state survives a killed
process, not a power cut.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talkinghead.models import AvatarRequest, JobUpdate

from .failures import FailSpec

if TYPE_CHECKING:
    import asyncio

    from talkinghead.media import MediaFile, PreparedRequest

STATE_VERSION = 1                                   # of the task files in state_dir/tasks
_TASK_FILE = re.compile(r"mock-(\d+)\.json")
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")       # task ids we will look up on disk


def _new_lock() -> asyncio.Lock:
    import asyncio  # here, not at the top: registering the mock never loads asyncio (start-up)

    return asyncio.Lock()


@dataclass
class MockTask:
    """The backend's side of one job."""

    task_id: str
    job_id: str
    prepared: PreparedRequest
    submitted_at: float                 # time.monotonic()
    update: JobUpdate                   # the latest answer; terminal ones are repeated
    fail: FailSpec | None = None        # this job is doomed at run time
    polls: int = 0
    step: int = 0
    cancelled: bool = False
    output_path: Path | None = None
    steps: int = 4                      # the schedule it was submitted with
    latency: float = 0.0
    submitted_unix: float = 0.0         # time.time() at submit, for other processes
    webhook_url: str | None = None      # where to POST the completion callback
    etag: str | None = None             # of the state last written or read (state_dir only)
    stored_inputs: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    lock: asyncio.Lock = field(default_factory=lambda: _new_lock(), repr=False, compare=False)


class TaskStore:
    """One provider instance's tasks: held in ``tasks`` and, with a ``state_dir``, kept on
    disk for other instances. Without a state dir every disk operation is a no-op."""

    def __init__(self, state_dir: Path | None) -> None:
        self.state_dir = state_dir
        self.tasks: dict[str, MockTask] = {}
        self._created = 0                      # the task id counter: the last number taken
        self._made: set[Path] = set()          # state dirs known to exist

    # -- finding tasks -------------------------------------------------------------------

    def new_task_id(self) -> str:
        if self.state_dir is None:
            self._created += 1
            return f"mock-{self._created:06d}"
        tasks = self._dir("tasks")
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

    def get(self, task_id: str | None) -> MockTask | None:
        """The task in memory, else loaded from the state dir (and kept), else None."""
        task = self.tasks.get(task_id or "")
        if task is None and self.state_dir is not None and task_id:
            data = self._read(task_id)
            if data is not None:
                task = self.tasks.setdefault(task_id, self._task_from(data))
        return task

    def find_job(self, job_id: str) -> MockTask | None:
        """The first task submitted for ``job_id``: from the task files with a state dir
        (another process may have made it), else from memory."""
        if self.state_dir is None:
            return next((t for t in self.tasks.values() if t.job_id == job_id), None)
        tasks = self._dir("tasks")
        numbered = sorted((int(m[1]), name) for name in os.listdir(tasks)
                          if (m := _TASK_FILE.fullmatch(name)))
        for _, name in numbered:
            task_id = name.removesuffix(".json")
            data = self._read(task_id)  # None while only reserved: not submitted yet
            if data is not None and data["job_id"] == job_id:
                return self.get(task_id)
        return None

    # -- keeping tasks -------------------------------------------------------------------

    def save(self, task: MockTask) -> None:
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
            "webhook_url": task.webhook_url,
            "update": task.update.model_dump(mode="json"),
            "inputs": task.stored_inputs,
        }
        _atomic_write(self._dir("tasks") / f"{task.task_id}.json",
                      json.dumps(data, indent=1).encode())

    def refresh(self, task: MockTask) -> None:
        """Adopt the task file if another process wrote it since we last did."""
        if self.state_dir is None or task.update.status.terminal:
            return
        data = self._read(task.task_id)
        if data is not None and data["etag"] != task.etag:
            task.polls, task.step = data["polls"], data["step"]
            task.cancelled = task.cancelled or data["cancelled"]
            task.output_path = Path(data["output_path"]) if data.get("output_path") else None
            task.update = JobUpdate.model_validate(data["update"])
            task.etag = data["etag"]
        self.cancel_requested(task)

    def cancel(self, task: MockTask) -> None:
        """Flag the task cancelled, for the next poll in whichever process makes it."""
        task.cancelled = True
        if self.state_dir is None:
            return
        self._cancel_marker(task.task_id).touch()  # survives any racing task write
        if not task.lock.locked():  # else the poll holding it writes the flag
            self.refresh(task)
            if not task.update.status.terminal:
                self.save(task)

    def cancel_requested(self, task: MockTask) -> bool:
        if not task.cancelled and self.state_dir is not None:
            task.cancelled = self._cancel_marker(task.task_id).exists()
        return task.cancelled

    def log_call(self, method: str, job_id: str, task_id: str | None, **extra: Any) -> None:
        """Append one line to ``state_dir/calls.jsonl``: one O_APPEND write, so lines from
        several processes never interleave."""
        if self.state_dir is None:
            return
        line = json.dumps({"method": method, "job_id": job_id, "task_id": task_id,
                           "pid": os.getpid(), "time": time.time(), **extra}) + "\n"
        self._dir()
        fd = os.open(self.state_dir / "calls.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    # -- the files -----------------------------------------------------------------------

    def _dir(self, *parts: str) -> Path:
        """A directory under the state dir, created on first use."""
        assert self.state_dir is not None  # callers return early without one
        path = self.state_dir.joinpath(*parts)
        if path not in self._made:
            path.mkdir(parents=True, exist_ok=True)
            self._made.add(path)
        return path

    def _cancel_marker(self, task_id: str) -> Path:
        return self._dir("tasks") / f"{task_id}.cancel"

    def _inputs_state(self, task: MockTask) -> dict[str, Any]:
        """What a later process needs to render: the request, and each input by path, URL
        or (for bytes) a copy in ``state_dir/inputs``."""
        prepared = task.prepared
        request = prepared.request.model_dump(mode="json", exclude={"image", "audio"})
        media: dict[str, dict[str, Any] | None] = {}
        for name, item in (("image", prepared.image), ("audio", prepared.audio)):
            if item is None:
                media[name] = None
                continue
            entry = {k: getattr(item, k) for k in (
                "kind", "filename", "format", "content_type", "size", "width", "height",
                "duration_s", "origin")}
            if item.kind == "path" and item.path is not None:
                entry["path"] = str(item.path.absolute())
            elif item.kind == "url":
                entry["url"] = item.url
            else:
                suffix = f".{item.format}" if item.format else ".bin"
                copy = self._dir("inputs") / f"{task.task_id}-{name}{suffix}"
                _atomic_write(copy, item.data or b"")
                entry["path"] = str(copy)
            media[name] = entry
        return {"request": request, **media}

    def _read(self, task_id: str) -> dict[str, Any] | None:
        if not _SAFE_ID.fullmatch(task_id):
            return None
        try:
            data = json.loads((self._dir("tasks") / f"{task_id}.json").read_bytes())
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
        if image is None:
            raise ValueError(f"mock task {data['task_id']}: its state file has no image")
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
            webhook_url=data.get("webhook_url"),
            stored_inputs=inputs)
        self.cancel_requested(task)
        return task


def read_calls(state_dir: str | os.PathLike[str], method: str | None = None) -> list[dict[str, Any]]:
    """The calls logged in ``state_dir/calls.jsonl`` by every process that shared it, oldest
    first: dicts with ``method`` (submit | poll | cancel | find_task), ``job_id``,
    ``task_id``, ``pid``, ``time`` and, on an injected submit failure, ``error``. ``method``
    keeps only those."""
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
