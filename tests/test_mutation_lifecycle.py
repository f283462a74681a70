"""The job lifecycle's money promises that mutation testing (``make mutation``, docs/testing.md)
found unpinned: the create mark is journaled before the create goes out, whoever sends it; an
answer lost after the webhook told the task is no unknown job; a job ending at submit is settled;
a charge over the quote is never silent; and the resume decision for an unknown job."""

from __future__ import annotations

import logging

import pytest

from talkinghead import AsyncClient, AvatarRequest, Job, JobStatus, Quote, ServerError, SubmitOutcomeUnknown
from talkinghead.ledger import SQLiteLedger
from talkinghead.lifecycle import Step, next_step, over_quote
from talkinghead.models import JobUpdate
from talkinghead.plugins import get_provider_classes

MOCK = get_provider_classes()["mock"]


@pytest.fixture
def ledger(tmp_path):
    return SQLiteLedger(tmp_path / "th.db")


def events(caplog) -> list[dict]:
    return [r.talkinghead for r in caplog.records if hasattr(r, "talkinghead")]


# -- the create mark ---------------------------------------------------------------------------------

@pytest.mark.parametrize("marks_create", [True, False])
async def test_the_create_mark_is_journaled_before_the_create_goes_out(face, speech, ledger, marks_create):
    """A provider that marks its own create (after its uploads) is trusted to; for one that
    does not, the core marks before calling submit. Either way the journal has the mark before
    the create request is sent, so ``jobs resume`` never sends it twice."""
    seen = {}

    class Spy(MOCK):
        async def submit(self, job, prepared):
            seen["entering submit"] = ledger.get(job.id).create_sent_at
            return await super().submit(job, prepared)

        def create_sending(self, job):
            if marks_create:
                super().create_sending(job)
                seen["create sent"] = ledger.get(job.id).create_sent_at

    Spy.marks_create = marks_create
    client = AsyncClient(providers=[Spy()], ledger=ledger)
    job = await client.submit(AvatarRequest(image=face, audio=speech), provider="mock")
    if marks_create:
        assert seen["entering submit"] is None and seen["create sent"] is not None
    else:
        assert seen["entering submit"] is not None
    assert ledger.get(job.id).create_sent_at is not None and job.task_id


# -- submit's outcomes ------------------------------------------------------------------------------

async def test_an_answer_lost_after_the_webhook_told_the_task_is_no_unknown_job(face, speech, ledger, caplog):
    class Hooked(MOCK):
        async def submit(self, job, prepared):
            self.create_sending(job)
            told = ledger.get(job.id)  # what a webhook receiver journals meanwhile
            told.status, told.task_id = JobStatus.QUEUED, "t-hook"
            ledger.record(told)
            raise SubmitOutcomeUnknown("the answer was lost", provider=self.name)

    caplog.set_level(logging.INFO, logger="talkinghead")
    client = AsyncClient(providers=[Hooked()], ledger=ledger)
    job = await client.submit(AvatarRequest(image=face, audio=speech), provider="mock")
    assert (job.task_id, job.status) == ("t-hook", JobStatus.QUEUED)
    assert ledger.get(job.id).status is JobStatus.QUEUED
    submitted = [e for e in events(caplog) if e["event"] == "job.submitted"]
    assert [(e["task_id"], e["status"], e["via"]) for e in submitted] == [("t-hook", "queued", "webhook")]


async def test_an_unknown_or_failed_create_journals_and_logs_why(face, speech, ledger, caplog):
    class Lost(MOCK):
        async def submit(self, job, prepared):
            self.create_sending(job)
            raise SubmitOutcomeUnknown("connection reset after the body was sent", provider=self.name)

    caplog.set_level(logging.INFO, logger="talkinghead")
    request = AvatarRequest(image=face, audio=speech)
    with pytest.raises(SubmitOutcomeUnknown):
        await AsyncClient(providers=[Lost()], ledger=ledger).submit(request, provider="mock")
    (unknown,) = ledger.jobs()
    assert unknown.status is JobStatus.UNKNOWN and unknown.settled_usd is None  # may have been charged
    assert unknown.error == "mock: connection reset after the body was sent"
    with pytest.raises(ServerError):
        await AsyncClient(providers=[MOCK({"fail": "server_error@submit"})], ledger=ledger).submit(
            request, provider="mock")
    failed = ledger.jobs(status="failed")[0]
    assert failed.settled_usd == 0.0 and failed.error and "mock" in failed.error
    logged = {e["event"]: e for e in events(caplog)}
    assert logged["job.unknown"]["error"] == unknown.error
    assert (logged["job.failed"]["error"], logged["job.failed"]["stage"]) == (failed.error, "submit")


