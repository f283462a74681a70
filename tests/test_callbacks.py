"""``on_update``: coroutine callbacks are awaited; callbacks hear of changes, not of every poll."""

from __future__ import annotations

import asyncio
import itertools

from talkinghead import AsyncClient, AvatarRequest, Client, JobStatus
from talkinghead.plugins import get_provider_classes

MOCK = get_provider_classes()["mock"]


class Chatty(MOCK):
    """The mock, saying everything twice: a backend answering polls with no news."""

    name = "chatty"

    def routes(self):
        return [r.model_copy(update={"provider": "chatty"}) for r in super().routes()]

    async def stream(self, job):
        async for update in super().stream(job):
            yield update
            yield update


async def test_coroutine_callback_is_awaited_for_every_change(face, speech, tmp_path):
    seen: list[tuple] = []

    async def on_update(job, update):
        await asyncio.sleep(0)  # a real await: it only counts if the client awaits us
        seen.append((job.status, job.progress))

    async with AsyncClient(providers=[Chatty({"latency": 0.3, "steps": 3})], allow_test_routes=True) as client:
        result = await client.run(AvatarRequest(image=face, audio=speech), output=tmp_path / "o.mp4",
                                  on_update=on_update)
    assert result.path.exists()
    assert len(seen) >= 3
    assert seen[-1] == (JobStatus.COMPLETED, 100.0)
    assert all(a != b for a, b in itertools.pairwise(seen))  # never the same news twice


def test_sync_client_awaits_coroutine_callbacks_too(face, speech, tmp_path):
    calls = []

    async def on_update(job, update):
        calls.append(job.status)

    with Client(providers=[MOCK()], allow_test_routes=True) as client:
        client.run(AvatarRequest(image=face, audio=speech), output=tmp_path / "o.mp4", on_update=on_update)
    assert calls and calls[-1] is JobStatus.COMPLETED


def test_plain_callback_hears_each_change_once(face, speech, tmp_path):
    seen = []
    with Client(providers=[Chatty({"latency": 0.3, "steps": 3})], allow_test_routes=True) as client:
        client.run(AvatarRequest(image=face, audio=speech), output=tmp_path / "o.mp4",
                   on_update=lambda job, update: seen.append((job.status, job.progress)))
    assert seen[-1] == (JobStatus.COMPLETED, 100.0)
    assert all(a != b for a, b in itertools.pairwise(seen))
