"""Shared fixtures for the core tests. The talkinghead pytest plugin (talkinghead.testing.plugin) is
active too: network guard on, TALKINGHEAD_HOME in a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def face() -> Path:
    return EXAMPLES / "face.jpg"


@pytest.fixture
def speech() -> Path:
    return EXAMPLES / "hello.mp3"


@pytest.fixture
def fresh_plugins():
    """Plugin discovery from scratch, and back to normal afterwards."""
    from talkinghead import plugins

    plugins.reset()
    yield plugins
    plugins.reset()


# -- leaks fail loudly ---------------------------------------------------------------------------
# A test that leaves a thread running (a sync Client never closed, a fake server never stopped)
# or a talkinghead temp folder behind fails here, naming what it left, instead of slowing or
# confusing the tests after it.

_TEMP_PREFIXES = ("talkinghead-",)


def pytest_configure(config):
    """A temp folder of this run's own, for this process and its subprocesses, so what the
    leak check sees is ours (other test runs on the machine share /tmp)."""
    import os
    import tempfile

    private = tempfile.mkdtemp(prefix="th-tests-")
    os.environ["TMPDIR"] = private
    tempfile.tempdir = private


def _temp_folders() -> set[str]:
    import tempfile

    root = Path(tempfile.gettempdir())
    return {p.name for p in root.iterdir() if p.name.startswith(_TEMP_PREFIXES)} if root.exists() else set()


@pytest.fixture(autouse=True)
def _no_leaks(request):
    import threading
    import time

    threads_before = set(threading.enumerate())
    temps_before = _temp_folders()
    yield
    if request.node.get_closest_marker("allow_leaks"):
        return
    deadline = time.monotonic() + 2.0
    while True:  # threads told to stop get a moment to finish
        left = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    temps = _temp_folders() - temps_before
    problems = [f"thread {t.name!r} still running" for t in left]
    problems += [f"temp folder {name} left behind" for name in sorted(temps)]
    if problems:
        pytest.fail("the test leaked: " + "; ".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL server for the whole run (tests/pg_cluster.py). Missing server
    binaries fail the run with one line: `make test` installs them, nothing is skipped."""
    from tests.pg_cluster import Cluster, ClusterError

    try:
        cluster = Cluster().start()
    except ClusterError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def journal_at(request, tmp_path) -> str:
    """Where a fresh, empty journal lives, on each backend: a SQLite path or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "th.db")
    import uuid

    return request.getfixturevalue("pg_cluster").create_database(f"t{uuid.uuid4().hex[:16]}")


@pytest.fixture
def make_ledger(journal_at):
    """``make_ledger(limits)``: a ledger on the test's journal; its connections close afterwards."""
    from talkinghead.ledger import connect

    made = []

    def make(limits=None):
        made.append(connect(journal_at, limits))
        return made[-1]

    yield make
    for ledger in made:
        ledger.close_connections()
