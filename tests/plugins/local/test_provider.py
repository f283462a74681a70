"""The local provider driven through the client, as an app would: audio and text requests,
progress, cancel, refusals before anything is queued."""

from __future__ import annotations

import asyncio

import cv2
import numpy as np
import pytest

from talkinghead import AsyncClient
from talkinghead.errors import InputError
from talkinghead.models import AvatarRequest, Job, JobStatus
from talkinghead.video import audio_duration, probe_video
from talkinghead_local import EspeakEngine, LocalProvider

from .conftest import FACE


@pytest.fixture
def provider(tmp_path):
    return LocalProvider({"resolution": 240, "output_dir": tmp_path / "renders"})


def test_registered_through_the_entry_point():
    from talkinghead import plugins

    assert plugins.get_provider_classes()["local"] is LocalProvider
    assert plugins.get_tts_classes()["espeak"] is EspeakEngine
    route = LocalProvider().route()
    assert (route.provider, route.model, route.kind, route.native_text) == ("local", "local-preview",
                                                                             "local", False)
    assert route.price_per_second == {"std": 0.0, "pro": 0.0}
    assert LocalProvider.env_vars == () and LocalProvider().configured()


async def test_audio_request_end_to_end(provider, clips, tmp_path):
    updates = []
    async with AsyncClient(providers=[provider]) as client:
        result = await client.run(AvatarRequest(image=FACE, audio=clips["gaps"], aspect_ratio="1:1"),
                                  output=tmp_path / "out.mp4",
                                  on_update=lambda job, update: updates.append(update))
    assert result.provider == "local" and result.model == "local-preview"
    assert result.cost_usd == 0.0 and result.url.startswith("file://")
    seconds = audio_duration(clips["gaps"])
    assert result.duration_s == pytest.approx(seconds, abs=0.04)
    info = probe_video(result.path)
    assert (info.width, info.height) == (240, 240) and info.has_audio
    assert abs(info.frame_count / 25 - seconds) <= 1 / 25
    # Real progress along the way: frames encoded over the total, rising, then done.
    running = [u.progress for u in updates if u.status is JobStatus.RUNNING]
    assert any(0 < p < 100 for p in running) and all(0 <= p < 100 for p in running)
    assert running == sorted(running)
    assert updates[-1].status is JobStatus.COMPLETED


async def test_text_request_is_spoken_and_its_phonemes_reach_the_renderer(provider, tmp_path):
    text = "Good evening. Here is the news, read by a face that a computer animated just now."
    async with AsyncClient(providers=[provider]) as client:
        result = await client.run(AvatarRequest(image=FACE, text=text, aspect_ratio="9:16"),
                                  output=tmp_path / "spoken.mp4")
    task = next(iter(provider.tasks.values()))
    assert task.prepared.speech is not None and len(task.prepared.speech.phonemes) > 30
    info = probe_video(result.path)
    assert (info.width, info.height) == (240, 426) and info.has_audio
    assert abs(info.frame_count / 25 - task.prepared.speech.duration_s) <= 1 / 25


async def test_cancel_stops_a_render(tmp_path, clips):
    provider = LocalProvider({"output_dir": tmp_path / "renders"})  # default 720: takes a while
    async with AsyncClient(providers=[provider]) as client:
        job = await client.submit(AvatarRequest(image=FACE, audio=clips["gaps"]))
        assert job.status is JobStatus.QUEUED and job.task_id.startswith("local-")
        while not (await provider.poll(job)).progress:  # running, some frames encoded
            await asyncio.sleep(0.01)
        await client.cancel(job)
    assert job.status is JobStatus.CANCELLED
    assert provider.tasks[job.task_id].done < provider.tasks[job.task_id].total
    assert not list((tmp_path / "renders").glob("*.mp4"))


async def test_a_photo_without_one_face_is_refused_before_queueing(provider, clips, tmp_path):
    noise = tmp_path / "cat.png"
    cv2.imwrite(str(noise), np.random.default_rng(2).integers(0, 256, (400, 400, 3), dtype=np.uint8))
    twins = tmp_path / "twins.png"
    cv2.imwrite(str(twins), np.hstack([cv2.imread(str(FACE))] * 2))
    async with AsyncClient(providers=[provider]) as client:
        # A quote reads the photo's header only (no OpenCV); the face is looked for at submit.
        [quote] = await client.estimate(AvatarRequest(image=noise, audio=clips["short"]), provider="local")
        assert quote.provider == "local"
        with pytest.raises(InputError, match="image: no face found"):
            await client.submit(AvatarRequest(image=noise, audio=clips["short"]), provider="local")
        with pytest.raises(InputError, match="image: 2 faces found; exactly one is needed"):
            await client.submit(AvatarRequest(image=twins, audio=clips["short"]), provider="local")
    assert provider.tasks == {}


async def test_url_inputs_are_refused_the_renderer_cannot_fetch(provider, clips):
    async with AsyncClient(providers=[provider]) as client:
        with pytest.raises(InputError) as err:
            await client.estimate(AvatarRequest(image="https://example.com/face.jpg",
                                                audio=clips["short"]), provider="local")
    assert err.value.field == "image" and "cannot fetch" in str(err.value)


async def test_quote_is_free(provider, clips):
    async with AsyncClient(providers=[provider]) as client:
        [quote] = await client.estimate(AvatarRequest(image=FACE, audio=clips["short"], mode="pro"))
    assert quote.provider == "local" and quote.cost_usd == 0.0


async def test_a_finished_render_is_found_again_by_a_new_provider(provider, clips, tmp_path):
    async with AsyncClient(providers=[provider]) as client:
        job = await client.submit(AvatarRequest(image=FACE, audio=clips["short"]))
        await client.wait(job)
    later = LocalProvider({"output_dir": tmp_path / "renders"})  # e.g. `jobs resume` elsewhere
    update = await later.poll(Job(provider="local", model="local-preview", task_id=job.task_id))
    assert update.status is JobStatus.COMPLETED and update.output_url == job.output_url
    gone = await later.poll(Job(provider="local", model="local-preview", task_id="local-000000000000"))
    assert gone.status is JobStatus.FAILED and gone.error_kind == "not_found"
