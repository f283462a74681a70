"""Schema versions of the journal, for both backends: numbered SQL files, applied in order on open.

A step is ``common/NNNN_name.sql`` (written once, its ``{float}`` rendered per dialect) followed
by ``sqlite/NNNN_name.sql`` or ``postgres/NNNN_name.sql`` (what only that backend has); either
part may be absent. Both backends carry the same numbers: version N means the same features on
either. A database records the last version applied (SQLite: ``PRAGMA user_version``;
PostgreSQL: the ``talkinghead_schema`` table) and opening it applies the missing steps in
place, in one transaction, under a lock, so several processes opening a journal at once
upgrade it once. Journals from 0.1.0 carry no version (user_version 0) and are adopted by
step 1, which only creates what is missing.

A database newer than this release (a version we do not know) is refused rather than
written with old assumptions.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from ..errors import ConfigError

# Any 64-bit constant shared by every process: the advisory lock that serialises upgrades.
PG_LOCK = 0x7461_6C6B_6864  # "talkhd"

# What a placeholder in common/*.sql stands for on each backend. A float is 8 bytes on both:
# PostgreSQL's REAL would be 4.
DIALECTS = {"sqlite": {"float": "REAL"}, "postgres": {"float": "DOUBLE PRECISION"}}


def _render(sql: str, backend: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: DIALECTS[backend][m.group(1)], sql)


@cache
def migrations(backend: str) -> tuple[tuple[int, str, str], ...]:
    """(version, name, sql) for every step of ``backend`` ("sqlite" or "postgres"), in order:
    the step's common part rendered for the backend, then the backend's own."""
    parts: dict[tuple[int, str], list[str]] = {}
    for folder in ("common", backend):  # this order: a backend's part may refer to common tables
        for item in resources.files(__package__).joinpath(folder).iterdir():
            if item.name.endswith(".sql"):
                number, _, name = item.name[:-4].partition("_")
                sql = item.read_text()
                parts.setdefault((int(number), name), []).append(_render(sql, backend) if folder == "common" else sql)
    steps = sorted((number, name, "".join(sql)) for (number, name), sql in parts.items())
    if [v for v, _, _ in steps] != list(range(1, len(steps) + 1)):
        raise RuntimeError(f"schema steps for {backend} are not numbered 1..n")
    return tuple(steps)


def latest(backend: str) -> int:
    return migrations(backend)[-1][0]


def _statements(sql: str) -> list[str]:
    # The steps hold plain DDL: no semicolon inside a string or a body.
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _too_new(version: int, backend: str, where: str) -> ConfigError:
    return ConfigError(f"journal {where} has schema version {version}, newer than this release knows "
                       f"({latest(backend)}): upgrade talkinghead")


def _apply(conn: Any, backend: str, version: int, where: str, mark: Callable[[int, str], object]) -> int:
    """Run every step after ``version``, each followed by ``mark(number, name)``, which records it
    in the same transaction; returns the version reached."""
    if version > latest(backend):
        raise _too_new(version, backend, where)
    for number, name, sql in migrations(backend):
        if number > version:
            for statement in _statements(sql):
                conn.execute(statement)
            mark(number, name)
            version = number
    return version


def upgrade_sqlite(conn: sqlite3.Connection, where: str) -> int:
    """Bring an autocommit connection's database to the latest version; returns it."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version == latest("sqlite"):
        return version
    conn.execute("BEGIN IMMEDIATE")  # the write lock: a second opener waits, then sees the new version
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        version = _apply(conn, "sqlite", version, where,  # user_version is part of the transaction
                         lambda number, _: conn.execute(f"PRAGMA user_version = {number}"))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return version


def upgrade_postgres(conn: Any, where: str) -> int:
    """The same for a psycopg connection (autocommit): one transaction under an advisory lock."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PG_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS talkinghead_schema ("
                     " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                     " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        version = int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM talkinghead_schema").fetchone()[0])
        return _apply(conn, "postgres", version, where, lambda number, name: conn.execute(
            "INSERT INTO talkinghead_schema (version, name) VALUES (%s, %s)", (number, name)))
