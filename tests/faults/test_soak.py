"""A bounded randomized soak: 1,000 jobs through one ``AsyncClient`` (50 at a time) against the
loopback fake inference.sh server, with faults drawn from a seeded generator on every endpoint
(rate limits, 5xx, connections cut mid-body, malformed or truncated answers, read timeouts,
expired downloads) and per-task outcomes (fails, never finishes). It stops by itself (every job
has a wait timeout) and prints its counts; ``pytest -s`` shows the line:

    soak: 1000 jobs ... completed=.. failed=.. unknown=.. ... duplicates=0 lost=0

``duplicates``: tasks the fake made beyond the first for one request (must be 0).
``lost``: a request whose task the fake made while the journal does not name it (no task id,
another task id) and has not flagged it ``unknown``, or names it with a state the task never
had (must be 0). The ledger rules (``assert_consistent``) hold for every job.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import structlog

from talkinghead import AsyncClient
from talkinghead.errors import (
    DownloadError,
    JobFailed,
    JobTimeout,
    ProviderError,
    SubmitOutcomeUnknown,
)
from talkinghead.ledger import SQLiteLedger
from talkinghead.models import AvatarRequest, JobStatus
from talkinghead_inferencesh import InferenceShProvider
from talkinghead_inferencesh.fake import RESET, STALL, TRUNCATE

from .conftest import FACE, FAST, MP3, assert_consistent

SEED = int(os.environ.get("TALKINGHEAD_SOAK_SEED", "20261127"))
JOBS = int(os.environ.get("TALKINGHEAD_SOAK_JOBS", "1000"))
CONCURRENCY = 50
WAIT_TIMEOUT = 2.0   # per job; a task that never finishes ends the wait here
FAULT_RATE = {"create": 0.12, "files": 0.05, "upload": 0.05, "stream": 0.10, "get": 0.10, "output": 0.08}
FAULT_KINDS = {
    "create": [429, 503, 500, 502, RESET, TRUNCATE, STALL],
    "files": [500, 503, RESET],
    "upload": [500, 502, RESET],
    "stream": [500, 503, RESET, TRUNCATE],
    "get": [500, 502, 503, RESET, TRUNCATE, STALL],
    "output": [500, 503, RESET, 403],
}
TASK_OUTCOMES = {"completes": 85, "fails": 10, "never_finishes": 5}


def fault_queues(rng: random.Random) -> dict[str, list[int]]:
    """Per endpoint, the answers in arrival order: 200 (behave) or a fault."""
    return {ep: [rng.choice(FAULT_KINDS[ep]) if rng.random() < rate else 200 for _ in range(3 * JOBS)]
            for ep, rate in FAULT_RATE.items()}


def soak_request(i: int) -> AvatarRequest:
    """Told apart by prompt. Every tenth job uploads local files; the rest pass URLs through."""
    if i % 10 == 0:
        return AvatarRequest(image=FACE, audio=MP3, prompt=f"soak {i}")
    return AvatarRequest(image=f"https://cdn.example.com/soak/{i}.jpg",
                         audio=f"https://cdn.example.com/soak/{i}.mp3", prompt=f"soak {i}")


async def test_soak(fake, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    outcomes = rng.choices(list(TASK_OUTCOMES), weights=list(TASK_OUTCOMES.values()), k=JOBS)
    per_task_plan = {f"soak {i}": o for i, o in enumerate(outcomes)}

    def per_task(inputs: dict[str, Any]) -> dict[str, Any]:
        outcome = per_task_plan.get(str(inputs.get("prompt")))
        if outcome == "fails":
            return {"task_error": "Task failed: no face detected"}
        if outcome == "never_finishes":
            return {"statuses": (1, 2, 7)}
        return {}

    fake.configure(failures=fault_queues(rng), per_task=per_task, step_latency=0.005,
                   heartbeat_interval=0.2, stream_max_seconds=4.0, stall_seconds=1.2, retry_after=0.01)
    db = tmp_path / "journal.db"
    provider = InferenceShProvider({**FAST, "base_url": fake.url, "timeout": 0.8, "stream_reconnects": 6})
    client = AsyncClient(providers=[provider], ledger=SQLiteLedger(db))
    requests = [soak_request(i) for i in range(JOBS)]
    seen: Counter[str] = Counter()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            try:
                await client.run(requests[i], provider="inferencesh", output=tmp_path / "out" / f"{i}.mp4",
                                 timeout=WAIT_TIMEOUT)
                seen["video"] += 1
            except SubmitOutcomeUnknown:
                seen["SubmitOutcomeUnknown"] += 1
            except JobTimeout:
                seen["JobTimeout"] += 1
            except (JobFailed, DownloadError, ProviderError) as exc:
                seen[type(exc).__name__] += 1

    started = time.monotonic()
    try:
        with structlog.testing.capture_logs():  # ~10,000 job log lines: kept off the terminal
            await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(JOBS))), timeout=120)
    finally:
        await client.aclose()
    elapsed = time.monotonic() - started

    # -- reconcile the journal with what the fake did -------------------------------------
    rows = {r.id: r for r in assert_consistent(db)}
    tasks: dict[str, list[Any]] = {}
    for task in list(fake.tasks.values()):
        tasks.setdefault(str(task.input.get("prompt")), []).append(task)
    status = Counter()
    duplicates = lost = 0
    problems: list[str] = []
    for i, req in enumerate(requests):
        jobs = client.ledger.by_digest(req.digest())
        assert len(jobs) == 1, f"request {i}: {len(jobs)} journal rows"
        job = jobs[0]
        assert rows[job.id].status == job.status.value
        status[job.status.value] += 1
        made = tasks.get(f"soak {i}", [])
        duplicates += max(0, len(made) - 1)
        why = None
        if not made:
            if job.task_id is not None or job.status not in (JobStatus.FAILED, JobStatus.UNKNOWN):
                why = f"journal says {job.status.value} with task {job.task_id}, but the fake made no task"
        elif job.status is JobStatus.UNKNOWN:
            pass  # the create's answer was lost: flagged for a person, still reserved
        elif job.task_id != made[0].id:
            why = f"the fake made task {made[0].id}; the journal says {job.status.value} with {job.task_id}"
        else:
            final = made[0].status()
            expected = {JobStatus.COMPLETED: {10}, JobStatus.FAILED: {11}}.get(job.status, {1, 2, 7, 9, 10, 11})
            if final not in expected:
                why = f"journal says {job.status.value}, the fake's task is at status {final}"
        if why:
            lost += 1
            problems.append(f"soak {i}: {why}")

    line = (f"soak: {JOBS} jobs in {elapsed:.1f} s (seed {SEED}, concurrency {CONCURRENCY}, "
            f"{len(fake.requests)} requests): completed={status['completed']} failed={status['failed']} "
            f"unknown={status['unknown']} still_running={status['running'] + status['queued']} "
            f"duplicates={duplicates} lost={lost}; raised: "
            + ", ".join(f"{k}={v}" for k, v in sorted(seen.items())))
    print("\n" + line)
    assert duplicates == 0, line
    assert lost == 0, line + "\n" + "\n".join(problems[:20])
    assert sum(seen.values()) == JOBS and sum(status.values()) == JOBS
    # the soak exercised what it is meant to: every outcome occurred
    assert status["completed"] and status["failed"] and status["unknown"], line
    assert seen["JobTimeout"] and (seen["DownloadError"] or seen["ResultExpired"]), line