async def test_a_job_that_ends_at_submit_is_settled(face, speech, ledger, caplog):
    class Instant(MOCK):
        async def submit(self, job, prepared):
            self.create_sending(job)
            return JobUpdate(status=JobStatus.COMPLETED, task_id="t-now", output_url="file:///v.mp4", duration_s=2.0)

    caplog.set_level(logging.INFO, logger="talkinghead")
    client = AsyncClient(providers=[Instant({"price_std": 0.01})], ledger=ledger)
    job = await client.submit(AvatarRequest(image=face, audio=speech), provider="mock")
    assert ledger.get(job.id).settled_usd == pytest.approx(0.02)  # 2 s of output at 0.01 USD/s
    submitted = [e for e in events(caplog) if e["event"] == "job.submitted"]
    assert [(e["task_id"], e["status"]) for e in submitted] == [("t-now", "completed")]


# -- settling is logged; a charge over the quote is never silent ------------------------------------

def test_settling_logs_the_outcome_and_any_charge_over_the_quote(ledger, caplog):
    caplog.set_level(logging.INFO, logger="talkinghead")
    client = AsyncClient(providers=[MOCK()], ledger=ledger)
    quote = Quote(provider="mock", model="mock-avatar", mode="std", seconds=10, price_per_second=0.01, cost_usd=0.1)
    dear = Job(provider="mock", model="mock-avatar", quote=quote, reserved_usd=0.1, status=JobStatus.COMPLETED,
               billed_usd=0.25, output_url="file:///v.mp4")
    gone = Job(provider="mock", model="mock-avatar", quote=quote, reserved_usd=0.1, status=JobStatus.FAILED,
               error="the backend gave up")
    for j in (dear, gone):
        ledger.open(j)
        client.lifecycle.settle(j)
    logged = {(e["event"], e["job_id"]): e for e in events(caplog)}
    done = logged["job.completed", dear.id]
    assert (done["cost_usd"], done["output_url"]) == (0.25, "file:///v.mp4")
    over = logged["job.over_quote", dear.id]
    assert (over["quoted_usd"], over["settled_usd"]) == (0.1, 0.25)
    failed = logged["job.failed", gone.id]
    assert (failed["status"], failed["error"]) == ("failed", "the backend gave up")
    assert ("job.completed", gone.id) not in logged and ("job.over_quote", gone.id) not in logged


def test_over_quote_is_what_was_settled_beyond_the_reservation():
    def job(settled, reserved=0.1):
        return Job(provider="p", model="m", reserved_usd=reserved, settled_usd=settled)

    assert over_quote(job(0.35)) == 0.25
    assert over_quote(job(0.3000004)) == 0.2  # to the micro-dollar
    assert over_quote(job(0.10002)) == 0.0    # quotes are rounded to 4 decimals: not an overrun
    assert over_quote(job(0.05)) == 0.0
    assert over_quote(job(None)) == 0.0       # not settled yet
    assert over_quote(job(0.0, reserved=0.0)) == 0.0


def test_an_unknown_job_with_a_task_is_followed():
    assert next_step(Job(provider="p", model="m", status=JobStatus.UNKNOWN, task_id="t")) is Step.FOLLOW


# -- a lost create looked up ---------------------------------------------------------------------------

@pytest.mark.parametrize("taken", [True, False])
async def test_a_looked_up_task_another_job_holds_is_never_adopted(face, speech, ledger, taken):
    """A lookup by inputs can answer with a task another journaled job already owns (same files,
    same window); adopting it would hand that job's paid video to this one. Such an answer is
    refused and the job stays unknown; a task nobody holds is adopted."""
    client = AsyncClient(providers=[MOCK()], ledger=ledger)
    other = await client.submit(AvatarRequest(image=face, audio=speech), provider="mock")
    lost = Job(provider="mock", model=other.model, request_digest=other.request_digest, reserved_usd=0.01)
    lost.create_sent_at = lost.created_at
    ledger.open(lost)
    answer = JobUpdate(status=JobStatus.RUNNING, task_id=other.task_id if taken else "task-nobody-holds")

    async def find_task(job):
        return answer

    client.provider("mock").find_task = find_task
    found = await client.lifecycle.look_up(client.provider("mock"), ledger.get(lost.id))
    assert found is (None if taken else answer)
