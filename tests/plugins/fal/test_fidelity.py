"""Protocol fidelity, round two, for fal: what a failed job may have cost (a 422 after the model
ran "may be charged"), non-terminal webhook deliveries, JWKS keys without kty/crv, the URLs
the submit answer names and the upload fallback. Against the fake and the cassettes."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest

from talkinghead.client import AsyncClient
from talkinghead.errors import InputError, JobFailed, WebhookIgnored
from talkinghead.ledger import SQLiteLedger
from talkinghead.models import AvatarRequest, JobStatus, Quote
from talkinghead.webhooks import create_app
from talkinghead_fal import FalProvider, protocol, webhooks
from talkinghead_fal.fake_model import COMPLETED, IN_QUEUE
from tests.plugins.shared import assert_billed, submit_and_read

from .conftest import FACE, TEST_KEY, WAV, job_for, prepared

URLS = ("https://img.example.org/a.png", "https://snd.example.org/v.mp3")
DETAIL = {"detail": [{"loc": ["body", "audio_url"], "msg": "Could not detect speech", "type": "no_speech"}]}


# -- a 422 after the model ran may be charged ----------------------------------------------------

async def _run_failing(fake, make_provider, tmp_path, **switches):
    fake.configure(step_latency=0.01, result_error=(422, DETAIL), **switches)
    ledger = SQLiteLedger(tmp_path / "journal.db")
    async with AsyncClient(providers=[make_provider(fake.url)], ledger=ledger) as client:
        job = await client.submit(AvatarRequest(image=FACE, audio=WAV, mode="pro"), provider="fal")
        with pytest.raises(JobFailed, match="Could not detect speech"):
            await client.wait(job, timeout=10)
    return ledger.get(job.id)


async def test_a_422_after_the_model_ran_is_settled_at_the_quoted_seconds(fake, make_provider, tmp_path):
    job = await _run_failing(fake, make_provider, tmp_path)
    assert job.status is JobStatus.FAILED and job.error_kind == "input"
    assert FalProvider.bills_failed_jobs is True
    assert job.billed_seconds == job.quote.seconds  # fal reported no output length: the quoted one
    assert job.settled_usd == pytest.approx(job.quote.seconds * 0.115) == pytest.approx(job.quote.cost_usd, abs=1e-3)


async def test_a_422_before_the_model_ran_costs_nothing(fake, make_provider, tmp_path):
    # never IN_PROGRESS: the COMPLETED status carries no inference time
    job = await _run_failing(fake, make_provider, tmp_path, statuses=(IN_QUEUE, COMPLETED))
    assert job.status is JobStatus.FAILED and job.billed_seconds is None and job.settled_usd == 0.0


async def test_a_reported_output_length_wins_over_the_quote(fake, provider):
    fake.configure(result_error=(422, {**DETAIL, "duration": 3.5}))
    job = job_for(mode="std")
    job.quote = Quote(provider="fal", model="kling-avatar", mode="std", seconds=9.0, price_per_second=0.0562,
                      cost_usd=0.5058)
    assert_billed(await submit_and_read(provider, job, prepared(*URLS)), JobStatus.FAILED, 3.5, 0.0562)


@pytest.mark.vcr
@pytest.mark.default_cassette("result_validation_error.yaml")
async def test_cassette_422_after_184_s_of_inference_is_billed(vcr, make_provider):
    provider = make_provider("https://queue.fal.run", queue_url="https://queue.fal.run")
    job = job_for(mode="std")
    job.quote = Quote(provider="fal", model="kling-avatar", mode="std", seconds=30.0, price_per_second=0.0562,
                      cost_usd=1.686)
    assert_billed(await submit_and_read(provider, job, prepared(*URLS)), JobStatus.FAILED, 30.0, 0.0562)
    assert "between 2 and 60 seconds" in job.error
    assert vcr.all_played


# -- non-terminal webhook deliveries: 200, nothing changes ---------------------------------------

def _signed(fake, body: dict) -> tuple[dict[str, str], bytes]:
    raw = json.dumps(body).encode()
    return fake.sign(raw, body["request_id"]), raw


async def test_the_fake_can_send_in_queue_and_in_progress_deliveries(fake, provider):
    fake.configure(step_latency=0.1, webhook_progress=True)
    job = job_for(webhook_url=fake.url + "/hooks/progress")
    job.apply(await provider.submit(job, prepared(*URLS)))
    async for update in provider.stream(job):
        job.apply(update)
    for _ in range(50):  # the final delivery follows the COMPLETED status by up to one tick
        if any(b"OK" in d["body"] for d in fake.webhook_deliveries if d.get("status") is None):
            break
        await asyncio.sleep(0.02)
    progress = [d for d in fake.webhook_deliveries if d.get("status")]
    assert [d["status"] for d in progress] == ["IN_QUEUE", "IN_PROGRESS"]
    for delivery in progress:  # genuine (signed), yet nothing to apply
        with pytest.raises(WebhookIgnored) as exc:
            await provider.parse_webhook(delivery["headers"], delivery["body"])
        assert exc.value.status_code == 200


async def test_the_receiver_answers_200_to_a_non_terminal_delivery_and_changes_nothing(fake, make_provider, tmp_path):
    fake.configure(send_webhooks=False, step_latency=5.0)
    ledger = SQLiteLedger(tmp_path / "journal.db")
    async with AsyncClient(providers=[make_provider(fake.url)], ledger=ledger,
                           webhook_base="http://127.0.0.1:9") as client:
        job = await client.submit(AvatarRequest(image=URLS[0], audio=URLS[1]), provider="fal")
        token = job.webhook_url.rsplit("/", 1)[1]
        before = ledger.get(job.id)
        transport = httpx.ASGITransport(app=create_app(client))
        async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as http_client:
            for status in ("IN_QUEUE", "IN_PROGRESS"):
                headers, raw = _signed(fake, {"request_id": job.task_id, "gateway_request_id": job.task_id,
                                              "status": status})
                answer = await http_client.post(f"/webhooks/fal/{token}", content=raw, headers=headers)
                assert answer.status_code == 200 and "ignored" in answer.json()
            # a forged one is still refused: the signature is checked before anything else
            headers["X-Fal-Webhook-Signature"] = "00" * 64
            forged = await http_client.post(f"/webhooks/fal/{token}", content=raw, headers=headers)
            assert forged.status_code == 401
    after = ledger.get(job.id)
    assert after.model_dump() == before.model_dump()


# -- JWKS entries with only x ----------------------------------------------------------------------

def test_a_jwks_key_with_x_but_no_kty_or_crv_is_read_as_ed25519(fake):
    (entry,) = fake.jwks["keys"]
    bare = {"x": entry["x"]}
    padded = {"x": entry["x"] + "=" * (-len(entry["x"]) % 4), "kid": "padded"}
    other = {"kty": "RSA", "x": entry["x"]}
    keys = webhooks.public_keys({"keys": [bare, padded, other]})
    assert len(keys) == 2  # the RSA-typed entry is not Ed25519, whatever its x
    body = b'{"request_id": "r1", "status": "OK"}'
    headers = fake.sign(body, "r1")
    message = webhooks.signed_message("r1", headers["X-Fal-Webhook-User-Id"], headers["X-Fal-Webhook-Timestamp"], body)
    assert webhooks.verify_signature(keys[:1], bytes.fromhex(headers["X-Fal-Webhook-Signature"]), message)
    assert base64.urlsafe_b64decode(padded["x"])  # padded x decodes as is


# -- the URLs the submit answer names ----------------------------------------------------------------

def test_only_urls_on_our_queue_host_are_kept():
    ours = "https://queue.fal.run/fal-ai/kling-video/requests/r1"
    answer = {"status_url": ours + "/status", "response_url": "https://evil.example.com/steal",
              "cancel_url": "https://queue.falrun.com/fal-ai/kling-video/requests/r1/cancel"}
    assert protocol.returned_urls(answer, "https://queue.fal.run") == {
        "status_url": ours + "/status", "cancel_url": answer["cancel_url"]}
    assert protocol.returned_urls({"status_url": "http://queue.falrun.com/x"}, "https://queue.fal.run") == {}


async def test_a_url_off_our_host_is_rebuilt_not_followed(fake, provider):
    job = job_for("r-not-there")
    job.provider_data = {"status_url": "https://elsewhere.example.com/status"}  # e.g. an edited journal
    with pytest.raises(Exception, match="404|not found"):
        await provider.poll(job)
    assert fake.requests_to("status")[0].path == "/fal-ai/kling-video/requests/r-not-there/status"


@pytest.mark.vcr
@pytest.mark.default_cassette("returned_urls.yaml")
async def test_cassette_reads_and_cancel_go_where_the_submit_answer_said(vcr, make_provider):
    provider = make_provider()  # fal's own hosts
    job = job_for(mode="std")
    job.apply(await provider.submit(job, prepared(*URLS)))
    assert job.provider_data["status_url"].startswith("https://queue.falrun.com/")
    job.apply(await provider.poll(job))
    await provider.cancel(job)
    job.apply(await provider.poll(job))
    assert job.status is JobStatus.COMPLETED and job.billed_seconds == 6.9
    assert {r.host for r in vcr.requests[1:]} == {"queue.falrun.com"}
    assert vcr.all_played


# -- uploads: configurable storage, the official client's fallback -----------------------------------

async def test_upload_storage_gcs_skips_the_cdn_token(fake, make_provider):
    provider = make_provider(fake.url, upload_storage="gcs")
    assert provider.storage_chain() == ["gcs"]
    await provider.submit(job_for(), prepared(FACE, URLS[1]))
    assert fake.requests_to("token") == [] and [r.query for r in fake.requests_to("initiate")] == ["storage_type=gcs"]


def test_an_unknown_storage_type_is_refused_naming_the_setting():
    with pytest.raises(InputError, match="providers.fal.upload_storage") as exc:
        FalProvider({"api_key": TEST_KEY, "upload_storage": "s3"}).storage_chain()
    assert exc.value.limit == ["fal-cdn-v3", "gcs"]


async def test_a_failed_cdn_upload_falls_back_to_initiate(fake, provider):
    fake.configure(failures={"cdn_upload": [500, 500, 500, 500]})
    job = job_for()
    job.apply(await provider.submit(job, prepared(FACE, URLS[1])))
    assert job.task_id and [f["storage_type"] for f in fake.files.values() if f["data"]] == ["gcs"]
    assert fake.uploaded() == {"face.jpg": FACE.read_bytes()}


@pytest.mark.vcr
@pytest.mark.default_cassette("upload_fallback_gcs.yaml")
async def test_cassette_refused_cdn_token_falls_back_to_gcs(vcr, make_provider):
    provider = make_provider()
    job = job_for(mode="std")
    assert (await submit_and_read(provider, job, prepared(FACE, WAV))).status is JobStatus.COMPLETED
    paths = [(r.method, r.host, r.path) for r in vcr.requests[:6]]
    assert paths[0] == ("POST", "rest.fal.ai", "/storage/auth/token")
    assert paths[1] == ("POST", "rest.fal.ai", "/storage/upload/initiate") and paths[2][0] == "PUT"
    assert vcr.all_played
