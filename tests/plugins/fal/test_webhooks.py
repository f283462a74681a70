"""fal's webhook signatures: Ed25519 over request id, user id, timestamp and the body's
SHA-256, verified against a JWKS. The keys here are generated per run and served by the fake
server's JWKS endpoint over a real socket; fal's real keys are never involved."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from talkinghead import http
from talkinghead.errors import InputError, NetworkBlocked, ServerError, WebhookRejected
from talkinghead.models import JobStatus
from talkinghead_fal import webhooks

from .conftest import job_for, prepared

RID = "5b2f1c7e-8d4a-4f3b-9e21-0c6a7d8e9f10"
OK_BODY = json.dumps({
    "request_id": RID, "gateway_request_id": RID, "status": "OK",
    "payload": {"video": {"url": "https://v3.fal.media/files/penguin/Qw3rTy9_output.mp4", "content_type": "video/mp4",
                          "file_name": "output.mp4", "file_size": 2345678}, "duration": 9.43},
}).encode()
ERROR_BODY = json.dumps({
    "request_id": RID, "gateway_request_id": RID, "status": "ERROR", "error": "Invalid status code: 422",
    "payload": {"detail": [{"loc": ["body", "image_url"], "msg": "Could not detect a face", "type": "face_not_found"}]},
}).encode()


@pytest.fixture
def deliver(fake, provider):
    """Sign ``body`` with the fake's key (served at its JWKS) and hand it to the provider."""

    async def run(body: bytes = OK_BODY, *, key: Ed25519PrivateKey | None = None, **sign_kwargs):
        headers = webhooks.sign(key or fake.private_key, body, request_id=sign_kwargs.pop("request_id", RID),
                                **sign_kwargs)
        return await provider.parse_webhook(headers, body)

    return run


# -- accepted ----------------------------------------------------------------------------------

async def test_valid_signature_is_accepted(deliver, fake):
    update = await deliver()
    assert update.status is JobStatus.COMPLETED and update.task_id == RID
    assert update.delivery_id == RID  # the X-Fal-Webhook-Request-Id header: the core dedupes on it
    assert update.output_url.endswith("Qw3rTy9_output.mp4") and update.duration_s == 9.43
    (jwks,) = fake.requests_to("jwks")
    assert jwks.header("authorization") is None  # our key never goes to the key server


async def test_error_delivery_is_a_failed_update(deliver):
    body = ERROR_BODY.replace(b"Invalid status code: 422", b"Invalid status code: 500")
    update = await deliver(body)
    assert update.status is JobStatus.FAILED and update.task_id == RID
    assert update.error == "Invalid status code: 500: image_url: Could not detect a face"


async def test_a_422_delivery_leaves_settling_to_the_queue(deliver):
    # "may be charged" if the model ran, which only the request's status tells: not settled here
    update = await deliver(ERROR_BODY)
    assert update.status is JobStatus.RUNNING and update.task_id == RID and update.error is None
    assert "Invalid status code: 422" in update.message and "queue" in update.message


async def test_unserialisable_payload_leaves_the_result_to_the_queue(deliver):
    body = json.dumps({"request_id": RID, "status": "OK", "payload": None,
                       "payload_error": "Output is not JSON serializable"}).encode()
    update = await deliver(body)
    assert update.status is JobStatus.RUNNING and "not JSON serializable" in update.message


async def test_header_names_are_case_insensitive(fake, provider):
    headers = {k.lower(): v for k, v in webhooks.sign(fake.private_key, OK_BODY, request_id=RID).items()}
    assert (await provider.parse_webhook(headers, OK_BODY)).task_id == RID
    upper = {k.upper(): v for k, v in headers.items()}
    assert (await provider.parse_webhook(upper, OK_BODY)).task_id == RID


async def test_timestamp_within_tolerance_is_accepted(deliver):
    assert (await deliver(timestamp=int(time.time()) - 200)).task_id == RID
    assert (await deliver(timestamp=int(time.time()) + 200)).task_id == RID


# -- rejected ----------------------------------------------------------------------------------

async def test_bad_signature_is_rejected(fake, provider):
    headers = webhooks.sign(fake.private_key, OK_BODY, request_id=RID)
    headers[webhooks.HEADER_SIGNATURE] = bytes(64).hex()
    with pytest.raises(WebhookRejected, match="does not verify"):
        await provider.parse_webhook(headers, OK_BODY)


