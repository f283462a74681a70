"""The other models' fal routes replayed from their hand-authored cassettes
(cassettes/make_fal_models.py): happy path, fal's 422 on the submit and a request that finished
failed, per endpoint. Each test also checks the body it sent is the cassette's: the endpoint's
own fields, nothing else, and that status and result were read at the endpoint's app path."""

from __future__ import annotations

import json

import pytest

from talkinghead.errors import RequestRefused
from talkinghead.media import prepare
from talkinghead.models import AvatarRequest, Job, JobStatus

from .conftest import spy

IMAGE, AUDIO = "https://images.example.org/anchor.png", "https://audio.example.org/script.mp3"
MODELS = {  # cassette prefix -> (model, request fields, reported seconds, failed request's error)
    "omnihuman_1_5": ("omnihuman-1.5", {"audio": AUDIO}, 6.9, "audio_url: Failed to download the file"),
    "fabric_1_0": ("fabric-1.0", {"audio": AUDIO}, None, "image_url: No face detected in the image"),
    "aurora": ("aurora", {"audio": AUDIO}, None, "audio_url: Audio is longer than 60 seconds"),
    "heygen_photo": ("heygen-photo", {"text": "Hello there", "voice": "Melissa"}, None, "voice: Unknown voice"),
}


def _cases(kind):
    return [pytest.param(name, *spec, marks=pytest.mark.default_cassette(f"{name}_{kind}.yaml"), id=name)
            for name, spec in MODELS.items()]


async def _submit(provider, vcr, model, fields):
    sent = spy(provider)
    job = Job(provider="fal", model=model)
    try:
        job.apply(await provider.submit(job, prepare(AvatarRequest(image=IMAGE, **fields))))
    finally:
        assert json.loads(sent[0].content) == json.loads(vcr.requests[0].body)
    return job


@pytest.mark.vcr
@pytest.mark.parametrize("name, model, fields, seconds, failure", _cases("happy"))
async def test_happy(vcr, cassette_provider, name, model, fields, seconds, failure):
    job = await _submit(cassette_provider, vcr, model, fields)
    job.apply(await cassette_provider.poll(job))
    assert job.status is JobStatus.COMPLETED and job.output_url.endswith(f"/{name}.mp4")
    assert job.duration_s == seconds
    assert vcr.all_played


@pytest.mark.vcr
@pytest.mark.parametrize("name, model, fields, seconds, failure", _cases("validation_error"))
async def test_validation_error(vcr, cassette_provider, name, model, fields, seconds, failure):
    with pytest.raises(RequestRefused, match="field required"):  # it was sent: exit 4, not 2
        await _submit(cassette_provider, vcr, model, fields)
    assert vcr.all_played


@pytest.mark.vcr
@pytest.mark.parametrize("name, model, fields, seconds, failure", _cases("task_failed"))
async def test_task_failed(vcr, cassette_provider, name, model, fields, seconds, failure):
    job = await _submit(cassette_provider, vcr, model, fields)
    job.apply(await cassette_provider.poll(job))
    assert job.status is JobStatus.FAILED and job.error == failure and job.output_url is None
    assert vcr.all_played
