"""Conformance with fal's official Python client: ``fal_client`` 1.0.3 (test-only) runs against
our fal fake, and our provider runs against the same fake with the same inputs; what each sent
is compared (paths, methods, bodies, auth). A fake that only understood our own requests could
not catch our mistakes, and apps using the official client could not test against it.

The official client's hosts are module constants (``rest.fal.ai``, ``v3.fal.media``,
``queue.fal.run``); the test points them at the fake. Where we differ on purpose, the test
asserts the difference and says why.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from talkinghead.models import JobStatus

from .conftest import FACE, TEST_KEY, WAV, job_for, prepared

fal_client = pytest.importorskip("fal_client")
from fal_client import client as fal_module  # noqa: E402

PRO = "fal-ai/kling-video/ai-avatar/v2/pro"


@pytest.fixture
def official(fake, monkeypatch) -> Any:
    """fal's own client, with its hosts pointed at the fake."""
    assert fal_module.__version__ == "1.0.3"  # the version the protocol notes were checked against
    monkeypatch.setattr(fal_module, "REST_URL", fake.url)
    monkeypatch.setattr(fal_module, "CDN_URL", fake.url)
    monkeypatch.setattr(fal_module, "QUEUE_URL_FORMAT", fake.url + "/")
    return fal_module.SyncClient(key=TEST_KEY, default_timeout=10)


def _shape(fake) -> list[tuple[str, str, str]]:
    """(method, endpoint, query) of every call but downloads and hooks, ids left out."""
    skip = ("download", "hook", "output")
    return [(r.method, r.endpoint, r.query if r.endpoint in ("token", "initiate") else "")
            for r in fake.requests if r.endpoint not in skip]


def _files(fake) -> dict[str, tuple[str, str, bytes]]:
    return {f["file_name"]: (f["content_type"], f["storage_type"], f["data"]) for f in fake.files.values()}


async def _ours(fake, make_provider, image, audio, *, webhook=None, follow=True, **config) -> Any:
    provider = make_provider(fake.url, **config)
    job = job_for(mode="pro", webhook_url=webhook)
    job.apply(await provider.submit(job, prepared(image, audio, mode="pro", prompt="smile")))
    if follow:
        async for update in provider.stream(job):
            job.apply(update)
    return job


async def test_the_official_client_runs_a_whole_job_against_the_fake(fake, official):
    fake.configure(step_latency=0.02)
    image = official.upload_file(FACE)
    audio = official.upload_file(WAV)
    handle = official.submit(PRO, arguments={"image_url": image, "audio_url": audio, "prompt": "smile"})
    result = handle.get()
    assert result["video"]["url"].startswith(fake.url) and result["duration"] == 6.9
    # fal_client's way: one CDN token (Key auth), the bytes POSTed with it, then the queue, read
    # through the URLs the submit answer named, with logs=false
    shape = _shape(fake)
    assert shape[:4] == [("POST", "token", "storage_type=fal-cdn-v3"), ("POST", "cdn_upload", ""),
                         ("POST", "cdn_upload", ""), ("POST", "submit", "")]
    assert {s for s in shape[4:]} == {("GET", "status", ""), ("GET", "result", "")}
    assert all(r.query == "logs=false" for r in fake.requests_to("status"))
    assert _files(fake) == {"face.jpg": ("image/jpeg", "fal-cdn-v3", FACE.read_bytes()),
                            "hello.wav": ("audio/x-wav", "fal-cdn-v3", WAV.read_bytes())}


