"""A job queue on the shared PostgreSQL (procrastinate): batches spread over workers on any host.

``enqueue`` turns each line of a batch file into one queue task whose *queueing lock* and
*lock* are the line's request digest: a line already waiting is not queued twice, and two
tasks for one request never run at once. A worker (``run_worker``) runs a task through the
same journal-first path as ``talkinghead batch`` (``batch._run_line``): a request already done
is skipped, one the journal holds unfinished is *resumed* (followed, never created again),
and only a request the journal has never seen is submitted.

A worker that dies mid-task stops sending heartbeats; every live worker looks for tasks held
by workers silent for longer than ``stalled_after`` and puts them back in the queue. The task
then runs again elsewhere and meets its journaled job: the resume logic, not a new create.
While a line runs, its runner holds a PostgreSQL session lock on the request digest, so a
worker merely *thought* dead (late heartbeats) and its successor never run one line at once.
procrastinate's own retries are off: a task that failed is not re-run blindly.

Needs ``talkinghead[queue]`` and ``TALKINGHEAD_DATABASE_URL``: the queue lives in the same
database as the journal, so one URL names both.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .batch import LineResult, _run_line, parse_line
from .errors import ConfigError, InputError, JobFailed
from .models import JobStatus

try:
    import procrastinate
    from procrastinate import exceptions as pexc
except ImportError:  # pragma: no cover - depends on the installed extras
    procrastinate = None  # type: ignore[assignment]  # the queue extra is not installed

TASK = "talkinghead:render_line"
# Serialises installing procrastinate's tables when several workers start on a fresh database.
SCHEMA_LOCK = 0x7461_6C6B_7175  # "talkqu"


def _require(url: str | None) -> str:
    if procrastinate is None:
        raise ConfigError("the job queue needs the queue extra: pip install 'talkinghead[queue]'")
    if not url:
        raise ConfigError("the job queue lives in PostgreSQL: set TALKINGHEAD_DATABASE_URL (or database_url "
                          "in the config file) on every host")
    return url


def make_app(url: str) -> Any:
    """A procrastinate app on ``url`` with the render task registered."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=_require(url)))
    blueprint = procrastinate.Blueprint()
    blueprint.task(name="render_line", pass_context=True, retry=False)(render_line)
    app.add_tasks_from(blueprint, namespace="talkinghead")
    return app


