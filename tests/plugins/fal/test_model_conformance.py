"""Conformance of one new model's route with the official fal client (``fal-client`` 1.0.3,
test-only): the client and our provider submit the same Aurora request (URL inputs, so no
upload) to the same fake; the path, the auth header and the JSON body must agree. The fal
client has no model mapping of its own, so it is handed the body our mapping documents
(docs/models.md); the test shows we send exactly that, to the same URL, the same way."""

from __future__ import annotations

import asyncio

import pytest

from talkinghead.media import prepare
from talkinghead.models import AvatarRequest, Job

from .conftest import TEST_KEY

fal_client = pytest.importorskip("fal_client")

IMAGE, AUDIO = "https://images.example.org/anchor.png", "https://audio.example.org/script.mp3"


async def test_aurora_submit_matches_the_official_client(fake, make_provider, monkeypatch):
    import fal_client.client as fc

    monkeypatch.setattr(fc, "QUEUE_URL_FORMAT", fake.url + "/")  # the client's host is fixed to https
    body = {"image_url": IMAGE, "audio_url": AUDIO, "prompt": "studio light", "resolution": "720p"}
    client = fal_client.SyncClient(key=TEST_KEY)
    await asyncio.to_thread(client.submit, "fal-ai/creatify/aurora", arguments=body)
    (theirs,) = fake.submits
    fake.reset()

    provider = make_provider(fake.url)
    job = Job(provider="fal", model="aurora")
    request = AvatarRequest(image=IMAGE, audio=AUDIO, prompt="studio light", mode="pro")
    job.apply(await provider.submit(job, prepare(request)))
    (ours,) = fake.submits

    assert ours.path == theirs.path == "/fal-ai/creatify/aurora"
    assert ours.header("authorization") == theirs.header("authorization") == f"Key {TEST_KEY}"
    assert ours.json == theirs.json == body
    assert ours.query == theirs.query == ""  # no webhook asked: no fal_webhook parameter
