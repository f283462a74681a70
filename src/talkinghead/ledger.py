"""The job journal and budget reservations, in one SQLite database, behind a narrow interface.

Order of writes, which is what keeps a paid job from being lost or submitted twice:
``open`` (the job row and its reservation, in one ``BEGIN IMMEDIATE`` transaction) before the
create call is sent; ``record`` the moment the provider's task id is known and after each
status change; ``close`` when the job ends, settling the reservation to the actual cost or
releasing it. A job's *committed* cost is its settled cost once settled, else its
reservation; every limit holds committed <= limit, across coroutines, threads and processes
sharing the file (SQLite's write lock serialises the check-and-insert).

The same database keeps route health (failures and cooldowns) for the router. ``Ledger`` is
the interface; ``ledger_pg.PostgresLedger`` provides it on a shared PostgreSQL for a fleet of
workers, and ``open_ledger`` picks the backend from the settings. The schema's versions are
in ``schema/``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from . import schema
from .errors import BudgetExceeded
from .models import Job, JobStatus, utcnow

if TYPE_CHECKING:
    from .config import Settings

COMMITTED = "COALESCE(settled_usd, reserved_usd)"
_TERMINAL = "('completed', 'failed', 'cancelled')"


@dataclass
class BudgetLimits:
    """Spending limits in USD; None means no limit. ``session`` applies to one client's jobs
    (a CLI invocation's ``--budget``, one batch run)."""

    total_usd: float | None = None
    daily_usd: float | None = None
    per_provider: dict[str, float] = field(default_factory=dict)
    session_usd: float | None = None


Scope = tuple[str, float | None, str, str]  # (label, limit, budget key, SQLite filter column)


def budget_scopes(limits: BudgetLimits, job: Job, day: str, session: str | None) -> list[Scope]:
    """Every budget scope ``job`` counts in, in one fixed order (PostgreSQL locks the scopes'
    rows in this order, so two reservations never wait on each other in a cycle)."""
    scopes: list[Scope] = [("total", limits.total_usd, "total", ""),
                           ("daily", limits.daily_usd, f"day:{day}", "day"),
                           (job.provider, limits.per_provider.get(job.provider), f"provider:{job.provider}",
                            "provider")]
    if session:
        scopes.append(("session", limits.session_usd, f"session:{session}", "session"))
    return scopes


def over_budget(job: Job, name: str, limit: float, committed: float) -> BudgetExceeded:
    # Rounded below a micro-dollar: SQLite sums rows while PostgreSQL keeps a running total, so
    # the two floats differ in the last bits and could print different cents-of-cents.
    left = round(limit - committed, 9)
    label = {"total": "total", "daily": "daily", "session": "this run's"}.get(name, f"{name} provider")
    return BudgetExceeded(
        f"budget: the quote of ${job.reserved_usd:.4f} ({job.route_id}, {job.mode}) is over "
        f"the ${max(left, 0):.4f} left of the ${limit:.2f} {label} budget",
        needed=job.reserved_usd, available=left)


class Ledger(Protocol):
    limits: BudgetLimits
    worker: str | None  # who holds the jobs this ledger writes (a queue worker's host:pid), if anyone

    def open(self, job: Job, session: str | None = None) -> None:
        """Insert the job and reserve ``job.reserved_usd`` atomically, or ``BudgetExceeded``."""

    def record(self, job: Job) -> bool: ...

    def close(self, job: Job, cost_usd: float) -> None:
        """The job ended: settle to ``cost_usd`` (0 releases the reservation)."""

    def get(self, job_id: str) -> Job | None: ...

    def jobs(self, *, status: str | None = None, limit: int | None = None) -> list[Job]: ...

    def find(self, provider: str, task_id: str) -> Job | None: ...

    def by_digest(self, digest: str) -> list[Job]: ...

    def by_webhook(self, provider: str, token_hash: str) -> Job | None: ...

    def seen_delivery(self, provider: str, delivery_id: str) -> bool: ...

    def totals(self, session: str | None = None) -> dict[str, float]: ...

    def route_failed(self, route: str, *, threshold: int, window_s: float, cooldown_s: float) -> float: ...

    def route_succeeded(self, route: str) -> None: ...

    def cooldowns(self) -> dict[str, float]: ...

    def median_seconds(self) -> dict[str, float]: ...

    def unfinished(self) -> list[Job]: ...

    def by_provider(self) -> dict[str, dict[str, float]]: ...

    def workers(self, job_ids: list[str]) -> dict[str, str]: ...

    def close_connections(self) -> None: ...


_WAL_SWITCH = threading.Lock()


def _ensure_wal(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode once, when it is new; WAL is a property of the file, so later
    connections only read it. Switching needs the file to itself, and two connections
    switching at the same moment can deadlock, where SQLite answers "database is locked" at
    once instead of waiting. So one thread of this process switches at a time, and the rare
    clash with another process is retried (it ends as soon as the other's switch is done)."""
    for attempt in range(50):
        try:
            if _mode(conn) == "wal":
                return
            with _WAL_SWITCH:  # checked again inside: another thread may just have switched it
                if _mode(conn) != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.01 + 0.002 * attempt)


def _mode(conn: sqlite3.Connection) -> str:
    # A read first: a connection knows the file is WAL only once it has read the header.
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()


class JobLookups:
    """The journal's reads by column, written once for both backends: each names its driver's
    parameter placeholder (sqlite3 ``?``, psycopg ``%s``) and ``_all``, which runs one query."""

    PARAM: ClassVar[str]

    def _all(self, sql: str, args: tuple = ()) -> list[tuple]:
        raise NotImplementedError

    def _select(self, where: str = "1=1", args: tuple = (), limit: int | None = None) -> list[Job]:
        if limit:  # the newest ``limit`` jobs, still listed oldest first
            rows = self._all(f"SELECT data FROM jobs WHERE {where} ORDER BY created_at DESC, id DESC"
                             f" LIMIT {int(limit)}", args)[::-1]
        else:
            rows = self._all(f"SELECT data FROM jobs WHERE {where} ORDER BY created_at, id", args)
        return [Job.model_validate_json(row[0]) for row in rows]

    def _match(self, limit: int | None = None, **columns: object) -> list[Job]:
        """The jobs whose ``columns`` hold the values given (the names come from this code)."""
        where = " AND ".join(f"{name} = {self.PARAM}" for name in columns)
        return self._select(where, tuple(columns.values()), limit)

    def jobs(self, *, status: str | None = None, limit: int | None = None) -> list[Job]:
        return self._match(limit, status=status) if status else self._select(limit=limit)

    def find(self, provider: str, task_id: str) -> Job | None:
        found = self._match(provider=provider, task_id=task_id)
        return found[0] if found else None

    def by_digest(self, digest: str) -> list[Job]:
        return self._match(request_digest=digest)

    def by_webhook(self, provider: str, token_hash: str) -> Job | None:
        found = self._match(provider=provider, webhook_hash=token_hash)
        return found[0] if found else None


class SQLiteLedger(JobLookups):
    """The embedded ledger: one SQLite file (WAL), safe across threads and processes."""

    PARAM = "?"

    def __init__(self, path: str | Path, limits: BudgetLimits | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.limits = limits or BudgetLimits()
        self.worker: str | None = None
        self._local = threading.local()
        schema.upgrade_sqlite(self._conn(), str(self.path))

    def __repr__(self) -> str:
        return f"<SQLiteLedger {str(self.path)!r}>"

    def _conn(self) -> sqlite3.Connection:
        # One connection per thread and process: sqlite3 connections are not shareable.
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            # First, before any other statement: wait up to a minute for a lock, never fail at once.
            conn.execute("PRAGMA busy_timeout=60000")
            _ensure_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process crash
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextmanager
    def _tx(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- jobs ------------------------------------------------------------------------------

    def open(self, job: Job, session: str | None = None) -> None:
        day = job.created_at.strftime("%Y-%m-%d")
        insert = (
            "INSERT INTO jobs (id, provider, model, status, task_id, request_digest, session, day,"
            " created_at, updated_at, reserved_usd, settled_usd, webhook_hash, data, worker)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (job.id, job.provider, job.model, job.status.value, job.task_id, job.request_digest,
             session, day, job.created_at.isoformat(), job.updated_at.isoformat(), job.reserved_usd,
             job.settled_usd, job.webhook_token_hash, job.model_dump_json(), self.worker))
        scopes = [s for s in budget_scopes(self.limits, job, day, session) if s[1] is not None]
        if not scopes:  # nothing to check: one INSERT is atomic on its own
            self._conn().execute(*insert)
            return
        with self._tx(immediate=True) as db:  # takes the write lock before reading the sums
            self._check_budget(db, job, scopes)
            db.execute(*insert)

    def _check_budget(self, db: sqlite3.Connection, job: Job, scopes: list[Scope]) -> None:
        for name, limit, key, column in scopes:
            where, args = (f"{column} = ?", (key.partition(":")[2],)) if column else ("1=1", ())
            (committed,) = db.execute(f"SELECT COALESCE(SUM({COMMITTED}), 0) FROM jobs WHERE {where}", args).fetchone()
            assert limit is not None
            if job.reserved_usd > limit - committed + 1e-9:
                raise over_budget(job, name, limit, committed)

    # A single statement is a transaction of its own in autocommit mode (isolation_level=None):
    # no BEGIN/COMMIT round trips for the writes made at every status change.

    def record(self, job: Job) -> bool:
        """Write the job's state, unless the row already ended and this state has not: another
        process (a webhook receiver, a resume) may have finished the job meanwhile, and a stale
        copy must not undo that. Returns whether the row was written."""
        cur = self._conn().execute(
            f"UPDATE jobs SET status=?, task_id=?, updated_at=?, data=?, worker=COALESCE(?, worker) WHERE id=? AND"
            f" (status NOT IN {_TERMINAL} OR ? IN {_TERMINAL})",
            (job.status.value, job.task_id, job.updated_at.isoformat(), job.model_dump_json(), self.worker,
             job.id, job.status.value))
        return cur.rowcount == 1

    def close(self, job: Job, cost_usd: float) -> None:
        """Settle once: whoever ends the job first (client, receiver, resume) settles it."""
        job.settled_usd = round(cost_usd, 6)
        self._conn().execute("UPDATE jobs SET status=?, task_id=?, updated_at=?, settled_usd=?, data=?"
                             " WHERE id=? AND settled_usd IS NULL",
                             (job.status.value, job.task_id, job.updated_at.isoformat(), job.settled_usd,
                              job.model_dump_json(), job.id))

    def _all(self, sql: str, args: tuple = ()) -> list[tuple]:
        return self._conn().execute(sql, args).fetchall()

    def get(self, job_id: str) -> Job | None:
        found = self._select("id = ?", (job_id,))
        if not found:  # a unique prefix is enough, as with git; an ambiguous one finds nothing
            pattern = job_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            found = self._select("id LIKE ? ESCAPE '\\'", (pattern,)) if len(job_id) >= 6 else []
        return found[0] if len(found) == 1 else None

    def unfinished(self) -> list[Job]:
        terminal = tuple(s.value for s in JobStatus if s.terminal)
        return self._select(f"status NOT IN ({','.join('?' * len(terminal))})", terminal)

    def seen_delivery(self, provider: str, delivery_id: str) -> bool:
        """Record a webhook delivery; True if it was already recorded (a replay)."""
        with self._tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO webhook_deliveries VALUES (?,?,?)",
                             (provider, delivery_id, time.time()))
            return cur.rowcount == 0

    def totals(self, session: str | None = None) -> dict[str, float]:
        where, args = ("session = ?", (session,)) if session else ("1=1", ())
        today = utcnow().strftime("%Y-%m-%d")
        spent, reserved, spent_today = self._conn().execute(
            f"SELECT COALESCE(SUM(settled_usd), 0),"
            f" COALESCE(SUM(CASE WHEN settled_usd IS NULL THEN reserved_usd ELSE 0 END), 0),"
            f" COALESCE(SUM(CASE WHEN day = ? THEN {COMMITTED} ELSE 0 END), 0) FROM jobs WHERE {where}",
            (today, *args)).fetchone()
        return {"spent_usd": round(spent, 6), "reserved_usd": round(reserved, 6),
                "today_usd": round(spent_today, 6)}

    def by_provider(self) -> dict[str, dict[str, float]]:
        rows = self._conn().execute(
            "SELECT provider, COALESCE(SUM(settled_usd), 0),"
            " COALESCE(SUM(CASE WHEN settled_usd IS NULL THEN reserved_usd ELSE 0 END), 0), COUNT(*)"
            " FROM jobs GROUP BY provider ORDER BY provider").fetchall()
        return {p: {"spent_usd": round(s, 6), "reserved_usd": round(r, 6), "jobs": n} for p, s, r, n in rows}

    def workers(self, job_ids: list[str]) -> dict[str, str]:
        """Job id -> the worker that last held it, for the jobs a worker has held."""
        found: dict[str, str] = {}
        for i in range(0, len(job_ids), 500):
            part = job_ids[i:i + 500]
            rows = self._conn().execute(f"SELECT id, worker FROM jobs WHERE worker IS NOT NULL AND id IN"
                                        f" ({','.join('?' * len(part))})", part)
            found.update(rows.fetchall())
        return found

    def close_connections(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- route health, for the router ----------------------------------------------------

    def route_failed(self, route: str, *, threshold: int, window_s: float, cooldown_s: float) -> float:
        """Count a provider-side failure; returns the cooldown end (epoch s) or 0."""
        now = time.time()
        with self._tx(immediate=True) as db:
            row = db.execute("SELECT failures FROM route_health WHERE route = ?", (route,)).fetchone()
            recent = [float(t) for t in (row[0].split(",") if row and row[0] else []) if now - float(t) < window_s]
            recent.append(now)
            until = now + cooldown_s if len(recent) >= threshold else 0.0
            db.execute("INSERT INTO route_health (route, failures, cooldown_until) VALUES (?,?,?)"
                       " ON CONFLICT(route) DO UPDATE SET failures = excluded.failures,"
                       " cooldown_until = MAX(route_health.cooldown_until, excluded.cooldown_until)",
                       (route, ",".join(f"{t:.3f}" for t in recent), until))
        return until

    def route_succeeded(self, route: str) -> None:
        self._conn().execute("DELETE FROM route_health WHERE route = ?", (route,))

    def cooldowns(self) -> dict[str, float]:
        """Routes cooling down now -> when the cooldown ends (epoch seconds)."""
        rows = self._conn().execute("SELECT route, cooldown_until FROM route_health WHERE cooldown_until > ?",
                                    (time.time(),))
        return dict(rows.fetchall())

    def median_seconds(self) -> dict[str, float]:
        """Median submit-to-completion time of completed jobs, per route (for ``fastest``)."""
        import statistics  # here: only the fastest policy asks, and start-up stays lighter

        rows = self._conn().execute(
            "SELECT provider || '/' || model, (julianday(updated_at) - julianday(created_at)) * 86400"
            " FROM jobs WHERE status = 'completed'").fetchall()
        per: dict[str, list[float]] = {}
        for route, seconds in rows:
            per.setdefault(route, []).append(seconds)
        return {route: statistics.median(values) for route, values in per.items()}


def settled_cost(job: Job) -> float:
    """What a finished job cost. What the backend reported as billed comes first (money, then
    seconds x the quoted price); else a completed job costs its output seconds (or the quoted
    seconds) x the quoted price. A failed or cancelled job costs nothing unless its provider
    reported a charge for it (each provider's ``bills_failed_jobs`` rule decides whether it
    does, e.g. fal's 422 after the model ran)."""
    if job.billed_usd is not None:
        return round(job.billed_usd, 6)
    if job.quote is None:
        return 0.0
    if job.billed_seconds is not None:  # output seconds, billed by the route's rule (minimum, rounding)
        return round(job.quote.billed(job.billed_seconds) * job.quote.price_per_second, 6)
    if job.status is not JobStatus.COMPLETED:
        return 0.0
    seconds = job.duration_s if job.duration_s is not None else job.quote.seconds
    return round(job.quote.billed(seconds) * job.quote.price_per_second, 6)  # the route's minimum, rounding


def is_postgres_url(target: str | Path) -> bool:
    return str(target).startswith(("postgresql://", "postgres://"))


def connect(target: str | Path, limits: BudgetLimits | None = None) -> Ledger:
    """The ledger at ``target``: a ``postgresql://`` URL (needs ``talkinghead[postgres]``) or a
    SQLite file path."""
    if is_postgres_url(target):
        from .ledger_pg import PostgresLedger

        return PostgresLedger(str(target), limits)
    return SQLiteLedger(target, limits)


def open_ledger(settings: Settings, limits: BudgetLimits | None = None) -> Ledger:
    """The journal the settings name: ``database_url`` (TALKINGHEAD_DATABASE_URL) if set, else
    the SQLite file under TALKINGHEAD_HOME."""
    return connect(settings.database_url or settings.database, limits)
