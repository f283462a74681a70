"""The job journal and budget reservations, behind one narrow interface.

Order of writes, which is what keeps a paid job from being lost or submitted twice:
``open`` (the job row and its reservation, together) before the create call is sent;
``record`` the moment the provider's task id is known and after each status change;
``close`` when the job ends, settling the reservation to the actual cost or releasing it.

``MemoryLedger`` lives for one process. A durable SQLite ledger with the same interface
(issue #4) is what the CLI will use; a PostgreSQL one can serve a fleet of workers.
"""

from __future__ import annotations

import threading
from typing import Protocol

from .errors import BudgetExceeded
from .models import Job, JobStatus


class Ledger(Protocol):
    def open(self, job: Job) -> None:
        """Insert the job and reserve ``job.reserved_usd`` atomically; ``BudgetExceeded`` if
        spent + reserved + this would pass a limit."""

    def record(self, job: Job) -> None:
        """Persist the job's current state."""

    def close(self, job: Job, cost_usd: float) -> None:
        """The job ended: settle to ``cost_usd`` (0 releases the reservation)."""

    def get(self, job_id: str) -> Job | None: ...

    def jobs(self) -> list[Job]: ...


class MemoryLedger:
    """A process-local ledger: thread-safe, with an optional total budget."""

    def __init__(self, budget_usd: float | None = None) -> None:
        self.budget_usd = budget_usd
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def totals(self) -> tuple[float, float]:
        """(spent, reserved) in USD."""
        spent = sum(j.settled_usd or 0.0 for j in self._jobs.values())
        reserved = sum(j.reserved_usd for j in self._jobs.values() if j.settled_usd is None)
        return spent, reserved

    def open(self, job: Job) -> None:
        with self._lock:
            if self.budget_usd is not None:
                spent, reserved = self.totals()
                available = self.budget_usd - spent - reserved
                if job.reserved_usd > available + 1e-9:
                    raise BudgetExceeded(
                        f"budget: this job needs ${job.reserved_usd:.4f} but ${max(available, 0):.4f} "
                        f"of the ${self.budget_usd:.2f} budget is left", needed=job.reserved_usd,
                        available=available)
            self._jobs[job.id] = job.model_copy(deep=True)

    def record(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job.model_copy(deep=True)

    def close(self, job: Job, cost_usd: float) -> None:
        with self._lock:
            job.settled_usd = round(cost_usd, 6)
            self._jobs[job.id] = job.model_copy(deep=True)

    def get(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        return job.model_copy(deep=True) if job else None

    def jobs(self) -> list[Job]:
        return [j.model_copy(deep=True) for j in self._jobs.values()]

    def unfinished(self) -> list[Job]:
        return [j for j in self.jobs() if not j.status.terminal]


def settled_cost(job: Job) -> float:
    """What a finished job cost: billed seconds x the quoted price; nothing if it failed."""
    if job.status is not JobStatus.COMPLETED or job.quote is None:
        return 0.0
    seconds = job.duration_s if job.duration_s is not None else job.quote.seconds
    return round(seconds * job.quote.price_per_second, 6)