async def test_signature_from_another_key_is_rejected(deliver):
    with pytest.raises(WebhookRejected, match="does not verify"):
        await deliver(key=Ed25519PrivateKey.generate())


@pytest.mark.parametrize("header", webhooks.HEADERS)
async def test_missing_header_is_rejected_before_any_key_fetch(fake, provider, header):
    headers = webhooks.sign(fake.private_key, OK_BODY, request_id=RID)
    del headers[header]
    with pytest.raises(WebhookRejected, match=f"missing {header}"):
        await provider.parse_webhook(headers, OK_BODY)
    assert fake.requests_to("jwks") == []


@pytest.mark.parametrize("value, reason", [("zz" * 64, "not hex"), ("ab" * 32, "32 bytes"), ("", "missing")])
async def test_malformed_signature_header_is_rejected(fake, provider, value, reason):
    headers = webhooks.sign(fake.private_key, OK_BODY, request_id=RID)
    headers[webhooks.HEADER_SIGNATURE] = value
    with pytest.raises(WebhookRejected, match=reason):
        await provider.parse_webhook(headers, OK_BODY)


@pytest.mark.parametrize("offset, word", [(-301, "old"), (-86400, "old"), (400, "in the future")])
async def test_stale_or_future_timestamp_is_rejected(deliver, fake, offset, word):
    with pytest.raises(WebhookRejected, match=word):
        await deliver(timestamp=int(time.time()) + offset)
    assert fake.requests_to("jwks") == []


async def test_tolerance_is_configurable(fake, make_provider):
    provider = make_provider(fake.url, webhook_tolerance=10)
    headers = webhooks.sign(fake.private_key, OK_BODY, request_id=RID, timestamp=int(time.time()) - 60)
    with pytest.raises(WebhookRejected, match="tolerance 10 s"):
        await provider.parse_webhook(headers, OK_BODY)


async def test_non_numeric_timestamp_is_rejected(deliver):
    with pytest.raises(WebhookRejected, match="not Unix seconds"):
        await deliver(timestamp="2026-08-01T10:00:00Z")


@pytest.mark.parametrize("tamper", [
    lambda b: b.replace(b"Qw3rTy9_output.mp4", b"evil.mp4"),
    lambda b: b + b" ",                                   # even whitespace: the raw bytes are signed
    lambda b: json.dumps(json.loads(b), indent=2).encode(),  # re-serialised JSON is not the same bytes
])
async def test_tampered_body_is_rejected(fake, provider, tamper):
    headers = webhooks.sign(fake.private_key, OK_BODY, request_id=RID)
    with pytest.raises(WebhookRejected):
        await provider.parse_webhook(headers, tamper(OK_BODY))


@pytest.mark.parametrize("field, value", [
    (webhooks.HEADER_REQUEST_ID, "another-request"), (webhooks.HEADER_USER_ID, "another-user"),
    (webhooks.HEADER_TIMESTAMP, None)])
async def test_every_signed_header_is_covered(fake, provider, field, value):
    headers = webhooks.sign(fake.private_key, OK_BODY, request_id=RID)
    headers[field] = value if value is not None else str(int(headers[field]) - 1)
    with pytest.raises(WebhookRejected, match="does not verify"):
        await provider.parse_webhook(headers, OK_BODY)


async def test_another_fal_user_is_rejected_when_the_user_is_configured(fake, make_provider):
    provider = make_provider(fake.url, webhook_user_id="my-fal-user")
    headers = webhooks.sign(fake.private_key, OK_BODY, request_id=RID, user_id="someone-else")
    with pytest.raises(WebhookRejected, match="user"):
        await provider.parse_webhook(headers, OK_BODY)
    ours = webhooks.sign(fake.private_key, OK_BODY, request_id=RID, user_id="my-fal-user")
    assert (await provider.parse_webhook(ours, OK_BODY)).task_id == RID


