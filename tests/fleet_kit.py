"""A fleet on one machine for the queue tests and bench/fleet.py: batch files of mock requests,
`talkinghead` subprocesses (workers, generates) sharing one PostgreSQL and one mock state
folder (so a task created by one process can be followed, or found, by another), and the
counts that prove a run was exact: creates per job, jobs per request, videos on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
FACE = ROOT / "examples" / "face.jpg"
SPEECH = ROOT / "examples" / "hello.mp3"
T = TypeVar("T")


class Fleet:
    def __init__(self, home: Path, database_url: str | None, *, latency: float = 0.0, size: int = 64,
                 total_usd: float | None = None) -> None:
        self.home = Path(home)
        self.url = database_url
        self.state = self.home / "mock"
        self.home.mkdir(parents=True, exist_ok=True)
        # Small frames: the mock renders a real MP4 per job, and that is not what is measured.
        budget = f"\n[budget]\ntotal_usd = {total_usd!r}\n" if total_usd is not None else ""
        (self.home / "config.toml").write_text(f"[providers.mock]\nsize = {size}\n{budget}")
        self.env = {**os.environ, "TALKINGHEAD_PLUGINS": "mock", "TALKINGHEAD_HOME": str(self.home),
                    "TALKINGHEAD_MOCK_STATE_DIR": str(self.state), "TALKINGHEAD_MOCK_LATENCY": str(latency),
                    "TALKINGHEAD_DATABASE_URL": database_url or ""}

    def jobs_file(self, n: int, name: str = "jobs.jsonl") -> Path:
        path = self.home / name
        path.write_text("".join(json.dumps({"image": str(FACE), "audio": str(SPEECH), "prompt": f"line {i}"}) + "\n"
                                for i in range(n)))
        return path

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "talkinghead.cli", *args], capture_output=True, text=True,
                              env=self.env, timeout=timeout)

    def enqueue(self, jobs: Path, timeout: float = 300) -> subprocess.CompletedProcess:
        """``batch --queue`` of a jobs file, every line for the mock."""
        return self.run("batch", str(jobs), "--queue", "--provider", "mock", timeout=timeout)

    def spawn(self, *args: str) -> subprocess.Popen:
        log = (self.home / f"proc-{time.monotonic_ns()}.log").open("w")
        return subprocess.Popen([sys.executable, "-m", "talkinghead.cli", *args], stdout=log, stderr=log,
                                env=self.env)

    def worker(self, concurrency: int = 4, stalled_after: float = 2.0) -> subprocess.Popen:
        return self.spawn("worker", "--concurrency", str(concurrency), "--stalled-after", str(stalled_after))

    # -- what the queue and the journal hold ---------------------------------------------

    def live_workers(self) -> int:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            if conn.execute("SELECT to_regclass('procrastinate_workers')").fetchone()[0] is None:
                return 0
            return conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()[0]

    def queue_counts(self) -> Counter:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY 1").fetchall()
        return Counter(dict(rows))

    def wait_queue_drained(self, timeout: float = 600, workers: list[subprocess.Popen] | None = None) -> Counter:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = self.queue_counts()
            if counts and not counts.get("todo") and not counts.get("doing"):
                return counts
            if workers is not None and not any(w.poll() is None for w in workers):
                raise RuntimeError(f"every worker exited with work left: {dict(counts)}")
            time.sleep(0.2)
        raise TimeoutError(f"queue not drained in {timeout} s: {dict(self.queue_counts())}")

    def requeued(self) -> int:
        """Queue tasks that ran more than once (re-queued as stalled)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE attempts > 1").fetchone()[0]

    def creates(self) -> Counter:
        """Our job id -> how many tasks the mock backend created for it: one task file per
        create that arrived. (Not its call log: a worker killed between the task's write and
        the log line's would leave a create uncounted, and the audit short of one.)"""
        tasks = self.state / "tasks"
        if not tasks.is_dir():
            return Counter()
        return Counter(json.loads(f.read_text())["job_id"] for f in tasks.glob("*.json"))

    def audit(self, ledger) -> dict[str, int]:
        """Exactness of a finished run: completed jobs, second creates (per job), requests
        created twice (two jobs that each got a create), completed jobs without their video."""
        jobs = ledger.jobs()
        creates = self.creates()
        # A job released as "not created" (its worker died first) got no create: not a second run.
        per_request = Counter(j.request_digest for j in jobs if creates.get(j.id))
        completed = [j for j in jobs if j.status.value == "completed"]
        return {"jobs": len(jobs), "completed": len(completed),
                "second_creates": sum(n - 1 for n in creates.values() if n > 1),
                "requests_run_twice": sum(1 for n in per_request.values() if n > 1),
                "lost_videos": sum(1 for j in completed if not (j.output_path and Path(j.output_path).exists())),
                "creates": sum(creates.values())}


def wait_for(condition: Callable[[], T], timeout: float) -> T:
    """The first truthy answer of ``condition()``, asked every 50 ms; its last answer once
    ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not (answer := condition()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return answer


def stop(procs: list[subprocess.Popen], timeout: float = 30) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
