"""The provider driven directly against the hand-authored cassettes (cassettes/fal/).

Replayed with ``--record-mode=none --block-network``: any request the cassette does not hold
(method, host, path and query) fails the test, and ``vcr.all_played`` checks that every
recorded request was made. Assertions stay protocol-generic where a re-recorded cassette
could differ (ids, URLs, the number of status reads).
"""

from __future__ import annotations

import json
import os

import pytest

from talkinghead.errors import BillingError, RateLimitError, RequestRefused
from talkinghead.models import JobStatus
from tests.plugins.shared import download_result, follow
from tests.plugins.suites import dual_mode_cassette_tests

from .conftest import FACE, SPEECH_NAME, TEST_KEY, WAV, job_for, prepared, prepared_text, spy

pytestmark = pytest.mark.vcr

URL_IMAGE = "https://images.example.org/anchor.png"
URL_AUDIO = "https://audio.example.org/script.mp3"
STD = "/fal-ai/kling-video/ai-avatar/v2/standard"
PRO = "/fal-ai/kling-video/ai-avatar/v2/pro"


def _url_request(**kw):
    return prepared(URL_IMAGE, URL_AUDIO, **kw)


async def _submit_and_follow(provider, request, **job_fields):
    job = job_for(mode=request.request.mode, **job_fields)
    update = await provider.submit(job, request)
    assert update.status in (JobStatus.QUEUED, JobStatus.RUNNING) and update.task_id
    job.apply(update)
    return job, await follow(provider, job)


def _check_uploads_then_submit(sent, endpoint, names):
    """As fal's official client uploads (§7 B, §11): one CDN token (our key), two POSTs of the
    bytes to the CDN with that token (never our key), then the submit."""
    shape = [(r.method, r.url.host) for r in sent[:4]]
    assert shape == [("POST", "rest.fal.ai"), ("POST", "v3.fal.media"), ("POST", "v3.fal.media"),
                     ("POST", "queue.fal.run")]
    token = sent[0]
    assert token.url.path == "/storage/auth/token" and token.url.params["storage_type"] == "fal-cdn-v3"
    assert json.loads(token.content) == {} and token.headers["authorization"].startswith("Key ")
    for upload, (name, ctype, path) in ((sent[1], names[0]), (sent[2], names[1])):
        assert upload.url.path == "/files/upload" and not upload.headers["authorization"].startswith("Key ")
        assert upload.headers["x-fal-file-name"] == name and upload.headers["content-type"] == ctype
        assert upload.headers["content-length"] == str(path.stat().st_size)
        assert "transfer-encoding" not in upload.headers  # streamed, but with a length
    submit = sent[3]
    assert submit.url.path == endpoint and submit.headers["authorization"].startswith("Key ")
    return submit


@pytest.fixture
def sent(cassette_provider):
    """Every request the cassette test's provider sends."""
    return spy(cassette_provider)


# -- dual-mode: replayed offline, re-recorded live with -m live --record-mode=rewrite ----------

