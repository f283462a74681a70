"""A create whose answer was lost is found with ``POST /tasks/list`` (the JS SDK's
``tasks.list``) instead of staying ``unknown``; the billed output seconds are read from the
task's ``output_meta``. Against the fake and a hand-authored cassette."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from talkinghead.client import AsyncClient
from talkinghead.errors import SubmitOutcomeUnknown
from talkinghead.ledger import SQLiteLedger
from talkinghead.models import AvatarRequest, JobStatus, Quote
from tests.plugins.shared import assert_billed, submit_and_read

from .conftest import job_for

IMAGE, AUDIO = "https://images.example.org/anchor.png", "https://audio.example.org/script.mp3"


async def _lose_the_create(fake, make_provider, tmp_path, *, webhook_base=None, image=IMAGE):
    """Submit through the core with an answer that comes too late: the task exists, the job is
    journaled ``unknown``. Returns a client (with a provider of ordinary timeouts, as a later
    ``jobs resume`` would have), the ledger and the job."""
    fake.configure(answer_delay=0.6, step_latency=0.01)
    ledger = SQLiteLedger(tmp_path / "journal.db")
    hasty = make_provider(fake.url, timeout=0.2, retry_attempts=1)
    async with AsyncClient(providers=[hasty], ledger=ledger, webhook_base=webhook_base) as client:
        with pytest.raises(SubmitOutcomeUnknown):
            await client.submit(AvatarRequest(image=image, audio=AUDIO), provider="inferencesh")
    (job,) = ledger.jobs()
    assert job.status is JobStatus.UNKNOWN and job.task_id is None
    fake.configure(answer_delay=0.0)
    return AsyncClient(providers=[make_provider(fake.url)], ledger=ledger), ledger, job


@pytest.mark.parametrize("webhook_base", [None, "http://127.0.0.1:9"], ids=["by-inputs", "by-webhook-token"])
async def test_a_lost_create_is_found_in_the_task_list_and_finished(fake, make_provider, tmp_path, webhook_base):
    fake.configure(send_webhooks=False)
    client, ledger, job = await _lose_the_create(fake, make_provider, tmp_path, webhook_base=webhook_base)
    async with client:  # another job's task, newer, with other inputs (and another token)
        other = job_for()
        await client.providers["inferencesh"].submit(other, _prepared("https://images.example.org/b.png"))
        found = await client.providers["inferencesh"].find_task(job)
    (lost,) = [t for t in fake.tasks.values() if t.input["image"] == IMAGE]
    assert found is not None and found.task_id == lost.id
    assert [r.endpoint for r in fake.requests].count("create") == 2  # never resubmitted
    assert fake.requests_to("list")[0].json == {"limit": 50, "sort": [{"field": "created_at", "dir": "desc"}]}


async def test_resume_adopts_the_found_task(fake, make_provider, tmp_path):
    fake.configure(send_webhooks=False)
    client, ledger, job = await _lose_the_create(fake, make_provider, tmp_path)
    async with client:
        result = await client.resume(job, output=tmp_path / "out.mp4")
    assert result.path.exists()
    done = ledger.get(job.id)
    assert done.status is JobStatus.COMPLETED and done.task_id in fake.tasks and len(fake.tasks) == 1


async def test_two_tasks_with_the_same_inputs_are_not_guessed_between(fake, make_provider, tmp_path):
    fake.configure(send_webhooks=False)
    client, ledger, job = await _lose_the_create(fake, make_provider, tmp_path)
    async with client:
        await client.providers["inferencesh"].submit(job_for(), _prepared(IMAGE))  # the same inputs again
        assert await client.providers["inferencesh"].find_task(job) is None


async def test_a_server_without_a_task_list_leaves_the_job_unknown(fake, provider):
    fake.configure(failures={"list": [404]})
    job = job_for()
    job.input_summary = {"image": {"source": IMAGE}, "audio": {"source": AUDIO}}
    assert await provider.find_task(job) is None


async def test_billed_seconds_come_from_output_meta(fake, provider):
    fake.configure(output_seconds=7.3)
    job = job_for(mode="pro")
    job.quote = Quote(provider="inferencesh", model="kling-avatar", mode="pro", seconds=300.0,
                      price_per_second=0.112, cost_usd=33.6, upper_bound=True)
    assert_billed(await submit_and_read(provider, job, _prepared(IMAGE, mode="pro")), JobStatus.COMPLETED, 7.3, 0.112)


@pytest.mark.vcr
@pytest.mark.default_cassette("find_task_via_list.yaml")
async def test_cassette_the_lost_task_is_the_one_with_the_jobs_inputs(vcr, make_provider):
    provider = make_provider("https://api.inference.sh")
    job = job_for()
    job.created_at = datetime(2026, 8, 20, 10, 0, 5, tzinfo=UTC)
    job.input_summary = {"image": {"source": IMAGE}, "audio": {"source": AUDIO}, "mode": "std"}
    found = await provider.find_task(job)
    assert found is not None and found.task_id == "01jexampletasklost000000012" and found.status is JobStatus.RUNNING
    job.apply(found)
    job.apply(await provider.poll(job))
    assert job.status is JobStatus.COMPLETED and job.billed_seconds == 7.3
    assert vcr.all_played


def _prepared(image, **request):
    from talkinghead import media

    return media.prepare(AvatarRequest(image=image, audio=AUDIO, **request))
