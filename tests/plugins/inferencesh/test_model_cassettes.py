"""The other models' routes replayed from their hand-authored cassettes
(cassettes/make_inferencesh_models.py): happy path, the platform's validation error and a failed
task, per app. Matching ignores bodies, so each test also checks that the body it sent is the
one the cassette holds: the app's own fields, nothing else."""

from __future__ import annotations

import json

from talkinghead.media import prepare
from talkinghead.models import AvatarRequest, Job
from tests.plugins.suites import model_cassette_tests

from .conftest import spy

IMAGE, AUDIO = "https://cloud.inference.sh/u/exampleuser/face.jpg", "https://cloud.inference.sh/u/exampleuser/hello.wav"
MODELS = {  # cassette prefix -> (model, request fields, billed seconds the app reports, failed task's error)
    "omnihuman_1_5": ("omnihuman-1.5", {"audio": AUDIO}, 6.9,
                      "Avatar video generation failed: Video generation failed: 50500 internal error"),
    "fabric_1_0": ("fabric-1.0", {"audio": AUDIO}, 5.0,  # Fabric meters 5 s whatever the length
                   "Talking video generation failed: Unprocessable Entity: face not found"),
    "heygen_photo": ("heygen-photo", {"text": "Hello there", "voice": "v_example_01", "aspect_ratio": "16:9"}, 3.2,
                     "Video generation failed [photo_check_failed]: No face detected, please try another photo."),
    "p_video_avatar": ("p-video-avatar", {"text": "Hello there"}, 4.1,
                       "Prediction failed: image rejected by the safety checker"),
}


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


globals().update(model_cassette_tests(MODELS, _submit, refused="refused the request \\(422\\): input\\."))