@pytest.mark.live
@pytest.mark.default_cassette("happy_std_uploads.yaml")
async def test_happy_path_std_with_local_uploads(vcr, cassette_provider, sent, live, tmp_path):
    job, updates = await _submit_and_follow(cassette_provider, prepared(FACE, WAV, mode="std"))
    assert updates[-1].status is JobStatus.COMPLETED
    assert [u.status for u in updates].count(JobStatus.COMPLETED) == 1
    assert job.output_url.startswith("https://") and (job.duration_s is None or job.duration_s > 0)
    progress = [u.progress for u in updates if u.progress is not None]
    assert progress == sorted(progress)

    submit = _check_uploads_then_submit(sent, STD, [("face.jpg", "image/jpeg", FACE), ("hello.wav", "audio/wav", WAV)])
    body = json.loads(submit.content)
    assert set(body) == {"image_url", "audio_url"}  # no prompt: left out, no mode field (§2)
    assert body["image_url"].startswith("https://") and body["audio_url"].startswith("https://")
    if not live:
        assert body["audio_url"].endswith("hello.wav")
    assert "fal_webhook" not in submit.url.params
    # status, result at the app path, not the endpoint id (§5)
    reads = [r for r in sent[4:] if r.method == "GET"]
    assert reads and all(r.url.path.startswith(f"/fal-ai/kling-video/requests/{job.task_id}") for r in reads)
    assert all(r.url.params["logs"] == "1" for r in reads if r.url.path.endswith("/status"))
    assert reads[-1].url.path == f"/fal-ai/kling-video/requests/{job.task_id}"
    # the URLs we build from owner/app are the ones fal's submit answer names (§5)
    answer = sent.submitted
    assert answer["request_id"] == job.task_id
    if "status_url" in answer:
        status_reads = {str(r.url.copy_with(query=None)) for r in reads if r.url.path.endswith("/status")}
        assert status_reads == {answer["status_url"]}
        assert str(reads[-1].url) == answer["response_url"]
    if not live:
        assert job.duration_s == 6.9 and [u.message for u in updates][:2] == ["in queue (position 2)",
                                                                              "Generating video..."]
    await download_result(job, tmp_path)  # the cassette ends with the result's GET, as an app's run does
    assert live or vcr.all_played


@pytest.mark.live
@pytest.mark.default_cassette("happy_pro_uploads.yaml")
async def test_happy_path_pro_with_prompt_and_webhook(vcr, cassette_provider, sent, live, tmp_path):
    hook = "https://hooks.example.com/webhooks/fal/3f9c2a7d"
    job, _ = await _submit_and_follow(cassette_provider, prepared(FACE, WAV, mode="pro",
                                                                  prompt="Smiles and nods while talking"),
                                      webhook_url=hook)
    assert job.status is JobStatus.COMPLETED and job.output_url.startswith("https://")
    submit = _check_uploads_then_submit(sent, PRO, [("face.jpg", "image/jpeg", FACE), ("hello.wav", "audio/wav", WAV)])
    assert json.loads(submit.content)["prompt"] == "Smiles and nods while talking"
    assert submit.url.params["fal_webhook"] == hook
    await download_result(job, tmp_path)
    assert live or vcr.all_played


@pytest.mark.live
@pytest.mark.default_cassette("text_input_local_tts.yaml")
async def test_text_input_uploads_the_locally_synthesized_speech(vcr, cassette_provider, sent, live, tmp_path):
    request = prepared_text(tmp_path)
    assert request.request.text and request.audio.field == "text" and request.audio.format == "wav"
    job, _ = await _submit_and_follow(cassette_provider, request)
    assert job.status is JobStatus.COMPLETED and job.output_url.startswith("https://")
    submit = _check_uploads_then_submit(sent, STD, [("face.jpg", "image/jpeg", FACE),
                                                    (SPEECH_NAME, "audio/wav", tmp_path / SPEECH_NAME)])
    assert live or json.loads(submit.content)["audio_url"].endswith(SPEECH_NAME)
    assert set(json.loads(submit.content)) == {"image_url", "audio_url"}  # the text itself is never sent
    assert "Good evening" not in submit.content.decode()
    assert live or vcr.all_played


def _cancelled(update, live):
    if live:  # a request cancelled too late may still complete
        assert update.status in (JobStatus.CANCELLED, JobStatus.FAILED, JobStatus.COMPLETED)
    else:
        assert update.status is JobStatus.CANCELLED and update.error_kind == "cancelled"
        assert "cancelled" in update.error


globals().update(dual_mode_cassette_tests(
    job_for, files=lambda: prepared(FACE, WAV), urls=_url_request, ended=_cancelled,
    cancel=("PUT", "/fal-ai/kling-video/requests/{}/cancel"), poll={"rounds": 240, "what": "request"},
    refused=lambda make_provider, key: make_provider(api_key=key), env_var="FAL_KEY", message="No user found",
    keys=("00000000-0000-0000-0000-000000000000:not-a-valid-secret", TEST_KEY)))


# -- hand-authored only: failures fal cannot be made to produce on demand ---------------------

