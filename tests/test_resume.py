"""Crash and resume: a process with 20 jobs in flight is SIGKILLed; `jobs resume` finishes them
all from the journal and the mock records no second submission."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from talkinghead_mock import read_calls

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


def test_sigkill_with_20_jobs_in_flight_then_resume(tmp_path, face, speech):
    home, state = tmp_path / "home", tmp_path / "mockstate"
    env = {**os.environ, "TALKINGHEAD_HOME": str(home), "TALKINGHEAD_PLUGINS": "mock",
           "TALKINGHEAD_MOCK_STATE_DIR": str(state), "TALKINGHEAD_MOCK_LATENCY": "4", "TALKINGHEAD_MOCK_STEPS": "4"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(face), str(speech)], env=env,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "submitted 20"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    listing = subprocess.run([sys.executable, "-m", "talkinghead.cli", "jobs", "list", "--json"],
                             env=env, capture_output=True, text=True, timeout=60)
    before = [json.loads(line) for line in listing.stdout.splitlines()]
    assert len(before) == 20 and all(j["task_id"] and j["status"] in ("queued", "running") for j in before)

    resumed = subprocess.run([sys.executable, "-m", "talkinghead.cli", "jobs", "resume"], env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    lines = resumed.stdout.splitlines()
    assert len(lines) == 20 and all(" completed " in line for line in lines)
    for line in lines:
        assert Path(line.split(" completed ", 1)[1]).stat().st_size > 10_000

    after = subprocess.run([sys.executable, "-m", "talkinghead.cli", "jobs", "list", "--json"], env=env,
                           capture_output=True, text=True, timeout=60)
    jobs = [json.loads(line) for line in after.stdout.splitlines()]
    assert {j["status"] for j in jobs} == {"completed"} and len(jobs) == 20
    assert all(j["settled_usd"] > 0 for j in jobs)
    submits = read_calls(state, "submit")
    assert len(submits) == 20 and {c["pid"] for c in submits} == {child.pid}  # none resubmitted
