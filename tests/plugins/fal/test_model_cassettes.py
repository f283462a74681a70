"""The other models' fal routes replayed from their hand-authored cassettes
(cassettes/make_fal_models.py): happy path, fal's 422 on the submit and a request that finished
failed, per endpoint. Each test also checks the body it sent is the cassette's: the endpoint's
own fields, nothing else."""

from __future__ import annotations

import json

from talkinghead.media import prepare
from talkinghead.models import AvatarRequest, Job
from tests.plugins.suites import model_cassette_tests

from .conftest import spy

IMAGE, AUDIO = "https://images.example.org/anchor.png", "https://audio.example.org/script.mp3"
MODELS = {  # cassette prefix -> (model, request fields, reported seconds, failed request's error)
    "omnihuman_1_5": ("omnihuman-1.5", {"audio": AUDIO}, 6.9, "audio_url: Failed to download the file"),
    "fabric_1_0": ("fabric-1.0", {"audio": AUDIO}, None, "image_url: No face detected in the image"),
    "aurora": ("aurora", {"audio": AUDIO}, None, "audio_url: Audio is longer than 60 seconds"),
    "heygen_photo": ("heygen-photo", {"text": "Hello there", "voice": "Melissa"}, None, "voice: Unknown voice"),
}


async def _submit(provider, vcr, model, fields):
    sent = spy(provider)
    job = Job(provider="fal", model=model)
    try:
        job.apply(await provider.submit(job, prepare(AvatarRequest(image=IMAGE, **fields))))
    finally:
        assert json.loads(sent[0].content) == json.loads(vcr.requests[0].body)
    return job


globals().update(model_cassette_tests(MODELS, _submit, refused="field required"))
