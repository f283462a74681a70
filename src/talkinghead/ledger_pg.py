"""The journal and budget reservations on a shared PostgreSQL, for many processes on many hosts.

Same contract as ``SQLiteLedger`` (see ledger.py), same answers. What differs is how a
reservation is made race-free without SQLite's single write lock: each budget scope (total,
day, provider, session) is a row of ``budgets`` holding its committed USD, and ``open`` runs,
in one transaction with the job's INSERT, one conditional upsert per scope::

    INSERT INTO budgets ... ON CONFLICT (scope) DO UPDATE SET committed_usd = committed_usd + q
        WHERE committed_usd + q <= limit RETURNING ...

Zero rows returned means the scope is full: the transaction rolls back and nothing is
reserved. The row lock the upsert takes holds until commit, so two hosts reserving against
one scope are serialised by the database, never by a read-then-write in Python. ``close``
settles the job row and moves every scope by (settled - reserved) in one transaction, so the
running sums always equal the sums over ``jobs`` that the SQLite ledger computes.

Needs ``talkinghead[postgres]`` (psycopg 3 and psycopg_pool).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from . import log, schema
from .config import without_password
from .errors import ConfigError
from .ledger import _TERMINAL, COMMITTED, BudgetLimits, JobLookups, budget_scopes, over_budget
from .models import Job, JobStatus, utcnow

try:
    import psycopg
    from psycopg_pool import ConnectionPool
except ImportError:  # pragma: no cover - depends on the installed extras
    psycopg = None  # type: ignore[assignment]  # the postgres extra is not installed

RESERVE = (
    "INSERT INTO budgets AS b (scope, committed_usd) SELECT %(scope)s, %(q)s"
    " WHERE %(limit)s::float8 IS NULL OR %(q)s <= %(limit)s::float8 + 1e-9"
    " ON CONFLICT (scope) DO UPDATE SET committed_usd = b.committed_usd + excluded.committed_usd"
    " WHERE %(limit)s::float8 IS NULL OR b.committed_usd + excluded.committed_usd <= %(limit)s::float8 + 1e-9"
    " RETURNING b.committed_usd")
INSERT_JOB = (
    "INSERT INTO jobs (id, provider, model, status, task_id, request_digest, session, day, created_at,"
    " updated_at, reserved_usd, settled_usd, webhook_hash, data, worker)"
    " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)")


class PostgresLedger(JobLookups):
    """The shared ledger: a pool of connections to one PostgreSQL database, per process."""

    PARAM = "%s"

    def __init__(self, url: str, limits: BudgetLimits | None = None, *, max_connections: int = 8) -> None:
        if psycopg is None:
            raise ConfigError("TALKINGHEAD_DATABASE_URL names PostgreSQL, which needs the postgres extra: "
                              "pip install 'talkinghead[postgres]'")
        self.url = url
        self.limits = limits or BudgetLimits()
        self.worker: str | None = None
        self.max_connections = max_connections
        self._pool: Any = None
        self._pid = 0
        self._lock = threading.Lock()
        log.add_secret(urlsplit(url).password)
        try:  # one direct connection first: a wrong URL fails here, at once, in one line
            conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise ConfigError(f"journal {without_password(url)}: cannot connect: "
                              f"{log.redact(str(exc)).strip().splitlines()[0]}") from None
        with conn:
            schema.upgrade_postgres(conn, repr(self))

    def __repr__(self) -> str:
        return f"<PostgresLedger {without_password(self.url)!r}>"

    # -- connections ---------------------------------------------------------------------

    def _pool_here(self) -> Any:
        # A pool per process: connections (and the pool's threads) do not survive a fork.
        if self._pool is None or self._pid != os.getpid():
            with self._lock:
                if self._pool is None or self._pid != os.getpid():
                    pool = ConnectionPool(self.url, min_size=1, max_size=self.max_connections, open=False,
                                          kwargs={"autocommit": True}, name="talkinghead-ledger")
                    try:
                        pool.open(wait=True, timeout=30)
                    except Exception as exc:
                        pool.close()
                        raise ConfigError(f"journal {without_password(self.url)}: cannot connect "
                                          f"({type(exc).__name__})") from None
                    self._pool, self._pid = pool, os.getpid()
        return self._pool

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        with self._pool_here().connection() as conn:
            yield conn

    def _all(self, sql: str, args: tuple | dict = ()) -> list[tuple]:
        with self._connection() as conn:
            rows: list[tuple] = conn.execute(sql, args).fetchall()
            return rows

    def _run(self, sql: str, args: tuple | dict = ()) -> int:
        with self._connection() as conn:
            return int(conn.execute(sql, args).rowcount)

    def close_connections(self) -> None:
        if self._pool is not None and self._pid == os.getpid():
            self._pool.close()
        self._pool = None

    # -- jobs ------------------------------------------------------------------------------

    def open(self, job: Job, session: str | None = None) -> None:
        day = job.created_at.strftime("%Y-%m-%d")
        scopes = budget_scopes(self.limits, job, day, session)
        with self._connection() as conn, conn.transaction():  # an exception rolls it all back
            for name, limit, key, _ in scopes:  # the fixed order: no lock cycles between hosts
                row = conn.execute(RESERVE, {"scope": key, "q": job.reserved_usd, "limit": limit}).fetchone()
                if row is None:
                    committed = conn.execute("SELECT committed_usd FROM budgets WHERE scope = %s", (key,)).fetchone()
                    assert limit is not None
                    raise over_budget(job, name, limit, committed[0] if committed else 0.0)
            conn.execute(INSERT_JOB, (
                job.id, job.provider, job.model, job.status.value, job.task_id, job.request_digest, session,
                day, job.created_at.isoformat(), job.updated_at.isoformat(), job.reserved_usd, job.settled_usd,
                job.webhook_token_hash, job.model_dump_json(), self.worker))

    def record(self, job: Job) -> bool:
        """As ``SQLiteLedger.record``: a stale copy never undoes a finished job."""
        return self._run(
            f"UPDATE jobs SET status=%s, task_id=%s, updated_at=%s, data=%s, worker=COALESCE(%s, worker)"
            f" WHERE id=%s AND (status NOT IN {_TERMINAL} OR %s IN {_TERMINAL})",
            (job.status.value, job.task_id, job.updated_at.isoformat(), job.model_dump_json(), self.worker,
             job.id, job.status.value)) == 1

    def close(self, job: Job, cost_usd: float) -> None:
        """Settle once, and move every budget scope by (settled - reserved) in the same transaction."""
        job.settled_usd = round(cost_usd, 6)
        with self._connection() as conn, conn.transaction():
            row = conn.execute(
                "UPDATE jobs SET status=%s, task_id=%s, updated_at=%s, settled_usd=%s, data=%s"
                " WHERE id=%s AND settled_usd IS NULL RETURNING provider, day, session, reserved_usd",
                (job.status.value, job.task_id, job.updated_at.isoformat(), job.settled_usd,
                 job.model_dump_json(), job.id)).fetchone()
            if row is None:
                return
            provider, day, session, reserved = row
            delta = job.settled_usd - reserved
            if delta == 0:
                return
            probe = job.model_copy(update={"provider": provider})
            for _, _, key, _ in budget_scopes(self.limits, probe, day, session):
                conn.execute("UPDATE budgets SET committed_usd = committed_usd + %s WHERE scope = %s", (delta, key))

    def get(self, job_id: str) -> Job | None:
        found = self._select("id = %s", (job_id,))
        if not found and len(job_id) >= 6:  # a unique prefix is enough, as with git
            pattern = job_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            found = self._select("id LIKE %s", (pattern,))
        return found[0] if len(found) == 1 else None

    def unfinished(self) -> list[Job]:
        terminal = tuple(s.value for s in JobStatus if s.terminal)
        return self._select("status <> ALL(%s)", (list(terminal),))

    def seen_delivery(self, provider: str, delivery_id: str) -> bool:
        """Record a webhook delivery; True if it was already recorded (a replay)."""
        return self._run("INSERT INTO webhook_deliveries VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                         (provider, delivery_id, time.time())) == 0

    def totals(self, session: str | None = None) -> dict[str, float]:
        where, args = ("session = %s", (session,)) if session else ("TRUE", ())
        today = utcnow().strftime("%Y-%m-%d")
        ((spent, reserved, spent_today),) = self._all(
            f"SELECT COALESCE(SUM(settled_usd), 0),"
            f" COALESCE(SUM(CASE WHEN settled_usd IS NULL THEN reserved_usd ELSE 0 END), 0),"
            f" COALESCE(SUM(CASE WHEN day = %s THEN {COMMITTED} ELSE 0 END), 0) FROM jobs WHERE {where}",
            (today, *args))
        return {"spent_usd": round(spent, 6), "reserved_usd": round(reserved, 6),
                "today_usd": round(spent_today, 6)}

    def by_provider(self) -> dict[str, dict[str, float]]:
        rows = self._all(
            "SELECT provider, COALESCE(SUM(settled_usd), 0),"
            " COALESCE(SUM(CASE WHEN settled_usd IS NULL THEN reserved_usd ELSE 0 END), 0), COUNT(*)"
            " FROM jobs GROUP BY provider ORDER BY provider")
        return {p: {"spent_usd": round(s, 6), "reserved_usd": round(r, 6), "jobs": n} for p, s, r, n in rows}

    def budget_rows(self) -> dict[str, float]:
        """The running sums per scope (what ``open`` checks), for tests and ``talkinghead budget``."""
        return dict(self._all("SELECT scope, committed_usd FROM budgets ORDER BY scope"))

    def workers(self, job_ids: list[str]) -> dict[str, str]:
        """Job id -> the worker that last held it, for the jobs a worker has held."""
        return dict(self._all("SELECT id, worker FROM jobs WHERE worker IS NOT NULL AND id = ANY(%s)",
                              (list(job_ids),)))

    # -- route health, for the router ----------------------------------------------------

    def route_failed(self, route: str, *, threshold: int, window_s: float, cooldown_s: float) -> float:
        """Count a provider-side failure; returns the cooldown end (epoch s) or 0."""
        now = time.time()
        with self._connection() as conn, conn.transaction():
            conn.execute("INSERT INTO route_health (route) VALUES (%s) ON CONFLICT DO NOTHING", (route,))
            (failures,) = conn.execute("SELECT failures FROM route_health WHERE route = %s FOR UPDATE",
                                       (route,)).fetchone()
            recent = [float(t) for t in (failures.split(",") if failures else []) if now - float(t) < window_s]
            recent.append(now)
            until = now + cooldown_s if len(recent) >= threshold else 0.0
            conn.execute("UPDATE route_health SET failures = %s, cooldown_until = GREATEST(cooldown_until, %s)"
                         " WHERE route = %s", (",".join(f"{t:.3f}" for t in recent), until, route))
        return until

    def route_succeeded(self, route: str) -> None:
        self._run("DELETE FROM route_health WHERE route = %s", (route,))

    def cooldowns(self) -> dict[str, float]:
        """Routes cooling down now -> when the cooldown ends (epoch seconds)."""
        return dict(self._all("SELECT route, cooldown_until FROM route_health WHERE cooldown_until > %s",
                              (time.time(),)))

    def median_seconds(self) -> dict[str, float]:
        """Median submit-to-completion time of completed jobs, per route (for ``fastest``)."""
        rows = self._all("SELECT provider || '/' || model,"
                         " EXTRACT(EPOCH FROM updated_at::timestamptz - created_at::timestamptz)::float8"
                         " FROM jobs WHERE status = 'completed'")
        per: dict[str, list[float]] = {}
        for route, seconds in rows:
            per.setdefault(route, []).append(seconds)
        return {route: statistics.median(values) for route, values in per.items()}
