"""The provider driven directly against the loopback fake fal server, over real sockets."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from talkinghead import http
from talkinghead.errors import (
    AuthenticationError,
    BillingError,
    ProviderError,
    RequestRefused,
    ServerError,
    SubmitOutcomeUnknown,
)
from talkinghead.models import JobStatus
from talkinghead_fal import FalProvider
from tests import fake_secrets
from tests.plugins.shared import submit_and_follow
from tests.plugins.suites import fake_server_tests

from .conftest import FACE, MP3, SPEECH_NAME, TEST_KEY, WAV, job_for, prepared, prepared_text

URLS = ("https://x.example/f.png", "https://x.example/a.mp3")


async def run_to_end(provider, request=None, **job_fields):
    request = request or prepared()
    return await submit_and_follow(provider, job_for(mode=request.request.mode, **job_fields), request)


globals().update(fake_server_tests(
    job_for, prepared, URLS, create="submit", unknown_task=("no-such-request", "404"), real_url="https://queue.fal.run",
    uploads_off_machine={"cdn_tokens": False},  # a signed storage URL rather than fal's CDN
    unconfigured=(FalProvider, "FAL_KEY"), retries=("result", lambda fake: fake.queue)))


def _paths(fake, rid):
    return [(r.method, r.path.replace(rid, "{id}"), r.query) for r in fake.requests
            if r.endpoint not in ("upload", "initiate", "hook", "token", "cdn_upload")]


# -- the happy path ------------------------------------------------------------------------

async def test_submit_and_follow_to_completion_with_intact_uploads(fake, provider, tmp_path, video_bytes):
    fake.configure(step_latency=0.03)
    job, updates = await run_to_end(provider, prepared(FACE, WAV, mode="pro", prompt="smile"))

    assert job.status is JobStatus.COMPLETED and job.duration_s == 6.9 and job.progress == 100
    assert [u.status for u in updates][-1] is JobStatus.COMPLETED
    progress = [u.progress for u in updates if u.progress is not None]
    assert progress == sorted(progress)

    # the bytes arrived intact, under the names and types of their content
    assert fake.uploaded() == {"face.jpg": FACE.read_bytes(), "hello.wav": WAV.read_bytes()}
    assert {f["file_name"]: (f["content_type"], f["storage_type"]) for f in fake.files.values()} == {
        "face.jpg": ("image/jpeg", "fal-cdn-v3"), "hello.wav": ("audio/wav", "fal-cdn-v3")}
    (token,) = fake.requests_to("token")  # one CDN token, kept for both files
    assert token.header("authorization") == f"Key {TEST_KEY}" and token.query == "storage_type=fal-cdn-v3"
    for upload in fake.requests_to("cdn_upload"):
        assert upload.header("authorization").startswith("Bearer cdn-")  # the token, never our key
        assert upload.header("content-length") == str(len(upload.body))
    assert fake.requests_to("initiate") == []

    # the submit named the uploaded file URLs, at the pro endpoint, with our key
    (submit,) = fake.submits
    assert submit.path == "/fal-ai/kling-video/ai-avatar/v2/pro" and submit.query == ""
    assert submit.header("authorization") == f"Key {TEST_KEY}"
    files = {f["file_name"]: f"{fake.url}/files/{fid}/{f['file_name']}" for fid, f in fake.files.items()}
    assert submit.json == {"image_url": files["face.jpg"], "audio_url": files["hello.wav"], "prompt": "smile"}

    # status and result at the app path (§5), logs=1
    shape = _paths(fake, job.task_id)
    assert shape[0] == ("POST", "/fal-ai/kling-video/ai-avatar/v2/pro", "")
    assert set(shape[1:-1]) == {("GET", "/fal-ai/kling-video/requests/{id}/status", "logs=1")}
    assert shape[-1] == ("GET", "/fal-ai/kling-video/requests/{id}", "")

    # the output video is served by the fake and downloads intact
    out = await http.download(job.output_url, tmp_path / "out.mp4", provider="fal")
    assert out.read_bytes() == video_bytes


async def test_std_mode_uses_the_standard_endpoint_and_mp3_keeps_its_name(fake, provider):
    job, _ = await run_to_end(provider, prepared(FACE, MP3, mode="std"))
    assert fake.submits[0].path == "/fal-ai/kling-video/ai-avatar/v2/standard"
    assert "prompt" not in fake.submits[0].json
    assert fake.uploaded()["hello.mp3"] == MP3.read_bytes()
    assert {f["file_name"]: f["content_type"] for f in fake.files.values()}["hello.mp3"] == "audio/mpeg"
    assert job.status is JobStatus.COMPLETED


async def test_data_uri_and_base64_inputs_are_uploaded(fake, provider):
    data_uri = "data:image/jpeg;base64," + base64.b64encode(FACE.read_bytes()).decode()
    await provider.submit(job_for(), prepared(data_uri, base64.b64encode(WAV.read_bytes()).decode()))
    assert fake.uploaded() == {"image.jpg": FACE.read_bytes(), "audio.wav": WAV.read_bytes()}


async def test_text_request_uploads_the_synthesized_speech(fake, provider, tmp_path):
    job, _ = await run_to_end(provider, prepared_text(tmp_path))
    assert job.status is JobStatus.COMPLETED
    assert fake.uploaded()[SPEECH_NAME] == WAV.read_bytes()
    assert fake.submits[0].json["audio_url"].endswith(SPEECH_NAME)


async def test_url_inputs_pass_through_and_the_webhook_is_a_query_parameter(fake, provider):
    hook = "https://hooks.example.com/webhooks/fal/3f9c2a?x=1"
    update = await provider.submit(job_for(webhook_url=hook), prepared(*URLS))
    assert fake.requests_to("initiate") == [] and fake.requests_to("upload") == []
    (submit,) = fake.submits
    assert submit.json == {"image_url": URLS[0], "audio_url": URLS[1]}
    assert httpx.URL(f"http://h/?{submit.query}").params["fal_webhook"] == hook
    assert update.status is JobStatus.QUEUED and update.message == "in queue (position 0)"


async def test_submit_answer_without_urls_or_status_is_accepted(fake, provider):
    fake.configure(submit_urls=False, submit_status=201)
    job, _ = await run_to_end(provider, prepared(*URLS))
    assert job.status is JobStatus.COMPLETED


async def test_hosts_from_the_environment(fake, monkeypatch):
    monkeypatch.setenv("FAL_BASE_URL", fake.url + "/")
    monkeypatch.setenv("FAL_KEY", "env-key-0123456789")
    provider = FalProvider({"retry_backoff": 0.01, "poll_interval": 0.01})
    try:
        assert provider.configured() and provider.queue_url == provider.rest_url == fake.url
        assert provider.jwks_url == fake.url + "/.well-known/jwks.json"
        await provider.submit(job_for(), prepared(FACE, WAV))
    finally:
        await provider.aclose()
    assert fake.submits[0].header("authorization") == "Key env-key-0123456789"
    monkeypatch.setenv("FAL_QUEUE_URL", "http://127.0.0.1:9/queue")
    assert FalProvider({}).queue_url == "http://127.0.0.1:9/queue" and FalProvider({}).rest_url == fake.url
    assert FalProvider({"queue_url": "http://q.example"}).queue_url == "http://q.example"


def test_default_hosts_are_fals(monkeypatch):
    provider = FalProvider({})
    assert (provider.queue_url, provider.rest_url, provider.jwks_url) == (
        "https://queue.fal.run", "https://rest.fal.ai", "https://rest.alpha.fal.ai/.well-known/jwks.json")


# -- the submit: money safety ----------------------------------------------------------------

async def test_submit_answer_without_request_id_is_outcome_unknown(fake, provider, monkeypatch):
    real = http.send

    async def no_id(client, method, url, **kw):
        response = await real(client, method, url, **kw)
        if method == "POST" and "ai-avatar" in str(url):
            return httpx.Response(200, json={"status": "IN_QUEUE"})
        return response

    monkeypatch.setattr(http, "send", no_id)
    with pytest.raises(SubmitOutcomeUnknown, match="no request_id"):
        await provider.submit(job_for(), prepared(*URLS))


# -- refusals --------------------------------------------------------------------------------

async def test_locked_account_is_a_billing_error(fake, provider):
    fake.configure(locked=True)
    with pytest.raises(BillingError, match="Exhausted balance") as exc:
        await provider.submit(job_for(), prepared(*URLS))
    assert exc.value.status_code == 403


async def test_422_on_submit_is_refused_naming_the_field(fake, provider):
    fake.configure(failures={"submit": [422]})
    with pytest.raises(RequestRefused, match="image_url: field required") as exc:
        await provider.submit(job_for(), prepared(*URLS))
    assert exc.value.field == "image"


async def test_wrong_key_is_an_authentication_error_without_the_key(fake, make_provider):
    fake.configure(api_key="the-right-key-000000")
    wrong = fake_secrets.fal_key("0e")
    provider = make_provider(fake.url, api_key=wrong)
    with pytest.raises(AuthenticationError) as exc:
        await provider.submit(job_for(), prepared(FACE, WAV))
    assert "FAL_KEY" in str(exc.value) and exc.value.status_code == 401
    assert wrong not in str(exc.value) + repr(exc.value) + repr(provider)
    assert [r.endpoint for r in fake.requests] == ["token"]  # stopped at the first call


async def test_echoed_key_is_redacted_from_error_messages(fake, make_provider, monkeypatch):
    key = fake_secrets.fal_key("0d")
    provider = make_provider(fake.url, api_key=key)

    async def echo(*args, **kwargs):  # a server that echoes the credential back
        return httpx.Response(400, json={"detail": f"bad header Key {key}"})

    monkeypatch.setattr(http, "send", echo)
    with pytest.raises(RequestRefused) as exc:
        await provider.poll(job_for("r1"))
    assert key not in str(exc.value) and key.split(":")[1] not in str(exc.value) and "***" in str(exc.value)


async def test_upload_failures(fake, provider):
    fake.configure(failures={"initiate": [500, 200], "upload": [500, 200]}, cdn_tokens=False)
    await provider.submit(job_for(), prepared(FACE, URLS[1]))
    assert len(fake.requests_to("initiate")) == 2 and len(fake.requests_to("upload")) == 2
    assert fake.uploaded() == {"face.jpg": FACE.read_bytes()}  # the retried PUT sent it all again

    fake.configure(failures={"upload": [403]}, cdn_tokens=False)
    with pytest.raises(ServerError) as exc:
        await provider.submit(job_for(), prepared(FACE, URLS[1]))
    assert not isinstance(exc.value, AuthenticationError) and "Signature" not in str(exc.value)
    assert "HTTP 403" in str(exc.value)
    assert len(fake.submits) == 1  # the first submit only: nothing created after a failed upload


# -- following a request -----------------------------------------------------------------------

async def test_completed_with_error_is_a_failure_read_once(fake, provider):
    fake.configure(completed_error=("Runner disconnected", "runner_disconnected", 503), step_latency=0.01)
    job, updates = await run_to_end(provider, prepared(*URLS))
    assert updates[-1].status is JobStatus.FAILED and job.output_url is None
    assert job.error.startswith("Runner disconnected") and job.error_kind == "runner_disconnected"
    assert len(fake.requests_to("result")) == 1


async def test_result_422_is_a_failure_with_fals_message(fake, provider):
    detail = {"detail": [{"loc": ["body", "audio_url"], "msg": "Audio too long",
                          "type": "audio_duration_out_of_range"}]}
    fake.configure(result_error=(422, detail))
    job, _ = await run_to_end(provider, prepared(*URLS))
    assert job.status is JobStatus.FAILED and job.error == "audio_url: Audio too long" and job.error_kind == "input"


async def test_status_read_errors_are_retried(fake, provider):
    job = job_for()
    job.apply(await provider.submit(job, prepared(*URLS)))
    fake.configure(failures={"status": [500, 502, 200]})
    assert (await provider.poll(job)).status is JobStatus.COMPLETED
    assert len(fake.requests_to("status")) == 3


async def test_output_without_duration(fake, provider):
    fake.configure(output_duration=None)
    job, _ = await run_to_end(provider, prepared(*URLS))
    assert job.output_url and job.duration_s is None


async def test_job_without_a_request_id(provider):
    with pytest.raises(ProviderError, match="no fal request id"):
        await provider.poll(job_for())


# -- cancel ------------------------------------------------------------------------------------

async def test_cancel_a_running_request_then_an_ended_one(fake, provider):
    fake.configure(step_latency=0.2)
    job = job_for()
    job.apply(await provider.submit(job, prepared(*URLS)))
    await provider.cancel(job)
    (cancel,) = fake.requests_to("cancel")
    assert cancel.method == "PUT" and cancel.path == f"/fal-ai/kling-video/requests/{job.task_id}/cancel"
    assert cancel.body == b"" and cancel.header("authorization") == f"Key {TEST_KEY}"
    updates = [u async for u in provider.stream(job)]
    assert updates[-1].status is JobStatus.CANCELLED and updates[-1].error_kind == "cancelled"
    await provider.cancel(job)  # ALREADY_COMPLETED (400): nothing to do


async def test_cancel_an_unknown_request(fake, provider):
    with pytest.raises(ProviderError, match="404"):
        await provider.cancel(job_for("no-such-request"))


# -- through the core client -----------------------------------------------------------------

async def test_the_core_client_runs_a_job_and_settles_by_the_billed_seconds(fake, make_provider, tmp_path, video_bytes):
    from talkinghead.client import AsyncClient
    from talkinghead.models import AvatarRequest

    fake.configure(step_latency=0.01, output_duration=7.0)
    async with AsyncClient(providers=[make_provider(fake.url)]) as client:
        result = await client.run(AvatarRequest(image=FACE, audio=WAV, mode="pro"), provider="fal",
                                  output=tmp_path / "out.mp4", timeout=10)
    assert result.path.read_bytes() == video_bytes and result.duration_s == 7.0
    assert result.cost_usd == pytest.approx(7.0 * 0.115)


def test_fake_switches_are_checked(fake):
    with pytest.raises(TypeError, match="unknown fake switch"):
        fake.configure(nope=1)
    with pytest.raises(TypeError, match="unknown endpoint"):
        fake.configure(failures={"nowhere": [500]})
    assert json.loads(json.dumps(fake.jwks))["keys"][0]["crv"] == "Ed25519"
