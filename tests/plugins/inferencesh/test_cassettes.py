"""The provider driven directly against the hand-authored cassettes (cassettes/inferencesh/).

Replayed with ``--record-mode=none --block-network``: any request the cassette does not hold
fails the test, and ``vcr.all_played`` checks that every recorded request was made, in order.
Assertions stay protocol-generic where a re-recorded cassette could differ (ids, URLs).
"""

from __future__ import annotations

import json
import os

import pytest

from talkinghead.errors import BillingError
from talkinghead.models import JobStatus
from talkinghead_inferencesh import protocol
from tests.plugins.shared import download_result, follow, poll_to_end, submit_and_follow
from tests.plugins.suites import dual_mode_cassette_tests

from .conftest import FACE, TEST_KEY, WAV, job_for, prepared, spy

pytestmark = pytest.mark.vcr
URLS = ("https://x.example/face.png", "https://x.example/a.mp3")


def _requests(vcr) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in vcr.requests]


def _played(vcr) -> list:
    return [vcr.requests[i] for i in sorted(vcr.play_counts)]


# -- dual-mode: replayed offline, re-recorded live with -m live --record-mode=rewrite ----------
# These assert only what any answer of the real service must satisfy, so a re-recorded
# cassette keeps them passing.

@pytest.mark.live
@pytest.mark.default_cassette("happy_std_uploads.yaml")
async def test_happy_path_std_with_local_uploads(vcr, cassette_provider, live, tmp_path):
    provider = cassette_provider
    sent, answers = spy(provider)
    job = job_for()
    update = await provider.submit(job, prepared(FACE, WAV, mode="std"))
    assert update.status in (JobStatus.QUEUED, JobStatus.RUNNING) and update.task_id
    job.apply(update)
    updates = await follow(provider, job)
    assert updates[-1].status is JobStatus.COMPLETED
    assert [u.status for u in updates].count(JobStatus.COMPLETED) == 1
    assert job.output_url.startswith("https://")
    assert job.duration_s is None or job.duration_s > 0
    progress = [u.progress for u in updates if u.progress is not None]
    assert progress == sorted(progress)

    # what was sent: two uploads to object storage (no key there), then the create
    assert [(r.method, r.url.path) for r in sent[:5]] == [
        ("POST", "/files"), ("PUT", sent[1].url.path), ("POST", "/files"), ("PUT", sent[3].url.path),
        ("POST", "/apps/run")]
    for put, path in ((sent[1], FACE), (sent[3], WAV)):
        assert put.url.host != "api.inference.sh" and "authorization" not in put.headers
        assert put.headers["content-length"] == str(path.stat().st_size)
        assert "transfer-encoding" not in put.headers  # presigned PUTs need a length, not chunks
    for api in (sent[0], sent[2], sent[4]):
        assert api.headers["authorization"].startswith("Bearer ")
    records = [json.loads(r.content)["files"][0] for r in sent if r.url.path == "/files"]
    assert records[0] == {"uri": "", "filename": "face.jpg", "content_type": "image/jpeg", "path": None,
                          "size": FACE.stat().st_size, "public": None}
    assert (records[1]["filename"], records[1]["content_type"]) == ("hello.wav", "audio/wav")
    uris = [protocol.first_file(body)["uri"] for req, body in answers if req.url.path == "/files"]
    run = json.loads(sent[4].content)
    assert run == {"app": "klingai/avatar", "input": {
        "image": uris[0], "audio": uris[1],              # the uris POST /files answered with
        "mode": "std"}}  # no prompt: omitted, not null; aspect auto: not sent (the app follows the photo)
    await download_result(job, tmp_path)  # the cassette ends with the result's GET, as an app's run does
    assert live or vcr.all_played


@pytest.mark.live
@pytest.mark.default_cassette("happy_pro_uploads.yaml")
async def test_happy_path_pro_with_local_uploads(vcr, cassette_provider, live, tmp_path):
    # the hand-authored cassette uses the v1 envelope and full snapshots with status strings
    job, _ = await submit_and_follow(cassette_provider, job_for(),
                                     prepared(FACE, WAV, mode="pro", prompt="Smiles and nods while talking"))
    assert job.task_id and job.status is JobStatus.COMPLETED and job.output_url.startswith("https://")
    await download_result(job, tmp_path)
    assert live or vcr.all_played


@pytest.mark.live
@pytest.mark.default_cassette("url_passthrough.yaml")
async def test_url_inputs_pass_through_with_webhook(vcr, cassette_provider, live):
    image = os.environ.get("INFERENCE_LIVE_IMAGE_URL", "https://images.example.org/anchor.png")
    audio = os.environ.get("INFERENCE_LIVE_AUDIO_URL", "https://audio.example.org/script.mp3")
    if live and "INFERENCE_LIVE_IMAGE_URL" not in os.environ:
        pytest.skip("set INFERENCE_LIVE_IMAGE_URL and INFERENCE_LIVE_AUDIO_URL to public files")
    provider = cassette_provider
    sent, _ = spy(provider)
    job = job_for(webhook_url="https://hooks.example.com/infsh/3f9c2a?token=opaque")
    job.apply(await provider.submit(job, prepared(image, audio)))
    run = json.loads(sent[0].content)
    assert [r.url.path for r in sent] == ["/apps/run"]  # nothing uploaded
    assert (run["input"]["image"], run["input"]["audio"], run["webhook"]) == (image, audio, job.webhook_url)
    update = await poll_to_end(provider, job, live, rounds=120, what="task")
    assert update.status is JobStatus.COMPLETED and update.output_url.startswith("https://")
    assert live or vcr.all_played