@pytest.mark.parametrize("body, why", [
    (b"not json", "not a JSON object"), (b"[1, 2]", "not a JSON object"),
    (json.dumps({"status": "OK", "payload": {}}).encode(), "no request_id"),
    (json.dumps({"request_id": RID, "status": "MAYBE"}).encode(), "unknown webhook status"),
])
async def test_malformed_but_signed_body_is_an_input_error(deliver, body, why):
    with pytest.raises(InputError, match=why) as exc:
        await deliver(body)
    assert exc.value.field == "webhook"


async def test_bad_signature_wins_over_a_malformed_body(fake, provider):
    headers = webhooks.sign(Ed25519PrivateKey.generate(), b"garbage", request_id=RID)
    with pytest.raises(WebhookRejected):
        await provider.parse_webhook(headers, b"garbage")


# -- the key set -------------------------------------------------------------------------------

async def test_jwks_is_fetched_once_then_cached(deliver, fake, provider):
    for _ in range(3):
        await deliver()
    with pytest.raises(WebhookRejected):
        await deliver(key=Ed25519PrivateKey.generate())  # an unknown key inside refresh_interval: no refetch
    assert len(fake.requests_to("jwks")) == 1
    assert provider._jwks_cache().fetches == 1


async def test_concurrent_first_deliveries_share_one_fetch(deliver, fake):
    results = await asyncio.gather(*(deliver() for _ in range(5)))
    assert {u.task_id for u in results} == {RID} and len(fake.requests_to("jwks")) == 1


async def test_jwks_expires_after_its_ttl(fake, make_provider):
    provider = make_provider(fake.url, jwks_ttl=0.05)
    for _ in range(2):
        headers = webhooks.sign(fake.private_key, OK_BODY, request_id=RID)
        await provider.parse_webhook(headers, OK_BODY)
        await asyncio.sleep(0.08)
    assert len(fake.requests_to("jwks")) == 2


async def test_rotated_key_is_picked_up_by_one_refetch(fake, make_provider):
    provider = make_provider(fake.url, jwks_refresh_interval=0)
    await provider.parse_webhook(fake.sign(OK_BODY, RID), OK_BODY)
    fake.rotate_key()
    assert (await provider.parse_webhook(fake.sign(OK_BODY, RID), OK_BODY)).task_id == RID
    assert len(fake.requests_to("jwks")) == 2


async def test_rotated_key_waits_for_the_refresh_interval(fake, provider):
    await provider.parse_webhook(fake.sign(OK_BODY, RID), OK_BODY)
    fake.rotate_key()
    with pytest.raises(WebhookRejected):
        await provider.parse_webhook(fake.sign(OK_BODY, RID), OK_BODY)
    assert len(fake.requests_to("jwks")) == 1


async def test_jwks_url_can_be_set_on_its_own(fake, make_provider):
    provider = make_provider(jwks_url=fake.url + "/.well-known/jwks.json")
    assert provider.queue_url == "https://queue.fal.run"
    assert (await provider.parse_webhook(fake.sign(OK_BODY, RID), OK_BODY)).task_id == RID


async def test_jwks_server_errors_are_server_errors(fake, provider):
    fake.configure(failures={"jwks": [503] * 4}, retry_after=0)
    with pytest.raises(ServerError, match="webhook keys"):
        await provider.parse_webhook(fake.sign(OK_BODY, RID), OK_BODY)
    assert len(fake.requests_to("jwks")) == 4  # a read: retried


