"""Fixtures for the fault corpus: the loopback fake inference.sh server (real uvicorn, real
sockets), the real ``AsyncClient`` on the real inference.sh provider, and a real SQLite journal
in a temp dir, plus the checks every fault test ends with (journal status, reservation,
duplicate creates, ledger consistency)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from talkinghead import AsyncClient
from talkinghead.ledger import SQLiteLedger
from talkinghead.models import AvatarRequest, JobStatus
from talkinghead.testing.loopback import serve_asgi
from talkinghead_inferencesh import InferenceShProvider
from talkinghead_inferencesh.fake import FakeInferenceSh
from tests.plugins.shared import backend_fixtures

ROOT = Path(__file__).resolve().parents[2]
FACE = ROOT / "examples" / "face.jpg"
MP3 = ROOT / "examples" / "hello.mp3"
KEY = "fault-corpus-key-0123456789"

# Everything a fault test may wait on, made tiny. ``timeout`` is the REST read timeout: a
# STALLed answer (held back ``STALL_SECONDS``) outlasts it.
FAST: dict[str, Any] = {
    "api_key": KEY, "timeout": 0.5, "retry_backoff": 0.01, "stream_idle_timeout": 0.4,
    "stream_read_timeout": 5.0, "reconnect_delay": 0.01, "stream_reconnects": 3,
}
STALL_SECONDS = 1.2
STEP = 0.01  # seconds per task status step on the fake

TERMINAL = {s.value for s in JobStatus if s.terminal}


# ``video_bytes``, ``fake_server`` and ``fake``: the fake with tiny latencies and an empty record
# for each test (the plugin tests' fixtures; this folder builds its own client and provider).
globals().update({name: fixture for name, fixture in backend_fixtures(
    FakeInferenceSh, InferenceShProvider, {}, {},
    reset={"step_latency": STEP, "stall_seconds": STALL_SECONDS, "heartbeat_interval": 0.02,
           "stream_max_seconds": 5.0, "retry_after": 0.02}).items()
    if name in ("video_bytes", "fake_server", "fake")})


@pytest.fixture
async def make_client(fake: FakeInferenceSh, tmp_path: Path) -> AsyncIterator[Callable[..., AsyncClient]]:
    """``make_client(**provider_config)``: an ``AsyncClient`` on the inference.sh provider
    pointed at the fake, journaling to ``tmp_path/journal.db`` (every client of a test shares
    that file, as processes sharing a journal would)."""
    made: list[AsyncClient] = []

    def make(*, webhook_base: str | None = None, **config: Any) -> AsyncClient:
        provider = InferenceShProvider({**FAST, "base_url": fake.url, **config})
        client = AsyncClient(providers=[provider], ledger=SQLiteLedger(tmp_path / "journal.db"),
                             webhook_base=webhook_base)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@contextlib.contextmanager
def serve_receiver(client: AsyncClient) -> Iterator[str]:
    """The webhook receiver (``talkinghead serve``) for ``client`` under uvicorn on loopback.
    The client's connections live on the server's event loop, so they are closed there."""
    from talkinghead.webhooks import create_app

    app = create_app(client)

    async def with_close(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/__close__":
            await client.aclose()
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)

    with serve_asgi(with_close, name="webhook-receiver") as url:
        try:
            yield url
        finally:
            httpx.post(url + "/__close__", timeout=5)


def request(**fields: Any) -> AvatarRequest:
    return AvatarRequest(image=FACE, audio=MP3, **fields)


@dataclass
class Row:
    id: str
    status: str
    task_id: str | None
    reserved_usd: float
    settled_usd: float | None

    @property
    def reserved(self) -> bool:
        """Whether the job still holds its reservation (it counts at its quote)."""
        return self.settled_usd is None


def journal(db: Path) -> list[Row]:
    """The jobs as they are on disk, read with a connection of our own."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, status, task_id, reserved_usd, settled_usd FROM jobs"
                            " ORDER BY created_at, id").fetchall()
    return [Row(*r) for r in rows]


def assert_consistent(db: Path) -> list[Row]:
    """The ledger rules: a finished job holds no reservation (settled: its cost if completed,
    nothing if it failed or was cancelled); an unfinished or ``unknown`` job keeps its whole
    reservation; the reserved total is exactly what the unfinished jobs hold."""
    rows = journal(db)
    for row in rows:
        if row.status in TERMINAL:
            assert row.settled_usd is not None, f"{row}: finished but still reserved"
            if row.status == "completed":
                assert row.settled_usd > 0 and row.task_id, row
            else:
                assert row.settled_usd == 0, f"{row}: charged for a job that did not complete"
        else:
            assert row.settled_usd is None and row.reserved_usd > 0, f"{row}: unfinished but not reserved"
        if row.status == "unknown":
            assert row.task_id is None, row
    with sqlite3.connect(db) as conn:
        (held,) = conn.execute("SELECT COALESCE(SUM(reserved_usd), 0) FROM jobs WHERE settled_usd IS NULL").fetchone()
    expected = sum(r.reserved_usd for r in rows if r.status not in TERMINAL)
    assert held == pytest.approx(expected, abs=1e-9)
    return rows


def tasks_per_prompt(fake: FakeInferenceSh) -> dict[str, int]:
    """How many tasks the fake made for each request (told apart by prompt)."""
    out: dict[str, int] = {}
    for task in list(fake.tasks.values()):
        prompt = str(task.input.get("prompt"))
        out[prompt] = out.get(prompt, 0) + 1
    return out
