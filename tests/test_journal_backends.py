"""The journal's guarantees through the real CLI, on both backends (a SQLite file, then a
PostgreSQL database named by TALKINGHEAD_DATABASE_URL): an idempotent batch, and crash and
resume: a process with 20 jobs in flight is SIGKILLed; `jobs resume` finishes them all from
the journal and the mock records no second submission."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from talkinghead.ledger import is_postgres_url
from talkinghead_mock import read_calls


@pytest.fixture
def env(journal_at, tmp_path):
    return {**os.environ, "TALKINGHEAD_HOME": str(tmp_path / "home"), "TALKINGHEAD_PLUGINS": "mock",
            "TALKINGHEAD_MOCK_STATE_DIR": str(tmp_path / "mockstate"),
            "TALKINGHEAD_DATABASE_URL": journal_at if is_postgres_url(journal_at) else ""}


def th(env, *args, **extra):
    return subprocess.run([sys.executable, "-m", "talkinghead.cli", *args], capture_output=True, text=True,
                          env={**env, **extra}, timeout=300)


def test_batch_then_rerun_submits_nothing(env, tmp_path, face, speech):
    path = tmp_path / "jobs.jsonl"
    path.write_text("".join(json.dumps({"image": str(face), "audio": str(speech), "prompt": f"p{i}"}) + "\n"
                            for i in range(6)))
    first = th(env, "batch", str(path), "--provider", "mock", "--concurrency", "3")
    assert first.returncode == 0, first.stderr
    results = [json.loads(line) for line in (tmp_path / "jobs.results.jsonl").read_text().splitlines()]
    ids = {r["job_id"] for r in results}
    again = th(env, "batch", str(path), "--provider", "mock")
    rerun = [json.loads(line) for line in (tmp_path / "jobs.results.jsonl").read_text().splitlines()]
    assert again.returncode == 0 and {r["status"] for r in rerun} == {"skipped"} and {r["job_id"] for r in rerun} == ids
    assert len(read_calls(tmp_path / "mockstate", "submit")) == 6
    budget = json.loads(th(env, "budget", "--json").stdout)
    assert (budget["spent_usd"], budget["reserved_usd"]) == (pytest.approx(sum(r["cost_usd"] for r in results)), 0)
    assert budget["providers"]["mock"]["jobs"] == 6


CHILD = '''
import asyncio, sys
from talkinghead import AsyncClient, AvatarRequest

async def main():
    client = AsyncClient()
    request = AvatarRequest(image=sys.argv[1], audio=sys.argv[2])
    jobs = await asyncio.gather(*(client.submit(request, provider="mock") for _ in range(20)))
    print("submitted", len(jobs), flush=True)
    await asyncio.gather(*(client.wait(j) for j in jobs))
    print("finished", flush=True)   # never reached: the parent kills us first

asyncio.run(main())
'''


def test_sigkill_with_20_jobs_in_flight_then_resume(env, tmp_path, face, speech):
    env = {**env, "TALKINGHEAD_MOCK_LATENCY": "4", "TALKINGHEAD_MOCK_STEPS": "4"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(face), str(speech)], env=env,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "submitted 20"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    before = [json.loads(line) for line in th(env, "jobs", "list", "--json").stdout.splitlines()]
    assert len(before) == 20 and all(j["task_id"] and j["status"] in ("queued", "running") for j in before)
    shown = json.loads(th(env, "jobs", "show", before[0]["id"]).stdout)
    assert shown["task_id"] == before[0]["task_id"]

    resumed = th(env, "jobs", "resume")
    assert resumed.returncode == 0, resumed.stderr
    lines = resumed.stdout.splitlines()
    assert len(lines) == 20 and all(" completed " in line for line in lines)
    for line in lines:
        assert Path(line.split(" completed ", 1)[1]).stat().st_size > 10_000
    after = [json.loads(line) for line in th(env, "jobs", "list", "--json").stdout.splitlines()]
    assert {j["status"] for j in after} == {"completed"} and len(after) == 20
    assert all(j["settled_usd"] > 0 for j in after)
    submits = read_calls(tmp_path / "mockstate", "submit")
    assert len(submits) == 20 and {c["pid"] for c in submits} == {child.pid}  # none resubmitted
