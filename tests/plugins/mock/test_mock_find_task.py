"""``MockProvider.find_task``: finding the task a create call made when its answer was lost."""

from __future__ import annotations

import pytest

from talkinghead import AsyncClient, AvatarRequest, SubmitOutcomeUnknown
from talkinghead.models import JobStatus
from talkinghead_mock import MockProvider, read_calls

from .test_mock_provider import FACE, WAV, drive, new_job, output_path, prepared, submit


def state(tmp_path, **config) -> MockProvider:
    return MockProvider({"state_dir": tmp_path / "state", **config})


async def lost_submit(provider: MockProvider, **job):
    """Submit, then drop the answer, as a create call whose response never arrived."""
    job = new_job(**job)
    await provider.submit(job, prepared())
    assert job.task_id is None
    return job


async def test_found_by_job_id_after_a_lost_answer(tmp_path):
    a = state(tmp_path)
    await submit(a)                      # someone else's task, mock-000001
    job = await lost_submit(a)           # ours, mock-000002: the answer never came back
    del a                                # the process that sent it is gone

    b = state(tmp_path)
    found = await b.find_task(job)
    assert found.task_id == "mock-000002" and found.status is JobStatus.QUEUED
    assert b.calls_to("find_task")[0].task_id == "mock-000002"
    job.apply(found)
    done = (await drive(b, job))[-1]
    assert done.status is JobStatus.COMPLETED and output_path(done).exists()
    assert [c["job_id"] for c in read_calls(tmp_path / "state", "submit")].count(job.id) == 1
    (logged,) = read_calls(tmp_path / "state", "find_task")
    assert (logged["job_id"], logged["task_id"]) == (job.id, "mock-000002")


async def test_found_task_reports_its_current_state(tmp_path):
    a = state(tmp_path)
    job = await lost_submit(a)
    probe = new_job(id=job.id, task_id="mock-000001")   # a's view, polled under the task id
    await a.poll(probe)
    await a.poll(probe)
    found = await state(tmp_path).find_task(job)
    assert (found.status, found.progress, found.task_id) == (JobStatus.RUNNING, 50, "mock-000001")
    await drive(a, probe)
    found = await state(tmp_path).find_task(job)
    assert found.status is JobStatus.COMPLETED and output_path(found).exists()


async def test_not_found_is_none(tmp_path):
    assert await state(tmp_path).find_task(new_job()) is None  # a fresh state dir
    a = state(tmp_path)
    await submit(a)
    (tmp_path / "state" / "tasks" / "mock-000009.json").touch()  # reserved, never written
    assert await a.find_task(new_job()) is None
    assert await state(tmp_path).find_task(new_job()) is None
    (logged,) = read_calls(tmp_path / "state", "find_task")[-1:]
    assert logged["task_id"] is None


async def test_a_refused_submit_made_no_task(tmp_path):
    a = state(tmp_path, fail="server_error")
    job = new_job()
    with pytest.raises(Exception, match="injected server error"):
        await a.submit(job, prepared())
    assert await state(tmp_path).find_task(job) is None


async def test_in_memory_only_the_same_instance_finds_it(tmp_path):
    a = MockProvider({"output_dir": tmp_path})
    job = await lost_submit(a)
    found = await a.find_task(job)
    assert found.task_id == "mock-000001" and found.status is JobStatus.QUEUED
    assert await a.find_task(new_job()) is None
    assert await MockProvider({"output_dir": tmp_path}).find_task(job) is None


async def test_client_resume_adopts_the_task_instead_of_resubmitting(tmp_path):
    class AnswerLost(MockProvider):
        async def submit(self, job, prepared):
            await super().submit(job, prepared)  # the backend made the task...
            raise SubmitOutcomeUnknown("POST sent, no answer", provider=self.name)  # ...we never heard

    request = AvatarRequest(image=FACE, audio=WAV)
    first = AsyncClient(providers=[AnswerLost({"state_dir": tmp_path / "state"})])
    with pytest.raises(SubmitOutcomeUnknown):
        await first.submit(request, provider="mock")
    (job,) = first.ledger.jobs()
    assert job.status is JobStatus.UNKNOWN and job.task_id is None
    await first.aclose()

    second = AsyncClient(providers=[state(tmp_path)])
    result = await second.resume(second.ledger.get(job.id), output=tmp_path / "out.mp4")
    assert result.path.exists()
    resumed = second.ledger.get(job.id)
    assert resumed.status is JobStatus.COMPLETED and resumed.task_id == "mock-000001"
    assert len(read_calls(tmp_path / "state", "submit")) == 1  # never sent twice
    await second.aclose()