async def test_jwks_without_ed25519_keys_is_a_server_error(fake, provider, monkeypatch):
    monkeypatch.setattr(type(fake), "jwks", property(lambda self: {"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]}))
    with pytest.raises(ServerError, match="no Ed25519 key"):
        await provider.parse_webhook(fake.sign(OK_BODY, RID), OK_BODY)


async def test_jwks_fetch_goes_through_the_network_guard(make_provider, monkeypatch):
    monkeypatch.setattr(http.guard, "enabled", True)
    provider = make_provider()  # fal's real JWKS host
    headers = webhooks.sign(Ed25519PrivateKey.generate(), OK_BODY, request_id=RID)
    with pytest.raises(NetworkBlocked, match="rest.alpha.fal.ai"):
        await provider.parse_webhook(headers, OK_BODY)


# -- deliveries from the fake, over real sockets ----------------------------------------------

async def _delivery(fake):
    for _ in range(300):
        if fake.requests_to("hook"):
            return fake.requests_to("hook")[0]
        await asyncio.sleep(0.01)
    raise AssertionError("no webhook was delivered")


async def test_fake_delivers_a_signed_webhook_the_provider_accepts(fake, provider):
    fake.configure(step_latency=0.01)
    job = job_for(webhook_url=fake.url + "/hooks/job-1")
    job.apply(await provider.submit(job, prepared("https://x.example/f.png", "https://x.example/a.mp3")))
    delivery = await _delivery(fake)
    assert delivery.header("x-fal-webhook-signature") and delivery.header("content-type") == "application/json"
    update = await provider.parse_webhook(delivery.headers, delivery.body)
    assert update.task_id == job.task_id and update.delivery_id == job.task_id
    assert update.status is JobStatus.COMPLETED and update.output_url.startswith(fake.url)


@pytest.mark.parametrize("switch, match", [({"webhook_tamper": True}, "does not verify"),
                                           ({"webhook_timestamp_offset": -600}, "old")])
async def test_fake_tampered_or_stale_deliveries_are_rejected(fake, provider, switch, match):
    fake.configure(**switch)
    job = job_for(webhook_url=fake.url + "/hooks/job-2")
    await provider.submit(job, prepared("https://x.example/f.png", "https://x.example/a.mp3"))
    delivery = await _delivery(fake)
    with pytest.raises(WebhookRejected, match=match):
        await provider.parse_webhook(delivery.headers, delivery.body)


async def test_fake_error_delivery_after_a_failed_request(fake, provider):
    fake.configure(completed_error=("Request timed out", "request_timeout", 504))
    job = job_for(webhook_url=fake.url + "/hooks/job-3")
    await provider.submit(job, prepared("https://x.example/f.png", "https://x.example/a.mp3"))
    update = await provider.parse_webhook(*((d := await _delivery(fake)).headers, d.body))
    assert update.status is JobStatus.FAILED and update.error_kind == "request_timeout"
    assert "Request timed out" in update.error


# -- the pure pieces ----------------------------------------------------------------------------

def test_signed_message_is_the_documented_construction():
    body = b'{"a": 1}'
    expected = f"rid\nuid\n1754000000\n{hashlib.sha256(body).hexdigest()}".encode()
    assert webhooks.signed_message("rid", "uid", "1754000000", body) == expected


def test_sign_and_verify_round_trip_with_a_published_key():
    key = Ed25519PrivateKey.generate()
    jwks = webhooks.jwks_for(key, Ed25519PrivateKey.generate())
    keys = webhooks.public_keys(jwks)
    assert len(keys) == 2 and jwks["keys"][0]["kty"] == "OKP" and "=" not in jwks["keys"][0]["x"]
    headers = webhooks.sign(key, b"body", request_id="r", user_id="u", timestamp=1)
    delivery = webhooks.read_headers(headers)
    assert webhooks.verify_signature(keys, delivery.signature, delivery.message(b"body"))
    assert not webhooks.verify_signature(keys, delivery.signature, delivery.message(b"other"))


def test_public_keys_skips_what_it_cannot_use():
    good = webhooks.jwk(Ed25519PrivateKey.generate().public_key())
    jwks = {"keys": [{"kty": "RSA", "n": "x"}, {"kty": "OKP", "crv": "X25519", "x": good["x"]},
                     {"kty": "OKP", "crv": "Ed25519", "x": "!!!"}, {"kty": "OKP", "crv": "Ed25519"}, "junk", good]}
    assert len(webhooks.public_keys(jwks)) == 1
    assert webhooks.public_keys(None) == [] and webhooks.public_keys({"keys": "x"}) == []


async def test_cache_with_a_clock():
    now = [0.0]
    fetched = []

    async def fetch():
        fetched.append(now[0])
        return webhooks.jwks_for(Ed25519PrivateKey.generate())

    cache = webhooks.JWKSCache(fetch, ttl=100, refresh_interval=10, clock=lambda: now[0])
    await cache.keys()
    now[0] = 5
    await cache.keys(refresh=True)          # too soon to refresh
    now[0] = 11
    await cache.keys()                       # still fresh
    await cache.keys(refresh=True)          # refresh allowed now
    now[0] = 200
    await cache.keys()                       # expired
    assert fetched == [0.0, 11, 200]
