"""The cloud fakes serve one test after another on one server: a create still inside its delay
when the fake is reset (its test gave up on the answer and ended) must not land in the next
test's state (it made `len(fake.queue) == 1` fail after the contract kit's lost-answer test)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from talkinghead_fal.fake import FakeFal
from talkinghead_inferencesh.fake import FakeInferenceSh
from talkinghead_kling.fake import FakeKling

CASES = {
    "fal": (FakeFal, {"submit_delay": 0.4}, "/fal-ai/kling-video/ai-avatar/v2/standard", "Key k",
            {"image_url": "https://x.example/f.png", "audio_url": "https://x.example/a.mp3"}, "queue"),
    "inferencesh": (FakeInferenceSh, {"create_delay": 0.4}, "/apps/run", "Bearer k",
                    {"app": "klingai/avatar", "input": {"image": "https://x.example/f.png",
                                                        "audio": "https://x.example/a.mp3"}}, "tasks"),
    "kling": (FakeKling, {"create_stall": 0.4}, "/v1/videos/avatar/image2video", "Bearer k",
              {"image": "https://x.example/f.png", "sound_file": "https://x.example/a.mp3"}, "tasks"),
}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_a_create_outliving_its_test_leaves_the_next_test_alone(name):
    fake_type, delay, path, auth, body, store = CASES[name]
    with fake_type.serving(video=b"mp4", **delay) as fake:
        async with httpx.AsyncClient(base_url=fake.url, timeout=0.1) as client:
            with pytest.raises(httpx.ReadTimeout):  # the earlier test gives up on the answer
                await client.post(path, json=body, headers={"Authorization": auth})
            fake.reset()  # the next test starts
            await asyncio.sleep(0.6)  # the earlier create ends its delay meanwhile
            assert getattr(fake, store) == {} and fake.requests == []
            fake.configure(**delay)
            answer = await client.post(path, json=body, headers={"Authorization": auth}, timeout=5)
            assert answer.status_code == 200 and len(getattr(fake, store)) == 1  # its own creates still count
