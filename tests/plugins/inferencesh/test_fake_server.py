"""The provider driven directly against the loopback fake server, over real sockets."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest

from talkinghead import http
from talkinghead.errors import AuthenticationError, BillingError, InputError, RequestRefused, ServerError
from talkinghead.models import JobStatus
from talkinghead_inferencesh import InferenceShProvider
from tests.plugins.shared import submit_and_follow
from tests.plugins.suites import fake_server_tests

from .conftest import FACE, MP3, TEST_KEY, WAV, job_for, prepared

URLS = ("https://x.example/f.png", "https://x.example/a.mp3")


async def run_to_end(provider, request=None, **job_fields):
    return await submit_and_follow(provider, job_for(**job_fields), request or prepared())


globals().update(fake_server_tests(
    job_for, prepared, URLS, create="create", unknown_task=("01jnosuchtask", "404"), real_url="https://api.inference.sh",
    uploads_off_machine={}, unconfigured=(InferenceShProvider, "INFERENCE_API_KEY"),
    retries=("get", lambda fake: fake.tasks)))


# -- the happy path ------------------------------------------------------------------------

async def test_submit_and_stream_to_completion_with_intact_uploads(fake, provider, tmp_path, video_bytes):
    fake.configure(step_latency=0.02)
    job, updates = await run_to_end(provider, prepared(FACE, WAV, mode="pro", prompt="smile"))

    assert job.status is JobStatus.COMPLETED and job.duration_s == 6.9
    assert [u.message for u in updates][-1] == "completed"
    assert all(u.status is not JobStatus.COMPLETED for u in updates[:-1])  # 9 (uploading) is not done
    progress = [u.progress for u in updates if u.progress is not None]
    assert progress == sorted(progress)

    # the bytes arrived intact, under names and types that match the content
    assert fake.uploaded() == {"face.jpg": FACE.read_bytes(), "hello.wav": WAV.read_bytes()}
    types = {f["filename"]: f["content_type"] for f in fake.files.values()}
    assert types == {"face.jpg": "image/jpeg", "hello.wav": "audio/wav"}
    for put in fake.requests_to("upload"):
        assert put.header("authorization") is None
        assert put.header("content-length") == str(len(put.body))
        assert put.query.startswith("X-Expires=")  # the signed URL was used as given

    # the create named the uploaded URIs
    (create,) = fake.creates
    inputs = create.json["input"]
    uris = sorted(fake.url + f"/files/{fid}/{f['filename']}" for fid, f in fake.files.items())
    assert sorted([inputs["image"], inputs["audio"]]) == uris
    assert inputs["image"].endswith("face.jpg") and inputs["audio"].endswith("hello.wav")
    assert (inputs["mode"], inputs["prompt"], "aspect_ratio" in inputs) == ("pro", "smile", False)  # auto: not sent
    assert create.json["app"] == "klingai/avatar" and "webhook" not in create.json
    assert create.header("authorization") == f"Bearer {TEST_KEY}"

    # the output video is served by the fake and downloads intact
    out = await http.download(job.output_url, tmp_path / "out.mp4", provider="inferencesh")
    assert out.read_bytes() == video_bytes


async def test_request_order_matches_the_sdk_sequence(fake, provider):
    await run_to_end(provider)
    tid = next(iter(fake.tasks))
    assert [(r.method, r.path.replace(tid, "{id}")) for r in fake.requests if r.endpoint != "upload"] == [
        ("POST", "/files"), ("POST", "/files"), ("POST", "/apps/run"), ("GET", "/tasks/{id}/stream")]
    stream = fake.requests_to("stream")[0]
    assert stream.header("accept") == "application/x-ndjson"
    assert stream.header("cache-control") == "no-cache" and stream.header("accept-encoding") == "identity"


async def test_mp3_upload_keeps_an_mp3_name(fake, provider):
    await provider.submit(job_for(), prepared(FACE, MP3))
    assert fake.uploaded()["hello.mp3"] == MP3.read_bytes()
    assert {f["filename"]: f["content_type"] for f in fake.files.values()}["hello.mp3"] == "audio/mpeg"


async def test_data_uri_inputs_are_uploaded(fake, provider):
    data_uri = "data:image/jpeg;base64," + base64.b64encode(FACE.read_bytes()).decode()
    await provider.submit(job_for(), prepared(data_uri, base64.b64encode(WAV.read_bytes()).decode()))
    uploaded = fake.uploaded()
    assert sorted(uploaded.values(), key=len) == [FACE.read_bytes(), WAV.read_bytes()]
    assert sorted(uploaded) == ["audio.wav", "image.jpg"]  # named by content, not "image"/"audio"


async def test_url_inputs_pass_through_and_webhook_is_sent(fake, provider):
    hook = "https://hooks.example.com/infsh/3f9c2a?token=opaque"
    await provider.submit(job_for(webhook_url=hook),
                          prepared("https://img.example.org/a.png", "https://snd.example.org/v.mp3"))
    assert fake.requests_to("files") == [] and fake.requests_to("upload") == []
    body = fake.creates[0].json
    assert body["input"]["image"] == "https://img.example.org/a.png"
    assert body["input"]["audio"] == "https://snd.example.org/v.mp3"
    assert body["webhook"] == hook


async def test_pinned_app_and_base_url_from_the_environment(fake, make_provider, monkeypatch):
    monkeypatch.setenv("INFERENCE_BASE_URL", fake.url + "/")
    monkeypatch.setenv("INFERENCE_API_KEY", "env-key-0123456789")
    provider = InferenceShProvider({"app": "klingai/avatar@abc1", "retry_backoff": 0.01})
    try:
        assert provider.configured() and provider.base_url == fake.url
        await provider.submit(job_for(), prepared(*URLS))
    finally:
        await provider.aclose()
    assert fake.creates[0].json["app"] == "klingai/avatar@abc1"
    assert fake.creates[0].header("authorization") == "Bearer env-key-0123456789"


@pytest.mark.parametrize("envelope", ["v1", "v3"])
async def test_wrapped_envelopes(fake, provider, envelope):
    fake.configure(envelope=envelope)
    job, _ = await run_to_end(provider)
    assert job.status is JobStatus.COMPLETED and job.output_url


@pytest.mark.parametrize("form", ["url", "string"])
async def test_output_shapes(fake, provider, form):
    fake.configure(output_form=form, output_seconds=None)
    job, _ = await run_to_end(provider)
    assert job.output_url.endswith(".mp4") and job.duration_s is None


async def test_full_snapshots_without_output_are_completed_by_a_get(fake, provider):
    fake.configure(stream_partial=False, stream_omit_output=True, step_latency=0.01)
    job, _ = await run_to_end(provider)
    assert job.output_url.endswith(".mp4")
    assert len(fake.requests_to("get")) == 1  # the whole task was read once for the output


# -- the create call: money safety -----------------------------------------------------------

async def test_rejected_status_13_is_a_billing_error(fake, provider):
    fake.configure(reject=True)
    with pytest.raises(BillingError, match="balance"):
        await provider.submit(job_for(), prepared(*URLS))
    assert len(fake.creates) == 1


@pytest.mark.parametrize("envelope", ["v1", "v2"])
async def test_402_is_a_billing_error(fake, provider, envelope):
    fake.configure(failures={"create": [402]}, envelope=envelope)
    with pytest.raises(BillingError, match="Insufficient balance"):
        await provider.submit(job_for(), prepared(*URLS))


async def test_422_is_refused_with_the_provider_message(fake, provider):
    fake.configure(failures={"create": [422]})
    with pytest.raises(RequestRefused, match="input.image: field required"):
        await provider.submit(job_for(), prepared(*URLS))


@pytest.mark.parametrize("envelope", ["v1", "v2"])
async def test_wrong_key_is_an_authentication_error_without_the_key(fake, make_provider, envelope):
    fake.configure(api_key="the-right-key-000000", envelope=envelope)
    wrong = "inf_wrongkey_abcdefghijklmnop"
    provider = make_provider(fake.url, api_key=wrong)
    with pytest.raises(AuthenticationError) as exc:
        await provider.submit(job_for(), prepared(FACE, WAV))
    assert "INFERENCE_API_KEY" in str(exc.value) and "Invalid or missing API key" in str(exc.value)
    assert wrong not in str(exc.value) and wrong not in repr(exc.value) and wrong not in repr(provider)
    assert [r.endpoint for r in fake.requests] == ["files"]  # stopped at the first call


async def test_echoed_key_is_redacted_from_error_messages(fake, make_provider, monkeypatch):
    provider = make_provider(fake.url)

    async def echo(*args, **kwargs):  # a server that echoes the credential back in its error
        import httpx
        return httpx.Response(400, json={"detail": f"bad token Bearer {TEST_KEY}"})

    monkeypatch.setattr(http, "send", echo)
    with pytest.raises(RequestRefused) as exc:
        await provider.poll(job_for("t1"))
    assert TEST_KEY not in str(exc.value) and "***" in str(exc.value)


async def test_upload_failures(fake, provider):
    fake.configure(failures={"files": [500, 200], "upload": [500, 200]})
    await provider.submit(job_for(), prepared(FACE, "https://x.example/a.mp3"))
    assert len(fake.requests_to("files")) == 2 and len(fake.requests_to("upload")) == 2
    assert fake.uploaded() == {"face.jpg": FACE.read_bytes()}  # the retried PUT sent it all again

    fake.configure(failures={"upload": [403] * 5})
    with pytest.raises(ServerError) as exc:
        await provider.submit(job_for(), prepared(FACE, "https://x.example/a.mp3"))
    assert not isinstance(exc.value, AuthenticationError) and "X-Signature" not in str(exc.value)
    assert "HTTP 403" in str(exc.value)


# -- reads ---------------------------------------------------------------------------------

async def test_500_on_read_is_retried(fake, provider):
    job = job_for()
    job.apply(await provider.submit(job, prepared(*URLS)))
    fake.configure(failures={"get": [500, 502, 200]})
    update = await provider.poll(job)
    assert update.status is JobStatus.COMPLETED and len(fake.requests_to("get")) == 3


# -- the stream --------------------------------------------------------------------------

async def test_failed_task_ends_the_stream_with_the_error(fake, provider):
    fake.configure(task_error="Task failed: no face detected", step_latency=0.01)
    job, updates = await run_to_end(provider)
    assert updates[-1].status is JobStatus.FAILED
    assert job.error == "Task failed: no face detected" and job.output_url is None


async def test_stream_dropped_midway_is_resumed(fake, provider):
    fake.configure(step_latency=0.1, statuses=(1, 2, 7, 7, 7, 7, 9, 10), stream_drops=1, stream_drop_after=1)
    job, _ = await run_to_end(provider)
    assert job.status is JobStatus.COMPLETED
    kinds = [r.endpoint for r in fake.requests if r.endpoint in ("stream", "get")]
    assert kinds[:3] == ["stream", "get", "stream"]


async def test_quiet_stream_falls_back_to_get_and_reconnects(fake, make_provider):
    fake.configure(step_latency=0.05, stream_quiet=1, heartbeat_interval=0.02)
    provider = make_provider(fake.url, stream_idle_timeout=0.15)
    start = time.monotonic()
    job, _ = await run_to_end(provider)
    assert job.status is JobStatus.COMPLETED and time.monotonic() - start < 3
    kinds = [r.endpoint for r in fake.requests if r.endpoint in ("stream", "get")]
    assert kinds[:2] == ["stream", "get"]


async def test_heartbeats_forever_still_finish_through_get(fake, make_provider):
    fake.configure(step_latency=0.05, stream_quiet=1000, heartbeat_interval=0.02)
    provider = make_provider(fake.url, stream_idle_timeout=0.1)
    job, updates = await run_to_end(provider)
    assert job.status is JobStatus.COMPLETED and job.output_url
    assert len(fake.requests_to("stream")) >= 2 and fake.requests_to("get")


async def test_silent_stream_without_heartbeats_also_times_out(fake, make_provider):
    fake.configure(step_latency=0.05, stream_quiet=1000, heartbeat_interval=10)
    provider = make_provider(fake.url, stream_idle_timeout=0.1)
    job, _ = await run_to_end(provider)
    assert job.status is JobStatus.COMPLETED


async def test_stream_that_keeps_dropping_gives_up_with_server_error(fake, make_provider):
    fake.configure(statuses=(1, 7), step_latency=60, stream_drops=1000, stream_drop_after=0)
    provider = make_provider(fake.url, stream_reconnects=2)
    job = job_for()
    job.apply(await provider.submit(job, prepared(*URLS)))
    with pytest.raises(ServerError, match="without news 3 times"):
        async for update in provider.stream(job):
            job.apply(update)
    # the first re-read is news (it tells the status); then 3 connections in a row bring none
    assert len(fake.requests_to("stream")) == 4 and len(fake.requests_to("get")) == 4


async def test_stream_http_errors(fake, provider):
    job = job_for()
    job.apply(await provider.submit(job, prepared(*URLS)))
    fake.configure(failures={"stream": [503, 200]})
    assert [u async for u in provider.stream(job)][-1].status is JobStatus.COMPLETED

    fake.configure(failures={"stream": [401]})
    with pytest.raises(AuthenticationError, match="INFERENCE_API_KEY"):
        async for _ in provider.stream(job):
            pass


async def test_malformed_stream_lines_are_ignored(fake, provider):
    fake.configure(stream_malformed=True, step_latency=0.01)
    job, updates = await run_to_end(provider)
    assert job.status is JobStatus.COMPLETED
    assert fake.requests_to("get") == []  # no fallback was needed


async def test_closing_the_stream_early_releases_it(fake, provider):
    fake.configure(step_latency=0.05)
    job = job_for()
    job.apply(await provider.submit(job, prepared(*URLS)))
    updates = provider.stream(job)
    first = await anext(updates)
    await updates.aclose()
    assert not first.status.terminal


# -- cancel and webhooks ---------------------------------------------------------------------

async def test_cancel_running_task_then_finished_task(fake, provider):
    fake.configure(step_latency=0.2, statuses=(1, 2, 7, 7, 7, 7, 9, 10))
    job = job_for()
    job.apply(await provider.submit(job, prepared(*URLS)))
    await provider.cancel(job)
    (cancel,) = fake.requests_to("cancel")
    assert cancel.path == f"/tasks/{job.task_id}/cancel" and cancel.body == b""
    updates = [u async for u in provider.stream(job)]
    assert updates[-1].status is JobStatus.CANCELLED
    await provider.cancel(job)  # already over: 409 from the server, nothing to do


async def test_webhook_delivery_parses_into_an_update(fake, provider):
    fake.configure(step_latency=0.01)
    hook = fake.url + "/hooks/job-123?token=opaque"
    job = job_for(webhook_url=hook)
    job.apply(await provider.submit(job, prepared(*URLS)))
    for _ in range(200):
        if fake.requests_to("hook"):
            break
        await asyncio.sleep(0.01)
    (delivery,) = fake.requests_to("hook")
    update = await provider.parse_webhook(delivery.headers, delivery.body)
    assert update.task_id == job.task_id and update.status is JobStatus.COMPLETED and update.output_url


@pytest.mark.parametrize("body", [
    json.dumps({"success": True, "data": {"id": "t1", "status": 7}}).encode(),
    json.dumps({"task": {"id": "t1", "status": "running"}}).encode(),
    json.dumps({"id": "t1", "status": 7}).encode(),
])
async def test_parse_webhook_is_lenient(provider, body):
    update = await provider.parse_webhook({}, body)
    assert update.task_id == "t1" and update.status is JobStatus.RUNNING


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'{"status": 10}',
                                  b'{"success": false, "error": {"message": "x"}}'])
async def test_parse_webhook_rejects_garbage(provider, body):
    with pytest.raises(InputError, match="webhook"):
        await provider.parse_webhook({}, body)


# -- declaration ---------------------------------------------------------------------------

def test_route_and_registration():
    from talkinghead import plugins

    assert plugins.get_provider_classes()["inferencesh"] is InferenceShProvider
    route = InferenceShProvider({}).routes()[0]
    assert (route.provider, route.model, route.native_text) == ("inferencesh", "kling-avatar", False)
    assert route.price_per_second == {"std": 0.056, "pro": 0.112} and route.price_source
    # Kling's own rules live in its route's declaration, not in the core.
    assert route.limits.image_min_side == 300 and route.limits.image_aspect_range == (0.4, 2.5)
    assert route.aspect == "follows_photo"
    assert InferenceShProvider.env_vars == ("INFERENCE_API_KEY",) and not InferenceShProvider.signs_webhooks


def test_defaults_and_bad_settings(monkeypatch):
    monkeypatch.delenv("INFERENCE_BASE_URL", raising=False)
    provider = InferenceShProvider({})
    assert provider.base_url == "https://api.inference.sh" and provider.app == "klingai/avatar"
    assert provider.setting("stream_idle_timeout") == 30.0 and provider.setting("reconnect_delay") == 1.0
    with pytest.raises(InputError, match="providers.inferencesh.timeout"):
        InferenceShProvider({"timeout": "soon"}).setting("timeout")
