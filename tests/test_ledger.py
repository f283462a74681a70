"""The ledger: reservations that never overspend, from coroutines, threads and processes.

Every test here runs on both backends (``journal_at``: a SQLite file, then a database on a
real throwaway PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talkinghead import AsyncClient, AvatarRequest, BudgetExceeded, Client, Job, JobStatus, Quote
from talkinghead.ledger import BudgetLimits, Ledger, SQLiteLedger, is_postgres_url
from talkinghead.plugins import get_provider_classes

MOCK = get_provider_classes()["mock"]


def in_threads(target, n: int) -> None:
    """Run ``target`` in ``n`` threads at once; return when every one has ended."""
    threads = [threading.Thread(target=target) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.fixture(autouse=True)
def _mock_may_be_chosen(monkeypatch):
    """These tests let the router pick the mock without naming it: the explicit test setting
    (a test double is otherwise used only by name)."""
    monkeypatch.setenv("TALKINGHEAD_ALLOW_TEST_ROUTES", "1")
COST = 0.0694  # 6.94 s x 0.01 USD/s


def committed(ledger: Ledger) -> float:
    t = ledger.totals()
    return t["spent_usd"] + t["reserved_usd"]


def empty(ledger: Ledger) -> None:
    """Start a hypothesis example from an empty journal (the test's database is reused)."""
    if isinstance(ledger, SQLiteLedger):
        ledger._conn().execute("DELETE FROM jobs")
    else:
        with ledger._connection() as conn:
            conn.execute("TRUNCATE jobs, budgets")


def job(cost: float, provider: str = "p") -> Job:
    q = Quote(provider=provider, model="m", mode="std", seconds=cost, price_per_second=1.0, cost_usd=cost)
    return Job(provider=provider, model="m", quote=q, reserved_usd=cost)


async def test_200_concurrent_submissions_never_overspend(make_ledger, face, speech):
    ledger = make_ledger(BudgetLimits(total_usd=1.0))
    client = AsyncClient(providers=[MOCK()], ledger=ledger)
    request = AvatarRequest(image=face, audio=speech)
    outcomes = await asyncio.gather(*(client.submit(request) for _ in range(200)), return_exceptions=True)
    accepted = [o for o in outcomes if isinstance(o, Job)]
    rejected = [o for o in outcomes if isinstance(o, BudgetExceeded)]
    assert len(accepted) + len(rejected) == 200
    assert len(accepted) == int(1.0 // COST)
    assert committed(ledger) <= 1.0 + 1e-9


def test_8_threads_never_overspend(make_ledger, face, speech):
    request = AvatarRequest(image=face, audio=speech)
    results: list[object] = []

    def worker():
        with Client(providers=[MOCK()], ledger=make_ledger(BudgetLimits(total_usd=1.5))) as client:
            for _ in range(10):
                try:
                    results.append(client.submit(request))
                except BudgetExceeded as exc:
                    results.append(exc)

    in_threads(worker, 8)
    accepted = sum(isinstance(r, Job) for r in results)
    assert accepted == int(1.5 // COST) and len(results) == 80
    assert committed(make_ledger()) <= 1.5 + 1e-9


PROCESS = '''
import sys
from talkinghead.errors import BudgetExceeded
from talkinghead.ledger import BudgetLimits, connect
from talkinghead.models import Job, Quote
ledger = connect(sys.argv[1], BudgetLimits(total_usd=2.0))
ok = no = 0
for _ in range(25):
    q = Quote(provider="p", model="m", mode="std", seconds=0.1, price_per_second=1.0, cost_usd=0.1)
    try:
        ledger.open(Job(provider="p", model="m", quote=q, reserved_usd=0.1))
        ok += 1
    except BudgetExceeded:
        no += 1
print(ok, no)
'''


def test_4_processes_on_one_database_never_overspend(make_ledger, journal_at):
    make_ledger()  # create the schema once, as a first run would
    procs = [subprocess.Popen([sys.executable, "-c", PROCESS, journal_at], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    counts = [tuple(map(int, p.communicate(timeout=120)[0].split())) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(ok for ok, _ in counts) == 20 and sum(no for _, no in counts) == 80
    assert committed(make_ledger()) == pytest.approx(2.0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(costs=st.lists(st.floats(min_value=0.0, max_value=3.0, allow_nan=False), min_size=1, max_size=25),
       actions=st.lists(st.tuples(st.sampled_from(["settle", "release", "partial"]), st.integers(0, 24)),
                        max_size=25),
       limit=st.floats(min_value=0.0, max_value=10.0))
def test_property_spent_plus_reserved_within_limit(make_ledger, costs, actions, limit):
    ledger = make_ledger(BudgetLimits(total_usd=limit))
    empty(ledger)
    opened: list[Job] = []
    steps = [("open", i) for i in range(len(costs))] + list(actions)
    for kind, i in steps:
        if kind == "open":
            j = job(round(costs[i], 4))
            try:
                ledger.open(j)
                opened.append(j)
            except BudgetExceeded:
                pass
        elif opened and opened[i % len(opened)].settled_usd is None:
            j = opened[i % len(opened)]
            j.status = JobStatus.COMPLETED if kind != "release" else JobStatus.FAILED
            # settling never above the reservation: output length is the audio's length
            ledger.close(j, {"settle": j.reserved_usd, "release": 0.0, "partial": j.reserved_usd * 0.5}[kind])
        assert committed(ledger) <= limit + 1e-6


def test_limits_by_day_provider_and_session(make_ledger):
    ledger = make_ledger(BudgetLimits(daily_usd=1.0, per_provider={"p": 0.5}, session_usd=0.7))
    ledger.open(job(0.4), session="s1")
    with pytest.raises(BudgetExceeded, match="p provider budget"):
        ledger.open(job(0.2), session="s1")
    ledger.open(job(0.2, provider="q"), session="s2")
    with pytest.raises(BudgetExceeded, match="this run's budget"):
        ledger.open(job(0.35, provider="q"), session="s1")
    ledger.open(job(0.35, provider="q"), session="s3")
    with pytest.raises(BudgetExceeded, match="daily budget"):
        ledger.open(job(0.1, provider="q"), session="s4")


def test_the_daily_budget_is_per_calendar_day(make_ledger):
    """What was committed yesterday does not count against today's limit, and two jobs on one
    day share it, whatever their minute or second (the day key is the date, not the time)."""
    from datetime import timedelta

    from talkinghead.models import utcnow

    ledger = make_ledger(BudgetLimits(daily_usd=1.0))
    now = utcnow()
    yesterday = job(0.9)
    yesterday.created_at = yesterday.updated_at = now - timedelta(days=1)
    ledger.open(yesterday)
    ledger.open(job(0.9))  # a new day: the whole limit again
    late = job(0.2)
    late.created_at = late.updated_at = now.replace(hour=23, minute=59, second=59)
    with pytest.raises(BudgetExceeded, match="daily budget"):
        ledger.open(late)  # the same date as the 0.9 above, another hour and minute
    early = job(0.2)
    early.created_at = early.updated_at = now.replace(hour=0, minute=0, second=1) + timedelta(days=1)
    ledger.open(early)  # tomorrow


def test_cli_budget_exits_3_naming_quote_and_budget(journal_at, face, speech):
    env = {**os.environ, "TALKINGHEAD_DATABASE_URL": journal_at if is_postgres_url(journal_at) else ""}
    proc = subprocess.run([sys.executable, "-m", "talkinghead.cli", "generate", "--provider", "mock",
                           "--image", str(face), "--audio", str(speech), "--budget", "0.01"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.strip() == ("error: budget: the quote of $0.0694 (mock/mock-avatar, std) is over the "
                                   "$0.0100 left of the $0.01 this run's budget")


def test_journal_write_order(make_ledger, tmp_path, face, speech):
    """The job row exists before the create call, and the task id is written as soon as known."""
    ledger = make_ledger()
    seen = {}

    class Spy(MOCK):
        async def submit(self, job, prepared):
            seen["before_create"] = ledger.get(job.id)
            return await super().submit(job, prepared)

        async def poll(self, job):
            seen.setdefault("first_poll", ledger.get(job.id))
            return await super().poll(job)

    client = AsyncClient(providers=[Spy()], ledger=ledger)
    asyncio.run(client.run(AvatarRequest(image=face, audio=speech), output=tmp_path / "v.mp4"))
    before, first_poll = seen["before_create"], seen["first_poll"]
    assert before.status is JobStatus.CREATED and before.task_id is None and before.reserved_usd > 0
    assert first_poll.task_id and first_poll.status is JobStatus.QUEUED
    final = ledger.get(before.id)
    assert final.status is JobStatus.COMPLETED and Path(final.output_path).exists()
    assert final.input_summary["image"]["format"] == "jpeg"


def test_a_stale_copy_never_undoes_a_finished_job(make_ledger):
    """Two processes hold the same job (say, a webhook receiver and the submitter): the one
    that finishes it wins, and the other's late, stale write changes nothing."""
    ledger = make_ledger()
    mine = job(0.5)
    ledger.open(mine)
    theirs = ledger.get(mine.id)
    theirs.status, theirs.task_id = JobStatus.COMPLETED, "t1"
    ledger.close(theirs, 0.4)
    mine.status = JobStatus.UNKNOWN
    assert ledger.record(mine) is False
    mine.status = JobStatus.FAILED
    ledger.close(mine, 0.0)  # settles once: the first close stands
    saved = ledger.get(mine.id)
    assert (saved.status, saved.task_id, saved.settled_usd) == (JobStatus.COMPLETED, "t1", 0.4)
    saved.output_path = "/videos/v.mp4"  # a finished job may still gain its download path
    assert ledger.record(saved) and ledger.get(mine.id).output_path == "/videos/v.mp4"


def test_many_threads_opening_a_new_journal_at_once(tmp_path):
    """Threads (each with its own connection) opening one fresh journal file at the same
    instant: switching to WAL needs the file to itself, and a connection that tried it while
    another was opening got "database is locked". Every thread must open and write."""
    for attempt in range(40):
        db = tmp_path / f"fresh-{attempt}.db"
        start = threading.Barrier(12)
        errors: list[BaseException] = []

        def opener(start=start, db=db, errors=errors):
            try:
                start.wait()
                ledger = SQLiteLedger(db)
                ledger.open(job(0.01))
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        in_threads(opener, 12)
        assert errors == []
        assert len(SQLiteLedger(db).jobs()) == 12


def test_busy_timeout_first_and_wal_switched_once(tmp_path, monkeypatch):
    """The cause of "database is locked" at ``PRAGMA journal_mode=WAL``: every connection
    switched the file to WAL (two switching at once deadlock, and SQLite then fails at once
    without waiting), and before its busy timeout was set. Now the timeout is the first
    statement of every connection and a new file is switched exactly once."""
    import sqlite3

    statements: list[list[str]] = []
    real = sqlite3.connect

    def traced(*args, **kwargs):
        conn = real(*args, **kwargs)
        mine: list[str] = []
        statements.append(mine)
        conn.set_trace_callback(mine.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    db = tmp_path / "new.db"
    start = threading.Barrier(8)

    def opener():
        start.wait()
        SQLiteLedger(db).jobs()

    in_threads(opener, 8)
    assert len(statements) == 8
    assert all(s[0].upper().startswith("PRAGMA BUSY_TIMEOUT") for s in statements)
    switches = [x for s in statements for x in s if x.upper().replace(" ", "") == "PRAGMAJOURNAL_MODE=WAL"]
    assert len(switches) == 1
    SQLiteLedger(db).jobs()  # an existing file is never switched again
    assert not any(x.upper().replace(" ", "") == "PRAGMAJOURNAL_MODE=WAL" for x in statements[-1])
