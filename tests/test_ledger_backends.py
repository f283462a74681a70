"""Both backends give the same answers: the same operations on a SQLite journal and a
PostgreSQL one accept and refuse the same reservations, with the same messages and totals,
and PostgreSQL's running sums per budget scope always equal the sums over its jobs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talkinghead.errors import BudgetExceeded
from talkinghead.ledger import BudgetLimits, SQLiteLedger, connect
from talkinghead.models import Job, JobStatus, Quote

opens = st.tuples(st.just("open"), st.sampled_from(["p", "q"]), st.sampled_from([None, "s1", "s2"]),
                  st.integers(0, 10_000).map(lambda n: n / 10_000))
closes = st.tuples(st.just("close"), st.integers(0, 40), st.sampled_from([0.0, 0.5, 1.0]), st.just(0))
limit = st.one_of(st.none(), st.integers(0, 400).map(lambda n: n / 100))


@pytest.fixture(scope="module")
def pg_url(pg_cluster):
    return pg_cluster.create_database("backends_alike")


def sums_over_jobs(pg) -> dict[str, float]:
    with pg._connection() as conn:
        rows = conn.execute("SELECT provider, day, session, COALESCE(settled_usd, reserved_usd) FROM jobs").fetchall()
    sums: dict[str, float] = {}
    for provider, day, session, committed in rows:
        for key in ("total", f"day:{day}", f"provider:{provider}") + ((f"session:{session}",) if session else ()):
            sums[key] = sums.get(key, 0.0) + committed
    return sums


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.one_of(opens, closes), max_size=40), total=limit, daily=limit, per_p=limit, session=limit)
def test_sqlite_and_postgres_answer_alike(pg_url, tmp_path_factory, ops, total, daily, per_p, session):
    limits = BudgetLimits(total_usd=total, daily_usd=daily, session_usd=session,
                          per_provider={} if per_p is None else {"p": per_p})
    lite = SQLiteLedger(tmp_path_factory.mktemp("alike") / "th.db", limits)
    pg = connect(pg_url, limits)
    with pg._connection() as conn:
        conn.execute("TRUNCATE jobs, budgets")
    opened: list[Job] = []
    try:
        for op in ops:
            if op[0] == "open":
                _, provider, sess, cost = op
                q = Quote(provider=provider, model="m", mode="std", seconds=cost, price_per_second=1.0, cost_usd=cost)
                job = Job(provider=provider, model="m", quote=q, reserved_usd=cost)
                answers = []
                for ledger in (lite, pg):
                    try:
                        ledger.open(job.model_copy(), session=sess)
                        answers.append("ok")
                    except BudgetExceeded as exc:
                        answers.append(str(exc))
                assert answers[0] == answers[1]
                if answers[0] == "ok":
                    opened.append(job)
            elif opened:
                _, i, fraction, _ = op
                job = opened[i % len(opened)]
                job.status = JobStatus.COMPLETED if fraction else JobStatus.FAILED
                for ledger in (lite, pg):
                    ledger.close(job.model_copy(), job.reserved_usd * fraction)
            assert lite.totals() == pg.totals()
            assert lite.totals(session="s1") == pg.totals(session="s1")
            assert lite.by_provider() == pg.by_provider()
        running = pg.budget_rows()
        for key, value in sums_over_jobs(pg).items():
            assert running[key] == pytest.approx(value, abs=1e-9)
    finally:
        pg.close_connections()
        lite.close_connections()


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TALKINGHEAD_HOME": str(tmp_path),
           "TALKINGHEAD_DATABASE_URL": f"postgresql://th:hunter2-secret@127.0.0.1:{port}/th?password=hunter2"}
    proc = subprocess.run([sys.executable, "-m", "talkinghead.cli", "jobs", "list"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"error: journal postgresql://127.0.0.1:{port}/th: cannot connect")
    assert "hunter2" not in proc.stderr + proc.stdout
    bad = subprocess.run([sys.executable, "-m", "talkinghead.cli", "jobs", "list"], capture_output=True, text=True,
                         env={**env, "TALKINGHEAD_DATABASE_URL": "mysql://u:hunter2@h/db"}, timeout=60)
    assert bad.returncode == 2 and "is not a postgresql:// URL" in bad.stderr and "hunter2" not in bad.stderr
