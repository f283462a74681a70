"""The other models' routes replayed from their hand-authored cassettes
(cassettes/make_inferencesh_models.py): happy path, the platform's validation error and a failed
task, per app. Matching ignores bodies, so each test also checks that the body it sent is the
one the cassette holds: the app's own fields, nothing else."""

from __future__ import annotations

import json

import pytest

from talkinghead.errors import RequestRefused
from talkinghead.media import prepare
from talkinghead.models import AvatarRequest, Job, JobStatus

from .conftest import spy

IMAGE, AUDIO = "https://cloud.inference.sh/u/exampleuser/face.jpg", "https://cloud.inference.sh/u/exampleuser/hello.wav"
MODELS = {  # cassette prefix -> (model, request fields, billed seconds the app reports, failure text start)
    "omnihuman_1_5": ("omnihuman-1.5", {"audio": AUDIO}, 6.9, "Avatar video generation failed"),
    "fabric_1_0": ("fabric-1.0", {"audio": AUDIO}, 5.0, "Talking video generation failed"),
    "heygen_photo": ("heygen-photo", {"text": "Hello there", "voice": "v_example_01", "aspect_ratio": "16:9"}, 3.2,
                     "Video generation failed [photo_check_failed]"),
    "p_video_avatar": ("p-video-avatar", {"text": "Hello there"}, 4.1, "Prediction failed"),
}


def _cases(kind):
    return [pytest.param(name, *spec, marks=pytest.mark.default_cassette(f"{name}_{kind}.yaml"), id=name)
            for name, spec in MODELS.items()]


async def _submit(provider, vcr, model, fields):
    sent, _ = spy(provider)
    job = Job(provider="inferencesh", model=model)
    prepared = prepare(AvatarRequest(image=IMAGE, **fields))
    try:
        job.apply(await provider.submit(job, prepared))
    finally:
        runs = [r for r in sent if r.url.path == "/apps/run"]
        assert len(runs) == 1 and json.loads(runs[0].content) == json.loads(vcr.requests[0].body)
    return job


@pytest.mark.vcr
@pytest.mark.parametrize("name, model, fields, seconds, failure", _cases("happy"))
async def test_happy(vcr, make_provider, name, model, fields, seconds, failure):
    provider = make_provider("https://api.inference.sh")
    job = await _submit(provider, vcr, model, fields)
    job.apply(await provider.poll(job))
    assert job.status is JobStatus.COMPLETED and job.output_url.endswith(f"/{name}.mp4")
    assert job.duration_s == seconds  # what the app meters (Fabric: 5 s whatever the length)
    assert vcr.all_played


@pytest.mark.vcr
@pytest.mark.parametrize("name, model, fields, seconds, failure", _cases("validation_error"))
async def test_validation_error(vcr, make_provider, name, model, fields, seconds, failure):
    provider = make_provider("https://api.inference.sh")
    with pytest.raises(RequestRefused, match="refused the request \\(422\\): input\\."):  # sent: exit 4
        await _submit(provider, vcr, model, fields)
    assert vcr.all_played


@pytest.mark.vcr
@pytest.mark.parametrize("name, model, fields, seconds, failure", _cases("task_failed"))
async def test_task_failed(vcr, make_provider, name, model, fields, seconds, failure):
    provider = make_provider("https://api.inference.sh")
    job = await _submit(provider, vcr, model, fields)
    job.apply(await provider.poll(job))
    assert job.status is JobStatus.FAILED and job.error.startswith(failure) and job.output_url is None
    assert vcr.all_played