def _cancelled(update, live):
    assert update.status is JobStatus.CANCELLED


globals().update(dual_mode_cassette_tests(
    job_for, files=lambda: prepared(FACE, WAV), urls=lambda: prepared(*URLS), ended=_cancelled,
    cancel=("POST", "/tasks/{}/cancel"), poll={"rounds": 120, "what": "task"}, keys=("not-a-valid-key-0000", TEST_KEY),
    refused=lambda make_provider, key: make_provider("https://api.inference.sh", api_key=key),
    env_var="INFERENCE_API_KEY", message="Invalid or missing API key"))


# -- hand-authored only: failures the live service cannot be made to produce -----------------

@pytest.mark.default_cassette("stream_heartbeats_partial.yaml")
async def test_stream_heartbeats_and_partial_lines(vcr, make_provider):
    provider = make_provider("https://api.inference.sh")
    job = job_for("01jexampletaskhb00000000004")
    updates = await follow(provider, job)
    # one update per task line (heartbeats skipped), the last completed
    assert [u.message for u in updates] == ["preparing", "running", "uploading", "completed"]
    # the completing partial line had no output: the task was read whole to get it
    assert updates[-1].output_url.endswith("out-hb.mp4") and updates[-1].duration_s == 7.0
    assert vcr.all_played


@pytest.mark.default_cassette("stream_dropped_resumed.yaml")
async def test_stream_dropped_then_resumed(vcr, make_provider):
    provider = make_provider("https://api.inference.sh")
    job = job_for("01jexampletaskdrop000000005")
    updates = await follow(provider, job)
    assert job.status is JobStatus.COMPLETED and job.output_url.endswith("out-drop.mp4")
    assert [u.message for u in updates][-2:] == ["uploading", "completed"]
    tid = job.task_id
    assert [(r.method, r.path) for r in _played(vcr)] == [
        ("GET", f"/tasks/{tid}/stream"), ("GET", f"/tasks/{tid}"), ("GET", f"/tasks/{tid}/stream")]
    assert vcr.all_played


@pytest.mark.default_cassette("task_failed.yaml")
async def test_failed_task_carries_the_error(vcr, make_provider):
    provider = make_provider("https://api.inference.sh")
    job = job_for()
    job.apply(await provider.submit(job, prepared("https://cloud.inference.sh/u/exampleuser/face.jpg",
                                                  "https://cloud.inference.sh/u/exampleuser/hello.wav")))
    updates = await follow(provider, job)
    assert updates[-1].status is JobStatus.FAILED
    assert job.status is JobStatus.FAILED and job.error == "Task failed: no face detected in the image"
    assert job.output_url is None
    assert vcr.all_played


@pytest.mark.parametrize("says, status_code", [
    # a task the create answered (200) with status 13: no HTTP error to report
    pytest.param("insufficient balance", None, marks=pytest.mark.default_cassette("task_rejected.yaml"),
                 id="rejected-at-create"),
    pytest.param("Insufficient balance", 402, marks=pytest.mark.default_cassette("insufficient_balance.yaml"),
                 id="402-v1-error"),
])
async def test_no_balance_is_a_billing_error(vcr, make_provider, says, status_code):
    provider = make_provider("https://api.inference.sh")
    with pytest.raises(BillingError, match=says) as exc:
        await provider.submit(job_for(), prepared(*URLS))
    assert exc.value.provider == "inferencesh" and exc.value.status_code == status_code
    assert vcr.all_played


@pytest.mark.default_cassette("rate_limited_then_success.yaml")
async def test_create_refused_with_429_is_retried(vcr, make_provider):
    provider = make_provider("https://api.inference.sh")
    update = await provider.submit(job_for(), prepared(*URLS))
    assert update.task_id and update.status is JobStatus.QUEUED
    assert _requests(vcr) == [("POST", "/apps/run"), ("POST", "/apps/run")]
    assert vcr.all_played


@pytest.mark.default_cassette("read_500_then_success.yaml")
async def test_500_on_read_is_retried(vcr, make_provider):
    provider = make_provider("https://api.inference.sh")
    update = await provider.poll(job_for("01jexampletask500000000000a"))
    assert update.status is JobStatus.COMPLETED and update.output_url
    assert vcr.all_played and len(vcr.requests) == 2


@pytest.mark.default_cassette("malformed_stream_line.yaml")
async def test_malformed_stream_lines_are_ignored(vcr, make_provider):
    provider = make_provider("https://api.inference.sh")
    job = job_for("01jexampletaskbad000000000b")
    updates = await follow(provider, job)
    assert [u.message for u in updates] == ["running", "completed"]
    assert job.output_url.endswith("out-bad.mp4")
    assert vcr.all_played


