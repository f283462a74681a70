"""The journal's invariants as a hypothesis state machine over the loopback fake inference.sh
server with injectable faults.

Rules: submit a request, with the client killed at a chosen step (the running call is
cancelled mid-request and the next rule uses a fresh client on the same journal, as a new
process would); expire or fail downloads; cut connections; make the backend forget a task
(404); deliver genuine, forged and replayed webhooks; rerun a batch file; resume everything.
After every step:

- at most one create reached the backend per request (told apart by prompt);
- no task is owned by two jobs;
- every task the backend made (billable) is on disk or has a resumable record in the journal;
- the ledger's ``spent`` is the sum of settled costs and its ``reserved`` the sum of the
  reservations of unsettled jobs; a finished job holds no reservation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from talkinghead import AsyncClient
from talkinghead.batch import run_batch
from talkinghead.config import Settings
from talkinghead.errors import TalkingHeadError
from talkinghead.lifecycle import Step, delivered, next_step
from talkinghead.models import JobStatus
from talkinghead_inferencesh import InferenceShProvider
from talkinghead_inferencesh.fake import RESET, STALL

from .conftest import FACE, FAST, MP3

KILL_AT = ["nowhere", "upload", "create", "wait", "download"]
BATCH_LINES = 3
_fake = None  # the session's fake server, set by the test below
SEEN: Counter[str] = Counter()  # what the runs did, printed at the end (pytest -s)


class JournalMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.fake = _fake.reset(step_latency=0.04, stall_seconds=1.0, heartbeat_interval=0.02,
                                stream_max_seconds=3.0, retry_after=0.01, send_webhooks=False)
        self.dir = Path(tempfile.mkdtemp(prefix="journal-machine-"))
        self.loop = asyncio.new_event_loop()
        self.client = self._new_client()
        self.count = 0
        self.sent_hooks: list[tuple[str, bytes]] = []
        lines = [json.dumps({"image": str(FACE), "audio": str(MP3), "prompt": f"batch line {i}"})
                 for i in range(BATCH_LINES)]
        self.batch = self.dir / "jobs.jsonl"
        self.batch.write_text("\n".join(lines) + "\n")

    def _new_client(self) -> AsyncClient:
        provider = InferenceShProvider({**FAST, "base_url": self.fake.url, "upload_timeout": 3.0})
        settings_ = Settings(home=self.dir / "home", providers={}, prices={}, routing={}, budget={}, tts={})
        client = AsyncClient(providers=[provider], settings=settings_, timeout=3.0)
        client.webhook_base = "http://127.0.0.1:9"  # tokens for the jobs; callbacks are sent by hand
        return client

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        SEEN["runs"] += 1
        SEEN["creates"] += len(self.fake.creates)
        SEEN.update(f"job {j.status.value}" for j in self.jobs())
        with contextlib.suppress(Exception):
            self.run(self.client.aclose())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def jobs(self):
        return self.client.ledger.jobs()

    # -- rules -------------------------------------------------------------------------

    @rule(kill_at=st.sampled_from(KILL_AT))
    def submit(self, kill_at: str) -> None:
        SEEN[f"kill at {kill_at}"] += 1
        self.count += 1
        request = _request(f"request {self.count}")
        endpoint = {"upload": "upload", "create": "create", "download": "output"}.get(kill_at)
        if endpoint:
            self.fake.configure(failures={**self.fake.switches.failures, endpoint: [STALL]})
        out = self.dir / "out" / f"r{self.count}.mp4"

        async def go():
            task = asyncio.create_task(self.client.run(request, provider="inferencesh", output=out, timeout=3))
            if kill_at == "nowhere":
                with contextlib.suppress(TalkingHeadError):
                    await task
                return
            seen = len(self.fake.requests_to(endpoint or "create"))
            while len(self.fake.requests_to(endpoint or "create")) == seen and not task.done():
                await asyncio.sleep(0.002)
            if kill_at == "wait":
                await asyncio.sleep(0.05)
            task.cancel()
            with contextlib.suppress(TalkingHeadError, asyncio.CancelledError):
                await task
        self.run(go())
        if kill_at != "nowhere":
            self.kill()

    def kill(self) -> None:
        """A fresh process on the same journal (the old one's connections just close)."""
        with contextlib.suppress(Exception):
            self.run(self.client.aclose())
        self.fake.configure(failures={})
        self.client = self._new_client()

    @rule(status=st.sampled_from([403, 410, 500]))
    def fail_downloads(self, status: int) -> None:
        self.fake.configure(failures={**self.fake.switches.failures, "output": [status] * 3})

    @rule(endpoint=st.sampled_from(["get", "stream", "output", "files"]))
    def drop_connections(self, endpoint: str) -> None:
        self.fake.configure(failures={**self.fake.switches.failures, endpoint: [RESET]})

    @rule(data=st.data())
    def forget_task(self, data) -> None:
        tasks = sorted(self.fake.tasks)
        if tasks:
            del self.fake.tasks[data.draw(st.sampled_from(tasks))]

    @rule(kind=st.sampled_from(["genuine", "forged", "replayed"]), data=st.data())
    def webhook(self, kind: str, data) -> None:
        hooked = [t for t in self.fake.tasks.values() if t.webhook]
        if kind == "replayed":
            if not self.sent_hooks:
                return
            token, body = data.draw(st.sampled_from(self.sent_hooks))
        else:
            if not hooked:
                return
            task = data.draw(st.sampled_from(hooked))
            token = task.webhook.rsplit("/", 1)[1]
            named = task
            if kind == "forged":
                others = [t for t in self.fake.tasks.values() if t.id != task.id]
                if not others:
                    return
                named = data.draw(st.sampled_from(others))
            body = json.dumps({"id": named.id, "status": named.status()}).encode()
        before = self._rows()
        try:
            self.run(self.client.receive_webhook("inferencesh", token, {}, body))
        except TalkingHeadError:
            if kind == "forged":
                assert self._rows() == before, "a refused callback changed the journal"
            return
        if kind == "forged":
            named_owner = self.client.ledger.find("inferencesh", json.loads(body)["id"])
            assert named_owner is not None and named_owner.webhook_token_hash is not None
        self.sent_hooks.append((token, body))

    @rule()
    def rerun_batch(self) -> None:
        self.run(run_batch(self.client, self.batch, results=self.dir / "results.jsonl",
                           output_dir=self.dir / "batch-out", concurrency=3))

    @rule()
    def resume(self) -> None:
        async def go():
            for job in self.jobs():
                if next_step(job) not in (Step.NONE, Step.PERSON):
                    with contextlib.suppress(TalkingHeadError):
                        await self.client.resume(job, timeout=3)
        self.run(go())

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def count_step(self) -> None:
        SEEN["checks"] += 1

    def _rows(self):
        return [j.model_dump_json() for j in self.jobs()]

    @invariant()
    def one_create_per_request(self) -> None:
        per_prompt = Counter(str((r.json or {}).get("input", {}).get("prompt")) for r in self.fake.creates)
        assert all(n <= 1 for n in per_prompt.values()), per_prompt

    @invariant()
    def a_task_has_one_job(self) -> None:
        owned = Counter(j.task_id for j in self.jobs() if j.task_id)
        assert all(n == 1 for n in owned.values()), owned

    @invariant()
    def billed_tasks_are_kept_or_resumable(self) -> None:
        jobs = self.jobs()
        by_task = {j.task_id: j for j in jobs if j.task_id}
        waiting = {(j.request or {}).get("prompt") for j in jobs
                   if not j.task_id and j.status in (JobStatus.UNKNOWN, JobStatus.CREATED) and j.create_sent_at}
        for task in list(self.fake.tasks.values()):
            job = by_task.get(task.id)
            if job is None:
                assert task.input.get("prompt") in waiting, f"task {task.id} has no record"
                continue
            if job.status is JobStatus.COMPLETED:
                assert delivered(job) or next_step(job) is Step.FETCH, job

    @invariant()
    def ledger_adds_up(self) -> None:
        jobs = self.jobs()
        totals = self.client.ledger.totals()
        assert totals["spent_usd"] == pytest.approx(sum(j.settled_usd or 0 for j in jobs), abs=1e-6)
        assert totals["reserved_usd"] == pytest.approx(
            sum(j.reserved_usd for j in jobs if j.settled_usd is None), abs=1e-6)
        for j in jobs:
            assert (j.settled_usd is not None) == j.status.terminal, (j.id, j.status, j.settled_usd)


def _request(prompt: str):
    from talkinghead.models import AvatarRequest

    return AvatarRequest(image=FACE, audio=MP3, prompt=prompt)


def test_journal_invariants_under_faults(fake_server, monkeypatch, tmp_path):
    global _fake
    _fake = fake_server
    monkeypatch.setenv("TALKINGHEAD_HOME", str(tmp_path))
    try:
        run_state_machine_as_test(JournalMachine, settings=settings(
            max_examples=15, stateful_step_count=15, deadline=None, derandomize=True,
            suppress_health_check=list(HealthCheck)))
    finally:
        fake_server.reset()
    print("\njournal machine: " + " ".join(f"{k}={v}" for k, v in sorted(SEEN.items())))
    assert SEEN["creates"] and SEEN["job completed"]  # it exercised the paths it is meant to