def install_schema(url: str) -> None:
    """Create procrastinate's tables unless they exist (once, whoever gets the lock first)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            (found,) = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone() or (None,)
            if found is None:
                from procrastinate.schema import SchemaManager

                conn.execute(SchemaManager.get_schema())
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))


# -- enqueueing ------------------------------------------------------------------------------


@dataclass
class Enqueued:
    queued: int = 0
    already_queued: int = 0
    done: int = 0
    invalid: list[LineResult] = field(default_factory=list)

    def summary(self) -> str:
        return (f"queued {self.queued}  already queued {self.already_queued}  done {self.done}  "
                f"invalid {len(self.invalid)}")


async def enqueue(client: Any, path: Path, *, output_dir: Path, provider: str | None = None,
                  queue: str = "talkinghead") -> Enqueued:
    """One task per valid line of ``path``; lines the journal has completed are not queued.
    Every line is validated first, so a bad line is reported here, not on some worker."""
    url = _require(client.settings.database_url)
    install_schema(url)
    # Once, before anything is queued: the batch file is small and read whole.
    path = Path(path).resolve()  # noqa: ASYNC240
    output_dir = Path(output_dir).resolve()  # noqa: ASYNC240
    from .batch import read_lines  # as `batch` reads it: UTF-8 (BOM or not), unreadable -> InputError

    lines = read_lines(path)
    found = Enqueued()
    app = make_app(url)
    async with app.open_async():
        task = app.tasks[TASK]
        for number, text in lines:
            try:
                request, extra = parse_line(number, text, path.parent)
            except InputError as exc:
                found.invalid.append(LineResult(number, "invalid", error=str(exc)))
                continue
            digest = request.digest()
            if any(j.status is JobStatus.COMPLETED for j in client.ledger.by_digest(digest)):
                found.done += 1
                continue
            try:
                await task.configure(queueing_lock=digest, lock=digest, queue=queue).defer_async(
                    line=text, number=number, base=str(path.parent), output_dir=str(output_dir),
                    provider=extra.get("provider") or provider)
                found.queued += 1
            except pexc.AlreadyEnqueued:
                found.already_queued += 1
    return found


# -- the worker ------------------------------------------------------------------------------


async def render_line(context: Any, *, line: str, number: int, base: str, output_dir: str,
                      provider: str | None) -> dict[str, Any]:
    """Run one batch line on this worker, journal first (see the module doc)."""
    client = context.additional_context["client"]
    try:
        digest = parse_line(number, line, Path(base))[0].digest()
    except InputError:
        digest = None  # reported by _run_line below
    async with _line_lock(client.settings.database_url, digest):
        if digest is not None:
            await _settle_orphans(client, digest)
        result = await _run_line(client, number, line, Path(base), Path(output_dir), provider)
    if result.status in ("failed", "unknown", "budget", "invalid"):
        # The task ends failed in the queue too; the journal says why. Never retried blindly.
        raise JobFailed(f"line {number}: {result.status}: {result.error}", job_id=result.job_id,
                        provider=result.provider)
    return {"line": number, "status": result.status, "job_id": result.job_id}


@contextlib.asynccontextmanager
async def _line_lock(url: str, digest: str | None) -> AsyncIterator[None]:
    """Hold the request's lock in PostgreSQL while its line runs. The queue's own lock lapses
    when a task is re-queued as stalled, and a worker can be *thought* dead (heartbeats late
    on a loaded host) while it is still about to create the job; this one is a session lock,
    held for exactly as long as the holder's connection lives. A second runner waits here, then
    finds the job in the journal. A worker that really died dropped its connection, and with it
    the lock (keepalives bound how long a vanished host keeps it)."""
    if digest is None:
        yield
        return
    import psycopg

    key = int.from_bytes(hashlib.sha256(digest.encode()).digest()[:8], "big", signed=True)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, keepalives=1, keepalives_idle=10,
                                                     keepalives_interval=5, keepalives_count=3) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        yield  # closing the connection releases the lock, whatever happened inside


async def _settle_orphans(client: Any, digest: str) -> None:
    """A worker died between reserving a job and journaling the create's answer: the job has
    no task id. The queue's lock on ``digest`` means no live worker holds it now. Look the task
    up by our job id: found, the job is followed (resume); not found, on a backend whose lookup
    is authoritative (``Provider.lookup_is_authoritative``), the create never happened, so the
    reservation is released and the line runs anew. Any other backend: it stays for
    ``jobs resume``/``jobs resolve`` to decide, as it would without a queue."""
    for job in client.ledger.by_digest(digest):
        if job.task_id or job.status not in (JobStatus.CREATED, JobStatus.UNKNOWN):
            continue
        if job.create_sent_at is None and job.status is JobStatus.CREATED:
            continue  # the create was never sent: the journal's resume creates it, once
        provider = client.provider(job.provider)
        if not getattr(provider, "lookup_is_authoritative", False):
            continue
        found = await client.lifecycle.look_up(provider, job)
        if found is not None:
            job.status = JobStatus.QUEUED  # an unknown job found is known again
            job.error = None
            job.apply(found)
            client.ledger.record(job)
        else:
            job.status = JobStatus.FAILED
            job.error = "not created: its worker died before the create call reached the backend"
            client.ledger.close(job, 0.0)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def _requeue_stalled(app: Any, stalled_after: float, every: float) -> None:
    """Put back in the queue the tasks held by workers silent for ``stalled_after`` seconds."""
    while True:
        await asyncio.sleep(every)
        with contextlib.suppress(Exception):  # a database hiccup: try again next round
            for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after):
                with contextlib.suppress(Exception):  # another worker re-queued it first
                    await app.job_manager.retry_job(job)


async def run_worker(client: Any, *, concurrency: int = 4, stalled_after: float = 30.0,
                     heartbeat: float | None = None, wait: bool = True, queue: str = "talkinghead") -> None:
    """Take tasks until stopped (SIGINT/SIGTERM), ``concurrency`` at a time, on this host."""
    url = _require(client.settings.database_url)
    install_schema(url)
    client.ledger.worker = worker_name()
    beat = heartbeat if heartbeat is not None else max(0.5, stalled_after / 3)
    app = make_app(url)
    async with app.open_async():
        reaper = asyncio.create_task(_requeue_stalled(app, stalled_after, every=beat))
        try:
            await app.run_worker_async(
                queues=[queue], concurrency=concurrency, name=client.ledger.worker, wait=wait,
                additional_context={"client": client}, update_heartbeat_interval=beat,
                stalled_worker_timeout=stalled_after, fetch_job_polling_interval=beat)
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