@pytest.mark.default_cassette("completed_with_error.yaml")
async def test_completed_status_with_error_is_a_failure(vcr, cassette_provider):
    job, updates = await _submit_and_follow(cassette_provider, _url_request())
    assert [u.status for u in updates] == [JobStatus.RUNNING, JobStatus.FAILED]
    assert job.status is JobStatus.FAILED and job.output_url is None
    assert "Runner disconnected" in job.error and job.error_kind == "runner_disconnected"
    assert vcr.all_played and len(vcr.requests) == 4  # the failing result is read once, not retried


@pytest.mark.default_cassette("result_validation_error.yaml")
async def test_422_on_the_result_fails_with_fals_message(vcr, cassette_provider):
    job, _ = await _submit_and_follow(cassette_provider, _url_request())
    assert job.status is JobStatus.FAILED and job.error_kind == "input"
    assert job.error == "audio_url: Audio duration must be between 2 and 60 seconds"
    assert vcr.all_played


@pytest.mark.default_cassette("content_policy.yaml")
async def test_content_policy_refusal_is_named(vcr, cassette_provider):
    job, _ = await _submit_and_follow(cassette_provider, _url_request(mode="pro"))
    assert job.status is JobStatus.FAILED and job.error_kind == "content_policy"
    assert "flagged by the content checker" in job.error
    assert vcr.all_played


@pytest.mark.default_cassette("submit_validation_error.yaml")
async def test_422_on_submit_is_refused_naming_the_field(vcr, cassette_provider):
    with pytest.raises(RequestRefused) as exc:  # sent and refused: exit 4, not 2
        await cassette_provider.submit(job_for(), _url_request())
    assert exc.value.field == "image" and "Failed to download the file" in str(exc.value)
    assert vcr.all_played


@pytest.mark.default_cassette("rate_limited_then_success.yaml")
async def test_submit_refused_with_429_is_retried(vcr, cassette_provider):
    update = await cassette_provider.submit(job_for(), _url_request())
    assert update.task_id and update.status is JobStatus.QUEUED
    assert [(r.method, r.path) for r in vcr.requests] == [("POST", STD), ("POST", STD)]
    assert vcr.all_played


@pytest.mark.default_cassette("rate_limited.yaml")
async def test_429_until_attempts_run_out_is_a_rate_limit_error(vcr, cassette_provider):
    with pytest.raises(RateLimitError) as exc:
        await cassette_provider.submit(job_for(), _url_request())
    assert exc.value.retryable and exc.value.status_code == 429 and exc.value.retry_after == 0
    assert vcr.all_played


@pytest.mark.default_cassette("locked_balance.yaml")
async def test_locked_account_is_a_billing_error(vcr, cassette_provider):
    with pytest.raises(BillingError, match="Exhausted balance") as exc:
        await cassette_provider.submit(job_for(), _url_request())
    assert exc.value.status_code == 403 and exc.value.retryable  # another provider may still pay
    assert vcr.all_played


@pytest.mark.default_cassette("status_500_then_completed.yaml")
async def test_500_on_a_status_read_is_retried(vcr, cassette_provider):
    update = await cassette_provider.poll(job_for("e3af9ef0-05c2-4bb3-9fa9-8e4cf05b7698"))
    assert update.status is JobStatus.COMPLETED and update.output_url and update.duration_s == 6.9
    assert vcr.all_played


def test_every_cassette_is_exercised():
    used = {"happy_std_uploads", "happy_pro_uploads", "text_input_local_tts", "cancel", "unauthorized",
            "completed_with_error", "result_validation_error", "content_policy", "submit_validation_error",
            "rate_limited_then_success", "rate_limited", "locked_balance", "status_500_then_completed",
            "upload_fallback_gcs", "returned_urls"}
    from .conftest import CASSETTE_DIR

    models = {f"{m}_{kind}" for m in ("omnihuman_1_5", "fabric_1_0", "aurora", "heygen_photo")
              for kind in ("happy", "validation_error", "task_failed")}  # test_model_cassettes.py
    assert {p.stem for p in CASSETTE_DIR.glob("*.yaml")} == used | models
    assert os.path.exists(CASSETTE_DIR.parent / "make_fal.py")
