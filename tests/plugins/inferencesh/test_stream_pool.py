"""Task streams hold connections of their own; past ``max_streams`` jobs are followed by
polling, so long streams never hold the connections submits and reads need."""

from __future__ import annotations

import asyncio

from talkinghead.models import JobStatus

from .conftest import job_for, prepared


async def _submitted(provider, n: int):
    jobs = []
    for _ in range(n):
        job = job_for()
        job.apply(await provider.submit(job, prepared()))
        jobs.append(job)
    return jobs


async def _follow(provider, job) -> None:
    async for update in provider.stream(job):
        job.apply(update)


async def test_streams_use_their_own_pool(fake, make_provider):
    fake.configure(step_latency=0.05)
    provider = make_provider(fake.url, max_streams=7)
    (job,) = await _submitted(provider, 1)
    await _follow(provider, job)
    assert job.status is JobStatus.COMPLETED
    assert provider._streams is not None and provider._streams is not provider._api
    # The stream client carries the same key and is sized by max_streams.
    assert provider._streams.headers["authorization"] == provider._api.headers["authorization"]
    assert provider._streams._transport._slots._value == 7
    assert provider._api._transport._slots._value == 100


async def test_jobs_beyond_max_streams_are_polled_and_all_finish(fake, make_provider):
    fake.configure(step_latency=0.1)
    provider = make_provider(fake.url, max_streams=2)
    provider.poll_interval = (0.02, 1.0, 0.02)  # the polling fallback's cadence, made tiny
    jobs = await _submitted(provider, 5)
    fake.requests.clear()
    await asyncio.gather(*(_follow(provider, j) for j in jobs))

    assert [j.status for j in jobs] == [JobStatus.COMPLETED] * 5
    assert all(j.output_url for j in jobs)
    streamed = {r.path.split("/")[2] for r in fake.requests_to("stream")}
    polled = {r.path.split("/")[2] for r in fake.requests if r.method == "GET" and r.path.count("/") == 2
              and r.path.startswith("/tasks/")}
    assert len(streamed) == 2  # never more streams than the cap
    assert polled >= {j.task_id for j in jobs} - streamed  # the others followed by reads
    assert provider._open_streams == 0  # every stream slot given back
