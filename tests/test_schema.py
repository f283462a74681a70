"""Schema versions: a journal written by 0.1.0 opens and upgrades in place; PostgreSQL too."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from talkinghead import schema
from talkinghead.errors import ConfigError
from talkinghead.ledger import BudgetLimits, SQLiteLedger, connect
from talkinghead.models import JobStatus

# Written by talkinghead 0.1.0's own ledger code (no schema version then): one completed job,
# one still running, both in session "s1".
OLD = Path(__file__).parent / "data" / "journal-0.1.0.db"


def columns(db: Path) -> set[str]:
    return {row[1] for row in sqlite3.connect(db).execute("PRAGMA table_info(jobs)")}


def test_a_0_1_0_journal_upgrades_in_place_and_keeps_its_jobs(tmp_path):
    db = tmp_path / "talkinghead.db"
    shutil.copy(OLD, db)
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone() == (0,)
    assert "worker" not in columns(db)
    ledger = SQLiteLedger(db, BudgetLimits(total_usd=0.1))
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone() == (schema.latest("sqlite"),)
    assert "worker" in columns(db)
    done, running = ledger.get("j0000000000aaaaaaaaaaaa"), ledger.get("j0000000000bbbbbbbbbbbb")
    assert (done.status, done.settled_usd, done.task_id) == (JobStatus.COMPLETED, 0.0694, "mock-000001")
    assert [j.id for j in ledger.unfinished()] == [running.id] and running.task_id == "mock-000002"
    assert (ledger.totals()["spent_usd"], ledger.totals()["reserved_usd"]) == (0.0694, 0.0694)
    ledger.worker = "host-a:1"
    running.status = JobStatus.COMPLETED
    ledger.close(running, 0.05)
    assert ledger.record(running) and ledger.workers([running.id]) == {running.id: "host-a:1"}
    SQLiteLedger(db)  # a second open finds it current and changes nothing
    assert ledger.totals()["spent_usd"] == pytest.approx(0.1194)


def test_a_journal_from_a_newer_release_is_refused(tmp_path):
    db = tmp_path / "talkinghead.db"
    SQLiteLedger(db)
    sqlite3.connect(db).execute(f"PRAGMA user_version = {schema.latest('sqlite') + 1}")
    with pytest.raises(ConfigError, match="newer than this release knows"):
        SQLiteLedger(db)


OPEN = "import sys; from talkinghead.ledger import connect; connect(sys.argv[1]).close_connections()"


def test_processes_opening_a_0_1_0_journal_at_once_upgrade_it_once(tmp_path):
    shutil.copy(OLD, tmp_path / "th.db")
    test_processes_opening_one_journal_at_once_upgrade_it_once(str(tmp_path / "th.db"))
    assert len(SQLiteLedger(tmp_path / "th.db").jobs()) == 2


def test_processes_opening_one_journal_at_once_upgrade_it_once(journal_at):
    procs = [subprocess.Popen([sys.executable, "-c", OPEN, journal_at], stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    ledger = connect(journal_at)
    if isinstance(ledger, SQLiteLedger):
        assert sqlite3.connect(journal_at).execute("PRAGMA user_version").fetchone() == (schema.latest("sqlite"),)
    else:
        with ledger._connection() as conn:
            versions = [v for (v,) in conn.execute("SELECT version FROM talkinghead_schema ORDER BY version")]
        assert versions == list(range(1, schema.latest("postgres") + 1))
    ledger.close_connections()


def test_a_postgres_journal_at_version_1_upgrades(pg_cluster):
    import psycopg

    url = pg_cluster.create_database("at_version_1")
    with psycopg.connect(url, autocommit=True) as conn:  # what a first release on PostgreSQL made
        conn.execute("CREATE TABLE talkinghead_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                     " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        conn.execute(schema.migrations("postgres")[0][2])
        conn.execute("INSERT INTO talkinghead_schema (version, name) VALUES (1, 'journal')")
        conn.execute("INSERT INTO jobs (id, provider, model, status, day, created_at, updated_at, data)"
                     " VALUES ('j1', 'mock', 'm', 'completed', '2026-01-01', '2026-01-01T00:00:00+00:00',"
                     " '2026-01-01T00:00:00+00:00', '{}')")
    ledger = connect(url)
    ledger.worker = "h:1"
    with ledger._connection() as conn:
        assert conn.execute("SELECT MAX(version) FROM talkinghead_schema").fetchone() == (schema.latest("postgres"),)
        assert conn.execute("SELECT worker FROM jobs WHERE id = 'j1'").fetchone() == (None,)
    ledger.close_connections()


def test_steps_are_numbered_alike_on_both_backends():
    assert [(v, n) for v, n, _ in schema.migrations("sqlite")] == [(v, n) for v, n, _ in schema.migrations("postgres")]