async def test_our_provider_sends_what_the_official_client_sends(fake, official, make_provider):
    hook = fake.url + "/hooks/conformance"
    fake.configure(send_webhooks=False)
    image, audio = official.upload_file(FACE), official.upload_file(WAV)
    official.submit(PRO, arguments={"image_url": image, "audio_url": audio, "prompt": "smile"}, webhook_url=hook)
    theirs = {e: fake.requests_to(e) for e in ("token", "cdn_upload", "submit")}
    their_files = _files(fake)
    fake.reset(send_webhooks=False)

    await _ours(fake, make_provider, FACE, WAV, webhook=hook, follow=False)
    ours = {e: fake.requests_to(e) for e in ("token", "cdn_upload", "submit")}
    assert _shape(fake) == [("POST", "token", "storage_type=fal-cdn-v3"), ("POST", "cdn_upload", ""),
                            ("POST", "cdn_upload", ""), ("POST", "submit", "")]

    # the token: same query, body and auth
    for t in (theirs["token"][0], ours["token"][0]):
        assert t.json == {} and t.header("authorization") == f"Key {TEST_KEY}"
    # the uploads: the same headers that matter, the CDN token (never our key)
    for mine, official_upload in zip(ours["cdn_upload"], theirs["cdn_upload"], strict=True):
        assert mine.header("x-fal-file-name") == official_upload.header("x-fal-file-name")
        assert mine.header("authorization").split()[0] == official_upload.header("authorization").split()[0] == "Bearer"
        assert mine.body == official_upload.body
    # Content types: ours come from the probed content (audio/wav); fal_client guesses from
    # the name with mimetypes (audio/x-wav). Both are WAV; fal serves back what it was given.
    assert {n: (c, s) for n, (c, s, _) in _files(fake).items()} == {
        "face.jpg": ("image/jpeg", "fal-cdn-v3"), "hello.wav": ("audio/wav", "fal-cdn-v3")}
    assert their_files["hello.wav"][0] == "audio/x-wav"
    # the submit: same path, same webhook query, same body shape (URLs differ: new uploads)
    (mine,), (theirs_submit,) = ours["submit"], theirs["submit"]
    assert mine.path == theirs_submit.path == "/" + PRO
    assert mine.query == theirs_submit.query  # fal_webhook=<url-encoded hook>
    assert set(mine.json) == set(theirs_submit.json) == {"image_url", "audio_url", "prompt"}
    assert mine.header("authorization") == theirs_submit.header("authorization") == f"Key {TEST_KEY}"


async def test_both_fall_back_to_initiate_gcs_when_there_is_no_cdn_token(fake, official, make_provider):
    # a key without CDN tokens: fal_client falls back to initiate?storage_type=gcs + PUT (it sends
    # its Key on the PUT, which a signed URL does not need: the fake's strict check is off here)
    fake.configure(cdn_tokens=False, strict_upload=False)
    # the async client: its token request is part of the first attempt (the sync client asks
    # for the token before trying, so a refused token stops it without falling back)
    url = await fal_module.AsyncClient(key=TEST_KEY, default_timeout=10).upload_file(FACE)
    assert url.startswith(fake.url)
    theirs = _shape(fake)
    assert theirs == [("POST", "token", "storage_type=fal-cdn-v3"), ("POST", "initiate", "storage_type=gcs"),
                      ("PUT", "upload", "")]
    (their_put,) = fake.requests_to("upload")
    assert their_put.header("authorization") == f"Key {TEST_KEY}"
    fake.reset(cdn_tokens=False)  # strict again: our PUT carries no Authorization at all

    job = await _ours(fake, make_provider, FACE, "https://audio.example.org/v.mp3", follow=False)
    assert _shape(fake)[:3] == theirs and job.task_id
    (put,) = fake.requests_to("upload")
    assert put.header("authorization") is None
    assert _files(fake)["face.jpg"] == ("image/jpeg", "gcs", FACE.read_bytes())


async def test_our_reads_use_the_urls_the_submit_answer_named(fake, make_provider):
    fake.configure(step_latency=0.01)
    job = await _ours(fake, make_provider, "https://img.example.org/a.png", "https://snd.example.org/v.mp3")
    assert job.status is JobStatus.COMPLETED
    root = f"{fake.url}/fal-ai/kling-video/requests/{job.task_id}"
    assert job.provider_data == {"status_url": f"{root}/status", "response_url": root, "cancel_url": f"{root}/cancel"}
    # the journal keeps them (JSON data column), so a resumed job reads the same URLs
    assert json.loads(job.model_dump_json())["provider_data"] == job.provider_data


async def test_cancel_through_the_official_client_and_ours_hit_the_same_url(fake, official, make_provider):
    fake.configure(step_latency=5.0, send_webhooks=False)
    handle = official.submit(PRO, arguments={"image_url": "https://img.example.org/a.png",
                                             "audio_url": "https://snd.example.org/v.mp3"})
    handle.cancel()
    (theirs,) = fake.requests_to("cancel")
    provider = make_provider(fake.url)
    job = await _ours(fake, make_provider, "https://img.example.org/a.png", "https://snd.example.org/v.mp3",
                      follow=False)
    await provider.cancel(job)
    mine = fake.requests_to("cancel")[-1]
    expected = ("PUT", "/fal-ai/kling-video/requests/{id}/cancel")
    assert (mine.method, mine.path.replace(job.task_id, "{id}")) == expected
    assert (theirs.method, theirs.path.replace(handle.request_id, "{id}")) == expected
