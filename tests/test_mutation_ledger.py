"""The journal's promises that mutation testing (``make mutation``, docs/testing.md) found unpinned:
what a refusal says is left, a reservation that fits exactly, the day and session totals, job-id
prefixes, the journal's queries (webhooks, batch digests, resume, workers, `jobs` listings) and
route health. Interface tests run on both backends (``make_ledger``: SQLite, then PostgreSQL)."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import timedelta

import pytest

from talkinghead import BudgetExceeded, Job, JobStatus, Quote
from talkinghead.config import Settings
from talkinghead.ledger import BudgetLimits, SQLiteLedger, is_postgres_url, open_ledger, settled_cost
from talkinghead.models import utcnow


def job(cost: float, provider: str = "p", **fields) -> Job:
    q = Quote(provider=provider, model="m", mode="std", seconds=cost, price_per_second=1.0, cost_usd=cost)
    return Job(provider=provider, model="m", quote=q, reserved_usd=cost, **fields)


def finished(ledger, j: Job, cost: float, status: JobStatus = JobStatus.COMPLETED) -> None:
    j.status = status
    ledger.close(j, cost)


# -- budgets: what is left, and an exact fit --------------------------------------------------------

def test_a_refusal_says_what_is_left_and_an_exact_fit_is_accepted(make_ledger):
    ledger = make_ledger(BudgetLimits(total_usd=1.0))
    ledger.open(job(0.7))
    with pytest.raises(BudgetExceeded) as info:
        ledger.open(job(0.5))
    assert str(info.value) == ("budget: the quote of $0.5000 (p/m, std) is over the $0.3000 left of the "
                               "$1.00 total budget")
    assert info.value.needed == 0.5 and info.value.available == pytest.approx(0.3)
    ledger.open(job(0.3))  # 0.7 + 0.3 is the limit itself: allowed
    assert ledger.totals()["reserved_usd"] == 1.0


def test_a_job_settled_over_its_quote_leaves_nothing_not_less(make_ledger):
    ledger = make_ledger(BudgetLimits(total_usd=1.0))
    dear = job(0.5)
    ledger.open(dear)
    finished(ledger, dear, 1.2)  # the backend billed more than quoted: committed is now over the limit
    with pytest.raises(BudgetExceeded) as info:
        ledger.open(job(0.1))
    assert "over the $0.0000 left of the $1.00 total budget" in str(info.value)
    assert info.value.available == pytest.approx(-0.2)


# -- totals: today, a session, rounding ------------------------------------------------------------

def test_today_counts_only_todays_jobs_and_a_session_only_its_own(make_ledger):
    ledger = make_ledger()
    yesterday = job(0.4)
    yesterday.created_at = yesterday.updated_at = utcnow() - timedelta(days=1)
    ledger.open(yesterday, session="s1")
    finished(ledger, yesterday, 0.4)
    ledger.open(job(0.25), session="s1")
    ledger.open(job(0.12345678), session="s2")
    assert ledger.totals() == {"spent_usd": 0.4, "reserved_usd": 0.373457, "today_usd": 0.373457}
    assert ledger.totals(session="s1") == {"spent_usd": 0.4, "reserved_usd": 0.25, "today_usd": 0.25}


def test_a_settlement_is_kept_to_the_micro_dollar(make_ledger):
    ledger = make_ledger()
    j = job(0.2)
    ledger.open(j)
    finished(ledger, j, 0.12345678)
    assert j.settled_usd == 0.123457 and ledger.get(j.id).settled_usd == 0.123457


# -- job ids: a unique prefix of six or more characters, taken literally ---------------------------

def test_a_unique_prefix_finds_a_job_and_an_ambiguous_or_short_one_finds_none(make_ledger):
    ledger = make_ledger()
    ids = ["jaaaaaa1xx", "jaaaaaa2yy", "jzzzz9qq", "jb_c%d1", "jb_cQd2", "jbXc%d3", "jq\\rst1", "jqrst2",
           "jlong01", "jlong01x"]
    for i in ids:
        ledger.open(job(0.01, id=i))

    def found(key):
        j = ledger.get(key)
        return j.id if j else None

    assert found("jaaaaaa1xx") == "jaaaaaa1xx"
    assert found("jaaaaaa1") == "jaaaaaa1xx"
    assert found("jaaaaaa") is None       # two jobs start so: ambiguous, never the oldest
    assert found("jzzzz9") == "jzzzz9qq"
    assert found("jzzzz") is None         # under six characters: whole ids only
    assert found("jb_c%d") == "jb_c%d1"   # _ and % are characters here, not wildcards
    assert found("jlong01") == "jlong01"  # a whole id wins over the longer ids it starts
    assert found("jq\\rst") == "jq\\rst1"  # and so is a backslash
    assert found("jnothere") is None


# -- listings --------------------------------------------------------------------------------------

def test_jobs_lists_the_newest_oldest_first_and_filters_by_status(make_ledger):
    ledger = make_ledger()
    start = utcnow()
    made = []
    for i in range(4):
        j = job(0.01)
        j.created_at = j.updated_at = start + timedelta(seconds=i)
        ledger.open(j)
        made.append(j.id)
    gone = ledger.get(made[1])
    finished(ledger, gone, 0.0, JobStatus.FAILED)
    assert [j.id for j in ledger.jobs()] == made
    assert [j.id for j in ledger.jobs(limit=2)] == made[2:]
    assert [j.id for j in ledger.jobs(status="failed")] == [made[1]]
    assert [j.id for j in ledger.jobs(status="created", limit=2)] == [made[2], made[3]]
    assert [j.id for j in ledger.unfinished()] == [made[0], made[2], made[3]]


def test_lookups_by_task_digest_and_webhook(make_ledger):
    ledger = make_ledger()
    a = job(0.01, request_digest="d1", webhook_token_hash="h1")
    b = job(0.01, request_digest="d1")
    c = job(0.01, provider="q", request_digest="d2", webhook_token_hash="h1")
    for j in (a, b, c):
        ledger.open(j)
    a.task_id, c.task_id = "t1", "t1"
    ledger.record(a)
    ledger.record(c)
    assert ledger.find("p", "t1").id == a.id and ledger.find("q", "t1").id == c.id
    assert ledger.find("p", "t2") is None
    assert [j.id for j in ledger.by_digest("d1")] == [a.id, b.id] and ledger.by_digest("d3") == []
    assert ledger.by_webhook("p", "h1").id == a.id and ledger.by_webhook("q", "h1").id == c.id
    assert ledger.by_webhook("p", "h2") is None


def test_a_webhook_delivery_is_new_once_per_provider(make_ledger):
    ledger = make_ledger()
    assert ledger.seen_delivery("p", "d1") is False
    assert ledger.seen_delivery("p", "d1") is True   # a replay
    assert ledger.seen_delivery("q", "d1") is False  # another provider's id space


def test_spending_by_provider(make_ledger):
    ledger = make_ledger()
    a, b, c = job(0.3), job(0.2), job(0.5, provider="q")
    for j in (a, b, c):
        ledger.open(j)
    finished(ledger, a, 0.25)
    assert ledger.by_provider() == {"p": {"spent_usd": 0.25, "reserved_usd": 0.2, "jobs": 2},
                                    "q": {"spent_usd": 0.0, "reserved_usd": 0.5, "jobs": 1}}


def test_workers_name_only_the_jobs_a_worker_held(make_ledger):
    mine, plain = make_ledger(), make_ledger()
    mine.worker = "host:1"
    held, free = [job(0.01) for _ in range(3)], job(0.01)
    for j in held:
        mine.open(j)
    plain.open(free)
    plain.record(held[0])  # written by a client that is no worker: the worker stays named
    # Asked in parts of 500 (SQLite bounds a statement's variables): the first, the 501st and
    # the last id are each in a different part.
    asked = [f"j{i:08d}" for i in range(1200)]
    asked[0], asked[500], asked[600], asked[-1] = held[0].id, held[1].id, free.id, held[2].id
    assert plain.workers(asked) == {j.id: "host:1" for j in held}


# -- route health ----------------------------------------------------------------------------------

def test_failures_count_within_the_window_only(make_ledger, monkeypatch):
    ledger = make_ledger()
    clock = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    kw = {"threshold": 2, "window_s": 60.0, "cooldown_s": 30.0}
    assert ledger.route_failed("p/m", **kw) == 0.0
    clock[0] += 61  # the first failure is out of the window now
    assert ledger.route_failed("p/m", **kw) == 0.0
    clock[0] += 1
    assert ledger.route_failed("p/m", **kw) == clock[0] + 30.0
    assert ledger.cooldowns() == {"p/m": clock[0] + 30.0}


def test_failures_counted_from_many_threads_are_all_counted(tmp_path):
    """Each failure is read and written in one write transaction: none is lost to a race."""
    ledger = SQLiteLedger(tmp_path / "th.db")
    threads, each = 8, 20  # enough to race: with a deferred BEGIN some are lost or "locked"
    start = threading.Barrier(threads)
    errors: list[Exception] = []

    def fail_often():
        try:
            start.wait()
            for _ in range(each):
                ledger.route_failed("p/m", threshold=threads * each, window_s=600.0, cooldown_s=30.0)
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            ledger.close_connections()

    workers = [threading.Thread(target=fail_often) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert errors == []
    (failures,) = ledger._conn().execute("SELECT failures FROM route_health").fetchone()
    assert len(failures.split(",")) == threads * each
    assert "p/m" in ledger.cooldowns()  # the last one reached the threshold


# -- the SQLite file -------------------------------------------------------------------------------

def test_a_new_journal_makes_its_folders_and_closing_ends_its_connection(tmp_path):
    ledger = SQLiteLedger(tmp_path / "new" / "deeper" / "th.db")
    ledger.open(job(0.01))
    conn = ledger._conn()
    ledger.close_connections()
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")
    assert len(ledger.jobs()) == 1  # a new connection on the next use


def test_open_ledger_keeps_the_limits_and_takes_either_postgres_scheme(tmp_path, monkeypatch):
    monkeypatch.delenv("TALKINGHEAD_DB", raising=False)
    limits = BudgetLimits(total_usd=2.0)
    ledger = open_ledger(Settings(home=tmp_path), limits)
    assert isinstance(ledger, SQLiteLedger) and ledger.limits is limits
    assert ledger.path == tmp_path / "talkinghead.db"
    ledger.close_connections()
    assert is_postgres_url("postgresql://u@h/db") and is_postgres_url("postgres://u@h/db")
    assert not is_postgres_url(tmp_path / "postgres.db")


def test_a_job_with_no_quote_costs_nothing():
    j = Job(provider="p", model="m", status=JobStatus.COMPLETED, duration_s=5.0)
    assert settled_cost(j) == 0.0
